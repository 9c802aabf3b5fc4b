//! The route model: where a route lives, where it points, and what state AWS
//! reports for it. Free of AWS SDK types: adapters translate at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::prefix::Cidr;

/// An AWS region name such as `eu-west-1`, validated at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Validates the shape of a region name (`xx-name-N`, with the `-gov`
    /// and `-iso*` partitions' forms). Unknown-but-well-formed names are
    /// accepted: AWS opens regions faster than we release.
    pub fn new(name: &str) -> Option<Region> {
        let name = name.trim();
        let parts: Vec<&str> = name.split('-').collect();
        let well_formed = (3..=4).contains(&parts.len())
            && parts[0].len() == 2
            && parts[0].chars().all(|c| c.is_ascii_lowercase())
            && parts[1..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit()));
        well_formed.then(|| Region(name.to_owned()))
    }
    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which API family a route table belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// A VPC route table (`rtb-…`), written with CreateRoute/ReplaceRoute/DeleteRoute.
    Vpc,
    /// A transit gateway route table (`tgw-rtb-…`), written with
    /// CreateTransitGatewayRoute/ReplaceTransitGatewayRoute/DeleteTransitGatewayRoute.
    TransitGateway,
}

/// A route table in a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteTableRef {
    /// The region the table lives in.
    pub region: Region,
    /// VPC or transit gateway route table.
    pub kind: TableKind,
    /// `rtb-…` or `tgw-rtb-…`.
    pub id: String,
}

impl fmt::Display for RouteTableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.id)
    }
}

/// Identifies one route: a destination in a table. A table holds at most one
/// route per destination, so this is the unit of ownership and planning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    /// The table.
    pub table: RouteTableRef,
    /// The destination prefix.
    pub destination: Cidr,
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.table, self.destination)
    }
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum RouteTarget {
    /// A transit gateway (`tgw-…`), target of VPC routes.
    TransitGateway(String),
    /// A transit gateway attachment (`tgw-attach-…`), target of TGW routes.
    TransitGatewayAttachment(String),
    /// An elastic network interface (`eni-…`).
    NetworkInterface(String),
    /// An EC2 instance (`i-…`).
    Instance(String),
    /// A blackhole TGW static route (drops traffic on purpose).
    Blackhole,
    /// Anything we never manage: the local route, internet/NAT/VPN gateways,
    /// peering connections, endpoints… Kept with a description for reports.
    Other(String),
}

impl RouteTarget {
    /// The id of the target, as AWS prints it.
    pub fn id(&self) -> &str {
        match self {
            RouteTarget::TransitGateway(id)
            | RouteTarget::TransitGatewayAttachment(id)
            | RouteTarget::NetworkInterface(id)
            | RouteTarget::Instance(id)
            | RouteTarget::Other(id) => id,
            RouteTarget::Blackhole => "blackhole",
        }
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The state AWS reports for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteState {
    /// Forwarding.
    Active,
    /// The target is gone or down: traffic is dropped.
    Blackhole,
}

/// How a route came to be in its table, as AWS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteOrigin {
    /// Created by an API call (ours or anyone's): the only kind we may write.
    Static,
    /// Propagated by AWS (TGW propagation, VGW propagation).
    Propagated,
    /// Created by AWS with the table (the VPC's `local` route).
    Local,
}

/// A route as observed in AWS.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    /// Table and destination.
    pub key: RouteKey,
    /// Where it points.
    pub target: RouteTarget,
    /// Active or blackhole.
    pub state: RouteState,
    /// Static, propagated or local.
    pub origin: RouteOrigin,
}

/// A route we want to exist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DesiredRoute {
    /// Table and destination.
    pub key: RouteKey,
    /// Where it must point.
    pub target: RouteTarget,
}
