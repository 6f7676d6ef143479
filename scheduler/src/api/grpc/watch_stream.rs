//! A watcher's feed ([`crate::api::watch::feed`]) as a gRPC response
//! stream, for the Peloton and Titus faces alike: what was queued before
//! the feed (the first response, a snapshot), then the feed's messages;
//! a watcher cut off for lagging ends with RESOURCE_EXHAUSTED naming the
//! revision to resume from, a cancelled one as its face says. A status
//! ends the stream (nothing follows it).

use crate::api::watch::cut_off_message;
use crate::api::watch::feed::FeedItem;
use crate::model::job::Revision;
use futures_util::future;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;

/// The status of a watcher cut off because it fell too far behind: every
/// change up to `resume` was delivered, and a watch from `resume` goes on
/// from there (the message names it as "revision N" for clients to read).
pub fn cut_off(resume: Revision) -> tonic::Status {
    tonic::Status::resource_exhausted(cut_off_message(resume))
}

/// One step of a feed's message.
#[derive(Debug)]
pub enum Out<M> {
    /// A response to send.
    Send(M),
    /// The stream ends here, cleanly (nothing after it is sent).
    End,
}

/// `first`, then the feed's messages (each a batch of steps, taken in
/// order) with `beside`'s merged in, ending at a step [`Out::End`], with
/// the feed's cut-off as a status, or at its cancellation with
/// `cancelled`'s status (None: a clean end). `guard` lives as long as the
/// stream: its drop (the client went away, or the stream ended) is the
/// watch's end.
pub fn responses<M, G>(
    first: Vec<M>,
    feed: mpsc::Receiver<FeedItem<Vec<Out<M>>>>,
    cancelled: impl Fn() -> Option<tonic::Status> + Send + 'static,
    guard: G,
    beside: impl Stream<Item = M> + Send + 'static,
) -> impl Stream<Item = Result<M, tonic::Status>> + Send + 'static
where
    M: Send + 'static,
    G: Send + 'static,
{
    let live = stream::unfold(Some((feed, cancelled, guard)), |state| async move {
        let (mut feed, cancelled, guard) = state?;
        match feed.recv().await {
            Some(FeedItem::Message(batch)) => {
                let mut items = Vec::with_capacity(batch.len());
                for step in batch {
                    match step {
                        Out::Send(m) => items.push(Ok(m)),
                        Out::End => return Some((items, None)),
                    }
                }
                Some((items, Some((feed, cancelled, guard))))
            }
            Some(FeedItem::CutOff { resume }) => Some((vec![Err(cut_off(resume))], None)),
            Some(FeedItem::Cancelled) => Some((cancelled().map(Err).into_iter().collect(), None)),
            // The feed ended without a word (the scheduler is shutting
            // down): the stream ends.
            None => None,
        }
    })
    .flat_map(stream::iter);
    // The feed's end ends the stream, whatever `beside` still has.
    let merged = stream::select(
        live.map(Some).chain(stream::once(future::ready(None))),
        beside.map(|m| Some(Ok(m))),
    )
    .take_while(|item| future::ready(item.is_some()))
    .filter_map(future::ready);
    stream::iter(first.into_iter().map(Ok)).chain(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_responses_then_the_feed_then_the_cut_off_with_its_revision() {
        let (tx, rx) = mpsc::channel(8);
        tx.send(FeedItem::Message(vec![Out::Send(2), Out::Send(3)]))
            .await
            .unwrap();
        tx.send(FeedItem::Message(vec![])).await.unwrap();
        tx.send(FeedItem::CutOff { resume: 41 }).await.unwrap();
        tx.send(FeedItem::Message(vec![Out::Send(9)]))
            .await
            .unwrap();
        let out: Vec<_> = responses(vec![1], rx, || None, (), stream::pending())
            .collect()
            .await;
        assert_eq!(out.len(), 4, "nothing after the status");
        assert_eq!(
            out[..3]
                .iter()
                .map(|r| *r.as_ref().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let status = out[3].as_ref().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("revision 41"),
            "{}",
            status.message()
        );
    }

    #[tokio::test]
    async fn a_cancelled_feed_ends_with_the_cancelled_status_and_drops_the_guard() {
        let (tx, rx) = mpsc::channel(8);
        tx.send(FeedItem::<Vec<Out<u8>>>::Cancelled).await.unwrap();
        let guard = std::sync::Arc::new(());
        let weak = std::sync::Arc::downgrade(&guard);
        let out: Vec<_> = responses(
            vec![],
            rx,
            || Some(tonic::Status::cancelled("gone")),
            guard,
            stream::pending(),
        )
        .collect()
        .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap_err().code(), tonic::Code::Cancelled);
        assert!(weak.upgrade().is_none(), "the watch ended with its stream");
    }

    #[tokio::test]
    async fn an_end_step_ends_the_stream_cleanly_after_what_came_before_it() {
        let (tx, rx) = mpsc::channel(8);
        tx.send(FeedItem::Message(vec![
            Out::Send(1),
            Out::End,
            Out::Send(2),
        ]))
        .await
        .unwrap();
        tx.send(FeedItem::Message(vec![Out::Send(3)]))
            .await
            .unwrap();
        let out: Vec<_> = responses(vec![], rx, || None, (), stream::pending())
            .collect()
            .await;
        assert_eq!(out.len(), 1);
        assert_eq!(*out[0].as_ref().unwrap(), 1);
    }
}
