//! Drover's resource limits for one container, independent of Mesos'
//! `Resource` protos (converted at the edge, in `supervisor::task`).

/// What a container may use. `None` means "no limit".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceLimits {
    /// CPUs (fractional); becomes CPU shares (v1) or weight (v2).
    pub cpus: Option<f64>,
    /// Whether `cpus` is also enforced as a hard CFS quota.
    pub cfs_quota: bool,
    /// Memory limit in bytes; swap is not allowed on top of it.
    pub mem_bytes: Option<u64>,
    /// The most processes (and threads) the container may hold.
    pub pids_max: Option<u64>,
}

/// Length of a CFS period, 100 ms: the kernel default and what Mesos writes.
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts (1 ms).
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// The smallest `cpu.shares` the kernel accepts.
const MIN_CPU_SHARES: u64 = 2;
/// v1 shares per CPU, as Mesos' cgroups/cpu isolator uses.
const CPU_SHARES_PER_CPU: f64 = 1024.0;

impl ResourceLimits {
    /// `cpus` as v1 `cpu.shares` (1024 per CPU, at least 2).
    pub fn cpu_shares(&self) -> Option<u64> {
        self.cpus
            .map(|cpus| ((cpus * CPU_SHARES_PER_CPU) as u64).max(MIN_CPU_SHARES))
    }

    /// `cpus` as v2 `cpu.weight`, mapped from shares the way the kernel and
    /// runc map them: `1 + (shares - 2) * 9999 / 262142`, clamped to 1..=10000.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares()
            .map(|shares| (1 + (shares.saturating_sub(2) * 9999) / 262_142).clamp(1, 10_000))
    }

    /// The CFS quota in microseconds per [`CFS_PERIOD_US`], if enabled.
    pub fn cfs_quota_us(&self) -> Option<u64> {
        if !self.cfs_quota {
            return None;
        }
        self.cpus
            .map(|cpus| ((cpus * CFS_PERIOD_US as f64) as u64).max(MIN_CFS_QUOTA_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_shares_weight_and_quota() {
        let cases = [
            (0.001, 2, 1, 1_000),
            (0.5, 512, 20, 50_000),
            (1.0, 1024, 39, 100_000),
            (2.0, 2048, 79, 200_000),
            (1000.0, 1_024_000, 10_000, 100_000_000),
        ];
        for (cpus, shares, weight, quota) in cases {
            let limits = ResourceLimits {
                cpus: Some(cpus),
                cfs_quota: true,
                ..Default::default()
            };
            assert_eq!(limits.cpu_shares(), Some(shares), "shares for {cpus}");
            assert_eq!(limits.cpu_weight(), Some(weight), "weight for {cpus}");
            assert_eq!(limits.cfs_quota_us(), Some(quota), "quota for {cpus}");
        }
    }

    #[test]
    fn quota_is_absent_unless_enabled() {
        let limits = ResourceLimits {
            cpus: Some(1.0),
            ..Default::default()
        };
        assert_eq!(limits.cfs_quota_us(), None);
    }
}
