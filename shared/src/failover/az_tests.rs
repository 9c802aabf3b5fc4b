//! Unit tests of the failover decisions in AZ mode (`lbgp:failover-mode=az`):
//! each zone's tables on that zone's member, the others by priority.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use super::tests::{AT_ONCE, FIVE_MIN, T0, apply, az_mode, facts, group, input, table, to_instance};
use super::*;
use crate::model::RouteTarget;

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
        d.moves
            .iter()
            .all(|c| c.key.table.id == "rtb-b"
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
