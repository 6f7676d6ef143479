//! HTTPS for the scheduler's clients (the master, the agents' files API,
//! the CLI's scheduler): a hyper connector that speaks `http://` as before
//! and `https://` trusting exactly the CA bundle it was given. Without a
//! CA there is no trust at all, and an `https://` URL fails with
//! [`NO_CA`] naming the flag that gives one, rather than an unknown-issuer
//! error that does not say what to do.

use super::pem::{self, TlsError};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::ClientConfig;
use std::path::Path;
use std::time::Duration;

/// A connector's TLS configuration: the CA bundle to trust, if any.
pub fn client_config(ca_file: Option<&Path>) -> Result<Option<ClientConfig>, TlsError> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    let roots = pem::roots_from_file(path)?;
    let config = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(config))
}

/// What an `https://` URL without a CA fails with, for the caller to name
/// its flag beside.
pub const NO_CA: &str = "no CA file was given to verify an https:// server";

/// A connector for `http://` and, with `tls`, `https://`, HTTP/1.1 only
/// (the Mesos HTTP APIs are HTTP/1.1): Nagle off, connecting for at most
/// `connect_timeout`.
pub fn https_connector(
    tls: Option<ClientConfig>,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let tls = tls.unwrap_or_else(|| {
        // No roots: every https:// handshake fails; callers check the
        // scheme first and answer NO_CA.
        ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    });
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// An HTTP client error with its causes, outermost first: hyper's own
/// message ("client error (Connect)") hides the TLS reason (an unknown
/// issuer, a name mismatch) that tells the user what to fix.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
