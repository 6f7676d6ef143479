//! Reading and writing cgroupfs files, every error naming its path.

use std::path::Path;

use super::CgroupError;

pub(crate) fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> CgroupError {
    CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` to a cgroup file in one write(2), as cgroupfs expects.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|e| io_error("write", path, e))
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|e| io_error("read", path, e))
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let content = read(path)?;
    content.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content,
    })
}

/// A `max`/huge value means unlimited.
pub(crate) fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    let content = read(path)?;
    let trimmed = content.trim();
    if trimmed == "max" {
        return Ok(None);
    }
    let value: u64 = trimmed.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: content.clone(),
    })?;
    // v1 reports "unlimited" as the largest page-aligned i64.
    Ok((value < (1 << 62)).then_some(value))
}

/// The value of `key` in a flat-keyed file (`memory.events`, `cpu.stat`).
pub(crate) fn read_key(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let content = read(path)?;
    for line in content.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().and_then(|v| v.parse().ok());
            return match value {
                Some(v) => Ok(Some(v)),
                None => Err(CgroupError::Parse {
                    path: path.to_path_buf(),
                    content,
                }),
            };
        }
    }
    Ok(None)
}

pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let content = match std::fs::read_to_string(path) {
        Ok(content) => content,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read", path, e)),
    };
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: content.clone(),
            })
        })
        .collect()
}

pub(crate) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|e| io_error("mkdir", path, e))
}

/// rmdir(2), tolerating a directory that is already gone. cgroup
/// directories cannot be removed recursively: their files are not real.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("rmdir", path, e)),
    }
}
