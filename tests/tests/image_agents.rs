//! Image tasks on agent-sim's real agents (`--image-dir`): a framework's
//! CommandInfo task naming an image in its `ContainerInfo` runs under
//! `drover-executor` from the agent's image store, its updates carry the
//! image's name and digest, and a missing image fails it with Mesos'
//! reason. Root only (cgroups, mounts); fails, never skips, without it.
#![allow(clippy::unwrap_used)]

use drover_proto::v1::{self, container_info, image, task_status::Reason, TaskState};
use drover_proto::MediaType;
use drover_test_support::images::test_images;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::framework::{framework_info, reason_of, state_of, task, Framework};

fn with_image(mut info: v1::TaskInfo, name: &str) -> v1::TaskInfo {
    info.container = Some(Box::new(v1::ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(v1::Image {
                r#type: image::Type::Docker as i32,
                docker: Some(image::Docker {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }));
    info
}

async fn until_terminal(fw: &mut Framework, task: &str) -> Vec<v1::TaskStatus> {
    let mut seen = Vec::new();
    loop {
        let s = fw.next_update(task).await;
        if s.uuid.is_some() {
            fw.ack(&s).await;
        }
        let state = state_of(&s);
        seen.push(s);
        if matches!(
            state,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskLost
                | TaskState::TaskError
        ) {
            return seen;
        }
    }
}

fn label<'a>(status: &'a v1::TaskStatus, key: &str) -> Option<&'a str> {
    let labels = status.labels.as_ref()?;
    let label = labels.labels.iter().find(|l| l.key == key)?;
    label.value.as_deref()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_runs_an_image_task_from_its_image_dir() {
    require_root();
    binaries::executor();
    let images = test_images().to_str().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::builder()
        .agents(1)
        .real_agents(1, work.path())
        .args(&["--allocation-interval", "100ms", "--allow-root-tasks"])
        .args(&["--image-dir", &images])
        .start();
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("img")).await;
    let offer = fw.next_offers().await.remove(0);
    let good = with_image(
        task(
            "good",
            &offer,
            "echo \"$DROVER_IMAGE_ENV\"; cat /etc/drover-image",
        ),
        "drover-test/busybox:1",
    );
    let missing = with_image(task("missing", &offer, "true"), "drover-test/absent:1");
    fw.launch(&offer, vec![good, missing]).await;

    let updates = until_terminal(&mut fw, "good").await;
    let end = updates.last().unwrap();
    assert_eq!(state_of(end), TaskState::TaskFinished, "{:?}", end.message);
    for update in &updates {
        let digest = label(update, "drover.image.digest").unwrap_or_default();
        assert!(
            digest.starts_with("sha256:"),
            "{:?}: {digest:?}",
            state_of(update)
        );
        assert_eq!(
            label(update, "drover.image.name"),
            Some("drover-test/busybox:1")
        );
    }
    let updates = until_terminal(&mut fw, "missing").await;
    let end = updates.last().unwrap();
    assert_eq!(state_of(end), TaskState::TaskFailed);
    assert_eq!(reason_of(end), Some(Reason::ContainerLaunchFailed));
    let message = end.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("image 'drover-test/absent:1': "),
        "{message}"
    );
    // The agents' executors shared one cache in the work dir, and left no
    // container root behind.
    let roots = work.path().join("image-rootfs");
    let left: Vec<_> = std::fs::read_dir(&roots)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(work.path().join("image-cache/layers").is_dir());
}
