//! Section 2: prefix math (`lbgp_core::prefix::aggregate` against Python's
//! `ipaddress.collapse_addresses` on the same million prefixes).

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use lbgp_core::Cidr;
use lbgp_core::prefix::aggregate;
use lbgp_tests::emulator::workspace_root;
use serde_json::Value;
use tokio::process::Command;

use crate::Options;
use crate::report::{Headline, Section, SplitMix, median, min_max, ms, thousands, verdict};

// ======================================================== 2. prefix math

const PREFIX_COUNT: usize = 1_000_000;
const PREFIX_SEED: u64 = 0x1b9b_2024_0009;

pub(crate) async fn prefix_math(options: &Options) -> anyhow::Result<Section> {
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let input_path = dir.join("prefixes-1m.txt");
    let python_out = dir.join("collapsed-python.txt");
    // Random IPv4 prefixes: uniform address, length uniform in 18..=32,
    // host bits cleared (both parsers are strict).
    let mut rng = SplitMix(PREFIX_SEED);
    let mut text = String::with_capacity(PREFIX_COUNT * 18);
    for _ in 0..PREFIX_COUNT {
        let r = rng.next_u64();
        let len = 18 + (r % 15) as u32;
        let addr = ((r >> 32) as u32) & (u32::MAX << (32 - len));
        let [a, b, c, d] = addr.to_be_bytes();
        let _ = writeln!(text, "{a}.{b}.{c}.{d}/{len}");
    }
    std::fs::write(&input_path, &text)?;

    let rust_runs = options.runs(5, 2);
    let python_runs = options.runs(3, 1);
    let parse = |text: &str| -> anyhow::Result<(Vec<Cidr>, f64)> {
        let t = Instant::now();
        let parsed: Vec<Cidr> = text.lines().map(str::parse::<Cidr>).collect::<Result<_, _>>()?;
        Ok((parsed, ms(t.elapsed())))
    };
    let mut rust_parse = Vec::new();
    let mut rust_agg = Vec::new();
    let mut rust_out = Vec::new();
    let mut measure_rust = |rust_parse: &mut Vec<f64>, rust_agg: &mut Vec<f64>| -> anyhow::Result<()> {
        let (parsed, parse_ms) = parse(&text)?;
        rust_parse.push(parse_ms);
        for _ in 0..rust_runs {
            let t = Instant::now();
            let out = std::hint::black_box(aggregate(std::hint::black_box(&parsed)));
            rust_agg.push(ms(t.elapsed()));
            rust_out = out;
        }
        Ok(())
    };
    // Rust, then Python, then Rust again: side by side, in one run.
    measure_rust(&mut rust_parse, &mut rust_agg)?;
    let script = workspace_root().join("scripts/bench_python.py");
    let out = Command::new(&options.python)
        .arg(&script)
        .args(["collapse", "--input"])
        .arg(&input_path)
        .arg("--output")
        .arg(&python_out)
        .args(["--runs", &python_runs.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {}", options.python.display()))?;
    if !out.status.success() {
        bail!("bench_python.py collapse failed: {}", out.status);
    }
    let py: Value = serde_json::from_slice(&out.stdout).context("bench_python.py output")?;
    measure_rust(&mut rust_parse, &mut rust_agg)?;

    let secs = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).map(|s| s * 1000.0).collect())
            .unwrap_or_default()
    };
    let py_collapse = secs(&py["collapse_s"]);
    let py_parse = secs(&py["parse_s"]);
    let python_lines: Vec<String> = std::fs::read_to_string(&python_out)?
        .lines()
        .map(str::to_owned)
        .collect();
    let rust_lines: Vec<String> = rust_out.iter().map(ToString::to_string).collect();
    let same = python_lines == rust_lines;
    if !same {
        bail!(
            "aggregate and collapse_addresses disagree: {} vs {} prefixes",
            rust_lines.len(),
            python_lines.len()
        );
    }
    let (r_agg, p_agg) = (median(&rust_agg), median(&py_collapse));
    let (r_parse, p_parse) = (median(&rust_parse), median(&py_parse));
    let ratio = p_agg / r_agg;
    let ratio_total = (p_parse + p_agg) / (r_parse + r_agg);
    let ok = ratio >= 20.0;
    let mut md = String::new();
    let _ = writeln!(md, "## 2. Prefix math: aggregation of 1,000,000 IPv4 prefixes\n");
    let _ = writeln!(
        md,
        "The same file of {} random IPv4 prefixes (`target/bench/prefixes-1m.txt`, written by \
         lbgp-bench with splitmix64 seed `{PREFIX_SEED:#x}`: uniform address, length uniform in /18–/32, \
         host bits cleared) is aggregated by `lbgp_core::prefix::aggregate` (`bench-fast` profile) and by \
         Python's `ipaddress.collapse_addresses` ({}). Rust ran {rust_runs} times before Python and \
         {rust_runs} times after it; Python ran {python_runs} times. Both sides produced the same \
         {} prefixes (compared line by line).\n",
        thousands(PREFIX_COUNT),
        py["python"].as_str().unwrap_or("?"),
        thousands(rust_lines.len()),
    );
    let _ = writeln!(
        md,
        "| step | Rust (median, min–max) | Python (median, min–max) | Python / Rust | target |\n| --- | --- | --- | --- | --- |"
    );
    let (rl, rh) = min_max(&rust_agg);
    let (pl, ph) = min_max(&py_collapse);
    let _ = writeln!(
        md,
        "| aggregate / `collapse_addresses` (parsed input in memory) | **{r_agg:.1} ms** ({rl:.1}–{rh:.1}) | **{p_agg:.0} ms** ({pl:.0}–{ph:.0}) | **{ratio:.0}×** | ≥ 20× {} |",
        verdict(Some(ok))
    );
    let _ = writeln!(
        md,
        "| parse the 1,000,000 strings (`Cidr::from_str` / `IPv4Network`) | {r_parse:.1} ms | {p_parse:.0} ms | {:.0}× | — |",
        p_parse / r_parse
    );
    let _ = writeln!(
        md,
        "| parse + aggregate | {:.1} ms | {:.0} ms | {ratio_total:.0}× | — |\n",
        r_parse + r_agg,
        p_parse + p_agg
    );
    Ok(Section {
        markdown: md,
        headlines: vec![Headline::new(
            "2. aggregate 1M IPv4 prefixes vs Python `collapse_addresses`",
            format!("{r_agg:.0} ms vs {p_agg:.0} ms: {ratio:.0}× faster"),
            "≥ 20×",
            Some(ok),
        )],
    })
}
