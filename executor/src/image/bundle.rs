//! One image bundle of the local store, read the same way whether it is a
//! directory (an OCI layout) or a tarball (`docker save`, or an OCI layout
//! packed as a tar): named members opened for reading. Members of a tarball
//! are indexed once and read in place, never extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::error::ImageError;

/// Manifests, configs and indexes are small; a bigger one is refused rather
/// than read into memory (layers are streamed and have no such bound).
pub(crate) const MAX_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// A directory or a tarball holding an image's blobs and metadata.
#[derive(Debug)]
pub(crate) enum Bundle {
    /// An OCI image layout directory.
    Dir(PathBuf),
    /// A tarball: its regular members by normalised path, as (offset, size).
    Tar {
        /// The tarball.
        path: PathBuf,
        /// Member path (no leading `./`) → (data offset, size).
        members: HashMap<String, (u64, u64)>,
    },
}

impl Bundle {
    /// Indexes the regular-file members of the tarball at `path`.
    pub(crate) fn tar(path: &Path) -> Result<Self, ImageError> {
        let file = File::open(path).map_err(|source| ImageError::io("open", path, source))?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let entries = archive
            // Seeks over member data: indexing a large tarball reads only its headers.
            .entries_with_seek()
            .map_err(|source| ImageError::io("read tar", path, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| ImageError::io("read tar", path, source))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(|source| ImageError::io("read tar", path, source))?;
            let name = name.to_string_lossy();
            let name = name.strip_prefix("./").unwrap_or(&name).to_owned();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Bundle::Tar {
            path: path.to_owned(),
            members,
        })
    }

    /// The bundle's path in the store.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Bundle::Dir(path) | Bundle::Tar { path, .. } => path,
        }
    }

    /// The bundle's name: the directory's name, or the tarball's without `.tar`.
    pub(crate) fn name(&self) -> Option<&str> {
        let name = self.path().file_name()?.to_str()?;
        Some(name.strip_suffix(".tar").unwrap_or(name))
    }

    /// Whether the bundle has the member `member`.
    pub(crate) fn has(&self, member: &str) -> bool {
        match self {
            Bundle::Dir(dir) => is_inside(member) && dir.join(member).is_file(),
            Bundle::Tar { members, .. } => members.contains_key(member),
        }
    }

    /// Opens `member` for streaming, with its size. A member path that
    /// would leave the bundle (`..`, absolute) is reported as not found.
    pub(crate) fn open(&self, member: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("no member {member:?}"));
        if !is_inside(member) {
            return Err(not_found());
        }
        match self {
            Bundle::Dir(dir) => {
                let file = File::open(dir.join(member))?;
                let size = file.metadata()?.len();
                Ok((Box::new(file), size))
            }
            Bundle::Tar { path, members } => {
                let (offset, size) = *members.get(member).ok_or_else(not_found)?;
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                Ok((Box::new(file.take(size)), size))
            }
        }
    }

    /// Reads a small JSON member whole.
    pub(crate) fn read_small(&self, member: &str) -> io::Result<Vec<u8>> {
        let (reader, size) = self.open(member)?;
        if size > MAX_JSON_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{size} bytes, more than the {MAX_JSON_BYTES} allowed for metadata"),
            ));
        }
        let mut bytes = Vec::new();
        reader.take(MAX_JSON_BYTES).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// `member` as a path for messages.
    pub(crate) fn describe(&self, member: &str) -> String {
        format!("{}/{member}", self.path().display())
    }
}

fn is_inside(member: &str) -> bool {
    let path = Path::new(member);
    !member.is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_outside_the_bundle_are_refused() {
        assert!(is_inside("blobs/sha256/abc"));
        for outside in ["", "/etc/passwd", "../x", "blobs/../../x", "./index.json"] {
            assert!(!is_inside(outside), "{outside:?}");
        }
    }

    #[test]
    fn a_directory_bundle_does_not_open_members_outside_it() {
        let dir = std::env::temp_dir();
        let bundle = Bundle::Dir(dir.join("drover-no-such-bundle"));
        let error = bundle.open("../../etc/passwd").err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
