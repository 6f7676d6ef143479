//! A task status update as the master delivered it, in Drover's terms: the
//! Mesos `TaskStatus` becomes this at the edge (`mesos/`). Whether and how
//! it changes a run is the model's rule ([`super::run`]); this is only what
//! was said.

use super::ids::AgentId;
use super::time::UnixMillis;
use bytes::Bytes;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;

/// One status update.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    /// The task id as Mesos carries it; Drover's own runs parse as a
    /// [`super::ids::TaskId`], anything else is a stranger.
    pub task_id: String,
    /// The Mesos state (an unknown number arrives as TASK_UNKNOWN).
    pub state: TaskState,
    /// The Mesos reason, if it named one this build knows.
    pub reason: Option<Reason>,
    /// The message.
    pub message: Option<String>,
    /// The task's health, when the executor checks it.
    pub healthy: Option<bool>,
    /// Whether the task's readiness check (its Mesos `check`) passes, when
    /// the update carries a check status: its latest result passed (exit
    /// code 0, HTTP 2xx/3xx, TCP connected). A check not run yet or that
    /// could not run (timed out) is not ready.
    pub ready: Option<bool>,
    /// The agent the task is on.
    pub agent_id: Option<AgentId>,
    /// When it happened, if the update said (a finite, positive time).
    pub timestamp: Option<UnixMillis>,
    /// For TASK_UNREACHABLE, when the agent became unreachable, if said: a
    /// reconciliation answer long after says the same time.
    pub unreachable_since: Option<UnixMillis>,
    /// The status's `data`: what the executor sent with it (a pipeline
    /// node's output files, with its TASK_FINISHED).
    pub data: Option<Bytes>,
    /// The image its executor resolved, when it ran one (the
    /// `drover.image.*` status labels, [`super::image::RunImage`]).
    pub image: Option<super::image::RunImage>,
    /// The update's uuid: present on a reliable update, which must be
    /// acknowledged (once stored) with the agent and task id above.
    pub uuid: Option<Bytes>,
}

impl TaskUpdate {
    /// What acknowledging this update takes, when it must be
    /// acknowledged: a uuid and an agent to send it to.
    pub fn ack(&self) -> Option<Ack> {
        Some(Ack {
            agent_id: self.agent_id.clone()?,
            task_id: self.task_id.clone(),
            uuid: self.uuid.clone()?,
        })
    }
}

/// An acknowledgement to send once its update is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The agent that sent the update.
    pub agent_id: AgentId,
    /// The task it is about.
    pub task_id: String,
    /// The update's uuid.
    pub uuid: Bytes,
}
