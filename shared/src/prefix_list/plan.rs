//! The prefix-list planner: from the routes a table should carry (the
//! routes-style desire) to lists, entries and one route per table.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Family, ListKey, ListRef, ListRoute, ListState, ListStep, ListsView, MAX_LIST_ENTRIES, ManagedList,
    conflicting, diff, safe_for, sized,
};
use crate::config::RouteStyle;
use crate::desire::Desire;
use crate::inject::InjectorView;
use crate::model::{RouteOrigin, RouteTableRef, RouteTarget};
use crate::plan::OwnershipLedger;
use crate::prefix::{Cidr, aggregate};
use crate::report::{ErrorReport, SkipReport};
use crate::topology::VpcRouteTable;

/// What the prefix-list planner works from.
#[derive(Debug, Clone, Copy)]
pub struct ListInput<'a> {
    /// `LBGP_MESH`.
    pub mesh: &'a str,
    /// `LBGP_ROUTE_STYLE`.
    pub style: RouteStyle,
    /// `LBGP_ROUTE_QUOTA`: routes per table and family.
    pub quota: usize,
    /// The routes-style desire (in prefix-list style computed without
    /// summarising: a list holds the exact prefixes).
    pub desire: &'a Desire,
    /// What the run read.
    pub view: &'a InjectorView,
    /// The lists and prefix-list routes read.
    pub lists: &'a ListsView,
    /// The ownership ledger of CIDR routes.
    pub ledger: &'a OwnershipLedger,
}

/// The prefix-list part of a run's plan, and what it changes in the
/// routes-style desire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPlan {
    /// The writes, sorted in the order they are applied.
    pub steps: Vec<ListStep>,
    /// Tables whose routes toward their TGW a list carries: those CIDR
    /// routes are no longer desired there.
    pub carried: BTreeSet<RouteTableRef>,
    /// Tables whose CIDR routes wait for this stage's list writes.
    pub held: BTreeSet<RouteTableRef>,
    /// Tables left exactly as they are, with the error to report.
    pub refused: BTreeMap<RouteTableRef, String>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Failures confined to a list.
    pub errors: Vec<ErrorReport>,
    /// A switch of style needs another stage (routes out before a list
    /// route in, or the other way round).
    pub again: bool,
}

impl ListPlan {
    /// Applies the plan's decisions to the routes-style desire: carried
    /// tables lose their desired routes toward a transit gateway (other
    /// targets, such as a migration overlay's, stay CIDR routes, which win
    /// over a list at the same prefix); refused and held tables are frozen.
    ///
    /// A carried route whose destination a static CIDR route toward
    /// another target holds is a conflict, as in the routes style: that
    /// route wins over the list's entry (AWS route priority: static routes
    /// before prefix-list routes), so the table does not route it as lbgp
    /// wants, and the route is never touched.
    pub fn apply_to(&self, desire: &mut Desire) {
        let carried = |d: &crate::model::DesiredRoute| {
            self.carried.contains(&d.key.table) && matches!(d.target, RouteTarget::TransitGateway(_))
        };
        let statics: BTreeMap<&crate::model::RouteKey, &crate::model::Route> = desire
            .actual
            .iter()
            .filter(|r| r.origin == RouteOrigin::Static)
            .map(|r| (&r.key, r))
            .collect();
        let held: Vec<crate::report::ConflictReport> = desire
            .desired
            .iter()
            .filter(|d| carried(d))
            .filter_map(|d| {
                let r = statics.get(&d.key).filter(|r| r.target != d.target)?;
                Some(crate::report::ConflictReport::from(&crate::plan::Conflict {
                    key: d.key.clone(),
                    wanted: d.target.clone(),
                    held_by: r.target.clone(),
                    held_by_origin: r.origin,
                }))
            })
            .collect();
        desire.conflicts.extend(held);
        desire.desired.retain(|d| !carried(d));
        for (table, error) in &self.refused {
            desire.refuse(table.clone(), error.clone());
        }
        desire.frozen_tables.extend(self.held.iter().cloned());
        desire.skipped.extend(self.skipped.iter().cloned());
        desire.errors.extend(self.errors.iter().cloned());
        desire.normalise();
    }

    /// What the steps weigh against the blast-radius limit.
    pub fn weight(&self) -> usize {
        self.steps.iter().map(ListStep::weight).sum()
    }
}

/// One read table, with what the rules need of it.
struct TableInfo<'a> {
    table: &'a VpcRouteTable,
    own: Vec<Cidr>,
}

/// The state the planner builds up.
struct Planner<'a> {
    input: ListInput<'a>,
    out: ListPlan,
    tables: BTreeMap<RouteTableRef, TableInfo<'a>>,
    by_id: BTreeMap<&'a str, &'a ManagedList>,
    ours: BTreeMap<&'a str, ListKey>,
    our_routes: BTreeMap<&'a RouteTableRef, Vec<&'a ListRoute>>,
    foreign_routes: BTreeMap<&'a RouteTableRef, Vec<&'a ListRoute>>,
    /// References to each list of ours once the steps are applied.
    references: BTreeMap<&'a str, i64>,
    /// Lists some table carries its routes in.
    kept: BTreeSet<ListKey>,
}

/// Plans the prefix lists of a run (see the module's rules).
pub fn plan(input: &ListInput<'_>) -> ListPlan {
    let mut p = Planner::new(*input);
    let wanted = p.wanted();
    let mut handled: BTreeSet<(RouteTableRef, Family)> = BTreeSet::new();
    for (key, (tables, entries)) in wanted {
        for t in p.list_for(&key, &tables, &entries) {
            handled.insert((t, key.family));
        }
    }
    p.withdraw(&handled);
    p.delete_unreferenced();
    let mut out = p.out;
    out.steps.sort();
    out.steps.dedup();
    out.skipped.sort();
    out.skipped.dedup();
    out.errors.sort();
    out
}

impl<'a> Planner<'a> {
    fn new(input: ListInput<'a>) -> Self {
        let mut tables = BTreeMap::new();
        for r in &input.view.regions {
            for t in &r.tables {
                let own = r
                    .vpcs
                    .iter()
                    .find(|v| v.id == t.vpc_id)
                    .map(|v| v.cidrs.clone())
                    .unwrap_or_default();
                let table = RouteTableRef {
                    region: r.region.clone(),
                    kind: crate::model::TableKind::Vpc,
                    id: t.id.clone(),
                };
                tables.insert(table, TableInfo { table: t, own });
            }
        }
        let by_id: BTreeMap<&str, &ManagedList> =
            input.lists.lists.iter().map(|l| (l.id.as_str(), l)).collect();
        let ours: BTreeMap<&str, ListKey> = input
            .lists
            .lists
            .iter()
            .filter(|l| l.state != ListState::Deleted)
            .filter_map(|l| Some((l.id.as_str(), l.key(input.mesh)?)))
            .collect();
        let mut our_routes: BTreeMap<&RouteTableRef, Vec<&ListRoute>> = BTreeMap::new();
        let mut foreign_routes: BTreeMap<&RouteTableRef, Vec<&ListRoute>> = BTreeMap::new();
        let mut references: BTreeMap<&str, i64> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for r in &input.lists.routes {
            if !seen.insert((&r.table, &r.prefix_list_id)) {
                continue;
            }
            if r.origin == RouteOrigin::Static && ours.contains_key(r.prefix_list_id.as_str()) {
                our_routes.entry(&r.table).or_default().push(r);
                *references.entry(r.prefix_list_id.as_str()).or_default() += 1;
            } else {
                foreign_routes.entry(&r.table).or_default().push(r);
            }
        }
        Planner {
            input,
            out: ListPlan::default(),
            tables,
            by_id,
            ours,
            our_routes,
            foreign_routes,
            references,
            kept: BTreeSet::new(),
        }
    }

    /// True when the table is planned this run.
    fn planned(&self, table: &RouteTableRef) -> bool {
        self.input.desire.in_scope(table) && !self.input.lists.unreadable.contains(&table.region)
    }

    /// Each list wanted: the tables that want it and its entries.
    #[allow(clippy::type_complexity)]
    fn wanted(&self) -> BTreeMap<ListKey, (Vec<RouteTableRef>, Vec<Cidr>)> {
        let mut out: BTreeMap<ListKey, (BTreeSet<RouteTableRef>, Vec<Cidr>)> = BTreeMap::new();
        if self.input.style != RouteStyle::PrefixList {
            return BTreeMap::new();
        }
        let mut chosen: BTreeMap<(&RouteTableRef, Family), &str> = BTreeMap::new();
        for d in &self.input.desire.desired {
            let RouteTarget::TransitGateway(tgw) = &d.target else {
                continue;
            };
            if !self.planned(&d.key.table) || !self.tables.contains_key(&d.key.table) {
                continue;
            }
            let family = Family::of(&d.key.destination);
            // A table is served by one TGW; should the desire name two, the
            // first keeps the list, the rest stay routes.
            let tgw = *chosen.entry((&d.key.table, family)).or_insert(tgw.as_str());
            if tgw != d.target.id() {
                continue;
            }
            let key = ListKey {
                region: d.key.table.region.clone(),
                family,
                target: tgw.to_owned(),
            };
            let slot = out.entry(key).or_default();
            slot.0.insert(d.key.table.clone());
            slot.1.push(d.key.destination);
        }
        out.into_iter()
            .map(|(k, (tables, entries))| (k, (tables.into_iter().collect(), aggregate(&entries))))
            .collect()
    }

    /// The list of ours that stands for `key`: the one referenced, else the
    /// lowest id (a duplicate, from a read lagging a create, is deleted once
    /// nothing references it).
    fn canonical(&self, key: &ListKey) -> Option<&'a ManagedList> {
        let mut candidates: Vec<&'a ManagedList> = self
            .ours
            .iter()
            .filter(|(_, k)| *k == key)
            .filter_map(|(id, _)| self.by_id.get(id).copied())
            .collect();
        candidates.sort_by_key(|l| {
            (
                self.references.get(l.id.as_str()).copied().unwrap_or(0) == 0,
                l.id.clone(),
            )
        });
        candidates.first().copied()
    }

    fn refuse(&mut self, table: &RouteTableRef, error: String) {
        self.out.refused.entry(table.clone()).or_insert(error);
    }

    fn skip(&mut self, table: &RouteTableRef, reason: String) {
        self.out.skipped.push(SkipReport {
            region: table.region.to_string(),
            resource: table.id.clone(),
            destination: None,
            reason,
            account: None,
        });
    }

    /// Static CIDR routes of one family in a table that are not ours, plus
    /// what foreign prefix lists there weigh: what our list shares the
    /// quota with.
    fn others(&self, table: &RouteTableRef, family: Family) -> usize {
        let Some(info) = self.tables.get(table) else {
            return 0;
        };
        let cidr_routes = info
            .table
            .routes
            .iter()
            .filter(|r| {
                r.route.origin == RouteOrigin::Static && Family::of(&r.route.key.destination) == family
            })
            .filter(|r| {
                !self
                    .input
                    .ledger
                    .get(&r.route.key)
                    .is_some_and(|e| e.recognises(&r.route.target))
            })
            .count();
        let lists: usize = self
            .foreign_routes
            .get(table)
            .into_iter()
            .flatten()
            .filter_map(|r| self.by_id.get(r.prefix_list_id.as_str()))
            .filter(|l| l.family == Some(family))
            .filter_map(|l| l.weight())
            .sum();
        cidr_routes + lists
    }

    /// Our CIDR routes of one family in a table (they give way to the list).
    fn our_cidr_routes(&self, table: &RouteTableRef, family: Family) -> usize {
        self.tables.get(table).map_or(0, |info| {
            info.table
                .routes
                .iter()
                .filter(|r| {
                    r.route.origin == RouteOrigin::Static && Family::of(&r.route.key.destination) == family
                })
                .filter(|r| {
                    self.input
                        .ledger
                        .get(&r.route.key)
                        .is_some_and(|e| e.recognises(&r.route.target))
                })
                .count()
        })
    }

    /// Why a table may not reference a list with `entries` toward
    /// `target`, if it may not.
    fn unsafe_for(&self, table: &RouteTableRef, key: &ListKey, entries: &[Cidr]) -> Option<String> {
        let info = self.tables.get(table)?;
        if let Err(e) = safe_for(entries, &info.own) {
            return Some(format!("prefix list {key}: {e}; table left unchanged"));
        }
        let target = RouteTarget::TransitGateway(key.target.clone());
        for r in self.foreign_routes.get(table).into_iter().flatten() {
            if r.target == target {
                continue;
            }
            let Some(list) = self.by_id.get(r.prefix_list_id.as_str()) else {
                return Some(format!(
                    "{} references prefix list {} whose entries could not be read; table left unchanged",
                    table.id, r.prefix_list_id
                ));
            };
            if list.family.is_some_and(|f| f != key.family) {
                continue;
            }
            let Some(theirs) = &list.entries else {
                return Some(format!(
                    "{} references prefix list {} whose entries could not be read; table left unchanged",
                    table.id, r.prefix_list_id
                ));
            };
            if let Some((a, b)) = conflicting(entries, theirs) {
                return Some(format!(
                    "prefix list {} toward {} holds {b}, which overlaps {a} of lbgp's list toward {}: with both referenced AWS picks one at random; table left unchanged",
                    r.prefix_list_id, r.target, key.target
                ));
            }
        }
        None
    }

    /// Plans one wanted list and the routes toward it; returns the tables
    /// (and so families) it handled.
    fn list_for(&mut self, key: &ListKey, tables: &[RouteTableRef], entries: &[Cidr]) -> Vec<RouteTableRef> {
        let existing = self.canonical(key);
        if let Some(l) = existing {
            let wait = match l.state {
                ListState::Busy => Some(format!(
                    "prefix list {} of {key} is being written; checked again on a later run",
                    l.id
                )),
                ListState::Failed => {
                    self.out.errors.push(ErrorReport {
                        region: key.region.to_string(),
                        resource: Some(l.id.clone()),
                        error: format!(
                            "prefix list {} of {key}: AWS refused its last change ({}); its tables are left unchanged",
                            l.id, l.state_message
                        ), account: None,
                    });
                    Some(format!("prefix list {} is in a failed state", l.id))
                }
                _ => None,
            };
            if let Some(reason) = wait {
                for t in tables {
                    self.skip(t, reason.clone());
                    self.out.held.insert(t.clone());
                }
                return tables.to_vec();
            }
        }
        let need = entries.len();
        if need > MAX_LIST_ENTRIES {
            for t in tables {
                self.refuse(
                    t,
                    format!("prefix list {key}: {need} entries, above AWS's {MAX_LIST_ENTRIES} per list; table left unchanged"),
                );
            }
            return tables.to_vec();
        }
        let quota = self.input.quota;
        let mut fit: Vec<(RouteTableRef, usize)> = Vec::new();
        for t in tables {
            if let Some(why) = self.unsafe_for(t, key, entries) {
                self.refuse(t, why);
                continue;
            }
            let others = self.others(t, key.family);
            let room = quota.saturating_sub(others);
            if room < need {
                self.refuse(t, quota_error(t, key, need, others, quota));
                continue;
            }
            fit.push((t.clone(), room));
        }
        let Some(min_room) = fit.iter().map(|(_, r)| *r).min() else {
            return tables.to_vec();
        };
        let (list, size) = match existing {
            Some(l) => {
                let max = l.max_entries.unwrap_or(0);
                let size = if max >= need {
                    max
                } else {
                    let to = sized(need).min(min_room);
                    self.out.steps.push(ListStep::Resize {
                        region: key.region.clone(),
                        list_id: l.id.clone(),
                        from: max,
                        to,
                    });
                    to
                };
                let current = l.entries.clone().unwrap_or_default();
                let (add, remove) = diff(&current, entries);
                if !add.is_empty() || !remove.is_empty() {
                    self.out.steps.push(ListStep::SyncEntries {
                        region: key.region.clone(),
                        list_id: l.id.clone(),
                        version: l.version,
                        add,
                        remove,
                        entries: entries.to_vec(),
                    });
                }
                (ListRef::Id(l.id.clone()), size)
            }
            None => {
                let size = sized(need).min(min_room);
                self.out.steps.push(ListStep::CreateList {
                    key: key.clone(),
                    name: key.name(self.input.mesh),
                    max_entries: size,
                    entries: entries.to_vec(),
                });
                (ListRef::New(key.clone()), size)
            }
        };
        let target = RouteTarget::TransitGateway(key.target.clone());
        for (t, room) in fit {
            if room < size {
                let others = quota - room;
                self.refuse(&t, quota_error(&t, key, size, others, quota));
                continue;
            }
            self.out.carried.insert(t.clone());
            self.kept.insert(key.clone());
            let mine: Vec<&'a ListRoute> = self
                .our_routes
                .get(&t)
                .into_iter()
                .flatten()
                .copied()
                .filter(|r| {
                    self.ours
                        .get(r.prefix_list_id.as_str())
                        .is_some_and(|k| k.family == key.family)
                })
                .collect();
            let mut has = false;
            for r in mine {
                if !has && ListRef::Id(r.prefix_list_id.clone()) == list {
                    has = true;
                    if r.target != target {
                        self.out.steps.push(ListStep::ReplaceRoute {
                            table: t.clone(),
                            list_id: r.prefix_list_id.clone(),
                            target: target.clone(),
                            previous: r.target.clone(),
                        });
                    }
                } else {
                    self.delete_route(r);
                }
            }
            if has {
                continue;
            }
            let during = self.others(&t, key.family) + self.our_cidr_routes(&t, key.family);
            if during + size <= quota {
                if let ListRef::Id(id) = &list
                    && let Some((k, _)) = self.by_id.get_key_value(id.as_str())
                {
                    *self.references.entry(k).or_default() += 1;
                }
                self.out.steps.push(ListStep::CreateRoute {
                    table: t.clone(),
                    list: list.clone(),
                    target: target.clone(),
                });
            } else {
                // No room for the list beside the routes it replaces: the
                // routes go first, the list's route in the next stage.
                self.out.again = true;
                self.skip(
                    &t,
                    format!(
                        "no room for prefix list {key} ({size} max entries) beside the {} routes it replaces: routes deleted first, the list's route follows in the next stage",
                        self.our_cidr_routes(&t, key.family)
                    ),
                );
            }
        }
        tables.to_vec()
    }

    fn delete_route(&mut self, r: &'a ListRoute) {
        self.out.steps.push(ListStep::DeleteRoute {
            table: r.table.clone(),
            list_id: r.prefix_list_id.clone(),
            target: r.target.clone(),
        });
        *self.references.entry(r.prefix_list_id.as_str()).or_default() -= 1;
    }

    /// Routes toward our lists in planned tables that no list is wanted for
    /// any more (style switched back, table out of the mesh): deleted once
    /// the CIDR routes that replace them are in, or first when the table
    /// has no room for both.
    fn withdraw(&mut self, handled: &BTreeSet<(RouteTableRef, Family)>) {
        let routes: Vec<&'a ListRoute> = self.our_routes.values().flatten().copied().collect();
        for r in routes {
            let Some(family) = self.ours.get(r.prefix_list_id.as_str()).map(|k| k.family) else {
                continue;
            };
            if !self.planned(&r.table) || handled.contains(&(r.table.clone(), family)) {
                continue;
            }
            let desire = self.input.desire;
            let present: BTreeSet<_> = desire
                .actual
                .iter()
                .filter(|a| a.key.table == r.table && a.origin == RouteOrigin::Static)
                .map(|a| (&a.key.destination, &a.target))
                .collect();
            let missing = desire
                .desired
                .iter()
                .filter(|d| d.key.table == r.table && Family::of(&d.key.destination) == family)
                .filter(|d| !present.contains(&(&d.key.destination, &d.target)))
                .count();
            if missing == 0 {
                self.delete_route(r);
                continue;
            }
            let statics = desire
                .actual
                .iter()
                .filter(|a| a.key.table == r.table && a.origin == RouteOrigin::Static)
                .filter(|a| Family::of(&a.key.destination) == family)
                .count();
            let weight = self
                .by_id
                .get(r.prefix_list_id.as_str())
                .and_then(|l| l.weight())
                .unwrap_or(0);
            self.out.again = true;
            if statics + weight + missing <= self.input.quota {
                self.skip(
                    &r.table,
                    format!(
                        "route to prefix list {} kept until the {missing} routes replacing it are in",
                        r.prefix_list_id
                    ),
                );
            } else {
                self.delete_route(r);
                self.out.held.insert(r.table.clone());
                self.skip(
                    &r.table,
                    format!(
                        "no room for {missing} routes beside prefix list {} ({weight} max entries): the list's route goes first, the routes follow in the next stage",
                        r.prefix_list_id
                    ),
                );
            }
        }
    }

    /// Lists of ours nothing references once the steps are applied, in
    /// regions read whole: deleted.
    fn delete_unreferenced(&mut self) {
        // A list some table is to reference stays, even while its route
        // waits for the next stage.
        let in_use = std::mem::take(&mut self.kept);
        let ours: Vec<(&'a str, ListKey)> = self.ours.iter().map(|(id, k)| (*id, k.clone())).collect();
        for (id, key) in ours {
            let Some(list) = self.by_id.get(id) else { continue };
            let refs = self.references.get(id).copied().unwrap_or(0);
            let region_whole = self.input.desire.complete_regions.contains(&key.region)
                && !self.input.lists.unreadable.contains(&key.region);
            if refs > 0 || !region_whole || in_use.contains(&key) || list.state == ListState::Busy {
                continue;
            }
            self.out.steps.push(ListStep::DeleteList {
                region: key.region.clone(),
                list_id: id.to_owned(),
            });
        }
    }
}

fn quota_error(table: &RouteTableRef, key: &ListKey, size: usize, others: usize, quota: usize) -> String {
    format!(
        "{}: prefix list {key} counts {size} max entries against the route quota, and the table's {others} other {} routes leave {} of LBGP_ROUTE_QUOTA={quota}; table left unchanged. \
         Raise the AWS quota and the variable, or free room in the table",
        table.id,
        key.family.as_aws(),
        quota.saturating_sub(others)
    )
}
