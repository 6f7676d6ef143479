//! An image task's launch: the image named in its `ContainerInfo` resolved
//! from the local store, its layers assembled into the task's root, and
//! the task's command combined with the image's configuration.
//!
//! The store ([`crate::image::ImageStore`]) is opened once per executor, on
//! the first image task, so an executor whose tasks name no image never
//! needs the store's directories. Everything here blocks (digests, unpack,
//! mounts): the supervisor calls it in `spawn_blocking`.
//!
//! A failure is the message of a TASK_FAILED with
//! `REASON_CONTAINER_LAUNCH_FAILED`: `image 'NAME': <why>`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::container::rootfs::{self, passwd, PivotPlan, Rootfs, RootfsMode};
use crate::container::user::UserEntry;
use crate::image::{
    combine, flatten_layers, ContainerCommand, ImageError, ImageName, ImageStore, PreparedImage,
    TaskCommand,
};

use super::task::{ImageAsked, ImageRequest};

/// The label with the image's manifest digest, on every update of an image
/// task from TASK_STARTING on.
pub const DIGEST_LABEL: &str = "drover.image.digest";
/// The label with the image's name as the task asked for it.
pub const NAME_LABEL: &str = "drover.image.name";

/// Where images come from and where their containers' roots go.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// `DROVER_IMAGE_DIR`.
    pub image_dir: PathBuf,
    /// `DROVER_IMAGE_CACHE_DIR`.
    pub cache_dir: PathBuf,
    /// `DROVER_IMAGE_CACHE_MAX_BYTES`.
    pub max_bytes: u64,
    /// `DROVER_IMAGE_ROOTFS_DIR`.
    pub rootfs_dir: PathBuf,
    /// `DROVER_IMAGE_ROOTFS`.
    pub rootfs_mode: RootfsMode,
}

/// The executor's image store, opened on first use.
pub struct Images {
    settings: ImageSettings,
    store: Mutex<Option<Arc<ImageStore>>>,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Images {
    /// Images from `settings`; nothing is opened yet.
    pub fn new(settings: ImageSettings) -> Self {
        Self {
            settings,
            store: Mutex::new(None),
        }
    }

    /// The store, opened now if it is not yet (a failed open is tried
    /// again by the next task).
    fn store(&self) -> Result<Arc<ImageStore>, ImageError> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = store.as_ref() {
            return Ok(store.clone());
        }
        let opened = Arc::new(ImageStore::open(
            &self.settings.image_dir,
            &self.settings.cache_dir,
            self.settings.max_bytes,
        )?);
        *store = Some(opened.clone());
        Ok(opened)
    }
}

/// An image task ready to spawn: its root mounted, its command combined.
/// Dropping it (after the task's processes are gone) unmounts and removes
/// the root and releases the image's lease on its cached layers.
#[derive(Debug)]
pub struct ImageContainer {
    /// The command, environment, working directory and user to run.
    pub command: ContainerCommand,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// The status labels ([`NAME_LABEL`], [`DIGEST_LABEL`]).
    pub labels: Vec<(String, String)>,
    /// The image's user resolved inside the image, when the task names
    /// none and the image does (else the host's user database decides).
    pub image_user: Option<UserEntry>,
    // Field order is drop order: the root goes before the lease.
    rootfs: Rootfs,
    _image: PreparedImage,
}

impl ImageContainer {
    /// The plan the child follows to enter the root with `sandbox`.
    pub fn pivot_plan(&self, sandbox: &Path) -> Result<PivotPlan, String> {
        PivotPlan::new(self.rootfs.root(), sandbox)
            .map_err(|_| "a path of the container holds a NUL byte".to_string())
    }

    /// Unmounts and removes the root now (also done on drop), logging a
    /// failure.
    pub fn remove(mut self) {
        if let Err(e) = self.rootfs.remove() {
            tracing::error!(error = %e, "removing an image container's root");
        }
    }
}

fn parse(asked: &ImageAsked) -> Result<ImageName, ImageError> {
    match asked {
        ImageAsked::Docker(name) => ImageName::docker(name),
        ImageAsked::Appc { name, id } => ImageName::appc(name, id.as_deref()),
    }
}

/// Prepares `request` for the container `container_id` (unique on this
/// host: the task's cgroup name), with the task's environment `env`.
/// Blocking. The error is the whole TASK_FAILED message.
pub fn prepare(
    images: &Images,
    request: &ImageRequest,
    env: &[(String, String)],
    container_id: &str,
) -> Result<ImageContainer, String> {
    let asked = request.image.as_asked();
    let prefix = format!("image '{asked}': ");
    let fail = |why: String| format!("{prefix}{why}");
    // The store's errors mostly name the image already.
    let failed = |e: ImageError| match e.to_string() {
        named if named.starts_with(&prefix) => named,
        other => fail(other),
    };
    let name = parse(&request.image).map_err(failed)?;
    let store = images.store().map_err(failed)?;
    let image = store.prepare(&name, container_id).map_err(failed)?;
    let task = TaskCommand {
        shell: request.shell,
        value: request.value.clone(),
        arguments: request.arguments.clone(),
        env: env.to_vec(),
        user: request.user.clone(),
    };
    let command = combine(&task, &image.config).map_err(|e| fail(e.to_string()))?;
    let base = images.settings.rootfs_dir.join(container_id);
    let flatten =
        |layers: &[PathBuf], into: &Path| flatten_layers(layers, into).map_err(|e| e.to_string());
    let rootfs = rootfs::assemble(&image.layers, &base, images.settings.rootfs_mode, &flatten)
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(image = asked, digest = %image.digest, root = %rootfs.root().display(), kind = ?rootfs.kind(), "image container assembled");
    let image_user = match (&request.user, &command.user) {
        (None, Some(spec)) => {
            Some(passwd::lookup(rootfs.root(), spec).map_err(|e| fail(e.to_string()))?)
        }
        _ => None,
    };
    let digest = image.digest.clone();
    Ok(ImageContainer {
        image_user,
        command,
        labels: vec![
            (NAME_LABEL.to_string(), asked.to_string()),
            (DIGEST_LABEL.to_string(), digest.clone()),
        ],
        digest,
        rootfs,
        _image: image,
    })
}
