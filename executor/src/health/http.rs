//! HTTP health check: `GET http://127.0.0.1:<port><path>` (`[::1]` for
//! `protocol: IPv6`; or `https://`,
//! its certificate not verified, as Mesos' `curl -k`: see
//! [`super::insecure_tls`]); a status from 200 to 399 is healthy (Mesos
//! counts any status < 200 or >= 400 as failure).

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Outcome, Probe};

/// The most response bytes read to find the status line.
const MAX_HEAD_BYTES: usize = 8192;

/// GETs a path on a loopback port.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    /// The task's port.
    pub port: u16,
    /// The path, starting with `/` (default `/`).
    pub path: String,
    /// `https`: the check speaks TLS (HealthCheck.http.scheme).
    pub https: bool,
    /// Check `::1` instead of `127.0.0.1` (`HTTPCheckInfo.protocol` IPv6).
    pub ipv6: bool,
}

/// Parses `HTTP/1.x <code> ...` from the start of a response.
pub fn status_code(head: &[u8]) -> Option<u16> {
    let line_end = head.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

impl HttpProbe {
    /// GETs the path once: the answer's status code, or why there was
    /// none. A readiness check reports the code itself (Mesos
    /// `CheckStatusInfo.Http.status_code`).
    pub async fn status(&self) -> Result<u16, String> {
        let ip = super::loopback(self.ipv6);
        let target = std::net::SocketAddr::new(ip, self.port);
        let stream = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| format!("connecting to {target}: {e}"))?;
        // `SocketAddr` displays `[::1]:port`, the Host header's form.
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: drover-health-check\r\nConnection: close\r\n\r\n",
            self.path
        );
        if !self.https {
            return exchange(stream, &request).await;
        }
        let connector =
            super::insecure_tls::connector().map_err(|e| format!("HTTPS health check: {e}"))?;
        let loopback = rustls::pki_types::ServerName::IpAddress(ip.into());
        match connector.connect(loopback, stream).await {
            Ok(tls) => exchange(tls, &request).await,
            Err(e) => Err(format!("HTTPS health check handshake: {e}")),
        }
    }
}

impl Probe for HttpProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            match self.status().await {
                Ok(code) if (200..400).contains(&code) => Outcome::Healthy,
                Ok(code) => Outcome::Unhealthy(format!("HTTP health check returned {code}")),
                Err(e) => Outcome::Unhealthy(e),
            }
        })
    }
}

/// Sends `request` on `stream` and reads the status line of the answer.
async fn exchange<S>(mut stream: S, request: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the health check request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < MAX_HEAD_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("reading the health check response: {e}")),
        }
    }
    status_code(&head).ok_or_else(|| "HTTP health check got no valid status line".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_and_garbage_does_not() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 503 Busy\r\n\r\n"), Some(503));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 200"), None);
    }

    async fn serve_once(status: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
        });
        port
    }

    #[tokio::test]
    async fn statuses_200_to_399_are_healthy_and_others_are_not() {
        for (status, healthy) in [
            ("200 OK", true),
            ("302 Found", true),
            ("404 Not Found", false),
            ("500 Oops", false),
        ] {
            let port = serve_once(status).await;
            let outcome = HttpProbe {
                port,
                path: "/health".into(),
                https: false,
                ipv6: false,
            }
            .check()
            .await;
            assert_eq!(
                outcome == Outcome::Healthy,
                healthy,
                "{status}: {outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_ipv6_check_gets_the_ipv6_loopback_with_its_host_header() {
        let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, peer) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
            (peer, String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        let probe = HttpProbe {
            port,
            path: "/ready".into(),
            https: false,
            ipv6: true,
        };
        assert_eq!(probe.check().await, Outcome::Healthy);
        let (peer, request) = server.await.unwrap();
        assert!(peer.ip().is_loopback() && peer.is_ipv6(), "{peer}");
        assert!(
            request.contains(&format!("Host: [::1]:{port}\r\n")),
            "{request}"
        );
    }

    /// A self-signed certificate for another name, as a task's own often
    /// is: Mesos' `curl -k` does not verify it, and neither do we.
    #[tokio::test]
    async fn https_checks_speak_tls_and_do_not_verify_the_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["task.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        #[allow(deprecated)]
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for status in ["200 OK", "503 Busy"] {
                let (socket, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(socket).await.unwrap();
                let mut buf = [0u8; 1024];
                let n = tls.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /health HTTP/1.1"));
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                tls.write_all(answer.as_bytes()).await.unwrap();
                let _ = tls.shutdown().await;
            }
        });
        let probe = HttpProbe {
            port,
            path: "/health".into(),
            https: true,
            ipv6: false,
        };
        assert_eq!(probe.check().await, Outcome::Healthy);
        assert_eq!(
            probe.check().await,
            Outcome::Unhealthy("HTTP health check returned 503".into())
        );
        // Plain HTTP to a TLS port is not healthy.
        let plain = HttpProbe {
            https: false,
            ..probe
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = HttpProbe {
            port: listener.local_addr().unwrap().port(),
            ..plain
        };
        drop(listener);
        assert_ne!(plain.check().await, Outcome::Healthy);
    }
}
