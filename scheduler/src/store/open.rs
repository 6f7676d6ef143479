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

/// Opens (creating and migrating if needed) the store at `url`, sealing
/// secrets with `key`.
pub fn open(url: &StoreUrl, key: SecretKey) -> Result<Opened, StoreError> {
    match url {
        StoreUrl::Sqlite(dir) => {
            let writer = SqliteStore::open(dir)?.with_secret_key(key);
            let reader = SqliteStore::open_reader(dir)?;
            writer.leave_checkpoints_to_thread()?;
            let checkpointer = Checkpointer::start(dir)?;
            Ok(Opened {
                writer: Box::new(writer),
                reader: Box::new(reader),
                checkpointer: Some(checkpointer),
                location: dir.join(super::sqlite::DB_FILE).display().to_string(),
            })
        }
        StoreUrl::Postgres(pg) => {
            let writer = PostgresStore::open(pg)?.with_secret_key(key);
            let reader = PostgresStore::open_reader(pg)?;
            Ok(Opened {
                location: writer.display_url(),
                writer: Box::new(writer),
                reader: Box::new(reader),
                checkpointer: None,
            })
        }
    }
}
