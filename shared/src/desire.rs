//! What a route-owning function wants and what it found: the planner's
//! input, computed by the pure rules (`inject`, `propagate`) from what the
//! adapters read.

use std::collections::BTreeSet;

use crate::model::{DesiredRoute, Region, Route, RouteTableRef};
use crate::plan::{OwnershipLedger, Plan, plan_from_iter};
use crate::report::{ConflictReport, ErrorReport, SkipReport};

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
    /// Conflicts found before planning (overlaps, duplicate origins…).
    pub conflicts: Vec<ConflictReport>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Regions or tables that failed.
    pub errors: Vec<ErrorReport>,
}

impl Desire {
    /// True when `table` is planned this run: its region was read
    /// completely and it is not frozen.
    pub fn in_scope(&self, table: &RouteTableRef) -> bool {
        self.complete_regions.contains(&table.region) && !self.frozen_tables.contains(table)
    }

    /// Plans the routes of the complete regions and unfrozen tables. The
    /// routes are borrowed, not copied: at 48,000 routes a copy would
    /// double the planner's memory.
    pub fn plan(&self, ledger: &OwnershipLedger) -> Plan {
        plan_from_iter(
            self.desired.iter().filter(|d| self.in_scope(&d.key.table)),
            self.actual.iter().filter(|r| self.in_scope(&r.key.table)),
            ledger.iter().filter(|e| self.in_scope(&e.key.table)),
        )
    }

    /// Freezes `table` with an error saying why: a failure confined to it.
    pub fn refuse(&mut self, table: RouteTableRef, error: String) {
        self.errors.push(ErrorReport {
            region: table.region.to_string(),
            resource: Some(table.id.clone()),
            error,
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
    }
}
