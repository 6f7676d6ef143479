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

/// Fields stored behind a `Box` in the generated types.
const BOXED: &[&str] = &[
    ".mesos.v1.Resource.disk",
    ".mesos.v1.TaskInfo.executor",
    ".mesos.v1.TaskInfo.container",
    ".mesos.v1.TaskInfo.health_check",
    ".mesos.v1.TaskInfo.check",
    ".mesos.v1.TaskInfo.discovery",
    ".mesos.v1.Offer.Operation.launch_group",
    // A Call or an Event is moved through a few channels per update (every
    // acknowledgement is a Call), so the rare large members live behind a
    // box: Call 1,480 -> 368 bytes, Event 1,064 -> 480.
    ".mesos.v1.scheduler.Call.subscribe",
    ".mesos.v1.scheduler.Call.update_framework",
    ".mesos.v1.scheduler.Call.accept_inverse_offers",
    ".mesos.v1.scheduler.Call.decline_inverse_offers",
    ".mesos.v1.scheduler.Call.acknowledge_operation_status",
    ".mesos.v1.scheduler.Call.reconcile_operations",
    ".mesos.v1.scheduler.Call.kill",
    ".mesos.v1.scheduler.Call.shutdown",
    ".mesos.v1.scheduler.Call.message",
    ".mesos.v1.scheduler.Call.request",
    ".mesos.v1.scheduler.Event.subscribed",
    ".mesos.v1.scheduler.Event.update_operation_status",
    ".mesos.v1.scheduler.Event.inverse_offers",
    ".mesos.v1.scheduler.Event.rescind_inverse_offer",
    ".mesos.v1.scheduler.Event.failure",
    ".mesos.v1.scheduler.Event.error",
    ".mesos.v1.scheduler.Event.message",
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
    let mut config = prost_build::Config::new();
    config
        .bytes(["."])
        // Box the large optional fields a framework rarely sets, so the
        // messages built per task stay small: a Resource carried a 976-byte
        // DiskInfo inline (1,248 bytes each) and a TaskInfo 2,712 bytes,
        // most of it unset ContainerInfo, ExecutorInfo and checks. Building
        // and copying them was most of a launch's TaskInfo cost.
        .enable_type_names();
    for field in BOXED {
        config.boxed(field);
    }
    // A secret's bytes must not reach a log through `{:?}` of a TaskInfo,
    // an ACCEPT or a LAUNCH: `lib.rs` gives this one message a redacted
    // Debug of its own.
    config.skip_debug([".mesos.v1.Secret.Value"]);
    config.compile_fds(descriptors)?;
    Ok(())
}
