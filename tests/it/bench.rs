//! `pemba bench` against a real server on a loopback port, loaded with the xs workload:
//! every answer is verified against the workload's expected ones. No timing is asserted.

use std::time::Duration;

use pemba::bench::{run, Mix, Settings};
use pemba::workload::{generate, write_files, Size};
use serde_json::{json, Value};

use crate::support::{rel, TestServer, KEY};

/// Runs the load generator for at most a second and `max_requests`, and asserts that no
/// request failed and no answer was wrong.
#[track_caller]
fn check(server: &TestServer, workload: &std::path::Path, mix: &str, bulk: Option<usize>) {
    let settings = Settings {
        endpoint: server.base.clone(),
        key: KEY.to_string(),
        duration: Duration::from_secs(1),
        max_requests: Some(5_000),
        concurrency: 8,
        mix: Mix::parse(mix).unwrap(),
        bulk,
        verify: true,
        ..Settings::new(workload)
    };
    let report = run(&settings).unwrap();
    let text = report.render();
    assert_eq!(report.error_count(), 0, "{text}");
    assert_eq!(report.wrong, 0, "{text}");
    assert!(report.verified > 0, "{text}");
    assert!(!report.failed(), "{text}");
}

#[test]
fn bench_verifies_every_answer_on_the_xs_workload() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&generate(Size::Xs, 1, |_| {}), 1, dir.path()).unwrap();
    // A fresh store has the user-groups schema the workload is written for.
    let server = TestServer::start();
    let tuples = std::fs::read_to_string(dir.path().join("tuples.txt")).unwrap();
    let relationships: Vec<Value> = tuples.lines().map(rel).collect();
    server.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );

    // Writes touch bench-only objects, so checks and lookups keep their expected answers.
    check(&server, dir.path(), "check=80,lookup=10,write=10", None);
    check(&server, dir.path(), "check=1", Some(50));
}

#[test]
fn bench_counts_wrong_answers_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&generate(Size::Xs, 1, |_| {}), 1, dir.path()).unwrap();
    // Nothing imported: every check that expects `true` is answered `false`.
    let server = TestServer::start();
    let settings = Settings {
        endpoint: server.base.clone(),
        key: KEY.to_string(),
        max_requests: Some(200),
        concurrency: 2,
        verify: true,
        ..Settings::new(dir.path())
    };
    let report = run(&settings).unwrap();
    assert!(report.wrong > 0, "{}", report.render());
    assert!(report.failed());

    let settings = Settings {
        key: "wrong-key".to_string(),
        ..settings
    };
    let report = run(&settings).unwrap();
    assert_eq!(report.requests(), 0, "{}", report.render());
    assert!(
        report.errors.keys().any(|class| class == "check: http 401"),
        "{}",
        report.render()
    );
}
