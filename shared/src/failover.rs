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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::FailbackPolicy;
use crate::model::{Route, RouteKey, RouteOrigin, RouteTableRef, RouteTarget};
use crate::plan::{Change, ChangeOp, ChangeReason};
use crate::trigger::InstanceState;

/// Tag naming an instance's failover group.
pub const TAG_GROUP: &str = "lbgp:failover-group";
/// Tag with an instance's priority (an integer, higher preferred, default 0).
pub const TAG_PRIORITY: &str = "lbgp:priority";
/// Tag selecting a group's mode: `az` for AZ affinity.
pub const TAG_MODE: &str = "lbgp:failover-mode";

/// An instance as EC2 describes it, with its status checks: the input from
/// which groups are built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceFacts {
    /// `i-…`.
    pub id: String,
    /// Its VPC (absent once terminated).
    pub vpc_id: Option<String>,
    /// Its availability zone.
    pub availability_zone: Option<String>,
    /// `running`, `stopped`…
    pub state: String,
    /// Primary network interface (device index 0).
    pub primary_interface_id: Option<String>,
    /// Every attached network interface.
    pub interface_ids: Vec<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The instance status check reports `impaired`.
    pub instance_impaired: bool,
    /// The system status check reports `impaired`.
    pub system_impaired: bool,
}

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
    /// Instance state as described.
    pub state: String,
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
}

impl Member {
    /// Running, no status check impaired, and no state-change event saying
    /// otherwise.
    pub fn healthy(&self) -> bool {
        self.event_state.is_none_or(|s| s == InstanceState::Running)
            && self.state == "running"
            && !self.instance_impaired
            && !self.system_impaired
    }

    /// Health in words, for reports and notifications.
    pub fn health(&self) -> String {
        if self.state != "running" {
            return if self.state.is_empty() {
                "state unknown".to_owned()
            } else {
                self.state.clone()
            };
        }
        if let Some(s) = self.event_state.filter(|s| *s != InstanceState::Running) {
            return format!("{} (state-change event)", state_name(s));
        }
        match (self.instance_impaired, self.system_impaired) {
            (false, false) => "running".to_owned(),
            (true, false) => "running, instance status check impaired".to_owned(),
            (false, true) => "running, system status check impaired".to_owned(),
            (true, true) => "running, instance and system status checks impaired".to_owned(),
        }
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
    fn answers_to(&self, id: &str) -> bool {
        self.instance_id == id
            || self.interfaces.iter().any(|i| i == id)
            || self.primary_interface.as_deref() == Some(id)
    }
}

fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::ShuttingDown => "shutting-down",
        InstanceState::Terminated => "terminated",
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

fn rank_order(a: &Member, b: &Member) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.instance_id.cmp(&b.instance_id))
}

/// Builds the groups from the instances tagged `lbgp:failover-group`
/// (others are ignored), sorted by name, members best first.
///
/// A bad `lbgp:priority` counts as 0 and a mode other than `az` as priority
/// mode, with a warning: a typo in a tag must not stop a failover.
pub fn groups_from_instances(instances: &[InstanceFacts]) -> Vec<Group> {
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
            Some(m) if m.eq_ignore_ascii_case("az") => votes.0 += 1,
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
        group.members.push(Member {
            instance_id: i.id.clone(),
            priority,
            az: i.availability_zone.clone(),
            vpc_id: i.vpc_id.clone(),
            state: i.state.clone(),
            instance_impaired: i.instance_impaired,
            system_impaired: i.system_impaired,
            event_state: None,
            interfaces,
            primary_interface: i.primary_interface_id.clone(),
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
        let vpcs: BTreeSet<&str> = self.members.iter().filter_map(|m| m.vpc_id.as_deref()).collect();
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
    pub fn owner_of(&self, route: &TableRoute) -> Option<&Member> {
        let ids = [
            route.instance_id.as_deref(),
            route.network_interface_id.as_deref(),
            match &route.route.target {
                RouteTarget::Instance(id) | RouteTarget::NetworkInterface(id) => Some(id.as_str()),
                _ => None,
            },
        ];
        // The instance id decides first: a route to a secondary interface
        // still points at that instance.
        ids.into_iter()
            .flatten()
            .find_map(|id| self.members.iter().find(|m| m.answers_to(id)))
    }
}

/// A route as read from a VPC route table, with every id AWS reports for its
/// target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableRoute {
    /// The route.
    pub route: Route,
    /// The instance, when the target is (on) an instance.
    pub instance_id: Option<String>,
    /// The network interface, when the target is one.
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
    pub routes: Vec<TableRoute>,
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
}

/// A state-change event about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// The instance.
    pub instance_id: String,
    /// Its new state.
    pub state: InstanceState,
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
    /// The state to save.
    pub state: GroupState,
}

impl Decision {
    /// True when the state must be written.
    pub fn state_changed(&self, before: &GroupState) -> bool {
        &self.state != before
    }
}

/// How one scope (the group's priority scope, or a single-AZ table) chose.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    /// Stays on its member (or takes the best one at first sight).
    Keep(String),
    /// Its member is unhealthy: moves to the best healthy one.
    Failover { from: String, to: String },
    /// A better member has been healthy long enough: moves back.
    Failback { from: String, to: String },
    /// An operator's switch.
    Operator { from: Option<String>, to: String },
    /// No member is healthy: stays where it is.
    NoHealthy { current: Option<String> },
}

impl Choice {
    fn target(&self) -> Option<&str> {
        match self {
            Choice::Keep(to)
            | Choice::Failover { to, .. }
            | Choice::Failback { to, .. }
            | Choice::Operator { to, .. } => Some(to),
            Choice::NoHealthy { .. } => None,
        }
    }
}

struct Context<'a> {
    group: &'a Group,
    members: &'a [Member],
    since: &'a BTreeMap<String, u64>,
    now: u64,
    /// `Some(d)`: a member is settled after `d` seconds of health; `None`:
    /// never (failback only by operator).
    settle_after: Option<u64>,
    pinned: Option<&'a str>,
    operator: bool,
    /// The group has no recorded state: moves are its first placement.
    first: bool,
}

impl Context<'_> {
    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.instance_id == id)
    }
    fn healthy(&self, id: &str) -> bool {
        self.member(id).is_some_and(Member::healthy)
    }
    fn settled(&self, id: &str) -> bool {
        match (self.settle_after, self.since.get(id)) {
            (Some(d), Some(since)) => self.healthy(id) && self.now.saturating_sub(*since) >= d,
            _ => false,
        }
    }

    /// Chooses the member of a scope whose candidates, best first, are
    /// `ranking` and whose member now is `current`.
    fn choose(&self, ranking: &[&Member], current: Option<&str>) -> Choice {
        let current = current.filter(|c| self.member(c).is_some());
        if let Some(pin) = self.pinned {
            return match current {
                Some(c) if c == pin => Choice::Keep(c.to_owned()),
                _ if self.operator => Choice::Operator {
                    from: current.map(str::to_owned),
                    to: pin.to_owned(),
                },
                // Pinned earlier and the routes drifted: repair, no new switch.
                _ => Choice::Keep(pin.to_owned()),
            };
        }
        let best = ranking
            .iter()
            .find(|m| m.healthy())
            .map(|m| m.instance_id.as_str());
        match (current, best) {
            (_, None) => Choice::NoHealthy {
                current: current.map(str::to_owned),
            },
            (None, Some(best)) => Choice::Keep(best.to_owned()),
            (Some(c), Some(best)) if c == best => Choice::Keep(c.to_owned()),
            (Some(c), Some(best)) if !self.healthy(c) => Choice::Failover {
                from: c.to_owned(),
                to: best.to_owned(),
            },
            // `current` is healthy and `best` ranks above it.
            (Some(c), Some(best)) if self.settled(best) => {
                if self.operator {
                    Choice::Operator {
                        from: Some(c.to_owned()),
                        to: best.to_owned(),
                    }
                } else {
                    Choice::Failback {
                        from: c.to_owned(),
                        to: best.to_owned(),
                    }
                }
            }
            (Some(c), Some(_)) => Choice::Keep(c.to_owned()),
        }
    }

    fn pending(&self, ranking: &[&Member], choice: &Choice) -> Option<PendingFailback> {
        let Choice::Keep(kept) = choice else {
            return None;
        };
        if self.pinned.is_some() {
            return None;
        }
        let best = ranking.iter().find(|m| m.healthy())?;
        (best.instance_id != *kept).then(|| PendingFailback {
            instance_id: best.instance_id.clone(),
            healthy_for_seconds: self
                .since
                .get(&best.instance_id)
                .map_or(0, |s| self.now.saturating_sub(*s)),
            failback_after_seconds: self.settle_after,
        })
    }

    fn rank(&self, id: &str) -> usize {
        self.group
            .members
            .iter()
            .position(|m| m.instance_id == id)
            .unwrap_or(usize::MAX)
    }
}

/// The member most of `routes` point at (ties: the better-ranked one).
fn majority<'a>(group: &'a Group, routes: &[&TableRoute]) -> Option<&'a str> {
    let mut counts: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    for r in routes {
        if let Some(m) = group.owner_of(r) {
            let rank = group
                .members
                .iter()
                .position(|x| x.instance_id == m.instance_id)
                .unwrap_or(usize::MAX);
            counts.entry(rank).or_insert((0, &m.instance_id)).0 += 1;
        }
    }
    // BTreeMap iterates best rank first; max_by_key keeps the last maximum,
    // so iterate in reverse to keep the best-ranked among equals.
    counts
        .into_values()
        .rev()
        .max_by_key(|(n, _)| *n)
        .map(|(_, id)| id)
}

/// Decides one group.
///
/// - Health: a member is healthy when running with no impaired status check
///   and no state-change event saying it is going down. A healthy streak
///   (`healthy_since`) survives between runs and restarts on any unhealthy
///   observation or on a `running` event (the instance was not running just
///   before, whatever we saw).
/// - Each *scope* has a member: the group's priority scope (its `active`,
///   followed by every table in priority mode, and by the main and mixed-AZ
///   tables in AZ mode), and in AZ mode each single-AZ table, whose
///   candidates are that AZ's members by priority and then the others.
/// - A scope whose member is unhealthy moves to its best healthy candidate
///   (failover, at once, never to an unhealthy member). A scope whose member
///   is healthy moves to a better candidate only when that one has been
///   healthy for the failback delay (failback), never with `never`. With no
///   healthy member nothing moves.
/// - At the first evaluation of a group (no state yet) there is no failover
///   to undo: healthy members count as settled, so tables start on their
///   preferred member (except with `never`).
/// - An operator's `activate` of the group's top-priority member puts every
///   scope on its preferred healthy member at once; of any other member, pins
///   every table to it until it is unhealthy.
/// - Managed routes already on their table's member (by instance id or any of
///   its interfaces) stay; the others get one replace each.
pub fn decide(
    group: &Group,
    tables: &[GroupTable],
    state: &GroupState,
    input: &DecideInput,
) -> Result<Decision, DecideError> {
    let vpc_id = group.vpc()?;
    let now = input.now;
    // Ranks come from the member order: make it the contract's order
    // whatever the caller passed.
    let mut sorted = group.clone();
    sorted.members.sort_by(rank_order);
    let group = &sorted;

    // This run's view of the members: the event is newer than any describe.
    let mut members: Vec<Member> = group.members.clone();
    let mut restarted: Option<&str> = None;
    if let Some(event) = &input.event
        && let Some(m) = members.iter_mut().find(|m| m.instance_id == event.instance_id)
    {
        if event.state == InstanceState::Running {
            restarted = Some(event.instance_id.as_str());
        } else {
            m.event_state = Some(event.state);
        }
    }

    // Healthy streaks.
    let mut since: BTreeMap<String, u64> = BTreeMap::new();
    for m in members.iter().filter(|m| m.healthy()) {
        let start = match state.healthy_since.get(&m.instance_id) {
            Some(s) if restarted != Some(m.instance_id.as_str()) => (*s).min(now),
            _ => now,
        };
        since.insert(m.instance_id.clone(), start);
    }

    // Operator switch.
    let mut pinned: Option<String> = state
        .pinned
        .clone()
        .filter(|p| members.iter().any(|m| &m.instance_id == p && m.healthy()));
    let operator = input.activate.is_some();
    if let Some(target) = &input.activate {
        let Some(m) = members.iter().find(|m| &m.instance_id == target) else {
            return Err(DecideError::NotAMember {
                group: group.name.clone(),
                instance: target.clone(),
                members: members.iter().map(|m| m.instance_id.clone()).collect(),
            });
        };
        if !m.healthy() {
            return Err(DecideError::Unhealthy {
                group: group.name.clone(),
                instance: target.clone(),
                health: m.health(),
            });
        }
        let top = members.first().map(|m| m.instance_id.as_str());
        pinned = (top != Some(target.as_str())).then(|| target.clone());
    }

    let settle_after = match input.policy {
        // An operator's switch and a first evaluation need no waiting.
        _ if operator => Some(0),
        FailbackPolicy::After(_) if !state.initialized => Some(0),
        FailbackPolicy::After(d) => Some(d.as_secs()),
        FailbackPolicy::Never => None,
    };
    let ctx = Context {
        group,
        members: &members,
        since: &since,
        now,
        settle_after,
        pinned: pinned.as_deref(),
        operator,
        first: !state.initialized,
    };
    // The report's delay is the configured one, not the first-run shortcut.
    let configured_delay = match input.policy {
        FailbackPolicy::After(d) => Some(d.as_secs()),
        FailbackPolicy::Never => None,
    };

    // Managed routes, per table of the group's VPC.
    let mut tables: Vec<&GroupTable> = tables
        .iter()
        .filter(|t| vpc_id.as_deref() == Some(t.vpc_id.as_str()))
        .collect();
    tables.sort();
    tables.dedup_by(|a, b| a.table == b.table);
    let managed: Vec<(&GroupTable, Vec<&TableRoute>)> = tables
        .iter()
        .map(|t| {
            let mut routes: Vec<&TableRoute> = t
                .routes
                .iter()
                .filter(|r| r.route.origin == RouteOrigin::Static && group.owner_of(r).is_some())
                .collect();
            routes.sort();
            (*t, routes)
        })
        .filter(|(_, routes)| !routes.is_empty())
        .collect();
    let managed_routes = managed.iter().map(|(_, r)| r.len()).sum();

    let by_priority: Vec<&Member> = members.iter().collect();
    let follows_priority = |t: &GroupTable| group.mode == FailoverMode::Priority || t.zone.is_none();

    // The priority scope.
    let recorded = state.active.clone().filter(|a| group.member(a).is_some());
    let global_current = recorded.or_else(|| {
        let mut routes: Vec<&TableRoute> = managed
            .iter()
            .filter(|(t, _)| follows_priority(t))
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        if routes.is_empty() {
            routes = managed.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        }
        majority(group, &routes).map(str::to_owned)
    });
    let global = ctx.choose(&by_priority, global_current.as_deref());
    let mut pending = ctx.pending(&by_priority, &global);

    // Every table's choice.
    let mut choices: Vec<(&GroupTable, &Vec<&TableRoute>, Choice)> = Vec::new();
    for (table, routes) in &managed {
        if follows_priority(table) {
            choices.push((table, routes, global.clone()));
            continue;
        }
        let zone = table.zone.as_deref();
        let ranking: Vec<&Member> = members
            .iter()
            .filter(|m| m.az.as_deref() == zone)
            .chain(members.iter().filter(|m| m.az.as_deref() != zone))
            .collect();
        let current = state
            .tables
            .get(&table.table.id)
            .filter(|id| group.member(id).is_some())
            .map(String::as_str)
            .or_else(|| majority(group, routes));
        let choice = ctx.choose(&ranking, current);
        if pending.is_none() {
            pending = ctx.pending(&ranking, &choice);
        }
        choices.push((table, routes, choice));
    }
    if let Some(p) = &mut pending {
        p.failback_after_seconds = configured_delay;
    }

    // Moves.
    let mut moves = Vec::new();
    let mut targets = BTreeMap::new();
    for (table, routes, choice) in &choices {
        let Some(target_id) = choice.target() else {
            continue;
        };
        let Some(target) = ctx.member(target_id) else {
            continue;
        };
        targets.insert(table.table.id.clone(), target_id.to_owned());
        for r in routes.iter() {
            let owner = group.owner_of(r).map(|m| m.instance_id.as_str());
            if owner == Some(target_id) {
                continue;
            }
            let why = match choice {
                Choice::Failover { from, to } => format!(
                    "failover: {from} is unhealthy ({}); {to} is the best healthy member",
                    ctx.member(from).map(Member::health).unwrap_or_default()
                ),
                Choice::Failback { to, .. } if ctx.first => {
                    format!("placement: {to} is the preferred healthy member (first evaluation of the group)")
                }
                Choice::Failback { to, .. } => format!(
                    "failback: {to} healthy for {} s",
                    since.get(to).map_or(0, |s| now.saturating_sub(*s))
                ),
                Choice::Operator { to, .. } => format!("operator activated {to}"),
                Choice::Keep(to) => format!(
                    "drift: route pointed at {}; group {} is on {to}",
                    owner.unwrap_or("?"),
                    group.name
                ),
                Choice::NoHealthy { .. } => continue,
            };
            moves.push(Change {
                key: RouteKey {
                    table: r.route.key.table.clone(),
                    destination: r.route.key.destination,
                },
                op: ChangeOp::Replace,
                target: target.route_target(),
                previous: Some(r.route.target.clone()),
                reason: ChangeReason::Other(why),
            });
        }
    }
    moves.sort();

    // The kind: one member change anywhere makes the group's decision.
    let all: Vec<&Choice> = std::iter::once(&global)
        .chain(choices.iter().map(|(_, _, c)| c))
        .collect();
    let active = global.target().map(str::to_owned).or(global_current.clone());
    let kind = if all.iter().any(|c| matches!(c, Choice::NoHealthy { .. })) {
        DecisionKind::NoHealthyMember
    } else if let Some(Choice::Operator { from, to }) =
        all.iter().find(|c| matches!(c, Choice::Operator { .. }))
    {
        let from_rank = from.as_deref().map_or(usize::MAX, |f| ctx.rank(f));
        if ctx.rank(to) < from_rank {
            DecisionKind::Failback
        } else {
            DecisionKind::Failover
        }
    } else if all.iter().any(|c| matches!(c, Choice::Failover { .. })) {
        DecisionKind::Failover
    } else if all.iter().any(|c| matches!(c, Choice::Failback { .. })) {
        DecisionKind::Failback
    } else {
        DecisionKind::None
    };

    let reason = explain(&ctx, kind, &global, &all, &moves, input);

    let mut next = GroupState {
        initialized: true,
        active: active.clone(),
        tables: BTreeMap::new(),
        healthy_since: since.clone(),
        pinned: pinned.clone(),
        no_healthy_alerted: kind == DecisionKind::NoHealthyMember,
    };
    if group.mode == FailoverMode::Az {
        for (table, _, choice) in &choices {
            if follows_priority(table) {
                continue;
            }
            let kept = match choice {
                Choice::NoHealthy { current } => current.clone(),
                other => other.target().map(str::to_owned),
            };
            if let Some(id) = kept {
                next.tables.insert(table.table.id.clone(), id);
            }
        }
    }
    let notify = match kind {
        DecisionKind::Failover | DecisionKind::Failback => true,
        DecisionKind::NoHealthyMember => !state.no_healthy_alerted,
        DecisionKind::None => !moves.is_empty(),
        DecisionKind::Locked => false,
    };
    let member_reports = members
        .iter()
        .map(|m| MemberReport {
            instance_id: m.instance_id.clone(),
            priority: m.priority,
            az: m.az.clone(),
            healthy: m.healthy(),
            health: m.health(),
            healthy_for_seconds: since.get(&m.instance_id).map(|s| now.saturating_sub(*s)),
        })
        .collect();
    Ok(Decision {
        kind,
        mode: group.mode,
        vpc_id,
        previous: global_current,
        active,
        targets,
        moves,
        managed_routes,
        reason,
        pending_failback: pending,
        members: member_reports,
        notify,
        state: next,
    })
}

fn explain(
    ctx: &Context<'_>,
    kind: DecisionKind,
    global: &Choice,
    all: &[&Choice],
    moves: &[Change],
    input: &DecideInput,
) -> String {
    let health = |id: &str| {
        ctx.member(id)
            .map(Member::health)
            .unwrap_or_else(|| "gone".to_owned())
    };
    match kind {
        DecisionKind::NoHealthyMember => format!(
            "no healthy member: {}; routes left as they are",
            ctx.members
                .iter()
                .map(|m| format!("{} {}", m.instance_id, m.health()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ if input.activate.is_some() => match input.activate.as_deref() {
            Some(to) if ctx.pinned == Some(to) => {
                format!("operator activated {to}; it keeps the routes while healthy")
            }
            Some(to) => {
                format!("operator activated {to}, the top-priority member; automatic selection resumed")
            }
            None => String::new(),
        },
        DecisionKind::Failover => {
            let (from, to) = all
                .iter()
                .find_map(|c| match c {
                    Choice::Failover { from, to } => Some((from.as_str(), to.as_str())),
                    _ => None,
                })
                .unwrap_or(("?", "?"));
            format!("{from} is unhealthy ({}); routes moved to {to}", health(from))
        }
        DecisionKind::Failback => {
            let to = all
                .iter()
                .find_map(|c| match c {
                    Choice::Failback { to, .. } => Some(to.as_str()),
                    _ => None,
                })
                .unwrap_or("?");
            if ctx.first {
                return format!(
                    "first evaluation of the group: routes moved to their preferred healthy member {to}"
                );
            }
            let secs = ctx.since.get(to).map_or(0, |s| ctx.now.saturating_sub(*s));
            format!("{to} has been healthy for {secs} s; routes moved back to it")
        }
        DecisionKind::None | DecisionKind::Locked => {
            let on = global.target().unwrap_or("-");
            if moves.is_empty() {
                format!("{on} is active; routes in place")
            } else {
                format!("{on} is active; {} drifted routes repointed", moves.len())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Region, RouteState, TableKind};
    use proptest::prelude::*;
    use std::time::Duration;

    const VPC: &str = "vpc-1";

    fn facts(id: &str, priority: Option<&str>, az: &str, state: &str) -> InstanceFacts {
        let mut tags = BTreeMap::from([(TAG_GROUP.to_owned(), "vpn".to_owned())]);
        if let Some(p) = priority {
            tags.insert(TAG_PRIORITY.to_owned(), p.to_owned());
        }
        InstanceFacts {
            id: id.to_owned(),
            vpc_id: Some(VPC.to_owned()),
            availability_zone: Some(az.to_owned()),
            state: state.to_owned(),
            primary_interface_id: Some(format!("eni-{id}-0")),
            interface_ids: vec![format!("eni-{id}-0"), format!("eni-{id}-1")],
            tags,
            instance_impaired: false,
            system_impaired: false,
        }
    }

    fn az_mode(mut f: InstanceFacts) -> InstanceFacts {
        f.tags.insert(TAG_MODE.to_owned(), "az".to_owned());
        f
    }

    fn group(instances: &[InstanceFacts]) -> Group {
        let mut groups = groups_from_instances(instances);
        assert_eq!(groups.len(), 1);
        groups.remove(0)
    }

    fn table_ref(id: &str) -> RouteTableRef {
        RouteTableRef {
            region: Region::new("eu-west-1").unwrap(),
            kind: TableKind::Vpc,
            id: id.to_owned(),
        }
    }

    /// A route to an instance, as AWS reads it back: instance and primary ENI.
    fn to_instance(table: &str, dest: &str, instance: &str) -> TableRoute {
        let eni = format!("eni-{instance}-0");
        TableRoute {
            route: Route {
                key: RouteKey {
                    table: table_ref(table),
                    destination: dest.parse().unwrap(),
                },
                target: RouteTarget::NetworkInterface(eni.clone()),
                state: RouteState::Active,
                origin: RouteOrigin::Static,
            },
            instance_id: Some(instance.to_owned()),
            network_interface_id: Some(eni),
        }
    }

    fn to_eni(table: &str, dest: &str, instance: &str, eni: &str) -> TableRoute {
        let mut r = to_instance(table, dest, instance);
        r.route.target = RouteTarget::NetworkInterface(eni.to_owned());
        r.network_interface_id = Some(eni.to_owned());
        r
    }

    fn to_tgw(table: &str, dest: &str) -> TableRoute {
        TableRoute {
            route: Route {
                key: RouteKey {
                    table: table_ref(table),
                    destination: dest.parse().unwrap(),
                },
                target: RouteTarget::TransitGateway("tgw-1".into()),
                state: RouteState::Active,
                origin: RouteOrigin::Static,
            },
            instance_id: None,
            network_interface_id: None,
        }
    }

    fn table(id: &str, zone: Option<&str>, routes: Vec<TableRoute>) -> GroupTable {
        GroupTable {
            table: table_ref(id),
            vpc_id: VPC.to_owned(),
            zone: zone.map(str::to_owned),
            routes,
        }
    }

    fn input(now: u64, policy: FailbackPolicy) -> DecideInput {
        DecideInput {
            now,
            policy,
            event: None,
            activate: None,
        }
    }

    const T0: u64 = 1_000_000;
    const FIVE_MIN: FailbackPolicy = FailbackPolicy::After(Duration::from_secs(300));
    const AT_ONCE: FailbackPolicy = FailbackPolicy::After(Duration::ZERO);

    /// Primary i-p (200) in a, standby i-s (100) in b.
    fn pair(p_state: &str, s_state: &str) -> Group {
        group(&[
            facts("i-p", Some("200"), "a", p_state),
            facts("i-s", Some("100"), "b", s_state),
        ])
    }

    fn two_tables(on: &str) -> Vec<GroupTable> {
        vec![
            table(
                "rtb-1",
                Some("a"),
                vec![
                    to_instance("rtb-1", "10.0.0.0/8", on),
                    to_instance("rtb-1", "172.16.0.0/12", on),
                    to_tgw("rtb-1", "192.168.0.0/16"),
                ],
            ),
            table("rtb-2", None, vec![to_instance("rtb-2", "10.0.0.0/8", on)]),
        ]
    }

    fn settled_state(active: &str, healthy: &[&str], since: u64) -> GroupState {
        GroupState {
            initialized: true,
            active: Some(active.to_owned()),
            healthy_since: healthy.iter().map(|h| ((*h).to_owned(), since)).collect(),
            ..Default::default()
        }
    }

    /// Applies the moves to the tables, as EC2 would.
    fn apply(tables: &[GroupTable], group: &Group, moves: &[Change]) -> Vec<GroupTable> {
        let mut out = tables.to_vec();
        for c in moves {
            let t = out.iter_mut().find(|t| t.table == c.key.table).unwrap();
            let r = t
                .routes
                .iter_mut()
                .find(|r| r.route.key.destination == c.key.destination)
                .unwrap();
            let eni = c.target.id().to_owned();
            let owner = group
                .members
                .iter()
                .find(|m| m.answers_to(&eni))
                .map(|m| m.instance_id.clone());
            r.route.target = c.target.clone();
            r.network_interface_id = Some(eni);
            r.instance_id = owner;
        }
        out
    }

    #[test]
    fn groups_are_built_from_tags() {
        let mut bad = facts("i-c", Some("high"), "a", "running");
        bad.tags.insert(TAG_MODE.to_owned(), "zonal".to_owned());
        let mut other = facts("i-x", None, "a", "running");
        other.tags.insert(TAG_GROUP.to_owned(), "edge".to_owned());
        let untagged = InstanceFacts {
            id: "i-u".into(),
            ..Default::default()
        };
        let groups = groups_from_instances(&[
            facts("i-b", Some("100"), "a", "running"),
            bad,
            facts("i-a", Some("100"), "b", "running"),
            facts("i-z", Some("300"), "b", "stopped"),
            other,
            untagged,
        ]);
        assert_eq!(
            groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            vec!["edge", "vpn"]
        );
        let vpn = &groups[1];
        // Priority descending, ties by instance id, bad priority = 0.
        let order: Vec<_> = vpn.members.iter().map(|m| m.instance_id.as_str()).collect();
        assert_eq!(order, vec!["i-z", "i-a", "i-b", "i-c"]);
        assert_eq!(vpn.mode, FailoverMode::Priority);
        assert_eq!(vpn.warnings.len(), 2, "{:?}", vpn.warnings);
        assert!(
            vpn.warnings
                .iter()
                .any(|w| w.contains("\"high\" is not an integer"))
        );
        assert!(
            vpn.warnings
                .iter()
                .any(|w| w.contains("\"zonal\" is not a known mode"))
        );

        // Half-tagged for AZ mode: AZ mode, with a warning.
        let half = groups_from_instances(&[
            az_mode(facts("i-1", None, "a", "running")),
            facts("i-2", None, "b", "running"),
        ]);
        assert_eq!(half[0].mode, FailoverMode::Az);
        assert!(
            half[0].warnings[0].contains("1 of 2 members"),
            "{:?}",
            half[0].warnings
        );
    }

    #[test]
    fn health_needs_running_and_no_impaired_check() {
        let mut m = pair("running", "running").members[0].clone();
        assert!(m.healthy());
        assert_eq!(m.health(), "running");
        m.system_impaired = true;
        assert!(!m.healthy());
        assert_eq!(m.health(), "running, system status check impaired");
        m.system_impaired = false;
        m.instance_impaired = true;
        assert!(!m.healthy());
        m.instance_impaired = false;
        m.event_state = Some(InstanceState::Stopping);
        assert!(!m.healthy());
        assert_eq!(m.health(), "stopping (state-change event)");
        for state in [
            "pending",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "",
        ] {
            let mut m = m.clone();
            m.event_state = None;
            m.state = state.to_owned();
            assert!(!m.healthy(), "{state}");
        }
    }

    #[test]
    fn table_zones() {
        let zones = BTreeMap::from([
            ("subnet-a1".to_owned(), "a".to_owned()),
            ("subnet-a2".to_owned(), "a".to_owned()),
            ("subnet-b".to_owned(), "b".to_owned()),
        ]);
        let s = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            table_zone(false, &s(&["subnet-a1", "subnet-a2"]), &zones),
            Some("a".into())
        );
        assert_eq!(table_zone(true, &s(&["subnet-a1"]), &zones), None);
        assert_eq!(table_zone(false, &s(&["subnet-a1", "subnet-b"]), &zones), None);
        assert_eq!(table_zone(false, &s(&[]), &zones), None);
        assert_eq!(table_zone(false, &s(&["subnet-unknown"]), &zones), None);
    }

    #[test]
    fn healthy_active_means_no_moves() {
        let g = pair("running", "running");
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let d = decide(&g, &two_tables("i-p"), &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::None);
        assert!(d.moves.is_empty());
        assert!(!d.notify);
        assert_eq!(d.managed_routes, 3);
        assert_eq!(d.active.as_deref(), Some("i-p"));
        assert!(!d.state_changed(&state), "{:?}", d.state);
    }

    #[test]
    fn stopped_primary_fails_over_every_managed_route_once() {
        let g = pair("stopped", "running");
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let tables = two_tables("i-p");
        let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.previous.as_deref(), Some("i-p"));
        assert_eq!(d.active.as_deref(), Some("i-s"));
        assert_eq!(d.moves.len(), 3);
        assert!(d.moves.iter().all(|c| c.op == ChangeOp::Replace
            && c.target == RouteTarget::NetworkInterface("eni-i-s-0".into())
            && c.previous == Some(RouteTarget::NetworkInterface("eni-i-p-0".into()))));
        assert!(d.reason.contains("i-p is unhealthy (stopped)"), "{}", d.reason);
        assert!(d.notify);
        assert_eq!(d.state.healthy_since.keys().collect::<Vec<_>>(), vec!["i-s"]);

        // Applied, the same observation again: nothing to do, nothing to save.
        let after = apply(&tables, &g, &d.moves);
        let again = decide(&g, &after, &d.state, &input(T0 + 5, FIVE_MIN)).unwrap();
        assert_eq!(again.kind, DecisionKind::None);
        assert!(again.moves.is_empty());
        assert!(!again.state_changed(&d.state));
        assert!(!again.notify);
    }

    #[test]
    fn a_stop_event_fails_over_before_describe_catches_up() {
        let g = pair("running", "running");
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let mut i = input(T0, FIVE_MIN);
        i.event = Some(MemberEvent {
            instance_id: "i-p".into(),
            state: InstanceState::Stopping,
        });
        let d = decide(&g, &two_tables("i-p"), &state, &i).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.moves.len(), 3);
        assert!(!d.state.healthy_since.contains_key("i-p"), "streak must restart");
    }

    #[test]
    fn failback_waits_for_uninterrupted_health() {
        let g = pair("running", "running");
        let tables = two_tables("i-s");
        // Failed over; the primary came back (running event) at T0.
        let state = GroupState {
            initialized: true,
            active: Some("i-s".into()),
            healthy_since: BTreeMap::from([("i-s".into(), T0 - 5000)]),
            ..Default::default()
        };
        let mut i = input(T0, FIVE_MIN);
        i.event = Some(MemberEvent {
            instance_id: "i-p".into(),
            state: InstanceState::Running,
        });
        let d = decide(&g, &tables, &state, &i).unwrap();
        assert_eq!(d.kind, DecisionKind::None);
        assert!(d.moves.is_empty());
        assert_eq!(d.state.healthy_since.get("i-p"), Some(&T0));
        let p = d.pending_failback.clone().unwrap();
        assert_eq!(
            (
                p.instance_id.as_str(),
                p.healthy_for_seconds,
                p.failback_after_seconds
            ),
            ("i-p", 0, Some(300))
        );

        // 299 s later: still waiting.
        let d2 = decide(&g, &tables, &d.state, &input(T0 + 299, FIVE_MIN)).unwrap();
        assert_eq!(d2.kind, DecisionKind::None);
        assert!(d2.moves.is_empty());
        assert!(!d2.state_changed(&d.state));

        // 300 s: back on the primary, every managed route.
        let d3 = decide(&g, &tables, &d2.state, &input(T0 + 300, FIVE_MIN)).unwrap();
        assert_eq!(d3.kind, DecisionKind::Failback);
        assert_eq!(d3.active.as_deref(), Some("i-p"));
        assert_eq!(d3.moves.len(), 3);
        assert!(d3.notify);
        assert!(d3.reason.contains("healthy for 300 s"), "{}", d3.reason);
    }

    #[test]
    fn a_flapping_primary_does_not_flap_the_routes() {
        let tables = two_tables("i-s");
        let mut state = GroupState {
            initialized: true,
            active: Some("i-s".into()),
            healthy_since: BTreeMap::from([("i-s".into(), T0 - 5000)]),
            ..Default::default()
        };
        // Up 200 s, down (event), up 200 s, down (describe), up 200 s…
        let mut now = T0;
        for round in 0..6 {
            let up = pair("running", "running");
            let mut i = input(now, FIVE_MIN);
            i.event = Some(MemberEvent {
                instance_id: "i-p".into(),
                state: InstanceState::Running,
            });
            let d = decide(&up, &tables, &state, &i).unwrap();
            assert!(d.moves.is_empty(), "round {round}");
            state = d.state;
            now += 200;
            let d = decide(&up, &tables, &state, &input(now, FIVE_MIN)).unwrap();
            assert!(d.moves.is_empty(), "round {round}");
            state = d.state;
            let (down, event) = if round % 2 == 0 {
                (pair("running", "running"), Some(InstanceState::Stopping))
            } else {
                (pair("stopped", "running"), None)
            };
            let mut i = input(now, FIVE_MIN);
            i.event = event.map(|state| MemberEvent {
                instance_id: "i-p".into(),
                state,
            });
            let d = decide(&down, &tables, &state, &i).unwrap();
            assert!(d.moves.is_empty(), "round {round}");
            assert!(!d.state.healthy_since.contains_key("i-p"));
            state = d.state;
            now += 10;
        }
    }

    #[test]
    fn failback_at_once_and_never() {
        let g = pair("running", "running");
        let tables = two_tables("i-s");
        let state = GroupState {
            initialized: true,
            active: Some("i-s".into()),
            healthy_since: BTreeMap::from([("i-s".into(), T0 - 5000)]),
            ..Default::default()
        };
        let d = decide(&g, &tables, &state, &input(T0, AT_ONCE)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failback);
        assert_eq!(d.moves.len(), 3);

        let never = decide(&g, &tables, &state, &input(T0 + 100_000, FailbackPolicy::Never)).unwrap();
        assert_eq!(never.kind, DecisionKind::None);
        assert!(never.moves.is_empty());
        assert_eq!(never.pending_failback.unwrap().failback_after_seconds, None);
        // Days later, still not.
        let later = decide(
            &g,
            &tables,
            &never.state,
            &input(T0 + 900_000, FailbackPolicy::Never),
        )
        .unwrap();
        assert!(later.moves.is_empty());
    }

    #[test]
    fn the_standby_fails_while_the_primary_is_still_settling() {
        // Active standby fails; the primary is healthy but young: it is the
        // only healthy member, so it takes the routes at once.
        let g = pair("running", "stopped");
        let state = GroupState {
            initialized: true,
            active: Some("i-s".into()),
            healthy_since: BTreeMap::from([("i-s".into(), T0 - 5000), ("i-p".into(), T0 - 10)]),
            ..Default::default()
        };
        let d = decide(&g, &two_tables("i-s"), &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.active.as_deref(), Some("i-p"));
        assert_eq!(d.moves.len(), 3);
    }

    #[test]
    fn no_healthy_member_leaves_routes_and_alerts_once() {
        let g = pair("stopped", "stopped");
        let state = settled_state("i-s", &["i-s"], T0 - 1000);
        let tables = two_tables("i-s");
        let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::NoHealthyMember);
        assert!(d.moves.is_empty());
        assert!(d.notify);
        assert_eq!(d.active.as_deref(), Some("i-s"), "active kept as it is");
        assert!(d.reason.contains("i-p stopped"), "{}", d.reason);
        let again = decide(&g, &tables, &d.state, &input(T0 + 60, FIVE_MIN)).unwrap();
        assert_eq!(again.kind, DecisionKind::NoHealthyMember);
        assert!(!again.notify, "alerted twice");
        assert!(!again.state_changed(&d.state));

        // The primary returns: it is the only healthy member, routes go to it.
        let back = pair("running", "stopped");
        let d = decide(&back, &tables, &again.state, &input(T0 + 120, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.moves.len(), 3);
        assert!(!d.state.no_healthy_alerted);
    }

    #[test]
    fn routes_to_any_interface_of_the_active_member_stay() {
        let g = pair("running", "running");
        let tables = vec![table(
            "rtb-1",
            None,
            vec![
                to_eni("rtb-1", "10.0.0.0/8", "i-p", "eni-i-p-1"),
                // A route as some API versions show it: ENI only.
                TableRoute {
                    instance_id: None,
                    ..to_eni("rtb-1", "172.16.0.0/12", "i-p", "eni-i-p-0")
                },
                // Instance id only.
                TableRoute {
                    route: Route {
                        target: RouteTarget::Instance("i-p".into()),
                        ..to_instance("rtb-1", "192.168.0.0/16", "i-p").route
                    },
                    instance_id: Some("i-p".into()),
                    network_interface_id: None,
                },
                // The standby's secondary interface: managed, moved to the
                // active member's primary interface.
                to_eni("rtb-1", "100.64.0.0/10", "i-s", "eni-i-s-1"),
            ],
        )];
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.managed_routes, 4);
        assert_eq!(d.moves.len(), 1, "{:?}", d.moves);
        assert_eq!(d.moves[0].key.destination.to_string(), "100.64.0.0/10");
        assert_eq!(
            d.moves[0].target,
            RouteTarget::NetworkInterface("eni-i-p-0".into())
        );
        assert!(
            d.moves[0]
                .reason
                .to_string()
                .starts_with("drift: route pointed at i-s")
        );
        assert_eq!(d.kind, DecisionKind::None);
        assert!(d.notify, "a drift repair is notified");
    }

    #[test]
    fn routes_of_other_targets_vpcs_and_origins_are_not_managed() {
        let g = pair("stopped", "running");
        let mut other_vpc = table("rtb-9", None, vec![to_instance("rtb-9", "10.0.0.0/8", "i-p")]);
        other_vpc.vpc_id = "vpc-2".into();
        let mut propagated = to_instance("rtb-1", "172.16.0.0/12", "i-p");
        propagated.route.origin = RouteOrigin::Propagated;
        let stranger = to_eni("rtb-1", "192.168.0.0/16", "i-x", "eni-i-x-0");
        let tables = vec![
            table(
                "rtb-1",
                None,
                vec![
                    to_instance("rtb-1", "10.0.0.0/8", "i-p"),
                    propagated,
                    stranger,
                    to_tgw("rtb-1", "0.0.0.0/0"),
                ],
            ),
            other_vpc,
        ];
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.managed_routes, 1);
        assert_eq!(d.moves.len(), 1);
        assert_eq!(d.moves[0].key.table.id, "rtb-1");
        assert_eq!(d.moves[0].key.destination.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn a_group_spanning_vpcs_is_an_error() {
        let mut f = facts("i-s", Some("100"), "b", "running");
        f.vpc_id = Some("vpc-2".into());
        let g = group(&[facts("i-p", Some("200"), "a", "running"), f]);
        let err = decide(&g, &[], &GroupState::default(), &input(T0, FIVE_MIN)).unwrap_err();
        assert!(matches!(err, DecideError::SpansVpcs { .. }));
        assert!(err.to_string().contains("spans VPCs vpc-1, vpc-2"), "{err}");
        // A terminated member without a VPC does not count.
        let mut gone = facts("i-s", Some("100"), "b", "terminated");
        gone.vpc_id = None;
        let g = group(&[facts("i-p", Some("200"), "a", "running"), gone]);
        assert_eq!(g.vpc().unwrap().as_deref(), Some(VPC));
    }

    #[test]
    fn operator_activate() {
        let g = pair("running", "running");
        let tables = two_tables("i-p");
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let mut i = input(T0, FIVE_MIN);
        i.activate = Some("i-s".into());
        let d = decide(&g, &tables, &state, &i).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.moves.len(), 3);
        assert!(
            d.moves
                .iter()
                .all(|c| c.reason.to_string() == "operator activated i-s")
        );
        assert_eq!(d.state.pinned.as_deref(), Some("i-s"));
        assert!(
            d.reason.contains("keeps the routes while healthy"),
            "{}",
            d.reason
        );

        // The pin holds: the settled primary does not take the routes back.
        let tables = apply(&tables, &g, &d.moves);
        let later = decide(&g, &tables, &d.state, &input(T0 + 10_000, FIVE_MIN)).unwrap();
        assert_eq!(later.kind, DecisionKind::None);
        assert!(later.moves.is_empty());

        // Activating the top member clears the pin and moves back at once,
        // even with `never`.
        let mut i = input(T0 + 10_001, FailbackPolicy::Never);
        i.activate = Some("i-p".into());
        let back = decide(&g, &tables, &later.state, &i).unwrap();
        assert_eq!(back.kind, DecisionKind::Failback);
        assert_eq!(back.moves.len(), 3);
        assert_eq!(back.state.pinned, None);

        // A pinned member that fails: normal failover, pin gone.
        let pinned_down = pair("running", "stopped");
        let d2 = decide(&pinned_down, &tables, &later.state, &input(T0 + 20_000, FIVE_MIN)).unwrap();
        assert_eq!(d2.kind, DecisionKind::Failover);
        assert_eq!(d2.state.pinned, None);
        assert_eq!(d2.active.as_deref(), Some("i-p"));
    }

    #[test]
    fn operator_activate_refusals() {
        let g = pair("running", "stopped");
        let state = settled_state("i-p", &["i-p"], T0 - 1000);
        let mut i = input(T0, FIVE_MIN);
        i.activate = Some("i-s".into());
        let err = decide(&g, &two_tables("i-p"), &state, &i).unwrap_err();
        assert_eq!(
            err.to_string(),
            "activate refused: i-s in failover group \"vpn\" is not healthy (stopped); routes left as they are"
        );
        i.activate = Some("i-nope".into());
        let err = decide(&g, &two_tables("i-p"), &state, &i).unwrap_err();
        assert!(matches!(err, DecideError::NotAMember { .. }), "{err}");
    }

    #[test]
    fn first_evaluation_places_routes_on_the_preferred_member() {
        let g = pair("running", "running");
        let d = decide(
            &g,
            &two_tables("i-s"),
            &GroupState::default(),
            &input(T0, FIVE_MIN),
        )
        .unwrap();
        assert_eq!(d.kind, DecisionKind::Failback);
        assert_eq!(d.moves.len(), 3);
        assert!(d.reason.starts_with("first evaluation"), "{}", d.reason);
        assert!(d.moves[0].reason.to_string().starts_with("placement:"));
        assert!(d.state.initialized);
        // With `never`, the routes stay where the operator put them.
        let d = decide(
            &g,
            &two_tables("i-s"),
            &GroupState::default(),
            &input(T0, FailbackPolicy::Never),
        )
        .unwrap();
        assert!(d.moves.is_empty());
        assert_eq!(d.active.as_deref(), Some("i-s"));
        // No managed route at all: the best member is recorded, nothing moves.
        let d = decide(&g, &[], &GroupState::default(), &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::None);
        assert_eq!(d.active.as_deref(), Some("i-p"));
    }

    fn az_group(a_state: &str, b_state: &str) -> Group {
        group(&[
            az_mode(facts("i-a", Some("200"), "a", a_state)),
            az_mode(facts("i-b", Some("100"), "b", b_state)),
        ])
    }

    fn az_tables(a_on: &str, b_on: &str, main_on: &str) -> Vec<GroupTable> {
        vec![
            table("rtb-a", Some("a"), vec![to_instance("rtb-a", "10.0.0.0/8", a_on)]),
            table(
                "rtb-b",
                Some("b"),
                vec![
                    to_instance("rtb-b", "10.0.0.0/8", b_on),
                    to_instance("rtb-b", "172.16.0.0/12", b_on),
                ],
            ),
            table(
                "rtb-main",
                None,
                vec![to_instance("rtb-main", "10.0.0.0/8", main_on)],
            ),
        ]
    }

    #[test]
    fn az_mode_keeps_each_zone_on_its_member() {
        let g = az_group("running", "running");
        assert_eq!(g.mode, FailoverMode::Az);
        // Everything on i-a at first: rtb-b goes to its own AZ's member.
        let tables = az_tables("i-a", "i-a", "i-a");
        let d = decide(&g, &tables, &GroupState::default(), &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d.moves.len(), 2);
        assert!(d.moves.iter().all(|c| c.key.table.id == "rtb-b"));
        assert_eq!(
            d.targets,
            BTreeMap::from([
                ("rtb-a".to_owned(), "i-a".to_owned()),
                ("rtb-b".to_owned(), "i-b".to_owned()),
                ("rtb-main".to_owned(), "i-a".to_owned()),
            ])
        );
        let tables = apply(&tables, &g, &d.moves);
        let state = d.state;

        // i-b fails: its table goes to i-a; the others stay.
        let b_down = az_group("running", "stopped");
        let d = decide(&b_down, &tables, &state, &input(T0 + 60, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        assert_eq!(d.moves.len(), 2);
        assert!(
            d.moves.iter().all(|c| c.key.table.id == "rtb-b"
                && c.target == RouteTarget::NetworkInterface("eni-i-a-0".into()))
        );
        assert_eq!(d.active.as_deref(), Some("i-a"));
        let tables = apply(&tables, &b_down, &d.moves);

        // i-b back: waits for the delay, then rtb-b returns to it.
        let up = az_group("running", "running");
        let d = decide(&up, &tables, &d.state, &input(T0 + 120, FIVE_MIN)).unwrap();
        assert!(d.moves.is_empty());
        assert_eq!(d.pending_failback.as_ref().unwrap().instance_id, "i-b");
        let d = decide(&up, &tables, &d.state, &input(T0 + 420, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failback);
        assert_eq!(d.moves.len(), 2);
        assert!(d.moves.iter().all(|c| c.key.table.id == "rtb-b"));

        // i-a (top priority) fails: rtb-a and main move to i-b.
        let tables = apply(&tables, &up, &d.moves);
        let a_down = az_group("stopped", "running");
        let d = decide(&a_down, &tables, &d.state, &input(T0 + 500, FIVE_MIN)).unwrap();
        assert_eq!(d.kind, DecisionKind::Failover);
        let moved: BTreeSet<_> = d.moves.iter().map(|c| c.key.table.id.as_str()).collect();
        assert_eq!(moved, BTreeSet::from(["rtb-a", "rtb-main"]));
        assert_eq!(d.active.as_deref(), Some("i-b"));
    }

    #[test]
    fn az_mode_zone_without_member_follows_priority() {
        // Three members: two in a, one in b; a table in zone c.
        let g = group(&[
            az_mode(facts("i-a1", Some("100"), "a", "running")),
            az_mode(facts("i-a2", Some("300"), "a", "running")),
            az_mode(facts("i-b", Some("200"), "b", "running")),
        ]);
        let tables = vec![
            table(
                "rtb-c",
                Some("c"),
                vec![to_instance("rtb-c", "10.0.0.0/8", "i-b")],
            ),
            table(
                "rtb-a",
                Some("a"),
                vec![to_instance("rtb-a", "10.0.0.0/8", "i-b")],
            ),
        ];
        let d = decide(&g, &tables, &GroupState::default(), &input(T0, AT_ONCE)).unwrap();
        assert_eq!(d.targets.get("rtb-c").map(String::as_str), Some("i-a2"));
        assert_eq!(d.targets.get("rtb-a").map(String::as_str), Some("i-a2"));
    }

    #[test]
    fn same_input_in_any_order_same_decision() {
        let g = pair("stopped", "running");
        let mut reversed = g.clone();
        reversed.members.reverse();
        let mut tables = two_tables("i-p");
        let state = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
        let d1 = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        tables.reverse();
        for t in &mut tables {
            t.routes.reverse();
        }
        let d2 = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(d1, d2);
    }

    #[test]
    fn state_round_trips_and_tolerates_missing_fields() {
        let state = settled_state("i-p", &["i-p"], 5);
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(serde_json::from_value::<GroupState>(json).unwrap(), state);
        let partial: GroupState = serde_json::from_str(r#"{"active": "i-x"}"#).unwrap();
        assert_eq!(partial.active.as_deref(), Some("i-x"));
        assert!(!partial.initialized);
    }

    // ---- properties ----

    const IDS: [&str; 4] = ["i-0", "i-1", "i-2", "i-3"];
    const ZONES: [&str; 3] = ["a", "b", "c"];
    const DESTS: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

    #[derive(Debug, Clone)]
    struct World {
        group: Group,
        tables: Vec<GroupTable>,
        state: GroupState,
        input: DecideInput,
    }

    fn arb_world() -> impl Strategy<Value = World> {
        let member = (
            0..4i64,
            0..3usize,
            prop_oneof![
                Just("running"),
                Just("stopped"),
                Just("pending"),
                Just("terminated")
            ],
            any::<bool>(),
            any::<bool>(),
        );
        let route = (0..6usize, any::<bool>());
        let arb_table = (prop::option::of(0..3usize), prop::collection::vec(route, 0..3));
        (
            prop::collection::vec(member, 1..4),
            any::<bool>(),
            prop::collection::vec(arb_table, 0..4),
            prop::option::of(0..4usize),
            prop::collection::btree_map(0..4usize, 0..2000u64, 0..4),
            prop_oneof![Just(0u64), Just(300), Just(u64::MAX)],
            prop::option::of((0..4usize, any::<bool>())),
            any::<bool>(),
        )
            .prop_map(|(ms, az, ts, active, since, delay, event, initialized)| {
                let mut instances = Vec::new();
                for (n, (prio, zone, state, ii, si)) in ms.iter().enumerate() {
                    let prio = prio.to_string();
                    let mut f = facts(IDS[n], Some(prio.as_str()), ZONES[*zone], state);
                    // Impaired checks are rarer than not, but present.
                    f.instance_impaired = *ii && *si && n % 2 == 0;
                    f.system_impaired = *ii && !*si && n % 3 == 0;
                    if az {
                        f = az_mode(f);
                    }
                    instances.push(f);
                }
                let group = group(&instances);
                let tables = ts
                    .iter()
                    .enumerate()
                    .map(|(t, (zone, routes))| {
                        let id = format!("rtb-{t}");
                        let mut rs: Vec<TableRoute> = Vec::new();
                        for (d, (target, secondary)) in routes.iter().enumerate() {
                            // Targets 0..3: members (maybe absent); 4, 5: others.
                            let r = if *target < 4 {
                                let inst = IDS[*target];
                                if *secondary {
                                    to_eni(&id, DESTS[d], inst, &format!("eni-{inst}-1"))
                                } else {
                                    to_instance(&id, DESTS[d], inst)
                                }
                            } else {
                                to_tgw(&id, DESTS[d])
                            };
                            rs.push(r);
                        }
                        table(&id, zone.map(|z| ZONES[z]), rs)
                    })
                    .collect();
                let state = GroupState {
                    initialized,
                    active: active.map(|a| IDS[a].to_owned()),
                    healthy_since: since
                        .into_iter()
                        .map(|(m, s)| (IDS[m].to_owned(), T0 - s))
                        .collect(),
                    ..Default::default()
                };
                let policy = match delay {
                    u64::MAX => FailbackPolicy::Never,
                    d => FailbackPolicy::After(Duration::from_secs(d)),
                };
                let event = event.map(|(m, running)| MemberEvent {
                    instance_id: IDS[m].to_owned(),
                    state: if running {
                        InstanceState::Running
                    } else {
                        InstanceState::Stopping
                    },
                });
                World {
                    group,
                    tables,
                    state,
                    input: DecideInput {
                        now: T0,
                        policy,
                        event,
                        activate: None,
                    },
                }
            })
    }

    fn healthy_now(w: &World, id: &str) -> bool {
        let event_down = w
            .input
            .event
            .as_ref()
            .is_some_and(|e| e.instance_id == id && e.state != InstanceState::Running);
        w.group.member(id).is_some_and(Member::healthy) && !event_down
    }

    proptest! {
        #[test]
        fn never_moves_routes_to_an_unhealthy_member(w in arb_world()) {
            let d = decide(&w.group, &w.tables, &w.state, &w.input).unwrap();
            for c in &d.moves {
                let owner = w.group.members.iter().find(|m| m.route_target() == c.target);
                prop_assert!(owner.is_some(), "move to a non-member: {c:?}");
                prop_assert!(healthy_now(&w, &owner.unwrap().instance_id), "move to an unhealthy member: {c:?}");
            }
            for (table, member) in &d.targets {
                prop_assert!(healthy_now(&w, member), "table {table} given to unhealthy {member}");
            }
            if d.kind == DecisionKind::NoHealthyMember {
                prop_assert!(d.moves.is_empty());
            }
            if !w.group.members.iter().any(|m| healthy_now(&w, &m.instance_id)) {
                prop_assert!(d.moves.is_empty());
            }
        }

        #[test]
        fn decisions_are_deterministic_and_converge(w in arb_world(), seed in any::<usize>()) {
            let d = decide(&w.group, &w.tables, &w.state, &w.input).unwrap();
            let mut shuffled = w.clone();
            shuffled.tables.reverse();
            if !shuffled.tables.is_empty() {
                let n = shuffled.tables.len();
                shuffled.tables.rotate_left(seed % n);
            }
            for t in &mut shuffled.tables { t.routes.reverse(); }
            shuffled.group.members.reverse();
            prop_assert_eq!(&decide(&shuffled.group, &shuffled.tables, &shuffled.state, &shuffled.input).unwrap(), &d);

            // Applied, the same world again is a no-op.
            let after = apply(&w.tables, &w.group, &d.moves);
            let mut again_input = w.input.clone();
            // A running event is delivered once; its replay would restart the
            // streak again, which is fine but not what this checks.
            if again_input.event.as_ref().is_some_and(|e| e.state == InstanceState::Running) {
                again_input.event = None;
            }
            let again = decide(&w.group, &after, &d.state, &again_input).unwrap();
            prop_assert!(again.moves.is_empty(), "second decision moves: {:?}", again.moves);
            prop_assert_eq!(again.state.active, d.state.active);
        }

        #[test]
        fn failback_only_to_a_settled_member(w in arb_world()) {
            let d = decide(&w.group, &w.tables, &w.state, &w.input).unwrap();
            if let (true, FailbackPolicy::After(delay)) = (w.state.initialized, w.input.policy) {
                for c in d.moves.iter().filter(|c| c.reason.to_string().starts_with("failback")) {
                    let to = w.group.members.iter().find(|m| m.route_target() == c.target).unwrap();
                    let since = d.state.healthy_since.get(&to.instance_id).copied().unwrap_or(T0);
                    prop_assert!(T0 - since >= delay.as_secs(), "failback to {} healthy for {} s", to.instance_id, T0 - since);
                }
            }
            if w.input.policy == FailbackPolicy::Never {
                prop_assert!(d.kind != DecisionKind::Failback);
            }
        }

        #[test]
        fn az_tables_prefer_their_zone(w in arb_world()) {
            let mut w = w;
            w.input.policy = AT_ONCE;
            let d = decide(&w.group, &w.tables, &w.state, &w.input).unwrap();
            if w.group.mode != FailoverMode::Az {
                return Ok(());
            }
            for t in &w.tables {
                let Some(target) = d.targets.get(&t.table.id) else { continue };
                let Some(zone) = &t.zone else { continue };
                let best_in_zone = w.group.members.iter()
                    .find(|m| m.az.as_ref() == Some(zone) && healthy_now(&w, &m.instance_id));
                if let Some(best) = best_in_zone {
                    prop_assert_eq!(target, &best.instance_id, "table {} in {}", t.table.id, zone);
                } else if let Some(best) = w.group.members.iter().find(|m| healthy_now(&w, &m.instance_id)) {
                    // No healthy member in the zone: the best healthy one by priority.
                    prop_assert_eq!(target, &best.instance_id, "table {} in {}", t.table.id, zone);
                }
            }
        }
    }
}
