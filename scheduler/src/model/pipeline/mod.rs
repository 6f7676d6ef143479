//! Kubeflow Pipelines runs, the model's side (issue 23): an Argo
//! `Workflow` as the kfp 1.8 SDK compiles it (the run's
//! `pipeline_spec.workflow_manifest`, JSON or YAML) read into Drover's own
//! pipeline model, and the pure rules the run's engine applies as the run
//! goes. No I/O and no clock: the run service and the engine call these.
//!
//! # Flow
//! 1. [`parse::parse_workflow`] reads the manifest into a [`spec::Pipeline`]
//!    and checks it ([`check`]): every field Drover cannot honour is
//!    refused with [`error::PipelineError`] naming its path (an
//!    `INVALID_ARGUMENT`), never accepted and ignored.
//! 2. [`arguments::resolve_parameters`] puts the run's parameters over the
//!    workflow's arguments; [`arguments::entry_inputs`] gives the
//!    entrypoint's inputs.
//! 3. For each ready task of a dag ([`phase::readiness`] of its
//!    dependencies' phases) or step group:
//!    [`condition::Condition::evaluate`] decides run or `Skipped`,
//!    [`loops::expand_loop`] makes one node per item, and
//!    [`text::Text::render`] substitutes its arguments from a
//!    [`text::NodeScope`].
//! 4. A container node's Drover task comes from
//!    [`node_paths::container_launch`]: the command substituted, every
//!    compiled file path moved under the node's own directory, the files
//!    to put in place and to read back.
//!
//! # Modules
//! - [`error`]: refusals at create, and values unusable while running.
//! - [`fields`]: the manifest as fields that know their path.
//! - [`parse`], [`parse_container`], [`parse_io`], [`parse_task`]: the
//!   readers, each object's keys listed with what Drover does with them.
//! - [`check`]: references between templates, tasks and variables.
//! - [`spec`]: the model.
//! - [`text`]: `{{...}}` variables and their substitution.
//! - [`condition`]: a task's `when`.
//! - [`loops`]: `withItems` / `withParam`.
//! - [`quantity`]: Kubernetes quantities in Drover's units.
//! - [`arguments`]: the run's parameters.
//! - [`node_paths`]: each node's own files, and the launch it makes.
//! - [`phase`]: Argo's node phases, and when a dag task may start.

pub mod arguments;
mod check;
pub mod condition;
pub mod error;
mod fields;
pub mod loops;
pub mod node_paths;
pub mod parse;
mod parse_container;
mod parse_io;
mod parse_task;
pub mod phase;
pub mod quantity;
pub mod spec;
pub mod text;

#[cfg(test)]
mod tests;

pub use arguments::{entry_inputs, resolve_parameters};
pub use condition::Condition;
pub use error::{PipelineError, ResolveError};
pub use loops::{expand_loop, LoopItem};
pub use node_paths::{container_launch, node_path, NodeLaunch};
pub use parse::parse_workflow;
pub use phase::{readiness, NodePhase, Readiness};
pub use spec::*;
pub use text::{NodeScope, Text, Variable, WorkflowFacts};
