//! Unit and property tests of the failover decisions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::config::FailbackPolicy;
use crate::model::{Region, Route, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind};
use crate::plan::ChangeOp;
use crate::topology::{Instance, InstanceState, StatusChecks, VpcRoute};
use std::time::Duration;

pub(super) const VPC: &str = "vpc-1";

pub(super) fn facts(id: &str, priority: Option<&str>, az: &str, state: &str) -> Instance {
    let mut tags = BTreeMap::from([(TAG_GROUP.to_owned(), "vpn".to_owned())]);
    if let Some(p) = priority {
        tags.insert(TAG_PRIORITY.to_owned(), p.to_owned());
    }
    Instance {
        id: id.to_owned(),
        vpc_id: Some(VPC.to_owned()),
        availability_zone: Some(az.to_owned()),
        state: InstanceState::from_aws(state),
        primary_interface_id: Some(format!("eni-{id}-0")),
        interface_ids: vec![format!("eni-{id}-0"), format!("eni-{id}-1")],
        private_addresses: vec![],
        tags,
        status: StatusChecks::default(),
    }
}

pub(super) fn az_mode(mut f: Instance) -> Instance {
    f.tags.insert(TAG_MODE.to_owned(), "az".to_owned());
    f
}

pub(super) fn group(instances: &[Instance]) -> Group {
    let mut groups = groups_from_instances(instances);
    assert_eq!(groups.len(), 1);
    groups.remove(0)
}

pub(super) fn table_ref(id: &str) -> RouteTableRef {
    RouteTableRef {
        region: Region::new("eu-west-1").unwrap(),
        kind: TableKind::Vpc,
        id: id.to_owned(),
    }
}

/// A route to an instance, as AWS reads it back: instance and primary ENI.
pub(super) fn to_instance(table: &str, dest: &str, instance: &str) -> VpcRoute {
    let eni = format!("eni-{instance}-0");
    VpcRoute {
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

pub(super) fn to_eni(table: &str, dest: &str, instance: &str, eni: &str) -> VpcRoute {
    let mut r = to_instance(table, dest, instance);
    r.route.target = RouteTarget::NetworkInterface(eni.to_owned());
    r.network_interface_id = Some(eni.to_owned());
    r
}

pub(super) fn to_tgw(table: &str, dest: &str) -> VpcRoute {
    VpcRoute {
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

pub(super) fn table(id: &str, zone: Option<&str>, routes: Vec<VpcRoute>) -> GroupTable {
    GroupTable {
        table: table_ref(id),
        vpc_id: VPC.to_owned(),
        zone: zone.map(str::to_owned),
        routes,
        list_routes: vec![],
    }
}

pub(super) fn input(now: u64, policy: FailbackPolicy) -> DecideInput {
    DecideInput {
        now,
        policy,
        event: None,
        alarm: None,
        activate: None,
    }
}

pub(super) const T0: u64 = 1_000_000;
pub(super) const FIVE_MIN: FailbackPolicy = FailbackPolicy::After(Duration::from_secs(300));
pub(super) const AT_ONCE: FailbackPolicy = FailbackPolicy::After(Duration::ZERO);

/// Primary i-p (200) in a, standby i-s (100) in b.
pub(super) fn pair(p_state: &str, s_state: &str) -> Group {
    group(&[
        facts("i-p", Some("200"), "a", p_state),
        facts("i-s", Some("100"), "b", s_state),
    ])
}

pub(super) fn two_tables(on: &str) -> Vec<GroupTable> {
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

pub(super) fn settled_state(active: &str, healthy: &[&str], since: u64) -> GroupState {
    GroupState {
        initialized: true,
        active: Some(active.to_owned()),
        healthy_since: healthy.iter().map(|h| ((*h).to_owned(), since)).collect(),
        ..Default::default()
    }
}

/// Applies the moves to the tables, as EC2 would.
pub(super) fn apply(tables: &[GroupTable], group: &Group, moves: &[Change]) -> Vec<GroupTable> {
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
    let untagged = Instance {
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
        m.state = InstanceState::from_aws(state);
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
    // A state saved before the group remembered its members' interfaces
    // (an existing DynamoDB item): the first run adds them, nothing else.
    let legacy = settled_state("i-p", &["i-p", "i-s"], T0 - 1000);
    let d = decide(&g, &two_tables("i-p"), &legacy, &input(T0, FIVE_MIN)).unwrap();
    assert_eq!(d.kind, DecisionKind::None);
    assert!(d.moves.is_empty());
    assert!(!d.notify);
    assert_eq!(d.managed_routes, 3);
    assert_eq!(d.active.as_deref(), Some("i-p"));
    assert_eq!(
        GroupState {
            members: BTreeMap::new(),
            ..d.state.clone()
        },
        legacy,
        "only the member records were added"
    );
    assert_eq!(
        d.state.members.get("i-p"),
        Some(&MemberRecord {
            interfaces: vec!["eni-i-p-0".into(), "eni-i-p-1".into()],
            primary: Some("eni-i-p-0".into()),
            addresses: vec![],
            vpc: Some(VPC.into()),
            az: Some("a".into()),
            priority: 200,
        })
    );
    assert_eq!(d.settled, None);
    // From then on the state is a fixed point: no write.
    let again = decide(&g, &two_tables("i-p"), &d.state, &input(T0 + 60, FIVE_MIN)).unwrap();
    assert!(again.moves.is_empty());
    assert!(!again.state_changed(&d.state), "{:?}", again.state);
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
            VpcRoute {
                instance_id: None,
                ..to_eni("rtb-1", "172.16.0.0/12", "i-p", "eni-i-p-0")
            },
            // Instance id only.
            VpcRoute {
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
