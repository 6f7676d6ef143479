//! The whole-system simulation over many seeds. `DROVER_SIM_SEEDS` sets how
//! many (default 2,000; a soak sets more), `DROVER_SIM_SEED` runs one seed
//! alone (to replay a failure; `DROVER_SIM_TRAIL` steps of it shown,
//! `DROVER_SIM_LOG=debug` the scheduler's log too), `DROVER_SIM_FIRST`
//! where the seeds start.

use drover_tests::sim::{self, SimConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let config = SimConfig::default();
    let first = sim::run(7, &config).unwrap_or_else(|f| panic!("{f}"));
    let again = sim::run(7, &config).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(first, again);
    assert!(first.launched > 0, "the run launched nothing: {first:?}");
    assert!(
        first.faults.values().sum::<u32>() > 3,
        "the run injected few faults: {first:?}"
    );
}

#[test]
fn users_invariants_hold_under_faults_for_every_seed() {
    let mut config = SimConfig::default();
    if let Some(seed) = env("DROVER_SIM_SEED") {
        config.trail = env("DROVER_SIM_TRAIL").unwrap_or(200) as usize;
        // A replay may show the scheduler's own log (DROVER_SIM_LOG=debug).
        if let Ok(filter) = std::env::var("DROVER_SIM_LOG") {
            config.echo = true;
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
        match sim::run(seed, &config) {
            Ok(summary) => println!("seed {seed} held: {summary:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let seeds = env("DROVER_SIM_SEEDS").unwrap_or(2_000);
    let first = env("DROVER_SIM_FIRST").unwrap_or(1);
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + seeds {
                    return;
                }
                if let Err(failure) = sim::run(seed, &config) {
                    failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(failure);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{seeds} seeds in {elapsed:.1} s: {:.1} seeds/s",
        seeds as f64 / elapsed
    );
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(first) = failures.iter().min_by_key(|f| f.seed) {
        panic!(
            "{} of {seeds} seeds broke an invariant; the first:\n{first}",
            failures.len()
        );
    }
}
