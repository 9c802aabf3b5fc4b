//! The propagator's prefix-list route style (`LBGP_ROUTE_STYLE`): what to
//! read for it, and how its plan joins the unit's. The rules are
//! `lbgp_core::propagate::lists`'.

use std::collections::BTreeSet;

use lbgp_aws::context::Aws;
use lbgp_core::config::{CommonConfig, PropagatorConfig};
use lbgp_core::desire::Desire;
use lbgp_core::propagate::MeshView;
use lbgp_core::propagate::lists::{self, TgwListInput, TgwListPlan, TgwListsView};
use lbgp_core::report::ErrorReport;
use lbgp_core::topology::Lifecycle;
use lbgp_core::{OwnershipLedger, Region};
use lbgp_runtime::{UnitPlan, Writes};

/// True when this run reconciles prefix lists: the style is set (to
/// `prefix-list`, or to `routes` to withdraw them). Unset, nothing about
/// lists is read or written: the propagator's calls are those of before.
pub fn enabled(config: &PropagatorConfig) -> bool {
    config.route_style_set
}

/// What the lists' plan needs of the mesh view before the routes-style
/// desire consumes it: the TGW route tables read, per region, and the
/// peering attachments in transition.
#[derive(Debug, Default)]
pub struct Seen {
    tables: Vec<(Region, Vec<String>)>,
    transitional: BTreeSet<String>,
}

/// Notes what [`read`] and [`plan`] need of `view`.
pub fn seen(view: &MeshView) -> Seen {
    let mut out = Seen::default();
    for r in &view.regions {
        out.tables.push((
            r.region.clone(),
            r.route_tables.iter().map(|t| t.id.clone()).collect(),
        ));
        for p in r
            .peerings
            .iter()
            .filter(|p| p.state.lifecycle() == Lifecycle::Transitional)
        {
            out.transitional.insert(p.id.clone());
        }
    }
    out
}

/// Reads our lists (by tag) and the references of every table read and of
/// every table one of our lists names (a table out of the mesh may still
/// reference one). A region that cannot be read is reported and left alone.
pub async fn read(aws: &Aws, seen: &Seen, mesh: &str) -> (TgwListsView, Vec<ErrorReport>) {
    let mut out = TgwListsView::default();
    let regions: Vec<Region> = seen.tables.iter().map(|(r, _)| r.clone()).collect();
    let reads = lbgp_runtime::read::read_each_region_of(&regions, "prefix lists", |region| {
        let tables = seen
            .tables
            .iter()
            .find(|(r, _)| r == region)
            .map(|(_, t)| t.as_slice())
            .unwrap_or_default();
        read_region(aws, region, tables, mesh)
    })
    .await;
    for (_, (lists, references)) in reads.read {
        out.lists.extend(lists);
        out.references.extend(references);
    }
    out.unreadable.extend(reads.unreadable);
    (out, reads.errors)
}

async fn read_region(
    aws: &Aws,
    region: &Region,
    tables: &[String],
    mesh: &str,
) -> Result<(Vec<lbgp_core::prefix_list::ManagedList>, Vec<lists::TgwReference>), lbgp_aws::Error> {
    let ec2 = aws.ec2(region)?;
    let found = ec2.mesh_prefix_lists(mesh).await?;
    let ours: Vec<_> = found.into_iter().filter(|l| l.tgw_key(mesh).is_some()).collect();
    let ids: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut references = ec2.tgw_prefix_list_references(&ids).await?;
    let named: BTreeSet<String> = ours
        .iter()
        .filter_map(|l| l.tgw_key(mesh))
        .filter_map(|k| k.target.split_once('/').map(|(t, _)| t.to_owned()))
        .filter(|t| !tables.contains(t))
        .collect();
    for t in &named {
        match ec2.tgw_prefix_list_references(&[t.as_str()]).await {
            Ok(r) => references.extend(r),
            // The table is gone, and its references with it.
            Err(e) if e.code() == Some("InvalidRouteTableID.NotFound") => {}
            Err(e) => return Err(e),
        }
    }
    Ok((ours, references))
}

/// Plans the lists and applies the plan's decisions to `desire`.
pub fn plan(
    config: &PropagatorConfig,
    seen: &Seen,
    desire: &mut Desire,
    ledger: &OwnershipLedger,
    (lists, errors): &(TgwListsView, Vec<ErrorReport>),
) -> TgwListPlan {
    let mut planned = lists::plan(&TgwListInput {
        mesh: &config.common.mesh,
        style: config.route_style,
        quota: config.tgw_route_quota,
        desire,
        lists,
        transitional: &seen.transitional,
        ledger,
    });
    // Tables of a region whose lists could not be read: as they are.
    for (region, tables) in &seen.tables {
        if lists.unreadable.contains(region) {
            for t in tables {
                desire.frozen_tables.insert(lbgp_core::RouteTableRef {
                    region: region.clone(),
                    kind: lbgp_core::TableKind::TransitGateway,
                    id: t.clone(),
                });
            }
        }
    }
    planned.errors.extend(errors.iter().cloned());
    planned.apply_to(desire);
    for s in &planned.steps {
        tracing::info!(region = %s.region(), step = ?s, "prefix list step planned");
    }
    planned
}

/// Joins the lists' plan to the unit's: its steps go first, another stage
/// follows when switching back needs one, and the blast-radius limit counts
/// routes and entries together (refused whole).
pub fn attach(unit: &mut UnitPlan, lists: TgwListPlan, common: &CommonConfig, force: bool) {
    let Writes::Owned { extras, .. } = &mut unit.writes else {
        return;
    };
    let weight = lists.weight();
    let total = unit.changes.len() + weight;
    if weight > 0 && !force && total > common.max_changes {
        extras.refused = Some(format!(
            "plan refused: {} route changes and {weight} prefix-list changes (references and entries) exceed LBGP_MAX_CHANGES={}; nothing was applied. \
             Check the plan with a dry run, then raise the limit or invoke with {{\"force\": true}}",
            unit.changes.len(),
            common.max_changes
        ));
        tracing::warn!(
            total,
            limit = common.max_changes,
            "plan refused by the blast-radius guard (prefix lists counted)"
        );
        extras.again = false;
        unit.changes.clear();
        return;
    }
    extras.again |= lists.again && (!lists.steps.is_empty() || !unit.changes.is_empty());
    extras.prefix_lists = lists.steps;
}
