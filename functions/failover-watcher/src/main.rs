//! failover-watcher: the Lambda entry point. Builds configuration and clients
//! once, then serves invocations.
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lbgp_runtime::init_tracing();
    let app = failover_watcher::app_from_env().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        app.handle(event)
    }))
    .await
}
