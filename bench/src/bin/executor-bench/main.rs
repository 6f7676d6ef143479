//! `drover-executor-bench`: measures the real executor against baselines
//! taken in the same run and prints one table (issue 4, item 7):
//! - LAUNCH-to-TASK_RUNNING p50/p99 of short tasks, beside the same command
//!   started by a plain fork/exec and by a shell that joins a cgroup first;
//! - the executor's resident memory idle and with many tasks running;
//! - KILL-to-TASK_KILLED of a task that ignores SIGTERM;
//! - LAUNCH-to-TASK_RUNNING of a task run from an image, cache warm and
//!   cold, beside the no-image launch and `crun run` of the same root
//!   ([`images`]).
//!
//! It writes the figures to `target/bench/executor.json` and reports
//! ratios, never assertions. Needs root: it creates (and removes) its own
//! cgroups, `drover-bench-<pid>`, and moves only processes it started.
//!
//! Run: `cargo build --release -p drover-executor -p drover-bench && sudo
//! target/release/drover-executor-bench`.

mod agent;
mod baseline;
mod config;
mod images;
mod report;
mod scenarios;
mod subject;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use drover_executor::container::cgroup::{detect_version, CgroupVersion};

use agent::BenchAgent;
use baseline::BenchCgroup;
use config::BenchConfig;
use images::{ImageDirs, ImageSamples};
use report::{ms, percentile, Figure};
use scenarios::Bench;
use subject::{Memory, Subject};

/// The short task every latency scenario runs.
const SHORT_TASK: [&str; 1] = ["/bin/true"];
/// The targets.
const TARGET_OVERHEAD_MS: f64 = 5.0;
const TARGET_IDLE_RSS_MIB: f64 = 10.0;
/// Pause before each memory reading, so the last updates' acknowledgements
/// and log writes are done and the executor is at rest.
const IDLE_SETTLE: Duration = Duration::from_millis(500);
const MIB: f64 = 1024.0 * 1024.0;

fn hierarchy(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(match detect_version(root)? {
        CgroupVersion::V1 => root.join("pids"),
        CgroupVersion::V2 => root.to_path_buf(),
    })
}

fn latency_figures(name: &str, samples: &[Duration], figures: &mut Vec<Figure>) -> f64 {
    let p50 = ms(percentile(samples, 0.5));
    figures.push(Figure::new("launch", &format!("{name} p50"), p50, "ms"));
    figures.push(Figure::new(
        "launch",
        &format!("{name} p99"),
        ms(percentile(samples, 0.99)),
        "ms",
    ));
    p50
}

async fn run_executor(config: &BenchConfig, parent: &Path) -> anyhow::Result<Measured> {
    let images = match config.no_images {
        true => None,
        false => Some(ImageDirs::new(&config.images_path()?)?),
    };
    let (agent, arrivals) = BenchAgent::start()
        .await
        .context("starting the bench agent")?;
    let subject = Subject::start(
        &config.executor_path()?,
        &agent,
        &config.cgroup_root,
        parent,
        &images.as_ref().map(ImageDirs::env).unwrap_or_default(),
    )?;
    let mut bench = Bench {
        agent,
        arrivals,
        subject,
    };
    let result = measure(config, parent, &mut bench, images.as_ref()).await;
    let Bench { agent, subject, .. } = bench;
    let stopped = subject.stop(&agent, Duration::from_secs(15)).await;
    let figures = result?;
    stopped?;
    Ok(figures)
}

/// Everything measured, baselines included.
struct Measured {
    plain: Vec<Duration>,
    shell_cgroup: Vec<Duration>,
    launch: Vec<Duration>,
    rss_idle: Memory,
    rss_after_tasks: Memory,
    rss_running: Memory,
    kill: Vec<Duration>,
    images: Option<ImageSamples>,
}

async fn measure(
    config: &BenchConfig,
    parent: &Path,
    bench: &mut Bench,
    images: Option<&ImageDirs>,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        bench.agent.subscribed(Duration::from_secs(10)).await,
        "the executor never subscribed; its log:\n{}",
        bench.subject.log_tail()
    );
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_idle = bench.subject.memory()?;
    let cgroup = Arc::new(BenchCgroup::create(
        &hierarchy(&config.cgroup_root)?,
        &parent.join("baseline"),
    )?);
    let (mut plain, mut shell_cgroup, mut launch) = (Vec::new(), Vec::new(), Vec::new());
    // Round-robin, so that a change in the machine's load (it is shared)
    // hits the executor and its baselines alike. The baselines block, so
    // they run off the runtime's thread and the agent keeps serving.
    for i in 0..config.warmup + config.tasks {
        let shell = cgroup.clone();
        let (p, s) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            Ok((
                baseline::plain_spawn(&SHORT_TASK)?,
                baseline::shell_into_cgroup(&shell, &SHORT_TASK)?,
            ))
        })
        .await
        .context("the baseline thread panicked")??;
        let e = bench
            .launch_once(&format!("launch-{i}"), &SHORT_TASK)
            .await?;
        if i >= config.warmup {
            plain.push(p);
            shell_cgroup.push(s);
            launch.push(e);
        }
    }
    drop(cgroup);
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_after_tasks = bench.subject.memory()?;
    let sleepers = bench.start_sleepers(config.running).await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_running = bench.subject.memory()?;
    bench.kill_all(&sleepers).await?;
    let kill = bench
        .stubborn_kill(config.kill_grace, config.kill_rounds)
        .await?;
    let images = match images {
        Some(dirs) => Some(images::measure(bench, dirs, config.image_rounds).await?),
        None => None,
    };
    Ok(Measured {
        plain,
        shell_cgroup,
        launch,
        rss_idle,
        rss_after_tasks,
        rss_running,
        kill,
        images,
    })
}

fn figures(config: &BenchConfig, run: &Measured) -> Vec<Figure> {
    let mut figures = Vec::new();
    let plain = latency_figures("plain fork+exec", &run.plain, &mut figures);
    let shell = latency_figures("shell into cgroup", &run.shell_cgroup, &mut figures);
    let executor = latency_figures("executor LAUNCH->RUNNING", &run.launch, &mut figures);
    figures.push(
        Figure::new(
            "launch",
            "executor p50 / baseline p50",
            executor / plain,
            "x",
        )
        .against("plain fork+exec p50"),
    );
    figures.push(
        Figure::new(
            "launch",
            "executor p50 / baseline p50",
            executor / shell,
            "x",
        )
        .against("shell into cgroup p50"),
    );
    let overhead = executor - shell;
    figures.push(
        Figure::new("launch", "executor p50 - baseline p50", overhead, "ms")
            .against("shell into cgroup p50")
            .target(
                &format!("<= {TARGET_OVERHEAD_MS} ms"),
                overhead <= TARGET_OVERHEAD_MS,
            ),
    );
    let idle = run.rss_idle.rss_bytes as f64 / MIB;
    figures.push(
        Figure::new("memory", "executor RSS idle", idle, "MiB").target(
            &format!("< {TARGET_IDLE_RSS_MIB} MiB"),
            idle < TARGET_IDLE_RSS_MIB,
        ),
    );
    let after = format!("idle after {} tasks", config.warmup + config.tasks);
    let running = format!("with {} running", config.running);
    for (when, memory) in [
        ("idle", run.rss_idle),
        (after.as_str(), run.rss_after_tasks),
        (running.as_str(), run.rss_running),
    ] {
        if when != "idle" {
            figures.push(Figure::new(
                "memory",
                &format!("executor RSS {when}"),
                memory.rss_bytes as f64 / MIB,
                "MiB",
            ));
        }
        figures.push(Figure::new(
            "memory",
            &format!("executor RssAnon {when}"),
            memory.anon_bytes as f64 / MIB,
            "MiB",
        ));
    }
    let grace = ms(config.kill_grace);
    let kill_p50 = ms(percentile(&run.kill, 0.5));
    figures.push(Figure::new("kill", "KILL->TASK_KILLED p50", kill_p50, "ms"));
    figures.push(Figure::new(
        "kill",
        "KILL->TASK_KILLED max",
        ms(percentile(&run.kill, 1.0)),
        "ms",
    ));
    figures.push(
        Figure::new("kill", "p50 / grace", kill_p50 / grace, "x")
            .against(&format!("kill grace {grace} ms")),
    );
    if let Some(images) = &run.images {
        image_figures(images, executor, &mut figures);
    }
    figures
}

/// The image launch figures, as ratios to the no-image launch (`plain_p50`
/// is its p50, ms) and to crun.
fn image_figures(images: &ImageSamples, no_image_p50: f64, figures: &mut Vec<Figure>) {
    let warm = latency_figures("image LAUNCH->RUNNING warm cache", &images.warm, figures);
    let cold = latency_figures("image LAUNCH->RUNNING cold cache", &images.cold, figures);
    for (name, p50) in [("warm", warm), ("cold", cold)] {
        figures.push(
            Figure::new(
                "image",
                &format!("image {name} p50 / no-image p50"),
                p50 / no_image_p50,
                "x",
            )
            .against("executor LAUNCH->RUNNING p50"),
        );
    }
    if let Some(crun) = &images.crun {
        let mut crun = latency_figures("crun run start->exit", crun, figures);
        if let Some(wrapper) = &images.crun_wrapper {
            // On a hybrid host crun runs in a wrapper: its cost is not crun's.
            let wrapper = latency_figures("crun's wrapper (unshare, sh) alone", wrapper, figures);
            crun = (crun - wrapper).max(f64::MIN_POSITIVE);
            figures.push(Figure::new(
                "image",
                "crun run p50 - wrapper p50",
                crun,
                "ms",
            ));
        }
        figures.push(
            Figure::new("image", "image warm p50 / crun run p50", warm / crun, "x")
                .against("crun run start->exit p50 (wrapper taken off)"),
        );
    }
}

fn main() -> anyhow::Result<()> {
    let config = BenchConfig::parse();
    let out = config.out_path()?;
    let parent = PathBuf::from(format!("drover-bench-{}", std::process::id()));
    println!(
        "drover-executor-bench: {} timed tasks (+{} warm-up), {} running, kill grace {:?}",
        config.tasks, config.warmup, config.running, config.kill_grace
    );
    // One worker thread: the agent does little, and a second thread would
    // compete with the executor for this machine's cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let run = runtime.block_on(run_executor(&config, &parent))?;
    let figures = figures(&config, &run);
    report::print_table(&figures);
    report::write_json(&figures, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
