//! What a route-owning function wants and what it found: the planner's
//! input, computed by the pure rules (`inject`, `propagate`) from what the
//! adapters read.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{DesiredRoute, Region, Route, RouteKey, RouteOrigin, RouteTableRef};
use crate::plan::{ChangeOp, ChangeReason, DropReason, LedgerFix, OwnershipLedger, Plan, plan_from_iter};
use crate::prefix::Cidr;
use crate::report::{ConflictReport, ErrorReport, SkipReport};

/// How long after lbgp wrote a route EC2's reads may still show the table
/// as it was. AWS documents that reads are eventually consistent and gives
/// no bound ("a few seconds" in its guides); within this window a route
/// that does not show as recorded is waited for, not written again.
pub const SETTLE_SECS: u64 = 10;

/// The desired state of one run, with the routes found and what the rules
/// decided on the way.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Desire {
    /// Routes we want.
    pub desired: Vec<DesiredRoute>,
    /// Routes found, covering every table in `desired` and in the ledger.
    pub actual: Vec<Route>,
    /// Regions read completely: only their ledger entries are planned.
    pub complete_regions: BTreeSet<Region>,
    /// Tables to leave exactly as they are this run (refused, unreadable,
    /// or depending on something in transition).
    pub frozen_tables: BTreeSet<RouteTableRef>,
    /// Single routes to leave exactly as they are this run (their origin in
    /// transition, or written moments ago and not visible yet).
    pub frozen_keys: BTreeSet<RouteKey>,
    /// Conflicts found before planning (overlaps, duplicate origins…).
    pub conflicts: Vec<ConflictReport>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Regions or tables that failed.
    pub errors: Vec<ErrorReport>,
    /// Peering attachments associated with no route table on a side.
    pub unassociated: Vec<String>,
    /// Tables that share one route quota, by the name of what they share
    /// (a transit gateway's tables share its quota); a table without a
    /// group has its own.
    pub quota_groups: BTreeMap<RouteTableRef, String>,
    /// What the rules say about desired routes (L-BGP: each one's path),
    /// shown in the reason of their changes.
    pub notes: RouteNotes,
    /// Ledger entries the rules let go of this run: routes at our keys that
    /// someone re-pointed and that the rules planned around as someone
    /// else's (the injector counted them against a table's quota). Planned
    /// as foreign and dropped from the ledger, so the next run finds the
    /// ownership this one planned on and makes the same plan.
    pub disowned: BTreeSet<RouteKey>,
}

/// Notes on desired routes, kept per (group of tables, group of
/// destinations) rather than per route: L-BGP's path depends only on the
/// table's transit gateway and the destination's origin, and one string per
/// route would double the memory of a large mesh.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RouteNotes {
    tables: BTreeMap<RouteTableRef, usize>,
    destinations: BTreeMap<Cidr, usize>,
    text: BTreeMap<(usize, usize), String>,
}

impl RouteNotes {
    /// Puts `table` in the table group `group`.
    pub fn group_table(&mut self, table: RouteTableRef, group: usize) {
        self.tables.insert(table, group);
    }

    /// Puts `destination` in the destination group `group`.
    pub fn group_destination(&mut self, destination: Cidr, group: usize) {
        self.destinations.insert(destination, group);
    }

    /// The note of every route of a table of group `tables` toward a
    /// destination of group `destinations`.
    pub fn note(&mut self, tables: usize, destinations: usize, text: String) {
        self.text.insert((tables, destinations), text);
    }

    /// The note of the route at `key`, if any.
    pub fn get(&self, key: &RouteKey) -> Option<&str> {
        let tables = self.tables.get(&key.table)?;
        let destinations = self.destinations.get(&key.destination)?;
        self.text.get(&(*tables, *destinations)).map(String::as_str)
    }

    /// True when there is no note.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

impl Desire {
    /// True when `table` is planned this run: its region was read
    /// completely and it is not frozen.
    pub fn in_scope(&self, table: &RouteTableRef) -> bool {
        self.complete_regions.contains(&table.region) && !self.frozen_tables.contains(table)
    }

    /// True when the route at `key` is planned this run.
    pub fn key_in_scope(&self, key: &RouteKey) -> bool {
        self.in_scope(&key.table) && (self.frozen_keys.is_empty() || !self.frozen_keys.contains(key))
    }

    /// Plans the routes of the complete regions and unfrozen tables. The
    /// routes are borrowed, not copied: at 48,000 routes a copy would
    /// double the planner's memory.
    pub fn plan(&self, ledger: &OwnershipLedger) -> Plan {
        let mut plan = plan_from_iter(
            self.desired.iter().filter(|d| self.key_in_scope(&d.key)),
            self.actual.iter().filter(|r| self.key_in_scope(&r.key)),
            ledger
                .iter()
                .filter(|e| self.key_in_scope(&e.key) && !self.disowned.contains(&e.key)),
        );
        let dropped = self
            .disowned
            .iter()
            .filter(|k| self.key_in_scope(k) && ledger.get(k).is_some());
        let before = plan.ledger_fixes.len();
        plan.ledger_fixes.extend(dropped.map(|key| LedgerFix::Drop {
            key: key.clone(),
            why: DropReason::TakenOver,
        }));
        if plan.ledger_fixes.len() != before {
            plan.ledger_fixes.sort();
        }
        plan
    }

    /// Waits for what was written moments ago: a confirmed ledger entry
    /// written less than [`SETTLE_SECS`] before `now` whose route does not show as
    /// recorded (absent, or at another target than both it records) is
    /// frozen and reported, instead of being re-created, repaired or
    /// forgotten on a read that lags the write.
    pub fn settle(&mut self, ledger: &OwnershipLedger, now: u64) {
        // Only confirmed entries: their write took effect. A pending intent
        // may stand for a write never sent (a crash, a deadline), and is
        // settled by the planner's adopt-or-drop rule.
        let recent: Vec<&crate::plan::LedgerEntry> = ledger
            .iter()
            .filter(|e| e.status == crate::plan::LedgerStatus::Owned)
            .filter(|e| {
                ledger
                    .written_at(&e.key)
                    .is_some_and(|at| now.saturating_sub(at) < SETTLE_SECS)
            })
            .collect();
        if recent.is_empty() {
            return;
        }
        let shown: BTreeMap<&RouteKey, &Route> = self
            .actual
            .iter()
            .filter(|r| r.origin == RouteOrigin::Static)
            .map(|r| (&r.key, r))
            .collect();
        for entry in recent {
            let visible = shown.get(&entry.key).is_some_and(|r| entry.recognises(&r.target));
            if visible || !self.in_scope(&entry.key.table) {
                continue;
            }
            let ago = now.saturating_sub(ledger.written_at(&entry.key).unwrap_or(now));
            self.skipped.push(SkipReport {
                region: entry.key.table.region.to_string(),
                resource: entry.key.table.id.clone(),
                destination: Some(entry.key.destination.to_string()),
                reason: format!(
                    "written {ago} s ago and not visible yet (EC2 reads lag writes); checked again on a later run"
                ), account: None,
            });
            self.frozen_keys.insert(entry.key.clone());
        }
        self.normalise();
    }

    /// Adds the note of each created or replaced route to the reason of
    /// its change (a delete's route is not desired: it has none).
    pub fn annotate(&self, plan: &mut Plan) {
        if self.notes.is_empty() {
            return;
        }
        for change in plan.changes.iter_mut().filter(|c| c.op != ChangeOp::Delete) {
            if let Some(note) = self.notes.get(&change.key) {
                let reason = std::mem::replace(&mut change.reason, ChangeReason::Missing);
                change.reason = ChangeReason::Noted {
                    reason: Box::new(reason),
                    note: note.to_owned(),
                };
            }
        }
    }

    /// Freezes `table` with an error saying why: a failure confined to it.
    pub fn refuse(&mut self, table: RouteTableRef, error: String) {
        self.errors.push(ErrorReport {
            region: table.region.to_string(),
            resource: Some(table.id.clone()),
            error,
            account: None,
        });
        self.frozen_tables.insert(table);
    }

    /// Sorts and deduplicates the reports, so the same state always gives
    /// the same response.
    pub fn normalise(&mut self) {
        self.conflicts.sort();
        self.conflicts.dedup();
        self.skipped.sort();
        self.skipped.dedup();
        self.errors.sort();
        self.errors.dedup();
        self.unassociated.sort();
        self.unassociated.dedup();
    }
}
