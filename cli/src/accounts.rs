//! `lbgpctl accounts`: can the functions reach every member account? The
//! members as the functions find them (`LBGP_ACCOUNTS`: listed, or with
//! `discover` the owners of the VPCs attached to the mesh TGWs), and for
//! each one other than the home account, `LBGP_MEMBER_ROLE` assumed there
//! once (with `LBGP_EXTERNAL_ID`) and the credentials checked to be that
//! account's. Nothing is written; the only calls are STS's (and, for
//! `discover`, the mesh's TGW and attachment reads).
//!
//! It checks the credentials `lbgpctl` runs with. The member role trusts
//! the three function roles only (`member-role.yaml`), so what the
//! functions can reach is checked by running it as one of them (a profile
//! whose `role_arn` is the injector's role); the output names the caller.

use std::sync::Arc;

use aws_config::SdkConfig;
use lbgp_aws::accounts::{check, member_config, partition, session_name};
use lbgp_aws::context::Aws;
use lbgp_aws::store::SystemClock;
use lbgp_core::Region;
use serde::Serialize;

use crate::config::Settings;
use crate::{Output, Verdict};

/// One member account, checked.
#[derive(Debug, Serialize)]
struct Member {
    account: String,
    /// The role assumed there (`None` for the home account: its own
    /// credentials).
    role_arn: Option<String>,
    /// True when the role was assumed and the credentials are the
    /// account's (always true for the home account).
    reachable: bool,
    /// Why not, when not.
    error: Option<String>,
}

/// What `accounts` found.
#[derive(Debug, Serialize)]
struct Found {
    home: String,
    /// Whose credentials were checked (`GetCallerIdentity`'s ARN).
    checked_as: String,
    cross_account: bool,
    members: Vec<Member>,
}

/// Checks every member account: 0 when each one is reachable, 1 when one
/// is not (the functions freeze its tables until it is).
pub async fn accounts(settings: &Settings, sdk: &SdkConfig, output: Output) -> anyhow::Result<Verdict> {
    let common = settings.env().common()?;
    let aws = Aws::new(sdk, &common, Arc::new(SystemClock))?;
    let (home, others) = lbgp_runtime::accounts::other_members(&aws, &common.mesh, &common.regions).await?;
    // The identity `other_members` already asked for the home account.
    let checked_as = aws.members.caller_arn().await?;
    let config = &common.accounts;
    let home_partition = sdk
        .region()
        .and_then(|r| Region::new(r.as_ref()))
        .map_or("aws", |r| partition(&r));
    // The same session name scheme as the functions', so a trust policy
    // pinning `sts:RoleSessionName` to `lbgp-*` admits the check too.
    let session = session_name("lbgpctl");
    let mut members = vec![Member {
        account: home.to_string(),
        role_arn: None,
        reachable: true,
        error: None,
    }];
    // One account after the other, as the functions assume them (STS
    // throttles bursts).
    for account in &others {
        let member = member_config(sdk, config, account, &session).await;
        let error = check(&member, account)
            .await
            .err()
            .map(|e| lbgp_runtime::accounts::why_unreadable(&e, &config.role));
        members.push(Member {
            account: account.to_string(),
            role_arn: Some(config.role_arn(home_partition, account)),
            reachable: error.is_none(),
            error,
        });
    }
    let found = Found {
        home: home.to_string(),
        checked_as,
        cross_account: config.is_cross_account(),
        members,
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Output::Table => print(&found),
    }
    Ok(if found.members.iter().all(|m| m.reachable) {
        Verdict::Converged
    } else {
        Verdict::Failed
    })
}

fn print(found: &Found) {
    crate::render::heading(&format!("Member accounts, as {}", found.checked_as));
    if !found.cross_account {
        println!(
            "  LBGP_ACCOUNTS is unset: the functions manage the home account {} only.",
            found.home
        );
    }
    let rows: Vec<Vec<String>> = found
        .members
        .iter()
        .map(|m| {
            vec![
                m.account.clone(),
                m.role_arn
                    .clone()
                    .unwrap_or_else(|| "(home: its own credentials)".to_owned()),
                match &m.error {
                    None => "reachable".to_owned(),
                    Some(why) => format!("NOT REACHABLE: {why}"),
                },
            ]
        })
        .collect();
    crate::render::table(&["account", "role", "state"], &rows);
    let unreachable = found.members.iter().filter(|m| !m.reachable).count();
    if unreachable > 0 {
        println!(
            "\n{unreachable} member account(s) cannot be reached: the functions leave their tables as they are \
             until they can (and LBGP_EXTERNAL_ID, when set, must match the role's trust policy). \
             The role trusts the three function roles only: run lbgpctl as one of them to check what \
             the functions reach."
        );
    }
}
