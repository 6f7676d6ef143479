//! The fetcher: a task's `CommandInfo.uris` brought into its sandbox
//! before it starts, as a Mesos agent's fetcher does
//! (`src/launcher/fetcher.cpp`): HTTP(S) downloads and local files
//! (`file://` or an absolute path), archives extracted (`extract`,
//! Mesos' default), `executable` files made 0755, `output_file` naming
//! the result, and `cache` reusing one download per (user, URI) from the
//! fetcher cache directory. A URI that cannot be fetched fails the task
//! (TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED) with a message naming it.
//!
//! # Layout
//! - [`plan`]: what to do with a URI (source, output name, extraction,
//!   cache key). Pure.
//! - [`http`]: HTTP(S) downloads with rustls and the system's roots.
//! - [`extract`]: unpacking tar (gz, bz2, xz), zip and gz.
//! - this file: [`fetch_all`], which carries a task's list out in order.

pub mod extract;
pub mod http;
pub mod plan;

use std::path::{Path, PathBuf};

pub use plan::FetchItem;
use plan::{After, Source};

/// Why a URI could not be fetched. The message names the URI.
#[derive(Debug, thiserror::Error)]
#[error("fetching '{uri}': {reason}")]
pub struct FetchError {
    /// The URI as given.
    pub uri: String,
    /// What went wrong.
    pub reason: String,
}

/// The fetcher cache: its directory (Mesos' `--fetcher_cache_dir`) and
/// size bound (Mesos' `--fetcher_cache_size`, 2 GiB by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherCache {
    /// One file per (user, URI).
    pub dir: PathBuf,
    /// The most the cache holds; least recently used entries go first.
    pub max_bytes: u64,
}

/// Where and for whom a task's URIs are fetched.
#[derive(Debug, Clone)]
pub struct FetchTarget<'a> {
    /// The task's sandbox.
    pub sandbox: &'a Path,
    /// The fetcher cache.
    pub cache: &'a FetcherCache,
    /// The task's user name (part of the cache key), if any.
    pub user: Option<&'a str>,
    /// uid and gid the fetched files are handed to, when the task runs as
    /// another user than the executor.
    pub owner: Option<(u32, u32)>,
}

/// Fetches every item into the sandbox, in order; the first failure
/// stops it. Returns the files fetched (before extraction).
pub async fn fetch_all(
    items: &[FetchItem],
    target: &FetchTarget<'_>,
) -> Result<Vec<PathBuf>, FetchError> {
    let mut downloader = None;
    let mut fetched = Vec::new();
    for item in items {
        let failed = |reason: String| FetchError {
            uri: item.uri.clone(),
            reason,
        };
        let name = plan::output_name(item).map_err(failed)?;
        let source = plan::source(&item.uri).map_err(failed)?;
        let dest = target.sandbox.join(&name);
        let before = entries(target.sandbox);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed(format!("creating {}: {e}", parent.display())))?;
        }
        if item.cache {
            let key = plan::cache_key(target.user, &item.uri);
            let cached = target.cache.dir.join(&key);
            if !cached.is_file() {
                tokio::fs::create_dir_all(&target.cache.dir)
                    .await
                    .map_err(|e| failed(format!("creating the fetcher cache: {e}")))?;
                // Download beside the entry, then rename: a reader never
                // sees half a file, and of two racing fetches one wins.
                let partial = cached.with_extension(format!("part-{}", uuid::Uuid::new_v4()));
                let result = fetch_to(&source, &partial, &mut downloader).await;
                let result = match result {
                    Ok(()) => tokio::fs::rename(&partial, &cached)
                        .await
                        .map_err(|e| format!("adding to the fetcher cache: {e}")),
                    Err(e) => Err(e),
                };
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                result.map_err(failed)?;
                tracing::info!(uri = %item.uri, "fetched into the cache");
            } else {
                tracing::info!(uri = %item.uri, "fetching from the cache");
                // Used now: the last to be evicted.
                if let Ok(file) = std::fs::File::options().append(true).open(&cached) {
                    let _ = file.set_modified(std::time::SystemTime::now());
                }
            }
            evict(target.cache, &key);
            copy_local(&cached, &dest).await.map_err(failed)?;
        } else {
            fetch_to(&source, &dest, &mut downloader)
                .await
                .map_err(failed)?;
        }
        finish(item, &name, &dest, target.sandbox)
            .await
            .map_err(failed)?;
        if let Some(owner) = target.owner {
            hand_over(target.sandbox, &before, owner).map_err(failed)?;
        }
        tracing::info!(uri = %item.uri, to = %dest.display(), "fetched");
        fetched.push(dest);
    }
    Ok(fetched)
}

/// Keeps the cache within its bound (see [`plan::evictions`]). Partial
/// downloads (`*.part-*`) are another task's and are not counted.
fn evict(cache: &FetcherCache, keep: &str) {
    let Ok(dir) = std::fs::read_dir(&cache.dir) else {
        return;
    };
    let entries = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            (meta.is_file() && !name.contains(".part-")).then(|| plan::CacheEntry {
                name,
                bytes: meta.len(),
                last_used: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
            })
        })
        .collect();
    for name in plan::evictions(entries, keep, cache.max_bytes) {
        match std::fs::remove_file(cache.dir.join(&name)) {
            Ok(()) => tracing::info!(entry = %name, "evicted from the fetcher cache"),
            Err(e) => tracing::warn!(entry = %name, error = %e, "evicting from the fetcher cache"),
        }
    }
}

/// Brings a source's bytes to `dest`.
async fn fetch_to(
    source: &Source,
    dest: &Path,
    downloader: &mut Option<http::Downloader>,
) -> Result<(), String> {
    match source {
        Source::Http(uri) => {
            if downloader.is_none() {
                *downloader = Some(http::Downloader::new()?);
            }
            match downloader {
                Some(d) => d.download(uri, dest).await,
                None => Err("no HTTP client".into()),
            }
        }
        Source::Local(path) => copy_local(path, dest).await,
    }
}

async fn copy_local(from: &Path, to: &Path) -> Result<(), String> {
    if !tokio::fs::metadata(from)
        .await
        .map(|m| m.is_file())
        .unwrap_or(false)
    {
        return Err(format!("{} is not a readable file", from.display()));
    }
    tokio::fs::copy(from, to)
        .await
        .map(drop)
        .map_err(|e| format!("copying {}: {e}", from.display()))
}

/// `executable` or extraction, as the plan says.
async fn finish(item: &FetchItem, name: &Path, dest: &Path, sandbox: &Path) -> Result<(), String> {
    match plan::after(item, name) {
        After::MakeExecutable => {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(|e| format!("making it executable: {e}"))
        }
        After::Extract(kind) => {
            let (archive, into) = (dest.to_path_buf(), sandbox.to_path_buf());
            tokio::task::spawn_blocking(move || extract::extract(kind, &archive, &into))
                .await
                .map_err(|_| "the extraction panicked".to_string())?
                .map_err(|e| format!("extracting: {e}"))
        }
        After::Keep => {
            if item.extract && !item.executable {
                tracing::debug!(uri = %item.uri, "not an archive: kept as it is");
            }
            Ok(())
        }
    }
}

/// The names at the top of the sandbox.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Hands what this fetch added to the sandbox to the task's user, as Mesos
/// runs its fetcher as that user.
fn hand_over(
    sandbox: &Path,
    before: &[std::ffi::OsString],
    (uid, gid): (u32, u32),
) -> Result<(), String> {
    for name in entries(sandbox) {
        if !before.contains(&name) {
            chown_tree(&sandbox.join(name), uid, gid)
                .map_err(|e| format!("handing the files to uid {uid}: {e}"))?;
        }
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
