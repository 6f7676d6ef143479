//! Decoding a scheduler Call from arbitrary protobuf bytes must never panic; what
//! decodes must encode again.
#![no_main]

use drover_proto::v1::scheduler::Call;
use drover_proto::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = MediaType::Protobuf.decode::<Call>(data) {
        let _ = MediaType::Protobuf.encode(&message);
    }
});
