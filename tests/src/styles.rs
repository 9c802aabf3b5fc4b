//! Route styles (`LBGP_ROUTE_STYLE`) for scenarios that run in both, and
//! what such a scenario asserts with: the *effective* routing of a table,
//! with every prefix-list route (a VPC route toward a
//! `DestinationPrefixListId`, a TGW prefix-list reference) expanded into
//! its list's entries (`GetManagedPrefixListEntries`), so the same
//! destination → target expectation holds whichever style wrote it.
//!
//! Route priority follows AWS: at one destination a CIDR route (static or
//! local) wins over a prefix-list route, which wins over a propagated route
//! (<https://docs.aws.amazon.com/vpc/latest/userguide/route-tables-priority.html>;
//! for transit gateways, static routes, then prefix-list references, then
//! propagated routes:
//! <https://docs.aws.amazon.com/vpc/latest/tgw/how-transit-gateways-work.html#tgw-route-evaluation-overview>).

use std::collections::BTreeMap;

use anyhow::Context;
use aws_sdk_ec2::Client as Ec2Client;
use serde_json::Value;

/// `LBGP_ROUTE_STYLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Style {
    /// `routes`: one route per prefix.
    Routes,
    /// `prefix-list`: lbgp-owned managed prefix lists, one route (VPC) or
    /// reference (TGW) toward each.
    PrefixList,
}

impl Style {
    /// Both styles.
    pub const ALL: [Style; 2] = [Style::Routes, Style::PrefixList];

    /// The variable's value.
    pub fn value(self) -> &'static str {
        match self {
            Style::Routes => "routes",
            Style::PrefixList => "prefix-list",
        }
    }

    /// `("LBGP_ROUTE_STYLE", value)`.
    pub fn var(self) -> (&'static str, &'static str) {
        ("LBGP_ROUTE_STYLE", self.value())
    }

    /// `extra` with the style added (it wins over one `extra` names).
    pub fn vars<'a>(self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = extra.to_vec();
        vars.push(self.var());
        vars
    }

    /// True for `prefix-list`.
    pub fn lists(self) -> bool {
        self == Style::PrefixList
    }

    /// What a scenario expects in this style: `routes` or `lists`.
    pub fn pick<T>(self, routes: T, lists: T) -> T {
        match self {
            Style::Routes => routes,
            Style::PrefixList => lists,
        }
    }
}

/// Runs `async fn <name>(style: Style)` as two tests, `<name>::routes` and
/// `<name>::prefix_list`, so a failure names its style and both run in
/// parallel.
#[macro_export]
macro_rules! both_styles {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn routes() {
                super::$scenario($crate::styles::Style::Routes).await
            }
            #[tokio::test]
            async fn prefix_list() {
                super::$scenario($crate::styles::Style::PrefixList).await
            }
        }
    )+};
}

/// The entries of a managed prefix list, sorted.
pub async fn list_entries(ec2: &Ec2Client, id: &str) -> anyhow::Result<Vec<String>> {
    let mut cidrs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .get_managed_prefix_list_entries()
            .prefix_list_id(id)
            .set_next_token(token.take())
            .send()
            .await
            .with_context(|| format!("entries of {id}"))?;
        cidrs.extend(out.entries().iter().filter_map(|e| e.cidr().map(str::to_owned)));
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    cidrs.sort();
    Ok(cidrs)
}

/// Where a VPC route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The target id, as `fixtures::vpc_routes` picks it (transit gateway,
    /// interface, instance, gateway, peering, NAT gateway; `local`).
    pub target: String,
    /// `InstanceId`.
    pub instance: Option<String>,
    /// `NetworkInterfaceId`.
    pub eni: Option<String>,
    /// `active` or `blackhole`.
    pub state: String,
    /// The prefix list the route's destination came from, if it did.
    pub list: Option<String>,
}

fn hop(r: &aws_sdk_ec2::types::Route, list: Option<&str>) -> Hop {
    Hop {
        target: r
            .transit_gateway_id()
            .or(r.network_interface_id())
            .or(r.instance_id())
            .or(r.gateway_id())
            .or(r.vpc_peering_connection_id())
            .or(r.nat_gateway_id())
            .unwrap_or_default()
            .to_owned(),
        instance: r.instance_id().map(str::to_owned),
        eni: r.network_interface_id().map(str::to_owned),
        state: r.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        list: list.map(str::to_owned),
    }
}

/// The effective routes of a VPC route table: destination → where it goes,
/// each prefix-list route expanded into its list's entries.
pub async fn effective_vpc_hops(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, Hop>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let table = out.route_tables().first().context("route table")?;
    let propagated =
        |r: &aws_sdk_ec2::types::Route| r.origin().map(|o| o.as_str()) == Some("EnableVgwRoutePropagation");
    let mut cidr = BTreeMap::new();
    let mut lower = BTreeMap::new();
    for r in table.routes() {
        let Some(dest) = r.destination_cidr_block().or(r.destination_ipv6_cidr_block()) else {
            continue;
        };
        let slot = if propagated(r) { &mut lower } else { &mut cidr };
        slot.insert(dest.to_owned(), hop(r, None));
    }
    let mut listed = BTreeMap::new();
    for r in table.routes() {
        let Some(list) = r.destination_prefix_list_id() else {
            continue;
        };
        for entry in list_entries(ec2, list).await? {
            listed.entry(entry).or_insert_with(|| hop(r, Some(list)));
        }
    }
    let mut routes = lower;
    routes.extend(listed);
    routes.extend(cidr);
    Ok(routes)
}

/// The effective routes of a VPC route table as destination → target id
/// (the shape of `fixtures::vpc_routes`, prefix-list routes expanded).
pub async fn effective_vpc_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(effective_vpc_hops(ec2, rtb)
        .await?
        .into_iter()
        .map(|(d, h)| (d, h.target))
        .collect())
}

/// The prefix-list routes of a VPC route table: list id → target id.
pub async fn vpc_list_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let table = out.route_tables().first().context("route table")?;
    Ok(table
        .routes()
        .iter()
        .filter_map(|r| Some((r.destination_prefix_list_id()?.to_owned(), hop(r, None).target)))
        .collect())
}

/// The prefix-list references of a TGW route table: list id → attachment
/// (`blackhole` for a blackhole reference).
pub async fn tgw_references(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut refs = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .get_transit_gateway_prefix_list_references()
            .transit_gateway_route_table_id(rtb)
            .set_next_token(token.take())
            .send()
            .await
            .with_context(|| format!("references of {rtb}"))?;
        for r in out.transit_gateway_prefix_list_references() {
            let target = r
                .transit_gateway_attachment()
                .and_then(|a| a.transit_gateway_attachment_id())
                .filter(|_| r.blackhole() != Some(true))
                .unwrap_or("blackhole");
            refs.insert(
                r.prefix_list_id().context("reference without a list")?.to_owned(),
                target.to_owned(),
            );
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(refs)
}

/// The effective static routing of a TGW route table: its static routes
/// (`fixtures::tgw_static_routes`) and, where no static route has the same
/// destination, the entries of every prefix-list reference: destination →
/// attachment (or `blackhole`). Propagated routes are left out, as
/// `tgw_static_routes` leaves them out.
pub async fn effective_tgw_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut routes = BTreeMap::new();
    for (list, target) in tgw_references(ec2, rtb).await? {
        for entry in list_entries(ec2, &list).await? {
            routes.entry(entry).or_insert_with(|| target.clone());
        }
    }
    routes.extend(crate::fixtures::tgw_static_routes(ec2, rtb).await?);
    Ok(routes)
}

/// The prefix-list steps of a response (`prefix_lists`), counted by `op`
/// (`create_list`, `sync_entries`, `create_route`, `create_reference`…).
pub fn list_ops(response: &Value) -> BTreeMap<String, usize> {
    let mut ops = BTreeMap::new();
    for s in response["prefix_lists"].as_array().into_iter().flatten() {
        *ops.entry(s["op"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    ops
}

/// Asserts the plan a response shows: `routes` route changes (`changes`)
/// and exactly the prefix-list steps `lists`, counted by op.
pub fn assert_plan(response: &Value, routes: usize, lists: &[(&str, usize)]) {
    let changes = response["changes"].as_array().map_or(0, Vec::len);
    assert_eq!(changes, routes, "route changes: {response:#}");
    assert_eq!(list_ops(response), ops(lists), "prefix-list steps: {response:#}");
}

/// The table ids of a response's prefix-list steps with this `op`, sorted.
pub fn step_tables(response: &Value, op: &str) -> Vec<String> {
    let mut tables: Vec<String> = list_steps(response, op)
        .iter()
        .filter_map(|s| s["table"]["id"].as_str().map(str::to_owned))
        .collect();
    tables.sort();
    tables
}

/// The prefix-list steps of a response with this `op`.
pub fn list_steps(response: &Value, op: &str) -> Vec<Value> {
    response["prefix_lists"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["op"] == op)
        .cloned()
        .collect()
}

/// `(op, count)` pairs as a map, for comparing with [`list_ops`].
pub fn ops(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

/// The prefix-list steps of a response without what only an applied run
/// knows (the id of a list the run created): a dry run's steps and its
/// apply's compare equal.
pub fn list_plan(response: &Value) -> Vec<Value> {
    let mut steps: Vec<Value> = response["prefix_lists"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut s| {
            if let Some(o) = s.as_object_mut() {
                o.remove("list");
                o.remove("list_id");
            }
            s
        })
        .collect();
    steps.sort_by_key(Value::to_string);
    steps
}
