//! Cross-account meshes (issue #18) against the emulator: one mesh of two
//! regions and three accounts converging for all three functions, member sessions
//! through `sts:AssumeRole` (moto keys its backends by the account of the
//! assumed credentials), a member whose role cannot be assumed reported
//! and not fatal, and the ledger of today's deployments read unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lbgp_aws::accounts::{check, member_config, session_name};
use lbgp_core::accounts::AccountId;
use lbgp_tests::accounts_fixtures::{
    accept_attachment, create_member_role, delete_member_role, ec2_of, member_sdk, pin_member_session,
    share_tgw,
};
use lbgp_tests::cli::lbgpctl_with;
use lbgp_tests::events::scheduled;
use lbgp_tests::failover_fixtures::{launch_router, next_hop, route_to_eni, router_vpc, stop};
use lbgp_tests::fixtures::{
    TestEnv, attach, create_tgw, create_vpc, peer, tgw_route_tables, tgw_static_routes, vpc_routes,
};
use serde_json::{Value, json};
use vpc_route_injector::{App, Injector};

/// moto's default account: the home account of every test.
const HOME: &str = "123456789012";
const APP: &str = "222222222222";
const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

fn acct(id: &str) -> AccountId {
    AccountId::new(id).unwrap()
}

/// Every member but the home account, one after the other as the
/// functions do: its SDK configuration once its role is assumed and the
/// credentials checked to be that account's, or why not.
async fn connect(
    env: &TestEnv,
    accounts: &str,
) -> BTreeMap<AccountId, Result<aws_config::SdkConfig, String>> {
    let cfg = env
        .config(&[("LBGP_ACCOUNTS", accounts)])
        .common()
        .unwrap()
        .accounts;
    let membership = cfg.membership(&acct(HOME), &[]);
    let session = session_name("vpc-route-injector");
    let mut members = BTreeMap::new();
    for account in membership.others() {
        let config = member_config(&env.sdk, &cfg, account, &session).await;
        let checked = check(&config, account).await;
        members.insert(
            account.clone(),
            checked
                .map(|()| config)
                // The whole chain, as the functions log it.
                .map_err(|e| format!("{:#}", anyhow::Error::from(e))),
        );
    }
    members
}

#[tokio::test]
async fn a_member_session_reads_and_writes_the_member_account_only() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    create_member_role(&env, APP).await.unwrap();
    let members = connect(&env, APP).await;
    assert!(members.values().all(Result::is_ok), "{members:?}");
    let config = members[&acct(APP)].as_ref().expect("app account configured");
    let app_ec2 = aws_sdk_ec2::Client::new(config);
    let (vpc, _, rtb) = create_vpc(&app_ec2, "10.50.0.0/16").await.unwrap();

    // The VPC is the app account's: owned by it, invisible from home.
    let in_app = app_ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap();
    assert_eq!(in_app.vpcs()[0].owner_id(), Some(APP));
    let home_vpcs = env.ec2("us-east-1").describe_vpcs().send().await.unwrap();
    assert!(
        home_vpcs.vpcs().iter().all(|v| v.vpc_id() != Some(vpc.as_str())),
        "the app account's VPC shows in the home account"
    );
    assert_eq!(vpc_routes(&app_ec2, &rtb).await.unwrap().len(), 1);

    // Credentials are cached: more calls and clients in the account, in
    // another region too, assume the role no more often.
    let calls = env.emulator.calls().await.unwrap();
    let assumed = calls.count("sts", "AssumeRole");
    let eu = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .region(aws_sdk_ec2::config::Region::new("eu-west-1"))
            .build(),
    );
    for _ in 0..5 {
        app_ec2.describe_route_tables().send().await.unwrap();
        eu.describe_vpcs().send().await.unwrap();
    }
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.count("sts", "AssumeRole"),
        assumed,
        "AssumeRole again within the session"
    );
    // One for the start-up check, one for the cached session.
    assert_eq!(assumed, 2, "AssumeRole {assumed} times");
}

#[tokio::test]
async fn a_member_whose_role_cannot_be_assumed_is_reported_not_fatal() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    for account in [APP, "333333333333"] {
        create_member_role(&env, account).await.unwrap();
    }
    // STS throttles every call (after the SDK's retries): the app
    // account's role cannot be assumed this run.
    env.emulator
        .set_faults(json!({"throttle_p": 1.0, "services": ["sts"]}))
        .await
        .unwrap();
    let members = connect(&env, &format!("{APP},333333333333")).await;
    env.emulator.clear_faults().await.unwrap();
    let unreadable: BTreeMap<&str, &String> = members
        .iter()
        .filter_map(|(account, r)| r.as_ref().err().map(|why| (account.as_str(), why)))
        .collect();
    assert_eq!(
        unreadable.keys().copied().collect::<Vec<_>>(),
        vec![APP, "333333333333"]
    );
    for why in unreadable.values() {
        assert!(why.contains("AssumeRole"), "{why}");
        assert!(
            why.contains("Throttling") || why.contains("Rate exceeded"),
            "{why}"
        );
    }
    // The next start, STS answering again, connects both.
    let members = connect(&env, &format!("{APP},333333333333")).await;
    assert_eq!(members.values().filter(|r| r.is_ok()).count(), 2, "{members:?}");
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A ledger item exactly as deployments before issue #18 wrote it
/// (`pk = ledger#<function>#<mesh>#<region>`, `sk = <table>#<destination>`,
/// no account attribute).
fn old_format_item(rtb: &str, destination: &str, tgw: &str, at: u64) -> BTreeMap<String, AttributeValue> {
    BTreeMap::from([
        ("pk".to_owned(), s("ledger#vpc-route-injector#prod#us-east-1")),
        ("sk".to_owned(), s(&format!("{rtb}#{destination}"))),
        ("table_kind".to_owned(), s("vpc")),
        ("route_table_id".to_owned(), s(rtb)),
        ("destination".to_owned(), s(destination)),
        ("target_type".to_owned(), s("transit_gateway")),
        ("target_id".to_owned(), s(tgw)),
        ("status".to_owned(), s("owned")),
        ("updated_at".to_owned(), AttributeValue::N(at.to_string())),
        ("fence".to_owned(), AttributeValue::N("1".to_owned())),
    ])
}

async fn ledger_items(env: &TestEnv) -> Vec<BTreeMap<String, AttributeValue>> {
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let out = ddb.scan().table_name(&env.table).send().await.unwrap();
    let mut items: Vec<BTreeMap<String, AttributeValue>> = out
        .items()
        .iter()
        .filter(|i| matches!(i.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("ledger#")))
        .map(|i| i.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .collect();
    items.sort_by_key(|i| format!("{:?}", i.get("sk")));
    items
}

fn injector(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    let config = env.config(extra).injector().unwrap();
    let aws = env.aws(&config.common).unwrap();
    App::new(Injector { config }, aws)
}

#[tokio::test]
async fn a_ledger_in_todays_format_converges_with_zero_writes() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    let ec2 = env.ec2("us-east-1");
    let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
    let (vpc, subnet, rtb) = create_vpc(&ec2, "10.1.0.0/16").await.unwrap();
    attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
    // The routes an earlier release installed, and its ledger.
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let written = 1_789_000_000;
    for p in RFC1918 {
        ec2.create_route()
            .route_table_id(&rtb)
            .destination_cidr_block(p)
            .transit_gateway_id(&tgw)
            .send()
            .await
            .unwrap();
        ddb.put_item()
            .table_name(&env.table)
            .set_item(Some(
                old_format_item(&rtb, p, &tgw, written).into_iter().collect(),
            ))
            .send()
            .await
            .unwrap();
    }
    let before = ledger_items(&env).await;
    assert_eq!(before.len(), 3);
    env.clock.advance(120);
    env.emulator.reset_calls().await.unwrap();

    // Today's settings (no LBGP_ACCOUNTS): nothing to do, nothing written.
    let app = injector(&env, &[]);
    let response: Value = serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap();
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.ec2_mutating().is_empty(),
        "{:?}: {response}",
        calls.ec2_mutating()
    );
    assert_eq!(response["changes"], json!([]), "{response}");
    for field in ["conflicts", "errors"] {
        assert!(
            response[field].as_array().is_none_or(Vec::is_empty),
            "{field}: {response}"
        );
    }
    assert_eq!(ledger_items(&env).await, before, "the ledger was rewritten");

    // The same with LBGP_ACCOUNTS listing another account: the home
    // account's old items are still its own.
    env.emulator.reset_calls().await.unwrap();
    let app = injector(&env, &[("LBGP_ACCOUNTS", APP)]);
    let response: Value = serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap();
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty(), "{response}");
    assert_eq!(ledger_items(&env).await, before, "the ledger was rewritten");

    // Those items are recognised as lbgp's (a foreign route is never
    // deleted): narrowing the prefixes withdraws exactly the dropped one.
    env.emulator.reset_calls().await.unwrap();
    let app = injector(&env, &[("LBGP_PREFIXES", "10.0.0.0/8,172.16.0.0/12")]);
    let response: Value = serde_json::to_value(app.invoke(scheduled()).await.unwrap()).unwrap();
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("DeleteRoute".to_owned(), 1)]),
        "{response}"
    );
    let routes = vpc_routes(&ec2, &rtb).await.unwrap();
    assert!(!routes.contains_key("192.168.0.0/16"), "{routes:?}");
    assert_eq!(ledger_items(&env).await.len(), 2);
}

// ------------------------------------------------ a mesh of three accounts

const OTHER: &str = "333333333333";

fn propagator(env: &TestEnv, extra: &[(&str, &str)]) -> tgw_route_propagator::App {
    let config = env.config(extra).propagator().unwrap();
    let aws = env.aws(&config.common).unwrap();
    tgw_route_propagator::App::new(tgw_route_propagator::Propagator { config }, aws)
}

fn watcher(env: &TestEnv, extra: &[(&str, &str)]) -> failover_watcher::App {
    let config = env.config(extra).watcher().unwrap();
    let aws = env.aws(&config.common).unwrap();
    failover_watcher::App::new(failover_watcher::Watcher { config }, aws)
}

async fn run(app_response: Result<lbgp_core::report::InvokeResponse, lambda_runtime::Diagnostic>) -> Value {
    serde_json::to_value(app_response.unwrap()).unwrap()
}

/// One VPC of `account` in `region`, attached to the home TGW there
/// (shared through RAM, the attachment accepted by the home account):
/// (vpc, main route table).
async fn member_vpc(env: &TestEnv, account: &str, region: &str, tgw: &str, cidr: &str) -> (String, String) {
    share_tgw(env, region, tgw, account).await.unwrap();
    let ec2 = ec2_of(&member_sdk(env, account).await.unwrap(), region);
    let (vpc, subnet, rtb) = create_vpc(&ec2, cidr).await.unwrap();
    let attachment = attach(&ec2, tgw, &vpc, &subnet).await.unwrap();
    accept_attachment(&env.ec2(region), &attachment).await.unwrap();
    (vpc, rtb)
}

/// TGWs in the home (network) account, one per region, peered; a home
/// VPC in us-east-1; an app account's VPC in us-east-1 and another app
/// account's in eu-west-1, each attached to the shared TGW of its region;
/// a router pair in the first app account (a VPN VPC of its own). The
/// injector and L-BGP converge in all three accounts, the watcher fails
/// the pair over there, and a second run of all three functions writes
/// nothing; then one app account's role goes: it is reported and its
/// tables are frozen while the others converge.
#[tokio::test]
async fn a_mesh_of_three_accounts_converges_and_a_denied_member_is_frozen() {
    let env = TestEnv::new(&["us-east-1", "eu-west-1"]).await.unwrap();
    for account in [APP, OTHER] {
        create_member_role(&env, account).await.unwrap();
    }
    let (us, eu) = (env.ec2("us-east-1"), env.ec2("eu-west-1"));
    let tgw_us = create_tgw(&us, Some("prod")).await.unwrap();
    let tgw_eu = create_tgw(&eu, Some("prod")).await.unwrap();
    peer(&env, ("us-east-1", &tgw_us), ("eu-west-1", &tgw_eu), true)
        .await
        .unwrap();
    let (home_vpc, home_subnet, home_rtb) = create_vpc(&us, "10.1.0.0/16").await.unwrap();
    attach(&us, &tgw_us, &home_vpc, &home_subnet).await.unwrap();
    let (_, app_rtb) = member_vpc(&env, APP, "us-east-1", &tgw_us, "10.50.0.0/16").await;
    let (_, other_rtb) = member_vpc(&env, OTHER, "eu-west-1", &tgw_eu, "10.60.0.0/16").await;
    let app_ec2 = ec2_of(&member_sdk(&env, APP).await.unwrap(), "us-east-1");
    let other_ec2 = ec2_of(&member_sdk(&env, OTHER).await.unwrap(), "eu-west-1");
    let vpn = router_vpc(&app_ec2, "us-east-1", "10.70.0.0/16").await.unwrap();
    let primary = launch_router(&app_ec2, &vpn.subnets[0], "vpn", Some(20), false)
        .await
        .unwrap();
    let standby = launch_router(&app_ec2, &vpn.subnets[1], "vpn", Some(10), false)
        .await
        .unwrap();
    for rtb in &vpn.tables {
        route_to_eni(&app_ec2, rtb, "192.168.100.0/24", &primary.eni)
            .await
            .unwrap();
    }

    let members = format!("{APP},{OTHER}");
    let settings = [("LBGP_ACCOUNTS", members.as_str())];
    let injector_app = injector(&env, &settings);
    let response = run(injector_app.invoke(scheduled()).await).await;
    assert_eq!(response["errors"], json!([]), "{response}");
    for (ec2, rtb, tgw) in [
        (&us, &home_rtb, &tgw_us),
        (&app_ec2, &app_rtb, &tgw_us),
        (&other_ec2, &other_rtb, &tgw_eu),
    ] {
        let routes = vpc_routes(ec2, rtb).await.unwrap();
        for p in RFC1918 {
            assert_eq!(routes.get(p), Some(tgw), "{rtb}: {routes:?}");
        }
    }
    // Every change names the account of its table.
    let accounts: BTreeMap<String, String> = response["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["route_table_id"].as_str().unwrap().to_owned(),
                c["account"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        BTreeMap::from([
            (home_rtb.clone(), HOME.to_owned()),
            (app_rtb.clone(), APP.to_owned()),
            (other_rtb.clone(), OTHER.to_owned()),
        ])
    );

    // L-BGP: each TGW learns the other region's VPCs, whoever owns them.
    let propagator_app = propagator(&env, &settings);
    let response = run(propagator_app.invoke(scheduled()).await).await;
    assert_eq!(response["errors"], json!([]), "{response}");
    let rtb_us = tgw_route_tables(&us, &tgw_us).await.unwrap()[0].clone();
    let rtb_eu = tgw_route_tables(&eu, &tgw_eu).await.unwrap()[0].clone();
    let statics_us = tgw_static_routes(&us, &rtb_us).await.unwrap();
    let statics_eu = tgw_static_routes(&eu, &rtb_eu).await.unwrap();
    assert_eq!(
        statics_us.keys().collect::<Vec<_>>(),
        vec!["10.60.0.0/16"],
        "{statics_us:?}"
    );
    assert_eq!(
        statics_eu.keys().collect::<Vec<_>>(),
        vec!["10.1.0.0/16", "10.50.0.0/16"],
        "{statics_eu:?}"
    );

    // The watcher finds the router pair in the app account (the home
    // account has no instance at all): healthy, nothing moves; the primary
    // stops, both tables move to the standby, there.
    let watcher_app = watcher(&env, &settings);
    let response = run(watcher_app.invoke(scheduled()).await).await;
    assert_eq!(response["changes"], json!([]), "{response}");
    assert_eq!(response["groups"][0]["account"], APP, "{response}");
    stop(&app_ec2, &primary.instance).await.unwrap();
    env.emulator.reset_calls().await.unwrap();
    let response = run(watcher_app.invoke(scheduled()).await).await;
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(
        calls.ec2_mutating(),
        BTreeMap::from([("ReplaceRoute".to_owned(), 2)]),
        "{response}"
    );
    for rtb in &vpn.tables {
        let hop = next_hop(&app_ec2, rtb, "192.168.100.0/24")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hop.eni.as_deref(), Some(standby.eni.as_str()), "{rtb}");
    }
    for c in response["changes"].as_array().unwrap() {
        assert_eq!(c["account"], APP, "{response}");
    }

    // A second run of each of the three writes nothing anywhere.
    env.emulator.reset_calls().await.unwrap();
    let again = run(injector_app.invoke(scheduled()).await).await;
    let again_l = run(propagator_app.invoke(scheduled()).await).await;
    let again_w = run(watcher_app.invoke(scheduled()).await).await;
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        calls.ec2_mutating().is_empty(),
        "{:?}\n{again}\n{again_l}\n{again_w}",
        calls.ec2_mutating()
    );

    // The other app account's role is deleted; then a prefix is dropped.
    // Its table keeps every route (nothing is deleted because of what
    // could not be read), it is reported, and the rest converges.
    delete_member_role(&env, OTHER).await.unwrap();
    let injector_app = injector(
        &env,
        &[
            ("LBGP_ACCOUNTS", &members),
            ("LBGP_PREFIXES", "10.0.0.0/8,172.16.0.0/12"),
        ],
    );
    let response = run(injector_app.invoke(scheduled()).await).await;
    let errors = response["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["account"] == OTHER && e["error"].as_str().unwrap().contains("AccessDenied")),
        "{response}"
    );
    for (ec2, rtb, gone) in [(&us, &home_rtb, true), (&app_ec2, &app_rtb, true)] {
        let routes = vpc_routes(ec2, rtb).await.unwrap();
        assert_eq!(!routes.contains_key("192.168.0.0/16"), gone, "{rtb}: {routes:?}");
    }
    // (Read through a session made before the role went: its credentials
    // are still valid, as AWS's are until they expire.)
    let routes = vpc_routes(&other_ec2, &other_rtb).await.unwrap();
    for p in RFC1918 {
        assert_eq!(routes.get(p), Some(&tgw_eu), "frozen table changed: {routes:?}");
    }
    let deleted: Vec<&str> = response["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["route_table_id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 2, "{response}");
    assert!(!deleted.contains(&other_rtb.as_str()), "{response}");

    // L-BGP with that account unreadable: its region's origins freeze
    // (10.60.0.0/16 stays in us-east-1), nothing is withdrawn.
    let propagator_app = propagator(&env, &settings);
    let response = run(propagator_app.invoke(scheduled()).await).await;
    assert!(
        response["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["error"].as_str().unwrap().contains(OTHER)),
        "{response}"
    );
    let statics_us = tgw_static_routes(&us, &rtb_us).await.unwrap();
    assert!(statics_us.contains_key("10.60.0.0/16"), "{statics_us:?}");

    // The watcher likewise: the unreadable account is reported, the pair
    // in the readable one is still watched, and nothing moves.
    env.emulator.reset_calls().await.unwrap();
    let response = run(watcher(&env, &settings).invoke(scheduled()).await).await;
    let calls = env.emulator.calls().await.unwrap();
    assert!(
        response["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["account"] == OTHER),
        "{response}"
    );
    assert_eq!(response["groups"][0]["account"], APP, "{response}");
    assert!(calls.ec2_mutating().is_empty(), "{response}");
}

/// Member sessions are named after the function (`lbgp-<function>`, as the
/// README says): a member role whose trust pins that session name is
/// assumed, and one pinned to another function's name is not (reported,
/// its table frozen).
#[tokio::test]
async fn member_sessions_carry_the_functions_name() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    create_member_role(&env, APP).await.unwrap();
    let us = env.ec2("us-east-1");
    let tgw = create_tgw(&us, Some("prod")).await.unwrap();
    let (_, app_rtb) = member_vpc(&env, APP, "us-east-1", &tgw, "10.50.0.0/16").await;
    let app_ec2 = ec2_of(&member_sdk(&env, APP).await.unwrap(), "us-east-1");
    let settings = [("LBGP_ACCOUNTS", APP)];
    // The test's own session, assumed before the trust is narrowed (its
    // credentials are cached for the rest of the test).
    assert_eq!(vpc_routes(&app_ec2, &app_rtb).await.unwrap().len(), 1);

    pin_member_session(&env, APP, "lbgp-tgw-route-propagator")
        .await
        .unwrap();
    let response = run(injector(&env, &settings).invoke(scheduled()).await).await;
    let errors = response["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["account"] == APP),
        "a session the trust does not allow was assumed: {response}"
    );
    assert!(
        !vpc_routes(&app_ec2, &app_rtb)
            .await
            .unwrap()
            .contains_key("10.0.0.0/8")
    );

    pin_member_session(&env, APP, &session_name("vpc-route-injector"))
        .await
        .unwrap();
    let response = run(injector(&env, &settings).invoke(scheduled()).await).await;
    assert_eq!(response["errors"], json!([]), "{response}");
    let routes = vpc_routes(&app_ec2, &app_rtb).await.unwrap();
    for p in RFC1918 {
        assert_eq!(routes.get(p), Some(&tgw), "{app_rtb}: {routes:?}");
    }
}

/// `lbgpctl accounts`: the operator's check, before a function freezes an
/// account for it, that every member's role can be assumed: each member
/// listed with its role and why it cannot be reached, exit 1 until all can,
/// and nothing written (STS's calls only).
#[tokio::test]
async fn lbgpctl_accounts_reports_each_members_role_and_writes_nothing() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    create_member_role(&env, APP).await.unwrap();
    let members = format!("{APP},{OTHER}");
    env.emulator.reset_calls().await.unwrap();
    let run = lbgpctl_with(
        &env,
        &[("LBGP_ACCOUNTS", &members)],
        &["accounts", "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 1, "one member cannot be reached: {run:#?}");
    let found = run.json();
    assert_eq!(found["home"], HOME);
    let caller = found["checked_as"].as_str().unwrap();
    assert!(caller.contains(&format!("::{HOME}:")), "{caller}");
    let by_account: BTreeMap<&str, &Value> = found["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["account"].as_str().unwrap(), m))
        .collect();
    assert_eq!(
        by_account.keys().copied().collect::<Vec<_>>(),
        vec![HOME, APP, OTHER]
    );
    assert_eq!(by_account[HOME]["reachable"], true);
    assert_eq!(by_account[APP]["reachable"], true, "{found:#}");
    assert_eq!(
        by_account[APP]["role_arn"],
        format!("arn:aws:iam::{APP}:role/lbgp-member")
    );
    assert_eq!(by_account[OTHER]["reachable"], false, "{found:#}");
    let why = by_account[OTHER]["error"].as_str().unwrap();
    assert!(why.contains("AssumeRole"), "{why}");
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.mutating().is_empty(), "{calls:?}");
    assert_eq!(
        calls.0.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["sts"],
        "only STS is called: {calls:?}"
    );
    assert_eq!(
        calls.count("sts", "GetCallerIdentity"),
        1,
        "whose credentials were checked is asked once, with the home account: {calls:?}"
    );

    // The role created there, the table says so and the exit is 0.
    create_member_role(&env, OTHER).await.unwrap();
    let run = lbgpctl_with(&env, &[("LBGP_ACCOUNTS", &members)], &["accounts"]).await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout.contains(OTHER) && !run.stdout.contains("NOT REACHABLE"),
        "{}",
        run.stdout
    );
}
