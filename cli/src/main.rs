//! `lbgpctl`: lbgp's functions run from a terminal, with the operator's AWS
//! credentials and the functions' own `LBGP_*` configuration.
//!
//! - `plan [injector|propagator|watcher|all]`: the functions' dry run
//!   (read → desire → plan, nothing written, not even the ledger);
//! - `apply … --yes`: the functions' real run, under the same lease, guard
//!   and ledger (an operator's run is never a second, unfenced writer);
//! - `status`: what the DynamoDB table says: owned routes, conflicts,
//!   leases, failover groups, pending work;
//! - `accounts`: whether every member account's role can be assumed.
//!
//! Exit codes, like `terraform plan -detailed-exitcode`: 0 converged, 2
//! changes pending, 1 error.
#![forbid(unsafe_code)]

mod accounts;
mod config;
mod invoke;
mod migration;
mod render;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigArgs;
use crate::invoke::Target;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "lbgpctl",
    version,
    about = "Plan, apply and inspect lbgp against an AWS account, with the functions' own code",
    long_about = "Plan, apply and inspect lbgp against an AWS account, with the functions' own code.\n\n\
        Configuration: the same LBGP_* variables as the functions (LBGP_REGIONS, LBGP_TABLE, LBGP_MESH, …), \
        from the environment or the flags below (a flag wins). Credentials and the home region (the table's): \
        the standard AWS chain (AWS_PROFILE or --profile, SSO, environment, instance role; AWS_REGION or \
        --region; AWS_ENDPOINT_URL is honoured).\n\n\
        Exit codes: 0 converged, 2 changes pending, 1 error."
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    /// `table` for people, `json` for scripts (the functions' response shape).
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable tables.
    Table,
    /// JSON: one function's response, or an array of them for `all`.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The dry-run plan and conflicts of one function or all: nothing is written.
    Plan {
        /// Which function's plan.
        #[arg(value_enum, default_value_t = Target::All)]
        target: Target,
        /// Plan past the blast-radius limit (LBGP_MAX_CHANGES) without a refusal.
        #[arg(long)]
        force: bool,
    },
    /// Runs one function or all for real, through their lease, guard and ledger.
    Apply {
        /// Which function to run.
        #[arg(value_enum, default_value_t = Target::All)]
        target: Target,
        /// Confirms that routes may be written (without it nothing runs).
        #[arg(long)]
        yes: bool,
        /// Apply a plan above the blast-radius limit.
        #[arg(long)]
        force: bool,
    },
    /// What the DynamoDB table says: owned routes, conflicts, leases, failover groups, pending work.
    Status,
    /// Whether every member account can be reached: LBGP_MEMBER_ROLE assumed in each, nothing written (exit 1 when one cannot).
    Accounts,
    /// Cuts a VPC over to the mesh or rolls it back (docs/MIGRATION.md): the preflight and plan, applied with --yes.
    Migrate {
        /// The VPC (`vpc-…`).
        vpc: String,
        /// `migrated` (cutover) or `legacy` (rollback).
        #[arg(long, value_enum)]
        to: migration::To,
        /// Apply it (without: a dry run).
        #[arg(long)]
        yes: bool,
    },
    /// Records the old tooling's overlay routes in a VPC as lbgp's: exactly those equal to the overlay.
    Adopt {
        /// The VPC (`vpc-…`).
        vpc: String,
        /// Record them (without: list them).
        #[arg(long)]
        yes: bool,
    },
    /// Traces a packet from each route table of a VPC toward an address, hop by hop.
    Trace {
        /// The VPC it leaves (`vpc-…`).
        #[arg(long)]
        from: String,
        /// The destination address.
        #[arg(long)]
        to: std::net::IpAddr,
    },
}

/// What a command found, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to change (0).
    Converged,
    /// Changes are pending (2).
    Pending,
    /// Something failed (1).
    Failed,
}

impl Verdict {
    fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Verdict::Converged => 0,
            Verdict::Pending => 2,
            Verdict::Failed => 1,
        })
    }
}

/// Logs go to stderr (stdout is the command's output), `warn` unless
/// `RUST_LOG` says otherwise.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    let settings = config::Settings::from_args(&cli.config)?;
    match cli.command {
        Command::Plan { target, force } => {
            let sdk = settings.sdk_config().await;
            invoke::plan(&settings, &sdk, target, force, cli.output).await
        }
        Command::Apply { target, yes, force } => {
            if !yes {
                anyhow::bail!(
                    "apply writes routes: add --yes to run it (see first what it would do: lbgpctl plan {})",
                    target.name()
                );
            }
            let sdk = settings.sdk_config().await;
            invoke::apply(&settings, &sdk, target, force, cli.output).await
        }
        Command::Status => {
            let sdk = settings.sdk_config().await;
            status::status(&settings, &sdk, cli.output).await
        }
        Command::Accounts => {
            let sdk = settings.sdk_config().await;
            accounts::accounts(&settings, &sdk, cli.output).await
        }
        Command::Migrate { vpc, to, yes } => {
            let sdk = settings.sdk_config().await;
            migration::migrate(&settings, &sdk, &vpc, to, yes, cli.output).await
        }
        Command::Adopt { vpc, yes } => {
            let sdk = settings.sdk_config().await;
            migration::adopt(&settings, &sdk, &vpc, yes, cli.output).await
        }
        Command::Trace { from, to } => {
            let sdk = settings.sdk_config().await;
            migration::trace(&settings, &sdk, &from, to, cli.output).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match run(cli).await {
        Ok(verdict) => verdict.code(),
        Err(e) => {
            eprintln!("lbgpctl: {e:#}");
            Verdict::Failed.code()
        }
    }
}
