//! Finding the leading Mesos master through ZooKeeper (`--master
//! zk://host:2181,host2:2181/mesos`), as Mesos' own frameworks do.
//!
//! ```text
//! ZooKeeper ─▶ zookeeper (drive: watch the children) ─▶ leader (decide) ─▶ watch channel ─▶ mesos driver ─▶ session
//! ```
//!
//! - [`leader`]: pure: where the leading master's scheduler API is, from
//!   the MasterInfo JSON it wrote (the `zk://` URL, the znode names and
//!   which contender leads are [`drover_proto::master_znode`]'s, shared
//!   with agent-sim, which contends as a master does).
//! - [`zookeeper`]: the drive half: one task with a ZooKeeper session
//!   that watches the path and publishes the leader's endpoint on a
//!   `tokio::sync::watch` channel; the Mesos driver follows it
//!   ([`Session::on_leader_detected`](super::session::Session::on_leader_detected)).
//!
//! Mesos' behaviour matched (src/master/detector/zookeeper.cpp,
//! src/zookeeper/group.cpp, src/master/contender/zookeeper.cpp): every
//! master contends with an ephemeral-sequential znode, `json.info_NNNNNNNNNN`
//! holding its MasterInfo as JSON (master.cpp); the lowest sequence leads;
//! the other children (`info_` protobuf entries of old masters, the
//! replicated log's `log_replicas`) are not masters and are ignored.
//! A lost ZooKeeper session names no leader: the current subscription is
//! kept (the master it talks to may well still lead; its own 307s and a
//! dead stream move us on) until the detector names one again.

pub mod leader;
pub mod zookeeper;
