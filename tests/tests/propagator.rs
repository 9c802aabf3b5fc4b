//! tgw-route-propagator (L-BGP) against the emulator: three regions in a
//! full mesh plus a fourth peered to only one of them.
//!
//! Every scenario runs in both route styles (`<scenario>::routes`,
//! `<scenario>::prefix_list`), asserting the same effective routing of
//! each TGW route table (static routes plus the entries of its prefix-list
//! references, `lbgp_tests::styles`). In `prefix-list` style every table
//! gets one list and one reference per peering it learns over, so each
//! scenario exercises lists; where the writes differ each style's exact
//! count is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use futures::StreamExt;
use lbgp_tests::events::{cloudtrail, scheduled};
use lbgp_tests::fixtures::{
    TestEnv, accept_peering, attach, create_tgw, create_vpc, peer, tag, tgw_route_tables, tgw_static_routes,
    untag,
};
use lbgp_tests::runtime_api::{LocalLambda, Outcome, dev_binary};
use lbgp_tests::styles::{Style, assert_plan, effective_tgw_routes, list_plan, list_steps, tgw_references};
use serde_json::{Value, json};
use tgw_route_propagator::{App, Propagator};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const C: &str = "ap-southeast-2";
const D: &str = "us-west-2";

#[derive(Debug, Clone)]
struct Site {
    region: &'static str,
    tgw: String,
    /// The TGW's default association route table.
    rtb: String,
    /// (vpc, subnet, cidr)
    vpcs: Vec<(String, String, String)>,
}

#[derive(Debug)]
struct Mesh {
    sites: BTreeMap<&'static str, Site>,
    /// (region a, region b) → peering attachment id
    peerings: BTreeMap<(&'static str, &'static str), String>,
}

impl Mesh {
    fn site(&self, r: &str) -> &Site {
        &self.sites[r]
    }
    fn peering(&self, a: &str, b: &str) -> &str {
        self.peerings
            .iter()
            .find(|((x, y), _)| (*x == a && *y == b) || (*x == b && *y == a))
            .map(|(_, id)| id.as_str())
            .unwrap()
    }
}

async fn site(env: &TestEnv, region: &'static str, n: usize) -> Site {
    let ec2 = env.ec2(region);
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let tables = tgw_route_tables(&ec2, &tgw).await.unwrap();
    assert_eq!(tables.len(), 1, "expected the default route table: {tables:?}");
    let mut vpcs = Vec::new();
    for j in 0..2 {
        let cidr = format!("10.{}.0.0/16", n * 10 + j);
        let (vpc, subnet, _) = create_vpc(&ec2, &cidr).await.unwrap();
        attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
        vpcs.push((vpc, subnet, cidr));
    }
    Site {
        region,
        tgw,
        rtb: tables[0].clone(),
        vpcs,
    }
}

/// A, B, C fully meshed; D peered with A only (accepted when `accept_d`).
async fn build(env: &TestEnv, accept_d: bool) -> Mesh {
    let mut sites = BTreeMap::new();
    for (n, r) in [A, B, C, D].into_iter().enumerate() {
        sites.insert(r, site(env, r, n + 1).await);
    }
    let mut peerings = BTreeMap::new();
    for (x, y) in [(A, B), (A, C), (B, C), (A, D)] {
        let accept = accept_d || y != D;
        let id = peer(env, (x, &sites[x].tgw), (y, &sites[y].tgw), accept)
            .await
            .unwrap();
        peerings.insert((x, y), id);
    }
    Mesh { sites, peerings }
}

fn app(env: &TestEnv, style: Style, extra: &[(&str, &str)]) -> App {
    let mut vars = vec![("LBGP_REGIONS", "us-east-1,eu-west-1,ap-southeast-2,us-west-2")];
    vars.extend_from_slice(&style.vars(extra));
    let config = env.config(&vars).propagator().unwrap();
    App::new(
        Propagator {
            config: config.clone(),
        },
        env.aws(&config.common).unwrap(),
    )
}

async fn invoke(app: &App, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

fn changes(v: &Value) -> Vec<Value> {
    v["changes"].as_array().cloned().unwrap_or_default()
}

/// What each region's table must hold: every direct peer's VPC CIDRs via
/// the peering attachment, and nothing learned second-hand.
fn expected(mesh: &Mesh, with_d: bool) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut links = vec![(A, B), (A, C), (B, C)];
    if with_d {
        links.push((A, D));
    }
    let mut out: BTreeMap<&'static str, BTreeMap<String, String>> = BTreeMap::new();
    for r in [A, B, C, D] {
        out.insert(r, BTreeMap::new());
    }
    for (x, y) in links {
        let p = mesh.peering(x, y).to_owned();
        for (from, to) in [(x, y), (y, x)] {
            for (_, _, cidr) in &mesh.site(to).vpcs {
                out.get_mut(from).unwrap().insert(cidr.clone(), p.clone());
            }
        }
    }
    out
}

/// Each table routes exactly `want` (static routes and references'
/// entries); in prefix-list style through one reference per peering and
/// no static route, in routes style through static routes only.
async fn assert_tables(
    env: &TestEnv,
    style: Style,
    mesh: &Mesh,
    want: &BTreeMap<&'static str, BTreeMap<String, String>>,
) {
    for (r, routes) in want {
        let s = mesh.site(r);
        let ec2 = env.ec2(r);
        let got = effective_tgw_routes(&ec2, &s.rtb).await.unwrap();
        assert_eq!(&got, routes, "{} {}", s.region, s.rtb);
        let refs = tgw_references(&ec2, &s.rtb).await.unwrap();
        let statics = tgw_static_routes(&ec2, &s.rtb).await.unwrap();
        let mut peers: Vec<&String> = routes.values().collect();
        peers.sort();
        peers.dedup();
        let mut referenced: Vec<&String> = refs.values().collect();
        referenced.sort();
        match style {
            Style::Routes => assert!(refs.is_empty(), "{r}: {refs:?}"),
            Style::PrefixList => {
                assert_eq!(referenced, peers, "{r}: one reference per peering: {refs:?}");
                assert!(statics.is_empty(), "{r}: {statics:?}");
            }
        }
    }
}

/// The first run over the full mesh: A 3 peers × 2, B and C 2 × 2, D 1 × 2
/// routes; or a list and a reference per table and peering (A 3, B and C
/// 2, D 1).
fn assert_full_plan(style: Style, response: &Value) {
    match style {
        Style::Routes => assert_plan(response, 16, &[]),
        Style::PrefixList => assert_plan(response, 0, &[("create_list", 8), ("create_reference", 8)]),
    }
}

/// The regions of a response's entry changes (prefix-list style), with
/// what each adds and removes.
fn entry_changes(response: &Value) -> Vec<(String, Value, Value)> {
    let mut out: Vec<(String, Value, Value)> = list_steps(response, "sync_entries")
        .into_iter()
        .map(|s| {
            (
                s["region"].as_str().unwrap().to_owned(),
                s["add"].clone(),
                s["remove"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

lbgp_tests::both_styles!(
    converges_without_reexport_and_then_stays_quiet,
    new_and_deleted_vpc_attachments_are_added_and_withdrawn_everywhere,
    pending_peering_is_ignored_until_accepted,
    identical_cidr_in_two_regions_is_a_conflict_installed_nowhere,
    a_hand_made_static_route_at_a_learned_prefix_is_reported_and_left_alone,
    a_table_of_more_than_1200_routes_is_read_completely,
    untagged_tgw_is_untouched_and_leaving_the_mesh_withdraws,
    summarize_and_quota,
    malformed_events_change_nothing_and_the_binary_serves,
    an_unreadable_region_withdraws_nothing,
);

async fn converges_without_reexport_and_then_stays_quiet(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let app = app(&env, style, &[]);
    env.emulator.reset_calls().await.unwrap();
    let dry = invoke(&app, json!({"dry_run": true})).await;
    assert_full_plan(style, &dry);
    assert!(env.emulator.calls().await.unwrap().mutating().is_empty());
    for c in changes(&dry) {
        assert!(c["route_table_id"].as_str().unwrap().starts_with("tgw-rtb-"));
        assert!(c["target"].as_str().unwrap().starts_with("tgw-attach-"));
    }
    for c in list_steps(&dry, "create_reference") {
        assert!(c["table"]["id"].as_str().unwrap().starts_with("tgw-rtb-"));
        assert!(c["attachment"].as_str().unwrap().starts_with("tgw-attach-"));
    }
    let applied = invoke(&app, scheduled()).await;
    assert_eq!(changes(&applied), changes(&dry));
    assert_eq!(list_plan(&applied), list_plan(&dry));
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;

    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_plan(&again, 0, &[]);
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty(), "{:?}", calls.ec2_mutating());
    let ledger_writes: u64 = ["PutItem", "DeleteItem", "TransactWriteItems"]
        .iter()
        .map(|a| calls.count("dynamodb", a))
        .sum();
    assert_eq!(ledger_writes, 0);
}

async fn new_and_deleted_vpc_attachments_are_added_and_withdrawn_everywhere(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let app = app(&env, style, &[]);
    invoke(&app, scheduled()).await;

    let ec2 = env.ec2(B);
    let (vpc, subnet, _) = create_vpc(&ec2, "10.99.0.0/16").await.unwrap();
    let attachment = attach(&ec2, &mesh.site(B).tgw, &vpc, &subnet).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    let response = invoke(
        &app,
        cloudtrail("CreateTransitGatewayVpcAttachment", B, json!({})),
    )
    .await;
    // Only B's direct peers learn it: a route each, or one entry added to
    // each one's list toward B.
    match style {
        Style::Routes => {
            assert_plan(&response, 2, &[]);
            let c = changes(&response);
            for change in &c {
                assert_eq!(change["op"], "create");
                assert_eq!(change["destination"], "10.99.0.0/16");
            }
            let mut regions: Vec<&str> = c.iter().map(|c| c["region"].as_str().unwrap()).collect();
            regions.sort();
            assert_eq!(regions, vec![C, A], "only B's direct peers learn it");
        }
        Style::PrefixList => {
            assert_plan(&response, 0, &[("sync_entries", 2)]);
            let added = (json!(["10.99.0.0/16"]), json!([]));
            assert_eq!(
                entry_changes(&response),
                vec![
                    (C.to_owned(), added.0.clone(), added.1.clone()),
                    (A.to_owned(), added.0, added.1)
                ]
            );
        }
    }
    let calls = env.emulator.calls().await.unwrap();
    let write = style.pick("CreateTransitGatewayRoute", "ModifyManagedPrefixList");
    assert_eq!(calls.ec2_mutating(), BTreeMap::from([(write.to_owned(), 2)]));
    let mut want = expected(&mesh, true);
    for r in [A, C] {
        want.get_mut(r)
            .unwrap()
            .insert("10.99.0.0/16".to_owned(), mesh.peering(r, B).to_owned());
    }
    assert_tables(&env, style, &mesh, &want).await;

    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .send()
        .await
        .unwrap();
    let response = invoke(
        &app,
        cloudtrail("DeleteTransitGatewayVpcAttachment", B, json!({})),
    )
    .await;
    match style {
        Style::Routes => {
            assert_plan(&response, 2, &[]);
            assert!(
                changes(&response)
                    .iter()
                    .all(|c| c["op"] == "delete" && c["destination"] == "10.99.0.0/16")
            );
        }
        Style::PrefixList => {
            assert_plan(&response, 0, &[("sync_entries", 2)]);
            let removed = (json!([]), json!(["10.99.0.0/16"]));
            assert_eq!(
                entry_changes(&response),
                vec![
                    (C.to_owned(), removed.0.clone(), removed.1.clone()),
                    (A.to_owned(), removed.0, removed.1)
                ]
            );
        }
    }
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
}

async fn pending_peering_is_ignored_until_accepted(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, false).await;
    let app = app(&env, style, &[]);
    let first = invoke(&app, scheduled()).await;
    match style {
        Style::Routes => assert_plan(&first, 12, &[]),
        Style::PrefixList => assert_plan(&first, 0, &[("create_list", 6), ("create_reference", 6)]),
    }
    assert_tables(&env, style, &mesh, &expected(&mesh, false)).await;

    accept_peering(&env, D, mesh.peering(A, D)).await.unwrap();
    let response = invoke(
        &app,
        cloudtrail("AcceptTransitGatewayPeeringAttachment", D, json!({})),
    )
    .await;
    match style {
        Style::Routes => assert_plan(&response, 4, &[]),
        Style::PrefixList => assert_plan(&response, 0, &[("create_list", 2), ("create_reference", 2)]),
    }
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
}

async fn identical_cidr_in_two_regions_is_a_conflict_installed_nowhere(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    // 10.77.0.0/16 in both B and C.
    for r in [B, C] {
        let ec2 = env.ec2(r);
        let (vpc, subnet, _) = create_vpc(&ec2, "10.77.0.0/16").await.unwrap();
        attach(&ec2, &mesh.site(r).tgw, &vpc, &subnet).await.unwrap();
    }
    let app = app(&env, style, &[]);
    let mut last = None;
    for _ in 0..3 {
        let response = invoke(&app, scheduled()).await;
        let conflicts: Vec<Value> = response["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["destination"] == "10.77.0.0/16")
            .cloned()
            .collect();
        assert_eq!(conflicts.len(), 1, "{response:#}");
        assert_eq!(conflicts[0]["held_by"].as_array().unwrap().len(), 2);
        assert!(
            changes(&response)
                .iter()
                .all(|c| c["destination"] != "10.77.0.0/16")
        );
        assert!(
            !response["prefix_lists"].to_string().contains("10.77.0.0/16"),
            "{response:#}"
        );
        if let Some(previous) = &last {
            assert_plan(&response, 0, &[]);
            assert_eq!(&response["conflicts"], previous);
        }
        last = Some(response["conflicts"].clone());
    }
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
}

/// An operator's static route in A's table at a prefix A learns from B,
/// toward the peering with C: in the routes style it holds the destination
/// we would install; in the prefix-list style AWS prefers it to the list's
/// entry. Either way it is reported as a conflict, run after run, and left
/// as the operator made it.
async fn a_hand_made_static_route_at_a_learned_prefix_is_reported_and_left_alone(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let (rtb, cidr) = (&mesh.site(A).rtb, mesh.site(B).vpcs[0].2.clone());
    let detour = mesh.peering(A, C).to_owned();
    let ec2 = env.ec2(A);
    ec2.create_transit_gateway_route()
        .transit_gateway_route_table_id(rtb)
        .destination_cidr_block(&cidr)
        .transit_gateway_attachment_id(&detour)
        .send()
        .await
        .unwrap();
    let app = app(&env, style, &[]);
    for run in 0..2 {
        let response = invoke(&app, scheduled()).await;
        let held: Vec<&Value> = response["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["destination"] == cidr.as_str() && c["route_table_id"] == rtb.as_str())
            .collect();
        assert_eq!(held.len(), 1, "run {run}: {response:#}");
        assert_eq!(held[0]["held_by"], json!([detour]), "{response:#}");
        assert!(
            changes(&response)
                .iter()
                .all(|c| c["destination"] != cidr.as_str() || c["route_table_id"] != rtb.as_str()),
            "{response:#}"
        );
        if run == 1 {
            assert_plan(&response, 0, &[]);
        }
        let statics = tgw_static_routes(&ec2, rtb).await.unwrap();
        assert_eq!(
            statics.get(&cidr),
            Some(&detour),
            "run {run}: the operator's route was touched"
        );
    }
}

async fn a_table_of_more_than_1200_routes_is_read_completely(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let app = app(&env, style, &[]);
    invoke(&app, scheduled()).await;
    // 1,250 blackhole routes in B's table: not exported, but they push our
    // routes past the 1,000-route answer of SearchTransitGatewayRoutes.
    let ec2 = env.ec2(B);
    let rtb = mesh.site(B).rtb.clone();
    futures::stream::iter(0..1250u32)
        .map(|i| {
            let ec2 = ec2.clone();
            let rtb = rtb.clone();
            async move {
                ec2.create_transit_gateway_route()
                    .transit_gateway_route_table_id(rtb)
                    .destination_cidr_block(format!("10.{}.{}.0/24", 200 + i / 250, i % 250))
                    .blackhole(true)
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let aws = env
        .aws(&env.config(&[("LBGP_REGIONS", B)]).common().unwrap())
        .unwrap();
    let routes = aws.ec2[&lbgp_core::Region::new(B).unwrap()]
        .tgw_routes(&rtb)
        .await
        .unwrap();
    let statics = routes
        .iter()
        .filter(|r| r.route.origin == lbgp_core::RouteOrigin::Static)
        .count();
    // B's 4 routes learned from A and C: static, or shown as propagated
    // routes of its two references (as are its own 2 VPCs').
    assert_eq!(statics, style.pick(1254, 1250), "incomplete read");
    assert_eq!(routes.len(), 1256, "incomplete read");

    env.emulator.reset_calls().await.unwrap();
    let response = invoke(&app, scheduled()).await;
    assert_plan(&response, 0, &[]);
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    // (B's table itself is past what the fixture reads in one page.)
    let mut want = expected(&mesh, true);
    want.remove(B);
    assert_tables(&env, style, &mesh, &want).await;
}

async fn untagged_tgw_is_untouched_and_leaving_the_mesh_withdraws(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    // An outsider TGW in B, peered with A: never written, never learned from.
    let ec2b = env.ec2(B);
    let outsider = create_tgw(&ec2b, None).await.unwrap();
    let outsider_rtb = tgw_route_tables(&ec2b, &outsider).await.unwrap()[0].clone();
    let (vpc, subnet, _) = create_vpc(&ec2b, "10.150.0.0/16").await.unwrap();
    attach(&ec2b, &outsider, &vpc, &subnet).await.unwrap();
    peer(&env, (A, &mesh.site(A).tgw), (B, &outsider), true)
        .await
        .unwrap();
    let app = app(&env, style, &[]);
    invoke(&app, scheduled()).await;
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
    assert!(
        effective_tgw_routes(&ec2b, &outsider_rtb)
            .await
            .unwrap()
            .is_empty()
    );

    // D leaves the mesh: its table is emptied of our routes, A forgets D
    // (2 routes each side, or each side's reference toward the other and
    // its list).
    untag(&env.ec2(D), &mesh.site(D).tgw, "lbgp:mesh").await.unwrap();
    let response = invoke(&app, cloudtrail("DeleteTags", D, json!({}))).await;
    match style {
        Style::Routes => assert_plan(&response, 4, &[]),
        Style::PrefixList => assert_plan(&response, 0, &[("delete_reference", 2), ("delete_list", 2)]),
    }
    let mut without_d = expected(&mesh, false);
    without_d.remove(D);
    assert_tables(&env, style, &mesh, &without_d).await;
    let d = effective_tgw_routes(&env.ec2(D), &mesh.site(D).rtb)
        .await
        .unwrap();
    assert!(d.is_empty(), "{d:?}");
    tag(&env.ec2(D), &mesh.site(D).tgw, "lbgp:mesh", "prod")
        .await
        .unwrap();
    let back = invoke(&app, cloudtrail("CreateTags", D, json!({}))).await;
    match style {
        Style::Routes => assert_plan(&back, 4, &[]),
        Style::PrefixList => assert_plan(&back, 0, &[("create_list", 2), ("create_reference", 2)]),
    }
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
    assert!(
        effective_tgw_routes(&ec2b, &outsider_rtb)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn summarize_and_quota(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    // Site n has 10.(n*10).0.0/16 and 10.(n*10+1).0.0/16: not siblings for
    // n*10 odd... A has 10.10/16 + 10.11/16 → 10.10.0.0/15.
    let summarizing = app(&env, style, &[("LBGP_SUMMARIZE", "true")]);
    let response = invoke(&summarizing, json!({"dry_run": true})).await;
    let to_b_from_a: Vec<String> = match style {
        Style::Routes => changes(&response)
            .iter()
            .filter(|c| c["region"] == B && c["target"] == json!(mesh.peering(A, B)))
            .map(|c| c["destination"].as_str().unwrap().to_owned())
            .collect(),
        // B's list of what it learns over the peering with A.
        Style::PrefixList => {
            let key = format!("{}/{}", mesh.site(B).rtb, mesh.peering(A, B));
            let lists = list_steps(&response, "create_list");
            let list = lists
                .iter()
                .find(|l| l["key"]["region"] == B && l["key"]["target"] == json!(key))
                .unwrap_or_else(|| panic!("no list {key}: {response:#}"));
            serde_json::from_value(list["entries"].clone()).unwrap()
        }
    };
    assert_eq!(to_b_from_a, vec!["10.10.0.0/15"]);

    let tight = app(&env, style, &[("LBGP_TGW_ROUTE_QUOTA", "7")]);
    let response = invoke(&tight, scheduled()).await;
    let errors = response["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["resource"] == json!(mesh.site(A).rtb)
            && e["error"].as_str().unwrap().contains("LBGP_TGW_ROUTE_QUOTA=7")),
        "{response:#}"
    );
    assert!(
        effective_tgw_routes(&env.ec2(A), &mesh.site(A).rtb)
            .await
            .unwrap()
            .is_empty()
    );
    let mut want = expected(&mesh, true);
    want.remove(A);
    assert_tables(&env, style, &mesh, &want).await;
}

async fn malformed_events_change_nothing_and_the_binary_serves(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let app = app(&env, style, &[]);
    env.emulator.reset_calls().await.unwrap();
    for bad in [
        json!({"detail-type": "AWS API Call via CloudTrail", "detail": 3}),
        json!({"force": "yes"}),
        json!(1),
    ] {
        assert!(app.invoke(bad).await.is_err());
    }
    assert!(env.emulator.calls().await.unwrap().mutating().is_empty());

    let mut vars = env.env(&[
        ("LBGP_REGIONS", "us-east-1,eu-west-1,ap-southeast-2,us-west-2"),
        style.var(),
    ]);
    vars.insert("AWS_ENDPOINT_URL".into(), env.emulator.endpoint());
    vars.insert("AWS_REGION".into(), "us-east-1".into());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    let mut lambda = LocalLambda::start(&dev_binary("tgw-route-propagator"), &vars)
        .await
        .unwrap();
    let Outcome::Response(r) = lambda.invoke(scheduled()).await.unwrap() else {
        panic!()
    };
    assert_full_plan(style, &r);
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
    env.emulator.reset_calls().await.unwrap();
    let Outcome::Response(r) = lambda.invoke(scheduled()).await.unwrap() else {
        panic!()
    };
    assert_plan(&r, 0, &[]);
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
}

async fn an_unreadable_region_withdraws_nothing(style: Style) {
    let env = TestEnv::new(&[A, B, C, D]).await.unwrap();
    let mesh = build(&env, true).await;
    let healthy = app(&env, style, &[]);
    invoke(&healthy, scheduled()).await;

    // B's EC2 endpoint goes dark (connection refused, no retries).
    let config = env
        .config(&[
            ("LBGP_REGIONS", "us-east-1,eu-west-1,ap-southeast-2,us-west-2"),
            style.var(),
        ])
        .propagator()
        .unwrap();
    let mut aws = env.aws(&config.common).unwrap();
    let dark = aws_sdk_ec2::config::Builder::from(&env.sdk)
        .region(aws_sdk_ec2::config::Region::new(B))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let b = lbgp_core::Region::new(B).unwrap();
    aws.ec2.insert(
        b.clone(),
        lbgp_aws::ec2::Ec2::new(
            aws_sdk_ec2::Client::from_conf(dark),
            b,
            lbgp_aws::throttle::TokenBucket::new(50, 0.0),
        ),
    );
    let degraded = App::new(Propagator { config }, aws);
    env.emulator.reset_calls().await.unwrap();
    let response = invoke(&degraded, scheduled()).await;
    let errors = response["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["region"] == B), "{response:#}");
    assert_plan(&response, 0, &[]);
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    assert_tables(&env, style, &mesh, &expected(&mesh, true)).await;
}
