//! The election's driver: owns the ZooKeeper session, creates this
//! replica's ephemeral-sequential member under `<path>/leader` (its data:
//! the [`ReplicaInfo`] JSON), and loops: list the members, ask
//! [`election::standing`], publish the [`Role`], watch what the recipe says
//! to watch (the predecessor, and the leader's znode for redirects), and
//! list again when a watch fires. Holds no decision of its own.
//!
//! ```text
//!  start ─▶ Campaigning ─▶ Following{leader} ◀─┐ (predecessor or leader
//!                 │              │  └──────────┘  znode changed: list again)
//!                 └──────▶ Leading ◀┘ (lowest member now)
//!  any state ─▶ Lost{reason}   leader: the session leaves SyncConnected
//!                              follower: the session expires or closes
//! ```
//!
//! Calling contract: [`Campaign::start`] returns once the member exists;
//! watch [`Campaign::roles`]; `Lost` is terminal and the process must stop
//! (see the module doc of [`super`] for why a leader stops on a mere
//! disconnection). [`Campaign::resign`], called once the replica has
//! stopped acting (a clean shutdown), deletes the member, so the next
//! replica leads at once instead of after a session timeout.

use super::election::{self, Standing, MEMBER_PREFIX};
use super::{ReplicaInfo, Role};
use drover_proto::master_znode::ZkUrl;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

/// How long to wait before listing again after a transient ZooKeeper
/// error (connection loss while the client reconnects).
const RETRY: Duration = Duration::from_millis(200);

/// Why the campaign could not start.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// No session could be made with the servers (not retryable here: the
    /// process exits and its supervisor retries).
    #[error("cannot connect to ZooKeeper at {servers}: {source}")]
    Connect {
        /// The connect string.
        servers: String,
        /// The client's error.
        #[source]
        source: zk::Error,
    },
    /// The election directory or the member znode could not be created.
    #[error("cannot create {path} in ZooKeeper: {source}")]
    Create {
        /// The znode path.
        path: String,
        /// The client's error.
        #[source]
        source: zk::Error,
    },
    /// This replica's data did not encode (cannot happen for plain strings).
    #[error("cannot encode this replica's member data: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The campaign's settings.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    /// Servers and the path under which `leader/` is made.
    pub url: ZkUrl,
    /// The session timeout asked of ZooKeeper (the server bounds it by its
    /// min/max session timeout). Default 10 s: a dead leader is replaced
    /// within about that long, and a GC-free Rust process never needs more.
    pub session_timeout: Duration,
    /// What this replica writes in its member znode.
    pub me: ReplicaInfo,
}

/// How long a resignation may take (deleting the member) before the
/// process goes anyway; the session then expires on its own.
const RESIGN_LIMIT: Duration = Duration::from_secs(3);

/// A running campaign.
pub struct Campaign {
    roles: watch::Receiver<Role>,
    member: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Campaign {
    /// Connects, makes `<path>/leader` if missing, creates this replica's
    /// member and starts the driver task.
    pub async fn start(config: CampaignConfig) -> Result<Campaign, CampaignError> {
        let client = zk::Client::connector()
            .with_session_timeout(config.session_timeout)
            .connect(&config.url.servers)
            .await
            .map_err(|source| CampaignError::Connect {
                servers: config.url.servers.clone(),
                source,
            })?;
        let dir = format!("{}/leader", config.url.path);
        let directory = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .mkdir(&dir, &directory)
            .await
            .map_err(|source| CampaignError::Create {
                path: dir.clone(),
                source,
            })?;
        let data = serde_json::to_vec(&config.me)?;
        let prefix = format!("{dir}/{MEMBER_PREFIX}");
        let member_mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, sequence) =
            client
                .create(&prefix, &data, &member_mode)
                .await
                .map_err(|source| CampaignError::Create {
                    path: prefix.clone(),
                    source,
                })?;
        let name = format!("{MEMBER_PREFIX}{sequence}");
        let member = format!("{dir}/{name}");
        tracing::info!(%member, session_id = %client.session_id(),
            timeout_ms = client.session_timeout().as_millis() as u64, "campaigning for leadership");
        let (roles_tx, roles) = watch::channel(Role::Campaigning);
        let stop = CancellationToken::new();
        let task = tokio::spawn(drive(client, dir, name, roles_tx, stop.clone()));
        Ok(Campaign {
            roles,
            member,
            stop,
            task,
        })
    }

    /// Leaves the election: deletes this replica's member (bounded by
    /// [`RESIGN_LIMIT`]) and closes the session. Call it only once the
    /// replica has stopped acting: the next replica leads at once.
    pub async fn resign(self) {
        self.stop.cancel();
        if tokio::time::timeout(RESIGN_LIMIT, self.task).await.is_err() {
            tracing::warn!(member = %self.member, "resigning took too long; the session will expire");
        }
    }

    /// The published role; `Lost` is the last value it takes.
    pub fn roles(&self) -> watch::Receiver<Role> {
        self.roles.clone()
    }

    /// This replica's member znode path.
    pub fn member(&self) -> &str {
        &self.member
    }
}

/// What one round of the loop ended with.
enum Next {
    /// List the members again.
    Relist,
    /// The campaign is over (shutdown, or the session is lost).
    Stop,
}

async fn drive(
    client: zk::Client,
    dir: String,
    name: String,
    roles: watch::Sender<Role>,
    shutdown: CancellationToken,
) {
    let mut session = client.state_watcher();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => {
                let member = format!("{dir}/{name}");
                match tokio::time::timeout(RESIGN_LIMIT, client.delete(&member, None)).await {
                    Ok(Ok(())) => tracing::info!(%member, "resigned from the election"),
                    Ok(Err(error)) => tracing::warn!(%member, %error, "cannot delete the member; the session will expire"),
                    Err(_) => tracing::warn!(%member, "deleting the member timed out; the session will expire"),
                }
                Next::Stop
            }
            next = round(&client, &dir, &name, &roles, &mut session) => next,
        };
        if let Next::Stop = next {
            // Dropping the client closes the session.
            return;
        }
    }
}

/// One listing, one decision, one wait.
async fn round(
    client: &zk::Client,
    dir: &str,
    name: &str,
    roles: &watch::Sender<Role>,
    session: &mut zk::StateWatcher,
) -> Next {
    let children = match client.list_children(dir).await {
        Ok(children) => children,
        Err(error) => return on_error(&error, roles).await,
    };
    match election::standing(&children, name) {
        Standing::Absent => lose(
            roles,
            "this replica's member znode is gone (its session ended)",
        ),
        Standing::Leading => lead(client, roles, session).await,
        Standing::Following {
            leader,
            predecessor,
        } => follow(client, dir, &leader, &predecessor, roles, session).await,
    }
}

async fn lead(
    client: &zk::Client,
    roles: &watch::Sender<Role>,
    session: &mut zk::StateWatcher,
) -> Next {
    // The listing just succeeded, so the session was live; a change seen
    // since then counts as a loss like any later one.
    let state = client.state();
    if state != zk::SessionState::SyncConnected {
        return lose(roles, &format!("ZooKeeper session {state:?} when elected"));
    }
    session.state();
    tracing::info!("elected leader");
    roles.send_replace(Role::Leading);
    loop {
        let state = session.changed().await;
        if state != zk::SessionState::SyncConnected {
            return lose(roles, &format!("ZooKeeper session {state:?} while leading"));
        }
    }
}

async fn follow(
    client: &zk::Client,
    dir: &str,
    leader: &str,
    predecessor: &str,
    roles: &watch::Sender<Role>,
    session: &mut zk::StateWatcher,
) -> Next {
    let leader_path = format!("{dir}/{leader}");
    let info = match client.get_data(&leader_path).await {
        Ok((data, _)) => match serde_json::from_slice::<ReplicaInfo>(&data) {
            Ok(info) => Some(info),
            Err(error) => {
                tracing::warn!(znode = %leader_path, %error, "the leader's member data is not a replica's JSON");
                None
            }
        },
        Err(zk::Error::NoNode) => return Next::Relist,
        Err(error) => return on_error(&error, roles).await,
    };
    let changed = roles.send_if_modified(|role| {
        let next = Role::Following {
            leader: info.clone(),
        };
        let differs = *role != next;
        *role = next;
        differs
    });
    if changed {
        tracing::info!(leader = ?info, %predecessor, "following");
    }
    let predecessor_path = format!("{dir}/{predecessor}");
    let predecessor_gone = match client.check_and_watch_stat(&predecessor_path).await {
        Ok((None, _)) => return Next::Relist,
        Ok((Some(_), watcher)) => watcher,
        Err(error) => return on_error(&error, roles).await,
    };
    // The leader's znode too, when it is not the predecessor: a redirect
    // must follow a new leader even when this follower is not next.
    let leader_changed = if leader == predecessor {
        None
    } else {
        match client.check_and_watch_stat(&leader_path).await {
            Ok((None, _)) => return Next::Relist,
            Ok((Some(_), watcher)) => Some(watcher),
            Err(error) => return on_error(&error, roles).await,
        }
    };
    let leader_event = async {
        match leader_changed {
            Some(watcher) => {
                watcher.changed().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = predecessor_gone.changed() => Next::Relist,
        _ = leader_event => Next::Relist,
        state = session.changed() => {
            if state.is_terminated() {
                lose(roles, &format!("ZooKeeper session {state:?}"))
            } else {
                Next::Relist
            }
        }
    }
}

/// A ZooKeeper call failed: a terminal error ends the campaign, any other
/// (connection loss while the client reconnects) is retried.
async fn on_error(error: &zk::Error, roles: &watch::Sender<Role>) -> Next {
    match error {
        zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed => {
            lose(roles, &format!("ZooKeeper: {error}"))
        }
        _ => {
            tracing::warn!(%error, "ZooKeeper call failed; listing again");
            tokio::time::sleep(RETRY).await;
            Next::Relist
        }
    }
}

fn lose(roles: &watch::Sender<Role>, reason: &str) -> Next {
    tracing::error!(reason, "ZooKeeper campaign lost");
    roles.send_replace(Role::Lost {
        reason: reason.to_owned(),
    });
    Next::Stop
}
