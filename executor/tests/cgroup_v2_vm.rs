//! cgroup v2 proven on a v2 kernel: the VM lane.
//!
//! This machine and CI are v1-hybrid hosts, so without this lane the v2
//! manager would only ever meet fixture directories. The host test
//! [`the_v2_lane_passes_on_a_debian_kernel`] boots Debian's kernel under
//! qemu (TCG) through `scripts/v2-vm/run.sh`, with cgroup2 mounted at
//! `/sys/fs/cgroup` and cpu, memory, pids and io enabled, and runs this same
//! binary inside, filtered to the tests in [`on_v2_kernel`]. It fails when
//! any of them fails, when fewer than all of them ran, or when a cgroup is
//! left behind.
//!
//! The tests in `on_v2_kernel` run wherever `/sys/fs/cgroup` is cgroup2 (in
//! the VM, or on a v2 host); on a v1 or hybrid host they print a line saying
//! they are skipped there and that the lane runs them.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drover_executor::container::cgroup::v2::V2Manager;
use drover_executor::container::cgroup::{detect_version, CgroupManager, CgroupVersion};
use drover_executor::container::spawn::{spawn, SpawnSpec};
use drover_executor::container::ResourceLimits;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{value, Resource, TaskState};
use support::executor::{has_terminal, last, task, Executor};
use support::fake_agent::FakeAgent;
use support::{is_dead, require_root, TestParent};

/// How many tests `on_v2_kernel` holds: the lane fails unless all of them
/// ran and passed inside the VM.
const V2_TESTS: usize = 9;
/// The VM's hard bound. A warm run (kernel and initramfs kept in
/// target/v2-vm) takes about 15 s under TCG on two shared cores; the bound
/// leaves room for a first run's download and a loaded CI machine.
const LANE_TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn the_v2_lane_passes_on_a_debian_kernel() {
    if std::env::var_os("DROVER_V2_VM").is_some() {
        // Inside the guest this binary runs only `on_v2_kernel`.
        return;
    }
    require_root();
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<binary>: the kernel and initramfs are kept in
    // target/v2-vm, so a second run downloads and builds nothing.
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/v2-vm/run.sh");
    // The container tests (tests/container.rs) run in the guest too when
    // cargo has built them (it has under `cargo test --workspace`).
    let container = newest_sibling_test(&exe, "container");
    match &container {
        Some(path) => eprintln!("== v2 lane: also runs {}", path.display()),
        None => eprintln!(
            "== v2 lane: tests/container.rs is not built, so it does not run in the guest \
             (cargo test -p drover-executor --test container --no-run builds it)"
        ),
    }
    let started = Instant::now();
    let output = std::process::Command::new(&script)
        .arg(target.join("v2-vm"))
        .arg(LANE_TIMEOUT.as_secs().to_string())
        .args(["/bin/sh", "-c", GUEST_SCRIPT])
        .arg(&exe)
        .arg(container.as_deref().unwrap_or(Path::new("")))
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    let setup = String::from_utf8_lossy(&output.stderr);
    // The whole console goes to the test's output, so CI's log shows the
    // kernel's cgroup2 mount and its controllers.
    eprintln!("{setup}{log}\n== v2 lane: {elapsed:.1?} under TCG");
    let field = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("DROVER-V2-VM-{key}=")))
            .unwrap_or_else(|| panic!("the lane printed no {key} line ({:?})", output.status))
            .to_string()
    };
    assert!(
        field("MOUNTINFO").contains(" /sys/fs/cgroup ")
            && field("MOUNTINFO").contains(" - cgroup2 "),
        "cgroup2 is not what the guest mounted at /sys/fs/cgroup"
    );
    let enabled = field("SUBTREE-CONTROL");
    for controller in ["cpu", "memory", "pids", "io"] {
        assert!(
            enabled.split_whitespace().any(|c| c == controller),
            "{controller} is not enabled in the root's subtree: {enabled}"
        );
    }
    let passed = format!("test result: ok. {V2_TESTS} passed; 0 failed");
    assert!(
        log.contains(&passed),
        "the v2 tests did not all pass in the guest (want {passed:?})"
    );
    if container.is_some() {
        assert_eq!(
            log.matches("test result: ok.").count(),
            2,
            "tests/container.rs did not pass in the guest"
        );
    }
    assert_eq!(field("RC"), "0", "the tests failed in the guest");
    assert_eq!(field("LEFTOVERS"), "none", "cgroups left behind");
    assert!(output.status.success(), "run.sh: {:?}", output.status);
}

/// The v2-only tests, run by the lane inside the guest.
mod on_v2_kernel {
    use super::*;

    #[tokio::test]
    async fn limits_are_written_to_the_v2_files_and_usage_reads_back() {
        let Some(parent) = v2_parent("limits") else {
            return;
        };
        let limits = ResourceLimits {
            cpus: Some(0.5),
            cfs_quota: true,
            mem_bytes: Some(64 << 20),
            pids_max: Some(20),
        };
        let cgroup = start(&parent, "t", &limits);
        let dir = parent.dir("").join("t");
        let file = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(file("cpu.max").trim(), "50000 100000");
        assert_eq!(file("cpu.weight").trim(), "20");
        assert_eq!(file("memory.max").trim(), (64u64 << 20).to_string());
        assert_eq!(file("memory.swap.max").trim(), "0");
        assert_eq!(file("pids.max").trim(), "20");
        let delegated =
            std::fs::read_to_string(parent.dir("").join("cgroup.subtree_control")).unwrap();
        for controller in ["cpu", "memory", "pids"] {
            assert!(
                delegated.split_whitespace().any(|c| c == controller),
                "{controller} not enabled for the task: {delegated}"
            );
        }

        let sandbox = tempfile::tempdir().unwrap();
        // Burn some CPU and touch some memory, then wait to be killed.
        let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
                      x=$(head -c 4000000 /dev/zero | tr '\\0' a); touch busy-done; exec sleep 300";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
        let done = sandbox.path().join("busy-done");
        // Once `touch` has gone too, only the shell's exec'd sleep is left.
        wait_for(
            || done.exists() && cgroup.pids().unwrap().len() == 1,
            "the busy loop to end",
        )
        .await;
        let usage = cgroup.usage().unwrap();
        assert_eq!(usage.processes, 1, "{usage:?}");
        assert_eq!(usage.mem_limit_bytes, Some(64 << 20));
        assert!(usage.mem_bytes > 0, "no memory charged: {usage:?}");
        assert!(
            usage.cpu_user_secs + usage.cpu_system_secs > 0.0,
            "no CPU time charged: {usage:?}"
        );
        finish(cgroup.as_ref());
        child.wait().await.unwrap();
    }

    #[tokio::test]
    async fn a_memory_hog_is_oom_killed_and_memory_events_says_so() {
        let Some(parent) = v2_parent("oom") else {
            return;
        };
        let limits = ResourceLimits {
            mem_bytes: Some(64 << 20),
            ..Default::default()
        };
        let cgroup = start(&parent, "hog", &limits);
        let sandbox = tempfile::tempdir().unwrap();
        // dd allocates one 256 MiB buffer and fills it: four times the limit.
        let hog = "exec dd if=/dev/zero of=/dev/null bs=256M count=1";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), hog)).unwrap();
        let status = child.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "hog exited {status:?}: {}",
            read(sandbox.path(), "stderr")
        );
        let events = std::fs::read_to_string(parent.dir("").join("hog/memory.events")).unwrap();
        assert!(
            !events.contains("oom_kill 0"),
            "the kernel recorded no OOM kill: {events}"
        );
        assert!(
            cgroup.oom_killed().unwrap(),
            "the OOM kill was not detected through memory.events: {events}"
        );
        finish(cgroup.as_ref());
    }

    #[tokio::test]
    async fn a_task_within_its_memory_limit_is_not_called_oom_killed() {
        let Some(parent) = v2_parent("no-oom") else {
            return;
        };
        let limits = ResourceLimits {
            mem_bytes: Some(64 << 20),
            ..Default::default()
        };
        let cgroup = start(&parent, "small", &limits);
        let sandbox = tempfile::tempdir().unwrap();
        let small = "exec dd if=/dev/zero of=/dev/null bs=8M count=1";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), small)).unwrap();
        assert!(child.wait().await.unwrap().success());
        assert!(!cgroup.oom_killed().unwrap(), "an OOM kill that never was");
        finish(cgroup.as_ref());
    }

    #[tokio::test]
    async fn cgroup_kill_ends_the_task_and_its_daemons_and_the_cgroup_goes() {
        let Some(parent) = v2_parent("kill") else {
            return;
        };
        let cgroup = start(&parent, "t", &ResourceLimits::default());
        let dir = parent.dir("").join("t");
        assert!(
            dir.join("cgroup.kill").exists(),
            "this kernel has no cgroup.kill: the lane's kernel should be 5.14+"
        );
        let sandbox = tempfile::tempdir().unwrap();
        let script = "trap '' TERM; ( setsid sleep 300 & echo $! > daemon.pid ); exec sleep 300";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
        let pid_file = sandbox.path().join("daemon.pid");
        wait_for(
            || pid_file.exists() && cgroup.pids().unwrap().len() == 2,
            "the task and its daemon",
        )
        .await;
        let pids = cgroup.pids().unwrap();
        cgroup.kill_all().unwrap();
        assert!(cgroup.pids().unwrap().is_empty());
        cgroup.destroy().unwrap();
        child.wait().await.unwrap();
        for pid in pids {
            wait_for(|| is_dead(pid), "the killed processes to go").await;
        }
        assert!(!dir.exists(), "the cgroup directory is still there");
    }

    #[tokio::test]
    async fn freezing_stops_the_task_and_thawing_resumes_it() {
        let Some(parent) = v2_parent("freeze") else {
            return;
        };
        let cgroup = start(&parent, "t", &ResourceLimits::default());
        let manager = V2Manager::new(&parent.config.root, &parent.config.parent.join("t"));
        let sandbox = tempfile::tempdir().unwrap();
        // A builtin-only loop: it never forks, it only counts.
        let script = "i=0; while :; do i=$((i+1)); echo $i > count; done";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
        let count = || std::fs::read_to_string(sandbox.path().join("count")).unwrap_or_default();
        wait_for(|| !count().is_empty(), "the loop to start counting").await;

        manager.freeze().unwrap();
        let events = std::fs::read_to_string(manager.dir().join("cgroup.events")).unwrap();
        assert!(events.contains("frozen 1"), "not frozen: {events}");
        let at_freeze = count();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(count(), at_freeze, "the loop kept counting while frozen");

        manager.thaw().unwrap();
        wait_for(
            || count() != at_freeze,
            "the loop to count again after thaw",
        )
        .await;
        finish(cgroup.as_ref());
        child.wait().await.unwrap();
    }

    #[tokio::test]
    async fn the_freeze_fallback_kills_a_forking_task_to_the_last_process() {
        let Some(parent) = v2_parent("freeze-kill") else {
            return;
        };
        let limits = ResourceLimits {
            pids_max: Some(40),
            ..Default::default()
        };
        let cgroup = start(&parent, "t", &limits);
        let manager = V2Manager::new(&parent.config.root, &parent.config.parent.join("t"));
        let sandbox = tempfile::tempdir().unwrap();
        // Forks for as long as it lives, held to 40 processes by pids.max.
        let script = "touch started; while :; do sleep 300 & done";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
        let started = sandbox.path().join("started");
        wait_for(
            || started.exists() && cgroup.pids().unwrap().len() > 5,
            "the task to fork",
        )
        .await;
        manager.kill_by_freezing().unwrap();
        assert!(cgroup.pids().unwrap().is_empty());
        cgroup.destroy().unwrap();
        child.wait().await.unwrap();
        assert!(!manager.dir().exists());
    }

    #[tokio::test]
    async fn the_pids_limit_holds_a_fork_loop_and_pids_events_counts_it() {
        let Some(parent) = v2_parent("pids") else {
            return;
        };
        let limits = ResourceLimits {
            pids_max: Some(20),
            ..Default::default()
        };
        let cgroup = start(&parent, "bomb", &limits);
        let sandbox = tempfile::tempdir().unwrap();
        // Bounded: 100 background sleeps at most, far fewer than a real bomb.
        let bomb = "i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); done; echo looped; wait";
        let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), bomb)).unwrap();
        wait_for(
            || {
                read(sandbox.path(), "stdout").contains("looped")
                    || child.try_wait().unwrap().is_some()
            },
            "the bounded fork loop to end",
        )
        .await;
        let held = cgroup.pids().unwrap().len();
        assert!(held <= 20, "{held} processes in a cgroup limited to 20");
        let events = std::fs::read_to_string(parent.dir("").join("bomb/pids.events")).unwrap();
        assert!(
            events.trim() != "max 0",
            "pids.events counted no refused fork: {events}"
        );
        finish(cgroup.as_ref());
        assert!(cgroup.pids().unwrap().is_empty());
        child.wait().await.unwrap();
    }

    #[tokio::test]
    async fn the_executor_fails_a_memory_hog_with_the_memory_limitation_reason() {
        let Some(parent) = v2_parent("e2e-oom") else {
            return;
        };
        let agent = FakeAgent::start(true, false).await;
        let mut executor = Executor::start(
            &agent.endpoint(),
            &parent,
            &[("DROVER_EXECUTOR_MODE", "command")],
        );
        agent
            .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
            .await;
        let mut hog = task("hog", "exec dd if=/dev/zero of=/dev/null bs=256M count=1");
        hog.resources = vec![Resource {
            name: "mem".into(),
            scalar: Some(value::Scalar { value: 64.0 }),
            ..Default::default()
        }];
        agent.launch(hog);
        agent
            .wait_until("terminal update", has_terminal("hog"))
            .await;
        let failed = agent.with_record(|r| last(&r.updates, "hog"));
        assert_eq!(failed.state(), TaskState::TaskFailed, "{failed:?}");
        assert_eq!(
            failed.reason,
            Some(Reason::ContainerLimitationMemory as i32),
            "{failed:?}\n{}",
            executor.log()
        );
        assert!(executor.exit().await.success(), "{}", executor.log());
        assert!(parent.children().is_empty(), "{:?}", parent.children());
    }

    #[tokio::test]
    async fn the_executor_kills_a_task_ignoring_sigterm_and_leaves_no_cgroup() {
        let Some(parent) = v2_parent("e2e-kill") else {
            return;
        };
        let agent = FakeAgent::start(true, true).await;
        let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
        agent
            .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
            .await;
        let script =
            "trap '' TERM; ( setsid sleep 300 & ); touch ready; while :; do sleep 0.1; done";
        agent.launch(task("stubborn", script));
        let ready = executor.sandbox.path().join("tasks/task.stubborn/ready");
        wait_for(|| ready.exists(), "the task to trap SIGTERM").await;
        agent.kill("stubborn", Some(Duration::from_millis(500)));
        agent
            .wait_until("TASK_KILLED", has_terminal("stubborn"))
            .await;
        let killed = agent.with_record(|r| last(&r.updates, "stubborn"));
        assert_eq!(killed.state(), TaskState::TaskKilled, "{killed:?}");
        assert!(
            killed.message.as_deref().unwrap_or("").contains("SIGKILL"),
            "SIGTERM was ignored, so SIGKILL ended it: {killed:?}"
        );
        assert!(parent.children().is_empty(), "{:?}", parent.children());
        agent.shutdown();
        assert!(executor.exit().await.success(), "{}", executor.log());
    }
}

/// What the guest runs: this binary's v2 tests, then (when built) the
/// container tests, stopping at the first failure.
const GUEST_SCRIPT: &str = r#"set -e
"$0" on_v2_kernel:: --test-threads=2
if [ -n "$1" ]; then "$1" --test-threads=2; fi"#;

/// The most recently built `<name>-<hash>` test binary beside `exe` (cargo
/// gives a test no path to another test target).
fn newest_sibling_test(exe: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}-");
    std::fs::read_dir(exe.parent()?)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&prefix)
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max()
        .map(|(_, path)| path)
}

/// A test parent on the cgroup2 root, or `None` (with a line saying why)
/// on a host whose `/sys/fs/cgroup` is not cgroup2. Inside the lane's guest
/// a missing cgroup2 is a failure, never a skip.
fn v2_parent(name: &str) -> Option<TestParent> {
    let in_lane = std::env::var_os("DROVER_V2_VM").is_some();
    let root = PathBuf::from("/sys/fs/cgroup");
    let v2 = detect_version(&root).ok() == Some(CgroupVersion::V2);
    if !v2 && !in_lane {
        eprintln!(
            "skipped here: /sys/fs/cgroup is not cgroup2; the_v2_lane_passes_on_a_debian_kernel \
             runs this test in a v2 guest"
        );
        return None;
    }
    assert!(v2, "inside the v2 lane, but /sys/fs/cgroup is not cgroup2");
    Some(TestParent::v2(name))
}

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn spec(dir: &Path, script: &str) -> SpawnSpec {
    let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    SpawnSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), PATH.into())],
        cwd: dir.to_path_buf(),
        user: None,
        namespaces: false,
        join_namespaces_of: None,
        rootfs: None,
        stdout: Some(stdout.into()),
        stderr: Some(stderr.into()),
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn start(parent: &TestParent, name: &str, limits: &ResourceLimits) -> Box<dyn CgroupManager> {
    let cgroup = parent.config.manager(name);
    cgroup.create().unwrap();
    cgroup.apply(limits).unwrap();
    cgroup
}

fn finish(cgroup: &dyn CgroupManager) {
    cgroup.kill_all().unwrap();
    cgroup.destroy().unwrap();
}

/// Polls `done` for 60 s at most (TCG is slow), then fails naming `what`.
async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
