//! The parent's half: the image's layers assembled into a root directory
//! on the host (overlayfs, or a flattened copy), and removed at the end.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// How the root was assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsKind {
    /// overlayfs over the shared layers, with a per-container upper dir.
    Overlay,
    /// The layers copied, flattened, into a per-container directory.
    Copy,
}

/// Which kinds to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RootfsMode {
    /// overlayfs, and the copy when the kernel refuses overlay.
    #[default]
    Auto,
    /// Always the copy (kernels or filesystems without overlay support).
    Copy,
}

/// Why a root could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The image has no layers.
    #[error("the image has no layers")]
    NoLayers,
    /// A filesystem call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The image holds something else than a directory where the container
    /// mounts something (a symbolic link could aim the mount at the host).
    #[error("the image has {found} at /{path}, where the container needs a directory")]
    NotADirectory {
        /// The path inside the image.
        path: &'static str,
        /// What is there instead.
        found: &'static str,
    },
    /// Flattening the layers for the copy fallback failed.
    #[error("copying the image's layers: {0}")]
    Copy(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError::Io { what, path, source }
}

/// The directories the container mounts over, made in the root before the
/// task enters it (parents first).
const MOUNT_POINTS: [&str; 6] = [
    "proc",
    "sys",
    "dev",
    "mnt",
    "mnt/mesos",
    "mnt/mesos/sandbox",
];

/// Flattens layers (lowest first) into one directory, whiteouts applied:
/// the copy fallback.
pub type Flatten = dyn Fn(&[PathBuf], &Path) -> Result<(), String>;

/// An assembled root, mounted on the host until [`Rootfs::remove`] (or
/// drop) unmounts it and deletes its per-container directories.
#[derive(Debug)]
pub struct Rootfs {
    base: PathBuf,
    root: PathBuf,
    kind: RootfsKind,
    mounted: bool,
}

impl Rootfs {
    /// The root directory (a mount point).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How it was assembled.
    pub fn kind(&self) -> RootfsKind {
        self.kind
    }

    /// Unmounts the root and deletes the per-container directories. The
    /// shared layers are untouched. Idempotent.
    pub fn remove(&mut self) -> Result<(), RootfsError> {
        if self.mounted {
            // Detached: a process of the task that is still exiting keeps
            // its reference; the mount goes when it does.
            umount2(&self.root, MntFlags::MNT_DETACH)
                .map_err(|e| io("unmounting", &self.root)(e.into()))?;
            self.mounted = false;
        }
        // Never delete through a mount: only once unmounted.
        match std::fs::remove_dir_all(&self.base) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &self.base)(e)),
        }
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::error!(error = %e, "removing a container's root filesystem");
        }
    }
}

/// overlayfs' mount data: the upper layer leftmost in `lowerdir`. `None`
/// when a path cannot be written in it (`,` and `:` separate) or the
/// whole exceeds the one page the kernel reads.
fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> Option<String> {
    let paths: Vec<&str> = layers
        .iter()
        .rev()
        .map(|p| p.to_str())
        .collect::<Option<_>>()?;
    let (upper, work) = (upper.to_str()?, work.to_str()?);
    let clean = |p: &str| !p.contains([',', ':', '\\']);
    if !paths.iter().all(|p| clean(p)) || !clean(upper) || !clean(work) {
        return None;
    }
    let options = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        paths.join(":")
    );
    (options.len() < 4000).then_some(options)
}

/// Assembles `layers` (unpacked layer directories, lowest first, as
/// overlayfs expects them in a lower dir) into a root under `base` (a
/// per-container directory, made here; an old one is replaced).
/// `flatten(layers, into)` makes the copy fallback (whiteouts applied).
/// Blocking.
pub fn assemble(
    layers: &[PathBuf],
    base: &Path,
    mode: RootfsMode,
    flatten: &Flatten,
) -> Result<Rootfs, RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    if base.exists() {
        // A leftover of a crashed executor: unmount what may be there.
        let _ = umount2(&base.join("rootfs"), MntFlags::MNT_DETACH);
        std::fs::remove_dir_all(base).map_err(io("removing the old", base))?;
    }
    let root = base.join("rootfs");
    std::fs::create_dir_all(&root).map_err(io("creating", &root))?;
    let mut rootfs = Rootfs {
        base: base.to_path_buf(),
        root,
        kind: RootfsKind::Overlay,
        mounted: false,
    };
    if mode == RootfsMode::Auto {
        match mount_overlay(layers, base, &rootfs.root) {
            Ok(()) => rootfs.mounted = true,
            Err(e) => {
                tracing::warn!(error = %e, "overlayfs refused; copying the image's layers instead")
            }
        }
    }
    if !rootfs.mounted {
        rootfs.kind = RootfsKind::Copy;
        flatten(layers, &rootfs.root).map_err(RootfsError::Copy)?;
        // A bind mount onto itself: pivot_root needs a mount point.
        mount(
            Some(&rootfs.root),
            &rootfs.root,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io("bind-mounting", &rootfs.root)(e.into()))?;
        rootfs.mounted = true;
    }
    make_mount_points(&rootfs.root)?;
    Ok(rootfs)
}

fn mount_overlay(layers: &[PathBuf], base: &Path, root: &Path) -> Result<(), RootfsError> {
    let (upper, work) = (base.join("upper"), base.join("work"));
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let options = overlay_options(layers, &upper, &work).ok_or(RootfsError::Io {
        what: "writing overlay options for",
        path: base.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a layer path holds ',', ':' or '\\', or the layers are too many for one mount",
        ),
    })?;
    mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| io("mounting overlayfs at", root)(e.into()))
}

/// Makes each mount point a real directory, refusing anything else.
fn make_mount_points(root: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::DirBuilderExt;
    for point in MOUNT_POINTS {
        let path = root.join(point);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(RootfsError::NotADirectory {
                    path: point,
                    found: if meta.file_type().is_symlink() {
                        "a symbolic link"
                    } else {
                        "a file"
                    },
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(io("creating", &path))?,
            Err(e) => return Err(io("inspecting", &path)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lists_the_top_layer_first() {
        let layers = vec![PathBuf::from("/c/a"), PathBuf::from("/c/b")];
        assert_eq!(
            overlay_options(&layers, Path::new("/u"), Path::new("/w")).unwrap(),
            "lowerdir=/c/b:/c/a,upperdir=/u,workdir=/w"
        );
    }

    #[test]
    fn paths_overlay_cannot_name_are_refused() {
        let w = Path::new("/w");
        assert!(overlay_options(&[PathBuf::from("/c/a:b")], Path::new("/u"), w).is_none());
        assert!(overlay_options(&[PathBuf::from("/c/a")], Path::new("/u,x"), w).is_none());
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/drover/image-cache/layers/{i:064}")))
            .collect();
        assert!(overlay_options(&many, Path::new("/u"), w).is_none());
    }
}
