//! vpc-route-injector against the emulator, through its handler and (once)
//! through the real binary under the Lambda Runtime API.
//!
//! Every scenario runs in both route styles (`<scenario>::routes`,
//! `<scenario>::prefix_list`): the same mesh, the same events, the same
//! effective routing asserted (prefix-list routes expanded into their
//! entries, `lbgp_tests::styles`). In `prefix-list` style every table whose
//! routes go to its TGW gets one route toward the region's lbgp-owned list
//! (aggregate mode included), so each scenario exercises lists; where the
//! writes differ the exact count of each style is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use lbgp_core::desire::SETTLE_SECS;
use lbgp_tests::events::{cloudtrail, scheduled};
use lbgp_tests::fixtures::{self, TestEnv, attach, create_route_table, create_tgw, create_vpc, vpc_routes};
use lbgp_tests::runtime_api::{LocalLambda, Outcome, dev_binary};
use lbgp_tests::styles::{
    Style, assert_plan, effective_vpc_routes, list_plan, list_steps, step_tables, vpc_list_routes,
};
use serde_json::{Value, json};
use vpc_route_injector::{App, Injector};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// One region of the sample mesh.
#[derive(Debug, Clone)]
struct RegionMesh {
    region: &'static str,
    tgw: String,
    /// (vpc, subnet, main route table, custom route table)
    vpcs: Vec<(String, String, String, String)>,
    /// A VPC attached to a TGW without the mesh tag: never touched.
    outsider_rtb: String,
    outsider_tgw: String,
}

async fn build_mesh(env: &TestEnv) -> Vec<RegionMesh> {
    let mut out = Vec::new();
    for (i, region) in REGIONS.iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let mut vpcs = Vec::new();
        for j in 0..2 {
            let cidr = format!("10.{}.0.0/16", i * 10 + j + 1);
            let (vpc, subnet, main) = create_vpc(&ec2, &cidr).await.unwrap();
            let custom = create_route_table(&ec2, &vpc, &[]).await.unwrap();
            attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
            vpcs.push((vpc, subnet, main, custom));
        }
        let outsider_tgw = create_tgw(&ec2, None).await.unwrap();
        let (vpc, subnet, outsider_rtb) = create_vpc(&ec2, &format!("10.{}.0.0/16", 200 + i)).await.unwrap();
        attach(&ec2, &outsider_tgw, &vpc, &subnet).await.unwrap();
        out.push(RegionMesh {
            region,
            tgw,
            vpcs,
            outsider_rtb,
            outsider_tgw,
        });
    }
    out
}

fn app(env: &TestEnv, style: Style, extra: &[(&str, &str)]) -> App {
    let config = env.config(&style.vars(extra)).injector().unwrap();
    let aws = env.aws(&config.common).unwrap();
    App::new(Injector { config }, aws)
}

async fn invoke(app: &App, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

fn changes(response: &Value) -> Vec<Value> {
    response["changes"].as_array().cloned().unwrap_or_default()
}

/// What the first run of the sample mesh plans: 3 regions × 2 VPCs × 2
/// tables × 3 prefixes, or per region one list of the 3 prefixes and one
/// route toward it per table.
fn assert_first_plan(style: Style, response: &Value) {
    match style {
        Style::Routes => assert_plan(response, 36, &[]),
        Style::PrefixList => assert_plan(response, 0, &[("create_list", 3), ("create_route", 12)]),
    }
}

/// The EC2 writes of the first run (see [`assert_first_plan`]).
fn first_writes(style: Style) -> BTreeMap<String, u64> {
    match style {
        Style::Routes => BTreeMap::from([("CreateRoute".to_owned(), 36)]),
        Style::PrefixList => BTreeMap::from([
            ("CreateManagedPrefixList".to_owned(), 3),
            ("CreateRoute".to_owned(), 12),
        ]),
    }
}

/// Every managed table routes the three RFC 1918 prefixes to its TGW (in
/// prefix-list style through exactly one route toward a list, and no CIDR
/// route toward the TGW); the outsider VPC holds its local route only.
async fn assert_converged(env: &TestEnv, style: Style, mesh: &[RegionMesh]) {
    for m in mesh {
        let ec2 = env.ec2(m.region);
        for (_, _, main, custom) in &m.vpcs {
            for rtb in [main, custom] {
                let routes = effective_vpc_routes(&ec2, rtb).await.unwrap();
                for p in RFC1918 {
                    assert_eq!(routes.get(p), Some(&m.tgw), "{} {rtb} {p}: {routes:?}", m.region);
                }
                let lists = vpc_list_routes(&ec2, rtb).await.unwrap();
                let cidr = vpc_routes(&ec2, rtb).await.unwrap();
                let cidr_to_tgw = cidr.iter().filter(|(d, t)| !d.is_empty() && *t == &m.tgw).count();
                match style {
                    Style::Routes => {
                        assert!(lists.is_empty(), "{rtb}: {lists:?}");
                        assert_eq!(cidr_to_tgw, 3, "{rtb}: {cidr:?}");
                    }
                    Style::PrefixList => {
                        assert_eq!(
                            lists.values().collect::<Vec<_>>(),
                            vec![&m.tgw],
                            "{rtb}: {lists:?}"
                        );
                        assert_eq!(cidr_to_tgw, 0, "{rtb}: {cidr:?}");
                    }
                }
            }
        }
        let outsider = effective_vpc_routes(&ec2, &m.outsider_rtb).await.unwrap();
        assert_eq!(outsider.len(), 1, "outsider VPC touched: {outsider:?}");
    }
}

/// The one prefix-list route of a table (prefix-list style).
async fn list_of(ec2: &aws_sdk_ec2::Client, rtb: &str) -> String {
    let lists = vpc_list_routes(ec2, rtb).await.unwrap();
    assert_eq!(lists.len(), 1, "{rtb}: {lists:?}");
    lists.into_keys().next().unwrap()
}

lbgp_tests::both_styles!(
    dry_run_then_apply_converges_and_second_run_makes_no_writes,
    out_of_band_deletion_is_repaired_with_exactly_one_call,
    out_of_band_repoint_is_repaired,
    foreign_conflicting_route_is_untouched_and_reported_once,
    removing_a_prefix_or_detaching_a_vpc_deletes_only_our_routes,
    untagged_tgw_and_ignored_tables_are_untouched,
    prefix_inside_a_vpc_cidr_is_skipped_and_ipv6_applies_to_ipv6_vpcs,
    specific_mode_summarises_to_the_quota_without_covering_own_cidrs,
    malformed_and_foreign_events_write_nothing,
    blast_radius_refuses_whole_plan_unless_forced,
    the_binary_serves_invocations_through_the_runtime_api,
);

async fn dry_run_then_apply_converges_and_second_run_makes_no_writes(style: Style) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, style, &[]);

    env.emulator.reset_calls().await.unwrap();
    let dry = invoke(&app, json!({"dry_run": true})).await;
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(dry["applied"], json!(false));
    assert_first_plan(style, &dry);
    if style.lists() {
        let create = list_steps(&dry, "create_list");
        assert!(create.iter().all(|c| c["entries"] == json!(RFC1918)), "{dry:#}");
    }
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.mutating().is_empty(),
        "a dry run wrote: {:?}",
        calls.mutating()
    );

    let applied = invoke(&app, json!({"dry_run": false})).await;
    assert_eq!(applied["applied"], json!(true));
    assert_eq!(changes(&applied), changes(&dry), "apply differs from its dry run");
    assert_eq!(
        list_plan(&applied),
        list_plan(&dry),
        "apply differs from its dry run"
    );
    assert_converged(&env, style, &mesh).await;
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.ec2_mutating(), first_writes(style));
    // The write-ahead ledger in bursts: per region (12 creates, one burst)
    // one transaction of intents and one of confirmations, not two per
    // route. Prefix-list steps are not ledgered: a list is ours by the tags
    // its create call sets, a route by its list.
    assert_eq!(
        calls.count("dynamodb", "TransactWriteItems"),
        style.pick(2 * REGIONS.len() as u64, 0)
    );

    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_eq!(changes(&again), Vec::<Value>::new());
    assert!(again["errors"].as_array().unwrap().is_empty(), "{again:#}");
    let calls = env.emulator.calls().await.unwrap();
    let writes: BTreeMap<String, u64> = calls
        .mutating()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("dynamodb:UpdateItem"))
        .collect();
    // Only the lease is taken and released: no route or ledger write.
    assert!(writes.is_empty(), "converged run wrote: {writes:?}");
    assert!(calls.ec2_mutating().is_empty());
}

async fn converged_env(style: Style) -> (TestEnv, Vec<RegionMesh>, App) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, style, &[]);
    let first = invoke(&app, scheduled()).await;
    assert_first_plan(style, &first);
    env.emulator.reset_calls().await.unwrap();
    (env, mesh, app)
}

async fn out_of_band_deletion_is_repaired_with_exactly_one_call(style: Style) {
    let (env, mesh, app) = converged_env(style).await;
    let m = &mesh[1];
    let ec2 = env.ec2(m.region);
    let rtb = &m.vpcs[0].2;
    // A hand deletes the route a while after lbgp wrote it (within
    // SETTLE_SECS a route not seen yet is taken for a read lagging the write):
    // the 172.16.0.0/12 route, or in prefix-list style the table's route
    // toward the list (which carries 172.16.0.0/12 and the rest).
    env.clock.advance(SETTLE_SECS);
    let deleted = ec2.delete_route().route_table_id(rtb);
    let (deleted, request) = match style {
        Style::Routes => (
            deleted.destination_cidr_block("172.16.0.0/12"),
            json!({"routeTableId": rtb, "destinationCidrBlock": "172.16.0.0/12"}),
        ),
        Style::PrefixList => {
            let list = list_of(&ec2, rtb).await;
            (
                deleted.destination_prefix_list_id(&list),
                json!({"routeTableId": rtb, "destinationPrefixListId": list}),
            )
        }
    };
    deleted.send().await.unwrap();
    assert_eq!(
        effective_vpc_routes(&ec2, rtb)
            .await
            .unwrap()
            .get("172.16.0.0/12"),
        None
    );
    env.emulator.reset_calls().await.unwrap();

    let response = invoke(&app, cloudtrail("DeleteRoute", m.region, request)).await;
    match style {
        Style::Routes => {
            assert_plan(&response, 1, &[]);
            let c = changes(&response);
            assert_eq!(c[0]["op"], "create");
            assert_eq!(c[0]["route_table_id"], json!(rtb));
            assert_eq!(c[0]["reason"], "our route was deleted out of band");
        }
        Style::PrefixList => {
            assert_plan(&response, 0, &[("create_route", 1)]);
            assert_eq!(step_tables(&response, "create_route"), vec![rtb.clone()]);
        }
    }
    // Repaired by exactly one call in either style: a route is a route.
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("CreateRoute".to_owned(), 1)])
    );
    assert_converged(&env, style, &mesh).await;

    if style.lists() {
        // The list's own counterpart: a hand removes one entry (every
        // table of the region loses the route): one ModifyManagedPrefixList
        // puts it back.
        let list = list_of(&ec2, rtb).await;
        let version = ec2
            .describe_managed_prefix_lists()
            .prefix_list_ids(&list)
            .send()
            .await
            .unwrap()
            .prefix_lists()[0]
            .version()
            .unwrap();
        ec2.modify_managed_prefix_list()
            .prefix_list_id(&list)
            .current_version(version)
            .remove_entries(
                aws_sdk_ec2::types::RemovePrefixListEntry::builder()
                    .cidr("172.16.0.0/12")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        env.clock.advance(SETTLE_SECS);
        env.emulator.reset_calls().await.unwrap();
        let response = invoke(&app, scheduled()).await;
        assert_plan(&response, 0, &[("sync_entries", 1)]);
        let sync = &list_steps(&response, "sync_entries")[0];
        assert_eq!(sync["add"], json!(["172.16.0.0/12"]), "{response:#}");
        assert_eq!(sync["remove"], json!([]), "{response:#}");
        let calls = env.emulator.calls().await.unwrap();
        assert_eq!(
            calls.ec2_mutating(),
            BTreeMap::from([("ModifyManagedPrefixList".to_owned(), 1)])
        );
        assert_converged(&env, style, &mesh).await;
    }
}

async fn out_of_band_repoint_is_repaired(style: Style) {
    let (env, mesh, app) = converged_env(style).await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    let rtb = &m.vpcs[1].3;
    env.clock.advance(SETTLE_SECS);
    // 10.0.0.0/8 repointed by hand: its route, or the table's list route.
    let replace = ec2.replace_route().route_table_id(rtb);
    let replace = match style {
        Style::Routes => replace.destination_cidr_block("10.0.0.0/8"),
        Style::PrefixList => replace.destination_prefix_list_id(list_of(&ec2, rtb).await),
    };
    replace.transit_gateway_id(&m.outsider_tgw).send().await.unwrap();
    assert_eq!(
        effective_vpc_routes(&ec2, rtb).await.unwrap().get("10.0.0.0/8"),
        Some(&m.outsider_tgw)
    );
    env.emulator.reset_calls().await.unwrap();
    let response = invoke(&app, scheduled()).await;
    match style {
        Style::Routes => {
            assert_plan(&response, 1, &[]);
            let c = changes(&response);
            assert_eq!(c[0]["op"], "replace");
            assert_eq!(c[0]["previous_target"], json!(m.outsider_tgw));
        }
        Style::PrefixList => {
            assert_plan(&response, 0, &[("replace_route", 1)]);
            let r = &list_steps(&response, "replace_route")[0];
            assert_eq!(r["table"]["id"], json!(rtb));
            assert_eq!(r["previous"]["id"], json!(m.outsider_tgw));
            assert_eq!(r["target"]["id"], json!(m.tgw));
        }
    }
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), 1)])
    );
    assert_converged(&env, style, &mesh).await;
}

async fn foreign_conflicting_route_is_untouched_and_reported_once(style: Style) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let m = &mesh[2];
    let ec2 = env.ec2(m.region);
    let (vpc, subnet, main, _) = &m.vpcs[0];
    // A legacy router's route to 192.168.0.0/16, made by hand.
    let eni = ec2
        .create_network_interface()
        .subnet_id(subnet)
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();
    ec2.create_route()
        .route_table_id(main)
        .destination_cidr_block("192.168.0.0/16")
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();
    let app = app(&env, style, &[]);
    let response = invoke(&app, scheduled()).await;
    // In prefix-list style the region's list still holds 192.168.0.0/16
    // (the other tables want it) and this table references it: the foreign
    // CIDR route wins over the list's entry (AWS route priority), so the
    // table routes exactly as in the routes style.
    match style {
        Style::Routes => assert_plan(&response, 35, &[]),
        Style::PrefixList => assert_plan(&response, 0, &[("create_list", 3), ("create_route", 12)]),
    }
    let conflicts = response["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{response:#}");
    assert_eq!(conflicts[0]["route_table_id"], json!(main));
    assert_eq!(conflicts[0]["destination"], "192.168.0.0/16");
    assert_eq!(conflicts[0]["held_by"], json!([eni]));
    assert_eq!(
        vpc_routes(&ec2, main).await.unwrap().get("192.168.0.0/16"),
        Some(&eni),
        "foreign route changed"
    );
    let routes = effective_vpc_routes(&ec2, main).await.unwrap();
    assert_eq!(routes.get("192.168.0.0/16"), Some(&eni), "{routes:?}");
    for p in ["10.0.0.0/8", "172.16.0.0/12"] {
        assert_eq!(routes.get(p), Some(&m.tgw), "{routes:?}");
    }
    let publishes = env.emulator.calls().await.unwrap().count("sns", "Publish");

    // The same conflict on the next run: no new notification, no write.
    env.emulator.reset_calls().await.unwrap();
    let again = invoke(&app, scheduled()).await;
    assert_eq!(again["conflicts"].as_array().unwrap().len(), 1);
    assert_plan(&again, 0, &[]);
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("sns", "Publish"), 0, "conflict notified again");
    assert!(calls.ec2_mutating().is_empty());
    assert!(publishes >= 1, "the conflict was never notified");
    let _ = vpc;
}

async fn removing_a_prefix_or_detaching_a_vpc_deletes_only_our_routes(style: Style) {
    let (env, mesh, _) = converged_env(style).await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    // A foreign route the operator made on a destination we will stop
    // managing (in routes style in place of ours; in prefix-list style
    // beside the list, whose entry it overrides).
    let (vpc0, _, main0, custom0) = &m.vpcs[0];
    if !style.lists() {
        ec2.delete_route()
            .route_table_id(custom0)
            .destination_cidr_block("172.16.0.0/12")
            .send()
            .await
            .unwrap();
    }
    ec2.create_route()
        .route_table_id(custom0)
        .destination_cidr_block("172.16.0.0/12")
        .transit_gateway_id(&m.outsider_tgw)
        .send()
        .await
        .unwrap();

    let narrower = app(&env, style, &[("LBGP_PREFIXES", "10.0.0.0/8,192.168.0.0/16")]);
    env.emulator.reset_calls().await.unwrap();
    let response = invoke(&narrower, scheduled()).await;
    match style {
        Style::Routes => {
            // 12 tables had our 172.16/12 route; one was replaced by hand (now foreign).
            assert_plan(&response, 11, &[]);
            assert!(
                changes(&response)
                    .iter()
                    .all(|c| c["op"] == "delete" && c["destination"] == "172.16.0.0/12")
            );
        }
        Style::PrefixList => {
            // One entry out of each region's list, whatever the tables.
            assert_plan(&response, 0, &[("sync_entries", 3)]);
            for s in list_steps(&response, "sync_entries") {
                assert_eq!((&s["add"], &s["remove"]), (&json!([]), &json!(["172.16.0.0/12"])));
            }
            assert_eq!(
                env.emulator.calls().await.unwrap().ec2_mutating(),
                BTreeMap::from([("ModifyManagedPrefixList".to_owned(), 3)])
            );
        }
    }
    for m in &mesh {
        for (_, _, main, custom) in &m.vpcs {
            for rtb in [main, custom].into_iter().filter(|t| *t != custom0) {
                let routes = effective_vpc_routes(&env.ec2(m.region), rtb).await.unwrap();
                assert_eq!(routes.get("172.16.0.0/12"), None, "{rtb}: {routes:?}");
                assert_eq!(routes.get("10.0.0.0/8"), Some(&m.tgw), "{rtb}: {routes:?}");
            }
        }
    }
    let routes = effective_vpc_routes(&ec2, custom0).await.unwrap();
    assert_eq!(
        routes.get("172.16.0.0/12"),
        Some(&m.outsider_tgw),
        "foreign route deleted"
    );

    // Detach the first VPC: its owned routes go, the other VPC's stay.
    let attachment = ec2
        .describe_transit_gateway_vpc_attachments()
        .send()
        .await
        .unwrap()
        .transit_gateway_vpc_attachments()
        .iter()
        .find(|a| a.vpc_id() == Some(vpc0.as_str()))
        .and_then(|a| a.transit_gateway_attachment_id())
        .unwrap()
        .to_owned();
    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .send()
        .await
        .unwrap();
    let response = invoke(
        &narrower,
        cloudtrail("DeleteTransitGatewayVpcAttachment", m.region, json!({})),
    )
    .await;
    match style {
        Style::Routes => {
            assert_plan(&response, 4, &[]);
            assert!(
                changes(&response)
                    .iter()
                    .all(|c| c["op"] == "delete" && c["region"] == m.region)
            );
        }
        Style::PrefixList => {
            // Its two tables' routes toward the list; the list stays (the
            // other VPC's tables reference it).
            assert_plan(&response, 0, &[("delete_route", 2)]);
            let mut want = vec![main0.clone(), custom0.clone()];
            want.sort();
            assert_eq!(step_tables(&response, "delete_route"), want);
        }
    }
    for rtb in [main0, custom0] {
        let routes = effective_vpc_routes(&ec2, rtb).await.unwrap();
        assert!(
            !routes.contains_key("10.0.0.0/8") && !routes.contains_key("192.168.0.0/16"),
            "{routes:?}"
        );
    }
    assert_eq!(
        vpc_routes(&ec2, custom0).await.unwrap().get("172.16.0.0/12"),
        Some(&m.outsider_tgw)
    );
    let other = effective_vpc_routes(&ec2, &m.vpcs[1].2).await.unwrap();
    assert_eq!(other.get("10.0.0.0/8"), Some(&m.tgw));
    assert_eq!(other.get("192.168.0.0/16"), Some(&m.tgw));
}

async fn untagged_tgw_and_ignored_tables_are_untouched(style: Style) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let m = &mesh[0];
    let ec2 = env.ec2(m.region);
    let ignored = create_route_table(&ec2, &m.vpcs[0].0, &[("lbgp:ignore", "true")])
        .await
        .unwrap();
    let app = app(&env, style, &[]);
    let response = invoke(&app, scheduled()).await;
    assert_first_plan(style, &response);
    assert_eq!(effective_vpc_routes(&ec2, &ignored).await.unwrap().len(), 1);
    assert!(
        response["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["resource"] == json!(ignored)),
        "{response:#}"
    );
    assert_converged(&env, style, &mesh).await;

    // Tagging a managed table lbgp:ignore=true later removes our routes from it.
    let custom = &m.vpcs[1].3;
    fixtures::tag(&ec2, custom, "lbgp:ignore", "true").await.unwrap();
    let response = invoke(&app, cloudtrail("CreateTags", m.region, json!({}))).await;
    match style {
        Style::Routes => {
            assert_plan(&response, 3, &[]);
            assert!(
                changes(&response)
                    .iter()
                    .all(|c| c["op"] == "delete" && c["route_table_id"] == json!(custom))
            );
        }
        Style::PrefixList => {
            assert_plan(&response, 0, &[("delete_route", 1)]);
            assert_eq!(step_tables(&response, "delete_route"), vec![custom.clone()]);
        }
    }
    assert_eq!(effective_vpc_routes(&ec2, custom).await.unwrap().len(), 1);

    // Untagging the TGW takes the whole region out of the mesh: 3 tables
    // still held its routes (in prefix-list style their list routes go,
    // then the list nothing references any more).
    fixtures::untag(&ec2, &m.tgw, "lbgp:mesh").await.unwrap();
    let response = invoke(&app, cloudtrail("DeleteTags", m.region, json!({}))).await;
    match style {
        Style::Routes => assert_plan(&response, 9, &[]),
        Style::PrefixList => assert_plan(&response, 0, &[("delete_route", 3), ("delete_list", 1)]),
    }
    for (_, _, main, custom) in &m.vpcs {
        for rtb in [main, custom] {
            assert_eq!(effective_vpc_routes(&ec2, rtb).await.unwrap().len(), 1, "{rtb}");
        }
    }
}

async fn prefix_inside_a_vpc_cidr_is_skipped_and_ipv6_applies_to_ipv6_vpcs(style: Style) {
    let env = TestEnv::new(&["eu-west-1"]).await.unwrap();
    let ec2 = env.ec2("eu-west-1");
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let (vpc, subnet, main) = create_vpc(&ec2, "10.1.0.0/16").await.unwrap();
    let attachment = attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
    let app = app(
        &env,
        style,
        &[("LBGP_PREFIXES", "10.0.0.0/8,10.1.0.0/16,10.1.128.0/17,fd00::/8")],
    );
    let response = invoke(&app, scheduled()).await;
    assert_one_prefix(style, &response, "10.0.0.0/8");
    let skipped: Vec<&str> = response["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["destination"].as_str())
        .collect();
    assert_eq!(skipped, vec!["10.1.0.0/16", "10.1.128.0/17"]);

    // With an IPv6 block, the IPv6 prefix applies too.
    ec2.associate_vpc_cidr_block()
        .vpc_id(&vpc)
        .amazon_provided_ipv6_cidr_block(true)
        .send()
        .await
        .unwrap();
    // …once the attachment carries IPv6: without Ipv6Support the TGW would
    // drop it (AWS: the attachment's IPv6 support is off by default).
    let response = invoke(&app, cloudtrail("AssociateVpcCidrBlock", "eu-west-1", json!({}))).await;
    assert_plan(&response, 0, &[]);
    ec2.modify_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&attachment)
        .options(
            aws_sdk_ec2::types::ModifyTransitGatewayVpcAttachmentRequestOptions::builder()
                .ipv6_support(aws_sdk_ec2::types::Ipv6SupportValue::Enable)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let response = invoke(
        &app,
        cloudtrail("ModifyTransitGatewayVpcAttachment", "eu-west-1", json!({})),
    )
    .await;
    assert_one_prefix(style, &response, "fd00::/8");
    let routes = effective_vpc_routes(&ec2, &main).await.unwrap();
    assert_eq!(routes.get("fd00::/8"), Some(&tgw), "{routes:?}");
    assert_eq!(routes.get("10.0.0.0/8"), Some(&tgw), "{routes:?}");
    assert_eq!(routes.get("10.1.0.0/16").map(String::as_str), Some("local"));
    assert_eq!(routes.get("10.1.128.0/17"), None, "{routes:?}");
}

/// One prefix installed: one route, or (prefix-list style) one new list of
/// its family holding just it and one route toward that list.
fn assert_one_prefix(style: Style, response: &Value, prefix: &str) {
    match style {
        Style::Routes => {
            assert_plan(response, 1, &[]);
            assert_eq!(changes(response)[0]["destination"], prefix);
        }
        Style::PrefixList => {
            assert_plan(response, 0, &[("create_list", 1), ("create_route", 1)]);
            assert_eq!(list_steps(response, "create_list")[0]["entries"], json!([prefix]));
        }
    }
}

async fn specific_mode_summarises_to_the_quota_without_covering_own_cidrs(style: Style) {
    let env = TestEnv::new(&["eu-west-1", "us-east-1"]).await.unwrap();
    let mut tables = Vec::new();
    for (region, base) in [("eu-west-1", 0), ("us-east-1", 8)] {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        for i in 0..4 {
            let (vpc, subnet, main) = create_vpc(&ec2, &format!("10.{}.0.0/16", base + i))
                .await
                .unwrap();
            attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
            tables.push((region, main, format!("10.{}.0.0/16", base + i), tgw.clone()));
        }
    }
    // 7 other VPCs per table, quota 3.
    let quota3 = app(
        &env,
        style,
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "3")],
    );
    let response = invoke(&quota3, scheduled()).await;
    assert!(response["errors"].as_array().unwrap().is_empty(), "{response:#}");
    for (region, rtb, own, tgw) in &tables {
        let ec2 = env.ec2(region);
        let routes = effective_vpc_routes(&ec2, rtb).await.unwrap();
        let ours: Vec<lbgp_core::Cidr> = routes
            .iter()
            .filter(|(_, t)| t == &tgw)
            .map(|(d, _)| d.parse().unwrap())
            .collect();
        assert!(!ours.is_empty() && ours.len() <= 3, "{rtb}: {routes:?}");
        let own: lbgp_core::Cidr = own.parse().unwrap();
        match style {
            Style::Routes => assert!(
                ours.iter().all(|p| !p.overlaps(&own)),
                "{rtb} covers its own CIDR: {ours:?}"
            ),
            // One list per region serves all its tables, so its entries
            // include (or summarise over) each table's own CIDR; what is
            // refused is an entry inside it (the local route is at least
            // as specific as any entry covering it, and wins). The quota
            // counts the list's max entries, which must fit it.
            Style::PrefixList => {
                assert!(
                    ours.iter().all(|p| !p.overlaps(&own) || p.contains(&own)),
                    "{rtb}: an entry lies inside its own CIDR: {ours:?}"
                );
                let list = list_of(&ec2, rtb).await;
                let max = ec2
                    .describe_managed_prefix_lists()
                    .prefix_list_ids(&list)
                    .send()
                    .await
                    .unwrap()
                    .prefix_lists()[0]
                    .max_entries()
                    .unwrap();
                assert!(max <= 3, "{list}: max entries {max} above LBGP_ROUTE_QUOTA=3");
                assert_eq!(routes.get(&own.to_string()).map(String::as_str), Some("local"));
            }
        }
        for (_, _, other, _) in tables.iter().filter(|t| &t.1 != rtb) {
            let other: lbgp_core::Cidr = other.parse().unwrap();
            assert!(
                ours.iter().any(|p| p.contains(&other)),
                "{rtb} misses {other}: {ours:?}"
            );
        }
    }
    // Quota 1 cannot avoid the own CIDR for a table in the middle: refused, others proceed.
    let strict = app(
        &env,
        style,
        &[("LBGP_INJECT_MODE", "specific"), ("LBGP_ROUTE_QUOTA", "1")],
    );
    let response = invoke(&strict, json!({"dry_run": true})).await;
    assert!(!response["errors"].as_array().unwrap().is_empty(), "{response:#}");
    assert!(
        response["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("LBGP_ROUTE_QUOTA=1")
    );
}

async fn malformed_and_foreign_events_write_nothing(style: Style) {
    let (env, _, app) = converged_env(style).await;
    for bad in [
        json!([]),
        json!("go"),
        json!({"dryrun": true}),
        json!({"dry_run": "yes"}),
        Value::Null,
    ] {
        let err = app.invoke(bad.clone()).await.expect_err("malformed accepted");
        assert_eq!(err.error_type, "lbgp.MalformedPayload.NonRetryable", "{bad}");
        assert!(
            err.error_message.contains("malformed invocation payload"),
            "{}",
            err.error_message
        );
    }
    let ignored = invoke(&app, cloudtrail("RunInstances", "eu-west-1", json!({}))).await;
    assert!(ignored["ignored"].is_string());
    let activate = app.invoke(json!({"group": "g", "activate": "i-1"})).await;
    assert!(activate.is_err());
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.mutating().is_empty(), "{:?}", calls.mutating());
    assert_eq!(calls.ec2_reads(), 0, "a refused event still read EC2");
}

async fn blast_radius_refuses_whole_plan_unless_forced(style: Style) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let app = app(&env, style, &[("LBGP_MAX_CHANGES", "10")]);
    env.emulator.reset_calls().await.unwrap();
    let refused = invoke(&app, scheduled()).await;
    assert_eq!(refused["applied"], json!(false), "{refused:#}");
    // In prefix-list style the limit weighs each list route and each entry:
    // 3 lists of 3 entries (1 + 3 each) and 12 routes toward them.
    let why = style.pick(
        "36 changes exceed LBGP_MAX_CHANGES=10",
        "0 route changes and 24 prefix-list changes (routes toward lists and entries) exceed LBGP_MAX_CHANGES=10",
    );
    assert!(refused["refused"].as_str().unwrap().contains(why), "{refused:#}");
    assert_plan(&refused, 0, &[]);
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty());
    assert_eq!(calls.count("sns", "Publish"), 1, "refusal not notified");
    let forced = invoke(&app, json!({"force": true})).await;
    assert_first_plan(style, &forced);
    assert_converged(&env, style, &mesh).await;
}

async fn the_binary_serves_invocations_through_the_runtime_api(style: Style) {
    let env = TestEnv::new(&REGIONS).await.unwrap();
    let mesh = build_mesh(&env).await;
    let binary = dev_binary("vpc-route-injector");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --bins` (make test does)",
        binary.display()
    );
    let mut vars = env.env(&[style.var()]);
    vars.insert("AWS_ENDPOINT_URL".into(), env.emulator.endpoint());
    vars.insert("AWS_REGION".into(), fixtures::HOME.into());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    // Debug logs (the SDK's too) fill far more than a pipe's 64 KiB: the
    // function must keep serving while they are written.
    vars.insert("RUST_LOG".into(), "debug".into());
    let mut lambda = LocalLambda::start(&binary, &vars).await.unwrap();
    vars.remove("RUST_LOG");
    let Outcome::Response(dry) = lambda.invoke(json!({"dry_run": true})).await.unwrap() else {
        panic!("dry run failed")
    };
    assert_first_plan(style, &dry);
    // A malformed payload is an error, and the process keeps serving.
    let Outcome::Error(err) = lambda.invoke(json!(42)).await.unwrap() else {
        panic!("malformed payload accepted")
    };
    assert_eq!(err["errorType"], "lbgp.MalformedPayload.NonRetryable");
    let Outcome::Response(applied) = lambda.invoke(scheduled()).await.unwrap() else {
        panic!("apply failed")
    };
    assert_eq!(changes(&applied), changes(&dry));
    assert_eq!(list_plan(&applied), list_plan(&dry));
    assert_converged(&env, style, &mesh).await;
    let logs = lambda.stop().await.unwrap();
    assert!(logs.len() > 64 * 1024, "only {} bytes of debug logs", logs.len());
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    match style {
        Style::Routes => {
            let decision = lines
                .iter()
                .find(|l| l["fields"]["message"] == "route changed")
                .expect("no JSON log line per change");
            assert!(
                decision["fields"]["route_table_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("rtb-")
            );
        }
        Style::PrefixList => {
            let applied: Vec<&Value> = lines
                .iter()
                .filter(|l| l["fields"]["message"] == "prefix list step applied")
                .collect();
            assert_eq!(applied.len(), 15, "one JSON log line per prefix-list step");
            assert!(
                applied
                    .iter()
                    .all(|l| REGIONS.contains(&l["fields"]["region"].as_str().unwrap()))
            );
        }
    }

    // A bad configuration does not crash-loop: each invocation says what is wrong.
    vars.insert("LBGP_PREFIXES".into(), "10.0.0.0/33".into());
    let mut broken = LocalLambda::start(&binary, &vars).await.unwrap();
    for _ in 0..2 {
        let Outcome::Error(err) = broken.invoke(scheduled()).await.unwrap() else {
            panic!("misconfigured function answered")
        };
        assert!(
            err["errorMessage"]
                .as_str()
                .unwrap()
                .contains("LBGP_PREFIXES: 10.0.0.0/33"),
            "{err}"
        );
    }
}
