//! vpc-route-injector against the emulator, through its handler and (once)
//! through the real binary under the Lambda Runtime API.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use lbgp_core::desire::SETTLE_SECS;
use lbgp_tests::events::{cloudtrail, scheduled};
use lbgp_tests::fixtures::{self, TestEnv, attach, create_route_table, create_tgw, create_vpc, vpc_routes};
use lbgp_tests::runtime_api::{LocalLambda, Outcome, dev_binary};
use serde_json::{Value, json};
use vpc_route_injector::{App, Injector};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// One region of the sample mesh.
#[derive(Debug, Clone)]
struct RegionMesh {
    region: &'static str,
    tgw: String,
    /// (vpc, subnet, main route table, custom route table)
    vpcs: Vec<(String, String, String, String)>,
    /// A VPC attached to a TGW without the mesh tag: never touched.
    outsider_rtb: String,
    outsider_tgw: String,
}

async fn build_mesh(env: &TestEnv) -> Vec<RegionMesh> {
    let mut out = Vec::new();
    for (i, region) in REGIONS.iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let mut vpcs = Vec::new();
        for j in 0..2 {
            let cidr = format!("10.{}.0.0/16", i * 10 + j + 1);
            let (vpc, subnet, main) = create_vpc(&ec2, &cidr).await.unwrap();
            let custom = create_route_table(&ec2, &vpc, &[]).await.unwrap();
            attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
            vpcs.push((vpc, subnet, main, custom));
        }
        let outsider_tgw = create_tgw(&ec2, None).await.unwrap();
        let (vpc, subnet, outsider_rtb) = create_vpc(&ec2, &format!("10.{}.0.0/16", 200 + i)).await.unwrap();
        attach(&ec2, &outsider_tgw, &vpc, &subnet).await.unwrap();
        out.push(RegionMesh {
            region,
            tgw,
            vpcs,
            outsider_rtb,
            outsider_tgw,
        });
    }
    out
}

fn app(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    let config = env.config(extra).injector().unwrap();
    let aws = env.aws(&config.common).unwrap();
    App::new(Injector { config }, aws)
}

async fn invoke(app: &App, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

fn changes(response: &Value) -> Vec<Value> {
    response["changes"].as_array().cloned().unwrap_or_default()
}

/// Every managed table holds the three RFC 1918 routes toward its TGW.
async fn assert_converged(env: &TestEnv, mesh: &[RegionMesh]) {
    for m in mesh {
        let ec2 = env.ec2(m.region);
        for (_, _, main, custom) in &m.vpcs {
            for rtb in [main, custom] {
                let routes = vpc_routes(&ec2, rtb).await.unwrap();
                for p in RFC1918 {
                    assert_eq!(routes.get(p), Some(&m.tgw), "{} {rtb} {p}: {routes:?}", m.region);
                }
            }
        }
        let outsider = vpc_routes(&ec2, &m.outsider_rtb).await.unwrap();
        assert_eq!(outsider.len(), 1, "outsider VPC touched: {outsider:?}");
    }
}

#[tokio::test]
async fn dry_run_then_apply_converges_and_second_run_makes_no_writes() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, &[]);

    env.emulator.reset_calls().await.unwrap();
    let dry = invoke(&app, json!({"dry_run": true})).await;
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(dry["applied"], json!(false));
    // 3 regions × 2 VPCs × 2 tables × 3 prefixes.
    assert_eq!(changes(&dry).len(), 36, "{dry:#}");
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.mutating().is_empty(),
        "a dry run wrote: {:?}",
        calls.mutating()
    );

    let applied = invoke(&app, json!({"dry_run": false})).await;
    assert_eq!(applied["applied"], json!(true));
    assert_eq!(changes(&applied), changes(&dry), "apply differs from its dry run");
    assert_converged(&env, &mesh).await;
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "CreateRoute"), 36);
    // The write-ahead ledger in bursts: per region (12 creates, one burst)
    // one transaction of intents and one of confirmations, not two per route.
    assert_eq!(
        calls.count("dynamodb", "TransactWriteItems"),
        2 * REGIONS.len() as u64
    );

    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_eq!(changes(&again), Vec::<Value>::new());
    assert!(again["errors"].as_array().unwrap().is_empty(), "{again:#}");
    let calls = env.emulator.calls().await.unwrap();
    let writes: BTreeMap<String, u64> = calls
        .mutating()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("dynamodb:UpdateItem"))
        .collect();
    // Only the lease is taken and released: no route or ledger write.
    assert!(writes.is_empty(), "converged run wrote: {writes:?}");
    assert!(calls.ec2_mutating().is_empty());
}

async fn converged_env() -> (TestEnv, Vec<RegionMesh>, App) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, &[]);
    let first = invoke(&app, scheduled()).await;
    assert_eq!(changes(&first).len(), 36);
    env.emulator.reset_calls().await.unwrap();
    (env, mesh, app)
}

#[tokio::test]
async fn out_of_band_deletion_is_repaired_with_exactly_one_call() {
    let (env, mesh, app) = converged_env().await;
    let m = &mesh[1];
    let ec2 = env.ec2(m.region);
    let rtb = &m.vpcs[0].2;
    // A hand deletes the route a while after lbgp wrote it (within
    // SETTLE_SECS a route not seen yet is taken for a read lagging the write).
    env.clock.advance(SETTLE_SECS);
    ec2.delete_route()
        .route_table_id(rtb)
        .destination_cidr_block("172.16.0.0/12")
        .send()
        .await
        .unwrap();
    env.emulator.reset_calls().await.unwrap();

    let event = cloudtrail(
        "DeleteRoute",
        m.region,
        json!({"routeTableId": rtb, "destinationCidrBlock": "172.16.0.0/12"}),
    );
    let response = invoke(&app, event).await;
    let c = changes(&response);
    assert_eq!(c.len(), 1, "{response:#}");
    assert_eq!(c[0]["op"], "create");
    assert_eq!(c[0]["route_table_id"], json!(rtb));
    assert_eq!(c[0]["reason"], "our route was deleted out of band");
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("CreateRoute".to_owned(), 1)])
    );
    assert_converged(&env, &mesh).await;
}

#[tokio::test]
async fn out_of_band_repoint_is_repaired() {
    let (env, mesh, app) = converged_env().await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    let rtb = &m.vpcs[1].3;
    env.clock.advance(SETTLE_SECS);
    ec2.replace_route()
        .route_table_id(rtb)
        .destination_cidr_block("10.0.0.0/8")
        .transit_gateway_id(&m.outsider_tgw)
        .send()
        .await
        .unwrap();
    env.emulator.reset_calls().await.unwrap();
    let response = invoke(&app, scheduled()).await;
    let c = changes(&response);
    assert_eq!(c.len(), 1, "{response:#}");
    assert_eq!(c[0]["op"], "replace");
    assert_eq!(c[0]["previous_target"], json!(m.outsider_tgw));
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), 1)])
    );
    assert_converged(&env, &mesh).await;
}

#[tokio::test]
async fn foreign_conflicting_route_is_untouched_and_reported_once() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let m = &mesh[2];
    let ec2 = env.ec2(m.region);
    let (vpc, subnet, main, _) = &m.vpcs[0];
    // A legacy router's route to 192.168.0.0/16, made by hand.
    let eni = ec2
        .create_network_interface()
        .subnet_id(subnet)
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();
    ec2.create_route()
        .route_table_id(main)
        .destination_cidr_block("192.168.0.0/16")
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();
    let app = app(&env, &[]);
    let response = invoke(&app, scheduled()).await;
    assert_eq!(changes(&response).len(), 35);
    let conflicts = response["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{response:#}");
    assert_eq!(conflicts[0]["route_table_id"], json!(main));
    assert_eq!(conflicts[0]["destination"], "192.168.0.0/16");
    assert_eq!(conflicts[0]["held_by"], json!([eni]));
    let routes = vpc_routes(&ec2, main).await.unwrap();
    assert_eq!(routes.get("192.168.0.0/16"), Some(&eni), "foreign route changed");
    let publishes = env.emulator.calls().await.unwrap().count("sns", "Publish");

    // The same conflict on the next run: no new notification, no write.
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_eq!(again["conflicts"].as_array().unwrap().len(), 1);
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("sns", "Publish"), 0, "conflict notified again");
    assert!(calls.ec2_mutating().is_empty());
    assert!(publishes >= 1, "the conflict was never notified");
    let _ = vpc;
}

#[tokio::test]
async fn removing_a_prefix_or_detaching_a_vpc_deletes_only_our_routes() {
    let (env, mesh, _) = converged_env().await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    // A foreign route the operator made on a destination we will stop managing.
    let (vpc0, _, main0, custom0) = &m.vpcs[0];
    ec2.delete_route()
        .route_table_id(custom0)
        .destination_cidr_block("172.16.0.0/12")
        .send()
        .await
        .unwrap();
    ec2.create_route()
        .route_table_id(custom0)
        .destination_cidr_block("172.16.0.0/12")
        .transit_gateway_id(&m.outsider_tgw)
        .send()
        .await
        .unwrap();

    let narrower = app(&env, &[("LBGP_PREFIXES", "10.0.0.0/8,192.168.0.0/16")]);
    let response = invoke(&narrower, scheduled()).await;
    let c = changes(&response);
    // 12 tables had our 172.16/12 route; one was replaced by hand (now foreign).
    assert_eq!(c.len(), 11, "{response:#}");
    assert!(
        c.iter()
            .all(|c| c["op"] == "delete" && c["destination"] == "172.16.0.0/12")
    );
    let routes = vpc_routes(&ec2, custom0).await.unwrap();
    assert_eq!(
        routes.get("172.16.0.0/12"),
        Some(&m.outsider_tgw),
        "foreign route deleted"
    );

    // Detach the first VPC: its owned routes go, the other VPC's stay.
    let attachment = ec2
        .describe_transit_gateway_vpc_attachments()
        .send()
        .await
        .unwrap()
        .transit_gateway_vpc_attachments()
        .iter()
        .find(|a| a.vpc_id() == Some(vpc0.as_str()))
        .and_then(|a| a.transit_gateway_attachment_id())
        .unwrap()
        .to_owned();
    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .send()
        .await
        .unwrap();
    let response = invoke(
        &narrower,
        cloudtrail("DeleteTransitGatewayVpcAttachment", m.region, json!({})),
    )
    .await;
    let c = changes(&response);
    assert_eq!(c.len(), 4, "{response:#}");
    assert!(c.iter().all(|c| c["op"] == "delete" && c["region"] == m.region));
    for rtb in [main0, custom0] {
        let routes = vpc_routes(&ec2, rtb).await.unwrap();
        assert!(
            !routes.contains_key("10.0.0.0/8") && !routes.contains_key("192.168.0.0/16"),
            "{routes:?}"
        );
    }
    assert_eq!(
        vpc_routes(&ec2, custom0).await.unwrap().get("172.16.0.0/12"),
        Some(&m.outsider_tgw)
    );
    let other = vpc_routes(&ec2, &m.vpcs[1].2).await.unwrap();
    assert_eq!(other.get("10.0.0.0/8"), Some(&m.tgw));
}

#[tokio::test]
async fn untagged_tgw_and_ignored_tables_are_untouched() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    let ignored = create_route_table(&ec2, &m.vpcs[0].0, &[("lbgp:ignore", "true")])
        .await
        .unwrap();
    let app = app(&env, &[]);
    let response = invoke(&app, scheduled()).await;
    assert_eq!(changes(&response).len(), 36);
    assert_eq!(vpc_routes(&ec2, &ignored).await.unwrap().len(), 1);
    assert!(
        response["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["resource"] == json!(ignored)),
        "{response:#}"
    );
    assert_converged(&env, &mesh).await;

    // Tagging a managed table lbgp:ignore=true later removes our routes from it.
    let custom = &m.vpcs[1].3;
    fixtures::tag(&ec2, custom, "lbgp:ignore", "true").await.unwrap();
    let response = invoke(&app, cloudtrail("CreateTags", m.region, json!({}))).await;
    let c = changes(&response);
    assert_eq!(c.len(), 3, "{response:#}");
    assert!(
        c.iter()
            .all(|c| c["op"] == "delete" && c["route_table_id"] == json!(custom))
    );

    // Untagging the TGW takes the whole region out of the mesh.
    fixtures::untag(&ec2, &m.tgw, "lbgp:mesh").await.unwrap();
    let response = invoke(&app, cloudtrail("DeleteTags", m.region, json!({}))).await;
    assert_eq!(changes(&response).len(), 9, "{response:#}");
    assert_eq!(vpc_routes(&ec2, &m.vpcs[0].2).await.unwrap().len(), 1);
}

#[tokio::test]
async fn prefix_inside_a_vpc_cidr_is_skipped_and_ipv6_applies_to_ipv6_vpcs() {
    let env = TestEnv::new(&["eu-west-1"]).await.unwrap();
    let ec2 = env.ec2("eu-west-1");
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let (vpc, subnet, main) = create_vpc(&ec2, "10.1.0.0/16").await.unwrap();
    let attachment = attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
    let app = app(
        &env,
        &[("LBGP_PREFIXES", "10.0.0.0/8,10.1.0.0/16,10.1.128.0/17,fd00::/8")],
    );
    let response = invoke(&app, scheduled()).await;
    let c = changes(&response);
    assert_eq!(c.len(), 1, "{response:#}");
    assert_eq!(c[0]["destination"], "10.0.0.0/8");
    let skipped: Vec<&str> = response["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["destination"].as_str())
        .collect();
    assert_eq!(skipped, vec!["10.1.0.0/16", "10.1.128.0/17"]);

    // With an IPv6 block, the IPv6 prefix applies too.
    ec2.associate_vpc_cidr_block()
        .vpc_id(&vpc)
        .amazon_provided_ipv6_cidr_block(true)
        .send()
        .await
        .unwrap();
    // …once the attachment carries IPv6: without Ipv6Support the TGW would
    // drop it (AWS: the attachment's IPv6 support is off by default).
    let response = invoke(&app, cloudtrail("AssociateVpcCidrBlock", "eu-west-1", json!({}))).await;
    assert!(changes(&response).is_empty(), "{response:#}");
    ec2.modify_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .options(
            aws_sdk_ec2::types::ModifyTransitGatewayVpcAttachmentRequestOptions::builder()
                .ipv6_support(aws_sdk_ec2::types::Ipv6SupportValue::Enable)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let response = invoke(
        &app,
        cloudtrail("ModifyTransitGatewayVpcAttachment", "eu-west-1", json!({})),
    )
    .await;
    let c = changes(&response);
    assert_eq!(c.len(), 1, "{response:#}");
    assert_eq!(c[0]["destination"], "fd00::/8");
    assert_eq!(vpc_routes(&ec2, &main).await.unwrap().get("fd00::/8"), Some(&tgw));
}

#[tokio::test]
async fn specific_mode_summarises_to_the_quota_without_covering_own_cidrs() {
    let env = TestEnv::new(&["eu-west-1", "us-east-1"]).await.unwrap();
    let mut tables = Vec::new();
    for (region, base) in [("eu-west-1", 0), ("us-east-1", 8)] {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        for i in 0..4 {
            let (vpc, subnet, main) = create_vpc(&ec2, &format!("10.{}.0.0/16", base + i))
                .await
                .unwrap();
            attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
            tables.push((region, main, format!("10.{}.0.0/16", base + i), tgw.clone()));
        }
    }
    // 7 other VPCs per table, quota 3.
    let app = app(
        &env,
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "3")],
    );
    let response = invoke(&app, scheduled()).await;
    assert!(response["errors"].as_array().unwrap().is_empty(), "{response:#}");
    for (region, rtb, own, tgw) in &tables {
        let routes = vpc_routes(&env.ec2(region), rtb).await.unwrap();
        let ours: Vec<lbgp_core::Cidr> = routes
            .iter()
            .filter(|(_, t)| t == &tgw)
            .map(|(d, _)| d.parse().unwrap())
            .collect();
        assert!(!ours.is_empty() && ours.len() <= 3, "{rtb}: {routes:?}");
        let own: lbgp_core::Cidr = own.parse().unwrap();
        assert!(
            ours.iter().all(|p| !p.overlaps(&own)),
            "{rtb} covers its own CIDR: {ours:?}"
        );
        for (_, _, other, _) in tables.iter().filter(|t| &t.1 != rtb) {
            let other: lbgp_core::Cidr = other.parse().unwrap();
            assert!(
                ours.iter().any(|p| p.contains(&other)),
                "{rtb} misses {other}: {ours:?}"
            );
        }
    }
    // Quota 1 cannot avoid the own CIDR for a table in the middle: refused, others proceed.
    let strict = app_with(
        &env,
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "1")],
    );
    let response = invoke(&strict, json!({"dry_run": true})).await;
    assert!(!response["errors"].as_array().unwrap().is_empty(), "{response:#}");
    assert!(
        response["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("LBGP_ROUTE_QUOTA=1")
    );
}

fn app_with(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    app(env, extra)
}

#[tokio::test]
async fn malformed_and_foreign_events_write_nothing() {
    let (env, _, app) = converged_env().await;
    for bad in [
        json!([]),
        json!("go"),
        json!({"dryrun": true}),
        json!({"dry_run": "yes"}),
        Value::Null,
    ] {
        let err = app.invoke(bad.clone()).await.expect_err("malformed accepted");
        assert_eq!(err.error_type, "lbgp.MalformedPayload.NonRetryable", "{bad}");
        assert!(
            err.error_message.contains("malformed invocation payload"),
            "{}",
            err.error_message
        );
    }
    let ignored = invoke(&app, cloudtrail("RunInstances", "eu-west-1", json!({}))).await;
    assert!(ignored["ignored"].is_string());
    let activate = app.invoke(json!({"group": "g", "activate": "i-1"})).await;
    assert!(activate.is_err());
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.mutating().is_empty(), "{:?}", calls.mutating());
    assert_eq!(calls.ec2_reads(), 0, "a refused event still read EC2");
}

#[tokio::test]
async fn blast_radius_refuses_whole_plan_unless_forced() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, &[("LBGP_MAX_CHANGES", "10")]);
    env.emulator.reset_calls().await.unwrap();
    let refused = invoke(&app, scheduled()).await;
    assert_eq!(refused["applied"], json!(false));
    assert!(
        refused["refused"]
            .as_str()
            .unwrap()
            .contains("36 changes exceed LBGP_MAX_CHANGES=10")
    );
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty());
    assert_eq!(calls.count("sns", "Publish"), 1, "refusal not notified");
    let forced = invoke(&app, json!({"force": true})).await;
    assert_eq!(changes(&forced).len(), 36);
    assert_converged(&env, &mesh).await;
}

#[tokio::test]
async fn the_binary_serves_invocations_through_the_runtime_api() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let binary = dev_binary("vpc-route-injector");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --bins` (make test does)",
        binary.display()
    );
    let mut vars = env.env(&[]);
    vars.insert("AWS_ENDPOINT_URL".into(), env.emulator.endpoint());
    vars.insert("AWS_REGION".into(), fixtures::HOME.into());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    // Debug logs (the SDK's too) fill far more than a pipe's 64 KiB: the
    // function must keep serving while they are written.
    vars.insert("RUST_LOG".into(), "debug".into());
    let mut lambda = LocalLambda::start(&binary, &vars).await.unwrap();
    vars.remove("RUST_LOG");
    let Outcome::Response(dry) = lambda.invoke(json!({"dry_run": true})).await.unwrap() else {
        panic!("dry run failed")
    };
    assert_eq!(changes(&dry).len(), 36);
    // A malformed payload is an error, and the process keeps serving.
    let Outcome::Error(err) = lambda.invoke(json!(42)).await.unwrap() else {
        panic!("malformed payload accepted")
    };
    assert_eq!(err["errorType"], "lbgp.MalformedPayload.NonRetryable");
    let Outcome::Response(applied) = lambda.invoke(scheduled()).await.unwrap() else {
        panic!("apply failed")
    };
    assert_eq!(changes(&applied), changes(&dry));
    assert_converged(&env, &mesh).await;
    let logs = lambda.stop().await.unwrap();
    assert!(logs.len() > 64 * 1024, "only {} bytes of debug logs", logs.len());
    let decision = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "route changed")
        .expect("no JSON log line per change");
    assert!(
        decision["fields"]["route_table_id"]
            .as_str()
            .unwrap()
            .starts_with("rtb-")
    );

    // A bad configuration does not crash-loop: each invocation says what is wrong.
    vars.insert("LBGP_PREFIXES".into(), "10.0.0.0/33".into());
    let mut broken = LocalLambda::start(&binary, &vars).await.unwrap();
    for _ in 0..2 {
        let Outcome::Error(err) = broken.invoke(scheduled()).await.unwrap() else {
            panic!("misconfigured function answered")
        };
        assert!(
            err["errorMessage"]
                .as_str()
                .unwrap()
                .contains("LBGP_PREFIXES: 10.0.0.0/33"),
            "{err}"
        );
    }
}
