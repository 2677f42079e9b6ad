//! The workers: one keep-alive HTTP/1.1 connection each, one request in flight at a time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;

use super::report::{Kind, Report, WorkerStats};
use super::{BenchError, Settings};
use crate::workload::{parse_checks, parse_lookups, ExpectedCheck, ExpectedLookup};

/// One request gets this long before it counts as a timeout and its connection is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bench-only connections each worker cycles its writes through.
const WRITE_OBJECTS_PER_WORKER: u64 = 64;

/// What every worker reads: the target, the prepared bodies and the shared counters.
struct Plan {
    addr: SocketAddr,
    /// `Host` header value (the endpoint's authority).
    host: HeaderValue,
    auth: HeaderValue,
    /// Endpoint path prefix, without a trailing slash.
    prefix: String,
    checks: Vec<ExpectedCheck>,
    /// One serialized `check` body per expected check.
    check_bodies: Vec<Bytes>,
    /// One serialized `checkbulk` item per expected check.
    bulk_items: Vec<String>,
    lookups: Vec<ExpectedLookup>,
    lookup_bodies: Vec<Bytes>,
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
        workers.push(tokio::spawn(worker(plan.clone(), index)));
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

async fn prepare(settings: &Settings) -> Result<Plan, BenchError> {
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
    let port = authority.port_u16().unwrap_or(80);
    // `[::1]` arrives with its brackets; resolve it without them.
    let host_name = authority.host().trim_matches(|c| c == '[' || c == ']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_name, port))
        .await
        .map_err(|e| BenchError(format!("cannot resolve `{authority}`: {e}")))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.ip().is_loopback())
        .or_else(|| addrs.first().filter(|_| settings.allow_remote))
        .copied()
        .ok_or_else(|| {
            BenchError(format!(
                "`{authority}` is not a loopback address: pass `--allow-remote` to load a server elsewhere"
            ))
        })?;
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|_| BenchError(format!("invalid host `{authority}`")))?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", settings.key))
        .map_err(|_| BenchError("the API key holds characters a header cannot carry".into()))?;

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
    Ok(Plan {
        addr,
        host,
        auth,
        prefix: uri.path().trim_end_matches('/').to_string(),
        checks,
        check_bodies,
        bulk_items,
        lookups,
        lookup_bodies,
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
    /// Any 200.
    Written,
}

async fn worker(plan: Arc<Plan>, index: usize) -> WorkerStats {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.settings.seed ^ (index as u64).rotate_left(32));
    let mut stats = WorkerStats::new();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mix = plan.settings.mix;
    let mut writes = 0u64;
    loop {
        if Instant::now() >= plan.deadline {
            break;
        }
        if let Some(max) = plan.settings.max_requests {
            if plan.started.fetch_add(1, Ordering::Relaxed) >= max {
                break;
            }
        }
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match connect(plan.addr).await {
                Ok(sender) => connection.insert(sender),
                Err(error) => {
                    stats.error("connect", error);
                    plan.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let pick = rng.random_range(0..mix.total());
        let (kind, path, body, expect) = if pick < mix.check {
            let at = rng.random_range(0..plan.checks.len());
            match plan.settings.bulk {
                None => (
                    Kind::Check,
                    "/v1/permissions/check",
                    plan.check_bodies.get(at).cloned().unwrap_or_default(),
                    Expect::Check(at),
                ),
                Some(n) => {
                    // `n` checks from `at` on, wrapping around the end.
                    let items = plan.bulk_items.iter().enumerate().cycle().skip(at).take(n);
                    let mut picked = Vec::with_capacity(n);
                    let mut body = String::with_capacity(n * 160 + 64);
                    body.push_str(r#"{"consistency":{"minimizeLatency":true},"items":["#);
                    for (i, (check_at, item)) in items.enumerate() {
                        if i > 0 {
                            body.push(',');
                        }
                        body.push_str(item);
                        picked.push(check_at);
                    }
                    body.push_str("]}");
                    (
                        Kind::Bulk,
                        "/v1/permissions/checkbulk",
                        Bytes::from(body),
                        Expect::Bulk(picked),
                    )
                }
            }
        } else if pick < mix.check + mix.lookup {
            let at = rng.random_range(0..plan.lookups.len());
            (
                Kind::Lookup,
                "/v1/permissions/resources",
                plan.lookup_bodies.get(at).cloned().unwrap_or_default(),
                Expect::Count(at),
            )
        } else {
            let object_id = format!("bench_w{index}_{}", writes % WRITE_OBJECTS_PER_WORKER);
            writes += 1;
            let body = json!({ "updates": [{
                "operation": "OPERATION_TOUCH",
                "relationship": {
                    "resource": { "objectType": "connection", "objectId": object_id },
                    "relation": "owner",
                    "subject": { "object": { "objectType": "user", "objectId": "bench_writer" } },
                },
            }]});
            (
                Kind::Write,
                "/v1/relationships/write",
                Bytes::from(body.to_string()),
                Expect::Written,
            )
        };
        let path = format!("{}{path}", plan.prefix);
        let start = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, send(&plan, sender, &path, body)).await;
        let latency = start.elapsed();
        plan.finished.fetch_add(1, Ordering::Relaxed);
        let (status, bytes) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                connection = None;
                plan.failed.fetch_add(1, Ordering::Relaxed);
                stats.error(kind.name(), error);
                continue;
            }
            Err(_) => {
                connection = None;
                plan.failed.fetch_add(1, Ordering::Relaxed);
                stats.error(kind.name(), format!("no answer within {REQUEST_TIMEOUT:?}"));
                continue;
            }
        };
        if status != StatusCode::OK {
            plan.failed.fetch_add(1, Ordering::Relaxed);
            let message = String::from_utf8_lossy(&bytes);
            stats.error(
                kind.name(),
                format!("http {}: {}", status.as_u16(), message.trim()),
            );
            continue;
        }
        stats.record(kind, latency);
        if let Expect::Bulk(expected) = &expect {
            stats.checks_answered += expected.len() as u64;
        } else if matches!(expect, Expect::Check(_)) {
            stats.checks_answered += 1;
        }
        if plan.settings.verify {
            verify(&plan, &mut stats, &expect, &path, &bytes);
        }
    }
    stats
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

async fn send(
    plan: &Plan,
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection lost: {e}"))?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, plan.host.clone())
        .header(AUTHORIZATION, plan.auth.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
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

fn allowed(permissionship: &str) -> Option<bool> {
    match permissionship {
        "PERMISSIONSHIP_HAS_PERMISSION" => Some(true),
        "PERMISSIONSHIP_NO_PERMISSION" => Some(false),
        _ => None,
    }
}

fn verify(plan: &Plan, stats: &mut WorkerStats, expect: &Expect, path: &str, bytes: &[u8]) {
    match expect {
        Expect::Check(at) => {
            stats.verified += 1;
            let Some(check) = plan.checks.get(*at) else {
                stats.wrong(format!("{path}: no check number {at} in the workload"));
                return;
            };
            match serde_json::from_slice::<CheckAnswer>(bytes) {
                Ok(answer) if allowed(&answer.permissionship) == Some(check.allowed) => {}
                Ok(answer) => stats.wrong(format!(
                    "check {}#{}@{}: expected {}, got {}",
                    check.resource,
                    check.permission,
                    check.subject,
                    check.allowed,
                    answer.permissionship
                )),
                Err(error) => stats.wrong(format!("{path}: unreadable answer: {error}")),
            }
        }
        Expect::Bulk(expected) => match serde_json::from_slice::<BulkAnswer>(bytes) {
            Ok(answer) if answer.pairs.len() == expected.len() => {
                for (pair, at) in answer.pairs.iter().zip(expected) {
                    stats.verified += 1;
                    let Some(check) = plan.checks.get(*at) else {
                        stats.wrong(format!("{path}: no check number {at} in the workload"));
                        continue;
                    };
                    let got = pair.item.as_ref().and_then(|a| allowed(&a.permissionship));
                    if got != Some(check.allowed) {
                        stats.wrong(format!(
                            "checkbulk item {}#{}@{}: expected {}, got {}",
                            check.resource,
                            check.permission,
                            check.subject,
                            check.allowed,
                            match (&pair.item, &pair.error) {
                                (Some(item), _) => item.permissionship.clone(),
                                (None, Some(error)) => format!("error {error}"),
                                (None, None) => "nothing".to_string(),
                            }
                        ));
                    }
                }
            }
            Ok(answer) => {
                stats.verified += expected.len() as u64;
                stats.wrong(format!(
                    "{path}: {} pairs for {} items",
                    answer.pairs.len(),
                    expected.len()
                ));
            }
            Err(error) => {
                stats.verified += expected.len() as u64;
                stats.wrong(format!("{path}: unreadable answer: {error}"));
            }
        },
        Expect::Count(at) => {
            stats.verified += 1;
            let Some(lookup) = plan.lookups.get(*at) else {
                stats.wrong(format!("{path}: no lookup number {at} in the workload"));
                return;
            };
            let text = String::from_utf8_lossy(bytes);
            let mut count = 0;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if line.starts_with(r#"{"error""#) {
                    stats.wrong(format!("{path}: error line {line}"));
                    return;
                }
                count += 1;
            }
            if count != lookup.count {
                stats.wrong(format!(
                    "lookup {} {} {}: expected {} resources, got {count}",
                    lookup.subject, lookup.resource_type, lookup.permission, lookup.count
                ));
            }
        }
        Expect::Written => {}
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
