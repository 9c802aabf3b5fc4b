//! `lbgp-bench`: the benchmarks behind `make bench`. Measures lbgp against
//! its floor and against what users would otherwise run, side by side in one
//! run, and writes the tables to `docs/BENCHMARKS.md`.
//!
//! 1. planner at scale (`lbgp_core::plan` on synthetic meshes; peak memory in
//!    a child process per case, from `/proc/self/status`);
//! 2. prefix math (`aggregate` against Python's `collapse_addresses`);
//! 3. API efficiency (the handlers against the emulator, calls counted);
//! 4. cold start (exec to first Runtime API poll, beside a bare
//!    `lambda_runtime` echo binary and Python+boto3; where the start-up goes)
//!    and arm64 zip sizes;
//! 5. failover latency (the watcher's handler, paced, at 50 ms emulator latency);
//! 6. end to end (the release binaries under the local Runtime API);
//! 7. the write-ahead ledger (a converge from empty with bursts, with the
//!    protocol before them, and as a naive script would do it);
//! 8. L-BGP's shortest paths at scale (`LBGP_ROUTING=shortest-path` over 30
//!    regions in a random partial mesh, beside `direct` on the full mesh);
//! 9. route styles (`LBGP_ROUTE_STYLE`): EC2 writes of a failover, a VPC
//!    joining and new prefixes reaching peers, `routes` beside `prefix-list`.
//!
//! One module per section, in the order above (`planner`, `prefix_math`,
//! `api`, `cold_start` with `startup`, `failover`, `end_to_end`, `ledger`,
//! `paths`);
//! `report` holds the summary types, number formats and deterministic
//! inputs, `mesh` the emulator mesh of sections 3, 6 and 7.
//!
//! `lbgp-bench [--out FILE] [--only 1,2,…] [--quick]`; `make bench` builds
//! what it needs first. `lbgp-bench plan-memory CASE` and `lbgp-bench
//! paths-memory CASE` are the child modes.
#![forbid(unsafe_code)]

mod api;
mod cold_start;
mod end_to_end;
mod failover;
mod ledger;
mod mesh;
mod paths;
mod planner;
mod prefix_math;
mod report;
mod route_styles;
mod startup;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use lbgp_tests::emulator::workspace_root;
use tokio::process::Command;

use crate::report::{Section, verdict};

/// The function binaries, in the order of the tables.
pub(crate) const FUNCTIONS: [&str; 3] = ["vpc-route-injector", "tgw-route-propagator", "failover-watcher"];

/// The commands `make bench` runs (keep in step with the Makefile's `bench`).
const MAKE_COMMANDS: &str = "\
make build        # only when an arm64 zip is missing: an existing one is reused (see section 4)
cargo rustc --release -p vpc-route-injector --bin vpc-route-injector -- -C link-arg=-no-pie
cp target/release/vpc-route-injector target/bench/no-pie/   # section 4's PIE check
cargo build --release -p vpc-route-injector -p tgw-route-propagator -p failover-watcher -p lbgp-sdk-floor --bins
cargo build --release -p lbgp-echo   # section 4's bare lambda_runtime floor
cargo run --quiet --profile bench-fast -p lbgp-tests --bin lbgp-bench -- --out docs/BENCHMARKS.md";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("plan-memory") {
        let name = args.get(1).context("plan-memory needs a case name")?;
        return planner::plan_memory_child(name);
    }
    if args.first().map(String::as_str) == Some("paths-memory") {
        let name = args.get(1).context("paths-memory needs a case name")?;
        return paths::paths_memory_child(name);
    }
    let options = Options::parse(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(options))
}

// ------------------------------------------------------------------ options

#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) out: PathBuf,
    pub(crate) only: Option<Vec<u8>>,
    pub(crate) quick: bool,
    pub(crate) release_dir: PathBuf,
    pub(crate) python: PathBuf,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let root = workspace_root();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let mut options = Options {
            out: root.join("docs/BENCHMARKS.md"),
            only: None,
            quick: false,
            release_dir: target.join("release"),
            python: lbgp_tests::emulator::emulator_python(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--out" => options.out = PathBuf::from(value()?),
                "--only" => {
                    options.only = Some(
                        value()?
                            .split(',')
                            .map(|s| s.trim().parse::<u8>().with_context(|| format!("--only: {s}")))
                            .collect::<anyhow::Result<_>>()?,
                    )
                }
                "--quick" => options.quick = true,
                "--release-dir" => options.release_dir = PathBuf::from(value()?),
                "--python" => options.python = PathBuf::from(value()?),
                "-h" | "--help" => {
                    println!(
                        "lbgp-bench [--out FILE] [--only 1,2,3,4,5,6,7,8,9] [--quick] [--release-dir DIR] [--python PY]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other} (see --help)"),
            }
        }
        Ok(options)
    }

    pub(crate) fn runs(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    pub(crate) fn wants(&self, section: u8) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&section))
    }
}

// --------------------------------------------------------------------- run

async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let mut sections: Vec<(u8, Section)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    // CPU measurements first, while nothing else of ours runs.
    for number in 1..=9u8 {
        if !options.wants(number) {
            continue;
        }
        let t = Instant::now();
        eprintln!("lbgp-bench: section {number}…");
        let result = match number {
            1 => planner::planner(&options).await,
            2 => prefix_math::prefix_math(&options).await,
            3 => api::api_efficiency(&options).await,
            4 => cold_start::cold_start(&options).await,
            5 => failover::failover(&options).await,
            6 => end_to_end::end_to_end(&options).await,
            7 => ledger::ledger(&options).await,
            8 => paths::paths(&options).await,
            _ => route_styles::route_styles(&options).await,
        };
        match result {
            Ok(section) => sections.push((number, section)),
            Err(e) => {
                eprintln!("lbgp-bench: section {number} failed: {e:#}");
                failures.push(format!("section {number}: {e:#}"));
                sections.push((
                    number,
                    Section {
                        markdown: format!(
                            "## {number}. (failed)\n\nThis section could not be measured in this run: `{e:#}`\n"
                        ),
                        headlines: vec![],
                    },
                ));
            }
        }
        eprintln!(
            "lbgp-bench: section {number} took {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let doc = document(&options, &sections, started, &load_before).await;
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.out, doc).with_context(|| format!("writing {}", options.out.display()))?;
    eprintln!(
        "lbgp-bench: wrote {} in {:.0} s",
        options.out.display(),
        started.elapsed().as_secs_f64()
    );
    for (_, s) in &sections {
        for h in &s.headlines {
            eprintln!("  {:<58} {:<34} {}", h.measure, h.result, verdict(h.pass));
        }
    }
    if !failures.is_empty() {
        bail!("{} section(s) failed: {}", failures.len(), failures.join("; "));
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

async fn command_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output().await {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "?".to_owned(),
    }
}

async fn document(
    options: &Options,
    sections: &[(u8, Section)],
    started: Instant,
    load_before: &str,
) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".to_owned());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let root = workspace_root();
    let root_s = root.display().to_string();
    let commit = command_line("git", &["-C", &root_s, "rev-parse", "--short=12", "HEAD"]).await;
    let dirty = !command_line(
        "git",
        &["-C", &root_s, "status", "--porcelain", "--untracked-files=no"],
    )
    .await
    .is_empty();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).await;
    let rustc = command_line("rustc", &["--version"]).await;
    let python_version = command_line(&options.python.display().to_string(), &["--version"]).await;
    let boto3 = command_line(
        &options.python.display().to_string(),
        &[
            "-c",
            "import boto3, botocore; print(f'boto3 {boto3.__version__}, botocore {botocore.__version__}')",
        ],
    )
    .await;
    // `make bench` writes its start time, so the total includes the builds.
    let total = std::fs::read_to_string(root.join("target/bench/started"))
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|t0| {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            // Only trust a stamp from this make run (not a stale file).
            (now - t0 >= started.elapsed().as_secs_f64() - 1.0 && now - t0 < 4.0 * 3600.0).then_some(now - t0)
        });

    let mut doc = String::new();
    let _ = writeln!(doc, "# Benchmarks\n");
    let _ = writeln!(
        doc,
        "Generated by `make bench` ([`tests/src/bin/lbgp-bench/`](../tests/src/bin/lbgp-bench/main.rs), \
         [`scripts/bench_python.py`](../scripts/bench_python.py)). Do not edit by hand: run `make bench` \
         again. Every ratio below compares two measurements taken in the same run, side by side, on \
         this noisy 2-core machine (other builds may have been running: see the load average).\n"
    );
    let _ = writeln!(doc, "## Machine and run\n");
    let _ = writeln!(doc, "| | |\n| --- | --- |");
    let _ = writeln!(doc, "| date | {date} |");
    let _ = writeln!(
        doc,
        "| git commit | `{commit}`{} |",
        if dirty {
            " (working tree had uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(doc, "| CPU | {cpu} |");
    let _ = writeln!(doc, "| nproc | {nproc} |");
    let _ = writeln!(doc, "| memory | {memory} |");
    let _ = writeln!(doc, "| kernel | Linux {kernel} (x86_64) |");
    let _ = writeln!(doc, "| Rust | {rustc} |");
    let _ = writeln!(doc, "| Python | {python_version}, {boto3} |");
    let _ = writeln!(
        doc,
        "| load average (1/5/15 min) | {load_before} at the start, {} at the end |",
        load_average()
    );
    let _ = writeln!(
        doc,
        "| duration | measurements {:.0} s{} |",
        started.elapsed().as_secs_f64(),
        total
            .map(|t| format!("; whole `make bench` including builds {:.0} s", t))
            .unwrap_or_default()
    );
    let _ = writeln!(doc, "\n## Commands\n");
    let _ = writeln!(
        doc,
        "```sh\nmake bench\n# which runs:\n{MAKE_COMMANDS}\n# and lbgp-bench runs, beside its own measurements:\n\
         .venv/bin/python scripts/bench_python.py collapse --input target/bench/prefixes-1m.txt \\\n    \
         --output target/bench/collapsed-python.txt --runs 3\n\
         .venv/bin/python scripts/bench_python.py coldstart [--bare]     # timed from exec to first poll\n\
         .venv/bin/python scripts/bench_python.py converge --routes target/bench/ledger-FUNCTION.json \\\n    \
         --table lbgp --home-region us-east-1                            # section 7's naive script\n\
         .venv/bin/python tests/emulator/lbgp_emulator.py --port 0       # one emulator per scenario\n\
         lbgp-bench plan-memory CASE                                      # one child per planner case\n\
         lbgp-bench paths-memory CASE                                     # one child per section 8 case\n```\n"
    );
    let _ = writeln!(
        doc,
        "One section alone: `cargo run --profile bench-fast -p lbgp-tests --bin lbgp-bench -- --only 2 --out /tmp/b.md`.\n"
    );
    let _ = writeln!(doc, "## Summary\n");
    let _ = writeln!(doc, "| measure | result | target | |\n| --- | --- | --- | --- |");
    for (_, s) in sections {
        for h in &s.headlines {
            let _ = writeln!(
                doc,
                "| {} | {} | {} | {} |",
                h.measure,
                h.result,
                h.target,
                verdict(h.pass)
            );
        }
    }
    let _ = writeln!(doc);
    for (_, s) in sections {
        let _ = writeln!(doc, "{}", s.markdown);
    }
    doc
}
