//! sha256 digests of blobs: of bytes in memory, and of a stream as it is
//! read (so a layer is verified in the same pass that unpacks it).

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::error::{BlobKind, ImageError};

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Checks that `bytes` hash to `expected`.
pub(crate) fn verify(
    image: &str,
    kind: BlobKind,
    expected: &str,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let actual = sha256_of(bytes);
    if actual == expected {
        return Ok(());
    }
    Err(ImageError::DigestMismatch {
        image: image.to_owned(),
        kind,
        expected: expected.to_owned(),
        actual,
    })
}

/// A reader that hashes and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left (a tar stream ends before its padding does) and
    /// returns the digest and byte count of the whole stream.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((format!("sha256:{:x}", self.hasher.finalize()), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}
