//! `zk://host1:2181,host2:2181/path`: the ZooKeeper servers and the path
//! under them, as Mesos and its frameworks write it. Pure parsing.

/// Why a `zk://` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkUrlError {
    /// The URL does not start with `zk://`.
    #[error("`{0}` is not a zk:// URL (zk://host:2181,host2:2181/path)")]
    Scheme(String),
    /// No `host:port` before the path.
    #[error("`{0}` names no ZooKeeper server (zk://host:2181/path)")]
    NoServer(String),
    /// A server is not `host:port` with a numeric port.
    #[error("`{server}` in `{url}` is not host:port")]
    BadServer {
        /// The URL as given.
        url: String,
        /// The offending server.
        server: String,
    },
    /// The path is missing, `/`, or has an empty or relative segment.
    #[error("`{0}` needs a path below the root such as /drover, without empty segments")]
    BadPath(String),
}

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// The servers, as a client connect string (`h1:2181,h2:2181`).
    pub servers: String,
    /// The path, starting with `/` and never ending with one (`/drover`).
    pub path: String,
}

impl ZkUrl {
    /// Parses `zk://h1:2181,h2:2181/path`. Credentials (`zk://user:pw@…`)
    /// are refused as a bad server: Drover does not authenticate to
    /// ZooKeeper.
    pub fn parse(url: &str) -> Result<ZkUrl, ZkUrlError> {
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| ZkUrlError::Scheme(url.to_owned()))?;
        let (servers, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if servers.is_empty() {
            return Err(ZkUrlError::NoServer(url.to_owned()));
        }
        for server in servers.split(',') {
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok || server.contains('@') {
                return Err(ZkUrlError::BadServer {
                    url: url.to_owned(),
                    server: server.to_owned(),
                });
            }
        }
        let path = path.trim_end_matches('/');
        if path.is_empty()
            || path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_path_are_split() {
        let url = ZkUrl::parse("zk://h1:2181,10.0.0.2:2182/drover/prod/").expect("valid");
        assert_eq!(url.servers, "h1:2181,10.0.0.2:2182");
        assert_eq!(url.path, "/drover/prod");
        assert_eq!(url.to_string(), "zk://h1:2181,10.0.0.2:2182/drover/prod");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let cases = [
            ("http://h:2181/drover", "not a zk://"),
            ("zk:///drover", "names no ZooKeeper server"),
            ("zk://h/drover", "is not host:port"),
            ("zk://h:x/drover", "is not host:port"),
            ("zk://u:p@h:2181/drover", "is not host:port"),
            ("zk://h:2181", "needs a path"),
            ("zk://h:2181/", "needs a path"),
            ("zk://h:2181/a//b", "needs a path"),
            ("zk://h:2181/a/../b", "needs a path"),
        ];
        for (url, why) in cases {
            let error = ZkUrl::parse(url).expect_err(url).to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
