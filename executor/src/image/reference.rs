//! Image references as a task names them, and how they match the names an
//! image store records. Pure: no I/O.
//!
//! A Docker reference is `[host[:port]/]path[:tag][@sha256:<hex>]`; with
//! neither tag nor digest the tag is `latest`, as Docker's. An APPC image is
//! a name plus an optional id; Drover has no ACI support, so an APPC name is
//! looked up like a Docker repository and its id, when it is a sha256
//! digest, as a manifest digest.

use super::error::ImageError;

/// The only digest algorithm the store verifies.
const SHA256_PREFIX: &str = "sha256:";

/// An image a task asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageName {
    /// `Image.docker.name`.
    Docker(DockerReference),
    /// `Image.appc` `{name, id}`.
    Appc {
        /// The image name (`example.com/app`).
        name: String,
        /// The image id when given, normalised to `sha256:<hex>`.
        id: Option<String>,
    },
}

/// A parsed Docker image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerReference {
    /// The reference exactly as the task gave it.
    pub asked: String,
    /// Registry host (if any) and path, e.g. `drover-test/busybox`.
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pins a manifest digest.
    pub digest: Option<String>,
}

impl ImageName {
    /// Parses a Docker reference (`busybox:1.35`, `name@sha256:...`).
    pub fn docker(reference: &str) -> Result<Self, ImageError> {
        let invalid = |why| ImageError::InvalidReference {
            reference: reference.to_owned(),
            why,
        };
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(
                    parse_digest(digest)
                        .ok_or_else(|| invalid("the digest is not sha256:<64 hex digits>"))?,
                ),
            ),
            None => (reference, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = name.rfind('/').map_or(0, |at| at + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(at) => (&name[..last_slash + at], Some(&name[last_slash + at + 1..])),
            None => (name, None),
        };
        if repository.is_empty() {
            return Err(invalid("the repository name is empty"));
        }
        if !repository.split('/').all(is_path_component) {
            return Err(invalid(
                "the repository has an empty or invalid path component",
            ));
        }
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(invalid(
                    "the tag is empty or has characters other than [A-Za-z0-9_.-]",
                ));
            }
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(ImageName::Docker(DockerReference {
            asked: reference.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        }))
    }

    /// An APPC image: `name`, and `id` if given (`sha256:<hex>` or
    /// `sha256-<hex>`, the ACI spelling).
    pub fn appc(name: &str, id: Option<&str>) -> Result<Self, ImageError> {
        if name.is_empty() || !name.split('/').all(is_path_component) {
            return Err(ImageError::InvalidReference {
                reference: name.to_owned(),
                why: "the APPC name is empty or has an invalid path component",
            });
        }
        let id = match id {
            None | Some("") => None,
            Some(id) => Some(
                parse_digest(id)
                    .or_else(|| {
                        id.strip_prefix("sha256-")
                            .and_then(|hex| parse_digest(&format!("{SHA256_PREFIX}{hex}")))
                    })
                    .ok_or_else(|| ImageError::InvalidReference {
                        reference: format!("{name} (id {id})"),
                        why: "the APPC id is not a sha256 digest; only sha256 ids are supported",
                    })?,
            ),
        };
        Ok(ImageName::Appc {
            name: name.to_owned(),
            id,
        })
    }

    /// The name as the task gave it, for messages and status labels.
    pub fn as_asked(&self) -> &str {
        match self {
            ImageName::Docker(reference) => &reference.asked,
            ImageName::Appc { name, .. } => name,
        }
    }

    /// The manifest digest the reference pins, if any.
    pub fn digest(&self) -> Option<&str> {
        match self {
            ImageName::Docker(reference) => reference.digest.as_deref(),
            ImageName::Appc { id, .. } => id.as_deref(),
        }
    }

    /// Whether a recorded name (an OCI `org.opencontainers.image.ref.name`
    /// annotation or a `docker save` `RepoTags` entry) names this image.
    ///
    /// A recorded name is either a full reference (`drover-test/busybox:1`)
    /// or, as `skopeo copy ... oci:DIR:TAG` and umoci write it, a bare tag;
    /// a bare tag matches when the layout's directory is named after the
    /// repository's last component (`busybox/` holding tag `1.35`).
    /// `docker.io/` and `library/` prefixes are ignored on both sides, as
    /// Docker does for official images.
    pub(crate) fn matches_recorded(&self, recorded: &str, layout_name: Option<&str>) -> bool {
        let (repository, tag) = match self {
            ImageName::Docker(reference) => match &reference.tag {
                Some(tag) => (reference.repository.as_str(), tag.as_str()),
                // Pinned by digest only: names do not decide.
                None => return false,
            },
            ImageName::Appc { name, .. } => (name.as_str(), "latest"),
        };
        let is_bare_tag = !recorded.contains('/') && !recorded.contains(':');
        if is_bare_tag {
            let last = repository.rsplit('/').next().unwrap_or(repository);
            // Or a bare repository name, meaning `:latest`.
            return (recorded == tag && layout_name == Some(last))
                || (tag == "latest" && normalise(recorded) == normalise(repository));
        }
        match recorded
            .rsplit_once(':')
            .filter(|(name, _)| !name.is_empty())
        {
            Some((recorded_repository, recorded_tag)) if !recorded_tag.contains('/') => {
                recorded_tag == tag && normalise(recorded_repository) == normalise(repository)
            }
            _ => tag == "latest" && normalise(recorded) == normalise(repository),
        }
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_asked())
    }
}

/// `sha256:<64 lowercase hex>`, or None.
pub(crate) fn parse_digest(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix(SHA256_PREFIX)?;
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid.then(|| digest.to_owned())
}

/// The hex part of a `sha256:<hex>` digest already validated.
pub(crate) fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix(SHA256_PREFIX).unwrap_or(digest)
}

fn normalise(repository: &str) -> &str {
    let repository = repository.strip_prefix("docker.io/").unwrap_or(repository);
    repository.strip_prefix("library/").unwrap_or(repository)
}

fn is_path_component(component: &str) -> bool {
    !component.is_empty()
        && component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn docker(reference: &str) -> DockerReference {
        match ImageName::docker(reference) {
            Ok(ImageName::Docker(reference)) => reference,
            other => panic!("{reference}: {other:?}"),
        }
    }

    #[test]
    fn a_name_without_tag_or_digest_means_latest() {
        let reference = docker("busybox");
        assert_eq!(reference.repository, "busybox");
        assert_eq!(reference.tag.as_deref(), Some("latest"));
        assert_eq!(reference.digest, None);
    }

    #[test]
    fn a_port_is_not_a_tag() {
        let reference = docker("registry.local:5000/team/app");
        assert_eq!(reference.repository, "registry.local:5000/team/app");
        assert_eq!(reference.tag.as_deref(), Some("latest"));
        let reference = docker("registry.local:5000/team/app:2.1");
        assert_eq!(reference.repository, "registry.local:5000/team/app");
        assert_eq!(reference.tag.as_deref(), Some("2.1"));
    }

    #[test]
    fn a_digest_pins_the_manifest_and_drops_the_default_tag() {
        let reference = docker(&format!("busybox@{DIGEST}"));
        assert_eq!(reference.digest.as_deref(), Some(DIGEST));
        assert_eq!(reference.tag, None);
        let reference = docker(&format!("busybox:1.35@{DIGEST}"));
        assert_eq!(reference.tag.as_deref(), Some("1.35"));
    }

    #[test]
    fn bad_references_are_typed_errors() {
        for bad in [
            "",
            ":tag",
            "busybox:",
            "a//b",
            "busybox@sha256:12",
            "busybox@md5:00",
            "bad name",
        ] {
            assert!(
                matches!(
                    ImageName::docker(bad),
                    Err(ImageError::InvalidReference { .. })
                ),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn recorded_names_match_with_docker_hub_prefixes_ignored() {
        let name = ImageName::docker("busybox:1.35").expect("valid");
        assert!(name.matches_recorded("busybox:1.35", None));
        assert!(name.matches_recorded("docker.io/library/busybox:1.35", None));
        assert!(!name.matches_recorded("busybox:1.36", None));
        assert!(!name.matches_recorded("other/busybox:1.35", None));
        let name = ImageName::docker("drover-test/busybox:1").expect("valid");
        assert!(name.matches_recorded("drover-test/busybox:1", None));
        assert!(name.matches_recorded("1", Some("busybox")));
        assert!(!name.matches_recorded("1", Some("other")));
        assert!(ImageName::docker("busybox")
            .expect("valid")
            .matches_recorded("busybox", None));
    }

    #[test]
    fn a_digest_only_reference_never_matches_by_name() {
        let name = ImageName::docker(&format!("busybox@{DIGEST}")).expect("valid");
        assert!(!name.matches_recorded("busybox:latest", None));
        assert_eq!(name.digest(), Some(DIGEST));
    }

    #[test]
    fn appc_ids_accept_both_spellings_of_sha256() {
        let hex = digest_hex(DIGEST);
        for id in [DIGEST.to_owned(), format!("sha256-{hex}")] {
            let name = ImageName::appc("example.com/app", Some(&id)).expect("valid");
            assert_eq!(name.digest(), Some(DIGEST));
        }
        assert!(ImageName::appc("example.com/app", Some("sha512-00")).is_err());
        assert!(ImageName::appc("example.com/app", None)
            .expect("valid")
            .matches_recorded("example.com/app:latest", None));
    }
}
