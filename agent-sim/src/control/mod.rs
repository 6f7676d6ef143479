//! Inspection and fault injection: `/version`, `/health`, `/redirect`,
//! `/state`, `/metrics` and the `/sim/...` JSON API.
//!
//! # Layout
//! - [`info`]: `/version` and `/redirect`.
//! - [`state`]: the master state JSON (`/state`).
//! - [`metrics`]: Prometheus text (`/metrics`).
//! - [`sim`]: the `/sim` fault injection and inspection endpoints.

pub mod info;
pub mod metrics;
pub mod sim;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::config::FleetDefaults;

/// What the control endpoints need besides the master.
#[derive(Debug, Clone)]
pub struct ControlContext {
    /// The version string `/version` reports (numeric, e.g. `1.12.0`).
    pub version: String,
    /// The master's hostname, for `/redirect` and `/state`.
    pub hostname: String,
    /// The address the server is bound to.
    pub address: SocketAddr,
    /// The flags as `/state` shows them.
    pub flags: BTreeMap<String, String>,
    /// How agents added at run time are made.
    pub fleet: FleetDefaults,
}
