//! The SUBSCRIBE stream: one task per connection the session asks for. It
//! posts the SUBSCRIBE, reports the answer (200 with its stream id, a 307
//! to the leader, or a failure), then decodes the RecordIO event stream
//! incrementally with [`RecordDecoder`] and reports every event, and the
//! end of the stream, to the driver loop, tagged with its generation.
//!
//! A record that arrives whole but does not decode as an event is logged
//! and skipped: the framing says where the next record starts, so the
//! stream (and every call in flight with its stream id) is kept. A broken
//! framing cannot be read past, and ends the stream.

use super::request::{read_text, request, resolve_location, HttpClient, STREAM_ID_HEADER};
use super::{ConnEvent, DriverConfig};
use crate::mesos::session::{Endpoint, StreamId, SubscribeResponse};
use drover_proto::v1::scheduler::{Call, Event};
use drover_proto::{MediaType, RecordDecoder};
use http::header::{CONTENT_TYPE, LOCATION};
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// Posts `call` (a SUBSCRIBE) to `master` and streams its events to `tx`
/// until the stream ends or the driver aborts this task.
pub(crate) async fn subscribe(
    client: HttpClient,
    config: DriverConfig,
    master: Endpoint,
    generation: u64,
    call: Call,
    tx: mpsc::Sender<ConnEvent>,
) {
    let failed = |status: u16, detail: String| {
        ConnEvent::Subscribe(generation, SubscribeResponse::Failed { status, detail })
    };
    let req = match request(&config, &master, None, &call) {
        Ok(req) => req,
        Err(e) => {
            let _ = tx
                .send(failed(0, crate::tls::client::error_chain(&e)))
                .await;
            return;
        }
    };
    let response = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(failed(0, e.to_string())).await;
            return;
        }
    };
    let status = response.status();
    if status == StatusCode::TEMPORARY_REDIRECT {
        let leader = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| resolve_location(&master, l));
        let event = match leader {
            Some(leader) => ConnEvent::Subscribe(generation, SubscribeResponse::Redirect(leader)),
            None => failed(307, "redirect without a usable Location".into()),
        };
        let _ = tx.send(event).await;
        return;
    }
    if status != StatusCode::OK {
        let body = read_text(response.into_body()).await;
        let _ = tx.send(failed(status.as_u16(), body)).await;
        return;
    }
    let Some(stream_id) = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| StreamId(s.to_owned()))
    else {
        let _ = tx
            .send(failed(200, "no Mesos-Stream-Id header".into()))
            .await;
        return;
    };
    let media = MediaType::from_content_type(
        response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
    .unwrap_or(config.media);
    if tx
        .send(ConnEvent::Subscribe(
            generation,
            SubscribeResponse::Streaming(stream_id),
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut body = response.into_body();
    let mut decoder = RecordDecoder::new(config.max_record_bytes);
    'stream: while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(chunk) = frame.data_ref() else {
            continue;
        };
        decoder.feed(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => match media.decode::<Event>(&record) {
                    Ok(event) => {
                        if tx
                            .send(ConnEvent::Event(generation, Box::new(event)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            generation,
                            record_bytes = record.len(),
                            error = %e,
                            "undecodable event skipped; the stream is kept"
                        );
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad RecordIO framing; dropping the stream");
                    break 'stream;
                }
            }
        }
    }
    let _ = tx.send(ConnEvent::Closed(generation)).await;
}
