//! How many more instances a restart may take down now: the restart's
//! `batch_size` and the job's `sla.maximum_unavailable_instances` (each 0
//! = no bound) cap the instances down at once, and the instances already
//! down (not available while they should be: not RUNNING, or not yet
//! HEALTHY, see [`crate::model::availability`]) use the cap up.

/// The number of instances that may be killed for a restart now.
pub fn restart_budget(
    batch_size: u32,
    maximum_unavailable: u32,
    instance_count: u32,
    unavailable: u32,
) -> u32 {
    let cap = [batch_size, maximum_unavailable]
        .into_iter()
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(instance_count);
    cap.saturating_sub(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tighter_bound_wins_and_down_instances_use_it_up() {
        let table = [
            // (batch, max unavailable, count, unavailable) -> budget
            ((0, 0, 10, 0), 10),
            ((0, 0, 10, 3), 7),
            ((2, 0, 10, 0), 2),
            ((2, 0, 10, 1), 1),
            ((0, 3, 10, 0), 3),
            ((5, 3, 10, 0), 3),
            ((2, 3, 10, 2), 0),
            ((2, 3, 10, 9), 0),
        ];
        for ((batch, max, count, down), want) in table {
            assert_eq!(
                restart_budget(batch, max, count, down),
                want,
                "{batch} {max} {count} {down}"
            );
        }
    }
}
