//! The Lambda side: tracing set-up, and the handler every function's `main`
//! hands to `lambda_runtime::run`, built once per process.

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use lbgp_aws::context::Aws;
use lbgp_core::config::ConfigError;
use lbgp_core::report::InvokeResponse;
use serde_json::Value;
use tracing::Instrument;

use crate::Error;
use crate::apply::LedgerBatching;
use crate::budget::Budget;
use crate::metrics::{self, Invocation, MetricsSink};
use crate::reconcile::{Reconciler, run};

/// Sets up JSON logs, one object per line, level from `RUST_LOG` (default
/// `info`); each line carries the invocation's span (request id, function,
/// trigger). Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}

/// A lease holder for a caller without a request id (a test, a CLI run):
/// unique enough, time and process id.
pub fn local_holder(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}:{:x}-{:x}-{n}", std::process::id(), nanos)
}

/// A function: its reconciler and clients, built once per process. A bad
/// configuration does not stop the process: every invocation answers with
/// the error, so it shows in the caller's response and logs instead of a
/// crash loop.
pub struct App<R> {
    state: Result<(R, Aws), Error>,
    batching: LedgerBatching,
    metrics: MetricsSink,
}

impl<R: Reconciler> App<R> {
    /// Parses the configuration with `build` and creates clients from the
    /// environment: the Lambda function, whose metrics go to stdout (its log
    /// stream) in Embedded Metric Format.
    pub async fn from_env(build: impl FnOnce() -> Result<R, ConfigError>) -> App<R> {
        let reconciler = match build() {
            Ok(r) => r,
            Err(e) => {
                let e = Error::Config(e);
                tracing::error!(error = %crate::error_chain(&e), "invalid configuration");
                return App::misconfigured(e);
            }
        };
        if reconciler.common().accounts.is_cross_account() && !reconciler.manages_accounts() {
            // A setting this function would silently ignore is refused
            // instead, so nobody believes its other accounts are managed.
            let e = Error::Config(ConfigError::Invalid {
                var: "LBGP_ACCOUNTS",
                value: std::env::var("LBGP_ACCOUNTS").unwrap_or_default(),
                expected: format!(
                    "unset: {} with these settings manages the home account only in this release (the injector's LBGP_ROUTE_STYLE=prefix-list is not cross-account yet)",
                    reconciler.function()
                ),
            });
            tracing::error!(error = %crate::error_chain(&e), "invalid configuration");
            return App::misconfigured(e);
        }
        match Aws::from_env(reconciler.common()).await {
            Ok(aws) => App::new(reconciler, aws).with_metrics(MetricsSink::stdout()),
            Err(e) => {
                let e = Error::Aws(e);
                tracing::error!(error = %crate::error_chain(&e), "clients could not be built");
                App::misconfigured(e)
            }
        }
    }

    /// An app over a given reconciler and clients (its metrics off: see
    /// [`App::with_metrics`]).
    pub fn new(reconciler: R, aws: Aws) -> App<R> {
        aws.members.name_sessions(reconciler.function());
        if reconciler.reads_alarms_first() {
            aws.warm_cloudwatch();
        }
        App {
            state: Ok((reconciler, aws)),
            batching: LedgerBatching::default(),
            metrics: MetricsSink::Off,
        }
    }

    /// An app that answers every invocation with `error` (its cause kept).
    pub fn misconfigured(error: Error) -> App<R> {
        App {
            state: Err(error),
            batching: LedgerBatching::default(),
            metrics: MetricsSink::Off,
        }
    }

    /// The same app with the ledger's write-ahead writes grouped as
    /// `batching` says (the benchmarks compare the two).
    pub fn with_ledger_batching(mut self, batching: LedgerBatching) -> App<R> {
        self.batching = batching;
        self
    }

    /// The same app with its metrics written to `sink`, one EMF document
    /// per line after every invocation.
    pub fn with_metrics(mut self, sink: MetricsSink) -> App<R> {
        self.metrics = sink;
        self
    }

    /// The reconciler and clients, when the configuration was valid.
    pub fn parts(&self) -> Option<(&R, &Aws)> {
        self.state.as_ref().ok().map(|(r, a)| (r, a))
    }

    /// Handles one Lambda invocation: the request id holds the leases, the
    /// deadline bounds the writes.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<InvokeResponse, Diagnostic> {
        let (reconciler, aws) = match &self.state {
            Ok(parts) => parts,
            Err(e) => {
                return Err(Diagnostic {
                    error_type: e.error_type().to_owned(),
                    error_message: crate::error_chain(e),
                });
            }
        };
        let LambdaEvent { payload, context } = event;
        let holder = if context.request_id.is_empty() {
            local_holder(reconciler.function())
        } else {
            context.request_id.clone()
        };
        let budget = Budget::from_deadline_ms(context.deadline, aws.store.clock().clone());
        let span = tracing::info_span!(
            "invocation",
            request_id = %holder,
            function = reconciler.function(),
            trigger = tracing::field::Empty,
        );
        // The counters are the process's: Lambda runs one invocation at a
        // time per process, so the difference is this invocation's.
        let (ec2_before, throttled_before) = (aws.throttles.ec2_requests(), aws.throttles.count());
        let (started_ms, started) = (metrics::now_ms(), std::time::Instant::now());
        let result = run(reconciler, aws, &payload, holder.clone(), budget, self.batching)
            .instrument(span)
            .await;
        let invocation = Invocation {
            function: reconciler.function(),
            mesh: &reconciler.common().mesh,
            request_id: &holder,
            outcome: result.as_ref().map_err(Error::error_type),
            started_ms,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ec2_calls: aws.throttles.ec2_requests().saturating_sub(ec2_before),
            throttled: aws.throttles.count().saturating_sub(throttled_before),
            event_ms: metrics::event_time_ms(&payload),
        };
        self.metrics.write(&invocation.documents(metrics::now_ms()));
        result.map_err(Into::into)
    }

    /// Handles a payload as an invocation without a Lambda context (no
    /// deadline, a local holder): for tests and tools.
    pub async fn invoke(&self, payload: Value) -> Result<InvokeResponse, Diagnostic> {
        self.handle(LambdaEvent::new(payload, Context::default())).await
    }
}
