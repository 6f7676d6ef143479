//! The checker's counts, decided from observations: what every master
//! showed (its live tasks and its completed ones) and what the store held,
//! read in that order. Pure: the observer reads, this decides.
//!
//! - `duplicated`: instances seen with two live tasks (STAGING, STARTING,
//!   RUNNING, KILLING) at once, across every master's view of one round.
//! - `re_run`: batch instances with a run launched after an earlier run of
//!   theirs had finished (TASK_FINISHED at a master, or SUCCEEDED in the
//!   store: the earliest time either saw it).
//! - `acked_not_stored`: tasks a master lists as completed with a terminal
//!   state their agent reported (FINISHED, FAILED, KILLED: such an update
//!   leaves the master's books only when the framework acknowledged it)
//!   whose run the store, read after the master, does not hold as ended.
//!   The scheduler acknowledges an update only after storing it, so one is
//!   a broken promise. Master-generated updates (LOST, UNREACHABLE, GONE,
//!   DROPPED) carry no uuid, are never acknowledged and are not counted.
//! - `lost` ([`Audit::lost`], at the end): instances of the workload that
//!   neither finished (batch) nor run (service).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A task as a master shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterTask {
    pub task_id: String,
    /// `TASK_*`.
    pub state: String,
    /// Its first status' time (the launch at the master), unix ms.
    pub first_status_ms: Option<i64>,
    /// When it reached TASK_FINISHED, unix ms.
    pub finished_ms: Option<i64>,
}

/// One master's view in one round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterView {
    /// Its address, for the report.
    pub master: String,
    /// `frameworks[].tasks` and `unreachable_tasks`.
    pub tasks: Vec<MasterTask>,
    /// `frameworks[].completed_tasks`.
    pub completed: Vec<MasterTask>,
}

/// A run as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRun {
    pub job: String,
    pub instance: u32,
    pub run: u32,
    /// `POD_STATE_*`.
    pub state: String,
    pub launched_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

/// An instance: its job id and its index.
pub type Instance = (String, u32);

/// A Drover task id, `<job-id>-<instance>-<run>` (job ids may hold dashes).
pub fn parse_task_id(task_id: &str) -> Option<(Instance, u32)> {
    let (pod, run) = task_id.rsplit_once('-')?;
    let (job, instance) = pod.rsplit_once('-')?;
    Some(((job.to_owned(), instance.parse().ok()?), run.parse().ok()?))
}

const LIVE: [&str; 4] = [
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
];

/// Terminal states an agent reports with a uuid (acknowledged to leave
/// the master's books).
const AGENT_TERMINAL: [&str; 3] = ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"];

const STORE_ENDED: [&str; 4] = [
    "POD_STATE_SUCCEEDED",
    "POD_STATE_FAILED",
    "POD_STATE_KILLED",
    "POD_STATE_LOST",
];

/// What the auditor has found so far.
#[derive(Debug, Default)]
pub struct Audit {
    batch_jobs: HashSet<String>,
    /// Instance → the live task ids seen together the first time.
    pub duplicated: BTreeMap<Instance, Vec<String>>,
    /// Instance → (the finished run, the run launched after it).
    pub re_run: BTreeMap<Instance, (u32, u32)>,
    /// Task id → what the store held for it then.
    pub acked_not_stored: BTreeMap<String, String>,
    /// Instance → (run, earliest finish, unix ms).
    finished: HashMap<Instance, (u32, i64)>,
    /// Instance → run → earliest launch seen, unix ms.
    launched: HashMap<Instance, BTreeMap<u32, i64>>,
    /// Rounds that read the masters and the store.
    pub rounds: u64,
    /// Distinct acknowledged terminal updates checked against the store.
    acked_checked: HashSet<String>,
}

impl Audit {
    /// An audit of a workload whose batch jobs are `batch_jobs`.
    pub fn new(batch_jobs: impl IntoIterator<Item = String>) -> Audit {
        Audit {
            batch_jobs: batch_jobs.into_iter().collect(),
            ..Audit::default()
        }
    }

    /// One round: every master's view, then the store's runs (None when the
    /// store could not be read, as while PostgreSQL restarts).
    pub fn on_round(&mut self, masters: &[MasterView], store: Option<&[StoreRun]>) {
        self.rounds += 1;
        self.check_duplicates(masters);
        for view in masters {
            for task in view.tasks.iter().chain(&view.completed) {
                let Some((instance, run)) = parse_task_id(&task.task_id) else {
                    continue;
                };
                if let Some(at) = task.first_status_ms {
                    self.on_launch(&instance, run, at);
                }
                if let Some(at) = task.finished_ms {
                    self.on_finish(&instance, run, at);
                }
            }
        }
        if let Some(runs) = store {
            for run in runs {
                let instance = (run.job.clone(), run.instance);
                self.on_launch(&instance, run.run, run.launched_at_ms);
                if let (Some(at), "POD_STATE_SUCCEEDED") = (run.completed_at_ms, run.state.as_str())
                {
                    self.on_finish(&instance, run.run, at);
                }
            }
            self.check_acknowledged(masters, runs);
        }
        self.check_re_runs();
    }

    fn check_duplicates(&mut self, masters: &[MasterView]) {
        let mut live: BTreeMap<Instance, BTreeSet<String>> = BTreeMap::new();
        for task in masters.iter().flat_map(|m| &m.tasks) {
            if !LIVE.contains(&task.state.as_str()) {
                continue;
            }
            if let Some((instance, _)) = parse_task_id(&task.task_id) {
                live.entry(instance)
                    .or_default()
                    .insert(task.task_id.clone());
            }
        }
        for (instance, tasks) in live {
            if tasks.len() > 1 {
                self.duplicated
                    .entry(instance)
                    .or_insert_with(|| tasks.into_iter().collect());
            }
        }
    }

    fn check_acknowledged(&mut self, masters: &[MasterView], runs: &[StoreRun]) {
        let stored: HashMap<(&str, u32, u32), &StoreRun> = runs
            .iter()
            .map(|r| ((r.job.as_str(), r.instance, r.run), r))
            .collect();
        for task in masters.iter().flat_map(|m| &m.completed) {
            if !AGENT_TERMINAL.contains(&task.state.as_str()) {
                continue;
            }
            let Some(((job, instance), run)) = parse_task_id(&task.task_id) else {
                continue;
            };
            self.acked_checked.insert(task.task_id.clone());
            let held = match stored.get(&(job.as_str(), instance, run)) {
                None => Some("no such run".to_owned()),
                Some(r)
                    if r.completed_at_ms.is_none() || !STORE_ENDED.contains(&r.state.as_str()) =>
                {
                    Some(format!("{} (not ended)", r.state))
                }
                Some(_) => None,
            };
            if let Some(held) = held {
                self.acked_not_stored
                    .entry(task.task_id.clone())
                    .or_insert(format!("master {}, store {held}", task.state));
            }
        }
    }

    /// What the zeros stand on: acknowledged terminal updates checked
    /// against the store, runs seen launched, instances seen finished.
    pub fn coverage(&self) -> (usize, usize, usize) {
        (
            self.acked_checked.len(),
            self.launched.values().map(BTreeMap::len).sum(),
            self.finished.len(),
        )
    }

    fn on_launch(&mut self, instance: &Instance, run: u32, at: i64) {
        let runs = self.launched.entry(instance.clone()).or_default();
        let seen = runs.entry(run).or_insert(at);
        *seen = (*seen).min(at);
    }

    fn on_finish(&mut self, instance: &Instance, run: u32, at: i64) {
        let entry = self.finished.entry(instance.clone()).or_insert((run, at));
        if at < entry.1 {
            *entry = (run, at);
        }
    }

    fn check_re_runs(&mut self) {
        for (instance, (finished_run, finished_at)) in &self.finished {
            if !self.batch_jobs.contains(&instance.0) || self.re_run.contains_key(instance) {
                continue;
            }
            let Some(runs) = self.launched.get(instance) else {
                continue;
            };
            if let Some((run, _)) = runs
                .iter()
                .find(|(run, at)| *run != finished_run && **at > *finished_at)
            {
                self.re_run.insert(instance.clone(), (*finished_run, *run));
            }
        }
    }

    /// The instances of the workload (`expected`: instance → batch?) that
    /// did not end as they should: a batch instance without a SUCCEEDED
    /// run, a service instance without a run RUNNING in the store and at
    /// the leading master. Each with what was found instead.
    pub fn lost(
        expected: &[(Instance, bool)],
        runs: &[StoreRun],
        leading_master: &MasterView,
    ) -> BTreeMap<Instance, String> {
        let mut by_instance: HashMap<Instance, Vec<&StoreRun>> = HashMap::new();
        for run in runs {
            by_instance
                .entry((run.job.clone(), run.instance))
                .or_default()
                .push(run);
        }
        let running_at_master: HashSet<String> = leading_master
            .tasks
            .iter()
            .filter(|t| t.state == "TASK_RUNNING")
            .map(|t| t.task_id.clone())
            .collect();
        let mut lost = BTreeMap::new();
        for (instance, batch) in expected {
            let runs = by_instance.get(instance).map(Vec::as_slice).unwrap_or(&[]);
            let ok = if *batch {
                runs.iter().any(|r| r.state == "POD_STATE_SUCCEEDED")
            } else {
                runs.iter().any(|r| {
                    r.state == "POD_STATE_RUNNING"
                        && running_at_master
                            .contains(&format!("{}-{}-{}", r.job, r.instance, r.run))
                })
            };
            if !ok {
                let seen: Vec<String> = runs
                    .iter()
                    .map(|r| format!("run {} {}", r.run, r.state))
                    .collect();
                let seen = if seen.is_empty() {
                    "no run".to_owned()
                } else {
                    seen.join(", ")
                };
                lost.insert(instance.clone(), seen);
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: &str, first: i64, finished: Option<i64>) -> MasterTask {
        MasterTask {
            task_id: id.to_owned(),
            state: state.to_owned(),
            first_status_ms: Some(first),
            finished_ms: finished,
        }
    }

    fn run(
        job: &str,
        instance: u32,
        run: u32,
        state: &str,
        launched: i64,
        done: Option<i64>,
    ) -> StoreRun {
        StoreRun {
            job: job.to_owned(),
            instance,
            run,
            state: state.to_owned(),
            launched_at_ms: launched,
            completed_at_ms: done,
        }
    }

    fn view(tasks: Vec<MasterTask>, completed: Vec<MasterTask>) -> MasterView {
        MasterView {
            master: "m".into(),
            tasks,
            completed,
        }
    }

    #[test]
    fn task_ids_parse_even_when_the_job_id_has_dashes() {
        assert_eq!(
            parse_task_id("chaos-batch-3-17-2"),
            Some((("chaos-batch-3".to_owned(), 17), 2))
        );
        assert_eq!(parse_task_id("nodash"), None);
        assert_eq!(parse_task_id("a-b-c"), None);
    }

    #[test]
    fn two_live_tasks_of_one_instance_across_two_masters_are_a_duplicate() {
        let mut audit = Audit::new([]);
        let a = view(vec![task("svc-1-0", "TASK_RUNNING", 1, None)], vec![]);
        let b = view(vec![task("svc-1-1", "TASK_STAGING", 2, None)], vec![]);
        audit.on_round(std::slice::from_ref(&a), None);
        assert!(audit.duplicated.is_empty());
        audit.on_round(&[a, b], None);
        assert_eq!(
            audit.duplicated.get(&("svc".to_owned(), 1)),
            Some(&vec!["svc-1-0".to_owned(), "svc-1-1".to_owned()])
        );
    }

    #[test]
    fn a_run_launched_after_its_instance_finished_is_a_re_run_but_a_replacement_launched_before_is_not(
    ) {
        let mut audit = Audit::new(["b".to_owned()]);
        // Run 1 replaced run 0 before run 0 finished: not a re-run.
        audit.on_round(
            &[view(
                vec![task("b-0-1", "TASK_RUNNING", 50, None)],
                vec![task("b-0-0", "TASK_FINISHED", 10, Some(100))],
            )],
            None,
        );
        assert!(audit.re_run.is_empty());
        // Instance 1 finished at 100 (the store says so) and run 1 was
        // launched at 150.
        audit.on_round(
            &[],
            Some(&[
                run("b", 1, 0, "POD_STATE_SUCCEEDED", 10, Some(100)),
                run("b", 1, 1, "POD_STATE_LAUNCHED", 150, None),
            ]),
        );
        assert_eq!(audit.re_run.get(&("b".to_owned(), 1)), Some(&(0, 1)));
        // A service instance may run again: not a re-run.
        audit.on_round(
            &[],
            Some(&[
                run("s", 0, 0, "POD_STATE_SUCCEEDED", 10, Some(100)),
                run("s", 0, 1, "POD_STATE_RUNNING", 150, None),
            ]),
        );
        assert!(!audit.re_run.contains_key(&("s".to_owned(), 0)));
    }

    #[test]
    fn an_acknowledged_update_the_store_does_not_hold_is_counted_and_a_master_generated_one_is_not()
    {
        let mut audit = Audit::new([]);
        let master = view(
            vec![],
            vec![
                task("j-0-0", "TASK_FINISHED", 1, Some(5)),
                task("j-1-0", "TASK_FINISHED", 1, Some(5)),
                task("j-2-0", "TASK_LOST", 1, None),
                task("j-3-0", "TASK_KILLED", 1, None),
            ],
        );
        let store = [
            run("j", 0, 0, "POD_STATE_SUCCEEDED", 1, Some(6)),
            run("j", 1, 0, "POD_STATE_RUNNING", 1, None),
            run("j", 2, 0, "POD_STATE_RUNNING", 1, None),
        ];
        audit.on_round(&[master], Some(&store));
        let counted: Vec<&String> = audit.acked_not_stored.keys().collect();
        assert_eq!(counted, ["j-1-0", "j-3-0"]);
    }

    #[test]
    fn lost_instances_are_the_unfinished_batch_and_the_not_running_service_ones() {
        let expected = vec![
            (("b".to_owned(), 0), true),
            (("b".to_owned(), 1), true),
            (("s".to_owned(), 0), false),
            (("s".to_owned(), 1), false),
            (("s".to_owned(), 2), false),
        ];
        let runs = [
            run("b", 0, 0, "POD_STATE_SUCCEEDED", 1, Some(2)),
            run("b", 1, 0, "POD_STATE_RUNNING", 1, None),
            run("s", 0, 0, "POD_STATE_RUNNING", 1, None),
            run("s", 1, 3, "POD_STATE_RUNNING", 1, None),
        ];
        let leader = view(
            vec![
                task("s-0-0", "TASK_RUNNING", 1, None),
                task("s-1-2", "TASK_RUNNING", 1, None),
            ],
            vec![],
        );
        let lost = Audit::lost(&expected, &runs, &leader);
        let names: Vec<String> = lost.keys().map(|(j, i)| format!("{j}-{i}")).collect();
        assert_eq!(names, ["b-1", "s-1", "s-2"]);
        assert_eq!(lost[&("s".to_owned(), 2)], "no run");
    }
}
