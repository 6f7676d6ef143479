//! Which framework the scheduler starts as: the framework guard's two
//! questions to the master, carried out.
//! - [`recover_from_master`]: under `--recover-from-master`, with a store
//!   that has no framework id, before the engine loads the store: when the
//!   master knows one disconnected framework of ours, what
//!   [`crate::engine::recovery`] rebuilds from its tasks is written to the
//!   store, and the scheduler starts as after any restart (it subscribes
//!   with the old framework id and reconciles every recovered run).
//! - [`subscribe_gate`]: the driver's gate before its first SUBSCRIBE; a
//!   store without a framework id subscribes only once the master is known
//!   not to hold a framework of ours.

use crate::engine::recovery;
use crate::mesos::framework_guard::{GuardDecision, GuardInput, GuardRefusal, KnownFramework};
use crate::mesos::master_state;
use crate::mesos::session::Endpoint;
use crate::model::time::UnixMillis;
use crate::store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How many left-out tasks are named one by one in the log.
const LEFT_OUT_LOGGED: usize = 20;

/// Who asks the master, and where.
#[derive(Debug, Clone)]
pub struct Asking {
    /// Our `FrameworkInfo.name`.
    pub name: String,
    /// Our `FrameworkInfo.principal`.
    pub principal: Option<String>,
    /// The store's file, named in a refusal.
    pub store_file: PathBuf,
    /// The masters.
    pub masters: Vec<Endpoint>,
    /// HTTP basic credentials for the master.
    pub credentials: Option<(String, String)>,
    /// What an `https://` master is verified against.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Asking {
    fn input<'a>(&'a self, stored_framework_id: Option<&'a str>) -> GuardInput<'a> {
        GuardInput {
            stored_framework_id,
            name: &self.name,
            principal: self.principal.as_deref(),
            new_framework: false,
            recover_from_master: false,
        }
    }

    fn refusal(&self, frameworks: Vec<KnownFramework>) -> GuardRefusal {
        GuardRefusal {
            frameworks,
            name: self.name.clone(),
            principal: self.principal.clone(),
            store: self.store_file.clone(),
        }
    }
}

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

/// `--recover-from-master` on a store without a framework id: returns the
/// framework id taken over, or None when there is nothing to recover (the
/// master knows no framework of ours: the scheduler registers one).
pub async fn recover_from_master(
    store: &mut dyn Store,
    asking: &Asking,
    shutdown: &CancellationToken,
    now: UnixMillis,
) -> Result<Option<String>, RecoverError> {
    let input = GuardInput {
        recover_from_master: true,
        ..asking.input(None)
    };
    let credentials = asking.credentials.as_ref();
    let guarded = master_state::guard(
        &input,
        &asking.masters,
        credentials,
        asking.tls.as_ref(),
        shutdown,
    )
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
        GuardDecision::Refuse { frameworks } => Err(asking.refusal(frameworks).into()),
    }
}

/// The driver's gate: true to subscribe. False when shut down first, or
/// when the guard refuses: then the refusal is put in `refused` (the
/// scheduler exits with it) and `shutdown` is cancelled.
pub async fn subscribe_gate(
    asking: Asking,
    stored_framework_id: Option<String>,
    new_framework: bool,
    refused: Arc<Mutex<Option<GuardRefusal>>>,
    shutdown: CancellationToken,
) -> bool {
    let input = GuardInput {
        new_framework,
        ..asking.input(stored_framework_id.as_deref())
    };
    let credentials = asking.credentials.as_ref();
    let decision = master_state::guard(
        &input,
        &asking.masters,
        credentials,
        asking.tls.as_ref(),
        &shutdown,
    )
    .await
    .map(|guarded| guarded.decision);
    match decision {
        Some(GuardDecision::Refuse { frameworks }) => {
            if let Ok(mut slot) = refused.lock() {
                *slot = Some(asking.refusal(frameworks));
            }
            shutdown.cancel();
            false
        }
        Some(GuardDecision::Register) => {
            if new_framework {
                tracing::warn!("--new-framework: registering a new framework");
            } else {
                tracing::info!("the master knows no framework of ours: registering one");
            }
            true
        }
        // Recovery is asked for before the engine starts, never here.
        Some(GuardDecision::Resubscribe | GuardDecision::Recover { .. }) => true,
        None => false,
    }
}
