//! The operator's CLI, as a test runs it: the built `lbgpctl` binary
//! against the emulator, with the test's `LBGP_*` environment and nothing
//! of this machine's AWS setup.

use std::process::Stdio;

use serde_json::Value;

use crate::fixtures::{self, TestEnv};
use crate::runtime_api::dev_binary;

/// What one `lbgpctl` run printed and exited with.
#[derive(Debug)]
pub struct Run {
    /// The exit code (0 converged, 2 pending, 1 error).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON (`--output json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs the built `lbgpctl` with `args`, `env`'s `LBGP_*` environment, the
/// emulator as its endpoint and nothing else of this machine's AWS setup.
///
/// # Panics
/// When the binary was not built (`cargo build --workspace --bins`).
pub async fn lbgpctl(env: &TestEnv, args: &[&str]) -> Run {
    lbgpctl_with(env, &[], args).await
}

/// [`lbgpctl`] with extra `LBGP_*` variables.
///
/// # Panics
/// When the binary was not built or could not be started.
pub async fn lbgpctl_with(env: &TestEnv, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let binary = dev_binary("lbgpctl");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --workspace --bins` (make test does)",
        binary.display()
    );
    let mut command = tokio::process::Command::new(&binary);
    command
        .args(args)
        .env_clear()
        .envs(env.env(extra))
        .env("AWS_ENDPOINT_URL", env.emulator.endpoint())
        .env("AWS_REGION", fixtures::HOME)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/nonexistent/lbgp-tests/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/lbgp-tests/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("USER", "tester")
        .env("HOSTNAME", "ci")
        .stdin(Stdio::null());
    #[allow(clippy::expect_used)]
    let out = command.output().await.expect("lbgpctl could not be started");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
