//! API round trips: a client creating a job and reading it back, through
//! Peloton's gRPC `JobService` (`CreateJob` + `GetJob`, tonic's generated
//! client over one HTTP/2 connection) and through Drover's JSON API
//! (`POST /api/v1/jobs` + `GET /api/v1/jobs/{id}`, HTTP/1.1 keep-alive),
//! one call after another as a user's script makes them. The two faces run
//! in alternating blocks against the same scheduler, so a slow spell of a
//! shared machine falls on both; the gRPC figure is reported as a multiple
//! of the JSON one.

use crate::scenarios::Bench;
use crate::stats::percentile;
use anyhow::{bail, Context};
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_client::JobServiceClient;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    CreateJobRequest, GetJobRequest,
};
use drover_seed_api::peloton::api::v1alpha::job::stateless::JobSpec;
use drover_seed_api::peloton::api::v1alpha::pod::{ContainerSpec, PodSpec, ResourceSpec};
use serde_json::json;
use std::time::{Duration, Instant};

/// Round trips per block, and blocks per face.
const BLOCK: usize = 200;
const BLOCKS: usize = 3;

/// The scenario's name in the report.
pub const SCENARIO: &str = "api round trips";

impl Bench {
    /// Both faces on one scheduler over `agents` simulated agents.
    pub async fn api_faces(&mut self, agents: usize) -> anyhow::Result<()> {
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let drover = self
            .launcher
            .drover(&fleet, &fleet.path("drover-data"), "scheduler.log")?;
        drover.wait_subscribed(&self.http, timeout).await?;
        let mut grpc = JobServiceClient::connect(drover.api.clone())
            .await
            .context("connecting the gRPC client")?;
        let (mut on_grpc, mut on_json) = (Latencies::default(), Latencies::default());
        let mut n = 0;
        for _ in 0..BLOCKS {
            for _ in 0..BLOCK {
                n += 1;
                let started = Instant::now();
                tokio::time::timeout(timeout, grpc_round_trip(&mut grpc, n))
                    .await
                    .context("a gRPC round trip timed out")??;
                on_grpc.push(started.elapsed());
            }
            for _ in 0..BLOCK {
                n += 1;
                let started = Instant::now();
                tokio::time::timeout(timeout, self.json_round_trip(&drover.api, n))
                    .await
                    .context("a JSON round trip timed out")??;
                on_json.push(started.elapsed());
            }
        }
        let r = &mut self.report;
        for (face, latencies) in [("gRPC", &on_grpc), ("JSON", &on_json)] {
            r.add(
                SCENARIO,
                &format!("{face} create+get/s"),
                latencies.per_sec(),
                "round trips/s",
            );
            r.add(
                SCENARIO,
                &format!("{face} p50"),
                latencies.percentile(50.0) * 1e3,
                "ms",
            );
            r.add(
                SCENARIO,
                &format!("{face} p99"),
                latencies.percentile(99.0) * 1e3,
                "ms",
            );
        }
        r.ratio(
            SCENARIO,
            "gRPC multiple of JSON",
            (SCENARIO, "gRPC create+get/s"),
            (SCENARIO, "JSON create+get/s"),
        );
        Ok(())
    }

    async fn json_round_trip(&self, api: &str, n: usize) -> anyhow::Result<()> {
        let spec = json!({"spec": {"type": "SERVICE", "name": format!("json-{n}"),
            "instance_count": 1, "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.01, "mem_limit_mb": 32},
                "command": {"value": "sleep 3600"}}]}}});
        let created = self
            .http
            .post_json(&format!("{api}/api/v1/jobs"), &spec)
            .await?;
        let Some(id) = created["job_id"]["value"].as_str() else {
            bail!("the JSON API created no job: {created}");
        };
        let got = self
            .http
            .get_json(&format!("{api}/api/v1/jobs/{id}"))
            .await?;
        if got["job_info"]["job_id"]["value"] != id {
            bail!("the JSON API read back another job: {got}");
        }
        Ok(())
    }
}

async fn grpc_round_trip(
    client: &mut JobServiceClient<tonic::transport::Channel>,
    n: usize,
) -> anyhow::Result<()> {
    let spec = JobSpec {
        name: format!("grpc-{n}"),
        instance_count: 1,
        default_spec: Some(PodSpec {
            containers: vec![ContainerSpec {
                resource: Some(ResourceSpec {
                    cpu_limit: 0.01,
                    mem_limit_mb: 32.0,
                    ..Default::default()
                }),
                command: Some(drover_proto::v1::CommandInfo {
                    value: Some("sleep 3600".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = client
        .create_job(CreateJobRequest {
            spec: Some(spec),
            ..Default::default()
        })
        .await
        .context("gRPC CreateJob")?
        .into_inner();
    let got = client
        .get_job(GetJobRequest {
            job_id: created.job_id.clone(),
            ..Default::default()
        })
        .await
        .context("gRPC GetJob")?
        .into_inner();
    let read = got.job_info.and_then(|info| info.job_id).map(|id| id.value);
    if read != created.job_id.map(|id| id.value) {
        bail!("gRPC GetJob read back another job");
    }
    Ok(())
}

/// Round-trip times of one face, in seconds.
#[derive(Default)]
struct Latencies(Vec<f64>);

impl Latencies {
    fn push(&mut self, took: Duration) {
        self.0.push(took.as_secs_f64());
    }

    /// Round trips per second of time spent in them.
    fn per_sec(&self) -> f64 {
        let total: f64 = self.0.iter().sum();
        if total > 0.0 {
            self.0.len() as f64 / total
        } else {
            0.0
        }
    }

    /// The `p`-th percentile (0..=100), in seconds.
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        percentile(&sorted, p)
    }
}
