//! The jobs as the engine last stored them, for the API to read without
//! asking the store: each job with how its instances stand (state and pod
//! counts), published by the runner after every change it carried out and
//! before it answers the request that made it. A `GET` of a job of 10,000
//! instances is then a map lookup, not 10,000 rows read and recounted: a
//! user polling a launch no longer takes the scheduler's CPU away from the
//! launch (kube-rs' reflector store: one writer, many readers).

use crate::engine::HostInfo;
use crate::model::ids::JobId;
use crate::model::job::JobView;
use crate::model::job_ref::{self, JobRefError};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The published jobs (and hosts).
#[derive(Debug)]
pub struct JobBoard {
    jobs: RwLock<Published>,
    /// Every host Drover knows, with its maintenance state, as the
    /// engine last stored them.
    hosts: RwLock<Arc<Vec<HostInfo>>>,
    /// Whether the engine has published what it loaded, for readers that
    /// wait for it.
    loaded: watch::Sender<bool>,
}

impl Default for JobBoard {
    fn default() -> Self {
        JobBoard {
            jobs: RwLock::default(),
            hosts: RwLock::default(),
            loaded: watch::Sender::new(false),
        }
    }
}

#[derive(Debug, Default)]
struct Published {
    /// False until the engine has loaded the store: until then the board
    /// knows no job, and must not say a job does not exist.
    ready: bool,
    by_id: BTreeMap<JobId, Arc<JobView>>,
}

impl JobBoard {
    /// Publishes changes: each job as it now is, or gone.
    pub fn publish(&self, changes: Vec<(JobId, Option<JobView>)>) {
        let mut jobs = self.jobs.write().unwrap_or_else(|e| e.into_inner());
        jobs.ready = true;
        for (id, view) in changes {
            match view {
                Some(view) => {
                    jobs.by_id.insert(id, Arc::new(view));
                }
                None => {
                    jobs.by_id.remove(&id);
                }
            }
        }
        drop(jobs);
        self.loaded
            .send_if_modified(|loaded| !std::mem::replace(loaded, true));
    }

    /// Publishes the hosts as they now are.
    pub fn publish_hosts(&self, hosts: Vec<HostInfo>) {
        *self.hosts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(hosts);
    }

    /// The hosts, by hostname.
    pub fn hosts(&self) -> Arc<Vec<HostInfo>> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the engine has published what it loaded.
    pub fn is_ready(&self) -> bool {
        self.jobs.read().unwrap_or_else(|e| e.into_inner()).ready
    }

    /// Waits up to `limit` for the engine to publish what it loaded;
    /// whether it has.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let mut loaded = self.loaded.subscribe();
        let waited = tokio::time::timeout(limit, loaded.wait_for(|loaded| *loaded)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// One job.
    pub fn get(&self, id: &JobId) -> Option<Arc<JobView>> {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner());
        jobs.by_id.get(id).cloned()
    }

    /// The job `reference` points at, by id or by name, as
    /// [`job_ref::resolve`] decides. The id is looked up first (a map
    /// lookup, the common case); only a reference that is no id scans the
    /// names, under the same read lock, so the answer is one snapshot.
    pub fn find(&self, reference: &str) -> Result<Arc<JobView>, JobRefError> {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner());
        if let Some(view) = jobs.by_id.get(&JobId(reference.to_owned())) {
            return Ok(view.clone());
        }
        let mut named: Vec<&Arc<JobView>> = jobs
            .by_id
            .values()
            .filter(|v| v.job.spec.name == reference)
            .collect();
        // Creation order, so an ambiguity lists the oldest job first.
        named.sort_by(|a, b| {
            (a.job.created_at, &a.job.job_id).cmp(&(b.job.created_at, &b.job.job_id))
        });
        let found = job_ref::resolve(reference, named.iter().map(|v| &v.job))?;
        let id = found.job_id.clone();
        jobs.by_id
            .get(&id)
            .cloned()
            .ok_or(JobRefError::NotFound(reference.to_owned()))
    }

    /// Calls `f` with every job, in no order, under the read lock: no
    /// copy of the list (the metrics count the jobs at each scrape), so
    /// `f` must be quick.
    pub fn for_each(&self, mut f: impl FnMut(&JobView)) {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner());
        jobs.by_id.values().for_each(|view| f(view));
    }

    /// Every job, in creation order (then id).
    pub fn all(&self) -> Vec<Arc<JobView>> {
        let mut all: Vec<_> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (a.job.created_at, &a.job.job_id).cmp(&(b.job.created_at, &b.job.job_id))
        });
        all
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::job::Job;
    use crate::model::state::InstanceCounts;

    fn view(id: &str, created_at: i64) -> JobView {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": 1,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        JobView {
            job: Job::new(JobId::parse(id).unwrap(), spec, created_at),
            instances: InstanceCounts::default(),
        }
    }

    #[test]
    fn nothing_is_said_missing_until_the_store_is_loaded() {
        let board = JobBoard::default();
        assert!(!board.is_ready());
        board.publish(Vec::new());
        assert!(board.is_ready());
    }

    #[tokio::test]
    async fn a_reader_waits_for_the_load_and_no_longer_than_its_limit() {
        let board = Arc::new(JobBoard::default());
        assert!(!board.wait_ready(Duration::from_millis(20)).await);
        let waiting = tokio::spawn({
            let board = board.clone();
            async move { board.wait_ready(Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        board.publish(Vec::new());
        assert!(waiting.await.unwrap());
        assert!(board.wait_ready(Duration::ZERO).await);
    }

    #[test]
    fn jobs_are_published_replaced_and_removed_and_listed_by_creation() {
        let board = JobBoard::default();
        let (a, b) = (JobId::parse("a").unwrap(), JobId::parse("b").unwrap());
        board.publish(vec![
            (b.clone(), Some(view("b", 1))),
            (a.clone(), Some(view("a", 2))),
        ]);
        let order: Vec<_> = board.all().iter().map(|v| v.job.job_id.clone()).collect();
        assert_eq!(order, [b.clone(), a.clone()]);
        let mut newer = view("a", 2);
        newer.job.version = 7;
        board.publish(vec![(a.clone(), Some(newer)), (b.clone(), None)]);
        assert_eq!(board.get(&a).unwrap().job.version, 7);
        assert!(board.get(&b).is_none());
    }

    #[test]
    fn a_job_is_found_by_id_or_unique_name_and_a_shared_name_lists_ids_oldest_first() {
        let board = JobBoard::default();
        let named = |id: &str, name: &str, at: i64| {
            let mut v = view(id, at);
            v.job.spec.name = name.into();
            (JobId::parse(id).unwrap(), Some(v))
        };
        board.publish(vec![named("z1", "web", 1), named("db1", "db", 2)]);
        assert_eq!(board.find("web").unwrap().job.job_id.as_str(), "z1");
        assert_eq!(board.find("db1").unwrap().job.job_id.as_str(), "db1");
        board.publish(vec![named("a2", "web", 3)]);
        match board.find("web").unwrap_err() {
            JobRefError::Ambiguous { ids, .. } => {
                let ids: Vec<_> = ids.iter().map(JobId::as_str).collect();
                assert_eq!(ids, ["z1", "a2"]);
            }
            other => panic!("{other}"),
        }
        board.publish(vec![named("web", "other", 4)]);
        assert_eq!(board.find("web").unwrap().job.spec.name, "other");
        assert!(matches!(board.find("nope"), Err(JobRefError::NotFound(_))));
    }
}
