//! The job spec the API tests create.

/// A `BATCH` or `SERVICE` job spec named `{kind}-test` running `command`
/// in each of `instances` (0.1 cpu, 32 MiB, 1 s kill grace period).
pub fn job_spec(kind: &str, instances: u32, command: &str) -> serde_json::Value {
    serde_json::json!({
        "type": kind,
        "name": format!("{kind}-test"),
        "instance_count": instances,
        "default_spec": {
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32, "disk_limit_mb": 0},
                "command": {"value": command}
            }],
            "kill_grace_period_seconds": 1
        }
    })
}
