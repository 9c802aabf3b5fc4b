//! Model check of lbgp's lease, fencing-token and write-ahead ownership-ledger
//! protocol with [stateright](https://docs.rs/stateright), an explicit-state
//! model checker: every interleaving of the actions below, up to the bounds of
//! a configuration, is explored, and the properties are checked in every
//! state reached.
//!
//! # What is modelled
//!
//! One route table with 2–3 destinations, and around it:
//!
//! - **EC2**: each destination holds at most one static route, with a target
//!   and a provenance (created by run *i*, by an earlier run, or by a human;
//!   and whether a human was the last to write it);
//! - **DynamoDB**: the ownership ledger (an [`OwnershipLedger`]) and the lease
//!   item (a [`LeaseRecord`]); a fenced write is accepted exactly when
//!   [`LeaseRecord::admits`] holds at that moment, and an empty one is no
//!   write at all (the store sends no transaction for it);
//! - **time**: a discrete clock that ticks (bounded), so leases expire and are
//!   taken over; a write to EC2 is started only while `now + margin <
//!   expiry`, as `Budget::may_write` does (margin ≥ 1 tick);
//! - **the desired state**: per destination a script of desired targets
//!   (or none), toggled a bounded number of times, between or during runs;
//! - **runs** (invocations), each with a program counter following
//!   `runtime/src/reconcile.rs` (`run`, `apply_unit`) and
//!   `runtime/src/apply.rs` (`apply_owned`, `owned_burst`): take the lease →
//!   read ledger, routes and desire, plan → one fenced write of the ledger
//!   fixes → per burst: check the budget, one fenced write of the burst's
//!   intents, each EC2 write of the burst as its own action (so other runs
//!   and humans interleave between them), one fenced write of the
//!   confirmations of the writes that succeeded → release (leaving work
//!   pending if a write was deferred), and on `WorkPending` renew and run
//!   another pass, up to a bound, then release fully;
//! - **faults**: a run crashes at any step (it stops forever and keeps its
//!   lease until it expires); an EC2 write's response is lost (applied, but
//!   the run sees a failure and does not confirm it) or the write fails; a
//!   fenced ledger write's response is lost (applied, the run sees a
//!   non-fencing error and goes on along the code's error path) or it fails
//!   unapplied; a crash right after any write covers "applied, then the run
//!   stops"; a human deletes a route, repoints one to a target of theirs,
//!   or creates one at a free destination (bounded).
//!
//! The rules are **lbgp-core's own code**, called by the model's actions:
//! [`plan`], [`writeahead::fix`], [`writeahead::intent`],
//! [`writeahead::confirmation`], [`LedgerWrite::apply_to`],
//! [`LeaseRecord::acquire`], `admits`, `renew`, `release` and
//! `release_leaving_work`. What the model restates is only the order in
//! which the adapters call them (the async code of `lbgp-runtime`, which
//! cannot run here without the AWS SDK), the one-line lease margin of
//! `Budget::may_write`, and EC2's semantics as `write_owned` sees them
//! (create over an existing route: ours only if it has our target; replace
//! of a missing route: create it; delete of a missing route: done).
//!
//! # Properties
//!
//! 1. No fenced write (ledger fix, intent, confirmation; lease renew and
//!    release) of a run whose lease was lost is accepted. Loss is tracked
//!    independently of the token: another run acquired the lease after it.
//! 2. No route that no run created (a human's, never adopted: the protocol
//!    never adopts) is ever deleted or replaced by a run.
//! 3. At every moment, every route whose last writer was lbgp has a ledger
//!    entry that recognises its target (nothing orphaned, even mid-run).
//! 4. Once every run has stopped (idle, done or crashed), one clean run after
//!    every lease expired (the same actions, fault-free) leaves ledger =
//!    reality: every entry is owned, with no replace in flight, and names a
//!    route lbgp created that exists with that target; every route lbgp
//!    created and last wrote is in the ledger; every desired route not
//!    blocked by a foreign route is there with its target; and planning
//!    again changes nothing.
//!
//! `sometimes` properties make sure the interesting cases are reached (a
//! lease taken over from a live run, a fenced write refused, a converged
//! state after a takeover), so the check is not vacuous. Two variants of
//! the same model with one protocol step removed on purpose — EC2 writes not
//! guarded by the lease margin, and intents written after the EC2 write
//! instead of before — must produce counterexamples: the properties have
//! teeth.
//!
//! # What is abstracted away, and why that is sound
//!
//! - **Regions and tables.** `apply_owned` runs one queue per region side by
//!   side, with its own bursts, under the same fence; the ledger keys of two
//!   regions never overlap and the planner decides each key alone, so one
//!   table of a few destinations shows every per-key interleaving. The
//!   fence's cross-region stop (a fenced burst stops the other regions) only
//!   makes a real run do less than the model's.
//! - **DynamoDB transaction conflicts and batching.** The store serialises
//!   the fenced transactions of one lease and retries conflicts; a write list
//!   (at most 99 items per transaction; here at most 3) is one atomic action.
//!   Reads are strongly consistent (`consistent_read`), so a read is one
//!   atomic snapshot of the ledger.
//! - **EC2 eventual consistency.** Reads are taken as up to date. Read lag
//!   is a separate mechanism (the planner's handling of what was written
//!   moments ago), not the lease protocol checked here.
//! - **The read.** Ledger, routes and desire are read in one action. Only the
//!   lease holder writes the ledger (property 1), and every EC2 write of an
//!   earlier holder landed before its lease expired (below), so nothing a
//!   run's own plan depends on changes between its reads except what humans
//!   and the desire do, whose every order against the read is explored.
//! - **An EC2 write is one action at the instant it is allowed to start.**
//!   `LEASE_MARGIN` is longer than a write with its retries plus clock skew,
//!   so a write started while `now + margin < expiry` lands before the lease
//!   is free (`expires_at < now`), hence before any other run can take it.
//!   Between start and landing only humans, the desire, the clock and the
//!   same run's other writes act; moving the landing back to the start (and
//!   the clock ticks after it) gives a trace of the model with the same
//!   effect. Clock skew is part of the margin: one clock models all hosts.
//!   The `NoLeaseMargin` variant shows what happens when this does not hold.
//! - **Humans never create a route at a destination the ledger records as
//!   owned.** EC2 routes carry no identity: a human's delete and re-create of
//!   an lbgp route is, to anyone reading EC2, a repoint (which is modelled
//!   and which lbgp repairs as drift by design). Human creates are modelled
//!   where the ledger has no entry or only a pending intent (the race of
//!   `write_owned`'s "a route appeared before ours"), with a target lbgp never
//!   installs.
//! - **Blackhole state, propagated and local routes, the blast-radius guard,
//!   notifications, the deadline.** The planner's per-key rules for them are
//!   covered by its property tests; the deadline stops writes the same way
//!   the lease margin does (deferral), which is modelled.
//! - **Liveness** (pending work is eventually done) is not checked: only
//!   safety, and convergence by one clean run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use lbgp_core::lease::{Acquisition, LeaseRecord, Release};
use lbgp_core::writeahead::{self, LedgerWrite};
use lbgp_core::{
    Change, ChangeOp, DesiredRoute, LedgerStatus, OwnershipLedger, Region, Route, RouteKey, RouteOrigin,
    RouteState, RouteTableRef, RouteTarget, TableKind, plan,
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
    /// margin, before bursts or before writes).
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
    Owned(usize),
}

/// One destination of the model's table.
#[derive(Debug, Clone)]
struct Dest {
    cidr: &'static str,
    initial: Initial,
    /// The desired target (an index into [`TGWS`]) or none, in the order the
    /// desire toggles through them (cyclically).
    script: Vec<Option<usize>>,
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
    /// The clock stops ticking here.
    max_time: u64,
    /// `MAX_PASSES` of `apply_unit`.
    max_passes: u8,
    crashes: u8,
    /// Lost responses and failed writes, EC2 and DynamoDB together.
    faults: u8,
    /// Human deletes, repoints and creates.
    human: u8,
    desire_changes: u8,
}

const TGWS: [&str; 2] = ["tgw-1", "tgw-2"];

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
        max_time: 5,
        max_passes: 2,
        crashes: 1,
        faults: 1,
        human: 1,
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
        max_time: 8,
        max_passes: 2,
        crashes: 2,
        faults: 2,
        human: 2,
        desire_changes: 2,
    }
}

// ---------------------------------------------------------------------------
// State
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ec2Route {
    target: RouteTarget,
    created_by: Creator,
    /// A human wrote it last (repoint or create).
    human_last: bool,
}

/// The ledger, hashable (by its entries, which is what its equality
/// compares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ledger(OwnershipLedger);

impl Hash for Ledger {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.len().hash(state);
        for entry in self.0.iter() {
            entry.hash(state);
        }
    }
}

/// What a run knows of its lease (the adapters' `Fence`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fence {
    token: u64,
    expires_at: u64,
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
    changes: Vec<Change>,
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
    /// `release_fully` found work pending twice and let the lease expire.
    GaveUp,
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
        writes: Vec<LedgerWrite>,
    },
    /// Before a burst: `budget.may_write`.
    Budget(Job),
    /// The burst's intents, one fenced write.
    Intents {
        job: Job,
        writes: Vec<LedgerWrite>,
    },
    /// The burst's EC2 writes, each its own action.
    Writes(Job),
    /// The confirmations of the burst's writes that succeeded, one fenced
    /// write.
    Confirm {
        job: Job,
        writes: Vec<LedgerWrite>,
    },
    /// Applied: release (or release leaving work).
    Finish {
        fence: Fence,
        pass: u8,
        deferred: bool,
    },
    /// `release_fully` after the last pass: `left` more releases.
    ReleaseAgain {
        fence: Fence,
        left: u8,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Run {
    pc: Pc,
    /// Ghost: another run acquired the lease while this one was live (a live
    /// run has acquired it). Reset when the run ends, which it writes
    /// nothing after.
    lost: bool,
}

/// Ghost state: what happened, for the properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Ghost {
    /// A fenced write of a run whose lease was lost was accepted.
    fenced_write_after_loss: bool,
    /// A run deleted or replaced a route a human created.
    foreign_route_written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct World {
    now: u64,
    routes: Vec<Option<Ec2Route>>,
    ledger: Ledger,
    lease: LeaseRecord,
    /// Per destination, the index into its desire script.
    desire: Vec<u8>,
    runs: Vec<Run>,
    crashes_left: u8,
    faults_left: u8,
    human_left: u8,
    desire_left: u8,
    ghost: Ghost,
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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

struct ProtocolModel {
    cfg: Config,
    keys: Vec<RouteKey>,
    tgws: Vec<RouteTarget>,
    human_target: RouteTarget,
    /// Lease holder names: one per run, then the clean run's.
    holders: Vec<String>,
}

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
        ProtocolModel {
            keys,
            tgws: TGWS
                .iter()
                .map(|t| RouteTarget::TransitGateway((*t).into()))
                .collect(),
            human_target: RouteTarget::Instance("i-human".into()),
            holders,
            cfg,
        }
    }

    fn dest_of(&self, key: &RouteKey) -> usize {
        self.keys.iter().position(|k| k == key).unwrap()
    }

    fn desired(&self, w: &World) -> Vec<DesiredRoute> {
        self.cfg
            .dests
            .iter()
            .enumerate()
            .filter_map(|(d, dest)| {
                dest.script[usize::from(w.desire[d])].map(|t| DesiredRoute {
                    key: self.keys[d].clone(),
                    target: self.tgws[t].clone(),
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
                    target: r.target.clone(),
                    state: RouteState::Active,
                    origin: RouteOrigin::Static,
                })
            })
            .collect()
    }

    /// `Budget::may_write`: `expires_at - now > LEASE_MARGIN`.
    fn may_write(&self, fence: &Fence, now: u64) -> bool {
        self.cfg.variant == Variant::NoLeaseMargin || fence.expires_at.saturating_sub(now) > self.cfg.margin
    }

    fn burst_range(&self, job: &Job) -> std::ops::Range<usize> {
        let start = job.burst * self.cfg.burst;
        start..(start + self.cfg.burst).min(job.changes.len())
    }

    /// One fenced write of `writes` by run `r`: `Ok(applied)` when the run
    /// goes on (`applied` says whether the store applied it), `Err(())` when
    /// it was refused because the lease does not admit the run.
    fn fenced_write(
        &self,
        w: &mut World,
        r: usize,
        fence: &Fence,
        writes: &[LedgerWrite],
        db: Db,
    ) -> Result<bool, ()> {
        debug_assert!(!writes.is_empty());
        let admitted = w.lease.admits(&self.holders[r], fence.token);
        match db {
            Db::Failed => Ok(false),
            Db::Answered | Db::AppliedAnswerLost if !admitted => Err(()),
            Db::Answered | Db::AppliedAnswerLost => {
                if w.runs.get(r).is_some_and(|run| run.lost) {
                    w.ghost.fenced_write_after_loss = true;
                }
                for write in writes {
                    write.apply_to(&mut w.ledger.0);
                }
                Ok(db == Db::Answered)
            }
        }
    }

    /// One EC2 write of `change` by run `r`, as `write_owned` sees it: true
    /// when the run sees it succeed.
    fn ec2_write(&self, w: &mut World, r: usize, change: &Change, ec2: Ec2) -> bool {
        if ec2 == Ec2::Failed {
            return false;
        }
        let d = self.dest_of(&change.key);
        let creator = Creator::Lbgp(u8::try_from(r).unwrap());
        let slot = &mut w.routes[d];
        let ours = || Ec2Route {
            target: change.target.clone(),
            created_by: creator,
            human_last: false,
        };
        let seen_ok = match change.op {
            // AlreadyExists: ours only if it has our target.
            ChangeOp::Create => match slot {
                None => {
                    *slot = Some(ours());
                    true
                }
                Some(route) => route.target == change.target,
            },
            ChangeOp::Replace => match slot {
                Some(route) => {
                    if route.created_by == Creator::Human {
                        w.ghost.foreign_route_written = true;
                    }
                    route.target = change.target.clone();
                    route.human_last = false;
                    true
                }
                // NotFound: create it (the entry is already ours).
                None => {
                    *slot = Some(ours());
                    true
                }
            },
            ChangeOp::Delete => {
                if slot
                    .as_ref()
                    .is_some_and(|route| route.created_by == Creator::Human)
                {
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

    /// Every write of the burst answered: its confirmations next.
    fn after_writes(&self, job: Job) -> Pc {
        let range = self.burst_range(&job);
        let ok = range
            .filter(|&i| job.results[i] == Res::Ok)
            .map(|i| &job.changes[i]);
        let writes: Vec<LedgerWrite> = match self.cfg.variant {
            Variant::IntentsAfterWrite => ok
                .flat_map(|c| {
                    writeahead::intent(c)
                        .into_iter()
                        .chain(writeahead::confirmation(c))
                })
                .collect(),
            _ => ok.filter_map(writeahead::confirmation).collect(),
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
                let allowed = self.may_write(&job.fence, w.now);
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
    fn run_step(&self, w: &mut World, action: &Action) {
        let r = match action {
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
            | Action::Crash(r) => *r,
            Action::Tick | Action::ToggleDesire(_) | Action::Human(..) => unreachable!(),
        };
        let holder = self.holders[r].clone();
        let pc = std::mem::replace(&mut w.runs[r].pc, Pc::Idle);
        let uses_fault = matches!(
            action,
            Action::WriteFixes(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::WriteIntents(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::WriteConfirmations(_, Db::AppliedAnswerLost | Db::Failed)
                | Action::Ec2Write(_, _, Ec2::AppliedAnswerLost | Ec2::Failed)
        );
        if uses_fault {
            w.faults_left -= 1;
        }
        let next = match (pc, action) {
            (pc, Action::Crash(_)) => {
                debug_assert!(pc.is_live());
                w.crashes_left -= 1;
                Pc::Stopped(Stop::Crashed)
            }
            (Pc::Idle, Action::Acquire(_)) => match w.lease.acquire(&holder, w.now, self.cfg.ttl) {
                Acquisition::Held { token, expires_at } => {
                    for (j, other) in w.runs.iter_mut().enumerate() {
                        if j != r && other.pc.is_live() {
                            other.lost = true;
                        }
                    }
                    Pc::Held {
                        fence: Fence { token, expires_at },
                        pass: 1,
                    }
                }
                Acquisition::Busy { .. } => Pc::Done(End::Locked),
            },
            (Pc::Held { fence, pass }, Action::Plan(_)) => {
                // Lease first, then the read: ledger, routes, desire.
                let p = plan(&self.desired(w), &self.actual(w), &w.ledger.0);
                let writes: Vec<LedgerWrite> = p.ledger_fixes.iter().map(writeahead::fix).collect();
                let job = Job {
                    fence,
                    pass,
                    results: vec![Res::Todo; p.changes.len()],
                    changes: p.changes,
                    burst: 0,
                };
                if writes.is_empty() {
                    self.after_fixes(job)
                } else {
                    Pc::Fixes { job, writes }
                }
            }
            (Pc::Fixes { job, writes }, Action::WriteFixes(_, db)) => {
                match self.fenced_write(w, r, &job.fence, &writes, *db) {
                    // A failure that is not a fencing one: `apply_owned`
                    // goes on with the changes.
                    Ok(_) => self.after_fixes(job),
                    Err(()) => Pc::Stopped(Stop::Fenced),
                }
            }
            (Pc::Budget(mut job), Action::CheckBudget(_)) => {
                if self.may_write(&job.fence, w.now) {
                    let writes: Vec<LedgerWrite> = match self.cfg.variant {
                        Variant::IntentsAfterWrite => vec![],
                        _ => self
                            .burst_range(&job)
                            .filter_map(|i| writeahead::intent(&job.changes[i]))
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
                match self.fenced_write(w, r, &job.fence, &writes, *db) {
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
                debug_assert!(self.may_write(&job.fence, w.now));
                let change = job.changes[*i].clone();
                job.results[*i] = if self.ec2_write(w, r, &change, *ec2) {
                    Res::Ok
                } else {
                    Res::Failed
                };
                self.writes_or_confirm(job)
            }
            (Pc::Writes(mut job), Action::Defer(_, i)) => {
                job.results[*i] = Res::Deferred;
                self.writes_or_confirm(job)
            }
            (Pc::Confirm { job, writes }, Action::WriteConfirmations(_, db)) => {
                match self.fenced_write(w, r, &job.fence, &writes, *db) {
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
                let _ = w.lease.release_leaving_work(&holder, fence.token);
                Pc::Done(End::LeftWork)
            }
            (Pc::Finish { fence, pass, .. }, Action::Release(_)) => {
                self.note_lease_update(w, r, &fence);
                match w.lease.release(&holder, fence.token) {
                    Release::Done => Pc::Done(End::Released),
                    Release::WorkPending if pass < self.cfg.max_passes => Pc::Renew { fence, pass },
                    // Enough passes: `release_fully`.
                    Release::WorkPending => Pc::ReleaseAgain { fence, left: 2 },
                    Release::Lost => Pc::Stopped(Stop::LeaseLost),
                }
            }
            (Pc::ReleaseAgain { fence, left }, Action::Release(_)) => {
                self.note_lease_update(w, r, &fence);
                match w.lease.release(&holder, fence.token) {
                    Release::Done => Pc::Done(End::Released),
                    Release::WorkPending if left > 1 => Pc::ReleaseAgain {
                        fence,
                        left: left - 1,
                    },
                    Release::WorkPending => Pc::Done(End::GaveUp),
                    Release::Lost => Pc::Stopped(Stop::LeaseLost),
                }
            }
            (Pc::Renew { fence, pass }, Action::Renew(_)) => {
                self.note_lease_update(w, r, &fence);
                if w.lease.renew(&holder, fence.token, w.now, self.cfg.ttl) {
                    Pc::Held {
                        fence: Fence {
                            token: fence.token,
                            expires_at: w.now + self.cfg.ttl,
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

    fn writes_or_confirm(&self, job: Job) -> Pc {
        if self.burst_range(&job).all(|i| job.results[i] != Res::Todo) {
            self.after_writes(job)
        } else {
            Pc::Writes(job)
        }
    }

    /// Property 1 for the lease's own conditional updates: one admitted for
    /// a run whose lease was lost.
    fn note_lease_update(&self, w: &mut World, r: usize, fence: &Fence) {
        if w.lease.admits(&self.holders[r], fence.token) && w.runs[r].lost {
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
            match w.ledger.0.get(&self.keys[d]) {
                Some(e) if e.recognises(&route.target) => None,
                entry => Some(format!(
                    "route {} → {} written by {:?} has ledger entry {entry:?}",
                    self.cfg.dests[d].cidr, route.target, route.created_by
                )),
            }
        })
    }

    /// Property 4: one clean run after the last one, with the model's own
    /// steps (fault-free), then ledger = reality.
    fn clean_run(&self, w: &World) -> Result<World, String> {
        let mut w = w.clone();
        // A fresh invocation once every lease has expired.
        w.now = w.now.max(w.lease.expires_at) + 1;
        let ghost = w.ghost.clone();
        let clean = w.runs.len();
        w.runs.push(Run {
            pc: Pc::Idle,
            lost: false,
        });
        for _ in 0..100 {
            if !w.runs[clean].pc.is_live() && w.runs[clean].pc != Pc::Idle {
                break;
            }
            let mut actions = Vec::new();
            self.run_actions(&w, clean, false, false, &mut actions);
            let action = actions.into_iter().next().ok_or("the clean run is stuck")?;
            self.run_step(&mut w, &action);
        }
        let end = w.runs.pop().map(|r| r.pc);
        if end != Some(Pc::Done(End::Released)) {
            return Err(format!("the clean run ended {end:?}"));
        }
        if w.ghost != ghost {
            return Err(format!("the clean run broke a safety property: {:?}", w.ghost));
        }
        let ledger = &w.ledger.0;
        for e in ledger.iter() {
            let d = self.dest_of(&e.key);
            let route = w.routes[d].as_ref();
            if e.status != LedgerStatus::Owned || e.previous.is_some() {
                return Err(format!("entry not settled: {e:?}"));
            }
            match route {
                Some(r) if r.target == e.target && r.created_by != Creator::Human => {}
                _ => return Err(format!("entry {e:?} names {route:?}")),
            }
        }
        for (d, route) in w.routes.iter().enumerate() {
            if let Some(route) = route
                && !route.human_last
                && ledger.get(&self.keys[d]).is_none()
            {
                return Err(format!("orphan: {} {route:?}", self.cfg.dests[d].cidr));
            }
        }
        let desired = self.desired(&w);
        for want in &desired {
            let d = self.dest_of(&want.key);
            let entry = ledger.get(&want.key);
            match (&w.routes[d], entry) {
                (Some(route), Some(_)) if route.target == want.target => {}
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
        let again = plan(&desired, &self.actual(&w), ledger);
        if !again.changes.is_empty() || !again.ledger_fixes.is_empty() {
            return Err(format!("not converged: {again:?}"));
        }
        Ok(w)
    }

    fn describe(&self, w: &World) -> String {
        let mut s = format!("t={} lease=", w.now);
        match &w.lease.holder {
            Some(h) => write!(s, "{h}#{}<{}", w.lease.token, w.lease.expires_at).unwrap(),
            None => write!(s, "free#{}", w.lease.token).unwrap(),
        }
        if w.lease.pending {
            s.push_str("+pending");
        }
        s.push_str(" ec2[");
        for (d, route) in w.routes.iter().enumerate() {
            let by = |r: &Ec2Route| match r.created_by {
                Creator::Lbgp(EARLIER) => "earlier".into(),
                Creator::Lbgp(i) if usize::from(i) < self.cfg.runs => format!("run-{i}"),
                Creator::Lbgp(_) => "clean".into(),
                Creator::Human => "human".into(),
            };
            match route {
                Some(r) => write!(
                    s,
                    " {}→{}({}{})",
                    self.cfg.dests[d].cidr,
                    r.target,
                    by(r),
                    if r.human_last { ",human-last" } else { "" }
                )
                .unwrap(),
                None => write!(s, " {}→∅", self.cfg.dests[d].cidr).unwrap(),
            }
        }
        s.push_str(" ] ledger[");
        for e in w.ledger.0.iter() {
            write!(s, " {}→{}:{:?}", e.key.destination, e.target, e.status).unwrap();
            if let Some(p) = &e.previous {
                write!(s, "(prev {p})").unwrap();
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
                Pc::Held { fence, pass } => format!("held#{}<{} pass {pass}", fence.token, fence.expires_at),
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
            write!(s, " run-{r}:{pc}{}", if run.lost { "(lost)" } else { "" }).unwrap();
        }
        s.push_str(" ]");
        s
    }

    fn describe_action(&self, w: &World, action: &Action) -> String {
        let change = |r: usize, i: usize| match &w.runs[r].pc {
            Pc::Writes(job) => {
                let c = &job.changes[i];
                format!("{} {} → {} ({})", c.op, c.key.destination, c.target, c.reason)
            }
            _ => String::new(),
        };
        match action {
            Action::Ec2Write(r, i, how) => format!("run-{r} EC2 {} [{how:?}]", change(*r, *i)),
            Action::Defer(r, i) => format!("run-{r} defers {}", change(*r, *i)),
            Action::ToggleDesire(d) => format!("desire of {} toggles", self.cfg.dests[*d].cidr),
            Action::Human(op, d) => format!("human {op:?} {}", self.cfg.dests[*d].cidr),
            other => format!("{other:?}"),
        }
    }

    /// A counterexample, step by step.
    fn trace(&self, path: &Path<World, Action>) -> String {
        let mut s = String::new();
        let steps = path.clone().into_vec();
        for (state, action) in &steps {
            match action {
                Some(a) => {
                    writeln!(s, "  {}", self.describe(state)).unwrap();
                    writeln!(s, "    --> {}", self.describe_action(state, a)).unwrap();
                }
                None => writeln!(s, "  {}", self.describe(state)).unwrap(),
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
        let mut ledger = OwnershipLedger::new();
        let routes = self
            .cfg
            .dests
            .iter()
            .enumerate()
            .map(|(d, dest)| match dest.initial {
                Initial::Empty => None,
                Initial::Foreign => Some(Ec2Route {
                    target: self.human_target.clone(),
                    created_by: Creator::Human,
                    human_last: true,
                }),
                Initial::Owned(t) => {
                    ledger.insert(lbgp_core::LedgerEntry::new(
                        self.keys[d].clone(),
                        self.tgws[t].clone(),
                        LedgerStatus::Owned,
                    ));
                    Some(Ec2Route {
                        target: self.tgws[t].clone(),
                        created_by: Creator::Lbgp(EARLIER),
                        human_last: false,
                    })
                }
            })
            .collect();
        vec![World {
            now: 0,
            routes,
            ledger: Ledger(ledger),
            lease: LeaseRecord::default(),
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
        }]
    }

    fn actions(&self, w: &World, out: &mut Vec<Action>) {
        if w.now < self.cfg.max_time {
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
                        if r.target != self.human_target {
                            out.push(Action::Human(HumanOp::Repoint, d));
                        }
                    }
                    None => {
                        let recorded = w.ledger.0.get(&self.keys[d]);
                        if recorded.is_none_or(|e| e.status == LedgerStatus::Pending) {
                            out.push(Action::Human(HumanOp::Create, d));
                        }
                    }
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
            Action::Tick => w.now += 1,
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
                        route.target = self.human_target.clone();
                        route.human_last = true;
                    }
                    HumanOp::Create => {
                        w.routes[d] = Some(Ec2Route {
                            target: self.human_target.clone(),
                            created_by: Creator::Human,
                            human_last: true,
                        });
                    }
                }
            }
            action => self.run_step(&mut w, &action),
        }
        Some(w)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
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
                |m: &ProtocolModel, w: &World| !Self::quiescent(w) || m.clean_run(w).is_ok(),
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
                        && !w.ledger.0.is_empty()
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

fn check(cfg: Config, stop_at_first_failure: bool) -> Outcome {
    let name = cfg.name;
    let variant = cfg.variant;
    let model = ProtocolModel::new(cfg);
    let always: BTreeSet<&'static str> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation.discovery_is_failure())
        .map(|p| p.name)
        .collect();
    let threads = if stop_at_first_failure {
        // One thread: breadth first finds the shortest counterexample.
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(2)
    };
    let started = Instant::now();
    let checker = model
        .checker()
        .threads(threads)
        .finish_when(if stop_at_first_failure {
            HasDiscoveries::AnyFailures
        } else {
            HasDiscoveries::All
        })
        .timeout(Duration::from_secs(3600));
    let checker = if stop_at_first_failure {
        Box::new(checker.spawn_bfs().join()) as Box<dyn Checker<ProtocolModel>>
    } else {
        Box::new(checker.spawn_dfs().join())
    };
    let elapsed = started.elapsed();
    println!(
        "protocol model [{name}, {variant:?}]: {} states explored, {} unique, max depth {}, {:.1} s, {} thread(s)",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        elapsed.as_secs_f64(),
        threads,
    );
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
    let complete = checker.is_done();
    Outcome {
        model: ProtocolModel::new(checker.model().cfg.clone()),
        failures,
        examples,
        complete,
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
    let mut cfg = deep(Variant::Protocol);
    if let Ok(v) = std::env::var("XP") {
        let v: Vec<u64> = v.split(',').map(|x| x.parse().unwrap()).collect();
        cfg.runs = v[0] as usize;
        cfg.dests.truncate(v[1] as usize);
        cfg.max_time = v[2];
        cfg.crashes = v[3] as u8;
        cfg.faults = v[4] as u8;
        cfg.human = v[5] as u8;
        cfg.desire_changes = v[6] as u8;
    }
    assert_holds(cfg);
}

#[test]
fn without_the_lease_margin_the_check_finds_a_counterexample() {
    let failed = assert_fails(bounded(Variant::NoLeaseMargin));
    assert!(
        failed
            .iter()
            .any(|p| p.starts_with('2') || p.starts_with('3') || p.starts_with('4')),
        "{failed:?}"
    );
}

#[test]
fn with_intents_after_the_write_the_check_finds_a_counterexample() {
    let failed = assert_fails(bounded(Variant::IntentsAfterWrite));
    assert!(
        failed.iter().any(|p| p.starts_with('3') || p.starts_with('4')),
        "{failed:?}"
    );
}
