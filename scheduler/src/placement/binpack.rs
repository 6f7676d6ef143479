//! The bin-pack scorer (BINPACK, the default for batch): prefers the host
//! left fullest once the task lands, so whole hosts stay free for large
//! tasks and batch waves finish on few agents.

use super::host_view::HostView;
use super::scorer::{free_fraction_after, Scorer};
use crate::model::demand::TaskDemand;
use crate::model::spec::PlacementStrategy;

/// Packs tasks onto the fewest agents.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinPackScorer;

impl Scorer for BinPackScorer {
    fn name(&self) -> &'static str {
        "binpack"
    }

    fn score(&self, task: &TaskDemand, host: &HostView) -> f64 {
        if task.strategy != PlacementStrategy::BinPack {
            return 0.0;
        }
        1.0 - free_fraction_after(task, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;

    #[test]
    fn fuller_hosts_score_higher() {
        let res = |cpus: f64, mem_mib: f64| Resources {
            cpus,
            mem_mib,
            ..Default::default()
        };
        let mut task = TaskDemand::new(0, "j", res(1.0, 100.0));
        task.strategy = PlacementStrategy::BinPack;
        let small = HostView::new("a", "h", "*", res(2.0, 200.0));
        let big = HostView::new("b", "h", "*", res(8.0, 800.0));
        assert!(BinPackScorer.score(&task, &small) > BinPackScorer.score(&task, &big));
        task.strategy = PlacementStrategy::Spread;
        assert_eq!(BinPackScorer.score(&task, &small), 0.0);
    }
}
