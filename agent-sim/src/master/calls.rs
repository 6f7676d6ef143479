//! Non-subscribe scheduler calls as inputs to the master: the framework
//! and stream checks of reference 3.2 rows 13-21, then one handler per call
//! type, each handing the call to the parts it concerns. ACCEPT lives in
//! `accept.rs`, ACKNOWLEDGE's and RECONCILE's work in `update_delivery.rs`.
//! The HTTP answer is the returned [`CallOk`] or [`CallError`].

use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::{call, call::Type, Call};
use drover_proto::v1::{self, OperationState};
use drover_proto::TaskStateExt;

use super::allocator::refuse_duration;
use super::events;
use super::machine::{Effect, Master};
use super::tasks::Runner;
use crate::ids::TaskKey;

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
        self.frameworks.check_stream(&fw_id, stream_id)?;
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
                    let refuse = refuse_duration(d.filters.as_ref());
                    self.offers
                        .decline(&fw_id, &d.offer_ids, refuse, &mut self.fleet, now);
                }
            }
            Type::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                if self.frameworks.revive(&fw_id, roles) {
                    self.offers.clear_filters(&fw_id);
                    self.timers.allocate_soon(now);
                }
            }
            Type::Suppress => {
                let roles = call.suppress.map(|s| s.roles).unwrap_or_default();
                self.frameworks.suppress(&fw_id, roles);
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
                    self.send_to(&fw_id, events::operation_status(status), fx);
                }
            }
            Type::UpdateFramework => {
                if let Some(u) = call.update_framework {
                    self.frameworks.update(&fw_id, *u)?;
                    self.timers.allocate_soon(now);
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
            // REQUEST: the built-in allocator ignores it; operation
            // acknowledgements have nothing to act on.
            Type::AcceptInverseOffers => {
                if let Some(a) = call.accept_inverse_offers {
                    let ids = &a.inverse_offer_ids;
                    self.answer_inverse_offers(&fw_id, ids, a.filters.as_ref(), true, now);
                }
            }
            Type::DeclineInverseOffers => {
                if let Some(d) = call.decline_inverse_offers {
                    let ids = &d.inverse_offer_ids;
                    self.answer_inverse_offers(&fw_id, ids, d.filters.as_ref(), false, now);
                }
            }
            Type::Request | Type::AcknowledgeOperationStatus => {}
        }
        Ok(CallOk::Accepted)
    }

    /// KILL (reference 3.4.7): an unknown task is reconciled; a task whose
    /// agent is away is killed when the agent returns.
    fn kill(&mut self, fw_id: &str, kill: call::Kill, now: Instant, fx: &mut Vec<Effect>) {
        let key = (fw_id.to_owned(), kill.task_id.value.clone());
        let grace = kill
            .kill_policy
            .as_ref()
            .and_then(|p| p.grace_period.as_ref())
            .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64));
        let Some(task) = self.tasks.get(&key) else {
            let status = self.reconcile_one(fw_id, &kill.task_id, kill.agent_id.as_ref(), now);
            self.send_master_update(fw_id, status, fx);
            return;
        };
        let agent = &self.fleet[task.agent];
        if kill.agent_id.as_ref().is_some_and(|a| a.value != agent.id) {
            return;
        }
        if task.state().is_terminal() {
            return;
        }
        if !agent.connected {
            self.tasks.hold_kill(&key, grace);
            return;
        }
        self.kill_task(&key, grace, now, fx);
    }

    /// Kills a live task on a connected agent, with the KILL's grace
    /// period if it gave one.
    pub(super) fn kill_task(
        &mut self,
        key: &TaskKey,
        grace: Option<Duration>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let real = match self.tasks.get(key).map(|t| &t.runner) {
            Some(Runner::Real) => true,
            Some(Runner::Simulated(_)) => false,
            None => return,
        };
        if real {
            let policy = grace.map(|g| v1::KillPolicy {
                grace_period: Some(v1::DurationInfo {
                    nanoseconds: i64::try_from(g.as_nanos()).unwrap_or(i64::MAX),
                }),
            });
            self.kill_real(key, policy, now, fx);
        } else if let Some(sim) = self.tasks.simulated_mut(key) {
            let actions = sim.on_kill(grace, now);
            self.apply_sim(key, actions, now, fx);
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
        let Some(agent) = self.fleet.index_of(&s.agent_id.value) else {
            return;
        };
        if self.fleet[agent].is_real() {
            let key = (agent, fw_id.to_owned(), s.executor_id.value.clone());
            self.shutdown_real(&key, now, fx);
            return;
        }
        for key in self.tasks.on_agent(agent) {
            if key.0 != fw_id {
                continue;
            }
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            if task.executor_id(&key) != s.executor_id.value || task.state().is_terminal() {
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
}
