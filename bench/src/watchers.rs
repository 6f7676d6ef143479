//! The watchers scenario (issue 20): a launch of `tasks` tasks (jobs of
//! 1,000) on `agents` simulated agents, first with no watcher, then, on a
//! fresh fleet and scheduler, with `watchers` server-sent-event watchers
//! open on `GET /api/v1/watch` throughout, each following one job (by
//! name, as a team's dashboard would; the jobs share the watchers evenly).
//! Reports the launch rate of both runs and their ratio, the pod changes
//! delivered to all watchers per second, and the delivery lag (receipt
//! time less the revision's commit time, per pod change) at p50 and p99.
//! Every watcher must have been sent every change of its job: the count
//! delivered is checked against the pods' states.

use crate::scenarios::Bench;
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// The scenario's name in the report.
pub fn name(agents: usize, tasks: usize, watchers: usize) -> String {
    format!(
        "watch {watchers} watchers, {}k tasks/{agents} agents",
        tasks / 1000
    )
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct Seen {
    /// Pod changes received.
    pods: u64,
    /// (lag in ms, pod changes) per event.
    lags: Vec<(u32, u32)>,
    /// When the last event came.
    last: Option<Instant>,
}

/// One launch: its rate (tasks/s) and, with watchers, what they saw.
struct Run {
    rate: f64,
    seen: Vec<Seen>,
    started: Instant,
    /// The scheduler's CPU seconds over the launch and the delivery.
    scheduler_cpu: f64,
    /// This process's (the watchers' client side) over the same span.
    clients_cpu: f64,
}

/// This process's CPU seconds (user + system).
fn own_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

impl Bench {
    /// See the module doc.
    pub async fn watchers(
        &mut self,
        agents: usize,
        tasks: usize,
        watchers: usize,
    ) -> anyhow::Result<()> {
        let scenario = name(agents, tasks, watchers);
        let without = self.watched_launch(agents, tasks, 0).await?;
        let with = self.watched_launch(agents, tasks, watchers).await?;
        let delivered: u64 = with.seen.iter().map(|s| s.pods).sum();
        let last = with
            .seen
            .iter()
            .filter_map(|s| s.last)
            .max()
            .unwrap_or(with.started);
        let span = last.duration_since(with.started).as_secs_f64().max(1e-3);
        let mut lags: Vec<(u32, u32)> = with.seen.iter().flat_map(|s| s.lags.clone()).collect();
        lags.sort_unstable();
        let r = &mut self.report;
        r.add(
            &scenario,
            "launch without watchers",
            without.rate,
            "tasks/s",
        );
        r.add(&scenario, "launch with watchers", with.rate, "tasks/s");
        r.add(
            &scenario,
            "launch rate with / without",
            with.rate / without.rate.max(1e-9),
            "x",
        );
        r.add(
            &scenario,
            "pod changes delivered",
            delivered as f64,
            "changes",
        );
        r.add(
            &scenario,
            "delivered per second",
            delivered as f64 / span,
            "changes/s",
        );
        r.add(&scenario, "p50 delivery lag", quantile(&lags, 0.50), "ms");
        r.add(&scenario, "p99 delivery lag", quantile(&lags, 0.99), "ms");
        r.add(
            &scenario,
            "scheduler CPU without watchers",
            without.scheduler_cpu,
            "s",
        );
        r.add(
            &scenario,
            "scheduler CPU with watchers",
            with.scheduler_cpu,
            "s",
        );
        r.add(
            &scenario,
            "scheduler CPU per delivered change",
            (with.scheduler_cpu - without.scheduler_cpu) / (delivered.max(1) as f64) * 1e6,
            "us",
        );
        r.add(
            &scenario,
            "watcher clients' CPU (this process)",
            with.clients_cpu,
            "s",
        );
        Ok(())
    }

    async fn watched_launch(
        &mut self,
        agents: usize,
        tasks: usize,
        watchers: usize,
    ) -> anyhow::Result<Run> {
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let drover = self.launcher.drover_with(
            &fleet,
            &fleet.path("drover-data"),
            "scheduler.log",
            &["--max-connections", "8192"],
        )?;
        drover.wait_subscribed(&self.http, timeout).await?;
        let address = drover.api.trim_start_matches("http://").to_owned();
        let jobs = tasks.div_ceil(1000).max(1);
        let (stop_tx, stop) = watch::channel(false);
        let opened = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(watchers);
        for i in 0..watchers {
            let path = format!("/api/v1/watch?job=bench-{}", i % jobs);
            handles.push(tokio::spawn(follow(
                address.clone(),
                path,
                stop.clone(),
                opened.clone(),
            )));
        }
        let deadline = Instant::now() + timeout;
        while opened.load(Ordering::Relaxed) < watchers {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {watchers} watchers opened",
                    opened.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (cpu0, own0) = (drover.proc.cpu_secs()?, own_cpu_secs());
        let started = Instant::now();
        let ids = drover
            .create(&self.http, tasks, 1000, "sleep 100000")
            .await?;
        let done = drover.wait_jobs_running(&self.http, timeout, &ids).await?;
        let rate = tasks as f64 / done.duration_since(started).as_secs_f64();
        // What is in flight reaches the watchers.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (scheduler_cpu, clients_cpu) = (drover.proc.cpu_secs()? - cpu0, own_cpu_secs() - own0);
        let _ = stop_tx.send(true);
        let mut seen = Vec::with_capacity(watchers);
        for handle in handles {
            seen.push(handle.await.context("a watcher task failed")??);
        }
        // Each pod reached RUNNING through at least two changes (launched,
        // running): a watcher of a job of n pods got at least 2n.
        for (i, s) in seen.iter().enumerate() {
            let n = ids.get(i % jobs).map_or(0, |(_, n)| *n) as u64;
            if s.pods < 2 * n {
                bail!(
                    "watcher {i} got {} pod changes of its job's {n} pods",
                    s.pods
                );
            }
        }
        Ok(Run {
            rate,
            seen,
            started,
            scheduler_cpu,
            clients_cpu,
        })
    }
}

/// One watcher: a connection of its own, read until `stop`.
async fn follow(
    address: String,
    path: String,
    mut stop: watch::Receiver<bool>,
    opened: Arc<AtomicUsize>,
) -> anyhow::Result<Seen> {
    let stream = tokio::net::TcpStream::connect(&address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(&path)
        .header("host", &address)
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("the watch answered {}", response.status());
    }
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::new();
    let mut seen = Seen::default();
    let mut counted = false;
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = body.frame() => frame,
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = (Instant::now(), unix_ms());
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            if text.starts_with("event: snapshot") && !counted {
                counted = true;
                opened.fetch_add(1, Ordering::Relaxed);
            }
            if !text.starts_with("event: change") {
                continue;
            }
            let pods = text.matches("{\"pod_name\"").count() as u32;
            let committed = text
                .split_once("\"committed_at\":\"")
                .and_then(|(_, rest)| rest.get(..24))
                .and_then(parse_rfc3339_ms);
            if let Some(at) = committed {
                let lag = (now.1 - at).max(0) as u32;
                seen.lags.push((lag, pods));
            }
            seen.pods += u64::from(pods);
            seen.last = Some(now.0);
        }
    }
    Ok(seen)
}

/// The value at quantile `q` of `(value, weight)` pairs sorted by value.
fn quantile(sorted: &[(u32, u32)], q: f64) -> f64 {
    let total: u64 = sorted.iter().map(|(_, w)| u64::from(*w)).sum();
    let want = (total as f64 * q).ceil() as u64;
    let mut so_far = 0;
    for (value, weight) in sorted {
        so_far += u64::from(*weight);
        if so_far >= want.max(1) {
            return f64::from(*value);
        }
    }
    0.0
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-12-06T20:26:09.712Z` as Unix milliseconds.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_quantiles() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.005Z"), Some(1005));
        assert_eq!(
            parse_rfc3339_ms("2024-03-01T00:00:00.000Z"),
            Some(1_709_251_200_000)
        );
        let lags = [(1, 98), (50, 1), (900, 1)];
        assert_eq!(quantile(&lags, 0.5), 1.0);
        assert_eq!(quantile(&lags, 0.99), 50.0);
        assert_eq!(quantile(&lags, 1.0), 900.0);
    }
}
