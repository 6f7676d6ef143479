//! The run's parameters: the workflow's `spec.arguments.parameters`, with
//! the run's `pipeline_spec.parameters` put over them (the Kubeflow API's
//! overrides), as `{{workflow.parameters.X}}` and the entrypoint's inputs
//! see them.

use std::collections::BTreeMap;

use super::error::ResolveError;
use super::spec::Pipeline;

/// The run's parameter values. An override must name a declared parameter
/// (one that does not would be silently unused, so it is refused); a
/// parameter with no value in the manifest must be given one.
pub fn resolve_parameters(
    pipeline: &Pipeline,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, ResolveError> {
    for (name, _) in overrides {
        if !pipeline.arguments.iter().any(|a| &a.name == name) {
            return Err(ResolveError::UnknownParameter { name: name.clone() });
        }
    }
    let mut values = BTreeMap::new();
    for argument in &pipeline.arguments {
        // The last override of a name wins, as a map built from the list
        // would have it.
        let given = overrides
            .iter()
            .rev()
            .find(|(name, _)| name == &argument.name)
            .map(|(_, value)| value.clone());
        let value = given.or_else(|| argument.value.clone()).ok_or_else(|| {
            ResolveError::MissingParameter {
                name: argument.name.clone(),
            }
        })?;
        values.insert(argument.name.clone(), value);
    }
    Ok(values)
}

/// The entrypoint's input parameters: Argo passes the workflow's
/// arguments to the entrypoint by name; an input none names takes its
/// default.
pub fn entry_inputs(
    pipeline: &Pipeline,
    parameters: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut inputs = BTreeMap::new();
    if let Some(entry) = pipeline.entry() {
        for input in &entry.inputs.parameters {
            let value = parameters
                .get(&input.name)
                .cloned()
                .or_else(|| input.default.clone())
                .ok_or_else(|| ResolveError::MissingParameter {
                    name: input.name.clone(),
                })?;
            inputs.insert(input.name.clone(), value);
        }
    }
    Ok(inputs)
}
