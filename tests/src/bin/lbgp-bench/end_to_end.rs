//! Section 6: end to end (the release binaries under the local Runtime API,
//! converging the mesh of section 3 from empty, unpaced and paced).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{HOME, TestEnv};
use lbgp_tests::runtime_api::{LocalLambda, Outcome};
use serde_json::Value;

use crate::mesh::{MESH_REGIONS, MESH_VPCS, build_mesh, change_count, check_clean, service_split};
use crate::planner::MESH_PREFIXES;
use crate::report::{Headline, Section, human_ms, ms};
use crate::{FUNCTIONS, Options};

// ===================================================== 6. end to end

/// Where each region's `action` calls fall in arrival order: (region,
/// first position, last position, count), positions from 1, by first call.
fn region_spans(log: &[Value], action: &str) -> (Vec<(String, usize, usize, usize)>, usize) {
    let mut spans: Vec<(String, usize, usize, usize)> = Vec::new();
    let calls = log.iter().filter(|c| c["action"] == action);
    let mut total = 0;
    for (i, call) in calls.enumerate() {
        total = i + 1;
        let region = call["region"].as_str().unwrap_or("?");
        match spans.iter_mut().find(|(r, ..)| r == region) {
            Some((_, _, last, n)) => {
                *last = i + 1;
                *n += 1;
            }
            None => spans.push((region.to_owned(), i + 1, i + 1, 1)),
        }
    }
    (spans, total)
}

pub(crate) async fn end_to_end(options: &Options) -> anyhow::Result<Section> {
    let mut md = String::new();
    let mut headlines = Vec::new();
    let regions = MESH_REGIONS.len();
    let vpc_writes_per_region = MESH_VPCS * 2 * MESH_PREFIXES.len();
    let tgw_writes_per_region = (regions - 1) * MESH_VPCS;
    let pacing_floor_s = (vpc_writes_per_region.saturating_sub(50) as f64 / 5.0)
        .max(tgw_writes_per_region.saturating_sub(50) as f64 / 5.0);
    let _ = writeln!(md, "## 6. End to end: converge from empty, 3 regions × 20 VPCs\n");
    let _ = writeln!(
        md,
        "The mesh of section 3 ({regions} regions, one TGW each, {MESH_VPCS} VPCs per region with 2 \
         route tables each, TGWs fully meshed), built fresh in a new emulator for each row. Then the \
         x86_64 release binaries run under the local Runtime API (`lbgp_tests::runtime_api::LocalLambda`), \
         as Lambda runs them: `vpc-route-injector` is invoked with a scheduled event, then \
         `tgw-route-propagator`; wall time is invoke → response, process start-up excluded (section 4). \
         Environment: the mesh's `LBGP_*`, `LBGP_MAX_CHANGES=100000` (the default 100 would refuse a \
         converge from empty), logs at the default `info` (a JSON line per route). A second invocation of each must then plan nothing.\n\n\
         The unpaced row (`LBGP_EC2_WRITE_RATE=0`) is the API work alone. The paced row uses the \
         defaults (burst 50, 5/s per region) as against AWS: the floor it sets is max over regions and \
         functions of (writes in the region − 50) / 5 = ({vpc_writes_per_region} − 50) / 5 = \
         {pacing_floor_s:.0} s, since each region has its own bucket.\n"
    );
    let _ = writeln!(
        md,
        "| pacing | injector: routes, wall | propagator: routes, wall | total wall | EC2 reads | EC2 writes | DynamoDB calls | SNS | converged after |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut unpaced_total = None;
    let mut paced_spans: (Vec<(String, usize, usize, usize)>, usize) = (Vec::new(), 0);
    let mut paced_injector: Option<Duration> = None;
    for (label, rate) in [
        ("unpaced (`LBGP_EC2_WRITE_RATE=0`)", "0"),
        ("paced (defaults: burst 50, 5/s)", "5"),
    ] {
        let env = TestEnv::new(&MESH_REGIONS).await?;
        build_mesh(&env).await?;
        let endpoint = env.emulator.endpoint();
        let mut vars = env.env(&[
            ("LBGP_MAX_CHANGES", "100000"),
            ("LBGP_EC2_WRITE_RATE", rate),
            ("AWS_REGION", HOME),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]);
        vars.insert("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned());
        env.emulator.reset_calls().await?;
        let mut walls = Vec::new();
        let mut counts = Vec::new();
        let mut lambdas = Vec::new();
        for f in &FUNCTIONS[..2] {
            let mut lambda = LocalLambda::start(&options.release_dir.join(f), &vars).await?;
            let t = Instant::now();
            let response = match lambda.invoke(scheduled()).await? {
                Outcome::Response(v) => v,
                Outcome::Error(e) => bail!("{f} failed: {e}"),
            };
            walls.push(t.elapsed());
            check_clean(f, &response)?;
            counts.push(change_count(&response));
            lambdas.push(lambda);
        }
        let calls = env.emulator.calls().await?;
        if rate != "0" {
            paced_spans = region_spans(&env.emulator.call_log().await?, "CreateRoute");
            paced_injector = Some(walls[0]);
        }
        let mut converged = true;
        for lambda in &mut lambdas {
            match lambda.invoke(scheduled()).await? {
                Outcome::Response(v) => converged &= change_count(&v) == 0,
                Outcome::Error(e) => bail!("second run failed: {e}"),
            }
        }
        for lambda in lambdas {
            let _ = lambda.stop().await;
        }
        let (ddb_r, ddb_w) = service_split(&calls, "dynamodb");
        let total = walls.iter().sum::<Duration>();
        let _ = writeln!(
            md,
            "| {label} | {} routes, {} | {} routes, {} | **{}** | {} | {} | {} | {} | {} |",
            counts[0],
            human_ms(ms(walls[0])),
            counts[1],
            human_ms(ms(walls[1])),
            human_ms(ms(total)),
            calls.ec2_reads(),
            calls.ec2_mutating().values().sum::<u64>(),
            ddb_r + ddb_w,
            calls.count("sns", "Publish"),
            if converged { "yes: 0 changes" } else { "**no**" },
        );
        if rate == "0" {
            let all_calls = calls.ec2_reads()
                + calls.ec2_mutating().values().sum::<u64>()
                + ddb_r
                + ddb_w
                + calls.count("sns", "Publish");
            unpaced_total = Some((total, all_calls));
            headlines.push(Headline::new(
                "6. end to end, converge 3 regions × 20 VPCs (unpaced)",
                format!(
                    "{} for {} routes, {} EC2 calls",
                    human_ms(ms(total)),
                    counts[0] + counts[1],
                    calls.ec2_reads() + calls.ec2_mutating().values().sum::<u64>()
                ),
                "—",
                None,
            ));
        } else {
            let ratio = walls[0].as_secs_f64() / pacing_floor_s;
            headlines.push(Headline::new(
                "6. end to end, paced as AWS (injector vs its pacing floor)",
                format!(
                    "{} vs floor {pacing_floor_s:.0} s ({ratio:.1}×)",
                    human_ms(ms(walls[0]))
                ),
                "—",
                None,
            ));
        }
        env.emulator.stop().await;
    }
    if let Some((total, all_calls)) = unpaced_total {
        let _ = writeln!(
            md,
            "\nUnpaced, the whole mesh converges in {} of API work against the emulator: {all_calls} calls \
             (EC2, DynamoDB, SNS), {:.0} ms each on average. That is the emulator's pace, not lbgp's: \
             moto handles one request at a time (section 5 measures its own time per call), so the \
             writes lbgp keeps in flight (a burst per region) queue there. The route writes go in \
             bursts, each between two ledger transactions (the burst's intents, then its \
             confirmations: sections 3 and 7), and the ledger transactions of one lease go one at a \
             time (DynamoDB cancels concurrent transactions on one item).\n",
            human_ms(ms(total)),
            ms(total) / all_calls as f64
        );
    }
    if let Some(injector) = paced_injector {
        let (spans, total) = &paced_spans;
        let order = spans
            .iter()
            .map(|(r, first, last, n)| format!("{r}'s {n} sit at positions {first}–{last}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Written side by side, each region's calls would spread over the
        // whole sequence; one after the other, each covers about its share.
        let blocked = !spans.is_empty()
            && spans.iter().all(|(_, first, last, _)| {
                (last - first + 1) as f64 <= *total as f64 * (1.8 / regions as f64).min(1.0)
            });
        let _ = writeln!(
            md,
            "Paced, the injector took {} against a floor of {pacing_floor_s:.0} s: its {} creates are \
             spread over {regions} regions whose buckets are independent, so the floor is one \
             region's share ({vpc_writes_per_region} writes). Of the {total} `CreateRoute` calls in \
             the emulator's log, in arrival order, {order}.{}\n",
            human_ms(ms(injector)),
            vpc_writes_per_region * regions,
            if blocked {
                " The regions were written one after the other, not side by side: `lbgp_runtime::apply` \
                 keeps one queue per region (`per_region`), so this is a regression to \
                 look into."
                    .to_owned()
            } else {
                " The regions were written side by side: `lbgp_runtime::apply` keeps one queue per region \
                 (`per_region`), each as wide as its bucket's burst, so one region waiting on \
                 its refill never holds up another."
                    .to_owned()
            }
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
    use crate::api::{injector_min_reads, propagator_min_reads};
    use crate::report::{median, thousands};
    use serde_json::json;

    #[test]
    fn read_floors_follow_the_model() {
        assert_eq!(injector_min_reads(3, 20).values().sum::<u64>(), 12);
        assert_eq!(injector_min_reads(1, 201)["DescribeRouteTables"], 2);
        assert_eq!(propagator_min_reads(3, 20, 60).values().sum::<u64>(), 21);
        assert_eq!(
            propagator_min_reads(1, 20, 3_500)["SearchTransitGatewayRoutes"],
            4
        );
    }

    #[test]
    fn spans_and_medians() {
        let log: Vec<Value> = ["a", "a", "b", "a", "b", "b"]
            .iter()
            .map(|r| json!({"action": "CreateRoute", "region": r}))
            .chain([json!({"action": "DescribeVpcs", "region": "c"})])
            .collect();
        let (spans, total) = region_spans(&log, "CreateRoute");
        assert_eq!(total, 6);
        assert_eq!(spans, vec![("a".to_owned(), 1, 4, 3), ("b".to_owned(), 3, 6, 3)]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(thousands(48_000), "48,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(623), "623");
    }
}
