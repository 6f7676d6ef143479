//! The runner's handling of what the session delivers: subscription
//! changes, offers, rescinds, status updates and agent failures. Status
//! updates are stored first and acknowledged only after the commit.

use super::{now_millis, Runner};
use crate::mesos::calls;
use crate::mesos::session::SessionEvent;
use crate::model::ids::TaskId;
use crate::model::state::PodState;
use crate::store::{StatusOutcome, StatusRecord};
use drover_proto::v1::scheduler::{event, Event};
use drover_proto::v1::{task_status, TaskState, TaskStatus};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// An update to acknowledge once stored.
struct Ack {
    agent_id: String,
    task_id: String,
    uuid: bytes::Bytes,
}

impl Runner {
    /// Handles offers, rescinds, failures and subscription changes at once;
    /// status updates join the backlog that [`Runner::store_update_batch`]
    /// stores. Reordering them is safe: an update's effect does not depend
    /// on offers, and one from a stream since replaced is still a true
    /// state (its acknowledgement is dropped and the master resends it).
    pub(super) async fn on_session_events(&mut self, batch: Vec<SessionEvent>) {
        // Sized once: after a busy spell of the runner a batch holds
        // thousands of updates, and growing the list by doubling copied
        // them and faulted in fresh pages each time (a tenth of the
        // scheduler's CPU in a 20,000-task launch, perf).
        let mut updates = Vec::with_capacity(batch.len());
        for event in batch {
            match event {
                SessionEvent::Mesos(event) => match event_type(&event) {
                    Some(event::Type::Update) => {
                        if let Some(update) = event.update {
                            updates.push(update.status);
                        }
                    }
                    _ => self.on_mesos_event(*event).await,
                },
                other => self.on_session_change(other).await,
            }
        }
        self.update_backlog.push(updates, Instant::now());
    }

    /// Stores (and then acknowledges) the oldest batch of the backlog.
    pub(super) async fn store_update_batch(&mut self) {
        let batch = self.update_backlog.take(self.config.update_batch.max(1));
        self.on_updates(batch).await;
    }

    async fn on_session_change(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Subscribed { framework_id } => {
                self.on_subscribed(&framework_id.value).await
            }
            SessionEvent::Disconnected => {
                tracing::warn!("subscription lost");
                self.subscribed = false;
                self.offers.clear();
                self.hold_until = None;
            }
            SessionEvent::FrameworkRemoved { old } => {
                tracing::error!(framework = %old.value, "framework removed by the master; its tasks are lost");
                self.subscribed = false;
                self.offers.clear();
                let live = tokio::task::block_in_place(|| self.store.live_runs());
                match live {
                    Ok(runs) => {
                        let tasks: Vec<_> = runs.into_iter().map(|r| r.task_id).collect();
                        self.mark_lost(
                            &tasks,
                            "REASON_FRAMEWORK_REMOVED",
                            "framework removed by the master",
                            now_millis(),
                        );
                    }
                    Err(e) => tracing::error!(error = %e, "cannot list live runs"),
                }
                if let Err(e) = tokio::task::block_in_place(|| self.store.set_framework_id(None)) {
                    tracing::error!(error = %e, "cannot forget the framework id");
                }
                self.enqueue_all_jobs();
            }
            SessionEvent::Mesos(_) => {}
        }
    }

    /// Every (re)subscription: persist the id, forget old offers, reconcile
    /// every run that may be live explicitly, then implicitly.
    async fn on_subscribed(&mut self, framework_id: &str) {
        if let Err(e) =
            tokio::task::block_in_place(|| self.store.set_framework_id(Some(framework_id)))
        {
            tracing::error!(error = %e, "cannot persist the framework id");
        }
        self.subscribed = true;
        self.suppressed = None;
        self.offers.clear();
        self.explicit_reconcile().await;
        self.driver.send(calls::reconcile(Vec::new())).await;
        self.next_reconcile = Some(Instant::now() + self.config.reconcile_interval);
        self.enqueue_all_jobs();
        self.update_offer_interest().await;
    }

    async fn explicit_reconcile(&mut self) {
        let live = match tokio::task::block_in_place(|| self.store.live_runs()) {
            Ok(runs) => runs,
            Err(e) => {
                tracing::error!(error = %e, "cannot list live runs for reconciliation");
                return;
            }
        };
        tracing::info!(tasks = live.len(), "reconciling live runs");
        for chunk in live.chunks(self.config.reconcile_chunk.max(1)) {
            let tasks = chunk
                .iter()
                .map(|r| (r.task_id.to_string(), r.agent_id.clone()))
                .collect();
            self.driver.send(calls::reconcile(tasks)).await;
        }
    }

    pub(super) async fn periodic_reconcile(&mut self) {
        self.next_reconcile = Some(Instant::now() + self.config.reconcile_interval);
        if !self.subscribed {
            return;
        }
        self.explicit_reconcile().await;
        self.driver.send(calls::reconcile(Vec::new())).await;
    }

    async fn on_mesos_event(&mut self, event: Event) {
        match event_type(&event) {
            Some(event::Type::Offers) => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                self.metrics
                    .offers_received
                    .fetch_add(offers.len() as u64, Ordering::Relaxed);
                for offer in &offers {
                    // An agent that offers is alive again.
                    self.facts.lost_agents.remove(&offer.agent_id.value);
                    let zone = offer
                        .attributes
                        .iter()
                        .find(|a| a.name == crate::placement::host_view::ZONE_ATTRIBUTE)
                        .and_then(|a| a.text.as_ref().map(|t| t.value.clone()));
                    if let Some(zone) = zone {
                        self.agent_zones.insert(offer.agent_id.value.clone(), zone);
                    }
                    self.offers.add(offer);
                }
                tracing::debug!(
                    offers = offers.len(),
                    pending = self.pending.len(),
                    "offers received"
                );
                if self.hold_until.is_none() && !offers.is_empty() {
                    self.hold_until = Some(Instant::now() + self.config.offer_hold);
                }
            }
            Some(event::Type::Rescind) => {
                if let Some(rescind) = event.rescind {
                    self.metrics
                        .offers_rescinded
                        .fetch_add(1, Ordering::Relaxed);
                    let others = self.offers.rescind(&rescind.offer_id.value);
                    self.decline(others, Duration::ZERO).await;
                }
            }
            Some(event::Type::Failure) => {
                let Some(failure) = event.failure else { return };
                // Only agent id: the agent was removed. With an executor id:
                // an executor exited, and its tasks' updates will follow.
                if let (Some(agent), None) = (failure.agent_id, failure.executor_id) {
                    tracing::warn!(agent = %agent.value, "agent lost");
                    self.facts.lost_agents.insert(agent.value.clone());
                    let _ = self.offers.remove_agent(&agent.value);
                    self.enqueue_all_jobs();
                }
            }
            _ => {}
        }
    }

    /// Stores a batch of updates in one transaction, then acknowledges the
    /// reliable ones and kills tasks that must not be alive.
    async fn on_updates(&mut self, statuses: Vec<TaskStatus>) {
        if statuses.is_empty() {
            return;
        }
        let now = now_millis();
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut strays = Vec::new();
        for status in statuses {
            let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskUnknown);
            self.metrics.count_update(state.as_str_name());
            let agent = status.agent_id.as_ref().map(|a| a.value.clone());
            if let Some(agent) = &agent {
                if PodState::from_task_state(state).is_live() {
                    self.facts.lost_agents.remove(agent);
                }
            }
            if let (Some(uuid), Some(agent)) = (status.uuid.clone(), agent.clone()) {
                acks.push(Ack {
                    agent_id: agent,
                    task_id: status.task_id.value.clone(),
                    uuid,
                });
            }
            match TaskId::parse(&status.task_id.value) {
                Ok(task_id) => records.push(status_record(task_id, &status, state, now)),
                Err(_) => {
                    if PodState::from_task_state(state).is_live() {
                        strays.push((status.task_id.value.clone(), agent));
                    }
                }
            }
        }
        let outcomes = match tokio::task::block_in_place(|| self.store.record_statuses(&records)) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // Not stored, so not acknowledged: the agent will resend.
                tracing::error!(error = %e, "cannot record status updates");
                return;
            }
        };
        // A terminal update may need a relaunch now; a live one rarely
        // changes the plan, so its job is looked at once the burst settles
        // (a burst of updates costs one plan per job, not one per batch).
        let mut touched = BTreeMap::new();
        let mut touch = |job: crate::model::ids::JobId, terminal: bool| {
            *touched.entry(job).or_insert(false) |= terminal;
        };
        for (record, outcome) in records.iter().zip(outcomes) {
            match outcome {
                StatusOutcome::Applied(job) => touch(job, record.state.is_terminal()),
                StatusOutcome::Stale { job, live } => {
                    if live {
                        strays.push((record.task_id.to_string(), record.agent_id.clone()));
                    }
                    touch(job, record.state.is_terminal());
                }
                StatusOutcome::Unchanged { live, .. } => {
                    if live {
                        strays.push((record.task_id.to_string(), record.agent_id.clone()));
                    }
                }
                StatusOutcome::Unknown => {
                    if record.state.is_live() {
                        strays.push((record.task_id.to_string(), record.agent_id.clone()));
                    }
                }
            }
        }
        for (job, terminal) in touched {
            if terminal {
                self.enqueue(&job, Duration::ZERO);
            } else {
                self.enqueue_settled(&job);
            }
        }
        for (task, agent) in strays {
            tracing::info!(%task, "killing a task that should not be running");
            self.metrics.kills.fetch_add(1, Ordering::Relaxed);
            self.driver
                .send(calls::kill(task, agent, Duration::from_secs(5)))
                .await;
        }
        for ack in acks {
            self.metrics.pending_acks.fetch_add(1, Ordering::Relaxed);
            self.driver
                .send(calls::acknowledge(ack.agent_id, ack.task_id, ack.uuid))
                .await;
        }
    }

    pub(super) async fn decline(&mut self, offer_ids: Vec<String>, refuse: Duration) {
        if offer_ids.is_empty() {
            return;
        }
        tracing::debug!(
            offers = offer_ids.len(),
            ?refuse,
            pending = self.pending.len(),
            "declining"
        );
        self.metrics
            .offers_declined
            .fetch_add(offer_ids.len() as u64, Ordering::Relaxed);
        self.driver.send(calls::decline(offer_ids, refuse)).await;
    }
}

fn event_type(event: &Event) -> Option<event::Type> {
    event.r#type.and_then(|t| event::Type::try_from(t).ok())
}

fn status_record(task_id: TaskId, status: &TaskStatus, state: TaskState, now: i64) -> StatusRecord {
    let reason = status
        .reason
        .and_then(|r| task_status::Reason::try_from(r).ok())
        .map(|r| r.as_str_name().to_owned());
    let timestamp = status
        .timestamp
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| (t * 1000.0) as i64)
        .unwrap_or(now);
    StatusRecord {
        task_id,
        state: PodState::from_task_state(state),
        mesos_state: Some(state.as_str_name().to_owned()),
        reason,
        message: status.message.clone(),
        healthy: status.healthy,
        agent_id: status.agent_id.as_ref().map(|a| a.value.clone()),
        timestamp,
    }
}
