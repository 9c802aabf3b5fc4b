//! Builds mesh scenarios in the emulator with the plain EC2 SDK, the way a
//! user's Terraform would: transit gateways, VPCs, attachments, route
//! tables, peering, router instances.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use lbgp_aws::context::Aws;
use lbgp_aws::store::Clock;
use lbgp_core::config::{CommonConfig, Env};

use crate::emulator::Emulator;

/// The home region of every test (table and topic).
pub const HOME: &str = "us-east-1";

/// An emulator with a table and a topic, and clients per region.
#[derive(Debug)]
pub struct TestEnv {
    /// The emulator.
    pub emulator: Emulator,
    /// SDK configuration in the home region.
    pub sdk: SdkConfig,
    /// The mesh regions.
    pub regions: Vec<String>,
    /// The DynamoDB table.
    pub table: String,
    /// The SNS topic ARN.
    pub topic_arn: String,
    /// The clock the functions see.
    pub clock: Arc<TestClock>,
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct TestClock(AtomicU64);

impl TestClock {
    /// Starts at a fixed, realistic time.
    pub fn new() -> Self {
        TestClock(AtomicU64::new(1_790_000_000))
    }
    /// Moves time forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn tag_spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

impl TestEnv {
    /// Starts an emulator and creates the table and topic.
    pub async fn new(regions: &[&str]) -> anyhow::Result<TestEnv> {
        let emulator = Emulator::start().await?;
        let sdk = emulator.sdk_config(HOME).await;
        let table = "lbgp".to_owned();
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()?,
            )
            .send()
            .await
            .context("creating the table")?;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let topic_arn = sns
            .create_topic()
            .name("lbgp")
            .send()
            .await?
            .topic_arn()
            .context("topic arn")?
            .to_owned();
        emulator.reset_calls().await?;
        Ok(TestEnv {
            emulator,
            sdk,
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            table,
            topic_arn,
            clock: Arc::new(TestClock::new()),
        })
    }

    /// A plain EC2 client in `region`, for fixtures and assertions.
    pub fn ec2(&self, region: &str) -> Ec2Client {
        let conf = aws_sdk_ec2::config::Builder::from(&self.sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
            .build();
        Ec2Client::from_conf(conf)
    }

    /// The `LBGP_*` environment for this test, plus `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("LBGP_REGIONS".to_owned(), self.regions.join(",")),
            ("LBGP_TABLE".to_owned(), self.table.clone()),
            ("LBGP_TOPIC_ARN".to_owned(), self.topic_arn.clone()),
            ("LBGP_MESH".to_owned(), "prod".to_owned()),
            // Pacing is measured by the benchmarks; tests run unpaced.
            ("LBGP_EC2_WRITE_RATE".to_owned(), "0".to_owned()),
        ]);
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        env
    }

    /// A config reader over [`TestEnv::env`].
    pub fn config(&self, extra: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String> + use<>> {
        let env = self.env(extra);
        Env::from_fn(move |k| env.get(k).cloned())
    }

    /// Clients for the functions, with the test clock.
    pub fn aws(&self, common: &CommonConfig) -> anyhow::Result<Aws> {
        Ok(Aws::new(&self.sdk, common, self.clock.clone())?)
    }
}

/// Creates a transit gateway, tagged `lbgp:mesh=<mesh>` when given.
pub async fn create_tgw(ec2: &Ec2Client, mesh: Option<&str>) -> anyhow::Result<String> {
    let mut call = ec2.create_transit_gateway().description("lbgp test");
    if let Some(m) = mesh {
        call = call.tag_specifications(tag_spec(ResourceType::TransitGateway, &[("lbgp:mesh", m)]));
    }
    let out = call.send().await?;
    Ok(out
        .transit_gateway()
        .and_then(|t| t.transit_gateway_id())
        .context("tgw id")?
        .to_owned())
}

/// A VPC with one subnet; returns (vpc id, subnet id, main route table id).
pub async fn create_vpc(ec2: &Ec2Client, cidr: &str) -> anyhow::Result<(String, String, String)> {
    let vpc = ec2.create_vpc().cidr_block(cidr).send().await?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).context("vpc id")?.to_owned();
    // The subnet takes the lower half of the VPC, leaving room for more.
    let net = cidr.parse::<lbgp_core::Cidr>()?.net();
    let subnet_cidr = net
        .subnets(net.prefix_len() + 1)
        .ok()
        .and_then(|mut halves| halves.next())
        .context("VPC CIDR too small to split")?
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block(subnet_cidr)
        .send()
        .await?
        .subnet()
        .and_then(|s| s.subnet_id())
        .context("subnet id")?
        .to_owned();
    let main = main_route_table(ec2, &vpc_id).await?;
    Ok((vpc_id, subnet, main))
}

/// The main route table of a VPC.
pub async fn main_route_table(ec2: &Ec2Client, vpc_id: &str) -> anyhow::Result<String> {
    let out = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(Filter::builder().name("association.main").values("true").build())
        .send()
        .await?;
    Ok(out
        .route_tables()
        .first()
        .and_then(|t| t.route_table_id())
        .context("main route table")?
        .to_owned())
}

/// Creates a custom route table in a VPC, with optional tags.
pub async fn create_route_table(
    ec2: &Ec2Client,
    vpc_id: &str,
    tags: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut call = ec2.create_route_table().vpc_id(vpc_id);
    if !tags.is_empty() {
        call = call.tag_specifications(tag_spec(ResourceType::RouteTable, tags));
    }
    Ok(call
        .send()
        .await?
        .route_table()
        .and_then(|t| t.route_table_id())
        .context("route table id")?
        .to_owned())
}

/// Attaches a VPC (through `subnet`) to a transit gateway.
pub async fn attach(ec2: &Ec2Client, tgw: &str, vpc: &str, subnet: &str) -> anyhow::Result<String> {
    Ok(ec2
        .create_transit_gateway_vpc_attachment()
        .transit_gateway_id(tgw)
        .vpc_id(vpc)
        .subnet_ids(subnet)
        .send()
        .await?
        .transit_gateway_vpc_attachment()
        .and_then(|a| a.transit_gateway_attachment_id())
        .context("attachment id")?
        .to_owned())
}

/// The static/local routes of a VPC route table: destination → target id.
pub async fn vpc_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let out = ec2.describe_route_tables().route_table_ids(rtb).send().await?;
    let mut routes = BTreeMap::new();
    for t in out.route_tables() {
        for r in t.routes() {
            let dest = r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())
                .unwrap_or_default()
                .to_owned();
            let target = r
                .transit_gateway_id()
                .or(r.network_interface_id())
                .or(r.instance_id())
                .or(r.gateway_id())
                .or(r.vpc_peering_connection_id())
                .or(r.nat_gateway_id())
                .unwrap_or_default()
                .to_owned();
            routes.insert(dest, target);
        }
    }
    Ok(routes)
}

/// Tags a resource.
pub async fn tag(ec2: &Ec2Client, resource: &str, key: &str, value: &str) -> anyhow::Result<()> {
    ec2.create_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await?;
    Ok(())
}

/// Removes a tag.
pub async fn untag(ec2: &Ec2Client, resource: &str, key: &str) -> anyhow::Result<()> {
    ec2.delete_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).build())
        .send()
        .await?;
    Ok(())
}

/// Requests a peering attachment from `(region, tgw)` to `(peer_region,
/// peer_tgw)`; accepts it in the peer region when `accept`. Returns its id.
pub async fn peer(
    env: &TestEnv,
    (region, tgw): (&str, &str),
    (peer_region, peer_tgw): (&str, &str),
    accept: bool,
) -> anyhow::Result<String> {
    let id = env
        .ec2(region)
        .create_transit_gateway_peering_attachment()
        .transit_gateway_id(tgw)
        .peer_transit_gateway_id(peer_tgw)
        .peer_region(peer_region)
        .peer_account_id("123456789012")
        .send()
        .await?
        .transit_gateway_peering_attachment()
        .and_then(|p| p.transit_gateway_attachment_id())
        .context("peering attachment id")?
        .to_owned();
    if accept {
        accept_peering(env, peer_region, &id).await?;
    }
    Ok(id)
}

/// Accepts a peering attachment in the accepter's region.
pub async fn accept_peering(env: &TestEnv, peer_region: &str, id: &str) -> anyhow::Result<()> {
    env.ec2(peer_region)
        .accept_transit_gateway_peering_attachment()
        .transit_gateway_attachment_id(id)
        .send()
        .await?;
    Ok(())
}

/// The route tables of a transit gateway.
pub async fn tgw_route_tables(ec2: &Ec2Client, tgw: &str) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_transit_gateway_route_tables()
        .filters(Filter::builder().name("transit-gateway-id").values(tgw).build())
        .send()
        .await?;
    Ok(out
        .transit_gateway_route_tables()
        .iter()
        .filter_map(|t| t.transit_gateway_route_table_id().map(str::to_owned))
        .collect())
}

/// Static routes of a TGW route table: destination → attachment id.
pub async fn tgw_static_routes(ec2: &Ec2Client, rtb: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for family in ["0.0.0.0/0", "::/0"] {
        let resp = ec2
            .search_transit_gateway_routes()
            .transit_gateway_route_table_id(rtb)
            .filters(Filter::builder().name("type").values("static").build())
            .filters(
                Filter::builder()
                    .name("route-search.subnet-of-match")
                    .values(family)
                    .build(),
            )
            .max_results(1000)
            .send()
            .await?;
        anyhow::ensure!(
            resp.additional_routes_available() != Some(true),
            "fixture read truncated"
        );
        for r in resp.routes() {
            let target = r
                .transit_gateway_attachments()
                .first()
                .and_then(|a| a.transit_gateway_attachment_id())
                .unwrap_or("blackhole")
                .to_owned();
            out.insert(r.destination_cidr_block().unwrap_or_default().to_owned(), target);
        }
    }
    Ok(out)
}
