//! `drover`: the users' command line (see [`drover_scheduler::cli`]).
//! Parses the arguments, runs the command on a tokio runtime, prints any
//! error as `error: ...` on stderr and exits non-zero.

use clap::Parser;
use drover_scheduler::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let parsed = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(parsed)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command line ends quietly when what reads its output goes away
/// (`drover job list | head -3`), as `ls` or `kubectl` do: the Rust runtime
/// ignores SIGPIPE, so a write to a closed pipe would instead fail, and
/// `println!` panics on that failure.
fn restore_default_sigpipe() {
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
