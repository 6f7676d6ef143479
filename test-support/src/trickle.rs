//! A slow client: a request sent a byte at a time, to see a server cut it
//! off.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a slow client saw: how long until the server closed the
/// connection (`None`: still open when the test gave up), and any bytes the
/// server answered with.
pub struct Trickled {
    pub closed_after: Option<Duration>,
    pub answer: String,
}

/// Connects to `address`, sends `first` at once, then one byte of `drip`
/// (cycled) every `gap`, until the server closes the connection or
/// `give_up` passes.
pub async fn trickle(
    address: &str,
    first: &[u8],
    drip: &[u8],
    gap: Duration,
    give_up: Duration,
) -> Trickled {
    let stream = TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return (started.elapsed(), answer),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    });
    let _ = write.write_all(first).await;
    let mut i = 0;
    let deadline = started + give_up;
    while Instant::now() < deadline && !reader.is_finished() {
        if write.write_all(&drip[i % drip.len()..][..1]).await.is_err() {
            break;
        }
        i += 1;
        tokio::time::sleep(gap).await;
    }
    let (closed_after, answer) =
        match tokio::time::timeout(Duration::from_millis(500), reader).await {
            Ok(Ok((at, answer))) => (Some(at), answer),
            Ok(Err(e)) => panic!("the reader of {address} failed: {e}"),
            Err(_) => (None, Vec::new()),
        };
    Trickled {
        closed_after,
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}
