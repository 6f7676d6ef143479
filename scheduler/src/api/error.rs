//! The API's one error type, `{"code", "message"}` with gRPC-style codes
//! and matching HTTP statuses, and every mapping from domain errors to it.

use crate::engine::EngineError;
use crate::model::host::HostError;
use crate::model::job_ref::JobRefError;
use crate::model::pipeline_run::experiment::ExperimentRefused;
use crate::model::pool_validate::PoolError;
use crate::model::validate::SpecError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A gRPC-style status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request is malformed (400).
    InvalidArgument,
    /// No such job or pod (404).
    NotFound,
    /// The job id is taken (409).
    AlreadyExists,
    /// A stale entity version (409).
    Aborted,
    /// The request is valid but the entity is not in a state to allow it (412).
    FailedPrecondition,
    /// The request body is larger than the scheduler takes (413; the code
    /// gRPC gives a message over its size limit).
    ResourceExhausted,
    /// The route exists but not with this method (405, with `Allow`; the
    /// code grpc-gateway answers such a request with).
    Unimplemented,
    /// The request body did not arrive within the body read timeout (408).
    DeadlineExceeded,
    /// A revision older than the watch window (400, as grpc-gateway maps it).
    OutOfRange,
    /// The scheduler failed (500).
    Internal,
    /// The scheduler is starting, overloaded (its queue of writes is
    /// full) or shutting down (503, with `Retry-After`).
    Unavailable,
    /// No credentials, or credentials nobody has (401, with
    /// `WWW-Authenticate`).
    Unauthenticated,
    /// The caller's role or the job's owner forbid it (403).
    PermissionDenied,
}

impl Code {
    /// The code's name, as gRPC spells it.
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Aborted => "ABORTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
        }
    }

    /// The HTTP status the JSON API answers the code with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Unimplemented => StatusCode::METHOD_NOT_ALLOWED,
            Code::DeadlineExceeded => StatusCode::REQUEST_TIMEOUT,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: Code,
    /// What went wrong, naming the field when a field is at fault.
    pub message: String,
}

impl ApiError {
    /// An INVALID_ARGUMENT about `field`.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        ApiError {
            code: Code::InvalidArgument,
            message: format!("{field}: {problem}"),
        }
    }

    /// A NOT_FOUND.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError {
            code: Code::NotFound,
            message: format!("{what} not found"),
        }
    }
}

/// The body of every error answer, whatever its status: the code's gRPC
/// name and what went wrong. Fields in the order they have always been
/// written (alphabetical, as a JSON map kept them).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The gRPC-style code: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
    /// ABORTED, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, UNIMPLEMENTED,
    /// DEADLINE_EXCEEDED, OUT_OF_RANGE, INTERNAL, UNAVAILABLE (and, with
    /// authentication, UNAUTHENTICATED, PERMISSION_DENIED).
    #[schema(example = "NOT_FOUND")]
    pub code: &'static str,
    /// What went wrong, naming the field when a field is at fault.
    pub message: String,
}

impl ApiError {
    /// The answer with an HTTP status finer than the code's own: 414 for a
    /// URI too long is RESOURCE_EXHAUSTED, as 413 for a body too large is.
    /// Every UNAVAILABLE answer (starting, overloaded, shutting down) says
    /// when to retry.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let body = ErrorBody {
            code: self.code.name(),
            message: self.message,
        };
        let mut response = (status, Json(body)).into_response();
        if self.code == Code::Unavailable {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(super::shed::RETRY_AFTER_SECS),
            );
        }
        if self.code == Code::Unauthenticated {
            // No "Basic" challenge: a browser would pop its own login box
            // over the UI's.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"drover\""),
            );
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        self.into_response_with(status)
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        ApiError {
            code: Code::InvalidArgument,
            message: e.to_string(),
        }
    }
}

/// A job reference (the `{id}` of a route) that picks no job, or several.
impl From<JobRefError> for ApiError {
    fn from(e: JobRefError) -> Self {
        match &e {
            JobRefError::NotFound(_) => ApiError {
                code: Code::NotFound,
                message: e.to_string(),
            },
            JobRefError::Ambiguous { .. } => ApiError::invalid("job_id", e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error answering an API request");
        ApiError {
            code: Code::Internal,
            message: e.to_string(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::JobNotFound(_)
            | EngineError::PodNotFound(_)
            | EngineError::RunNotFound(_)
            | EngineError::PipelineRunNotFound(_) => Code::NotFound,
            EngineError::PipelineRunExists(_) => Code::AlreadyExists,
            EngineError::InvalidPipelineRun(_)
            | EngineError::ExperimentRefused(ExperimentRefused::NoName) => Code::InvalidArgument,
            // kfp 1.8's BadRequestError is ABORTED (grpc-gateway: 409).
            EngineError::PipelineRunNotRetryable(_) => Code::Aborted,
            EngineError::ExperimentRefused(ExperimentRefused::NameTaken(_)) => Code::AlreadyExists,
            EngineError::JobExists(_) => Code::AlreadyExists,
            EngineError::PermissionDenied(_) => Code::PermissionDenied,
            EngineError::VersionMismatch(_) => Code::Aborted,
            EngineError::StillRunning(_)
            | EngineError::LatestRun(_)
            | EngineError::NoActiveWorkflow(..)
            | EngineError::WorkflowInProgress(..)
            | EngineError::NotService(_)
            | EngineError::NothingToRollBack(..) => Code::FailedPrecondition,
            EngineError::InvalidSpec(_)
            | EngineError::Amend(..)
            | EngineError::NoAmendments
            | EngineError::JobTwice(_) => Code::InvalidArgument,
            EngineError::Pool(e) => pool_code(e),
            EngineError::Host(HostError::NoHosts) => Code::InvalidArgument,
            // Peloton answers both NOT_FOUND ("host is not DOWN").
            EngineError::Host(HostError::Unknown(_) | HostError::NotInMaintenance(_)) => {
                Code::NotFound
            }
            EngineError::Store(e) => {
                tracing::error!(error = %e, "a write was not stored");
                Code::Internal
            }
        };
        ApiError {
            code,
            message: e.to_string(),
        }
    }
}

/// The code of a refused pool change, as Peloton's ResourcePoolService
/// answers it.
fn pool_code(e: &PoolError) -> Code {
    match e {
        PoolError::NotFound(_) | PoolError::PathNotFound(_) | PoolError::JobPoolNotFound { .. } => {
            Code::NotFound
        }
        PoolError::IdTaken(_) | PoolError::NameTaken { .. } => Code::AlreadyExists,
        PoolError::Invalid { .. } | PoolError::Root(_) | PoolError::JobPoolNotLeaf { .. } => {
            Code::InvalidArgument
        }
        PoolError::DefaultUndeletable
        | PoolError::NotLeaf { .. }
        | PoolError::Busy { .. }
        | PoolError::ParentHoldsJobs { .. } => Code::FailedPrecondition,
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        ApiError {
            code: pool_code(&e),
            message: e.to_string(),
        }
    }
}

impl ApiError {
    /// The scheduler is still loading its store.
    pub fn starting() -> Self {
        ApiError {
            code: Code::Unavailable,
            message: "the scheduler is starting: its store is still loading".into(),
        }
    }

    /// The scheduler is shutting down and takes no more writes.
    pub fn shutting_down() -> Self {
        ApiError {
            code: Code::Unavailable,
            message: "the scheduler is shutting down".into(),
        }
    }
}
