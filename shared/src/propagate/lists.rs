//! L-BGP in the prefix-list route style (`LBGP_ROUTE_STYLE=prefix-list`):
//! per TGW route table, peering attachment (next hop) and address family,
//! one customer-managed prefix list of ours holding the prefixes learned
//! through that peer, and one TGW prefix-list reference toward the
//! attachment, instead of one static route per prefix. An origin change is
//! an entry change (`ModifyManagedPrefixList`), not a route per table.
//!
//! The rules, all pure, from the routes-style desire:
//! - **ownership**: a list is ours when tagged `lbgp:mesh=<mesh>`,
//!   `lbgp:owner=tgw-route-propagator` and
//!   `lbgp:prefix-list=<tgw-rtb-…>/<tgw-attach-…>/<family>` (set in the
//!   create call); a reference is ours when its list is. Foreign lists and
//!   references are never written.
//! - **entries** are the desired routes' destinations of that table,
//!   attachment and family; a prefix in transition (a frozen key) keeps its
//!   membership as it is.
//! - **quota**: each entry is a route of the table (AWS shows one per
//!   entry), so a transit gateway whose tables would hold more than
//!   `LBGP_TGW_ROUTE_QUOTA` routes with the entries added is refused whole,
//!   as in the routes style.
//! - **switching back** (`routes`): a reference stays until the static
//!   routes replacing it are in (another stage), then goes, then its list.
//! - a reference over a peering in transition, and everything in a frozen
//!   table or an unreadable region, stays as it is.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::RouteStyle;
use crate::desire::Desire;
use crate::model::{Region, Route, RouteKey, RouteOrigin, RouteTableRef, RouteTarget};
use crate::plan::OwnershipLedger;
use crate::prefix::Cidr;
use crate::prefix_list::{
    Family, ListKey, ListRef, ListState, ListStep, MAX_LIST_ENTRIES, ManagedList, diff, sized,
};
use crate::report::{ConflictReport, ErrorReport, SkipReport};

/// A TGW prefix-list reference as read (`GetTransitGatewayPrefixListReferences`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TgwReference {
    /// The TGW route table.
    pub table: RouteTableRef,
    /// `pl-…`.
    pub prefix_list_id: String,
    /// Where it points (`None`: a blackhole).
    pub attachment_id: Option<String>,
}

/// The lists and references a run read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TgwListsView {
    /// Our lists (found by tag).
    pub lists: Vec<ManagedList>,
    /// Every reference of the read tables.
    pub references: Vec<TgwReference>,
    /// Regions whose lists or references could not be read.
    pub unreadable: Vec<Region>,
}

/// What the planner works from.
#[derive(Debug, Clone, Copy)]
pub struct TgwListInput<'a> {
    /// `LBGP_MESH`.
    pub mesh: &'a str,
    /// `LBGP_ROUTE_STYLE`.
    pub style: RouteStyle,
    /// `LBGP_TGW_ROUTE_QUOTA`.
    pub quota: usize,
    /// The routes-style desire.
    pub desire: &'a Desire,
    /// What was read of lists and references.
    pub lists: &'a TgwListsView,
    /// Peering attachments in transition: their references stay as they are.
    pub transitional: &'a BTreeSet<String>,
    /// The routes we own: a static route at an entry's destination that is
    /// not ours shadows the entry.
    pub ledger: &'a OwnershipLedger,
}

/// The prefix-list part of a propagator run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TgwListPlan {
    /// The writes, sorted in the order they are applied.
    pub steps: Vec<ListStep>,
    /// Tables whose routes toward peerings lists carry.
    pub carried: BTreeSet<RouteTableRef>,
    /// Tables refused, with the error.
    pub refused: BTreeMap<RouteTableRef, String>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Failures confined to a list.
    pub errors: Vec<ErrorReport>,
    /// Entries whose destination a static route we did not create holds in
    /// the table: AWS prefers a static route to a prefix list's entry, so
    /// the traffic follows it, as a conflict in the routes style would say.
    pub conflicts: Vec<ConflictReport>,
    /// Another stage follows (switching back: references go once the
    /// static routes replacing them are in).
    pub again: bool,
    /// The routes our references stand for (AWS shows each entry as a
    /// propagated route): not foreign holders of their destinations, so
    /// the routes-style plan may put static routes beside them.
    pub shadowed: BTreeSet<(RouteKey, RouteTarget)>,
}

impl TgwListPlan {
    /// Applies the decisions to the routes-style desire: carried tables
    /// lose their desired routes toward attachments (the lists hold them);
    /// refused tables are frozen.
    pub fn apply_to(&self, desire: &mut Desire) {
        desire.desired.retain(|d| {
            !(self.carried.contains(&d.key.table)
                && matches!(d.target, RouteTarget::TransitGatewayAttachment(_)))
        });
        desire.actual.retain(|a| {
            !(a.origin == RouteOrigin::Propagated
                && self.shadowed.contains(&(a.key.clone(), a.target.clone())))
        });
        for (table, error) in &self.refused {
            desire.refuse(table.clone(), error.clone());
        }
        desire.skipped.extend(self.skipped.iter().cloned());
        desire.errors.extend(self.errors.iter().cloned());
        desire.conflicts.extend(self.conflicts.iter().cloned());
        desire.normalise();
    }

    /// What the steps weigh against the blast-radius limit.
    pub fn weight(&self) -> usize {
        self.steps.iter().map(ListStep::weight).sum()
    }
}

/// The key of the propagator's list for a table, attachment and family.
pub fn list_key(table: &RouteTableRef, attachment: &str, family: Family) -> ListKey {
    ListKey {
        region: table.region.clone(),
        family,
        target: format!("{}/{attachment}", table.id),
    }
}

fn split(key: &ListKey) -> (&str, &str) {
    key.target.split_once('/').unwrap_or((key.target.as_str(), ""))
}

type Groups = BTreeMap<ListKey, (RouteTableRef, BTreeSet<Cidr>)>;

/// Static routes someone else made at the destinations of wanted entries,
/// toward another target: AWS routes by a static route before a prefix
/// list's entry at the same destination ("How route priority works", VPC
/// guide), so each is reported as the routes style reports the route it
/// would not install. The entry stays in the list: it takes over if the
/// static route goes.
fn shadowing_statics(input: &TgwListInput<'_>, wanted: &Groups) -> Vec<ConflictReport> {
    let statics: BTreeMap<&RouteKey, &Route> = input
        .desire
        .actual
        .iter()
        .filter(|r| r.origin == RouteOrigin::Static)
        .map(|r| (&r.key, r))
        .collect();
    let mut out = Vec::new();
    for (key, (table, entries)) in wanted {
        let (_, attachment) = split(key);
        let via = RouteTarget::TransitGatewayAttachment(attachment.to_owned());
        for cidr in entries {
            let at = RouteKey {
                table: table.clone(),
                destination: *cidr,
            };
            let Some(route) = statics.get(&at) else { continue };
            let ours = input.ledger.get(&at).is_some_and(|e| e.recognises(&route.target));
            if route.target == via || ours {
                continue;
            }
            out.push(ConflictReport {
                region: table.region.to_string(),
                route_table_id: Some(table.id.clone()),
                destination: cidr.to_string(),
                wanted: Some(via.to_string()),
                held_by: vec![route.target.to_string()],
                reason: format!(
                    "destination held by a static route we did not create, which AWS prefers to the entry of prefix list {key}; left untouched"
                ),
                account: None,
            });
        }
    }
    out
}

/// Plans the propagator's lists and references (see the module's rules).
pub fn plan(input: &TgwListInput<'_>) -> TgwListPlan {
    let mut out = TgwListPlan::default();
    let desire = input.desire;
    let planned = |t: &RouteTableRef| desire.in_scope(t) && !input.lists.unreadable.contains(&t.region);
    let ours: BTreeMap<&str, (ListKey, &ManagedList)> = input
        .lists
        .lists
        .iter()
        .filter(|l| l.state != ListState::Deleted)
        .filter_map(|l| Some((l.id.as_str(), (l.tgw_key(input.mesh)?, l))))
        .collect();
    let by_key: BTreeMap<&ListKey, &ManagedList> = {
        let mut m: BTreeMap<&ListKey, &ManagedList> = BTreeMap::new();
        for (k, l) in ours.values() {
            // Duplicates (a read lagging a create): the lowest id stands.
            m.entry(k).or_insert(l);
        }
        m
    };
    let our_refs: Vec<&TgwReference> = input
        .lists
        .references
        .iter()
        .filter(|r| ours.contains_key(r.prefix_list_id.as_str()))
        .collect();

    for r in &our_refs {
        let (Some(a), Some((_, list))) = (&r.attachment_id, ours.get(r.prefix_list_id.as_str())) else {
            continue;
        };
        for c in list.entries.iter().flatten() {
            out.shadowed.insert((
                RouteKey {
                    table: r.table.clone(),
                    destination: *c,
                },
                RouteTarget::TransitGatewayAttachment(a.clone()),
            ));
        }
    }

    // Wanted lists: the desired routes toward attachments, per table.
    let mut wanted: Groups = BTreeMap::new();
    if input.style == RouteStyle::PrefixList {
        for d in &desire.desired {
            let RouteTarget::TransitGatewayAttachment(att) = &d.target else {
                continue;
            };
            if !planned(&d.key.table) {
                continue;
            }
            let key = list_key(&d.key.table, att, Family::of(&d.key.destination));
            wanted
                .entry(key)
                .or_insert_with(|| (d.key.table.clone(), BTreeSet::new()))
                .1
                .insert(d.key.destination);
        }
        // Prefixes in transition keep their membership.
        for (key, (table, entries)) in &mut wanted {
            let current = by_key.get(key).and_then(|l| l.entries.as_ref());
            for cidr in current.into_iter().flatten() {
                if desire.frozen_keys.contains(&RouteKey {
                    table: table.clone(),
                    destination: *cidr,
                }) {
                    entries.insert(*cidr);
                }
            }
            entries.retain(|c| {
                !desire.frozen_keys.contains(&RouteKey {
                    table: table.clone(),
                    destination: *c,
                }) || current.is_some_and(|e| e.contains(c))
            });
        }
    }

    // Quota: the entries added count as routes of the transit gateway.
    let group_of = |t: &RouteTableRef| super::quota_group(desire, t);
    let mut count = super::routes_per_quota_group(desire);
    let present: BTreeSet<(&RouteTableRef, &Cidr)> = desire
        .actual
        .iter()
        .map(|r| (&r.key.table, &r.key.destination))
        .collect();
    let mut adding: BTreeMap<String, BTreeSet<RouteTableRef>> = BTreeMap::new();
    for (table, entries) in wanted.values() {
        let new = entries.iter().filter(|c| !present.contains(&(table, *c))).count();
        if new > 0 {
            *count.entry(group_of(table)).or_default() += new;
            adding.entry(group_of(table)).or_default().insert(table.clone());
        }
    }
    for (group, n) in &count {
        if *n > input.quota {
            for table in adding.get(group).into_iter().flatten() {
                out.refused.insert(
                    table.clone(),
                    format!(
                        "{}: with the prefix lists' entries {group} would hold {n} routes, above LBGP_TGW_ROUTE_QUOTA={} (each entry of a referenced list is a route); table left unchanged",
                        table.id, input.quota
                    ),
                );
            }
        }
    }
    for (key, (table, entries)) in &wanted {
        if entries.len() > MAX_LIST_ENTRIES {
            out.refused.entry(table.clone()).or_insert_with(|| {
                format!(
                    "prefix list {key}: {} entries, above AWS's {MAX_LIST_ENTRIES} per list; table left unchanged",
                    entries.len()
                )
            });
        }
        if let Some(l) = by_key.get(key)
            && l.state == ListState::Failed
        {
            out.errors.push(ErrorReport {
                region: key.region.to_string(),
                resource: Some(l.id.clone()),
                error: format!(
                    "prefix list {} of {key}: AWS refused its last change ({}); its table is left unchanged",
                    l.id, l.state_message
                ),
                account: None,
            });
            out.refused
                .entry(table.clone())
                .or_insert_with(|| format!("prefix list {} is in a failed state", l.id));
        }
    }
    wanted.retain(|_, (table, _)| !out.refused.contains_key(table));
    out.conflicts = shadowing_statics(input, &wanted);

    // Lists and references wanted.
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    for (key, (table, entries)) in &wanted {
        let entries: Vec<Cidr> = entries.iter().copied().collect();
        let (_, attachment) = split(key);
        out.carried.insert(table.clone());
        let list = match by_key.get(key) {
            Some(l) if l.state == ListState::Busy => {
                out.skipped.push(SkipReport {
                    region: key.region.to_string(),
                    resource: table.id.clone(),
                    destination: None,
                    reason: format!(
                        "prefix list {} of {key} is being written; checked again on a later run",
                        l.id
                    ),
                    account: None,
                });
                kept.insert(l.id.as_str());
                continue;
            }
            Some(l) => {
                kept.insert(l.id.as_str());
                let max = l.max_entries.unwrap_or(0);
                if max < entries.len() {
                    out.steps.push(ListStep::Resize {
                        region: key.region.clone(),
                        list_id: l.id.clone(),
                        from: max,
                        to: sized(entries.len()),
                    });
                }
                let current = l.entries.clone().unwrap_or_default();
                let (add, remove) = diff(&current, &entries);
                if !add.is_empty() || !remove.is_empty() {
                    out.steps.push(ListStep::SyncEntries {
                        region: key.region.clone(),
                        list_id: l.id.clone(),
                        version: l.version,
                        add,
                        remove,
                        entries: entries.clone(),
                    });
                }
                ListRef::Id(l.id.clone())
            }
            None => {
                out.steps.push(ListStep::CreateList {
                    key: key.clone(),
                    name: key.name(input.mesh),
                    max_entries: sized(entries.len()),
                    entries: entries.clone(),
                });
                ListRef::New(key.clone())
            }
        };
        let existing = match &list {
            ListRef::Id(id) => our_refs
                .iter()
                .find(|r| &r.table == table && &r.prefix_list_id == id),
            ListRef::New(_) => None,
        };
        match existing {
            Some(r) if r.attachment_id.as_deref() == Some(attachment) => {}
            Some(r) => out.steps.push(ListStep::ModifyReference {
                table: table.clone(),
                list_id: r.prefix_list_id.clone(),
                attachment: attachment.to_owned(),
                previous: r.attachment_id.clone(),
            }),
            None => out.steps.push(ListStep::CreateReference {
                table: table.clone(),
                list,
                attachment: attachment.to_owned(),
            }),
        }
    }

    // References of ours no list is wanted for any more.
    let mut referenced: BTreeSet<&str> = BTreeSet::new();
    for r in &our_refs {
        let Some((key, _)) = ours.get(r.prefix_list_id.as_str()) else {
            continue;
        };
        if kept.contains(r.prefix_list_id.as_str()) && split(key).0 == r.table.id {
            referenced.insert(r.prefix_list_id.as_str());
            continue;
        }
        let held = !planned(&r.table)
            || out.refused.contains_key(&r.table)
            || r.attachment_id
                .as_ref()
                .is_some_and(|a| input.transitional.contains(a));
        if held {
            referenced.insert(r.prefix_list_id.as_str());
            continue;
        }
        // Switching back: the static routes replacing it first.
        let (_, attachment) = split(key);
        let target = RouteTarget::TransitGatewayAttachment(attachment.to_owned());
        let statics: BTreeSet<&Cidr> = desire
            .actual
            .iter()
            .filter(|a| a.key.table == r.table && a.origin == RouteOrigin::Static && a.target == target)
            .map(|a| &a.key.destination)
            .collect();
        let missing = desire
            .desired
            .iter()
            .filter(|d| {
                d.key.table == r.table && d.target == target && Family::of(&d.key.destination) == key.family
            })
            .filter(|d| !statics.contains(&d.key.destination))
            .count();
        if missing > 0 && !out.carried.contains(&r.table) {
            out.again = true;
            referenced.insert(r.prefix_list_id.as_str());
            out.skipped.push(SkipReport {
                region: r.table.region.to_string(),
                resource: r.table.id.clone(),
                destination: None,
                reason: format!(
                    "reference to prefix list {} kept until the {missing} routes replacing it are in",
                    r.prefix_list_id
                ),
                account: None,
            });
            continue;
        }
        out.steps.push(ListStep::DeleteReference {
            table: r.table.clone(),
            list_id: r.prefix_list_id.clone(),
        });
    }

    // Lists of ours nothing references once the steps are applied.
    for (id, (key, list)) in &ours {
        let whole =
            desire.complete_regions.contains(&key.region) && !input.lists.unreadable.contains(&key.region);
        if kept.contains(id) || referenced.contains(id) || !whole || list.state == ListState::Busy {
            continue;
        }
        out.steps.push(ListStep::DeleteList {
            region: key.region.clone(),
            list_id: (*id).to_owned(),
        });
    }
    out.steps.sort();
    out.steps.dedup();
    out.skipped.sort();
    out.errors.sort();
    out
}

#[cfg(test)]
mod tests;
