//! Host maintenance in the engine (Peloton `HostService`, Mesos inverse
//! offers): the decisions on `StartMaintenance` and `CompleteMaintenance`,
//! when a draining host is drained, and what is asked of the master then.
//! Pure, over the engine's parts; `mod.rs` routes the inputs here and the
//! stored changes back ([`crate::model::host`] draws the states).
//!
//! - StartMaintenance: each host named must be one Drover has seen; it
//!   becomes DRAINING (a host in maintenance already stays as it is, an
//!   inverse offer's drain becomes the operator's). Its held offers are
//!   declined, and every job is planned: the plans move the runs off
//!   ([`super::reconcile`]).
//! - A DRAINING host with no live Drover run is DRAINED. An operator's is
//!   then taken DOWN through the master's operator API
//!   ([`OperatorCall::StartMaintenance`]) and is DOWN once the master
//!   agrees; an inverse offer's drain accepts the inverse offer instead.
//! - CompleteMaintenance: each host named must be in maintenance; it is UP
//!   again (a DOWN one through [`OperatorCall::StopMaintenance`]), and
//!   offers are revived.

use super::action::{Call, OperatorCall};
use super::cluster::ClusterFacts;
use super::registry::Registry;
use crate::model::change::{Change, HostWrite};
use crate::model::host::{DrainCause, HostError, HostMaintenance, HostState};
use crate::model::ids::AgentId;
use crate::model::offer::Offer;
use crate::model::time::UnixMillis;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

/// What follows a stored maintenance request.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Then {
    /// The hosts as the request left them (UP ones have no record).
    pub hosts: Vec<(String, HostState)>,
    /// Hosts to bring back from DOWN through the master.
    pub stop: Vec<String>,
    /// Whether every job is planned again (a drain started).
    pub replan: bool,
}

/// Decides StartMaintenance of `hostnames`: the change to store and what
/// follows.
pub(super) fn decide_start(
    facts: &ClusterFacts,
    hostnames: &[String],
    batch_grace: Duration,
    now: UnixMillis,
) -> Result<(Change, Then), HostError> {
    let hosts = named(hostnames)?;
    let mut change = Change::default();
    let mut then = Then {
        hosts: Vec::new(),
        stop: Vec::new(),
        replan: true,
    };
    for host in hosts {
        if !facts.knows_host(&host) {
            return Err(HostError::Unknown(host));
        }
        let record = match facts.maintenance.get(&host) {
            Some(m) if m.cause == DrainCause::Operator => {
                then.hosts.push((host, m.state));
                continue;
            }
            // The operator takes over an inverse offer's drain.
            Some(m) => HostMaintenance {
                cause: DrainCause::Operator,
                batch_grace,
                ..m.clone()
            },
            None => HostMaintenance {
                hostname: host.clone(),
                state: HostState::Draining,
                cause: DrainCause::Operator,
                since: now,
                batch_grace,
                inverse_offer: None,
            },
        };
        then.hosts.push((host, record.state));
        change.hosts.push(HostWrite::Put(record));
    }
    Ok((change, then))
}

/// Decides CompleteMaintenance of `hostnames`.
pub(super) fn decide_complete(
    facts: &ClusterFacts,
    hostnames: &[String],
) -> Result<(Change, Then), HostError> {
    let hosts = named(hostnames)?;
    let mut change = Change::default();
    let mut then = Then {
        hosts: Vec::new(),
        stop: Vec::new(),
        replan: false,
    };
    for host in hosts {
        let Some(m) = facts.maintenance.get(&host) else {
            return Err(HostError::NotInMaintenance(host));
        };
        if m.state == HostState::Down {
            then.stop.push(host.clone());
        }
        change.hosts.push(HostWrite::Remove(host.clone()));
        then.hosts.push((host, HostState::Up));
    }
    Ok((change, then))
}

/// The hosts a request names, each once; at least one.
fn named(hostnames: &[String]) -> Result<BTreeSet<String>, HostError> {
    let hosts: BTreeSet<String> = hostnames
        .iter()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(HostError::NoHosts);
    }
    Ok(hosts)
}

/// The draining hosts no live Drover run is left on, as DRAINED records.
pub(super) fn newly_drained(facts: &ClusterFacts, registry: &Registry) -> Vec<HostMaintenance> {
    let draining: Vec<&HostMaintenance> = facts
        .maintenance
        .values()
        .filter(|m| m.state == HostState::Draining)
        .collect();
    if draining.is_empty() {
        return Vec::new();
    }
    let busy: HashSet<&str> = registry
        .live_runs()
        .filter_map(|(_, run)| run.agent.as_ref())
        .filter_map(|agent| facts.hostnames.get(agent).map(String::as_str))
        .collect();
    draining
        .into_iter()
        .filter(|m| !busy.contains(m.hostname.as_str()))
        .map(|m| HostMaintenance {
            state: HostState::Drained,
            ..m.clone()
        })
        .collect()
}

/// What follows hosts becoming DRAINED: the operator's are taken DOWN
/// through the master; an inverse offer's drain accepts its offer.
pub(super) fn after_drained(drained: &[HostMaintenance]) -> (Option<OperatorCall>, Vec<Call>) {
    let down: Vec<String> = drained
        .iter()
        .filter(|m| m.cause == DrainCause::Operator)
        .map(|m| m.hostname.clone())
        .collect();
    // Any drained host the master asked for (an operator's drain too).
    let accept: Vec<String> = drained
        .iter()
        .filter_map(|m| m.inverse_offer.clone())
        .collect();
    let operator = (!down.is_empty()).then_some(OperatorCall::StartMaintenance { hostnames: down });
    let calls = if accept.is_empty() {
        Vec::new()
    } else {
        vec![Call::AcceptInverseOffers {
            inverse_offer_ids: accept,
        }]
    };
    (operator, calls)
}

/// The DOWN records for hosts the master took down, of those still
/// DRAINED (a host completed meanwhile is left UP).
pub(super) fn taken_down(facts: &ClusterFacts, hostnames: &[String]) -> Vec<HostMaintenance> {
    hostnames
        .iter()
        .filter_map(|h| facts.maintenance.get(h))
        .filter(|m| m.state == HostState::Drained)
        .map(|m| HostMaintenance {
            state: HostState::Down,
            ..m.clone()
        })
        .collect()
}

/// The hosts an operator drained that are DRAINED and not DOWN yet.
pub(super) fn awaiting_down(facts: &ClusterFacts) -> Vec<String> {
    facts
        .maintenance
        .values()
        .filter(|m| m.cause == DrainCause::Operator && m.state == HostState::Drained)
        .map(|m| m.hostname.clone())
        .collect()
}

/// The agents on `hosts` (their held offers are declined).
pub(super) fn agents_on<'a>(
    facts: &'a ClusterFacts,
    hosts: &'a [(String, HostState)],
) -> impl Iterator<Item = &'a AgentId> + 'a {
    facts
        .hostnames
        .iter()
        .filter(|(_, h)| hosts.iter().any(|(host, _)| host == *h))
        .map(|(agent, _)| agent)
}

/// An inverse offer: the master asks for `agent` back from `start`. Its
/// host drains as for StartMaintenance (nothing is taken DOWN by Drover);
/// a host in maintenance already keeps its drain and records the offer,
/// to accept it once drained. None when nothing is to be stored (the
/// offer is known, or its agent is not).
pub(super) fn on_inverse_offer(
    facts: &ClusterFacts,
    inverse_offer_id: &str,
    agent: &AgentId,
    now: UnixMillis,
) -> Option<HostMaintenance> {
    let host = facts.hostnames.get(agent)?;
    match facts.maintenance.get(host) {
        Some(m) if m.inverse_offer.as_deref() == Some(inverse_offer_id) => None,
        Some(m) => Some(HostMaintenance {
            inverse_offer: Some(inverse_offer_id.to_owned()),
            ..m.clone()
        }),
        None => Some(HostMaintenance {
            hostname: host.clone(),
            state: HostState::Draining,
            cause: DrainCause::InverseOffer,
            since: now,
            batch_grace: Duration::ZERO,
            inverse_offer: Some(inverse_offer_id.to_owned()),
        }),
    }
}

/// The hosts an inverse offer drains that `offers` show with no
/// maintenance window: the master no longer schedules them, so their
/// drains are over (an operator's own drain stays until completed).
pub(super) fn windows_over(facts: &ClusterFacts, offers: &[Offer]) -> Vec<String> {
    let mut over: Vec<String> = offers
        .iter()
        .filter(|offer| offer.unavailability.is_none())
        .filter(|offer| {
            facts
                .maintenance
                .get(&offer.hostname)
                .is_some_and(|m| m.cause == DrainCause::InverseOffer)
        })
        .map(|offer| offer.hostname.clone())
        .collect();
    over.sort();
    over.dedup();
    over
}

/// A rescinded inverse offer: the drain it started is cancelled (the host
/// is UP again), unless an operator has taken it over.
pub(super) fn on_inverse_rescind(facts: &ClusterFacts, inverse_offer_id: &str) -> Option<String> {
    facts
        .maintenance
        .values()
        .find(|m| {
            m.cause == DrainCause::InverseOffer
                && m.inverse_offer.as_deref() == Some(inverse_offer_id)
        })
        .map(|m| m.hostname.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::action::ApiRequest;

    fn facts() -> ClusterFacts {
        ClusterFacts::with_hostnames([
            (AgentId::new("a1"), "h1".to_owned()),
            (AgentId::new("a2"), "h2".to_owned()),
        ])
    }

    fn start(hosts: &[&str]) -> ApiRequest {
        ApiRequest::StartMaintenance {
            hostnames: hosts.iter().map(|h| (*h).to_owned()).collect(),
            batch_grace: Duration::from_secs(30),
        }
    }

    /// The request decided as the engine's API does.
    fn decide(
        facts: &ClusterFacts,
        request: &ApiRequest,
        now: UnixMillis,
    ) -> Result<(Change, Then), HostError> {
        match request {
            ApiRequest::StartMaintenance {
                hostnames,
                batch_grace,
            } => decide_start(facts, hostnames, *batch_grace, now),
            ApiRequest::CompleteMaintenance { hostnames } => decide_complete(facts, hostnames),
            other => panic!("not a maintenance request: {other:?}"),
        }
    }

    fn stored(facts: &mut ClusterFacts, change: &Change) {
        facts.apply_host_writes(&change.hosts);
    }

    #[test]
    fn a_drain_starts_draining_known_hosts_and_refuses_unknown_ones() {
        let mut f = facts();
        let (change, then) = decide(&f, &start(&["h1", " h1 "]), 5).unwrap();
        assert_eq!(then.hosts, vec![("h1".to_owned(), HostState::Draining)]);
        assert!(then.replan);
        stored(&mut f, &change);
        assert_eq!(f.host_state("h1"), HostState::Draining);
        assert_eq!(f.maintenance["h1"].since, 5);
        let err = decide(&f, &start(&["h9"]), 5).unwrap_err();
        assert_eq!(err.to_string(), "host h9 is not a known agent");
        let err = decide(&f, &start(&[]), 5).unwrap_err();
        assert!(err.to_string().contains("at least one host"), "{err}");
        // Again: nothing changes.
        let (change, _) = decide(&f, &start(&["h1"]), 9).unwrap();
        assert!(change.hosts.is_empty());
    }

    #[test]
    fn a_host_is_drained_once_no_live_run_is_left_and_only_operator_drains_go_down() {
        let mut f = facts();
        let (change, _) = decide(&f, &start(&["h1"]), 5).unwrap();
        stored(&mut f, &change);
        let registry = Registry::from_jobs(Vec::new());
        let drained = newly_drained(&f, &registry);
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].state, HostState::Drained);
        let (operator, calls) = after_drained(&drained);
        assert_eq!(
            operator,
            Some(OperatorCall::StartMaintenance {
                hostnames: vec!["h1".into()]
            })
        );
        assert!(calls.is_empty());
        f.apply_host_writes(&[HostWrite::Put(drained[0].clone())]);
        let down = taken_down(&f, &["h1".into(), "h2".into()]);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].state, HostState::Down);
        f.apply_host_writes(&[HostWrite::Put(down[0].clone())]);
        let (change, then) = decide(
            &f,
            &ApiRequest::CompleteMaintenance {
                hostnames: vec!["h1".into()],
            },
            9,
        )
        .unwrap();
        assert_eq!(then.stop, vec!["h1".to_owned()]);
        stored(&mut f, &change);
        assert_eq!(f.host_state("h1"), HostState::Up);
        let err = decide(
            &f,
            &ApiRequest::CompleteMaintenance {
                hostnames: vec!["h1".into()],
            },
            9,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "host h1 is not in maintenance");
    }

    #[test]
    fn an_inverse_offer_drains_its_host_and_is_accepted_once_drained() {
        let mut f = facts();
        let record = on_inverse_offer(&f, "io-1", &AgentId::new("a2"), 7).unwrap();
        assert_eq!(record.cause, DrainCause::InverseOffer);
        f.apply_host_writes(&[HostWrite::Put(record)]);
        assert!(on_inverse_offer(&f, "io-1", &AgentId::new("a2"), 8).is_none());
        let drained = newly_drained(&f, &Registry::from_jobs(Vec::new()));
        let (operator, calls) = after_drained(&drained);
        assert_eq!(operator, None);
        assert_eq!(
            calls,
            vec![Call::AcceptInverseOffers {
                inverse_offer_ids: vec!["io-1".into()]
            }]
        );
        assert_eq!(on_inverse_rescind(&f, "io-1"), Some("h2".to_owned()));
        assert_eq!(on_inverse_rescind(&f, "io-2"), None);
    }
}
