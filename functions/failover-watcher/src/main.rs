//! failover-watcher: the Lambda entry point. Builds configuration and
//! clients once, then serves invocations.
use failover_watcher::App;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lbgp_aws::runtime::init_tracing();
    let app = App::from_env().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        app.handle(event.payload)
    }))
    .await
}
