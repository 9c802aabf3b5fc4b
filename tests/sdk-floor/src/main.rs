//! `lbgp-sdk-floor`: the start-up of a Rust Lambda that builds the AWS SDK
//! clients the injector's and the propagator's first invocation calls (one
//! EC2 client per mesh region, one DynamoDB client) the way the SDK's
//! developer guide shows (`aws_config::load_defaults`, then
//! `Client::new` / `Client::from_conf` per service and region, each with the
//! SDK's default HTTPS client), then answers every event with its payload.
//! `lbgp-bench` (section 4) times it beside `lbgp-echo` and the functions:
//! what the SDK itself costs before the first poll, so what is left to the
//! functions' own code is the distance from this floor, not from the echo.
#![forbid(unsafe_code)]

use aws_config::BehaviorVersion;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // The mesh regions as the functions read them (`LBGP_REGIONS`), else
    // the home region alone.
    let mut regions: Vec<String> = std::env::var("LBGP_REGIONS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    if regions.is_empty() {
        regions.extend(config.region().map(|r| r.as_ref().to_owned()));
    }
    let ec2: Vec<aws_sdk_ec2::Client> = regions
        .into_iter()
        .map(|region| {
            let conf = aws_sdk_ec2::config::Builder::from(&config)
                .region(aws_config::Region::new(region))
                .build();
            aws_sdk_ec2::Client::from_conf(conf)
        })
        .collect();
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let clients = (ec2, dynamodb);
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // Held for the life of the process, as a function holds its clients.
        let _held = &clients;
        async move { Ok::<_, Error>(e.payload) }
    }))
    .await
}
