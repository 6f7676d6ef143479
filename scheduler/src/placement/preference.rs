//! Soft constraints (Titus `softConstraints`, Peloton's preferred
//! constraint): what a task prefers of a host, scored, never blocking. A
//! [`Preference`] gives each feasible host a penalty, 0 when the host meets
//! it (or the task does not ask for it), larger the further the host is
//! from it, in instances where that has a meaning (siblings already on
//! the host, instances more than the emptiest zone). [`place`] ranks
//! hosts by their penalties first, in chain order, and by the strategy's
//! score (SPREAD or BINPACK) among hosts with equal penalties; the filters
//! alone decide which hosts are feasible, so a task that has any feasible
//! host is placed whatever it prefers.
//!
//! [`place`]: super::place

use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// One soft constraint.
pub trait Preference: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// How far `host` is from what `task` prefers: 0 = met.
    fn penalty(&self, task: &TaskDemand, host: &HostView, round: &Round) -> u32;
}

/// Most preferences a chain ranks by: each takes 16 bits of the rank key.
pub const MAX_PREFERENCES: usize = 4;

/// The penalties of `host` for `task` as one number that orders hosts as
/// the penalties do in chain order (lexicographically): the first
/// preference decides, the next breaks its ties, and so on. 0 = every
/// preference met. One integer, so ranking a host allocates nothing.
/// A penalty above `u16::MAX` counts as `u16::MAX`: hosts that far off
/// are all equally bad.
pub fn rank_key(
    preferences: &[Box<dyn Preference>],
    task: &TaskDemand,
    host: &HostView,
    round: &Round,
) -> u64 {
    debug_assert!(
        preferences.len() <= MAX_PREFERENCES,
        "a chain ranks by at most {MAX_PREFERENCES} preferences"
    );
    preferences
        .iter()
        .take(MAX_PREFERENCES)
        .fold(0u64, |key, p| {
            let penalty = p.penalty(task, host, round).min(u32::from(u16::MAX));
            (key << 16) | u64::from(penalty)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;

    struct Fixed(&'static str, u32);

    impl Preference for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn penalty(&self, _: &TaskDemand, _: &HostView, _: &Round) -> u32 {
            self.1
        }
    }

    #[test]
    fn the_first_preference_decides_and_later_ones_break_its_ties() {
        let task = TaskDemand::new(0, "j", Resources::default());
        let host = HostView::new("a", "h", "*", Resources::default());
        let round = Round::default();
        let key = |a: u32, b: u32| {
            let chain: Vec<Box<dyn Preference>> =
                vec![Box::new(Fixed("a", a)), Box::new(Fixed("b", b))];
            rank_key(&chain, &task, &host, &round)
        };
        assert_eq!(key(0, 0), 0, "all met");
        assert!(key(0, 9) < key(1, 0));
        assert!(key(1, 0) < key(1, 1));
        assert_eq!(key(u32::MAX, 0), key(u32::from(u16::MAX), 0), "clamped");
        assert!(key(u32::MAX, 0) > key(7, u32::MAX));
    }
}
