//! A real server on a loopback port in a background runtime, and a tiny HTTP client.

use std::io::BufRead;
use std::sync::mpsc;
use std::thread::JoinHandle;

use pemba_server::{ApiKey, Config, Limits};
use serde_json::{json, Value};

/// The key every test server uses.
pub const KEY: &str = "test-key-0123456789";

/// The schema most API tests write first.
pub const SCHEMA: &str = "definition user {}

definition group {
    relation member: user
}

definition doc {
    relation owner: user
    relation viewer: user | group#member | user:*
    relation banned: user
    permission view = (owner + viewer) - banned
    permission edit = owner
}
";

pub struct TestServer {
    pub base: String,
    /// `http://ADDR` of the gRPC listener, for tonic clients.
    pub grpc: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(Limits::default())
    }

    pub fn start_with(limits: Limits) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), limits)
    }

    /// A server on the store already in `dir` (which it keeps until it stops).
    pub fn start_in(dir: tempfile::TempDir, limits: Limits) -> Self {
        let data_dir = dir.path().to_path_buf();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx
                    .send((listener.local_addr().unwrap(), grpc.local_addr().unwrap()))
                    .unwrap();
                let mut config = Config::new(data_dir, ApiKey::new(KEY).unwrap());
                config.limits = limits;
                pemba_server::run_with_grpc(listener, Some(grpc), config, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let (addr, grpc) = addr_rx.recv().unwrap();
        let server = TestServer {
            base: format!("http://{addr}"),
            grpc: format!("http://{grpc}"),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        };
        // The store opens after the bind; wait until it answers.
        for _ in 0..200 {
            if server.get("/healthz", None).0 == 200 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        server
    }

    /// A server with [`SCHEMA`] written.
    pub fn with_schema() -> Self {
        let server = Self::start();
        server.ok("/v1/schema/write", json!({ "schema": SCHEMA }));
        server
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST` with the key; `(status, JSON body or the raw text as a string)`.
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string(), Some(KEY))
    }

    pub fn post_raw(&self, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let (status, text) = self.post_text(path, body, key);
        (status, parse(&text))
    }

    pub fn post_text(&self, path: &str, body: &str, key: Option<&str>) -> (u16, String) {
        let mut request = Self::agent().post(&self.url(path));
        if let Some(key) = key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap();
        (status, text)
    }

    /// Any method; a JSON `{}` body unless GET, HEAD or DELETE. `(status, body text)`.
    pub fn request(&self, method: &str, path: &str, key: Option<&str>) -> (u16, String) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let response = if matches!(method, "GET" | "HEAD" | "DELETE") {
            Self::agent().run(request.body(()).unwrap())
        } else {
            Self::agent().run(request.body("{}").unwrap())
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let mut request = Self::agent().get(&self.url(path));
        if let Some(key) = key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// `POST` expecting 200.
    #[track_caller]
    pub fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body.clone());
        assert_eq!(status, 200, "{path} {body} answered {answer}");
        answer
    }

    /// `POST` to a streamed route expecting 200; every line.
    #[track_caller]
    pub fn lines(&self, path: &str, body: Value) -> Vec<Value> {
        let (status, text) = self.post_text(path, &body.to_string(), Some(KEY));
        assert_eq!(status, 200, "{path} {body} answered {text}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// `POST` to a streamed route; the results (panics on an error line).
    #[track_caller]
    pub fn results(&self, path: &str, body: Value) -> Vec<Value> {
        self.lines(path, body)
            .into_iter()
            .map(|line| {
                assert!(line.get("error").is_none(), "{path}: error line {line}");
                line["result"].clone()
            })
            .collect()
    }

    /// Opens a streamed route and hands each line to a channel from a background thread.
    pub fn open_stream(&self, path: &str, body: Value) -> mpsc::Receiver<Value> {
        let response = Self::agent()
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {KEY}"))
            .send(&body.to_string())
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let reader = std::io::BufReader::new(
                response
                    .into_body()
                    .into_with_config()
                    .limit(u64::MAX)
                    .reader(),
            );
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if tx.send(parse(&line)).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Writes relationships with `OPERATION_TOUCH`; the written-at token.
    pub fn touch(&self, tuples: &[&str]) -> String {
        self.write(tuples.iter().map(|t| ("OPERATION_TOUCH", *t)).collect())
    }

    pub fn write(&self, updates: Vec<(&str, &str)>) -> String {
        let updates: Vec<Value> = updates
            .into_iter()
            .map(|(operation, tuple)| json!({ "operation": operation, "relationship": rel(tuple) }))
            .collect();
        let answer = self.ok("/v1/relationships/write", json!({ "updates": updates }));
        answer["writtenAt"]["token"].as_str().unwrap().to_string()
    }

    /// Check with full consistency; whether allowed.
    #[track_caller]
    pub fn check(&self, query: &str) -> bool {
        let (resource, permission, subject) = split_check(query);
        let answer = self.ok(
            "/v1/permissions/check",
            json!({
                "consistency": { "fullyConsistent": true },
                "resource": resource,
                "permission": permission,
                "subject": subject,
            }),
        );
        match answer["permissionship"].as_str() {
            Some("PERMISSIONSHIP_HAS_PERMISSION") => true,
            Some("PERMISSIONSHIP_NO_PERMISSION") => false,
            other => panic!("bad permissionship {other:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One JSON value, or the text as a string.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `type:id` as an object reference.
pub fn obj(text: &str) -> Value {
    let (object_type, object_id) = text.split_once(':').unwrap();
    json!({ "objectType": object_type, "objectId": object_id })
}

/// `type:id[#relation]` as a subject reference.
pub fn subj(text: &str) -> Value {
    let (object, relation) = text.split_once('#').unwrap_or((text, ""));
    json!({ "object": obj(object), "optionalRelation": relation })
}

/// `type:id#relation@subject` as a relationship.
pub fn rel(text: &str) -> Value {
    let (resource, subject) = text.split_once('@').unwrap();
    let (object, relation) = resource.split_once('#').unwrap();
    json!({ "resource": obj(object), "relation": relation, "subject": subj(subject) })
}

/// The xs workload written into a temporary directory, and a fresh server (which has the
/// user-groups schema the workload is written for) with its relationships imported: what
/// `pemba bench` runs against. Keep the directory: the workload's files are read from it.
pub fn xs_workload_server() -> (tempfile::TempDir, TestServer) {
    use pemba::workload::{generate, write_files, Size};
    let dir = tempfile::tempdir().unwrap();
    write_files(&generate(Size::Xs, 1, |_| {}), 1, dir.path()).unwrap();
    let server = TestServer::start();
    let tuples = std::fs::read_to_string(dir.path().join("tuples.txt")).unwrap();
    let relationships: Vec<Value> = tuples.lines().map(rel).collect();
    server.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );
    (dir, server)
}

/// `resource#permission@subject` as (resource, permission, subject) references.
pub fn split_check(text: &str) -> (Value, String, Value) {
    let (resource, subject) = text.split_once('@').unwrap();
    let (object, permission) = resource.split_once('#').unwrap();
    (obj(object), permission.to_string(), subj(subject))
}
