//! Section 4, continued: how one start is timed (exec → the first Runtime
//! API poll, with what `/proc` says of the process at that moment), and
//! where the functions' start-up goes, measured from outside the binaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use lbgp_tests::emulator::workspace_root;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::cold_start::{Kind, Subject};
use crate::report::{median, ms};

/// One start, seen from outside at the moment of its first poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct Start {
    /// exec → the first `GET /runtime/invocation/next`.
    pub(crate) wall: Duration,
    /// CPU time of all its threads up to then
    /// (`/proc/<pid>/task/*/schedstat`), in milliseconds.
    pub(crate) cpu_ms: f64,
    /// Threads alive then.
    pub(crate) threads: usize,
    /// Minor page faults up to then (`/proc/<pid>/stat`).
    pub(crate) minor_faults: u64,
    /// Resident memory then (`VmRSS`), KiB.
    pub(crate) rss_kib: u64,
    /// What the process wrote (stdout, then stderr), when asked for.
    pub(crate) output: String,
}

/// What `/proc` says of a live process: (CPU ms of all threads, threads,
/// minor faults, RSS KiB).
fn proc_facts(pid: u32) -> (f64, usize, u64, u64) {
    let mut cpu_ns = 0u64;
    let mut threads = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            threads += 1;
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
                cpu_ns += stat
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    // Fields after the command's closing parenthesis start at field 3.
    let minor_faults = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(10 - 3)?.parse().ok())
        })
        .unwrap_or(0);
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    (cpu_ns as f64 / 1e6, threads, minor_faults, rss_kib)
}

/// Times exec → the first `GET /runtime/invocation/next`, reads what
/// `/proc` says of the process at that moment, then kills it. With
/// `capture`, its stdout and stderr are kept. `Err` with the reason when
/// it never polls.
pub(crate) async fn time_to_first_poll(
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    capture: bool,
) -> anyhow::Result<Result<Start, String>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let output = || if capture { Stdio::piped() } else { Stdio::null() };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = child.id().unwrap_or(0);
    // Drained while it runs, so a chatty start never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text).await;
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let first_poll = async {
        let (mut socket, _) = listener.accept().await?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed before a full request");
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let at = Instant::now();
        let text = String::from_utf8_lossy(&head);
        let line = text.lines().next().unwrap_or_default().to_owned();
        if !line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            bail!("first request was not a poll: {line}");
        }
        anyhow::Ok((at, socket))
    };
    let outcome = tokio::select! {
        polled = first_poll => {
            let (at, socket) = polled?;
            let (cpu_ms, threads, minor_faults, rss_kib) = proc_facts(pid);
            drop(socket);
            Ok(Start { wall: at.duration_since(started), cpu_ms, threads, minor_faults, rss_kib, output: String::new() })
        }
        status = child.wait() => Err(format!("exited ({}) without polling", status?)),
        _ = tokio::time::sleep(Duration::from_secs(30)) => Err("no poll within 30 s".to_owned()),
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut text = stdout.await.unwrap_or_default();
    text.extend(stderr.await.unwrap_or_default());
    Ok(outcome.map(|mut start| {
        start.output = String::from_utf8_lossy(&text).into_owned();
        start
    }))
}

/// `LD_DEBUG=statistics`: glibc's dynamic loader reports its own start-up
/// (cycles) and the relocations it processed.
#[derive(Debug, Clone, Copy, Default)]
struct LoaderStats {
    total_cycles: f64,
    relocation_cycles: f64,
    relative_relocations: f64,
}

fn loader_stats(output: &str) -> Option<LoaderStats> {
    let number = |key: &str| {
        output
            .lines()
            .find_map(|l| l.split_once(key).map(|(_, rest)| rest))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    Some(LoaderStats {
        total_cycles: number("total startup time in dynamic loader:")?,
        relocation_cycles: number("time needed for relocation:")?,
        relative_relocations: number("number of relative relocations:").unwrap_or(0.0),
    })
}

/// The clock the loader's cycles are counted in, MHz (`/proc/cpuinfo`).
fn cpu_mhz() -> Option<f64> {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("cpu MHz"))
            .and_then(|l| l.split_once(':'))
            .and_then(|(_, v)| v.trim().parse().ok())
    })
}

/// Seconds since midnight UTC of a log line's `"timestamp":"…T12:34:56.123456Z"`.
fn log_time(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once("\"timestamp\":\"")?;
    let (_, time) = rest.split_once('T')?;
    let time = time.split(['Z', '+', '"']).next()?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn log_message(line: &str) -> String {
    line.split_once("\"message\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(m, _)| m.to_owned())
        .unwrap_or_default()
}

/// One start with `RUST_LOG=trace`, read back from its JSON log lines:
/// exec → the first line, the first line → the last before the poll, and
/// the longest silence between two lines (ms, and the line before it).
#[derive(Debug, Clone, Default)]
struct Traced {
    to_first_line: f64,
    lines_span: f64,
    longest_gap: f64,
    gap_after: String,
    lines: usize,
}

fn traced(output: &str, exec_at: SystemTime) -> Option<Traced> {
    let exec = exec_at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64() % 86_400.0;
    let lines: Vec<(f64, &str)> = output
        .lines()
        .filter_map(|l| log_time(l).map(|t| (t, l)))
        .take_while(|(_, l)| !l.contains("New event arrived"))
        .collect();
    let (first, last) = (lines.first()?, lines.last()?);
    let mut out = Traced {
        to_first_line: (first.0 - exec) * 1000.0,
        lines_span: (last.0 - first.0) * 1000.0,
        lines: lines.len(),
        ..Traced::default()
    };
    for pair in lines.windows(2) {
        let gap = (pair[1].0 - pair[0].0) * 1000.0;
        if gap > out.longest_gap {
            out.longest_gap = gap;
            out.gap_after = log_message(pair[0].1);
        }
    }
    Some(out)
}

/// The root stores a function is started with beside its default (Mozilla's
/// roots, compiled in): the system's (its bundle and certificate
/// directory, as `rustls-native-certs` finds them when nothing is set, the
/// functions' behaviour before the roots were compiled in), and one
/// certificate (the first of the bundle) with an empty directory, the
/// floor of any store. `None` when the bundle is not found.
struct RootStores {
    system: (String, String),
    one: (String, String),
    certificates: usize,
}

fn root_stores() -> Option<RootStores> {
    let (path, bundle) = [
        ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"),
        ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/tls/certs"),
    ]
    .into_iter()
    .find_map(|(p, d)| Some(((p, d), std::fs::read_to_string(p).ok()?)))?;
    let certificates = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    let end = "-----END CERTIFICATE-----";
    let first = &bundle[bundle.find("-----BEGIN CERTIFICATE-----")?..bundle.find(end)? + end.len()];
    let dir = workspace_root().join("target/bench");
    let (file, empty) = (dir.join("one-root.pem"), dir.join("empty-cert-dir"));
    std::fs::create_dir_all(&empty).ok()?;
    std::fs::write(&file, format!("{first}\n")).ok()?;
    Some(RootStores {
        system: (path.0.to_owned(), path.1.to_owned()),
        one: (file.display().to_string(), empty.display().to_string()),
        certificates,
    })
}

/// Where the start-up goes, seen from outside (no change to the binaries):
/// what `/proc` said of each process at its first poll (the measured starts
/// of the table above), the dynamic loader's own statistics
/// (`LD_DEBUG=statistics`), the log lines' timestamps at `RUST_LOG=trace`,
/// and the functions started again beside themselves with a root store of
/// one certificate.
pub(crate) async fn where_startup_goes(
    md: &mut String,
    subjects: &[Subject],
    runs: usize,
) -> anyhow::Result<()> {
    let measured: Vec<&Subject> = subjects.iter().filter(|s| s.failure.is_none()).collect();
    let rust: Vec<&Subject> = measured
        .iter()
        .copied()
        .filter(|s| s.kind != Kind::Python)
        .collect();
    let echo = measured
        .iter()
        .find(|s| s.kind == Kind::Echo)
        .map(|s| median(&s.times()));
    let mhz = cpu_mhz();
    let mut loader = BTreeMap::new();
    let mut traces: BTreeMap<String, Traced> = BTreeMap::new();
    for s in &rust {
        let mut ld_env = s.env.clone();
        ld_env.insert("LD_DEBUG".to_owned(), "statistics".to_owned());
        let mut trace_env = s.env.clone();
        trace_env.insert("RUST_LOG".to_owned(), "trace".to_owned());
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let mut stats = Vec::new();
        let mut runs_traced = Vec::new();
        for _ in 0..5 {
            if let Ok(start) = time_to_first_poll(&s.program, &args, &ld_env, true).await?
                && let Some(l) = loader_stats(&start.output)
            {
                stats.push(l);
            }
            let exec_at = SystemTime::now();
            if let Ok(start) = time_to_first_poll(&s.program, &args, &trace_env, true).await?
                && let Some(t) = traced(&start.output, exec_at)
            {
                runs_traced.push(t);
            }
        }
        if !stats.is_empty() {
            let pick = |f: fn(&LoaderStats) -> f64| median(&stats.iter().map(f).collect::<Vec<_>>());
            loader.insert(
                s.name(),
                LoaderStats {
                    total_cycles: pick(|l| l.total_cycles),
                    relocation_cycles: pick(|l| l.relocation_cycles),
                    relative_relocations: pick(|l| l.relative_relocations),
                },
            );
        }
        // The run with the median longest gap stands for the five.
        runs_traced.sort_by(|a, b| a.longest_gap.total_cmp(&b.longest_gap));
        if !runs_traced.is_empty() {
            traces.insert(s.name(), runs_traced.swap_remove(runs_traced.len() / 2));
        }
    }
    // Each function beside itself with the system's store and with a store
    // of one certificate, interleaved the same way (one unmeasured round
    // first).
    let store = root_stores();
    let mut store_times: BTreeMap<String, [Vec<f64>; 3]> = BTreeMap::new();
    if let Some(stores) = &store {
        let with = |env: &BTreeMap<String, String>, (file, dir): &(String, String)| {
            let mut e = env.clone();
            e.insert("SSL_CERT_FILE".to_owned(), file.clone());
            e.insert("SSL_CERT_DIR".to_owned(), dir.clone());
            e
        };
        for round in 0..=runs {
            for s in rust.iter().filter(|s| s.kind == Kind::Function) {
                let envs = [
                    s.env.clone(),
                    with(&s.env, &stores.system),
                    with(&s.env, &stores.one),
                ];
                let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
                let mut walls = Vec::new();
                for e in &envs {
                    if let Ok(start) = time_to_first_poll(&s.program, &args, e, false).await? {
                        walls.push(ms(start.wall));
                    }
                }
                if let (true, [a, b, c]) = (round > 0, walls.as_slice()) {
                    let entry = store_times.entry(s.name()).or_default();
                    entry[0].push(*a);
                    entry[1].push(*b);
                    entry[2].push(*c);
                }
            }
        }
    }
    let cycles_ms = |c: f64| {
        mhz.map_or_else(
            || format!("{c:.0} cycles"),
            |m| format!("{:.2} ms", c / m / 1000.0),
        )
    };
    let _ = writeln!(
        md,
        "\n**Where the start-up goes**, measured from outside (the binaries unchanged). At the moment \
         of each measured start's first poll, before it is killed, `/proc/<pid>` gives its CPU time \
         so far (all threads: `task/*/schedstat`), its threads, its minor page faults (`stat`) and \
         its resident memory (`VmRSS`): medians over the {} starts of the table above. The dynamic \
         loader's share is glibc's own count (`LD_DEBUG=statistics`, 5 more starts of each Rust \
         binary; TSC cycles, in ms at the {} MHz of `/proc/cpuinfo`).\n",
        measured.first().map_or(0, |s| s.starts.len()),
        mhz.map_or_else(|| "?".to_owned(), |m| format!("{m:.0}"))
    );
    let _ = writeln!(
        md,
        "| binary | exec → poll | above `lbgp-echo` | CPU, all threads | CPU / wall | threads | minor faults | RSS | dynamic loader (of which relocation) | relative relocations |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for s in &measured {
        let wall = median(&s.times());
        let pick = |f: fn(&Start) -> f64| median(&s.starts.iter().map(f).collect::<Vec<_>>());
        let cpu = pick(|x| x.cpu_ms);
        let loaded = loader.get(&s.name());
        let _ = writeln!(
            md,
            "| `{}`{} | {wall:.1} ms | {} | {cpu:.1} ms | {:.2} | {:.0} | {:.0} | {:.1} MiB | {} | {} |",
            s.name(),
            if s.kind == Kind::Python { " (Python)" } else { "" },
            match (s.kind, echo) {
                (Kind::Python, _) | (_, None) => "—".to_owned(),
                (_, Some(e)) => format!("{:+.1} ms", wall - e),
            },
            cpu / wall,
            pick(|x| x.threads as f64),
            pick(|x| x.minor_faults as f64),
            pick(|x| x.rss_kib as f64) / 1024.0,
            loaded.map_or_else(
                || "—".to_owned(),
                |l| format!(
                    "{} ({})",
                    cycles_ms(l.total_cycles),
                    cycles_ms(l.relocation_cycles)
                )
            ),
            loaded.map_or_else(|| "—".to_owned(), |l| format!("{:.0}", l.relative_relocations)),
        );
    }
    let _ = writeln!(
        md,
        "\nThe log lines' own timestamps: each Rust binary started 5 more times with `RUST_LOG=trace` \
         (the AWS SDK and `lambda_runtime` log every step of building a client and of the first \
         poll; logging this much slows the start, so read the shape, not the totals), the run with \
         the median longest silence shown:\n"
    );
    let _ = writeln!(
        md,
        "| binary | exec → first log line | first → last line before the poll | log lines | longest silence | after the line |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for s in &rust {
        match traces.get(&s.name()) {
            Some(t) => {
                let _ = writeln!(
                    md,
                    "| `{}` | {:.1} ms | {:.1} ms | {} | **{:.1} ms** | `{}` |",
                    s.name(),
                    t.to_first_line,
                    t.lines_span,
                    t.lines,
                    t.longest_gap,
                    t.gap_after
                );
            }
            None => {
                let _ = writeln!(md, "| `{}` | no log lines | | | | |", s.name());
            }
        }
    }
    if let Some(stores) = &store {
        let _ = writeln!(
            md,
            "\nThe root store, tested: each function started again beside itself, {runs} times each, \
             interleaved: with the environment above (compiled-in roots: Amazon Trust Services' five, the default in the commercial partition), with \
             `SSL_CERT_FILE` = `{}` and `SSL_CERT_DIR` = `{}` (the system's store of {} certificates, \
             bundle and directory, read by `rustls-native-certs` as the functions did before their \
             roots were compiled in, and as they still do when an operator sets either variable), and \
             with a store of one certificate and an empty directory (the floor of any store). No \
             request is made during start-up, so this changes no behaviour measured here.\n",
            stores.system.0, stores.system.1, stores.certificates
        );
        let _ = writeln!(
            md,
            "| binary | exec → poll, compiled-in roots | with the system's store | with one certificate | system − compiled-in | compiled-in − one | compiled-in / `lbgp-echo` | system / `lbgp-echo` |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        let to_echo = |m: f64| echo.map_or_else(|| "—".to_owned(), |e| format!("{:.2}×", m / e));
        for (name, [bundled, system, one]) in &store_times {
            let (b, sy, o) = (median(bundled), median(system), median(one));
            let _ = writeln!(
                md,
                "| `{name}` | **{b:.1} ms** | {sy:.1} ms | {o:.1} ms | **{:.1} ms** | {:.1} ms | **{}** | {} |",
                sy - b,
                b - o,
                to_echo(b),
                to_echo(sy)
            );
        }
        let saved: Vec<f64> = store_times
            .values()
            .map(|[b, sy, _]| median(sy) - median(b))
            .collect();
        let functions: Vec<&&Subject> = rust.iter().filter(|s| s.kind == Kind::Function).collect();
        let cpu_share: Vec<f64> = functions
            .iter()
            .map(|s| median(&s.starts.iter().map(|x| x.cpu_ms).collect::<Vec<_>>()) / median(&s.times()))
            .collect();
        let size = |s: &Subject| std::fs::metadata(&s.program).map_or(0.0, |m| m.len() as f64);
        let echo_size = rust
            .iter()
            .find(|s| s.kind == Kind::Echo)
            .map_or(0.0, |s| size(s));
        let size_ratio = median(&functions.iter().map(|s| size(s)).collect::<Vec<_>>()) / echo_size;
        if !saved.is_empty() {
            let (lo, hi) = crate::report::min_max(&saved);
            let (clo, chi) = crate::report::min_max(&cpu_share);
            let _ = writeln!(
                md,
                "\nReading the tables: CPU time is {}% of the functions' wall, so their start \
                 is work, not waiting. Reading the system's store (the bundle and every file of the \
                 certificate directory, each certificate parsed) costs {} ms more than the compiled-in \
                 roots, when the first client is built. {}{}\n",
                crate::report::span(clo * 100.0, chi * 100.0, 0),
                crate::report::span(lo, hi, 1),
                pie_reading(&measured, &loader, mhz),
                floor_reading(&measured, size_ratio),
            );
        }
    }
    Ok(())
}

/// What the injector linked without PIE says of the relocations: the same
/// code as shipped, started beside it, and glibc's own count of them.
fn pie_reading(measured: &[&Subject], loader: &BTreeMap<String, LoaderStats>, mhz: Option<f64>) -> String {
    let of = |kind: Kind| {
        measured
            .iter()
            .find(|s| s.kind == kind && s.program.ends_with(crate::FUNCTIONS[0]))
    };
    let (Some(shipped), Some(no_pie)) = (of(Kind::Function), of(Kind::NoPie)) else {
        return "The injector linked without PIE was not measured, so what the relocations cost is \
                not known from this run. "
            .to_owned();
    };
    let faults = |s: &Subject| median(&s.starts.iter().map(|x| x.minor_faults as f64).collect::<Vec<_>>());
    let (wall, wall_no_pie) = (median(&shipped.times()), median(&no_pie.times()));
    let counted = match (loader.get(&shipped.name()), mhz) {
        (Some(l), Some(m)) => format!(
            " (glibc's own count puts the relocation of all {:.0} at {:.2} ms: it leaves out much \
             of what relocating costs)",
            l.relative_relocations,
            l.relocation_cycles / m / 1000.0
        ),
        _ => String::new(),
    };
    format!(
        "The same injector linked without PIE starts in {wall_no_pie:.1} ms against {wall:.1} ms as \
         shipped ({:+.1} ms, {:.0} minor faults against {:.0}): what resolving its relative \
         relocations at every start costs{counted}. The functions still ship as PIE: the address \
         of their code stays random in a process that may rewrite route tables, worth more than \
         this part of a cold start. ",
        wall_no_pie - wall,
        faults(no_pie),
        faults(shipped),
    )
}

/// The functions beside the SDK's own floor: how much of their start-up
/// the SDK's clients account for.
fn floor_reading(measured: &[&Subject], size_ratio: f64) -> String {
    let Some(floor) = measured.iter().find(|s| s.kind == Kind::SdkFloor) else {
        return format!(
            "What remains above `lbgp-echo` is the rest of building the clients and a binary \
             {size_ratio:.1}× the echo's size to fault in (the minor faults)."
        );
    };
    let floor_ms = median(&floor.times());
    let ratios: Vec<f64> = measured
        .iter()
        .filter(|s| s.kind == Kind::Function)
        .map(|s| median(&s.times()) / floor_ms)
        .collect();
    let (lo, hi) = crate::report::min_max(&ratios);
    format!(
        "`lbgp-sdk-floor`, which builds no more than the injector's clients as the SDK's guide \
         shows, starts in {floor_ms:.1} ms: the functions take {}× its time (the watcher also \
         builds CloudWatch per region). What remains above `lbgp-echo` is the SDK's clients and a \
         binary {size_ratio:.1}× the echo's size to fault in (the minor faults).",
        crate::report::span(lo, hi, 2),
    )
}
