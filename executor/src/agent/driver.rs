//! The I/O half of the agent connection: POSTs calls to
//! `http://<agent>/api/v1/executor` with hyper and turns the subscription's
//! RecordIO body into events. Holds no protocol logic: the session decides,
//! this only carries out `Subscribe` and `Send`.

use std::time::Duration;

use bytes::Bytes;
use drover_proto::recordio::{RecordDecoder, DEFAULT_MAX_RECORD_BYTES};
use drover_proto::v1::executor::{Call, Event};
use drover_proto::MediaType;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

/// What the subscription stream produced. `epoch` tells a stale stream's
/// messages from the current one's.
#[derive(Debug)]
pub enum Incoming {
    /// An event on subscription `epoch`.
    Event(u64, Box<Event>),
    /// Subscription `epoch` failed or ended, and why.
    Closed(u64, String),
}

/// Errors talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The agent endpoint is not a valid URL authority. Not retryable.
    #[error("invalid agent endpoint {endpoint:?}")]
    Endpoint {
        /// What MESOS_AGENT_ENDPOINT held.
        endpoint: String,
    },
    /// MESOS_EXECUTOR_AUTHENTICATION_TOKEN cannot be a header value
    /// (control characters). Not retryable.
    #[error("MESOS_EXECUTOR_AUTHENTICATION_TOKEN is not a valid header value")]
    Token,
}

/// Carries calls to the agent.
#[derive(Clone)]
pub struct AgentDriver {
    client: Client<HttpConnector, Full<Bytes>>,
    url: hyper::Uri,
    media: MediaType,
    /// `Bearer <MESOS_EXECUTOR_AUTHENTICATION_TOKEN>`, on every call.
    authorization: Option<hyper::header::HeaderValue>,
    incoming: mpsc::Sender<Incoming>,
    /// UPDATE and MESSAGE calls, POSTed one at a time by a single task so
    /// the agent sees a task's updates in the order they were made.
    outgoing: mpsc::UnboundedSender<hyper::Request<Full<Bytes>>>,
}

/// How long a single UPDATE or MESSAGE POST may take before it is
/// abandoned (the session re-sends unacknowledged updates anyway).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl AgentDriver {
    /// A driver for the agent at `endpoint` (`host:port`), speaking `media`.
    /// `token`: the agent's executor authentication token, if it gave one.
    pub fn new(
        endpoint: &str,
        media: MediaType,
        token: Option<&str>,
        incoming: mpsc::Sender<Incoming>,
    ) -> Result<Self, DriverError> {
        let authorization = token
            .map(|token| {
                let mut value = hyper::header::HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| DriverError::Token)?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let url: hyper::Uri = format!("http://{endpoint}/api/v1/executor")
            .parse()
            .map_err(|_| DriverError::Endpoint {
                endpoint: endpoint.to_string(),
            })?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let (outgoing, queue) = mpsc::unbounded_channel();
        tokio::spawn(post_in_order(client.clone(), queue));
        Ok(Self {
            client,
            url,
            media,
            authorization,
            incoming,
            outgoing,
        })
    }

    fn request(&self, call: &Call) -> hyper::Request<Full<Bytes>> {
        let body = Bytes::from(self.media.encode(call));
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = self.url.clone();
        let value = hyper::header::HeaderValue::from_static(self.media.as_str());
        request
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value.clone());
        request.headers_mut().insert(hyper::header::ACCEPT, value);
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// Opens subscription `epoch` with `call`; its events and its end
    /// arrive on the incoming channel.
    pub fn subscribe(&self, call: &Call, epoch: u64) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let request = self.request(call);
        tokio::spawn(async move {
            let reason = this.stream(request, epoch).await;
            let _ = this.incoming.send(Incoming::Closed(epoch, reason)).await;
        })
    }

    async fn stream(&self, request: hyper::Request<Full<Bytes>>, epoch: u64) -> String {
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(e) => return format!("connecting to the agent at {}: {e}", self.url),
        };
        if response.status() != hyper::StatusCode::OK {
            return format!("agent answered SUBSCRIBE with {}", response.status());
        }
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let media = match MediaType::from_content_type(content_type.as_deref()) {
            Ok(media) => media,
            Err(e) => return format!("agent's subscription stream: {e}"),
        };
        let mut body = response.into_body();
        let mut decoder = RecordDecoder::new(DEFAULT_MAX_RECORD_BYTES);
        loop {
            let frame = match body.frame().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return format!("subscription stream broke: {e}"),
                None => {
                    return match decoder.finish() {
                        Ok(()) => "agent closed the subscription stream".to_string(),
                        Err(e) => format!("subscription stream ended mid-record: {e}"),
                    }
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            decoder.feed(&data);
            loop {
                match decoder.next_record() {
                    Ok(Some(record)) => match media.decode::<Event>(&record) {
                        Ok(event) => {
                            if self
                                .incoming
                                .send(Incoming::Event(epoch, Box::new(event)))
                                .await
                                .is_err()
                            {
                                return "executor stopped".to_string();
                            }
                        }
                        Err(e) => return format!("undecodable event from the agent: {e}"),
                    },
                    Ok(None) => break,
                    Err(e) => return format!("bad RecordIO from the agent: {e}"),
                }
            }
        }
    }

    /// Queues an UPDATE or MESSAGE call for POSTing, after every call
    /// queued before it. The queue is bounded in practice by the session,
    /// which only sends an update again after the retry interval.
    pub fn send(&self, call: &Call) {
        if self.outgoing.send(self.request(call)).is_err() {
            tracing::warn!("the call sender has stopped; dropping a call");
        }
    }
}

/// POSTs queued calls one by one. Failures are logged here; the session
/// re-sends unacknowledged updates itself.
async fn post_in_order(
    client: Client<HttpConnector, Full<Bytes>>,
    mut queue: mpsc::UnboundedReceiver<hyper::Request<Full<Bytes>>>,
) {
    while let Some(request) = queue.recv().await {
        match tokio::time::timeout(CALL_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => {}
            Ok(Ok(response)) => {
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                tracing::warn!(%status, body = %String::from_utf8_lossy(&body), "agent rejected a call");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "call to the agent failed"),
            Err(_) => tracing::warn!("call to the agent timed out"),
        }
    }
}
