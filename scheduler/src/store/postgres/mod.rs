//! A [`super::Store`] on PostgreSQL (`--store postgres://...`), so that
//! scheduler replicas share one state and a PostgreSQL primary/replica
//! pair carries it across machines. Same semantics as SQLite: a commit is
//! one transaction (durable when it returns: PostgreSQL's
//! `synchronous_commit` default), every revisioned change bumps one
//! store-wide revision, the same rows, migrations with a version check
//! that refuses a newer schema. The database itself enforces one live run
//! per instance as the engine rules it (a trigger on inserted runs,
//! [`schema`] migration 3) and fencing (the
//! leader epoch, checked under a row lock in every commit of a handle that
//! claimed).
//!
//! # The client, and why a thread of its own
//! The client is `tokio-postgres`, async. The [`super::Store`] traits stay
//! synchronous: the engine is pure, and the runner calls the store from
//! inside the scheduler's runtime (under `block_in_place`), the API from
//! `spawn_blocking`, start-up code from async functions. Each handle
//! therefore owns a thread with a current-thread runtime that owns its
//! connection ([`session`]); a call is sent to it and the caller waits for
//! the answer. So:
//! - the connection's I/O is driven by a runtime that never blocks and is
//!   never the caller's (blocking a worker of the scheduler's runtime on a
//!   future of that same runtime could deadlock it);
//! - calls are served one at a time, in order: a commit's transaction
//!   never interleaves with another call of the same handle, as SQLite's
//!   one connection;
//! - the caller's data is turned into owned rows on the caller's thread
//!   (where a commit's secrets are sealed), and only I/O runs on the store
//!   thread.
//!
//! # One round trip per commit
//! A commit is one flight of pipelined requests on the connection: BEGIN,
//! the fencing check, the revision bump, one statement per table (rows as
//! `UNNEST` arrays), COMMIT, each written before any answer is awaited
//! ([`session::flight`]). The server runs them in order, so the semantics
//! are those of statements run one by one: the fencing check
//! (`drover_fence`, [`schema`]) takes the epoch row's share lock first and
//! raises an error on a newer epoch, which aborts the transaction, and a
//! COMMIT after any error is a rollback; a request the client could not
//! even encode turns the COMMIT into a ROLLBACK before it is sent. Rows
//! name the new revision with a sub-select, since it is not known before
//! the flight. `migrate-store` copies each table with one binary COPY.
//!
//! A lost connection fails the call in progress (its outcome unknown to
//! the caller: the engine stops, and a restart reloads what was stored)
//! and is reopened by the next call.
//!
//! # Layout
//! - [`schema`]: the migrations and the version check.
//! - [`session`]: the store thread, the connection and flights.
//! - `write`: [`super::Store::commit`] and the leader claim.
//! - `read`: [`super::StoreRead`] and the engine's start-up load.
//! - [`import`] copies a SQLite store in (`migrate-store`).

/// Owned parameters ([`Param`]) for a call.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::store::postgres::Param),*]
    };
}

pub mod import;
mod read;
pub mod schema;
mod session;
mod write;

use super::url::redact;
use super::{Epoch, StoreError};
use crate::model::secret::Sealer;
use crate::store::secret_key::SecretKey;
use futures_util::future::BoxFuture;
use session::{Session, StoreThread};
use std::sync::Arc;

/// The name of a writer's store thread ([`PostgresStore::open`]); the
/// benchmark reads its CPU time and writes from `/proc`.
pub const WRITER_THREAD: &str = "drover-pg-write";
/// The name of a reader's store thread ([`PostgresStore::open_reader`]).
pub const READER_THREAD: &str = "drover-pg-read";

/// A PostgreSQL-backed store (one connection, on a thread of its own).
pub struct PostgresStore {
    url: String,
    thread: StoreThread,
    /// Seals secret values on write and opens them on read (see
    /// [`super::sqlite::SqliteStore`]).
    sealer: Option<Arc<dyn Sealer>>,
    /// The leader epoch this handle claimed; its commits check it.
    epoch: Option<Epoch>,
}

/// A parameter owned by a call (it crosses to the store thread).
pub(crate) type Param = Box<dyn tokio_postgres::types::ToSql + Send + Sync>;

/// Borrows owned parameters as the client takes them.
pub(crate) fn borrowed(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

impl PostgresStore {
    /// Connects, checks the schema's version and brings it up to date.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url, WRITER_THREAD)?;
        store
            .call(|s| Box::pin(async move { schema::migrate(s.client().await?).await }))?
            .map_err(|e| match e {
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
        Self::connect(url, READER_THREAD)
    }

    /// The store, sealing and opening secret values with `key`.
    pub fn with_secret_key(mut self, key: SecretKey) -> Self {
        self.sealer = Some(key.into_sealer());
        self
    }

    fn connect(url: &str, name: &str) -> Result<Self, StoreError> {
        let thread = StoreThread::start(url, name).map_err(|e| StoreError::Postgres {
            url: redact(url),
            detail: ": cannot start the store's thread".into(),
            source: Box::new(e),
        })?;
        let store = PostgresStore {
            url: url.to_owned(),
            thread,
            sealer: None,
            epoch: None,
        };
        store.call(|s| Box::pin(async move { s.client().await.map(|_| ()) }))?;
        Ok(store)
    }

    /// The server, password removed.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }

    /// Runs `f` with the session (reconnected if the connection was lost)
    /// on the store's thread and waits for it (see the module doc).
    pub(crate) fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'s> FnOnce(&'s mut Session) -> BoxFuture<'s, Result<R, tokio_postgres::Error>>
            + Send
            + 'static,
    {
        match self.thread.call(f) {
            Some(answer) => answer.map_err(|e| self.err(e)),
            None => Err(StoreError::Postgres {
                url: self.display_url(),
                detail: ": the store's thread stopped".into(),
                source: "the store's thread stopped".into(),
            }),
        }
    }

    fn err(&self, source: tokio_postgres::Error) -> StoreError {
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
