//! What the engine is told about the master, in Drover's terms
//! ([`SessionEvent`]), and the translation of the stream's events into it:
//! the edge where scheduler `Event` protos stop (offers are translated in
//! `offers.rs`). Pure; the session calls `translate` on every event
//! after SUBSCRIBED that is not its own business (SUBSCRIBED, HEARTBEAT,
//! ERROR).
//!
//! | stream event                    | delivered as                        |
//! |---------------------------------|-------------------------------------|
//! | OFFERS                          | `Offers`, the event's usable offers, then `InvalidOffers` if any are malformed (`offers.rs`) |
//! | RESCIND                         | `Rescind`                           |
//! | UPDATE                          | `Update`, one per event             |
//! | FAILURE with only an agent id   | `AgentLost`                         |
//! | FAILURE with an executor id     | nothing: the tasks' updates follow  |
//! | INVERSE_OFFERS, RESCIND_INVERSE_OFFER, MESSAGE, UPDATE_OPERATION_STATUS | nothing (Drover does not use them) |

use super::offers;
use crate::model::ids::{AgentId, OfferId};
use crate::model::image::RunImage;
use crate::model::offer::Offer;
use crate::model::task_update::TaskUpdate;
use drover_proto::v1::scheduler::{event, Event};
use drover_proto::v1::{task_status, TaskState, TaskStatus};
use smallvec::{smallvec, SmallVec};

/// What the scheduler's engine is told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Subscribed (again): reconcile, and treat earlier offers as gone.
    Subscribed {
        /// The framework id, to be persisted.
        framework_id: String,
    },
    /// The subscription is gone; calls are dropped until the next SUBSCRIBED.
    Disconnected,
    /// The master removed the framework: its tasks are gone, and a new
    /// framework is being registered.
    FrameworkRemoved {
        /// The id that can no longer subscribe.
        old: String,
    },
    /// New offers, as one OFFERS event carried them (but for the invalid
    /// ones, and a second copy of an id).
    Offers(Vec<Offer>),
    /// Offers of one OFFERS event that the master sent malformed (a
    /// resource listed twice, an amount negative or no number; each logged
    /// at WARN with its reason): to be declined, never used.
    InvalidOffers(Vec<OfferId>),
    /// The master took an offer back.
    Rescind {
        /// The offer.
        offer_id: OfferId,
    },
    /// One task status update; [`TaskUpdate::ack`] says what acknowledging
    /// it takes, once it is stored.
    Update(TaskUpdate),
    /// The master removed an agent (a FAILURE with only its id): its tasks
    /// are lost unless they show up again.
    AgentLost {
        /// The agent.
        agent_id: AgentId,
    },
    /// The master asks for an agent back for maintenance (one inverse
    /// offer of an INVERSE_OFFERS event).
    InverseOffer {
        /// The inverse offer's id, to accept it by.
        inverse_offer_id: String,
        /// The agent.
        agent_id: AgentId,
        /// When the agent goes, and for how long.
        unavailability: crate::model::host::Unavailability,
    },
    /// The master took an inverse offer back (its schedule dropped it).
    RescindInverseOffer {
        /// The inverse offer.
        inverse_offer_id: String,
    },
}

/// What the engine is told of one stream event: nothing, one event, or
/// for an OFFERS event with malformed offers, two.
pub(crate) type Translated = SmallVec<[SessionEvent; 1]>;

/// The engine's view of `event`: nothing for an event Drover does not act
/// on (logged at debug). Moves the event's strings rather than copying them.
pub(crate) fn translate(event: Event) -> Translated {
    if event.r#type == Some(event::Type::Offers as i32) {
        let sorted = offers::sort(event.offers.map(|o| o.offers).unwrap_or_default());
        let mut out: Translated = smallvec![SessionEvent::Offers(sorted.usable)];
        if !sorted.invalid.is_empty() {
            out.push(SessionEvent::InvalidOffers(sorted.invalid));
        }
        return out;
    }
    if event.r#type == Some(event::Type::InverseOffers as i32) {
        let offers = event
            .inverse_offers
            .map(|o| o.inverse_offers)
            .unwrap_or_default();
        return offers
            .into_iter()
            .filter_map(|o| {
                // An inverse offer for a whole framework (no agent) asks
                // nothing of Drover's hosts.
                let agent = o.agent_id?;
                Some(SessionEvent::InverseOffer {
                    unavailability: super::offers::unavailability(&o.unavailability),
                    inverse_offer_id: o.id.value,
                    agent_id: AgentId::new(&agent.value),
                })
            })
            .collect();
    }
    one(event).into_iter().collect()
}

/// Any event but OFFERS, as [`translate`] says.
fn one(event: Event) -> Option<SessionEvent> {
    let kind = event.r#type.and_then(|t| event::Type::try_from(t).ok());
    match kind {
        Some(event::Type::Rescind) => event.rescind.map(|r| SessionEvent::Rescind {
            offer_id: OfferId(r.offer_id.value),
        }),
        Some(event::Type::RescindInverseOffer) => {
            event
                .rescind_inverse_offer
                .map(|r| SessionEvent::RescindInverseOffer {
                    inverse_offer_id: r.inverse_offer_id.value,
                })
        }
        Some(event::Type::Update) => event
            .update
            .map(|u| SessionEvent::Update(task_update(u.status))),
        Some(event::Type::Failure) => {
            let failure = event.failure?;
            match (failure.agent_id, failure.executor_id) {
                (Some(agent), None) => Some(SessionEvent::AgentLost {
                    agent_id: AgentId::new(&agent.value),
                }),
                // An executor exited: its tasks' own updates will follow.
                (agent, Some(executor)) => {
                    tracing::debug!(
                        agent = agent.as_ref().map(|a| a.value.as_str()),
                        executor = %executor.value,
                        "executor failure ignored; its tasks' updates follow"
                    );
                    None
                }
                (None, None) => None,
            }
        }
        other => {
            tracing::debug!(kind = ?other, "event ignored: Drover does not act on it");
            None
        }
    }
}

/// A status update in Drover's terms: an unknown state number is
/// TASK_UNKNOWN, an unknown reason none, and the timestamp (seconds) is
/// kept in milliseconds only when it is a finite, positive time.
fn task_update(status: TaskStatus) -> TaskUpdate {
    TaskUpdate {
        state: TaskState::try_from(status.state).unwrap_or(TaskState::TaskUnknown),
        reason: status
            .reason
            .and_then(|r| task_status::Reason::try_from(r).ok()),
        timestamp: status
            .timestamp
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| (t * 1000.0) as i64),
        unreachable_since: status
            .unreachable_time
            .map(|t| t.nanoseconds / 1_000_000)
            .filter(|ms| *ms > 0),
        agent_id: status.agent_id.map(|a| AgentId::new(&a.value)),
        task_id: status.task_id.value,
        message: status.message,
        healthy: status.healthy,
        ready: status.check_status.as_ref().map(check_passed),
        image: status.labels.as_ref().and_then(|l| {
            RunImage::from_labels(
                l.labels
                    .iter()
                    .map(|l| (l.key.as_str(), l.value.as_deref().unwrap_or_default())),
            )
        }),
        data: status.data,
        uuid: status.uuid,
    }
}

/// Whether a Mesos check status says the check passed: Mesos only reports
/// the result (an exit code, an HTTP status, a TCP connect); what passing
/// means is the scheduler's, and Drover's is Marathon's and Peloton's
/// (exit 0, HTTP 200-399, connected). An empty result (the check has not
/// run yet, or could not: it timed out) has not passed.
fn check_passed(check: &drover_proto::v1::CheckStatusInfo) -> bool {
    let command = check.command.as_ref().and_then(|c| c.exit_code);
    let http = check.http.as_ref().and_then(|h| h.status_code);
    let tcp = check.tcp.as_ref().and_then(|t| t.succeeded);
    command == Some(0) || http.is_some_and(|s| (200..400).contains(&s)) || tcp == Some(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mesos::offers::tests::{ports, proto_offer, scalar};
    use crate::model::task_update::Ack;
    use bytes::Bytes;
    use drover_proto::v1::{self, ExecutorId};

    fn of(kind: event::Type) -> Event {
        Event {
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    fn status(task: &str, state: i32) -> TaskStatus {
        TaskStatus {
            task_id: v1::TaskId { value: task.into() },
            state,
            ..Default::default()
        }
    }

    fn update(status: TaskStatus) -> Event {
        Event {
            update: Some(event::Update { status }),
            ..of(event::Type::Update)
        }
    }

    fn failure(agent: Option<&str>, executor: Option<&str>) -> Event {
        Event {
            failure: Some(Box::new(event::Failure {
                agent_id: agent.map(|value| v1::AgentId {
                    value: value.into(),
                }),
                executor_id: executor.map(|value| ExecutorId {
                    value: value.into(),
                }),
                status: None,
            })),
            ..of(event::Type::Failure)
        }
    }

    fn the_update(event: Event) -> TaskUpdate {
        match one(event) {
            Some(SessionEvent::Update(u)) => u,
            other => panic!("expected one Update, got {other:?}"),
        }
    }

    #[test]
    fn offers_arrive_together_with_only_their_unreserved_resources_and_ports() {
        let mut reserved = scalar("cpus", 8.0);
        reserved.reservations = vec![v1::resource::ReservationInfo::default()];
        let event = Event {
            offers: Some(event::Offers {
                offers: vec![
                    proto_offer(
                        "o1",
                        "a1",
                        vec![scalar("cpus", 2.0), reserved, ports(31000, 31009)],
                    ),
                    proto_offer("o2", "a2", vec![scalar("mem", 64.0)]),
                ],
            }),
            ..of(event::Type::Offers)
        };
        let [SessionEvent::Offers(offers)] = &translate(event)[..] else {
            panic!("expected Offers");
        };
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].id, OfferId("o1".into()));
        assert_eq!(offers[0].agent_id, AgentId::new("a1"));
        assert_eq!(offers[0].resources.cpus, 2.0);
        assert_eq!(offers[0].ports.ranges(), &[(31000, 31009)]);
        assert_eq!(offers[1].id, OfferId("o2".into()));
        assert_eq!(offers[1].resources.mem_mib, 64.0);
        assert!(offers[1].ports.is_empty());
        // An OFFERS event without its payload offers nothing, as before.
        assert_eq!(
            translate(of(event::Type::Offers)).into_vec(),
            vec![SessionEvent::Offers(Vec::new())]
        );
    }

    #[test]
    fn malformed_offers_follow_the_usable_ones_to_be_declined() {
        let event = Event {
            offers: Some(event::Offers {
                offers: vec![
                    proto_offer(
                        "bad",
                        "a1",
                        vec![scalar("cpus", 2.0), scalar("cpus", -10.0)],
                    ),
                    proto_offer("o1", "a2", vec![scalar("cpus", 1.0)]),
                ],
            }),
            ..of(event::Type::Offers)
        };
        match &translate(event)[..] {
            [SessionEvent::Offers(usable), SessionEvent::InvalidOffers(invalid)] => {
                assert_eq!(usable.len(), 1);
                assert_eq!(usable[0].id, OfferId("o1".into()));
                assert_eq!(invalid, &[OfferId("bad".into())]);
            }
            other => panic!("expected Offers then InvalidOffers, got {other:?}"),
        }
    }

    #[test]
    fn other_events_translate_as_one_or_none() {
        assert_eq!(translate(of(event::Type::Message)).len(), 0);
        assert_eq!(translate(failure(Some("a1"), None)).len(), 1);
    }

    #[test]
    fn a_rescind_names_its_offer() {
        let event = Event {
            rescind: Some(event::Rescind {
                offer_id: v1::OfferId { value: "o1".into() },
            }),
            ..of(event::Type::Rescind)
        };
        assert_eq!(
            one(event),
            Some(SessionEvent::Rescind {
                offer_id: OfferId("o1".into())
            })
        );
        assert_eq!(one(of(event::Type::Rescind)), None);
    }

    #[test]
    fn a_check_status_says_whether_the_readiness_check_passed() {
        use drover_proto::v1::{check_status_info as csi, CheckStatusInfo};
        let with = |c: CheckStatusInfo| {
            let mut s = status("j-0-0", TaskState::TaskRunning as i32);
            s.check_status = Some(c);
            the_update(update(s)).ready
        };
        let command = |exit_code| CheckStatusInfo {
            command: Some(csi::Command { exit_code }),
            ..Default::default()
        };
        let http = |status_code| CheckStatusInfo {
            http: Some(csi::Http { status_code }),
            ..Default::default()
        };
        let tcp = |succeeded| CheckStatusInfo {
            tcp: Some(csi::Tcp { succeeded }),
            ..Default::default()
        };
        assert_eq!(with(command(Some(0))), Some(true));
        assert_eq!(with(command(Some(1))), Some(false));
        assert_eq!(with(command(None)), Some(false), "empty: not (yet) ready");
        assert_eq!(with(http(Some(204))), Some(true));
        assert_eq!(with(http(Some(399))), Some(true));
        assert_eq!(with(http(Some(503))), Some(false));
        assert_eq!(with(http(None)), Some(false));
        assert_eq!(with(tcp(Some(true))), Some(true));
        assert_eq!(with(tcp(Some(false))), Some(false));
        let plain = status("j-0-0", TaskState::TaskRunning as i32);
        assert_eq!(the_update(update(plain)).ready, None, "no check status");
    }

    #[test]
    fn the_image_an_executor_resolved_comes_from_its_status_labels() {
        let digest = format!("sha256:{}", "0f".repeat(32));
        let mut s = status("j-0-0", TaskState::TaskStarting as i32);
        assert_eq!(the_update(update(s.clone())).image, None, "no labels");
        let label = |k: &str, v: &str| v1::Label {
            key: k.into(),
            value: Some(v.into()),
        };
        s.labels = Some(v1::Labels {
            labels: vec![
                label("drover.image.name", "drover-test/busybox:1"),
                label("drover.image.digest", &digest),
            ],
        });
        let image = the_update(update(s)).image.unwrap();
        assert_eq!(image.name.as_deref(), Some("drover-test/busybox:1"));
        assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn a_reliable_update_carries_what_its_acknowledgement_needs() {
        let mut s = status("j-0-0", TaskState::TaskRunning as i32);
        s.agent_id = Some(v1::AgentId { value: "a1".into() });
        s.uuid = Some(Bytes::from_static(&[7; 16]));
        s.reason = Some(task_status::Reason::ContainerLaunchFailed as i32);
        s.message = Some("hello".into());
        s.healthy = Some(true);
        s.timestamp = Some(1_700_000_000.25);
        let u = the_update(update(s));
        assert_eq!(
            u,
            TaskUpdate {
                task_id: "j-0-0".into(),
                state: TaskState::TaskRunning,
                reason: Some(task_status::Reason::ContainerLaunchFailed),
                message: Some("hello".into()),
                healthy: Some(true),
                ready: None,
                agent_id: Some(AgentId::new("a1")),
                timestamp: Some(1_700_000_000_250),
                unreachable_since: None,
                image: None,
                data: None,
                uuid: Some(Bytes::from_static(&[7; 16])),
            }
        );
        assert_eq!(
            u.ack(),
            Some(Ack {
                agent_id: AgentId::new("a1"),
                task_id: "j-0-0".into(),
                uuid: Bytes::from_static(&[7; 16]),
            })
        );
    }

    #[test]
    fn an_update_without_uuid_or_agent_is_not_acknowledged() {
        // Master-generated (reconciliation answers): no uuid.
        let mut s = status("j-0-0", TaskState::TaskLost as i32);
        s.agent_id = Some(v1::AgentId { value: "a1".into() });
        let u = the_update(update(s));
        assert_eq!(u.agent_id, Some(AgentId::new("a1")));
        assert_eq!(u.uuid, None);
        assert_eq!(u.ack(), None);
        // A uuid but no agent to send the acknowledgement to.
        let mut s = status("j-0-0", TaskState::TaskRunning as i32);
        s.uuid = Some(Bytes::from_static(b"u"));
        let u = the_update(update(s));
        assert_eq!(u.agent_id, None);
        assert_eq!(u.ack(), None);
    }

    #[test]
    fn unknown_numbers_and_odd_times_read_as_unknown_or_absent() {
        let mut s = status("j-0-0", 99);
        s.reason = Some(9999);
        let u = the_update(update(s));
        assert_eq!(u.state, TaskState::TaskUnknown);
        assert_eq!(u.reason, None);
        for time in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut s = status("j-0-0", TaskState::TaskRunning as i32);
            s.timestamp = Some(time);
            assert_eq!(the_update(update(s)).timestamp, None, "{time}");
        }
        let s = status("j-0-0", TaskState::TaskRunning as i32);
        assert_eq!(the_update(update(s)).timestamp, None);
        // An UPDATE without its status says nothing.
        assert_eq!(one(of(event::Type::Update)), None);
    }

    #[test]
    fn a_failure_is_an_agent_lost_only_without_an_executor() {
        assert_eq!(
            one(failure(Some("a1"), None)),
            Some(SessionEvent::AgentLost {
                agent_id: AgentId::new("a1")
            })
        );
        assert_eq!(one(failure(Some("a1"), Some("e1"))), None);
        assert_eq!(one(failure(None, Some("e1"))), None);
        assert_eq!(one(failure(None, None)), None);
        assert_eq!(one(of(event::Type::Failure)), None);
    }

    #[test]
    fn events_drover_does_not_use_are_dropped() {
        for kind in [
            event::Type::InverseOffers,
            event::Type::RescindInverseOffer,
            event::Type::Message,
            event::Type::UpdateOperationStatus,
        ] {
            assert_eq!(one(of(kind)), None, "{kind:?}");
        }
        assert_eq!(one(Event::default()), None);
    }
}
