//! ACCEPT: checking the offers, then applying the operations in order
//! (reference 3.4.2). LAUNCH and LAUNCH_GROUP start tasks after the TaskInfo
//! checks Mesos makes (3.4.2.2); bad offers make every task TASK_LOST (or
//! TASK_DROPPED) with REASON_INVALID_OFFERS; operations the simulated agents
//! cannot perform get OPERATION_ERROR when they carry an id and are dropped
//! otherwise, as for an agent without the needed capability. Whatever the
//! operations leave of the offers is declined with the call's filters.

use drover_proto::TaskStateExt;
use std::time::Instant;

use drover_proto::v1::scheduler::call;
use drover_proto::v1::{
    self, executor_info, health_check, offer::operation, task_status::Reason, TaskState,
};

use super::state::{Effect, Master, Runner, Task};
use super::validate;
use crate::agent::executor::Delivery;
use crate::agent::sim_task::{SimSpec, SimTask};
use crate::fixed_hash::HashSet;
use crate::resources::Resources;

impl Master {
    pub(crate) fn accept(
        &mut self,
        fw_id: &str,
        accept: call::Accept,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if let Err(why) = self.check_offers(fw_id, &accept.offer_ids) {
            self.refuse_operations(fw_id, &accept.operations, &why, now, fx);
            for id in &accept.offer_ids {
                if self
                    .offers
                    .get(&id.value)
                    .is_some_and(|o| o.framework == fw_id)
                {
                    self.discard_offer(&id.value);
                }
            }
            return;
        }
        let mut pool = Resources::default();
        let mut agent = 0;
        for id in &accept.offer_ids {
            if let Some(o) = self.offers.remove(&id.value) {
                pool.add(&o.resources);
                agent = o.agent;
                if let Some(fw) = self.frameworks.get_mut(fw_id) {
                    fw.offers.remove(&id.value);
                    fw.allocated_cpus -= o.resources.scalar("cpus");
                    fw.allocated_mem -= o.resources.scalar("mem");
                }
            }
        }
        for op in accept.operations {
            let ty = op
                .r#type
                .and_then(|t| operation::Type::try_from(t).ok())
                .unwrap_or(operation::Type::Unknown);
            match ty {
                operation::Type::Launch => {
                    let tasks = op.launch.map(|l| l.task_infos).unwrap_or_default();
                    for task in tasks {
                        let checked = if op.id.is_some() {
                            Err("Operation IDs are not supported for LAUNCH".to_owned())
                        } else {
                            self.check_task(fw_id, &task, agent, &pool, None)
                        };
                        match checked {
                            Ok(needed) => {
                                pool.subtract(&needed);
                                self.launch(fw_id, task, agent, needed, now, fx, true);
                            }
                            Err(why) => {
                                self.task_error(fw_id, &task, Reason::TaskInvalid, &why, now, fx)
                            }
                        }
                    }
                }
                operation::Type::LaunchGroup => {
                    let Some(group) = op.launch_group else {
                        continue;
                    };
                    match self.check_group(fw_id, &group, op.id.is_some(), agent, &pool) {
                        Ok(needed) => {
                            let tasks = group.task_group.tasks.clone();
                            for (task, res) in group.task_group.tasks.into_iter().zip(needed) {
                                pool.subtract(&res);
                                let mut task = task;
                                task.executor = Some(Box::new(group.executor.clone()));
                                self.launch(fw_id, task, agent, res, now, fx, false);
                            }
                            if self.agents[agent].is_real() {
                                // One LAUNCH_GROUP for the whole group (reference 4.4).
                                let executor = Some(group.executor.clone());
                                self.start_on_executor(
                                    fw_id,
                                    agent,
                                    executor,
                                    Delivery::Group(tasks),
                                    now,
                                    fx,
                                );
                            }
                        }
                        Err(why) => {
                            for task in &group.task_group.tasks {
                                self.task_error(
                                    fw_id,
                                    task,
                                    Reason::TaskGroupInvalid,
                                    &why,
                                    now,
                                    fx,
                                );
                            }
                        }
                    }
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
                        self.send_operation_status(fw_id, status, fx);
                    }
                }
            }
        }
        // Mesos recovers the unused part with the call's filters (only when
        // something is left to recover).
        if !pool.is_empty() {
            let declined = (pool.scalar("cpus"), pool.scalar("mem"));
            self.agents[agent].available.add(&pool);
            let refuse = super::allocator::refuse_duration(accept.filters.as_ref());
            self.allocator
                .add_filter(fw_id, agent, declined, refuse, now);
        }
    }

    /// All offers must exist, be this framework's, be distinct and share an agent and role.
    fn check_offers(&self, fw_id: &str, ids: &[v1::OfferId]) -> Result<(), String> {
        if ids.is_empty() {
            return Err("No offers specified".into());
        }
        let mut seen = HashSet::default();
        let mut first: Option<(usize, &str)> = None;
        for id in ids {
            if !seen.insert(&id.value) {
                return Err(format!("Duplicate offer {} in the offer list", id.value));
            }
            let Some(o) = self.offers.get(&id.value).filter(|o| o.framework == fw_id) else {
                return Err(format!("Offer {} is no longer valid", id.value));
            };
            match first {
                None => first = Some((o.agent, &o.role)),
                Some((a, _)) if a != o.agent => {
                    return Err("Aggregated offers must belong to one single agent".into())
                }
                Some((_, r)) if r != o.role => {
                    return Err("Aggregated offers must be allocated to the same role".into())
                }
                Some(_) => {}
            }
        }
        Ok(())
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
        let aware = self
            .frameworks
            .get(fw_id)
            .is_some_and(|f| f.is_partition_aware());
        let state = if aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for op in ops {
            let mut tasks: Vec<&v1::TaskInfo> = Vec::new();
            if let Some(l) = &op.launch {
                tasks.extend(&l.task_infos);
            }
            if let Some(g) = &op.launch_group {
                tasks.extend(&g.task_group.tasks);
            }
            for t in tasks {
                let status = self.master_status(
                    &t.task_id,
                    state,
                    Reason::InvalidOffers,
                    why,
                    Some(&t.agent_id.value),
                    now,
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
                self.send_operation_status(fw_id, status, fx);
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
        let status = self.master_status(
            &task.task_id,
            TaskState::TaskError,
            reason,
            why,
            Some(&task.agent_id.value),
            now,
        );
        self.send_master_update(fw_id, status, fx);
    }

    /// Mesos' TaskInfo checks; returns the resources the task needs
    /// (its own plus a new custom executor's).
    fn check_task(
        &self,
        fw_id: &str,
        task: &v1::TaskInfo,
        agent: usize,
        pool: &Resources,
        group_executor: Option<&v1::ExecutorInfo>,
    ) -> Result<Resources, String> {
        validate::id(&task.task_id.value)
            .map_err(|e| format!("Task ID '{}' is invalid: {e}", task.task_id.value))?;
        let key = (fw_id.to_owned(), task.task_id.value.clone());
        if self
            .tasks
            .get(&key)
            .is_some_and(|t| !t.state().is_terminal() || t.unreachable)
        {
            return Err(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.agent_id.value != self.agents[agent].id {
            return Err(format!(
                "Task uses agent ID {} which does not match offered agent ID {}",
                task.agent_id.value, self.agents[agent].id
            ));
        }
        if group_executor.is_none() {
            match (&task.command, &task.executor) {
                (Some(_), Some(_)) => return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into()),
                (None, None) => return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into()),
                (None, Some(e)) => {
                    if e.command.is_none() {
                        return Err("Executor must have a CommandInfo".into());
                    }
                    if e.r#type == Some(executor_info::Type::Default as i32) {
                        return Err("'ExecutorInfo.type' must be 'CUSTOM'".into());
                    }
                    validate::id(&e.executor_id.value).map_err(|w| format!("Executor ID is invalid: {w}"))?;
                }
                (Some(_), None) => {}
            }
        } else if task.executor.is_some() {
            return Err("'TaskInfo.executor' must not be set".into());
        }
        if let Some(d) = task
            .kill_policy
            .as_ref()
            .and_then(|p| p.grace_period.as_ref())
        {
            if d.nanoseconds < 0 {
                return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
            }
        }
        if task
            .max_completion_time
            .as_ref()
            .is_some_and(|d| d.nanoseconds < 0)
        {
            return Err("Task's `max_completion_time` must be non-negative".into());
        }
        if let Some(h) = &task.health_check {
            check_health(h)?;
        }
        if task.resources.is_empty() {
            return Err("Task uses no resources".into());
        }
        let mut needed = Resources::from_protos(&task.resources).map_err(|e| e.to_string())?;
        if let Some(e) = &task.executor {
            let running = self.agents[agent].tasks.iter().any(|k| {
                k.0 == fw_id
                    && self.tasks.get(k).is_some_and(|t| {
                        !t.state().is_terminal()
                            && t.executor
                                .as_ref()
                                .is_some_and(|x| x.executor_id == e.executor_id)
                    })
            });
            if !running {
                needed.add(&Resources::from_protos(&e.resources).map_err(|e| e.to_string())?);
            }
        }
        if !pool.contains(&needed) {
            return Err("Task uses more resources than available in the offers".into());
        }
        Ok(needed)
    }

    fn check_group(
        &self,
        fw_id: &str,
        group: &operation::LaunchGroup,
        has_id: bool,
        agent: usize,
        pool: &Resources,
    ) -> Result<Vec<Resources>, String> {
        if has_id {
            return Err("Operation IDs are not supported for LAUNCH_GROUP".into());
        }
        let ty = group
            .executor
            .r#type
            .and_then(|t| executor_info::Type::try_from(t).ok());
        if !matches!(
            ty,
            Some(executor_info::Type::Default | executor_info::Type::Custom)
        ) {
            return Err("'ExecutorInfo.type' must be 'DEFAULT' or 'CUSTOM'".into());
        }
        if group.task_group.tasks.is_empty() {
            return Err("Task group must contain at least one task".into());
        }
        let mut remaining = pool.clone();
        let executor =
            Resources::from_protos(&group.executor.resources).map_err(|e| e.to_string())?;
        if !remaining.contains(&executor) {
            return Err("Task group uses more resources than available in the offers".into());
        }
        remaining.subtract(&executor);
        let mut ids = HashSet::default();
        let mut out = Vec::new();
        for (i, task) in group.task_group.tasks.iter().enumerate() {
            if !ids.insert(&task.task_id.value) {
                return Err(format!(
                    "Task group has duplicate task ID: {}",
                    task.task_id.value
                ));
            }
            let mut res = self.check_task(fw_id, task, agent, &remaining, Some(&group.executor))?;
            remaining.subtract(&res);
            if i == 0 {
                res.add(&executor);
            }
            out.push(res);
        }
        Ok(out)
    }

    /// Records the task at STAGING and starts it on its agent: simulated
    /// at once, or, on a real agent and if `deliver`, handed to its
    /// executor (a group's tasks are handed over together by the caller).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        fw_id: &str,
        info: v1::TaskInfo,
        agent: usize,
        resources: Resources,
        now: Instant,
        fx: &mut Vec<Effect>,
        deliver: bool,
    ) {
        let real = self.agents[agent].is_real();
        let delivery = (real && deliver).then(|| info.clone());
        let Some(fw) = self.frameworks.get_mut(fw_id) else {
            return;
        };
        let killing = fw.has_capability(v1::framework_info::capability::Type::TaskKillingState);
        fw.allocated_cpus += resources.scalar("cpus");
        fw.allocated_mem += resources.scalar("mem");
        fw.tasks.insert(info.task_id.value.clone());
        let key = (fw_id.to_owned(), info.task_id.value.clone());
        self.agents[agent].tasks.insert(key.clone());
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
            state: TaskState::TaskStaging,
            healthy: None,
            updated_at: self.unix(now),
            pending: Default::default(),
            retry_backoff: self.config.update_retry_min,
            retry_timer: None,
            runner,
            kill_pending: None,
            unreachable: false,
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
        let actions = match self.tasks.get_mut(&key).map(|t| &mut t.runner) {
            Some(Runner::Simulated(sim)) => sim.on_launch(now),
            _ => Vec::new(),
        };
        self.apply_sim(&key, actions, now, fx);
    }
}

/// Health check checks (reference 6.1 and 3.4.2.2).
fn check_health(h: &v1::HealthCheck) -> Result<(), String> {
    let negative = [
        h.delay_seconds,
        h.interval_seconds,
        h.timeout_seconds,
        h.grace_period_seconds,
    ]
    .iter()
    .any(|v| v.is_some_and(|s| s < 0.0));
    if negative {
        return Err("Task's health check has a negative timing value".into());
    }
    match h.r#type.and_then(|t| health_check::Type::try_from(t).ok()) {
        Some(health_check::Type::Command) if h.command.is_none() => {
            Err("Expecting 'command' to be set for COMMAND health check".into())
        }
        Some(health_check::Type::Http) => match &h.http {
            None => Err("Expecting 'http' to be set for HTTP health check".into()),
            Some(http) if http.path.as_ref().is_some_and(|p| !p.starts_with('/')) => {
                Err("The path of HTTP health check must start with '/'".into())
            }
            Some(http)
                if http
                    .scheme
                    .as_ref()
                    .is_some_and(|s| s != "http" && s != "https") =>
            {
                Err("Unsupported HTTP health check scheme".into())
            }
            Some(_) => Ok(()),
        },
        Some(health_check::Type::Tcp) if h.tcp.is_none() => {
            Err("Expecting 'tcp' to be set for TCP health check".into())
        }
        Some(health_check::Type::Unknown) | None => Err("HealthCheck must specify 'type'".into()),
        Some(_) => Ok(()),
    }
}
