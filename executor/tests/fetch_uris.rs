//! `CommandInfo.uris` fetched by the real `drover-executor` binary into a
//! task's sandbox, from a real HTTP and HTTPS server on loopback (its CA
//! given through `SSL_CERT_FILE`), then run by the task. Root only
//! (tasks run in real cgroups).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drover_proto::v1::command_info::Uri;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{DurationInfo, TaskInfo, TaskState};
use http_body_util::Full;
use support::executor::{has_terminal, last, states, task, Executor};
use support::fake_agent::FakeAgent;
use support::TestParent;

/// Requests seen per path.
type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// Files the server hands out, by path.
fn files() -> HashMap<&'static str, Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let script = b"#!/bin/sh\necho hello from the archive\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "bin/hello.sh", &script[..])
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    HashMap::from([
        ("/dl/app.tar.gz", gz.finish().unwrap()),
        ("/dl/tool", b"#!/bin/sh\necho tool ran\n".to_vec()),
        ("/dl/data.json", b"{\"from\":\"https\"}\n".to_vec()),
    ])
}

fn answer(path: &str, hits: &Hits) -> http::Response<Full<Bytes>> {
    *hits.lock().unwrap().entry(path.to_string()).or_default() += 1;
    if path == "/moved" {
        return http::Response::builder()
            .status(302)
            .header("location", "/dl/tool")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    match files().remove(path) {
        Some(body) => http::Response::new(Full::new(body.into())),
        None => http::Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    }
}

/// Serves [`files`] over plain HTTP, or over TLS with `tls`.
async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, Hits) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Hits::default();
    let served = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (hits, tls) = (served.clone(), tls.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let response = answer(request.uri().path(), &hits);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                    None => {
                        let io = hyper_util::rt::TokioIo::new(socket);
                        let _ = http.serve_connection(io, service).await;
                    }
                }
            });
        }
    });
    (addr, hits)
}

/// A CA (written as PEM to `ca_file`) and a TLS acceptor whose
/// certificate it signed for 127.0.0.1.
fn tls_with_ca(ca_file: &Path) -> tokio_rustls::TlsAcceptor {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "drover fetch test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(ca_file, ca_cert.pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &rcgen::Issuer::new(ca, ca_key))
        .unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A record predicate: `id` has a terminal update.
fn terminal(id: &str) -> impl Fn(&support::fake_agent::Record) -> bool + '_ {
    move |r| {
        r.updates
            .iter()
            .any(|u| u.task_id.value == id && drover_proto::TaskStateExt::is_terminal(&u.state()))
    }
}

fn uri(value: String) -> Uri {
    Uri {
        value,
        ..Default::default()
    }
}

fn with_uris(id: &str, script: &str, uris: Vec<Uri>) -> TaskInfo {
    let mut t = task(id, script);
    t.command.as_mut().unwrap().uris = uris;
    t
}

#[tokio::test]
async fn uris_are_fetched_extracted_made_executable_and_cached_before_the_task_runs() {
    let parent = TestParent::new("fetch-ok");
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("ca.pem");
    let (http, hits) = serve(None).await;
    let (https, tls_hits) = serve(Some(tls_with_ca(&ca_file))).await;
    let local = work.path().join("local.txt");
    std::fs::write(&local, "from a local file\n").unwrap();
    let cache = work.path().join("fetcher-cache");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[
            ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
            ("DROVER_FETCHER_CACHE_DIR", cache.to_str().unwrap()),
        ],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let uris = |n: usize| {
        vec![
            // Extracted by default (a .tar.gz).
            uri(format!("http://{http}/dl/app.tar.gz")),
            // executable, through a redirect.
            Uri {
                executable: Some(true),
                output_file: Some("tools/tool".into()),
                ..uri(format!("http://{http}/moved"))
            },
            // HTTPS with the CA from SSL_CERT_FILE, cached.
            Uri {
                cache: Some(true),
                output_file: Some(format!("conf/data-{n}.json")),
                ..uri(format!("https://{https}/dl/data.json"))
            },
            uri(format!("file://{}", local.display())),
        ]
    };
    let script = "set -e; ./bin/hello.sh; ./tools/tool; cat conf/data-*.json local.txt app.tar.gz >/dev/null; cat conf/data-*.json local.txt";
    for (n, id) in ["first", "second"].into_iter().enumerate() {
        agent.launch(with_uris(id, script, uris(n)));
        agent.wait_until(id, terminal(id)).await;
    }
    let updates = agent.with_record(|r| r.updates.clone());
    for (n, id) in ["first", "second"].into_iter().enumerate() {
        let end = last(&updates, id);
        assert_eq!(
            end.state(),
            TaskState::TaskFinished,
            "{id}: {:?}\n{}",
            end.message,
            executor.log()
        );
        let sandbox = executor
            .sandbox
            .path()
            .join("tasks")
            .join(format!("task.{id}"));
        let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
        assert_eq!(
            stdout, "hello from the archive\ntool ran\n{\"from\":\"https\"}\nfrom a local file\n",
            "{id}"
        );
        assert!(sandbox.join(format!("conf/data-{n}.json")).is_file());
    }
    // The cached URI went over the network once for both tasks; the others
    // were fetched for each task.
    assert_eq!(tls_hits.lock().unwrap().get("/dl/data.json"), Some(&1));
    assert_eq!(hits.lock().unwrap().get("/dl/app.tar.gz"), Some(&2));
    assert_eq!(hits.lock().unwrap().get("/dl/tool"), Some(&2));
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_uri_that_cannot_be_fetched_fails_the_task_naming_it_and_nothing_runs() {
    let parent = TestParent::new("fetch-bad");
    let work = tempfile::tempdir().unwrap();
    let (http, _hits) = serve(None).await;
    // Its CA is written but never given to the executor.
    let (https, _) = serve(Some(tls_with_ca(&work.path().join("ca.pem")))).await;
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let cases = [
        (
            "missing",
            format!("http://{http}/dl/nothing-here.tgz"),
            "404",
        ),
        // No CA for this server's certificate: the system's roots refuse it.
        (
            "untrusted",
            format!("https://{https}/dl/data.json"),
            "certificate",
        ),
        ("scheme", "hdfs://namenode/x".to_string(), "'hdfs'"),
        (
            "local",
            "/no/such/drover/file".to_string(),
            "not a readable file",
        ),
    ];
    for (id, value, _) in &cases {
        agent.launch(with_uris(id, "touch ran", vec![uri(value.clone())]));
    }
    for (id, _, _) in &cases {
        agent.wait_until(id, terminal(id)).await;
    }
    let updates = agent.with_record(|r| r.updates.clone());
    for (id, value, why) in &cases {
        let end = last(&updates, id);
        assert_eq!(end.state(), TaskState::TaskFailed, "{id}");
        assert_eq!(
            end.reason,
            Some(Reason::ContainerLaunchFailed as i32),
            "{id}"
        );
        let message = end.message.unwrap();
        assert!(message.contains(value.as_str()), "{id}: {message}");
        assert!(message.contains(why), "{id}: {message}");
        assert_eq!(
            states(&updates, id),
            vec![TaskState::TaskStarting, TaskState::TaskFailed],
            "{id}"
        );
        let sandbox = executor
            .sandbox
            .path()
            .join("tasks")
            .join(format!("task.{id}"));
        assert!(!sandbox.join("ran").exists(), "{id}: the task ran");
    }
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_task_past_its_max_completion_time_is_killed_and_fails_with_the_reason() {
    let parent = TestParent::new("max-completion");
    let agent = FakeAgent::start(true, true).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    // It ignores SIGTERM: only the zero-grace SIGKILL ends it in time.
    let mut slow = task("slow", "trap '' TERM; sleep 60");
    slow.max_completion_time = Some(DurationInfo {
        nanoseconds: 1_000_000_000,
    });
    slow.kill_policy = Some(drover_proto::v1::KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 30_000_000_000,
        }),
    });
    let started = std::time::Instant::now();
    agent.launch(slow);
    agent.wait_until("slow", has_terminal("slow")).await;
    let took = started.elapsed();
    let updates = agent.with_record(|r| r.updates.clone());
    let end = last(&updates, "slow");
    assert_eq!(end.state(), TaskState::TaskFailed, "{:?}", end.message);
    assert_eq!(end.reason, Some(Reason::MaxCompletionTimeReached as i32));
    assert!(
        took < Duration::from_secs(10),
        "killed after {took:?}: the kill policy's grace was not ignored"
    );
    assert_eq!(
        states(&updates, "slow"),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskFailed
        ]
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}

#[tokio::test]
async fn the_fetcher_cache_keeps_its_bound_by_evicting_the_least_recently_used() {
    let parent = TestParent::new("fetch-cache");
    let work = tempfile::tempdir().unwrap();
    let (http, hits) = serve(None).await;
    let cache = work.path().join("fetcher-cache");
    let agent = FakeAgent::start(true, false).await;
    // Room for one entry: each new one evicts the other.
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[
            ("DROVER_FETCHER_CACHE_DIR", cache.to_str().unwrap()),
            ("DROVER_FETCHER_CACHE_MAX_BYTES", "30"),
        ],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let cached = |path: &str| Uri {
        cache: Some(true),
        ..uri(format!("http://{http}{path}"))
    };
    for (id, path) in [
        ("a", "/dl/data.json"),
        ("b", "/dl/tool"),
        ("c", "/dl/data.json"),
    ] {
        agent.launch(with_uris(
            id,
            "test -s data.json || test -s tool",
            vec![cached(path)],
        ));
        agent.wait_until(id, terminal(id)).await;
        let end = last(&agent.with_record(|r| r.updates.clone()), id);
        assert_eq!(
            end.state(),
            TaskState::TaskFinished,
            "{id}: {:?}",
            end.message
        );
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            1,
            "{id}: the cache holds one entry"
        );
    }
    // data.json was evicted by tool, so the third task downloaded it again.
    assert_eq!(hits.lock().unwrap().get("/dl/data.json"), Some(&2));
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}
