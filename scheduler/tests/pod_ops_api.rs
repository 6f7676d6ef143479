//! Pod operations and queries of the real `drover-scheduler` binary with no
//! master reachable (writes are stored; pods wait for offers): pod stop,
//! start and restart, job restart with ranges and versions, QueryJobs and
//! QueryPods with filters and pagination.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

const NO_MASTER: &str = "http://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_stop_start_and_restart_and_jobs_restart_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let (status, _) = post(
        &s.address,
        "/api/v1/jobs",
        &json!({"job_id": {"value": "web"}, "spec": job_spec("SERVICE", 3, "serve")}),
    )
    .await;
    assert_eq!(status, 200);

    let (status, reply) = post(&s.address, "/api/v1/pods/web-1/stop", &json!({})).await;
    assert_eq!((status, reply), (200, json!({})));
    let (_, pod) = get(&s.address, "/api/v1/pods/web-1").await;
    assert_eq!(
        pod["current"]["status"]["desired_state"],
        "POD_STATE_KILLED"
    );
    assert_eq!(pod["current"]["status"]["healthy"], "DISABLED");
    let (status, _) = post(&s.address, "/api/v1/pods/web-1/start", &json!({})).await;
    assert_eq!(status, 200);
    let (_, pod) = get(&s.address, "/api/v1/pods/web-1").await;
    assert_eq!(
        pod["current"]["status"]["desired_state"],
        "POD_STATE_RUNNING"
    );
    let (status, _) = post(&s.address, "/api/v1/pods/web-2/restart", &json!({})).await;
    assert_eq!(status, 200);

    let (status, err) = post(&s.address, "/api/v1/pods/web-7/stop", &json!({})).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, err) = post(&s.address, "/api/v1/pods/web-1/stop", &json!({"x": 1})).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/web/restart",
        &json!({"version": {"value": "1"}, "batch_size": 1, "ranges": [{"from": 0, "to": 2}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["version"]["value"], "2");
    let (status, err) = post(
        &s.address,
        "/api/v1/jobs/web/restart",
        &json!({"version": {"value": "1"}}),
    )
    .await;
    assert_eq!((status, err["code"].as_str()), (409, Some("ABORTED")));
    let (status, err) = post(
        &s.address,
        "/api/v1/jobs/web/restart",
        &json!({"ranges": [{"from": 2, "to": 9}]}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().starts_with("ranges[0]"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_pods_are_queried_with_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    for (id, owner, team) in [
        ("a1", "alice", "x"),
        ("a2", "alice", "y"),
        ("b1", "bob", "x"),
    ] {
        let mut spec = job_spec("BATCH", 4, "true");
        spec["name"] = json!(format!("etl-{id}"));
        spec["owner"] = json!(owner);
        spec["labels"] = json!([{"key": "team", "value": team}]);
        spec["instance_spec"] = json!({"2": {"labels": [{"key": "role", "value": "leader"}]}});
        let (status, _) = post(
            &s.address,
            "/api/v1/jobs",
            &json!({"job_id": {"value": id}, "spec": spec}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let query = |spec: serde_json::Value| {
        let address = s.address.clone();
        async move {
            let (status, reply) =
                post(&address, "/api/v1/jobs/query", &json!({"spec": spec})).await;
            assert_eq!(status, 200, "{reply}");
            let ids: Vec<String> = reply["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["job_id"]["value"].as_str().unwrap().to_owned())
                .collect();
            (ids, reply["pagination"]["total"].as_u64().unwrap())
        }
    };
    assert_eq!(
        query(json!({})).await,
        (vec!["a1".into(), "a2".into(), "b1".into()], 3)
    );
    assert_eq!(query(json!({"owner": "alice"})).await.1, 2);
    assert_eq!(
        query(json!({"labels": [{"key": "team", "value": "x"}]}))
            .await
            .0,
        vec!["a1".to_owned(), "b1".to_owned()]
    );
    assert_eq!(
        query(json!({"keywords": ["ETL", "bob"]})).await.0,
        vec!["b1".to_owned()]
    );
    assert_eq!(
        query(json!({"name": "etl-a2"})).await.0,
        vec!["a2".to_owned()]
    );
    assert_eq!(
        query(json!({"job_states": ["JOB_STATE_SUCCEEDED"]}))
            .await
            .1,
        0
    );
    assert_eq!(
        query(json!({"pagination": {"offset": 1, "limit": 1}})).await,
        (vec!["a2".to_owned()], 3)
    );
    let (status, err) = post(
        &s.address,
        "/api/v1/jobs/query",
        &json!({"spec": {"nme": "x"}}),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let pods = |spec: serde_json::Value| {
        let address = s.address.clone();
        async move {
            let (status, reply) = post(
                &address,
                "/api/v1/jobs/a1/pods/query",
                &json!({"spec": spec}),
            )
            .await;
            assert_eq!(status, 200, "{reply}");
            let names: Vec<String> = reply["pods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pod_name"]["value"].as_str().unwrap().to_owned())
                .collect();
            (names, reply["pagination"]["total"].as_u64().unwrap())
        }
    };
    assert_eq!(pods(json!({})).await.1, 4);
    assert_eq!(
        pods(json!({"pod_states": ["POD_STATE_PENDING"]})).await.1,
        4
    );
    assert_eq!(
        pods(json!({"pod_states": ["POD_STATE_RUNNING"]})).await.1,
        0
    );
    assert_eq!(
        pods(json!({"labels": [{"key": "role", "value": "leader"}]}))
            .await
            .0,
        vec!["a1-2".to_owned()]
    );
    assert_eq!(
        pods(json!({"pod_names": [{"value": "a1-3"}, {"value": "a1-0"}]}))
            .await
            .0,
        vec!["a1-0".to_owned(), "a1-3".to_owned()]
    );
    assert_eq!(pods(json!({"hosts": ["nowhere"]})).await.1, 0);
    assert_eq!(
        pods(json!({"pagination": {"offset": 3, "limit": 10}})).await,
        (vec!["a1-3".to_owned()], 4)
    );
    let (status, _) = post(&s.address, "/api/v1/jobs/zz/pods/query", &json!({})).await;
    assert_eq!(status, 404);
}
