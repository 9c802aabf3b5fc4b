//! The test kit behaves as AWS does where the product depends on it: the
//! local Lambda Runtime API refuses a response over Lambda's 6 MB limit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use lbgp_tests::emulator::emulator_python;
use lbgp_tests::runtime_api::{LocalLambda, Outcome, RESPONSE_LIMIT};
use serde_json::json;

/// A function (a Python script speaking the Runtime API) that answers each
/// invocation with a response of the size its payload asks for.
const SIZED_FUNCTION: &str = r#"
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        size = json.loads(r.read())["size"]
    body = json.dumps({"pad": "x" * size}).encode()
    req = urllib.request.Request(api + rid + "/response", data=body, method="POST")
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError:
        pass
"#;

#[tokio::test]
async fn the_runtime_api_refuses_a_response_over_6_mb_as_lambda_does() {
    let dir = std::env::temp_dir().join(format!("lbgp-kit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("sized-function");
    std::fs::write(
        &script,
        format!("#!{}\n{SIZED_FUNCTION}", emulator_python().display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lambda = LocalLambda::start(&script, &BTreeMap::new()).await.unwrap();

    let small = lambda.invoke(json!({"size": 1024})).await.unwrap();
    assert!(matches!(small, Outcome::Response(_)), "{small:?}");
    let fits = lambda
        .invoke(json!({"size": RESPONSE_LIMIT - 100}))
        .await
        .unwrap();
    assert!(
        matches!(fits, Outcome::Response(_)),
        "a response within the limit was refused"
    );
    let Outcome::Error(too_big) = lambda.invoke(json!({"size": RESPONSE_LIMIT + 1})).await.unwrap() else {
        panic!("a response over 6 MB was accepted")
    };
    assert_eq!(too_big["errorType"], "Function.ResponseSizeTooLarge");
    lambda.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
