//! The reconcile loop: read → desire → plan → guard → apply → report →
//! notify, under a lease per unit of work, again while work comes in.
//!
//! A function plugs in as a [`Reconciler`]: which units a trigger concerns
//! ([`Reconciler::select`]), and each unit's plan ([`Reconciler::plan`]: I/O
//! in the function crate, rules in `lbgp-core`). Everything else is here,
//! once: classifying the payload, dry runs, leases and their release,
//! the blast-radius guard over the whole run, write-ahead application within
//! the deadline, further passes when other triggers asked for work, the
//! response, and the notifications.

use std::time::Instant;

use futures::future::join_all;
use lbgp_aws::context::Aws;
use lbgp_aws::store::{Acquired, Fence, Released};
use lbgp_core::failover::ListMove;
use lbgp_core::notice;
use lbgp_core::report::{ChangeReport, ErrorReport, InvokeResponse, RESPONSE_BUDGET, SkipReport};
use lbgp_core::trigger::{Classified, MalformedPayload, Trigger, classify};
use lbgp_core::{Change, Plan, Region};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::apply::{self, LedgerBatching, Outcome, Owner};
use crate::budget::Budget;
use crate::notify;

/// Seconds a lease lasts: longer than the function's timeout plus the
/// lease margin of [`crate::budget`], so a live holder never loses it, short
/// enough that a crashed one frees it soon.
pub const LEASE_TTL_SECS: u64 = 180;
/// Passes one invocation makes when other runs keep asking for more work.
pub const MAX_PASSES: usize = 5;

use crate::unit::blast_radius;
pub use crate::unit::{
    DecisionNotice, OwnedExtras, Pass, Reconciler, Request, Selection, TagWrite, Unit, UnitPlan, Writes,
};

/// One unit through one invocation.
struct UnitRun<K> {
    unit: Unit<K>,
    fence: Option<Fence>,
    locked_by: Option<String>,
    plan: Option<UnitPlan>,
    /// Routes changed, over every pass.
    applied: Vec<Change>,
    /// Prefix-list routes moved, over every pass.
    applied_lists: Vec<ChangeReport>,
    /// Prefix-list writes applied, over every pass.
    list_steps: Vec<lbgp_core::prefix_list::ListStep>,
    /// Reports of the applies, over every pass.
    errors: Vec<ErrorReport>,
    skipped: Vec<SkipReport>,
    report: Option<Map<String, Value>>,
    deferred: usize,
    /// Passes applied under the lease.
    passes: usize,
    /// When the last route of the unit was acknowledged, in ms after the
    /// invocation started (the watcher's event → last write).
    last_write_ms: Option<u64>,
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Handles one invocation of `reconciler` with `payload`.
pub async fn run<R: Reconciler>(
    reconciler: &R,
    aws: &Aws,
    payload: &Value,
    holder: String,
    budget: Budget,
    batching: LedgerBatching,
) -> Result<InvokeResponse, Error> {
    let started = Instant::now();
    let throttled_before = aws.throttles.count();
    let common = reconciler.common();
    let function = reconciler.function();
    let trigger = match classify(payload, reconciler.subscriptions())? {
        Classified::Ignore { reason } => {
            tracing::info!(function, reason = %reason, "event ignored");
            let mut response = InvokeResponse::new(function, "ignored", true);
            response.ignored = Some(reason);
            return Ok(response);
        }
        Classified::Handle(trigger) => trigger,
    };
    tracing::Span::current().record("trigger", trigger.label());
    let (dry_run, force) = match &trigger {
        Trigger::Manual(m) => {
            if m.group.is_some() && !reconciler.takes_operator_switch() {
                return Err(MalformedPayload {
                    reason: format!(
                        "{function} has no failover groups; \"group\"/\"activate\" are for failover-watcher"
                    ),
                }
                .into());
            }
            if (m.migrate.is_some() || m.adopt.is_some()) && !reconciler.takes_migration() {
                return Err(MalformedPayload {
                    reason: format!(
                        "{function} does not migrate VPCs; \"migrate\"/\"adopt\" are for vpc-route-injector"
                    ),
                }
                .into());
            }
            (m.dry_run.unwrap_or(common.dry_run), m.force)
        }
        _ => (common.dry_run, false),
    };
    let label = trigger.label();
    let mut response = InvokeResponse::new(function, label.clone(), dry_run);
    let regions: Vec<Region> = match trigger.region() {
        Some(region) if !common.regions.contains(region) => {
            response.ignored = Some(format!("region {region} is not in LBGP_REGIONS"));
            return Ok(response);
        }
        Some(region) => reconciler.scope(vec![region.clone()]),
        None => common.regions.clone(),
    };
    let request = Request {
        trigger,
        label,
        dry_run,
        force,
        holder,
        budget,
        started,
        batching,
    };
    tracing::info!(function, trigger = %request.label, dry_run, force, regions = ?regions, "reconcile started");

    let (units, discovery_errors) = match reconciler.select(aws, &request, &regions).await? {
        Selection::Ignore(reason) => {
            tracing::info!(function, reason = %reason, "event ignored");
            response.ignored = Some(reason);
            response.duration_ms = elapsed_ms(started);
            return Ok(response);
        }
        Selection::Units { units, errors } => (units, errors),
    };
    response.errors.extend(discovery_errors);
    let mut runs: Vec<UnitRun<R::Key>> = units
        .into_iter()
        .map(|unit| UnitRun {
            unit,
            fence: None,
            locked_by: None,
            plan: None,
            applied: vec![],
            applied_lists: vec![],
            list_steps: vec![],
            errors: vec![],
            skipped: vec![],
            report: None,
            deferred: 0,
            passes: 0,
            last_write_ms: None,
        })
        .collect();

    // Leases first, then the read: what we decide on is what the previous
    // holder left, never a view from before it wrote.
    if !dry_run {
        let taken = join_all(runs.iter().map(|r| {
            aws.store
                .acquire(function, &r.unit.scope, &request.holder, LEASE_TTL_SECS)
        }))
        .await;
        let mut failure = None;
        for (run, result) in runs.iter_mut().zip(taken) {
            match result {
                Ok(Acquired::Held(fence)) => run.fence = Some(fence),
                Ok(Acquired::Busy { holder }) => {
                    tracing::info!(function, scope = %run.unit.scope, holder = %holder,
                        "lease held by another run; work marked pending for it");
                    run.report = reconciler.locked_report(&run.unit, &holder);
                    run.locked_by = Some(holder);
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            // Without the lease nothing may be written: let the caller retry.
            release_all(aws, &mut runs).await;
            return Err(e.into());
        }
    }

    let pass = Pass {
        number: 1,
        request: &request,
        regions: &regions,
    };
    let planned: Vec<&Unit<R::Key>> = runs
        .iter()
        .filter(|r| dry_run || r.fence.is_some())
        .map(|r| &r.unit)
        .collect();
    let plans = reconciler.plan_all(aws, &planned, &pass).await;
    let mut failure = None;
    let mut plans = plans.into_iter();
    for run in runs.iter_mut().filter(|r| dry_run || r.fence.is_some()) {
        match plans.next() {
            Some(Ok(plan)) => {
                run.report = plan.report.clone();
                run.plan = Some(plan);
            }
            Some(Err(e)) => failure = Some(e),
            None => {}
        }
    }
    if let Some(e) = failure {
        release_all(aws, &mut runs).await;
        return Err(e);
    }

    // The blast-radius guard covers the whole run, later stages included.
    let all_changes: Vec<Change> = runs
        .iter()
        .filter_map(|r| r.plan.as_ref())
        .flat_map(|p| {
            let later = match &p.writes {
                Writes::Owned { extras, .. } => extras.later.as_slice(),
                Writes::Moved { .. } => &[],
            };
            p.changes.iter().chain(later).cloned()
        })
        .collect();
    let guard = Plan {
        changes: all_changes,
        ..Plan::default()
    };
    let list_moves: Vec<ChangeReport> = runs
        .iter()
        .filter_map(|r| r.plan.as_ref())
        .flat_map(|p| p.list_moves().iter().map(ListMove::report))
        .collect();
    let refused = blast_radius(&guard, list_moves.len(), common.max_changes, force).err();
    if dry_run || refused.is_some() {
        if let Some(e) = &refused {
            tracing::warn!(
                function,
                changes = guard.changes.len(),
                limit = common.max_changes,
                "plan refused by the blast-radius guard"
            );
            response.refused = Some(e.to_string());
            if !dry_run {
                release_all(aws, &mut runs).await;
                let n = notice::plan_refused(function, &request.label, None, &e.to_string(), &guard.changes);
                notify::publish(aws, &n).await;
                for run in runs.iter_mut().filter(|r| {
                    r.plan
                        .as_ref()
                        .is_some_and(|p| !p.changes.is_empty() || !p.list_moves().is_empty())
                }) {
                    if let Some(report) = &mut run.report {
                        report.insert("error".into(), json!(e.to_string()));
                    }
                }
            }
        }
        for run in &runs {
            if let Some(plan) = &run.plan {
                reconciler.log(
                    &run.unit,
                    plan,
                    plan.changes.len() + plan.list_moves().len(),
                    true,
                );
            }
        }
        if dry_run {
            let mut planned: Vec<ChangeReport> = guard.changes.iter().map(ChangeReport::from).collect();
            planned.extend(list_moves);
            planned.sort();
            response.changes = planned;
        }
        let response = finish(response, runs, &request, started, false);
        if response.truncated && dry_run {
            // The response holds the first of them: the logs hold them all.
            for change in &guard.changes {
                tracing::info!(
                    op = %change.op,
                    region = %change.key.table.region,
                    route_table_id = %change.key.table.id,
                    destination = %change.key.destination,
                    target = %change.target,
                    reason = %change.reason,
                    "route change planned"
                );
            }
        }
        return Ok(response);
    }

    let runs = join_all(
        runs.into_iter()
            .map(|run| apply_unit(reconciler, aws, run, &request)),
    )
    .await;
    // Owned routes are announced as one applied plan; moved routes by each
    // group's decision, already sent.
    let mut owned: Vec<ChangeReport> = runs
        .iter()
        .filter(|r| {
            r.plan
                .as_ref()
                .is_some_and(|p| matches!(p.writes, Writes::Owned { .. }))
        })
        .flat_map(|r| r.applied.iter().map(ChangeReport::from))
        .collect();
    owned.sort();
    let mut response = finish(response, runs, &request, started, true);
    if let Some(why) = &response.refused {
        // The prefix-list guard refused the plan whole (the routes guard's
        // refusals returned above, notified): announced the same way.
        let mut n = notice::plan_refused(function, &request.label, None, why, &[]);
        n.subject = format!("lbgp {function}: plan refused by the blast-radius guard");
        notify::publish(aws, &n).await;
    }
    if !owned.is_empty() {
        let n = notice::plan_applied(function, &request.label, &owned, &response.errors);
        notify::publish(aws, &n).await;
    }
    response.throttled = aws.throttles.count().saturating_sub(throttled_before);
    if response.throttled > 0 {
        tracing::warn!(
            function,
            throttled = response.throttled,
            "AWS throttled calls of this run; the SDK and the write pacing slowed down"
        );
    }
    if response.deferred > 0 {
        response.follow_up = follow_up(aws, &request, &response).await;
    }
    Ok(response)
}

/// Applies a unit's plan under its lease, then plans and applies it again as
/// long as other runs asked for work while we held the lease.
async fn apply_unit<R: Reconciler>(
    reconciler: &R,
    aws: &Aws,
    mut run: UnitRun<R::Key>,
    request: &Request,
) -> UnitRun<R::Key> {
    let function = reconciler.function();
    let common = reconciler.common();
    let (Some(mut fence), Some(mut plan)) = (run.fence.clone(), run.plan.take()) else {
        if let Some(fence) = run.fence.take() {
            release_fully(aws, &fence).await;
        }
        return run;
    };
    for number in 1..=MAX_PASSES {
        run.passes = number;
        let outcome = match &plan.writes {
            Writes::Owned { fixes, extras } => {
                let owner = Owner {
                    function,
                    mesh: &common.mesh,
                    tables: plan.tables.as_ref(),
                };
                if let Err(outcome) = set_tags(aws, &extras.tags).await {
                    run.errors.extend(outcome);
                    release_fully(aws, &fence).await;
                    return run;
                }
                if !extras.prefix_lists.is_empty() {
                    let lists = crate::prefix_lists::apply(
                        aws,
                        &fence,
                        &extras.prefix_lists,
                        &request.budget,
                        &request.holder,
                        &common.mesh,
                    )
                    .await;
                    let stopped = !lists.errors.is_empty() || lists.deferred > 0;
                    run.list_steps.extend(lists.applied);
                    run.errors.extend(lists.errors);
                    run.deferred += lists.deferred;
                    if stopped {
                        run.plan = Some(plan.clone());
                        release_fully(aws, &fence).await;
                        return run;
                    }
                }
                apply::apply_owned_with(
                    aws,
                    &fence,
                    owner,
                    fixes,
                    &plan.changes,
                    &request.budget,
                    request.batching,
                )
                .await
            }
            Writes::Moved {
                state,
                unsettled,
                settled,
                lists,
            } => {
                apply::apply_moves(
                    aws,
                    &fence,
                    (function, &run.unit.scope),
                    (state.as_ref(), unsettled.as_ref(), settled.as_ref()),
                    (&plan.changes, lists),
                    plan.tables.as_ref(),
                    &request.budget,
                )
                .await
            }
        };
        if !outcome.applied.is_empty() || !outcome.applied_lists.is_empty() {
            run.last_write_ms = Some(elapsed_ms(request.started));
        }
        reconciler.log(
            &run.unit,
            &plan,
            outcome.applied.len() + outcome.applied_lists.len(),
            false,
        );
        if let Some(n) = &plan.notice
            && !outcome.halted
        {
            let mut applied: Vec<ChangeReport> = outcome.applied.iter().map(ChangeReport::from).collect();
            applied.extend(outcome.applied_lists.iter().cloned());
            let mut fields = n.fields.clone();
            fields.insert("duration_ms".into(), json!(elapsed_ms(request.started)));
            let n = notice::group_decision(
                function,
                &request.label,
                &n.event,
                n.subject.clone(),
                fields,
                &applied,
                &outcome.errors,
            );
            notify::publish(aws, &n).await;
        }
        if number == 1 || plan.headline {
            run.report = plan.report.clone();
        }
        if outcome.halted
            && let (Some(report), Some(e)) = (&mut run.report, outcome.errors.first())
        {
            report.insert("error".into(), json!(e.error));
        }
        let Outcome {
            applied,
            applied_lists,
            errors,
            skipped,
            fenced,
            halted,
            deferred,
        } = outcome;
        run.applied.extend(applied);
        run.applied_lists.extend(applied_lists);
        run.errors.extend(errors);
        run.skipped.extend(skipped);
        if !fenced && !halted && matches!(plan.writes, Writes::Owned { .. }) {
            let scope = &run.unit.scope;
            notify::conflicts_changed(aws, &fence, function, scope, &request.label, &plan.conflicts).await;
            notify::unassociated_changed(aws, &fence, function, scope, &request.label, &plan.unassociated)
                .await;
        }
        let another_stage = matches!(&plan.writes, Writes::Owned { extras, .. } if extras.again);
        run.plan = Some(plan);
        if fenced {
            return run;
        }
        if deferred > 0 {
            run.deferred = deferred;
            tracing::warn!(function, scope = %run.unit.scope, deferred,
                "deadline or lease end reached: the rest is left for the next run");
            if let Err(e) = aws.store.release_leaving_work(&fence).await {
                tracing::warn!(lease = %fence.lease_pk, error = %e, "lease not released; it expires by itself");
            }
            return run;
        }
        if halted {
            release_fully(aws, &fence).await;
            return run;
        }
        let released = if another_stage && number < MAX_PASSES {
            tracing::info!(function, scope = %run.unit.scope, pass = number, "stage applied; planning the next one");
            Ok(Released::WorkPending)
        } else {
            aws.store.release(&fence).await
        };
        match released {
            Ok(Released::Done) => return run,
            Ok(Released::WorkPending) if number < MAX_PASSES => {
                tracing::info!(function, scope = %run.unit.scope, pass = number,
                    "another trigger arrived during the run; reconciling again");
            }
            Ok(Released::WorkPending) => {
                // Enough passes: let go; the schedule picks up what is left.
                release_fully(aws, &fence).await;
                return run;
            }
            Err(e) => {
                run.errors.push(ErrorReport {
                    region: aws.home.to_string(),
                    resource: Some(format!("lease {}", run.unit.scope)),
                    error: e.to_string(),
                    account: None,
                });
                return run;
            }
        }
        if let Err(e) = aws.store.renew(&mut fence, LEASE_TTL_SECS).await {
            run.errors.push(ErrorReport {
                region: aws.home.to_string(),
                resource: Some(format!("lease {}", run.unit.scope)),
                error: e.to_string(),
                account: None,
            });
            return run;
        }
        let pass = Pass {
            number: number + 1,
            request,
            regions: &common.regions,
        };
        plan = match reconciler.plan(aws, &run.unit, &pass).await {
            Ok(plan) => plan,
            Err(e) => {
                run.errors.push(ErrorReport {
                    region: aws.home.to_string(),
                    resource: Some(run.unit.scope.clone()),
                    error: crate::error_chain(&e),
                    account: None,
                });
                release_fully(aws, &fence).await;
                return run;
            }
        };
        let guard = Plan {
            changes: plan.changes.clone(),
            ..Plan::default()
        };
        if let Err(e) = blast_radius(&guard, plan.list_moves().len(), common.max_changes, request.force) {
            let n = notice::plan_refused(
                function,
                &request.label,
                Some(&run.unit.scope),
                &e.to_string(),
                &plan.changes,
            );
            notify::publish(aws, &n).await;
            run.errors.push(ErrorReport {
                region: aws.home.to_string(),
                resource: Some(run.unit.scope.clone()),
                error: e.to_string(),
                account: None,
            });
            release_fully(aws, &fence).await;
            return run;
        }
    }
    release_fully(aws, &fence).await;
    run
}

/// Sends the invocation that continues a run the deadline cut, when a
/// queue is configured and the run made progress (a run that moved nothing
/// would only send the same work round again: the schedule retries it).
async fn follow_up(aws: &Aws, request: &Request, response: &InvokeResponse) -> Option<String> {
    if response.changes.is_empty() {
        return None;
    }
    let payload = json!({
        "dry_run": false,
        "force": request.force,
        "follow_up": {"after": request.holder, "deferred": response.deferred},
    });
    match aws.follow_ups.send(&payload).await {
        Ok(Some(id)) => {
            tracing::info!(function = %response.function, deferred = response.deferred, message_id = %id,
                "follow-up invocation sent to continue at once");
            Some(id)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "follow-up not sent; the schedule picks up what is left");
            None
        }
    }
}

/// The response of a run.
fn finish<K>(
    mut response: InvokeResponse,
    mut runs: Vec<UnitRun<K>>,
    request: &Request,
    started: Instant,
    applied_run: bool,
) -> InvokeResponse {
    runs.sort_by(|a, b| a.unit.scope.cmp(&b.unit.scope));
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    for run in &mut runs {
        changes.extend(run.applied.iter().map(ChangeReport::from));
        changes.extend(run.applied_lists.iter().cloned());
        response.prefix_lists.extend(run.list_steps.iter().cloned());
        if let Some(plan) = &run.plan {
            conflicts.extend(plan.conflicts.iter().cloned());
            response.skipped.extend(plan.skipped.iter().cloned());
            response.errors.extend(plan.errors.iter().cloned());
        }
        response.errors.extend(run.errors.iter().cloned());
        response.skipped.extend(run.skipped.iter().cloned());
        response.deferred += run.deferred;
        response.passes += run.passes;
        if let Some(UnitPlan {
            writes: Writes::Owned { extras, .. },
            ..
        }) = &run.plan
        {
            response.preflight.extend(extras.preflight.iter().cloned());
            if !applied_run {
                response.prefix_lists.extend(extras.prefix_lists.iter().cloned());
            }
            response.adopted.extend(extras.adopted.iter().cloned());
            if response.refused.is_none() {
                response.refused.clone_from(&extras.refused);
            }
        }
        if let Some(mut report) = run.report.take() {
            if report.contains_key("routes_moved") && applied_run {
                report.insert(
                    "routes_moved".into(),
                    json!(run.applied.len() + run.applied_lists.len()),
                );
            }
            if let Some(ms) = run.last_write_ms {
                report.insert("last_write_ms".into(), json!(ms));
            }
            response.groups.push(Value::Object(report));
        }
    }
    if applied_run {
        changes.sort();
        response.changes = changes;
    }
    conflicts.sort();
    conflicts.dedup();
    response.conflicts = conflicts;
    for tables in runs.iter().filter_map(|r| r.plan.as_ref()?.tables.as_ref()) {
        lbgp_core::accounts::name_accounts(&mut response, tables);
    }
    response.errors.sort();
    response.skipped.sort();
    if response.fit(RESPONSE_BUDGET) {
        tracing::warn!(
            changes = response.changes_total.unwrap_or_default(),
            conflicts = response.conflicts_total.unwrap_or_default(),
            "response cut to fit Lambda's 6 MB limit; every change and conflict is in the logs"
        );
    }
    response.locked = runs.iter().any(|r| r.locked_by.is_some());
    // A plan the prefix-list guard refused (`extras.refused`) applied
    // nothing, as its message says.
    let refused = |r: &UnitRun<K>| match &r.plan {
        Some(UnitPlan {
            writes: Writes::Owned { extras, .. },
            ..
        }) => extras.refused.is_some(),
        _ => false,
    };
    response.applied =
        applied_run && !request.dry_run && runs.iter().any(|r| r.plan.is_some() && !refused(r));
    response.duration_ms = elapsed_ms(started);
    tracing::info!(
        function = %response.function,
        trigger = %response.trigger,
        units = runs.len(),
        changes = response.changes.len(),
        conflicts = response.conflicts.len(),
        errors = response.errors.len(),
        deferred = response.deferred,
        passes = response.passes,
        locked = response.locked,
        duration_ms = response.duration_ms,
        "reconcile finished"
    );
    response
}

/// Sets a plan's tags, in order; the errors when one fails (the caller then
/// writes no route).
async fn set_tags(aws: &Aws, tags: &[TagWrite]) -> Result<(), Vec<ErrorReport>> {
    for t in tags {
        let written = match aws.ec2(&t.region) {
            Ok(ec2) => ec2.set_tag(&t.resource, &t.key, &t.value).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                tracing::info!(region = %t.region, resource = %t.resource, key = %t.key, value = %t.value, "tag set");
            }
            Err(e) => {
                tracing::error!(region = %t.region, resource = %t.resource, key = %t.key, error = %e,
                    "tag not set; no route written");
                return Err(vec![ErrorReport {
                    region: t.region.to_string(),
                    resource: Some(t.resource.clone()),
                    error: format!(
                        "{} not set to {}: {}; no route was changed",
                        t.key,
                        t.value,
                        crate::error_chain(&e)
                    ),
                    account: None,
                }]);
            }
        }
    }
    Ok(())
}

/// Releases the lease for a run that is not going to run again. Work
/// other triggers marked pending meanwhile stays marked (released with the
/// mark), so the next run of any trigger knows there is some, and the lease
/// is free for it at once rather than at its expiry.
async fn release_fully(aws: &Aws, fence: &Fence) {
    let released = match aws.store.release(fence).await {
        Ok(Released::Done) => return,
        Ok(Released::WorkPending) => aws.store.release_leaving_work(fence).await,
        Err(e) => Err(e),
    };
    if let Err(e) = released {
        tracing::warn!(lease = %fence.lease_pk, error = %e, "lease not released; it expires by itself");
    }
}

async fn release_all<K>(aws: &Aws, runs: &mut [UnitRun<K>]) {
    join_all(
        runs.iter_mut()
            .filter_map(|r| r.fence.take())
            .map(|fence| async move { release_fully(aws, &fence).await }),
    )
    .await;
}
