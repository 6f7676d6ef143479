//! TLS on rustls (the ring provider: no C toolchain beyond ring's own),
//! for the scheduler's API port and for its HTTPS clients (the master, the
//! agents, the CLI's scheduler).
//!
//! - [`pem`]: certificates, keys and CA bundles read from PEM files, with
//!   errors naming the file.
//! - [`server`]: the API port's `ServerConfig` from a certificate, a key
//!   and an optional client CA; ALPN `h2` and `http/1.1`.
//! - [`reload`]: that configuration rebuilt when its files change; new
//!   handshakes take the new one, a bad new pair is logged and the old kept.
//! - [`client`]: an HTTPS-capable connector trusting one CA file.
//!
//! Nothing here reads flags or the environment: paths come from `config`.

pub mod client;
pub mod pem;
pub mod reload;
pub mod server;

use std::sync::Arc;

/// The crypto provider every configuration here is built with, named
/// rather than left to the process default so that a dependency enabling
/// another provider cannot make the choice ambiguous. rustls marks ring's
/// provider deprecated because it lacks post-quantum key exchange
/// (X25519MLKEM768); aws-lc-rs has it but needs CMake and a C toolchain in
/// every build, so ring it is until that cost is accepted.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
