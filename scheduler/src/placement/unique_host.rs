//! Titus' uniqueHost: at most one instance of the job per host. Live runs
//! and this round's assignments both count. Hard, it filters; soft
//! (`prefer.unique_host`), it ranks hosts by the instances of the job
//! already there, so instances double up only once every feasible host
//! it looked at holds one, and then on the hosts with fewest.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::preference::Preference;
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

/// Prefers hosts with fewer instances of the task's job (0 = none).
#[derive(Debug, Clone, Copy, Default)]
pub struct UniqueHostPreference;

impl Preference for UniqueHostPreference {
    fn name(&self) -> &'static str {
        "unique_host"
    }

    fn penalty(&self, task: &TaskDemand, host: &HostView, _: &Round) -> u32 {
        if !task.preferences().unique_host {
            return 0;
        }
        let siblings = host.pods.iter().filter(|p| p.job == task.job).count();
        u32::try_from(siblings).unwrap_or(u32::MAX)
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

    #[test]
    fn soft_unique_host_counts_the_jobs_instances_and_never_rejects() {
        let pod = |job: &str| PodOnHost {
            job: job.into(),
            labels: vec![],
            exclusive: false,
        };
        let empty = HostView::new("a", "h", "*", Resources::default());
        let two = empty.clone().with_pods(vec![pod("j"), pod("k"), pod("j")]);
        let mut task = TaskDemand::new(0, "j", Resources::default());
        let r = Round::default();
        assert_eq!(UniqueHostPreference.penalty(&task, &two, &r), 0, "off");
        task.placement.prefer = Some(crate::model::spec::Preferences {
            unique_host: true,
            ..Default::default()
        });
        assert_eq!(UniqueHostPreference.penalty(&task, &empty, &r), 0);
        assert_eq!(UniqueHostPreference.penalty(&task, &two, &r), 2);
        assert!(
            UniqueHostFilter.check(&task, &two, &r).is_ok(),
            "not a filter"
        );
    }
}
