//! The job model and the goal-state engine.
//!
//! - [`spec`]: what users write (JobSpec, PodSpec, ContainerSpec).
//! - [`validate`]: the rules a spec must meet, errors naming the field.
//! - [`state`]: PodState, JobState, the job's goal.
//! - [`launch`]: a run of a pod spec as a Mesos TaskInfo (the model's edge).
//! - [`offer_book`]: offers held for placement, as host views.
//! - [`reconcile`]: pure: desired vs recorded vs cluster facts → a plan.
//! - [`runner`]: the delay-queue driver that carries plans out.

pub mod launch;
pub mod offer_book;
pub mod reconcile;
pub mod runner;
pub mod spec;
pub mod state;
pub mod validate;
