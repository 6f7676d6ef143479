//! Whether a pod serves: the gate every rolling change waits on (job
//! restarts, updates and their rollbacks). A run is available when it is
//! RUNNING and, if its pod has a health check, its executor has judged it
//! HEALTHY: a replacement that is up but not yet answering its check is
//! not, so the next pod is not taken down for it.

use super::run::Run;
use super::spec::PodSpec;
use super::state::PodState;

/// Whether `run` (of a pod whose spec is `pod`) is available.
pub fn is_available(pod: &PodSpec, run: &Run) -> bool {
    run.state == PodState::Running
        && run.unreachable.is_none()
        && (pod.liveness_check().is_none() || run.healthy == Some(true))
}
