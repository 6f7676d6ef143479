//! What placement knows of one agent: the resources and ports offered to
//! us, minus what this round has already assigned there; the agent's
//! attributes; and the pods already on it (live runs, and this round's
//! assignments), which pod-label, unique-host and exclusive-host
//! constraints look at. Drover's own view: no Mesos protos here.

use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use std::collections::BTreeMap;

/// A pod on a host, as host-wide constraints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodOnHost {
    /// Its job.
    pub job: String,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// Its job asked for the host to itself.
    pub exclusive: bool,
}

/// The attribute that names an agent's zone (agent-sim's `--zones`, and
/// the usual Mesos convention).
pub const ZONE_ATTRIBUTE: &str = "zone";

/// One agent as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// The agent id.
    pub agent_id: String,
    /// Its hostname.
    pub hostname: String,
    /// The role the offers were made to (all of a host view's offers share it).
    pub role: String,
    /// Everything offered.
    pub offered: Resources,
    /// Offered minus assigned this round.
    pub available: Resources,
    /// Ports offered and not yet assigned this round.
    pub ports: PortRanges,
    /// Agent attributes as text (`zone` → `a`), plus `hostname`, as
    /// Peloton turns attributes into host labels.
    pub attributes: BTreeMap<String, String>,
    /// Pods on the host: live runs and this round's assignments.
    pub pods: Vec<PodOnHost>,
    /// Tasks assigned here this round.
    pub assigned: usize,
}

impl HostView {
    /// A host with `offered` resources, no ports, attributes or pods.
    pub fn new(agent_id: &str, hostname: &str, role: &str, offered: Resources) -> Self {
        let mut attributes = BTreeMap::new();
        attributes.insert("hostname".to_owned(), hostname.to_owned());
        HostView {
            agent_id: agent_id.to_owned(),
            hostname: hostname.to_owned(),
            role: role.to_owned(),
            offered,
            available: offered,
            ports: PortRanges::default(),
            attributes,
            pods: Vec::new(),
            assigned: 0,
        }
    }

    /// With these ports offered.
    pub fn with_ports(mut self, ports: PortRanges) -> Self {
        self.ports = ports;
        self
    }

    /// With this attribute.
    pub fn with_attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes.insert(name.to_owned(), value.to_owned());
        self
    }

    /// With these pods already on it.
    pub fn with_pods(mut self, pods: Vec<PodOnHost>) -> Self {
        self.pods = pods;
        self
    }

    /// Its zone, if it has one.
    pub fn zone(&self) -> Option<&str> {
        self.attributes.get(ZONE_ATTRIBUTE).map(String::as_str)
    }
}
