//! `make demo`: a sample three-region mesh in the AWS emulator, driven by
//! the real function binaries through a local Lambda Runtime API.
//!
//! It shows the dry-run plan, the apply, the route tables before and after,
//! then stops the primary VPN router, delivers its state-change event and
//! shows the failover; `lbgpctl plan` confirms the converged mesh and
//! `lbgpctl status` shows the table. It exits non-zero if anything did not
//! converge.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{
    HOME, TestEnv, attach, create_route_table, create_tgw, create_vpc, peer, tgw_route_tables,
    tgw_static_routes, vpc_routes,
};
use lbgp_tests::runtime_api::{LocalLambda, Outcome, dev_binary};
use serde_json::{Value, json};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const ONPREM: &str = "192.168.0.0/16";

struct Vpc {
    region: &'static str,
    name: String,
    id: String,
    tables: Vec<String>,
}

struct Router {
    id: String,
    eni: String,
}

fn bold(s: &str) -> String {
    format!("\x1b[1m{s}\x1b[0m")
}

fn heading(step: &str) {
    println!("\n{}", bold(&format!("━━ {step} ")));
}

fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("  {}", padded.join("  "));
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    line(widths.iter().map(|w| "─".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
    if rows.is_empty() {
        println!("  (none)");
    }
}

fn changes_table(response: &Value) {
    let rows: Vec<Vec<String>> = response["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    [
                        "op",
                        "region",
                        "route_table_id",
                        "destination",
                        "target",
                        "reason",
                    ]
                    .iter()
                    .map(|k| c[*k].as_str().unwrap_or("").to_owned())
                    .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &["op", "region", "table", "destination", "target", "reason"],
        &rows,
    );
}

fn conflicts_table(response: &Value) {
    let rows: Vec<Vec<String>> = response["conflicts"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    vec![
                        c["region"].as_str().unwrap_or("").to_owned(),
                        c["route_table_id"].as_str().unwrap_or("*").to_owned(),
                        c["destination"].as_str().unwrap_or("").to_owned(),
                        c["held_by"].to_string(),
                        c["reason"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        println!("  conflicts (left untouched):");
        table(&["region", "table", "destination", "held by", "why"], &rows);
    }
}

async fn route_tables(env: &TestEnv, vpcs: &[Vpc], names: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for vpc in vpcs {
        for rtb in &vpc.tables {
            let routes = vpc_routes(&env.ec2(vpc.region), rtb).await?;
            for (dest, target) in routes {
                let label = names.get(&target).cloned().unwrap_or(target);
                rows.push(vec![
                    vpc.region.to_owned(),
                    vpc.name.clone(),
                    rtb.clone(),
                    dest,
                    label,
                ]);
            }
        }
    }
    table(&["region", "vpc", "route table", "destination", "target"], &rows);
    Ok(())
}

async fn invoke(lambda: &mut LocalLambda, payload: Value) -> anyhow::Result<Value> {
    match lambda.invoke(payload).await? {
        Outcome::Response(v) => Ok(v),
        Outcome::Error(e) => bail!("function error: {e}"),
    }
}

/// Runs the operator's tool, `lbgpctl`, with the functions' environment;
/// prints what it printed, indented; returns its exit code.
async fn lbgpctl(vars: &BTreeMap<String, String>, args: &[&str]) -> anyhow::Result<i32> {
    let binary = dev_binary("lbgpctl");
    ensure!(
        binary.exists(),
        "{} missing: run `cargo build --bins`",
        binary.display()
    );
    println!("  $ lbgpctl {}", args.join(" "));
    let out = tokio::process::Command::new(&binary)
        .args(args)
        .envs(vars)
        // Its tables say what the functions' warnings would repeat.
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running lbgpctl")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {line}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("{stderr}");
    }
    let code = out.status.code().unwrap_or(-1);
    println!("  (exit code {code})");
    Ok(code)
}

fn count(response: &Value) -> usize {
    response["changes"].as_array().map_or(0, Vec::len)
}

async fn run_instance(ec2: &Ec2Client, subnet: &str, name: &str, priority: &str) -> anyhow::Result<Router> {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(name).build())
        .tags(
            Tag::builder()
                .key("lbgp:failover-group")
                .value("vpn-edge")
                .build(),
        )
        .tags(Tag::builder().key("lbgp:priority").value(priority).build())
        .build();
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .tag_specifications(tags)
        .send()
        .await?;
    let instance = out.instances().first().context("no instance")?;
    Ok(Router {
        id: instance.instance_id().context("instance id")?.to_owned(),
        eni: instance
            .network_interfaces()
            .first()
            .and_then(|n| n.network_interface_id())
            .context("eni")?
            .to_owned(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "{}",
        bold("lbgp demo — a three-region mesh in the AWS emulator, driven through the Lambda Runtime API")
    );
    let env = TestEnv::new(&REGIONS).await?;
    println!(
        "  emulator: {}  (moto + lbgp fidelity layer)",
        env.emulator.endpoint()
    );

    heading("1. Sample mesh");
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut vpcs = Vec::new();
    let mut tgws = BTreeMap::new();
    for (i, region) in REGIONS.iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await?;
        names.insert(tgw.clone(), format!("{tgw} (mesh TGW)"));
        for j in 0..2 {
            let name = format!(
                "{}-{}",
                ["app", "data"][j],
                region.split('-').nth(1).unwrap_or(region)
            );
            let cidr = format!("10.{}.0.0/16", (i + 1) * 10 + j);
            let (vpc, subnet, main) = create_vpc(&ec2, &cidr).await?;
            let private = create_route_table(&ec2, &vpc, &[("Name", "private")]).await?;
            attach(&ec2, &tgw, &vpc, &subnet).await?;
            println!("  {region:<15} {name:<16} {vpc}  {cidr:<14} tables {main}, {private}");
            vpcs.push((
                Vpc {
                    region,
                    name,
                    id: vpc,
                    tables: vec![main, private],
                },
                subnet,
            ));
        }
        tgws.insert(*region, tgw);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let id = peer(
            &env,
            (REGIONS[a], &tgws[REGIONS[a]]),
            (REGIONS[b], &tgws[REGIONS[b]]),
            true,
        )
        .await?;
        println!("  peering {id}: {} ⇄ {}", REGIONS[a], REGIONS[b]);
    }
    // The edge VPC in eu-west-1 reaches on-premises through a pair of VPN
    // routers in two AZs; its tables send 192.168.0.0/16 to the primary.
    let subnets: Vec<String> = vpcs.iter().map(|(_, s)| s.clone()).collect();
    let vpcs: Vec<Vpc> = vpcs.into_iter().map(|(v, _)| v).collect();
    let (edge, edge_subnet) = (&vpcs[2], &subnets[2]);
    let ec2 = env.ec2(edge.region);
    let standby_subnet = ec2
        .create_subnet()
        .vpc_id(&edge.id)
        .cidr_block("10.20.128.0/24")
        .availability_zone("eu-west-1b")
        .send()
        .await
        .context("creating the standby router's subnet")?
        .subnet()
        .and_then(|s| s.subnet_id())
        .context("subnet")?
        .to_owned();
    let primary = run_instance(&ec2, edge_subnet, "vpn-a", "200").await?;
    let standby = run_instance(&ec2, &standby_subnet, "vpn-b", "100").await?;
    names.insert(primary.eni.clone(), format!("{} (vpn-a, primary)", primary.eni));
    names.insert(primary.id.clone(), format!("{} (vpn-a, primary)", primary.id));
    names.insert(standby.eni.clone(), format!("{} (vpn-b, standby)", standby.eni));
    for rtb in &edge.tables {
        ec2.create_route()
            .route_table_id(rtb)
            .destination_cidr_block(ONPREM)
            .network_interface_id(&primary.eni)
            .send()
            .await?;
    }
    println!(
        "  VPN routers in {} ({}): vpn-a {} (primary, eu-west-1a), vpn-b {} (standby, eu-west-1b)",
        edge.name, edge.id, primary.id, standby.id
    );
    println!(
        "  {ONPREM} → vpn-a in both of {}'s tables: a route lbgp did not create",
        edge.name
    );

    heading("2. Route tables before");
    route_tables(&env, &vpcs, &names).await?;

    let mut vars = env.env(&[
        ("LBGP_REGIONS", &REGIONS.join(",")),
        ("LBGP_FAILBACK_AFTER_SECONDS", "0"),
    ]);
    vars.insert("AWS_ENDPOINT_URL".into(), env.emulator.endpoint());
    vars.insert("AWS_REGION".into(), HOME.into());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    vars.insert("RUST_LOG".into(), "warn".into());
    let mut injector = LocalLambda::start(&dev_binary("vpc-route-injector"), &vars).await?;
    let mut propagator = LocalLambda::start(&dev_binary("tgw-route-propagator"), &vars).await?;
    let mut watcher = LocalLambda::start(&dev_binary("failover-watcher"), &vars).await?;
    println!(
        "\n  binaries started under the local Runtime API (cold start: injector {:?}, propagator {:?}, watcher {:?})",
        injector.cold_start, propagator.cold_start, watcher.cold_start
    );

    heading("3. vpc-route-injector — dry run: {\"dry_run\": true}");
    let dry = invoke(&mut injector, json!({"dry_run": true})).await?;
    changes_table(&dry);
    conflicts_table(&dry);

    heading("4. vpc-route-injector — apply (scheduled event)");
    let applied = invoke(&mut injector, scheduled()).await?;
    println!(
        "  {} changes applied, exactly the dry run's: {}",
        count(&applied),
        applied["changes"] == dry["changes"]
    );
    ensure!(
        applied["changes"] == dry["changes"],
        "the apply differs from its dry run"
    );

    heading("5. tgw-route-propagator (L-BGP) — dry run, then apply");
    let dry_p = invoke(&mut propagator, json!({"dry_run": true})).await?;
    changes_table(&dry_p);
    let applied_p = invoke(&mut propagator, scheduled()).await?;
    ensure!(
        applied_p["changes"] == dry_p["changes"],
        "the propagator's apply differs from its dry run"
    );
    let mut tgw_rows = Vec::new();
    for region in REGIONS {
        let ec2 = env.ec2(region);
        for rtb in tgw_route_tables(&ec2, &tgws[region]).await? {
            for (dest, via) in tgw_static_routes(&ec2, &rtb).await? {
                tgw_rows.push(vec![region.to_owned(), rtb.clone(), dest, via]);
            }
        }
    }
    println!("  TGW static routes after:");
    table(
        &["region", "tgw route table", "destination", "peering attachment"],
        &tgw_rows,
    );

    heading("6. Route tables after");
    route_tables(&env, &vpcs, &names).await?;

    heading("7. Second runs — converged, zero writes; lbgpctl plan agrees");
    env.emulator.reset_calls().await?;
    let second_i = invoke(&mut injector, scheduled()).await?;
    let second_p = invoke(&mut propagator, scheduled()).await?;
    let sweep = invoke(&mut watcher, scheduled()).await?;
    let writes = env.emulator.calls().await?.ec2_mutating();
    println!(
        "  injector {} changes, propagator {} changes, watcher {} changes; EC2 writes: {:?}",
        count(&second_i),
        count(&second_p),
        count(&sweep),
        writes
    );
    ensure!(
        count(&second_i) == 0 && count(&second_p) == 0 && count(&sweep) == 0,
        "not converged"
    );
    ensure!(writes.is_empty(), "a converged run wrote to EC2: {writes:?}");
    // The operator's view of the same mesh, from a terminal: the functions'
    // own plan code with the same LBGP_* settings; exit code 0 = converged.
    env.emulator.reset_calls().await?;
    let plan = lbgpctl(&vars, &["plan", "all"]).await?;
    let wrote = env.emulator.calls().await?.mutating();
    ensure!(
        plan == 0,
        "lbgpctl plan says the converged mesh has changes pending (exit {plan})"
    );
    ensure!(wrote.is_empty(), "lbgpctl plan wrote: {wrote:?}");

    heading("8. failover-watcher — vpn-a stops");
    ec2.stop_instances().instance_ids(&primary.id).send().await?;
    let event = json!({"version": "0", "id": "demo-stop", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "123456789012", "time": "2026-11-22T10:05:00Z", "region": "eu-west-1",
        "resources": [format!("arn:aws:ec2:eu-west-1:123456789012:instance/{}", primary.id)],
        "detail": {"instance-id": primary.id, "state": "stopped"}});
    env.emulator.reset_calls().await?;
    let t0 = Instant::now();
    let failover = invoke(&mut watcher, event.clone()).await?;
    let took = t0.elapsed();
    changes_table(&failover);
    for g in failover["groups"].as_array().into_iter().flatten() {
        println!(
            "  group {} in {}: decision {}, active {}",
            g["group"].as_str().unwrap_or("?"),
            g["vpc"].as_str().unwrap_or("?"),
            g["decision"].as_str().unwrap_or("?"),
            g["active"].as_str().unwrap_or("?")
        );
    }
    let replaces = env.emulator.calls().await?.count("ec2", "ReplaceRoute");
    println!("  {replaces} ReplaceRoute calls, event to last acknowledged write: {took:?}");
    route_tables(&env, &vpcs[2..3], &names).await?;
    for rtb in &edge.tables {
        let routes = vpc_routes(&ec2, rtb).await?;
        ensure!(
            routes.get(ONPREM) == Some(&standby.eni),
            "{rtb} still points {ONPREM} at {:?}",
            routes.get(ONPREM)
        );
    }
    let again = invoke(&mut watcher, event).await?;
    ensure!(count(&again) == 0, "the same event moved routes again");

    heading("9. lbgpctl status — what the table says");
    let status = lbgpctl(&vars, &["status"]).await?;
    ensure!(status == 0, "lbgpctl status reports pending work (exit {status})");

    heading("Summary");
    let conflicts = applied["conflicts"].as_array().map_or(0, Vec::len);
    table(
        &["what", "result"],
        &[
            vec!["VPC routes injected".into(), count(&applied).to_string()],
            vec![
                "TGW routes propagated over peering".into(),
                count(&applied_p).to_string(),
            ],
            vec!["conflicts reported, left untouched".into(), conflicts.to_string()],
            vec![
                "routes moved by the failover".into(),
                count(&failover).to_string(),
            ],
            vec!["writes on the second runs".into(), "0".into()],
            vec!["demo wall time".into(), format!("{:.1?}", started.elapsed())],
        ],
    );
    println!("\n{}", bold("converged ✔"));
    Ok(())
}
