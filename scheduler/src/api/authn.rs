//! Authentication on every face: one layer over the whole router (JSON,
//! gRPC, event streams, the UI's data), and the UI's login.
//!
//! The layer reads what a request presents ([`presented`]), asks the
//! [`Authenticator`] who that is, and puts a [`Caller`] in the request's
//! extensions for the handlers, who hand it to the engine with each write
//! (the engine decides what the caller may do). Refused: 401
//! UNAUTHENTICATED, in the face's own shape (a gRPC status for gRPC).
//!
//! Open without credentials: the health probes, the UI's static files
//! (the login page is one of them), the OpenAPI document, and the login
//! itself. Everything else, `/metrics` included, needs an identity.
//!
//! The UI's session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` when
//! the scheduler serves TLS; a write made with it must also carry the
//! `X-Drover-CSRF` header, which a page of another site cannot add without
//! a CORS preflight the scheduler never grants.

use super::error::{ApiError, Code};
use super::grpc::is_grpc;
use super::AppState;
use crate::auth::{Authenticator, Presented, Unauthenticated, Via};
use crate::model::access::Identity;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The UI's session cookie.
pub const SESSION_COOKIE: &str = "drover_session";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-drover-csrf";
/// The request id header, taken from the caller or made here, and
/// answered.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Which face a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// The JSON API (`/api/v1/...`), the UI's included.
    Json,
    /// gRPC.
    Grpc,
    /// JSON on a seed method's gRPC path.
    GrpcJson,
}

impl Face {
    /// Its name in audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Face::Json => "json",
            Face::Grpc => "grpc",
            Face::GrpcJson => "grpc-json",
        }
    }
}

/// Who made a request, how, and through what: what the engine authorises
/// and the audit trail records.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub identity: Arc<Identity>,
    /// How it was proven.
    pub via: Via,
    /// Through which face.
    pub face: Face,
    /// The method: `POST /api/v1/jobs/{id}/stop`, or a gRPC method's path.
    pub method: String,
    /// The request's id (`X-Request-Id`).
    pub request_id: String,
}

impl Caller {
    /// The caller of a gRPC request (the layer put it there).
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                tonic::Status::unauthenticated("no caller: the request was not authenticated")
            })
    }
}

/// Whether `path` is served without credentials.
fn is_open(method: &Method, path: &str) -> bool {
    matches!(
        path,
        "/health" | "/health/live" | "/health/ready" | "/" | "/ui" | "/ui/"
    ) || path.starts_with("/ui/")
        || path == "/api/v1/openapi.json"
        || (method == Method::POST && (path == "/api/v1/login" || path == "/api/v1/logout"))
}

/// What the request presents: `Authorization` first, then the session
/// cookie, then a client certificate the TLS layer verified.
pub fn presented(request: &Request) -> Result<(Presented, bool), ApiError> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not text"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        return if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            Ok((Presented::Bearer(rest.to_owned()), false))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let (user, password) = decode_basic(rest).ok_or_else(|| {
                unauthenticated("Authorization: Basic is not base64 of user:password")
            })?;
            Ok((Presented::Basic { user, password }, false))
        } else {
            Err(unauthenticated(
                "the Authorization header is neither 'Bearer <token>' nor 'Basic <user:password>'",
            ))
        };
    }
    if let Some(id) = session_cookie(headers) {
        return Ok((Presented::Session(id), true));
    }
    if let Some(name) = request.extensions().get::<super::tls::ClientCertName>() {
        return Ok((Presented::Certificate(name.0.clone()), false));
    }
    Ok((Presented::Nothing, false))
}

fn decode_basic(encoded: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError {
        code: Code::Unauthenticated,
        message: message.into(),
    }
}

/// The face's own answer to an error: a gRPC status, or the JSON shape.
fn refuse(grpc: bool, error: ApiError) -> Response {
    if grpc {
        tonic::Status::from(error)
            .into_http::<axum::body::Body>()
            .into_response()
    } else {
        error.into_response()
    }
}

/// The request id: the caller's, when it is short printable ASCII, or a
/// new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The layer: authenticates every request but the open ones.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let grpc = is_grpc(request.headers());
    if is_open(request.method(), &path) {
        return next.run(request).await;
    }
    let id = request_id(request.headers());
    let face = if grpc {
        Face::Grpc
    } else if path.starts_with("/api/") || path == "/metrics" {
        Face::Json
    } else {
        Face::GrpcJson
    };
    let method = match request.extensions().get::<MatchedPath>() {
        Some(route) if grpc || face == Face::GrpcJson => route.as_str().to_owned(),
        Some(route) => format!("{} {}", request.method(), route.as_str()),
        None => format!("{} {path}", request.method()),
    };
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let outcome = match presented(&request) {
        Ok((presented, by_cookie)) => state
            .auth
            .authenticate(presented)
            .await
            .map(|(identity, via)| (identity, via, by_cookie))
            .map_err(|e: Unauthenticated| unauthenticated(e.to_string())),
        Err(e) => Err(e),
    };
    let with_id = |mut response: Response| {
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    };
    let (identity, via, by_cookie) = match outcome {
        Ok(found) => found,
        Err(error) => {
            if writes || grpc {
                state.audit.refused(&id, face, &method, &error);
            }
            return with_id(refuse(grpc, error));
        }
    };
    let caller = Caller {
        identity,
        via,
        face,
        method,
        request_id: id.clone(),
    };
    if by_cookie && writes && !request.headers().contains_key(CSRF_HEADER) {
        let error = ApiError {
            code: Code::PermissionDenied,
            message: format!(
                "a write with the session cookie must carry the {CSRF_HEADER} header \
                 (refused as a possible cross-site request)"
            ),
        };
        state.audit.record(&caller, "", Err(&error));
        return with_id(refuse(grpc, error));
    }
    request.extensions_mut().insert(caller);
    with_id(next.run(request).await)
}

/// `POST /api/v1/login`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// Who is logged in, as `whoami` and `login` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The identity's name (`anonymous` without credentials).
    pub name: String,
    /// `viewer`, `user`, `operator` or `admin`.
    pub role: &'static str,
    /// The teams whose jobs it may change.
    pub teams: Vec<String>,
    /// How it was proven: `token`, `basic`, `session`, `certificate` or
    /// `anonymous`.
    pub via: &'static str,
}

fn whoami_json(identity: &Identity, via: Via) -> WhoAmI {
    WhoAmI {
        name: identity.name.clone(),
        role: identity.role.as_str(),
        teams: identity.teams.clone(),
        via: via.as_str(),
    }
}

/// `POST /api/v1/login`: a user name and password from the credentials
/// file open a session; its cookie comes back.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "auth",
    security(()),
    request_body = Login,
    responses((status = 200, description = "Logged in: the session cookie is set", body = WhoAmI))
)]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let login: Login = super::body::read_json(body, state.config.max_body_bytes, false).await?;
    let auth: &Authenticator = &state.auth;
    let identity = match auth.check_password(&login.user, &login.password).await {
        Ok(identity) => identity,
        Err(e) => {
            let error = unauthenticated(e.to_string());
            state.audit.refused(
                &request_id(&headers),
                Face::Json,
                "POST /api/v1/login",
                &error,
            );
            return Err(error);
        }
    };
    let session = auth.sessions.open(&identity.name, Instant::now());
    let secure = if state.config.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        crate::auth::sessions::SESSION_TTL.as_secs()
    );
    let mut response = Json(whoami_json(&identity, Via::Session)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/v1/logout`: ends the session of the cookie, if any.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "auth",
    security(()),
    responses((status = 204, description = "Logged out: the cookie is cleared"))
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        state.auth.sessions.close(&id);
    }
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("drover_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// `GET /api/v1/whoami`: the caller's name, role and teams.
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    tag = "auth",
    responses((status = 200, description = "Who the caller is", body = WhoAmI))
)]
pub async fn whoami(axum::Extension(caller): axum::Extension<Caller>) -> Json<WhoAmI> {
    Json(whoami_json(&caller.identity, caller.via))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder().uri("/api/v1/jobs");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn what_a_request_presents() {
        assert_eq!(presented(&request(&[])).unwrap().0, Presented::Nothing);
        assert_eq!(
            presented(&request(&[("authorization", "Bearer abc")]))
                .unwrap()
                .0,
            Presented::Bearer("abc".into())
        );
        // "alice:pa:ss" — the password may hold colons.
        assert_eq!(
            presented(&request(&[("authorization", "Basic YWxpY2U6cGE6c3M=")]))
                .unwrap()
                .0,
            Presented::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            presented(&request(&[("cookie", "a=b; drover_session=s1")])).unwrap(),
            (Presented::Session("s1".into()), true)
        );
        for bad in ["Bearer", "Digest x", "Basic !!!"] {
            let error = presented(&request(&[("authorization", bad)])).unwrap_err();
            assert_eq!(error.code, Code::Unauthenticated, "{bad}");
        }
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
    }

    #[test]
    fn only_probes_static_files_and_login_are_open() {
        for (method, path) in [
            (Method::GET, "/health/ready"),
            (Method::GET, "/ui/assets/index.js"),
            (Method::POST, "/api/v1/login"),
            (Method::GET, "/api/v1/openapi.json"),
        ] {
            assert!(is_open(&method, path), "{path}");
        }
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::GET, "/api/v1/jobs"),
            (Method::GET, "/api/v1/login"),
            (
                Method::POST,
                "/peloton.api.v1alpha.job.stateless.svc.JobService/CreateJob",
            ),
        ] {
            assert!(!is_open(&method, path), "{path}");
        }
    }
}
