//! The secrets hook: writes each of the task's secrets (its SECRET volumes,
//! [`crate::supervisor::task::SecretFile`]) to its path in the sandbox
//! before the task starts, as a Mesos agent's `volume/secret` isolator
//! does: the file readable by the task's user only (0400, owned by it),
//! the directories on its way owned by it too. The bytes go to the file
//! and nowhere else: errors name the path, never the contents.
//!
//! It runs after the sandbox hook (the sandbox exists and is the task
//! user's) and before the process is spawned.

use super::{Launch, TaskHook};
use crate::supervisor::task::TaskPlan;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(super) struct SecretsHook;

impl TaskHook for SecretsHook {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn prestart(&mut self, plan: &TaskPlan, launch: &mut Launch) -> Result<(), std::io::Error> {
        let owner = launch.user.as_ref().map(|u| {
            (
                nix::unistd::Uid::from_raw(u.uid),
                nix::unistd::Gid::from_raw(u.gid),
            )
        });
        for secret in &plan.secrets {
            write_secret(&launch.sandbox, &secret.path, &secret.data, owner)?;
        }
        Ok(())
    }
}

type Owner = Option<(nix::unistd::Uid, nix::unistd::Gid)>;

/// Writes `data` at `sandbox/relative` (relative checked by the plan),
/// 0400 and owned by `owner` (else by this process, which is then the
/// task's user).
fn write_secret(sandbox: &Path, relative: &str, data: &[u8], owner: Owner) -> std::io::Result<()> {
    let target = sandbox.join(relative);
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("secret file {}: {e}", target.display()))
    };
    let mut dir = sandbox.to_path_buf();
    let parts: Vec<&str> = relative.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                return Err(named(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} is in the way and not a directory", dir.display()),
                )))
            }
            Err(_) => {}
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(named)?;
        chown(&dir, owner).map_err(named)?;
    }
    // Whatever is at the path (a fetched file, a link) is replaced, never
    // written through: the new file is made here, O_EXCL and O_NOFOLLOW.
    match std::fs::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(named(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&target)
        .map_err(named)?;
    file.write_all(data).map_err(named)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(&file, Some(uid), Some(gid)).map_err(|e| named(e.into()))?;
    }
    // The umask only takes bits away; set 0400 whatever it was.
    file.set_permissions(std::fs::Permissions::from_mode(0o400))
        .map_err(named)?;
    file.sync_all().map_err(named)
}

fn chown(path: &Path, owner: Owner) -> std::io::Result<()> {
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_secret_is_written_0400_in_new_directories_replacing_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::write(dir.path().join("conf/db.pass"), "fetched").unwrap();
        write_secret(dir.path(), "conf/db.pass", b"hunter2", None).unwrap();
        write_secret(dir.path(), "a/b/c.key", b"k", None).unwrap();
        let meta = std::fs::metadata(dir.path().join("conf/db.pass")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o400);
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        assert_eq!(
            std::fs::read(dir.path().join("conf/db.pass")).unwrap(),
            b"hunter2"
        );
        assert_eq!(std::fs::read(dir.path().join("a/b/c.key")).unwrap(), b"k");
        let sub = std::fs::metadata(dir.path().join("a/b")).unwrap();
        assert_eq!(sub.mode() & 0o777, 0o700);
    }

    #[test]
    fn a_link_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).unwrap();
        std::os::unix::fs::symlink(&outside, sandbox.join("s")).unwrap();
        write_secret(&sandbox, "s", b"x", None).unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(std::fs::read(sandbox.join("s")).unwrap(), b"x");
    }

    #[test]
    fn an_error_names_the_path_and_never_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let err = write_secret(dir.path(), "file/inner", b"hunter2", None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("file/inner") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
