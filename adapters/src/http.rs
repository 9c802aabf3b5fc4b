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
//! The roots it trusts are compiled in ([`TrustedRoots`]): reading the
//! system's store (on Debian, a bundle and a directory of ~290 files, each
//! certificate parsed) was the largest part of a function's start-up, and
//! parsing Mozilla's ~150 roots (the SDK takes them as PEM and decodes and
//! parses each one whenever a connector is built) the largest after it. So
//! a process whose every region is in AWS's commercial partition, talking
//! to AWS's own endpoints, trusts the five roots of Amazon Trust Services,
//! which AWS's endpoints chain to and which ATS asks custom trust stores to
//! hold (<https://www.amazontrust.com/repository/>); anything else (China,
//! GovCloud, ISO or sovereign regions, or an `AWS_ENDPOINT_URL*`) trusts
//! Mozilla's whole program. An operator who sets `SSL_CERT_FILE` or
//! `SSL_CERT_DIR` (a TLS-inspecting proxy's CA, say) gets the system's store
//! from those paths, as OpenSSL would read them, and `LBGP_TLS_ROOTS`
//! (`amazon`, `mozilla`, `system`) chooses outright.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use base64::Engine as _;
use rustls_pki_types::CertificateDer;

/// The settings a connector is chosen by: what the SDK's own client keys
/// its connectors on.
type Key = (Option<Duration>, Option<Duration>);

fn key(settings: &HttpConnectorSettings) -> Key {
    (settings.connect_timeout(), settings.read_timeout())
}

/// Where the HTTPS connectors' trusted root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// The five roots of Amazon Trust Services (Amazon Root CA 1–4 and
    /// Starfield Services Root Certificate Authority – G2), taken from the
    /// compiled-in Mozilla program: what AWS's endpoints in the commercial
    /// partition chain to.
    Amazon,
    /// Mozilla's root program, compiled in (`webpki-root-certs`): nothing
    /// read from disk. Amazon Trust Services' roots are in it.
    Bundled,
    /// The system's store, read once per process by the SDK
    /// (`rustls-native-certs`, which honours `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`).
    System,
}

/// The subjects' common names of Amazon Trust Services' roots
/// (<https://www.amazontrust.com/repository/>: "we recommend that all
/// five of the above roots be included in the trust store").
const AMAZON_TRUST_SERVICES_ROOTS: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

/// True for a region of AWS's commercial partition (`aws`): the
/// partition's own pattern, `^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`, so
/// `us-gov-west-1`, `cn-north-1`, `us-iso-east-1` or `eusc-de-east-1` are
/// not.
fn in_commercial_partition(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let word = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    matches!(parts.as_slice(), [area, name, n]
        if ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(area) && word(name) && number(n))
}

impl TrustedRoots {
    /// The roots for this process's environment: `LBGP_TLS_ROOTS` when set;
    /// else [`TrustedRoots::System`] when `SSL_CERT_FILE` or `SSL_CERT_DIR`
    /// is set to something (the operator chose a store); else
    /// [`TrustedRoots::Amazon`] when the home region (`AWS_REGION`) and
    /// every mesh region (`LBGP_REGIONS`) are in the commercial partition
    /// and no `AWS_ENDPOINT_URL*` points elsewhere; else
    /// [`TrustedRoots::Bundled`]. `vars` lists the environment.
    pub fn from_env(vars: &[(String, String)]) -> Self {
        let var = |name: &str| {
            vars.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        match var("LBGP_TLS_ROOTS").map(str::to_ascii_lowercase).as_deref() {
            Some("amazon") => return TrustedRoots::Amazon,
            Some("mozilla") => return TrustedRoots::Bundled,
            Some("system") => return TrustedRoots::System,
            Some(other) => {
                // Start-up still succeeds (the safe, wider store is used);
                // the operator is told what was not understood.
                tracing::warn!(
                    value = other,
                    "LBGP_TLS_ROOTS is not amazon, mozilla or system: trusting Mozilla's roots"
                );
                return TrustedRoots::Bundled;
            }
            None => {}
        }
        if var("SSL_CERT_FILE").is_some() || var("SSL_CERT_DIR").is_some() {
            return TrustedRoots::System;
        }
        let custom_endpoint = vars
            .iter()
            .any(|(k, v)| k.starts_with("AWS_ENDPOINT_URL") && !v.is_empty());
        let regions = var("LBGP_REGIONS").unwrap_or_default();
        let commercial = var("AWS_REGION").is_some_and(in_commercial_partition)
            && regions
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .all(in_commercial_partition);
        if commercial && !custom_endpoint {
            TrustedRoots::Amazon
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
                .with_pem_certificate(pem(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter())),
            TrustedRoots::Amazon => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem(amazon_roots())),
        };
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .unwrap_or_default()
    }
}

/// Amazon Trust Services' roots among Mozilla's: each root names its CN in
/// its subject (and, self-signed, its issuer), so a byte search of the
/// certificate finds it without parsing all ~150 (the test parses them and
/// checks that exactly the five are found). Two patterns, not five: every
/// certificate is scanned once per pattern, and four of the names share
/// "Amazon Root CA ".
fn amazon_roots() -> impl Iterator<Item = &'static CertificateDer<'static>> {
    const AMAZON: &[u8] = b"Amazon Root CA ";
    let amazon = memchr::memmem::Finder::new(AMAZON);
    let starfield = memchr::memmem::Finder::new(AMAZON_TRUST_SERVICES_ROOTS[4].as_bytes());
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter(move |cert| {
            let der: &[u8] = cert.as_ref();
            amazon
                .find(der)
                .and_then(|at| der.get(at + AMAZON.len()))
                .is_some_and(|n| (b'1'..=b'4').contains(n))
                || starfield.find(der).is_some()
        })
}

/// Certificates as one PEM bundle: the form the SDK's trust store takes.
fn pem<'a>(certs: impl Iterator<Item = &'a CertificateDer<'static>>) -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for cert in certs {
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
static TLS_CONTEXT: LazyLock<TlsContext> = LazyLock::new(|| {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let roots = TrustedRoots::from_env(&vars);
    tracing::debug!(?roots, "TLS roots chosen");
    roots.tls_context()
});

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
        let pem = String::from_utf8(pem(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter())).unwrap();
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

    /// The Amazon store is exactly Amazon Trust Services' five roots: each
    /// one's subject (parsed as X.509, not searched) names one of them,
    /// none is missing, and the SDK accepts them.
    #[test]
    fn the_amazon_roots_are_amazon_trust_services_five() {
        let mut subjects: Vec<String> = amazon_roots()
            .map(|cert| {
                let anchor = webpki::anchor_from_trusted_cert(cert).unwrap();
                let subject = anchor.subject.as_ref();
                AMAZON_TRUST_SERVICES_ROOTS
                    .iter()
                    .find(|cn| subject.windows(cn.len()).any(|w| w == cn.as_bytes()))
                    .map(|cn| (*cn).to_owned())
                    .unwrap_or_else(|| format!("an unexpected root: {subject:?}"))
            })
            .collect();
        subjects.sort();
        assert_eq!(subjects, AMAZON_TRUST_SERVICES_ROOTS.to_vec());
        let _ = https_connector_trusting(
            &crate::context::connector_settings(),
            TrustedRoots::Amazon.tls_context(),
        );
    }

    #[test]
    fn commercial_regions_are_told_from_the_other_partitions() {
        for r in [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "il-central-1",
            "mx-central-1",
            "ca-west-1",
        ] {
            assert!(in_commercial_partition(r), "{r}");
        }
        for r in [
            "us-gov-west-1",
            "cn-north-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eusc-de-east-1",
            "us-east",
            "",
        ] {
            assert!(!in_commercial_partition(r), "{r}");
        }
    }

    #[test]
    fn the_environment_chooses_the_roots() {
        let env = |pairs: &[(&str, &str)]| -> TrustedRoots {
            let mut vars: Vec<(String, String)> = vec![
                ("AWS_REGION".into(), "eu-west-1".into()),
                ("LBGP_REGIONS".into(), "us-east-1,eu-west-1".into()),
            ];
            for (k, v) in pairs {
                vars.retain(|(n, _)| n != k);
                vars.push(((*k).to_owned(), (*v).to_owned()));
            }
            TrustedRoots::from_env(&vars)
        };
        // AWS's own endpoints in the commercial partition: Amazon's roots.
        assert_eq!(env(&[]), TrustedRoots::Amazon);
        assert_eq!(env(&[("SSL_CERT_FILE", "")]), TrustedRoots::Amazon);
        // Any region elsewhere, or an endpoint of the operator's: Mozilla's.
        assert_eq!(
            env(&[("LBGP_REGIONS", "us-east-1,cn-north-1")]),
            TrustedRoots::Bundled
        );
        assert_eq!(env(&[("AWS_REGION", "us-gov-west-1")]), TrustedRoots::Bundled);
        assert_eq!(env(&[("AWS_REGION", "")]), TrustedRoots::Bundled);
        assert_eq!(
            env(&[("AWS_ENDPOINT_URL_EC2", "https://ec2.example.internal")]),
            TrustedRoots::Bundled
        );
        // An operator's store, then an operator's choice, win.
        assert_eq!(
            env(&[("SSL_CERT_FILE", "/etc/pki/tls/certs/ca-bundle.crt")]),
            TrustedRoots::System
        );
        assert_eq!(env(&[("SSL_CERT_DIR", "/etc/ssl/certs")]), TrustedRoots::System);
        assert_eq!(
            env(&[("SSL_CERT_DIR", "/etc/ssl/certs"), ("LBGP_TLS_ROOTS", "amazon")]),
            TrustedRoots::Amazon
        );
        assert_eq!(env(&[("LBGP_TLS_ROOTS", "Mozilla")]), TrustedRoots::Bundled);
        assert_eq!(env(&[("LBGP_TLS_ROOTS", "system")]), TrustedRoots::System);
        assert_eq!(env(&[("LBGP_TLS_ROOTS", "everything")]), TrustedRoots::Bundled);
    }
}
