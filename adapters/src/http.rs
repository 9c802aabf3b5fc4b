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
//!
//! The roots it trusts are Mozilla's, compiled in ([`TrustedRoots`]):
//! reading the system's store (on Debian, a bundle and a directory of ~290
//! files, each certificate parsed) was the largest part of a function's
//! start-up. An operator who sets `SSL_CERT_FILE` or `SSL_CERT_DIR` (a
//! TLS-inspecting proxy's CA, say) gets the system's store from those paths,
//! as OpenSSL would read them.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use base64::Engine as _;

/// The settings a connector is chosen by: what the SDK's own client keys
/// its connectors on.
type Key = (Option<Duration>, Option<Duration>);

fn key(settings: &HttpConnectorSettings) -> Key {
    (settings.connect_timeout(), settings.read_timeout())
}

/// Where the HTTPS connectors' trusted root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// Mozilla's root program, compiled in (`webpki-root-certs`): nothing
    /// read from disk. Amazon Trust Services' roots, which AWS endpoints
    /// chain to, are in it.
    Bundled,
    /// The system's store, read once per process by the SDK
    /// (`rustls-native-certs`, which honours `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`).
    System,
}

impl TrustedRoots {
    /// [`TrustedRoots::System`] when `SSL_CERT_FILE` or `SSL_CERT_DIR` is
    /// set to something (the operator chose a store), else bundled.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name| var(name).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            TrustedRoots::System
        } else {
            TrustedRoots::Bundled
        }
    }

    /// The TLS context that trusts these roots.
    fn tls_context(self) -> TlsContext {
        let store = match self {
            TrustedRoots::System => TrustStore::default(),
            TrustedRoots::Bundled => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(bundled_pem()),
        };
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .unwrap_or_default()
    }
}

/// Mozilla's roots as one PEM bundle: the form the SDK's trust store takes.
fn bundled_pem() -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_200);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = engine.encode(cert.as_ref());
        // PEM lines are 64 characters; base64 output is ASCII, so the
        // byte chunks are whole characters.
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// The process's TLS context, chosen from its environment once.
static TLS_CONTEXT: LazyLock<TlsContext> =
    LazyLock::new(|| TrustedRoots::from_env(|k| std::env::var(k).ok()).tls_context());

/// The SDK's default HTTPS connector for `settings` (timeouts driven by
/// tokio's sleep, as the SDK's own default client does on Lambda), trusting
/// the process's [`TrustedRoots`].
pub fn https_connector(settings: &HttpConnectorSettings) -> SharedHttpConnector {
    https_connector_trusting(settings, TLS_CONTEXT.clone())
}

fn https_connector_trusting(settings: &HttpConnectorSettings, tls: TlsContext) -> SharedHttpConnector {
    let connector = Connector::builder()
        .connector_settings(settings.clone())
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
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

    #[test]
    fn the_bundled_roots_are_mozillas_whole_with_amazons_among_them() {
        let pem = String::from_utf8(bundled_pem()).unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let decoded: Vec<Vec<u8>> = pem
            .split("-----END CERTIFICATE-----\n")
            .filter(|block| !block.is_empty())
            .map(|block| {
                let body: String = block
                    .trim_start_matches("-----BEGIN CERTIFICATE-----\n")
                    .lines()
                    .inspect(|line| assert!(line.len() <= 64, "{line}"))
                    .collect();
                engine.decode(body).unwrap()
            })
            .collect();
        let originals: Vec<&[u8]> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| c.as_ref())
            .collect();
        assert!(originals.len() > 100, "{} roots", originals.len());
        assert_eq!(decoded.iter().map(Vec::as_slice).collect::<Vec<_>>(), originals);
        // AWS's endpoints chain to Amazon Trust Services' roots.
        for name in [
            "Amazon Root CA 1",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                originals
                    .iter()
                    .any(|der| der.windows(name.len()).any(|w| w == name.as_bytes())),
                "{name} is not among the bundled roots"
            );
        }
        // The SDK parses the store when the connector is built (and panics
        // on a certificate it cannot use): every bundled root passes.
        let _ = https_connector_trusting(
            &crate::context::connector_settings(),
            TrustedRoots::Bundled.tls_context(),
        );
    }

    #[test]
    fn an_operators_ssl_cert_file_or_dir_selects_the_system_store() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(TrustedRoots::from_env(env(&[])), TrustedRoots::Bundled);
        assert_eq!(
            TrustedRoots::from_env(env(&[("SSL_CERT_FILE", "")])),
            TrustedRoots::Bundled
        );
        assert_eq!(
            TrustedRoots::from_env(env(&[("SSL_CERT_FILE", "/etc/pki/tls/certs/ca-bundle.crt")])),
            TrustedRoots::System
        );
        assert_eq!(
            TrustedRoots::from_env(env(&[("SSL_CERT_DIR", "/etc/ssl/certs")])),
            TrustedRoots::System
        );
    }
}
