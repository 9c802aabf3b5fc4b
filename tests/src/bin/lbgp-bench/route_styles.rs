//! Section 9: route styles (`LBGP_ROUTE_STYLE`), `routes` beside
//! `prefix-list`, in the emulator: the EC2 writes (mutating calls) of a
//! failover of 500 CIDRs across 10 tables (the watcher), of a VPC joining a
//! mesh (the injector, specific mode) and of a region's new prefixes
//! reaching its peers (L-BGP). Writes are counted, not paced: the time is
//! what EC2's mutating bucket (burst 50, then 5 a second) makes of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, anyhow};
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::AddPrefixListEntry;
use futures::StreamExt;
use lbgp_tests::failover_fixtures;
use lbgp_tests::fixtures::{self, TestEnv};
use serde_json::{Value, json};

use crate::Options;
use crate::report::{Headline, Section};

const REGION: &str = "us-east-1";
/// Fast pacing in the handlers: the calls are counted, the bucket modelled.
const UNPACED: [(&str, &str); 3] = [
    ("LBGP_EC2_WRITE_RATE", "10000"),
    ("LBGP_EC2_WRITE_BURST", "10000"),
    ("LBGP_MAX_CHANGES", "100000"),
];

/// Seconds EC2's default mutating bucket (burst 50, refill 5/s) needs for
/// `writes` calls of one action.
pub(crate) fn bucket_seconds(writes: u64) -> f64 {
    writes.saturating_sub(50) as f64 / 5.0
}

/// What one style's run cost: its EC2 writes, and the handler's time for
/// the measured invocation.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Run {
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) took_ms: f64,
}

/// One measured scenario, both styles. `paced`: the handlers ran with
/// EC2's pacing (burst 50, then 5 a second) and 50 ms of latency a call, so
/// the time is the real one; otherwise they ran unpaced and the bucket's
/// floor says what AWS would make of the writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) paced: bool,
    pub(crate) routes: Run,
    pub(crate) lists: Run,
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

/// The slowest action decides the paced time (EC2 buckets are per action).
fn paced(calls: &BTreeMap<String, u64>) -> f64 {
    calls.values().map(|n| bucket_seconds(*n)).fold(0.0, f64::max)
}

fn spell(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(a, n)| format!("{n} {a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// The section's table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut md = String::from(
        "| scenario | style | EC2 writes | calls | handler time | EC2's bucket floor |\n|---|---|---:|---|---:|---:|\n",
    );
    for r in rows {
        for (style, run) in [("routes", &r.routes), ("prefix-list", &r.lists)] {
            let how = if r.paced { "paced, 50 ms a call" } else { "unpaced" };
            let _ = writeln!(
                md,
                "| {} | {style} | {} | {} | **{}** ({how}) | {:.1} s |",
                r.scenario,
                total(&run.calls),
                spell(&run.calls),
                seconds(run.took_ms),
                paced(&run.calls)
            );
        }
    }
    md
}

async fn writes_of(env: &TestEnv) -> anyhow::Result<BTreeMap<String, u64>> {
    Ok(env.emulator.calls().await?.ec2_mutating())
}

fn check(v: &Value) -> anyhow::Result<()> {
    if v["errors"].as_array().is_some_and(|e| !e.is_empty()) || v["refused"].is_string() {
        return Err(anyhow!("handler reported errors: {v}"));
    }
    Ok(())
}

/// A list with `cidrs`, sized for them (entries in calls of 100).
async fn list(ec2: &Ec2Client, name: &str, cidrs: &[String]) -> anyhow::Result<String> {
    let id = ec2
        .create_managed_prefix_list()
        .prefix_list_name(name)
        .max_entries(i32::try_from(cidrs.len().max(1))?)
        .address_family("IPv4")
        .send()
        .await?
        .prefix_list()
        .and_then(|p| p.prefix_list_id())
        .context("prefix list id")?
        .to_owned();
    for (version, chunk) in (1..).zip(cidrs.chunks(100)) {
        let mut call = ec2
            .modify_managed_prefix_list()
            .prefix_list_id(&id)
            .current_version(version);
        for c in chunk {
            call = call.add_entries(AddPrefixListEntry::builder().cidr(c).build());
        }
        call.send().await?;
    }
    Ok(id)
}

/// EC2's default pacing in the handlers (burst 50, then 5 a second).
const PACED: [(&str, &str); 3] = [
    ("LBGP_EC2_WRITE_RATE", "5"),
    ("LBGP_EC2_WRITE_BURST", "50"),
    ("LBGP_MAX_CHANGES", "100000"),
];
/// Latency of every EC2 call in the paced runs, as in section 5.
const LATENCY_MS: u64 = 50;

/// Invokes `app` with `payload`; errors become the bench's.
async fn invoke<H: lbgp_runtime::Reconciler>(
    app: &lbgp_runtime::App<H>,
    payload: Value,
) -> anyhow::Result<Value> {
    let r = app
        .invoke(payload)
        .await
        .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
    let v = serde_json::to_value(r)?;
    check(&v)?;
    Ok(v)
}

/// Times the invocation, with the emulator's call counts reset before it.
async fn measured<H: lbgp_runtime::Reconciler>(
    env: &TestEnv,
    app: &lbgp_runtime::App<H>,
) -> anyhow::Result<Run> {
    env.emulator.reset_calls().await?;
    let start = Instant::now();
    invoke(app, failover_fixtures::scheduled()).await?;
    let took_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(Run {
        calls: writes_of(env).await?,
        took_ms,
    })
}

/// Runs `n` futures made by `make`, eight at a time (setup, untimed).
async fn each<F, Fut>(n: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The watcher moving `tables` × 50 CIDRs off a stopped router, paced as
/// EC2 paces and at 50 ms a call: 50 routes per table, or one route per
/// table toward a list of the 50.
async fn failover(tables: usize, prefix_lists: bool) -> anyhow::Result<Run> {
    let env = TestEnv::new(&[REGION]).await?;
    let ec2 = env.ec2(REGION);
    let net = failover_fixtures::router_vpc(&ec2, REGION, "10.10.0.0/16").await?;
    let primary = failover_fixtures::launch_member(&ec2, &net.subnets[0], "vpn", 200, &[]).await?;
    let _standby = failover_fixtures::launch_member(&ec2, &net.subnets[1], "vpn", 100, &[]).await?;
    for t in 0..tables {
        let rtb = fixtures::create_route_table(&ec2, &net.vpc, &[]).await?;
        let cidrs: Vec<String> = (0..50).map(|i| format!("172.{}.{i}.0/24", 16 + t)).collect();
        if prefix_lists {
            let pl = list(&ec2, &format!("corp-{t}"), &cidrs).await?;
            failover_fixtures::list_route_to_eni(&ec2, &rtb, &pl, &primary.eni).await?;
        } else {
            for c in &cidrs {
                failover_fixtures::route_to_eni(&ec2, &rtb, c, &primary.eni).await?;
            }
        }
    }
    let config = env.config(&PACED).watcher()?;
    let app = failover_watcher::App::new(
        failover_watcher::Watcher {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    invoke(&app, failover_fixtures::scheduled()).await?;
    failover_fixtures::stop(&ec2, &primary.instance).await?;
    env.emulator
        .set_faults(json!({"latency_ms": LATENCY_MS, "services": ["ec2"]}))
        .await?;
    let run = measured(&env, &app).await;
    env.emulator.clear_faults().await?;
    let run = run?;
    env.emulator.stop().await;
    Ok(run)
}

/// The injector (specific mode) as a VPC joins a mesh of `n` VPCs, one
/// table each. The mesh's VPCs sit side by side (their routes aggregate);
/// the newcomer's block is apart from them, so every table needs it.
async fn join(n: usize, style: &str) -> anyhow::Result<Run> {
    let env = TestEnv::new(&[REGION]).await?;
    let ec2 = env.ec2(REGION);
    let tgw = fixtures::create_tgw(&ec2, Some("prod")).await?;
    let add = |cidr: String| {
        let ec2 = ec2.clone();
        let tgw = tgw.clone();
        async move {
            let (vpc, subnet, _) = fixtures::create_vpc(&ec2, &cidr).await?;
            fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
            anyhow::Ok(())
        }
    };
    each(n, |i| add(format!("10.{}.{}.0/24", i / 256, i % 256))).await?;
    let mut vars = UNPACED.to_vec();
    vars.extend([
        ("LBGP_INJECT_MODE", "specific"),
        ("LBGP_ROUTE_STYLE", style),
        ("LBGP_ROUTE_QUOTA", "1000"),
    ]);
    let config = env.config(&vars).injector()?;
    let app = vpc_route_injector::App::new(
        vpc_route_injector::Injector {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    invoke(&app, failover_fixtures::scheduled()).await?;
    add("10.200.0.0/24".to_owned()).await?;
    let run = measured(&env, &app).await?;
    env.emulator.stop().await;
    Ok(run)
}

/// Mesh regions for L-BGP: the first and the peers it reaches.
const STAR: [&str; 9] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
];

/// L-BGP: `n` new VPCs in the first region of a star of `1 + peers`
/// regions (the first peered with each other) reach every peer. The new
/// blocks are every other /24, so no two of them aggregate.
async fn originate(n: usize, peers: usize, style: &str) -> anyhow::Result<Run> {
    let regions = &STAR[..=peers];
    let env = TestEnv::new(regions).await?;
    let mut tgws = Vec::new();
    for (k, r) in regions.iter().enumerate() {
        let ec2 = env.ec2(r);
        let tgw = fixtures::create_tgw(&ec2, Some("prod")).await?;
        let (vpc, subnet, _) = fixtures::create_vpc(&ec2, &format!("10.{}.0.0/16", 200 + k)).await?;
        fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
        tgws.push(tgw);
    }
    for k in 1..regions.len() {
        fixtures::peer(&env, (regions[0], &tgws[0]), (regions[k], &tgws[k]), true).await?;
    }
    let mut vars = UNPACED.to_vec();
    vars.push(("LBGP_ROUTE_STYLE", style));
    let config = env.config(&vars).propagator()?;
    let app = tgw_route_propagator::App::new(
        tgw_route_propagator::Propagator {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    invoke(&app, failover_fixtures::scheduled()).await?;
    let ec2 = env.ec2(regions[0]);
    each(n, |i| {
        let (ec2, tgw) = (ec2.clone(), tgws[0].clone());
        async move {
            let cidr = format!("10.{}.{}.0/24", 64 + i / 128, (i % 128) * 2);
            let (vpc, subnet, _) = fixtures::create_vpc(&ec2, &cidr).await?;
            fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
            anyhow::Ok(())
        }
    })
    .await?;
    let run = measured(&env, &app).await?;
    env.emulator.stop().await;
    Ok(run)
}

/// Section 9, at the sizes of the issue that asked for prefix lists (#21):
/// 500 CIDRs in 10 tables, a mesh of 500 tables, 500 prefixes to 8 peers
/// (`--quick`: 2 tables, 40, 40 to 2).
pub(crate) async fn route_styles(options: &Options) -> anyhow::Result<Section> {
    let (tables, join_n, (new_n, peers)) = if options.quick {
        (2, 40, (40, 2))
    } else {
        (10, 500, (500, 8))
    };
    let rows = vec![
        Row {
            scenario: format!("failover: {} CIDRs in {tables} tables", tables * 50),
            paced: true,
            routes: failover(tables, false).await?,
            lists: failover(tables, true).await?,
        },
        Row {
            scenario: format!("a VPC joins a mesh of {join_n} tables"),
            paced: false,
            routes: join(join_n, "routes").await?,
            lists: join(join_n, "prefix-list").await?,
        },
        Row {
            scenario: format!("L-BGP: {new_n} new prefixes reach {peers} peers"),
            paced: false,
            routes: originate(new_n, peers, "routes").await?,
            lists: originate(new_n, peers, "prefix-list").await?,
        },
    ];
    let mut markdown = String::from("## 9. Route styles (`LBGP_ROUTE_STYLE`)\n\n");
    markdown.push_str(
        "Both styles side by side, in the emulator, one fresh scene each. The failover runs as AWS would: the \
         watcher paced by EC2's mutating bucket (burst 50, then 5 a second per action) and 50 ms on every EC2 \
         call; its handler time is the real one. The mesh scenes run unpaced (a paced routes-style run would \
         take minutes to say what the count says): their handler time is the emulator's, and the bucket's floor \
         is what AWS would make of the writes of the busiest action. A list that outgrows its max entries is \
         resized first (its own ModifyManagedPrefixList: AWS takes no entry change in the same call).\n\n",
    );
    markdown.push_str(&table(&rows));
    let failover = &rows[0];
    let headline = |row: &Row, what: &str, target: &str, pass: Option<bool>| {
        Headline::new(
            format!("{what}, prefix-list style"),
            format!(
                "{} writes ({}, floor {:.1} s) vs routes style {} ({}, {:.1} s)",
                total(&row.lists.calls),
                seconds(row.lists.took_ms),
                paced(&row.lists.calls),
                total(&row.routes.calls),
                seconds(row.routes.took_ms),
                paced(&row.routes.calls)
            ),
            target,
            pass,
        )
    };
    let headlines = vec![
        headline(
            failover,
            &format!(
                "failover of {} CIDRs in {tables} tables (paced, 50 ms a call)",
                tables * 50
            ),
            "under 1 s",
            Some(failover.lists.took_ms < 1000.0),
        ),
        headline(
            &rows[1],
            &rows[1].scenario,
            "fewer writes than routes style",
            Some(total(&rows[1].lists.calls) < total(&rows[1].routes.calls)),
        ),
        headline(
            &rows[2],
            &rows[2].scenario,
            "fewer writes than routes style",
            Some(total(&rows[2].lists.calls) < total(&rows[2].routes.calls)),
        ),
    ];
    Ok(Section { markdown, headlines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_model_and_the_table() {
        assert_eq!(bucket_seconds(10), 0.0);
        assert_eq!(bucket_seconds(500), 90.0);
        let run = |n, took_ms| Run {
            calls: BTreeMap::from([("ReplaceRoute".to_owned(), n)]),
            took_ms,
        };
        let row = Row {
            scenario: "x".to_owned(),
            paced: true,
            routes: run(500, 90_450.0),
            lists: run(10, 520.0),
        };
        let md = table(&[row]);
        assert!(
            md.contains(
                "| x | routes | 500 | 500 ReplaceRoute | **90.5 s** (paced, 50 ms a call) | 90.0 s |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| x | prefix-list | 10 | 10 ReplaceRoute | **520 ms** (paced, 50 ms a call) | 0.0 s |"
            ),
            "{md}"
        );
    }
}
