//! vpc-route-injector: the Lambda entry point. Builds configuration and
//! clients once, then serves invocations.
use lambda_runtime::{LambdaEvent, service_fn};
use vpc_route_injector::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lbgp_aws::runtime::init_tracing();
    let app = App::from_env().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        app.handle(event.payload)
    }))
    .await
}
