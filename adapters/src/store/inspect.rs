//! Read-only listings for operators (`lbgpctl status`): every lease and
//! every state record in the table, whatever their scope.
//!
//! The ledger is read per partition ([`Store::load_ledger`]): its keys are
//! known from the configuration. Lease and state scopes are not (a failover
//! group's scope is `<region>#<group>`, found in EC2), so they are listed
//! with one Scan filtered on the `lease#` and `state#` key prefixes. A Scan
//! reads the whole table (the filter only trims the answer): fine for an
//! operator's command, never done by the functions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lbgp_core::lease::LeaseRecord;

use super::{Store, get_n, get_s, s};
use crate::Error;

/// A lease item, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseItem {
    /// The function whose runs take it.
    pub function: String,
    /// Its scope: the mesh, or `<region>#<group>` for the watcher.
    pub scope: String,
    /// Holder, token, expiry, start, pending mark.
    pub record: LeaseRecord,
}

/// A state record, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StateItem {
    /// The function that wrote it.
    pub function: String,
    /// Its scope, as the lease's.
    pub scope: String,
    /// The record's name (`sk`): `state`, `conflicts`, …
    pub name: String,
    /// Its JSON body; `None` when it is not JSON (reported, not guessed).
    pub body: Option<serde_json::Value>,
    /// When it was last written (seconds since the epoch), if recorded.
    pub updated_at: Option<u64>,
}

/// Every lease and state record of the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlRecords {
    /// Leases, sorted by function and scope.
    pub leases: Vec<LeaseItem>,
    /// State records, sorted by function, scope and name.
    pub states: Vec<StateItem>,
}

/// `lease#<function>#<scope>` or `state#<function>#<scope>` split after
/// `prefix`: function names have no `#`, scopes may.
fn split_pk<'a>(pk: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    pk.strip_prefix(prefix)?.split_once('#')
}

/// The lease record of an item (the attributes `Store::read_lease` reads).
fn lease_record(item: &HashMap<String, AttributeValue>) -> LeaseRecord {
    LeaseRecord {
        holder: get_s(item, "holder").map(str::to_owned),
        token: get_n(item, "token").unwrap_or(0),
        expires_at: get_n(item, "expires_at").unwrap_or(0),
        started_at: get_n(item, "started_at").unwrap_or(0),
        pending: item
            .get("pending")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    }
}

impl Store {
    /// Every lease and state record of every function, read consistently.
    pub async fn control_records(&self) -> Result<ControlRecords, Error> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :lease) OR begins_with(pk, :state)")
            .expression_attribute_values(":lease", s("lease#"))
            .expression_attribute_values(":state", s("state#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("Scan", e))?;
        let mut records = ControlRecords::default();
        for item in &items {
            let Some(pk) = get_s(item, "pk") else { continue };
            let sk = get_s(item, "sk").unwrap_or_default();
            if let Some((function, scope)) = split_pk(pk, "lease#") {
                records.leases.push(LeaseItem {
                    function: function.to_owned(),
                    scope: scope.to_owned(),
                    record: lease_record(item),
                });
            } else if let Some((function, scope)) = split_pk(pk, "state#") {
                records.states.push(StateItem {
                    function: function.to_owned(),
                    scope: scope.to_owned(),
                    name: sk.to_owned(),
                    body: get_s(item, "body").and_then(|b| serde_json::from_str(b).ok()),
                    updated_at: get_n(item, "updated_at"),
                });
            }
        }
        records
            .leases
            .sort_by(|a, b| (&a.function, &a.scope).cmp(&(&b.function, &b.scope)));
        records
            .states
            .sort_by(|a, b| (&a.function, &a.scope, &a.name).cmp(&(&b.function, &b.scope, &b.name)));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_after_the_function() {
        assert_eq!(
            split_pk("lease#failover-watcher#eu-west-1#vpn", "lease#"),
            Some(("failover-watcher", "eu-west-1#vpn"))
        );
        assert_eq!(
            split_pk("state#vpc-route-injector#prod", "state#"),
            Some(("vpc-route-injector", "prod"))
        );
        assert_eq!(split_pk("ledger#x#prod#eu-west-1", "lease#"), None);
        assert_eq!(split_pk("lease#orphan", "lease#"), None);
    }
}
