//! Section 1: the planner at scale (`lbgp_core::plan` and
//! `lbgp_core::desire::Desire::plan` on synthetic meshes; peak memory in a
//! child process per case, from `/proc/self/status`).

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use lbgp_core::desire::Desire;
use lbgp_core::{
    Cidr, DesiredRoute, LedgerEntry, LedgerStatus, OwnershipLedger, Route, RouteKey, RouteOrigin, RouteState,
    RouteTableRef, RouteTarget, TableKind, plan,
};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::Options;
use crate::report::{
    Headline, Section, aws_id, median, mib, min_max, ms, region, thousands, under_100_mb, verdict,
};

// ============================================================ 1. planner

pub(crate) const REGIONS8: [&str; 8] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
];
const VPCS_PER_REGION: usize = 500;
const TABLES_PER_VPC: usize = 4;
pub(crate) const MESH_PREFIXES: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
pub(crate) const TGW_PREFIXES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlanCase {
    VpcConverged,
    VpcDrift,
    TgwConverged,
    TgwDrift,
}

struct PlanInput {
    desired: Vec<DesiredRoute>,
    actual: Vec<Route>,
    ledger: OwnershipLedger,
    expected_changes: usize,
}

impl PlanCase {
    const ALL: [PlanCase; 4] = [
        PlanCase::VpcConverged,
        PlanCase::VpcDrift,
        PlanCase::TgwConverged,
        PlanCase::TgwDrift,
    ];

    fn name(self) -> &'static str {
        match self {
            PlanCase::VpcConverged => "vpc-converged",
            PlanCase::VpcDrift => "vpc-drift",
            PlanCase::TgwConverged => "tgw-converged",
            PlanCase::TgwDrift => "tgw-drift",
        }
    }

    fn label(self) -> &'static str {
        match self {
            PlanCase::VpcConverged => "VPC routes (injector), converged",
            PlanCase::VpcDrift => "VPC routes (injector), 10% drift",
            PlanCase::TgwConverged => "TGW routes (L-BGP), converged",
            PlanCase::TgwDrift => "TGW routes (L-BGP), 10% drift",
        }
    }

    fn from_name(name: &str) -> Option<PlanCase> {
        PlanCase::ALL.into_iter().find(|c| c.name() == name)
    }

    fn build(self) -> anyhow::Result<PlanInput> {
        match self {
            PlanCase::VpcConverged => vpc_mesh(false),
            PlanCase::VpcDrift => vpc_mesh(true),
            PlanCase::TgwConverged => tgw_mesh(false),
            PlanCase::TgwDrift => tgw_mesh(true),
        }
    }
}

fn static_route(key: RouteKey, target: RouteTarget) -> Route {
    Route {
        key,
        target,
        state: RouteState::Active,
        origin: RouteOrigin::Static,
    }
}

/// Adds one managed route: desired, in the ledger, and observed as it is
/// (or, under drift, every 10th missing or re-pointed, alternately).
fn managed(
    input: &mut PlanInput,
    key: RouteKey,
    target: &RouteTarget,
    rogue: &RouteTarget,
    n: usize,
    drift: bool,
) {
    input.desired.push(DesiredRoute {
        key: key.clone(),
        target: target.clone(),
    });
    input
        .ledger
        .insert(LedgerEntry::new(key.clone(), target.clone(), LedgerStatus::Owned));
    if drift && n.is_multiple_of(10) {
        input.expected_changes += 1;
        if (n / 10) % 2 == 1 {
            input.actual.push(static_route(key, rogue.clone()));
        }
    } else {
        input.actual.push(static_route(key, target.clone()));
    }
}

/// 8 regions × 500 VPCs × 4 route tables × 3 prefixes toward the region's
/// TGW; each table also holds its local route and a foreign default route.
fn vpc_mesh(drift: bool) -> anyhow::Result<PlanInput> {
    let prefixes: Vec<Cidr> = MESH_PREFIXES
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, _>>()?;
    let default: Cidr = "0.0.0.0/0".parse()?;
    let mut input = PlanInput {
        desired: Vec::new(),
        actual: Vec::new(),
        ledger: OwnershipLedger::new(),
        expected_changes: 0,
    };
    let mut n = 0;
    for (r, name) in REGIONS8.iter().enumerate() {
        let region = region(name)?;
        let tgw = RouteTarget::TransitGateway(aws_id("tgw", r as u64));
        let rogue = RouteTarget::TransitGateway(aws_id("tgw", 1000 + r as u64));
        for v in 0..VPCS_PER_REGION {
            let vpc = r * VPCS_PER_REGION + v;
            let vpc_cidr: Cidr = format!("10.{}.{}.0/20", vpc >> 4, (vpc & 15) << 4).parse()?;
            for t in 0..TABLES_PER_VPC {
                let table = RouteTableRef {
                    region: region.clone(),
                    kind: TableKind::Vpc,
                    id: aws_id("rtb", (vpc * TABLES_PER_VPC + t) as u64),
                };
                input.actual.push(Route {
                    key: RouteKey {
                        table: table.clone(),
                        destination: vpc_cidr,
                    },
                    target: RouteTarget::Other("local".to_owned()),
                    state: RouteState::Active,
                    origin: RouteOrigin::Local,
                });
                input.actual.push(static_route(
                    RouteKey {
                        table: table.clone(),
                        destination: default,
                    },
                    RouteTarget::Other(aws_id("nat", vpc as u64)),
                ));
                for p in &prefixes {
                    let key = RouteKey {
                        table: table.clone(),
                        destination: *p,
                    };
                    managed(&mut input, key, &tgw, &rogue, n, drift);
                    n += 1;
                }
            }
        }
    }
    Ok(input)
}

/// 8 fully meshed TGWs (one per region) originating 500 prefixes each: every
/// TGW's route table holds its 500 propagated routes and learns the other
/// 7 × 500 over the peering attachments (28,000 managed routes).
fn tgw_mesh(drift: bool) -> anyhow::Result<PlanInput> {
    let count = REGIONS8.len();
    let origin = |t: usize, p: usize| -> anyhow::Result<Cidr> {
        Ok(format!("10.{}.{}.0/20", t * 32 + p / 16, (p % 16) * 16).parse()?)
    };
    let peering = |a: usize, b: usize| aws_id("tgw-attach", 100 + (a.min(b) * count + a.max(b)) as u64);
    let mut input = PlanInput {
        desired: Vec::new(),
        actual: Vec::new(),
        ledger: OwnershipLedger::new(),
        expected_changes: 0,
    };
    let mut n = 0;
    for (t, name) in REGIONS8.iter().enumerate() {
        let region = region(name)?;
        let table = RouteTableRef {
            region: region.clone(),
            kind: TableKind::TransitGateway,
            id: aws_id("tgw-rtb", t as u64),
        };
        for p in 0..TGW_PREFIXES {
            input.actual.push(Route {
                key: RouteKey {
                    table: table.clone(),
                    destination: origin(t, p)?,
                },
                target: RouteTarget::TransitGatewayAttachment(aws_id(
                    "tgw-attach",
                    (10_000 + t * TGW_PREFIXES + p) as u64,
                )),
                state: RouteState::Active,
                origin: RouteOrigin::Propagated,
            });
        }
        let rogue = RouteTarget::TransitGatewayAttachment(aws_id("tgw-attach", 99 + t as u64));
        for u in (0..count).filter(|u| *u != t) {
            let via = RouteTarget::TransitGatewayAttachment(peering(t, u));
            for p in 0..TGW_PREFIXES {
                let key = RouteKey {
                    table: table.clone(),
                    destination: origin(u, p)?,
                };
                managed(&mut input, key, &via, &rogue, n, drift);
                n += 1;
            }
        }
    }
    Ok(input)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl PlanInput {
    /// The same state as the functions hold it: an [`Desire`] over
    /// every region (moved, not copied).
    fn into_desire(self) -> (Desire, OwnershipLedger) {
        let complete_regions = self.desired.iter().map(|d| d.key.table.region.clone()).collect();
        let obs = Desire {
            desired: self.desired,
            actual: self.actual,
            complete_regions,
            ..Desire::default()
        };
        (obs, self.ledger)
    }
}

/// Child mode: builds one case, plans it once with `plan` and once with
/// `Desire::plan`, and reports the peak RSS of the whole process and of
/// each planning step alone (the high-water mark is reset through
/// `/proc/self/clear_refs` just before each).
pub(crate) fn plan_memory_child(name: &str) -> anyhow::Result<()> {
    let case = PlanCase::from_name(name).with_context(|| format!("unknown case {name}"))?;
    let status =
        |field: &str| proc_status_kib(field).with_context(|| format!("no {field} in /proc/self/status"));
    let input = case.build()?;
    let build_hwm = status("VmHWM:")?;
    let rss_before = status("VmRSS:")?;
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let p = plan(&input.desired, &input.actual, &input.ledger);
    let plan_hwm = status("VmHWM:")?;
    let changes = p.changes.len();
    drop(p);
    let (obs, ledger) = input.into_desire();
    let rss_before_obs = status("VmRSS:")?;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let p = obs.plan(&ledger);
    let obs_hwm = status("VmHWM:")?;
    if p.changes.len() != changes {
        bail!("Desire::plan planned {} changes, plan {changes}", p.changes.len());
    }
    println!(
        "{}",
        json!({"case": name, "changes": changes, "build_hwm_kib": build_hwm, "rss_before_kib": rss_before,
               "plan_hwm_kib": plan_hwm, "rss_before_obs_kib": rss_before_obs, "obs_hwm_kib": obs_hwm,
               "hwm_reset": reset})
    );
    Ok(())
}

fn time_runs<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    // One warm-up, then `runs` timed calls; the result is dropped untimed.
    drop(f());
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = std::hint::black_box(f());
            let took = ms(t.elapsed());
            drop(out);
            took
        })
        .collect()
}

fn time_cell(times: &[f64]) -> String {
    let (lo, hi) = min_max(times);
    format!("**{:.1} ms** ({lo:.1}–{hi:.1})", median(times))
}

pub(crate) async fn planner(options: &Options) -> anyhow::Result<Section> {
    let runs = options.runs(9, 3);
    let exe = std::env::current_exe()?;
    let mut time_rows = String::new();
    let mut memory_rows = String::new();
    let mut headlines = Vec::new();
    let mut slowest: Option<(PlanCase, f64)> = None;
    let mut obs_misses = false;
    for case in PlanCase::ALL {
        let input = case.build()?;
        let planned = plan(&input.desired, &input.actual, &input.ledger).changes.len();
        if planned != input.expected_changes {
            bail!(
                "{}: {planned} changes planned, {} expected",
                case.name(),
                input.expected_changes
            );
        }
        let (desired, actual, ledger) = (input.desired.len(), input.actual.len(), input.ledger.len());
        let plan_times = time_runs(runs, || {
            plan(std::hint::black_box(&input.desired), &input.actual, &input.ledger)
        });
        let (obs, obs_ledger) = input.into_desire();
        let obs_times = time_runs(runs, || std::hint::black_box(&obs).plan(&obs_ledger));
        drop((obs, obs_ledger));

        let out = Command::new(&exe)
            .args(["plan-memory", case.name()])
            .stderr(Stdio::inherit())
            .output()
            .await?;
        if !out.status.success() {
            bail!("plan-memory {} failed: {}", case.name(), out.status);
        }
        let mem: Value = serde_json::from_slice(&out.stdout).context("plan-memory output")?;
        let kib = |k: &str| mem[k].as_u64().unwrap_or(0);
        let inputs = kib("rss_before_kib");
        let plan_peak = kib("build_hwm_kib").max(kib("plan_hwm_kib"));
        let obs_peak = plan_peak.max(kib("obs_hwm_kib"));
        let plan_extra = kib("plan_hwm_kib").saturating_sub(inputs);
        let obs_extra = kib("obs_hwm_kib").saturating_sub(kib("rss_before_obs_kib"));
        let reset_note = if mem["hwm_reset"].as_bool() == Some(true) {
            ""
        } else {
            " (high-water mark not reset: upper bound)"
        };
        let (plan_med, obs_med) = (median(&plan_times), median(&obs_times));
        if slowest.is_none_or(|(_, t)| plan_med > t) {
            slowest = Some((case, plan_med));
        }
        let plan_ok = plan_med < 100.0 && under_100_mb(plan_peak);
        let obs_ok = obs_med < 100.0 && under_100_mb(obs_peak);
        obs_misses |= !obs_ok;
        let _ = writeln!(
            time_rows,
            "| {} | {} | {} | {} | {} | {} {} | {} {} |",
            case.label(),
            thousands(desired),
            thousands(actual),
            thousands(ledger),
            thousands(planned),
            time_cell(&plan_times),
            verdict(Some(plan_med < 100.0)),
            time_cell(&obs_times),
            verdict(Some(obs_med < 100.0)),
        );
        let _ = writeln!(
            memory_rows,
            "| {} | {:.1} MiB | +{:.1} MiB{reset_note} | **{:.1} MiB** {} | +{:.1} MiB | **{:.1} MiB** {} |",
            case.label(),
            mib(inputs),
            mib(plan_extra),
            mib(plan_peak),
            verdict(Some(under_100_mb(plan_peak))),
            mib(obs_extra),
            mib(obs_peak),
            verdict(Some(under_100_mb(obs_peak))),
        );
        headlines.push(Headline::new(
            format!("1. `plan`, {}", case.label()),
            format!("{plan_med:.1} ms, peak {:.1} MiB", mib(plan_peak)),
            "< 100 ms, < 100 MB",
            Some(plan_ok),
        ));
        headlines.push(Headline::new(
            format!("1. `Desire::plan` (as the functions call it), {}", case.label()),
            format!("{obs_med:.1} ms, peak {:.1} MiB", mib(obs_peak)),
            "< 100 ms, < 100 MB",
            Some(obs_ok),
        ));
    }
    let mut md = String::new();
    let _ = writeln!(md, "## 1. Planner at scale\n");
    let _ = writeln!(
        md,
        "`lbgp_core::plan(desired, actual, ledger)` called directly, and \
         `lbgp_core::desire::Desire::plan(ledger)`, which is how the functions call it \
         (through `lbgp_core::inject::plan` and `lbgp_core::propagate::plan`, which re-plan only \
         when a table would pass its route quota; it plans the routes of complete regions and \
         unfrozen tables, borrowed through `plan_from_iter`, not copied). `bench-fast` profile (release, opt-level 3, no LTO). Synthetic \
         state shaped like the adapters produce it:\n\n\
         * **VPC routes**: 8 regions × 500 VPCs × 4 route tables × 3 prefixes (`10.0.0.0/8`, \
         `172.16.0.0/12`, `192.168.0.0/16`) toward the region's TGW = 48,000 managed routes; every \
         table also holds its `local` route and a foreign `0.0.0.0/0` → `nat-…` (32,000 other routes); \
         the ledger owns the 48,000.\n\
         * **TGW routes (L-BGP)**: 8 fully meshed TGWs, one per region, each originating 500 prefixes: \
         each TGW's route table holds its own 500 propagated routes and learns 7 × 500 over the peering \
         attachments = 28,000 managed routes (+ 4,000 propagated).\n\
         * **10% drift**: every 10th managed route is missing (half of them) or re-pointed to another \
         target (the other half), so the plans have 4,800 (VPC) and 2,800 (TGW) changes, half creates, \
         half replaces.\n\n\
         Time: median of {runs} runs after one warm-up (min–max in brackets), inputs built beforehand.\n"
    );
    let _ = writeln!(
        md,
        "| case | desired | observed | ledger | changes | `plan` | `Desire::plan` |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n{time_rows}"
    );
    let _ = writeln!(
        md,
        "Memory: a child process per case (`lbgp-bench plan-memory CASE`) builds the inputs, then runs \
         `plan` once and `Desire::plan` once. *Inputs* is its RSS once they are built; *+ planning* \
         is the peak RSS during the call above the RSS just before it (`VmHWM` reset through \
         `/proc/self/clear_refs`); *process peak* is the process's high-water mark over its whole life \
         up to then: inputs, planning and plan, what a Lambda's *Max Memory Used* would show of it, and \
         what the < 100 MB target is checked against, strictly (100,000,000 bytes = 95.4 MiB).\n"
    );
    let _ = writeln!(
        md,
        "| case | inputs | + `plan` | process peak with `plan` | + `Desire::plan` | process peak with `Desire::plan` |\n\
         | --- | --- | --- | --- | --- | --- |\n{memory_rows}"
    );
    let _ = writeln!(
        md,
        "**How `plan` stays fast.** It keeps one hash map (`rustc-hash`'s `FxHashMap`) of the \
         destinations that matter, desired or in the ledger, and probes it once per input route; only \
         the output is sorted, so the plan stays deterministic. The first version used ordered maps \
         keyed by `RouteKey` and spent about two thirds of its time comparing region and table-id \
         strings (`perf record`, commit `5efa2fb`); and `plan_observation`, which `Desire::plan` \
         replaced, copied its inputs to filter them. The slowest case here is {}.\n",
        slowest.map_or_else(
            || "none".to_owned(),
            |(case, t)| format!("{} at {t:.1} ms", case.label())
        )
    );
    if obs_misses {
        let _ = writeln!(
            md,
            "**`Desire::plan` missed a target**: it filters through borrowed iterators, so its cost \
             above `plan` is the region and frozen-table check per route; see the memory table.\n"
        );
    }
    Ok(Section {
        markdown: md,
        headlines,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::aws_id;

    #[test]
    fn synthetic_meshes_have_the_sizes_of_the_issue() {
        let vpc = vpc_mesh(false).unwrap();
        assert_eq!(
            (vpc.desired.len(), vpc.ledger.len(), vpc.actual.len()),
            (48_000, 48_000, 80_000)
        );
        assert_eq!(vpc.expected_changes, 0);
        let drift = vpc_mesh(true).unwrap();
        assert_eq!((drift.expected_changes, drift.actual.len()), (4_800, 77_600));
        let tgw = tgw_mesh(false).unwrap();
        assert_eq!(
            (tgw.desired.len(), tgw.ledger.len(), tgw.actual.len()),
            (28_000, 28_000, 32_000)
        );
        assert_eq!(tgw_mesh(true).unwrap().expected_changes, 2_800);
        assert_eq!(aws_id("rtb", 7).len(), "rtb-0123456789abcdef0".len());
    }
}
