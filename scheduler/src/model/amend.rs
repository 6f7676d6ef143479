//! Changes of a job that restart none of its pods: its size (scaling: a
//! new instance runs the job's target spec; scaling down removes the
//! highest instances, whose runs the engine then stops), its enabled flag, its labels,
//! the seed message it keeps, its runs' attributes, and its pods' goals, made together as one
//! write. Pure: the engine checks the version and stores the result.

use super::job::{Job, PodControl};
use super::spec::{Label, SeedMessage};
use super::state::PodGoal;
use std::collections::BTreeMap;

/// What to change; `None` and empty leave a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobAmendment {
    /// The new instance count.
    pub instance_count: Option<u32>,
    /// Disable (true) or enable (false) the job.
    pub disabled: Option<bool>,
    /// The job's labels.
    pub labels: Option<Vec<Label>>,
    /// The kept seed message (`Some(None)` forgets it).
    pub seed_message: Option<Option<SeedMessage>>,
    /// Pods to stop (KILLED: not replaced) or start again, by instance.
    pub pod_goals: Vec<(u32, PodGoal)>,
    /// One run's attributes, by task id, replaced (empty: removed).
    pub task_attributes: Option<(String, BTreeMap<String, String>)>,
    /// The job's disruption budget (`Some(None)` removes it).
    pub disruption_budget: Option<Option<crate::model::spec_budget::DisruptionBudget>>,
}

/// Why an amendment cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmendError {
    /// A pod goal names an instance the (amended) job does not have.
    #[error("instance {0} is not one of the job's")]
    NoInstance(u32),
}

impl JobAmendment {
    /// `job` with the amendment made (version and times are the caller's).
    pub fn apply(&self, job: &Job) -> Result<Job, AmendError> {
        let mut out = job.clone();
        if let Some(count) = self.instance_count {
            out.spec.instance_count = count;
            // An update in progress keeps its window over the instances
            // the job still has; the other spec scales with the target,
            // so an instance not reached yet is neither lost nor added.
            if let Some(workflow) = out.workflows.current.as_deref_mut() {
                workflow.resize(count);
            }
            // A pod control of an instance gone would apply to a new
            // instance of the same number later.
            out.pods.retain(|&instance, _| instance < count);
        }
        if let Some(disabled) = self.disabled {
            out.spec.disabled = disabled;
        }
        if let Some(labels) = &self.labels {
            out.spec.labels = labels.clone();
        }
        if let Some(budget) = &self.disruption_budget {
            out.spec.disruption_budget = budget.clone();
        }
        if let Some(message) = &self.seed_message {
            out.spec.seed_message = message.clone();
        }
        if let Some((task, attributes)) = &self.task_attributes {
            if attributes.is_empty() {
                out.spec.task_attributes.remove(task);
            } else {
                out.spec
                    .task_attributes
                    .insert(task.clone(), attributes.clone());
            }
        }
        for &(instance, goal) in &self.pod_goals {
            if !out.has_instance(instance) {
                return Err(AmendError::NoInstance(instance));
            }
            let control = PodControl {
                goal,
                ..out.pods.get(&instance).copied().unwrap_or_default()
            };
            out.set_pod_control(instance, control);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::JobId;

    fn job() -> Job {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "t", "instance_count": 3,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Job::new(JobId::parse("j").unwrap(), spec, 1)
    }

    #[test]
    fn a_job_grows_shrinks_and_stops_pods() {
        let job = job();
        let grown = JobAmendment {
            instance_count: Some(5),
            disabled: Some(true),
            pod_goals: vec![(4, PodGoal::Killed)],
            ..JobAmendment::default()
        }
        .apply(&job)
        .unwrap();
        assert_eq!(grown.spec.instance_count, 5);
        assert!(grown.spec.disabled);
        assert!(!grown.wants_running(4) && grown.wants_running(3));
        let shrunk = JobAmendment {
            instance_count: Some(2),
            ..JobAmendment::default()
        }
        .apply(&grown)
        .unwrap();
        assert_eq!(shrunk.spec.instance_count, 2);
        assert!(!shrunk.wants_running(2) && shrunk.pods.is_empty());
        let outside = JobAmendment {
            pod_goals: vec![(3, PodGoal::Killed)],
            ..JobAmendment::default()
        };
        assert_eq!(outside.apply(&job), Err(AmendError::NoInstance(3)));
        let attributes = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let set = JobAmendment {
            task_attributes: Some(("j-0-0".into(), attributes.clone())),
            ..JobAmendment::default()
        }
        .apply(&job)
        .unwrap();
        assert_eq!(set.spec.task_attributes["j-0-0"], attributes);
        let cleared = JobAmendment {
            task_attributes: Some(("j-0-0".into(), BTreeMap::new())),
            ..JobAmendment::default()
        }
        .apply(&set)
        .unwrap();
        assert!(cleared.spec.task_attributes.is_empty());
    }
}
