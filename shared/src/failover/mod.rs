//! The failover watcher's decisions: which member of a failover group carries
//! the group's routes, table by table, and the `ReplaceRoute`s that get them
//! there.
//!
//! A *failover group* is the set of EC2 instances tagged
//! `lbgp:failover-group=<name>` in one VPC. Its *managed routes* are the
//! static routes, in any route table of that VPC, whose target is a member
//! (its instance id or one of its network interfaces). [`decide`] looks at
//! the members' health, the tables and the state persisted by the previous
//! run, and returns the target of every table, the moves, and the next state.
//!
//! Pure and deterministic, like the planner: the same inputs in any order give
//! the same [`Decision`], and applying a decision then deciding again gives no
//! moves.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::FailbackPolicy;
use crate::model::{RouteTableRef, RouteTarget};
use crate::plan::Change;
use crate::report::ChangeReport;
use crate::topology::InstanceState;

#[cfg(test)]
mod az_tests;
mod decide;
mod group;
mod health;
#[cfg(test)]
mod health_tests;
mod memory;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

pub use decide::decide;
pub use group::{
    DecideError, FailoverMode, Group, GroupTable, ListRoute, Member, groups_from_instances, table_zone,
};
pub use health::{
    AlarmReading, AlarmState, HealthFault, MemberAlarm, MissingData, TAG_HEALTH_ALARM, TAG_HEALTH_MISSING,
    alarm_names, newer,
};

/// Tag naming an instance's failover group.
pub const TAG_GROUP: &str = "lbgp:failover-group";
/// Tag with an instance's priority (an integer, higher preferred, default 0).
pub const TAG_PRIORITY: &str = "lbgp:priority";
/// Tag selecting a group's mode: `az` for AZ affinity.
pub const TAG_MODE: &str = "lbgp:failover-mode";

/// What a group remembers between runs (DynamoDB, fenced by the group's
/// lease).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// Set once the group has been evaluated and saved.
    #[serde(default)]
    pub initialized: bool,
    /// The group's active member: target of the tables that follow priority.
    #[serde(default)]
    pub active: Option<String>,
    /// AZ mode: the member of each single-AZ table with managed routes.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// For each healthy member, when its current uninterrupted healthy streak
    /// began (seconds since the epoch). Dropped on any unhealthy observation.
    #[serde(default)]
    pub healthy_since: BTreeMap<String, u64>,
    /// A member an operator activated: it keeps the routes while healthy,
    /// without automatic failback.
    #[serde(default)]
    pub pinned: Option<String>,
    /// The "no healthy member" alert was sent for the current outage.
    #[serde(default)]
    pub no_healthy_alerted: bool,
    /// When routes were last moved (seconds since the epoch). EC2's reads
    /// lag its writes: routes that still read as on their old member this
    /// soon after are not "drift" to repair again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_at: Option<u64>,
    /// What the group knows of each member beyond what EC2 shows: its
    /// interfaces and addresses, so that the routes toward a member that
    /// was terminated (its primary interface deleted with it, the routes
    /// `blackhole`) are still found and moved. A terminated member is
    /// forgotten once no route points at it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, MemberRecord>,
}

/// A member as the group remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Its network interfaces.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Its primary interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Its private addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Its VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    /// Its AZ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    /// Its priority.
    #[serde(default)]
    pub priority: i64,
}

/// A state-change event about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// The instance.
    pub instance_id: String,
    /// Its new state.
    pub state: InstanceState,
}

/// A health alarm's change of state that triggered the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEvent {
    /// The alarm's new state, reason and time.
    pub reading: AlarmReading,
    /// The state it left, when the event says.
    pub previous: Option<AlarmState>,
}

/// Everything besides the group, its tables and its state that a decision
/// depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideInput {
    /// Now, in seconds since the epoch.
    pub now: u64,
    /// `LBGP_FAILBACK_AFTER_SECONDS`.
    pub policy: FailbackPolicy,
    /// The state-change event that triggered the run, if any.
    pub event: Option<MemberEvent>,
    /// The alarm event that triggered the run, if any.
    pub alarm: Option<AlarmEvent>,
    /// The operator's `activate` instance, if this run is an operator switch
    /// of this group.
    pub activate: Option<String>,
}

/// The outcome of a group's evaluation (public contract: these names appear
/// in the response's `decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// No member change (drifted routes may still have been repaired).
    None,
    /// Routes moved away from an unhealthy member (or by an operator to a
    /// member ranked below the previous one).
    Failover,
    /// Routes moved back to a better-ranked member.
    Failback,
    /// No member is healthy: routes left as they are, alert sent.
    NoHealthyMember,
    /// Another run holds the group's lease; it will re-evaluate.
    Locked,
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionKind::None => "none",
            DecisionKind::Failover => "failover",
            DecisionKind::Failback => "failback",
            DecisionKind::NoHealthyMember => "no_healthy_member",
            DecisionKind::Locked => "locked",
        })
    }
}

/// A better member that is healthy but has not been healthy long enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFailback {
    /// The member the routes will go back to.
    pub instance_id: String,
    /// How long it has been healthy.
    pub healthy_for_seconds: u64,
    /// How long it must be (`None`: `never`, only by manual invoke).
    pub failback_after_seconds: Option<u64>,
}

/// A member's health, for the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// `i-…`.
    pub instance_id: String,
    /// Priority.
    pub priority: i64,
    /// AZ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    /// Healthy now.
    pub healthy: bool,
    /// Health in words.
    pub health: String,
    /// Seconds of uninterrupted health (healthy members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_for_seconds: Option<u64>,
    /// What fails, source by source (unhealthy members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<HealthFault>,
    /// Its private addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Only remembered: terminated and no longer described.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
}

/// A member the routes moved away from, and why (the response's `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedMember {
    /// `i-…`.
    pub instance_id: String,
    /// Every source that failed.
    pub faults: Vec<HealthFault>,
}

/// A prefix-list route to repoint (one `ReplaceRoute` with
/// `DestinationPrefixListId`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListMove {
    /// The table.
    pub table: RouteTableRef,
    /// `pl-…`.
    pub prefix_list_id: String,
    /// The new target.
    pub target: RouteTarget,
    /// The target before.
    pub previous: RouteTarget,
    /// Why.
    pub reason: String,
}

impl ListMove {
    /// As the response's `changes` list it: the prefix list as destination.
    pub fn report(&self) -> ChangeReport {
        ChangeReport {
            op: "replace".to_owned(),
            region: self.table.region.to_string(),
            route_table_id: self.table.id.clone(),
            destination: self.prefix_list_id.clone(),
            target: self.target.to_string(),
            previous_target: Some(self.previous.to_string()),
            reason: self.reason.clone(),
            account: None,
        }
    }
}

/// The decision for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What happened.
    pub kind: DecisionKind,
    /// Priority or AZ mode.
    pub mode: FailoverMode,
    /// The group's VPC.
    pub vpc_id: Option<String>,
    /// The active member before: the recorded one, or (first evaluation,
    /// lost state) the member most managed routes pointed at.
    pub previous: Option<String>,
    /// The active member after (tables that follow priority point at it).
    pub active: Option<String>,
    /// The member of every table holding managed routes, after.
    pub targets: BTreeMap<String, String>,
    /// One replace per managed route not pointing at its table's member,
    /// sorted.
    pub moves: Vec<Change>,
    /// The same for prefix-list routes, sorted.
    pub list_moves: Vec<ListMove>,
    /// The members the routes moved away from, and why (failovers).
    pub failed: Vec<FailedMember>,
    /// Managed routes found.
    pub managed_routes: usize,
    /// Why, in one sentence.
    pub reason: String,
    /// A failback waiting for its member to settle.
    pub pending_failback: Option<PendingFailback>,
    /// Members' health.
    pub members: Vec<MemberReport>,
    /// Publish a notification (failover, failback, the first "no healthy
    /// member" of an outage, a drift repair).
    pub notify: bool,
    /// The state to save (first: before any route moves).
    pub state: GroupState,
    /// The state to save once every move is acknowledged, when it differs:
    /// members terminated and forgotten because no route points at them any
    /// more. Until then the state keeps them, so a run cut short (deadline,
    /// crash) still finds their blackhole routes.
    pub settled: Option<GroupState>,
}

impl Decision {
    /// True when the state must be written.
    pub fn state_changed(&self, before: &GroupState) -> bool {
        &self.state != before
    }
}
