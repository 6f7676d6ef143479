//! Who leads: ZooKeeper's leader-election recipe decided from one listing
//! of the election directory. Pure: the children's names in, this
//! replica's standing out. The driver ([`super::campaign`]) lists, asks
//! this, and watches what it says to watch.
//!
//! Every replica creates an ephemeral-sequential znode `member_NNNNNNNNNN`;
//! the lowest sequence number leads. A follower watches only its
//! predecessor (the next lower member), so one member's departure wakes
//! one follower, not all of them (the recipe's "herd effect"). When the
//! predecessor goes, the follower lists again: it leads if it is now the
//! lowest, or watches its new predecessor.

/// The prefix of every member's znode; ZooKeeper appends ten digits.
pub const MEMBER_PREFIX: &str = "member_";

/// This replica's place in the election, from one listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// This replica's member is the lowest: it leads.
    Leading,
    /// Another member is lower. `leader` is the lowest member (whose data
    /// says where to redirect), `predecessor` the one to watch (the same
    /// as `leader` for the second member).
    Following {
        /// The leading member's znode name.
        leader: String,
        /// The next lower member's znode name.
        predecessor: String,
    },
    /// This replica's member is not listed: its session ended and
    /// ZooKeeper removed it.
    Absent,
}

/// The sequence number ZooKeeper gave `name`, if it is a member's znode.
/// Ordered by number, not by text, so members of other prefixes or
/// malformed names never lead.
pub fn sequence(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(MEMBER_PREFIX)?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `me`'s standing among `children` (the election directory's listing).
pub fn standing(children: &[String], me: &str) -> Standing {
    let Some(mine) = sequence(me) else {
        return Standing::Absent;
    };
    if !children.iter().any(|child| child == me) {
        return Standing::Absent;
    }
    let mut lower: Vec<(u64, &String)> = children
        .iter()
        .filter_map(|child| sequence(child).map(|number| (number, child)))
        .filter(|(number, _)| *number < mine)
        .collect();
    lower.sort();
    match (lower.first(), lower.last()) {
        (Some((_, leader)), Some((_, predecessor))) => Standing::Following {
            leader: (*leader).clone(),
            predecessor: (*predecessor).clone(),
        },
        _ => Standing::Leading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_lowest_member_leads_and_each_follower_watches_its_predecessor() {
        let children = names(&[
            "member_0000000012",
            "member_0000000003",
            "member_0000000007",
        ]);
        assert_eq!(standing(&children, "member_0000000003"), Standing::Leading);
        assert_eq!(
            standing(&children, "member_0000000007"),
            Standing::Following {
                leader: "member_0000000003".into(),
                predecessor: "member_0000000003".into()
            }
        );
        assert_eq!(
            standing(&children, "member_0000000012"),
            Standing::Following {
                leader: "member_0000000003".into(),
                predecessor: "member_0000000007".into()
            }
        );
    }

    #[test]
    fn numbers_order_members_not_text_and_strangers_are_ignored() {
        // Past 2^31 ZooKeeper's counter wraps to a '-' sign; such names and
        // other children are not members and never lead.
        let children = names(&[
            "member_10000000000",
            "member_9999999999",
            "lock-0000000001",
            "member_-000000001",
            "member_abc",
        ]);
        assert_eq!(standing(&children, "member_9999999999"), Standing::Leading);
        assert_eq!(
            standing(&children, "member_10000000000"),
            Standing::Following {
                leader: "member_9999999999".into(),
                predecessor: "member_9999999999".into()
            }
        );
    }

    #[test]
    fn a_member_not_listed_is_absent() {
        let children = names(&["member_0000000001"]);
        assert_eq!(standing(&children, "member_0000000002"), Standing::Absent);
        assert_eq!(standing(&children, "stranger"), Standing::Absent);
        assert_eq!(standing(&[], "member_0000000001"), Standing::Absent);
    }
}
