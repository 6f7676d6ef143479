//! The two ways a pipeline goes wrong: its manifest is refused at create
//! ([`PipelineError`], every variant naming the field path, ready to be an
//! `INVALID_ARGUMENT`), or a value known only while the run goes cannot be
//! used ([`ResolveError`]: a substitution, a `when`, a loop's list).

/// A workflow manifest Drover refuses. Never retryable: the same manifest
/// is refused the same way. `path` is the field in the manifest as Argo
/// writes it (`spec.templates[2].container.volumeMounts`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// The text is neither JSON nor YAML (the parser's own message).
    #[error("the workflow manifest is neither JSON nor YAML: {message}")]
    Syntax { message: String },
    /// A required field is absent (or empty).
    #[error("{path} is required")]
    Missing { path: String },
    /// A field has the wrong type or a value Argo itself would reject.
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    /// A field Argo (or Kubernetes) knows that Drover cannot honour; it is
    /// refused rather than accepted and ignored.
    #[error("{path} is not supported by Drover: {why}")]
    Unsupported { path: String, why: &'static str },
    /// A field that neither Argo's Workflow as kfp 1.8 writes it nor
    /// Drover knows: refused, so a misspelt field never passes unseen.
    #[error("{path} is not a field Drover knows in an Argo Workflow")]
    UnknownField { path: String },
}

impl PipelineError {
    /// The manifest field the error is about (none for a syntax error).
    pub fn field_path(&self) -> Option<&str> {
        match self {
            PipelineError::Syntax { .. } => None,
            PipelineError::Missing { path }
            | PipelineError::Malformed { path, .. }
            | PipelineError::Unsupported { path, .. }
            | PipelineError::UnknownField { path } => Some(path),
        }
    }
}

/// A value the run cannot use, found while it goes (a node's arguments,
/// its `when`, its loop's list, the run's parameters). The engine marks
/// the node (or the run, for parameters) `Error`, as Argo does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// A `{{...}}` variable has no value in the node's scope (an output
    /// the task did not write, an input the caller did not pass).
    #[error("{{{{{variable}}}}} has no value")]
    Unresolved { variable: String },
    /// `{{item.field}}` on an item that is not an object with that field.
    #[error("the loop item {item} has no field {field:?}")]
    NoItemField { item: String, field: String },
    /// An ordering `when` (`<`, `>`, ...) whose operand is not a number.
    #[error("when {expression:?}: {value:?} is not a number")]
    NotANumber { expression: String, value: String },
    /// A `withParam` value that is not a JSON list.
    #[error("withParam {value:?} is not a JSON list")]
    NotAList { value: String },
    /// `pipeline_spec.parameters` names a parameter the workflow does not
    /// declare in `spec.arguments.parameters`.
    #[error("the pipeline has no parameter {name:?}")]
    UnknownParameter { name: String },
    /// A workflow parameter with no value in the manifest and none given.
    #[error("the pipeline parameter {name:?} needs a value")]
    MissingParameter { name: String },
}
