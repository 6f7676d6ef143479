//! `drover`, the command line for users: jobs and pods over the
//! scheduler's JSON API, tables for people and `--output json` for
//! scripts, and the one-command quickstart. One file per resource; each
//! command builds a request, sends it, prints the answer.
//!
//! - [`job`]: `drover job create|get|list|stop|start|delete|restart|watch`.
//! - [`pod`]: `drover pod list|get|events|stop|start|restart|logs`.
//! - [`logs`]: `drover pod logs`, through the agent's files API.
//! - [`watch`]: live progress of jobs (pure model, and its loop woken by
//!   the scheduler's watch stream, read by [`sse`]).
//! - [`spec_file`]: job spec files (YAML/JSON) with line-accurate errors.
//! - [`quickstart`]: `drover quickstart`; [`children`]: the processes it runs.
//! - [`client`]: the HTTP client; [`output`]: tables and JSON; [`error`].

pub mod children;
pub mod client;
pub mod error;
pub mod job;
pub mod logs;
pub mod output;
pub mod pod;
pub mod quickstart;
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
    /// The scheduler's address.
    #[arg(
        long,
        env = "DROVER_ADDR",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub addr: String,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Start a local scheduler and agent simulator, run the example jobs
    /// and show them running; Ctrl-C stops everything.
    Quickstart(quickstart::QuickstartArgs),
}

/// Runs a parsed command line; answers the process exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Job { command } => {
            let client = ApiClient::with_ca(&cli.addr, cli.ca_file.as_deref())?;
            job::run(&client, cli.output, command).await
        }
        Command::Pod { command } => {
            let client = ApiClient::with_ca(&cli.addr, cli.ca_file.as_deref())?;
            pod::run(&client, cli.output, command).await
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drover", &mut std::io::stdout());
            Ok(0)
        }
        Command::Quickstart(args) => quickstart::run(args).await,
    }
}
