//! L-BGP's rules (tgw-route-propagator): which static routes every member
//! transit gateway's tables should hold toward its peering attachments.
//!
//! - A TGW *originates* its attached VPCs' CIDRs, its propagated routes and
//!   its static routes toward non-peering attachments. Routes over peering
//!   attachments, and routes in our ledger, are learned, never re-exported:
//!   a prefix travels exactly one peering hop, so no transit loop can form.
//! - For every `available` peering between two members, each side's target
//!   tables (tagged `lbgp:mesh`, else the default association table) get one
//!   route per prefix the other side originates, toward the peering.
//! - A prefix two TGWs originate anywhere in the mesh is installed nowhere,
//!   the same way on every run (no flapping between origins).
//! - What an unreadable region originates is unknown: tables that learn from
//!   a peer there are frozen, never emptied by a failed read.
//!
//! That is `LBGP_ROUTING=direct`, the default. `shortest-path`
//! (`propagate/shortest_path.rs`, paths by [`crate::paths`]) carries transit: every
//! member learns every prefix it can reach, toward the next hop of a
//! shortest path.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{PropagatorConfig, Routing};
use crate::desire::Desire;
use crate::desire::SETTLE_SECS;
use crate::model::{
    DesiredRoute, Region, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind,
};
use crate::plan::{ChangeOp, OwnershipLedger, Plan};
use crate::prefix::{Cidr, aggregate};
use crate::report::{ConflictReport, ErrorReport, SkipReport};
use crate::topology::{
    AttachmentState, Lifecycle, PeeringAttachment, TAG_MESH, TgwRoute, TgwRouteTable, TransitGateway, Vpc,
    VpcAttachment,
};
use crate::trigger::{RoutingUpdate, UpdatedRoute};

pub mod lists;
mod shortest_path;

/// One region as the propagator reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    /// The region.
    pub region: Region,
    /// Transit gateways tagged with the mesh (any state).
    pub transit_gateways: Vec<TransitGateway>,
    /// Their VPC attachments (any state).
    pub attachments: Vec<VpcAttachment>,
    /// The VPCs of those attachments.
    pub vpcs: Vec<Vpc>,
    /// The route tables of those transit gateways.
    pub route_tables: Vec<TgwRouteTable>,
    /// Every route of those tables, and of the tables the ledger names.
    pub routes: Vec<TgwRoute>,
    /// Every peering attachment visible in the region.
    pub peerings: Vec<PeeringAttachment>,
}

/// What one propagator run read: every mesh region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeshView {
    /// The regions read.
    pub regions: Vec<RegionView>,
    /// Regions that could not be read, with the reason.
    pub unreadable: Vec<ErrorReport>,
}

/// One member TGW as the rules see it.
struct Member<'a> {
    region: &'a Region,
    tgw: &'a TransitGateway,
    /// Tables routes are installed in.
    targets: Vec<&'a TgwRouteTable>,
    /// prefix → where it comes from (for reports).
    originates: BTreeMap<Cidr, BTreeSet<String>>,
    /// Prefixes of VPC attachments in transition, with why: routes for them
    /// are neither created nor deleted anywhere until they settle.
    unsettled: BTreeMap<Cidr, String>,
}

/// The members of one region, with what each originates.
fn members<'a>(view: &'a RegionView, mesh: &str, ledger: &OwnershipLedger) -> Vec<Member<'a>> {
    let region = &view.region;
    let mut out = Vec::new();
    for tgw in view
        .transit_gateways
        .iter()
        .filter(|t| t.in_mesh(mesh) && t.state.lifecycle() == Lifecycle::Up)
    {
        let own_tables: Vec<&TgwRouteTable> = view
            .route_tables
            .iter()
            .filter(|t| t.transit_gateway_id == tgw.id)
            .collect();
        let tagged: Vec<&TgwRouteTable> = own_tables
            .iter()
            .copied()
            .filter(|t| t.tags.get(TAG_MESH).map(String::as_str) == Some(mesh))
            .collect();
        let targets = if tagged.is_empty() {
            own_tables
                .iter()
                .copied()
                .filter(|t| t.default_association)
                .collect()
        } else {
            tagged
        };
        let mut originates: BTreeMap<Cidr, BTreeSet<String>> = BTreeMap::new();
        let mut unsettled = BTreeMap::new();
        for a in view.attachments.iter().filter(|a| a.transit_gateway_id == tgw.id) {
            let Some(vpc) = view.vpcs.iter().find(|v| v.id == a.vpc_id) else {
                continue;
            };
            // IPv6 crosses an attachment only when it supports IPv6.
            let cidrs = vpc.cidrs.iter().filter(|c| !c.is_ipv6() || a.ipv6_support);
            match a.state.lifecycle() {
                Lifecycle::Up => {
                    for c in cidrs {
                        originates
                            .entry(*c)
                            .or_default()
                            .insert(format!("{region}/{}/{}", tgw.id, vpc.id));
                    }
                }
                Lifecycle::Transitional => {
                    for c in cidrs {
                        unsettled.insert(*c, format!("{} ({}) is {}", a.id, vpc.id, a.state));
                    }
                }
                Lifecycle::Gone => {}
            }
        }
        let own_ids: BTreeSet<&str> = own_tables.iter().map(|t| t.id.as_str()).collect();
        for r in view
            .routes
            .iter()
            .filter(|r| own_ids.contains(r.route.key.table.id.as_str()))
        {
            let exportable = ledger.get(&r.route.key).is_none()
                && !r.via_peering()
                && r.route.state == RouteState::Active
                && matches!(r.route.origin, RouteOrigin::Propagated | RouteOrigin::Static);
            if let (true, Some(via)) = (exportable, r.attachments.first()) {
                originates
                    .entry(r.route.key.destination)
                    .or_default()
                    .insert(format!(
                        "{region}/{}/{} ({})",
                        tgw.id, via.attachment_id, via.resource_type
                    ));
            }
        }
        out.push(Member {
            region,
            tgw,
            targets,
            originates,
            unsettled,
        });
    }
    out
}

/// Routes `T` learns from peer `U`: every prefix `U` originates that
/// nobody else originates, summarised losslessly when asked, without
/// covering anyone else's prefix.
pub fn learned(prefixes: &BTreeSet<Cidr>, others: &BTreeSet<Cidr>, summarize: bool) -> Vec<Cidr> {
    let list: Vec<Cidr> = prefixes.iter().copied().collect();
    if !summarize {
        return list;
    }
    let mut out = Vec::new();
    for agg in aggregate(&list) {
        if !prefixes.contains(&agg) && others.iter().any(|o| agg.contains(o)) {
            out.extend(list.iter().filter(|p| agg.contains(p)).copied());
        } else {
            out.push(agg);
        }
    }
    out
}

fn table_ref(region: &Region, id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region.clone(),
        kind: TableKind::TransitGateway,
        id: id.to_owned(),
    }
}

/// What both routing modes start from: the members, who originates what,
/// and what is contested, unsettled or unreadable.
struct Mesh<'a> {
    views: &'a [RegionView],
    all: &'a [Member<'a>],
    by_id: BTreeMap<&'a str, &'a Member<'a>>,
    /// prefix → originating TGW → how.
    origins: BTreeMap<Cidr, BTreeMap<&'a str, &'a BTreeSet<String>>>,
    contested: BTreeSet<Cidr>,
    unsettled: BTreeMap<Cidr, &'a String>,
    unreadable: BTreeSet<String>,
}

impl Mesh<'_> {
    /// Prefixes `u` exports: what it originates and nobody else does.
    fn exported(&self, u: &Member<'_>) -> BTreeSet<Cidr> {
        u.originates
            .keys()
            .filter(|p| !self.contested.contains(p))
            .copied()
            .collect()
    }

    /// Prefixes someone other than `tgw` originates.
    fn others(&self, tgw: &str) -> BTreeSet<Cidr> {
        self.origins
            .iter()
            .filter(|(_, o)| o.keys().any(|t| *t != tgw))
            .map(|(p, _)| *p)
            .collect()
    }
}

/// L-BGP's desired state for what `view` shows. `ledger` names the routes
/// we installed: they are learned, never originated. `LBGP_ROUTING` picks
/// the rule: direct peers only, or shortest paths over the whole mesh.
pub fn desire(view: MeshView, ledger: &OwnershipLedger, config: &PropagatorConfig) -> Desire {
    let mesh = &config.common.mesh;
    let mut out = Desire {
        errors: view.unreadable,
        ..Desire::default()
    };
    let unreadable: BTreeSet<String> = out.errors.iter().map(|e| e.region.clone()).collect();
    let all: Vec<Member<'_>> = view
        .regions
        .iter()
        .flat_map(|v| members(v, mesh, ledger))
        .collect();
    let by_id: BTreeMap<&str, &Member<'_>> = all.iter().map(|m| (m.tgw.id.as_str(), m)).collect();

    // Mesh-wide origins.
    let mut origins: BTreeMap<Cidr, BTreeMap<&str, &BTreeSet<String>>> = BTreeMap::new();
    for m in &all {
        for (p, why) in &m.originates {
            origins.entry(*p).or_default().insert(m.tgw.id.as_str(), why);
        }
    }
    let contested: BTreeSet<Cidr> = origins
        .iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(p, _)| *p)
        .collect();
    for p in &contested {
        // One entry per originating TGW, with every way it originates it.
        let held_by: Vec<String> = origins[p]
            .values()
            .map(|why| why.iter().cloned().collect::<Vec<_>>().join(", "))
            .collect();
        out.conflicts.push(ConflictReport {
            region: "*".to_owned(),
            route_table_id: None,
            destination: p.to_string(),
            wanted: None,
            held_by,
            reason: "originated by more than one transit gateway; installed nowhere".to_owned(),
            account: None,
        });
    }

    // Prefixes in transition anywhere: frozen in every table (also where
    // another TGW originates them: a conflict may be about to appear).
    let unsettled: BTreeMap<Cidr, &String> = all
        .iter()
        .flat_map(|m| m.unsettled.iter().map(|(p, why)| (*p, why)))
        .collect();
    for view in &view.regions {
        out.complete_regions.insert(view.region.clone());
        for table in &view.route_tables {
            out.quota_groups.insert(
                table_ref(&view.region, &table.id),
                table.transit_gateway_id.clone(),
            );
        }
    }
    let context = Mesh {
        views: &view.regions,
        all: &all,
        by_id,
        origins,
        contested,
        unsettled,
        unreadable,
    };
    // Our routes over a deleted peering read as anonymous blackholes in
    // either mode: recognised as ours, they are withdrawn or rerouted
    // instead of forgotten in place.
    let dark = shortest_path::our_dark_routes(&view.regions, ledger);
    let desired = match config.routing {
        Routing::Direct => direct(&context, ledger, config, &mut out),
        Routing::ShortestPath => shortest_path::desired(&context, ledger, config, &mut out),
    };
    drop(context);
    drop(all);
    out.desired = desired;
    out.actual = view
        .regions
        .into_iter()
        .flat_map(|v| v.routes.into_iter().map(|r| r.route))
        .map(|mut r| {
            if let Some(target) = dark.get(&r.key) {
                r.target = target.clone();
            }
            r
        })
        .collect();
    out.normalise();
    out
}

/// `direct`: each member learns what its direct peers originate, over the
/// peering to each; nothing is re-exported.
fn direct(
    context: &Mesh<'_>,
    ledger: &OwnershipLedger,
    config: &PropagatorConfig,
    out: &mut Desire,
) -> Vec<DesiredRoute> {
    let mesh = &config.common.mesh;
    let mut desired = Vec::new();
    for view in context.views {
        for t in context.all.iter().filter(|m| m.region == &view.region) {
            for table in &t.targets {
                for (p, why) in &context.unsettled {
                    let key = RouteKey {
                        table: table_ref(&view.region, &table.id),
                        destination: *p,
                    };
                    out.skipped.push(SkipReport {
                        region: view.region.to_string(),
                        resource: table.id.clone(),
                        destination: Some(p.to_string()),
                        reason: format!("{why}: route kept as it is until it settles"),
                        account: None,
                    });
                    out.frozen_keys.insert(key);
                }
            }
            // Routes over a peering in transition stay as they are.
            for p in view
                .peerings
                .iter()
                .filter(|p| p.peer_of(&t.tgw.id).is_some() && p.state.lifecycle() == Lifecycle::Transitional)
            {
                let target = RouteTarget::TransitGatewayAttachment(p.id.clone());
                for entry in ledger.iter().filter(|e| {
                    e.recognises(&target) && t.targets.iter().any(|table| table.id == e.key.table.id)
                }) {
                    out.skipped.push(SkipReport {
                        region: view.region.to_string(),
                        resource: entry.key.table.id.clone(),
                        destination: Some(entry.key.destination.to_string()),
                        reason: format!(
                            "peering attachment {} is {}: route kept as it is until it settles",
                            p.id, p.state
                        ),
                        account: None,
                    });
                    out.frozen_keys.insert(entry.key.clone());
                }
            }
            let peers_unreadable = view.peerings.iter().any(|p| {
                p.peer_of(&t.tgw.id)
                    .and_then(|end| end.region.as_ref())
                    .is_some_and(|r| context.unreadable.contains(r.as_str()))
            });
            if peers_unreadable {
                out.frozen_tables
                    .extend(t.targets.iter().map(|table| table_ref(&view.region, &table.id)));
                continue;
            }
            if t.targets.is_empty() {
                out.skipped.push(no_targets(t, mesh));
                continue;
            }
            // Peers over available attachments, one attachment per peer.
            let mut peers: BTreeMap<&str, &PeeringAttachment> = BTreeMap::new();
            for p in view
                .peerings
                .iter()
                .filter(|p| p.state == AttachmentState::Available)
            {
                if let Some(end) = p.peer_of(&t.tgw.id)
                    && context.by_id.contains_key(end.transit_gateway_id.as_str())
                    && end.transit_gateway_id != t.tgw.id
                {
                    peers.entry(end.transit_gateway_id.as_str()).or_insert(p);
                }
            }
            for p in peers.values().filter(|p| p.route_table.is_none()) {
                unassociated(out, t, p);
            }
            for (peer_id, attachment) in &peers {
                let Some(u) = context.by_id.get(peer_id) else {
                    continue;
                };
                let exported = context.exported(u);
                let others = context.others(peer_id);
                for destination in learned(&exported, &others, config.summarize) {
                    for table in &t.targets {
                        desired.push(DesiredRoute {
                            key: RouteKey {
                                table: table_ref(&view.region, &table.id),
                                destination,
                            },
                            target: RouteTarget::TransitGatewayAttachment(attachment.id.clone()),
                        });
                    }
                }
            }
        }
    }
    desired
}

/// The report of a member with no table to install in.
fn no_targets(t: &Member<'_>, mesh: &str) -> SkipReport {
    SkipReport {
        region: t.region.to_string(),
        resource: t.tgw.id.clone(),
        destination: None,
        reason: format!("no route table tagged {TAG_MESH}={mesh} and no default association table"),
        account: None,
    }
}

/// A peering with no route table on `t`'s side drops what arrives over it:
/// the mesh is not converged, whatever the routes say. lbgp never changes
/// associations: it says so.
fn unassociated(out: &mut Desire, t: &Member<'_>, p: &PeeringAttachment) {
    out.errors.push(ErrorReport {
        region: t.region.to_string(),
        resource: Some(p.id.clone()),
        error: format!(
            "peering attachment {} is associated with no route table of {} in {}: traffic arriving over it is dropped. \
             Associate it with a route table (AssociateTransitGatewayRouteTable); lbgp does not change associations",
            p.id, t.tgw.id, t.region
        ), account: None,
    });
    out.unassociated.push(p.id.clone());
}

/// The quota group of `table`: its transit gateway (AWS counts every route
/// of every route table of one TGW together), or the table itself.
pub(crate) fn quota_group(desire: &Desire, table: &RouteTableRef) -> String {
    desire
        .quota_groups
        .get(table)
        .cloned()
        .unwrap_or_else(|| table.id.clone())
}

/// The routes each quota group holds now (one per table and destination).
pub(crate) fn routes_per_quota_group(desire: &Desire) -> BTreeMap<String, usize> {
    let unique: BTreeSet<(&RouteTableRef, &Cidr)> = desire
        .actual
        .iter()
        .map(|r| (&r.key.table, &r.key.destination))
        .collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (table, _) in unique {
        *count.entry(quota_group(desire, table)).or_default() += 1;
    }
    count
}

/// Tables whose transit gateway would hold more than `quota` routes after
/// `plan` (AWS counts every route of every route table of one TGW
/// together), with the error to report: the tables of such a TGW that the
/// plan would grow are refused whole.
pub fn over_quota(desire: &Desire, plan: &Plan, quota: usize) -> BTreeMap<RouteTableRef, String> {
    let group_of = |t: &RouteTableRef| quota_group(desire, t);
    let mut count: BTreeMap<String, i64> = routes_per_quota_group(desire)
        .into_iter()
        .map(|(g, n)| (g, i64::try_from(n).unwrap_or(i64::MAX)))
        .collect();
    let mut growing: BTreeMap<String, BTreeSet<&RouteTableRef>> = BTreeMap::new();
    for c in &plan.changes {
        let delta = match c.op {
            ChangeOp::Create => 1,
            ChangeOp::Delete => -1,
            ChangeOp::Replace => 0,
        };
        let group = group_of(&c.key.table);
        if delta > 0 {
            growing.entry(group.clone()).or_default().insert(&c.key.table);
        }
        *count.entry(group).or_default() += delta;
    }
    let limit = i64::try_from(quota).unwrap_or(i64::MAX);
    let mut out = BTreeMap::new();
    for (group, n) in count.into_iter().filter(|(_, n)| *n > limit) {
        for table in growing.get(&group).into_iter().flatten() {
            out.insert(
                (*table).clone(),
                format!(
                    "{}: the plan would leave {n} routes in {group}, above LBGP_TGW_ROUTE_QUOTA={quota} (routes per transit gateway, all its route tables together); table left unchanged. \
                     Raise the AWS quota and the variable, or enable LBGP_SUMMARIZE",
                    table.id
                ),
            );
        }
    }
    out
}

/// Plans L-BGP's changes: the plan of `desire`, with every table the plan
/// would put over the route quota frozen (and reported) and planned again;
/// each change's reason carries the route's path in shortest-path mode.
pub fn plan(desire: &mut Desire, ledger: &OwnershipLedger, config: &PropagatorConfig) -> Plan {
    let mut plan = desire.plan(ledger);
    let refused = over_quota(desire, &plan, config.tgw_route_quota);
    if !refused.is_empty() {
        for (table, error) in refused {
            desire.refuse(table, error);
        }
        desire.normalise();
        plan = desire.plan(ledger);
    }
    desire.annotate(&mut plan);
    plan
}

/// What a Network Manager event means for L-BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeUp {
    /// Something changed that a run has not seen: reconcile.
    Reconcile,
    /// The routes it reports are the ones L-BGP itself just installed
    /// (static, in its ledger, toward the recorded peering): its own echo.
    Echo,
    /// A run that started after the change has read it already.
    AlreadySeen {
        /// When that run started (seconds since the epoch).
        started_at: u64,
    },
}

/// Reads a Network Manager event as a wake-up only (its deltas are never
/// trusted: a run reads every table again). `last_started` is when the
/// last run took the mesh lease: a run that started a settle window after
/// the change has read it. Only installs can be told to be an echo (an
/// uninstall leaves no trace in the ledger to tell ours from a peer's), so
/// only installs are.
pub fn wake_up(update: &RoutingUpdate, ledger: &OwnershipLedger, last_started: u64) -> WakeUp {
    let seen_by = update
        .time
        .saturating_add(i64::try_from(SETTLE_SECS).unwrap_or(i64::MAX));
    if i64::try_from(last_started).is_ok_and(|s| s >= seen_by) {
        return WakeUp::AlreadySeen {
            started_at: last_started,
        };
    }
    let ours = |route: &UpdatedRoute| {
        let Some(destination) = route.destination else {
            return false;
        };
        route.route_type == "route_static"
            && !update.route_tables.is_empty()
            && update.route_tables.iter().all(|table| {
                let key = RouteKey {
                    table: table_ref(&update.region, table),
                    destination,
                };
                ledger.get(&key).is_some_and(|e| {
                    route
                        .attachments
                        .iter()
                        .any(|a| e.recognises(&RouteTarget::TransitGatewayAttachment(a.clone())))
                })
            })
    };
    if update.change_type == "TGW-ROUTE-INSTALLED"
        && !update.routes.is_empty()
        && update.routes.iter().all(ours)
    {
        WakeUp::Echo
    } else {
        WakeUp::Reconcile
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<Cidr> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn summarising_never_covers_someone_elses_prefix() {
        let mine = set(&["10.0.0.0/17", "10.0.128.0/17", "10.2.0.0/16", "10.3.0.0/16"]);
        let none = set(&[]);
        let plain: Vec<String> = learned(&mine, &none, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(plain.len(), 4);
        let summary: Vec<String> = learned(&mine, &none, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(summary, vec!["10.0.0.0/16", "10.2.0.0/15"]);
        // Someone else originates 10.2.5.0/24: 10.2.0.0/15 would cover it.
        let other = set(&["10.2.5.0/24"]);
        let careful: Vec<String> = learned(&mine, &other, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(careful, vec!["10.0.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
    }
}
