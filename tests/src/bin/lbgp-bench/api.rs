//! Section 3: API efficiency (the handlers against the emulator, EC2,
//! DynamoDB and SNS calls counted against the model's minimum), and one
//! TGW route table at the scale of section 1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use lbgp_aws::ec2::EXPECTED_PER_SEARCH;
use lbgp_core::Cidr;
use lbgp_core::desire::SETTLE_SECS;
use lbgp_tests::emulator::{Calls, is_mutating};
use lbgp_tests::events::{cloudtrail, scheduled};
use lbgp_tests::fixtures::{self, TestEnv};
use serde_json::{Value, json};

use crate::Options;
use crate::mesh::{
    Handler, MESH_REGIONS, MESH_VPCS, Site, build_mesh, ceil_div, change_count, check_clean, service_split,
};
use crate::planner::{MESH_PREFIXES, REGIONS8, TGW_PREFIXES};
use crate::report::{Headline, Section, human_ms, ms, region, verdict};

// ====================================================== 3. API efficiency

/// `LBGP_EC2_WRITE_BURST`'s default: the writes of one ledger burst.
const WRITE_BURST: u64 = 50;

/// The fewest describe pages one level-triggered injector run over
/// `regions` regions of `vpcs` VPCs each can make (see the doc's model).
pub(crate) fn injector_min_reads(regions: usize, vpcs: usize) -> BTreeMap<&'static str, u64> {
    let r = regions as u64;
    BTreeMap::from([
        ("DescribeTransitGateways", r),
        ("DescribeTransitGatewayVpcAttachments", r),
        ("DescribeVpcs", r * ceil_div(vpcs, 200)),
        ("DescribeRouteTables", r * ceil_div(vpcs, 200)),
    ])
}

/// The same for the propagator, with `routes` routes in each region's one
/// TGW route table.
pub(crate) fn propagator_min_reads(
    regions: usize,
    vpcs: usize,
    routes: usize,
) -> BTreeMap<&'static str, u64> {
    let r = regions as u64;
    BTreeMap::from([
        ("DescribeTransitGateways", r),
        ("DescribeTransitGatewayVpcAttachments", r),
        ("DescribeTransitGatewayRouteTables", r),
        ("DescribeTransitGatewayPeeringAttachments", r),
        ("DescribeTransitGatewayAttachments", r),
        ("DescribeVpcs", r * ceil_div(vpcs, 200)),
        ("SearchTransitGatewayRoutes", r * ceil_div(routes.max(1), 1000)),
    ])
}

/// EC2 reads by action.
fn ec2_reads(calls: &Calls) -> BTreeMap<String, u64> {
    calls
        .0
        .get("ec2")
        .map(|m| {
            m.iter()
                .filter(|(a, _)| !is_mutating("ec2", a))
                .map(|(a, n)| (a.clone(), *n))
                .collect()
        })
        .unwrap_or_default()
}

fn describe_extra(actual: &BTreeMap<String, u64>, minimum: &BTreeMap<&'static str, u64>) -> String {
    let mut parts = Vec::new();
    for (action, n) in actual {
        let min = minimum.get(action.as_str()).copied().unwrap_or(0);
        if *n != min {
            parts.push(format!("{action} {n} (min {min})"));
        }
    }
    for (action, min) in minimum {
        if !actual.contains_key(*action) {
            parts.push(format!("{action} 0 (min {min})"));
        }
    }
    if parts.is_empty() {
        "every action at its minimum".to_owned()
    } else {
        parts.join("; ")
    }
}

struct ApiRow {
    function: &'static str,
    scenario: &'static str,
    reads: u64,
    min_reads: u64,
    writes: u64,
    diff: u64,
    extra: String,
    ddb: (u64, u64),
    sns: u64,
    wall: Duration,
}

async fn measure_api(
    env: &TestEnv,
    handler: &Handler,
    payload: Value,
    (scenario, diff): (&'static str, usize),
    minimum: BTreeMap<&'static str, u64>,
) -> anyhow::Result<ApiRow> {
    let function = handler.name();
    env.emulator.reset_calls().await?;
    let t = Instant::now();
    let response = handler.invoke(payload).await?;
    let wall = t.elapsed();
    check_clean(scenario, &response)?;
    if change_count(&response) != diff {
        bail!(
            "{function} {scenario}: {} changes, expected {diff}: {response}",
            change_count(&response)
        );
    }
    let calls = env.emulator.calls().await?;
    let reads = ec2_reads(&calls);
    Ok(ApiRow {
        function,
        scenario,
        reads: reads.values().sum(),
        min_reads: minimum.values().sum(),
        writes: calls.ec2_mutating().values().sum(),
        diff: diff as u64,
        extra: describe_extra(&reads, &minimum),
        ddb: service_split(&calls, "dynamodb"),
        sns: calls.count("sns", "Publish"),
        wall,
    })
}

pub(crate) async fn api_efficiency(_options: &Options) -> anyhow::Result<Section> {
    let env = TestEnv::new(&MESH_REGIONS).await?;
    let sites = build_mesh(&env).await?;
    let extra = [("LBGP_MAX_CHANGES", "100000")];
    let injector_config = env.config(&extra).injector()?;
    let inj = Handler::Injector(vpc_route_injector::App::new(
        vpc_route_injector::Injector {
            config: injector_config.clone(),
        },
        env.aws(&injector_config.common)?,
    ));
    let propagator_config = env.config(&extra).propagator()?;
    let prop = Handler::Propagator(tgw_route_propagator::App::new(
        tgw_route_propagator::Propagator {
            config: propagator_config.clone(),
        },
        env.aws(&propagator_config.common)?,
    ));
    let regions = MESH_REGIONS.len();
    let vpc_writes = regions * MESH_VPCS * 2 * MESH_PREFIXES.len();
    let tgw_writes = regions * (regions - 1) * MESH_VPCS;
    let mut rows = Vec::new();
    let inj_name = inj.name();
    rows.push(
        measure_api(
            &env,
            &inj,
            scheduled(),
            ("converge from empty", vpc_writes),
            injector_min_reads(regions, MESH_VPCS),
        )
        .await?,
    );
    rows.push(
        measure_api(
            &env,
            &inj,
            scheduled(),
            ("converged", 0),
            injector_min_reads(regions, MESH_VPCS),
        )
        .await?,
    );
    // One change: a route of ours deleted out of band, and its CloudTrail event.
    let site = &sites[1];
    // Past the settling window: a route of ours written moments ago and
    // not seen is taken for EC2's read lag (frozen), not re-created.
    env.clock.advance(SETTLE_SECS + 1);
    site_delete_vpc_route(&env, site).await?;
    rows.push(
        measure_api(
            &env,
            &inj,
            cloudtrail(
                "DeleteRoute",
                site.region,
                json!({"routeTableId": site.vpcs[0].main, "destinationCidrBlock": "172.16.0.0/12"}),
            ),
            ("one change (1 route deleted, its event)", 1),
            injector_min_reads(1, MESH_VPCS),
        )
        .await?,
    );
    // Own propagated routes, then the learned ones too.
    let own = MESH_VPCS;
    let learned = MESH_VPCS * (regions - 1);
    rows.push(
        measure_api(
            &env,
            &prop,
            scheduled(),
            ("converge from empty", tgw_writes),
            propagator_min_reads(regions, MESH_VPCS, own),
        )
        .await?,
    );
    rows.push(
        measure_api(
            &env,
            &prop,
            scheduled(),
            ("converged", 0),
            propagator_min_reads(regions, MESH_VPCS, own + learned),
        )
        .await?,
    );
    let learned_prefix = "10.1.0.0/16";
    env.clock.advance(SETTLE_SECS + 1);
    env.ec2(site.region)
        .delete_transit_gateway_route()
        .transit_gateway_route_table_id(&site.tgw_rtb)
        .destination_cidr_block(learned_prefix)
        .send()
        .await?;
    rows.push(
        measure_api(
            &env,
            &prop,
            cloudtrail(
                "DeleteTransitGatewayRoute",
                site.region,
                json!({"DeleteTransitGatewayRouteRequest": {"TransitGatewayRouteTableId": site.tgw_rtb,
                        "DestinationCidrBlock": learned_prefix}}),
            ),
            ("one change (1 route deleted, its event)", 1),
            propagator_min_reads(regions, MESH_VPCS, own + learned),
        )
        .await?,
    );
    let large = large_tgw_table_read(&env).await?;

    let mut md = String::new();
    let mut headlines = Vec::new();
    let _ = writeln!(md, "## 3. API efficiency\n");
    let _ = writeln!(
        md,
        "The handlers (`App::new(Injector {{ config }}, aws)`, `App::new(Propagator {{ config }}, aws)`) \
         against one emulator, unpaced (`LBGP_EC2_WRITE_RATE=0`), `LBGP_MAX_CHANGES=100000`. The mesh: \
         {regions} regions ({}), one TGW tagged `lbgp:mesh=prod` per region with {MESH_VPCS} attached \
         VPCs, each VPC with its main and one custom route table; the TGWs fully meshed by peering. \
         Calls are counted by the emulator per action.\n",
        MESH_REGIONS.join(", ")
    );
    let _ = writeln!(
        md,
        "**Minimum reads (the model).** A level-triggered run must read the whole state of its scope \
         (every region for a scheduled run and for the propagator; the event's region for the \
         injector). The floor is one page per describe per region, for each kind of resource the \
         function's inputs are made of, with the limits of the API: a filter takes at most 200 values \
         (so VPCs and route tables are read in ⌈VPCs/200⌉ pages), SearchTransitGatewayRoutes answers \
         at most 1,000 routes a page, then a `NextToken` (so a table needs ⌈routes/1000⌉ calls, and \
         one search with only a `type` filter covers IPv4 and IPv6 together); a describe without \
         `MaxResults` returns everything in one page. Injector per region: DescribeTransitGateways, \
         DescribeTransitGatewayVpcAttachments, DescribeVpcs, DescribeRouteTables = 4. Propagator per \
         region: those three (no route tables) + DescribeTransitGatewayRouteTables, \
         DescribeTransitGatewayPeeringAttachments, DescribeTransitGatewayAttachments (the route table \
         each peering is associated with, which only it reports), and the searches = 7. **Minimum writes**: the exact \
         diff, known from the scenario (from empty: {vpc_writes} VPC routes = {regions}×{MESH_VPCS}×2 \
         tables×3 prefixes, {tgw_writes} TGW routes = {regions} tables × {} peers × {MESH_VPCS} \
         prefixes).\n",
        regions - 1
    );
    let _ = writeln!(
        md,
        "| function | scenario | EC2 reads | minimum | reads / min (≤ 1.2) | EC2 writes | exact diff (= writes) | where the reads differ | wall |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut worst_ratio: f64 = 0.0;
    let mut writes_exact = true;
    for row in &rows {
        let ratio = row.reads as f64 / row.min_reads as f64;
        worst_ratio = worst_ratio.max(ratio);
        writes_exact &= row.writes == row.diff;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | **{ratio:.2}×** {} | {} | {} {} | {} | {} |",
            row.function,
            row.scenario,
            row.reads,
            row.min_reads,
            verdict(Some(ratio <= 1.2)),
            row.writes,
            row.diff,
            verdict(Some(row.writes == row.diff)),
            row.extra,
            human_ms(ms(row.wall))
        );
    }
    let _ = writeln!(
        md,
        "\nDynamoDB and SNS in the same runs. The design's minimum: reads = one ledger `Query` page per \
         region in scope + one `GetItem` per watched set (the last conflict set, the last set of \
         peerings without a route table), so that a set is notified once when it changes; writes = lease acquire and release \
         (2 `UpdateItem`) + per burst of a region's creates (at most `LBGP_EC2_WRITE_BURST` = \
         {WRITE_BURST} writes) 2 fenced ledger transactions, the burst's pending intents before its \
         route writes and their confirmations (owned) after: the write-ahead that makes a crash \
         between two calls safe, 2 × ⌈creates / {WRITE_BURST}⌉ per region (section 7 measures it \
         against the protocol before, 2 per create); one SNS publish per run that changed something.\n"
    );
    let _ = writeln!(
        md,
        "| function | scenario | DynamoDB reads | minimum | DynamoDB writes | minimum | SNS publishes |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in &rows {
        let scope = if row.function == inj_name && row.scenario.starts_with("one") {
            1
        } else {
            regions as u64
        };
        // The scenarios' changes are creates, spread evenly over the regions
        // written: two ledger transactions per burst of a region's writes.
        let written = match row.diff {
            0 => 0,
            1 => 1,
            _ => regions as u64,
        };
        let per_region = row.diff.checked_div(written).unwrap_or(0);
        let min_writes = 2 + 2 * written * per_region.div_ceil(WRITE_BURST);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.function,
            row.scenario,
            row.ddb.0,
            scope + 2,
            row.ddb.1,
            min_writes,
            row.sns
        );
    }
    let LargeRead {
        routes,
        paged,
        legacy,
        partition,
        pages,
    } = large;
    let paged_ok = paged.expecting == pages;
    let legacy_ratio = legacy.expecting as f64 / partition as f64;
    let _ = writeln!(
        md,
        "\n**One TGW route table at the scale of section 1.** Each TGW table of the 8 × 500 L-BGP mesh \
         holds {routes} learned routes (7 peers × 500 prefixes, the same `/20`s as section 1). A \
         table of {routes} static routes is filled in the emulator, then read with `Ec2::tgw_routes` \
         (nothing known about the table) and with `Ec2::tgw_routes_expecting` given the table's \
         routes, as the propagator reads every table, passing the routes its ledger holds there and \
         the region's VPC CIDRs. Twice: as AWS answers now, SearchTransitGatewayRoutes paging with \
         `NextToken` (`MaxResults` 1,000, the emulator's default), where one search of the whole \
         table, page after page, reads it in ⌈routes/1000⌉ = {pages} calls; and as it answered \
         before `NextToken` (`set_fidelity({{\"search_routes_paging\": \"legacy\"}})`: at most 1,000 \
         routes, `AdditionalRoutesAvailable` and no token), where the reader falls back to splitting \
         the address space. For the fallback, the least a reader that knows the table can do is \
         {partition} prefix searches that partition the address space into complete answers (the \
         halving tree's leaves: the empty space around `10.0.0.0/8` needs a search per level).\n"
    );
    let _ = writeln!(
        md,
        "| read | SearchTransitGatewayRoutes answers | calls | ⌈routes/1000⌉ | calls / ⌈routes/1000⌉ | least partition | calls / least partition | target |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n\
         | `tgw_routes_expecting` (the propagator's) | paged (`NextToken`) | **{}** | {pages} | **{:.2}×** | — | — | = {pages} {} |\n\
         | `tgw_routes` (nothing known) | paged (`NextToken`) | {} | {pages} | {:.2}× | — | — | — |\n\
         | `tgw_routes_expecting` (the propagator's) | legacy (no token): split fallback | {} | {pages} | {:.2}× | {partition} | **{legacy_ratio:.2}×** | ≤ 1.2× the least partition {} |\n\
         | `tgw_routes` (nothing known) | legacy (no token): split fallback | {} | {pages} | {:.2}× | {partition} | {:.2}× | — |\n",
        paged.expecting,
        paged.expecting as f64 / pages as f64,
        verdict(Some(paged_ok)),
        paged.cold,
        paged.cold as f64 / pages as f64,
        legacy.expecting,
        legacy.expecting as f64 / pages as f64,
        verdict(Some(legacy_ratio <= 1.2)),
        legacy.cold,
        legacy.cold as f64 / pages as f64,
        legacy.cold as f64 / partition as f64,
    );
    let _ = writeln!(
        md,
        "How the fallback reads: the first search of the whole table comes back truncated without a \
         token; then `0.0.0.0/0` and `::/0` apart, and a truncated search is split into the two \
         halves of its prefix, the searches of one depth together. The routes equal to a split \
         prefix are in neither half: one `supernet-of-match` search just below each deepest split \
         finds them all. Given what the table should hold, the reader starts at the prefixes \
         expected to hold at most {EXPECTED_PER_SEARCH} routes each (a fifth left for routes it does \
         not expect), skipping the truncated searches that would find them; a wrong expectation \
         costs searches, never routes (tested in `tests/tests/adapters.rs`). The rest of the gap to \
         the least partition is that headroom, the first whole-table search and the supernet \
         searches. With paging none of this runs: the first search's pages are the whole table.\n"
    );
    let _ = writeln!(
        md,
        "Notes on the model: a tighter floor exists for the injector, since every associated VPC CIDR \
         also appears as the `local` route of each of the VPC's tables, which DescribeRouteTables \
         returns anyway: DescribeVpcs could be skipped (3 pages per region instead of 4; the \
         injector would then stand at 1.33×). The propagator reads each table of the small mesh \
         with one search of the whole table.\n"
    );
    headlines.push(Headline::new(
        format!("3. SearchTransitGatewayRoutes for one TGW table of {routes} routes"),
        format!(
            "{} calls paged with `NextToken` (⌈routes/1000⌉ = {pages}); legacy fallback (no token): {} calls vs least partition {partition} ({legacy_ratio:.2}×)",
            paged.expecting, legacy.expecting
        ),
        format!("= ⌈routes/1000⌉ = {pages} calls"),
        Some(paged_ok),
    ));
    headlines.push(Headline::new(
        "3. EC2 writes vs the exact diff (6 scenarios)",
        if writes_exact {
            "exactly the diff in every scenario".to_owned()
        } else {
            "extra writes (see section 3)".to_owned()
        },
        "= minimum",
        Some(writes_exact),
    ));
    headlines.push(Headline::new(
        "3. EC2 reads vs pages needed (worst of the 6 scenarios)",
        format!("{worst_ratio:.2}×"),
        "≤ 1.2×",
        Some(worst_ratio <= 1.2),
    ));
    env.emulator.stop().await;
    Ok(Section {
        markdown: md,
        headlines,
    })
}

/// SearchTransitGatewayRoutes calls of one table read by each reader.
#[derive(Debug, Clone, Copy)]
struct Searches {
    /// `Ec2::tgw_routes`: nothing known about the table.
    cold: u64,
    /// `Ec2::tgw_routes_expecting` with the table's routes, as the
    /// propagator passes what its ledger holds.
    expecting: u64,
}

/// One large TGW table read, as AWS answers now and as it answered before.
struct LargeRead {
    routes: usize,
    /// SearchTransitGatewayRoutes pages with `NextToken`.
    paged: Searches,
    /// The emulator in `search_routes_paging: legacy`: at most 1,000
    /// routes, `AdditionalRoutesAvailable`, no token (the split fallback).
    legacy: Searches,
    /// The fewest prefix searches that partition the address space with
    /// every answer complete, for a reader that knows the table.
    partition: u64,
    /// ⌈routes / 1000⌉: what pagination needs.
    pages: u64,
}

/// The fewest `subnet-of-match` searches that partition the space under
/// `scope` into answers of at most 1,000 of `routes`: the leaves of the
/// halving tree that splits only what is over.
fn partition_searches(scope: ipnet::IpNet, routes: &[ipnet::IpNet]) -> u64 {
    let inside: Vec<ipnet::IpNet> = routes.iter().filter(|r| scope.contains(*r)).copied().collect();
    if inside.len() <= 1000 {
        return 1;
    }
    let Ok(mut halves) = scope.subnets(scope.prefix_len() + 1) else {
        return 1;
    };
    let (Some(a), Some(b)) = (halves.next(), halves.next()) else {
        return 1;
    };
    partition_searches(a, &inside) + partition_searches(b, &inside)
}

/// Fills one TGW route table with the 3,500 routes one table of section 1's
/// L-BGP mesh learns, and reads it with `Ec2::tgw_routes` and with
/// `Ec2::tgw_routes_expecting`, counting SearchTransitGatewayRoutes, first
/// paged with `NextToken`, then with the emulator answering as AWS did
/// before it (the readers' split fallback).
async fn large_tgw_table_read(env: &TestEnv) -> anyhow::Result<LargeRead> {
    let region_name = MESH_REGIONS[0];
    let ec2 = env.ec2(region_name);
    let tgw = fixtures::create_tgw(&ec2, None).await?;
    let rtb = fixtures::tgw_route_tables(&ec2, &tgw)
        .await?
        .into_iter()
        .next()
        .context("TGW default route table")?;
    // Peers 1..8 of section 1's mesh, 500 prefixes each.
    let prefixes: Vec<String> = (1..REGIONS8.len())
        .flat_map(|u| {
            (0..TGW_PREFIXES).map(move |p| format!("10.{}.{}.0/20", u * 32 + p / 16, (p % 16) * 16))
        })
        .collect();
    futures::stream::iter(&prefixes)
        .map(|prefix| {
            let ec2 = ec2.clone();
            let rtb = rtb.clone();
            async move {
                ec2.create_transit_gateway_route()
                    .transit_gateway_route_table_id(rtb)
                    .destination_cidr_block(prefix)
                    .blackhole(true)
                    .send()
                    .await
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let common = env.config(&[("LBGP_REGIONS", region_name)]).common()?;
    let aws = env.aws(&common)?;
    let reader = aws.ec2(&region(region_name)?)?;
    let expected: Vec<Cidr> = prefixes.iter().map(|p| p.parse()).collect::<Result<_, _>>()?;
    let searches = || async {
        anyhow::Ok(
            env.emulator
                .calls()
                .await?
                .count("ec2", "SearchTransitGatewayRoutes"),
        )
    };
    let read = |mode: &'static str| {
        let (reader, rtb, expected, prefixes) = (&reader, &rtb, &expected, &prefixes);
        async move {
            env.emulator
                .set_fidelity(json!({"search_routes_paging": mode}))
                .await?;
            env.emulator.reset_calls().await?;
            let cold = reader.tgw_routes(rtb).await?;
            let cold_calls = searches().await?;
            env.emulator.reset_calls().await?;
            let expecting = reader.tgw_routes_expecting(rtb, expected).await?;
            let expecting_calls = searches().await?;
            for (how, read) in [("tgw_routes", &cold), ("tgw_routes_expecting", &expecting)] {
                if read.len() != prefixes.len() {
                    bail!("{how} ({mode}) read {} routes of {}", read.len(), prefixes.len());
                }
            }
            anyhow::Ok(Searches {
                cold: cold_calls,
                expecting: expecting_calls,
            })
        }
    };
    let paged = read("token").await?;
    let legacy = read("legacy").await?;
    // Back to the defaults (token paging) for whatever follows.
    env.emulator.set_fidelity(json!({})).await?;
    let nets: Vec<ipnet::IpNet> = expected.iter().map(Cidr::net).collect();
    let partition =
        partition_searches("0.0.0.0/0".parse()?, &nets) + partition_searches("::/0".parse()?, &nets);
    Ok(LargeRead {
        routes: prefixes.len(),
        paged,
        legacy,
        partition,
        pages: ceil_div(prefixes.len(), 1000),
    })
}

async fn site_delete_vpc_route(env: &TestEnv, site: &Site) -> anyhow::Result<()> {
    env.ec2(site.region)
        .delete_route()
        .route_table_id(&site.vpcs[0].main)
        .destination_cidr_block("172.16.0.0/12")
        .send()
        .await?;
    Ok(())
}
