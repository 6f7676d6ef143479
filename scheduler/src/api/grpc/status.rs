//! The API's errors as gRPC statuses: the same code, the same message, so
//! a gRPC client and a JSON client are told the same thing.

use crate::api::error::{ApiError, Code};

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let code = match e.code {
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::Aborted => tonic::Code::Aborted,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::ResourceExhausted => tonic::Code::ResourceExhausted,
            Code::Unimplemented => tonic::Code::Unimplemented,
            Code::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Code::OutOfRange => tonic::Code::OutOfRange,
            Code::Internal => tonic::Code::Internal,
            Code::Unavailable => tonic::Code::Unavailable,
            Code::Unauthenticated => tonic::Code::Unauthenticated,
            Code::PermissionDenied => tonic::Code::PermissionDenied,
        };
        tonic::Status::new(code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_version_is_aborted_with_its_message() {
        let status = tonic::Status::from(ApiError {
            code: Code::Aborted,
            message: "job version 3 is not 2".into(),
        });
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert_eq!(status.message(), "job version 3 is not 2");
    }
}
