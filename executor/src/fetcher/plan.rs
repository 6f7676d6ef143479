//! What to do with one `CommandInfo.URI`, decided without touching
//! anything: where it comes from ([`Source`]), the file it becomes in the
//! sandbox ([`output_name`]), what happens to that file afterwards
//! ([`After`]) and its key in the fetcher cache ([`cache_key`]). The rules
//! are Mesos' (`src/launcher/fetcher.cpp`, `src/slave/containerizer/fetcher.cpp`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One URI to fetch, in Drover's terms (from `CommandInfo.URI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchItem {
    /// The URI as the framework gave it.
    pub uri: String,
    /// Make the file executable (0755) and never extract it.
    pub executable: bool,
    /// Extract it when its name is an archive's (Mesos' default: true).
    pub extract: bool,
    /// Keep a copy in the fetcher cache and reuse it for the same URI.
    pub cache: bool,
    /// The file's path in the sandbox instead of the URI's basename.
    pub output_file: Option<String>,
}

impl FetchItem {
    /// The item of a Mesos `CommandInfo.URI`, with Mesos' defaults.
    pub fn from_mesos(uri: &drover_proto::v1::command_info::Uri) -> Self {
        FetchItem {
            uri: uri.value.clone(),
            executable: uri.executable.unwrap_or(false),
            extract: uri.extract.unwrap_or(true),
            cache: uri.cache.unwrap_or(false),
            output_file: uri.output_file.clone().filter(|f| !f.is_empty()),
        }
    }
}

/// Where a URI's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://`.
    Http(String),
    /// `file://PATH` or a bare absolute path.
    Local(PathBuf),
}

/// The source of `uri`, or why it cannot be fetched here.
pub fn source(uri: &str) -> Result<Source, String> {
    // Mesos trims leading whitespace before it looks at the scheme.
    let uri = uri.trim_start();
    if uri.is_empty() {
        return Err("the URI is empty".into());
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri
            .parse::<http::Uri>()
            .map(|_| Source::Http(uri.to_string()))
            .map_err(|e| format!("not a valid HTTP URI: {e}"));
    }
    let path = match uri.strip_prefix("file://") {
        Some(path) => path,
        None if uri.contains("://") => {
            let scheme = uri.split("://").next().unwrap_or_default();
            return Err(format!(
                "the scheme '{scheme}' is not supported (http, https, file:// and absolute paths are)"
            ));
        }
        None => uri,
    };
    if !path.starts_with('/') {
        return Err(
            "a relative path needs the agent's frameworks_home, which this executor has not; give an absolute path"
                .into(),
        );
    }
    Ok(Source::Local(PathBuf::from(path)))
}

/// The file the URI becomes, relative to the sandbox: `output_file` when
/// given (it may name subdirectories, never leave the sandbox), else the
/// last part of the URI's path.
pub fn output_name(item: &FetchItem) -> Result<PathBuf, String> {
    if let Some(output) = &item.output_file {
        let inside = !output.starts_with('/')
            && output
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !inside {
            return Err(format!(
                "output_file '{output}' must be a relative path inside the sandbox, without '.', '..' or empty parts"
            ));
        }
        return Ok(PathBuf::from(output));
    }
    let path = match source(&item.uri)? {
        Source::Http(uri) => uri
            .parse::<http::Uri>()
            .map(|u| u.path().to_string())
            .unwrap_or_default(),
        Source::Local(path) => path.to_string_lossy().into_owned(),
    };
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." => Ok(PathBuf::from(name)),
        _ => Err("the URI names no file (it ends with '/'); set output_file".into()),
    }
}

/// An archive the fetcher unpacks, by the suffixes Mesos' fetcher knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`
    Tar,
    /// `.tar.gz`, `.tgz`
    TarGz,
    /// `.tar.bz2`, `.tbz2`
    TarBz2,
    /// `.tar.xz`, `.txz`
    TarXz,
    /// `.zip`
    Zip,
    /// `.gz` (one file, gunzipped next to it without the suffix).
    Gz,
}

/// The archive kind of a file name, if it is one.
pub fn archive_of(name: &Path) -> Option<Archive> {
    let name = name.file_name()?.to_str()?;
    let kinds = [
        (".tar", Archive::Tar),
        (".tar.gz", Archive::TarGz),
        (".tgz", Archive::TarGz),
        (".tar.bz2", Archive::TarBz2),
        (".tbz2", Archive::TarBz2),
        (".tar.xz", Archive::TarXz),
        (".txz", Archive::TarXz),
        (".zip", Archive::Zip),
    ];
    // Longest suffixes first would matter only for `.gz`, checked last.
    if let Some((_, kind)) = kinds.iter().find(|(suffix, _)| name.ends_with(suffix)) {
        return Some(*kind);
    }
    name.ends_with(".gz").then_some(Archive::Gz)
}

/// What happens to the fetched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// `executable`: mode 0755, not extracted (it wins over `extract`).
    MakeExecutable,
    /// `extract` and an archive's name: unpacked into the sandbox (the
    /// archive stays, as Mesos leaves it).
    Extract(Archive),
    /// Kept as it is (Mesos logs a warning when `extract` named a file
    /// that is no archive).
    Keep,
}

/// What to do with `item` once it is at `name`.
pub fn after(item: &FetchItem, name: &Path) -> After {
    if item.executable {
        return After::MakeExecutable;
    }
    match archive_of(name) {
        Some(kind) if item.extract => After::Extract(kind),
        _ => After::Keep,
    }
}

/// The cache entry of a URI fetched for a user: Mesos keys its cache by
/// (user, URI). A hex SHA-256, so any URI makes a plain file name.
pub fn cache_key(user: Option<&str>, uri: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(user.unwrap_or("").as_bytes());
    hash.update([0u8]);
    hash.update(uri.trim_start().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One file of the fetcher cache, as [`evictions`] weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Its file name (a [`cache_key`]).
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was last added or used (larger is later).
    pub last_used: std::time::SystemTime,
}

/// The entries to remove so the cache holds at most `max_bytes`: least
/// recently used first, never `keep` (the entry a task is about to copy).
/// An entry alone larger than the bound stays while it is in use; the
/// next fetch evicts it.
pub fn evictions(mut entries: Vec<CacheEntry>, keep: &str, max_bytes: u64) -> Vec<String> {
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    entries.sort_by_key(|e| e.last_used);
    let mut evicted = Vec::new();
    for entry in entries {
        if total <= max_bytes {
            break;
        }
        if entry.name != keep {
            total -= entry.bytes;
            evicted.push(entry.name);
        }
    }
    evicted
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(uri: &str) -> FetchItem {
        FetchItem {
            uri: uri.into(),
            executable: false,
            extract: true,
            cache: false,
            output_file: None,
        }
    }

    #[test]
    fn sources_are_http_or_local_and_other_schemes_are_refused() {
        assert_eq!(
            source("  https://h:1/a/b.tgz?x=1").unwrap(),
            Source::Http("https://h:1/a/b.tgz?x=1".into())
        );
        assert_eq!(
            source("file:///srv/a.txt").unwrap(),
            Source::Local("/srv/a.txt".into())
        );
        assert_eq!(source("/srv/a").unwrap(), Source::Local("/srv/a".into()));
        assert!(source("hdfs://nn/a").unwrap_err().contains("'hdfs'"));
        assert!(source("rel/a").unwrap_err().contains("frameworks_home"));
        assert!(source("").is_err());
        assert!(source("http://bad host/").is_err());
    }

    #[test]
    fn the_output_is_the_uri_basename_or_a_relative_output_file() {
        assert_eq!(
            output_name(&item("http://h/d/app.tar.gz?sig=1")).unwrap(),
            PathBuf::from("app.tar.gz")
        );
        assert_eq!(
            output_name(&item("file:///srv/tool")).unwrap(),
            PathBuf::from("tool")
        );
        assert!(output_name(&item("http://h/d/")).is_err());
        let mut named = item("http://h/d/");
        named.output_file = Some("conf/app.json".into());
        assert_eq!(output_name(&named).unwrap(), PathBuf::from("conf/app.json"));
        for bad in ["/etc/passwd", "../x", "a/../../x", "a//b", "."] {
            named.output_file = Some(bad.into());
            assert!(output_name(&named).is_err(), "{bad}");
        }
    }

    #[test]
    fn archives_are_known_by_mesos_suffixes() {
        let kind = |n: &str| archive_of(Path::new(n));
        assert_eq!(kind("a.tar"), Some(Archive::Tar));
        assert_eq!(kind("a.tar.gz"), Some(Archive::TarGz));
        assert_eq!(kind("a.tgz"), Some(Archive::TarGz));
        assert_eq!(kind("a.tar.bz2"), Some(Archive::TarBz2));
        assert_eq!(kind("a.tbz2"), Some(Archive::TarBz2));
        assert_eq!(kind("a.tar.xz"), Some(Archive::TarXz));
        assert_eq!(kind("a.txz"), Some(Archive::TarXz));
        assert_eq!(kind("a.zip"), Some(Archive::Zip));
        assert_eq!(kind("a.json.gz"), Some(Archive::Gz));
        assert_eq!(kind("a.json"), None);
        assert_eq!(kind("tar"), None);
    }

    #[test]
    fn executable_wins_over_extract_and_extract_needs_an_archive() {
        let mut i = item("http://h/a.tgz");
        assert_eq!(
            after(&i, Path::new("a.tgz")),
            After::Extract(Archive::TarGz)
        );
        i.executable = true;
        assert_eq!(after(&i, Path::new("a.tgz")), After::MakeExecutable);
        i.executable = false;
        i.extract = false;
        assert_eq!(after(&i, Path::new("a.tgz")), After::Keep);
        i.extract = true;
        assert_eq!(after(&i, Path::new("a.txt")), After::Keep);
    }

    #[test]
    fn mesos_defaults_apply_to_unset_uri_fields() {
        let uri = drover_proto::v1::command_info::Uri {
            value: "http://h/a.zip".into(),
            ..Default::default()
        };
        let i = FetchItem::from_mesos(&uri);
        assert!(i.extract && !i.executable && !i.cache);
        assert_eq!(i.output_file, None);
    }

    #[test]
    fn the_least_recently_used_entries_go_until_the_cache_fits_never_the_one_in_use() {
        let at = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let entry = |name: &str, bytes, used| CacheEntry {
            name: name.into(),
            bytes,
            last_used: at(used),
        };
        let entries = vec![
            entry("new", 40, 30),
            entry("old", 30, 10),
            entry("mid", 30, 20),
        ];
        assert!(evictions(entries.clone(), "new", 100).is_empty());
        assert_eq!(evictions(entries.clone(), "new", 70), ["old"]);
        assert_eq!(evictions(entries.clone(), "new", 40), ["old", "mid"]);
        // The one in use stays even alone over the bound.
        assert_eq!(evictions(entries.clone(), "old", 10), ["mid", "new"]);
    }

    #[test]
    fn cache_keys_depend_on_user_and_uri_only() {
        let a = cache_key(Some("alice"), "http://h/a");
        assert_eq!(a, cache_key(Some("alice"), "  http://h/a"));
        assert_ne!(a, cache_key(Some("bob"), "http://h/a"));
        assert_ne!(a, cache_key(Some("alice"), "http://h/b"));
        assert_eq!(a.len(), 64);
    }
}
