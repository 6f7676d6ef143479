//! WAL checkpoints on their own thread. SQLite's default has the writer
//! copy the WAL back into the database inside a commit once the WAL passes
//! 1,000 pages; in a launch burst that was a tenth of the runner's time
//! (perf), spent while status updates and launches waited behind it. The
//! writer's automatic checkpoints are turned off and this thread runs a
//! PASSIVE checkpoint (which never blocks the writer or readers) on a
//! connection of its own every 200 ms, or at once while it falls behind.
//! Only the writer can let the WAL start over in a burst; it does so past
//! [`super::WAL_RESTART_PAGES`]
//! ([`super::SqliteStore::leave_checkpoints_to_thread`]).

use super::DB_FILE;
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is looked at: a burst writes a few MB a second, so a
/// checkpoint every 200 ms leaves the writer's rewind little to copy.
const INTERVAL: Duration = Duration::from_millis(200);

/// Uncopied WAL pages after a checkpoint that mean it is falling behind
/// (SQLite's own automatic threshold).
const BEHIND_PAGES: i64 = 1000;

/// The checkpointing thread; stops (after one last checkpoint) when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the store in `data_dir`. The writer must have
    /// turned its automatic checkpoints off
    /// ([`super::SqliteStore::leave_checkpoints_to_thread`]).
    pub fn start(data_dir: &Path) -> Result<Checkpointer, StoreError> {
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(StoreError::sqlite(&path))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(StoreError::sqlite(&path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("drover-checkpoint".into())
            .spawn(move || run(&conn, &flag))
            .map_err(|source| StoreError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, stop: &AtomicBool) {
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        // A checkpoint with nothing to copy only reads the WAL index.
        let left = checkpoint(conn).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            0
        });
        if stopping {
            return;
        }
        // The writer outpaced the last one: go again at once.
        if left < BEHIND_PAGES {
            std::thread::sleep(INTERVAL);
        }
    }
}

/// A PASSIVE checkpoint; the WAL pages it could not copy yet (a reader
/// still needs them, or the writer appended meanwhile).
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let (log, copied): (i64, i64) = (r.get(1)?, r.get(2)?);
        Ok((log - copied).max(0))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::change::{Change, JobWrite, LaunchRecord, RunWrite};
    use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
    use crate::model::job::Job;
    use crate::model::state::PodState;
    use crate::store::{SqliteStore, Store};

    fn db_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(DB_FILE)).unwrap().len()
    }

    #[test]
    fn copies_the_wal_into_the_database_the_writer_no_longer_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.leave_checkpoints_to_thread().unwrap();
        let before = db_bytes(dir.path());
        // Past SQLite's 1,000-page automatic threshold, short of the
        // writer's own rewind (`WAL_RESTART_PAGES`).
        for i in 0..1200 {
            let change = Change {
                framework_id: Some(Some(format!("{i}-{}", "x".repeat(3000)))),
                ..Change::default()
            };
            store.commit(&change).unwrap();
        }
        assert_eq!(
            db_bytes(dir.path()),
            before,
            "the writer itself must not checkpoint"
        );
        let checkpointer = Checkpointer::start(dir.path()).unwrap();
        drop(checkpointer);
        assert!(db_bytes(dir.path()) > before);
    }

    #[test]
    fn a_long_burst_rewinds_the_wal_instead_of_growing_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.leave_checkpoints_to_thread().unwrap();
        // A launch burst: tens of MB of WAL in all, commits of a few
        // hundred pages each.
        let job = JobId::parse("burst").unwrap();
        let tasks = 40_000;
        let spec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "burst", "instance_count": tasks,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        let create = Change {
            jobs: vec![JobWrite::Create(Box::new(Job::new(job.clone(), spec, 1)))],
            ..Change::default()
        };
        store.commit(&create).unwrap();
        let intents: Vec<_> = (0..tasks)
            .map(|i| LaunchRecord {
                task_id: TaskId::new(InstanceId::new(job.clone(), i), 0),
                agent_id: AgentId::new(&format!("agent-{}", i / 20)),
                hostname: format!("host-{}", i / 20),
                spec_version: 1,
                ports: Vec::new(),
                at: 2,
                hands_over: None,
            })
            .collect();
        for chunk in intents.chunks(1000) {
            let change = Change {
                launches: chunk.to_vec(),
                ..Change::default()
            };
            store.commit(&change).unwrap();
        }
        for state in [PodState::Starting, PodState::Running] {
            let updates: Vec<_> = intents
                .iter()
                .map(|i| RunWrite {
                    task_id: i.task_id.clone(),
                    state,
                    agent_id: Some(i.agent_id.clone()),
                    reason: None,
                    message: None,
                    healthy: None,
                    ready: None,
                    started_at: (state == PodState::Running).then_some(3),
                    completed_at: None,
                    updated_at: 3,
                    unreachable_since: None,
                    image: None,
                })
                .collect();
            for batch in updates.chunks(500) {
                let change = Change {
                    runs: batch.to_vec(),
                    ..Change::default()
                };
                store.commit(&change).unwrap();
            }
        }
        let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
            .unwrap()
            .len();
        let frame = 4096 + 24;
        let limit = (crate::store::sqlite::WAL_RESTART_PAGES as u64 + 64) * frame;
        assert!(wal < limit, "the WAL grew to {wal} bytes (limit {limit})");
    }
}
