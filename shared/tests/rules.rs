//! The injector's and L-BGP's rules (`inject::desire`, `propagate::desire`,
//! `propagate::learned`, `propagate::over_quota`, `propagate::plan`) through
//! the public API only: unit tests on hand-made views, and property tests
//! on generated views of realistic shape (a few regions, member and outsider
//! TGWs, VPCs with overlapping CIDRs, ignored tables, foreign routes, routes
//! learned over peering, a ledger of our routes, unreadable regions).
//!
//! Every attachment, TGW and peering is `available` (with `ipv6_support`
//! exactly when the VPC has an IPv6 block): what other states mean is not
//! asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use lbgp_core::config::{Env, InjectMode, InjectorConfig, PropagatorConfig};
use lbgp_core::desire::Desire;
use lbgp_core::inject::{self, InjectorView};
use lbgp_core::plan::{DropReason, LedgerFix, simulate_apply};
use lbgp_core::prefix::{aggregate, subtract};
use lbgp_core::propagate::{self, MeshView};
use lbgp_core::report::ErrorReport;
use lbgp_core::topology::{
    AttachmentResource, AttachmentState, GatewayState, PeeringAttachment, PeeringEnd, TAG_IGNORE, TAG_MESH,
    TgwRoute, TgwRouteAttachment, TgwRouteTable, TransitGateway, Vpc, VpcAttachment, VpcRoute, VpcRouteTable,
};
use lbgp_core::{
    Cidr, DesiredRoute, LedgerEntry, LedgerStatus, OwnershipLedger, Plan, Region, Route, RouteKey,
    RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind,
};
use proptest::prelude::*;

const MESH: &str = "prod";

/// Returns `Err(message)` from a checker when `cond` does not hold.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn region(name: &str) -> Region {
    Region::new(name).unwrap()
}

/// An IPv4 prefix from its octets, host bits cleared.
fn v4(octets: [u8; 4], len: u8) -> Cidr {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    cidr(&format!(
        "{}/{len}",
        Ipv4Addr::from(u32::from_be_bytes(octets) & mask)
    ))
}

/// `2600:1f18:0:<hextet>::/<len>` (Amazon-provided space), host bits cleared.
fn v6(hextet: u16, len: u8) -> Cidr {
    let addr = (0x2600_1f18_u128 << 96) | (u128::from(hextet) << 64);
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    cidr(&format!("{}/{len}", Ipv6Addr::from(addr & mask)))
}

fn vars(regions: &[Region], extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        (
            "LBGP_REGIONS".to_owned(),
            regions.iter().map(Region::as_str).collect::<Vec<_>>().join(","),
        ),
        ("LBGP_TABLE".to_owned(), "lbgp".to_owned()),
        ("LBGP_MESH".to_owned(), MESH.to_owned()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

fn injector_config(regions: &[Region], extra: &[(&str, &str)]) -> InjectorConfig {
    let vars = vars(regions, extra);
    Env::from_fn(|k| vars.get(k).cloned()).injector().unwrap()
}

fn propagator_config(regions: &[Region], extra: &[(&str, &str)]) -> PropagatorConfig {
    let vars = vars(regions, extra);
    Env::from_fn(|k| vars.get(k).cloned()).propagator().unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn tgw(id: &str, region: &Region, mesh: Option<&str>, default_table: Option<&str>) -> TransitGateway {
    TransitGateway {
        id: id.to_owned(),
        region: region.clone(),
        state: GatewayState::Available,
        default_association_route_table: default_table.map(str::to_owned),
        tags: mesh.map(|m| tags(&[(TAG_MESH, m)])).unwrap_or_default(),
    }
}

fn vpc_attachment(id: &str, tgw: &str, vpc: &Vpc) -> VpcAttachment {
    VpcAttachment {
        id: id.to_owned(),
        transit_gateway_id: tgw.to_owned(),
        vpc_id: vpc.id.clone(),
        state: AttachmentState::Available,
        ipv6_support: vpc.cidrs.iter().any(Cidr::is_ipv6),
        vpc_owner: None,
    }
}

fn table_ref(region: &Region, kind: TableKind, id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region.clone(),
        kind,
        id: id.to_owned(),
    }
}

fn route(table: &RouteTableRef, destination: Cidr, target: RouteTarget, origin: RouteOrigin) -> Route {
    Route {
        key: RouteKey {
            table: table.clone(),
            destination,
        },
        target,
        state: RouteState::Active,
        origin,
    }
}

fn owned(route: &Route) -> LedgerEntry {
    LedgerEntry::new(route.key.clone(), route.target.clone(), LedgerStatus::Owned)
}

fn vpc_route(route: Route) -> VpcRoute {
    VpcRoute {
        network_interface_id: match &route.target {
            RouteTarget::NetworkInterface(id) => Some(id.clone()),
            _ => None,
        },
        route,
        instance_id: None,
    }
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut out = items.to_vec();
    out.sort();
    out
}

/// Desired destinations per table, as strings, for readable assertions.
fn desired_by_table(desire: &Desire) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for d in sorted(&desire.desired) {
        out.entry(d.key.table.id.clone())
            .or_default()
            .push((d.key.destination.to_string(), d.target.to_string()));
    }
    out
}

/// Proptest configuration: `cases` cases, and no regression files written
/// (this suite owns no file but itself).
fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// A permutation source: a proptest-chosen seed drives a Fisher-Yates
/// shuffle of every list it is given.
struct Shuffle(u64);

impl Shuffle {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn list<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let bound = u64::try_from(i + 1).unwrap();
            let j = usize::try_from(self.next() % bound).unwrap();
            items.swap(i, j);
        }
    }
}

/// The same injector view with every list in another order.
fn shuffle_injector_view(mut view: InjectorView, seed: u64) -> InjectorView {
    let mut s = Shuffle(seed);
    s.list(&mut view.scope);
    s.list(&mut view.regions);
    s.list(&mut view.unreadable);
    for r in &mut view.regions {
        s.list(&mut r.transit_gateways);
        s.list(&mut r.attachments);
        s.list(&mut r.vpcs);
        for v in &mut r.vpcs {
            s.list(&mut v.cidrs);
        }
        s.list(&mut r.tables);
        for t in &mut r.tables {
            s.list(&mut t.routes);
            s.list(&mut t.subnet_ids);
        }
    }
    view
}

/// The same mesh view with every list in another order.
fn shuffle_mesh_view(mut view: MeshView, seed: u64) -> MeshView {
    let mut s = Shuffle(seed);
    s.list(&mut view.regions);
    s.list(&mut view.unreadable);
    for r in &mut view.regions {
        s.list(&mut r.transit_gateways);
        s.list(&mut r.attachments);
        s.list(&mut r.vpcs);
        for v in &mut r.vpcs {
            s.list(&mut v.cidrs);
        }
        s.list(&mut r.route_tables);
        s.list(&mut r.routes);
        for route in &mut r.routes {
            s.list(&mut route.attachments);
        }
        s.list(&mut r.peerings);
    }
    view
}

/// What must not depend on input order: the plan, the desired set, and
/// everything the rules report.
fn same_outcome(a: &Desire, pa: &Plan, b: &Desire, pb: &Plan) -> Result<(), String> {
    ensure!(pa == pb, "the plan depends on input order:\n{pa:#?}\nvs\n{pb:#?}");
    ensure!(
        sorted(&a.desired) == sorted(&b.desired),
        "the desired set depends on input order"
    );
    ensure!(
        sorted(&a.actual) == sorted(&b.actual),
        "the routes found depend on input order"
    );
    ensure!(
        a.frozen_tables == b.frozen_tables,
        "frozen tables depend on input order: {:?} vs {:?}",
        a.frozen_tables,
        b.frozen_tables
    );
    ensure!(
        a.complete_regions == b.complete_regions,
        "complete regions differ"
    );
    ensure!(
        a.conflicts == b.conflicts,
        "conflict reports depend on input order:\n{:#?}\nvs\n{:#?}",
        a.conflicts,
        b.conflicts
    );
    // What is skipped or failed must not depend on input order. Two known
    // wording issues are left out: a specific-mode skip names the first of
    // the VPC's own CIDRs that overlaps the other VPC's CIDR (so the order of
    // `Vpc::cidrs` picks it), and specific mode's early return on an
    // unreadable region keeps `errors` in input order (no `normalise`).
    let skipped = |d: &Desire| -> BTreeSet<(String, String, Option<String>)> {
        d.skipped
            .iter()
            .map(|s| (s.region.clone(), s.resource.clone(), s.destination.clone()))
            .collect()
    };
    ensure!(
        skipped(a) == skipped(b),
        "what is skipped depends on input order:\n{:#?}\nvs\n{:#?}",
        a.skipped,
        b.skipped
    );
    ensure!(
        sorted(&a.errors) == sorted(&b.errors),
        "error reports depend on input order:\n{:#?}\nvs\n{:#?}",
        a.errors,
        b.errors
    );
    Ok(())
}

fn unreadable(region: &Region) -> ErrorReport {
    ErrorReport {
        region: region.to_string(),
        resource: None,
        error: "DescribeTransitGateways: dispatch failure: connection refused".to_owned(),
        account: None,
    }
}

// ---------------------------------------------------------------------------
// Injector: views, generators and checkers
// ---------------------------------------------------------------------------

const INJ_REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];

/// One VPC of a hand-made injector region.
struct HandVpc<'a> {
    id: &'a str,
    cidrs: &'a [&'a str],
    /// The TGWs it is attached to.
    tgws: &'a [&'a str],
    /// Its route tables: id and `lbgp:ignore=true`.
    tables: &'a [(&'a str, bool)],
}

/// A hand-made injector region: TGWs (id, mesh tag) and VPCs; every table
/// holds its VPC's local routes.
fn hand_region(name: &str, tgws: &[(&str, Option<&str>)], vpcs: &[HandVpc<'_>]) -> inject::RegionView {
    let r = region(name);
    let mut view = inject::RegionView {
        region: r.clone(),
        transit_gateways: tgws.iter().map(|(id, mesh)| tgw(id, &r, *mesh, None)).collect(),
        attachments: Vec::new(),
        vpcs: Vec::new(),
        tables: Vec::new(),
    };
    for v in vpcs {
        let vpc = Vpc {
            id: v.id.to_owned(),
            cidrs: v.cidrs.iter().map(|c| cidr(c)).collect(),
        };
        for t in v.tgws {
            let id = format!("tgw-attach-0{}{}", &t[5..], &v.id[5..]);
            view.attachments.push(vpc_attachment(&id, t, &vpc));
        }
        for (i, (id, ignored)) in v.tables.iter().enumerate() {
            let tref = table_ref(&r, TableKind::Vpc, id);
            view.tables.push(VpcRouteTable {
                id: (*id).to_owned(),
                vpc_id: vpc.id.clone(),
                main: i == 0,
                subnet_ids: vec![format!("subnet-0{}{i}", &v.id[5..])],
                gateway_ids: Vec::new(),
                tags: if *ignored {
                    tags(&[(TAG_IGNORE, "true")])
                } else {
                    BTreeMap::new()
                },
                routes: vpc
                    .cidrs
                    .iter()
                    .map(|c| {
                        vpc_route(route(
                            &tref,
                            *c,
                            RouteTarget::Other("local".to_owned()),
                            RouteOrigin::Local,
                        ))
                    })
                    .collect(),
                owner: None,
            });
        }
        view.vpcs.push(vpc);
    }
    view
}

fn add_vpc_route(view: &mut inject::RegionView, table: &str, route: &Route) {
    let t = view.tables.iter_mut().find(|t| t.id == table).unwrap();
    t.routes.push(vpc_route(route.clone()));
}

#[derive(Debug, Clone)]
struct InjRouteSpec {
    dest: Cidr,
    /// A TGW slot of the region (or, past them, a router's interface).
    target: usize,
    blackhole: bool,
    /// 0: foreign; 1: ours (owned); 2: ours, recorded with another target;
    /// 3: a pending intent of ours.
    ledger: u8,
}

#[derive(Debug, Clone)]
struct InjTableSpec {
    ignored: bool,
    routes: Vec<InjRouteSpec>,
    /// A route of ours the ledger records and the table no longer has.
    gone: Option<Cidr>,
}

#[derive(Debug, Clone)]
struct InjVpcSpec {
    v4: Vec<Cidr>,
    v6: Option<Cidr>,
    /// Attached to TGW slot i when `attach[i]`.
    attach: Vec<bool>,
    tables: Vec<InjTableSpec>,
}

#[derive(Debug, Clone)]
struct InjRegionSpec {
    /// Mesh tag and a number that orders the ids.
    tgws: Vec<(Option<&'static str>, u8)>,
    vpcs: Vec<InjVpcSpec>,
    unreadable: bool,
    in_scope: bool,
}

#[derive(Debug, Clone)]
struct InjSpec {
    specific: bool,
    regions: Vec<InjRegionSpec>,
    prefixes: Vec<Cidr>,
    quota: usize,
}

#[derive(Debug, Clone)]
struct InjCase {
    config: InjectorConfig,
    view: InjectorView,
    ledger: OwnershipLedger,
}

fn mesh_tag() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![5 => Just(Some(MESH)), 1 => Just(None), 1 => Just(Some("staging"))]
}

/// VPC IPv4 blocks (/16 to /24) in a small space, so VPCs often overlap.
fn vpc_v4() -> impl Strategy<Value = Cidr> {
    (0u8..6, 0u8..4, prop::sample::select(vec![16u8, 20, 24]))
        .prop_map(|(a, b, len)| v4([10, a, b * 64, 0], len))
}

/// Amazon-provided /56 IPv6 blocks.
fn vpc_v6() -> impl Strategy<Value = Cidr> {
    (0u16..3).prop_map(|a| v6(a << 8, 56))
}

/// Mesh prefixes and route destinations: aggregates covering VPCs, prefixes
/// equal to or inside them, unrelated ones, IPv6 ones.
fn mesh_prefix() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        4 => (0u8..6, 0u8..4, prop::sample::select(vec![8u8, 12, 16, 17, 20, 24]))
            .prop_map(|(a, b, len)| v4([10, a, b * 64, 0], len)),
        1 => prop::sample::select(vec!["172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fd00::/8"])
            .prop_map(cidr),
        2 => (0u16..3, prop::sample::select(vec![32u8, 56, 60])).prop_map(|(a, len)| v6((a << 8) | 0x10, len)),
    ]
}

fn inj_spec() -> impl Strategy<Value = InjSpec> {
    let route = (mesh_prefix(), 0usize..4, prop::bool::weighted(0.15), 0u8..4).prop_map(
        |(dest, target, blackhole, ledger)| InjRouteSpec {
            dest,
            target,
            blackhole,
            ledger,
        },
    );
    let table = (
        prop::bool::weighted(0.2),
        prop::collection::vec(route, 0..=3),
        prop::option::weighted(0.2, mesh_prefix()),
    )
        .prop_map(|(ignored, routes, gone)| InjTableSpec {
            ignored,
            routes,
            gone,
        });
    let vpc = (
        prop::collection::vec(vpc_v4(), 1..=2),
        prop::option::weighted(0.4, vpc_v6()),
        prop::collection::vec(prop::bool::weighted(0.6), 3),
        prop::collection::vec(table, 1..=2),
    )
        .prop_map(|(v4, v6, attach, tables)| InjVpcSpec {
            v4,
            v6,
            attach,
            tables,
        });
    let region = (
        prop::collection::vec((mesh_tag(), any::<u8>()), 1..=3),
        prop::collection::vec(vpc, 1..=4),
        prop::bool::weighted(0.12),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(tgws, vpcs, unreadable, in_scope)| InjRegionSpec {
            tgws,
            vpcs,
            unreadable,
            in_scope,
        });
    (
        any::<bool>(),
        prop::collection::vec(region, 1..=3),
        prop::collection::vec(mesh_prefix(), 1..=4),
        prop_oneof![1usize..=3, 4usize..=12],
    )
        .prop_map(|(specific, regions, prefixes, quota)| InjSpec {
            specific,
            regions,
            prefixes,
            quota,
        })
}

fn build_injector(spec: &InjSpec) -> InjCase {
    let all: Vec<Region> = (0..spec.regions.len()).map(|i| region(INJ_REGIONS[i])).collect();
    let prefixes: Vec<String> = spec.prefixes.iter().map(ToString::to_string).collect();
    let quota = spec.quota.to_string();
    let config = injector_config(
        &all,
        &[
            ("LBGP_PREFIXES", &prefixes.join(",")),
            (
                "LBGP_INJECT_MODE",
                if spec.specific { "specific" } else { "aggregate" },
            ),
            ("LBGP_ROUTE_QUOTA", &quota),
        ],
    );
    let any_in_scope = spec.regions.iter().any(|r| r.in_scope);
    let mut view = InjectorView::default();
    let mut ledger = OwnershipLedger::new();
    for (r, rs) in spec.regions.iter().enumerate() {
        let reg = all[r].clone();
        let in_scope = rs.in_scope || (!any_in_scope && r == 0);
        if in_scope {
            view.scope.push(reg.clone());
        }
        let tgws: Vec<TransitGateway> = rs
            .tgws
            .iter()
            .enumerate()
            .map(|(n, (mesh, idnum))| tgw(&format!("tgw-0{idnum:02x}{r}{n}a1b2c3d4e5f6"), &reg, *mesh, None))
            .collect();
        let mut rv = inject::RegionView {
            region: reg.clone(),
            transit_gateways: tgws.clone(),
            attachments: Vec::new(),
            vpcs: Vec::new(),
            tables: Vec::new(),
        };
        for (v, vs) in rs.vpcs.iter().enumerate() {
            // AWS refuses overlapping blocks within one VPC.
            let mut cidrs: Vec<Cidr> = Vec::new();
            for c in &vs.v4 {
                if !cidrs.iter().any(|o| o.overlaps(c)) {
                    cidrs.push(*c);
                }
            }
            cidrs.extend(vs.v6);
            let vpc = Vpc {
                id: format!("vpc-0{r}{v}9f8e7d6c5b4a3"),
                cidrs,
            };
            for (n, t) in tgws.iter().enumerate() {
                if vs.attach[n] {
                    rv.attachments.push(vpc_attachment(
                        &format!("tgw-attach-0{r}{n}{v}0a1b2c3d4e5f"),
                        &t.id,
                        &vpc,
                    ));
                }
            }
            for (k, ts) in vs.tables.iter().enumerate() {
                let id = format!("rtb-0{r}{v}{k}1a2b3c4d5e6f7");
                let tref = table_ref(&reg, TableKind::Vpc, &id);
                let mut routes: Vec<Route> = vpc
                    .cidrs
                    .iter()
                    .map(|c| {
                        route(
                            &tref,
                            *c,
                            RouteTarget::Other("local".to_owned()),
                            RouteOrigin::Local,
                        )
                    })
                    .collect();
                for rs_route in &ts.routes {
                    // One route per destination in a table, and no more
                    // static routes per family than AWS's quota allows.
                    let family = routes
                        .iter()
                        .filter(|x| {
                            x.origin == RouteOrigin::Static
                                && x.key.destination.is_ipv6() == rs_route.dest.is_ipv6()
                        })
                        .count();
                    if routes.iter().any(|x| x.key.destination == rs_route.dest) || family >= spec.quota {
                        continue;
                    }
                    let mut found = route(
                        &tref,
                        rs_route.dest,
                        match tgws.get(rs_route.target) {
                            Some(t) => RouteTarget::TransitGateway(t.id.clone()),
                            None => RouteTarget::NetworkInterface(format!("eni-0{r}{v}{k}5d6e7f8a9b0c1")),
                        },
                        RouteOrigin::Static,
                    );
                    if rs_route.blackhole {
                        found.state = RouteState::Blackhole;
                    }
                    if matches!(found.target, RouteTarget::TransitGateway(_)) {
                        match rs_route.ledger {
                            1 => ledger.insert(owned(&found)),
                            2 => ledger.insert(LedgerEntry::new(
                                found.key.clone(),
                                RouteTarget::TransitGateway("tgw-0ffffffffffffffff".to_owned()),
                                LedgerStatus::Owned,
                            )),
                            3 => ledger.insert(LedgerEntry::new(
                                found.key.clone(),
                                found.target.clone(),
                                LedgerStatus::Pending,
                            )),
                            _ => {}
                        }
                    }
                    routes.push(found);
                }
                if let (Some(gone), Some(t)) = (ts.gone, tgws.first())
                    && !routes.iter().any(|x| x.key.destination == gone)
                {
                    ledger.insert(owned(&route(
                        &tref,
                        gone,
                        RouteTarget::TransitGateway(t.id.clone()),
                        RouteOrigin::Static,
                    )));
                }
                rv.tables.push(VpcRouteTable {
                    id,
                    vpc_id: vpc.id.clone(),
                    main: k == 0,
                    subnet_ids: vec![format!("subnet-0{r}{v}{k}4c5d6e7f8a9b0")],
                    gateway_ids: Vec::new(),
                    tags: if ts.ignored {
                        tags(&[(TAG_IGNORE, "true")])
                    } else {
                        BTreeMap::new()
                    },
                    routes: routes.into_iter().map(vpc_route).collect(),
                    owner: None,
                });
            }
            rv.vpcs.push(vpc);
        }
        // Specific mode reads every region; aggregate mode only the scope.
        if !(spec.specific || in_scope) {
            continue;
        }
        if rs.unreadable {
            view.unreadable.push(unreadable(&reg));
        } else {
            view.regions.push(rv);
        }
    }
    InjCase { config, view, ledger }
}

/// The member TGW serving `vpc_id`: the lowest id among the member TGWs it
/// is attached to.
fn served_by<'a>(rv: &'a inject::RegionView, vpc_id: &str) -> Option<&'a str> {
    rv.attachments
        .iter()
        .filter(|a| a.vpc_id == vpc_id)
        .filter_map(|a| {
            rv.transit_gateways
                .iter()
                .find(|t| t.id == a.transit_gateway_id && t.in_mesh(MESH))
        })
        .map(|t| t.id.as_str())
        .min()
}

/// No desired route equals or sits inside its VPC's own CIDRs; IPv6 goes
/// only to VPCs with an IPv6 block; in specific mode nothing overlaps the
/// VPC's own CIDRs, so nothing covers another VPC's CIDR that overlaps them.
fn check_no_hijack(view: &InjectorView, config: &InjectorConfig, desire: &Desire) -> Result<(), String> {
    let mut vpc_of: BTreeMap<RouteTableRef, &Vpc> = BTreeMap::new();
    let all_vpcs: Vec<&Vpc> = view.regions.iter().flat_map(|r| &r.vpcs).collect();
    for rv in &view.regions {
        for t in &rv.tables {
            if let Some(v) = rv.vpcs.iter().find(|v| v.id == t.vpc_id) {
                vpc_of.insert(table_ref(&rv.region, TableKind::Vpc, &t.id), v);
            }
        }
    }
    for d in &desire.desired {
        let dest = &d.key.destination;
        let vpc = vpc_of
            .get(&d.key.table)
            .ok_or_else(|| format!("{} is desired in a table of no VPC in the view", d.key))?;
        if let Some(own) = vpc.cidrs.iter().find(|c| c.contains(dest)) {
            return Err(format!(
                "{} equals or sits inside {}'s own CIDR {own}",
                d.key, vpc.id
            ));
        }
        ensure!(
            dest.is_ipv4() || vpc.cidrs.iter().any(Cidr::is_ipv6),
            "{} is IPv6 but {} has no IPv6 block",
            d.key,
            vpc.id
        );
        if config.inject_mode == InjectMode::Specific {
            if let Some(own) = vpc.cidrs.iter().find(|c| c.overlaps(dest)) {
                return Err(format!(
                    "specific mode: {} overlaps {}'s own CIDR {own}",
                    d.key, vpc.id
                ));
            }
            for other in all_vpcs.iter().filter(|o| o.id != vpc.id) {
                for oc in other
                    .cidrs
                    .iter()
                    .filter(|oc| vpc.cidrs.iter().any(|c| c.overlaps(oc)))
                {
                    ensure!(
                        !dest.contains(oc),
                        "specific mode: {} covers {}'s CIDR {oc}, which overlaps {}'s own",
                        d.key,
                        other.id,
                        vpc.id
                    );
                }
            }
        }
    }
    Ok(())
}

/// Static routes of `table` in one family that are not ours (not in the
/// ledger): they stay whatever we plan, and AWS counts them in the quota.
fn foreign_in_family(
    table: &RouteTableRef,
    routes: &[VpcRoute],
    ledger: &OwnershipLedger,
    ipv6: bool,
) -> usize {
    routes
        .iter()
        .filter(|r| {
            r.route.origin == RouteOrigin::Static
                && r.route.key.destination.is_ipv6() == ipv6
                && &r.route.key.table == table
                // Not ours: no entry, or an entry for another target (the
                // planner lets such a route go: it stays, and counts).
                && !ledger.get(&r.route.key).is_some_and(|e| e.recognises(&r.route.target))
        })
        .count()
}

/// The injector's rule, table by table: who serves, what each table gets,
/// what is skipped and what is refused.
fn check_injector_rule(view: &InjectorView, config: &InjectorConfig, desire: &Desire) -> Result<(), String> {
    let specific = config.inject_mode == InjectMode::Specific;
    if specific && !view.unreadable.is_empty() {
        ensure!(
            desire.desired.is_empty() && desire.complete_regions.is_empty(),
            "specific mode with an unreadable region still desired {} routes in {:?}",
            desire.desired.len(),
            desire.complete_regions
        );
        return Ok(());
    }
    let readable_scope: BTreeSet<Region> = view
        .regions
        .iter()
        .map(|r| r.region.clone())
        .filter(|r| view.scope.contains(r))
        .collect();
    ensure!(
        desire.complete_regions == readable_scope,
        "complete regions {:?}, expected the readable scope {readable_scope:?}",
        desire.complete_regions
    );
    // Every served VPC's CIDRs, mesh-wide (specific mode).
    let mesh: Vec<(&str, Cidr)> = view
        .regions
        .iter()
        .flat_map(|rv| {
            rv.vpcs
                .iter()
                .filter(|v| served_by(rv, &v.id).is_some())
                .flat_map(|v| v.cidrs.iter().map(|c| (v.id.as_str(), *c)))
        })
        .collect();
    let mut got: BTreeMap<RouteTableRef, BTreeMap<Cidr, RouteTarget>> = BTreeMap::new();
    for d in &desire.desired {
        let slot = got.entry(d.key.table.clone()).or_default();
        if let Some(previous) = slot.insert(d.key.destination, d.target.clone()) {
            ensure!(previous == d.target, "{} desired with two targets", d.key);
        }
    }
    let mut refused = BTreeSet::new();
    for rv in &view.regions {
        for t in &rv.tables {
            let tref = table_ref(&rv.region, TableKind::Vpc, &t.id);
            let want = got.remove(&tref).unwrap_or_default();
            let vpc = rv.vpcs.iter().find(|v| v.id == t.vpc_id).unwrap();
            let served = served_by(rv, &vpc.id);
            if !view.scope.contains(&rv.region) {
                ensure!(want.is_empty(), "{tref} is outside the scope but gets routes");
                continue;
            }
            let Some(tgw) = served else {
                ensure!(
                    want.is_empty(),
                    "{tref}: {} is attached to no member TGW (tag {TAG_MESH}={MESH}) yet gets {want:?}",
                    vpc.id
                );
                continue;
            };
            let target = RouteTarget::TransitGateway(tgw.to_owned());
            ensure!(
                want.values().all(|t| t == &target),
                "{tref}: routes must go to the lowest-id member TGW {tgw}: {want:?}"
            );
            if t.ignored() {
                ensure!(
                    want.is_empty(),
                    "{tref} is tagged {TAG_IGNORE}=true yet gets {want:?}"
                );
                ensure!(
                    desire
                        .skipped
                        .iter()
                        .any(|s| s.resource == t.id && s.destination.is_none()),
                    "{tref} is tagged {TAG_IGNORE}=true but not reported skipped"
                );
                continue;
            }
            let has_v6 = vpc.cidrs.iter().any(Cidr::is_ipv6);
            let got_set: BTreeSet<Cidr> = want.keys().copied().collect();
            if !specific {
                let expected: BTreeSet<Cidr> = config
                    .prefixes
                    .iter()
                    .filter(|p| p.is_ipv4() || has_v6)
                    .filter(|p| !vpc.cidrs.iter().any(|c| c.contains(p)))
                    .copied()
                    .collect();
                ensure!(
                    got_set == expected,
                    "{tref} ({:?}): got {got_set:?}, expected every mesh prefix of its families not inside its own CIDR: {expected:?}",
                    vpc.cidrs
                );
                for p in config
                    .prefixes
                    .iter()
                    .filter(|p| (p.is_ipv4() || has_v6) && vpc.cidrs.iter().any(|c| c.contains(p)))
                {
                    ensure!(
                        desire
                            .skipped
                            .iter()
                            .any(|s| s.resource == t.id && s.destination.as_deref() == Some(&p.to_string())),
                        "{tref}: {p} inside the own CIDR is not reported skipped"
                    );
                }
                continue;
            }
            let cover: Vec<Cidr> = mesh
                .iter()
                .filter(|(v, c)| *v != vpc.id && (c.is_ipv4() || has_v6))
                .filter(|(_, c)| !vpc.cidrs.iter().any(|o| o.overlaps(c)))
                .map(|(_, c)| *c)
                .collect();
            if desire.frozen_tables.contains(&tref) {
                refused.insert(tref.clone());
                ensure!(want.is_empty(), "{tref} is refused yet gets {want:?}");
                let marker = format!("LBGP_ROUTE_QUOTA={}", config.route_quota);
                ensure!(
                    desire
                        .errors
                        .iter()
                        .any(|e| e.resource.as_deref() == Some(&t.id) && e.error.contains(&marker)),
                    "{tref} is frozen without an error naming {marker}: {:?}",
                    desire.errors
                );
                continue;
            }
            for ipv6 in [false, true] {
                let got_f = got_set.iter().filter(|c| c.is_ipv6() == ipv6).count();
                ensure!(
                    got_f <= config.route_quota,
                    "{tref}: {got_f} routes exceed LBGP_ROUTE_QUOTA={}",
                    config.route_quota
                );
            }
            for c in &cover {
                ensure!(
                    got_set.iter().any(|p| p.contains(c)),
                    "{tref}: another VPC's {c} is not covered by {got_set:?}"
                );
            }
        }
    }
    ensure!(
        got.is_empty(),
        "routes desired in tables not in the view: {got:?}"
    );
    ensure!(
        desire.frozen_tables == refused,
        "frozen tables {:?}, expected only the refused {refused:?}",
        desire.frozen_tables
    );
    Ok(())
}

/// Specific mode and `LBGP_ROUTE_QUOTA`, table by table: once the plan is
/// applied no table holds more static routes per family than the quota
/// (AWS would refuse them); the lossless aggregate is installed as it is
/// whenever it fits beside the routes that are not ours; a table is refused
/// only when it does not.
fn check_injector_quota(
    view: &InjectorView,
    config: &InjectorConfig,
    ledger: &OwnershipLedger,
    desire: &Desire,
) -> Result<(), String> {
    if config.inject_mode != InjectMode::Specific || !view.unreadable.is_empty() {
        return Ok(());
    }
    let quota = config.route_quota;
    // As the function plans: tables the plan would put over the quota are
    // refused whole.
    let mut desire = desire.clone();
    let plan = inject::plan(&mut desire, ledger, config);
    let desire = &desire;
    let (after, _) = simulate_apply(&desire.actual, ledger, &plan);
    let mut statics: BTreeMap<(RouteTableRef, bool), usize> = BTreeMap::new();
    for r in after.iter().filter(|r| r.origin == RouteOrigin::Static) {
        *statics
            .entry((r.key.table.clone(), r.key.destination.is_ipv6()))
            .or_default() += 1;
    }
    for ((table, ipv6), n) in &statics {
        ensure!(
            *n <= quota,
            "{table}: the plan leaves {n} static {} routes, above LBGP_ROUTE_QUOTA={quota}:\n{plan:#?}",
            if *ipv6 { "IPv6" } else { "IPv4" }
        );
    }
    let mesh: Vec<(&str, Cidr)> = view
        .regions
        .iter()
        .flat_map(|rv| {
            rv.vpcs
                .iter()
                .filter(|v| served_by(rv, &v.id).is_some())
                .flat_map(|v| v.cidrs.iter().map(|c| (v.id.as_str(), *c)))
        })
        .collect();
    for rv in view.regions.iter().filter(|rv| view.scope.contains(&rv.region)) {
        for t in rv.tables.iter().filter(|t| !t.ignored()) {
            let vpc = rv.vpcs.iter().find(|v| v.id == t.vpc_id).unwrap();
            if served_by(rv, &vpc.id).is_none() {
                continue;
            }
            let tref = table_ref(&rv.region, TableKind::Vpc, &t.id);
            let has_v6 = vpc.cidrs.iter().any(Cidr::is_ipv6);
            let cover: Vec<Cidr> = mesh
                .iter()
                .filter(|(v, c)| *v != vpc.id && (c.is_ipv4() || has_v6))
                .filter(|(_, c)| !vpc.cidrs.iter().any(|o| o.overlaps(c)))
                .map(|(_, c)| *c)
                .collect();
            let fits: Vec<(bool, Vec<Cidr>, bool)> = [false, true]
                .into_iter()
                .map(|ipv6| {
                    let wanted: Vec<Cidr> = aggregate(&cover)
                        .into_iter()
                        .filter(|c| c.is_ipv6() == ipv6)
                        .collect();
                    let foreign = foreign_in_family(&tref, &t.routes, ledger, ipv6);
                    let fits = wanted.is_empty() || wanted.len() + foreign <= quota;
                    (ipv6, wanted, fits)
                })
                .collect();
            if desire.frozen_tables.contains(&tref) {
                ensure!(
                    fits.iter().any(|(_, _, fits)| !fits),
                    "{tref} was refused although its aggregated prefixes fit LBGP_ROUTE_QUOTA={quota} beside the routes that are not ours: {fits:?}\n{:?}",
                    desire.errors
                );
                continue;
            }
            for (ipv6, wanted, fits) in &fits {
                let got: Vec<Cidr> = sorted(
                    &desire
                        .desired
                        .iter()
                        .filter(|d| d.key.table == tref && d.key.destination.is_ipv6() == *ipv6)
                        .map(|d| d.key.destination)
                        .collect::<Vec<_>>(),
                );
                if *fits {
                    ensure!(
                        &got == wanted,
                        "{tref}: the aggregate {wanted:?} fits LBGP_ROUTE_QUOTA={quota} beside the routes that are not ours, yet the table gets {got:?}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Apply the plan as AWS would, read again, plan again: nothing to do.
fn injector_converges(case: &InjCase) -> Result<(), String> {
    let desire = inject::desire(case.view.clone(), &case.ledger, &case.config);
    let first = desire.plan(&case.ledger);
    let (routes, ledger) = simulate_apply(&desire.actual, &case.ledger, &first);
    let mut by_table: BTreeMap<RouteTableRef, Vec<Route>> = BTreeMap::new();
    for r in routes {
        by_table.entry(r.key.table.clone()).or_default().push(r);
    }
    let mut after = case.view.clone();
    for rv in &mut after.regions {
        if !desire.complete_regions.contains(&rv.region) {
            continue;
        }
        for t in &mut rv.tables {
            let tref = table_ref(&rv.region, TableKind::Vpc, &t.id);
            t.routes = by_table
                .remove(&tref)
                .unwrap_or_default()
                .into_iter()
                .map(vpc_route)
                .collect();
        }
    }
    let again = inject::desire(after, &ledger, &case.config);
    let second = again.plan(&ledger);
    ensure!(
        second.changes.is_empty() && second.ledger_fixes.is_empty(),
        "not converged after applying\n{first:#?}\nsecond plan:\n{second:#?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Injector: unit tests
// ---------------------------------------------------------------------------

fn one_region_view(rv: inject::RegionView) -> InjectorView {
    InjectorView {
        scope: vec![rv.region.clone()],
        regions: vec![rv],
        unreadable: Vec::new(),
        ..InjectorView::default()
    }
}

#[test]
fn aggregate_mode_never_installs_a_prefix_equal_to_or_inside_a_vpc_cidr() {
    let rv = hand_region(
        "eu-west-1",
        &[("tgw-0aa00000000000001", Some(MESH))],
        &[HandVpc {
            id: "vpc-0aa0000000000001",
            cidrs: &["10.1.0.0/16", "10.2.0.0/16"],
            tgws: &["tgw-0aa00000000000001"],
            tables: &[("rtb-0aa0000000000001", false)],
        }],
    );
    let config = injector_config(
        &[region("eu-west-1")],
        &[(
            "LBGP_PREFIXES",
            "10.0.0.0/8,10.1.0.0/16,10.1.128.0/17,10.2.3.0/24,172.16.0.0/12",
        )],
    );
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &OwnershipLedger::new(), &config);
    let tgw = "tgw-0aa00000000000001".to_owned();
    assert_eq!(
        desired_by_table(&desire)["rtb-0aa0000000000001"],
        vec![
            ("10.0.0.0/8".to_owned(), tgw.clone()),
            ("172.16.0.0/12".to_owned(), tgw)
        ]
    );
    let skipped: Vec<&str> = desire
        .skipped
        .iter()
        .filter_map(|s| s.destination.as_deref())
        .collect();
    assert_eq!(skipped, vec!["10.1.0.0/16", "10.1.128.0/17", "10.2.3.0/24"]);
    check_no_hijack(&view, &config, &desire).unwrap();
    check_injector_rule(&view, &config, &desire).unwrap();
}

#[test]
fn ipv6_prefixes_go_only_to_vpcs_with_an_ipv6_block() {
    let rv = hand_region(
        "eu-west-1",
        &[("tgw-0aa00000000000001", Some(MESH))],
        &[
            HandVpc {
                id: "vpc-0aa0000000000001",
                cidrs: &["10.1.0.0/16", "2600:1f18:0:100::/56"],
                tgws: &["tgw-0aa00000000000001"],
                tables: &[("rtb-0aa0000000000001", false)],
            },
            HandVpc {
                id: "vpc-0aa0000000000002",
                cidrs: &["10.2.0.0/16"],
                tgws: &["tgw-0aa00000000000001"],
                tables: &[("rtb-0aa0000000000002", false)],
            },
        ],
    );
    let config = injector_config(
        &[region("eu-west-1")],
        &[(
            "LBGP_PREFIXES",
            "10.0.0.0/8,fd00::/8,2600:1f18::/32,2600:1f18:0:110::/60",
        )],
    );
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &OwnershipLedger::new(), &config);
    let by_table = desired_by_table(&desire);
    let dests = |t: &str| by_table[t].iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>();
    // The /60 sits inside the VPC's /56: skipped; the /32 covers it: fine.
    assert_eq!(
        dests("rtb-0aa0000000000001"),
        vec!["10.0.0.0/8", "2600:1f18::/32", "fd00::/8"]
    );
    assert_eq!(dests("rtb-0aa0000000000002"), vec!["10.0.0.0/8"]);
    check_no_hijack(&view, &config, &desire).unwrap();
    check_injector_rule(&view, &config, &desire).unwrap();
}

#[test]
fn an_ignored_table_gets_nothing_is_reported_skipped_and_loses_our_routes() {
    let tgw = "tgw-0aa00000000000001";
    let mut rv = hand_region(
        "eu-west-1",
        &[(tgw, Some(MESH))],
        &[HandVpc {
            id: "vpc-0aa0000000000001",
            cidrs: &["10.1.0.0/16"],
            tgws: &[tgw],
            tables: &[("rtb-0aa0000000000001", false), ("rtb-0aa0000000000002", true)],
        }],
    );
    // The tag value is case-insensitive.
    rv.tables[1].tags = tags(&[(TAG_IGNORE, "True")]);
    // Our route from before the table was tagged, and a foreign one.
    let r = region("eu-west-1");
    let ignored = table_ref(&r, TableKind::Vpc, "rtb-0aa0000000000002");
    let ours = route(
        &ignored,
        cidr("10.0.0.0/8"),
        RouteTarget::TransitGateway(tgw.to_owned()),
        RouteOrigin::Static,
    );
    let foreign = route(
        &ignored,
        cidr("192.168.0.0/16"),
        RouteTarget::TransitGateway(tgw.to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, "rtb-0aa0000000000002", &ours);
    add_vpc_route(&mut rv, "rtb-0aa0000000000002", &foreign);
    let ledger: OwnershipLedger = [owned(&ours)].into_iter().collect();
    let config = injector_config(std::slice::from_ref(&r), &[]);
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &ledger, &config);
    let by_table = desired_by_table(&desire);
    assert_eq!(by_table["rtb-0aa0000000000001"].len(), 3);
    assert!(!by_table.contains_key("rtb-0aa0000000000002"), "{by_table:?}");
    assert!(
        desire
            .skipped
            .iter()
            .any(|s| s.resource == "rtb-0aa0000000000002" && s.reason.contains(TAG_IGNORE)),
        "{:?}",
        desire.skipped
    );
    let plan = desire.plan(&ledger);
    let in_ignored: Vec<_> = plan.changes.iter().filter(|c| c.key.table == ignored).collect();
    assert_eq!(in_ignored.len(), 1, "{plan:#?}");
    assert_eq!(in_ignored[0].key, ours.key);
    assert_eq!(in_ignored[0].op, lbgp_core::ChangeOp::Delete);
    check_injector_rule(&view, &config, &desire).unwrap();
}

#[test]
fn a_vpc_attached_to_two_member_tgws_is_served_by_the_lowest_id() {
    let r = region("eu-west-1");
    // Listed highest first; the lowest id of all has no mesh tag.
    let rv = hand_region(
        r.as_str(),
        &[
            ("tgw-0bb00000000000002", Some(MESH)),
            ("tgw-0aa00000000000003", Some(MESH)),
            ("tgw-00000000000000004", None),
        ],
        &[HandVpc {
            id: "vpc-0aa0000000000001",
            cidrs: &["10.1.0.0/16"],
            tgws: &[
                "tgw-0bb00000000000002",
                "tgw-00000000000000004",
                "tgw-0aa00000000000003",
            ],
            tables: &[("rtb-0aa0000000000001", false)],
        }],
    );
    let config = injector_config(&[r], &[]);
    for seed in 0..8 {
        let view = shuffle_injector_view(one_region_view(rv.clone()), seed);
        let desire = inject::desire(view, &OwnershipLedger::new(), &config);
        assert_eq!(desire.desired.len(), 3);
        assert!(
            desire
                .desired
                .iter()
                .all(|d| d.target == RouteTarget::TransitGateway("tgw-0aa00000000000003".to_owned())),
            "seed {seed}: {:?}",
            desire.desired
        );
    }
}

#[test]
fn a_tgw_without_the_mesh_tag_serves_nothing() {
    let r = region("eu-west-1");
    let mut rv = hand_region(
        r.as_str(),
        &[
            ("tgw-0aa00000000000001", None),
            ("tgw-0aa00000000000002", Some("staging")),
        ],
        &[
            HandVpc {
                id: "vpc-0aa0000000000001",
                cidrs: &["10.1.0.0/16"],
                tgws: &["tgw-0aa00000000000001"],
                tables: &[("rtb-0aa0000000000001", false)],
            },
            HandVpc {
                id: "vpc-0aa0000000000002",
                cidrs: &["10.2.0.0/16"],
                tgws: &["tgw-0aa00000000000002"],
                tables: &[("rtb-0aa0000000000002", false)],
            },
        ],
    );
    // Our route from when the first TGW was a member: withdrawn.
    let ours = route(
        &table_ref(&r, TableKind::Vpc, "rtb-0aa0000000000001"),
        cidr("10.0.0.0/8"),
        RouteTarget::TransitGateway("tgw-0aa00000000000001".to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, "rtb-0aa0000000000001", &ours);
    let ledger: OwnershipLedger = [owned(&ours)].into_iter().collect();
    let config = injector_config(&[r], &[]);
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &ledger, &config);
    assert!(desire.desired.is_empty(), "{:?}", desire.desired);
    let plan = desire.plan(&ledger);
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    assert_eq!(plan.changes[0].op, lbgp_core::ChangeOp::Delete);
    assert_eq!(plan.changes[0].key, ours.key);
    check_injector_rule(&view, &config, &desire).unwrap();
}

/// P 10.0/16, Q 10.2/16, R 10.8/16 and S 10.8.64.0/20 (overlapping R), all
/// attached to one member TGW in specific mode.
fn specific_region() -> inject::RegionView {
    let tgw = "tgw-0aa00000000000001";
    hand_region(
        "eu-west-1",
        &[(tgw, Some(MESH))],
        &[
            HandVpc {
                id: "vpc-0aa000000000000p",
                cidrs: &["10.0.0.0/16"],
                tgws: &[tgw],
                tables: &[("rtb-0aa000000000000p", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000q",
                cidrs: &["10.2.0.0/16"],
                tgws: &[tgw],
                tables: &[("rtb-0aa000000000000q", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000r",
                cidrs: &["10.8.0.0/16"],
                tgws: &[tgw],
                tables: &[("rtb-0aa000000000000r", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000s",
                cidrs: &["10.8.64.0/20"],
                tgws: &[tgw],
                tables: &[("rtb-0aa000000000000s", false)],
            },
        ],
    )
}

#[test]
fn specific_mode_skips_overlapping_cidrs_and_aggregates_within_the_quota() {
    let r = region("eu-west-1");
    let config = injector_config(
        &[r],
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "2")],
    );
    let view = one_region_view(specific_region());
    let desire = inject::desire(view.clone(), &OwnershipLedger::new(), &config);
    let by_table = desired_by_table(&desire);
    let dests = |t: &str| by_table[t].iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>();
    assert_eq!(dests("rtb-0aa000000000000p"), vec!["10.2.0.0/16", "10.8.0.0/16"]);
    assert_eq!(dests("rtb-0aa000000000000q"), vec!["10.0.0.0/16", "10.8.0.0/16"]);
    // R and S overlap: neither gets the other's CIDR, and it is reported.
    assert_eq!(dests("rtb-0aa000000000000r"), vec!["10.0.0.0/16", "10.2.0.0/16"]);
    assert_eq!(dests("rtb-0aa000000000000s"), vec!["10.0.0.0/16", "10.2.0.0/16"]);
    assert!(desire.skipped.iter().any(|s| s.resource == "rtb-0aa000000000000r"
        && s.destination.as_deref() == Some("10.8.64.0/20")));
    assert!(desire.errors.is_empty(), "{:?}", desire.errors);
    check_no_hijack(&view, &config, &desire).unwrap();
    check_injector_rule(&view, &config, &desire).unwrap();
    check_injector_quota(&view, &config, &OwnershipLedger::new(), &desire).unwrap();
}

#[test]
fn specific_mode_summarises_to_the_quota_or_refuses_the_table() {
    let r = region("eu-west-1");
    let config = injector_config(
        std::slice::from_ref(&r),
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "1")],
    );
    let mut rv = specific_region();
    // Our stale route in P's table: a refused table keeps it.
    let p = table_ref(&r, TableKind::Vpc, "rtb-0aa000000000000p");
    let stale = route(
        &p,
        cidr("10.9.0.0/16"),
        RouteTarget::TransitGateway("tgw-0aa00000000000001".to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, &p.id, &stale);
    let ledger: OwnershipLedger = [owned(&stale)].into_iter().collect();
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &ledger, &config);
    let by_table = desired_by_table(&desire);
    // R and S: 10.0/16 and 10.2/16 summarised to one /14 that stays clear of 10.8/16.
    for t in ["rtb-0aa000000000000r", "rtb-0aa000000000000s"] {
        assert_eq!(
            by_table[t],
            vec![("10.0.0.0/14".to_owned(), "tgw-0aa00000000000001".to_owned())]
        );
    }
    // P and Q: any single prefix covering the others covers their own: refused.
    for t in ["rtb-0aa000000000000p", "rtb-0aa000000000000q"] {
        assert!(!by_table.contains_key(t));
        assert!(desire.frozen_tables.contains(&table_ref(&r, TableKind::Vpc, t)));
        assert!(
            desire
                .errors
                .iter()
                .any(|e| e.resource.as_deref() == Some(t) && e.error.contains("LBGP_ROUTE_QUOTA=1")),
            "{:?}",
            desire.errors
        );
    }
    let plan = desire.plan(&ledger);
    assert!(plan.changes.iter().all(|c| c.key.table != p), "{plan:#?}");
    assert_eq!(plan.changes.len(), 2, "{plan:#?}");
    check_no_hijack(&view, &config, &desire).unwrap();
    check_injector_rule(&view, &config, &desire).unwrap();
    check_injector_quota(&view, &config, &ledger, &desire).unwrap();
}

#[test]
fn specific_mode_with_an_unreadable_region_desires_and_plans_nothing() {
    let eu = region("eu-west-1");
    let us = region("us-east-1");
    let mut rv = specific_region();
    // Our routes toward the other region's VPCs: deleted on a partial read
    // if the rule planned at all.
    let p = table_ref(&eu, TableKind::Vpc, "rtb-0aa000000000000p");
    let ours = route(
        &p,
        cidr("10.20.0.0/16"),
        RouteTarget::TransitGateway("tgw-0aa00000000000001".to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, &p.id, &ours);
    let ledger: OwnershipLedger = [owned(&ours)].into_iter().collect();
    let view = InjectorView {
        scope: vec![eu.clone()],
        regions: vec![rv],
        unreadable: vec![unreadable(&us)],
        ..InjectorView::default()
    };
    let specific = injector_config(&[eu.clone(), us.clone()], &[("LBGP_INJECT_MODE", "specific")]);
    let desire = inject::desire(view.clone(), &ledger, &specific);
    assert!(desire.desired.is_empty(), "{:?}", desire.desired);
    assert!(desire.complete_regions.is_empty());
    assert_eq!(desire.errors.len(), 1);
    assert_eq!(desire.plan(&ledger), Plan::default());
    // The same read in aggregate mode plans the readable region: the
    // emptiness above is the rule, not an empty view.
    let aggregate = injector_config(&[eu, us], &[]);
    let desire = inject::desire(view, &ledger, &aggregate);
    assert!(!desire.plan(&ledger).changes.is_empty());
}

#[test]
fn specific_mode_converges_after_a_vpc_moves_to_another_member_tgw() {
    // C (10.3/16) was served by member TGW X and is now attached to Y only;
    // our old route toward X (10.9/16, no longer desired) is still there.
    let x = "tgw-0aa00000000000001";
    let y = "tgw-0bb00000000000002";
    let r = region("eu-west-1");
    let mut rv = hand_region(
        r.as_str(),
        &[(x, Some(MESH)), (y, Some(MESH))],
        &[
            HandVpc {
                id: "vpc-0aa000000000000a",
                cidrs: &["10.0.0.0/16"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000a", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000b",
                cidrs: &["10.1.0.0/20"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000b", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000c",
                cidrs: &["10.3.0.0/16"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000c", false)],
            },
        ],
    );
    let c = table_ref(&r, TableKind::Vpc, "rtb-0aa000000000000c");
    let old = route(
        &c,
        cidr("10.9.0.0/16"),
        RouteTarget::TransitGateway(x.to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, &c.id, &old);
    let case = InjCase {
        config: injector_config(
            &[r],
            &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "2")],
        ),
        view: one_region_view(rv),
        ledger: [owned(&old)].into_iter().collect(),
    };
    // C's table should carry 10.0/16 and 10.1.0/20 (two routes, the quota)
    // and lose our old route, in one run: a second run has nothing to do.
    injector_converges(&case).unwrap();
}

#[test]
fn specific_mode_leaves_room_for_a_foreign_route_toward_the_serving_tgw() {
    // An operator's default route toward the TGW (central egress) counts in
    // AWS's quota like any other: with quota 2 the table has room for one
    // route of ours, and 10.0.0.0/15 covers A and B without covering C.
    let y = "tgw-0bb00000000000002";
    let r = region("eu-west-1");
    let mut rv = hand_region(
        r.as_str(),
        &[(y, Some(MESH))],
        &[
            HandVpc {
                id: "vpc-0aa000000000000a",
                cidrs: &["10.0.0.0/16"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000a", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000b",
                cidrs: &["10.1.0.0/20"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000b", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000c",
                cidrs: &["10.3.0.0/16"],
                tgws: &[y],
                tables: &[("rtb-0aa000000000000c", false)],
            },
        ],
    );
    let c = table_ref(&r, TableKind::Vpc, "rtb-0aa000000000000c");
    let egress = route(
        &c,
        cidr("0.0.0.0/0"),
        RouteTarget::TransitGateway(y.to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, &c.id, &egress);
    let config = injector_config(
        std::slice::from_ref(&r),
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "2")],
    );
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &OwnershipLedger::new(), &config);
    check_injector_quota(&view, &config, &OwnershipLedger::new(), &desire).unwrap();
    assert_eq!(
        desired_by_table(&desire)[c.id.as_str()],
        vec![("10.0.0.0/15".to_owned(), y.to_owned())]
    );
}

#[test]
fn specific_mode_lets_go_of_a_repointed_route_its_summary_lands_on() {
    // A's table holds 10.5.0.0/16 toward the serving TGW at a key our ledger
    // records toward another TGW: someone re-pointed our route. Counted as
    // theirs, it leaves room for two routes, and the summary of B, C and D
    // lands on 10.5.0.0/16 itself. Claiming it back would free its room and
    // undo the summary next run; the rules let it go instead (dropped from
    // the ledger, satisfied by what is there), and a second run plans
    // nothing.
    let y = "tgw-0bb00000000000002";
    let r = region("eu-west-1");
    let tgws: &[&str] = &[y];
    let mut rv = hand_region(
        r.as_str(),
        &[(y, Some(MESH))],
        &[
            HandVpc {
                id: "vpc-0aa000000000000a",
                cidrs: &["10.2.0.0/16"],
                tgws,
                tables: &[("rtb-0aa000000000000a", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000b",
                cidrs: &["10.0.0.0/16"],
                tgws,
                tables: &[("rtb-0aa000000000000b", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000c",
                cidrs: &["10.5.0.0/20"],
                tgws,
                tables: &[("rtb-0aa000000000000c", false)],
            },
            HandVpc {
                id: "vpc-0aa000000000000d",
                cidrs: &["10.5.128.0/20"],
                tgws,
                tables: &[("rtb-0aa000000000000d", false)],
            },
        ],
    );
    let a = table_ref(&r, TableKind::Vpc, "rtb-0aa000000000000a");
    let repointed = route(
        &a,
        cidr("10.5.0.0/16"),
        RouteTarget::TransitGateway(y.to_owned()),
        RouteOrigin::Static,
    );
    add_vpc_route(&mut rv, &a.id, &repointed);
    let mut ledger = OwnershipLedger::new();
    ledger.insert(LedgerEntry::new(
        repointed.key.clone(),
        RouteTarget::TransitGateway("tgw-0ffffffffffffffff".to_owned()),
        LedgerStatus::Owned,
    ));
    let config = injector_config(
        std::slice::from_ref(&r),
        &[
            ("LBGP_INJECT_MODE", "specific"),
            ("LBGP_PREFIXES", "10.0.0.0/8"),
            ("LBGP_ROUTE_QUOTA", "3"),
        ],
    );
    let view = one_region_view(rv);
    let desire = inject::desire(view.clone(), &ledger, &config);
    assert_eq!(
        desired_by_table(&desire)[a.id.as_str()],
        vec![
            ("10.0.0.0/16".to_owned(), y.to_owned()),
            ("10.5.0.0/16".to_owned(), y.to_owned())
        ]
    );
    let plan = desire.plan(&ledger);
    assert_eq!(plan.satisfied_by_foreign, vec![repointed.key.clone()]);
    assert!(plan.ledger_fixes.contains(&LedgerFix::Drop {
        key: repointed.key.clone(),
        why: DropReason::TakenOver,
    }));
    injector_converges(&InjCase { config, view, ledger }).unwrap();
}

// ---------------------------------------------------------------------------
// Injector: properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(160))]

    /// No installed prefix equals or sits inside the VPC's own CIDRs, in
    /// aggregate and specific mode, and IPv6 goes only to IPv6 VPCs.
    #[test]
    fn injector_never_hijacks_a_vpcs_own_cidr(spec in inj_spec()) {
        let case = build_injector(&spec);
        let desire = inject::desire(case.view.clone(), &case.ledger, &case.config);
        check_no_hijack(&case.view, &case.config, &desire).map_err(TestCaseError::fail)?;
    }

    /// Table by table: served by the lowest-id member TGW, nothing from an
    /// untagged one, ignored tables skipped, aggregate mode's exact prefix
    /// set, specific mode's cover within the quota or a refusal, and an
    /// unreadable region in specific mode stopping everything.
    #[test]
    fn injector_desires_what_the_rule_says(spec in inj_spec()) {
        let case = build_injector(&spec);
        let desire = inject::desire(case.view.clone(), &case.ledger, &case.config);
        check_injector_rule(&case.view, &case.config, &desire).map_err(TestCaseError::fail)?;
        // Nothing outside the complete regions and the unfrozen tables is planned.
        let plan = desire.plan(&case.ledger);
        for c in &plan.changes {
            prop_assert!(desire.in_scope(&c.key.table), "{} planned out of scope", c.key);
        }
        if case.config.inject_mode == InjectMode::Specific && !case.view.unreadable.is_empty() {
            prop_assert_eq!(plan, Plan::default());
        }
    }

    /// Specific mode respects `LBGP_ROUTE_QUOTA` (AWS's routes per table,
    /// routes that are not ours included) or refuses the table with an
    /// error, and refuses or summarises only when the aggregate does not fit.
    #[test]
    fn injector_specific_mode_respects_the_quota_or_refuses(spec in inj_spec()) {
        let case = build_injector(&spec);
        let desire = inject::desire(case.view.clone(), &case.ledger, &case.config);
        check_injector_quota(&case.view, &case.config, &case.ledger, &desire).map_err(TestCaseError::fail)?;
    }

    /// Any order of every list in the view gives the same plan, desired set
    /// and reports; applying the plan and planning again changes nothing.
    #[test]
    fn injector_plan_ignores_input_order_and_converges(spec in inj_spec(), seed in any::<u64>()) {
        let case = build_injector(&spec);
        let a = inject::desire(case.view.clone(), &case.ledger, &case.config);
        let b = inject::desire(shuffle_injector_view(case.view.clone(), seed), &case.ledger, &case.config);
        let (pa, pb) = (a.plan(&case.ledger), b.plan(&case.ledger));
        same_outcome(&a, &pa, &b, &pb).map_err(TestCaseError::fail)?;
        injector_converges(&case).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------
// Propagator: views, generators and checkers
// ---------------------------------------------------------------------------

const MESH_REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];

fn tgw_route(
    table: &RouteTableRef,
    destination: Cidr,
    via: Option<(&str, AttachmentResource)>,
    origin: RouteOrigin,
) -> TgwRoute {
    let mut r = route(
        table,
        destination,
        via.as_ref().map_or(RouteTarget::Blackhole, |(id, _)| {
            RouteTarget::TransitGatewayAttachment((*id).to_owned())
        }),
        origin,
    );
    if via.is_none() {
        r.state = RouteState::Blackhole;
    }
    TgwRoute {
        route: r,
        attachments: via
            .into_iter()
            .map(|(id, resource_type)| TgwRouteAttachment {
                attachment_id: id.to_owned(),
                resource_type,
            })
            .collect(),
    }
}

/// A hand-made mesh region: one member TGW with its default association
/// table, its VPCs (propagated into the table).
fn hand_site(name: &str, tgw_id: &str, table: &str, vpcs: &[(&str, &[&str])]) -> propagate::RegionView {
    let r = region(name);
    let tref = table_ref(&r, TableKind::TransitGateway, table);
    let mut view = propagate::RegionView {
        region: r.clone(),
        transit_gateways: vec![tgw(tgw_id, &r, Some(MESH), Some(table))],
        attachments: Vec::new(),
        vpcs: Vec::new(),
        route_tables: vec![TgwRouteTable {
            id: table.to_owned(),
            transit_gateway_id: tgw_id.to_owned(),
            default_association: true,
            tags: BTreeMap::new(),
        }],
        routes: Vec::new(),
        peerings: Vec::new(),
    };
    for (vpc_id, cidrs) in vpcs {
        let vpc = Vpc {
            id: (*vpc_id).to_owned(),
            cidrs: cidrs.iter().map(|c| cidr(c)).collect(),
        };
        let attachment = format!("tgw-attach-0{}", &vpc_id[5..]);
        view.attachments.push(vpc_attachment(&attachment, tgw_id, &vpc));
        for c in &vpc.cidrs {
            view.routes.push(tgw_route(
                &tref,
                *c,
                Some((&attachment, AttachmentResource::Vpc)),
                RouteOrigin::Propagated,
            ));
        }
        view.vpcs.push(vpc);
    }
    view
}

/// Peers `a` and `b` (tgw ids) with attachment `id`, visible in both regions.
fn hand_peer(views: &mut [propagate::RegionView], id: &str, a: &str, b: &str) {
    let end = |views: &[propagate::RegionView], tgw: &str| PeeringEnd {
        transit_gateway_id: tgw.to_owned(),
        region: views
            .iter()
            .find(|v| v.transit_gateways.iter().any(|t| t.id == tgw))
            .map(|v| v.region.clone()),
    };
    let (requester, accepter) = (end(views, a), end(views, b));
    for v in views.iter_mut() {
        // This side: its TGW's default association table.
        let side = v
            .transit_gateways
            .iter()
            .find(|t| t.id == a || t.id == b)
            .and_then(|t| t.default_association_route_table.clone());
        if side.is_some() {
            v.peerings.push(PeeringAttachment {
                id: id.to_owned(),
                region: v.region.clone(),
                requester: requester.clone(),
                accepter: accepter.clone(),
                state: AttachmentState::Available,
                route_table: side,
            });
        }
    }
}

#[derive(Debug, Clone)]
struct MeshTgwSpec {
    mesh: Option<&'static str>,
    idnum: u8,
    /// 0: the default association table only; 1: plus an untagged table;
    /// 2: plus a table tagged `lbgp:mesh` (which then is the only target).
    extra_table: u8,
    /// Its VPCs, each with one or two CIDRs.
    vpcs: Vec<Vec<Cidr>>,
    /// Static routes toward VPN, Connect, Direct Connect or blackhole.
    statics: Vec<(Cidr, u8)>,
    /// Routes over its peerings: (which mesh CIDR, which peering, ledger
    /// flag: 0 foreign, 1 ours, 2 our pending intent, 3 ours recorded with
    /// another peering, 4 ours but gone from the table).
    learned: Vec<(usize, usize, u8)>,
}

#[derive(Debug, Clone)]
struct MeshRegionSpec {
    tgws: Vec<MeshTgwSpec>,
    unreadable: bool,
}

#[derive(Debug, Clone)]
struct MeshSpec {
    regions: Vec<MeshRegionSpec>,
    full_mesh: bool,
    links: Vec<bool>,
    summarize: bool,
}

#[derive(Debug, Clone)]
struct MeshCase {
    config: PropagatorConfig,
    view: MeshView,
    ledger: OwnershipLedger,
}

/// Prefixes TGWs originate: /16s, their /17 halves (siblings to summarise),
/// on-premises /20s and IPv6 /56s; a small space, so origins collide.
fn origin_prefix() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        5 => (0u8..12, 0u8..3).prop_map(|(a, h)| match h {
            0 => v4([10, a, 0, 0], 16),
            1 => v4([10, a, 0, 0], 17),
            _ => v4([10, a, 128, 0], 17),
        }),
        1 => (0u8..4).prop_map(|a| v4([172, 16, a * 16, 0], 20)),
        1 => (0u16..3).prop_map(|a| v6(a << 8, 56)),
    ]
}

fn mesh_spec() -> impl Strategy<Value = MeshSpec> {
    let tgw = (
        mesh_tag(),
        any::<u8>(),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::collection::vec(prop::collection::vec(origin_prefix(), 1..=2), 0..=3),
        prop::collection::vec((origin_prefix(), 0u8..4), 0..=2),
        prop::collection::vec((any::<usize>(), any::<usize>(), 0u8..5), 0..=3),
    )
        .prop_map(|(mesh, idnum, extra_table, vpcs, statics, learned)| MeshTgwSpec {
            mesh,
            idnum,
            extra_table,
            vpcs,
            statics,
            learned,
        });
    let region = (prop::collection::vec(tgw, 1..=2), prop::bool::weighted(0.1))
        .prop_map(|(tgws, unreadable)| MeshRegionSpec { tgws, unreadable });
    (
        prop::collection::vec(region, 2..=4),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 28),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(regions, full_mesh, links, summarize)| MeshSpec {
            regions,
            full_mesh,
            links,
            summarize,
        })
}

fn build_mesh(spec: &MeshSpec) -> MeshCase {
    let regions: Vec<Region> = (0..spec.regions.len()).map(|i| region(MESH_REGIONS[i])).collect();
    let config = propagator_config(
        &regions,
        &[("LBGP_SUMMARIZE", if spec.summarize { "true" } else { "false" })],
    );
    // Every TGW, mesh-wide: (region index, slot, id, spec).
    let mut gws: Vec<(usize, usize, String, &MeshTgwSpec)> = Vec::new();
    for (r, rs) in spec.regions.iter().enumerate() {
        for (n, t) in rs.tgws.iter().enumerate() {
            gws.push((r, n, format!("tgw-0{:02x}{r}{n}5e6f7a8b9c0d", t.idnum), t));
        }
    }
    // One peering per pair of TGWs at most (AWS allows no more).
    let mut peerings: Vec<(String, usize, usize)> = Vec::new();
    let mut k = 0;
    for i in 0..gws.len() {
        for j in i + 1..gws.len() {
            if spec.full_mesh || spec.links[k % spec.links.len()] {
                peerings.push((format!("tgw-attach-0{i:x}{j:x}7c8d9e0f1a2b3"), i, j));
            }
            k += 1;
        }
    }
    let default_table = |g: usize| format!("tgw-rtb-0{}{}0d1e2f3a4b5c6", gws[g].0, gws[g].1);
    let peering = |(id, i, j): &(String, usize, usize), seen_in: usize| PeeringAttachment {
        id: id.clone(),
        region: regions[seen_in].clone(),
        // This side is associated with its TGW's default table.
        route_table: Some(default_table(if gws[*i].0 == seen_in { *i } else { *j })),
        requester: PeeringEnd {
            transit_gateway_id: gws[*i].2.clone(),
            region: Some(regions[gws[*i].0].clone()),
        },
        accepter: PeeringEnd {
            transit_gateway_id: gws[*j].2.clone(),
            region: Some(regions[gws[*j].0].clone()),
        },
        state: AttachmentState::Available,
    };
    let all_cidrs: Vec<Cidr> = gws
        .iter()
        .flat_map(|g| g.3.vpcs.iter().flatten().copied())
        .collect();
    let mut ledger = OwnershipLedger::new();
    let mut view = MeshView::default();
    let readable_any = spec.regions.iter().any(|r| !r.unreadable);
    for (r, rs) in spec.regions.iter().enumerate() {
        let reg = &regions[r];
        let mut rv = propagate::RegionView {
            region: reg.clone(),
            transit_gateways: Vec::new(),
            attachments: Vec::new(),
            vpcs: Vec::new(),
            route_tables: Vec::new(),
            routes: Vec::new(),
            peerings: peerings
                .iter()
                .filter(|(_, i, j)| gws[*i].0 == r || gws[*j].0 == r)
                .map(|p| peering(p, r))
                .collect(),
        };
        for (g, (_, n, id, ts)) in gws.iter().enumerate().filter(|(_, g)| g.0 == r) {
            let default_id = default_table(g);
            rv.transit_gateways.push(tgw(id, reg, ts.mesh, Some(&default_id)));
            let mut tables = vec![TgwRouteTable {
                id: default_id,
                transit_gateway_id: id.clone(),
                default_association: true,
                tags: BTreeMap::new(),
            }];
            if ts.extra_table > 0 {
                tables.push(TgwRouteTable {
                    id: format!("tgw-rtb-0{r}{n}1d1e2f3a4b5c6"),
                    transit_gateway_id: id.clone(),
                    default_association: false,
                    tags: if ts.extra_table == 2 {
                        tags(&[(TAG_MESH, MESH)])
                    } else {
                        BTreeMap::new()
                    },
                });
            }
            let trefs: Vec<RouteTableRef> = tables
                .iter()
                .map(|t| table_ref(reg, TableKind::TransitGateway, &t.id))
                .collect();
            // Per table, one route per destination.
            let mut routes: Vec<Vec<TgwRoute>> = vec![Vec::new(); tables.len()];
            fn push(routes: &mut [Vec<TgwRoute>], t: usize, route: TgwRoute) -> bool {
                let fresh = routes[t]
                    .iter()
                    .all(|x| x.route.key.destination != route.route.key.destination);
                if fresh {
                    routes[t].push(route);
                }
                fresh
            }
            for (v, blocks) in ts.vpcs.iter().enumerate() {
                let mut cidrs: Vec<Cidr> = Vec::new();
                for c in blocks {
                    if !cidrs.iter().any(|o| o.overlaps(c)) {
                        cidrs.push(*c);
                    }
                }
                let vpc = Vpc {
                    id: format!("vpc-0{r}{n}{v}8a9b0c1d2e3f4"),
                    cidrs,
                };
                let attachment = format!("tgw-attach-0{r}{n}{v}a1a2a3a4a5a6");
                rv.attachments.push(vpc_attachment(&attachment, id, &vpc));
                for (t, tref) in trefs.iter().enumerate() {
                    for c in &vpc.cidrs {
                        push(
                            &mut routes,
                            t,
                            tgw_route(
                                tref,
                                *c,
                                Some((&attachment, AttachmentResource::Vpc)),
                                RouteOrigin::Propagated,
                            ),
                        );
                    }
                }
                rv.vpcs.push(vpc);
            }
            for (s, (dest, kind)) in ts.statics.iter().enumerate() {
                let attachment = format!("tgw-attach-0{r}{n}{s}b1b2b3b4b5b6");
                let via = match kind {
                    0 => Some((attachment.as_str(), AttachmentResource::Vpn)),
                    1 => Some((attachment.as_str(), AttachmentResource::Connect)),
                    2 => Some((attachment.as_str(), AttachmentResource::DirectConnectGateway)),
                    _ => None,
                };
                push(
                    &mut routes,
                    0,
                    tgw_route(&trefs[0], *dest, via, RouteOrigin::Static),
                );
            }
            let mine: Vec<&String> = peerings
                .iter()
                .filter(|(_, i, j)| *i == g || *j == g)
                .map(|(id, _, _)| id)
                .collect();
            for (src, which, flag) in &ts.learned {
                if mine.is_empty() || all_cidrs.is_empty() {
                    break;
                }
                let dest = all_cidrs[src % all_cidrs.len()];
                let pid = mine[which % mine.len()];
                let t = trefs.len() - 1;
                let learned = tgw_route(
                    &trefs[t],
                    dest,
                    Some((pid, AttachmentResource::Peering)),
                    RouteOrigin::Static,
                );
                let entry = |target: &str, status| {
                    LedgerEntry::new(
                        learned.route.key.clone(),
                        RouteTarget::TransitGatewayAttachment(target.to_owned()),
                        status,
                    )
                };
                if *flag == 4 {
                    if routes[t].iter().all(|x| x.route.key.destination != dest) {
                        ledger.insert(entry(pid, LedgerStatus::Owned));
                    }
                    continue;
                }
                let e = match flag {
                    1 => Some(entry(pid, LedgerStatus::Owned)),
                    2 => Some(entry(pid, LedgerStatus::Pending)),
                    3 => Some(entry(mine[(which + 1) % mine.len()], LedgerStatus::Owned)),
                    _ => None,
                };
                if push(&mut routes, t, learned)
                    && let Some(e) = e
                {
                    ledger.insert(e);
                }
            }
            rv.route_tables.extend(tables);
            rv.routes.extend(routes.into_iter().flatten());
        }
        if rs.unreadable && (readable_any || r > 0) {
            view.unreadable.push(unreadable(reg));
        } else {
            view.regions.push(rv);
        }
    }
    MeshCase { config, view, ledger }
}

/// A member TGW as the tests see it.
#[derive(Debug)]
struct Member {
    region: Region,
    targets: Vec<RouteTableRef>,
    /// What it originates itself: its VPCs' CIDRs, and its routes that are
    /// active, static or propagated, over an attachment that is not a
    /// peering, and not in our ledger.
    direct: BTreeSet<Cidr>,
    /// Tables of a member that peers with a TGW in an unreadable region.
    frozen: bool,
    /// peer TGW id → peering attachment id (available peerings, members only).
    peers: BTreeMap<String, String>,
}

#[derive(Debug)]
struct MeshModel {
    members: BTreeMap<String, Member>,
    /// prefix → the member TGWs originating it.
    origins: BTreeMap<Cidr, BTreeSet<String>>,
}

impl MeshModel {
    fn new(view: &MeshView, ledger: &OwnershipLedger) -> MeshModel {
        let unreadable: BTreeSet<&str> = view.unreadable.iter().map(|e| e.region.as_str()).collect();
        let mut members = BTreeMap::new();
        for rv in &view.regions {
            for t in rv
                .transit_gateways
                .iter()
                .filter(|t| t.in_mesh(MESH) && t.state == GatewayState::Available)
            {
                let own: Vec<&TgwRouteTable> = rv
                    .route_tables
                    .iter()
                    .filter(|x| x.transit_gateway_id == t.id)
                    .collect();
                let tagged: Vec<&TgwRouteTable> = own
                    .iter()
                    .copied()
                    .filter(|x| x.tags.get(TAG_MESH).map(String::as_str) == Some(MESH))
                    .collect();
                let targets = if tagged.is_empty() {
                    own.iter().copied().filter(|x| x.default_association).collect()
                } else {
                    tagged
                };
                let mut direct: BTreeSet<Cidr> = rv
                    .attachments
                    .iter()
                    .filter(|a| a.transit_gateway_id == t.id)
                    .filter_map(|a| rv.vpcs.iter().find(|v| v.id == a.vpc_id).map(|v| (a, v)))
                    .flat_map(|(a, v)| v.cidrs.iter().filter(|c| c.is_ipv4() || a.ipv6_support).copied())
                    .collect();
                let own_ids: BTreeSet<&str> = own.iter().map(|x| x.id.as_str()).collect();
                for r in rv
                    .routes
                    .iter()
                    .filter(|r| own_ids.contains(r.route.key.table.id.as_str()))
                {
                    let over_peering = r
                        .attachments
                        .iter()
                        .any(|a| a.resource_type == AttachmentResource::Peering);
                    if r.route.state == RouteState::Active
                        && r.route.origin != RouteOrigin::Local
                        && !r.attachments.is_empty()
                        && !over_peering
                        && ledger.get(&r.route.key).is_none()
                    {
                        direct.insert(r.route.key.destination);
                    }
                }
                let frozen = rv.peerings.iter().any(|p| {
                    p.peer_of(&t.id)
                        .and_then(|end| end.region.as_ref())
                        .is_some_and(|r| unreadable.contains(r.as_str()))
                });
                members.insert(
                    t.id.clone(),
                    Member {
                        region: rv.region.clone(),
                        targets: targets
                            .iter()
                            .map(|x| table_ref(&rv.region, TableKind::TransitGateway, &x.id))
                            .collect(),
                        direct,
                        frozen,
                        peers: BTreeMap::new(),
                    },
                );
            }
        }
        let ids: BTreeSet<String> = members.keys().cloned().collect();
        for rv in &view.regions {
            for (id, m) in members.iter_mut().filter(|(_, m)| m.region == rv.region) {
                for p in rv
                    .peerings
                    .iter()
                    .filter(|p| p.state == AttachmentState::Available)
                {
                    if let Some(end) = p.peer_of(id)
                        && ids.contains(&end.transit_gateway_id)
                        && &end.transit_gateway_id != id
                    {
                        m.peers.insert(end.transit_gateway_id.clone(), p.id.clone());
                    }
                }
            }
        }
        let mut origins: BTreeMap<Cidr, BTreeSet<String>> = BTreeMap::new();
        for (id, m) in &members {
            for p in &m.direct {
                origins.entry(*p).or_default().insert(id.clone());
            }
        }
        MeshModel { members, origins }
    }

    fn contested(&self) -> BTreeSet<Cidr> {
        self.origins
            .iter()
            .filter(|(_, o)| o.len() > 1)
            .map(|(p, _)| *p)
            .collect()
    }

    /// What `u` exports: what it originates and nobody else does.
    fn exported(&self, u: &str) -> BTreeSet<Cidr> {
        let contested = self.contested();
        self.members[u]
            .direct
            .iter()
            .filter(|p| !contested.contains(p))
            .copied()
            .collect()
    }

    /// The member whose target tables include `table`.
    fn owner_of(&self, table: &RouteTableRef) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.targets.contains(table))
            .map(|(id, _)| id.as_str())
    }

    fn frozen_tables(&self) -> BTreeSet<RouteTableRef> {
        self.members
            .values()
            .filter(|m| m.frozen)
            .flat_map(|m| m.targets.iter().cloned())
            .collect()
    }
}

/// Each desired route sits in a member's target table, targets an
/// available peering toward a member, and carries what that far end
/// originates itself (or, summarised, only addresses of it): nothing
/// learned over a peering or recorded in the ledger is exported again.
fn check_one_hop(
    view: &MeshView,
    ledger: &OwnershipLedger,
    config: &PropagatorConfig,
    desire: &Desire,
) -> Result<(), String> {
    let model = MeshModel::new(view, ledger);
    for d in &desire.desired {
        let t = model
            .owner_of(&d.key.table)
            .ok_or_else(|| format!("{} is desired in no member's target table", d.key))?;
        let RouteTarget::TransitGatewayAttachment(pid) = &d.target else {
            return Err(format!(
                "{} targets {}, not a peering attachment",
                d.key, d.target
            ));
        };
        let (u, _) = model.members[t]
            .peers
            .iter()
            .find(|(_, p)| *p == pid)
            .ok_or_else(|| {
                format!(
                    "{} targets {pid}, not an available peering of {t} to a member",
                    d.key
                )
            })?;
        let exported = model.exported(u);
        let dest = d.key.destination;
        if config.summarize {
            let list: Vec<Cidr> = exported.iter().copied().collect();
            ensure!(
                subtract(dest, &list).is_empty(),
                "{} via {pid}: {u} does not originate all of {dest} (it exports {exported:?})",
                d.key
            );
        } else {
            ensure!(
                exported.contains(&dest),
                "{} via {pid}: {u} does not originate {dest} itself (a learned prefix re-exported, or the wrong peering); it exports {exported:?}",
                d.key
            );
        }
    }
    Ok(())
}

/// Without summarising, the desired set is exactly: for every member not
/// frozen, every target table, every directly peered member and every
/// prefix that member alone originates, a route toward the peering. With
/// summarising, each table gets per peering a lossless summary of the same
/// prefixes whose aggregates cover nobody else's prefix.
fn check_desired_set(
    view: &MeshView,
    ledger: &OwnershipLedger,
    config: &PropagatorConfig,
    desire: &Desire,
) -> Result<(), String> {
    let model = MeshModel::new(view, ledger);
    let mut got: BTreeMap<(RouteTableRef, String), BTreeSet<Cidr>> = BTreeMap::new();
    for d in &desire.desired {
        got.entry((d.key.table.clone(), d.target.id().to_owned()))
            .or_default()
            .insert(d.key.destination);
    }
    let mut expected: BTreeMap<(RouteTableRef, String), BTreeSet<Cidr>> = BTreeMap::new();
    for m in model.members.values().filter(|m| !m.frozen) {
        for (u, pid) in &m.peers {
            let exported = model.exported(u);
            if exported.is_empty() {
                continue;
            }
            for table in &m.targets {
                expected.insert((table.clone(), pid.clone()), exported.clone());
            }
        }
    }
    if !config.summarize {
        ensure!(
            got == expected,
            "desired routes differ from one hop of every member's own prefixes:\ngot {got:#?}\nexpected {expected:#?}"
        );
        return Ok(());
    }
    ensure!(
        got.keys().collect::<Vec<_>>() == expected.keys().collect::<Vec<_>>(),
        "summarised: tables and peerings differ: got {:?}, expected {:?}",
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, want) in &expected {
        let have = &got[key];
        let have_list: Vec<Cidr> = have.iter().copied().collect();
        let want_list: Vec<Cidr> = want.iter().copied().collect();
        ensure!(
            aggregate(&have_list) == aggregate(&want_list),
            "{} via {}: the summary {have:?} is not lossless for {want:?}",
            key.0,
            key.1
        );
        let u = model.members[model.owner_of(&key.0).unwrap()]
            .peers
            .iter()
            .find(|(_, p)| **p == key.1)
            .map(|(u, _)| u.clone())
            .unwrap();
        for agg in have.iter().filter(|p| !want.contains(p)) {
            for (p, o) in &model.origins {
                ensure!(
                    !(agg.contains(p) && o.iter().any(|tgw| *tgw != u)),
                    "{} via {}: the summary {agg} covers {p}, which {o:?} originate",
                    key.0,
                    key.1
                );
            }
        }
    }
    Ok(())
}

/// A prefix two members originate is desired nowhere and reported once,
/// with one `held_by` entry per originating TGW.
fn check_conflicts(view: &MeshView, ledger: &OwnershipLedger, desire: &Desire) -> Result<(), String> {
    let model = MeshModel::new(view, ledger);
    let contested = model.contested();
    ensure!(
        desire.conflicts.len() == contested.len(),
        "{} conflicts reported for {} contested prefixes: {:#?}",
        desire.conflicts.len(),
        contested.len(),
        desire.conflicts
    );
    for p in &contested {
        ensure!(
            desire.desired.iter().all(|d| d.key.destination != *p),
            "contested {p} is desired"
        );
        let reports: Vec<_> = desire
            .conflicts
            .iter()
            .filter(|c| c.destination == p.to_string())
            .collect();
        ensure!(reports.len() == 1, "{p}: {} conflict reports", reports.len());
        let origins = &model.origins[p];
        ensure!(
            reports[0].held_by.len() == origins.len(),
            "{p}: held_by {:?}, origins {origins:?}",
            reports[0].held_by
        );
        for tgw in origins {
            ensure!(
                reports[0]
                    .held_by
                    .iter()
                    .filter(|h| h.contains(tgw.as_str()))
                    .count()
                    == 1,
                "{p}: held_by {:?} does not name {tgw} once",
                reports[0].held_by
            );
        }
    }
    Ok(())
}

/// Exactly the target tables of members peered toward an unreadable region
/// are frozen, every read region is complete, and the plan leaves both the
/// frozen tables and the unreadable regions alone.
fn check_frozen(
    view: &MeshView,
    ledger: &OwnershipLedger,
    desire: &Desire,
    plan: &Plan,
) -> Result<(), String> {
    let model = MeshModel::new(view, ledger);
    let expected = model.frozen_tables();
    ensure!(
        desire.frozen_tables == expected,
        "frozen {:?}, expected {expected:?}",
        desire.frozen_tables
    );
    let read: BTreeSet<Region> = view.regions.iter().map(|r| r.region.clone()).collect();
    ensure!(
        desire.complete_regions == read,
        "complete {:?}, read {read:?}",
        desire.complete_regions
    );
    for c in &plan.changes {
        ensure!(
            read.contains(&c.key.table.region) && !expected.contains(&c.key.table),
            "{} planned in a frozen table or an unread region",
            c.key
        );
    }
    for fix in &plan.ledger_fixes {
        let key = match fix {
            lbgp_core::LedgerFix::Record { key, .. } | lbgp_core::LedgerFix::Drop { key, .. } => key,
        };
        ensure!(
            read.contains(&key.table.region) && !expected.contains(&key.table),
            "ledger fix for {key} in a frozen table or an unread region"
        );
    }
    Ok(())
}

/// `over_quota` names exactly the tables the plan grows on a transit
/// gateway that would hold more than `quota` routes (all its tables
/// together, as AWS counts) once the plan is applied.
fn check_over_quota(
    view: &MeshView,
    desire: &Desire,
    ledger: &OwnershipLedger,
    plan: &Plan,
    quota: usize,
) -> Result<(), String> {
    let tgw_of: BTreeMap<RouteTableRef, String> = view
        .regions
        .iter()
        .flat_map(|rv| {
            rv.route_tables.iter().map(|t| {
                (
                    table_ref(&rv.region, TableKind::TransitGateway, &t.id),
                    t.transit_gateway_id.clone(),
                )
            })
        })
        .collect();
    let group = |t: &RouteTableRef| tgw_of.get(t).cloned().unwrap_or_else(|| t.id.clone());
    let (after, _) = simulate_apply(&desire.actual, ledger, plan);
    let mut routes: BTreeMap<String, BTreeSet<(RouteTableRef, Cidr)>> = BTreeMap::new();
    for r in &after {
        routes
            .entry(group(&r.key.table))
            .or_default()
            .insert((r.key.table.clone(), r.key.destination));
    }
    let expected: BTreeSet<RouteTableRef> = plan
        .changes
        .iter()
        .filter(|c| c.op == lbgp_core::ChangeOp::Create)
        .filter(|c| routes.get(&group(&c.key.table)).is_some_and(|r| r.len() > quota))
        .map(|c| c.key.table.clone())
        .collect();
    let got: BTreeSet<RouteTableRef> = propagate::over_quota(desire, plan, quota).into_keys().collect();
    ensure!(
        got == expected,
        "quota {quota}: over_quota names {got:?}; the tables the plan grows on a TGW above it are {expected:?}"
    );
    Ok(())
}

/// Apply the plan as AWS would (our new routes go over peering attachments),
/// read again, plan again: nothing to do.
fn mesh_converges(case: &MeshCase) -> Result<(), String> {
    let desire = propagate::desire(case.view.clone(), &case.ledger, &case.config);
    let first = desire.plan(&case.ledger);
    let (routes, ledger) = simulate_apply(&desire.actual, &case.ledger, &first);
    // What each attachment connects to, as a read reports it.
    let mut resource: BTreeMap<String, AttachmentResource> = BTreeMap::new();
    let mut ecmp: BTreeMap<(RouteKey, RouteOrigin), Vec<TgwRouteAttachment>> = BTreeMap::new();
    for rv in &case.view.regions {
        for p in &rv.peerings {
            resource.insert(p.id.clone(), AttachmentResource::Peering);
        }
        for r in &rv.routes {
            for a in &r.attachments {
                resource.insert(a.attachment_id.clone(), a.resource_type.clone());
            }
            ecmp.insert((r.route.key.clone(), r.route.origin), r.attachments.clone());
        }
    }
    let mut after = case.view.clone();
    for rv in &mut after.regions {
        rv.routes = routes
            .iter()
            .filter(|r| r.key.table.region == rv.region)
            .map(|r| {
                let attachments = match (&r.target, ecmp.get(&(r.key.clone(), r.origin))) {
                    (_, Some(old))
                        if old.first().map(|a| a.attachment_id.as_str()) == Some(r.target.id()) =>
                    {
                        old.clone()
                    }
                    (RouteTarget::TransitGatewayAttachment(id), _) => vec![TgwRouteAttachment {
                        attachment_id: id.clone(),
                        resource_type: resource[id].clone(),
                    }],
                    _ => Vec::new(),
                };
                TgwRoute {
                    route: r.clone(),
                    attachments,
                }
            })
            .collect();
    }
    let again = propagate::desire(after, &ledger, &case.config);
    let second = again.plan(&ledger);
    ensure!(
        second.changes.is_empty() && second.ledger_fixes.is_empty(),
        "not converged after applying\n{first:#?}\nsecond plan:\n{second:#?}"
    );
    ensure!(
        sorted(&again.desired) == sorted(&desire.desired),
        "what we installed changed what we desire: installed routes were taken for origins"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Propagator: unit tests
// ---------------------------------------------------------------------------

const TGW_A: &str = "tgw-0a000000000000001";
const TGW_B: &str = "tgw-0b000000000000002";
const TGW_C: &str = "tgw-0c000000000000003";
const RTB_A: &str = "tgw-rtb-0a00000000000001";
const RTB_B: &str = "tgw-rtb-0b00000000000002";
const RTB_C: &str = "tgw-rtb-0c00000000000003";
const P_AB: &str = "tgw-attach-0ab0000000000001";
const P_BC: &str = "tgw-attach-0bc0000000000002";
const P_AC: &str = "tgw-attach-0ac0000000000003";

/// A (us-east-1, 10.1/16) – B (eu-west-1, 10.2/16) – C (ap-southeast-2,
/// 10.3/16): a chain, A and C not peered. B's table already holds what it
/// learned (our routes), a hand-made static route over the peering to A,
/// and a route of ours whose attachment type AWS did not report.
fn chain() -> (MeshView, OwnershipLedger) {
    let mut views = vec![
        hand_site(
            "us-east-1",
            TGW_A,
            RTB_A,
            &[("vpc-0a00000000000001", &["10.1.0.0/16"])],
        ),
        hand_site(
            "eu-west-1",
            TGW_B,
            RTB_B,
            &[("vpc-0b00000000000002", &["10.2.0.0/16"])],
        ),
        hand_site(
            "ap-southeast-2",
            TGW_C,
            RTB_C,
            &[("vpc-0c00000000000003", &["10.3.0.0/16"])],
        ),
    ];
    hand_peer(&mut views, P_AB, TGW_A, TGW_B);
    hand_peer(&mut views, P_BC, TGW_B, TGW_C);
    let b = table_ref(&region("eu-west-1"), TableKind::TransitGateway, RTB_B);
    let from_a = tgw_route(
        &b,
        cidr("10.1.0.0/16"),
        Some((P_AB, AttachmentResource::Peering)),
        RouteOrigin::Static,
    );
    let from_c = tgw_route(
        &b,
        cidr("10.3.0.0/16"),
        Some((P_BC, AttachmentResource::from_aws("tgw-peering"))),
        RouteOrigin::Static,
    );
    // Hand-made over the peering, not ours: still learned, not originated.
    let by_hand = tgw_route(
        &b,
        cidr("10.9.0.0/16"),
        Some((P_AB, AttachmentResource::Peering)),
        RouteOrigin::Static,
    );
    // Ours, but the read did not say what the attachment is.
    let unlabelled = tgw_route(
        &b,
        cidr("10.1.128.0/17"),
        Some((P_AB, AttachmentResource::Other(String::new()))),
        RouteOrigin::Static,
    );
    let ledger: OwnershipLedger = [&from_a, &from_c, &unlabelled]
        .into_iter()
        .map(|r| owned(&r.route))
        .collect();
    views[1].routes.extend([from_a, from_c, by_hand, unlabelled]);
    (
        MeshView {
            regions: views,
            unreadable: Vec::new(),
        },
        ledger,
    )
}

fn mesh_regions() -> Vec<Region> {
    ["us-east-1", "eu-west-1", "ap-southeast-2"].map(region).to_vec()
}

#[test]
fn a_prefix_travels_exactly_one_hop() {
    let (view, ledger) = chain();
    let config = propagator_config(&mesh_regions(), &[]);
    let desire = propagate::desire(view.clone(), &ledger, &config);
    let by_table = desired_by_table(&desire);
    assert_eq!(by_table[RTB_A], vec![("10.2.0.0/16".to_owned(), P_AB.to_owned())]);
    assert_eq!(
        by_table[RTB_B],
        vec![
            ("10.1.0.0/16".to_owned(), P_AB.to_owned()),
            ("10.3.0.0/16".to_owned(), P_BC.to_owned())
        ]
    );
    assert_eq!(by_table[RTB_C], vec![("10.2.0.0/16".to_owned(), P_BC.to_owned())]);
    assert!(desire.conflicts.is_empty(), "{:?}", desire.conflicts);
    check_one_hop(&view, &ledger, &config, &desire).unwrap();
    check_desired_set(&view, &ledger, &config, &desire).unwrap();
    // Our unlabelled 10.1.128.0/17 is no longer desired: withdrawn.
    let plan = desire.plan(&ledger);
    let ops: Vec<(String, String, lbgp_core::ChangeOp)> = sorted(
        &plan
            .changes
            .iter()
            .map(|c| (c.key.table.id.clone(), c.key.destination.to_string(), c.op))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        ops,
        vec![
            (
                RTB_A.to_owned(),
                "10.2.0.0/16".to_owned(),
                lbgp_core::ChangeOp::Create
            ),
            (
                RTB_B.to_owned(),
                "10.1.128.0/17".to_owned(),
                lbgp_core::ChangeOp::Delete
            ),
            (
                RTB_C.to_owned(),
                "10.2.0.0/16".to_owned(),
                lbgp_core::ChangeOp::Create
            ),
        ]
    );
    mesh_converges(&MeshCase { config, view, ledger }).unwrap();
}

#[test]
fn a_prefix_two_tgws_originate_is_installed_nowhere_and_reported_once() {
    let mut views = vec![
        hand_site(
            "us-east-1",
            TGW_A,
            RTB_A,
            &[("vpc-0a00000000000001", &["10.1.0.0/16"])],
        ),
        hand_site(
            "eu-west-1",
            TGW_B,
            RTB_B,
            &[("vpc-0b00000000000002", &["10.2.0.0/16", "10.77.0.0/16"])],
        ),
        hand_site(
            "ap-southeast-2",
            TGW_C,
            RTB_C,
            &[("vpc-0c00000000000003", &["10.3.0.0/16"])],
        ),
    ];
    // C also originates 10.77.0.0/16, toward a VPN.
    let c = table_ref(&region("ap-southeast-2"), TableKind::TransitGateway, RTB_C);
    views[2].routes.push(tgw_route(
        &c,
        cidr("10.77.0.0/16"),
        Some(("tgw-attach-0c0000000000000b1", AttachmentResource::Vpn)),
        RouteOrigin::Static,
    ));
    hand_peer(&mut views, P_AB, TGW_A, TGW_B);
    hand_peer(&mut views, P_BC, TGW_B, TGW_C);
    hand_peer(&mut views, P_AC, TGW_A, TGW_C);
    let view = MeshView {
        regions: views,
        unreadable: Vec::new(),
    };
    let ledger = OwnershipLedger::new();
    let config = propagator_config(&mesh_regions(), &[]);
    let first = propagate::desire(view.clone(), &ledger, &config);
    assert!(
        first
            .desired
            .iter()
            .all(|d| d.key.destination != cidr("10.77.0.0/16")),
        "{:?}",
        first.desired
    );
    assert_eq!(first.desired.len(), 6, "{:?}", first.desired);
    assert_eq!(first.conflicts.len(), 1, "{:?}", first.conflicts);
    let conflict = &first.conflicts[0];
    assert_eq!(conflict.destination, "10.77.0.0/16");
    assert_eq!(conflict.held_by.len(), 2, "{conflict:?}");
    assert!(conflict.held_by[0].contains(TGW_B) && conflict.held_by[0].contains("vpc-0b00000000000002"));
    assert!(conflict.held_by[1].contains(TGW_C) && conflict.held_by[1].contains("vpn"));
    check_conflicts(&view, &ledger, &first).unwrap();
    // The same on every run and in every order.
    for seed in 0..8 {
        let again = propagate::desire(shuffle_mesh_view(view.clone(), seed), &ledger, &config);
        assert_eq!(again.conflicts, first.conflicts);
        assert_eq!(again.plan(&ledger), first.plan(&ledger));
    }
}

#[test]
fn tables_learning_from_a_peer_in_an_unreadable_region_are_frozen() {
    let (mut view, ledger) = chain();
    // A's region (us-east-1) cannot be read: B learns from it, C does not.
    view.regions.remove(0);
    view.unreadable.push(unreadable(&region("us-east-1")));
    let config = propagator_config(&mesh_regions(), &[]);
    let desire = propagate::desire(view.clone(), &ledger, &config);
    let b = table_ref(&region("eu-west-1"), TableKind::TransitGateway, RTB_B);
    assert_eq!(desire.frozen_tables, BTreeSet::from([b.clone()]));
    let plan = desire.plan(&ledger);
    // B keeps everything (its routes from A are not withdrawn on a failed
    // read); C still learns B's prefix.
    assert!(plan.changes.iter().all(|c| c.key.table != b), "{plan:#?}");
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    assert_eq!(plan.changes[0].key.table.id, RTB_C);
    check_frozen(&view, &ledger, &desire, &plan).unwrap();
}

#[test]
fn over_quota_freezes_exactly_the_tables_above_the_quota() {
    // A peers with B (two VPCs) and C (one): A's table would hold its own
    // propagated route and three learned ones.
    let mut views = vec![
        hand_site(
            "us-east-1",
            TGW_A,
            RTB_A,
            &[("vpc-0a00000000000001", &["10.1.0.0/16"])],
        ),
        hand_site(
            "eu-west-1",
            TGW_B,
            RTB_B,
            &[
                ("vpc-0b00000000000002", &["10.2.0.0/16"]),
                ("vpc-0b00000000000004", &["10.4.0.0/16"]),
            ],
        ),
        hand_site(
            "ap-southeast-2",
            TGW_C,
            RTB_C,
            &[("vpc-0c00000000000003", &["10.3.0.0/16"])],
        ),
    ];
    hand_peer(&mut views, P_AB, TGW_A, TGW_B);
    hand_peer(&mut views, P_AC, TGW_A, TGW_C);
    let view = MeshView {
        regions: views,
        unreadable: Vec::new(),
    };
    let ledger = OwnershipLedger::new();
    let config = propagator_config(&mesh_regions(), &[("LBGP_TGW_ROUTE_QUOTA", "3")]);
    let mut desire = propagate::desire(view.clone(), &ledger, &config);
    let unrestricted = desire.plan(&ledger);
    let refused = propagate::over_quota(&desire, &unrestricted, 3);
    let a = table_ref(&region("us-east-1"), TableKind::TransitGateway, RTB_A);
    assert_eq!(refused.keys().cloned().collect::<Vec<_>>(), vec![a.clone()]);
    assert!(refused[&a].contains("4 routes") && refused[&a].contains("LBGP_TGW_ROUTE_QUOTA=3"));
    check_over_quota(&view, &desire, &ledger, &unrestricted, 3).unwrap();
    let plan = propagate::plan(&mut desire, &ledger, &config);
    assert!(desire.frozen_tables.contains(&a));
    assert!(desire.errors.iter().any(|e| e.resource.as_deref() == Some(RTB_A)));
    assert!(plan.changes.iter().all(|c| c.key.table != a), "{plan:#?}");
    // B (own 2 + A's 1) and C (own 1 + A's 1) fit.
    assert_eq!(plan.changes.len(), 2, "{plan:#?}");
}

#[test]
fn summarize_installs_lossless_aggregates_that_cover_nobody_elses_prefix() {
    let mut views = vec![
        hand_site(
            "us-east-1",
            TGW_A,
            RTB_A,
            &[("vpc-0a00000000000001", &["10.1.0.0/16"])],
        ),
        hand_site(
            "eu-west-1",
            TGW_B,
            RTB_B,
            &[
                ("vpc-0b00000000000002", &["10.10.0.0/16", "10.11.0.0/16"]),
                ("vpc-0b00000000000004", &["10.12.0.0/17", "10.12.128.0/17"]),
            ],
        ),
        // C originates 10.12.5.0/24, inside what B's /17s would summarise to.
        hand_site(
            "ap-southeast-2",
            TGW_C,
            RTB_C,
            &[("vpc-0c00000000000003", &["10.12.5.0/24"])],
        ),
    ];
    hand_peer(&mut views, P_AB, TGW_A, TGW_B);
    hand_peer(&mut views, P_AC, TGW_A, TGW_C);
    let view = MeshView {
        regions: views,
        unreadable: Vec::new(),
    };
    let ledger = OwnershipLedger::new();
    let config = propagator_config(&mesh_regions(), &[("LBGP_SUMMARIZE", "true")]);
    let desire = propagate::desire(view.clone(), &ledger, &config);
    let from_b: Vec<String> = desired_by_table(&desire)[RTB_A]
        .iter()
        .filter(|(_, t)| t == P_AB)
        .map(|(d, _)| d.clone())
        .collect();
    assert_eq!(from_b, vec!["10.10.0.0/15", "10.12.0.0/17", "10.12.128.0/17"]);
    check_one_hop(&view, &ledger, &config, &desire).unwrap();
    check_desired_set(&view, &ledger, &config, &desire).unwrap();
}

#[test]
fn the_checkers_catch_hand_made_violations() {
    // Each property test relies on a checker; each checker must fail on a
    // desire that breaks its rule.
    let (view, ledger) = chain();
    let config = propagator_config(&mesh_regions(), &[]);
    let good = propagate::desire(view.clone(), &ledger, &config);
    let c = table_ref(&region("ap-southeast-2"), TableKind::TransitGateway, RTB_C);
    // C re-learning A's prefix through B: two hops.
    let mut reexported = good.clone();
    reexported.desired.push(DesiredRoute {
        key: RouteKey {
            table: c.clone(),
            destination: cidr("10.1.0.0/16"),
        },
        target: RouteTarget::TransitGatewayAttachment(P_BC.to_owned()),
    });
    assert!(check_one_hop(&view, &ledger, &config, &reexported).is_err());
    assert!(check_desired_set(&view, &ledger, &config, &reexported).is_err());
    // The right prefix over the wrong peering.
    let mut misrouted = good.clone();
    misrouted
        .desired
        .iter_mut()
        .find(|d| d.key.table == c)
        .unwrap()
        .target = RouteTarget::TransitGatewayAttachment(P_AB.to_owned());
    assert!(check_one_hop(&view, &ledger, &config, &misrouted).is_err());
    // A conflict reported twice, and one not reported.
    let mut twice = good.clone();
    twice.conflicts.push(lbgp_core::report::ConflictReport {
        region: "*".to_owned(),
        route_table_id: None,
        destination: "10.2.0.0/16".to_owned(),
        wanted: None,
        held_by: vec![TGW_B.to_owned()],
        reason: "originated by more than one transit gateway; installed nowhere".to_owned(),
        account: None,
    });
    assert!(check_conflicts(&view, &ledger, &twice).is_err());
    // A table not frozen although its peer's region is unreadable.
    let (mut partial, _) = chain();
    partial.regions.remove(0);
    partial.unreadable.push(unreadable(&region("us-east-1")));
    let mut thawed = propagate::desire(partial.clone(), &ledger, &config);
    thawed.frozen_tables.clear();
    let plan = thawed.plan(&ledger);
    assert!(check_frozen(&partial, &ledger, &thawed, &plan).is_err());
    // The injector: a route to a VPC's own CIDR, and one inside it.
    let rv = hand_region(
        "eu-west-1",
        &[("tgw-0aa00000000000001", Some(MESH))],
        &[HandVpc {
            id: "vpc-0aa0000000000001",
            cidrs: &["10.1.0.0/16"],
            tgws: &["tgw-0aa00000000000001"],
            tables: &[("rtb-0aa0000000000001", false)],
        }],
    );
    let iview = one_region_view(rv);
    let iconfig = injector_config(&[region("eu-west-1")], &[]);
    let idesire = inject::desire(iview.clone(), &OwnershipLedger::new(), &iconfig);
    check_no_hijack(&iview, &iconfig, &idesire).unwrap();
    for bad in ["10.1.0.0/16", "10.1.4.0/24"] {
        let mut hijack = idesire.clone();
        hijack.desired[0].key.destination = cidr(bad);
        assert!(check_no_hijack(&iview, &iconfig, &hijack).is_err(), "{bad}");
        assert!(check_injector_rule(&iview, &iconfig, &hijack).is_err(), "{bad}");
    }
    // A route in an ignored table; a table pushed over the quota.
    let rv = hand_region(
        "eu-west-1",
        &[("tgw-0aa00000000000001", Some(MESH))],
        &[HandVpc {
            id: "vpc-0aa0000000000001",
            cidrs: &["10.1.0.0/16"],
            tgws: &["tgw-0aa00000000000001"],
            tables: &[("rtb-0aa0000000000001", false), ("rtb-0aa0000000000002", true)],
        }],
    );
    let ignored_view = one_region_view(rv);
    let mut into_ignored = inject::desire(ignored_view.clone(), &OwnershipLedger::new(), &iconfig);
    let mut extra = into_ignored.desired[0].clone();
    extra.key.table.id = "rtb-0aa0000000000002".to_owned();
    into_ignored.desired.push(extra);
    assert!(check_injector_rule(&ignored_view, &iconfig, &into_ignored).is_err());
    let sview = one_region_view(specific_region());
    let sconfig = injector_config(
        &[region("eu-west-1")],
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "2")],
    );
    let mut over = inject::desire(sview.clone(), &OwnershipLedger::new(), &sconfig);
    check_injector_quota(&sview, &sconfig, &OwnershipLedger::new(), &over).unwrap();
    let mut extra = over.desired[0].clone();
    extra.key.destination = cidr("10.50.0.0/16");
    over.desired.push(extra);
    assert!(check_injector_quota(&sview, &sconfig, &OwnershipLedger::new(), &over).is_err());
    // The order check: a different plan is caught.
    let plan = idesire.plan(&OwnershipLedger::new());
    assert!(same_outcome(&idesire, &plan, &idesire, &Plan::default()).is_err());
}

// ---------------------------------------------------------------------------
// Propagator: properties
// ---------------------------------------------------------------------------

/// A set of IPv4 prefixes with nesting and siblings.
fn learned_prefixes(max: usize) -> impl Strategy<Value = BTreeSet<Cidr>> {
    prop::collection::btree_set(
        (
            0u8..4,
            0u8..4,
            prop::sample::select(vec![14u8, 15, 16, 17, 18, 24]),
        )
            .prop_map(|(a, b, len)| v4([10, a, b * 64, 0], len)),
        0..=max,
    )
}

proptest! {
    #![proptest_config(cases(160))]

    /// Over random full and partial meshes: every desired route carries a
    /// prefix its peering's far end originates itself (never one learned
    /// over a peering or recorded in our ledger), and the desired set is
    /// exactly one hop of every member's own prefixes.
    #[test]
    fn propagator_never_reexports_what_it_learned(spec in mesh_spec()) {
        let case = build_mesh(&spec);
        let desire = propagate::desire(case.view.clone(), &case.ledger, &case.config);
        check_one_hop(&case.view, &case.ledger, &case.config, &desire).map_err(TestCaseError::fail)?;
        check_desired_set(&case.view, &case.ledger, &case.config, &desire).map_err(TestCaseError::fail)?;
    }

    /// A prefix two members originate is installed nowhere and reported
    /// once with every origin.
    #[test]
    fn propagator_reports_each_contested_prefix_once(spec in mesh_spec()) {
        let case = build_mesh(&spec);
        let desire = propagate::desire(case.view.clone(), &case.ledger, &case.config);
        check_conflicts(&case.view, &case.ledger, &desire).map_err(TestCaseError::fail)?;
    }

    /// Tables learning from a peer in an unreadable region are frozen, and
    /// nothing there or in the unread region is planned.
    #[test]
    fn propagator_freezes_tables_that_learn_from_an_unreadable_region(spec in mesh_spec()) {
        let case = build_mesh(&spec);
        let desire = propagate::desire(case.view.clone(), &case.ledger, &case.config);
        let plan = desire.plan(&case.ledger);
        check_frozen(&case.view, &case.ledger, &desire, &plan).map_err(TestCaseError::fail)?;
    }

    /// `over_quota` names exactly the tables above the quota after the
    /// plan; `propagate::plan` freezes and reports exactly those and plans
    /// every other table as before.
    #[test]
    fn propagator_over_quota_freezes_exactly_the_tables_above_it(spec in mesh_spec(), quota in 1usize..8) {
        let case = build_mesh(&spec);
        let mut desire = propagate::desire(case.view.clone(), &case.ledger, &case.config);
        let unrestricted = desire.plan(&case.ledger);
        check_over_quota(&case.view, &desire, &case.ledger, &unrestricted, quota).map_err(TestCaseError::fail)?;
        let refused = propagate::over_quota(&desire, &unrestricted, quota);
        let mut config = case.config.clone();
        config.tgw_route_quota = quota;
        let plan = propagate::plan(&mut desire, &case.ledger, &config);
        let marker = format!("LBGP_TGW_ROUTE_QUOTA={quota}");
        for table in refused.keys() {
            prop_assert!(desire.frozen_tables.contains(table), "{} not frozen", table);
            prop_assert!(
                desire.errors.iter().any(|e| e.resource.as_deref() == Some(&table.id) && e.error.contains(&marker)),
                "{} refused without an error naming {}", table, marker
            );
        }
        let kept: Vec<_> = unrestricted.changes.iter().filter(|c| !refused.contains_key(&c.key.table)).collect();
        prop_assert_eq!(plan.changes.iter().collect::<Vec<_>>(), kept);
    }

    /// Any order of every list in the view gives the same plan, desired set
    /// and reports; applying the plan and planning again changes nothing.
    #[test]
    fn propagator_plan_ignores_input_order_and_converges(spec in mesh_spec(), seed in any::<u64>()) {
        let case = build_mesh(&spec);
        let a = propagate::desire(case.view.clone(), &case.ledger, &case.config);
        let b = propagate::desire(shuffle_mesh_view(case.view.clone(), seed), &case.ledger, &case.config);
        let (pa, pb) = (a.plan(&case.ledger), b.plan(&case.ledger));
        same_outcome(&a, &pa, &b, &pb).map_err(TestCaseError::fail)?;
        mesh_converges(&case).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// `learned` is lossless, returns the prefixes as they are without
    /// summarising, and with summarising never installs an aggregate that
    /// covers a prefix someone else originates.
    #[test]
    fn learned_never_covers_someone_elses_prefix(
        mine in learned_prefixes(8),
        others in learned_prefixes(4),
        summarize in any::<bool>(),
    ) {
        let out = propagate::learned(&mine, &others, summarize);
        let mine_list: Vec<Cidr> = mine.iter().copied().collect();
        if !summarize {
            prop_assert_eq!(out, mine_list);
            return Ok(());
        }
        prop_assert_eq!(aggregate(&out), aggregate(&mine_list), "not lossless");
        prop_assert!(out.len() <= mine.len());
        for agg in out.iter().filter(|p| !mine.contains(p)) {
            for o in &others {
                prop_assert!(!agg.contains(o), "{} covers {}, someone else's", agg, o);
            }
        }
    }
}
