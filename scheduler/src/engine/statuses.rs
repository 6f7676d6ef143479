//! A batch of status updates (from the master, or made up by the engine
//! when it gives a run up) applied to copies of their runs, by the model's
//! rule ([`crate::model::run`]): what the store must write, and what the
//! engine does once it is written (the runs to put in its registry, the
//! updates to acknowledge, the strays to kill, the jobs to plan again).
//!
//! A launch's STARTING and RUNNING arrive together and land in one batch:
//! the second is compared with the run as the first left it, and each run
//! is written once, as the batch leaves it.

use super::action::Now;
use super::cluster::ClusterFacts;
use super::registry::Registry;
use crate::model::change::{Change, PodEvent, RunWrite};
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::image::RunImage;
use crate::model::run::{Run, StatusUpdate, UpdateOutcome};
use crate::model::state::PodState;
use crate::model::task_update::{Ack, TaskUpdate};
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use std::collections::{BTreeMap, HashMap};

/// A batch of the master's updates, in arrival order: applied to copies of
/// their runs, the change to store, and what follows once it is stored.
/// An update says its agent is alive when it says its task is.
pub(super) fn from_master(
    updates: Vec<TaskUpdate>,
    registry: &Registry,
    cluster: &mut ClusterFacts,
    now: Now,
) -> (Change, StoredBatch) {
    let mut acks = Vec::with_capacity(updates.len());
    let mut alive = Vec::new();
    let mut batch = StatusBatch::new(registry, &cluster.hostnames);
    for update in updates {
        let state = PodState::from_task_state(update.state);
        if let (Some(agent), true) = (&update.agent_id, state.is_live()) {
            alive.push(agent.clone());
        }
        if let Some(ack) = update.ack() {
            acks.push(ack);
        }
        let task_id = TaskId::parse(&update.task_id).map_err(|_| update.task_id.clone());
        let unreachable = update.state == TaskState::TaskUnreachable;
        let timestamp = if unreachable {
            update.unreachable_since.or(update.timestamp)
        } else {
            update.timestamp
        };
        let image = update.image;
        let update = StatusUpdate {
            state,
            mesos_state: Some(update.state),
            reason: update.reason,
            message: update.message,
            healthy: update.healthy,
            ready: update.ready,
            agent: update.agent_id,
            timestamp: timestamp.unwrap_or(now.unix_ms),
        };
        batch.apply(task_id, update, image);
    }
    let (runs, events, mut stored) = batch.finish();
    stored.acks = acks;
    for agent in alive {
        cluster.saw_alive(&agent);
    }
    let change = Change {
        runs,
        events,
        ..Change::default()
    };
    (change, stored)
}

/// Made-up terminal updates (LOST, with `reason` and `message`) for runs the
/// engine gives up on, written into `change`.
pub(super) fn given_up(
    tasks: &[TaskId],
    reason: Reason,
    message: &str,
    registry: &Registry,
    cluster: &ClusterFacts,
    now: Now,
    change: &mut Change,
) -> StoredBatch {
    let mut batch = StatusBatch::new(registry, &cluster.hostnames);
    for task in tasks {
        batch.apply(
            Ok(task.clone()),
            StatusUpdate {
                state: PodState::Lost,
                mesos_state: None,
                reason: Some(reason),
                message: Some(message.to_owned()),
                healthy: None,
                ready: None,
                agent: None,
                timestamp: now.unix_ms,
            },
            None,
        );
    }
    let (runs, events, stored) = batch.finish();
    change.runs = runs;
    change.events = events;
    stored
}

/// What a stored batch leads to.
#[derive(Debug, Default)]
pub(super) struct StoredBatch {
    /// The runs as the batch left them, for the registry.
    pub runs: Vec<(TaskId, Run)>,
    /// Updates to acknowledge, in arrival order.
    pub acks: Vec<Ack>,
    /// Tasks alive that must not be: (task id, agent).
    pub strays: Vec<(String, Option<AgentId>)>,
    /// Jobs to plan again, and whether one of their updates was terminal
    /// (a relaunch may be due at once).
    pub touched: BTreeMap<JobId, bool>,
}

/// A batch being applied.
struct StatusBatch<'a> {
    registry: &'a Registry,
    hostnames: &'a HashMap<AgentId, String>,
    index: HashMap<TaskId, usize>,
    runs: Vec<BatchRun>,
    events: Vec<PodEvent>,
    stored: StoredBatch,
}

/// One run the batch touched.
struct BatchRun {
    task_id: TaskId,
    run: Run,
    is_latest: bool,
    /// The text of the message `run.message` digests, once the batch set it.
    message: Option<String>,
    /// The image an applied update named (kept out of [`Run`]: only the
    /// store and the views need it, not the engine's 100,000 runs).
    image: Option<RunImage>,
    changed: bool,
}

impl<'a> StatusBatch<'a> {
    /// An empty batch over `registry`; `hostnames` names each agent's host
    /// in the events.
    fn new(registry: &'a Registry, hostnames: &'a HashMap<AgentId, String>) -> Self {
        StatusBatch {
            registry,
            hostnames,
            index: HashMap::new(),
            runs: Vec::new(),
            events: Vec::new(),
            stored: StoredBatch::default(),
        }
    }

    /// Applies `update` to run `task_id` (after the batch's earlier
    /// updates). A task id that is not Drover's, or names no stored run,
    /// is a stranger: killed if alive. `image`: what the update's executor
    /// said it ran, stored with the run when the update applies.
    fn apply(
        &mut self,
        task_id: Result<TaskId, String>,
        update: StatusUpdate,
        image: Option<RunImage>,
    ) {
        let task_id = match task_id {
            Ok(task_id) => task_id,
            Err(raw) => {
                if update.state.is_live() {
                    self.stored.strays.push((raw, update.agent));
                }
                return;
            }
        };
        let Some(at) = self.slot(&task_id) else {
            if update.state.is_live() {
                self.stored.strays.push((task_id.to_string(), update.agent));
            }
            return;
        };
        // An unreachable run has not ended (see the model's run rule).
        let unreachable = update.mesos_state == Some(TaskState::TaskUnreachable);
        let terminal = update.state.is_terminal() && !unreachable;
        let slot = &mut self.runs[at];
        let agent = update.agent.clone().or_else(|| slot.run.agent.clone());
        let outcome = slot.run.apply(&update, slot.is_latest);
        if outcome.is_stray() {
            self.stored
                .strays
                .push((task_id.to_string(), update.agent.clone()));
        }
        if !outcome.is_recorded() {
            return;
        }
        let hostname = agent.as_ref().and_then(|a| self.hostnames.get(a)).cloned();
        if outcome == UpdateOutcome::Applied {
            slot.changed = true;
            slot.message = update.message.clone();
            if image.is_some() {
                slot.image = image;
            }
        }
        *self
            .stored
            .touched
            .entry(task_id.instance.job.clone())
            .or_insert(false) |= terminal;
        self.events.push(PodEvent {
            task_id,
            state: if unreachable {
                slot.run.state
            } else {
                update.state
            },
            mesos_state: update.mesos_state,
            reason: update.reason,
            message: update.message,
            healthy: update.healthy,
            ready: update.ready,
            agent_id: agent,
            hostname,
            timestamp: update.timestamp,
        });
    }

    /// The batch's copy of `task`, made from the registry the first time.
    fn slot(&mut self, task: &TaskId) -> Option<usize> {
        if let Some(&at) = self.index.get(task) {
            return Some(at);
        }
        let (run, is_latest) = self.registry.run(task)?;
        let at = self.runs.len();
        self.runs.push(BatchRun {
            task_id: task.clone(),
            run: run.clone(),
            is_latest,
            message: None,
            image: None,
            changed: false,
        });
        self.index.insert(task.clone(), at);
        Some(at)
    }

    /// What to write (the changed runs, in the order the batch first
    /// touched them, and the events) and what follows once written.
    fn finish(self) -> (Vec<RunWrite>, Vec<PodEvent>, StoredBatch) {
        let mut stored = self.stored;
        let mut writes = Vec::new();
        for slot in self.runs.into_iter().filter(|s| s.changed) {
            let run = &slot.run;
            writes.push(RunWrite {
                task_id: slot.task_id.clone(),
                state: run.state,
                agent_id: run.agent.clone(),
                reason: run.reason,
                message: slot.message,
                healthy: run.healthy,
                ready: run.ready,
                started_at: run.started_at,
                completed_at: run.completed_at,
                updated_at: run.updated_at,
                unreachable_since: run.unreachable_since(),
                image: slot.image,
            });
            stored.runs.push((slot.task_id, slot.run));
        }
        (writes, self.events, stored)
    }
}
