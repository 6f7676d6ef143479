//! The image store on real images: the script's busybox OCI layouts (umoci)
//! and `docker save` tarball (skopeo), and layouts the tests write for the
//! corner cases. Root: unpacking makes overlay whiteouts (mknod, trusted
//! xattrs), as the executor does on an agent.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use drover_executor::image::{
    combine, flatten_layers, BlobKind, ImageError, ImageName, ImageStore, TaskCommand,
    DEFAULT_IMAGE_CACHE_MAX_BYTES,
};
use drover_test_support::images::test_images;
use support::oci_layout::{sha256, write_layout, Member};
use support::require_root;

const BUSYBOX: &str = "drover-test/busybox:1";
const BUSYBOX_ENTRY: &str = "drover-test/busybox-entry:1";
const BUSYBOX_SAVE: &str = "drover-test/busybox-save:1";

fn name(reference: &str) -> ImageName {
    ImageName::docker(reference).unwrap()
}

fn store(images: &Path, cache: &Path) -> ImageStore {
    ImageStore::open(images, cache, DEFAULT_IMAGE_CACHE_MAX_BYTES).unwrap()
}

/// The unpacked layer directories in a cache.
fn cached_layers(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("layers"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn hex(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap().to_owned()
}

/// The manifest digest `index.json` of `layout` records for its one image.
fn index_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// The layer blob digests the manifest of `layout` lists, lowest first.
fn manifest_layers(layout: &Path) -> Vec<String> {
    let manifest_path = layout.join("blobs/sha256").join(hex(&index_digest(layout)));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// IMG2 prepares in `spawn_blocking` and keeps the image with the task.
#[test]
fn the_store_and_a_prepared_image_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ImageStore>();
    send::<drover_executor::image::PreparedImage>();
}

#[test]
fn an_oci_layout_resolves_by_ref_name_with_its_config_and_overlay_form_layers() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let prepared = store(&images, cache.path())
        .prepare(&name(BUSYBOX), "task-1")
        .unwrap();

    assert_eq!(prepared.digest, index_digest(&images.join("busybox")));
    assert_eq!(prepared.config.cmd, Some(vec!["sh".to_owned()]));
    assert_eq!(prepared.config.entrypoint, None);
    assert_eq!(
        prepared.config.env,
        vec!["DROVER_IMAGE_ENV=from-image".to_owned()]
    );
    assert_eq!(prepared.config.working_dir.as_deref(), Some("/"));
    assert_eq!(prepared.layers.len(), 2);
    let (lower, upper) = (&prepared.layers[0], &prepared.layers[1]);
    assert!(
        lower.join("bin/busybox").is_file(),
        "busybox in the lower layer"
    );
    assert!(lower.join("etc/drover-lower-only").is_file());
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/drover-image")).unwrap(),
        "drover test image\n"
    );
    // The whiteout of a lower file is overlayfs' character device 0/0.
    let whiteout = std::fs::symlink_metadata(upper.join("etc/drover-lower-only")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "{whiteout:?}"
    );
    // Each layer dir is named by its blob digest.
    let expected: Vec<String> = manifest_layers(&images.join("busybox"))
        .iter()
        .map(|d| hex(d))
        .collect();
    assert_eq!(
        cached_layers(cache.path()),
        expected.iter().cloned().collect()
    );
}

#[test]
fn an_image_resolves_by_manifest_digest_alone_and_with_a_tag() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let store = store(&images, cache.path());
    let digest = index_digest(&images.join("busybox-entry"));
    for reference in [
        format!("drover-test/busybox-entry@{digest}"),
        format!("{BUSYBOX_ENTRY}@{digest}"),
    ] {
        let prepared = store.prepare(&name(&reference), "task-1").unwrap();
        assert_eq!(prepared.digest, digest, "{reference}");
        assert_eq!(
            prepared.config.entrypoint,
            Some(vec!["/bin/echo".to_owned(), "entry:".to_owned()])
        );
        assert_eq!(prepared.config.cmd, Some(vec!["default-arg".to_owned()]));
    }
    let unknown = format!("drover-test/busybox@sha256:{}", "0".repeat(64));
    assert!(matches!(
        store.prepare(&name(&unknown), "task-1"),
        Err(ImageError::NotFound { .. })
    ));
}

#[test]
fn a_docker_save_tarball_resolves_by_repo_tag_and_by_image_id() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let store = store(&images, cache.path());
    let prepared = store.prepare(&name(BUSYBOX_SAVE), "task-1").unwrap();
    assert_eq!(prepared.config.cmd, Some(vec!["sh".to_owned()]));
    assert_eq!(
        prepared.config.env,
        vec!["DROVER_IMAGE_ENV=from-image".to_owned()]
    );
    assert_eq!(prepared.layers.len(), 2);
    assert!(prepared.layers[0].join("bin/busybox").is_file());
    let whiteout =
        std::fs::symlink_metadata(prepared.layers[1].join("etc/drover-lower-only")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    // Docker's legacy tarball has no manifest blob: the digest is the image id.
    let image_id = prepared.digest.clone();
    let by_id = store
        .prepare(
            &name(&format!("drover-test/busybox-save@{image_id}")),
            "task-2",
        )
        .unwrap();
    assert_eq!(by_id.digest, image_id);
    assert_eq!(by_id.layers, prepared.layers);
}

#[test]
fn two_images_sharing_layers_unpack_them_once() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let store = store(&images, cache.path());
    let first = store.prepare(&name(BUSYBOX), "task-1").unwrap();
    let second = store.prepare(&name(BUSYBOX_ENTRY), "task-2").unwrap();
    let again = store.prepare(&name(BUSYBOX), "task-3").unwrap();
    assert_ne!(first.digest, second.digest);
    assert_eq!(
        first.layers, second.layers,
        "busybox-entry is busybox's layers with another config"
    );
    assert_eq!(first.layers, again.layers);
    assert_eq!(
        cached_layers(cache.path()).len(),
        2,
        "one copy of each layer"
    );
}

#[test]
fn racing_prepares_from_two_stores_end_with_one_copy() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let (images, cache, barrier) =
                    (images.clone(), cache.path().to_owned(), barrier.clone());
                // A store each, as separate executors on one agent would have.
                std::thread::spawn(move || {
                    let store = store(&images, &cache);
                    barrier.wait();
                    let reference = if n % 2 == 0 { BUSYBOX } else { BUSYBOX_ENTRY };
                    store
                        .prepare(&name(reference), &format!("task-{round}-{n}"))
                        .map(|p| p.layers)
                })
            })
            .collect();
        let results: Vec<Vec<PathBuf>> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        assert!(
            results.windows(2).all(|pair| pair[0] == pair[1]),
            "{results:?}"
        );
        assert_eq!(cached_layers(cache.path()).len(), 2);
        assert_eq!(
            std::fs::read_dir(cache.path().join("tmp")).unwrap().count(),
            0,
            "no staging left behind"
        );
        // Start the next round cold.
        store(&images, cache.path()).gc().unwrap();
        assert!(cached_layers(cache.path()).is_empty());
    }
}

#[test]
fn collections_racing_prepares_never_take_a_layer_from_under_a_prepared_image() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (images, cache, done) = (images.clone(), cache.path().to_owned(), done.clone());
        std::thread::spawn(move || {
            let store = store(&images, &cache);
            let mut collections = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.gc().unwrap();
                collections += 1;
            }
            collections
        })
    };
    let preparers: Vec<_> = (0..2)
        .map(|n| {
            let (images, cache) = (images.clone(), cache.path().to_owned());
            std::thread::spawn(move || {
                let store = store(&images, &cache);
                for round in 0..15 {
                    let prepared = store
                        .prepare(&name(BUSYBOX), &format!("task-{n}-{round}"))
                        .unwrap();
                    // Held: every layer must be whole while the collector runs.
                    for _ in 0..3 {
                        assert!(
                            prepared.layers[0].join("bin/busybox").is_file(),
                            "round {round}"
                        );
                        assert!(
                            prepared.layers[1].join("etc/drover-image").is_file(),
                            "round {round}"
                        );
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let prepared: Vec<_> = preparers.into_iter().map(|p| p.join()).collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let collections = collector.join().unwrap();
    for result in prepared {
        result.unwrap();
    }
    assert!(
        collections > 1,
        "the collector ran alongside ({collections} collections)"
    );
}

#[test]
fn a_flipped_byte_in_a_layer_fails_with_a_digest_mismatch_naming_the_layer() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    copy_dir(&test_images().join("busybox"), images.path());
    let layout = images.path().join("busybox");
    let upper = manifest_layers(&layout)[1].clone();
    let blob = layout.join("blobs/sha256").join(hex(&upper));
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    let cache = tempfile::tempdir().unwrap();
    let error = store(images.path(), cache.path())
        .prepare(&name(BUSYBOX), "task-1")
        .unwrap_err();
    match &error {
        ImageError::DigestMismatch {
            kind: BlobKind::Layer,
            expected,
            actual,
            ..
        } => {
            assert_eq!(expected, &upper);
            assert_eq!(actual, &sha256(&bytes));
        }
        other => panic!("expected a layer digest mismatch, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "image '{BUSYBOX}': layer {upper}: digest mismatch (got {})",
            sha256(&bytes)
        )
    );
    // The good lower layer stays cached; the corrupt one is nowhere.
    assert_eq!(
        cached_layers(cache.path()),
        BTreeSet::from([hex(&manifest_layers(&layout)[0])])
    );
    assert_eq!(
        std::fs::read_dir(cache.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn a_flipped_byte_in_a_docker_save_layer_fails_with_a_digest_mismatch() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    let tarball = images.path().join("busybox.tar");
    std::fs::copy(test_images().join("busybox.tar"), &tarball).unwrap();
    // Flip a byte inside the first layer member, found by its offset.
    let mut archive = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
    let (offset, member) = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_file() && e.size() > 100_000)
        .map(|e| {
            (
                e.raw_file_position(),
                e.path().unwrap().display().to_string(),
            )
        })
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&tarball).unwrap();
    bytes[offset as usize + 5000] ^= 0x01;
    std::fs::write(&tarball, &bytes).unwrap();

    let cache = tempfile::tempdir().unwrap();
    let error = store(images.path(), cache.path())
        .prepare(&name(BUSYBOX_SAVE), "task-1")
        .unwrap_err();
    assert!(
        matches!(&error, ImageError::DigestMismatch { kind: BlobKind::Layer, expected, .. } if member.contains(&hex(expected))),
        "{member}: {error:?}"
    );
    assert!(
        error.to_string().contains("digest mismatch (got sha256:"),
        "{error}"
    );
}

#[test]
fn a_missing_image_and_a_missing_store_say_not_found() {
    require_root();
    let cache = tempfile::tempdir().unwrap();
    let error = store(&test_images(), cache.path())
        .prepare(&name("drover-test/absent:1"), "task-1")
        .unwrap_err();
    assert!(matches!(error, ImageError::NotFound { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("image 'drover-test/absent:1': not found in the image store "),
        "{error}"
    );
    let error = store(Path::new("/nonexistent/drover-images"), cache.path())
        .prepare(&name(BUSYBOX), "t")
        .unwrap_err();
    assert!(matches!(error, ImageError::NotFound { .. }), "{error:?}");
}

#[test]
fn a_missing_layer_blob_is_corrupt_and_says_which() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    copy_dir(&test_images().join("busybox"), images.path());
    let layout = images.path().join("busybox");
    let lower = manifest_layers(&layout)[0].clone();
    std::fs::remove_file(layout.join("blobs/sha256").join(hex(&lower))).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let error = store(images.path(), cache.path())
        .prepare(&name(BUSYBOX), "task-1")
        .unwrap_err();
    assert!(
        matches!(&error, ImageError::Corrupt { what, .. } if what == &format!("layer {lower}")),
        "{error:?}"
    );
}

#[test]
fn gc_removes_unused_layers_and_keeps_leased_ones() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    copy_dir(&test_images().join("busybox"), images.path());
    let other = write_layout(
        &images.path().join("other"),
        "drover-test/other:1",
        &[vec![Member::File("other", b"x")]],
        None,
    );
    let cache = tempfile::tempdir().unwrap();
    let store = store(images.path(), cache.path());

    let kept = store.prepare(&name(BUSYBOX), "task-kept").unwrap();
    drop(
        store
            .prepare(&name("drover-test/other:1"), "task-done")
            .unwrap(),
    );
    assert_eq!(cached_layers(cache.path()).len(), 3);

    let report = store.gc().unwrap();
    assert_eq!(report.removed, other.layers);
    assert_eq!(report.kept, 2);
    assert!(report.freed_bytes > 0);
    assert_eq!(
        cached_layers(cache.path()),
        kept.layers
            .iter()
            .map(|p| p
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned())
            .collect()
    );
    assert!(
        kept.layers[0].join("bin/busybox").is_file(),
        "a leased layer stays usable"
    );

    drop(kept);
    let report = store.gc().unwrap();
    assert_eq!(report.removed.len(), 2);
    assert!(cached_layers(cache.path()).is_empty());
}

#[test]
fn release_by_holder_frees_layers_whose_prepared_image_was_lost() {
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let store = store(&images, cache.path());
    let prepared = store.prepare(&name(BUSYBOX), "task-lost").unwrap();
    assert!(store.gc().unwrap().removed.is_empty(), "leased");
    assert_eq!(store.release("task-lost").unwrap(), 1);
    assert_eq!(store.gc().unwrap().removed.len(), 2);
    drop(prepared);
}

#[test]
fn the_size_bound_collects_least_recently_used_unleased_layers_after_a_prepare() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    let image = |n: u8| {
        let data = vec![n; 64 * 1024];
        let name = format!("drover-test/sized-{n}:1");
        let written = write_layout(
            &images.path().join(format!("sized-{n}")),
            &name,
            &[vec![Member::File("data", &data)]],
            None,
        );
        (name, written.layers[0].clone())
    };
    let (a, a_layer) = image(1);
    let (b, b_layer) = image(2);
    let (c, c_layer) = image(3);
    let cache = tempfile::tempdir().unwrap();
    // Room for two layers of ~64 KiB, not three.
    let store = ImageStore::open(images.path(), cache.path(), 150 * 1024).unwrap();
    let held = store.prepare(&name(&a), "holds-a").unwrap();
    drop(store.prepare(&name(&b), "done-b").unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let c_prepared = store.prepare(&name(&c), "holds-c").unwrap();
    assert_eq!(
        cached_layers(cache.path()),
        BTreeSet::from([hex(&a_layer), hex(&c_layer)]),
        "b, unused, went"
    );
    assert!(!cached_layers(cache.path()).contains(&hex(&b_layer)));
    // Over the bound with everything leased: nothing is taken from a live container.
    let tight = ImageStore::open(images.path(), cache.path(), 1).unwrap();
    let _b_again = tight.prepare(&name(&b), "holds-b").unwrap();
    assert_eq!(cached_layers(cache.path()).len(), 3);
    drop((held, c_prepared));
}

#[test]
fn opaque_dirs_and_whiteouts_read_the_same_through_overlayfs_and_the_flattened_copy() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    write_layout(
        &images.path().join("opaque"),
        "drover-test/opaque:1",
        &[
            vec![
                Member::Dir("opt"),
                Member::File("opt/a", b"lower a"),
                Member::File("opt/b", b"lower b"),
                Member::Dir("etc"),
                Member::File("etc/gone", b"whited out"),
                Member::File("etc/stays", b"stays"),
            ],
            vec![
                Member::Dir("opt"),
                Member::File("opt/.wh..wh..opq", b""),
                Member::File("opt/c", b"upper c"),
                Member::File("etc/.wh.gone", b""),
                Member::File("etc/stays", b"replaced"),
            ],
        ],
        None,
    );
    let cache = tempfile::tempdir().unwrap();
    let prepared = store(images.path(), cache.path())
        .prepare(&name("drover-test/opaque:1"), "t")
        .unwrap();
    let upper = &prepared.layers[1];
    assert_eq!(
        xattr_of(&upper.join("opt")),
        Some(b"y".to_vec()),
        "opaque marker as overlayfs' xattr"
    );
    assert!(!upper.join("opt/.wh..wh..opq").exists());

    let flat = tempfile::tempdir().unwrap();
    flatten_layers(&prepared.layers, flat.path()).unwrap();
    assert!(!flat.path().join("opt/a").exists() && !flat.path().join("opt/b").exists());
    assert_eq!(
        std::fs::read_to_string(flat.path().join("opt/c")).unwrap(),
        "upper c"
    );
    assert!(!flat.path().join("etc/gone").exists());
    assert_eq!(
        std::fs::read_to_string(flat.path().join("etc/stays")).unwrap(),
        "replaced"
    );

    // The kernel's overlayfs, mounted in a private mount namespace, shows the same tree.
    let mounted = tempfile::tempdir().unwrap();
    let listing = tempfile::NamedTempFile::new().unwrap();
    let lowerdir = format!("{}:{}", upper.display(), prepared.layers[0].display());
    let script = format!(
        "mount -t overlay overlay -o ro,lowerdir={lowerdir} {m} && cd {m} && find . -printf '%p %y %m %s\\n' | sort > {out}",
        m = mounted.path().display(),
        out = listing.path().display()
    );
    let status = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "overlayfs mount of the unpacked layers failed"
    );
    let via_overlay = std::fs::read_to_string(listing.path()).unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . -printf '%p %y %m %s\\n' | sort",
            flat.path().display()
        ))
        .output()
        .unwrap();
    let via_copy = String::from_utf8(output.stdout).unwrap();
    // The roots differ (a temp dir's mode); every path below matches.
    let below_root = |listing: &str| {
        listing
            .lines()
            .filter(|line| !line.starts_with(". "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(below_root(&via_overlay), below_root(&via_copy));
    assert!(via_copy.contains("./opt/c f"), "{via_copy}");
}

fn xattr_of(path: &Path) -> Option<Vec<u8>> {
    xattr::get(path, "trusted.overlay.opaque").unwrap()
}

#[test]
fn the_busybox_flattened_root_has_the_upper_file_and_not_the_whited_out_one() {
    require_root();
    let cache = tempfile::tempdir().unwrap();
    let prepared = store(&test_images(), cache.path())
        .prepare(&name(BUSYBOX), "t")
        .unwrap();
    let flat = tempfile::tempdir().unwrap();
    flatten_layers(&prepared.layers, flat.path()).unwrap();
    assert!(flat.path().join("etc/drover-image").is_file());
    assert!(!flat.path().join("etc/drover-lower-only").exists());
    assert!(std::fs::symlink_metadata(flat.path().join("bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());
    let output = std::process::Command::new("chroot")
        .arg(flat.path())
        .args(["/bin/sh", "-c", "echo inside; ls /etc"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("inside\n")
            && stdout.contains("drover-image")
            && !stdout.contains("drover-lower-only"),
        "{stdout}"
    );
}

#[test]
fn hostile_layers_write_nothing_outside_their_directory() {
    require_root();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("victim");
    std::fs::write(&target, "untouched").unwrap();
    let escapes: Vec<(&str, Vec<Member<'_>>)> = vec![
        (
            "dotdot",
            vec![Member::RawFile(
                "../../../../../../../../tmp/drover-escape",
                b"x",
            )],
        ),
        (
            "symlink-whiteout",
            vec![
                Member::Symlink("etc", outside.path().to_str().unwrap()),
                Member::File("etc/.wh.victim", b""),
            ],
        ),
        (
            "symlink-file",
            vec![
                Member::Symlink("etc", outside.path().to_str().unwrap()),
                Member::File("etc/victim", b"overwritten"),
            ],
        ),
    ];
    for (label, members) in escapes {
        let images = tempfile::tempdir().unwrap();
        let reference = format!("drover-test/{label}:1");
        write_layout(&images.path().join(label), &reference, &[members], None);
        let cache = tempfile::tempdir().unwrap();
        let error = store(images.path(), cache.path())
            .prepare(&name(&reference), "t")
            .unwrap_err();
        assert!(
            matches!(error, ImageError::Corrupt { .. }),
            "{label}: {error:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "untouched",
            "{label}"
        );
        assert!(!Path::new("/tmp/drover-escape").exists(), "{label}");
        assert!(
            cached_layers(cache.path()).is_empty(),
            "{label}: nothing cached"
        );
    }
}

#[test]
fn a_multi_platform_index_resolves_to_this_hosts_manifest() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    let layout = images.path().join("multi");
    let ours = write_layout(
        &layout,
        "unused",
        &[vec![Member::File("ours", b"amd64")]],
        None,
    );
    let manifest_size =
        std::fs::metadata(layout.join("blobs/sha256").join(hex(&ours.manifest_digest)))
            .unwrap()
            .len();
    // A nested index listing another platform first, then this host's.
    let host_arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "1".repeat(64)),
             "size": 1, "platform": {"os": "linux", "architecture": "riscv64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ours.manifest_digest,
             "size": manifest_size, "platform": {"os": "linux", "architecture": host_arch}},
        ],
    }))
    .unwrap();
    let nested_digest = sha256(&nested);
    std::fs::write(
        layout.join("blobs/sha256").join(hex(&nested_digest)),
        &nested,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nested_digest,
                       "size": nested.len(), "annotations": {"org.opencontainers.image.ref.name": "drover-test/multi:1"}}],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let cache = tempfile::tempdir().unwrap();
    let store = store(images.path(), cache.path());
    let prepared = store.prepare(&name("drover-test/multi:1"), "t").unwrap();
    assert_eq!(prepared.digest, ours.manifest_digest);
    assert!(prepared.layers[0].join("ours").is_file());
    // The platform manifest's own digest finds it through the nested index too.
    let by_digest = store
        .prepare(
            &name(&format!("drover-test/multi@{}", ours.manifest_digest)),
            "t2",
        )
        .unwrap();
    assert_eq!(by_digest.layers, prepared.layers);
}

#[test]
fn zstd_layers_are_unsupported_with_a_clear_message() {
    require_root();
    let images = tempfile::tempdir().unwrap();
    write_layout(
        &images.path().join("zstd"),
        "drover-test/zstd:1",
        &[vec![Member::File("f", b"x")]],
        Some("application/vnd.oci.image.layer.v1.tar+zstd"),
    );
    let cache = tempfile::tempdir().unwrap();
    let error = store(images.path(), cache.path())
        .prepare(&name("drover-test/zstd:1"), "t")
        .unwrap_err();
    assert!(matches!(error, ImageError::Unsupported { .. }), "{error:?}");
    assert!(error.to_string().contains("zstd"), "{error}");
}

#[test]
fn the_entry_image_runs_its_entrypoint_with_the_default_cmd_or_the_tasks_arguments() {
    require_root();
    let cache = tempfile::tempdir().unwrap();
    let prepared = store(&test_images(), cache.path())
        .prepare(&name(BUSYBOX_ENTRY), "t")
        .unwrap();
    let run = |arguments: &[&str]| {
        let task = TaskCommand {
            shell: false,
            arguments: arguments.iter().map(|a| (*a).to_owned()).collect(),
            ..TaskCommand::default()
        };
        let command = combine(&task, &prepared.config).unwrap();
        let flat = tempfile::tempdir().unwrap();
        flatten_layers(&prepared.layers, flat.path()).unwrap();
        let output = std::process::Command::new("chroot")
            .arg(flat.path())
            .args(&command.argv)
            .env_clear()
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(run(&[]), "entry: default-arg\n");
    assert_eq!(run(&["from", "task"]), "entry: from task\n");
}

/// Run in a child process by
/// `a_lease_left_by_a_killed_holder_does_not_pin_its_layers`: prepares,
/// says so, and waits to be SIGKILLed, as a crashing executor would be.
#[test]
#[ignore = "a helper the lease test runs in a child process"]
fn lease_holder_child() {
    let images = std::env::var_os("DROVER_TEST_LEASE_IMAGES").expect("run by the lease test");
    let cache = std::env::var_os("DROVER_TEST_LEASE_CACHE").expect("run by the lease test");
    let _prepared = store(Path::new(&images), Path::new(&cache))
        .prepare(&name(BUSYBOX), "crashing-task")
        .unwrap();
    println!("prepared");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_lease_left_by_a_killed_holder_does_not_pin_its_layers() {
    use std::io::BufRead;
    require_root();
    let images = test_images();
    let cache = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lease_holder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DROVER_TEST_LEASE_IMAGES", &images)
        .env("DROVER_TEST_LEASE_CACHE", cache.path())
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Reads until the child says it holds the lease (EOF if it failed first).
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let said: Vec<String> = stdout
        .lines()
        .map(|line| line.unwrap())
        .take_while(|line| !line.ends_with("prepared"))
        .collect();
    let store = store(&images, cache.path());
    let while_alive = store.gc().unwrap();
    // Killed by its own pid, then reaped, before the assertions can fail.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        while_alive.removed.is_empty(),
        "a live holder's layers were collected; child said {said:?}"
    );
    assert_eq!(while_alive.kept, 2, "child said {said:?}");
    let after_death = store.gc().unwrap();
    assert_eq!(
        after_death.removed.len(),
        2,
        "the dead holder's lease still pins its layers"
    );
    assert_eq!(
        std::fs::read_dir(cache.path().join("leases"))
            .unwrap()
            .count(),
        0,
        "the stale lease was removed"
    );
}
