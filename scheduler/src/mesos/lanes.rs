//! Which waiting call goes to the master next: the call-ordering lanes, the
//! decide half of the driver's call sender (`driver/sender.rs` pumps them).
//! Pure: calls go in with their [`Kind`], come out as [`Next`], and the
//! sender reports each answered one with [`Lanes::done`].
//!
//! ```text
//!  push(Ack) ──▶ acks:    a a a a a a ...   ─┐ a batch of one stream
//!                                            ├─▶ next(window, batch) ─▶ in flight ─▶ done(kind)
//!  push(other) ▶ ordered: D D S A K ...     ─┘ the head, when it may go
//! ```
//!
//! Calling contract: call [`Lanes::next`] until it returns None whenever a
//! call joins or one in flight is answered, and [`Lanes::done`] once for
//! every [`Next`] it returned (a batch of acknowledgements is one).

use drover_proto::v1::scheduler::{call, Call};
use std::collections::VecDeque;

/// How a call may be reordered against the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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

impl Kind {
    /// The kind of `call`.
    pub(crate) fn of(call: &Call) -> Kind {
        match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
            Some(call::Type::Acknowledge) => Kind::Ack,
            Some(call::Type::Accept | call::Type::Decline) => Kind::OfferAnswer,
            _ => Kind::Barrier,
        }
    }
}

/// What goes next: one call, or a batch of acknowledgements that takes
/// one slot of the window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    /// One call of this kind (never [`Kind::Ack`]).
    Call(Kind, T),
    /// Acknowledgements that share one slot (and one connection).
    Acks(Vec<T>),
}

/// The waiting calls and how many of each kind are in flight.
///
/// Acknowledgements wait in a lane of their own. In one lane with the rest,
/// a REVIVE or ACCEPT queued behind a launch wave's 100,000
/// acknowledgements waited for all of them (seconds); now it takes the
/// first free slot of the window (acknowledgements get a slot only when
/// the ordered lane's next call may not go yet). A slot carries up to a
/// batch of acknowledgements.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    acks: VecDeque<T>,
    ordered: VecDeque<(Kind, T)>,
    acks_in_flight: usize,
    answers_in_flight: usize,
    barrier_in_flight: bool,
}

impl<T> Lanes<T> {
    /// Empty lanes, nothing in flight.
    pub(crate) fn new() -> Self {
        Lanes {
            acks: VecDeque::new(),
            ordered: VecDeque::new(),
            acks_in_flight: 0,
            answers_in_flight: 0,
            barrier_in_flight: false,
        }
    }

    /// How many calls wait.
    pub(crate) fn waiting(&self) -> usize {
        self.acks.len() + self.ordered.len()
    }

    /// How many slots of the window are taken.
    pub(crate) fn in_flight(&self) -> usize {
        self.acks_in_flight + self.answers_in_flight + usize::from(self.barrier_in_flight)
    }

    /// A call of `kind` joins its lane.
    pub(crate) fn push(&mut self, kind: Kind, item: T) {
        match kind {
            Kind::Ack => self.acks.push_back(item),
            other => self.ordered.push_back((other, item)),
        }
    }

    /// What to send next with `window` slots allowed in flight, now
    /// counted as in flight; None if every waiting call must wait. An
    /// acknowledgement takes with it up to `batch - 1` more that may share
    /// its connection (`same_batch` with the first).
    pub(crate) fn next(
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
    pub(crate) fn done(&mut self, kind: Kind) {
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
        assert_eq!(Kind::of(&of(call::Type::Acknowledge)), Kind::Ack);
        for k in [call::Type::Accept, call::Type::Decline] {
            assert_eq!(Kind::of(&of(k)), Kind::OfferAnswer, "{k:?}");
        }
        for k in [
            call::Type::Revive,
            call::Type::Suppress,
            call::Type::Kill,
            call::Type::Reconcile,
            call::Type::Teardown,
        ] {
            assert_eq!(Kind::of(&of(k)), Kind::Barrier, "{k:?}");
        }
        assert_eq!(Kind::of(&Call::default()), Kind::Barrier);
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
