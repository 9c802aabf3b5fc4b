//! The reconcile planner: desired routes versus observed routes, with the
//! ownership ledger deciding what we may touch, into a deterministic plan.
//!
//! The planner is level-triggered: it never looks at *why* it runs, only at
//! the state it is given, so any run from any trigger converges the same way.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use crate::model::{DesiredRoute, Route, RouteKey, RouteOrigin, RouteState, RouteTarget};

/// Whether a ledger entry is a confirmed route of ours or a write-ahead intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStatus {
    /// Recorded before a create was sent and not confirmed since: the create
    /// may or may not have happened. The next plan adopts it if the route is
    /// there with our target, and drops it otherwise.
    Pending,
    /// We created this route (or took it over by repair) and still own it.
    Owned,
}

/// One route we created, as recorded in the ownership ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Table and destination.
    pub key: RouteKey,
    /// The target we installed (or, for a pending create or an unconfirmed
    /// replace, the target we are installing).
    pub target: RouteTarget,
    /// Pending intent or owned.
    pub status: LedgerStatus,
    /// While a replace is in flight: the target the route had, ours. Recorded
    /// with the new target before the replace is sent and cleared once it
    /// is confirmed, so a crash in between leaves a route we still know is
    /// ours whichever of the two targets it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<RouteTarget>,
    /// The account of the table, recorded in a cross-account mesh; `None`
    /// is the home account (every item written before accounts existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<crate::accounts::AccountId>,
}

impl LedgerEntry {
    /// An entry with no replace in flight.
    pub fn new(key: RouteKey, target: RouteTarget, status: LedgerStatus) -> Self {
        LedgerEntry {
            key,
            target,
            status,
            previous: None,
            account: None,
        }
    }

    /// True when a route with `target` is the one this entry records: its
    /// target, or the target before a replace still in flight.
    pub fn recognises(&self, target: &RouteTarget) -> bool {
        &self.target == target || self.previous.as_ref() == Some(target)
    }
}

/// The set of routes lbgp created. A route not in it is *foreign*: never
/// deleted, never replaced.
///
/// Beside the entries it knows when each was last written (as the store
/// says, seconds since the epoch): EC2's reads lag its writes, so what was
/// written moments ago may not show yet. That is bookkeeping, not content:
/// two ledgers with the same entries are equal.
#[derive(Debug, Clone, Default)]
pub struct OwnershipLedger {
    entries: BTreeMap<RouteKey, LedgerEntry>,
    written_at: BTreeMap<RouteKey, u64>,
}

impl PartialEq for OwnershipLedger {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for OwnershipLedger {}

impl OwnershipLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds or overwrites an entry.
    pub fn insert(&mut self, entry: LedgerEntry) {
        self.written_at.remove(&entry.key);
        self.entries.insert(entry.key.clone(), entry);
    }
    /// Adds or overwrites an entry last written at `written_at`.
    pub fn insert_written(&mut self, entry: LedgerEntry, written_at: u64) {
        self.written_at.insert(entry.key.clone(), written_at);
        self.entries.insert(entry.key.clone(), entry);
    }
    /// When the entry of `key` was last written, if known.
    pub fn written_at(&self, key: &RouteKey) -> Option<u64> {
        self.written_at.get(key).copied()
    }
    /// Removes an entry.
    pub fn remove(&mut self, key: &RouteKey) -> Option<LedgerEntry> {
        self.written_at.remove(key);
        self.entries.remove(key)
    }
    /// Looks up an entry.
    pub fn get(&self, key: &RouteKey) -> Option<&LedgerEntry> {
        self.entries.get(key)
    }
    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.values()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<LedgerEntry> for OwnershipLedger {
    fn from_iter<I: IntoIterator<Item = LedgerEntry>>(iter: I) -> Self {
        let mut ledger = OwnershipLedger::new();
        for entry in iter {
            ledger.insert(entry);
        }
        ledger
    }
}

/// The kind of write a change makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Create a route that does not exist.
    Create,
    /// Repoint an existing route of ours.
    Replace,
    /// Delete a route of ours.
    Delete,
}

impl fmt::Display for ChangeOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeOp::Create => "create",
            ChangeOp::Replace => "replace",
            ChangeOp::Delete => "delete",
        })
    }
}

/// Why a change is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Desired and absent.
    Missing,
    /// Ours, and deleted out of band.
    OwnedRouteDeleted,
    /// Ours, and repointed out of band to `from`.
    Drifted {
        /// The target found.
        from: RouteTarget,
    },
    /// Ours, at a target we installed (`from`), and now desired elsewhere:
    /// the desired target changed, or a replace was interrupted.
    Retarget {
        /// The target the route has, ours.
        from: RouteTarget,
    },
    /// Ours, and AWS reports it as a blackhole.
    Blackhole,
    /// Ours, and no longer desired.
    NoLongerDesired,
    /// A caller-specific reason (the failover watcher's moves).
    Other(String),
    /// A planner's reason with what the rules say about the route (L-BGP's
    /// path), for reports: the write is the one `reason` says.
    Noted {
        /// The planner's reason.
        reason: Box<ChangeReason>,
        /// The rules' note.
        note: String,
    },
}

impl ChangeReason {
    /// The planner's reason, under any note: what decides how the change
    /// is written (a retarget records its previous target).
    pub fn base(&self) -> &ChangeReason {
        match self {
            ChangeReason::Noted { reason, .. } => reason.base(),
            other => other,
        }
    }
}

impl fmt::Display for ChangeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeReason::Missing => f.write_str("desired route is missing"),
            ChangeReason::OwnedRouteDeleted => f.write_str("our route was deleted out of band"),
            ChangeReason::Drifted { from } => {
                write!(f, "our route was repointed out of band to {from}")
            }
            ChangeReason::Retarget { from } => write!(f, "the desired target changed (was {from})"),
            ChangeReason::Blackhole => f.write_str("our route is a blackhole"),
            ChangeReason::NoLongerDesired => f.write_str("our route is no longer desired"),
            ChangeReason::Other(why) => f.write_str(why),
            ChangeReason::Noted { reason, note } => write!(f, "{reason}; {note}"),
        }
    }
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Change {
    /// Which table and destination.
    pub key: RouteKey,
    /// Create, replace or delete.
    pub op: ChangeOp,
    /// The target after the change; for a delete, the target removed.
    pub target: RouteTarget,
    /// For a replace, the target before.
    pub previous: Option<RouteTarget>,
    /// Why.
    pub reason: ChangeReason,
}

/// A desired route we may not install because something else holds its
/// destination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Conflict {
    /// Table and destination.
    pub key: RouteKey,
    /// The target we wanted.
    pub wanted: RouteTarget,
    /// What holds the destination now.
    pub held_by: RouteTarget,
    /// Static (a foreign route), propagated or local.
    pub held_by_origin: RouteOrigin,
}

/// Ledger bookkeeping that needs no EC2 call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LedgerFix {
    /// Record the route as owned with this target: a pending create that
    /// was applied, or an owned route whose recorded target is stale.
    Record {
        /// The route.
        key: RouteKey,
        /// Its target.
        target: RouteTarget,
    },
    /// Forget an entry: its route is gone and not desired, a pending create
    /// never happened, or someone else now holds the destination.
    Drop {
        /// The route.
        key: RouteKey,
        /// Why it is forgotten.
        why: DropReason,
    },
}

/// Why a ledger entry is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The route no longer exists and is not desired.
    RouteGone,
    /// A pending create was never applied and is not desired any more.
    IntentNeverApplied,
    /// The destination is held by another target that is not ours: a human
    /// or another tool took it over; we let go rather than fight.
    TakenOver,
}

/// The outcome of planning: the writes, and what we refuse to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The writes, sorted by table, destination, then operation.
    pub changes: Vec<Change>,
    /// Desired routes blocked by a route we do not own.
    pub conflicts: Vec<Conflict>,
    /// Desired routes already present as foreign routes with the right
    /// target: satisfied, reported, never adopted.
    pub satisfied_by_foreign: Vec<RouteKey>,
    /// Ledger bookkeeping.
    pub ledger_fixes: Vec<LedgerFix>,
}

impl Plan {
    /// True when nothing needs writing to EC2: the proof of convergence.
    pub fn is_converged(&self) -> bool {
        self.changes.is_empty()
    }

    /// The blast-radius guard: refuses a plan with more than `max_changes`
    /// writes, whole, unless `force` is set.
    pub fn check_blast_radius(&self, max_changes: usize, force: bool) -> Result<(), PlanError> {
        if !force && self.changes.len() > max_changes {
            return Err(PlanError::BlastRadius {
                count: self.changes.len(),
                limit: max_changes,
            });
        }
        Ok(())
    }
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// More writes than the blast-radius limit allows.
    #[error(
        "plan refused: {count} changes exceed LBGP_MAX_CHANGES={limit}; nothing was applied. \
         Check the plan with a dry run, then raise the limit or invoke with {{\"force\": true}}"
    )]
    BlastRadius {
        /// Writes in the plan.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Plans the writes that turn `actual` into `desired`, touching only routes
/// the `ledger` says we own.
///
/// `actual` must hold every route of every table that appears in `desired`
/// or in `ledger`: a ledger entry whose route is absent from `actual` is
/// taken to mean the route is gone.
///
/// Rules:
/// - a route not in the ledger is foreign: never deleted or replaced; if it
///   holds a desired destination with another target it is a conflict; with
///   the desired target it satisfies the desire and is reported, not adopted;
/// - an owned route that drifted (repointed, or blackhole) is repaired; an
///   owned route no longer desired is deleted, unless someone repointed it,
///   in which case we let it go; a ledger entry whose route is gone is
///   recreated if still desired, dropped otherwise;
/// - a pending intent is adopted if the route is there with our target and
///   dropped otherwise;
/// - the output is sorted: the same state always gives the same plan.
pub fn plan(desired: &[DesiredRoute], actual: &[Route], ledger: &OwnershipLedger) -> Plan {
    plan_from_iter(desired, actual, ledger.iter())
}

/// What the planner knows about one destination of one table.
#[derive(Default)]
struct Slot<'a> {
    /// The first desired target.
    want: Option<&'a RouteTarget>,
    /// Two different targets were desired: install neither.
    ambiguous: bool,
    ledger: Option<&'a LedgerEntry>,
    /// The static route at this destination, if any.
    found: Option<&'a Route>,
    /// A propagated or local route at this destination, if any.
    other: Option<&'a Route>,
}

/// [`plan`] over borrowed routes, so a caller can plan a subset (the tables
/// of the regions it could read, say) without copying it first.
///
/// Same rules and same output as [`plan`]: the ledger entries must have
/// distinct keys (an [`OwnershipLedger`] guarantees it). The plan does not
/// depend on the order of the inputs as the adapters produce them; where a
/// caller repeats itself (two static routes at one destination, two
/// targets desired for one), the last route and the first target count.
pub fn plan_from_iter<'a>(
    desired: impl IntoIterator<Item = &'a DesiredRoute>,
    actual: impl IntoIterator<Item = &'a Route>,
    ledger: impl IntoIterator<Item = &'a LedgerEntry>,
) -> Plan {
    // One hash map of the destinations that matter (desired or ledgered),
    // probed once per input route; sorting only the output keeps the plan
    // deterministic. Ordered maps here cost a full `RouteKey` comparison
    // (region and table-id strings) at every step of every probe.
    let mut slots: HashMap<&'a RouteKey, Slot<'a>, FxBuildHasher> = HashMap::default();
    for d in desired {
        let slot = slots.entry(&d.key).or_default();
        match slot.want {
            None => slot.want = Some(&d.target),
            // Two different targets for one destination is a caller bug;
            // installing either would be a coin toss, so neither is.
            Some(first) if first != &d.target => slot.ambiguous = true,
            Some(_) => {}
        }
    }
    for entry in ledger {
        slots.entry(&entry.key).or_default().ledger = Some(entry);
    }
    // A table holds one static route per destination; propagated and local
    // routes may sit beside it and lose to it, so they only matter when no
    // static route is there. Routes at other destinations are not ours to
    // plan and are not looked at further.
    for route in actual {
        if let Some(slot) = slots.get_mut(&route.key) {
            match route.origin {
                RouteOrigin::Static => slot.found = Some(route),
                RouteOrigin::Propagated | RouteOrigin::Local => slot.other = Some(route),
            }
        }
    }

    let mut out = Plan::default();
    for (key, slot) in slots {
        if slot.ambiguous
            && let Some(first) = slot.want
        {
            out.conflicts.push(Conflict {
                key: key.clone(),
                wanted: first.clone(),
                held_by: RouteTarget::Other("ambiguous desired targets".to_owned()),
                held_by_origin: RouteOrigin::Static,
            });
        }
        let want = slot.want.filter(|_| !slot.ambiguous);
        plan_key(key, want, slot.found, slot.other, slot.ledger, &mut out);
    }
    out.changes.sort();
    out.conflicts.sort();
    out.satisfied_by_foreign.sort();
    out.ledger_fixes.sort();
    out
}

/// The rules of [`plan`] for one destination of one table.
fn plan_key(
    key: &RouteKey,
    want: Option<&RouteTarget>,
    found: Option<&Route>,
    other: Option<&Route>,
    entry: Option<&LedgerEntry>,
    out: &mut Plan,
) {
    let owned = match entry {
        None => false,
        Some(entry) if entry.status == LedgerStatus::Owned => true,
        Some(entry) => match found {
            Some(route) if route.target == entry.target => {
                out.ledger_fixes.push(LedgerFix::Record {
                    key: key.clone(),
                    target: route.target.clone(),
                });
                true
            }
            Some(_) => {
                out.ledger_fixes.push(LedgerFix::Drop {
                    key: key.clone(),
                    why: DropReason::TakenOver,
                });
                false
            }
            None => {
                if want.is_none() {
                    out.ledger_fixes.push(LedgerFix::Drop {
                        key: key.clone(),
                        why: DropReason::IntentNeverApplied,
                    });
                }
                // Still desired: the create below rewrites the intent.
                false
            }
        },
    };

    match (want, found) {
        (Some(target), None) => match other {
            Some(holder) => {
                out.conflicts.push(Conflict {
                    key: key.clone(),
                    wanted: target.clone(),
                    held_by: holder.target.clone(),
                    held_by_origin: holder.origin,
                });
                // Our route is gone and cannot come back while the
                // destination is held: keep no phantom entry.
                if let Some(entry) = entry {
                    out.ledger_fixes.push(LedgerFix::Drop {
                        key: key.clone(),
                        why: match entry.status {
                            LedgerStatus::Owned => DropReason::RouteGone,
                            LedgerStatus::Pending => DropReason::IntentNeverApplied,
                        },
                    });
                }
            }
            None => out.changes.push(Change {
                key: key.clone(),
                op: ChangeOp::Create,
                target: target.clone(),
                previous: None,
                reason: if owned {
                    ChangeReason::OwnedRouteDeleted
                } else {
                    ChangeReason::Missing
                },
            }),
        },
        (Some(target), Some(route)) if owned => {
            let recorded = entry.is_some_and(|e| e.recognises(&route.target));
            let reason = if &route.target != target && recorded {
                Some(ChangeReason::Retarget {
                    from: route.target.clone(),
                })
            } else if &route.target != target {
                Some(ChangeReason::Drifted {
                    from: route.target.clone(),
                })
            } else if route.state == RouteState::Blackhole {
                Some(ChangeReason::Blackhole)
            } else {
                if entry.is_some_and(|e| &e.target != target || e.previous.is_some()) {
                    out.ledger_fixes.push(LedgerFix::Record {
                        key: key.clone(),
                        target: target.clone(),
                    });
                }
                None
            };
            if let Some(reason) = reason {
                out.changes.push(Change {
                    key: key.clone(),
                    op: ChangeOp::Replace,
                    target: target.clone(),
                    previous: Some(route.target.clone()),
                    reason,
                });
            }
        }
        (Some(target), Some(route)) => {
            if &route.target == target && route.state == RouteState::Active {
                out.satisfied_by_foreign.push(key.clone());
            } else {
                out.conflicts.push(Conflict {
                    key: key.clone(),
                    wanted: target.clone(),
                    held_by: route.target.clone(),
                    held_by_origin: route.origin,
                });
            }
        }
        (None, Some(route)) if owned => {
            if entry.is_some_and(|e| e.recognises(&route.target)) {
                out.changes.push(Change {
                    key: key.clone(),
                    op: ChangeOp::Delete,
                    target: route.target.clone(),
                    previous: None,
                    reason: ChangeReason::NoLongerDesired,
                });
            } else {
                out.ledger_fixes.push(LedgerFix::Drop {
                    key: key.clone(),
                    why: DropReason::TakenOver,
                });
            }
        }
        (None, None) if owned => out.ledger_fixes.push(LedgerFix::Drop {
            key: key.clone(),
            why: DropReason::RouteGone,
        }),
        // Not desired and not ours: none of our business.
        (None, _) => {}
    }
}

/// Applies a plan to a model of a table set, as AWS would: what the world
/// looks like after every change succeeded. Used by property tests and by
/// benchmarks to check convergence without AWS.
pub fn simulate_apply(
    actual: &[Route],
    ledger: &OwnershipLedger,
    plan: &Plan,
) -> (Vec<Route>, OwnershipLedger) {
    let mut routes: BTreeMap<(RouteKey, RouteOrigin), Route> = actual
        .iter()
        .map(|r| ((r.key.clone(), r.origin), r.clone()))
        .collect();
    let mut ledger = ledger.clone();
    for fix in &plan.ledger_fixes {
        match fix {
            LedgerFix::Record { key, target } => {
                ledger.insert(LedgerEntry::new(key.clone(), target.clone(), LedgerStatus::Owned))
            }
            LedgerFix::Drop { key, .. } => {
                ledger.remove(key);
            }
        }
    }
    for change in &plan.changes {
        let slot = (change.key.clone(), RouteOrigin::Static);
        match change.op {
            ChangeOp::Create | ChangeOp::Replace => {
                routes.insert(
                    slot,
                    Route {
                        key: change.key.clone(),
                        target: change.target.clone(),
                        state: RouteState::Active,
                        origin: RouteOrigin::Static,
                    },
                );
                ledger.insert(LedgerEntry::new(
                    change.key.clone(),
                    change.target.clone(),
                    LedgerStatus::Owned,
                ));
            }
            ChangeOp::Delete => {
                routes.remove(&slot);
                ledger.remove(&change.key);
            }
        }
    }
    (routes.into_values().collect(), ledger)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Region, RouteTableRef, TableKind};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn table(n: usize) -> RouteTableRef {
        RouteTableRef {
            region: Region::new("eu-west-1").unwrap(),
            kind: TableKind::Vpc,
            id: format!("rtb-{n:04}"),
        }
    }
    const DESTS: [&str; 6] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "10.1.0.0/16",
        "fd00::/8",
        "100.64.0.0/10",
    ];
    fn key(t: usize, d: usize) -> RouteKey {
        RouteKey {
            table: table(t),
            destination: DESTS[d].parse().unwrap(),
        }
    }
    fn tgw(n: usize) -> RouteTarget {
        RouteTarget::TransitGateway(format!("tgw-{n}"))
    }
    fn route(key: RouteKey, target: RouteTarget) -> Route {
        Route {
            key,
            target,
            state: RouteState::Active,
            origin: RouteOrigin::Static,
        }
    }
    fn desire(key: RouteKey, target: RouteTarget) -> DesiredRoute {
        DesiredRoute { key, target }
    }
    fn owned(key: RouteKey, target: RouteTarget) -> LedgerEntry {
        LedgerEntry::new(key, target, LedgerStatus::Owned)
    }

    #[test]
    fn creates_what_is_missing_and_nothing_when_converged() {
        let desired = vec![desire(key(0, 0), tgw(1)), desire(key(0, 1), tgw(1))];
        let p = plan(&desired, &[], &OwnershipLedger::new());
        assert_eq!(p.changes.len(), 2);
        assert!(
            p.changes
                .iter()
                .all(|c| c.op == ChangeOp::Create && c.reason == ChangeReason::Missing)
        );
        let (after, ledger) = simulate_apply(&[], &OwnershipLedger::new(), &p);
        let again = plan(&desired, &after, &ledger);
        assert!(again.is_converged() && again.ledger_fixes.is_empty());
    }

    #[test]
    fn foreign_routes_are_never_touched() {
        let desired = vec![desire(key(0, 0), tgw(1)), desire(key(0, 1), tgw(1))];
        let actual = vec![
            route(key(0, 0), RouteTarget::Instance("i-legacy".into())),
            route(key(0, 1), tgw(1)),
            route(key(0, 2), tgw(1)),
        ];
        let p = plan(&desired, &actual, &OwnershipLedger::new());
        assert!(p.changes.is_empty(), "{p:?}");
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].held_by, RouteTarget::Instance("i-legacy".into()));
        assert_eq!(p.satisfied_by_foreign, vec![key(0, 1)]);
    }

    #[test]
    fn owned_drift_is_repaired_and_owned_leftovers_deleted() {
        let ledger: OwnershipLedger = [
            owned(key(0, 0), tgw(1)),
            owned(key(0, 1), tgw(1)),
            owned(key(0, 2), tgw(1)),
            owned(key(0, 3), tgw(1)),
        ]
        .into_iter()
        .collect();
        let desired = vec![desire(key(0, 0), tgw(1)), desire(key(0, 1), tgw(1))];
        let mut blackhole = route(key(0, 1), tgw(1));
        blackhole.state = RouteState::Blackhole;
        let actual = vec![
            route(key(0, 0), RouteTarget::NetworkInterface("eni-hand".into())),
            blackhole,
            route(key(0, 2), tgw(1)),
            // key(0,3): ours, not desired, repointed by hand: let go.
            route(key(0, 3), tgw(9)),
        ];
        let p = plan(&desired, &actual, &ledger);
        let ops: Vec<_> = p.changes.iter().map(|c| (c.key.clone(), c.op)).collect();
        assert_eq!(
            ops,
            vec![
                (key(0, 0), ChangeOp::Replace),
                (key(0, 1), ChangeOp::Replace),
                (key(0, 2), ChangeOp::Delete)
            ]
        );
        assert_eq!(p.changes[1].reason, ChangeReason::Blackhole);
        assert_eq!(
            p.ledger_fixes,
            vec![LedgerFix::Drop {
                key: key(0, 3),
                why: DropReason::TakenOver
            }]
        );
    }

    #[test]
    fn deleted_owned_route_is_recreated_or_forgotten() {
        let ledger: OwnershipLedger = [owned(key(0, 0), tgw(1)), owned(key(0, 1), tgw(1))]
            .into_iter()
            .collect();
        let p = plan(&[desire(key(0, 0), tgw(1))], &[], &ledger);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].reason, ChangeReason::OwnedRouteDeleted);
        assert_eq!(
            p.ledger_fixes,
            vec![LedgerFix::Drop {
                key: key(0, 1),
                why: DropReason::RouteGone
            }]
        );
    }

    #[test]
    fn pending_intents_are_adopted_or_dropped() {
        let pending = |k, t| LedgerEntry::new(k, t, LedgerStatus::Pending);
        let ledger: OwnershipLedger = [
            pending(key(0, 0), tgw(1)), // applied: adopt
            pending(key(0, 1), tgw(1)), // never applied, not desired: drop
            pending(key(0, 2), tgw(1)), // someone else's route: drop, conflict
        ]
        .into_iter()
        .collect();
        let actual = vec![route(key(0, 0), tgw(1)), route(key(0, 2), tgw(7))];
        let desired = vec![desire(key(0, 0), tgw(1)), desire(key(0, 2), tgw(1))];
        let p = plan(&desired, &actual, &ledger);
        assert!(p.changes.is_empty());
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(
            p.ledger_fixes,
            vec![
                LedgerFix::Record {
                    key: key(0, 0),
                    target: tgw(1)
                },
                LedgerFix::Drop {
                    key: key(0, 1),
                    why: DropReason::IntentNeverApplied
                },
                LedgerFix::Drop {
                    key: key(0, 2),
                    why: DropReason::TakenOver
                },
            ]
        );
    }

    #[test]
    fn blast_radius_refuses_whole_plan_unless_forced() {
        let desired: Vec<_> = (0..5).map(|t| desire(key(t, 0), tgw(1))).collect();
        let p = plan(&desired, &[], &OwnershipLedger::new());
        let err = p.check_blast_radius(4, false).unwrap_err();
        assert_eq!(err, PlanError::BlastRadius { count: 5, limit: 4 });
        assert!(err.to_string().contains("5 changes exceed LBGP_MAX_CHANGES=4"));
        assert!(p.check_blast_radius(4, true).is_ok());
        assert!(p.check_blast_radius(5, false).is_ok());
    }

    #[test]
    fn local_and_propagated_routes_block_creation() {
        let local = Route {
            key: key(0, 3),
            target: RouteTarget::Other("local".into()),
            state: RouteState::Active,
            origin: RouteOrigin::Local,
        };
        let p = plan(&[desire(key(0, 3), tgw(1))], &[local], &OwnershipLedger::new());
        assert!(p.changes.is_empty());
        assert_eq!(p.conflicts[0].held_by_origin, RouteOrigin::Local);
    }

    #[test]
    fn ambiguous_desire_installs_nothing() {
        let p = plan(
            &[desire(key(0, 0), tgw(1)), desire(key(0, 0), tgw(2))],
            &[],
            &OwnershipLedger::new(),
        );
        assert!(p.changes.is_empty());
        assert_eq!(p.conflicts.len(), 1);
    }

    // ---- properties over random states ----

    fn arb_target() -> impl Strategy<Value = RouteTarget> {
        prop_oneof![
            (0..3usize).prop_map(tgw),
            Just(RouteTarget::NetworkInterface("eni-1".into())),
            Just(RouteTarget::Instance("i-1".into())),
            Just(RouteTarget::Other("pcx-1".into())),
        ]
    }

    #[derive(Debug, Clone)]
    struct State {
        desired: Vec<DesiredRoute>,
        actual: Vec<Route>,
        ledger: OwnershipLedger,
    }

    fn arb_state() -> impl Strategy<Value = State> {
        let slot = (
            prop::option::of((0..3usize).prop_map(tgw)),
            prop::option::of((arb_target(), any::<bool>())),
            prop::option::of(prop_oneof![
                Just(RouteOrigin::Local),
                Just(RouteOrigin::Propagated)
            ]),
            prop::option::of((arb_target(), any::<bool>(), prop::option::of(arb_target()))),
        );
        prop::collection::vec(slot, 3 * DESTS.len()).prop_map(|slots| {
            let mut state = State {
                desired: vec![],
                actual: vec![],
                ledger: OwnershipLedger::new(),
            };
            for (i, (want, stat, other, entry)) in slots.into_iter().enumerate() {
                let k = key(i / DESTS.len(), i % DESTS.len());
                if let Some(t) = want {
                    state.desired.push(desire(k.clone(), t));
                }
                if let Some((t, blackhole)) = stat {
                    let mut r = route(k.clone(), t);
                    if blackhole {
                        r.state = RouteState::Blackhole;
                    }
                    state.actual.push(r);
                }
                if let Some(origin) = other {
                    state.actual.push(Route {
                        key: k.clone(),
                        target: RouteTarget::Other("local".into()),
                        state: RouteState::Active,
                        origin,
                    });
                }
                if let Some((t, pending, previous)) = entry {
                    state.ledger.insert(LedgerEntry {
                        key: k,
                        target: t,
                        status: if pending {
                            LedgerStatus::Pending
                        } else {
                            LedgerStatus::Owned
                        },
                        // Only a replace in flight has one, and replaces
                        // are recorded as owned.
                        previous: previous.filter(|_| !pending),
                        account: None,
                    });
                }
            }
            state
        })
    }

    proptest! {
        #[test]
        fn plan_never_touches_foreign_routes(s in arb_state()) {
            let p = plan(&s.desired, &s.actual, &s.ledger);
            for c in &p.changes {
                let current = s.actual.iter().find(|r| r.key == c.key && r.origin == RouteOrigin::Static);
                match c.op {
                    ChangeOp::Create => prop_assert!(current.is_none(), "create over an existing route: {c:?}"),
                    ChangeOp::Replace | ChangeOp::Delete => {
                        let entry = s.ledger.get(&c.key);
                        prop_assert!(entry.is_some(), "write to a route not in the ledger: {c:?}");
                        let entry = entry.unwrap();
                        let current = current.unwrap();
                        prop_assert!(
                            entry.status == LedgerStatus::Owned || entry.target == current.target,
                            "write to a route whose intent was never confirmed: {c:?}"
                        );
                        if c.op == ChangeOp::Delete {
                            prop_assert!(entry.recognises(&current.target), "delete of a route at a target we never recorded: {c:?}");
                        }
                    }
                }
            }
        }

        #[test]
        fn applying_the_plan_converges(s in arb_state()) {
            let p = plan(&s.desired, &s.actual, &s.ledger);
            let (after, ledger) = simulate_apply(&s.actual, &s.ledger, &p);
            // Foreign static routes survive unchanged.
            for r in s.actual.iter().filter(|r| r.origin == RouteOrigin::Static && s.ledger.get(&r.key).is_none()) {
                prop_assert!(after.contains(r), "foreign route changed: {r:?}");
            }
            // Every desired route not in conflict is there with its target.
            let blocked: BTreeSet<_> = p.conflicts.iter().map(|c| c.key.clone()).collect();
            for d in s.desired.iter().filter(|d| !blocked.contains(&d.key)) {
                prop_assert!(
                    after.iter().any(|r| r.key == d.key && r.origin == RouteOrigin::Static && r.target == d.target && r.state == RouteState::Active),
                    "desired route missing after apply: {d:?}"
                );
            }
            // The ledger names only routes that exist with the recorded target.
            for e in ledger.iter() {
                prop_assert!(
                    after.iter().any(|r| r.key == e.key && r.origin == RouteOrigin::Static && r.target == e.target),
                    "phantom ledger entry: {e:?}"
                );
                prop_assert_eq!(e.status, LedgerStatus::Owned);
            }
            let again = plan(&s.desired, &after, &ledger);
            prop_assert!(again.changes.is_empty(), "second plan not empty: {:?}", again.changes);
            prop_assert!(again.ledger_fixes.is_empty(), "second plan fixes the ledger: {:?}", again.ledger_fixes);
            prop_assert_eq!(again.conflicts, p.conflicts);
        }

        #[test]
        fn plan_is_deterministic(s in arb_state(), seed in any::<u64>()) {
            let p = plan(&s.desired, &s.actual, &s.ledger);
            let mut desired = s.desired.clone();
            let mut actual = s.actual.clone();
            // A cheap deterministic shuffle: rotate by the seed and reverse.
            if !desired.is_empty() { let n = desired.len(); desired.rotate_left((seed as usize) % n); }
            if !actual.is_empty() { let n = actual.len(); actual.rotate_left((seed as usize) % n); }
            actual.reverse();
            prop_assert_eq!(plan(&desired, &actual, &s.ledger), p);
        }
    }
}
