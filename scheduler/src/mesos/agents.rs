//! The cluster's agents as the leading master lists them (`/master/state`,
//! `slaves[]`), for the UI's cluster page: each agent's id, hostname,
//! whether it is active, its total, used and free resources and its
//! attributes. [`agents_of`] is pure; [`read_agents`] does the GET.

use super::agent_files::{leading_state, MasterAccess};
use super::driver;
use serde_json::{json, Map, Value};

/// The agents of a master's state, in its order. Free is total minus used
/// for each scalar resource (cpus, mem, disk, gpus, ...); ranges (ports)
/// are shown as the master writes them and have no free figure.
pub fn agents_of(state: &Value) -> Vec<Value> {
    let Some(slaves) = state["slaves"].as_array() else {
        return Vec::new();
    };
    slaves
        .iter()
        .map(|s| {
            let total = s["resources"].as_object().cloned().unwrap_or_default();
            let used = s["used_resources"].as_object().cloned().unwrap_or_default();
            json!({
                "id": s["id"],
                "hostname": s["hostname"],
                "active": s["active"].as_bool().unwrap_or(true),
                "resources": total,
                "used_resources": used,
                "free_resources": free(&total, &used),
                "attributes": s["attributes"].as_object().cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// Total minus used, per scalar resource (never below zero).
fn free(total: &Map<String, Value>, used: &Map<String, Value>) -> Map<String, Value> {
    total
        .iter()
        .filter_map(|(name, amount)| {
            let amount = amount.as_f64()?;
            let taken = used.get(name).and_then(Value::as_f64).unwrap_or(0.0);
            Some((name.clone(), json!((amount - taken).max(0.0))))
        })
        .collect()
}

/// The agents, read from the leading master; the failures when no master
/// answered.
pub async fn read_agents(access: &MasterAccess) -> Result<Vec<Value>, String> {
    let client = driver::client(access.tls.as_ref());
    let (_, state) = leading_state(&client, access).await?;
    Ok(agents_of(&state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_shows_total_used_free_and_attributes() {
        let state = json!({"slaves": [{
            "id": "S0", "hostname": "a0", "active": true, "pid": "slave(1)@h:1",
            "resources": {"cpus": 4.0, "mem": 1024.0, "ports": "[31000-32000]"},
            "used_resources": {"cpus": 1.5, "mem": 2048.0},
            "attributes": {"rack": "r1"},
        }]});
        let agents = agents_of(&state);
        assert_eq!(agents.len(), 1);
        let a = &agents[0];
        assert_eq!(a["id"], "S0");
        assert_eq!(a["hostname"], "a0");
        assert_eq!(a["free_resources"], json!({"cpus": 2.5, "mem": 0.0}));
        assert_eq!(a["resources"]["ports"], "[31000-32000]");
        assert_eq!(a["attributes"], json!({"rack": "r1"}));
        assert!(a.get("pid").is_none(), "only what the page shows");
    }

    #[test]
    fn a_state_without_agents_lists_none() {
        assert!(agents_of(&json!({})).is_empty());
        assert!(agents_of(&json!({"slaves": 3})).is_empty());
    }
}
