//! What placement knows of one agent: the resources offered to us, minus
//! what this round has already assigned there.

/// Scalar resources. Units in the names.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU shares (cores).
    pub cpus: f64,
    /// Memory, MiB.
    pub mem_mib: f64,
    /// Disk, MiB.
    pub disk_mib: f64,
}

/// Mesos keeps scalars to 3 decimal places (reference 3.4.2.1); compare
/// with that tolerance so 0.1 + 0.2 fits in 0.3.
const EPSILON: f64 = 0.0005;

impl Resources {
    /// Whether `demand` fits in `self`.
    pub fn contains(&self, demand: &Resources) -> bool {
        demand.cpus <= self.cpus + EPSILON
            && demand.mem_mib <= self.mem_mib + EPSILON
            && demand.disk_mib <= self.disk_mib + EPSILON
    }

    /// `self - other`, floored at zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem_mib: (self.mem_mib - other.mem_mib).max(0.0),
            disk_mib: (self.disk_mib - other.disk_mib).max(0.0),
        }
    }

    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem_mib: self.mem_mib + other.mem_mib,
            disk_mib: self.disk_mib + other.disk_mib,
        }
    }
}

/// One agent as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// The agent id.
    pub agent_id: String,
    /// Its hostname.
    pub hostname: String,
    /// The role the offers were made to (all of a host view's offers share it).
    pub role: String,
    /// Everything offered.
    pub offered: Resources,
    /// Offered minus assigned this round.
    pub available: Resources,
    /// Tasks assigned here this round.
    pub assigned: usize,
}

impl HostView {
    /// A host with `offered` resources and nothing assigned yet.
    pub fn new(agent_id: &str, hostname: &str, role: &str, offered: Resources) -> Self {
        HostView {
            agent_id: agent_id.to_owned(),
            hostname: hostname.to_owned(),
            role: role.to_owned(),
            offered,
            available: offered,
            assigned: 0,
        }
    }
}
