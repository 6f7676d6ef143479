//! Scheduler call validation as the master does it before looking the
//! framework up (reference 3.2.1): a failure is a 400 whose body starts
//! `Failed to validate scheduler::Call: `. Also the validity rules for ids
//! a framework chooses (reference 2.6) and for role names.

use drover_proto::v1::scheduler::{call::Type, Call};

/// Checks a decoded call; the error is the text after the 400 prefix.
pub fn call(call: &Call) -> Result<Type, String> {
    let Some(raw) = call.r#type else {
        return Err("Expecting 'type' to be present".into());
    };
    let ty = Type::try_from(raw).unwrap_or(Type::Unknown);
    if ty == Type::Subscribe {
        let Some(sub) = &call.subscribe else {
            return Err("Expecting 'subscribe' to be present".into());
        };
        let inner = sub.framework_info.id.as_ref().map(|i| &i.value);
        let outer = call.framework_id.as_ref().map(|i| &i.value);
        if inner != outer {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(ty);
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    let missing = |field: &str| Err(format!("Expecting '{field}' to be present"));
    match ty {
        Type::Accept if call.accept.is_none() => missing("accept"),
        Type::Decline if call.decline.is_none() => missing("decline"),
        Type::AcceptInverseOffers if call.accept_inverse_offers.is_none() => {
            missing("accept_inverse_offers")
        }
        Type::DeclineInverseOffers if call.decline_inverse_offers.is_none() => {
            missing("decline_inverse_offers")
        }
        Type::Kill if call.kill.is_none() => missing("kill"),
        Type::Shutdown if call.shutdown.is_none() => missing("shutdown"),
        Type::Acknowledge => match &call.acknowledge {
            None => missing("acknowledge"),
            Some(ack) => uuid(&ack.uuid).map(|()| ty),
        },
        Type::AcknowledgeOperationStatus => match &call.acknowledge_operation_status {
            None => missing("acknowledge_operation_status"),
            Some(ack) if ack.agent_id.is_none() => missing("agent_id"),
            Some(ack) => uuid(&ack.uuid).map(|()| ty),
        },
        Type::Reconcile if call.reconcile.is_none() => missing("reconcile"),
        Type::ReconcileOperations if call.reconcile_operations.is_none() => {
            missing("reconcile_operations")
        }
        Type::Message if call.message.is_none() => missing("message"),
        Type::Request if call.request.is_none() => missing("request"),
        Type::UpdateFramework => match &call.update_framework {
            None => missing("update_framework"),
            Some(u)
                if u.framework_info.id.as_ref().map(|i| &i.value)
                    != call.framework_id.as_ref().map(|i| &i.value) =>
            {
                Err("'framework_id' differs from 'update_framework.framework_info.id'".into())
            }
            Some(_) => Ok(ty),
        },
        _ => Ok(ty),
    }
}

/// A status update uuid: 16 bytes with a version nibble 1-5.
pub fn uuid(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() != 16 || !(1..=5).contains(&(bytes[6] >> 4)) {
        return Err("Not a valid UUID".into());
    }
    Ok(())
}

/// An id a framework chose (TaskID, ExecutorID, FrameworkID).
pub fn id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("ID must not be empty".into());
    }
    if value.len() > 255 {
        return Err("ID must not be greater than 255 characters".into());
    }
    if value == "." || value == ".." {
        return Err("'.' and '..' are disallowed".into());
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err("ID must not contain control characters, '/' or '\\'".into());
    }
    Ok(())
}

/// A role name (Mesos `roles::validate`).
pub fn role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    for part in role.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.starts_with('-') {
            return Err(format!("Role '{role}' has an invalid path component"));
        }
        if part
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '*')
        {
            return Err(format!("Role '{role}' contains invalid characters"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::v1::{scheduler::call, FrameworkId};

    fn typed(ty: Type) -> Call {
        Call {
            r#type: Some(ty as i32),
            ..Default::default()
        }
    }

    #[test]
    fn non_subscribe_calls_need_a_framework_id_and_their_sub_message() {
        assert_eq!(
            call(&Call::default()).unwrap_err(),
            "Expecting 'type' to be present"
        );
        assert!(call(&typed(Type::Teardown))
            .unwrap_err()
            .contains("framework_id"));
        let mut kill = typed(Type::Kill);
        kill.framework_id = Some(FrameworkId { value: "f".into() });
        assert!(call(&kill).unwrap_err().contains("'kill'"));
        let mut revive = typed(Type::Revive);
        revive.framework_id = Some(FrameworkId { value: "f".into() });
        assert_eq!(call(&revive), Ok(Type::Revive));
    }

    #[test]
    fn acknowledge_needs_a_real_uuid() {
        let mut ack = typed(Type::Acknowledge);
        ack.framework_id = Some(FrameworkId { value: "f".into() });
        ack.acknowledge = Some(call::Acknowledge {
            uuid: b"abc".to_vec().into(),
            ..Default::default()
        });
        assert_eq!(call(&ack).unwrap_err(), "Not a valid UUID");
        let good = uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        ack.acknowledge = Some(call::Acknowledge {
            uuid: good.as_bytes().to_vec().into(),
            ..Default::default()
        });
        assert_eq!(call(&ack), Ok(Type::Acknowledge));
    }

    #[test]
    fn subscribe_ids_must_agree() {
        let mut sub = typed(Type::Subscribe);
        sub.subscribe = Some(Box::default());
        assert_eq!(call(&sub), Ok(Type::Subscribe));
        sub.framework_id = Some(FrameworkId { value: "x".into() });
        assert!(call(&sub).unwrap_err().contains("differs"));
    }

    #[test]
    fn ids_and_roles_follow_mesos_rules() {
        assert!(id("task-1").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb"] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
        assert!(role("*").is_ok() && role("dev").is_ok() && role("a/b").is_ok());
        assert!(role("a b").is_err() && role("-x").is_err() && role("a//b").is_err());
    }
}
