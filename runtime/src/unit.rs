//! What a function gives the reconcile loop: the [`Reconciler`] trait, its
//! units of work and their plans ([`UnitPlan`], [`Writes`]), and the
//! request a pass runs for. The loop itself is [`crate::reconcile`].

use lbgp_core::accounts::TableOwners;
use std::time::Instant;

use async_trait::async_trait;
use futures::future::join_all;
use lbgp_aws::context::Aws;
use lbgp_core::config::CommonConfig;
use lbgp_core::desire::Desire;
use lbgp_core::failover::ListMove;
use lbgp_core::report::{ChangeReport, ConflictReport, ErrorReport, PreflightCheck, SkipReport};
use lbgp_core::trigger::{Subscriptions, Trigger};
use lbgp_core::{Change, LedgerFix, Plan, PlanError, Region};
use serde_json::{Map, Value};

use crate::Error;
use crate::apply::{LedgerBatching, StateRecord};
use crate::budget::Budget;

/// One unit of work under one lease: the mesh of a route-owning function,
/// or one failover group.
#[derive(Debug, Clone)]
pub struct Unit<K> {
    /// The lease scope (`lease#<function>#<scope>`), also the scope of the
    /// unit's state records.
    pub scope: String,
    /// What the function needs to find the unit again.
    pub key: K,
}

/// The units an invocation concerns.
#[derive(Debug, Clone)]
pub enum Selection<K> {
    /// These units, and the regions that could not be searched for them.
    Units {
        /// The units.
        units: Vec<Unit<K>>,
        /// Regions that failed discovery.
        errors: Vec<ErrorReport>,
    },
    /// A well-formed event that concerns nothing of ours.
    Ignore(String),
}

impl Selection<()> {
    /// The one unit of a route-owning function: its mesh.
    pub fn mesh(common: &CommonConfig) -> Selection<()> {
        Selection::Units {
            units: vec![Unit {
                scope: common.mesh.clone(),
                key: (),
            }],
            errors: vec![],
        }
    }
}

/// What an invocation asks for, parsed.
#[derive(Debug, Clone)]
pub struct Request {
    /// The trigger.
    pub trigger: Trigger,
    /// Its label (`scheduled`, `api_call:CreateRoute`…).
    pub label: String,
    /// Plan and report only.
    pub dry_run: bool,
    /// Override the blast-radius limit.
    pub force: bool,
    /// The lease holder: the invocation's request id.
    pub holder: String,
    /// The deadline and lease margin.
    pub budget: Budget,
    /// When the invocation started (notifications say how long it took).
    pub started: Instant,
    /// How the ledger's write-ahead writes are grouped.
    pub batching: LedgerBatching,
}

/// One pass over one unit.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    /// 1 for the pass the trigger asked for; more when other triggers asked
    /// for work while the lease was held (those passes are plain
    /// reconciles: the trigger's specifics, an event or an operator's
    /// switch, were consumed by the first).
    pub number: usize,
    /// The invocation.
    pub request: &'a Request,
    /// The regions in scope (a region's event: that region on the first
    /// pass; every region after).
    pub regions: &'a [Region],
}

impl Pass<'_> {
    /// True on the trigger's own pass.
    pub fn is_first(&self) -> bool {
        self.number == 1
    }
}

/// How a unit's changes are written and remembered.
#[derive(Debug, Clone, PartialEq)]
pub enum Writes {
    /// Routes we create and own: the ownership ledger (write-ahead), with
    /// the plan's bookkeeping fixes.
    Owned {
        /// Ledger fixes that need no EC2 call.
        fixes: Vec<LedgerFix>,
        /// Tags to set first, stages, and what the response reports.
        extras: OwnedExtras,
    },
    /// Routes that are the user's, moved after the unit's state is saved.
    Moved {
        /// The state to save first, when it changed.
        state: Option<StateRecord>,
        /// The state to save instead once the deadline stopped some moves:
        /// routes still on the old member are then work left, not a read
        /// lagging the moves.
        unsettled: Option<StateRecord>,
        /// The state to save once every move is acknowledged (the
        /// watcher: members forgotten once no route points at them).
        settled: Option<StateRecord>,
        /// Routes whose destination is a managed prefix list, moved
        /// beside the CIDR ones (one `ReplaceRoute` each).
        lists: Vec<ListMove>,
    },
}

impl UnitPlan {
    /// The prefix-list routes this plan moves.
    pub fn list_moves(&self) -> &[ListMove] {
        match &self.writes {
            Writes::Moved { lists, .. } => lists,
            Writes::Owned { .. } => &[],
        }
    }
}

/// The blast-radius guard over `changes` and `lists` more route writes.
pub(crate) fn blast_radius(
    changes: &Plan,
    lists: usize,
    max_changes: usize,
    force: bool,
) -> Result<(), PlanError> {
    let count = changes.changes.len() + lists;
    if !force && count > max_changes {
        return Err(PlanError::BlastRadius {
            count,
            limit: max_changes,
        });
    }
    Ok(())
}

/// What an owned plan may carry besides routes (a migration's cutover or
/// rollback, an adoption).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnedExtras {
    /// Tags set before any route is written (a cutover's `lbgp:migration`);
    /// if one fails, no route is written.
    pub tags: Vec<TagWrite>,
    /// Another stage of changes follows: once these are applied, the unit
    /// is planned and applied again at once, under the same lease.
    pub again: bool,
    /// The changes of the later stages as planned now: the blast-radius
    /// guard and a dry run count them with the first stage's.
    pub later: Vec<Change>,
    /// The preflight checks, for the response.
    pub preflight: Vec<PreflightCheck>,
    /// Set when the plan is refused whole (a failed preflight).
    pub refused: Option<String>,
    /// Routes adopted by the plan's ledger fixes, for the response.
    pub adopted: Vec<ChangeReport>,
    /// Prefix-list writes, applied after the tags and before any route;
    /// if one fails, no route is written.
    pub prefix_lists: Vec<lbgp_core::prefix_list::ListStep>,
}

/// One tag to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagWrite {
    /// The resource's region.
    pub region: Region,
    /// `vpc-…` and the like.
    pub resource: String,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// A failover decision's notification, completed with the routes moved.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionNotice {
    /// `failover`, `failback`, `no_healthy_member`, `drift_repaired`.
    pub event: String,
    /// The subject line.
    pub subject: String,
    /// The decision's fields (group, region, from, to, reason…).
    pub fields: Map<String, Value>,
}

/// One unit's plan for one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitPlan {
    /// The writes, sorted.
    pub changes: Vec<Change>,
    /// How they are written.
    pub writes: Writes,
    /// Desired routes not installed.
    pub conflicts: Vec<ConflictReport>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Failures confined to a region or table.
    pub errors: Vec<ErrorReport>,
    /// Peering attachments with no route table on a side (L-BGP).
    pub unassociated: Vec<String>,
    /// The unit's entry of the response's `groups` (failover groups).
    pub report: Option<Map<String, Value>>,
    /// This pass's report tells the story, over the first pass's (a later
    /// pass that changed members).
    pub headline: bool,
    /// The notification to publish after the apply.
    pub notice: Option<DecisionNotice>,
    /// Which account owns each table, in a cross-account mesh: where the
    /// writes go, what the ledger records, what the response names.
    /// `None`: every table is the home account's.
    pub tables: Option<TableOwners>,
}

impl UnitPlan {
    /// The plan of owned routes for a desire.
    pub fn owned(desire: Desire, plan: Plan) -> UnitPlan {
        let mut conflicts = desire.conflicts;
        conflicts.extend(plan.conflicts.iter().map(ConflictReport::from));
        conflicts.sort();
        conflicts.dedup();
        for c in &conflicts {
            tracing::warn!(
                region = %c.region,
                route_table_id = c.route_table_id.as_deref().unwrap_or("-"),
                destination = %c.destination,
                held_by = ?c.held_by,
                reason = %c.reason,
                "conflict: route not installed"
            );
        }
        UnitPlan {
            changes: plan.changes,
            writes: Writes::Owned {
                fixes: plan.ledger_fixes,
                extras: OwnedExtras::default(),
            },
            conflicts,
            skipped: desire.skipped,
            errors: desire.errors,
            unassociated: desire.unassociated,
            report: None,
            headline: false,
            notice: None,
            tables: None,
        }
    }
}

/// A function of lbgp, as the loop drives it.
#[async_trait]
pub trait Reconciler: Send + Sync {
    /// What identifies a unit of work.
    type Key: Clone + std::fmt::Debug + Send + Sync;

    /// The function (binary) name: ledger partition and response field.
    fn function(&self) -> &'static str;
    /// The events it acts on.
    fn subscriptions(&self) -> Subscriptions;
    /// Shared settings.
    fn common(&self) -> &CommonConfig;
    /// The regions to reconcile for an event from `regions`. By default just
    /// those; a function whose routes in one region depend on every other
    /// region widens it.
    fn scope(&self, regions: Vec<Region>) -> Vec<Region> {
        regions
    }
    /// Whether a manual invoke may carry an operator's switch
    /// (`group`/`activate`).
    fn takes_operator_switch(&self) -> bool {
        false
    }
    /// Whether a manual invoke may carry a migration command
    /// (`migrate`/`adopt`).
    fn takes_migration(&self) -> bool {
        false
    }
    /// Whether the function reads and writes member accounts
    /// (`LBGP_ACCOUNTS`); one that does not refuses to start with it set.
    fn manages_accounts(&self) -> bool {
        false
    }
    /// Whether an invocation reads CloudWatch alarms on its critical path
    /// (the watcher's health): its clients are then built at start-up,
    /// not on first use.
    fn reads_alarms_first(&self) -> bool {
        false
    }
    /// The units `request` concerns, in `regions`.
    async fn select(
        &self,
        aws: &Aws,
        request: &Request,
        regions: &[Region],
    ) -> Result<Selection<Self::Key>, Error>;
    /// Reads what a unit depends on and plans it. An `Err` fails the whole
    /// invocation (nothing is written); a failure confined to the unit is a
    /// plan without changes that reports it.
    async fn plan(&self, aws: &Aws, unit: &Unit<Self::Key>, pass: &Pass<'_>) -> Result<UnitPlan, Error>;
    /// Plans several units of one pass; by default one by one, side by
    /// side. A function that can read for all of them at once overrides it.
    async fn plan_all(
        &self,
        aws: &Aws,
        units: &[&Unit<Self::Key>],
        pass: &Pass<'_>,
    ) -> Vec<Result<UnitPlan, Error>> {
        join_all(units.iter().map(|u| self.plan(aws, u, pass))).await
    }
    /// The response entry of a unit another run holds the lease of.
    fn locked_report(&self, _unit: &Unit<Self::Key>, _holder: &str) -> Option<Map<String, Value>> {
        None
    }
    /// One structured line per decision, once the unit was applied (or
    /// planned only, in a dry run or a refused run).
    fn log(&self, _unit: &Unit<Self::Key>, _plan: &UnitPlan, _applied: usize, _planned_only: bool) {}
}
