//! Configuration: the functions' `LBGP_*` variables, from the environment,
//! overridden by flags; the AWS SDK configuration from the standard chain.
//!
//! The flags do not parse anything themselves: they stand in for the
//! variables, and the functions' own parser (`lbgp_core::config::Env`)
//! reads the result, so `lbgpctl` accepts and refuses exactly what a
//! function would.

use std::collections::BTreeMap;

use anyhow::bail;
use aws_config::{BehaviorVersion, SdkConfig};
use clap::Args;
use lbgp_core::config::Env;

/// Flags standing in for `LBGP_*` variables, and the AWS profile and home
/// region.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// LBGP_REGIONS: comma-separated mesh regions.
    #[arg(long, global = true, value_name = "REGIONS")]
    regions: Option<String>,
    /// LBGP_TABLE: the DynamoDB table (the stack's StateTableName output).
    #[arg(long, global = true, value_name = "NAME")]
    table: Option<String>,
    /// LBGP_MESH: the mesh (member TGWs carry lbgp:mesh=<MESH>).
    #[arg(long, global = true, value_name = "MESH")]
    mesh: Option<String>,
    /// LBGP_TOPIC_ARN: where `apply` publishes what it did (as the functions do).
    #[arg(long, global = true, value_name = "ARN")]
    topic_arn: Option<String>,
    /// LBGP_MAX_CHANGES: the blast-radius limit.
    #[arg(long, global = true, value_name = "N")]
    max_changes: Option<String>,
    /// LBGP_PREFIXES: the injector's mesh prefixes.
    #[arg(long, global = true, value_name = "CIDRS")]
    prefixes: Option<String>,
    /// LBGP_INJECT_MODE: aggregate or specific.
    #[arg(long, global = true, value_name = "MODE")]
    inject_mode: Option<String>,
    /// LBGP_ROUTE_QUOTA: routes per VPC route table.
    #[arg(long, global = true, value_name = "N")]
    route_quota: Option<String>,
    /// LBGP_SUMMARIZE: the propagator installs lossless aggregates (true/false).
    #[arg(long, global = true, value_name = "BOOL")]
    summarize: Option<String>,
    /// LBGP_TGW_ROUTE_QUOTA: routes per transit gateway.
    #[arg(long, global = true, value_name = "N")]
    tgw_route_quota: Option<String>,
    /// LBGP_FAILBACK_AFTER_SECONDS: seconds, 0, or never.
    #[arg(long, global = true, value_name = "SECONDS")]
    failback_after: Option<String>,
    /// Any other LBGP_* variable, as VAR=VALUE (repeatable).
    #[arg(long = "set", global = true, value_name = "LBGP_VAR=VALUE")]
    set: Vec<String>,
    /// AWS profile (else AWS_PROFILE, else the default chain).
    #[arg(long, global = true, value_name = "PROFILE")]
    profile: Option<String>,
    /// Home region of the table and topic (else AWS_REGION or the profile's).
    #[arg(long = "region", global = true, value_name = "REGION")]
    home_region: Option<String>,
}

/// The configuration a command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    overrides: BTreeMap<String, String>,
    profile: Option<String>,
    home_region: Option<String>,
}

impl Settings {
    /// Reads the flags.
    pub fn from_args(args: &ConfigArgs) -> anyhow::Result<Settings> {
        let mut overrides = BTreeMap::new();
        for (var, value) in [
            ("LBGP_REGIONS", &args.regions),
            ("LBGP_TABLE", &args.table),
            ("LBGP_MESH", &args.mesh),
            ("LBGP_TOPIC_ARN", &args.topic_arn),
            ("LBGP_MAX_CHANGES", &args.max_changes),
            ("LBGP_PREFIXES", &args.prefixes),
            ("LBGP_INJECT_MODE", &args.inject_mode),
            ("LBGP_ROUTE_QUOTA", &args.route_quota),
            ("LBGP_SUMMARIZE", &args.summarize),
            ("LBGP_TGW_ROUTE_QUOTA", &args.tgw_route_quota),
            ("LBGP_FAILBACK_AFTER_SECONDS", &args.failback_after),
        ] {
            if let Some(value) = value {
                overrides.insert(var.to_owned(), value.clone());
            }
        }
        for pair in &args.set {
            let Some((var, value)) = pair.split_once('=') else {
                bail!("--set {pair:?}: expected LBGP_VAR=VALUE");
            };
            if !var.starts_with("LBGP_") {
                bail!("--set {pair:?}: only LBGP_* variables are lbgp's configuration");
            }
            overrides.insert(var.to_owned(), value.to_owned());
        }
        Ok(Settings {
            overrides,
            profile: args.profile.clone(),
            home_region: args.home_region.clone(),
        })
    }

    /// The functions' configuration reader: a flag, else the environment.
    pub fn env(&self) -> Env<impl Fn(&str) -> Option<String> + '_> {
        Env::from_fn(move |var| {
            self.overrides
                .get(var)
                .cloned()
                .or_else(|| std::env::var(var).ok())
        })
    }

    /// The SDK configuration: the standard chain (profile, SSO,
    /// environment, instance role; `AWS_ENDPOINT_URL` honoured), with the
    /// functions' retry policy and timeouts.
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(lbgp_aws::context::retries())
            .timeout_config(lbgp_aws::context::timeouts());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.home_region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        loader.load().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_stand_in_for_variables_and_the_functions_parser_reads_them() {
        let args = ConfigArgs {
            regions: Some("eu-west-1,us-east-1".into()),
            table: Some("lbgp-state".into()),
            set: vec!["LBGP_MAX_CHANGES=7".into()],
            ..ConfigArgs::default()
        };
        let common = Settings::from_args(&args).unwrap().env().common().unwrap();
        assert_eq!(common.regions.len(), 2);
        assert_eq!(common.table, "lbgp-state");
        assert_eq!(common.max_changes, 7);
        // A bad value is refused as a function refuses it, naming the variable.
        let args = ConfigArgs {
            regions: Some("mars-1".into()),
            table: Some("t".into()),
            ..ConfigArgs::default()
        };
        let err = Settings::from_args(&args).unwrap().env().common().unwrap_err();
        assert!(err.to_string().starts_with("LBGP_REGIONS"), "{err}");
        for bad in ["LBGP_MESH", "AWS_REGION=x"] {
            let args = ConfigArgs {
                set: vec![bad.into()],
                ..ConfigArgs::default()
            };
            assert!(Settings::from_args(&args).is_err(), "{bad}");
        }
    }
}
