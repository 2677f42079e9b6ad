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
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.key))
            .send_json(body)
            .map_err(|e| format!("cannot reach `{url}`: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(text);
            return Err(format!("server answered {status}: {message}"));
        }
        Ok(response)
    }

    /// `POST path` with a JSON body; the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let mut response = self.send(path, body)?;
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_json()
            .map_err(|e| format!("unreadable answer from `{path}`: {e}"))
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
