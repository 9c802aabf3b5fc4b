//! SDK clients, built once per process and shared by every invocation.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use lbgp_core::Region;
use lbgp_core::accounts::AccountId;
use lbgp_core::config::CommonConfig;

use crate::Error;
use crate::accounts::MemberClients;
use crate::cloudwatch::CloudWatch;
use crate::ec2::Ec2;
use crate::notify::Notifier;
use crate::queue::FollowUps;
use crate::store::{Clock, Store, SystemClock};
use crate::telemetry::{ThrottleCounter, Throttles};
use crate::throttle::TokenBucket;

/// Attempts per call: the SDK's adaptive mode (exponential backoff with
/// jitter, and a client-side rate limiter that slows down when AWS
/// throttles: EC2's budget is per account and region, shared with every
/// other tool), with a little more patience than its default 3 because a
/// control plane run is worth finishing.
pub const MAX_ATTEMPTS: u32 = 5;

/// The retry policy every client uses.
pub fn retries() -> RetryConfig {
    RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS)
}

/// How long one attempt of any AWS call may take before it is abandoned
/// (and retried): a hung connection must not hold a run, or its lease.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one AWS call may take with its retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening a connection may take: the SDK's own default, named
/// so that the process's HTTPS connector is built for it at start-up
/// ([`crate::http`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The connector settings [`timeouts`] leads every SDK client to ask for.
pub fn connector_settings() -> HttpConnectorSettings {
    HttpConnectorSettings::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// The timeouts every client uses.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the SDK configuration the standard way (environment, profile,
/// instance/Lambda role; `AWS_ENDPOINT_URL` honoured), with our retry policy
/// and timeouts, and one HTTPS client for every SDK client built from it
/// (the root certificates parsed once, not once per client:
/// [`crate::http`]).
///
/// Lambda hands a function its role's credentials and its region in the
/// environment, where the default chains look first and stop; when they
/// are there, they are named directly, so the rest of each chain (profile
/// files, web identity with its STS client, the container endpoint, IMDS:
/// a visible share of a cold start) is never built. Elsewhere (an
/// operator's shell, lbgpctl) the default chains run unchanged.
pub async fn load_sdk_config() -> SdkConfig {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::http::shared_https_client(&connector_settings()))
        .retry_config(retries())
        .timeout_config(timeouts());
    if set("AWS_ACCESS_KEY_ID") && (set("AWS_SECRET_ACCESS_KEY") || set("AWS_SECRET_KEY")) {
        loader = loader.credentials_provider(
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Ok(region) = std::env::var("AWS_REGION")
        && !region.is_empty()
    {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// Every client a function needs.
#[derive(Debug, Clone)]
pub struct Aws {
    /// EC2, one per mesh region.
    pub ec2: BTreeMap<Region, Ec2>,
    /// CloudWatch, one per mesh region (failover members' health alarms),
    /// each client built on first use unless warmed ([`Aws::warm_cloudwatch`]).
    pub cloudwatch: BTreeMap<Region, CloudWatch>,
    /// The DynamoDB table, in the home region.
    pub store: Store,
    /// SNS, in the home region.
    pub notifier: Notifier,
    /// The follow-up queue (`LBGP_FOLLOW_UP_QUEUE_URL`), in the home region.
    pub follow_ups: FollowUps,
    /// Throttled attempts of every client of this process.
    pub throttles: Throttles,
    /// The home region (`AWS_REGION`): where the table and topic live.
    pub home: Region,
    /// The clients of the other member accounts (`LBGP_ACCOUNTS`), made on
    /// first use.
    pub members: Arc<MemberClients>,
}

/// EC2 and CloudWatch clients of one account, one per mesh region.
#[derive(Debug, Clone)]
pub struct RegionalClients {
    /// EC2, one per mesh region, each with its own write bucket (EC2's
    /// budget is per account and region).
    pub ec2: BTreeMap<Region, Ec2>,
    /// CloudWatch, one per mesh region.
    pub cloudwatch: BTreeMap<Region, CloudWatch>,
}

impl RegionalClients {
    /// The clients of the account `sdk`'s credentials are in.
    pub fn new(sdk: &SdkConfig, common: &CommonConfig, throttles: &Throttles) -> RegionalClients {
        let ec2 = common
            .regions
            .iter()
            .map(|region| {
                let writes = TokenBucket::new(common.ec2_write_burst, common.ec2_write_rate);
                let conf = aws_sdk_ec2::config::Builder::from(sdk)
                    .region(aws_sdk_ec2::config::Region::new(region.to_string()))
                    .interceptor(ThrottleCounter::new(throttles.clone(), Some(writes.clone())))
                    .build();
                (
                    region.clone(),
                    Ec2::new(aws_sdk_ec2::Client::from_conf(conf), region.clone(), writes),
                )
            })
            .collect();
        let cloudwatch = common
            .regions
            .iter()
            .map(|region| {
                let conf = aws_sdk_cloudwatch::config::Builder::from(sdk)
                    .region(aws_sdk_cloudwatch::config::Region::new(region.to_string()))
                    .interceptor(ThrottleCounter::new(throttles.clone(), None))
                    .build();
                (region.clone(), CloudWatch::on_first_use(conf, region.clone()))
            })
            .collect();
        RegionalClients { ec2, cloudwatch }
    }
}

impl Aws {
    /// Builds clients from an SDK configuration: per-region EC2 clients for
    /// `common.regions`, DynamoDB and SNS in the configuration's region.
    pub fn new(sdk: &SdkConfig, common: &CommonConfig, clock: Arc<dyn Clock>) -> Result<Aws, Error> {
        let home = sdk
            .region()
            .and_then(|r| Region::new(r.as_ref()))
            .ok_or_else(|| Error::Unexpected {
                operation: "configuration",
                region: "-".to_owned(),
                detail: "AWS_REGION is not set: it names the home region of the table and topic".to_owned(),
            })?;
        let throttles = Throttles::default();
        let RegionalClients { ec2, cloudwatch } = RegionalClients::new(sdk, common, &throttles);
        let counter = || ThrottleCounter::new(throttles.clone(), None);
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(counter())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(sdk)
            .interceptor(counter())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(counter())
            .build();
        Ok(Aws {
            ec2,
            cloudwatch,
            store: Store::new(
                aws_sdk_dynamodb::Client::from_conf(dynamodb),
                &common.table,
                home.clone(),
                clock,
            ),
            // A service with nothing configured gets no client, and a
            // configured one is built when first called: each client built
            // is a visible share of a cold start, and a notification or a
            // follow-up is sent after a run's writes, never before them.
            notifier: match &common.topic_arn {
                Some(arn) => Notifier::on_first_use(sns, arn.clone(), home.clone()),
                None => Notifier::off(home.clone()),
            },
            follow_ups: match &common.follow_up_queue {
                Some(url) => FollowUps::on_first_use(sqs, url.clone(), home.clone()),
                None => FollowUps::off(home.clone()),
            },
            members: Arc::new(MemberClients::new(sdk, common, &throttles)),
            throttles,
            home,
        })
    }

    /// Builds clients from the environment, with the system clock.
    pub async fn from_env(common: &CommonConfig) -> Result<Aws, Error> {
        Aws::new(&load_sdk_config().await, common, Arc::new(SystemClock))
    }

    /// Builds the CloudWatch clients of the home account now (they are
    /// otherwise built on first use): for a function whose first read of
    /// an invocation is its alarms (the watcher), so a failover does not
    /// wait for them.
    pub fn warm_cloudwatch(&self) {
        self.cloudwatch.values().for_each(CloudWatch::warm);
    }

    /// CloudWatch in `region`.
    pub fn cloudwatch(&self, region: &Region) -> Result<&CloudWatch, Error> {
        self.cloudwatch
            .get(region)
            .ok_or_else(|| Error::UnknownRegion(region.to_string()))
    }

    /// EC2 in `region`.
    pub fn ec2(&self, region: &Region) -> Result<&Ec2, Error> {
        self.ec2
            .get(region)
            .ok_or_else(|| Error::UnknownRegion(region.to_string()))
    }

    /// EC2 in `region` of `account` (`None`, or the home account: this
    /// process's own clients). A member's clients are made on first use;
    /// its role is assumed by its first call.
    pub async fn ec2_in(&self, account: Option<&AccountId>, region: &Region) -> Result<Ec2, Error> {
        match self.members.clients_of(account).await? {
            None => self.ec2(region).cloned(),
            Some(clients) => clients
                .ec2
                .get(region)
                .cloned()
                .ok_or_else(|| Error::UnknownRegion(region.to_string())),
        }
    }

    /// CloudWatch in `region` of `account`, as [`Aws::ec2_in`].
    pub async fn cloudwatch_in(
        &self,
        account: Option<&AccountId>,
        region: &Region,
    ) -> Result<CloudWatch, Error> {
        match self.members.clients_of(account).await? {
            None => self.cloudwatch(region).cloned(),
            Some(clients) => clients
                .cloudwatch
                .get(region)
                .cloned()
                .ok_or_else(|| Error::UnknownRegion(region.to_string())),
        }
    }
}
