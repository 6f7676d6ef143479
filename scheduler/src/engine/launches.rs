//! The runs waiting for a host and the placement round in progress: each
//! job's plan sets its waiting runs ([`waiting_runs`]), a round takes them
//! all ([`super::round`]) and gives back those it could not place, and why
//! each waits is recorded when that changes.

use super::offer_book::OfferBook;
use super::pending_runs::PendingRuns;
use super::pools_admission::Admission;
use super::reconcile::PendingLaunch;
use super::registry::Registry;
use super::round::{Pending, Round, RoundEnd};
use crate::model::change::{LaunchRecord, PendingInfo, PendingReason};
use crate::model::demand::pod_demand;
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::job::Job;
use crate::model::policies::preemption::Standing;
use crate::model::policies::sla_order::SlaKey;
use crate::model::pool::PoolId;
use crate::model::resources::Resources;
use crate::model::secret::SecretSpec;
use crate::model::spec::{JobSpec, PodSpec};
use crate::model::spec_label;
use crate::model::time::UnixMillis;
use crate::placement::{default_chain, Chain};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Waiting runs and the round in progress.
pub struct Launches {
    chain: Arc<Chain>,
    pending: PendingRuns<Pending>,
    /// The pending reason last recorded per run, so that unchanged reasons
    /// are not written again every round.
    reasons: HashMap<TaskId, String>,
    /// The round between its start and its end.
    pub round: Option<Round>,
    /// Runs the pools held back from the round in progress, with why.
    held: Vec<(Pending, String)>,
}

impl Default for Launches {
    fn default() -> Self {
        Launches {
            chain: Arc::new(default_chain()),
            pending: PendingRuns::default(),
            reasons: HashMap::new(),
            round: None,
            held: Vec::new(),
        }
    }
}

impl Launches {
    /// Runs waiting for a host.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Whether any run waits.
    pub fn runs_wait(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes `runs` the waiting runs of `job`.
    pub fn set_job(&mut self, job: &JobId, runs: Vec<Pending>) {
        self.pending.set_job(job, runs);
    }

    /// Forgets the waiting runs of `job`.
    pub fn remove_job(&mut self, job: &JobId) {
        self.pending.remove_job(job);
    }

    /// The waiting runs in placement order, without taking them (between
    /// rounds; during one, the round holds them).
    pub fn waiting_in_order(&self) -> Vec<&Pending> {
        self.pending.in_sla_order()
    }

    /// Starts a round of the waiting runs (in SLA order; taken out, not
    /// cloned: a PodSpec each) that `admit` lets through, over the held
    /// offers; the others wait for the next, with the reason it gives.
    /// Returns the pools' standings admission went by.
    pub fn start_round(
        &mut self,
        offers: &OfferBook,
        registry: &Registry,
        zones: &HashMap<AgentId, String>,
        now: Instant,
        admit: impl FnOnce(Vec<Pending>) -> Admission,
    ) -> BTreeMap<PoolId, Standing> {
        let Admission {
            admitted,
            held,
            standings,
        } = admit(self.pending.take_in_sla_order());
        self.held = held;
        self.round = Some(Round::start(
            admitted,
            offers,
            registry,
            zones,
            self.chain.clone(),
            now,
        ));
        standings
    }

    /// Runs whose intents are stored no longer wait for a reason.
    pub fn launched(&mut self, records: &[LaunchRecord]) {
        for record in records {
            self.reasons.remove(&record.task_id);
        }
    }

    /// Why the runs a round left over wait, where that changed since it
    /// was last recorded.
    pub fn changed_reasons(&mut self, end: &RoundEnd, now: UnixMillis) -> Vec<PendingReason> {
        let held = std::mem::take(&mut self.held);
        let mut changed = self.changed_pool_reasons(&held, now);
        self.held = held;
        for (at, miss) in &end.misses {
            let task = &end.unplaced_runs[*at].launch.task_id;
            let reason = miss.summary();
            if self.reasons.get(task) == Some(&reason) {
                continue;
            }
            let metrics = serde_json::json!({
                "nodes_evaluated": miss.hosts_evaluated,
                "nodes_filtered": miss.per_filter(),
                "reasons": miss.rejections.iter().map(|(r, n)| {
                    serde_json::json!({"filter": r.filter, "reason": r.reason, "nodes": n})
                }).collect::<Vec<_>>(),
            });
            self.reasons.insert(task.clone(), reason.clone());
            changed.push(PendingReason {
                pod: task.instance.clone(),
                info: Some(PendingInfo {
                    reason,
                    metrics: metrics.to_string(),
                }),
                at: now,
            });
        }
        changed
    }

    /// Why runs the pools hold wait (`held`: run and reason), where that
    /// changed since it was last recorded.
    pub fn changed_pool_reasons(
        &mut self,
        held: &[(Pending, String)],
        now: UnixMillis,
    ) -> Vec<PendingReason> {
        let mut changed = Vec::new();
        for (p, reason) in held {
            let task = &p.launch.task_id;
            if self.reasons.get(task) == Some(reason) {
                continue;
            }
            self.reasons.insert(task.clone(), reason.clone());
            changed.push(PendingReason {
                pod: task.instance.clone(),
                info: Some(PendingInfo {
                    reason: reason.clone(),
                    metrics: serde_json::json!({"held_by": "resource pool"}).to_string(),
                }),
                at: now,
            });
        }
        changed
    }

    /// The runs a round did not place wait again, in the order taken.
    pub fn put_back(&mut self, runs: Vec<Pending>) {
        for p in runs {
            self.pending.put_back(p);
        }
        for (p, _) in std::mem::take(&mut self.held) {
            self.pending.put_back(p);
        }
        self.pending.forget_empty_jobs();
    }
}

/// The runs `launches` of `job`'s plan ask for, as placement takes them
/// (instances in order); `overhead` is what each run's executor takes.
/// Each run gets the spec its instance should run: the job's target, or,
/// while an update has not reached the instance, the update's other spec.
pub fn waiting_runs(job: &Job, launches: Vec<PendingLaunch>, overhead: &Resources) -> Vec<Pending> {
    if launches.is_empty() {
        return Vec::new();
    }
    let mut target = SpecRuns::new(job, false, overhead);
    let mut other = None;
    let sla = SlaKey {
        priority: job.spec.sla.as_ref().map_or(0, |s| s.priority),
        created_at: job.created_at,
    };
    launches
        .into_iter()
        .map(|launch| {
            let instance = launch.task_id.instance.instance;
            let runs = if job.runs_other(instance) {
                other.get_or_insert_with(|| SpecRuns::new(job, true, overhead))
            } else {
                &mut target
            };
            let (pod, demand) = runs.pod(instance, overhead);
            Pending {
                launch,
                pod,
                spec_label: runs.label.clone(),
                secrets: runs.secrets.clone(),
                demand,
                sla,
                job_type: job.spec.job_type,
            }
        })
        .collect()
}

/// What the runs of one of a job's specs share: its default pod and
/// demand (the instances without an override of their own share one
/// copy) and its label, encoded once per plan.
struct SpecRuns<'a> {
    spec: &'a JobSpec,
    default_pod: Arc<PodSpec>,
    default_demand: Resources,
    label: Option<Arc<str>>,
    secrets: Arc<[SecretSpec]>,
}

impl<'a> SpecRuns<'a> {
    fn new(job: &'a Job, other: bool, overhead: &Resources) -> Self {
        let (spec, version) = job.spec_by(other);
        let default_pod = Arc::new(spec.default_spec.clone());
        SpecRuns {
            spec,
            default_demand: pod_demand(&default_pod, overhead),
            default_pod,
            label: spec_label::encode(version, spec).map(Arc::from),
            secrets: Arc::from(spec.secrets.as_slice()),
        }
    }

    fn pod(&self, instance: u32, overhead: &Resources) -> (Arc<PodSpec>, Resources) {
        match self.spec.pod_spec(instance) {
            Cow::Borrowed(_) => (self.default_pod.clone(), self.default_demand),
            Cow::Owned(own) => {
                let demand = pod_demand(&own, overhead);
                (Arc::new(own), demand)
            }
        }
    }
}
