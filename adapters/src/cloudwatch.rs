//! CloudWatch in one region: the state of the alarms failover members name
//! as their health (`lbgp:health-alarm`). SDK types stop here.
//!
//! DescribeAlarms takes at most 100 `AlarmNames` a call and answers in pages
//! of at most `MaxRecords` (1..100) alarms with a `NextToken`
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html>);
//! without `AlarmTypes` it returns metric alarms only, so composite and log
//! alarms are asked for by name too. A name that matches no alarm is simply
//! absent from the answer.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_cloudwatch::{Client, Config};
use lbgp_core::Region;
use lbgp_core::failover::{AlarmReading, AlarmState};

use crate::Error;
use crate::first_use::FirstUse;

/// Alarm names DescribeAlarms takes in one call.
pub const ALARM_NAMES_PER_CALL: usize = 100;

/// CloudWatch in one region. Its client is built on first use: only the
/// watcher reads alarms before anything else (its clients are made at
/// start-up, [`CloudWatch::warm`]), and a function that reads none (L-BGP)
/// never pays for one.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: FirstUse<Client, Config>,
    region: Region,
}

fn millis(t: Option<&DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

fn state(value: Option<&StateValue>) -> Option<AlarmState> {
    value.and_then(|v| AlarmState::from_aws(v.as_str()))
}

impl CloudWatch {
    /// CloudWatch through `client`, in `region`.
    pub fn new(client: Client, region: Region) -> CloudWatch {
        CloudWatch {
            client: FirstUse::ready(client),
            region,
        }
    }

    /// CloudWatch in `region` through a client built from `config` on its
    /// first use.
    pub fn on_first_use(config: Config, region: Region) -> CloudWatch {
        CloudWatch {
            client: FirstUse::on_first_use(config, Client::from_conf),
            region,
        }
    }

    /// Builds the client now if it is not yet built.
    pub fn warm(&self) {
        self.client.warm();
    }

    /// The raw client (built on first use).
    pub fn client(&self) -> &Client {
        self.client.get()
    }

    /// The alarms named, by name: metric, composite and log alarms alike.
    /// Names that match no alarm are absent. At most
    /// [`ALARM_NAMES_PER_CALL`] names a call, the calls side by side.
    pub async fn alarms(&self, names: &[&str]) -> Result<BTreeMap<String, AlarmReading>, Error> {
        let mut names: Vec<&str> = names.to_vec();
        names.sort_unstable();
        names.dedup();
        let calls = names
            .chunks(ALARM_NAMES_PER_CALL)
            .map(|chunk| self.alarms_of(chunk));
        let answers = futures::future::try_join_all(calls).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn alarms_of(&self, names: &[&str]) -> Result<Vec<(String, AlarmReading)>, Error> {
        let pages: Vec<_> = self
            .client()
            .describe_alarms()
            .set_alarm_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .alarm_types(AlarmType::LogAlarm)
            .max_records(100)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeAlarms", e))?;
        let mut out = Vec::new();
        for page in &pages {
            let metric = page.metric_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    state(a.state_value()),
                    a.state_reason(),
                    millis(a.state_updated_timestamp()),
                )
            });
            let composite = page.composite_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    state(a.state_value()),
                    a.state_reason(),
                    millis(a.state_updated_timestamp()),
                )
            });
            let log = page.log_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    state(a.state_value()),
                    a.state_reason(),
                    millis(a.state_updated_timestamp()),
                )
            });
            for (name, state, reason, updated_ms) in metric.chain(composite).chain(log) {
                let (Some(name), Some(state)) = (name, state) else {
                    // An alarm without a name or a known state is no health
                    // reading; its member counts it as missing data.
                    continue;
                };
                out.push((
                    name.to_owned(),
                    AlarmReading {
                        name: name.to_owned(),
                        state,
                        reason: reason.map(str::to_owned),
                        updated_ms,
                    },
                ));
            }
        }
        Ok(out)
    }

    fn err<E>(&self, operation: &'static str, source: E) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::aws(operation, &self.region, source)
    }
}
