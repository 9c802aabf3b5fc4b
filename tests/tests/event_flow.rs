//! Event flow in a busy account, against the emulator: a failover in a
//! burst of noise, failover events that come back through the watcher's
//! queue, a failover the deadline cuts continuing in a follow-up at once,
//! adaptive throttling, bursts coalescing under the lease, and Network
//! Manager wake-ups with their echo suppressed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use lambda_runtime::{Context, LambdaEvent};
use lbgp_aws::store::Clock;
use lbgp_tests::events::{on_failure_record, routing_update, scheduled, sqs_delivery, state_change};
use lbgp_tests::failover_fixtures::{
    Router, RouterVpc, launch, launch_router, next_hop, route_to_eni, router_vpc, stop,
};
use lbgp_tests::fixtures::{
    TestEnv, accept_peering, attach, create_route_table, create_tgw, create_vpc, tgw_route_tables,
};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";

fn context(request_id: &str) -> Context {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context
}

fn list(v: &Value, field: &str) -> Vec<Value> {
    v[field].as_array().cloned().unwrap_or_default()
}

fn report(what: &str, measured: &str) {
    println!("event-flow | {what} | {measured}");
}

// --------------------------------------------------------------------------
// The watcher
// --------------------------------------------------------------------------

/// A failover group `vpn` (primary priority 200, standby 100) and
/// `tables × per_table` routes to the primary's interface.
struct Group {
    env: TestEnv,
    net: RouterVpc,
    primary: Router,
    standby: Router,
    routes: Vec<(String, String)>,
}

async fn group(tables: usize, per_table: usize) -> Group {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let net = router_vpc(&ec2, REGION, "10.10.0.0/16").await.unwrap();
    let primary = launch_router(&ec2, &net.subnets[0], "vpn", Some(200), false)
        .await
        .unwrap();
    let standby = launch_router(&ec2, &net.subnets[1], "vpn", Some(100), false)
        .await
        .unwrap();
    let mut routes = Vec::new();
    for t in 0..tables {
        let table = match t {
            0 | 1 => net.tables[t].clone(),
            _ => create_route_table(&ec2, &net.vpc, &[]).await.unwrap(),
        };
        for r in 0..per_table {
            let destination = format!("172.{}.{}.0/24", 16 + r / 250, r % 250);
            routes.push((table.clone(), destination));
        }
    }
    stream::iter(routes.iter())
        .for_each_concurrent(8, |(table, destination)| {
            let ec2 = ec2.clone();
            let eni = primary.eni.clone();
            async move { route_to_eni(&ec2, table, destination, &eni).await.unwrap() }
        })
        .await;
    Group {
        env,
        net,
        primary,
        standby,
        routes,
    }
}

impl Group {
    fn watcher(&self, extra: &[(&str, &str)]) -> failover_watcher::App {
        let config = self.env.config(extra).watcher().unwrap();
        let aws = self.env.aws(&config.common).unwrap();
        failover_watcher::App::new(failover_watcher::Watcher { config }, aws)
    }

    /// Routes still on the primary.
    async fn on_primary(&self) -> usize {
        let ec2 = self.env.ec2(REGION);
        let mut n = 0;
        for (table, destination) in &self.routes {
            let hop = next_hop(&ec2, table, destination).await.unwrap().unwrap();
            if hop.eni.as_deref() != Some(self.standby.eni.as_str()) {
                n += 1;
            }
        }
        n
    }

    async fn queue(&self, name: &str) -> (aws_sdk_sqs::Client, String, String) {
        let sqs = aws_sdk_sqs::Client::new(&self.env.sdk);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap();
        (sqs, url, arn)
    }
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect()
}

/// 100 state changes of instances in no failover group arrive with the one
/// that matters among them, ten at a time (the watcher's reserved
/// concurrency): the failure is handled by its own event, first time, and
/// the noise costs no write and no lease.
#[tokio::test]
async fn a_failure_in_a_burst_of_unrelated_state_changes_is_handled_first_time() {
    let g = group(2, 3).await;
    let ec2 = g.env.ec2(REGION);
    let mut noise = Vec::new();
    for _ in 0..100 {
        noise.push(
            launch(&ec2, &g.net.subnets[0], &[("eks:nodegroup", "web")])
                .await
                .unwrap(),
        );
    }
    let app = Arc::new(g.watcher(&[]));
    assert!(
        list(
            &app.invoke(scheduled())
                .await
                .map(|r| serde_json::to_value(r).unwrap())
                .unwrap(),
            "changes"
        )
        .is_empty()
    );
    stop(&ec2, &g.primary.instance).await.unwrap();
    g.env.emulator.reset_calls().await.unwrap();

    let mut events: Vec<(usize, Value)> = noise
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                i,
                state_change(REGION, &r.instance, ["stopping", "stopped", "terminated"][i % 3]),
            )
        })
        .collect();
    events.insert(
        50,
        (usize::MAX, state_change(REGION, &g.primary.instance, "stopped")),
    );
    let started = Instant::now();
    let results: Vec<(usize, Value, Duration)> = stream::iter(events)
        .map(|(i, event)| {
            let app = app.clone();
            async move {
                let t = Instant::now();
                let r = app
                    .handle(LambdaEvent::new(event, context(&format!("burst-{i}"))))
                    .await
                    .expect("no event of the burst may fail");
                (i, serde_json::to_value(r).unwrap(), t.elapsed())
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let all = started.elapsed();
    let (_, failure, took) = results.iter().find(|(i, _, _)| *i == usize::MAX).unwrap();
    let vpn = list(failure, "groups")
        .into_iter()
        .find(|g| g["group"] == "vpn")
        .unwrap_or_else(|| panic!("{failure:#}"));
    assert_eq!(vpn["decision"], "failover", "{failure:#}");
    assert_eq!(list(failure, "changes").len(), g.routes.len(), "{failure:#}");
    for (i, r, _) in &results {
        if *i != usize::MAX {
            assert!(r["ignored"].is_string(), "noise event {i} was acted on: {r:#}");
            assert!(list(r, "changes").is_empty());
        }
    }
    assert_eq!(g.on_primary().await, 0);
    let calls = g.env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), g.routes.len() as u64)]),
        "writes beyond the failover's"
    );
    report(
        "burst: 100 unrelated state changes + 1 failure, concurrency 10",
        &format!(
            "failure handled by its own event in {} ms ({} routes), whole burst {} ms, noise: 0 writes, 0 leases",
            took.as_millis(),
            g.routes.len(),
            all.as_millis()
        ),
    );
}

/// A failover event Lambda's asynchronous queue gave up on (too old, or its
/// retries spent) lands in the watcher's queue through the on-failure
/// destination; the queue delivers it to the watcher, which fails over.
#[tokio::test]
async fn a_failover_event_lambda_gave_up_on_comes_back_through_the_queue() {
    let g = group(2, 2).await;
    let (sqs, url, arn) = g.queue("watcher-queue").await;
    let app = g.watcher(&[]);
    app.invoke(scheduled()).await.unwrap();
    stop(&g.env.ec2(REGION), &g.primary.instance).await.unwrap();
    // Lambda writes the record; the event source mapping delivers it.
    let record = on_failure_record(
        &state_change(REGION, &g.primary.instance, "stopped"),
        "EventAgeExceeded",
    );
    sqs.send_message()
        .queue_url(&url)
        .message_body(record.to_string())
        .send()
        .await
        .unwrap();
    let bodies = receive(&sqs, &url).await;
    assert_eq!(bodies.len(), 1);
    let r = serde_json::to_value(app.invoke(sqs_delivery(&bodies[0], &arn)).await.unwrap()).unwrap();
    assert_eq!(r["trigger"], "state_change:stopped", "{r:#}");
    assert_eq!(list(&r, "changes").len(), g.routes.len(), "{r:#}");
    assert_eq!(g.on_primary().await, 0);
}

/// A failover larger than what pacing moves before the deadline: the run
/// moves what fits, records the rest, releases its lease, and sends the
/// follow-up that continues at once; the follow-up (delivered by the queue)
/// moves the rest; then nothing is left.
#[tokio::test]
async fn a_failover_the_deadline_cuts_continues_in_a_follow_up_at_once() {
    let g = group(2, 6).await;
    let (sqs, url, arn) = g.queue("watcher-follow-ups").await;
    let paced = [
        ("LBGP_EC2_WRITE_BURST", "1"),
        ("LBGP_EC2_WRITE_RATE", "2"),
        ("LBGP_FOLLOW_UP_QUEUE_URL", url.as_str()),
    ];
    let app = g.watcher(&paced);
    app.invoke(scheduled()).await.unwrap();
    stop(&g.env.ec2(REGION), &g.primary.instance).await.unwrap();

    let mut ctx = context("9c1d-deadline");
    let deadline =
        std::time::SystemTime::now() + lbgp_runtime::budget::DEADLINE_RESERVE + Duration::from_millis(2000);
    ctx.deadline = u64::try_from(
        deadline
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let cut = serde_json::to_value(
        app.handle(LambdaEvent::new(
            state_change(REGION, &g.primary.instance, "stopped"),
            ctx,
        ))
        .await
        .unwrap(),
    )
    .unwrap();
    let moved = list(&cut, "changes").len();
    let deferred = cut["deferred"].as_u64().unwrap() as usize;
    assert!(
        moved >= 1 && deferred >= 1,
        "the deadline did not cut the failover: {cut:#}"
    );
    assert_eq!(moved + deferred, g.routes.len(), "{cut:#}");
    assert!(
        std::time::SystemTime::now() < deadline,
        "the run went past its deadline"
    );
    assert!(cut["follow_up"].is_string(), "no follow-up sent: {cut:#}");
    assert_eq!(g.on_primary().await, deferred);

    let bodies = receive(&sqs, &url).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        body["follow_up"],
        json!({"after": "9c1d-deadline", "deferred": deferred})
    );
    let next = serde_json::to_value(app.invoke(sqs_delivery(&bodies[0], &arn)).await.unwrap()).unwrap();
    assert_eq!(next["trigger"], "follow_up", "{next:#}");
    assert_eq!(list(&next, "changes").len(), deferred, "{next:#}");
    assert!(
        next.get("follow_up").is_none() && next.get("deferred").is_none(),
        "{next:#}"
    );
    assert_eq!(g.on_primary().await, 0);
    g.env.emulator.reset_calls().await.unwrap();
    let idle = serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap();
    assert!(list(&idle, "changes").is_empty(), "{idle:#}");
    assert!(g.env.emulator.calls().await.unwrap().ec2_mutating().is_empty());
    report(
        "deadline: failover of 12 routes, writes paced at 2/s, 2 s before the reserve",
        &format!("{moved} moved, {deferred} deferred; the follow-up moved them at once; then idle"),
    );
}

/// Moves every route of a 500-route failover; returns the time and the
/// throttled calls counted, following up (through the queue) while the
/// runs leave routes.
async fn failover_500(throttle: bool) -> (Duration, u64, usize) {
    let g = group(20, 25).await;
    let (sqs, url, arn) = g.queue("follow-ups").await;
    // A raised EC2 quota (burst 100, 50 per second), so the test is not
    // 90 s of EC2's default 5 per second.
    let config = [
        ("LBGP_EC2_WRITE_BURST", "100"),
        ("LBGP_EC2_WRITE_RATE", "50"),
        ("LBGP_MAX_CHANGES", "1000"),
        ("LBGP_FOLLOW_UP_QUEUE_URL", url.as_str()),
    ];
    let app = g.watcher(&config);
    app.invoke(scheduled()).await.unwrap();
    stop(&g.env.ec2(REGION), &g.primary.instance).await.unwrap();
    if throttle {
        g.env
            .emulator
            .set_faults(json!({"seed": 50, "throttle_p": 0.5, "services": ["ec2"], "mutating_only": true}))
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut r = serde_json::to_value(
        app.invoke(state_change(REGION, &g.primary.instance, "stopped"))
            .await
            .unwrap(),
    )
    .unwrap();
    let mut throttled = r["throttled"].as_u64().unwrap_or(0);
    let mut invocations = 1;
    let mut moved = vec![list(&r, "changes").len()];
    while r["follow_up"].is_string() {
        assert!(
            invocations < 5,
            "a throttled failover did not finish in 5 invocations: {r:#}"
        );
        let bodies = receive(&sqs, &url).await;
        assert_eq!(bodies.len(), 1);
        r = serde_json::to_value(app.invoke(sqs_delivery(&bodies[0], &arn)).await.unwrap()).unwrap();
        throttled += r["throttled"].as_u64().unwrap_or(0);
        invocations += 1;
        moved.push(list(&r, "changes").len());
    }
    println!("event-flow | routes moved per invocation (throttled: {throttle}) | {moved:?}");
    let took = started.elapsed();
    g.env.emulator.clear_faults().await.unwrap();
    assert!(list(&r, "errors").is_empty(), "{:#}", r["errors"]);
    assert_eq!(g.on_primary().await, 0, "routes left on the failed router");
    (took, throttled, invocations)
}

#[tokio::test]
async fn a_500_route_failover_finishes_under_50_percent_throttling() {
    let (calm, calm_throttled, _) = failover_500(false).await;
    assert_eq!(calm_throttled, 0);
    let (stormy, throttled, invocations) = failover_500(true).await;
    assert!(throttled >= 100, "throttling was not injected: {throttled}");
    report(
        "500-route failover, EC2 mutating calls throttled 50% (adaptive retry + pacing)",
        &format!(
            "{:.1} s and {invocations} invocation(s), {throttled} throttled answers; unthrottled {:.1} s",
            stormy.as_secs_f64(),
            calm.as_secs_f64()
        ),
    );
}

// --------------------------------------------------------------------------
// The propagator: coalescing and Network Manager
// --------------------------------------------------------------------------

const A: &str = "eu-west-1";
const B: &str = "us-east-1";

struct Mesh {
    env: TestEnv,
    /// (tgw, default route table, vpc, vpc attachment) per region.
    sites: BTreeMap<&'static str, (String, String, String, String)>,
    peering: String,
}

async fn mesh() -> Mesh {
    let env = TestEnv::new(&[A, B]).await.unwrap();
    let mut sites = BTreeMap::new();
    for (n, region) in [A, B].into_iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let rtb = tgw_route_tables(&ec2, &tgw).await.unwrap().remove(0);
        let (vpc, subnet, _) = create_vpc(&ec2, &format!("10.{}.0.0/16", n + 1)).await.unwrap();
        let attachment = attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
        sites.insert(region, (tgw, rtb, vpc, attachment));
    }
    let peering = env
        .ec2(A)
        .create_transit_gateway_peering_attachment()
        .transit_gateway_id(&sites[A].0)
        .peer_transit_gateway_id(&sites[B].0)
        .peer_region(B)
        .peer_account_id("123456789012")
        .send()
        .await
        .unwrap()
        .transit_gateway_peering_attachment()
        .and_then(|p| p.transit_gateway_attachment_id())
        .unwrap()
        .to_owned();
    accept_peering(&env, B, &peering).await.unwrap();
    Mesh { env, sites, peering }
}

impl Mesh {
    fn propagator(&self, extra: &[(&str, &str)]) -> tgw_route_propagator::App {
        let config = self.env.config(extra).propagator().unwrap();
        let aws = self.env.aws(&config.common).unwrap();
        tgw_route_propagator::App::new(tgw_route_propagator::Propagator { config }, aws)
    }

    fn now(&self) -> u64 {
        self.env.clock.now()
    }
}

/// A Network Manager routing update wakes L-BGP once; the echo of its own
/// install (a static route toward its peering attachment) wakes nothing; an
/// update older than a run that started after it (plus EC2's read lag) is
/// already seen.
#[tokio::test]
async fn a_network_manager_update_wakes_the_propagator_once_and_its_echo_not_at_all() {
    let m = mesh().await;
    let app = m.propagator(&[]);
    let first = serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap();
    assert_eq!(list(&first, "changes").len(), 2, "{first:#}");

    // A new CIDR on A's VPC propagates into A's table: Network Manager says so.
    m.env
        .ec2(A)
        .associate_vpc_cidr_block()
        .vpc_id(&m.sites[A].2)
        .cidr_block("10.3.0.0/16")
        .send()
        .await
        .unwrap();
    m.env.clock.advance(30);
    let (_, rtb_a, _, vpc_attachment_a) = &m.sites[A];
    let installed = routing_update(
        A,
        "TGW-ROUTE-INSTALLED",
        rtb_a,
        &[("10.3.0.0/16", vpc_attachment_a, "route_propagated")],
        m.now(),
    );
    m.env.emulator.reset_calls().await.unwrap();
    let woken = serde_json::to_value(app.invoke(installed.clone()).await.unwrap()).unwrap();
    assert_eq!(
        woken["trigger"], "routing_update:TGW-ROUTE-INSTALLED",
        "{woken:#}"
    );
    assert_eq!(woken["passes"], 1, "{woken:#}");
    let changes = list(&woken, "changes");
    assert_eq!(changes.len(), 1, "{woken:#}");
    assert_eq!(changes[0]["region"], B);
    assert_eq!(changes[0]["destination"], "10.3.0.0/16");
    assert_eq!(
        m.env.emulator.calls().await.unwrap().ec2_mutating(),
        BTreeMap::from([("CreateTransitGatewayRoute".to_owned(), 1)])
    );

    // Its echo: B's table got a static route toward the peering.
    let (_, rtb_b, _, _) = &m.sites[B];
    let echo = routing_update(
        B,
        "TGW-ROUTE-INSTALLED",
        rtb_b,
        &[("10.3.0.0/16", &m.peering, "route_static")],
        m.now(),
    );
    m.env.emulator.reset_calls().await.unwrap();
    let quiet = serde_json::to_value(app.invoke(echo).await.unwrap()).unwrap();
    assert!(
        quiet["ignored"].as_str().is_some_and(|r| r.contains("echo")),
        "the echo woke L-BGP: {quiet:#}"
    );
    let calls = m.env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_reads() + calls.ec2_mutating().values().sum::<u64>(),
        0,
        "{calls:?}"
    );

    // The same update again, after a run that started once EC2's read lag
    // had passed: already seen.
    m.env.clock.advance(lbgp_core::desire::SETTLE_SECS + 1);
    app.invoke(scheduled()).await.unwrap();
    m.env.emulator.reset_calls().await.unwrap();
    let seen = serde_json::to_value(app.invoke(installed).await.unwrap()).unwrap();
    assert!(seen["ignored"].is_string(), "{seen:#}");
    assert_eq!(m.env.emulator.calls().await.unwrap().ec2_reads(), 0);
}

/// 50 relevant events arrive while one run holds the lease: each marks the
/// work pending and returns at once; the holder runs exactly one more pass.
/// Then a burst of 100 relevant events, ten at a time: the reconciles that
/// ran are counted.
#[tokio::test]
async fn a_burst_of_relevant_events_coalesces_under_the_lease() {
    let m = mesh().await;
    // Slow route writes (5 s each) keep the first run inside its window
    // while the others, which write nothing, come and go.
    let app = Arc::new(m.propagator(&[]));
    m.env
        .emulator
        .set_faults(json!({"write_latency_ms": 5000, "services": ["ec2"]}))
        .await
        .unwrap();
    let (_, rtb_a, _, vpc_attachment_a) = m.sites[A].clone();
    let event = |n: usize| {
        routing_update(
            A,
            "TGW-ROUTE-INSTALLED",
            &rtb_a,
            &[(
                &format!("192.168.{n}.0/24"),
                &vpc_attachment_a,
                "route_propagated",
            )],
            m.now(),
        )
    };
    let holder = app.handle(LambdaEvent::new(event(0), context("holder")));
    let inside_the_window = async {
        let started = Instant::now();
        loop {
            let (_, aws) = app.parts().unwrap();
            let lease = aws
                .store
                .read_lease("tgw-route-propagator", "prod")
                .await
                .unwrap();
            if lease.holder.as_deref() == Some("holder") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the first run never took the lease"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stream::iter(1..=50)
            .map(|n| {
                let app = app.clone();
                let e = event(n);
                async move {
                    serde_json::to_value(
                        app.handle(LambdaEvent::new(e, context(&format!("w{n}"))))
                            .await
                            .unwrap(),
                    )
                    .unwrap()
                }
            })
            .buffer_unordered(10)
            .collect::<Vec<Value>>()
            .await
    };
    let (holder, locked) = tokio::join!(holder, inside_the_window);
    let holder = serde_json::to_value(holder.unwrap()).unwrap();
    assert!(
        locked
            .iter()
            .all(|r| r["locked"] == true && r.get("passes").is_none()),
        "an event inside the holder's window ran a reconcile of its own"
    );
    assert_eq!(
        holder["passes"], 2,
        "50 events in one window: one follow-up pass: {holder:#}"
    );
    m.env.emulator.clear_faults().await.unwrap();

    // The burst, ten at a time.
    let burst: Vec<Value> = stream::iter(100..200)
        .map(|n| {
            let app = app.clone();
            let e = event(n);
            async move {
                serde_json::to_value(
                    app.handle(LambdaEvent::new(e, context(&format!("b{n}"))))
                        .await
                        .unwrap(),
                )
                .unwrap()
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let passes: u64 = burst.iter().map(|r| r["passes"].as_u64().unwrap_or(0)).sum();
    let locked = burst.iter().filter(|r| r["locked"] == true).count();
    let seen = burst.iter().filter(|r| r["ignored"].is_string()).count();
    assert!(passes < 100, "every event ran its own reconcile");
    report(
        "burst of 100 Network Manager routing updates, concurrency 10",
        &format!(
            "{passes} reconcile passes ran; {locked} invocations found the lease held and marked work pending; {seen} already seen"
        ),
    );
}
