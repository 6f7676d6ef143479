//! The runner's handling of what the session delivers: subscription
//! changes, offers, rescinds, status updates and agent failures. Status
//! updates are stored first and acknowledged only after the commit.

use super::{now_millis, Runner};
use crate::mesos::calls;
use crate::mesos::events::SessionEvent;
use crate::model::ids::{AgentId, OfferId, TaskId};
use crate::model::offer::Offer;
use crate::model::state::PodState;
use crate::model::task_update::TaskUpdate;
use crate::store::{StatusOutcome, StatusRecord};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
                SessionEvent::Update(update) => updates.push(update),
                SessionEvent::Offers(offers) => self.on_offers(offers),
                SessionEvent::Rescind { offer_id } => self.on_rescind(&offer_id).await,
                SessionEvent::AgentLost { agent_id } => self.on_agent_lost(&agent_id),
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
            SessionEvent::Subscribed { framework_id } => self.on_subscribed(&framework_id).await,
            SessionEvent::Disconnected => {
                tracing::warn!("subscription lost");
                self.subscribed = false;
                self.offers.clear();
                self.hold_until = None;
            }
            SessionEvent::FrameworkRemoved { old } => {
                tracing::error!(framework = %old, "framework removed by the master; its tasks are lost");
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
            // Handled by `on_session_events` itself.
            SessionEvent::Update(_)
            | SessionEvent::Offers(_)
            | SessionEvent::Rescind { .. }
            | SessionEvent::AgentLost { .. } => {}
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

    fn on_offers(&mut self, offers: Vec<Offer>) {
        self.metrics
            .offers_received
            .fetch_add(offers.len() as u64, Ordering::Relaxed);
        for offer in &offers {
            // An agent that offers is alive again.
            self.facts.lost_agents.remove(offer.agent_id.as_str());
            let zone = offer
                .attributes
                .get(crate::placement::host_view::ZONE_ATTRIBUTE);
            if let Some(zone) = zone {
                self.agent_zones
                    .insert(offer.agent_id.as_str().to_owned(), zone.clone());
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

    async fn on_rescind(&mut self, offer_id: &OfferId) {
        self.metrics
            .offers_rescinded
            .fetch_add(1, Ordering::Relaxed);
        let others = self.offers.rescind(offer_id.as_str());
        self.decline(others, Duration::ZERO).await;
    }

    /// The master removed the agent (a FAILURE with only its id; one with
    /// an executor id never gets here, its tasks' updates follow).
    fn on_agent_lost(&mut self, agent: &AgentId) {
        tracing::warn!(%agent, "agent lost");
        self.facts.lost_agents.insert(agent.as_str().to_owned());
        let _ = self.offers.remove_agent(agent.as_str());
        self.enqueue_all_jobs();
    }

    /// Stores a batch of updates in one transaction, then acknowledges the
    /// reliable ones and kills tasks that must not be alive.
    async fn on_updates(&mut self, updates: Vec<TaskUpdate>) {
        if updates.is_empty() {
            return;
        }
        let now = now_millis();
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut strays = Vec::new();
        for update in updates {
            let state = update.state;
            self.metrics.count_update(state.as_str_name());
            if let Some(agent) = &update.agent_id {
                if PodState::from_task_state(state).is_live() {
                    self.facts.lost_agents.remove(agent.as_str());
                }
            }
            acks.extend(update.ack());
            match TaskId::parse(&update.task_id) {
                Ok(task_id) => records.push(status_record(task_id, update, now)),
                Err(_) => {
                    if PodState::from_task_state(state).is_live() {
                        let agent = update.agent_id.map(|a| a.as_str().to_owned());
                        strays.push((update.task_id, agent));
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
            let agent = ack.agent_id.as_str().to_owned();
            self.driver
                .send(calls::acknowledge(agent, ack.task_id, ack.uuid))
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

/// What the store records of `update` (a run of ours); an update that
/// did not say when it happened is stamped `now`.
fn status_record(task_id: TaskId, update: TaskUpdate, now: i64) -> StatusRecord {
    StatusRecord {
        task_id,
        state: PodState::from_task_state(update.state),
        mesos_state: Some(update.state.as_str_name().to_owned()),
        reason: update.reason.map(|r| r.as_str_name().to_owned()),
        message: update.message,
        healthy: update.healthy,
        agent_id: update.agent_id.map(|a| a.as_str().to_owned()),
        timestamp: update.timestamp.unwrap_or(now),
    }
}
