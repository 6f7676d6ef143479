//! The local image store: a directory of OCI image layouts (a directory
//! each, with `index.json`) and `docker save` tarballs (`*.tar`), searched
//! in name order. A bundle whose index cannot be read is skipped with a
//! warning so one bad file does not hide the others' images (the image it
//! held then reads as not found); once an image matched, its own faults
//! (a missing blob, a digest mismatch) are the answer.

use std::path::{Path, PathBuf};

use super::bundle::Bundle;
use super::error::ImageError;
use super::reference::ImageName;
use super::source::{BlobReader, ImageSource, LayerBlob, ResolvedFrom};
use super::{docker_archive, oci_layout};

/// [`ImageSource`] over a directory on this host (`DROVER_IMAGE_DIR`).
#[derive(Debug, Clone)]
pub struct LocalImageDir {
    dir: PathBuf,
}

impl LocalImageDir {
    /// The store in `dir` (it need not exist yet: then nothing is found).
    pub fn new(dir: &Path) -> Self {
        LocalImageDir {
            dir: dir.to_owned(),
        }
    }

    /// The directory searched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bundles(&self) -> Result<Vec<PathBuf>, ImageError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(ImageError::io("read dir", &self.dir, error)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

impl ImageSource for LocalImageDir {
    fn resolve(&self, image: &ImageName) -> Result<Option<ResolvedFrom<'_>>, ImageError> {
        for path in self.bundles()? {
            let bundle = if path.join("index.json").is_file() {
                Bundle::Dir(path)
            } else if path.extension().is_some_and(|ext| ext == "tar") && path.is_file() {
                match Bundle::tar(&path) {
                    Ok(bundle) => bundle,
                    Err(error) => {
                        tracing::warn!(bundle = %path.display(), %error, "image store: skipping an unreadable tarball");
                        continue;
                    }
                }
            } else {
                continue;
            };
            // An OCI index first: it gives the real manifest digest (a
            // `docker save` since Docker 25 has both it and manifest.json).
            let mut found = Ok(None);
            if bundle.has("index.json") {
                found = oci_layout::resolve(&bundle, image);
            }
            if matches!(found, Ok(None)) && bundle.has("manifest.json") {
                found = docker_archive::resolve(&bundle, image);
            }
            match found {
                Ok(Some(resolved)) => {
                    return Ok(Some(ResolvedFrom {
                        image: resolved,
                        blobs: Box::new(BundleBlobs {
                            bundle,
                            image: image.as_asked().to_owned(),
                        }),
                    }));
                }
                Ok(None) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }
}

struct BundleBlobs {
    bundle: Bundle,
    image: String,
}

impl BlobReader for BundleBlobs {
    fn open_layer(&self, layer: &LayerBlob) -> Result<Box<dyn std::io::Read + Send>, ImageError> {
        self.bundle
            .open(&layer.locator)
            .map(|(reader, _)| reader)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => ImageError::Corrupt {
                    image: self.image.clone(),
                    what: format!("layer {}", layer.digest),
                    why: format!(
                        "its blob {} is missing",
                        self.bundle.describe(&layer.locator)
                    ),
                },
                _ => ImageError::Io {
                    image: Some(self.image.clone()),
                    op: "open",
                    path: self.bundle.describe(&layer.locator).into(),
                    source: error,
                },
            })
    }
}
