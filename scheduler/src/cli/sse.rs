//! The client side of the scheduler's watch stream (`GET /api/v1/watch`,
//! server-sent events): a response body read event by event. Written
//! here rather than taken from a crate because the CLI needs only the
//! subset the scheduler sends (`event`, `id`, `data`, comment lines), over
//! the hyper client it already has.

use super::error::CliError;
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// Its type (`snapshot`, `change`, `error`; `message` when unnamed).
    pub event: String,
    /// Its id: the revision, for the watch.
    pub id: Option<String>,
    /// Its data lines, joined by newlines.
    pub data: String,
}

/// A response body read as events.
pub struct EventStream {
    body: Incoming,
    buffer: Vec<u8>,
}

impl EventStream {
    /// The events of `body`.
    pub fn new(body: Incoming) -> Self {
        EventStream {
            body,
            buffer: Vec::new(),
        }
    }

    /// The next event; None when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<ServerEvent>, CliError> {
        loop {
            while let Some(block) = take_block(&mut self.buffer) {
                if let Some(event) = parse_block(&block) {
                    return Ok(Some(event));
                }
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(CliError::Unreachable {
                        url: "the watch stream".into(),
                        reason: e.to_string(),
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// The first complete block (up to a blank line), taken out of `buffer`.
fn take_block(buffer: &mut Vec<u8>) -> Option<String> {
    let end = buffer.windows(2).position(|w| w == b"\n\n")?;
    let block: Vec<u8> = buffer.drain(..end + 2).collect();
    Some(String::from_utf8_lossy(&block[..end]).replace('\r', ""))
}

/// A block's event; None for a block of comments (keep-alives).
fn parse_block(block: &str) -> Option<ServerEvent> {
    let mut event = ServerEvent {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut data_lines = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_owned(),
            "id" => event.id = Some(value.to_owned()),
            "data" => data_lines.push(value),
            _ => {}
        }
    }
    if data_lines.is_empty() && event.id.is_none() {
        return None;
    }
    event.data = data_lines.join("\n");
    Some(event)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_events_and_comments_are_skipped() {
        let mut buffer =
            b":keep-alive\n\nevent: change\nid: 7\ndata: {\"a\":1}\n\nevent: snap".to_vec();
        let first = take_block(&mut buffer).unwrap();
        assert_eq!(parse_block(&first), None);
        let second = take_block(&mut buffer).unwrap();
        assert_eq!(
            parse_block(&second),
            Some(ServerEvent {
                event: "change".into(),
                id: Some("7".into()),
                data: "{\"a\":1}".into(),
            })
        );
        assert_eq!(
            take_block(&mut buffer),
            None,
            "half an event waits for the rest"
        );
        assert_eq!(buffer, b"event: snap");
    }

    #[test]
    fn data_lines_join_with_newlines() {
        let event = parse_block("data: a\ndata: b").unwrap();
        assert_eq!(
            (event.event.as_str(), event.data.as_str()),
            ("message", "a\nb")
        );
    }
}
