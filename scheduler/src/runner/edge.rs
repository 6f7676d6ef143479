//! Where the engine meets the Mesos connection, both ways: a session event
//! becomes an engine input, an engine call becomes a scheduler `Call`
//! proto. The tokio runner and the whole-system simulation share these.

use crate::engine::{Action, Call, Engine, Now};
use crate::mesos::calls;
use crate::mesos::events::SessionEvent;
use crate::mesos::task_info::{self, ExecutorMode};
use crate::model::task_user::TaskUserPolicy;
use drover_proto::v1::scheduler;

/// Hands `event` to the engine. Status updates are the caller's to batch
/// (they join the engine's backlog together, [`Engine::on_updates`]);
/// given one here, it goes alone.
pub fn deliver(engine: &mut Engine, event: SessionEvent, now: Now) -> Vec<Action> {
    match event {
        SessionEvent::Update(update) => engine.on_updates(vec![update], now),
        SessionEvent::Subscribed { framework_id } => engine.on_subscribed(framework_id, now),
        SessionEvent::Disconnected => engine.on_disconnected(now),
        SessionEvent::FrameworkRemoved { .. } => engine.on_framework_removed(now),
        SessionEvent::Offers(offers) => engine.on_offers(offers, now),
        SessionEvent::InvalidOffers(offer_ids) => engine.on_invalid_offers(offer_ids, now),
        SessionEvent::Rescind { offer_id } => engine.on_rescind(&offer_id, now),
        SessionEvent::AgentLost { agent_id } => engine.on_agent_lost(agent_id, now),
        SessionEvent::InverseOffer {
            inverse_offer_id,
            agent_id,
            unavailability,
        } => engine.on_inverse_offer(inverse_offer_id, agent_id, unavailability, now),
        SessionEvent::RescindInverseOffer { inverse_offer_id } => {
            engine.on_inverse_rescind(&inverse_offer_id, now)
        }
    }
}

/// The Mesos call for an engine call; tasks run by `executor`, as the
/// users `users` says.
pub fn to_mesos(call: Call, executor: &ExecutorMode, users: &TaskUserPolicy) -> scheduler::Call {
    match call {
        Call::Accept {
            offer_ids,
            agent_id,
            allocation_role,
            tasks,
            refuse,
        } => {
            let infos = tasks
                .iter()
                .map(|t| {
                    task_info::task_info(
                        &t.task_id,
                        &t.pod,
                        t.spec_label.as_deref(),
                        &t.secrets,
                        agent_id.as_str(),
                        allocation_role.as_deref(),
                        &t.ports,
                        executor,
                        users,
                    )
                })
                .collect();
            calls::accept(offer_ids.into_iter().map(|o| o.0).collect(), infos, refuse)
        }
        Call::Decline { offer_ids, refuse } => {
            calls::decline(offer_ids.into_iter().map(|o| o.0).collect(), refuse)
        }
        Call::Kill {
            task_id,
            agent_id,
            grace,
        } => calls::kill(task_id, agent_id.map(|a| a.as_str().to_owned()), grace),
        Call::Reconcile { tasks } => calls::reconcile(
            tasks
                .into_iter()
                .map(|(task, agent)| (task, agent.map(|a| a.as_str().to_owned())))
                .collect(),
        ),
        Call::AcceptInverseOffers { inverse_offer_ids } => {
            calls::accept_inverse_offers(inverse_offer_ids)
        }
        Call::Suppress => calls::suppress(Vec::new()),
        Call::Revive => calls::revive(Vec::new()),
        Call::Acknowledge(ack) => {
            calls::acknowledge(ack.agent_id.as_str().to_owned(), ack.task_id, ack.uuid)
        }
    }
}
