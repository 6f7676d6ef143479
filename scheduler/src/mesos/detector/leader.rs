//! Pure: where the leading master's scheduler API is, from the
//! MasterInfo JSON in its znode (which child leads is
//! [`drover_proto::master_znode::leading_child`]).

use super::super::session::Endpoint;
use drover_proto::master_znode::master_authority;
use drover_proto::v1::MasterInfo;
use thiserror::Error;

/// Why a leader's znode could not be used.
#[derive(Debug, Error)]
pub enum LeaderError {
    /// The znode's data is not MasterInfo JSON.
    #[error("the leading master's znode is not MasterInfo JSON: {0}")]
    BadJson(#[source] drover_proto::DecodeError),
    /// The MasterInfo names no usable address.
    #[error("the leading master's MasterInfo has no address (address.ip/port or pid)")]
    NoAddress,
}

/// The scheduler endpoint of the master whose znode holds `data`.
/// Masters are reached over http: MasterInfo does not say https (a TLS
/// master set is listed by hand, with `--master-ca-file`).
pub fn scheduler_endpoint(data: &[u8]) -> Result<Endpoint, LeaderError> {
    let info: MasterInfo = drover_proto::json::from_json(data).map_err(LeaderError::BadJson)?;
    let authority = master_authority(&info).ok_or(LeaderError::NoAddress)?;
    format!("http://{authority}/api/v1/scheduler")
        .parse()
        .map_err(|_| LeaderError::NoAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_scheduler_api_at_the_masters_address() {
        let znode = br#"{"address":{"hostname":"m1","ip":"10.0.0.7","port":5050},
            "hostname":"m1","id":"abc","ip":117440522,"pid":"master@10.0.0.7:5050","port":5050}"#;
        assert_eq!(
            scheduler_endpoint(znode).unwrap().to_string(),
            "http://10.0.0.7:5050/api/v1/scheduler"
        );
    }

    #[test]
    fn unusable_znodes_are_typed_errors() {
        assert!(matches!(
            scheduler_endpoint(b"\x08\x01"),
            Err(LeaderError::BadJson(_))
        ));
        assert!(matches!(
            scheduler_endpoint(br#"{"id":"a","ip":0,"port":0}"#),
            Err(LeaderError::NoAddress)
        ));
    }
}
