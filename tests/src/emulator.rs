//! Starts the AWS emulator (moto with lbgp's fidelity layer, see
//! `tests/emulator/`) on a free port of 127.0.0.1, one per test, and talks
//! to its control endpoints (faults, call counts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The workspace root (where the Makefile is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The Python of the emulator virtualenv (`make emulator` creates it).
pub fn emulator_python() -> PathBuf {
    std::env::var_os("LBGP_EMULATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// A running emulator; stopped when dropped (and it stops by itself if this
/// process dies, when its stdin closes).
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
}

/// Call counts per service and action, as counted by the emulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls(pub BTreeMap<String, BTreeMap<String, u64>>);

/// EC2 and DynamoDB actions that change something.
pub fn is_mutating(service: &str, action: &str) -> bool {
    match service {
        "ec2" => [
            "Create",
            "Delete",
            "Replace",
            "Modify",
            "Associate",
            "Disassociate",
            "Enable",
            "Disable",
            "Accept",
            "Reject",
            "Run",
            "Terminate",
            "Stop",
            "Start",
        ]
        .iter()
        .any(|p| action.starts_with(p)),
        "dynamodb" => matches!(
            action,
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
        ),
        "sns" => action == "Publish",
        _ => false,
    }
}

impl Calls {
    /// Calls of one action.
    pub fn count(&self, service: &str, action: &str) -> u64 {
        self.0
            .get(service)
            .and_then(|m| m.get(action))
            .copied()
            .unwrap_or(0)
    }
    /// Mutating EC2 calls (route writes and the like).
    pub fn ec2_mutating(&self) -> BTreeMap<String, u64> {
        self.0
            .get("ec2")
            .map(|m| {
                m.iter()
                    .filter(|(a, _)| is_mutating("ec2", a))
                    .map(|(a, n)| (a.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Every mutating call, EC2 and DynamoDB (SNS publishes excluded).
    pub fn mutating(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for service in ["ec2", "dynamodb"] {
            if let Some(m) = self.0.get(service) {
                for (a, n) in m.iter().filter(|(a, _)| is_mutating(service, a)) {
                    out.insert(format!("{service}:{a}"), *n);
                }
            }
        }
        out
    }
    /// Read (non-mutating) EC2 calls in total.
    pub fn ec2_reads(&self) -> u64 {
        self.0
            .get("ec2")
            .map(|m| {
                m.iter()
                    .filter(|(a, _)| !is_mutating("ec2", a))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Emulator {
    /// Starts an emulator with the fidelity layer.
    pub async fn start() -> anyhow::Result<Emulator> {
        Self::start_with(&[]).await
    }

    /// Starts an emulator with extra launcher arguments (e.g. `--plain`).
    pub async fn start_with(args: &[&str]) -> anyhow::Result<Emulator> {
        let python = emulator_python();
        if !python.exists() {
            bail!(
                "the emulator's Python {} is missing: run `make emulator` (make test does it)",
                python.display()
            );
        }
        let script = workspace_root().join("tests/emulator/lbgp_emulator.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .context("the emulator did not start within 60 s")??
                .context("the emulator exited before listening")?;
            if let Some(rest) = line.strip_prefix("LBGP_EMULATOR_LISTENING port=") {
                break rest.trim().parse::<u16>().context("emulator port")?;
            }
        };
        // Keep draining stdout so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Emulator { child, port })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SDK configuration pointing at the emulator with dummy credentials,
    /// `region` as the home region, and lbgp's retry policy.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(SdkRegion::new(region.to_owned()))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "lbgp-tests",
            ))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(lbgp_aws::context::MAX_ATTEMPTS)
                    .with_initial_backoff(std::time::Duration::from_millis(5)),
            )
            .load()
            .await
    }

    async fn control(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .context("malformed control response")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            bail!("{method} {path}: {head}");
        }
        let payload = payload.trim();
        if payload.is_empty() || payload == "ok" {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(payload).unwrap_or(Value::String(payload.to_owned())))
    }

    /// Sets fault injection (see tests/emulator/README.md).
    pub async fn set_faults(&self, faults: Value) -> anyhow::Result<()> {
        self.control("POST", "/_lbgp/faults", Some(&faults))
            .await
            .map(|_| ())
    }

    /// Sets the fidelity layer's settings (see tests/emulator/README.md:
    /// state durations, read-after-write lag, quotas, paging mode…); fields
    /// left out take their defaults.
    pub async fn set_fidelity(&self, settings: Value) -> anyhow::Result<()> {
        self.control("POST", "/_lbgp/fidelity", Some(&settings))
            .await
            .map(|_| ())
    }

    /// Clears fault injection.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        self.control("DELETE", "/_lbgp/faults", None).await.map(|_| ())
    }

    /// Call counts since the last reset.
    pub async fn calls(&self) -> anyhow::Result<Calls> {
        let v = self.control("GET", "/_lbgp/calls", None).await?;
        let calls: BTreeMap<String, BTreeMap<String, u64>> = serde_json::from_value(v).unwrap_or_default();
        Ok(Calls(calls))
    }

    /// The calls since the last reset, in arrival order, one object each
    /// (`seq`, `service`, `action`, `region`, `mutating`, `outcome`…).
    pub async fn call_log(&self) -> anyhow::Result<Vec<Value>> {
        let v = self.control("GET", "/_lbgp/calls?detail=1", None).await?;
        serde_json::from_value(v).context("call log")
    }

    /// Zeroes the call counts.
    pub async fn reset_calls(&self) -> anyhow::Result<()> {
        self.control("POST", "/_lbgp/calls/reset", Some(&Value::Null))
            .await
            .map(|_| ())
    }

    /// Stops the emulator.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
