//! A small blocking HTTP client for the `pemba` CLI (`--endpoint`): JSON requests with the
//! bearer key, newline-delimited JSON streams read line by line, errors decoded from the
//! server's `{code, message}` body.

use std::io::BufRead;
use std::time::Duration;

use serde_json::Value;

/// A server at `base` (e.g. `http://127.0.0.1:8080`), with its key.
pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client; no request is made yet.
    pub fn new(base: &str, key: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            agent,
        }
    }

    fn send(&self, path: &str, body: &Value) -> Result<ureq::http::Response<ureq::Body>, String> {
        // With `missing_is_none` false a 404 is an error, so `None` cannot come back.
        self.send_or_missing(path, body, false)?
            .ok_or_else(|| format!("`{path}` answered nothing"))
    }

    /// As `send`, with a 404 as `None` (the body of a 404 is its reason, not an answer).
    fn send_or_missing(
        &self,
        path: &str,
        body: &Value,
        missing_is_none: bool,
    ) -> Result<Option<ureq::http::Response<ureq::Body>>, String> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.key))
            .send_json(body)
            .map_err(|e| format!("cannot reach `{url}`: {e}"))?;
        let status = response.status();
        if status == ureq::http::StatusCode::NOT_FOUND && missing_is_none {
            return Ok(None);
        }
        if !status.is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(text);
            return Err(format!("server answered {status}: {message}"));
        }
        Ok(Some(response))
    }

    /// `POST path` with a JSON body; the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        read_json(path, self.send(path, body)?)
    }

    /// As [`Client::post`], with a 404 answer (say, no schema written yet) as `None`.
    pub fn post_or_missing(&self, path: &str, body: &Value) -> Result<Option<Value>, String> {
        match self.send_or_missing(path, body, true)? {
            Some(response) => read_json(path, response).map(Some),
            None => Ok(None),
        }
    }

    /// `POST path` to a streamed route; calls `each` with every `result`, stops at the end,
    /// at an `error` line (returned as the error), or when `each` returns `false`.
    pub fn stream(
        &self,
        path: &str,
        body: &Value,
        mut each: impl FnMut(Value) -> Result<bool, String>,
    ) -> Result<(), String> {
        let response = self.send(path, body)?;
        let reader = std::io::BufReader::new(
            response
                .into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader(),
        );
        for line in reader.lines() {
            let line = line.map_err(|e| format!("stream from `{path}` broke: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut value: Value = serde_json::from_str(&line)
                .map_err(|e| format!("unreadable line from `{path}`: {e}"))?;
            if let Some(error) = value.get("error") {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(format!("server error: {message}"));
            }
            if !each(
                value
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(Value::Null),
            )? {
                break;
            }
        }
        Ok(())
    }
}

fn read_json(path: &str, mut response: ureq::http::Response<ureq::Body>) -> Result<Value, String> {
    response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_json()
        .map_err(|e| format!("unreadable answer from `{path}`: {e}"))
}
