//! `lbgp-echo`: a bare `lambda_runtime` function that answers every event
//! with its payload, and nothing else. `lbgp-bench` (section 4) times its
//! start-up beside the functions': the floor of a Rust Lambda on this
//! runtime, built in the same release profile.
#![forbid(unsafe_code)]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| async move {
        Ok::<_, Error>(e.payload)
    }))
    .await
}
