//! API request rates with the port's security off and on, in one run:
//! JSON reads on a kept connection, JSON reads each on a new connection
//! (where a TLS handshake is paid every time), and gRPC `GetJob` on one
//! HTTP/2 connection, for every [`Variant`] of the scheduler. Every variant
//! runs its own scheduler against one agent-sim, all at once, and the
//! variants take turns in blocks, so a slow spell of a shared machine falls
//! on all of them; each rate is then reported as a ratio of the first
//! variant's (plain HTTP, no authentication).
//!
//! A variant is data (extra scheduler flags, a header on every request,
//! TLS or not): "authentication on" is one more entry in [`variants`].

use crate::fleet::Fleet;
use crate::scenarios::Bench;
use anyhow::{bail, Context};
use bytes::Bytes;
use drover_scheduler::auth::credentials;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_client::JobServiceClient;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::GetJobRequest;
use drover_seed_api::peloton::api::v1alpha::peloton::JobId;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// The scenario's name in the report.
pub const SCENARIO: &str = "api security";

/// Requests per block, and blocks per variant and kind.
const BLOCK: usize = 300;
const BLOCKS: usize = 3;

/// One way of running the scheduler and calling it.
pub struct Variant {
    /// Its name in the report.
    pub name: &'static str,
    /// Flags added to the scheduler's.
    pub scheduler_args: Vec<String>,
    /// A header every request carries (name, value), e.g. credentials.
    pub header: Option<(String, String)>,
    /// Whether the port serves TLS: the clients then trust the bench's CA.
    pub tls: bool,
}

/// The bench's certificates: a CA and a server certificate for
/// `127.0.0.1` it signed, as PEM files in the fleet's directory.
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// A credentials file with one admin, [`TOKEN`] and [`PASSWORD`].
    pub credentials: PathBuf,
}

/// The bench admin's bearer token and password.
const TOKEN: &str = "bench-admin-token";
const PASSWORD: &str = "bench-admin-password";

impl Pki {
    fn new(fleet: &Fleet) -> anyhow::Result<Pki> {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&key, &issuer)?;
        let pki = Pki {
            ca: fleet.path("bench-ca.pem"),
            cert: fleet.path("bench-server.pem"),
            key: fleet.path("bench-server-key.pem"),
            credentials: fleet.path("bench-credentials.yaml"),
        };
        let hash = credentials::hash_password(PASSWORD)
            .map_err(|e| anyhow::anyhow!("hashing the bench password: {e}"))?;
        std::fs::write(
            &pki.credentials,
            format!(
                "users:\n  - name: bench\n    role: admin\n    tokens: [{}]\n    password: '{hash}'\n",
                credentials::digest_text(TOKEN)
            ),
        )?;
        std::fs::write(&pki.ca, issuer.pem())?;
        std::fs::write(&pki.cert, cert.pem())?;
        std::fs::write(&pki.key, key.serialize_pem())?;
        Ok(pki)
    }

    /// The scheduler flags that authenticate by the credentials file.
    fn auth_args(&self) -> Vec<String> {
        vec![
            "--credentials-file".into(),
            self.credentials.display().to_string(),
        ]
    }

    /// The scheduler flags that serve TLS with this certificate.
    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// The variants; the first is the baseline the others are ratios of.
fn variants(pki: &Pki) -> Vec<Variant> {
    vec![
        Variant {
            name: "plain",
            scheduler_args: Vec::new(),
            header: None,
            tls: false,
        },
        Variant {
            name: "TLS",
            scheduler_args: pki.server_args(),
            header: None,
            tls: true,
        },
        Variant {
            name: "token",
            scheduler_args: pki.auth_args(),
            header: Some(("authorization".into(), format!("Bearer {TOKEN}"))),
            tls: false,
        },
        Variant {
            name: "TLS+token",
            scheduler_args: [pki.server_args(), pki.auth_args()].concat(),
            header: Some(("authorization".into(), format!("Bearer {TOKEN}"))),
            tls: true,
        },
        // HTTP basic: argon2 once, then the remembered check.
        Variant {
            name: "TLS+basic",
            scheduler_args: [pki.server_args(), pki.auth_args()].concat(),
            header: Some(("authorization".into(), basic_header())),
            tls: true,
        },
    ]
}

fn basic_header() -> String {
    use base64::Engine;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("bench:{PASSWORD}"));
    format!("Basic {pair}")
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One variant's scheduler and clients.
struct Target {
    variant: Variant,
    /// `http(s)://ADDR`.
    api: String,
    _scheduler: crate::drover::Drover,
    /// Keeps its connections.
    kept: HttpClient,
    /// Opens a new connection for every request.
    fresh: HttpClient,
    grpc: JobServiceClient<Channel>,
    /// The job every read reads.
    job_id: String,
}

/// What is measured, in the report's words.
const KINDS: [&str; 3] = ["JSON GET/s", "JSON GET new connection/s", "gRPC GetJob/s"];

impl Bench {
    /// Every variant's scheduler over one fleet of `agents`.
    pub async fn api_security(&mut self, agents: usize) -> anyhow::Result<()> {
        let fleet = self.launcher.fleet(agents)?;
        let pki = Pki::new(&fleet)?;
        let mut targets = Vec::new();
        for (i, variant) in variants(&pki).into_iter().enumerate() {
            targets.push(self.target(&fleet, &pki, i, variant).await?);
        }
        // Per target, per kind: request times in seconds.
        let mut took = vec![vec![Vec::<f64>::new(); KINDS.len()]; targets.len()];
        for _ in 0..BLOCKS {
            for (t, target) in targets.iter_mut().enumerate() {
                for (k, times) in took[t].iter_mut().enumerate() {
                    for _ in 0..BLOCK {
                        let started = Instant::now();
                        tokio::time::timeout(self.launcher.timeout, target.request(k))
                            .await
                            .with_context(|| {
                                format!("{}: a request timed out", target.variant.name)
                            })??;
                        times.push(started.elapsed().as_secs_f64());
                    }
                }
            }
        }
        let baseline = targets[0].variant.name;
        let r = &mut self.report;
        for (target, times) in targets.iter().zip(&took) {
            let name = target.variant.name;
            for (kind, times) in KINDS.iter().zip(times) {
                let total: f64 = times.iter().sum();
                let rate = if total > 0.0 {
                    times.len() as f64 / total
                } else {
                    0.0
                };
                r.add(SCENARIO, &format!("{name} {kind}"), rate, "requests/s");
            }
        }
        for target in targets.iter().skip(1) {
            let name = target.variant.name;
            for kind in KINDS {
                r.ratio(
                    SCENARIO,
                    &format!("{name} {kind} of {baseline}"),
                    (SCENARIO, &format!("{name} {kind}")),
                    (SCENARIO, &format!("{baseline} {kind}")),
                );
            }
        }
        Ok(())
    }

    /// Starts variant `i`'s scheduler and its clients, and creates the job
    /// they read.
    async fn target(
        &self,
        fleet: &Fleet,
        pki: &Pki,
        i: usize,
        variant: Variant,
    ) -> anyhow::Result<Target> {
        let mut args: Vec<String> = vec!["--framework-name".into(), format!("bench-security-{i}")];
        args.extend(variant.scheduler_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let scheduler = self.launcher.drover_with(
            fleet,
            &fleet.path(&format!("security-data-{i}")),
            &format!("security-scheduler-{i}.log"),
            &args,
        )?;
        let api = scheduler.api.clone();
        let tls = if variant.tls {
            drover_scheduler::tls::client::client_config(Some(&pki.ca))?
        } else {
            None
        };
        let connector = drover_scheduler::tls::client::https_connector(tls, Duration::from_secs(5));
        let kept = Client::builder(TokioExecutor::new()).build(connector.clone());
        let fresh = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        let mut endpoint = Channel::from_shared(api.clone())?;
        if variant.tls {
            endpoint = endpoint.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca)?))
                    .domain_name("127.0.0.1"),
            )?;
        }
        let grpc = JobServiceClient::new(endpoint.connect().await.context("gRPC connect")?);
        let mut target = Target {
            variant,
            api,
            _scheduler: scheduler,
            kept,
            fresh,
            grpc,
            job_id: String::new(),
        };
        target.job_id = target.create_job(self.launcher.timeout).await?;
        Ok(target)
    }
}

impl Target {
    /// One request of kind `k` (see [`KINDS`]).
    async fn request(&mut self, k: usize) -> anyhow::Result<()> {
        let path = format!("/api/v1/jobs/{}", self.job_id);
        match k {
            0 | 1 => {
                let client = if k == 0 { &self.kept } else { &self.fresh };
                let (status, body) = self.exchange(client, "GET", &path, Bytes::new()).await?;
                if status != 200 || body.is_empty() {
                    bail!("{}: GET {path} answered {status}", self.variant.name);
                }
            }
            _ => {
                let mut request = tonic::Request::new(GetJobRequest {
                    job_id: Some(JobId {
                        value: self.job_id.clone(),
                    }),
                    ..Default::default()
                });
                if let Some((name, value)) = &self.variant.header {
                    let name = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())?;
                    request.metadata_mut().insert(name, value.parse()?);
                }
                self.grpc.get_job(request).await.context("gRPC GetJob")?;
            }
        }
        Ok(())
    }

    async fn exchange(
        &self,
        client: &HttpClient,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api))
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some((name, value)) = &self.variant.header {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = client.request(request.body(Full::new(body))?).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Waits for the scheduler to subscribe, then creates the job read.
    async fn create_job(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, body)) = self
                .exchange(&self.kept, "GET", "/health", Bytes::new())
                .await
            {
                let health: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if health["subscribed"] == true {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: the scheduler did not subscribe within {timeout:?}",
                    self.variant.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let spec = json!({"spec": {"type": "SERVICE", "name": "read-me",
            "instance_count": 1, "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.01, "mem_limit_mb": 32},
                "command": {"value": "sleep 3600"}}]}}});
        let (status, body) = self
            .exchange(
                &self.kept,
                "POST",
                "/api/v1/jobs",
                Bytes::from(spec.to_string()),
            )
            .await?;
        let created: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match created["job_id"]["value"].as_str() {
            Some(id) if status == 200 => Ok(id.to_owned()),
            _ => bail!(
                "{}: creating the job answered {status}: {created}",
                self.variant.name
            ),
        }
    }
}
