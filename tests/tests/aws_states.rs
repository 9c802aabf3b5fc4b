//! The functions read AWS as AWS means it (issue 14): resource states
//! (`modifying` attachments keep forwarding, transitional ones freeze what
//! depends on them, `pending` / `deleted` TGW routes), IPv6 support of an
//! attachment, gateway route tables, peerings without a route table, the
//! deprecated `tgw-peering` type, and the TGW route quota per gateway.
//! Each behaviour is switched on in the emulator's fidelity layer (see
//! tests/emulator/README.md) and fails with the functions as they were.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{Ipv6SupportValue, ModifyTransitGatewayVpcAttachmentRequestOptions, ResourceType};
use lbgp_core::desire::SETTLE_SECS;
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{
    TestEnv, attach, create_route_table, create_tgw, create_vpc, peer, tag, tgw_route_tables,
    tgw_static_routes, vpc_routes,
};
use serde_json::{Value, json};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const C: &str = "ap-southeast-2";

/// One VPC attached to a site's TGW.
#[derive(Debug, Clone)]
struct Vpc {
    id: String,
    subnet: String,
    cidr: String,
    attachment: String,
    main: String,
}

#[derive(Debug, Clone)]
struct Site {
    region: &'static str,
    tgw: String,
    rtb: String,
    vpcs: Vec<Vpc>,
}

async fn site(env: &TestEnv, region: &'static str, n: usize, vpcs: usize) -> Site {
    let ec2 = env.ec2(region);
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let rtb = tgw_route_tables(&ec2, &tgw).await.unwrap()[0].clone();
    let mut out = Vec::new();
    for j in 0..vpcs {
        let cidr = format!("10.{}.0.0/16", n * 10 + j);
        let (id, subnet, main) = create_vpc(&ec2, &cidr).await.unwrap();
        let attachment = attach(&ec2, &tgw, &id, &subnet).await.unwrap();
        out.push(Vpc {
            id,
            subnet,
            cidr,
            attachment,
            main,
        });
    }
    Site {
        region,
        tgw,
        rtb,
        vpcs: out,
    }
}

/// Sites in `regions`, every pair peered and accepted.
async fn mesh(env: &TestEnv, regions: &[&'static str]) -> (Vec<Site>, BTreeMap<(usize, usize), String>) {
    let mut sites = Vec::new();
    for (n, r) in regions.iter().enumerate() {
        sites.push(site(env, r, n + 1, 2).await);
    }
    let mut peerings = BTreeMap::new();
    for i in 0..sites.len() {
        for j in i + 1..sites.len() {
            let id = peer(
                env,
                (sites[i].region, &sites[i].tgw),
                (sites[j].region, &sites[j].tgw),
                true,
            )
            .await
            .unwrap();
            peerings.insert((i, j), id);
        }
    }
    (sites, peerings)
}

fn injector(env: &TestEnv, extra: &[(&str, &str)]) -> vpc_route_injector::App {
    let config = env.config(extra).injector().unwrap();
    let aws = env.aws(&config.common).unwrap();
    vpc_route_injector::App::new(vpc_route_injector::Injector { config }, aws)
}

fn propagator(env: &TestEnv, extra: &[(&str, &str)]) -> tgw_route_propagator::App {
    let config = env.config(extra).propagator().unwrap();
    let aws = env.aws(&config.common).unwrap();
    tgw_route_propagator::App::new(tgw_route_propagator::Propagator { config }, aws)
}

async fn run_injector(app: &vpc_route_injector::App) -> Value {
    serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap()
}

async fn run_propagator(app: &tgw_route_propagator::App) -> Value {
    serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap()
}

fn list(v: &Value, field: &str) -> Vec<Value> {
    v[field].as_array().cloned().unwrap_or_default()
}

fn ops(v: &Value, op: &str) -> usize {
    list(v, "changes").iter().filter(|c| c["op"] == op).count()
}

async fn modify_attachment(env: &TestEnv, region: &str, attachment: &str, ipv6: bool) {
    env.ec2(region)
        .modify_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(attachment)
        .options(
            ModifyTransitGatewayVpcAttachmentRequestOptions::builder()
                .ipv6_support(if ipv6 {
                    Ipv6SupportValue::Enable
                } else {
                    Ipv6SupportValue::Disable
                })
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn attachment_state(env: &TestEnv, region: &str, attachment: &str) -> String {
    let out = env
        .ec2(region)
        .describe_transit_gateway_vpc_attachments()
        .transit_gateway_attachment_ids(attachment)
        .send()
        .await
        .unwrap();
    out.transit_gateway_vpc_attachments()
        .first()
        .and_then(|a| a.state())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// A routine ModifyTransitGatewayVpcAttachment keeps the attachment
/// `modifying` for a minute while it forwards: neither function withdraws
/// anything. (Counting only `available` attachments, both deleted every
/// mesh route of the VPC.)
#[tokio::test]
async fn a_modifying_attachment_keeps_every_route() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, _) = mesh(&env, &[A, B]).await;
    let inj = injector(&env, &[]);
    let prop = propagator(&env, &[]);
    assert!(ops(&run_injector(&inj).await, "create") > 0);
    assert!(ops(&run_propagator(&prop).await, "create") > 0);
    let before_b = tgw_static_routes(&env.ec2(B), &sites[1].rtb).await.unwrap();
    let before_vpc = vpc_routes(&env.ec2(A), &sites[0].vpcs[0].main).await.unwrap();

    env.emulator
        .set_fidelity(json!({"attachment_modifying_seconds": 60}))
        .await
        .unwrap();
    let vpc = &sites[0].vpcs[0];
    modify_attachment(&env, A, &vpc.attachment, false).await;
    assert_eq!(attachment_state(&env, A, &vpc.attachment).await, "modifying");
    env.clock.advance(SETTLE_SECS);
    env.emulator.reset_calls().await.unwrap();
    let i = run_injector(&inj).await;
    let p = run_propagator(&prop).await;
    assert!(list(&i, "changes").is_empty(), "injector changed routes: {i:#}");
    assert!(list(&p, "changes").is_empty(), "propagator changed routes: {p:#}");
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    assert_eq!(
        tgw_static_routes(&env.ec2(B), &sites[1].rtb).await.unwrap(),
        before_b
    );
    assert_eq!(vpc_routes(&env.ec2(A), &vpc.main).await.unwrap(), before_vpc);
}

/// An attachment on its way up (`pending`) freezes what depends on it: no
/// route is created toward it until it is `available`, and the run says
/// why; one on its way down (`deleting`) withdraws.
#[tokio::test]
async fn a_pending_attachment_freezes_and_a_deleting_one_withdraws() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, _) = mesh(&env, &[A, B]).await;
    let inj = injector(&env, &[]);
    let prop = propagator(&env, &[]);
    run_injector(&inj).await;
    run_propagator(&prop).await;
    env.clock.advance(SETTLE_SECS);

    env.emulator
        .set_fidelity(json!({"attachment_pending_seconds": 2.0, "attachment_deleting_seconds": 60}))
        .await
        .unwrap();
    let ec2 = env.ec2(A);
    let (vpc, subnet, main) = create_vpc(&ec2, "10.19.0.0/16").await.unwrap();
    let attachment = attach(&ec2, &sites[0].tgw, &vpc, &subnet).await.unwrap();
    assert_eq!(attachment_state(&env, A, &attachment).await, "pending");
    let i = run_injector(&inj).await;
    assert!(list(&i, "changes").is_empty(), "{i:#}");
    assert!(
        list(&i, "skipped")
            .iter()
            .any(|s| s["resource"] == json!(main) && s["reason"].as_str().unwrap().contains("is pending")),
        "{i:#}"
    );
    // The propagator's prefix for it is frozen everywhere: no route yet in B.
    let p = run_propagator(&prop).await;
    assert!(list(&p, "changes").is_empty(), "{p:#}");
    assert!(
        !tgw_static_routes(&env.ec2(B), &sites[1].rtb)
            .await
            .unwrap()
            .contains_key("10.19.0.0/16")
    );

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(attachment_state(&env, A, &attachment).await, "available");
    let i = run_injector(&inj).await;
    assert_eq!(ops(&i, "create"), 3, "{i:#}");
    let p = run_propagator(&prop).await;
    assert_eq!(ops(&p, "create"), 1, "{p:#}");

    // Detaching: `deleting` is gone for routing: every route toward the
    // VPC is withdrawn in the same run.
    env.clock.advance(SETTLE_SECS);
    env.ec2(A)
        .delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .send()
        .await
        .unwrap();
    assert_eq!(attachment_state(&env, A, &attachment).await, "deleting");
    let i = run_injector(&inj).await;
    assert_eq!(ops(&i, "delete"), 3, "{i:#}");
    let p = run_propagator(&prop).await;
    assert_eq!(ops(&p, "delete"), 1, "{p:#}");
    assert!(
        !tgw_static_routes(&env.ec2(B), &sites[1].rtb)
            .await
            .unwrap()
            .contains_key("10.19.0.0/16")
    );
}

/// SearchTransitGatewayRoutes shows routes being created (`pending`) and
/// routes deleted moments ago (`deleted`). A deleted route is gone: when
/// the prefix is wanted again it is created again (read as a live route, it
/// looked like someone else's route already there, and the prefix was
/// never restored); a pending one is in flight, never created twice.
#[tokio::test]
async fn pending_and_deleted_tgw_routes_are_read_as_aws_means_them() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, _) = mesh(&env, &[A, B]).await;
    env.emulator
        .set_fidelity(json!({"tgw_route_pending_seconds": 30, "tgw_route_deleted_visible_seconds": 60}))
        .await
        .unwrap();
    let prop = propagator(&env, &[]);
    assert_eq!(ops(&run_propagator(&prop).await, "create"), 4);
    env.clock.advance(SETTLE_SECS);
    env.emulator.reset_calls().await.unwrap();
    let again = run_propagator(&prop).await;
    assert!(
        list(&again, "changes").is_empty(),
        "pending routes created twice: {again:#}"
    );
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());

    // B's first VPC leaves the mesh and comes back.
    let ec2 = env.ec2(B);
    let vpc = &sites[1].vpcs[0];
    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&vpc.attachment)
        .send()
        .await
        .unwrap();
    let gone = run_propagator(&prop).await;
    assert_eq!(ops(&gone, "delete"), 1, "{gone:#}");
    env.clock.advance(SETTLE_SECS);
    attach(&ec2, &sites[1].tgw, &vpc.id, &vpc.subnet).await.unwrap();
    let back = run_propagator(&prop).await;
    assert_eq!(ops(&back, "create"), 1, "the prefix was not restored: {back:#}");
    let routes = tgw_static_routes(&env.ec2(A), &sites[0].rtb).await.unwrap();
    assert!(routes.contains_key(&vpc.cidr), "{routes:?}");
}

/// A route table associated with an internet gateway (an edge route
/// table) takes no route toward a TGW: it is skipped and says why, and the
/// other tables converge.
#[tokio::test]
async fn gateway_route_tables_are_skipped() {
    let env = TestEnv::new(&[A]).await.unwrap();
    let s = site(&env, A, 1, 1).await;
    let ec2 = env.ec2(A);
    let vpc = &s.vpcs[0];
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc.id)
        .send()
        .await
        .unwrap();
    let edge = create_route_table(&ec2, &vpc.id, &[]).await.unwrap();
    ec2.associate_route_table()
        .route_table_id(&edge)
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let inj = injector(&env, &[("LBGP_REGIONS", A)]);
    let r = run_injector(&inj).await;
    assert!(list(&r, "errors").is_empty(), "{r:#}");
    assert_eq!(ops(&r, "create"), 3, "{r:#}");
    assert!(
        list(&r, "skipped")
            .iter()
            .any(|s| s["resource"] == json!(edge)
                && s["reason"].as_str().unwrap().contains("gateway route table")),
        "{r:#}"
    );
    assert_eq!(
        vpc_routes(&ec2, &edge).await.unwrap().len(),
        1,
        "only the local route"
    );
    env.emulator.reset_calls().await.unwrap();
    let again = run_injector(&inj).await;
    assert!(
        list(&again, "changes").is_empty() && list(&again, "errors").is_empty(),
        "{again:#}"
    );
}

/// A peering attachment that no route table of a side is associated with
/// drops what arrives over it: the run reports it (and notifies once per
/// change of the set) instead of calling the mesh converged, and never
/// changes associations itself.
#[tokio::test]
async fn a_peering_without_a_route_table_is_reported_and_notified_once() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, peerings) = mesh(&env, &[A, B]).await;
    let peering = peerings[&(0, 1)].clone();
    let prop = propagator(&env, &[]);
    let first = run_propagator(&prop).await;
    assert!(list(&first, "errors").is_empty(), "{first:#}");
    let ec2 = env.ec2(B);
    ec2.disassociate_transit_gateway_route_table()
        .transit_gateway_route_table_id(&sites[1].rtb)
        .transit_gateway_attachment_id(&peering)
        .send()
        .await
        .unwrap();
    env.emulator.reset_calls().await.unwrap();
    let broken = run_propagator(&prop).await;
    let errors = list(&broken, "errors");
    assert_eq!(errors.len(), 1, "{broken:#}");
    assert_eq!(errors[0]["resource"], json!(peering));
    assert_eq!(errors[0]["region"], B);
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("associated with no route table")
    );
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("sns", "Publish"), 1, "not notified once");
    assert_eq!(calls.count("ec2", "AssociateTransitGatewayRouteTable"), 0);
    env.emulator.reset_calls().await.unwrap();
    let still = run_propagator(&prop).await;
    assert_eq!(list(&still, "errors").len(), 1);
    assert_eq!(
        env.emulator.calls().await.unwrap().count("sns", "Publish"),
        0,
        "notified again"
    );

    ec2.associate_transit_gateway_route_table()
        .transit_gateway_route_table_id(&sites[1].rtb)
        .transit_gateway_attachment_id(&peering)
        .send()
        .await
        .unwrap();
    env.emulator.reset_calls().await.unwrap();
    let mended = run_propagator(&prop).await;
    assert!(list(&mended, "errors").is_empty(), "{mended:#}");
    assert_eq!(
        env.emulator.calls().await.unwrap().count("sns", "Publish"),
        1,
        "the mend not notified"
    );
}

/// Where AWS names a peering route's attachment with the deprecated
/// resource type `tgw-peering`, it is still a route learned from a peer:
/// never re-exported. (Read as an origin, every learned prefix would be
/// originated twice and withdrawn everywhere.)
#[tokio::test]
async fn tgw_peering_routes_are_never_reexported() {
    let env = TestEnv::new(&[A, B, C]).await.unwrap();
    env.emulator
        .set_fidelity(json!({"peering_resource_type": "tgw-peering"}))
        .await
        .unwrap();
    let (sites, peerings) = mesh(&env, &[A, B, C]).await;
    let prop = propagator(&env, &[]);
    let first = run_propagator(&prop).await;
    assert_eq!(ops(&first, "create"), 12, "{first:#}");
    env.clock.advance(SETTLE_SECS);
    let again = run_propagator(&prop).await;
    assert!(list(&again, "changes").is_empty(), "{again:#}");
    assert!(
        list(&again, "conflicts").is_empty(),
        "learned routes taken for origins: {again:#}"
    );
    // Each table: the other two sites' CIDRs, each via its own peering.
    for (i, s) in sites.iter().enumerate() {
        let got = tgw_static_routes(&env.ec2(s.region), &s.rtb).await.unwrap();
        let mut want = BTreeMap::new();
        for (j, other) in sites.iter().enumerate().filter(|(j, _)| *j != i) {
            let p = &peerings[&(i.min(j), i.max(j))];
            for v in &other.vpcs {
                want.insert(v.cidr.clone(), p.clone());
            }
        }
        assert_eq!(got, want, "{}", s.region);
    }
}

/// A VPC's IPv6 block crosses its attachment only when the attachment
/// supports IPv6: until then it is not originated to the peers.
#[tokio::test]
async fn ipv6_is_originated_only_over_attachments_that_carry_it() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, _) = mesh(&env, &[A, B]).await;
    let ec2 = env.ec2(A);
    let vpc = &sites[0].vpcs[0];
    ec2.associate_vpc_cidr_block()
        .vpc_id(&vpc.id)
        .amazon_provided_ipv6_cidr_block(true)
        .send()
        .await
        .unwrap();
    let prop = propagator(&env, &[]);
    let first = run_propagator(&prop).await;
    let v6 = |v: &Value| {
        list(v, "changes")
            .into_iter()
            .filter(|c| c["destination"].as_str().unwrap().contains(':'))
            .count()
    };
    assert_eq!(
        v6(&first),
        0,
        "IPv6 originated over an attachment without IPv6 support: {first:#}"
    );
    env.clock.advance(SETTLE_SECS);
    modify_attachment(&env, A, &vpc.attachment, true).await;
    let second = run_propagator(&prop).await;
    assert_eq!(v6(&second), 1, "{second:#}");
    assert_eq!(ops(&second, "create"), 1, "{second:#}");
}

/// AWS's quota of routes per transit gateway counts every route table of
/// the gateway together: two target tables each under the limit, but over
/// it together, are refused (without touching the other gateways).
#[tokio::test]
async fn the_tgw_route_quota_counts_every_table_of_the_gateway() {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let (sites, _) = mesh(&env, &[A, B]).await;
    let ec2 = env.ec2(A);
    // A's default table (its 2 propagated routes) and a second table, both
    // targets: 4 + 2 learned routes in A's gateway.
    tag(&ec2, &sites[0].rtb, "lbgp:mesh", "prod").await.unwrap();
    let second = ec2
        .create_transit_gateway_route_table()
        .transit_gateway_id(&sites[0].tgw)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(ResourceType::TransitGatewayRouteTable)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("lbgp:mesh")
                        .value("prod")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .transit_gateway_route_table()
        .and_then(|t| t.transit_gateway_route_table_id())
        .unwrap()
        .to_owned();
    let prop = propagator(&env, &[("LBGP_TGW_ROUTE_QUOTA", "5")]);
    let r = run_propagator(&prop).await;
    let refused: Vec<String> = list(&r, "errors")
        .iter()
        .filter(|e| e["error"].as_str().unwrap().contains("LBGP_TGW_ROUTE_QUOTA=5"))
        .map(|e| e["resource"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refused.len(), 2, "{r:#}");
    assert!(
        refused.contains(&sites[0].rtb) && refused.contains(&second),
        "{r:#}"
    );
    // B's gateway (2 propagated + 2 learned) converges.
    assert_eq!(ops(&r, "create"), 2, "{r:#}");
    assert_eq!(
        tgw_static_routes(&env.ec2(B), &sites[1].rtb).await.unwrap().len(),
        2
    );
    assert!(tgw_static_routes(&ec2, &second).await.unwrap().is_empty());
}
