//! The Kubeflow Pipelines v1beta1 REST surface that is not a seed method:
//! what the kfp SDK calls around runs, and the pure rules of listing runs.
//! These are Kubeflow's paths (`/apis/v1beta1/...`), documented in the
//! scheduler's README rather than in Drover's own OpenAPI document.
//!
//! - [`gateway_error`]: errors as the kfp API server (grpc-gateway v1)
//!   writes them, `{error, code, message, details}`, and its HTTP statuses.
//! - [`experiments`]: the experiments the SDK gets or creates, and
//!   `healthz`.
//! - [`list`]: `ListRunsV1`'s filter, sort, page token and page size.
//! - [`artifacts`]: where `ReadArtifactV1`'s file is, and its gzipped tar.

pub mod artifacts;
pub mod experiments;
pub mod gateway_error;
pub mod list;
