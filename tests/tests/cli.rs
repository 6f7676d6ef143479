//! The `drover` binary against the real scheduler (and agent simulator),
//! all on loopback port 0: create from YAML, line-accurate spec errors,
//! get/list as JSON, stop/start, watch to SUCCEEDED, API errors, and the
//! quickstart a new user runs (the README's command), bounded by
//! `--duration` and stopped with Ctrl-C (SIGINT); Kubeflow pipeline runs
//! (`drover run`) created, watched, listed, terminated, retried, archived
//! and deleted, their steps run by simulated agents.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::scheduler::Scheduler;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn drover_bin() -> PathBuf {
    binaries::drover()
}

/// Runs `drover --addr ADDR args...`: (exit code, stdout, stderr). Killed
/// (by its pid) after 60 s. Its output is read while it runs: a command
/// that writes more than a pipe holds (a completion script does) would
/// otherwise wait for a reader that waits for it to exit.
fn drover(addr: &str, args: &[&str]) -> (i32, String, String) {
    drover_as(addr, None, args)
}

/// [`drover`] with `DROVER_TOKEN` set to `token`, if any. Neither runs
/// with the user's own config file.
fn drover_as(addr: &str, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(drover_bin());
    command
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("DROVER_ADDR")
        .env_remove("DROVER_TOKEN")
        .env("DROVER_CONFIG", "/nonexistent/drover-config.yaml");
    if let Some(token) = token {
        command.env("DROVER_TOKEN", token);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            finished.recv().unwrap()
        }
    }
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(addr: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = drover(addr, &all);
    assert_eq!(code, 0, "drover {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn cluster(dir: &Path) -> (AgentSim, Scheduler, String) {
    let sim = AgentSim::for_scheduler(3).start();
    let master = format!("http://{}", sim.address);
    let s = Scheduler::start(dir, &master, &[]);
    let addr = format!("http://{}", s.address);
    (sim, s, addr)
}

const SERVICE: &str = "\
type: SERVICE
name: web
instance_count: 2
default_spec:
  containers:
    - resource:
        cpu_limit: 0.1
        mem_limit_mb: 32
      command:
        value: serve forever
  kill_grace_period_seconds: 1
";

#[test]
fn jobs_are_created_from_yaml_listed_as_json_stopped_and_started() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(dir.path(), "web.yaml", SERVICE);

    let (code, out, err) = drover(&addr, &["job", "create", &spec, "--id", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created job web"), "{out}");
    // The API's own errors come out as CODE: message.
    let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", "web"]);
    assert_ne!(code, 0);
    assert!(err.starts_with("error: ALREADY_EXISTS: "), "{err}");

    let job = json_of(&addr, &["job", "get", "web"]);
    assert_eq!(job["job_info"]["spec"]["name"], "web", "{job}");
    let list = json_of(&addr, &["job", "list"]);
    let ids: Vec<_> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"]["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["web".to_owned()], "{list}");

    let (code, out, err) = drover(&addr, &["job", "watch", "web", "--until", "running"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 running"), "{out}");
    let (code, table, _) = drover(&addr, &["job", "get", "web"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("web-0") && table.contains("RUNNING"),
        "{table}"
    );
    let pod = json_of(&addr, &["pod", "get", "web-1"]);
    assert_eq!(
        pod["current"]["status"]["state"], "POD_STATE_RUNNING",
        "{pod}"
    );
    let (code, events, _) = drover(&addr, &["pod", "events", "web-0"]);
    assert_eq!(code, 0);
    assert!(
        events.contains("LAUNCHING") && events.contains("TASK_RUNNING"),
        "{events}"
    );

    let (code, out, err) = drover(&addr, &["job", "stop", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job web stopping"), "{out}");
    // A stopped job ends KILLED: watch reports it, and exits 1.
    let (code, out, _) = drover(&addr, &["job", "watch", "web"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.trim_end().ends_with("KILLED"), "{out}");
    let stopped = json_of(&addr, &["job", "get", "web"]);
    assert_eq!(stopped["job_info"]["status"]["state"], "JOB_STATE_KILLED");

    let (code, _, err) = drover(&addr, &["job", "start", "web"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = drover(&addr, &["job", "watch", "web", "--until", "running"]);
    assert_eq!(code, 0, "{out}");

    let (code, _, err) = drover(&addr, &["job", "delete", "web", "--force"]);
    assert_eq!(code, 0, "{err}");
    // The job goes once its pods are down.
    let gone = (0..200).find_map(|_| {
        let (code, _, err) = drover(&addr, &["job", "get", "web"]);
        if code != 0 {
            return Some((code, err));
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let (code, err) = gone.expect("the deleted job is still there after 20 s");
    assert_eq!(code, 1);
    assert!(err.starts_with("error: NOT_FOUND: "), "{err}");
}

#[test]
fn a_service_is_updated_after_its_diff_watched_to_the_end_scaled_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(
        dir.path(),
        "web.yaml",
        &SERVICE.replace("instance_count: 2", "instance_count: 3"),
    );
    let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", "web", "--watch"]);
    assert_eq!(code, 0, "{err}");
    let v2 = write(
        dir.path(),
        "web-v2.yaml",
        &SERVICE
            .replace("instance_count: 2", "instance_count: 3")
            .replace("serve forever", "serve forever, v2"),
    );
    // Not a terminal, so it will not ask: --yes is needed, and nothing
    // changes without it.
    let (code, out, err) = drover(&addr, &["job", "update", "web", &v2]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--yes"), "{err}");
    assert!(
        out.contains("updated (replaced)              3  0-2"),
        "{out}"
    );
    let (code, out, err) = drover(
        &addr,
        &[
            "job",
            "update",
            "web",
            &v2,
            "--yes",
            "--batch-size",
            "1",
            "--watch",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("job web updating to version 2"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.contains("update SUCCEEDED: batch 3/3, 3/3 updated, 0 failed"),
        "{out}"
    );
    let pods = json_of(&addr, &["job", "get", "web"]);
    assert_eq!(
        pods["job_info"]["status"]["spec_version"]["value"], "2",
        "{pods}"
    );
    let (code, history, _) = drover(&addr, &["job", "history", "web"]);
    assert_eq!(code, 0);
    assert!(
        history.contains("SUCCEEDED") && history.contains("1 -> 2"),
        "{history}"
    );
    // Nothing to pause once it ended.
    let (code, _, err) = drover(&addr, &["job", "pause", "web"]);
    assert_ne!(code, 0);
    assert!(err.starts_with("error: FAILED_PRECONDITION: "), "{err}");
    let (code, out, err) = drover(&addr, &["job", "scale", "web", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("job web: scale"), "{out}");
    let (code, out, err) = drover(&addr, &["job", "rollback", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ROLLING_BACKWARD"), "{out}");
    let (code, out, err) = drover(&addr, &["job", "watch", "web", "--until", "updated"]);
    // A rollback ends ROLLED_BACK: the update did not stand, exit 1.
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("update ROLLED_BACK"), "{out}");
    let job = json_of(&addr, &["job", "get", "web"]);
    assert_eq!(job["job_info"]["spec"]["instance_count"], 1, "{job}");
    assert_eq!(
        job["job_info"]["status"]["spec_version"]["value"], "1",
        "{job}"
    );
}

#[test]
fn watch_follows_a_batch_job_to_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(
        dir.path(),
        "batch.json",
        r#"{"type": "BATCH", "name": "b", "instance_count": 3, "default_spec": {
            "containers": [{"resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
            "command": {"value": "sleep 1"}}]}}"#,
    );
    let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", "b"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = drover(&addr, &["job", "watch", "b", "--interval-ms", "100"]);
    assert_eq!(code, 0, "{out}{err}");
    let last = out.lines().last().unwrap();
    assert!(
        last.contains("3/3 done") && last.ends_with("SUCCEEDED"),
        "{out}"
    );
    assert!(last.contains("[##############################]"), "{last}");
    // Not a terminal: one line per change, never the same line twice in a row.
    let lines: Vec<_> = out.lines().collect();
    assert!(lines.windows(2).all(|w| w[0] != w[1]), "{out}");
}

#[test]
fn pod_events_follow_prints_each_new_event_as_it_happens_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(dir.path(), "web.yaml", SERVICE);
    let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", "web"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = drover(&addr, &["job", "watch", "web", "--until", "running"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut child = Command::new(drover_bin())
        .args(["--addr", &addr, "pod", "events", "web-0", "--follow"])
        .env_remove("DROVER_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    let wait_line = |want: &str| -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(want) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {want:?} from pod events --follow"),
            }
        }
    };
    wait_line("RUNNING");
    let (code, _, err) = drover(&addr, &["pod", "stop", "web-0"]);
    assert_eq!(code, 0, "{err}");
    // Printed as it happens, without a second command: the kill.
    let killed = wait_line("KILL");
    assert!(killed.contains("web-0-0"), "{killed}");
    interrupt(child.id());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(130),
        "Ctrl-C ends the follow"
    );
}

#[test]
fn malformed_specs_are_refused_naming_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    // No scheduler: the spec is checked before anything is sent.
    let addr = "http://127.0.0.1:9";
    let syntax = write(
        dir.path(),
        "syntax.yaml",
        &SERVICE.replace("name: web", "name: [web"),
    );
    let (code, _, err) = drover(addr, &["job", "create", &syntax]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with(&format!("error: {syntax}:")), "{err}");

    let unknown = write(
        dir.path(),
        "unknown.yaml",
        &SERVICE.replace("mem_limit_mb: 32", "mem_limit_mb: 32\n        cpus: 2"),
    );
    let (code, _, err) = drover(addr, &["job", "create", &unknown]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{unknown}:9:")), "{err}");
    assert!(
        err.contains("default_spec.containers[0].resource.cpus"),
        "{err}"
    );
    assert!(err.contains("unknown field `cpus`"), "{err}");

    let negative = write(
        dir.path(),
        "negative.yaml",
        &SERVICE.replace("cpu_limit: 0.1", "cpu_limit: -1"),
    );
    let (code, _, err) = drover(addr, &["job", "create", &negative]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{negative}:7:20:")), "{err}");
    assert!(
        err.contains("7 |         cpu_limit: -1"),
        "the line is quoted: {err}"
    );

    // A valid spec against no scheduler: a readable connection error.
    let good = write(dir.path(), "good.yaml", SERVICE);
    let (code, _, err) = drover(addr, &["job", "create", &good]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot reach http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn completion_scripts_are_printed() {
    let (code, out, _) = drover("http://127.0.0.1:9", &["completion", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("_drover()") && out.contains("quickstart"),
        "{out}"
    );
}

/// Builds drover-executor beside our binaries (when missing) so the
/// quickstart can start a real agent; answers whether it is there.
fn executor_built() -> bool {
    binaries::executor().exists()
}

/// Sends SIGINT (Ctrl-C) to `pid`.
fn interrupt(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn the_quickstart_runs_a_service_and_a_batch_job_and_cleans_up_on_ctrl_c() {
    binaries::agent_sim();
    let real = executor_built();
    let mut child = Command::new(drover_bin())
        .args(["quickstart", "--duration", "50secs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let quickstart_pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = Vec::new();
    let mut addr = None;
    let mut token = None;
    let mut pids = Vec::new();
    let start = Instant::now();
    while (addr.is_none() || token.is_none()) && start.elapsed() < Duration::from_secs(40) {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(rest) = line.split("pid ").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            pids.push(digits.parse::<i32>().unwrap());
        }
        if line.starts_with("scheduler: ") {
            addr = line.split_whitespace().nth(1).map(str::to_owned);
        }
        // "login:     token T (DROVER_TOKEN); web UI user admin, password P"
        if line.starts_with("login: ") {
            token = line.split_whitespace().nth(2).map(str::to_owned);
        }
        out.push(line);
    }
    let addr = addr.unwrap_or_else(|| panic!("no scheduler address: {out:?}"));
    let token = token.unwrap_or_else(|| panic!("no token printed: {out:?}"));
    // The quickstart's scheduler is authenticated, as any other.
    let (code, _, err) = drover(&addr, &["job", "get", "batch-hello"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("UNAUTHENTICATED") && err.contains("DROVER_TOKEN"),
        "{err}"
    );

    // What the user sees with the CLI while the quickstart runs.
    let get = |id: &str| {
        let (_, out, _) = drover_as(&addr, Some(&token), &["--output", "json", "job", "get", id]);
        serde_json::from_str::<Value>(&out).unwrap_or(Value::Null)
    };
    let reached = (0..300).find_map(|_| {
        if child.try_wait().unwrap().is_some() {
            return Some((Value::Null, Value::Null));
        }
        let batch = get("batch-hello");
        let service = get("service-web");
        let states = (
            batch["job_info"]["status"]["state"].clone(),
            service["job_info"]["status"]["pod_stats"]["POD_STATE_RUNNING"].clone(),
        );
        if states.0 == "JOB_STATE_SUCCEEDED" && states.1 == 2 {
            return Some(states);
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let service = get("service-web");
    // Ctrl-C once the quickstart itself has seen both jobs through.
    let shown = Instant::now() + Duration::from_secs(20);
    while Instant::now() < shown && !out.iter().any(|l| l.contains("stops after")) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            out.push(line);
        }
    }
    if child.try_wait().unwrap().is_none() {
        interrupt(quickstart_pid);
    }
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.wait();
    reader.join().unwrap();
    out.extend(rx.try_iter());
    let text = out.join("\n");
    for pid in &pids {
        if alive(*pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("process {pid} outlived the quickstart:\n{text}");
        }
    }
    assert!(
        reached.is_some_and(|r| !r.0.is_null()),
        "batch SUCCEEDED and 2 service pods RUNNING never seen: {service}\n{text}"
    );
    assert_eq!(
        service["job_info"]["status"]["state"], "JOB_STATE_RUNNING",
        "{service}"
    );
    let status = status.unwrap_or_else(|| panic!("quickstart did not stop on SIGINT:\n{text}"));
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("batch job batch-hello SUCCEEDED"), "{text}");
    assert!(text.contains("service job service-web RUNNING"), "{text}");
    let dir = format!("/tmp/drover-quickstart-{quickstart_pid}");
    assert!(text.contains(&format!("removed {dir}")), "{text}");
    assert!(!Path::new(&dir).exists());
    if real && nix::unistd::geteuid().is_root() && !text.contains("without real agents") {
        assert!(text.contains("+ 1 real agents"), "{text}");
    }
    assert_eq!(pids.len(), 2, "agent-sim and scheduler pids: {text}");
}

/// The id in `drover -o json job create`'s answer.
fn created_id(addr: &str, spec: &str, extra: &[&str]) -> String {
    let mut args = vec!["job", "create", spec];
    args.extend_from_slice(extra);
    let answer = json_of(addr, &args);
    answer["job_id"]["value"].as_str().unwrap().to_owned()
}

#[test]
fn jobs_are_found_by_name_everywhere_an_id_is_typed_and_the_id_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(
        dir.path(),
        "service-web.yaml",
        &SERVICE.replace("name: web", "name: service-web"),
    );
    // Created without --id: its id is a generated UUID.
    let first = created_id(&addr, &spec, &[]);
    assert_ne!(first, "service-web");

    let job = json_of(&addr, &["job", "get", "service-web"]);
    assert_eq!(job["job_info"]["job_id"]["value"], first, "{job}");
    let (code, out, err) = drover(
        &addr,
        &["job", "watch", "service-web", "--until", "running"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, table, err) = drover(&addr, &["job", "get", "service-web"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(&format!("{first}-1")), "{table}");
    let pods = json_of(&addr, &["pod", "list", "service-web"]);
    assert_eq!(pods["pods"].as_array().unwrap().len(), 2, "{pods}");
    let running = json_of(&addr, &["pod", "list", "service-web", "--state", "RUNNING"]);
    assert_eq!(running["pods"].as_array().unwrap().len(), 2, "{running}");
    for (verb, said) in [
        ("restart", "restarting"),
        ("stop", "stopping"),
        ("start", "starting"),
    ] {
        let (code, out, err) = drover(&addr, &["job", verb, "service-web"]);
        assert_eq!(code, 0, "{verb}: {err}");
        assert!(out.contains(&format!("job service-web {said}")), "{out}");
    }
    let (code, out, err) = drover(&addr, &["job", "delete", "service-web", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let gone = (0..200).find_map(|_| {
        let (code, _, err) = drover(&addr, &["job", "get", &first]);
        if code != 0 {
            return Some((code, err));
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let (code, err) = gone.expect("the job deleted by name is still there after 20 s");
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = drover(&addr, &["job", "get", "service-web"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: NOT_FOUND: ") && err.contains("service-web"),
        "{err}"
    );

    // Names are not unique: a name two jobs share is refused, listing both.
    let a = created_id(&addr, &spec, &[]);
    let b = created_id(&addr, &spec, &[]);
    let (code, _, err) = drover(&addr, &["job", "get", "service-web"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: INVALID_ARGUMENT: "), "{err}");
    assert!(err.contains(&a) && err.contains(&b), "{err}");
    let (code, _, err) = drover(&addr, &["job", "stop", "service-web"]);
    assert_eq!(code, 2, "{err}");

    // A job whose id is another job's name: the id wins.
    let other = write(dir.path(), "other.yaml", SERVICE);
    let id = created_id(&addr, &other, &["--id", "service-web"]);
    assert_eq!(id, "service-web");
    let job = json_of(&addr, &["job", "get", "service-web"]);
    assert_eq!(job["job_info"]["job_id"]["value"], "service-web", "{job}");
    assert_eq!(job["job_info"]["spec"]["name"], "web", "{job}");
}

#[test]
fn job_list_filters_by_state_in_any_spelling_and_refuses_unknown_states() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let spec = write(dir.path(), "web.yaml", SERVICE);
    let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", "web"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = drover(&addr, &["job", "watch", "web", "--until", "running"]);
    assert_eq!(code, 0, "{out}{err}");

    for state in [
        "RUNNING",
        "running",
        "JOB_STATE_RUNNING",
        "job_state_running",
    ] {
        let (code, table, err) = drover(&addr, &["job", "list", "--state", state]);
        assert_eq!(code, 0, "{state}: {err}");
        assert!(
            table.lines().any(|l| l.starts_with("web ")),
            "--state {state}:\n{table}"
        );
    }
    let none = json_of(&addr, &["job", "list", "--state", "SUCCEEDED"]);
    assert_eq!(none["records"], serde_json::json!([]), "{none}");

    let (code, out, err) = drover(&addr, &["job", "list", "--state", "RUNNNING"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no table for a bad state: {out}");
    assert!(err.starts_with("error: INVALID_ARGUMENT: "), "{err}");
    assert!(
        err.contains("RUNNNING") && err.contains("RUNNING") && err.contains("SUCCEEDED"),
        "the valid states are named: {err}"
    );
    let (code, out, err) = drover(&addr, &["pod", "list", "web", "--state", "UP"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.starts_with("error: INVALID_ARGUMENT: ")
            && err.contains("'UP' is not a pod state")
            && err.contains("RUNNING"),
        "{err}"
    );
}

#[test]
fn job_list_says_when_it_shows_a_page_of_a_longer_list() {
    let dir = tempfile::tempdir().unwrap();
    // No master: the jobs are stored and wait, which is all a list needs.
    let s = Scheduler::start(dir.path(), "http://127.0.0.1:1", &[]);
    let addr = format!("http://{}", s.address);
    let spec = write(dir.path(), "web.yaml", SERVICE);
    for id in ["a", "b", "c"] {
        let (code, _, err) = drover(&addr, &["job", "create", &spec, "--id", id]);
        assert_eq!(code, 0, "{err}");
    }

    let (code, table, err) = drover(&addr, &["job", "list", "--limit", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(table.lines().count(), 4, "header, 2 jobs, footer:\n{table}");
    assert_eq!(
        table.lines().last().unwrap(),
        "showing 1-2 of 3 jobs; --offset 2 for more",
        "{table}"
    );
    let (code, table, _) = drover(&addr, &["job", "list", "--limit", "2", "--offset", "2"]);
    assert_eq!(code, 0);
    assert_eq!(
        table.lines().last().unwrap(),
        "showing 3-3 of 3 jobs",
        "{table}"
    );
    let (code, table, _) = drover(&addr, &["job", "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        table.lines().count(),
        4,
        "a whole list has no footer:\n{table}"
    );

    // The same JSON shape with and without filters.
    let plain = json_of(&addr, &["job", "list", "--limit", "2"]);
    let filtered = json_of(&addr, &["job", "list", "--limit", "2", "--name", "web"]);
    for answer in [&plain, &filtered] {
        let mut keys: Vec<_> = answer.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["pagination", "records"], "{answer}");
        assert_eq!(answer["records"].as_array().unwrap().len(), 2, "{answer}");
        assert_eq!(
            answer["pagination"],
            serde_json::json!({"offset": 0, "limit": 2, "total": 3, "next_offset": 2}),
            "{answer}"
        );
    }
    let last = json_of(&addr, &["job", "list", "--offset", "2"]);
    assert_eq!(
        last["pagination"],
        serde_json::json!({"offset": 2, "limit": 100, "total": 3}),
        "no next page: {last}"
    );
}

/// `drover job list | head -1`: the reader goes away before drover writes,
/// and drover ends quietly, as `ls` would, rather than panicking with
/// "failed printing to stdout: Broken pipe".
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        &dir.path().join("data"),
        &format!("http://{}", sim.address),
        &[],
    );
    let mut child = Command::new(drover_bin())
        .args(["--addr", &s.address, "job", "list"])
        .env_remove("DROVER_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{:?}: {stderr}",
        out.status
    );
}

/// A Kubeflow pipeline as the kfp SDK compiles one (an Argo Workflow):
/// `first`, then `left` and `right` at once, then `join`; each step
/// sleeps `secs` (a pipeline argument), which simulated agents run.
const FORK_PIPELINE: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: cli-fork-}
spec:
  entrypoint: fork
  arguments:
    parameters:
    - {name: secs, value: '0.1'}
  templates:
  - name: fork
    inputs:
      parameters:
      - {name: secs}
    dag:
      tasks:
      - name: first
        template: step
        arguments: {parameters: [{name: s, value: '{{inputs.parameters.secs}}'}]}
      - name: left
        template: step
        dependencies: [first]
        arguments: {parameters: [{name: s, value: '{{inputs.parameters.secs}}'}]}
      - name: right
        template: step
        dependencies: [first]
        arguments: {parameters: [{name: s, value: '{{inputs.parameters.secs}}'}]}
      - name: join
        template: step
        dependencies: [left, right]
        arguments: {parameters: [{name: s, value: '{{inputs.parameters.secs}}'}]}
  - name: step
    inputs:
      parameters:
      - {name: s}
    container:
      image: python:3.9
      command: [sleep, '{{inputs.parameters.s}}']
";

/// The run id `drover run create` printed.
fn created_run(out: &str) -> String {
    out.strip_prefix("created run ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run created: {out}"))
        .to_owned()
}

#[test]
fn pipeline_runs_are_created_watched_listed_and_terminated_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    let pipeline = write(dir.path(), "fork.yaml", FORK_PIPELINE);

    let (code, out, err) = drover(
        &addr,
        &[
            "run",
            "create",
            &pipeline,
            "-p",
            "secs=0.3",
            "--name",
            "cli fork",
            "--experiment",
            "Default",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = created_run(&out);
    assert!(out.contains("(cli fork)"), "{out}");

    // The watch shows each step's phase as it changes, and ends with
    // the run: exit 0 when it Succeeded.
    let (code, out, err) = drover(&addr, &["run", "watch", &id, "--interval-ms", "100"]);
    assert_eq!(code, 0, "{out}{err}");
    for step in ["first", "left", "right", "join"] {
        assert!(out.contains(&format!("Pod {step} Succeeded")), "{out}");
    }
    let last = out.lines().last().unwrap();
    assert_eq!(last, "run Succeeded: 4/4 steps done (Succeeded=4)", "{out}");
    let lines: Vec<_> = out.lines().collect();
    assert!(lines.windows(2).all(|w| w[0] != w[1]), "{out}");

    // The run as the API answers it, the argument passed to the steps.
    let detail = json_of(&addr, &["run", "get", &id]);
    assert_eq!(detail["run"]["status"], "Succeeded", "{detail}");
    assert_eq!(
        detail["run"]["pipeline_spec"]["parameters"][0],
        serde_json::json!({"name": "secs", "value": "0.3"})
    );
    let workflow: Value = serde_json::from_str(
        detail["pipeline_runtime"]["workflow_manifest"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let join = workflow["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["displayName"] == "join")
        .unwrap();
    assert_eq!(join["inputs"]["parameters"][0]["value"], "0.3", "{join}");
    let (code, table, _) = drover(&addr, &["run", "get", &id]);
    assert_eq!(code, 0);
    assert!(
        table.contains("Status:") && table.contains("Succeeded") && table.contains("join"),
        "{table}"
    );
    assert!(
        table.contains(&format!("kfp-{id}-")),
        "each node names its job: {table}"
    );

    // A second run that would go on for a long time.
    let (code, out, err) = drover(
        &addr,
        &[
            "run",
            "create",
            &pipeline,
            "-p",
            "secs=1000",
            "--name",
            "long one",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let long = created_run(&out);

    // Filter, sort and pages, as Kubeflow lists runs.
    let only = json_of(&addr, &["run", "list", "--filter", "name~cli"]);
    assert_eq!(only["total_size"], 1, "{only}");
    assert_eq!(only["runs"][0]["id"], id.as_str(), "{only}");
    let first = json_of(
        &addr,
        &["run", "list", "--sort", "name desc", "--page-size", "1"],
    );
    assert_eq!(first["runs"][0]["name"], "long one", "{first}");
    assert_eq!(first["total_size"], 2, "{first}");
    let token = first["next_page_token"].as_str().unwrap().to_owned();
    let (code, table, _) = drover(
        &addr,
        &["run", "list", "--sort", "name desc", "--page-size", "1"],
    );
    assert_eq!(code, 0);
    assert!(
        table.contains(&format!(
            "showing 1 of 2 runs; --page-token {token} for more"
        )),
        "{table}"
    );
    let second = json_of(
        &addr,
        &[
            "run",
            "list",
            "--sort",
            "name desc",
            "--page-size",
            "1",
            "--page-token",
            &token,
        ],
    );
    assert_eq!(second["runs"][0]["name"], "cli fork", "{second}");
    let in_default = json_of(&addr, &["run", "list", "--experiment", "Default"]);
    assert_eq!(in_default["total_size"], 1, "{in_default}");
    assert_eq!(in_default["runs"][0]["id"], id.as_str(), "{in_default}");
    let running = json_of(&addr, &["run", "list", "--filter", "status!=Succeeded"]);
    assert_eq!(running["runs"][0]["id"], long.as_str(), "{running}");

    // Terminated: the watch sees it end, and exits 1.
    let (code, out, err) = drover(&addr, &["run", "terminate", &long]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("run {long} terminating"));
    let (code, out, _) = drover(&addr, &["run", "watch", &long, "--interval-ms", "100"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("run Failed"),
        "{out}"
    );

    // Errors: the user's, the API's (by their gRPC code's name), and a
    // manifest Drover cannot run, refused naming the field.
    let (code, _, err) = drover(&addr, &["run", "create", &pipeline, "-p", "secs"]);
    assert_eq!(code, 2);
    assert!(err.contains("-p 'secs': expected key=value"), "{err}");
    let (code, _, err) = drover(&addr, &["run", "get", "no-such-run"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: NOT_FOUND: "), "{err}");
    let volumes = FORK_PIPELINE.replacen("spec:\n", "spec:\n  volumes:\n  - {name: data}\n", 1);
    let refused = write(dir.path(), "volumes.yaml", &volumes);
    let (code, _, err) = drover(&addr, &["run", "create", &refused]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: INVALID_ARGUMENT: ") && err.contains("spec.volumes"),
        "{err}"
    );
    let (code, _, err) = drover(&addr, &["run", "create", &pipeline, "--experiment", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--experiment 'nope'"), "{err}");
    let all = json_of(&addr, &["run", "list"]);
    assert_eq!(all["total_size"], 2, "nothing more was stored: {all}");
}

/// `retry`, `archive`, `unarchive` and `delete` (issue 23's run
/// lifecycle, served once the run service has them).
#[test]
fn pipeline_runs_are_retried_archived_unarchived_and_deleted_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, _s, addr) = cluster(dir.path());
    // `first` succeeds, then `boom` fails (the simulated `false`).
    let failing = FORK_PIPELINE
        .replacen("      - name: left\n        template: step", "      - name: left\n        template: boom", 1)
        + "  - name: boom\n    inputs:\n      parameters:\n      - {name: s}\n    container:\n      image: alpine\n      command: ['false']\n";
    let pipeline = write(dir.path(), "failing.yaml", &failing);
    let (code, out, err) = drover(&addr, &["run", "create", &pipeline, "--name", "boom"]);
    assert_eq!(code, 0, "{err}");
    let id = created_run(&out);
    let (code, out, _) = drover(&addr, &["run", "watch", &id, "--interval-ms", "100"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Pod left Failed"), "{out}");
    let job_of = |step: &str| {
        let detail = json_of(&addr, &["run", "get", &id]);
        let workflow: Value = serde_json::from_str(
            detail["pipeline_runtime"]["workflow_manifest"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        workflow["status"]["nodes"]
            .as_object()
            .unwrap()
            .values()
            .find(|n| n["displayName"] == step)
            .map(|n| n["hostNodeName"].clone())
            .unwrap()
    };
    let first_job = job_of("first");

    // Retried: the failed step runs again (and fails again); `first`
    // succeeded and is not run again.
    let (code, out, err) = drover(&addr, &["run", "retry", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("run {id} retrying"));
    let (code, out, _) = drover(&addr, &["run", "watch", &id, "--interval-ms", "100"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(job_of("first"), first_job);

    // Archived: in the archived list, not the available one; and back.
    let in_list = |state: &str| {
        let list = json_of(
            &addr,
            &["run", "list", "--filter", &format!("storage_state={state}")],
        );
        list["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(|r| r["id"] == id.as_str()))
    };
    let (code, _, err) = drover(&addr, &["run", "archive", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(in_list("archived") && !in_list("available"));
    let (code, out, _) = drover(&addr, &["run", "get", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("ARCHIVED"), "{out}");
    let (code, _, err) = drover(&addr, &["run", "unarchive", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(!in_list("archived") && in_list("available"));

    // Deleted: gone.
    let (code, out, err) = drover(&addr, &["run", "delete", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("run {id} deleted"));
    let (code, _, err) = drover(&addr, &["run", "get", &id]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: NOT_FOUND: "), "{err}");
}
