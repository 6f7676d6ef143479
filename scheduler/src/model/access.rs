//! Who may do what: the identities the API authenticates, their roles, and
//! the one decision every face's writes go through ([`authorize`]).
//!
//! Roles, each holding the rights of those before it:
//! - `viewer`: reads everything (jobs, pods, events, logs, watches),
//!   changes nothing.
//! - `user`: also creates and changes the jobs it owns: a job whose
//!   `owner` is the identity's name or one of its teams, or whose
//!   `owning_team` is one of its teams (Peloton `owner`/`owning_team`;
//!   Titus' `owner.teamEmail` is the job's `owner`).
//! - `operator`: also the cluster's own objects (hosts, pools).
//! - `admin`: everything, every job.
//!
//! Reads are open to every authenticated identity: Drover keeps nothing a
//! viewer may not see (a job's secrets never leave the scheduler).

use std::fmt;

/// An identity's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Its own jobs.
    User,
    /// Its own jobs, and hosts and pools.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::User, Role::Operator, Role::Admin];

    /// Its name in credentials files and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role a name spells, if any.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking: an authenticated user, or the anonymous caller a
/// scheduler started with `--allow-anonymous` lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its name (a credentials file's user, a client certificate's name).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The teams whose jobs it may change as a `user`.
    pub teams: Vec<String>,
    /// Not authenticated (let in by `--allow-anonymous`): jobs it creates
    /// are not stamped with its name.
    pub anonymous: bool,
}

impl Identity {
    /// The caller `--allow-anonymous` lets in: an admin, as a scheduler
    /// without authentication always was.
    pub fn anonymous() -> Identity {
        Identity {
            name: ANONYMOUS.to_owned(),
            role: Role::Admin,
            teams: Vec::new(),
            anonymous: true,
        }
    }

    /// The engine's own changes (none are a user's, but tests and
    /// recovery paths hand requests in without a caller).
    pub fn system() -> Identity {
        Identity {
            name: SYSTEM.to_owned(),
            role: Role::Admin,
            teams: Vec::new(),
            anonymous: false,
        }
    }

    /// The name recorded on what it changes (empty when anonymous: an
    /// unauthenticated caller's name says nothing).
    pub fn recorded_name(&self) -> &str {
        if self.anonymous {
            ""
        } else {
            &self.name
        }
    }

    /// Whether it owns a job with this owner and owning team: the owner is
    /// its name or one of its teams (Titus' owner is a team's email), or
    /// the owning team is one of its teams.
    fn owns(&self, owner: &str, owning_team: &str) -> bool {
        let in_teams = |name: &str| !name.is_empty() && self.teams.iter().any(|t| t == name);
        (!owner.is_empty() && owner == self.name) || in_teams(owner) || in_teams(owning_team)
    }
}

/// The name of the anonymous caller.
pub const ANONYMOUS: &str = "anonymous";
/// The name of the engine's own identity.
pub const SYSTEM: &str = "system";

/// What a request does, as far as access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act<'a> {
    /// Reads anything.
    Read,
    /// Creates or changes a job with this owner and owning team (for a
    /// change of owner, asked once for the job as it is and once as it
    /// would be).
    Job {
        /// The job's `owner`.
        owner: &'a str,
        /// The job's `owning_team`.
        owning_team: &'a str,
    },
    /// Changes a cluster object (a host, a pool).
    Cluster,
}

/// A refusal, with the reason the caller is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{who} ({role}) may not {what}: {why}")]
pub struct Denied {
    /// The identity's name.
    pub who: String,
    /// Its role.
    pub role: Role,
    /// What it asked.
    pub what: String,
    /// Why not.
    pub why: String,
}

/// Whether `who` may do `act`; `what` names it in a refusal (`"delete job
/// web"`), made only then: every API write asks, nearly all are allowed.
pub fn authorize(
    who: &Identity,
    act: Act<'_>,
    what: impl FnOnce() -> String,
) -> Result<(), Denied> {
    let deny = |why: String| Denied {
        who: who.name.clone(),
        role: who.role,
        what: what(),
        why,
    };
    match (act, who.role) {
        (Act::Read, _) | (_, Role::Admin) => Ok(()),
        (_, Role::Viewer) => Err(deny("viewers change nothing".into())),
        (Act::Cluster, Role::Operator) => Ok(()),
        (Act::Cluster, _) => Err(deny("hosts and pools are for operators and admins".into())),
        (Act::Job { owner, owning_team }, Role::User | Role::Operator) => {
            if who.owns(owner, owning_team) {
                Ok(())
            } else {
                Err(deny(format!(
                    "the job belongs to owner '{owner}', team '{owning_team}', \
                     neither of which is {}",
                    if who.teams.is_empty() {
                        format!("'{}'", who.name)
                    } else {
                        format!(
                            "'{}' or one of its teams ({})",
                            who.name,
                            who.teams.join(", ")
                        )
                    }
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Identity {
        Identity {
            name: "alice".into(),
            role,
            teams: vec!["payments".into()],
            anonymous: false,
        }
    }

    const OWN_BY_NAME: Act<'static> = Act::Job {
        owner: "alice",
        owning_team: "",
    };
    const OWN_BY_TEAM: Act<'static> = Act::Job {
        owner: "bob",
        owning_team: "payments",
    };
    const OTHERS: Act<'static> = Act::Job {
        owner: "bob",
        owning_team: "search",
    };
    const OWN_BY_TEAM_EMAIL: Act<'static> = Act::Job {
        owner: "payments",
        owning_team: "",
    };
    const UNOWNED: Act<'static> = Act::Job {
        owner: "",
        owning_team: "",
    };

    /// Every role against every kind of act: the matrix the faces' tests
    /// repeat end to end.
    #[test]
    fn the_matrix() {
        let expect = [
            // role, read, own by name, by team, by team as owner (Titus),
            // other's, unowned, cluster
            (
                Role::Viewer,
                [true, false, false, false, false, false, false],
            ),
            (Role::User, [true, true, true, true, false, false, false]),
            (Role::Operator, [true, true, true, true, false, false, true]),
            (Role::Admin, [true, true, true, true, true, true, true]),
        ];
        for (role, allowed) in expect {
            let acts = [
                Act::Read,
                OWN_BY_NAME,
                OWN_BY_TEAM,
                OWN_BY_TEAM_EMAIL,
                OTHERS,
                UNOWNED,
                Act::Cluster,
            ];
            for (act, allowed) in acts.into_iter().zip(allowed) {
                assert_eq!(
                    authorize(&who(role), act, || "x".into()).is_ok(),
                    allowed,
                    "{role} {act:?}"
                );
            }
        }
    }

    #[test]
    fn a_refusal_says_who_what_and_why() {
        let denied = authorize(&who(Role::User), OTHERS, || "delete job web".into()).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "alice (user) may not delete job web: the job belongs to owner 'bob', team \
             'search', neither of which is 'alice' or one of its teams (payments)"
        );
        let denied =
            authorize(&who(Role::Viewer), OWN_BY_NAME, || "stop job web".into()).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "alice (viewer) may not stop job web: viewers change nothing"
        );
    }

    #[test]
    fn an_empty_owner_is_nobody_s() {
        let mut nameless = who(Role::User);
        nameless.name = String::new();
        nameless.teams = vec![String::new()];
        assert!(authorize(&nameless, UNOWNED, || "x".into()).is_err());
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Viewer < Role::Admin);
    }
}
