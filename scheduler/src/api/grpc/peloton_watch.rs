//! Peloton v1alpha `WatchService` (`Watch`, `Cancel`) over Drover's watch
//! log: one feed per watch ([`crate::api::watch::feed::spawn_feed`],
//! fan-out from the shared log, no store read per watcher), rendered by
//! [`super::peloton_watch_view`].
//!
//! A watch's stream:
//! 1. a first response with the `watch_id` and no objects, whose
//!    `revision` is where the watch starts (the snapshot's, or
//!    `start_revision`): never beyond what was delivered;
//! 2. without `start_revision` (0), a snapshot: the selected job
//!    summaries and pods at that revision (a snapshot over 3 MiB comes in
//!    several responses at that revision);
//! 3. one response per later revision that changed something selected,
//!    revisions strictly increasing.
//!
//! `start_revision` older than the log's window is OUT_OF_RANGE (take a
//! fresh snapshot), ahead of the head INVALID_ARGUMENT. `Cancel` ends the
//! stream with CANCELLED; an unknown id is NOT_FOUND. A watcher that falls
//! too far behind ends with RESOURCE_EXHAUSTED naming the revision to
//! resume from. No keep-alive message: Peloton has none (its watch
//! service sends nothing between changes), so a client would not expect
//! one; HTTP/2 itself keeps the connection.

use super::peloton_watch_view::{change_response, snapshot_responses, Selection};
use super::watch_stream::{self, Out};
use crate::api::error::ApiError;
use crate::api::watch::feed::spawn_feed;
use crate::api::AppState;
use drover_seed_api::peloton::api::v1alpha::watch::svc::watch_service_server::WatchService;
use drover_seed_api::peloton::api::v1alpha::watch::svc::{
    CancelRequest, CancelResponse, WatchRequest, WatchResponse,
};
use futures_util::stream;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// The open watches by id, for `Cancel`.
#[derive(Default)]
pub struct Watches {
    open: Mutex<HashMap<String, CancellationToken>>,
}

impl Watches {
    fn add(self: &Arc<Self>, id: String, token: CancellationToken) -> Registered {
        self.lock().insert(id.clone(), token);
        Registered {
            watches: self.clone(),
            id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the watch `id`; false when there is none.
    fn cancel(&self, id: &str) -> bool {
        match self.lock().remove(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// How many watches are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no watch is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A watch's place in [`Watches`], given up when its stream ends.
struct Registered {
    watches: Arc<Watches>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.watches.lock().remove(&self.id);
    }
}

/// The Peloton watch service over the API's state.
#[derive(Clone)]
pub struct PelotonWatch {
    /// What the JSON API's handlers reach (the watch log among it).
    pub state: AppState,
    /// The open watches.
    pub watches: Arc<Watches>,
}

#[tonic::async_trait]
impl WatchService for PelotonWatch {
    type WatchStream = BoxStream<WatchResponse>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = request.into_inner();
        let selection = Selection::read(&r)?;
        let from = (r.start_revision != 0).then_some(r.start_revision);
        let opened = self.state.watch.open(from).map_err(|e| {
            // OUT_OF_RANGE (take a fresh snapshot) or INVALID_ARGUMENT
            // (ahead of the head), naming the field.
            let e = ApiError::from(e);
            ApiError {
                message: format!("start_revision: {}", e.message),
                ..e
            }
        })?;
        let watch_id = format!("{}_{}", selection.kind(), uuid::Uuid::new_v4());
        let start = opened
            .snapshot
            .as_ref()
            .map_or(r.start_revision, |s| s.revision);
        let mut first = vec![WatchResponse {
            watch_id: watch_id.clone(),
            revision: start,
            ..WatchResponse::default()
        }];
        if let Some(snapshot) = &opened.snapshot {
            first.extend(snapshot_responses(&selection, &watch_id, snapshot));
        }
        let token = CancellationToken::new();
        let registered = self.watches.add(watch_id.clone(), token.clone());
        let id = watch_id.clone();
        let feed = spawn_feed(
            self.state.watch.clone(),
            opened.cursor,
            move |entry| change_response(&selection, &id, entry).map(|r| vec![Out::Send(r)]),
            None,
            token,
        );
        let cancelled = move || Some(Status::cancelled(format!("watch cancelled: {watch_id}")));
        let stream = watch_stream::responses(first, feed, cancelled, registered, stream::empty());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel(
        &self,
        request: Request<CancelRequest>,
    ) -> Result<Response<CancelResponse>, Status> {
        let id = request.into_inner().watch_id;
        if self.watches.cancel(&id) {
            Ok(Response::new(CancelResponse {}))
        } else {
            Err(ApiError::not_found(format!("watch_id '{id}'")).into())
        }
    }
}
