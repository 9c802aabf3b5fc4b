//! Hand-built meshes: a peering that fails and one that comes back, a
//! peering in transition, an unreadable region, a region cut off,
//! `LBGP_MAX_HOPS`, leaves, blackholes.

use super::*;

/// A converged mesh: the view after applying the first plan, and the ledger.
fn converged(view: &MeshView, config: &PropagatorConfig) -> (MeshView, OwnershipLedger) {
    let ledger = OwnershipLedger::new();
    let mut desire = propagate::desire(view.clone(), &ledger, config);
    let plan = propagate::plan(&mut desire, &ledger, config);
    apply(view, &desire.actual, &ledger, &plan)
}

fn plan_of(
    view: &MeshView,
    ledger: &OwnershipLedger,
    config: &PropagatorConfig,
) -> (lbgp_core::desire::Desire, Plan) {
    let mut desire = propagate::desire(view.clone(), ledger, config);
    let plan = propagate::plan(&mut desire, ledger, config);
    (desire, plan)
}

/// Sets the state of `attachment` in every region; routes to a peering that
/// is gone read `blackhole` with no attachment, as EC2 shows them.
fn set_state(view: &mut MeshView, attachment: &str, state: AttachmentState) {
    let gone = state.lifecycle() == lbgp_core::topology::Lifecycle::Gone;
    for rv in &mut view.regions {
        for p in rv.peerings.iter_mut().filter(|p| p.id == attachment) {
            p.state = state.clone();
        }
        for r in rv
            .routes
            .iter_mut()
            .filter(|r| gone && r.route.target.id() == attachment)
        {
            r.route.state = RouteState::Blackhole;
            r.route.target = RouteTarget::Blackhole;
            r.attachments.clear();
        }
    }
}

fn full_mesh(n: usize) -> Topo {
    let mut links = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            links.push((a, b, (a * 10 + b) as u16, 0));
        }
    }
    Topo {
        ids: (0..n).collect(),
        leaves: vec![false; n],
        own_table: vec![false; n],
        links,
        max_hops: None,
    }
}

fn link_of(topo: &Topo, a: usize, b: usize) -> String {
    let l = topo
        .links
        .iter()
        .position(|(x, y, _, _)| (*x, *y) == (a, b) || (*x, *y) == (b, a))
        .unwrap();
    topo.attachment(l)
}

#[test]
fn a_failed_peering_reroutes_with_replaces_only_and_a_new_one_brings_routes_back() {
    let topo = full_mesh(4);
    let config = config("shortest-path", None);
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    let ab = link_of(&topo, 0, 1);
    set_state(&mut view, &ab, AttachmentState::Deleted);
    let (_, plan) = plan_of(&view, &ledger, &config);
    // A's route to B and B's route to A move through C (the smallest id of
    // the two equal paths), nothing else changes.
    let moved: Vec<(String, String, String)> = plan
        .changes
        .iter()
        .map(|c| {
            (
                c.key.table.id.clone(),
                c.key.destination.to_string(),
                c.target.id().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moved,
        vec![
            ("tgw-rtb-000".into(), "10.1.0.0/16".into(), link_of(&topo, 0, 2)),
            ("tgw-rtb-001".into(), "10.0.0.0/16".into(), link_of(&topo, 1, 2)),
        ],
        "{plan:#?}"
    );
    assert!(plan.changes.iter().all(|c| c.op == ChangeOp::Replace));
    assert_eq!(
        plan.changes[0].reason.to_string(),
        format!("the desired target changed (was {ab}); path te-a-1 → te-c-1 → te-b-1 (2 hops)")
    );
    let (desire, _) = plan_of(&view, &ledger, &config);
    let (mut view, ledger) = apply(&view, &desire.actual, &ledger, &plan);
    assert!(plan_of(&view, &ledger, &config).1.changes.is_empty());
    // A new peering between A and B, once available, brings them back.
    let end = |i: usize| PeeringEnd {
        transit_gateway_id: topo.id(i),
        region: Some(topo.region(i)),
    };
    for side in [0, 1] {
        view.regions[side].peerings.push(PeeringAttachment {
            id: "tgw-attach-new".into(),
            region: topo.region(side),
            requester: end(0),
            accepter: end(1),
            state: AttachmentState::Pending,
            route_table: Some(Topo::default_table(side)),
        });
    }
    assert!(
        plan_of(&view, &ledger, &config).1.changes.is_empty(),
        "a pending peering moved routes"
    );
    set_state(&mut view, "tgw-attach-new", AttachmentState::Available);
    let (_, back) = plan_of(&view, &ledger, &config);
    assert_eq!(back.changes.len(), 2, "{back:#?}");
    assert!(
        back.changes
            .iter()
            .all(|c| c.op == ChangeOp::Replace && c.target.id() == "tgw-attach-new")
    );
}

#[test]
fn a_peering_in_transition_moves_routes_when_a_path_remains_and_keeps_them_when_none_does() {
    // A – B – C in a line, plus A – C: failing A – B keeps nothing frozen
    // for A → B (through C), but in the line alone it freezes.
    let mut topo = full_mesh(3);
    let config = config("shortest-path", None);
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    set_state(&mut view, &link_of(&topo, 0, 1), AttachmentState::Failing);
    let (desire, plan) = plan_of(&view, &ledger, &config);
    assert_eq!(plan.changes.len(), 2);
    assert!(plan.changes.iter().all(|c| c.op == ChangeOp::Replace));
    assert!(desire.frozen_keys.is_empty());

    topo.links.retain(|(a, b, _, _)| (*a, *b) != (0, 2));
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    set_state(&mut view, &link_of(&topo, 0, 1), AttachmentState::Failing);
    let (desire, plan) = plan_of(&view, &ledger, &config);
    // A's routes to B and C, B's to A, C's to A: all over A – B, none moved.
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(desire.frozen_keys.len(), 4, "{:#?}", desire.skipped);
    assert!(desire.skipped.iter().all(|s| s.reason.contains("is failing")));
    // Gone for good: withdrawn.
    set_state(&mut view, &link_of(&topo, 0, 1), AttachmentState::Failed);
    let (_, plan) = plan_of(&view, &ledger, &config);
    assert_eq!(plan.changes.len(), 4);
    assert!(plan.changes.iter().all(|c| c.op == ChangeOp::Delete));
}

#[test]
fn an_unreadable_region_freezes_every_member_connected_to_it() {
    // 0 – 1 – 2, and 3 – 4 apart; region 2 goes dark.
    let topo = Topo {
        ids: (0..5).collect(),
        leaves: vec![false; 5],
        own_table: vec![false, true, false, false, false],
        links: vec![(0, 1, 1, 0), (1, 2, 2, 0), (3, 4, 3, 0)],
        max_hops: None,
    };
    let config = config("shortest-path", None);
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    let dark = view.regions.remove(2);
    view.unreadable.push(ErrorReport {
        region: dark.region.to_string(),
        resource: None,
        error: "connection refused".into(),
        account: None,
    });
    // Something to do in 3 – 4: a new VPC in 3.
    view.regions[2].vpcs[0]
        .cidrs
        .push("10.33.0.0/16".parse().unwrap());
    let (desire, plan) = plan_of(&view, &ledger, &config);
    let frozen: BTreeSet<&str> = desire.frozen_tables.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        frozen,
        BTreeSet::from(["tgw-rtb-000", "tgw-rtb-001", "tgw-rtb-001p"])
    );
    let written: BTreeSet<&str> = plan.changes.iter().map(|c| c.key.table.id.as_str()).collect();
    assert_eq!(written, BTreeSet::from(["tgw-rtb-004"]), "{plan:#?}");
}

#[test]
fn a_region_cut_off_is_withdrawn_everywhere_and_max_hops_cuts() {
    // A chain 0 – 1 – 2 – 3.
    let topo = Topo {
        ids: (0..4).collect(),
        leaves: vec![false; 4],
        own_table: vec![false; 4],
        links: vec![(0, 1, 1, 0), (1, 2, 2, 0), (2, 3, 3, 0)],
        max_hops: None,
    };
    let config = config("shortest-path", None);
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    let routes = |view: &MeshView| -> usize {
        view.regions
            .iter()
            .flat_map(|r| &r.routes)
            .filter(|r| r.route.origin == RouteOrigin::Static)
            .count()
    };
    assert_eq!(routes(&view), 12);
    set_state(&mut view, &link_of(&topo, 2, 3), AttachmentState::Deleted);
    let (_, plan) = plan_of(&view, &ledger, &config);
    // 3 forgets 0, 1, 2; they forget 3.
    assert_eq!(plan.changes.len(), 6);
    assert!(plan.changes.iter().all(|c| c.op == ChangeOp::Delete));
    // Two hops at most: 0 and 3 (three apart) learn nothing of each other.
    let hops2 = config_hops(2);
    let (_, plan) = plan_of(&mesh_view(&topo), &OwnershipLedger::new(), &hops2);
    assert_eq!(plan.changes.len(), 10);
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.key.table.id == "tgw-rtb-000" && c.key.destination.to_string() == "10.3.0.0/16")
    );
}

fn config_hops(m: usize) -> PropagatorConfig {
    config("shortest-path", Some(m))
}

#[test]
fn a_leaf_carries_no_transit_and_a_bad_transit_tag_is_a_leaf_reported() {
    // 0 – 1 – 2 with 1 a leaf with a peering table of its own.
    let mut topo = Topo {
        ids: (0..3).collect(),
        leaves: vec![false, true, false],
        own_table: vec![false, true, false],
        links: vec![(0, 1, 1, 0), (1, 2, 2, 0)],
        max_hops: None,
    };
    let config = config("shortest-path", None);
    let desire = propagate::desire(mesh_view(&topo), &OwnershipLedger::new(), &config);
    let tables = installed(&desire.desired);
    assert_eq!(tables["tgw-rtb-000"].len(), 1, "0 learns 1 only");
    assert_eq!(tables["tgw-rtb-001"].len(), 2, "the leaf learns both");
    assert!(
        !tables.contains_key("tgw-rtb-001p"),
        "the leaf's peering table got routes"
    );
    // The same with a tag that is neither true nor false.
    topo.leaves[1] = false;
    let mut view = mesh_view(&topo);
    view.regions[1].transit_gateways[0]
        .tags
        .insert(TAG_TRANSIT.to_owned(), "no".to_owned());
    let odd = propagate::desire(view, &OwnershipLedger::new(), &config);
    assert_eq!(odd.desired, desire.desired);
    assert!(
        odd.errors.iter().any(|e| e.error.contains("lbgp:transit=\"no\"")),
        "{:?}",
        odd.errors
    );
}

#[test]
fn a_blackhole_over_a_forwarding_peering_is_someone_elses_and_stays() {
    // Someone turns our route in 0 toward 1's prefix into a blackhole while
    // the peering still forwards; then 1's prefix goes away. Our other route
    // to it (in 2) is deleted; the blackhole is not ours any more: kept.
    let topo = full_mesh(3);
    let config = config("shortest-path", None);
    let (mut view, ledger) = converged(&mesh_view(&topo), &config);
    let gone = Topo::cidr(1);
    let r = view.regions[0]
        .routes
        .iter_mut()
        .find(|r| r.route.origin == RouteOrigin::Static && r.route.key.destination == gone)
        .unwrap();
    r.route.state = RouteState::Blackhole;
    r.route.target = RouteTarget::Blackhole;
    r.attachments.clear();
    let key = r.route.key.clone();
    view.regions[1].vpcs.clear();
    view.regions[1].routes.retain(|r| r.route.key.destination != gone);
    let (_, plan) = plan_of(&view, &ledger, &config);
    let deleted: Vec<&str> = plan.changes.iter().map(|c| c.key.table.id.as_str()).collect();
    assert_eq!(deleted, ["tgw-rtb-002"], "{plan:#?}");
    assert!(
        plan.changes
            .iter()
            .all(|c| c.op == ChangeOp::Delete && c.key.destination == gone)
    );
    assert!(!plan.changes.iter().any(|c| c.key == key));
}

#[test]
fn switching_modes_either_way_opens_with_creates_and_closes_with_deletes() {
    // Hub 0 with spokes 1, 2, 3; the hub's peering sides are associated
    // with a transit table of its own.
    let topo = Topo {
        ids: (0..4).collect(),
        leaves: vec![false; 4],
        own_table: vec![true, false, false, false],
        links: vec![(0, 1, 1, 0), (0, 2, 2, 0), (0, 3, 3, 0)],
        max_hops: None,
    };
    let direct = config("direct", None);
    let shortest = config("shortest-path", None);
    let (view, ledger) = converged(&mesh_view(&topo), &direct);
    assert!(plan_of(&view, &ledger, &direct).1.changes.is_empty());
    let (desire, opened) = plan_of(&view, &ledger, &shortest);
    assert_eq!(opened.changes.len(), 9, "{opened:#?}");
    assert!(opened.changes.iter().all(|c| c.op == ChangeOp::Create));
    let transit: Vec<_> = opened
        .changes
        .iter()
        .filter(|c| c.key.table.id == "tgw-rtb-000p")
        .collect();
    assert_eq!(transit.len(), 3, "the hub's transit table gets the spokes");
    let spoke = opened
        .changes
        .iter()
        .find(|c| c.key.table.id == "tgw-rtb-001" && c.key.destination == Topo::cidr(3))
        .unwrap();
    assert_eq!(spoke.target.id(), link_of(&topo, 0, 1));
    assert_eq!(
        spoke.reason.to_string(),
        "desired route is missing; path te-b-1 → te-a-1 → te-d-1 (2 hops)"
    );
    let (view, ledger) = apply(&view, &desire.actual, &ledger, &opened);
    assert!(plan_of(&view, &ledger, &shortest).1.changes.is_empty());
    let (_, closed) = plan_of(&view, &ledger, &direct);
    assert_eq!(closed.changes.len(), 9, "{closed:#?}");
    assert!(closed.changes.iter().all(|c| c.op == ChangeOp::Delete));
    let keys = |p: &Plan| p.changes.iter().map(|c| c.key.clone()).collect::<BTreeSet<_>>();
    assert_eq!(keys(&closed), keys(&opened));
}
