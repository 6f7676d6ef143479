//! `GET /api/v1/watch`: the watch as server-sent events. Without a
//! revision, a `snapshot` event (every job and pod the filter keeps, its
//! id the snapshot's revision), then one `change` event per revision that
//! carries something for the watcher, its id the revision; with one
//! (`since=R`, or `Last-Event-ID: R`, which a browser's `EventSource`
//! sends when it reconnects), the changes after R and no snapshot.
//! A watcher cut off for lagging gets an `error` event naming the
//! revision to resume from, and the stream ends; it also ends when the
//! scheduler shuts down (the client resumes from its last event id).
//! Comment lines keep an idle connection alive.
//!
//! Query: `job` (id or name), `pod` (pod name), `label` (`key=value`, a
//! job label), `state` (`POD_STATE_...`), each repeatable, and `since`.

use super::feed::{spawn_feed, FeedItem};
use super::filter::WatchFilter;
use super::{cut_off_message, json};
use crate::api::{ApiError, AppState, LOAD_WAIT};
use crate::model::job::Revision;
use crate::model::state::PodState;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// How often an idle stream sends a comment line, so that proxies and
/// clients do not take it for dead.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(
    get,
    path = "/api/v1/watch",
    tag = "watch",
    params(
        ("job" = Option<Vec<String>>, Query, description = "A job's id or name (repeatable)"),
        ("pod" = Option<Vec<String>>, Query, description = "A pod's name (repeatable)"),
        ("label" = Option<Vec<String>>, Query, description = "A job label, `key=value` (repeatable)"),
        ("state" = Option<Vec<String>>, Query, description = "A pod state, `POD_STATE_...` (repeatable)"),
        ("since" = Option<u64>, Query, description = "The changes after this revision, and no snapshot"),
        ("Last-Event-ID" = Option<u64>, Header, description = "As `since`: what a browser's EventSource sends when it reconnects"),
    ),
    responses((
        status = 200,
        description = "Server-sent events: `snapshot`, then `change` per revision; `error` when cut off",
        body = String,
        content_type = "text/event-stream"
    ))
)]
/// `GET /api/v1/watch`.
pub async fn watch(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (filter, since) = parse(query.as_deref().unwrap_or(""))?;
    let since = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<Revision>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID", "not a revision"))?,
        ),
        None => since,
    };
    if !state.board.wait_ready(LOAD_WAIT).await {
        return Err(ApiError::starting());
    }
    let opened = state.watch.open(since)?;
    let first = opened.snapshot.map(|snapshot| {
        Event::default()
            .event("snapshot")
            .id(snapshot.revision.to_string())
            .data(json::snapshot(&snapshot, &filter))
    });
    let feed = spawn_feed(
        state.watch.clone(),
        opened.cursor,
        move |entry| json::change(entry, &filter).map(|data| (entry.revision, data)),
        None,
        state.shutdown.child_token(),
    );
    let changes = stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        let event = match feed.recv().await? {
            FeedItem::Message((revision, data)) => Event::default()
                .event("change")
                .id(revision.to_string())
                .data(&*data),
            FeedItem::CutOff { resume } => {
                let data = serde_json::json!({
                    "code": "RESOURCE_EXHAUSTED",
                    "message": cut_off_message(resume),
                    "revision": resume,
                });
                // The stream ends after it.
                return Some((event_ok(error_event(&data)), None));
            }
            FeedItem::Cancelled => return None,
        };
        Some((event_ok(event), Some(feed)))
    });
    let events = stream::iter(first.map(event_ok)).chain(changes);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"));
    Ok(sse.into_response())
}

fn error_event(data: &serde_json::Value) -> Event {
    Event::default().event("error").data(data.to_string())
}

fn event_ok(event: Event) -> Result<Event, Infallible> {
    Ok(event)
}

/// The filter and the revision a query asks for.
pub fn parse(query: &str) -> Result<(WatchFilter, Option<Revision>), ApiError> {
    let mut filter = WatchFilter::default();
    let mut since = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "job" => filter.jobs.push(value.into_owned()),
            "pod" => filter.pods.push(value.into_owned()),
            "label" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| ApiError::invalid("label", "expected key=value"))?;
                filter.labels.push((k.to_owned(), v.to_owned()));
            }
            "state" => filter
                .states
                .push(PodState::parse(&value).ok_or_else(|| {
                    ApiError::invalid("state", format!("no pod state {value:?}"))
                })?),
            "since" => {
                since = Some(value.parse::<Revision>().map_err(|_| {
                    ApiError::invalid("since", format!("{value:?} is not a revision"))
                })?)
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "not a watch parameter (job, pod, label, state, since)",
                ))
            }
        }
    }
    Ok((filter, since))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_jobs_pods_labels_states_and_a_revision() {
        let (filter, since) =
            parse("job=web&job=j2&pod=j2-0&label=team%3Da&state=POD_STATE_RUNNING&since=42")
                .unwrap();
        assert_eq!(filter.jobs, ["web", "j2"]);
        assert_eq!(filter.pods, ["j2-0"]);
        assert_eq!(filter.labels, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(filter.states, [PodState::Running]);
        assert_eq!(since, Some(42));
        assert_eq!(parse("").unwrap(), (WatchFilter::default(), None));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, field) in [
            ("since=x", "since"),
            ("state=RUNNING", "state"),
            ("label=team", "label"),
            ("jobs=a", "jobs"),
        ] {
            let e = parse(query).unwrap_err();
            assert!(e.message.starts_with(field), "{query}: {}", e.message);
        }
    }
}
