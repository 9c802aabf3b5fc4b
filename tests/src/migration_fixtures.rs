//! A migration scene for the injector's legacy overlay: three regions, one
//! mesh TGW each, fully peered; two VPCs per region, each with a legacy
//! router (its own failover group) and tagged `lbgp:migration=legacy`; and
//! the path checks the zero-downtime tests assert after every write.

use std::collections::BTreeMap;

use anyhow::Context;
use lbgp_core::trace::{Ending, Network, probe_addresses};
use serde_json::{Value, json};
use tgw_route_propagator::Propagator;
use vpc_route_injector::Injector;

use crate::failover_fixtures::{Router, RouterVpc, launch_router, router_vpc};
use crate::fixtures::{TestEnv, attach, create_tgw, peer, tag, tgw_route_tables};

/// The scene's regions.
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// A legacy VPC of the scene.
#[derive(Debug, Clone)]
pub struct LegacyVpc {
    /// Its VPC, subnets and tables.
    pub net: RouterVpc,
    /// Its CIDR.
    pub cidr: String,
    /// Its legacy failover group (`lbgp:legacy-group`).
    pub group: String,
    /// The group's members, preferred first.
    pub routers: Vec<Router>,
    /// Its mesh TGW.
    pub tgw: String,
}

impl LegacyVpc {
    /// `vpc-…`.
    pub fn id(&self) -> &str {
        &self.net.vpc
    }
    /// Every route table of the VPC (the two subnets' and the main one).
    pub fn tables(&self) -> Vec<String> {
        vec![
            self.net.tables[0].clone(),
            self.net.tables[1].clone(),
            self.net.main.clone(),
        ]
    }
}

/// The scene.
#[allow(missing_debug_implementations)]
pub struct Scene {
    /// The emulator and clients.
    pub env: TestEnv,
    /// The six legacy VPCs, two per region in [`REGIONS`] order.
    pub vpcs: Vec<LegacyVpc>,
    /// The injector.
    pub injector: vpc_route_injector::App,
    /// L-BGP.
    pub propagator: tgw_route_propagator::App,
}

/// Builds the scene with `members` legacy routers per VPC (the first preferred)
/// and converges L-BGP (the overlay is not installed yet).
pub async fn scene(members: usize) -> anyhow::Result<Scene> {
    let env = TestEnv::new(&REGIONS).await?;
    let mut vpcs = Vec::new();
    let mut tgws = Vec::new();
    for (n, region) in REGIONS.iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await?;
        for j in 0..2 {
            let index = n * 2 + j + 1;
            let cidr = format!("10.{}.0.0/16", index * 10);
            let net = router_vpc(&ec2, region, &cidr).await?;
            attach(&ec2, &tgw, &net.vpc, &net.subnets[0]).await?;
            let group = format!("legacy-{index}");
            tag(&ec2, &net.vpc, "lbgp:migration", "legacy").await?;
            tag(&ec2, &net.vpc, "lbgp:legacy-group", &group).await?;
            let mut routers = Vec::new();
            for m in 0..members {
                // `lbgp:priority`: higher is preferred; routers[0] first.
                let priority = i64::try_from(members - m)?;
                routers.push(launch_router(&ec2, &net.subnets[m % 2], &group, Some(priority), false).await?);
            }
            vpcs.push(LegacyVpc {
                net,
                cidr,
                group,
                routers,
                tgw: tgw.clone(),
            });
        }
        tgws.push((*region, tgw));
    }
    for (i, (a, ta)) in tgws.iter().enumerate() {
        for (b, tb) in tgws.iter().skip(i + 1) {
            let id = peer(&env, (a, ta), (b, tb), true).await?;
            // Operators associate a peering with a route table by hand
            // (AWS associates none by default): the default one here.
            for (region, tgw) in [(a, ta), (b, tb)] {
                let rtb = tgw_route_tables(&env.ec2(region), tgw)
                    .await?
                    .into_iter()
                    .next()
                    .context("default TGW route table")?;
                let _ = env
                    .ec2(region)
                    .associate_transit_gateway_route_table()
                    .transit_gateway_route_table_id(rtb)
                    .transit_gateway_attachment_id(&id)
                    .send()
                    .await;
            }
        }
    }
    let injector = {
        // The first run installs 144 routes (aggregates and overlay).
        let config = env.config(&[("LBGP_MAX_CHANGES", "500")]).injector()?;
        let aws = env.aws(&config.common)?;
        vpc_route_injector::App::new(Injector { config }, aws)
    };
    let propagator = {
        let config = env.config(&[]).propagator()?;
        let aws = env.aws(&config.common)?;
        tgw_route_propagator::App::new(Propagator { config }, aws)
    };
    let scene = Scene {
        env,
        vpcs,
        injector,
        propagator,
    };
    let converged = scene.invoke_propagator(crate::events::scheduled()).await?;
    anyhow::ensure!(
        converged["errors"].as_array().is_none_or(Vec::is_empty),
        "L-BGP did not converge: {converged}"
    );
    Ok(scene)
}

/// How a table reaches a VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// Over the TGWs.
    Mesh,
    /// Handed to a legacy router.
    Legacy,
}

/// `(from table, from VPC, to VPC)` → how it gets there.
pub type Paths = BTreeMap<(String, String, String), Via>;

impl Scene {
    /// Invokes the injector.
    pub async fn invoke(&self, payload: Value) -> anyhow::Result<Value> {
        let response = self
            .injector
            .invoke(payload)
            .await
            .map_err(|e| anyhow::anyhow!("injector: {e:?}"))?;
        Ok(serde_json::to_value(response)?)
    }

    /// Invokes L-BGP.
    pub async fn invoke_propagator(&self, payload: Value) -> anyhow::Result<Value> {
        let response = self
            .propagator
            .invoke(payload)
            .await
            .map_err(|e| anyhow::anyhow!("propagator: {e:?}"))?;
        Ok(serde_json::to_value(response)?)
    }

    /// The VPC with id `id`.
    pub fn vpc(&self, id: &str) -> &LegacyVpc {
        self.vpcs.iter().find(|v| v.id() == id).unwrap_or(&self.vpcs[0])
    }

    /// The network as the injector reads it now.
    pub async fn network(&self) -> anyhow::Result<Network> {
        let (injector, aws) = self.injector.parts().context("injector configured")?;
        let (network, unreadable) = vpc_route_injector::migration::network(injector, aws).await?;
        anyhow::ensure!(unreadable.is_empty(), "unreadable: {unreadable:?}");
        Ok(network)
    }

    /// From each subnet table of every VPC to every other VPC: how it gets
    /// there, or every path that does not, with its hops.
    pub fn paths(&self, network: &Network) -> Result<Paths, String> {
        let mut out = Paths::new();
        let mut failures = Vec::new();
        for from in &self.vpcs {
            for table in &from.net.tables {
                for to in self.vpcs.iter().filter(|v| v.id() != from.id()) {
                    let cidrs = network.vpcs.get(to.id()).cloned().unwrap_or_default();
                    for address in probe_addresses(&cidrs) {
                        let trace = network.trace(table, address);
                        let via = match &trace.ending {
                            Ending::Delivered { vpc } if vpc == to.id() => Via::Mesh,
                            Ending::ViaLegacyRouter { vpc, .. } if vpc == to.id() => Via::Legacy,
                            other => {
                                failures.push(format!(
                                    "{} ({table}) → {address} ({}): {other}; hops {:?}",
                                    from.id(),
                                    to.id(),
                                    trace.hops
                                ));
                                continue;
                            }
                        };
                        out.insert((table.clone(), from.id().to_owned(), to.id().to_owned()), via);
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(out)
        } else {
            Err(failures.join("\n"))
        }
    }

    /// Successful mutating EC2 calls since the last reset of the call log.
    pub async fn ec2_writes(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .env
            .emulator
            .call_log()
            .await?
            .iter()
            .filter(|c| c["service"] == "ec2" && c["mutating"] == true && c["outcome"] == "ok")
            .filter_map(|c| c["action"].as_str().map(str::to_owned))
            .collect())
    }

    /// Every mutating call (any service) of the next `payload` run.
    pub async fn writes_of(&self, payload: Value) -> anyhow::Result<(Value, BTreeMap<String, u64>)> {
        self.env.emulator.reset_calls().await?;
        let response = self.invoke(payload).await?;
        Ok((response, self.env.emulator.calls().await?.ec2_mutating()))
    }
}

/// How `from` reaches `to` over all of `from`'s tables (one answer each).
pub fn vias(paths: &Paths, from: &str, to: &str) -> Vec<Via> {
    let mut v: Vec<Via> = paths
        .iter()
        .filter(|((_, f, t), _)| f == from && t == to)
        .map(|(_, via)| *via)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The migration order's invariant while `moving` changes network: no
/// other VPC reaches it over the mesh while it still reaches that VPC over
/// the legacy routers (ingress never moves before egress); every other
/// pair is symmetric and takes one way.
pub fn check_order(paths: &Paths, vpcs: &[LegacyVpc], moving: &str) -> Result<(), String> {
    for a in vpcs {
        for b in vpcs.iter().filter(|b| b.id() != a.id()) {
            let (ab, ba) = (vias(paths, a.id(), b.id()), vias(paths, b.id(), a.id()));
            if a.id() == moving {
                if ab.contains(&Via::Legacy) && ba.contains(&Via::Mesh) {
                    return Err(format!(
                        "{} reaches {} over the mesh while {} still answers over the legacy routers (asymmetric: ingress moved before egress)",
                        b.id(),
                        a.id(),
                        a.id()
                    ));
                }
            } else if b.id() != moving && (ab.len() != 1 || ab != ba) {
                return Err(format!("{} → {}: {ab:?}, back: {ba:?}", a.id(), b.id()));
            }
        }
    }
    Ok(())
}

/// The fault that lets exactly one more EC2 write land.
pub fn one_write() -> Value {
    json!({"fail_writes_after": 1, "services": ["ec2"]})
}
