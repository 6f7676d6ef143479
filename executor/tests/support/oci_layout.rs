//! Small OCI image layouts written by tests, for the cases the script's
//! images do not cover (opaque directories, hostile members, many distinct
//! layers): tar layers built in memory, gzip'ed, named by digest.

use std::path::Path;

use sha2::{Digest, Sha256};

/// One member of a layer tar.
pub enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    /// A member whose name is written raw, bypassing the tar crate's checks
    /// (`../x`): what a hostile image could hold.
    RawFile(&'a str, &'a [u8]),
}

/// A layer: its members in order.
pub fn layer_tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match member {
            Member::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            Member::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
            Member::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
            Member::RawFile(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                let name = &mut header.as_gnu_mut().unwrap().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, *data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    digest
}

/// What [`write_layout`] wrote.
pub struct Written {
    pub manifest_digest: String,
    /// Layer blob digests, lowest first.
    pub layers: Vec<String>,
}

/// Writes an OCI layout at `layout` holding one image `ref_name` with
/// `layers` (gzip'ed, media type `layer_media_type` unless None) and
/// `Cmd: cmd`.
pub fn write_layout(
    layout: &Path,
    ref_name: &str,
    layers: &[Vec<Member<'_>>],
    layer_media_type: Option<&str>,
) -> Written {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut diff_ids = Vec::new();
    let mut descriptors = Vec::new();
    let mut digests = Vec::new();
    for members in layers {
        let tar = layer_tar(members);
        diff_ids.push(sha256(&tar));
        let blob = gzip(&tar);
        let digest = put_blob(layout, &blob);
        descriptors.push(serde_json::json!({
            "mediaType": layer_media_type.unwrap_or("application/vnd.oci.image.layer.v1.tar+gzip"),
            "digest": digest,
            "size": blob.len(),
        }));
        digests.push(digest);
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["FROM=test-layout"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put_blob(layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_digest = put_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    Written {
        manifest_digest,
        layers: digests,
    }
}
