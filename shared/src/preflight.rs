//! A migration's preflight: what must hold before a VPC is cut over to the
//! mesh (or rolled back onto the legacy network), checked on what the
//! injector read, with the path tracer. If any check fails the cutover is
//! refused and nothing changes.
//!
//! Cutover of X: `attached` (X's attachment to a mesh TGW is available),
//! `aggregates` (each of X's tables sends every other mesh VPC's CIDRs to
//! that TGW), `l_bgp_converged` (X's CIDRs reach X from every other mesh
//! VPC's TGW, and theirs reach them from X's: L-BGP has installed them),
//! `mesh_path` (with the cutover's changes applied, the tracer delivers from
//! every table of X to every other mesh VPC and back, over the mesh).
//! Rollback of X: `legacy_group_healthy` (every table of X can be served by
//! a healthy member of its legacy group).

use std::collections::BTreeMap;

use crate::migrate::{MeshVpc, TAG_LEGACY_GROUP};
use crate::model::{Region, RouteOrigin, RouteState, RouteTarget};
use crate::plan::{Change, ChangeOp};
use crate::prefix::Cidr;
use crate::report::PreflightCheck;
use crate::topology::{
    Instance, InstanceState, Lifecycle, PeeringAttachment, TgwRoute, TgwRouteTable, VpcAttachment,
    VpcRouteTable,
};
use crate::trace::{self, AttachmentEnd, AttachmentSide, Network, Router, TgwTable, VpcHop, VpcTable};

/// The transit gateways' side of the network, as read for a preflight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TgwSnapshot {
    /// TGW route tables with their routes.
    pub tables: Vec<(TgwRouteTable, Vec<TgwRoute>)>,
    /// VPC attachments with the route table each is associated with.
    pub vpc_attachments: Vec<(VpcAttachment, Option<String>)>,
    /// Peering attachments, as read in each region (one entry per side).
    pub peerings: Vec<PeeringAttachment>,
}

/// Builds the tracer's network from what the functions read. `routers`
/// are the failover instances; `legacy_groups` the `(vpc, group)` pairs of
/// legacy VPCs (their members are the legacy network).
pub fn network(
    vpcs: &[MeshVpc],
    tables: &[(Region, VpcRouteTable)],
    tgw: &TgwSnapshot,
    routers: &[Instance],
) -> Network {
    let legacy_groups: Vec<(String, String)> = vpcs
        .iter()
        .filter_map(|v| v.legacy_group().map(|g| (v.vpc.id.clone(), g.to_owned())))
        .collect();
    let vpc_tables = tables
        .iter()
        .map(|(_, t)| VpcTable {
            id: t.id.clone(),
            vpc: t.vpc_id.clone(),
            main: t.main,
            routes: t
                .routes
                .iter()
                .map(|r| {
                    let hop = if r.route.origin == RouteOrigin::Local {
                        VpcHop::Local
                    } else if r.route.state == RouteState::Blackhole {
                        VpcHop::Blackhole
                    } else {
                        match &r.route.target {
                            RouteTarget::TransitGateway(id) => VpcHop::TransitGateway(id.clone()),
                            RouteTarget::NetworkInterface(id) | RouteTarget::Instance(id) => {
                                VpcHop::Router(id.clone())
                            }
                            RouteTarget::Blackhole => VpcHop::Blackhole,
                            other => VpcHop::Other(other.to_string()),
                        }
                    };
                    (r.route.key.destination, hop)
                })
                .collect(),
        })
        .collect();
    let tgw_tables = tgw
        .tables
        .iter()
        .map(|(t, routes)| TgwTable {
            id: t.id.clone(),
            tgw: t.transit_gateway_id.clone(),
            routes: routes
                .iter()
                .map(|r| {
                    let next = match (&r.route.state, &r.route.target) {
                        (RouteState::Active, RouteTarget::TransitGatewayAttachment(a)) => Some(a.clone()),
                        (RouteState::Active, _) => r.attachments.first().map(|a| a.attachment_id.clone()),
                        _ => None,
                    };
                    (r.route.key.destination, next)
                })
                .collect(),
        })
        .collect();
    let mut attachments: Vec<AttachmentSide> = tgw
        .vpc_attachments
        .iter()
        .map(|(a, association)| AttachmentSide {
            id: a.id.clone(),
            tgw: a.transit_gateway_id.clone(),
            end: AttachmentEnd::Vpc(a.vpc_id.clone()),
            available: a.state.lifecycle() == Lifecycle::Up,
            association: association.clone(),
        })
        .collect();
    for p in &tgw.peerings {
        // The side read in `p.region` belongs to the TGW of that region.
        let (own, peer) = if p.requester.region.as_ref() == Some(&p.region) {
            (&p.requester, &p.accepter)
        } else {
            (&p.accepter, &p.requester)
        };
        attachments.push(AttachmentSide {
            id: p.id.clone(),
            tgw: own.transit_gateway_id.clone(),
            end: AttachmentEnd::Peer(peer.transit_gateway_id.clone()),
            available: p.state.lifecycle() == Lifecycle::Up,
            association: p.route_table.clone(),
        });
    }
    let routers = routers
        .iter()
        .map(|i| {
            let group = i
                .tags
                .get(crate::failover::TAG_GROUP)
                .map(|g| g.trim().to_owned());
            let vpc = i.vpc_id.clone().unwrap_or_default();
            Router {
                instance: i.id.clone(),
                interfaces: i.interface_ids.clone(),
                legacy: group.is_some_and(|g| legacy_groups.iter().any(|(v, lg)| *v == vpc && *lg == g)),
                vpc,
                healthy: i.state == Some(InstanceState::Running)
                    && !i.status.instance_impaired
                    && !i.status.system_impaired,
            }
        })
        .collect();
    Network {
        vpcs: vpcs
            .iter()
            .map(|v| (v.vpc.id.clone(), v.vpc.cidrs.clone()))
            .collect(),
        vpc_tables,
        tgw_tables,
        attachments,
        routers,
    }
}

/// `tables` with `changes` applied, as AWS would once every write landed.
pub fn applied(tables: &[(Region, VpcRouteTable)], changes: &[Change]) -> Vec<(Region, VpcRouteTable)> {
    let mut out = tables.to_vec();
    for c in changes {
        let Some((_, table)) = out
            .iter_mut()
            .find(|(r, t)| *r == c.key.table.region && t.id == c.key.table.id)
        else {
            continue;
        };
        table.routes.retain(|r| {
            !(r.route.key.destination == c.key.destination && r.route.origin == RouteOrigin::Static)
        });
        if c.op != ChangeOp::Delete {
            table.routes.push(crate::topology::VpcRoute {
                route: crate::model::Route {
                    key: c.key.clone(),
                    target: c.target.clone(),
                    state: RouteState::Active,
                    origin: RouteOrigin::Static,
                },
                instance_id: None,
                network_interface_id: None,
            });
        }
    }
    out
}

fn check(name: &str, problems: Vec<String>, ok: impl Into<String>) -> PreflightCheck {
    PreflightCheck {
        check: name.to_owned(),
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            ok.into()
        } else {
            let n = problems.len();
            let mut shown: Vec<String> = problems.into_iter().take(5).collect();
            if n > shown.len() {
                shown.push(format!("and {} more", n - shown.len()));
            }
            shown.join("; ")
        },
    }
}

/// What a cutover's checks look at.
#[derive(Debug, Clone)]
pub struct Cutover<'a> {
    /// The VPC.
    pub vpc: &'a MeshVpc,
    /// Its attachment to a mesh TGW: `(attachment id, tgw id)` when up, or
    /// what is wrong.
    pub attachment: Result<(String, String), String>,
    /// Its tables the injector manages.
    pub tables: Vec<&'a VpcRouteTable>,
    /// Every other mesh VPC.
    pub others: Vec<&'a MeshVpc>,
    /// The network now.
    pub now: &'a Network,
    /// The network once the cutover's changes are applied.
    pub after: &'a Network,
}

/// The preflight of a cutover.
pub fn cutover_checks(c: &Cutover<'_>) -> Vec<PreflightCheck> {
    let x = &c.vpc.vpc;
    let mut out = Vec::new();
    let (attachment, tgw) = match &c.attachment {
        Ok((a, t)) => {
            out.push(check(
                "attached",
                vec![],
                format!("{} attached to {t} over {a}", x.id),
            ));
            (a.as_str(), t.as_str())
        }
        Err(why) => {
            out.push(check("attached", vec![why.clone()], ""));
            ("", "")
        }
    };
    // Aggregates: every other mesh VPC's CIDRs covered toward X's TGW.
    let mut problems = Vec::new();
    for t in &c.tables {
        for w in &c.others {
            for cidr in &w.vpc.cidrs {
                let covered = t.routes.iter().any(|r| {
                    r.route.origin == RouteOrigin::Static
                        && r.route.state == RouteState::Active
                        && r.route.key.destination.contains(cidr)
                        && r.route.target == RouteTarget::TransitGateway(tgw.to_owned())
                });
                if !covered {
                    problems.push(format!(
                        "{} has no route covering {cidr} ({}) toward {tgw}",
                        t.id, w.vpc.id
                    ));
                }
            }
        }
    }
    out.push(check(
        "aggregates",
        problems,
        format!(
            "{} table(s) send every other mesh VPC's CIDRs to {tgw}",
            c.tables.len()
        ),
    ));
    // L-BGP: over the TGWs alone, X's CIDRs from every other VPC's
    // attachment, and theirs from X's.
    let attachment_of = |vpc: &str| {
        c.now
            .attachments
            .iter()
            .filter(|a| a.end == AttachmentEnd::Vpc(vpc.to_owned()) && a.available)
            .min_by(|a, b| a.id.cmp(&b.id))
            .map(|a| (a.tgw.clone(), a.id.clone()))
    };
    let mut problems = Vec::new();
    for w in &c.others {
        let Some((w_tgw, w_attachment)) = attachment_of(&w.vpc.id) else {
            continue;
        };
        for to in trace::probe_addresses(&x.cidrs) {
            let t = c.now.trace_tgw(&w_tgw, &w_attachment, to);
            if !matches!(&t.ending, trace::Ending::Delivered { vpc } if *vpc == x.id) {
                problems.push(format!("from {} ({w_tgw}) to {to}: {}", w.vpc.id, t.ending));
            }
        }
        for to in trace::probe_addresses(&w.vpc.cidrs) {
            let t = c.now.trace_tgw(tgw, attachment, to);
            if !matches!(&t.ending, trace::Ending::Delivered { vpc } if *vpc == w.vpc.id) {
                problems.push(format!(
                    "from {} ({tgw}) to {to} ({}): {}",
                    x.id, w.vpc.id, t.ending
                ));
            }
        }
    }
    out.push(check(
        "l_bgp_converged",
        problems,
        format!(
            "the TGWs carry {} both ways with {} other mesh VPC(s)",
            x.id,
            c.others.len()
        ),
    ));
    // The path after the cutover, both ways, over the mesh.
    let mut problems = Vec::new();
    for w in &c.others {
        for t in &c.tables {
            for to in trace::probe_addresses(&w.vpc.cidrs) {
                let tr = c.after.trace(&t.id, to);
                if !matches!(&tr.ending, trace::Ending::Delivered { .. }) {
                    problems.push(format!("{} → {} ({to}): {}", t.id, w.vpc.id, tr.ending));
                }
            }
        }
        for wt in c.after.tables_of(&w.vpc.id) {
            for to in trace::probe_addresses(&x.cidrs) {
                let tr = c.after.trace(&wt.id, to);
                if !matches!(&tr.ending, trace::Ending::Delivered { .. }) {
                    problems.push(format!("{} ({}) → {to}: {}", wt.id, w.vpc.id, tr.ending));
                }
            }
        }
    }
    out.push(check(
        "mesh_path",
        problems,
        format!(
            "after the cutover every path between {} and the other mesh VPCs is over the mesh",
            x.id
        ),
    ));
    out
}

/// The preflight of a rollback: `unserved` are X's tables no healthy
/// legacy router can serve (with why).
pub fn rollback_checks(vpc: &MeshVpc, unserved: Vec<String>) -> Vec<PreflightCheck> {
    let group = vpc
        .legacy_group()
        .map_or_else(|| format!("(no {TAG_LEGACY_GROUP} tag)"), str::to_owned);
    vec![check(
        "legacy_group_healthy",
        unserved,
        format!(
            "legacy group {group} has a healthy member for every table of {}",
            vpc.vpc.id
        ),
    )]
}

/// The owner of each CIDR among `vpcs` (for staging).
pub fn owners(vpcs: &[MeshVpc]) -> BTreeMap<Cidr, String> {
    vpcs.iter()
        .flat_map(|v| v.vpc.cidrs.iter().map(move |c| (*c, v.vpc.id.clone())))
        .collect()
}
