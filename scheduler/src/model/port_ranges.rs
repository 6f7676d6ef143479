//! A set of ports as inclusive ranges (Mesos' `ports` resource), with the
//! two operations placement needs: take a given port, take the lowest free
//! one. Ranges are kept sorted and disjoint.

/// Inclusive, sorted, disjoint port ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortRanges {
    ranges: Vec<(u32, u32)>,
}

impl PortRanges {
    /// The union of `ranges` (any order, may overlap; `begin > end` ignored).
    pub fn new(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut list: Vec<_> = ranges.into_iter().filter(|(b, e)| b <= e).collect();
        list.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(list.len());
        for (b, e) in list {
            match merged.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((b, e)),
            }
        }
        PortRanges { ranges: merged }
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// How many ports.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(b, e)| u64::from(e - b) + 1).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u32) -> bool {
        self.ranges.iter().any(|(b, e)| (*b..=*e).contains(&port))
    }

    /// Removes `port`; false if it was not there.
    pub fn take(&mut self, port: u32) -> bool {
        let Some(i) = self
            .ranges
            .iter()
            .position(|(b, e)| (*b..=*e).contains(&port))
        else {
            return false;
        };
        // In place: taking the lowest port (every dynamic port) only moves
        // a range's start, with no allocation.
        let (b, e) = self.ranges[i];
        match (port > b, port < e) {
            (true, true) => {
                self.ranges[i].1 = port - 1;
                self.ranges.insert(i + 1, (port + 1, e));
            }
            (true, false) => self.ranges[i].1 = port - 1,
            (false, true) => self.ranges[i].0 = port + 1,
            (false, false) => {
                self.ranges.remove(i);
            }
        }
        true
    }

    /// Removes and returns the lowest port.
    pub fn take_lowest(&mut self) -> Option<u32> {
        let port = self.ranges.first()?.0;
        self.take(port);
        Some(port)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_ports_are_taken_out_of_them() {
        let mut p = PortRanges::new([(31005, 31010), (31000, 31004), (9, 8), (40000, 40000)]);
        assert_eq!(p.ranges(), &[(31000, 31010), (40000, 40000)]);
        assert_eq!(p.len(), 12);
        assert!(p.take(31003));
        assert!(!p.take(31003));
        assert_eq!(
            p.ranges(),
            &[(31000, 31002), (31004, 31010), (40000, 40000)]
        );
        assert_eq!(p.take_lowest(), Some(31000));
        assert!(p.take(40000));
        assert_eq!(p.len(), 9);
        assert!(!p.contains(40000) && p.contains(31010));
    }
}
