//! drover-seed-api: the seeds' own gRPC APIs, wire-compatible with the
//! official protos. Peloton v1alpha (`peloton.api.v1alpha.*`), Titus v3
//! (`com.netflix.titus`) and the Kubeflow Pipelines v1beta1 run API (`api`),
//! written from the reference tables in `reference/` (see
//! `reference/seed-apis-sources.md`) and compiled at build time.
//!
//! # Layout
//! The modules mirror the proto packages:
//! - [`peloton::api::v1alpha`]: `job::stateless::svc` (JobService), `pod::svc`
//!   (PodService), `respool` (ResourcePoolService), `host::svc`, `watch::svc`,
//!   `volume::svc`, and their message packages. Each service module has a
//!   `*_server` module (the trait to implement and the tower service) and a
//!   `*_client` module (the tonic client).
//! - [`com::netflix::titus`] (also [`titus`]): JobManagementService and its
//!   messages.
//! - [`api`] (also [`kfp`]): RunService, ReportService, DummyFilterService.
//! - Peloton's `mesos.v1` types are [`drover_proto::v1`]'s.
//! - [`FILE_DESCRIPTOR_SET`]: every compiled file, for server reflection and
//!   protobuf-JSON mapping.

/// The generated code as prost and tonic write it. Generated code is not
/// held to the workspace's lints: it has no docs, uses `unwrap`-free but
/// clippy-unfriendly shapes (large enum variants, long argument lists) that
/// are the generators' to change, not ours.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/seed_api.rs"));
}

pub use generated::{api, com, peloton};

/// `com.netflix.titus`, by its short name.
pub use generated::com::netflix::titus;

/// `api` (Kubeflow Pipelines v1beta1), by a name that says whose it is.
pub use generated::api as kfp;

/// The encoded `google.protobuf.FileDescriptorSet` of every seed file and
/// the well-known types they import (no source info).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/seed_api_descriptors.bin"));

/// The fully qualified names of the services this crate compiles, as a
/// server or reflection service registers them.
pub const SERVICES: &[&str] = &[
    "peloton.api.v1alpha.job.stateless.svc.JobService",
    "peloton.api.v1alpha.pod.svc.PodService",
    "peloton.api.v1alpha.respool.ResourcePoolService",
    "peloton.api.v1alpha.host.svc.HostService",
    "peloton.api.v1alpha.watch.svc.WatchService",
    "peloton.api.v1alpha.volume.svc.VolumeService",
    "com.netflix.titus.JobManagementService",
    "api.RunService",
    "api.ReportService",
    "api.DummyFilterService",
];

/// A Peloton secret's data (`peloton.Secret.Value`) never shows in Debug
/// output: a logged CreateJob, ReplaceJob or PatchJob request shows the
/// secret's id and path only.
impl std::fmt::Debug for peloton::api::v1alpha::peloton::secret::Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("data", &format_args!("<redacted>"))
            .finish()
    }
}
