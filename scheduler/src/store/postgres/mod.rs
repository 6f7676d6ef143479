//! A [`super::Store`] on PostgreSQL (`--store postgres://...`), so that
//! scheduler replicas share one state and a PostgreSQL primary/replica
//! pair carries it across machines. Same semantics as SQLite: a commit is
//! one transaction (durable when it returns: PostgreSQL's
//! `synchronous_commit` default), every revisioned change bumps one
//! store-wide revision, the same rows, migrations with a version check
//! that refuses a newer schema. The database itself enforces one live run
//! per instance (a partial unique index, [`schema`]) and fencing (the
//! leader epoch, checked under a row lock in every commit of a handle that
//! claimed).
//!
//! # Why a thread per call
//! The [`super::Store`] traits are synchronous and are called from inside
//! the scheduler's tokio runtime. The client is `postgres`, the
//! synchronous face of `tokio-postgres` (same maintainers): it drives its
//! connection on a runtime of its own with `block_on`, which panics on a
//! thread that is already in a runtime, and blocking a runtime worker on a
//! future of the same runtime could deadlock it. So each call runs on a
//! short scoped thread outside any runtime ([`PostgresStore::call`]),
//! which may borrow the caller's data (a `&Change`) and is joined before
//! the call returns. A thread costs tens of microseconds against a network
//! round trip of a transaction.
//!
//! A lost connection fails the call in progress (its outcome unknown to
//! the caller: the engine stops, and a restart reloads what was stored)
//! and is reopened by the next call.
//!
//! # Layout
//! - [`schema`]: the migrations and the version check.
//! - `write`: [`super::Store::commit`] and the leader claim.
//! - `read`: [`super::StoreRead`] and the engine's start-up load.

pub mod import;
mod read;
pub mod schema;
mod write;

use super::url::redact;
use super::{Epoch, StoreError};
use crate::model::secret::Sealer;
use crate::store::secret_key::SecretKey;
use postgres::{Client, NoTls};
use std::sync::{Arc, Mutex};

/// A PostgreSQL-backed store (one connection).
pub struct PostgresStore {
    url: String,
    client: Mutex<Option<Client>>,
    /// Seals secret values on write and opens them on read (see
    /// [`super::sqlite::SqliteStore`]).
    sealer: Option<Arc<dyn Sealer>>,
    /// The leader epoch this handle claimed; its commits check it.
    epoch: Option<Epoch>,
}

impl PostgresStore {
    /// Connects, checks the schema's version and brings it up to date.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.call(schema::migrate)?.map_err(|e| match e {
            schema::MigrateError::TooNew { found, known } => StoreError::PostgresSchemaTooNew {
                url: redact(url),
                found,
                known,
            },
            schema::MigrateError::Pg(e) => store.err(e),
        })?;
        Ok(store)
    }

    /// A second handle to an opened store, for readers (no migration).
    pub fn open_reader(url: &str) -> Result<Self, StoreError> {
        Self::connect(url)
    }

    /// The store, sealing and opening secret values with `key`.
    pub fn with_secret_key(mut self, key: SecretKey) -> Self {
        self.sealer = Some(key.into_sealer());
        self
    }

    fn connect(url: &str) -> Result<Self, StoreError> {
        let store = PostgresStore {
            url: url.to_owned(),
            client: Mutex::new(None),
            sealer: None,
            epoch: None,
        };
        store.call(|_| Ok(()))?;
        Ok(store)
    }

    /// The server, password removed.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }

    /// Runs `f` with the connection (reopened if it was lost) on a thread
    /// outside any tokio runtime (see the module doc).
    pub(crate) fn call<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let url = &self.url;
        let slot = &mut *guard;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    if slot.as_ref().is_none_or(Client::is_closed) {
                        *slot = Some(Client::connect(url, NoTls)?);
                    }
                    let client = slot.as_mut().expect("connected just above");
                    let out = f(client);
                    if client.is_closed() {
                        *slot = None;
                    }
                    out
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .map_err(|e| self.err(e))
    }

    fn err(&self, source: postgres::Error) -> StoreError {
        let detail = source.as_db_error().map_or_else(String::new, |db| {
            format!(
                ": {} {}{}",
                db.code().code(),
                db.message(),
                db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            )
        });
        StoreError::Postgres {
            url: redact(&self.url),
            detail,
            source: Box::new(source),
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the client blocks on its own runtime, which panics on a
        // thread of the scheduler's: it is closed on a thread of its own.
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(client) = client {
            std::thread::scope(|scope| {
                scope.spawn(move || drop(client));
            });
        }
    }
}
