//! Arbitrary bytes, fed in arbitrary chunks, must never panic the RecordIO
//! decoder, and every record it yields must respect the maximum size.
#![no_main]

use drover_proto::RecordDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so chunkings are explored too.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let mut decoder = RecordDecoder::new(256);
    for piece in stream.chunks(usize::from(chunk).max(1)) {
        decoder.feed(piece);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => assert!(record.len() <= 256),
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = decoder.finish();
});
