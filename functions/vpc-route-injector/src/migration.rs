//! The injector's migration edge: what the legacy overlay and a preflight
//! read, and how a cutover, rollback or adoption becomes a plan. The rules
//! are `lbgp_core::migrate`'s and `lbgp_core::preflight`'s.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_core::failover::GroupState;
use lbgp_core::inject::{InjectorView, RegionView};
use lbgp_core::migrate::{self, LegacyView, MeshVpc, MigrationState, TAG_MIGRATION};
use lbgp_core::plan::{ChangeReason, LedgerFix, OwnershipLedger};
use lbgp_core::preflight::{self, Cutover, TgwSnapshot};
use lbgp_core::report::{ChangeReport, ErrorReport, PreflightCheck};
use lbgp_core::topology::{Instance, Lifecycle, TransitGateway, VpcRouteTable};
use lbgp_core::trigger::{ManualInvoke, Trigger};
use lbgp_core::{Change, Cidr, Region, RouteTarget, TableKind};
use lbgp_runtime::{OwnedExtras, TagWrite, UnitPlan, Writes};

/// The watcher's function name (its group states are read, never written).
const WATCHER: &str = "failover-watcher";
/// The watcher's state record name.
const WATCHER_STATE: &str = "state";

/// The manual invoke of a trigger, if it is one.
pub fn manual(trigger: &Trigger) -> Option<&ManualInvoke> {
    match trigger {
        Trigger::Manual(m) => Some(m),
        _ => None,
    }
}

/// True when a read must include the overlay: a VPC of the scope is in a
/// migration, the ledger holds overlay routes there, or the trigger is a
/// migration command.
pub fn needs_overlay(vpcs: &[MeshVpc], ledger: &OwnershipLedger, scope: &[Region], command: bool) -> bool {
    command
        || vpcs.iter().any(|v| v.tags.contains_key(TAG_MIGRATION))
        || ledger.iter().any(|e| {
            e.key.table.kind == TableKind::Vpc
                && scope.contains(&e.key.table.region)
                && migrate::is_overlay_target(&e.target)
        })
}

/// Reads the legacy groups of `vpcs`' regions: their routers with status
/// checks, the zones of their subnets, and the watcher's saved states.
pub async fn legacy_view(
    aws: &Aws,
    vpcs: Vec<MeshVpc>,
    tables: &[(Region, VpcRouteTable)],
    complete: bool,
) -> Result<LegacyView, Error> {
    let regions: BTreeSet<Region> = vpcs
        .iter()
        .filter(|v| v.tags.contains_key(TAG_MIGRATION))
        .map(|v| v.region.clone())
        .collect();
    let mut view = LegacyView {
        complete,
        ..LegacyView::default()
    };
    for region in regions {
        let ec2 = aws.ec2(&region)?;
        let mut routers = ec2.failover_instances().await?;
        let ids: Vec<&str> = routers.iter().map(|i| i.id.as_str()).collect();
        let status = ec2.status_checks(&ids).await?;
        for r in &mut routers {
            if let Some(s) = status.get(&r.id) {
                r.status = *s;
            }
        }
        let subnets: Vec<&str> = tables
            .iter()
            .filter(|(r, _)| *r == region)
            .flat_map(|(_, t)| t.subnet_ids.iter().map(String::as_str))
            .collect();
        view.zones.extend(ec2.subnet_zones(&subnets).await?);
        // Health alarms count as for the watcher (a tunnel down is a
        // router down), before the watcher has decided.
        let alarms: Vec<String> = routers
            .iter()
            .filter_map(|r| r.tags.get(lbgp_core::failover::TAG_HEALTH_ALARM))
            .flat_map(|t| lbgp_core::failover::alarm_names(t))
            .collect();
        if !alarms.is_empty() {
            let names: Vec<&str> = alarms.iter().map(String::as_str).collect();
            let readings = aws.cloudwatch(&region)?.alarms(&names).await?;
            view.alarms.insert(region.clone(), readings);
        }
        let groups: BTreeSet<&str> = vpcs
            .iter()
            .filter(|v| v.region == region)
            .filter_map(MeshVpc::legacy_group)
            .collect();
        for group in groups {
            let scope = format!("{region}#{group}");
            if let Some(body) = aws.store.load_state(WATCHER, &scope, WATCHER_STATE).await? {
                // An unreadable state is treated as undecided: the rule
                // applied to health gives the same answer the watcher would.
                if let Ok(state) = serde_json::from_value::<GroupState>(body) {
                    view.states.insert((region.clone(), group.to_owned()), state);
                }
            }
        }
        view.routers.insert(region, routers);
    }
    view.vpcs = vpcs;
    Ok(view)
}

/// Reads the transit gateways' side of every region read, for a preflight.
pub async fn tgw_snapshot(aws: &Aws, regions: &[RegionView]) -> Result<TgwSnapshot, Error> {
    let mut out = TgwSnapshot::default();
    for region in regions {
        let ec2 = aws.ec2(&region.region)?;
        let tgws: Vec<&TransitGateway> = region.transit_gateways.iter().collect();
        let ids: Vec<&str> = tgws.iter().map(|t| t.id.as_str()).collect();
        let (tables, associations, peerings) = futures::try_join!(
            ec2.tgw_route_tables(&tgws),
            ec2.vpc_attachment_associations(&ids),
            ec2.peering_attachments(),
        )?;
        let routes = join_all(tables.iter().map(|t| ec2.tgw_routes_expecting(&t.id, &[]))).await;
        for (table, routes) in tables.into_iter().zip(routes) {
            out.tables.push((table, routes?));
        }
        for a in &region.attachments {
            out.vpc_attachments
                .push((a.clone(), associations.get(&a.id).cloned().flatten()));
        }
        out.peerings.extend(peerings);
    }
    Ok(out)
}

/// The mesh attachment of `vpc` that is up, as `(attachment, tgw)`, or what
/// is wrong with it.
fn attachment(view: &InjectorView, vpc: &str, mesh: &str) -> Result<(String, String), String> {
    let mut found = Vec::new();
    for region in &view.regions {
        for a in region.attachments.iter().filter(|a| a.vpc_id == vpc) {
            let Some(tgw) = region
                .transit_gateways
                .iter()
                .find(|t| t.id == a.transit_gateway_id && t.in_mesh(mesh))
            else {
                continue;
            };
            if tgw.state.lifecycle() == Lifecycle::Up && a.state.lifecycle() == Lifecycle::Up {
                return Ok((a.id.clone(), tgw.id.clone()));
            }
            found.push(format!(
                "{} to {} is {} (TGW {})",
                a.id, tgw.id, a.state, tgw.state
            ));
        }
    }
    Err(if found.is_empty() {
        format!("{vpc} has no attachment to a mesh transit gateway")
    } else {
        format!("{vpc}: no attachment available: {}", found.join(", "))
    })
}

/// Every table read, with its region.
pub fn all_tables(regions: &[RegionView]) -> Vec<(Region, VpcRouteTable)> {
    regions
        .iter()
        .flat_map(|r| r.tables.iter().map(|t| (r.region.clone(), t.clone())))
        .collect()
}

/// Mesh VPCs that are attached (up).
fn attached_vpcs<'a>(view: &'a InjectorView, mesh: &str) -> Vec<&'a MeshVpc> {
    view.legacy
        .vpcs
        .iter()
        .filter(|v| attachment(view, &v.vpc.id, mesh).is_ok())
        .collect()
}

/// The preflight of `vpc` going `to`, on what `view` shows, with `changes`
/// the migration's plan (every stage).
pub async fn preflight(
    aws: &Aws,
    view: &InjectorView,
    vpc: &str,
    to: MigrationState,
    mesh: &str,
    changes: &[Change],
) -> Result<Vec<PreflightCheck>, Error> {
    let Some(x) = view.legacy.vpcs.iter().find(|v| v.vpc.id == vpc) else {
        return Ok(vec![PreflightCheck {
            check: "attached".to_owned(),
            passed: false,
            detail: format!("{vpc} is not a VPC attached to a mesh transit gateway in LBGP_REGIONS"),
        }]);
    };
    let tables = all_tables(&view.regions);
    let own: Vec<&VpcRouteTable> = tables
        .iter()
        .filter(|(_, t)| t.vpc_id == vpc && !t.ignored() && t.gateway_ids.is_empty())
        .map(|(_, t)| t)
        .collect();
    let routers: Vec<Instance> = view.legacy.routers.values().flatten().cloned().collect();
    match to {
        MigrationState::Migrated => {
            let snapshot = tgw_snapshot(aws, &view.regions).await?;
            let now = preflight::network(&view.legacy.vpcs, &tables, &snapshot, &routers);
            let after_tables = preflight::applied(&tables, changes);
            let after = preflight::network(&view.legacy.vpcs, &after_tables, &snapshot, &routers);
            let others: Vec<&MeshVpc> = attached_vpcs(view, mesh)
                .into_iter()
                .filter(|v| v.vpc.id != vpc)
                .collect();
            Ok(preflight::cutover_checks(&Cutover {
                vpc: x,
                attachment: attachment(view, vpc, mesh),
                tables: own,
                others,
                now: &now,
                after: &after,
            }))
        }
        MigrationState::Legacy => {
            let unserved: Vec<String> = own
                .iter()
                .filter(|t| {
                    let Some(name) = x.legacy_group() else {
                        return true;
                    };
                    let group = view.legacy.group(x, name);
                    // What the watcher decided for the group counts, as in the
                    // overlay: a member it failed away from serves nothing.
                    let state = view.legacy.states.get(&(x.region.clone(), name.to_owned()));
                    group.is_none_or(|g| {
                        migrate::serving(&g, state, t, &view.legacy.zones).is_none_or(|m| !m.healthy())
                    })
                })
                .map(|t| {
                    format!(
                        "{}: no healthy member of {} can serve it",
                        t.id,
                        x.legacy_group().unwrap_or("its legacy group (no tag)")
                    )
                })
                .collect();
            Ok(preflight::rollback_checks(x, unserved))
        }
    }
}

/// Splits `unit`'s changes into stages (see `lbgp_core::migrate`): the
/// first stage stays in `changes`, the rest goes to `extras.later` with
/// `again` set, so the loop applies them one stage after the other.
pub fn stage(unit: &mut UnitPlan, view: &InjectorView, ledger: &OwnershipLedger) {
    if view.legacy.vpcs.is_empty() {
        return;
    }
    let tables = all_tables(&view.regions);
    let table_vpc: BTreeMap<String, String> = tables
        .iter()
        .map(|(_, t)| (t.id.clone(), t.vpc_id.clone()))
        .collect();
    let owner: BTreeMap<Cidr, String> = preflight::owners(&view.legacy.vpcs);
    let states: BTreeMap<String, Option<MigrationState>> = view
        .legacy
        .vpcs
        .iter()
        .map(|v| {
            let s = view
                .overrides
                .get(&v.vpc.id)
                .copied()
                .or_else(|| v.migration().ok().flatten());
            (v.vpc.id.clone(), s)
        })
        .collect();
    let established = migrate::established(ledger, &table_vpc);
    let changes = std::mem::take(&mut unit.changes);
    let (first, second): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| migrate::stage(c, &table_vpc, &owner, &states, &established) == 1);
    let (mut now, mut later) = if first.is_empty() {
        (second, vec![])
    } else {
        (first, second)
    };
    if !later.is_empty() {
        let annotate = |c: &mut Change, n: u8| {
            let why = match n {
                1 => {
                    "stage 1 of 2 (the safe order: the aggregates and a VPC's own egress first, the others' routes toward it second)"
                }
                _ => "stage 2 of 2 (the others' routes toward a VPC, once its own egress has changed)",
            };
            c.reason = ChangeReason::Other(format!("{}; {why}", c.reason));
        };
        now.iter_mut().for_each(|c| annotate(c, 1));
        later.iter_mut().for_each(|c| annotate(c, 2));
    }
    unit.changes = now;
    if let Writes::Owned { extras, .. } = &mut unit.writes {
        extras.again = !later.is_empty();
        extras.later = later;
    }
}

/// The plan of an adoption: ledger records for exactly the routes of
/// `vpc`'s tables that equal what the overlay wants there and are not ours
/// yet; no route is written.
pub fn adopt(
    unit: &mut UnitPlan,
    view: &InjectorView,
    ledger: &OwnershipLedger,
    desired: &[(lbgp_core::RouteKey, RouteTarget)],
    vpc: &str,
) {
    let tables = all_tables(&view.regions);
    let ours: BTreeSet<&str> = tables
        .iter()
        .filter(|(_, t)| t.vpc_id == vpc)
        .map(|(_, t)| t.id.as_str())
        .collect();
    let mut fixes = Vec::new();
    let mut adopted = Vec::new();
    for (region, table) in tables.iter().filter(|(_, t)| ours.contains(t.id.as_str())) {
        for r in &table.routes {
            let wanted = desired.iter().find(|(k, _)| k == &r.route.key).map(|(_, t)| t);
            if wanted == Some(&r.route.target)
                && migrate::is_overlay_target(&r.route.target)
                && ledger.get(&r.route.key).is_none()
            {
                fixes.push(LedgerFix::Record {
                    key: r.route.key.clone(),
                    target: r.route.target.clone(),
                });
                adopted.push(ChangeReport {
                    op: "adopt".to_owned(),
                    region: region.to_string(),
                    route_table_id: table.id.clone(),
                    destination: r.route.key.destination.to_string(),
                    target: r.route.target.to_string(),
                    previous_target: None,
                    reason:
                        "the old tooling's route equals what the legacy overlay wants: recorded as lbgp's"
                            .to_owned(),
                    account: None,
                });
            }
        }
    }
    adopted.sort();
    unit.changes.clear();
    unit.writes = Writes::Owned {
        fixes,
        extras: OwnedExtras {
            adopted,
            ..OwnedExtras::default()
        },
    };
}

/// Refuses a migration whose preflight failed: nothing is written.
pub fn refuse(unit: &mut UnitPlan, vpc: &str, checks: Vec<PreflightCheck>) {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.check, c.detail))
        .collect();
    let why = format!(
        "preflight of {vpc} failed, nothing was changed: {}",
        failed.join(" | ")
    );
    tracing::warn!(vpc, reason = %why, "migration refused");
    unit.changes.clear();
    unit.errors.push(ErrorReport {
        region: "*".to_owned(),
        resource: Some(vpc.to_owned()),
        error: why.clone(),
        account: None,
    });
    unit.writes = Writes::Owned {
        fixes: vec![],
        extras: OwnedExtras {
            preflight: checks,
            refused: Some(why),
            ..OwnedExtras::default()
        },
    };
}

/// Adds a passed preflight and the tag a migration sets first.
pub fn accept(unit: &mut UnitPlan, x: &MeshVpc, to: MigrationState, checks: Vec<PreflightCheck>) {
    if let Writes::Owned { extras, .. } = &mut unit.writes {
        extras.preflight = checks;
        if x.migration().ok().flatten() != Some(to) {
            extras.tags.push(TagWrite {
                region: x.region.clone(),
                resource: x.vpc.id.clone(),
                key: TAG_MIGRATION.to_owned(),
                value: to.as_tag().to_owned(),
            });
        }
    }
}

/// The tracer's network as the injector sees it now: every mesh region's
/// VPCs, route tables and legacy routers, and the transit gateways' tables,
/// attachments and peerings; with the regions that could not be read (the
/// network is then partial, and a trace through them says "no route").
pub async fn network(
    injector: &crate::Injector,
    aws: &Aws,
) -> Result<(lbgp_core::trace::Network, Vec<ErrorReport>), lbgp_runtime::Error> {
    let regions = &injector.config.common.regions;
    let ledger = aws
        .store
        .load_ledger(crate::FUNCTION, &injector.config.common.mesh, regions)
        .await?;
    let view = injector.read(aws, regions, &ledger, true).await;
    let snapshot = tgw_snapshot(aws, &view.regions).await?;
    let tables = all_tables(&view.regions);
    let routers: Vec<Instance> = view.legacy.routers.values().flatten().cloned().collect();
    Ok((
        preflight::network(&view.legacy.vpcs, &tables, &snapshot, &routers),
        view.unreadable,
    ))
}
