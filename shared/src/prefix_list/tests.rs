#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::config::RouteStyle;
use crate::desire::Desire;
use crate::inject::{InjectorView, RegionView};
use crate::model::{DesiredRoute, Route, RouteKey, RouteState, TableKind};
use crate::plan::{LedgerEntry, LedgerStatus, OwnershipLedger};
use crate::topology::{Vpc, VpcRoute, VpcRouteTable};

const MESH: &str = "prod";
const TGW: &str = "tgw-1";

fn region() -> Region {
    Region::new("us-east-1").unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn table_ref(id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region(),
        kind: TableKind::Vpc,
        id: id.to_owned(),
    }
}

fn static_route(table: &str, dest: &str, target: RouteTarget) -> VpcRoute {
    VpcRoute {
        route: Route {
            key: RouteKey {
                table: table_ref(table),
                destination: cidr(dest),
            },
            target,
            state: RouteState::Active,
            origin: RouteOrigin::Static,
        },
        instance_id: None,
        network_interface_id: None,
    }
}

/// A mesh region: `vpcs` (id, cidr) each with one table `rtb-<id>` wanting
/// every other VPC's CIDR toward TGW; `extra` routes per table.
struct World {
    view: InjectorView,
    desire: Desire,
    lists: ListsView,
    ledger: OwnershipLedger,
    quota: usize,
    style: RouteStyle,
}

impl World {
    fn new(vpcs: &[(&str, &str)]) -> World {
        let mut tables = Vec::new();
        let mut desired = Vec::new();
        for (id, _) in vpcs {
            let rtb = format!("rtb-{id}");
            tables.push(VpcRouteTable {
                id: rtb.clone(),
                vpc_id: (*id).to_owned(),
                main: true,
                subnet_ids: vec![],
                gateway_ids: vec![],
                tags: BTreeMap::new(),
                routes: vec![],
                owner: None,
            });
            for (other, c) in vpcs.iter().filter(|(o, _)| o != id) {
                let _ = other;
                desired.push(DesiredRoute {
                    key: RouteKey {
                        table: table_ref(&rtb),
                        destination: cidr(c),
                    },
                    target: RouteTarget::TransitGateway(TGW.to_owned()),
                });
            }
        }
        let view = InjectorView {
            scope: vec![region()],
            regions: vec![RegionView {
                region: region(),
                transit_gateways: vec![],
                attachments: vec![],
                vpcs: vpcs
                    .iter()
                    .map(|(id, c)| Vpc {
                        id: (*id).to_owned(),
                        cidrs: vec![cidr(c)],
                    })
                    .collect(),
                tables,
            }],
            ..InjectorView::default()
        };
        let mut desire = Desire {
            desired,
            ..Desire::default()
        };
        desire.complete_regions.insert(region());
        World {
            view,
            desire,
            lists: ListsView::default(),
            ledger: OwnershipLedger::new(),
            quota: 50,
            style: RouteStyle::PrefixList,
        }
    }

    fn plan(&self) -> ListPlan {
        plan(&ListInput {
            mesh: MESH,
            style: self.style,
            quota: self.quota,
            desire: &self.desire,
            view: &self.view,
            lists: &self.lists,
            ledger: &self.ledger,
        })
    }

    fn table_mut(&mut self, id: &str) -> &mut VpcRouteTable {
        self.view.regions[0]
            .tables
            .iter_mut()
            .find(|t| t.id == id)
            .unwrap()
    }

    /// Applies a plan's steps as AWS would (lists get ids `pl-new<n>`).
    fn apply(&mut self, plan: &ListPlan) {
        let mut created: BTreeMap<ListKey, String> = BTreeMap::new();
        for step in &plan.steps {
            match step {
                ListStep::CreateList {
                    key,
                    name,
                    max_entries,
                    entries,
                } => {
                    let id = format!("pl-new{}", self.lists.lists.len());
                    created.insert(key.clone(), id.clone());
                    self.lists.lists.push(ManagedList {
                        region: region(),
                        id,
                        name: name.clone(),
                        family: Some(key.family),
                        max_entries: Some(*max_entries),
                        version: 1,
                        state: ListState::Ready,
                        state_message: String::new(),
                        tags: key.tags(MESH).into_iter().collect(),
                        entries: Some(entries.clone()),
                    });
                }
                ListStep::Resize { list_id, to, .. } => {
                    let l = self.lists.lists.iter_mut().find(|l| &l.id == list_id).unwrap();
                    l.max_entries = Some(*to);
                }
                ListStep::SyncEntries { list_id, entries, .. } => {
                    let l = self.lists.lists.iter_mut().find(|l| &l.id == list_id).unwrap();
                    assert!(entries.len() <= l.max_entries.unwrap());
                    l.entries = Some(entries.clone());
                    l.version += 1;
                }
                ListStep::CreateRoute { table, list, target } => {
                    let id = match list {
                        ListRef::Id(id) => id.clone(),
                        ListRef::New(k) => created[k].clone(),
                    };
                    self.lists.routes.push(ListRoute {
                        table: table.clone(),
                        prefix_list_id: id,
                        target: target.clone(),
                        origin: RouteOrigin::Static,
                    });
                }
                ListStep::ReplaceRoute {
                    table,
                    list_id,
                    target,
                    ..
                } => {
                    let r = self
                        .lists
                        .routes
                        .iter_mut()
                        .find(|r| &r.table == table && &r.prefix_list_id == list_id)
                        .unwrap();
                    r.target = target.clone();
                }
                ListStep::DeleteRoute { table, list_id, .. } => {
                    self.lists
                        .routes
                        .retain(|r| !(&r.table == table && &r.prefix_list_id == list_id));
                }
                ListStep::DeleteList { list_id, .. } => {
                    assert!(
                        !self.lists.routes.iter().any(|r| &r.prefix_list_id == list_id),
                        "deleted a referenced list"
                    );
                    self.lists.lists.retain(|l| &l.id != list_id);
                }
                ListStep::CreateReference { .. }
                | ListStep::ModifyReference { .. }
                | ListStep::DeleteReference { .. } => {
                    panic!("the injector plans no TGW reference: {step:?}")
                }
            }
        }
    }
}

fn four() -> World {
    World::new(&[
        ("vpc-a", "10.1.0.0/16"),
        ("vpc-b", "10.2.0.0/16"),
        ("vpc-c", "10.3.0.0/16"),
        ("vpc-d", "10.9.0.0/16"),
    ])
}

#[test]
fn one_list_one_route_per_table_then_nothing() {
    let mut w = four();
    let p = w.plan();
    let creates: Vec<_> = p
        .steps
        .iter()
        .filter(|s| matches!(s, ListStep::CreateList { .. }))
        .collect();
    assert_eq!(creates.len(), 1, "{p:#?}");
    let ListStep::CreateList {
        entries, max_entries, ..
    } = creates[0]
    else {
        unreachable!()
    };
    // 10.2/16 and 10.3/16 are siblings: one entry, 10.2.0.0/15.
    assert_eq!(
        entries,
        &vec![cidr("10.1.0.0/16"), cidr("10.2.0.0/15"), cidr("10.9.0.0/16")]
    );
    assert_eq!(*max_entries, 10);
    let routes = p
        .steps
        .iter()
        .filter(|s| matches!(s, ListStep::CreateRoute { .. }))
        .count();
    assert_eq!(routes, 4);
    assert_eq!(p.carried.len(), 4);
    assert!(p.refused.is_empty() && !p.again);
    w.apply(&p);
    let again = w.plan();
    assert!(again.steps.is_empty(), "{again:#?}");
    assert_eq!(again.carried.len(), 4);
}

#[test]
fn carried_tables_lose_their_tgw_routes_only() {
    let mut w = four();
    w.desire.desired.push(DesiredRoute {
        key: RouteKey {
            table: table_ref("rtb-vpc-a"),
            destination: cidr("192.168.0.0/16"),
        },
        target: RouteTarget::Other("pcx-1".into()),
    });
    let p = w.plan();
    let mut d = w.desire.clone();
    p.apply_to(&mut d);
    assert_eq!(d.desired.len(), 1);
    assert_eq!(d.desired[0].target, RouteTarget::Other("pcx-1".into()));
}

#[test]
fn a_foreign_route_at_a_carried_destination_is_a_conflict() {
    let mut w = four();
    let eni = RouteTarget::NetworkInterface("eni-legacy".into());
    w.desire
        .actual
        .push(static_route("rtb-vpc-a", "10.2.0.0/16", eni.clone()).route);
    let p = w.plan();
    assert!(p.carried.contains(&table_ref("rtb-vpc-a")), "{p:#?}");
    let mut d = w.desire.clone();
    p.apply_to(&mut d);
    assert_eq!(d.conflicts.len(), 1, "{:#?}", d.conflicts);
    let c = &d.conflicts[0];
    assert_eq!(c.route_table_id.as_deref(), Some("rtb-vpc-a"));
    assert_eq!(c.destination, "10.2.0.0/16");
    assert_eq!(c.held_by, vec![eni.to_string()]);
    // Our own route toward the TGW at a carried destination is none.
    let mut w = four();
    let tgw = RouteTarget::TransitGateway(TGW.to_owned());
    w.desire
        .actual
        .push(static_route("rtb-vpc-a", "10.2.0.0/16", tgw).route);
    let mut d = w.desire.clone();
    w.plan().apply_to(&mut d);
    assert!(d.conflicts.is_empty(), "{:#?}", d.conflicts);
}

#[test]
fn a_new_vpc_is_one_entry_change_and_its_own_route() {
    let mut w = four();
    let p = w.plan();
    w.apply(&p);
    // vpc-e joins.
    let mut bigger = World::new(&[
        ("vpc-a", "10.1.0.0/16"),
        ("vpc-b", "10.2.0.0/16"),
        ("vpc-c", "10.3.0.0/16"),
        ("vpc-d", "10.9.0.0/16"),
        ("vpc-e", "10.20.0.0/16"),
    ]);
    bigger.lists = w.lists.clone();
    let p = bigger.plan();
    let kinds: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match s {
            ListStep::SyncEntries { .. } => "sync",
            ListStep::CreateRoute { .. } => "route",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, vec!["sync", "route"]);
    let ListStep::SyncEntries {
        add, remove, version, ..
    } = &p.steps[0]
    else {
        unreachable!()
    };
    assert_eq!(add, &vec![cidr("10.20.0.0/16")]);
    assert!(remove.is_empty());
    assert_eq!(*version, 1);
}

#[test]
fn a_table_whose_quota_cannot_hold_the_max_entries_is_refused() {
    let mut w = four();
    for i in 0..48 {
        let r = static_route(
            "rtb-vpc-a",
            &format!("172.16.{i}.0/24"),
            RouteTarget::Other("igw-1".into()),
        );
        w.table_mut("rtb-vpc-a").routes.push(r);
    }
    let p = w.plan();
    let err = &p.refused[&table_ref("rtb-vpc-a")];
    assert!(err.contains("max entries against the route quota"), "{err}");
    assert!(err.contains("48 other IPv4 routes"), "{err}");
    assert!(!p.carried.contains(&table_ref("rtb-vpc-a")));
    // The others still get the list, sized within what they can hold.
    assert_eq!(p.carried.len(), 3);
}

#[test]
fn lists_that_are_not_ours_are_never_written() {
    let mut w = four();
    let key = ListKey {
        region: region(),
        family: Family::Ipv4,
        target: TGW.to_owned(),
    };
    let mut tags: BTreeMap<String, String> = key.tags(MESH).into_iter().collect();
    tags.remove(TAG_OWNER);
    // Same name and mesh tag, no owner tag: someone else's.
    w.lists.lists.push(ManagedList {
        region: region(),
        id: "pl-foreign".into(),
        name: key.name(MESH),
        family: Some(Family::Ipv4),
        max_entries: Some(10),
        version: 3,
        state: ListState::Ready,
        state_message: String::new(),
        tags,
        entries: Some(vec![cidr("10.50.0.0/16")]),
    });
    w.lists.routes.push(ListRoute {
        table: table_ref("rtb-vpc-b"),
        prefix_list_id: "pl-foreign".into(),
        target: RouteTarget::TransitGateway(TGW.into()),
        origin: RouteOrigin::Static,
    });
    let p = w.plan();
    for s in &p.steps {
        let text = format!("{s:?}");
        assert!(!text.contains("pl-foreign"), "touched a foreign list: {s:?}");
    }
    assert!(p.steps.iter().any(|s| matches!(s, ListStep::CreateList { .. })));
}

#[test]
fn overlapping_foreign_list_toward_another_target_refuses_the_table() {
    let mut w = four();
    w.lists.lists.push(ManagedList {
        region: region(),
        id: "pl-theirs".into(),
        name: "theirs".into(),
        family: Some(Family::Ipv4),
        max_entries: Some(5),
        version: 1,
        state: ListState::Ready,
        state_message: String::new(),
        tags: BTreeMap::new(),
        entries: Some(vec![cidr("10.0.0.0/12")]),
    });
    w.lists.routes.push(ListRoute {
        table: table_ref("rtb-vpc-c"),
        prefix_list_id: "pl-theirs".into(),
        target: RouteTarget::Other("pcx-9".into()),
        origin: RouteOrigin::Static,
    });
    let p = w.plan();
    let err = &p.refused[&table_ref("rtb-vpc-c")];
    assert!(err.contains("at random"), "{err}");
}

#[test]
fn an_entry_inside_the_vpcs_own_cidr_refuses_the_table() {
    // A /24 inside vpc-a's /16, wanted by vpc-a's table (the injector's
    // rules never desire it; the list's check does not rely on them).
    let mut w = World::new(&[("vpc-a", "10.1.0.0/16")]);
    w.desire.desired.push(DesiredRoute {
        key: RouteKey {
            table: table_ref("rtb-vpc-a"),
            destination: cidr("10.1.5.0/24"),
        },
        target: RouteTarget::TransitGateway(TGW.into()),
    });
    let p = w.plan();
    let err = &p.refused[&table_ref("rtb-vpc-a")];
    assert!(err.contains("inside the VPC's own CIDR"), "{err}");
}

#[test]
fn switching_back_keeps_the_list_until_the_routes_are_in_then_deletes_it() {
    let mut w = four();
    let p = w.plan();
    w.apply(&p);
    w.style = RouteStyle::Routes;
    // No CIDR route in yet: the list routes stay, another stage follows.
    let p = w.plan();
    assert!(p.again);
    assert!(p.steps.is_empty(), "{p:#?}");
    // The CIDR routes are in: list routes and list go.
    for d in w.desire.desired.clone() {
        let t = d.key.table.id.clone();
        let r = static_route(&t, &d.key.destination.to_string(), d.target.clone());
        w.desire.actual.push(r.route.clone());
        w.ledger.insert(LedgerEntry::new(
            d.key.clone(),
            d.target.clone(),
            LedgerStatus::Owned,
        ));
    }
    let p = w.plan();
    let deletes = p
        .steps
        .iter()
        .filter(|s| matches!(s, ListStep::DeleteRoute { .. }))
        .count();
    assert_eq!(deletes, 4);
    assert!(matches!(p.steps.last(), Some(ListStep::DeleteList { .. })));
    w.apply(&p);
    assert!(w.lists.lists.is_empty() && w.lists.routes.is_empty());
    assert!(w.plan().steps.is_empty());
}

#[test]
fn no_room_for_both_deletes_the_routes_first() {
    let mut w = four();
    w.quota = 12;
    // vpc-a holds its three mesh routes, ours, plus 2 foreign ones.
    for d in w
        .desire
        .desired
        .clone()
        .iter()
        .filter(|d| d.key.table.id == "rtb-vpc-a")
    {
        let r = static_route("rtb-vpc-a", &d.key.destination.to_string(), d.target.clone());
        w.ledger.insert(LedgerEntry::new(
            d.key.clone(),
            d.target.clone(),
            LedgerStatus::Owned,
        ));
        w.table_mut("rtb-vpc-a").routes.push(r);
    }
    for i in 0..2 {
        let r = static_route(
            "rtb-vpc-a",
            &format!("172.16.{i}.0/24"),
            RouteTarget::Other("igw-1".into()),
        );
        w.table_mut("rtb-vpc-a").routes.push(r);
    }
    let p = w.plan();
    assert!(p.again);
    assert!(p.carried.contains(&table_ref("rtb-vpc-a")));
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s, ListStep::CreateRoute { table, .. } if table.id == "rtb-vpc-a"))
    );
}

#[test]
fn growing_past_max_entries_resizes_before_the_entries() {
    let mut w = four();
    let p = w.plan();
    w.apply(&p);
    let vpcs: Vec<(String, String)> = (0..12)
        .map(|i| (format!("vpc-{i}"), format!("10.{}.0.0/16", 100 + 2 * i)))
        .collect();
    let refs: Vec<(&str, &str)> = vpcs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut bigger = World::new(&refs);
    bigger.lists = w.lists.clone();
    let p = bigger.plan();
    let ListStep::Resize { from, to, .. } = &p.steps[0] else {
        panic!("{p:#?}")
    };
    assert_eq!((*from, *to), (10, 20));
    assert!(matches!(p.steps[1], ListStep::SyncEntries { .. }));
}

#[test]
fn ownership_needs_every_tag() {
    let key = ListKey {
        region: region(),
        family: Family::Ipv6,
        target: TGW.to_owned(),
    };
    let mut l = ManagedList {
        region: region(),
        id: "pl-1".into(),
        name: key.name(MESH),
        family: Some(Family::Ipv6),
        max_entries: Some(5),
        version: 1,
        state: ListState::Ready,
        state_message: String::new(),
        tags: key.tags(MESH).into_iter().collect(),
        entries: Some(vec![]),
    };
    assert_eq!(l.key(MESH), Some(key.clone()));
    assert_eq!(l.key("other"), None);
    l.family = Some(Family::Ipv4);
    assert_eq!(l.key(MESH), None, "family must match the tag");
    l.family = Some(Family::Ipv6);
    l.tags.insert(TAG_OWNER.into(), "someone".into());
    assert_eq!(l.key(MESH), None);
    assert_eq!(ListState::from_aws("modify-in-progress"), ListState::Busy);
    assert_eq!(ListState::from_aws("modify-failed"), ListState::Failed);
    assert_eq!(ListState::from_aws("create-complete"), ListState::Ready);
}

#[test]
fn sizing_leaves_headroom_within_aws_limit() {
    assert_eq!(sized(0), 5);
    assert_eq!(sized(3), 10);
    assert_eq!(sized(20), 25);
    assert_eq!(sized(100), 125);
    assert_eq!(sized(900), 1000);
    assert_eq!(sized(1000), 1000);
}

fn cidrs(n: usize, offset: usize) -> Vec<Cidr> {
    (0..n)
        .map(|i| cidr(&format!("10.{}.{}.0/24", (i + offset) / 256, (i + offset) % 256)))
        .collect()
}

proptest! {
    #[test]
    fn batches_respect_the_call_limit_and_never_overflow(
        start in 0usize..400, add in 0usize..400, remove_frac in 0usize..=100,
    ) {
        let current = cidrs(start, 0);
        let removed: Vec<Cidr> = current.iter().take(start * remove_frac / 100).copied().collect();
        let added = cidrs(add, 10_000);
        let b = batches(&added, &removed);
        let mut count = start as i64;
        let end = start as i64 - removed.len() as i64 + added.len() as i64;
        let mut all_add = vec![];
        let mut all_remove = vec![];
        for call in &b {
            prop_assert!(call.add.len() <= ENTRIES_PER_CALL && call.remove.len() <= ENTRIES_PER_CALL);
            prop_assert!(!call.add.is_empty() || !call.remove.is_empty());
            count += call.add.len() as i64 - call.remove.len() as i64;
            prop_assert!(count <= (start as i64).max(end));
            all_add.extend(call.add.clone());
            all_remove.extend(call.remove.clone());
        }
        prop_assert_eq!(all_add, added);
        prop_assert_eq!(all_remove, removed);
        prop_assert_eq!(count, end);
    }

    #[test]
    fn sized_holds_the_entries(n in 0usize..=1000) {
        let s = sized(n);
        prop_assert!(s >= n && s <= MAX_LIST_ENTRIES && s.is_multiple_of(5));
    }

    /// The planner's invariant: no table ends up referencing two lists with
    /// overlapping entries toward different targets, whatever foreign
    /// lists the tables already reference.
    #[test]
    fn never_two_overlapping_lists_toward_different_targets(
        foreign in proptest::collection::vec((0usize..4, 0u8..16, 8u8..=24, any::<bool>()), 0..6),
    ) {
        let mut w = four();
        for (i, (table, second, len, same_target)) in foreign.iter().enumerate() {
            let id = format!("pl-f{i}");
            let base: Cidr = format!("10.{second}.0.0/16").parse().unwrap();
            let entry = Cidr::from_net(ipnet::IpNet::new(base.net().addr(), *len).unwrap().trunc());
            w.lists.lists.push(ManagedList {
                region: region(),
                id: id.clone(),
                name: id.clone(),
                family: Some(Family::Ipv4),
                max_entries: Some(1),
                version: 1,
                state: ListState::Ready,
                state_message: String::new(),
                tags: BTreeMap::new(),
                entries: Some(vec![entry]),
            });
            let target = if *same_target { RouteTarget::TransitGateway(TGW.into()) } else { RouteTarget::Other("pcx-1".into()) };
            w.lists.routes.push(ListRoute {
                table: table_ref(&format!("rtb-vpc-{}", ["a", "b", "c", "d"][*table])),
                prefix_list_id: id,
                target,
                origin: RouteOrigin::Static,
            });
        }
        let p = w.plan();
        w.apply(&p);
        let entries_of = |id: &str| w.lists.lists.iter().find(|l| l.id == id).and_then(|l| l.entries.clone()).unwrap_or_default();
        for t in ["a", "b", "c", "d"] {
            let table = table_ref(&format!("rtb-vpc-{t}"));
            let refs: Vec<&ListRoute> = w.lists.routes.iter().filter(|r| r.table == table).collect();
            let ours = |r: &ListRoute| w.lists.lists.iter().any(|l| l.id == r.prefix_list_id && l.key(MESH).is_some());
            for (i, x) in refs.iter().enumerate() {
                for y in &refs[i + 1..] {
                    // Foreign lists overlapping each other are not ours to fix.
                    if x.target != y.target && (ours(x) || ours(y)) {
                        prop_assert!(conflicting(&entries_of(&x.prefix_list_id), &entries_of(&y.prefix_list_id)).is_none(),
                            "{table}: {} and {} overlap", x.prefix_list_id, y.prefix_list_id);
                    }
                }
            }
        }
    }
}
