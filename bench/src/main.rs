//! `drover-bench`: Drover's benchmark program (issue 7). Runs every scenario
//! in one invocation, each against a fresh agent-sim with simulated tasks:
//! Drover's launch throughput at two fleet sizes, the no-policy limit and
//! the pymesos peer on the same fleets, status updates, placement alone,
//! recovery and memory with the large store, and a rolling update of a
//! service against its fresh launch, and a Kubeflow pipeline run of a
//! fan-out/fan-in DAG against the same tasks as one batch job. Prints a table, writes
//! `target/bench/summary.json` and the throughput figure, and checks the
//! issue's targets. Everything it starts is stopped by pid; temp dirs go.

mod api_faces;
mod api_security;
mod config;
mod drover;
mod fleet;
mod http;
mod kfp_run;
mod limit;
mod peer;
mod placement;
mod plot;
mod pools;
mod procs;
mod report;
mod rolling;
mod scenarios;
mod stats;
mod stores;
mod watchers;

use anyhow::Context;
use clap::Parser;
use config::{Config, Scenario, StoreKind};
use report::Target;
use scenarios::Bench;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let sizes = config.sizes();
    let root = config.root.clone();
    // PostgreSQL only when asked for (it is installed and started for the
    // run, and stopped when it ends).
    let pg = if config.store == StoreKind::Postgres || config.runs(Scenario::Stores) {
        step("PostgreSQL server");
        let pg = tokio::task::spawn_blocking(stores::PgServer::start).await?;
        Some(std::sync::Arc::new(pg))
    } else {
        None
    };
    let store = match (&pg, config.store) {
        (Some(pg), StoreKind::Postgres) => stores::Store::Postgres(pg.clone()),
        _ => stores::Store::Sqlite,
    };
    let mut bench = Bench {
        launcher: fleet::Launcher {
            bin_dir: config.bin_dir(),
            timeout: sizes.timeout,
            store,
        },
        http: http::Http::default(),
        report: report::Report::default(),
        points: Vec::new(),
        per_job: config.max_job_instances,
        runs: Vec::new(),
        label_store: config.store == StoreKind::Postgres,
        pg_limits: None,
    };
    eprintln!("drover-bench: sizes {sizes:?}");
    let (sa, st) = sizes.small;
    let (la, lt) = sizes.large;

    if let (true, Some(pg)) = (config.runs(Scenario::Stores), &pg) {
        stores_scenario(&mut bench, pg, &sizes).await;
    }
    if config.runs(Scenario::Placement) {
        step("placement");
        let (tasks, hosts) = sizes.placement;
        // Hard constraints, then the same as preferences (soft constraints
        // rank every feasible host and may walk past the sample): one run,
        // so the two read as a ratio.
        for (soft, kind) in [(false, ""), (true, " soft")] {
            let p = tokio::task::spawn_blocking(move || placement::run(tasks, hosts, soft)).await?;
            let r = &mut bench.report;
            let name = format!("placement{kind} {tasks} tasks/{hosts} hosts");
            r.add(&name, "decisions/s", p.per_sec, "decisions/s");
            r.add(&name, "p50 per decision", p.p50 * 1e3, "ms");
            r.add(&name, "p99 per decision", p.p99 * 1e3, "ms");
            r.add(&name, "unplaced", p.unplaced as f64, "tasks");
        }
    }
    if config.runs(Scenario::Pools) {
        step("resource pools: fairness under contention, launch cost");
        let (secs, tasks) = if config.quick {
            (120, 2_000)
        } else {
            (300, 20_000)
        };
        let p = tokio::task::spawn_blocking(move || pools::run(secs, tasks)).await??;
        let r = &mut bench.report;
        let name = format!("pools 3 pools/160 cpus {secs}s");
        r.add(
            &name,
            "fairness error",
            p.fairness_error * 100.0,
            "% of cluster",
        );
        r.add(
            &name,
            "fairness error, 2nd half",
            p.fairness_error_settled * 100.0,
            "% of cluster",
        );
        r.add(&name, "preemptions", p.preemptions_per_min, "per min");
        r.add(
            &name,
            "reservation back",
            p.reservation_back_secs.unwrap_or(f64::NAN),
            "s",
        );
        r.add(
            &name,
            "limit violations",
            p.limit_violations as f64,
            "samples",
        );
        let launch = format!("pools launch {}k tasks in process", tasks / 1000);
        r.add(&launch, "no pools", p.launch_plain, "tasks/s");
        r.add(&launch, "three pools", p.launch_pooled, "tasks/s");
        r.add(
            &launch,
            "with pools / without",
            p.launch_pooled / p.launch_plain.max(1e-9),
            "ratio",
        );
        // The same comparison end to end: the scheduler and agent-sim
        // processes, the pools created through the API, runs alternated.
        let (agents, tasks) = sizes.small;
        for run in 1..=sizes.repeat.min(3) {
            step(&format!("launch without pools, run {run}"));
            let r = bench.drover_launch(agents, tasks, false).await;
            note(&mut bench, "launch without pools", r);
            step(&format!("launch in 3 pools, run {run}"));
            let r = bench.drover_launch_in(agents, tasks, false, 3).await;
            note(&mut bench, "launch in 3 pools", r);
        }
        let plain = format!("drover {}k tasks/{} agents", tasks / 1000, agents);
        let pooled = format!("{plain}, 3 pools");
        if let (Some(a), Some(b)) = (
            scenarios::median_per_sec(&bench.runs, &plain),
            scenarios::median_per_sec(&bench.runs, &pooled),
        ) {
            let name = format!("pools launch {}k tasks end to end", tasks / 1000);
            bench
                .report
                .add(&name, "with pools / without", b / a, "ratio");
        }
    }
    let python = if config.runs(Scenario::Peer) {
        Some(peer::python(&root, config.python.as_deref()))
    } else {
        None
    };
    // Each launch scenario runs `repeat` times, in turn with the others.
    for run in 1..=sizes.repeat {
        let of = format!("run {run} of {}", sizes.repeat);
        drover_then_limit(&mut bench, &config, "small", sizes.small, false, &of).await;
        if let Some(python) = &python {
            step(&format!("pymesos peer, small fleet, {of}"));
            let r = match python {
                Ok(python) => bench.peer(&root, python, sa, st).await,
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            note(&mut bench, "pymesos", r);
        }
    }
    if config.runs(Scenario::Api) {
        step("API round trips, gRPC and JSON");
        let r = bench.api_faces(sa).await;
        note(&mut bench, "api round trips", r);
    }
    if config.runs(Scenario::Security) {
        step("API request rates, TLS off and on");
        let r = bench.api_security(sa).await;
        note(&mut bench, "api security", r);
    }
    if config.runs(Scenario::RollingUpdate) {
        let (agents, instances, batch) = sizes.rolling;
        step("rolling update against a fresh launch");
        let r = bench.rolling_update(agents, instances, batch).await;
        note(&mut bench, "rolling update", r);
    }
    if config.runs(Scenario::Watchers) {
        let (agents, tasks, watchers) = sizes.watchers;
        step("a launch with watchers against one without");
        let r = bench.watchers(agents, tasks, watchers).await;
        note(&mut bench, "watchers", r);
    }
    if config.runs(Scenario::KfpRun) {
        let (agents, nodes) = sizes.kfp_run;
        step("a Kubeflow run of a fan-out/fan-in DAG against one batch job");
        let r = bench.kfp_run(agents, nodes).await;
        note(&mut bench, "kfp run", r);
    }
    if config.runs(Scenario::Updates) {
        step("status updates");
        let r = bench.updates(sa, sizes.update_tasks).await;
        note(&mut bench, "updates", r);
    }
    for run in 1..=sizes.repeat {
        let of = format!("run {run} of {}", sizes.repeat);
        // Memory and recovery once, after the last large launch.
        let deep = run == sizes.repeat;
        drover_then_limit(&mut bench, &config, "large", sizes.large, deep, &of).await;
    }
    bench.report_launches();

    let small = |who: &str| format!("{who} {}k tasks/{sa} agents", st / 1000);
    let large = |who: &str| format!("{who} {}k tasks/{la} agents", lt / 1000);
    let r = &mut bench.report;
    for (who, of) in [
        (small("drover"), small("limit")),
        (large("drover"), large("limit")),
    ] {
        r.ratio(
            &who,
            "fraction of limit",
            (&who, "tasks/s"),
            (&of, "tasks/s"),
        );
    }
    r.ratio(
        &small("drover"),
        "multiple of pymesos",
        (&small("drover"), "tasks/s"),
        (&small("pymesos"), "tasks/s"),
    );
    // The same comparisons by when each framework itself knew every task
    // was RUNNING (a time, so the other's time over Drover's), and the
    // limit's own multiple of pymesos: the most any client could show.
    let seen = "framework saw all RUNNING";
    r.ratio(
        &small("drover"),
        "fraction of limit (framework saw all RUNNING)",
        (&small("limit"), seen),
        (&small("drover"), seen),
    );
    r.ratio(
        &small("drover"),
        "multiple of pymesos (framework saw all RUNNING)",
        (&small("pymesos"), seen),
        (&small("drover"), seen),
    );
    r.ratio(
        &small("limit"),
        "multiple of pymesos",
        (&small("limit"), "tasks/s"),
        (&small("pymesos"), "tasks/s"),
    );
    r.ratio(
        &small("limit"),
        "multiple of pymesos (framework saw all RUNNING)",
        (&small("pymesos"), seen),
        (&small("limit"), seen),
    );
    let placement = format!(
        "placement {} tasks/{} hosts",
        sizes.placement.0, sizes.placement.1
    );
    let targets: Vec<Target> = vec![
        r.target(
            &format!(">= 5000 tasks/s at {sa} agents"),
            (&small("drover"), "tasks/s"),
            5000.0,
            true,
        ),
        // The fraction at both fleet sizes, and the pymesos multiple by
        // both measures: each reading on a line of its own.
        r.target(
            &format!(">= 0.5 of the no-policy limit at {sa} agents"),
            (&small("drover"), "fraction of limit"),
            0.5,
            true,
        ),
        r.target(
            &format!(">= 0.5 of the no-policy limit at {la} agents"),
            (&large("drover"), "fraction of limit"),
            0.5,
            true,
        ),
        r.target(
            ">= 10x the pymesos peer (tasks/s at the master)",
            (&small("drover"), "multiple of pymesos"),
            10.0,
            true,
        ),
        r.target(
            ">= 10x the pymesos peer (framework saw all RUNNING)",
            (
                &small("drover"),
                "multiple of pymesos (framework saw all RUNNING)",
            ),
            10.0,
            true,
        ),
        r.target(
            "<= 2 KiB RSS per task (bytes)",
            ("memory", "RSS per task"),
            2048.0,
            false,
        ),
        r.target(
            &format!("recovery with {lt} tasks < 10 s"),
            ("recovery", "total"),
            10.0,
            false,
        ),
        r.target(
            "placement p99 < 1 ms per decision",
            (&placement, "p99 per decision"),
            1.0,
            false,
        ),
    ];

    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let json = serde_json::to_string_pretty(&bench.report.to_json())?;
    std::fs::write(out.join("summary.json"), json)?;
    let title = format!(
        "Launch throughput vs fleet size ({})",
        if config.quick { "quick" } else { "full" }
    );
    let svg = plot::svg(&bench.points, &title);
    std::fs::write(out.join("throughput.svg"), &svg)?;
    if !config.quick {
        let docs = root.join("docs/bench");
        std::fs::create_dir_all(&docs)?;
        std::fs::write(docs.join("throughput.svg"), &svg)?;
    }
    println!("{}", bench.report.table(&targets));
    println!(
        "Per-task create->RUNNING = agent-sim's TASK_RUNNING timestamp of each task (one /state read\n\
         after the launch, master clock) minus the wall-clock time just before the first job was\n\
         created (Drover), SUBSCRIBE was sent (limit) or the pymesos driver started (peer).\n\
         tasks/s = tasks RUNNING / (last RUNNING - create). Written: {}",
        out.join("summary.json").display()
    );
    Ok(())
}

/// One run of Drover's launch of `tasks` on `agents` (with memory and
/// recovery if `deep`), then one of the limit's, as `--only` allows.
async fn drover_then_limit(
    bench: &mut Bench,
    config: &Config,
    fleet: &str,
    (agents, tasks): (usize, usize),
    deep: bool,
    of: &str,
) {
    if config.runs(Scenario::Launch) {
        let also = if deep { " (+ memory, recovery)" } else { "" };
        step(&format!("drover launch, {fleet} fleet, {of}{also}"));
        let r = bench.drover_launch(agents, tasks, deep).await;
        note(bench, &format!("drover {fleet}"), r);
    }
    if config.runs(Scenario::Limit) {
        step(&format!("no-policy limit, {fleet} fleet, {of}"));
        let r = bench.limit(agents, tasks).await;
        note(bench, &format!("limit {fleet}"), r);
    }
}

/// The small launch on each store, runs alternated, then the large launch
/// and recovery on each; PostgreSQL's figures as ratios of SQLite's.
async fn stores_scenario(
    bench: &mut Bench,
    pg: &std::sync::Arc<stores::PgServer>,
    sizes: &config::Sizes,
) {
    let kinds = [stores::Store::Sqlite, stores::Store::Postgres(pg.clone())];
    let (restore, label) = (bench.launcher.store.clone(), bench.label_store);
    bench.label_store = true;
    let (agents, tasks) = sizes.small;
    for run in 1..=sizes.repeat {
        for store in &kinds {
            bench.launcher.store = store.clone();
            step(&format!(
                "drover launch on {}, run {run} of {}",
                store.name(),
                sizes.repeat
            ));
            let r = bench.drover_launch(agents, tasks, false).await;
            note(bench, &format!("launch on {}", store.name()), r);
        }
    }
    let limits = bench.pg_limits.take();
    let (large_agents, large_tasks) = sizes.large;
    for store in &kinds {
        bench.launcher.store = store.clone();
        step(&format!(
            "drover launch, large fleet, on {} (+ memory, recovery)",
            store.name()
        ));
        let r = bench.drover_launch(large_agents, large_tasks, true).await;
        note(
            bench,
            &format!("large launch and recovery on {}", store.name()),
            r,
        );
    }
    bench.launcher.store = restore;
    bench.label_store = label;
    bench.report_launches();
    bench.runs.clear();
    let small = |s: &str| format!("drover {}k tasks/{agents} agents, {s} store", tasks / 1000);
    let r = &mut bench.report;
    let (lite, post) = (small("sqlite"), small("postgres"));
    r.ratio(
        &post,
        "tasks/s, postgres/sqlite",
        (&post, "tasks/s"),
        (&lite, "tasks/s"),
    );
    let seen = "framework saw all RUNNING";
    r.ratio(
        &post,
        "time to all RUNNING, postgres/sqlite",
        (&post, seen),
        (&lite, seen),
    );
    let (rl, rp) = ("recovery, sqlite store", "recovery, postgres store");
    r.ratio(rp, "total, postgres/sqlite", (rp, "total"), (rl, "total"));
    r.ratio(
        rp,
        "start->reconciled, postgres/sqlite",
        (rp, "start->reconciled"),
        (rl, "start->reconciled"),
    );
    if let Some((scenario, figures)) = limits {
        let name = format!("postgres limits ({scenario}, last run)");
        for (metric, value, unit) in figures {
            r.add(&name, metric, value, unit);
        }
    }
    if let Some((scenario, figures)) = bench.pg_limits.take() {
        let name = format!("postgres limits ({scenario})");
        for (metric, value, unit) in figures {
            bench.report.add(&name, metric, value, unit);
        }
    }
}

fn step(what: &str) {
    eprintln!("drover-bench: {what} ...");
}

fn note(bench: &mut Bench, what: &str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("drover-bench: {what} failed: {e:#}");
        bench.report.problems.push(format!("{what}: {e:#}"));
    }
}
