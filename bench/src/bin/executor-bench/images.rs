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
    let crun = match which_crun() {
        Some(crun) => Some(
            tokio::task::spawn_blocking({
                let store = dirs.store.clone();
                let scratch = dirs.root.path().join("crun");
                move || crun_runs(&crun, &store, &scratch, rounds)
            })
            .await
            .context("the crun thread panicked")??,
        ),
        None => {
            println!("crun is not installed (apt-get install crun): no crun figures");
            None
        }
    };
    Ok(ImageSamples { warm, cold, crun })
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
fn crun_runs(
    crun: &Path,
    store: &Path,
    scratch: &Path,
    rounds: usize,
) -> anyhow::Result<Vec<Duration>> {
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
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + 1 {
        let started = Instant::now();
        let status = std::process::Command::new(crun)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("drover-bench-{}-{i}", std::process::id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("crun run")?;
        let took = started.elapsed();
        anyhow::ensure!(status.success(), "crun run failed: {status}");
        // The first run is a warm-up, as the executor's first launch is.
        if i > 0 {
            samples.push(took);
        }
    }
    Ok(samples)
}
