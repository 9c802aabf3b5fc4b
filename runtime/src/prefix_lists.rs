//! Applies a plan's prefix-list steps (`lbgp_core::prefix_list`) before its
//! route changes: lists created and grown, entries changed in batches of
//! 100 with optimistic concurrency on the list's version (a conflict reads
//! the list again and recomputes the difference), routes toward lists
//! written, unreferenced lists deleted.
//!
//! Crash safety rests on the lists' tags, set in the create call itself: a
//! list of ours is found again by them on the next run whatever happened
//! after its creation, and a route toward one of our lists is ours. Steps
//! of a region run in order and stop at the first failure (what follows may
//! depend on it); any failure keeps the plan's route changes from being
//! written, so the routes a list should replace stay in place.

use std::time::Duration;

use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{Ec2, INCORRECT_STATE, VERSION_MISMATCH};
use lbgp_aws::store::Fence;
use lbgp_core::Region;
use lbgp_core::prefix_list::{ENTRIES_PER_CALL, ListKey, ListRef, ListStep, batches, diff};
use lbgp_core::report::ErrorReport;

use crate::budget::Budget;

/// Modifications retried after a version conflict or a write in progress.
pub const MAX_RETRIES: u32 = 5;

/// What applying the steps did.
#[derive(Debug, Default)]
pub struct ListOutcome {
    /// Steps that took effect (a created list's route names its new id).
    pub applied: Vec<ListStep>,
    /// Failures; each stops its region's remaining steps.
    pub errors: Vec<ErrorReport>,
    /// Steps not started (the deadline, or an earlier failure).
    pub deferred: usize,
}

/// Applies `steps` (sorted, as planned), the regions side by side.
pub async fn apply(
    aws: &Aws,
    fence: &Fence,
    steps: &[ListStep],
    budget: &Budget,
    holder: &str,
    mesh: &str,
) -> ListOutcome {
    let mut regions: std::collections::BTreeMap<&Region, Vec<&ListStep>> = std::collections::BTreeMap::new();
    for s in steps {
        regions.entry(s.region()).or_default().push(s);
    }
    let outcomes = join_all(regions.into_iter().map(|(region, steps)| async move {
        match aws.ec2(region) {
            Ok(ec2) => apply_region(ec2, fence, &steps, budget, holder, mesh).await,
            Err(e) => ListOutcome {
                errors: vec![report(region, None, &e)],
                deferred: steps.len(),
                ..ListOutcome::default()
            },
        }
    }))
    .await;
    let mut total = ListOutcome::default();
    for o in outcomes {
        total.applied.extend(o.applied);
        total.errors.extend(o.errors);
        total.deferred += o.deferred;
    }
    total.errors.sort();
    total
}

fn report(region: &Region, resource: Option<String>, e: &Error) -> ErrorReport {
    let error = match e.code() {
        Some("RouteLimitExceeded") => format!(
            "{}: AWS refused it with RouteLimitExceeded: the table cannot hold the list's max entries beside its other routes. \
             Raise the quota (Service Quotas) and LBGP_ROUTE_QUOTA, or free room in the table; no route was changed",
            crate::error_chain(e)
        ),
        _ => format!("{}; no route was changed", crate::error_chain(e)),
    };
    ErrorReport {
        region: region.to_string(),
        resource,
        error,
        account: None,
    }
}

async fn apply_region(
    ec2: &Ec2,
    fence: &Fence,
    steps: &[&ListStep],
    budget: &Budget,
    holder: &str,
    mesh: &str,
) -> ListOutcome {
    let mut out = ListOutcome::default();
    let mut created: std::collections::BTreeMap<ListKey, String> = std::collections::BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        if !budget.may_write(fence) {
            out.deferred += steps.len() - i;
            tracing::warn!(region = %ec2.region(), deferred = steps.len() - i,
                "deadline or lease end reached: prefix-list steps left for the next run");
            break;
        }
        match apply_step(ec2, step, holder, mesh, &mut created).await {
            Ok(done) => {
                tracing::info!(region = %ec2.region(), step = ?done, "prefix list step applied");
                out.applied.push(done);
            }
            Err((resource, e)) => {
                tracing::error!(region = %ec2.region(), step = ?step, error = %e,
                    "prefix list step failed; the region's other steps and the plan's route changes wait for the next run");
                out.errors.push(report(ec2.region(), Some(resource), &e));
                out.deferred += steps.len() - i - 1;
                break;
            }
        }
    }
    out
}

type StepError = (String, Error);

async fn apply_step(
    ec2: &Ec2,
    step: &ListStep,
    holder: &str,
    mesh: &str,
    created: &mut std::collections::BTreeMap<ListKey, String>,
) -> Result<ListStep, StepError> {
    match step {
        ListStep::CreateList {
            key,
            name,
            max_entries,
            entries,
        } => {
            let first: Vec<_> = entries.iter().take(ENTRIES_PER_CALL).copied().collect();
            // One token per run and list: the SDK's retries of this call
            // return the same list; a later run's create is a new one.
            let token: String = format!("{holder}-{}", key.tag_value())
                .chars()
                .take(255)
                .collect();
            let (id, version) = ec2
                .create_prefix_list((key, mesh, name), *max_entries, &first, &token)
                .await
                .map_err(|e| (key.to_string(), e))?;
            created.insert(key.clone(), id.clone());
            sync(ec2, &id, version, first, entries)
                .await
                .map_err(|e| (id.clone(), e))?;
            Ok(step.clone())
        }
        ListStep::Resize { list_id, to, .. } => {
            retrying(ec2, list_id, || ec2.resize_prefix_list(list_id, *to))
                .await
                .map_err(|e| (list_id.clone(), e))?;
            Ok(step.clone())
        }
        ListStep::SyncEntries {
            list_id,
            version,
            entries,
            add,
            remove,
            ..
        } => {
            // What the list held when planned: no read before the first
            // call; a conflict reads it again.
            let held: Vec<_> = entries
                .iter()
                .filter(|e| !add.contains(e))
                .chain(remove.iter())
                .copied()
                .collect();
            sync(ec2, list_id, *version, held, entries)
                .await
                .map_err(|e| (list_id.clone(), e))?;
            Ok(step.clone())
        }
        ListStep::CreateRoute { table, list, target } => {
            let id = match list {
                ListRef::Id(id) => id.clone(),
                ListRef::New(key) => created.get(key).cloned().ok_or_else(|| {
                    (
                        table.id.clone(),
                        Error::Unexpected {
                            operation: "CreateRoute",
                            region: table.region.to_string(),
                            detail: format!("prefix list {key} was not created"),
                        },
                    )
                })?,
            };
            retrying(ec2, &id, || ec2.create_list_route(table, &id, target))
                .await
                .map_err(|e| (format!("{} {id}", table.id), e))?;
            Ok(ListStep::CreateRoute {
                table: table.clone(),
                list: ListRef::Id(id),
                target: target.clone(),
            })
        }
        ListStep::ReplaceRoute {
            table,
            list_id,
            target,
            ..
        } => {
            ec2.replace_list_route(table, list_id, target)
                .await
                .map_err(|e| (format!("{} {list_id}", table.id), e))?;
            Ok(step.clone())
        }
        ListStep::DeleteRoute { table, list_id, .. } => {
            ec2.delete_list_route(table, list_id)
                .await
                .map_err(|e| (format!("{} {list_id}", table.id), e))?;
            Ok(step.clone())
        }
        ListStep::CreateReference {
            table,
            list,
            attachment,
        } => {
            let id = match list {
                ListRef::Id(id) => id.clone(),
                ListRef::New(key) => created.get(key).cloned().ok_or_else(|| {
                    (
                        table.id.clone(),
                        Error::Unexpected {
                            operation: "CreateTransitGatewayPrefixListReference",
                            region: table.region.to_string(),
                            detail: format!("prefix list {key} was not created"),
                        },
                    )
                })?,
            };
            retrying(ec2, &id, || ec2.create_tgw_reference(table, &id, attachment))
                .await
                .map_err(|e| (format!("{} {id}", table.id), e))?;
            Ok(ListStep::CreateReference {
                table: table.clone(),
                list: ListRef::Id(id),
                attachment: attachment.clone(),
            })
        }
        ListStep::ModifyReference {
            table,
            list_id,
            attachment,
            ..
        } => {
            retrying(ec2, list_id, || {
                ec2.modify_tgw_reference(table, list_id, attachment)
            })
            .await
            .map_err(|e| (format!("{} {list_id}", table.id), e))?;
            Ok(step.clone())
        }
        ListStep::DeleteReference { table, list_id } => {
            retrying(ec2, list_id, || ec2.delete_tgw_reference(table, list_id))
                .await
                .map_err(|e| (format!("{} {list_id}", table.id), e))?;
            Ok(step.clone())
        }
        ListStep::DeleteList { list_id, .. } => {
            ec2.delete_prefix_list(list_id)
                .await
                .map_err(|e| (list_id.clone(), e))?;
            Ok(step.clone())
        }
    }
}

/// Brings a list's entries from `current` (at `version`) to `entries`,
/// 100 in and 100 out a call; on a version conflict (or a write still in progress) reads
/// the list again and recomputes what is left to do.
async fn sync(
    ec2: &Ec2,
    id: &str,
    mut version: u64,
    mut current: Vec<lbgp_core::Cidr>,
    entries: &[lbgp_core::Cidr],
) -> Result<(), Error> {
    let mut retries = 0;
    loop {
        let (add, remove) = diff(&current, entries);
        let mut conflict = None;
        for batch in batches(&add, &remove) {
            match ec2
                .modify_prefix_list_entries(id, version, &batch.add, &batch.remove)
                .await
            {
                Ok(v) => version = v,
                Err(e) if matches!(e.code(), Some(VERSION_MISMATCH | INCORRECT_STATE)) => {
                    conflict = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let Some(e) = conflict else { return Ok(()) };
        retries += 1;
        if retries > MAX_RETRIES {
            return Err(e);
        }
        tracing::warn!(prefix_list_id = id, version, error = %e, retry = retries,
            "prefix list changed under us or is busy; reading it again");
        tokio::time::sleep(Duration::from_millis(100 * u64::from(retries))).await;
        let Some(l) = ec2.prefix_list(id).await? else {
            return Err(e);
        };
        version = l.version;
        current = l.entries.unwrap_or_default();
    }
}

/// Runs a write that AWS refuses while the list's previous write is in
/// progress (`IncorrectState`), again after a pause.
async fn retrying<T, F, Fut>(ec2: &Ec2, id: &str, write: F) -> Result<T, Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut retries = 0;
    loop {
        match write().await {
            Err(e) if e.code() == Some(INCORRECT_STATE) && retries < MAX_RETRIES => {
                retries += 1;
                tracing::warn!(region = %ec2.region(), prefix_list_id = id, retry = retries, "prefix list busy; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(retries))).await;
            }
            other => return other,
        }
    }
}
