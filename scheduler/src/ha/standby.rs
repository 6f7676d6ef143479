//! A replica's life before it leads: campaign, answer as a follower on the
//! API port (see [`super::follower`]) until elected, then hand the port
//! to the leader's API. Once elected, [`abdicate_on_loss`] ends the
//! process the moment the session is lost.

use super::campaign::{Campaign, CampaignConfig, CampaignError};
use super::follower;
use super::{abdicate, ReplicaInfo, Role};
use crate::api::serve::{self, ServeConfig};
use crate::tls::reload::ReloadingServerConfig;
use drover_proto::master_znode::ZkUrl;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why a replica could not get to lead.
#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    /// The campaign did not start.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// The API listener could not be shared with the follower's server.
    #[error("cannot share the API listener: {0}")]
    Listener(#[source] std::io::Error),
}

/// How the replica campaigns and serves while it follows.
pub struct StandbyConfig {
    /// `--zk`.
    pub url: ZkUrl,
    /// `--zk-session-timeout`.
    pub session_timeout: Duration,
    /// Who this replica is and where its API answers.
    pub me: ReplicaInfo,
    /// The API port's connection bounds.
    pub serve: ServeConfig,
    /// The API port's TLS, if any.
    pub tls: Option<Arc<ReloadingServerConfig>>,
}

/// This replica leads: the API port, untouched, and the campaign.
pub struct Elected {
    /// The API port, for the leader's API.
    pub listener: TcpListener,
    /// The campaign's roles (Leading now; `Lost` later ends the process).
    pub roles: watch::Receiver<Role>,
    /// The campaign, to [`Campaign::resign`] once the leader has stopped.
    pub campaign: Campaign,
}

/// Campaigns and serves the follower's answers on `listener` until this
/// replica leads (`Some`) or `stop` completes first (`None`: exit
/// cleanly, resigned). A session lost before leading ends the process
/// ([`abdicate`]).
pub async fn wait_until_elected(
    listener: TcpListener,
    config: StandbyConfig,
    stop: impl Future<Output = ()>,
) -> Result<Option<Elected>, StandbyError> {
    let campaign = Campaign::start(CampaignConfig {
        url: config.url,
        session_timeout: config.session_timeout,
        me: config.me.clone(),
    })
    .await?;
    let mut roles = campaign.roles();
    // The follower's server accepts on a duplicate of the port's socket;
    // when it stops accepting, the original is the leader's, so the port
    // (even one picked by --listen :0) never changes or closes.
    let listener = listener.into_std().map_err(StandbyError::Listener)?;
    let follower_listener = listener
        .try_clone()
        .and_then(TcpListener::from_std)
        .map_err(StandbyError::Listener)?;
    let listener = TcpListener::from_std(listener).map_err(StandbyError::Listener)?;
    let follower_done = CancellationToken::new();
    let follower_stop = follower_done.clone();
    tokio::spawn(serve::serve(
        follower_listener,
        follower::follower_router(roles.clone(), config.me),
        config.serve,
        config.tls,
        async move { follower_stop.cancelled().await },
    ));
    let _stop_follower = follower_done.drop_guard();
    let mut stop = std::pin::pin!(stop);
    loop {
        let role = roles.borrow_and_update().clone();
        match role {
            Role::Leading => {
                abdicate_on_loss(roles.clone());
                return Ok(Some(Elected {
                    listener,
                    roles,
                    campaign,
                }));
            }
            Role::Lost { reason } => abdicate(&reason),
            Role::Campaigning | Role::Following { .. } => {}
        }
        tokio::select! {
            () = &mut stop => {
                campaign.resign().await;
                return Ok(None);
            }
            changed = roles.changed() => {
                if changed.is_err() {
                    // Only a resignation ends the campaign without `Lost`.
                    return Ok(None);
                }
            }
        }
    }
}

/// Ends the process as soon as the campaign reports `Lost`. A campaign
/// that ends without it resigned (a clean shutdown): nothing to do.
pub fn abdicate_on_loss(mut roles: watch::Receiver<Role>) {
    tokio::spawn(async move {
        loop {
            if let Role::Lost { reason } = &*roles.borrow_and_update() {
                abdicate(reason);
            }
            if roles.changed().await.is_err() {
                return;
            }
        }
    });
}
