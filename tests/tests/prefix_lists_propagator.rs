//! tgw-route-propagator in `LBGP_ROUTE_STYLE=prefix-list` against the
//! emulator: per TGW route table and peering, one lbgp-owned list of the
//! prefixes learned over it and one TGW prefix-list reference toward the
//! peering; from routes to lists and back again, an origin change as one
//! ModifyManagedPrefixList, nothing written once converged, foreign lists
//! and references never touched.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{AddPrefixListEntry, Filter, ResourceType, Tag, TagSpecification};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{
    TestEnv, attach, create_tgw, create_vpc, peer, tgw_route_tables, tgw_static_routes,
};
use serde_json::{Value, json};
use tgw_route_propagator::{App, Propagator};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";

struct Mesh {
    /// region → (tgw, default route table)
    sites: BTreeMap<&'static str, (String, String)>,
    peering: String,
}

async fn build(env: &TestEnv) -> Mesh {
    let mut sites = BTreeMap::new();
    for (n, r) in [A, B].into_iter().enumerate() {
        let ec2 = env.ec2(r);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let rtb = tgw_route_tables(&ec2, &tgw).await.unwrap()[0].clone();
        for j in 0..2 {
            let (vpc, subnet, _) = create_vpc(&ec2, &format!("10.{}.0.0/16", (n + 1) * 10 + j))
                .await
                .unwrap();
            attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
        }
        sites.insert(r, (tgw, rtb));
    }
    let peering = peer(env, (A, &sites[A].0), (B, &sites[B].0), true).await.unwrap();
    Mesh { sites, peering }
}

fn app(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    let mut vars = vec![("LBGP_REGIONS", "us-east-1,eu-west-1")];
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
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

/// References of a table: list id → attachment.
async fn references(ec2: &Ec2Client, rtb: &str) -> BTreeMap<String, String> {
    let out = ec2
        .get_transit_gateway_prefix_list_references()
        .transit_gateway_route_table_id(rtb)
        .send()
        .await
        .unwrap();
    out.transit_gateway_prefix_list_references()
        .iter()
        .map(|r| {
            (
                r.prefix_list_id().unwrap().to_owned(),
                r.transit_gateway_attachment()
                    .and_then(|a| a.transit_gateway_attachment_id())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Lists owned by the propagator: id → entries.
async fn our_lists(ec2: &Ec2Client) -> BTreeMap<String, Vec<String>> {
    let out = ec2
        .describe_managed_prefix_lists()
        .filters(
            Filter::builder()
                .name("tag:lbgp:owner")
                .values("tgw-route-propagator")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut lists = BTreeMap::new();
    for l in out.prefix_lists() {
        if l.state().map(|s| s.as_str()) == Some("delete-complete") {
            continue;
        }
        let id = l.prefix_list_id().unwrap().to_owned();
        lists.insert(id.clone(), entries(ec2, &id).await);
    }
    lists
}

async fn entries(ec2: &Ec2Client, id: &str) -> Vec<String> {
    let out = ec2
        .get_managed_prefix_list_entries()
        .prefix_list_id(id)
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<String> = out
        .entries()
        .iter()
        .filter_map(|e| e.cidr().map(str::to_owned))
        .collect();
    cidrs.sort();
    cidrs
}

fn learned(region: &str) -> Vec<String> {
    // A learns B's VPCs (10.20/16, 10.21/16), B learns A's (10.10, 10.11).
    let base = if region == A { 20 } else { 10 };
    vec![format!("10.{base}.0.0/16"), format!("10.{}.0.0/16", base + 1)]
}

/// Each side holds exactly one list of ours with what it learns and one
/// reference to it toward the peering, and no static route of ours.
async fn assert_lists(env: &TestEnv, mesh: &Mesh, extra: &[&str]) {
    for r in [A, B] {
        let ec2 = env.ec2(r);
        let lists = our_lists(&ec2).await;
        assert_eq!(lists.len(), 1, "{r}: {lists:?}");
        let (id, got) = lists.into_iter().next().unwrap();
        let mut want = learned(r);
        if r == A {
            want.extend(extra.iter().map(|s| (*s).to_owned()));
        }
        want.sort();
        assert_eq!(got, want, "{r}");
        let refs = references(&ec2, &mesh.sites[r].1).await;
        assert_eq!(refs, BTreeMap::from([(id, mesh.peering.clone())]), "{r}");
        assert!(
            tgw_static_routes(&ec2, &mesh.sites[r].1)
                .await
                .unwrap()
                .is_empty(),
            "{r}"
        );
    }
}

#[tokio::test]
async fn routes_to_lists_an_origin_change_and_back_to_routes() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let mesh = build(&env).await;
    // Routes style (unset): one static route per prefix.
    invoke(&app(&env, &[]), scheduled()).await;
    let statics = tgw_static_routes(&env.ec2(A), &mesh.sites[A].1).await.unwrap();
    assert_eq!(statics.len(), 2);

    // To lists: a list and a reference per side, the static routes gone.
    let lists = app(&env, &[("LBGP_ROUTE_STYLE", "prefix-list")]);
    env.emulator.reset_calls().await.unwrap();
    let r = invoke(&lists, scheduled()).await;
    assert_lists(&env, &mesh, &[]).await;
    let writes = env.emulator.calls().await.unwrap().ec2_mutating();
    assert_eq!(
        writes,
        BTreeMap::from([
            ("CreateManagedPrefixList".to_owned(), 2),
            ("CreateTransitGatewayPrefixListReference".to_owned(), 2),
            ("DeleteTransitGatewayRoute".to_owned(), 4),
        ]),
        "{r:#}"
    );
    assert!(!r["prefix_lists"].as_array().unwrap().is_empty(), "{r:#}");

    // Converged: nothing written.
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&lists, scheduled()).await;
    let writes = env.emulator.calls().await.unwrap().ec2_mutating();
    assert!(writes.is_empty(), "{writes:?} {again:#}");

    // An origin change in B: one entry change in A's list, nothing else.
    let ec2 = env.ec2(B);
    let (vpc, subnet, _) = create_vpc(&ec2, "10.29.0.0/16").await.unwrap();
    attach(&ec2, &mesh.sites[B].0, &vpc, &subnet).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    invoke(&lists, scheduled()).await;
    let writes = env.emulator.calls().await.unwrap().ec2_mutating();
    assert_eq!(
        writes,
        BTreeMap::from([("ModifyManagedPrefixList".to_owned(), 1)])
    );
    assert_lists(&env, &mesh, &["10.29.0.0/16"]).await;

    // Back to routes: static routes in, then references and lists out.
    let routes = app(&env, &[("LBGP_ROUTE_STYLE", "routes")]);
    let back = invoke(&routes, scheduled()).await;
    for r in [A, B] {
        let ec2 = env.ec2(r);
        let statics = tgw_static_routes(&ec2, &mesh.sites[r].1).await.unwrap();
        let mut want = learned(r);
        if r == A {
            want.push("10.29.0.0/16".to_owned());
        }
        want.sort();
        assert_eq!(statics.keys().cloned().collect::<Vec<_>>(), want, "{r} {back:#}");
        assert!(statics.values().all(|t| *t == mesh.peering));
        assert!(
            references(&ec2, &mesh.sites[r].1).await.is_empty(),
            "{r} {back:#}"
        );
        assert!(our_lists(&ec2).await.is_empty(), "{r}");
    }
    env.emulator.reset_calls().await.unwrap();
    invoke(&routes, scheduled()).await;
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
}

#[tokio::test]
async fn foreign_lists_and_references_are_never_touched() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let mesh = build(&env).await;
    let ec2 = env.ec2(A);
    // A list in the mesh's tag but nobody's (no lbgp:owner), referenced in
    // A's table toward the peering by someone else.
    let foreign = ec2
        .create_managed_prefix_list()
        .prefix_list_name("theirs")
        .address_family("IPv4")
        .max_entries(5)
        .entries(AddPrefixListEntry::builder().cidr("192.168.7.0/24").build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::PrefixList)
                .tags(Tag::builder().key("lbgp:mesh").value("prod").build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .prefix_list()
        .unwrap()
        .prefix_list_id()
        .unwrap()
        .to_owned();
    ec2.create_transit_gateway_prefix_list_reference()
        .transit_gateway_route_table_id(&mesh.sites[A].1)
        .prefix_list_id(&foreign)
        .transit_gateway_attachment_id(&mesh.peering)
        .send()
        .await
        .unwrap();
    for style in ["prefix-list", "routes", "prefix-list"] {
        let r = invoke(&app(&env, &[("LBGP_ROUTE_STYLE", style)]), json!({})).await;
        assert_eq!(
            entries(&ec2, &foreign).await,
            vec!["192.168.7.0/24"],
            "{style} {r:#}"
        );
        let refs = references(&ec2, &mesh.sites[A].1).await;
        assert_eq!(refs.get(&foreign), Some(&mesh.peering), "{style} {r:#}");
    }
    assert_lists_with_foreign(&env, &mesh, &foreign).await;
}

async fn assert_lists_with_foreign(env: &TestEnv, mesh: &Mesh, foreign: &str) {
    let ec2 = env.ec2(A);
    let ours = our_lists(&ec2).await;
    assert_eq!(ours.len(), 1);
    assert!(!ours.contains_key(foreign));
    assert_eq!(references(&ec2, &mesh.sites[A].1).await.len(), 2);
}

/// A crash after any number of EC2 writes (the emulator refuses every
/// write after the k-th), in either direction: the next run converges and
/// leaves no list or reference of ours behind.
#[tokio::test]
async fn a_crash_between_any_two_writes_leaves_nothing_orphaned() {
    // routes → lists: 2 lists, 2 references, 4 static routes deleted;
    // lists → routes: 4 static routes, 2 references and 2 lists deleted.
    for k in 0..8u64 {
        let env = TestEnv::new(&[A, B]).await.unwrap();
        let mesh = build(&env).await;
        invoke(&app(&env, &[]), scheduled()).await;
        let lists = app(&env, &[("LBGP_ROUTE_STYLE", "prefix-list")]);
        let crash = json!({"fail_writes_after": k, "services": ["ec2"], "mutating_only": true});
        env.emulator.set_faults(crash.clone()).await.unwrap();
        let crashed = invoke(&lists, scheduled()).await;
        assert!(
            !crashed["errors"].as_array().unwrap().is_empty(),
            "k={k}: no write failed: {crashed:#}"
        );
        env.emulator.clear_faults().await.unwrap();
        invoke(&lists, scheduled()).await;
        assert_lists(&env, &mesh, &[]).await;

        let routes = app(&env, &[("LBGP_ROUTE_STYLE", "routes")]);
        env.emulator.set_faults(crash).await.unwrap();
        let crashed = invoke(&routes, scheduled()).await;
        assert!(
            !crashed["errors"].as_array().unwrap().is_empty(),
            "k={k}: no write failed: {crashed:#}"
        );
        env.emulator.clear_faults().await.unwrap();
        invoke(&routes, scheduled()).await;
        for r in [A, B] {
            let ec2 = env.ec2(r);
            let statics = tgw_static_routes(&ec2, &mesh.sites[r].1).await.unwrap();
            assert_eq!(
                statics.keys().cloned().collect::<Vec<_>>(),
                learned(r),
                "k={k} {r}"
            );
            assert!(references(&ec2, &mesh.sites[r].1).await.is_empty(), "k={k} {r}");
            assert!(our_lists(&ec2).await.is_empty(), "k={k} {r}");
        }
    }
}
