//! Section 9: route styles (`LBGP_ROUTE_STYLE`), `routes` beside
//! `prefix-list`, in the emulator: the EC2 writes (mutating calls) of a
//! failover of 500 CIDRs across 10 tables (the watcher), of a VPC joining a
//! mesh (the injector, specific mode) and of a region's new prefixes
//! reaching its peers (L-BGP). Writes are counted, not paced: the time is
//! what EC2's mutating bucket (burst 50, then 5 a second) makes of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, anyhow};
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::AddPrefixListEntry;
use lbgp_tests::failover_fixtures;
use lbgp_tests::fixtures::{self, TestEnv};
use serde_json::Value;

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

/// One measured scenario, both styles.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) routes: BTreeMap<String, u64>,
    pub(crate) lists: BTreeMap<String, u64>,
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

/// The section's table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut md = String::from(
        "| scenario | style | EC2 writes | calls | paced by EC2's bucket |\n|---|---|---:|---|---:|\n",
    );
    for r in rows {
        for (style, calls) in [("routes", &r.routes), ("prefix-list", &r.lists)] {
            let _ = writeln!(
                md,
                "| {} | {style} | {} | {} | {:.1} s |",
                r.scenario,
                total(calls),
                spell(calls),
                paced(calls)
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

/// The watcher moving 500 CIDRs in 10 tables off a stopped router: 50
/// routes per table, or one route per table toward a list of the 50.
async fn failover(prefix_lists: bool) -> anyhow::Result<BTreeMap<String, u64>> {
    let env = TestEnv::new(&[REGION]).await?;
    let ec2 = env.ec2(REGION);
    let net = failover_fixtures::router_vpc(&ec2, REGION, "10.10.0.0/16").await?;
    let primary = failover_fixtures::launch_member(&ec2, &net.subnets[0], "vpn", 200, &[]).await?;
    let _standby = failover_fixtures::launch_member(&ec2, &net.subnets[1], "vpn", 100, &[]).await?;
    for t in 0..10 {
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
    let config = env.config(&UNPACED).watcher()?;
    let app = failover_watcher::App::new(
        failover_watcher::Watcher {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    let invoke = |payload: Value| async {
        let r = app
            .invoke(payload)
            .await
            .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
        anyhow::Ok(serde_json::to_value(r)?)
    };
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    failover_fixtures::stop(&ec2, &primary.instance).await?;
    env.emulator.reset_calls().await?;
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    writes_of(&env).await
}

/// The injector (specific mode) as a VPC joins a mesh of `n` VPCs, one
/// table each.
async fn join(n: usize, style: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let env = TestEnv::new(&[REGION]).await?;
    let ec2 = env.ec2(REGION);
    let tgw = fixtures::create_tgw(&ec2, Some("prod")).await?;
    let add = |i: usize| {
        let ec2 = ec2.clone();
        let tgw = tgw.clone();
        async move {
            let (vpc, subnet, _) =
                fixtures::create_vpc(&ec2, &format!("10.{}.{}.0/24", i / 256, i % 256)).await?;
            fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
            anyhow::Ok(())
        }
    };
    for i in 0..n {
        add(i).await?;
    }
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
    let invoke = |payload: Value| async {
        let r = app
            .invoke(payload)
            .await
            .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
        anyhow::Ok(serde_json::to_value(r)?)
    };
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    add(n).await?;
    env.emulator.reset_calls().await?;
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    writes_of(&env).await
}

/// L-BGP: `n` new VPCs in one region of a full mesh of three reach its two
/// peers.
async fn originate(n: usize, style: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    let env = TestEnv::new(&regions).await?;
    let mut tgws = Vec::new();
    for (k, r) in regions.iter().enumerate() {
        let ec2 = env.ec2(r);
        let tgw = fixtures::create_tgw(&ec2, Some("prod")).await?;
        let (vpc, subnet, _) = fixtures::create_vpc(&ec2, &format!("10.{}.0.0/16", 200 + k)).await?;
        fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
        tgws.push(tgw);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        fixtures::peer(&env, (regions[a], &tgws[a]), (regions[b], &tgws[b]), true).await?;
    }
    let mut vars = UNPACED.to_vec();
    vars.extend([
        ("LBGP_REGIONS", "us-east-1,eu-west-1,ap-southeast-2"),
        ("LBGP_ROUTE_STYLE", style),
    ]);
    let config = env.config(&vars).propagator()?;
    let app = tgw_route_propagator::App::new(
        tgw_route_propagator::Propagator {
            config: config.clone(),
        },
        env.aws(&config.common)?,
    );
    let invoke = |payload: Value| async {
        let r = app
            .invoke(payload)
            .await
            .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
        anyhow::Ok(serde_json::to_value(r)?)
    };
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    let ec2 = env.ec2(regions[0]);
    for i in 0..n {
        let (vpc, subnet, _) = fixtures::create_vpc(&ec2, &format!("10.1.{i}.0/24")).await?;
        fixtures::attach(&ec2, &tgws[0], &vpc, &subnet).await?;
    }
    env.emulator.reset_calls().await?;
    check(&invoke(failover_fixtures::scheduled()).await?)?;
    writes_of(&env).await
}

/// Section 9.
pub(crate) async fn route_styles(options: &Options) -> anyhow::Result<Section> {
    let (join_n, new_n) = if options.quick { (20, 10) } else { (50, 50) };
    let rows = vec![
        Row {
            scenario: "failover: 500 CIDRs in 10 tables".to_owned(),
            routes: failover(false).await?,
            lists: failover(true).await?,
        },
        Row {
            scenario: format!("a VPC joins a mesh of {join_n} tables"),
            routes: join(join_n, "routes").await?,
            lists: join(join_n, "prefix-list").await?,
        },
        Row {
            scenario: format!("L-BGP: {new_n} new prefixes reach 2 peers"),
            routes: originate(new_n, "routes").await?,
            lists: originate(new_n, "prefix-list").await?,
        },
    ];
    let mut markdown = String::from("## 9. Route styles (`LBGP_ROUTE_STYLE`)\n\n");
    markdown.push_str(
        "EC2 writes counted in the emulator (handlers unpaced); the time is what EC2's mutating bucket \
         (burst 50, then 5 a second per action) makes of the busiest action. A list that outgrows its \
         max entries is resized first (its own ModifyManagedPrefixList: AWS takes no entry change in the same call).\n\n",
    );
    markdown.push_str(&table(&rows));
    let failover = &rows[0];
    let headlines = vec![Headline::new(
        "failover of 500 CIDRs in 10 tables, prefix-list style",
        format!(
            "{} writes ({:.1} s paced) vs {} ({:.1} s)",
            total(&failover.lists),
            paced(&failover.lists),
            total(&failover.routes),
            paced(&failover.routes)
        ),
        "under 1 s",
        Some(paced(&failover.lists) < 1.0),
    )];
    Ok(Section { markdown, headlines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_model_and_the_table() {
        assert_eq!(bucket_seconds(10), 0.0);
        assert_eq!(bucket_seconds(500), 90.0);
        let row = Row {
            scenario: "x".to_owned(),
            routes: BTreeMap::from([("ReplaceRoute".to_owned(), 500)]),
            lists: BTreeMap::from([("ReplaceRoute".to_owned(), 10)]),
        };
        let md = table(&[row]);
        assert!(
            md.contains("| x | routes | 500 | 500 ReplaceRoute | 90.0 s |"),
            "{md}"
        );
        assert!(
            md.contains("| x | prefix-list | 10 | 10 ReplaceRoute | 0.0 s |"),
            "{md}"
        );
    }
}
