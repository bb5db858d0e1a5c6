//! The SDK client's HTTPS transport: the SDK's own hyper + rustls client, trusting the system
//! CA bundle file instead of the platform's native roots, for a Lambda's INIT.
//!
//! The SDK's default client loads the native roots, which on Linux means the bundle *and*
//! every certificate file in the certificate directory; one bundle file holds the same roots at
//! a fraction of the parsing. Measured with `lambda-bench` (INIT, process start to the first
//! `/invocation/next`, median of 41 interleaved cold starts; the default client through a
//! temporary switch): `command-api` 2.36 ms against 5.81 ms with the SDK's default client,
//! `query-api` 2.61 ms against 5.61 ms (hello-world `lambda_runtime` 1.46 ms).
//!
//! A wrapper used to keep the SDK from building a throwaway connector when the client is
//! validated (a second parse of the bundle). Measured the same way, forwarding that warm-up or
//! not made no difference beyond noise (median of 12 interleaved pairs in six runs: 0.0 ms;
//! single runs from -1.5 to +0.5 ms), so the client is used as the SDK builds it.

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

/// System CA bundles: Amazon Linux (Lambda's `provided.al2023`) and RHEL, then Debian and Ubuntu.
const CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// An HTTPS client that trusts exactly the system's CA bundle file.
///
/// `None` (the SDK's default client) when the operator points `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` somewhere, which the default client honours, or when no bundle is found or
/// it is not PEM certificates.
pub(super) fn client_trusting_the_system_bundle() -> Option<SharedHttpClient> {
    if ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        return None;
    }
    let (path, pem) = CA_BUNDLES
        .iter()
        .find_map(|path| Some((*path, std::fs::read(path).ok()?)))?;
    // The TLS configuration is built later (when the SDK validates the client, and on the
    // first request), where a bundle that is not PEM certificates would panic: check the
    // framing now. (Decoding it all would cost as much
    // INIT time as was saved; the OS's tooling writes this file.)
    if !is_pem_certificates(&pem) {
        tracing::warn!(
            bundle = path,
            "the CA bundle is not PEM certificates: using the SDK's default trust store"
        );
        return None;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .ok()?;
    tracing::debug!(bundle = path, "trusting the system CA bundle");
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
}

/// Non-empty, and every `BEGIN CERTIFICATE` marker closed by an `END CERTIFICATE` before the
/// next one opens.
fn is_pem_certificates(pem: &[u8]) -> bool {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let Ok(text) = std::str::from_utf8(pem) else {
        return false;
    };
    let mut rest = text;
    let mut certificates = 0;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = body.find(END) else {
            return false;
        };
        if body[..end].contains("-----BEGIN") {
            return false;
        }
        certificates += 1;
        rest = &body[end + END.len()..];
    }
    certificates > 0
}

#[cfg(test)]
mod tests {
    use super::is_pem_certificates;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_bundle_is_closed_pem_certificates() {
        assert!(is_pem_certificates(
            format!("# comment\n{CERT}{CERT}").as_bytes()
        ));
        for bad in [
            String::new(),
            "not a bundle".to_owned(),
            CERT.replace("-----END CERTIFICATE-----\n", ""),
            format!("-----BEGIN CERTIFICATE-----\n{CERT}"),
        ] {
            assert!(!is_pem_certificates(bad.as_bytes()), "{bad:?}");
        }
        assert!(!is_pem_certificates(&[0xff, 0xfe]));
    }

    #[test]
    fn the_system_bundle_of_this_machine_passes() {
        let pem = super::CA_BUNDLES
            .iter()
            .find_map(|path| std::fs::read(path).ok())
            .expect("a system CA bundle (ca-certificates)");
        assert!(is_pem_certificates(&pem));
    }
}
