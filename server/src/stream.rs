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
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::AppState;

/// The sending half of a streamed answer.
pub struct Lines {
    sender: mpsc::Sender<Result<Bytes, Infallible>>,
    stall: Duration,
}

/// The client went away; stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl Lines {
    /// Sends `{"result": value}`.
    pub async fn result(&self, value: &impl Serialize) -> Result<(), Gone> {
        self.line(&serde_json::json!({ "result": value })).await
    }

    /// Sends `{"error": {...}}`; the stream should end after it.
    pub async fn error(&self, error: &ApiError) -> Result<(), Gone> {
        self.line(&serde_json::json!({ "error": error.body() }))
            .await
    }

    async fn line(&self, value: &serde_json::Value) -> Result<(), Gone> {
        let mut text = value.to_string();
        text.push('\n');
        self.sender
            .send_timeout(Ok(Bytes::from(text)), self.stall)
            .await
            .map_err(|_| Gone)
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
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
