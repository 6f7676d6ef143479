//! The model floor: Drover's own vocabulary and rules, as data and pure
//! functions. Everything above it (placement, the engine, the store, the
//! Mesos connection, the APIs) depends on it; it depends on nothing of
//! theirs (a test in `tests/layers.rs` keeps it so). No I/O, no clock.
//!
//! # Layout
//! - [`ids`]: job, instance and task ids.
//! - [`access`]: identities, roles, and who may change which job.
//! - [`spec`]: what users write (JobSpec, PodSpec, ContainerSpec), with
//!   [`spec_constraint`] (where a pod may run) and [`spec_health`] (ports
//!   and the liveness and readiness checks).
//! - [`spec_budget`]: a job's disruption budget (Titus
//!   `JobDisruptionBudget`) as users write it.
//! - [`validate`]: the rules a spec must meet, errors naming the field.
//! - [`image`]: container image references as jobs name them, and the
//!   image a run's executor resolved (its status labels).
//! - [`secret`]: a job's secrets: values never shown, sealed only by the
//!   store, their rules, and how a new version keeps them.
//! - [`task_user`]: who a task runs as, and the refusal of root tasks.
//! - [`state`]: PodState, JobState, the job's and a pod's goal, and a
//!   job's state derived from its instances.
//! - [`resources`], [`port_ranges`]: what hosts offer and runs take.
//! - [`demand`]: what one run asks of a host (placement's input).
//! - [`offer`], [`task_update`]: what the master tells Drover, in
//!   Drover's terms (the `mesos/` edge translates the protos).
//! - [`time`]: wall-clock milliseconds, passed in, never read here.
//! - [`host`]: hosts in maintenance (UP, DRAINING, DRAINED, DOWN), the
//!   drain's pace per run, and the master's unavailability windows.
//! - [`job`]: a job, its goal and versions, the entity-version check.
//! - [`amend`]: changes of a running job that restart none of its pods
//!   (size, enabled flag, labels, pod goals).
//! - [`job_ref`]: a job named by its id or its name, and which one wins.
//! - [`state_names`]: the spellings of states a filter takes.
//! - [`run`]: a run, and how a status update changes it.
//! - [`policies`]: retry backoff, the runtime limit, the restart budget,
//!   the disruption budget, SLA order: pure functions of their inputs and `now`.
//! - [`outcome`]: what an instance's runs add up to (relaunch, retry time,
//!   outcome) and the job's state that follows.
//! - [`availability`]: whether an instance serves (RUNNING, and ready or
//!   healthy if checked): the gate batched changes wait on.
//! - [`change`]: what the engine hands the store to persist.
//! - [`pool`]: resource pools (Peloton respool): the tree and its configs,
//!   with [`pool_validate`] (the rules a pool and the tree's changes meet).
//! - [`pipeline`]: Kubeflow pipeline runs: an Argo Workflow as kfp 1.8
//!   compiles it, read into a DAG of nodes, every unsupported field
//!   refused by path; substitution, `when`, loops, per-node file paths.
//! - [`workflow`]: updates (Peloton `UpdateSpec`): pods moved to a new
//!   spec a window at a time, paused, aborted, rolled back; gated by
//!   [`availability`] (RUNNING, and HEALTHY when checked).

pub mod access;
pub mod amend;
pub mod availability;
pub mod change;
pub mod create_workflow;
pub mod demand;
pub mod host;
pub mod ids;
pub mod image;
pub mod job;
pub mod job_ref;
pub mod offer;
pub mod outcome;
pub mod pipeline;
pub mod pipeline_run;
pub mod policies;
pub mod pool;
pub mod pool_validate;
pub mod port_ranges;
pub mod resources;
pub mod run;
pub mod secret;
pub mod spec;
pub mod spec_budget;
pub mod spec_constraint;
pub mod spec_health;
pub mod spec_label;
pub mod state;
pub mod state_names;
pub mod task_update;
pub mod task_user;
pub mod time;
pub mod validate;
pub mod workflow;
