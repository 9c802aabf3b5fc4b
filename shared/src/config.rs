//! `LBGP_*` environment variables, parsed once at start-up into typed values.
//! Every error names the variable and the bad value.

use std::time::Duration;

use crate::accounts::{AccountId, AccountsConfig, DEFAULT_MEMBER_ROLE, MemberSetting, RoleName};
use crate::model::Region;
use crate::prefix::{self, Cidr};

/// The default mesh prefixes: the RFC 1918 aggregates.
pub const DEFAULT_PREFIXES: &str = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16";

/// A configuration error: which variable, which value, what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set or empty.
    #[error("{var} is required: {hint}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set to something we cannot use.
    #[error("{var}: {value:?} is not valid: {expected}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// The value found.
        value: String,
        /// What is expected.
        expected: String,
    },
    /// A CIDR list does not parse.
    #[error("{var}: {source}")]
    Prefix {
        /// The variable.
        var: &'static str,
        /// The parse error, naming the bad CIDR.
        #[source]
        source: prefix::PrefixError,
    },
}

/// How the injector chooses the prefixes of each VPC route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectMode {
    /// The `LBGP_PREFIXES` aggregates.
    Aggregate,
    /// Every other mesh VPC's CIDRs, aggregated, summarised to fit the quota.
    Specific,
}

/// How the injector writes a table's mesh routes (`LBGP_ROUTE_STYLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteStyle {
    /// One route per prefix (the default, and the behaviour before the
    /// setting existed).
    #[default]
    Routes,
    /// One lbgp-owned managed prefix list per mesh, region, address family
    /// and transit gateway holding the prefixes, and one route per table
    /// toward it (`lbgp_core::prefix_list`).
    PrefixList,
}

/// How L-BGP chooses the peering attachment of each learned prefix
/// (`LBGP_ROUTING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Each TGW learns only what its direct peers originate; nothing is
    /// re-exported (the default: a partial mesh carries no transit).
    #[default]
    Direct,
    /// Each TGW learns every prefix of every TGW it can reach, toward the
    /// next hop of a shortest path (`lbgp_core::paths`): transit over
    /// intermediate TGWs, rerouting when a peering fails.
    ShortestPath,
}

/// When the failover watcher moves routes back to the preferred member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailbackPolicy {
    /// After the preferred member has been healthy without interruption for
    /// this long (zero: at once).
    After(Duration),
    /// Only when an operator asks, by manual invoke.
    Never,
}

/// Settings shared by the three functions.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    /// `LBGP_REGIONS`: the mesh regions (required, comma-separated, no duplicates).
    pub regions: Vec<Region>,
    /// `LBGP_MESH`: member TGWs carry the tag `lbgp:mesh=<mesh>` (default `default`).
    pub mesh: String,
    /// `LBGP_TABLE`: the DynamoDB table of the ledger, leases and state.
    pub table: String,
    /// `LBGP_TOPIC_ARN`: SNS topic for notifications (optional).
    pub topic_arn: Option<String>,
    /// `LBGP_DRY_RUN`: plan and report, never write (default false).
    pub dry_run: bool,
    /// `LBGP_MAX_CHANGES`: blast-radius limit of one run (default 100).
    pub max_changes: usize,
    /// `LBGP_EC2_WRITE_BURST`: client-side token bucket size for mutating EC2
    /// calls per region (default 50, EC2's published default).
    pub ec2_write_burst: u32,
    /// `LBGP_EC2_WRITE_RATE`: its refill per second (default 5; 0 disables pacing).
    pub ec2_write_rate: f64,
    /// `LBGP_FOLLOW_UP_QUEUE_URL`: the SQS queue a run that ran out of time
    /// sends its continuation to (optional; without it the schedule picks
    /// the rest up).
    pub follow_up_queue: Option<String>,
    /// `LBGP_ACCOUNTS`, `LBGP_MEMBER_ROLE`, `LBGP_EXTERNAL_ID`: the member
    /// accounts of a cross-account mesh (default: the home account only).
    pub accounts: AccountsConfig,
}

/// Settings of the vpc-route-injector.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectorConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `LBGP_PREFIXES`: the mesh prefixes (default the RFC 1918 aggregates).
    pub prefixes: Vec<Cidr>,
    /// `LBGP_INJECT_MODE`: `aggregate` (default) or `specific`.
    pub inject_mode: InjectMode,
    /// `LBGP_ROUTE_QUOTA`: routes per VPC route table we may use in specific mode (default 50).
    pub route_quota: usize,
    /// `LBGP_ROUTE_STYLE`: `routes` (default) or `prefix-list`.
    pub route_style: RouteStyle,
    /// `LBGP_ROUTE_STYLE` is set (to either value): lbgp's prefix lists are
    /// read and reconciled (set to `routes`, they are withdrawn). Unset,
    /// the injector makes exactly the calls it made before the setting.
    pub route_style_set: bool,
}

/// Settings of the tgw-route-propagator.
#[derive(Debug, Clone, PartialEq)]
pub struct PropagatorConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `LBGP_SUMMARIZE`: install each peer's lossless aggregate (default false).
    pub summarize: bool,
    /// `LBGP_TGW_ROUTE_QUOTA`: routes per TGW route table (default 10000).
    pub tgw_route_quota: usize,
    /// `LBGP_ROUTING`: `direct` (default) or `shortest-path`.
    pub routing: Routing,
    /// `LBGP_MAX_HOPS`: in `shortest-path` mode, prefixes more peering hops
    /// away than this are not installed (default `None`: unlimited).
    pub max_hops: Option<usize>,
    /// `LBGP_ROUTE_STYLE`: `routes` (default) or `prefix-list` (one list
    /// and one TGW prefix-list reference per table and peer).
    pub route_style: RouteStyle,
    /// `LBGP_ROUTE_STYLE` is set (to either value): the propagator's lists
    /// and references are read and reconciled. Unset, it makes exactly the
    /// calls it made before the setting.
    pub route_style_set: bool,
}

/// Settings of the failover-watcher.
#[derive(Debug, Clone, PartialEq)]
pub struct WatcherConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `LBGP_FAILBACK_AFTER_SECONDS`: seconds, `0`, or `never` (default 300).
    pub failback: FailbackPolicy,
}

/// Reads variables through `get`, so tests need not touch the process
/// environment.
pub struct Env<F: Fn(&str) -> Option<String>> {
    get: F,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        fn get(var: &str) -> Option<String> {
            std::env::var(var).ok()
        }
        Env { get }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Any lookup function, e.g. over a map in a test.
    pub fn from_fn(get: F) -> Self {
        Env { get }
    }

    fn raw(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    var,
                    value: v,
                    expected: "true or false".to_owned(),
                }),
            },
        }
    }

    fn count(&self, var: &'static str, default: usize, min: usize) -> Result<usize, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(ConfigError::Invalid {
                    var,
                    value: v,
                    expected: format!("a whole number of at least {min}"),
                }),
            },
        }
    }

    /// Parses the settings every function shares.
    pub fn common(&self) -> Result<CommonConfig, ConfigError> {
        let regions_raw = self.raw("LBGP_REGIONS").ok_or(ConfigError::Missing {
            var: "LBGP_REGIONS",
            hint: "the comma-separated mesh regions, e.g. eu-west-1,us-east-1",
        })?;
        let mut regions = Vec::new();
        for item in regions_raw.split(',') {
            let region = Region::new(item).ok_or_else(|| ConfigError::Invalid {
                var: "LBGP_REGIONS",
                value: item.trim().to_owned(),
                expected: "an AWS region name such as eu-west-1".to_owned(),
            })?;
            if regions.contains(&region) {
                return Err(ConfigError::Invalid {
                    var: "LBGP_REGIONS",
                    value: item.trim().to_owned(),
                    expected: "each region once".to_owned(),
                });
            }
            regions.push(region);
        }
        let mesh = self.raw("LBGP_MESH").unwrap_or_else(|| "default".to_owned());
        if mesh.len() > 256 || mesh.contains(',') {
            return Err(ConfigError::Invalid {
                var: "LBGP_MESH",
                value: mesh,
                expected: "a tag value of at most 256 characters without commas".to_owned(),
            });
        }
        let table = self.raw("LBGP_TABLE").ok_or(ConfigError::Missing {
            var: "LBGP_TABLE",
            hint: "the DynamoDB table name (pk/sk strings) created by the template",
        })?;
        let topic_arn = match self.raw("LBGP_TOPIC_ARN") {
            None => None,
            Some(arn) if arn.starts_with("arn:") && arn.split(':').count() == 6 => Some(arn),
            Some(arn) => {
                return Err(ConfigError::Invalid {
                    var: "LBGP_TOPIC_ARN",
                    value: arn,
                    expected: "an SNS topic ARN, arn:aws:sns:<region>:<account>:<name>".to_owned(),
                });
            }
        };
        let follow_up_queue = match self.raw("LBGP_FOLLOW_UP_QUEUE_URL") {
            None => None,
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Some(url),
            Some(url) => {
                return Err(ConfigError::Invalid {
                    var: "LBGP_FOLLOW_UP_QUEUE_URL",
                    value: url,
                    expected: "an SQS queue URL, https://sqs.<region>.amazonaws.com/<account>/<name>"
                        .to_owned(),
                });
            }
        };
        Ok(CommonConfig {
            accounts: self.accounts()?,
            follow_up_queue,
            regions,
            mesh,
            table,
            topic_arn,
            dry_run: self.bool("LBGP_DRY_RUN", false)?,
            max_changes: self.count("LBGP_MAX_CHANGES", 100, 0)?,
            ec2_write_burst: u32::try_from(self.count("LBGP_EC2_WRITE_BURST", 50, 1)?).map_err(|_| {
                ConfigError::Invalid {
                    var: "LBGP_EC2_WRITE_BURST",
                    value: self.raw("LBGP_EC2_WRITE_BURST").unwrap_or_default(),
                    expected: "a whole number up to 4294967295".to_owned(),
                }
            })?,
            ec2_write_rate: match self.raw("LBGP_EC2_WRITE_RATE") {
                None => 5.0,
                Some(v) => match v.parse::<f64>() {
                    Ok(r) if r.is_finite() && r >= 0.0 => r,
                    _ => {
                        return Err(ConfigError::Invalid {
                            var: "LBGP_EC2_WRITE_RATE",
                            value: v,
                            expected: "calls per second, 0 or more".to_owned(),
                        });
                    }
                },
            },
        })
    }

    /// Parses `LBGP_ACCOUNTS` (comma-separated 12-digit ids, or
    /// `discover`), `LBGP_MEMBER_ROLE` (default `lbgp-member`) and
    /// `LBGP_EXTERNAL_ID`. Unset, the mesh is the home account's alone.
    pub fn accounts(&self) -> Result<AccountsConfig, ConfigError> {
        let members = match self.raw("LBGP_ACCOUNTS") {
            None => MemberSetting::HomeOnly,
            Some(v) if v.eq_ignore_ascii_case("discover") => MemberSetting::Discover,
            Some(v) => {
                let mut listed = std::collections::BTreeSet::new();
                for item in v.split(',') {
                    let id = AccountId::new(item).ok_or_else(|| ConfigError::Invalid {
                        var: "LBGP_ACCOUNTS",
                        value: item.trim().to_owned(),
                        expected: "comma-separated 12-digit account ids, or discover".to_owned(),
                    })?;
                    if !listed.insert(id) {
                        return Err(ConfigError::Invalid {
                            var: "LBGP_ACCOUNTS",
                            value: item.trim().to_owned(),
                            expected: "each account once".to_owned(),
                        });
                    }
                }
                MemberSetting::Listed(listed)
            }
        };
        let role_raw = self
            .raw("LBGP_MEMBER_ROLE")
            .unwrap_or_else(|| DEFAULT_MEMBER_ROLE.to_owned());
        let role = RoleName::new(&role_raw).ok_or_else(|| ConfigError::Invalid {
            var: "LBGP_MEMBER_ROLE",
            value: role_raw.clone(),
            expected: "an IAM role name (optionally with a path), not an ARN: letters, digits and +=,.@_-, at most 64"
                .to_owned(),
        })?;
        // STS: 2 to 1224 characters of [\w+=,.@:/-].
        let external_id = match self.raw("LBGP_EXTERNAL_ID") {
            None => None,
            Some(v)
                if (2..=1224).contains(&v.len())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)) =>
            {
                Some(v)
            }
            Some(v) => {
                return Err(ConfigError::Invalid {
                    var: "LBGP_EXTERNAL_ID",
                    value: v,
                    expected: "2 to 1224 characters: letters, digits and _+=,.@:/-".to_owned(),
                });
            }
        };
        Ok(AccountsConfig {
            members,
            role,
            external_id,
        })
    }

    /// Parses the injector's settings.
    pub fn injector(&self) -> Result<InjectorConfig, ConfigError> {
        let common = self.common()?;
        let raw = self
            .raw("LBGP_PREFIXES")
            .unwrap_or_else(|| DEFAULT_PREFIXES.to_owned());
        let prefixes = prefix::parse_list(&raw).map_err(|source| ConfigError::Prefix {
            var: "LBGP_PREFIXES",
            source,
        })?;
        if prefixes.is_empty() {
            return Err(ConfigError::Invalid {
                var: "LBGP_PREFIXES",
                value: raw,
                expected: "at least one CIDR".to_owned(),
            });
        }
        let inject_mode = match self.raw("LBGP_INJECT_MODE").as_deref() {
            None | Some("aggregate") => InjectMode::Aggregate,
            Some("specific") => InjectMode::Specific,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "LBGP_INJECT_MODE",
                    value: other.to_owned(),
                    expected: "aggregate or specific".to_owned(),
                });
            }
        };
        let route_style = self.route_style()?;
        Ok(InjectorConfig {
            common,
            prefixes,
            inject_mode,
            route_quota: self.count("LBGP_ROUTE_QUOTA", 50, 1)?,
            route_style,
            route_style_set: self.raw("LBGP_ROUTE_STYLE").is_some(),
        })
    }

    /// `LBGP_ROUTE_STYLE`.
    fn route_style(&self) -> Result<RouteStyle, ConfigError> {
        match self.raw("LBGP_ROUTE_STYLE").as_deref() {
            None | Some("routes") => Ok(RouteStyle::Routes),
            Some("prefix-list") => Ok(RouteStyle::PrefixList),
            Some(other) => Err(ConfigError::Invalid {
                var: "LBGP_ROUTE_STYLE",
                value: other.to_owned(),
                expected: "routes or prefix-list".to_owned(),
            }),
        }
    }

    /// Parses the propagator's settings.
    pub fn propagator(&self) -> Result<PropagatorConfig, ConfigError> {
        let routing = match self.raw("LBGP_ROUTING").as_deref() {
            None | Some("direct") => Routing::Direct,
            Some("shortest-path") => Routing::ShortestPath,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "LBGP_ROUTING",
                    value: other.to_owned(),
                    expected: "direct or shortest-path".to_owned(),
                });
            }
        };
        let max_hops = match self.raw("LBGP_MAX_HOPS") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("unlimited") => None,
            Some(_) => Some(self.count("LBGP_MAX_HOPS", 0, 1)?),
        };
        Ok(PropagatorConfig {
            common: self.common()?,
            summarize: self.bool("LBGP_SUMMARIZE", false)?,
            tgw_route_quota: self.count("LBGP_TGW_ROUTE_QUOTA", 10_000, 1)?,
            routing,
            max_hops,
            route_style: self.route_style()?,
            route_style_set: self.raw("LBGP_ROUTE_STYLE").is_some(),
        })
    }

    /// Parses the watcher's settings.
    pub fn watcher(&self) -> Result<WatcherConfig, ConfigError> {
        let failback = match self.raw("LBGP_FAILBACK_AFTER_SECONDS") {
            None => FailbackPolicy::After(Duration::from_secs(300)),
            Some(v) if v.eq_ignore_ascii_case("never") => FailbackPolicy::Never,
            Some(v) => match v.parse::<u64>() {
                Ok(secs) => FailbackPolicy::After(Duration::from_secs(secs)),
                Err(_) => {
                    return Err(ConfigError::Invalid {
                        var: "LBGP_FAILBACK_AFTER_SECONDS",
                        value: v,
                        expected: "a whole number of seconds, 0, or never".to_owned(),
                    });
                }
            },
        };
        Ok(WatcherConfig {
            common: self.common()?,
            failback,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::from_fn(move |k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [("LBGP_REGIONS", "eu-west-1, us-east-1"), ("LBGP_TABLE", "lbgp")];

    #[test]
    fn defaults_apply() {
        let cfg = env(&BASE).injector().unwrap();
        assert_eq!(cfg.common.regions.len(), 2);
        assert_eq!(cfg.common.mesh, "default");
        assert_eq!(cfg.common.max_changes, 100);
        assert!(!cfg.common.dry_run);
        assert_eq!(cfg.common.topic_arn, None);
        assert_eq!(cfg.prefixes.len(), 3);
        assert_eq!(cfg.inject_mode, InjectMode::Aggregate);
        assert_eq!(cfg.route_quota, 50);
        assert_eq!(cfg.route_style, RouteStyle::Routes);
        assert!(!cfg.route_style_set);
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_ROUTE_STYLE", "prefix-list"));
        let pl = env(&vars).injector().unwrap();
        assert_eq!(
            (pl.route_style, pl.route_style_set),
            (RouteStyle::PrefixList, true)
        );
        let p = env(&BASE).propagator().unwrap();
        assert!(!p.summarize);
        assert_eq!(p.tgw_route_quota, 10_000);
        assert_eq!(p.routing, Routing::Direct);
        assert_eq!(p.max_hops, None);
        assert_eq!((p.route_style, p.route_style_set), (RouteStyle::Routes, false));
        let pp = env(&vars).propagator().unwrap();
        assert_eq!(
            (pp.route_style, pp.route_style_set),
            (RouteStyle::PrefixList, true)
        );
        let w = env(&BASE).watcher().unwrap();
        assert_eq!(w.failback, FailbackPolicy::After(Duration::from_secs(300)));
    }

    #[test]
    fn errors_name_the_variable_and_value() {
        let missing = env(&[("LBGP_TABLE", "t")]).common().unwrap_err();
        assert!(missing.to_string().starts_with("LBGP_REGIONS is required"));

        let empty = env(&[("LBGP_REGIONS", " "), ("LBGP_TABLE", "t")])
            .common()
            .unwrap_err();
        assert!(matches!(
            empty,
            ConfigError::Missing {
                var: "LBGP_REGIONS",
                ..
            }
        ));

        let bad_region = env(&[("LBGP_REGIONS", "eu-west-1,mars-1"), ("LBGP_TABLE", "t")])
            .common()
            .unwrap_err();
        assert_eq!(
            bad_region.to_string(),
            "LBGP_REGIONS: \"mars-1\" is not valid: an AWS region name such as eu-west-1"
        );

        let mut vars = BASE.to_vec();
        vars.push(("LBGP_PREFIXES", "10.0.0.0/33"));
        let bad_cidr = env(&vars).injector().unwrap_err();
        assert!(
            bad_cidr
                .to_string()
                .starts_with("LBGP_PREFIXES: 10.0.0.0/33 is not a valid CIDR"),
            "{bad_cidr}"
        );

        for (var, value) in [
            ("LBGP_MAX_CHANGES", "-1"),
            ("LBGP_MAX_CHANGES", "many"),
            ("LBGP_ROUTE_QUOTA", "0"),
            ("LBGP_DRY_RUN", "perhaps"),
            ("LBGP_INJECT_MODE", "both"),
            ("LBGP_ROUTE_STYLE", "prefix_list"),
            ("LBGP_TOPIC_ARN", "my-topic"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((var, value));
            let err = env(&vars).injector().unwrap_err();
            assert!(err.to_string().starts_with(var), "{var}: {err}");
            assert!(err.to_string().contains(value), "{var}: {err}");
        }
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_FAILBACK_AFTER_SECONDS", "soon"));
        assert!(env(&vars).watcher().is_err());
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_TGW_ROUTE_QUOTA", "1e4"));
        assert!(env(&vars).propagator().is_err());
    }

    #[test]
    fn routing_and_max_hops() {
        let parse = |extra: &[(&'static str, &'static str)]| {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            env(&vars).propagator()
        };
        let p = parse(&[("LBGP_ROUTING", "shortest-path"), ("LBGP_MAX_HOPS", "3")]).unwrap();
        assert_eq!((p.routing, p.max_hops), (Routing::ShortestPath, Some(3)));
        let p = parse(&[("LBGP_ROUTING", "direct"), ("LBGP_MAX_HOPS", "Unlimited")]).unwrap();
        assert_eq!((p.routing, p.max_hops), (Routing::Direct, None));
        assert_eq!(parse(&[("LBGP_MAX_HOPS", " ")]).unwrap().max_hops, None);
        for (var, value, expected) in [
            ("LBGP_ROUTING", "shortest_path", "direct or shortest-path"),
            ("LBGP_ROUTING", "bgp", "direct or shortest-path"),
            ("LBGP_MAX_HOPS", "0", "a whole number of at least 1"),
            ("LBGP_MAX_HOPS", "-2", "a whole number of at least 1"),
            ("LBGP_MAX_HOPS", "three", "a whole number of at least 1"),
        ] {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{var}: {value:?} is not valid: {expected}"),
                "{var}={value}"
            );
        }
    }

    #[test]
    fn accounts_default_to_home_only() {
        let cfg = env(&BASE).common().unwrap();
        assert_eq!(cfg.accounts, AccountsConfig::default());
        assert!(!cfg.accounts.is_cross_account());
        assert_eq!(cfg.accounts.role.as_str(), "lbgp-member");
        assert_eq!(cfg.accounts.external_id, None);
        // Blank is unset, as for every other variable.
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_ACCOUNTS", "  "));
        assert_eq!(
            env(&vars).common().unwrap().accounts.members,
            MemberSetting::HomeOnly
        );
    }

    #[test]
    fn accounts_listed_or_discover() {
        let parse = |extra: &[(&'static str, &'static str)]| {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            env(&vars).common().map(|c| c.accounts)
        };
        let a = parse(&[
            ("LBGP_ACCOUNTS", "222222222222, 012345678901"),
            ("LBGP_MEMBER_ROLE", "network/lbgp-member"),
            ("LBGP_EXTERNAL_ID", "mesh-prod:42"),
        ])
        .unwrap();
        let MemberSetting::Listed(listed) = &a.members else {
            panic!("{a:?}")
        };
        let ids: Vec<&str> = listed.iter().map(AccountId::as_str).collect();
        assert_eq!(ids, vec!["012345678901", "222222222222"]);
        assert_eq!(
            a.role_arn("aws", &listed.iter().next().unwrap().clone()),
            "arn:aws:iam::012345678901:role/network/lbgp-member"
        );
        assert_eq!(a.external_id.as_deref(), Some("mesh-prod:42"));
        assert_eq!(
            parse(&[("LBGP_ACCOUNTS", "Discover")]).unwrap().members,
            MemberSetting::Discover
        );
        for (var, value, shown, expected) in [
            (
                "LBGP_ACCOUNTS",
                "12345",
                "12345",
                "comma-separated 12-digit account ids, or discover",
            ),
            (
                "LBGP_ACCOUNTS",
                "222222222222,",
                "",
                "comma-separated 12-digit account ids, or discover",
            ),
            (
                "LBGP_ACCOUNTS",
                "222222222222, 222222222222",
                "222222222222",
                "each account once",
            ),
            (
                "LBGP_ACCOUNTS",
                "all",
                "all",
                "comma-separated 12-digit account ids, or discover",
            ),
            (
                "LBGP_MEMBER_ROLE",
                "arn:aws:iam::2:role/x",
                "arn:aws:iam::2:role/x",
                "an IAM role name",
            ),
            ("LBGP_MEMBER_ROLE", "two words", "two words", "an IAM role name"),
            ("LBGP_EXTERNAL_ID", "x", "x", "2 to 1224 characters"),
            (
                "LBGP_EXTERNAL_ID",
                "has space",
                "has space",
                "2 to 1224 characters",
            ),
        ] {
            let err = parse(&[(var, value)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{var}: {shown:?} is not valid: {expected}")),
                "{text}"
            );
        }
    }

    #[test]
    fn duplicate_region_is_refused() {
        let err = env(&[("LBGP_REGIONS", "eu-west-1,eu-west-1"), ("LBGP_TABLE", "t")])
            .common()
            .unwrap_err();
        assert!(err.to_string().contains("each region once"));
    }

    #[test]
    fn failback_never_and_zero() {
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_FAILBACK_AFTER_SECONDS", "never"));
        assert_eq!(env(&vars).watcher().unwrap().failback, FailbackPolicy::Never);
        let mut vars = BASE.to_vec();
        vars.push(("LBGP_FAILBACK_AFTER_SECONDS", "0"));
        assert_eq!(
            env(&vars).watcher().unwrap().failback,
            FailbackPolicy::After(Duration::ZERO)
        );
    }

    #[test]
    fn region_shapes() {
        for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-2", "il-central-1"] {
            assert!(Region::new(ok).is_some(), "{ok}");
        }
        for bad in ["", "eu", "eu-west", "EU-WEST-1", "eu-west-x", "mars-1", "eu--1"] {
            assert!(Region::new(bad).is_none(), "{bad}");
        }
    }
}
