//! The drive half of [`super`]: the instance's ZooKeeper session. It
//! creates `<path>/json.info_` (ephemeral, sequential) holding the
//! MasterInfo JSON, then reads the children with a watch after every
//! change and publishes the [`Role`] they give. It ends only when the
//! session does (expired, closed, or a ZooKeeper error it cannot read
//! past): the caller then exits, as a Mesos master does on lost candidacy.

use super::Role;
use drover_proto::master_znode::{self, ZkUrl};
use drover_proto::v1::MasterInfo;
use std::time::Duration;
use tokio::sync::watch;
use zookeeper_client as zk;

/// Why the candidacy ended.
#[derive(Debug, thiserror::Error)]
pub enum CandidacyError {
    /// A ZooKeeper call failed.
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    /// The session ended.
    #[error("the ZooKeeper session ended ({0}): candidacy lost")]
    SessionEnded(zk::SessionState),
}

/// Joins the master set at `url` with `info`: connects (bounded by
/// `session_timeout`), creates the znode, and returns the role channel
/// and the task that keeps it current (it ends with why the candidacy
/// was lost).
pub async fn contend(
    url: ZkUrl,
    info: MasterInfo,
    session_timeout: Duration,
) -> Result<
    (
        watch::Receiver<Role>,
        tokio::task::JoinHandle<CandidacyError>,
    ),
    CandidacyError,
> {
    let client = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(session_timeout)
        .connect(&url.servers)
        .await?;
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.mkdir(&url.path, &persistent).await?;
    let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let json = drover_proto::json::to_json(&info);
    let prefix = format!("{}/{}", url.path, master_znode::INFO_PREFIX);
    let (_, sequence) = client.create(&prefix, json.as_bytes(), &ephemeral).await?;
    // Mesos' (and ZooKeeper's) ten-digit sequence suffix.
    let mine = format!("{}{:010}", master_znode::INFO_PREFIX, sequence.into_i64());
    tracing::info!(zk = %url, znode = %mine, %json, "contending as a master");
    let (tx, rx) = watch::channel(Role::Contending);
    let task = tokio::spawn(async move { follow(client, url, mine, tx).await });
    Ok((rx, task))
}

async fn follow(
    client: zk::Client,
    url: ZkUrl,
    mine: String,
    tx: watch::Sender<Role>,
) -> CandidacyError {
    let mut state = client.state_watcher();
    loop {
        let (children, watcher) = match client.list_and_watch_children(&url.path).await {
            Ok(listed) => listed,
            Err(error) => return error.into(),
        };
        let role = match master_znode::leading_child(&children) {
            Some(leader) if leader == mine => Role::Leading,
            // Our own znode is gone: the session that held it has ended.
            _ if !children.contains(&mine) => {
                return CandidacyError::SessionEnded(zk::SessionState::Expired)
            }
            Some(leader) => Role::Standby {
                leader: read_leader(&client, &url, leader).await.map(Box::new),
            },
            None => Role::Standby { leader: None },
        };
        tx.send_if_modified(|current| {
            if *current == role {
                return false;
            }
            match &role {
                Role::Leading => tracing::info!(znode = %mine, "elected: the leading master"),
                Role::Standby { leader } => tracing::info!(
                    leader = ?leader.as_ref().and_then(|l| l.pid.clone()),
                    "standby master"
                ),
                Role::Contending => {}
            }
            *current = role;
            true
        });
        tokio::select! {
            _ = watcher.changed() => {}
            ended = wait_terminal(&mut state) => return CandidacyError::SessionEnded(ended),
        }
    }
}

/// The leading master's MasterInfo; None if it cannot be read (it went
/// away: the watch fires again) or is not MasterInfo JSON (logged).
async fn read_leader(client: &zk::Client, url: &ZkUrl, leader: &str) -> Option<MasterInfo> {
    let (data, _) = client
        .get_data(&format!("{}/{leader}", url.path))
        .await
        .ok()?;
    match drover_proto::json::from_json::<MasterInfo>(&data) {
        Ok(info) => Some(info),
        Err(error) => {
            tracing::warn!(znode = leader, %error, "the leading master's znode is not MasterInfo JSON");
            None
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
