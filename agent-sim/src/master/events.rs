//! Constructors for the scheduler events the master sends, one per type,
//! so every event leaves with the `type` and the one sub-message Mesos sets.

use std::time::Duration;

use drover_proto::v1::scheduler::{event, Event};
use drover_proto::v1::{self, scheduler::event::Type};

fn of(ty: Type) -> Event {
    Event {
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub fn subscribed(framework: &str, heartbeat: Duration, master: v1::MasterInfo) -> Event {
    Event {
        subscribed: Some(Box::new(event::Subscribed {
            framework_id: v1::FrameworkId {
                value: framework.to_owned(),
            },
            heartbeat_interval_seconds: Some(heartbeat.as_secs_f64()),
            master_info: Some(master),
        })),
        ..of(Type::Subscribed)
    }
}

pub fn heartbeat() -> Event {
    of(Type::Heartbeat)
}

pub fn error(message: &str) -> Event {
    Event {
        error: Some(Box::new(event::Error {
            message: message.to_owned(),
        })),
        ..of(Type::Error)
    }
}

pub fn offers(offers: Vec<v1::Offer>) -> Event {
    Event {
        offers: Some(event::Offers { offers }),
        ..of(Type::Offers)
    }
}

pub fn rescind(offer: &str) -> Event {
    Event {
        rescind: Some(event::Rescind {
            offer_id: v1::OfferId {
                value: offer.to_owned(),
            },
        }),
        ..of(Type::Rescind)
    }
}

pub fn update(status: v1::TaskStatus) -> Event {
    Event {
        update: Some(event::Update { status }),
        ..of(Type::Update)
    }
}

pub fn operation_status(status: v1::OperationStatus) -> Event {
    Event {
        update_operation_status: Some(Box::new(event::UpdateOperationStatus { status })),
        ..of(Type::UpdateOperationStatus)
    }
}

pub fn agent_failure(agent: &str) -> Event {
    Event {
        failure: Some(Box::new(event::Failure {
            agent_id: Some(v1::AgentId {
                value: agent.to_owned(),
            }),
            executor_id: None,
            status: None,
        })),
        ..of(Type::Failure)
    }
}

/// An executor's message to its framework (reference 4.3.3).
pub fn message(agent: &str, executor: &str, data: bytes::Bytes) -> Event {
    Event {
        message: Some(Box::new(event::Message {
            agent_id: v1::AgentId {
                value: agent.to_owned(),
            },
            executor_id: v1::ExecutorId {
                value: executor.to_owned(),
            },
            data,
        })),
        ..of(Type::Message)
    }
}

/// An executor ended (reference 4.7): its agent, id and wait status.
pub fn executor_failure(agent: &str, executor: &str, status: i32) -> Event {
    Event {
        failure: Some(Box::new(event::Failure {
            agent_id: Some(v1::AgentId {
                value: agent.to_owned(),
            }),
            executor_id: Some(v1::ExecutorId {
                value: executor.to_owned(),
            }),
            status: Some(status),
        })),
        ..of(Type::Failure)
    }
}

pub fn inverse_offers(inverse_offers: Vec<v1::InverseOffer>) -> Event {
    Event {
        inverse_offers: Some(Box::new(event::InverseOffers { inverse_offers })),
        ..of(Type::InverseOffers)
    }
}

pub fn rescind_inverse_offer(id: &str) -> Event {
    Event {
        rescind_inverse_offer: Some(Box::new(event::RescindInverseOffer {
            inverse_offer_id: v1::OfferId {
                value: id.to_owned(),
            },
        })),
        ..of(Type::RescindInverseOffer)
    }
}
