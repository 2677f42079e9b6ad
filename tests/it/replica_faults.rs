//! Faults of replicas on PostgreSQL, each on a PostgreSQL server of its own
//! (`tests/shared/postgres.rs`, [`pg::Server`]) since they stop it or lose a replica:
//! the datastore dying mid-load, and a replica SIGKILLed under write load, audited with
//! the redb crash test's checker (`crash::audit`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::crash::{audit, writer, Figures, ImportLog, Rng, Shared, WriterLog};
use crate::process::{agent, binary, token_revision, ServeProcess, PROCESS_KEY};
use crate::replicas::{export_at, pg};
use crate::support::{rel, split_check, SCHEMA};

/// How long a client waits for any one answer: a request that takes longer hangs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// `pemba migrate` on `url`.
fn migrate(url: &str) {
    let out = std::process::Command::new(binary())
        .args(["migrate", "--datastore", url])
        .output()
        .expect("run pemba migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn replica(url: &str, dir: &std::path::Path) -> ServeProcess {
    ServeProcess::spawn(
        dir,
        &[],
        &["--datastore", url, "--datastore-statement-timeout", "5s"],
    )
}

/// `POST`: status and body, or `None` when no answer came within [`CLIENT_TIMEOUT`].
fn post(base: &str, path: &str, body: &Value) -> Option<(u16, Value)> {
    let mut response = agent(CLIENT_TIMEOUT)
        .post(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .send(&body.to_string())
        .ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn write_body(tuple: &str) -> Value {
    json!({ "updates": [{ "operation": "OPERATION_TOUCH", "relationship": rel(tuple) }] })
}

fn check_body(query: &str, consistency: Value) -> Value {
    let (resource, permission, subject) = split_check(query);
    json!({ "consistency": consistency, "resource": resource, "permission": permission, "subject": subject })
}

#[test]
fn the_datastore_stopping_mid_load_fails_writes_fast_keeps_reads_and_recovers_without_restart() {
    let server = pg::Server::start();
    let url = server.url();
    migrate(&url);
    let a = replica(&url, tempfile::tempdir().unwrap().path());
    let b = replica(&url, tempfile::tempdir().unwrap().path());
    let (status, _) = post(
        &a.base,
        "/v1/relationships/write",
        &write_body("workspace:acme#viewer@user:ann"),
    )
    .unwrap();
    assert_eq!(status, 200);
    let granted = post(
        &b.base,
        "/v1/permissions/check",
        &check_body(
            "workspace:acme#view_members@user:ann",
            json!({ "fullyConsistent": true }),
        ),
    )
    .unwrap();
    assert_eq!(granted.1["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");

    // Load on both replicas while the datastore dies: writes on A, minimizeLatency
    // checks on B, each answer recorded.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = |base: String, reads: bool| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answers: Vec<(String, Option<u16>)> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let tuple = format!("workspace:load#viewer@user:u{i}");
                let answer = if reads {
                    post(
                        &base,
                        "/v1/permissions/check",
                        &check_body(
                            "workspace:acme#view_members@user:ann",
                            json!({ "minimizeLatency": true }),
                        ),
                    )
                    .map(|(status, body)| {
                        assert_eq!(status, 200, "{body}");
                        assert_eq!(body["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
                        status
                    })
                } else {
                    post(&base, "/v1/relationships/write", &write_body(&tuple))
                        .map(|(status, _)| status)
                };
                answers.push((tuple, answer));
            }
            answers
        })
    };
    let writes = load(a.base.clone(), false);
    let reads = load(b.base.clone(), true);
    std::thread::sleep(Duration::from_millis(300));
    server.stop_immediately();
    // Long enough for every in-flight request to end one way or the other.
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::SeqCst);
    let writes = writes.join().unwrap();
    let reads = reads.join().unwrap();
    assert!(
        writes.iter().all(|(_, s)| s.is_some()),
        "a write got no answer within {CLIENT_TIMEOUT:?}"
    );
    assert!(
        reads.iter().all(|(_, s)| s.is_some()),
        "a read got no answer within {CLIENT_TIMEOUT:?}"
    );
    assert!(
        writes
            .iter()
            .all(|(_, s)| *s == Some(200) || *s == Some(503)),
        "a write answered neither 200 nor 503: {writes:?}"
    );
    assert!(
        writes.iter().any(|(_, s)| *s == Some(503)),
        "no write failed while the datastore was down"
    );
    // While it is down: a write is refused with 503, a read at minimizeLatency answers,
    // and a fully consistent read cannot be served fresh, so it says 503 rather than
    // answer stale.
    let (status, body) = post(
        &a.base,
        "/v1/relationships/write",
        &write_body("workspace:acme#viewer@user:bob"),
    )
    .unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "{body}");
    let (status, _) = post(
        &b.base,
        "/v1/permissions/check",
        &check_body(
            "workspace:acme#view_members@user:ann",
            json!({ "minimizeLatency": true }),
        ),
    )
    .unwrap();
    assert_eq!(status, 200);
    let (status, body) = post(
        &b.base,
        "/v1/permissions/check",
        &check_body(
            "workspace:acme#view_members@user:ann",
            json!({ "fullyConsistent": true }),
        ),
    )
    .unwrap();
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(
        &agent(CLIENT_TIMEOUT)
            .get(&format!("{}/healthz", b.base))
            .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["datastore"]["reachable"], false, "{health}");

    // Back: writes succeed again on the same processes, and B catches up with A.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        let (status, body) = post(
            &a.base,
            "/v1/relationships/write",
            &write_body("workspace:acme#viewer@user:carol"),
        )
        .unwrap();
        if status == 200 {
            break body["writtenAt"]["token"].as_str().unwrap().to_string();
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "writes did not come back: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, body) = post(
        &b.base,
        "/v1/permissions/check",
        &check_body(
            "workspace:acme#view_members@user:carol",
            json!({ "atLeastAsFresh": { "token": token } }),
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
    // Every write acknowledged during the load is there, on both replicas.
    let stored = |base: &str| export_at(base, Some(&token));
    let (on_a, on_b) = (stored(&a.base), stored(&b.base));
    assert_eq!(
        on_a, on_b,
        "the replicas disagree after the datastore came back"
    );
    let acked: Vec<&String> = writes
        .iter()
        .filter(|(_, status)| *status == Some(200))
        .map(|(tuple, _)| tuple)
        .collect();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the datastore stopped"
    );
    for tuple in acked {
        assert!(on_a.contains(tuple), "acknowledged `{tuple}` is missing");
    }
}

#[test]
fn a_replica_sigkilled_under_write_load_comes_back_and_nothing_acknowledged_is_lost() {
    let server = pg::Server::start();
    let url = server.url();
    migrate(&url);
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = replica(&url, dir_a.path());
    let b = replica(&url, tempfile::tempdir().unwrap().path());
    let (status, body) = post(&a.base, "/v1/schema/write", &json!({ "schema": SCHEMA })).unwrap();
    assert_eq!(status, 200, "{body}");
    // B validates writes against the schema it has applied: let it reach A's schema.
    let (status, answer) = post(
        &b.base,
        "/v1/schema/read",
        &json!({ "consistency": { "atLeastAsFresh": body["writtenAt"] } }),
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    let seed = 0x5eed_0014;
    let mut rng = Rng::new(seed);
    let on_a = Arc::new(Shared::new(&a.base));
    let on_b = Arc::new(Shared::new(&b.base));
    let writers: Vec<_> = (0..4)
        .map(|thread| {
            let shared = if thread % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            std::thread::spawn(move || writer(&shared, thread, seed + thread as u64))
        })
        .collect();
    let mut generation = 1;
    for kill in 0..5 {
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        on_a.live.write().unwrap().1 = None;
        let acked_on_b = on_b.max_acked.load(Ordering::SeqCst);
        a.kill();
        // The other replica carries on while A is gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        while on_b.max_acked.load(Ordering::SeqCst) == acked_on_b {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: B stopped writing without A"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // What was acknowledged before A starts again, which A must then hold.
        let acked = on_a
            .max_acked
            .load(Ordering::SeqCst)
            .max(on_b.max_acked.load(Ordering::SeqCst));
        a = replica(&url, dir_a.path());
        let health = a
            .wait_healthy(Duration::from_secs(60))
            .expect("A came back");
        let revision = token_revision(health["revision"].as_str().unwrap());
        assert!(
            revision >= acked,
            "kill {kill}: A restarted at {revision}, {acked} was acknowledged"
        );
        generation += 1;
        *on_a.live.write().unwrap() = (generation, Some(a.base.clone()));
    }
    std::thread::sleep(Duration::from_millis(200));
    on_a.stop.store(true, Ordering::SeqCst);
    on_b.stop.store(true, Ordering::SeqCst);
    let logs: Vec<WriterLog> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for shared in [&on_a, &on_b] {
        let failures = shared.failures.lock().unwrap().clone();
        assert!(failures.is_empty(), "{failures:#?}");
    }
    let max_acked = on_a
        .max_acked
        .load(Ordering::SeqCst)
        .max(on_b.max_acked.load(Ordering::SeqCst));
    // Both replicas end with the same relationships.
    let consistency = format!("pb1.{max_acked}");
    let export = |base: &str| export_at(base, Some(&consistency));
    assert_eq!(export(&a.base), export(&b.base), "the replicas disagree");
    let engine = pemba_engine::Engine::with_store(Box::new(
        pemba_engine::PostgresStore::connect(&url).unwrap(),
    ))
    .unwrap();
    let mut figures = Figures::default();
    audit(
        &engine,
        max_acked,
        &logs,
        &ImportLog::default(),
        seed,
        &mut figures,
    );
    assert!(
        figures.acked_writes > 0 && figures.refused_writes > 0,
        "{figures:?}"
    );
    eprintln!("replica kill test: {figures:#?}");
}
