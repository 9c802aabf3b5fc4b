//! Cross-account meshes (issue #18) against the emulator: member sessions
//! through `sts:AssumeRole` (moto keys its backends by the account of the
//! assumed credentials), a member whose role cannot be assumed reported
//! and not fatal, and the ledger of today's deployments read unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lbgp_aws::accounts::{Members, session_name};
use lbgp_core::accounts::AccountId;
use lbgp_tests::events::scheduled;
use lbgp_tests::fixtures::{TestEnv, attach, create_tgw, create_vpc, vpc_routes};
use serde_json::{Value, json};
use vpc_route_injector::{App, Injector};

/// moto's default account: the home account of every test.
const HOME: &str = "123456789012";
const APP: &str = "222222222222";
const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

fn acct(id: &str) -> AccountId {
    AccountId::new(id).unwrap()
}

async fn connect(env: &TestEnv, accounts: &str) -> Members {
    let cfg = env
        .config(&[("LBGP_ACCOUNTS", accounts)])
        .common()
        .unwrap()
        .accounts;
    let membership = cfg.membership(&acct(HOME), &[]);
    Members::connect(&env.sdk, &cfg, &membership, &session_name("vpc-route-injector")).await
}

#[tokio::test]
async fn a_member_session_reads_and_writes_the_member_account_only() {
    let env = TestEnv::new(&["us-east-1"]).await.unwrap();
    let members = connect(&env, APP).await;
    assert!(members.unreadable.is_empty(), "{:?}", members.unreadable);
    let config = members.configs.get(&acct(APP)).expect("app account configured");
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
    // STS throttles every call (after the SDK's retries): the app
    // account's role cannot be assumed this run.
    env.emulator
        .set_faults(json!({"throttle_p": 1.0, "services": ["sts"]}))
        .await
        .unwrap();
    let members = connect(&env, &format!("{APP},333333333333")).await;
    env.emulator.clear_faults().await.unwrap();
    assert!(members.configs.is_empty());
    assert_eq!(
        members
            .unreadable
            .keys()
            .map(AccountId::as_str)
            .collect::<Vec<_>>(),
        vec![APP, "333333333333"]
    );
    for why in members.unreadable.values() {
        assert!(why.contains("AssumeRole"), "{why}");
        assert!(
            why.contains("Throttling") || why.contains("Rate exceeded"),
            "{why}"
        );
    }
    // The next start, STS answering again, connects both.
    let members = connect(&env, &format!("{APP},333333333333")).await;
    assert_eq!(members.configs.len(), 2, "{:?}", members.unreadable);
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
