//! [`decide`]: one group's member per scope, and the moves that get the
//! routes there.

use std::collections::{BTreeMap, BTreeSet};

use super::health::{MemberAlarm, newer};
use super::memory::{Managed, records, with_memory};
use super::{
    DecideError, DecideInput, Decision, DecisionKind, FailedMember, FailoverMode, Group, GroupState,
    GroupTable, ListMove, Member, MemberReport, PendingFailback,
};
use crate::config::FailbackPolicy;
use crate::model::RouteKey;
use crate::plan::{Change, ChangeOp, ChangeReason};
use crate::topology::InstanceState;

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
fn majority<'a>(group: &'a Group, routes: &[Managed<'_>]) -> Option<&'a str> {
    let mut counts: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    for r in routes {
        if let Some(m) = r.owner(group) {
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
///   and no state-change event saying it is going down, and none of its
///   health alarms is `ALARM` (nor without data, unless it ignores missing
///   data). An alarm event is newer than what was read unless CloudWatch's
///   own timestamps say otherwise. A healthy streak (`healthy_since`)
///   survives between runs and restarts on any unhealthy observation, on a
///   `running` event, and on an alarm event from or to a failing state (the
///   member was not healthy just before, whatever we saw): failback waits
///   for continuous health by every source.
/// - Members EC2 stopped describing fully (terminated: interfaces and VPC
///   gone) are completed with what the state remembers, and remembered
///   members EC2 no longer describes at all stay in the group, gone, while
///   a blackhole route points at them, so their routes move.
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
    // Ranks come from the member order (with_memory sorts it): the
    // contract's order whatever the caller passed.
    let remembered = with_memory(group, state);
    let group = &remembered;
    let vpc_id = group.vpc()?;
    let now = input.now;

    // This run's view of the members: the event is newer than any describe.
    let mut members: Vec<Member> = group.members.clone();
    let mut restarted: Vec<String> = Vec::new();
    if let Some(event) = &input.event
        && let Some(m) = members.iter_mut().find(|m| m.instance_id == event.instance_id)
    {
        if event.state == InstanceState::Running {
            restarted.push(event.instance_id.clone());
        } else {
            m.event_state = Some(event.state);
        }
    }
    if let Some(event) = &input.alarm {
        let name = &event.reading.name;
        for m in members.iter_mut().filter(|m| m.alarm_names.contains(name)) {
            let read = m
                .alarms
                .iter()
                .find(|a| &a.name == name)
                .and_then(|a| a.reading.clone());
            let (reading, from_event) = newer(read, &event.reading);
            let alarm = MemberAlarm {
                name: name.clone(),
                reading: Some(reading),
                from_event,
            };
            match m.alarms.iter_mut().find(|a| &a.name == name) {
                Some(a) => *a = alarm,
                None => m.alarms.push(alarm),
            }
            // A change from or to a failing state: the member was not
            // healthy a moment ago, whatever a read showed.
            let failing = |state| {
                MemberAlarm {
                    name: name.clone(),
                    reading: Some(super::AlarmReading {
                        state,
                        ..event.reading.clone()
                    }),
                    from_event: true,
                }
                .fails(m.missing)
            };
            if failing(event.reading.state) || event.previous.is_some_and(failing) {
                restarted.push(m.instance_id.clone());
            }
        }
    }

    // Healthy streaks.
    let mut since: BTreeMap<String, u64> = BTreeMap::new();
    for m in members.iter().filter(|m| m.healthy()) {
        let start = match state.healthy_since.get(&m.instance_id) {
            Some(s) if !restarted.contains(&m.instance_id) => (*s).min(now),
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
    let managed: Vec<(&GroupTable, Vec<Managed<'_>>)> = tables
        .iter()
        .map(|t| {
            let mut routes: Vec<Managed<'_>> = t
                .routes
                .iter()
                .map(Managed::Cidr)
                .chain(t.list_routes.iter().map(Managed::List))
                .filter(|r| r.is_static() && r.owner(group).is_some())
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
        let mut routes: Vec<Managed<'_>> = managed
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
    let mut choices: Vec<(&GroupTable, &Vec<Managed<'_>>, Choice)> = Vec::new();
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

    // Moves. Right after a move, routes that still read as on the old
    // member are the read lagging the write, not drift.
    let settling = state
        .moved_at
        .is_some_and(|at| now.saturating_sub(at) < crate::desire::SETTLE_SECS);
    let mut moves = Vec::new();
    let mut list_moves = Vec::new();
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
            let owner = r.owner(group).map(|m| m.instance_id.as_str());
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
                // Moved moments ago: the read may not show it yet.
                Choice::Keep(_) if settling => continue,
                Choice::Keep(to) => format!(
                    "drift: route pointed at {}; group {} is on {to}",
                    owner.unwrap_or("?"),
                    group.name
                ),
                Choice::NoHealthy { .. } => continue,
            };
            match r {
                Managed::Cidr(c) => moves.push(Change {
                    key: RouteKey {
                        table: c.route.key.table.clone(),
                        destination: c.route.key.destination,
                    },
                    op: ChangeOp::Replace,
                    target: target.route_target(),
                    previous: Some(r.target().clone()),
                    reason: ChangeReason::Other(why),
                }),
                Managed::List(l) => list_moves.push(ListMove {
                    table: table.table.clone(),
                    prefix_list_id: l.prefix_list_id.clone(),
                    target: target.route_target(),
                    previous: r.target().clone(),
                    reason: why,
                }),
            }
        }
    }
    moves.sort();
    list_moves.sort();

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

    let reason = explain(&ctx, kind, &global, &all, moves.len() + list_moves.len(), input);

    // Members the routes point at now, and once the moves are made: a
    // terminated member is remembered while either holds one of its routes.
    let owners_now: BTreeSet<&str> = managed
        .iter()
        .flat_map(|(_, r)| r.iter())
        .filter_map(|r| r.owner(group).map(|m| m.instance_id.as_str()))
        .collect();
    let moved_away: BTreeSet<(&str, String)> = moves
        .iter()
        .map(|c| (c.key.table.id.as_str(), c.key.destination.to_string()))
        .chain(
            list_moves
                .iter()
                .map(|l| (l.table.id.as_str(), l.prefix_list_id.clone())),
        )
        .collect();
    let owners_after: BTreeSet<&str> = managed
        .iter()
        .flat_map(|(t, r)| r.iter().map(move |r| (t, r)))
        .filter_map(|(t, r)| {
            let key = (t.table.id.as_str(), r.destination());
            if moved_away.contains(&key) {
                targets.get(&t.table.id).map(String::as_str)
            } else {
                r.owner(group).map(|m| m.instance_id.as_str())
            }
        })
        .collect();
    let mut next = GroupState {
        members: records(group, &owners_now),
        initialized: true,
        active: active.clone(),
        tables: BTreeMap::new(),
        healthy_since: since.clone(),
        pinned: pinned.clone(),
        no_healthy_alerted: kind == DecisionKind::NoHealthyMember,
        moved_at: if moves.is_empty() && list_moves.is_empty() {
            state.moved_at
        } else {
            Some(now)
        },
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
    let after = records(group, &owners_after);
    let settled = (after != next.members).then(|| GroupState {
        members: after,
        ..next.clone()
    });
    let notify = match kind {
        DecisionKind::Failover | DecisionKind::Failback => true,
        DecisionKind::NoHealthyMember => !state.no_healthy_alerted,
        // Drift of CIDR routes (prefix-list moves are reported with them).
        DecisionKind::None => !moves.is_empty() || !list_moves.is_empty(),
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
            faults: m.faults(),
            addresses: m.addresses.clone(),
            gone: m.gone,
        })
        .collect();
    let mut failed: Vec<FailedMember> = Vec::new();
    let mut add_failed = |id: &str| {
        if let Some(m) = ctx.member(id)
            && !failed.iter().any(|f| f.instance_id == id)
        {
            failed.push(FailedMember {
                instance_id: id.to_owned(),
                faults: m.faults(),
            });
        }
    };
    match kind {
        DecisionKind::NoHealthyMember => members.iter().for_each(|m| add_failed(&m.instance_id)),
        _ => {
            for c in &all {
                if let Choice::Failover { from, .. } = c {
                    add_failed(from);
                }
            }
        }
    }
    Ok(Decision {
        kind,
        mode: group.mode,
        vpc_id,
        previous: global_current,
        active,
        targets,
        moves,
        list_moves,
        failed,
        managed_routes,
        reason,
        pending_failback: pending,
        members: member_reports,
        notify,
        state: next,
        settled,
    })
}

fn explain(
    ctx: &Context<'_>,
    kind: DecisionKind,
    global: &Choice,
    all: &[&Choice],
    moved: usize,
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
            if moved == 0 {
                format!("{on} is active; routes in place")
            } else {
                format!("{on} is active; {moved} drifted routes repointed")
            }
        }
    }
}
