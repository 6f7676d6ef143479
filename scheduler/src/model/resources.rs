//! Scalar resources (cpus, memory, disk, gpus) in Drover's units, and the
//! arithmetic placement and offers need. Mesos `Resource` lists become this
//! at the edge (`mesos/`); nothing here knows a proto.

/// Scalar resources. Units in the names.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// CPU shares (cores).
    pub cpus: f64,
    /// Memory, MiB.
    pub mem_mib: f64,
    /// Disk, MiB.
    pub disk_mib: f64,
    /// GPUs.
    pub gpus: f64,
}

/// Mesos keeps scalars to 3 decimal places (reference 3.4.2.1); compare
/// with that tolerance so 0.1 + 0.2 fits in 0.3.
pub const EPSILON: f64 = 0.0005;

impl Resources {
    /// Whether `demand` fits in `self`.
    pub fn contains(&self, demand: &Resources) -> bool {
        self.short_of(demand).is_none()
    }

    /// The first resource `demand` needs more of than `self` has.
    pub fn short_of(&self, demand: &Resources) -> Option<&'static str> {
        [
            ("cpus", demand.cpus, self.cpus),
            ("mem", demand.mem_mib, self.mem_mib),
            ("disk", demand.disk_mib, self.disk_mib),
            ("gpus", demand.gpus, self.gpus),
        ]
        .into_iter()
        .find(|(_, want, have)| *want > have + EPSILON)
        .map(|(name, _, _)| name)
    }

    /// `self - other`, floored at zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem_mib: (self.mem_mib - other.mem_mib).max(0.0),
            disk_mib: (self.disk_mib - other.disk_mib).max(0.0),
            gpus: (self.gpus - other.gpus).max(0.0),
        }
    }

    /// The larger of `self` and `other`, per resource.
    pub fn max_each(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.max(other.cpus),
            mem_mib: self.mem_mib.max(other.mem_mib),
            disk_mib: self.disk_mib.max(other.disk_mib),
            gpus: self.gpus.max(other.gpus),
        }
    }

    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem_mib: self.mem_mib + other.mem_mib,
            disk_mib: self.disk_mib + other.disk_mib,
            gpus: self.gpus + other.gpus,
        }
    }
}
