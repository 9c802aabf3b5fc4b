//! The path tracer: where a packet leaving a VPC route table toward an
//! address goes, hop by hop, by longest-prefix match, as AWS forwards it:
//!
//! VPC route table → `local` (delivered in the VPC) | a legacy router (the
//! legacy network delivers it to the VPC that owns the address, if that VPC
//! still has a healthy router of its own) | the VPC's transit gateway →
//! the TGW route table *associated with the attachment the packet arrived
//! on* → a VPC attachment (delivered) or a peering attachment → the peer's
//! table associated with that peering → …
//!
//! Pure: it answers from a [`Network`] snapshot (what the functions read),
//! so the migration preflight, `lbgpctl trace` and the zero-downtime tests
//! all ask the same question the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::prefix::Cidr;

/// Where a VPC route sends a packet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum VpcHop {
    /// The VPC's own `local` route.
    Local,
    /// A transit gateway (`tgw-…`).
    TransitGateway(String),
    /// A router: an instance (`i-…`) or a network interface (`eni-…`).
    Router(String),
    /// A route in state `blackhole`, or one toward a target gone.
    Blackhole,
    /// Anything else (internet, NAT, VPN gateways…): out of the mesh.
    Other(String),
}

/// A VPC route table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VpcTable {
    /// `rtb-…`.
    pub id: String,
    /// Its VPC.
    pub vpc: String,
    /// The VPC's main table (serves every subnet without a table of its own).
    pub main: bool,
    /// `(destination, hop)` of every route, `local` included.
    pub routes: Vec<(Cidr, VpcHop)>,
}

/// A TGW route table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TgwTable {
    /// `tgw-rtb-…`.
    pub id: String,
    /// Its transit gateway.
    pub tgw: String,
    /// `(destination, attachment)` of every route; `None`: a blackhole route.
    pub routes: Vec<(Cidr, Option<String>)>,
}

/// What a TGW attachment connects, seen from one of its transit gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentEnd {
    /// A VPC.
    Vpc(String),
    /// Another transit gateway, over a peering.
    Peer(String),
}

/// One side of a TGW attachment: a VPC attachment has one, a peering two
/// (one per transit gateway, each with its own association).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentSide {
    /// `tgw-attach-…`.
    pub id: String,
    /// The transit gateway of this side.
    pub tgw: String,
    /// What is at the other end.
    pub end: AttachmentEnd,
    /// `available` (anything else forwards nothing).
    pub available: bool,
    /// The TGW route table this side is associated with: it routes what
    /// arrives over the attachment (none: dropped).
    pub association: Option<String>,
}

/// A router a VPC route can point at (legacy routers: the old network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Router {
    /// `i-…`.
    pub instance: String,
    /// Its network interfaces.
    pub interfaces: Vec<String>,
    /// Its VPC.
    pub vpc: String,
    /// Running and healthy.
    pub healthy: bool,
    /// Part of the legacy network (delivers to any VPC that has a healthy
    /// legacy router of its own).
    pub legacy: bool,
}

/// What the tracer knows about the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Network {
    /// VPC id → its CIDRs.
    pub vpcs: BTreeMap<String, Vec<Cidr>>,
    /// VPC route tables.
    pub vpc_tables: Vec<VpcTable>,
    /// TGW route tables.
    pub tgw_tables: Vec<TgwTable>,
    /// TGW attachments, one entry per side.
    pub attachments: Vec<AttachmentSide>,
    /// Routers.
    pub routers: Vec<Router>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum Hop {
    /// A VPC route table matched `route`.
    VpcTable {
        /// `rtb-…`.
        table: String,
        /// Its VPC.
        vpc: String,
        /// The route that matched.
        route: Cidr,
    },
    /// A TGW route table matched `route`, arriving over `arrived_on`.
    TgwTable {
        /// The transit gateway.
        tgw: String,
        /// `tgw-rtb-…`.
        table: String,
        /// The attachment the packet arrived on.
        arrived_on: String,
        /// The route that matched.
        route: Cidr,
    },
    /// Handed to a legacy router.
    LegacyRouter {
        /// `i-…`.
        router: String,
        /// Its VPC.
        vpc: String,
    },
}

/// How a path ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "ending")]
pub enum Ending {
    /// Delivered inside the VPC that owns the address, over the mesh.
    Delivered {
        /// The VPC.
        vpc: String,
    },
    /// Handed to a healthy legacy router; the legacy network delivers it to
    /// the VPC that owns the address through that VPC's legacy router.
    ViaLegacyRouter {
        /// The router it was handed to.
        router: String,
        /// The VPC that receives it.
        vpc: String,
    },
    /// Dropped: a blackhole route, a target that cannot forward, or an
    /// attachment with no route table association.
    Blackhole {
        /// Where, and why.
        at: String,
    },
    /// No route matched.
    NoRoute {
        /// The table where nothing matched.
        at: String,
    },
    /// The packet came back to a place it had been.
    Loop {
        /// Where the loop closed.
        at: String,
    },
}

impl Ending {
    /// True when the packet reaches the VPC that owns the address.
    pub fn reached(&self) -> bool {
        matches!(self, Ending::Delivered { .. } | Ending::ViaLegacyRouter { .. })
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Delivered { vpc } => write!(f, "delivered in {vpc}"),
            Ending::ViaLegacyRouter { router, vpc } => write!(f, "via legacy router {router} to {vpc}"),
            Ending::Blackhole { at } => write!(f, "blackhole at {at}"),
            Ending::NoRoute { at } => write!(f, "no route at {at}"),
            Ending::Loop { at } => write!(f, "loop at {at}"),
        }
    }
}

/// A traced path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// The table it started from.
    pub from: String,
    /// The destination address.
    pub to: IpAddr,
    /// Every step.
    pub hops: Vec<Hop>,
    /// How it ended.
    pub ending: Ending,
}

/// A path longer than this is a loop whatever it visited (AWS's own
/// forwarding has no such bound; a finite snapshot cannot need more).
const MAX_HOPS: usize = 64;

/// Longest-prefix match over `routes`.
fn longest<T>(routes: &[(Cidr, T)], to: IpAddr) -> Option<&(Cidr, T)> {
    routes
        .iter()
        .filter(|(c, _)| c.net().contains(&to))
        .max_by_key(|(c, _)| c.prefix_len())
}

impl Network {
    fn owner_of(&self, to: IpAddr) -> Option<&str> {
        self.vpcs
            .iter()
            .filter_map(|(vpc, cidrs)| {
                cidrs
                    .iter()
                    .filter(|c| c.net().contains(&to))
                    .map(|c| c.prefix_len())
                    .max()
                    .map(|len| (len, vpc.as_str()))
            })
            .max()
            .map(|(_, vpc)| vpc)
    }

    fn router(&self, id: &str) -> Option<&Router> {
        self.routers
            .iter()
            .find(|r| r.instance == id || r.interfaces.iter().any(|i| i == id))
    }

    /// The VPC's side of its attachment to `tgw`, if available.
    fn vpc_attachment(&self, vpc: &str, tgw: &str) -> Option<&AttachmentSide> {
        self.attachments
            .iter()
            .filter(|a| a.tgw == tgw && a.end == AttachmentEnd::Vpc(vpc.to_owned()) && a.available)
            .min_by(|a, b| a.id.cmp(&b.id))
    }

    fn side(&self, id: &str, tgw: &str) -> Option<&AttachmentSide> {
        self.attachments.iter().find(|a| a.id == id && a.tgw == tgw)
    }

    /// The tables of `vpc` that serve subnets or are its main table, by id.
    pub fn tables_of<'a>(&'a self, vpc: &'a str) -> impl Iterator<Item = &'a VpcTable> + 'a {
        self.vpc_tables.iter().filter(move |t| t.vpc == vpc)
    }

    /// Traces a packet leaving VPC route table `table` toward `to`.
    pub fn trace(&self, table: &str, to: IpAddr) -> Trace {
        let mut hops = Vec::new();
        let ending = self.walk(table, to, &mut hops);
        Trace {
            from: table.to_owned(),
            to,
            hops,
            ending,
        }
    }

    /// Traces a packet arriving at transit gateway `tgw` over `attachment`
    /// toward `to` (the TGWs' part of a path alone).
    pub fn trace_tgw(&self, tgw: &str, attachment: &str, to: IpAddr) -> Trace {
        let mut hops = Vec::new();
        let ending = self.through_tgws(tgw, attachment, to, &mut hops);
        Trace {
            from: format!("{tgw} ({attachment})"),
            to,
            hops,
            ending,
        }
    }

    fn walk(&self, table: &str, to: IpAddr, hops: &mut Vec<Hop>) -> Ending {
        let Some(t) = self.vpc_tables.iter().find(|t| t.id == table) else {
            return Ending::NoRoute {
                at: format!("{table} (not read)"),
            };
        };
        let Some((route, hop)) = longest(&t.routes, to) else {
            return Ending::NoRoute { at: t.id.clone() };
        };
        hops.push(Hop::VpcTable {
            table: t.id.clone(),
            vpc: t.vpc.clone(),
            route: *route,
        });
        match hop {
            VpcHop::Local => match self.owner_of(to) {
                Some(vpc) if vpc == t.vpc => Ending::Delivered { vpc: t.vpc.clone() },
                _ => Ending::NoRoute {
                    at: format!("{} (local, but no such address in {})", t.id, t.vpc),
                },
            },
            VpcHop::Blackhole => Ending::Blackhole {
                at: format!("{} {route}", t.id),
            },
            VpcHop::Other(target) => Ending::NoRoute {
                at: format!("{} {route} leaves the network through {target}", t.id),
            },
            VpcHop::Router(id) => self.hand_to_router(id, &t.vpc, to, hops),
            VpcHop::TransitGateway(tgw) => match self.vpc_attachment(&t.vpc, tgw) {
                Some(a) => self.through_tgws(tgw, &a.id, to, hops),
                None => Ending::Blackhole {
                    at: format!("{} {route}: {} has no available attachment to {tgw}", t.id, t.vpc),
                },
            },
        }
    }

    fn hand_to_router(&self, id: &str, from_vpc: &str, to: IpAddr, hops: &mut Vec<Hop>) -> Ending {
        let Some(router) = self.router(id).filter(|r| r.healthy) else {
            return Ending::Blackhole {
                at: format!("router {id} (down or unknown)"),
            };
        };
        hops.push(Hop::LegacyRouter {
            router: router.instance.clone(),
            vpc: router.vpc.clone(),
        });
        if !router.legacy {
            return Ending::NoRoute {
                at: format!(
                    "router {} (not a legacy router: lbgp does not trace through it)",
                    router.instance
                ),
            };
        }
        let Some(owner) = self.owner_of(to) else {
            return Ending::NoRoute {
                at: format!("legacy network: no VPC owns {to}"),
            };
        };
        if owner == from_vpc {
            return Ending::Delivered {
                vpc: owner.to_owned(),
            };
        }
        // The legacy network reaches a VPC through that VPC's own legacy
        // routers: none healthy there, nothing is delivered.
        match self
            .routers
            .iter()
            .find(|r| r.legacy && r.healthy && r.vpc == owner)
        {
            Some(_) => Ending::ViaLegacyRouter {
                router: router.instance.clone(),
                vpc: owner.to_owned(),
            },
            None => Ending::Blackhole {
                at: format!("legacy network: {owner} has no healthy legacy router"),
            },
        }
    }

    fn through_tgws(
        &self,
        first_tgw: &str,
        first_attachment: &str,
        to: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Ending {
        let mut tgw = first_tgw.to_owned();
        let mut arrived_on = first_attachment.to_owned();
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        while hops.len() < MAX_HOPS {
            if !seen.insert((tgw.clone(), arrived_on.clone())) {
                return Ending::Loop {
                    at: format!("{tgw} (arriving on {arrived_on} again)"),
                };
            }
            let Some(side) = self.side(&arrived_on, &tgw) else {
                return Ending::Blackhole {
                    at: format!("{tgw}: attachment {arrived_on} not read"),
                };
            };
            let Some(table_id) = &side.association else {
                return Ending::Blackhole {
                    at: format!("{tgw}: {arrived_on} is associated with no route table"),
                };
            };
            let Some(table) = self.tgw_tables.iter().find(|t| &t.id == table_id) else {
                return Ending::NoRoute {
                    at: format!("{table_id} (not read)"),
                };
            };
            let Some((route, next)) = longest(&table.routes, to) else {
                return Ending::NoRoute { at: table.id.clone() };
            };
            hops.push(Hop::TgwTable {
                tgw: tgw.clone(),
                table: table.id.clone(),
                arrived_on: arrived_on.clone(),
                route: *route,
            });
            let Some(next) = next else {
                return Ending::Blackhole {
                    at: format!("{} {route} (blackhole route)", table.id),
                };
            };
            let Some(out) = self.side(next, &tgw).filter(|a| a.available) else {
                return Ending::Blackhole {
                    at: format!("{} {route}: attachment {next} is not available", table.id),
                };
            };
            match &out.end {
                AttachmentEnd::Vpc(vpc) => {
                    return match self.owner_of(to) {
                        Some(owner) if owner == vpc => Ending::Delivered { vpc: vpc.clone() },
                        _ => Ending::NoRoute {
                            at: format!("{vpc} (reached over {next}, but {to} is not in it)"),
                        },
                    };
                }
                AttachmentEnd::Peer(peer) => {
                    tgw.clone_from(peer);
                    arrived_on.clone_from(next);
                }
            }
        }
        Ending::Loop {
            at: format!("{tgw} (more than {MAX_HOPS} hops)"),
        }
    }
}

/// One address per CIDR of a VPC to trace toward: the first host of each
/// block (a packet to any address of the block takes the same path).
pub fn probe_addresses(cidrs: &[Cidr]) -> Vec<IpAddr> {
    cidrs
        .iter()
        .map(|c| {
            let net = c.net();
            net.hosts().next().unwrap_or_else(|| net.network())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Two regions: vpc-a on tgw-a, vpc-b on tgw-b, peered; vpc-a also has
    /// a legacy router, and so has vpc-c (legacy only).
    fn network() -> Network {
        let side = |id: &str, tgw: &str, end: AttachmentEnd, assoc: &str| AttachmentSide {
            id: id.into(),
            tgw: tgw.into(),
            end,
            available: true,
            association: Some(assoc.into()),
        };
        Network {
            vpcs: BTreeMap::from([
                ("vpc-a".into(), vec![cidr("10.1.0.0/16")]),
                ("vpc-b".into(), vec![cidr("10.2.0.0/16")]),
                ("vpc-c".into(), vec![cidr("10.3.0.0/16")]),
            ]),
            vpc_tables: vec![
                VpcTable {
                    id: "rtb-a".into(),
                    vpc: "vpc-a".into(),
                    main: true,
                    routes: vec![
                        (cidr("10.1.0.0/16"), VpcHop::Local),
                        (cidr("10.0.0.0/8"), VpcHop::TransitGateway("tgw-a".into())),
                        (cidr("10.3.0.0/16"), VpcHop::Router("i-ra".into())),
                    ],
                },
                VpcTable {
                    id: "rtb-b".into(),
                    vpc: "vpc-b".into(),
                    main: true,
                    routes: vec![
                        (cidr("10.2.0.0/16"), VpcHop::Local),
                        (cidr("10.0.0.0/8"), VpcHop::TransitGateway("tgw-b".into())),
                    ],
                },
            ],
            tgw_tables: vec![
                TgwTable {
                    id: "tgw-rtb-a".into(),
                    tgw: "tgw-a".into(),
                    routes: vec![
                        (cidr("10.1.0.0/16"), Some("att-a".into())),
                        (cidr("10.2.0.0/16"), Some("peer-ab".into())),
                    ],
                },
                TgwTable {
                    id: "tgw-rtb-b".into(),
                    tgw: "tgw-b".into(),
                    routes: vec![
                        (cidr("10.2.0.0/16"), Some("att-b".into())),
                        (cidr("10.1.0.0/16"), Some("peer-ab".into())),
                    ],
                },
            ],
            attachments: vec![
                side("att-a", "tgw-a", AttachmentEnd::Vpc("vpc-a".into()), "tgw-rtb-a"),
                side("att-b", "tgw-b", AttachmentEnd::Vpc("vpc-b".into()), "tgw-rtb-b"),
                side(
                    "peer-ab",
                    "tgw-a",
                    AttachmentEnd::Peer("tgw-b".into()),
                    "tgw-rtb-a",
                ),
                side(
                    "peer-ab",
                    "tgw-b",
                    AttachmentEnd::Peer("tgw-a".into()),
                    "tgw-rtb-b",
                ),
            ],
            routers: vec![
                Router {
                    instance: "i-ra".into(),
                    interfaces: vec!["eni-ra".into()],
                    vpc: "vpc-a".into(),
                    healthy: true,
                    legacy: true,
                },
                Router {
                    instance: "i-rc".into(),
                    interfaces: vec!["eni-rc".into()],
                    vpc: "vpc-c".into(),
                    healthy: true,
                    legacy: true,
                },
            ],
        }
    }

    #[test]
    fn over_the_mesh_both_ways() {
        let net = network();
        let there = net.trace("rtb-a", ip("10.2.0.1"));
        assert_eq!(
            there.ending,
            Ending::Delivered { vpc: "vpc-b".into() },
            "{there:?}"
        );
        assert_eq!(there.hops.len(), 3);
        let back = net.trace("rtb-b", ip("10.1.0.1"));
        assert!(back.ending.reached(), "{back:?}");
    }

    #[test]
    fn local_and_legacy() {
        let net = network();
        assert_eq!(
            net.trace("rtb-a", ip("10.1.2.3")).ending,
            Ending::Delivered { vpc: "vpc-a".into() }
        );
        assert_eq!(
            net.trace("rtb-a", ip("10.3.0.1")).ending,
            Ending::ViaLegacyRouter {
                router: "i-ra".into(),
                vpc: "vpc-c".into()
            }
        );
        // The far end's legacy router down: nothing delivers it.
        let mut down = network();
        down.routers[1].healthy = false;
        assert!(matches!(
            down.trace("rtb-a", ip("10.3.0.1")).ending,
            Ending::Blackhole { .. }
        ));
        // The near router down: the route is a blackhole.
        let mut near = network();
        near.routers[0].healthy = false;
        assert!(matches!(
            near.trace("rtb-a", ip("10.3.0.1")).ending,
            Ending::Blackhole { .. }
        ));
    }

    #[test]
    fn what_breaks_a_path_is_named() {
        // No route in the peer's table.
        let mut net = network();
        net.tgw_tables[1]
            .routes
            .retain(|(c, _)| *c != cidr("10.2.0.0/16"));
        assert_eq!(
            net.trace("rtb-a", ip("10.2.0.1")).ending,
            Ending::NoRoute {
                at: "tgw-rtb-b".into()
            }
        );
        // A peering side with no association drops what arrives.
        let mut net = network();
        net.attachments[3].association = None;
        assert!(matches!(
            net.trace("rtb-a", ip("10.2.0.1")).ending,
            Ending::Blackhole { .. }
        ));
        // A peering not available.
        let mut net = network();
        net.attachments[2].available = false;
        assert!(matches!(
            net.trace("rtb-a", ip("10.2.0.1")).ending,
            Ending::Blackhole { .. }
        ));
        // No route at all.
        assert_eq!(
            network().trace("rtb-b", ip("192.168.0.1")).ending,
            Ending::NoRoute { at: "rtb-b".into() }
        );
    }

    #[test]
    fn loops_are_found() {
        let mut net = network();
        // Each side sends 10.9/16 to the other.
        net.tgw_tables[0]
            .routes
            .push((cidr("10.9.0.0/16"), Some("peer-ab".into())));
        net.tgw_tables[1]
            .routes
            .push((cidr("10.9.0.0/16"), Some("peer-ab".into())));
        assert!(matches!(
            net.trace("rtb-a", ip("10.9.0.1")).ending,
            Ending::Loop { .. }
        ));
    }

    #[test]
    fn longest_prefix_wins() {
        let mut net = network();
        // A more specific route toward the legacy router takes 10.2.0.0/24
        // off the mesh (and vpc-b has no legacy router: dropped).
        net.vpc_tables[0]
            .routes
            .push((cidr("10.2.0.0/24"), VpcHop::Router("eni-ra".into())));
        assert!(matches!(
            net.trace("rtb-a", ip("10.2.0.1")).ending,
            Ending::Blackhole { .. }
        ));
        assert!(net.trace("rtb-a", ip("10.2.1.1")).ending.reached());
    }

    #[test]
    fn probes_are_inside_their_blocks() {
        let blocks = [cidr("10.1.0.0/16"), cidr("2600:1f18::/56")];
        let probes = probe_addresses(&blocks);
        assert_eq!(probes[0], ip("10.1.0.1"));
        assert!(blocks[1].net().contains(&probes[1]));
    }
}
