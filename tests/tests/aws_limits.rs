//! AWS's limits and its eventual consistency, against the emulator's
//! fidelity layer: SNS's 256 KB message limit and DynamoDB's 400 KB item
//! limit with plans and conflict sets of well over 1,000 routes,
//! DescribeInstanceStatus's 100 ids per call with 102 routers, reads that lag
//! writes (failover watcher, injector, propagator), a ReplaceRoute refused
//! for another reason than a missing route, and a full route table.
//!
//! SNS messages are read as SNS delivers them: the test subscribes an HTTP
//! endpoint of its own to the topic (moto posts every published message to
//! it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use futures::StreamExt;
use lbgp_aws::Error;
use lbgp_aws::ec2::WriteOutcome;
use lbgp_core::desire::SETTLE_SECS;
use lbgp_core::notice::{self, SNS_MESSAGE_LIMIT};
use lbgp_core::report::{ChangeReport, ConflictReport};
use lbgp_core::{Region, RouteKey, RouteTableRef, RouteTarget, TableKind};
use lbgp_runtime::Reconciler;
use lbgp_tests::failover_fixtures::{
    NextHop, Router, create_eni, launch_router, next_hop, route_to_eni, router_vpc, scheduled, state_change,
    stop,
};
use lbgp_tests::fixtures::{
    HOME, TestEnv, attach, create_route_table, create_tgw, create_vpc, peer, tgw_route_tables,
    tgw_static_routes, vpc_routes,
};
use serde_json::{Value, json};

/// DynamoDB's item size limit (400 KB).
const DYNAMODB_ITEM_LIMIT: usize = 409_600;

// ------------------------------------------------------------------ kit

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

fn watcher(env: &TestEnv, extra: &[(&str, &str)]) -> failover_watcher::App {
    let config = env.config(extra).watcher().unwrap();
    let aws = env.aws(&config.common).unwrap();
    failover_watcher::App::new(failover_watcher::Watcher { config }, aws)
}

async fn invoke<R: Reconciler>(app: &lbgp_runtime::App<R>, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

fn list(response: &Value, field: &str) -> Vec<Value> {
    response[field].as_array().cloned().unwrap_or_default()
}

/// `n` distinct /24s, none inside 10.0.0.0/16 (the VPCs' own CIDRs are
/// there): 10.100.0.0/24, 10.100.1.0/24…
fn prefixes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", 100 + i / 256, i % 256))
        .collect()
}

/// Foreign routes (made by hand, not by lbgp): `dests` in `table`, to `eni`.
async fn foreign_routes(ec2: &Ec2Client, table: &str, dests: &[String], eni: &str) {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(dests)
        .map(|d| route_to_eni(ec2, table, d, eni))
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r.unwrap();
    }
}

/// One region of a mesh: a member TGW and an attached VPC with a network
/// interface (the target of the foreign routes).
struct Site {
    tgw: String,
    vpc: String,
    main: String,
    eni: String,
}

async fn site(ec2: &Ec2Client, cidr: &str) -> Site {
    let tgw = create_tgw(ec2, Some("prod")).await.unwrap();
    let (vpc, subnet, main) = create_vpc(ec2, cidr).await.unwrap();
    attach(ec2, &tgw, &vpc, &subnet).await.unwrap();
    let eni = create_eni(ec2, &subnet).await.unwrap();
    Site { tgw, vpc, main, eni }
}

/// The calls of one action in the emulator's log, as HTTP statuses.
async fn statuses(env: &TestEnv, service: &str, action: &str) -> Vec<u64> {
    env.emulator
        .call_log()
        .await
        .unwrap()
        .iter()
        .filter(|c| c["service"] == service && c["action"] == action)
        .map(|c| c["status"].as_u64().unwrap_or(0))
        .collect()
}

/// Every `Publish` since the last reset was accepted (HTTP 200); returns
/// how many there were.
async fn publishes_all_accepted(env: &TestEnv) -> usize {
    let published = statuses(env, "sns", "Publish").await;
    assert!(
        published.iter().all(|s| *s == 200),
        "SNS refused a Publish: statuses {published:?}"
    );
    published.len()
}

/// An HTTP endpoint subscribed to the topic: every message SNS delivers.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<String>>>);

impl Sink {
    async fn subscribe(env: &TestEnv) -> Sink {
        let sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let store = sink.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let store = store.clone();
                async move {
                    store.0.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        aws_sdk_sns::Client::new(&env.sdk)
            .subscribe()
            .topic_arn(&env.topic_arn)
            .protocol("http")
            .endpoint(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        sink
    }

    /// The messages delivered so far: (size in bytes, body).
    fn messages(&self) -> Vec<(usize, Value)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|delivery| {
                let envelope: Value = serde_json::from_str(delivery).unwrap();
                let message = envelope["Message"].as_str().expect("a Message").to_owned();
                (message.len(), serde_json::from_str(&message).unwrap())
            })
            .collect()
    }

    /// The one message of kind `event` delivered so far.
    fn only(&self, event: &str) -> (usize, Value) {
        let found: Vec<(usize, Value)> = self
            .messages()
            .into_iter()
            .filter(|(_, m)| m["event"] == event)
            .collect();
        assert_eq!(found.len(), 1, "messages {event}: {found:?}");
        found.into_iter().next().unwrap()
    }
}

/// Publishes `message` as it is, with the plain SNS client: what the
/// notifier would send without cutting its lists. Returns SNS's error code.
async fn publish_whole(env: &TestEnv, message: String) -> Option<String> {
    aws_sdk_sns::Client::new(&env.sdk)
        .publish()
        .topic_arn(&env.topic_arn)
        .subject("whole")
        .message(message)
        .send()
        .await
        .err()
        .map(|e| e.code().unwrap_or("?").to_owned())
}

/// A notification body as lbgp publishes it, checked: within SNS's limit,
/// lists cut, the counts whole.
fn assert_summarised(size: usize, body: &Value, list_field: &str, total_field: &str, total: usize) {
    assert!(size <= SNS_MESSAGE_LIMIT, "message of {size} bytes");
    assert_eq!(body[total_field], total, "{list_field}: {total_field}");
    let kept = body[list_field].as_array().unwrap().len();
    assert!(kept > 0 && kept < total, "{list_field}: {kept} of {total} kept");
    assert!(body["truncated"].is_string(), "no `truncated` note");
}

// --------------------------------------------------- 1. SNS message limit

/// A plan of 1,160 route changes, refused and then applied: both
/// notifications are published whole-or-cut within 262,144 bytes (whole,
/// they are 274 KB). `conflicts_changed` with 1,740 conflicts is checked by
/// the next test, which builds them anyway.
///
/// This is the slow test of the file (~100 s): moto's TransactWriteItems
/// deep-copies the whole table once per item of a transaction, so writing
/// the ledger of n routes costs O(n²) in the emulator (about 80 s of its CPU
/// for these 1,160 routes); 1,160 is close to the fewest changes whose
/// whole summary is over SNS's limit (about 1,110).
#[tokio::test]
async fn sns_notifications_fit_the_256_kb_limit() {
    let started = Instant::now();
    let env = TestEnv::new(&[HOME]).await.unwrap();
    env.emulator
        .set_fidelity(json!({"vpc_route_quota": 1000}))
        .await
        .unwrap();
    let ec2 = env.ec2(HOME);
    let s = site(&ec2, "10.0.0.0/16").await;
    let custom = create_route_table(&ec2, &s.vpc, &[]).await.unwrap();
    let dests = prefixes(580);
    let joined = dests.join(",");
    let sink = Sink::subscribe(&env).await;
    let settings = |max: &'static str| {
        vec![
            ("LBGP_PREFIXES", joined.clone()),
            ("LBGP_ROUTE_QUOTA", "1000".to_owned()),
            ("LBGP_MAX_CHANGES", max.to_owned()),
        ]
    };
    let app_with = |max: &'static str| {
        let vars = settings(max);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        injector(&env, &vars)
    };
    let wanted = 2 * dests.len();

    // The whole plan, as a dry run reports it; published whole it is over
    // SNS's limit, and the emulator refuses it as SNS does.
    let refusing = app_with("10");
    let dry = invoke(&refusing, json!({"dry_run": true})).await;
    let planned: Vec<ChangeReport> = serde_json::from_value(dry["changes"].clone()).unwrap();
    assert_eq!(planned.len(), wanted);
    let whole = notice::plan_applied("vpc-route-injector", "scheduled", &planned, &[]);
    let whole_text = serde_json::to_string_pretty(&whole.body).unwrap();
    assert!(whole_text.len() > SNS_MESSAGE_LIMIT, "{}", whole_text.len());
    assert_eq!(
        publish_whole(&env, whole_text).await.as_deref(),
        Some("InvalidParameter")
    );
    env.emulator.reset_calls().await.unwrap();

    // Refused by the blast-radius guard: the refusal is published.
    let refused = invoke(&refusing, scheduled()).await;
    assert_eq!(refused["applied"], json!(false));
    assert!(
        refused["refused"]
            .as_str()
            .unwrap()
            .contains(&format!("{wanted} changes exceed LBGP_MAX_CHANGES=10")),
        "{}",
        refused["refused"]
    );
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    assert_eq!(publishes_all_accepted(&env).await, 1);
    let (size, body) = sink.only("plan_refused");
    assert_summarised(size, &body, "changes", "changes_total", wanted);
    assert_eq!(body["changes_by_op_and_region"]["create"][HOME], wanted);

    // Applied: every change made, the summary published.
    env.emulator.reset_calls().await.unwrap();
    let applying = app_with("5000");
    let applied = invoke(&applying, scheduled()).await;
    assert_eq!(applied["applied"], json!(true));
    assert_eq!(list(&applied, "changes").len(), wanted);
    assert!(list(&applied, "errors").is_empty(), "{:?}", applied["errors"]);
    assert_eq!(
        env.emulator.calls().await.unwrap().count("ec2", "CreateRoute"),
        wanted as u64
    );
    for table in [&s.main, &custom] {
        let routes = vpc_routes(&ec2, table).await.unwrap();
        assert!(dests.iter().all(|d| routes.get(d) == Some(&s.tgw)), "{table}");
    }
    assert_eq!(publishes_all_accepted(&env).await, 1);
    let (size, body) = sink.only("plan_applied");
    assert_summarised(size, &body, "changes", "changes_total", wanted);

    println!("sns_notifications_fit_the_256_kb_limit: {:?}", started.elapsed());
}

// ----------------------------------------------- 2. DynamoDB item limit

#[tokio::test]
async fn the_conflict_record_stays_far_below_the_dynamodb_item_limit() {
    let started = Instant::now();
    let env = TestEnv::new(&[HOME]).await.unwrap();
    env.emulator
        .set_fidelity(json!({"vpc_route_quota": 1000}))
        .await
        .unwrap();
    let ec2 = env.ec2(HOME);
    let s = site(&ec2, "10.0.0.0/16").await;
    let mut tables = vec![s.main.clone()];
    for _ in 0..2 {
        tables.push(create_route_table(&ec2, &s.vpc, &[]).await.unwrap());
    }
    let dests = prefixes(580);
    for table in &tables {
        foreign_routes(&ec2, table, &dests, &s.eni).await;
    }
    let joined = dests.join(",");
    let app = injector(&env, &[("LBGP_PREFIXES", &joined), ("LBGP_ROUTE_QUOTA", "1000")]);
    let sink = Sink::subscribe(&env).await;
    env.emulator.reset_calls().await.unwrap();
    let first = invoke(&app, scheduled()).await;
    let conflicts = list(&first, "conflicts");
    assert_eq!(conflicts.len(), tables.len() * dests.len());
    assert!(list(&first, "errors").is_empty(), "{:?}", first["errors"]);
    assert!(list(&first, "changes").is_empty());
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    let whole = serde_json::to_string(&conflicts).unwrap();
    assert!(whole.len() > DYNAMODB_ITEM_LIMIT, "{} bytes", whole.len());

    // The set is announced once, within SNS's limit (whole it is not).
    let reports: Vec<ConflictReport> = serde_json::from_value(Value::Array(conflicts.clone())).unwrap();
    let whole_notice = notice::conflicts_changed("vpc-route-injector", "scheduled", &reports);
    assert!(serde_json::to_string_pretty(&whole_notice.body).unwrap().len() > SNS_MESSAGE_LIMIT);
    assert_eq!(publishes_all_accepted(&env).await, 1, "conflicts_changed");
    let (size, body) = sink.only("conflicts_changed");
    assert_summarised(size, &body, "conflicts", "conflicts_total", conflicts.len());

    // The record: a digest, a count and the first entries.
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let item = ddb
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S("state#vpc-route-injector#prod".into()))
        .key("sk", AttributeValue::S("conflicts".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .expect("no conflicts record");
    let item_size: usize = item
        .iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 0,
                }
        })
        .sum();
    assert!(item_size < 50_000, "conflicts record of {item_size} bytes");
    let body: Value = serde_json::from_str(item["body"].as_s().unwrap()).unwrap();
    assert_eq!(body["count"], conflicts.len());
    let digest = body["digest"].as_str().unwrap();
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{digest}"
    );
    let first_kept = body["first"].as_array().unwrap();
    assert!(
        !first_kept.is_empty() && first_kept.len() <= 100,
        "{}",
        first_kept.len()
    );
    assert_eq!(first_kept[..], conflicts[..first_kept.len()]);

    // The whole list in one item is more than DynamoDB takes.
    let refused = ddb
        .put_item()
        .table_name(&env.table)
        .item("pk", AttributeValue::S("probe#whole-conflict-list".into()))
        .item("sk", AttributeValue::S("conflicts".into()))
        .item("body", AttributeValue::S(whole))
        .send()
        .await
        .expect_err("DynamoDB took an item over 400 KB");
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&refused),
        Some("ValidationException")
    );

    // The same set again: not announced again, the record left as it is.
    env.emulator.reset_calls().await.unwrap();
    let second = invoke(&app, scheduled()).await;
    assert_eq!(list(&second, "conflicts"), conflicts);
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.count("sns", "Publish"),
        0,
        "unchanged conflicts notified again"
    );
    assert_eq!(
        calls.count("dynamodb", "TransactWriteItems"),
        0,
        "record rewritten"
    );
    assert!(calls.ec2_mutating().is_empty());
    println!(
        "the_conflict_record_stays_far_below_the_dynamodb_item_limit: {:?}",
        started.elapsed()
    );
}

// ------------------------------------ 3. 100 ids per DescribeInstanceStatus

const WATCHER_REGION: &str = "eu-west-1";

/// The entry of group `vpn` in a watcher response.
fn vpn(response: &Value) -> Value {
    list(response, "groups")
        .into_iter()
        .find(|g| g["group"] == "vpn")
        .unwrap_or_else(|| panic!("no entry for group vpn: {response:#}"))
}

/// Where each `(table, destination)` points now.
async fn hops(ec2: &Ec2Client, routes: &[(String, String)]) -> Vec<NextHop> {
    let mut out = Vec::new();
    for (table, dest) in routes {
        out.push(
            next_hop(ec2, table, dest)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("route {table} {dest} is gone")),
        );
    }
    out
}

fn all_on(hops: &[NextHop], router: &Router) -> bool {
    hops.iter().all(|h| h.eni.as_ref() == Some(&router.eni))
}

#[tokio::test]
async fn the_watcher_sweeps_102_routers_in_one_region() {
    let started = Instant::now();
    let env = TestEnv::new(&[WATCHER_REGION]).await.unwrap();
    let ec2 = env.ec2(WATCHER_REGION);
    let net = router_vpc(&ec2, WATCHER_REGION, "10.10.0.0/16").await.unwrap();
    let primary = launch_router(&ec2, &net.subnets[0], "vpn", Some(200), false)
        .await
        .unwrap();
    let standbys: Vec<Router> = futures::stream::iter(0..101)
        .map(|n| launch_router(&ec2, &net.subnets[n % 2], "vpn", Some(100), false))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut ids: Vec<String> = standbys.iter().map(|r| r.instance.clone()).collect();
    ids.push(primary.instance.clone());
    assert_eq!(ids.len(), 102);
    // AWS (and the emulator) answer 102 ids in one call with InvalidRequest.
    let whole = ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids.clone()))
        .include_all_instances(true)
        .send()
        .await
        .expect_err("102 ids in one DescribeInstanceStatus");
    assert_eq!(whole.code(), Some("InvalidRequest"), "{whole:?}");

    let managed = vec![
        (net.tables[0].clone(), "10.0.0.0/8".to_owned()),
        (net.tables[0].clone(), "172.16.0.0/12".to_owned()),
        (net.tables[1].clone(), "10.0.0.0/8".to_owned()),
    ];
    for (table, dest) in &managed {
        route_to_eni(&ec2, table, dest, &primary.eni).await.unwrap();
    }
    let app = watcher(&env, &[]);

    // A sweep of the 102 members: read in chunks, no error, nothing moved.
    env.emulator.reset_calls().await.unwrap();
    let first = invoke(&app, scheduled()).await;
    assert!(list(&first, "errors").is_empty(), "{:#}", first["errors"]);
    let entry = vpn(&first);
    assert_eq!(entry["decision"], "none", "{first:#}");
    assert_eq!(entry["active"], json!(primary.instance));
    assert_eq!(entry["routes_managed"], 3, "{entry:#}");
    assert!(list(&first, "changes").is_empty());
    let checks = statuses(&env, "ec2", "DescribeInstanceStatus").await;
    assert!(checks.len() >= 2, "102 members read in one call? {checks:?}");
    assert!(checks.iter().all(|s| *s == 200), "{checks:?}");

    // The primary stops: every managed route moves to one standby.
    stop(&ec2, &primary.instance).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    let failover = invoke(&app, state_change(WATCHER_REGION, &primary.instance, "stopped")).await;
    assert!(list(&failover, "errors").is_empty(), "{:#}", failover["errors"]);
    let entry = vpn(&failover);
    assert_eq!(entry["decision"], "failover", "{failover:#}");
    let active = entry["active"].as_str().unwrap().to_owned();
    let standby = standbys
        .iter()
        .find(|r| r.instance == active)
        .expect("a standby is active");
    assert_eq!(list(&failover, "changes").len(), 3, "{failover:#}");
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), 3)])
    );
    assert!(all_on(&hops(&ec2, &managed).await, standby));
    assert!(
        statuses(&env, "ec2", "DescribeInstanceStatus")
            .await
            .iter()
            .all(|s| *s == 200)
    );

    // A sweep afterwards: no error, no write.
    env.emulator.reset_calls().await.unwrap();
    let sweep = invoke(&app, scheduled()).await;
    assert!(list(&sweep, "errors").is_empty(), "{:#}", sweep["errors"]);
    assert!(list(&sweep, "changes").is_empty(), "{sweep:#}");
    assert_eq!(vpn(&sweep)["decision"], "none");
    assert_eq!(vpn(&sweep)["active"], json!(active));
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    let checks = statuses(&env, "ec2", "DescribeInstanceStatus").await;
    assert!(
        checks.len() >= 2 && checks.iter().all(|s| *s == 200),
        "{checks:?}"
    );
    println!(
        "the_watcher_sweeps_102_routers_in_one_region: {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------ 4. reads that lag writes

/// The emulator's read-after-write delay in tests 4 and 5: long enough
/// that a run started right after a write reads before it, on a busy
/// machine too.
const LAG: f64 = 3.0;

/// Waits until `LAG` (and a margin) has passed since `written`.
async fn after_the_lag(written: Instant) {
    let lag = Duration::from_secs_f64(LAG + 0.3);
    if let Some(rest) = lag.checked_sub(written.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

#[tokio::test]
async fn routes_read_moments_after_a_failover_are_not_moved_again() {
    let started = Instant::now();
    let env = TestEnv::new(&[WATCHER_REGION]).await.unwrap();
    let ec2 = env.ec2(WATCHER_REGION);
    let net = router_vpc(&ec2, WATCHER_REGION, "10.10.0.0/16").await.unwrap();
    let primary = launch_router(&ec2, &net.subnets[0], "vpn", Some(200), false)
        .await
        .unwrap();
    let standby = launch_router(&ec2, &net.subnets[1], "vpn", Some(100), false)
        .await
        .unwrap();
    let managed = vec![
        (net.tables[0].clone(), "10.0.0.0/8".to_owned()),
        (net.tables[1].clone(), "10.0.0.0/8".to_owned()),
        (net.main.clone(), "192.168.0.0/16".to_owned()),
    ];
    for (table, dest) in &managed {
        route_to_eni(&ec2, table, dest, &primary.eni).await.unwrap();
    }
    let app = watcher(&env, &[]);
    let first = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&first)["decision"], "none", "{first:#}");
    assert!(list(&first, "changes").is_empty());

    env.emulator
        .set_fidelity(json!({"read_after_write_seconds": LAG}))
        .await
        .unwrap();
    stop(&ec2, &primary.instance).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    let failover = invoke(&app, state_change(WATCHER_REGION, &primary.instance, "stopped")).await;
    let written = Instant::now();
    assert_eq!(vpn(&failover)["decision"], "failover", "{failover:#}");
    assert_eq!(vpn(&failover)["active"], json!(standby.instance));
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), 3)])
    );
    // The reads lag: every route still reads as on the stopped primary.
    assert!(all_on(&hops(&ec2, &managed).await, &primary), "no lag");

    // A sweep at once reads the old member everywhere: it must not repair.
    env.emulator.reset_calls().await.unwrap();
    let sweep = invoke(&app, scheduled()).await;
    assert!(list(&sweep, "errors").is_empty(), "{:#}", sweep["errors"]);
    assert!(list(&sweep, "changes").is_empty(), "{sweep:#}");
    assert_eq!(vpn(&sweep)["active"], json!(standby.instance), "{sweep:#}");
    assert!(
        env.emulator.calls().await.unwrap().ec2_mutating().is_empty(),
        "the watcher moved routes the read had not caught up with"
    );
    // (Still inside the lag: the sweep did read the old member.)
    assert!(all_on(&hops(&ec2, &managed).await, &primary), "lag over too soon");

    // Once the lag is over, and the watcher's own settling window too: the
    // routes read as on the standby and a sweep writes nothing.
    after_the_lag(written).await;
    assert!(all_on(&hops(&ec2, &managed).await, &standby));
    env.clock.advance(SETTLE_SECS + 1);
    env.emulator.reset_calls().await.unwrap();
    let later = invoke(&app, scheduled()).await;
    assert!(list(&later, "errors").is_empty(), "{:#}", later["errors"]);
    assert!(list(&later, "changes").is_empty(), "{later:#}");
    assert_eq!(vpn(&later)["decision"], "none");
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    assert!(all_on(&hops(&ec2, &managed).await, &standby));
    println!(
        "routes_read_moments_after_a_failover_are_not_moved_again: {:?}",
        started.elapsed()
    );
}

// ------------------------------- 5. injector and propagator under the lag

/// A run right after a converging one, inside the lag: no write, no error,
/// nothing reported deleted out of band; only "not visible yet" skips.
fn assert_quiet_inside_the_lag(response: &Value, writes: &BTreeMap<String, u64>) {
    assert!(writes.is_empty(), "wrote inside the lag: {writes:?}");
    assert!(list(response, "errors").is_empty(), "{:#}", response["errors"]);
    assert!(list(response, "changes").is_empty(), "{:#}", response["changes"]);
    for skip in list(response, "skipped") {
        let reason = skip["reason"].as_str().unwrap();
        assert!(reason.contains("not visible yet"), "{skip}");
    }
    assert!(
        !response.to_string().contains("deleted out of band"),
        "{response:#}"
    );
}

fn assert_quiet_after_the_lag(response: &Value, writes: &BTreeMap<String, u64>) {
    assert!(writes.is_empty(), "wrote after the lag: {writes:?}");
    assert!(list(response, "errors").is_empty(), "{:#}", response["errors"]);
    assert!(list(response, "changes").is_empty(), "{:#}", response["changes"]);
    assert!(list(response, "skipped").is_empty(), "{:#}", response["skipped"]);
}

#[tokio::test]
async fn injector_and_propagator_are_quiet_right_after_they_write() {
    let started = Instant::now();
    const A: &str = "us-east-1";
    const B: &str = "eu-west-1";
    let env = TestEnv::new(&[A, B]).await.unwrap();
    env.emulator
        .set_fidelity(json!({"read_after_write_seconds": LAG}))
        .await
        .unwrap();
    let mut sites = Vec::new();
    for (n, region) in [A, B].into_iter().enumerate() {
        let ec2 = env.ec2(region);
        let s = site(&ec2, &format!("10.{}.0.0/16", n + 1)).await;
        let custom = create_route_table(&ec2, &s.vpc, &[]).await.unwrap();
        sites.push((region, s, custom));
    }
    let peering = peer(&env, (A, &sites[0].1.tgw), (B, &sites[1].1.tgw), true)
        .await
        .unwrap();

    // The injector: 2 regions × 2 tables × 3 prefixes.
    let inj = injector(&env, &[]);
    env.emulator.reset_calls().await.unwrap();
    let converge = invoke(&inj, scheduled()).await;
    let written = Instant::now();
    assert_eq!(list(&converge, "changes").len(), 12, "{converge:#}");
    assert!(list(&converge, "errors").is_empty(), "{:#}", converge["errors"]);
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&inj, scheduled()).await;
    assert_quiet_inside_the_lag(&again, &env.emulator.calls().await.unwrap().ec2_mutating());
    // That run read inside the lag: the tables still read as without them.
    for (region, s, custom) in &sites {
        for table in [&s.main, custom] {
            let routes = vpc_routes(&env.ec2(region), table).await.unwrap();
            assert!(
                !routes.values().any(|t| t == &s.tgw),
                "lag over too soon: {routes:?}"
            );
        }
    }
    after_the_lag(written).await;
    env.emulator.reset_calls().await.unwrap();
    let later = invoke(&inj, scheduled()).await;
    assert_quiet_after_the_lag(&later, &env.emulator.calls().await.unwrap().ec2_mutating());
    for (region, s, custom) in &sites {
        for table in [&s.main, custom] {
            let routes = vpc_routes(&env.ec2(region), table).await.unwrap();
            for p in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] {
                assert_eq!(routes.get(p), Some(&s.tgw), "{region} {table} {p}");
            }
        }
    }

    // The propagator: each TGW learns the other's VPC CIDR over the peering.
    let prop = propagator(&env, &[]);
    env.emulator.reset_calls().await.unwrap();
    let converge = invoke(&prop, scheduled()).await;
    let written = Instant::now();
    assert_eq!(list(&converge, "changes").len(), 2, "{converge:#}");
    assert!(list(&converge, "errors").is_empty(), "{:#}", converge["errors"]);
    let mut tgw_tables = Vec::new();
    for (region, s, _) in &sites {
        tgw_tables.push(tgw_route_tables(&env.ec2(region), &s.tgw).await.unwrap()[0].clone());
    }
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&prop, scheduled()).await;
    assert_quiet_inside_the_lag(&again, &env.emulator.calls().await.unwrap().ec2_mutating());
    for ((region, _, _), table) in sites.iter().zip(&tgw_tables) {
        let routes = tgw_static_routes(&env.ec2(region), table).await.unwrap();
        assert!(routes.is_empty(), "lag over too soon: {routes:?}");
    }
    after_the_lag(written).await;
    env.emulator.reset_calls().await.unwrap();
    let later = invoke(&prop, scheduled()).await;
    assert_quiet_after_the_lag(&later, &env.emulator.calls().await.unwrap().ec2_mutating());
    for (n, ((region, _, _), table)) in sites.iter().zip(&tgw_tables).enumerate() {
        let routes = tgw_static_routes(&env.ec2(region), table).await.unwrap();
        let other = format!("10.{}.0.0/16", 2 - n);
        assert_eq!(routes, BTreeMap::from([(other, peering.clone())]), "{region}");
    }
    println!(
        "injector_and_propagator_are_quiet_right_after_they_write: {:?}",
        started.elapsed()
    );
}

// ------------------------------- 6. ReplaceRoute refused for another reason

#[tokio::test]
async fn a_replace_refused_for_another_reason_is_an_error_not_a_missing_route() {
    let started = Instant::now();
    let env = TestEnv::new(&[HOME]).await.unwrap();
    let client = env.ec2(HOME);
    let (vpc_a, subnet_a, _) = create_vpc(&client, "10.1.0.0/16").await.unwrap();
    let (_, subnet_b, _) = create_vpc(&client, "10.2.0.0/16").await.unwrap();
    let table = create_route_table(&client, &vpc_a, &[]).await.unwrap();
    let eni_a = create_eni(&client, &subnet_a).await.unwrap();
    let eni_b = create_eni(&client, &subnet_b).await.unwrap();
    route_to_eni(&client, &table, "10.99.0.0/16", &eni_a)
        .await
        .unwrap();

    // EC2 answers both with InvalidParameterValue: a target of another
    // VPC, and a route that is not there.
    let other_network = client
        .replace_route()
        .route_table_id(&table)
        .destination_cidr_block("10.99.0.0/16")
        .network_interface_id(&eni_b)
        .send()
        .await
        .expect_err("a target in another VPC");
    assert_eq!(other_network.code(), Some("InvalidParameterValue"));
    assert!(
        other_network
            .message()
            .unwrap_or_default()
            .contains("belong to different networks"),
        "{other_network:?}"
    );
    let missing = client
        .replace_route()
        .route_table_id(&table)
        .destination_cidr_block("10.98.0.0/16")
        .network_interface_id(&eni_a)
        .send()
        .await
        .expect_err("no route to replace");
    assert_eq!(missing.code(), Some("InvalidParameterValue"));

    let common = env.config(&[]).common().unwrap();
    let aws = env.aws(&common).unwrap();
    let ec2 = aws.ec2(&Region::new(HOME).unwrap()).unwrap();
    let key = |destination: &str| RouteKey {
        table: RouteTableRef {
            region: Region::new(HOME).unwrap(),
            kind: TableKind::Vpc,
            id: table.clone(),
        },
        destination: destination.parse().unwrap(),
    };
    let refused = ec2
        .replace_route(
            &key("10.99.0.0/16"),
            &RouteTarget::NetworkInterface(eni_b.clone()),
        )
        .await;
    match &refused {
        Err(e @ Error::Aws { .. }) => {
            assert_eq!(e.code(), Some("InvalidParameterValue"), "{e}");
            assert!(e.to_string().contains("different networks"), "{e}");
        }
        other => panic!("a refused replace read as {other:?}"),
    }
    assert_eq!(
        vpc_routes(&client, &table).await.unwrap().get("10.99.0.0/16"),
        Some(&eni_a),
        "the route changed"
    );
    assert_eq!(
        ec2.replace_route(
            &key("10.98.0.0/16"),
            &RouteTarget::NetworkInterface(eni_a.clone())
        )
        .await
        .unwrap(),
        WriteOutcome::NotFound
    );
    println!(
        "a_replace_refused_for_another_reason_is_an_error_not_a_missing_route: {:?}",
        started.elapsed()
    );
}

// --------------------------------------------------- 7. a full route table

#[tokio::test]
async fn a_full_route_table_is_a_clear_per_table_error() {
    let started = Instant::now();
    let env = TestEnv::new(&[HOME]).await.unwrap();
    env.emulator
        .set_fidelity(json!({"vpc_route_quota": 4}))
        .await
        .unwrap();
    let ec2 = env.ec2(HOME);
    let one = site(&ec2, "10.1.0.0/16").await;
    let (vpc2, subnet2, main2) = create_vpc(&ec2, "10.2.0.0/16").await.unwrap();
    attach(&ec2, &one.tgw, &vpc2, &subnet2).await.unwrap();
    let eni2 = create_eni(&ec2, &subnet2).await.unwrap();
    // Table `full` holds two routes made by hand: room for two of our three.
    let full = create_route_table(&ec2, &one.vpc, &[]).await.unwrap();
    let hand = ["100.64.0.0/10".to_owned(), "198.18.0.0/15".to_owned()];
    foreign_routes(&ec2, &full, &hand, &one.eni).await;
    let rfc1918 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

    let app = injector(&env, &[("LBGP_ROUTE_QUOTA", "50")]);
    env.emulator.reset_calls().await.unwrap();
    let run = Instant::now();
    let first = invoke(&app, scheduled()).await;
    assert!(run.elapsed() < Duration::from_secs(20), "{:?}", run.elapsed());
    let errors = list(&first, "errors");
    assert_eq!(errors.len(), 1, "{first:#}");
    let resource = errors[0]["resource"].as_str().unwrap();
    let error = errors[0]["error"].as_str().unwrap();
    assert!(resource.starts_with(&format!("{full} ")), "{resource}");
    assert!(
        error.contains(&format!("route table {full} is full")) && error.contains("RouteLimitExceeded"),
        "{error}"
    );
    // Every other table converged, and `full` got what fits.
    assert_eq!(list(&first, "changes").len(), 8, "{first:#}");
    for table in [&one.main, &main2] {
        let routes = vpc_routes(&ec2, table).await.unwrap();
        assert!(
            rfc1918.iter().all(|p| routes.get(*p) == Some(&one.tgw)),
            "{table}: {routes:?}"
        );
    }
    let routes = vpc_routes(&ec2, &full).await.unwrap();
    assert_eq!(
        routes.values().filter(|t| *t == &one.tgw).count(),
        2,
        "{routes:?}"
    );
    // One attempt per route, none repeated.
    let creates = statuses(&env, "ec2", "CreateRoute").await;
    assert_eq!(creates.len(), 9, "{creates:?}");
    assert_eq!(creates.iter().filter(|s| **s != 200).count(), 1, "{creates:?}");

    // The next run: the same error, one attempt, nothing else written.
    env.emulator.reset_calls().await.unwrap();
    let run = Instant::now();
    let second = invoke(&app, scheduled()).await;
    assert!(run.elapsed() < Duration::from_secs(20), "{:?}", run.elapsed());
    assert_eq!(list(&second, "errors"), errors, "{second:#}");
    assert!(list(&second, "changes").is_empty(), "{second:#}");
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("CreateRoute".to_owned(), 1)])
    );

    // With LBGP_ROUTE_QUOTA at AWS's quota, lbgp refuses such tables itself,
    // foreign routes counted: `full` (2 foreign + 2 ours + 1 wanted) and a
    // new table with two foreign routes (2 + 3 wanted); a new table without
    // any gets its three.
    let crowded = create_route_table(&ec2, &vpc2, &[]).await.unwrap();
    foreign_routes(&ec2, &crowded, &hand, &eni2).await;
    let empty = create_route_table(&ec2, &one.vpc, &[]).await.unwrap();
    let guarded = injector(&env, &[("LBGP_ROUTE_QUOTA", "4")]);
    env.emulator.reset_calls().await.unwrap();
    let third = invoke(&guarded, scheduled()).await;
    let errors = list(&third, "errors");
    let refused: BTreeSet<&str> = errors.iter().map(|e| e["resource"].as_str().unwrap()).collect();
    assert_eq!(
        refused,
        BTreeSet::from([full.as_str(), crowded.as_str()]),
        "{third:#}"
    );
    for e in &errors {
        let error = e["error"].as_str().unwrap();
        assert!(
            error.contains("5 static IPv4 routes, above LBGP_ROUTE_QUOTA=4"),
            "{error}"
        );
    }
    let changes = list(&third, "changes");
    assert_eq!(changes.len(), 3, "{third:#}");
    assert!(
        changes.iter().all(|c| c["route_table_id"] == json!(empty)),
        "{third:#}"
    );
    assert_eq!(
        env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("CreateRoute".to_owned(), 3)])
    );
    assert!(
        statuses(&env, "ec2", "CreateRoute")
            .await
            .iter()
            .all(|s| *s == 200)
    );
    assert_eq!(
        vpc_routes(&ec2, &crowded).await.unwrap().len(),
        3,
        "local + 2 by hand"
    );
    println!(
        "a_full_route_table_is_a_clear_per_table_error: {:?}",
        started.elapsed()
    );
}
