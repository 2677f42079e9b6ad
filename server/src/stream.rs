//! Streamed answers: newline-delimited JSON, one `{"result": ...}` or `{"error": ...}` per
//! line, written by a producer task into a bounded channel that the response body drains.
//!
//! When the client goes away hyper drops the body, the channel's receiver goes with it,
//! and the producer's next send fails, which is its signal to stop. A client that stays
//! connected but stops reading fills the channel; a send that waits longer than
//! [`crate::Limits::stream_stall_timeout`] ends the stream the same way.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::AppState;

/// The sending half of a streamed answer.
pub struct Lines {
    sender: mpsc::Sender<Result<Bytes, Infallible>>,
    stall: Duration,
}

/// One line of a stream: `{"result": ...}` or `{"error": ...}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Line<'a, T> {
    Result(&'a T),
    Error(crate::error::ErrorBody),
}

/// The client went away; stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl Lines {
    /// Sends `{"result": value}`.
    pub async fn result(&self, value: &impl Serialize) -> Result<(), Gone> {
        self.line(&Line::Result(value)).await
    }

    /// Sends `{"result": value}` for every value, packed into frames of about 32 KiB, so a
    /// long answer known in advance costs one channel send (and one wake-up) per frame
    /// rather than per line.
    pub async fn results<T: Serialize>(
        &self,
        values: impl IntoIterator<Item = T>,
    ) -> Result<(), Gone> {
        self.written(values, |frame, value| {
            serde_json::to_writer(&mut *frame, &Line::Result(&value)).map_err(|_| Gone)?;
            frame.push(b'\n');
            Ok(())
        })
        .await
    }

    /// Sends the lines `write` appends to a frame, one or more per item, packed into frames
    /// as [`Lines::results`] packs its own: for answers whose lines are written straight
    /// from borrowed data rather than built as values to serialize.
    pub async fn written<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Vec<u8>, T) -> Result<(), Gone>,
    ) -> Result<(), Gone> {
        const FRAME: usize = 32 << 10;
        let mut frame = Vec::with_capacity(FRAME + 512);
        for item in items {
            write(&mut frame, item)?;
            if frame.len() >= FRAME {
                let full = std::mem::replace(&mut frame, Vec::with_capacity(FRAME + 512));
                self.send(full).await?;
            }
        }
        if !frame.is_empty() {
            self.send(frame).await?;
        }
        Ok(())
    }

    async fn send(&self, bytes: Vec<u8>) -> Result<(), Gone> {
        self.sender
            .send_timeout(Ok(Bytes::from(bytes)), self.stall)
            .await
            .map_err(|_| Gone)
    }

    /// Sends `{"error": {...}}`; the stream should end after it.
    pub async fn error(&self, error: &ApiError) -> Result<(), Gone> {
        self.line(&Line::<()>::Error(error.body())).await
    }

    async fn line<T: Serialize>(&self, line: &Line<'_, T>) -> Result<(), Gone> {
        // Serialized straight to bytes: building a `serde_json::Value` first cost an
        // allocation per field of every line.
        let mut text = serde_json::to_vec(line).map_err(|_| Gone)?;
        text.push(b'\n');
        self.send(text).await
    }

    /// Resolves when the client has gone away.
    pub async fn closed(&self) {
        self.sender.closed().await;
    }
}

/// Counts a running producer in `pemba_http_open_streams` until dropped, however the
/// producer ends.
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Waiting frames smaller than this in total are copied into one; larger ones are not.
const COALESCE_BELOW: usize = 64 << 10;

/// The frames of `chunk` as the body sends them: one frame when they are small together,
/// else each as it is.
fn coalesce(chunk: Vec<Result<Bytes, Infallible>>) -> Vec<Result<Bytes, Infallible>> {
    let total: usize = chunk.iter().map(|c| c.as_ref().map_or(0, Bytes::len)).sum();
    if chunk.len() < 2 || total >= COALESCE_BELOW {
        return chunk;
    }
    let mut frame = Vec::with_capacity(total);
    for line in chunk.into_iter().flatten() {
        frame.extend_from_slice(&line);
    }
    vec![Ok(Bytes::from(frame))]
}

/// A streamed response whose lines `produce` writes from a spawned task.
pub fn respond<F, Fut>(state: &AppState, produce: F) -> Response
where
    F: FnOnce(Lines) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let gauge = state.metrics.open_streams.clone();
    gauge.inc();
    let open = Open(gauge);
    let producer = produce(Lines {
        sender,
        stall: state.limits.stream_stall_timeout,
    });
    tokio::spawn(async move {
        let _open = open;
        producer.await;
    });
    // Lines already waiting go out as one frame: writing each line as its own chunk cost a
    // write per line, which made a 12 500-line lookup take half a second. A line produced
    // while the body is idle still goes out at once, so watch streams are not delayed.
    // Frames that are large already (a lookup's packed lines) go out as they are: copying
    // megabytes of them into one buffer was a tenth of that lookup's time over HTTP.
    let body = Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(receiver)
            .ready_chunks(256)
            .flat_map(|chunk| futures_util::stream::iter(coalesce(chunk))),
    );
    ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> Vec<Result<Bytes, Infallible>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Ok(Bytes::from(vec![b'a' + i as u8; size])))
            .collect()
    }

    fn sizes(frames: &[Result<Bytes, Infallible>]) -> Vec<usize> {
        frames
            .iter()
            .map(|f| f.as_ref().map_or(0, Bytes::len))
            .collect()
    }

    #[test]
    fn small_waiting_frames_are_joined_and_large_ones_pass_through() {
        let joined = coalesce(frames(&[10, 20, 30]));
        assert_eq!(sizes(&joined), [60]);
        let bytes = joined[0].as_ref().unwrap();
        assert_eq!(
            &bytes[..],
            [&[b'a'; 10][..], &[b'b'; 20], &[b'c'; 30]].concat()
        );
        let large = 32 << 10;
        assert_eq!(
            sizes(&coalesce(frames(&[large, large, 5]))),
            [large, large, 5]
        );
        assert_eq!(sizes(&coalesce(frames(&[large * 3]))), [large * 3]);
        assert!(coalesce(Vec::new()).is_empty());
    }
}
