//! The master's side of `--state-dir` (decide): what the journal records
//! each turn, the snapshot that replaces it, and the takeover, where a
//! master that has just been elected adopts what the journal says its
//! predecessor had.
//!
//! The takeover is what a Mesos master sees when its agents re-register
//! after a failover (src/master/master.cpp `reregisterSlave`,
//! `recoverFramework`, `connectAndActivateRecoveredFramework`): each
//! simulated agent comes back with its id, its tasks and their
//! resources; the frameworks those tasks belong to are known but not
//! connected, with no failover timer, until they SUBSCRIBE with their id,
//! which is then a re-subscription. Tasks keep running on their own
//! clock (a batch task ends when its launch plus its duration says); the
//! status updates the framework had not acknowledged are sent again when
//! it re-subscribes, as the agents' status update managers resend theirs
//! (and, here, at once rather than at the next retry). Reconciliation,
//! `/state` and the operator API answer from the adopted tasks, and their
//! resources are held on their agents and charged to their frameworks,
//! so offers do not count them twice.
//!
//! Real agents (`--real-agents`) are not carried over: their executors
//! are child processes of the master that died, talking to its ports, so
//! they are lost with it as a Mesos agent is lost with its host. Their
//! tasks are unknown to the new master (reconciliation answers
//! TASK_LOST, or TASK_UNKNOWN to a partition-aware framework) and the
//! framework relaunches them; each master keeps its own real agents.

use std::time::Instant;

use drover_proto::v1::{self, TaskState};
use drover_proto::TaskStateExt;

use super::journal::entry::{
    self, AgentEntry, KillPendingEntry, StatusMarkEntry, TaskEntry, TaskKeyEntry,
};
use super::journal::{encode_frame, Clock, Entry, Kind, Recovered};
use super::machine::{Effect, Master};
use super::tasks::{Runner, StatusMark, StatusTrail, Task};
use crate::agent::sim_task::SimTask;
use crate::agent::{AgentSpec, RunnerKind};
use crate::ids::TaskKey;
use crate::resources::Resources;

/// What a takeover adopted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub agents: usize,
    pub frameworks: usize,
    pub tasks: usize,
    /// Unacknowledged updates waiting for their frameworks.
    pub updates: usize,
    /// Records that named something this master cannot hold (a task on an
    /// unknown agent, unreadable resources), skipped and logged.
    pub skipped: usize,
}

impl Master {
    /// Starts noting what changes, for [`Master::journal_turn`]. Called
    /// once, when this master starts to lead with `--state-dir`.
    pub fn start_journal(&mut self) {
        self.tasks.journal_changes();
        self.updates.journal_changes();
        self.frameworks.journal_changes();
        // The first turn writes the fleet.
        self.journal_agents = Some(true);
    }

    /// Appends, as frames, the latest record of everything that changed
    /// since the last call.
    pub fn journal_turn(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.journal_agents == Some(true) {
            self.journal_agents = Some(false);
            self.agent_entries(out);
        }
        for id in self.frameworks.take_changes() {
            let kind = match self.frameworks.get(&id) {
                Some(fw) => Kind::Framework(fw.info.clone()),
                None => Kind::FrameworkGone(id),
            };
            encode_frame(&Entry { kind: Some(kind) }, out);
        }
        let mut keys = self.tasks.take_changes();
        keys.extend(self.updates.take_changes());
        if keys.is_empty() {
            return;
        }
        keys.sort_unstable();
        keys.dedup();
        let clock = self.clock(now);
        for key in keys {
            let kind = match self.task_entry(&key, &clock) {
                Some(task) => Kind::Task(task),
                None if self.tasks.contains(&key) => continue,
                None => Kind::TaskGone(TaskKeyEntry {
                    framework: key.0,
                    task_id: key.1,
                }),
            };
            encode_frame(&Entry { kind: Some(kind) }, out);
        }
    }

    /// Everything the journal keeps, as frames: what replaces it when it
    /// is compacted, and what a master that took over starts its own with.
    pub fn journal_snapshot(&self, now: Instant, out: &mut Vec<u8>) {
        self.agent_entries(out);
        for fw in self.frameworks.iter() {
            let kind = Kind::Framework(fw.info.clone());
            encode_frame(&Entry { kind: Some(kind) }, out);
        }
        let clock = self.clock(now);
        let mut keys: Vec<TaskKey> = self
            .tasks
            .iter()
            .map(|t| (t.framework.clone(), t.task_id.value.clone()))
            .collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(task) = self.task_entry(&key, &clock) {
                encode_frame(
                    &Entry {
                        kind: Some(Kind::Task(task)),
                    },
                    out,
                );
            }
        }
    }

    fn clock(&self, now: Instant) -> Clock {
        Clock {
            now,
            now_unix: self.unix(now),
        }
    }

    fn agent_entries(&self, out: &mut Vec<u8>) {
        for (index, agent) in self.fleet.as_slice().iter().enumerate() {
            if agent.is_real() || agent.removed {
                continue;
            }
            let entry = AgentEntry {
                index: index as u64,
                id: agent.id.clone(),
                hostname: agent.hostname.clone(),
                resources: agent.total.to_protos(None),
                attributes: agent.attributes.clone(),
                disconnected: !agent.connected,
            };
            encode_frame(
                &Entry {
                    kind: Some(Kind::Agent(entry)),
                },
                out,
            );
        }
    }

    /// A simulated task's record; None for a task this master does not
    /// have or that runs on a real agent.
    fn task_entry(&self, key: &TaskKey, clock: &Clock) -> Option<TaskEntry> {
        let task = self.tasks.get(key)?;
        let Runner::Simulated(sim) = &task.runner else {
            return None;
        };
        Some(TaskEntry {
            framework: key.0.clone(),
            task_id: key.1.clone(),
            name: task.name.clone(),
            executor: task.executor.as_deref().cloned(),
            agent_id: self.fleet[task.agent].id.clone(),
            resources: task.resources.to_protos(None),
            labels: task.labels.as_deref().cloned(),
            state: task.state as i32,
            healthy: task.healthy,
            statuses: task
                .statuses
                .iter()
                .map(|m| StatusMarkEntry {
                    state: m.state as i32,
                    timestamp: m.timestamp,
                    healthy: m.healthy,
                })
                .collect(),
            kill_pending: task.kill_pending.map(|grace| KillPendingEntry {
                grace_ns: grace.map(|g| u64::try_from(g.as_nanos()).unwrap_or(u64::MAX)),
            }),
            unreachable_since: task.unreachable_since,
            sim: Some(entry::sim_entry(&sim.snapshot(), clock)),
            pending: self.updates.pending(key).cloned().collect(),
        })
    }

    /// Adopts what a journal says the previous leader had (see the module
    /// doc). Meant for a master that has not served a framework yet (a
    /// standby just elected, or a master just started); a framework or
    /// task it already knows keeps what it has.
    pub fn adopt(&mut self, recovered: Recovered, now: Instant) -> (Adopted, Vec<Effect>) {
        let mut fx = Vec::new();
        let mut adopted = Adopted::default();
        let ip = self.config.ip.into();
        for (index, a) in recovered.agents {
            let Ok(resources) = Resources::from_protos(&a.resources) else {
                tracing::warn!(agent = %a.id, "journal: the agent's resources are unreadable; skipped");
                adopted.skipped += 1;
                continue;
            };
            let spec = AgentSpec {
                hostname: a.hostname,
                resources,
                attributes: a.attributes,
                runner: RunnerKind::Simulated,
                endpoint: None,
            };
            let index = usize::try_from(index).unwrap_or(usize::MAX);
            let place = self.fleet.adopt(index, a.id, spec, ip, now);
            if a.disconnected {
                // Still away: its tasks come adopted unreachable, and its
                // return re-registers it (and them) with this master.
                self.fleet.set_connected(place, false);
            }
            adopted.agents += 1;
        }
        for (id, info) in recovered.frameworks {
            if self.frameworks.recover(info, now) {
                self.offers.add_framework(&id);
                self.awaiting_resubscription.insert(id);
                adopted.frameworks += 1;
            }
        }
        let clock = self.clock(now);
        for (_, t) in recovered.tasks {
            match self.adopt_task(t, &clock, now, &mut fx) {
                Some(updates) => {
                    adopted.tasks += 1;
                    adopted.updates += updates;
                }
                None => adopted.skipped += 1,
            }
        }
        self.counters.tasks_adopted += adopted.tasks as u64;
        if self.journal_agents.is_some() {
            self.journal_agents = Some(true);
        }
        self.timers.allocate_soon(now);
        (adopted, fx)
    }

    /// One task re-registered with its agent; how many unacknowledged
    /// updates it brought, or None if it could not be adopted.
    fn adopt_task(
        &mut self,
        t: TaskEntry,
        clock: &Clock,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Option<usize> {
        let key: TaskKey = (t.framework.clone(), t.task_id.clone());
        let skip = |why: &str| {
            tracing::warn!(framework = %key.0, task = %key.1, why, "journal: task not adopted");
            None
        };
        let Some(agent) = self.fleet.index_of(&t.agent_id) else {
            return skip("its agent is not in the journal");
        };
        if self.fleet[agent].is_real() {
            return skip("its agent is a real agent");
        }
        if !self.frameworks.contains(&key.0) || self.tasks.contains(&key) {
            return skip("its framework is unknown or the task is known already");
        }
        let Ok(resources) = Resources::from_protos(&t.resources) else {
            return skip("its resources are unreadable");
        };
        let Some(sim) = t.sim.as_ref() else {
            return skip("it has no simulated lifecycle");
        };
        let (sim, actions) = SimTask::resume(entry::sim_snapshot(sim, clock), now);
        let state = TaskState::try_from(t.state).unwrap_or(TaskState::TaskStaging);
        let mut statuses = StatusTrail::default();
        for m in &t.statuses {
            statuses.push(StatusMark {
                state: TaskState::try_from(m.state).unwrap_or(TaskState::TaskStaging),
                timestamp: m.timestamp,
                healthy: m.healthy,
            });
        }
        if !state.is_terminal() {
            self.fleet.hold(agent, &resources);
            self.offers.charge(&key.0, &resources);
        }
        let task = Task {
            framework: t.framework,
            task_id: v1::TaskId { value: t.task_id },
            name: t.name,
            executor: t.executor.map(Box::new),
            agent,
            resources,
            labels: t.labels.filter(|l| !l.labels.is_empty()).map(Box::new),
            state,
            healthy: t.healthy,
            statuses,
            runner: Runner::Simulated(sim),
            kill_pending: t
                .kill_pending
                .map(|k| k.grace_ns.map(std::time::Duration::from_nanos)),
            unreachable_since: t.unreachable_since,
        };
        self.tasks.insert(key.clone(), task);
        let updates = t.pending.len();
        for status in t.pending {
            self.updates.push(&key, status);
        }
        self.apply_sim(&key, actions, now, fx);
        Some(updates)
    }

    /// A framework re-subscribed after a takeover: the head update of each
    /// of its tasks goes out now (the rest follow as each is acknowledged).
    pub(super) fn resend_after_takeover(
        &mut self,
        framework: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if !self.awaiting_resubscription.remove(framework) {
            return;
        }
        let mut keys = self.tasks.of_framework(framework);
        keys.sort_unstable();
        for key in keys {
            if self.updates.head_uuid(&key).is_some() {
                self.transmit(&key, false, now, fx);
            }
        }
    }
}
