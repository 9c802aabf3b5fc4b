//! What the watcher reads: which groups a trigger concerns (discovery), and
//! for the groups it decides, their members with status checks and health
//! alarms, and every route table of their VPC.

use std::collections::{BTreeMap, BTreeSet};

use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::RouteTableQuery;
use lbgp_core::Region;
use lbgp_core::accounts::AccountId;
use lbgp_core::failover::{
    AlarmEvent, FailoverMode, Group, GroupTable, MemberEvent, TAG_GROUP, TAG_HEALTH_ALARM, TAG_MODE,
    alarm_names, groups_from_instances,
};
use lbgp_core::topology::Instance;
use lbgp_core::trigger::Trigger;
use serde_json::Value;

/// Which groups a run evaluates.
#[derive(Debug, Clone)]
pub enum Focus {
    /// Every group of every region in scope.
    All,
    /// The group of an instance whose state changed.
    Instance(MemberEvent),
    /// The groups in the VPC of a route table that changed (every group of
    /// the region when the event does not say which table).
    Table(Option<String>),
    /// The groups of the members whose health alarm changed state.
    Alarm(AlarmEvent),
    /// An operator's switch.
    Activate {
        /// The group.
        group: String,
        /// The member to make active.
        instance: String,
    },
}

impl Focus {
    /// The focus of a trigger.
    pub fn of(trigger: &Trigger) -> Focus {
        match trigger {
            Trigger::Manual(m) => match (&m.group, &m.activate) {
                (Some(group), Some(instance)) => Focus::Activate {
                    group: group.clone(),
                    instance: instance.clone(),
                },
                _ => Focus::All,
            },
            // (A routing update is none of the watcher's: it never subscribes.)
            Trigger::Scheduled | Trigger::RoutingUpdate(_) => Focus::All,
            Trigger::StateChange {
                instance_id, state, ..
            } => Focus::Instance(MemberEvent {
                instance_id: instance_id.clone(),
                state: *state,
            }),
            Trigger::AlarmChange(change) => Focus::Alarm(AlarmEvent {
                reading: change.state.clone(),
                previous: change.previous,
            }),
            Trigger::ApiCall { request, .. } => Focus::Table(
                request
                    .get("routeTableId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
        }
    }
}

fn group_name(i: &Instance) -> Option<&str> {
    i.tags.get(TAG_GROUP).map(|n| n.trim()).filter(|n| !n.is_empty())
}

/// What discovery found in one region: the groups a run looks at, as
/// `(name, vpc)`, and the group members it read on the way.
pub type Discovered = (Vec<(String, Option<String>)>, Vec<Instance>);

/// Finds the groups a run looks at in one region.
pub async fn discover(
    aws: &Aws,
    region: &Region,
    account: Option<&AccountId>,
    focus: &Focus,
) -> Result<Discovered, Error> {
    let ec2 = aws.ec2_in(account, region).await?;
    let instances = ec2.failover_instances().await?;
    let groups = groups_from_instances(&instances);
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
            Focus::Alarm(event) => g.watches_alarm(&event.reading.name),
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

/// One region as the watcher decides it: its groups (members with their
/// status checks and health alarms) and every route table of their VPCs.
#[derive(Debug, Default)]
pub struct RegionView {
    /// The groups.
    pub groups: Vec<Group>,
    /// The route tables of the groups' VPCs.
    pub tables: Vec<GroupTable>,
    /// Why the members' health alarms could not be read: the groups whose
    /// members have alarms are then not evaluated (their routes stay).
    pub alarms_unread: Option<String>,
}

/// The members of the named groups in a list of instances: their ids, their
/// VPCs, and whether any group places routes by zone.
struct Members<'a> {
    ids: BTreeSet<&'a str>,
    vpcs: BTreeSet<&'a str>,
    by_zone: bool,
    alarms: BTreeSet<String>,
}

impl<'a> Members<'a> {
    fn of(instances: &'a [Instance], names: &BTreeSet<String>) -> Members<'a> {
        let members: Vec<&Instance> = instances
            .iter()
            .filter(|i| group_name(i).is_some_and(|n| names.contains(n)))
            .collect();
        Members {
            ids: members.iter().map(|i| i.id.as_str()).collect(),
            vpcs: members.iter().filter_map(|i| i.vpc_id.as_deref()).collect(),
            // A group is in az mode as soon as one member is tagged so
            // (`groups_from_instances`' rule).
            by_zone: members.iter().any(|i| {
                i.tags
                    .get(TAG_MODE)
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(FailoverMode::AZ_TAG_VALUE))
            }),
            alarms: members
                .iter()
                .filter_map(|i| i.tags.get(TAG_HEALTH_ALARM))
                .flat_map(|t| alarm_names(t))
                .collect(),
        }
    }
}

/// Members with their status checks and health alarms, and every route
/// table of their VPCs.
///
/// The reads that depend on the members (status checks, health alarms,
/// route tables, subnet zones) go out together with the fresh read of the
/// members, for the members in `known` (what discovery read a moment
/// earlier); whatever the fresh read shows that `known` did not have is
/// read after it. So a failover waits for one round trip of reads here, not
/// three, and still decides on members read after its lease.
pub async fn observe(
    aws: &Aws,
    (region, account): (&Region, Option<&AccountId>),
    names: &BTreeSet<String>,
    known: &[Instance],
) -> Result<RegionView, Error> {
    let (ec2, cloudwatch) =
        futures::try_join!(aws.ec2_in(account, region), aws.cloudwatch_in(account, region))?;
    let guess = Members::of(known, names);
    let guessed_ids: Vec<&str> = guess.ids.iter().copied().collect();
    let guessed_vpcs: Vec<&str> = guess.vpcs.iter().copied().collect();
    let guessed_alarms: Vec<&str> = guess.alarms.iter().map(String::as_str).collect();
    let (instances, guessed_checks, tables, zones, guessed_readings) = futures::join!(
        ec2.failover_instances(),
        ec2.status_checks(&guessed_ids),
        ec2.vpc_route_tables_with_lists(RouteTableQuery::Vpcs(&guessed_vpcs)),
        async {
            if guess.by_zone {
                ec2.vpc_subnet_zones(&guessed_vpcs).await
            } else {
                Ok(BTreeMap::new())
            }
        },
        async {
            if guessed_alarms.is_empty() {
                Ok(BTreeMap::new())
            } else {
                cloudwatch.alarms(&guessed_alarms).await
            }
        },
    );
    let (instances, mut tables, mut zones) = (instances?, tables?, zones?);
    let mut instances: Vec<Instance> = instances
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
    let (mut readings, alarms_read) = match guessed_readings {
        Ok(readings) => (readings, guess.alarms.clone()),
        Err(e) => {
            tracing::warn!(region = %region, error = %e, "health alarms of the members discovery saw could not be read; reading them again");
            (BTreeMap::new(), BTreeSet::new())
        }
    };
    let new_alarms: Vec<&str> = fresh
        .alarms
        .difference(&alarms_read)
        .map(String::as_str)
        .collect();
    let (more_checks, more_tables, more_readings) = futures::join!(
        ec2.status_checks(&new_ids),
        ec2.vpc_route_tables_with_lists(RouteTableQuery::Vpcs(&new_vpcs)),
        async {
            if new_alarms.is_empty() {
                Ok(BTreeMap::new())
            } else {
                cloudwatch.alarms(&new_alarms).await
            }
        },
    );
    checks.extend(more_checks?);
    tables.extend(more_tables?);
    // Alarms that cannot be read freeze only the groups that depend on
    // them, never the others.
    let alarms_unread = match more_readings {
        Ok(more) => {
            readings.extend(more);
            None
        }
        Err(e) => {
            tracing::error!(region = %region, error = %e, "health alarms could not be read; groups with alarm health are left as they are");
            Some(e.to_string())
        }
    };
    // Only the tables of the members' VPCs now: a VPC that lost its last
    // member since discovery is none of this run's business.
    let vpcs: BTreeSet<String> = fresh.vpcs.iter().map(|v| (*v).to_owned()).collect();
    let by_zone = fresh.by_zone;
    tables.retain(|(t, _)| vpcs.contains(&t.vpc_id));
    if by_zone {
        let unknown: BTreeSet<&str> = tables
            .iter()
            .flat_map(|(t, _)| t.subnet_ids.iter().map(String::as_str))
            .filter(|s| !zones.contains_key(*s))
            .collect();
        let more_zones = ec2.subnet_zones(&unknown.into_iter().collect::<Vec<_>>()).await?;
        zones.extend(more_zones);
    }
    for instance in &mut instances {
        if let Some(status) = checks.get(&instance.id) {
            instance.status = *status;
        }
    }
    let mut groups = groups_from_instances(&instances);
    for g in &mut groups {
        g.attach_alarms(&readings);
    }
    Ok(RegionView {
        groups,
        tables: tables
            .into_iter()
            .map(|(t, lists)| GroupTable::new(region, t, &zones).with_list_routes(lists))
            .collect(),
        alarms_unread,
    })
}
