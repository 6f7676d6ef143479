//! Kubeflow pipeline runs in the engine over a real SQLite store, pumped
//! by hand: a run created (its first node's job with it), refused with
//! nothing stored, moved on as node jobs end, carried on by an engine
//! recovered from the store (no node launched twice), terminated.

#![allow(clippy::unwrap_used)]

use drover_proto::v1::TaskState;
use drover_scheduler::engine::pipeline_runs::NewRun;
use drover_scheduler::engine::{
    ApiRequest, Call, Engine, EngineConfig, EngineError, Now, Reply, RequestId,
};
use drover_scheduler::model::access::Identity;
use drover_scheduler::model::ids::{AgentId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::pipeline::NodePhase;
use drover_scheduler::model::pipeline_run::RunRecord as PipelineRecord;
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::store::{RunRecord, SqliteStore, Store, StoreRead};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// An engine, its store, and what it sent and answered.
struct Harness {
    engine: Engine,
    store: SqliteStore,
    _dir: tempfile::TempDir,
    t0: Instant,
    clock: Duration,
    out: Sent,
    next_request: RequestId,
}

#[derive(Default)]
struct Sent {
    calls: Vec<Call>,
    replies: BTreeMap<RequestId, Result<Reply, EngineError>>,
}

impl Outbox for Sent {
    fn send(&mut self, call: Call) {
        self.calls.push(call);
    }

    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>) {
        self.replies.insert(request, result);
    }
}

const WALL0: i64 = 1_700_000_000_000;

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t0 = Instant::now();
        let now = Now {
            instant: t0,
            unix_ms: WALL0,
        };
        let engine = Engine::recover(store.load().unwrap(), EngineConfig::default(), now);
        Harness {
            engine,
            store,
            _dir: dir,
            t0,
            clock: Duration::ZERO,
            out: Sent::default(),
            next_request: 0,
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.clock,
            unix_ms: WALL0 + self.clock.as_millis() as i64,
        }
    }

    fn carry_out(&mut self, actions: Vec<drover_scheduler::engine::Action>) {
        let (t0, clock) = (self.t0, self.clock);
        let mut now = move || Now {
            instant: t0 + clock,
            unix_ms: WALL0 + clock.as_millis() as i64,
        };
        pump::carry_out(
            &mut self.engine,
            &mut self.store,
            actions,
            &mut now,
            &mut self.out,
        );
    }

    fn api(&mut self, request: ApiRequest) -> Result<Reply, EngineError> {
        self.api_as(&Identity::system(), request)
    }

    fn api_as(&mut self, caller: &Identity, request: ApiRequest) -> Result<Reply, EngineError> {
        let id = self.next_request;
        self.next_request += 1;
        let actions = self.engine.on_api(id, request, caller, self.now());
        self.carry_out(actions);
        self.out
            .replies
            .remove(&id)
            .expect("every request is answered")
    }

    /// Runs every due tick at the current time.
    fn settle(&mut self) {
        while self
            .engine
            .next_deadline()
            .is_some_and(|d| d <= self.now().instant)
        {
            let actions = self.engine.on_tick(self.now());
            self.carry_out(actions);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by;
        self.settle();
    }

    fn subscribe(&mut self) {
        let actions = self.engine.on_subscribed("fw".into(), self.now());
        self.carry_out(actions);
        self.settle();
    }

    fn offer(&mut self, id: &str, agent: &str, cpus: f64) {
        let offer = Offer {
            id: OfferId(id.into()),
            agent_id: AgentId::new(agent),
            hostname: format!("{agent}.host"),
            allocation_role: Some("*".into()),
            resources: Resources {
                cpus,
                mem_mib: 4096.0,
                disk_mib: 4096.0,
                gpus: 0.0,
            },
            ports: PortRanges::new([(31000, 31010)]),
            attributes: BTreeMap::new(),
            unavailability: None,
        };
        let actions = self.engine.on_offers(vec![offer], self.now());
        self.carry_out(actions);
    }

    /// Feeds updates in one session batch, then lets the engine store them.
    fn updates(&mut self, updates: Vec<TaskUpdate>) {
        let actions = self.engine.on_updates(updates, self.now());
        self.carry_out(actions);
        self.advance(Duration::from_millis(5));
    }

    fn runs(&self, job: &JobId) -> Vec<RunRecord> {
        self.store.runs(job).unwrap()
    }

    fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.out.calls)
    }
}

fn update(task: &str, state: TaskState, at: i64) -> TaskUpdate {
    TaskUpdate {
        task_id: task.into(),
        state,
        reason: None,
        message: Some("m".into()),
        healthy: None,
        ready: None,
        agent_id: Some(AgentId::new("a1")),
        timestamp: Some(WALL0 + at),
        unreachable_since: None,
        data: None,
        uuid: Some(bytes::Bytes::from(format!("{task}-{state:?}-{at}"))),
    }
}

impl Harness {
    /// The engine started again from what the store holds.
    fn restart(self) -> Harness {
        let now = self.now();
        let engine = Engine::recover(self.store.load().unwrap(), EngineConfig::default(), now);
        let mut h = Harness { engine, ..self };
        h.subscribe();
        h
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
    let mut h = h.restart();
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
    let created = record(h.api(new_run("run-3", FORK, &[])));
    let first = job_of(&created, "first");
    h.offer("o1", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let task = h.runs(&first)[0].task_id.to_string();
    h.updates(vec![update(&task, TaskState::TaskRunning, 30)]);
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
