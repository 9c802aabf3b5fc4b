//! `lbgpctl`, the built binary, against the emulator (`AWS_ENDPOINT_URL`),
//! with the same `LBGP_*` environment as the functions: its plan is the
//! functions' dry run and writes nothing; `apply --yes` goes through the
//! lease, guard and ledger and leaves a converged plan; `status` lists what
//! the functions wrote.
//!
//! The scene: two regions, a mesh TGW in each with one attached VPC and a
//! peering between them (the injector and the propagator have routes to
//! write), a route of the user's where the injector wants one (a conflict),
//! and a failover group in eu-west-1 whose primary router is stopped (the
//! watcher has routes to move).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use lbgp_aws::context::Aws;
use lbgp_aws::store::{Acquired, SystemClock};
use lbgp_tests::cli::lbgpctl;
use lbgp_tests::events::scheduled;
use lbgp_tests::failover_fixtures::{
    Router, RouterVpc, launch_router, next_hop, route_to_eni, router_vpc, stop,
};
use lbgp_tests::fixtures::{self, TestEnv, attach, create_tgw, create_vpc, peer};
use serde_json::{Value, json};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const MESH: &str = "prod";

struct Scene {
    env: TestEnv,
    /// The main route table of each region's mesh VPC.
    mains: BTreeMap<&'static str, String>,
    net: RouterVpc,
    primary: Router,
    standby: Router,
}

async fn scene() -> Scene {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let mut mains = BTreeMap::new();
    let mut tgws = BTreeMap::new();
    for (n, region) in [A, B].into_iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some(MESH)).await.unwrap();
        let (vpc, subnet, main) = create_vpc(&ec2, &format!("10.{}.0.0/16", n + 1)).await.unwrap();
        attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
        if region == A {
            // The user's route where the injector wants 172.16.0.0/12.
            let igw = lbgp_tests::failover_fixtures::internet_gateway(&ec2, &vpc)
                .await
                .unwrap();
            ec2.create_route()
                .route_table_id(&main)
                .destination_cidr_block("172.16.0.0/12")
                .gateway_id(&igw)
                .send()
                .await
                .unwrap();
        }
        mains.insert(region, main);
        tgws.insert(region, tgw);
    }
    peer(&env, (A, &tgws[A]), (B, &tgws[B]), true).await.unwrap();

    let ec2 = env.ec2(B);
    let net = router_vpc(&ec2, B, "10.50.0.0/16").await.unwrap();
    let primary = launch_router(&ec2, &net.subnets[0], "vpn", Some(200), false)
        .await
        .unwrap();
    let standby = launch_router(&ec2, &net.subnets[1], "vpn", Some(100), false)
        .await
        .unwrap();
    for table in &net.tables {
        route_to_eni(&ec2, table, "192.168.0.0/16", &primary.eni)
            .await
            .unwrap();
    }
    stop(&ec2, &primary.instance).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    Scene {
        env,
        mains,
        net,
        primary,
        standby,
    }
}

/// Clients on the real clock, as `lbgpctl` has (its lease ages and streaks
/// are measured against it).
fn aws(env: &TestEnv, common: &lbgp_core::config::CommonConfig) -> Aws {
    Aws::new(&env.sdk, common, Arc::new(SystemClock)).unwrap()
}

/// Each function's own answer to `payload`, through its handler.
async fn functions(env: &TestEnv, payload: Value) -> Vec<Value> {
    let config = env.config(&[]);
    let injector = config.injector().unwrap();
    let propagator = config.propagator().unwrap();
    let watcher = config.watcher().unwrap();
    let i = vpc_route_injector::App::new(
        vpc_route_injector::Injector {
            config: injector.clone(),
        },
        aws(env, &injector.common),
    );
    let p = tgw_route_propagator::App::new(
        tgw_route_propagator::Propagator {
            config: propagator.clone(),
        },
        aws(env, &propagator.common),
    );
    let w = failover_watcher::App::new(
        failover_watcher::Watcher {
            config: watcher.clone(),
        },
        aws(env, &watcher.common),
    );
    let mut out = Vec::new();
    for response in [
        i.invoke(payload.clone()).await,
        p.invoke(payload.clone()).await,
        w.invoke(payload).await,
    ] {
        out.push(serde_json::to_value(response.expect("handler error")).unwrap());
    }
    out
}

/// A response without what differs between two runs of the same plan.
fn comparable(response: &Value) -> Value {
    let mut r = response.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("duration_ms");
        o.remove("throttled");
    }
    r
}

fn changes(response: &Value) -> usize {
    response["changes"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn plan_is_the_functions_dry_run_and_writes_nothing() {
    let s = scene().await;
    let env = &s.env;

    let plan = lbgpctl(env, &["plan", "all", "--output", "json"]).await;
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.mutating().is_empty(),
        "lbgpctl plan wrote: {:?}",
        calls.mutating()
    );
    assert_eq!(calls.count("sns", "Publish"), 0, "lbgpctl plan published");
    // Not even the ledger or the lease: no DynamoDB write of any kind.
    for action in [
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
    ] {
        assert_eq!(calls.count("dynamodb", action), 0, "{action}");
    }
    assert!(
        calls.count("dynamodb", "Query") > 0,
        "the plan did not read the ledger: {calls:?}"
    );
    assert_eq!(plan.code, 2, "changes are pending: {plan:#?}");
    let answers = plan.json();
    let answers = answers.as_array().expect("plan all answers an array");
    assert_eq!(answers.len(), 3);
    let names: Vec<&str> = answers.iter().map(|a| a["function"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["vpc-route-injector", "tgw-route-propagator", "failover-watcher"]
    );

    // The same answers as the functions' own dry runs, field for field.
    let dry = functions(env, json!({"dry_run": true})).await;
    for (ctl, function) in answers.iter().zip(&dry) {
        assert_eq!(
            comparable(ctl),
            comparable(function),
            "lbgpctl's plan differs from the function's dry run"
        );
        assert_eq!(ctl["dry_run"], json!(true));
    }
    // 3 RFC 1918 routes in each region's main table, one a conflict.
    assert_eq!(changes(&answers[0]), 5, "{:#}", answers[0]);
    assert_eq!(answers[0]["conflicts"].as_array().unwrap().len(), 1);
    assert!(changes(&answers[1]) > 0, "the propagator has routes to propagate");
    assert_eq!(
        changes(&answers[2]),
        2,
        "the watcher moves both routes off the stopped primary"
    );

    // Tables for people: every planned route and the way to apply it.
    let table = lbgpctl(env, &["plan", "injector"]).await;
    println!("{}", table.stdout);
    assert_eq!(table.code, 2, "{table:#?}");
    for main in s.mains.values() {
        assert!(
            table.stdout.contains(main.as_str()),
            "{main} missing:\n{}",
            table.stdout
        );
    }
    assert!(
        table.stdout.contains("conflicts (wanted, not installed"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("5 changes pending — apply with: lbgpctl apply injector --yes"),
        "{}",
        table.stdout
    );

    // One function's JSON is its response object, not an array.
    let one = lbgpctl(env, &["plan", "watcher", "--output", "json"]).await;
    assert_eq!(one.code, 2);
    assert_eq!(comparable(&one.json()), comparable(&dry[2]));

    // Still nothing written, after four plans.
    let calls = env.emulator.calls().await.unwrap();
    let ctl_and_functions = calls.mutating();
    assert!(ctl_and_functions.is_empty(), "{ctl_and_functions:?}");

    // A configuration the functions refuse is an error (1), named.
    let bad = lbgpctl(env, &["plan", "--regions", "mars-1"]).await;
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(bad.stderr.contains("LBGP_REGIONS"), "{}", bad.stderr);
}

#[tokio::test]
async fn apply_needs_yes_goes_through_the_lease_and_then_plans_converged() {
    let s = scene().await;
    let env = &s.env;

    let refused = lbgpctl(env, &["apply", "all"]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(
        env.emulator.calls().await.unwrap().mutating().is_empty(),
        "apply without --yes wrote"
    );

    // Another run holds the injector's lease: the operator's run is not a
    // second writer; it marks work pending for the holder and writes nothing.
    let common = env.config(&[]).common().unwrap();
    let store = aws(env, &common).store;
    let Acquired::Held(fence) = store
        .acquire(vpc_route_injector::FUNCTION, MESH, "a-running-function", 60)
        .await
        .unwrap()
    else {
        panic!("lease not taken")
    };
    env.emulator.reset_calls().await.unwrap();
    let locked = lbgpctl(env, &["apply", "injector", "--yes", "--output", "json"]).await;
    assert_eq!(locked.code, 2, "work is left to the lease's holder: {locked:#?}");
    assert_eq!(locked.json()["locked"], json!(true));
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.ec2_mutating().is_empty(),
        "wrote under another's lease: {:?}",
        calls.ec2_mutating()
    );
    assert_eq!(
        calls.count("dynamodb", "TransactWriteItems"),
        0,
        "no ledger write"
    );
    store.release_leaving_work(&fence).await.unwrap();

    let planned = lbgpctl(env, &["plan", "all", "--output", "json"]).await.json();
    env.emulator.reset_calls().await.unwrap();
    let applied = lbgpctl(env, &["apply", "all", "--yes", "--output", "json"]).await;
    assert_eq!(applied.code, 0, "everything applied: {applied:#?}");
    let applied = applied.json();
    let calls = env.emulator.calls().await.unwrap();
    for (plan, done) in planned
        .as_array()
        .unwrap()
        .iter()
        .zip(applied.as_array().unwrap())
    {
        assert_eq!(done["applied"], json!(true), "{done:#}");
        assert_eq!(
            done["changes"], plan["changes"],
            "the apply differs from its plan"
        );
    }
    let created = calls.count("ec2", "CreateRoute") + calls.count("ec2", "CreateTransitGatewayRoute");
    assert_eq!(
        created as usize,
        changes(&planned[0]) + changes(&planned[1]),
        "one write per planned route: {calls:?}"
    );
    assert_eq!(calls.count("ec2", "ReplaceRoute"), 2, "{calls:?}");
    // The lease was taken and let go, the ledger written ahead and confirmed.
    assert!(calls.count("dynamodb", "UpdateItem") >= 6, "{calls:?}");
    assert!(calls.count("dynamodb", "TransactWriteItems") >= 2, "{calls:?}");
    let ec2 = env.ec2(B);
    for table in &s.net.tables {
        let hop = next_hop(&ec2, table, "192.168.0.0/16").await.unwrap().unwrap();
        assert_eq!(
            hop.eni.as_deref(),
            Some(s.standby.eni.as_str()),
            "{table}: {hop:?}"
        );
    }
    let a_routes = fixtures::vpc_routes(&env.ec2(A), &s.mains[A]).await.unwrap();
    assert!(
        a_routes["172.16.0.0/12"].starts_with("igw-"),
        "the user's route was touched: {a_routes:?}"
    );

    env.emulator.reset_calls().await.unwrap();
    let after = lbgpctl(env, &["plan", "all"]).await;
    assert_eq!(after.code, 0, "converged: {after:#?}");
    assert!(
        after.stdout.contains("converged: no route to change"),
        "{}",
        after.stdout
    );
    // The functions agree.
    for r in functions(env, json!({"dry_run": true})).await {
        assert_eq!(changes(&r), 0, "{r:#}");
    }
    // And an apply of a converged mesh writes nothing to EC2.
    env.emulator.reset_calls().await.unwrap();
    let again = lbgpctl(env, &["apply", "all", "--yes"]).await;
    assert_eq!(again.code, 0, "{again:#?}");
    assert!(env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
}

#[tokio::test]
async fn status_lists_what_the_functions_wrote() {
    let s = scene().await;
    let env = &s.env;
    let applied = functions(env, scheduled()).await;
    assert!(
        applied.iter().all(|r| r["applied"] == json!(true)),
        "{applied:#?}"
    );

    // A run in progress: the propagator's lease, held.
    let common = env.config(&[]).common().unwrap();
    let store = aws(env, &common).store;
    let Acquired::Held(fence) = store
        .acquire(tgw_route_propagator::FUNCTION, MESH, "req-7c1e", 300)
        .await
        .unwrap()
    else {
        panic!("lease not taken")
    };

    env.emulator.reset_calls().await.unwrap();
    let run = lbgpctl(env, &["status", "--output", "json"]).await;
    assert!(
        env.emulator.calls().await.unwrap().mutating().is_empty(),
        "status wrote"
    );
    assert_eq!(run.code, 0, "nothing pending: {run:#?}");
    let status = run.json();
    assert_eq!(status["table"], json!(env.table));
    assert_eq!(status["mesh"], json!(MESH));

    // Owned routes: exactly the routes the injector and the propagator
    // created, per function, region and table.
    let mut written: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in &applied[..2] {
        for c in r["changes"].as_array().unwrap() {
            assert_eq!(c["op"], "create");
            let key = (
                r["function"].as_str().unwrap().to_owned(),
                c["region"].as_str().unwrap().to_owned(),
                c["route_table_id"].as_str().unwrap().to_owned(),
            );
            *written.entry(key).or_default() += 1;
        }
    }
    let owned: BTreeMap<(String, String, String), usize> = status["owned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["pending"], json!(0), "{o}");
            (
                (
                    o["function"].as_str().unwrap().to_owned(),
                    o["region"].as_str().unwrap().to_owned(),
                    o["route_table_id"].as_str().unwrap().to_owned(),
                ),
                o["routes"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(owned, written);

    // The injector's conflict, as it recorded it.
    let conflicts: Vec<&Value> = status["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["function"] == "vpc-route-injector")
        .collect();
    assert_eq!(conflicts.len(), 1, "{:#}", status["conflicts"]);
    assert_eq!(conflicts[0]["count"], json!(1));
    assert_eq!(conflicts[0]["first"][0]["destination"], "172.16.0.0/12");

    // The held lease: holder, token, age; the released ones free.
    let leases = status["leases"].as_array().unwrap();
    let held: Vec<&Value> = leases.iter().filter(|l| l["held"] == json!(true)).collect();
    assert_eq!(held.len(), 1, "{leases:#?}");
    assert_eq!(held[0]["function"], "tgw-route-propagator");
    assert_eq!(held[0]["holder"], "req-7c1e");
    assert_eq!(held[0]["token"], json!(fence.token));
    assert!(held[0]["age_seconds"].as_u64().unwrap() < 60);
    assert!(held[0]["expires_in_seconds"].as_u64().unwrap() > 200);
    assert!(
        leases
            .iter()
            .any(|l| l["function"] == "failover-watcher" && l["held"] == json!(false)),
        "{leases:#?}"
    );

    // The failover group: moved to the standby, which is healthy.
    let groups = status["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let group = &groups[0];
    assert_eq!(group["region"], B);
    assert_eq!(group["group"], "vpn");
    assert_eq!(group["active"], applied[2]["groups"][0]["active"]);
    assert_ne!(group["active"], json!(s.primary.instance));
    let streaks = group["healthy_for_seconds"].as_object().unwrap();
    assert!(
        !streaks.contains_key(&s.primary.instance),
        "the stopped primary has a streak: {streaks:?}"
    );
    assert_eq!(streaks.len(), 1, "{streaks:?}");
    assert!(group["last_move_seconds_ago"].as_u64().unwrap() < 60);

    // The tables say the same to a person.
    let table = lbgpctl(env, &["status"]).await;
    println!("{}", table.stdout);
    assert_eq!(table.code, 0, "{table:#?}");
    for needle in [
        "req-7c1e",
        "(free)",
        "vpn",
        "172.16.0.0/12",
        s.mains[A].as_str(),
        s.mains[B].as_str(),
    ] {
        assert!(
            table.stdout.contains(needle),
            "{needle} missing:\n{}",
            table.stdout
        );
    }

    // Work pending: a run asked for while the lease is held.
    let locked = lbgpctl(env, &["apply", "propagator", "--yes"]).await;
    assert_eq!(locked.code, 2, "{locked:#?}");
    let pending = lbgpctl(env, &["status", "--output", "json"]).await;
    assert_eq!(pending.code, 2, "pending work: {pending:#?}");
    let work = pending.json()["pending"].clone();
    assert_eq!(
        work,
        json!([{"kind": "lease", "function": "tgw-route-propagator", "scope": MESH}]),
        "{work:#}"
    );
}
