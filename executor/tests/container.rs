//! Root-only tests of the container layer on real cgroups: limits hold,
//! processes join before exec, kills leave nothing behind.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use drover_executor::container::cgroup::CgroupManager;
use drover_executor::container::spawn::{spawn, SpawnError, SpawnSpec, Step};
use drover_executor::container::user::lookup;
use drover_executor::container::ResourceLimits;
use support::{is_dead, TestParent};

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
        rootfs: None,
        stdout: Some(stdout.into()),
        stderr: Some(stderr.into()),
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
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

#[tokio::test]
async fn a_process_is_in_its_cgroup_when_it_execs() {
    let parent = TestParent::new("enter");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "task", &ResourceLimits::default());
    let mut child = spawn(
        cgroup.as_ref(),
        spec(sandbox.path(), "exec cat /proc/self/cgroup"),
    )
    .unwrap();
    assert!(child.wait().await.unwrap().success());
    let membership = read(sandbox.path(), "stdout");
    let expected = format!("{}/task", parent.config.parent.display());
    for controller in ["memory", "pids", "freezer", "cpuacct"] {
        let line = membership
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line in {membership}"));
        assert!(
            line.ends_with(&expected),
            "{controller} line {line:?} is not {expected}"
        );
    }
    finish(cgroup.as_ref());
}

#[tokio::test]
async fn a_memory_hog_is_oom_killed_and_detected() {
    let parent = TestParent::new("oom");
    let sandbox = tempfile::tempdir().unwrap();
    let limits = ResourceLimits {
        mem_bytes: Some(64 << 20),
        ..Default::default()
    };
    let cgroup = start(&parent, "hog", &limits);
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
    assert!(
        cgroup.oom_killed().unwrap(),
        "the OOM kill was not detected (memory.oom_control has no oom_kill count?)"
    );
    finish(cgroup.as_ref());
}

#[tokio::test]
async fn a_fork_bomb_is_held_by_the_pids_limit() {
    let parent = TestParent::new("forkbomb");
    let sandbox = tempfile::tempdir().unwrap();
    let limits = ResourceLimits {
        pids_max: Some(20),
        ..Default::default()
    };
    let cgroup = start(&parent, "bomb", &limits);
    // Bounded: 100 background sleeps at most, far fewer than a real bomb.
    let bomb = "i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); done; echo looped; wait";
    let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), bomb)).unwrap();
    let events = parent.dir("pids").join("bomb/pids.events");
    // Wait for the loop to end (or the shell to die of the failed forks).
    let mut ended = false;
    for _ in 0..2000 {
        if read(sandbox.path(), "stdout").contains("looped") || child.try_wait().unwrap().is_some()
        {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ended, "the bounded fork loop never finished");
    let held = cgroup.pids().unwrap().len();
    assert!(held <= 20, "{held} processes in a cgroup limited to 20");
    let hits = std::fs::read_to_string(&events).unwrap();
    assert!(hits.trim() != "max 0", "pids limit was never hit: {hits}");
    finish(cgroup.as_ref());
    assert!(cgroup.pids().unwrap().is_empty());
    child.wait().await.unwrap();
}

#[tokio::test]
async fn a_task_ignoring_sigterm_survives_it_and_dies_by_kill_all() {
    let parent = TestParent::new("sigterm");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "stubborn", &ResourceLimits::default());
    let script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
    while !read(sandbox.path(), "stdout").contains("ready") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cgroup.signal_all(libc::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the task should have ignored SIGTERM"
    );
    finish(cgroup.as_ref());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn a_daemonizing_task_leaves_no_process_and_no_cgroup() {
    let parent = TestParent::new("daemon");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "daemon", &ResourceLimits::default());
    let script = "( setsid sleep 300 & echo $! > daemon.pid ) ; exit 0";
    let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
    assert!(child.wait().await.unwrap().success());
    let daemon: i32 = read(sandbox.path(), "daemon.pid").trim().parse().unwrap();
    assert!(!is_dead(daemon), "the daemon should outlive its parent");
    assert_eq!(cgroup.pids().unwrap(), vec![daemon]);
    finish(cgroup.as_ref());
    for _ in 0..1000 {
        if is_dead(daemon) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(is_dead(daemon), "daemon {daemon} survived the cgroup kill");
    assert!(!parent.dir("freezer").join("daemon").exists());
    assert!(!parent.dir("memory").join("daemon").exists());
}

#[tokio::test]
async fn limits_land_in_the_real_cgroup_files_and_usage_reads_back() {
    let parent = TestParent::new("limits");
    let limits = ResourceLimits {
        cpus: Some(0.5),
        cfs_quota: true,
        mem_bytes: Some(64 << 20),
        pids_max: Some(20),
    };
    let cgroup = start(&parent, "t", &limits);
    let sandbox = tempfile::tempdir().unwrap();
    let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), "exec sleep 30")).unwrap();
    let usage = cgroup.usage().unwrap();
    assert_eq!(usage.processes, 1);
    assert_eq!(usage.mem_limit_bytes, Some(64 << 20));
    match parent.config.version {
        drover_executor::container::CgroupVersion::V1 => {
            let cpu = parent.dir("cpu").join("t");
            assert_eq!(
                std::fs::read_to_string(cpu.join("cpu.shares"))
                    .unwrap()
                    .trim(),
                "512"
            );
            assert_eq!(
                std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                    .unwrap()
                    .trim(),
                "50000"
            );
        }
        drover_executor::container::CgroupVersion::V2 => {
            let dir = parent.dir("");
            assert_eq!(
                std::fs::read_to_string(dir.join("t/cpu.max"))
                    .unwrap()
                    .trim(),
                "50000 100000"
            );
        }
    }
    finish(cgroup.as_ref());
    child.wait().await.unwrap();
}

#[tokio::test]
async fn exec_and_chdir_failures_are_typed_errors() {
    let parent = TestParent::new("badexec");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "t", &ResourceLimits::default());
    let mut missing = spec(sandbox.path(), "");
    missing.argv = vec!["/no/such/program".into()];
    match spawn(cgroup.as_ref(), missing) {
        Err(SpawnError::Exec { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    let mut bad_cwd = spec(sandbox.path(), "true");
    bad_cwd.cwd = sandbox.path().join("missing");
    match spawn(cgroup.as_ref(), bad_cwd) {
        Err(SpawnError::ChildStep {
            step: Step::Chdir, ..
        }) => {}
        other => panic!("expected a chdir step error, got {other:?}"),
    }
    finish(cgroup.as_ref());
}

#[tokio::test]
async fn a_task_runs_as_its_user_and_in_its_own_namespaces() {
    let parent = TestParent::new("isolation");
    let sandbox = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        sandbox.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let cgroup = start(&parent, "t", &ResourceLimits::default());
    let mut as_nobody = spec(sandbox.path(), "id -u");
    as_nobody.user = Some(lookup("nobody").unwrap().credentials);
    let mut child = spawn(cgroup.as_ref(), as_nobody).unwrap();
    assert!(
        child.wait().await.unwrap().success(),
        "{}",
        read(sandbox.path(), "stderr")
    );
    let uid = read(sandbox.path(), "stdout");
    assert_ne!(uid.trim(), "0");
    assert_eq!(
        uid.trim(),
        nix::unistd::User::from_name("nobody")
            .unwrap()
            .unwrap()
            .uid
            .to_string()
    );

    let mut isolated = spec(sandbox.path(), "echo $$; ls /proc | grep -c '^[0-9]'");
    isolated.namespaces = true;
    let mut child = spawn(cgroup.as_ref(), isolated).unwrap();
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        read(sandbox.path(), "stderr")
    );
    let out = read(sandbox.path(), "stdout");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"2"),
        "not PID 2 (under the namespace's init) in a new PID namespace: {out}"
    );
    let visible: u32 = lines[1].parse().unwrap();
    assert!(
        visible <= 4,
        "/proc was not remounted: {visible} processes visible"
    );
    finish(cgroup.as_ref());
}

#[tokio::test]
async fn cgroup_v2_enters_kills_and_removes() {
    let parent = TestParent::v2("v2");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "t", &ResourceLimits::default());
    let script = "trap '' TERM; ( setsid sleep 300 & ); exec sleep 300";
    let mut child = spawn(cgroup.as_ref(), spec(sandbox.path(), script)).unwrap();
    // The shell briefly counts two processes too (itself and the subshell
    // before it forks), so wait for the settled state: both are `sleep`.
    let both_sleeping = |pids: &[i32]| {
        pids.len() == 2
            && pids.iter().all(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "sleep")
            })
    };
    for _ in 0..1000 {
        if both_sleeping(&cgroup.pids().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pids = cgroup.pids().unwrap();
    assert!(
        both_sleeping(&pids),
        "expected the task and its daemon in the v2 cgroup: {pids:?}"
    );
    finish(cgroup.as_ref());
    child.wait().await.unwrap();
    for pid in pids {
        for _ in 0..1000 {
            if is_dead(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(is_dead(pid), "{pid} survived the v2 kill");
    }
    assert!(!parent.dir("").join("t").exists());
}

#[tokio::test]
async fn in_its_own_pid_namespace_a_task_gets_sigterm_and_its_grace() {
    let parent = TestParent::new("ns-term");
    let sandbox = tempfile::tempdir().unwrap();
    let cgroup = start(&parent, "graceful", &ResourceLimits::default());
    // A child that ignores nothing, to see the signal reach the whole
    // namespace, and a handler that takes its time before exiting cleanly.
    let script = "sleep 300 & echo $! > child.pid; \
                  trap 'sleep 0.2; echo cleaned up; exit 0' TERM; \
                  touch ready; while :; do sleep 0.05; done";
    let mut isolated = spec(sandbox.path(), script);
    isolated.namespaces = true;
    let mut child = spawn(cgroup.as_ref(), isolated).unwrap();
    let ready = sandbox.path().join("ready");
    for _ in 0..2000 {
        if ready.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ready.exists(), "{}", read(sandbox.path(), "stderr"));
    // What the supervisor does for a namespaced task: SIGTERM to its own
    // child, the relay.
    let relay = child.id().unwrap() as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(relay, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the task never ended after SIGTERM")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the task's handler should have run and exited 0, not {status:?}"
    );
    assert_eq!(read(sandbox.path(), "stdout"), "cleaned up\n");
    // The namespace is gone with its init: nothing of the task is left.
    assert!(cgroup.pids().unwrap().is_empty(), "{:?}", cgroup.pids());
    finish(cgroup.as_ref());
}
