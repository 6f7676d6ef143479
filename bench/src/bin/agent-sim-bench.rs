//! `agent-sim-bench`: how fast the simulated master handles calls, offers
//! and status updates, and how much memory it needs, at 100, 1,000 and
//! 10,000 agents. It drives the master state machine in process, doing the
//! work the HTTP drive layer adds per message (decoding JSON calls,
//! encoding JSON events and RecordIO), so the figures are the master's
//! capacity without socket overhead. Prints a table and writes
//! `target/bench/agent-sim.json`. Not a test: nothing is asserted.
//!
//! Phases per fleet size, in one master:
//! 1. offers: allocation cycles offering every agent, each followed by one
//!    DECLINE (refuse 0) of all offers;
//! 2. status updates: launching 10 tasks per agent (100,000 at 10,000
//!    agents), acknowledging STARTING and RUNNING of each;
//! 3. calls: single-task RECONCILE and SUPPRESS calls.
//!
//! Then, over real HTTP on loopback against the server in this process:
//! the time from SUBSCRIBE until OFFERS for every agent arrived and were
//! decoded (HTTP offers/s), and SUPPRESS calls from 4 keep-alive
//! connections (HTTP calls/s).
//!
//! With `--journal DIR` the in-process phases also keep the master's
//! `--state-dir` journal in DIR as its driver does: after every input the
//! turn's records are appended with one `write()`, and the journal is
//! compacted when it has grown enough (the figures then include that).
//!
//! Usage: agent-sim-bench [--sizes 100,1000,10000] [--out target/bench/agent-sim.json] [--journal DIR]

use std::time::{Duration, Instant};

use anyhow::Context;
use drover_agent_sim::config::{FleetDefaults, DEFAULT_RESOURCES};
use drover_agent_sim::master::journal::{CompactionConfig, JournalDir, JournalWriter};
use drover_agent_sim::master::{Effect, Master, MasterConfig};
use drover_agent_sim::resources::Resources;
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{call, Call, Event};
use drover_proto::v1::{self, TaskState};
use drover_proto::MediaType;
use serde_json::json;

const TASKS_PER_AGENT: usize = 10;

struct Figures {
    agents: usize,
    http_offers_per_sec: f64,
    http_calls_per_sec: f64,
    offers_per_sec: f64,
    updates_per_sec: f64,
    calls_per_sec: f64,
    running_tasks: usize,
    rss_mib: f64,
}

fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// What the driver does with each effect: encode the event as JSON and frame it.
fn deliver(effects: Vec<Effect>, sink: &mut Vec<Event>) -> usize {
    let mut bytes = 0;
    for e in effects {
        if let Effect::Send { event, .. } = e {
            bytes += encode_record(&MediaType::Json.encode(&*event)).len();
            sink.push(*event);
        }
    }
    bytes
}

/// `--journal DIR`: the master's journal, written as its driver writes it.
struct Journal {
    writer: JournalWriter,
    frames: Vec<u8>,
    bytes: u64,
}

impl Journal {
    fn start(dir: &std::path::Path, m: &mut Master, now: Instant) -> anyhow::Result<Self> {
        let dir = JournalDir::open(dir, CompactionConfig::default())?;
        m.start_journal();
        let mut frames = Vec::new();
        m.journal_snapshot(now, &mut frames);
        m.journal_turn(now, &mut Vec::new());
        let writer = dir.begin(m.master_id(), &frames)?;
        Ok(Journal {
            writer,
            frames,
            bytes: 0,
        })
    }

    /// One event-loop turn's records.
    fn turn(&mut self, m: &mut Master, now: Instant) {
        self.frames.clear();
        m.journal_turn(now, &mut self.frames);
        if !self.frames.is_empty() {
            self.bytes += self.frames.len() as u64;
            self.writer
                .append(&self.frames)
                .expect("the bench's journal is writable");
        }
        if self.writer.wants_compaction() {
            self.frames.clear();
            m.journal_snapshot(now, &mut self.frames);
            self.writer
                .compact(&self.frames)
                .expect("the bench's journal is writable");
        }
    }
}

/// Runs a call as the HTTP layer would: JSON-encoded, decoded, validated;
/// then journals the turn, if journaling.
fn call(
    m: &mut Master,
    c: &Call,
    stream: &str,
    now: Instant,
    sink: &mut Vec<Event>,
    journal: &mut Option<Journal>,
) {
    let body = MediaType::Json.encode(c);
    let decoded: Call = MediaType::Json
        .decode(&body)
        .expect("the bench's own calls decode");
    drover_agent_sim::master::validate::call(&decoded).expect("the bench's own calls are valid");
    let (result, fx) = m.on_call(decoded, Some(stream), now);
    result.expect("the bench's calls are accepted");
    if let Some(j) = journal {
        j.turn(m, now);
    }
    deliver(fx, sink);
}

fn framework_call(fw: &str, ty: call::Type) -> Call {
    Call {
        framework_id: Some(v1::FrameworkId { value: fw.into() }),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn bench(agents: usize, journal_dir: Option<&std::path::Path>) -> anyhow::Result<Figures> {
    let t0 = Instant::now();
    let fleet = FleetDefaults {
        resources: Resources::parse(DEFAULT_RESOURCES).expect("the default resources parse"),
        attributes: Vec::new(),
        zones: vec!["a".into(), "b".into(), "c".into()],
    };
    let config = MasterConfig {
        update_retry_min: Duration::from_secs(3600),
        ..MasterConfig::default()
    };
    let mut m = Master::new(config, fleet.specs(0, agents), t0, 1.7e9);
    let info = v1::FrameworkInfo {
        user: "bench".into(),
        name: "bench".into(),
        ..Default::default()
    };
    let (stream, fx) = m.on_subscribe(
        1,
        call::Subscribe {
            framework_info: info,
            ..Default::default()
        },
        t0,
    );
    let mut sink = Vec::new();
    deliver(fx, &mut sink);
    let fw = sink[0]
        .subscribed
        .as_ref()
        .map(|s| s.framework_id.value.clone())
        .unwrap_or_default();
    let mut now = t0;
    let step = Duration::from_secs(1);
    let mut journal = match journal_dir {
        Some(dir) => Some(Journal::start(&dir.join(agents.to_string()), &mut m, t0)?),
        None => None,
    };

    // 1. offers
    let cycles = (200_000 / agents).clamp(3, 50);
    let mut offers_made = 0usize;
    let started = Instant::now();
    let mut last: Vec<v1::Offer> = Vec::new();
    for i in 0..cycles {
        now += step;
        sink.clear();
        let fx = m.on_tick(now);
        if let Some(j) = &mut journal {
            j.turn(&mut m, now);
        }
        deliver(fx, &mut sink);
        last = sink
            .iter()
            .filter_map(|e| e.offers.as_ref())
            .flat_map(|o| o.offers.clone())
            .collect();
        offers_made += last.len();
        if i + 1 < cycles {
            let mut d = framework_call(&fw, call::Type::Decline);
            d.decline = Some(call::Decline {
                offer_ids: last.iter().map(|o| o.id.clone()).collect(),
                filters: Some(v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            });
            call(&mut m, &d, &stream, now, &mut sink, &mut journal);
        }
    }
    let offers_per_sec = offers_made as f64 / started.elapsed().as_secs_f64();

    // 2. status updates: launch TASKS_PER_AGENT tasks on every offer, ack everything.
    let started = Instant::now();
    let mut updates = 0usize;
    let task_res = Resources::parse("cpus:0.1;mem:32")
        .expect("task resources parse")
        .to_protos(None);
    for offer in &last {
        let tasks: Vec<v1::TaskInfo> = (0..TASKS_PER_AGENT)
            .map(|k| v1::TaskInfo {
                name: "t".into(),
                task_id: v1::TaskId {
                    value: format!("{}-{k}", offer.agent_id.value),
                },
                agent_id: offer.agent_id.clone(),
                resources: task_res.clone(),
                command: Some(v1::CommandInfo {
                    value: Some("serve forever".into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let mut a = framework_call(&fw, call::Type::Accept);
        a.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::Launch as i32),
                launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: None,
        });
        sink.clear();
        call(&mut m, &a, &stream, now, &mut sink, &mut journal);
        // Acknowledge until every task of this offer is RUNNING and acked.
        while let Some(e) = sink.pop() {
            let Some(u) = e.update else { continue };
            updates += 1;
            let s = u.status;
            let mut ack = framework_call(&fw, call::Type::Acknowledge);
            ack.acknowledge = Some(call::Acknowledge {
                agent_id: s.agent_id.clone().unwrap_or_default(),
                task_id: s.task_id.clone(),
                uuid: s.uuid.clone().unwrap_or_default(),
            });
            call(&mut m, &ack, &stream, now, &mut sink, &mut journal);
        }
    }
    let updates_per_sec = updates as f64 / started.elapsed().as_secs_f64();
    let running_tasks = m
        .tasks()
        .filter(|t| t.state() == TaskState::TaskRunning)
        .count();
    let rss = rss_mib("VmRSS:");

    // 3. calls: explicit reconciliation of single tasks, and revives.
    let n_calls = 20_000;
    let started = Instant::now();
    let ids: Vec<String> = m
        .tasks()
        .take(1000)
        .map(|t| t.task_id.value.clone())
        .collect();
    for i in 0..n_calls {
        sink.clear();
        let c = if i % 2 == 0 && !ids.is_empty() {
            let mut r = framework_call(&fw, call::Type::Reconcile);
            r.reconcile = Some(call::Reconcile {
                tasks: vec![call::reconcile::Task {
                    task_id: v1::TaskId {
                        value: ids[i % ids.len()].clone(),
                    },
                    agent_id: None,
                }],
            });
            r
        } else {
            framework_call(&fw, call::Type::Suppress)
        };
        call(&mut m, &c, &stream, now, &mut sink, &mut journal);
    }
    let calls_per_sec = n_calls as f64 / started.elapsed().as_secs_f64();
    drop(m);
    if let Some(j) = &journal {
        #[allow(clippy::print_stdout)]
        {
            println!(
                "journal at {agents} agents: {:.1} MiB appended, {:.1} MiB now",
                j.bytes as f64 / (1u64 << 20) as f64,
                j.writer.len() as f64 / (1u64 << 20) as f64
            );
        }
    }
    Ok(Figures {
        agents,
        http_offers_per_sec: 0.0,
        http_calls_per_sec: 0.0,
        offers_per_sec,
        updates_per_sec,
        calls_per_sec,
        running_tasks,
        rss_mib: rss,
    })
}

/// One POST on an open keep-alive connection.
async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let mut req = hyper::Request::post("/api/v1/scheduler").header("Host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Ok(sender
        .send_request(req.body(http_body_util::Full::new(body.into()))?)
        .await?)
}

async fn connect(
    addr: std::net::SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// (offers/s, calls/s) over HTTP against a server started in this process.
async fn bench_http(agents: usize) -> anyhow::Result<(f64, f64)> {
    use http_body_util::BodyExt;
    let n = agents.to_string();
    let config = <drover_agent_sim::config::Config as clap::Parser>::parse_from([
        "agent-sim-bench",
        "--listen",
        "127.0.0.1:0",
        "--agents",
        &n,
        "--seed",
        "1",
    ]);
    let started = drover_agent_sim::run::start(&config).await?;
    let addr = started.address;
    let info = v1::FrameworkInfo {
        user: "bench".into(),
        name: "bench-http".into(),
        ..Default::default()
    };
    let sub = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(Box::new(call::Subscribe {
            framework_info: info,
            ..Default::default()
        })),
        ..Default::default()
    };
    let t0 = Instant::now();
    let mut sender = connect(addr).await?;
    let json = MediaType::Json.as_str();
    let headers = [("Content-Type", json), ("Accept", json)];
    let resp = post(&mut sender, addr, &headers, MediaType::Json.encode(&sub)).await?;
    let stream_id = resp
        .headers()
        .get("Mesos-Stream-Id")
        .context("no stream id")?
        .to_str()?
        .to_owned();
    let mut body = resp.into_body();
    let mut decoder =
        drover_proto::RecordDecoder::new(drover_proto::recordio::DEFAULT_MAX_RECORD_BYTES);
    let (mut offered, mut framework) = (0usize, String::new());
    while offered < agents {
        let frame = body.frame().await.context("the stream ended")??;
        if let Ok(data) = frame.into_data() {
            decoder.feed(&data);
        }
        while let Some(record) = decoder.next_record()? {
            let e: Event = MediaType::Json.decode(&record)?;
            if let Some(s) = e.subscribed {
                framework = s.framework_id.value;
            }
            offered += e.offers.map(|o| o.offers.len()).unwrap_or(0);
        }
    }
    let offers_per_sec = offered as f64 / t0.elapsed().as_secs_f64();
    let suppress = MediaType::Json.encode(&framework_call(&framework, call::Type::Suppress));
    let per_conn = 2_000;
    let t1 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stream_id, suppress) = (stream_id.clone(), suppress.clone());
        workers.push(tokio::spawn(async move {
            let mut s = connect(addr).await?;
            for _ in 0..per_conn {
                let headers = [
                    ("Content-Type", json),
                    ("Mesos-Stream-Id", stream_id.as_str()),
                ];
                let r = post(&mut s, addr, &headers, suppress.clone()).await?;
                anyhow::ensure!(r.status() == 202, "SUPPRESS answered {}", r.status());
                r.into_body().collect().await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let calls_per_sec = (4 * per_conn) as f64 / t1.elapsed().as_secs_f64();
    drop(body);
    started.server.abort();
    Ok((offers_per_sec, calls_per_sec))
}

fn main() -> anyhow::Result<()> {
    let mut sizes = vec![100usize, 1_000, 10_000];
    let mut out = std::path::PathBuf::from("target/bench/agent-sim.json");
    let mut journal: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                let v = args.next().context("--sizes needs a value")?;
                sizes = v
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()
                    .context("--sizes: numbers")?;
            }
            "--out" => out = args.next().context("--out needs a value")?.into(),
            "--journal" => journal = Some(std::path::PathBuf::from(args.next().context("--journal needs a directory")?)),
            other => anyhow::bail!(
                "unknown argument {other}; usage: agent-sim-bench [--sizes 100,1000] [--out FILE] [--journal DIR]"
            ),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{:>8} {:>12} {:>14} {:>12} {:>14} {:>14} {:>14} {:>10}",
            "agents",
            "offers/s",
            "status upd/s",
            "calls/s",
            "HTTP offers/s",
            "HTTP calls/s",
            "running tasks",
            "RSS MiB"
        );
    }
    let mut rows = Vec::new();
    for n in sizes {
        let mut f = bench(n, journal.as_deref())?;
        let (o, c) = runtime.block_on(bench_http(n))?;
        f.http_offers_per_sec = o;
        f.http_calls_per_sec = c;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{:>8} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {:>14.0} {:>14} {:>10.1}",
                f.agents,
                f.offers_per_sec,
                f.updates_per_sec,
                f.calls_per_sec,
                f.http_offers_per_sec,
                f.http_calls_per_sec,
                f.running_tasks,
                f.rss_mib
            );
        }
        rows.push(json!({
            "agents": f.agents, "offers_per_sec": f.offers_per_sec, "status_updates_per_sec": f.updates_per_sec,
            "calls_per_sec": f.calls_per_sec, "http_offers_per_sec": f.http_offers_per_sec,
            "http_calls_per_sec": f.http_calls_per_sec, "running_tasks": f.running_tasks, "rss_mib": f.rss_mib,
        }));
    }
    let peak = rss_mib("VmHWM:");
    #[allow(clippy::print_stdout)]
    {
        println!("peak RSS {peak:.1} MiB");
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let doc = json!({ "benchmark": "agent-sim", "mode": "state machine in process with the JSON codec; HTTP figures over loopback", "results": rows, "peak_rss_mib": peak });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
