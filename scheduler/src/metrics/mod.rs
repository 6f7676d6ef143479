//! The scheduler's metrics, shared by the driver, the runner and the API,
//! kept in a `prometheus-client` registry and rendered for `/metrics` in
//! the Prometheus text format (0.0.4): every family has its HELP and TYPE,
//! and names, escaping and histogram buckets are the crate's, not ours.
//!
//! - Counters, gauges and histograms that the code updates as things
//!   happen are fields of [`Metrics`].
//! - Values that exist only when asked (the jobs and pods by state, the
//!   process' memory and CPU, SQLite's memory) are [`Collector`]s read at
//!   scrape time: nothing to keep in step.
//! - Another module adds a family in one line: [`Metrics::register`] (a
//!   metric it keeps and updates) or [`Metrics::register_collector`]
//!   (values it computes when scraped).
//!
//! - [`process`]: the process' resident memory, CPU seconds, open files
//!   and start time, from `/proc/self`.
//! - [`pools`]: resource pools' allocation, entitlement and limit, and
//!   preemptions.

pub mod pools;
pub mod process;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A gauge of a count (never negative).
pub type CountGauge = Gauge<u64, AtomicU64>;

/// A histogram family keyed by `L`, each child with the same buckets.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

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

impl SubscriptionGauge {
    /// Every state, in the order of their numbers.
    pub const ALL: [SubscriptionGauge; 4] = [
        SubscriptionGauge::Disconnected,
        SubscriptionGauge::Connecting,
        SubscriptionGauge::Subscribing,
        SubscriptionGauge::Subscribed,
    ];

    /// The `state` label of `drover_mesos_subscription`.
    pub fn label(self) -> &'static str {
        match self {
            SubscriptionGauge::Disconnected => "disconnected",
            SubscriptionGauge::Connecting => "connecting",
            SubscriptionGauge::Subscribing => "subscribing",
            SubscriptionGauge::Subscribed => "subscribed",
        }
    }
}

/// A `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state's name.
    pub state: &'static str,
}

/// The labels of an HTTP (JSON API) request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The method, or `OTHER` for one the API does not serve.
    pub method: &'static str,
    /// The route's template (`/api/v1/jobs/{id}`), never the raw path;
    /// `unmatched` for a request no route took.
    pub route: String,
    /// The status class: `2xx`, `4xx`, `5xx`...
    pub status: &'static str,
}

/// The labels of a gRPC call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    /// The service's full name.
    pub service: String,
    /// The method's name.
    pub method: String,
    /// The status code's name (`OK`, `NOT_FOUND`...).
    pub code: &'static str,
}

/// Buckets of a request's latency, in seconds: 0.5 ms to 10 s.
const API_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of a launch (intent to TASK_RUNNING), in seconds: 50 ms to 10 min.
const LAUNCH_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets of an acknowledgement (update received to ACKNOWLEDGE
/// answered), in seconds: 1 ms to 1 min.
const ACK_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

fn api_histogram() -> Histogram {
    Histogram::new(API_BUCKETS)
}

/// Every metric the scheduler updates as things happen, and the registry
/// that renders them with those of other modules.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// [`SubscriptionGauge`] as a number (the state readiness reads, and
    /// `drover_subscription_state`).
    subscription_state: CountGauge,
    /// The same state, one labelled series set to 1.
    subscription: Family<StateLabel, Gauge>,
    /// Subscriptions lost and retried.
    pub reconnects: Counter,
    /// Offers received.
    pub offers_received: Counter,
    /// Offers declined.
    pub offers_declined: Counter,
    /// Offers rescinded by the master.
    pub offers_rescinded: Counter,
    /// Tasks sent in ACCEPT calls.
    pub launches: Counter,
    /// KILL calls sent.
    pub kills: Counter,
    /// ACKNOWLEDGE calls queued to the driver and not yet settled (the
    /// driver alone counts them: [`Metrics::ack_queued`],
    /// [`Metrics::ack_settled`]).
    pub pending_acks: CountGauge,
    /// ACKNOWLEDGE calls sent.
    pub acks_sent: Counter,
    /// Calls the master refused or that failed in transit.
    pub calls_failed: Counter,
    /// Calls dropped because the call queue was full.
    pub calls_dropped: Counter,
    /// Runs waiting for an offer.
    pub pending_tasks: CountGauge,
    /// Status updates received, by Mesos task state.
    updates_by_state: Family<StateLabel, Counter>,
    /// Store writes (commits) that failed.
    pub store_write_errors: Counter,
    /// API writes refused because the runner's queue was full.
    pub api_shed: Counter,
    /// 1 while the last store write succeeded.
    store_writable: Gauge,
    /// JSON API requests by route, method and status class.
    pub http_latency: HistogramFamily<HttpLabels>,
    /// gRPC calls by service, method and code.
    pub grpc_latency: HistogramFamily<GrpcLabels>,
    /// From a run's launch intent to its first TASK_RUNNING.
    pub launch_latency: Histogram,
    /// From receiving a status update to its ACKNOWLEDGE answered.
    pub ack_latency: Histogram,
    /// The error of the last store write, while the last write failed
    /// (`/health/ready` names it).
    store_failing: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, with the process' own and `build_info`.
    pub fn new() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            subscription_state: CountGauge::default(),
            subscription: Family::default(),
            reconnects: Counter::default(),
            offers_received: Counter::default(),
            offers_declined: Counter::default(),
            offers_rescinded: Counter::default(),
            launches: Counter::default(),
            kills: Counter::default(),
            pending_acks: CountGauge::default(),
            acks_sent: Counter::default(),
            calls_failed: Counter::default(),
            calls_dropped: Counter::default(),
            pending_tasks: CountGauge::default(),
            updates_by_state: Family::default(),
            store_write_errors: Counter::default(),
            api_shed: Counter::default(),
            store_writable: Gauge::default(),
            http_latency: Family::new_with_constructor(api_histogram as fn() -> Histogram),
            grpc_latency: Family::new_with_constructor(api_histogram as fn() -> Histogram),
            launch_latency: Histogram::new(LAUNCH_BUCKETS),
            ack_latency: Histogram::new(ACK_BUCKETS),
            store_failing: Mutex::new(None),
        };
        m.store_writable.set(1);
        m.set_subscription(SubscriptionGauge::Disconnected);
        m.register_own();
        m
    }

    /// The families above, by name. Counters are registered without
    /// `_total`: the encoder adds it.
    fn register_own(&self) {
        self.register(
            "drover_subscription_state",
            "The subscription as a number: 0 disconnected, 1 connecting, 2 subscribing, 3 subscribed (drover_mesos_subscription says it with a label)",
            self.subscription_state.clone(),
        );
        self.register(
            "drover_mesos_subscription",
            "The subscription to the Mesos master: the series of the current state is 1, the others 0",
            self.subscription.clone(),
        );
        let counters = [
            (
                "drover_reconnects",
                "Subscriptions lost and retried",
                &self.reconnects,
            ),
            (
                "drover_offers_received",
                "Offers received",
                &self.offers_received,
            ),
            (
                "drover_offers_declined",
                "Offers declined",
                &self.offers_declined,
            ),
            (
                "drover_offers_rescinded",
                "Offers rescinded",
                &self.offers_rescinded,
            ),
            (
                "drover_launches",
                "Tasks sent in ACCEPT calls",
                &self.launches,
            ),
            ("drover_kills", "KILL calls sent", &self.kills),
            ("drover_acks", "ACKNOWLEDGE calls sent", &self.acks_sent),
            (
                "drover_calls_failed",
                "Calls refused or failed",
                &self.calls_failed,
            ),
            (
                "drover_calls_dropped",
                "Calls dropped: the call queue was full, or their connection was replaced",
                &self.calls_dropped,
            ),
            (
                "drover_store_write_errors",
                "Store writes that failed (nothing of them is stored; updates stay unacknowledged)",
                &self.store_write_errors,
            ),
            (
                "drover_api_requests_shed",
                "API writes refused with 503 because --max-pending-requests writes already waited",
                &self.api_shed,
            ),
        ];
        for (name, help, counter) in counters {
            self.register(name, help, counter.clone());
        }
        self.register(
            "drover_pending_acks",
            "Updates awaiting acknowledgement",
            self.pending_acks.clone(),
        );
        self.register(
            "drover_pending_tasks",
            "Runs waiting for an offer",
            self.pending_tasks.clone(),
        );
        self.register(
            "drover_updates",
            "Status updates received, by task state",
            self.updates_by_state.clone(),
        );
        self.register(
            "drover_store_writable",
            "1 while the last store write succeeded, 0 while it failed",
            self.store_writable.clone(),
        );
        self.register(
            "drover_http_request_duration_seconds",
            "JSON API requests: time to the response's head, by route template, method and status class",
            self.http_latency.clone(),
        );
        self.register(
            "drover_grpc_request_duration_seconds",
            "gRPC calls: time to the response's head, by service, method and status code",
            self.grpc_latency.clone(),
        );
        self.register(
            "drover_launch_duration_seconds",
            "From a run's launch intent (its ACCEPT sent) to its first TASK_RUNNING",
            self.launch_latency.clone(),
        );
        self.register(
            "drover_ack_duration_seconds",
            "From a status update taken off the master's stream to the master's answer to its ACKNOWLEDGE",
            self.ack_latency.clone(),
        );
        self.register(
            "drover_build",
            "The scheduler's build: always 1, its version as a label",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        self.register_collector(StoreMemory);
        self.register_collector(process::ProcessCollector);
    }

    /// Adds a family that `metric` (kept and updated by the caller: a
    /// [`Counter`], [`Gauge`], [`Family`], [`Histogram`], all cheap clones
    /// of one value) renders. `name` without `_total` for a counter (the
    /// encoder adds it; debug builds panic on `_total`); `help` without a
    /// final period (the registry adds it). Register each name once, at
    /// start: a name registered twice is rendered twice, which Prometheus
    /// refuses. For example, watchers as a gauge:
    /// `metrics.register("drover_watchers", "Watch streams open", gauge.clone())`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.with_registry(|r| r.register(name, help, metric));
    }

    /// Adds families computed when `/metrics` is read.
    pub fn register_collector(&self, collector: impl Collector) {
        self.with_registry(|r| r.register_collector(Box::new(collector)));
    }

    fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut registry)
    }

    /// Adds one update of `state`.
    pub fn count_update(&self, state: &'static str) {
        self.updates_by_state
            .get_or_create(&StateLabel { state })
            .inc();
    }

    /// One more acknowledgement awaits sending.
    pub fn ack_queued(&self) {
        self.pending_acks.inc();
    }

    /// One awaited acknowledgement is settled (sent, or dropped because
    /// there is no subscription to send it on; the agent will resend).
    pub fn ack_settled(&self) {
        let _ = self
            .pending_acks
            .inner()
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
        self.store_writable.set(i64::from(!failed));
        if failed {
            self.store_write_errors.inc();
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
        match self.subscription_state.get() {
            3 => SubscriptionGauge::Subscribed,
            2 => SubscriptionGauge::Subscribing,
            1 => SubscriptionGauge::Connecting,
            _ => SubscriptionGauge::Disconnected,
        }
    }

    /// Sets the subscription gauges.
    pub fn set_subscription(&self, state: SubscriptionGauge) {
        self.subscription_state.set(state as u64);
        for each in SubscriptionGauge::ALL {
            self.subscription
                .get_or_create(&StateLabel {
                    state: each.label(),
                })
                .set(i64::from(each == state));
        }
    }

    /// The Prometheus text exposition (0.0.4) of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with_registry(|r| {
            if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, r) {
                // Writing to a String does not fail; a collector may.
                tracing::warn!(error = %e, "a metrics collector failed");
            }
        });
        out
    }
}

/// The Content-Type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Encodes one family of one unlabelled value, for collectors. `help`
/// without a final period, as [`Metrics::register`] takes it.
pub fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let help = format!("{help}.");
    let family = encoder.encode_descriptor(name, &help, None, metric.metric_type())?;
    metric.encode(family)
}

/// SQLite's memory, read when scraped.
#[derive(Debug)]
struct StoreMemory;

impl Collector for StoreMemory {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let bytes = crate::store::sqlite::memory_used();
        encode_one(
            &mut encoder,
            "drover_store_memory_bytes",
            "Memory SQLite holds for the store (page caches, statements), all connections",
            &ConstGauge::new(bytes),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.offers_received.inc_by(3);
        m.count_update("TASK_RUNNING");
        m.set_subscription(SubscriptionGauge::Subscribed);
        let text = m.render();
        assert!(text.contains("drover_offers_received_total 3\n"), "{text}");
        assert!(
            text.contains("drover_updates_total{state=\"TASK_RUNNING\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("drover_subscription_state 3\n"), "{text}");
        assert!(text.contains("drover_mesos_subscription{state=\"subscribed\"} 1\n"));
        assert!(text.contains("drover_mesos_subscription{state=\"connecting\"} 0\n"));
        assert!(text.contains("drover_build_info{version=\""), "{text}");
        assert!(text.contains("# TYPE drover_launch_duration_seconds histogram\n"));
    }

    #[test]
    fn every_family_has_help_and_type() {
        let m = Metrics::default();
        m.http_latency
            .get_or_create(&HttpLabels {
                method: "GET",
                route: "/api/v1/jobs/{id}".into(),
                status: "2xx",
            })
            .observe(0.002);
        let text = m.render();
        let mut families = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            families.insert(family.to_owned());
        }
        for family in &families {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
        assert!(families.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn another_module_adds_a_family_in_one_line() {
        let m = Metrics::default();
        let watchers = CountGauge::default();
        m.register("drover_watchers", "Watch streams open", watchers.clone());
        watchers.set(4);
        assert!(m
            .render()
            .contains("# HELP drover_watchers Watch streams open.\n"));
        assert!(m.render().contains("drover_watchers 4\n"));
    }
}
