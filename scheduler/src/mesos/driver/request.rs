//! One HTTP exchange with the master as the scheduler API wants it: the
//! POST of an encoded call (media type, `Mesos-Stream-Id`, basic
//! authentication), and what its answer means to the session
//! ([`call_response`], [`resolve_location`]). Shared by the SUBSCRIBE
//! stream, the call sender and its pipelined batches, so that every call
//! carries the same headers however it travels.

use super::DriverConfig;
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use base64::Engine as _;
use bytes::Bytes;
use drover_proto::v1::scheduler::Call;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// The header carrying the stream id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// The hyper client the SUBSCRIBE stream and single calls go through.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client with its own connection pool: Nagle off (calls are small and
/// each waits for its answer), connecting for at most 5 s; `https://`
/// verified against `tls`'s CA (`--master-ca-file`).
pub(crate) fn client(tls: Option<&Arc<rustls::ClientConfig>>) -> HttpClient {
    let connector = crate::tls::client::https_connector(
        tls.map(|config| config.as_ref().clone()),
        Duration::from_secs(5),
    );
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The POST of `call` to `master`.
pub(crate) fn request(
    config: &DriverConfig,
    master: &Endpoint,
    stream_id: Option<&StreamId>,
    call: &Call,
) -> Result<Request<Full<Bytes>>, http::Error> {
    request_with_body(config, master, stream_id, encode_call(config, call))
}

/// A call's body in the driver's media type.
pub(crate) fn encode_call(config: &DriverConfig, call: &Call) -> Bytes {
    Bytes::from(config.media.encode(call))
}

/// The POST of an encoded call.
pub(crate) fn request_with_body(
    config: &DriverConfig,
    master: &Endpoint,
    stream_id: Option<&StreamId>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut builder = Request::post(master.clone())
        .header(CONTENT_TYPE, config.media.as_str())
        .header(ACCEPT, config.media.as_str());
    if let Some(stream_id) = stream_id {
        builder = builder.header(STREAM_ID_HEADER, stream_id.0.as_str());
    }
    if let Some(auth) = basic_auth(config) {
        builder = builder.header(AUTHORIZATION, auth);
    }
    builder.body(Full::new(body))
}

/// The headers a call carries besides Host and Content-Length, in the
/// order [`request_with_body`] sets them, for a transport that writes its
/// requests itself (the pipelined batches). `auth`: [`basic_auth`]'s value,
/// made once per batch.
pub(crate) fn call_headers<'a>(
    config: &DriverConfig,
    stream_id: &'a StreamId,
    auth: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let media = config.media.as_str();
    let mut headers = vec![
        ("Content-Type", media),
        ("Accept", media),
        (STREAM_ID_HEADER, stream_id.0.as_str()),
    ];
    headers.extend(auth.map(|auth| ("Authorization", auth)));
    headers
}

/// The `Authorization` header's value, when credentials are configured.
pub(crate) fn basic_auth(config: &DriverConfig) -> Option<String> {
    basic_auth_header(config.credentials.as_ref())
}

/// HTTP basic authentication's `Authorization` value for `credentials`
/// (principal, secret).
pub(crate) fn basic_auth_header(credentials: Option<&(String, String)>) -> Option<String> {
    let (principal, secret) = credentials?;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    Some(format!("Basic {token}"))
}

/// Posts one encoded call on `client` and reads what its answer means;
/// a failed or timed-out exchange is `Rejected` with status 0.
pub(crate) async fn post_call(
    client: &HttpClient,
    config: &DriverConfig,
    master: &Endpoint,
    stream_id: &StreamId,
    body: Bytes,
) -> CallResponse {
    let req = match request_with_body(config, master, Some(stream_id), body) {
        Ok(r) => r,
        Err(e) => {
            return CallResponse::Rejected {
                status: 0,
                detail: e.to_string(),
            }
        }
    };
    let response = match tokio::time::timeout(config.call_timeout, client.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return CallResponse::Rejected {
                status: 0,
                detail: crate::tls::client::error_chain(&e),
            }
        }
        Err(_) => {
            return CallResponse::Rejected {
                status: 0,
                detail: "timed out".into(),
            }
        }
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_text(response.into_body()).await;
    call_response(master, status, location.as_deref(), body)
}

/// What an answer to a call (not SUBSCRIBE) means to the session.
pub(crate) fn call_response(
    master: &Endpoint,
    status: u16,
    location: Option<&str>,
    body: String,
) -> CallResponse {
    match StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR) {
        StatusCode::OK | StatusCode::ACCEPTED => CallResponse::Accepted,
        StatusCode::TEMPORARY_REDIRECT => {
            match location.and_then(|l| resolve_location(master, l)) {
                Some(leader) => CallResponse::Redirect(leader),
                None => CallResponse::Rejected {
                    status: 307,
                    detail: body,
                },
            }
        }
        StatusCode::FORBIDDEN => CallResponse::NotSubscribed,
        _ => CallResponse::Rejected {
            status,
            detail: body,
        },
    }
}

/// Resolves a `Location` header against the master that sent it; Mesos
/// writes it protocol-relative (`//leader:5050/master/api/v1/scheduler`),
/// which keeps the master's scheme (an https master's leader is https).
pub fn resolve_location(master: &Endpoint, location: &str) -> Option<Endpoint> {
    let scheme = master.scheme_str().unwrap_or("http");
    let absolute = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{}{location}", master.authority()?)
    } else {
        location.to_owned()
    };
    absolute.parse().ok()
}

/// An answer's body as text, at most 64 KiB of it (for the log).
pub(crate) async fn read_text(body: hyper::body::Incoming) -> String {
    let limited = http_body_util::Limited::new(body, 64 * 1024);
    match limited.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(e) => format!("(unreadable body: {e})"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_mesos_writes_them() {
        let master: Endpoint = "http://m1:5050/api/v1/scheduler".parse().unwrap();
        let cases = [
            (
                "//leader:5050/master/api/v1/scheduler",
                "http://leader:5050/master/api/v1/scheduler",
            ),
            (
                "http://l2:5050/api/v1/scheduler",
                "http://l2:5050/api/v1/scheduler",
            ),
            (
                "/master/api/v1/scheduler",
                "http://m1:5050/master/api/v1/scheduler",
            ),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve_location(&master, location).unwrap().to_string(),
                want
            );
        }
    }

    #[test]
    fn a_pipelined_call_carries_the_headers_of_a_single_one() {
        let master: Endpoint = "http://m1:5050/master/api/v1/scheduler".parse().unwrap();
        let stream = StreamId("s-1".into());
        for credentials in [None, Some(("p".to_owned(), "s".to_owned()))] {
            let mut config = DriverConfig::new(drover_proto::MediaType::Json);
            config.credentials = credentials.clone();
            let single = request_with_body(&config, &master, Some(&stream), Bytes::new()).unwrap();
            let auth = basic_auth(&config);
            let piped = call_headers(&config, &stream, auth.as_deref());
            assert_eq!(piped.len(), single.headers().len());
            for (name, value) in &piped {
                assert_eq!(single.headers()[*name], *value, "{name}");
            }
            let want_auth = credentials.map(|_| "Basic cDpz"); // base64("p:s")
            assert_eq!(auth.as_deref(), want_auth);
        }
    }

    /// The answers the pipelined test's master gives
    /// (`pipelined::tests::a_batch_is_answered_in_order_and_its_connection_kept`)
    /// mean to the session what they meant when the pipeline mapped them.
    #[test]
    fn answers_mean_accepted_rejected_redirect_or_not_subscribed() {
        let master: Endpoint = "http://m1:5050/api/v1/scheduler".parse().unwrap();
        let answer = |status, location, body: &str| {
            call_response(&master, status, location, body.to_owned())
        };
        assert_eq!(answer(202, None, ""), CallResponse::Accepted);
        assert_eq!(answer(200, None, ""), CallResponse::Accepted);
        assert_eq!(
            answer(400, None, "bad uuid"),
            CallResponse::Rejected {
                status: 400,
                detail: "bad uuid".into()
            }
        );
        assert_eq!(
            answer(307, Some("//m2:5050/api/v1/scheduler"), ""),
            CallResponse::Redirect("http://m2:5050/api/v1/scheduler".parse().unwrap())
        );
        assert_eq!(
            answer(307, None, "moved"),
            CallResponse::Rejected {
                status: 307,
                detail: "moved".into()
            }
        );
        assert_eq!(answer(403, None, "no!"), CallResponse::NotSubscribed);
    }
}
