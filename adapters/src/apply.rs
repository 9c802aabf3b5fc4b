//! Applies a core plan: ledger bookkeeping, then every change as a
//! write-ahead sequence, so a crash between any two calls leaves nothing
//! orphaned:
//!
//! - create: record a *pending* intent → create the route → mark it owned.
//!   A crash after the intent leaves a pending entry that the next plan
//!   adopts (route there with our target) or drops (route absent);
//! - replace: record the new target → replace. A crash in between leaves an
//!   owned route with a stale target: the next plan repairs it;
//! - delete: delete the route → forget it. A crash in between leaves an
//!   entry whose route is gone: the next plan drops it.

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use lbgp_core::report::ErrorReport;
use lbgp_core::{Change, ChangeOp, LedgerFix, LedgerStatus, Plan, Region};

use crate::Error;
use crate::context::Aws;
use crate::ec2::{Ec2, WriteOutcome};
use crate::store::Fence;

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Changes that took effect.
    pub applied: Vec<Change>,
    /// Changes that failed, with the reason; the next run retries them.
    pub errors: Vec<ErrorReport>,
    /// True when the lease was lost mid-way: the run stopped writing.
    pub fenced: bool,
}

/// Who owns the ledger entries being written.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The function name (ledger partition).
    pub function: &'a str,
    /// The mesh name (ledger partition).
    pub mesh: &'a str,
}

/// Applies `plan` (already checked against the blast-radius limit).
pub async fn apply_plan(aws: &Aws, fence: &Fence, owner: Owner<'_>, plan: &Plan) -> ApplyReport {
    let mut report = ApplyReport::default();
    for fix in &plan.ledger_fixes {
        let result = match fix {
            LedgerFix::Record { key, target } => {
                aws.store
                    .record(
                        fence,
                        owner.function,
                        owner.mesh,
                        key,
                        target,
                        LedgerStatus::Owned,
                    )
                    .await
            }
            LedgerFix::Drop { key, .. } => aws.store.forget(fence, owner.function, owner.mesh, key).await,
        };
        if let Err(e) = result {
            let fenced = matches!(e, Error::Fenced { .. });
            report.errors.push(ErrorReport {
                region: aws.home.to_string(),
                resource: Some("ledger".to_owned()),
                error: e.to_string(),
            });
            if fenced {
                report.fenced = true;
                return report;
            }
        }
        tracing::info!(fix = ?fix, "ledger bookkeeping");
    }

    let outcomes = write_per_region(aws, &plan.changes, |change| async move {
        let result = apply_change(aws, fence, owner, change).await;
        (change.clone(), result)
    })
    .await;
    for (change, result) in outcomes {
        match result {
            Ok(()) => {
                tracing::info!(
                    op = %change.op,
                    region = %change.key.table.region,
                    route_table_id = %change.key.table.id,
                    destination = %change.key.destination,
                    target = %change.target,
                    reason = %change.reason,
                    "route changed"
                );
                report.applied.push(change);
            }
            Err(e) => {
                tracing::error!(
                    op = %change.op,
                    region = %change.key.table.region,
                    route_table_id = %change.key.table.id,
                    destination = %change.key.destination,
                    error = %e,
                    "route change failed; the next run retries it"
                );
                report.fenced |= matches!(e, Error::Fenced { .. });
                report.errors.push(ErrorReport {
                    region: change.key.table.region.to_string(),
                    resource: Some(format!("{} {}", change.key.table.id, change.key.destination)),
                    error: e.to_string(),
                });
            }
        }
    }
    report.applied.sort();
    report.errors.sort();
    report
}

/// Runs `write` for every change, one queue per region, the regions side by
/// side: each region keeps as many writes in flight as its token bucket lets
/// through at once, so a burst goes out in one round trip and one region
/// waiting on its refill never holds up another. Outcomes come back in no
/// particular order.
pub async fn write_per_region<'c, T, Fut>(
    aws: &Aws,
    changes: &'c [Change],
    write: impl Fn(&'c Change) -> Fut,
) -> Vec<T>
where
    Fut: Future<Output = T>,
{
    let mut queues: BTreeMap<&Region, Vec<&'c Change>> = BTreeMap::new();
    for change in changes {
        queues.entry(&change.key.table.region).or_default().push(change);
    }
    let write = &write;
    let regions = queues.into_iter().map(|(region, queue)| {
        // An unknown region fails each of its writes with a clear error in
        // `write`; its queue needs a width all the same.
        let in_flight = aws.ec2(region).map_or(1, Ec2::writes_in_flight);
        stream::iter(queue)
            .map(write)
            .buffer_unordered(in_flight)
            .collect::<Vec<T>>()
    });
    join_all(regions).await.into_iter().flatten().collect()
}

async fn apply_change(aws: &Aws, fence: &Fence, owner: Owner<'_>, change: &Change) -> Result<(), Error> {
    let ec2 = aws.ec2(&change.key.table.region)?;
    let store = &aws.store;
    let (function, mesh) = (owner.function, owner.mesh);
    // Every ledger write here is about this change's route and target.
    let record = |status| store.record(fence, function, mesh, &change.key, &change.target, status);
    match change.op {
        ChangeOp::Create => {
            record(LedgerStatus::Pending).await?;
            match ec2.create_route(&change.key, &change.target).await? {
                WriteOutcome::Applied => record(LedgerStatus::Owned).await,
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
                    record(LedgerStatus::Owned).await
                }
                WriteOutcome::AlreadyExists | WriteOutcome::NotFound => Err(Error::Unexpected {
                    operation: "CreateRoute",
                    region: change.key.table.region.to_string(),
                    detail: format!(
                        "{} {}: a route appeared before ours; left pending for the next run to verify",
                        change.key.table.id, change.key.destination
                    ),
                }),
            }
        }
        ChangeOp::Replace => {
            record(LedgerStatus::Owned).await?;
            match ec2.replace_route(&change.key, &change.target).await? {
                WriteOutcome::Applied | WriteOutcome::AlreadyExists => Ok(()),
                // Deleted under us: create it (the entry is already ours).
                WriteOutcome::NotFound => match ec2.create_route(&change.key, &change.target).await? {
                    WriteOutcome::Applied => Ok(()),
                    _ => Err(Error::Unexpected {
                        operation: "CreateRoute",
                        region: change.key.table.region.to_string(),
                        detail: format!(
                            "{} {}: the route changed under us twice; the next run re-plans",
                            change.key.table.id, change.key.destination
                        ),
                    }),
                },
            }
        }
        ChangeOp::Delete => {
            ec2.delete_route(&change.key).await?;
            store.forget(fence, function, mesh, &change.key).await
        }
    }
}
