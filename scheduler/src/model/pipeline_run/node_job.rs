//! The Drover batch job a container node runs as: one instance, its
//! command the node's `sh -c` script, in the container's image (the
//! default, [`ImageUse::Image`]) or on the agent's host
//! ([`ImageUse::Host`], `--kfp-images=host`: the image is recorded, not
//! asked for), its resources the container's (limit, else request, else
//! [`NODE_DEFAULTS`]), labelled with the run and the node so its pod,
//! events, logs and placement reasons are found from either.

use serde_json::json;

use super::drive::NodeStart;
use crate::model::pipeline::ImageUse;
use crate::model::resources::Resources;
use crate::model::spec::JobSpec;

/// The run a node job belongs to.
pub const RUN_LABEL: &str = "kfp.run_id";
/// The Argo node id of a node job.
pub const NODE_LABEL: &str = "kfp.node_id";
/// The files drover-executor reads back after exit 0 (a JSON list of
/// paths relative to the sandbox).
pub const OUTPUTS_LABEL: &str = "kfp.output_paths";

/// What a node asks for when its container says nothing.
pub const NODE_DEFAULTS: Resources = Resources {
    cpus: 0.1,
    mem_mib: 128.0,
    disk_mib: 64.0,
    gpus: 0.0,
};

/// The job spec of `start`, a node of run `run_id`; `images` says whether
/// it asks for its container's image.
pub fn node_job_spec(
    run_id: &str,
    owner: &str,
    node_display_name: &str,
    start: &NodeStart,
    images: ImageUse,
) -> Result<JobSpec, serde_json::Error> {
    let r = start.resources.task_resources(&NODE_DEFAULTS);
    let labels = json!([
        {"key": RUN_LABEL, "value": run_id},
        {"key": NODE_LABEL, "value": start.node_id},
        {"key": OUTPUTS_LABEL, "value": serde_json::to_string(&start.output_paths()).unwrap_or_default()},
    ]);
    let variables: Vec<_> = start
        .launch
        .env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    // In an image the command starts in the image's WorkingDir (Docker's
    // rule, as drover-executor applies it), while the node's paths are
    // relative to its sandbox, which Mesos mounts at $MESOS_SANDBOX.
    let script = match images {
        ImageUse::Image => format!("set -e\ncd \"$MESOS_SANDBOX\"\n{}", start.shell_script()),
        ImageUse::Host => start.shell_script(),
    };
    let mut pod = json!({
        "labels": labels,
        "containers": [{
            "name": "main",
            "resource": {
                "cpu_limit": r.cpus,
                "mem_limit_mb": r.mem_mib,
                "disk_limit_mb": r.disk_mib,
                "gpu_limit": r.gpus,
            },
            "command": {
                "value": script,
                "shell": true,
                "environment": {"variables": variables},
            },
        }],
    });
    if images == ImageUse::Image {
        pod["containers"][0]["image"] = json!(start.launch.image);
    }
    if let Some(seconds) = start.deadline_seconds {
        pod["runtime_limit_secs"] = json!(u32::try_from(seconds).unwrap_or(u32::MAX));
    }
    let spec = json!({
        "type": "BATCH",
        "name": format!("{run_id}/{node_display_name}"),
        "owner": owner,
        "description": format!("Kubeflow run {run_id}, node {} (attempt {})", start.node_id, start.attempt),
        "labels": labels,
        "instance_count": 1,
        "default_spec": pod,
    });
    serde_json::from_value(spec)
}
