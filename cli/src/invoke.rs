//! `plan` and `apply`: each function's own `App`, invoked in this process
//! as Lambda would invoke it, with a manual payload.
//!
//! `{"dry_run": true}` runs read → desire → plan and writes nothing: no
//! lease is taken, no ledger fix or conflict record written, nothing
//! published (the runtime's dry-run path). `{"dry_run": false}` is the
//! functions' real run: the lease (holder `lbgpctl:<user>@<host>:…`, so
//! `status` and the functions' logs say who holds it), the fenced ledger,
//! the blast-radius guard, the notifications.

use std::sync::Arc;

use aws_config::SdkConfig;
use clap::ValueEnum;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use lbgp_aws::context::Aws;
use lbgp_aws::store::SystemClock;
use lbgp_core::report::InvokeResponse;
use lbgp_runtime::{App, Error, Reconciler};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::{Output, Verdict, render};

/// Which functions a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// vpc-route-injector.
    Injector,
    /// tgw-route-propagator.
    Propagator,
    /// failover-watcher.
    Watcher,
    /// All three, in that order.
    All,
}

impl Target {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Injector => "injector",
            Target::Propagator => "propagator",
            Target::Watcher => "watcher",
            Target::All => "all",
        }
    }

    fn functions(self) -> &'static [Function] {
        match self {
            Target::Injector => &[Function::Injector],
            Target::Propagator => &[Function::Propagator],
            Target::Watcher => &[Function::Watcher],
            Target::All => &[Function::Injector, Function::Propagator, Function::Watcher],
        }
    }
}

/// One of the three functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// vpc-route-injector.
    Injector,
    /// tgw-route-propagator.
    Propagator,
    /// failover-watcher.
    Watcher,
}

impl Function {
    /// The function (binary) name.
    pub fn name(self) -> &'static str {
        match self {
            Function::Injector => vpc_route_injector::FUNCTION,
            Function::Propagator => tgw_route_propagator::FUNCTION,
            Function::Watcher => failover_watcher::FUNCTION,
        }
    }
}

/// One function's answer: its response, or its error document.
#[derive(Debug)]
pub struct Answer {
    /// Which function.
    pub function: Function,
    /// What it answered.
    pub result: Result<InvokeResponse, Diagnostic>,
}

impl Answer {
    /// The answer as the function would give it: the response, or Lambda's
    /// error document.
    pub fn to_json(&self) -> Value {
        match &self.result {
            Ok(response) => serde_json::to_value(response).unwrap_or(Value::Null),
            Err(d) => json!({"errorType": d.error_type, "errorMessage": d.error_message}),
        }
    }
}

/// A lease holder that says who runs: `lbgpctl:<user>@<host>:<pid>-…`.
pub(crate) fn operator_holder() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "operator".to_owned());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    lbgp_runtime::app::local_holder(&format!("lbgpctl:{user}@{host}"))
}

/// Invokes `reconciler`'s app with `payload`, as Lambda would (metrics off:
/// stdout is the operator's).
async fn run_app<R: Reconciler>(
    reconciler: R,
    sdk: &SdkConfig,
    payload: Value,
    holder: &str,
) -> Result<InvokeResponse, Diagnostic> {
    let aws = Aws::new(sdk, reconciler.common(), Arc::new(SystemClock)).map_err(Error::Aws)?;
    let app = App::new(reconciler, aws);
    let mut context = Context::default();
    context.request_id = holder.to_owned();
    app.handle(LambdaEvent::new(payload, context)).await
}

/// Runs one function with `payload`; a configuration it refuses is its
/// error, as the function would answer it.
pub async fn invoke(
    function: Function,
    settings: &Settings,
    sdk: &SdkConfig,
    payload: Value,
    holder: &str,
) -> Result<InvokeResponse, Diagnostic> {
    let env = settings.env();
    match function {
        Function::Injector => {
            let config = env.injector().map_err(Error::Config)?;
            run_app(vpc_route_injector::Injector { config }, sdk, payload, holder).await
        }
        Function::Propagator => {
            let config = env.propagator().map_err(Error::Config)?;
            run_app(tgw_route_propagator::Propagator { config }, sdk, payload, holder).await
        }
        Function::Watcher => {
            let config = env.watcher().map_err(Error::Config)?;
            run_app(failover_watcher::Watcher { config }, sdk, payload, holder).await
        }
    }
}

async fn invoke_all(settings: &Settings, sdk: &SdkConfig, target: Target, payload: &Value) -> Vec<Answer> {
    let holder = operator_holder();
    let mut answers = Vec::new();
    for function in target.functions() {
        let result = invoke(*function, settings, sdk, payload.clone(), &holder).await;
        answers.push(Answer {
            function: *function,
            result,
        });
    }
    answers
}

/// Prints answers: one JSON document (an array for several functions) or
/// tables.
fn print(answers: &[Answer], output: Output, dry_run: bool) {
    match output {
        Output::Json => {
            let value = match answers {
                [one] => one.to_json(),
                many => Value::Array(many.iter().map(Answer::to_json).collect()),
            };
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        Output::Table => {
            for answer in answers {
                render::answer(answer, dry_run);
            }
        }
    }
}

/// `plan`: 1 when a function failed or reported errors (the plan may miss
/// changes), else 2 when any would change a route, else 0.
pub fn plan_verdict(answers: &[Answer]) -> Verdict {
    let failed = answers
        .iter()
        .any(|a| a.result.as_ref().map_or(true, |r| !r.errors.is_empty()));
    if failed {
        Verdict::Failed
    } else if answers
        .iter()
        .any(|a| a.result.as_ref().is_ok_and(|r| !r.changes.is_empty()))
    {
        Verdict::Pending
    } else {
        Verdict::Converged
    }
}

/// `apply`: 1 when a function failed or reported errors, else 2 when work is
/// left (a refused plan, another run's lease, changes the deadline or the
/// lease's end deferred), else 0.
pub fn apply_verdict(answers: &[Answer]) -> Verdict {
    let failed = answers
        .iter()
        .any(|a| a.result.as_ref().map_or(true, |r| !r.errors.is_empty()));
    let left = answers.iter().any(|a| {
        a.result
            .as_ref()
            .is_ok_and(|r| r.refused.is_some() || r.locked || r.deferred > 0)
    });
    match (failed, left) {
        (true, _) => Verdict::Failed,
        (false, true) => Verdict::Pending,
        (false, false) => Verdict::Converged,
    }
}

/// `lbgpctl plan`.
pub async fn plan(
    settings: &Settings,
    sdk: &SdkConfig,
    target: Target,
    force: bool,
    output: Output,
) -> anyhow::Result<Verdict> {
    let answers = invoke_all(settings, sdk, target, &json!({"dry_run": true, "force": force})).await;
    print(&answers, output, true);
    let verdict = plan_verdict(&answers);
    if output == Output::Table {
        render::plan_summary(&answers, verdict, target.name());
    }
    Ok(verdict)
}

/// `lbgpctl apply --yes`.
pub async fn apply(
    settings: &Settings,
    sdk: &SdkConfig,
    target: Target,
    force: bool,
    output: Output,
) -> anyhow::Result<Verdict> {
    let answers = invoke_all(settings, sdk, target, &json!({"dry_run": false, "force": force})).await;
    print(&answers, output, false);
    let verdict = apply_verdict(&answers);
    if output == Output::Table {
        render::apply_summary(&answers, verdict);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgp_core::report::{ChangeReport, ErrorReport};

    fn answer(edit: impl FnOnce(&mut InvokeResponse)) -> Answer {
        let mut response = InvokeResponse::new("vpc-route-injector", "manual", true);
        edit(&mut response);
        Answer {
            function: Function::Injector,
            result: Ok(response),
        }
    }

    fn change() -> ChangeReport {
        ChangeReport {
            op: "create".into(),
            region: "eu-west-1".into(),
            route_table_id: "rtb-1".into(),
            destination: "10.0.0.0/8".into(),
            target: "tgw-1".into(),
            previous_target: None,
            reason: "desired route is missing".into(),
            account: None,
        }
    }

    #[test]
    fn exit_codes_say_converged_pending_or_failed() {
        assert_eq!(plan_verdict(&[answer(|_| {})]), Verdict::Converged);
        let pending = answer(|r| r.changes.push(change()));
        assert_eq!(plan_verdict(&[answer(|_| {}), pending]), Verdict::Pending);
        let partial = answer(|r| {
            r.changes.push(change());
            r.errors.push(ErrorReport {
                region: "eu-west-1".into(),
                resource: None,
                error: "DescribeRouteTables failed".into(),
                account: None,
            });
        });
        assert_eq!(plan_verdict(&[partial]), Verdict::Failed);
        let failed = Answer {
            function: Function::Watcher,
            result: Err(Diagnostic {
                error_type: "lbgp.Aws.Retryable".into(),
                error_message: "no credentials".into(),
            }),
        };
        assert_eq!(plan_verdict(&[answer(|_| {}), failed]), Verdict::Failed);

        // An apply that wrote everything is converged, whatever it changed.
        assert_eq!(
            apply_verdict(&[answer(|r| r.changes.push(change()))]),
            Verdict::Converged
        );
        for left in [
            answer(|r| r.refused = Some("over the limit".into())),
            answer(|r| r.locked = true),
            answer(|r| r.deferred = 3),
        ] {
            assert_eq!(apply_verdict(&[left]), Verdict::Pending);
        }
    }
}
