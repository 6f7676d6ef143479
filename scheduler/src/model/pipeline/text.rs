//! Strings with Argo's `{{...}}` variables, as kfp 1.8 writes them in
//! arguments, commands, `when` and `withParam`, and their substitution.
//! A [`Text`] is parsed once at create, so a variable Drover cannot
//! resolve is refused with its field path before anything runs; it is
//! rendered per node from a [`NodeScope`] once the values are known.
//!
//! The variables (what `kfp.compiler` 1.8 emits, and Argo's own simple
//! ones): `inputs.parameters.X`, `inputs.artifacts.X` (only in an
//! artifact's `from`), `tasks.T.outputs.parameters.Y`,
//! `tasks.T.outputs.artifacts.A`, `steps.S.outputs.parameters.Y`,
//! `steps.S.outputs.artifacts.A`, `item`, `item.F`,
//! `workflow.parameters.X`, `workflow.name`, `workflow.uid`,
//! `workflow.namespace`, `pod.name`. Argo's expression form `{{=...}}` is
//! refused: kfp 1.8 never writes it.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::error::{PipelineError, ResolveError};

/// One `{{...}}` variable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variable {
    /// `inputs.parameters.X`: the template's own input.
    InputParameter(String),
    /// `inputs.artifacts.X`: the template's own input artifact.
    InputArtifact(String),
    /// `tasks.T.outputs.parameters.Y`: a sibling dag task's output.
    TaskOutputParameter { task: String, name: String },
    /// `tasks.T.outputs.artifacts.A`.
    TaskOutputArtifact { task: String, name: String },
    /// `steps.S.outputs.parameters.Y`: an earlier step's output.
    StepOutputParameter { step: String, name: String },
    /// `steps.S.outputs.artifacts.A`.
    StepOutputArtifact { step: String, name: String },
    /// `item`: the loop's current item.
    Item,
    /// `item.F`: a field of the loop's current item (an object).
    ItemField(String),
    /// `workflow.parameters.X`: the run's parameter.
    WorkflowParameter(String),
    /// `workflow.name`: the run's workflow name.
    WorkflowName,
    /// `workflow.uid`: the run's id.
    WorkflowUid,
    /// `workflow.namespace`.
    WorkflowNamespace,
    /// `pod.name`: the node's own id (kfp's EXECUTION_ID uses it).
    PodName,
}

impl Variable {
    /// Parses the inside of `{{...}}`; `None` for a form Drover does not
    /// resolve.
    pub fn parse(inner: &str) -> Option<Variable> {
        let parts: Vec<&str> = inner.trim().split('.').collect();
        let owned = |s: &str| s.to_string();
        let var = match parts.as_slice() {
            ["inputs", "parameters", x] => Variable::InputParameter(owned(x)),
            ["inputs", "artifacts", x] => Variable::InputArtifact(owned(x)),
            ["tasks", t, "outputs", "parameters", y] => Variable::TaskOutputParameter {
                task: owned(t),
                name: owned(y),
            },
            ["tasks", t, "outputs", "artifacts", a] => Variable::TaskOutputArtifact {
                task: owned(t),
                name: owned(a),
            },
            ["steps", s, "outputs", "parameters", y] => Variable::StepOutputParameter {
                step: owned(s),
                name: owned(y),
            },
            ["steps", s, "outputs", "artifacts", a] => Variable::StepOutputArtifact {
                step: owned(s),
                name: owned(a),
            },
            ["item"] => Variable::Item,
            ["item", f] => Variable::ItemField(owned(f)),
            ["workflow", "parameters", x] => Variable::WorkflowParameter(owned(x)),
            ["workflow", "name"] => Variable::WorkflowName,
            ["workflow", "uid"] => Variable::WorkflowUid,
            ["workflow", "namespace"] => Variable::WorkflowNamespace,
            ["pod", "name"] => Variable::PodName,
            _ => return None,
        };
        let names_ok = parts.iter().all(|p| !p.is_empty());
        names_ok.then_some(var)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::InputParameter(x) => write!(f, "inputs.parameters.{x}"),
            Variable::InputArtifact(x) => write!(f, "inputs.artifacts.{x}"),
            Variable::TaskOutputParameter { task, name } => {
                write!(f, "tasks.{task}.outputs.parameters.{name}")
            }
            Variable::TaskOutputArtifact { task, name } => {
                write!(f, "tasks.{task}.outputs.artifacts.{name}")
            }
            Variable::StepOutputParameter { step, name } => {
                write!(f, "steps.{step}.outputs.parameters.{name}")
            }
            Variable::StepOutputArtifact { step, name } => {
                write!(f, "steps.{step}.outputs.artifacts.{name}")
            }
            Variable::Item => write!(f, "item"),
            Variable::ItemField(x) => write!(f, "item.{x}"),
            Variable::WorkflowParameter(x) => write!(f, "workflow.parameters.{x}"),
            Variable::WorkflowName => write!(f, "workflow.name"),
            Variable::WorkflowUid => write!(f, "workflow.uid"),
            Variable::WorkflowNamespace => write!(f, "workflow.namespace"),
            Variable::PodName => write!(f, "pod.name"),
        }
    }
}

/// A piece of a [`Text`].
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Var(Variable),
}

/// A string that may hold `{{...}}` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    segments: Vec<Segment>,
}

impl Text {
    /// A string with no variables.
    pub fn literal(s: impl Into<String>) -> Text {
        Text {
            segments: vec![Segment::Literal(s.into())],
        }
    }

    /// Parses `s`, found at `path`; a variable Drover cannot resolve (or
    /// an unclosed `{{`) is refused naming the field.
    pub fn parse(s: &str, path: &str) -> Result<Text, PipelineError> {
        let mut segments = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(PipelineError::Malformed {
                    path: path.to_string(),
                    reason: format!("unclosed {{{{ in {s:?}"),
                });
            };
            let inner = &after[..close];
            if inner.trim_start().starts_with('=') {
                return Err(PipelineError::Unsupported {
                    path: path.to_string(),
                    why: "Argo expression templates ({{=...}}) are not evaluated by Drover",
                });
            }
            let Some(var) = Variable::parse(inner) else {
                return Err(PipelineError::Malformed {
                    path: path.to_string(),
                    reason: format!("{{{{{inner}}}}} is not a variable Drover resolves"),
                });
            };
            segments.push(Segment::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() || segments.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Text { segments })
    }

    pub(crate) fn from_segments(segments: Vec<Segment>) -> Text {
        Text { segments }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The variables it uses, in order.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v),
            Segment::Literal(_) => None,
        })
    }

    /// The text itself when it has no variables.
    pub fn as_literal(&self) -> Option<String> {
        self.variables().next().is_none().then(|| self.to_string())
    }

    /// The string with every variable replaced from `scope`.
    pub fn render(&self, scope: &NodeScope<'_>) -> Result<String, ResolveError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                Segment::Var(v) => out.push_str(&scope.resolve(v)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Text {
    /// The text as written, variables in `{{...}}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => f.write_str(s)?,
                Segment::Var(v) => write!(f, "{{{{{v}}}}}")?,
            }
        }
        Ok(())
    }
}

/// What a run knows of itself, for `workflow.*` variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowFacts {
    /// The run's workflow name (`generateName` plus a suffix, as Argo).
    pub name: String,
    /// The run's id.
    pub uid: String,
    /// The namespace the run reports (Drover has none; the lead picks).
    pub namespace: String,
    /// The run's parameters, after overrides ([`super::arguments`]).
    pub parameters: BTreeMap<String, String>,
}

/// Everything a node's texts may name. Borrowed: the engine holds the
/// values (recorded outputs survive a restart), this only looks them up.
#[derive(Debug, Clone, Copy)]
pub struct NodeScope<'a> {
    pub workflow: &'a WorkflowFacts,
    /// The template's input parameters, resolved.
    pub inputs: &'a BTreeMap<String, String>,
    /// Output parameters of the tasks (or steps) of the enclosing dag
    /// (or steps template) that have finished, by task name.
    pub outputs: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The loop's item, for a task expanded from `withItems`/`withParam`.
    pub item: Option<&'a Value>,
    /// The node's id (`pod.name`), once it has one.
    pub pod_name: Option<&'a str>,
}

impl NodeScope<'_> {
    /// The value of one variable.
    pub fn resolve(&self, var: &Variable) -> Result<String, ResolveError> {
        let unresolved = || ResolveError::Unresolved {
            variable: var.to_string(),
        };
        let found = match var {
            Variable::InputParameter(x) => self.inputs.get(x).cloned(),
            Variable::TaskOutputParameter { task: t, name }
            | Variable::StepOutputParameter { step: t, name } => {
                self.outputs.get(t).and_then(|o| o.get(name)).cloned()
            }
            Variable::Item => self.item.map(item_text),
            Variable::ItemField(field) => {
                let item = self.item.ok_or_else(unresolved)?;
                let value = item.get(field).ok_or_else(|| ResolveError::NoItemField {
                    item: item.to_string(),
                    field: field.clone(),
                })?;
                Some(item_text(value))
            }
            Variable::WorkflowParameter(x) => self.workflow.parameters.get(x).cloned(),
            Variable::WorkflowName => Some(self.workflow.name.clone()),
            Variable::WorkflowUid => Some(self.workflow.uid.clone()),
            Variable::WorkflowNamespace => Some(self.workflow.namespace.clone()),
            Variable::PodName => self.pod_name.map(str::to_string),
            // Artifacts are files, passed by the engine, never text.
            Variable::InputArtifact(_)
            | Variable::TaskOutputArtifact { .. }
            | Variable::StepOutputArtifact { .. } => None,
        };
        found.ok_or_else(unresolved)
    }
}

/// A loop item as Argo substitutes it: a string as itself, anything else
/// as its compact JSON.
pub fn item_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
