//! `PatchJob`'s spec: "provide only the fields which have changed" (the
//! seed), made exact over proto3, where an absent field and a default one
//! are the same bytes. Pure.
//!
//! # What "set" means
//! A field of the request's `JobSpec` is *set* when it is on the wire:
//! - a scalar or enum (`name`, `instance_count`, ...) that is not its
//!   default (not `""`, `0`, `false`, the enum's 0 value);
//! - a repeated field or a map (`labels`, `ldap_groups`, `instance_spec`,
//!   `containers`, ...) with at least one entry;
//! - a message field (`sla`, `default_spec`, `respool_id`, ...) that is
//!   present, even empty.
//!
//! # How set fields apply
//! - A set scalar, enum, repeated field or map REPLACES the current value
//!   whole (a patch of `labels` is the whole new list; of `instance_spec`
//!   the whole new map).
//! - A set message field is MERGED field by field, by the same rules, into
//!   the current one (so `default_spec { kill_grace_period_seconds: 5 }`
//!   changes that field alone, and `default_spec { containers: [...] }`
//!   replaces the containers); a oneof member set replaces the oneof.
//! - A field that is not set keeps the job's current value exactly.
//!   `revision` is ignored (the request's `version` is the check).
//!
//! So a patch can never set a field back to its default (`false`, `0`,
//! `""`, an empty list): ReplaceJob with the whole spec does that.

use super::peloton_spec::{job_spec_from_proto, job_spec_to_proto};
use crate::api::error::{ApiError, Code};
use crate::model::spec::JobSpec;
use drover_seed_api::peloton::api::v1alpha::job::stateless;
use prost::Message;
use prost_reflect::{DynamicMessage, Value};

const JOB_SPEC: &str = "peloton.api.v1alpha.job.stateless.JobSpec";

fn internal(what: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: Code::Internal,
        message: format!("patching the job spec: {what}"),
    }
}

/// `current` with the fields `patch` sets (see the module doc) changed;
/// `at` is the patch's path in the request.
pub fn patched(
    current: &JobSpec,
    patch: &stateless::JobSpec,
    at: &str,
) -> Result<JobSpec, ApiError> {
    let desc = super::seed_pool()
        .get_message_by_name(JOB_SPEC)
        .ok_or_else(|| internal(format!("{JOB_SPEC} is not in the seed descriptors")))?;
    let base_proto = job_spec_to_proto(current);
    let mut base = DynamicMessage::decode(desc.clone(), base_proto.encode_to_vec().as_slice())
        .map_err(internal)?;
    let over = DynamicMessage::decode(desc, patch.encode_to_vec().as_slice()).map_err(internal)?;
    merge(&mut base, &over)?;
    let merged = stateless::JobSpec::decode(base.encode_to_vec().as_slice()).map_err(internal)?;
    let translated = job_spec_from_proto(&merged, at)?;
    // Only the fields the patch sets come from the translation: the others
    // keep the job's own values, Drover-only parts included, which a trip
    // through the proto would lose.
    let mut out = current.clone();
    for (field, _) in over.fields() {
        match field.name() {
            "name" => out.name = translated.name.clone(),
            "owner" => out.owner = translated.owner.clone(),
            "owning_team" => out.owning_team = translated.owning_team.clone(),
            "ldap_groups" => out.ldap_groups = translated.ldap_groups.clone(),
            "description" => out.description = translated.description.clone(),
            "labels" => out.labels = translated.labels.clone(),
            "instance_count" => out.instance_count = translated.instance_count,
            "sla" => out.sla = translated.sla.clone(),
            "default_spec" => out.default_spec = translated.default_spec.clone(),
            "instance_spec" => out.instance_spec = translated.instance_spec.clone(),
            "respool_id" => out.respool_id = translated.respool_id.clone(),
            _ => {}
        }
    }
    Ok(out)
}

/// Merges the set fields of `over` into `base` (module doc's rules).
fn merge(base: &mut DynamicMessage, over: &DynamicMessage) -> Result<(), ApiError> {
    for (field, value) in over.fields() {
        if let (Value::Message(patch), false, false) = (value, field.is_list(), field.is_map()) {
            if base.has_field(&field) {
                if let Value::Message(current) = base.get_field_mut(&field) {
                    merge(current, patch)?;
                    continue;
                }
            }
        }
        base.try_set_field(&field, value.clone())
            .map_err(internal)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_seed_api::peloton::api::v1alpha::{peloton, pod};

    fn spec() -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "web", "owner": "me", "instance_count": 3,
            "labels": [{"key": "tier", "value": "web"}],
            "default_spec": {
                "containers": [{"name": "c", "command": {"value": "sleep 100"}}],
                "kill_grace_period_seconds": 1
            }
        }))
        .unwrap()
    }

    #[test]
    fn only_the_set_fields_change() {
        let current = spec();
        let patch = stateless::JobSpec {
            instance_count: 5,
            ..Default::default()
        };
        let out = patched(&current, &patch, "spec").unwrap();
        assert_eq!(out.instance_count, 5);
        assert_eq!(
            JobSpec {
                instance_count: 3,
                ..out
            },
            current
        );
    }

    #[test]
    fn a_set_message_merges_and_a_set_list_replaces() {
        let current = spec();
        let patch = stateless::JobSpec {
            default_spec: Some(pod::PodSpec {
                kill_grace_period_seconds: 7,
                ..Default::default()
            }),
            labels: vec![peloton::Label {
                key: "tier".into(),
                value: "api".into(),
            }],
            ..Default::default()
        };
        let out = patched(&current, &patch, "spec").unwrap();
        assert_eq!(out.default_spec.kill_grace_period_seconds, Some(7));
        assert_eq!(
            out.default_spec.containers, current.default_spec.containers,
            "the containers the patch does not name stay"
        );
        assert_eq!(out.labels.len(), 1);
        assert_eq!(out.labels[0].value, "api");
        assert_eq!(out.name, "web");
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        let current = spec();
        let out = patched(&current, &stateless::JobSpec::default(), "spec").unwrap();
        assert_eq!(out, current);
    }
}
