//! The drive half of `zk://` detection: one task holding a ZooKeeper
//! session, watching the masters' path, and publishing the leading
//! master's scheduler endpoint on a `watch` channel (`None`: no leader
//! known). The decisions are [`super::leader`]'s; this file only reads
//! ZooKeeper and waits.
//!
//! It never gives up while the scheduler runs: a failed connection or an
//! expired session is retried after [`DetectorConfig::retry`]; the channel
//! then says `None` until a leader is read again.

use super::leader::{self, LeaderError};
use crate::mesos::session::Endpoint;
use drover_proto::master_znode::{self, ZkUrl};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

/// How the detector talks to ZooKeeper.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// The ZooKeeper session timeout asked for. Default 10 s, Mesos'
    /// `--zk_session_timeout` default.
    pub session_timeout: Duration,
    /// Wait before connecting again after a failure, and before reading
    /// again a path that does not exist yet. Default 1 s.
    pub retry: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            session_timeout: Duration::from_secs(10),
            retry: Duration::from_secs(1),
        }
    }
}

/// Starts the detector; it stops when `shutdown` is cancelled.
pub fn spawn(
    url: ZkUrl,
    config: DetectorConfig,
    shutdown: CancellationToken,
) -> watch::Receiver<Option<Endpoint>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = detect(&url, &config, &tx) => {}
        }
    });
    rx
}

/// Waits for the first leader; `None` if the detector stopped first.
pub async fn first_leader(rx: &mut watch::Receiver<Option<Endpoint>>) -> Option<Endpoint> {
    rx.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|leader| leader.clone())
}

/// Why one ZooKeeper session stopped watching.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    #[error("the ZooKeeper session ended ({0})")]
    SessionEnded(zk::SessionState),
}

async fn detect(url: &ZkUrl, config: &DetectorConfig, tx: &watch::Sender<Option<Endpoint>>) {
    loop {
        let connected = zk::Client::connector()
            .with_session_timeout(config.session_timeout)
            .connect(&url.servers)
            .await;
        match connected {
            Ok(client) => {
                tracing::info!(zk = %url, session = ?client.session_id(), "detecting the leading master");
                let error = watch_session(&client, url, config, tx).await;
                tracing::warn!(zk = %url, %error, "master detection interrupted; reconnecting");
            }
            Err(error) => tracing::warn!(zk = %url, %error, "cannot connect to ZooKeeper"),
        }
        publish(tx, None);
        tokio::time::sleep(config.retry).await;
    }
}

/// Follows the path for as long as the session lives: read the children
/// with a watch, read the leader's znode, publish, wait for a change.
async fn watch_session(
    client: &zk::Client,
    url: &ZkUrl,
    config: &DetectorConfig,
    tx: &watch::Sender<Option<Endpoint>>,
) -> WatchError {
    let mut state = client.state_watcher();
    loop {
        let (children, watcher) = match client.list_and_watch_children(&url.path).await {
            Ok(listed) => listed,
            Err(zk::Error::NoNode) => {
                // No master has contended yet.
                publish(tx, None);
                tokio::time::sleep(config.retry).await;
                continue;
            }
            Err(error) => return error.into(),
        };
        match master_znode::leading_child(&children) {
            None => publish(tx, None),
            Some(name) => match client.get_data(&format!("{}/{name}", url.path)).await {
                Ok((data, _)) => match leader::scheduler_endpoint(&data) {
                    Ok(endpoint) => publish(tx, Some(endpoint)),
                    Err(error) => report_bad_znode(url, name, &error, tx),
                },
                // It went away between the two reads: the watch fires.
                Err(zk::Error::NoNode) => {}
                Err(error) => return error.into(),
            },
        }
        tokio::select! {
            _ = watcher.changed() => {}
            ended = wait_terminal(&mut state) => return WatchError::SessionEnded(ended),
        }
    }
}

async fn wait_terminal(state: &mut zk::StateWatcher) -> zk::SessionState {
    loop {
        let now = state.changed().await;
        if now.is_terminated() {
            return now;
        }
    }
}

fn report_bad_znode(
    url: &ZkUrl,
    name: &str,
    error: &LeaderError,
    tx: &watch::Sender<Option<Endpoint>>,
) {
    tracing::error!(zk = %url, znode = name, %error, "the leading master's znode is unusable");
    publish(tx, None);
}

fn publish(tx: &watch::Sender<Option<Endpoint>>, leader: Option<Endpoint>) {
    tx.send_if_modified(|current| {
        if *current == leader {
            return false;
        }
        match &leader {
            Some(endpoint) => tracing::info!(master = %endpoint, "leading master detected"),
            None => tracing::warn!("no leading master known"),
        }
        *current = leader;
        true
    });
}
