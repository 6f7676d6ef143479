//! The journal on disk (drive): the state directory every master of a set
//! is given holds `CURRENT`, naming the journal file of the master that
//! leads (`journal-<master id>`), and that file. A master that takes over
//! replays the file `CURRENT` names, writes its own file starting with a
//! snapshot of what it adopted, then points `CURRENT` at it (write a
//! temporary file, rename: readers see the old name or the new, never a
//! half-written one) and removes the other journal files. A deposed
//! leader that has not yet noticed appends to a file nobody reads again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::replay::{replay, Cut, Recovered};

const CURRENT: &str = "CURRENT";
const PREFIX: &str = "journal-";

/// When the journal is compacted into a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct CompactionConfig {
    /// Never below this size (default 8 MiB: a few seconds of a 10,000
    /// task launch; smaller journals replay in milliseconds anyway).
    pub min_bytes: u64,
    /// Once the journal is this many times its last snapshot (default 4:
    /// a snapshot costs as much as writing the live state once, so
    /// compacting at 4x keeps the writes amortised to 1.33x the appends).
    pub factor: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_bytes: 8 << 20,
            factor: 4,
        }
    }
}

/// A journal file or directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Not retryable here: the master stops journaling (and says so).
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `CURRENT` names something that is not a journal file of this directory.
    #[error("{path} names {name:?}, which is not a journal file")]
    BadCurrent { path: PathBuf, name: String },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct JournalDir {
    dir: PathBuf,
    compaction: CompactionConfig,
}

/// What was read back.
#[derive(Debug)]
pub struct ReadBack {
    pub recovered: Recovered,
    /// The file replayed (none: a fresh directory).
    pub file: Option<PathBuf>,
    pub bytes: usize,
    pub cut: Option<Cut>,
}

impl JournalDir {
    /// The directory (created if missing).
    pub fn open(dir: &Path, compaction: CompactionConfig) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(io("creating the state dir", dir))?;
        Ok(JournalDir {
            dir: dir.to_owned(),
            compaction,
        })
    }

    /// Replays the journal `CURRENT` names (nothing if there is none yet).
    pub fn read(&self) -> Result<ReadBack, JournalError> {
        let current = self.dir.join(CURRENT);
        let name = match std::fs::read_to_string(&current) {
            Ok(name) => name.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ReadBack {
                    recovered: Recovered::default(),
                    file: None,
                    bytes: 0,
                    cut: None,
                })
            }
            Err(e) => return Err(io("reading", &current)(e)),
        };
        if !name.starts_with(PREFIX) || name.contains('/') {
            return Err(JournalError::BadCurrent {
                path: current,
                name,
            });
        }
        let file = self.dir.join(&name);
        let bytes = std::fs::read(&file).map_err(io("reading the journal", &file))?;
        let (recovered, cut) = replay(&bytes);
        Ok(ReadBack {
            recovered,
            file: Some(file),
            bytes: bytes.len(),
            cut,
        })
    }

    /// Starts `owner`'s journal with `snapshot` (the whole state it now
    /// holds, as frames), makes it the current one and removes the others.
    pub fn begin(&self, owner: &str, snapshot: &[u8]) -> Result<JournalWriter, JournalError> {
        let name = format!("{PREFIX}{owner}");
        let path = self.dir.join(&name);
        let file = write_replacing(&path, snapshot)?;
        let current = self.dir.join(CURRENT);
        write_replacing(&current, name.as_bytes())?;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let other = entry.file_name();
                let other = other.to_string_lossy();
                if other.starts_with(PREFIX) && *other != name {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(JournalWriter {
            path,
            file,
            len: snapshot.len() as u64,
            snapshot_len: snapshot.len() as u64,
            compaction: self.compaction,
        })
    }
}

/// Writes `path` whole through a temporary file and a rename; returns it
/// open for appending.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<File, JournalError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into place", path))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io("opening for appending", path))
}

/// The leading master's open journal.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    len: u64,
    snapshot_len: u64,
    compaction: CompactionConfig,
}

impl JournalWriter {
    /// Appends one event-loop turn's records with one `write()`. Not
    /// synced: see the module doc of `master::journal`.
    pub fn append(&mut self, frames: &[u8]) -> Result<(), JournalError> {
        self.file
            .write_all(frames)
            .map_err(io("appending to", &self.path))?;
        self.len += frames.len() as u64;
        Ok(())
    }

    /// Whether the journal has grown enough to be replaced by a snapshot.
    pub fn wants_compaction(&self) -> bool {
        self.len
            > self
                .compaction
                .min_bytes
                .max(self.snapshot_len.saturating_mul(self.compaction.factor))
    }

    /// Replaces the journal by `snapshot` (written aside, then renamed
    /// over it, so a crash leaves the old journal or the new one).
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<(), JournalError> {
        self.file = write_replacing(&self.path, snapshot)?;
        self.len = snapshot.len() as u64;
        self.snapshot_len = self.len;
        Ok(())
    }

    /// The journal's size now.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::master::journal::entry::{Entry, Kind};
    use crate::master::journal::replay::encode_frame;

    fn framework_record(framework: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let framework = v1_framework(framework);
        encode_frame(
            &Entry {
                kind: Some(Kind::Framework(framework)),
            },
            &mut out,
        );
        out
    }

    fn v1_framework(id: &str) -> drover_proto::v1::FrameworkInfo {
        drover_proto::v1::FrameworkInfo {
            id: Some(drover_proto::v1::FrameworkId { value: id.into() }),
            ..Default::default()
        }
    }

    #[test]
    fn the_new_leaders_journal_becomes_current_and_the_deposed_one_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let small = CompactionConfig {
            min_bytes: 0,
            factor: 2,
        };
        let dir = JournalDir::open(tmp.path(), small).unwrap();
        assert!(dir.read().unwrap().file.is_none(), "a fresh directory");
        let mut old = dir.begin("m1", &framework_record("fw1")).unwrap();
        old.append(&framework_record("fw2")).unwrap();
        let read = dir.read().unwrap();
        assert_eq!(read.recovered.frameworks.len(), 2);

        // The standby takes over: its journal starts with what it adopted.
        let mut new = dir.begin("m2", &framework_record("fw3")).unwrap();
        old.append(&framework_record("late")).unwrap();
        let read = dir.read().unwrap();
        let ids: Vec<_> = read.recovered.frameworks.keys().cloned().collect();
        assert_eq!(ids, ["fw3"], "the deposed leader's late write is not read");

        // Compaction replaces the journal with a snapshot.
        new.append(&framework_record("fw4")).unwrap();
        assert!(!new.wants_compaction(), "twice the snapshot");
        new.append(&framework_record("fw4")).unwrap();
        assert!(new.wants_compaction(), "past twice the snapshot");
        new.compact(&framework_record("fw5")).unwrap();
        assert!(!new.wants_compaction());
        new.append(&framework_record("fw6")).unwrap();
        let ids: Vec<_> = dir
            .read()
            .unwrap()
            .recovered
            .frameworks
            .into_keys()
            .collect();
        assert_eq!(ids, ["fw5", "fw6"]);
    }
}
