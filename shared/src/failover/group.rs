//! Failover groups: their members, ranked, and the route tables of their VPC.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::health::{
    HealthFault, MemberAlarm, MissingData, TAG_HEALTH_ALARM, TAG_HEALTH_MISSING, alarm_names,
};
use super::{AlarmReading, TAG_GROUP, TAG_MODE, TAG_PRIORITY};
use crate::model::{RouteOrigin, RouteState, RouteTableRef, RouteTarget};
use crate::topology::{Instance, InstanceState, VpcRoute, VpcRouteTable};

/// How a group chooses the member of each route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverMode {
    /// Active/passive: every table follows the best healthy member by priority.
    Priority,
    /// AZ affinity: a table whose subnets all sit in one AZ prefers that AZ's
    /// healthy member; the main table and mixed-AZ tables follow priority.
    Az,
}

impl FailoverMode {
    /// The `lbgp:failover-mode` value of AZ mode.
    pub const AZ_TAG_VALUE: &'static str = "az";
}

/// A member of a failover group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `i-…`.
    pub instance_id: String,
    /// `lbgp:priority` (higher preferred, default 0).
    pub priority: i64,
    /// Availability zone.
    pub az: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Instance state as described (`None`: EC2 did not say).
    pub state: Option<InstanceState>,
    /// Instance status check impaired.
    pub instance_impaired: bool,
    /// System status check impaired.
    pub system_impaired: bool,
    /// A state this run learnt from a state-change event, newer than what
    /// DescribeInstances may show yet (EC2 reads are eventually consistent).
    pub event_state: Option<InstanceState>,
    /// Every attached network interface.
    pub interfaces: Vec<String>,
    /// Primary network interface: where the group's routes point.
    pub primary_interface: Option<String>,
    /// Private IP addresses of its interfaces (for reports: a replacement
    /// appliance has new ones).
    pub addresses: Vec<String>,
    /// Its health alarms' names (`lbgp:health-alarm`).
    pub alarm_names: Vec<String>,
    /// Its health alarms as read (empty until [`Group::attach_alarms`]).
    pub alarms: Vec<MemberAlarm>,
    /// What an alarm without data means (`lbgp:health-missing`).
    pub missing: MissingData,
    /// Only remembered: terminated and no longer described by EC2; its
    /// routes are the `blackhole` ones toward the interfaces the group's
    /// state remembers.
    pub gone: bool,
}

impl Member {
    /// Running, no status check impaired, no state-change event saying
    /// otherwise, and no health alarm failing.
    pub fn healthy(&self) -> bool {
        self.faults().is_empty()
    }

    /// What makes the member unhealthy, every source that fails (empty:
    /// healthy).
    pub fn faults(&self) -> Vec<HealthFault> {
        if self.gone {
            return vec![HealthFault::Gone];
        }
        let mut faults = Vec::new();
        match self.state {
            None => faults.push(HealthFault::StateUnknown),
            Some(InstanceState::Running) => {}
            Some(state) => faults.push(HealthFault::State {
                state,
                from_event: false,
            }),
        }
        if let Some(state) = self.event_state.filter(|s| *s != InstanceState::Running)
            && self.state == Some(InstanceState::Running)
        {
            faults.push(HealthFault::State {
                state,
                from_event: true,
            });
        }
        for (impaired, check) in [
            (self.instance_impaired, "instance"),
            (self.system_impaired, "system"),
        ] {
            if impaired {
                faults.push(HealthFault::StatusCheck {
                    check: check.to_owned(),
                });
            }
        }
        for alarm in self.alarms.iter().filter(|a| a.fails(self.missing)) {
            faults.push(HealthFault::Alarm {
                alarm: alarm.name.clone(),
                state: alarm.reading.as_ref().map(|r| r.state),
                reason: alarm.reading.as_ref().and_then(|r| r.reason.clone()),
                from_event: alarm.from_event,
            });
        }
        faults
    }

    /// Health in words, for reports and notifications.
    pub fn health(&self) -> String {
        let faults = self.faults();
        match faults.first() {
            None => return "running".to_owned(),
            // Not running: that says it all.
            Some(f @ (HealthFault::Gone | HealthFault::StateUnknown | HealthFault::State { .. })) => {
                return f.to_string();
            }
            Some(_) => {}
        }
        let mut words: Vec<String> = Vec::new();
        let checks: Vec<&str> = faults
            .iter()
            .filter_map(|f| match f {
                HealthFault::StatusCheck { check } => Some(check.as_str()),
                _ => None,
            })
            .collect();
        match checks.as_slice() {
            [] => {}
            [one] => words.push(format!("{one} status check impaired")),
            _ => words.push("instance and system status checks impaired".to_owned()),
        }
        words.extend(
            faults
                .iter()
                .filter(|f| matches!(f, HealthFault::Alarm { .. }))
                .map(|f| {
                    let mut text = f.to_string();
                    if let HealthFault::Alarm { from_event: true, .. } = f {
                        text.push_str(" (alarm event)");
                    }
                    text
                }),
        );
        format!("running, {}", words.join("; "))
    }

    /// Where a route to this member points: its primary network interface
    /// (an instance id would fail for a multi-interface instance).
    pub fn route_target(&self) -> RouteTarget {
        match &self.primary_interface {
            Some(eni) => RouteTarget::NetworkInterface(eni.clone()),
            None => RouteTarget::Instance(self.instance_id.clone()),
        }
    }

    /// True when `id` is this instance or one of its interfaces.
    pub fn answers_to(&self, id: &str) -> bool {
        self.instance_id == id
            || self.interfaces.iter().any(|i| i == id)
            || self.primary_interface.as_deref() == Some(id)
    }
}

/// A failover group as found in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The `lbgp:failover-group` value.
    pub name: String,
    /// Priority or AZ affinity.
    pub mode: FailoverMode,
    /// Members, best first: priority descending, then instance id.
    pub members: Vec<Member>,
    /// Tags we could not use, each with what was done instead.
    pub warnings: Vec<String>,
}

/// Why a group cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// Members in several VPCs: a route table belongs to one VPC, so which
    /// routes the group manages is ambiguous.
    #[error(
        "failover group {group:?} spans VPCs {}: a group's members must share one VPC; routes left as they are",
        vpcs.join(", ")
    )]
    SpansVpcs {
        /// The group.
        group: String,
        /// Its VPCs.
        vpcs: Vec<String>,
    },
    /// The operator asked to activate an instance that is not a member.
    #[error("activate refused: {instance} is not a member of failover group {group:?} (members: {})", members.join(", "))]
    NotAMember {
        /// The group.
        group: String,
        /// The instance asked for.
        instance: String,
        /// The members.
        members: Vec<String>,
    },
    /// The operator asked to activate a member of a group that does not exist
    /// in the regions searched.
    #[error(
        "activate refused: no failover group {group:?} with member {instance} in LBGP_REGIONS ({regions}); nothing changed"
    )]
    UnknownGroup {
        /// The group asked for.
        group: String,
        /// The instance asked for.
        instance: String,
        /// The regions searched, comma-separated.
        regions: String,
    },
    /// The operator asked to activate an unhealthy member.
    #[error(
        "activate refused: {instance} in failover group {group:?} is not healthy ({health}); routes left as they are"
    )]
    Unhealthy {
        /// The group.
        group: String,
        /// The instance asked for.
        instance: String,
        /// Its health.
        health: String,
    },
}

pub(super) fn rank_order(a: &Member, b: &Member) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.instance_id.cmp(&b.instance_id))
}

/// Builds the groups from the instances tagged `lbgp:failover-group`
/// (others are ignored), sorted by name, members best first.
///
/// A bad `lbgp:priority` counts as 0 and a mode other than `az` as priority
/// mode, with a warning: a typo in a tag must not stop a failover.
pub fn groups_from_instances(instances: &[Instance]) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut az_votes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for i in instances {
        let Some(name) = i.tags.get(TAG_GROUP).map(|n| n.trim()).filter(|n| !n.is_empty()) else {
            continue;
        };
        let group = groups.entry(name.to_owned()).or_insert_with(|| Group {
            name: name.to_owned(),
            mode: FailoverMode::Priority,
            members: vec![],
            warnings: vec![],
        });
        let priority = match i.tags.get(TAG_PRIORITY).map(|p| p.trim()) {
            None | Some("") => 0,
            Some(p) => p.parse::<i64>().unwrap_or_else(|_| {
                group.warnings.push(format!(
                    "{}: {TAG_PRIORITY}={p:?} is not an integer; priority 0 used",
                    i.id
                ));
                0
            }),
        };
        let votes = az_votes.entry(name.to_owned()).or_default();
        match i.tags.get(TAG_MODE).map(|m| m.trim()) {
            Some(m) if m.eq_ignore_ascii_case(FailoverMode::AZ_TAG_VALUE) => votes.0 += 1,
            None => votes.1 += 1,
            Some(m) => {
                votes.1 += 1;
                group.warnings.push(format!(
                    "{}: {TAG_MODE}={m:?} is not a known mode (az); priority mode assumed for it",
                    i.id
                ));
            }
        }
        let mut interfaces = i.interface_ids.clone();
        interfaces.sort();
        interfaces.dedup();
        let missing = match i.tags.get(TAG_HEALTH_MISSING).map(|v| v.trim()) {
            None | Some("") => MissingData::default(),
            Some(v) => MissingData::from_tag(v).unwrap_or_else(|| {
                group.warnings.push(format!(
                    "{}: {TAG_HEALTH_MISSING}={v:?} is not unhealthy or ignore; unhealthy assumed",
                    i.id
                ));
                MissingData::Unhealthy
            }),
        };
        group.members.push(Member {
            instance_id: i.id.clone(),
            priority,
            az: i.availability_zone.clone(),
            vpc_id: i.vpc_id.clone(),
            state: i.state,
            instance_impaired: i.status.instance_impaired,
            system_impaired: i.status.system_impaired,
            event_state: None,
            interfaces,
            primary_interface: i.primary_interface_id.clone(),
            addresses: i.private_addresses.clone(),
            alarm_names: i
                .tags
                .get(TAG_HEALTH_ALARM)
                .map(|t| alarm_names(t))
                .unwrap_or_default(),
            alarms: vec![],
            missing,
            gone: false,
        });
    }
    for (name, group) in &mut groups {
        group.members.sort_by(rank_order);
        group.members.dedup_by(|a, b| a.instance_id == b.instance_id);
        group.warnings.sort();
        let (az, other) = az_votes.get(name).copied().unwrap_or_default();
        if az > 0 {
            group.mode = FailoverMode::Az;
            if other > 0 {
                // While an operator tags members one by one the group is
                // half-tagged; AZ mode is the one they are moving to.
                group.warnings.push(format!(
                    "{az} of {} members are tagged {TAG_MODE}=az; the group works in az mode",
                    az + other
                ));
            }
        }
    }
    groups.into_values().collect()
}

impl Group {
    /// The group's VPC: `None` when no member has one (all terminated), an
    /// error when members sit in several.
    pub fn vpc(&self) -> Result<Option<String>, DecideError> {
        // A member only remembered says where it was, not where the group is.
        let vpcs: BTreeSet<&str> = self
            .members
            .iter()
            .filter(|m| !m.gone)
            .filter_map(|m| m.vpc_id.as_deref())
            .collect();
        match vpcs.len() {
            0 => Ok(None),
            1 => Ok(vpcs.into_iter().next().map(str::to_owned)),
            _ => Err(DecideError::SpansVpcs {
                group: self.name.clone(),
                vpcs: vpcs.into_iter().map(str::to_owned).collect(),
            }),
        }
    }

    /// The member with this instance id.
    pub fn member(&self, instance_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.instance_id == instance_id)
    }

    /// The member a route points at, by instance id or network interface.
    pub fn owner_of(&self, route: &VpcRoute) -> Option<&Member> {
        self.owner_by_ids(
            [
                route.instance_id.as_deref(),
                route.network_interface_id.as_deref(),
            ],
            &route.route.target,
            route.route.state,
        )
    }

    /// The member a prefix-list route points at.
    pub fn owner_of_list_route(&self, route: &ListRoute) -> Option<&Member> {
        self.owner_by_ids(
            [
                route.instance_id.as_deref(),
                route.network_interface_id.as_deref(),
            ],
            &route.target,
            route.state,
        )
    }

    fn owner_by_ids(
        &self,
        ids: [Option<&str>; 2],
        target: &RouteTarget,
        state: RouteState,
    ) -> Option<&Member> {
        let target = match target {
            RouteTarget::Instance(id) | RouteTarget::NetworkInterface(id) => Some(id.as_str()),
            _ => None,
        };
        // The instance id decides first: a route to a secondary interface
        // still points at that instance. A member only remembered owns the
        // routes that are blackholes: an active route toward one of its old
        // interfaces goes to something alive that is not in the group.
        ids.into_iter().chain([target]).flatten().find_map(|id| {
            self.members
                .iter()
                .find(|m| m.answers_to(id) && (!m.gone || state == RouteState::Blackhole))
        })
    }

    /// Gives each member the state of its health alarms (`readings`, by
    /// name, as read in its region); an alarm absent from `readings` does
    /// not exist.
    /// A name that matches no alarm is reported in the group's warnings
    /// (a typo in the tag reads as an appliance that stopped reporting).
    pub fn attach_alarms(&mut self, readings: &BTreeMap<String, AlarmReading>) {
        for m in &mut self.members {
            for name in m.alarm_names.iter().filter(|n| !readings.contains_key(*n)) {
                let counted = match m.missing {
                    MissingData::Unhealthy => "the member counts as unhealthy",
                    MissingData::Ignore => "ignored",
                };
                self.warnings.push(format!(
                    "{}: {TAG_HEALTH_ALARM} names alarm {name:?}, which does not exist in its region; \
                     missing data, so {counted} ({TAG_HEALTH_MISSING})",
                    m.instance_id
                ));
            }
            m.alarms = m
                .alarm_names
                .iter()
                .map(|name| MemberAlarm {
                    name: name.clone(),
                    reading: readings.get(name).cloned(),
                    from_event: false,
                })
                .collect();
        }
    }

    /// True when a member names `alarm` as a health alarm.
    pub fn watches_alarm(&self, alarm: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.alarm_names.iter().any(|n| n == alarm))
    }
}

/// A route whose destination is a managed prefix list
/// (`DestinationPrefixListId`), as the watcher sees it: moved like a CIDR
/// route when it points at a member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListRoute {
    /// `pl-…`.
    pub prefix_list_id: String,
    /// Where it points.
    pub target: RouteTarget,
    /// Active or blackhole.
    pub state: RouteState,
    /// Static (the only kind moved) or propagated.
    pub origin: RouteOrigin,
    /// Instance id, when the target is (on) an instance.
    pub instance_id: Option<String>,
    /// Network interface id, when the target is an interface.
    pub network_interface_id: Option<String>,
}

/// A VPC route table as the watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupTable {
    /// The table.
    pub table: RouteTableRef,
    /// Its VPC.
    pub vpc_id: String,
    /// The AZ of all its associated subnets (see [`table_zone`]).
    pub zone: Option<String>,
    /// Its routes.
    pub routes: Vec<VpcRoute>,
    /// Its prefix-list routes.
    pub list_routes: Vec<ListRoute>,
}

/// The AZ a route table serves: the one AZ of all its explicitly associated
/// subnets. The main table (which also serves every subnet without an
/// explicit association), a table without subnets, a table whose subnets
/// span AZs, or one with a subnet of unknown AZ serve no single AZ.
pub fn table_zone(main: bool, subnet_ids: &[String], zones: &BTreeMap<String, String>) -> Option<String> {
    if main || subnet_ids.is_empty() {
        return None;
    }
    let mut found: Option<&String> = None;
    for subnet in subnet_ids {
        let zone = zones.get(subnet)?;
        match found {
            Some(z) if z != zone => return None,
            _ => found = Some(zone),
        }
    }
    found.cloned()
}

impl GroupTable {
    /// A VPC route table as the watcher sees it, its zone taken from the
    /// zones of its subnets (see [`table_zone`]).
    pub fn new(
        region: &crate::model::Region,
        table: VpcRouteTable,
        zones: &BTreeMap<String, String>,
    ) -> GroupTable {
        GroupTable {
            table: RouteTableRef {
                region: region.clone(),
                kind: crate::model::TableKind::Vpc,
                id: table.id,
            },
            zone: table_zone(table.main, &table.subnet_ids, zones),
            vpc_id: table.vpc_id,
            routes: table.routes,
            list_routes: vec![],
        }
    }

    /// The same table with its prefix-list routes.
    pub fn with_list_routes(mut self, list_routes: Vec<ListRoute>) -> GroupTable {
        self.list_routes = list_routes;
        self
    }
}
