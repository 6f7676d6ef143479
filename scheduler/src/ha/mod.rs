//! High availability: several scheduler replicas, one leader, elected
//! through ZooKeeper (`--zk zk://h1:2181,h2:2181/drover`).
//!
//! # Layout
//! - [`election`]: ZooKeeper's leader-election recipe decided from one
//!   listing of `<path>/leader`. Pure.
//! - [`campaign`]: the driver: the ZooKeeper session, this replica's
//!   ephemeral-sequential member, the watches, and the [`Role`] it
//!   publishes.
//! - [`follower`]: what a follower's port answers (307 to the leader,
//!   gRPC `UNAVAILABLE`, `GET /api/v1/leader`).
//! - [`standby`]: a replica until it leads: campaign, follower answers on
//!   the API port, then the port handed to the leader; abdication on loss.
//!
//! # What each replica does
//! Only the leader opens the store for writing, claims its leader epoch
//! ([`crate::store::Store::claim_leadership`]), subscribes to the master
//! and serves the API. A follower serves only `GET /api/v1/leader`, the
//! health endpoints, a 307 to the leader for every other `/api/v1` path
//! (reads too) and gRPC `UNAVAILABLE` naming the leader.
//!
//! # Why a leader stops on a mere disconnection
//! A new leader is elected only after ZooKeeper removes the old leader's
//! member, which it does when the old leader's session expires: after the
//! session timeout without hearing from it. The old leader's client
//! declares the connection lost after 2/5 of that timeout without an
//! answer (zookeeper-client's connection timeout), so it learns of a
//! partition well before the server can expire its session. The leader
//! therefore treats `Disconnected` (not only `Expired`) as the end of its
//! reign: it exits at once ([`abdicate`]; process exit closes the Mesos
//! connection and ends every write), and its supervisor restarts it to
//! campaign again. Whatever slips past (a process paused longer than its
//! session timeout) is caught by the store: its epoch was overtaken by
//! the new leader's claim, so its next commit fails
//! [`crate::store::StoreError::Fenced`], and since Drover records intent
//! before it acts, no call follows a refused commit.

pub mod campaign;
pub mod election;
pub mod follower;
pub mod standby;

use serde::{Deserialize, Serialize};

/// The exit code of a replica that stopped leading (or lost its
/// ZooKeeper session): "restart me", as `EX_TEMPFAIL`.
pub const EXIT_DEPOSED: i32 = 75;

/// What a replica writes in its member znode: who it is and where its API
/// answers, so followers can redirect there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplicaInfo {
    /// The replica's id (`--replica-id`, default its API address).
    pub id: String,
    /// Its API's base URL, `http://host:port` or `https://host:port`.
    pub api: String,
}

/// This replica's role, as the campaign publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Connected, member created, not yet placed.
    Campaigning,
    /// Another replica leads; `leader` is its znode data (None when it
    /// could not be read or parsed: answers then say the leader is unknown).
    Following {
        /// The leader's id and API.
        leader: Option<ReplicaInfo>,
    },
    /// This replica leads.
    Leading,
    /// The ZooKeeper session was lost (disconnected while leading,
    /// expired or closed): terminal, the replica must stop.
    Lost {
        /// Why, for the log and the exit message.
        reason: String,
    },
}

impl Role {
    /// Whether the campaign is over for this process.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Role::Lost { .. })
    }
}

/// Ends the process at once because this replica may no longer act as
/// leader: no Mesos call and no store write can follow (the process's
/// sockets close with it). Marathon abdicates the same way.
pub fn abdicate(reason: &str) -> ! {
    tracing::error!(
        reason,
        exit_code = EXIT_DEPOSED,
        "no longer the leader: stopping now"
    );
    eprintln!("drover-scheduler: no longer the leader ({reason}); exiting");
    std::process::exit(EXIT_DEPOSED)
}
