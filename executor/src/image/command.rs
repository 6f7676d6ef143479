//! How a task's command combines with its image's configuration: argv,
//! environment, working directory and user. Pure.
//!
//! The rules are Mesos' docker runtime isolator's
//! (`src/slave/containerizer/mesos/isolators/docker/runtime.cpp`,
//! `getLaunchCommand` and its table), which follow Docker's
//! `ENTRYPOINT`/`CMD`:
//! - `shell` true: `/bin/sh -c value` inside the image; the image's
//!   Entrypoint and Cmd are ignored. No value is an error.
//! - `shell` false with a value: the value is the executable and the
//!   arguments are its argv (`arguments[0]` is argv0), as Mesos' command
//!   executor runs it; the image's Entrypoint and Cmd are ignored. With no
//!   arguments argv is `[value]`.
//! - `shell` false without a value: the image's Entrypoint followed by the
//!   task's arguments, or by the image's Cmd when the task gives none. With
//!   no Entrypoint, `Cmd[0]` is the executable, followed by the task's
//!   arguments or else the rest of Cmd. Neither is an error.
//! - Environment: the image's `Env` first, the task's variables override it
//!   (Mesos' containerizer overwrites duplicates). `PATH` falls back to
//!   Docker's default when neither sets it.
//! - Working directory: the image's `WorkingDir` when set, else the sandbox
//!   mount point.
//! - User: the task's when it names one, else the image's `User`.
//!
//! The input is Drover's own [`TaskCommand`]: the supervisor fills it from
//! `CommandInfo` (`shell` defaults to true there, as in the proto).

use super::config::ImageConfig;

/// Where the sandbox is mounted inside an image container (Mesos' default
/// `--sandbox_directory`).
pub const SANDBOX_MOUNT_POINT: &str = "/mnt/mesos/sandbox";

/// Docker's default `PATH` for a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A task's command, as `CommandInfo` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCommand {
    /// `CommandInfo.shell` (true when unset).
    pub shell: bool,
    /// `CommandInfo.value`.
    pub value: Option<String>,
    /// `CommandInfo.arguments`.
    pub arguments: Vec<String>,
    /// `CommandInfo.environment` variables, in order.
    pub env: Vec<(String, String)>,
    /// `CommandInfo.user` (or the framework's user the supervisor chose).
    pub user: Option<String>,
}

/// What the container runs: exec `executable` with `argv` in `cwd` as `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCommand {
    /// The program to exec, resolved inside the image (a bare name is
    /// looked up on the container's `PATH`).
    pub executable: String,
    /// The full argv, argv0 first.
    pub argv: Vec<String>,
    /// The environment, each name once, image variables first.
    pub env: Vec<(String, String)>,
    /// The working directory inside the container.
    pub cwd: String,
    /// The user to run as, if any (`user`, `uid`, `user:group`, `uid:gid`).
    pub user: Option<String>,
}

/// Why a task's command and its image give nothing to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `shell` is true but the command has no value (Mesos: "Shell
    /// specified but no command value provided").
    #[error("shell specified but no command value provided")]
    ShellWithoutValue,
    /// `shell` false, no value, and the image has neither Entrypoint nor Cmd
    /// (Mesos: "No executable is found").
    #[error(
        "no executable: the task has no command value and the image has neither Entrypoint nor Cmd"
    )]
    NoExecutable,
}

/// Combines `task` with the image's `image` configuration.
pub fn combine(task: &TaskCommand, image: &ImageConfig) -> Result<ContainerCommand, CommandError> {
    let (executable, argv) = argv_of(task, image)?;
    Ok(ContainerCommand {
        executable,
        argv,
        env: env_of(&task.env, &image.env),
        cwd: image
            .working_dir
            .clone()
            .unwrap_or_else(|| SANDBOX_MOUNT_POINT.to_owned()),
        user: task.user.clone().or_else(|| image.user.clone()),
    })
}

fn argv_of(task: &TaskCommand, image: &ImageConfig) -> Result<(String, Vec<String>), CommandError> {
    if task.shell {
        let value = task.value.as_ref().ok_or(CommandError::ShellWithoutValue)?;
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), value.clone()];
        return Ok(("/bin/sh".to_owned(), argv));
    }
    if let Some(value) = &task.value {
        let argv = if task.arguments.is_empty() {
            vec![value.clone()]
        } else {
            task.arguments.clone()
        };
        return Ok((value.clone(), argv));
    }
    let (head, default_rest): (&[String], &[String]) = match (&image.entrypoint, &image.cmd) {
        (Some(entrypoint), cmd) => (entrypoint, cmd.as_deref().unwrap_or_default()),
        (None, Some(cmd)) => (&cmd[..1], &cmd[1..]),
        (None, None) => return Err(CommandError::NoExecutable),
    };
    let rest = if task.arguments.is_empty() {
        default_rest
    } else {
        &task.arguments
    };
    let argv: Vec<String> = head.iter().chain(rest).cloned().collect();
    Ok((head[0].clone(), argv))
}

fn env_of(task_env: &[(String, String)], image_env: &[String]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set =
        |name: &str, value: &str| match env.iter_mut().find(|(existing, _)| existing == name) {
            Some(entry) => entry.1 = value.to_owned(),
            None => env.push((name.to_owned(), value.to_owned())),
        };
    // Entries without '=' are skipped, as Mesos does.
    for (name, value) in image_env.iter().filter_map(|entry| entry.split_once('=')) {
        set(name, value);
    }
    for (name, value) in task_env {
        set(name, value);
    }
    if !env.iter().any(|(name, _)| name == "PATH") {
        env.push(("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.map(strings),
            cmd: cmd.map(strings),
            env: strings(&["PATH=/bin", "FROM_IMAGE=image", "SHARED=image"]),
            working_dir: None,
            user: None,
        }
    }

    fn exec(value: Option<&str>, arguments: &[&str]) -> TaskCommand {
        TaskCommand {
            shell: false,
            value: value.map(str::to_owned),
            arguments: strings(arguments),
            ..TaskCommand::default()
        }
    }

    fn argv(task: &TaskCommand, image: &ImageConfig) -> Result<Vec<String>, CommandError> {
        combine(task, image).map(|command| command.argv)
    }

    const EP: Option<&[&str]> = Some(&["/bin/echo", "entry:"]);
    const CMD: Option<&[&str]> = Some(&["default-arg", "second"]);

    // Rows 1-2 of Mesos' table: shell=0, value=0.
    #[test]
    fn without_value_or_arguments_the_entrypoint_gets_the_image_cmd() {
        assert_eq!(
            argv(&exec(None, &[]), &image(EP, CMD)),
            Ok(strings(&["/bin/echo", "entry:", "default-arg", "second"]))
        );
        assert_eq!(
            argv(&exec(None, &[]), &image(EP, None)),
            Ok(strings(&["/bin/echo", "entry:"]))
        );
        assert_eq!(
            argv(&exec(None, &[]), &image(None, CMD)),
            Ok(strings(&["default-arg", "second"]))
        );
        assert_eq!(
            argv(&exec(None, &[]), &image(None, None)),
            Err(CommandError::NoExecutable)
        );
    }

    #[test]
    fn task_arguments_replace_the_image_cmd_but_follow_the_entrypoint() {
        assert_eq!(
            argv(&exec(None, &["a", "b"]), &image(EP, CMD)),
            Ok(strings(&["/bin/echo", "entry:", "a", "b"]))
        );
        assert_eq!(
            argv(&exec(None, &["a"]), &image(EP, None)),
            Ok(strings(&["/bin/echo", "entry:", "a"]))
        );
        // No Entrypoint: Cmd[0] stays the executable, the task's arguments follow it.
        assert_eq!(
            argv(&exec(None, &["a"]), &image(None, CMD)),
            Ok(strings(&["default-arg", "a"]))
        );
        assert_eq!(
            argv(&exec(None, &["a"]), &image(None, None)),
            Err(CommandError::NoExecutable)
        );
    }

    // Rows 3-4: shell=0, value=1.
    #[test]
    fn a_value_replaces_entrypoint_and_cmd_and_arguments_are_the_whole_argv() {
        for (ep, cmd) in [(None, None), (None, CMD), (EP, None), (EP, CMD)] {
            let command = combine(&exec(Some("/bin/ls"), &[]), &image(ep, cmd)).expect("runs");
            assert_eq!(
                (command.executable.as_str(), command.argv),
                ("/bin/ls", strings(&["/bin/ls"]))
            );
            let command =
                combine(&exec(Some("/bin/busybox"), &["ls", "-l"]), &image(ep, cmd)).expect("runs");
            assert_eq!(
                (command.executable.as_str(), command.argv),
                ("/bin/busybox", strings(&["ls", "-l"]))
            );
        }
    }

    // Rows 5-8: shell=1.
    #[test]
    fn a_shell_command_runs_under_bin_sh_and_ignores_the_image() {
        for (ep, cmd) in [(None, None), (None, CMD), (EP, None), (EP, CMD)] {
            let task = TaskCommand {
                shell: true,
                value: Some("echo $HOME".into()),
                arguments: strings(&["ignored"]),
                ..TaskCommand::default()
            };
            let command = combine(&task, &image(ep, cmd)).expect("runs");
            assert_eq!(command.executable, "/bin/sh");
            assert_eq!(command.argv, strings(&["/bin/sh", "-c", "echo $HOME"]));
            let task = TaskCommand {
                shell: true,
                value: None,
                ..TaskCommand::default()
            };
            assert_eq!(
                combine(&task, &image(ep, cmd)),
                Err(CommandError::ShellWithoutValue)
            );
        }
    }

    #[test]
    fn the_task_environment_overrides_the_image_environment() {
        let task = TaskCommand {
            shell: true,
            value: Some("env".into()),
            env: vec![
                ("SHARED".into(), "task".into()),
                ("FROM_TASK".into(), "task".into()),
            ],
            ..TaskCommand::default()
        };
        let command = combine(&task, &image(None, CMD)).expect("runs");
        let pairs = |items: &[(&str, &str)]| {
            items
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            command.env,
            pairs(&[
                ("PATH", "/bin"),
                ("FROM_IMAGE", "image"),
                ("SHARED", "task"),
                ("FROM_TASK", "task")
            ])
        );
    }

    #[test]
    fn path_defaults_to_dockers_and_malformed_image_entries_are_skipped() {
        let config = ImageConfig {
            env: strings(&["NO_EQUALS_SIGN", "A=b=c"]),
            cmd: Some(strings(&["sh"])),
            ..ImageConfig::default()
        };
        let command = combine(&exec(None, &[]), &config).expect("runs");
        assert_eq!(
            command.env,
            vec![
                ("A".to_owned(), "b=c".to_owned()),
                ("PATH".to_owned(), DEFAULT_PATH.to_owned())
            ]
        );
    }

    #[test]
    fn working_dir_is_the_images_else_the_sandbox_mount_point() {
        let mut config = image(None, CMD);
        assert_eq!(
            combine(&exec(None, &[]), &config).expect("runs").cwd,
            SANDBOX_MOUNT_POINT
        );
        config.working_dir = Some("/srv".into());
        assert_eq!(
            combine(&exec(None, &[]), &config).expect("runs").cwd,
            "/srv"
        );
    }

    #[test]
    fn the_task_user_wins_over_the_image_user() {
        let mut config = image(None, CMD);
        config.user = Some("1000:1000".into());
        assert_eq!(
            combine(&exec(None, &[]), &config)
                .expect("runs")
                .user
                .as_deref(),
            Some("1000:1000")
        );
        let task = TaskCommand {
            user: Some("nobody".into()),
            ..exec(None, &[])
        };
        assert_eq!(
            combine(&task, &config).expect("runs").user.as_deref(),
            Some("nobody")
        );
        config.user = None;
        assert_eq!(combine(&exec(None, &[]), &config).expect("runs").user, None);
    }
}
