//! Hostile input over a real socket: every route of the route table gets the wrong method,
//! a form body, an empty body, truncated JSON, a body over the limit (with and without a
//! length), deep nesting, batches over their limits, forbidden id characters, unknown
//! names and invalid tokens. Each must answer the API's JSON error with the right status,
//! write nothing (the revision stays put), and leave the server serving.
//!
//! One piece because every case is driven from one table over the route table; the table
//! is long, the logic short.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pemba_server::Limits;
use serde_json::{json, Value};

use crate::support::{obj, rel, subj, TestServer, KEY};

/// A raw HTTP/1.1 exchange: what the server answered, whatever the request looked like.
pub struct Raw {
    pub status: u16,
    pub body: String,
}

/// Sends one request on a fresh connection (`Connection: close`). `length: false` sends
/// the body chunked, without `Content-Length`. Reads the answer's head and as much body as
/// arrives within a short wait (streamed answers never end on their own).
pub fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    length: bool,
) -> Raw {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    // The answer may take a while on a loaded machine; once it starts, a short wait ends
    // the read (streamed answers never end on their own).
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if length {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    } else {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    }
    // The server may answer (413) and close before reading everything: ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    if length {
        let _ = stream.write_all(body);
    } else {
        for chunk in body.chunks(16 * 1024) {
            let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = stream.write_all(chunk);
            let _ = stream.write_all(b"\r\n");
        }
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {text:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Raw { status, body }
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            out.push_str(&rest[..size.min(rest.len())]);
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// What a case must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this status, with the JSON error body.
    Status(u16),
    /// Some 4xx with the JSON error body.
    ClientError,
    /// 200 (a documented default, such as an empty body meaning `{}`) or a 4xx JSON error.
    OkOrClientError,
    /// 200 with the error in the (first) item, as checkbulk answers per item.
    ItemError,
}

struct Case {
    name: String,
    method: String,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    length: bool,
    expect: Expect,
    /// Text the error message must contain (for limits: the limit).
    needle: Option<String>,
}

/// The concrete ids the set-up creates, substituted for the route patterns' parameters.
struct Fixture {
    group: String,
}

impl Fixture {
    fn path(&self, pattern: &str) -> String {
        pattern
            .replace("{ws}", "acme")
            .replace("{user}", "bob")
            .replace("{group}", &self.group)
            .replace("/connections/{id}", "/connections/c1")
            .replace("/workbooks/{id}", "/workbooks/b1")
            .replace("{member}", "bob")
    }
}

/// Small body limits, so bodies over them stay cheap to send.
fn limits() -> Limits {
    Limits {
        max_body_bytes: 256 << 10,
        max_import_body_bytes: 512 << 10,
        max_import_relationships: 500,
        ..Limits::default()
    }
}

/// A valid body for each route that reads one (never sent as is: cases mutate it).
fn valid_body(method: &str, pattern: &str) -> Option<Value> {
    let resource = obj("connection:c1");
    let subject = subj("user:alice");
    let body = match (method, pattern) {
        ("POST", "/v1/permissions/check") => {
            json!({ "consistency": { "fullyConsistent": true }, "resource": resource, "permission": "use", "subject": subject })
        }
        ("POST", "/v1/permissions/checkbulk") => {
            json!({ "items": [{ "resource": resource, "permission": "use", "subject": subject }] })
        }
        ("POST", "/v1/permissions/resources") => {
            json!({ "resourceObjectType": "connection", "permission": "use", "subject": subject, "optionalLimit": 10 })
        }
        ("POST", "/v1/permissions/subjects") => {
            json!({ "resource": resource, "permission": "use", "subjectObjectType": "user", "optionalConcreteLimit": 10 })
        }
        ("POST", "/v1/permissions/expand") => json!({ "resource": resource, "permission": "use" }),
        ("POST", "/v1/relationships/write") => {
            json!({ "updates": [{ "operation": "OPERATION_TOUCH", "relationship": rel("connection:c9#owner@user:bob") }] })
        }
        ("POST", "/v1/relationships/delete") => {
            json!({ "relationshipFilter": { "resourceType": "connection", "optionalResourceId": "c9" } })
        }
        ("POST", "/v1/relationships/read") => {
            json!({ "relationshipFilter": { "resourceType": "connection" }, "optionalLimit": 10 })
        }
        ("POST", "/v1/relationships/importbulk") => {
            json!({ "relationships": [rel("connection:c9#owner@user:bob")] })
        }
        ("POST", "/v1/relationships/exportbulk") => json!({ "optionalLimit": 10 }),
        ("POST", "/v1/schema/write") => json!({ "schema": pemba_server::DEFAULT_SCHEMA }),
        ("POST", "/v1/schema/read") => json!({ "consistency": { "minimizeLatency": true } }),
        ("POST", "/v1/watch") => json!({ "optionalObjectTypes": ["connection"] }),
        ("PUT", "/v1/workspaces/{ws}") => json!({ "admin": "alice" }),
        ("PUT", "/v1/workspaces/{ws}/members/{user}") => json!({ "role": "viewer" }),
        ("POST", "/v1/workspaces/{ws}/groups") => json!({ "name": "Hostile", "members": ["bob"] }),
        ("PATCH", "/v1/workspaces/{ws}/groups/{group}") => json!({ "name": "Renamed" }),
        ("PUT", p) if p.starts_with("/v1/workspaces/{ws}/workbooks/{id}/access/") => {
            json!({ "role": "viewer" })
        }
        _ => return None,
    };
    Some(body)
}

/// Over-limit variants of a route's body: (name, body, the limit the message must name).
fn over_limits(pattern: &str) -> Vec<(&'static str, Value, &'static str)> {
    let many = |n: usize, item: Value| Value::Array(vec![item; n]);
    let touch = json!({ "operation": "OPERATION_TOUCH", "relationship": rel("connection:c9#owner@user:bob") });
    let precondition =
        json!({ "operation": "OPERATION_MUST_MATCH", "filter": { "resourceType": "connection" } });
    let item = json!({ "resource": obj("connection:c1"), "permission": "use", "subject": subj("user:alice") });
    match pattern {
        "/v1/relationships/write" => vec![
            (
                "1001 updates",
                json!({ "updates": many(1001, touch.clone()) }),
                "1000",
            ),
            (
                "1001 preconditions",
                json!({ "updates": [touch], "optionalPreconditions": many(1001, precondition) }),
                "1000",
            ),
        ],
        "/v1/relationships/delete" => vec![
            (
                "1001 preconditions",
                json!({ "relationshipFilter": { "resourceType": "connection" }, "optionalPreconditions": many(1001, precondition) }),
                "1000",
            ),
            (
                "limit 100001",
                json!({ "relationshipFilter": { "resourceType": "connection" }, "optionalLimit": 100_001 }),
                "100000",
            ),
        ],
        "/v1/permissions/checkbulk" => {
            vec![("1001 items", json!({ "items": many(1001, item) }), "1000")]
        }
        "/v1/permissions/resources" => vec![(
            "limit 1001",
            json!({ "resourceObjectType": "connection", "permission": "use", "subject": subj("user:alice"), "optionalLimit": 1001 }),
            "1000",
        )],
        "/v1/permissions/subjects" => vec![(
            "limit 1001",
            json!({ "resource": obj("connection:c1"), "permission": "use", "subjectObjectType": "user", "optionalConcreteLimit": 1001 }),
            "1000",
        )],
        "/v1/relationships/read" => vec![("limit 1001", json!({ "optionalLimit": 1001 }), "1000")],
        "/v1/relationships/exportbulk" => {
            vec![("limit 10001", json!({ "optionalLimit": 10_001 }), "10000")]
        }
        "/v1/relationships/importbulk" => vec![(
            "501 relationships",
            json!({ "relationships": many(501, rel("connection:c9#owner@user:bob")) }),
            "500",
        )],
        _ => Vec::new(),
    }
}

/// Variants with bad names, ids and tokens, made by replacing text in the valid body.
fn bad_values(pattern: &str, body: &Value) -> Vec<(String, Value)> {
    let text = body.to_string();
    let mut out = Vec::new();
    let ids = [
        ("space", "bad id"),
        ("hash", "a#b"),
        ("colon", "a:b"),
        ("unicode", "ünï"),
        ("nul", "a\\u0000b"),
        ("newline", "a\\nb"),
    ];
    for (from, label) in [
        ("\"c1\"", "resource id"),
        ("\"alice\"", "subject id"),
        ("\"c9\"", "id"),
    ] {
        if text.contains(from) {
            for (name, id) in ids {
                out.push((
                    format!("{label} with {name}"),
                    text.replace(from, &format!("\"{id}\"")),
                ));
            }
            out.push((
                format!("{label} of 1025 chars"),
                text.replace(from, &format!("\"{}\"", "a".repeat(1025))),
            ));
        }
    }
    for (from, label) in [
        ("\"connection\"", "type"),
        ("\"use\"", "permission"),
        ("\"owner\"", "relation"),
        ("\"user\"", "subject type"),
    ] {
        if text.contains(from)
            && pattern.starts_with("/v1/")
            && !pattern.starts_with("/v1/workspaces")
        {
            out.push((
                format!("unknown {label}"),
                text.replace(from, "\"nosuchname\""),
            ));
            out.push((
                format!("invalid {label}"),
                text.replace(from, "\"Bad-Name!\""),
            ));
        }
    }
    if text.contains("\"consistency\"") || pattern == "/v1/relationships/read" {
        for (name, token) in [
            ("garbage", "garbage"),
            ("future", "pb1.999999999"),
            ("empty prefix", "pb1."),
            ("overflow", "pb1.99999999999999999999999"),
        ] {
            let mut value = body.clone();
            value["consistency"] = json!({ "atLeastAsFresh": { "token": token } });
            out.push((format!("{name} token"), value.to_string()));
        }
    }
    if matches!(
        pattern,
        "/v1/relationships/read"
            | "/v1/relationships/exportbulk"
            | "/v1/permissions/resources"
            | "/v1/permissions/subjects"
    ) {
        for cursor in ["!!!", "cmQ6", "ZXg6bm90IGEgdHVwbGU", ""] {
            let mut value = body.clone();
            value["optionalCursor"] = json!({ "token": cursor });
            if !cursor.is_empty() {
                out.push((format!("cursor `{cursor}`"), value.to_string()));
            }
        }
    }
    if pattern == "/v1/watch" {
        out.push((
            "watch start cursor".into(),
            json!({ "optionalStartCursor": { "token": "pb1.99999999" } }).to_string(),
        ));
    }
    if pattern == "/v1/schema/write" {
        let deep = format!(
            "definition user {{}}\ndefinition doc {{\n relation viewer: user\n permission view = {}viewer{}\n}}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        out.push((
            "schema nested 100000 deep".into(),
            json!({ "schema": deep }).to_string(),
        ));
        let long = format!(
            "definition user {{}}\ndefinition doc {{\n relation viewer: user\n permission view = {}viewer\n}}",
            "viewer + ".repeat(20_000)
        );
        out.push((
            "schema of 20000 operands".into(),
            json!({ "schema": long }).to_string(),
        ));
    }
    out.into_iter()
        .filter_map(|(name, text)| serde_json::from_str::<Value>(&text).ok().map(|v| (name, v)))
        .collect()
}

fn health_revision(server: &TestServer) -> String {
    let (status, text) = server.get("/healthz", Some(KEY));
    assert_eq!(status, 200, "the server stopped serving: {text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    value["revision"].as_str().unwrap().to_string()
}

fn set_up(server: &TestServer) -> Fixture {
    let put = |path: &str, actor: Option<&str>, body: Value| {
        let mut headers = vec![("Authorization", format!("Bearer {KEY}"))];
        if let Some(actor) = actor {
            headers.push(("Pemba-Actor", actor.to_string()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (method, path) = path.split_once(' ').unwrap();
        let answer = raw(
            &server.base,
            method,
            path,
            &headers,
            body.to_string().as_bytes(),
            true,
        );
        assert!(
            answer.status < 300,
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null)
    };
    put("PUT /v1/workspaces/acme", None, json!({ "admin": "alice" }));
    put(
        "PUT /v1/workspaces/acme/members/bob",
        Some("alice"),
        json!({ "role": "editor" }),
    );
    let group = put(
        "POST /v1/workspaces/acme/groups",
        Some("alice"),
        json!({ "name": "Eng", "members": ["bob"] }),
    );
    put(
        "PUT /v1/workspaces/acme/connections/c1",
        Some("alice"),
        json!({}),
    );
    put(
        "PUT /v1/workspaces/acme/workbooks/b1",
        Some("alice"),
        json!({}),
    );
    Fixture {
        group: group["id"].as_str().unwrap().to_string(),
    }
}

#[test]
fn every_route_answers_hostile_requests_with_json_errors_and_writes_nothing() {
    let server = TestServer::start_with(limits());
    let fixture = set_up(&server);
    let table = pemba_server::routes::list();
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let mut cases: Vec<Case> = Vec::new();
    for (method, pattern, _) in &table {
        let path = fixture.path(pattern);
        let served: Vec<&str> = table
            .iter()
            .filter(|(_, p, _)| p == pattern)
            .map(|(m, _, _)| m.as_str())
            .collect();
        let case = |name: &str, body: Vec<u8>, expect: Expect| Case {
            name: format!("{method} {pattern}: {name}"),
            method: method.to_string(),
            path: path.clone(),
            content_type: "application/json",
            body,
            length: true,
            expect,
            needle: None,
        };
        // The wrong method (once per path).
        if served[0] == method.as_str() {
            let wrong = methods.iter().find(|m| !served.contains(m)).unwrap();
            cases.push(Case {
                method: wrong.to_string(),
                ..case("wrong method", b"{}".to_vec(), Expect::Status(405))
            });
        }
        let is_csv = pattern.ends_with("/groups/import");
        let Some(valid) = valid_body(method.as_str(), pattern) else {
            if is_csv {
                let limit = limits().max_body_bytes;
                let mut huge = b"group,member\n".to_vec();
                while huge.len() <= limit {
                    huge.extend_from_slice(b"Some group,bob\n");
                }
                cases.push(Case {
                    content_type: "text/csv",
                    ..case("huge CSV", huge, Expect::Status(413))
                });
                cases.push(Case {
                    content_type: "text/csv",
                    ..case("empty CSV", Vec::new(), Expect::ClientError)
                });
                cases.push(Case {
                    content_type: "text/csv",
                    ..case(
                        "binary CSV",
                        vec![0xff, 0xfe, 0, 1, 2, b'\n', 0x80],
                        Expect::ClientError,
                    )
                });
                let rows: String = (0..10_001).map(|i| format!("g{i},bob\n")).collect();
                cases.push(Case {
                    content_type: "text/csv",
                    needle: Some("10000".into()),
                    ..case(
                        "10001 rows",
                        format!("group,member\n{rows}").into_bytes(),
                        Expect::ClientError,
                    )
                });
                cases.push(Case {
                    content_type: "text/csv",
                    ..case(
                        "header only wrong",
                        b"name,who\nA,bob\n".to_vec(),
                        Expect::ClientError,
                    )
                });
            }
            continue;
        };
        let text = valid.to_string();
        let groups = pattern.starts_with("/v1/workspaces");
        let bad_json = if groups { 422 } else { 400 };
        cases.push(Case {
            content_type: "application/x-www-form-urlencoded",
            ..case("form body", b"a=1&b=2".to_vec(), Expect::Status(bad_json))
        });
        cases.push(case("empty body", Vec::new(), Expect::OkOrClientError));
        cases.push(case(
            "truncated JSON",
            text.as_bytes()[..text.len() / 2].to_vec(),
            Expect::Status(bad_json),
        ));
        cases.push(case(
            "JSON of the wrong shape",
            b"[1, 2, 3]".to_vec(),
            Expect::Status(bad_json),
        ));
        cases.push(case(
            "invalid UTF-8",
            b"{\"a\": \"\xff\xfe\"}".to_vec(),
            Expect::Status(bad_json),
        ));
        let limit = if pattern.ends_with("/importbulk") {
            limits().max_import_body_bytes
        } else {
            limits().max_body_bytes
        };
        let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(limit)).into_bytes();
        cases.push(case(
            "body over the limit",
            huge.clone(),
            Expect::Status(413),
        ));
        cases.push(Case {
            length: false,
            ..case("chunked body over the limit", huge, Expect::Status(413))
        });
        let deep = format!("{}1{}", "{\"a\":".repeat(20_000), "}".repeat(20_000)).into_bytes();
        cases.push(case(
            "objects nested 20000 deep",
            deep,
            Expect::Status(bad_json),
        ));
        let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let first_field = valid
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        cases.push(case(
            "a field nested 100000 deep",
            format!("{{\"{first_field}\": {deep_array}}}").into_bytes(),
            Expect::Status(bad_json),
        ));
        for (name, body, limit) in over_limits(pattern) {
            cases.push(Case {
                needle: Some(limit.to_string()),
                ..case(name, body.to_string().into_bytes(), Expect::Status(400))
            });
        }
        for (name, body) in bad_values(pattern, &valid) {
            let per_item = pattern.ends_with("/checkbulk") && !name.contains("token");
            let expect = if per_item {
                Expect::ItemError
            } else {
                Expect::ClientError
            };
            cases.push(case(&name, body.to_string().into_bytes(), expect));
        }
    }
    // Path parameters with forbidden characters and an unknown query string.
    for (method, pattern, _) in &table {
        if pattern.contains("{ws}") {
            let path = fixture.path(pattern).replacen("acme", "bad%20id%23x", 1);
            cases.push(Case {
                name: format!("{method} {pattern}: forbidden characters in the path"),
                method: method.to_string(),
                path,
                content_type: "application/json",
                body: valid_body(method.as_str(), pattern)
                    .map(|v| v.to_string().into_bytes())
                    .unwrap_or_default(),
                length: true,
                expect: Expect::ClientError,
                needle: None,
            });
        }
    }
    for query in ["q=a&q=b", "q=%ZZ&q=%FF"] {
        cases.push(Case {
            name: format!("GET groups?{query}"),
            method: "GET".into(),
            path: format!("/v1/workspaces/acme/groups?{query}"),
            content_type: "application/json",
            body: Vec::new(),
            length: true,
            expect: Expect::ClientError,
            needle: None,
        });
    }

    let before = health_revision(&server);
    let mut failures = Vec::new();
    for case in &cases {
        let answer = raw(
            &server.base,
            &case.method,
            &case.path,
            &[
                ("Authorization", &format!("Bearer {KEY}")),
                ("Pemba-Actor", "alice"),
                ("Content-Type", case.content_type),
            ],
            &case.body,
            case.length,
        );
        let ok_status = match case.expect {
            Expect::Status(status) => answer.status == status,
            Expect::ClientError => (400..500).contains(&answer.status),
            Expect::OkOrClientError => answer.status == 200 || (400..500).contains(&answer.status),
            Expect::ItemError => answer.status == 200,
        };
        let mut error: Option<Value> = serde_json::from_str(&answer.body).ok();
        if let (Expect::ItemError, Some(body)) = (case.expect, &error) {
            error = Some(body["pairs"][0]["error"].clone());
        }
        let shaped = (answer.status == 200 && !matches!(case.expect, Expect::ItemError))
            || error.as_ref().is_some_and(|e| {
                e["code"].is_u64()
                    && e["message"].as_str().is_some_and(|m| !m.is_empty())
                    && e["details"] == json!([])
            });
        let named = match (&case.needle, &error) {
            (Some(needle), Some(e)) => e.to_string().contains(needle.as_str()),
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !(ok_status && shaped && named) {
            failures.push(format!(
                "{}: expected {:?}{}, got {} {}",
                case.name,
                case.expect,
                case.needle
                    .as_deref()
                    .map(|n| format!(" naming `{n}`"))
                    .unwrap_or_default(),
                answer.status,
                &answer.body[..answer.body.len().min(300)]
            ));
        }
        let after = health_revision(&server);
        if after != before {
            failures.push(format!(
                "{}: the revision moved from {before} to {after}",
                case.name
            ));
            break;
        }
    }
    eprintln!(
        "hostile requests tried: {} over {} routes",
        cases.len(),
        table.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Still serving real requests.
    assert!(!server.check("connection:c1#use@user:nobody"));
}

#[test]
fn every_route_with_a_body_has_a_decoder_and_a_hostile_body() {
    for (method, pattern, _) in pemba_server::routes::list() {
        let decodes = pemba_server::routes::decode_body(&method, pattern, b"{}").is_some();
        let reads_json = valid_body(method.as_str(), pattern).is_some();
        assert_eq!(
            decodes, reads_json,
            "{method} {pattern}: decode_body and this test's bodies disagree"
        );
    }
}

#[test]
fn the_key_is_never_logged_even_at_trace_level() {
    use crate::process::{agent, ServeProcess, PROCESS_KEY};
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{PROCESS_KEY}\n")).unwrap();
    let mut server = ServeProcess::spawn(
        &dir.path().join("data"),
        &[("RUST_LOG", "trace")],
        &["--key-file", key_file.to_str().unwrap()],
    );
    server.wait_healthy(Duration::from_secs(30)).unwrap();
    let wrong = format!("{}x", &PROCESS_KEY[..PROCESS_KEY.len() - 1]);
    let agent = agent(Duration::from_secs(10));
    for key in [PROCESS_KEY, wrong.as_str()] {
        for path in ["/v1/schema/read", "/v1/nope"] {
            let _ = agent
                .post(&format!("{}{path}", server.base))
                .header("Authorization", &format!("Bearer {key}"))
                .send("{}");
        }
    }
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(log.len() > 5, "expected trace output: {log:?}");
    for line in &log {
        assert!(
            !line.contains(PROCESS_KEY) && !line.contains(&wrong),
            "a key reached the log: {line}"
        );
    }
}
