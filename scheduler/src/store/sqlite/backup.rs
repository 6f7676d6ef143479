//! `drover-scheduler backup`: an online, consistent copy of a store,
//! taken while the scheduler that owns it keeps running.
//!
//! `VACUUM INTO` copies the store as one read transaction sees it: WAL
//! readers never block the writer nor are blocked by it, so the running
//! scheduler goes on committing, and the copy is the store at one
//! revision, never half of a commit. It takes no data-directory lock
//! ([`super::dir_lock`] is the writer's), and it opens the store without
//! creating it. The copy is written beside its target under a `.partial`
//! name, synced, checked (`quick_check`) and only then renamed into place,
//! so a file at the target is always a whole, sound store.
//!
//! Restoring is a file copy (scheduler/README.md, "Backup and restore").

use super::{integrity, migrations, read, DB_FILE};
use crate::store::{Revision, StoreError, StoreIdentity};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a backup holds, for the operator to check against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// The store it is a copy of.
    pub identity: StoreIdentity,
    /// The framework id it will re-subscribe with.
    pub framework_id: Option<String>,
    /// The revision it was taken at.
    pub revision: Revision,
    /// How many jobs it holds.
    pub jobs: u64,
    /// Its size.
    pub bytes: u64,
}

/// Copies the store in `data_dir` to the new file `to`.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(StoreError::NoStore { path: source });
    }
    if to.exists() {
        return Err(StoreError::BackupTargetExists {
            path: to.to_owned(),
        });
    }
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Said here, or SQLite would say only that it cannot open a file.
        if !dir.is_dir() {
            return Err(StoreError::BackupTarget {
                path: to.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no directory {}", dir.display()),
                ),
            });
        }
    }
    let partial = partial_name(to);
    let target_error = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::BackupTarget { path, source }
    };
    let Some(partial_text) = partial.to_str() else {
        return Err(target_error(to)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path is not UTF-8",
        )));
    };
    // A partial file is what an interrupted backup left: never a store.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(target_error(&partial)(e)),
    }

    let conn = open_existing(&source)?;
    let version = migrations::current(&conn).map_err(|e| integrity::classify(&source, e))?;
    if version == 0 {
        return Err(StoreError::NoStore { path: source });
    }
    conn.execute("VACUUM INTO ?1", [partial_text])
        .map_err(|e| integrity::classify(&source, e))?;
    drop(conn);

    let report = verify(&partial, to).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, to).map_err(target_error(to))?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(target_error(dir))?;
    }
    Ok(report)
}

/// Opens an existing store for reading beside its running writer: no
/// create, no pragma that writes, and a wait for the writer's commits.
fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let wrap = |e| integrity::classify(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(wrap)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
    Ok(conn)
}

/// Syncs the copy at `partial`, checks it as a store is checked at open,
/// and reads what it holds (reported under its final name `to`).
fn verify(partial: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::BackupTarget {
            path: partial.to_owned(),
            source,
        })?;
    let conn = open_existing(partial)?;
    let wrap = |e| integrity::classify(partial, e);
    let version = migrations::current(&conn).map_err(wrap)?;
    integrity::check(&conn, partial, version)?;
    let identity = read::read_identity(&conn).map_err(wrap)?;
    let framework_id = read::read_framework_id(&conn).map_err(wrap)?;
    let revision = read::read_revision(&conn).map_err(wrap)?;
    let jobs: i64 = conn
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .map_err(wrap)?;
    let bytes = std::fs::metadata(partial)
        .map_err(|source| StoreError::BackupTarget {
            path: partial.to_owned(),
            source,
        })?
        .len();
    Ok(BackupReport {
        path: to.to_owned(),
        identity,
        framework_id,
        revision,
        jobs: jobs as u64,
        bytes,
    })
}

/// `<to>.partial`, beside the target so the rename stays on one filesystem.
fn partial_name(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::create;
    use super::super::SqliteStore;
    use super::*;
    use crate::model::change::Change;
    use crate::store::{Store, StoreRead};

    #[test]
    fn a_backup_of_a_store_in_use_opens_as_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store
            .commit(&Change {
                framework_id: Some(Some("fw-1".into())),
                ..Change::default()
            })
            .unwrap();
        create(&mut store, "kept", 3, 0);
        let target = dir.path().join("copy").join("backup.sqlite");
        std::fs::create_dir(target.parent().unwrap()).unwrap();

        // The writer still holds the directory and its connection.
        let report = backup(dir.path(), &target).unwrap();
        assert_eq!(report.framework_id.as_deref(), Some("fw-1"));
        assert_eq!(report.jobs, 1);
        assert_eq!(report.identity, store.identity().unwrap());
        assert_eq!(report.revision, store.revision().unwrap());
        assert!(!partial_name(&target).exists());

        let restored = tempfile::tempdir().unwrap();
        std::fs::copy(&target, restored.path().join(DB_FILE)).unwrap();
        let copy = SqliteStore::open(restored.path()).unwrap();
        assert_eq!(copy.identity().unwrap(), store.identity().unwrap());
        assert_eq!(copy.framework_id().unwrap().as_deref(), Some("fw-1"));
        assert!(copy
            .job(&crate::model::ids::JobId::parse("kept").unwrap())
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_backup_never_overwrites_and_needs_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("backup.sqlite");
        assert!(matches!(
            backup(dir.path(), &target),
            Err(StoreError::NoStore { .. })
        ));
        drop(SqliteStore::open(dir.path()).unwrap());
        std::fs::write(&target, b"precious").unwrap();
        assert!(matches!(
            backup(dir.path(), &target),
            Err(StoreError::BackupTargetExists { .. })
        ));
        assert!(matches!(
            backup(dir.path(), &dir.path().join("no-such-dir").join("b.sqlite")),
            Err(StoreError::BackupTarget { .. })
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }
}
