//! failover-watcher: keeps the VPC routes of each failover group of router
//! instances (`lbgp:failover-group=<name>`) on the group's best healthy
//! member, moves them at once when that member fails, and back after
//! `LBGP_FAILBACK_AFTER_SECONDS` of uninterrupted health.
//!
//! The decisions are [`lbgp_core::failover::decide`]'s; this crate reads
//! EC2, holds one lease per group (`lease#failover-watcher#<region>#<group>`)
//! so concurrent runs never issue conflicting replaces, writes the group's
//! state (fenced) *before* repointing routes, repoints them one
//! `ReplaceRoute` each, and notifies. Unlike the injector and propagator it
//! keeps no ownership ledger: the routes are the user's, it only moves them.
//!
//! The handler is [`App::handle`]; the logic is [`Watcher::handle`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::future::join_all;
use lambda_runtime::Diagnostic;
use lbgp_aws::Error;
use lbgp_aws::apply::write_per_region;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{Instance, RouteTableQuery, StatusChecks, WriteOutcome};
use lbgp_aws::runtime::{InvokeError, LEASE_TTL_SECS, MAX_PASSES, uuid_like};
use lbgp_aws::store::{Acquired, Fence, Released};
use lbgp_core::config::{Env, WatcherConfig};
use lbgp_core::failover::{
    DecideError, DecideInput, Decision, DecisionKind, FailoverMode, Group, GroupState, GroupTable,
    InstanceFacts, MemberEvent, TAG_GROUP, TableRoute, decide, groups_from_instances, table_zone,
};
use lbgp_core::report::{ChangeReport, ErrorReport, InvokeResponse, SkipReport};
use lbgp_core::trigger::{Classified, Subscriptions, Trigger, classify};
use lbgp_core::{Change, Plan, Region, RouteTableRef, TableKind};
use serde_json::{Value, json};

/// The binary and function name.
pub const FUNCTION: &str = "failover-watcher";

/// CloudTrail events that can put a managed route out of place.
pub const API_CALLS: &[&str] = &["CreateRoute", "ReplaceRoute", "DeleteRoute"];

/// The events the watcher acts on.
pub const SUBSCRIPTIONS: Subscriptions = Subscriptions {
    api_calls: API_CALLS,
    state_changes: true,
};

/// Name of a group's state record (`state#failover-watcher#<region>#<group>`).
pub const STATE_RECORD: &str = "state";

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// Malformed payload, bad configuration, or AWS unreachable.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The operator's switch names an instance that cannot take the routes.
    #[error(transparent)]
    Activate(DecideError),
    /// The operator's switch names a group or member that does not exist.
    #[error(
        "activate refused: no failover group {group:?} with member {instance} in LBGP_REGIONS ({regions}); nothing changed"
    )]
    UnknownGroup {
        /// The group asked for.
        group: String,
        /// The instance asked for.
        instance: String,
        /// The regions searched.
        regions: String,
    },
}

impl From<Error> for WatcherError {
    fn from(e: Error) -> Self {
        WatcherError::Invoke(InvokeError::Aws(e))
    }
}

impl From<WatcherError> for Diagnostic {
    fn from(e: WatcherError) -> Diagnostic {
        match e {
            WatcherError::Invoke(e) => e.into(),
            refused => {
                let error_type = "lbgp.ActivateRefused.NonRetryable";
                tracing::error!(error_type, error = %refused, "invocation refused");
                Diagnostic {
                    error_type: error_type.to_owned(),
                    error_message: refused.to_string(),
                }
            }
        }
    }
}

/// The watcher's logic.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// Its configuration.
    pub config: WatcherConfig,
}

/// Which groups a run evaluates.
#[derive(Debug, Clone)]
enum Focus {
    /// Every group of every region in scope.
    All,
    /// The group of an instance whose state changed.
    Instance(MemberEvent),
    /// The groups in the VPC of a route table that changed (every group of
    /// the region when the event does not say which table).
    Table(Option<String>),
    /// An operator's switch.
    Activate { group: String, instance: String },
}

/// What one region looks like to the watcher.
#[derive(Debug, Default)]
struct RegionView {
    groups: Vec<Group>,
    tables: Vec<GroupTable>,
}

/// One group through one invocation.
#[derive(Debug)]
struct GroupRun {
    region: Region,
    name: String,
    /// The VPC as discovery saw it (for reports when nothing else is known).
    vpc: Option<String>,
    fence: Option<Fence>,
    locked_by: Option<String>,
    before: GroupState,
    decision: Option<Decision>,
    warnings: Vec<String>,
    error: Option<String>,
    /// Routes repointed, over every pass.
    applied: Vec<Change>,
    errors: Vec<ErrorReport>,
    skipped: Vec<SkipReport>,
    routes_moved: usize,
}

impl GroupRun {
    fn new(region: Region, name: String, vpc: Option<String>) -> Self {
        GroupRun {
            region,
            name,
            vpc,
            fence: None,
            locked_by: None,
            before: GroupState::default(),
            decision: None,
            warnings: vec![],
            error: None,
            applied: vec![],
            errors: vec![],
            skipped: vec![],
            routes_moved: 0,
        }
    }

    fn scope(&self) -> String {
        format!("{}#{}", self.region, self.name)
    }

    fn fail(&mut self, error: String) {
        tracing::error!(group = %self.name, region = %self.region, error = %error, "group not evaluated");
        self.errors.push(ErrorReport {
            region: self.region.to_string(),
            resource: Some(format!("failover group {}", self.name)),
            error: error.clone(),
        });
        self.error = Some(error);
    }

    /// The group's entry of the response (public contract: `group`, `vpc`,
    /// `active`, `decision`).
    fn entry(&self) -> Value {
        let mut entry = serde_json::Map::new();
        entry.insert("group".into(), json!(self.name));
        entry.insert("region".into(), json!(self.region));
        match &self.decision {
            Some(d) => {
                entry.insert("vpc".into(), json!(d.vpc_id));
                entry.insert("mode".into(), json!(d.mode));
                entry.insert("active".into(), json!(d.active));
                entry.insert("previous".into(), json!(d.previous));
                entry.insert("decision".into(), json!(d.kind));
                entry.insert("reason".into(), json!(d.reason));
                entry.insert("route_tables".into(), json!(d.targets));
                entry.insert("routes_managed".into(), json!(d.managed_routes));
                entry.insert("routes_moved".into(), json!(self.routes_moved));
                entry.insert("members".into(), json!(d.members));
                if let Some(p) = &d.pending_failback {
                    entry.insert("failback_pending".into(), json!(p));
                }
            }
            None => {
                entry.insert("vpc".into(), json!(self.vpc));
                entry.insert("active".into(), json!(self.before.active));
                let (kind, reason) = match &self.locked_by {
                    Some(holder) => (
                        DecisionKind::Locked,
                        format!(
                            "another run ({holder}) holds the group's lease; it evaluates the group again before letting go"
                        ),
                    ),
                    None => (DecisionKind::None, "not evaluated".to_owned()),
                };
                entry.insert("decision".into(), json!(kind));
                entry.insert("reason".into(), json!(reason));
                entry.insert("routes_moved".into(), json!(0));
            }
        }
        if !self.warnings.is_empty() {
            entry.insert("warnings".into(), json!(self.warnings));
        }
        if let Some(e) = &self.error {
            entry.insert("error".into(), json!(e));
        }
        Value::Object(entry)
    }
}

fn facts(i: &Instance, checks: Option<&StatusChecks>) -> InstanceFacts {
    InstanceFacts {
        id: i.id.clone(),
        vpc_id: i.vpc_id.clone(),
        availability_zone: i.availability_zone.clone(),
        state: i.state.clone(),
        primary_interface_id: i.primary_interface_id.clone(),
        interface_ids: i.interface_ids.clone(),
        tags: i.tags.clone(),
        instance_impaired: checks.is_some_and(|c| c.instance_impaired),
        system_impaired: checks.is_some_and(|c| c.system_impaired),
    }
}

fn group_name(i: &Instance) -> Option<&str> {
    i.tags.get(TAG_GROUP).map(|n| n.trim()).filter(|n| !n.is_empty())
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Watcher {
    /// Handles one invocation.
    pub async fn handle(&self, aws: &Aws, payload: &Value) -> Result<InvokeResponse, WatcherError> {
        let started = Instant::now();
        let common = &self.config.common;
        let trigger = match classify(payload, SUBSCRIPTIONS).map_err(InvokeError::from)? {
            Classified::Ignore { reason } => {
                tracing::info!(function = FUNCTION, reason = %reason, "event ignored");
                let mut response = InvokeResponse::new(FUNCTION, "ignored", true);
                response.ignored = Some(reason);
                return Ok(response);
            }
            Classified::Handle(trigger) => trigger,
        };
        let label = trigger.label();
        let (dry_run, force, focus, region) = match &trigger {
            Trigger::Manual(m) => {
                let focus = match (&m.group, &m.activate) {
                    (Some(group), Some(instance)) => Focus::Activate {
                        group: group.clone(),
                        instance: instance.clone(),
                    },
                    _ => Focus::All,
                };
                (m.dry_run.unwrap_or(common.dry_run), m.force, focus, None)
            }
            Trigger::Scheduled => (common.dry_run, false, Focus::All, None),
            Trigger::StateChange {
                region,
                instance_id,
                state,
            } => (
                common.dry_run,
                false,
                Focus::Instance(MemberEvent {
                    instance_id: instance_id.clone(),
                    state: *state,
                }),
                Some(region),
            ),
            Trigger::ApiCall { region, request, .. } => (
                common.dry_run,
                false,
                Focus::Table(
                    request
                        .get("routeTableId")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                ),
                Some(region),
            ),
        };
        let mut response = InvokeResponse::new(FUNCTION, label.clone(), dry_run);
        let regions: Vec<Region> = match region {
            Some(r) if !common.regions.contains(r) => {
                response.ignored = Some(format!("region {r} is not in LBGP_REGIONS"));
                return Ok(response);
            }
            Some(r) => vec![r.clone()],
            None => common.regions.clone(),
        };
        tracing::info!(function = FUNCTION, trigger = %label, dry_run, force, regions = ?regions, "run started");

        // Which groups: a cheap read of the router instances per region.
        let found = join_all(regions.iter().map(|r| discover(aws, r, &focus))).await;
        let mut runs: Vec<GroupRun> = Vec::new();
        let mut seen: BTreeMap<Region, Vec<Instance>> = BTreeMap::new();
        for (region, result) in regions.iter().zip(found) {
            match result {
                Ok((groups, instances)) => {
                    runs.extend(
                        groups
                            .into_iter()
                            .map(|(name, vpc)| GroupRun::new(region.clone(), name, vpc)),
                    );
                    seen.insert(region.clone(), instances);
                }
                Err(e) => {
                    tracing::error!(region = %region, error = %e, "region could not be read; its groups are left as they are");
                    response.errors.push(ErrorReport {
                        region: region.to_string(),
                        resource: None,
                        error: e.to_string(),
                    });
                }
            }
        }
        if runs.is_empty() && response.errors.is_empty() {
            let ignored = match &focus {
                Focus::Activate { group, instance } => {
                    return Err(WatcherError::UnknownGroup {
                        group: group.clone(),
                        instance: instance.clone(),
                        regions: regions
                            .iter()
                            .map(Region::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                Focus::Instance(event) => {
                    Some(format!("instance {} is in no failover group", event.instance_id))
                }
                Focus::Table(Some(rtb)) => {
                    Some(format!("route table {rtb} is not in the VPC of a failover group"))
                }
                Focus::Table(None) | Focus::All => None,
            };
            if let Some(reason) = ignored {
                tracing::info!(function = FUNCTION, reason = %reason, "event ignored");
                response.ignored = Some(reason);
                response.duration_ms = elapsed_ms(started);
                return Ok(response);
            }
        }

        // Leases first, then a fresh read: what we decide on is what the
        // previous holder left, never a view from before it wrote.
        if !dry_run {
            let holder = format!("{FUNCTION}:{}", uuid_like());
            let holder = holder.as_str();
            let results = join_all(runs.iter().map(|r| {
                let scope = r.scope();
                async move { aws.store.acquire(FUNCTION, &scope, holder, LEASE_TTL_SECS).await }
            }))
            .await;
            let mut failure = None;
            for (run, result) in runs.iter_mut().zip(results) {
                match result {
                    Ok(Acquired::Held(fence)) => run.fence = Some(fence),
                    Ok(Acquired::Busy { holder }) => {
                        tracing::info!(group = %run.name, region = %run.region, holder = %holder,
                            "lease held by another run; work marked pending for it");
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

        let (views, states) = futures::join!(
            observe_regions(aws, &runs, dry_run, &seen),
            join_all(runs.iter().map(|r| load_state(aws, r)))
        );
        let now = aws.store.clock().now();
        for (run, state) in runs.iter_mut().zip(states) {
            match state {
                Ok((state, warning)) => {
                    run.before = state;
                    run.warnings.extend(warning);
                }
                Err(e) => run.fail(e.to_string()),
            }
        }
        let mut refusal = None;
        for run in runs
            .iter_mut()
            .filter(|r| r.locked_by.is_none() && r.error.is_none())
        {
            let view = match views.get(&run.region) {
                Some(Ok(view)) => view,
                Some(Err(e)) => {
                    run.fail(e.clone());
                    continue;
                }
                None => continue,
            };
            let Some(group) = view.groups.iter().find(|g| g.name == run.name) else {
                // Gone between the two reads (untagged, terminated and gone).
                run.fail("the group's members disappeared during the run".to_owned());
                continue;
            };
            run.warnings.extend(group.warnings.iter().cloned());
            let input = DecideInput {
                now,
                policy: self.config.failback,
                event: match &focus {
                    Focus::Instance(event) => Some(event.clone()),
                    _ => None,
                },
                activate: match &focus {
                    Focus::Activate { group, instance } if group == &run.name => Some(instance.clone()),
                    _ => None,
                },
            };
            match decide(group, &view.tables, &run.before, &input) {
                Ok(decision) => run.decision = Some(decision),
                Err(e @ DecideError::SpansVpcs { .. }) => run.fail(e.to_string()),
                Err(e) => {
                    refusal = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = refusal {
            release_all(aws, &mut runs).await;
            return Err(WatcherError::Activate(e));
        }

        // The blast-radius guard covers the whole run.
        let planned: Vec<Change> = runs
            .iter()
            .filter_map(|r| r.decision.as_ref())
            .flat_map(|d| d.moves.iter().cloned())
            .collect();
        let plan = Plan {
            changes: planned,
            ..Default::default()
        };
        let refused = plan.check_blast_radius(common.max_changes, force).err();
        if dry_run || refused.is_some() {
            // Sorted like the changes of an apply, so the two compare equal.
            let mut planned: Vec<ChangeReport> = plan.changes.iter().map(ChangeReport::from).collect();
            planned.sort();
            if let Some(e) = &refused {
                tracing::warn!(
                    changes = plan.changes.len(),
                    limit = common.max_changes,
                    "plan refused by the blast-radius guard"
                );
                response.refused = Some(e.to_string());
                if !dry_run {
                    release_all(aws, &mut runs).await;
                    publish(
                        aws,
                        &format!("lbgp {FUNCTION}: plan of {} changes refused", plan.changes.len()),
                        &json!({"function": FUNCTION, "event": "plan_refused", "trigger": label,
                                "reason": e.to_string(), "changes": planned}),
                    )
                    .await;
                    for run in runs
                        .iter_mut()
                        .filter(|r| r.decision.as_ref().is_some_and(|d| !d.moves.is_empty()))
                    {
                        run.error = Some(e.to_string());
                    }
                }
            }
            for run in &runs {
                if let Some(d) = &run.decision {
                    log_decision(run, d, d.moves.len(), dry_run || refused.is_some());
                }
            }
            if dry_run {
                response.changes = planned;
            }
            return Ok(finish(response, runs, false, started));
        }

        let applied_any = runs.iter().any(|r| r.decision.is_some());
        let runs = join_all(
            runs.into_iter()
                .map(|run| self.apply_group(aws, run, force, &label, started)),
        )
        .await;
        Ok(finish(response, runs, applied_any, started))
    }

    /// Applies a group's decision under its lease, then evaluates the group
    /// again as long as other runs asked for it while we held the lease.
    async fn apply_group(
        &self,
        aws: &Aws,
        mut run: GroupRun,
        force: bool,
        trigger: &str,
        started: Instant,
    ) -> GroupRun {
        let Some(fence) = run.fence.clone() else {
            return run;
        };
        let Some(mut decision) = run.decision.take() else {
            release_fully(aws, &fence).await;
            return run;
        };
        let mut first = true;
        for pass in 1..=MAX_PASSES {
            // Write-ahead: the new active member is recorded (fenced) before
            // any route moves, so a run that lost its lease moves nothing and
            // a crash half-way is repaired as drift by the next run.
            if decision.state_changed(&run.before) {
                let saved = match serde_json::to_value(&decision.state) {
                    Ok(body) => {
                        aws.store
                            .save_state(&fence, FUNCTION, &run.scope(), STATE_RECORD, &body)
                            .await
                    }
                    Err(e) => Err(Error::Unexpected {
                        operation: "serialize state",
                        region: run.region.to_string(),
                        detail: e.to_string(),
                    }),
                };
                if let Err(e) = saved {
                    let fenced = matches!(e, Error::Fenced { .. });
                    run.fail(e.to_string());
                    record(&mut run, decision, first);
                    if !fenced {
                        release_fully(aws, &fence).await;
                    }
                    return run;
                }
            }
            let (applied, errors, skipped) = repoint(aws, &decision.moves).await;
            log_decision(&run, &decision, applied.len(), false);
            if decision.notify {
                notify(aws, &run, &decision, &applied, &errors, trigger, started).await;
            }
            run.routes_moved += applied.len();
            run.applied.extend(applied);
            run.errors.extend(errors);
            run.skipped.extend(skipped);
            run.before = decision.state.clone();
            record(&mut run, decision, first);
            first = false;

            match aws.store.release(&fence).await {
                Ok(Released::Done) => return run,
                Ok(Released::WorkPending) if pass < MAX_PASSES => {
                    tracing::info!(group = %run.name, region = %run.region, pass,
                        "another trigger arrived during the run; evaluating the group again");
                }
                Ok(Released::WorkPending) => {
                    // Enough passes: the schedule picks up what is left.
                    release_fully(aws, &fence).await;
                    return run;
                }
                Err(e) => {
                    run.errors.push(ErrorReport {
                        region: aws.home.to_string(),
                        resource: Some(format!("lease {}", run.scope())),
                        error: e.to_string(),
                    });
                    return run;
                }
            }
            match self.reevaluate(aws, &run, force).await {
                Ok(Some(next)) => decision = next,
                Ok(None) => {
                    release_fully(aws, &fence).await;
                    return run;
                }
                Err(e) => {
                    run.errors.push(ErrorReport {
                        region: run.region.to_string(),
                        resource: Some(format!("failover group {}", run.name)),
                        error: e,
                    });
                    release_fully(aws, &fence).await;
                    return run;
                }
            }
        }
        release_fully(aws, &fence).await;
        run
    }

    /// A fresh decision for a group whose lease we still hold. `Ok(None)`:
    /// the group is gone.
    async fn reevaluate(&self, aws: &Aws, run: &GroupRun, force: bool) -> Result<Option<Decision>, String> {
        let names = BTreeSet::from([run.name.clone()]);
        let view = observe(aws, &run.region, &names, &[])
            .await
            .map_err(|e| e.to_string())?;
        let Some(group) = view.groups.iter().find(|g| g.name == run.name) else {
            return Ok(None);
        };
        let (state, _) = load_state(aws, run).await.map_err(|e| e.to_string())?;
        let input = DecideInput {
            now: aws.store.clock().now(),
            policy: self.config.failback,
            event: None,
            activate: None,
        };
        let decision = decide(group, &view.tables, &state, &input).map_err(|e| e.to_string())?;
        let plan = Plan {
            changes: decision.moves.clone(),
            ..Default::default()
        };
        if let Err(e) = plan.check_blast_radius(self.config.common.max_changes, force) {
            let planned: Vec<ChangeReport> = plan.changes.iter().map(ChangeReport::from).collect();
            publish(
                aws,
                &format!("lbgp {FUNCTION}: plan of {} changes refused", plan.changes.len()),
                &json!({"function": FUNCTION, "event": "plan_refused", "group": run.name,
                        "region": run.region, "reason": e.to_string(), "changes": planned}),
            )
            .await;
            return Err(e.to_string());
        }
        Ok(Some(decision))
    }
}

/// Keeps the decision that tells the story: the first, or a later pass that
/// changed members.
fn record(run: &mut GroupRun, decision: Decision, first: bool) {
    if first || decision.kind != DecisionKind::None {
        run.decision = Some(decision);
    }
}

/// What discovery found in one region: the groups a run looks at, as
/// `(name, vpc)`, and the group members it read on the way.
type Discovered = (Vec<(String, Option<String>)>, Vec<Instance>);

/// Finds the groups a run looks at in one region.
async fn discover(aws: &Aws, region: &Region, focus: &Focus) -> Result<Discovered, Error> {
    let ec2 = aws.ec2(region)?;
    let instances = ec2.failover_instances().await?;
    let all: Vec<InstanceFacts> = instances.iter().map(|i| facts(i, None)).collect();
    let groups = groups_from_instances(&all);
    let table_vpc = match focus {
        Focus::Table(Some(rtb)) if !groups.is_empty() => {
            let tables = ec2
                .vpc_route_tables(RouteTableQuery::Ids(&[rtb.as_str()]))
                .await?;
            match tables.into_iter().next() {
                Some(t) => Some(t.vpc_id),
                None => return Ok((vec![], instances)),
            }
        }
        _ => None,
    };
    let groups = groups
        .into_iter()
        .filter(|g| match focus {
            Focus::All | Focus::Table(None) => true,
            Focus::Instance(event) => g.member(&event.instance_id).is_some(),
            Focus::Activate { group, instance } => &g.name == group && g.member(instance).is_some(),
            Focus::Table(Some(_)) => g
                .members
                .iter()
                .any(|m| m.vpc_id.is_some() && m.vpc_id == table_vpc),
        })
        .map(|g| {
            let vpc = g.vpc().ok().flatten();
            (g.name, vpc)
        })
        .collect();
    Ok((groups, instances))
}

/// Reads the regions of the groups this run decides, after their leases.
async fn observe_regions(
    aws: &Aws,
    runs: &[GroupRun],
    dry_run: bool,
    seen: &BTreeMap<Region, Vec<Instance>>,
) -> BTreeMap<Region, Result<RegionView, String>> {
    let mut wanted: BTreeMap<Region, BTreeSet<String>> = BTreeMap::new();
    for run in runs.iter().filter(|r| dry_run || r.fence.is_some()) {
        wanted
            .entry(run.region.clone())
            .or_default()
            .insert(run.name.clone());
    }
    let views = join_all(wanted.iter().map(|(region, names)| {
        let known = seen.get(region).map_or(&[][..], Vec::as_slice);
        observe(aws, region, names, known)
    }))
    .await;
    wanted
        .into_keys()
        .zip(views)
        .map(|(region, view)| {
            let view = view.map_err(|e| {
                tracing::error!(region = %region, error = %e, "region could not be read; its groups are left as they are");
                e.to_string()
            });
            (region, view)
        })
        .collect()
}

/// The members of the named groups in a list of instances: their ids, their
/// VPCs, and whether any group places routes by zone.
struct Members<'a> {
    ids: BTreeSet<&'a str>,
    vpcs: BTreeSet<&'a str>,
    by_zone: bool,
}

impl<'a> Members<'a> {
    fn of(instances: &'a [Instance], names: &BTreeSet<String>) -> Members<'a> {
        let members: Vec<&Instance> = instances
            .iter()
            .filter(|i| group_name(i).is_some_and(|n| names.contains(n)))
            .collect();
        let facts: Vec<InstanceFacts> = members.iter().map(|i| facts(i, None)).collect();
        Members {
            ids: members.iter().map(|i| i.id.as_str()).collect(),
            vpcs: members.iter().filter_map(|i| i.vpc_id.as_deref()).collect(),
            by_zone: groups_from_instances(&facts)
                .iter()
                .any(|g| g.mode == FailoverMode::Az),
        }
    }
}

/// Members with their status checks, and every route table of their VPCs.
///
/// The reads that depend on the members (status checks, route tables, subnet
/// zones) go out together with the fresh read of the members, for the
/// members in `known` (what discovery read a moment earlier); whatever the
/// fresh read shows that `known` did not have is read after it. So a
/// failover waits for one round trip of reads here, not three, and still
/// decides on members read after its lease.
async fn observe(
    aws: &Aws,
    region: &Region,
    names: &BTreeSet<String>,
    known: &[Instance],
) -> Result<RegionView, Error> {
    let ec2 = aws.ec2(region)?;
    let guess = Members::of(known, names);
    let guessed_ids: Vec<&str> = guess.ids.iter().copied().collect();
    let guessed_vpcs: Vec<&str> = guess.vpcs.iter().copied().collect();
    let (instances, guessed_checks, tables, zones) = futures::join!(
        ec2.failover_instances(),
        ec2.status_checks(&guessed_ids),
        ec2.vpc_route_tables(RouteTableQuery::Vpcs(&guessed_vpcs)),
        async {
            if guess.by_zone {
                ec2.vpc_subnet_zones(&guessed_vpcs).await
            } else {
                Ok(BTreeMap::new())
            }
        },
    );
    let (instances, mut tables, mut zones) = (instances?, tables?, zones?);
    let instances: Vec<Instance> = instances
        .into_iter()
        .filter(|i| group_name(i).is_some_and(|n| names.contains(n)))
        .collect();
    let fresh = Members::of(&instances, names);

    // Status checks by id fail whole when one id no longer exists (a member
    // gone since discovery): then they are read again for the fresh ids.
    let (mut checks, checked) = match guessed_checks {
        Ok(checks) => (checks, guess.ids.clone()),
        Err(e) => {
            tracing::warn!(region = %region, error = %e, "status checks of the members discovery saw failed; reading them again for the members found now");
            (BTreeMap::new(), BTreeSet::new())
        }
    };
    let new_ids: Vec<&str> = fresh.ids.difference(&checked).copied().collect();
    let new_vpcs: Vec<&str> = fresh.vpcs.difference(&guess.vpcs).copied().collect();
    let (more_checks, more_tables) = futures::try_join!(
        ec2.status_checks(&new_ids),
        ec2.vpc_route_tables(RouteTableQuery::Vpcs(&new_vpcs)),
    )?;
    checks.extend(more_checks);
    tables.extend(more_tables);
    // Only the tables of the members' VPCs now: a VPC that lost its last
    // member since discovery is none of this run's business.
    tables.retain(|t| fresh.vpcs.contains(t.vpc_id.as_str()));
    if fresh.by_zone {
        let unknown: BTreeSet<&str> = tables
            .iter()
            .flat_map(|t| t.subnet_ids.iter().map(String::as_str))
            .filter(|s| !zones.contains_key(*s))
            .collect();
        let more_zones = ec2.subnet_zones(&unknown.into_iter().collect::<Vec<_>>()).await?;
        zones.extend(more_zones);
    }

    let all: Vec<InstanceFacts> = instances.iter().map(|i| facts(i, checks.get(&i.id))).collect();
    let groups = groups_from_instances(&all);
    let tables = tables
        .into_iter()
        .map(|t| GroupTable {
            table: RouteTableRef {
                region: region.clone(),
                kind: TableKind::Vpc,
                id: t.id.clone(),
            },
            zone: table_zone(t.main, &t.subnet_ids, &zones),
            vpc_id: t.vpc_id,
            routes: t
                .routes
                .into_iter()
                .map(|r| TableRoute {
                    route: r.route,
                    instance_id: r.instance_id,
                    network_interface_id: r.network_interface_id,
                })
                .collect(),
        })
        .collect();
    Ok(RegionView { groups, tables })
}

/// The group's state, or a fresh one (with a warning) when the record is
/// unreadable: deciding from the routes beats not deciding.
async fn load_state(aws: &Aws, run: &GroupRun) -> Result<(GroupState, Option<String>), Error> {
    let Some(body) = aws.store.load_state(FUNCTION, &run.scope(), STATE_RECORD).await? else {
        return Ok((GroupState::default(), None));
    };
    match serde_json::from_value::<GroupState>(body) {
        Ok(state) => Ok((state, None)),
        Err(e) => {
            let warning = format!("state record unreadable ({e}); the group was evaluated from its routes");
            tracing::warn!(group = %run.name, region = %run.region, warning = %warning, "state reset");
            Ok((GroupState::default(), Some(warning)))
        }
    }
}

/// One `ReplaceRoute` per move, every table concurrently: a burst's worth in
/// flight per region, the token bucket keeping the pace within EC2's limits.
async fn repoint(aws: &Aws, moves: &[Change]) -> (Vec<Change>, Vec<ErrorReport>, Vec<SkipReport>) {
    let outcomes: Vec<(Change, Result<WriteOutcome, Error>)> =
        write_per_region(aws, moves, |change| async move {
            let result = match aws.ec2(&change.key.table.region) {
                Ok(ec2) => ec2.replace_route(&change.key, &change.target).await,
                Err(e) => Err(e),
            };
            (change.clone(), result)
        })
        .await;
    let (mut applied, mut errors, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (change, result) in outcomes {
        let table = &change.key.table;
        match result {
            Ok(WriteOutcome::Applied | WriteOutcome::AlreadyExists) => {
                tracing::info!(region = %table.region, route_table_id = %table.id,
                    destination = %change.key.destination, target = %change.target,
                    previous = %change.previous.as_ref().map(ToString::to_string).unwrap_or_default(),
                    reason = %change.reason, "route repointed");
                applied.push(change);
            }
            Ok(WriteOutcome::NotFound) => {
                // The user deleted the route meanwhile: it is theirs, not ours
                // to re-create.
                tracing::warn!(region = %table.region, route_table_id = %table.id,
                    destination = %change.key.destination, "route deleted before it could be repointed");
                skipped.push(SkipReport {
                    region: table.region.to_string(),
                    resource: table.id.clone(),
                    destination: Some(change.key.destination.to_string()),
                    reason: "route deleted before it could be repointed".to_owned(),
                });
            }
            Err(e) => {
                tracing::error!(region = %table.region, route_table_id = %table.id,
                    destination = %change.key.destination, error = %e,
                    "route not repointed; the next run retries it");
                errors.push(ErrorReport {
                    region: table.region.to_string(),
                    resource: Some(format!("{} {}", table.id, change.key.destination)),
                    error: e.to_string(),
                });
            }
        }
    }
    applied.sort();
    errors.sort();
    skipped.sort();
    (applied, errors, skipped)
}

/// One structured line per decision.
fn log_decision(run: &GroupRun, d: &Decision, routes_moved: usize, planned_only: bool) {
    let moved_tables: BTreeSet<&str> = d.moves.iter().map(|c| c.key.table.id.as_str()).collect();
    tracing::info!(
        group = %run.name,
        region = %run.region,
        vpc = d.vpc_id.as_deref().unwrap_or("-"),
        decision = %d.kind,
        from = d.previous.as_deref().unwrap_or("-"),
        to = d.active.as_deref().unwrap_or("-"),
        routes_managed = d.managed_routes,
        routes_planned = d.moves.len(),
        routes_moved,
        route_tables = ?moved_tables,
        planned_only,
        reason = %d.reason,
        "failover decision"
    );
}

async fn notify(
    aws: &Aws,
    run: &GroupRun,
    d: &Decision,
    applied: &[Change],
    errors: &[ErrorReport],
    trigger: &str,
    started: Instant,
) {
    let event = match d.kind {
        DecisionKind::None => "drift_repaired".to_owned(),
        kind => kind.to_string(),
    };
    let from = d.previous.as_deref().unwrap_or("-");
    let to = match d.kind {
        DecisionKind::NoHealthyMember => "-",
        _ => d.active.as_deref().unwrap_or("-"),
    };
    let mut tables: BTreeMap<&str, &str> = BTreeMap::new();
    for c in applied {
        if let Some(member) = d.targets.get(&c.key.table.id) {
            tables.insert(c.key.table.id.as_str(), member.as_str());
        }
    }
    let subject = format!(
        "lbgp {FUNCTION}: {} {event} {from} -> {to} ({})",
        run.name, run.region
    );
    let body = json!({
        "function": FUNCTION,
        "event": event,
        "trigger": trigger,
        "group": run.name,
        "region": run.region,
        "vpc": d.vpc_id,
        "from": d.previous,
        "to": if d.kind == DecisionKind::NoHealthyMember { None } else { d.active.clone() },
        "route_tables": tables,
        "routes_moved": applied.len(),
        "reason": d.reason,
        "duration_ms": elapsed_ms(started),
        "members": d.members,
        "changes": applied.iter().map(ChangeReport::from).collect::<Vec<_>>(),
        "errors": errors,
    });
    publish(aws, &subject, &body).await;
}

async fn publish(aws: &Aws, subject: &str, body: &Value) {
    if let Err(e) = aws.notifier.publish(subject, body).await {
        // The routes are what matter; a lost notification is logged.
        tracing::error!(error = %e, subject = %subject, "notification not published");
    }
}

/// Releases the lease even if work was marked pending (the caller is not
/// going to run again).
async fn release_fully(aws: &Aws, fence: &Fence) {
    for _ in 0..2 {
        match aws.store.release(fence).await {
            Ok(Released::Done) => return,
            Ok(Released::WorkPending) => continue,
            Err(e) => {
                tracing::warn!(lease = %fence.lease_pk, error = %e, "lease not released; it expires by itself");
                return;
            }
        }
    }
}

async fn release_all(aws: &Aws, runs: &mut [GroupRun]) {
    join_all(
        runs.iter_mut()
            .filter_map(|r| r.fence.take())
            .map(|fence| async move { release_fully(aws, &fence).await }),
    )
    .await;
}

fn finish(
    mut response: InvokeResponse,
    mut runs: Vec<GroupRun>,
    applied_any: bool,
    started: Instant,
) -> InvokeResponse {
    runs.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
    let mut changes = Vec::new();
    for run in &runs {
        changes.extend(run.applied.iter().map(ChangeReport::from));
        response.errors.extend(run.errors.iter().cloned());
        response.skipped.extend(run.skipped.iter().cloned());
        response.groups.push(run.entry());
    }
    if !response.dry_run && response.refused.is_none() {
        changes.sort();
        response.changes = changes;
    }
    response.errors.sort();
    response.skipped.sort();
    response.locked = runs.iter().any(|r| r.locked_by.is_some());
    response.applied = applied_any && !response.dry_run && response.refused.is_none();
    response.duration_ms = elapsed_ms(started);
    tracing::info!(
        function = FUNCTION,
        trigger = %response.trigger,
        groups = runs.len(),
        changes = response.changes.len(),
        errors = response.errors.len(),
        locked = response.locked,
        duration_ms = response.duration_ms,
        "run finished"
    );
    response
}

/// The function: configuration and clients, built once per process.
pub struct App {
    state: Result<(Watcher, Aws), String>,
}

impl App {
    /// Reads `LBGP_*` and builds clients. A bad configuration does not stop
    /// the process: every invocation answers with the error, so it shows
    /// in the caller's response and logs instead of a crash loop.
    pub async fn from_env() -> App {
        let config = match Env::process().watcher() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "invalid configuration");
                return App::misconfigured(InvokeError::Config(e));
            }
        };
        match Aws::from_env(&config.common).await {
            Ok(aws) => App::new(config, aws),
            Err(e) => App {
                state: Err(e.to_string()),
            },
        }
    }

    /// An app over given configuration and clients (tests).
    pub fn new(config: WatcherConfig, aws: Aws) -> App {
        App {
            state: Ok((Watcher { config }, aws)),
        }
    }

    /// An app whose configuration failed to parse (tests).
    pub fn misconfigured(error: InvokeError) -> App {
        App {
            state: Err(error.to_string()),
        }
    }

    /// Handles one invocation.
    pub async fn handle(&self, payload: Value) -> Result<InvokeResponse, Diagnostic> {
        match &self.state {
            Ok((watcher, aws)) => watcher.handle(aws, &payload).await.map_err(Into::into),
            Err(message) => Err(Diagnostic {
                error_type: "lbgp.InvalidConfiguration.NonRetryable".to_owned(),
                error_message: message.clone(),
            }),
        }
    }
}
