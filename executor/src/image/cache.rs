//! The content-addressed cache of unpacked layers, shared by every
//! executor on the host. Layout under the cache root:
//!
//! ```text
//! layers/<hex>/rootfs/      a complete unpacked layer (overlay lower-dir form)
//! layers/<hex>/layer.json   its digest and size; its mtime is the last use
//! tmp/                      layers being unpacked (renamed into layers/ when done)
//! trash/                    layers being deleted (renamed out of layers/ first)
//! leases/<holder>.<id>.lease  the layers a live container uses, flock'ed by it
//! locks/<hex>.lock          serialises the unpacking of one layer
//! gc.lock                   shared while preparing, exclusive while collecting
//! ```
//!
//! Why it is safe with several executors: a layer appears in `layers/` only
//! by `rename`, complete, so a reader never sees half of one, and two
//! racers end with one copy (the loser's rename fails and it drops its
//! own). A lease file is locked before it is renamed into `leases/` and
//! stays locked while its container lives, so the collector tells a live
//! lease from the leftover of a crashed executor by trying the lock. The
//! shared `gc.lock` covers "lease written, layers ensured" so a collection
//! never deletes a layer between a prepare's lease and its use.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::error::ImageError;
use super::gc_plan::CachedLayer;
use super::reference::digest_hex;

/// The cache at one root directory.
#[derive(Debug)]
pub(crate) struct LayerCache {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerRecord {
    digest: String,
    size_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    layers: Vec<String>,
}

/// A held lease: the layers stay while it lives. Dropping it releases them.
#[derive(Debug)]
pub(crate) struct Lease {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Already gone if ImageStore::release removed it first.
        let _ = fs::remove_file(&self.path);
    }
}

impl LayerCache {
    /// Opens (creating) the cache under `root`.
    pub(crate) fn open(root: &Path) -> Result<Self, ImageError> {
        for dir in ["layers", "tmp", "trash", "leases", "locks"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|source| ImageError::io("mkdir", &path, source))?;
        }
        Ok(LayerCache {
            root: root.to_owned(),
        })
    }

    fn layer_dir(&self, digest: &str) -> PathBuf {
        self.root.join("layers").join(digest_hex(digest))
    }

    /// Where the unpacked layer `digest` lives (present or not).
    pub(crate) fn rootfs(&self, digest: &str) -> PathBuf {
        self.layer_dir(digest).join("rootfs")
    }

    /// Holds the collector off while a prepare leases and unpacks.
    pub(crate) fn hold_off_collection(&self) -> Result<Flock<File>, ImageError> {
        self.lock_file(&self.root.join("gc.lock"), FlockArg::LockShared)
    }

    /// The collection lock; None if `wait` is false and a prepare holds it.
    pub(crate) fn lock_for_collection(
        &self,
        wait: bool,
    ) -> Result<Option<Flock<File>>, ImageError> {
        let arg = if wait {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockExclusiveNonblock
        };
        match self.lock_file(&self.root.join("gc.lock"), arg) {
            Ok(lock) => Ok(Some(lock)),
            Err(ImageError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::EWOULDBLOCK as i32) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn lock_file(&self, path: &Path, arg: FlockArg) -> Result<Flock<File>, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| ImageError::io("open", path, source))?;
        Flock::lock(file, arg)
            .map_err(|(_, errno)| ImageError::io("flock", path, io::Error::from(errno)))
    }

    /// Records that `holder` uses `layers` until the returned lease drops.
    pub(crate) fn lease(&self, holder: &str, layers: &[String]) -> Result<Lease, ImageError> {
        let record = LeaseRecord {
            holder: holder.to_owned(),
            layers: layers.to_vec(),
        };
        let name = format!(
            "{}.{}.lease",
            file_safe(holder),
            uuid::Uuid::new_v4().simple()
        );
        let staging = self.root.join("tmp").join(&name);
        let mut file =
            File::create(&staging).map_err(|source| ImageError::io("create", &staging, source))?;
        let json = serde_json::to_vec(&record)
            .map_err(|error| ImageError::io("encode", &staging, error.into()))?;
        file.write_all(&json)
            .map_err(|source| ImageError::io("write", &staging, source))?;
        // Locked before it becomes visible: the collector never sees it unlocked while we live.
        let lock = Flock::lock(file, FlockArg::LockShared)
            .map_err(|(_, errno)| ImageError::io("flock", &staging, io::Error::from(errno)))?;
        let path = self.root.join("leases").join(&name);
        fs::rename(&staging, &path).map_err(|source| ImageError::io("rename", &path, source))?;
        Ok(Lease { path, _lock: lock })
    }

    /// Removes every lease of `holder`; returns how many.
    pub(crate) fn release(&self, holder: &str) -> Result<usize, ImageError> {
        let mut released = 0;
        for (path, record) in self.lease_records()? {
            if record.holder == holder {
                match fs::remove_file(&path) {
                    Ok(()) => released += 1,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(ImageError::io("remove", &path, source)),
                }
            }
        }
        Ok(released)
    }

    fn lease_records(&self) -> Result<Vec<(PathBuf, LeaseRecord)>, ImageError> {
        let dir = self.root.join("leases");
        let mut records = Vec::new();
        for path in list_dir(&dir)? {
            let Ok(bytes) = fs::read(&path) else { continue };
            match serde_json::from_slice::<LeaseRecord>(&bytes) {
                Ok(record) => records.push((path, record)),
                Err(error) => {
                    tracing::warn!(lease = %path.display(), %error, "image cache: ignoring an unreadable lease")
                }
            }
        }
        Ok(records)
    }

    /// The layers live leases hold. Leases whose holder died (their lock is
    /// free) are removed on the way.
    pub(crate) fn leased_layers(&self) -> Result<HashSet<String>, ImageError> {
        let mut leased = HashSet::new();
        for (path, record) in self.lease_records()? {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(_stale) => {
                    tracing::info!(lease = %path.display(), holder = %record.holder, "image cache: removing the lease of a holder that is gone");
                    let _ = fs::remove_file(&path);
                }
                Err(_) => leased.extend(record.layers),
            }
        }
        Ok(leased)
    }

    /// The unpacked layer `digest`, unpacking it with `unpack` (into an
    /// empty directory) unless another prepare already did.
    pub(crate) fn ensure(
        &self,
        digest: &str,
        unpack: impl FnOnce(&Path) -> Result<(), ImageError>,
    ) -> Result<PathBuf, ImageError> {
        let hex = digest_hex(digest);
        let _unpacking = self.lock_file(
            &self.root.join("locks").join(format!("{hex}.lock")),
            FlockArg::LockExclusive,
        )?;
        let layer_dir = self.layer_dir(digest);
        if layer_dir.join("layer.json").is_file() {
            self.touch(digest)?;
            return Ok(self.rootfs(digest));
        }
        let staging = self
            .root
            .join("tmp")
            .join(format!("{hex}.{}", uuid::Uuid::new_v4().simple()));
        let staged_rootfs = staging.join("rootfs");
        fs::create_dir_all(&staged_rootfs)
            .map_err(|source| ImageError::io("mkdir", &staged_rootfs, source))?;
        let staged = unpack(&staged_rootfs).and_then(|()| {
            let record = LayerRecord {
                digest: digest.to_owned(),
                size_bytes: disk_usage(&staged_rootfs)?,
            };
            let json = serde_json::to_vec(&record)
                .map_err(|error| ImageError::io("encode", &staging, error.into()))?;
            let path = staging.join("layer.json");
            fs::write(&path, json).map_err(|source| ImageError::io("write", &path, source))
        });
        if let Err(error) = staged {
            remove_tree(&staging);
            return Err(error);
        }
        match fs::rename(&staging, &layer_dir) {
            Ok(()) => {}
            // Another cache user (without our lock: an older layout) won the race.
            Err(error) if layer_dir.join("layer.json").is_file() => {
                tracing::debug!(%error, layer = %digest, "image cache: layer appeared while unpacking; keeping the first copy");
                remove_tree(&staging);
            }
            Err(source) => {
                remove_tree(&staging);
                return Err(ImageError::io("rename", &layer_dir, source));
            }
        }
        Ok(self.rootfs(digest))
    }

    /// Marks `digest` as used now (its LRU position).
    fn touch(&self, digest: &str) -> Result<(), ImageError> {
        let path = self.layer_dir(digest).join("layer.json");
        let file = File::options()
            .append(true)
            .open(&path)
            .map_err(|source| ImageError::io("open", &path, source))?;
        file.set_modified(SystemTime::now())
            .map_err(|source| ImageError::io("touch", &path, source))
    }

    /// Every complete layer in the cache.
    pub(crate) fn layers(&self) -> Result<Vec<CachedLayer>, ImageError> {
        let mut layers = Vec::new();
        for dir in list_dir(&self.root.join("layers"))? {
            let path = dir.join("layer.json");
            let (Ok(bytes), Ok(metadata)) = (fs::read(&path), fs::metadata(&path)) else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<LayerRecord>(&bytes) else {
                tracing::warn!(layer = %dir.display(), "image cache: ignoring a layer with an unreadable record");
                continue;
            };
            let last_used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            layers.push(CachedLayer {
                digest: record.digest,
                size_bytes: record.size_bytes,
                last_used,
            });
        }
        Ok(layers)
    }

    /// Deletes the layer `digest`: out of `layers/` first, then from disk.
    /// Only under the exclusive collection lock.
    pub(crate) fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let layer_dir = self.layer_dir(digest);
        let trash = self.root.join("trash").join(format!(
            "{}.{}",
            digest_hex(digest),
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(&layer_dir, &trash)
            .map_err(|source| ImageError::io("rename", &layer_dir, source))?;
        fs::remove_dir_all(&trash).map_err(|source| ImageError::io("remove", &trash, source))?;
        // Its unpack lock goes too: removing a lock file is safe only here,
        // under the exclusive collection lock, when no prepare can hold it.
        let lock = self
            .root
            .join("locks")
            .join(format!("{}.lock", digest_hex(digest)));
        match fs::remove_file(&lock) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("remove", &lock, error))
            }
            _ => Ok(()),
        }
    }

    /// Empties `tmp/` and `trash/` of what crashed prepares and collections
    /// left. Only under the exclusive collection lock: no prepare is running.
    pub(crate) fn sweep_leftovers(&self) -> Result<(), ImageError> {
        for dir in ["tmp", "trash"] {
            for path in list_dir(&self.root.join(dir))? {
                remove_tree(&path);
            }
        }
        Ok(())
    }
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let entries = fs::read_dir(dir).map_err(|source| ImageError::io("read dir", dir, source))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

fn remove_tree(path: &Path) {
    let removed = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    };
    if let Err(error) = removed {
        tracing::warn!(path = %path.display(), %error, "image cache: could not remove a leftover");
    }
}

/// Bytes `dir` takes on disk (allocated blocks, symlinks not followed).
fn disk_usage(dir: &Path) -> Result<u64, ImageError> {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for path in list_dir(&dir)? {
            let metadata = fs::symlink_metadata(&path)
                .map_err(|source| ImageError::io("stat", &path, source))?;
            total += metadata.blocks() * 512;
            if metadata.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(total)
}

/// `holder` as a file-name part: anything but `[A-Za-z0-9._-]` becomes `_`
/// (the record inside keeps the exact holder).
fn file_safe(holder: &str) -> String {
    holder
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
