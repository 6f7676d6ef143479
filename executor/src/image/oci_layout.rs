//! Resolving an image from an OCI image layout (a directory, or the same
//! packed as a tar): `index.json` lists manifests; one is chosen by its
//! `org.opencontainers.image.ref.name` annotation (or containerd's
//! `io.containerd.image.name`, which `docker save` since 25 writes) or by
//! its digest, then the manifest and config are read and verified.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::bundle::Bundle;
use super::config::ImageConfig;
use super::digest::verify;
use super::error::{BlobKind, ImageError};
use super::reference::{digest_hex, parse_digest, ImageName};
use super::source::{Compression, LayerBlob, ResolvedImage};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The layout's image named by `image`, or None if it has none.
pub(crate) fn resolve(
    bundle: &Bundle,
    image: &ImageName,
) -> Result<Option<ResolvedImage>, ImageError> {
    let asked = image.as_asked();
    let index = match read_index(bundle, asked, "index.json", None) {
        Ok(index) => index,
        Err(error) => {
            tracing::warn!(bundle = %bundle.path().display(), %error, "image store: skipping a layout whose index.json cannot be read");
            return Ok(None);
        }
    };
    let Some(descriptor) = find(bundle, &index, image)? else {
        return Ok(None);
    };
    let descriptor = match is_index(descriptor.media_type()) {
        true => pick_platform(bundle, asked, &descriptor, image)?,
        false => descriptor,
    };
    read_image(bundle, asked, &descriptor).map(Some)
}

fn find(
    bundle: &Bundle,
    index: &ImageIndex,
    image: &ImageName,
) -> Result<Option<Descriptor>, ImageError> {
    if let Some(digest) = image.digest() {
        if let Some(found) = index
            .manifests()
            .iter()
            .find(|d| d.digest().to_string() == digest)
        {
            return Ok(Some(found.clone()));
        }
        // A digest may name a platform manifest inside a nested index.
        for nested in index
            .manifests()
            .iter()
            .filter(|d| is_index(d.media_type()))
        {
            let inner = read_index(
                bundle,
                image.as_asked(),
                &blob_member(image.as_asked(), nested)?,
                Some(nested),
            )?;
            if let Some(found) = inner
                .manifests()
                .iter()
                .find(|d| d.digest().to_string() == digest)
            {
                return Ok(Some(found.clone()));
            }
        }
        return Ok(None);
    }
    let named: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|descriptor| {
            let annotations = descriptor.annotations().as_ref();
            [REF_NAME, CONTAINERD_NAME]
                .iter()
                .filter_map(|key| annotations.and_then(|annotations| annotations.get(*key)))
                .any(|recorded| image.matches_recorded(recorded, bundle.name()))
        })
        .collect();
    // One name may be recorded once per platform: this host's first.
    let found = named
        .iter()
        .find(|descriptor| is_this_platform(descriptor))
        .or(named.first());
    Ok(found.map(|descriptor| (*descriptor).clone()))
}

/// Whether `descriptor` names a linux image for this host's architecture.
fn is_this_platform(descriptor: &Descriptor) -> bool {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    descriptor.platform().as_ref().is_some_and(|platform| {
        platform.os().to_string() == "linux" && platform.architecture().to_string() == arch
    })
}

/// A nested index (multi-platform image): this host's platform, else the first.
fn pick_platform(
    bundle: &Bundle,
    asked: &str,
    nested: &Descriptor,
    image: &ImageName,
) -> Result<Descriptor, ImageError> {
    let inner = read_index(bundle, asked, &blob_member(asked, nested)?, Some(nested))?;
    let manifests = inner.manifests();
    manifests
        .iter()
        .find(|descriptor| is_this_platform(descriptor))
        .or_else(|| manifests.first())
        .cloned()
        .ok_or_else(|| ImageError::Corrupt {
            image: image.as_asked().to_owned(),
            what: format!("index {}", nested.digest()),
            why: "it lists no manifests".to_owned(),
        })
}

fn read_index(
    bundle: &Bundle,
    asked: &str,
    member: &str,
    descriptor: Option<&Descriptor>,
) -> Result<ImageIndex, ImageError> {
    let bytes = read_member(bundle, asked, member)?;
    if let Some(descriptor) = descriptor {
        verify(
            asked,
            BlobKind::Manifest,
            descriptor.digest().as_ref(),
            &bytes,
        )?;
    }
    ImageIndex::from_reader(&bytes[..])
        .map_err(|error| corrupt(asked, bundle.describe(member), error))
}

fn read_image(
    bundle: &Bundle,
    asked: &str,
    descriptor: &Descriptor,
) -> Result<ResolvedImage, ImageError> {
    let manifest_digest = descriptor.digest().to_string();
    let member = blob_member(asked, descriptor)?;
    let bytes = read_member(bundle, asked, &member)?;
    verify(asked, BlobKind::Manifest, &manifest_digest, &bytes)?;
    let manifest = ImageManifest::from_reader(&bytes[..])
        .map_err(|error| corrupt(asked, format!("manifest {manifest_digest}"), error))?;

    let config_descriptor = manifest.config();
    let config_digest = config_descriptor.digest().to_string();
    let bytes = read_member(bundle, asked, &blob_member(asked, config_descriptor)?)?;
    verify(asked, BlobKind::Config, &config_digest, &bytes)?;
    let configuration = ImageConfiguration::from_reader(&bytes[..])
        .map_err(|error| corrupt(asked, format!("config {config_digest}"), error))?;

    let layers = manifest
        .layers()
        .iter()
        .map(|layer| {
            Ok(LayerBlob {
                digest: layer.digest().to_string(),
                size: Some(layer.size()),
                compression: compression_of(asked, layer.media_type())?,
                locator: blob_member(asked, layer)?,
            })
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    Ok(ResolvedImage {
        manifest_digest,
        config: ImageConfig::from_oci(&configuration),
        layers,
    })
}

fn compression_of(asked: &str, media_type: &MediaType) -> Result<Compression, ImageError> {
    match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Ok(Compression::None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
            Ok(Compression::Gzip)
        }
        MediaType::Other(other) if other == DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
        MediaType::Other(other) if other == DOCKER_LAYER => Ok(Compression::None),
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => {
            Err(ImageError::Unsupported {
                image: asked.to_owned(),
                what: format!("layer media type {media_type}"),
                why:
                    "zstd layers are not handled; repack the image with gzip or uncompressed layers"
                        .to_owned(),
            })
        }
        other => Err(ImageError::Unsupported {
            image: asked.to_owned(),
            what: format!("layer media type {other}"),
            why: "only OCI and Docker tar layers (plain or gzip) are handled".to_owned(),
        }),
    }
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || matches!(media_type, MediaType::Other(other) if other == DOCKER_MANIFEST_LIST)
}

/// `blobs/sha256/<hex>` for a descriptor, refusing other algorithms.
fn blob_member(asked: &str, descriptor: &Descriptor) -> Result<String, ImageError> {
    let digest = descriptor.digest().to_string();
    match parse_digest(&digest) {
        Some(digest) => Ok(format!("blobs/sha256/{}", digest_hex(&digest))),
        None => Err(ImageError::Unsupported {
            image: asked.to_owned(),
            what: format!("digest {digest}"),
            why: "only sha256 digests are verified".to_owned(),
        }),
    }
}

pub(crate) fn read_member(
    bundle: &Bundle,
    asked: &str,
    member: &str,
) -> Result<Vec<u8>, ImageError> {
    bundle
        .read_small(member)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
                corrupt(asked, bundle.describe(member), error)
            }
            _ => ImageError::Io {
                image: Some(asked.to_owned()),
                op: "read",
                path: bundle.describe(member).into(),
                source: error,
            },
        })
}

pub(crate) fn corrupt(asked: &str, what: String, error: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt {
        image: asked.to_owned(),
        what,
        why: error.to_string(),
    }
}
