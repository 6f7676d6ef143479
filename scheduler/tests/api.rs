//! The job API of the real `drover-scheduler` binary, with no master
//! reachable (jobs are stored and wait for offers): malformed specs are
//! refused with INVALID_ARGUMENT naming the field and change nothing
//! stored; versions, stop/start/delete and the read endpoints behave.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

/// The store's revision, read straight from the SQLite file.
fn revision(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("drover.sqlite")).unwrap();
    conn.query_row("SELECT value FROM revision WHERE id = 1", [], |r| r.get(0))
        .unwrap()
}

/// No master listens on port 1: the scheduler keeps retrying, the API works.
const NO_MASTER: &str = "http://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_specs_get_invalid_argument_naming_the_field_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &["--max-body-bytes", "65536"]);
    let good = job_spec("BATCH", 2, "true");
    let before = revision(dir.path());

    let mut missing_command = good.clone();
    missing_command["default_spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    let mut zero_cpu = good.clone();
    zero_cpu["default_spec"]["containers"][0]["resource"]["cpu_limit"] = json!(0);
    let mut zero_mem = good.clone();
    zero_mem["default_spec"]["containers"][0]["resource"]["mem_limit_mb"] = json!(0);
    let mut unknown = good.clone();
    unknown["default_spec"]["containers"][0]["resource"]["cpu_limt"] = json!(1);
    let mut wrong_type = good.clone();
    wrong_type["instance_count"] = json!("three");
    let mut negative = good.clone();
    negative["instance_count"] = json!(-1);
    let mut bad_type = good.clone();
    bad_type["type"] = json!("CRON");

    let cases = vec![
        (
            json!({"spec": missing_command}),
            "spec.default_spec.containers[0].command",
        ),
        (
            json!({"spec": zero_cpu}),
            "spec.default_spec.containers[0].resource.cpu_limit",
        ),
        (
            json!({"spec": zero_mem}),
            "spec.default_spec.containers[0].resource.mem_limit_mb",
        ),
        (
            json!({"spec": unknown}),
            "spec.default_spec.containers[0].resource",
        ),
        (json!({"spec": wrong_type}), "spec.instance_count"),
        (json!({"spec": negative}), "spec.instance_count"),
        (json!({"spec": bad_type}), "spec.type"),
        (json!({"spec": good, "surprise": 1}), "surprise"),
        (json!({}), "spec"),
        (
            json!({"spec": good, "job_id": {"value": "a/b"}}),
            "job_id.value",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = post(&s.address, "/api/v1/jobs", &body).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["code"], "INVALID_ARGUMENT", "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.starts_with(field),
            "message {message:?} should name {field}"
        );
    }
    // The unknown field itself is named in the message.
    let mut unknown = job_spec("BATCH", 1, "true");
    unknown["default_spec"]["containers"][0]["resource"]["cpu_limt"] = json!(1);
    let (_, reply) = post(&s.address, "/api/v1/jobs", &json!({"spec": unknown})).await;
    assert!(
        reply["message"].as_str().unwrap().contains("cpu_limt"),
        "{reply}"
    );

    // A huge body: 413, in the error shape.
    let huge = format!("{{\"spec\": {{\"name\": \"{}\"}}}}", "x".repeat(200_000));
    let (status, reply) = call(&s.address, "POST", "/api/v1/jobs", Some(huge.into_bytes())).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["code"], "RESOURCE_EXHAUSTED");
    assert!(
        reply["message"].as_str().unwrap().starts_with("body:")
            && reply["message"].as_str().unwrap().contains("65536 bytes"),
        "{reply}"
    );

    // A route asked with a method it does not take: 405 with Allow, in the
    // error shape.
    let (status, reply, allow) = {
        use http_body_util::BodyExt;
        let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let req = http::Request::builder()
            .method("PUT")
            .uri(format!("http://{}/api/v1/jobs", s.address))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            allow,
        )
    };
    assert_eq!(status, 405, "{reply}");
    assert_eq!(reply["code"], "UNIMPLEMENTED", "{reply}");
    let allow = allow.expect("an Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("PUT /api/v1/jobs"),
        "{reply}"
    );

    // Not JSON at all.
    let (status, reply) = call(&s.address, "POST", "/api/v1/jobs", Some(b"{nope".to_vec())).await;
    assert_eq!(status, 400, "{reply}");

    assert_eq!(revision(dir.path()), before, "nothing stored changed");
    let (_, list) = get(&s.address, "/api/v1/jobs").await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_created_read_versioned_stopped_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let body = json!({"job_id": {"value": "web"}, "spec": job_spec("SERVICE", 3, "sleep 100")});
    let (status, created) = post(&s.address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created,
        json!({"job_id": {"value": "web"}, "version": {"value": "1"}})
    );

    let (status, again) = post(&s.address, "/api/v1/jobs", &body).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );

    let (status, job) = get(&s.address, "/api/v1/jobs/web").await;
    assert_eq!(status, 200);
    let info = &job["job_info"];
    assert_eq!(info["spec"]["instance_count"], 3);
    assert_eq!(info["status"]["version"]["value"], "1");
    assert_eq!(info["status"]["pod_stats"]["POD_STATE_PENDING"], 3);
    assert!(info["status"]["creation_time"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let (_, pods) = get(&s.address, "/api/v1/jobs/web/pods").await;
    let pods = pods["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 3);
    assert_eq!(pods[2]["pod_name"]["value"], "web-2");
    assert_eq!(pods[2]["status"]["state"], "POD_STATE_PENDING");

    let (status, pod) = get(&s.address, "/api/v1/pods/web-1").await;
    assert_eq!(status, 200);
    assert_eq!(pod["current"]["status"]["state"], "POD_STATE_PENDING");
    assert_eq!(
        pod["current"]["spec"]["containers"][0]["command"]["value"],
        "sleep 100"
    );
    let (status, events) = get(&s.address, "/api/v1/pods/web-1/events").await;
    assert_eq!(status, 200);
    assert_eq!(events["events"], json!([]));
    let (status, _) = get(&s.address, "/api/v1/pods/web-9").await;
    assert_eq!(status, 404);
    let (status, missing) = get(&s.address, "/api/v1/jobs/nope").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("NOT_FOUND")));

    // Delete is refused while the job wants to run.
    let (status, refused) = call(&s.address, "DELETE", "/api/v1/jobs/web", None).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (412, Some("FAILED_PRECONDITION"))
    );

    // A stale version is ABORTED; the right one stops the job.
    let stale = json!({"version": {"value": "7"}});
    let (status, aborted) = post(&s.address, "/api/v1/jobs/web/stop", &stale).await;
    assert_eq!((status, aborted["code"].as_str()), (409, Some("ABORTED")));
    let (status, stopped) = post(
        &s.address,
        "/api/v1/jobs/web/stop",
        &json!({"version": {"value": "1"}}),
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["version"]["value"], "2");
    let (_, job) = get(&s.address, "/api/v1/jobs/web").await;
    assert_eq!(job["job_info"]["status"]["state"], "JOB_STATE_KILLED");
    assert_eq!(
        job["job_info"]["status"]["desired_state"],
        "JOB_STATE_KILLED"
    );

    let (status, started) = post(&s.address, "/api/v1/jobs/web/start", &json!({})).await;
    assert_eq!((status, &started["version"]["value"]), (200, &json!("3")));
    let (status, _) = call(&s.address, "DELETE", "/api/v1/jobs/web?version=2", None).await;
    assert_eq!(status, 409);
    let (status, deleted) = call(
        &s.address,
        "DELETE",
        "/api/v1/jobs/web?version=3&force=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = get(&s.address, "/api/v1/jobs/web").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_in_pages_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_scheduler(dir.path(), NO_MASTER, &[]);
    for i in 0..5 {
        let body =
            json!({"job_id": {"value": format!("job{i}")}, "spec": job_spec("BATCH", 1, "true")});
        let (status, _) = post(&s.address, "/api/v1/jobs", &body).await;
        assert_eq!(status, 200);
    }
    let (_, page) = get(&s.address, "/api/v1/jobs?offset=1&limit=2").await;
    assert_eq!(
        page["pagination"],
        json!({"offset": 1, "limit": 2, "total": 5, "next_offset": 3})
    );
    let (_, last) = get(&s.address, "/api/v1/jobs?offset=3&limit=2").await;
    assert_eq!(
        last["pagination"],
        json!({"offset": 3, "limit": 2, "total": 5}),
        "the last page has no next_offset"
    );
    let ids: Vec<_> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"]["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["job1", "job2"]);
    let (status, bad) = get(&s.address, "/api/v1/jobs?limit=x").await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, missing) = get(&s.address, "/api/v1/nothing").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("NOT_FOUND")));

    s.kill();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let (_, all) = get(&s.address, "/api/v1/jobs").await;
    assert_eq!(all["pagination"]["total"], 5);
    let (status, health) = get(&s.address, "/health").await;
    assert_eq!((status, &health["subscribed"]), (200, &json!(false)));
    let (status, metrics) = get(&s.address, "/metrics").await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("drover_subscription_state"), "{text}");
    assert!(text.contains("drover_pending_tasks"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_longer_than_the_limit_gets_414_in_the_error_shape_on_every_route_and_method() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    // The default limit is 8 KiB; hyper's own (65,534 bytes) is far above.
    let long = "x".repeat(16 * 1024);
    for (method, path) in [
        ("GET", format!("/api/v1/jobs?name={long}")),
        ("GET", format!("/api/v1/jobs/{long}")),
        ("POST", format!("/api/v1/jobs?name={long}")),
        ("DELETE", format!("/api/v1/jobs/{long}")),
        ("PUT", format!("/api/v1/jobs?name={long}")),
        ("GET", format!("/no/such/route/{long}")),
        ("GET", format!("/health?{long}")),
    ] {
        let (status, reply) = call(&s.address, method, &path, None).await;
        assert_eq!(status, 414, "{method} -> {reply}");
        assert_eq!(reply["code"], "RESOURCE_EXHAUSTED", "{method} -> {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains("8192 bytes"), "{message}");
    }
    // Just under the limit is routed as usual.
    let (status, reply) = get(&s.address, &format!("/no/route/{}", "y".repeat(8000))).await;
    assert_eq!((status, reply["code"].as_str()), (404, Some("NOT_FOUND")));

    let s2 = start_scheduler(
        dir.path().join("b").as_path(),
        NO_MASTER,
        &["--max-uri-bytes", "100"],
    );
    let (status, reply) = get(&s2.address, &format!("/health?{}", "z".repeat(100))).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (414, Some("RESOURCE_EXHAUSTED")),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_route_finds_a_job_by_its_name_and_a_shared_name_is_refused_listing_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let mut spec = job_spec("SERVICE", 2, "sleep 100");
    spec["name"] = json!("svc-named");
    let (status, created) = post(&s.address, "/api/v1/jobs", &json!({"spec": spec})).await;
    assert_eq!(status, 200, "{created}");
    let id = created["job_id"]["value"].as_str().unwrap().to_owned();

    let (status, job) = get(&s.address, "/api/v1/jobs/svc-named").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["job_info"]["job_id"]["value"], id.as_str());
    let (status, pods) = get(&s.address, "/api/v1/jobs/svc-named/pods").await;
    assert_eq!(status, 200, "{pods}");
    assert_eq!(pods["pods"][1]["pod_name"]["value"], format!("{id}-1"));
    let (status, found) = post(
        &s.address,
        "/api/v1/jobs/svc-named/pods/query",
        &json!({"spec": {"pod_states": ["PENDING"]}}),
    )
    .await;
    assert_eq!((status, &found["pagination"]["total"]), (200, &json!(2)));
    let (status, restarted) = post(&s.address, "/api/v1/jobs/svc-named/restart", &json!({})).await;
    assert_eq!(status, 200, "{restarted}");
    let (status, stopped) = post(&s.address, "/api/v1/jobs/svc-named/stop", &json!({})).await;
    assert_eq!(status, 200, "{stopped}");
    let (status, started) = post(&s.address, "/api/v1/jobs/svc-named/start", &json!({})).await;
    assert_eq!(status, 200, "{started}");

    // A job named like the query route is found by GET and DELETE too.
    let mut query_named = job_spec("BATCH", 1, "true");
    query_named["name"] = json!("query");
    let (status, _) = post(&s.address, "/api/v1/jobs", &json!({"spec": query_named})).await;
    assert_eq!(status, 200);
    let (status, job) = get(&s.address, "/api/v1/jobs/query").await;
    assert_eq!(
        (status, &job["job_info"]["spec"]["name"]),
        (200, &json!("query")),
        "{job}"
    );
    let (status, deleted) = call(&s.address, "DELETE", "/api/v1/jobs/query?force=true", None).await;
    assert_eq!(status, 200, "{deleted}");

    // A name that is no job's and not an id either: NOT_FOUND naming it.
    let (status, missing) = get(&s.address, "/api/v1/jobs/no%20such%20job").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("NOT_FOUND")));
    assert!(
        missing["message"].as_str().unwrap().contains("no such job"),
        "{missing}"
    );

    // A second job of the same name: the name no longer picks one job.
    let (_, second) = post(&s.address, "/api/v1/jobs", &json!({"spec": spec})).await;
    let second = second["job_id"]["value"].as_str().unwrap().to_owned();
    for (method, path) in [
        ("GET", "/api/v1/jobs/svc-named"),
        ("GET", "/api/v1/jobs/svc-named/pods"),
        ("POST", "/api/v1/jobs/svc-named/stop"),
        ("DELETE", "/api/v1/jobs/svc-named?force=true"),
    ] {
        let body = (method == "POST").then(|| b"{}".to_vec());
        let (status, refused) = call(&s.address, method, path, body).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{method} {path}: {refused}"
        );
        let message = refused["message"].as_str().unwrap();
        assert!(
            message.contains(&id) && message.contains(&second),
            "{message}"
        );
    }
    // Nothing was stopped or deleted by the refused requests.
    let (_, job) = get(&s.address, &format!("/api/v1/jobs/{second}")).await;
    assert_eq!(job["job_info"]["status"]["version"]["value"], "1", "{job}");

    // A job whose id is the others' name: the id wins.
    let mut other = spec.clone();
    other["name"] = json!("other");
    let (status, _) = post(
        &s.address,
        "/api/v1/jobs",
        &json!({"spec": other, "job_id": {"value": "svc-named"}}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, job) = get(&s.address, "/api/v1/jobs/svc-named").await;
    assert_eq!(job["job_info"]["spec"]["name"], "other", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_filters_take_short_and_proto_names_and_refuse_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let body = json!({"spec": job_spec("BATCH", 1, "true"), "job_id": {"value": "j"}});
    let (status, _) = post(&s.address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200);
    // With no master the job waits: INITIALIZED (no pod ever placed).
    let (_, job) = get(&s.address, "/api/v1/jobs/j").await;
    let state = job["job_info"]["status"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = state.strip_prefix("JOB_STATE_").unwrap().to_owned();
    for spelling in [state.clone(), short.clone(), short.to_lowercase()] {
        let (status, reply) = post(
            &s.address,
            "/api/v1/jobs/query",
            &json!({"spec": {"job_states": [spelling]}}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["pagination"]["total"], 1, "{spelling}: {reply}");
    }
    // A seed state Drover never reports is valid and matches nothing.
    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/query",
        &json!({"spec": {"job_states": ["JOB_STATE_UNINITIALIZED"]}}),
    )
    .await;
    assert_eq!((status, &reply["pagination"]["total"]), (200, &json!(0)));

    let (status, refused) = post(
        &s.address,
        "/api/v1/jobs/query",
        &json!({"spec": {"job_states": ["RUNNING", "RUNING"]}}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.job_states[1]: 'RUNING'") && message.contains("SUCCEEDED"),
        "{message}"
    );
    let (status, refused) = post(
        &s.address,
        "/api/v1/jobs/j/pods/query",
        &json!({"spec": {"pod_states": ["POD_STATE_UP"]}}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.pod_states[0]: 'POD_STATE_UP'") && message.contains("RUNNING"),
        "{message}"
    );
}
