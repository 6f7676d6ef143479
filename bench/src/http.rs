//! The benchmark's HTTP client on loopback: JSON GET/POST against the
//! scheduler and agent-sim, and the raw requests the no-policy client
//! sends to the Mesos scheduler API.

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(64)
                .build_http(),
        }
    }
}

impl Http {
    /// Sends `req` and returns the response with its body unread.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<http::Response<Incoming>> {
        let uri = req.uri().clone();
        self.client
            .request(req)
            .await
            .with_context(|| format!("request to {uri} failed"))
    }

    /// GET `url`: the body as text, failing on a non-2xx status.
    pub async fn get_text(&self, url: &str) -> anyhow::Result<String> {
        let req = http::Request::get(url).body(Full::new(Bytes::new()))?;
        let resp = self.send(req).await?;
        read_ok(url, resp).await
    }

    /// GET `url` as JSON.
    pub async fn get_json(&self, url: &str) -> anyhow::Result<serde_json::Value> {
        let text = self.get_text(url).await?;
        serde_json::from_str(&text).with_context(|| format!("{url} answered non-JSON"))
    }

    /// POST `body` as JSON to `url`; the answer as JSON.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let resp = self.send(req).await?;
        let text = read_ok(url, resp).await?;
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{url} answered non-JSON"))
    }
}

async fn read_ok(url: &str, resp: http::Response<Incoming>) -> anyhow::Result<String> {
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(text)
}
