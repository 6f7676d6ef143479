//! The job spec every task carries to the master as a `TaskInfo` label, so
//! that a scheduler whose store is lost can rebuild its jobs from the
//! master's task list (`--recover-from-master`, see
//! [`crate::engine::recovery`]). The master keeps a task's labels and lists
//! them in `/master/state`, for live tasks and for the last completed ones
//! (Mesos `src/common/http.cpp`, `json(JSON::ObjectWriter*, const Task&)`);
//! it keeps neither a task's command nor its `data`, so the spec must
//! travel in a label or not at all.
//!
//! The cost is the spec's JSON on every task, at the master and on the
//! wire: a few hundred bytes for a usual spec. A spec whose JSON exceeds
//! [`MAX_BYTES`] (thousands of per-instance overrides, say) is not carried;
//! its job cannot be rebuilt that way and is restored from a backup.

use super::spec::JobSpec;
use serde::{Deserialize, Serialize};

/// The label's key. Drover's own prefix; a user's pod label of the same key
/// is ignored on recovery (this one is the task's last label).
pub const KEY: &str = "drover.job.spec";

/// The longest spec carried, as JSON.
pub const MAX_BYTES: usize = 16 * 1024;

#[derive(Serialize)]
struct Carried<'a> {
    version: u64,
    spec: &'a JobSpec,
}

/// A spec as a task carried it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CarriedSpec {
    /// The job version the task ran.
    pub version: u64,
    /// The job's spec at that version.
    pub spec: JobSpec,
}

/// The label's value for `spec` at `version`; None when it is longer than
/// [`MAX_BYTES`].
pub fn encode(version: u64, spec: &JobSpec) -> Option<String> {
    serde_json::to_string(&Carried { version, spec })
        .ok()
        .filter(|text| text.len() <= MAX_BYTES)
}

/// A carried spec, as [`encode`] wrote it.
pub fn decode(text: &str) -> Result<CarriedSpec, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(instances: u32) -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "web", "instance_count": instances,
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.5, "mem_limit_mb": 64.0},
                "command": {"value": "sleep 1000", "user": "nobody"}
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn a_spec_round_trips_with_its_version() {
        let text = encode(3, &spec(2)).unwrap();
        let carried = decode(&text).unwrap();
        assert_eq!(carried.version, 3);
        assert_eq!(carried.spec, spec(2));
        assert!(
            text.len() < 400,
            "a usual spec is a few hundred bytes: {text}"
        );
    }

    #[test]
    fn a_spec_too_large_is_not_carried() {
        let mut big = spec(5000);
        for i in 0..5000 {
            big.instance_spec.insert(i, big.default_spec.clone());
        }
        assert_eq!(encode(1, &big), None);
    }

    #[test]
    fn what_is_not_a_carried_spec_is_an_error() {
        assert!(decode("{}").is_err());
        assert!(decode("not json").is_err());
        assert!(decode(r#"{"version": 1, "spec": {"type": "NOPE"}}"#).is_err());
    }
}
