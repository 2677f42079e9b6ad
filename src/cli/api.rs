//! The HTTP/JSON API as the CLI's commands see it: a running server (`--endpoint`), or
//! the same router run in this process over a data directory's store.
//!
//! Running the server's own routes in process means a command is written once, against
//! the API, and answers (and refuses) the same way on a data directory as on a server.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::target::Local;
use crate::client::Client;

/// Where API requests go.
pub enum Api {
    /// The router over a store opened here.
    Local(LocalApi),
    /// A running server.
    Remote(Client),
}

/// The server's router over a local store, with the runtime that drives it.
pub struct LocalApi {
    runtime: tokio::runtime::Runtime,
    router: pemba_server::HttpApi,
    key: String,
    // Keeps the store (and its pid file) open as long as the router may use it.
    _local: Local,
}

impl Api {
    /// The API over a store opened in this process.
    pub fn local(local: Local) -> Result<Api, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        // The key never leaves this process; the routes only need one to compare with.
        let key = format!("local-{}", std::process::id());
        let api_key = pemba_server::ApiKey::new(key.clone())?;
        let state = pemba_server::AppState::new(local.engine.clone(), api_key);
        Ok(Api::Local(LocalApi {
            runtime,
            router: pemba_server::app(state),
            key,
            _local: local,
        }))
    }

    /// `POST path` with a JSON body; the JSON answer, or the API's error message.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        match self {
            Api::Remote(client) => client.post(path, body),
            Api::Local(local) => {
                let text = local.call(path, body)?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("unreadable answer from `{path}`: {e}"))
            }
        }
    }

    /// As [`Api::post`], with a 404 answer (say, no schema written yet) as `None`.
    pub fn post_or_missing(&self, path: &str, body: &Value) -> Result<Option<Value>, String> {
        match self {
            Api::Remote(client) => client.post_or_missing(path, body),
            Api::Local(local) => match local.send(path, body, false)? {
                (status, _) if status == StatusCode::NOT_FOUND => Ok(None),
                (_, text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| format!("unreadable answer from `{path}`: {e}")),
            },
        }
    }

    /// `POST path` to a streamed route; calls `each` with every `result` until the end,
    /// an `error` line (returned as the error), or `each` returning `false`.
    pub fn stream(
        &self,
        path: &str,
        body: &Value,
        mut each: impl FnMut(Value) -> Result<bool, String>,
    ) -> Result<(), String> {
        match self {
            Api::Remote(client) => client.stream(path, body, each),
            Api::Local(local) => {
                let text = local.call(path, body)?;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let mut value: Value = serde_json::from_str(line)
                        .map_err(|e| format!("unreadable line from `{path}`: {e}"))?;
                    if let Some(error) = value.get("error") {
                        return Err(error_message(error));
                    }
                    let result = value.get_mut("result").map(Value::take);
                    if !each(result.unwrap_or(Value::Null))? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

impl LocalApi {
    /// One request through the router; the body text of a success, the error message
    /// otherwise.
    fn call(&self, path: &str, body: &Value) -> Result<String, String> {
        self.send(path, body, true).map(|(_, text)| text)
    }

    /// One request through the router; a success's status and body text (unless
    /// `strict`, a 404 counts as an answer), the error message otherwise.
    fn send(&self, path: &str, body: &Value, strict: bool) -> Result<(StatusCode, String), String> {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .map_err(|e| format!("cannot build the request to `{path}`: {e}"))?;
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| format!("`{path}` failed: {e}"))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("`{path}`: the answer broke off: {e}"))?
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status.is_success() || (status == StatusCode::NOT_FOUND && !strict) {
                Ok((status, text))
            } else {
                Err(serde_json::from_str::<Value>(&text)
                    .map(|v| error_message(&v))
                    .unwrap_or(text))
            }
        })
    }
}

/// The `message` of an API error body.
fn error_message(error: &Value) -> String {
    error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_string()
}
