//! Root-only tests of an image container's root on real mounts and real
//! cgroups, with layers made here from the host's busybox-static (no image
//! store involved): overlayfs and the copy fallback, `pivot_root`, the
//! minimal `/dev`, `/proc` of the task's PID namespace, `/sys` read-only,
//! the sandbox at `/mnt/mesos/sandbox`, and nothing left mounted after.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use drover_executor::container::rootfs::{assemble, PivotPlan, RootfsKind, RootfsMode};
use drover_executor::container::spawn::{spawn, SpawnError, SpawnSpec};
use drover_executor::container::ResourceLimits;
use support::TestParent;

const BUSYBOX: &str = "/bin/busybox";

/// Two layers: busybox and its applet links below; a file and a deleted
/// lower file above (a plain deletion here: the copy fallback and overlay
/// both see the upper layer's view).
fn layers(dir: &Path) -> Vec<PathBuf> {
    assert!(
        Path::new(BUSYBOX).exists(),
        "these tests need busybox-static (apt-get install busybox-static)"
    );
    let lower = dir.join("lower");
    std::fs::create_dir_all(lower.join("bin")).unwrap();
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    std::fs::copy(BUSYBOX, lower.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "ls", "cat", "echo", "id", "test", "mount", "readlink", "touch", "grep",
    ] {
        std::os::unix::fs::symlink("busybox", lower.join("bin").join(applet)).unwrap();
    }
    std::fs::write(lower.join("etc/lower-only"), "lower\n").unwrap();
    let upper = dir.join("upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("etc/drover-image"), "from the upper layer\n").unwrap();
    vec![lower, upper]
}

/// Flattens by copying each layer over the previous (no whiteouts here).
fn flatten(layers: &[PathBuf], into: &Path) -> Result<(), String> {
    for layer in layers {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", layer.display()))
            .arg(into)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("cp of {} failed", layer.display()));
        }
    }
    Ok(())
}

fn mounted(path: &Path) -> bool {
    let path = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

/// Runs `script` in a container on `layers` assembled by `mode`; returns
/// (kind, exit success, stdout, stderr). Checks the cleanup.
async fn run(mode: RootfsMode, name: &str, script: &str) -> (RootfsKind, bool, String, String) {
    let parent = TestParent::new(name);
    let work = tempfile::tempdir().unwrap();
    let layers = layers(&work.path().join("layers"));
    let sandbox = work.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::set_permissions(&sandbox, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(sandbox.join("from-host"), "sandbox file\n").unwrap();
    let base = work.path().join("container");
    let mut rootfs = assemble(&layers, &base, mode, &flatten).unwrap();
    assert!(mounted(rootfs.root()), "the root is a mount point");
    let cgroup = parent.config.manager("task");
    cgroup.create().unwrap();
    cgroup.apply(&ResourceLimits::default()).unwrap();
    let spec = SpawnSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/bin".into())],
        cwd: "/mnt/mesos/sandbox".into(),
        user: None,
        namespaces: true,
        join_namespaces_of: None,
        rootfs: Some(PivotPlan::new(rootfs.root(), &sandbox).unwrap()),
        stdout: Some(
            std::fs::File::create(sandbox.join("stdout"))
                .unwrap()
                .into(),
        ),
        stderr: Some(
            std::fs::File::create(sandbox.join("stderr"))
                .unwrap()
                .into(),
        ),
    };
    let mut child = spawn(cgroup.as_ref(), spec).unwrap();
    let status = child.wait().await.unwrap();
    cgroup.kill_all().unwrap();
    cgroup.destroy().unwrap();
    let kind = rootfs.kind();
    let root = rootfs.root().to_path_buf();
    rootfs.remove().unwrap();
    assert!(!mounted(&root), "the root is unmounted at the end");
    assert!(!base.exists(), "the container's directories are removed");
    for layer in &layers {
        assert!(
            layer.join("bin/busybox").exists() || layer.join("etc/drover-image").exists(),
            "the shared layers stay"
        );
    }
    let read = |f: &str| std::fs::read_to_string(sandbox.join(f)).unwrap();
    (kind, status.success(), read("stdout"), read("stderr"))
}

const SCRIPT: &str = r#"
set -e
cat /etc/drover-image
cat /etc/lower-only
pwd
cat /mnt/mesos/sandbox/from-host
echo written > /mnt/mesos/sandbox/from-task
echo "pid $$"
ls /proc/1/exe >/dev/null
test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && test -c /dev/tty
test -d /dev/pts && test -d /dev/shm
readlink /dev/ptmx
if touch /sys/x 2>/dev/null; then echo "sys writable"; fi
grep -q ' /sys sysfs ro' /proc/mounts && echo "sys ro"
test ! -e /work && test ! -e /usr/bin/cargo && echo "host hidden"
echo changed > /etc/drover-image
"#;

fn check(stdout: &str) {
    for line in [
        "from the upper layer",
        "lower",
        "/mnt/mesos/sandbox",
        "sandbox file",
        "pid 2",
        "pts/ptmx",
        "sys ro",
        "host hidden",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing from:\n{stdout}"
        );
    }
    assert!(!stdout.contains("sys writable"), "{stdout}");
}

#[tokio::test]
async fn a_task_runs_in_an_overlay_root_and_sees_none_of_the_host() {
    let (kind, ok, stdout, stderr) = run(RootfsMode::Auto, "rootfs-overlay", SCRIPT).await;
    assert_eq!(kind, RootfsKind::Overlay);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    check(&stdout);
}

#[tokio::test]
async fn the_copy_fallback_gives_the_same_container() {
    let (kind, ok, stdout, stderr) = run(RootfsMode::Copy, "rootfs-copy", SCRIPT).await;
    assert_eq!(kind, RootfsKind::Copy);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    check(&stdout);
}

#[tokio::test]
async fn a_task_writes_go_to_its_own_upper_dir_not_to_the_shared_layers() {
    let work = tempfile::tempdir().unwrap();
    let layers = layers(&work.path().join("layers"));
    let mut first = assemble(
        &layers,
        &work.path().join("one"),
        RootfsMode::Auto,
        &flatten,
    )
    .unwrap();
    let second = assemble(
        &layers,
        &work.path().join("two"),
        RootfsMode::Auto,
        &flatten,
    )
    .unwrap();
    std::fs::write(first.root().join("etc/drover-image"), "changed\n").unwrap();
    std::fs::remove_file(first.root().join("etc/lower-only")).unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&second.root().join("etc/drover-image")),
        "from the upper layer\n"
    );
    assert!(second.root().join("etc/lower-only").exists());
    assert_eq!(
        read(&layers[1].join("etc/drover-image")),
        "from the upper layer\n"
    );
    assert!(layers[0].join("etc/lower-only").exists());
    first.remove().unwrap();
    drop(second);
    assert!(
        !work.path().join("two").exists(),
        "drop removes the container too"
    );
}

#[tokio::test]
async fn an_image_with_a_symlink_where_a_mount_goes_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut layers = layers(&work.path().join("layers"));
    let evil = work.path().join("layers/evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::os::unix::fs::symlink(work.path(), evil.join("mnt")).unwrap();
    layers.push(evil);
    let err = assemble(&layers, &work.path().join("c"), RootfsMode::Auto, &flatten).unwrap_err();
    assert!(err.to_string().contains("a symbolic link at /mnt"), "{err}");
    assert!(
        !mounted(&work.path().join("c/rootfs")),
        "a refused root is unmounted"
    );
}

#[tokio::test]
async fn a_missing_program_in_the_image_is_an_exec_error() {
    let parent = TestParent::new("rootfs-noexec");
    let work = tempfile::tempdir().unwrap();
    let layers = layers(&work.path().join("layers"));
    let sandbox = work.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let rootfs = assemble(&layers, &work.path().join("c"), RootfsMode::Auto, &flatten).unwrap();
    let cgroup = parent.config.manager("task");
    cgroup.create().unwrap();
    // cargo exists on the host, not in the image.
    let spec = SpawnSpec {
        argv: vec!["cargo".into()],
        env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
        cwd: "/".into(),
        user: None,
        namespaces: true,
        join_namespaces_of: None,
        rootfs: Some(PivotPlan::new(rootfs.root(), &sandbox).unwrap()),
        stdout: None,
        stderr: None,
    };
    let err = spawn(cgroup.as_ref(), spec).unwrap_err();
    assert!(matches!(err, SpawnError::Exec { .. }), "{err}");
    cgroup.destroy().unwrap();
}
