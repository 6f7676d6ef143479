//! The fetch hook: brings the task's `CommandInfo.uris` into its sandbox
//! ([`crate::fetcher`]) once the sandbox is the task user's and before
//! anything runs in it. A URI that cannot be fetched fails the launch.

use super::{Launch, TaskHook};
use crate::fetcher::{self, FetchTarget, FetcherCache};
use crate::supervisor::task::TaskPlan;

pub(super) struct FetchHook {
    /// The fetcher cache.
    pub(super) cache: FetcherCache,
}

impl TaskHook for FetchHook {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn prestart(&mut self, plan: &TaskPlan, launch: &mut Launch) -> Result<(), std::io::Error> {
        if plan.uris.is_empty() {
            return Ok(());
        }
        let target = FetchTarget {
            sandbox: &launch.sandbox,
            cache: &self.cache,
            user: plan.user.as_deref(),
            owner: launch.user.as_ref().map(|u| (u.uid, u.gid)),
        };
        run_to_end(fetcher::fetch_all(&plan.uris, &target))
            .map(drop)
            .map_err(std::io::Error::other)
    }
}

/// Runs the fetch to its end from the synchronous prestart step: on a
/// thread of its own with its own small runtime, so neither this
/// runtime's worker (handed over with `block_in_place`) nor its other
/// tasks wait on a download.
fn run_to_end<T: Send>(
    fetch: impl std::future::Future<Output = Result<T, fetcher::FetchError>> + Send,
) -> Result<T, String> {
    let run = || {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("starting the fetcher's runtime: {e}"))?
                        .block_on(fetch)
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("the fetcher panicked".to_string()))
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}
