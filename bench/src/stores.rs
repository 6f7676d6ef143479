//! The scheduler's store in the benchmark: SQLite in its data directory
//! (the default) or PostgreSQL (`--store postgres`, and the `stores`
//! scenario that runs both in one invocation). PostgreSQL is the tests'
//! server (`drover_test_support::postgres::Postgres`: installed by
//! `scripts/postgres-env.sh` when missing, `initdb` in a temp dir, loopback
//! only, `fsync` and `synchronous_commit` on), one database per scheduler
//! data directory, so a restart on the same directory (recovery) finds its
//! store again.
//!
//! What limits a launch on PostgreSQL is read around it ([`PgSample`]):
//! the commits (`pg_stat_database`), the server's time executing them,
//! the WAL flushes and their time (`pg_stat_wal`, with
//! `track_wal_io_timing`), and the CPU time of the scheduler's store
//! thread (`/proc/PID/task/TID/stat`). Round trips are not counted here
//! (`/proc`'s `syscw` does not count `send()`): one flight per commit is
//! the store's construction.

use drover_test_support::postgres::Postgres;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Which store the scheduler runs on.
#[derive(Clone, Default)]
pub enum Store {
    /// SQLite in the data directory.
    #[default]
    Sqlite,
    /// PostgreSQL on this server.
    Postgres(Arc<PgServer>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Store {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// The scheduler's `--store` flags for `data_dir` (none for SQLite:
    /// the data directory is its store).
    pub fn flags(&self, data_dir: &Path) -> anyhow::Result<Vec<String>> {
        match self {
            Store::Sqlite => Ok(Vec::new()),
            Store::Postgres(pg) => Ok(vec!["--store".into(), pg.database_for(data_dir)?]),
        }
    }
}

/// The benchmark's PostgreSQL server.
pub struct PgServer {
    server: Postgres,
    databases: AtomicUsize,
}

impl PgServer {
    /// Starts the server (blocking: `initdb` and start take a few seconds)
    /// with WAL I/O timing on, so that flush time can be read.
    pub fn start() -> PgServer {
        let server = Postgres::start();
        server.psql("ALTER SYSTEM SET track_wal_io_timing = on");
        server.psql("SELECT pg_reload_conf()");
        PgServer {
            server,
            databases: AtomicUsize::new(0),
        }
    }

    /// The URL of `data_dir`'s database, made (and named in the directory)
    /// on its first use.
    fn database_for(&self, data_dir: &Path) -> anyhow::Result<String> {
        std::fs::create_dir_all(data_dir)?;
        let marker = data_dir.join("postgres-database");
        if let Ok(name) = std::fs::read_to_string(&marker) {
            return Ok(self.server.url_of(name.trim()));
        }
        let name = format!("bench_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let url = self.server.create_database(&name);
        std::fs::write(&marker, &name)?;
        Ok(url)
    }

    /// The server-wide and per-database counters, now.
    fn counters(&self) -> Option<[f64; 5]> {
        let line = self.server.psql(
            "SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::float8, \
             (SELECT sum(active_time) FROM pg_stat_database)::float8, \
             wal_sync::float8, wal_sync_time::float8, wal_write::float8 FROM pg_stat_wal",
        );
        let values: Vec<f64> = line.split('|').filter_map(|v| v.parse().ok()).collect();
        values.try_into().ok()
    }
}

/// One report line: metric, value, unit.
pub type Figure = (&'static str, f64, &'static str);

/// PostgreSQL's and the store thread's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PgSample {
    commits: f64,
    active_ms: f64,
    wal_syncs: f64,
    wal_sync_ms: f64,
    thread_cpu_secs: f64,
}

impl PgSample {
    /// Reads the counters; `scheduler` is the scheduler's pid (its
    /// writer's store thread is read).
    pub fn take(pg: &PgServer, scheduler: u32) -> Option<PgSample> {
        let [commits, active_ms, wal_syncs, wal_sync_ms, _] = pg.counters()?;
        let thread_cpu_secs = writer_thread_cpu(scheduler).unwrap_or(0.0);
        Some(PgSample {
            commits,
            active_ms,
            wal_syncs,
            wal_sync_ms,
            thread_cpu_secs,
        })
    }

    /// What happened between `self` and `later`, over `secs` of launch,
    /// as report lines (metric, value, unit).
    pub fn since(&self, later: &PgSample, secs: f64) -> Vec<Figure> {
        let commits = (later.commits - self.commits).max(0.0);
        let per = |v: f64| if commits > 0.0 { v / commits } else { 0.0 };
        let active = (later.active_ms - self.active_ms) / 1e3;
        let syncs = later.wal_syncs - self.wal_syncs;
        let sync_secs = (later.wal_sync_ms - self.wal_sync_ms) / 1e3;
        let cpu = later.thread_cpu_secs - self.thread_cpu_secs;
        vec![
            ("commits", commits, "transactions"),
            ("store thread CPU", cpu, "s"),
            ("store thread CPU per commit", per(cpu) * 1e3, "ms"),
            ("server time executing", active, "s"),
            ("server time per commit", per(active) * 1e3, "ms"),
            ("WAL flushes (fsync)", syncs, "flushes"),
            ("WAL flush time", sync_secs, "s"),
            ("WAL flush time per commit", per(sync_secs) * 1e3, "ms"),
            ("launch wall time", secs, "s"),
        ]
    }
}

/// The CPU seconds of the scheduler's writer store thread
/// (`drover_scheduler`'s `WRITER_THREAD`).
fn writer_thread_cpu(pid: u32) -> Option<f64> {
    let name = drover_scheduler::store::postgres::WRITER_THREAD;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        // SAFETY: sysconf reads a constant of the system; no memory is touched.
        let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        return Some((ticks(11)? + ticks(12)?) / per_sec.max(1.0));
    }
    None
}
