//! One HTTPS client for every SDK client of a process, its TLS connector
//! built once, before the first poll.
//!
//! Left to itself, every SDK client (EC2, CloudWatch, DynamoDB, SNS, SQS,
//! once per mesh region, and the credential providers: sixteen before a
//! function's first poll) creates its own default HTTPS client, and each
//! one builds a throwaway TLS connector when its SDK client is built "so
//! that native certs load at client initialization time instead of upon
//! first request" (aws-smithy-http-client's `validate_base_client_config`),
//! then another one on its first request: the system's root certificates
//! are parsed into a root store once per connector.
//!
//! [`shared_https_client`] builds the SDK's own connector (rustls with
//! aws-lc, the system's roots, its pool and timeouts) once, at start-up,
//! for the connector settings every client of ours asks for, and hands it
//! to every SDK client: the roots are parsed once and the first request
//! (a failover, say) finds the connector ready. A client asking for other
//! settings gets its own connector, built on its first request and kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn,
};

/// The settings a connector is chosen by: what the SDK's own client keys
/// its connectors on.
type Key = (Option<Duration>, Option<Duration>);

fn key(settings: &HttpConnectorSettings) -> Key {
    (settings.connect_timeout(), settings.read_timeout())
}

/// The SDK's default HTTPS connector for `settings` (timeouts driven by
/// tokio's sleep, as the SDK's own default client does on Lambda).
pub fn https_connector(settings: &HttpConnectorSettings) -> SharedHttpConnector {
    let connector = Connector::builder()
        .connector_settings(settings.clone())
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build();
    SharedHttpConnector::new(connector)
}

/// An HTTP client whose connectors `build` makes, one per distinct
/// settings, kept for the life of the process; the one for `expected` is
/// built now.
pub fn cached_client(
    expected: &HttpConnectorSettings,
    build: impl Fn(&HttpConnectorSettings) -> SharedHttpConnector + Send + Sync + 'static,
) -> SharedHttpClient {
    let built: Arc<Mutex<Vec<(Key, SharedHttpConnector)>>> =
        Arc::new(Mutex::new(vec![(key(expected), build(expected))]));
    http_client_fn(move |settings, _components| {
        let wanted = key(settings);
        // A poisoned lock only means another thread panicked while
        // pushing: the list is still whole.
        let mut built = built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = built.iter().find(|(k, _)| *k == wanted) {
            return c.clone();
        }
        tracing::debug!(connect_timeout = ?wanted.0, read_timeout = ?wanted.1, "new HTTPS connector");
        let connector = build(settings);
        built.push((wanted, connector.clone()));
        connector
    })
}

/// The process's HTTPS client: the SDK's default connector, built now for
/// `expected` ([`crate::context::connector_settings`]).
pub fn shared_https_client(expected: &HttpConnectorSettings) -> SharedHttpClient {
    cached_client(expected, https_connector)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::BehaviorVersion;

    /// Three EC2 clients (three regions) built from one configuration with
    /// the shared client, each making a call to a closed port: one
    /// connector was built, before any client existed, and every call went
    /// through it.
    #[tokio::test]
    async fn every_client_uses_the_connector_built_at_start_up() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = builds.clone();
        let expected = crate::context::connector_settings();
        let http = cached_client(&expected, move |s| {
            counted.fetch_add(1, Ordering::SeqCst);
            https_connector(s)
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1, "built before any client");
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(crate::context::timeouts())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            let conf = aws_sdk_ec2::config::Builder::from(&sdk)
                .region(aws_sdk_ec2::config::Region::new(region))
                .build();
            let err = aws_sdk_ec2::Client::from_conf(conf)
                .describe_vpcs()
                .send()
                .await
                .unwrap_err();
            assert!(
                matches!(err, aws_sdk_ec2::error::SdkError::DispatchFailure(_)),
                "{err:?}"
            );
        }
        assert_eq!(
            builds.load(Ordering::SeqCst),
            1,
            "the clients asked for the settings built at start-up"
        );
    }
}
