//! The credentials file, read again whenever it changes: an operator adds
//! a user or revokes a token by editing the file, without a restart.
//!
//! The file is polled (once a second) and compared by content, not by
//! modification time: editors and config managers replace files by rename,
//! some keep the time, and a poll sees all of them the same way. A file
//! that no longer parses is logged and the credentials read before are
//! kept: a typo must not lock everybody out, or let everybody in.

use super::credentials::{Credentials, CredentialsError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// The credentials file and what it last said.
#[derive(Debug)]
pub struct CredentialsFile {
    path: PathBuf,
    current: RwLock<Arc<Credentials>>,
    /// The text last read (parsed or not), to see a change.
    last_text: std::sync::Mutex<String>,
}

/// The credentials file cannot be read or used at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not readable.
    #[error("cannot read credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not usable.
    #[error("credentials file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CredentialsError,
    },
}

impl CredentialsFile {
    /// Reads the file; it must exist and parse.
    pub fn load(path: &Path) -> Result<CredentialsFile, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let credentials = Credentials::parse(&text).map_err(|source| LoadError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Ok(CredentialsFile {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(credentials)),
            last_text: std::sync::Mutex::new(text),
        })
    }

    /// The credentials as last read.
    pub fn current(&self) -> Arc<Credentials> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the file again; takes what it says if it changed and parses.
    /// Returns whether the credentials changed.
    pub fn reload(&self) -> bool {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "cannot read the credentials file; keeping the credentials read before");
                return false;
            }
        };
        let mut last = match self.last_text.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *last == text {
            return false;
        }
        let parsed = Credentials::parse(&text);
        *last = text;
        match parsed {
            Ok(credentials) => {
                tracing::info!(path = %self.path.display(), users = credentials.len(),
                    "credentials file changed; new credentials in use");
                let mut current = match self.current.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = Arc::new(credentials);
                true
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e,
                    "the credentials file changed but cannot be used; keeping the credentials read before");
                false
            }
        }
    }

    /// Polls the file every `every` until `stop`, calling `changed` after
    /// each change taken.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        stop: CancellationToken,
        changed: impl Fn() + Send + 'static,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let file = self.clone();
            let took = tokio::task::spawn_blocking(move || file.reload()).await;
            if matches!(took, Ok(true)) {
                changed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credentials::digest_text;

    fn user(name: &str, token: &str) -> String {
        format!(
            "users:\n  - {{name: {name}, role: user, tokens: [{}]}}\n",
            digest_text(token)
        )
    }

    #[test]
    fn a_change_is_taken_and_a_broken_file_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        std::fs::write(&path, user("alice", "t1")).unwrap();
        let file = CredentialsFile::load(&path).unwrap();
        assert!(!file.reload(), "unchanged");
        // Replaced by rename, as editors do.
        let next = dir.path().join("next");
        std::fs::write(&next, user("bob", "t2")).unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(file.reload());
        assert!(file.current().by_token("t1").is_none(), "revoked");
        assert_eq!(file.current().by_token("t2").unwrap().name, "bob");
        std::fs::write(&path, "users: [{name: carol, role: king}]").unwrap();
        assert!(!file.reload());
        assert_eq!(file.current().by_token("t2").unwrap().name, "bob");
        std::fs::remove_file(&path).unwrap();
        assert!(!file.reload());
        assert!(file.current().by_token("t2").is_some());
    }

    #[test]
    fn a_missing_or_broken_file_refuses_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.yaml");
        let error = CredentialsFile::load(&path).unwrap_err().to_string();
        assert!(error.starts_with("cannot read credentials file"), "{error}");
        std::fs::write(&path, "users: [{name: a, role: king}]").unwrap();
        let error = CredentialsFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("role 'king'"), "{error}");
    }
}
