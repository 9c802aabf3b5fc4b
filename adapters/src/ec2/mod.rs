//! EC2 adapter: reads the mesh (transit gateways, attachments, VPCs, route
//! tables, routes, instances) into `lbgp_core::topology`'s plain types and
//! writes single routes. SDK types stop here.
//!
//! EC2 models no errors of its own in the SDK (every operation's error is
//! `Unhandled` with a code), so the tolerance rules read the code through
//! [`ProvideErrorMetadata`], the SDK's own accessor, never the message text.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Tag};
use lbgp_core::{Cidr, Region, RouteTableRef, TableKind};

use crate::Error;
use crate::throttle::TokenBucket;

mod gateways;
mod instances;
mod migration;
mod prefix_lists;
mod tgw_prefix_lists;
mod tgw_routes;
mod vpcs;
mod write;

pub use instances::INSTANCE_IDS_PER_CALL;
pub use prefix_lists::{INCORRECT_STATE, VERSION_MISMATCH};
pub use tgw_routes::{EXPECTED_PER_SEARCH, SEARCHES_IN_FLIGHT};
pub use write::{WriteOutcome, WritePermit};

/// Tag key naming the failover group of a router instance (defined with
/// the failover rules in the core).
pub use lbgp_core::failover::TAG_GROUP as TAG_FAILOVER_GROUP;
pub use lbgp_core::topology::{TAG_IGNORE, TAG_MESH};

/// The most writes kept in flight in one region, whatever the burst: enough
/// for EC2's default burst of 50 in one round trip, few enough that a raised
/// account limit does not open hundreds of connections from one Lambda.
pub const MAX_WRITES_IN_FLIGHT: usize = 100;

/// Values one filter takes in one call (EC2's documented limit for the
/// describes we call: 200).
pub const FILTER_VALUES_PER_CALL: usize = 200;

/// Which route tables to read.
#[derive(Debug, Clone, Copy)]
pub enum RouteTableQuery<'a> {
    /// Every route table of these VPCs.
    Vpcs(&'a [&'a str]),
    /// These route tables.
    Ids(&'a [&'a str]),
}

/// EC2 in one region.
#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
    region: Region,
    writes: TokenBucket,
}

fn filter(name: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
        .collect()
}

/// The error code EC2 answered, if any.
fn code_of<E: ProvideErrorMetadata>(err: &E) -> Option<&str> {
    err.code()
}

impl Ec2 {
    /// Wraps a client for `region`; `writes` paces mutating calls.
    pub fn new(client: Client, region: Region, writes: TokenBucket) -> Self {
        Ec2 {
            client,
            region,
            writes,
        }
    }

    /// The region.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// How many writes to keep in flight in this region: what its token
    /// bucket lets through at once (`LBGP_EC2_WRITE_BURST`, also when pacing
    /// is off), capped at [`MAX_WRITES_IN_FLIGHT`].
    pub fn writes_in_flight(&self) -> usize {
        self.writes.burst().clamp(1, MAX_WRITES_IN_FLIGHT)
    }

    /// The raw client, for test fixtures.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn err<E>(&self, operation: &'static str, source: E) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::aws(operation, &self.region, source)
    }

    fn parse_cidr(&self, text: &str, operation: &'static str) -> Result<Cidr, Error> {
        // AWS may print a CIDR with host bits (it does for some VPC inputs);
        // normalise rather than fail the whole run.
        text.parse::<ipnet::IpNet>()
            .map(Cidr::from_net)
            .map_err(|_| Error::Unexpected {
                operation,
                region: self.region.to_string(),
                detail: format!("AWS returned an unparsable CIDR {text:?}"),
            })
    }

    fn table_ref(&self, kind: TableKind, id: &str) -> RouteTableRef {
        RouteTableRef {
            region: self.region.clone(),
            kind,
            id: id.to_owned(),
        }
    }
}
