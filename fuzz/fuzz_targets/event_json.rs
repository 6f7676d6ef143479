//! Decoding a scheduler Event from arbitrary json bytes must never panic; what
//! decodes must encode again.
#![no_main]

use drover_proto::v1::scheduler::Event;
use drover_proto::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = MediaType::Json.decode::<Event>(data) {
        let _ = MediaType::Json.encode(&message);
    }
});
