//! The vpc-route-injector's rules: which routes every route table of every
//! VPC attached to a mesh transit gateway should hold.
//!
//! - A VPC is *attached* when an attachment that is up (`available`, or
//!   `modifying`: a modification keeps it forwarding) connects it to a
//!   member TGW (tagged `lbgp:mesh=<mesh>`, up); a VPC attached to two
//!   member TGWs of one region is served by the lowest id. An attachment or
//!   TGW in transition (`pending`, `initiating`, `rollingBack`…) freezes the
//!   VPC's tables; only one that is gone (`deleting`, `deleted`, `failed`,
//!   `rejected`) withdraws its routes.
//! - Gateway route tables (associated with an internet or virtual private
//!   gateway) take no TGW routes: they are skipped. A table's static routes,
//!   foreign ones included, must fit `LBGP_ROUTE_QUOTA` per address family.
//! - Every route table of an attached VPC, unless tagged `lbgp:ignore=true`,
//!   gets one route per mesh prefix toward that TGW: the `LBGP_PREFIXES`
//!   aggregates, or (specific mode) every other mesh VPC's CIDRs,
//!   aggregated and summarised to fit the room `LBGP_ROUTE_QUOTA` leaves.
//! - A prefix equal to or inside the VPC's own CIDR is never installed (it
//!   would hijack the VPC's own traffic); IPv6 prefixes only go to VPCs with
//!   an IPv6 block whose attachment supports IPv6.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{InjectMode, InjectorConfig};
use crate::desire::Desire;
use crate::migrate::{self, LegacyView, MigrationState};
use crate::model::{DesiredRoute, Region, RouteKey, RouteOrigin, RouteTableRef, RouteTarget, TableKind};
use crate::plan::{ChangeOp, OwnershipLedger, Plan};
use crate::prefix::{Cidr, aggregate, summarize_to_fit};
use crate::report::{ErrorReport, SkipReport};
use crate::topology::{Lifecycle, TAG_IGNORE, TransitGateway, Vpc, VpcAttachment, VpcRouteTable};

/// One region as the injector reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    /// The region.
    pub region: Region,
    /// Transit gateways tagged with the mesh (any state).
    pub transit_gateways: Vec<TransitGateway>,
    /// The VPC attachments of those transit gateways (any state).
    pub attachments: Vec<VpcAttachment>,
    /// The VPCs those attachments name.
    pub vpcs: Vec<Vpc>,
    /// Every route table of those VPCs, and the tables the ledger names.
    pub tables: Vec<VpcRouteTable>,
}

/// What one injector run read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InjectorView {
    /// The regions to reconcile.
    pub scope: Vec<Region>,
    /// The regions read (the scope, and in specific mode every region).
    pub regions: Vec<RegionView>,
    /// Regions that could not be read, with the reason.
    pub unreadable: Vec<ErrorReport>,
    /// What the legacy overlay needs (empty when no VPC is in migration).
    pub legacy: LegacyView,
    /// VPC states a cutover or rollback sets, before their tags say so.
    pub overrides: BTreeMap<String, MigrationState>,
    /// Who owns what, in a cross-account mesh (`LBGP_ACCOUNTS` set):
    /// applied by [`crate::accounts::AccountsView::guard`].
    pub accounts: Option<crate::accounts::AccountsView>,
}

/// The regions a run must read to reconcile `scope`: specific mode needs
/// every mesh VPC's CIDRs, wherever the event came from.
pub fn regions_to_read(config: &InjectorConfig, scope: &[Region]) -> Vec<Region> {
    match config.inject_mode {
        InjectMode::Specific => config.common.regions.clone(),
        InjectMode::Aggregate => scope.to_vec(),
    }
}

/// The VPCs whose tables a region's read must include: every VPC an
/// attachment of a mesh TGW names, whatever its state (the rules decide).
pub fn vpcs_to_read(attachments: &[VpcAttachment]) -> Vec<&str> {
    let mut ids: Vec<&str> = attachments.iter().map(|a| a.vpc_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// How a VPC stands with the mesh of its region.
#[derive(Debug, Clone)]
enum Attachment {
    /// Attached to a member TGW through an attachment that is up
    /// (`available`, or `modifying`, which keeps forwarding).
    Served {
        /// The member TGW that serves it.
        tgw_id: String,
        /// The serving attachment carries IPv6 (`Ipv6Support=enable`).
        ipv6: bool,
    },
    /// An attachment or its TGW (id, state) is on its way up or down: what
    /// depends on it is neither created nor deleted.
    Transitional(String, String),
}

/// Each VPC attached (or attaching) to a member TGW. Attachments and TGWs
/// that are gone (`deleting`, `deleted`, `failed`, `rejected`) do not
/// count: their routes are withdrawn.
fn attached(view: &RegionView, mesh: &str) -> BTreeMap<String, Attachment> {
    let mut out: BTreeMap<String, Attachment> = BTreeMap::new();
    for a in &view.attachments {
        let Some(tgw) = view
            .transit_gateways
            .iter()
            .find(|t| t.id == a.transit_gateway_id && t.in_mesh(mesh))
        else {
            continue;
        };
        let this = match (tgw.state.lifecycle(), a.state.lifecycle()) {
            (Lifecycle::Gone, _) | (_, Lifecycle::Gone) => continue,
            (Lifecycle::Up, Lifecycle::Up) => Attachment::Served {
                tgw_id: tgw.id.clone(),
                ipv6: a.ipv6_support,
            },
            (Lifecycle::Up, _) => Attachment::Transitional(a.id.clone(), a.state.to_string()),
            _ => Attachment::Transitional(tgw.id.clone(), tgw.state.to_string()),
        };
        // A transition anywhere freezes the VPC (the lowest id may change);
        // otherwise the lowest id serves a VPC attached twice, the same on
        // every run.
        let merged = match (out.remove(&a.vpc_id), this) {
            (None, new) => new,
            (Some(old @ Attachment::Transitional(..)), _) => old,
            (Some(_), new @ Attachment::Transitional(..)) => new,
            (Some(Attachment::Served { tgw_id: held, ipv6 }), Attachment::Served { tgw_id, .. })
                if held <= tgw_id =>
            {
                Attachment::Served { tgw_id: held, ipv6 }
            }
            (Some(_), new) => new,
        };
        out.insert(a.vpc_id.clone(), merged);
    }
    out
}

/// Counts a table's static routes of one address family.
fn static_routes(table: &VpcRouteTable, ipv6: bool) -> impl Iterator<Item = &crate::topology::VpcRoute> {
    table
        .routes
        .iter()
        .filter(move |r| r.route.origin == RouteOrigin::Static && r.route.key.destination.is_ipv6() == ipv6)
}

/// The injector's desired state for what `view` shows. `ledger` names the
/// routes that are ours: the others count against a table's quota.
pub fn desire(view: InjectorView, ledger: &OwnershipLedger, config: &InjectorConfig) -> Desire {
    let mesh = &config.common.mesh;
    let mut out = Desire {
        errors: view.unreadable,
        ..Desire::default()
    };
    let complete = out.errors.is_empty() && view.legacy.complete;
    if config.inject_mode == InjectMode::Specific && !out.errors.is_empty() {
        // Without every region the specific prefix set is incomplete:
        // planning on it would delete good routes. Change nothing.
        out.normalise();
        return out;
    }
    let attachments: Vec<BTreeMap<String, Attachment>> =
        view.regions.iter().map(|r| attached(r, mesh)).collect();
    let in_transition: Vec<(String, String)> = attachments
        .iter()
        .flat_map(|m| m.values())
        .filter_map(|a| match a {
            Attachment::Transitional(id, state) => Some((id.clone(), state.clone())),
            Attachment::Served { .. } => None,
        })
        .collect();
    // Specific mode: every table carries every other VPC's CIDRs, so a VPC
    // in transition anywhere changes what every table should hold.
    let freeze_all = config.inject_mode == InjectMode::Specific && !in_transition.is_empty();
    let mesh_cidrs: Vec<(String, Cidr)> = view
        .regions
        .iter()
        .zip(&attachments)
        .flat_map(|(r, served)| {
            r.vpcs
                .iter()
                .filter(|v| matches!(served.get(&v.id), Some(Attachment::Served { .. })))
                .flat_map(|v| v.cidrs.iter().map(|c| (v.id.clone(), *c)))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut desired = Vec::new();
    let mut actual = Vec::new();
    let mut overlay_tables: Vec<(Region, VpcRouteTable)> = Vec::new();
    for (region_view, served) in view.regions.into_iter().zip(&attachments) {
        let region = &region_view.region;
        if !view.scope.contains(region) {
            continue;
        }
        out.complete_regions.insert(region.clone());
        for table in &region_view.tables {
            let table_ref = RouteTableRef {
                region: region.clone(),
                kind: TableKind::Vpc,
                id: table.id.clone(),
            };
            let Some(attachment) = served.get(&table.vpc_id) else {
                continue;
            };
            let skip = |reason: String| SkipReport {
                region: region.to_string(),
                resource: table.id.clone(),
                destination: None,
                reason,
                account: None,
            };
            let (tgw_id, ipv6) = match attachment {
                Attachment::Transitional(id, state) => {
                    out.skipped.push(skip(format!(
                        "{id} is {state}: routes kept as they are until it settles"
                    )));
                    out.frozen_tables.insert(table_ref);
                    continue;
                }
                Attachment::Served { tgw_id, ipv6 } => (tgw_id, *ipv6),
            };
            if freeze_all && let Some((id, state)) = in_transition.first() {
                out.skipped.push(skip(format!(
                    "specific mode: {id} is {state}; every table kept as it is until it settles"
                )));
                out.frozen_tables.insert(table_ref);
                continue;
            }
            if !table.gateway_ids.is_empty() {
                // An edge route table takes only local, network interface
                // and Gateway Load Balancer endpoint targets.
                out.skipped.push(skip(format!(
                    "gateway route table (associated with {}): AWS accepts no transit gateway routes in it",
                    table.gateway_ids.join(", ")
                )));
                out.frozen_tables.insert(table_ref);
                continue;
            }
            if table.ignored() {
                out.skipped
                    .push(skip(format!("route table tagged {TAG_IGNORE}=true")));
                continue;
            }
            let vpc = region_view.vpcs.iter().find(|v| v.id == table.vpc_id);
            let Some(vpc) = vpc else {
                continue;
            };
            overlay_tables.push((region.clone(), table.clone()));
            let ctx = TableContext {
                config,
                vpc,
                ipv6,
                table,
                ledger,
            };
            match prefixes_for(&ctx, &mesh_cidrs, (&mut out.skipped, &mut out.disowned), region) {
                Ok(prefixes) => desired.extend(prefixes.into_iter().map(|destination| DesiredRoute {
                    key: RouteKey {
                        table: table_ref.clone(),
                        destination,
                    },
                    target: RouteTarget::TransitGateway(tgw_id.clone()),
                })),
                Err(error) => out.refuse(table_ref, error),
            }
        }
        actual.extend(
            region_view
                .tables
                .into_iter()
                .flat_map(|table| table.routes.into_iter().map(|r| r.route)),
        );
    }
    add_overlay(
        &mut out,
        &mut desired,
        (&view.legacy, complete),
        &view.overrides,
        &overlay_tables,
    );
    out.desired = desired;
    out.actual = actual;
    out.normalise();
    out
}

/// Adds the legacy overlay to a desire (see [`crate::migrate`]): its
/// routes win over the mesh's at the same destination; a VPC whose
/// migration tag is unusable keeps its tables as they are, and so does
/// every legacy VPC while the overlay could not be read whole.
fn add_overlay(
    out: &mut Desire,
    desired: &mut Vec<DesiredRoute>,
    (legacy, complete): (&LegacyView, bool),
    overrides: &BTreeMap<String, MigrationState>,
    tables: &[(Region, VpcRouteTable)],
) {
    if legacy.vpcs.is_empty() {
        return;
    }
    let refs: Vec<(Region, &VpcRouteTable)> = tables.iter().map(|(r, t)| (r.clone(), t)).collect();
    let overlay = migrate::overlay(legacy, &refs, overrides);
    let table_ref = |region: &Region, t: &VpcRouteTable| RouteTableRef {
        region: region.clone(),
        kind: TableKind::Vpc,
        id: t.id.clone(),
    };
    for (region, vpc, error) in &overlay.errors {
        for (r, t) in tables.iter().filter(|(r, t)| r == region && &t.vpc_id == vpc) {
            out.refuse(table_ref(r, t), error.clone());
        }
    }
    let in_overlay = |vpc: &str| {
        overlay.states.get(vpc).copied().flatten() == Some(MigrationState::Legacy)
            || legacy
                .vpcs
                .iter()
                .any(|v| v.vpc.id == vpc && v.migration().ok().flatten().is_some())
    };
    if !complete {
        // Without every region the overlay's prefix set is incomplete:
        // planning on it would delete good overlay routes.
        for (r, t) in tables.iter().filter(|(_, t)| in_overlay(&t.vpc_id)) {
            out.skipped.push(SkipReport {
                region: r.to_string(),
                resource: t.id.clone(),
                destination: None,
                reason: "legacy overlay: not every mesh region could be read; table kept as it is".to_owned(),
                account: None,
            });
            out.frozen_tables.insert(table_ref(r, t));
        }
        return;
    }
    let overlaid: std::collections::BTreeSet<&RouteKey> = overlay.desired.iter().map(|d| &d.key).collect();
    desired.retain(|d| !overlaid.contains(&d.key));
    desired.extend(overlay.desired.iter().cloned());
    out.frozen_keys.extend(overlay.frozen);
    out.skipped.extend(overlay.skipped);
}

/// Tables whose static routes after `plan` would exceed the routes-per-table
/// quota (`LBGP_ROUTE_QUOTA`; AWS counts every static route, foreign ones
/// included, IPv4 and IPv6 apart), with the error to report.
pub fn over_quota(desire: &Desire, plan: &Plan, quota: usize) -> BTreeMap<RouteTableRef, String> {
    let mut count: BTreeMap<(&RouteTableRef, bool), i64> = BTreeMap::new();
    for r in desire.actual.iter().filter(|r| r.origin == RouteOrigin::Static) {
        *count
            .entry((&r.key.table, r.key.destination.is_ipv6()))
            .or_default() += 1;
    }
    for c in &plan.changes {
        let delta = match c.op {
            ChangeOp::Create => 1,
            ChangeOp::Delete => -1,
            ChangeOp::Replace => 0,
        };
        *count
            .entry((&c.key.table, c.key.destination.is_ipv6()))
            .or_default() += delta;
    }
    let limit = i64::try_from(quota).unwrap_or(i64::MAX);
    let mut out = BTreeMap::new();
    for ((table, ipv6), n) in count {
        if n > limit {
            out.entry(table.clone()).or_insert_with(|| {
                format!(
                    "{}: the plan would leave {n} static {} routes, above LBGP_ROUTE_QUOTA={quota} (AWS's routes per route table, which counts every route but the local one); table left unchanged. \
                     Raise the AWS quota and the variable, or use fewer prefixes",
                    table.id,
                    if ipv6 { "IPv6" } else { "IPv4" }
                )
            });
        }
    }
    out
}

/// Plans the injector's changes: the plan of `desire`, with every table the
/// plan would put over the route quota frozen (and reported) and planned
/// again.
pub fn plan(desire: &mut Desire, ledger: &OwnershipLedger, config: &InjectorConfig) -> Plan {
    let plan = desire.plan(ledger);
    let refused = over_quota(desire, &plan, config.route_quota);
    if refused.is_empty() {
        return plan;
    }
    for (table, error) in refused {
        desire.refuse(table, error);
    }
    desire.normalise();
    desire.plan(ledger)
}

/// What one table's prefixes depend on.
struct TableContext<'a> {
    config: &'a InjectorConfig,
    vpc: &'a Vpc,
    ipv6: bool,
    table: &'a VpcRouteTable,
    ledger: &'a OwnershipLedger,
}

/// The prefixes one route table should carry, or the reason it cannot.
fn prefixes_for(
    ctx: &TableContext<'_>,
    mesh_cidrs: &[(String, Cidr)],
    (skipped, disowned): (&mut Vec<SkipReport>, &mut BTreeSet<RouteKey>),
    region: &Region,
) -> Result<Vec<Cidr>, String> {
    let (config, own, table_id) = (ctx.config, ctx.vpc, ctx.table.id.as_str());
    // IPv6 crosses the attachment only when it supports IPv6, and matters
    // only to a VPC with an IPv6 block.
    let v6 = ctx.ipv6 && own.cidrs.iter().any(Cidr::is_ipv6);
    let mut skip = |p: &Cidr, reason: String| {
        skipped.push(SkipReport {
            region: region.to_string(),
            resource: table_id.to_owned(),
            destination: Some(p.to_string()),
            reason,
            account: None,
        })
    };
    match config.inject_mode {
        InjectMode::Aggregate => {
            let mut out = Vec::new();
            for p in &config.prefixes {
                if p.is_ipv6() && !v6 {
                    continue;
                }
                // A route equal to or inside the VPC's own CIDR would hijack
                // the VPC's own traffic (or be refused by AWS).
                if let Some(c) = own.cidrs.iter().find(|c| c.contains(p)) {
                    skip(p, format!("inside the VPC's own CIDR {c} ({})", own.id));
                    continue;
                }
                out.push(*p);
            }
            Ok(out)
        }
        InjectMode::Specific => {
            let mut cover = Vec::new();
            for (vpc_id, c) in mesh_cidrs.iter().filter(|(v, _)| v != &own.id) {
                if c.is_ipv6() && !v6 {
                    continue;
                }
                if let Some(o) = own.cidrs.iter().find(|o| o.overlaps(c)) {
                    skip(c, format!("{vpc_id}'s CIDR overlaps this VPC's own CIDR {o}"));
                    continue;
                }
                cover.push(*c);
            }
            let mut out = Vec::new();
            for family in [false, true] {
                let wanted: Vec<Cidr> = aggregate(&cover)
                    .into_iter()
                    .filter(|c| c.is_ipv6() == family)
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                // AWS's quota counts the table's other static routes too:
                // those not ours stay whatever we plan (ours are replaced,
                // kept or deleted by the plan).
                // (A foreign route at a wanted destination takes no extra
                // room: it satisfies the route, or blocks it.)
                let others_routes: Vec<&crate::topology::VpcRoute> = static_routes(ctx.table, family)
                    .filter(|r| {
                        !ctx.ledger
                            .get(&r.route.key)
                            .is_some_and(|e| e.recognises(&r.route.target))
                            && !wanted.contains(&r.route.key.destination)
                    })
                    .collect();
                let others = others_routes.len();
                let room = config.route_quota.saturating_sub(others);
                if wanted.len() <= room {
                    out.extend(wanted);
                    continue;
                }
                let fitted = if room == 0 {
                    Err(format!("{others} other routes already fill it"))
                } else {
                    summarize_to_fit(&wanted, &own.cidrs, room).map_err(|e| e.to_string())
                };
                match fitted {
                    Ok(fit) => {
                        // A route at one of our keys that someone
                        // re-pointed was counted as theirs above; if the
                        // summary lands on its destination, planning it as
                        // ours would free its room next run and change the
                        // summary again. Let it go now: the next run then
                        // counts what this one did.
                        disowned.extend(
                            others_routes
                                .iter()
                                .filter(|r| fit.contains(&r.route.key.destination))
                                .filter(|r| ctx.ledger.get(&r.route.key).is_some())
                                .map(|r| r.route.key.clone()),
                        );
                        out.extend(fit)
                    }
                    Err(e) => {
                        return Err(format!(
                            "{} mesh prefixes do not fit LBGP_ROUTE_QUOTA={} for {table_id} ({others} other static routes there): {e}; table left unchanged",
                            wanted.len(),
                            config.route_quota
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}
