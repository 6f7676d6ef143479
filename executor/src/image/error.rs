//! The image store's one error type. Every variant that concerns an image
//! names it as it was asked for, so `to_string()` is the message a task's
//! `TASK_FAILED` update carries (`image 'NAME': <why>`).

use std::path::PathBuf;

/// What kind of content-addressed object a digest named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// An image manifest (or a nested image index).
    Manifest,
    /// An image configuration.
    Config,
    /// A filesystem layer.
    Layer,
}

impl std::fmt::Display for BlobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobKind::Manifest => "manifest",
            BlobKind::Config => "config",
            BlobKind::Layer => "layer",
        })
    }
}

/// Errors from resolving, verifying, unpacking and collecting images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The name a task asked for is not an image reference. Not retryable.
    #[error("image '{reference}': invalid reference: {why}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Which rule it broke.
        why: &'static str,
    },
    /// No OCI layout or `docker save` tarball in the store holds the image.
    /// Retryable once someone places the image in the store.
    #[error("image '{image}': not found in the image store {store}")]
    NotFound {
        /// The image as asked.
        image: String,
        /// The store directory searched.
        store: PathBuf,
    },
    /// A blob's content does not hash to the digest that names it: the
    /// store's copy is corrupt or was tampered with. Not retryable.
    #[error("image '{image}': {kind} {expected}: digest mismatch (got {actual})")]
    DigestMismatch {
        /// The image as asked.
        image: String,
        /// Which object.
        kind: BlobKind,
        /// The digest that names it (`sha256:<hex>`).
        expected: String,
        /// The digest of what was read.
        actual: String,
    },
    /// An object of the image could not be parsed or is inconsistent (bad
    /// JSON, a truncated tar, a missing blob). Not retryable.
    #[error("image '{image}': {what}: {why}")]
    Corrupt {
        /// The image as asked.
        image: String,
        /// Which object (`index.json`, `layer sha256:...`, a tar member).
        what: String,
        /// What is wrong with it, as the parser said.
        why: String,
    },
    /// The image uses something Drover does not handle (zstd layers, a
    /// digest algorithm other than sha256, an unpack step the host refuses).
    /// Not retryable on this host.
    #[error("image '{image}': {what} is not supported: {why}")]
    Unsupported {
        /// The image as asked.
        image: String,
        /// The feature.
        what: String,
        /// Why not.
        why: String,
    },
    /// A file or directory of the store or the cache could not be read,
    /// written, created or removed. Retryable if the cause was transient
    /// (a full disk being cleaned).
    #[error("{}{op} {}: {source}", image_prefix(image.as_deref()), path.display())]
    Io {
        /// The image being prepared, when there was one.
        image: Option<String>,
        /// What was being done (`read`, `rename`, `mknod`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn image_prefix(image: Option<&str>) -> String {
    image
        .map(|image| format!("image '{image}': "))
        .unwrap_or_default()
}

impl ImageError {
    /// An I/O error on `path` that belongs to no single image.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            image: None,
            op,
            path: path.into(),
            source,
        }
    }

    /// The same error, naming `image` if it did not already.
    pub(crate) fn for_image(self, image: &str) -> Self {
        match self {
            ImageError::Io {
                image: None,
                op,
                path,
                source,
            } => ImageError::Io {
                image: Some(image.to_owned()),
                op,
                path,
                source,
            },
            other => other,
        }
    }

    /// Whether the image itself is at fault (missing, corrupt, unsupported),
    /// as opposed to the host (I/O on the store or cache).
    pub fn is_image_fault(&self) -> bool {
        !matches!(self, ImageError::Io { .. })
    }
}
