//! Why a session stops for good ([`super::Action::Stop`]).

/// A master answer the session must not go on from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// We subscribed with a stored framework id and the master's SUBSCRIBED
    /// named another. Going on would adopt another framework's identity
    /// (and its tasks) while ours stays registered, orphaned, until its
    /// failover timeout. Not retryable: the operator must find out which
    /// master, or which data directory, is wrong.
    #[error(
        "the master answered our SUBSCRIBE as framework {subscribed_as} with a SUBSCRIBED for \
         framework {answered}; stopping rather than taking another framework's identity (check \
         that --master names this framework's Mesos cluster and --data-dir this framework's store)"
    )]
    FrameworkIdChanged {
        /// The framework id we subscribed with (from the store).
        subscribed_as: String,
        /// The framework id the master's SUBSCRIBED named.
        answered: String,
    },
}
