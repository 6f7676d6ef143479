//! Non-subscribe scheduler calls: the framework and stream checks of
//! reference 3.2 rows 13-21, then one handler per call type. ACCEPT lives in
//! `accept.rs`. Every handler takes the validated call and `now` and pushes
//! effects; the HTTP answer is the returned [`CallOk`] or [`CallError`].

use drover_proto::TaskStateExt;
use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::{call, call::Type, Call};
use drover_proto::v1::{self, OperationState};

use super::allocator::refuse_duration;
use super::state::{roles_of, Effect, Master, Runner};

/// A call the master took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOk {
    /// 202 Accepted: results, if any, arrive as events.
    Accepted,
    /// 200 OK: UPDATE_FRAMEWORK was applied.
    Applied,
}

/// Why a call is refused; each maps to the status Mesos answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// 400: the framework id is not (or no longer) registered.
    #[error("Framework cannot be found")]
    FrameworkNotFound,
    /// 403: the framework exists but has no live subscription.
    #[error("Framework is not subscribed")]
    NotSubscribed,
    /// 400: no `Mesos-Stream-Id` header.
    #[error("All non-subscribe calls should include the 'Mesos-Stream-Id' header")]
    MissingStreamId,
    /// 400: the header names another stream.
    #[error("The stream ID '{0}' included in this request didn't match the stream ID currently associated with framework ID '{1}'")]
    StreamIdMismatch(String, String),
    /// 400: UPDATE_FRAMEWORK asked for a change Mesos refuses.
    #[error("Invalid FrameworkInfo: {0}")]
    InvalidUpdate(String),
    /// 501: `type` is UNKNOWN.
    #[error("501 Not Implemented.")]
    NotImplemented,
}

impl CallError {
    /// The HTTP status Mesos answers with.
    pub fn status(&self) -> u16 {
        match self {
            CallError::NotSubscribed => 403,
            CallError::NotImplemented => 501,
            _ => 400,
        }
    }
}

fn name(ty: Type) -> &'static str {
    ty.as_str_name()
}

impl Master {
    /// A non-subscribe call (already decoded and validated) with the
    /// request's `Mesos-Stream-Id` header.
    pub fn on_call(
        &mut self,
        call: Call,
        stream_id: Option<&str>,
        now: Instant,
    ) -> (Result<CallOk, CallError>, Vec<Effect>) {
        let mut effects = Vec::new();
        let result = self.dispatch(call, stream_id, now, &mut effects);
        (result, effects)
    }

    fn dispatch(
        &mut self,
        call: Call,
        stream_id: Option<&str>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<CallOk, CallError> {
        let fw_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let fw = self
            .frameworks
            .get(&fw_id)
            .ok_or(CallError::FrameworkNotFound)?;
        let current = fw.connection.as_ref().ok_or(CallError::NotSubscribed)?;
        let header = stream_id.ok_or(CallError::MissingStreamId)?;
        if header != current.stream_id {
            return Err(CallError::StreamIdMismatch(header.to_owned(), fw_id));
        }
        let ty = call
            .r#type
            .and_then(|t| Type::try_from(t).ok())
            .unwrap_or(Type::Unknown);
        self.count(name(ty));
        match ty {
            Type::Unknown | Type::Subscribe => return Err(CallError::NotImplemented),
            Type::Teardown => self.remove_framework(&fw_id, now, fx),
            Type::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(&fw_id, accept, now, fx);
                }
            }
            Type::Decline => {
                if let Some(d) = call.decline {
                    self.decline(&fw_id, &d.offer_ids, d.filters.as_ref(), now);
                }
            }
            Type::Revive => self.revive(
                &fw_id,
                call.revive.map(|r| r.roles).unwrap_or_default(),
                now,
            ),
            Type::Suppress => {
                self.suppress(&fw_id, call.suppress.map(|s| s.roles).unwrap_or_default())
            }
            Type::Kill => {
                if let Some(k) = call.kill {
                    self.kill(&fw_id, *k, now, fx);
                }
            }
            Type::Shutdown => {
                if let Some(s) = call.shutdown {
                    self.shutdown_executor(&fw_id, &s, now, fx);
                }
            }
            Type::Acknowledge => {
                if let Some(a) = call.acknowledge {
                    let key = (fw_id.clone(), a.task_id.value.clone());
                    self.acknowledge(&key, &a.agent_id.value, &a.uuid, now, fx);
                }
            }
            Type::Reconcile => {
                if let Some(r) = call.reconcile {
                    self.reconcile(&fw_id, &r.tasks, now, fx);
                }
            }
            Type::ReconcileOperations => {
                // The simulator applies no operations, so every one is unknown.
                for op in call
                    .reconcile_operations
                    .map(|r| r.operations)
                    .unwrap_or_default()
                {
                    let status = v1::OperationStatus {
                        operation_id: Some(op.operation_id),
                        state: OperationState::OperationUnknown as i32,
                        agent_id: op.agent_id,
                        ..Default::default()
                    };
                    self.send_operation_status(&fw_id, status, fx);
                }
            }
            Type::UpdateFramework => {
                if let Some(u) = call.update_framework {
                    self.update_framework(&fw_id, *u, now)?;
                    return Ok(CallOk::Applied);
                }
            }
            // MESSAGE reaches real executors; simulated tasks have none to
            // read it, so it is dropped as Mesos drops a message for an
            // executor that is not running.
            Type::Message => {
                if let Some(m) = call.message {
                    self.message_to_executor(&fw_id, *m, now, fx);
                }
            }
            // REQUEST: the built-in allocator ignores it. Inverse offers and
            // operation acknowledgements have nothing to act on.
            Type::Request
            | Type::AcceptInverseOffers
            | Type::DeclineInverseOffers
            | Type::AcknowledgeOperationStatus => {}
        }
        Ok(CallOk::Accepted)
    }

    pub(crate) fn send_operation_status(
        &mut self,
        framework: &str,
        status: v1::OperationStatus,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(c) = self
            .frameworks
            .get(framework)
            .and_then(|f| f.connection.as_ref())
        {
            fx.push(Effect::Send {
                conn: c.conn,
                event: Box::new(super::events::operation_status(status)),
            });
        }
    }

    /// DECLINE (and the unused part of an ACCEPT): resources go back, the
    /// agents are filtered for the framework.
    pub(crate) fn decline(
        &mut self,
        fw: &str,
        offers: &[v1::OfferId],
        filters: Option<&v1::Filters>,
        now: Instant,
    ) {
        let refuse = refuse_duration(filters);
        for id in offers {
            let owned = self
                .offers
                .get(&id.value)
                .is_some_and(|o| o.framework == fw);
            if !owned {
                continue;
            }
            if let Some(o) = self.discard_offer(&id.value) {
                let declined = (o.resources.scalar("cpus"), o.resources.scalar("mem"));
                self.allocator
                    .add_filter(fw, o.agent, declined, refuse, now);
            }
        }
    }

    fn revive(&mut self, fw_id: &str, roles: Vec<String>, now: Instant) {
        let Some(fw) = self.frameworks.get_mut(fw_id) else {
            return;
        };
        let mine = roles_of(&fw.info);
        if roles.iter().any(|r| !mine.contains(r)) {
            return;
        }
        let roles = if roles.is_empty() { mine } else { roles };
        for r in &roles {
            fw.suppressed.remove(r);
        }
        self.allocator.clear_filters(fw_id);
        self.allocate_soon(now);
    }

    fn suppress(&mut self, fw_id: &str, roles: Vec<String>) {
        let Some(fw) = self.frameworks.get_mut(fw_id) else {
            return;
        };
        let mine = roles_of(&fw.info);
        if roles.iter().any(|r| !mine.contains(r)) {
            return;
        }
        fw.suppressed
            .extend(if roles.is_empty() { mine } else { roles });
    }

    fn kill(&mut self, fw_id: &str, kill: call::Kill, now: Instant, fx: &mut Vec<Effect>) {
        let key = (fw_id.to_owned(), kill.task_id.value.clone());
        let grace = kill
            .kill_policy
            .as_ref()
            .and_then(|p| p.grace_period.as_ref())
            .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64));
        let Some(task) = self.tasks.get_mut(&key) else {
            // Unknown task: the master reconciles it (reference 3.4.7).
            if let Some(status) =
                self.reconcile_one(fw_id, &kill.task_id, kill.agent_id.as_ref(), now)
            {
                self.send_master_update(fw_id, status, fx);
            }
            return;
        };
        if kill
            .agent_id
            .as_ref()
            .is_some_and(|a| a.value != self.agents[task.agent].id)
        {
            return;
        }
        if task.state().is_terminal() {
            return;
        }
        if !self.agents[task.agent].connected {
            task.kill_pending = Some(grace);
            return;
        }
        self.kill_task(&key, grace, now, fx);
    }

    /// Kills a live task on a connected agent, with the KILL's grace
    /// period if it gave one.
    pub(crate) fn kill_task(
        &mut self,
        key: &super::state::TaskKey,
        grace: Option<Duration>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        match self.tasks.get_mut(key).map(|t| &mut t.runner) {
            Some(Runner::Simulated(sim)) => {
                let actions = sim.on_kill(grace, now);
                self.apply_sim(key, actions, now, fx);
            }
            Some(Runner::Real) => {
                let policy = grace.map(|g| v1::KillPolicy {
                    grace_period: Some(v1::DurationInfo {
                        nanoseconds: i64::try_from(g.as_nanos()).unwrap_or(i64::MAX),
                    }),
                });
                self.kill_real(key, policy, now, fx);
            }
            None => {}
        }
    }

    /// SHUTDOWN of an executor: its tasks are killed with the agent's
    /// executor shutdown grace period (5 s, reference 3.4.8).
    fn shutdown_executor(
        &mut self,
        fw_id: &str,
        s: &call::Shutdown,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(&agent) = self.agent_index.get(&s.agent_id.value) else {
            return;
        };
        if self.agents[agent].is_real() {
            let key = (agent, fw_id.to_owned(), s.executor_id.value.clone());
            self.shutdown_real(&key, now, fx);
            return;
        }
        let keys: Vec<_> = self.agents[agent]
            .tasks
            .iter()
            .filter(|k| k.0 == fw_id)
            .cloned()
            .collect();
        for key in keys {
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            let executor = task
                .executor
                .as_ref()
                .map(|e| e.executor_id.value.as_str())
                .unwrap_or(&key.1);
            if executor != s.executor_id.value || task.state().is_terminal() {
                continue;
            }
            let grace = task
                .executor
                .as_ref()
                .and_then(|e| e.shutdown_grace_period.as_ref())
                .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
                .unwrap_or(Duration::from_secs(5));
            self.kill_task(&key, Some(grace), now, fx);
        }
    }

    /// RECONCILE: implicit (no tasks) answers for every known task;
    /// explicit answers for each listed one (reference 3.9).
    fn reconcile(
        &mut self,
        fw_id: &str,
        tasks: &[call::reconcile::Task],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let mut statuses = Vec::new();
        if tasks.is_empty() {
            let ids: Vec<String> = self
                .frameworks
                .get(fw_id)
                .map(|f| f.tasks.iter().cloned().collect())
                .unwrap_or_default();
            for id in ids {
                let key = (fw_id.to_owned(), id);
                if self.tasks.contains_key(&key) {
                    statuses.push(self.latest_for_reconcile(&key, now));
                }
            }
        } else {
            for t in tasks {
                statuses.extend(self.reconcile_one(fw_id, &t.task_id, t.agent_id.as_ref(), now));
            }
        }
        for s in statuses {
            self.send_master_update(fw_id, s, fx);
        }
    }

    /// UPDATE_FRAMEWORK (reference 3.4.16), applied synchronously.
    fn update_framework(
        &mut self,
        fw_id: &str,
        u: call::UpdateFramework,
        now: Instant,
    ) -> Result<(), CallError> {
        let Some(fw) = self.frameworks.get_mut(fw_id) else {
            return Err(CallError::FrameworkNotFound);
        };
        let info = u.framework_info;
        if info.user != fw.info.user {
            return Err(CallError::InvalidUpdate(
                "Updating 'FrameworkInfo.user' is unsupported".into(),
            ));
        }
        if info.principal != fw.info.principal {
            return Err(CallError::InvalidUpdate(
                "Changing framework's principal is not allowed.".into(),
            ));
        }
        if info.checkpoint != fw.info.checkpoint {
            return Err(CallError::InvalidUpdate(
                "Updating 'FrameworkInfo.checkpoint' is unsupported".into(),
            ));
        }
        let roles = roles_of(&info);
        if let Some(r) = u.suppressed_roles.iter().find(|r| !roles.contains(r)) {
            return Err(CallError::InvalidUpdate(format!(
                "Suppressed role '{r}' is not contained in the list of roles"
            )));
        }
        fw.info = info;
        fw.suppressed = u.suppressed_roles.into_iter().collect();
        self.allocate_soon(now);
        Ok(())
    }
}
