//! failover-watcher: keeps the VPC routes of each failover group of router
//! instances (`lbgp:failover-group=<name>`) on the group's best healthy
//! member, moves them at once when that member fails (its instance stops,
//! a status check is impaired, or one of its health alarms,
//! `lbgp:health-alarm`, goes to `ALARM`), and back after
//! `LBGP_FAILBACK_AFTER_SECONDS` of uninterrupted health by every source.
//!
//! The decisions are [`lbgp_core::failover::decide`]'s; the loop (one lease
//! per group, `lease#failover-watcher#<region>#<group>`, the group's state
//! saved fenced before routes move, the guard, notifications) is
//! `lbgp_runtime`'s. This crate reads ([`read`]) and turns a decision into
//! the loop's plan ([`decision`]). Unlike the injector and propagator it
//! keeps no ownership ledger: the routes are the user's, it only moves them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use lbgp_aws::context::Aws;
use lbgp_core::Region;
use lbgp_core::accounts::AccountId;
use lbgp_core::config::{CommonConfig, Env, WatcherConfig};
use lbgp_core::failover::{DecideError, DecideInput, GroupState, decide};
use lbgp_core::report::ErrorReport;
use lbgp_core::topology::Instance;
use lbgp_core::trigger::Subscriptions;
use lbgp_runtime::{Error, Pass, Reconciler, Request, Selection, Unit, UnitPlan};
use serde_json::{Map, Value};

pub mod decision;
pub mod read;

use read::{Focus, RegionView, discover, observe};

/// The binary and function name.
pub const FUNCTION: &str = "failover-watcher";

/// CloudTrail events that can put a managed route out of place, or change
/// a failover group (its members are `lbgp:` tags on the routers; the
/// template's rule passes only tag calls on `lbgp:` keys).
pub const API_CALLS: &[&str] = &[
    "CreateRoute",
    "ReplaceRoute",
    "DeleteRoute",
    "CreateTags",
    "DeleteTags",
];

/// The events the watcher acts on.
pub const SUBSCRIPTIONS: Subscriptions = Subscriptions {
    api_calls: API_CALLS,
    state_changes: true,
    routing_updates: false,
    alarm_changes: true,
};

/// Name of a group's state record (`state#failover-watcher#<region>#<group>`).
pub const STATE_RECORD: &str = "state";

/// The watcher: its configuration.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// Its configuration.
    pub config: WatcherConfig,
}

/// A failover group, as discovery found it.
#[derive(Debug, Clone)]
pub struct GroupKey {
    /// Its region.
    pub region: Region,
    /// Its name.
    pub name: String,
    /// Its VPC, as discovery saw it (for reports when nothing else is known).
    pub vpc: Option<String>,
    /// The member account it lives in, in a cross-account mesh (`None`:
    /// the home account), with the home account's id.
    pub account: Option<(AccountId, AccountId)>,
    /// The region's group members discovery read, to read what depends on
    /// them at once with their fresh read.
    pub known: Arc<Vec<Instance>>,
}

/// The group's state, or a fresh one (with a warning) when the record is
/// unreadable: deciding from the routes beats not deciding.
async fn load_state(
    aws: &Aws,
    unit: &Unit<GroupKey>,
) -> Result<(GroupState, Option<String>), lbgp_aws::Error> {
    let Some(body) = aws.store.load_state(FUNCTION, &unit.scope, STATE_RECORD).await? else {
        return Ok((GroupState::default(), None));
    };
    match serde_json::from_value::<GroupState>(body) {
        Ok(state) => Ok((state, None)),
        Err(e) => {
            let warning = format!("state record unreadable ({e}); the group was evaluated from its routes");
            tracing::warn!(group = %unit.key.name, region = %unit.key.region, warning = %warning, "state reset");
            Ok((GroupState::default(), Some(warning)))
        }
    }
}

impl Watcher {
    /// Decides one group from what its region shows.
    fn decide_unit(
        &self,
        unit: &Unit<GroupKey>,
        view: &Result<RegionView, String>,
        state: Result<(GroupState, Option<String>), lbgp_aws::Error>,
        pass: &Pass<'_>,
        now: u64,
    ) -> Result<UnitPlan, Error> {
        let key = &unit.key;
        let (before, warning) = match state {
            Ok(s) => s,
            Err(e) => return Ok(decision::failed(key, &GroupState::default(), e.to_string())),
        };
        let view = match view {
            Ok(view) => view,
            Err(e) => return Ok(decision::failed(key, &before, e.clone())),
        };
        let Some(group) = view.groups.iter().find(|g| g.name == key.name) else {
            return Ok(decision::failed(
                key,
                &before,
                "the group's members disappeared during the run".to_owned(),
            ));
        };
        if let Some(e) = &view.alarms_unread
            && group.members.iter().any(|m| !m.alarm_names.is_empty())
        {
            return Ok(decision::failed(
                key,
                &before,
                format!("the members' health alarms could not be read ({e}); routes left as they are"),
            ));
        }
        let focus = Focus::of(&pass.request.trigger);
        let input = DecideInput {
            now,
            policy: self.config.failback,
            event: match (&focus, pass.is_first()) {
                (Focus::Instance(event), true) => Some(event.clone()),
                _ => None,
            },
            alarm: match (&focus, pass.is_first()) {
                (Focus::Alarm(event), true) => Some(event.clone()),
                _ => None,
            },
            activate: match (&focus, pass.is_first()) {
                (Focus::Activate { group, instance }, true) if group == &key.name => Some(instance.clone()),
                _ => None,
            },
        };
        let mut warnings = group.warnings.clone();
        warnings.extend(warning);
        match decide(group, &view.tables, &before, &input) {
            Ok(d) => {
                let mut plan = decision::plan(key, &unit.scope, d, &before, warnings, pass.is_first());
                if let Some((home, account)) = &key.account {
                    plan.tables = Some(decision::tables_of(&plan, home, account));
                }
                Ok(plan)
            }
            Err(e @ DecideError::SpansVpcs { .. }) => Ok(decision::failed(key, &before, e.to_string())),
            Err(e) => Err(Error::Refused(e)),
        }
    }
}

#[async_trait]
impl Reconciler for Watcher {
    type Key = GroupKey;

    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn subscriptions(&self) -> Subscriptions {
        SUBSCRIPTIONS
    }

    fn manages_accounts(&self) -> bool {
        true
    }

    fn reads_alarms_first(&self) -> bool {
        // A failover's first reads are the members' instances and their
        // health alarms: the alarms' clients must be ready.
        true
    }

    fn common(&self) -> &CommonConfig {
        &self.config.common
    }

    fn takes_operator_switch(&self) -> bool {
        true
    }

    /// The groups a trigger concerns: a cheap read of the router instances
    /// per region.
    async fn select(
        &self,
        aws: &Aws,
        request: &Request,
        regions: &[Region],
    ) -> Result<Selection<GroupKey>, Error> {
        let focus = Focus::of(&request.trigger);
        let mut errors = Vec::new();
        // Where groups live: the home account, and in a cross-account mesh
        // every other member (`None` is the home account).
        let mut accounts: Vec<Option<(AccountId, AccountId)>> = vec![None];
        if aws.members.is_cross_account() {
            match lbgp_runtime::accounts::other_members(aws, &self.config.common.mesh, regions).await {
                Ok((home, others)) => accounts.extend(others.into_iter().map(|a| Some((home.clone(), a)))),
                Err(e) => {
                    tracing::error!(error = %e, "the member accounts could not be known; only the home account's groups are looked at");
                    errors.push(ErrorReport {
                        region: "-".to_owned(),
                        resource: Some("member accounts".to_owned()),
                        error: lbgp_runtime::error_chain(&e),
                        account: None,
                    });
                }
            }
        }
        let places: Vec<(&Region, Option<(AccountId, AccountId)>)> = accounts
            .iter()
            .flat_map(|a| regions.iter().map(move |r| (r, a.clone())))
            .collect();
        let found = join_all(
            places
                .iter()
                .map(|(r, a)| discover(aws, r, a.as_ref().map(|(_, m)| m), &focus)),
        )
        .await;
        let mut units = Vec::new();
        for ((region, account), result) in places.into_iter().zip(found) {
            match result {
                Ok((groups, instances)) => {
                    let known = Arc::new(instances);
                    units.extend(groups.into_iter().map(|(name, vpc)| Unit {
                        scope: match &account {
                            // Home groups keep the scope (lease and state
                            // keys) they always had.
                            None => format!("{region}#{name}"),
                            Some((_, a)) => format!("{a}#{region}#{name}"),
                        },
                        key: GroupKey {
                            region: region.clone(),
                            name,
                            vpc,
                            account: account.clone(),
                            known: known.clone(),
                        },
                    }));
                }
                Err(e) => {
                    let who = account.as_ref().map(|(_, a)| a.to_string());
                    tracing::error!(region = %region, account = who.as_deref().unwrap_or("home"), error = %e,
                        "region could not be read; its groups are left as they are");
                    errors.push(ErrorReport {
                        region: region.to_string(),
                        resource: who.as_ref().map(|a| format!("account {a}")),
                        error: lbgp_runtime::error_chain(&e),
                        account: who,
                    });
                }
            }
        }
        if units.is_empty() && errors.is_empty() {
            match focus {
                Focus::Activate { group, instance } => {
                    return Err(Error::Refused(DecideError::UnknownGroup {
                        group,
                        instance,
                        regions: regions
                            .iter()
                            .map(Region::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    }));
                }
                Focus::Instance(event) => {
                    return Ok(Selection::Ignore(format!(
                        "instance {} is in no failover group",
                        event.instance_id
                    )));
                }
                Focus::Table(Some(rtb)) => {
                    return Ok(Selection::Ignore(format!(
                        "route table {rtb} is not in the VPC of a failover group"
                    )));
                }
                Focus::Alarm(event) => {
                    return Ok(Selection::Ignore(format!(
                        "alarm {} is the health alarm ({}) of no failover group member",
                        event.reading.name,
                        lbgp_core::failover::TAG_HEALTH_ALARM
                    )));
                }
                Focus::Table(None) | Focus::All => {}
            }
        }
        Ok(Selection::Units { units, errors })
    }

    /// One group again, on a later pass: a fresh read of its region.
    async fn plan(&self, aws: &Aws, unit: &Unit<GroupKey>, pass: &Pass<'_>) -> Result<UnitPlan, Error> {
        let names = BTreeSet::from([unit.key.name.clone()]);
        let member = unit.key.account.as_ref().map(|(_, a)| a);
        let view = observe(aws, (&unit.key.region, member), &names, &[]).await?;
        if !view.groups.iter().any(|g| g.name == unit.key.name) {
            // Gone since the last pass: nothing more to do for it.
            return Ok(decision::gone());
        }
        let state = load_state(aws, unit).await?;
        let now = aws.store.clock().now();
        self.decide_unit(unit, &Ok(view), Ok(state), pass, now)
    }

    /// Every group of the first pass: each region read once for all of its
    /// groups, the states read beside.
    async fn plan_all(
        &self,
        aws: &Aws,
        units: &[&Unit<GroupKey>],
        pass: &Pass<'_>,
    ) -> Vec<Result<UnitPlan, Error>> {
        type Place = (Region, Option<AccountId>);
        let mut wanted: BTreeMap<Place, (BTreeSet<String>, Arc<Vec<Instance>>)> = BTreeMap::new();
        let place = |u: &Unit<GroupKey>| -> Place {
            (
                u.key.region.clone(),
                u.key.account.as_ref().map(|(_, a)| a.clone()),
            )
        };
        for unit in units {
            wanted
                .entry(place(unit))
                .or_insert_with(|| (BTreeSet::new(), unit.key.known.clone()))
                .0
                .insert(unit.key.name.clone());
        }
        let (views, states) = futures::join!(
            join_all(wanted.iter().map(|((region, account), (names, known))| async move {
                let view = observe(aws, (region, account.as_ref()), names, known).await.map_err(|e| {
                    tracing::error!(region = %region, error = %e, "region could not be read; its groups are left as they are");
                    lbgp_runtime::error_chain(&e)
                });
                ((region.clone(), account.clone()), view)
            })),
            join_all(units.iter().map(|u| load_state(aws, u))),
        );
        let views: BTreeMap<Place, Result<RegionView, String>> = views.into_iter().collect();
        let now = aws.store.clock().now();
        units
            .iter()
            .zip(states)
            .map(|(unit, state)| match views.get(&place(unit)) {
                Some(view) => self.decide_unit(unit, view, state, pass, now),
                None => Ok(decision::failed(
                    &unit.key,
                    &GroupState::default(),
                    "not read".to_owned(),
                )),
            })
            .collect()
    }

    fn locked_report(&self, unit: &Unit<GroupKey>, holder: &str) -> Option<Map<String, Value>> {
        Some(decision::locked(&unit.key, holder))
    }

    fn log(&self, unit: &Unit<GroupKey>, plan: &UnitPlan, applied: usize, planned_only: bool) {
        decision::log(&unit.key, plan, applied, planned_only);
    }
}

/// The function: the watcher and its clients, built once per process.
pub type App = lbgp_runtime::App<Watcher>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().watcher().map(|config| Watcher { config })).await
}
