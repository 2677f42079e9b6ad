//! Slow and abusive clients: header and body timeouts, the connection cap, the request
//! timeout, and streamed answers that end when their client leaves or stops reading.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pemba_server::Limits;
use serde_json::{json, Value};

use crate::hostile::raw;
use crate::support::{rel, TestServer, KEY};

fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).unwrap()
}

/// Reads until the server closes the connection or `limit` passes; what arrived and when.
pub fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&answer).into(),
                    Some(started.elapsed()),
                )
            }
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return (
                    String::from_utf8_lossy(&answer).into(),
                    Some(started.elapsed()),
                )
            }
        }
    }
    (String::from_utf8_lossy(&answer).into(), None)
}

fn open_streams(server: &TestServer) -> i64 {
    let (status, text) = server.get("/metrics", Some(KEY));
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix("pemba_http_open_streams "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no open-streams gauge in\n{text}"))
}

#[track_caller]
fn wait_for_streams(server: &TestServer, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_streams(server) != expected {
        assert!(
            Instant::now() < deadline,
            "open streams stayed at {} (expected {expected})",
            open_streams(server)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn headers_sent_too_slowly_and_idle_connections_are_closed() {
    let server = TestServer::start_with(Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    // Half a request head, then nothing.
    let mut slow = connect(&server);
    slow.write_all(b"POST /v1/permissions/check HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(10));
    let closed = closed.expect("a connection sending half its headers stayed open");
    assert!(closed < Duration::from_secs(5), "closed after {closed:?}");
    // A connection that never sends a byte.
    let mut idle = connect(&server);
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(closed.is_some(), "an idle connection stayed open");
    // A keep-alive connection, idle after one answer.
    let mut kept = connect(&server);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (text, closed) = read_until_closed(&mut kept, Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        closed.is_some(),
        "an idle keep-alive connection stayed open"
    );
    assert_eq!(server.get("/healthz", None).0, 200);
}

#[test]
fn a_body_sent_too_slowly_is_408_and_nothing_is_written() {
    let server = TestServer::start_with(Limits {
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let before = server.get("/healthz", Some(KEY)).1;
    for path in ["/v1/relationships/write", "/v1/workspaces/acme"] {
        let method = if path.contains("workspaces") {
            "PUT"
        } else {
            "POST"
        };
        let mut stream = connect(&server);
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n{{\"updates\""
        )
        .unwrap();
        let (text, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
        assert!(closed.is_some(), "{path}: the connection stayed open");
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], 4, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("300 ms"),
            "{body}"
        );
    }
    assert_eq!(server.get("/healthz", Some(KEY)).1, before);
}

#[test]
fn connections_over_the_cap_wait_until_one_closes() {
    let server = TestServer::start_with(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    let first = connect(&server);
    let second = connect(&server);
    std::thread::sleep(Duration::from_millis(100));
    // A third client's request waits in the backlog, unanswered...
    let mut third = connect(&server);
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, _) = read_until_closed(&mut third, Duration::from_millis(500));
    assert!(text.is_empty(), "answered over the cap: {text}");
    // ...until one of the two closes.
    drop(first);
    let (text, closed) = read_until_closed(&mut third, Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed.is_some());
    drop(second);
}

#[test]
fn a_request_without_an_answer_in_time_is_504() {
    let server = TestServer::start_with(Limits {
        request_timeout: Duration::from_millis(1),
        max_import_relationships: 100_000,
        ..Limits::default()
    });
    let relationships: Vec<Value> = (0..20_000)
        .map(|i| rel(&format!("group:g{i}#member@user:u{i}")))
        .collect();
    let answer = raw(
        &server.base,
        "POST",
        "/v1/relationships/importbulk",
        &[("Authorization", &format!("Bearer {KEY}"))],
        json!({ "relationships": relationships })
            .to_string()
            .as_bytes(),
        true,
    );
    assert_eq!(answer.status, 504, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["code"], 4);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("may still be applied"));
}

/// A store with enough relationships that reading them all overflows socket buffers.
fn big_server(limits: Limits) -> TestServer {
    let server = TestServer::start_with(Limits {
        max_import_relationships: 100_000,
        ..limits
    });
    let relationships: Vec<Value> = (0..40_000)
        .map(|i| {
            rel(&format!(
                "group:g{i}#member@user:some-rather-long-user-id-{i}"
            ))
        })
        .collect();
    server.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );
    server
}

#[test]
fn streamed_answers_end_when_the_client_leaves_or_stops_reading() {
    let server = big_server(Limits {
        stream_stall_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let request = format!(
        "POST /v1/relationships/read HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(open_streams(&server), 0);
    // A client that reads a little, then goes away.
    let mut leaving = connect(&server);
    leaving.write_all(request.as_bytes()).unwrap();
    let mut first = [0u8; 1024];
    leaving.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    assert_eq!(open_streams(&server), 1);
    drop(leaving);
    wait_for_streams(&server, 0);
    // A client that stays connected but never reads: ended after the stall timeout.
    let mut stalled = connect(&server);
    stalled.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    wait_for_streams(&server, 0);
    drop(stalled);
    // Watch streams free their slot when the client leaves.
    let watch = format!(
        "POST /v1/watch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let mut watchers: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(&server);
            stream.write_all(watch.as_bytes()).unwrap();
            stream
        })
        .collect();
    for stream in &mut watchers {
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    wait_for_streams(&server, 3);
    drop(watchers);
    wait_for_streams(&server, 0);
}

/// Issue 12: half-open connections from one address (a request head begun, never ended)
/// used to fill the global connection cap, so `/healthz` from anyone else waited for the
/// 30 s header timeout. With a per-client limit, they cannot keep out a client elsewhere.
#[test]
fn issue_12_half_open_connections_from_one_address_do_not_keep_others_out() {
    let server = TestServer::start();
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let attacker: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    let mut held = Vec::new();
    let mut refused_in_a_row = 0;
    while held.len() < 2000 && refused_in_a_row < 3 {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&attacker.into()).unwrap();
        // A full listen backlog shows as a connect that does not complete.
        if socket
            .connect_timeout(&addr.into(), Duration::from_millis(200))
            .is_err()
        {
            refused_in_a_row += 1;
            continue;
        }
        refused_in_a_row = 0;
        let mut stream: TcpStream = socket.into();
        // A refused connection may already be closed: the write then fails, as it should.
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHo");
        held.push(stream);
    }
    let started = Instant::now();
    // A cap filled by the attacker leaves this connect in a full backlog: it would not
    // complete until the attacker's sockets time out.
    let mut client = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .expect("connected within 3 s beside the half-open connections");
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Far below the header timeouts (5 s for a first request, 30 s after) that a cap
    // filled by the attacker would make this client wait for.
    let (text, _) = read_until_closed(&mut client, Duration::from_secs(3));
    let waited = started.elapsed();
    eprintln!(
        "healthz from 127.0.0.1 answered in {waited:?} beside {} half-open connections from 127.0.0.2",
        held.len()
    );
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "no answer within 3 s: {text:?}"
    );
    drop(held);
}
