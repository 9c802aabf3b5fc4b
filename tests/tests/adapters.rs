//! The AWS adapters of `lbgp-aws` against the emulator, over three regions:
//! every EC2 read and tolerant write, the write-ahead ledger across a crash,
//! the lease (one winner, takeover on expiry, fencing of a stale holder,
//! pending work), SDK retries under injected throttling, and the notifier.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use futures::StreamExt;
use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{Ec2, RouteTableQuery, WriteOutcome};
use lbgp_aws::notify::Notifier;
use lbgp_aws::store::{Acquired, Fence, Released};
use lbgp_core::notice::Notice;
use lbgp_core::plan::DropReason;
use lbgp_core::{
    ChangeOp, ChangeReason, Cidr, DesiredRoute, LedgerEntry, LedgerFix, LedgerStatus, OwnershipLedger,
    Region, Route, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind, plan,
};
use lbgp_runtime::Budget;
use lbgp_runtime::apply::{Owner, apply_owned};
use lbgp_tests::fixtures::{
    TestEnv, accept_peering, attach, create_route_table, create_tgw, create_vpc, peer, tgw_route_tables,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const C: &str = "ap-southeast-2";
const REGIONS: [&str; 3] = [A, B, C];
const FUNCTION: &str = "adapter-test";
const MESH: &str = "prod";

fn region(name: &str) -> Region {
    Region::new(name).unwrap()
}

/// Clients over the three regions, with the test clock.
fn aws(env: &TestEnv) -> Aws {
    let common = env
        .config(&[("LBGP_REGIONS", &REGIONS.join(","))])
        .common()
        .unwrap();
    env.aws(&common).unwrap()
}

fn ec2<'a>(aws: &'a Aws, name: &str) -> &'a Ec2 {
    aws.ec2(&region(name)).unwrap()
}

fn tag_spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

fn vpc_key(region_name: &str, table: &str, destination: &str) -> RouteKey {
    RouteKey {
        table: RouteTableRef {
            region: region(region_name),
            kind: TableKind::Vpc,
            id: table.to_owned(),
        },
        destination: destination.parse().unwrap(),
    }
}

fn tgw_key(region_name: &str, table: &str, destination: &str) -> RouteKey {
    RouteKey {
        table: RouteTableRef {
            region: region(region_name),
            kind: TableKind::TransitGateway,
            id: table.to_owned(),
        },
        destination: destination.parse().unwrap(),
    }
}

async fn create_eni(ec2: &Ec2Client, subnet: &str) -> String {
    ec2.create_network_interface()
        .subnet_id(subnet)
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned()
}

/// Starts an instance in `subnet` with `tags`; returns (instance, primary ENI).
async fn run_instance(ec2: &Ec2Client, subnet: &str, tags: &[(&str, &str)]) -> (String, String) {
    let mut call = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet);
    if !tags.is_empty() {
        call = call.tag_specifications(tag_spec(ResourceType::Instance, tags));
    }
    let out = call.send().await.unwrap();
    let instance = &out.instances()[0];
    (
        instance.instance_id().unwrap().to_owned(),
        instance.network_interfaces()[0]
            .network_interface_id()
            .unwrap()
            .to_owned(),
    )
}

/// Every request the emulator saw, in order, with its fault outcome
/// (`GET /_lbgp/calls?detail=1`; the test kit only exposes the totals).
async fn call_log(env: &TestEnv) -> Vec<Value> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", env.emulator.port()))
        .await
        .unwrap();
    stream
        .write_all(b"GET /_lbgp/calls?detail=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body.trim()).unwrap()
}

/// Outcome → count over the call log (`ok`, `throttled`, `5xx`, `lost`…).
async fn outcomes(env: &TestEnv) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for call in call_log(env).await {
        *out.entry(call["outcome"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    out
}

// ------------------------------------------------------------------ reads

/// One region of the read scenario.
struct ReadSite {
    region: &'static str,
    member: String,
    outsider: String,
    staging: String,
    member_vpc: (String, String, String),
    outsider_vpc: String,
    default_rtb: String,
    tagged_rtb: String,
}

async fn read_site(env: &TestEnv, region_name: &'static str, n: usize) -> ReadSite {
    let ec2 = env.ec2(region_name);
    let member = create_tgw(&ec2, Some(MESH)).await.unwrap();
    let outsider = create_tgw(&ec2, None).await.unwrap();
    let staging = create_tgw(&ec2, Some("staging")).await.unwrap();
    let member_vpc = create_vpc(&ec2, &format!("10.{n}.0.0/16")).await.unwrap();
    attach(&ec2, &member, &member_vpc.0, &member_vpc.1).await.unwrap();
    let (outsider_vpc, outsider_subnet, _) =
        create_vpc(&ec2, &format!("10.{}.0.0/16", 100 + n)).await.unwrap();
    attach(&ec2, &outsider, &outsider_vpc, &outsider_subnet)
        .await
        .unwrap();
    let default_rtb = tgw_route_tables(&ec2, &member).await.unwrap()[0].clone();
    let tagged_rtb = ec2
        .create_transit_gateway_route_table()
        .transit_gateway_id(&member)
        .tag_specifications(tag_spec(
            ResourceType::TransitGatewayRouteTable,
            &[("lbgp:mesh", MESH), ("Name", "mesh")],
        ))
        .send()
        .await
        .unwrap()
        .transit_gateway_route_table()
        .unwrap()
        .transit_gateway_route_table_id()
        .unwrap()
        .to_owned();
    ReadSite {
        region: region_name,
        member,
        outsider,
        staging,
        member_vpc,
        outsider_vpc,
        default_rtb,
        tagged_rtb,
    }
}

#[tokio::test]
async fn ec2_reads_the_mesh_in_three_regions() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mut sites = Vec::new();
    for (n, r) in REGIONS.into_iter().enumerate() {
        sites.push(read_site(&env, r, n + 1).await);
    }
    // A–B and B–C accepted, A–C still pending acceptance.
    let ab = peer(&env, (A, &sites[0].member), (B, &sites[1].member), true)
        .await
        .unwrap();
    let bc = peer(&env, (B, &sites[1].member), (C, &sites[2].member), true)
        .await
        .unwrap();
    let ac = peer(&env, (A, &sites[0].member), (C, &sites[2].member), false)
        .await
        .unwrap();
    let aws = aws(&env);

    for s in &sites {
        let ec2 = ec2(&aws, s.region);
        // Transit gateways: exactly the members of the mesh, by tag.
        let tgws = ec2.mesh_transit_gateways(MESH).await.unwrap();
        assert_eq!(
            tgws.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            vec![s.member.as_str()],
            "{}",
            s.region
        );
        assert_eq!(tgws[0].region, region(s.region));
        assert_eq!(tgws[0].state.as_aws(), "available");
        assert_eq!(tgws[0].tags.get("lbgp:mesh").map(String::as_str), Some(MESH));
        assert_eq!(
            tgws[0].default_association_route_table.as_deref(),
            Some(s.default_rtb.as_str())
        );
        let staging = ec2.mesh_transit_gateways("staging").await.unwrap();
        assert_eq!(staging.len(), 1);
        assert_eq!(staging[0].id, s.staging);
        assert!(ec2.mesh_transit_gateways("nobody").await.unwrap().is_empty());

        // VPC attachments of the members only.
        let attachments = ec2.vpc_attachments(&[s.member.as_str()]).await.unwrap();
        assert_eq!(attachments.len(), 1, "{attachments:?}");
        assert_eq!(attachments[0].vpc_id, s.member_vpc.0);
        assert_eq!(attachments[0].transit_gateway_id, s.member);
        assert!(attachments[0].id.starts_with("tgw-attach-"));
        assert_eq!(attachments[0].state.as_aws(), "available");
        let both = ec2
            .vpc_attachments(&[s.member.as_str(), s.outsider.as_str()])
            .await
            .unwrap();
        assert_eq!(
            both.iter().map(|a| a.vpc_id.as_str()).collect::<BTreeSet<_>>(),
            BTreeSet::from([s.member_vpc.0.as_str(), s.outsider_vpc.as_str()])
        );
        assert!(ec2.vpc_attachments(&[]).await.unwrap().is_empty());

        // Route tables of the member TGW: the default one and the tagged one.
        let member = &tgws[0];
        let tables = ec2.tgw_route_tables(&[member]).await.unwrap();
        let by_id: BTreeMap<&str, _> = tables.iter().map(|t| (t.id.as_str(), t)).collect();
        assert_eq!(by_id.len(), 2, "{tables:?}");
        assert!(by_id[s.default_rtb.as_str()].default_association);
        assert!(!by_id[s.tagged_rtb.as_str()].default_association);
        assert_eq!(
            by_id[s.tagged_rtb.as_str()]
                .tags
                .get("lbgp:mesh")
                .map(String::as_str),
            Some(MESH)
        );
        assert!(tables.iter().all(|t| t.transit_gateway_id == s.member));
    }

    // Peering attachments, from both sides, with the peer's region and TGW.
    let expect = [
        (
            A,
            vec![
                (&ab, "available", (A, 0), (B, 1)),
                (&ac, "pendingAcceptance", (A, 0), (C, 2)),
            ],
        ),
        (
            B,
            vec![
                (&ab, "available", (A, 0), (B, 1)),
                (&bc, "available", (B, 1), (C, 2)),
            ],
        ),
        (
            C,
            vec![
                (&bc, "available", (B, 1), (C, 2)),
                (&ac, "pendingAcceptance", (A, 0), (C, 2)),
            ],
        ),
    ];
    for (r, want) in expect {
        let seen = ec2(&aws, r).peering_attachments().await.unwrap();
        assert_eq!(seen.len(), want.len(), "{r}: {seen:?}");
        for (id, state, (req_region, req), (acc_region, acc)) in want {
            let p = seen.iter().find(|p| &p.id == id).unwrap();
            assert_eq!(p.state.as_aws(), state, "{r} {id}");
            assert_eq!(p.region, region(r));
            assert_eq!(p.requester.transit_gateway_id, sites[req].member);
            assert_eq!(p.requester.region, Some(region(req_region)));
            assert_eq!(p.accepter.transit_gateway_id, sites[acc].member);
            assert_eq!(p.accepter.region, Some(region(acc_region)));
            assert_eq!(
                p.peer_of(&sites[req].member).unwrap().transit_gateway_id,
                sites[acc].member
            );
            assert_eq!(
                p.peer_of(&sites[acc].member).unwrap().region,
                Some(region(req_region))
            );
            assert!(p.peer_of("tgw-unrelated").is_none());
        }
    }

    // TGW routes: propagated VPC CIDR, static to a peering, static to a VPC
    // attachment, blackhole, IPv6.
    let s = &sites[1];
    let ec2b = env.ec2(B);
    let attachment = ec2(&aws, B).vpc_attachments(&[s.member.as_str()]).await.unwrap()[0]
        .id
        .clone();
    for (dest, target) in [
        ("10.1.0.0/16", Some(ab.as_str())),
        ("10.3.0.0/16", Some(bc.as_str())),
        ("192.168.0.0/16", Some(attachment.as_str())),
        ("10.66.0.0/16", None),
        ("fd00:1::/48", Some(ab.as_str())),
    ] {
        let call = ec2b
            .create_transit_gateway_route()
            .transit_gateway_route_table_id(&s.default_rtb)
            .destination_cidr_block(dest);
        match target {
            Some(t) => call.transit_gateway_attachment_id(t),
            None => call.blackhole(true),
        }
        .send()
        .await
        .unwrap();
    }
    let routes = ec2(&aws, B).tgw_routes(&s.default_rtb).await.unwrap();
    let got: BTreeMap<(String, RouteOrigin), (RouteTarget, RouteState, Vec<String>)> = routes
        .iter()
        .map(|r| {
            assert_eq!(r.route.key.table, tgw_key(B, &s.default_rtb, "10.0.0.0/8").table);
            (
                (r.route.key.destination.to_string(), r.route.origin),
                (
                    r.route.target.clone(),
                    r.route.state,
                    r.attachments
                        .iter()
                        .map(|a| a.resource_type.to_string())
                        .collect(),
                ),
            )
        })
        .collect();
    let att = |id: &str| RouteTarget::TransitGatewayAttachment(id.to_owned());
    let want = BTreeMap::from([
        (
            ("10.2.0.0/16".to_owned(), RouteOrigin::Propagated),
            (att(&attachment), RouteState::Active, vec!["vpc".to_owned()]),
        ),
        (
            ("10.1.0.0/16".to_owned(), RouteOrigin::Static),
            (att(&ab), RouteState::Active, vec!["peering".to_owned()]),
        ),
        (
            ("10.3.0.0/16".to_owned(), RouteOrigin::Static),
            (att(&bc), RouteState::Active, vec!["peering".to_owned()]),
        ),
        (
            ("192.168.0.0/16".to_owned(), RouteOrigin::Static),
            (att(&attachment), RouteState::Active, vec!["vpc".to_owned()]),
        ),
        (
            ("10.66.0.0/16".to_owned(), RouteOrigin::Static),
            (RouteTarget::Blackhole, RouteState::Blackhole, vec![]),
        ),
        (
            ("fd00:1::/48".to_owned(), RouteOrigin::Static),
            (att(&ab), RouteState::Active, vec!["peering".to_owned()]),
        ),
    ]);
    assert_eq!(got, want);
    // The tagged table holds nothing; a deleted table reads as empty.
    assert!(ec2(&aws, B).tgw_routes(&s.tagged_rtb).await.unwrap().is_empty());
    assert!(
        ec2(&aws, B)
            .tgw_routes("tgw-rtb-0000000000000dead")
            .await
            .unwrap()
            .is_empty()
    );
    let found = ec2(&aws, B)
        .read_static_route(&tgw_key(B, &s.default_rtb, "10.3.0.0/16"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.target, att(&bc));
    assert!(
        ec2(&aws, B)
            .read_static_route(&tgw_key(B, &s.default_rtb, "10.2.0.0/16"))
            .await
            .unwrap()
            .is_none(),
        "a propagated route is not a static one"
    );
}

#[tokio::test]
async fn ec2_reads_vpcs_with_every_cidr_and_their_route_tables() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let (vpc, subnet, main) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let secondary = client
            .associate_vpc_cidr_block()
            .vpc_id(&vpc)
            .cidr_block(format!("100.64.{n}.0/24"))
            .send()
            .await
            .unwrap();
        let v6 = client
            .associate_vpc_cidr_block()
            .vpc_id(&vpc)
            .amazon_provided_ipv6_cidr_block(true)
            .send()
            .await
            .unwrap();
        assert!(secondary.cidr_block_association().is_some() && v6.vpc_id().is_some());
        // Not exercised: disassociating a block. The emulator refuses
        // DisassociateVpcCidrBlock of a secondary block ("cannot remove
        // local route"): the fidelity layer's DeleteRoute, which moto's
        // disassociation calls internally, refuses local routes.
        let (other, _, _) = create_vpc(&client, "172.31.0.0/16").await.unwrap();

        let ec2 = ec2(&aws, r);
        let vpcs = ec2.vpcs(&[vpc.as_str(), other.as_str()]).await.unwrap();
        assert_eq!(vpcs.len(), 2);
        let mine = vpcs.iter().find(|v| v.id == vpc).unwrap();
        let cidrs: Vec<String> = mine.cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs.len(), 3, "{r}: {cidrs:?}");
        assert!(cidrs.contains(&format!("10.{n}.0.0/16")), "{cidrs:?}");
        assert!(cidrs.contains(&format!("100.64.{n}.0/24")), "{cidrs:?}");
        let v6: Vec<_> = mine.cidrs.iter().filter(|c| c.is_ipv6()).collect();
        assert_eq!(v6.len(), 1, "{cidrs:?}");
        let v6_block = v6[0].to_string();
        assert!(v6_block.ends_with("/56"), "{v6_block}");
        assert!(ec2.vpcs(&[]).await.unwrap().is_empty());

        // Route tables: main and a custom one, with a subnet, tags and routes
        // of every target kind.
        let custom = create_route_table(&client, &vpc, &[("lbgp:ignore", "true"), ("Name", "edge")])
            .await
            .unwrap();
        client
            .associate_route_table()
            .route_table_id(&custom)
            .subnet_id(&subnet)
            .send()
            .await
            .unwrap();
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        let eni = create_eni(&client, &subnet).await;
        let (instance, instance_eni) = run_instance(&client, &subnet, &[]).await;
        let igw = client
            .create_internet_gateway()
            .send()
            .await
            .unwrap()
            .internet_gateway()
            .unwrap()
            .internet_gateway_id()
            .unwrap()
            .to_owned();
        client
            .attach_internet_gateway()
            .internet_gateway_id(&igw)
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        client
            .create_route()
            .route_table_id(&custom)
            .destination_cidr_block("10.128.0.0/9")
            .transit_gateway_id(&tgw)
            .send()
            .await
            .unwrap();
        client
            .create_route()
            .route_table_id(&custom)
            .destination_cidr_block("192.168.0.0/16")
            .network_interface_id(&eni)
            .send()
            .await
            .unwrap();
        client
            .create_route()
            .route_table_id(&custom)
            .destination_cidr_block("172.16.0.0/12")
            .instance_id(&instance)
            .send()
            .await
            .unwrap();
        client
            .create_route()
            .route_table_id(&custom)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&igw)
            .send()
            .await
            .unwrap();
        client
            .create_route()
            .route_table_id(&custom)
            .destination_ipv6_cidr_block("fd00::/8")
            .transit_gateway_id(&tgw)
            .send()
            .await
            .unwrap();

        for query in [
            RouteTableQuery::Vpcs(&[vpc.as_str()]),
            RouteTableQuery::Ids(&[main.as_str(), custom.as_str()]),
        ] {
            let tables = ec2.vpc_route_tables(query).await.unwrap();
            assert_eq!(
                tables.iter().map(|t| t.id.as_str()).collect::<BTreeSet<_>>(),
                BTreeSet::from([main.as_str(), custom.as_str()]),
                "{query:?}"
            );
            let m = tables.iter().find(|t| t.id == main).unwrap();
            assert!(m.main && m.vpc_id == vpc);
            let c = tables.iter().find(|t| t.id == custom).unwrap();
            assert!(!c.main);
            assert_eq!(c.subnet_ids, vec![subnet.clone()]);
            assert_eq!(c.tags.get("lbgp:ignore").map(String::as_str), Some("true"));
            let routes: BTreeMap<String, (&RouteTarget, RouteOrigin, RouteState)> = c
                .routes
                .iter()
                .map(|route| {
                    assert_eq!(route.route.key.table, vpc_key(r, &custom, "10.0.0.0/8").table);
                    (
                        route.route.key.destination.to_string(),
                        (&route.route.target, route.route.origin, route.route.state),
                    )
                })
                .collect();
            let local = RouteTarget::Other("local".to_owned());
            let tgw_t = RouteTarget::TransitGateway(tgw.clone());
            let eni_t = RouteTarget::NetworkInterface(eni.clone());
            // AWS reports a route to an instance with the instance *and* its
            // interface; the model keeps the interface as the target and
            // both ids beside it.
            let inst_t = RouteTarget::NetworkInterface(instance_eni.clone());
            let igw_t = RouteTarget::Other(igw.clone());
            let (a, s) = (RouteState::Active, RouteOrigin::Static);
            let want = BTreeMap::from([
                (format!("10.{n}.0.0/16"), (&local, RouteOrigin::Local, a)),
                (format!("100.64.{n}.0/24"), (&local, RouteOrigin::Local, a)),
                (v6_block.clone(), (&local, RouteOrigin::Local, a)),
                ("10.128.0.0/9".to_owned(), (&tgw_t, s, a)),
                // The ENI is attached to nothing: AWS reports a blackhole.
                ("192.168.0.0/16".to_owned(), (&eni_t, s, RouteState::Blackhole)),
                ("172.16.0.0/12".to_owned(), (&inst_t, s, a)),
                ("0.0.0.0/0".to_owned(), (&igw_t, s, a)),
                ("fd00::/8".to_owned(), (&tgw_t, s, a)),
            ]);
            assert_eq!(routes, want, "{r} {custom}");
            let via_instance = c
                .routes
                .iter()
                .find(|r| r.route.key.destination.to_string() == "172.16.0.0/12")
                .unwrap();
            assert_eq!(via_instance.instance_id.as_deref(), Some(instance.as_str()));
            assert_eq!(
                via_instance.network_interface_id.as_deref(),
                Some(instance_eni.as_str())
            );
        }
        assert!(
            ec2.vpc_route_tables(RouteTableQuery::Ids(&[]))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// Current AWS pages SearchTransitGatewayRoutes with a NextToken: the
/// table is read page after page, ⌈routes / 1000⌉ calls.
#[tokio::test]
async fn a_tgw_table_of_more_than_1000_routes_is_paged_with_next_token() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let (rtb, statics) = big_tgw_table(&env).await;
    let aws = aws(&env);
    env.emulator.reset_calls().await.unwrap();
    let routes = ec2(&aws, B).tgw_routes(&rtb).await.unwrap();
    let searches = env
        .emulator
        .calls()
        .await
        .unwrap()
        .count("ec2", "SearchTransitGatewayRoutes");
    // 1,104 static routes and one propagated: two pages.
    assert_eq!(searches, 2, "{searches} searches for 1,105 routes");
    let got: BTreeMap<String, RouteTarget> = routes
        .iter()
        .filter(|r| r.route.origin == RouteOrigin::Static)
        .map(|r| (r.route.key.destination.to_string(), r.route.target.clone()))
        .collect();
    assert_eq!(got, statics);
}

/// 1,100 /24s under 10.0.0.0/13, plus routes whose prefixes are exactly
/// the split points the legacy reader searches with (0.0.0.0/0, 10.0.0.0/8,
/// 10.0.0.0/13) and an IPv6 one, in a TGW table of region B with a VPC
/// attached (one propagated route). Returns the table and its statics.
async fn big_tgw_table(env: &TestEnv) -> (String, BTreeMap<String, RouteTarget>) {
    let client = env.ec2(B);
    let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
    let rtb = tgw_route_tables(&client, &tgw).await.unwrap()[0].clone();
    let (vpc, subnet, _) = create_vpc(&client, "172.31.0.0/16").await.unwrap();
    let attachment = attach(&client, &tgw, &vpc, &subnet).await.unwrap();
    let mut statics: BTreeMap<String, RouteTarget> = (0..1100u32)
        .map(|i| {
            (
                format!("10.{}.{}.0/24", i / 220, i % 220),
                RouteTarget::TransitGatewayAttachment(attachment.clone()),
            )
        })
        .collect();
    statics.insert("0.0.0.0/0".to_owned(), RouteTarget::Blackhole);
    statics.insert("10.0.0.0/8".to_owned(), RouteTarget::Blackhole);
    statics.insert(
        "10.0.0.0/13".to_owned(),
        RouteTarget::TransitGatewayAttachment(attachment.clone()),
    );
    statics.insert(
        "fd00::/8".to_owned(),
        RouteTarget::TransitGatewayAttachment(attachment.clone()),
    );
    futures::stream::iter(statics.clone())
        .map(|(dest, target)| {
            let client = client.clone();
            let rtb = rtb.clone();
            async move {
                let call = client
                    .create_transit_gateway_route()
                    .transit_gateway_route_table_id(rtb)
                    .destination_cidr_block(dest);
                match target {
                    RouteTarget::TransitGatewayAttachment(id) => call.transit_gateway_attachment_id(id),
                    _ => call.blackhole(true),
                }
                .send()
                .await
                .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    (rtb, statics)
}

/// AWS as it was (and as an answer without a token still says): at most
/// 1,000 routes a search, `AdditionalRoutesAvailable` and no token. The
/// reader falls back to splitting the prefix space.
#[tokio::test]
async fn a_tgw_table_of_more_than_1000_routes_is_split_and_read_completely() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    env.emulator
        .set_fidelity(json!({"search_routes_paging": "legacy"}))
        .await
        .unwrap();
    let (rtb, statics) = big_tgw_table(&env).await;

    let aws = aws(&env);
    env.emulator.reset_calls().await.unwrap();
    let routes = ec2(&aws, B).tgw_routes(&rtb).await.unwrap();
    let searches = env
        .emulator
        .calls()
        .await
        .unwrap()
        .count("ec2", "SearchTransitGatewayRoutes");
    assert!(searches > 4, "the table was not split: {searches} searches");
    let got: BTreeMap<String, RouteTarget> = routes
        .iter()
        .filter(|r| r.route.origin == RouteOrigin::Static)
        .map(|r| (r.route.key.destination.to_string(), r.route.target.clone()))
        .collect();
    assert_eq!(got.len(), 1104, "incomplete or duplicated read");
    assert_eq!(got, statics);
    let propagated: Vec<String> = routes
        .iter()
        .filter(|r| r.route.origin == RouteOrigin::Propagated)
        .map(|r| r.route.key.destination.to_string())
        .collect();
    assert_eq!(propagated, vec!["172.31.0.0/16".to_owned()]);

    // A caller that says what the table holds starts at the right searches
    // and makes fewer; one whose expectations are wrong still reads it all.
    let destinations = |routes: &[lbgp_core::topology::TgwRoute]| -> BTreeSet<String> {
        routes
            .iter()
            .map(|r| r.route.key.destination.to_string())
            .collect()
    };
    let everything = destinations(&routes);
    let accurate: Vec<Cidr> = statics.keys().map(|c| c.parse().unwrap()).collect();
    let elsewhere: Vec<Cidr> = (0..2000u32)
        .map(|i| format!("172.{}.{}.0/24", 16 + i / 256, i % 256).parse().unwrap())
        .collect();
    for (expected, fewer) in [
        (&accurate, true),
        (&elsewhere, false),
        (&accurate[..3].to_vec(), false),
    ] {
        env.emulator.reset_calls().await.unwrap();
        let read = ec2(&aws, B).tgw_routes_expecting(&rtb, expected).await.unwrap();
        let calls = env
            .emulator
            .calls()
            .await
            .unwrap()
            .count("ec2", "SearchTransitGatewayRoutes");
        let got = destinations(&read);
        let missing: Vec<&String> = everything.difference(&got).collect();
        let extra: Vec<&String> = got.difference(&everything).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "expecting {} routes: missing {missing:?}, extra {extra:?}",
            expected.len()
        );
        assert_eq!(read.len(), routes.len(), "duplicated routes");
        if fewer {
            assert!(
                calls < searches,
                "{calls} searches with the table known, {searches} without"
            );
        }
    }
}

#[tokio::test]
async fn ec2_reads_failover_instances_with_state_and_status_checks() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let (vpc, subnet, _) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let (active, active_eni) = run_instance(
            &client,
            &subnet,
            &[("lbgp:failover-group", "edge"), ("lbgp:priority", "200")],
        )
        .await;
        let (standby, _) = run_instance(
            &client,
            &subnet,
            &[("lbgp:failover-group", "edge"), ("lbgp:priority", "100")],
        )
        .await;
        let (untagged, _) = run_instance(&client, &subnet, &[]).await;
        // A second interface on the active router.
        let extra = create_eni(&client, &subnet).await;
        client
            .attach_network_interface()
            .network_interface_id(&extra)
            .instance_id(&active)
            .device_index(1)
            .send()
            .await
            .unwrap();
        client
            .stop_instances()
            .instance_ids(&standby)
            .send()
            .await
            .unwrap();

        let ec2 = ec2(&aws, r);
        let instances = ec2.failover_instances().await.unwrap();
        assert_eq!(
            instances.iter().map(|i| i.id.as_str()).collect::<BTreeSet<_>>(),
            BTreeSet::from([active.as_str(), standby.as_str()]),
            "{r}"
        );
        let a = instances.iter().find(|i| i.id == active).unwrap();
        assert_eq!(a.state.map(|s| s.as_aws()), Some("running"));
        assert_eq!(a.vpc_id.as_deref(), Some(vpc.as_str()));
        assert!(a.availability_zone.as_deref().unwrap().starts_with(r));
        assert_eq!(a.primary_interface_id.as_deref(), Some(active_eni.as_str()));
        assert_eq!(a.interface_ids, vec![active_eni.clone(), extra.clone()]);
        assert_eq!(a.tags.get("lbgp:priority").map(String::as_str), Some("200"));
        let s = instances.iter().find(|i| i.id == standby).unwrap();
        assert!(
            matches!(s.state.map(|s| s.as_aws()), Some("stopped" | "stopping")),
            "{:?}",
            s.state
        );

        let checks = ec2
            .status_checks(&[active.as_str(), standby.as_str(), untagged.as_str()])
            .await
            .unwrap();
        assert_eq!(checks.len(), 3, "stopped instances are reported too: {checks:?}");
        assert!(
            checks
                .values()
                .all(|c| !c.instance_impaired && !c.system_impaired)
        );
        assert!(ec2.status_checks(&[]).await.unwrap().is_empty());
        let zones = ec2.subnet_zones(&[subnet.as_str()]).await.unwrap();
        assert_eq!(zones.get(&subnet), a.availability_zone.as_ref());
    }
}

// ----------------------------------------------------------------- writes

#[tokio::test]
async fn vpc_route_writes_are_tolerant_for_every_target_and_family() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let (vpc, subnet, _) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        client
            .associate_vpc_cidr_block()
            .vpc_id(&vpc)
            .amazon_provided_ipv6_cidr_block(true)
            .send()
            .await
            .unwrap();
        let rtb = create_route_table(&client, &vpc, &[]).await.unwrap();
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        let eni = create_eni(&client, &subnet).await;
        let (instance, instance_eni) = run_instance(&client, &subnet, &[]).await;
        let ec2 = ec2(&aws, r);
        let targets = [
            RouteTarget::TransitGateway(tgw.clone()),
            RouteTarget::NetworkInterface(eni.clone()),
            RouteTarget::Instance(instance.clone()),
        ];
        // How each target reads back (a route to an instance shows its ENI).
        let reads_as = |t: &RouteTarget| match t {
            RouteTarget::Instance(_) => RouteTarget::NetworkInterface(instance_eni.clone()),
            other => other.clone(),
        };
        for dest in ["192.168.0.0/16", "fd00::/8"] {
            let key = vpc_key(r, &rtb, dest);
            for (i, target) in targets.iter().enumerate() {
                let other = &targets[(i + 1) % targets.len()];
                // Replace of a missing route: NotFound (EC2 answers
                // InvalidParameterValue for it).
                assert_eq!(
                    ec2.replace_route(&key, target).await.unwrap(),
                    WriteOutcome::NotFound,
                    "{r} {dest} {target:?}"
                );
                assert_eq!(
                    ec2.create_route(&key, target).await.unwrap(),
                    WriteOutcome::Applied
                );
                assert_eq!(
                    ec2.create_route(&key, target).await.unwrap(),
                    WriteOutcome::AlreadyExists,
                    "{r} {dest} {target:?}"
                );
                assert_eq!(
                    ec2.create_route(&key, other).await.unwrap(),
                    WriteOutcome::AlreadyExists
                );
                let found = ec2.read_static_route(&key).await.unwrap().unwrap();
                assert_eq!(found.target, reads_as(target), "{r} {dest}");
                assert_eq!(found.origin, RouteOrigin::Static);
                assert_eq!(
                    ec2.replace_route(&key, other).await.unwrap(),
                    WriteOutcome::Applied
                );
                let found = ec2.read_static_route(&key).await.unwrap().unwrap();
                assert_eq!(found.target, reads_as(other), "{r} {dest} after replace");
                assert_eq!(ec2.delete_route(&key).await.unwrap(), WriteOutcome::Applied);
                assert_eq!(ec2.delete_route(&key).await.unwrap(), WriteOutcome::NotFound);
                assert!(ec2.read_static_route(&key).await.unwrap().is_none());
            }
        }
        // Targets a VPC route cannot have are refused before any call.
        let key = vpc_key(r, &rtb, "10.200.0.0/16");
        for bad in [
            RouteTarget::Blackhole,
            RouteTarget::TransitGatewayAttachment("tgw-attach-1".into()),
        ] {
            assert!(matches!(
                ec2.create_route(&key, &bad).await,
                Err(Error::Unexpected { .. })
            ));
        }
        // A real error is an error, not a tolerated outcome.
        let missing_table = vpc_key(r, "rtb-0000000000000dead", "10.200.0.0/16");
        assert!(matches!(
            ec2.create_route(&missing_table, &targets[0]).await,
            Err(Error::Aws { .. })
        ));
    }
}

#[tokio::test]
async fn tgw_route_writes_are_tolerant() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    let mut tgws = Vec::new();
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        let rtb = tgw_route_tables(&client, &tgw).await.unwrap()[0].clone();
        let (vpc, subnet, _) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let attachment = attach(&client, &tgw, &vpc, &subnet).await.unwrap();
        tgws.push((r, tgw, rtb, attachment));
    }
    // Each region peers with the next.
    let mut peerings = Vec::new();
    for i in 0..3 {
        let (x, y) = (&tgws[i], &tgws[(i + 1) % 3]);
        peerings.push(peer(&env, (x.0, &x.1), (y.0, &y.1), false).await.unwrap());
        accept_peering(&env, y.0, peerings.last().unwrap()).await.unwrap();
    }
    for (i, (r, _, rtb, attachment)) in tgws.iter().enumerate() {
        let ec2 = ec2(&aws, r);
        let peering = RouteTarget::TransitGatewayAttachment(peerings[i].clone());
        let vpc = RouteTarget::TransitGatewayAttachment(attachment.clone());
        for dest in ["10.50.0.0/16", "fd00:50::/48"] {
            let key = tgw_key(r, rtb, dest);
            assert_eq!(
                ec2.replace_route(&key, &peering).await.unwrap(),
                WriteOutcome::NotFound
            );
            assert_eq!(
                ec2.create_route(&key, &peering).await.unwrap(),
                WriteOutcome::Applied
            );
            assert_eq!(
                ec2.create_route(&key, &peering).await.unwrap(),
                WriteOutcome::AlreadyExists,
                "{r} {dest}"
            );
            assert_eq!(
                ec2.create_route(&key, &vpc).await.unwrap(),
                WriteOutcome::AlreadyExists
            );
            assert_eq!(
                ec2.read_static_route(&key).await.unwrap().unwrap().target,
                peering
            );
            assert_eq!(
                ec2.replace_route(&key, &vpc).await.unwrap(),
                WriteOutcome::Applied
            );
            assert_eq!(ec2.read_static_route(&key).await.unwrap().unwrap().target, vpc);
            assert_eq!(ec2.delete_route(&key).await.unwrap(), WriteOutcome::Applied);
            assert_eq!(ec2.delete_route(&key).await.unwrap(), WriteOutcome::NotFound);
            assert!(ec2.read_static_route(&key).await.unwrap().is_none());
        }
        // Blackhole static routes.
        let key = tgw_key(r, rtb, "10.66.0.0/16");
        assert_eq!(
            ec2.create_route(&key, &RouteTarget::Blackhole).await.unwrap(),
            WriteOutcome::Applied
        );
        assert_eq!(
            ec2.create_route(&key, &RouteTarget::Blackhole).await.unwrap(),
            WriteOutcome::AlreadyExists
        );
        let routes = ec2.tgw_routes(rtb).await.unwrap();
        let blackhole = routes
            .iter()
            .find(|t| t.route.key == key)
            .map(|t| (&t.route.target, t.route.state));
        assert_eq!(blackhole, Some((&RouteTarget::Blackhole, RouteState::Blackhole)));
        assert_eq!(ec2.delete_route(&key).await.unwrap(), WriteOutcome::Applied);
        assert!(matches!(
            ec2.create_route(&key, &RouteTarget::TransitGateway("tgw-1".into()))
                .await,
            Err(Error::Unexpected { .. })
        ));
    }
}

// ------------------------------------------------------- ledger and lease

/// Each region's writes go through their own queue: a region waiting on its
/// token bucket never holds up another.
#[tokio::test]
async fn regions_are_written_side_by_side() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    // Burst 1, then 4 per second: every region's second write waits 250 ms.
    let common = env
        .config(&[
            ("LBGP_REGIONS", &REGIONS.join(",")),
            ("LBGP_EC2_WRITE_BURST", "1"),
            ("LBGP_EC2_WRITE_RATE", "4"),
        ])
        .common()
        .unwrap();
    let aws = env.aws(&common).unwrap();
    let owner = Owner {
        function: FUNCTION,
        tables: None,
        mesh: MESH,
    };
    let mut desired = Vec::new();
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let (vpc, _, _) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let rtb = create_route_table(&client, &vpc, &[]).await.unwrap();
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        for dest in ["172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"] {
            desired.push(DesiredRoute {
                key: vpc_key(r, &rtb, dest),
                target: RouteTarget::TransitGateway(tgw.clone()),
            });
        }
    }
    let p = plan(&desired, &[], &OwnershipLedger::new());
    assert_eq!(p.changes.len(), 3 * REGIONS.len());
    let Acquired::Held(fence) = aws.store.acquire(FUNCTION, MESH, "run-1", 180).await.unwrap() else {
        panic!("lease not taken")
    };
    env.emulator.reset_calls().await.unwrap();
    let report = apply_owned(
        &aws,
        &fence,
        owner,
        &p.ledger_fixes,
        &p.changes,
        &Budget::new(None, env.clock.clone()),
    )
    .await;
    assert!(
        report.errors.is_empty() && report.applied.len() == p.changes.len(),
        "{report:?}"
    );
    // Plan order is region by region; one queue for all would send a
    // region's first write only after the previous region's last.
    let creates: Vec<String> = env
        .emulator
        .call_log()
        .await
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "CreateRoute")
        .map(|c| c["region"].as_str().unwrap_or_default().to_owned())
        .collect();
    let first_round: BTreeSet<&str> = creates[..REGIONS.len()].iter().map(String::as_str).collect();
    assert_eq!(
        first_round,
        BTreeSet::from(REGIONS),
        "every region's first write went out before any region's second: {creates:?}"
    );
}

/// A route that was in the ledger when the "crash" happened.
#[tokio::test]
async fn the_ledger_survives_a_crash_between_intent_and_confirm() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    let regions: Vec<Region> = REGIONS.iter().map(|r| region(r)).collect();
    let owner = Owner {
        function: FUNCTION,
        tables: None,
        mesh: MESH,
    };
    // One table per region.
    let mut sites = Vec::new();
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let (vpc, _, _) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let rtb = create_route_table(&client, &vpc, &[]).await.unwrap();
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        let foreign_tgw = create_tgw(&client, None).await.unwrap();
        sites.push((r, rtb, tgw, foreign_tgw));
    }
    let target = |i: usize| RouteTarget::TransitGateway(sites[i].2.clone());

    // The run that crashes: takes the lease, records intents, sends some
    // creates, confirms none of them.
    let Acquired::Held(crashed) = aws.store.acquire(FUNCTION, MESH, "run-1", 180).await.unwrap() else {
        panic!("lease not taken")
    };
    // (region index, destination, route created before the crash by
    // whom: Some(true) us, Some(false) someone else, None nobody)
    let intents = [
        (0, "172.16.0.0/12", Some(true)),   // adopted
        (1, "172.16.0.0/12", None),         // dropped: never applied, not desired
        (2, "172.16.0.0/12", None),         // re-created: never applied, desired
        (0, "192.168.0.0/16", Some(false)), // dropped: taken over
    ];
    for (i, dest, created) in intents {
        let (r, rtb, _, foreign) = &sites[i];
        let key = vpc_key(r, rtb, dest);
        aws.store
            .record(&crashed, FUNCTION, MESH, &key, &target(i), LedgerStatus::Pending)
            .await
            .unwrap();
        match created {
            Some(true) => {
                ec2(&aws, r).create_route(&key, &target(i)).await.unwrap();
            }
            Some(false) => {
                ec2(&aws, r)
                    .create_route(&key, &RouteTarget::TransitGateway(foreign.clone()))
                    .await
                    .unwrap();
            }
            None => {}
        }
    }
    // An owned route whose delete went through before the crash, but whose
    // forget did not.
    let gone = vpc_key(sites[1].0, &sites[1].1, "100.64.0.0/10");
    aws.store
        .record(&crashed, FUNCTION, MESH, &gone, &target(1), LedgerStatus::Owned)
        .await
        .unwrap();
    // ...and a confirmed route that stays.
    let kept = vpc_key(sites[2].0, &sites[2].1, "192.168.0.0/16");
    ec2(&aws, sites[2].0)
        .create_route(&kept, &target(2))
        .await
        .unwrap();
    aws.store
        .record(&crashed, FUNCTION, MESH, &kept, &target(2), LedgerStatus::Owned)
        .await
        .unwrap();
    drop(crashed);

    // The next run: the lease of the crashed run is still there until it
    // expires; then it is taken over.
    assert!(matches!(
        aws.store.acquire(FUNCTION, MESH, "run-2", 180).await.unwrap(),
        Acquired::Busy { holder } if holder == "run-1"
    ));
    env.clock.advance(181);
    let Acquired::Held(fence) = aws.store.acquire(FUNCTION, MESH, "run-2", 180).await.unwrap() else {
        panic!("expired lease not taken over")
    };

    let ledger = aws.store.load_ledger(FUNCTION, MESH, &regions).await.unwrap();
    let statuses: BTreeMap<RouteKey, LedgerStatus> =
        ledger.iter().map(|e| (e.key.clone(), e.status)).collect();
    assert_eq!(statuses.len(), 6, "{ledger:?}");
    assert_eq!(
        statuses.values().filter(|s| **s == LedgerStatus::Pending).count(),
        4
    );

    let read_actual = || async {
        let mut actual: Vec<Route> = Vec::new();
        for (r, rtb, _, _) in &sites {
            for t in ec2(&aws, r)
                .vpc_route_tables(RouteTableQuery::Ids(&[rtb.as_str()]))
                .await
                .unwrap()
            {
                actual.extend(t.routes.into_iter().map(|r| r.route));
            }
        }
        actual
    };
    // Desired now: 172.16/12 in tables 0 and 2, and the kept route.
    let desired = vec![
        DesiredRoute {
            key: vpc_key(sites[0].0, &sites[0].1, "172.16.0.0/12"),
            target: target(0),
        },
        DesiredRoute {
            key: vpc_key(sites[2].0, &sites[2].1, "172.16.0.0/12"),
            target: target(2),
        },
        DesiredRoute {
            key: kept.clone(),
            target: target(2),
        },
    ];
    let p = plan(&desired, &read_actual().await, &ledger);
    assert_eq!(
        p.ledger_fixes,
        {
            let mut fixes = vec![
                LedgerFix::Record {
                    key: vpc_key(sites[0].0, &sites[0].1, "172.16.0.0/12"),
                    target: target(0),
                },
                LedgerFix::Drop {
                    key: vpc_key(sites[0].0, &sites[0].1, "192.168.0.0/16"),
                    why: DropReason::TakenOver,
                },
                LedgerFix::Drop {
                    key: vpc_key(sites[1].0, &sites[1].1, "172.16.0.0/12"),
                    why: DropReason::IntentNeverApplied,
                },
                LedgerFix::Drop {
                    key: gone.clone(),
                    why: DropReason::RouteGone,
                },
            ];
            fixes.sort();
            fixes
        },
        "{p:#?}"
    );
    assert_eq!(p.changes.len(), 1, "{p:#?}");
    assert_eq!(
        p.changes[0].key,
        vpc_key(sites[2].0, &sites[2].1, "172.16.0.0/12")
    );
    assert_eq!(p.changes[0].op, ChangeOp::Create);
    assert_eq!(p.changes[0].reason, ChangeReason::Missing);
    assert!(p.conflicts.is_empty(), "{p:#?}");

    let report = apply_owned(
        &aws,
        &fence,
        owner,
        &p.ledger_fixes,
        &p.changes,
        &Budget::new(None, env.clock.clone()),
    )
    .await;
    assert!(report.errors.is_empty() && !report.fenced, "{report:?}");
    let after = aws.store.load_ledger(FUNCTION, MESH, &regions).await.unwrap();
    let want: Vec<LedgerEntry> = desired
        .iter()
        .map(|d| LedgerEntry::new(d.key.clone(), d.target.clone(), LedgerStatus::Owned))
        .collect();
    let mut got: Vec<LedgerEntry> = after.iter().cloned().collect();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    // The world now matches: the next plan is empty, the foreign route
    // that took a destination over is untouched and no longer ours.
    let again = plan(&desired, &read_actual().await, &after);
    assert!(
        again.is_converged() && again.ledger_fixes.is_empty(),
        "{again:#?}"
    );
    let foreign = ec2(&aws, sites[0].0)
        .read_static_route(&vpc_key(sites[0].0, &sites[0].1, "192.168.0.0/16"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(foreign.target, RouteTarget::TransitGateway(sites[0].3.clone()));
    assert_eq!(aws.store.release(&fence).await.unwrap(), Released::Done);
}

#[tokio::test]
async fn of_eight_concurrent_lease_takers_exactly_one_wins() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    for round in 0..3 {
        let holders: Vec<String> = (0..8).map(|i| format!("run-{round}-{i}")).collect();
        let results = join_all(holders.iter().map(|h| aws.store.acquire(FUNCTION, MESH, h, 180))).await;
        let results: Vec<Acquired> = results.into_iter().map(Result::unwrap).collect();
        let held: Vec<&Fence> = results
            .iter()
            .filter_map(|a| match a {
                Acquired::Held(f) => Some(f),
                Acquired::Busy { .. } => None,
            })
            .collect();
        assert_eq!(held.len(), 1, "round {round}: {results:?}");
        let winner = held[0].clone();
        for a in &results {
            if let Acquired::Busy { holder } = a {
                assert_eq!(holder, &winner.holder);
            }
        }
        // The losers marked work pending: the winner runs once more.
        assert_eq!(aws.store.release(&winner).await.unwrap(), Released::WorkPending);
        assert_eq!(aws.store.release(&winner).await.unwrap(), Released::Done);
    }
    // Tokens only grow: each holder's fence is newer than the last.
    let Acquired::Held(a) = aws.store.acquire(FUNCTION, MESH, "a", 180).await.unwrap() else {
        panic!()
    };
    aws.store.release(&a).await.unwrap();
    let Acquired::Held(b) = aws.store.acquire(FUNCTION, MESH, "b", 180).await.unwrap() else {
        panic!()
    };
    assert!(b.token > a.token && a.token >= 4, "{a:?} {b:?}");
    // Another scope is another lease.
    assert!(matches!(
        aws.store.acquire(FUNCTION, "other-mesh", "c", 180).await.unwrap(),
        Acquired::Held(_)
    ));
    assert!(matches!(
        aws.store.acquire("other-function", MESH, "d", 180).await.unwrap(),
        Acquired::Held(_)
    ));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_stale_holder_is_fenced() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    let key = vpc_key(B, "rtb-0123456789abcdef0", "10.0.0.0/8");
    let target = RouteTarget::TransitGateway("tgw-0123456789abcdef0".into());

    let Acquired::Held(mut old) = aws.store.acquire(FUNCTION, MESH, "old", 60).await.unwrap() else {
        panic!()
    };
    aws.store
        .record(&old, FUNCTION, MESH, &key, &target, LedgerStatus::Owned)
        .await
        .unwrap();
    // Not expired yet: busy, and work is marked pending for "old".
    env.clock.advance(60);
    assert!(matches!(
        aws.store.acquire(FUNCTION, MESH, "new", 60).await.unwrap(),
        Acquired::Busy { holder } if holder == "old"
    ));
    // The holder may renew while it still holds the lease.
    aws.store.renew(&mut old, 60).await.unwrap();
    env.clock.advance(61);
    let Acquired::Held(new) = aws.store.acquire(FUNCTION, MESH, "new", 60).await.unwrap() else {
        panic!("expired lease not taken over")
    };
    assert_eq!(new.token, old.token + 1);

    // Every write of the stale holder is refused.
    let old_token = old.token;
    let fenced = |r: Result<(), Error>| matches!(r, Err(Error::Fenced { token, .. }) if token == old_token);
    assert!(fenced(
        aws.store
            .record(&old, FUNCTION, MESH, &key, &target, LedgerStatus::Pending)
            .await
    ));
    assert!(fenced(aws.store.forget(&old, FUNCTION, MESH, &key).await));
    assert!(fenced(
        aws.store
            .save_state(&old, FUNCTION, MESH, "conflicts", &json!(["stale"]))
            .await
    ));
    assert!(fenced(aws.store.renew(&mut old, 60).await));
    assert!(matches!(aws.store.release(&old).await, Err(Error::Fenced { .. })));
    // The stale writes changed nothing; the new holder's go through.
    let ledger = aws.store.load_ledger(FUNCTION, MESH, &[region(B)]).await.unwrap();
    assert_eq!(ledger.get(&key).unwrap().status, LedgerStatus::Owned);
    assert_eq!(
        aws.store.load_state(FUNCTION, MESH, "conflicts").await.unwrap(),
        None
    );
    aws.store
        .save_state(&new, FUNCTION, MESH, "conflicts", &json!([]))
        .await
        .unwrap();
    assert_eq!(
        aws.store.load_state(FUNCTION, MESH, "conflicts").await.unwrap(),
        Some(json!([]))
    );
    aws.store.forget(&new, FUNCTION, MESH, &key).await.unwrap();
    assert!(
        aws.store
            .load_ledger(FUNCTION, MESH, &[region(B)])
            .await
            .unwrap()
            .is_empty()
    );
    // "new" took the lease over with pending cleared: nothing more to do.
    assert_eq!(aws.store.release(&new).await.unwrap(), Released::Done);
}

#[tokio::test]
async fn a_busy_taker_marks_work_pending_for_the_holder() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    let Acquired::Held(holder) = aws.store.acquire(FUNCTION, MESH, "holder", 180).await.unwrap() else {
        panic!()
    };
    // Nobody asked: released at once.
    assert_eq!(aws.store.release(&holder).await.unwrap(), Released::Done);

    let Acquired::Held(holder) = aws.store.acquire(FUNCTION, MESH, "holder", 180).await.unwrap() else {
        panic!()
    };
    for i in 0..3 {
        assert!(matches!(
            aws.store.acquire(FUNCTION, MESH, &format!("busy-{i}"), 180).await.unwrap(),
            Acquired::Busy { holder } if holder == "holder"
        ));
    }
    // Three asks are one pending pass; the lease is kept for it.
    assert_eq!(aws.store.release(&holder).await.unwrap(), Released::WorkPending);
    assert!(matches!(
        aws.store.acquire(FUNCTION, MESH, "late", 180).await.unwrap(),
        Acquired::Busy { .. }
    ));
    assert_eq!(aws.store.release(&holder).await.unwrap(), Released::WorkPending);
    assert_eq!(aws.store.release(&holder).await.unwrap(), Released::Done);
    // Free again.
    assert!(matches!(
        aws.store.acquire(FUNCTION, MESH, "next", 180).await.unwrap(),
        Acquired::Held(_)
    ));
}

/// A release whose response is lost is retried by the SDK; the retry finds
/// the lease already free. That is a release, not a lost lease.
#[tokio::test]
async fn a_release_whose_response_is_lost_still_releases() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let aws = aws(&env);
    let Acquired::Held(fence) = aws.store.acquire(FUNCTION, MESH, "holder", 180).await.unwrap() else {
        panic!()
    };
    // Seed 1 draws 0.134, 0.847, 0.764, 0.255…: the first DynamoDB call
    // (the release) is applied and its answer lost; the next ones are served.
    env.emulator
        .set_faults(json!({"seed": 1, "lost_response_p": 0.2, "services": ["dynamodb"]}))
        .await
        .unwrap();
    let released = aws.store.release(&fence).await;
    let log = outcomes(&env).await;
    env.emulator.clear_faults().await.unwrap();
    assert_eq!(log.get("lost"), Some(&1), "the fault was not injected: {log:?}");
    assert_eq!(released.unwrap(), Released::Done);
    assert!(matches!(
        aws.store.acquire(FUNCTION, MESH, "next", 180).await.unwrap(),
        Acquired::Held(_)
    ));
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn adapters_complete_under_20_percent_throttling() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mut sites = Vec::new();
    for (n, r) in REGIONS.into_iter().enumerate() {
        let client = env.ec2(r);
        let tgw = create_tgw(&client, Some(MESH)).await.unwrap();
        let rtb = tgw_route_tables(&client, &tgw).await.unwrap()[0].clone();
        let (vpc, subnet, main) = create_vpc(&client, &format!("10.{n}.0.0/16")).await.unwrap();
        let attachment = attach(&client, &tgw, &vpc, &subnet).await.unwrap();
        let (instance, _) = run_instance(&client, &subnet, &[("lbgp:failover-group", "edge")]).await;
        sites.push((r, tgw, rtb, vpc, main, attachment, instance));
    }
    let aws = aws(&env);
    let regions: Vec<Region> = REGIONS.iter().map(|r| region(r)).collect();
    env.emulator.reset_calls().await.unwrap();
    env.emulator
        .set_faults(json!({"seed": 20, "throttle_p": 0.2, "services": ["ec2", "dynamodb"]}))
        .await
        .unwrap();

    let Acquired::Held(fence) = aws.store.acquire(FUNCTION, MESH, "throttled", 180).await.unwrap() else {
        panic!()
    };
    for _ in 0..2 {
        for (r, tgw, rtb, vpc, main, attachment, instance) in &sites {
            let ec2 = ec2(&aws, r);
            let tgws = ec2.mesh_transit_gateways(MESH).await.unwrap();
            assert_eq!(tgws.len(), 1);
            assert_eq!(&tgws[0].id, tgw);
            assert_eq!(ec2.vpc_attachments(&[tgw.as_str()]).await.unwrap().len(), 1);
            ec2.peering_attachments().await.unwrap();
            assert_eq!(ec2.vpcs(&[vpc.as_str()]).await.unwrap().len(), 1);
            assert_eq!(
                ec2.vpc_route_tables(RouteTableQuery::Vpcs(&[vpc.as_str()]))
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert_eq!(ec2.tgw_route_tables(&[&tgws[0]]).await.unwrap().len(), 1);
            assert_eq!(ec2.tgw_routes(rtb).await.unwrap().len(), 1);
            assert_eq!(ec2.failover_instances().await.unwrap().len(), 1);
            assert_eq!(ec2.status_checks(&[instance.as_str()]).await.unwrap().len(), 1);

            let vpc_route = vpc_key(r, main, "172.16.0.0/12");
            let tgw_target = RouteTarget::TransitGateway(tgw.clone());
            aws.store
                .record(
                    &fence,
                    FUNCTION,
                    MESH,
                    &vpc_route,
                    &tgw_target,
                    LedgerStatus::Pending,
                )
                .await
                .unwrap();
            assert_eq!(
                ec2.create_route(&vpc_route, &tgw_target).await.unwrap(),
                WriteOutcome::Applied
            );
            aws.store
                .record(
                    &fence,
                    FUNCTION,
                    MESH,
                    &vpc_route,
                    &tgw_target,
                    LedgerStatus::Owned,
                )
                .await
                .unwrap();
            assert_eq!(
                ec2.replace_route(&vpc_route, &tgw_target).await.unwrap(),
                WriteOutcome::Applied
            );
            let tgw_route = tgw_key(r, rtb, "10.99.0.0/16");
            let attach_target = RouteTarget::TransitGatewayAttachment(attachment.clone());
            assert_eq!(
                ec2.create_route(&tgw_route, &attach_target).await.unwrap(),
                WriteOutcome::Applied
            );
            assert_eq!(ec2.tgw_routes(rtb).await.unwrap().len(), 2);
            assert_eq!(ec2.delete_route(&tgw_route).await.unwrap(), WriteOutcome::Applied);
            assert_eq!(ec2.delete_route(&vpc_route).await.unwrap(), WriteOutcome::Applied);
            assert_eq!(
                aws.store
                    .load_ledger(FUNCTION, MESH, &regions)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            aws.store
                .forget(&fence, FUNCTION, MESH, &vpc_route)
                .await
                .unwrap();
            aws.store
                .save_state(&fence, FUNCTION, MESH, "conflicts", &json!([r]))
                .await
                .unwrap();
            assert_eq!(
                aws.store.load_state(FUNCTION, MESH, "conflicts").await.unwrap(),
                Some(json!([r]))
            );
        }
    }
    assert_eq!(aws.store.release(&fence).await.unwrap(), Released::Done);
    let log = outcomes(&env).await;
    env.emulator.clear_faults().await.unwrap();
    let throttled = log.get("throttled").copied().unwrap_or(0);
    let total: u64 = log.values().sum();
    println!("throttling soak: {total} calls, {log:?}");
    assert!(
        throttled * 10 >= total && throttled > 20,
        "throttling was not injected as asked: {log:?}"
    );
}

#[tokio::test]
async fn the_notifier_publishes_builds_its_client_on_first_use_and_is_a_noop_without_a_topic() {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let client = aws_sdk_sns::Client::new(&env.sdk);
    let on = Notifier::new(client.clone(), Some(env.topic_arn.clone()), region(A));
    let off = Notifier::new(client, None, region(A));
    assert!(on.enabled() && !off.enabled());
    let long_subject = format!("lbgp: {} — routes ✓", "x".repeat(200));
    let notice = |subject: &str, body: Value| Notice {
        subject: subject.to_owned(),
        body,
    };
    on.publish(&notice(
        &long_subject,
        json!({"event": "plan_applied", "changes": [1, 2]}),
    ))
    .await
    .unwrap();
    on.publish(&notice("second", json!({}))).await.unwrap();
    off.publish(&notice("nobody listens", json!({}))).await.unwrap();
    // What a function builds: the client waits for the first publish (most
    // runs report nothing), then publishes like any other.
    let lazy = Notifier::on_first_use(
        aws_sdk_sns::config::Builder::from(&env.sdk).build(),
        env.topic_arn.clone(),
        region(A),
    );
    assert!(
        lazy.enabled() && !lazy.client_built(),
        "built before its first publish"
    );
    lazy.publish(&notice("third", json!({}))).await.unwrap();
    assert!(lazy.client_built());
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("sns", "Publish"), 3);
    assert_eq!(calls.0.len(), 1, "the disabled notifier called AWS: {calls:?}");
    // A topic that does not exist is an error, not silence.
    let missing = Notifier::new(
        aws_sdk_sns::Client::new(&env.sdk),
        Some("arn:aws:sns:us-east-1:123456789012:missing".to_owned()),
        region(A),
    );
    assert!(matches!(
        missing.publish(&notice("x", json!({}))).await,
        Err(Error::Aws {
            operation: "Publish",
            ..
        })
    ));
}
