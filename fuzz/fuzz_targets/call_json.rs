//! Decoding a scheduler Call from arbitrary json bytes must never panic; what
//! decodes must encode again.
#![no_main]

use drover_proto::v1::scheduler::Call;
use drover_proto::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = MediaType::Json.decode::<Call>(data) {
        let _ = MediaType::Json.encode(&message);
    }
});
