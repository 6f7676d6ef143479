//! The web UI's login sessions: a random id in a cookie, naming the user
//! who logged in, for a bounded time.
//!
//! A session names a user, not a role: each request looks the user up in
//! the credentials as they are now, so a role changed or a user removed in
//! the file takes effect on open sessions at once. Kept in memory: a
//! scheduler restart logs everybody out, which costs a login.

use super::credentials::{token_digest, Digest32};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts from its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions at once; past it the oldest go first.
pub const MAX_SESSIONS: usize = 10_000;

#[derive(Debug)]
struct Session {
    user: String,
    expires: Instant,
}

/// Open sessions, by the digest of their id (a memory dump gives away no
/// cookie).
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<Digest32, Session>>,
}

impl Sessions {
    /// Opens a session for `user`; returns its id, for the cookie.
    pub fn open(&self, user: &str, now: Instant) -> String {
        let id = super::credentials::new_token();
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(digest, _)| *digest)
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            token_digest(&id),
            Session {
                user: user.to_owned(),
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    /// The user of an open session.
    pub fn user(&self, id: &str, now: Instant) -> Option<String> {
        let open = self.lock();
        open.get(&token_digest(id))
            .filter(|s| s.expires > now)
            .map(|s| s.user.clone())
    }

    /// Ends a session (logout).
    pub fn close(&self, id: &str) {
        self.lock().remove(&token_digest(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, Session>> {
        match self.open.lock() {
            Ok(open) => open,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_user_until_it_expires_or_closes() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let id = sessions.open("alice", t0);
        assert_eq!(sessions.user(&id, t0).as_deref(), Some("alice"));
        assert_eq!(sessions.user("forged", t0), None);
        assert_eq!(sessions.user(&id, t0 + SESSION_TTL), None);
        let other = sessions.open("bob", t0);
        sessions.close(&other);
        assert_eq!(sessions.user(&other, t0), None);
    }
}
