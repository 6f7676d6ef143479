//! Opening the store `--store` names: the writer the runner holds, a
//! reader for the API, and what must live as long as they do (SQLite's
//! checkpointer). The one place that knows both backends.

use super::secret_key::SecretKey;
use super::sqlite::checkpoint::Checkpointer;
use super::{PostgresStore, SqliteStore, Store, StoreError, StoreRead, StoreUrl};

/// An opened store.
pub struct Opened {
    /// The runner's handle.
    pub writer: Box<dyn Store>,
    /// The API's handle.
    pub reader: Box<dyn StoreRead>,
    /// SQLite's WAL checkpointer: its drop runs a last checkpoint, so it
    /// is kept until the scheduler stops. None on PostgreSQL.
    pub checkpointer: Option<Checkpointer>,
    /// Where it is, for logs and refusals (a PostgreSQL URL without its
    /// password).
    pub location: String,
}

/// A writer opened (and its schema brought up to date) but not yet given
/// its secret key: opening comes first, so that a store the scheduler may
/// not use (a data directory held or read-only) is refused before a key
/// file is made beside it.
pub enum Unkeyed {
    /// SQLite in this data directory.
    Sqlite(SqliteStore, std::path::PathBuf),
    /// PostgreSQL at this URL.
    Postgres(PostgresStore, String),
}

/// Opens (creating and migrating if needed) the store at `url`.
pub fn open(url: &StoreUrl) -> Result<Unkeyed, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(dir) => Unkeyed::Sqlite(SqliteStore::open(dir)?, dir.clone()),
        StoreUrl::Postgres(pg) => Unkeyed::Postgres(PostgresStore::open(pg)?, pg.clone()),
    })
}

impl Unkeyed {
    /// The writer sealing and opening secrets with `key`, a reader beside
    /// it, and SQLite's checkpointer.
    pub fn with_secret_key(self, key: SecretKey) -> Result<Opened, StoreError> {
        match self {
            Unkeyed::Sqlite(writer, dir) => {
                let writer = writer.with_secret_key(key);
                let reader = SqliteStore::open_reader(&dir)?;
                writer.leave_checkpoints_to_thread()?;
                let checkpointer = Checkpointer::start(&dir)?;
                Ok(Opened {
                    location: writer.path().display().to_string(),
                    writer: Box::new(writer),
                    reader: Box::new(reader),
                    checkpointer: Some(checkpointer),
                })
            }
            Unkeyed::Postgres(writer, url) => {
                let writer = writer.with_secret_key(key);
                let reader = PostgresStore::open_reader(&url)?;
                Ok(Opened {
                    location: writer.display_url(),
                    writer: Box::new(writer),
                    reader: Box::new(reader),
                    checkpointer: None,
                })
            }
        }
    }
}
