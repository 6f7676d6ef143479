//! One watcher's feed: a task that reads the shared watch log after the
//! watcher's cursor, renders each entry for it (a face's own message, or
//! nothing when its filter keeps nothing) and hands it to the face through
//! a small channel. The client's pace is the channel's. A client that
//! keeps taking messages keeps its stream, however far behind it started
//! (a resume from long ago catches up in one stream). One that has taken
//! nothing for [`STALL`] is judged: if the changes it has not taken are
//! more than `--watch-max-lag` (or the window has moved past it), it is cut
//! off, after everything it was sent, with the revision to resume from.
//! It is never dropped silently, and a slow client costs the scheduler a
//! channel's worth of messages, not a copy of the log (Marathon's event
//! stream dropped slow consumers with no way back; Kubernetes' watch cache
//! likewise ends a watcher whose buffer stays full).

use crate::model::job::Revision;
use crate::runner::watch_log::{Cursor, Read, WatchEntry, WatchLog};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Messages a feed holds for a client that has not read them yet.
const BUFFER: usize = 16;

/// Entries read from the log at once.
const READ_BATCH: usize = 64;

/// How long a client with a full channel may take nothing before its lag
/// is judged (then again at each commit while it still takes nothing). A
/// client that reads is never judged on a moment's full channel: the feed
/// renders far faster than any connection sends.
const STALL: Duration = Duration::from_secs(2);

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
    let feed = Feed {
        heads: log.heads(),
        max_lag: log.config().max_lag,
        log,
        cursor,
        tx,
        cancel,
        unread: VecDeque::with_capacity(BUFFER),
    };
    tokio::spawn(feed.run(render, keep_alive));
    rx
}

/// How a feed ended.
enum End {
    CutOff(Revision),
    Cancelled,
    Gone,
}

struct Feed<M> {
    log: Arc<WatchLog>,
    /// Past the last entry handed to the channel.
    cursor: Cursor,
    tx: mpsc::Sender<FeedItem<M>>,
    heads: watch::Receiver<Revision>,
    cancel: CancellationToken,
    max_lag: u64,
    /// The cursor past each message still in the channel, oldest first:
    /// where the client stands is just past the first.
    unread: VecDeque<Cursor>,
}

impl<M: Send + 'static> Feed<M> {
    async fn run(
        mut self,
        mut render: impl FnMut(&WatchEntry) -> Option<M> + Send + 'static,
        mut keep_alive: Option<KeepAlive<M>>,
    ) {
        let guard = self.log.register(&self.cursor);
        let period = keep_alive
            .as_ref()
            .map_or(Duration::from_secs(3600), |(every, _)| *every);
        let mut quiet_since = Instant::now();
        let end = 'feed: loop {
            let entries = match self.log.read_after(&self.cursor, READ_BATCH) {
                Read::Evicted => break End::CutOff(self.cursor.revision),
                Read::Entries(entries) => entries,
            };
            if entries.is_empty() {
                let keep_alive_due = tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break End::Cancelled,
                    _ = self.tx.closed() => break End::Gone,
                    changed = self.heads.changed() => {
                        if changed.is_err() {
                            break End::Gone;
                        }
                        false
                    }
                    _ = tokio::time::sleep_until(quiet_since + period), if keep_alive.is_some() => true,
                };
                if let (true, Some((_, make))) = (keep_alive_due, keep_alive.as_mut()) {
                    // A keep-alive that finds the client behind is not
                    // needed: it has messages to read.
                    let sent = self
                        .tx
                        .try_reserve()
                        .map(|permit| permit.send(FeedItem::Message(make())));
                    if sent.is_ok() {
                        self.sent(self.cursor);
                    }
                    quiet_since = Instant::now();
                }
                continue;
            }
            for entry in entries {
                let past = self.cursor.past(&entry);
                if let Some(message) = render(&entry) {
                    if let Err(end) = self.send(message, past).await {
                        break 'feed end;
                    }
                    quiet_since = Instant::now();
                }
                self.cursor = past;
                guard.advanced(&self.cursor);
            }
        };
        // No longer counted as open: a cut-off one may still wait below
        // for its client to read the end.
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
        // After everything already handed over; the client reads it when
        // it reads again, or goes away.
        tokio::select! {
            _ = self.tx.send(last) => {}
            _ = self.tx.closed() => {}
        }
    }

    /// Hands the client `message` (which leaves it at `past`), waiting
    /// while its channel is full; a client that takes nothing for
    /// [`STALL`] and is too far behind ends the feed instead.
    async fn send(&mut self, message: M, past: Cursor) -> Result<(), End> {
        let stall_at = Instant::now() + STALL;
        let mut stalled = false;
        let mut message = Some(message);
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(End::Cancelled),
                permit = self.tx.reserve() => {
                    if let Some(message) = message.take() {
                        permit.map_err(|_| End::Gone)?.send(FeedItem::Message(message));
                    }
                }
                // The commits that put it behind may all have come before
                // it stopped (a burst, then quiet): it is judged when it
                // stalls, not only at the next commit.
                _ = tokio::time::sleep_until(stall_at), if !stalled => stalled = true,
                changed = self.heads.changed(), if stalled => {
                    changed.map_err(|_| End::Gone)?;
                }
            }
            if message.is_none() {
                self.sent(past);
                return Ok(());
            }
            if self.too_far_behind() {
                return Err(End::CutOff(self.cursor.revision));
            }
        }
    }

    /// Notes a message just put in the channel, which leaves the client
    /// at `past`.
    fn sent(&mut self, past: Cursor) {
        self.unread.push_back(past);
        self.forget_taken();
    }

    /// Drops from `unread` what the client has taken from the channel.
    fn forget_taken(&mut self) {
        let in_channel = self.tx.max_capacity() - self.tx.capacity();
        while self.unread.len() > in_channel {
            self.unread.pop_front();
        }
    }

    /// Whether the changes the client has not taken (in its channel, in
    /// hand and committed since) are more than `--watch-max-lag`, or its
    /// next entries are gone from the window. The message it takes next
    /// counts as taken: one revision may carry thousands of pods (a launch
    /// round), and is never a lag by itself.
    fn too_far_behind(&mut self) -> bool {
        self.forget_taken();
        let taken = self.unread.front().unwrap_or(&self.cursor);
        let behind = self.log.lag(taken);
        let evicted = matches!(self.log.read_after(&self.cursor, 0), Read::Evicted);
        behind > self.max_lag || evicted
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runner::watch_log::tests::{config, pods_entry};
    use crate::runner::watch_log::{Current, WatchConfig};

    fn log_with_max_lag(max_lag: u64) -> Arc<WatchLog> {
        let config = WatchConfig {
            max_lag,
            ..config(1_000_000)
        };
        Arc::new(WatchLog::new(config, 0, Current::default()))
    }

    /// A feed of the revisions after `from`, each its own message.
    fn feed(log: &Arc<WatchLog>, from: Revision) -> mpsc::Receiver<FeedItem<Revision>> {
        let cursor = log.open(Some(from)).unwrap().cursor;
        let render = |entry: &WatchEntry| Some(entry.revision);
        spawn_feed(log.clone(), cursor, render, None, CancellationToken::new())
    }

    /// Each message, `pause` apart, until the feed's cut-off (its resume
    /// revision) or, nothing more coming, None.
    async fn read(
        rx: &mut mpsc::Receiver<FeedItem<Revision>>,
        pause: Duration,
    ) -> (Vec<Revision>, Option<Revision>) {
        let mut revisions = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(FeedItem::Message(revision))) => revisions.push(revision),
                Ok(Some(FeedItem::CutOff { resume })) => return (revisions, Some(resume)),
                Ok(Some(FeedItem::Cancelled) | None) => panic!("the feed ended"),
                Err(_) => return (revisions, None),
            }
            tokio::time::sleep(pause).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_after_all_it_was_sent_though_it_fits_its_channel(
    ) {
        // The whole burst fits the channel and the entry in hand; nothing
        // is committed after it. Unread, it is 17 x 6 changes behind.
        let log = log_with_max_lag(50);
        let mut rx = feed(&log, 0);
        for revision in 1..=17 {
            log.append(pods_entry(revision, 0, "a", 5));
        }
        tokio::time::sleep(STALL * 3).await;
        let (revisions, resume) = read(&mut rx, Duration::ZERO).await;
        assert_eq!(revisions, (1..=16).collect::<Vec<_>>());
        assert_eq!(resume, Some(16), "resumes after the last one it was sent");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_far_behind_that_keeps_reading_is_never_cut_off() {
        // 100 revisions of 2 changes: 200 behind, with a max lag of 10,
        // and more committed while it catches up.
        let log = log_with_max_lag(10);
        for revision in 1..=100 {
            log.append(pods_entry(revision, 0, "a", 1));
        }
        let mut rx = feed(&log, 0);
        let more = {
            let log = log.clone();
            tokio::spawn(async move {
                for revision in 101..=150 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    log.append(pods_entry(revision, 0, "a", 1));
                }
            })
        };
        let (revisions, resume) = read(&mut rx, Duration::from_millis(100)).await;
        more.await.unwrap();
        assert_eq!(resume, None, "a reading client is not cut off");
        assert_eq!(revisions, (1..=150).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_within_the_lag_keeps_its_stream() {
        let log = log_with_max_lag(1000);
        let mut rx = feed(&log, 0);
        for revision in 1..=40 {
            log.append(pods_entry(revision, 0, "a", 1));
        }
        tokio::time::sleep(STALL * 10).await;
        log.append(pods_entry(41, 0, "a", 1));
        let (revisions, resume) = read(&mut rx, Duration::ZERO).await;
        assert_eq!(resume, None);
        assert_eq!(revisions, (1..=41).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_client_is_judged_again_at_each_commit() {
        // Within the lag when it stalls; past it after later commits.
        let log = log_with_max_lag(60);
        let mut rx = feed(&log, 0);
        for revision in 1..=20 {
            log.append(pods_entry(revision, 0, "a", 1));
        }
        tokio::time::sleep(STALL * 2).await;
        for revision in 21..=60 {
            log.append(pods_entry(revision, 0, "a", 1));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (revisions, resume) = read(&mut rx, Duration::ZERO).await;
        assert_eq!(revisions, (1..=16).collect::<Vec<_>>());
        assert_eq!(resume, Some(16));
    }
}
