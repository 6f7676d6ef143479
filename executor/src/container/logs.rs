//! A task's stdout and stderr, pumped from a pipe into sandbox files with
//! size-capped rotation (`stdout`, `stdout.1`, ... `stdout.<keep>`), so a
//! chatty task cannot fill the disk. The executor holds the read end; the
//! task only ever sees a pipe.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// When to rotate and how much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Largest size of the live file, in bytes. Default 10 MiB, Mesos'
    /// logrotate module default `max_stdout_size`.
    pub max_bytes: u64,
    /// Rotated files kept besides the live one. Default 2.
    pub keep: usize,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 20,
            keep: 2,
        }
    }
}

impl RotationPolicy {
    /// How many more bytes a file of `current` bytes may take before it
    /// must be rotated (at least one, so a zero cap still makes progress).
    pub fn room(&self, current: u64) -> u64 {
        self.max_bytes.max(1).saturating_sub(current)
    }

    /// The renames that rotate `path`, oldest first: `name.(k-1)` ->
    /// `name.k`, ..., `name` -> `name.1`. With `keep == 0` nothing is kept.
    pub fn renames(&self, path: &Path) -> Vec<(PathBuf, PathBuf)> {
        let numbered = |i: usize| {
            let mut name = path.as_os_str().to_os_string();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        };
        let mut out = Vec::new();
        for i in (1..self.keep).rev() {
            out.push((numbered(i), numbered(i + 1)));
        }
        if self.keep > 0 {
            out.push((path.to_path_buf(), numbered(1)));
        }
        out
    }
}

/// A pipe for one stream: (read end for [`pump`], write end for the child).
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    super::spawn::cloexec_pipe()
}

/// Copies everything from `read` into `path`, rotating per `policy`, until
/// every writer has closed the pipe. Returns the bytes copied.
pub async fn pump(read: OwnedFd, path: PathBuf, policy: RotationPolicy) -> std::io::Result<u64> {
    let mut source = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
    let mut file = open(&path).await?;
    let mut size = file.metadata().await?.len();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = source.read(&mut buf).await?;
        if n == 0 {
            file.flush().await?;
            return Ok(total);
        }
        // Split the chunk so no file ever exceeds the cap.
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if policy.room(size) == 0 {
                file = rotate(file, &path, policy).await?;
                size = 0;
            }
            let take = chunk.len().min(policy.room(size) as usize);
            file.write_all(&chunk[..take]).await?;
            chunk = &chunk[take..];
            size += take as u64;
            total += take as u64;
        }
    }
}

async fn rotate(
    mut file: tokio::fs::File,
    path: &Path,
    policy: RotationPolicy,
) -> std::io::Result<tokio::fs::File> {
    file.flush().await?;
    drop(file);
    for (from, to) in policy.renames(path) {
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // With nothing kept, truncate in place.
    if policy.keep == 0 {
        tokio::fs::File::create(path).await
    } else {
        open(path).await
    }
}

async fn open(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn room_is_what_is_left_under_the_cap() {
        let policy = RotationPolicy {
            max_bytes: 100,
            keep: 2,
        };
        assert_eq!(policy.room(0), 100);
        assert_eq!(policy.room(60), 40);
        assert_eq!(policy.room(100), 0);
        assert_eq!(
            RotationPolicy {
                max_bytes: 0,
                keep: 0
            }
            .room(0),
            1
        );
    }

    #[test]
    fn renames_shift_oldest_first() {
        let policy = RotationPolicy {
            max_bytes: 1,
            keep: 3,
        };
        let renames = policy.renames(Path::new("/s/stdout"));
        let names: Vec<_> = renames
            .iter()
            .map(|(a, b)| (a.to_str().unwrap(), b.to_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("/s/stdout.2", "/s/stdout.3"),
                ("/s/stdout.1", "/s/stdout.2"),
                ("/s/stdout", "/s/stdout.1")
            ]
        );
    }

    #[tokio::test]
    async fn pump_caps_each_file_and_keeps_the_newest_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let (read, write) = pipe().unwrap();
        let policy = RotationPolicy {
            max_bytes: 1000,
            keep: 2,
        };
        let pumping = tokio::spawn(pump(read, path.clone(), policy));
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::from(write);
            for i in 0..50u8 {
                file.write_all(&[b'a' + (i % 26); 100]).unwrap();
            }
        });
        writer.join().unwrap();
        let copied = pumping.await.unwrap().unwrap();
        assert_eq!(copied, 5000);
        for name in ["stdout", "stdout.1", "stdout.2"] {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert_eq!(len, 1000, "{name}");
        }
        assert!(!dir.path().join("stdout.3").exists());
        let live = std::fs::read(&path).unwrap();
        assert_eq!(*live.last().unwrap(), b'a' + (49 % 26));
    }
}
