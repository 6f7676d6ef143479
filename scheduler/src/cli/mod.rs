//! `drover`, the command line for users: jobs and pods over the
//! scheduler's JSON API, tables for people and `--output json` for
//! scripts, and the one-command quickstart. One file per resource; each
//! command builds a request, sends it, prints the answer.
//!
//! - [`job`]: `drover job create|get|list|stop|start|delete|restart|watch`.
//! - [`pod`]: `drover pod list|get|events|stop|start|restart|logs`.
//! - [`logs`]: `drover pod logs`, through the agent's files API.
//! - [`pool`]: `drover pool create|get|list|update|delete` (operators).
//! - [`run`]: `drover run create|get|list|terminate|retry|archive|unarchive|delete`
//!   (Kubeflow pipeline runs over `/apis/v1beta1`); [`run_watch`]: `run watch`.
//! - [`watch`]: live progress of jobs (pure model, and its loop woken by
//!   the scheduler's watch stream, read by [`sse`]).
//! - [`spec_file`]: job spec files (YAML/JSON) with line-accurate errors.
//! - [`quickstart`]: `drover quickstart`; [`children`]: the processes it runs.
//! - [`client`]: the HTTP client; [`output`]: tables and JSON; [`error`].
//! - [`config`]: the CLI's config file (address, token).

pub mod children;
pub mod client;
pub mod config;
pub mod error;
pub mod host;
pub mod job;
pub mod logs;
pub mod output;
pub mod pod;
pub mod pool;
pub mod quickstart;
pub mod run;
pub mod run_watch;
pub mod spec_file;
pub mod sse;
pub mod update;
pub mod watch;

use clap::{CommandFactory, Parser, Subcommand};
use client::ApiClient;
use error::CliError;
use output::Output;

/// Submit and follow jobs on a Drover scheduler.
#[derive(Debug, Clone, Parser)]
#[command(name = "drover", version, about)]
pub struct Cli {
    /// The scheduler's address (default: the config file's `addr`, else
    /// http://127.0.0.1:8080).
    #[arg(long, env = "DROVER_ADDR", global = true)]
    pub addr: Option<String>,
    /// A bearer token from the scheduler's credentials file (default: the
    /// config file's `token`; see `drover-scheduler credentials token`).
    #[arg(long, env = "DROVER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA bundle that an `https://` scheduler's certificate is
    /// verified against.
    #[arg(long, env = "DROVER_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
    /// How answers are printed.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `drover <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Jobs: create, get, list, stop, start, delete, restart, watch,
    /// update, rollback, pause, resume, abort, scale, history. A job
    /// is named by its id or its name; an id wins over other jobs' names,
    /// and a name several jobs share is refused, listing their ids.
    Job {
        /// The job command.
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Pods: list, get, events, stop, start, restart, logs.
    Pod {
        /// The pod command.
        #[command(subcommand)]
        command: pod::PodCommand,
    },
    /// Resource pools: create, get, list, update, delete (writes are for
    /// operators and admins).
    Pool {
        /// The pool command (boxed: its flags make it the largest).
        #[command(subcommand)]
        command: Box<pool::PoolCommand>,
    },
    /// Hosts: list them with their maintenance state, drain them for
    /// maintenance, complete it (operators).
    Host {
        /// The host command.
        #[command(subcommand)]
        command: host::HostCommand,
    },
    /// Kubeflow pipeline runs: create (from a compiled pipeline), get,
    /// list, terminate, retry, archive, unarchive, delete, watch.
    Run {
        /// The run command.
        #[command(subcommand)]
        command: run::RunCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Start a local scheduler and agent simulator, run the example jobs
    /// and show them running; Ctrl-C stops everything.
    Quickstart(quickstart::QuickstartArgs),
}

/// The scheduler's address when neither flag, variable nor config file
/// names one.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8080";

/// The client the flags, their variables and the config file describe.
fn scheduler_client(cli: &Cli) -> Result<ApiClient, CliError> {
    let file = match config::config_path() {
        Some(path) => config::load(&path)?,
        None => config::CliConfig::default(),
    };
    let addr = cli
        .addr
        .clone()
        .or(file.addr)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let ca_file = cli.ca_file.clone().or(file.ca_file);
    let client = ApiClient::with_ca(&addr, ca_file.as_deref())?;
    Ok(match cli.token.clone().or(file.token) {
        Some(token) => client.with_token(&token)?,
        None => client,
    })
}

/// Runs a parsed command line; answers the process exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Job { ref command } => {
            job::run(&scheduler_client(&cli)?, cli.output, command.clone()).await
        }
        Command::Pod { ref command } => {
            pod::run(&scheduler_client(&cli)?, cli.output, command.clone()).await
        }
        Command::Pool { ref command } => {
            pool::run(&scheduler_client(&cli)?, cli.output, (**command).clone()).await
        }
        Command::Host { ref command } => {
            host::run(&scheduler_client(&cli)?, cli.output, command.clone()).await
        }
        Command::Run { ref command } => {
            run::run(&scheduler_client(&cli)?, cli.output, command.clone()).await
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drover", &mut std::io::stdout());
            Ok(0)
        }
        Command::Quickstart(args) => quickstart::run(args).await,
    }
}
