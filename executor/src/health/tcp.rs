//! TCP health check: a connect to `127.0.0.1:<port>` that succeeds is healthy.

use std::future::Future;
use std::pin::Pin;

use super::{Outcome, Probe};

/// Connects to a loopback port.
#[derive(Debug, Clone, Copy)]
pub struct TcpProbe {
    /// The task's port.
    pub port: u16,
}

impl TcpProbe {
    /// Connects once: whether it succeeded, or why not.
    pub async fn connect(&self) -> Result<(), String> {
        tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map(drop)
            .map_err(|e| format!("connecting to 127.0.0.1:{}: {e}", self.port))
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
        assert_eq!(TcpProbe { port }.check().await, Outcome::Healthy);
        drop(listener);
        assert!(matches!(
            TcpProbe { port }.check().await,
            Outcome::Unhealthy(_)
        ));
    }
}
