//! The offers the engine holds, and when: gathered for
//! [`EngineConfig::offer_hold`] so that many runs are placed at once, kept
//! for [`EngineConfig::idle_offer_hold`] while no run waits (the next job
//! launches at once), declined otherwise.

use super::action::Call;
use super::config::EngineConfig;
use super::offer_book::{HeldHost, OfferBook};
use crate::model::ids::{AgentId, OfferId};
use crate::model::offer::Offer;
use std::time::{Duration, Instant};

/// The held offers and their two timers.
#[derive(Debug, Default)]
pub struct HeldOffers {
    /// The offers, per agent and role.
    pub book: OfferBook,
    /// When the gathered offers are placed on.
    hold_until: Option<Instant>,
    /// When offers kept while no run needs them are declined.
    idle_until: Option<Instant>,
}

impl HeldOffers {
    /// Holds `offer`, unless an offer with its id is held already (then
    /// false: see [`OfferBook::add`]); the hold starts with the first.
    pub fn add(&mut self, offer: &Offer, now: Instant, hold: Duration) -> bool {
        if !self.book.add(offer) {
            return false;
        }
        self.hold(now, hold);
        true
    }

    /// Whether an offer with this id is held.
    pub fn holds(&self, offer_id: &OfferId) -> bool {
        self.book.contains(offer_id)
    }

    /// Starts the hold if it is not running.
    pub fn hold(&mut self, now: Instant, hold: Duration) {
        if self.hold_until.is_none() {
            self.hold_until = Some(now + hold);
        }
    }

    /// Whether any offer is held.
    pub fn is_empty(&self) -> bool {
        self.book.is_empty()
    }

    /// Offers are void (a new subscription, none at all): forgets them.
    pub fn clear(&mut self) {
        self.book.clear();
        self.hold_until = None;
    }

    /// An offer was rescinded: its host's other offers are declined.
    pub fn rescind(&mut self, offer_id: &OfferId) -> Option<Call> {
        decline(self.book.rescind(offer_id), Duration::ZERO)
    }

    /// The agent's held offers, taken out (to decline them).
    pub fn take_agent(&mut self, agent: &AgentId) -> Vec<OfferId> {
        self.book.remove_agent(agent)
    }

    /// The agent is gone: its offers with it.
    pub fn remove_agent(&mut self, agent: &AgentId) {
        let _ = self.book.remove_agent(agent);
    }

    /// Whether the hold is over at `now`, leaving it as it is.
    pub fn hold_due(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|at| at <= now)
    }

    /// Whether the hold is over at `now`; if so it is.
    pub fn hold_over(&mut self, now: Instant) -> bool {
        if self.hold_until.is_some_and(|at| at <= now) {
            self.hold_until = None;
            return true;
        }
        false
    }

    /// Whether the idle hold is over at `now`; if so it is.
    pub fn idle_over(&mut self, now: Instant) -> bool {
        if self.idle_until.is_some_and(|at| at <= now) {
            self.idle_until = None;
            return true;
        }
        false
    }

    /// The earlier of the two timers.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.hold_until, self.idle_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Offers a round did not use (those still held, and `taken` ones it
    /// took out and did not use): declined; or, when no run waits, kept
    /// for a while, so that the next job launches at once.
    pub fn keep_or_decline(
        &mut self,
        taken: Vec<HeldHost>,
        runs_wait: bool,
        now: Instant,
        config: &EngineConfig,
    ) -> Option<Call> {
        for host in taken {
            self.book.put_back(host);
        }
        if !runs_wait && !config.idle_offer_hold.is_zero() {
            if self.idle_until.is_none() && !self.book.is_empty() {
                self.idle_until = Some(now + config.idle_offer_hold);
            }
            return None;
        }
        let refuse = if runs_wait {
            config.pending_refuse
        } else {
            config.refuse
        };
        self.decline_all(refuse)
    }

    /// Declines every held offer.
    pub fn decline_all(&mut self, refuse: Duration) -> Option<Call> {
        decline(self.book.take_offer_ids(), refuse)
    }
}

/// A DECLINE of `offer_ids`, if there are any.
pub fn decline(offer_ids: Vec<OfferId>, refuse: Duration) -> Option<Call> {
    if offer_ids.is_empty() {
        return None;
    }
    tracing::debug!(offers = offer_ids.len(), ?refuse, "declining");
    Some(Call::Decline { offer_ids, refuse })
}
