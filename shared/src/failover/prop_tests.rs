//! Property tests of the failover decisions: random groups (members'
//! states, status checks, health alarms), tables, states and events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::tests::{AT_ONCE, T0, apply, az_mode, facts, group, table, to_eni, to_instance, to_tgw};
use super::*;
use crate::config::FailbackPolicy;
use crate::topology::{InstanceState, VpcRoute};

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
        // A health alarm: none, OK, ALARM, INSUFFICIENT_DATA, not found;
        // and whether missing data is ignored.
        prop::option::of(0..4u8),
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
        prop::option::of((0..4usize, 0..3u8)),
    )
        .prop_map(
            |(ms, az, ts, active, since, delay, event, initialized, alarm_event)| {
                let mut instances = Vec::new();
                let mut readings = BTreeMap::new();
                for (n, (prio, zone, state, ii, si, alarm, ignore)) in ms.iter().enumerate() {
                    let prio = prio.to_string();
                    let mut f = facts(IDS[n], Some(prio.as_str()), ZONES[*zone], state);
                    // Impaired checks are rarer than not, but present.
                    f.status.instance_impaired = *ii && *si && n % 2 == 0;
                    f.status.system_impaired = *ii && !*si && n % 3 == 0;
                    if az {
                        f = az_mode(f);
                    }
                    if let Some(a) = alarm {
                        let name = format!("alarm-{n}");
                        f.tags.insert(TAG_HEALTH_ALARM.to_owned(), name.clone());
                        if *ignore {
                            f.tags.insert(TAG_HEALTH_MISSING.to_owned(), "ignore".to_owned());
                        }
                        if let Some(state) = alarm_state(*a) {
                            readings.insert(
                                name.clone(),
                                AlarmReading {
                                    name,
                                    state,
                                    reason: None,
                                    updated_ms: Some(1),
                                },
                            );
                        }
                    }
                    instances.push(f);
                }
                let mut group = group(&instances);
                group.attach_alarms(&readings);
                let tables = ts
                    .iter()
                    .enumerate()
                    .map(|(t, (zone, routes))| {
                        let id = format!("rtb-{t}");
                        let mut rs: Vec<VpcRoute> = Vec::new();
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
                        alarm: alarm_event.and_then(|(m, a)| {
                            Some(AlarmEvent {
                                reading: AlarmReading {
                                    name: format!("alarm-{m}"),
                                    state: alarm_state(a)?,
                                    reason: None,
                                    updated_ms: Some(2),
                                },
                                previous: None,
                            })
                        }),
                        activate: None,
                    },
                }
            },
        )
}

fn alarm_state(n: u8) -> Option<AlarmState> {
    match n {
        0 => Some(AlarmState::Ok),
        1 => Some(AlarmState::Alarm),
        2 => Some(AlarmState::InsufficientData),
        _ => None,
    }
}

fn healthy_now(w: &World, id: &str) -> bool {
    let event_down = w
        .input
        .event
        .as_ref()
        .is_some_and(|e| e.instance_id == id && e.state != InstanceState::Running);
    // The alarm event is newer than the read (CloudWatch's timestamps).
    let alarm_down = w.input.alarm.as_ref().is_some_and(|e| {
        w.group.member(id).is_some_and(|m| {
            m.alarm_names.contains(&e.reading.name)
                && MemberAlarm {
                    name: e.reading.name.clone(),
                    reading: Some(e.reading.clone()),
                    from_event: true,
                }
                .fails(m.missing)
        })
    });
    let alarm_up = |m: &Member| {
        let mut m = m.clone();
        if let Some(e) = &w.input.alarm {
            m.alarms.retain(|a| a.name != e.reading.name);
        }
        m.healthy()
    };
    w.group.member(id).is_some_and(alarm_up) && !event_down && !alarm_down
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
