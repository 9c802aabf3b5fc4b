//! tgw-route-propagator (L-BGP) with `LBGP_ROUTING=shortest-path` against
//! the emulator, one mesh TGW per region: hub-and-spoke (with a transit
//! table on the hub), a chain, a full mesh that loses a peering and gets a
//! new one, a ring with equal paths, a leaf (`lbgp:transit=false`); and the
//! switch between modes, both ways. After each step a second run makes zero
//! writes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use lbgp_tests::events::{cloudtrail, scheduled};
use lbgp_tests::fixtures::{
    TestEnv, accept_peering, attach, create_tgw, create_vpc, peer, tag, tgw_route_tables, tgw_static_routes,
};
use serde_json::{Value, json};
use tgw_route_propagator::{App, Propagator};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const C: &str = "ap-southeast-2";
const D: &str = "us-west-2";
const E: &str = "eu-central-1";

const SHORTEST: (&str, &str) = ("LBGP_ROUTING", "shortest-path");

#[derive(Debug, Clone)]
struct Site {
    tgw: String,
    /// The TGW's default association route table (its target table).
    rtb: String,
    /// Its one VPC's CIDR.
    cidr: String,
}

#[derive(Debug)]
struct Mesh {
    regions: Vec<&'static str>,
    sites: BTreeMap<&'static str, Site>,
    /// (region a, region b) → peering attachment id.
    peerings: BTreeMap<(&'static str, &'static str), String>,
}

impl Mesh {
    fn site(&self, r: &str) -> &Site {
        &self.sites[r]
    }

    fn peering(&self, a: &str, b: &str) -> String {
        self.peerings
            .iter()
            .find(|((x, y), _)| (*x == a && *y == b) || (*x == b && *y == a))
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no peering {a} – {b}"))
    }

    /// Of two regions, the one whose TGW id is smaller: the documented
    /// tie-break between two equal paths.
    fn smaller(&self, x: &'static str, y: &'static str) -> &'static str {
        if self.site(x).tgw < self.site(y).tgw { x } else { y }
    }
}

/// One mesh TGW per region with one attached VPC (`10.<n+1>.0.0/16`), and
/// an accepted peering per link.
async fn build(env: &TestEnv, regions: &[&'static str], links: &[(&'static str, &'static str)]) -> Mesh {
    let mut sites = BTreeMap::new();
    for (n, r) in regions.iter().enumerate() {
        let ec2 = env.ec2(r);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let tables = tgw_route_tables(&ec2, &tgw).await.unwrap();
        assert_eq!(tables.len(), 1, "expected the default route table: {tables:?}");
        let cidr = format!("10.{}.0.0/16", n + 1);
        let (vpc, subnet, _) = create_vpc(&ec2, &cidr).await.unwrap();
        attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
        sites.insert(
            *r,
            Site {
                tgw,
                rtb: tables[0].clone(),
                cidr,
            },
        );
    }
    let mut peerings = BTreeMap::new();
    for (x, y) in links {
        let id = peer(env, (x, &sites[x].tgw), (y, &sites[y].tgw), true)
            .await
            .unwrap();
        peerings.insert((*x, *y), id);
    }
    Mesh {
        regions: regions.to_vec(),
        sites,
        peerings,
    }
}

fn app(env: &TestEnv, mesh: &Mesh, extra: &[(&str, &str)]) -> App {
    let regions = mesh.regions.join(",");
    let mut vars = vec![("LBGP_REGIONS", regions.as_str())];
    vars.extend_from_slice(extra);
    let config = env.config(&vars).propagator().unwrap();
    App::new(
        Propagator {
            config: config.clone(),
        },
        env.aws(&config.common).unwrap(),
    )
}

async fn invoke(app: &App, payload: Value) -> Value {
    let response = serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap();
    assert_eq!(response["errors"], json!([]), "{response:#}");
    response
}

fn changes(v: &Value) -> Vec<Value> {
    v["changes"].as_array().cloned().unwrap_or_default()
}

/// The change to `destination` in `region`'s table `table`.
fn change<'a>(v: &'a [Value], region: &str, table: &str, destination: &str) -> &'a Value {
    v.iter()
        .find(|c| c["region"] == region && c["route_table_id"] == table && c["destination"] == destination)
        .unwrap_or_else(|| panic!("no change to {destination} in {region} {table}: {v:#?}"))
}

fn all_ops(v: &[Value], op: &str) -> bool {
    v.iter().all(|c| c["op"] == op)
}

/// What every site's target table must hold: region → destination →
/// attachment. `routes` lists (in region, destination region, via peering).
type Want = BTreeMap<&'static str, BTreeMap<String, String>>;

fn want(mesh: &Mesh, routes: &[(&'static str, &'static str, (&'static str, &'static str))]) -> Want {
    let mut out: Want = mesh.regions.iter().map(|r| (*r, BTreeMap::new())).collect();
    for (at, to, (x, y)) in routes {
        let previous = out
            .get_mut(at)
            .unwrap()
            .insert(mesh.site(to).cidr.clone(), mesh.peering(x, y));
        assert!(previous.is_none(), "two routes to {to} in {at}");
    }
    out
}

async fn assert_tables(env: &TestEnv, mesh: &Mesh, want: &Want) {
    for (r, routes) in want {
        let s = mesh.site(r);
        let got = tgw_static_routes(&env.ec2(r), &s.rtb).await.unwrap();
        assert_eq!(&got, routes, "{r} {}", s.rtb);
    }
}

/// A run that has nothing to do: no change, no EC2 write, no ledger write.
async fn assert_quiet(env: &TestEnv, app: &App) {
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(app, scheduled()).await;
    assert_eq!(changes(&again), Vec::<Value>::new(), "{again:#}");
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty(), "{:?}", calls.ec2_mutating());
    let ledger_writes: u64 = ["PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"]
        .iter()
        .map(|a| calls.count("dynamodb", a))
        .sum();
    assert_eq!(ledger_writes, 0);
    // Time passes before the next step: EC2's read lag, which the runs
    // wait out after their own writes, is over.
    env.clock.advance(lbgp_core::desire::SETTLE_SECS + 1);
}

/// The route table the `region` side of a peering is associated with
/// becomes `table` (AWS: disassociate, then associate).
async fn reassociate(env: &TestEnv, region: &str, attachment: &str, from: &str, to: &str) {
    let ec2 = env.ec2(region);
    ec2.disassociate_transit_gateway_route_table()
        .transit_gateway_route_table_id(from)
        .transit_gateway_attachment_id(attachment)
        .send()
        .await
        .unwrap();
    ec2.associate_transit_gateway_route_table()
        .transit_gateway_route_table_id(to)
        .transit_gateway_attachment_id(attachment)
        .send()
        .await
        .unwrap();
}

async fn delete_peering(env: &TestEnv, region: &str, attachment: &str) {
    env.ec2(region)
        .delete_transit_gateway_peering_attachment()
        .transit_gateway_attachment_id(attachment)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn hub_and_spoke_spokes_reach_each_other_through_the_hub_and_switching_modes_converges() {
    let regions = [A, B, C, D];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, B), (A, C), (A, D)]).await;
    // The hub's side of its peerings is associated with a transit table of
    // its own: what arrives from one spoke is routed by that table.
    let hub = env.ec2(A);
    let transit = hub
        .create_transit_gateway_route_table()
        .transit_gateway_id(&mesh.site(A).tgw)
        .send()
        .await
        .unwrap()
        .transit_gateway_route_table()
        .and_then(|t| t.transit_gateway_route_table_id())
        .unwrap()
        .to_owned();
    for s in [B, C, D] {
        reassociate(&env, A, &mesh.peering(A, s), &mesh.site(A).rtb, &transit).await;
    }
    let transit_routes = || async { tgw_static_routes(&hub, &transit).await.unwrap() };

    // The default, `direct`: spokes learn the hub only.
    let direct = app(&env, &mesh, &[]);
    let first = invoke(&direct, scheduled()).await;
    assert_eq!(changes(&first).len(), 6, "{first:#}");
    let direct_tables = want(
        &mesh,
        &[
            (A, B, (A, B)),
            (A, C, (A, C)),
            (A, D, (A, D)),
            (B, A, (A, B)),
            (C, A, (A, C)),
            (D, A, (A, D)),
        ],
    );
    assert_tables(&env, &mesh, &direct_tables).await;
    assert!(transit_routes().await.is_empty());
    assert_quiet(&env, &direct).await;

    // Opting in: the dry run shows exactly what opens, each route with its
    // path, and writes nothing.
    let shortest = app(&env, &mesh, &[SHORTEST]);
    env.emulator.reset_calls().await.unwrap();
    let dry = invoke(&shortest, json!({"dry_run": true})).await;
    assert!(env.emulator.calls().await.unwrap().mutating().is_empty());
    let opened = changes(&dry);
    assert_eq!(opened.len(), 9, "{dry:#}");
    assert!(all_ops(&opened, "create"), "{dry:#}");
    for s in [B, C, D] {
        for t in [B, C, D].into_iter().filter(|t| *t != s) {
            let c = change(&opened, s, &mesh.site(s).rtb, &mesh.site(t).cidr);
            assert_eq!(c["target"], json!(mesh.peering(A, s)));
            let reason = c["reason"].as_str().unwrap();
            assert!(
                reason.ends_with(&format!("; path {s} → {A} → {t} (2 hops)")),
                "{reason}"
            );
        }
        let c = change(&opened, A, &transit, &mesh.site(s).cidr);
        assert_eq!(c["target"], json!(mesh.peering(A, s)));
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .ends_with(&format!("; path {A} → {s} (1 hop)"))
        );
    }
    let applied = invoke(&shortest, scheduled()).await;
    assert_eq!(changes(&applied), opened);
    let spokes = want(
        &mesh,
        &[
            (A, B, (A, B)),
            (A, C, (A, C)),
            (A, D, (A, D)),
            (B, A, (A, B)),
            (B, C, (A, B)),
            (B, D, (A, B)),
            (C, A, (A, C)),
            (C, B, (A, C)),
            (C, D, (A, C)),
            (D, A, (A, D)),
            (D, B, (A, D)),
            (D, C, (A, D)),
        ],
    );
    assert_tables(&env, &mesh, &spokes).await;
    assert_eq!(transit_routes().await, spokes[A]);
    assert_quiet(&env, &shortest).await;

    // Opting out: the dry run shows exactly what closes.
    let dry = invoke(&direct, json!({"dry_run": true})).await;
    let closed = changes(&dry);
    assert_eq!(closed.len(), 9, "{dry:#}");
    assert!(all_ops(&closed, "delete"), "{dry:#}");
    for c in &opened {
        let d = change(
            &closed,
            c["region"].as_str().unwrap(),
            c["route_table_id"].as_str().unwrap(),
            c["destination"].as_str().unwrap(),
        );
        assert_eq!(d["target"], c["target"]);
    }
    let applied = invoke(&direct, scheduled()).await;
    assert_eq!(changes(&applied), closed);
    assert_tables(&env, &mesh, &direct_tables).await;
    assert!(transit_routes().await.is_empty());
    assert_quiet(&env, &direct).await;
}

#[tokio::test]
async fn a_chain_of_four_learns_every_prefix_hop_by_hop_within_max_hops_and_a_cut_off_region_is_withdrawn() {
    let regions = [A, B, C, D];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, B), (B, C), (C, D)]).await;
    let shortest = app(&env, &mesh, &[SHORTEST]);
    let first = invoke(&shortest, scheduled()).await;
    let c = changes(&first);
    assert_eq!(c.len(), 12, "{first:#}");
    assert!(all_ops(&c, "create"));
    let far = change(&c, A, &mesh.site(A).rtb, &mesh.site(D).cidr);
    assert!(
        far["reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!("; path {A} → {B} → {C} → {D} (3 hops)")),
        "{far:#}"
    );
    let chain = [
        (A, B, (A, B)),
        (A, C, (A, B)),
        (A, D, (A, B)),
        (B, A, (A, B)),
        (B, C, (B, C)),
        (B, D, (B, C)),
        (C, A, (B, C)),
        (C, B, (B, C)),
        (C, D, (C, D)),
        (D, A, (C, D)),
        (D, B, (C, D)),
        (D, C, (C, D)),
    ];
    assert_tables(&env, &mesh, &want(&mesh, &chain)).await;
    assert_quiet(&env, &shortest).await;

    // LBGP_MAX_HOPS=2: A and D, three hops apart, forget each other.
    let near = app(&env, &mesh, &[SHORTEST, ("LBGP_MAX_HOPS", "2")]);
    let r = invoke(&near, scheduled()).await;
    let c = changes(&r);
    assert_eq!(c.len(), 2, "{r:#}");
    assert!(all_ops(&c, "delete"));
    change(&c, A, &mesh.site(A).rtb, &mesh.site(D).cidr);
    change(&c, D, &mesh.site(D).rtb, &mesh.site(A).cidr);
    let within: Vec<_> = chain
        .iter()
        .copied()
        .filter(|(at, to, _)| !matches!((*at, *to), (A, D) | (D, A)))
        .collect();
    assert_tables(&env, &mesh, &want(&mesh, &within)).await;
    assert_quiet(&env, &near).await;
    let r = invoke(&shortest, scheduled()).await;
    assert_eq!(changes(&r).len(), 2, "{r:#}");
    assert!(all_ops(&changes(&r), "create"));
    assert_quiet(&env, &shortest).await;

    // C – D deleted: D is cut off, its prefix withdrawn everywhere and
    // everything withdrawn from it, in one run.
    delete_peering(&env, C, &mesh.peering(C, D)).await;
    let r = invoke(
        &shortest,
        cloudtrail("DeleteTransitGatewayPeeringAttachment", C, json!({})),
    )
    .await;
    let c = changes(&r);
    assert_eq!(c.len(), 6, "{r:#}");
    assert!(all_ops(&c, "delete"), "{r:#}");
    let left: Vec<_> = chain
        .iter()
        .copied()
        .filter(|(at, to, _)| *at != D && *to != D)
        .collect();
    assert_tables(&env, &mesh, &want(&mesh, &left)).await;
    assert_quiet(&env, &shortest).await;
}

#[tokio::test]
async fn a_full_mesh_of_four_reroutes_a_deleted_peering_through_a_third_region_and_back() {
    let regions = [A, B, C, D];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, B), (A, C), (A, D), (B, C), (B, D), (C, D)]).await;
    // In a full mesh, shortest paths are the direct peers: the same writes.
    let direct = app(&env, &mesh, &[]);
    let shortest = app(&env, &mesh, &[SHORTEST]);
    let writes = |v: &Value| -> Vec<(Value, Value, Value, Value, Value)> {
        changes(v)
            .iter()
            .map(|c| {
                (
                    c["op"].clone(),
                    c["region"].clone(),
                    c["route_table_id"].clone(),
                    c["destination"].clone(),
                    c["target"].clone(),
                )
            })
            .collect()
    };
    let as_direct = invoke(&direct, json!({"dry_run": true})).await;
    let first = invoke(&shortest, scheduled()).await;
    assert_eq!(changes(&first).len(), 12, "{first:#}");
    assert_eq!(writes(&first), writes(&as_direct));
    let mut pairs = Vec::new();
    for x in regions {
        for y in regions.into_iter().filter(|y| *y != x) {
            pairs.push((x, y));
        }
    }
    let full: Vec<_> = pairs.iter().map(|(x, y)| (*x, *y, (*x, *y))).collect();
    assert_tables(&env, &mesh, &want(&mesh, &full)).await;
    assert_quiet(&env, &shortest).await;

    // A – B deleted: both directions move through the third region with the
    // smaller TGW id, by replace (no withdraw-then-add gap), in one run.
    let ab = mesh.peering(A, B);
    let via = mesh.smaller(C, D);
    delete_peering(&env, A, &ab).await;
    env.emulator.reset_calls().await.unwrap();
    let r = invoke(
        &shortest,
        cloudtrail("DeleteTransitGatewayPeeringAttachment", A, json!({})),
    )
    .await;
    let c = changes(&r);
    assert_eq!(c.len(), 2, "{r:#}");
    assert!(all_ops(&c, "replace"), "{r:#}");
    let a_to_b = change(&c, A, &mesh.site(A).rtb, &mesh.site(B).cidr);
    assert_eq!(a_to_b["target"], json!(mesh.peering(A, via)));
    assert_eq!(a_to_b["previous_target"], json!(ab));
    assert!(
        a_to_b["reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!("; path {A} → {via} → {B} (2 hops)")),
        "{a_to_b:#}"
    );
    let b_to_a = change(&c, B, &mesh.site(B).rtb, &mesh.site(A).cidr);
    assert_eq!(b_to_a["target"], json!(mesh.peering(B, via)));
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("ReplaceTransitGatewayRoute".to_owned(), 2)])
    );
    let rerouted: Vec<_> = full
        .iter()
        .map(|(x, y, link)| match (*x, *y) {
            (A, B) => (A, B, (A, via)),
            (B, A) => (B, A, (B, via)),
            _ => (*x, *y, *link),
        })
        .collect();
    assert_tables(&env, &mesh, &want(&mesh, &rerouted)).await;
    assert_quiet(&env, &shortest).await;

    // A new peering between A and B: unused while it awaits acceptance, the
    // shortest path again once accepted.
    let new = peer(&env, (A, &mesh.site(A).tgw), (B, &mesh.site(B).tgw), false)
        .await
        .unwrap();
    assert_quiet(&env, &shortest).await;
    accept_peering(&env, B, &new).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    let r = invoke(
        &shortest,
        cloudtrail("AcceptTransitGatewayPeeringAttachment", B, json!({})),
    )
    .await;
    let c = changes(&r);
    assert_eq!(c.len(), 2, "{r:#}");
    assert!(
        c.iter()
            .all(|c| c["op"] == "replace" && c["target"] == json!(new)),
        "{r:#}"
    );
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("ReplaceTransitGatewayRoute".to_owned(), 2)])
    );
    let mut back = want(&mesh, &full);
    back.get_mut(A)
        .unwrap()
        .insert(mesh.site(B).cidr.clone(), new.clone());
    back.get_mut(B)
        .unwrap()
        .insert(mesh.site(A).cidr.clone(), new.clone());
    assert_tables(&env, &mesh, &back).await;
    assert_quiet(&env, &shortest).await;
}

#[tokio::test]
async fn a_ring_of_five_with_equal_paths_chooses_the_same_way_on_every_run() {
    // A ring of five (an odd cycle has no equal paths by itself) and the
    // chord A – C, which gives four pairs two equal two-hop paths:
    // A → D (via C or E), C → E (via A or D), D → A (via C or E),
    // E → C (via A or D).
    let regions = [A, B, C, D, E];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, B), (B, C), (C, D), (D, E), (E, A), (A, C)]).await;
    let ce = mesh.smaller(C, E);
    let ad = mesh.smaller(A, D);
    let routes = [
        (A, B, (A, B)),
        (A, C, (A, C)),
        (A, D, (A, ce)),
        (A, E, (A, E)),
        (B, A, (A, B)),
        (B, C, (B, C)),
        (B, D, (B, C)),
        (B, E, (A, B)),
        (C, A, (A, C)),
        (C, B, (B, C)),
        (C, D, (C, D)),
        (C, E, (C, ad)),
        (D, A, (D, ce)),
        (D, B, (C, D)),
        (D, C, (C, D)),
        (D, E, (D, E)),
        (E, A, (A, E)),
        (E, B, (A, E)),
        (E, C, (E, ad)),
        (E, D, (D, E)),
    ];
    let shortest = app(&env, &mesh, &[SHORTEST]);
    let first = invoke(&shortest, scheduled()).await;
    let c = changes(&first);
    assert_eq!(c.len(), 20, "{first:#}");
    let tie = change(&c, A, &mesh.site(A).rtb, &mesh.site(D).cidr);
    assert!(
        tie["reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!("; path {A} → {ce} → {D} (2 hops)")),
        "{tie:#}"
    );
    assert_tables(&env, &mesh, &want(&mesh, &routes)).await;
    // The same choice on every run, by every new process: nothing to do.
    for _ in 0..3 {
        assert_quiet(&env, &app(&env, &mesh, &[SHORTEST])).await;
    }
    assert_tables(&env, &mesh, &want(&mesh, &routes)).await;
}

#[tokio::test]
async fn a_leaf_tagged_transit_false_carries_no_transit() {
    // A and B joined through two middles, C and D; the middle the tie-break
    // would choose is tagged lbgp:transit=false.
    let regions = [A, B, C, D];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, C), (C, B), (A, D), (D, B)]).await;
    let leaf = mesh.smaller(C, D);
    let other = if leaf == C { D } else { C };
    tag(&env.ec2(leaf), &mesh.site(leaf).tgw, "lbgp:transit", "false")
        .await
        .unwrap();
    let ab = mesh.smaller(A, B);
    let shortest = app(&env, &mesh, &[SHORTEST]);
    let first = invoke(&shortest, scheduled()).await;
    assert_eq!(changes(&first).len(), 12, "{first:#}");
    let both = [
        (A, B, (A, other)),
        (A, C, (A, C)),
        (A, D, (A, D)),
        (B, A, (B, other)),
        (B, C, (B, C)),
        (B, D, (B, D)),
        // The leaf learns everything; the middles reach each other over A
        // or B (both transit), the smaller id.
        (leaf, A, (leaf, A)),
        (leaf, B, (leaf, B)),
        (leaf, other, (leaf, ab)),
        (other, A, (other, A)),
        (other, B, (other, B)),
        (other, leaf, (other, ab)),
    ];
    assert_tables(&env, &mesh, &want(&mesh, &both)).await;
    assert_quiet(&env, &shortest).await;

    // A – other deleted: A and B are two hops apart only through the leaf,
    // and the other middle only through it from A: withdrawn, never routed
    // through the leaf.
    delete_peering(&env, A, &mesh.peering(A, other)).await;
    let r = invoke(
        &shortest,
        cloudtrail("DeleteTransitGatewayPeeringAttachment", A, json!({})),
    )
    .await;
    let left = [
        (A, leaf, (A, leaf)),
        (B, leaf, (B, leaf)),
        (B, other, (B, other)),
        (leaf, A, (leaf, A)),
        (leaf, B, (leaf, B)),
        (leaf, other, (leaf, B)),
        (other, B, (other, B)),
        (other, leaf, (other, B)),
    ];
    // Withdrawn: A → B, A → other, B → A, other → A. The middles' routes
    // to each other that went over A move to B.
    let c = changes(&r);
    let deletes = c.iter().filter(|c| c["op"] == "delete").count();
    let replaces = c.iter().filter(|c| c["op"] == "replace").count();
    assert_eq!((deletes, replaces), (4, if ab == A { 2 } else { 0 }), "{r:#}");
    assert_eq!(c.len(), deletes + replaces);
    assert_tables(&env, &mesh, &want(&mesh, &left)).await;
    assert_quiet(&env, &shortest).await;
}

#[tokio::test]
async fn direct_mode_withdraws_its_routes_over_a_deleted_peering_instead_of_forgetting_them() {
    let regions = [A, B, C];
    let env = TestEnv::new(&regions).await.unwrap();
    let mesh = build(&env, &regions, &[(A, B), (A, C), (B, C)]).await;
    let direct = app(&env, &mesh, &[]);
    let first = invoke(&direct, scheduled()).await;
    assert_eq!(changes(&first).len(), 6, "{first:#}");
    assert_quiet(&env, &direct).await;

    // A – B deleted: EC2 shows the two routes over it as blackholes with no
    // attachment. They are ours (the ledger says so): withdrawn, since
    // `direct` re-exports nothing, and the ledger lets go of them.
    let ab = mesh.peering(A, B);
    delete_peering(&env, A, &ab).await;
    let r = invoke(
        &direct,
        cloudtrail("DeleteTransitGatewayPeeringAttachment", A, json!({})),
    )
    .await;
    let c = changes(&r);
    assert_eq!(c.len(), 2, "{r:#}");
    assert!(all_ops(&c, "delete"), "{r:#}");
    change(&c, A, &mesh.site(A).rtb, &mesh.site(B).cidr);
    change(&c, B, &mesh.site(B).rtb, &mesh.site(A).cidr);
    let rest = want(
        &mesh,
        &[(A, C, (A, C)), (C, A, (A, C)), (B, C, (B, C)), (C, B, (B, C))],
    );
    assert_tables(&env, &mesh, &rest).await;
    assert_quiet(&env, &direct).await;
}
