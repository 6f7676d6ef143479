//! The scenarios against live processes, each on a fresh agent-sim:
//! Drover's launch (with memory and recovery after the large one), the
//! no-policy limit, the pymesos peer, and status updates. Each adds its
//! figures to the report; a failure is reported and the run goes on.

use crate::drover::Counters;
use crate::fleet::Launcher;
use crate::http::Http;
use crate::limit;
use crate::peer;
use crate::report::Report;
use crate::stats::{unix_now, Launch};
use crate::stores::PgSample;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the scheduler holds its running tasks before the steady-state
/// memory reading: it trims the heap every 500 ms once a burst is over.
const MEMORY_SETTLE: Duration = Duration::from_secs(3);

/// The cpus each launched task asks for ([`crate::drover::Drover::create`]).
const LAUNCH_TASK_CPUS: f64 = 0.1;

/// One point of the throughput-versus-fleet-size figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `drover`, `limit` or `pymesos`.
    pub series: &'static str,
    /// Agents.
    pub agents: usize,
    /// Tasks launched.
    pub tasks: usize,
    /// Tasks per second.
    pub per_sec: f64,
}

/// One run of a launch scenario, kept until [`Bench::report_launches`]
/// picks each scenario's median.
#[derive(Debug, Clone)]
pub struct LaunchRun {
    /// `drover`, `limit` or `pymesos`.
    pub series: &'static str,
    /// The scenario's name in the report.
    pub scenario: String,
    /// Agents.
    pub agents: usize,
    /// What it measured.
    pub launch: Launch,
    /// Seconds until the framework saw all RUNNING (0 if unknown).
    pub observed: f64,
    /// Seconds until the job API reported every instance RUNNING, as a
    /// user polling `GET /api/v1/jobs/{id}` sees it (0 if not measured).
    pub user_observed: f64,
    /// The framework's peak resident memory by the end of the launch, KiB
    /// (0 if not measured).
    pub peak_rss_kib: u64,
}

/// What the scenarios share.
pub struct Bench {
    /// Starts processes.
    pub launcher: Launcher,
    /// The client.
    pub http: Http,
    /// Figures so far.
    pub report: Report,
    /// Throughput points so far.
    pub points: Vec<Point>,
    /// Instances per job.
    pub per_job: usize,
    /// Launch runs so far.
    pub runs: Vec<LaunchRun>,
    /// Whether scenario names say which store they ran on (`, sqlite
    /// store`), so that both stores' runs can share one report.
    pub label_store: bool,
    /// What PostgreSQL and the store thread did during the latest launch
    /// on PostgreSQL: its scenario and figures.
    pub pg_limits: Option<(String, Vec<crate::stores::Figure>)>,
}

impl Bench {
    /// `, postgres store` when scenario names say their store.
    pub fn store_suffix(&self) -> String {
        if self.label_store {
            format!(", {} store", self.launcher.store.name())
        } else {
            String::new()
        }
    }

    fn add_launch(&mut self, wanted: usize, run: LaunchRun) {
        if run.launch.tasks < wanted {
            self.report.problems.push(format!(
                "{}: only {} of {wanted} tasks RUNNING before the timeout",
                run.scenario, run.launch.tasks
            ));
        }
        self.runs.push(run);
    }

    /// Adds each launch scenario's median run (by tasks/s) to the report
    /// and the figure, with the lowest and highest tasks/s of its runs.
    pub fn report_launches(&mut self) {
        for (scenario, runs) in by_scenario(&self.runs) {
            let count = runs.len();
            let Some((median, lowest, highest)) = median_run(runs) else {
                continue;
            };
            let (l, r) = (&median.launch, &mut self.report);
            if median.observed > 0.0 {
                r.add(scenario, "framework saw all RUNNING", median.observed, "s");
            }
            if median.user_observed > 0.0 {
                r.add(
                    scenario,
                    "job API saw all RUNNING",
                    median.user_observed,
                    "s",
                );
                let per_sec = l.tasks as f64 / median.user_observed;
                r.add(scenario, "job API tasks/s", per_sec, "tasks/s");
            }
            if median.peak_rss_kib > 0 && l.tasks > 0 {
                let per_task = median.peak_rss_kib as f64 * 1024.0 / l.tasks as f64;
                r.add(scenario, "peak RSS per task", per_task, "bytes");
            }
            r.add(scenario, "tasks/s", l.per_sec, "tasks/s");
            r.add(scenario, "p50 create->RUNNING", l.p50 * 1e3, "ms");
            r.add(scenario, "p99 create->RUNNING", l.p99 * 1e3, "ms");
            r.add(scenario, "makespan", l.makespan, "s");
            r.add(scenario, "runs", count as f64, "runs");
            if count > 1 {
                r.add(scenario, "tasks/s, lowest run", lowest, "tasks/s");
                r.add(scenario, "tasks/s, highest run", highest, "tasks/s");
            }
            if l.tasks > 0 {
                self.points.push(Point {
                    series: median.series,
                    agents: median.agents,
                    tasks: l.tasks,
                    per_sec: l.per_sec,
                });
            }
        }
    }

    /// Drover launches `tasks` long-running instances on `agents`; with
    /// `deep`, then measures memory and recovery on the same store.
    pub async fn drover_launch(
        &mut self,
        agents: usize,
        tasks: usize,
        deep: bool,
    ) -> anyhow::Result<()> {
        self.drover_launch_in(agents, tasks, deep, 0).await
    }

    /// As [`Bench::drover_launch`], with `pools` resource pools created
    /// first (each reserving an equal part of what the tasks ask, limited
    /// to twice that) and the jobs spread over them: what admission by
    /// pools costs a launch. None of them is held back by its limit.
    pub async fn drover_launch_in(
        &mut self,
        agents: usize,
        tasks: usize,
        deep: bool,
        pools: usize,
    ) -> anyhow::Result<()> {
        let mut scenario = format!("drover {}k tasks/{} agents", tasks / 1000, agents);
        if pools > 0 {
            scenario.push_str(&format!(", {pools} pools"));
        }
        scenario.push_str(&self.store_suffix());
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let data = fleet.path("drover-data");
        let drover = self.launcher.drover(&fleet, &data, "scheduler.log")?;
        drover.wait_subscribed(&self.http, timeout).await?;
        let pg = match &self.launcher.store {
            crate::stores::Store::Postgres(pg) => Some(pg.clone()),
            crate::stores::Store::Sqlite => None,
        };
        let pid = drover.proc.pid();
        let before = pg.as_ref().and_then(|pg| PgSample::take(pg, pid));
        let pool_ids: Vec<String> = (0..pools).map(|i| format!("bench-{i}")).collect();
        let share = tasks as f64 * LAUNCH_TASK_CPUS / pools.max(1) as f64;
        for id in &pool_ids {
            drover
                .create_pool(&self.http, id, share, 2.0 * share)
                .await?;
        }
        let created = unix_now();
        let started = Instant::now();
        let jobs = drover
            .create_in(&self.http, tasks, self.per_job, "sleep 100000", &pool_ids)
            .await?;
        // The framework's own view (its counters) and a user's (the job
        // API), watched side by side.
        let framework = async {
            let waited = drover
                .wait_for(
                    &self.http,
                    timeout,
                    "all RUNNING",
                    |_, _| {},
                    |c| c.running >= tasks as f64,
                )
                .await;
            (waited, unix_now() - created)
        };
        let user = drover.wait_jobs_running(&self.http, timeout, &jobs);
        let ((waited, mut observed), user) = tokio::join!(framework, user);
        let user = match user {
            Ok(at) => Some((
                at.duration_since(started).as_secs_f64(),
                drover.proc.peak_rss_kib().unwrap_or(0),
            )),
            Err(e) => {
                self.report.problems.push(format!("{scenario}: {e}"));
                None
            }
        };
        if let Err(e) = &waited {
            self.report.problems.push(format!("{scenario}: {e}"));
        }
        // The counter also counts re-sent updates: confirm with the master
        // that every task is RUNNING (a heavier read, so only now and every
        // second until then).
        let deadline = Instant::now() + timeout;
        let mut times = fleet.running_times(&self.http).await?;
        while times.len() < tasks && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            times = fleet.running_times(&self.http).await?;
            observed = unix_now() - created;
        }
        let launch = Launch::from_times(created, &times);
        let after = pg.as_ref().and_then(|pg| PgSample::take(pg, pid));
        if let (Some(before), Some(after)) = (before, after) {
            self.pg_limits = Some((scenario.clone(), before.since(&after, launch.makespan)));
        }
        self.add_launch(
            tasks,
            LaunchRun {
                series: "drover",
                scenario: scenario.clone(),
                agents,
                launch,
                observed,
                user_observed: user.map_or(0.0, |(s, _)| s),
                peak_rss_kib: user.map_or(0, |(_, kib)| kib),
            },
        );
        if !deep {
            return Ok(());
        }
        // Memory twice: the instant the launch ends (the burst's high-water
        // mark, before the allocator hands freed pages back), and once the
        // scheduler has held the running tasks for a few seconds, which is
        // what a fleet of that size costs to keep.
        let memory = format!("memory{}", self.store_suffix());
        let memory = memory.as_str();
        let at_launch_end = drover.proc.rss_kib()?;
        self.report.add(
            memory,
            "scheduler RSS at launch end",
            at_launch_end as f64 / 1024.0,
            "MiB",
        );
        tokio::time::sleep(MEMORY_SETTLE).await;
        let rss = drover.proc.rss_kib()?;
        self.report
            .add(memory, "scheduler RSS", rss as f64 / 1024.0, "MiB");
        let store = drover.metrics(&self.http).await?.store_memory;
        if store > 0.0 {
            let mib = store / (1024.0 * 1024.0);
            self.report.add(memory, "of which SQLite", mib, "MiB");
        }
        self.report.add(
            memory,
            "RSS per task",
            rss as f64 * 1024.0 / launch.tasks.max(1) as f64,
            "bytes",
        );
        let live = launch.tasks;
        drover.proc.crash();
        self.recovery(&fleet, data, live).await
    }

    /// Restarts the scheduler on `data` with `live` tasks in its store; times
    /// its API, subscription, reconciliation and first launch.
    async fn recovery(
        &mut self,
        fleet: &crate::fleet::Fleet,
        data: PathBuf,
        live: usize,
    ) -> anyhow::Result<()> {
        let timeout = self.launcher.timeout;
        let name = format!("recovery{}", self.store_suffix());
        let name = name.as_str();
        let start = Instant::now();
        let drover = self
            .launcher
            .drover(fleet, &data, "scheduler-restarted.log")?;
        let api = start.elapsed();
        self.report
            .add(name, "start->API up", api.as_secs_f64(), "s");
        // A new job right away: "launching again" is its first ACCEPT.
        drover.create(&self.http, 1, 1, "sleep 100000").await?;
        drover.wait_subscribed(&self.http, timeout).await?;
        self.report.add(
            name,
            "start->subscribed",
            start.elapsed().as_secs_f64(),
            "s",
        );
        let (mut reconciled, mut launching) = (None, None);
        let waited = drover
            .wait_for(
                &self.http,
                timeout,
                "reconciliation and a launch",
                |at, c: &Counters| {
                    if reconciled.is_none() && c.running >= live as f64 {
                        reconciled = Some(at - start);
                    }
                    if launching.is_none() && c.launches >= 1.0 {
                        launching = Some(at - start);
                    }
                },
                |c| c.running >= live as f64 && c.launches >= 1.0,
            )
            .await;
        if let Err(e) = waited {
            self.report.problems.push(format!("{name}: {e}"));
        }
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        if let Some(r) = secs(reconciled) {
            self.report.add(name, "start->reconciled", r, "s");
        }
        if let Some(l) = secs(launching) {
            self.report.add(name, "start->launching", l, "s");
        }
        if let (Some(r), Some(l)) = (secs(reconciled), secs(launching)) {
            self.report.add(name, "total", r.max(l), "s");
        }
        self.report
            .add(name, "tasks in store", live as f64, "tasks");
        Ok(())
    }

    /// The no-policy client launches `tasks` on `agents`.
    pub async fn limit(&mut self, agents: usize, tasks: usize) -> anyhow::Result<()> {
        let fleet = self.launcher.fleet(agents)?;
        let (created, observed, times) =
            limit::run(&self.http, &fleet, tasks, self.launcher.timeout).await?;
        let launch = Launch::from_times(created, &times);
        let scenario = format!("limit {}k tasks/{} agents", tasks / 1000, agents);
        self.add_launch(
            tasks,
            LaunchRun {
                series: "limit",
                scenario,
                agents,
                launch,
                observed: observed - created,
                user_observed: 0.0,
                peak_rss_kib: 0,
            },
        );
        Ok(())
    }

    /// The pymesos first-fit scheduler launches `tasks` on `agents`.
    pub async fn peer(
        &mut self,
        root: &std::path::Path,
        python: &std::path::Path,
        agents: usize,
        tasks: usize,
    ) -> anyhow::Result<()> {
        let fleet = self.launcher.fleet(agents)?;
        let script = root.join("bench/pymesos/first_fit_running.py");
        let (created, observed, times) = peer::run(
            &self.http,
            &fleet,
            python,
            &script,
            tasks,
            self.launcher.timeout,
        )
        .await?;
        let launch = Launch::from_times(created, &times);
        let scenario = format!("pymesos {}k tasks/{} agents", tasks / 1000, agents);
        self.add_launch(
            tasks,
            LaunchRun {
                series: "pymesos",
                scenario,
                agents,
                launch,
                observed: observed - created,
                user_observed: 0.0,
                peak_rss_kib: 0,
            },
        );
        Ok(())
    }

    /// `tasks` short tasks (`true`: STARTING, RUNNING, FINISHED at once) on
    /// `agents`; updates stored and acknowledged per second, from the
    /// scheduler's counters sampled while they finish.
    pub async fn updates(&mut self, agents: usize, tasks: usize) -> anyhow::Result<()> {
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let drover = self
            .launcher
            .drover(&fleet, &fleet.path("drover-data"), "scheduler.log")?;
        drover.wait_subscribed(&self.http, timeout).await?;
        drover
            .create(&self.http, tasks, self.per_job, "true")
            .await?;
        let mut samples: Vec<(Instant, Counters)> = Vec::new();
        let waited = drover
            .wait_for(
                &self.http,
                timeout,
                "all FINISHED",
                |at, c| samples.push((at, *c)),
                |c| c.finished >= tasks as f64 && c.acks >= c.updates,
            )
            .await;
        if let Err(e) = waited {
            self.report.problems.push(format!("updates: {e}"));
        }
        let (acks, updates, secs) = update_rate(&samples);
        if secs > 0.0 {
            self.report
                .add("status updates", "stored+acked/s", acks / secs, "updates/s");
            self.report
                .add("status updates", "received/s", updates / secs, "updates/s");
            self.report
                .add("status updates", "updates acked", acks, "updates");
        }
        Ok(())
    }
}

/// The runs of each scenario, scenarios in the order first run.
fn by_scenario(runs: &[LaunchRun]) -> Vec<(&str, Vec<&LaunchRun>)> {
    let mut grouped: Vec<(&str, Vec<&LaunchRun>)> = Vec::new();
    for run in runs {
        match grouped.iter_mut().find(|(s, _)| *s == run.scenario) {
            Some((_, list)) => list.push(run),
            None => grouped.push((&run.scenario, vec![run])),
        }
    }
    grouped
}

/// The median tasks/s of `scenario`'s runs so far (None without runs).
pub fn median_per_sec(runs: &[LaunchRun], scenario: &str) -> Option<f64> {
    let of: Vec<&LaunchRun> = runs.iter().filter(|r| r.scenario == scenario).collect();
    median_run(of).map(|(run, _, _)| run.launch.per_sec)
}

/// The median run by tasks/s (the lower middle one of an even count),
/// and the lowest and highest tasks/s; None without runs.
fn median_run(mut runs: Vec<&LaunchRun>) -> Option<(&LaunchRun, f64, f64)> {
    runs.sort_by(|a, b| a.launch.per_sec.total_cmp(&b.launch.per_sec));
    let lowest = runs.first()?.launch.per_sec;
    let highest = runs.last()?.launch.per_sec;
    Some((runs[(runs.len() - 1) / 2], lowest, highest))
}

/// Acks and updates over the busy window (the sample before the first ack
/// to the first sample holding the last), and its length in seconds.
pub fn update_rate(samples: &[(Instant, Counters)]) -> (f64, f64, f64) {
    let Some(first) = samples.iter().position(|(_, c)| c.acks > 0.0) else {
        return (0.0, 0.0, 0.0);
    };
    let start = first.saturating_sub(1);
    let last_acks = samples.last().map_or(0.0, |(_, c)| c.acks);
    let end = samples
        .iter()
        .position(|(_, c)| c.acks >= last_acks)
        .unwrap_or(samples.len() - 1);
    let (t0, c0) = samples[start];
    let (t1, c1) = samples[end];
    (
        c1.acks - c0.acks,
        c1.updates - c0.updates,
        (t1 - t0).as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, per_sec: f64) -> LaunchRun {
        LaunchRun {
            series: "drover",
            scenario: scenario.into(),
            agents: 1,
            launch: Launch {
                tasks: 10,
                makespan: 10.0 / per_sec,
                per_sec,
                p50: 0.0,
                p99: 0.0,
            },
            observed: 0.0,
            user_observed: 0.0,
            peak_rss_kib: 0,
        }
    }

    #[test]
    fn each_scenario_reports_its_median_run() {
        let runs = vec![
            run("a", 300.0),
            run("b", 5.0),
            run("a", 100.0),
            run("a", 200.0),
            run("b", 7.0),
        ];
        let grouped = by_scenario(&runs);
        let names: Vec<_> = grouped.iter().map(|(s, r)| (*s, r.len())).collect();
        assert_eq!(names, [("a", 3), ("b", 2)], "in the order first run");
        let mut medians = grouped.into_iter().map(|(_, r)| median_run(r));
        let (median, lowest, highest) = medians.next().flatten().unwrap();
        assert_eq!(
            (median.launch.per_sec, lowest, highest),
            (200.0, 100.0, 300.0)
        );
        let (median, lowest, highest) = medians.next().flatten().unwrap();
        assert_eq!((median.launch.per_sec, lowest, highest), (5.0, 5.0, 7.0));
        assert!(median_run(Vec::new()).is_none());
    }

    #[test]
    fn the_update_window_spans_the_busy_samples() {
        let t = Instant::now();
        let c = |acks: f64| Counters {
            acks,
            updates: acks,
            ..Default::default()
        };
        let at = |ms: u64| t + Duration::from_millis(ms);
        let samples = vec![
            (at(0), c(0.0)),
            (at(100), c(0.0)),
            (at(200), c(50.0)),
            (at(300), c(100.0)),
            (at(400), c(100.0)),
        ];
        let (acks, updates, secs) = update_rate(&samples);
        assert_eq!((acks, updates), (100.0, 100.0));
        assert!((secs - 0.2).abs() < 1e-9);
        assert_eq!(update_rate(&[]), (0.0, 0.0, 0.0));
    }
}
