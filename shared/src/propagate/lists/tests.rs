#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{DesiredRoute, Route, RouteState, TableKind};
use crate::prefix_list::{OWNER_PROPAGATOR, TAG_LIST, TAG_OWNER};
use crate::topology::TAG_MESH;

const MESH: &str = "prod";
const ATT: &str = "tgw-attach-peer1";
const ATT2: &str = "tgw-attach-peer2";

fn region() -> Region {
    Region::new("us-east-1").unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn table(id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region(),
        kind: TableKind::TransitGateway,
        id: id.to_owned(),
    }
}

fn key(t: &str, d: &str) -> RouteKey {
    RouteKey {
        table: table(t),
        destination: cidr(d),
    }
}

fn att(a: &str) -> RouteTarget {
    RouteTarget::TransitGatewayAttachment(a.to_owned())
}

/// A desire: `tables` each wanting `prefixes` toward ATT; `statics`: our
/// static routes present (key, attachment).
fn desire(tables: &[&str], prefixes: &[&str]) -> Desire {
    let mut d = Desire::default();
    d.complete_regions.insert(region());
    for t in tables {
        d.quota_groups.insert(table(t), "tgw-1".to_owned());
        for p in prefixes {
            d.desired.push(DesiredRoute {
                key: key(t, p),
                target: att(ATT),
            });
        }
    }
    d
}

fn actual(d: &mut Desire, t: &str, p: &str, a: &str, origin: RouteOrigin) {
    d.actual.push(Route {
        key: key(t, p),
        target: att(a),
        state: RouteState::Active,
        origin,
    });
}

fn our_list(id: &str, t: &str, a: &str, entries: &[&str]) -> ManagedList {
    let k = list_key(&table(t), a, Family::Ipv4);
    ManagedList {
        region: region(),
        id: id.to_owned(),
        name: k.name(MESH),
        family: Some(Family::Ipv4),
        max_entries: Some(sized(entries.len())),
        version: 3,
        state: ListState::Ready,
        state_message: String::new(),
        tags: k.tags(MESH).into_iter().collect(),
        entries: Some(entries.iter().map(|e| cidr(e)).collect()),
    }
}

fn reference(t: &str, list: &str, a: &str) -> TgwReference {
    TgwReference {
        table: table(t),
        prefix_list_id: list.to_owned(),
        attachment_id: Some(a.to_owned()),
    }
}

fn run(style: RouteStyle, d: &Desire, lists: &TgwListsView, quota: usize) -> TgwListPlan {
    plan(&TgwListInput {
        mesh: MESH,
        style,
        quota,
        desire: d,
        lists,
        transitional: &BTreeSet::new(),
        ledger: &OwnershipLedger::new(),
    })
}

#[test]
fn propagator_lists_carry_their_owner_and_key() {
    let l = our_list("pl-1", "tgw-rtb-a", ATT, &[]);
    assert_eq!(l.tags.get(TAG_OWNER).map(String::as_str), Some(OWNER_PROPAGATOR));
    assert_eq!(
        l.tags.get(TAG_LIST).map(String::as_str),
        Some("tgw-rtb-a/tgw-attach-peer1/ipv4")
    );
    assert_eq!(
        l.tgw_key(MESH),
        Some(list_key(&table("tgw-rtb-a"), ATT, Family::Ipv4))
    );
    // Never the injector's, and not another mesh's.
    assert_eq!(l.key(MESH), None);
    assert_eq!(l.tgw_key("other"), None);
}

#[test]
fn converging_creates_one_list_and_one_reference_per_table_and_peer() {
    let d = desire(&["tgw-rtb-a", "tgw-rtb-b"], &["10.1.0.0/16", "10.2.0.0/16"]);
    let p = run(RouteStyle::PrefixList, &d, &TgwListsView::default(), 10_000);
    let creates = p
        .steps
        .iter()
        .filter(|s| matches!(s, ListStep::CreateList { .. }))
        .count();
    let refs = p
        .steps
        .iter()
        .filter(|s| matches!(s, ListStep::CreateReference { .. }))
        .count();
    assert_eq!((creates, refs, p.steps.len()), (2, 2, 4), "{:?}", p.steps);
    assert!(p.carried.contains(&table("tgw-rtb-a")));
    // The routes-style desire loses the carried routes.
    let mut d2 = d.clone();
    p.apply_to(&mut d2);
    assert!(d2.desired.is_empty());
}

#[test]
fn in_place_nothing_is_written_and_an_origin_change_is_one_entry_change() {
    let d = desire(&["tgw-rtb-a"], &["10.1.0.0/16", "10.2.0.0/16"]);
    let lists = TgwListsView {
        lists: vec![our_list(
            "pl-1",
            "tgw-rtb-a",
            ATT,
            &["10.1.0.0/16", "10.2.0.0/16"],
        )],
        references: vec![reference("tgw-rtb-a", "pl-1", ATT)],
        unreadable: vec![],
    };
    assert!(run(RouteStyle::PrefixList, &d, &lists, 10_000).steps.is_empty());
    let d = desire(&["tgw-rtb-a"], &["10.1.0.0/16", "10.3.0.0/16"]);
    let p = run(RouteStyle::PrefixList, &d, &lists, 10_000);
    assert_eq!(
        p.steps,
        vec![ListStep::SyncEntries {
            region: region(),
            list_id: "pl-1".to_owned(),
            version: 3,
            add: vec![cidr("10.3.0.0/16")],
            remove: vec![cidr("10.2.0.0/16")],
            entries: vec![cidr("10.1.0.0/16"), cidr("10.3.0.0/16")],
        }]
    );
}

#[test]
fn a_reference_pointing_elsewhere_is_modified() {
    let d = desire(&["tgw-rtb-a"], &["10.1.0.0/16"]);
    let lists = TgwListsView {
        lists: vec![our_list("pl-1", "tgw-rtb-a", ATT, &["10.1.0.0/16"])],
        references: vec![reference("tgw-rtb-a", "pl-1", ATT2)],
        unreadable: vec![],
    };
    let p = run(RouteStyle::PrefixList, &d, &lists, 10_000);
    assert!(matches!(&p.steps[..], [ListStep::ModifyReference { attachment, .. }] if attachment == ATT));
}

#[test]
fn switching_back_keeps_the_reference_until_the_routes_are_in_then_removes_list_and_reference() {
    let lists = TgwListsView {
        lists: vec![our_list("pl-1", "tgw-rtb-a", ATT, &["10.1.0.0/16"])],
        references: vec![reference("tgw-rtb-a", "pl-1", ATT)],
        unreadable: vec![],
    };
    let mut d = desire(&["tgw-rtb-a"], &["10.1.0.0/16"]);
    actual(&mut d, "tgw-rtb-a", "10.1.0.0/16", ATT, RouteOrigin::Propagated);
    let first = run(RouteStyle::Routes, &d, &lists, 10_000);
    assert!(first.steps.is_empty() && first.again, "{first:?}");
    // The list's own routes do not hold the destinations against the
    // static routes replacing them.
    let mut shadowed = d.clone();
    first.apply_to(&mut shadowed);
    assert!(shadowed.actual.is_empty() && shadowed.desired.len() == 1);
    let mut d = desire(&["tgw-rtb-a"], &["10.1.0.0/16"]);
    actual(&mut d, "tgw-rtb-a", "10.1.0.0/16", ATT, RouteOrigin::Static);
    let second = run(RouteStyle::Routes, &d, &lists, 10_000);
    assert_eq!(
        second.steps,
        vec![
            ListStep::DeleteReference {
                table: table("tgw-rtb-a"),
                list_id: "pl-1".to_owned()
            },
            ListStep::DeleteList {
                region: region(),
                list_id: "pl-1".to_owned()
            },
        ]
    );
}

#[test]
fn foreign_lists_and_references_are_never_written() {
    let mut foreign = our_list("pl-f", "tgw-rtb-a", ATT, &["10.9.0.0/16"]);
    foreign
        .tags
        .insert(TAG_OWNER.to_owned(), "someone-else".to_owned());
    let mut other_mesh = our_list("pl-m", "tgw-rtb-a", ATT, &["10.8.0.0/16"]);
    other_mesh.tags.insert(TAG_MESH.to_owned(), "dev".to_owned());
    let lists = TgwListsView {
        lists: vec![foreign, other_mesh],
        references: vec![
            reference("tgw-rtb-a", "pl-f", ATT),
            reference("tgw-rtb-a", "pl-m", ATT),
        ],
        unreadable: vec![],
    };
    for style in [RouteStyle::Routes, RouteStyle::PrefixList] {
        let d = desire(&["tgw-rtb-a"], &["10.1.0.0/16"]);
        let p = run(style, &d, &lists, 10_000);
        for s in &p.steps {
            let touched = match s {
                ListStep::SyncEntries { list_id, .. }
                | ListStep::Resize { list_id, .. }
                | ListStep::ModifyReference { list_id, .. }
                | ListStep::DeleteReference { list_id, .. }
                | ListStep::DeleteList { list_id, .. } => Some(list_id.as_str()),
                _ => None,
            };
            assert!(touched.is_none_or(|id| id != "pl-f" && id != "pl-m"), "{s:?}");
        }
    }
}

#[test]
fn entries_count_toward_the_tgw_route_quota() {
    let d = desire(
        &["tgw-rtb-a", "tgw-rtb-b"],
        &["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"],
    );
    let p = run(RouteStyle::PrefixList, &d, &TgwListsView::default(), 5);
    assert!(p.steps.is_empty());
    assert_eq!(p.refused.len(), 2);
    assert!(p.refused.values().all(|e| e.contains("LBGP_TGW_ROUTE_QUOTA=5")));
    let p = run(RouteStyle::PrefixList, &d, &TgwListsView::default(), 6);
    assert!(p.refused.is_empty());
}

#[test]
fn unreadable_regions_and_transitional_peerings_are_left_alone() {
    let lists = TgwListsView {
        lists: vec![our_list("pl-1", "tgw-rtb-a", ATT, &["10.1.0.0/16"])],
        references: vec![reference("tgw-rtb-a", "pl-1", ATT)],
        unreadable: vec![region()],
    };
    let d = desire(&["tgw-rtb-a"], &[]);
    assert!(run(RouteStyle::PrefixList, &d, &lists, 10_000).steps.is_empty());
    let lists = TgwListsView {
        unreadable: vec![],
        ..lists
    };
    let transitional: BTreeSet<String> = [ATT.to_owned()].into();
    let p = plan(&TgwListInput {
        mesh: MESH,
        style: RouteStyle::PrefixList,
        quota: 10_000,
        desire: &d,
        lists: &lists,
        transitional: &transitional,
        ledger: &OwnershipLedger::new(),
    });
    assert!(p.steps.is_empty(), "{:?}", p.steps);
}

#[test]
fn a_foreign_static_route_at_an_entry_is_reported_as_the_conflict_it_is() {
    // 10.1/16: an operator's static route toward another peering (AWS
    // prefers it to the entry); 10.2/16: our own static route left from the
    // routes style (replaced by the entry, not a conflict); 10.3/16: a
    // foreign static route toward the same peering (it agrees).
    let mut d = desire(&["tgw-rtb-a"], &["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
    actual(&mut d, "tgw-rtb-a", "10.1.0.0/16", ATT2, RouteOrigin::Static);
    actual(&mut d, "tgw-rtb-a", "10.2.0.0/16", ATT2, RouteOrigin::Static);
    actual(&mut d, "tgw-rtb-a", "10.3.0.0/16", ATT, RouteOrigin::Static);
    let mut ledger = OwnershipLedger::new();
    ledger.insert(crate::plan::LedgerEntry::new(
        key("tgw-rtb-a", "10.2.0.0/16"),
        att(ATT2),
        crate::plan::LedgerStatus::Owned,
    ));
    let p = plan(&TgwListInput {
        mesh: MESH,
        style: RouteStyle::PrefixList,
        quota: 10_000,
        desire: &d,
        lists: &TgwListsView::default(),
        transitional: &BTreeSet::new(),
        ledger: &ledger,
    });
    let held: Vec<(&str, &str)> = p
        .conflicts
        .iter()
        .map(|c| (c.destination.as_str(), c.held_by[0].as_str()))
        .collect();
    assert_eq!(held, vec![("10.1.0.0/16", ATT2)]);
    assert_eq!(p.conflicts[0].wanted.as_deref(), Some(ATT));
    // The entry stays in the list (it takes over if the route goes), and
    // the conflict reaches the response through the desire.
    assert!(
        p.steps.iter().any(
            |s| matches!(s, ListStep::CreateList { entries, .. } if entries.contains(&cidr("10.1.0.0/16")))
        ),
        "{:?}",
        p.steps
    );
    let mut after = d.clone();
    p.apply_to(&mut after);
    assert_eq!(after.conflicts.len(), 1);
}
