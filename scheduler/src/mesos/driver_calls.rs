//! The driver's call sender: posts the session's calls to the master on
//! their own connection pool. Acknowledgements go in a lane of their own
//! (they commute with every call), in pipelined batches
//! (`driver_pipelined.rs`); the other calls keep their order, except that
//! ACCEPTs and DECLINEs overtake each other. Calls whose connection has
//! been replaced are dropped.

use super::pipelined::Pipes;
use super::{
    call_response, encode_call, read_text, request_with_body, ConnEvent, DriverConfig, HttpClient,
};
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use crate::metrics::Metrics;
use bytes::Bytes;
use drover_proto::v1::scheduler::{call, Call};
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::header::LOCATION;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A call handed to the sender: its connection's generation, the master
/// and stream it goes to, and the call.
type Item = (u64, Endpoint, StreamId, Box<Call>);

/// A call waiting in the lanes, as [`Item`] but with the call as
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
}

impl Outgoing {
    fn new(config: &DriverConfig, call: &Call) -> Self {
        Outgoing {
            r#type: call.r#type,
            body: encode_call(config, call),
        }
    }

    fn is_ack(&self) -> bool {
        self.r#type == Some(call::Type::Acknowledge as i32)
    }
}

/// How a call may be reordered against the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// ACKNOWLEDGE: about one update of one task, which the agent resends
    /// until acknowledged; it commutes with every call.
    Ack,
    /// ACCEPT or DECLINE: each about offers of its own, so they overtake
    /// each other, but not the calls around them (a DECLINE must not pass
    /// the SUPPRESS before it).
    OfferAnswer,
    /// Any other call: sent once everything of the ordered lane before it
    /// is answered, and nothing of that lane passes it.
    Barrier,
}

fn kind(call: &Call) -> Kind {
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        Some(call::Type::Acknowledge) => Kind::Ack,
        Some(call::Type::Accept | call::Type::Decline) => Kind::OfferAnswer,
        _ => Kind::Barrier,
    }
}

/// What goes next: one call, or a batch of acknowledgements that takes
/// one slot of the window.
#[derive(Debug, PartialEq, Eq)]
enum Next<T> {
    Call(Kind, T),
    Acks(Vec<T>),
}

/// Which waiting call goes next (the decide half of the sender).
///
/// Acknowledgements wait in a lane of their own. In one lane with the rest,
/// a REVIVE or ACCEPT queued behind a launch wave's 100,000
/// acknowledgements waited for all of them (seconds); now it takes the
/// first free slot of the window (acknowledgements get a slot only when
/// the ordered lane's next call may not go yet). A slot carries up to a
/// batch of acknowledgements.
#[derive(Debug)]
struct Lanes<T> {
    acks: VecDeque<T>,
    ordered: VecDeque<(Kind, T)>,
    acks_in_flight: usize,
    answers_in_flight: usize,
    barrier_in_flight: bool,
}

impl<T> Lanes<T> {
    fn new() -> Self {
        Lanes {
            acks: VecDeque::new(),
            ordered: VecDeque::new(),
            acks_in_flight: 0,
            answers_in_flight: 0,
            barrier_in_flight: false,
        }
    }

    fn waiting(&self) -> usize {
        self.acks.len() + self.ordered.len()
    }

    fn in_flight(&self) -> usize {
        self.acks_in_flight + self.answers_in_flight + usize::from(self.barrier_in_flight)
    }

    fn push(&mut self, kind: Kind, item: T) {
        match kind {
            Kind::Ack => self.acks.push_back(item),
            other => self.ordered.push_back((other, item)),
        }
    }

    /// What to send next with `window` slots allowed in flight, now
    /// counted as in flight; None if every waiting call must wait. An
    /// acknowledgement takes with it up to `batch - 1` more that may share
    /// its connection (`same_batch` with the first).
    fn next(
        &mut self,
        window: usize,
        batch: usize,
        same_batch: impl Fn(&T, &T) -> bool,
    ) -> Option<Next<T>> {
        if self.in_flight() >= window.max(1) {
            return None;
        }
        // Offer answers leave a quarter of the window to waiting
        // acknowledgements, which a stream of DECLINEs (one per agent on
        // 10,000 agents) would otherwise hold back indefinitely.
        let answers_room = if self.acks.is_empty() {
            window.max(1)
        } else {
            (window - window / 4).max(1)
        };
        let head_may_go = match self.ordered.front() {
            Some((Kind::OfferAnswer, _)) => {
                !self.barrier_in_flight && self.answers_in_flight < answers_room
            }
            Some(_) => !self.barrier_in_flight && self.answers_in_flight == 0,
            None => false,
        };
        if head_may_go {
            let (kind, item) = self.ordered.pop_front()?;
            match kind {
                Kind::OfferAnswer => self.answers_in_flight += 1,
                _ => self.barrier_in_flight = true,
            }
            return Some(Next::Call(kind, item));
        }
        let first = self.acks.pop_front()?;
        let mut acks = vec![first];
        while acks.len() < batch {
            match self.acks.front() {
                Some(next) if same_batch(&acks[0], next) => {
                    acks.extend(self.acks.pop_front());
                }
                _ => break,
            }
        }
        self.acks_in_flight += 1;
        Some(Next::Acks(acks))
    }

    /// A call (or a batch of acknowledgements) of `kind` sent earlier was
    /// answered (or failed).
    fn done(&mut self, kind: Kind) {
        // A burst's lanes can be long (65,536 calls, 8 MiB of slots, the
        // calls themselves boxed); keep their memory only while needed.
        if self.acks.capacity() > 4 * self.acks.len().max(1024) {
            self.acks.shrink_to_fit();
        }
        if self.ordered.capacity() > 4 * self.ordered.len().max(1024) {
            self.ordered.shrink_to_fit();
        }
        match kind {
            Kind::Ack => self.acks_in_flight = self.acks_in_flight.saturating_sub(1),
            Kind::OfferAnswer => self.answers_in_flight = self.answers_in_flight.saturating_sub(1),
            Kind::Barrier => self.barrier_in_flight = false,
        }
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
pub(super) async fn send_calls(
    client: HttpClient,
    config: DriverConfig,
    mut outbox: mpsc::Receiver<Item>,
    tx: mpsc::Sender<ConnEvent>,
    metrics: Arc<Metrics>,
    newest: Arc<AtomicU64>,
) {
    let (client, config) = (&client, &config);
    let window = config.call_window.max(1);
    // The lanes are the sender's queue (the outbox in front of them holds
    // only a window's worth): together with the driver's own call queue,
    // at most twice `call_queue` calls wait.
    let most_waiting = config.call_queue.max(1);
    let pipes = &Pipes::default();
    let send = |next: Next<Waiting>| async move {
        match next {
            Next::Call(kind, (generation, master, stream_id, call)) => {
                let body = call.body.clone();
                let response = post_call(client, config, &master, &stream_id, body).await;
                (kind, vec![(generation, call, response)])
            }
            Next::Acks(items) => {
                let calls: Vec<&Bytes> = items.iter().map(|item| &item.3.body).collect();
                let responses = match items.first() {
                    Some((_, master, stream_id, _)) => {
                        pipes.post(config, master, stream_id, &calls).await
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
                    metrics.calls_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Next::Acks(acks) if acks.iter().any(stale) => {
                    let (dropped, acks): (Vec<_>, Vec<_>) = acks.into_iter().partition(stale);
                    for _ in dropped {
                        metrics.calls_dropped.fetch_add(1, Ordering::Relaxed);
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
                    if !settle(&metrics, &tx, generation, &call, response) {
                        return;
                    }
                }
            }
            item = outbox.recv(), if open && lanes.waiting() < most_waiting => match item {
                Some(item) => {
                    let push = |lanes: &mut Lanes<Waiting>, (generation, master, stream_id, call): Item| {
                        let waiting = Outgoing::new(config, &call);
                        lanes.push(kind(&call), (generation, master, stream_id, waiting));
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

/// Counts an answered call and reports one that was not accepted; false
/// once the driver is gone.
fn settle(
    metrics: &Metrics,
    tx: &mpsc::Sender<ConnEvent>,
    generation: u64,
    call: &Outgoing,
    response: CallResponse,
) -> bool {
    if call.is_ack() {
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
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_text(response.into_body()).await;
    call_response(master, status, location.as_deref(), body)
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
    fn acknowledgements_and_offer_answers_are_the_calls_that_may_be_reordered() {
        assert_eq!(kind(&of(call::Type::Acknowledge)), Kind::Ack);
        for k in [call::Type::Accept, call::Type::Decline] {
            assert_eq!(kind(&of(k)), Kind::OfferAnswer, "{k:?}");
        }
        for k in [
            call::Type::Revive,
            call::Type::Suppress,
            call::Type::Kill,
            call::Type::Reconcile,
            call::Type::Teardown,
        ] {
            assert_eq!(kind(&of(k)), Kind::Barrier, "{k:?}");
        }
        assert_eq!(kind(&Call::default()), Kind::Barrier);
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

    /// Lanes with `n` calls of `kind` waiting.
    fn waiting(kind: Kind, call: &'static str, n: usize) -> Lanes<&'static str> {
        let mut lanes = Lanes::new();
        for _ in 0..n {
            lanes.push(kind, call);
        }
        lanes
    }

    /// Sends everything that may go now, one acknowledgement per slot.
    fn drain(lanes: &mut Lanes<&'static str>, window: usize) -> Vec<&'static str> {
        std::iter::from_fn(|| match lanes.next(window, 1, |_, _| true)? {
            Next::Call(_, c) => Some(c),
            Next::Acks(acks) => {
                assert_eq!(acks.len(), 1);
                Some(acks[0])
            }
        })
        .collect()
    }

    #[test]
    fn acknowledgements_go_in_batches_of_one_stream() {
        let mut lanes = Lanes::new();
        for ack in ["s1", "s1", "s1", "s2", "s2"] {
            lanes.push(Kind::Ack, ack);
        }
        let same = |a: &&str, b: &&str| a == b;
        assert_eq!(lanes.next(8, 2, same), Some(Next::Acks(vec!["s1", "s1"])));
        assert_eq!(lanes.next(8, 8, same), Some(Next::Acks(vec!["s1"])));
        lanes.push(Kind::Barrier, "revive");
        assert_eq!(
            lanes.next(8, 8, same),
            Some(Next::Call(Kind::Barrier, "revive"))
        );
        assert_eq!(lanes.next(8, 8, same), Some(Next::Acks(vec!["s2", "s2"])));
        // Each batch held one slot of the window.
        assert_eq!(lanes.in_flight(), 4);
        assert_eq!(lanes.next(4, 8, same), None);
    }

    #[test]
    fn a_revive_behind_a_wave_of_acknowledgements_leaves_at_once() {
        let mut lanes = waiting(Kind::Ack, "ack", 1000);
        lanes.push(Kind::Barrier, "revive");
        let sent = drain(&mut lanes, 4);
        assert_eq!(sent, vec!["revive", "ack", "ack", "ack"]);
    }

    #[test]
    fn a_freed_slot_goes_to_the_ordered_lane_first() {
        let mut lanes = waiting(Kind::Ack, "ack", 10);
        // Nothing else waits: every slot may carry an acknowledgement.
        assert_eq!(drain(&mut lanes, 4), vec!["ack"; 4]);
        lanes.push(Kind::Barrier, "kill");
        lanes.push(Kind::Barrier, "revive");
        assert!(drain(&mut lanes, 4).is_empty(), "the window is full");
        lanes.done(Kind::Ack);
        assert_eq!(drain(&mut lanes, 4), vec!["kill"]);
        // The revive waits for the kill; meanwhile freed slots carry
        // acknowledgements.
        lanes.done(Kind::Ack);
        assert_eq!(drain(&mut lanes, 4), vec!["ack"]);
        lanes.done(Kind::Barrier);
        assert_eq!(drain(&mut lanes, 4), vec!["revive"]);
    }

    #[test]
    fn offer_answers_leave_acknowledgements_a_share_of_the_window() {
        let mut lanes = waiting(Kind::OfferAnswer, "decline", 100);
        lanes.push(Kind::Ack, "ack");
        lanes.push(Kind::Ack, "ack");
        let sent = drain(&mut lanes, 8);
        assert_eq!(sent.iter().filter(|c| **c == "decline").count(), 6);
        assert_eq!(sent.iter().filter(|c| **c == "ack").count(), 2);
        // With no acknowledgement waiting, answers take the whole window.
        lanes.done(Kind::Ack);
        lanes.done(Kind::Ack);
        assert_eq!(drain(&mut lanes, 8), vec!["decline"; 2]);
    }

    #[test]
    fn the_ordered_lane_keeps_its_order_around_offer_answers() {
        let mut lanes = Lanes::new();
        lanes.push(Kind::OfferAnswer, "accept-1");
        lanes.push(Kind::OfferAnswer, "accept-2");
        lanes.push(Kind::Barrier, "suppress");
        lanes.push(Kind::OfferAnswer, "decline");
        // The two ACCEPTs overlap; the SUPPRESS waits for both, and the
        // DECLINE for the SUPPRESS.
        assert_eq!(drain(&mut lanes, 8), vec!["accept-1", "accept-2"]);
        lanes.done(Kind::OfferAnswer);
        assert!(drain(&mut lanes, 8).is_empty());
        lanes.done(Kind::OfferAnswer);
        assert_eq!(drain(&mut lanes, 8), vec!["suppress"]);
        lanes.done(Kind::Barrier);
        assert_eq!(drain(&mut lanes, 8), vec!["decline"]);
    }
}
