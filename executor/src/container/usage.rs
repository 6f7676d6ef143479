//! What a container has used, as its cgroup reports it.

/// A snapshot of a container's resource usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// CPU time spent in user mode, in seconds.
    pub cpu_user_secs: f64,
    /// CPU time spent in kernel mode, in seconds.
    pub cpu_system_secs: f64,
    /// Memory charged to the cgroup now, in bytes.
    pub mem_bytes: u64,
    /// The memory limit in force, in bytes (`None` when unlimited).
    pub mem_limit_bytes: Option<u64>,
    /// Processes in the cgroup.
    pub processes: u32,
}
