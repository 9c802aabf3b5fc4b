//! What the functions share around their reconcile logic: tracing set-up,
//! the invocation error type, and the level-triggered reconcile loop under a
//! lease (read → plan → guard → apply → release, again if work came in).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use async_trait::async_trait;
use lambda_runtime::Diagnostic;
use lbgp_core::config::{CommonConfig, ConfigError};
use lbgp_core::report::{ChangeReport, ConflictReport, ErrorReport, InvokeResponse, SkipReport};
use lbgp_core::trigger::{Classified, MalformedPayload, Subscriptions, Trigger, classify};
use lbgp_core::{DesiredRoute, OwnershipLedger, Plan, Region, Route, RouteTableRef, plan_from_iter};
use serde_json::{Value, json};

use crate::Error;
use crate::apply::{Owner, apply_plan};
use crate::context::Aws;
use crate::store::{Acquired, Released};

/// Seconds a reconcile lease lasts: longer than the function's timeout, so a
/// live holder never loses it, short enough that a crashed one frees it soon.
pub const LEASE_TTL_SECS: u64 = 180;
/// Passes one invocation makes when other runs keep asking for more work.
pub const MAX_PASSES: usize = 5;

/// Sets up JSON logs, one object per line, level from `RUST_LOG` (default
/// `info`). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}

/// Why an invocation failed as a whole. Partial failures (one region, one
/// table) are reported in the response instead.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The payload is neither an event we know nor a valid manual invoke.
    #[error(transparent)]
    Malformed(#[from] MalformedPayload),
    /// The function's environment is invalid; every invocation says so
    /// until it is fixed.
    #[error("invalid configuration: {0}. Fix the function's environment variables")]
    Config(#[source] ConfigError),
    /// AWS could not be reached or answered with an error.
    #[error(transparent)]
    Aws(#[from] Error),
}

impl From<InvokeError> for Diagnostic {
    fn from(e: InvokeError) -> Diagnostic {
        let error_type = match &e {
            InvokeError::Malformed(_) => "lbgp.MalformedPayload.NonRetryable",
            InvokeError::Config(_) => "lbgp.InvalidConfiguration.NonRetryable",
            InvokeError::Aws(Error::Fenced { .. }) => "lbgp.LeaseLost.Retryable",
            InvokeError::Aws(_) => "lbgp.Aws.Retryable",
        };
        tracing::error!(error_type, error = %e, "invocation failed");
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What a reconciler saw: the desired and actual routes of the regions it
/// could read, and what it decided on the way.
#[derive(Debug, Default)]
pub struct Observation {
    /// Routes we want.
    pub desired: Vec<DesiredRoute>,
    /// Routes found, covering every table in `desired` and in the ledger.
    pub actual: Vec<Route>,
    /// Regions read completely: only their ledger entries are planned.
    pub complete_regions: BTreeSet<Region>,
    /// Tables to leave exactly as they are this run (refused, or unreadable).
    pub frozen_tables: BTreeSet<RouteTableRef>,
    /// Conflicts found before planning (overlaps, duplicate origins…).
    pub conflicts: Vec<ConflictReport>,
    /// What was left alone on purpose.
    pub skipped: Vec<SkipReport>,
    /// Regions or tables that failed.
    pub errors: Vec<ErrorReport>,
}

/// One of the route-owning functions (injector, propagator).
#[async_trait]
pub trait Reconciler: Send + Sync {
    /// The function (binary) name: ledger partition and response field.
    fn function(&self) -> &'static str;
    /// The events it acts on.
    fn subscriptions(&self) -> Subscriptions;
    /// The regions to reconcile for a trigger that names `regions`. By
    /// default just those; a function whose routes in one region depend on
    /// every other region widens it.
    fn scope(&self, regions: Vec<Region>) -> Vec<Region> {
        regions
    }
    /// Shared settings.
    fn common(&self) -> &CommonConfig;
    /// Reads `regions` (and whatever else the desired state depends on) and
    /// computes the desired state. `ledger` names tables that must be read
    /// even if nothing is desired in them any more.
    async fn observe(&self, aws: &Aws, regions: &[Region], ledger: &OwnershipLedger) -> Observation;
    /// Tables whose post-plan route count would break a quota, with the
    /// error to report; they are frozen and the plan recomputed.
    fn over_quota(&self, _observation: &Observation, _plan: &Plan) -> BTreeMap<RouteTableRef, String> {
        BTreeMap::new()
    }
}

/// Reads every region at once with `read`. A region that fails is logged,
/// reported in `errors` and left out, so its routes are left as they are
/// while the other regions go on.
pub async fn read_each_region<'r, T, Fut>(
    regions: &'r [Region],
    errors: &mut Vec<ErrorReport>,
    read: impl Fn(&'r Region) -> Fut,
) -> Vec<T>
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let results = futures::future::join_all(regions.iter().map(read)).await;
    let mut views = Vec::new();
    for (region, result) in regions.iter().zip(results) {
        match result {
            Ok(view) => views.push(view),
            Err(e) => {
                tracing::error!(region = %region, error = %e, "region could not be read; its routes are left as they are");
                errors.push(ErrorReport {
                    region: region.to_string(),
                    resource: None,
                    error: e.to_string(),
                });
            }
        }
    }
    views
}

/// Plans from an observation and a ledger, honouring frozen tables and
/// incomplete regions. The routes are borrowed, not copied: at 48,000 routes
/// a copy would double the planner's memory.
pub fn plan_observation(obs: &Observation, ledger: &OwnershipLedger) -> Plan {
    let in_scope =
        |t: &RouteTableRef| obs.complete_regions.contains(&t.region) && !obs.frozen_tables.contains(t);
    plan_from_iter(
        obs.desired.iter().filter(|d| in_scope(&d.key.table)),
        obs.actual.iter().filter(|r| in_scope(&r.key.table)),
        ledger.iter().filter(|e| in_scope(&e.key.table)),
    )
}

/// Handles one invocation of a route-owning function.
pub async fn handle<R: Reconciler>(
    reconciler: &R,
    aws: &Aws,
    payload: &Value,
) -> Result<InvokeResponse, InvokeError> {
    let started = Instant::now();
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
    let (dry_run, force) = match &trigger {
        Trigger::Manual(m) => {
            if m.group.is_some() {
                return Err(MalformedPayload {
                    reason: format!(
                        "{function} has no failover groups; \"group\"/\"activate\" are for failover-watcher"
                    ),
                }
                .into());
            }
            (m.dry_run.unwrap_or(common.dry_run), m.force)
        }
        _ => (common.dry_run, false),
    };
    let regions: Vec<Region> = match &trigger {
        Trigger::ApiCall { region, .. } | Trigger::StateChange { region, .. } => {
            if !common.regions.contains(region) {
                let mut response = InvokeResponse::new(function, trigger.label(), dry_run);
                response.ignored = Some(format!("region {region} is not in LBGP_REGIONS"));
                return Ok(response);
            }
            reconciler.scope(vec![region.clone()])
        }
        _ => common.regions.clone(),
    };
    tracing::info!(function, trigger = %trigger.label(), dry_run, force, regions = ?regions, "reconcile started");
    let mut response = InvokeResponse::new(function, trigger.label(), dry_run);

    if dry_run {
        let ledger = aws.store.load_ledger(function, &common.mesh, &regions).await?;
        let (obs, plan, refused) = observe_and_plan(reconciler, aws, &regions, &ledger).await;
        fill(&mut response, &obs, &plan, &refused);
        if let Err(e) = plan.check_blast_radius(common.max_changes, force) {
            response.refused = Some(e.to_string());
        }
        response.changes = plan.changes.iter().map(ChangeReport::from).collect();
        response.duration_ms = elapsed_ms(started);
        return Ok(response);
    }

    let holder = format!("{function}:{}", uuid_like());
    let fence = match aws
        .store
        .acquire(function, &common.mesh, &holder, LEASE_TTL_SECS)
        .await?
    {
        Acquired::Held(fence) => fence,
        Acquired::Busy { holder: other } => {
            tracing::info!(function, holder = %other, "lease held by another run; work marked pending for it");
            response.locked = true;
            response.duration_ms = elapsed_ms(started);
            return Ok(response);
        }
    };
    let owner = Owner {
        function,
        mesh: &common.mesh,
    };
    let mut scope = regions;
    let mut applied = Vec::new();
    for pass in 1..=MAX_PASSES {
        let ledger = match aws.store.load_ledger(function, &common.mesh, &scope).await {
            Ok(ledger) => ledger,
            Err(e) => {
                // Nothing was planned: free the lease for the next run now
                // rather than when it expires.
                release_fully(aws, &fence, function).await;
                return Err(e.into());
            }
        };
        let (obs, plan, refused) = observe_and_plan(reconciler, aws, &scope, &ledger).await;
        response.changes.clear();
        response.conflicts.clear();
        response.skipped.clear();
        response.errors.clear();
        fill(&mut response, &obs, &plan, &refused);
        if let Err(e) = plan.check_blast_radius(common.max_changes, force) {
            tracing::warn!(
                function,
                changes = plan.changes.len(),
                limit = common.max_changes,
                "plan refused by the blast-radius guard"
            );
            response.refused = Some(e.to_string());
            let _ = aws
                .notifier
                .publish(
                    &format!("lbgp {function}: plan of {} changes refused", plan.changes.len()),
                    &json!({"function": function, "event": "plan_refused", "reason": e.to_string(),
                            "changes": plan.changes.iter().map(ChangeReport::from).collect::<Vec<_>>()}),
                )
                .await;
            release_fully(aws, &fence, function).await;
            break;
        }
        let report = apply_plan(aws, &fence, owner, &plan).await;
        applied.extend(report.applied.iter().map(ChangeReport::from));
        response.errors.extend(report.errors);
        if report.fenced {
            break;
        }
        notify_conflicts(aws, &fence, function, &common.mesh, &response.conflicts).await;
        match aws.store.release(&fence).await {
            Ok(Released::Done) => break,
            Ok(Released::WorkPending) if pass < MAX_PASSES => {
                tracing::info!(
                    function,
                    pass,
                    "another trigger arrived during the run; reconciling again"
                );
                scope = common.regions.clone();
            }
            Ok(Released::WorkPending) => {
                // Enough passes: let go; the schedule picks up what is left.
                release_fully(aws, &fence, function).await;
                break;
            }
            Err(e) => {
                response.errors.push(ErrorReport {
                    region: aws.home.to_string(),
                    resource: Some("lease".to_owned()),
                    error: e.to_string(),
                });
                break;
            }
        }
    }
    applied.sort();
    response.applied = response.refused.is_none();
    response.changes = applied;
    if !response.changes.is_empty() {
        let _ = aws
            .notifier
            .publish(
                &format!(
                    "lbgp {function}: {} route changes applied",
                    response.changes.len()
                ),
                &json!({"function": function, "event": "plan_applied", "trigger": response.trigger,
                        "changes": response.changes, "errors": response.errors}),
            )
            .await;
    }
    response.duration_ms = elapsed_ms(started);
    tracing::info!(
        function,
        changes = response.changes.len(),
        conflicts = response.conflicts.len(),
        errors = response.errors.len(),
        duration_ms = response.duration_ms,
        "reconcile finished"
    );
    Ok(response)
}

async fn observe_and_plan<R: Reconciler>(
    reconciler: &R,
    aws: &Aws,
    regions: &[Region],
    ledger: &OwnershipLedger,
) -> (Observation, Plan, BTreeMap<RouteTableRef, String>) {
    let mut obs = reconciler.observe(aws, regions, ledger).await;
    let mut plan = plan_observation(&obs, ledger);
    let refused = reconciler.over_quota(&obs, &plan);
    if !refused.is_empty() {
        obs.frozen_tables.extend(refused.keys().cloned());
        plan = plan_observation(&obs, ledger);
    }
    (obs, plan, refused)
}

fn fill(
    response: &mut InvokeResponse,
    obs: &Observation,
    plan: &Plan,
    refused: &BTreeMap<RouteTableRef, String>,
) {
    let mut conflicts: BTreeSet<ConflictReport> = obs.conflicts.iter().cloned().collect();
    conflicts.extend(plan.conflicts.iter().map(ConflictReport::from));
    response.conflicts = conflicts.into_iter().collect();
    response.skipped = obs.skipped.clone();
    response.errors = obs.errors.clone();
    for (table, error) in refused {
        response.errors.push(ErrorReport {
            region: table.region.to_string(),
            resource: Some(table.id.clone()),
            error: error.clone(),
        });
    }
    for conflict in &response.conflicts {
        tracing::warn!(
            region = %conflict.region,
            route_table_id = conflict.route_table_id.as_deref().unwrap_or("-"),
            destination = %conflict.destination,
            held_by = ?conflict.held_by,
            reason = %conflict.reason,
            "conflict: route not installed"
        );
    }
}

/// Publishes the conflicts when their set changed since the last run, and
/// remembers the set: one message per change, not one per run.
async fn notify_conflicts(
    aws: &Aws,
    fence: &crate::store::Fence,
    function: &str,
    mesh: &str,
    conflicts: &[ConflictReport],
) {
    let current = json!(conflicts);
    let previous = aws
        .store
        .load_state(function, mesh, "conflicts")
        .await
        .ok()
        .flatten();
    if previous.as_ref() == Some(&current) || (previous.is_none() && conflicts.is_empty()) {
        return;
    }
    if aws
        .store
        .save_state(fence, function, mesh, "conflicts", &current)
        .await
        .is_ok()
    {
        let _ = aws
            .notifier
            .publish(
                &format!("lbgp {function}: {} conflicting routes", conflicts.len()),
                &json!({"function": function, "event": "conflicts_changed", "conflicts": conflicts}),
            )
            .await;
    }
}

/// Releases the lease even if work was marked pending (the caller is not
/// going to run again).
async fn release_fully(aws: &Aws, fence: &crate::store::Fence, function: &str) {
    for _ in 0..2 {
        match aws.store.release(fence).await {
            Ok(Released::Done) => return,
            Ok(Released::WorkPending) => continue,
            Err(e) => {
                tracing::warn!(function, error = %e, "lease not released; it expires by itself");
                return;
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A run identifier unique enough for lease holders: time and process id.
pub fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{:x}-{n}", std::process::id(), nanos)
}

/// A route-owning function: its reconciler and clients, built once per
/// process. A bad configuration does not stop the process: every
/// invocation answers with the error, so it shows in the caller's response
/// and logs instead of a crash loop.
pub struct App<R> {
    state: Result<(R, Aws), String>,
}

impl<R: Reconciler> App<R> {
    /// Parses the configuration with `build` and creates clients from the
    /// environment.
    pub async fn from_env(build: impl FnOnce() -> Result<R, ConfigError>) -> App<R> {
        let reconciler = match build() {
            Ok(r) => r,
            Err(e) => {
                let e = InvokeError::Config(e);
                tracing::error!(error = %e, "invalid configuration");
                return App::misconfigured(e);
            }
        };
        match Aws::from_env(reconciler.common()).await {
            Ok(aws) => App::new(reconciler, aws),
            Err(e) => App::misconfigured(InvokeError::Aws(e)),
        }
    }

    /// An app over a given reconciler and clients.
    pub fn new(reconciler: R, aws: Aws) -> App<R> {
        App {
            state: Ok((reconciler, aws)),
        }
    }

    /// An app that answers every invocation with `error`.
    pub fn misconfigured(error: InvokeError) -> App<R> {
        App {
            state: Err(error.to_string()),
        }
    }

    /// Handles one invocation.
    pub async fn handle(&self, payload: Value) -> Result<InvokeResponse, Diagnostic> {
        match &self.state {
            Ok((reconciler, aws)) => handle(reconciler, aws, &payload).await.map_err(Into::into),
            Err(message) => Err(Diagnostic {
                error_type: "lbgp.InvalidConfiguration.NonRetryable".to_owned(),
                error_message: message.clone(),
            }),
        }
    }
}
