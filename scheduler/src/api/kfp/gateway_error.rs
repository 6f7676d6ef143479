//! Errors as the kfp API server writes them: grpc-gateway v1's error body
//! (the seed's `api.Status` with the message beside it), `{"error",
//! "code", "message", "details"}` with the gRPC code's number, and the
//! HTTP status grpc-gateway v1 gives each code (`HTTPStatusFromCode`).

use crate::api::error::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The HTTP status grpc-gateway v1 answers `code` with.
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code as C;
    match code {
        C::Ok => StatusCode::OK,
        C::Cancelled => StatusCode::REQUEST_TIMEOUT,
        C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => StatusCode::BAD_REQUEST,
        C::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        C::NotFound => StatusCode::NOT_FOUND,
        C::AlreadyExists | C::Aborted => StatusCode::CONFLICT,
        C::PermissionDenied => StatusCode::FORBIDDEN,
        C::Unauthenticated => StatusCode::UNAUTHORIZED,
        C::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        C::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::Unknown | C::Internal | C::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error body and status of a failed call.
pub fn response(code: tonic::Code, message: &str) -> Response {
    let body = serde_json::json!({
        "error": message,
        "code": code as i32,
        "message": message,
        "details": [],
    });
    (http_status(code), axum::Json(body)).into_response()
}

/// A gRPC status as the kfp error answer.
pub fn from_status(status: &tonic::Status) -> Response {
    response(status.code(), status.message())
}

/// One of the API's own errors as the kfp error answer.
pub fn from_api(error: ApiError) -> Response {
    from_status(&tonic::Status::from(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_grpc_gateway_v1_maps_them() {
        assert_eq!(
            http_status(tonic::Code::Unimplemented),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            http_status(tonic::Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(tonic::Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(tonic::Code::NotFound), StatusCode::NOT_FOUND);
    }
}
