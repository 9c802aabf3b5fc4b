//! Member accounts (issue #18): one SDK configuration per member account
//! other than the home account, whose credentials come from
//! `sts:AssumeRole` of `LBGP_MEMBER_ROLE` in that account.
//!
//! aws-config's [`AssumeRoleProvider`] makes the calls (it ships with
//! aws-config: no extra feature); it does not cache by itself, so each
//! member's configuration carries its own lazy identity cache, shared by
//! every client built from it (all regions of that account): one session
//! per account, refreshed before the credentials expire.
//!
//! An account whose role cannot be assumed (denied, missing, throttled) is
//! never a failed start: what could not be read there is reported with why,
//! the core's `accounts::guard` freezes its tables and the rest converges.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use lbgp_core::Region;
use lbgp_core::accounts::{AccountId, AccountsConfig, Membership};

use crate::Error;
use crate::context::RegionalClients;
use crate::telemetry::Throttles;
use lbgp_core::config::CommonConfig;

/// The partition of a region, for role ARNs: `aws-cn` in China,
/// `aws-us-gov` in GovCloud, `aws` elsewhere.
pub fn partition(region: &Region) -> &'static str {
    let name = region.as_str();
    if name.starts_with("cn-") {
        "aws-cn"
    } else if name.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The STS session name of `function` (what CloudTrail shows in every
/// member account): `lbgp-<function>`, cut to STS's 64 characters.
pub fn session_name(function: &str) -> String {
    let mut name: String = format!("lbgp-{function}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// The SDK configuration of `account`: the home configuration (region,
/// retries, timeouts, endpoint) with credentials from assuming the member
/// role there, cached and refreshed. Makes no call: the first use does.
pub async fn member_config(
    home: &SdkConfig,
    accounts: &AccountsConfig,
    account: &AccountId,
    session: &str,
) -> SdkConfig {
    let region = home.region().and_then(|r| Region::new(r.as_ref()));
    let arn = accounts.role_arn(region.as_ref().map_or("aws", partition), account);
    let mut builder = AssumeRoleProvider::builder(arn)
        .configure(home)
        .session_name(session);
    if let Some(id) = &accounts.external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    home.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .identity_cache(IdentityCache::lazy().build())
        .build()
}

/// Asks for `config`'s credentials once and checks they are `account`'s:
/// the role is assumable, and the ARN did not lead elsewhere.
pub async fn check(config: &SdkConfig, account: &AccountId) -> Result<(), Error> {
    let region = config
        .region()
        .map_or_else(|| "-".to_owned(), |r| r.as_ref().to_owned());
    let provider = config.credentials_provider().ok_or_else(|| Error::Unexpected {
        operation: "AssumeRole",
        region: region.clone(),
        detail: format!("account {account}: no credentials provider"),
    })?;
    let credentials = provider.provide_credentials().await.map_err(|e| Error::Aws {
        operation: "AssumeRole",
        region: region.clone(),
        code: None,
        source: Box::new(e),
    })?;
    match credentials.account_id() {
        Some(got) if got.as_str() != account.as_str() => Err(Error::Unexpected {
            operation: "AssumeRole",
            region,
            detail: format!(
                "account {account}: the assumed credentials are account {}'s",
                got.as_str()
            ),
        }),
        _ => Ok(()),
    }
}

/// Who this process calls AWS as: `sts:GetCallerIdentity`'s answer.
#[derive(Debug)]
struct Caller {
    account: AccountId,
    arn: String,
}

/// The clients of every member account other than the home one, made on
/// first use and kept for the life of the process (their credentials
/// refreshed by their identity cache), and the home account's id.
#[derive(Debug)]
pub struct MemberClients {
    sdk: SdkConfig,
    common: CommonConfig,
    throttles: Throttles,
    home: tokio::sync::OnceCell<Caller>,
    clients: tokio::sync::Mutex<BTreeMap<AccountId, RegionalClients>>,
    /// The STS session name of every member session ([`session_name`] of
    /// the function, once it is known).
    session: std::sync::OnceLock<String>,
}

impl MemberClients {
    /// No client made yet: nothing is called until a member is used.
    pub fn new(sdk: &SdkConfig, common: &CommonConfig, throttles: &Throttles) -> MemberClients {
        MemberClients {
            sdk: sdk.clone(),
            common: common.clone(),
            throttles: throttles.clone(),
            home: tokio::sync::OnceCell::new(),
            clients: tokio::sync::Mutex::new(BTreeMap::new()),
            session: std::sync::OnceLock::new(),
        }
    }

    /// Names the member sessions after `function` (`lbgp-<function>`: what
    /// CloudTrail shows in each member account, and what a trust policy
    /// may pin with `sts:RoleSessionName`). The first name given stands;
    /// sessions made before any is given are `lbgp`'s.
    pub fn name_sessions(&self, function: &str) {
        let _ = self.session.set(session_name(function));
    }

    /// The session name member sessions are made with.
    pub fn session(&self) -> &str {
        self.session.get().map_or("lbgp", String::as_str)
    }

    /// The accounts setting.
    pub fn config(&self) -> &AccountsConfig {
        &self.common.accounts
    }

    /// True when `LBGP_ACCOUNTS` names other accounts (or `discover`).
    pub fn is_cross_account(&self) -> bool {
        self.common.accounts.is_cross_account()
    }

    /// The account this process runs in (`sts:GetCallerIdentity`, asked
    /// once per process).
    pub async fn home_account(&self) -> Result<AccountId, Error> {
        Ok(self.caller().await?.account.clone())
    }

    /// The ARN of the identity this process calls AWS as (the same
    /// `sts:GetCallerIdentity` answer as [`MemberClients::home_account`]).
    pub async fn caller_arn(&self) -> Result<String, Error> {
        Ok(self.caller().await?.arn.clone())
    }

    async fn caller(&self) -> Result<&Caller, Error> {
        self.home
            .get_or_try_init(|| async {
                let region = self
                    .sdk
                    .region()
                    .map_or_else(|| "-".to_owned(), |r| r.as_ref().to_owned());
                let sts = aws_sdk_sts::Client::new(&self.sdk);
                let me = sts.get_caller_identity().send().await.map_err(|e| {
                    let code =
                        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e).map(str::to_owned);
                    Error::Aws {
                        operation: "GetCallerIdentity",
                        region: region.clone(),
                        code,
                        source: Box::new(e),
                    }
                })?;
                let account = me
                    .account()
                    .and_then(AccountId::new)
                    .ok_or_else(|| Error::Unexpected {
                        operation: "GetCallerIdentity",
                        region,
                        detail: "the answer names no 12-digit account".to_owned(),
                    })?;
                Ok(Caller {
                    account,
                    arn: me.arn().unwrap_or("-").to_owned(),
                })
            })
            .await
    }

    /// The members, given the accounts owning what a run read (for
    /// `discover`). The home account is asked for only in a cross-account
    /// mesh.
    pub async fn membership(&self, owners: &[AccountId]) -> Result<Membership, Error> {
        let home = self.home_account().await?;
        Ok(self.common.accounts.membership(&home, owners))
    }

    /// The clients of `account`: `None` for the home account (or no
    /// account), whose clients are the process's own.
    pub async fn clients_of(&self, account: Option<&AccountId>) -> Result<Option<RegionalClients>, Error> {
        let Some(account) = account else {
            return Ok(None);
        };
        if *account == self.home_account().await? {
            return Ok(None);
        }
        if !self.is_cross_account() {
            return Err(Error::Unexpected {
                operation: "AssumeRole",
                region: "-".to_owned(),
                detail: format!("account {account} is not a member (LBGP_ACCOUNTS is unset)"),
            });
        }
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(account) {
            return Ok(Some(c.clone()));
        }
        let config = member_config(&self.sdk, &self.common.accounts, account, self.session()).await;
        let made = RegionalClients::new(&config, &self.common, &self.throttles);
        clients.insert(account.clone(), made.clone());
        Ok(Some(made))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_session_names() {
        let p = |r: &str| partition(&Region::new(r).unwrap());
        assert_eq!(
            (p("eu-west-1"), p("cn-north-1"), p("us-gov-west-1")),
            ("aws", "aws-cn", "aws-us-gov")
        );
        assert_eq!(session_name("vpc-route-injector"), "lbgp-vpc-route-injector");
        assert_eq!(session_name("a b/c"), "lbgp-a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
