//! Compiles the Mesos v1 `.proto` sources with protox (a pure-Rust protobuf
//! compiler, so no system `protoc` is needed) and generates prost types from
//! the resulting descriptors. The encoded descriptor set is kept in OUT_DIR:
//! the JSON codec and the descriptor test read it at run time.

use std::{env, path::PathBuf};

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "proto/mesos/v1/mesos.proto",
    "proto/mesos/v1/scheduler/scheduler.proto",
    "proto/mesos/v1/executor/executor.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // The run-time pool needs the messages' shapes, not their comments:
    // without source info the decoded pool is a fraction of its size (it
    // was most of the executor's idle memory). prost-build below still gets
    // the comments, for the generated types' docs.
    let mut shapes = descriptors.clone();
    for file in &mut shapes.file {
        file.source_code_info = None;
    }
    std::fs::write(
        out_dir.join("mesos_v1_descriptors.bin"),
        shapes.encode_to_vec(),
    )?;
    prost_build::Config::new()
        .bytes(["."])
        .enable_type_names()
        .compile_fds(descriptors)?;
    Ok(())
}
