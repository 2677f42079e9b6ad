//! The HTTP port over the wire (issue 17): HTTP/2 cleartext by prior knowledge and
//! pipelined HTTP/1.1 get the same answers as one request at a time, the limits and caps
//! hold on both, and `pemba bench` drives both with every answer verified. No timing is
//! asserted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pemba::bench::{run, Mix, Settings};
use pemba_server::Limits;
use serde_json::{json, Value};

use crate::support::{split_check, xs_workload_server, TestServer, KEY};

fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Opens an h2c connection (no upgrade, the preface first).
async fn h2c(server: &TestServer) -> Result<http2::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(address(server))
        .await
        .map_err(|e| e.to_string())?;
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// POSTs `body` to `path` over an h2c connection; the status and the JSON answer.
async fn h2_post(
    sender: &mut http2::SendRequest<Full<Bytes>>,
    server: &TestServer,
    path: &str,
    body: String,
    key: Option<&str>,
) -> Result<(u16, Value), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let mut request = hyper::Request::post(format!("http://{}{path}", address(server)));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    Ok((status, value))
}

fn check_body(query: &str) -> String {
    let (resource, permission, subject) = split_check(query);
    json!({ "resource": resource, "permission": permission, "subject": subject }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_get_the_answers_http1_clients_get() {
    let server = tokio::task::spawn_blocking(|| {
        let server = TestServer::with_schema();
        server.touch(&["doc:a#viewer@user:alice"]);
        server
    })
    .await
    .unwrap();
    let mut sender = h2c(&server).await.unwrap();
    let mut answers = Vec::new();
    for query in ["doc:a#view@user:alice", "doc:a#view@user:bob"] {
        let answer = h2_post(
            &mut sender,
            &server,
            "/v1/permissions/check",
            check_body(query),
            Some(KEY),
        )
        .await
        .unwrap();
        answers.push(answer);
    }
    assert_eq!(answers[0].0, 200, "{:?}", answers[0]);
    assert_eq!(
        answers[0].1["permissionship"],
        "PERMISSIONSHIP_HAS_PERMISSION"
    );
    assert!(answers[0].1["checkedAt"]["token"].is_string());
    assert_eq!(
        answers[1].1["permissionship"],
        "PERMISSIONSHIP_NO_PERMISSION"
    );
    // Concurrent streams on the one connection.
    let mut streams = Vec::new();
    for i in 0..32 {
        let mut sender = sender.clone();
        let query = if i % 2 == 0 {
            "doc:a#view@user:alice"
        } else {
            "doc:a#view@user:bob"
        };
        let body = check_body(query);
        let server_address = address(&server);
        streams.push(tokio::spawn(async move {
            sender.ready().await.unwrap();
            let request =
                hyper::Request::post(format!("http://{server_address}/v1/permissions/check"))
                    .header("authorization", format!("Bearer {KEY}"))
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            (
                i,
                value["permissionship"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }));
    }
    for stream in streams {
        let (i, permissionship) = stream.await.unwrap();
        let expected = if i % 2 == 0 {
            "PERMISSIONSHIP_HAS_PERMISSION"
        } else {
            "PERMISSIONSHIP_NO_PERMISSION"
        };
        assert_eq!(permissionship, expected, "stream {i}");
    }
    // Auth and errors are the same JSON over HTTP/2.
    let (status, body) = h2_post(
        &mut sender,
        &server,
        "/v1/permissions/check",
        check_body("doc:a#view@user:alice"),
        None,
    )
    .await
    .unwrap();
    assert_eq!((status, body["code"].as_u64()), (401, Some(16)), "{body}");
    let (status, body) = h2_post(
        &mut sender,
        &server,
        "/v1/permissions/check",
        r#"{"resource": {"objectType": "doc", "objectId": "a"}, "nonsense": 1}"#.to_string(),
        Some(KEY),
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `nonsense`"),
        "{body}"
    );
    let (status, body) = h2_post(
        &mut sender,
        &server,
        "/v1/permissions/checkbulk",
        json!({ "items": [
            serde_json::from_str::<Value>(&check_body("doc:a#view@user:alice")).unwrap(),
            serde_json::from_str::<Value>(&check_body("doc:a#view@user:bob")).unwrap(),
        ]})
        .to_string(),
        Some(KEY),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["pairs"][0]["item"]["permissionship"],
        "PERMISSIONSHIP_HAS_PERMISSION"
    );
    assert_eq!(
        body["pairs"][1]["item"]["permissionship"],
        "PERMISSIONSHIP_NO_PERMISSION"
    );
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_caps_hold_over_h2c() {
    let server = tokio::task::spawn_blocking(|| {
        TestServer::start_with(Limits {
            max_body_bytes: 1000,
            max_connections_per_client: 2,
            ..Limits::default()
        })
    })
    .await
    .unwrap();
    let mut first = h2c(&server).await.unwrap();
    let big = json!({ "permission": "x".repeat(2000) }).to_string();
    let (status, body) = h2_post(&mut first, &server, "/v1/permissions/check", big, Some(KEY))
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    // Each h2c connection counts in the per-client cap, as an HTTP/1.1 one does.
    let _second = h2c(&server).await.unwrap();
    let third = async {
        let mut third = h2c(&server).await?;
        h2_post(
            &mut third,
            &server,
            "/v1/permissions/check",
            "{}".to_string(),
            Some(KEY),
        )
        .await
    };
    let refused = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the third connection was neither served nor closed");
    assert!(refused.is_err(), "served over the cap: {refused:?}");
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

/// Reads `count` HTTP/1.1 answers (each with a `Content-Length`) from `stream`.
fn read_answers(stream: &mut TcpStream, count: usize) -> Vec<(u16, Value)> {
    let mut buffer = Vec::new();
    let mut answers = Vec::new();
    let mut chunk = [0u8; 4096];
    while answers.len() < count {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = head.parse(&buffer) {
            let length: usize = head
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .expect("an answer without Content-Length");
            if buffer.len() >= head_len + length {
                let status = head.code.unwrap();
                let body = serde_json::from_slice(&buffer[head_len..head_len + length]).unwrap();
                answers.push((status, body));
                buffer.drain(..head_len + length);
                continue;
            }
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "closed after {} answers", answers.len());
        buffer.extend_from_slice(&chunk[..read]);
    }
    answers
}

fn request(path: &str, body: &str, key: Option<&str>) -> String {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: pemba\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::with_schema();
    server.touch(&["doc:a#viewer@user:alice"]);
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let check = "/v1/permissions/check";
    let mut all = String::new();
    for query in [
        "doc:a#view@user:alice",
        "doc:a#view@user:bob",
        "doc:a#view@user:alice",
    ] {
        all.push_str(&request(check, &check_body(query), Some(KEY)));
    }
    all.push_str(&request(check, "{not json", Some(KEY)));
    all.push_str(&request(check, &check_body("doc:a#view@user:alice"), None));
    all.push_str(&request(
        check,
        &check_body("doc:a#view@user:bob"),
        Some(KEY),
    ));
    // Every request in one write, before reading anything.
    stream.write_all(all.as_bytes()).unwrap();
    let answers = read_answers(&mut stream, 6);
    let permissionships: Vec<(u16, &str)> = answers
        .iter()
        .map(|(status, body)| {
            (
                *status,
                body["permissionship"]
                    .as_str()
                    .or(body["message"].as_str())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(permissionships[0], (200, "PERMISSIONSHIP_HAS_PERMISSION"));
    assert_eq!(permissionships[1], (200, "PERMISSIONSHIP_NO_PERMISSION"));
    assert_eq!(permissionships[2], (200, "PERMISSIONSHIP_HAS_PERMISSION"));
    assert_eq!(permissionships[3].0, 400, "{answers:?}");
    assert!(
        permissionships[3].1.starts_with("invalid request body"),
        "{answers:?}"
    );
    assert_eq!(permissionships[4].0, 401, "{answers:?}");
    assert_eq!(permissionships[5], (200, "PERMISSIONSHIP_NO_PERMISSION"));
}

#[test]
fn a_pipelined_request_over_the_body_limit_is_refused_alone() {
    let server = TestServer::start_with(Limits {
        max_body_bytes: 1000,
        ..Limits::default()
    });
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let check = "/v1/permissions/check";
    let big = json!({ "permission": "x".repeat(2000) }).to_string();
    let all = format!(
        "{}{}",
        request("/v1/schema/read", "{}", Some(KEY)),
        request(check, &big, Some(KEY))
    );
    stream.write_all(all.as_bytes()).unwrap();
    let answers = read_answers(&mut stream, 2);
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(answers[1].0, 413, "{answers:?}");
}

#[test]
fn bench_drives_h2c_and_pipelined_http1_with_every_answer_verified() {
    let (dir, server) = xs_workload_server();
    let runs = [
        (true, 1, "check=80,lookup=10,write=10", None),
        (true, 1, "check=1", Some(50)),
        (false, 8, "check=90,write=10", None),
        (false, 8, "check=1", Some(50)),
    ];
    for (http2, pipeline, mix, bulk) in runs {
        let settings = Settings {
            endpoint: server.base.clone(),
            key: KEY.to_string(),
            duration: Duration::from_secs(1),
            max_requests: Some(3_000),
            concurrency: 8,
            mix: Mix::parse(mix).unwrap(),
            bulk,
            verify: true,
            http2,
            pipeline,
            ..Settings::new(dir.path())
        };
        let report = run(&settings).unwrap();
        let text = report.render();
        assert_eq!(report.error_count(), 0, "{text}");
        assert_eq!(report.wrong, 0, "{text}");
        assert!(report.verified > 0, "{text}");
        assert!(!report.failed(), "{text}");
    }
    // Pipelining refuses lookups, whose answers are streamed.
    let settings = Settings {
        endpoint: server.base.clone(),
        key: KEY.to_string(),
        mix: Mix::parse("check=1,lookup=1").unwrap(),
        pipeline: 4,
        ..Settings::new(dir.path())
    };
    let error = run(&settings)
        .err()
        .expect("a pipelined lookup run started");
    assert!(error.to_string().contains("lookup"), "{error}");
}
