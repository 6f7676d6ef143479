//! The job model and the goal-state engine.
//!
//! - [`spec`]: what users write (JobSpec, PodSpec, ContainerSpec), with
//!   [`spec_constraint`] (where a pod may run) and [`spec_health`] (ports
//!   and the liveness check).
//! - [`validate`]: the rules a spec must meet, errors naming the field.
//! - [`state`]: PodState, JobState, the job's goal.
//! - [`launch`]: a run of a pod spec as a Mesos TaskInfo (the model's edge),
//!   with [`health_check`] (the liveness check with Peloton's defaults).
//! - [`offer_book`]: offers held for placement, as host views.
//! - [`policies`]: pure functions of `now`: retry backoff, runtime limit,
//!   SLA ordering, the restart budget.
//! - [`reconcile`]: pure: desired vs recorded vs cluster facts → a plan.
//! - [`runner`]: the delay-queue driver that carries plans out, with
//!   [`plan_due`] (when a queued job is planned next),
//!   [`update_backlog`] (status updates waiting to be stored) and
//!   [`heap_trim`] (memory freed after a burst goes back to the OS).

pub mod health_check;
pub mod heap_trim;
pub mod launch;
pub mod offer_book;
pub mod pending_runs;
pub mod plan_due;
pub mod policies;
pub mod reconcile;
pub mod runner;
pub mod update_backlog;
