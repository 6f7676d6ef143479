//! Titus' uniqueHost: at most one instance of the job per host. Live runs
//! and this round's assignments both count.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// Rejects hosts that already hold an instance of the task's job.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniqueHostFilter;

impl Filter for UniqueHostFilter {
    fn name(&self) -> &'static str {
        "unique_host"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, _: &Round) -> Result<(), Rejection> {
        if task.placement.unique_host && host.pods.iter().any(|p| p.job == task.job) {
            return Err(Rejection {
                filter: self.name(),
                reason: "a host without an instance of the job (unique host)".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;
    use crate::placement::PodOnHost;

    #[test]
    fn only_hosts_without_the_job_pass() {
        let pod = |job: &str| PodOnHost {
            job: job.into(),
            labels: vec![],
            exclusive: false,
        };
        let empty = HostView::new("a", "h", "*", Resources::default());
        let mine = empty.clone().with_pods(vec![pod("j")]);
        let theirs = empty.clone().with_pods(vec![pod("k")]);
        let mut task = TaskDemand::new(0, "j", Resources::default());
        let r = Round::default();
        assert!(
            UniqueHostFilter.check(&task, &mine, &r).is_ok(),
            "off by default"
        );
        task.placement.unique_host = true;
        assert!(UniqueHostFilter.check(&task, &empty, &r).is_ok());
        assert!(UniqueHostFilter.check(&task, &theirs, &r).is_ok());
        assert!(UniqueHostFilter.check(&task, &mine, &r).is_err());
    }
}
