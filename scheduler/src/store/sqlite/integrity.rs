//! The store checks itself when it is opened, before anything reads or
//! migrates it: SQLite's `PRAGMA quick_check` (every page's structure,
//! without the cost of matching indexes to tables) and the tables its
//! schema version must have. A corrupt store used anyway served for hours
//! on half its rows, logging `database disk image is malformed` and
//! skipping reconciliation; now the scheduler refuses it at start, naming
//! the file and how to restore it ([`StoreError::Corrupt`],
//! [`StoreError::MissingTables`]).
//!
//! It decides nothing else and repairs nothing: a damaged store is the
//! operator's to restore from a backup.

use super::migrations;
use crate::store::StoreError;
use rusqlite::{Connection, ErrorCode};
use std::path::Path;

/// How many of `quick_check`'s findings the error quotes: enough to see
/// what kind of damage it is, not a page of them.
const PROBLEMS_QUOTED: u32 = 5;

/// Checks the store at `path`, at schema `version`, through `conn`.
pub(super) fn check(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let problems = quick_check(conn).map_err(|e| classify(path, e))?;
    if !problems.is_empty() {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            problems,
        });
    }
    let missing = missing_tables(conn, version).map_err(|e| classify(path, e))?;
    if !missing.is_empty() {
        return Err(StoreError::MissingTables {
            path: path.to_owned(),
            version,
            missing,
        });
    }
    Ok(())
}

/// What `PRAGMA quick_check` found wrong; empty when it says `ok`.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA quick_check({PROBLEMS_QUOTED})"))?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let line = row?;
        if line != "ok" {
            problems.push(line);
        }
    }
    Ok(problems)
}

/// The tables a store at `version` must have and has not.
fn missing_tables(conn: &Connection, version: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?;
    let mut missing = Vec::new();
    for (since, table) in migrations::TABLES {
        if *since <= version && !stmt.exists([table])? {
            missing.push((*table).to_owned());
        }
    }
    Ok(missing)
}

/// A SQLite error as the store reports it: damage SQLite itself noticed
/// (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, on open or on any read of a bad
/// page) is [`StoreError::Corrupt`], anything else [`StoreError::Sqlite`].
pub(super) fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_owned(),
            problems: vec![source.to_string()],
        },
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{SqliteStore, DB_FILE};
    use crate::store::{StoreError, RESTORE_HINT};
    use std::io::{Seek, SeekFrom, Write};

    /// A store of `jobs` jobs, closed (its WAL copied back into the file).
    fn store_with_jobs(dir: &std::path::Path, jobs: u32) {
        let mut store = SqliteStore::open(dir).unwrap();
        for n in 0..jobs {
            super::super::tests::create(&mut store, &format!("job-{n}"), 50, 0);
        }
    }

    #[test]
    fn garbage_in_the_middle_of_the_file_is_refused_naming_the_file_and_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        store_with_jobs(dir.path(), 400);
        let path = dir.path().join(DB_FILE);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 64 * 1024, "enough pages for garbage to hit: {size}");
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(size / 2)).unwrap();
        file.write_all(&[0xA5; 8192]).unwrap();
        drop(file);

        let err = SqliteStore::open(dir.path())
            .err()
            .expect("a corrupt store is refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(RESTORE_HINT), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5A; 16 * 1024]).unwrap();
        let err = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_store_missing_a_table_of_its_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        store_with_jobs(dir.path(), 1);
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch("DROP TABLE pods").unwrap();
        drop(conn);
        match SqliteStore::open(dir.path()) {
            Err(StoreError::MissingTables { missing, .. }) => assert_eq!(missing, ["pods"]),
            other => panic!("expected MissingTables, got {:?}", other.err()),
        }
    }
}
