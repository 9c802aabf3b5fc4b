//! vpc-route-injector in `LBGP_ROUTE_STYLE=prefix-list` (specific mode)
//! against the emulator: one lbgp-owned list per mesh, region, family and
//! TGW, one route per table toward it, entry changes through
//! ModifyManagedPrefixList, nothing written once converged, a table whose
//! quota cannot hold the list refused and reported, foreign lists never
//! touched, and a switch back to routes that leaves no list behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{AddPrefixListEntry, Filter, ResourceType, Tag, TagSpecification};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{TestEnv, attach, create_route_table, create_tgw, create_vpc, vpc_routes};
use serde_json::{Value, json};
use vpc_route_injector::{App, Injector};

const REGION: &str = "us-east-1";
const STYLE: [(&str, &str); 2] = [
    ("LBGP_INJECT_MODE", "specific"),
    ("LBGP_ROUTE_STYLE", "prefix-list"),
];

fn app(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    let config = env.config(extra).injector().unwrap();
    let aws = env.aws(&config.common).unwrap();
    App::new(Injector { config }, aws)
}

async fn invoke(app: &App, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

/// (vpc, main table, custom table) per VPC.
struct Mesh {
    tgw: String,
    vpcs: Vec<(String, String, String)>,
}

async fn add_vpc(ec2: &Ec2Client, tgw: &str, cidr: &str) -> (String, String, String) {
    let (vpc, subnet, main) = create_vpc(ec2, cidr).await.unwrap();
    let custom = create_route_table(ec2, &vpc, &[]).await.unwrap();
    attach(ec2, tgw, &vpc, &subnet).await.unwrap();
    (vpc, main, custom)
}

async fn build(env: &TestEnv) -> Mesh {
    let ec2 = env.ec2(REGION);
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let mut vpcs = Vec::new();
    for cidr in ["10.1.0.0/16", "10.3.0.0/16", "10.5.0.0/16"] {
        vpcs.push(add_vpc(&ec2, &tgw, cidr).await);
    }
    Mesh { tgw, vpcs }
}

/// Prefix-list routes of a table: list id → target.
async fn list_routes(ec2: &Ec2Client, rtb: &str) -> BTreeMap<String, String> {
    let out = ec2
        .describe_route_tables()
        .route_table_ids(rtb)
        .send()
        .await
        .unwrap();
    out.route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter_map(|r| {
            Some((
                r.destination_prefix_list_id()?.to_owned(),
                r.transit_gateway_id().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// A list as read: (entries, version, max entries, tags).
type ListRead = (Vec<String>, i64, i32, BTreeMap<String, String>);

/// Lists tagged with the mesh, by id.
async fn mesh_lists(ec2: &Ec2Client) -> BTreeMap<String, ListRead> {
    let out = ec2
        .describe_managed_prefix_lists()
        .filters(Filter::builder().name("tag:lbgp:mesh").values("prod").build())
        .send()
        .await
        .unwrap();
    let mut lists = BTreeMap::new();
    for l in out.prefix_lists() {
        if l.state().map(|s| s.as_str()) == Some("delete-complete") {
            continue;
        }
        let id = l.prefix_list_id().unwrap().to_owned();
        let entries = ec2
            .get_managed_prefix_list_entries()
            .prefix_list_id(&id)
            .send()
            .await
            .unwrap();
        let mut cidrs: Vec<String> = entries
            .entries()
            .iter()
            .filter_map(|e| e.cidr().map(str::to_owned))
            .collect();
        cidrs.sort();
        let tags = l
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        lists.insert(
            id,
            (
                cidrs,
                l.version().unwrap_or(0),
                l.max_entries().unwrap_or(0),
                tags,
            ),
        );
    }
    lists
}

/// A list someone else made, tagged with our mesh but not owned by lbgp.
async fn foreign_list(ec2: &Ec2Client) -> String {
    ec2.create_managed_prefix_list()
        .prefix_list_name("team-b-shared")
        .address_family("IPv4")
        .max_entries(5)
        .entries(AddPrefixListEntry::builder().cidr("192.168.0.0/16").build())
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
        .to_owned()
}

fn ours(lists: &BTreeMap<String, ListRead>) -> Vec<String> {
    lists
        .iter()
        .filter(|(_, (_, _, _, tags))| {
            tags.get("lbgp:owner").map(String::as_str) == Some("vpc-route-injector")
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test]
async fn one_list_one_route_per_table_entry_changes_and_nothing_once_converged() {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let mut mesh = build(&env).await;
    let foreign = foreign_list(&ec2).await;
    let app = app(&env, &STYLE);

    // Dry run: the list and its entries are shown, nothing is written.
    env.emulator.reset_calls().await.unwrap();
    let dry = invoke(&app, json!({"dry_run": true})).await;
    let planned = dry["prefix_lists"].as_array().cloned().unwrap_or_default();
    let create = planned
        .iter()
        .find(|s| s["op"] == "create_list")
        .expect("create_list planned");
    assert_eq!(
        create["entries"],
        json!(["10.1.0.0/16", "10.3.0.0/16", "10.5.0.0/16"]),
        "{dry:#}"
    );
    assert_eq!(planned.iter().filter(|s| s["op"] == "create_route").count(), 6);
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());

    env.emulator.reset_calls().await.unwrap();
    let first = invoke(&app, scheduled()).await;
    assert!(first["errors"].as_array().unwrap().is_empty(), "{first:#}");
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateManagedPrefixList"), 1);
    // 6 tables: one route each toward the list, no route per prefix.
    assert_eq!(calls.count("ec2", "CreateRoute"), 6, "{:?}", calls.ec2_mutating());
    let lists = mesh_lists(&ec2).await;
    let mine = ours(&lists);
    assert_eq!(mine.len(), 1, "{lists:?}");
    let list = &mine[0];
    let (entries, _, max_entries, tags) = &lists[list];
    assert_eq!(entries, &vec!["10.1.0.0/16", "10.3.0.0/16", "10.5.0.0/16"]);
    assert_eq!(*max_entries, 10, "three entries, sized with headroom");
    assert_eq!(tags.get("lbgp:prefix-list"), Some(&format!("{}/ipv4", mesh.tgw)));
    for (_, main, custom) in &mesh.vpcs {
        for rtb in [main, custom] {
            assert_eq!(
                list_routes(&ec2, rtb).await,
                BTreeMap::from([(list.clone(), mesh.tgw.clone())])
            );
            // No CIDR route toward the TGW (the helper shows the list's
            // route under an empty destination).
            let cidr_routes = vpc_routes(&ec2, rtb).await.unwrap();
            assert_eq!(
                cidr_routes
                    .iter()
                    .filter(|(d, t)| !d.is_empty() && *t == &mesh.tgw)
                    .count(),
                0,
                "{cidr_routes:?}"
            );
        }
    }

    // Converged: no EC2 write at all.
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert!(again["prefix_lists"].is_null(), "{again:#}");
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());

    // A VPC joins: one entry change, and one route per table of its own.
    let (_, main, custom) = add_vpc(&ec2, &mesh.tgw, "10.7.0.0/16").await;
    env.clock.advance(60);
    env.emulator.reset_calls().await.unwrap();
    let joined = invoke(&app, scheduled()).await;
    assert!(joined["errors"].as_array().unwrap().is_empty(), "{joined:#}");
    let writes = env.emulator.calls().await.unwrap().ec2_mutating();
    assert_eq!(
        writes,
        BTreeMap::from([
            ("CreateRoute".to_owned(), 2),
            ("ModifyManagedPrefixList".to_owned(), 1)
        ]),
        "{joined:#}"
    );
    let lists = mesh_lists(&ec2).await;
    assert_eq!(
        lists[list].0,
        vec!["10.1.0.0/16", "10.3.0.0/16", "10.5.0.0/16", "10.7.0.0/16"]
    );
    assert_eq!(lists[list].1, 2, "one new version");
    for rtb in [&main, &custom] {
        assert_eq!(
            list_routes(&ec2, rtb).await,
            BTreeMap::from([(list.clone(), mesh.tgw.clone())])
        );
    }
    mesh.vpcs.push((String::new(), main, custom));

    // Someone else's list, tagged with the mesh, was never written.
    let (entries, version, _, _) = &lists[&foreign];
    assert_eq!(
        (entries.as_slice(), *version),
        (&["192.168.0.0/16".to_owned()][..], 1)
    );
}

#[tokio::test]
async fn a_table_whose_quota_cannot_hold_the_list_is_refused_and_reported() {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let mesh = build(&env).await;
    // The first VPC's custom table holds 10 foreign routes: with a quota of
    // 12 it has room for 2 entries, and the list has 3.
    let (vpc, _, custom) = &mesh.vpcs[0];
    let igw = ec2.create_internet_gateway().send().await.unwrap();
    let igw = igw
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    for i in 0..10 {
        ec2.create_route()
            .route_table_id(custom)
            .destination_cidr_block(format!("172.16.{i}.0/24"))
            .gateway_id(&igw)
            .send()
            .await
            .unwrap();
    }
    let mut extra = STYLE.to_vec();
    extra.push(("LBGP_ROUTE_QUOTA", "12"));
    let app = app(&env, &extra);
    let first = invoke(&app, scheduled()).await;
    let errors = first["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{first:#}");
    assert_eq!(errors[0]["resource"], json!(custom));
    let text = errors[0]["error"].as_str().unwrap();
    assert!(text.contains("max entries against the route quota"), "{text}");
    assert!(
        list_routes(&ec2, custom).await.is_empty(),
        "refused table was written"
    );
    // The other five tables reference the list, sized to what they hold.
    let lists = mesh_lists(&ec2).await;
    let mine = ours(&lists);
    assert_eq!(mine.len(), 1);
    assert!(lists[&mine[0]].2 <= 12);
    for (_, main, c) in &mesh.vpcs {
        for rtb in [main, c] {
            if rtb != custom {
                assert_eq!(list_routes(&ec2, rtb).await.len(), 1, "{rtb}");
            }
        }
    }
    // Reported again, written never.
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_eq!(again["errors"].as_array().unwrap().len(), 1);
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
}

#[tokio::test]
async fn switching_back_to_routes_leaves_no_list_or_list_route() {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let mesh = build(&env).await;
    let foreign = foreign_list(&ec2).await;
    let first = invoke(&app(&env, &STYLE), scheduled()).await;
    assert!(first["errors"].as_array().unwrap().is_empty(), "{first:#}");
    assert_eq!(ours(&mesh_lists(&ec2).await).len(), 1);

    let routes = app(
        &env,
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_STYLE", "routes")],
    );
    env.clock.advance(60);
    env.emulator.reset_calls().await.unwrap();
    let back = invoke(&routes, scheduled()).await;
    assert!(back["errors"].as_array().unwrap().is_empty(), "{back:#}");
    let calls = env.emulator.calls().await.unwrap();
    // 6 tables × 2 other VPCs' CIDRs in, then the 6 list routes and the list out.
    assert_eq!(
        calls.count("ec2", "CreateRoute"),
        12,
        "{:?}",
        calls.ec2_mutating()
    );
    assert_eq!(calls.count("ec2", "DeleteRoute"), 6);
    assert_eq!(calls.count("ec2", "DeleteManagedPrefixList"), 1);
    let lists = mesh_lists(&ec2).await;
    assert!(ours(&lists).is_empty(), "{lists:?}");
    assert!(lists.contains_key(&foreign), "the foreign list was deleted");
    for (_, main, custom) in &mesh.vpcs {
        for rtb in [main, custom] {
            assert!(list_routes(&ec2, rtb).await.is_empty());
            assert_eq!(
                vpc_routes(&ec2, rtb)
                    .await
                    .unwrap()
                    .values()
                    .filter(|t| *t == &mesh.tgw)
                    .count(),
                2
            );
        }
    }
    env.clock.advance(60);
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&routes, scheduled()).await;
    assert!(again["changes"].as_array().unwrap().is_empty(), "{again:#}");
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
}
