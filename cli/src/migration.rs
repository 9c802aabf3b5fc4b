//! `migrate`, `adopt` and `trace`: a migration off legacy routers from a
//! terminal (docs/MIGRATION.md). `migrate` and `adopt` are the injector's
//! own manual invokes (a dry run without `--yes`); `trace` runs the path
//! tracer on what the injector reads, and writes nothing.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use aws_config::SdkConfig;
use clap::ValueEnum;
use lbgp_aws::context::Aws;
use lbgp_aws::store::SystemClock;
use lbgp_core::report::InvokeResponse;
use lbgp_core::trace::Hop;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::invoke::{Answer, Function, invoke, operator_holder};
use crate::{Output, Verdict, render};

/// Where a migration takes a VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum To {
    /// Onto the mesh (cutover).
    Migrated,
    /// Back onto the legacy routers (rollback).
    Legacy,
}

impl To {
    fn tag(self) -> &'static str {
        match self {
            To::Migrated => "migrated",
            To::Legacy => "legacy",
        }
    }
}

/// 1 when refused or failed, 2 when a dry run shows work, else 0.
fn verdict(answer: &Answer, dry_run: bool) -> Verdict {
    match &answer.result {
        Err(_) => Verdict::Failed,
        Ok(r) if r.refused.is_some() || !r.errors.is_empty() => Verdict::Failed,
        Ok(r) if dry_run && (!r.changes.is_empty() || !r.adopted.is_empty()) => Verdict::Pending,
        Ok(_) => Verdict::Converged,
    }
}

fn print_preflight(r: &InvokeResponse) {
    if r.preflight.is_empty() {
        return;
    }
    render::heading("preflight");
    let rows: Vec<Vec<String>> = r
        .preflight
        .iter()
        .map(|c| {
            vec![
                if c.passed { "pass" } else { "FAIL" }.to_owned(),
                c.check.clone(),
                c.detail.clone(),
            ]
        })
        .collect();
    render::table(&["", "check", "detail"], &rows);
}

async fn run(settings: &Settings, sdk: &SdkConfig, payload: Value, dry_run: bool, output: Output) -> Verdict {
    let result = invoke(Function::Injector, settings, sdk, payload, &operator_holder()).await;
    let answer = Answer {
        function: Function::Injector,
        result,
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer.to_json()).unwrap_or_default()
        ),
        Output::Table => {
            if let Ok(r) = &answer.result {
                print_preflight(r);
                if !r.adopted.is_empty() {
                    render::heading(if dry_run { "would adopt" } else { "adopted" });
                    let rows: Vec<Vec<String>> = r
                        .adopted
                        .iter()
                        .map(|a| {
                            vec![
                                a.region.clone(),
                                a.route_table_id.clone(),
                                a.destination.clone(),
                                a.target.clone(),
                            ]
                        })
                        .collect();
                    render::table(&["region", "route table", "destination", "target"], &rows);
                }
            }
            render::answer(&answer, dry_run);
        }
    }
    verdict(&answer, dry_run)
}

/// `lbgpctl migrate VPC --to migrated|legacy [--yes]`.
pub async fn migrate(
    settings: &Settings,
    sdk: &SdkConfig,
    vpc: &str,
    to: To,
    yes: bool,
    output: Output,
) -> anyhow::Result<Verdict> {
    let payload = json!({"migrate": {"vpc": vpc, "to": to.tag()}, "dry_run": !yes});
    let verdict = run(settings, sdk, payload, !yes, output).await;
    if output == Output::Table && !yes && verdict == Verdict::Pending {
        println!(
            "\npreflight passed — run it with: lbgpctl migrate {vpc} --to {} --yes",
            to.tag()
        );
    }
    Ok(verdict)
}

/// `lbgpctl adopt VPC [--yes]`.
pub async fn adopt(
    settings: &Settings,
    sdk: &SdkConfig,
    vpc: &str,
    yes: bool,
    output: Output,
) -> anyhow::Result<Verdict> {
    let payload = json!({"adopt": {"vpc": vpc}, "dry_run": !yes});
    let verdict = run(settings, sdk, payload, !yes, output).await;
    if output == Output::Table && !yes && verdict == Verdict::Pending {
        println!("\nrecord them as lbgp's with: lbgpctl adopt {vpc} --yes");
    }
    Ok(verdict)
}

/// `lbgpctl trace --from VPC --to ADDRESS`: every route table of the VPC
/// toward the address, hop by hop. 0 when every table reaches it, 1 if not.
pub async fn trace(
    settings: &Settings,
    sdk: &SdkConfig,
    from: &str,
    to: IpAddr,
    output: Output,
) -> anyhow::Result<Verdict> {
    let config = settings
        .env()
        .injector()
        .context("the injector's configuration")?;
    let aws = Aws::new(sdk, &config.common, Arc::new(SystemClock))?;
    let injector = vpc_route_injector::Injector { config };
    let (network, unreadable) = vpc_route_injector::migration::network(&injector, &aws).await?;
    for e in &unreadable {
        eprintln!("lbgpctl: {}: could not be read: {}", e.region, e.error);
    }
    let traces: Vec<_> = network
        .tables_of(from)
        .map(|t| network.trace(&t.id, to))
        .collect();
    anyhow::ensure!(
        !traces.is_empty(),
        "{from}: no route table read (is it attached to a mesh TGW in LBGP_REGIONS?)"
    );
    let reached = traces.iter().all(|t| t.ending.reached());
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&traces)?),
        Output::Table => {
            for t in &traces {
                render::heading(&format!("{} → {to}", t.from));
                let rows: Vec<Vec<String>> = t
                    .hops
                    .iter()
                    .map(|hop| match hop {
                        Hop::VpcTable { table, vpc, route } => {
                            vec!["VPC table".into(), format!("{table} ({vpc})"), route.to_string()]
                        }
                        Hop::TgwTable {
                            tgw,
                            table,
                            arrived_on,
                            route,
                        } => vec![
                            "TGW table".into(),
                            format!("{table} of {tgw}, from {arrived_on}"),
                            route.to_string(),
                        ],
                        Hop::LegacyRouter { router, vpc } => {
                            vec!["legacy router".into(), format!("{router} ({vpc})"), "-".into()]
                        }
                    })
                    .collect();
                render::table(&["hop", "where", "route"], &rows);
                println!("  = {}", t.ending);
            }
        }
    }
    Ok(if reached && unreadable.is_empty() {
        Verdict::Converged
    } else {
        Verdict::Failed
    })
}

/// A VPC in a migration, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationRow {
    /// Its region.
    pub region: String,
    /// `vpc-…`.
    pub vpc: String,
    /// The `lbgp:migration` tag as it reads (`legacy`, `migrated`, or a
    /// value the injector refuses).
    pub state: String,
    /// `lbgp:legacy-group`, if set.
    pub legacy_group: Option<String>,
    /// Overlay routes of lbgp's in its tables (the ledger's count).
    pub overlay_routes: usize,
}

/// Every mesh VPC tagged `lbgp:migration`, as the injector reads them;
/// read-only.
pub async fn migration_rows(settings: &Settings, sdk: &SdkConfig) -> anyhow::Result<Vec<MigrationRow>> {
    let config = settings
        .env()
        .injector()
        .context("the injector's configuration")?;
    let aws = Aws::new(sdk, &config.common, Arc::new(SystemClock))?;
    let regions = config.common.regions.clone();
    let ledger = aws
        .store
        .load_ledger(vpc_route_injector::FUNCTION, &config.common.mesh, &regions)
        .await?;
    let injector = vpc_route_injector::Injector { config };
    let view = injector.read(&aws, &regions, &ledger, true).await;
    if let Some(e) = view.unreadable.first() {
        anyhow::bail!("{}: {}", e.region, e.error);
    }
    let table_vpc: std::collections::BTreeMap<&str, &str> = view
        .regions
        .iter()
        .flat_map(|r| r.tables.iter().map(|t| (t.id.as_str(), t.vpc_id.as_str())))
        .collect();
    let mut rows: Vec<MigrationRow> = view
        .legacy
        .vpcs
        .iter()
        .filter_map(|v| {
            let state = v.tags.get(lbgp_core::migrate::TAG_MIGRATION)?;
            Some(MigrationRow {
                region: v.region.to_string(),
                vpc: v.vpc.id.clone(),
                state: state.clone(),
                legacy_group: v.legacy_group().map(str::to_owned),
                overlay_routes: ledger
                    .iter()
                    .filter(|e| lbgp_core::migrate::is_overlay_target(&e.target))
                    .filter(|e| table_vpc.get(e.key.table.id.as_str()) == Some(&v.vpc.id.as_str()))
                    .count(),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.state, &a.region, &a.vpc).cmp(&(&b.state, &b.region, &b.vpc)));
    Ok(rows)
}
