//! The embedded [`super::Store`]: one SQLite file in the data directory (bundled
//! SQLite, WAL journal). Every commit is one transaction that bumps the
//! store-wide revision; `synchronous = FULL` makes it durable before
//! [`super::Store::commit`] returns, which is what lets the runner
//! acknowledge a status update right after recording it.
//!
//! It decides nothing: [`write`] writes a [`crate::model::change::Change`]
//! as given, [`read`] reads back what was written, and [`rows`] turns a row
//! into the model's values or a typed corruption error.
//!
//! # Layout
//! - [`dir_lock`]: one scheduler per data directory.
//! - `integrity`: the check at open (`quick_check`, the schema's tables).
//! - [`migrations`]: the schema, as an ordered list of migrations.
//! - `rows`: decoding rows into jobs, runs and pod controls.
//! - `read`: [`super::StoreRead`] and the engine's start-up load.
//! - `write`: [`super::Store::commit`], one transaction per change.
//! - [`checkpoint`]: WAL checkpoints on a thread of their own.
//! - [`backup`]: an online, consistent copy of a store in use.

pub mod backup;
pub mod checkpoint;
pub mod dir_lock;
mod integrity;
pub mod migrations;
mod read;
mod rows;
mod write;

use super::secret_key::SecretKey;
use super::StoreError;
use crate::model::secret::Sealer;
use dir_lock::DirLock;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "drover.sqlite";

/// A SQLite-backed store (one connection).
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Seals secret values on write and opens them on read; None: a
    /// reader (values dropped) or a writer given no key (a value fails the
    /// write).
    sealer: Option<Arc<dyn Sealer>>,
    /// The writer's hold on the data directory (readers hold none).
    _lock: Option<DirLock>,
    /// The leader epoch this handle claimed; its commits check it.
    epoch: Option<super::Epoch>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and brings its
    /// schema up to date; the directory is this store's until it is
    /// dropped ([`StoreError::Locked`] while another process holds it).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let lock = DirLock::take(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut store = Self::connect(&path, Some(lock))?;
        let found = migrations::current(&store.conn).map_err(|e| integrity::classify(&path, e))?;
        if found > migrations::latest() {
            return Err(StoreError::SchemaTooNew {
                path,
                found,
                known: migrations::latest(),
            });
        }
        // Before migrating: a migration must never build on a damaged file.
        let started = std::time::Instant::now();
        integrity::check(&store.conn, &path, found)?;
        tracing::debug!(path = %path.display(), took = ?started.elapsed(), "store integrity checked");
        migrations::migrate_to(&mut store.conn, migrations::latest()).map_err(|e| store.err(e))?;
        Ok(store)
    }

    /// The store, sealing and opening secret values with `key`.
    pub fn with_secret_key(mut self, key: SecretKey) -> Self {
        self.sealer = Some(key.into_sealer());
        self
    }

    /// A second connection to an opened store, for readers.
    pub fn open_reader(data_dir: &Path) -> Result<Self, StoreError> {
        Self::connect(&data_dir.join(DB_FILE), None)
    }

    fn connect(path: &Path, lock: Option<DirLock>) -> Result<Self, StoreError> {
        // A file too damaged to be read as a database fails here already.
        let wrap = |e| integrity::classify(path, e);
        let conn = Connection::open(path).map_err(wrap)?;
        // WAL lets API readers proceed while the runner writes; FULL syncs
        // each commit, the promise behind "acknowledged only once stored".
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        // 16 MiB of page cache instead of SQLite's 2 MiB: a batch of a few
        // thousand status updates touches more pages than 2 MiB holds, and
        // the spill (pagerStress: a WAL write and a re-read per page) was a
        // quarter of the runner's time storing 100,000 updates (perf). 32 MiB
        // stored hardly faster (drover-bench `updates`: 44.4k against 43.0k
        // updates/s, within the noise) and cost 66 B more per task at
        // 100,000 tasks, as each connection fills its own cache.
        conn.pragma_update(None, "cache_size", -16 * 1024)
            .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            sealer: None,
            _lock: lock,
            epoch: None,
        })
    }

    /// Stops this connection's commits from copying the WAL back: a
    /// [`checkpoint::Checkpointer`] does that on its own thread.
    /// What stays with the writer is letting the WAL start over: SQLite
    /// rewinds it only when a write begins with every frame copied, which a
    /// writer committing every few ms never lets the other thread achieve,
    /// so in a burst the WAL grew to 130 MB (20,000 tasks) and every commit
    /// paid for new file pages. Past [`WAL_RESTART_PAGES`] the writer copies
    /// the few frames the checkpointer has not yet, so the next write
    /// rewinds.
    pub fn leave_checkpoints_to_thread(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| self.err(e))?;
        self.conn.wal_hook(Some(rewind_when_long));
        Ok(())
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Bytes SQLite holds now, over every connection of the process (its page
/// caches above all): a large part of what a store of many runs costs.
pub fn memory_used() -> u64 {
    // SAFETY: sqlite3_memory_used takes no arguments and only reads
    // SQLite's own counter under its own mutex; it is safe to call from any
    // thread at any time.
    let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    u64::try_from(used).unwrap_or(0)
}

/// WAL frames (4 KiB pages) past which the writer lets the WAL rewind:
/// 16 MiB, a few hundred ms of a burst.
pub const WAL_RESTART_PAGES: i32 = 4096;

/// The writer's WAL hook, after each commit (see
/// [`SqliteStore::leave_checkpoints_to_thread`]). A PASSIVE checkpoint never
/// waits: if the checkpointer holds the lock, the next commit tries again.
fn rewind_when_long(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    if pages >= WAL_RESTART_PAGES {
        if let Err(e) = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, "WAL not rewound this commit");
        }
    }
    Ok(())
}

#[cfg(test)]
mod secret_tests;
#[cfg(test)]
mod tests;
