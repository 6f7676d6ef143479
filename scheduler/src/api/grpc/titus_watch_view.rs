//! Titus' `ObserveJobs` / `ObserveJob` notifications from Drover's watch
//! log: which jobs and tasks a watcher is shown, as Titus selects them
//! (`V3JobQueryCriteriaEvaluator`, `V3TaskQueryCriteriaEvaluator`), and in
//! Titus' order. Pure; the streams are [`super::titus_watch`].
//!
//! - The snapshot: each selected job followed by its selected tasks (one
//!   task per pod: its current run, as Titus lists its active tasks), in
//!   the jobs' creation order, then one `snapshotEnd`.
//! - A change: the revision's selected jobs (`jobUpdate`), then its
//!   selected tasks (`taskUpdate`), then removed tasks and deleted jobs
//!   the watcher was shown, as last seen, with `archived`.
//! - A task is selected when its job passes the job-level criteria and the
//!   task the task-level ones; a job when it passes the job-level criteria
//!   and, if the query has task criteria (`taskIds`, `taskStates`,
//!   `taskStateReasons`), one of its tasks passes them (kept per job from
//!   the snapshot on, so no store read is needed).

use super::titus_spec::{job_to_proto, task_to_proto, Filter};
use crate::model::ids::JobId;
use crate::model::job::JobView;
use crate::model::time::UnixMillis;
use crate::runner::watch_log::{WatchEntry, WatchSnapshot, WatchedPod};
use drover_seed_api::titus::job_change_notification::{
    JobUpdate, Notification, SnapshotEnd, TaskUpdate,
};
use drover_seed_api::titus::{self, JobChangeNotification};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

fn stamp(at: UnixMillis) -> u64 {
    u64::try_from(at).unwrap_or(0)
}

fn note(notification: Notification, at: UnixMillis) -> JobChangeNotification {
    JobChangeNotification {
        notification: Some(notification),
        timestamp: stamp(at),
    }
}

/// A `jobUpdate`.
pub fn job_update(job: titus::Job, archived: bool, at: UnixMillis) -> JobChangeNotification {
    note(
        Notification::JobUpdate(JobUpdate {
            job: Some(job),
            archived,
        }),
        at,
    )
}

/// A `taskUpdate`.
pub fn task_update(task: titus::Task, archived: bool, at: UnixMillis) -> JobChangeNotification {
    note(
        Notification::TaskUpdate(TaskUpdate {
            task: Some(task),
            moved_from_another_job: false,
            archived,
        }),
        at,
    )
}

/// The `snapshotEnd` marker.
pub fn snapshot_end(at: UnixMillis) -> JobChangeNotification {
    note(Notification::SnapshotEnd(SnapshotEnd {}), at)
}

/// The task of a watched pod: its current run, or its first to come.
pub fn task_of(pod: &WatchedPod) -> titus::Task {
    task_to_proto(&pod.job.job, pod.instance, pod.latest.as_ref())
}

/// One watcher's selection and what it was shown.
#[derive(Debug)]
pub struct Observer {
    filter: Filter,
    /// `ObserveJob`'s job; None: every job the filter selects.
    only: Option<JobId>,
    /// The jobs shown, so that a deleted one is told as archived.
    shown: HashSet<JobId>,
    /// With task criteria: each job's instances whose task passes them.
    passing: HashMap<JobId, BTreeSet<u32>>,
}

/// What a revision makes of a watcher's stream.
#[derive(Debug, Default)]
pub struct Change {
    /// The notifications, in order.
    pub notes: Vec<JobChangeNotification>,
    /// `ObserveJob`'s job was deleted: the stream ends (as Titus ends it
    /// when the job is archived).
    pub ended: bool,
}

impl Observer {
    /// A watcher of the jobs `filter` selects, or (`only`) of one job.
    pub fn new(filter: Filter, only: Option<JobId>) -> Observer {
        Observer {
            filter,
            only,
            shown: HashSet::new(),
            passing: HashMap::new(),
        }
    }

    fn job_level(&self, view: &JobView, job: &titus::Job) -> bool {
        self.only.as_ref().is_none_or(|id| *id == view.job.job_id) && self.filter.job_matches(job)
    }

    /// Notes whether `pod`'s task passes the task criteria (for its job's
    /// selection); its task.
    fn track(&mut self, pod: &WatchedPod) -> titus::Task {
        let task = task_of(pod);
        if self.filter.needs_tasks() {
            let set = self.passing.entry(pod.job.job.job_id.clone()).or_default();
            if self.filter.task_matches(&task) {
                set.insert(pod.instance);
            } else {
                set.remove(&pod.instance);
            }
        }
        task
    }

    fn job_selected(&self, view: &JobView, job: &titus::Job) -> bool {
        self.job_level(view, job)
            && (!self.filter.needs_tasks()
                || self
                    .passing
                    .get(&view.job.job_id)
                    .is_some_and(|s| !s.is_empty()))
    }

    /// The snapshot's notifications, `snapshotEnd` last; `now` stamps them.
    pub fn snapshot(
        &mut self,
        snapshot: &WatchSnapshot,
        now: UnixMillis,
    ) -> Vec<JobChangeNotification> {
        let mut by_job: HashMap<&JobId, Vec<(&Arc<WatchedPod>, titus::Task)>> = HashMap::new();
        for pod in &snapshot.pods {
            let task = self.track(pod);
            by_job
                .entry(&pod.job.job.job_id)
                .or_default()
                .push((pod, task));
        }
        let mut out = Vec::new();
        for view in &snapshot.jobs {
            let job = job_to_proto(view);
            let job_level = self.job_level(view, &job);
            if self.job_selected(view, &job) {
                self.shown.insert(view.job.job_id.clone());
                out.push(job_update(job, false, now));
            }
            if !job_level {
                continue;
            }
            for (_, task) in by_job.remove(&view.job.job_id).unwrap_or_default() {
                if self.filter.task_matches(&task) {
                    out.push(task_update(task, false, now));
                }
            }
        }
        out.push(snapshot_end(now));
        out
    }

    /// The notifications of one committed revision.
    pub fn change(&mut self, entry: &WatchEntry) -> Change {
        let at = entry.at;
        let tasks: Vec<(&Arc<WatchedPod>, titus::Task)> =
            entry.pods.iter().map(|p| (p, self.track(p))).collect();
        let mut change = Change::default();
        for view in &entry.jobs {
            let job = job_to_proto(view);
            if self.job_selected(view, &job) {
                self.shown.insert(view.job.job_id.clone());
                change.notes.push(job_update(job, false, at));
            }
        }
        for (pod, task) in tasks {
            // The job as this revision shows it (the pod's own view may
            // be older when only the pod changed).
            let view = entry
                .jobs
                .iter()
                .find(|v| v.job.job_id == pod.job.job.job_id)
                .unwrap_or(&pod.job);
            let job = job_to_proto(view);
            if self.job_level(view, &job) && self.filter.task_matches(&task) {
                change.notes.push(task_update(task, false, at));
            }
        }
        // Removed tasks (a job deleted or shrunk), as last seen, then
        // deleted jobs: a job's archived update after its tasks'.
        for pod in &entry.deleted_pods {
            let task = task_of(pod);
            if let Some(set) = self.passing.get_mut(&pod.job.job.job_id) {
                set.remove(&pod.instance);
            }
            if self.job_level(&pod.job, &job_to_proto(&pod.job)) && self.filter.task_matches(&task)
            {
                change.notes.push(task_update(task, true, at));
            }
        }
        for view in &entry.deleted_jobs {
            let id = &view.job.job_id;
            self.passing.remove(id);
            if self.shown.remove(id) {
                change.notes.push(job_update(job_to_proto(view), true, at));
            }
            if self.only.as_ref() == Some(id) {
                change.ended = true;
            }
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, InstanceId, TaskId};
    use crate::model::job::Job;
    use crate::model::run::Run;
    use crate::model::spec::JobSpec;
    use crate::model::state::PodState;
    use crate::store::RunRecord;

    fn view(id: &str) -> Arc<JobView> {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "name": id,
            "type": "SERVICE",
            "instance_count": 2,
            "default_spec": {"containers": [{
                "name": "c",
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 16.0},
                "command": {"value": "sleep 60"}
            }]}
        }))
        .unwrap();
        Arc::new(JobView {
            job: Job::new(JobId(id.into()), spec, 1_000),
            instances: Default::default(),
        })
    }

    fn pod(job: &Arc<JobView>, instance: u32, state: Option<PodState>) -> Arc<WatchedPod> {
        let latest = state.map(|state| {
            let mut run = Run::launching(0, AgentId::new("a1"), 1, 2_000);
            run.state = state;
            RunRecord {
                task_id: TaskId::new(InstanceId::new(job.job.job_id.clone(), instance), 0),
                run,
                hostname: None,
                message: None,
                ports: vec![],
                image: None,
            }
        });
        Arc::new(WatchedPod::new(job.clone(), instance, latest, 0))
    }

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let criteria = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Filter::parse(&criteria).unwrap()
    }

    /// `job <id>`, `task <id> [archived]`, `end`.
    fn what(notes: &[JobChangeNotification]) -> Vec<String> {
        notes
            .iter()
            .map(|n| match n.notification.as_ref().unwrap() {
                Notification::JobUpdate(u) => {
                    let archived = if u.archived { " archived" } else { "" };
                    format!("job {}{archived}", u.job.as_ref().unwrap().id)
                }
                Notification::TaskUpdate(u) => {
                    let archived = if u.archived { " archived" } else { "" };
                    format!("task {}{archived}", u.task.as_ref().unwrap().id)
                }
                Notification::SnapshotEnd(_) => "end".into(),
                Notification::KeepAliveResponse(_) => "keep-alive".into(),
            })
            .collect()
    }

    fn snapshot_of(jobs: &[&Arc<JobView>]) -> WatchSnapshot {
        WatchSnapshot {
            revision: 5,
            jobs: jobs.iter().map(|j| (*j).clone()).collect(),
            pods: jobs
                .iter()
                .flat_map(|j| {
                    [
                        pod(j, 0, Some(PodState::Running)),
                        pod(j, 1, Some(PodState::Pending)),
                    ]
                })
                .collect(),
        }
    }

    #[test]
    fn the_snapshot_is_each_job_then_its_tasks_then_one_end() {
        let (a, b) = (view("a"), view("b"));
        let mut observer = Observer::new(Filter::default(), None);
        let notes = observer.snapshot(&snapshot_of(&[&a, &b]), 42);
        assert_eq!(
            what(&notes),
            [
                "job a",
                "task a-0-0",
                "task a-1-0",
                "job b",
                "task b-0-0",
                "task b-1-0",
                "end"
            ]
        );
        assert!(notes.iter().all(|n| n.timestamp == 42));
    }

    #[test]
    fn task_criteria_select_tasks_and_the_jobs_with_one_such_task() {
        let (a, b) = (view("a"), view("b"));
        let mut observer = Observer::new(filter(&[("taskStates", "Started")]), None);
        let b_pods = [pod(&b, 0, Some(PodState::Pending)), pod(&b, 1, None)];
        let snapshot = WatchSnapshot {
            revision: 5,
            jobs: vec![a.clone(), b.clone()],
            pods: vec![
                pod(&a, 0, Some(PodState::Running)),
                pod(&a, 1, Some(PodState::Pending)),
                b_pods[0].clone(),
                b_pods[1].clone(),
            ],
        };
        let notes = observer.snapshot(&snapshot, 1);
        assert_eq!(what(&notes), ["job a", "task a-0-0", "end"]);
        // b's pod starts: its task, and b now has one such task.
        let change = observer.change(&WatchEntry {
            revision: 6,
            at: 77,
            jobs: vec![b.clone()],
            pods: vec![pod(&b, 0, Some(PodState::Running))],
            ..WatchEntry::default()
        });
        assert_eq!(what(&change.notes), ["job b", "task b-0-0"]);
        assert!(change.notes.iter().all(|n| n.timestamp == 77));
    }

    #[test]
    fn deletions_are_archived_updates_and_end_observe_job() {
        let (a, b) = (view("a"), view("b"));
        let mut observer = Observer::new(Filter::default(), Some(JobId("a".into())));
        let notes = observer.snapshot(&snapshot_of(&[&a, &b]), 1);
        assert_eq!(what(&notes), ["job a", "task a-0-0", "task a-1-0", "end"]);
        let change = observer.change(&WatchEntry {
            revision: 6,
            deleted_jobs: vec![b.clone()],
            deleted_pods: vec![pod(&b, 0, None)],
            ..WatchEntry::default()
        });
        assert!(change.notes.is_empty() && !change.ended, "not this job");
        let change = observer.change(&WatchEntry {
            revision: 7,
            deleted_jobs: vec![a.clone()],
            deleted_pods: vec![pod(&a, 0, Some(PodState::Killed))],
            ..WatchEntry::default()
        });
        assert_eq!(
            what(&change.notes),
            ["task a-0-0 archived", "job a archived"]
        );
        assert!(change.ended);
    }
}
