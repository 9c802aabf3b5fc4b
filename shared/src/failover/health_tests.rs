//! Unit tests of the health sources beyond EC2 (CloudWatch alarms, alarm
//! events), of replaced appliances (terminated members remembered, then
//! forgotten) and of prefix-list routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::tests::{
    FIVE_MIN, T0, VPC, apply, facts, group, input, table, table_ref, to_instance, two_tables,
};
use super::*;
use crate::model::{RouteOrigin, RouteState, RouteTarget};
use crate::topology::{Instance, VpcRoute};

fn with_alarms(mut f: Instance, alarms: &str, missing: Option<&str>) -> Instance {
    f.tags.insert(TAG_HEALTH_ALARM.to_owned(), alarms.to_owned());
    if let Some(m) = missing {
        f.tags.insert(TAG_HEALTH_MISSING.to_owned(), m.to_owned());
    }
    f
}

fn reading(name: &str, state: AlarmState, updated_ms: i64) -> AlarmReading {
    AlarmReading {
        name: name.to_owned(),
        state,
        reason: Some(format!("{name} is {state}")),
        updated_ms: Some(updated_ms),
    }
}

fn readings(list: &[AlarmReading]) -> BTreeMap<String, AlarmReading> {
    list.iter().map(|r| (r.name.clone(), r.clone())).collect()
}

/// Primary i-p (200, alarm `p-tunnel`) and standby i-s (100, alarm
/// `s-tunnel`), both running, with the alarms as read.
fn alarmed_pair(missing: Option<&str>, read: &[AlarmReading]) -> Group {
    let mut g = group(&[
        with_alarms(facts("i-p", Some("200"), "a", "running"), "p-tunnel", missing),
        with_alarms(facts("i-s", Some("100"), "b", "running"), "s-tunnel", missing),
    ]);
    g.attach_alarms(&readings(read));
    g
}

/// The state a previous run saved for a settled pair on `active`: decided
/// once, so it remembers the members.
fn remembered(g: &Group, tables: &[GroupTable], active: &str) -> GroupState {
    let legacy = GroupState {
        initialized: true,
        active: Some(active.to_owned()),
        healthy_since: g
            .members
            .iter()
            .filter(|m| m.healthy())
            .map(|m| (m.instance_id.clone(), T0 - 1000))
            .collect(),
        ..Default::default()
    };
    let d = decide(g, tables, &legacy, &input(T0 - 1, FIVE_MIN)).unwrap();
    assert!(d.moves.is_empty(), "{:?}", d.moves);
    d.state
}

fn alarm_event(r: AlarmReading, previous: AlarmState) -> DecideInput {
    DecideInput {
        alarm: Some(AlarmEvent {
            reading: r,
            previous: Some(previous),
        }),
        ..input(T0, FIVE_MIN)
    }
}

#[test]
fn alarms_parse_and_make_a_running_member_unhealthy() {
    assert_eq!(alarm_names(" a, b ,,a,c "), vec!["a", "b", "c"]);
    assert_eq!(MissingData::from_tag(" Ignore "), Some(MissingData::Ignore));
    assert_eq!(MissingData::from_tag("unhealthy"), Some(MissingData::Unhealthy));
    assert_eq!(MissingData::from_tag("maybe"), None);

    let f = with_alarms(facts("i-p", None, "a", "running"), "t1,t2", None);
    let mut g = group(&[f]);
    g.attach_alarms(&readings(&[
        reading("t1", AlarmState::Ok, 1),
        reading("t2", AlarmState::Ok, 1),
    ]));
    assert!(g.members[0].healthy());
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);

    g.attach_alarms(&readings(&[
        reading("t1", AlarmState::Ok, 1),
        reading("t2", AlarmState::Alarm, 2),
    ]));
    let m = &g.members[0];
    assert!(!m.healthy());
    assert_eq!(
        m.faults(),
        vec![HealthFault::Alarm {
            alarm: "t2".into(),
            state: Some(AlarmState::Alarm),
            reason: Some("t2 is ALARM".into()),
            from_event: false,
        }]
    );
    assert_eq!(m.health(), "running, alarm t2 ALARM: t2 is ALARM");
    // The public shape of a fault.
    assert_eq!(
        serde_json::to_value(&m.faults()[0]).unwrap(),
        serde_json::json!({"source": "alarm", "alarm": "t2", "state": "ALARM", "reason": "t2 is ALARM"})
    );

    // A bad missing-data tag: unhealthy, with a warning.
    let bad = group(&[with_alarms(
        facts("i-p", None, "a", "running"),
        "t1",
        Some("sometimes"),
    )]);
    assert_eq!(bad.members[0].missing, MissingData::Unhealthy);
    assert!(
        bad.warnings[0].contains("\"sometimes\" is not unhealthy or ignore"),
        "{:?}",
        bad.warnings
    );
}

#[test]
fn insufficient_data_and_missing_alarms_follow_health_missing() {
    for (missing, healthy) in [(None, false), (Some("unhealthy"), false), (Some("ignore"), true)] {
        let g = alarmed_pair(
            missing,
            &[
                reading("p-tunnel", AlarmState::InsufficientData, 1),
                reading("s-tunnel", AlarmState::Ok, 1),
            ],
        );
        assert_eq!(g.members[0].healthy(), healthy, "{missing:?}");
        // An alarm that does not exist reports no data either, and says so.
        let mut gone = alarmed_pair(missing, &[reading("s-tunnel", AlarmState::Ok, 1)]);
        gone.attach_alarms(&readings(&[reading("s-tunnel", AlarmState::Ok, 1)]));
        assert_eq!(gone.members[0].healthy(), healthy, "{missing:?}");
        assert!(
            gone.warnings
                .iter()
                .any(|w| w.contains("\"p-tunnel\", which does not exist")),
            "{:?}",
            gone.warnings
        );
        if !healthy {
            assert_eq!(gone.members[0].health(), "running, alarm p-tunnel not found");
        }
    }

    // INSUFFICIENT_DATA on the active member: failover, unless ignored.
    for (missing, kind) in [
        (None, DecisionKind::Failover),
        (Some("ignore"), DecisionKind::None),
    ] {
        let ok = alarmed_pair(
            missing,
            &[
                reading("p-tunnel", AlarmState::Ok, 1),
                reading("s-tunnel", AlarmState::Ok, 1),
            ],
        );
        let state = remembered(&ok, &two_tables("i-p"), "i-p");
        let g = alarmed_pair(missing, &[reading("s-tunnel", AlarmState::Ok, 1)]);
        let event = alarm_event(
            reading("p-tunnel", AlarmState::InsufficientData, 5),
            AlarmState::Ok,
        );
        let d = decide(&g, &two_tables("i-p"), &state, &event).unwrap();
        assert_eq!(d.kind, kind, "{missing:?}: {}", d.reason);
    }
}

#[test]
fn an_alarm_event_fails_over_at_once_and_ok_starts_the_failback_streak() {
    let ok = [
        reading("p-tunnel", AlarmState::Ok, 100),
        reading("s-tunnel", AlarmState::Ok, 100),
    ];
    let tables = two_tables("i-p");
    let state = remembered(&alarmed_pair(None, &ok), &tables, "i-p");

    // CloudWatch's read still says OK (it lags the event): the event wins.
    let d = decide(
        &alarmed_pair(None, &ok),
        &tables,
        &state,
        &alarm_event(reading("p-tunnel", AlarmState::Alarm, 200), AlarmState::Ok),
    )
    .unwrap();
    assert_eq!(d.kind, DecisionKind::Failover, "{}", d.reason);
    assert_eq!(d.active.as_deref(), Some("i-s"));
    assert_eq!(d.moves.len(), 3);
    assert!(d.notify);
    assert_eq!(
        d.failed,
        vec![FailedMember {
            instance_id: "i-p".into(),
            faults: vec![HealthFault::Alarm {
                alarm: "p-tunnel".into(),
                state: Some(AlarmState::Alarm),
                reason: Some("p-tunnel is ALARM".into()),
                from_event: true,
            }],
        }]
    );
    assert!(
        d.reason
            .contains("alarm p-tunnel ALARM: p-tunnel is ALARM (alarm event)"),
        "{}",
        d.reason
    );
    assert!(!d.state.healthy_since.contains_key("i-p"));

    // The alarm of the standby, not the active member: no move.
    let other = decide(
        &alarmed_pair(None, &ok),
        &tables,
        &state,
        &alarm_event(reading("s-tunnel", AlarmState::Alarm, 200), AlarmState::Ok),
    )
    .unwrap();
    assert_eq!(other.kind, DecisionKind::None);
    assert!(other.moves.is_empty());

    // Back to OK 10 s later: the streak starts then, even though the read
    // (OK all along, say) never showed the outage.
    let moved = apply(&tables, &alarmed_pair(None, &ok), &d.moves);
    let mut at = alarm_event(reading("p-tunnel", AlarmState::Ok, 300), AlarmState::Alarm);
    at.now = T0 + 10;
    let up = decide(&alarmed_pair(None, &ok), &moved, &d.state, &at).unwrap();
    assert_eq!(up.kind, DecisionKind::None);
    assert!(up.moves.is_empty());
    assert_eq!(up.state.healthy_since.get("i-p"), Some(&(T0 + 10)));
    assert_eq!(up.pending_failback.as_ref().unwrap().healthy_for_seconds, 0);

    // Sweeps: 299 s of health is not enough; 300 s is.
    let early = decide(
        &alarmed_pair(None, &ok),
        &moved,
        &up.state,
        &input(T0 + 309, FIVE_MIN),
    )
    .unwrap();
    assert_eq!(early.kind, DecisionKind::None);
    let back = decide(
        &alarmed_pair(None, &ok),
        &moved,
        &early.state,
        &input(T0 + 310, FIVE_MIN),
    )
    .unwrap();
    assert_eq!(back.kind, DecisionKind::Failback, "{}", back.reason);
    assert_eq!(back.moves.len(), 3);

    // A flap of the alarm during the streak restarts it, whatever the
    // sweeps saw.
    let mut flap = alarm_event(reading("p-tunnel", AlarmState::Ok, 400), AlarmState::Alarm);
    flap.now = T0 + 200;
    let again = decide(&alarmed_pair(None, &ok), &moved, &up.state, &flap).unwrap();
    assert_eq!(again.state.healthy_since.get("i-p"), Some(&(T0 + 200)));
}

#[test]
fn a_stale_alarm_event_loses_to_a_newer_read() {
    let tables = two_tables("i-p");
    let ok = [
        reading("p-tunnel", AlarmState::Ok, 100),
        reading("s-tunnel", AlarmState::Ok, 100),
    ];
    let state = remembered(&alarmed_pair(None, &ok), &tables, "i-p");
    // The event (ALARM at 200) arrives after the alarm went OK again (500).
    let read = [
        reading("p-tunnel", AlarmState::Ok, 500),
        reading("s-tunnel", AlarmState::Ok, 100),
    ];
    let d = decide(
        &alarmed_pair(None, &read),
        &tables,
        &state,
        &alarm_event(reading("p-tunnel", AlarmState::Alarm, 200), AlarmState::Ok),
    )
    .unwrap();
    assert_eq!(d.kind, DecisionKind::None, "{}", d.reason);
    assert!(d.moves.is_empty());
    assert!(
        !newer(
            Some(read[0].clone()),
            &reading("p-tunnel", AlarmState::Alarm, 200)
        )
        .1
    );
    // Without CloudWatch timestamps the event is taken: it woke the run.
    let undated = AlarmReading {
        updated_ms: None,
        ..reading("p-tunnel", AlarmState::Alarm, 0)
    };
    assert!(newer(Some(read[0].clone()), &undated).1);
}

/// A route as AWS reads it once its target interface was deleted with its
/// instance: `blackhole`, the interface id only.
fn blackholed(table: &str, dest: &str, instance: &str) -> VpcRoute {
    let mut r = to_instance(table, dest, instance);
    r.route.state = RouteState::Blackhole;
    r.instance_id = None;
    r
}

fn blackholed_tables(instance: &str) -> Vec<GroupTable> {
    two_tables(instance)
        .into_iter()
        .map(|mut t| {
            for r in &mut t.routes {
                if r.instance_id.as_deref() == Some(instance) {
                    *r = blackholed(&t.table.id, &r.route.key.destination.to_string(), instance);
                }
            }
            t
        })
        .collect()
}

/// The primary as EC2 describes it once terminated: no VPC, no interfaces.
fn terminated_primary() -> Instance {
    let mut f = facts("i-p", Some("200"), "a", "terminated");
    f.vpc_id = None;
    f.primary_interface_id = None;
    f.interface_ids = vec![];
    f
}

#[test]
fn a_terminated_member_s_blackholed_routes_move_and_it_is_then_forgotten() {
    let live = group(&[
        facts("i-p", Some("200"), "a", "running"),
        facts("i-s", Some("100"), "b", "running"),
    ]);
    let state = remembered(&live, &two_tables("i-p"), "i-p");
    assert_eq!(state.members.len(), 2);

    for described in [true, false] {
        // Still described (terminated, for about an hour), or gone.
        let mut instances = vec![facts("i-s", Some("100"), "b", "running")];
        if described {
            instances.push(terminated_primary());
        }
        let g = group(&instances);
        let tables = blackholed_tables("i-p");
        let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
        assert_eq!(
            d.kind,
            DecisionKind::Failover,
            "described {described}: {}",
            d.reason
        );
        assert_eq!(d.managed_routes, 3);
        assert_eq!(d.moves.len(), 3);
        assert!(
            d.moves
                .iter()
                .all(|c| c.target == RouteTarget::NetworkInterface("eni-i-s-0".into()))
        );
        assert_eq!(d.vpc_id.as_deref(), Some(VPC));
        let fault = if described {
            HealthFault::State {
                state: crate::topology::InstanceState::Terminated,
                from_event: false,
            }
        } else {
            HealthFault::Gone
        };
        assert_eq!(d.failed[0].faults, vec![fault]);
        // Saved before the moves: still remembered, so a run cut short
        // finds the blackholes again.
        assert!(d.state.members.contains_key("i-p"));
        // Once the moves are acknowledged: forgotten.
        let settled = d.settled.clone().expect("a settled state");
        assert!(!settled.members.contains_key("i-p"));
        assert!(settled.members.contains_key("i-s"));

        // The next run, routes moved: nothing to do, nothing to save.
        let after = apply(&tables, &g, &d.moves);
        let next = decide(&g, &after, &settled, &input(T0 + 60, FIVE_MIN)).unwrap();
        assert!(next.moves.is_empty());
        assert!(!next.state_changed(&settled), "{:?}", next.state);
        assert_eq!(next.settled, None);

        // Cut short (the state saved first, no move made): the blackholes
        // are found and moved again.
        let retry = decide(&g, &tables, &d.state, &input(T0 + 60, FIVE_MIN)).unwrap();
        assert_eq!(retry.moves.len(), 3, "described {described}");
    }
}

#[test]
fn a_remembered_member_owns_only_blackholes_and_no_healthy_member_keeps_it() {
    let live = group(&[
        facts("i-p", Some("200"), "a", "running"),
        facts("i-s", Some("100"), "b", "running"),
    ]);
    let state = remembered(&live, &two_tables("i-p"), "i-p");
    // i-p left the group (untagged) and is alive: its active routes are not
    // the group's any more, and it is forgotten.
    let g = group(&[facts("i-s", Some("100"), "b", "running")]);
    let d = decide(&g, &two_tables("i-p"), &state, &input(T0, FIVE_MIN)).unwrap();
    assert_eq!(d.managed_routes, 0, "{:?}", d.moves);
    assert!(d.moves.is_empty());
    assert!(!d.state.members.contains_key("i-p"));

    // Terminated with the standby down too: nothing moves, i-p remembered.
    let g = group(&[terminated_primary(), facts("i-s", Some("100"), "b", "stopped")]);
    let d = decide(&g, &blackholed_tables("i-p"), &state, &input(T0, FIVE_MIN)).unwrap();
    assert_eq!(d.kind, DecisionKind::NoHealthyMember);
    assert!(d.moves.is_empty());
    assert!(d.state.members.contains_key("i-p"));
    assert_eq!(d.settled, None);
}

#[test]
fn a_replacement_joins_and_takes_the_routes_after_its_streak() {
    let live = group(&[
        facts("i-p", Some("200"), "a", "running"),
        facts("i-s", Some("100"), "b", "running"),
    ]);
    let state = remembered(&live, &two_tables("i-p"), "i-p");
    let g = group(&[terminated_primary(), facts("i-s", Some("100"), "b", "running")]);
    let tables = blackholed_tables("i-p");
    let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
    let on_standby = apply(&tables, &g, &d.moves);
    let settled = d.settled.unwrap();

    // The Auto Scaling group's replacement: a new id, interface and address.
    let mut replacement = facts("i-r", Some("200"), "a", "running");
    replacement.private_addresses = vec!["10.1.0.99".into()];
    let g = group(&[facts("i-s", Some("100"), "b", "running"), replacement]);
    let joined = decide(&g, &on_standby, &settled, &input(T0 + 30, FIVE_MIN)).unwrap();
    assert_eq!(joined.kind, DecisionKind::None);
    assert!(joined.moves.is_empty());
    assert_eq!(joined.pending_failback.as_ref().unwrap().instance_id, "i-r");
    assert_eq!(
        joined.state.members["i-r"].addresses,
        vec!["10.1.0.99".to_owned()]
    );
    let report = joined.members.iter().find(|m| m.instance_id == "i-r").unwrap();
    assert_eq!(report.addresses, vec!["10.1.0.99".to_owned()]);

    let early = decide(&g, &on_standby, &joined.state, &input(T0 + 329, FIVE_MIN)).unwrap();
    assert!(early.moves.is_empty());
    let back = decide(&g, &on_standby, &early.state, &input(T0 + 330, FIVE_MIN)).unwrap();
    assert_eq!(back.kind, DecisionKind::Failback, "{}", back.reason);
    assert_eq!(back.active.as_deref(), Some("i-r"));
    assert_eq!(back.moves.len(), 3);
    assert!(
        back.moves
            .iter()
            .all(|c| c.target == RouteTarget::NetworkInterface("eni-i-r-0".into()))
    );
}

fn list_route(pl: &str, instance: &str, state: RouteState) -> ListRoute {
    ListRoute {
        prefix_list_id: pl.to_owned(),
        target: RouteTarget::NetworkInterface(format!("eni-{instance}-0")),
        state,
        origin: RouteOrigin::Static,
        instance_id: (state == RouteState::Active).then(|| instance.to_owned()),
        network_interface_id: Some(format!("eni-{instance}-0")),
    }
}

#[test]
fn prefix_list_routes_move_like_cidr_routes() {
    let live = group(&[
        facts("i-p", Some("200"), "a", "running"),
        facts("i-s", Some("100"), "b", "running"),
    ]);
    let mut t = table("rtb-1", None, vec![to_instance("rtb-1", "10.0.0.0/8", "i-p")]);
    t.list_routes = vec![
        list_route("pl-corp", "i-p", RouteState::Active),
        list_route("pl-lab", "i-p", RouteState::Active),
    ];
    let mut foreign = list_route("pl-other", "i-x", RouteState::Active);
    foreign.instance_id = Some("i-x".into());
    t.list_routes.push(foreign);
    let tables = vec![t];
    let state = remembered(&live, &tables, "i-p");

    let g = group(&[
        facts("i-p", Some("200"), "a", "stopped"),
        facts("i-s", Some("100"), "b", "running"),
    ]);
    let d = decide(&g, &tables, &state, &input(T0, FIVE_MIN)).unwrap();
    assert_eq!(d.kind, DecisionKind::Failover);
    assert_eq!(d.managed_routes, 3);
    assert_eq!(d.moves.len(), 1);
    assert_eq!(
        d.list_moves
            .iter()
            .map(|l| l.prefix_list_id.as_str())
            .collect::<Vec<_>>(),
        vec!["pl-corp", "pl-lab"]
    );
    let l = &d.list_moves[0];
    assert_eq!(l.table, table_ref("rtb-1"));
    assert_eq!(l.target, RouteTarget::NetworkInterface("eni-i-s-0".into()));
    assert_eq!(l.previous, RouteTarget::NetworkInterface("eni-i-p-0".into()));
    assert!(
        l.reason.starts_with("failover: i-p is unhealthy (stopped)"),
        "{}",
        l.reason
    );
    let report = l.report();
    assert_eq!(
        (
            report.op.as_str(),
            report.destination.as_str(),
            report.target.as_str()
        ),
        ("replace", "pl-corp", "eni-i-s-0")
    );

    // Moved: nothing more to do.
    let mut moved = apply(&tables, &g, &d.moves);
    for r in moved[0]
        .list_routes
        .iter_mut()
        .filter(|r| r.prefix_list_id != "pl-other")
    {
        r.target = RouteTarget::NetworkInterface("eni-i-s-0".into());
        r.network_interface_id = Some("eni-i-s-0".into());
        r.instance_id = Some("i-s".into());
    }
    let again = decide(&g, &moved, &d.state, &input(T0 + 60, FIVE_MIN)).unwrap();
    assert!(again.moves.is_empty() && again.list_moves.is_empty());

    // Blackholed toward a terminated member: moved too.
    let gone = group(&[terminated_primary(), facts("i-s", Some("100"), "b", "running")]);
    let mut holes = tables.clone();
    holes[0].routes = vec![blackholed("rtb-1", "10.0.0.0/8", "i-p")];
    holes[0].list_routes = vec![list_route("pl-corp", "i-p", RouteState::Blackhole)];
    let d = decide(&gone, &holes, &state, &input(T0, FIVE_MIN)).unwrap();
    assert_eq!((d.moves.len(), d.list_moves.len()), (1, 1));
    assert!(!d.settled.unwrap().members.contains_key("i-p"));
}
