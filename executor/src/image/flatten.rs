//! Layers merged into one directory, for hosts where overlayfs is refused:
//! each layer (in [`super::unpack`]'s overlay form) is copied over the
//! ones below it, a whiteout deletes what it hides and an opaque directory
//! empties its lower contents first. Hard links inside a layer are copied
//! as separate files; ownership, modes and symlinks are kept.

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::ImageError;
use super::unpack::{is_opaque, is_whiteout};

/// Copies `layers` (lowest first) into `dest`, which must exist and be empty.
pub fn flatten_layers(layers: &[impl AsRef<Path>], dest: &Path) -> Result<(), ImageError> {
    for layer in layers {
        copy_dir(layer.as_ref(), dest)?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), ImageError> {
    let entries = fs::read_dir(from).map_err(|source| ImageError::io("read dir", from, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| ImageError::io("read dir", from, source))?;
        let source_path = entry.path();
        let target = to.join(entry.file_name());
        let metadata = fs::symlink_metadata(&source_path)
            .map_err(|source| ImageError::io("stat", &source_path, source))?;
        if is_whiteout(&metadata) {
            remove_any(&target)?;
            continue;
        }
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            // An opaque directory hides everything below it.
            if is_opaque(&source_path) {
                remove_any(&target)?;
            }
            if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                remove_any(&target)?;
                fs::create_dir(&target)
                    .map_err(|source| ImageError::io("mkdir", &target, source))?;
            }
            copy_dir(&source_path, &target)?;
        } else {
            remove_any(&target)?;
            if file_type.is_symlink() {
                let link = fs::read_link(&source_path)
                    .map_err(|source| ImageError::io("readlink", &source_path, source))?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|source| ImageError::io("symlink", &target, source))?;
            } else if file_type.is_file() {
                fs::copy(&source_path, &target)
                    .map_err(|source| ImageError::io("copy", &target, source))?;
            } else {
                // Devices, fifos and sockets of an image: the container gets
                // its own /dev, so they are not recreated.
                continue;
            }
        }
        keep_owner_and_mode(&target, &metadata)?;
    }
    Ok(())
}

fn keep_owner_and_mode(target: &Path, metadata: &fs::Metadata) -> Result<(), ImageError> {
    lchown(target, Some(metadata.uid()), Some(metadata.gid()))
        .map_err(|source| ImageError::io("chown", target, source))?;
    if !metadata.file_type().is_symlink() {
        fs::set_permissions(target, fs::Permissions::from_mode(metadata.mode() & 0o7777))
            .map_err(|source| ImageError::io("chmod", target, source))?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), ImageError> {
    let removed = match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => Err(error),
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    removed.map_err(|source| ImageError::io("remove", path, source))
}
