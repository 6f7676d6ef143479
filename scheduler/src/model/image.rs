//! Container images as the scheduler asks for them: a Docker-style
//! reference (`name[:tag][@sha256:<hex>]`) checked before a job is
//! accepted, and the image a run's executor resolved, read back from its
//! status labels. Pure: the scheduler never reads an image; the executor
//! resolves it from its agent's local image store and says which manifest
//! it ran (`drover.image.digest`). Simulated agents run no image and say
//! nothing, so a run without those labels shows no digest.

use std::fmt;

/// The status label with the manifest digest the executor resolved
/// (`sha256:<hex>`), on TASK_STARTING, TASK_RUNNING and later updates.
pub const DIGEST_LABEL: &str = "drover.image.digest";
/// The status label with the image's name as the task asked for it.
pub const NAME_LABEL: &str = "drover.image.name";

/// A parsed image reference: repository, optional tag, optional digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository, with its registry host if named
    /// (`busybox`, `drover-test/busybox`, `registry:5000/team/app`).
    pub repository: String,
    /// The tag, if named.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<64 hex>`), if named.
    pub digest: Option<String>,
}

/// Why a reference was refused; the text is shown with the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// Nothing was named.
    #[error("must not be empty")]
    Empty,
    /// The repository part breaks Docker's grammar.
    #[error("repository {0:?} must be lowercase letters, digits and separators (. _ - /), with an optional registry host")]
    Repository(String),
    /// The tag breaks Docker's grammar.
    #[error(
        "tag {0:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    Tag(String),
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error("digest {0:?} must be sha256: followed by 64 lowercase hex digits")]
    Digest(String),
}

impl ImageRef {
    /// Parses `name[:tag][@digest]` as Docker writes references.
    pub fn parse(text: &str) -> Result<ImageRef, ImageRefError> {
        if text.trim().is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a
        // registry's port (`host:5000/app`).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        check_repository(repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        Ok(ImageRef {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Builds a reference from Titus' parts (`Image {name, tag, digest}`):
    /// the digest wins when both are given, as Titus resolves it.
    pub fn from_parts(name: &str, tag: &str, digest: &str) -> Result<ImageRef, ImageRefError> {
        let text = if !digest.is_empty() {
            format!("{name}@{digest}")
        } else if !tag.is_empty() {
            format!("{name}:{tag}")
        } else {
            name.to_owned()
        };
        ImageRef::parse(&text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_digest(digest: &str) -> Result<(), ImageRefError> {
    if is_sha256_digest(digest) {
        Ok(())
    } else {
        Err(ImageRefError::Digest(digest.to_owned()))
    }
}

/// Whether `text` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_tag(tag: &str) -> Result<(), ImageRefError> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ImageRefError::Tag(tag.to_owned()))
    }
}

fn check_repository(repository: &str) -> Result<(), ImageRefError> {
    let bad = || ImageRefError::Repository(repository.to_owned());
    let mut parts: Vec<&str> = repository.split('/').collect();
    // Docker's rule: the first part is a registry host when it has a '.'
    // or a ':' or is `localhost`, and there is more after it.
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let host_ok = !first.is_empty()
                && first
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
            if !host_ok {
                return Err(bad());
            }
            parts.remove(0);
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if parts.iter().all(|c| component_ok(c)) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The image a run's executor resolved, as its status labels said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunImage {
    /// The name as the task asked for it (`drover.image.name`).
    pub name: Option<String>,
    /// The manifest digest it resolved to (`drover.image.digest`).
    pub digest: Option<String>,
}

impl RunImage {
    /// The image as stored (its two columns), none when neither was said.
    pub fn from_stored(name: Option<String>, digest: Option<String>) -> Option<Self> {
        (name.is_some() || digest.is_some()).then_some(RunImage { name, digest })
    }

    /// The image as one reference for views that show a string (Peloton's
    /// `ContainerStatus.image`): `name@digest` when the executor said both
    /// (the name as asked, without a digest of its own), else what it said.
    pub fn reference(&self) -> Option<String> {
        match (&self.name, &self.digest) {
            (Some(name), Some(digest)) => {
                let name = name.split_once('@').map_or(name.as_str(), |(n, _)| n);
                Some(format!("{name}@{digest}"))
            }
            (Some(name), None) => Some(name.clone()),
            (None, digest) => digest.clone(),
        }
    }

    /// The image named by a status's labels, if its executor named one. A
    /// digest that is not `sha256:<hex>` is not taken: a peer's label is
    /// shown to users as a digest only when it is one.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut image = RunImage::default();
        for (key, value) in labels {
            match key {
                DIGEST_LABEL if is_sha256_digest(value) => image.digest = Some(value.to_owned()),
                NAME_LABEL if !value.is_empty() => image.name = Some(value.to_owned()),
                _ => {}
            }
        }
        (image.name.is_some() || image.digest.is_some()).then_some(image)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_into_repository_tag_and_digest() {
        let digest = format!("sha256:{HEX}");
        let table: Vec<(String, &str, Option<&str>, Option<&str>)> = vec![
            ("busybox".into(), "busybox", None, None),
            ("busybox:1.35".into(), "busybox", Some("1.35"), None),
            (
                "drover-test/busybox:1".into(),
                "drover-test/busybox",
                Some("1"),
                None,
            ),
            (
                "localhost:5000/team/app:v2".into(),
                "localhost:5000/team/app",
                Some("v2"),
                None,
            ),
            (
                format!("busybox@{digest}"),
                "busybox",
                None,
                Some(digest.as_str()),
            ),
            (
                format!("busybox:1@{digest}"),
                "busybox",
                Some("1"),
                Some(digest.as_str()),
            ),
        ];
        for (text, repository, tag, want_digest) in table {
            let r = ImageRef::parse(&text).unwrap();
            assert_eq!(r.repository, repository, "{text}");
            assert_eq!(r.tag.as_deref(), tag, "{text}");
            assert_eq!(r.digest.as_deref(), want_digest, "{text}");
            assert_eq!(r.to_string(), text, "shown as written");
        }
    }

    #[test]
    fn bad_references_are_refused_with_the_part_at_fault() {
        assert_eq!(ImageRef::parse(" "), Err(ImageRefError::Empty));
        assert!(matches!(
            ImageRef::parse("BusyBox"),
            Err(ImageRefError::Repository(_))
        ));
        assert!(matches!(
            ImageRef::parse("busybox:-x"),
            Err(ImageRefError::Tag(_))
        ));
        assert!(matches!(
            ImageRef::parse("busybox@sha256:abc"),
            Err(ImageRefError::Digest(_))
        ));
        assert!(matches!(
            ImageRef::parse("a//b"),
            Err(ImageRefError::Repository(_))
        ));
        assert!(matches!(
            ImageRef::parse("busybox:1 2"),
            Err(ImageRefError::Tag(_))
        ));
    }

    #[test]
    fn titus_parts_prefer_the_digest() {
        let digest = format!("sha256:{HEX}");
        assert_eq!(
            ImageRef::from_parts("app", "latest", &digest)
                .unwrap()
                .to_string(),
            format!("app@{digest}")
        );
        assert_eq!(
            ImageRef::from_parts("app", "latest", "")
                .unwrap()
                .to_string(),
            "app:latest"
        );
        assert_eq!(
            ImageRef::from_parts("app", "", "").unwrap().to_string(),
            "app"
        );
    }

    #[test]
    fn a_run_image_is_shown_as_name_at_digest() {
        let digest = format!("sha256:{HEX}");
        let image = |name: Option<&str>, digest: Option<&str>| RunImage {
            name: name.map(str::to_owned),
            digest: digest.map(str::to_owned),
        };
        let d = Some(digest.as_str());
        let both = image(Some("busybox:1"), d).reference().unwrap();
        assert_eq!(both, format!("busybox:1@{digest}"));
        let pinned = format!("busybox@{digest}");
        let same = image(Some(&pinned), d).reference().unwrap();
        assert_eq!(same, pinned, "the digest is not written twice");
        assert_eq!(image(Some("a"), None).reference().as_deref(), Some("a"));
        assert_eq!(image(None, d).reference(), Some(digest.clone()));
    }

    #[test]
    fn status_labels_give_the_run_image_and_never_a_false_digest() {
        let digest = format!("sha256:{HEX}");
        let image = RunImage::from_labels([
            ("other", "x"),
            (NAME_LABEL, "busybox:1"),
            (DIGEST_LABEL, digest.as_str()),
        ])
        .unwrap();
        assert_eq!(image.name.as_deref(), Some("busybox:1"));
        assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(RunImage::from_labels([("other", "x")]), None);
        let bad = RunImage::from_labels([(DIGEST_LABEL, "md5:00")]);
        assert_eq!(bad, None, "not a digest: not shown as one");
    }
}
