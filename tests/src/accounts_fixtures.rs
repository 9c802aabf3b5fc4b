//! Member accounts in the emulator (issue #18): a member role created in
//! another account (moto keys its backends by account; `x-moto-account-id`
//! is moto's own switch, used here for set-up only, as an administrator
//! deploying `member-role.yaml` would), a session in that account through
//! `sts:AssumeRole` as lbgp makes it, and a home TGW shared through RAM.

use anyhow::{Context, bail};
use aws_config::SdkConfig;
use aws_sdk_ec2::Client as Ec2Client;
use lbgp_core::accounts::{AccountId, AccountsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::TestEnv;

/// moto's default account: the home account of every test.
pub const HOME_ACCOUNT: &str = "123456789012";

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One raw call to the emulator as `account` (set-up only).
async fn raw(
    env: &TestEnv,
    (service, region, account): (&str, &str, &str),
    (path, content_type, body): (&str, &str, &str),
) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", env.emulator.port())).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-moto-account-id: {account}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200") {
        bail!("{service} {path} as {account}: {text}");
    }
    Ok(text)
}

/// One IAM call about `lbgp-member` in `account` (query API).
async fn member_role_call(
    env: &TestEnv,
    account: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut pairs = vec![
        ("Action", action),
        ("Version", "2010-05-08"),
        ("RoleName", lbgp_core::accounts::DEFAULT_MEMBER_ROLE),
    ];
    pairs.extend_from_slice(extra);
    raw(
        env,
        ("iam", "us-east-1", account),
        ("/", "application/x-www-form-urlencoded", &form(&pairs)),
    )
    .await
    .map(|_| ())
}

/// Creates `lbgp-member` in `account`, trusting the home account (what
/// `member-role.yaml` deploys).
pub async fn create_member_role(env: &TestEnv, account: &str) -> anyhow::Result<()> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{HOME_ACCOUNT}:root")},
                        "Action": "sts:AssumeRole"}]
    })
    .to_string();
    member_role_call(
        env,
        account,
        "CreateRole",
        &[("AssumeRolePolicyDocument", &trust)],
    )
    .await
}

/// Narrows `lbgp-member`'s trust in `account` to sessions named `session`
/// (`sts:RoleSessionName`), as a security team pinning who may assume it.
pub async fn pin_member_session(env: &TestEnv, account: &str, session: &str) -> anyhow::Result<()> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{HOME_ACCOUNT}:root")},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:RoleSessionName": session}}}]
    })
    .to_string();
    member_role_call(
        env,
        account,
        "UpdateAssumeRolePolicy",
        &[("PolicyDocument", &trust)],
    )
    .await
}

/// Deletes `lbgp-member` in `account`: its role can no longer be assumed.
pub async fn delete_member_role(env: &TestEnv, account: &str) -> anyhow::Result<()> {
    member_role_call(env, account, "DeleteRole", &[]).await
}

/// A session in `account` through its member role, as lbgp's.
pub async fn member_sdk(env: &TestEnv, account: &str) -> anyhow::Result<SdkConfig> {
    let id = AccountId::new(account).context("account id")?;
    Ok(lbgp_aws::accounts::member_config(&env.sdk, &AccountsConfig::default(), &id, "lbgp-test").await)
}

/// EC2 of `sdk`'s account in `region`.
pub fn ec2_of(sdk: &SdkConfig, region: &str) -> Ec2Client {
    Ec2Client::from_conf(
        aws_sdk_ec2::config::Builder::from(sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
            .build(),
    )
}

/// Shares the home account's `tgw` in `region` with `account` through RAM.
pub async fn share_tgw(env: &TestEnv, region: &str, tgw: &str, account: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "name": format!("share-{tgw}"),
        "resourceArns": [format!("arn:aws:ec2:{region}:{HOME_ACCOUNT}:transit-gateway/{tgw}")],
        "principals": [account],
    })
    .to_string();
    raw(
        env,
        ("ram", region, HOME_ACCOUNT),
        ("/createresourceshare", "application/json", &body),
    )
    .await
    .map(|_| ())
}

/// Accepts, in the TGW owner's (home) account, a member VPC's attachment.
pub async fn accept_attachment(home: &Ec2Client, attachment: &str) -> anyhow::Result<()> {
    home.accept_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(attachment)
        .send()
        .await?;
    Ok(())
}
