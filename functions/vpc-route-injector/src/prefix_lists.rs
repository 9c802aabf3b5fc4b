//! The injector's prefix-list route style (`LBGP_ROUTE_STYLE`): what to
//! read for it, and how its plan joins the unit's. The rules are
//! `lbgp_core::prefix_list`'s.

use std::borrow::Cow;

use lbgp_aws::context::Aws;
use lbgp_core::config::{CommonConfig, InjectorConfig, RouteStyle};
use lbgp_core::desire::Desire;
use lbgp_core::inject::InjectorView;
use lbgp_core::prefix_list::{self, ListInput, ListPlan, ListsView};
use lbgp_core::report::ErrorReport;
use lbgp_core::{OwnershipLedger, Region};
use lbgp_runtime::{UnitPlan, Writes};

/// True when this run reconciles prefix lists: the style is set (to
/// `prefix-list`, or to `routes` to withdraw them). Unset, nothing about
/// lists is read or written: the injector's calls are those of before.
pub fn enabled(config: &InjectorConfig) -> bool {
    config.route_style_set
}

/// The configuration the routes-style desire is computed with: in
/// prefix-list style the table's prefixes are not summarised to fit the
/// route quota (a list holds them exactly; its max entries are checked
/// against the quota instead).
pub fn desire_config(config: &InjectorConfig) -> Cow<'_, InjectorConfig> {
    if config.route_style == RouteStyle::PrefixList {
        let mut lifted = config.clone();
        lifted.route_quota = usize::MAX / 4;
        Cow::Owned(lifted)
    } else {
        Cow::Borrowed(config)
    }
}

/// Reads the prefix lists of every region read: ours (by tag), the routes
/// toward them anywhere, and the lists every read table references. A
/// region whose lists cannot be read is reported and left alone.
pub async fn read(aws: &Aws, view: &InjectorView, mesh: &str) -> (ListsView, Vec<ErrorReport>) {
    let mut out = ListsView::default();
    let regions: Vec<Region> = view.regions.iter().map(|r| r.region.clone()).collect();
    let reads = lbgp_runtime::read::read_each_region_of(&regions, "prefix lists", |region| async move {
        let region_view = view
            .regions
            .iter()
            .find(|r| &r.region == region)
            .ok_or_else(|| lbgp_aws::Error::UnknownRegion(region.to_string()))?;
        read_region(aws, region, region_view, mesh).await
    })
    .await;
    for (_, (lists, routes)) in reads.read {
        out.lists.extend(lists);
        out.routes.extend(routes);
    }
    out.unreadable.extend(reads.unreadable);
    (out, reads.errors)
}

async fn read_region(
    aws: &Aws,
    region: &Region,
    view: &lbgp_core::inject::RegionView,
    mesh: &str,
) -> Result<(Vec<prefix_list::ManagedList>, Vec<prefix_list::ListRoute>), lbgp_aws::Error> {
    let ec2 = aws.ec2(region)?;
    let mut lists = ec2.mesh_prefix_lists(mesh).await?;
    let ours: Vec<&str> = lists
        .iter()
        .filter(|l| l.key(mesh).is_some())
        .map(|l| l.id.as_str())
        .collect();
    let tables: Vec<&str> = view.tables.iter().map(|t| t.id.as_str()).collect();
    let routes = ec2.prefix_list_routes(&tables, &ours).await?;
    let mut referenced: Vec<&str> = routes
        .iter()
        .map(|r| r.prefix_list_id.as_str())
        .filter(|id| !lists.iter().any(|l| l.id == *id))
        .collect();
    referenced.sort_unstable();
    referenced.dedup();
    let more = ec2.prefix_lists_by_id(&referenced).await?;
    lists.extend(more);
    Ok((lists, routes))
}

/// Plans the lists and applies the plan's decisions to `desire`.
pub fn plan(
    config: &InjectorConfig,
    view: &InjectorView,
    desire: &mut Desire,
    ledger: &OwnershipLedger,
    (lists, errors): &(ListsView, Vec<ErrorReport>),
) -> ListPlan {
    let mut planned = prefix_list::plan(&ListInput {
        mesh: &config.common.mesh,
        style: config.route_style,
        quota: config.route_quota,
        desire,
        view,
        lists,
        ledger,
    });
    // Tables of a region whose lists could not be read: as they are.
    for region in &lists.unreadable {
        for t in view
            .regions
            .iter()
            .filter(|r| &r.region == region)
            .flat_map(|r| &r.tables)
        {
            planned.held.insert(lbgp_core::RouteTableRef {
                region: region.clone(),
                kind: lbgp_core::TableKind::Vpc,
                id: t.id.clone(),
            });
        }
    }
    planned.errors.extend(errors.iter().cloned());
    planned.apply_to(desire);
    for s in &planned.steps {
        tracing::info!(region = %s.region(), step = ?s, "prefix list step planned");
    }
    planned
}

/// Joins the prefix-list plan to the unit's: its steps go first, another
/// stage follows when a style switch needs one, and the blast-radius limit
/// counts routes, list routes and entries together (refused whole).
pub fn attach(unit: &mut UnitPlan, lists: ListPlan, common: &CommonConfig, force: bool) {
    let Writes::Owned { extras, .. } = &mut unit.writes else {
        return;
    };
    let weight = lists.weight();
    let total = unit.changes.len() + extras.later.len() + weight;
    if weight > 0 && !force && total > common.max_changes {
        let why = format!(
            "plan refused: {} route changes and {weight} prefix-list changes (routes toward lists and entries) exceed LBGP_MAX_CHANGES={}; nothing was applied. \
             Check the plan with a dry run, then raise the limit or invoke with {{\"force\": true}}",
            unit.changes.len() + extras.later.len(),
            common.max_changes
        );
        tracing::warn!(
            total,
            limit = common.max_changes,
            "plan refused by the blast-radius guard (prefix lists counted)"
        );
        extras.refused = Some(why);
        extras.later.clear();
        extras.again = false;
        unit.changes.clear();
        return;
    }
    extras.again |= lists.again && (!lists.steps.is_empty() || !unit.changes.is_empty());
    extras.prefix_lists = lists.steps;
}
