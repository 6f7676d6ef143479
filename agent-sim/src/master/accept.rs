//! ACCEPT as an input to the master: the offers are checked and taken, then
//! the operations applied in order (reference 3.4.2). LAUNCH and
//! LAUNCH_GROUP start tasks after the TaskInfo checks Mesos makes
//! (`launch_checks.rs`); bad offers make every task TASK_LOST (or
//! TASK_DROPPED) with REASON_INVALID_OFFERS; operations the simulated agents
//! cannot perform get OPERATION_ERROR when they carry an id and are dropped
//! otherwise, as for an agent without the needed capability. Whatever the
//! operations leave of the offers is declined with the call's filters.

use std::time::Instant;

use drover_proto::v1::scheduler::call;
use drover_proto::v1::{self, offer::operation, task_status::Reason, TaskState};

use super::allocator::refuse_duration;
use super::events;
use super::launch_checks::{check_group, check_task, Placement};
use super::machine::{Effect, Master};
use super::tasks::{master_status, Runner, StatusTrail, Task};
use crate::agent::executor::Delivery;
use crate::agent::sim_task::{SimSpec, SimTask};
use crate::ids::AgentIndex;
use crate::resources::Resources;

impl Master {
    pub(super) fn accept(
        &mut self,
        fw_id: &str,
        accept: call::Accept,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if let Err(why) = self.offers.check(fw_id, &accept.offer_ids) {
            self.refuse_operations(fw_id, &accept.operations, &why, now, fx);
            for id in &accept.offer_ids {
                if self.offers.is_owned(&id.value, fw_id) {
                    self.offers.discard(&id.value, &mut self.fleet);
                }
            }
            return;
        }
        let (mut pool, agent) = self.offers.take(fw_id, &accept.offer_ids);
        for op in accept.operations {
            let ty = op
                .r#type
                .and_then(|t| operation::Type::try_from(t).ok())
                .unwrap_or(operation::Type::Unknown);
            match ty {
                operation::Type::Launch => self.launch_op(fw_id, op, agent, &mut pool, now, fx),
                operation::Type::LaunchGroup => {
                    self.launch_group_op(fw_id, op, agent, &mut pool, now, fx)
                }
                _ => {
                    if let Some(id) = op.id {
                        let status = v1::OperationStatus {
                            operation_id: Some(id),
                            state: v1::OperationState::OperationError as i32,
                            message: Some(format!(
                                "Operation {} is not supported by the simulated agents",
                                ty.as_str_name()
                            )),
                            ..Default::default()
                        };
                        self.send_to(fw_id, events::operation_status(status), fx);
                    }
                }
            }
        }
        // Mesos recovers the unused part with the call's filters (only when
        // something is left to recover).
        if !pool.is_empty() {
            let refuse = refuse_duration(accept.filters.as_ref());
            self.offers
                .recover_unused(fw_id, agent, pool, refuse, &mut self.fleet, now);
        }
    }

    /// LAUNCH: each task that passes its checks is launched with what it
    /// needs from the pool; each other one gets TASK_ERROR.
    fn launch_op(
        &mut self,
        fw_id: &str,
        op: v1::offer::Operation,
        agent: AgentIndex,
        pool: &mut Resources,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let tasks = op.launch.map(|l| l.task_infos).unwrap_or_default();
        for task in tasks {
            let checked = if op.id.is_some() {
                Err("Operation IDs are not supported for LAUNCH".to_owned())
            } else {
                check_task(&self.placement(fw_id, agent), &task, pool, None)
            };
            match checked {
                Ok(needed) => {
                    pool.subtract(&needed);
                    self.launch(fw_id, task, agent, needed, now, fx, true);
                }
                Err(why) => self.task_error(fw_id, &task, Reason::TaskInvalid, &why, now, fx),
            }
        }
    }

    /// LAUNCH_GROUP: all of the group's tasks launch, or none does; a real
    /// agent's executor gets them in one LAUNCH_GROUP (reference 4.4).
    fn launch_group_op(
        &mut self,
        fw_id: &str,
        op: v1::offer::Operation,
        agent: AgentIndex,
        pool: &mut Resources,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(group) = op.launch_group else {
            return;
        };
        let checked = check_group(&self.placement(fw_id, agent), &group, op.id.is_some(), pool);
        let needed = match checked {
            Ok(needed) => needed,
            Err(why) => {
                for task in &group.task_group.tasks {
                    self.task_error(fw_id, task, Reason::TaskGroupInvalid, &why, now, fx);
                }
                return;
            }
        };
        let tasks = group.task_group.tasks.clone();
        for (task, res) in group.task_group.tasks.into_iter().zip(needed) {
            pool.subtract(&res);
            let mut task = task;
            task.executor = Some(Box::new(group.executor.clone()));
            self.launch(fw_id, task, agent, res, now, fx, false);
        }
        if self.fleet[agent].is_real() {
            let executor = Some(group.executor.clone());
            self.start_on_executor(fw_id, agent, executor, Delivery::Group(tasks), now, fx);
        }
    }

    /// What the launch checks need to know of this master.
    fn placement<'a>(&'a self, framework: &'a str, agent: AgentIndex) -> Placement<'a> {
        Placement {
            framework,
            agent,
            agent_id: &self.fleet[agent].id,
            tasks: &self.tasks,
        }
    }

    /// Every task of a refused ACCEPT is lost (dropped if partition-aware).
    fn refuse_operations(
        &mut self,
        fw_id: &str,
        ops: &[v1::offer::Operation],
        why: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let state = if self.frameworks.is_partition_aware(fw_id) {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        let unix = self.unix(now);
        for op in ops {
            let mut tasks: Vec<&v1::TaskInfo> = Vec::new();
            if let Some(l) = &op.launch {
                tasks.extend(&l.task_infos);
            }
            if let Some(g) = &op.launch_group {
                tasks.extend(&g.task_group.tasks);
            }
            for t in tasks {
                let status = master_status(
                    &t.task_id,
                    state,
                    Reason::InvalidOffers,
                    why,
                    Some(&t.agent_id.value),
                    unix,
                );
                self.send_master_update(fw_id, status, fx);
            }
            if let (Some(id), None, None) = (&op.id, &op.launch, &op.launch_group) {
                let status = v1::OperationStatus {
                    operation_id: Some(id.clone()),
                    state: v1::OperationState::OperationError as i32,
                    message: Some(why.to_owned()),
                    ..Default::default()
                };
                self.send_to(fw_id, events::operation_status(status), fx);
            }
        }
    }

    fn task_error(
        &mut self,
        fw_id: &str,
        task: &v1::TaskInfo,
        reason: Reason,
        why: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let status = master_status(
            &task.task_id,
            TaskState::TaskError,
            reason,
            why,
            Some(&task.agent_id.value),
            self.unix(now),
        );
        self.send_master_update(fw_id, status, fx);
    }

    /// Records the task at STAGING and starts it on its agent: simulated
    /// at once, or, on a real agent and if `deliver`, handed to its
    /// executor (a group's tasks are handed over together by the caller).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        fw_id: &str,
        info: v1::TaskInfo,
        agent: AgentIndex,
        resources: Resources,
        now: Instant,
        fx: &mut Vec<Effect>,
        deliver: bool,
    ) {
        let real = self.fleet[agent].is_real();
        let delivery = (real && deliver).then(|| info.clone());
        let Some(fw) = self.frameworks.get(fw_id) else {
            return;
        };
        let killing = fw.has_capability(v1::framework_info::capability::Type::TaskKillingState);
        self.offers.charge(fw_id, &resources);
        let key = (fw_id.to_owned(), info.task_id.value.clone());
        let runner = if real {
            Runner::Real
        } else {
            Runner::Simulated(SimTask::new(SimSpec::from_task(&info, killing)))
        };
        let task = Task {
            framework: fw_id.to_owned(),
            task_id: info.task_id,
            name: info.name,
            executor: info.executor,
            agent,
            resources,
            labels: info.labels.filter(|l| !l.labels.is_empty()).map(Box::new),
            state: TaskState::TaskStaging,
            healthy: None,
            statuses: StatusTrail::default(),
            runner,
            kill_pending: None,
            unreachable_since: None,
        };
        self.tasks.insert(key.clone(), task);
        self.counters.tasks_launched += 1;
        if let Some(info) = delivery {
            let executor = info.executor.as_deref().cloned();
            self.start_on_executor(
                fw_id,
                agent,
                executor,
                Delivery::Task(Box::new(info)),
                now,
                fx,
            );
            return;
        }
        let actions = match self.tasks.simulated_mut(&key) {
            Some(sim) => sim.on_launch(now),
            None => Vec::new(),
        };
        self.apply_sim(&key, actions, now, fx);
    }
}
