//! The engine's side of the subscription: the framework id, whether calls
//! reach the master, whether offers are wanted (SUPPRESS and REVIVE are
//! sent only on change), and when every live run is next reconciled.

use super::action::Call;
use super::registry::Registry;
use crate::model::ids::AgentId;
use std::time::{Duration, Instant};

/// Where the subscription stands, as the engine sees it.
#[derive(Debug, Default)]
pub struct Subscription {
    /// The framework id to subscribe with (None: register anew).
    pub framework_id: Option<String>,
    /// Whether the session is subscribed (calls reach the master).
    pub subscribed: bool,
    /// Whether offers were last suppressed (None: not said since the
    /// subscription began).
    suppressed: Option<bool>,
    /// When every live run is next reconciled.
    pub next_reconcile: Option<Instant>,
    /// When the session was last subscribed.
    pub since: Option<Instant>,
}

impl Subscription {
    /// Not subscribed yet; `framework_id` as stored.
    pub fn new(framework_id: Option<String>) -> Self {
        Subscription {
            framework_id,
            ..Subscription::default()
        }
    }

    /// Subscribed (again) at `now`: offer interest is said anew and
    /// reconciliation is due at once (the engine does it once the jobs are
    /// planned; see [`super::Engine::on_tick`]), then periodically.
    pub fn start(&mut self, now: Instant) {
        self.subscribed = true;
        self.since = Some(now);
        self.suppressed = None;
        self.next_reconcile = Some(now);
    }

    /// SUPPRESS when no run waits, REVIVE when one does; only on change,
    /// and only while subscribed.
    pub fn interest(&mut self, runs_wait: bool) -> Option<Call> {
        if !self.subscribed || self.suppressed == Some(!runs_wait) {
            return None;
        }
        self.suppressed = Some(!runs_wait);
        tracing::debug!(revive = runs_wait, "offer interest changed");
        Some(if runs_wait {
            Call::Revive
        } else {
            Call::Suppress
        })
    }

    /// Whether periodic reconciliation is due at `now`; if so, the next is
    /// scheduled.
    pub fn reconcile_due(&mut self, now: Instant, interval: Duration) -> bool {
        if self.next_reconcile.is_some_and(|at| at <= now) {
            self.next_reconcile = Some(now + interval);
            return true;
        }
        false
    }
}

/// RECONCILE calls for every run that may be live, `chunk` tasks a call
/// (explicit), then one with no task (implicit).
pub fn reconciliation(registry: &Registry, chunk: usize) -> Vec<Call> {
    let live: Vec<(String, Option<AgentId>)> = registry
        .live_runs()
        .map(|(instance, run)| (instance.task_id(run.run).to_string(), run.agent.clone()))
        .collect();
    tracing::info!(tasks = live.len(), "reconciling live runs");
    let mut calls: Vec<Call> = live
        .chunks(chunk.max(1))
        .map(|tasks| Call::Reconcile {
            tasks: tasks.to_vec(),
        })
        .collect();
    calls.push(Call::Reconcile { tasks: Vec::new() });
    calls
}
