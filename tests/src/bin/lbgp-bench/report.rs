//! What every section shares: the summary line and section types, the
//! statistics and number formats of the tables, and the deterministic
//! inputs (splitmix64, AWS-looking ids).

use std::time::Duration;

use anyhow::Context;
use lbgp_core::Region;

// ------------------------------------------------------------------ report

/// One line of the summary table.
#[derive(Debug, Clone)]
pub(crate) struct Headline {
    pub(crate) measure: String,
    pub(crate) result: String,
    pub(crate) target: String,
    pub(crate) pass: Option<bool>,
}

impl Headline {
    pub(crate) fn new(
        measure: impl Into<String>,
        result: impl Into<String>,
        target: impl Into<String>,
        pass: Option<bool>,
    ) -> Self {
        Headline {
            measure: measure.into(),
            result: result.into(),
            target: target.into(),
            pass,
        }
    }
}

/// One section of the document.
#[derive(Debug, Default)]
pub(crate) struct Section {
    pub(crate) markdown: String,
    pub(crate) headlines: Vec<Headline>,
}

pub(crate) fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "pass",
        Some(false) => "**MISS**",
        None => "—",
    }
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

/// `48000` → `48,000`.
/// `lo`–`hi` with `decimals` places, or one number when both print alike
/// ("98%", not "98–98%").
pub(crate) fn span(lo: f64, hi: f64, decimals: usize) -> String {
    let (a, b) = (format!("{lo:.decimals$}"), format!("{hi:.decimals$}"));
    if a == b { a } else { format!("{a}–{b}") }
}

pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `12345.0` ms → `12.35 s`; under 10 s, whole milliseconds.
pub(crate) fn human_ms(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.2} s", value / 1000.0)
    } else {
        format!("{value:.0} ms")
    }
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The memory target, "under 100 MB", read strictly: 100,000,000 bytes
/// (95.4 MiB), so the verdict holds whichever megabyte is meant.
pub(crate) fn under_100_mb(kib: u64) -> bool {
    kib * 1024 < 100_000_000
}

// ------------------------------------------------------------------ inputs

/// A deterministic PRNG (splitmix64): the inputs are the same on every run.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// An AWS-looking id (`rtb-0…`, 17 hex digits), stable for `(prefix, n)`.
pub(crate) fn aws_id(prefix: &str, n: u64) -> String {
    let salt = prefix
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("{prefix}-0{:016x}", SplitMix(n ^ (salt << 32)).next_u64())
}

/// A region from its name.
pub(crate) fn region(name: &str) -> anyhow::Result<Region> {
    Region::new(name).with_context(|| format!("bad region {name}"))
}
