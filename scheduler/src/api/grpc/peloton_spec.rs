//! Peloton v1alpha specs (`JobSpec`, `PodSpec`, ...) and Drover's, both
//! ways. Pure.

use crate::model::spec::PodSpec;
use drover_seed_api::peloton::api::v1alpha::pod;

/// A pod spec as Peloton writes it.
pub fn pod_spec_to_proto(_spec: &PodSpec) -> pod::PodSpec {
    pod::PodSpec::default()
}
