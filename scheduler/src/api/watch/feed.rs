//! One watcher's feed: a task that reads the shared watch log after the
//! watcher's cursor, renders each entry for it (a face's own message, or
//! nothing when its filter keeps nothing) and hands it to the face through
//! a small channel. The client's pace is the channel's: while it does not
//! read, the feed holds one rendered message and watches how far behind
//! the head it falls; past `--watch-max-lag` (or once the window has moved
//! past it) it is cut off, after everything it was sent, with the revision
//! to resume from. It is never dropped silently, and a slow client costs
//! the scheduler a channel's worth of messages, not a copy of the log
//! (Marathon's event stream dropped slow consumers with no way back).

use crate::model::job::Revision;
use crate::runner::watch_log::{Cursor, Read, WatchEntry, WatchLog};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages a feed holds for a client that has not read them yet.
const BUFFER: usize = 16;

/// Entries read from the log at once.
const READ_BATCH: usize = 64;

/// What a feed hands its face.
#[derive(Debug)]
pub enum FeedItem<M> {
    /// A message for the client.
    Message(M),
    /// The client fell too far behind: it was sent every change up to
    /// `resume`, and resumes from there.
    CutOff {
        /// The revision to resume from.
        resume: Revision,
    },
    /// The watch was cancelled.
    Cancelled,
}

/// Makes a keep-alive message (`Duration`: how often, when nothing else
/// was sent).
pub type KeepAlive<M> = (Duration, Box<dyn FnMut() -> M + Send>);

/// Starts a feed of the entries after `cursor`; see the module doc. A
/// dropped receiver ends it.
pub fn spawn_feed<M: Send + 'static>(
    log: Arc<WatchLog>,
    cursor: Cursor,
    render: impl FnMut(&WatchEntry) -> Option<M> + Send + 'static,
    keep_alive: Option<KeepAlive<M>>,
    cancel: CancellationToken,
) -> mpsc::Receiver<FeedItem<M>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(run(log, cursor, render, keep_alive, cancel, tx));
    rx
}

/// How a feed ended.
enum End {
    CutOff(Revision),
    Cancelled,
    Gone,
}

async fn run<M: Send + 'static>(
    log: Arc<WatchLog>,
    mut cursor: Cursor,
    mut render: impl FnMut(&WatchEntry) -> Option<M> + Send + 'static,
    mut keep_alive: Option<KeepAlive<M>>,
    cancel: CancellationToken,
    tx: mpsc::Sender<FeedItem<M>>,
) {
    let guard = log.register(&cursor);
    let max_lag = log.config().max_lag;
    let mut heads = log.heads();
    let period = keep_alive
        .as_ref()
        .map_or(Duration::from_secs(3600), |(every, _)| *every);
    let mut quiet_since = tokio::time::Instant::now();
    let end = 'feed: loop {
        let entries = match log.read_after(&cursor, READ_BATCH) {
            Read::Evicted => break End::CutOff(cursor.revision),
            Read::Entries(entries) => entries,
        };
        if entries.is_empty() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break End::Cancelled,
                _ = tx.closed() => break End::Gone,
                changed = heads.changed() => {
                    if changed.is_err() {
                        break End::Gone;
                    }
                }
                _ = tokio::time::sleep_until(quiet_since + period), if keep_alive.is_some() => {
                    if let Some((_, make)) = keep_alive.as_mut() {
                        // A keep-alive that finds the client behind is
                        // not needed: it has messages to read.
                        let _ = tx.try_send(FeedItem::Message(make()));
                    }
                    quiet_since = tokio::time::Instant::now();
                }
            }
            continue;
        }
        for entry in entries {
            if let Some(message) = render(&entry) {
                // A full channel: the client is not reading. Its lag is
                // judged now, not only at the next commit: the commits
                // that put it behind may all have come before it stopped
                // (a burst, then quiet), and none may come after.
                let message = match tx.try_reserve() {
                    Ok(permit) => {
                        permit.send(FeedItem::Message(message));
                        None
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => break 'feed End::Gone,
                    Err(mpsc::error::TrySendError::Full(())) => {
                        if too_far_behind(&log, &cursor, &entry, max_lag) {
                            break 'feed End::CutOff(cursor.revision);
                        }
                        Some(message)
                    }
                };
                let mut pending = message;
                while let Some(message) = pending.take() {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => break 'feed End::Cancelled,
                        permit = tx.reserve() => match permit {
                            Ok(permit) => permit.send(FeedItem::Message(message)),
                            Err(_) => break 'feed End::Gone,
                        },
                        changed = heads.changed() => {
                            if changed.is_err() {
                                break 'feed End::Gone;
                            }
                            if too_far_behind(&log, &cursor, &entry, max_lag) {
                                break 'feed End::CutOff(cursor.revision);
                            }
                            pending = Some(message);
                        }
                    }
                }
                quiet_since = tokio::time::Instant::now();
            }
            cursor = cursor.past(&entry);
            guard.advanced(&cursor);
        }
    };
    // No longer counted as open: a cut-off one may still wait below for
    // its client to read the end.
    if matches!(end, End::CutOff(_)) {
        guard.cut_off();
    }
    drop(guard);
    let last = match end {
        End::Gone => return,
        End::Cancelled => FeedItem::Cancelled,
        End::CutOff(resume) => {
            tracing::info!(resume, "a watcher fell too far behind; cut off");
            FeedItem::CutOff { resume }
        }
    };
    // After everything already handed over; the client reads it when it
    // reads again, or goes away.
    tokio::select! {
        _ = tx.send(last) => {}
        _ = tx.closed() => {}
    }
}

/// Whether a client whose feed holds `entry` (after `cursor`) is past
/// `max_lag`, or its next entries are gone from the window. The entry in
/// hand counts as delivered: one revision may carry thousands of pods (a
/// launch round), and is never a lag by itself.
fn too_far_behind(log: &WatchLog, cursor: &Cursor, entry: &WatchEntry, max_lag: u64) -> bool {
    let behind = log.lag(&cursor.past(entry));
    let evicted = matches!(log.read_after(cursor, 0), Read::Evicted);
    behind > max_lag || evicted
}
