//! Zero-downtime migration onto the mesh, proven write by write: three
//! regions, six legacy VPCs with legacy routers; the legacy overlay, two
//! cutovers and a rollback, each applied one EC2 write per run (the fault
//! layer lets exactly one write land, the next run goes on from there), and
//! after every write the path tracer finds every ordered pair of VPCs
//! reachable, with the VPC that moves never answered over the old network
//! once others reach it over the new one. The same check catches a wrong
//! order (the others' routes withdrawn before the VPC's own).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use anyhow::{Context, anyhow, ensure};
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::vpc_routes;
use lbgp_tests::migration_fixtures::{Scene, Via, check_order, one_write, scene, vias};
use serde_json::{Value, json};

/// Applies what `first` (then scheduled runs) plans one EC2 write at a
/// time, checking every pair after each; returns the writes it took.
async fn one_write_at_a_time(s: &Scene, first: Value, moving: &str) -> anyhow::Result<Vec<String>> {
    let mut payload = first;
    let mut writes = Vec::new();
    loop {
        ensure!(
            writes.len() < 100,
            "{moving}: no convergence after {} writes",
            writes.len()
        );
        s.env.emulator.reset_calls().await?;
        s.env.emulator.set_faults(one_write()).await?;
        let response = s.invoke(payload).await?;
        s.env.emulator.clear_faults().await?;
        if let Some(refused) = response["refused"].as_str() {
            return Err(anyhow!(
                "{moving}: refused: {refused}; preflight {}",
                response["preflight"]
            ));
        }
        let landed = s.ec2_writes().await?;
        if landed.is_empty() {
            ensure!(
                response["errors"].as_array().is_none_or(Vec::is_empty),
                "{moving}: nothing landed and errors: {response}"
            );
            break;
        }
        ensure!(landed.len() == 1, "{moving}: {landed:?} landed in one run");
        writes.extend(landed);
        // EC2's read-after-write lag settles between runs.
        s.env.clock.advance(60);
        let network = s.network().await?;
        let paths = s.paths(&network).map_err(|e| {
            anyhow!(
                "{moving}, after write {} ({:?}):\n{e}",
                writes.len(),
                writes.last()
            )
        })?;
        check_order(&paths, &s.vpcs, moving).map_err(|e| {
            anyhow!(
                "{moving}, after write {} ({:?}): {e}",
                writes.len(),
                writes.last()
            )
        })?;
        payload = scheduled();
    }
    let (response, again) = s.writes_of(scheduled()).await?;
    ensure!(
        again.is_empty(),
        "{moving}: a second run wrote {again:?}: {response}"
    );
    Ok(writes)
}

/// Asserts the steady state: `migrated` VPCs reach everyone over the mesh
/// and are reached over it; legacy pairs stay on the legacy routers.
async fn assert_settled(s: &Scene, migrated: &[&str]) -> anyhow::Result<()> {
    let network = s.network().await?;
    let paths = s.paths(&network).map_err(|e| anyhow!("{e}"))?;
    for a in &s.vpcs {
        for b in s.vpcs.iter().filter(|b| b.id() != a.id()) {
            let want = if migrated.contains(&a.id()) || migrated.contains(&b.id()) {
                Via::Mesh
            } else {
                Via::Legacy
            };
            ensure!(
                vias(&paths, a.id(), b.id()) == vec![want],
                "{} → {}: {:?}, wanted {want:?}",
                a.id(),
                b.id(),
                vias(&paths, a.id(), b.id())
            );
        }
    }
    Ok(())
}

/// The overlay routes of `vpc`'s tables: (table, destination) → target.
async fn overlay_routes(s: &Scene, vpc: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let v = s.vpc(vpc);
    let ec2 = s.env.ec2(&v.net.region);
    let mut out = Vec::new();
    for table in v.tables() {
        for (dest, target) in vpc_routes(&ec2, &table).await? {
            if target.starts_with("eni-") || target.starts_with("i-") {
                out.push((table.clone(), dest, target));
            }
        }
    }
    Ok(out)
}

fn migrate(vpc: &str, to: &str) -> Value {
    json!({"migrate": {"vpc": vpc, "to": to}, "dry_run": false})
}

#[tokio::test]
async fn cutovers_and_a_rollback_keep_every_pair_reachable_after_every_write() -> anyhow::Result<()> {
    let s = scene(1).await?;
    let ids: Vec<String> = s.vpcs.iter().map(|v| v.id().to_owned()).collect();

    // The overlay: each legacy VPC's three tables get the five other
    // VPCs' CIDRs toward its own legacy router, beside the aggregates.
    let installed = s.invoke(scheduled()).await?;
    ensure!(
        installed["errors"].as_array().is_none_or(Vec::is_empty),
        "{installed}"
    );
    ensure!(installed["refused"].is_null(), "{installed}");
    for v in &s.vpcs {
        let routes = overlay_routes(&s, v.id()).await?;
        ensure!(routes.len() == 15, "{}: {routes:?}", v.id());
        ensure!(
            routes
                .iter()
                .all(|(_, _, t)| *t == v.routers[0].eni || *t == v.routers[0].instance),
            "{}: {routes:?}",
            v.id()
        );
    }
    let (_, again) = s.writes_of(scheduled()).await?;
    ensure!(again.is_empty(), "second run wrote {again:?}");
    assert_settled(&s, &[]).await?;
    let before_cutover = overlay_routes(&s, &ids[0]).await?;

    // Cutover of vpc 1 (us-east-1): the tag, its 15 own overlay routes,
    // then its CIDR in the five others' 15 tables.
    let writes = one_write_at_a_time(&s, migrate(&ids[0], "migrated"), &ids[0]).await?;
    ensure!(writes.len() == 31, "{writes:?}");
    ensure!(writes[0] == "CreateTags", "the tag goes first: {writes:?}");
    ensure!(writes[1..].iter().all(|w| w == "DeleteRoute"), "{writes:?}");
    assert_settled(&s, &[&ids[0]]).await?;
    ensure!(overlay_routes(&s, &ids[0]).await?.is_empty());

    // Cutover of vpc 4 (eu-west-1): one VPC fewer in everyone's overlay.
    let writes = one_write_at_a_time(&s, migrate(&ids[3], "migrated"), &ids[3]).await?;
    ensure!(writes.len() == 1 + 12 + 12, "{writes:?}");
    assert_settled(&s, &[&ids[0], &ids[3]]).await?;

    // Rollback of vpc 1: the others' routes toward it first, then its own;
    // its overlay comes back exactly as it was, less vpc 4.
    let writes = one_write_at_a_time(&s, migrate(&ids[0], "legacy"), &ids[0]).await?;
    ensure!(writes.len() == 1 + 12 + 12, "{writes:?}");
    ensure!(writes[1..].iter().all(|w| w == "CreateRoute"), "{writes:?}");
    assert_settled(&s, &[&ids[3]]).await?;
    let mut expected: Vec<_> = before_cutover
        .into_iter()
        .filter(|(_, dest, _)| *dest != s.vpc(&ids[3]).cidr)
        .collect();
    expected.sort();
    let mut restored = overlay_routes(&s, &ids[0]).await?;
    restored.sort();
    ensure!(restored == expected, "restored {restored:?}\nwanted {expected:?}");
    Ok(())
}

#[tokio::test]
async fn the_wrong_order_opens_an_asymmetric_window_the_same_check_catches() -> anyhow::Result<()> {
    let s = scene(1).await?;
    let x = s.vpcs[2].id().to_owned();
    s.invoke(scheduled()).await?;
    let plan = s
        .invoke(json!({"migrate": {"vpc": x, "to": "migrated"}, "dry_run": true}))
        .await?;
    ensure!(plan["refused"].is_null(), "{plan}");
    let changes = plan["changes"].as_array().context("changes")?.clone();
    let stage = |n: &str| -> Vec<Value> {
        changes
            .iter()
            .filter(|c| c["reason"].as_str().is_some_and(|r| r.contains(n)))
            .cloned()
            .collect()
    };
    let (own, others) = (stage("stage 1 of 2"), stage("stage 2 of 2"));
    ensure!(own.len() == 15 && others.len() == 15, "{plan}");

    // Replayed by hand in the wrong order: the others' routes first.
    let ec2 = s.env.ec2(&s.vpcs[2].net.region);
    let mut window = None;
    for (n, c) in others.iter().chain(&own).enumerate() {
        let region = c["region"].as_str().context("region")?;
        let ec2 = if region == s.vpcs[2].net.region {
            ec2.clone()
        } else {
            s.env.ec2(region)
        };
        ec2.delete_route()
            .route_table_id(c["route_table_id"].as_str().context("table")?)
            .destination_cidr_block(c["destination"].as_str().context("destination")?)
            .send()
            .await?;
        let network = s.network().await?;
        let paths = s
            .paths(&network)
            .map_err(|e| anyhow!("after write {}: {e}", n + 1))?;
        if let Err(e) = check_order(&paths, &s.vpcs, &x)
            && window.is_none()
        {
            window = Some((n + 1, e));
        }
    }
    let (at, why) = window.context("the wrong order never showed an asymmetric path")?;
    // The first withdrawn route toward x in a table that serves subnets
    // (the paths traced; main tables serve none here) opens the window.
    let subnet_tables: Vec<&String> = s.vpcs.iter().flat_map(|v| v.net.tables.iter()).collect();
    let first = others
        .iter()
        .position(|c| subnet_tables.iter().any(|t| c["route_table_id"] == t.as_str()))
        .context("a stage-2 change in a subnet table")?;
    ensure!(
        at == first + 1,
        "window opened after write {at}, wanted {}: {why}",
        first + 1
    );
    ensure!(why.contains("ingress moved before egress"), "{why}");
    Ok(())
}
