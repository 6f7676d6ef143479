//! Task policies: each a pure function of its inputs and `now`, one file
//! each, table-tested beside the code. The model's outcomes and the engine
//! call them; none reads a clock or a store.
//!
//! - [`backoff`]: how long a failing run waits before its next try.
//! - [`disruption_budget`]: how many instances Drover may disrupt now.
//! - [`fair_share`]: each resource pool's entitlement (reservation, then
//!   max-min fair by share, up to its limit).
//! - [`preemption`]: which runs to preempt for pools below their
//!   entitlement.
//! - [`runtime_limit`]: when a batch run has run too long (Titus).
//! - [`sla_order`]: which pending runs are placed first (SLA priority).
//! - [`restart_budget`]: how many instances restarts may take down at once.
//! - [`unreachable`]: how long a run on an unreachable agent is waited for.

pub mod backoff;
pub mod disruption_budget;
pub mod fair_share;
pub mod preemption;
pub mod restart_budget;
pub mod runtime_limit;
pub mod sla_order;
pub mod unreachable;
