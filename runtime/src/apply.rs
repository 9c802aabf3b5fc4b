//! Applies a unit's plan, write-ahead, so a crash between any two calls
//! leaves nothing orphaned (the protocol is `lbgp_core::writeahead`'s):
//!
//! - **owned routes** (injector, propagator): the plan's ledger fixes, then
//!   per region, a burst at a time: one fenced transaction of intents, the
//!   burst's EC2 writes side by side, one fenced transaction of
//!   confirmations. A converge costs about 2 × ⌈writes / burst⌉ ledger
//!   transactions per region, not 2 × writes;
//! - **moved routes** (failover watcher): the group's new state, fenced,
//!   then one `ReplaceRoute` per route. A crash in between leaves routes on
//!   the old member, which the next run repairs as drift.
//!
//! Regions are written side by side, each with its own queue a burst wide,
//! so one region waiting on its token bucket never holds up another. Before
//! every batch and every write the [`Budget`] is asked: past the deadline or
//! too close to the lease's end, nothing more starts and the rest is
//! counted as deferred for the next run.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{Ec2, WriteOutcome, WritePermit};
use lbgp_aws::store::Fence;
use lbgp_core::accounts::{AccountId, TableOwners};
use lbgp_core::failover::ListMove;
use lbgp_core::report::{ChangeReport, ErrorReport, SkipReport};
use lbgp_core::writeahead::{self, LedgerWrite, WRITES_PER_TRANSACTION};
use lbgp_core::{Change, ChangeOp, LedgerFix, Region};

use crate::budget::Budget;

/// What an apply did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Changes that took effect, sorted.
    pub applied: Vec<Change>,
    /// Prefix-list routes moved, as the response reports them, sorted.
    pub applied_lists: Vec<ChangeReport>,
    /// Failures, each confined to its change (or the ledger); the next run
    /// retries them.
    pub errors: Vec<ErrorReport>,
    /// Changes left alone on purpose (a route deleted before it could be
    /// moved).
    pub skipped: Vec<SkipReport>,
    /// The lease was lost mid-way: the run stopped writing.
    pub fenced: bool,
    /// The apply stopped before its changes (the state record could not be
    /// saved): nothing was moved.
    pub halted: bool,
    /// Changes not started because the deadline or the lease's end came,
    /// or still throttled after every retry: left for the next run (or the
    /// follow-up invocation).
    pub deferred: usize,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.applied.extend(other.applied);
        self.applied_lists.extend(other.applied_lists);
        self.errors.extend(other.errors);
        self.skipped.extend(other.skipped);
        self.fenced |= other.fenced;
        self.halted |= other.halted;
        self.deferred += other.deferred;
    }

    fn sorted(mut self) -> Outcome {
        self.applied.sort();
        self.applied_lists.sort();
        self.errors.sort();
        self.skipped.sort();
        self
    }

    fn fail(&mut self, change: &Change, e: &Error) {
        if e.is_throttled() {
            // Not a failure of the change: EC2's budget is spent (by us or
            // another tool). Left for the follow-up, like the deadline's rest.
            tracing::warn!(
                op = %change.op,
                region = %change.key.table.region,
                route_table_id = %change.key.table.id,
                destination = %change.key.destination,
                error = %e,
                "route change still throttled after every retry; deferred"
            );
            self.deferred += 1;
            return;
        }
        tracing::error!(
            op = %change.op,
            region = %change.key.table.region,
            route_table_id = %change.key.table.id,
            destination = %change.key.destination,
            error = %e,
            "route change failed; the next run retries it"
        );
        self.fenced |= e.is_fenced();
        let error = match e.code() {
            Some("RouteLimitExceeded") => format!(
                "route table {} is full: AWS refused {} with RouteLimitExceeded (routes per route table). \
                 Raise the quota (Service Quotas) and LBGP_ROUTE_QUOTA, or free room in the table; nothing else was changed for this route",
                change.key.table.id, change.key.destination
            ),
            _ => e.to_string(),
        };
        self.errors.push(ErrorReport {
            region: change.key.table.region.to_string(),
            resource: Some(format!("{} {}", change.key.table.id, change.key.destination)),
            error,
            account: None,
        });
    }

    fn ledger_failed(&mut self, aws: &Aws, e: &Error) {
        tracing::error!(error = %e, "ledger write failed");
        self.fenced |= e.is_fenced();
        self.errors.push(ErrorReport {
            region: aws.home.to_string(),
            resource: Some("ledger".to_owned()),
            error: e.to_string(),
            account: None,
        });
    }
}

fn log_applied(change: &Change) {
    tracing::info!(
        op = %change.op,
        region = %change.key.table.region,
        route_table_id = %change.key.table.id,
        destination = %change.key.destination,
        target = %change.target,
        previous = %change.previous.as_ref().map(ToString::to_string).unwrap_or_default(),
        reason = %change.reason,
        "route changed"
    );
}

/// Runs `work` for each queue of changes, one per account and region (EC2's
/// budget is each one's own), side by side, with that account's EC2 client
/// in that region. A queue whose client cannot be had fails each of its
/// changes with why.
pub async fn per_region<'c, Fut>(
    aws: &Aws,
    tables: Option<&TableOwners>,
    changes: &'c [Change],
    work: impl Fn(Ec2, Vec<&'c Change>) -> Fut,
) -> Outcome
where
    Fut: Future<Output = Outcome>,
{
    let mut queues: BTreeMap<(Option<&AccountId>, &Region), Vec<&'c Change>> = BTreeMap::new();
    for change in changes {
        let account = tables.and_then(|t| t.account(&change.key.table));
        queues
            .entry((account, &change.key.table.region))
            .or_default()
            .push(change);
    }
    let work = &work;
    let outcomes = join_all(queues.into_iter().map(|((account, region), queue)| async move {
        match aws.ec2_in(account, region).await {
            Ok(ec2) => work(ec2, queue).await,
            Err(e) => {
                let mut out = Outcome::default();
                for change in queue {
                    out.fail(change, &e);
                }
                out
            }
        }
    }))
    .await;
    let mut total = Outcome::default();
    for o in outcomes {
        total.merge(o);
    }
    total.sorted()
}

/// Who owns the ledger entries being written.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The function name (ledger partition).
    pub function: &'a str,
    /// The mesh name (ledger partition).
    pub mesh: &'a str,
    /// Which account owns each table, in a cross-account mesh: the writes
    /// go there and the ledger records it. `None`: every table is the home
    /// account's.
    pub tables: Option<&'a TableOwners>,
}

impl Owner<'_> {
    /// `write` with the account of its table recorded (a cross-account
    /// mesh; otherwise as it is).
    fn stamp(&self, mut write: LedgerWrite) -> LedgerWrite {
        if let (LedgerWrite::Record(entry), Some(tables)) = (&mut write, self.tables) {
            entry.account = tables.account(&entry.key.table).cloned();
        }
        write
    }
}

/// How the write-ahead ledger writes are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LedgerBatching {
    /// A burst's intents in one transaction, its confirmations in another.
    #[default]
    Bursts,
    /// Each change's intent and confirmation in transactions of their own,
    /// the writes of a region still a burst in flight: the protocol before
    /// bursts, kept so the benchmarks measure the bursts against it.
    PerChange,
}

/// Applies a plan of owned routes: ledger fixes, then the changes in
/// write-ahead bursts. `changes` were checked against the blast radius.
pub async fn apply_owned(
    aws: &Aws,
    fence: &Fence,
    owner: Owner<'_>,
    fixes: &[LedgerFix],
    changes: &[Change],
    budget: &Budget,
) -> Outcome {
    apply_owned_with(aws, fence, owner, fixes, changes, budget, LedgerBatching::Bursts).await
}

/// [`apply_owned`] with the ledger writes grouped as `batching` says.
pub async fn apply_owned_with(
    aws: &Aws,
    fence: &Fence,
    owner: Owner<'_>,
    fixes: &[LedgerFix],
    changes: &[Change],
    budget: &Budget,
    batching: LedgerBatching,
) -> Outcome {
    let mut outcome = Outcome::default();
    let fix_writes: Vec<LedgerWrite> = fixes.iter().map(|f| owner.stamp(writeahead::fix(f))).collect();
    if let Err(e) = aws
        .store
        .write_ledger(fence, owner.function, owner.mesh, &fix_writes)
        .await
    {
        outcome.ledger_failed(aws, &e);
        if outcome.fenced {
            return outcome;
        }
    } else {
        for fix in fixes {
            tracing::info!(fix = ?fix, "ledger bookkeeping");
        }
    }
    let fenced = AtomicBool::new(false);
    let fenced = &fenced;
    let writes = per_region(aws, owner.tables, changes, |ec2, queue| async move {
        let ec2 = &ec2;
        let burst = ec2.writes_in_flight().min(WRITES_PER_TRANSACTION);
        if batching == LedgerBatching::PerChange {
            let outcomes: Vec<Outcome> = stream::iter(queue)
                .map(|change| async move {
                    if fenced.load(Ordering::SeqCst) {
                        return Outcome::default();
                    }
                    let out = owned_burst((aws, ec2), fence, owner, &[change], budget, 1).await;
                    if out.fenced {
                        fenced.store(true, Ordering::SeqCst);
                    }
                    out
                })
                .buffer_unordered(burst)
                .collect()
                .await;
            let mut out = Outcome::default();
            for o in outcomes {
                out.merge(o);
            }
            return out;
        }
        let mut out = Outcome::default();
        for (n, chunk) in queue.chunks(burst).enumerate() {
            if fenced.load(Ordering::SeqCst) {
                break;
            }
            if !budget.may_write(fence) {
                out.deferred += queue.len() - n * burst;
                break;
            }
            out.merge(owned_burst((aws, ec2), fence, owner, chunk, budget, burst).await);
            if out.fenced {
                fenced.store(true, Ordering::SeqCst);
                break;
            }
        }
        out
    })
    .await;
    outcome.merge(writes);
    outcome.sorted()
}

/// One burst of owned changes: intents, writes, confirmations.
async fn owned_burst(
    (aws, ec2): (&Aws, &Ec2),
    fence: &Fence,
    owner: Owner<'_>,
    chunk: &[&Change],
    budget: &Budget,
    in_flight: usize,
) -> Outcome {
    let mut out = Outcome::default();
    let intents: Vec<LedgerWrite> = chunk
        .iter()
        .filter_map(|c| writeahead::intent(c))
        .map(|w| owner.stamp(w))
        .collect();
    if let Err(e) = aws
        .store
        .write_ledger(fence, owner.function, owner.mesh, &intents)
        .await
    {
        // Without its intent no change may be written.
        for change in chunk {
            out.fail(change, &e);
        }
        return out;
    }
    let results: Vec<(&Change, Option<Result<(), Error>>)> = stream::iter(chunk.iter().copied())
        .map(|change| async move { (change, write_owned(ec2, fence, change, budget).await) })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut confirmations = Vec::new();
    let mut done = Vec::new();
    for (change, result) in results {
        match result {
            None => out.deferred += 1,
            Some(Ok(())) => {
                confirmations.extend(writeahead::confirmation(change));
                done.push(change.clone());
            }
            Some(Err(e)) => out.fail(change, &e),
        }
    }
    // The routes are written whatever happens to their confirmations: a
    // pending entry whose route is there is adopted by the next plan.
    if let Err(e) = aws
        .store
        .write_ledger(fence, owner.function, owner.mesh, &confirmations)
        .await
    {
        out.ledger_failed(aws, &e);
    }
    for change in &done {
        log_applied(change);
    }
    out.applied.extend(done);
    out
}

/// Rounds of `ReplaceRoute` a region's moves get when EC2 still throttles
/// some after the SDK's retries: the throttled ones go round again (the
/// write bucket has slowed down meanwhile) before they are deferred to the
/// follow-up. A failover is worth finishing in the invocation that started it.
pub const THROTTLED_ROUNDS: usize = 3;

/// The moves of one region, a burst in flight, in up to
/// [`THROTTLED_ROUNDS`] rounds.
async fn replace_in_region(ec2: &Ec2, fence: &Fence, budget: &Budget, mut queue: Vec<&Change>) -> Outcome {
    let region = ec2.region();
    let mut out = Outcome::default();
    for round in 1..=THROTTLED_ROUNDS {
        let results: Vec<(&Change, Option<Result<WriteOutcome, Error>>)> = stream::iter(queue)
            .map(|change| async move {
                let result = match permit(ec2, fence, budget).await {
                    None => None,
                    Some(Ok(p)) => Some(p.replace_route(&change.key, &change.target).await),
                    Some(Err(e)) => Some(Err(e)),
                };
                (change, result)
            })
            .buffer_unordered(ec2.writes_in_flight())
            .collect()
            .await;
        queue = Vec::new();
        for (change, result) in results {
            let table = &change.key.table;
            match result {
                None => out.deferred += 1,
                Some(Ok(WriteOutcome::Applied | WriteOutcome::AlreadyExists)) => {
                    log_applied(change);
                    out.applied.push(change.clone());
                }
                Some(Ok(WriteOutcome::NotFound)) => {
                    // The user deleted the route meanwhile: it is theirs,
                    // not ours to re-create.
                    tracing::warn!(region = %table.region, route_table_id = %table.id,
                        destination = %change.key.destination, "route deleted before it could be repointed");
                    out.skipped.push(SkipReport {
                        region: table.region.to_string(),
                        resource: table.id.clone(),
                        destination: Some(change.key.destination.to_string()),
                        reason: "route deleted before it could be repointed".to_owned(),
                        account: None,
                    });
                }
                Some(Err(e)) if e.is_throttled() && round < THROTTLED_ROUNDS => queue.push(change),
                Some(Err(e)) => out.fail(change, &e),
            }
        }
        if queue.is_empty() {
            break;
        }
        tracing::warn!(region = %region, routes = queue.len(), round,
            "EC2 still throttled some route moves after the SDK's retries; another round");
    }
    out
}

/// Waits for a write token of `change`'s region, then says whether the
/// write may start: `None` when the deadline or the lease's end came while
/// waiting (the change is deferred).
async fn permit<'a>(ec2: &'a Ec2, fence: &Fence, budget: &Budget) -> Option<Result<WritePermit<'a>, Error>> {
    let permit = ec2.write_permit().await;
    budget.may_write(fence).then_some(Ok(permit))
}

/// The EC2 write of one owned change, tolerant of what a lost response or a
/// race leaves behind; `None` when it was not started (deferred).
async fn write_owned(
    ec2: &Ec2,
    fence: &Fence,
    change: &Change,
    budget: &Budget,
) -> Option<Result<(), Error>> {
    let permit = match permit(ec2, fence, budget).await? {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let unexpected = |operation, detail: &str| Error::Unexpected {
        operation,
        region: change.key.table.region.to_string(),
        detail: format!("{} {}: {detail}", change.key.table.id, change.key.destination),
    };
    let result = async {
        match change.op {
            ChangeOp::Create => match permit.create_route(&change.key, &change.target).await? {
                WriteOutcome::Applied => Ok(()),
                // Someone holds the destination: perhaps our own attempt
                // whose response was lost and that the SDK retried. Ours if
                // the target is ours; otherwise the intent stays pending and
                // the next plan drops it (and reports the conflict).
                WriteOutcome::AlreadyExists
                    if ec2
                        .read_static_route(&change.key)
                        .await?
                        .is_some_and(|r| r.target == change.target) =>
                {
                    Ok(())
                }
                WriteOutcome::AlreadyExists | WriteOutcome::NotFound => Err(unexpected(
                    "CreateRoute",
                    "a route appeared before ours; left pending for the next run to verify",
                )),
            },
            ChangeOp::Replace => match permit.replace_route(&change.key, &change.target).await? {
                WriteOutcome::Applied | WriteOutcome::AlreadyExists => Ok(()),
                // Deleted under us: create it (the entry is already ours),
                // with a token and a check of its own.
                WriteOutcome::NotFound => match permit_again(ec2, fence, budget).await? {
                    Some(again) => match again.create_route(&change.key, &change.target).await? {
                        WriteOutcome::Applied => Ok(()),
                        _ => Err(unexpected(
                            "CreateRoute",
                            "the route changed under us twice; the next run re-plans",
                        )),
                    },
                    None => Err(unexpected(
                        "CreateRoute",
                        "the route was deleted under us and the deadline came; the next run re-creates it",
                    )),
                },
            },
            ChangeOp::Delete => permit.delete_route(&change.key).await.map(|_| ()),
        }
    };
    Some(result.await)
}

async fn permit_again<'a>(
    ec2: &'a Ec2,
    fence: &Fence,
    budget: &Budget,
) -> Result<Option<WritePermit<'a>>, Error> {
    permit(ec2, fence, budget).await.transpose()
}

/// A state record to save, fenced, before a unit's routes move.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    /// The record's name (`sk`) under `state#<function>#<scope>`.
    pub name: String,
    /// Its body.
    pub body: serde_json::Value,
}

/// Applies a plan of moved routes (the user's, not ours): the state first,
/// then one `ReplaceRoute` per route (CIDR and prefix-list routes side by
/// side), then, once every move is acknowledged, the `settled` state (or,
/// when the deadline cut the moves, the `unsettled` one).
pub async fn apply_moves(
    aws: &Aws,
    fence: &Fence,
    (function, scope): (&str, &str),
    (state, unsettled, settled): (Option<&StateRecord>, Option<&StateRecord>, Option<&StateRecord>),
    (moves, lists): (&[Change], &[ListMove]),
    tables: Option<&TableOwners>,
    budget: &Budget,
) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(record) = state {
        // Write-ahead: the new active member is recorded (fenced) before any
        // route moves, so a run that lost its lease moves nothing.
        if let Err(e) = aws
            .store
            .save_state(fence, function, scope, &record.name, &record.body)
            .await
        {
            tracing::error!(scope, error = %e, "state not saved; no route moved");
            outcome.fenced = e.is_fenced();
            outcome.halted = true;
            outcome.errors.push(ErrorReport {
                region: aws.home.to_string(),
                resource: Some(format!("state {scope}")),
                error: e.to_string(),
                account: None,
            });
            return outcome;
        }
    }
    let (moved, listed) = futures::join!(
        per_region(aws, tables, moves, |ec2, queue| async move {
            replace_in_region(&ec2, fence, budget, queue).await
        }),
        replace_lists(aws, (fence, budget), tables, lists),
    );
    outcome.merge(moved);
    outcome.merge(listed);
    let after = if outcome.deferred > 0 {
        unsettled
    } else if outcome.errors.is_empty() && !outcome.fenced {
        settled
    } else {
        None
    };
    if let Some(record) = after
        && let Err(e) = aws
            .store
            .save_state(fence, function, scope, &record.name, &record.body)
            .await
    {
        tracing::error!(scope, error = %e, "state after the moves not saved; the next run finds the routes again");
    }
    outcome.sorted()
}

/// The prefix-list routes of a plan, a burst in flight per region, with the
/// CIDR moves' pacing, deadline and throttled rounds.
async fn replace_lists(
    aws: &Aws,
    (fence, budget): (&Fence, &Budget),
    tables: Option<&TableOwners>,
    lists: &[ListMove],
) -> Outcome {
    let mut by_region: BTreeMap<(Option<&AccountId>, &Region), Vec<&ListMove>> = BTreeMap::new();
    for l in lists {
        let account = tables.and_then(|t| t.account(&l.table));
        by_region.entry((account, &l.table.region)).or_default().push(l);
    }
    let outcomes = join_all(by_region.into_iter().map(|((account, region), queue)| async move {
        let mut out = Outcome::default();
        let ec2 = match aws.ec2_in(account, region).await {
            Ok(ec2) => ec2,
            Err(e) => {
                for l in queue {
                    list_failed(&mut out, l, &e);
                }
                return out;
            }
        };
        let ec2 = &ec2;
        let mut queue = queue;
        for round in 1..=THROTTLED_ROUNDS {
            let results: Vec<(&ListMove, Option<Result<WriteOutcome, Error>>)> = stream::iter(queue)
                .map(|l| async move {
                    let permit = ec2.write_permit().await;
                    if !budget.may_write(fence) {
                        return (l, None);
                    }
                    (
                        l,
                        Some(
                            permit
                                .replace_list_route(&l.table, &l.prefix_list_id, &l.target)
                                .await,
                        ),
                    )
                })
                .buffer_unordered(ec2.writes_in_flight())
                .collect()
                .await;
            queue = Vec::new();
            for (l, result) in results {
                match result {
                    None => out.deferred += 1,
                    Some(Ok(WriteOutcome::Applied | WriteOutcome::AlreadyExists)) => {
                        tracing::info!(op = "replace", region = %l.table.region, route_table_id = %l.table.id,
                            prefix_list_id = %l.prefix_list_id, target = %l.target, reason = %l.reason,
                            "route changed");
                        out.applied_lists.push(l.report());
                    }
                    Some(Ok(WriteOutcome::NotFound)) => {
                        tracing::warn!(region = %l.table.region, route_table_id = %l.table.id,
                            prefix_list_id = %l.prefix_list_id, "route deleted before it could be repointed");
                        out.skipped.push(SkipReport {
                            region: l.table.region.to_string(),
                            resource: l.table.id.clone(),
                            destination: Some(l.prefix_list_id.clone()),
                            reason: "route deleted before it could be repointed".to_owned(),
                            account: None,
                        });
                    }
                    Some(Err(e)) if e.is_throttled() && round < THROTTLED_ROUNDS => queue.push(l),
                    Some(Err(e)) if e.is_throttled() => {
                        tracing::warn!(region = %l.table.region, route_table_id = %l.table.id,
                            prefix_list_id = %l.prefix_list_id, error = %e,
                            "route change still throttled after every retry; deferred");
                        out.deferred += 1;
                    }
                    Some(Err(e)) => list_failed(&mut out, l, &e),
                }
            }
            if queue.is_empty() {
                break;
            }
        }
        out
    }))
    .await;
    let mut out = Outcome::default();
    for o in outcomes {
        out.merge(o);
    }
    out
}

fn list_failed(out: &mut Outcome, l: &ListMove, e: &Error) {
    tracing::error!(op = "replace", region = %l.table.region, route_table_id = %l.table.id,
        prefix_list_id = %l.prefix_list_id, error = %e, "route change failed; the next run retries it");
    out.fenced |= e.is_fenced();
    out.errors.push(ErrorReport {
        region: l.table.region.to_string(),
        resource: Some(format!("{} {}", l.table.id, l.prefix_list_id)),
        error: e.to_string(),
        account: None,
    });
}
