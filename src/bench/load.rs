//! The workers, one request in flight each: over HTTP on a keep-alive HTTP/1.1 connection
//! of their own (or, with `--http2`, on an h2c connection shared by
//! [`GRPC_WORKERS_PER_CONNECTION`](super::GRPC_WORKERS_PER_CONNECTION) workers unless
//! `--connections` says otherwise), over gRPC on an HTTP/2 connection shared the same way.
//! With `--pipeline N` an HTTP/1.1 worker has N requests in flight instead: it writes them
//! at once and reads the N answers in order. All read answers into one [`Answer`] form
//! that one [`verify`] judges.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use pb::permissions_service_client::PermissionsServiceClient;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::grpc::{self as wire, BulkResponse, Encoded};
use super::report::{Kind, Report, WorkerStats};
use super::{BenchError, Protocol, Settings};
use crate::workload::{parse_checks, parse_lookups, ExpectedCheck, ExpectedLookup};

/// One request gets this long before it counts as a timeout and its connection is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bench-only connections each worker cycles its writes through.
const WRITE_OBJECTS_PER_WORKER: u64 = 64;

/// Where the workers send their requests, and how they authenticate.
enum Target {
    Http {
        addr: SocketAddr,
        /// `Host` header value (the endpoint's authority).
        host: HeaderValue,
        auth: HeaderValue,
        /// Endpoint path prefix, without a trailing slash.
        prefix: String,
        /// With `--http2`: one h2c connection per [`GRPC_WORKERS_PER_CONNECTION`] workers,
        /// opened up front; empty for HTTP/1.1.
        h2: Vec<http2::SendRequest<Full<Bytes>>>,
    },
    Grpc {
        addr: SocketAddr,
        /// With `--bulk`, the bulk checks' HTTP/2 connections ([`super::grpc`]), opened up
        /// front, each shared by the workers `index % len` picks.
        h2: Vec<wire::Sender>,
        /// tonic's channels, the same number, for single checks, lookups and writes; empty
        /// when the mix has none of them.
        channels: Vec<Channel>,
        auth: MetadataValue<Ascii>,
        auth_header: HeaderValue,
        bulk_uri: hyper::Uri,
    },
}

/// What every worker reads: the target, the prepared bodies and the shared counters.
struct Plan {
    target: Target,
    checks: Vec<ExpectedCheck>,
    /// One serialized `check` body per expected check.
    check_bodies: Vec<Bytes>,
    /// One serialized `checkbulk` item per expected check.
    bulk_items: Vec<String>,
    lookups: Vec<ExpectedLookup>,
    lookup_bodies: Vec<Bytes>,
    /// Over gRPC, the checks as encoded requests.
    encoded: Option<Encoded>,
    settings: Settings,
    deadline: Instant,
    /// Requests started, to enforce `max_requests` across workers.
    started: AtomicU64,
    /// Requests finished and failed, for the progress line.
    finished: AtomicU64,
    failed: AtomicU64,
}

pub(super) async fn run(settings: &Settings) -> Result<Report, BenchError> {
    let plan = Arc::new(prepare(settings).await?);
    let begin = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let progress = settings
        .progress
        .then(|| tokio::spawn(progress_line(plan.clone(), done.clone(), begin)));
    let mut workers = Vec::with_capacity(settings.concurrency);
    for index in 0..settings.concurrency {
        workers.push(match &plan.target {
            Target::Http { .. } if settings.pipeline > 1 => {
                tokio::spawn(pipelined_worker(plan.clone(), index))
            }
            Target::Http { .. } => tokio::spawn(http_worker(plan.clone(), index)),
            Target::Grpc { .. } => tokio::spawn(grpc_worker(plan.clone(), index)),
        });
    }
    let mut total = WorkerStats::new();
    for worker in workers {
        match worker.await {
            Ok(stats) => total.merge(stats),
            Err(error) => total.error("internal", format!("a worker stopped: {error}")),
        }
    }
    let elapsed = begin.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    Ok(Report::new(settings, elapsed, total))
}

/// The socket address of `authority`, which must be loopback unless `--allow-remote`.
async fn resolve(
    settings: &Settings,
    authority: &hyper::http::uri::Authority,
    default_port: u16,
) -> Result<SocketAddr, BenchError> {
    let port = authority.port_u16().unwrap_or(default_port);
    // `[::1]` arrives with its brackets; resolve it without them.
    let host_name = authority.host().trim_matches(|c| c == '[' || c == ']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_name, port))
        .await
        .map_err(|e| BenchError(format!("cannot resolve `{authority}`: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.ip().is_loopback())
        .or_else(|| addrs.first().filter(|_| settings.allow_remote))
        .copied()
        .ok_or_else(|| {
            BenchError(format!(
                "`{authority}` is not a loopback address: pass `--allow-remote` to load a server elsewhere"
            ))
        })
}

async fn http_target(settings: &Settings) -> Result<Target, BenchError> {
    let uri: hyper::Uri = settings
        .endpoint
        .parse()
        .map_err(|e| BenchError(format!("invalid endpoint `{}`: {e}", settings.endpoint)))?;
    if uri.scheme_str() != Some("http") {
        return Err(BenchError(format!(
            "endpoint `{}`: only `http://HOST:PORT` is supported",
            settings.endpoint
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| BenchError(format!("endpoint `{}` has no host", settings.endpoint)))?;
    let addr = resolve(settings, authority, 80).await?;
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|_| BenchError(format!("invalid host `{authority}`")))?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", settings.key))
        .map_err(|_| BenchError("the API key holds characters a header cannot carry".into()))?;
    let mut h2 = Vec::new();
    if settings.http2 {
        for _ in 0..settings.http2_connections() {
            h2.push(connect_h2(addr).await.map_err(BenchError)?);
        }
    }
    Ok(Target::Http {
        addr,
        host,
        auth,
        prefix: uri.path().trim_end_matches('/').to_string(),
        h2,
    })
}

/// Parses `grpc://HOST:PORT` (as `pemba serve` prints it), `http://HOST:PORT` or
/// `HOST:PORT`, and opens the HTTP/2 connections up front, so an unreachable listener
/// stops the run before it starts.
async fn grpc_target(settings: &Settings) -> Result<Target, BenchError> {
    let text = settings.endpoint.trim();
    let rest = text
        .strip_prefix("grpc://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    if rest.contains("://") {
        return Err(BenchError(format!(
            "gRPC endpoint `{text}`: only `grpc://HOST:PORT` (plaintext) is supported"
        )));
    }
    let uri: hyper::Uri = format!("http://{rest}")
        .parse()
        .map_err(|e| BenchError(format!("invalid gRPC endpoint `{text}`: {e}")))?;
    if !matches!(uri.path(), "" | "/") {
        return Err(BenchError(format!(
            "gRPC endpoint `{text}` has a path: expected `grpc://HOST:PORT`"
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| BenchError(format!("gRPC endpoint `{text}` has no host")))?;
    if authority.port_u16().is_none() {
        return Err(BenchError(format!(
            "gRPC endpoint `{text}` has no port: expected `grpc://HOST:PORT`"
        )));
    }
    let addr = resolve(settings, authority, 0).await?;
    let bearer = format!("Bearer {}", settings.key);
    let auth: MetadataValue<Ascii> = bearer
        .parse()
        .map_err(|_| BenchError("the API key holds characters metadata cannot carry".into()))?;
    let auth_header = HeaderValue::from_str(&bearer)
        .map_err(|_| BenchError("the API key holds characters metadata cannot carry".into()))?;
    let uri = |path: &str| {
        format!("http://{addr}{path}")
            .parse::<hyper::Uri>()
            .map_err(|e| BenchError(format!("invalid gRPC endpoint `{text}`: {e}")))
    };
    let connections = settings.http2_connections();
    let mut h2 = Vec::with_capacity(connections);
    let mut channels = Vec::new();
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| BenchError(format!("invalid gRPC endpoint `{text}`: {e}")))?
        .tcp_nodelay(true);
    let cannot = |e: String| BenchError(format!("cannot connect to the gRPC listener: {e}"));
    let bulk_checks = settings.mix.check > 0 && settings.bulk.is_some();
    let single_checks = settings.mix.check > 0 && settings.bulk.is_none();
    for _ in 0..connections {
        if bulk_checks {
            h2.push(wire::connect(addr).await.map_err(cannot)?);
        }
        if single_checks || settings.mix.lookup > 0 || settings.mix.write > 0 {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .map_err(|e| cannot(format!("{addr}: {e}")))?,
            );
        }
    }
    Ok(Target::Grpc {
        addr,
        h2,
        channels,
        auth,
        auth_header,
        bulk_uri: uri(wire::BULK_PATH)?,
    })
}

async fn prepare(settings: &Settings) -> Result<Plan, BenchError> {
    let target = match settings.protocol {
        Protocol::Http => http_target(settings).await?,
        Protocol::Grpc => grpc_target(settings).await?,
    };
    let read = |name: &str| {
        let path = settings.workload.join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| BenchError(format!("cannot read `{}`: {e}", path.display())))
    };
    let checks = parse_checks(&read("checks.txt")?).map_err(BenchError)?;
    let lookups = if settings.mix.lookup > 0 {
        parse_lookups(&read("lookups.txt")?).map_err(BenchError)?
    } else {
        Vec::new()
    };
    if settings.mix.check > 0 && checks.is_empty() {
        return Err(BenchError("the workload has no checks".into()));
    }
    if settings.mix.lookup > 0 && lookups.is_empty() {
        return Err(BenchError("the workload has no lookups".into()));
    }
    let mut check_bodies = Vec::with_capacity(checks.len());
    let mut bulk_items = Vec::with_capacity(checks.len());
    for check in &checks {
        let item = json!({
            "resource": object(&check.resource),
            "permission": check.permission,
            "subject": { "object": object(&check.subject) },
        });
        bulk_items.push(item.to_string());
        let mut body = item;
        if let Some(fields) = body.as_object_mut() {
            fields.insert("consistency".into(), json!({ "minimizeLatency": true }));
        }
        check_bodies.push(Bytes::from(body.to_string()));
    }
    let lookup_bodies = lookups
        .iter()
        .map(|lookup| {
            Bytes::from(
                json!({
                    "consistency": { "minimizeLatency": true },
                    "resourceObjectType": lookup.resource_type,
                    "permission": lookup.permission,
                    "subject": { "object": object(&lookup.subject) },
                })
                .to_string(),
            )
        })
        .collect();
    let encoded = settings
        .bulk
        .filter(|_| settings.protocol == Protocol::Grpc)
        .map(|n| Encoded::new(&checks, n));
    Ok(Plan {
        target,
        checks,
        check_bodies,
        bulk_items,
        lookups,
        lookup_bodies,
        encoded,
        settings: settings.clone(),
        deadline: Instant::now() + settings.duration,
        started: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    })
}

/// `type:id` as a wire object reference.
fn object(text: &str) -> serde_json::Value {
    let (object_type, object_id) = text.split_once(':').unwrap_or((text, ""));
    json!({ "objectType": object_type, "objectId": object_id })
}

/// What one request asks and what a right answer looks like.
enum Expect {
    /// A single check's answer: the index of the expected check.
    Check(usize),
    /// Bulk check answers: the indexes of the expected checks, in item order.
    Bulk(Vec<usize>),
    /// A lookup's result count: the index of the expected lookup.
    Count(usize),
    /// Any success; the touch is on this bench-only connection id.
    Written(String),
}

/// An answer in a form both protocols read into, so one [`verify`] judges both.
enum Answer {
    /// A check's permissionship, spelled as the API's enum (`PERMISSIONSHIP_HAS_PERMISSION`).
    Check(String),
    /// Per bulk pair: the permissionship, or what came instead of one.
    Bulk(Vec<Result<String, String>>),
    /// A lookup's resource count, or the error the stream ended with.
    Count(Result<usize, String>),
    /// A write went through.
    Written,
    /// The answer could not be decoded.
    Unreadable(String),
}

/// Whether the next request may start: the deadline and `--requests` both allow it.
fn may_start(plan: &Plan) -> bool {
    if Instant::now() >= plan.deadline {
        return false;
    }
    if let Some(max) = plan.settings.max_requests {
        if plan.started.fetch_add(1, Ordering::Relaxed) >= max {
            return false;
        }
    }
    true
}

/// Draws the next request of the mix; `writes` numbers this worker's writes.
fn pick(plan: &Plan, rng: &mut ChaCha8Rng, index: usize, writes: &mut u64) -> (Kind, Expect) {
    let mix = plan.settings.mix;
    let pick = rng.random_range(0..mix.total());
    if pick < mix.check {
        let at = rng.random_range(0..plan.checks.len());
        match plan.settings.bulk {
            None => (Kind::Check, Expect::Check(at)),
            // `n` checks from `at` on, wrapping around the end.
            Some(n) => (
                Kind::Bulk,
                Expect::Bulk((0..plan.checks.len()).cycle().skip(at).take(n).collect()),
            ),
        }
    } else if pick < mix.check + mix.lookup {
        let at = rng.random_range(0..plan.lookups.len());
        (Kind::Lookup, Expect::Count(at))
    } else {
        let object_id = format!("bench_w{index}_{}", *writes % WRITE_OBJECTS_PER_WORKER);
        *writes += 1;
        (Kind::Write, Expect::Written(object_id))
    }
}

/// Counts one finished request: its latency and checks if it succeeded, its error if
/// not, and with `--verify` whether `answer` is the workload's.
fn finish(
    plan: &Plan,
    stats: &mut WorkerStats,
    kind: Kind,
    expect: &Expect,
    what: &str,
    latency: Duration,
    answer: Result<Option<Answer>, String>,
) {
    plan.finished.fetch_add(1, Ordering::Relaxed);
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            plan.failed.fetch_add(1, Ordering::Relaxed);
            stats.error(kind.name(), error);
            return;
        }
    };
    stats.record(kind, latency);
    if let Expect::Bulk(expected) = expect {
        stats.checks_answered += expected.len() as u64;
    } else if matches!(expect, Expect::Check(_)) {
        stats.checks_answered += 1;
    }
    if let Some(answer) = answer {
        verify(plan, stats, expect, what, answer);
    }
}

async fn http_worker(plan: Arc<Plan>, index: usize) -> WorkerStats {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.settings.seed ^ (index as u64).rotate_left(32));
    let mut stats = WorkerStats::new();
    let Target::Http {
        addr,
        host,
        auth,
        prefix,
        h2,
    } = &plan.target
    else {
        return stats;
    };
    // Over h2c the worker's share of a connection opened up front (it does not reconnect:
    // a lost connection fails every later request, which the report shows).
    let mut connection: Option<Sender> = h2
        .get(index % h2.len().max(1))
        .map(|sender| Sender::H2(sender.clone()));
    let mut writes = 0u64;
    while may_start(&plan) {
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match connect(*addr).await {
                Ok(sender) => connection.insert(Sender::H1(sender)),
                Err(error) => {
                    stats.error("connect", error);
                    plan.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let (kind, expect) = pick(&plan, &mut rng, index, &mut writes);
        let (path, body) = http_request(&plan, &expect);
        let path = format!("{prefix}{path}");
        let start = Instant::now();
        let answer =
            tokio::time::timeout(REQUEST_TIMEOUT, send(sender, host, auth, &path, body)).await;
        let latency = start.elapsed();
        let answer = match answer {
            Ok(Ok((StatusCode::OK, bytes))) => {
                Ok(plan.settings.verify.then(|| http_answer(&expect, &bytes)))
            }
            Ok(Ok((status, bytes))) => Err(format!(
                "http {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes).trim()
            )),
            Ok(Err(error)) => {
                connection = connection.filter(|c| matches!(c, Sender::H2(_)));
                Err(error)
            }
            Err(_) => {
                connection = connection.filter(|c| matches!(c, Sender::H2(_)));
                Err(format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
        };
        finish(&plan, &mut stats, kind, &expect, &path, latency, answer);
    }
    stats
}

/// A worker's way to the HTTP API: its own HTTP/1.1 connection, or a shared h2c one.
enum Sender {
    H1(SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// An HTTP/1.1 worker with `--pipeline N` requests in flight: it writes N requests in one
/// write, then reads the N answers (each with a `Content-Length`; lookups, whose answers
/// are streamed, are refused before the run) and times each from the write to its answer.
async fn pipelined_worker(plan: Arc<Plan>, index: usize) -> WorkerStats {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.settings.seed ^ (index as u64).rotate_left(32));
    let mut stats = WorkerStats::new();
    let Target::Http {
        addr,
        host,
        auth,
        prefix,
        ..
    } = &plan.target
    else {
        return stats;
    };
    let depth = plan.settings.pipeline;
    let mut connection: Option<Pipelined> = None;
    let mut writes = 0u64;
    let mut batch = Vec::with_capacity(depth);
    let mut out = Vec::new();
    while may_start(&plan) {
        let stream = match connection.as_mut() {
            Some(stream) => stream,
            None => match tokio::net::TcpStream::connect(*addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    connection.insert(Pipelined {
                        stream,
                        buffer: Vec::with_capacity(64 << 10),
                    })
                }
                Err(error) => {
                    stats.error("connect", format!("cannot connect to {addr}: {error}"));
                    plan.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        batch.clear();
        out.clear();
        while batch.len() < depth && (batch.is_empty() || may_start(&plan)) {
            let (kind, expect) = pick(&plan, &mut rng, index, &mut writes);
            let (path, body) = http_request(&plan, &expect);
            let path = format!("{prefix}{path}");
            out.extend_from_slice(b"POST ");
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
            out.extend_from_slice(host.as_bytes());
            out.extend_from_slice(b"\r\nAuthorization: ");
            out.extend_from_slice(auth.as_bytes());
            out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&body);
            batch.push((kind, expect, path));
        }
        let start = Instant::now();
        let exchanged = tokio::time::timeout(REQUEST_TIMEOUT, async {
            stream
                .stream
                .write_all(&out)
                .await
                .map_err(|e| format!("connection lost: {e}"))?;
            let mut answers = Vec::with_capacity(batch.len());
            for _ in 0..batch.len() {
                answers.push((stream.read_answer().await?, start.elapsed()));
            }
            Ok::<_, String>(answers)
        })
        .await;
        let answers = match exchanged {
            Ok(Ok(answers)) => answers,
            failed => {
                connection = None;
                let error = match failed {
                    Ok(Err(error)) => error,
                    _ => format!("no answer within {REQUEST_TIMEOUT:?}"),
                };
                for (kind, expect, path) in &batch {
                    finish(
                        &plan,
                        &mut stats,
                        *kind,
                        expect,
                        path,
                        Duration::ZERO,
                        Err(error.clone()),
                    );
                }
                continue;
            }
        };
        for ((kind, expect, path), ((status, bytes), latency)) in batch.iter().zip(answers) {
            let answer = if status == 200 {
                Ok(plan.settings.verify.then(|| http_answer(expect, &bytes)))
            } else {
                Err(format!(
                    "http {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ))
            };
            finish(&plan, &mut stats, *kind, expect, path, latency, answer);
        }
    }
    stats
}

/// A pipelining worker's connection and the bytes read past the last answer.
struct Pipelined {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Pipelined {
    /// Reads the next answer: its status and body (sized by `Content-Length`).
    async fn read_answer(&mut self) -> Result<(u16, Vec<u8>), String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&self.buffer) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = head.code.unwrap_or(0);
                    let length = head
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                        .ok_or("an answer without `Content-Length` (pipelining reads only sized answers)")?;
                    let end = head_len + length;
                    while self.buffer.len() < end {
                        self.fill().await?;
                    }
                    let body = self.buffer.get(head_len..end).unwrap_or_default().to_vec();
                    self.buffer.drain(..end);
                    return Ok((status, body));
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(error) => return Err(format!("unreadable answer head: {error}")),
            }
        }
    }

    /// Reads more bytes onto the buffer; a closed connection is an error.
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 << 10];
        let read = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        if read == 0 {
            return Err("the server closed the connection".to_string());
        }
        self.buffer
            .extend_from_slice(chunk.get(..read).unwrap_or_default());
        Ok(())
    }
}

/// The path and JSON body that ask what `expect` describes.
fn http_request(plan: &Plan, expect: &Expect) -> (&'static str, Bytes) {
    match expect {
        Expect::Check(at) => (
            "/v1/permissions/check",
            plan.check_bodies.get(*at).cloned().unwrap_or_default(),
        ),
        Expect::Bulk(picked) => {
            let mut body = String::with_capacity(picked.len() * 160 + 64);
            body.push_str(r#"{"consistency":{"minimizeLatency":true},"items":["#);
            for (i, at) in picked.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(plan.bulk_items.get(*at).map_or("{}", String::as_str));
            }
            body.push_str("]}");
            ("/v1/permissions/checkbulk", Bytes::from(body))
        }
        Expect::Count(at) => (
            "/v1/permissions/resources",
            plan.lookup_bodies.get(*at).cloned().unwrap_or_default(),
        ),
        Expect::Written(object_id) => {
            let body = json!({ "updates": [{
                "operation": "OPERATION_TOUCH",
                "relationship": {
                    "resource": { "objectType": "connection", "objectId": object_id },
                    "relation": "owner",
                    "subject": { "object": { "objectType": "user", "objectId": "bench_writer" } },
                },
            }]});
            ("/v1/relationships/write", Bytes::from(body.to_string()))
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr} failed: {e}"))?;
    // The connection future drives the socket; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Opens one h2c connection (HTTP/2 by prior knowledge, no upgrade).
async fn connect_h2(addr: SocketAddr) -> Result<http2::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    host: &HeaderValue,
    auth: &HeaderValue,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let lost = |e: hyper::Error| format!("connection lost: {e}");
    let builder = match sender {
        Sender::H1(sender) => {
            sender.ready().await.map_err(lost)?;
            Request::builder().uri(path).header(HOST, host.clone())
        }
        Sender::H2(sender) => {
            sender.ready().await.map_err(lost)?;
            // HTTP/2 carries the authority in the URI (`:authority`), not in `Host`.
            let authority = host.to_str().unwrap_or_default();
            Request::builder().uri(format!("http://{authority}{path}"))
        }
    };
    let request = builder
        .method(Method::POST)
        .header(AUTHORIZATION, auth.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let sent = match sender {
        Sender::H1(sender) => sender.send_request(request).await,
        Sender::H2(sender) => sender.send_request(request).await,
    };
    let response = sent.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("answer cut short: {e}"))?
        .to_bytes();
    Ok((status, bytes))
}

#[derive(Deserialize)]
struct CheckAnswer {
    permissionship: String,
}

#[derive(Deserialize)]
struct BulkAnswer {
    pairs: Vec<BulkPair>,
}

#[derive(Deserialize)]
struct BulkPair {
    item: Option<CheckAnswer>,
    error: Option<serde_json::Value>,
}

/// Reads a 200's JSON body (NDJSON for a lookup) as the answer `expect` asked for.
fn http_answer(expect: &Expect, bytes: &[u8]) -> Answer {
    match expect {
        Expect::Check(_) => match serde_json::from_slice::<CheckAnswer>(bytes) {
            Ok(answer) => Answer::Check(answer.permissionship),
            Err(error) => Answer::Unreadable(error.to_string()),
        },
        Expect::Bulk(_) => match serde_json::from_slice::<BulkAnswer>(bytes) {
            Ok(answer) => Answer::Bulk(
                answer
                    .pairs
                    .into_iter()
                    .map(|pair| match (pair.item, pair.error) {
                        (Some(item), _) => Ok(item.permissionship),
                        (None, Some(error)) => Err(format!("error {error}")),
                        (None, None) => Err("nothing".to_string()),
                    })
                    .collect(),
            ),
            Err(error) => Answer::Unreadable(error.to_string()),
        },
        Expect::Count(_) => {
            let text = String::from_utf8_lossy(bytes);
            let mut count = 0;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if line.starts_with(r#"{"error""#) {
                    return Answer::Count(Err(format!("error line {line}")));
                }
                count += 1;
            }
            Answer::Count(Ok(count))
        }
        Expect::Written(_) => Answer::Written,
    }
}

async fn grpc_worker(plan: Arc<Plan>, index: usize) -> WorkerStats {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.settings.seed ^ (index as u64).rotate_left(32));
    let mut stats = WorkerStats::new();
    let Target::Grpc {
        addr, h2, channels, ..
    } = &plan.target
    else {
        return stats;
    };
    // The bulk checks' connection: a shared one opened up front, or after one is lost a
    // new one of this worker's own.
    let mut connection = h2.get(index % h2.len().max(1)).cloned();
    // A tonic channel reconnects by itself, so a lost connection is one failed RPC.
    let mut client = channels
        .get(index % channels.len().max(1))
        .map(|channel| PermissionsServiceClient::new(channel.clone()));
    let mut writes = 0u64;
    while may_start(&plan) {
        let (kind, expect) = pick(&plan, &mut rng, index, &mut writes);
        let start = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            match (&expect, client.as_mut()) {
                (Expect::Bulk(picked), _) => grpc_bulk(&plan, &mut connection, *addr, picked).await,
                (_, Some(client)) => grpc_call(&plan, client, &expect).await,
                (_, None) => Err(tonic::Status::internal(
                    "no gRPC channel for checks, lookups and writes",
                )),
            }
        })
        .await;
        let latency = start.elapsed();
        let answer = match answer {
            Ok(Ok(answer)) => Ok(plan.settings.verify.then_some(answer)),
            Ok(Err(status)) => Err(format!(
                "grpc {:?}: {}",
                status.code(),
                status.message().trim()
            )),
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        };
        finish(
            &plan,
            &mut stats,
            kind,
            &expect,
            grpc_method(&expect),
            latency,
            answer,
        );
    }
    stats
}

/// Sends the bulk check of the workload's checks `picked` (consecutive, from the first on)
/// as its encoded request ([`super::grpc`]) and reads its answer.
async fn grpc_bulk(
    plan: &Plan,
    connection: &mut Option<wire::Sender>,
    addr: SocketAddr,
    picked: &[usize],
) -> Result<Answer, tonic::Status> {
    let (
        Target::Grpc {
            auth_header,
            bulk_uri,
            ..
        },
        Some(encoded),
    ) = (&plan.target, &plan.encoded)
    else {
        return Err(tonic::Status::internal("not a gRPC bulk run"));
    };
    let at = picked.first().copied().unwrap_or_default();
    let answer: wire::BulkAnswer = wire::unary(
        connection,
        addr,
        bulk_uri,
        auth_header,
        encoded.bulk(at, picked.len()),
    )
    .await?;
    Ok(Answer::Bulk(
        answer
            .pairs
            .into_iter()
            .map(|pair| match pair.response {
                Some(BulkResponse::Item(item)) => Ok(permissionship(item.permissionship)),
                Some(BulkResponse::Error(error)) => {
                    Err(format!("error {}: {}", error.code, error.message))
                }
                None => Err("nothing".to_string()),
            })
            .collect(),
    ))
}

fn grpc_method(expect: &Expect) -> &'static str {
    match expect {
        Expect::Check(_) => "CheckPermission",
        Expect::Bulk(_) => "CheckBulkPermissions",
        Expect::Count(_) => "LookupResources",
        Expect::Written(_) => "WriteRelationships",
    }
}

/// `type:id` as a gRPC object reference.
fn grpc_object(text: &str) -> pb::ObjectReference {
    let (object_type, object_id) = text.split_once(':').unwrap_or((text, ""));
    pb::ObjectReference {
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
    }
}

fn grpc_subject(text: &str) -> Option<pb::SubjectReference> {
    Some(pb::SubjectReference {
        object: Some(grpc_object(text)),
        optional_relation: String::new(),
    })
}

fn minimize_latency() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
    })
}

fn permissionship(value: i32) -> String {
    pb::check_permission_response::Permissionship::try_from(value).map_or_else(
        |_| format!("unknown permissionship {value}"),
        |p| p.as_str_name().to_string(),
    )
}

/// Sends the single check, lookup or write `expect` describes over tonic's client, with
/// the bearer key in `authorization`, and reads its answer (a lookup's whole stream).
async fn grpc_call(
    plan: &Plan,
    client: &mut PermissionsServiceClient<Channel>,
    expect: &Expect,
) -> Result<Answer, tonic::Status> {
    fn authorized<T>(message: T, auth: &MetadataValue<Ascii>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", auth.clone());
        request
    }
    let Target::Grpc { auth, .. } = &plan.target else {
        return Err(tonic::Status::internal("not a gRPC run"));
    };
    match expect {
        Expect::Check(at) => {
            let (resource, permission, subject) = plan.checks.get(*at).map_or(("", "", ""), |c| {
                (
                    c.resource.as_str(),
                    c.permission.as_str(),
                    c.subject.as_str(),
                )
            });
            let request = pb::CheckPermissionRequest {
                consistency: minimize_latency(),
                resource: Some(grpc_object(resource)),
                permission: permission.to_string(),
                subject: grpc_subject(subject),
                context: None,
                with_tracing: false,
            };
            let answer = client.check_permission(authorized(request, auth)).await?;
            Ok(Answer::Check(permissionship(
                answer.into_inner().permissionship,
            )))
        }
        Expect::Count(at) => {
            let (resource_type, permission, subject) =
                plan.lookups.get(*at).map_or(("", "", ""), |l| {
                    (
                        l.resource_type.as_str(),
                        l.permission.as_str(),
                        l.subject.as_str(),
                    )
                });
            let request = pb::LookupResourcesRequest {
                consistency: minimize_latency(),
                resource_object_type: resource_type.to_string(),
                permission: permission.to_string(),
                subject: grpc_subject(subject),
                ..Default::default()
            };
            let mut stream = client
                .lookup_resources(authorized(request, auth))
                .await?
                .into_inner();
            let mut count = 0;
            loop {
                match stream.message().await {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => return Ok(Answer::Count(Ok(count))),
                    // Past the first message the RPC was answered; the stream broke
                    // off, as an HTTP lookup's error line does.
                    Err(status) if count > 0 => {
                        return Ok(Answer::Count(Err(format!(
                            "stream ended with {:?}: {}",
                            status.code(),
                            status.message()
                        ))))
                    }
                    Err(status) => return Err(status),
                }
            }
        }
        Expect::Written(object_id) => {
            let request = pb::WriteRelationshipsRequest {
                updates: vec![pb::RelationshipUpdate {
                    operation: pb::relationship_update::Operation::Touch as i32,
                    relationship: Some(pb::Relationship {
                        resource: Some(pb::ObjectReference {
                            object_type: "connection".to_string(),
                            object_id: object_id.clone(),
                        }),
                        relation: "owner".to_string(),
                        subject: grpc_subject("user:bench_writer"),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            };
            client
                .write_relationships(authorized(request, auth))
                .await?;
            Ok(Answer::Written)
        }
        Expect::Bulk(_) => Err(tonic::Status::internal(
            "bulk checks go the encoded way (grpc_bulk)",
        )),
    }
}

fn allowed(permissionship: &str) -> Option<bool> {
    match permissionship {
        "PERMISSIONSHIP_HAS_PERMISSION" => Some(true),
        "PERMISSIONSHIP_NO_PERMISSION" => Some(false),
        _ => None,
    }
}

/// Compares `answer` with the workload's expected one, over either protocol; `what`
/// names the request (its path or RPC) in the wrong-answer examples.
fn verify(plan: &Plan, stats: &mut WorkerStats, expect: &Expect, what: &str, answer: Answer) {
    match (expect, answer) {
        (Expect::Check(at), answer) => {
            stats.verified += 1;
            let Some(check) = plan.checks.get(*at) else {
                stats.wrong(format!("{what}: no check number {at} in the workload"));
                return;
            };
            match answer {
                Answer::Check(got) if allowed(&got) == Some(check.allowed) => {}
                Answer::Check(got) => stats.wrong(format!(
                    "check {}#{}@{}: expected {}, got {got}",
                    check.resource, check.permission, check.subject, check.allowed,
                )),
                Answer::Unreadable(error) => {
                    stats.wrong(format!("{what}: unreadable answer: {error}"))
                }
                _ => stats.wrong(format!("{what}: not a check answer")),
            }
        }
        (Expect::Bulk(expected), Answer::Bulk(pairs)) if pairs.len() == expected.len() => {
            for (pair, at) in pairs.iter().zip(expected) {
                stats.verified += 1;
                let Some(check) = plan.checks.get(*at) else {
                    stats.wrong(format!("{what}: no check number {at} in the workload"));
                    continue;
                };
                let got = pair.as_ref().ok().and_then(|p| allowed(p));
                if got != Some(check.allowed) {
                    stats.wrong(format!(
                        "checkbulk item {}#{}@{}: expected {}, got {}",
                        check.resource,
                        check.permission,
                        check.subject,
                        check.allowed,
                        match pair {
                            Ok(p) | Err(p) => p,
                        }
                    ));
                }
            }
        }
        (Expect::Bulk(expected), answer) => {
            stats.verified += expected.len() as u64;
            stats.wrong(match answer {
                Answer::Bulk(pairs) => {
                    format!("{what}: {} pairs for {} items", pairs.len(), expected.len())
                }
                Answer::Unreadable(error) => format!("{what}: unreadable answer: {error}"),
                _ => format!("{what}: not a checkbulk answer"),
            });
        }
        (Expect::Count(at), answer) => {
            stats.verified += 1;
            let Some(lookup) = plan.lookups.get(*at) else {
                stats.wrong(format!("{what}: no lookup number {at} in the workload"));
                return;
            };
            match answer {
                Answer::Count(Ok(count)) if count == lookup.count => {}
                Answer::Count(Ok(count)) => stats.wrong(format!(
                    "lookup {} {} {}: expected {} resources, got {count}",
                    lookup.subject, lookup.resource_type, lookup.permission, lookup.count
                )),
                Answer::Count(Err(error)) => stats.wrong(format!("{what}: {error}")),
                Answer::Unreadable(error) => {
                    stats.wrong(format!("{what}: unreadable answer: {error}"))
                }
                _ => stats.wrong(format!("{what}: not a lookup answer")),
            }
        }
        (Expect::Written(_), _) => {}
    }
}

async fn progress_line(plan: Arc<Plan>, done: Arc<AtomicBool>, begin: Instant) {
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    while !done.load(Ordering::Relaxed) {
        let elapsed = begin.elapsed().as_secs_f64().max(1e-9);
        let finished = plan.finished.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{elapsed:5.1}s / {:.0}s  {finished} requests  {:.0} req/s  {} errors",
            plan.settings.duration.as_secs_f64(),
            finished as f64 / elapsed,
            plan.failed.load(Ordering::Relaxed),
        ));
        bar.tick();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_and_clear();
}
