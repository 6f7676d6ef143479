//! Live state: watchers told of every change, resumable from a revision.
//! The changes come from one shared log ([`crate::runner::watch_log`]);
//! each watcher is a [`feed`] over it, rendered by its face.
//!
//! - [`feed`]: one watcher's task: read after its cursor, render, hand
//!   over at the client's pace, cut it off (with its resume revision) when
//!   it falls too far behind.
//! - [`filter`]: which jobs and pods a watcher asked for. Pure.
//! - [`json`]: entries and snapshots in the JSON API's shapes.
//! - [`sse`]: `GET /api/v1/watch`, server-sent events.

pub mod feed;
pub mod filter;
pub mod json;
pub mod sse;

use super::error::{ApiError, Code};
use crate::runner::watch_log::WatchOpenError;

impl From<WatchOpenError> for ApiError {
    fn from(e: WatchOpenError) -> Self {
        let code = match e {
            WatchOpenError::OutOfRange { .. } => Code::OutOfRange,
            WatchOpenError::Ahead { .. } => Code::InvalidArgument,
        };
        ApiError {
            code,
            message: e.to_string(),
        }
    }
}

/// The message a watcher cut off for lagging is given: the same words on
/// every face, naming the revision to resume from.
pub fn cut_off_message(resume: crate::model::job::Revision) -> String {
    format!(
        "the watcher fell too far behind the latest changes (more than --watch-max-lag); every \
         change up to revision {resume} was delivered: resume from revision {resume}"
    )
}
