//! The API port's TLS configuration, rebuilt when its files change, so
//! that a renewed certificate is served without a restart.
//!
//! The files are read every `interval` and compared with the bytes last
//! tried. Changed bytes that make a good configuration replace the current
//! one: handshakes that start afterwards use it, connections already open
//! keep theirs. Changed bytes that do not (a key that does not match, a
//! file half-written) are logged once and the old configuration kept;
//! the next change is tried again, so a certificate and key replaced one
//! after the other end up loaded together.

use super::pem::TlsError;
use super::server::{server_config, ServerTlsBytes, ServerTlsFiles};
use rustls::ServerConfig;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The configuration new handshakes use.
#[derive(Debug)]
pub struct ReloadingServerConfig {
    files: ServerTlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

/// What one look at the files decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are as last tried.
    Unchanged,
    /// They changed and make a good configuration, now current.
    Loaded,
    /// They changed but make no configuration; the old one is kept.
    Kept(String),
}

impl ReloadingServerConfig {
    /// Loads the files; an error here stops the scheduler's start.
    pub fn load(files: ServerTlsFiles) -> Result<(Self, ServerTlsBytes), TlsError> {
        let bytes = files.read()?;
        let config = server_config(&files, &bytes)?;
        Ok((
            ReloadingServerConfig {
                files,
                current: RwLock::new(Arc::new(config)),
            },
            bytes,
        ))
    }

    /// The configuration for a handshake starting now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Compares `read` (the files as read now) with `last` (the bytes last
    /// tried) and loads them when they changed.
    pub fn on_read(
        &self,
        last: &mut Option<ServerTlsBytes>,
        read: Result<ServerTlsBytes, TlsError>,
    ) -> Reload {
        let bytes = match read {
            Ok(bytes) => bytes,
            // A file replaced by remove-then-write is briefly missing:
            // nothing to try yet, and the next read sees the new one.
            Err(e) => {
                return if last.is_some() {
                    *last = None;
                    Reload::Kept(e.to_string())
                } else {
                    Reload::Unchanged
                };
            }
        };
        if last.as_ref() == Some(&bytes) {
            return Reload::Unchanged;
        }
        let result = server_config(&self.files, &bytes);
        *last = Some(bytes);
        match result {
            Ok(config) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
                Reload::Loaded
            }
            Err(e) => Reload::Kept(e.to_string()),
        }
    }

    /// Polls the files every `interval` until `shutdown`. `loaded`: the
    /// bytes [`Self::load`] read.
    pub async fn watch(
        self: Arc<Self>,
        loaded: ServerTlsBytes,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut last = Some(loaded);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let files = self.files.clone();
            let read = match tokio::task::spawn_blocking(move || files.read()).await {
                Ok(read) => read,
                Err(_) => continue,
            };
            match self.on_read(&mut last, read) {
                Reload::Unchanged => {}
                Reload::Loaded => tracing::info!(
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded; new connections use it"
                ),
                Reload::Kept(error) => tracing::warn!(
                    %error,
                    "TLS files changed but cannot be used; the previous certificate is kept"
                ),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A self-signed pair for `name`, as PEM bytes (certificate, key).
    fn pair(name: &str) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }

    #[test]
    fn changed_files_load_once_and_a_bad_pair_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = ServerTlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            client_ca: None,
        };
        let (cert, key) = pair("first");
        std::fs::write(&files.cert, &cert).unwrap();
        std::fs::write(&files.key, &key).unwrap();
        let (tls, loaded) = ReloadingServerConfig::load(files.clone()).unwrap();
        assert_eq!(
            tls.current().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let mut last = Some(loaded.clone());
        let first = tls.current();

        assert_eq!(
            tls.on_read(&mut last, Ok(loaded.clone())),
            Reload::Unchanged
        );
        assert!(Arc::ptr_eq(&first, &tls.current()));

        let (cert2, key2) = pair("second");
        let renewed = ServerTlsBytes {
            cert: cert2.clone(),
            key: key2,
            client_ca: None,
        };
        assert_eq!(tls.on_read(&mut last, Ok(renewed.clone())), Reload::Loaded);
        let second = tls.current();
        assert!(!Arc::ptr_eq(&first, &second));

        // The new certificate with the old key: refused, the second kept,
        // and not tried again until the files change.
        let mismatched = ServerTlsBytes {
            cert: cert2,
            key: key.clone(),
            client_ca: None,
        };
        assert!(matches!(
            tls.on_read(&mut last, Ok(mismatched.clone())),
            Reload::Kept(_)
        ));
        assert!(Arc::ptr_eq(&second, &tls.current()));
        assert_eq!(tls.on_read(&mut last, Ok(mismatched)), Reload::Unchanged);

        // A file briefly missing, then back as it was: loaded again.
        let missing = files.read().map(|_| ()).and_then(|()| {
            crate::tls::pem::read(&dir.path().join("gone.pem")).map(|_| renewed.clone())
        });
        assert!(matches!(tls.on_read(&mut last, missing), Reload::Kept(_)));
        assert_eq!(tls.on_read(&mut last, Ok(renewed)), Reload::Loaded);
    }
}
