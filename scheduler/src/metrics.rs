//! The scheduler's counters and gauges, shared by the driver, the runner
//! and the API, and rendered in the Prometheus text format for `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Subscription state as a gauge value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum SubscriptionGauge {
    /// Not connected.
    Disconnected = 0,
    /// SUBSCRIBE sent.
    Connecting = 1,
    /// 200 received, waiting for SUBSCRIBED.
    Subscribing = 2,
    /// Subscribed.
    Subscribed = 3,
}

/// Every metric the scheduler exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// [`SubscriptionGauge`] as a number.
    pub subscription_state: AtomicU64,
    /// Subscriptions lost and retried.
    pub reconnects: AtomicU64,
    /// Offers received.
    pub offers_received: AtomicU64,
    /// Offers declined.
    pub offers_declined: AtomicU64,
    /// Offers rescinded by the master.
    pub offers_rescinded: AtomicU64,
    /// Tasks sent in ACCEPT calls.
    pub launches: AtomicU64,
    /// KILL calls sent.
    pub kills: AtomicU64,
    /// ACKNOWLEDGE calls queued to the driver and not yet settled (the
    /// driver alone counts them: [`Metrics::ack_queued`],
    /// [`Metrics::ack_settled`]).
    pub pending_acks: AtomicU64,
    /// ACKNOWLEDGE calls sent.
    pub acks_sent: AtomicU64,
    /// Calls the master refused or that failed in transit.
    pub calls_failed: AtomicU64,
    /// Calls dropped because the call queue was full.
    pub calls_dropped: AtomicU64,
    /// Runs waiting for an offer.
    pub pending_tasks: AtomicU64,
    /// Status updates received, by Mesos task state.
    pub updates_by_state: Mutex<BTreeMap<String, u64>>,
    /// Store writes (commits) that failed.
    pub store_write_errors: AtomicU64,
    /// API writes refused because the runner's queue was full.
    pub api_shed: AtomicU64,
    /// The error of the last store write, while the last write failed
    /// (`/health/ready` names it).
    store_failing: Mutex<Option<String>>,
}

impl Metrics {
    /// Adds one update of `state`.
    pub fn count_update(&self, state: &str) {
        if let Ok(mut map) = self.updates_by_state.lock() {
            *map.entry(state.to_owned()).or_default() += 1;
        }
    }

    /// One more acknowledgement awaits sending.
    pub fn ack_queued(&self) {
        self.pending_acks.fetch_add(1, Ordering::Relaxed);
    }

    /// One awaited acknowledgement is settled (sent, or dropped because
    /// there is no subscription to send it on; the agent will resend).
    pub fn ack_settled(&self) {
        let _ = self
            .pending_acks
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// A store write failed with `error`, or (`None`) succeeded.
    pub fn store_written(&self, error: Option<String>) {
        let failed = error.is_some();
        if let Ok(mut failing) = self.store_failing.lock() {
            // Most writes succeed after a success: nothing to change.
            if failing.is_some() || failed {
                *failing = error;
            }
        }
        if failed {
            self.store_write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The error of the last store write, if it failed.
    pub fn store_failing(&self) -> Option<String> {
        self.store_failing
            .lock()
            .map_or(None, |failing| failing.clone())
    }

    /// The subscription state.
    pub fn subscription(&self) -> SubscriptionGauge {
        match self.subscription_state.load(Ordering::Relaxed) {
            3 => SubscriptionGauge::Subscribed,
            2 => SubscriptionGauge::Subscribing,
            1 => SubscriptionGauge::Connecting,
            _ => SubscriptionGauge::Disconnected,
        }
    }

    /// Sets the subscription gauge.
    pub fn set_subscription(&self, state: SubscriptionGauge) {
        self.subscription_state
            .store(state as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "drover_subscription_state",
            "gauge",
            "0 disconnected, 1 connecting, 2 subscribing, 3 subscribed.",
            get(&self.subscription_state),
        );
        metric(
            "drover_reconnects_total",
            "counter",
            "Subscriptions lost and retried.",
            get(&self.reconnects),
        );
        metric(
            "drover_offers_received_total",
            "counter",
            "Offers received.",
            get(&self.offers_received),
        );
        metric(
            "drover_offers_declined_total",
            "counter",
            "Offers declined.",
            get(&self.offers_declined),
        );
        metric(
            "drover_offers_rescinded_total",
            "counter",
            "Offers rescinded.",
            get(&self.offers_rescinded),
        );
        metric(
            "drover_launches_total",
            "counter",
            "Tasks sent in ACCEPT calls.",
            get(&self.launches),
        );
        metric(
            "drover_kills_total",
            "counter",
            "KILL calls sent.",
            get(&self.kills),
        );
        metric(
            "drover_pending_acks",
            "gauge",
            "Updates awaiting acknowledgement.",
            get(&self.pending_acks),
        );
        metric(
            "drover_acks_total",
            "counter",
            "ACKNOWLEDGE calls sent.",
            get(&self.acks_sent),
        );
        metric(
            "drover_calls_failed_total",
            "counter",
            "Calls refused or failed.",
            get(&self.calls_failed),
        );
        metric(
            "drover_calls_dropped_total",
            "counter",
            "Calls dropped: the call queue was full, or their connection was replaced.",
            get(&self.calls_dropped),
        );
        metric(
            "drover_pending_tasks",
            "gauge",
            "Runs waiting for an offer.",
            get(&self.pending_tasks),
        );
        metric(
            "drover_store_write_errors_total",
            "counter",
            "Store writes that failed (nothing of them is stored; updates stay unacknowledged).",
            get(&self.store_write_errors),
        );
        metric(
            "drover_api_requests_shed_total",
            "counter",
            "API writes refused with 503 because --max-pending-requests writes already waited.",
            get(&self.api_shed),
        );
        metric(
            "drover_store_writable",
            "gauge",
            "1 while the last store write succeeded, 0 while it failed.",
            u64::from(self.store_failing().is_none()),
        );
        metric(
            "drover_store_memory_bytes",
            "gauge",
            "Memory SQLite holds for the store (page caches, statements), all connections.",
            crate::store::sqlite::memory_used(),
        );
        let _ = writeln!(
            out,
            "# HELP drover_updates_total Status updates received, by task state.\n# TYPE drover_updates_total counter"
        );
        if let Ok(map) = self.updates_by_state.lock() {
            for (state, n) in map.iter() {
                let _ = writeln!(out, "drover_updates_total{{state=\"{state}\"}} {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.offers_received.fetch_add(3, Ordering::Relaxed);
        m.count_update("TASK_RUNNING");
        m.set_subscription(SubscriptionGauge::Subscribed);
        let text = m.render();
        assert!(text.contains("drover_offers_received_total 3\n"));
        assert!(text.contains("drover_updates_total{state=\"TASK_RUNNING\"} 1\n"));
        assert!(text.contains("drover_subscription_state 3\n"));
    }
}
