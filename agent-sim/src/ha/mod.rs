//! agent-sim as one master of a Mesos master set (`--zk zk://h:2181/mesos`):
//! it contends in ZooKeeper as a Mesos master does, and answers as a
//! non-leading master while another leads.
//!
//! - [`Role`] and [`redirect_for`] (decide, pure): what this instance is
//!   now, and what a standby answers on the paths a Mesos master only
//!   serves when elected.
//! - [`contender`] (drive): the ZooKeeper session: the instance's own
//!   ephemeral-sequential `json.info_` znode holding its MasterInfo JSON
//!   exactly as Mesos writes it, and the watch on the path that moves
//!   [`Role`].
//!
//! What Mesos does and this matches (src/master/contender/zookeeper.cpp,
//! src/master/detector/zookeeper.cpp, src/master/http.cpp `redirect`):
//! the lowest sequence leads; a non-leading master answers the scheduler
//! and operator APIs and `/redirect` with 307 to the leader
//! (`//hostname:port/path`, protocol-relative) or 503 "No leader elected"
//! while none is known; a master that loses its ZooKeeper session (its
//! candidacy) exits, as Mesos' master commits suicide on lost leadership
//! rather than risk two leaders.
//!
//! - [`takeover`] (drive): with `--state-dir`, the master elected adopts
//!   the agents and tasks its predecessor journaled before it serves as
//!   the leader: the simulated agents re-register with it, with their
//!   ids and tasks, as Mesos agents re-register with a new leading
//!   master (`master::takeover` says what is carried over and what is
//!   not). Without `--state-dir` a standby that becomes leader offers its
//!   own fresh fleet, and the framework's tasks on the old leader's
//!   agents are unknown to it (reconciliation answers TASK_LOST or
//!   TASK_UNKNOWN for them).

pub mod contender;
pub mod takeover;

use drover_proto::master_znode;
use drover_proto::v1::MasterInfo;

/// What this instance is in its master set.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Not yet in ZooKeeper (or between reads): not elected, no leader known.
    Contending,
    /// The leading master: it serves everything.
    Leading,
    /// Another master leads; `leader` is its MasterInfo when it could be read.
    Standby {
        /// The leading master, if its znode was readable.
        leader: Option<Box<MasterInfo>>,
    },
}

/// A standby's answer on a path that only the leader serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandbyAnswer {
    /// 307 with this `Location`.
    Redirect(String),
    /// 503 "No leader elected".
    NoLeader,
}

/// What a non-leading master answers for `path` (already stripped of
/// `/master`); None: served as usual (the leader, or a path every master
/// serves: `/state`, `/health`, `/metrics`, `/sim`, ...).
pub fn redirect_for(role: &Role, path: &str) -> Option<StandbyAnswer> {
    let leader_only = path == "/api/v1"
        || path == "/redirect"
        || path == "/api/v1/scheduler"
        || path.starts_with("/api/v1/scheduler/");
    if !leader_only {
        return None;
    }
    let leader = match role {
        Role::Leading => return None,
        Role::Contending | Role::Standby { leader: None } => return Some(StandbyAnswer::NoLeader),
        Role::Standby {
            leader: Some(leader),
        } => leader,
    };
    // Mesos: the hostname if set, else the ip (master/http.cpp).
    let authority = match leader.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(host) if leader.port != 0 => Some(format!("{host}:{}", leader.port)),
        _ => master_znode::master_authority(leader),
    };
    let Some(authority) = authority else {
        return Some(StandbyAnswer::NoLeader);
    };
    Some(StandbyAnswer::Redirect(if path == "/redirect" {
        format!("//{authority}")
    } else {
        format!("//{authority}/master{path}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standby_of(hostname: &str, port: u32) -> Role {
        Role::Standby {
            leader: Some(Box::new(MasterInfo {
                id: "m1".into(),
                port,
                hostname: Some(hostname.into()),
                pid: Some(format!("master@127.0.0.1:{port}")),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn a_standby_redirects_the_scheduler_and_operator_apis_to_the_leader() {
        let role = standby_of("127.0.0.1", 5051);
        assert_eq!(
            redirect_for(&role, "/api/v1/scheduler"),
            Some(StandbyAnswer::Redirect(
                "//127.0.0.1:5051/master/api/v1/scheduler".into()
            ))
        );
        assert_eq!(
            redirect_for(&role, "/api/v1"),
            Some(StandbyAnswer::Redirect(
                "//127.0.0.1:5051/master/api/v1".into()
            ))
        );
        assert_eq!(
            redirect_for(&role, "/redirect"),
            Some(StandbyAnswer::Redirect("//127.0.0.1:5051".into()))
        );
        assert_eq!(redirect_for(&role, "/state"), None);
    }

    #[test]
    fn without_a_known_leader_the_answer_is_503_and_the_leader_serves() {
        assert_eq!(
            redirect_for(&Role::Contending, "/api/v1/scheduler"),
            Some(StandbyAnswer::NoLeader)
        );
        assert_eq!(
            redirect_for(&Role::Standby { leader: None }, "/redirect"),
            Some(StandbyAnswer::NoLeader)
        );
        assert_eq!(redirect_for(&Role::Leading, "/api/v1/scheduler"), None);
    }
}
