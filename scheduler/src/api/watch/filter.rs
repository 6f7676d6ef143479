//! Which jobs and pods a watcher asked for: jobs by id or name, pods by
//! name, the job's labels and the pod's state; each list empty means any.
//! A pod passes when its job passes and it matches the pod names and
//! states; a job passes the job and label tests. Pure.

use crate::model::job::JobView;
use crate::model::state::PodState;
use crate::runner::watch_log::WatchedPod;

/// What a watcher asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchFilter {
    /// Jobs, by id or name.
    pub jobs: Vec<String>,
    /// Pods, by `<job>-<instance>` name.
    pub pods: Vec<String>,
    /// Job labels, each `(key, value)`, all of which must be present.
    pub labels: Vec<(String, String)>,
    /// Pod states.
    pub states: Vec<PodState>,
}

impl WatchFilter {
    /// Whether the watcher asked for everything.
    pub fn is_everything(&self) -> bool {
        *self == WatchFilter::default()
    }

    /// Whether the job passes.
    pub fn job(&self, view: &JobView) -> bool {
        let job = &view.job;
        let named = self.jobs.is_empty()
            || self
                .jobs
                .iter()
                .any(|j| j == job.job_id.as_str() || *j == job.spec.name);
        let labelled = self.labels.iter().all(|(key, value)| {
            job.spec
                .labels
                .iter()
                .any(|l| l.key == *key && l.value == *value)
        });
        named && labelled
    }

    /// Whether the pod passes.
    pub fn pod(&self, pod: &WatchedPod) -> bool {
        if !self.job(&pod.job) {
            return false;
        }
        let named = self.pods.is_empty() || self.pods.contains(&pod.pod_name());
        let state = pod
            .latest
            .as_ref()
            .map_or(PodState::Pending, |r| r.run.state);
        named && (self.states.is_empty() || self.states.contains(&state))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::JobId;
    use crate::model::job::Job;
    use crate::model::state::InstanceCounts;
    use std::sync::Arc;

    fn view(id: &str, name: &str, label: (&str, &str)) -> Arc<JobView> {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": name, "instance_count": 2,
            "labels": [{"key": label.0, "value": label.1}],
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Arc::new(JobView {
            job: Job::new(JobId::parse(id).unwrap(), spec, 1),
            instances: InstanceCounts::default(),
        })
    }

    fn pod(job: &Arc<JobView>, instance: u32) -> WatchedPod {
        WatchedPod::new(job.clone(), instance, None, 0)
    }

    #[test]
    fn an_empty_filter_passes_everything_and_each_list_narrows_it() {
        let web = view("j1", "web", ("team", "a"));
        let db = view("j2", "db", ("team", "b"));
        let all = WatchFilter::default();
        assert!(all.is_everything() && all.job(&web) && all.pod(&pod(&db, 1)));

        let by_name = WatchFilter {
            jobs: vec!["web".into()],
            ..WatchFilter::default()
        };
        assert!(by_name.job(&web) && !by_name.job(&db));
        assert!(by_name.pod(&pod(&web, 0)) && !by_name.pod(&pod(&db, 0)));

        let by_label = WatchFilter {
            labels: vec![("team".into(), "b".into())],
            ..WatchFilter::default()
        };
        assert!(!by_label.job(&web) && by_label.job(&db));

        let by_pod = WatchFilter {
            pods: vec!["j1-1".into()],
            ..WatchFilter::default()
        };
        assert!(by_pod.pod(&pod(&web, 1)) && !by_pod.pod(&pod(&web, 0)));
        assert!(by_pod.job(&web), "a pod filter keeps the pods' jobs");

        let running = WatchFilter {
            states: vec![PodState::Running],
            ..WatchFilter::default()
        };
        assert!(
            !running.pod(&pod(&web, 0)),
            "a pod never launched is pending"
        );
        let pending = WatchFilter {
            states: vec![PodState::Pending],
            ..WatchFilter::default()
        };
        assert!(pending.pod(&pod(&web, 0)));
    }
}
