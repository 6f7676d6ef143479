//! Titus' `ObserveJobs`, `ObserveJob` and `ObserveJobsWithKeepAlive`
//! streams over Drover's watch log: a snapshot (each job, then its tasks,
//! then one `snapshotEnd`), then `jobUpdate` / `taskUpdate` per change,
//! stamped with the change's commit time. One feed per stream
//! ([`crate::api::watch::feed::spawn_feed`]), rendered by
//! [`super::titus_watch_view`].
//!
//! - `ObserveJob` of an unknown job is NOT_FOUND; its stream ends (OK)
//!   after the job's archived update, when the job is deleted.
//! - `ObserveJobsWithKeepAlive`: the stream starts at the client's first
//!   `query` (keep-alives before it are dropped, as Titus drops them);
//!   each later `keepAliveRequest` is answered, once the snapshot is sent,
//!   by a `keepAliveResponse` carrying that request (its `requestId`) and
//!   the server's time. The client closing its side ends nothing: changes
//!   keep coming.
//! - A watcher that falls too far behind ends with RESOURCE_EXHAUSTED
//!   naming the revision it was shown everything up to.

use super::titus_spec::Filter;
use super::titus_watch_view::{Change, Observer};
use super::watch_stream::{self, Out};
use crate::api::error::ApiError;
use crate::api::watch::feed::spawn_feed;
use crate::api::AppState;
use crate::model::ids::JobId;
use crate::model::time::{millis, UnixMillis};
use drover_seed_api::titus::job_change_notification::Notification;
use drover_seed_api::titus::observe_jobs_with_keep_alive_request::Kind;
use drover_seed_api::titus::{
    JobChangeNotification, KeepAliveRequest, KeepAliveResponse, ObserveJobsWithKeepAliveRequest,
};
use futures_util::stream::{self, Stream};
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Status, Streaming};

fn now() -> UnixMillis {
    millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// The answer to a keep-alive request.
fn keep_alive_response(request: KeepAliveRequest) -> JobChangeNotification {
    let at = u64::try_from(now()).unwrap_or(0);
    JobChangeNotification {
        notification: Some(Notification::KeepAliveResponse(KeepAliveResponse {
            request: Some(request),
            timestamp: at,
        })),
        timestamp: at,
    }
}

/// A stream of the jobs `filter` selects, or (`only`) of one job, with
/// `beside` (keep-alive answers) merged in after the snapshot.
fn observe(
    state: &AppState,
    filter: Filter,
    only: Option<JobId>,
    beside: impl Stream<Item = JobChangeNotification> + Send + 'static,
) -> Result<BoxStream<JobChangeNotification>, Status> {
    // Titus has no resume: every stream starts with a snapshot.
    let opened = state.watch.open(None).map_err(ApiError::from)?;
    let mut observer = Observer::new(filter, only.clone());
    let first = match &opened.snapshot {
        Some(snapshot) => observer.snapshot(snapshot, now()),
        None => Vec::new(),
    };
    let feed = spawn_feed(
        state.watch.clone(),
        opened.cursor,
        move |entry| {
            let Change { notes, ended } = observer.change(entry);
            let mut steps: Vec<_> = notes.into_iter().map(Out::Send).collect();
            if ended {
                // ObserveJob's job is gone: its stream ends after this.
                steps.push(Out::End);
            }
            (!steps.is_empty()).then_some(steps)
        },
        None,
        CancellationToken::new(),
    );
    // Nothing cancels these streams but the client going away.
    let stream = watch_stream::responses(first, feed, || None, (), beside);
    Ok(Box::pin(stream))
}

/// `ObserveJobs`: the jobs the query's criteria select.
pub fn observe_jobs(
    state: &AppState,
    criteria: &std::collections::HashMap<String, String>,
) -> Result<BoxStream<JobChangeNotification>, Status> {
    let filter = Filter::parse(criteria)?;
    observe(state, filter, None, stream::empty())
}

/// `ObserveJob`: one job (by id or name), NOT_FOUND if there is none.
pub async fn observe_job(
    state: &AppState,
    id: &str,
) -> Result<BoxStream<JobChangeNotification>, Status> {
    if id.trim().is_empty() {
        return Err(ApiError::invalid("id", "is required").into());
    }
    let view = state.find_job(id).await?;
    observe(
        state,
        Filter::default(),
        Some(view.job.job_id.clone()),
        stream::empty(),
    )
}

/// `ObserveJobsWithKeepAlive`: waits for the client's first query, then
/// streams as `ObserveJobs`, answering each later keep-alive request.
pub async fn observe_jobs_with_keep_alive(
    state: &AppState,
    mut requests: Streaming<ObserveJobsWithKeepAliveRequest>,
) -> Result<BoxStream<JobChangeNotification>, Status> {
    let query = loop {
        match requests.message().await? {
            Some(ObserveJobsWithKeepAliveRequest {
                kind: Some(Kind::Query(query)),
            }) => break query,
            // Titus starts a stream on a query only.
            Some(_) => continue,
            None => {
                return Err(ApiError::invalid(
                    "query",
                    "the stream ended before its first ObserveJobsQuery",
                )
                .into())
            }
        }
    };
    let filter = Filter::parse(&query.filtering_criteria)?;
    // The client's keep-alives; a later query or a broken client stream
    // ends only the answers, not the changes.
    let keep_alives = stream::unfold(requests, |mut requests| async move {
        loop {
            match requests.message().await {
                Ok(Some(ObserveJobsWithKeepAliveRequest {
                    kind: Some(Kind::KeepAliveRequest(request)),
                })) => return Some((keep_alive_response(request), requests)),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    });
    observe(state, filter, None, keep_alives)
}
