//! The SDK client's HTTPS transport: the SDK's own hyper + rustls client, trusting the system
//! CA bundle, and building its TLS configuration once, when the first request needs it.
//!
//! Both choices are about a Lambda's INIT (the `lambda-bench` table in the README):
//! - The SDK's default client loads the platform's native roots, which on Linux means the
//!   bundle *and* every certificate file in the certificate directory. One bundle file holds
//!   the same roots at a fraction of the parsing.
//! - The SDK's client builds a throwaway connector while the SDK client is validated (to warm
//!   its cache of native roots), then builds the real one on the first request. With an
//!   explicit trust store the throwaway build is a second full parse of the bundle, so
//!   [`OneConnectorBuild`] does not forward that warm-up: the bundle is parsed once, not twice.

use aws_sdk_dynamodb::config::{
    ConfigBag, HttpClient, RuntimeComponents, RuntimeComponentsBuilder, SharedHttpClient,
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};

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
    // The TLS configuration is built on the first request, where a bundle that is not PEM
    // certificates would panic: check the framing now. (Decoding it all would cost as much
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
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    Some(SharedHttpClient::new(OneConnectorBuild(client)))
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

/// The SDK's HTTP client minus its warm-up connector build at client validation (see the
/// module docs). Connectors are still built and cached per connector settings by the inner
/// client, on first use.
#[derive(Debug)]
struct OneConnectorBuild(SharedHttpClient);

impl HttpClient for OneConnectorBuild {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _components: &RuntimeComponentsBuilder,
        _cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
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
