//! Unpacking a fetched archive into the sandbox (blocking). tar, zip and
//! gz as Mesos' fetcher (which uses libarchive and gunzip); every entry
//! must stay inside the sandbox: the `tar` crate refuses `..` and
//! absolute paths, and zip entries are taken by their enclosed name.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::plan::Archive;

/// Unpacks `archive` (of kind `kind`) into `into`.
pub fn extract(kind: Archive, archive: &Path, into: &Path) -> Result<(), String> {
    let open = || File::open(archive).map_err(|e| format!("opening {}: {e}", archive.display()));
    match kind {
        Archive::Tar => untar(open()?, into),
        Archive::TarGz => untar(flate2::read::GzDecoder::new(open()?), into),
        Archive::TarBz2 => untar(bzip2::read::BzDecoder::new(open()?), into),
        Archive::TarXz => {
            // lzma-rs decodes into a writer; the tar goes through a file
            // next to the archive, not memory (archives can be large).
            let tar_path = into.join(".drover-fetch-xz.tar");
            let result = (|| {
                let mut tar = File::create(&tar_path)
                    .map_err(|e| format!("creating {}: {e}", tar_path.display()))?;
                lzma_rs::xz_decompress(&mut BufReader::new(open()?), &mut tar)
                    .map_err(|e| format!("xz: {e}"))?;
                drop(tar);
                untar(
                    File::open(&tar_path).map_err(|e| format!("reopening the tar: {e}"))?,
                    into,
                )
            })();
            let _ = std::fs::remove_file(&tar_path);
            result
        }
        Archive::Zip => zip::ZipArchive::new(open()?)
            .and_then(|mut zip| zip.extract(into))
            .map_err(|e| format!("zip: {e}")),
        Archive::Gz => {
            let name = archive
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".gz"))
                .filter(|n| !n.is_empty())
                .ok_or("a .gz file needs a name before its suffix")?;
            let out = into.join(name);
            let mut file =
                File::create(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
            std::io::copy(&mut flate2::read::GzDecoder::new(open()?), &mut file)
                .map(drop)
                .map_err(|e| format!("gunzip: {e}"))
        }
    }
}

fn untar(reader: impl Read, into: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    // Files belong to whoever runs the task (chowned after), never to the
    // uids recorded in the archive; modes are kept (executables stay so).
    archive.set_preserve_ownerships(false);
    archive.set_preserve_permissions(true);
    archive.unpack(into).map_err(|e| format!("tar: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn written(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn every_archive_kind_unpacks_with_its_modes() {
        let tar = tar_bytes(&[
            ("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
            ("a.txt", b"A", 0o644),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
        let cases = [
            (Archive::Tar, "x.tar", tar.clone()),
            (Archive::TarGz, "x.tgz", gz.finish().unwrap()),
            (Archive::TarBz2, "x.tar.bz2", bz.finish().unwrap()),
            (Archive::TarXz, "x.tar.xz", xz),
        ];
        for (kind, name, bytes) in cases {
            let into = tempfile::tempdir().unwrap();
            let archive = written(dir.path(), name, &bytes);
            extract(kind, &archive, into.path()).unwrap();
            let script = into.path().join("bin/run.sh");
            assert_eq!(
                std::fs::read(&script).unwrap(),
                b"#!/bin/sh\necho hi\n",
                "{name}"
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&script).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{name}");
            assert_eq!(std::fs::read(into.path().join("a.txt")).unwrap(), b"A");
            let left: Vec<_> = std::fs::read_dir(into.path()).unwrap().collect();
            assert_eq!(left.len(), 2, "{name}: nothing else is left behind");
        }
    }

    #[test]
    fn zip_and_gz_unpack() {
        let dir = tempfile::tempdir().unwrap();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("conf/app.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"{}").unwrap();
        let zip = zip.finish().unwrap().into_inner();
        extract(
            Archive::Zip,
            &written(dir.path(), "c.zip", &zip),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("conf/app.json")).unwrap(),
            b"{}"
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"plain").unwrap();
        let gz = gz.finish().unwrap();
        extract(
            Archive::Gz,
            &written(dir.path(), "data.txt.gz", &gz),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("data.txt")).unwrap(),
            b"plain"
        );
    }

    #[test]
    fn a_corrupt_archive_or_an_escaping_entry_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = written(dir.path(), "bad.tgz", b"not gzip at all");
        assert!(extract(Archive::TarGz, &bad, dir.path())
            .unwrap_err()
            .contains("tar"));
        // A hand-made header naming ../escape (the builder refuses to).
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut raw = header.as_bytes().to_vec();
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        let into = dir.path().join("sandbox");
        std::fs::create_dir(&into).unwrap();
        let evil = written(dir.path(), "evil.tar", &raw);
        let _ = extract(Archive::Tar, &evil, &into);
        assert!(
            !dir.path().join("escape").exists(),
            "an entry left the sandbox"
        );
    }
}
