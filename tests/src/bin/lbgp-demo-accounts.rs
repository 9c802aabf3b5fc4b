//! `make demo-accounts` (also an act of `make demo`): a mesh of two
//! regions and three accounts in the AWS emulator. The TGWs are the home
//! (network) account's, shared through RAM; two application accounts
//! attach a VPC each, one also runs a router pair. The injector, L-BGP and
//! the failover watcher work in every account through its member role;
//! then one account's role goes and it is frozen while the rest converges.
//! It exits non-zero if anything did not converge.
#![allow(clippy::print_stdout)]

use anyhow::{Context, ensure};
use lbgp_tests::accounts_fixtures::{
    HOME_ACCOUNT, accept_attachment, create_member_role, delete_member_role, ec2_of, member_sdk, share_tgw,
};
use lbgp_tests::events::scheduled;
use lbgp_tests::failover_fixtures::{launch_router, next_hop, route_to_eni, router_vpc, stop};
use lbgp_tests::fixtures::{
    TestEnv, attach, create_tgw, create_vpc, peer, tgw_route_tables, tgw_static_routes,
};
use serde_json::Value;

const APP: &str = "222222222222";
const DATA: &str = "333333333333";

fn heading(step: &str) {
    println!("\n\x1b[1m━━ {step} \x1b[0m");
}

/// The changes of a response, counted per account.
fn per_account(response: &Value) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for c in response["changes"].as_array().into_iter().flatten() {
        *counts
            .entry(c["account"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} in {a}")).collect();
    format!(
        "{} change(s): {}",
        counts.values().sum::<usize>(),
        parts.join(", ")
    )
}

async fn invoke<R: lbgp_runtime::Reconciler>(app: &lbgp_runtime::App<R>) -> anyhow::Result<Value> {
    let r = app
        .invoke(scheduled())
        .await
        .map_err(|d| anyhow::anyhow!("{}: {}", d.error_type, d.error_message))?;
    Ok(serde_json::to_value(r)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let env = TestEnv::new(&["us-east-1", "eu-west-1"]).await?;
    heading("Three accounts: the network account (home) and two application accounts");
    for a in [APP, DATA] {
        create_member_role(&env, a).await?;
    }
    println!("  home {HOME_ACCOUNT} runs lbgp; {APP} and {DATA} have the member role lbgp-member");
    let (us, eu) = (env.ec2("us-east-1"), env.ec2("eu-west-1"));
    let tgw_us = create_tgw(&us, Some("prod")).await?;
    let tgw_eu = create_tgw(&eu, Some("prod")).await?;
    peer(&env, ("us-east-1", &tgw_us), ("eu-west-1", &tgw_eu), true).await?;
    println!("  TGWs {tgw_us} (us-east-1) and {tgw_eu} (eu-west-1), peered, shared through RAM");
    let mut spokes = Vec::new();
    for (account, region, tgw, cidr) in [
        (APP, "us-east-1", &tgw_us, "10.50.0.0/16"),
        (DATA, "eu-west-1", &tgw_eu, "10.60.0.0/16"),
    ] {
        share_tgw(&env, region, tgw, account).await?;
        let ec2 = ec2_of(&member_sdk(&env, account).await?, region);
        let (vpc, subnet, rtb) = create_vpc(&ec2, cidr).await?;
        let attachment = attach(&ec2, tgw, &vpc, &subnet).await?;
        accept_attachment(&env.ec2(region), &attachment).await?;
        println!("  account {account}: {vpc} {cidr} in {region}, attached");
        spokes.push((ec2, rtb, tgw.clone()));
    }
    let app_ec2 = ec2_of(&member_sdk(&env, APP).await?, "us-east-1");
    let routers = router_vpc(&app_ec2, "us-east-1", "10.70.0.0/16").await?;
    let primary = launch_router(&app_ec2, &routers.subnets[0], "vpn", Some(20), false).await?;
    let standby = launch_router(&app_ec2, &routers.subnets[1], "vpn", Some(10), false).await?;
    for rtb in &routers.tables {
        route_to_eni(&app_ec2, rtb, "192.168.100.0/24", &primary.eni).await?;
    }
    println!(
        "  account {APP}: router pair {} / {} for 192.168.100.0/24",
        primary.instance, standby.instance
    );

    let members = format!("{APP},{DATA}");
    let settings = [("LBGP_ACCOUNTS", members.as_str())];
    let injector = {
        let config = env.config(&settings).injector()?;
        vpc_route_injector::App::new(
            vpc_route_injector::Injector {
                config: config.clone(),
            },
            env.aws(&config.common)?,
        )
    };
    let propagator = {
        let config = env.config(&settings).propagator()?;
        tgw_route_propagator::App::new(
            tgw_route_propagator::Propagator {
                config: config.clone(),
            },
            env.aws(&config.common)?,
        )
    };
    let watcher = {
        let config = env.config(&settings).watcher()?;
        failover_watcher::App::new(
            failover_watcher::Watcher {
                config: config.clone(),
            },
            env.aws(&config.common)?,
        )
    };

    heading("vpc-route-injector: each spoke table, in its own account");
    let r = invoke(&injector).await?;
    ensure!(r["errors"].as_array().is_some_and(Vec::is_empty), "{r}");
    println!("  {}", per_account(&r));
    for (ec2, rtb, tgw) in &spokes {
        let routes = lbgp_tests::fixtures::vpc_routes(ec2, rtb).await?;
        ensure!(routes.get("10.0.0.0/8") == Some(tgw), "{rtb}: {routes:?}");
    }

    heading("tgw-route-propagator: each TGW learns the other region's VPCs, whoever owns them");
    let r = invoke(&propagator).await?;
    ensure!(r["errors"].as_array().is_some_and(Vec::is_empty), "{r}");
    for (ec2, tgw, region) in [(&us, &tgw_us, "us-east-1"), (&eu, &tgw_eu, "eu-west-1")] {
        let rtb = tgw_route_tables(ec2, tgw)
            .await?
            .first()
            .cloned()
            .context("a TGW table")?;
        let statics = tgw_static_routes(ec2, &rtb).await?;
        println!("  {region} {tgw}: {:?}", statics.keys().collect::<Vec<_>>());
    }

    heading(&format!("failover-watcher: the primary router in {APP} stops"));
    invoke(&watcher).await?;
    stop(&app_ec2, &primary.instance).await?;
    let r = invoke(&watcher).await?;
    println!("  {}", per_account(&r));
    for rtb in &routers.tables {
        let hop = next_hop(&app_ec2, rtb, "192.168.100.0/24")
            .await?
            .context("a route")?;
        ensure!(hop.eni.as_deref() == Some(standby.eni.as_str()), "{rtb}: {hop:?}");
    }
    println!(
        "  every route toward 192.168.100.0/24 now on {}",
        standby.instance
    );

    heading("A second run of each: zero writes");
    env.emulator.reset_calls().await?;
    invoke(&injector).await?;
    invoke(&propagator).await?;
    invoke(&watcher).await?;
    let writes = env.emulator.calls().await?.ec2_mutating();
    ensure!(writes.is_empty(), "{writes:?}");
    println!("  EC2 writes: none");

    heading(&format!(
        "Account {DATA}'s role is deleted: reported, frozen; the rest converges"
    ));
    delete_member_role(&env, DATA).await?;
    // A new process (a cold start): its first call in that account assumes
    // the role, and is refused. (A running one keeps its session until the
    // credentials expire, as on AWS.)
    let injector = {
        let config = env.config(&settings).injector()?;
        vpc_route_injector::App::new(
            vpc_route_injector::Injector {
                config: config.clone(),
            },
            env.aws(&config.common)?,
        )
    };
    let r = invoke(&injector).await?;
    for e in r["errors"].as_array().into_iter().flatten() {
        println!(
            "  error [{}]: {}",
            e["account"].as_str().unwrap_or("-"),
            e["error"].as_str().unwrap_or("")
        );
    }
    ensure!(
        r["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["account"] == DATA)),
        "{r}"
    );
    println!("\n  accounts act done: three accounts converged, the denied one left as it was");
    Ok(())
}
