//! The spread scorer (SPREAD, the default for services): prefers the host
//! that keeps the most free after the task lands, and, among those, the
//! host with fewer of the job's instances, so a lost agent takes few
//! instances of any one service with it.

use super::host_view::HostView;
use super::scorer::{free_fraction_after, Scorer};
use crate::model::demand::TaskDemand;
use crate::model::spec::PlacementStrategy;

/// Spreads load and instances over the offered agents.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpreadScorer;

impl Scorer for SpreadScorer {
    fn name(&self) -> &'static str {
        "spread"
    }

    fn score(&self, task: &TaskDemand, host: &HostView) -> f64 {
        if task.strategy != PlacementStrategy::Spread {
            return 0.0;
        }
        let siblings = host.pods.iter().filter(|p| p.job == task.job).count() as f64;
        // Each sibling already there costs as much as a tenth of the host
        // being full: free room still dominates, siblings break near-ties.
        (free_fraction_after(task, host) - 0.1 * siblings).clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;
    use crate::placement::PodOnHost;

    fn res(cpus: f64, mem_mib: f64) -> Resources {
        Resources {
            cpus,
            mem_mib,
            ..Default::default()
        }
    }

    #[test]
    fn emptier_hosts_and_hosts_without_siblings_score_higher() {
        let mut task = TaskDemand::new(0, "j", res(1.0, 100.0));
        task.strategy = PlacementStrategy::Spread;
        let small = HostView::new("a", "h", "*", res(2.0, 200.0));
        let big = HostView::new("b", "h", "*", res(8.0, 800.0));
        assert!(SpreadScorer.score(&task, &big) > SpreadScorer.score(&task, &small));
        let sibling = PodOnHost {
            job: "j".into(),
            labels: vec![],
            exclusive: false,
        };
        let crowded = big.clone().with_pods(vec![sibling]);
        assert!(SpreadScorer.score(&task, &big) > SpreadScorer.score(&task, &crowded));
        task.strategy = PlacementStrategy::BinPack;
        assert_eq!(SpreadScorer.score(&task, &big), 0.0);
    }
}
