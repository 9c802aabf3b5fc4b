//! Every sample event in `events/` is parsed and handled: classified by
//! each function's subscriptions, then delivered to the handlers against
//! the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use lbgp_core::trigger::{Classified, Subscriptions, classify};
use lbgp_tests::emulator::workspace_root;
use lbgp_tests::fixtures::{TestEnv, attach, create_tgw, create_vpc};
use serde_json::Value;

const FUNCTIONS: [(&str, Subscriptions); 3] = [
    (vpc_route_injector::FUNCTION, vpc_route_injector::SUBSCRIPTIONS),
    (
        tgw_route_propagator::FUNCTION,
        tgw_route_propagator::SUBSCRIPTIONS,
    ),
    (failover_watcher::FUNCTION, failover_watcher::SUBSCRIPTIONS),
];

fn sample_files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let root = workspace_root().join("events");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (p.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

/// What a function must do with a sample, from its folder and name.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Error,
    Ignore,
    Handle,
    /// Dropped by the template's rules; given directly, acting on it or
    /// ignoring it are both correct (a reconcile is always correct).
    Either,
}

fn expectation(file: &str, subs: Subscriptions) -> Expect {
    let (folder, name) = file.split_once('/').unwrap_or(("", file));
    let stem = name.trim_end_matches(".json");
    match folder {
        "malformed" => Expect::Error,
        "ignored" => Expect::Ignore,
        // `cloudtrail/<EventName>[-variant].json`
        "cloudtrail" if subs.api_calls.contains(&stem.split('-').next().unwrap_or(stem)) => Expect::Handle,
        "cloudtrail" => Expect::Ignore,
        "ec2-state" if subs.state_changes => Expect::Handle,
        "ec2-state" => Expect::Ignore,
        "networkmanager" if subs.routing_updates => Expect::Handle,
        "networkmanager" => Expect::Ignore,
        "cloudwatch" if subs.alarm_changes => Expect::Handle,
        "cloudwatch" => Expect::Ignore,
        "filtered" => Expect::Either,
        // The watcher's queue: a state change its asynchronous queue could
        // not deliver, and a follow-up (a manual invoke).
        "queue" if stem.starts_with("on-failure") && subs.state_changes => Expect::Handle,
        "queue" if stem.starts_with("on-failure") => Expect::Ignore,
        "queue" => Expect::Handle,
        "manual" | "" => Expect::Handle,
        other => panic!("unexpected events folder {other}"),
    }
}

#[test]
fn every_sample_is_classified_as_documented() {
    let files = sample_files();
    assert!(files.len() >= 40, "samples missing: {}", files.len());
    for (name, path) in &files {
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        for (function, subs) in FUNCTIONS {
            let got = match classify(&payload, subs) {
                Err(_) => Expect::Error,
                Ok(Classified::Ignore { .. }) => Expect::Ignore,
                Ok(Classified::Handle(_)) => Expect::Handle,
            };
            let want = expectation(name, subs);
            if want == Expect::Either {
                assert_ne!(got, Expect::Error, "{function} on {name}");
            } else {
                assert_eq!(got, want, "{function} on {name}");
            }
        }
    }
    // Each function acts on every CloudTrail event it subscribes to, and a
    // sample exists for each.
    for (function, subs) in FUNCTIONS {
        for call in subs.api_calls {
            assert!(
                files.iter().any(|(n, _)| n == &format!("cloudtrail/{call}.json")),
                "no sample for {function}'s {call}"
            );
        }
    }
}

#[tokio::test]
async fn every_sample_is_handled_against_the_emulator() {
    let regions = ["eu-west-1", "us-east-1"];
    let env = TestEnv::new(&regions).await.unwrap();
    for (i, region) in regions.iter().enumerate() {
        let ec2 = env.ec2(region);
        let tgw = create_tgw(&ec2, Some("prod")).await.unwrap();
        let (vpc, subnet, _) = create_vpc(&ec2, &format!("10.{}.0.0/16", 40 + i)).await.unwrap();
        attach(&ec2, &tgw, &vpc, &subnet).await.unwrap();
    }
    let injector = {
        let config = env.config(&[]).injector().unwrap();
        vpc_route_injector::App::new(
            vpc_route_injector::Injector {
                config: config.clone(),
            },
            env.aws(&config.common).unwrap(),
        )
    };
    let propagator = {
        let config = env.config(&[]).propagator().unwrap();
        tgw_route_propagator::App::new(
            tgw_route_propagator::Propagator {
                config: config.clone(),
            },
            env.aws(&config.common).unwrap(),
        )
    };
    let watcher = {
        let config = env.config(&[]).watcher().unwrap();
        failover_watcher::App::new(
            failover_watcher::Watcher {
                config: config.clone(),
            },
            env.aws(&config.common).unwrap(),
        )
    };
    for (name, path) in sample_files() {
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (function, subs) in FUNCTIONS {
            env.emulator.reset_calls().await.unwrap();
            let result = match function {
                vpc_route_injector::FUNCTION => injector.invoke(payload.clone()).await,
                tgw_route_propagator::FUNCTION => propagator.invoke(payload.clone()).await,
                _ => watcher.invoke(payload.clone()).await,
            };
            let writes = env.emulator.calls().await.unwrap().mutating();
            let activate = name == "manual/activate.json";
            match (expectation(&name, subs), result) {
                (Expect::Error, Err(e)) => {
                    assert!(
                        e.error_message.contains("malformed"),
                        "{function} {name}: {}",
                        e.error_message
                    );
                    assert!(writes.is_empty(), "{function} wrote on {name}: {writes:?}");
                }
                (Expect::Handle, Err(e)) if activate => {
                    // The injector and propagator have no groups; the watcher
                    // has no group "vpn-edge" in this mesh: refused either way.
                    assert!(
                        e.error_message.contains("failover-watcher") || e.error_message.contains("vpn-edge"),
                        "{function}: {}",
                        e.error_message
                    );
                    assert!(writes.is_empty());
                }
                (Expect::Ignore, Ok(r)) => {
                    assert!(r.ignored.is_some(), "{function} {name}: {r:?}");
                    assert!(
                        writes.is_empty(),
                        "{function} wrote on ignored {name}: {writes:?}"
                    );
                }
                // The samples name instances and tables that are in no
                // failover group here: the watcher acts on the event by
                // finding nothing of its own, and says so.
                (Expect::Handle, Ok(r)) if function == failover_watcher::FUNCTION && r.ignored.is_some() => {
                    let reason = r.ignored.unwrap();
                    assert!(
                        name.starts_with("cloudtrail/")
                            || name.starts_with("ec2-state/")
                            || name.starts_with("queue/on-failure")
                            || name.starts_with("cloudwatch/")
                            || name.starts_with("filtered/"),
                        "{name}: {reason}"
                    );
                    assert!(
                        reason.contains("no failover group") || reason.contains("not"),
                        "{name}: {reason}"
                    );
                    assert!(writes.is_empty());
                }
                (Expect::Handle, Ok(r)) => {
                    assert!(r.errors.is_empty(), "{function} {name}: {:?}", r.errors);
                    assert!(r.ignored.is_none(), "{function} ignored {name}");
                }
                (Expect::Either, Ok(r)) => {
                    assert!(r.errors.is_empty(), "{function} {name}: {:?}", r.errors);
                }
                (want, got) => panic!("{function} on {name}: expected {want:?}, got {got:?}"),
            }
        }
    }
}
