//! Users on this host: a name looked up in the user database (NSS), and
//! the credentials a spawned process takes. Lookups allocate and may block
//! (NSS can be remote), so they run in the parent before fork and off the
//! async worker threads; [`super::spawn`] only applies [`Credentials`].

use std::ffi::CString;
use std::path::PathBuf;

/// What the kernel needs to run a process as a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user id.
    pub uid: libc::uid_t,
    /// The primary group.
    pub gid: libc::gid_t,
    /// Every group the user is in (supplementary groups), the primary one
    /// included, as `initgroups` would set them.
    pub groups: Vec<libc::gid_t>,
}

/// A user as the user database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The name asked for.
    pub name: String,
    /// Its ids and groups.
    pub credentials: Credentials,
    /// Its home directory (`HOME`).
    pub home: PathBuf,
}

/// Why a user could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user does not exist on this host. Not retryable.
    #[error("user {user:?} does not exist on this host")]
    UnknownUser {
        /// The name asked for.
        user: String,
    },
    /// The name holds a NUL byte. Not retryable.
    #[error("user name {user:?} contains a NUL byte")]
    Nul {
        /// The name asked for.
        user: String,
    },
    /// The lookup itself failed. Maybe retryable (NSS trouble).
    #[error("looking up user {user:?}: {source}")]
    Lookup {
        /// The name asked for.
        user: String,
        /// The error.
        #[source]
        source: nix::errno::Errno,
    },
}

/// Looks `name` up, with its supplementary groups. Blocking.
pub fn lookup(name: &str) -> Result<UserEntry, UserError> {
    let lookup_error = |source| UserError::Lookup {
        user: name.to_string(),
        source,
    };
    let c_name = CString::new(name).map_err(|_| UserError::Nul {
        user: name.to_string(),
    })?;
    let found = nix::unistd::User::from_name(name)
        .map_err(lookup_error)?
        .ok_or_else(|| UserError::UnknownUser {
            user: name.to_string(),
        })?;
    let groups = nix::unistd::getgrouplist(&c_name, found.gid).map_err(lookup_error)?;
    Ok(UserEntry {
        name: name.to_string(),
        credentials: Credentials {
            uid: found.uid.as_raw(),
            gid: found.gid.as_raw(),
            groups: groups.into_iter().map(|g| g.as_raw()).collect(),
        },
        home: found.dir,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_and_a_missing_user_is_a_typed_error() {
        let root = lookup("root").unwrap();
        assert_eq!(root.credentials.uid, 0);
        assert!(root.credentials.groups.contains(&root.credentials.gid));
        assert!(matches!(
            lookup("no-such-user-drover"),
            Err(UserError::UnknownUser { .. })
        ));
        assert!(matches!(lookup("a\0b"), Err(UserError::Nul { .. })));
    }
}
