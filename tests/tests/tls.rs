//! The scheduler's API port over TLS, as its users reach it: curl (HTTP/2
//! and HTTP/1.1 by ALPN) and a tonic gRPC client trusting the test CA, a
//! plain-HTTP client told to use https, a renewed certificate served to
//! new connections without a restart (and a broken one not), and a
//! verified client certificate's name in the request's extensions.
#![allow(clippy::unwrap_used)]

use drover_scheduler::api::serve::{serve, ServeConfig};
use drover_scheduler::api::tls::ClientCertName;
use drover_scheduler::tls::reload::ReloadingServerConfig;
use drover_scheduler::tls::server::ServerTlsFiles;
use drover_seed_api::titus::job_management_service_client::JobManagementServiceClient;
use drover_seed_api::titus::{JobQuery, Page};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::job_api::job_spec;
use drover_tests::harness::pki::{CertFiles, TestCa};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const LIMIT: Duration = Duration::from_secs(30);

/// A scheduler against agent-sim, its API port on TLS with `server`.
fn tls_scheduler(dir: &Path, sim: &AgentSim, server: &CertFiles, extra: &[&str]) -> Scheduler {
    let mut args = vec![
        "--tls-cert",
        server.cert.to_str().unwrap(),
        "--tls-key",
        server.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Scheduler::start(&dir.join("data"), &format!("http://{}", sim.address), &args)
}

/// curl's answer to `args`: (exit code, stdout, stderr).
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON body and HTTP version curl reports for GET `url`.
fn curl_json(ca: &Path, url: &str, version: &str) -> (Value, String) {
    let (code, out, err) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        version,
        "-w",
        "\n%{http_version}",
        url,
    ]);
    assert_eq!(code, 0, "curl {url}: {err}");
    let (body, http_version) = out.rsplit_once('\n').unwrap();
    (
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{url}: {e}: {body}")),
        http_version.to_owned(),
    )
}

#[tokio::test]
async fn curl_gets_json_over_https_with_the_ca_on_http2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(dir.path(), &sim, &server, &[]);
    let base = format!("https://{}", s.address);

    let (health, version) = curl_json(&ca.ca_file, &format!("{base}/health"), "--http2");
    assert_eq!(version, "2", "ALPN chose h2");
    assert!(health.get("subscribed").is_some(), "{health}");
    let (jobs, version) = curl_json(&ca.ca_file, &format!("{base}/api/v1/jobs"), "--http1.1");
    assert_eq!(version, "1.1");
    assert!(jobs.is_object() || jobs.is_array(), "{jobs}");

    // A job created over https runs.
    let create =
        json!({"job_id": {"value": "over-tls"}, "spec": job_spec("SERVICE", 1, "sleep 600")});
    let (code, out, err) = curl(&[
        "--cacert",
        ca.ca_file.to_str().unwrap(),
        "-H",
        "content-type: application/json",
        "-d",
        &create.to_string(),
        &format!("{base}/api/v1/jobs"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(serde_json::from_str::<Value>(&out).is_ok(), "{out}");
    let running = wait_for(LIMIT, || async {
        let (job, _) = curl_json(
            &ca.ca_file,
            &format!("{base}/api/v1/jobs/over-tls"),
            "--http2",
        );
        (job["job_info"]["status"]["state"] == "JOB_STATE_RUNNING").then_some(())
    })
    .await;
    assert!(running.is_some(), "the job created over https did not run");

    // Without the CA, curl refuses the certificate (exit 60).
    let (code, _, err) = curl(&[&format!("{base}/health")]);
    assert_eq!(code, 60, "{err}");
}

#[tokio::test]
async fn a_plain_http_client_on_the_tls_port_is_told_to_use_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(dir.path(), &sim, &server, &[]);

    let (code, out, err) = curl(&[
        "-w",
        "\n%{http_code}",
        &format!("http://{}/health", s.address),
    ]);
    assert_eq!(code, 0, "{err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "400");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "INVALID_ARGUMENT");
    assert!(
        body["message"].as_str().unwrap().contains("https://"),
        "{body}"
    );

    // A plaintext gRPC client (h2c) fails with an error, promptly.
    let plain = tokio::time::timeout(
        LIMIT,
        JobManagementServiceClient::connect(format!("http://{}", s.address)),
    )
    .await
    .unwrap();
    if let Ok(mut client) = plain {
        let answer = tokio::time::timeout(LIMIT, client.find_jobs(query())).await;
        assert!(matches!(answer, Ok(Err(_))), "plaintext gRPC must fail");
    }
}

fn query() -> JobQuery {
    JobQuery {
        page: Some(Page {
            page_number: 0,
            page_size: 10,
            cursor: String::new(),
        }),
        filtering_criteria: Default::default(),
        fields: Vec::new(),
    }
}

#[tokio::test]
async fn grpc_works_over_tls_with_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(dir.path(), &sim, &server, &[]);
    let port = s.address.rsplit(':').next().unwrap();

    let pem = std::fs::read(&ca.ca_file).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(LIMIT)
        .connect()
        .await
        .unwrap();
    let mut client = JobManagementServiceClient::new(channel);
    let found = client.find_jobs(query()).await.unwrap().into_inner();
    assert!(found.items.is_empty());
}

/// The certificate the server at `address` sends to a new connection.
async fn served_certificate(address: &str, ca: &Path) -> Result<Vec<u8>, String> {
    let config = client_config(ca, None);
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    Ok(chain.first().map(|c| c.to_vec()).unwrap_or_default())
}

fn client_config(ca: &Path, client: Option<&CertFiles>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match client {
        None => builder.with_no_client_auth(),
        Some(files) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&files.cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&files.key).unwrap(),
            )
            .unwrap(),
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let first = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(
        dir.path(),
        &sim,
        &first,
        &["--tls-reload-interval", "100ms"],
    );
    assert_eq!(
        served_certificate(&s.address, &ca.ca_file).await.unwrap(),
        first.der
    );

    // Renewed in place: new connections get the new certificate.
    let renewed = ca.server("renewed");
    std::fs::copy(&renewed.key, &first.key).unwrap();
    std::fs::copy(&renewed.cert, &first.cert).unwrap();
    let served = wait_for(LIMIT, || async {
        (served_certificate(&s.address, &ca.ca_file).await.ok() == Some(renewed.der.clone()))
            .then_some(())
    })
    .await;
    assert!(served.is_some(), "the renewed certificate was not served");

    // A key that is not PEM: logged, and the renewed pair kept.
    std::fs::write(&first.key, "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        served_certificate(&s.address, &ca.ca_file).await.unwrap(),
        renewed.der
    );
}

/// An API port served in this process whose one route answers with the
/// request's [`ClientCertName`].
async fn echo_client_cert_name(files: ServerTlsFiles) -> String {
    let (tls, _) = ReloadingServerConfig::load(files).unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|name: Option<axum::Extension<ClientCertName>>| async move {
            name.map_or_else(|| "none".to_owned(), |n| n.0 .0)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(
        listener,
        app,
        ServeConfig::default(),
        Some(Arc::new(tls)),
        std::future::pending(),
    ));
    address
}

/// GET / over TLS (HTTP/1.1), presenting `client` if given.
async fn get_name(address: &str, ca: &Path, client: Option<&CertFiles>) -> Result<String, String> {
    let mut config = client_config(ca, client);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::get("/")
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_verified_client_certificates_name_reaches_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let clients = TestCa::new(dir.path(), "clients");
    let server = ca.server("server");
    let alice = clients.client("alice", "alice@example.test");
    let address = echo_client_cert_name(ServerTlsFiles {
        cert: server.cert.clone(),
        key: server.key.clone(),
        client_ca: Some(clients.ca_file.clone()),
    })
    .await;

    assert_eq!(
        get_name(&address, &ca.ca_file, Some(&alice)).await.unwrap(),
        "alice@example.test"
    );
    // Optional: a client without a certificate is served, unnamed.
    assert_eq!(get_name(&address, &ca.ca_file, None).await.unwrap(), "none");
    // A certificate the client CA did not sign ends the handshake.
    let mallory = ca.client("mallory", "mallory");
    assert!(get_name(&address, &ca.ca_file, Some(&mallory))
        .await
        .is_err());
}

/// `drover --addr https://...` with `args`: (exit code, stdout, stderr).
fn drover_cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::task::block_in_place(|| {
        Command::new(drover_tests::harness::binaries::drover())
            .args(args)
            .env_remove("DROVER_ADDR")
            .env_remove("DROVER_CA_FILE")
            .output()
            .unwrap()
    });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_https_with_its_ca_file_and_says_which_flag_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(dir.path(), &sim, &server, &[]);
    let addr = format!("https://{}", s.address);

    let spec = dir.path().join("job.json");
    std::fs::write(&spec, job_spec("BATCH", 1, "sleep 1").to_string()).unwrap();
    let ca_file = ca.ca_file.to_str().unwrap();
    let (code, out, err) = drover_cli(&[
        "--addr",
        &addr,
        "--ca-file",
        ca_file,
        "job",
        "create",
        spec.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = drover_cli(&["--addr", &addr, "--ca-file", ca_file, "job", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("BATCH-test"), "{out}");

    let (code, _, err) = drover_cli(&["--addr", &addr, "job", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--ca-file") && err.contains("DROVER_CA_FILE"),
        "{err}"
    );

    // A CA that did not sign the scheduler's certificate: refused, saying why.
    let other = TestCa::new(dir.path(), "other");
    let (code, _, err) = drover_cli(&[
        "--addr",
        &addr,
        "--ca-file",
        other.ca_file.to_str().unwrap(),
        "job",
        "list",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_or_stalled_tls_client_is_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let sim = AgentSim::for_scheduler(1).start();
    let s = tls_scheduler(
        dir.path(),
        &sim,
        &server,
        &["--header-read-timeout", "1secs"],
    );
    // Silent, and a handshake record's first byte and nothing more.
    for first in [&b""[..], &[0x16u8][..]] {
        let mut stream = tokio::net::TcpStream::connect(&s.address).await.unwrap();
        stream.write_all(first).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the connection was not closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
    // The port still serves.
    assert!(served_certificate(&s.address, &ca.ca_file).await.is_ok());
}
