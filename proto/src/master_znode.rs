//! How Mesos masters meet in ZooKeeper, as a master writes it and a
//! framework or agent reads it (Mesos' `src/master/contender/zookeeper.cpp`,
//! `src/master/detector/zookeeper.cpp`, `src/zookeeper/group.cpp`,
//! `master.cpp`): the `zk://` URL, the contenders' znode names, and the
//! address in the MasterInfo JSON a contender holds. Pure: the ZooKeeper
//! sessions are the callers'.
//!
//! Every master contends with an ephemeral-sequential znode
//! `<path>/json.info_NNNNNNNNNN` holding its `MasterInfo` in Mesos-style
//! JSON ([`crate::json`]); the lowest sequence leads. Other children
//! (an old master's protobuf `info_`, the replicated log's
//! `log_replicas`) are not contenders.
//!
//! Mesos also takes `zk://user:password@hosts/path` (digest auth) and
//! `file:///path` holding a URL; neither is taken here: they are refused
//! with an error naming them, rather than connecting without the
//! credentials.

use crate::v1::MasterInfo;
use thiserror::Error;

/// The name prefix of a master's znode; ZooKeeper appends the sequence.
pub const INFO_PREFIX: &str = "json.info_";

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// The servers, as ZooKeeper's connect string: `host:port,host:port`.
    pub servers: String,
    /// The znode under which the masters contend, absolute, no trailing `/`.
    pub path: String,
}

/// Why a `zk://` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZkUrlError {
    /// Not `zk://`.
    #[error("'{0}' is not a zk:// URL")]
    NotZk(String),
    /// `zk://user:pass@...`: digest authentication is not supported.
    #[error("'{0}': ZooKeeper credentials (user:password@) are not supported")]
    Credentials(String),
    /// No server, an empty one, or one without `host:port`.
    #[error("'{0}': expected zk://host:port[,host:port...]/path")]
    BadServers(String),
    /// No path, or `/` alone.
    #[error("'{0}': the path is missing (zk://host:port/mesos)")]
    NoPath(String),
    /// An empty, `.` or `..` segment in the path.
    #[error("'{0}': the path has an empty, '.' or '..' segment")]
    BadPath(String),
}

impl ZkUrl {
    /// Parses `zk://host:port[,host:port...]/path`.
    pub fn parse(url: &str) -> Result<ZkUrl, ZkUrlError> {
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| ZkUrlError::NotZk(url.to_owned()))?;
        let (servers, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if servers.contains('@') {
            return Err(ZkUrlError::Credentials(url.to_owned()));
        }
        let well_formed = |s: &str| {
            s.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        };
        if servers.is_empty() || !servers.split(',').all(well_formed) {
            return Err(ZkUrlError::BadServers(url.to_owned()));
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(ZkUrlError::NoPath(url.to_owned()));
        }
        // ZooKeeper refuses such paths; say so before connecting.
        if path
            .split('/')
            .skip(1)
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Err(ZkUrlError::BadPath(url.to_owned()));
        }
        Ok(ZkUrl {
            servers: servers.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl std::fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zk://{}{}", self.servers, self.path)
    }
}

/// The leading contender among `children` (znode names under the path):
/// the `json.info_` child with the lowest sequence number.
pub fn leading_child(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let sequence = name.strip_prefix(INFO_PREFIX)?.parse::<u64>().ok()?;
            Some((sequence, name.as_str()))
        })
        .min_by_key(|(sequence, _)| *sequence)
        .map(|(_, name)| name)
}

/// The master's `host:port` (brackets around an IPv6 address), in Mesos'
/// order of preference: `address.ip` (else `address.hostname`) with
/// `address.port`, else the `pid` (`master@ip:port`). None when neither
/// names a host and a non-zero port.
pub fn master_authority(info: &MasterInfo) -> Option<String> {
    if let Some(address) = &info.address {
        let port = u16::try_from(address.port).ok().filter(|p| *p != 0);
        let host = address
            .ip
            .as_deref()
            .or(address.hostname.as_deref())
            .filter(|h| !h.is_empty());
        if let (Some(host), Some(port)) = (host, port) {
            return Some(host_port(host, port));
        }
    }
    let pid = info.pid.as_deref()?;
    let (_, at) = pid.split_once('@')?;
    let (host, port) = at.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| host_port(host, port))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_zookeeper_would_refuse_are_refused_first() {
        for url in ["zk://h:2181/a//b", "zk://h:2181/a/../b", "zk://h:2181/./a"] {
            assert_eq!(ZkUrl::parse(url), Err(ZkUrlError::BadPath(url.to_owned())));
        }
        assert_eq!(ZkUrl::parse("zk://h:2181/a/b/").unwrap().path, "/a/b");
    }

    use super::*;

    #[test]
    fn servers_and_path_are_split() {
        let url = ZkUrl::parse("zk://h1:2181,10.0.0.2:2182/mesos/").unwrap();
        assert_eq!(url.servers, "h1:2181,10.0.0.2:2182");
        assert_eq!(url.path, "/mesos");
        assert_eq!(url.to_string(), "zk://h1:2181,10.0.0.2:2182/mesos");
    }

    #[test]
    fn malformed_urls_are_refused_with_the_reason() {
        let cases = [
            ("http://m:5050", ZkUrlError::NotZk("http://m:5050".into())),
            (
                "zk://u:p@h:2181/mesos",
                ZkUrlError::Credentials("zk://u:p@h:2181/mesos".into()),
            ),
            (
                "zk://h/mesos",
                ZkUrlError::BadServers("zk://h/mesos".into()),
            ),
            (
                "zk://h:2181,/mesos",
                ZkUrlError::BadServers("zk://h:2181,/mesos".into()),
            ),
            ("zk:///mesos", ZkUrlError::BadServers("zk:///mesos".into())),
            ("zk://h:2181", ZkUrlError::NoPath("zk://h:2181".into())),
            ("zk://h:2181/", ZkUrlError::NoPath("zk://h:2181/".into())),
        ];
        for (url, want) in cases {
            assert_eq!(ZkUrl::parse(url), Err(want), "{url}");
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_lowest_json_info_sequence_leads() {
        let children = names(&[
            "log_replicas",
            "json.info_0000000012",
            "info_0000000001",
            "json.info_0000000003",
            "json.info_junk",
        ]);
        assert_eq!(leading_child(&children), Some("json.info_0000000003"));
        assert_eq!(
            leading_child(&names(&["log_replicas", "info_0000000001"])),
            None
        );
        assert_eq!(leading_child(&[]), None);
    }

    /// Byte for byte what a Mesos 1.12 master (`--zk`) wrote in its
    /// `json.info_0000000000`.
    const MESOS_1_12_ZNODE: &str = r#"{"address":{"hostname":"localhost","ip":"127.0.0.1","port":15050},"capabilities":[{"type":"AGENT_UPDATE"},{"type":"AGENT_DRAINING"},{"type":"QUOTA_V2"}],"hostname":"localhost","id":"dc62a2d1-b8e5-4973-9ecb-1303041b8651","ip":16777343,"pid":"master@127.0.0.1:15050","port":15050,"version":"1.12.0"}"#;

    #[test]
    fn a_real_mesos_masters_znode_is_read() {
        let info = crate::json::from_json::<MasterInfo>(MESOS_1_12_ZNODE.as_bytes()).unwrap();
        assert_eq!(info.id, "dc62a2d1-b8e5-4973-9ecb-1303041b8651");
        assert_eq!(info.ip, 16_777_343);
        assert_eq!(master_authority(&info).as_deref(), Some("127.0.0.1:15050"));
    }

    #[test]
    fn the_authority_comes_from_the_address_then_the_pid() {
        let read = |json: &str| crate::json::from_json::<MasterInfo>(json.as_bytes()).unwrap();
        let full = r#"{"address":{"hostname":"m1","ip":"10.0.0.7","port":5050},
            "hostname":"m1","id":"abc","ip":117440522,"pid":"master@10.0.0.7:5050","port":5050}"#;
        assert_eq!(
            master_authority(&read(full)).as_deref(),
            Some("10.0.0.7:5050")
        );
        let pid_only = r#"{"id":"abc","ip":0,"port":5051,"pid":"master@127.0.0.1:5051"}"#;
        assert_eq!(
            master_authority(&read(pid_only)).as_deref(),
            Some("127.0.0.1:5051")
        );
        let v6 = r#"{"id":"a","ip":0,"port":5050,"address":{"ip":"::1","port":5050}}"#;
        assert_eq!(master_authority(&read(v6)).as_deref(), Some("[::1]:5050"));
        let none = r#"{"id":"a","ip":0,"port":1,"pid":"master@:0"}"#;
        assert_eq!(master_authority(&read(none)), None);
    }
}
