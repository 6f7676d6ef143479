//! HTTP(S) downloads for the fetcher: hyper with rustls, trusting the
//! system's CA roots plus those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when
//! they are set ([`root_sources`]). Redirects are
//! followed (as Mesos' curl does), only 200 is success (Mesos: "received
//! HTTP return code"), and a body that stalls longer than
//! [`STALL_TIMEOUT`] fails (Mesos' `--fetcher_stall_timeout`, 60 s).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;

/// The longest wait for the next bytes of an answer.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client for one task's downloads.
pub struct Downloader {
    client: HttpsClient,
}

impl Downloader {
    /// A client trusting the system's roots (plus `SSL_CERT_FILE`).
    /// Roots that fail to load are logged; with none, HTTPS downloads
    /// fail with an unknown-issuer error that says so.
    pub fn new() -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let (mut added, mut ignored) = (0, 0);
        for loaded in root_sources() {
            for error in &loaded.errors {
                tracing::warn!(%error, "loading a CA certificate for the fetcher");
            }
            let (a, i) = roots.add_parsable_certificates(loaded.certs);
            (added, ignored) = (added + a, ignored + i);
        }
        tracing::debug!(added, ignored, "the fetcher's CA roots");
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// GETs `uri` (following redirects) into a new file at `dest`.
    pub async fn download(&self, uri: &str, dest: &Path) -> Result<(), String> {
        let mut target: http::Uri = uri.parse().map_err(|e| format!("bad URI: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            let request = http::Request::get(target.clone())
                .header(http::header::USER_AGENT, "drover-fetcher")
                .body(Empty::new())
                .map_err(|e| format!("building the request: {e}"))?;
            let response = tokio::time::timeout(STALL_TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| format!("no answer within {STALL_TIMEOUT:?}"))?
                .map_err(|e| format!("downloading: {}", error_chain(&e)))?;
            let status = response.status();
            if status.is_redirection() {
                target = redirect_target(&target, &response)?;
                continue;
            }
            if status != http::StatusCode::OK {
                return Err(format!(
                    "error downloading resource, received HTTP return code {}",
                    status.as_u16()
                ));
            }
            return save(response.into_body(), dest).await;
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }
}

/// Where CA roots come from: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
/// *plus* the system's bundle. (`rustls-native-certs` alone reads the
/// variables instead of the system's store; a task fetching from both a
/// private and a public server needs both.)
fn root_sources() -> Vec<rustls_native_certs::CertificateResult> {
    // The variables when set, else the system's store (openssl-probe).
    let mut sources = vec![rustls_native_certs::load_native_certs()];
    let from_env = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if from_env {
        // The first system bundle that exists (Debian, Fedora, openSUSE,
        // Alpine lay them out so).
        let bundle = [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/ca-bundle.pem",
            "/etc/ssl/cert.pem",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file());
        if let Some(bundle) = bundle {
            sources.push(rustls_native_certs::load_certs_from_paths(
                Some(bundle),
                None,
            ));
        }
    }
    sources
}

/// The whole cause chain: hyper's top error alone says only "client error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The absolute target of a redirect (a relative `Location` is resolved
/// against the URI that answered).
fn redirect_target<B>(from: &http::Uri, response: &http::Response<B>) -> Result<http::Uri, String> {
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| format!("HTTP {} without a Location", response.status()))?;
    if location.starts_with('/') {
        let authority = from
            .authority()
            .map(|a| a.as_str())
            .ok_or("a redirect from a URI without a host")?;
        let scheme = from.scheme_str().unwrap_or("http");
        return format!("{scheme}://{authority}{location}")
            .parse()
            .map_err(|e| format!("bad redirect Location '{location}': {e}"));
    }
    location
        .parse()
        .map_err(|e| format!("bad redirect Location '{location}': {e}"))
}

/// Streams a body into `dest`, failing on a stall.
async fn save(mut body: hyper::body::Incoming, dest: &Path) -> Result<(), String> {
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("creating {}: {e}", dest.display()))?;
    loop {
        let frame = tokio::time::timeout(STALL_TIMEOUT, body.frame())
            .await
            .map_err(|_| format!("the download stalled for {STALL_TIMEOUT:?}"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| format!("reading the body: {}", error_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data)
                .await
                .map_err(|e| format!("writing {}: {e}", dest.display()))?;
        }
    }
    file.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", dest.display()))
}
