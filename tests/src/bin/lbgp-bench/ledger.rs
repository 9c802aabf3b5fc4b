//! Section 7: the write-ahead ledger. A small mesh converges from empty,
//! through the injector and through the propagator, three ways side by side
//! against fresh emulators: with the ledger's write-ahead writes in bursts
//! (the product), one transaction per intent and per confirmation (the
//! protocol before bursts), and as a naive script would do it (one
//! unconditional `PutItem` per route beside the same EC2 creates).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use lbgp_runtime::apply::LedgerBatching;
use lbgp_tests::emulator::{Calls, workspace_root};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{self, HOME, TestEnv};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::Options;
use crate::mesh::{Handler, Mesh, build_mesh_of, change_count, check_clean, service_split};
use crate::planner::MESH_PREFIXES;
use crate::report::{Headline, Section, human_ms, median, min_max, ms, verdict};

// ================================================= 7. write-ahead ledger

/// Four regions, fully meshed: each TGW table learns 3 peers × 11 VPC
/// CIDRs (132 TGW routes), and each VPC's main table the 3 mesh prefixes
/// (132 VPC routes).
const LEDGER_REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];
const LEDGER_VPCS: usize = 11;
/// `LBGP_EC2_WRITE_BURST`'s default: the width of a burst (and of the
/// writes in flight per region).
const BURST: usize = 50;

/// How a converge is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The product: a burst's intents in one transaction, its
    /// confirmations in another.
    Bursts,
    /// The protocol before: each change's intent and confirmation in
    /// transactions of their own.
    PerChange,
    /// `scripts/bench_python.py converge`: CreateRoute + PutItem per route.
    Naive,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Bursts, Mode::PerChange, Mode::Naive];

    fn label(self) -> &'static str {
        match self {
            Mode::Bursts => "lbgp, bursts (`LedgerBatching::Bursts`, the default)",
            Mode::PerChange => "lbgp, per change (`LedgerBatching::PerChange`, the protocol before)",
            Mode::Naive => "naive script (boto3: create + unconditional `PutItem` per route)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Mode::Bursts => "bursts",
            Mode::PerChange => "per change",
            Mode::Naive => "naive script",
        }
    }
}

/// Which function converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Injector,
    Propagator,
}

impl Function {
    const ALL: [Function; 2] = [Function::Propagator, Function::Injector];

    fn name(self) -> &'static str {
        match self {
            Function::Injector => vpc_route_injector::FUNCTION,
            Function::Propagator => tgw_route_propagator::FUNCTION,
        }
    }

    /// The routes a converge from empty creates, per region.
    fn writes_per_region(self) -> usize {
        match self {
            Function::Injector => LEDGER_VPCS * MESH_PREFIXES.len(),
            Function::Propagator => (LEDGER_REGIONS.len() - 1) * LEDGER_VPCS,
        }
    }

    fn writes(self) -> usize {
        self.writes_per_region() * LEDGER_REGIONS.len()
    }

    /// The ledger transactions the write-ahead protocol needs for the
    /// converge: an intent and a confirmation per burst (or per change).
    fn transactions(self, mode: Mode) -> u64 {
        let per_region = match mode {
            Mode::Bursts => 2 * self.writes_per_region().div_ceil(BURST),
            Mode::PerChange => 2 * self.writes_per_region(),
            Mode::Naive => 0,
        };
        (per_region * LEDGER_REGIONS.len()) as u64
    }

    fn handler(self, env: &TestEnv, batching: LedgerBatching) -> anyhow::Result<Handler> {
        let extra = [("LBGP_MAX_CHANGES", "100000")];
        Ok(match self {
            Function::Injector => {
                let config = env.config(&extra).injector()?;
                let aws = env.aws(&config.common)?;
                Handler::Injector(
                    vpc_route_injector::App::new(vpc_route_injector::Injector { config }, aws)
                        .with_ledger_batching(batching),
                )
            }
            Function::Propagator => {
                let config = env.config(&extra).propagator()?;
                let aws = env.aws(&config.common)?;
                Handler::Propagator(
                    tgw_route_propagator::App::new(tgw_route_propagator::Propagator { config }, aws)
                        .with_ledger_batching(batching),
                )
            }
        })
    }
}

/// One converge from empty, counted.
#[derive(Debug, Clone)]
struct Converge {
    ec2_writes: u64,
    transactions: u64,
    put_items: u64,
    ddb_calls: u64,
    wall: f64,
    /// The naive script's whole process (interpreter, boto3, clients).
    process: Option<f64>,
    /// EC2 writes of a second run (0 when converged; naive: not run).
    second_writes: Option<u64>,
    /// Start → the emulator's answer to the first EC2 write, ms (lbgp:
    /// reads, lease and plan; naive: not timed from the same start).
    to_first_write: Option<f64>,
    /// The first EC2 write's answer → the last's, ms.
    writes_span: f64,
}

/// From the emulator's call log: (first, last) answer to an EC2 write, in
/// seconds since the epoch.
async fn ec2_write_answers(env: &TestEnv) -> anyhow::Result<(f64, f64)> {
    let answers: Vec<f64> = env
        .emulator
        .call_log()
        .await?
        .iter()
        .filter(|c| c["service"] == "ec2" && c["mutating"] == true)
        .filter_map(|c| c["answered_at"].as_f64())
        .collect();
    let (first, last) = min_max(&answers);
    if answers.is_empty() {
        bail!("no EC2 write in the emulator's call log");
    }
    Ok((first, last))
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What a converge left behind, with the emulator's ids replaced by names
/// that are the same in every emulator: (table, destination, target).
type Snapshot = BTreeSet<(String, String, String)>;

fn names(mesh: &Mesh) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for site in &mesh.sites {
        names.insert(site.tgw.clone(), format!("tgw/{}", site.region));
        names.insert(site.tgw_rtb.clone(), format!("tgw-rtb/{}", site.region));
        for (i, vpc) in site.vpcs.iter().enumerate() {
            names.insert(vpc.main.clone(), format!("rtb/{}/{i}", site.region));
        }
    }
    for (id, a, b) in &mesh.peerings {
        names.insert(id.clone(), format!("peering/{a}~{b}"));
    }
    names
}

async fn snapshot(env: &TestEnv, mesh: &Mesh) -> anyhow::Result<Snapshot> {
    let names = names(mesh);
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| format!("?{id}"));
    let mut out = Snapshot::new();
    for site in &mesh.sites {
        let ec2 = env.ec2(site.region);
        for vpc in &site.vpcs {
            for (dest, target) in fixtures::vpc_routes(&ec2, &vpc.main).await? {
                if target != "local" {
                    out.insert((name(&vpc.main), dest, name(&target)));
                }
            }
        }
        for (dest, target) in fixtures::tgw_static_routes(&ec2, &site.tgw_rtb).await? {
            out.insert((name(&site.tgw_rtb), dest, name(&target)));
        }
    }
    Ok(out)
}

fn counted(calls: &Calls) -> (u64, u64, u64, u64) {
    let (r, w) = service_split(calls, "dynamodb");
    (
        calls.ec2_mutating().values().sum(),
        calls.count("dynamodb", "TransactWriteItems"),
        calls.count("dynamodb", "PutItem"),
        r + w,
    )
}

/// The function's converge from empty through its handler, then a second
/// run that must write nothing.
async fn converge_lbgp(
    env: &TestEnv,
    function: Function,
    batching: LedgerBatching,
) -> anyhow::Result<Converge> {
    let handler = function.handler(env, batching)?;
    env.emulator.reset_calls().await?;
    let (t, since) = (Instant::now(), SystemTime::now());
    let response = handler.invoke(scheduled()).await?;
    let wall = ms(t.elapsed());
    let (first, last) = ec2_write_answers(env).await?;
    let what = format!("{} ({batching:?})", function.name());
    check_clean(&what, &response)?;
    if change_count(&response) != function.writes() {
        bail!(
            "{what}: {} changes from empty, {} expected",
            change_count(&response),
            function.writes()
        );
    }
    let (ec2_writes, transactions, put_items, ddb_calls) = counted(&env.emulator.calls().await?);
    env.emulator.reset_calls().await?;
    let again = handler.invoke(scheduled()).await?;
    check_clean(&what, &again)?;
    let second = env.emulator.calls().await?.ec2_mutating().values().sum::<u64>();
    if change_count(&again) != 0 {
        bail!("{what}: the second run planned {} changes", change_count(&again));
    }
    Ok(Converge {
        ec2_writes,
        transactions,
        put_items,
        ddb_calls,
        wall,
        process: None,
        second_writes: Some(second),
        to_first_write: Some((first - epoch_secs(since)) * 1000.0),
        writes_span: (last - first) * 1000.0,
    })
}

/// The naive script over the creates the function's dry run lists, in the
/// same emulator.
async fn converge_naive(options: &Options, env: &TestEnv, function: Function) -> anyhow::Result<Converge> {
    let handler = function.handler(env, LedgerBatching::Bursts)?;
    let plan = handler.invoke(json!({"dry_run": true})).await?;
    check_clean(function.name(), &plan)?;
    let routes: Vec<Value> = plan["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    json!({"region": c["region"], "route_table_id": c["route_table_id"],
                           "destination": c["destination"], "target": c["target"], "op": c["op"]})
                })
                .collect()
        })
        .unwrap_or_default();
    if routes.len() != function.writes() || routes.iter().any(|r| r["op"] != "create") {
        bail!(
            "{}: the dry run planned {} changes, {} creates expected: {plan}",
            function.name(),
            routes.len(),
            function.writes()
        );
    }
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("ledger-{}.json", function.name()));
    std::fs::write(&file, serde_json::to_vec_pretty(&routes)?)?;
    let endpoint = env.emulator.endpoint();
    env.emulator.reset_calls().await?;
    let t = Instant::now();
    let out = Command::new(&options.python)
        .arg(workspace_root().join("scripts/bench_python.py"))
        .arg("converge")
        .arg("--routes")
        .arg(&file)
        .args(["--table", &env.table, "--home-region", HOME])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", HOME)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {}", options.python.display()))?;
    let process = ms(t.elapsed());
    if !out.status.success() {
        bail!("bench_python.py converge failed: {}", out.status);
    }
    let py: Value = serde_json::from_slice(&out.stdout).context("bench_python.py converge output")?;
    if py["routes"].as_u64() != Some(function.writes() as u64) {
        bail!("bench_python.py converge: {py}");
    }
    let (ec2_writes, transactions, put_items, ddb_calls) = counted(&env.emulator.calls().await?);
    let (first, last) = ec2_write_answers(env).await?;
    Ok(Converge {
        ec2_writes,
        transactions,
        put_items,
        ddb_calls,
        wall: py["seconds"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        process: Some(process),
        second_writes: None,
        to_first_write: None,
        writes_span: (last - first) * 1000.0,
    })
}

/// One mode in a fresh emulator: the mesh, then the propagator's converge
/// and the injector's; what they left behind.
async fn round(
    options: &Options,
    mode: Mode,
) -> anyhow::Result<(BTreeMap<&'static str, Converge>, Snapshot)> {
    let env = TestEnv::new(&LEDGER_REGIONS).await?;
    let mesh = build_mesh_of(&env, &LEDGER_REGIONS, LEDGER_VPCS, false).await?;
    let mut out = BTreeMap::new();
    for function in Function::ALL {
        let c = match mode {
            Mode::Bursts => converge_lbgp(&env, function, LedgerBatching::Bursts).await?,
            Mode::PerChange => converge_lbgp(&env, function, LedgerBatching::PerChange).await?,
            Mode::Naive => converge_naive(options, &env, function).await?,
        };
        out.insert(function.name(), c);
    }
    let snap = snapshot(&env, &mesh).await?;
    env.emulator.stop().await;
    Ok((out, snap))
}

pub(crate) async fn ledger(options: &Options) -> anyhow::Result<Section> {
    let rounds = options.runs(3, 1);
    // (mode, function) → the converges of every round.
    let mut runs: BTreeMap<(usize, &'static str), Vec<Converge>> = BTreeMap::new();
    let mut reference: Option<Snapshot> = None;
    let mut same_state = true;
    for r in 0..rounds {
        // Each round starts with another mode, so drift in the machine's
        // load is spread over the three.
        for k in 0..Mode::ALL.len() {
            let m = (r + k) % Mode::ALL.len();
            let (converges, snap) = round(options, Mode::ALL[m]).await?;
            match &reference {
                None => reference = Some(snap),
                Some(first) => same_state &= *first == snap,
            }
            for (function, c) in converges {
                runs.entry((m, function)).or_default().push(c);
            }
        }
    }
    let routes = reference.as_ref().map_or(0, BTreeSet::len);
    if !same_state {
        bail!("the three ways did not leave the same routes behind");
    }

    let mut md = String::new();
    let mut headlines = Vec::new();
    let _ = writeln!(md, "## 7. Write-ahead ledger: converge from empty\n");
    let _ = writeln!(
        md,
        "A small mesh converges from empty, {rounds} round(s), each way in a fresh emulator per round \
         (the order of the three rotates from round to round): {} regions ({}), one TGW tagged \
         `lbgp:mesh=prod` each with {LEDGER_VPCS} attached VPCs (main route table only), the TGWs fully \
         meshed by peering. `tgw-route-propagator` creates {} TGW routes ({} tables × {} peers × \
         {LEDGER_VPCS} prefixes), then `vpc-route-injector` {} VPC routes ({} tables × {} prefixes), \
         each through its handler (`App::new(…).with_ledger_batching(…)`), unpaced \
         (`LBGP_EC2_WRITE_RATE=0`; with {} writes per region the default bucket, burst {BURST}, would \
         hold none back), `LBGP_MAX_CHANGES=100000`. Three ways:\n\n\
         * **bursts** (the product): before a burst of route writes (up to `LBGP_EC2_WRITE_BURST` = \
         {BURST} in flight per region) one fenced `TransactWriteItems` records the intents, after it \
         one confirms: 2 × ⌈writes / burst⌉ transactions per region;\n\
         * **per change** (the protocol before, `LedgerBatching::PerChange`): each change's intent \
         and its confirmation in a transaction of their own, the region's writes still a burst in \
         flight: 2 × writes;\n\
         * **naive script** (`scripts/bench_python.py converge`, boto3 against the same emulator): \
         for each route the function's dry run lists (the same creates), one `CreateRoute` / \
         `CreateTransitGatewayRoute`, then one unconditional `PutItem`, one route after the other. \
         No reads, no lease, no fence, no intent: a crash between the two calls leaves a route \
         nobody recorded, and two runs at once overwrite each other. Its wall is the loop alone \
         (clients made before the clock starts); the whole process, interpreter and `import boto3` \
         included, is in brackets.\n\n\
         lbgp's wall is invoke → response of one scheduled run, reads, lease, plan and notification \
         included. Calls are the emulator's counts for that run; DynamoDB calls are all of them \
         (lease, ledger reads, transactions, state). Medians over the rounds; the counts were the \
         same in every round. After each converge a second lbgp run must plan nothing and write \
         nothing, and the routes each way left behind (read back from the emulator, ids named by \
         the mesh) must be the same: {}.\n",
        LEDGER_REGIONS.len(),
        LEDGER_REGIONS.join(", "),
        Function::Propagator.writes(),
        LEDGER_REGIONS.len(),
        LEDGER_REGIONS.len() - 1,
        Function::Injector.writes(),
        LEDGER_REGIONS.len() * LEDGER_VPCS,
        MESH_PREFIXES.len(),
        Function::Propagator
            .writes_per_region()
            .max(Function::Injector.writes_per_region()),
        if same_state {
            format!("the same {routes} routes, every round")
        } else {
            "**they differed**".to_owned()
        }
    );
    let _ = writeln!(
        md,
        "| function | way | EC2 writes | `TransactWriteItems` | expected | `PutItem` | DynamoDB calls | DynamoDB calls / naive | wall (median, min–max) | wall / naive | start → first EC2 write | first → last EC2 write | second run: EC2 writes |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut readings = Vec::new();
    for function in Function::ALL {
        let get = |m: usize| {
            runs.get(&(m, function.name()))
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let naive = get(2);
        let naive_wall = median(&naive.iter().map(|c| c.wall).collect::<Vec<_>>());
        let naive_ddb = naive.first().map_or(0, |c| c.ddb_calls);
        let mut cells: Vec<(Mode, u64, f64, u64, f64)> = Vec::new();
        let mut counts_ok = true;
        for (m, mode) in Mode::ALL.into_iter().enumerate() {
            let cs = get(m);
            let Some(first) = cs.first() else { continue };
            let stable = cs.iter().all(|c| {
                (c.ec2_writes, c.transactions, c.put_items, c.ddb_calls)
                    == (
                        first.ec2_writes,
                        first.transactions,
                        first.put_items,
                        first.ddb_calls,
                    )
            });
            let walls: Vec<f64> = cs.iter().map(|c| c.wall).collect();
            let (lo, hi) = min_max(&walls);
            let wall = median(&walls);
            let expected = function.transactions(mode);
            let exact = first.transactions == expected && first.ec2_writes == function.writes() as u64;
            let converged = cs.iter().all(|c| c.second_writes.is_none_or(|w| w == 0));
            counts_ok &= stable && exact && converged;
            let process: Vec<f64> = cs.iter().filter_map(|c| c.process).collect();
            let to_first: Vec<f64> = cs.iter().filter_map(|c| c.to_first_write).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | **{}** | {expected} {} | {} | {}{} | {:.2}× | **{}** ({}–{}){} | **{:.2}×** | {} | {} | {} |",
                function.name(),
                mode.label(),
                first.ec2_writes,
                first.transactions,
                verdict(Some(first.transactions == expected)),
                first.put_items,
                first.ddb_calls,
                if stable { "" } else { " (varied)" },
                first.ddb_calls as f64 / naive_ddb as f64,
                human_ms(wall),
                human_ms(lo),
                human_ms(hi),
                if process.is_empty() {
                    String::new()
                } else {
                    format!(" [process {}]", human_ms(median(&process)))
                },
                wall / naive_wall,
                if to_first.is_empty() {
                    "—".to_owned()
                } else {
                    human_ms(median(&to_first))
                },
                human_ms(median(&cs.iter().map(|c| c.writes_span).collect::<Vec<_>>())),
                match first.second_writes {
                    Some(_) if converged => "0: converged".to_owned(),
                    Some(w) => format!("**{w}**"),
                    None => "— (same routes as lbgp's)".to_owned(),
                },
            );
            let span = median(&cs.iter().map(|c| c.writes_span).collect::<Vec<_>>());
            cells.push((mode, first.transactions, wall, first.ddb_calls, span));
        }
        let cell = |mode: Mode| cells.iter().find(|c| c.0 == mode).copied();
        if let (Some(b), Some(p), Some(n)) = (cell(Mode::Bursts), cell(Mode::PerChange), cell(Mode::Naive)) {
            headlines.push(Headline::new(
                format!(
                    "7. ledger, `{}` converge from empty ({} routes)",
                    function.name(),
                    function.writes()
                ),
                format!(
                    "{} transactions, {} ({:.2}× the naive script); {}: {} transactions, {} ({:.2}×); naive script {} `PutItem`, {}",
                    b.1,
                    human_ms(b.2),
                    b.2 / n.2,
                    p.0.short(),
                    p.1,
                    human_ms(p.2),
                    p.2 / n.2,
                    function.writes(),
                    human_ms(n.2),
                ),
                "2 × ⌈writes / burst⌉ transactions per region; same routes; second run 0 writes",
                Some(counts_ok && same_state),
            ));
            readings.push(format!(
                "`{}`: {} transactions against {} per change ({:.0}× fewer), {} DynamoDB calls against \
                 {} and the naive script's {}; its route writes took {} first to last against {} per \
                 change and {} for the naive script, and the whole run {} against {} and {}",
                function.name(),
                b.1,
                p.1,
                p.1 as f64 / b.1.max(1) as f64,
                b.3,
                p.3,
                n.3,
                human_ms(b.4),
                human_ms(p.4),
                human_ms(n.4),
                human_ms(b.2),
                human_ms(p.2),
                human_ms(n.2),
            ));
        }
    }
    let _ = writeln!(
        md,
        "\nReading the rows. {}. Per change, the ledger's transactions of one lease go one at a time \
         (each is fenced by the lease item, and DynamoDB cancels concurrent transactions on one \
         item), two per route, so they pace the route writes however many are in flight; in bursts, \
         two per region bracket up to {BURST} writes. The naive script sends one call after another \
         and reads nothing, so the wall ratios to it mostly say how the emulator (one Python \
         process answering one request at a time, on this 2-core machine with whatever else runs) \
         serves {BURST} requests in flight against one; they move with the machine's load, the \
         counts do not. What the naive script leaves out is the point of the ledger: it reads \
         nothing, so it cannot tell its routes from anyone else's, and a crash between its two \
         calls, or two runs at once, leaves routes nobody recorded.\n",
        readings.join("; ")
    );
    Ok(Section {
        markdown: md,
        headlines,
    })
}
