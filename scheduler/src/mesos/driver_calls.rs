//! The driver's call sender: posts the session's calls to the master on
//! their own connection pool, in order except for calls that commute
//! (ACKNOWLEDGE, ACCEPT, DECLINE), and drops calls whose connection has been
//! replaced.

use super::{read_text, request, resolve_location, ConnEvent, DriverConfig, HttpClient};
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use crate::metrics::Metrics;
use drover_proto::v1::scheduler::{call, Call};
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::header::LOCATION;
use http::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sends calls in the order the session produced them, so that e.g. a
/// SUPPRESS never overtakes the REVIVE before it; only calls that commute
/// ([`commutes`]: ACKNOWLEDGE, ACCEPT, DECLINE) overlap: up to
/// [`DriverConfig::call_window`] are in flight at once, a new one
/// leaving as soon as any finishes (a sliding window: a burst of tens of
/// thousands of updates is acknowledged at the master's rate, not at the
/// pace of the slowest of each group), and any other call waits until the
/// ones before it are answered. A call stamped with an older
/// connection than the newest is dropped unsent: its stream id is gone, so
/// the master would refuse it anyway (its offers are rescinded, its updates
/// are resent). Only answers that matter to the session (not 202) are
/// reported back, without waiting: the driver loop waits on this task's
/// queue, so this task must never wait on the driver's.
pub(super) async fn send_calls(
    client: HttpClient,
    config: DriverConfig,
    mut outbox: mpsc::Receiver<(u64, Endpoint, StreamId, Call)>,
    tx: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    newest: Arc<AtomicU64>,
) {
    let (client, config) = (&client, &config);
    let window = config.call_window.max(1);
    let post = |item: (u64, Endpoint, StreamId, Call)| async move {
        let response = post_call(client, config, &item.1, &item.2, &item.3).await;
        (item.0, item.3, response)
    };
    let mut acks = FuturesUnordered::new();
    loop {
        let item = tokio::select! {
            biased;
            Some((generation, call, response)) = acks.next(), if !acks.is_empty() => {
                if !settle(&metrics, &tx, generation, &call, response) {
                    return;
                }
                continue;
            }
            item = outbox.recv(), if acks.len() < window => item,
        };
        let Some(item) = item else { return };
        if item.0 < newest.load(Ordering::Relaxed) {
            metrics.calls_dropped.fetch_add(1, Ordering::Relaxed);
            if is_ack(&item.3) {
                metrics.ack_settled();
            }
            continue;
        }
        if commutes(&item.3) {
            acks.push(post(item));
            continue;
        }
        while let Some((generation, call, response)) = acks.next().await {
            if !settle(&metrics, &tx, generation, &call, response) {
                return;
            }
        }
        let (generation, call, response) = post(item).await;
        if !settle(&metrics, &tx, generation, &call, response) {
            return;
        }
    }
}

/// Calls that may overtake one another: acknowledgements, and ACCEPTs and
/// DECLINEs (each is about offers of its own). A launch round sends one
/// ACCEPT per agent, hundreds at once; one round trip after another was a
/// fifth of a 20,000-task launch.
fn commutes(call: &Call) -> bool {
    matches!(
        call.r#type.and_then(|t| call::Type::try_from(t).ok()),
        Some(call::Type::Acknowledge | call::Type::Accept | call::Type::Decline)
    )
}

fn is_ack(call: &Call) -> bool {
    call.r#type == Some(call::Type::Acknowledge as i32)
}

/// Counts an answered call and reports one that was not accepted; false
/// once the driver is gone.
fn settle(
    metrics: &Metrics,
    tx: &mpsc::Sender<ConnEvent>,
    generation: u64,
    call: &Call,
    response: CallResponse,
) -> bool {
    if is_ack(call) {
        metrics.ack_settled();
        metrics.acks_sent.fetch_add(1, Ordering::Relaxed);
    }
    if response == CallResponse::Accepted {
        return true;
    }
    metrics.calls_failed.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(?response, kind = ?call.r#type, "call not accepted");
    !matches!(
        tx.try_send(ConnEvent::CallDone(generation, response)),
        Err(mpsc::error::TrySendError::Closed(_))
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: call::Type) -> Call {
        Call {
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    #[test]
    fn only_acknowledgements_and_offer_answers_overtake_each_other() {
        for kind in [
            call::Type::Acknowledge,
            call::Type::Accept,
            call::Type::Decline,
        ] {
            assert!(commutes(&of(kind)), "{kind:?}");
        }
        for kind in [
            call::Type::Revive,
            call::Type::Suppress,
            call::Type::Kill,
            call::Type::Reconcile,
            call::Type::Teardown,
        ] {
            assert!(!commutes(&of(kind)), "{kind:?}");
        }
        assert!(!commutes(&Call::default()));
    }
}
