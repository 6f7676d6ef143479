//! One scheduler per data directory: an exclusive `flock` on
//! `drover.lock` inside it, taken before the database is touched and held
//! for as long as the store is open. Two schedulers on one directory both
//! ran before it, took the framework from each other (68 and 67
//! re-subscriptions in 25 s) and both launched tasks; the second now stops
//! at once, naming the pid that holds the directory.
//!
//! `flock` rather than a pid file alone: the kernel drops the lock when its
//! holder exits, SIGKILL included, so a crash never leaves a stale lock to
//! clean up by hand. The pid written into the file is only for the message.

use super::super::StoreError;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "drover.lock";

/// The held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
}

impl DirLock {
    /// Takes the lock on `data_dir`, or says who holds it.
    pub fn take(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(LOCK_FILE);
        let io_error = |source| StoreError::LockFile {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(StoreError::Locked {
                    path,
                    holder: holder_pid(&mut file),
                });
            }
            Err((_, errno)) => return Err(io_error(std::io::Error::from(errno))),
        };
        write_pid(&mut locked).map_err(io_error)?;
        Ok(DirLock { _file: locked })
    }
}

/// The pid the holder wrote, if it wrote one.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holders_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::take(dir.path()).unwrap();
        // flock locks belong to the open file, so a second open in this
        // process is refused as another process would be.
        match DirLock::take(dir.path()) {
            Err(StoreError::Locked { path, holder }) => {
                assert_eq!(path, dir.path().join(LOCK_FILE));
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        DirLock::take(dir.path()).unwrap();
    }
}
