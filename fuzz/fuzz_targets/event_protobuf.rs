//! Decoding a scheduler Event from arbitrary protobuf bytes must never panic; what
//! decodes must encode again.
#![no_main]

use drover_proto::v1::scheduler::Event;
use drover_proto::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = MediaType::Protobuf.decode::<Event>(data) {
        let _ = MediaType::Protobuf.encode(&message);
    }
});
