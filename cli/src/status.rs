//! `lbgpctl status`: what the DynamoDB table says, read only.
//!
//! - owned routes: the ownership ledger of the injector and the propagator,
//!   per region and route table, for the configured mesh and regions;
//! - conflicts: the last set each function recorded (digest, count, first
//!   entries), and peering attachments without a route table;
//! - leases: holder, age, fencing token, expiry, pending mark;
//! - failover groups: the watcher's saved state (active member, pinned
//!   member, each healthy member's streak, last move);
//! - pending work: leases marked pending and write-ahead intents not yet
//!   confirmed.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use aws_config::SdkConfig;
use lbgp_aws::context::Aws;
use lbgp_aws::store::{Clock, StateItem, SystemClock};
use lbgp_core::LedgerStatus;
use lbgp_core::failover::GroupState;
use lbgp_runtime::notify::Watched;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::render::{heading, table};
use crate::{Output, Verdict};

/// The functions that own routes through the ledger.
const LEDGER_FUNCTIONS: [&str; 2] = [vpc_route_injector::FUNCTION, tgw_route_propagator::FUNCTION];

/// Routes one function owns in one route table.
#[derive(Debug, Clone, Serialize)]
struct OwnedTable {
    function: String,
    region: String,
    route_table_id: String,
    /// Entries, confirmed and pending.
    routes: usize,
    /// Write-ahead intents not yet confirmed.
    pending: usize,
    destinations: Vec<String>,
}

/// A recorded set (conflicts, unassociated peerings).
#[derive(Debug, Clone, Serialize)]
struct RecordedSet {
    function: String,
    scope: String,
    count: u64,
    first: Vec<Value>,
    trigger: Option<String>,
    recorded_at: Option<u64>,
}

/// A lease.
#[derive(Debug, Clone, Serialize)]
struct Lease {
    function: String,
    scope: String,
    /// True while a run holds it (a holder, expiry not passed).
    held: bool,
    holder: Option<String>,
    token: u64,
    age_seconds: Option<u64>,
    expires_in_seconds: Option<u64>,
    pending: bool,
}

/// A failover group's saved state.
#[derive(Debug, Clone, Serialize)]
struct Group {
    region: String,
    group: String,
    active: Option<String>,
    pinned: Option<String>,
    /// Each healthy member's uninterrupted streak, in seconds.
    healthy_for_seconds: BTreeMap<String, u64>,
    no_healthy_alerted: bool,
    last_move_seconds_ago: Option<u64>,
    /// AZ mode: each table's member.
    tables: BTreeMap<String, String>,
    updated_at: Option<u64>,
}

/// Work waiting for a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Pending {
    /// Another trigger asked for a run while the lease was held, or a run
    /// stopped with work left.
    Lease { function: String, scope: String },
    /// A write-ahead intent: the next plan adopts or drops it by reading
    /// the route.
    Intent {
        function: String,
        region: String,
        route_table_id: String,
        destination: String,
        target: String,
    },
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
struct Status {
    table: String,
    mesh: String,
    regions: Vec<String>,
    owned: Vec<OwnedTable>,
    conflicts: Vec<RecordedSet>,
    unassociated_peerings: Vec<RecordedSet>,
    leases: Vec<Lease>,
    groups: Vec<Group>,
    pending: Vec<Pending>,
    /// Mesh VPCs tagged `lbgp:migration` (read from EC2; empty when none).
    migrations: Vec<crate::migration::MigrationRow>,
    /// Why the migration states could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations_error: Option<String>,
}

fn recorded(item: &StateItem) -> RecordedSet {
    let body = item.body.clone().unwrap_or(Value::Null);
    // Earlier releases stored the whole list; this one a digest, a count
    // and the first entries.
    let (count, first) = match &body {
        Value::Array(list) => (list.len() as u64, list.clone()),
        _ => (
            body.get("count").and_then(Value::as_u64).unwrap_or(0),
            body.get("first")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
    };
    RecordedSet {
        function: item.function.clone(),
        scope: item.scope.clone(),
        count,
        first,
        trigger: body.get("trigger").and_then(Value::as_str).map(str::to_owned),
        recorded_at: item.updated_at,
    }
}

async fn read(settings: &Settings, sdk: &SdkConfig) -> anyhow::Result<Status> {
    let common = settings.env().common()?;
    let aws = Aws::new(sdk, &common, Arc::new(SystemClock))?;
    let now = SystemClock.now();
    let mut owned = Vec::new();
    let mut pending = Vec::new();
    for function in LEDGER_FUNCTIONS {
        let ledger = aws
            .store
            .load_ledger(function, &common.mesh, &common.regions)
            .await
            .with_context(|| format!("reading the ledger of {function}"))?;
        let mut tables: BTreeMap<(String, String), OwnedTable> = BTreeMap::new();
        for entry in ledger.iter() {
            let table = &entry.key.table;
            let row = tables
                .entry((table.region.to_string(), table.id.clone()))
                .or_insert_with(|| OwnedTable {
                    function: function.to_owned(),
                    region: table.region.to_string(),
                    route_table_id: table.id.clone(),
                    routes: 0,
                    pending: 0,
                    destinations: vec![],
                });
            row.routes += 1;
            row.destinations.push(entry.key.destination.to_string());
            if entry.status == LedgerStatus::Pending {
                row.pending += 1;
                pending.push(Pending::Intent {
                    function: function.to_owned(),
                    region: table.region.to_string(),
                    route_table_id: table.id.clone(),
                    destination: entry.key.destination.to_string(),
                    target: entry.target.to_string(),
                });
            }
        }
        owned.extend(tables.into_values());
    }
    let records = aws
        .store
        .control_records()
        .await
        .context("listing the leases and state records")?;
    let leases: Vec<Lease> = records
        .leases
        .iter()
        .map(|l| {
            let r = &l.record;
            let held = r.holder.is_some() && r.expires_at >= now;
            Lease {
                function: l.function.clone(),
                scope: l.scope.clone(),
                held,
                holder: r.holder.clone(),
                token: r.token,
                age_seconds: (held && r.started_at > 0).then(|| now.saturating_sub(r.started_at)),
                expires_in_seconds: held.then(|| r.expires_at.saturating_sub(now)),
                pending: r.pending,
            }
        })
        .collect();
    pending.splice(
        0..0,
        leases.iter().filter(|l| l.pending).map(|l| Pending::Lease {
            function: l.function.clone(),
            scope: l.scope.clone(),
        }),
    );
    let states = &records.states;
    let named = |name: &'static str| states.iter().filter(move |s| s.name == name);
    let groups = named(failover_watcher::STATE_RECORD)
        .filter(|s| s.function == failover_watcher::FUNCTION)
        .filter_map(|s| {
            let state: GroupState = serde_json::from_value(s.body.clone()?).ok()?;
            let (region, group) = s.scope.split_once('#').unwrap_or(("-", &s.scope));
            Some(Group {
                region: region.to_owned(),
                group: group.to_owned(),
                active: state.active,
                pinned: state.pinned,
                healthy_for_seconds: state
                    .healthy_since
                    .iter()
                    .map(|(member, since)| (member.clone(), now.saturating_sub(*since)))
                    .collect(),
                no_healthy_alerted: state.no_healthy_alerted,
                last_move_seconds_ago: state.moved_at.map(|at| now.saturating_sub(at)),
                tables: state.tables,
                updated_at: s.updated_at,
            })
        })
        .collect();
    Ok(Status {
        table: common.table.clone(),
        mesh: common.mesh.clone(),
        regions: common.regions.iter().map(ToString::to_string).collect(),
        owned,
        conflicts: named(lbgp_runtime::notify::CONFLICTS_RECORD)
            .map(recorded)
            .collect(),
        unassociated_peerings: named(Watched::UnassociatedPeerings.record())
            .map(recorded)
            .collect(),
        leases,
        groups,
        pending,
        migrations: Vec::new(),
        migrations_error: None,
    })
}

fn seconds(s: Option<u64>) -> String {
    match s {
        None => "-".to_owned(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn entry(value: &Value) -> String {
    let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("*");
    match value {
        Value::String(s) => s.clone(),
        _ => format!(
            "{} {} {} held by {}",
            field("region"),
            field("route_table_id"),
            field("destination"),
            match value.get("held_by") {
                Some(Value::Array(held)) => held
                    .iter()
                    .map(|h| h.as_str().map_or_else(|| h.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                Some(other) => other.to_string(),
                None => "?".to_owned(),
            }
        ),
    }
}

fn print(status: &Status) {
    println!(
        "table {} · mesh {} · regions {}",
        status.table,
        status.mesh,
        status.regions.join(", ")
    );
    heading("Owned routes (ownership ledger)");
    let rows: Vec<Vec<String>> = status
        .owned
        .iter()
        .map(|o| {
            vec![
                o.function.clone(),
                o.region.clone(),
                o.route_table_id.clone(),
                o.routes.to_string(),
                o.pending.to_string(),
                o.destinations.join(", "),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "region",
            "route table",
            "routes",
            "pending",
            "destinations",
        ],
        &rows,
    );
    heading("Conflicts (the last set each function recorded)");
    let mut rows = Vec::new();
    for set in &status.conflicts {
        let more = set.count.saturating_sub(set.first.len() as u64);
        for (i, first) in set.first.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    set.function.clone()
                } else {
                    String::new()
                },
                if i == 0 { set.scope.clone() } else { String::new() },
                entry(first),
            ]);
        }
        if more > 0 {
            rows.push(vec![String::new(), String::new(), format!("… and {more} more")]);
        }
    }
    table(&["function", "scope", "conflict"], &rows);
    if status.unassociated_peerings.iter().any(|s| s.count > 0) {
        println!("  peering attachments without a route table on a side:");
        let rows: Vec<Vec<String>> = status
            .unassociated_peerings
            .iter()
            .filter(|s| s.count > 0)
            .map(|s| {
                vec![
                    s.function.clone(),
                    s.scope.clone(),
                    s.first.iter().map(entry).collect::<Vec<_>>().join(", "),
                ]
            })
            .collect();
        table(&["function", "scope", "attachments"], &rows);
    }
    heading("Leases");
    let rows: Vec<Vec<String>> = status
        .leases
        .iter()
        .map(|l| {
            vec![
                l.function.clone(),
                l.scope.clone(),
                if l.held {
                    l.holder.clone().unwrap_or_default()
                } else {
                    "(free)".to_owned()
                },
                seconds(l.age_seconds),
                seconds(l.expires_in_seconds),
                l.token.to_string(),
                if l.pending { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "scope",
            "holder",
            "age",
            "expires in",
            "token",
            "pending",
        ],
        &rows,
    );
    heading("Failover groups (the watcher's saved state)");
    let rows: Vec<Vec<String>> = status
        .groups
        .iter()
        .map(|g| {
            let streaks: Vec<String> = g
                .healthy_for_seconds
                .iter()
                .map(|(member, s)| format!("{member} {}", seconds(Some(*s))))
                .collect();
            vec![
                g.region.clone(),
                g.group.clone(),
                g.active.clone().unwrap_or_else(|| "-".to_owned()),
                g.pinned.clone().unwrap_or_else(|| "-".to_owned()),
                if streaks.is_empty() {
                    "no healthy member".to_owned()
                } else {
                    streaks.join(", ")
                },
                seconds(g.last_move_seconds_ago),
            ]
        })
        .collect();
    table(
        &["region", "group", "active", "pinned", "healthy for", "last move"],
        &rows,
    );
    heading("Migration (lbgp:migration, read from EC2)");
    if let Some(e) = &status.migrations_error {
        println!("  could not be read: {e}");
    } else {
        let rows: Vec<Vec<String>> = status
            .migrations
            .iter()
            .map(|m| {
                vec![
                    m.state.clone(),
                    m.region.clone(),
                    m.vpc.clone(),
                    m.legacy_group.clone().unwrap_or_else(|| "-".to_owned()),
                    m.overlay_routes.to_string(),
                ]
            })
            .collect();
        table(
            &["state", "region", "vpc", "legacy group", "overlay routes"],
            &rows,
        );
    }
    heading("Pending work");
    if status.pending.is_empty() {
        println!("  (none)");
    }
    for p in &status.pending {
        match p {
            Pending::Lease { function, scope } => println!(
                "  lease {function} {scope}: work marked pending; the next run of {function} picks it up"
            ),
            Pending::Intent {
                function,
                region,
                route_table_id,
                destination,
                target,
            } => println!(
                "  intent {function} {region} {route_table_id} {destination} → {target}: \
                 not confirmed; the next plan adopts or drops it by reading the route"
            ),
        }
    }
}

/// `lbgpctl status`: 2 when work is pending, else 0.
pub async fn status(settings: &Settings, sdk: &SdkConfig, output: Output) -> anyhow::Result<Verdict> {
    let mut status = read(settings, sdk).await?;
    match crate::migration::migration_rows(settings, sdk).await {
        Ok(rows) => status.migrations = rows,
        Err(e) => status.migrations_error = Some(format!("{e:#}")),
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&json!(status))?),
        Output::Table => print(&status),
    }
    Ok(if status.pending.is_empty() {
        Verdict::Converged
    } else {
        Verdict::Pending
    })
}
