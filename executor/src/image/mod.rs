//! Images for containers, without a registry or a daemon: a task's image
//! is resolved from the local image store (`DROVER_IMAGE_DIR`: OCI image
//! layouts and `docker save` tarballs), its layers verified by digest as
//! they are read and unpacked once into a content-addressed cache shared by
//! every task and executor on the host (`DROVER_IMAGE_CACHE_DIR`), where a
//! size bound and a collector remove layers no live container uses.
//!
//! This module knows nothing of Mesos or of mounting: the supervisor turns
//! the task's `Image` into an [`ImageName`] and its `CommandInfo` into a
//! [`TaskCommand`]; [`crate::container`] mounts the [`PreparedImage`]'s
//! layers (overlayfs, or [`flatten_layers`] where overlay is refused).
//!
//! A registry pull is future work: it is another [`ImageSource`]
//! ([`ImageStore::with_source`]); verification, unpacking and the cache do
//! not change.
//!
//! # Layout
//! In data-flow order (name -> resolve -> verify + unpack -> cache -> run):
//! - [`reference`]: image references parsed, and matched to recorded names.
//! - [`source`]: the [`ImageSource`] trait and the resolved image.
//! - [`local`]: the local store directory, over [`bundle`]s (a directory or
//!   a tarball), read by [`oci_layout`] and [`docker_archive`].
//! - [`config`]: the image configuration a container runs with.
//! - [`digest`]: sha256 of blobs, in memory and while streaming.
//! - [`unpack`]: a layer tar into overlay lower-dir form (whiteouts).
//! - [`flatten`]: layers merged into one directory (the copy fallback).
//! - [`cache`]: the shared content-addressed layer cache, leases, locks.
//! - [`gc_plan`]: which unused layers a collection removes (pure).
//! - [`command`]: the task's command combined with the image's (pure).
//! - [`error`]: the module's error type, [`ImageError`].

mod bundle;
mod cache;
pub mod command;
pub mod config;
mod digest;
mod docker_archive;
pub mod error;
mod flatten;
mod gc_plan;
pub mod local;
mod oci_layout;
pub mod reference;
pub mod source;
mod unpack;

use std::path::{Path, PathBuf};

pub use command::{combine, CommandError, ContainerCommand, TaskCommand, SANDBOX_MOUNT_POINT};
pub use config::ImageConfig;
pub use error::{BlobKind, ImageError};
pub use flatten::flatten_layers;
pub use local::LocalImageDir;
pub use reference::{DockerReference, ImageName};
pub use source::{BlobReader, Compression, ImageSource, LayerBlob, ResolvedFrom, ResolvedImage};

use cache::{LayerCache, Lease};
use digest::HashingReader;
use gc_plan::GcBound;
use unpack::{unpack_layer, UnpackError};

/// Default of `DROVER_IMAGE_DIR` (`--image-dir`).
pub const DEFAULT_IMAGE_DIR: &str = "/var/lib/drover/images";
/// Default of `DROVER_IMAGE_CACHE_DIR` (`--image-cache-dir`).
pub const DEFAULT_IMAGE_CACHE_DIR: &str = "/var/lib/drover/image-cache";
/// Default of `DROVER_IMAGE_CACHE_MAX_BYTES`: 10 GiB, room for a few dozen
/// typical base images while staying a small part of an agent's disk.
pub const DEFAULT_IMAGE_CACHE_MAX_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// Resolves images and keeps their unpacked layers.
pub struct ImageStore {
    source: Box<dyn ImageSource>,
    store_dir: PathBuf,
    cache: LayerCache,
    max_bytes: u64,
}

/// An image ready to mount: its layers are unpacked in the cache and leased
/// until this value is dropped or [`ImageStore::release`] is called.
#[derive(Debug)]
pub struct PreparedImage {
    /// The manifest digest, `sha256:<hex>` (the `drover.image.digest` label).
    pub digest: String,
    /// The unpacked layer directories, lowest first, in overlay lower-dir
    /// form (whiteouts are 0/0 character devices, opaque dirs carry
    /// `trusted.overlay.opaque=y`). overlayfs' `lowerdir=` lists them
    /// highest first.
    pub layers: Vec<PathBuf>,
    /// Entrypoint, Cmd, Env, WorkingDir, User.
    pub config: ImageConfig,
    _lease: Lease,
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Digests of the layers removed.
    pub removed: Vec<String>,
    /// Bytes they took.
    pub freed_bytes: u64,
    /// Layers kept (leased, or within the bound).
    pub kept: usize,
    /// Bytes the kept layers take.
    pub kept_bytes: u64,
}

impl ImageStore {
    /// The store over the local image directory `image_dir`, caching under
    /// `cache_dir` (created) at most about `max_bytes` of unused layers.
    pub fn open(image_dir: &Path, cache_dir: &Path, max_bytes: u64) -> Result<Self, ImageError> {
        Self::with_source(
            Box::new(LocalImageDir::new(image_dir)),
            image_dir,
            cache_dir,
            max_bytes,
        )
    }

    /// The store over any `source` (`store_dir` names it in not-found messages).
    pub fn with_source(
        source: Box<dyn ImageSource>,
        store_dir: &Path,
        cache_dir: &Path,
        max_bytes: u64,
    ) -> Result<Self, ImageError> {
        Ok(ImageStore {
            source,
            store_dir: store_dir.to_owned(),
            cache: LayerCache::open(cache_dir)?,
            max_bytes,
        })
    }

    /// Resolves `image`, verifies and unpacks its layers (each once per
    /// cache), and leases them to `lease_holder` (a task id). Blocking:
    /// call it from `spawn_blocking`. Errors name the image; their
    /// `to_string()` is the task's failure message.
    pub fn prepare(
        &self,
        image: &ImageName,
        lease_holder: &str,
    ) -> Result<PreparedImage, ImageError> {
        self.prepare_named(image, lease_holder)
            .map_err(|error| error.for_image(image.as_asked()))
    }

    fn prepare_named(
        &self,
        image: &ImageName,
        lease_holder: &str,
    ) -> Result<PreparedImage, ImageError> {
        let asked = image.as_asked();
        let resolved = self
            .source
            .resolve(image)?
            .ok_or_else(|| ImageError::NotFound {
                image: asked.to_owned(),
                store: self.store_dir.clone(),
            })?;
        let layers = {
            let _collector_held_off = self.cache.hold_off_collection()?;
            let digests: Vec<String> = resolved
                .image
                .layers
                .iter()
                .map(|layer| layer.digest.clone())
                .collect();
            let lease = self.cache.lease(lease_holder, &digests)?;
            let mut paths = Vec::with_capacity(digests.len());
            for layer in &resolved.image.layers {
                let path = self.cache.ensure(&layer.digest, |dest| {
                    unpack_verified(asked, resolved.blobs.as_ref(), layer, dest)
                })?;
                paths.push(path);
            }
            (paths, lease)
        };
        let (paths, lease) = layers;
        if let Err(error) = self.collect(GcBound::MaxBytes(self.max_bytes), false) {
            // The image is ready; an over-full cache is the next prepare's problem.
            tracing::warn!(%error, "image cache: collection after prepare failed");
        }
        Ok(PreparedImage {
            digest: resolved.image.manifest_digest,
            layers: paths,
            config: resolved.image.config,
            _lease: lease,
        })
    }

    /// Removes every cached layer no live container leases. Waits for
    /// running prepares to finish.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        self.collect(GcBound::Unused, true)
    }

    /// Drops the leases `lease_holder` holds (after a crash of the holder's
    /// container, without its [`PreparedImage`]). Returns how many.
    pub fn release(&self, lease_holder: &str) -> Result<usize, ImageError> {
        self.cache.release(lease_holder)
    }

    fn collect(&self, bound: GcBound, wait: bool) -> Result<GcReport, ImageError> {
        let Some(_exclusive) = self.cache.lock_for_collection(wait)? else {
            // Someone is preparing; the next prepare's collection will run.
            return Ok(GcReport::default());
        };
        self.cache.sweep_leftovers()?;
        let layers = self.cache.layers()?;
        let total: u64 = layers.iter().map(|layer| layer.size_bytes).sum();
        if matches!(bound, GcBound::MaxBytes(max) if total <= max) {
            return Ok(GcReport {
                kept: layers.len(),
                kept_bytes: total,
                ..GcReport::default()
            });
        }
        let leased = self.cache.leased_layers()?;
        let mut report = GcReport::default();
        for digest in gc_plan::plan(&layers, &leased, bound) {
            let size = layers
                .iter()
                .find(|layer| layer.digest == digest)
                .map_or(0, |layer| layer.size_bytes);
            self.cache.remove(&digest)?;
            tracing::info!(layer = %digest, size_bytes = size, "image cache: removed an unused layer");
            report.removed.push(digest);
            report.freed_bytes += size;
        }
        report.kept = layers.len() - report.removed.len();
        report.kept_bytes = total - report.freed_bytes;
        Ok(report)
    }
}

/// Streams `layer` through its digest check into `dest`. A stream that
/// fails to unpack and also fails its digest is reported as the mismatch:
/// that is the cause.
fn unpack_verified(
    asked: &str,
    blobs: &dyn BlobReader,
    layer: &LayerBlob,
    dest: &Path,
) -> Result<(), ImageError> {
    let blob = blobs.open_layer(layer)?;
    let mut hashing = HashingReader::new(blob);
    let unpacked = unpack_layer(&mut hashing, layer.compression, dest);
    let (actual, bytes) = hashing.finish().map_err(|source| ImageError::Io {
        image: Some(asked.to_owned()),
        op: "read layer",
        path: PathBuf::from(&layer.locator),
        source,
    })?;
    if actual != layer.digest {
        return Err(ImageError::DigestMismatch {
            image: asked.to_owned(),
            kind: BlobKind::Layer,
            expected: layer.digest.clone(),
            actual,
        });
    }
    match unpacked {
        Ok(()) => {}
        Err(UnpackError::Stream(why)) => {
            return Err(ImageError::Corrupt {
                image: asked.to_owned(),
                what: format!("layer {}", layer.digest),
                why,
            });
        }
        Err(UnpackError::Host { op, path, source }) => {
            return Err(ImageError::Io {
                image: Some(asked.to_owned()),
                op,
                path,
                source,
            });
        }
    }
    match layer.size {
        Some(size) if size != bytes => Err(ImageError::Corrupt {
            image: asked.to_owned(),
            what: format!("layer {}", layer.digest),
            why: format!("{bytes} bytes where the manifest says {size}"),
        }),
        _ => Ok(()),
    }
}
