//! Compiles the seed APIs' `.proto` files (Peloton v1alpha, Titus v3, the
//! Kubeflow Pipelines v1beta1 run API) with protox, a pure-Rust protobuf
//! compiler, so no system `protoc` is needed; then generates prost messages
//! and tonic servers and clients from the descriptors. The encoded
//! descriptor set is kept in OUT_DIR for server reflection and JSON mapping.

use std::{env, path::PathBuf};

use protox::prost::Message;

/// The files that define services; protox compiles their imports with them
/// (every other seed file, and the well-known types they use).
const PROTOS: &[&str] = &[
    "peloton/api/v1alpha/job/stateless/svc/stateless_svc.proto",
    "peloton/api/v1alpha/pod/svc/pod_svc.proto",
    "peloton/api/v1alpha/respool/svc/respool_svc.proto",
    "peloton/api/v1alpha/host/svc/host_svc.proto",
    "peloton/api/v1alpha/watch/svc/watch_svc.proto",
    "peloton/api/v1alpha/volume/svc/volume_svc.proto",
    "netflix/titus/titus_job_api.proto",
    "backend/api/v1beta1/run.proto",
    "backend/api/v1beta1/report.proto",
    "backend/api/v1beta1/filter.proto",
    // Upstream's run.proto imports error.proto only for a swagger option
    // (the default error schema, `api.Status`); without options nothing
    // imports it, so it is named here.
    "backend/api/v1beta1/error.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Any file under proto/ may be imported; rerun when any changes.
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection and JSON mapping need the shapes, not source positions
    // (the files carry no comments anyway): dropping them keeps the
    // embedded set small.
    let mut shapes = descriptors.clone();
    for file in &mut shapes.file {
        file.source_code_info = None;
    }
    std::fs::write(
        out_dir.join("seed_api_descriptors.bin"),
        shapes.encode_to_vec(),
    )?;

    let mut config = prost_build::Config::new();
    config.enable_type_names();
    // A Peloton secret's data must not reach a log through `{:?}` of a
    // request: `lib.rs` gives this one message a redacted Debug of its own.
    config.skip_debug([".peloton.api.v1alpha.peloton.Secret.Value"]);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // No default stubs: every server impl states each method's answer,
        // so a method never answers a bare UNIMPLEMENTED by omission.
        .generate_default_stubs(false)
        // Peloton's `mesos.v1` types are a subset of upstream Mesos with the
        // same numbers and types (tests/mesos_types_are_drover_protos.rs
        // checks it), so they are drover-proto's own types: a Peloton
        // ContainerSpec carries the very ContainerInfo the scheduler puts in
        // a TaskInfo, and they are not generated twice.
        .extern_path(".mesos.v1", "::drover_proto::v1")
        // One module tree mirroring the proto packages (lib.rs includes it).
        .include_file("seed_api.rs")
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
