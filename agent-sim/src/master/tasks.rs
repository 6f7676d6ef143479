//! The task registry: every task the master knows (live, or ended but not
//! yet acknowledged), indexed by framework and by agent, with the latest
//! state its agent reported and how it runs there. Reconciliation answers
//! come from here (reference 3.9). The updates on their way to the
//! framework are `status_updates.rs`'s; resources and allocations are
//! released by the master when this registry says a task ended.

use std::time::Duration;

use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};
use drover_proto::TaskStateExt;

use super::journal::changes::Changes;
use crate::agent::fleet::Fleet;
use crate::agent::sim_task::SimTask;
use crate::fixed_hash::{HashMap, HashSet};
use crate::ids::{AgentIndex, ExecutorKey, TaskKey};
use crate::resources::Resources;

/// A task the master knows (live, or terminal but not yet acknowledged).
#[derive(Debug)]
pub struct Task {
    pub framework: String,
    pub task_id: v1::TaskId,
    pub name: String,
    /// The custom or default executor, if the task has one (boxed: rare and large).
    pub executor: Option<Box<v1::ExecutorInfo>>,
    pub agent: AgentIndex,
    pub resources: Resources,
    /// `TaskInfo.labels`, as `/state` lists them (boxed: most tasks of a
    /// load test have none, and the registry holds 100,000s).
    pub labels: Option<Box<v1::Labels>>,
    /// The latest state the agent reported (STAGING until the first), with
    /// its health, and the states it went through. Only this much is kept,
    /// not whole TaskInfos and TaskStatuses, so 100,000 tasks fit in a few
    /// hundred MiB.
    pub state: TaskState,
    pub healthy: Option<bool>,
    pub statuses: StatusTrail,
    /// How the task runs: simulated, or by a real executor.
    pub runner: Runner,
    /// A KILL that arrived while the agent was away, applied when it returns.
    pub kill_pending: Option<Option<Duration>>,
    /// When the task's agent failed, while it is away (unix seconds).
    pub unreachable_since: Option<f64>,
}

/// One status a task went through, as `/state` lists it in `statuses`
/// (Mesos keeps each update's state, time and health, without its data).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusMark {
    pub state: TaskState,
    pub timestamp: f64,
    pub healthy: Option<bool>,
}

/// The statuses a task went through, oldest first. Bounded: a service
/// whose health flaps would otherwise grow it for ever; past
/// [`MAX_STATUSES_PER_TASK`] the oldest is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusTrail(Vec<StatusMark>);

/// Statuses kept per task (a task normally has 3: STARTING, RUNNING and
/// its end; health changes add more).
pub const MAX_STATUSES_PER_TASK: usize = 16;

impl StatusTrail {
    pub fn push(&mut self, mark: StatusMark) {
        if self.0.len() >= MAX_STATUSES_PER_TASK {
            self.0.remove(0);
        }
        self.0.push(mark);
    }

    pub fn iter(&self) -> impl Iterator<Item = &StatusMark> {
        self.0.iter()
    }
}

impl Task {
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// The id of the executor it runs under: its own, or its id for a
    /// CommandInfo task (Mesos' command executor takes the task's id).
    pub fn executor_id<'a>(&'a self, key: &'a TaskKey) -> &'a str {
        self.executor
            .as_ref()
            .map(|e| e.executor_id.value.as_str())
            .unwrap_or(&key.1)
    }
}

/// How a task runs on its agent.
#[derive(Debug)]
pub enum Runner {
    /// In the master, from `sim_task` (a simulated agent).
    Simulated(SimTask),
    /// By a real executor process (a real agent); its lifecycle comes from
    /// the executor's updates.
    Real,
}

/// A task's state moved on.
#[derive(Debug)]
pub struct Moved {
    /// Set when the task just ended: its agent and the resources it held.
    pub freed: Option<(AgentIndex, Resources)>,
}

/// What an agent's return changes for one of its tasks.
#[derive(Debug)]
pub struct Returned {
    /// The task was marked unreachable when the agent failed.
    pub was_unreachable: bool,
    /// A KILL (with its grace period) that waited for the agent.
    pub kill: Option<Option<Duration>>,
}

/// A task the registry forgot.
#[derive(Debug)]
pub struct Removed {
    pub task: Task,
    /// It was the last task of its executor on a simulated agent, so that
    /// executor has ended (a real agent's executor ends when its process
    /// exits instead).
    pub executor_ended: bool,
}

/// Every task, by key, framework and agent.
#[derive(Debug, Default)]
pub struct Tasks {
    records: HashMap<TaskKey, Task>,
    /// Task ids by framework id.
    by_framework: HashMap<String, HashSet<String>>,
    /// Task keys by agent index.
    by_agent: Vec<HashSet<TaskKey>>,
    /// How many tasks each executor of a simulated agent has in the
    /// registry; it ends when the count drops to zero. Counted, not found
    /// by scanning the agent's tasks, so forgetting a task stays O(1).
    sim_executors: HashMap<ExecutorKey, u32>,
    /// The tasks changed since the journal last took them (`--state-dir`).
    changes: Changes<TaskKey>,
}

impl Tasks {
    /// Starts noting changed tasks for the journal.
    pub fn journal_changes(&mut self) {
        self.changes.enable();
    }

    /// The tasks changed since the last call.
    pub fn take_changes(&mut self) -> Vec<TaskKey> {
        self.changes.take()
    }

    /// Records a task just launched.
    pub fn insert(&mut self, key: TaskKey, task: Task) {
        self.changes.note(&key);
        // Looked up before inserting: `entry` would clone the framework id
        // on every launch.
        match self.by_framework.get_mut(&key.0) {
            Some(ids) => {
                ids.insert(key.1.clone());
            }
            None => {
                let mut ids = HashSet::default();
                ids.insert(key.1.clone());
                self.by_framework.insert(key.0.clone(), ids);
            }
        }
        if self.by_agent.len() <= task.agent {
            self.by_agent.resize_with(task.agent + 1, HashSet::default);
        }
        self.by_agent[task.agent].insert(key.clone());
        if let Some(executor) = sim_executor_key(&key, &task) {
            *self.sim_executors.entry(executor).or_default() += 1;
        }
        self.records.insert(key, task);
    }

    /// Forgets a task (its terminal update was acknowledged).
    pub fn remove(&mut self, key: &TaskKey) -> Option<Removed> {
        let task = self.records.remove(key)?;
        self.changes.note(key);
        if let Some(on_agent) = self.by_agent.get_mut(task.agent) {
            on_agent.remove(key);
        }
        if let Some(ids) = self.by_framework.get_mut(&key.0) {
            ids.remove(&key.1);
        }
        let executor_ended = self.release_executor(key, &task);
        Some(Removed {
            task,
            executor_ended,
        })
    }

    /// Forgets every task of a removed framework and returns them, in task
    /// id order.
    pub fn remove_framework(&mut self, framework: &str) -> Vec<(TaskKey, Removed)> {
        let mut ids: Vec<String> = self
            .by_framework
            .remove(framework)
            .unwrap_or_default()
            .into_iter()
            .collect();
        ids.sort_unstable();
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            let key = (framework.to_owned(), id);
            if let Some(task) = self.records.remove(&key) {
                self.changes.note(&key);
                if let Some(on_agent) = self.by_agent.get_mut(task.agent) {
                    on_agent.remove(&key);
                }
                let executor_ended = self.release_executor(&key, &task);
                removed.push((
                    key,
                    Removed {
                        task,
                        executor_ended,
                    },
                ));
            }
        }
        removed
    }

    /// A forgotten task no longer holds its simulated executor; whether
    /// that was the executor's last task.
    fn release_executor(&mut self, key: &TaskKey, task: &Task) -> bool {
        let Some(executor) = sim_executor_key(key, task) else {
            return false;
        };
        let Some(count) = self.sim_executors.get_mut(&executor) else {
            return false;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return false;
        }
        self.sim_executors.remove(&executor);
        true
    }

    pub fn get(&self, key: &TaskKey) -> Option<&Task> {
        self.records.get(key)
    }

    pub fn contains(&self, key: &TaskKey) -> bool {
        self.records.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        self.records.values()
    }

    /// The simulated task behind `key`, to feed it an input.
    pub fn simulated_mut(&mut self, key: &TaskKey) -> Option<&mut SimTask> {
        self.changes.note(key);
        match self.records.get_mut(key).map(|t| &mut t.runner) {
            Some(Runner::Simulated(sim)) => Some(sim),
            _ => None,
        }
    }

    /// The framework's tasks, in a fixed order.
    pub fn of_framework(&self, framework: &str) -> Vec<TaskKey> {
        self.by_framework
            .get(framework)
            .map(|ids| {
                ids.iter()
                    .map(|id| (framework.to_owned(), id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tasks placed on an agent, in a fixed order.
    pub fn on_agent(&self, agent: AgentIndex) -> Vec<TaskKey> {
        self.by_agent
            .get(agent)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many tasks are placed on an agent.
    pub fn count_on_agent(&self, agent: AgentIndex) -> usize {
        self.by_agent.get(agent).map_or(0, HashSet::len)
    }

    /// The live simulated task with this id, in any framework.
    pub fn find_live_simulated(&self, task_id: &str) -> Option<TaskKey> {
        self.records
            .iter()
            .find(|(_, t)| {
                t.task_id.value == task_id
                    && matches!(&t.runner, Runner::Simulated(sim) if !sim.is_terminal())
            })
            .map(|(key, _)| key.clone())
    }

    /// Whether a new task with this key would reuse a live task's id (an
    /// unreachable task counts as live).
    pub fn is_duplicate(&self, key: &TaskKey) -> bool {
        self.records
            .get(key)
            .is_some_and(|t| !t.state().is_terminal() || t.unreachable_since.is_some())
    }

    /// Whether a live task of the framework runs on the agent under this
    /// executor (so a new task there needs no resources for it).
    pub fn runs_executor(
        &self,
        agent: AgentIndex,
        framework: &str,
        executor: &v1::ExecutorId,
    ) -> bool {
        let Some(keys) = self.by_agent.get(agent) else {
            return false;
        };
        keys.iter().any(|k| {
            k.0 == framework
                && self.records.get(k).is_some_and(|t| {
                    !t.state().is_terminal()
                        && t.executor
                            .as_ref()
                            .is_some_and(|x| x.executor_id == *executor)
                })
        })
    }

    /// The executor a task of a real agent runs under.
    pub fn executor_of(&self, key: &TaskKey) -> Option<ExecutorKey> {
        let task = self.records.get(key)?;
        Some((task.agent, key.0.clone(), task.executor_id(key).to_owned()))
    }

    /// The agent reported a new state for the task (with its health and
    /// time). If that ended it, the resources it held are returned.
    pub fn on_status(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        healthy: Option<bool>,
        timestamp: f64,
    ) -> Option<Moved> {
        let task = self.records.get_mut(key)?;
        self.changes.note(key);
        let was_terminal = task.state().is_terminal();
        task.state = state;
        task.healthy = healthy.or(task.healthy);
        task.statuses.push(StatusMark {
            state,
            timestamp,
            healthy,
        });
        let freed =
            (!was_terminal && state.is_terminal()).then(|| (task.agent, task.resources.clone()));
        Some(Moved { freed })
    }

    /// The task's agent failed at `unix`: a live task becomes unreachable.
    /// Whether it was live.
    pub fn mark_unreachable(&mut self, key: &TaskKey, unix: f64) -> bool {
        self.changes.note(key);
        match self.records.get_mut(key) {
            Some(task) if !task.state().is_terminal() => {
                task.unreachable_since = Some(unix);
                true
            }
            _ => false,
        }
    }

    /// A KILL for a task whose agent is away waits for the agent.
    pub fn hold_kill(&mut self, key: &TaskKey, grace: Option<Duration>) {
        self.changes.note(key);
        if let Some(task) = self.records.get_mut(key) {
            task.kill_pending = Some(grace);
        }
    }

    /// The task's agent came back.
    pub fn on_agent_returned(&mut self, key: &TaskKey) -> Option<Returned> {
        let task = self.records.get_mut(key)?;
        self.changes.note(key);
        Some(Returned {
            was_unreachable: task.unreachable_since.take().is_some(),
            kill: task.kill_pending.take(),
        })
    }

    /// The reconciliation answer for one task id (reference 3.9): a known
    /// task's latest state (if `agent`, when given, is its agent), else
    /// what the master can say of a task it does not know there.
    pub fn reconcile(
        &self,
        framework: &str,
        task_id: &v1::TaskId,
        agent: Option<&v1::AgentId>,
        fleet: &Fleet,
        partition_aware: bool,
        unix: f64,
    ) -> v1::TaskStatus {
        let key = (framework.to_owned(), task_id.value.clone());
        if let Some(task) = self.records.get(&key) {
            // A task not on the named agent is answered as unknown there.
            if agent.is_none_or(|a| a.value == fleet[task.agent].id) {
                return latest(task, fleet, partition_aware, unix);
            }
        }
        let lost = |state| {
            if partition_aware {
                state
            } else {
                TaskState::TaskLost
            }
        };
        let (state, message) = match agent.and_then(|a| fleet.index_of(&a.value)) {
            Some(i) if fleet[i].connected => (
                lost(TaskState::TaskGone),
                "Reconciliation: Task is unknown to the agent",
            ),
            Some(_) => (
                lost(TaskState::TaskUnreachable),
                "Reconciliation: Task is unreachable",
            ),
            None => (
                lost(TaskState::TaskUnknown),
                "Reconciliation: Task is unknown",
            ),
        };
        let mut status = master_status(
            task_id,
            state,
            Reason::Reconciliation,
            message,
            agent.map(|a| a.value.as_str()),
            unix,
        );
        if state == TaskState::TaskUnreachable {
            status.unreachable_time = Some(v1::TimeInfo {
                nanoseconds: (unix * 1e9) as i64,
            });
        }
        status
    }

    /// A known task's latest state as a reconciliation answer.
    pub fn latest(
        &self,
        key: &TaskKey,
        fleet: &Fleet,
        partition_aware: bool,
        unix: f64,
    ) -> Option<v1::TaskStatus> {
        let task = self.records.get(key)?;
        Some(latest(task, fleet, partition_aware, unix))
    }
}

fn latest(task: &Task, fleet: &Fleet, partition_aware: bool, unix: f64) -> v1::TaskStatus {
    let mut state = task.state();
    if task.unreachable_since.is_some() && !state.is_terminal() {
        state = if partition_aware {
            TaskState::TaskUnreachable
        } else {
            TaskState::TaskLost
        };
    }
    let mut status = master_status(
        &task.task_id,
        state,
        Reason::Reconciliation,
        "Reconciliation: Latest task state",
        Some(&fleet[task.agent].id),
        unix,
    );
    status.healthy = task.healthy;
    status
}

/// The executor key of a task that runs under an explicit executor on a
/// simulated agent (real agents' executors are the registry's).
fn sim_executor_key(key: &TaskKey, task: &Task) -> Option<ExecutorKey> {
    let executor = task.executor.as_ref()?;
    matches!(task.runner, Runner::Simulated(_)).then(|| {
        (
            task.agent,
            key.0.clone(),
            executor.executor_id.value.clone(),
        )
    })
}

/// A status the master itself generates for a task id (reconciliation,
/// refused launches, agent loss): SOURCE_MASTER, no uuid, sent once.
pub fn master_status(
    task_id: &v1::TaskId,
    state: TaskState,
    reason: Reason,
    message: &str,
    agent: Option<&str>,
    unix: f64,
) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(message.to_owned()),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent.map(|a| v1::AgentId {
            value: a.to_owned(),
        }),
        timestamp: Some(unix),
        ..Default::default()
    }
}
