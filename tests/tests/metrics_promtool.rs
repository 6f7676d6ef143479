//! What operators scrape: the real scheduler on the real agent-sim runs a
//! small batch job and answers a JSON and a gRPC request, then both
//! `/metrics` pages pass `promtool check metrics` (Debian's `prometheus`
//! package; `.ci/run` installs it) and the scheduler's has the families
//! operators expect, with samples: request latency by route template,
//! launch and acknowledgement latency, jobs and pods by state,
//! `build_info`, process metrics, the subscription as a labelled gauge.
//!
//! Without promtool the test fails, saying how to install it: a check
//! that silently skips would pass on a machine that checks nothing.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    job_service_client::JobServiceClient, GetJobRequest,
};
use drover_seed_api::peloton::api::v1alpha::peloton;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `promtool` on the PATH, or a failure saying how to get it.
fn promtool() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "promtool is not installed: this test checks /metrics with it. Install \
                 Debian's prometheus package: apt-get install -y --no-install-recommends \
                 prometheus (.ci/run does so before the tests)"
            )
        })
}

/// `promtool check metrics` on `text` (its stdin): None when it passes,
/// else what it said.
fn promtool_check(promtool: &PathBuf, text: &str) -> Option<String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        return None;
    }
    Some(format!(
        "promtool check metrics exited {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

async fn metrics_of(address: &str) -> String {
    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200, "{address}/metrics: {body}");
    body.as_str().unwrap().to_owned()
}

/// The value of the sample whose name and labels are `series` exactly.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_metrics_pages_pass_promtool_and_carry_what_operators_expect() {
    let promtool = promtool();
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);

    // A small job, so that launches, updates and acknowledgements happen.
    create_job(&s.address, "batch", job_spec("BATCH", 2, "sleep 0.2")).await;
    wait_for_job_state(&s.address, "batch", "JOB_STATE_SUCCEEDED", LIMIT).await;
    // A gRPC call answered NOT_FOUND.
    let mut client = JobServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let missing = client
        .get_job(GetJobRequest {
            job_id: Some(peloton::JobId {
                value: "no-such-job".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // The last acknowledgement is answered a moment after the job is done.
    let scheduler = wait_for(LIMIT, || async {
        let text = metrics_of(&s.address).await;
        (sample(&text, "drover_pending_acks") == Some(0.0)).then_some(text)
    })
    .await
    .expect("the updates acknowledged");
    let sim_text = metrics_of(&sim.address).await;

    let mut failures = Vec::new();
    if let Some(said) = promtool_check(&promtool, &scheduler) {
        failures.push(format!("the scheduler's /metrics: {said}"));
    }
    if let Some(said) = promtool_check(&promtool, &sim_text) {
        failures.push(format!("agent-sim's /metrics: {said}"));
    }
    assert!(
        failures.is_empty(),
        "{}\n--- scheduler:\n{scheduler}\n--- agent-sim:\n{sim_text}",
        failures.join("\n")
    );

    // The operator families, with samples.
    let version = env!("CARGO_PKG_VERSION");
    let want = [
        format!("drover_build_info{{version=\"{version}\"}} 1"),
        "drover_mesos_subscription{state=\"subscribed\"} 1".to_owned(),
        "drover_mesos_subscription{state=\"disconnected\"} 0".to_owned(),
        "drover_jobs{state=\"JOB_STATE_SUCCEEDED\"} 1".to_owned(),
        "drover_pods{state=\"POD_STATE_SUCCEEDED\"} 2".to_owned(),
        "drover_pods{state=\"POD_STATE_RUNNING\"} 0".to_owned(),
        "drover_launch_duration_seconds_count 2".to_owned(),
        "drover_grpc_request_duration_seconds_count{service=\"peloton.api.v1alpha.job.stateless.svc.JobService\",method=\"GetJob\",code=\"NOT_FOUND\"} 1".to_owned(),
        "drover_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/jobs\",status=\"2xx\"} 1".to_owned(),
        "drover_launches_total 2".to_owned(),
    ];
    for line in &want {
        assert!(
            scheduler.lines().any(|l| l == line),
            "wanted {line:?} in:\n{scheduler}"
        );
    }
    // Reads of the job by name are counted under the route's template,
    // never the raw path.
    let by_template = sample(
        &scheduler,
        "drover_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/jobs/{id}\",status=\"2xx\"}",
    );
    assert!(by_template.unwrap_or(0.0) >= 1.0, "{scheduler}");
    assert!(!scheduler.contains("route=\"/api/v1/jobs/batch\""));
    for family in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = sample(&scheduler, family).unwrap_or_else(|| panic!("{family}: {scheduler}"));
        assert!(
            value > 0.0 || family == "process_cpu_seconds_total",
            "{family} {value}"
        );
    }
    // The launch took less than the test's limit, and the histogram's
    // buckets are cumulative up to +Inf.
    let launch_sum = sample(&scheduler, "drover_launch_duration_seconds_sum").unwrap();
    assert!(launch_sum > 0.0 && launch_sum < 2.0 * LIMIT.as_secs_f64());
    assert_eq!(
        sample(
            &scheduler,
            "drover_launch_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(2.0)
    );
    // Every timed acknowledgement was sent; most are timed (an update
    // acknowledged twice, after a redelivery, is timed once).
    let timed = sample(&scheduler, "drover_ack_duration_seconds_count").unwrap_or(0.0);
    assert!(timed > 0.0, "{scheduler}");
    assert!(timed <= sample(&scheduler, "drover_acks_total").unwrap());
    // Families that existed before keep their names.
    for kept in [
        "drover_acks_total",
        "drover_subscription_state",
        "drover_pending_acks",
        "drover_store_writable",
        "drover_offers_received_total",
    ] {
        assert!(sample(&scheduler, kept).is_some(), "{kept}: {scheduler}");
    }

    for line in [
        "# HELP drover_sim_tasks_launched_total ",
        "# TYPE drover_sim_tasks_launched_total counter",
        "drover_sim_tasks_launched_total 2",
        "drover_sim_calls_total{type=\"ACCEPT\"} ",
    ] {
        assert!(
            sim_text.lines().any(|l| l.starts_with(line)),
            "wanted {line:?} in:\n{sim_text}"
        );
    }
}
