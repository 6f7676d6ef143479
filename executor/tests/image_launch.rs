//! Image tasks end to end: the `drover-executor` binary (root, real
//! cgroups, real mounts) against a fake agent, running tasks from the test
//! images `scripts/test-images.sh` builds from Debian's busybox-static (an
//! OCI layout per image and a `docker save` tarball; nothing downloaded).
//! Checked: Entrypoint, Cmd and Env applied with the task's command, the
//! digest labels on every update, the host's files out of sight, one
//! unpacked copy of the layers for two tasks, a corrupt layer and a
//! missing image failing the task with the reason, and nothing left
//! mounted or on disk after the tasks.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use drover_proto::v1::{
    container_info, image, task_status::Reason, CommandInfo, ContainerInfo, Image, TaskInfo,
    TaskState, TaskStatus,
};
use drover_test_support::images::test_images;
use support::executor::{has_terminal, last, task, Executor};
use support::fake_agent::FakeAgent;
use support::TestParent;

/// An image store holding the given test images (copied, so a test may
/// damage its own), with a cache and roots of its own.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn with(images: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        for name in images {
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(test_images().join(name))
                .arg(dir.path().join("images"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        Self { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "DROVER_IMAGE_DIR".into(),
                self.path("images").display().to_string(),
            ),
            (
                "DROVER_IMAGE_CACHE_DIR".into(),
                self.path("cache").display().to_string(),
            ),
            (
                "DROVER_IMAGE_ROOTFS_DIR".into(),
                self.path("rootfs").display().to_string(),
            ),
        ]
    }

    /// The regular files named `busybox` under the cache: one per
    /// unpacked copy of the lower layer.
    fn unpacked_busybox_copies(&self) -> usize {
        fn walk(dir: &Path, depth: usize) -> usize {
            let mut found = 0;
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                if meta.is_file() && entry.file_name() == "busybox" {
                    found += 1;
                } else if meta.is_dir() && depth > 0 {
                    found += walk(&entry.path(), depth - 1);
                }
            }
            found
        }
        walk(&self.path("cache"), 8)
    }

    /// Leftovers of container roots: files under the roots dir and mounts.
    fn leftovers(&self) -> Vec<String> {
        let rootfs = self.path("rootfs");
        let mut left: Vec<String> = std::fs::read_dir(&rootfs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let prefix = self.dir.path().display().to_string();
        left.extend(
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&prefix))
                .map(|m| format!("mount {m}")),
        );
        left
    }
}

fn docker_image(name: &str) -> ContainerInfo {
    ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(Image {
                r#type: image::Type::Docker as i32,
                docker: Some(image::Docker {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn image_task(id: &str, image: &str, command: CommandInfo) -> TaskInfo {
    let mut info = task(id, "unused");
    info.command = Some(command);
    info.container = Some(Box::new(docker_image(image)));
    info
}

fn shell(script: &str) -> CommandInfo {
    CommandInfo {
        value: Some(script.into()),
        ..Default::default()
    }
}

fn label<'a>(status: &'a TaskStatus, key: &str) -> Option<&'a str> {
    status
        .labels
        .as_ref()?
        .labels
        .iter()
        .find(|l| l.key == key)?
        .value
        .as_deref()
}

async fn executor(name: &str, store: &Store) -> (TestParent, FakeAgent, Executor) {
    executor_with(name, store, &[]).await
}

async fn executor_with(
    name: &str,
    store: &Store,
    extra: &[(&str, &str)],
) -> (TestParent, FakeAgent, Executor) {
    let parent = TestParent::new(name);
    let agent = FakeAgent::start(true, false).await;
    let mut env = store.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let executor = Executor::start(&agent.endpoint(), &parent, &env);
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    (parent, agent, executor)
}

fn task_sandbox(executor: &Executor, id: &str) -> PathBuf {
    executor
        .sandbox
        .path()
        .join("tasks")
        .join(format!("task.{id}"))
}

fn stdout(executor: &Executor, id: &str) -> String {
    std::fs::read_to_string(task_sandbox(executor, id).join("stdout")).unwrap_or_default()
}

fn updates_of(agent: &FakeAgent, id: &str) -> Vec<TaskStatus> {
    agent.with_record(|r| {
        r.updates
            .iter()
            .filter(|u| u.task_id.value == id)
            .cloned()
            .collect()
    })
}

#[tokio::test]
async fn a_task_runs_from_an_oci_layout_with_the_images_entrypoint_cmd_and_env() {
    let store = Store::with(&["busybox", "busybox-entry"]);
    let (_parent, agent, executor) = executor("image-run", &store).await;
    // A file on the host the task must not see.
    let host_file = std::env::temp_dir().join(format!("drover-host-only-{}", std::process::id()));
    std::fs::write(&host_file, "host\n").unwrap();
    let script = format!(
        "echo \"env=$DROVER_IMAGE_ENV\"; cat /etc/drover-image; \
         test -e /etc/drover-lower-only || echo whiteout-honoured; \
         if test -e {host}; then echo host-visible; else echo host-hidden; fi; \
         echo \"cwd=$(pwd)\"; echo \"sandbox=$MESOS_SANDBOX\"; echo \"pid=$$\"; \
         echo inside > \"$MESOS_SANDBOX/written\"",
        host = host_file.display()
    );
    agent.launch(image_task("shell", "drover-test/busybox:1", shell(&script)));
    // shell=false, no value: Entrypoint + Cmd.
    let entry = CommandInfo {
        shell: Some(false),
        ..Default::default()
    };
    agent.launch(image_task("entry", "drover-test/busybox-entry:1", entry));
    // shell=false, no value, arguments: Entrypoint + the arguments.
    let args = CommandInfo {
        shell: Some(false),
        arguments: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    agent.launch(image_task("args", "drover-test/busybox-entry:1", args));
    for id in ["shell", "entry", "args"] {
        agent.wait_until(id, has_terminal(id)).await;
    }
    std::fs::remove_file(&host_file).unwrap();
    for id in ["shell", "entry", "args"] {
        let end = agent.with_record(|r| last(&r.updates, id));
        assert_eq!(
            end.state(),
            TaskState::TaskFinished,
            "{id}: {:?}\n{}",
            end.message,
            executor.log()
        );
    }
    let out = stdout(&executor, "shell");
    for line in [
        "env=from-image",
        "whiteout-honoured",
        "host-hidden",
        "cwd=/",
        "sandbox=/mnt/mesos/sandbox",
        "pid=2",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    assert!(!out.contains("host-visible"), "{out}");
    assert_eq!(
        std::fs::read_to_string(task_sandbox(&executor, "shell").join("written")).unwrap(),
        "inside\n",
        "the sandbox is the task's /mnt/mesos/sandbox"
    );
    assert_eq!(stdout(&executor, "entry").trim(), "entry: default-arg");
    assert_eq!(stdout(&executor, "args").trim(), "entry: a b");

    // Every update from TASK_STARTING on names the image and its digest.
    for id in ["shell", "entry"] {
        let updates = updates_of(&agent, id);
        let states: Vec<TaskState> = updates.iter().map(|u| u.state()).collect();
        assert_eq!(
            states,
            [
                TaskState::TaskStarting,
                TaskState::TaskRunning,
                TaskState::TaskFinished
            ],
            "{id}"
        );
        for update in &updates {
            let digest = label(update, "drover.image.digest").unwrap_or_default();
            assert!(
                digest.starts_with("sha256:") && digest.len() == 71,
                "{id} {:?}: digest label {digest:?}",
                update.state()
            );
        }
        let name = label(&updates[0], "drover.image.name");
        assert!(name.unwrap().starts_with("drover-test/busybox"), "{name:?}");
    }
    assert!(store.leftovers().is_empty(), "{:?}", store.leftovers());
}

#[tokio::test]
async fn a_docker_save_tarball_runs_too() {
    let store = Store::with(&["busybox.tar"]);
    let (_parent, agent, executor) = executor("image-tar", &store).await;
    let script = "cat /etc/drover-image >/dev/null && echo \"from-tar $DROVER_IMAGE_ENV\"";
    agent.launch(image_task("t", "drover-test/busybox-save:1", shell(script)));
    agent.wait_until("t", has_terminal("t")).await;
    let end = agent.with_record(|r| last(&r.updates, "t"));
    assert_eq!(
        end.state(),
        TaskState::TaskFinished,
        "{:?}\n{}",
        end.message,
        executor.log()
    );
    assert_eq!(stdout(&executor, "t").trim(), "from-tar from-image");
}

#[tokio::test]
async fn two_tasks_share_one_unpacked_copy_of_the_layers() {
    let store = Store::with(&["busybox"]);
    let (_parent, agent, executor) = executor("image-share", &store).await;
    for id in ["one", "two"] {
        let script = format!("touch /only-{id}; sleep 1; ls / > $MESOS_SANDBOX/root");
        agent.launch(image_task(id, "drover-test/busybox:1", shell(&script)));
    }
    agent
        .wait_until("both run", |r| {
            ["one", "two"].iter().all(|id| {
                r.updates
                    .iter()
                    .any(|u| u.task_id.value == *id && u.state() == TaskState::TaskRunning)
            })
        })
        .await;
    assert_eq!(
        store.unpacked_busybox_copies(),
        1,
        "one copy while both run"
    );
    agent.wait_until("one", has_terminal("one")).await;
    agent.wait_until("two", has_terminal("two")).await;
    for id in ["one", "two"] {
        let end = agent.with_record(|r| last(&r.updates, id));
        assert_eq!(
            end.state(),
            TaskState::TaskFinished,
            "{:?}\n{}",
            end.message,
            executor.log()
        );
    }
    // Each wrote in its own upper layer only.
    let root_of =
        |id: &str| std::fs::read_to_string(task_sandbox(&executor, id).join("root")).unwrap();
    assert!(root_of("one").contains("only-one") && !root_of("one").contains("only-two"));
    assert!(root_of("two").contains("only-two") && !root_of("two").contains("only-one"));
    assert_eq!(
        store.unpacked_busybox_copies(),
        1,
        "the cache keeps its copy"
    );
    assert!(store.leftovers().is_empty(), "{:?}", store.leftovers());
}

/// Flips one byte in the middle of the largest blob of an OCI layout (the
/// busybox layer).
fn corrupt_largest_blob(layout: &Path) -> String {
    let blobs = layout.join("blobs/sha256");
    let largest = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest.path()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(largest.path(), bytes).unwrap();
    largest.file_name().to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_corrupt_layer_fails_the_task_naming_the_image_and_the_layer() {
    let store = Store::with(&["busybox"]);
    let hex = corrupt_largest_blob(&store.path("images/busybox"));
    let (_parent, agent, executor) = executor("image-corrupt", &store).await;
    agent.launch(image_task("bad", "drover-test/busybox:1", shell("true")));
    agent.wait_until("bad", has_terminal("bad")).await;
    let end = agent.with_record(|r| last(&r.updates, "bad"));
    assert_eq!(end.state(), TaskState::TaskFailed, "{}", executor.log());
    assert_eq!(end.reason(), Reason::ContainerLaunchFailed);
    let message = end.message.unwrap_or_default();
    println!("corrupt layer: {message}");
    assert!(
        message.starts_with("image 'drover-test/busybox:1': "),
        "{message}"
    );
    assert!(
        message.contains(&format!("layer sha256:{hex}: digest mismatch (got sha256:")),
        "{message}"
    );
    assert!(store.leftovers().is_empty(), "{:?}", store.leftovers());
}

#[tokio::test]
async fn a_missing_image_fails_the_task_with_the_reason() {
    let store = Store::with(&["busybox"]);
    let (_parent, agent, executor) = executor("image-missing", &store).await;
    agent.launch(image_task("nope", "drover-test/nope:1", shell("true")));
    agent.wait_until("nope", has_terminal("nope")).await;
    let end = agent.with_record(|r| last(&r.updates, "nope"));
    assert_eq!(end.state(), TaskState::TaskFailed, "{}", executor.log());
    assert_eq!(end.reason(), Reason::ContainerLaunchFailed);
    let message = end.message.unwrap_or_default();
    println!("missing image: {message}");
    assert!(
        message.starts_with("image 'drover-test/nope:1': "),
        "{message}"
    );
    // The executor goes on: the next task with a good image runs.
    agent.launch(image_task("ok", "drover-test/busybox:1", shell("true")));
    agent.wait_until("ok", has_terminal("ok")).await;
    let end = agent.with_record(|r| last(&r.updates, "ok"));
    assert_eq!(end.state(), TaskState::TaskFinished, "{:?}", end.message);
}

#[tokio::test]
async fn a_killed_image_task_gets_sigterm_and_leaves_nothing_behind() {
    let store = Store::with(&["busybox"]);
    let (parent, agent, executor) = executor("image-kill", &store).await;
    let script = "trap 'echo got-term > $MESOS_SANDBOX/term; exit 0' TERM; sleep 100 & wait";
    agent.launch(image_task("k", "drover-test/busybox:1", shell(script)));
    agent
        .wait_until("k runs", |r| {
            r.updates
                .iter()
                .any(|u| u.task_id.value == "k" && u.state() == TaskState::TaskRunning)
        })
        .await;
    // Let the shell set its trap.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    agent.kill("k", Some(std::time::Duration::from_secs(5)));
    agent.wait_until("k", has_terminal("k")).await;
    let end = agent.with_record(|r| last(&r.updates, "k"));
    assert_eq!(
        end.state(),
        TaskState::TaskKilled,
        "{:?}\n{}",
        end.message,
        executor.log()
    );
    assert_eq!(
        std::fs::read_to_string(task_sandbox(&executor, "k").join("term")).unwrap_or_default(),
        "got-term\n",
        "the task got SIGTERM inside its namespace"
    );
    assert!(store.leftovers().is_empty(), "{:?}", store.leftovers());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}

#[tokio::test]
async fn the_copy_fallback_runs_the_same_image_with_its_whiteouts() {
    let store = Store::with(&["busybox"]);
    let (_parent, agent, executor) =
        executor_with("image-copy", &store, &[("DROVER_IMAGE_ROOTFS", "copy")]).await;
    let script = "echo \"env=$DROVER_IMAGE_ENV\"; cat /etc/drover-image; \
                  test -e /etc/drover-lower-only || echo whiteout-honoured; \
                  test -e /work || echo host-hidden";
    agent.launch(image_task("c", "drover-test/busybox:1", shell(script)));
    agent.wait_until("c", has_terminal("c")).await;
    let end = agent.with_record(|r| last(&r.updates, "c"));
    assert_eq!(
        end.state(),
        TaskState::TaskFinished,
        "{:?}\n{}",
        end.message,
        executor.log()
    );
    let out = stdout(&executor, "c");
    for line in [
        "env=from-image",
        "drover test image",
        "whiteout-honoured",
        "host-hidden",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    assert!(
        executor.log().contains("Copy"),
        "the log says the root is a copy"
    );
    assert!(store.leftovers().is_empty(), "{:?}", store.leftovers());
}

#[tokio::test]
async fn the_images_user_applies_when_the_task_names_none() {
    let store = Store::with(&["busybox"]);
    // The same image with `User` set (umoci, as test-images.sh uses it).
    let layout = store.path("images/busybox");
    let status = std::process::Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:drover-test/busybox:1", layout.display()))
        .args(["--config.user", "1234:5678"])
        .status()
        .expect("umoci (scripts/test-images.sh installs it)");
    assert!(status.success());
    let (_parent, agent, executor) = executor("image-user", &store).await;
    let script = "echo \"$(id -u):$(id -g)\"";
    agent.launch(image_task("u", "drover-test/busybox:1", shell(script)));
    let mut named = image_task("n", "drover-test/busybox:1", shell(script));
    named.command.as_mut().unwrap().user = Some("root".into());
    agent.launch(named);
    agent.wait_until("u", has_terminal("u")).await;
    agent.wait_until("n", has_terminal("n")).await;
    for id in ["u", "n"] {
        let end = agent.with_record(|r| last(&r.updates, id));
        assert_eq!(
            end.state(),
            TaskState::TaskFinished,
            "{id}: {:?}\n{}",
            end.message,
            executor.log()
        );
    }
    assert_eq!(
        stdout(&executor, "u").trim(),
        "1234:5678",
        "the image's User"
    );
    assert_eq!(
        stdout(&executor, "n").trim(),
        "0:0",
        "the task's own user wins"
    );
}
