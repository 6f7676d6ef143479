//! The HTTP client of the scheduler's JSON API (and of an agent's files
//! API): one request, one JSON answer, and the API's `{"code", "message"}`
//! turned into [`CliError::Api`].

use super::error::CliError;
use super::sse::EventStream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// How long one request may take before the CLI gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one HTTP server (`http://host:port`, or `https://` with a
/// CA file).
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    /// `Authorization`, sent with every request when set.
    authorization: Option<http::HeaderValue>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Normalises `--addr`: `host:port`, `http://host:port[/]` or
/// `https://host:port[/]`.
pub fn normalize_addr(addr: &str) -> Result<String, CliError> {
    let trimmed = addr.trim().trim_end_matches('/');
    let base = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let uri: http::Uri = base
        .parse()
        .map_err(|_| CliError::BadAddr(addr.to_owned()))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(CliError::BadAddr(addr.to_owned()));
    }
    Ok(base)
}

impl ApiClient {
    /// A client of `addr` (see [`normalize_addr`]), plain HTTP only.
    pub fn new(addr: &str) -> Result<Self, CliError> {
        ApiClient::with_ca(addr, None)
    }

    /// A client of `addr`; an `https://` one is verified against the CA
    /// bundle `ca_file` (`--ca-file`), and refused without one.
    pub fn with_ca(addr: &str, ca_file: Option<&Path>) -> Result<Self, CliError> {
        let base = normalize_addr(addr)?;
        if base.starts_with("https://") && ca_file.is_none() {
            return Err(CliError::NoCaFile(base));
        }
        let tls = crate::tls::client::client_config(ca_file).map_err(CliError::Tls)?;
        let connector = crate::tls::client::https_connector(tls, REQUEST_TIMEOUT);
        Ok(ApiClient {
            base,
            authorization: None,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The same client, proving who it is with a bearer token.
    pub fn with_token(mut self, token: &str) -> Result<Self, CliError> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| CliError::Usage("the token is not printable text".into()))?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(http::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(http::Method::POST, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(http::Method::DELETE, path, None).await
    }

    /// One exchange; a non-2xx answer becomes an error.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let bytes = body.map(Value::to_string).unwrap_or_default();
        let (url, response) = self
            .send(method, path, "application/json", Bytes::from(bytes))
            .await?;
        let status = response.status();
        let body = read_all(&url, response).await?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| CliError::Http {
                url: url.clone(),
                status: status.as_u16(),
                body: format!("not JSON: {}", String::from_utf8_lossy(&body)),
            });
        }
        Err(answer_error(url, status, json, &body))
    }

    /// `GET path` as a stream of server-sent events (the watch); a non-2xx
    /// answer becomes an error, as [`Self::call`]'s do. Only the answer's
    /// head has a time limit: the stream lasts as long as the server sends.
    pub async fn stream(&self, path: &str) -> Result<EventStream, CliError> {
        let (url, response) = self
            .send(http::Method::GET, path, "text/event-stream", Bytes::new())
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(EventStream::new(response.into_body()));
        }
        let body = read_all(&url, response).await?;
        let json = serde_json::from_slice(&body).ok();
        Err(answer_error(url, status, json, &body))
    }

    /// Sends one request and waits (up to [`REQUEST_TIMEOUT`]) for the
    /// answer's head: the URL and the response.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        accept: &str,
        body: Bytes,
    ) -> Result<(String, http::Response<hyper::body::Incoming>), CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .header("accept", accept);
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| CliError::Usage(format!("bad request {url}: {e}")))?;
        let unreachable = |reason: String| CliError::Unreachable {
            url: url.clone(),
            reason,
        };
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer in {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| unreachable(connect_reason(&e)))?;
        Ok((url, response))
    }
}

/// The whole body of `response`.
async fn read_all(
    url: &str,
    response: http::Response<hyper::body::Incoming>,
) -> Result<Bytes, CliError> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Unreachable {
            url: url.to_owned(),
            reason: format!("answer cut short: {e}"),
        })?
        .to_bytes())
}

/// A non-2xx answer as an error: the API's `{"code", "message"}` when it
/// has one.
fn answer_error(
    url: String,
    status: http::StatusCode,
    json: Option<Value>,
    body: &[u8],
) -> CliError {
    {
        match json {
            Some(Value::Object(map)) if map.get("code").is_some_and(Value::is_string) => {
                let code = map["code"].as_str().unwrap_or_default().to_owned();
                let mut message = map
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if code == "UNAUTHENTICATED" {
                    message.push_str(
                        " (drover sends the token of --token, DROVER_TOKEN or its config \
                         file's `token`)",
                    );
                }
                CliError::Api { code, message }
            }
            // Kubeflow's REST face (grpc-gateway's error body): the gRPC
            // code by number, the message beside it.
            Some(Value::Object(map))
                if map.get("code").is_some_and(Value::is_u64)
                    && map.get("message").is_some_and(Value::is_string) =>
            {
                let number = map["code"].as_u64().unwrap_or(2);
                CliError::Api {
                    code: grpc_code_name(number),
                    message: map["message"].as_str().unwrap_or_default().to_owned(),
                }
            }
            _ => CliError::Http {
                url,
                status: status.as_u16(),
                body: String::from_utf8_lossy(body).into_owned(),
            },
        }
    }
}

/// A gRPC code's name (`3` is `INVALID_ARGUMENT`), as the JSON API
/// spells codes.
fn grpc_code_name(number: u64) -> String {
    let code = tonic::Code::from_i32(i32::try_from(number).unwrap_or(2));
    let camel = format!("{code:?}");
    let mut name = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The innermost cause of a failed request ("Connection refused"), which is
/// what a user can act on.
fn connect_reason(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut reason = e.to_string();
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}

/// Percent-encodes a query parameter value.
pub fn encode_query(value: &str) -> String {
    encode(value, b"-_.~/")
}

/// `/api/v1/jobs/<reference>`: a job's id or name as one path segment (a
/// name may hold spaces, `/`, `?` or `%`; ids never do).
pub fn job_path(reference: &str) -> String {
    format!("/api/v1/jobs/{}", encode(reference, b"-_.~"))
}

/// Percent-encodes every byte but ASCII letters, digits and `keep`.
fn encode(value: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            normalize_addr("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_addr("http://localhost:9/").unwrap(),
            "http://localhost:9"
        );
        assert_eq!(normalize_addr("https://x:1/").unwrap(), "https://x:1");
        assert!(matches!(
            ApiClient::new("https://x:1"),
            Err(CliError::NoCaFile(_))
        ));
        assert!(normalize_addr("ftp://h:1").is_err());
    }

    #[test]
    fn kubeflow_errors_are_named_by_their_grpc_code() {
        let body = serde_json::json!({"error": "no run x", "code": 5,
                                      "message": "no run x", "details": []});
        match answer_error("u".into(), http::StatusCode::NOT_FOUND, Some(body), b"") {
            CliError::Api { code, message } => {
                assert_eq!((code.as_str(), message.as_str()), ("NOT_FOUND", "no run x"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(grpc_code_name(3), "INVALID_ARGUMENT");
        assert_eq!(grpc_code_name(12), "UNIMPLEMENTED");
        assert_eq!(grpc_code_name(9), "FAILED_PRECONDITION");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("/tmp/a b&c"), "/tmp/a%20b%26c");
    }

    #[test]
    fn a_job_name_is_one_path_segment() {
        assert_eq!(job_path("service-web"), "/api/v1/jobs/service-web");
        assert_eq!(job_path("a/b c?%"), "/api/v1/jobs/a%2Fb%20c%3F%25");
    }
}
