//! `pemba bench` against a real server on loopback ports, loaded with the xs workload over
//! HTTP and over gRPC: every answer is verified against the workload's expected ones, and
//! wrong answers and refusals are counted on both. No timing is asserted.

use std::time::Duration;

use pemba::bench::{run, Mix, Protocol, Settings};
use pemba::workload::{generate, write_files, Size};

use crate::support::{xs_workload_server, TestServer, KEY};

const PROTOCOLS: [Protocol; 2] = [Protocol::Http, Protocol::Grpc];

/// The server's listener for `protocol`, as `pemba serve` prints it.
fn endpoint(server: &TestServer, protocol: Protocol) -> String {
    match protocol {
        Protocol::Http => server.base.clone(),
        Protocol::Grpc => server.grpc.replace("http://", "grpc://"),
    }
}

/// Runs the load generator for at most a second and `max_requests`, and asserts that no
/// request failed and no answer was wrong.
#[track_caller]
fn check(
    server: &TestServer,
    protocol: Protocol,
    workload: &std::path::Path,
    mix: &str,
    bulk: Option<usize>,
) {
    let settings = Settings {
        endpoint: endpoint(server, protocol),
        protocol,
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
    assert_eq!(report.protocol, protocol, "{text}");
    assert_eq!(report.error_count(), 0, "{text}");
    assert_eq!(report.wrong, 0, "{text}");
    assert!(report.verified > 0, "{text}");
    assert!(!report.failed(), "{text}");
}

#[test]
fn bench_verifies_every_answer_on_the_xs_workload() {
    let (dir, server) = xs_workload_server();

    // Writes touch bench-only objects, so checks and lookups keep their expected answers.
    for protocol in PROTOCOLS {
        check(
            &server,
            protocol,
            dir.path(),
            "check=80,lookup=10,write=10",
            None,
        );
        check(&server, protocol, dir.path(), "check=1", Some(50));
    }
}

#[test]
fn bench_grpc_spreads_workers_over_the_connections_asked() {
    let (dir, server) = xs_workload_server();
    // One connection for all (as one SpiceDB client channel), one per worker, and the
    // largest bulk size (its items wrap around the workload's end).
    for (connections, mix, bulk) in [
        (1, "check=1", None),
        (8, "check=90,lookup=5,write=5", None),
        (1, "check=1", Some(1000)),
    ] {
        let settings = Settings {
            endpoint: endpoint(&server, Protocol::Grpc),
            protocol: Protocol::Grpc,
            key: KEY.to_string(),
            max_requests: Some(500),
            concurrency: 8,
            connections: Some(connections),
            mix: Mix::parse(mix).unwrap(),
            bulk,
            verify: true,
            ..Settings::new(dir.path())
        };
        let report = run(&settings).unwrap();
        let text = report.render();
        assert_eq!(report.error_count(), 0, "{connections} {mix}: {text}");
        assert_eq!(report.wrong, 0, "{connections} {mix}: {text}");
        assert!(report.verified > 0, "{text}");
    }
    // Over HTTP/1.1 every worker has its own connection; and there is no zeroth one.
    for (protocol, connections, expected) in [
        (Protocol::Http, 2, "is for HTTP/2"),
        (Protocol::Grpc, 0, "between 1 and"),
        (Protocol::Grpc, 9, "between 1 and"),
    ] {
        let settings = Settings {
            endpoint: endpoint(&server, protocol),
            protocol,
            concurrency: 8,
            connections: Some(connections),
            ..Settings::new(dir.path())
        };
        let error = run(&settings).map(|r| r.render()).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{protocol} {connections}: {error}"
        );
    }
}

#[test]
fn bench_counts_wrong_answers_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&generate(Size::Xs, 1, |_| {}), 1, dir.path()).unwrap();
    // Nothing imported: every check that expects `true` is answered `false`, and every
    // lookup that expects resources finds none.
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        for (mix, bulk) in [("check=1", None), ("check=1", Some(20)), ("lookup=1", None)] {
            let settings = Settings {
                endpoint: endpoint(&server, protocol),
                protocol,
                key: KEY.to_string(),
                max_requests: Some(200),
                concurrency: 2,
                mix: Mix::parse(mix).unwrap(),
                bulk,
                verify: true,
                ..Settings::new(dir.path())
            };
            let report = run(&settings).unwrap();
            let text = report.render();
            assert_eq!(report.error_count(), 0, "{protocol} {mix} {bulk:?}: {text}");
            assert!(report.wrong > 0, "{protocol} {mix} {bulk:?}: {text}");
            assert!(!report.wrong_examples.is_empty(), "{text}");
            assert!(report.failed(), "{text}");
        }

        let settings = Settings {
            endpoint: endpoint(&server, protocol),
            protocol,
            key: "wrong-key".to_string(),
            max_requests: Some(200),
            concurrency: 2,
            verify: true,
            ..Settings::new(dir.path())
        };
        let report = run(&settings).unwrap();
        let refused = match protocol {
            Protocol::Http => "check: http 401",
            // SpiceDB answers a wrong preshared key with PERMISSION_DENIED.
            Protocol::Grpc => "check: grpc PermissionDenied",
        };
        assert_eq!(report.requests(), 0, "{}", report.render());
        assert!(
            report.errors.keys().any(|class| class == refused),
            "{}",
            report.render()
        );
    }
}

#[test]
fn bench_refuses_a_grpc_endpoint_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&generate(Size::Xs, 1, |_| {}), 1, dir.path()).unwrap();
    for (endpoint, expected) in [
        ("https://127.0.0.1:50051", "only `grpc://HOST:PORT`"),
        ("grpc://127.0.0.1:50051/prefix", "has a path"),
        ("grpc://127.0.0.1", "has no port"),
        ("grpc://192.0.2.1:50051", "not a loopback address"),
    ] {
        let settings = Settings {
            endpoint: endpoint.to_string(),
            protocol: Protocol::Grpc,
            ..Settings::new(dir.path())
        };
        let error = run(&settings).map(|r| r.render()).unwrap_err().to_string();
        assert!(error.contains(expected), "{endpoint}: {error}");
    }
}
