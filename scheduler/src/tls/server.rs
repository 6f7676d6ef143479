//! The API port's TLS configuration: one certificate chain and key, ALPN
//! `h2` (gRPC, HTTP/2 clients) and `http/1.1`, and, with a client CA,
//! client certificates verified against it but not required (a client may
//! still authenticate with a token). Pure: built from bytes already read.

use super::pem::{self, TlsError};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// ALPN protocols offered, preferred first: a client that speaks both
/// (curl) gets HTTP/2, which multiplexes its requests.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the API port's TLS files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA bundle verifying client certificates; none asks for none.
    pub client_ca: Option<PathBuf>,
}

/// The files' contents, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsBytes {
    /// The certificate file's bytes.
    pub cert: Vec<u8>,
    /// The key file's bytes.
    pub key: Vec<u8>,
    /// The client CA file's bytes, when there is one.
    pub client_ca: Option<Vec<u8>>,
}

impl ServerTlsFiles {
    /// Reads the files.
    pub fn read(&self) -> Result<ServerTlsBytes, TlsError> {
        Ok(ServerTlsBytes {
            cert: pem::read(&self.cert)?,
            key: pem::read(&self.key)?,
            client_ca: self.client_ca.as_deref().map(pem::read).transpose()?,
        })
    }
}

/// The server configuration `bytes` make (`files` names them in errors).
pub fn server_config(
    files: &ServerTlsFiles,
    bytes: &ServerTlsBytes,
) -> Result<ServerConfig, TlsError> {
    let chain = pem::certificates(&bytes.cert, &files.cert)?;
    let key = pem::private_key(&bytes.key, &files.key)?;
    let provider = super::provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| pair_error(files, source))?;
    let builder = match (&files.client_ca, &bytes.client_ca) {
        (Some(path), Some(ca)) => {
            let roots = pem::roots(ca, path)?;
            // Optional: a client without a certificate is served (and
            // authenticates otherwise); one with a certificate that does
            // not verify is refused in the handshake.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: path.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| pair_error(files, source))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn pair_error(files: &ServerTlsFiles, source: rustls::Error) -> TlsError {
    TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    }
}
