//! The driver's call sender: posts the session's calls to the master on
//! their own connection pool, in order except for runs of ACKNOWLEDGEs,
//! and drops calls whose connection has been replaced.

use super::{read_text, request, resolve_location, ConnEvent, DriverConfig, HttpClient};
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use crate::metrics::Metrics;
use drover_proto::v1::scheduler::{call, Call};
use http::header::LOCATION;
use http::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sends calls in the order the session produced them, so that e.g. a
/// SUPPRESS never overtakes the REVIVE before it; only a run of consecutive
/// ACKNOWLEDGEs is sent concurrently (see [`DriverConfig::ack_concurrency`]).
/// A call stamped with an older connection than the newest is dropped
/// unsent: its stream id is gone, so the master would refuse it anyway (its
/// offers are rescinded, its updates are resent). Only answers that matter
/// to the session (not 202) are reported back, without waiting: the driver
/// loop waits on this task's queue, so this task must never wait on the
/// driver's.
pub(super) async fn send_calls(
    client: HttpClient,
    config: DriverConfig,
    mut outbox: mpsc::Receiver<(u64, Endpoint, StreamId, Call)>,
    tx: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    newest: Arc<AtomicU64>,
) {
    let is_ack = |call: &Call| call.r#type == Some(call::Type::Acknowledge as i32);
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(item) => item,
            None => match outbox.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let mut group = vec![first];
        if is_ack(&group[0].3) {
            while group.len() < config.ack_concurrency.max(1) {
                match outbox.try_recv() {
                    Ok(item) if is_ack(&item.3) => group.push(item),
                    Ok(item) => {
                        next = Some(item);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let current = newest.load(Ordering::Relaxed);
        let (stale, group): (Vec<_>, Vec<_>) = group.into_iter().partition(|i| i.0 < current);
        for (_, _, _, call) in &stale {
            metrics.calls_dropped.fetch_add(1, Ordering::Relaxed);
            if is_ack(call) {
                metrics.ack_settled();
            }
        }
        let responses =
            futures_util::future::join_all(group.iter().map(|(_, master, stream_id, call)| {
                post_call(&client, &config, master, stream_id, call)
            }))
            .await;
        for ((generation, _, _, call), response) in group.into_iter().zip(responses) {
            let kind = call.r#type;
            if is_ack(&call) {
                metrics.ack_settled();
                metrics.acks_sent.fetch_add(1, Ordering::Relaxed);
            }
            if response == CallResponse::Accepted {
                continue;
            }
            metrics.calls_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(?response, ?kind, "call not accepted");
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                tx.try_send(ConnEvent::CallDone(generation, response))
            {
                return;
            }
        }
    }
}

async fn post_call(
    client: &HttpClient,
    config: &DriverConfig,
    master: &Endpoint,
    stream_id: &StreamId,
    call: &Call,
) -> CallResponse {
    let req = match request(config, master, Some(stream_id), call) {
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
                detail: e.to_string(),
            }
        }
        Err(_) => {
            return CallResponse::Rejected {
                status: 0,
                detail: "timed out".into(),
            }
        }
    };
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| resolve_location(master, l));
    let body = read_text(response.into_body()).await;
    match status {
        StatusCode::OK | StatusCode::ACCEPTED => CallResponse::Accepted,
        StatusCode::TEMPORARY_REDIRECT => match location {
            Some(leader) => CallResponse::Redirect(leader),
            None => CallResponse::Rejected {
                status: 307,
                detail: body,
            },
        },
        StatusCode::FORBIDDEN => CallResponse::NotSubscribed,
        other => CallResponse::Rejected {
            status: other.as_u16(),
            detail: body,
        },
    }
}
