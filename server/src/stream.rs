//! Streamed answers: newline-delimited JSON, one `{"result": ...}` or `{"error": ...}` per
//! line, written by a producer task into a bounded channel that the response body drains.
//!
//! When the client goes away hyper drops the body, the channel's receiver goes with it,
//! and the producer's next send fails, which is its signal to stop.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// The sending half of a streamed answer.
pub struct Lines {
    sender: mpsc::Sender<Result<Bytes, Infallible>>,
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
            .send(Ok(Bytes::from(text)))
            .await
            .map_err(|_| Gone)
    }

    /// Resolves when the client has gone away.
    pub async fn closed(&self) {
        self.sender.closed().await;
    }
}

/// A streamed response whose lines `produce` writes from a spawned task.
pub fn respond<F, Fut>(produce: F) -> Response
where
    F: FnOnce(Lines) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(produce(Lines { sender }));
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
