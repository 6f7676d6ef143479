//! `--state-dir` (drive): a master takes over its predecessor's agents
//! and tasks only once it leads. With `--zk`, the role the servers act on
//! follows the ZooKeeper election's, except that Leading is published
//! only after the takeover: while the journal is read and adopted this
//! master answers as one with no leader elected (503), so no framework
//! subscribes to a master that has not yet got its tasks back. Leading
//! is final: a lost candidacy ends the process (`run.rs`), and a deposed
//! leader that has not noticed yet writes only its own journal file,
//! which `CURRENT` no longer names (`master::journal::file`).

use tokio::sync::watch;

use super::Role;
use crate::master::driver::{MasterGone, MasterHandle};
use crate::master::journal::{JournalDir, JournalError};
use crate::master::Adopted;

/// Why a takeover failed; the master cannot lead without it.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    /// The state directory could not be read or written.
    #[error("--state-dir: {0}")]
    Journal(#[from] JournalError),
    /// The master task stopped (only during shutdown).
    #[error(transparent)]
    MasterGone(#[from] MasterGone),
    /// Reading the journal panicked or was cancelled.
    #[error("reading the journal: {0}")]
    Read(#[from] tokio::task::JoinError),
}

/// Reads the journal in `dir` and has `master` adopt what it describes,
/// then journal from there on.
pub async fn take_over(master: &MasterHandle, dir: &JournalDir) -> Result<Adopted, TakeoverError> {
    let reading = dir.clone();
    let read = tokio::task::spawn_blocking(move || reading.read()).await??;
    if let Some(cut) = &read.cut {
        tracing::warn!(file = ?read.file, offset = cut.offset, why = ?cut.why, "the journal ends in a partial record; replaying the records before it");
    }
    let records = read.recovered.records;
    let adopted = master.take_over(read.recovered, dir.clone()).await??;
    tracing::info!(
        file = ?read.file,
        bytes = read.bytes,
        records,
        agents = adopted.agents,
        frameworks = adopted.frameworks,
        tasks = adopted.tasks,
        updates = adopted.updates,
        skipped = adopted.skipped,
        "took over the journal's agents and tasks"
    );
    Ok(adopted)
}

/// Follows `elected` (the contender's role) and publishes the role the
/// servers act on, taking over when elected. The task ends only if the
/// takeover fails.
pub fn gate(
    mut elected: watch::Receiver<Role>,
    master: MasterHandle,
    dir: JournalDir,
) -> (
    watch::Receiver<Role>,
    tokio::task::JoinHandle<TakeoverError>,
) {
    let (tx, rx) = watch::channel(Role::Contending);
    let task = tokio::spawn(async move {
        loop {
            let role = elected.borrow_and_update().clone();
            if role == Role::Leading {
                tx.send_replace(Role::Contending);
                if let Err(error) = take_over(&master, &dir).await {
                    return error;
                }
                tx.send_replace(Role::Leading);
                return std::future::pending().await;
            }
            tx.send_replace(role);
            if elected.changed().await.is_err() {
                // The contender ended: `run.rs` exits on the lost candidacy.
                return std::future::pending().await;
            }
        }
    });
    (rx, task)
}
