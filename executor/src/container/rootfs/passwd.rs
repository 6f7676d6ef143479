//! Users inside an image: an image's `User` (`name`, `uid`, `name:group`,
//! `uid:gid`) resolved against the image's own `/etc/passwd` and
//! `/etc/group`, as Docker resolves it, never against the host's.
//! Parsing is pure; [`lookup`] reads the two files.

use std::path::{Path, PathBuf};

use crate::container::user::{Credentials, UserEntry};

/// Why an image's user cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageUserError {
    /// A name the image's `/etc/passwd` (or `/etc/group`) lacks.
    #[error("user {user:?} is not in the image's /etc/{file}")]
    Unknown {
        /// The name.
        user: String,
        /// `passwd` or `group`.
        file: &'static str,
    },
}

/// One `/etc/passwd` line: name, uid, gid, home.
fn passwd_entry(line: &str) -> Option<(&str, u32, u32, &str)> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 7 {
        return None;
    }
    Some((
        fields[0],
        fields[2].parse().ok()?,
        fields[3].parse().ok()?,
        fields[5],
    ))
}

/// One `/etc/group` line: name, gid, members.
fn group_entry(line: &str) -> Option<(&str, u32, Vec<&str>)> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 {
        return None;
    }
    let members = fields[3].split(',').filter(|m| !m.is_empty()).collect();
    Some((fields[0], fields[2].parse().ok()?, members))
}

/// Resolves `spec` against the contents of `/etc/passwd` and `/etc/group`.
/// A numeric uid absent from `passwd` runs with gid = the given one or 0,
/// and home `/`, as Docker does.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<UserEntry, ImageUserError> {
    let (user, wanted_group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let unknown = |user: &str, file| ImageUserError::Unknown {
        user: user.to_string(),
        file,
    };
    let entry = passwd
        .lines()
        .filter_map(passwd_entry)
        .find(|(name, uid, ..)| *name == user || user.parse() == Ok(*uid));
    let (name, uid, primary, home) = match (entry, user.parse::<u32>()) {
        (Some((name, uid, gid, home)), _) => (name.to_string(), uid, gid, PathBuf::from(home)),
        (None, Ok(uid)) => (user.to_string(), uid, 0, PathBuf::from("/")),
        (None, Err(_)) => return Err(unknown(user, "passwd")),
    };
    let groups: Vec<(&str, u32, Vec<&str>)> = group.lines().filter_map(group_entry).collect();
    let gid = match wanted_group {
        None => primary,
        Some(wanted) => match groups.iter().find(|(g, ..)| *g == wanted) {
            Some((_, gid, _)) => *gid,
            None => wanted.parse().map_err(|_| unknown(wanted, "group"))?,
        },
    };
    let mut supplementary = vec![gid];
    if wanted_group.is_none() {
        for (_, g, members) in &groups {
            if members.contains(&name.as_str()) && !supplementary.contains(g) {
                supplementary.push(*g);
            }
        }
    }
    Ok(UserEntry {
        name,
        credentials: Credentials {
            uid,
            gid,
            groups: supplementary,
        },
        home,
    })
}

/// Resolves `spec` in the image whose root is `root`. Blocking.
pub fn lookup(root: &Path, spec: &str) -> Result<UserEntry, ImageUserError> {
    let read =
        |file: &str| std::fs::read_to_string(root.join("etc").join(file)).unwrap_or_default();
    resolve(spec, &read("passwd"), &read("group"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n";

    #[test]
    fn names_and_ids_resolve_in_the_images_files() {
        let app = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(app.credentials.uid, 1000);
        assert_eq!(app.credentials.gid, 1000);
        assert_eq!(app.credentials.groups, vec![1000, 2000]);
        assert_eq!(app.home, PathBuf::from("/home/app"));
        let by_id = resolve("1000:extra", PASSWD, GROUP).unwrap();
        assert_eq!((by_id.name.as_str(), by_id.credentials.gid), ("app", 2000));
        let stranger = resolve("4242:77", PASSWD, GROUP).unwrap();
        assert_eq!(
            (stranger.credentials.uid, stranger.credentials.gid),
            (4242, 77)
        );
        assert_eq!(stranger.home, PathBuf::from("/"));
        assert_eq!(resolve("root", PASSWD, GROUP).unwrap().credentials.uid, 0);
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP).unwrap_err(),
            ImageUserError::Unknown {
                user: "nobody".into(),
                file: "passwd"
            }
        );
        assert!(resolve("app:nogroup", PASSWD, GROUP).is_err());
        assert!(resolve("app", "garbage\n::::", "").is_err());
    }
}
