//! Resource pool metrics: what each pool's live runs hold, what it is
//! entitled to and its limit, per resource kind, and the preemptions
//! sent. The engine computes the standings when it admits or looks for
//! preemptions; the runner publishes them here when they change.

use super::Metrics;
use crate::model::policies::preemption::Standing;
use crate::model::pool::ResourceKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::AtomicU64;

/// A gauge of an amount (cpus, MiB).
type AmountGauge = Gauge<f64, AtomicU64>;

/// A pool's series: its path and a resource kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The pool's path (`/batch`).
    pub pool: String,
    /// Peloton's kind name: cpu, memory (MiB), disk (MiB), gpu.
    pub kind: &'static str,
}

/// The pool families, registered once.
#[derive(Debug, Clone, Default)]
pub struct PoolMetrics {
    allocation: Family<PoolLabels, AmountGauge>,
    entitlement: Family<PoolLabels, AmountGauge>,
    limit: Family<PoolLabels, AmountGauge>,
    /// Runs preempted for pools below their entitlement.
    pub preemptions: Counter,
}

impl PoolMetrics {
    /// The families, registered in `metrics`.
    pub fn register(metrics: &Metrics) -> PoolMetrics {
        let m = PoolMetrics::default();
        metrics.register(
            "drover_pool_allocation",
            "What each resource pool's live runs hold, per kind (cpus; memory and disk in MiB)",
            m.allocation.clone(),
        );
        metrics.register(
            "drover_pool_entitlement",
            "Each resource pool's fair share now (reservation, then max-min by share up to its demand and limit), per kind",
            m.entitlement.clone(),
        );
        metrics.register(
            "drover_pool_limit",
            "Each resource pool's limit per kind (+Inf where none)",
            m.limit.clone(),
        );
        metrics.register(
            "drover_preemptions",
            "Runs preempted so that resource pools below their entitlement get it",
            m.preemptions.clone(),
        );
        m
    }

    /// Replaces the pools' series with `standings` (path, standing).
    pub fn publish(&self, standings: &[(String, Standing)]) {
        self.allocation.clear();
        self.entitlement.clear();
        self.limit.clear();
        for (path, standing) in standings {
            for kind in ResourceKind::ALL {
                let labels = PoolLabels {
                    pool: path.clone(),
                    kind: kind.name(),
                };
                self.allocation
                    .get_or_create(&labels)
                    .set(kind.of(&standing.allocation));
                self.entitlement
                    .get_or_create(&labels)
                    .set(kind.of(&standing.entitlement));
                self.limit
                    .get_or_create(&labels)
                    .set(kind.of(&standing.limit));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;

    #[test]
    fn each_pool_and_kind_is_a_series_and_old_pools_go() {
        let metrics = Metrics::new();
        let pools = PoolMetrics::register(&metrics);
        let standing = Standing {
            entitlement: Resources {
                cpus: 6.0,
                ..Resources::default()
            },
            allocation: Resources {
                cpus: 4.5,
                ..Resources::default()
            },
            limit: Resources {
                cpus: f64::INFINITY,
                ..Resources::default()
            },
        };
        pools.publish(&[("/gone".into(), standing)]);
        pools.publish(&[("/batch".into(), standing)]);
        pools.preemptions.inc_by(3);
        let text = metrics.render();
        assert!(text.contains(r#"drover_pool_allocation{pool="/batch",kind="cpu"} 4.5"#));
        assert!(text.contains(r#"drover_pool_entitlement{pool="/batch",kind="cpu"} 6.0"#));
        assert!(text.contains(r#"drover_pool_limit{pool="/batch",kind="cpu"} +Inf"#));
        assert!(text.contains("drover_preemptions_total 3"));
        assert!(!text.contains("/gone"));
    }
}
