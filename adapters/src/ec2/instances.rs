//! Router instances and their status checks.

use std::collections::BTreeMap;

use lbgp_core::topology::{Instance, InstanceState, StatusChecks};

use super::{Ec2, TAG_FAILOVER_GROUP, filter, tags};
use crate::Error;

/// Instance ids DescribeInstanceStatus takes in one call.
pub const INSTANCE_IDS_PER_CALL: usize = 100;

impl Ec2 {
    /// Instances tagged `lbgp:failover-group` (any value), not terminated.
    pub async fn failover_instances(&self) -> Result<Vec<Instance>, Error> {
        let items = self
            .client
            .describe_instances()
            .filters(filter("tag-key", &[TAG_FAILOVER_GROUP]))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeInstances", e))?;
        let mut out = Vec::new();
        for reservation in items {
            for i in reservation.instances() {
                let mut interfaces: Vec<(i32, String, Option<String>)> = i
                    .network_interfaces()
                    .iter()
                    .filter_map(|n| {
                        Some((
                            n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                            n.network_interface_id()?.to_owned(),
                            n.private_ip_address().map(str::to_owned),
                        ))
                    })
                    .collect();
                interfaces.sort();
                let tags = tags(i.tags());
                if !tags.contains_key(TAG_FAILOVER_GROUP) {
                    continue;
                }
                out.push(Instance {
                    id: i.instance_id().unwrap_or_default().to_owned(),
                    vpc_id: i.vpc_id().map(str::to_owned),
                    availability_zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .map(str::to_owned),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .and_then(|n| InstanceState::from_aws(n.as_str())),
                    primary_interface_id: interfaces
                        .iter()
                        .find(|(idx, _, _)| *idx == 0)
                        .map(|(_, id, _)| id.clone()),
                    private_addresses: interfaces.iter().filter_map(|(_, _, ip)| ip.clone()).collect(),
                    interface_ids: interfaces.into_iter().map(|(_, id, _)| id).collect(),
                    tags,
                    status: StatusChecks::default(),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Status checks of the given instances (absent: not yet reported, which
    /// is not impaired). DescribeInstanceStatus takes at most
    /// [`INSTANCE_IDS_PER_CALL`] ids a call: larger sets go in chunks, side
    /// by side.
    pub async fn status_checks(&self, ids: &[&str]) -> Result<BTreeMap<String, StatusChecks>, Error> {
        let chunks = ids
            .chunks(INSTANCE_IDS_PER_CALL)
            .map(|chunk| self.status_checks_of(chunk));
        let answers = futures::future::try_join_all(chunks).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn status_checks_of(&self, ids: &[&str]) -> Result<BTreeMap<String, StatusChecks>, Error> {
        let items = self
            .client
            .describe_instance_status()
            .set_instance_ids(Some(ids.iter().map(|s| (*s).to_owned()).collect()))
            .include_all_instances(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeInstanceStatus", e))?;
        Ok(items
            .into_iter()
            .filter_map(|s| {
                let impaired = |summary: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    summary
                        .and_then(|s| s.status())
                        .is_some_and(|s| s.as_str() == "impaired")
                };
                Some((
                    s.instance_id()?.to_owned(),
                    StatusChecks {
                        instance_impaired: impaired(s.instance_status()),
                        system_impaired: impaired(s.system_status()),
                    },
                ))
            })
            .collect())
    }
}
