//! One committed change as watchers see it: the jobs and pods it touched,
//! each as the registry now holds it (the registry changes only after the
//! store committed, so it is what this revision left). What the registry
//! does not keep (a run's host, ports and message) comes from the change
//! itself or, for a run the change did not launch, from the pod as the
//! log last knew it.

use super::{Current, WatchEntry, WatchedPod};
use crate::engine::registry::{JobEntry, Registry};
use crate::model::change::{Change, JobWrite, LaunchRecord, RunWrite};
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::job::{JobView, Revision};
use crate::model::run::Run;
use crate::model::time::UnixMillis;
use crate::store::RunRecord;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Which instances of a job a change touched.
#[derive(Debug, Default)]
struct Touched {
    /// Every instance (a new job, a new spec or goal).
    all: bool,
    instances: BTreeSet<u32>,
}

/// The entry for `change`, committed as `revision` at `at`.
pub fn capture(
    change: &Change,
    registry: &Registry,
    current: &Current,
    revision: Revision,
    at: UnixMillis,
) -> WatchEntry {
    let mut entry = WatchEntry {
        revision,
        at,
        ..WatchEntry::default()
    };
    if !change.is_revisioned() {
        return entry;
    }
    let launches: HashMap<&TaskId, &LaunchRecord> =
        change.launches.iter().map(|l| (&l.task_id, l)).collect();
    let runs: HashMap<&TaskId, &RunWrite> = change.runs.iter().map(|r| (&r.task_id, r)).collect();
    let mut touched: BTreeMap<&JobId, Touched> = BTreeMap::new();
    for write in &change.jobs {
        match write {
            JobWrite::Create(job) => touched.entry(&job.job_id).or_default().all = true,
            JobWrite::Spec { job_id, .. } => touched.entry(job_id).or_default().all = true,
            // A user's change (a new goal) changes every pod's desired state.
            JobWrite::Update {
                job_id, revision, ..
            } => touched.entry(job_id).or_default().all |= *revision,
            JobWrite::Pod { pod, .. } => {
                touched
                    .entry(&pod.job)
                    .or_default()
                    .instances
                    .insert(pod.instance);
            }
            JobWrite::Delete(job_id) => {
                touched.entry(job_id).or_default();
            }
            JobWrite::DeletePodEvents(_) => {}
        }
    }
    let task_ids = change
        .launches
        .iter()
        .map(|l| &l.task_id)
        .chain(change.runs.iter().map(|r| &r.task_id))
        .chain(change.events.iter().map(|e| &e.task_id))
        .chain(change.kills.iter().map(|k| &k.task_id))
        .chain(change.run_versions.iter().map(|(t, _)| t));
    for task in task_ids {
        touched
            .entry(&task.instance.job)
            .or_default()
            .instances
            .insert(task.instance.instance);
    }
    for event in &change.workflow_events {
        touched.entry(&event.job_id).or_default();
    }
    for (job_id, touched) in touched {
        let Some(job) = registry.get(job_id) else {
            if let Some(gone) = current.job(job_id) {
                entry.deleted_jobs.push(gone.clone());
                entry
                    .deleted_pods
                    .extend(current.pods(job_id).iter().cloned());
            }
            continue;
        };
        let view = Arc::new(job.view());
        let count = job.job.spec.instance_count as usize;
        let pods_known = current.pods(job_id);
        let known = pods_known.len();
        // Pods past the count are gone (the job shrank); pods up to it
        // that the log did not know are new.
        entry
            .deleted_pods
            .extend(pods_known.iter().skip(count).cloned());
        let instances: Vec<u32> = if touched.all {
            (0..count as u32).collect()
        } else {
            let new = (known.min(count) as u32)..(count as u32);
            let mut set = touched.instances;
            set.extend(new);
            set.into_iter().filter(|i| (*i as usize) < count).collect()
        };
        for instance in instances {
            let id = InstanceId::new(job_id.clone(), instance);
            let known = current.pod(&id).map(|p| p.as_ref());
            entry.pods.push(Arc::new(pod_of(
                &view, job, instance, known, &launches, &runs,
            )));
        }
        entry.jobs.push(view);
    }
    entry
}

fn pod_of(
    view: &Arc<JobView>,
    job: &JobEntry,
    instance: u32,
    known: Option<&WatchedPod>,
    launches: &HashMap<&TaskId, &LaunchRecord>,
    runs: &HashMap<&TaskId, &RunWrite>,
) -> WatchedPod {
    let history = job.history(instance);
    let latest = history.last().map(|run| {
        let task_id = TaskId::new(InstanceId::new(job.job.job_id.clone(), instance), run.run);
        let before = known
            .and_then(|p| p.latest.as_ref())
            .filter(|r| r.task_id == task_id);
        let launch = launches.get(&task_id);
        RunRecord {
            hostname: launch
                .map(|l| l.hostname.clone())
                .or_else(|| before.and_then(|r| r.hostname.clone())),
            ports: launch
                .map(|l| l.ports.clone())
                .or_else(|| before.map(|r| r.ports.clone()))
                .unwrap_or_default(),
            message: match runs.get(&task_id) {
                Some(write) => write.message.clone(),
                None => before.and_then(|r| r.message.clone()),
            },
            // As the store keeps it: a write that names no image leaves
            // the one known before.
            image: runs
                .get(&task_id)
                .and_then(|w| w.image.clone())
                .or_else(|| before.and_then(|r| r.image.clone())),
            task_id,
            run: run.clone(),
        }
    });
    WatchedPod::new(view.clone(), instance, latest, failures(history))
}

/// An instance's failures, as the engine counts them.
fn failures(history: &[Run]) -> usize {
    history.iter().filter(|r| Run::counts_as_failure(r)).count()
}

/// What the log starts from: every job the registry holds, with its pods'
/// latest runs as the store lists them (`runs_of`: by instance, then run).
pub fn seed<E>(
    registry: &Registry,
    mut runs_of: impl FnMut(&JobId) -> Result<Vec<RunRecord>, E>,
) -> Result<Current, E> {
    let mut current = Current::default();
    for (job_id, job) in registry.iter() {
        let view = Arc::new(job.view());
        let mut latest: BTreeMap<u32, RunRecord> = BTreeMap::new();
        for record in runs_of(job_id)? {
            latest.insert(record.task_id.instance.instance, record);
        }
        let pods = (0..job.job.spec.instance_count)
            .map(|instance| {
                Arc::new(WatchedPod::new(
                    view.clone(),
                    instance,
                    latest.remove(&instance),
                    failures(job.history(instance)),
                ))
            })
            .collect();
        current.set_job(view, pods);
    }
    Ok(current)
}
