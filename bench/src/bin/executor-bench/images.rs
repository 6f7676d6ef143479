//! The image scenarios: LAUNCH-to-TASK_RUNNING of a task that runs from an
//! image (the test busybox OCI layout), with the layer cache warm and
//! cold, beside the no-image launch of the same run and beside `crun run`
//! of the same root filesystem when crun is installed.
//!
//! Cold means the executor finds no unpacked layer: the benchmark empties
//! the cache's `layers/` between rounds while no task runs (the cache
//! lives on disk, so nothing in the executor remembers the layers).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use drover_executor::image::{flatten_layers, ImageName, ImageStore};
use drover_proto::v1::{container_info, image, ContainerInfo, Image, TaskInfo};

use super::scenarios::{task, Bench};

/// The image every image scenario runs, from `scripts/test-images.sh`.
pub const IMAGE: &str = "drover-test/busybox:1";
/// The layout directory of [`IMAGE`] in the test images' directory.
const LAYOUT: &str = "busybox";
/// What the image task runs: a shell builtin, so that the time is the
/// container's, not the program's.
const IMAGE_TASK: [&str; 3] = ["/bin/sh", "-c", "true"];

/// The directories of the image scenarios, removed at the end.
pub struct ImageDirs {
    /// A temporary directory holding the rest.
    root: tempfile::TempDir,
    /// The image store (`DROVER_IMAGE_DIR`): the test images.
    pub store: PathBuf,
}

impl ImageDirs {
    /// Dirs for the executor over the test images in `images`.
    pub fn new(images: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            images.join(LAYOUT).join("index.json").is_file(),
            "{} has no {LAYOUT} OCI layout: run scripts/test-images.sh {} first",
            images.display(),
            images.display()
        );
        Ok(Self {
            root: tempfile::tempdir().context("creating the image scenario's directory")?,
            store: images.to_path_buf(),
        })
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// The executor's image settings.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |p: PathBuf| p.display().to_string();
        vec![
            ("DROVER_IMAGE_DIR".into(), path(self.store.clone())),
            ("DROVER_IMAGE_CACHE_DIR".into(), path(self.cache())),
            (
                "DROVER_IMAGE_ROOTFS_DIR".into(),
                path(self.root.path().join("rootfs")),
            ),
        ]
    }

    /// Removes every unpacked layer, so the next launch unpacks again.
    fn empty_cache(&self) -> anyhow::Result<()> {
        let layers = self.cache().join("layers");
        for entry in
            std::fs::read_dir(&layers).with_context(|| format!("reading {}", layers.display()))?
        {
            let path = entry?.path();
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }
}

fn image_task(id: &str) -> TaskInfo {
    let mut info = task(id, &IMAGE_TASK);
    info.container = Some(Box::new(ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(Image {
                r#type: image::Type::Docker as i32,
                docker: Some(image::Docker {
                    name: IMAGE.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }));
    info
}

/// What the image scenarios measured.
pub struct ImageSamples {
    /// LAUNCH-to-TASK_RUNNING with the layers unpacked already.
    pub warm: Vec<Duration>,
    /// LAUNCH-to-TASK_RUNNING with an empty cache.
    pub cold: Vec<Duration>,
    /// `crun run` of the same root, start to exit; None without crun.
    pub crun: Option<Vec<Duration>>,
    /// The wrapper crun runs in on a hybrid host (a private mount
    /// namespace hiding the v2 mount, which crun refuses), running `true`:
    /// part of every crun sample.
    pub crun_wrapper: Option<Vec<Duration>>,
}

/// Runs `rounds` warm and `rounds` cold image launches, then crun.
pub async fn measure(
    bench: &mut Bench,
    dirs: &ImageDirs,
    rounds: usize,
) -> anyhow::Result<ImageSamples> {
    // The first launch unpacks: untimed.
    bench
        .launch_info_once("image-first", image_task("image-first"))
        .await?;
    let (mut warm, mut cold) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let id = format!("image-warm-{i}");
        warm.push(bench.launch_info_once(&id, image_task(&id)).await?);
        dirs.empty_cache()?;
        let id = format!("image-cold-{i}");
        cold.push(bench.launch_info_once(&id, image_task(&id)).await?);
    }
    let (crun, crun_wrapper) = match which_crun() {
        Some(crun) => {
            let store = dirs.store.clone();
            let scratch = dirs.root.path().join("crun");
            let runs =
                tokio::task::spawn_blocking(move || crun_runs(&crun, &store, &scratch, rounds))
                    .await
                    .context("the crun thread panicked")?;
            match runs {
                Ok((runs, wrapper)) => (Some(runs), wrapper),
                Err(e) => {
                    println!("crun did not run ({e:#}): no crun figures");
                    (None, None)
                }
            }
        }
        None => {
            println!("crun is not installed (apt-get install crun): no crun figures");
            (None, None)
        }
    };
    Ok(ImageSamples {
        warm,
        cold,
        crun,
        crun_wrapper,
    })
}

/// Whether this host mounts cgroup v1 with a v2 hierarchy beside it (at
/// `/sys/fs/cgroup/unified`), which crun refuses to run on.
fn hybrid_host() -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.get(1) == Some(&"/sys/fs/cgroup/unified") && fields.get(2) == Some(&"cgroup2")
    })
}

/// `command` as is, or on a hybrid host in a private mount namespace with
/// the v2 mount hidden (as the Mesos agent here runs): the host's mounts
/// are untouched.
fn on_v1_view(command: &[&str]) -> std::process::Command {
    if !hybrid_host() {
        let mut plain = std::process::Command::new(command[0]);
        plain.args(&command[1..]);
        return plain;
    }
    let mut wrapped = std::process::Command::new("unshare");
    wrapped.args([
        "-m",
        "sh",
        "-c",
        "mount --make-rprivate / && mount -t tmpfs none /sys/fs/cgroup/unified && exec \"$@\"",
        "sh",
    ]);
    wrapped.args(command);
    wrapped
}

/// Runs `command` (made by [`on_v1_view`]) and times it, start to exit.
fn timed(mut command: std::process::Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("starting crun")?;
    let took = started.elapsed();
    anyhow::ensure!(status.success(), "{command:?} failed: {status}");
    Ok(took)
}

fn which_crun() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("crun"))
            .find(|path| path.is_file())
    })
}

/// `crun run` of the image's root (flattened, as crun takes one
/// directory) running the same command, `rounds` times, start to exit.
/// On a hybrid host crun runs in a wrapper; its cost, running `true`, is
/// the second value.
#[allow(clippy::type_complexity)]
fn crun_runs(
    crun: &Path,
    store: &Path,
    scratch: &Path,
    rounds: usize,
) -> anyhow::Result<(Vec<Duration>, Option<Vec<Duration>>)> {
    let bundle = scratch.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs).context("creating the crun bundle")?;
    let images = ImageStore::open(store, &scratch.join("cache"), u64::MAX)?;
    let name = ImageName::docker(IMAGE)?;
    let prepared = images.prepare(&name, "crun-bench")?;
    flatten_layers(&prepared.layers, &rootfs)?;
    let status = std::process::Command::new(crun)
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .context("crun spec")?;
    anyhow::ensure!(status.success(), "crun spec failed");
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).context("reading config.json")?)?;
    config["process"]["args"] = serde_json::json!(IMAGE_TASK);
    config["process"]["terminal"] = serde_json::json!(false);
    // Its own cgroup (crun makes and removes it), as each executor task has.
    let id = format!("drover-bench-crun-{}", std::process::id());
    config["linux"]["cgroupsPath"] = serde_json::json!(format!("/{id}"));
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    let (crun, bundle) = (crun.to_string_lossy(), bundle.to_string_lossy());
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + 1 {
        let name = format!("{id}-{i}");
        let run = [
            &crun,
            "--cgroup-manager=cgroupfs",
            "run",
            "--bundle",
            &bundle,
            &name,
        ];
        let took = timed(on_v1_view(&run))?;
        // The first run is a warm-up, as the executor's first launch is.
        if i > 0 {
            samples.push(took);
        }
    }
    let wrapper = match hybrid_host() {
        true => Some(
            (0..rounds)
                .map(|_| timed(on_v1_view(&["true"])))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        false => None,
    };
    Ok((samples, wrapper))
}
