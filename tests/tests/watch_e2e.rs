//! The JSON watch stream (`GET /api/v1/watch`, server-sent events) as its
//! users rely on it, against a real scheduler on a simulated cluster:
//! - a watcher SIGKILLed while 2,000 pods change state resumes from the
//!   last revision it read and, with what it read before, has every change
//!   exactly once, in order: the same events as a watcher never
//!   interrupted;
//! - a resume from a revision older than the window is OUT_OF_RANGE, one
//!   ahead of the head INVALID_ARGUMENT;
//! - a watcher that stops reading is cut off with the revision to resume
//!   from, having been sent every change up to it, while another keeps up.
//!
//! The watchers are `curl` processes (a real client, killed as a user's
//! would be) and a raw socket that does not read.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::{create_job, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(120);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: String,
}

/// The complete events in `text` (a killed client may have written half
/// of the last one).
fn parse(text: &str) -> Vec<Sse> {
    let mut events = Vec::new();
    let complete = match text.rfind("\n\n") {
        Some(end) => &text[..end],
        None => return events,
    };
    for block in complete.split("\n\n") {
        let mut event = Sse {
            event: "message".into(),
            id: None,
            data: String::new(),
        };
        let mut any = false;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event.event = v.trim().into();
                any = true;
            } else if let Some(v) = line.strip_prefix("id:") {
                event.id = Some(v.trim().parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data:") {
                event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                any = true;
            }
        }
        if any {
            events.push(event);
        }
    }
    events
}

/// A `curl` reading the watch into a file.
struct Watcher {
    child: Child,
    file: PathBuf,
}

impl Watcher {
    fn start(api: &str, query: &str, file: PathBuf) -> Watcher {
        let out = std::fs::File::create(&file).unwrap();
        let child = Command::new("curl")
            .args(["-sN", "--no-buffer"])
            .arg(format!("http://{api}/api/v1/watch{query}"))
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("curl runs (the watch tests drive the stream with it)");
        Watcher { child, file }
    }

    fn events(&self) -> Vec<Sse> {
        parse(&std::fs::read_to_string(&self.file).unwrap_or_default())
    }

    fn changes(&self) -> Vec<Sse> {
        self.events()
            .into_iter()
            .filter(|e| e.event == "change")
            .collect()
    }

    /// SIGKILL, as a crashed client.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

fn batch(instances: u32) -> Value {
    json!({
        "type": "BATCH",
        "name": "churn",
        "instance_count": instances,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32, "disk_limit_mb": 0},
            "command": {"value": "sleep 2"}
        }]}
    })
}

fn ids(events: &[Sse]) -> Vec<u64> {
    events.iter().map(|e| e.id.unwrap()).collect()
}

fn assert_increasing(events: &[Sse], who: &str) {
    let ids = ids(events);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{who}: revisions must strictly increase: {ids:?}"
    );
}

/// Each pod's latest state in `events` (changes, in order).
fn pod_states(events: &[Sse]) -> BTreeMap<String, String> {
    let mut states = BTreeMap::new();
    for e in events {
        let data: Value = serde_json::from_str(&e.data).unwrap();
        for pod in data["pods"].as_array().unwrap() {
            states.insert(
                pod["pod_name"]["value"].as_str().unwrap().to_owned(),
                pod["status"]["state"].as_str().unwrap().to_owned(),
            );
        }
    }
    states
}

fn snapshot_revision(w: &Watcher) -> Option<u64> {
    w.events()
        .into_iter()
        .find(|e| e.event == "snapshot")
        .and_then(|e| e.id)
}

fn start(agents: usize, extra: &[&str]) -> (AgentSim, tempfile::TempDir, Scheduler) {
    let sim = AgentSim::for_scheduler(agents).start();
    let data = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(data.path(), &format!("http://{}", sim.address), extra);
    (sim, data, scheduler)
}

async fn head(api: &str) -> u64 {
    let (status, body) = get(api, "/api/v1/store").await;
    assert_eq!(status, 200, "{body}");
    body["revision"].as_u64().unwrap()
}

async fn wait_snapshot(w: &Watcher) -> u64 {
    wait_for(LIMIT, || async { snapshot_revision(w) })
        .await
        .expect("the watch opens with a snapshot")
}

/// Waits until `w` has read up to what `reference` has, and neither has
/// moved for 2 s.
async fn caught_up(w: &Watcher, reference: &Watcher) {
    let deadline = Instant::now() + LIMIT;
    let mut last = (usize::MAX, Instant::now());
    loop {
        let (mine, theirs) = (w.changes(), reference.changes());
        if theirs.len() != last.0 {
            last = (theirs.len(), Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2)
            && mine.last().map(|e| e.id) == theirs.last().map(|e| e.id)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the watchers did not catch up: {} vs {} changes",
            mine.len(),
            theirs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_killed_mid_stream_resumes_from_its_revision_and_misses_and_repeats_nothing() {
    // 20 agents of 4 cpus: the 2,000 pods run in waves, so the changes
    // come over several seconds.
    let (_sim, dir, scheduler) = start(20, &[]);
    let api = scheduler.address.clone();
    let reference = Watcher::start(&api, "", dir.path().join("reference.sse"));
    let start = wait_snapshot(&reference).await;
    let mut victim = Watcher::start(
        &api,
        &format!("?since={start}"),
        dir.path().join("victim.sse"),
    );

    create_job(&api, "churn", batch(2000)).await;
    wait_for(LIMIT, || async {
        (victim.changes().len() >= 5).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the victim reads changes: {:?}",
            std::fs::read_to_string(&victim.file)
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect::<String>()
        )
    });
    victim.kill();
    let before = victim.changes();
    let resume_from = before.last().unwrap().id.unwrap();
    // Resumed as a browser's EventSource does: Last-Event-ID.
    let resumed_file = dir.path().join("resumed.sse");
    let out = std::fs::File::create(&resumed_file).unwrap();
    let resumed_child = Command::new("curl")
        .args(["-sN", "--no-buffer", "-H"])
        .arg(format!("Last-Event-ID: {resume_from}"))
        .arg(format!("http://{api}/api/v1/watch"))
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let resumed = Watcher {
        child: resumed_child,
        file: resumed_file,
    };

    wait_for_job_state(&api, "churn", "JOB_STATE_SUCCEEDED", LIMIT).await;
    caught_up(&resumed, &reference).await;

    let (after, all) = (resumed.changes(), reference.changes());
    assert!(
        resumed.events().iter().all(|e| e.event != "snapshot"),
        "a resume sends no snapshot"
    );
    assert_increasing(&before, "victim");
    assert_increasing(&after, "resumed");
    assert_increasing(&all, "reference");
    assert!(after[0].id.unwrap() > resume_from);
    let mut joined = before.clone();
    joined.extend(after.iter().cloned());
    assert_eq!(
        joined.len(),
        all.len(),
        "killed + resumed ({} + {}) delivered as many revisions as the reference",
        before.len(),
        after.len()
    );
    assert!(
        joined == all,
        "the same changes, in the same order, once each"
    );
    let states = pod_states(&all);
    assert_eq!(states.len(), 2000);
    assert!(
        states.values().all(|s| s == "POD_STATE_SUCCEEDED"),
        "every pod's last change is its success"
    );
    // Every state a pod went through reached the watcher: at least
    // launched, running and succeeded for each of the 2,000.
    let changes_seen: usize = all
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["pods"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert!(changes_seen >= 3 * 2000, "{changes_seen} pod changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_before_the_window_is_out_of_range_and_one_ahead_is_invalid() {
    let (_sim, _dir, scheduler) = start(10, &["--watch-window", "50"]);
    let api = scheduler.address.clone();
    let start = head(&api).await;
    create_job(&api, "small", batch(40)).await;
    wait_for_job_state(&api, "small", "JOB_STATE_SUCCEEDED", LIMIT).await;

    let (status, body) = get(&api, &format!("/api/v1/watch?since={start}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "OUT_OF_RANGE", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("snapshot"),
        "{body}"
    );

    let ahead = head(&api).await + 1000;
    let (status, body) = get(&api, &format!("/api/v1/watch?since={ahead}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "INVALID_ARGUMENT", "{body}");

    let (status, body) = get(&api, "/api/v1/watch?state=RUNNING").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
}

/// A client that sends its request and then reads nothing until told,
/// with a small receive buffer so that the kernel does not read for it.
fn stalled(api: &str) -> std::net::TcpStream {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let address: std::net::SocketAddrV4 = api.parse().unwrap();
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::from(address)).unwrap();
    let mut socket = std::net::TcpStream::from(fd);
    write!(
        socket,
        "GET /api/v1/watch HTTP/1.1\r\nHost: {api}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    socket
}

/// Everything the server sent, up to and with the `error` event that ends
/// the stream (chunked body decoded loosely: chunk-size lines dropped).
fn read_to_end(mut socket: std::net::TcpStream) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the stalled watcher's stream: {e}"),
        }
        let body = dechunk(body_of(&String::from_utf8_lossy(&raw)));
        let ended = body
            .split_once("event: error")
            .is_some_and(|(_, error)| error.contains("\n\n"));
        if ended || raw.ends_with(b"\r\n0\r\n\r\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled watcher was never cut off ({} bytes read)",
            raw.len()
        );
    }
    dechunk(body_of(&String::from_utf8_lossy(&raw)))
}

fn body_of(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n + 2 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_is_cut_off_with_its_revision_while_another_keeps_up() {
    // More changes than the kernel's socket buffers hold on loopback
    // (a few MB): 5,000 pods, each launched, running and done.
    let (_sim, dir, scheduler) = start(100, &["--watch-max-lag", "3000"]);
    let api = scheduler.address.clone();
    let reference = Watcher::start(&api, "", dir.path().join("reference.sse"));
    wait_snapshot(&reference).await;
    let socket = stalled(&api);
    tokio::time::sleep(Duration::from_millis(300)).await;

    create_job(&api, "churn", batch(5000)).await;
    wait_for_job_state(&api, "churn", "JOB_STATE_SUCCEEDED", LIMIT).await;
    caught_up(&reference, &reference).await;

    let text = tokio::task::spawn_blocking(move || read_to_end(socket))
        .await
        .unwrap();
    let events = parse(&text);
    let last = events.last().expect("the stalled watcher was sent events");
    assert_eq!(last.event, "error", "its stream ends with an error event");
    let error: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(error["code"], "RESOURCE_EXHAUSTED", "{error}");
    let resume = error["revision"].as_u64().unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&format!("revision {resume}")),
        "{error}"
    );
    let delivered: Vec<Sse> = events
        .iter()
        .filter(|e| e.event == "change")
        .cloned()
        .collect();
    let all = reference.changes();
    let upto: Vec<Sse> = all
        .iter()
        .filter(|e| e.id.unwrap() <= resume)
        .cloned()
        .collect();
    assert!(
        delivered == upto,
        "every change up to revision {resume} was delivered, once, in order ({} of {})",
        delivered.len(),
        upto.len()
    );
    assert!(
        upto.len() < all.len(),
        "it was cut off before the end of the changes: resume {resume}, {} delivered, the \
         reference has {} up to {:?}",
        delivered.len(),
        all.len(),
        all.last().and_then(|e| e.id)
    );
    // The other watcher kept up: it has every pod's success.
    let states = pod_states(&all);
    assert_eq!(states.len(), 5000);
    assert!(states.values().all(|s| s == "POD_STATE_SUCCEEDED"));

    // And the cut-off watcher resumes from its revision.
    let resumed = Watcher::start(
        &api,
        &format!("?since={resume}"),
        dir.path().join("resumed.sse"),
    );
    caught_up(&resumed, &reference).await;
    let mut joined = delivered;
    joined.extend(resumed.changes());
    assert!(joined == all, "with its resume, nothing missed or repeated");
}
