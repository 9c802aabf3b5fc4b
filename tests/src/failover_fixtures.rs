//! Failover-group scenarios for the failover-watcher, built with the plain
//! EC2 SDK: a VPC with a subnet and a route table in each of two AZs, router
//! instances tagged `lbgp:failover-group`, routes to them, and the events
//! the watcher receives.

use anyhow::Context;
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

/// A VPC with one subnet and one associated route table per AZ.
#[derive(Debug, Clone)]
pub struct RouterVpc {
    /// The region.
    pub region: String,
    /// `vpc-…`.
    pub vpc: String,
    /// The two subnets, in `zones[0]` and `zones[1]`.
    pub subnets: [String; 2],
    /// The two AZs (`<region>a`, `<region>b`).
    pub zones: [String; 2],
    /// A route table associated with each subnet.
    pub tables: [String; 2],
    /// The main route table (serves no subnet explicitly).
    pub main: String,
}

/// A router instance.
#[derive(Debug, Clone)]
pub struct Router {
    /// `i-…`.
    pub instance: String,
    /// Its primary network interface.
    pub eni: String,
}

/// Where a VPC route points, as DescribeRouteTables says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// `InstanceId`.
    pub instance: Option<String>,
    /// `NetworkInterfaceId`.
    pub eni: Option<String>,
    /// Any other target id (gateway, TGW…).
    pub other: Option<String>,
    /// `active` or `blackhole`.
    pub state: String,
}

/// Creates a VPC (`cidr`, a /16) with a /24 subnet and an associated route
/// table in each of the region's zones `a` and `b`.
pub async fn router_vpc(ec2: &Ec2Client, region: &str, cidr: &str) -> anyhow::Result<RouterVpc> {
    let vpc = ec2
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await?
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("vpc id")?
        .to_owned();
    let base = cidr.split('.').take(2).collect::<Vec<_>>().join(".");
    let zones = [format!("{region}a"), format!("{region}b")];
    let mut subnets = Vec::new();
    let mut tables = Vec::new();
    for (n, zone) in zones.iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("{base}.{n}.0/24"))
            .availability_zone(zone)
            .send()
            .await?
            .subnet()
            .and_then(|s| s.subnet_id())
            .context("subnet id")?
            .to_owned();
        let table = crate::fixtures::create_route_table(ec2, &vpc, &[]).await?;
        ec2.associate_route_table()
            .route_table_id(&table)
            .subnet_id(&subnet)
            .send()
            .await?;
        subnets.push(subnet);
        tables.push(table);
    }
    let main = crate::fixtures::main_route_table(ec2, &vpc).await?;
    let [s0, s1] = <[String; 2]>::try_from(subnets).map_err(|_| anyhow::anyhow!("two subnets"))?;
    let [t0, t1] = <[String; 2]>::try_from(tables).map_err(|_| anyhow::anyhow!("two tables"))?;
    Ok(RouterVpc {
        region: region.to_owned(),
        vpc,
        subnets: [s0, s1],
        zones,
        tables: [t0, t1],
        main,
    })
}

/// Launches an instance in `subnet` with `tags`.
pub async fn launch(ec2: &Ec2Client, subnet: &str, tags: &[(&str, &str)]) -> anyhow::Result<Router> {
    let mut call = ec2
        .run_instances()
        .image_id("ami-12345678")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        call = call.tag_specifications(spec.build());
    }
    let out = call.send().await?;
    let instance = out.instances().first().context("no instance launched")?;
    Ok(Router {
        instance: instance.instance_id().context("instance id")?.to_owned(),
        eni: instance
            .network_interfaces()
            .iter()
            .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
            .and_then(|n| n.network_interface_id())
            .context("primary interface")?
            .to_owned(),
    })
}

/// Launches a router of failover group `group`, with `lbgp:priority` when
/// given and `lbgp:failover-mode=az` when `az_mode`.
pub async fn launch_router(
    ec2: &Ec2Client,
    subnet: &str,
    group: &str,
    priority: Option<i64>,
    az_mode: bool,
) -> anyhow::Result<Router> {
    let priority = priority.map(|p| p.to_string());
    let mut tags = vec![("lbgp:failover-group", group)];
    if let Some(p) = &priority {
        tags.push(("lbgp:priority", p));
    }
    if az_mode {
        tags.push(("lbgp:failover-mode", "az"));
    }
    launch(ec2, subnet, &tags).await
}

/// Attaches a second network interface (device 1) to a router.
pub async fn attach_secondary_eni(ec2: &Ec2Client, router: &Router, subnet: &str) -> anyhow::Result<String> {
    let eni = create_eni(ec2, subnet).await?;
    ec2.attach_network_interface()
        .network_interface_id(&eni)
        .instance_id(&router.instance)
        .device_index(1)
        .send()
        .await?;
    Ok(eni)
}

/// Creates a network interface in `subnet`, attached to nothing.
pub async fn create_eni(ec2: &Ec2Client, subnet: &str) -> anyhow::Result<String> {
    Ok(ec2
        .create_network_interface()
        .subnet_id(subnet)
        .send()
        .await?
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .context("eni id")?
        .to_owned())
}

/// A route to an instance id.
pub async fn route_to_instance(ec2: &Ec2Client, rtb: &str, dest: &str, instance: &str) -> anyhow::Result<()> {
    ec2.create_route()
        .route_table_id(rtb)
        .destination_cidr_block(dest)
        .instance_id(instance)
        .send()
        .await?;
    Ok(())
}

/// A route to a network interface.
pub async fn route_to_eni(ec2: &Ec2Client, rtb: &str, dest: &str, eni: &str) -> anyhow::Result<()> {
    ec2.create_route()
        .route_table_id(rtb)
        .destination_cidr_block(dest)
        .network_interface_id(eni)
        .send()
        .await?;
    Ok(())
}

/// Repoints a route to a network interface by hand (an operator's change).
pub async fn replace_to_eni(ec2: &Ec2Client, rtb: &str, dest: &str, eni: &str) -> anyhow::Result<()> {
    ec2.replace_route()
        .route_table_id(rtb)
        .destination_cidr_block(dest)
        .network_interface_id(eni)
        .send()
        .await?;
    Ok(())
}

/// Where the route to `dest` in `rtb` points, if there is one.
pub async fn next_hop(ec2: &Ec2Client, rtb: &str, dest: &str) -> anyhow::Result<Option<NextHop>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let table = out.route_tables().first().context("route table")?;
    Ok(table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(dest))
        .map(|r| NextHop {
            instance: r.instance_id().map(str::to_owned),
            eni: r.network_interface_id().map(str::to_owned),
            other: r
                .gateway_id()
                .or(r.transit_gateway_id())
                .or(r.nat_gateway_id())
                .map(str::to_owned),
            state: r.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        }))
}

/// Every route of a table, as `(destination, next hop)`, sorted.
pub async fn table_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<Vec<(String, NextHop)>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let table = out.route_tables().first().context("route table")?;
    let mut routes: Vec<(String, NextHop)> = table
        .routes()
        .iter()
        .map(|r| {
            (
                r.destination_cidr_block()
                    .or(r.destination_ipv6_cidr_block())
                    .unwrap_or_default()
                    .to_owned(),
                NextHop {
                    instance: r.instance_id().map(str::to_owned),
                    eni: r.network_interface_id().map(str::to_owned),
                    other: r
                        .gateway_id()
                        .or(r.transit_gateway_id())
                        .or(r.nat_gateway_id())
                        .map(str::to_owned),
                    state: r.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                },
            )
        })
        .collect();
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(routes)
}

/// An internet gateway attached to `vpc`.
pub async fn internet_gateway(ec2: &Ec2Client, vpc: &str) -> anyhow::Result<String> {
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await?
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .context("igw id")?
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(vpc)
        .send()
        .await?;
    Ok(igw)
}

/// Stops an instance.
pub async fn stop(ec2: &Ec2Client, instance: &str) -> anyhow::Result<()> {
    ec2.stop_instances().instance_ids(instance).send().await?;
    Ok(())
}

/// Starts an instance.
pub async fn start(ec2: &Ec2Client, instance: &str) -> anyhow::Result<()> {
    ec2.start_instances().instance_ids(instance).send().await?;
    Ok(())
}

/// Terminates an instance.
pub async fn terminate(ec2: &Ec2Client, instance: &str) -> anyhow::Result<()> {
    ec2.terminate_instances().instance_ids(instance).send().await?;
    Ok(())
}

pub use crate::events::{cloudtrail, scheduled, state_change};

// ---- health alarms, replaced appliances, prefix-list routes ----

/// A CloudWatch client in `region` (the emulator speaks the Smithy RPC v2
/// CBOR protocol of aws-sdk-rust through the fidelity layer).
pub fn cloudwatch(env: &crate::fixtures::TestEnv, region: &str) -> aws_sdk_cloudwatch::Client {
    let conf = aws_sdk_cloudwatch::config::Builder::from(&env.sdk)
        .region(aws_sdk_cloudwatch::config::Region::new(region.to_owned()))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(conf)
}

/// A tunnel alarm as a user would make one: the Site-to-Site VPN
/// `TunnelState` metric below 1 for a minute.
pub async fn tunnel_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) -> anyhow::Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/VPN")
        .metric_name("TunnelState")
        .dimensions(
            Dimension::builder()
                .name("TunnelIpAddress")
                .value("203.0.113.10")
                .build(),
        )
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await?;
    Ok(())
}

/// Sets an alarm's state (`OK`, `ALARM`, `INSUFFICIENT_DATA`), as the
/// metric's evaluation would.
pub async fn set_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    state: &str,
    reason: &str,
) -> anyhow::Result<()> {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::from(state))
        .state_reason(reason)
        .send()
        .await?;
    Ok(())
}

/// Launches a router of failover group `group` with `lbgp:priority` and more
/// tags (`lbgp:health-alarm`, `lbgp:health-missing`…), as an Auto Scaling
/// group's launch template tags its instances.
pub async fn launch_member(
    ec2: &Ec2Client,
    subnet: &str,
    group: &str,
    priority: i64,
    extra: &[(&str, &str)],
) -> anyhow::Result<Router> {
    let priority = priority.to_string();
    let mut tags = vec![
        ("lbgp:failover-group", group),
        ("lbgp:priority", priority.as_str()),
    ];
    tags.extend_from_slice(extra);
    launch(ec2, subnet, &tags).await
}

/// A managed prefix list with `cidrs`.
pub async fn prefix_list(ec2: &Ec2Client, name: &str, cidrs: &[&str]) -> anyhow::Result<String> {
    let mut call = ec2
        .create_managed_prefix_list()
        .prefix_list_name(name)
        .max_entries(10)
        .address_family("IPv4");
    for c in cidrs {
        call = call.entries(aws_sdk_ec2::types::AddPrefixListEntry::builder().cidr(*c).build());
    }
    Ok(call
        .send()
        .await?
        .prefix_list()
        .and_then(|p| p.prefix_list_id())
        .context("prefix list id")?
        .to_owned())
}

/// A route to a network interface whose destination is a prefix list.
pub async fn list_route_to_eni(
    ec2: &Ec2Client,
    rtb: &str,
    prefix_list: &str,
    eni: &str,
) -> anyhow::Result<()> {
    ec2.create_route()
        .route_table_id(rtb)
        .destination_prefix_list_id(prefix_list)
        .network_interface_id(eni)
        .send()
        .await?;
    Ok(())
}

/// Where the route to `prefix_list` in `rtb` points, if there is one.
pub async fn list_hop(ec2: &Ec2Client, rtb: &str, prefix_list: &str) -> anyhow::Result<Option<NextHop>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let table = out.route_tables().first().context("route table")?;
    Ok(table
        .routes()
        .iter()
        .find(|r| r.destination_prefix_list_id() == Some(prefix_list))
        .map(|r| NextHop {
            instance: r.instance_id().map(str::to_owned),
            eni: r.network_interface_id().map(str::to_owned),
            other: r.gateway_id().or(r.transit_gateway_id()).map(str::to_owned),
            state: r.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        }))
}

/// Whether a network interface still exists.
pub async fn interface_exists(ec2: &Ec2Client, eni: &str) -> anyhow::Result<bool> {
    let out = ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("network-interface-id")
                .values(eni)
                .build(),
        )
        .send()
        .await?;
    Ok(!out.network_interfaces().is_empty())
}

pub use crate::events::alarm_change;
