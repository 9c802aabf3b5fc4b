//! Section 4: cold start (exec to the first Runtime API poll, the functions
//! beside a bare `lambda_runtime` echo binary and Python+boto3) and the
//! arm64 zip sizes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use lbgp_tests::emulator::workspace_root;
use lbgp_tests::fixtures::HOME;
use tokio::process::Command;

use crate::report::{Headline, Section, median, min_max, ms, verdict};
use crate::startup::{Start, time_to_first_poll, where_startup_goes};
use crate::{FUNCTIONS, Options};

// ================================================ 4. cold start and size

fn lambda_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("TZ", ":UTC"),
        ("AWS_REGION", HOME),
        ("AWS_DEFAULT_REGION", HOME),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("LBGP_REGIONS", "us-east-1,eu-west-1,ap-southeast-2"),
        ("LBGP_TABLE", "lbgp"),
        ("LBGP_MESH", "prod"),
        // template.yaml gives every function the topic.
        ("LBGP_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:lbgp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// (zip bytes, unzipped bootstrap bytes, ELF machine, zip modified).
async fn zip_facts(zip: &Path) -> anyhow::Result<(u64, u64, &'static str, SystemTime)> {
    let meta = std::fs::metadata(zip)?;
    let out = Command::new("unzip")
        .arg("-p")
        .arg(zip)
        .arg("bootstrap")
        .output()
        .await
        .context("unzip")?;
    if !out.status.success() || out.stdout.len() < 20 {
        bail!("{}: no bootstrap inside", zip.display());
    }
    let machine = match u16::from_le_bytes([out.stdout[18], out.stdout[19]]) {
        0xB7 => "aarch64",
        0x3E => "x86_64",
        _ => "other",
    };
    Ok((meta.len(), out.stdout.len() as u64, machine, meta.modified()?))
}

/// The newest modification time of the Rust sources of the functions.
fn newest_source(dir: &Path, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            newest_source(&path, newest);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml")
            && let Ok(m) = entry.metadata().and_then(|m| m.modified())
            && m > *newest
        {
            *newest = m;
        }
    }
}

/// What kind of binary a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One of the three functions.
    Function,
    /// `lbgp-echo`: a bare `lambda_runtime` function, the Rust floor.
    Echo,
    /// `lbgp-sdk-floor`: the echo after building the SDK clients the
    /// first invocation calls, as the SDK's guide shows.
    SdkFloor,
    /// `vpc-route-injector` linked again without PIE: the same code, its
    /// relative relocations resolved at link time.
    NoPie,
    /// Python, with or without boto3.
    Python,
}

/// One binary started again and again.
pub(crate) struct Subject {
    label: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) kind: Kind,
    /// The environment it starts in.
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) starts: Vec<Start>,
    pub(crate) failure: Option<String>,
}

impl Subject {
    /// The binary's file name; the injector linked without PIE, which has
    /// the same file name, is told apart.
    pub(crate) fn name(&self) -> String {
        let file = self.program.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        match self.kind {
            Kind::NoPie => format!("{file}, no PIE"),
            _ => file.to_owned(),
        }
    }

    pub(crate) fn times(&self) -> Vec<f64> {
        self.starts.iter().map(|s| ms(s.wall)).collect()
    }
}

/// Where `make bench` keeps the injector linked without PIE
/// (`target/bench/no-pie`), beside the release directory.
pub(crate) fn no_pie_dir(options: &Options) -> PathBuf {
    options
        .release_dir
        .parent()
        .map_or_else(|| workspace_root().join("target"), Path::to_path_buf)
        .join("bench/no-pie")
}

/// Every Rust binary copied afresh into `target/bench/cold-start/<n>/`,
/// then started from there. How a file came to be in the page cache
/// changes how fast it faults in: the same binary started from the file
/// the linker wrote and from a copy of it differ by a tenth of its start
/// or more (docs/BENCHMARKS.md, 4d),
/// so each subject starts from a file written the same way, sequentially,
/// the way an unpacked Lambda zip is. A binary that cannot be copied is
/// measured where it is, and its row says so.
fn same_footing(options: &Options, subjects: &mut [Subject]) {
    let root = no_pie_dir(options).with_file_name("cold-start");
    for (n, s) in subjects.iter_mut().enumerate() {
        if s.kind == Kind::Python || s.failure.is_some() {
            continue;
        }
        let Some(file) = s.program.file_name() else {
            continue;
        };
        let dir = root.join(n.to_string());
        let copy = dir.join(file);
        let copied = std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::remove_file(&copy).or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })
            })
            .and_then(|()| std::fs::copy(&s.program, &copy));
        match copied {
            Ok(_) => s.program = copy,
            Err(e) => {
                eprintln!(
                    "lbgp-bench: could not copy {} to {}: {e}; measuring it in place",
                    s.program.display(),
                    copy.display()
                );
                s.label
                    .push_str(" (started from the linker's output: the copy failed)");
            }
        }
    }
}

/// The echo binary's start-up is the target's unit: each function within
/// 1.5× of it.
const ECHO_TARGET: f64 = 1.5;

pub(crate) async fn cold_start(options: &Options) -> anyhow::Result<Section> {
    let runs = options.runs(15, 3);
    let script = workspace_root().join("scripts/bench_python.py");
    let script_s = script.display().to_string();
    let subject = |label: String, program: PathBuf, args: Vec<String>, kind: Kind| Subject {
        // template.yaml gives the watcher its follow-up queue too.
        env: match program.file_name().and_then(|n| n.to_str()) {
            Some("failover-watcher") => lambda_env(&[(
                "LBGP_FOLLOW_UP_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/lbgp-watcher",
            )]),
            _ => lambda_env(&[]),
        },
        label,
        program,
        args,
        kind,
        starts: vec![],
        failure: None,
    };
    let mut subjects: Vec<Subject> = FUNCTIONS
        .iter()
        .map(|f| {
            subject(
                format!("`{f}` (Rust, x86_64 release build)"),
                options.release_dir.join(f),
                vec![],
                Kind::Function,
            )
        })
        .collect();
    subjects.push(subject(
        "`lbgp-echo`: bare `lambda_runtime`, echoes its payload (same release build)".to_owned(),
        options.release_dir.join("lbgp-echo"),
        vec![],
        Kind::Echo,
    ));
    subjects.push(subject(
        "`lbgp-sdk-floor`: the echo after `aws_config::load_defaults` and the SDK's own clients, EC2 per region and DynamoDB (same release build)".to_owned(),
        options.release_dir.join("lbgp-sdk-floor"),
        vec![],
        Kind::SdkFloor,
    ));
    subjects.push(subject(
        "`vpc-route-injector` linked without PIE (same code and profile, `-C link-arg=-no-pie`)".to_owned(),
        no_pie_dir(options).join(FUNCTIONS[0]),
        vec![],
        Kind::NoPie,
    ));
    subjects.push(subject(
        "Python 3 + boto3: `import boto3`, clients for ec2, dynamodb, sns".to_owned(),
        options.python.clone(),
        vec![script_s.clone(), "coldstart".to_owned()],
        Kind::Python,
    ));
    subjects.push(subject(
        "Python 3 alone (no boto3): the interpreter's floor".to_owned(),
        options.python.clone(),
        vec![script_s, "coldstart".to_owned(), "--bare".to_owned()],
        Kind::Python,
    ));
    for s in &mut subjects {
        if !s.program.exists() {
            s.failure = Some(format!("{} not built", s.program.display()));
        }
    }
    same_footing(options, &mut subjects);
    // Interleaved: one start of each subject per round, so drift in the
    // machine's load hits all of them alike, and each round starts one
    // subject further on, so no subject always follows the same one
    // (Python, say, which evicts the caches). One unmeasured round warms
    // the page cache.
    let count = subjects.len();
    for round in 0..=runs {
        let order = (0..count).map(|i| (i + round) % count);
        for i in order {
            let s = &mut subjects[i];
            if s.failure.is_some() {
                continue;
            }
            let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
            match time_to_first_poll(&s.program, &args, &s.env, false).await? {
                Ok(start) if round > 0 => s.starts.push(start),
                Ok(_) => {}
                Err(why) => s.failure = Some(why),
            }
        }
    }
    let median_of = |kind: Kind, nth: usize| {
        subjects
            .iter()
            .filter(|s| s.kind == kind && s.failure.is_none())
            .nth(nth)
            .map(|s| median(&s.times()))
    };
    let python_boto3 = median_of(Kind::Python, 0).unwrap_or(f64::NAN);
    let echo = median_of(Kind::Echo, 0);
    let sdk_floor = median_of(Kind::SdkFloor, 0);
    let mut md = String::new();
    let mut headlines = Vec::new();
    let _ = writeln!(md, "## 4. Cold start and size\n");
    let _ = writeln!(
        md,
        "Cold start: time from `exec` to the first `GET /2018-06-01/runtime/invocation/next` on a \
         local Runtime API, measured by the same Rust timer for every subject, {runs} starts each, \
         every Rust binary started from a fresh copy in `target/bench/cold-start/` (how a file \
         entered the page cache changes how fast it faults in: the linker's output and a copy of \
         it differ by a tenth of a start), \
         interleaved (one start of each subject per round, each round starting one subject further on, after one unmeasured warm-up round). The \
         environment is cleared and set as Lambda would (`AWS_REGION`, credentials in the environment, \
         `AWS_LAMBDA_*`, `LBGP_REGIONS` with 3 regions, `LBGP_TABLE`, and what `template.yaml` sets \
         that configures a client: `LBGP_TOPIC_ARN`, and the watcher's `LBGP_FOLLOW_UP_QUEUE_URL`). The \
         Rust binaries parse their configuration and build the SDK clients their first invocation \
         calls (one EC2 client per region, DynamoDB, and the watcher's CloudWatch per region) before \
         they poll; SNS and SQS are built on their first publish or send. arm64 binaries cannot run on this x86_64 machine, so start-up is measured on the x86_64 \
         release build of the same binaries (`cargo build --release`: thin LTO, opt-level s, \
         stripped). The floor for Rust is `lbgp-echo` (`tests/echo/src/main.rs`: \
         `lambda_runtime::run(service_fn(…))` echoing the payload, nothing else), built in the same \
         profile (`cargo build --release -p lbgp-echo`); the target is each function \
         within {ECHO_TARGET}× of it. Beside it, two more floors: `lbgp-sdk-floor` \
         (`tests/sdk-floor/src/main.rs`) is that echo after building the clients the injector's \
         and the propagator's first invocation calls the way the SDK's developer guide shows \
         (`aws_config::load_defaults`, one EC2 client per region, DynamoDB, each with the SDK's \
         default HTTPS client), built in the same `cargo build` as the functions so it shares \
         their build of the SDK: what the SDK costs before a first poll. And the injector linked \
         a second time without PIE (`cargo rustc --release -p vpc-route-injector --bin \
         vpc-route-injector -- -C link-arg=-no-pie`, kept in `target/bench/no-pie`): the same \
         code, its relative relocations resolved at link time, so the difference is what the \
         dynamic loader's relocations cost at every start. The functions ship as PIE. The Python start-up is the Python Lambda's \
         (`scripts/bench_python.py coldstart`): `import boto3`, `boto3.client` for ec2, dynamodb and \
         sns, then the same poll with `http.client`; it leaves out the Lambda Python runtime's own \
         bootstrap (awslambdaric), so it is a lower bound for Python.\n"
    );
    let _ = writeln!(
        md,
        "| binary | median | min–max | / `lbgp-echo` | / `lbgp-sdk-floor` | Python+boto3 / this | target |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for s in &subjects {
        if let Some(why) = &s.failure {
            let _ = writeln!(md, "| {} | not measured: {why} | | | | | |", s.label);
            if s.kind == Kind::Function {
                headlines.push(Headline::new(
                    format!("4. cold start `{}`", s.name()),
                    format!("not measured: {why}"),
                    format!("≤ {ECHO_TARGET}× `lbgp-echo`; < 30 ms"),
                    None,
                ));
            }
            continue;
        }
        let times = s.times();
        let med = median(&times);
        let (lo, hi) = min_max(&times);
        let to_echo = echo.map(|e| med / e);
        let echo_ok = to_echo.map(|r| r <= ECHO_TARGET);
        let ok = med < 30.0;
        let _ = writeln!(
            md,
            "| {} | **{med:.1} ms** | {lo:.1}–{hi:.1} ms | {} | {} | {:.1}× | {} |",
            s.label,
            match (s.kind, to_echo) {
                (Kind::Function, Some(r)) => format!("**{r:.2}×**"),
                (_, Some(r)) => format!("{r:.2}×"),
                (_, None) => "—".to_owned(),
            },
            sdk_floor.map_or_else(|| "—".to_owned(), |f| format!("{:.2}×", med / f)),
            python_boto3 / med,
            match s.kind {
                Kind::Function => format!(
                    "≤ {ECHO_TARGET}× echo {}; < 30 ms {}",
                    verdict(echo_ok),
                    verdict(Some(ok))
                ),
                _ => "—".to_owned(),
            }
        );
        if s.kind == Kind::Function {
            headlines.push(Headline::new(
                format!("4. cold start `{}` vs `lbgp-echo`, Python+boto3", s.name()),
                format!(
                    "{med:.1} ms vs echo {}; Python+boto3 {python_boto3:.0} ms ({:.0}× faster)",
                    match (echo, to_echo) {
                        (Some(e), Some(r)) => format!("{e:.1} ms ({r:.2}×)"),
                        _ => "not measured".to_owned(),
                    },
                    python_boto3 / med
                ),
                format!("≤ {ECHO_TARGET}× `lbgp-echo`; < 30 ms"),
                echo_ok.map(|e| e && ok),
            ));
        }
    }
    where_startup_goes(&mut md, &subjects, runs).await?;

    // Sizes of the arm64 zips that `make build` produced.
    let target = options
        .release_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"));
    let mut newest = SystemTime::UNIX_EPOCH;
    for dir in ["shared", "adapters", "functions"] {
        newest_source(&workspace_root().join(dir), &mut newest);
    }
    let _ = writeln!(
        md,
        "\nSize: the arm64 deployment zips of `make build` (`cargo lambda build --release --arm64 \
         --output-format zip`), `target/lambda/<name>/bootstrap.zip`; the architecture is read from \
         the ELF header of the `bootstrap` inside.\n"
    );
    let _ = writeln!(
        md,
        "| function | zip | unzipped `bootstrap` | architecture | built | target |\n| --- | --- | --- | --- | --- | --- |"
    );
    for f in FUNCTIONS {
        let zip = target.join("lambda").join(f).join("bootstrap.zip");
        match zip_facts(&zip).await {
            Ok((zip_bytes, raw, machine, modified)) => {
                let zip_mb = zip_bytes as f64 / 1e6;
                let ok = zip_mb < 15.0 && machine == "aarch64";
                let stale = modified < newest;
                let age = SystemTime::now()
                    .duration_since(modified)
                    .map(|d| d.as_secs() / 60)
                    .unwrap_or(0);
                let _ = writeln!(
                    md,
                    "| `{f}` | **{zip_mb:.2} MB** ({zip_bytes} B) | {:.2} MB | {machine} | {age} min before this report{} | < 15 MB {} |",
                    raw as f64 / 1e6,
                    if stale {
                        " (**older than the sources**)"
                    } else {
                        ""
                    },
                    verdict(Some(ok)),
                );
                headlines.push(Headline::new(
                    format!("4. arm64 zip `{f}`"),
                    format!("{zip_mb:.2} MB"),
                    "< 15 MB",
                    Some(ok),
                ));
            }
            Err(e) => {
                let _ = writeln!(md, "| `{f}` | not measured: {e:#} | | | | |");
                headlines.push(Headline::new(
                    format!("4. arm64 zip `{f}`"),
                    "not built",
                    "< 15 MB",
                    None,
                ));
            }
        }
    }
    let _ = writeln!(md);
    Ok(Section {
        markdown: md,
        headlines,
    })
}
