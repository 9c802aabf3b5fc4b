//! Section 5: failover latency (the watcher's handler, paced, at 50 ms
//! emulator latency, beside a minimal client and the bucket's floor).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail};
use futures::StreamExt;
use lbgp_aws::ec2::{Ec2, RouteTableQuery, WriteOutcome};
use lbgp_aws::throttle::TokenBucket;
use lbgp_core::{RouteKey, RouteTableRef, RouteTarget, TableKind};
use lbgp_tests::failover_fixtures;
use lbgp_tests::fixtures::{self, TestEnv};
use serde_json::{Value, json};

use crate::Options;
use crate::mesh::change_count;
use crate::report::{Headline, Section, human_ms, median, ms, region, verdict};

// ================================================ 5. failover latency

const FAILOVER_REGION: &str = "us-east-1";
const FAILOVER_LATENCY_MS: u64 = 50;
/// A latency long beside the emulator's own queue, to show round trips.
const SLOW_LATENCY_MS: u64 = 500;

/// Replaces every route in `keys` toward `target` through `Ec2::replace_route`
/// (paced by a fresh EC2 default token bucket), `concurrency` at a time.
/// Returns the time from the start to the last acknowledged call.
async fn repoint(
    env: &TestEnv,
    keys: &[RouteKey],
    target: &RouteTarget,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let region = region(FAILOVER_REGION)?;
    let ec2 = Ec2::new(
        env.ec2(FAILOVER_REGION),
        region,
        TokenBucket::ec2_mutating_default(),
    );
    let start = Instant::now();
    let acks: Vec<(Result<WriteOutcome, lbgp_aws::Error>, Instant)> = futures::stream::iter(keys)
        .map(|key| {
            let ec2 = &ec2;
            async move {
                let outcome = ec2.replace_route(key, target).await;
                (outcome, Instant::now())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut last = start;
    for (outcome, at) in acks {
        match outcome? {
            WriteOutcome::Applied => last = last.max(at),
            other => bail!("ReplaceRoute answered {other:?}"),
        }
    }
    Ok(last.duration_since(start))
}

/// One measured write path.
struct FailoverCase {
    routes: usize,
    concurrency: usize,
    latency: u64,
    took: f64,
    calls: u64,
}

/// One measured failover through the watcher, beside the least any client
/// could do on the same scene.
struct WatcherCase {
    routes: usize,
    /// Invocation → response.
    took: f64,
    /// Invocation → the emulator's answer to the last `ReplaceRoute`.
    acked: f64,
    moved: usize,
    reads: u64,
    replaces: u64,
    /// The minimal client's event → last acknowledged `ReplaceRoute`.
    minimal: f64,
    minimal_reads: u64,
    /// `DescribeAlarms` calls of the watcher's run.
    alarm_reads: u64,
}

/// What fails the primary: its instance stops (the state-change event), or
/// its tunnel alarm goes to `ALARM` while it runs (the alarm event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailurePath {
    StateChange,
    Alarm,
}

const BENCH_ALARMS: [&str; 2] = ["vpn-primary-tunnel", "vpn-standby-tunnel"];

/// Milliseconds from `since` to the emulator's answer to the last
/// `ReplaceRoute` in its call log (`answered_at`, wall clock, same machine).
async fn last_replace_acked(env: &TestEnv, since: SystemTime) -> anyhow::Result<f64> {
    let since = since.duration_since(SystemTime::UNIX_EPOCH)?.as_secs_f64();
    let last = env
        .emulator
        .call_log()
        .await?
        .iter()
        .filter(|c| c["action"] == "ReplaceRoute")
        .filter_map(|c| c["answered_at"].as_f64())
        .fold(f64::NAN, f64::max);
    if last.is_nan() {
        bail!("no ReplaceRoute in the emulator's call log");
    }
    Ok((last - since) * 1000.0)
}

fn failover_destination(k: usize) -> String {
    format!("100.{}.{}.0/24", 64 + k / 256, k % 256)
}

/// The least any failover client can do after the event, timed the same way
/// as the watcher: the reads a decision needs, in their dependency order
/// (the group's members, to learn their VPC; then that VPC's route tables
/// and the members' health, together), then one `ReplaceRoute` per route
/// that points at the failed member, paced by a fresh EC2 bucket with a
/// whole burst in flight. No lease, no state, no notification, no logs.
/// Returns the time to the last acknowledged write and the routes moved.
async fn minimal_failover(env: &TestEnv, failed: &str) -> anyhow::Result<(Duration, usize)> {
    let ec2 = Ec2::new(
        env.ec2(FAILOVER_REGION),
        region(FAILOVER_REGION)?,
        TokenBucket::ec2_mutating_default(),
    );
    let start = Instant::now();
    let members = ec2.failover_instances().await?;
    let ids: Vec<&str> = members.iter().map(|i| i.id.as_str()).collect();
    let vpcs: Vec<&str> = members.iter().filter_map(|i| i.vpc_id.as_deref()).collect();
    let (checks, tables) = futures::try_join!(
        ec2.status_checks(&ids),
        ec2.vpc_route_tables(RouteTableQuery::Vpcs(&vpcs[..1]))
    )?;
    let failed_eni = members
        .iter()
        .find(|i| i.id == failed)
        .and_then(|i| i.primary_interface_id.clone())
        .context("failed member")?;
    let standby = members
        .iter()
        .find(|i| {
            i.id != failed
                && i.state == Some(lbgp_core::topology::InstanceState::Running)
                && checks.contains_key(&i.id)
        })
        .and_then(|i| i.primary_interface_id.clone())
        .context("healthy standby")?;
    let target = RouteTarget::NetworkInterface(standby);
    let keys: Vec<RouteKey> = tables
        .into_iter()
        .flat_map(|t| t.routes)
        .filter(|r| r.network_interface_id.as_deref() == Some(failed_eni.as_str()))
        .map(|r| r.route.key)
        .collect();
    let acks: Vec<Result<WriteOutcome, lbgp_aws::Error>> = futures::stream::iter(&keys)
        .map(|key| ec2.replace_route(key, &target))
        .buffer_unordered(ec2.writes_in_flight())
        .collect()
        .await;
    for ack in acks {
        if ack? != WriteOutcome::Applied {
            bail!("the minimal client's ReplaceRoute did not apply");
        }
    }
    Ok((start.elapsed(), keys.len()))
}

/// The failover-watcher end to end: a group `vpn` (primary, priority 200;
/// standby, 100) in one VPC, `routes` routes to the primary's interface (50
/// per table); the primary is stopped and its state-change event handled
/// with EC2's pacing and `latency_ms` on EC2. Before it, on the same scene,
/// the minimal client does the same failover; the routes are then put back.
/// On the alarm path the members carry tunnel alarms (`lbgp:health-alarm`),
/// the primary keeps running, its alarm goes to `ALARM` and the alarm's
/// state-change event is handled, with the same latency on CloudWatch.
async fn watcher_failover(routes: usize, path: FailurePath) -> anyhow::Result<WatcherCase> {
    let env = TestEnv::new(&[FAILOVER_REGION]).await?;
    let ec2 = env.ec2(FAILOVER_REGION);
    let cw = failover_fixtures::cloudwatch(&env, FAILOVER_REGION);
    let net = failover_fixtures::router_vpc(&ec2, FAILOVER_REGION, "10.10.0.0/16").await?;
    let (primary, standby) = match path {
        FailurePath::StateChange => (
            failover_fixtures::launch_router(&ec2, &net.subnets[0], "vpn", Some(200), false).await?,
            failover_fixtures::launch_router(&ec2, &net.subnets[1], "vpn", Some(100), false).await?,
        ),
        FailurePath::Alarm => {
            for alarm in BENCH_ALARMS {
                failover_fixtures::tunnel_alarm(&cw, alarm).await?;
                failover_fixtures::set_alarm(&cw, alarm, "OK", "tunnel up").await?;
            }
            let tagged = |n: usize| [("lbgp:health-alarm", BENCH_ALARMS[n])];
            (
                failover_fixtures::launch_member(&ec2, &net.subnets[0], "vpn", 200, &tagged(0)).await?,
                failover_fixtures::launch_member(&ec2, &net.subnets[1], "vpn", 100, &tagged(1)).await?,
            )
        }
    };
    let mut tables = net.tables.to_vec();
    while tables.len() < routes.div_ceil(50) {
        tables.push(fixtures::create_route_table(&ec2, &net.vpc, &[]).await?);
    }
    let point_all_at = |eni: String, replace: bool| {
        let (ec2, tables) = (&ec2, &tables);
        async move {
            futures::stream::iter(0..routes)
                .map(|k| {
                    let (table, eni) = (&tables[k / 50], &eni);
                    async move {
                        let dest = failover_destination(k);
                        if replace {
                            failover_fixtures::replace_to_eni(ec2, table, &dest, eni).await
                        } else {
                            failover_fixtures::route_to_eni(ec2, table, &dest, eni).await
                        }
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()
        }
    };
    point_all_at(primary.eni.clone(), false).await?;
    let config = env
        .config(&[
            ("LBGP_EC2_WRITE_RATE", "5"),
            ("LBGP_EC2_WRITE_BURST", "50"),
            ("LBGP_MAX_CHANGES", "100000"),
        ])
        .watcher()?;
    let app = failover_watcher::App::new(
        failover_watcher::Watcher {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    let invoke = |payload: Value| async {
        let response = app
            .invoke(payload)
            .await
            .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
        anyhow::Ok(serde_json::to_value(response)?)
    };
    let settled = invoke(failover_fixtures::scheduled()).await?;
    let managed = settled["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "vpn"))
        .map(|g| g["routes_managed"].clone());
    if change_count(&settled) != 0 || managed != Some(json!(routes)) {
        bail!("the group did not settle on its {routes} routes: {settled}");
    }
    let reason = "Threshold Crossed: 1 out of the last 1 datapoints [0.0] was less than the threshold (1.0)";
    let (latency, event) = match path {
        FailurePath::StateChange => {
            failover_fixtures::stop(&ec2, &primary.instance).await?;
            (
                json!({"latency_ms": FAILOVER_LATENCY_MS, "services": ["ec2"]}),
                failover_fixtures::state_change(FAILOVER_REGION, &primary.instance, "stopped"),
            )
        }
        FailurePath::Alarm => {
            failover_fixtures::set_alarm(&cw, BENCH_ALARMS[0], "ALARM", reason).await?;
            (
                json!({"latency_ms": FAILOVER_LATENCY_MS, "services": ["ec2", "monitoring"]}),
                failover_fixtures::alarm_change(FAILOVER_REGION, BENCH_ALARMS[0], "OK", "ALARM", reason),
            )
        }
    };

    // The minimal client first, twice (the better run counts: its first
    // run opens its connections), each time followed by the routes put back
    // on the (stopped) primary, untimed, as the event found them.
    let mut minimal = f64::INFINITY;
    let mut minimal_reads = 0;
    for _ in 0..2 {
        env.emulator.set_faults(latency.clone()).await?;
        env.emulator.reset_calls().await?;
        let started = SystemTime::now();
        let (_, moved) = minimal_failover(&env, &primary.instance).await?;
        minimal = minimal.min(last_replace_acked(&env, started).await?);
        minimal_reads = env.emulator.calls().await?.ec2_reads();
        env.emulator.clear_faults().await?;
        if moved != routes {
            bail!("the minimal client moved {moved} of {routes} routes");
        }
        point_all_at(primary.eni.clone(), true).await?;
    }

    env.emulator.set_faults(latency).await?;
    env.emulator.reset_calls().await?;
    let (start, started) = (Instant::now(), SystemTime::now());
    let response = invoke(event).await?;
    let took = start.elapsed();
    let acked = last_replace_acked(&env, started).await?;
    let calls = env.emulator.calls().await?;
    env.emulator.clear_faults().await?;
    let moved = change_count(&response);
    let on_standby = response["changes"]
        .as_array()
        .is_some_and(|c| c.iter().all(|c| c["target"] == json!(standby.eni)));
    if moved != routes || !on_standby || response["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        bail!("the failover did not move the {routes} routes to the standby: {response}");
    }
    env.emulator.stop().await;
    Ok(WatcherCase {
        routes,
        took: ms(took),
        acked,
        moved,
        reads: calls.ec2_reads(),
        replaces: calls.count("ec2", "ReplaceRoute"),
        minimal,
        minimal_reads,
        alarm_reads: calls.count("monitoring", "DescribeAlarms"),
    })
}

pub(crate) async fn failover(options: &Options) -> anyhow::Result<Section> {
    let big: usize = if options.quick { 120 } else { 500 };
    // The write path alone, 50 routes, with what-ifs; and the round trip.
    let env = TestEnv::new(&[FAILOVER_REGION]).await?;
    let ec2 = env.ec2(FAILOVER_REGION);
    let (vpc, subnet, _) = fixtures::create_vpc(&ec2, "10.99.0.0/16").await?;
    let enis = [
        failover_fixtures::create_eni(&ec2, &subnet).await?,
        failover_fixtures::create_eni(&ec2, &subnet).await?,
    ];
    let table = fixtures::create_route_table(&ec2, &vpc, &[]).await?;
    let region_ref = region(FAILOVER_REGION)?;
    let keys: Vec<RouteKey> = (0..50)
        .map(|k| -> anyhow::Result<RouteKey> {
            Ok(RouteKey {
                table: RouteTableRef {
                    region: region_ref.clone(),
                    kind: TableKind::Vpc,
                    id: table.clone(),
                },
                destination: failover_destination(k).parse()?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for key in &keys {
        failover_fixtures::route_to_eni(&ec2, &table, &key.destination.to_string(), &enis[0]).await?;
    }
    env.emulator
        .set_faults(json!({"latency_ms": FAILOVER_LATENCY_MS, "services": ["ec2"]}))
        .await?;
    // One round trip as the emulator answers it (latency + its own time).
    let mut rtts = Vec::new();
    for i in 0..5 {
        let target = RouteTarget::NetworkInterface(enis[1 - i % 2].clone());
        rtts.push(ms(repoint(&env, &keys[..1], &target, 1).await?));
    }
    let rtt = median(&rtts);
    // The floor at `latency`: the emulator's own share of a round trip stays.
    let floor_at = |n: usize, latency: u64| {
        (n.saturating_sub(50) as f64 / 5.0) * 1000.0
            + (rtt - FAILOVER_LATENCY_MS as f64).max(0.0)
            + latency as f64
    };
    let floor = |n: usize| floor_at(n, FAILOVER_LATENCY_MS);
    // What the product keeps in flight with EC2's default bucket, and what
    // it kept before it matched the burst (commit a5829f4).
    let product = Ec2::new(
        env.ec2(FAILOVER_REGION),
        region(FAILOVER_REGION)?,
        TokenBucket::ec2_mutating_default(),
    )
    .writes_in_flight();
    const BEFORE: usize = 16;
    let mut cases = Vec::new();
    for (i, (concurrency, latency)) in [
        (product, FAILOVER_LATENCY_MS),
        (BEFORE, FAILOVER_LATENCY_MS),
        (product, 0),
        (product, SLOW_LATENCY_MS),
        (BEFORE, SLOW_LATENCY_MS),
    ]
    .into_iter()
    .enumerate()
    {
        env.emulator
            .set_faults(json!({"latency_ms": latency, "services": ["ec2"]}))
            .await?;
        env.emulator.reset_calls().await?;
        // A fresh bucket: full, as the account's is before a failover.
        let target = RouteTarget::NetworkInterface(enis[i % 2].clone());
        let took = repoint(&env, &keys, &target, concurrency).await?;
        cases.push(FailoverCase {
            routes: keys.len(),
            concurrency,
            latency,
            took: ms(took),
            calls: env.emulator.calls().await?.count("ec2", "ReplaceRoute"),
        });
    }
    env.emulator.clear_faults().await?;
    env.emulator.stop().await;

    // Each scene measures the watcher and the minimal client side by side;
    // the 50-route scene is short and noisy, so it runs three times and the
    // scene with the median ratio is reported.
    let mut watcher = Vec::new();
    let mut small_ratios = Vec::new();
    for (routes, scenes) in [(50, 3), (big, 1)] {
        let mut runs = Vec::new();
        for _ in 0..scenes {
            runs.push(watcher_failover(routes, FailurePath::StateChange).await?);
        }
        runs.sort_by(|a, b| (a.acked / a.minimal).total_cmp(&(b.acked / b.minimal)));
        if scenes > 1 {
            small_ratios = runs.iter().map(|w| w.acked / w.minimal).collect();
        }
        watcher.push(runs.swap_remove(runs.len() / 2));
    }

    // The alarm path, 50 routes: three scenes, the median by event → ack.
    let mut alarm_runs = Vec::new();
    for _ in 0..3 {
        alarm_runs.push(watcher_failover(50, FailurePath::Alarm).await?);
    }
    alarm_runs.sort_by(|a, b| a.acked.total_cmp(&b.acked));
    let alarm_acks: Vec<f64> = alarm_runs.iter().map(|w| w.acked).collect();
    let alarm = alarm_runs.swap_remove(1);

    let mut md = String::new();
    let mut headlines = Vec::new();
    let _ = writeln!(md, "## 5. Failover latency\n");
    let _ = writeln!(
        md,
        "`failover-watcher` through its handler (`failover_watcher::App::new(Watcher {{ config }}, aws)`) against \
         the emulator with `latency_ms: {FAILOVER_LATENCY_MS}` on every EC2 call and EC2's pacing \
         (`LBGP_EC2_WRITE_BURST=50`, `LBGP_EC2_WRITE_RATE=5`; the bucket full, as for an idle \
         account). The scene: failover group `vpn` with a primary (priority 200) and a standby (100) \
         in one VPC, N routes to the primary's interface, 50 per route table. The primary is \
         stopped, and its `EC2 Instance State-change Notification` (`stopped`) is handled. \
         *Event → last ack* runs from the invocation to the emulator's answer to the last \
         `ReplaceRoute` (its call log records when each answer was ready, after the injected \
         latency; one machine, one wall clock); *event → response* runs on to the invocation's \
         response, after the state record, the lease release and the notification that follow the \
         writes (on DynamoDB and SNS, which have no injected latency).\n\n\
         Two floors, side by side:\n\n\
         * **Minimal client** (measured in the same emulator, on the same scene, just before the \
         watcher, the better of two runs; the routes are put back after each): the least any failover client can do after the \
         event — read the group's members (to learn their VPC), then that VPC's route tables and the \
         members' health together, then one `ReplaceRoute` per route, paced by EC2's bucket with a \
         whole burst in flight, timed the same way. No lease, no state record, no notification, no logs. This is the \
         floor EC2's bucket sets once the reads a decision cannot skip are counted, on this \
         emulator (moto answers one request at a time, so its queue is in both numbers); the \
         verdict is against it.\n\
         * **Bucket only** (calculated): the last of N calls cannot be sent before \
         max(0, N − 50) / 5 s, and is acknowledged one round trip later ({rtt:.1} ms, the median of 5 \
         single `ReplaceRoute`s here). It leaves out every read, so at 50 routes no client that \
         reads before it writes can come near it; shown for scale.\n"
    );
    let _ = writeln!(
        md,
        "| routes | event → last ack | minimal client | watcher / minimal | bucket only | watcher / bucket only | event → response | EC2 reads: watcher, minimal | ReplaceRoute calls | within 10% of the minimal client |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for w in &watcher {
        let f = floor(w.routes);
        let ratio = w.acked / w.minimal;
        let ok = ratio <= 1.10;
        let _ = writeln!(
            md,
            "| {} | **{}** | {} | **{ratio:.2}×** | {} | {:.2}× | {} | {}, {} | {} | {} |",
            w.routes,
            human_ms(w.acked),
            human_ms(w.minimal),
            human_ms(f),
            w.acked / f,
            human_ms(w.took),
            w.reads,
            w.minimal_reads,
            w.replaces,
            verdict(Some(ok))
        );
        if w.moved != w.replaces as usize {
            let _ = writeln!(md, "\n(moved {} with {} calls)\n", w.moved, w.replaces);
        }
        headlines.push(Headline::new(
            format!("5. failover, {} routes: event → last ReplaceRoute", w.routes),
            format!(
                "{} vs minimal client {} ({ratio:.2}×); bucket-only floor {} ({:.2}×)",
                human_ms(w.acked),
                human_ms(w.minimal),
                human_ms(f),
                w.acked / f
            ),
            "≤ 1.10× floor",
            Some(ok),
        ));
    }
    let _ = writeln!(
        md,
        "\nThe 50-route row is the median of {} scenes by ratio (watcher / minimal: {}).\n",
        small_ratios.len(),
        small_ratios
            .iter()
            .map(|r| format!("{r:.2}×"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(state_path) = watcher.iter().find(|w| w.routes == 50) {
        let _ = writeln!(
            md,
            "**The alarm path, 50 routes.** The same scene with the members' tunnel alarms \
             (`lbgp:health-alarm`): the primary keeps running and passing its status checks, its alarm \
             goes to `ALARM`, and the `CloudWatch Alarm State Change` event is handled, with \
             `latency_ms: {FAILOVER_LATENCY_MS}` on CloudWatch too. The members' alarms are read in one \
             `DescribeAlarms` beside the fresh read of the members, so the path adds no round trip \
             before the writes. Median of 3 scenes ({}).\n",
            alarm_acks
                .iter()
                .map(|a| human_ms(*a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            md,
            "| path | routes | event → last ack | minimal client (EC2 reads only) | event → response | EC2 reads | DescribeAlarms | ReplaceRoute calls |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for (name, w) in [
            ("state change (`stopped`)", state_path),
            ("alarm (`ALARM`)", &alarm),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | **{}** | {} | {} | {} | {} | {} |",
                w.routes,
                human_ms(w.acked),
                human_ms(w.minimal),
                human_ms(w.took),
                w.reads,
                w.alarm_reads,
                w.replaces
            );
        }
        let ratio = alarm.acked / state_path.acked;
        let ok = ratio <= 1.10 && alarm.moved == 50;
        headlines.push(Headline::new(
            "5. failover, 50 routes, alarm path: event → last ReplaceRoute".to_owned(),
            format!(
                "{} vs state-change path {} ({ratio:.2}×)",
                human_ms(alarm.acked),
                human_ms(state_path.acked)
            ),
            "≤ 1.10× the state-change path",
            Some(ok),
        ));
    }
    let _ = writeln!(
        md,
        "\n**The write path alone, 50 routes.** The same `ReplaceRoute`s without any reads: \
         `lbgp_aws::ec2::Ec2::replace_route` paced by `TokenBucket::ec2_mutating_default()`, with \
         `Ec2::writes_in_flight()` = {product} in flight (a burst: what the watcher and `lbgp_runtime::apply` \
         keep in flight per region), beside {BEFORE} in flight (the fixed width used before, commit \
         `a5829f4`), at three latencies:\n"
    );
    let _ = writeln!(
        md,
        "| routes | in flight | injected latency | first call → last ack | bucket only | actual / bucket only | ReplaceRoute calls |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    );
    for case in &cases {
        let f = floor_at(case.routes, case.latency);
        let _ = writeln!(
            md,
            "| {} | {}{} | {} ms | **{}** | {} | {:.2}× | {} |",
            case.routes,
            case.concurrency,
            if case.concurrency == product {
                " (the product's)"
            } else {
                " (before)"
            },
            case.latency,
            human_ms(case.took),
            human_ms(f),
            case.took / f,
            case.calls,
        );
    }
    let at = |concurrency: usize, latency: u64| {
        cases
            .iter()
            .find(|c| c.concurrency == concurrency && c.latency == latency)
            .map_or(f64::NAN, |c| c.took)
    };
    let rounds = 50usize.div_ceil(BEFORE);
    let _ = writeln!(
        md,
        "\nReading the rows: with no injected latency and {product} in flight, the emulator takes {} \
         to answer 50 calls: moto handles one request at a time (AWS does not), and that queue is \
         most of the write path's time at {FAILOVER_LATENCY_MS} ms ({} with {product} in flight, {} \
         with {BEFORE}). At {SLOW_LATENCY_MS} ms, where the queue is small beside the latency, the \
         width shows: {} with {product} in flight against {} with {BEFORE}, whose burst went out in \
         ⌈50/{BEFORE}⌉ = {rounds} round trips. Past the burst the refill (one call every 200 ms) is \
         far slower than a round trip, so the width stops mattering and the {big}-route failover \
         sits on its floor.\n",
        human_ms(at(product, 0)),
        human_ms(at(product, FAILOVER_LATENCY_MS)),
        human_ms(at(BEFORE, FAILOVER_LATENCY_MS)),
        human_ms(at(product, SLOW_LATENCY_MS)),
        human_ms(at(BEFORE, SLOW_LATENCY_MS)),
    );
    let _ = writeln!(
        md,
        "**The watcher's reads.** After the event it reads the members once to find the group and \
         take its lease, then, under the lease, the members again together with their health and \
         route tables (guessed from the first read; whatever the fresh read adds is read after it), \
         while it loads the group's state from DynamoDB: two EC2 round trips before the writes, as \
         for the minimal client, plus the lease, the state record and the logs.\n"
    );
    Ok(Section {
        markdown: md,
        headlines,
    })
}
