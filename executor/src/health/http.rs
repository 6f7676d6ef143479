//! HTTP health check: `GET http://127.0.0.1:<port><path>`; a status from 200
//! to 399 is healthy (Mesos counts any status < 200 or >= 400 as failure).

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

impl Probe for HttpProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            let mut stream = match tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                Ok(stream) => stream,
                Err(e) => {
                    return Outcome::Unhealthy(format!(
                        "connecting to 127.0.0.1:{}: {e}",
                        self.port
                    ))
                }
            };
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: drover-health-check\r\nConnection: close\r\n\r\n",
                self.path, self.port
            );
            if let Err(e) = stream.write_all(request.as_bytes()).await {
                return Outcome::Unhealthy(format!("sending the health check request: {e}"));
            }
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.contains(&b'\n') && head.len() < MAX_HEAD_BYTES {
                match stream.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        return Outcome::Unhealthy(format!(
                            "reading the health check response: {e}"
                        ))
                    }
                }
            }
            match status_code(&head) {
                Some(code) if (200..400).contains(&code) => Outcome::Healthy,
                Some(code) => Outcome::Unhealthy(format!("HTTP health check returned {code}")),
                None => Outcome::Unhealthy("HTTP health check got no valid status line".into()),
            }
        })
    }
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
}
