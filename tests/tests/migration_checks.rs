//! The migration's guard rails against the emulator: each preflight check
//! refusing a cutover (or rollback) with nothing changed; adoption taking
//! exactly the old tooling's routes that equal the overlay; the injector and
//! the watcher not fighting over a legacy router's failover.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use anyhow::{Context, ensure};
use lbgp_tests::events::{scheduled, state_change};
use lbgp_tests::failover_fixtures::{route_to_eni, stop};
use lbgp_tests::fixtures::{tgw_route_tables, vpc_routes};
use lbgp_tests::migration_fixtures::{Scene, scene};
use serde_json::{Value, json};

fn migrate(vpc: &str, to: &str) -> Value {
    json!({"migrate": {"vpc": vpc, "to": to}, "dry_run": false})
}

/// Runs `payload` and asserts it was refused on `check` with no EC2 write
/// and the VPC's tag unchanged; returns the failed check's detail.
async fn refused_on(s: &Scene, payload: Value, vpc: &str, check: &str) -> anyhow::Result<String> {
    let tag_before = migration_tag(s, vpc).await?;
    let (response, writes) = s.writes_of(payload).await?;
    ensure!(
        writes.is_empty(),
        "a refused migration wrote {writes:?}: {response}"
    );
    ensure!(response["refused"].as_str().is_some(), "not refused: {response}");
    let checks = response["preflight"].as_array().context("preflight")?;
    let failed = checks
        .iter()
        .find(|c| c["check"] == check)
        .with_context(|| format!("no {check} check: {response}"))?;
    ensure!(failed["passed"] == false, "{check} passed: {response}");
    ensure!(migration_tag(s, vpc).await? == tag_before, "the tag changed");
    Ok(failed["detail"].as_str().unwrap_or_default().to_owned())
}

async fn migration_tag(s: &Scene, vpc: &str) -> anyhow::Result<Option<String>> {
    let v = s.vpc(vpc);
    let out = s
        .env
        .ec2(&v.net.region)
        .describe_vpcs()
        .vpc_ids(vpc)
        .send()
        .await?;
    Ok(out
        .vpcs()
        .iter()
        .flat_map(|v| v.tags())
        .find(|t| t.key() == Some("lbgp:migration"))
        .and_then(|t| t.value().map(str::to_owned)))
}

async fn installed() -> anyhow::Result<Scene> {
    let s = scene(1).await?;
    let r = s.invoke(scheduled()).await?;
    ensure!(
        r["refused"].is_null() && r["errors"].as_array().is_none_or(Vec::is_empty),
        "{r}"
    );
    Ok(s)
}

#[tokio::test]
async fn preflight_refuses_a_vpc_that_is_not_attached() -> anyhow::Result<()> {
    let s = installed().await?;
    let x = s.vpcs[0].clone();
    let ec2 = s.env.ec2(&x.net.region);
    let attachment = ec2
        .describe_transit_gateway_vpc_attachments()
        .send()
        .await?
        .transit_gateway_vpc_attachments()
        .iter()
        .find(|a| a.vpc_id() == Some(x.id()))
        .and_then(|a| a.transit_gateway_attachment_id().map(str::to_owned))
        .context("attachment")?;
    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(attachment)
        .send()
        .await?;
    let detail = refused_on(&s, migrate(x.id(), "migrated"), x.id(), "attached").await?;
    ensure!(detail.contains(x.id()), "{detail}");
    Ok(())
}

#[tokio::test]
async fn preflight_refuses_a_table_without_the_aggregates() -> anyhow::Result<()> {
    let s = installed().await?;
    let x = s.vpcs[1].clone();
    s.env
        .ec2(&x.net.region)
        .delete_route()
        .route_table_id(&x.net.tables[0])
        .destination_cidr_block("10.0.0.0/8")
        .send()
        .await?;
    let detail = refused_on(&s, migrate(x.id(), "migrated"), x.id(), "aggregates").await?;
    ensure!(detail.contains(&x.net.tables[0]), "{detail}");
    Ok(())
}

#[tokio::test]
async fn preflight_refuses_before_l_bgp_has_converged() -> anyhow::Result<()> {
    let s = installed().await?;
    let x = s.vpcs[0].clone();
    // L-BGP's route toward x in a peer region's TGW, gone.
    let peer = s.vpcs[2].clone();
    let ec2 = s.env.ec2(&peer.net.region);
    let rtb = tgw_route_tables(&ec2, &peer.tgw).await?.remove(0);
    ec2.delete_transit_gateway_route()
        .transit_gateway_route_table_id(rtb)
        .destination_cidr_block(&x.cidr)
        .send()
        .await?;
    let detail = refused_on(&s, migrate(x.id(), "migrated"), x.id(), "l_bgp_converged").await?;
    ensure!(detail.contains(&peer.tgw) || detail.contains(&x.cidr), "{detail}");
    Ok(())
}

#[tokio::test]
async fn preflight_refuses_when_the_tracer_finds_no_path_over_the_mesh() -> anyhow::Result<()> {
    let s = installed().await?;
    let x = s.vpcs[0].clone();
    // Every route is in place, but what arrives over the peering from
    // eu-west-1 is routed by no table: a blackhole only the tracer sees.
    let peer = s.vpcs[2].clone();
    let ec2 = s.env.ec2(&peer.net.region);
    let rtb = tgw_route_tables(&ec2, &peer.tgw).await?.remove(0);
    let associations = ec2
        .get_transit_gateway_route_table_associations()
        .transit_gateway_route_table_id(&rtb)
        .send()
        .await?;
    let peering = associations
        .associations()
        .iter()
        .find(|a| a.resource_type().map(|t| t.as_str()) == Some("peering"))
        .and_then(|a| a.transit_gateway_attachment_id().map(str::to_owned))
        .context("a peering association")?;
    ec2.disassociate_transit_gateway_route_table()
        .transit_gateway_route_table_id(&rtb)
        .transit_gateway_attachment_id(&peering)
        .send()
        .await?;
    let detail = refused_on(&s, migrate(x.id(), "migrated"), x.id(), "mesh_path").await?;
    ensure!(
        detail.contains("blackhole") || detail.contains("no route"),
        "{detail}"
    );
    Ok(())
}

#[tokio::test]
async fn rollback_is_refused_when_no_legacy_router_is_healthy() -> anyhow::Result<()> {
    let s = installed().await?;
    let x = s.vpcs[4].clone();
    let done = s.invoke(migrate(x.id(), "migrated")).await?;
    ensure!(done["refused"].is_null(), "{done}");
    for _ in 0..3 {
        s.env.clock.advance(60);
        s.invoke(scheduled()).await?;
    }
    ensure!(migration_tag(&s, x.id()).await?.as_deref() == Some("migrated"));
    stop(&s.env.ec2(&x.net.region), &x.routers[0].instance).await?;
    let detail = refused_on(&s, migrate(x.id(), "legacy"), x.id(), "legacy_group_healthy").await?;
    ensure!(
        detail.contains(&x.group) || detail.contains("no healthy"),
        "{detail}"
    );
    Ok(())
}

#[tokio::test]
async fn adoption_records_exactly_the_routes_equal_to_the_overlay() -> anyhow::Result<()> {
    let s = scene(1).await?;
    let x = s.vpcs[0].clone();
    let ec2 = s.env.ec2(&x.net.region);
    let other = s.vpcs[1].clone();
    // The old tooling's routes in x: two equal to what the overlay wants,
    // one toward the wrong interface, one the overlay does not want.
    route_to_eni(&ec2, &x.net.tables[0], &other.cidr, &x.routers[0].eni).await?;
    route_to_eni(&ec2, &x.net.tables[1], &other.cidr, &x.routers[0].eni).await?;
    let stray = lbgp_tests::failover_fixtures::create_eni(&ec2, &x.net.subnets[0]).await?;
    route_to_eni(&ec2, &x.net.main, &other.cidr, &stray).await?;
    route_to_eni(&ec2, &x.net.tables[0], "10.99.0.0/16", &x.routers[0].eni).await?;
    let before: Vec<_> = [&x.net.tables[0], &x.net.tables[1], &x.net.main]
        .into_iter()
        .map(|t| (t.clone(), ()))
        .collect();
    let routes_before = {
        let mut all = Vec::new();
        for (t, ()) in &before {
            all.push(vpc_routes(&ec2, t).await?);
        }
        all
    };

    // lbgp leaves foreign routes alone: the first run reports conflicts.
    let first = s.invoke(scheduled()).await?;
    ensure!(first["refused"].is_null(), "{first}");
    let conflicts = first["conflicts"].as_array().context("conflicts")?;
    ensure!(
        conflicts
            .iter()
            .any(|c| c["route_table_id"] == x.net.main && c["destination"] == other.cidr.as_str()),
        "the stray route is not reported: {first}"
    );

    // The dry run lists exactly the two; nothing is written.
    let adopt = |dry: bool| json!({"adopt": {"vpc": x.id()}, "dry_run": dry});
    let (dry, writes) = s.writes_of(adopt(true)).await?;
    ensure!(writes.is_empty(), "{writes:?}");
    let listed: Vec<(String, String)> = dry["adopted"]
        .as_array()
        .context("adopted")?
        .iter()
        .map(|a| {
            (
                a["route_table_id"].as_str().unwrap().to_owned(),
                a["destination"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want = vec![
        (x.net.tables[0].clone(), other.cidr.clone()),
        (x.net.tables[1].clone(), other.cidr.clone()),
    ];
    want.sort();
    let mut got = listed.clone();
    got.sort();
    ensure!(got == want, "adopted {got:?}, wanted {want:?}: {dry}");

    // The real adoption writes the ledger only.
    s.env.emulator.reset_calls().await?;
    let real = s.invoke(adopt(false)).await?;
    ensure!(s.env.emulator.calls().await?.ec2_mutating().is_empty(), "{real}");
    ensure!(real["adopted"].as_array().map(Vec::len) == Some(2), "{real}");
    for (i, (t, ())) in before.iter().enumerate() {
        let now = vpc_routes(&ec2, t).await?;
        for (dest, target) in &routes_before[i] {
            ensure!(now.get(dest) == Some(target), "{t} {dest} changed");
        }
    }

    // The stray route would keep main's traffic off the mesh: the cutover
    // is refused until the operator removes it; then the cutover withdraws
    // the adopted two and never the route the overlay does not want.
    let detail = refused_on(&s, migrate(x.id(), "migrated"), x.id(), "mesh_path").await?;
    ensure!(detail.contains(&x.net.main), "{detail}");
    ec2.delete_route()
        .route_table_id(&x.net.main)
        .destination_cidr_block(&other.cidr)
        .send()
        .await?;
    let cut = s.invoke(migrate(x.id(), "migrated")).await?;
    ensure!(cut["refused"].is_null(), "{cut}");
    for _ in 0..3 {
        s.env.clock.advance(60);
        s.invoke(scheduled()).await?;
    }
    let t0 = vpc_routes(&ec2, &x.net.tables[0]).await?;
    let t1 = vpc_routes(&ec2, &x.net.tables[1]).await?;
    ensure!(
        !t0.contains_key(&other.cidr) && !t1.contains_key(&other.cidr),
        "{t0:?} {t1:?}"
    );
    ensure!(t0.get("10.99.0.0/16") == Some(&x.routers[0].eni), "{t0:?}");
    Ok(())
}

#[tokio::test]
async fn a_legacy_router_failover_leaves_the_injector_nothing_to_write() -> anyhow::Result<()> {
    let s = scene(2).await?;
    let r = s.invoke(scheduled()).await?;
    ensure!(r["refused"].is_null(), "{r}");
    let x = s.vpcs[0].clone();
    let ec2 = s.env.ec2(&x.net.region);
    let watcher = {
        let config = s.env.config(&[]).watcher()?;
        let aws = s.env.aws(&config.common)?;
        failover_watcher::App::new(failover_watcher::Watcher { config }, aws)
    };
    let watch = |p: Value| async {
        serde_json::to_value(watcher.invoke(p).await.map_err(|e| anyhow::anyhow!("{e:?}"))?)
            .map_err(anyhow::Error::from)
    };
    watch(scheduled()).await?;
    let t0 = vpc_routes(&ec2, &x.net.tables[0]).await?;
    ensure!(
        t0.get(&s.vpcs[1].cidr)
            .is_some_and(|t| *t == x.routers[0].eni || *t == x.routers[0].instance),
        "the overlay starts on the preferred router: {t0:?}"
    );
    stop(&ec2, &x.routers[0].instance).await?;
    let moved = watch(state_change(&x.net.region, &x.routers[0].instance, "stopped")).await?;
    ensure!(moved["errors"].as_array().is_none_or(Vec::is_empty), "{moved}");
    let t0 = vpc_routes(&ec2, &x.net.tables[0]).await?;
    let standby = &x.routers[1];
    ensure!(
        t0.get(&s.vpcs[1].cidr)
            .is_some_and(|t| *t == standby.eni || *t == standby.instance),
        "the watcher did not move the overlay: {t0:?} {moved}"
    );
    // The injector agrees with the watcher: no EC2 write, twice.
    for _ in 0..2 {
        s.env.clock.advance(60);
        let (response, writes) = s.writes_of(scheduled()).await?;
        ensure!(
            writes.is_empty(),
            "the injector fought the watcher: {writes:?} {response}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn lbgpctl_traces_migrates_and_lists_migration_states() -> anyhow::Result<()> {
    use lbgp_tests::cli::lbgpctl_with;
    let s = installed().await?;
    let x = s.vpcs[0].clone();
    let far = s.vpcs[5].clone();
    let ctl = |args: &'static [&'static str]| args;
    let max = [("LBGP_MAX_CHANGES", "500")];
    let address = far.cidr.replace(".0.0/16", ".0.10");

    // Before: over the legacy router; exit 0 (every table reaches it).
    let before = lbgpctl_with(
        &s.env,
        &max,
        &["--output", "json", "trace", "--from", x.id(), "--to", &address],
    )
    .await;
    ensure!(before.code == 0, "{before:?}");
    let traces = before.json();
    let endings: Vec<&str> = traces
        .as_array()
        .context("traces")?
        .iter()
        .filter_map(|t| t["ending"]["ending"].as_str())
        .collect();
    ensure!(
        endings.len() == 3 && endings.iter().all(|e| *e == "via_legacy_router"),
        "{traces}"
    );

    // migrate without --yes: the preflight and plan, exit 2, nothing written.
    s.env.emulator.reset_calls().await?;
    let dry = lbgpctl_with(&s.env, &max, &["migrate", x.id(), "--to", "migrated"]).await;
    ensure!(dry.code == 2, "{dry:?}");
    ensure!(
        dry.stdout.contains("l_bgp_converged") && dry.stdout.contains("--yes"),
        "{dry:?}"
    );
    ensure!(s.env.emulator.calls().await?.ec2_mutating().is_empty());

    // With --yes: applied, exit 0; the trace now ends delivered over the mesh.
    let real = lbgpctl_with(
        &s.env,
        &max,
        &["--output", "json", "migrate", x.id(), "--to", "migrated", "--yes"],
    )
    .await;
    ensure!(real.code == 0, "{real:?}");
    ensure!(real.json()["applied"] == true, "{real:?}");
    let after = lbgpctl_with(
        &s.env,
        &max,
        &["--output", "json", "trace", "--from", x.id(), "--to", &address],
    )
    .await;
    ensure!(after.code == 0, "{after:?}");
    ensure!(
        after
            .json()
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["ending"]["ending"] == "delivered")),
        "{after:?}"
    );

    // status lists the VPCs by migration state.
    let status = lbgpctl_with(&s.env, &max, &["--output", "json", "status"]).await;
    let rows = status.json()["migrations"]
        .as_array()
        .cloned()
        .context("migrations")?;
    ensure!(rows.len() == 6, "{status:?}");
    ensure!(
        rows.iter()
            .filter(|r| r["state"] == "migrated")
            .map(|r| r["vpc"].clone())
            .collect::<Vec<_>>()
            == vec![json!(x.id())],
        "{rows:?}"
    );
    let _ = ctl;
    Ok(())
}

#[tokio::test]
async fn a_legacy_router_whose_tunnel_alarm_fires_serves_no_overlay_before_the_watcher_decides()
-> anyhow::Result<()> {
    use lbgp_tests::failover_fixtures::{cloudwatch, set_alarm, tunnel_alarm};
    let s = scene(2).await?;
    let x = s.vpcs[0].clone();
    let ec2 = s.env.ec2(&x.net.region);
    let cw = cloudwatch(&s.env, &x.net.region);
    tunnel_alarm(&cw, "tunnel-1").await?;
    set_alarm(&cw, "tunnel-1", "ALARM", "Threshold Crossed: TunnelState 0").await?;
    lbgp_tests::fixtures::tag(&ec2, &x.routers[0].instance, "lbgp:health-alarm", "tunnel-1").await?;

    // The preferred router is running and passes its status checks, but
    // its tunnel is down: the overlay goes to the standby.
    let r = s.invoke(scheduled()).await?;
    ensure!(
        r["refused"].is_null() && r["errors"].as_array().is_none_or(Vec::is_empty),
        "{r}"
    );
    let t0 = vpc_routes(&ec2, &x.net.tables[0]).await?;
    let standby = &x.routers[1];
    let target = t0.get(&s.vpcs[1].cidr).context("overlay route")?;
    ensure!(
        *target == standby.eni || *target == standby.instance,
        "the overlay stayed on the router whose alarm fires ({:?}): {t0:?}",
        x.routers[0]
    );

    // The tunnel comes back: the preferred router serves again, and then
    // nothing more is written.
    set_alarm(&cw, "tunnel-1", "OK", "Threshold Crossed: TunnelState 1").await?;
    s.env.clock.advance(60);
    s.invoke(scheduled()).await?;
    let t0 = vpc_routes(&ec2, &x.net.tables[0]).await?;
    let target = t0.get(&s.vpcs[1].cidr).context("overlay route")?;
    ensure!(
        *target == x.routers[0].eni || *target == x.routers[0].instance,
        "{t0:?}"
    );
    s.env.clock.advance(60);
    let (again, writes) = s.writes_of(scheduled()).await?;
    ensure!(writes.is_empty(), "{writes:?} {again}");
    Ok(())
}
