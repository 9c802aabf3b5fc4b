//! `make demo-migration` (also the last act of `make demo`): a migration
//! off legacy routers in the AWS emulator. Three regions, six VPCs on the
//! legacy network; the injector's legacy overlay, a trace before, a cutover
//! of one VPC after its preflight, a trace after, and a rollback. It exits
//! non-zero if anything did not converge.
#![allow(clippy::print_stdout)]

use anyhow::{Context, ensure};
use lbgp_core::trace::{Hop, Network, probe_addresses};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::vpc_routes;
use lbgp_tests::migration_fixtures::{Scene, scene};
use serde_json::{Value, json};

fn heading(step: &str) {
    println!("\n\x1b[1m━━ {step} \x1b[0m");
}

fn trace(s: &Scene, network: &Network, from: usize, to: usize) -> anyhow::Result<()> {
    let (a, b) = (&s.vpcs[from], &s.vpcs[to]);
    let cidrs = network.vpcs.get(b.id()).cloned().unwrap_or_default();
    let address = *probe_addresses(&cidrs).first().context("a probe address")?;
    let t = network.trace(&a.net.tables[0], address);
    println!("  {} ({}) → {address} ({}):", a.id(), a.net.region, b.net.region);
    for hop in &t.hops {
        let line = match hop {
            Hop::VpcTable { table, route, .. } => format!("VPC table {table}, route {route}"),
            Hop::TgwTable {
                tgw,
                table,
                arrived_on,
                route,
            } => format!("{tgw} table {table} (from {arrived_on}), route {route}"),
            Hop::LegacyRouter { router, vpc } => format!("legacy router {router} in {vpc}"),
        };
        println!("    → {line}");
    }
    println!("    = {}", t.ending);
    ensure!(t.ending.reached(), "not reached: {}", t.ending);
    Ok(())
}

fn summary(response: &Value) -> String {
    let changes = response["changes"].as_array().map(Vec::len).unwrap_or(0);
    format!(
        "{changes} change(s), applied {}, passes {}",
        response["applied"], response["passes"]
    )
}

async fn settle(s: &Scene) -> anyhow::Result<()> {
    for _ in 0..3 {
        s.env.clock.advance(60);
        let r = s.invoke(scheduled()).await?;
        if r["changes"].as_array().is_none_or(Vec::is_empty) {
            return Ok(());
        }
    }
    anyhow::bail!("the injector did not settle")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    heading("A legacy network: 3 regions, 6 VPCs, each with a legacy router, tagged lbgp:migration=legacy");
    let s = scene(1).await?;
    for v in &s.vpcs {
        println!("  {:<15} {} {}  group {}", v.net.region, v.id(), v.cidr, v.group);
    }

    heading("The injector installs the aggregates and the legacy overlay");
    let r = s.invoke(scheduled()).await?;
    ensure!(r["refused"].is_null(), "{r}");
    println!("  {}", summary(&r));
    let x = s.vpcs[0].clone();
    let ec2 = s.env.ec2(&x.net.region);
    println!("  {} {}:", x.id(), x.net.tables[0]);
    for (dest, target) in vpc_routes(&ec2, &x.net.tables[0]).await? {
        println!("    {dest:<16} → {target}");
    }

    heading("Trace before: over the legacy routers");
    let network = s.network().await?;
    trace(&s, &network, 0, 4)?;

    heading(&format!(
        "Cutover of {}: preflight, then its own routes, then the others'",
        x.id()
    ));
    let plan = s
        .invoke(json!({"migrate": {"vpc": x.id(), "to": "migrated"}, "dry_run": true}))
        .await?;
    for c in plan["preflight"].as_array().context("preflight")? {
        let ok = if c["passed"] == true { "pass" } else { "FAIL" };
        println!(
            "  {ok}  {:<16} {}",
            c["check"].as_str().unwrap_or(""),
            c["detail"].as_str().unwrap_or("")
        );
    }
    let stage = |n: &str| {
        plan["changes"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|c| c["reason"].as_str().is_some_and(|r| r.contains(n)))
                    .count()
            })
            .unwrap_or(0)
    };
    println!(
        "  plan: {} in stage 1, {} in stage 2",
        stage("stage 1 of 2"),
        stage("stage 2 of 2")
    );
    let cut = s
        .invoke(json!({"migrate": {"vpc": x.id(), "to": "migrated"}, "dry_run": false}))
        .await?;
    ensure!(cut["refused"].is_null(), "{cut}");
    println!("  {}", summary(&cut));
    settle(&s).await?;

    heading("Trace after: over the transit gateways");
    let network = s.network().await?;
    trace(&s, &network, 0, 4)?;
    trace(&s, &network, 4, 0)?;

    heading(&format!("Rollback of {}", x.id()));
    let back = s
        .invoke(json!({"migrate": {"vpc": x.id(), "to": "legacy"}, "dry_run": false}))
        .await?;
    ensure!(back["refused"].is_null(), "{back}");
    println!("  {}", summary(&back));
    settle(&s).await?;
    let network = s.network().await?;
    trace(&s, &network, 0, 4)?;
    println!("\n  migration act done: every trace reached its VPC");
    Ok(())
}
