//! Model check of lbgp's lease, fencing-token and write-ahead ownership-ledger
//! protocol with [stateright](https://docs.rs/stateright), an explicit-state
//! model checker: every interleaving of the actions below, within the bounds
//! of a configuration, is explored, and the properties are checked in every
//! state reached.
//!
//! Run it with `cargo test -p lbgp-core --test protocol_model -- --nocapture`
//! (the bounded configuration, a few seconds); `LBGP_CHAOS=1` adds the deep
//! one (three runs, two bursts, more faults: minutes).
//!
//! # What is modelled
//!
//! One route table with 2–3 destinations, and around it:
//!
//! - **EC2**: each destination holds at most one static route, with a target
//!   and a provenance (ghost state: created by run *i*, by a run before the
//!   model starts, or by a human; and whether a human wrote it last);
//! - **DynamoDB**: the ownership ledger (an [`OwnershipLedger`]) and the lease
//!   item (a [`LeaseRecord`]); a fenced write is accepted exactly when
//!   [`LeaseRecord::admits`] holds at that moment, and an empty one is no
//!   write at all (the store sends no transaction for it, so it checks
//!   nothing either);
//! - **time**: a clock that ticks at any moment, so leases expire and are
//!   taken over; a run starts an EC2 write only while `now + margin <
//!   expiry`, as `Budget::may_write` does (margin: 1 tick, lease: 3 ticks);
//! - **the desired state**: per destination a script of desired targets (or
//!   none), toggled a bounded number of times, between or during runs;
//! - **runs** (invocations, each with its own lease holder name, as the
//!   request id is), each with a program counter following
//!   `runtime/src/reconcile.rs` (`run`, `apply_unit`) and
//!   `runtime/src/apply.rs` (`apply_owned`, `owned_burst`, `write_owned`):
//!   take the lease (or, if it is held, mark work pending and stop) → read
//!   the ledger, the routes and the desire, plan → one fenced write of the
//!   ledger fixes → per burst: check the budget (too close to the lease's
//!   end: defer the rest), one fenced write of the burst's intents, each EC2
//!   write of the burst as its own action (so other runs, humans and the
//!   clock interleave between them; each checks the budget again), one
//!   fenced write of the confirmations of the writes that succeeded →
//!   release (leaving work pending if anything was deferred); on
//!   `WorkPending` renew and make another pass, at most `MAX_PASSES` (here
//!   2), then `release_fully` (release, or release leaving the mark when
//!   work is pending again); a fenced write refused (lease lost) stops the
//!   run, as `outcome.fenced` does;
//! - **faults**: a run crashes at any step (it stops for good and keeps its
//!   lease until it expires); an EC2 write's answer is lost (applied, but
//!   the run sees a failure and does not confirm it) or the write fails
//!   unapplied; a fenced ledger write's answer is lost (applied, the run sees
//!   an error that is not a fencing one and goes on along the code's error
//!   path) or it fails unapplied (throttled); a crash right after any write
//!   is "applied, then the run stops"; a human deletes a route, repoints one
//!   to a target of theirs, or creates one at a free destination (bounded).
//!
//! The rules are **lbgp-core's own code**, called by the model's actions on
//! lbgp-core's own types: [`plan`], [`writeahead::fix`],
//! [`writeahead::intent`], [`writeahead::confirmation`],
//! [`LedgerWrite::apply_to`], [`LeaseRecord::acquire`], `admits`, `renew`,
//! `release` and `release_leaving_work`. The state itself is stored compactly
//! (indices for destinations, targets and holders, times relative to now) and
//! converted to those types before every call and back after; the
//! conversions of changes and ledger writes are checked to round-trip. What
//! the model restates is only the order in which the adapters call the rules
//! (the async code of `lbgp-runtime`, which needs the AWS SDK), the one-line
//! lease margin of `Budget::may_write`, and EC2's semantics as `write_owned`
//! sees them (create over an existing route: ours only if it has our target;
//! replace of a missing route: create it; delete of a missing route: done).
//!
//! # Properties
//!
//! 1. No fenced write (ledger fix, intent, confirmation; the lease's renew
//!    and release) of a run whose lease was lost is accepted. Loss is tracked
//!    apart from the token: another run acquired the lease while this one
//!    was live.
//! 2. No route a human created is ever deleted or replaced by a run (the
//!    protocol never adopts a foreign route).
//! 3. At every moment, every route lbgp wrote last has a ledger entry that
//!    recognises its target: nothing is orphaned, even mid-run. (A route a
//!    human repointed is theirs once lbgp no longer wants it: the planner
//!    lets it go by design, `DropReason::TakenOver`.)
//! 4. Once every run has stopped (idle, done or crashed), one clean run,
//!    after every lease expired, with the model's own actions fault-free,
//!    leaves ledger = reality: every entry is owned, with no replace in
//!    flight, and names a route lbgp created that exists with that target;
//!    every route lbgp wrote last is in the ledger (a route no longer desired
//!    was deleted); every desired route not blocked by a foreign route is
//!    there with its target; and planning again changes nothing.
//!
//! `sometimes` properties check that the interesting cases are reached (a
//! live run's lease taken over, a fenced write refused, a state at rest with
//! routes owned after a run was fenced), so the check is not vacuous. Two
//! variants of the same model with one protocol step removed on purpose, EC2
//! writes not guarded by the lease margin and intents written after the EC2
//! write instead of before, must produce counterexamples: the properties
//! have teeth.
//!
//! # What is abstracted away, and why that is sound
//!
//! - **Regions and tables.** `apply_owned` runs one queue per region side by
//!   side, each with its own bursts, under the same fence; the ledger keys
//!   of two regions never overlap and the planner decides each key alone,
//!   so one table shows every per-key interleaving. The cross-region stop
//!   (a fenced burst stops the other regions) only makes a real run do less.
//! - **DynamoDB transaction conflicts and batching.** The store serialises
//!   the fenced transactions of one lease and retries conflicts; a write
//!   list (at most 99 items per transaction; here at most 3) is one atomic
//!   action. Reads are strongly consistent (`consistent_read`).
//! - **EC2 eventual consistency.** Reads are taken as up to date. Read lag is
//!   a separate mechanism (`Desire::settle` freezes what was written moments
//!   ago, which only removes writes from a plan), not the lease protocol.
//! - **The read.** Ledger, routes and desire are read in one action. Only the
//!   lease holder writes the ledger (property 1) and every EC2 write of an
//!   earlier holder landed before its lease expired (next point), so between
//!   a run's reads only humans and the desire change anything, and every
//!   order of those against the read is explored.
//! - **An EC2 write is one action at the instant it may start.**
//!   `LEASE_MARGIN` is longer than a write with its retries plus clock skew,
//!   so a write started while `now + margin < expiry` lands before the lease
//!   is free (`expires_at < now`), hence before any other run can take it.
//!   Between its start and its landing only humans, the desire, the clock
//!   and the same run's other writes act; moving the landing back to the
//!   start, and the clock's ticks after it, gives a trace of the model with
//!   the same effect. One clock models all hosts: skew is part of the
//!   margin. The `NoLeaseMargin` variant shows what happens without it.
//! - **Time is relative and unbounded.** The protocol only compares times
//!   with now (`expires_at < now`, `expires_at - now > margin`) and sets
//!   them to `now + ttl`, so the state keeps times relative to now, and all
//!   times already past as one value: the clock can tick any number of times
//!   and the state space stays finite (the abstraction is a bisimulation).
//! - **Runs are alike but for their names**, so they start in order (run
//!   *i + 1* only once run *i* has started): a symmetry reduction.
//! - **Humans never re-create lbgp's route.** EC2 routes carry no identity:
//!   a human's delete and create of a route lbgp created is, to anyone
//!   reading EC2, a repoint (modelled, and repaired by lbgp as drift while it
//!   wants the route, by design); and a plan read before such a swap writes
//!   over the new route, as EC2 has no conditional writes. So a human
//!   creates only where the ledger has no entry, or a pending intent whose
//!   create has not landed yet (the race of `write_owned`'s "a route appeared
//!   before ours"), and only with a target lbgp never installs.
//! - **Blackhole state, propagated and local routes, the blast-radius guard,
//!   notifications, the deadline.** The planner's rules for them are covered
//!   by its own tests; the deadline stops writes the way the lease margin
//!   does (deferral), which is modelled.
//! - **Liveness** (pending work is eventually done) is not checked: only
//!   safety, and convergence by one clean run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lbgp_core::lease::{Acquisition, LeaseRecord, Release};
use lbgp_core::writeahead::{self, LedgerWrite};
use lbgp_core::{
    Change, ChangeOp, ChangeReason, DesiredRoute, LedgerEntry, LedgerStatus, OwnershipLedger, Region, Route,
    RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind, plan,
};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The protocol as implemented, or with one step removed on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `runtime/src/apply.rs` as it is.
    Protocol,
    /// EC2 writes started whatever the lease has left (no `may_write` lease
    /// margin, neither before a burst nor before a write).
    NoLeaseMargin,
    /// The ledger's intents written after the EC2 writes (with the
    /// confirmations), not before.
    IntentsAfterWrite,
}

/// What a destination holds at the start.
#[derive(Debug, Clone, Copy)]
enum Initial {
    /// No route.
    Empty,
    /// A human's route (not in the ledger).
    Foreign,
    /// A route of an earlier lbgp run, with this target, owned in the ledger.
    Owned(u8),
}

/// One destination of the model's table.
#[derive(Debug, Clone)]
struct Dest {
    cidr: &'static str,
    initial: Initial,
    /// The desired target (an index into [`TGWS`]) or none, in the order the
    /// desire toggles through them (cyclically).
    script: Vec<Option<u8>>,
}

#[derive(Debug, Clone)]
struct Config {
    name: &'static str,
    variant: Variant,
    /// Invocations that may start.
    runs: usize,
    dests: Vec<Dest>,
    /// Writes per burst (`LBGP_EC2_WRITE_BURST`, capped by a transaction).
    burst: usize,
    /// Lease time to live, in ticks.
    ttl: u64,
    /// `LEASE_MARGIN`, in ticks: a write starts only while more is left.
    margin: u64,
    /// `MAX_PASSES` of `apply_unit`.
    max_passes: u8,
    crashes: u8,
    /// Lost responses and failed writes, EC2 and DynamoDB together.
    faults: u8,
    /// Human deletes, repoints and creates.
    human: u8,
    desire_changes: u8,
}

/// The targets lbgp installs; the human's is [`HUMAN`].
const TGWS: [&str; 2] = ["tgw-1", "tgw-2"];
/// The index of the human's target (an instance), which lbgp never installs.
const HUMAN: u8 = 2;
/// The creator of the routes lbgp owns at the start.
const EARLIER: u8 = u8::MAX;

fn chaos() -> bool {
    std::env::var("LBGP_CHAOS").is_ok_and(|v| v == "1")
}

/// Small enough for `make test` on two slow cores in the dev profile.
fn bounded(variant: Variant) -> Config {
    Config {
        name: "bounded",
        variant,
        runs: 2,
        dests: vec![
            // Created, then retargeted.
            Dest {
                cidr: "10.0.0.0/8",
                initial: Initial::Empty,
                script: vec![Some(0), Some(1)],
            },
            // Held by a human's route (a conflict), then not desired.
            Dest {
                cidr: "172.16.0.0/12",
                initial: Initial::Foreign,
                script: vec![Some(0), None],
            },
        ],
        burst: 2,
        ttl: 3,
        margin: 1,
        max_passes: 2,
        crashes: 1,
        faults: 2,
        human: 2,
        desire_changes: 1,
    }
}

/// `LBGP_CHAOS=1`: three runs, three destinations in two bursts, more of
/// everything.
fn deep(variant: Variant) -> Config {
    Config {
        name: "deep",
        variant,
        runs: 3,
        dests: vec![
            Dest {
                cidr: "10.0.0.0/8",
                initial: Initial::Empty,
                script: vec![Some(0), Some(1), None],
            },
            Dest {
                cidr: "172.16.0.0/12",
                initial: Initial::Foreign,
                script: vec![Some(0), None],
            },
            // Ours from an earlier run, then not desired.
            Dest {
                cidr: "192.168.0.0/16",
                initial: Initial::Owned(0),
                script: vec![Some(0), None],
            },
        ],
        burst: 2,
        ttl: 3,
        margin: 1,
        max_passes: 2,
        crashes: 2,
        faults: 2,
        human: 1,
        desire_changes: 1,
    }
}

// ---------------------------------------------------------------------------
// State
//
// Kept small (indices into the model's destinations, targets and holders)
// so that millions of states fit and hash fast. Every rule runs on
// lbgp-core's own types: the state is converted to them before each call
// and back after (`ProtocolModel::ledger`, `lease`, `change`…), and the
// conversions are checked to round-trip.
// ---------------------------------------------------------------------------

/// Who created a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Creator {
    /// Run *i* (`runs` is the clean run of property 4, [`EARLIER`] a run
    /// before the model starts).
    Lbgp(u8),
    Human,
}

/// A static route in EC2, with its provenance (ghost state: AWS does not
/// record it; the properties read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Ec2Route {
    target: u8,
    created_by: Creator,
    /// A human wrote it last (repoint or create).
    human_last: bool,
}

/// A [`LedgerEntry`] of the model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Entry {
    target: u8,
    status: LedgerStatus,
    previous: Option<u8>,
}

/// A [`LeaseRecord`], its holder by index and its times relative to now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Lease {
    holder: Option<u8>,
    token: u64,
    expires_at: Rel,
    pending: bool,
    started_at: Rel,
}

/// A time relative to now, in ticks. Only its comparisons with now matter
/// (`expires_at < now`, `expires_at - now > margin`); every time before now
/// compares alike, so all of them are [`PAST`]. Time is unbounded: the
/// clock ticks any number of times, and the states stay finite.
type Rel = i64;
const PAST: Rel = -1;
/// What lbgp-core sees as now: times go to it as `NOW + relative`.
const NOW: u64 = 1_000;

fn abs(t: Rel) -> u64 {
    NOW.checked_add_signed(t).unwrap()
}

fn rel(t: u64) -> Rel {
    (i64::try_from(t).unwrap() - i64::try_from(NOW).unwrap()).max(PAST)
}

fn tick(t: &mut Rel) {
    *t = (*t - 1).max(PAST);
}

/// A [`ChangeReason`] of the model's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reason {
    Missing,
    OwnedRouteDeleted,
    Drifted(u8),
    Retarget(u8),
    Blackhole,
    NoLongerDesired,
}

/// A [`Change`] of the model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Ch {
    op: ChangeOp,
    dest: u8,
    target: u8,
    previous: Option<u8>,
    reason: Reason,
}

/// A [`LedgerWrite`] of the model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Write {
    Record(u8, Entry),
    Forget(u8),
}

/// What a run knows of its lease (the adapters' `Fence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Fence {
    token: u64,
    expires_at: Rel,
}

/// What became of one change of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Res {
    Todo,
    Ok,
    Failed,
    Deferred,
}

/// A plan being applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Job {
    fence: Fence,
    pass: u8,
    changes: Vec<Ch>,
    results: Vec<Res>,
    /// The burst being applied.
    burst: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum End {
    Released,
    /// The lease was held by another run: work marked pending for it.
    Locked,
    /// Writes were deferred: released leaving work pending.
    LeftWork,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stop {
    Crashed,
    /// A fenced write was refused: the run stops writing (`outcome.fenced`).
    Fenced,
    /// `release` said the lease is someone else's.
    LeaseLost,
    /// `renew` was refused.
    RenewRefused,
}

/// A run's program counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Pc {
    Idle,
    /// Holds the lease (it thinks): read and plan next.
    Held {
        fence: Fence,
        pass: u8,
    },
    /// The plan's ledger fixes, one fenced write.
    Fixes {
        job: Job,
        writes: Vec<Write>,
    },
    /// Before a burst: `budget.may_write`.
    Budget(Job),
    /// The burst's intents, one fenced write.
    Intents {
        job: Job,
        writes: Vec<Write>,
    },
    /// The burst's EC2 writes, each its own action.
    Writes(Job),
    /// The confirmations of the burst's writes that succeeded, one fenced
    /// write.
    Confirm {
        job: Job,
        writes: Vec<Write>,
    },
    /// Applied: release (or release leaving work).
    Finish {
        fence: Fence,
        pass: u8,
        deferred: bool,
    },
    /// `release_fully` after the last pass found work pending: release
    /// leaving the mark.
    ReleaseAgain {
        fence: Fence,
    },
    /// Work arrived meanwhile: renew, then another pass.
    Renew {
        fence: Fence,
        pass: u8,
    },
    Done(End),
    Stopped(Stop),
}

impl Pc {
    fn is_live(&self) -> bool {
        !matches!(self, Pc::Idle | Pc::Done(_) | Pc::Stopped(_))
    }

    fn fence(&self) -> Option<&Fence> {
        match self {
            Pc::Held { fence, .. }
            | Pc::Finish { fence, .. }
            | Pc::ReleaseAgain { fence, .. }
            | Pc::Renew { fence, .. } => Some(fence),
            Pc::Fixes { job, .. }
            | Pc::Budget(job)
            | Pc::Intents { job, .. }
            | Pc::Writes(job)
            | Pc::Confirm { job, .. } => Some(&job.fence),
            Pc::Idle | Pc::Done(_) | Pc::Stopped(_) => None,
        }
    }

    fn fence_mut(&mut self) -> Option<&mut Fence> {
        match self {
            Pc::Held { fence, .. }
            | Pc::Finish { fence, .. }
            | Pc::ReleaseAgain { fence, .. }
            | Pc::Renew { fence, .. } => Some(fence),
            Pc::Fixes { job, .. }
            | Pc::Budget(job)
            | Pc::Intents { job, .. }
            | Pc::Writes(job)
            | Pc::Confirm { job, .. } => Some(&mut job.fence),
            Pc::Idle | Pc::Done(_) | Pc::Stopped(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Run {
    pc: Pc,
    /// Ghost: another run acquired the lease while this one was live (a live
    /// run has acquired it). Reset when the run ends, as it writes nothing
    /// after.
    lost: bool,
}

/// Ghost state: what happened, for the properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Ghost {
    /// A fenced write of a run whose lease was lost was accepted.
    fenced_write_after_loss: bool,
    /// A run deleted or replaced a route a human created.
    foreign_route_written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct World {
    /// By destination.
    routes: Vec<Option<Ec2Route>>,
    /// By destination.
    ledger: Vec<Option<Entry>>,
    lease: Lease,
    /// Per destination, the index into its desire script.
    desire: Vec<u8>,
    runs: Vec<Run>,
    crashes_left: u8,
    faults_left: u8,
    human_left: u8,
    desire_left: u8,
    ghost: Ghost,
    /// Per destination, ghost: lbgp's route for the pending intent there
    /// has been created (a human's delete and create after it is, to
    /// anyone reading EC2, a repoint of lbgp's route; see "Humans" above).
    pending_applied: Vec<bool>,
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

/// How a fenced DynamoDB write ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Db {
    /// Accepted if the lease admits the run, refused (fenced) otherwise.
    Answered,
    /// Fault: applied, but the answer was lost; the run sees an error that
    /// is not a fencing error.
    AppliedAnswerLost,
    /// Fault: not applied (throttled); the run sees an error.
    Failed,
}

/// How an EC2 write ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ec2 {
    Answered,
    /// Fault: applied, but the run sees a failure.
    AppliedAnswerLost,
    /// Fault: not applied; the run sees a failure.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HumanOp {
    Delete,
    Repoint,
    Create,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    Tick,
    ToggleDesire(usize),
    Human(HumanOp, usize),
    Acquire(usize),
    Plan(usize),
    WriteFixes(usize, Db),
    CheckBudget(usize),
    WriteIntents(usize, Db),
    /// Run, index of the change in its plan.
    Ec2Write(usize, usize, Ec2),
    Defer(usize, usize),
    WriteConfirmations(usize, Db),
    Release(usize),
    Renew(usize),
    Crash(usize),
}

impl Action {
    fn run(self) -> Option<usize> {
        match self {
            Action::Acquire(r)
            | Action::Plan(r)
            | Action::WriteFixes(r, _)
            | Action::CheckBudget(r)
            | Action::WriteIntents(r, _)
            | Action::Ec2Write(r, _, _)
            | Action::Defer(r, _)
            | Action::WriteConfirmations(r, _)
            | Action::Release(r)
            | Action::Renew(r)
            | Action::Crash(r) => Some(r),
            Action::Tick | Action::ToggleDesire(_) | Action::Human(..) => None,
        }
    }

    fn is_fault(self) -> bool {
        matches!(
            self,
            Action::WriteFixes(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::WriteIntents(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::WriteConfirmations(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::Ec2Write(_, _, Ec2::AppliedAnswerLost | Ec2::Failed)
        )
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

struct ProtocolModel {
    cfg: Config,
    keys: Vec<RouteKey>,
    /// [`TGWS`], then the human's target.
    targets: Vec<RouteTarget>,
    /// Lease holder names: one per run, then the clean run's.
    holders: Vec<String>,
    /// Property 4's verdicts by what the clean run depends on: the routes,
    /// the ledger and the desire (it takes the lease once it is free,
    /// whoever held it).
    clean_verdicts: Mutex<HashMap<CleanKey, bool>>,
}

type CleanKey = (Vec<Option<Ec2Route>>, Vec<Option<Entry>>, Vec<u8>);

impl ProtocolModel {
    fn new(cfg: Config) -> Self {
        let table = RouteTableRef {
            region: Region::new("eu-west-1").unwrap(),
            kind: TableKind::Vpc,
            id: "rtb-model".into(),
        };
        let keys = cfg
            .dests
            .iter()
            .map(|d| RouteKey {
                table: table.clone(),
                destination: d.cidr.parse().unwrap(),
            })
            .collect();
        let holders = (0..cfg.runs)
            .map(|r| format!("run-{r}"))
            .chain(["clean".to_owned()])
            .collect();
        let targets = TGWS
            .iter()
            .map(|t| RouteTarget::TransitGateway((*t).into()))
            .chain([RouteTarget::Instance("i-human".into())])
            .collect();
        ProtocolModel {
            keys,
            targets,
            holders,
            clean_verdicts: Mutex::default(),
            cfg,
        }
    }

    // ---- conversions to and from lbgp-core's types ----

    fn dest_of(&self, key: &RouteKey) -> u8 {
        u8::try_from(self.keys.iter().position(|k| k == key).unwrap()).unwrap()
    }

    fn target_of(&self, target: &RouteTarget) -> u8 {
        u8::try_from(self.targets.iter().position(|t| t == target).unwrap()).unwrap()
    }

    fn target(&self, t: u8) -> RouteTarget {
        self.targets[usize::from(t)].clone()
    }

    fn entry(&self, d: u8, e: &Entry) -> LedgerEntry {
        LedgerEntry {
            key: self.keys[usize::from(d)].clone(),
            target: self.target(e.target),
            status: e.status,
            previous: e.previous.map(|p| self.target(p)),
            account: None,
        }
    }

    fn compact_entry(&self, e: &LedgerEntry) -> (u8, Entry) {
        let entry = Entry {
            target: self.target_of(&e.target),
            status: e.status,
            previous: e.previous.as_ref().map(|p| self.target_of(p)),
        };
        (self.dest_of(&e.key), entry)
    }

    fn ledger(&self, ledger: &[Option<Entry>]) -> OwnershipLedger {
        (0..)
            .zip(ledger)
            .filter_map(|(d, e)| e.as_ref().map(|e| self.entry(d, e)))
            .collect()
    }

    fn compact_ledger(&self, ledger: &OwnershipLedger) -> Vec<Option<Entry>> {
        let mut out = vec![None; self.keys.len()];
        for e in ledger.iter() {
            let (d, entry) = self.compact_entry(e);
            out[usize::from(d)] = Some(entry);
        }
        out
    }

    fn lease(&self, lease: &Lease) -> LeaseRecord {
        LeaseRecord {
            holder: lease.holder.map(|h| self.holders[usize::from(h)].clone()),
            token: lease.token,
            expires_at: abs(lease.expires_at),
            pending: lease.pending,
            started_at: abs(lease.started_at),
        }
    }

    fn compact_lease(&self, lease: &LeaseRecord) -> Lease {
        Lease {
            holder: lease
                .holder
                .as_ref()
                .map(|h| u8::try_from(self.holders.iter().position(|x| x == h).unwrap()).unwrap()),
            token: lease.token,
            expires_at: rel(lease.expires_at),
            pending: lease.pending,
            started_at: rel(lease.started_at),
        }
    }

    /// Runs one of `LeaseRecord`'s transitions on the world's lease.
    fn with_lease<T>(&self, w: &mut World, f: impl FnOnce(&mut LeaseRecord) -> T) -> T {
        let mut lease = self.lease(&w.lease);
        let out = f(&mut lease);
        w.lease = self.compact_lease(&lease);
        out
    }

    fn change(&self, c: &Ch) -> Change {
        Change {
            key: self.keys[usize::from(c.dest)].clone(),
            op: c.op,
            target: self.target(c.target),
            previous: c.previous.map(|p| self.target(p)),
            reason: match c.reason {
                Reason::Missing => ChangeReason::Missing,
                Reason::OwnedRouteDeleted => ChangeReason::OwnedRouteDeleted,
                Reason::Drifted(from) => ChangeReason::Drifted {
                    from: self.target(from),
                },
                Reason::Retarget(from) => ChangeReason::Retarget {
                    from: self.target(from),
                },
                Reason::Blackhole => ChangeReason::Blackhole,
                Reason::NoLongerDesired => ChangeReason::NoLongerDesired,
            },
        }
    }

    fn compact_change(&self, c: &Change) -> Ch {
        let ch = Ch {
            op: c.op,
            dest: self.dest_of(&c.key),
            target: self.target_of(&c.target),
            previous: c.previous.as_ref().map(|p| self.target_of(p)),
            reason: match &c.reason {
                ChangeReason::Missing => Reason::Missing,
                ChangeReason::OwnedRouteDeleted => Reason::OwnedRouteDeleted,
                ChangeReason::Drifted { from } => Reason::Drifted(self.target_of(from)),
                ChangeReason::Retarget { from } => Reason::Retarget(self.target_of(from)),
                ChangeReason::Blackhole => Reason::Blackhole,
                ChangeReason::NoLongerDesired => Reason::NoLongerDesired,
                ChangeReason::Other(why) => panic!("the planner gave an unmodelled reason: {why}"),
                ChangeReason::Noted { .. } => panic!("the planner gave a noted reason: {}", c.reason),
            },
        };
        debug_assert_eq!(&self.change(&ch), c, "a change does not round-trip");
        ch
    }

    fn write(&self, w: &Write) -> LedgerWrite {
        match w {
            Write::Record(d, e) => LedgerWrite::Record(self.entry(*d, e)),
            Write::Forget(d) => LedgerWrite::Forget(self.keys[usize::from(*d)].clone()),
        }
    }

    fn compact_write(&self, w: &LedgerWrite) -> Write {
        let out = match w {
            LedgerWrite::Record(e) => {
                let (d, entry) = self.compact_entry(e);
                Write::Record(d, entry)
            }
            LedgerWrite::Forget(key) => Write::Forget(self.dest_of(key)),
        };
        debug_assert_eq!(&self.write(&out), w, "a ledger write does not round-trip");
        out
    }

    // ---- what the adapters read ----

    fn desired(&self, w: &World) -> Vec<DesiredRoute> {
        self.cfg
            .dests
            .iter()
            .enumerate()
            .filter_map(|(d, dest)| {
                dest.script[usize::from(w.desire[d])].map(|t| DesiredRoute {
                    key: self.keys[d].clone(),
                    target: self.target(t),
                })
            })
            .collect()
    }

    /// What `DescribeRouteTables` returns.
    fn actual(&self, w: &World) -> Vec<Route> {
        w.routes
            .iter()
            .enumerate()
            .filter_map(|(d, r)| {
                r.as_ref().map(|r| Route {
                    key: self.keys[d].clone(),
                    target: self.target(r.target),
                    state: RouteState::Active,
                    origin: RouteOrigin::Static,
                })
            })
            .collect()
    }

    // ---- the protocol's steps ----

    /// `Budget::may_write`: `expires_at - now > LEASE_MARGIN`.
    fn may_write(&self, fence: &Fence) -> bool {
        self.cfg.variant == Variant::NoLeaseMargin
            || abs(fence.expires_at).saturating_sub(NOW) > self.cfg.margin
    }

    fn burst_range(&self, job: &Job) -> std::ops::Range<usize> {
        let start = job.burst * self.cfg.burst;
        start..(start + self.cfg.burst).min(job.changes.len())
    }

    /// One fenced write of `writes` by run `r` (`TransactWriteItems` with the
    /// lease check): `Ok(applied)` when the run goes on, `Err(())` when the
    /// lease does not admit the run (the store's fencing error).
    fn fenced_write(
        &self,
        w: &mut World,
        r: usize,
        fence: &Fence,
        writes: &[Write],
        db: Db,
    ) -> Result<bool, ()> {
        debug_assert!(!writes.is_empty(), "an empty write sends no transaction");
        let admitted = self.lease(&w.lease).admits(&self.holders[r], fence.token);
        match db {
            Db::Failed => Ok(false),
            Db::Answered | Db::AppliedAnswerLost if !admitted => Err(()),
            Db::Answered | Db::AppliedAnswerLost => {
                if w.runs[r].lost {
                    w.ghost.fenced_write_after_loss = true;
                }
                let mut ledger = self.ledger(&w.ledger);
                for write in writes {
                    self.write(write).apply_to(&mut ledger);
                    if let Write::Record(d, e) = write
                        && e.status == LedgerStatus::Pending
                    {
                        w.pending_applied[usize::from(*d)] = false;
                    }
                }
                w.ledger = self.compact_ledger(&ledger);
                Ok(db == Db::Answered)
            }
        }
    }

    /// One EC2 write of `change` by run `r`, as `write_owned` sees it: true
    /// when the run sees it succeed.
    fn ec2_write(&self, w: &mut World, r: usize, c: &Ch, ec2: Ec2) -> bool {
        if ec2 == Ec2::Failed {
            return false;
        }
        let ours = Ec2Route {
            target: c.target,
            created_by: Creator::Lbgp(u8::try_from(r).unwrap()),
            human_last: false,
        };
        let slot = &mut w.routes[usize::from(c.dest)];
        let seen_ok = match c.op {
            // AlreadyExists: ours only if it has our target.
            ChangeOp::Create => match slot {
                None => {
                    *slot = Some(ours);
                    w.pending_applied[usize::from(c.dest)] = true;
                    true
                }
                Some(route) => route.target == c.target,
            },
            ChangeOp::Replace => match slot {
                Some(route) => {
                    if route.created_by == Creator::Human {
                        w.ghost.foreign_route_written = true;
                    }
                    route.target = c.target;
                    route.human_last = false;
                    true
                }
                // NotFound: create it (the entry is already ours).
                None => {
                    *slot = Some(ours);
                    w.pending_applied[usize::from(c.dest)] = true;
                    true
                }
            },
            // NotFound counts as done.
            ChangeOp::Delete => {
                if slot.is_some_and(|route| route.created_by == Creator::Human) {
                    w.ghost.foreign_route_written = true;
                }
                *slot = None;
                true
            }
        };
        seen_ok && ec2 == Ec2::Answered
    }

    /// After the fixes: the first burst, or straight to the release.
    fn after_fixes(&self, job: Job) -> Pc {
        if job.changes.is_empty() {
            Pc::Finish {
                fence: job.fence,
                pass: job.pass,
                deferred: false,
            }
        } else {
            Pc::Budget(job)
        }
    }

    /// The burst is over: the next one, or the release.
    fn next_burst(&self, mut job: Job) -> Pc {
        job.burst += 1;
        if job.burst * self.cfg.burst < job.changes.len() {
            Pc::Budget(job)
        } else {
            Pc::Finish {
                deferred: job.results.contains(&Res::Deferred),
                fence: job.fence,
                pass: job.pass,
            }
        }
    }

    /// The write-ahead writes of change `c` from lbgp-core.
    fn intent(&self, c: &Ch) -> Option<Write> {
        writeahead::intent(&self.change(c)).map(|w| self.compact_write(&w))
    }

    fn confirmation(&self, c: &Ch) -> Option<Write> {
        writeahead::confirmation(&self.change(c)).map(|w| self.compact_write(&w))
    }

    /// An EC2 write of the burst answered: the others, or the confirmations.
    fn writes_or_confirm(&self, job: Job) -> Pc {
        let range = self.burst_range(&job);
        if range.clone().any(|i| job.results[i] == Res::Todo) {
            return Pc::Writes(job);
        }
        let ok: Vec<Ch> = range
            .filter(|&i| job.results[i] == Res::Ok)
            .map(|i| job.changes[i])
            .collect();
        let writes: Vec<Write> = match self.cfg.variant {
            Variant::IntentsAfterWrite => ok
                .iter()
                .flat_map(|c| self.intent(c).into_iter().chain(self.confirmation(c)))
                .collect(),
            _ => ok.iter().filter_map(|c| self.confirmation(c)).collect(),
        };
        if writes.is_empty() {
            self.next_burst(job)
        } else {
            Pc::Confirm { job, writes }
        }
    }

    fn run_actions(&self, w: &World, r: usize, faults: bool, crashes: bool, out: &mut Vec<Action>) {
        let run = &w.runs[r];
        let db = |out: &mut Vec<Action>, make: fn(usize, Db) -> Action| {
            out.push(make(r, Db::Answered));
            if faults {
                out.push(make(r, Db::AppliedAnswerLost));
                out.push(make(r, Db::Failed));
            }
        };
        match &run.pc {
            // Runs are alike but for their names: they start in order
            // (symmetry reduction; the clean run comes after all of them).
            Pc::Idle if r == 0 || r == self.cfg.runs || w.runs[r - 1].pc != Pc::Idle => {
                out.push(Action::Acquire(r));
            }
            Pc::Idle => {}
            Pc::Held { .. } => out.push(Action::Plan(r)),
            Pc::Fixes { .. } => db(out, Action::WriteFixes),
            Pc::Budget(_) => out.push(Action::CheckBudget(r)),
            Pc::Intents { .. } => db(out, Action::WriteIntents),
            Pc::Writes(job) => {
                let allowed = self.may_write(&job.fence);
                for i in self.burst_range(job).filter(|&i| job.results[i] == Res::Todo) {
                    if allowed {
                        out.push(Action::Ec2Write(r, i, Ec2::Answered));
                        if faults {
                            out.push(Action::Ec2Write(r, i, Ec2::AppliedAnswerLost));
                            out.push(Action::Ec2Write(r, i, Ec2::Failed));
                        }
                    } else {
                        out.push(Action::Defer(r, i));
                    }
                }
            }
            Pc::Confirm { .. } => db(out, Action::WriteConfirmations),
            Pc::Finish { .. } | Pc::ReleaseAgain { .. } => out.push(Action::Release(r)),
            Pc::Renew { .. } => out.push(Action::Renew(r)),
            Pc::Done(_) | Pc::Stopped(_) => {}
        }
        if crashes && run.pc.is_live() {
            out.push(Action::Crash(r));
        }
    }

    /// Applies run `r`'s step `action` to `w`.
    fn run_step(&self, w: &mut World, r: usize, action: Action) {
        let holder = self.holders[r].as_str();
        if action.is_fault() {
            w.faults_left -= 1;
        }
        let pc = std::mem::replace(&mut w.runs[r].pc, Pc::Idle);
        let next = match (pc, action) {
            (pc, Action::Crash(_)) => {
                debug_assert!(pc.is_live());
                w.crashes_left -= 1;
                Pc::Stopped(Stop::Crashed)
            }
            (Pc::Idle, Action::Acquire(_)) => {
                let ttl = self.cfg.ttl;
                match self.with_lease(w, |l| l.acquire(holder, NOW, ttl)) {
                    Acquisition::Held { token, expires_at } => {
                        for (j, other) in w.runs.iter_mut().enumerate() {
                            if j != r && other.pc.is_live() {
                                other.lost = true;
                            }
                        }
                        Pc::Held {
                            fence: Fence {
                                token,
                                expires_at: rel(expires_at),
                            },
                            pass: 1,
                        }
                    }
                    Acquisition::Busy { .. } => Pc::Done(End::Locked),
                }
            }
            (Pc::Held { fence, pass }, Action::Plan(_)) => {
                // Lease first, then the read: ledger, routes, desire.
                let p = plan(&self.desired(w), &self.actual(w), &self.ledger(&w.ledger));
                let writes: Vec<Write> = p
                    .ledger_fixes
                    .iter()
                    .map(|f| self.compact_write(&writeahead::fix(f)))
                    .collect();
                let job = Job {
                    fence,
                    pass,
                    results: vec![Res::Todo; p.changes.len()],
                    changes: p.changes.iter().map(|c| self.compact_change(c)).collect(),
                    burst: 0,
                };
                if writes.is_empty() {
                    self.after_fixes(job)
                } else {
                    Pc::Fixes { job, writes }
                }
            }
            (Pc::Fixes { job, writes }, Action::WriteFixes(_, db)) => {
                match self.fenced_write(w, r, &job.fence, &writes, db) {
                    // A failure that is not a fencing one: `apply_owned`
                    // goes on with the changes.
                    Ok(_) => self.after_fixes(job),
                    Err(()) => Pc::Stopped(Stop::Fenced),
                }
            }
            (Pc::Budget(mut job), Action::CheckBudget(_)) => {
                if self.may_write(&job.fence) {
                    let writes: Vec<Write> = match self.cfg.variant {
                        Variant::IntentsAfterWrite => vec![],
                        _ => self
                            .burst_range(&job)
                            .filter_map(|i| self.intent(&job.changes[i]))
                            .collect(),
                    };
                    if writes.is_empty() {
                        Pc::Writes(job)
                    } else {
                        Pc::Intents { job, writes }
                    }
                } else {
                    // The lease's end is near: the rest is deferred.
                    let start = job.burst * self.cfg.burst;
                    for res in &mut job.results[start..] {
                        *res = Res::Deferred;
                    }
                    Pc::Finish {
                        fence: job.fence,
                        pass: job.pass,
                        deferred: true,
                    }
                }
            }
            (Pc::Intents { mut job, writes }, Action::WriteIntents(_, db)) => {
                match self.fenced_write(w, r, &job.fence, &writes, db) {
                    Ok(true) => Pc::Writes(job),
                    // Without its intent no change may be written.
                    Ok(false) => {
                        for i in self.burst_range(&job) {
                            job.results[i] = Res::Failed;
                        }
                        self.next_burst(job)
                    }
                    Err(()) => Pc::Stopped(Stop::Fenced),
                }
            }
            (Pc::Writes(mut job), Action::Ec2Write(_, i, ec2)) => {
                debug_assert!(self.may_write(&job.fence));
                let change = job.changes[i];
                job.results[i] = if self.ec2_write(w, r, &change, ec2) {
                    Res::Ok
                } else {
                    Res::Failed
                };
                self.writes_or_confirm(job)
            }
            (Pc::Writes(mut job), Action::Defer(_, i)) => {
                job.results[i] = Res::Deferred;
                self.writes_or_confirm(job)
            }
            (Pc::Confirm { job, writes }, Action::WriteConfirmations(_, db)) => {
                match self.fenced_write(w, r, &job.fence, &writes, db) {
                    // The routes are written whatever happens to their
                    // confirmations.
                    Ok(_) => self.next_burst(job),
                    Err(()) => Pc::Stopped(Stop::Fenced),
                }
            }
            (
                Pc::Finish {
                    fence,
                    deferred: true,
                    ..
                },
                Action::Release(_),
            ) => {
                self.note_lease_update(w, r, &fence);
                // Whatever the answer, the run ends here.
                let _ = self.with_lease(w, |l| l.release_leaving_work(holder, fence.token));
                Pc::Done(End::LeftWork)
            }
            (Pc::Finish { fence, pass, .. }, Action::Release(_)) => {
                self.note_lease_update(w, r, &fence);
                match self.with_lease(w, |l| l.release(holder, fence.token)) {
                    Release::Done => Pc::Done(End::Released),
                    Release::WorkPending if pass < self.cfg.max_passes => Pc::Renew { fence, pass },
                    // Enough passes: `release_fully`.
                    Release::WorkPending => Pc::ReleaseAgain { fence },
                    Release::Lost => Pc::Stopped(Stop::LeaseLost),
                }
            }
            (Pc::ReleaseAgain { fence }, Action::Release(_)) => {
                self.note_lease_update(w, r, &fence);
                // Whatever the answer, the run ends here.
                let _ = self.with_lease(w, |l| l.release_leaving_work(holder, fence.token));
                Pc::Done(End::LeftWork)
            }
            (Pc::Renew { fence, pass }, Action::Renew(_)) => {
                self.note_lease_update(w, r, &fence);
                let ttl = self.cfg.ttl;
                if self.with_lease(w, |l| l.renew(holder, fence.token, NOW, ttl)) {
                    Pc::Held {
                        fence: Fence {
                            token: fence.token,
                            expires_at: rel(NOW + ttl),
                        },
                        pass: pass + 1,
                    }
                } else {
                    Pc::Stopped(Stop::RenewRefused)
                }
            }
            (pc, action) => unreachable!("{action:?} in {pc:?}"),
        };
        if !next.is_live() {
            w.runs[r].lost = false;
        }
        w.runs[r].pc = next;
    }

    /// Property 1 for the lease's own conditional updates: one admitted for
    /// a run whose lease was lost.
    fn note_lease_update(&self, w: &mut World, r: usize, fence: &Fence) {
        if w.runs[r].lost && self.lease(&w.lease).admits(&self.holders[r], fence.token) {
            w.ghost.fenced_write_after_loss = true;
        }
    }

    // ---- properties ----

    fn quiescent(w: &World) -> bool {
        w.runs.iter().all(|r| !r.pc.is_live())
    }

    /// Property 3: every route lbgp wrote last is recognised by its entry.
    fn orphan(&self, w: &World) -> Option<String> {
        w.routes.iter().enumerate().find_map(|(d, route)| {
            let route = route.as_ref()?;
            if route.human_last {
                return None;
            }
            let target = self.target(route.target);
            let entry = w.ledger[d].map(|e| self.entry(u8::try_from(d).unwrap(), &e));
            match entry {
                Some(e) if e.recognises(&target) => None,
                entry => Some(format!(
                    "route {} → {target} written by {:?} has ledger entry {entry:?}",
                    self.cfg.dests[d].cidr, route.created_by
                )),
            }
        })
    }

    /// Property 4, remembered.
    fn clean_run_ok(&self, w: &World) -> bool {
        let key = (w.routes.clone(), w.ledger.clone(), w.desire.clone());
        if let Some(ok) = self.clean_verdicts.lock().unwrap().get(&key) {
            return *ok;
        }
        let ok = self.clean_run(w).is_ok();
        self.clean_verdicts.lock().unwrap().insert(key, ok);
        ok
    }

    /// Property 4: one clean run after the last one, with the model's own
    /// steps (fault-free), then ledger = reality.
    fn clean_run(&self, w: &World) -> Result<World, String> {
        let mut w = w.clone();
        // A fresh invocation once every lease has expired.
        w.lease.expires_at = PAST;
        let ghost = w.ghost;
        let clean = w.runs.len();
        w.runs.push(Run {
            pc: Pc::Idle,
            lost: false,
        });
        let mut actions = Vec::new();
        for _ in 0..100 {
            if w.runs[clean].pc != Pc::Idle && !w.runs[clean].pc.is_live() {
                break;
            }
            actions.clear();
            self.run_actions(&w, clean, false, false, &mut actions);
            let action = *actions.first().ok_or("the clean run is stuck")?;
            self.run_step(&mut w, clean, action);
        }
        let end = w.runs.pop().map(|r| r.pc);
        if end != Some(Pc::Done(End::Released)) {
            return Err(format!("the clean run ended {end:?}"));
        }
        if w.ghost != ghost {
            return Err(format!("the clean run broke a safety property: {:?}", w.ghost));
        }
        let ledger = self.ledger(&w.ledger);
        for e in ledger.iter() {
            let route = w.routes[usize::from(self.dest_of(&e.key))];
            if e.status != LedgerStatus::Owned || e.previous.is_some() {
                return Err(format!("entry not settled: {e:?}"));
            }
            match route {
                Some(r) if self.target(r.target) == e.target && r.created_by != Creator::Human => {}
                _ => return Err(format!("entry {e:?} names {route:?}")),
            }
        }
        for (d, route) in w.routes.iter().enumerate() {
            if let Some(route) = route
                && !route.human_last
                && w.ledger[d].is_none()
            {
                return Err(format!("orphan: {} {route:?}", self.cfg.dests[d].cidr));
            }
        }
        let desired = self.desired(&w);
        for want in &desired {
            let d = usize::from(self.dest_of(&want.key));
            match (w.routes[d], w.ledger[d]) {
                (Some(route), Some(_)) if self.target(route.target) == want.target => {}
                // Blocked by a foreign route: a conflict, by design.
                (Some(_), None) => {}
                (route, entry) => {
                    return Err(format!(
                        "desired {} → {} missing: route {route:?}, entry {entry:?}",
                        self.cfg.dests[d].cidr, want.target
                    ));
                }
            }
        }
        let again = plan(&desired, &self.actual(&w), &ledger);
        if !again.changes.is_empty() || !again.ledger_fixes.is_empty() {
            return Err(format!("not converged: {again:?}"));
        }
        Ok(w)
    }

    // ---- traces ----

    /// State `w` at time `now`.
    fn describe(&self, w: &World, now: u64) -> String {
        let name = |t: u8| self.targets[usize::from(t)].to_string();
        let at = |t: Rel| now.saturating_add_signed(t);
        let mut s = format!("t={now} lease=");
        match w.lease.holder {
            Some(h) => write!(
                s,
                "{}#{}<{}",
                self.holders[usize::from(h)],
                w.lease.token,
                at(w.lease.expires_at)
            )
            .unwrap(),
            None => write!(s, "free#{}", w.lease.token).unwrap(),
        }
        if w.lease.pending {
            s.push_str("+pending");
        }
        s.push_str(" ec2[");
        for (d, route) in w.routes.iter().enumerate() {
            let cidr = self.cfg.dests[d].cidr;
            match route {
                Some(r) => {
                    let by = match r.created_by {
                        Creator::Lbgp(EARLIER) => "earlier".to_owned(),
                        Creator::Lbgp(i) => self.holders[usize::from(i)].clone(),
                        Creator::Human => "human".to_owned(),
                    };
                    let last = if r.human_last && r.created_by != Creator::Human {
                        ",human-last"
                    } else {
                        ""
                    };
                    write!(s, " {cidr}→{}({by}{last})", name(r.target)).unwrap();
                }
                None => write!(s, " {cidr}→∅").unwrap(),
            }
        }
        s.push_str(" ] ledger[");
        for (d, e) in w.ledger.iter().enumerate() {
            if let Some(e) = e {
                write!(s, " {}→{}:{:?}", self.cfg.dests[d].cidr, name(e.target), e.status).unwrap();
                if let Some(p) = e.previous {
                    write!(s, "(prev {})", name(p)).unwrap();
                }
            }
        }
        s.push_str(" ] desired[");
        for want in self.desired(w) {
            write!(s, " {}→{}", want.key.destination, want.target).unwrap();
        }
        s.push_str(" ] runs[");
        for (r, run) in w.runs.iter().enumerate() {
            let pc = match &run.pc {
                Pc::Idle => "idle".to_owned(),
                Pc::Held { fence, pass } => {
                    format!("held#{}<{} pass {pass}", fence.token, at(fence.expires_at))
                }
                Pc::Fixes { job, .. } => format!("fixes#{}", job.fence.token),
                Pc::Budget(job) => format!("budget#{} burst {}", job.fence.token, job.burst),
                Pc::Intents { job, .. } => format!("intents#{} burst {}", job.fence.token, job.burst),
                Pc::Writes(job) => format!("writes#{} {:?}", job.fence.token, job.results),
                Pc::Confirm { job, .. } => format!("confirm#{} {:?}", job.fence.token, job.results),
                Pc::Finish { fence, deferred, .. } => format!("finish#{} deferred={deferred}", fence.token),
                Pc::ReleaseAgain { fence, .. } => format!("release-again#{}", fence.token),
                Pc::Renew { fence, .. } => format!("renew#{}", fence.token),
                Pc::Done(e) => format!("done:{e:?}"),
                Pc::Stopped(e) => format!("stopped:{e:?}"),
            };
            let lost = if run.lost { "(lost)" } else { "" };
            write!(s, " {}:{pc}{lost}", self.holders[r]).unwrap();
        }
        s.push_str(" ]");
        s
    }

    fn describe_action(&self, w: &World, action: Action) -> String {
        let change = |r: usize, i: usize| match &w.runs[r].pc {
            Pc::Writes(job) => {
                let c = self.change(&job.changes[i]);
                format!("{} {} → {} ({})", c.op, c.key.destination, c.target, c.reason)
            }
            _ => String::new(),
        };
        match action {
            Action::Ec2Write(r, i, how) => format!("{} EC2 {} [{how:?}]", self.holders[r], change(r, i)),
            Action::Defer(r, i) => format!("{} defers {}", self.holders[r], change(r, i)),
            Action::ToggleDesire(d) => format!("desire of {} toggles", self.cfg.dests[d].cidr),
            Action::Human(op, d) => format!("human {op:?} {}", self.cfg.dests[d].cidr),
            other => format!("{other:?}"),
        }
    }

    /// A counterexample, step by step: each state, then the action taken.
    fn trace(&self, path: &Path<World, Action>) -> String {
        let mut s = String::new();
        let steps = path.clone().into_vec();
        let mut now = 0;
        for (state, action) in &steps {
            writeln!(s, "  {}", self.describe(state, now)).unwrap();
            if let Some(a) = action {
                writeln!(s, "    --> {}", self.describe_action(state, *a)).unwrap();
                now += u64::from(*a == Action::Tick);
            }
        }
        if let Some((state, _)) = steps.last() {
            if let Some(why) = self.orphan(state) {
                writeln!(s, "  orphan: {why}").unwrap();
            }
            if Self::quiescent(state)
                && let Err(why) = self.clean_run(state)
            {
                writeln!(s, "  after one clean run: {why}").unwrap();
            }
        }
        s
    }
}

impl Model for ProtocolModel {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        let mut ledger = vec![None; self.cfg.dests.len()];
        let routes = self
            .cfg
            .dests
            .iter()
            .enumerate()
            .map(|(d, dest)| match dest.initial {
                Initial::Empty => None,
                Initial::Foreign => Some(Ec2Route {
                    target: HUMAN,
                    created_by: Creator::Human,
                    human_last: true,
                }),
                Initial::Owned(t) => {
                    ledger[d] = Some(Entry {
                        target: t,
                        status: LedgerStatus::Owned,
                        previous: None,
                    });
                    Some(Ec2Route {
                        target: t,
                        created_by: Creator::Lbgp(EARLIER),
                        human_last: false,
                    })
                }
            })
            .collect();
        vec![World {
            routes,
            ledger,
            lease: self.compact_lease(&LeaseRecord::default()),
            desire: vec![0; self.cfg.dests.len()],
            runs: vec![
                Run {
                    pc: Pc::Idle,
                    lost: false,
                };
                self.cfg.runs
            ],
            crashes_left: self.cfg.crashes,
            faults_left: self.cfg.faults,
            human_left: self.cfg.human,
            desire_left: self.cfg.desire_changes,
            ghost: Ghost::default(),
            pending_applied: vec![false; self.cfg.dests.len()],
        }]
    }

    fn actions(&self, w: &World, out: &mut Vec<Action>) {
        // The clock ticks whenever that changes something.
        let times = [w.lease.expires_at, w.lease.started_at]
            .into_iter()
            .chain(w.runs.iter().filter_map(|r| r.pc.fence().map(|f| f.expires_at)));
        if times.into_iter().any(|t| t > PAST) {
            out.push(Action::Tick);
        }
        if w.desire_left > 0 {
            for (d, dest) in self.cfg.dests.iter().enumerate() {
                if dest.script.len() > 1 {
                    out.push(Action::ToggleDesire(d));
                }
            }
        }
        if w.human_left > 0 {
            for (d, route) in w.routes.iter().enumerate() {
                match route {
                    Some(r) => {
                        out.push(Action::Human(HumanOp::Delete, d));
                        if r.target != HUMAN {
                            out.push(Action::Human(HumanOp::Repoint, d));
                        }
                    }
                    // Not where the ledger records a route as owned: see
                    // the module's documentation.
                    None if w.ledger[d]
                        .is_none_or(|e| e.status == LedgerStatus::Pending && !w.pending_applied[d]) =>
                    {
                        out.push(Action::Human(HumanOp::Create, d));
                    }
                    None => {}
                }
            }
        }
        for r in 0..w.runs.len() {
            self.run_actions(w, r, w.faults_left > 0, w.crashes_left > 0, out);
        }
    }

    fn next_state(&self, last: &World, action: Action) -> Option<World> {
        let mut w = last.clone();
        match action {
            Action::Tick => {
                tick(&mut w.lease.expires_at);
                tick(&mut w.lease.started_at);
                for run in &mut w.runs {
                    if let Some(fence) = run.pc.fence_mut() {
                        tick(&mut fence.expires_at);
                    }
                }
            }
            Action::ToggleDesire(d) => {
                w.desire_left -= 1;
                let n = self.cfg.dests[d].script.len();
                w.desire[d] = u8::try_from((usize::from(w.desire[d]) + 1) % n).unwrap();
            }
            Action::Human(op, d) => {
                w.human_left -= 1;
                match op {
                    HumanOp::Delete => w.routes[d] = None,
                    HumanOp::Repoint => {
                        let route = w.routes[d].as_mut().unwrap();
                        route.target = HUMAN;
                        route.human_last = true;
                    }
                    HumanOp::Create => {
                        w.routes[d] = Some(Ec2Route {
                            target: HUMAN,
                            created_by: Creator::Human,
                            human_last: true,
                        });
                    }
                }
            }
            action => self.run_step(&mut w, action.run().unwrap(), action),
        }
        for (applied, e) in w.pending_applied.iter_mut().zip(&w.ledger) {
            *applied &= e.is_some_and(|e| e.status == LedgerStatus::Pending);
        }
        Some(w)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "1: no fenced write of a run that lost its lease is accepted",
                |_, w: &World| !w.ghost.fenced_write_after_loss,
            ),
            Property::always(
                "2: no route a human created is deleted or replaced by a run",
                |_, w: &World| !w.ghost.foreign_route_written,
            ),
            Property::always(
                "3: every route lbgp wrote last is in the ledger, at every moment",
                |m: &ProtocolModel, w: &World| m.orphan(w).is_none(),
            ),
            Property::always(
                "4: at rest, one clean run makes ledger = reality",
                |m: &ProtocolModel, w: &World| !Self::quiescent(w) || m.clean_run_ok(w),
            ),
            Property::sometimes("a live run's lease is taken over", |_, w: &World| {
                w.runs.iter().any(|r| r.lost)
            }),
            Property::sometimes("a fenced write is refused", |_, w: &World| {
                w.runs.iter().any(|r| r.pc == Pc::Stopped(Stop::Fenced))
            }),
            Property::sometimes(
                "at rest with routes owned after a run was fenced",
                |_, w: &World| {
                    Self::quiescent(w)
                        && w.ledger.iter().any(Option::is_some)
                        && w.runs.iter().any(|r| r.pc == Pc::Stopped(Stop::Fenced))
                },
            ),
        ]
    }
}

// ---------------------------------------------------------------------------
// Running the checker
// ---------------------------------------------------------------------------

struct Outcome {
    model: ProtocolModel,
    /// Failed `always` properties, with their counterexamples.
    failures: Vec<(&'static str, Path<World, Action>)>,
    /// Reached `sometimes` properties.
    examples: BTreeSet<&'static str>,
    complete: bool,
}

/// Checks `cfg` exhaustively (depth first, on up to two threads: little
/// memory), or, to find a counterexample, breadth first on one thread (the
/// shortest one), stopping at the first.
fn check(cfg: Config, find_counterexample: bool) -> Outcome {
    let name = cfg.name;
    let variant = cfg.variant;
    let threads = if find_counterexample {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(2)
    };
    let builder = ProtocolModel::new(cfg.clone())
        .checker()
        .threads(threads)
        .timeout(Duration::from_secs(3600));
    let started = Instant::now();
    let checker: Box<dyn Checker<ProtocolModel>> = if find_counterexample {
        Box::new(
            builder
                .finish_when(HasDiscoveries::AnyFailures)
                .spawn_bfs()
                .join(),
        )
    } else {
        Box::new(builder.spawn_dfs().join())
    };
    let elapsed = started.elapsed();
    println!(
        "protocol model [{name}, {variant:?}]: {} states explored, {} unique, max depth {}, {:.1} s on {threads} thread(s)",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        elapsed.as_secs_f64(),
    );
    let model = ProtocolModel::new(cfg);
    let always: BTreeSet<&'static str> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation.discovery_is_failure())
        .map(|p| p.name)
        .collect();
    let mut failures = Vec::new();
    let mut examples = BTreeSet::new();
    for (prop, path) in checker.discoveries() {
        if always.contains(prop) {
            failures.push((prop, path));
        } else {
            examples.insert(prop);
        }
    }
    failures.sort_by_key(|(p, _)| *p);
    Outcome {
        model,
        failures,
        examples,
        complete: checker.is_done(),
    }
}

fn assert_holds(cfg: Config) {
    let out = check(cfg, false);
    let mut report = String::new();
    for (prop, path) in &out.failures {
        writeln!(
            report,
            "\ncounterexample to \"{prop}\" ({} steps):\n{}",
            path.clone().into_actions().len(),
            out.model.trace(path)
        )
        .unwrap();
    }
    assert!(
        out.failures.is_empty(),
        "the protocol model check failed:{report}"
    );
    assert!(out.complete, "the model check did not finish");
    for p in out.model.properties() {
        if !p.expectation.discovery_is_failure() {
            assert!(
                out.examples.contains(p.name),
                "never reached: \"{}\" (the model is vacuous)",
                p.name
            );
        }
    }
}

fn assert_fails(cfg: Config) -> Vec<&'static str> {
    let out = check(cfg, true);
    assert!(
        !out.failures.is_empty(),
        "a protocol step was removed and the check found no counterexample: the properties have no teeth"
    );
    for (prop, path) in &out.failures {
        println!(
            "expected counterexample to \"{prop}\" ({} steps):\n{}",
            path.clone().into_actions().len(),
            out.model.trace(path)
        );
    }
    out.failures.iter().map(|(p, _)| *p).collect()
}

#[test]
fn bounded_protocol_has_no_counterexample() {
    assert_holds(bounded(Variant::Protocol));
}

#[test]
fn deep_protocol_has_no_counterexample() {
    if !chaos() {
        println!("deep protocol model check skipped; run it with LBGP_CHAOS=1");
        return;
    }
    assert_holds(deep(Variant::Protocol));
}

#[test]
fn without_the_lease_margin_the_check_finds_a_counterexample() {
    let failed = assert_fails(bounded(Variant::NoLeaseMargin));
    assert!(
        failed.iter().any(|p| p.starts_with(['2', '3', '4'])),
        "{failed:?}"
    );
}

#[test]
fn with_intents_after_the_write_the_check_finds_a_counterexample() {
    let failed = assert_fails(bounded(Variant::IntentsAfterWrite));
    assert!(failed.iter().any(|p| p.starts_with(['3', '4'])), "{failed:?}");
}
