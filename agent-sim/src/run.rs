//! Starts the simulator from a [`Config`]: binds the listener, builds the
//! master and its fleet, starts the master task and the HTTP server, and
//! reports the bound address.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::control::ControlContext;
use crate::master::driver::{self, DriverConfig};
use crate::master::Master;
use crate::server::{self, ServerContext};

/// A simulator serving in the background.
pub struct Started {
    /// The address it is bound to.
    pub address: std::net::SocketAddr,
    /// The server task; abort it to stop serving.
    pub server: tokio::task::JoinHandle<()>,
}

/// Builds everything and starts serving; returns once the listener is bound.
pub async fn start(config: &Config) -> anyhow::Result<Started> {
    let fleet = config.fleet().context("building the agent fleet")?;
    let defaults = config.fleet_defaults()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let master_config = config.master(seed, bound)?;
    let version = master_config.version.clone();
    let agents = fleet.len();
    let master = Master::new(master_config, fleet, Instant::now(), driver::unix_now());
    let handle = driver::spawn(
        master,
        DriverConfig {
            stream_buffer: config.stream_buffer.max(1),
            ..DriverConfig::default()
        },
    );
    let ctx = Arc::new(ServerContext {
        master: handle,
        control: ControlContext {
            version,
            hostname: config.hostname.clone(),
            address: bound,
            flags: config.flags(),
            fleet: defaults,
        },
        max_body_bytes: config.max_body_bytes,
    });
    tracing::info!(%bound, agents, seed, "master ready");
    let server = tokio::spawn(server::serve(listener, ctx));
    Ok(Started {
        address: bound,
        server,
    })
}

/// Runs until the process is signalled.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = start(&config).await?;
    let bound = started.address;
    if let Some(path) = &config.port_file {
        std::fs::write(path, bound.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The line tests and scripts wait for; stdout is the binary's interface here.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {bound}");
    }
    shutdown_signal().await;
    started.server.abort();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
