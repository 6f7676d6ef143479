//! An offer as Drover sees it: which agent, for which role, and the
//! resources, ports and attributes on it that Drover may use. The Mesos
//! `Offer` proto becomes this at the edge (`mesos/`), so the engine and
//! placement never read a proto.

use super::ids::{AgentId, OfferId};
use super::port_ranges::PortRanges;
use super::resources::Resources;
use std::collections::BTreeMap;

/// One offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Its id, to accept or decline it by.
    pub id: OfferId,
    /// The agent it is on.
    pub agent_id: AgentId,
    /// That agent's hostname.
    pub hostname: String,
    /// The role it was allocated to (`allocation_info.role`), if the
    /// master said.
    pub allocation_role: Option<String>,
    /// Its unreserved scalar resources.
    pub resources: Resources,
    /// Its unreserved ports.
    pub ports: PortRanges,
    /// The agent's attributes as text (`zone` → `a`), in Mesos' attribute
    /// syntax for ranges and sets.
    pub attributes: BTreeMap<String, String>,
    /// When the master plans the agent's maintenance (Mesos
    /// `Offer.unavailability`): placement avoids a host whose window is
    /// near.
    pub unavailability: Option<super::host::Unavailability>,
}
