//! The emulator mesh of sections 3, 6 and 7 (regions of one mesh TGW each,
//! attached VPCs, the TGWs fully meshed by peering), and what those
//! sections share to drive the functions' handlers and count their calls.

use anyhow::{Context, anyhow, bail};
use lbgp_tests::emulator::{Calls, is_mutating};
use lbgp_tests::fixtures::{self, TestEnv};
use serde_json::Value;

// ================================================= emulator mesh fixture

pub(crate) const MESH_REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
pub(crate) const MESH_VPCS: usize = 20;

#[derive(Debug, Clone)]
pub(crate) struct SiteVpc {
    /// The main route table (a custom one is created beside it when the
    /// mesh asks for one).
    pub(crate) main: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub(crate) region: &'static str,
    pub(crate) tgw: String,
    /// The TGW's default route table (where L-BGP installs).
    pub(crate) tgw_rtb: String,
    pub(crate) vpcs: Vec<SiteVpc>,
}

/// A built mesh: its sites, in the order of the regions, and the peering
/// attachments between them (id, the two regions).
#[derive(Debug, Clone)]
pub(crate) struct Mesh {
    pub(crate) sites: Vec<Site>,
    pub(crate) peerings: Vec<(String, &'static str, &'static str)>,
}

/// 3 regions, one mesh TGW each with 20 attached VPCs (each with its main
/// and one custom route table), the TGWs fully meshed by peering.
pub(crate) async fn build_mesh(env: &TestEnv) -> anyhow::Result<Vec<Site>> {
    Ok(build_mesh_of(env, &MESH_REGIONS, MESH_VPCS, true).await?.sites)
}

/// `regions`, one mesh TGW each with `vpcs` attached VPCs (`10.<n>.0.0/16`,
/// numbered from 1 across the regions; each with its main route table and,
/// when `custom_table`, one custom route table), the TGWs fully meshed by
/// peering.
pub(crate) async fn build_mesh_of(
    env: &TestEnv,
    regions: &[&'static str],
    vpcs: usize,
    custom_table: bool,
) -> anyhow::Result<Mesh> {
    let sites = futures::future::try_join_all(regions.iter().enumerate().map(|(r, region)| async move {
        let ec2 = env.ec2(region);
        let tgw = fixtures::create_tgw(&ec2, Some("prod")).await?;
        let tgw_rtb = fixtures::tgw_route_tables(&ec2, &tgw)
            .await?
            .into_iter()
            .next()
            .context("TGW default route table")?;
        let mut site_vpcs = Vec::new();
        for i in 0..vpcs {
            let cidr = format!("10.{}.0.0/16", r * vpcs + i + 1);
            let (vpc, subnet, main) = fixtures::create_vpc(&ec2, &cidr).await?;
            if custom_table {
                fixtures::create_route_table(&ec2, &vpc, &[]).await?;
            }
            fixtures::attach(&ec2, &tgw, &vpc, &subnet).await?;
            site_vpcs.push(SiteVpc { main });
        }
        anyhow::Ok(Site {
            region,
            tgw,
            tgw_rtb,
            vpcs: site_vpcs,
        })
    }))
    .await?;
    let mut peerings = Vec::new();
    for a in 0..sites.len() {
        for b in a + 1..sites.len() {
            let id = fixtures::peer(
                env,
                (sites[a].region, &sites[a].tgw),
                (sites[b].region, &sites[b].tgw),
                true,
            )
            .await?;
            peerings.push((id, sites[a].region, sites[b].region));
        }
    }
    Ok(Mesh { sites, peerings })
}

pub(crate) fn change_count(response: &Value) -> usize {
    response["changes"].as_array().map_or(0, Vec::len)
}

pub(crate) fn check_clean(what: &str, response: &Value) -> anyhow::Result<()> {
    let errors = response["errors"].as_array().map_or(0, Vec::len);
    let conflicts = response["conflicts"].as_array().map_or(0, Vec::len);
    if errors > 0 || conflicts > 0 || response["refused"].is_string() {
        bail!("{what}: unexpected errors/conflicts/refusal: {response}");
    }
    Ok(())
}

pub(crate) fn ceil_div(a: usize, b: usize) -> u64 {
    a.div_ceil(b) as u64
}

pub(crate) fn service_split(calls: &Calls, service: &str) -> (u64, u64) {
    calls.0.get(service).map_or((0, 0), |m| {
        m.iter().fold((0, 0), |(r, w), (a, n)| {
            if is_mutating(service, a) {
                (r, w + n)
            } else {
                (r + n, w)
            }
        })
    })
}

/// A function's handler, called in-process.
pub(crate) enum Handler {
    Injector(vpc_route_injector::App),
    Propagator(tgw_route_propagator::App),
}

impl Handler {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Handler::Injector(_) => vpc_route_injector::FUNCTION,
            Handler::Propagator(_) => tgw_route_propagator::FUNCTION,
        }
    }

    pub(crate) async fn invoke(&self, payload: Value) -> anyhow::Result<Value> {
        let response = match self {
            Handler::Injector(app) => app.invoke(payload).await,
            Handler::Propagator(app) => app.invoke(payload).await,
        }
        .map_err(|d| anyhow!("{}: {}", d.error_type, d.error_message))?;
        Ok(serde_json::to_value(response)?)
    }
}
