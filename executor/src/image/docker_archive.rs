//! Resolving an image from a `docker save` tarball: `manifest.json` lists
//! images with their `RepoTags`, config member and layer members. Docker's
//! legacy layout has no manifest blob, so the image's digest is its config
//! digest (Docker's image id); an image pinned by digest is matched on it.
//! Layer members are plain tars whose digest is the config's `diff_ids`
//! entry (or, since Docker 25, the `blobs/sha256/<hex>` name they carry).

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use super::bundle::Bundle;
use super::config::ImageConfig;
use super::digest::{sha256_of, verify};
use super::error::{BlobKind, ImageError};
use super::oci_layout::{corrupt, read_member};
use super::reference::{parse_digest, ImageName};
use super::source::{Compression, LayerBlob, ResolvedImage};

/// One entry of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The tarball's image named by `image`, or None if it has none.
pub(crate) fn resolve(
    bundle: &Bundle,
    image: &ImageName,
) -> Result<Option<ResolvedImage>, ImageError> {
    let asked = image.as_asked();
    let saved = match read_member(bundle, asked, "manifest.json").and_then(|bytes| {
        serde_json::from_slice::<Vec<SavedImage>>(&bytes)
            .map_err(|error| corrupt(asked, bundle.describe("manifest.json"), error))
    }) {
        Ok(saved) => saved,
        Err(error) => {
            tracing::warn!(bundle = %bundle.path().display(), %error, "image store: skipping a tarball whose manifest.json cannot be read");
            return Ok(None);
        }
    };
    for entry in saved {
        let config_bytes = read_member(bundle, asked, &entry.config)?;
        let config_digest = sha256_of(&config_bytes);
        let by_name = entry
            .repo_tags
            .iter()
            .flatten()
            .any(|tag| image.matches_recorded(tag, None));
        let by_digest = image.digest() == Some(config_digest.as_str());
        if !(by_name || by_digest) {
            continue;
        }
        if let Some(named) = digest_in_name(&entry.config) {
            verify(asked, BlobKind::Config, &named, &config_bytes)?;
        }
        let configuration = ImageConfiguration::from_reader(&config_bytes[..])
            .map_err(|error| corrupt(asked, format!("config {config_digest}"), error))?;
        let diff_ids = configuration.rootfs().diff_ids();
        if diff_ids.len() != entry.layers.len() {
            return Err(corrupt(
                asked,
                bundle.describe("manifest.json"),
                format!(
                    "{} layers but the config lists {} diff_ids",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let layers = entry
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(member, diff_id)| LayerBlob {
                digest: digest_in_name(member).unwrap_or_else(|| diff_id.clone()),
                size: None,
                compression: Compression::Detect,
                locator: member.clone(),
            })
            .collect();
        return Ok(Some(ResolvedImage {
            manifest_digest: config_digest,
            config: ImageConfig::from_oci(&configuration),
            layers,
        }));
    }
    Ok(None)
}

/// The digest a member's name carries: `<hex>.json` (legacy config) or
/// `blobs/sha256/<hex>` (Docker 25+).
fn digest_in_name(member: &str) -> Option<String> {
    let name = member.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    let named = member.starts_with("blobs/sha256/") || name.ends_with(".json");
    named
        .then(|| parse_digest(&format!("sha256:{hex}")))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn member_names_that_carry_a_digest_give_it() {
        assert_eq!(
            digest_in_name(&format!("{HEX}.json")),
            Some(format!("sha256:{HEX}"))
        );
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{HEX}")),
            Some(format!("sha256:{HEX}"))
        );
    }

    #[test]
    fn legacy_layer_paths_and_odd_names_carry_none() {
        assert_eq!(digest_in_name(&format!("{HEX}/layer.tar")), None);
        assert_eq!(digest_in_name("config.json"), None);
        assert_eq!(digest_in_name("blobs/sha256/short"), None);
    }
}
