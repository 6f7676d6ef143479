//! TCP health check: a connect to `127.0.0.1:<port>` (or `[::1]:<port>`
//! for `protocol: IPv6`) that succeeds is healthy.

use std::future::Future;
use std::pin::Pin;

use super::{Outcome, Probe};

/// Connects to a loopback port.
#[derive(Debug, Clone, Copy)]
pub struct TcpProbe {
    /// The task's port.
    pub port: u16,
    /// Check `::1` instead of `127.0.0.1` (`TCPCheckInfo.protocol` IPv6).
    pub ipv6: bool,
}

impl TcpProbe {
    /// Connects once: whether it succeeded, or why not.
    pub async fn connect(&self) -> Result<(), String> {
        let target = std::net::SocketAddr::new(super::loopback(self.ipv6), self.port);
        tokio::net::TcpStream::connect(target)
            .await
            .map(drop)
            .map_err(|e| format!("connecting to {target}: {e}"))
    }
}

impl Probe for TcpProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            match self.connect().await {
                Ok(()) => Outcome::Healthy,
                Err(e) => Outcome::Unhealthy(e),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_healthy_and_a_closed_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = TcpProbe { port, ipv6: false };
        assert_eq!(probe.check().await, Outcome::Healthy);
        drop(listener);
        assert!(matches!(probe.check().await, Outcome::Unhealthy(_)));
    }

    #[tokio::test]
    async fn an_ipv6_check_connects_to_the_ipv6_loopback_only() {
        let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            TcpProbe { port, ipv6: true }.check().await,
            Outcome::Healthy
        );
        // Nothing listens on 127.0.0.1 at that port: the IPv4 check fails,
        // so the IPv6 one really went to ::1.
        match (TcpProbe { port, ipv6: false }).check().await {
            Outcome::Unhealthy(why) => assert!(why.contains("127.0.0.1"), "{why}"),
            other => panic!("IPv4 check of an IPv6-only port: {other:?}"),
        }
    }
}
