//! The scheduler calls Drover sends, built from plain values. The session
//! fills in `framework_id`; nothing here knows about connections.

use drover_proto::v1::scheduler::{call, Call};
use drover_proto::v1::{
    framework_info, AgentId, DurationInfo, Filters, FrameworkInfo, KillPolicy, OfferId,
    TaskId as MesosTaskId, TaskInfo,
};
use std::time::Duration;

/// What goes into the FrameworkInfo.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkConfig {
    /// Framework name.
    pub name: String,
    /// User tasks run as.
    pub user: String,
    /// Roles to subscribe with (MULTI_ROLE).
    pub roles: Vec<String>,
    /// Principal for authentication, if any.
    pub principal: Option<String>,
    /// How long the master keeps our tasks after we disconnect.
    pub failover_timeout: Duration,
}

/// The FrameworkInfo Drover subscribes with: checkpointing on (tasks
/// survive agent restarts) and the capabilities Drover handles.
pub fn framework_info(config: &FrameworkConfig) -> FrameworkInfo {
    let capabilities = [
        framework_info::capability::Type::MultiRole,
        framework_info::capability::Type::PartitionAware,
        framework_info::capability::Type::TaskKillingState,
    ]
    .into_iter()
    .map(|t| framework_info::Capability {
        r#type: Some(t as i32),
    })
    .collect();
    FrameworkInfo {
        user: config.user.clone(),
        name: config.name.clone(),
        failover_timeout: Some(config.failover_timeout.as_secs_f64()),
        checkpoint: Some(true),
        roles: config.roles.clone(),
        principal: config.principal.clone(),
        capabilities,
        ..Default::default()
    }
}

/// SUBSCRIBE with `info`; a known `framework_id` goes both at the top level
/// and inside the FrameworkInfo, as re-subscription requires (reference 3.3).
pub fn subscribe(
    info: &FrameworkInfo,
    framework_id: Option<drover_proto::v1::FrameworkId>,
) -> Call {
    let mut info = info.clone();
    info.id = framework_id.clone();
    Call {
        framework_id,
        subscribe: Some(Box::new(call::Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        })),
        ..typed(call::Type::Subscribe)
    }
}

fn typed(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn filters(refuse: Duration) -> Option<Filters> {
    Some(Filters {
        refuse_seconds: Some(refuse.as_secs_f64()),
    })
}

/// ACCEPT `offer_ids` (all of one agent) with one LAUNCH of `tasks`.
pub fn accept(offer_ids: Vec<String>, tasks: Vec<TaskInfo>, refuse: Duration) -> Call {
    use drover_proto::v1::offer::{operation, Operation};
    Call {
        accept: Some(call::Accept {
            offer_ids: offer_ids
                .into_iter()
                .map(|value| OfferId { value })
                .collect(),
            operations: vec![Operation {
                r#type: Some(operation::Type::Launch as i32),
                launch: Some(operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: filters(refuse),
        }),
        ..typed(call::Type::Accept)
    }
}

/// DECLINE offers, refusing their agents for `refuse`.
pub fn decline(offer_ids: Vec<String>, refuse: Duration) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids: offer_ids
                .into_iter()
                .map(|value| OfferId { value })
                .collect(),
            filters: filters(refuse),
        }),
        ..typed(call::Type::Decline)
    }
}

/// ACCEPT_INVERSE_OFFERS: the framework agrees to give the agents back
/// (Drover's runs are off them).
pub fn accept_inverse_offers(inverse_offer_ids: Vec<String>) -> Call {
    Call {
        accept_inverse_offers: Some(Box::new(call::AcceptInverseOffers {
            inverse_offer_ids: inverse_offer_ids
                .into_iter()
                .map(|value| OfferId { value })
                .collect(),
            filters: None,
        })),
        ..typed(call::Type::AcceptInverseOffers)
    }
}

/// KILL a task with a grace period.
pub fn kill(task_id: String, agent_id: Option<String>, grace: Duration) -> Call {
    Call {
        kill: Some(Box::new(call::Kill {
            task_id: MesosTaskId { value: task_id },
            agent_id: agent_id.map(|value| AgentId { value }),
            kill_policy: Some(KillPolicy {
                grace_period: Some(DurationInfo {
                    nanoseconds: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        })),
        ..typed(call::Type::Kill)
    }
}

/// ACKNOWLEDGE one update.
pub fn acknowledge(agent_id: String, task_id: String, uuid: bytes::Bytes) -> Call {
    Call {
        acknowledge: Some(call::Acknowledge {
            agent_id: AgentId { value: agent_id },
            task_id: MesosTaskId { value: task_id },
            uuid,
        }),
        ..typed(call::Type::Acknowledge)
    }
}

/// RECONCILE the listed tasks; an empty list is implicit reconciliation.
pub fn reconcile(tasks: Vec<(String, Option<String>)>) -> Call {
    Call {
        reconcile: Some(call::Reconcile {
            tasks: tasks
                .into_iter()
                .map(|(task, agent)| call::reconcile::Task {
                    task_id: MesosTaskId { value: task },
                    agent_id: agent.map(|value| AgentId { value }),
                })
                .collect(),
        }),
        ..typed(call::Type::Reconcile)
    }
}

/// REVIVE offers for `roles` (all roles if empty).
pub fn revive(roles: Vec<String>) -> Call {
    Call {
        revive: Some(call::Revive { roles }),
        ..typed(call::Type::Revive)
    }
}

/// SUPPRESS offers for `roles` (all roles if empty).
pub fn suppress(roles: Vec<String>) -> Call {
    Call {
        suppress: Some(call::Suppress { roles }),
        ..typed(call::Type::Suppress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_info_asks_for_checkpointing_and_the_handled_capabilities() {
        let info = framework_info(&FrameworkConfig {
            name: "drover".into(),
            user: "u".into(),
            roles: vec!["dev".into()],
            principal: None,
            failover_timeout: Duration::from_secs(604_800),
        });
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.failover_timeout, Some(604_800.0));
        let caps: Vec<_> = info.capabilities.iter().filter_map(|c| c.r#type).collect();
        for t in [
            framework_info::capability::Type::MultiRole,
            framework_info::capability::Type::PartitionAware,
            framework_info::capability::Type::TaskKillingState,
        ] {
            assert!(caps.contains(&(t as i32)));
        }
        #[allow(deprecated)]
        let role = info.role.clone();
        assert_eq!(role, None, "MULTI_ROLE frameworks must not set role");
    }
}
