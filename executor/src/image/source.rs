//! Where images come from: the [`ImageSource`] trait, and the resolved
//! image it hands the store (digest, configuration, layers to stream).
//!
//! Today the only source is the local store ([`super::local`]: OCI layouts
//! and `docker save` tarballs in a directory). A registry pull is future
//! work and fits behind the same trait: resolve a reference to a manifest,
//! then stream each layer blob; the store verifies digests and unpacks
//! whatever the source streams, so a registry source needs no trust of its
//! own.

use std::io::Read;

use super::config::ImageConfig;
use super::error::ImageError;
use super::reference::ImageName;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// A gzip'ed tar.
    Gzip,
    /// Unknown from the metadata: gzip if the blob starts with gzip's magic.
    Detect,
}

/// One layer of a resolved image, lowest first in [`ResolvedImage::layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The digest the blob must hash to (`sha256:<hex>`); the cache is keyed by it.
    pub digest: String,
    /// The blob's size when the metadata gives it.
    pub size: Option<u64>,
    /// How the blob is compressed.
    pub compression: Compression,
    /// Where the source finds it (a member path for the local store).
    pub locator: String,
}

/// An image found by a source: everything but the layers' bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The manifest digest (`sha256:<hex>`). For a legacy `docker save`
    /// tarball (no OCI index, or not naming the image) it is the config
    /// digest, Docker's image id: that format has no manifest blob.
    pub manifest_digest: String,
    /// The configuration the container runs with.
    pub config: ImageConfig,
    /// The layers, lowest first.
    pub layers: Vec<LayerBlob>,
}

/// A place images are resolved from and their layers streamed.
pub trait ImageSource: Send + Sync {
    /// Finds `image`; `Ok(None)` when this source does not have it. The
    /// manifest and config are verified against their digests here.
    fn resolve(&self, image: &ImageName) -> Result<Option<ResolvedFrom<'_>>, ImageError>;
}

/// A resolved image and the reader of its layer blobs.
pub struct ResolvedFrom<'a> {
    /// The image.
    pub image: ResolvedImage,
    /// Streams its layers (unverified; the store hashes as it reads).
    pub blobs: Box<dyn BlobReader + 'a>,
}

/// Streams layer blobs of one resolved image.
pub trait BlobReader: Send {
    /// Opens `layer` for reading.
    fn open_layer(&self, layer: &LayerBlob) -> Result<Box<dyn Read + Send>, ImageError>;
}
