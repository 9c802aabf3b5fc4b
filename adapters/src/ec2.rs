//! EC2 adapter: reads the mesh (transit gateways, attachments, VPCs, route
//! tables, routes, instances) into plain types and writes single routes.
//! SDK types stop here.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Tag};
use futures::{StreamExt, TryStreamExt};
use lbgp_core::{
    Cidr, Region, Route, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind,
};

use crate::Error;
use crate::throttle::TokenBucket;

/// Tag key that makes a transit gateway a member of a mesh.
pub const TAG_MESH: &str = "lbgp:mesh";
/// Tag key that excludes a VPC route table from injection (`true`).
pub const TAG_IGNORE: &str = "lbgp:ignore";
/// Tag key naming the failover group of a router instance (defined with
/// the failover rules in the core).
pub use lbgp_core::failover::TAG_GROUP as TAG_FAILOVER_GROUP;

/// A transit gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitGateway {
    /// `tgw-…`.
    pub id: String,
    /// Region.
    pub region: Region,
    /// `available`, `pending`, `deleting`…
    pub state: String,
    /// The default association route table, if enabled.
    pub default_association_route_table: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A VPC attachment of a transit gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcAttachment {
    /// `tgw-attach-…`.
    pub id: String,
    /// The transit gateway.
    pub transit_gateway_id: String,
    /// The VPC.
    pub vpc_id: String,
    /// `available`, `pending`, `deleted`…
    pub state: String,
}

/// One side of a peering attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringEnd {
    /// `tgw-…`.
    pub transit_gateway_id: String,
    /// Its region.
    pub region: Option<Region>,
}

/// A transit gateway peering attachment, as seen from `region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringAttachment {
    /// `tgw-attach-…`.
    pub id: String,
    /// The region it was read in.
    pub region: Region,
    /// The requesting side.
    pub requester: PeeringEnd,
    /// The accepting side.
    pub accepter: PeeringEnd,
    /// `available`, `pendingAcceptance`, `rejected`, `deleted`…
    pub state: String,
}

impl PeeringAttachment {
    /// Given one of its transit gateways, the other side.
    pub fn peer_of(&self, tgw_id: &str) -> Option<&PeeringEnd> {
        if self.requester.transit_gateway_id == tgw_id {
            Some(&self.accepter)
        } else if self.accepter.transit_gateway_id == tgw_id {
            Some(&self.requester)
        } else {
            None
        }
    }
}

/// A VPC and every CIDR block associated with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// `vpc-…`.
    pub id: String,
    /// Associated IPv4 and IPv6 CIDR blocks.
    pub cidrs: Vec<Cidr>,
}

/// A VPC route table with its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRouteTable {
    /// `rtb-…`.
    pub id: String,
    /// The VPC.
    pub vpc_id: String,
    /// True for the VPC's main route table.
    pub main: bool,
    /// Subnets explicitly associated.
    pub subnet_ids: Vec<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Routes with a CIDR destination (prefix-list routes are not ours).
    pub routes: Vec<VpcRoute>,
}

/// A VPC route with every id AWS reports for its target: a route to an
/// instance shows the instance and its interface, so both are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRoute {
    /// The route in the core model.
    pub route: Route,
    /// Instance id, when the target is (on) an instance.
    pub instance_id: Option<String>,
    /// Network interface id, when the target is an interface.
    pub network_interface_id: Option<String>,
}

/// A transit gateway route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRouteTable {
    /// `tgw-rtb-…`.
    pub id: String,
    /// The transit gateway.
    pub transit_gateway_id: String,
    /// True when it is the TGW's default association table.
    pub default_association: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// What a transit gateway route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRouteAttachment {
    /// `tgw-attach-…`.
    pub attachment_id: String,
    /// `vpc`, `peering`, `vpn`, `direct-connect-gateway`, `connect`…
    pub resource_type: String,
}

/// A transit gateway route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRoute {
    /// The route in the core model.
    pub route: Route,
    /// The attachments it points at (several for ECMP).
    pub attachments: Vec<TgwRouteAttachment>,
}

/// An instance with the facts the failover watcher needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// The VPC.
    pub vpc_id: Option<String>,
    /// The availability zone.
    pub availability_zone: Option<String>,
    /// `running`, `stopped`…
    pub state: String,
    /// Primary network interface (device index 0).
    pub primary_interface_id: Option<String>,
    /// Every attached network interface.
    pub interface_ids: Vec<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Instance and system status checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusChecks {
    /// The instance status check reports `impaired`.
    pub instance_impaired: bool,
    /// The system status check reports `impaired`.
    pub system_impaired: bool,
}

/// The result of a tolerant write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write was applied.
    Applied,
    /// A create found the route already there (perhaps our own earlier
    /// write whose response was lost).
    AlreadyExists,
    /// A delete or replace found no route.
    NotFound,
}

/// The most writes kept in flight in one region, whatever the burst: enough
/// for EC2's default burst of 50 in one round trip, few enough that a raised
/// account limit does not open hundreds of connections from one Lambda.
pub const MAX_WRITES_IN_FLIGHT: usize = 100;

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

fn code_of<E: ProvideErrorMetadata>(err: &E) -> Option<&str> {
    err.code()
}

/// CreateRoute and ReplaceRoute take the same fields through builders of
/// different types: this sets destination and target on either and sends
/// it, keeping the error code for the caller's tolerance rules.
macro_rules! send_vpc_route {
    ($self:ident, $call:expr, $key:expr, $target:expr, $op:literal) => {{
        let dest = $key.destination.to_string();
        let call = $call.route_table_id(&$key.table.id);
        let call = if $key.destination.is_ipv6() {
            call.destination_ipv6_cidr_block(&dest)
        } else {
            call.destination_cidr_block(&dest)
        };
        let call = match $target {
            RouteTarget::TransitGateway(id) => call.transit_gateway_id(id),
            RouteTarget::NetworkInterface(id) => call.network_interface_id(id),
            RouteTarget::Instance(id) => call.instance_id(id),
            other => return Err($self.unsupported($op, other)),
        };
        call.send()
            .await
            .map(|_| ())
            .map_err(|e| (code_of(&e).map(str::to_owned), $self.err($op, e)))
    }};
}

/// The transit gateway twin of [`send_vpc_route`].
macro_rules! send_tgw_route {
    ($self:ident, $call:expr, $key:expr, $target:expr, $op:literal) => {{
        let call = $call
            .transit_gateway_route_table_id(&$key.table.id)
            .destination_cidr_block($key.destination.to_string());
        let call = match $target {
            RouteTarget::TransitGatewayAttachment(id) => call.transit_gateway_attachment_id(id),
            RouteTarget::Blackhole => call.blackhole(true),
            other => return Err($self.unsupported($op, other)),
        };
        call.send()
            .await
            .map(|_| ())
            .map_err(|e| (code_of(&e).map(str::to_owned), $self.err($op, e)))
    }};
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
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::aws(operation, &self.region, source)
    }

    /// Transit gateways tagged `lbgp:mesh=<mesh>`, not deleted.
    pub async fn mesh_transit_gateways(&self, mesh: &str) -> Result<Vec<TransitGateway>, Error> {
        let tag_filter = format!("tag:{TAG_MESH}");
        let items = self
            .client
            .describe_transit_gateways()
            .filters(filter(&tag_filter, &[mesh]))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeTransitGateways", e))?;
        let mut out: Vec<TransitGateway> = items
            .into_iter()
            .filter_map(|tgw| {
                let state = tgw.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
                let tags = tags(tgw.tags());
                // The filter is applied again here: a member must carry the
                // exact tag, whatever the server's filtering does.
                (tags.get(TAG_MESH).map(String::as_str) == Some(mesh)
                    && matches!(state.as_str(), "available" | "modifying"))
                .then(|| TransitGateway {
                    id: tgw.transit_gateway_id().unwrap_or_default().to_owned(),
                    region: self.region.clone(),
                    state,
                    default_association_route_table: tgw
                        .options()
                        .and_then(|o| o.association_default_route_table_id())
                        .filter(|_| {
                            tgw.options()
                                .and_then(|o| o.default_route_table_association())
                                .is_some_and(|v| v.as_str() == "enable")
                        })
                        .map(str::to_owned),
                    tags,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// VPC attachments of the given transit gateways (every state).
    pub async fn vpc_attachments(&self, tgw_ids: &[&str]) -> Result<Vec<VpcAttachment>, Error> {
        if tgw_ids.is_empty() {
            return Ok(vec![]);
        }
        let items = self
            .client
            .describe_transit_gateway_vpc_attachments()
            .filters(filter("transit-gateway-id", tgw_ids))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeTransitGatewayVpcAttachments", e))?;
        let mut out: Vec<VpcAttachment> = items
            .into_iter()
            .filter(|a| a.transit_gateway_id().is_some_and(|t| tgw_ids.contains(&t)))
            .map(|a| VpcAttachment {
                id: a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                transit_gateway_id: a.transit_gateway_id().unwrap_or_default().to_owned(),
                vpc_id: a.vpc_id().unwrap_or_default().to_owned(),
                state: a.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every peering attachment visible in this region.
    pub async fn peering_attachments(&self) -> Result<Vec<PeeringAttachment>, Error> {
        let items = self
            .client
            .describe_transit_gateway_peering_attachments()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeTransitGatewayPeeringAttachments", e))?;
        let end = |info: Option<&aws_sdk_ec2::types::PeeringTgwInfo>| PeeringEnd {
            transit_gateway_id: info
                .and_then(|i| i.transit_gateway_id())
                .unwrap_or_default()
                .to_owned(),
            region: info.and_then(|i| i.region()).and_then(Region::new),
        };
        let mut out: Vec<PeeringAttachment> = items
            .iter()
            .map(|p| PeeringAttachment {
                id: p.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                region: self.region.clone(),
                requester: end(p.requester_tgw_info()),
                accepter: end(p.accepter_tgw_info()),
                state: p.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// VPCs by id, with every associated CIDR block.
    pub async fn vpcs(&self, vpc_ids: &[&str]) -> Result<Vec<Vpc>, Error> {
        if vpc_ids.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        // The vpc-id filter takes at most 200 values per call.
        for chunk in vpc_ids.chunks(200) {
            let items = self
                .client
                .describe_vpcs()
                .filters(filter("vpc-id", chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeVpcs", e))?;
            for vpc in items {
                let mut cidrs = Vec::new();
                for assoc in vpc.cidr_block_association_set() {
                    let associated = assoc
                        .cidr_block_state()
                        .and_then(|s| s.state())
                        .is_none_or(|s| s.as_str() == "associated");
                    if let (true, Some(block)) = (associated, assoc.cidr_block()) {
                        cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                    }
                }
                if cidrs.is_empty()
                    && let Some(block) = vpc.cidr_block()
                {
                    cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                }
                for assoc in vpc.ipv6_cidr_block_association_set() {
                    let associated = assoc
                        .ipv6_cidr_block_state()
                        .and_then(|s| s.state())
                        .is_none_or(|s| s.as_str() == "associated");
                    if let (true, Some(block)) = (associated, assoc.ipv6_cidr_block()) {
                        cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                    }
                }
                cidrs.sort();
                cidrs.dedup();
                out.push(Vpc {
                    id: vpc.vpc_id().unwrap_or_default().to_owned(),
                    cidrs,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
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

    /// Route tables of the given VPCs, or with the given ids, with routes.
    pub async fn vpc_route_tables(&self, by: RouteTableQuery<'_>) -> Result<Vec<VpcRouteTable>, Error> {
        let (name, ids) = match by {
            RouteTableQuery::Vpcs(ids) => ("vpc-id", ids),
            RouteTableQuery::Ids(ids) => ("route-table-id", ids),
        };
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let items = self
                .client
                .describe_route_tables()
                .filters(filter(name, chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeRouteTables", e))?;
            for rt in items {
                let id = rt.route_table_id().unwrap_or_default().to_owned();
                let table = self.table_ref(TableKind::Vpc, &id);
                let mut routes = Vec::new();
                for r in rt.routes() {
                    let destination = match (r.destination_cidr_block(), r.destination_ipv6_cidr_block()) {
                        (Some(c), _) | (None, Some(c)) => self.parse_cidr(c, "DescribeRouteTables")?,
                        (None, None) => continue,
                    };
                    let origin = match r.origin().map(|o| o.as_str()) {
                        Some("CreateRouteTable") => RouteOrigin::Local,
                        Some("EnableVgwRoutePropagation") => RouteOrigin::Propagated,
                        _ => RouteOrigin::Static,
                    };
                    let target = if let Some(t) = r.transit_gateway_id() {
                        RouteTarget::TransitGateway(t.to_owned())
                    } else if let Some(eni) = r.network_interface_id() {
                        RouteTarget::NetworkInterface(eni.to_owned())
                    } else if let Some(i) = r.instance_id() {
                        RouteTarget::Instance(i.to_owned())
                    } else {
                        RouteTarget::Other(
                            [
                                r.gateway_id(),
                                r.nat_gateway_id(),
                                r.vpc_peering_connection_id(),
                                r.local_gateway_id(),
                                r.carrier_gateway_id(),
                                r.egress_only_internet_gateway_id(),
                                r.core_network_arn(),
                            ]
                            .into_iter()
                            .flatten()
                            .next()
                            .unwrap_or("unknown")
                            .to_owned(),
                        )
                    };
                    let state = match r.state().map(|s| s.as_str()) {
                        Some("blackhole") => RouteState::Blackhole,
                        _ => RouteState::Active,
                    };
                    routes.push(VpcRoute {
                        route: Route {
                            key: RouteKey {
                                table: table.clone(),
                                destination,
                            },
                            target,
                            state,
                            origin,
                        },
                        instance_id: r.instance_id().map(str::to_owned),
                        network_interface_id: r.network_interface_id().map(str::to_owned),
                    });
                }
                routes.sort_by(|a, b| a.route.cmp(&b.route));
                out.push(VpcRouteTable {
                    id,
                    vpc_id: rt.vpc_id().unwrap_or_default().to_owned(),
                    main: rt.associations().iter().any(|a| a.main() == Some(true)),
                    subnet_ids: rt
                        .associations()
                        .iter()
                        .filter_map(|a| a.subnet_id().map(str::to_owned))
                        .collect(),
                    tags: tags(rt.tags()),
                    routes,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Route tables of the given transit gateways.
    pub async fn tgw_route_tables(&self, tgws: &[&TransitGateway]) -> Result<Vec<TgwRouteTable>, Error> {
        if tgws.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<&str> = tgws.iter().map(|t| t.id.as_str()).collect();
        let items = self
            .client
            .describe_transit_gateway_route_tables()
            .filters(filter("transit-gateway-id", &ids))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeTransitGatewayRouteTables", e))?;
        let mut out: Vec<TgwRouteTable> = items
            .into_iter()
            .filter(|t| {
                t.transit_gateway_id().is_some_and(|id| ids.contains(&id))
                    && t.state().is_none_or(|s| s.as_str() == "available")
            })
            .map(|t| {
                let id = t.transit_gateway_route_table_id().unwrap_or_default().to_owned();
                let tgw_id = t.transit_gateway_id().unwrap_or_default().to_owned();
                let default_association = t.default_association_route_table() == Some(true)
                    || tgws.iter().any(|g| {
                        g.id == tgw_id && g.default_association_route_table.as_deref() == Some(id.as_str())
                    });
                TgwRouteTable {
                    id,
                    transit_gateway_id: tgw_id,
                    default_association,
                    tags: tags(t.tags()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every route of a TGW route table, static and propagated, IPv4 and
    /// IPv6. SearchTransitGatewayRoutes answers at most 1,000 routes and
    /// says `AdditionalRoutesAvailable` without a token when more matched.
    /// One search of the whole table comes first; when it is truncated, the
    /// two families are searched apart, and a truncated search is split
    /// into the two halves of its prefix
    /// (`route-search.subnet-of-match`, which includes the equal prefix)
    /// until every answer is complete. The searches of one depth go out
    /// together.
    ///
    /// A split loses the routes whose prefix *equals* the split prefix (they
    /// are in neither half). Rather than one exact-match search per split,
    /// one `route-search.supernet-of-match` just below each deepest split
    /// finds them all: every split prefix is a supernet of it, and no prefix
    /// has more than 129 supernets (at most two routes each, static and
    /// propagated), so those answers are complete.
    pub async fn tgw_routes(&self, route_table_id: &str) -> Result<Vec<TgwRoute>, Error> {
        self.tgw_routes_expecting(route_table_id, &[]).await
    }

    /// [`Ec2::tgw_routes`] for a caller that knows roughly what the table
    /// holds (the routes its ledger says it installed, say): the searches
    /// start at prefixes expected to hold at most [`EXPECTED_PER_SEARCH`]
    /// routes each, instead of discovering them by truncated searches. The
    /// answer is complete whatever the table really holds: a search that
    /// still comes back truncated is split as usual.
    pub async fn tgw_routes_expecting(
        &self,
        route_table_id: &str,
        expected: &[Cidr],
    ) -> Result<Vec<TgwRoute>, Error> {
        let mut seen: BTreeMap<(Cidr, RouteOrigin), TgwRoute> = BTreeMap::new();
        let roots: [ipnet::IpNet; 2] = [
            "0.0.0.0/0".parse().map_err(|_| self.bug("0.0.0.0/0"))?,
            "::/0".parse().map_err(|_| self.bug("::/0"))?,
        ];
        let expected: Vec<ipnet::IpNet> = expected.iter().map(|c| c.net()).collect();
        // `None`: one search of the whole table (both families), which is
        // all a table of fewer than 1,000 routes needs.
        let (mut frontier, mut splits): (Vec<Option<ipnet::IpNet>>, Vec<ipnet::IpNet>) =
            (Vec::new(), Vec::new());
        if expected.len() <= EXPECTED_PER_SEARCH {
            frontier.push(None);
        } else {
            let mut planned = Vec::new();
            for root in roots {
                plan_searches(root, &expected, &mut planned, &mut splits);
            }
            frontier.extend(planned.into_iter().map(Some));
        }
        while !frontier.is_empty() {
            let searches: Vec<_> = frontier
                .iter()
                .map(|scope| {
                    self.search_tgw_routes(route_table_id, scope.map(|s| ("route-search.subnet-of-match", s)))
                })
                .collect();
            let answers: Vec<_> = futures::stream::iter(searches)
                .buffered(SEARCHES_IN_FLIGHT)
                .try_collect()
                .await?;
            let mut next = Vec::new();
            for (scope, answer) in frontier.into_iter().zip(answers) {
                let Some((routes, truncated)) = answer else {
                    // A deleted table holds no routes: the caller forgets ours.
                    return Ok(vec![]);
                };
                seen.extend(
                    routes
                        .into_iter()
                        .map(|r| ((r.route.key.destination, r.route.origin), r)),
                );
                if !truncated {
                    continue;
                }
                let Some(scope) = scope else {
                    next.extend(roots.map(Some));
                    continue;
                };
                let halves = split(scope).ok_or_else(|| Error::Unexpected {
                    operation: "SearchTransitGatewayRoutes",
                    region: self.region.to_string(),
                    detail: format!(
                        "{route_table_id}: more than 1,000 routes match the host prefix {scope}; cannot read the table completely"
                    ),
                })?;
                splits.push(scope);
                next.extend(halves.map(Some));
            }
            frontier = next;
        }
        // The deepest splits: those no other split lies inside. Their
        // supernet searches go one level below them, so every split prefix
        // is a strict supernet of what is searched for: found whether or not
        // AWS counts a prefix as a supernet of itself.
        let below_deepest: Vec<ipnet::IpNet> = splits
            .iter()
            .filter(|s| !splits.iter().any(|other| other != *s && s.contains(other)))
            .filter_map(|s| split(*s).map(|[first, _]| first))
            .collect();
        let searches: Vec<_> = below_deepest
            .iter()
            .map(|scope| {
                self.search_tgw_routes(route_table_id, Some(("route-search.supernet-of-match", *scope)))
            })
            .collect();
        let answers: Vec<_> = futures::stream::iter(searches)
            .buffered(SEARCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        for (scope, answer) in below_deepest.iter().zip(answers) {
            let Some((routes, truncated)) = answer else {
                return Ok(vec![]);
            };
            if truncated {
                // At most two routes (static, propagated) per supernet: never.
                return Err(Error::Unexpected {
                    operation: "SearchTransitGatewayRoutes",
                    region: self.region.to_string(),
                    detail: format!(
                        "{route_table_id}: the supernets of {scope} came back truncated; cannot read the table completely"
                    ),
                });
            }
            seen.extend(
                routes
                    .into_iter()
                    .map(|r| ((r.route.key.destination, r.route.origin), r)),
            );
        }
        Ok(seen.into_values().collect())
    }

    /// One SearchTransitGatewayRoutes, of the whole table or with a
    /// `(search filter, prefix)`: the routes and whether more matched, or
    /// `None` when the table does not exist.
    async fn search_tgw_routes(
        &self,
        route_table_id: &str,
        search: Option<(&str, ipnet::IpNet)>,
    ) -> Result<Option<(Vec<TgwRoute>, bool)>, Error> {
        let table = self.table_ref(TableKind::TransitGateway, route_table_id);
        let mut call = self
            .client
            .search_transit_gateway_routes()
            .transit_gateway_route_table_id(route_table_id)
            .filters(filter("type", &["static", "propagated"]))
            .max_results(1000);
        if let Some((name, scope)) = search {
            call = call.filters(filter(name, &[&scope.to_string()]));
        }
        let response = call.send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) if code_of(&e) == Some("InvalidRouteTableID.NotFound") => return Ok(None),
            Err(e) => return Err(self.err("SearchTransitGatewayRoutes", e)),
        };
        let mut routes = Vec::with_capacity(response.routes().len());
        for r in response.routes() {
            let Some(dest) = r.destination_cidr_block() else {
                continue;
            };
            let destination = self.parse_cidr(dest, "SearchTransitGatewayRoutes")?;
            let attachments: Vec<TgwRouteAttachment> = r
                .transit_gateway_attachments()
                .iter()
                .map(|a| TgwRouteAttachment {
                    attachment_id: a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                    resource_type: a
                        .resource_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect();
            let origin = match r.r#type().map(|t| t.as_str()) {
                Some("propagated") => RouteOrigin::Propagated,
                _ => RouteOrigin::Static,
            };
            let state = r.state().map(|s| s.as_str()).unwrap_or("active");
            let target = match (state, attachments.first()) {
                ("blackhole", None) => RouteTarget::Blackhole,
                (_, Some(a)) => RouteTarget::TransitGatewayAttachment(a.attachment_id.clone()),
                (_, None) => RouteTarget::Other("none".to_owned()),
            };
            routes.push(TgwRoute {
                route: Route {
                    key: RouteKey {
                        table: table.clone(),
                        destination,
                    },
                    target,
                    state: if state == "blackhole" {
                        RouteState::Blackhole
                    } else {
                        RouteState::Active
                    },
                    origin,
                },
                attachments,
            });
        }
        Ok(Some((
            routes,
            response.additional_routes_available() == Some(true),
        )))
    }

    fn bug(&self, what: &str) -> Error {
        Error::Unexpected {
            operation: "internal",
            region: self.region.to_string(),
            detail: format!("constant {what} does not parse"),
        }
    }

    /// Instances tagged `lbgp:failover-group` (any value), not terminated.
    pub async fn failover_instances(&self) -> Result<Vec<Instance>, Error> {
        let items = self
            .client
            .describe_instances()
            .filters(filter("tag-key", &[TAG_FAILOVER_GROUP]))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeInstances", e))?;
        let mut out = Vec::new();
        for reservation in items {
            for i in reservation.instances() {
                let mut interfaces: Vec<(i32, String)> = i
                    .network_interfaces()
                    .iter()
                    .filter_map(|n| {
                        Some((
                            n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                            n.network_interface_id()?.to_owned(),
                        ))
                    })
                    .collect();
                interfaces.sort();
                let tags = tags(i.tags());
                if !tags.contains_key(TAG_FAILOVER_GROUP) {
                    continue;
                }
                out.push(Instance {
                    id: i.instance_id().unwrap_or_default().to_owned(),
                    vpc_id: i.vpc_id().map(str::to_owned),
                    availability_zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .map(str::to_owned),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    primary_interface_id: interfaces
                        .iter()
                        .find(|(idx, _)| *idx == 0)
                        .map(|(_, id)| id.clone()),
                    interface_ids: interfaces.into_iter().map(|(_, id)| id).collect(),
                    tags,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Status checks of the given instances (absent: not yet reported, which
    /// is not impaired).
    pub async fn status_checks(&self, ids: &[&str]) -> Result<BTreeMap<String, StatusChecks>, Error> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let items = self
            .client
            .describe_instance_status()
            .set_instance_ids(Some(ids.iter().map(|s| (*s).to_owned()).collect()))
            .include_all_instances(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeInstanceStatus", e))?;
        Ok(items
            .into_iter()
            .filter_map(|s| {
                let impaired = |summary: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    summary
                        .and_then(|s| s.status())
                        .is_some_and(|s| s.as_str() == "impaired")
                };
                Some((
                    s.instance_id()?.to_owned(),
                    StatusChecks {
                        instance_impaired: impaired(s.instance_status()),
                        system_impaired: impaired(s.system_status()),
                    },
                ))
            })
            .collect())
    }

    /// Availability zone of each subnet.
    pub async fn subnet_zones(&self, subnet_ids: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        self.subnet_zones_by("subnet-id", subnet_ids).await
    }

    /// Availability zone of every subnet of these VPCs: for a caller that
    /// knows the VPCs before it has read their route tables.
    pub async fn vpc_subnet_zones(&self, vpc_ids: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        self.subnet_zones_by("vpc-id", vpc_ids).await
    }

    async fn subnet_zones_by(&self, name: &str, values: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        if values.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut zones = BTreeMap::new();
        for chunk in values.chunks(200) {
            let items = self
                .client
                .describe_subnets()
                .filters(filter(name, chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeSubnets", e))?;
            zones.extend(
                items
                    .into_iter()
                    .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.availability_zone()?.to_owned()))),
            );
        }
        Ok(zones)
    }

    /// Reads the static route at `key`, if any (after a create reported
    /// `RouteAlreadyExists`, to tell our own lost write from someone else's).
    pub async fn read_static_route(&self, key: &RouteKey) -> Result<Option<Route>, Error> {
        let routes: Vec<Route> = match key.table.kind {
            TableKind::Vpc => self
                .vpc_route_tables(RouteTableQuery::Ids(&[key.table.id.as_str()]))
                .await?
                .into_iter()
                .flat_map(|t| t.routes.into_iter().map(|r| r.route))
                .collect(),
            TableKind::TransitGateway => {
                let response = self
                    .client
                    .search_transit_gateway_routes()
                    .transit_gateway_route_table_id(&key.table.id)
                    .filters(filter(
                        "route-search.exact-match",
                        &[&key.destination.to_string()],
                    ))
                    .filters(filter("type", &["static"]))
                    .send()
                    .await
                    .map_err(|e| self.err("SearchTransitGatewayRoutes", e))?;
                response
                    .routes()
                    .iter()
                    .filter_map(|r| {
                        let id = r
                            .transit_gateway_attachments()
                            .first()?
                            .transit_gateway_attachment_id()?;
                        Some(Route {
                            key: key.clone(),
                            target: RouteTarget::TransitGatewayAttachment(id.to_owned()),
                            state: RouteState::Active,
                            origin: RouteOrigin::Static,
                        })
                    })
                    .collect()
            }
        };
        Ok(routes
            .into_iter()
            .find(|r| r.key == *key && r.origin == RouteOrigin::Static))
    }

    /// Creates a route. `AlreadyExists` when the destination is taken.
    pub async fn create_route(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let result = match key.table.kind {
            TableKind::Vpc => send_vpc_route!(self, self.client.create_route(), key, target, "CreateRoute"),
            TableKind::TransitGateway => send_tgw_route!(
                self,
                self.client.create_transit_gateway_route(),
                key,
                target,
                "CreateTransitGatewayRoute"
            ),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err((Some(code), _)) if code == "RouteAlreadyExists" => Ok(WriteOutcome::AlreadyExists),
            Err((_, e)) => Err(e),
        }
    }

    /// Repoints a route. `NotFound` when there is no route to repoint.
    pub async fn replace_route(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let result = match key.table.kind {
            TableKind::Vpc => send_vpc_route!(self, self.client.replace_route(), key, target, "ReplaceRoute"),
            TableKind::TransitGateway => send_tgw_route!(
                self,
                self.client.replace_transit_gateway_route(),
                key,
                target,
                "ReplaceTransitGatewayRoute"
            ),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            // EC2 answers ReplaceRoute of a missing VPC route with
            // InvalidParameterValue ("There is no route defined for …"); the
            // caller then creates it, and a genuinely invalid parameter fails
            // that create with the same error, so nothing is hidden.
            Err((Some(code), _))
                if code == "InvalidRoute.NotFound"
                    || (code == "InvalidParameterValue" && key.table.kind == TableKind::Vpc) =>
            {
                Ok(WriteOutcome::NotFound)
            }
            Err((_, e)) => Err(e),
        }
    }

    /// Deletes a route. `NotFound` when it is already gone.
    pub async fn delete_route(&self, key: &RouteKey) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let dest = key.destination.to_string();
        let result = match key.table.kind {
            TableKind::Vpc => {
                let mut call = self.client.delete_route().route_table_id(&key.table.id);
                call = if key.destination.is_ipv6() {
                    call.destination_ipv6_cidr_block(&dest)
                } else {
                    call.destination_cidr_block(&dest)
                };
                call.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (code_of(&e).map(str::to_owned), self.err("DeleteRoute", e)))
            }
            TableKind::TransitGateway => self
                .client
                .delete_transit_gateway_route()
                .transit_gateway_route_table_id(&key.table.id)
                .destination_cidr_block(&dest)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        code_of(&e).map(str::to_owned),
                        self.err("DeleteTransitGatewayRoute", e),
                    )
                }),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err((Some(code), _)) if code == "InvalidRoute.NotFound" => Ok(WriteOutcome::NotFound),
            Err((_, e)) => Err(e),
        }
    }

    fn unsupported(&self, operation: &'static str, target: &RouteTarget) -> Error {
        Error::Unexpected {
            operation,
            region: self.region.to_string(),
            detail: format!("target {target:?} cannot be written by {operation}"),
        }
    }
}

/// Which route tables to read.
#[derive(Debug, Clone, Copy)]
pub enum RouteTableQuery<'a> {
    /// Every route table of these VPCs.
    Vpcs(&'a [&'a str]),
    /// These route tables.
    Ids(&'a [&'a str]),
}

/// SearchTransitGatewayRoutes calls one table read keeps in flight: the
/// searches of one depth go out together, within EC2's request rate.
pub const SEARCHES_IN_FLIGHT: usize = 8;

/// Routes a search is planned for when the caller says what it expects: a
/// fifth of the 1,000 a search answers is left for routes it did not expect.
pub const EXPECTED_PER_SEARCH: usize = 800;

/// Splits `scope` into the searches that each cover at most
/// [`EXPECTED_PER_SEARCH`] of the `expected` prefixes (those inside
/// `scope`), pushing them to `searches` and every prefix split on the way to
/// `splits`.
fn plan_searches(
    scope: ipnet::IpNet,
    expected: &[ipnet::IpNet],
    searches: &mut Vec<ipnet::IpNet>,
    splits: &mut Vec<ipnet::IpNet>,
) {
    let inside: Vec<ipnet::IpNet> = expected.iter().filter(|e| scope.contains(*e)).copied().collect();
    match split(scope) {
        Some(halves) if inside.len() > EXPECTED_PER_SEARCH => {
            splits.push(scope);
            for half in halves {
                plan_searches(half, &inside, searches, splits);
            }
        }
        _ => searches.push(scope),
    }
}

/// The two halves of a prefix, or `None` for a host prefix.
fn split(net: ipnet::IpNet) -> Option<[ipnet::IpNet; 2]> {
    let mut halves = net.subnets(net.prefix_len().checked_add(1)?).ok()?;
    Some([halves.next()?, halves.next()?])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_halves() {
        let [a, b] = split("10.0.0.0/8".parse().unwrap()).unwrap();
        assert_eq!(a.to_string(), "10.0.0.0/9");
        assert_eq!(b.to_string(), "10.128.0.0/9");
        assert!(split("10.0.0.1/32".parse().unwrap()).is_none());
        assert_eq!(split("::/0".parse().unwrap()).unwrap()[1].to_string(), "8000::/1");
    }
}
