//! One layer tar unpacked into a directory in the form overlayfs reads as a
//! lower dir: a whiteout `.wh.NAME` becomes a character device 0/0 named
//! `NAME`, an opaque marker `.wh..wh..opq` becomes the xattr
//! `trusted.overlay.opaque=y` on its directory (the kernel's
//! `Documentation/filesystems/overlayfs.rst`, "whiteouts and opaque
//! directories"). [`super::flatten`] reads the same form when overlay is
//! unavailable. Creating either needs root (CAP_MKNOD, CAP_SYS_ADMIN).
//!
//! Nothing in a layer may write outside `dest`: tar members go through the
//! `tar` crate's `unpack_in` (which refuses `..` and checks the parent of
//! each member is still inside), and whiteouts are placed only after their
//! parent is resolved and found inside `dest`.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};

use super::source::Compression;

/// The prefix of a whiteout file in a layer tar (OCI image spec, "Whiteouts").
const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// overlayfs' opaque-directory xattr.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why a layer could not be unpacked.
#[derive(Debug)]
pub(crate) enum UnpackError {
    /// The stream is not a valid (compressed) tar, or a member is unsafe.
    Stream(String),
    /// The host refused a step (mknod, xattr, mkdir).
    Host {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Unpacks the (compressed) tar stream `blob` into the empty directory `dest`.
pub(crate) fn unpack_layer(
    blob: impl Read,
    compression: Compression,
    dest: &Path,
) -> Result<(), UnpackError> {
    let mut buffered = BufReader::new(blob);
    let is_gzip = match compression {
        Compression::Gzip => true,
        Compression::None => false,
        Compression::Detect => buffered
            .fill_buf()
            .map_err(|e| UnpackError::Stream(e.to_string()))?
            .starts_with(&[0x1f, 0x8b]),
    };
    match is_gzip {
        true => unpack_tar(flate2::read::MultiGzDecoder::new(buffered), dest),
        false => unpack_tar(buffered, dest),
    }
}

fn unpack_tar(tar: impl Read, dest: &Path) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    // Extended attributes of members (file capabilities) are not restored:
    // not every cache filesystem takes every namespace, and a failure there
    // would fail images that do not need them.
    archive.set_unpack_xattrs(false);
    let stream = |error: io::Error| UnpackError::Stream(error.to_string());
    let canonical_dest = dest.canonicalize().map_err(|source| UnpackError::Host {
        op: "canonicalize",
        path: dest.to_owned(),
        source,
    })?;
    for entry in archive.entries().map_err(stream)? {
        let mut entry = entry.map_err(stream)?;
        let path = entry.path().map_err(stream)?.into_owned();
        let relative = relative_path(&path)?;
        let name = relative
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        ) {
            // Device nodes and fifos of an image are not recreated: the
            // container gets its own minimal /dev, and the tar crate would
            // turn them into empty regular files.
            tracing::debug!(member = %path.display(), "image layer: skipping a device or fifo member");
            continue;
        }
        if name == OPAQUE_MARKER {
            let dir = inside_parent(&canonical_dest, &relative)?;
            set_opaque(&dir)?;
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let dir = inside_parent(&canonical_dest, &relative)?;
            make_whiteout(&dir.join(hidden))?;
        } else {
            let unpacked = entry.unpack_in(&canonical_dest).map_err(|error| {
                UnpackError::Stream(format!("member {}: {error}", path.display()))
            })?;
            if !unpacked {
                return Err(UnpackError::Stream(format!(
                    "member {} would be written outside the layer",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The member path with `./` and a leading `/` removed; `..` is refused.
fn relative_path(path: &Path) -> Result<PathBuf, UnpackError> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(UnpackError::Stream(format!(
                    "member {} leaves the layer root",
                    path.display()
                )));
            }
        }
    }
    Ok(relative)
}

/// Creates the parent directory of `relative` and checks that, symlinks
/// resolved, it is still inside `dest`.
fn inside_parent(dest: &Path, relative: &Path) -> Result<PathBuf, UnpackError> {
    let parent = dest.join(relative.parent().unwrap_or(Path::new("")));
    std::fs::create_dir_all(&parent).map_err(|source| UnpackError::Host {
        op: "mkdir",
        path: parent.clone(),
        source,
    })?;
    let resolved = parent.canonicalize().map_err(|source| UnpackError::Host {
        op: "canonicalize",
        path: parent.clone(),
        source,
    })?;
    if !resolved.starts_with(dest) {
        return Err(UnpackError::Stream(format!(
            "whiteout {} would be placed outside the layer",
            relative.display()
        )));
    }
    Ok(resolved)
}

fn make_whiteout(path: &Path) -> Result<(), UnpackError> {
    // A member of the same layer may have been written there first.
    if path.symlink_metadata().is_ok() {
        let removed = match path.is_dir() && !path.is_symlink() {
            true => std::fs::remove_dir_all(path),
            false => std::fs::remove_file(path),
        };
        removed.map_err(|source| UnpackError::Host {
            op: "remove",
            path: path.to_owned(),
            source,
        })?;
    }
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|errno| UnpackError::Host {
        op: "mknod (whiteout)",
        path: path.to_owned(),
        source: io::Error::from(errno),
    })
}

fn set_opaque(dir: &Path) -> Result<(), UnpackError> {
    xattr::set(dir, OPAQUE_XATTR, b"y").map_err(|source| UnpackError::Host {
        op: "setxattr trusted.overlay.opaque",
        path: dir.to_owned(),
        source,
    })
}

/// Whether `metadata` is an overlay whiteout (a character device 0/0).
pub(crate) fn is_whiteout(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    metadata.file_type().is_char_device() && metadata.rdev() == 0
}

/// Whether `dir` carries overlayfs' opaque marker.
pub(crate) fn is_opaque(dir: &Path) -> bool {
    matches!(xattr::get(dir, OPAQUE_XATTR), Ok(Some(value)) if value == b"y")
}
