//! `--recover-from-master` carried out: with a store that has no framework
//! id, ask the master (the framework guard's question), and when it knows
//! one disconnected framework of ours, write what
//! [`crate::engine::recovery`] rebuilds from that framework's tasks into
//! the store, before the engine loads it. From there the scheduler starts
//! as after any restart: it subscribes with the old framework id and
//! reconciles every recovered run.

use crate::engine::recovery;
use crate::mesos::framework_guard::{GuardDecision, GuardInput, GuardRefusal};
use crate::mesos::master_state;
use crate::mesos::session::Endpoint;
use crate::model::time::UnixMillis;
use crate::store::{Store, StoreError};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// How many left-out tasks are named one by one in the log.
const LEFT_OUT_LOGGED: usize = 20;

/// Why recovery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The master knows several frameworks of ours, or an active one.
    #[error(transparent)]
    Refused(#[from] GuardRefusal),
    /// The rebuilt jobs could not be written.
    #[error("cannot write the jobs recovered from the master to the store: {0}")]
    Store(#[from] StoreError),
    /// Shut down before a master answered.
    #[error("stopped before a master answered")]
    Stopped,
}

/// Rebuilds the store from the master when `input` asks it to
/// (`recover_from_master`, no stored framework id). Returns the framework
/// id taken over, or None when there is nothing to recover (the master
/// knows no framework of ours: the scheduler registers one).
pub async fn recover_from_master(
    store: &mut dyn Store,
    input: &GuardInput<'_>,
    store_file: &Path,
    masters: &[Endpoint],
    credentials: Option<&(String, String)>,
    shutdown: &CancellationToken,
    now: UnixMillis,
) -> Result<Option<String>, RecoverError> {
    let guarded = master_state::guard(input, masters, credentials, shutdown)
        .await
        .ok_or(RecoverError::Stopped)?;
    match guarded.decision {
        GuardDecision::Recover { framework } => {
            let rebuilt = recovery::rebuild(&framework.id, &guarded.tasks, now);
            store.commit(&rebuilt.change)?;
            let runs: usize = rebuilt.jobs.values().sum();
            tracing::warn!(
                framework_id = %framework.id,
                jobs = rebuilt.jobs.len(),
                runs,
                left_out = rebuilt.left_out.len(),
                "--recover-from-master: took over the framework and rebuilt its jobs from the \
                 {} tasks the master lists",
                guarded.tasks.len()
            );
            for left in rebuilt.left_out.iter().take(LEFT_OUT_LOGGED) {
                tracing::warn!(
                    task_id = %left.task_id,
                    why = %left.why,
                    "not recovered: the scheduler will kill it as a task it does not know"
                );
            }
            if rebuilt.left_out.len() > LEFT_OUT_LOGGED {
                tracing::warn!(
                    more = rebuilt.left_out.len() - LEFT_OUT_LOGGED,
                    "more tasks not recovered"
                );
            }
            Ok(Some(framework.id))
        }
        GuardDecision::Register | GuardDecision::Resubscribe => {
            tracing::info!("--recover-from-master: the master knows no framework of ours");
            Ok(None)
        }
        GuardDecision::Refuse { frameworks } => Err(GuardRefusal {
            frameworks,
            name: input.name.to_owned(),
            principal: input.principal.map(str::to_owned),
            store: store_file.to_owned(),
        }
        .into()),
    }
}
