//! L-BGP's shortest-path mode: the path selection of `lbgp_core::paths`,
//! and the routes `propagate::desire` installs with it, over random
//! connected and disconnected meshes of up to 30 TGWs with random leaves
//! (`lbgp:transit=false`), parallel and non-forwarding peerings, and some
//! TGWs whose peerings are associated with a table of their own (transit
//! tables).
//!
//! The properties are checked against an independent reference (distances
//! by relaxation, not by breadth-first search) and by *forwarding*: a packet
//! is followed table by table, as AWS routes it, through the route table
//! associated with the attachment it arrives on. `scenarios` holds the
//! hand-built cases: reroutes, transitions, unreadable regions, leaves.
// Nodes are numbers: loops over them index several tables at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_range_loop,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};

use lbgp_core::config::{Env, PropagatorConfig};
use lbgp_core::paths::{Graph, Link, Node, TAG_TRANSIT};
use lbgp_core::plan::simulate_apply;
use lbgp_core::propagate::{self, MeshView, RegionView};
use lbgp_core::report::ErrorReport;
use lbgp_core::topology::{
    AttachmentResource, AttachmentState, GatewayState, PeeringAttachment, PeeringEnd, TAG_MESH, TgwRoute,
    TgwRouteAttachment, TgwRouteTable, TransitGateway, Vpc, VpcAttachment,
};
use lbgp_core::{
    ChangeOp, Cidr, OwnershipLedger, Plan, Region, Route, RouteKey, RouteOrigin, RouteState, RouteTableRef,
    RouteTarget, TableKind,
};
use proptest::prelude::*;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

// ------------------------------------------------------------ topologies

/// A random mesh: TGW `i` has id `ids[i]` (a permutation, so id order is not
/// index order), a VPC `10.i.0.0/16`, its default table, and when
/// `own_table[i]` a second table its peering sides are associated with.
#[derive(Debug, Clone)]
struct Topo {
    ids: Vec<usize>,
    leaves: Vec<bool>,
    own_table: Vec<bool>,
    /// (a, b, attachment number, state: 0..=7 available, 8 pending, 9 deleted).
    links: Vec<(usize, usize, u16, u8)>,
    max_hops: Option<usize>,
}

impl Topo {
    fn n(&self) -> usize {
        self.ids.len()
    }
    fn id(&self, i: usize) -> String {
        format!("tgw-{:02}", self.ids[i])
    }
    fn region(&self, i: usize) -> Region {
        region_of(i)
    }
    fn attachment(&self, l: usize) -> String {
        let (_, _, number, _) = self.links[l];
        format!("tgw-attach-{number:05}-{l:03}")
    }
    fn state(&self, l: usize) -> AttachmentState {
        match self.links[l].3 {
            0..=7 => AttachmentState::Available,
            8 => AttachmentState::Pending,
            _ => AttachmentState::Deleted,
        }
    }
    fn forwarding(&self, l: usize) -> bool {
        let (a, b, _, s) = self.links[l];
        a != b && s <= 7
    }
    fn cidr(i: usize) -> Cidr {
        format!("10.{i}.0.0/16").parse().unwrap()
    }
    fn default_table(i: usize) -> String {
        format!("tgw-rtb-{i:03}")
    }
    /// The table `i`'s side of its peerings is associated with.
    fn peering_table(&self, i: usize) -> String {
        if self.own_table[i] {
            format!("tgw-rtb-{i:03}p")
        } else {
            Self::default_table(i)
        }
    }
}

fn region_of(i: usize) -> Region {
    // `te-a-1`, `te-b-1`, … `te-ba-1`: well-formed region names.
    let letters: String = if i < 26 {
        char::from(b'a' + i as u8).to_string()
    } else {
        format!(
            "{}{}",
            char::from(b'a' + (i / 26) as u8),
            char::from(b'a' + (i % 26) as u8)
        )
    };
    Region::new(&format!("te-{letters}-1")).unwrap()
}

fn arb_topo(max: usize) -> impl Strategy<Value = Topo> {
    (1..=max)
        .prop_flat_map(|n| {
            (
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec(prop::bool::weighted(0.2), n),
                prop::collection::vec(prop::bool::weighted(0.3), n),
                // A spanning tree (connected) or not (often disconnected).
                prop::option::weighted(0.6, prop::collection::vec(any::<prop::sample::Index>(), n)),
                prop::collection::vec((0..n, 0..n, any::<u16>(), 0..10u8), 0..=2 * n),
                prop::option::of(1..6usize),
            )
        })
        .prop_map(|(ids, leaves, own_table, tree, extra, max_hops)| {
            let mut links = Vec::new();
            if let Some(parents) = tree {
                for (i, p) in parents.iter().enumerate().skip(1) {
                    links.push((i, p.index(i), (i * 7) as u16, 0));
                }
            }
            links.extend(extra);
            Topo {
                ids,
                leaves,
                own_table,
                links,
                max_hops,
            }
        })
}

/// The reference: hops from every TGW to `origin`, through transit TGWs
/// only, by relaxation to a fixpoint, cut at `max_hops`.
fn reference(topo: &Topo, origin: usize) -> Vec<Option<usize>> {
    let mut d: Vec<Option<usize>> = vec![None; topo.n()];
    d[origin] = Some(0);
    loop {
        let mut changed = false;
        for l in (0..topo.links.len()).filter(|l| topo.forwarding(*l)) {
            let (a, b, _, _) = topo.links[l];
            for (from, to) in [(a, b), (b, a)] {
                let Some(df) = d[from] else { continue };
                if from != origin && topo.leaves[from] {
                    continue;
                }
                if d[to].is_none_or(|dt| df + 1 < dt) {
                    d[to] = Some(df + 1);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    d.into_iter()
        .map(|x| x.filter(|x| topo.max_hops.is_none_or(|m| *x <= m)))
        .collect()
}

fn graph_input(topo: &Topo) -> (Vec<Node>, Vec<Link>) {
    let nodes = (0..topo.n())
        .map(|i| Node {
            id: topo.id(i),
            region: topo.region(i),
            transit: !topo.leaves[i],
        })
        .collect();
    let links = (0..topo.links.len())
        .filter(|l| topo.forwarding(*l))
        .map(|l| Link {
            attachment: topo.attachment(l),
            a: topo.id(topo.links[l].0),
            b: topo.id(topo.links[l].1),
        })
        .collect();
    (nodes, links)
}

/// A cheap deterministic shuffle.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed | 1;
    for i in (1..items.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        items.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

// ------------------------------------------------------------ graph level

fn check_graph(topo: &Topo) -> Result<(), String> {
    let (nodes, links) = graph_input(topo);
    let graph = Graph::new(nodes.clone(), links.clone());
    let index: BTreeMap<String, usize> = (0..topo.n()).map(|i| (topo.id(i), i)).collect();
    for o in 0..topo.n() {
        let want = reference(topo, o);
        let paths = graph.toward(&topo.id(o), topo.max_hops).unwrap();
        for x in 0..topo.n() {
            let id = topo.id(x);
            ensure!(
                paths.distance(&id) == want[x],
                "{id} → {}: distance {:?}, reference {:?}",
                topo.id(o),
                paths.distance(&id),
                want[x]
            );
            let Some(d) = want[x].filter(|d| *d > 0) else {
                ensure!(
                    paths.hop(&id).is_none(),
                    "{id} has a hop toward {} it cannot reach",
                    topo.id(o)
                );
                continue;
            };
            // Follow the next hops: strictly closer each time, never a TGW
            // twice, the origin after exactly `d` hops, only transit between.
            let mut at = x;
            let mut seen = BTreeSet::from([x]);
            for step in 0..d {
                let hop = paths
                    .hop(&topo.id(at))
                    .ok_or(format!("{} has no hop at step {step}", topo.id(at)))?;
                let next = index[&hop.next.id];
                ensure!(
                    graph.edge(&topo.id(at), &hop.next.id) == Some(hop.attachment),
                    "hop over {} is not the edge {} – {}",
                    hop.attachment,
                    topo.id(at),
                    hop.next.id
                );
                let closer = want[at].unwrap() - 1;
                ensure!(
                    want[next] == Some(closer),
                    "{} is not closer to the origin",
                    hop.next.id
                );
                // The tie-break: the smallest id among the qualifying neighbours.
                let best = graph
                    .neighbours(&topo.id(at))
                    .filter(|(n, _)| want[index[&n.id]] == Some(closer) && (index[&n.id] == o || n.transit))
                    .map(|(n, _)| n.id.clone())
                    .min();
                ensure!(
                    best.as_deref() == Some(hop.next.id.as_str()),
                    "tie not broken by the smallest id"
                );
                ensure!(
                    next == o || !topo.leaves[next],
                    "path through the leaf {}",
                    hop.next.id
                );
                ensure!(seen.insert(next), "{} visited twice", hop.next.id);
                at = next;
            }
            ensure!(at == o, "{id}: {d} hops end at {}, not the origin", topo.id(at));
            ensure!(
                paths.path(&id).len() == d + 1,
                "path of {id} is not {d} hops long"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn next_hops_follow_shortest_paths_without_loops(topo in arb_topo(30)) {
        check_graph(&topo).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn the_graph_does_not_depend_on_input_order(topo in arb_topo(30), seed in any::<u64>()) {
        let (mut nodes, mut links) = graph_input(&topo);
        let graph = Graph::new(nodes.clone(), links.clone());
        shuffle(&mut nodes, seed);
        shuffle(&mut links, seed.rotate_left(17));
        for l in links.iter_mut().step_by(2) {
            std::mem::swap(&mut l.a, &mut l.b);
        }
        prop_assert_eq!(&Graph::new(nodes, links), &graph);
    }
}

// ------------------------------------------------------------ desire level

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn config(routing: &str, max_hops: Option<usize>) -> PropagatorConfig {
    let hops = max_hops.map_or("unlimited".to_owned(), |m| m.to_string());
    let vars = tags(&[
        ("LBGP_REGIONS", "eu-west-1"),
        ("LBGP_TABLE", "lbgp"),
        ("LBGP_MESH", "prod"),
        ("LBGP_ROUTING", routing),
        ("LBGP_MAX_HOPS", &hops),
        ("LBGP_TGW_ROUTE_QUOTA", "100000"),
    ]);
    Env::from_fn(|k| vars.get(k).cloned()).propagator().unwrap()
}

fn tref(region: &Region, id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region.clone(),
        kind: TableKind::TransitGateway,
        id: id.to_owned(),
    }
}

/// The mesh view of `topo`: one region per TGW, each peering listed in both
/// regions with that side's association.
fn mesh_view(topo: &Topo) -> MeshView {
    let mut regions: Vec<RegionView> = (0..topo.n())
        .map(|i| {
            let region = topo.region(i);
            let id = topo.id(i);
            let vpc = Vpc {
                id: format!("vpc-{i:03}"),
                cidrs: vec![Topo::cidr(i)],
            };
            let attachment = format!("tgw-attach-v{i:03}");
            let mut tables = vec![TgwRouteTable {
                id: Topo::default_table(i),
                transit_gateway_id: id.clone(),
                default_association: true,
                tags: BTreeMap::new(),
            }];
            if topo.own_table[i] {
                tables.push(TgwRouteTable {
                    id: topo.peering_table(i),
                    transit_gateway_id: id.clone(),
                    default_association: false,
                    tags: BTreeMap::new(),
                });
            }
            let mut tgw_tags = tags(&[(TAG_MESH, "prod")]);
            if topo.leaves[i] {
                tgw_tags.insert(TAG_TRANSIT.to_owned(), "false".to_owned());
            }
            RegionView {
                region: region.clone(),
                transit_gateways: vec![TransitGateway {
                    id: id.clone(),
                    region: region.clone(),
                    state: GatewayState::Available,
                    default_association_route_table: Some(Topo::default_table(i)),
                    tags: tgw_tags,
                }],
                attachments: vec![VpcAttachment {
                    id: attachment.clone(),
                    transit_gateway_id: id.clone(),
                    vpc_id: vpc.id.clone(),
                    state: AttachmentState::Available,
                    ipv6_support: false,
                    vpc_owner: None,
                }],
                routes: vec![TgwRoute {
                    route: Route {
                        key: RouteKey {
                            table: tref(&region, &Topo::default_table(i)),
                            destination: Topo::cidr(i),
                        },
                        target: RouteTarget::TransitGatewayAttachment(attachment.clone()),
                        state: RouteState::Active,
                        origin: RouteOrigin::Propagated,
                    },
                    attachments: vec![TgwRouteAttachment {
                        attachment_id: attachment,
                        resource_type: AttachmentResource::Vpc,
                    }],
                }],
                vpcs: vec![vpc],
                route_tables: tables,
                peerings: Vec::new(),
            }
        })
        .collect();
    for l in 0..topo.links.len() {
        let (a, b, _, _) = topo.links[l];
        if a == b {
            continue;
        }
        let end = |i: usize| PeeringEnd {
            transit_gateway_id: topo.id(i),
            region: Some(topo.region(i)),
        };
        for side in [a, b] {
            regions[side].peerings.push(PeeringAttachment {
                id: topo.attachment(l),
                region: topo.region(side),
                requester: end(a),
                accepter: end(b),
                state: topo.state(l),
                route_table: Some(topo.peering_table(side)),
            });
        }
    }
    MeshView {
        regions,
        unreadable: Vec::new(),
    }
}

/// Applies `plan` to `view` as AWS would (new routes over peerings) and
/// returns the view read again, with the ledger after.
fn apply(
    view: &MeshView,
    desire_actual: &[Route],
    ledger: &OwnershipLedger,
    plan: &Plan,
) -> (MeshView, OwnershipLedger) {
    let (routes, ledger) = simulate_apply(desire_actual, ledger, plan);
    let mut kinds: BTreeMap<String, AttachmentResource> = BTreeMap::new();
    for rv in &view.regions {
        for p in &rv.peerings {
            kinds.insert(p.id.clone(), AttachmentResource::Peering);
        }
        for a in &rv.attachments {
            kinds.insert(a.id.clone(), AttachmentResource::Vpc);
        }
    }
    let mut after = view.clone();
    for rv in &mut after.regions {
        rv.routes = routes
            .iter()
            .filter(|r| r.key.table.region == rv.region)
            .map(|r| TgwRoute {
                route: r.clone(),
                attachments: match &r.target {
                    RouteTarget::TransitGatewayAttachment(id) => vec![TgwRouteAttachment {
                        attachment_id: id.clone(),
                        resource_type: kinds.get(id).cloned().unwrap_or(AttachmentResource::Peering),
                    }],
                    _ => Vec::new(),
                },
            })
            .collect();
    }
    (after, ledger)
}

/// The installed routes: table id → destination → attachment.
fn installed(desired: &[lbgp_core::DesiredRoute]) -> BTreeMap<String, BTreeMap<Cidr, String>> {
    let mut out: BTreeMap<String, BTreeMap<Cidr, String>> = BTreeMap::new();
    for d in desired {
        out.entry(d.key.table.id.clone())
            .or_default()
            .insert(d.key.destination, d.target.id().to_owned());
    }
    out
}

/// Follows every prefix from every TGW as AWS forwards it, and checks
/// every installed route against the reference distances.
fn check_forwarding(topo: &Topo, desired: &[lbgp_core::DesiredRoute]) -> Result<(), String> {
    let tables = installed(desired);
    let ends: BTreeMap<String, (usize, usize)> = (0..topo.links.len())
        .map(|l| (topo.attachment(l), (topo.links[l].0, topo.links[l].1)))
        .collect();
    let far = |at: usize, attachment: &str| -> Result<usize, String> {
        let (a, b) = ends
            .get(attachment)
            .ok_or(format!("route to unknown {attachment}"))?;
        match (*a == at, *b == at) {
            (true, _) => Ok(*b),
            (_, true) => Ok(*a),
            _ => Err(format!("{attachment} is not a peering of {}", topo.id(at))),
        }
    };
    let owner: BTreeMap<String, usize> = (0..topo.n())
        .flat_map(|i| [(Topo::default_table(i), i), (topo.peering_table(i), i)])
        .collect();
    let refs: Vec<Vec<Option<usize>>> = (0..topo.n()).map(|o| reference(topo, o)).collect();
    // Every route: toward a closer TGW; only where the origin is reachable;
    // in a leaf's own peering table, none.
    for (table, routes) in &tables {
        let at = owner[table];
        ensure!(
            !(topo.leaves[at] && topo.own_table[at] && *table == topo.peering_table(at)),
            "leaf {} carries transit: routes in its peering table {table}",
            topo.id(at)
        );
        for (destination, attachment) in routes {
            let o = (0..topo.n()).find(|o| Topo::cidr(*o) == *destination).unwrap();
            let here = refs[o][at].ok_or(format!("{table} has {destination} but cannot reach its origin"))?;
            let next = far(at, attachment)?;
            ensure!(
                refs[o][next] == Some(here - 1),
                "{table} {destination} via {attachment}: the far end is not closer to the origin"
            );
        }
    }
    for o in 0..topo.n() {
        let p = Topo::cidr(o);
        for x in (0..topo.n()).filter(|x| *x != o) {
            let route = tables.get(&Topo::default_table(x)).and_then(|t| t.get(&p));
            let Some(d) = refs[o][x] else {
                ensure!(route.is_none(), "{} has a route to unreachable {p}", topo.id(x));
                continue;
            };
            // Hop by hop: each transit TGW routes by the table associated
            // with the attachment the packet arrived on.
            let mut at = x;
            let mut table = Topo::default_table(x);
            let mut seen = BTreeSet::from([x]);
            for step in 0..d {
                let attachment = tables.get(&table).and_then(|t| t.get(&p)).ok_or(format!(
                    "{p} from {}: no route in {table} at step {step}",
                    topo.id(x)
                ))?;
                let next = far(at, attachment)?;
                ensure!(
                    seen.insert(next),
                    "{p} from {}: loop at {}",
                    topo.id(x),
                    topo.id(next)
                );
                at = next;
                table = topo.peering_table(at);
            }
            ensure!(
                at == o,
                "{p} from {}: {d} hops end at {}",
                topo.id(x),
                topo.id(at)
            );
        }
    }
    Ok(())
}

fn shuffled(mut view: MeshView, seed: u64) -> MeshView {
    shuffle(&mut view.regions, seed);
    for (n, r) in view.regions.iter_mut().enumerate() {
        let s = seed.wrapping_add(n as u64 * 7919);
        shuffle(&mut r.route_tables, s);
        shuffle(&mut r.routes, s.rotate_left(9));
        shuffle(&mut r.peerings, s.rotate_left(21));
    }
    view
}

fn check_mesh(topo: &Topo, seed: u64) -> Result<(), String> {
    let config = config("shortest-path", topo.max_hops);
    let view = mesh_view(topo);
    let ledger = OwnershipLedger::new();
    let mut desire = propagate::desire(view.clone(), &ledger, &config);
    ensure!(desire.errors.is_empty(), "errors: {:?}", desire.errors);
    check_forwarding(topo, &desire.desired)?;
    let plan = propagate::plan(&mut desire, &ledger, &config);
    ensure!(
        plan.changes
            .iter()
            .all(|c| c.reason.to_string().contains("; path te-")),
        "a change without its path"
    );
    // Input order changes nothing.
    let mut again = propagate::desire(shuffled(view.clone(), seed), &ledger, &config);
    let mut a = desire.desired.clone();
    let mut b = again.desired.clone();
    a.sort();
    b.sort();
    ensure!(a == b, "the desired routes depend on input order");
    ensure!(
        propagate::plan(&mut again, &ledger, &config) == plan,
        "the plan depends on input order"
    );
    // Applied, the next run has nothing to do.
    let (after, ledger) = apply(&view, &desire.actual, &ledger, &plan);
    let mut next = propagate::desire(after, &ledger, &config);
    let second = propagate::plan(&mut next, &ledger, &config);
    ensure!(second.changes.is_empty(), "not converged: {:#?}", second.changes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn installed_routes_forward_along_shortest_paths(topo in arb_topo(30), seed in any::<u64>()) {
        check_mesh(&topo, seed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn a_full_mesh_gives_exactly_directs_routes(n in 1..=12usize, parallel in prop::collection::vec(any::<bool>(), 66)) {
        let mut links = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                links.push((a, b, (a * 100 + b) as u16, 0));
                if parallel[links.len() % parallel.len()] {
                    links.push((b, a, (a * 100 + b + 50) as u16, 0));
                }
            }
        }
        let topo = Topo { ids: (0..n).rev().collect(), leaves: vec![false; n], own_table: vec![false; n], links, max_hops: None };
        let view = mesh_view(&topo);
        let ledger = OwnershipLedger::new();
        let mut shortest = propagate::desire(view.clone(), &ledger, &config("shortest-path", None));
        let mut direct = propagate::desire(view, &ledger, &config("direct", None));
        shortest.desired.sort();
        direct.desired.sort();
        prop_assert_eq!(&shortest.desired, &direct.desired);
        let p = propagate::plan(&mut shortest, &ledger, &config("shortest-path", None));
        let q = propagate::plan(&mut direct, &ledger, &config("direct", None));
        let writes = |p: &Plan| p.changes.iter().map(|c| (c.key.clone(), c.op, c.target.clone())).collect::<Vec<_>>();
        prop_assert_eq!(writes(&p), writes(&q));
    }
}

// Hand-built meshes and what the rules must do with them.
mod scenarios;
