//! Kubeflow pipeline runs in the engine (issue 23): the runs as stored,
//! each with its parsed pipeline, and the decisions that change them: a
//! run created (validated, stored with the Drover jobs of its first
//! nodes), terminated, retried, archived or unarchived, deleted, and
//! moved on when a node's job ends or a retry's backoff is over; and the
//! Kubeflow experiments runs are grouped in. The driver
//! itself is the model's ([`crate::model::pipeline_run`]); this part only
//! turns its answers into changes.
//!
//! A node's job is created in the same change that records the node as
//! launched, so after a SIGKILL the restarted engine finds both or
//! neither: no node is launched twice, none is lost.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::action::EngineError;
use super::api::Then;
use super::registry::Registry;
use crate::model::change::{Change, JobWrite, KfpWrite};
use crate::model::ids::JobId;
use crate::model::job::Job;
use crate::model::pipeline::ImageUse;
use crate::model::pipeline::{parse_workflow, resolve_parameters, Pipeline};
use crate::model::pipeline_run::experiment::check_new;
use crate::model::pipeline_run::metrics::add_first_reports;
use crate::model::pipeline_run::node_job::node_job_spec;
use crate::model::pipeline_run::{Experiment, NodeOutcome, NodeStart, PipelineRun, RunRecord};
use crate::model::state::PodState;
use crate::model::time::UnixMillis;

/// A run to create, as the API read it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Its id (a uuid the API picked).
    pub run_id: String,
    pub name: String,
    pub description: String,
    /// `pipeline_spec.workflow_manifest` (JSON or YAML).
    pub manifest: String,
    /// `pipeline_spec.parameters`.
    pub parameters: Vec<(String, String)>,
    /// The EXPERIMENT resource reference's id.
    pub experiment_id: Option<String>,
    /// Who creates it: the engine sets it from the caller.
    pub owner: String,
}

/// One run and its pipeline.
#[derive(Debug, Clone)]
struct Entry {
    record: RunRecord,
    pipeline: Pipeline,
}

/// The runs, by id.
#[derive(Debug, Default)]
pub struct PipelineRuns {
    runs: BTreeMap<String, Entry>,
    /// Output files of node jobs that finished, by job, from their
    /// TASK_FINISHED (kept in memory until the run records them; lost
    /// in a restart, when the node runs again).
    outputs: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Kubeflow experiments, oldest first.
    experiments: Vec<Experiment>,
    /// Whether node jobs ask for their container's image
    /// ([`EngineConfig::kfp_images`](super::EngineConfig::kfp_images)).
    images: ImageUse,
}

impl PipelineRuns {
    /// The stored runs. A manifest that no longer parses (a newer reader
    /// refusing what an older one took) leaves its run readable as
    /// stored and never moved on; it is logged.
    pub fn from_records(records: Vec<RunRecord>) -> PipelineRuns {
        let mut runs = BTreeMap::new();
        for record in records {
            match parse_workflow(&record.manifest) {
                Ok(pipeline) => {
                    runs.insert(record.id().to_string(), Entry { record, pipeline });
                }
                Err(e) => {
                    tracing::error!(run = record.id(), error = %e, "stored pipeline run no longer parses")
                }
            }
        }
        PipelineRuns {
            runs,
            outputs: BTreeMap::new(),
            experiments: Vec::new(),
            images: ImageUse::default(),
        }
    }

    /// With node jobs that ask for their images or run on the host.
    pub fn with_images(mut self, images: ImageUse) -> PipelineRuns {
        self.images = images;
        self
    }

    /// With the stored experiments.
    pub fn with_experiments(mut self, experiments: Vec<Experiment>) -> PipelineRuns {
        self.experiments = experiments;
        self
    }

    pub fn experiments(&self) -> &[Experiment] {
        &self.experiments
    }

    /// Experiments stored.
    pub fn add_experiments(&mut self, made: &[Experiment]) {
        self.experiments.extend_from_slice(made);
    }

    /// The output files a node job sent with its TASK_FINISHED (JSON:
    /// path to base64 content); anything else is ignored.
    pub fn note_outputs(&mut self, job: &str, data: &[u8]) {
        let is_node = self
            .runs
            .values()
            .any(|e| e.record.run.node_of_job(job).is_some());
        if !is_node {
            return;
        }
        let Ok(files) = serde_json::from_slice::<BTreeMap<String, String>>(data) else {
            tracing::warn!(job, "a node job's outputs are not a JSON object");
            return;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let files = files
            .into_iter()
            .filter_map(|(path, content)| Some((path, b64.decode(content).ok()?)))
            .collect();
        self.outputs.insert(job.to_string(), files);
    }

    pub fn get(&self, id: &str) -> Option<&RunRecord> {
        self.runs.get(id).map(|e| &e.record)
    }

    /// Every run, oldest first.
    pub fn list(&self) -> Vec<&RunRecord> {
        let mut all: Vec<&RunRecord> = self.runs.values().map(|e| &e.record).collect();
        all.sort_by(|a, b| (a.created_ms, a.id()).cmp(&(b.created_ms, b.id())));
        all
    }

    /// Puts a stored run.
    pub fn put(&mut self, record: RunRecord) {
        for node in record.run.nodes.values().filter(|n| n.phase.is_terminal()) {
            if let Some(job) = &node.job {
                self.outputs.remove(job);
            }
        }
        if let Some(entry) = self.runs.get_mut(record.id()) {
            entry.record = record;
        } else if let Ok(pipeline) = parse_workflow(&record.manifest) {
            self.runs
                .insert(record.id().to_string(), Entry { record, pipeline });
        }
    }

    /// Decides a pipeline request: the change to store and what follows.
    pub(super) fn decide(
        &self,
        registry: &Registry,
        request: super::ApiRequest,
        now: UnixMillis,
    ) -> Result<(Change, Then), EngineError> {
        match request {
            super::ApiRequest::CreatePipelineRun(new) => self.create(registry, *new, now),
            super::ApiRequest::TerminatePipelineRun { run_id } => {
                let entry = self.entry(&run_id)?;
                let mut record = entry.record.clone();
                let kills = record.run.terminate(&entry.pipeline, now);
                let stopped = stopped_jobs(registry, kills);
                Ok(change_and_then(record, Vec::new(), stopped))
            }
            super::ApiRequest::CreateExperiment(experiment) => {
                check_new(&self.experiments, &experiment)?;
                let change = Change {
                    kfp: Box::new([KfpWrite::CreateExperiment((*experiment).clone())]),
                    ..Change::default()
                };
                let then = Then::PipelineRuns {
                    records: Vec::new(),
                    deleted: Vec::new(),
                    experiments: vec![*experiment],
                    created: Vec::new(),
                    stopped: Vec::new(),
                };
                Ok((change, then))
            }
            super::ApiRequest::RetryPipelineRun { run_id } => {
                let entry = self.entry(&run_id)?;
                let mut record = entry.record.clone();
                let starts = record
                    .run
                    .retry(&entry.pipeline, now)
                    .map_err(|e| EngineError::PipelineRunNotRetryable(e.to_string()))?;
                let created = node_jobs(registry, &record, &starts, self.images, now)?;
                Ok(change_and_then(record, created, Vec::new()))
            }
            super::ApiRequest::SetPipelineRunArchived { run_id, archived } => {
                let mut record = self.entry(&run_id)?.record.clone();
                record.storage_state = storage_state(archived).to_string();
                Ok(change_and_then(record, Vec::new(), Vec::new()))
            }
            super::ApiRequest::DeletePipelineRun { run_id } => {
                let entry = self.entry(&run_id)?;
                // Its running nodes are killed: their jobs stay, as every
                // Drover job's record does, stopped.
                let running = entry
                    .record
                    .run
                    .nodes
                    .values()
                    .filter(|n| !n.phase.is_terminal())
                    .filter_map(|n| n.job.clone())
                    .collect();
                let stopped = stopped_jobs(registry, running);
                let jobs: Vec<JobWrite> = stopped
                    .iter()
                    .map(|j| JobWrite::update_of(j, true))
                    .collect();
                let change = Change {
                    jobs,
                    kfp: Box::new([KfpWrite::DeleteRun(run_id.clone())]),
                    ..Change::default()
                };
                let then = Then::PipelineRuns {
                    records: Vec::new(),
                    deleted: vec![run_id],
                    experiments: Vec::new(),
                    created: Vec::new(),
                    stopped,
                };
                Ok((change, then))
            }
            super::ApiRequest::ReportPipelineRunMetrics { run_id, metrics } => {
                let mut record = self.entry(&run_id)?.record.clone();
                add_first_reports(&mut record.metrics, metrics);
                Ok(change_and_then(record, Vec::new(), Vec::new()))
            }
            _ => Err(EngineError::InvalidPipelineRun(
                "not a pipeline request".to_string(),
            )),
        }
    }

    fn entry(&self, run_id: &str) -> Result<&Entry, EngineError> {
        self.runs
            .get(run_id)
            .ok_or_else(|| EngineError::PipelineRunNotFound(run_id.to_string()))
    }

    /// Forgets a deleted run.
    pub fn remove(&mut self, run_id: &str) {
        if let Some(entry) = self.runs.remove(run_id) {
            for job in entry
                .record
                .run
                .nodes
                .values()
                .filter_map(|n| n.job.as_ref())
            {
                self.outputs.remove(job);
            }
        }
    }

    /// When the first node waiting for its retry backoff may launch.
    pub fn next_retry_ms(&self) -> Option<i64> {
        self.runs
            .values()
            .filter_map(|e| e.record.run.next_retry_ms())
            .min()
    }

    fn create(
        &self,
        registry: &Registry,
        new: NewRun,
        now: UnixMillis,
    ) -> Result<(Change, Then), EngineError> {
        if self.runs.contains_key(&new.run_id) {
            return Err(EngineError::PipelineRunExists(new.run_id));
        }
        let invalid = |field: &str, e: &dyn std::fmt::Display| {
            EngineError::InvalidPipelineRun(format!("{field}: {e}"))
        };
        let pipeline = parse_workflow(&new.manifest)
            .map_err(|e| invalid("run.pipeline_spec.workflow_manifest", &e))?;
        let parameters = resolve_parameters(&pipeline, &new.parameters)
            .map_err(|e| invalid("run.pipeline_spec.parameters", &e))?;
        let workflow_name = workflow_name(&pipeline, &new.run_id);
        let (run, starts) =
            PipelineRun::start(&pipeline, &new.run_id, &workflow_name, parameters, now).map_err(
                |e| match e.field() {
                    Some(field) => {
                        invalid(&format!("run.pipeline_spec.workflow_manifest {field}"), &e)
                    }
                    None => invalid("run.pipeline_spec", &e),
                },
            )?;
        let record = RunRecord {
            name: new.name,
            description: new.description,
            manifest: new.manifest,
            overrides: new.parameters,
            experiment_id: new.experiment_id,
            storage_state: storage_state(false).to_string(),
            created_ms: now,
            run,
            metrics: Vec::new(),
            owner: new.owner,
        };
        let created = node_jobs(registry, &record, &starts, self.images, now)?;
        Ok(change_and_then(record, created, Vec::new()))
    }

    /// Moves every unfinished run on from its node jobs that ended (as
    /// the registry now holds them): the change to store, if any.
    pub(super) fn advance(&self, registry: &Registry, now: UnixMillis) -> Option<(Change, Then)> {
        let mut change = Change::default();
        let mut records = Vec::new();
        let mut created_all = Vec::new();
        for entry in self.runs.values().filter(|e| !e.record.run.is_done()) {
            // What moves it on, found before its record is copied: this
            // runs after every change, and most find nothing to do.
            let ended: Vec<(String, NodeOutcome)> = entry
                .record
                .run
                .nodes
                .values()
                .filter(|n| !n.phase.is_terminal())
                .filter_map(|n| n.job.as_deref())
                .filter_map(|job| Some((job.to_string(), self.job_outcome(registry, entry, job)?)))
                .collect();
            let retry_due = entry.record.run.next_retry_ms().is_some_and(|at| at <= now);
            if ended.is_empty() && !retry_due {
                continue;
            }
            let mut record = entry.record.clone();
            let mut starts = Vec::new();
            for (job, outcome) in ended {
                starts.extend(record.run.node_ended(&entry.pipeline, &job, outcome, now));
            }
            if retry_due {
                starts.extend(record.run.launch_due(&entry.pipeline, now));
            }
            if record == entry.record {
                continue;
            }
            match node_jobs(registry, &record, &starts, self.images, now) {
                Ok(created) => created_all.extend(created),
                Err(e) => tracing::error!(run = record.id(), error = %e, "node jobs not made"),
            }
            records.push(record);
        }
        if records.is_empty() {
            return None;
        }
        change.jobs = created_all
            .iter()
            .map(|j| JobWrite::Create(Box::new(j.clone())))
            .collect();
        change.pipeline_runs = records.clone();
        Some((
            change,
            Then::PipelineRuns {
                records,
                deleted: Vec::new(),
                experiments: Vec::new(),
                created: created_all,
                stopped: Vec::new(),
            },
        ))
    }
}

impl PipelineRuns {
    /// How node job `job` of `entry` ended, once its run has: `None`
    /// while it runs. A success whose output files this engine never
    /// received (they came before a restart) is `Lost`: the node runs
    /// again.
    fn job_outcome(&self, registry: &Registry, entry: &Entry, job: &str) -> Option<NodeOutcome> {
        let found = registry.get(&JobId(job.to_string()))?;
        let run = found.instances.first()?.last()?;
        if !run.state.is_terminal() {
            return None;
        }
        // The run keeps the reason; its message is stored with the pod's
        // events.
        let message = run
            .reason
            .map(|r| r.as_str_name().to_string())
            .unwrap_or_default();
        Some(match run.state {
            PodState::Succeeded => match self.outputs.get(job) {
                Some(files) => NodeOutcome::Succeeded {
                    files: files.clone(),
                },
                None if wants_files(entry, job) => NodeOutcome::Lost,
                None => NodeOutcome::Succeeded {
                    files: BTreeMap::new(),
                },
            },
            PodState::Failed | PodState::Killed => NodeOutcome::Failed {
                message: format!("{}: {message}", run.state.as_str()),
            },
            _ => NodeOutcome::Error {
                message: format!("{}: {message}", run.state.as_str()),
            },
        })
    }
}

/// Whether the node job `job` writes output files.
fn wants_files(entry: &Entry, job: &str) -> bool {
    let Some(template) = entry
        .record
        .run
        .node_of_job(job)
        .and_then(|n| entry.pipeline.template(&n.template))
    else {
        return false;
    };
    template
        .outputs
        .parameters
        .iter()
        .any(|p| matches!(p.source, crate::model::pipeline::ParameterSource::File(_)))
        || template
            .outputs
            .artifacts
            .iter()
            .any(|a| matches!(a.source, crate::model::pipeline::ArtifactSource::File(_)))
}

/// The stored record's `storage_state`, as Kubeflow names it.
pub fn storage_state(archived: bool) -> &'static str {
    if archived {
        "STORAGESTATE_ARCHIVED"
    } else {
        "STORAGESTATE_AVAILABLE"
    }
}

/// The node jobs `jobs` (those that exist) with their goal Stopped.
fn stopped_jobs(registry: &Registry, jobs: Vec<String>) -> Vec<Job> {
    jobs.into_iter()
        .filter_map(|job| registry.get(&JobId(job)))
        .map(|found| {
            let mut job = found.job.clone();
            job.goal = crate::model::state::JobGoal::Stopped;
            job
        })
        .collect()
}

/// The jobs of the nodes to launch.
fn node_jobs(
    registry: &Registry,
    record: &RunRecord,
    starts: &[NodeStart],
    images: ImageUse,
    now: UnixMillis,
) -> Result<Vec<Job>, EngineError> {
    let mut jobs = Vec::new();
    for start in starts {
        let display = record
            .run
            .nodes
            .get(&start.node_id)
            .map_or(start.node_id.as_str(), |n| n.display_name.as_str());
        let spec = node_job_spec(record.id(), &record.owner, display, start, images)
            .map_err(|e| EngineError::InvalidPipelineRun(format!("node {display}: {e}")))?;
        let id = JobId(start.job.clone());
        if registry.contains(&id) {
            continue;
        }
        jobs.push(Job::new(id, spec, now));
    }
    Ok(jobs)
}

fn change_and_then(record: RunRecord, created: Vec<Job>, stopped: Vec<Job>) -> (Change, Then) {
    let mut jobs: Vec<JobWrite> = created
        .iter()
        .map(|j| JobWrite::Create(Box::new(j.clone())))
        .collect();
    jobs.extend(stopped.iter().map(|j| JobWrite::update_of(j, true)));
    let change = Change {
        jobs,
        pipeline_runs: vec![record.clone()],
        ..Change::default()
    };
    (
        change,
        Then::PipelineRuns {
            records: vec![record],
            deleted: Vec::new(),
            experiments: Vec::new(),
            created,
            stopped,
        },
    )
}

/// The run's workflow name: kfp's `generateName` and the run id's first
/// characters, as Argo adds a suffix.
fn workflow_name(pipeline: &Pipeline, run_id: &str) -> String {
    let prefix = pipeline
        .generate_name
        .clone()
        .unwrap_or_else(|| format!("{}-", pipeline.name));
    let suffix: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(5)
        .collect();
    format!("{prefix}{}", suffix.to_ascii_lowercase())
}
