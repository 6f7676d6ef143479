//! The driver's call sender: one task that posts the session's calls to
//! the master on connections of its own, in the order the [`Lanes`]
//! decide. Acknowledgements go in a lane of their own (they commute with
//! every call), in pipelined batches (`pipelined.rs`); the other calls keep
//! their order, except that ACCEPTs and DECLINEs overtake each other.
//! Calls whose connection has been replaced are dropped.

use super::ack_clock::AckClock;
use super::pipelined::{Answer, Pipes, Unanswered};
use super::request::{basic_auth, call_headers, call_response, encode_call, post_call, HttpClient};
use super::{ConnEvent, DriverConfig};
use crate::mesos::lanes::{Kind, Lanes, Next};
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use crate::metrics::Metrics;
use bytes::Bytes;
use drover_proto::v1::scheduler::{call, Call};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A call handed to the sender: its connection's generation, the master
/// and stream it goes to, and the call.
pub(crate) type Outbound = (u64, Endpoint, StreamId, Box<Call>);

/// A call waiting in the lanes, as [`Outbound`] but with the call as
/// [`Outgoing`].
type Waiting = (u64, Endpoint, StreamId, Outgoing);

/// A call in the sender's lanes: encoded as it joins its lane, with only
/// its type kept. A launch wave's ACCEPTs and acknowledgements wait there
/// by the hundred, and a TaskInfo in memory takes several times its
/// encoding; held whole, they were most of the memory a 20,000-task
/// launch newly touched, each page a fault.
#[derive(Debug)]
struct Outgoing {
    r#type: Option<i32>,
    body: Bytes,
    /// An ACKNOWLEDGE's uuid, to time it ([`AckClock`]).
    ack_uuid: Option<Bytes>,
}

impl Outgoing {
    fn new(config: &DriverConfig, call: &Call) -> Self {
        Outgoing {
            r#type: call.r#type,
            body: encode_call(config, call),
            ack_uuid: call.acknowledge.as_ref().map(|a| a.uuid.clone()),
        }
    }

    fn is_ack(&self) -> bool {
        self.r#type == Some(call::Type::Acknowledge as i32)
    }
}

/// Sends the session's calls as [`Lanes`] orders them, up to
/// [`DriverConfig::call_window`] in flight at once, a new one leaving as
/// soon as any finishes (a sliding window: a burst of tens of thousands of
/// updates is acknowledged at the master's rate, not at the pace of the
/// slowest of each group). A call stamped with an older connection than
/// the newest is dropped unsent: its stream id is gone, so the master
/// would refuse it anyway (its offers are rescinded, its updates are
/// resent). Only answers that matter to the session (not 202) are
/// reported back, without waiting: the driver loop waits on this task's
/// queue, so this task must never wait on the driver's.
pub(crate) async fn send_calls(
    client: HttpClient,
    config: DriverConfig,
    mut outbox: mpsc::Receiver<Outbound>,
    tx: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    acks: Arc<AckClock>,
    newest: Arc<AtomicU64>,
) {
    let (client, config) = (&client, &config);
    let window = config.call_window.max(1);
    // The lanes are the sender's queue (the outbox in front of them holds
    // only a window's worth): together with the driver's own call queue,
    // at most twice `call_queue` calls wait.
    let most_waiting = config.call_queue.max(1);
    let pipes = &Pipes::with_tls(config.tls.clone());
    let send = |next: Next<Waiting>| async move {
        match next {
            Next::Call(kind, (generation, master, stream_id, call)) => {
                let body = call.body.clone();
                let response = post_call(client, config, &master, &stream_id, body).await;
                (kind, vec![(generation, call, response)])
            }
            Next::Acks(items) => {
                let bodies: Vec<&Bytes> = items.iter().map(|item| &item.3.body).collect();
                let responses = match items.first() {
                    Some((_, master, stream_id, _)) => {
                        let auth = basic_auth(config);
                        let headers = call_headers(config, stream_id, auth.as_deref());
                        let answers = pipes
                            .post(master, &headers, &bodies, config.call_timeout)
                            .await;
                        answers
                            .into_iter()
                            .map(|answered| response(master, answered))
                            .collect()
                    }
                    None => Vec::new(),
                };
                let answered = items.into_iter().zip(responses);
                let settled = answered.map(|((generation, _, _, call), r)| (generation, call, r));
                (Kind::Ack, settled.collect())
            }
        }
    };
    let mut lanes: Lanes<Waiting> = Lanes::new();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    // Acknowledgements share a batch only if they go to the same stream.
    let same_stream = |a: &Waiting, b: &Waiting| a.0 == b.0;
    loop {
        while let Some(next) = lanes.next(window, config.ack_batch.max(1), same_stream) {
            // Calls stamped with an older connection than the newest go
            // nowhere (see above).
            let stale = |item: &Waiting| item.0 < newest.load(Ordering::Relaxed);
            let next = match next {
                Next::Call(kind, item) if stale(&item) => {
                    lanes.done(kind);
                    metrics.calls_dropped.inc();
                    continue;
                }
                Next::Acks(acks) if acks.iter().any(stale) => {
                    let (dropped, acks): (Vec<_>, Vec<_>) = acks.into_iter().partition(stale);
                    for _ in dropped {
                        metrics.calls_dropped.inc();
                        metrics.ack_settled();
                    }
                    if acks.is_empty() {
                        lanes.done(Kind::Ack);
                        continue;
                    }
                    Next::Acks(acks)
                }
                next => next,
            };
            in_flight.push(send(next));
        }
        if !open && in_flight.is_empty() && lanes.waiting() == 0 {
            return;
        }
        tokio::select! {
            biased;
            Some((kind, answered)) = in_flight.next(), if !in_flight.is_empty() => {
                lanes.done(kind);
                for (generation, call, response) in answered {
                    if !settle(&metrics, &acks, &tx, generation, &call, response) {
                        return;
                    }
                }
            }
            item = outbox.recv(), if open && lanes.waiting() < most_waiting => match item {
                Some(item) => {
                    let push = |lanes: &mut Lanes<Waiting>, (generation, master, stream_id, call): Outbound| {
                        let waiting = Outgoing::new(config, &call);
                        lanes.push(Kind::of(&call), (generation, master, stream_id, waiting));
                    };
                    push(&mut lanes, item);
                    // Take what else is there now, so that the lanes see a
                    // burst whole rather than one call per wake-up.
                    while lanes.waiting() < most_waiting {
                        match outbox.try_recv() {
                            Ok(item) => push(&mut lanes, item),
                            Err(_) => break,
                        }
                    }
                }
                None => open = false,
            },
        }
    }
}

/// What a pipelined answer means to the session; no answer is `Rejected`
/// with status 0, as for a single call that failed in transit.
fn response(master: &Endpoint, answered: Result<Answer, Unanswered>) -> CallResponse {
    match answered {
        Ok(a) => call_response(master, a.status, a.location.as_deref(), a.body),
        Err(Unanswered { detail }) => CallResponse::Rejected { status: 0, detail },
    }
}

/// Counts an answered call and reports one that was not accepted; false
/// once the driver is gone.
fn settle(
    metrics: &Metrics,
    acks: &AckClock,
    tx: &mpsc::Sender<ConnEvent>,
    generation: u64,
    call: &Outgoing,
    response: CallResponse,
) -> bool {
    if call.is_ack() {
        metrics.ack_settled();
        metrics.acks_sent.inc();
    }
    if response == CallResponse::Accepted {
        let took = call
            .ack_uuid
            .as_ref()
            .and_then(|uuid| acks.answered(uuid, std::time::Instant::now()));
        if let Some(took) = took {
            metrics.ack_latency.observe(took.as_secs_f64());
        }
        return true;
    }
    metrics.calls_failed.inc();
    tracing::warn!(?response, kind = ?call.r#type, "call not accepted");
    !matches!(
        tx.try_send(ConnEvent::CallDone(generation, response)),
        Err(mpsc::error::TrySendError::Closed(_))
    )
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
    fn calls_wait_encoded_with_their_type() {
        use drover_proto::MediaType;
        for media in [MediaType::Protobuf, MediaType::Json] {
            let config = DriverConfig::new(media);
            let accept = crate::mesos::calls::accept(
                vec!["o-1".into()],
                vec![drover_proto::v1::TaskInfo {
                    name: "t".into(),
                    ..Default::default()
                }],
                std::time::Duration::ZERO,
            );
            let waiting = Outgoing::new(&config, &accept);
            assert_eq!(waiting.r#type, accept.r#type);
            assert!(!waiting.is_ack());
            assert_eq!(media.decode::<Call>(&waiting.body).unwrap(), accept);
            let ack = of(call::Type::Acknowledge);
            let waiting = Outgoing::new(&config, &ack);
            assert!(waiting.is_ack());
            assert_eq!(media.decode::<Call>(&waiting.body).unwrap(), ack);
        }
    }

    #[test]
    fn a_pipelined_call_left_unanswered_is_rejected_with_status_zero() {
        let master: Endpoint = "http://m1:5050/api/v1/scheduler".parse().unwrap();
        let accepted = Answer {
            status: 202,
            location: None,
            body: String::new(),
        };
        assert_eq!(response(&master, Ok(accepted)), CallResponse::Accepted);
        let lost = Unanswered {
            detail: "timed out".into(),
        };
        assert_eq!(
            response(&master, Err(lost)),
            CallResponse::Rejected {
                status: 0,
                detail: "timed out".into()
            }
        );
    }
}
