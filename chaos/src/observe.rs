//! Reading the cluster: each master's `/state` (its live, unreachable and
//! completed tasks), the store's runs by SQL on PostgreSQL directly, who
//! leads the masters (`/redirect`), and each replica's
//! `GET /api/v1/leader` and `/metrics`. Every read may fail (the process is
//! dead, paused or restarting): a failed read is `None`, never a stop.

use std::time::Duration;

use serde_json::Value;

use crate::audit::{MasterTask, MasterView, StoreRun};
use crate::client;
use crate::leadership::{parse_metrics, LeaderMetrics};

/// How long one probe of a replica may take (a paused one never answers).
const PROBE_LIMIT: Duration = Duration::from_millis(1000);

/// How long a master's `/state` may take (10,000 tasks are a few MB).
const STATE_LIMIT: Duration = Duration::from_secs(20);

fn unix_ms(seconds: &Value) -> Option<i64> {
    seconds.as_f64().map(|s| (s * 1000.0) as i64)
}

fn master_task(task: &Value) -> Option<MasterTask> {
    let statuses = task["statuses"].as_array();
    let first_status_ms =
        statuses.and_then(|s| s.iter().filter_map(|st| unix_ms(&st["timestamp"])).min());
    let finished_ms = statuses.and_then(|s| {
        s.iter()
            .filter(|st| st["state"] == "TASK_FINISHED")
            .filter_map(|st| unix_ms(&st["timestamp"]))
            .min()
    });
    Some(MasterTask {
        task_id: task["id"].as_str()?.to_owned(),
        state: task["state"].as_str()?.to_owned(),
        first_status_ms,
        finished_ms,
    })
}

fn tasks_of(list: &Value) -> Vec<MasterTask> {
    list.as_array()
        .map(|l| l.iter().filter_map(master_task).collect())
        .unwrap_or_default()
}

/// A master's view from its `/state` JSON.
pub fn master_view(master: &str, state: &Value) -> MasterView {
    let mut view = MasterView {
        master: master.to_owned(),
        ..MasterView::default()
    };
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        view.tasks.extend(tasks_of(&framework["tasks"]));
        view.tasks.extend(tasks_of(&framework["unreachable_tasks"]));
        view.completed
            .extend(tasks_of(&framework["completed_tasks"]));
    }
    view
}

/// `GET /state` of the master at `address`.
pub async fn read_master(address: &str) -> Option<MasterView> {
    let answer = client::get(address, "/state", STATE_LIMIT).await.ok()?;
    (answer.status == 200).then(|| master_view(address, &answer.json()))
}

/// `GET /sim/calls?after=SEQ` of the master at `address`.
pub async fn read_calls(address: &str, after: u64) -> Option<Vec<crate::calls::CallRecord>> {
    let path = format!("/sim/calls?after={after}");
    let answer = client::get(address, &path, STATE_LIMIT).await.ok()?;
    (answer.status == 200).then(|| crate::calls::parse(&answer.json()))
}

/// The leading master's address, as the master at `address` names it in
/// `/redirect` (`//host:port`).
pub async fn leading_master(address: &str) -> Option<String> {
    let answer = client::get(address, "/redirect", PROBE_LIMIT).await.ok()?;
    let location = answer.location.filter(|_| answer.status == 307)?;
    Some(location.trim_start_matches("//").to_owned())
}

/// What one replica says: its role, and its metrics when it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProbe {
    pub role: String,
    pub metrics: Option<LeaderMetrics>,
}

/// Probes the replica at `address`.
pub async fn probe_replica(address: &str) -> Option<ReplicaProbe> {
    let answer = client::get(address, "/api/v1/leader", PROBE_LIMIT)
        .await
        .ok()?;
    if answer.status != 200 {
        return None;
    }
    let role = answer.json()["role"].as_str().unwrap_or("").to_owned();
    let metrics = if role == "leader" {
        let page = client::get(address, "/metrics", PROBE_LIMIT).await.ok()?;
        Some(parse_metrics(&page.text()))
    } else {
        None
    };
    Some(ReplicaProbe { role, metrics })
}

/// Every run in the store at `url`; `None` while it cannot be read.
pub async fn read_store(url: &str) -> Option<Vec<StoreRun>> {
    let mut config: tokio_postgres::Config = url.parse().ok()?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.ok()?;
    // The connection's I/O runs beside the query and ends with the client.
    let io = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT job_id, instance, run, state, launched_at_ms, completed_at_ms FROM runs",
            &[],
        )
        .await;
    drop(client);
    let _ = io.await;
    Some(
        rows.ok()?
            .iter()
            .filter_map(|row| {
                Some(StoreRun {
                    job: row.try_get(0).ok()?,
                    instance: u32::try_from(row.try_get::<_, i64>(1).ok()?).ok()?,
                    run: u32::try_from(row.try_get::<_, i64>(2).ok()?).ok()?,
                    state: row.try_get(3).ok()?,
                    launched_at_ms: row.try_get(4).ok()?,
                    completed_at_ms: row.try_get(5).ok()?,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_masters_state_gives_its_live_unreachable_and_completed_tasks() {
        let state = json!({"frameworks": [{
            "tasks": [{"id": "j-0-0", "state": "TASK_RUNNING",
                       "statuses": [{"state": "TASK_STAGING", "timestamp": 10.5},
                                    {"state": "TASK_RUNNING", "timestamp": 11.0}]}],
            "unreachable_tasks": [{"id": "j-1-0", "state": "TASK_UNREACHABLE", "statuses": []}],
            "completed_tasks": [{"id": "j-2-0", "state": "TASK_FINISHED",
                                 "statuses": [{"state": "TASK_STAGING", "timestamp": 1.0},
                                              {"state": "TASK_FINISHED", "timestamp": 2.25}]}]
        }]});
        let view = master_view("m", &state);
        assert_eq!(view.tasks.len(), 2);
        assert_eq!(view.tasks[0].first_status_ms, Some(10_500));
        assert_eq!(view.completed[0].finished_ms, Some(2_250));
        assert_eq!(view.completed[0].first_status_ms, Some(1_000));
    }
}
