//! Kubeflow pipeline runs in the engine over a real SQLite store, pumped
//! by hand: a run created (its first node's job with it), refused with
//! nothing stored, moved on as node jobs end, carried on by an engine
//! recovered from the store (no node launched twice), terminated.

#![allow(clippy::unwrap_used)]

use drover_proto::v1::TaskState;
use drover_scheduler::engine::pipeline_runs::NewRun;
use drover_scheduler::engine::{ApiRequest, Call, EngineError, Reply};
use drover_scheduler::model::ids::JobId;
use drover_scheduler::model::pipeline::NodePhase;
use drover_scheduler::model::pipeline_run::RunRecord as PipelineRecord;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::store::StoreRead;
use std::time::Duration;

mod support;

use support::engine::{offer_of, update_on, Harness};

/// The steps of these tests alone.
impl Harness {
    /// Agent `agent` offers `cpus` (and 4 GiB of memory and disk).
    fn offer(&mut self, id: &str, agent: &str, cpus: f64) {
        self.give(offer_of(id, agent, cpus));
    }

    /// The engine started again from what the store holds, subscribed.
    fn restarted(mut self) -> Harness {
        self.restart();
        self.subscribe();
        self
    }
}

fn update(task: &str, state: TaskState, at: i64) -> TaskUpdate {
    TaskUpdate {
        message: Some("m".into()),
        ..update_on(task, "a1", state, at)
    }
}

/// A dag without output files: `first`, then `left` and `right` at once.
const FORK: &str = r#"{
  "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
  "metadata": {"generateName": "fork-"},
  "spec": {
    "entrypoint": "fork",
    "arguments": {"parameters": [{"name": "word", "value": "hi"}]},
    "templates": [
      {"name": "fork", "inputs": {"parameters": [{"name": "word"}]},
       "dag": {"tasks": [
         {"name": "first", "template": "echo",
          "arguments": {"parameters": [{"name": "w", "value": "{{inputs.parameters.word}}"}]}},
         {"name": "left", "template": "echo", "dependencies": ["first"],
          "arguments": {"parameters": [{"name": "w", "value": "l"}]}},
         {"name": "right", "template": "echo", "dependencies": ["first"],
          "arguments": {"parameters": [{"name": "w", "value": "r"}]}}]}},
      {"name": "echo", "inputs": {"parameters": [{"name": "w"}]},
       "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.w}}"]}}
    ]
  }
}"#;

fn new_run(id: &str, manifest: &str, parameters: &[(&str, &str)]) -> ApiRequest {
    ApiRequest::CreatePipelineRun(Box::new(NewRun {
        run_id: id.into(),
        name: "fork run".into(),
        description: String::new(),
        manifest: manifest.into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        experiment_id: None,
        owner: String::new(),
    }))
}

fn record(reply: Result<Reply, EngineError>) -> PipelineRecord {
    match reply.unwrap() {
        Reply::PipelineRun(r) => *r,
        other => panic!("{other:?}"),
    }
}

fn node<'a>(
    r: &'a PipelineRecord,
    display: &str,
) -> &'a drover_scheduler::model::pipeline_run::RunNode {
    r.run
        .nodes
        .values()
        .find(|n| n.display_name == display)
        .unwrap()
}

fn job_of(r: &PipelineRecord, display: &str) -> JobId {
    JobId(node(r, display).job.clone().unwrap())
}

/// The node job's one run, launched, then ended as `state`.
fn end(h: &mut Harness, job: &JobId, state: TaskState) {
    h.offer(&format!("o-{job}"), "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let runs = h.runs(job);
    assert_eq!(runs.len(), 1, "{job} launched once");
    let task = runs[0].task_id.to_string();
    h.updates(vec![
        update(&task, TaskState::TaskRunning, 30),
        update(&task, state, 40),
    ]);
}

/// A FORK run `id` whose first node's task is placed and RUNNING: that
/// task's id.
fn fork_with_first_running(h: &mut Harness, id: &str) -> String {
    let created = record(h.api(new_run(id, FORK, &[])));
    let first = job_of(&created, "first");
    h.offer("o1", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let task = h.runs(&first)[0].task_id.to_string();
    h.updates(vec![update(&task, TaskState::TaskRunning, 30)]);
    task
}

fn get(h: &mut Harness, id: &str) -> PipelineRecord {
    record(h.api(ApiRequest::GetPipelineRun { run_id: id.into() }))
}

#[test]
fn a_run_starts_its_ready_nodes_as_jobs_and_moves_on_as_they_end() {
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api(new_run("run-1", FORK, &[("word", "howdy")])));
    assert_eq!(created.run.phase, NodePhase::Running);
    let first = job_of(&created, "first");
    let spec = h
        .store
        .job(&first)
        .unwrap()
        .expect("the first node's job is stored with the run");
    assert!(spec
        .spec
        .labels
        .iter()
        .any(|l| l.key == "kfp.run_id" && l.value == "run-1"));
    let script = spec.spec.default_spec.containers[0]
        .command
        .clone()
        .unwrap()
        .value
        .unwrap();
    assert!(script.contains("exec 'echo' 'howdy'"), "{script}");
    assert!(!created.run.nodes.values().any(|n| n.display_name == "left"));

    end(&mut h, &first, TaskState::TaskFinished);
    let moved = get(&mut h, "run-1");
    assert_eq!(node(&moved, "first").phase, NodePhase::Succeeded);
    let (left, right) = (job_of(&moved, "left"), job_of(&moved, "right"));
    assert!(h.store.job(&left).unwrap().is_some() && h.store.job(&right).unwrap().is_some());

    // A scheduler started again from the store carries on: the stored run
    // and its jobs, nothing launched twice.
    let mut h = h.restarted();
    assert_eq!(get(&mut h, "run-1"), moved);
    end(&mut h, &left, TaskState::TaskFinished);
    end(&mut h, &right, TaskState::TaskFinished);
    let done = get(&mut h, "run-1");
    assert_eq!(
        done.run.phase,
        NodePhase::Succeeded,
        "{:#?}",
        done.run.nodes
    );
    assert_eq!(h.runs(&first).len(), 1);
    match h.api(ApiRequest::ListPipelineRuns).unwrap() {
        Reply::PipelineRuns(all) => assert_eq!(all, vec![done]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_node_fails_the_run_and_its_dependents_are_omitted() {
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api(new_run("run-2", FORK, &[])));
    end(&mut h, &job_of(&created, "first"), TaskState::TaskFailed);
    let done = get(&mut h, "run-2");
    assert_eq!(done.run.phase, NodePhase::Failed);
    assert_eq!(node(&done, "left").phase, NodePhase::Omitted);
}

#[test]
fn a_bad_manifest_or_parameter_is_refused_naming_the_field_and_nothing_is_stored() {
    let mut h = Harness::new();
    let volume = FORK.replace(
        r#""entrypoint": "fork","#,
        r#""entrypoint": "fork", "volumes": [{"name": "v"}],"#,
    );
    let cases = [
        (new_run("bad-1", &volume, &[]), "spec.volumes"),
        (
            new_run("bad-2", FORK, &[("nope", "x")]),
            "run.pipeline_spec.parameters",
        ),
        (
            new_run("bad-3", "{not json", &[]),
            "run.pipeline_spec.workflow_manifest",
        ),
    ];
    for (request, field) in cases {
        match h.api(request) {
            Err(EngineError::InvalidPipelineRun(message)) => {
                assert!(message.contains(field), "{message} names {field}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(h.store.pipeline_runs().unwrap().is_empty());
    assert_eq!(h.store.jobs(0, 10).unwrap().1, 0);
    assert!(matches!(
        h.api(ApiRequest::GetPipelineRun {
            run_id: "bad-1".into()
        }),
        Err(EngineError::PipelineRunNotFound(_))
    ));
}

#[test]
fn terminate_stops_running_nodes_and_starts_no_more() {
    let mut h = Harness::new();
    h.subscribe();
    let task = fork_with_first_running(&mut h, "run-3");
    h.take_calls();
    record(h.api(ApiRequest::TerminatePipelineRun {
        run_id: "run-3".into(),
    }));
    h.advance(Duration::from_millis(20));
    assert!(
        h.take_calls()
            .iter()
            .any(|c| matches!(c, Call::Kill { .. })),
        "the running node is killed"
    );
    h.updates(vec![update(&task, TaskState::TaskKilled, 50)]);
    let done = get(&mut h, "run-3");
    assert_eq!(done.run.phase, NodePhase::Failed);
    assert_eq!(
        done.run.message.as_deref(),
        Some("Stopped with strategy 'Terminate'")
    );
    assert!(
        !done.run.nodes.values().any(|n| n.display_name == "left"),
        "no node starts after terminate"
    );
}

/// `make` writes a parameter that `use` takes.
const PASS: &str = r#"{
  "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
  "metadata": {"generateName": "pass-"},
  "spec": {
    "entrypoint": "pass",
    "templates": [
      {"name": "pass", "dag": {"tasks": [
         {"name": "make", "template": "make"},
         {"name": "use", "template": "use", "dependencies": ["make"],
          "arguments": {"parameters": [{"name": "v", "value": "{{tasks.make.outputs.parameters.make-Output}}"}]}}]}},
      {"name": "make",
       "container": {"image": "alpine", "command": ["sh", "-c", "echo -n made > /tmp/outputs/Output/data"]},
       "outputs": {"parameters": [{"name": "make-Output", "valueFrom": {"path": "/tmp/outputs/Output/data"}}]}},
      {"name": "use", "inputs": {"parameters": [{"name": "v"}]},
       "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.v}}"]}}
    ]
  }
}"#;

/// The node job's run launched and finished with `data`.
fn finish_with(h: &mut Harness, job: &JobId, data: Option<&str>) {
    h.offer(&format!("o-{job}"), "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let task = h.runs(job)[0].task_id.to_string();
    let mut finished = update(&task, TaskState::TaskFinished, 40);
    finished.data = data.map(|d| bytes::Bytes::from(d.to_string()));
    h.updates(vec![update(&task, TaskState::TaskRunning, 30), finished]);
}

#[test]
fn output_files_sent_with_the_finished_status_pass_parameters_on() {
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api(new_run("run-4", PASS, &[])));
    let make = job_of(&created, "make");
    let labels = h
        .store
        .job(&make)
        .unwrap()
        .unwrap()
        .spec
        .default_spec
        .labels;
    assert!(labels
        .iter()
        .any(|l| l.key == "kfp.output_paths" && l.value == r#"["./tmp/outputs/Output/data"]"#));
    // "made" in base64.
    finish_with(
        &mut h,
        &make,
        Some(r#"{"./tmp/outputs/Output/data": "bWFkZQ=="}"#),
    );
    let moved = get(&mut h, "run-4");
    assert_eq!(node(&moved, "make").outputs["make-Output"], "made");
    let script = h
        .store
        .job(&job_of(&moved, "use"))
        .unwrap()
        .unwrap()
        .spec
        .default_spec
        .containers[0]
        .command
        .clone()
        .unwrap()
        .value
        .unwrap();
    assert!(script.contains("exec 'echo' 'made'"), "{script}");
}

#[test]
fn a_success_whose_outputs_never_arrived_runs_the_node_again() {
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api(new_run("run-5", PASS, &[])));
    let make = job_of(&created, "make");
    finish_with(&mut h, &make, None);
    let moved = get(&mut h, "run-5");
    let again = job_of(&moved, "make");
    assert_ne!(again, make, "a new job for the node");
    assert_eq!(node(&moved, "make").phase, NodePhase::Running);
    finish_with(
        &mut h,
        &again,
        Some(r#"{"./tmp/outputs/Output/data": "bWFkZQ=="}"#),
    );
    assert_eq!(
        node(&get(&mut h, "run-5"), "make").phase,
        NodePhase::Succeeded
    );
}

/// FORK whose `left` fails first: its template retries once, after a
/// one-second backoff.
fn retrying_fork() -> String {
    FORK.replace(
        r#"{"name": "fork", "inputs""#,
        r#"{"name": "flaky", "inputs": {"parameters": [{"name": "w"}]},
       "retryStrategy": {"limit": 1, "backoff": {"duration": "1s"}},
       "container": {"image": "alpine", "command": ["cat", "/tmp/{{inputs.parameters.w}}"]}},
      {"name": "fork", "inputs""#,
    )
    .replace(
        r#"{"name": "left", "template": "echo""#,
        r#"{"name": "left", "template": "flaky""#,
    )
}

#[test]
fn retry_backs_off_then_a_retried_run_reruns_only_what_failed_and_survives_a_restart() {
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api(new_run("run-6", &retrying_fork(), &[])));
    let first = job_of(&created, "first");
    end(&mut h, &first, TaskState::TaskFinished);
    let moved = get(&mut h, "run-6");
    let (left, right) = (job_of(&moved, "left"), job_of(&moved, "right"));
    end(&mut h, &right, TaskState::TaskFinished);
    end(&mut h, &left, TaskState::TaskFailed);

    // The retry waits for its backoff.
    let waiting = get(&mut h, "run-6");
    assert_eq!(node(&waiting, "left").phase, NodePhase::Pending);
    assert_eq!(node(&waiting, "left").job, None);
    assert!(matches!(
        h.api(ApiRequest::RetryPipelineRun {
            run_id: "run-6".into()
        }),
        Err(EngineError::PipelineRunNotRetryable(_))
    ));
    h.advance(Duration::from_millis(1_000));
    let second = job_of(&get(&mut h, "run-6"), "left");
    assert_ne!(second, left);
    end(&mut h, &second, TaskState::TaskFailed);
    let failed = get(&mut h, "run-6");
    assert_eq!(failed.run.phase, NodePhase::Failed);
    assert_eq!(node(&failed, "left").attempts, 2);

    // RetryRunV1: only `left` runs again, as a new job; stored before
    // the reply, so a restarted scheduler carries it on.
    let retried = record(h.api(ApiRequest::RetryPipelineRun {
        run_id: "run-6".into(),
    }));
    assert_eq!(retried.run.phase, NodePhase::Running);
    let third = job_of(&retried, "left");
    assert!(h.store.job(&third).unwrap().is_some());
    assert_eq!(node(&retried, "first"), node(&failed, "first"));
    assert_eq!(node(&retried, "right"), node(&failed, "right"));
    let mut h = h.restarted();
    assert_eq!(get(&mut h, "run-6"), retried);
    end(&mut h, &third, TaskState::TaskFinished);
    let done = get(&mut h, "run-6");
    assert_eq!(done.run.phase, NodePhase::Succeeded);
    for (job, runs) in [
        (&first, 1),
        (&right, 1),
        (&left, 1),
        (&second, 1),
        (&third, 1),
    ] {
        assert_eq!(h.runs(job).len(), runs, "{job}");
    }
    assert!(matches!(
        h.api(ApiRequest::RetryPipelineRun {
            run_id: "run-6".into()
        }),
        Err(EngineError::PipelineRunNotRetryable(_))
    ));
}

#[test]
fn archive_unarchive_and_delete_are_stored() {
    let mut h = Harness::new();
    h.subscribe();
    fork_with_first_running(&mut h, "run-7");

    let archive = |archived| ApiRequest::SetPipelineRunArchived {
        run_id: "run-7".into(),
        archived,
    };
    let archived = record(h.api(archive(true)));
    assert_eq!(archived.storage_state, "STORAGESTATE_ARCHIVED");
    let mut h = h.restarted();
    assert_eq!(get(&mut h, "run-7").storage_state, "STORAGESTATE_ARCHIVED");
    assert_eq!(
        record(h.api(archive(false))).storage_state,
        "STORAGESTATE_AVAILABLE"
    );

    h.take_calls();
    assert_eq!(
        h.api(ApiRequest::DeletePipelineRun {
            run_id: "run-7".into()
        })
        .unwrap(),
        Reply::Deleted
    );
    h.advance(Duration::from_millis(20));
    assert!(
        h.take_calls()
            .iter()
            .any(|c| matches!(c, Call::Kill { .. })),
        "the running node is killed"
    );
    assert!(h.store.pipeline_runs().unwrap().is_empty());
    for gone in [
        ApiRequest::GetPipelineRun {
            run_id: "run-7".into(),
        },
        ApiRequest::DeletePipelineRun {
            run_id: "run-7".into(),
        },
        archive(true),
    ] {
        assert!(matches!(
            h.api(gone),
            Err(EngineError::PipelineRunNotFound(_))
        ));
    }
    let mut h = h.restarted();
    assert!(matches!(
        h.api(ApiRequest::GetPipelineRun {
            run_id: "run-7".into()
        }),
        Err(EngineError::PipelineRunNotFound(_))
    ));
}

fn experiments(reply: Result<Reply, EngineError>) -> Vec<String> {
    match reply.unwrap() {
        Reply::Experiments(all) => all.into_iter().map(|e| e.name).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn experiments_are_stored_with_default_and_names_are_unique() {
    use drover_scheduler::model::pipeline_run::experiment::{
        ExperimentRefused, DEFAULT_EXPERIMENT_ID,
    };
    use drover_scheduler::model::pipeline_run::Experiment;
    let mut h = Harness::new();
    h.subscribe();
    assert_eq!(experiments(h.api(ApiRequest::ListExperiments)), ["Default"]);
    let new = |name: &str| {
        ApiRequest::CreateExperiment(Box::new(Experiment {
            id: format!("id-{name}"),
            name: name.into(),
            description: "d".into(),
            created_at_ms: i64::MAX / 2,
        }))
    };
    assert_eq!(experiments(h.api(new("mine"))), ["mine"]);
    assert!(matches!(
        h.api(new("mine")),
        Err(EngineError::ExperimentRefused(
            ExperimentRefused::NameTaken(_)
        ))
    ));
    assert!(matches!(
        h.api(new(" ")),
        Err(EngineError::ExperimentRefused(ExperimentRefused::NoName))
    ));
    let mut h = h.restarted();
    match h.api(ApiRequest::ListExperiments).unwrap() {
        Reply::Experiments(all) => {
            assert_eq!(all[0].id, DEFAULT_EXPERIMENT_ID);
            assert_eq!(all[1].id, "id-mine");
            assert_eq!(all.len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_runs_node_jobs_are_its_creators_across_a_restart() {
    use drover_scheduler::model::access::{Identity, Role};
    let alice = Identity {
        name: "alice".into(),
        role: Role::User,
        teams: Vec::new(),
        anonymous: false,
    };
    let mut h = Harness::new();
    h.subscribe();
    let created = record(h.api_as(&alice, new_run("run-8", FORK, &[])));
    assert_eq!(created.owner, "alice");
    let first = job_of(&created, "first");
    let job = h.store.job(&first).unwrap().unwrap();
    assert_eq!(job.spec.owner, "alice", "the node job is the creator's");
    // After a restart, from the store: the next node's job too.
    h.restart();
    h.subscribe();
    end(&mut h, &first, TaskState::TaskFinished);
    let moved = get(&mut h, "run-8");
    assert_eq!(moved.owner, "alice");
    let left = h.store.job(&job_of(&moved, "left")).unwrap().unwrap();
    assert_eq!(left.spec.owner, "alice");
}
