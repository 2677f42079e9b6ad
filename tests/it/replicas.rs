//! Several `pemba serve` replicas (the built binary) on one throwaway PostgreSQL
//! (`tests/shared/postgres.rs`): start-up on a datastore, tokens across replicas (the
//! "new enemy" test), concurrent writers on two replicas, and Watch across replicas.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::process::{agent, binary, token_revision, ServeProcess, PROCESS_KEY};
use crate::support::{rel, split_check};

#[path = "../shared/postgres.rs"]
pub(crate) mod pg;

/// A password the test server ignores (it trusts every local connection) but that a
/// log line or message must never show.
const PASSWORD: &str = "s3cret-never-logged-81f2";

/// A fresh database on the shared server, its URL with [`PASSWORD`] in it.
fn database() -> String {
    let url = pg::fresh_database();
    url.replacen("://pemba@", &format!("://pemba:{PASSWORD}@"), 1)
}

/// `pemba ARGS`, its exit status and stderr.
fn pemba(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env_remove("PEMBA_DATASTORE")
        .output()
        .expect("run pemba");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrated() -> String {
    let url = database();
    let (ok, stdout, stderr) = pemba(&["migrate", "--datastore", &url]);
    assert!(ok, "migrate failed: {stderr}");
    assert_eq!(stdout.trim(), "migrated the database from version 0 to 1");
    url
}

/// A replica on `url`, its key dir in `dir`.
fn replica(dir: &Path, url: &str) -> ServeProcess {
    ServeProcess::spawn(dir, &[], &["--datastore", url])
}

/// `POST path body` to a replica: status and JSON answer.
fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut response = agent(Duration::from_secs(30))
        .post(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .header("Content-Type", "application/json")
        .send(&body.to_string())
        .expect("request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[track_caller]
fn ok(base: &str, path: &str, body: &Value) -> Value {
    let (status, answer) = post(base, path, body);
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

/// Writes `updates` (operation, relationship) on a replica; the token.
fn write(base: &str, updates: &[(&str, &str)]) -> String {
    let updates: Vec<Value> = updates
        .iter()
        .map(|(operation, tuple)| json!({ "operation": operation, "relationship": rel(tuple) }))
        .collect();
    let answer = ok(
        base,
        "/v1/relationships/write",
        &json!({ "updates": updates }),
    );
    answer["writtenAt"]["token"].as_str().unwrap().to_string()
}

/// A check at `consistency`; whether allowed.
fn check(base: &str, query: &str, consistency: &Value) -> bool {
    let (resource, permission, subject) = split_check(query);
    let answer = ok(
        base,
        "/v1/permissions/check",
        &json!({
            "consistency": consistency,
            "resource": resource,
            "permission": permission,
            "subject": subject,
        }),
    );
    answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"
}

fn at_least(token: &str) -> Value {
    json!({ "atLeastAsFresh": { "token": token } })
}

/// Every relationship a replica exports (`pemba export --endpoint`), one line each.
fn export(base: &str) -> BTreeSet<String> {
    export_at(base, None)
}

/// [`export`] at a consistency (`pb1.N` waits until the replica has applied revision N).
pub(crate) fn export_at(base: &str, consistency: Option<&str>) -> BTreeSet<String> {
    let mut args = vec!["export", "--endpoint", base, "--key", PROCESS_KEY];
    if let Some(consistency) = consistency {
        args.extend(["--consistency", consistency]);
    }
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run pemba export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn serve_on_an_unmigrated_datastore_exits_naming_pemba_migrate() {
    let url = database();
    let dir = tempfile::tempdir().unwrap();
    let failure = ServeProcess::try_spawn(dir.path(), &[], &["--datastore", &url])
        .err()
        .expect("serve started on an unmigrated database");
    assert!(
        failure.stderr.contains("pemba migrate --datastore"),
        "{}",
        failure.stderr
    );
    assert!(!failure.stderr.contains(PASSWORD), "{}", failure.stderr);
    assert!(failure.stderr.contains("pemba:***@"), "{}", failure.stderr);
    assert!(!failure.status.is_some_and(|s| s.success()));
}

#[test]
fn a_password_file_that_cannot_be_read_is_named_and_changes_nothing() {
    let url = pg::fresh_database();
    let (ok, _, stderr) = pemba(&[
        "migrate",
        "--datastore",
        &url,
        "--datastore-password-file",
        "/nonexistent/pemba-password",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read the password file `/nonexistent/pemba-password`"),
        "{stderr}"
    );
    // Options without a datastore are refused rather than ignored.
    let (ok, _, stderr) = pemba(&["export", "--datastore-statement-timeout", "2s"]);
    assert!(!ok);
    assert!(stderr.contains("needs `--datastore URL`"), "{stderr}");
}

#[test]
fn a_replica_on_a_fresh_datastore_serves_the_user_groups_schema_and_never_shows_the_password() {
    let url = migrated();
    let dir = tempfile::tempdir().unwrap();
    let mut a = replica(dir.path(), &url);
    let health = a.wait_healthy(Duration::from_secs(10)).expect("healthy");
    assert_eq!(health["status"], "ok");
    let schema = ok(&a.base, "/v1/schema/read", &json!({}));
    assert!(
        schema["schemaText"]
            .as_str()
            .is_some_and(|text| text.contains("definition workspace")),
        "{schema}"
    );
    // The user-groups routes work on it: create a workspace as its first admin.
    let (status, answer) = {
        let mut response = agent(Duration::from_secs(10))
            .put(&format!("{}/v1/workspaces/acme", a.base))
            .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
            .header("Pemba-Actor", "alice")
            .header("Content-Type", "application/json")
            .send(r#"{"admin": "alice"}"#)
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    assert!(status < 300, "{status} {answer}");
    // A second replica started on the same datastore does not write the schema again.
    let b = replica(tempfile::tempdir().unwrap().path(), &url);
    let before = token_revision(
        ok(&b.base, "/v1/schema/read", &json!({}))["readAt"]["token"]
            .as_str()
            .unwrap(),
    );
    assert!(check(
        &b.base,
        "workspace:acme#manage_groups@user:alice",
        &json!({ "fullyConsistent": true })
    ));
    let log = [a.kill(), b.kill()].concat().join("\n");
    assert!(!log.contains(PASSWORD), "{log}");
    assert!(log.contains("pemba:***@"), "{log}");
    assert!(before >= 1);
}

#[test]
fn an_old_store_on_a_datastore_gets_its_resource_ids_scoped_when_a_replica_opens_it() {
    use pemba_engine::{Engine, MetadataWrite, PostgresStore, Transaction, Tuple, Update};
    let url = migrated();
    {
        let engine = Engine::with_store(Box::new(PostgresStore::connect(&url).unwrap())).unwrap();
        engine.write_schema(pemba_server::DEFAULT_SCHEMA).unwrap();
        let tuples = [
            "workspace:acme#admin@user:alice",
            "workspace:acme#viewer@user:carol",
            "connection:warehouse#workspace@workspace:acme",
            "connection:warehouse#owner@user:alice",
            "connection:warehouse#grantee@user:carol",
        ];
        engine
            .transact(Transaction {
                updates: tuples
                    .iter()
                    .map(|t| Update::touch(Tuple::parse(t).unwrap()))
                    .collect(),
                metadata: vec![MetadataWrite {
                    key: "groups/workspace/acme".to_string(),
                    value: Some("{}".to_string()),
                }],
                ..Transaction::default()
            })
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), &url);
    let stored = export(&a.base);
    assert!(
        stored.contains("connection:acme/warehouse#owner@user:alice"),
        "{stored:?}"
    );
    assert!(
        !stored
            .iter()
            .any(|t| t.starts_with("connection:warehouse#")),
        "{stored:?}"
    );
    assert!(check(
        &a.base,
        "connection:acme/warehouse#use@user:carol",
        &json!({ "fullyConsistent": true })
    ));
}

#[test]
fn a_revocation_on_replica_a_is_seen_on_replica_b_with_as_token_every_round() {
    let url = migrated();
    let a = replica(tempfile::tempdir().unwrap().path(), &url);
    let b = replica(tempfile::tempdir().unwrap().path(), &url);
    // B's index is only as fresh as its last poll; the token must make it wait for A's
    // write, never answer from before it.
    for round in 0..50 {
        let grant = format!("workspace:w{round}#viewer@user:eve");
        let query = format!("workspace:w{round}#view_members@user:eve");
        let granted = write(&a.base, &[("OPERATION_TOUCH", &grant)]);
        assert!(
            check(&b.base, &query, &at_least(&granted)),
            "round {round}: B did not see A's grant at {granted}"
        );
        let revoked = write(&a.base, &[("OPERATION_DELETE", &grant)]);
        assert!(
            !check(&b.base, &query, &at_least(&revoked)),
            "round {round}: B answered from before A's revocation at {revoked}"
        );
    }
    // A token no replica has handed out is refused at once, never answered stale.
    let (status, answer) = post(
        &b.base,
        "/v1/permissions/check",
        &json!({
            "consistency": at_least("pb1.999999"),
            "resource": { "objectType": "workspace", "objectId": "w0" },
            "permission": "view_members",
            "subject": { "object": { "objectType": "user", "objectId": "eve" } },
        }),
    );
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn two_replicas_writing_at_once_lose_nothing_and_end_identical() {
    let url = migrated();
    let a = replica(tempfile::tempdir().unwrap().path(), &url);
    let b = replica(tempfile::tempdir().unwrap().path(), &url);
    let bases = [a.base.clone(), b.base.clone()];
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let base = bases[w % 2].clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let tuple = format!("workspace:w{w}#viewer@user:u{i}");
                        let token = write(&base, &[("OPERATION_CREATE", &tuple)]);
                        (tuple, token_revision(&token))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acknowledged: Vec<(String, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let revisions: BTreeSet<u64> = acknowledged.iter().map(|(_, r)| *r).collect();
    assert_eq!(
        revisions.len(),
        acknowledged.len(),
        "a revision was handed out twice"
    );
    // Each writer's own revisions increase.
    for w in 0..8 {
        let own: Vec<u64> = acknowledged
            .iter()
            .filter(|(t, _)| t.starts_with(&format!("workspace:w{w}#")))
            .map(|(_, r)| *r)
            .collect();
        assert!(own.windows(2).all(|p| p[0] < p[1]), "writer {w}: {own:?}");
    }
    let newest = revisions.iter().max().copied().unwrap();
    let token = format!("pb1.{newest}");
    for base in &bases {
        assert!(check(
            base,
            "workspace:w0#view_members@user:u0",
            &at_least(&token)
        ));
    }
    let (on_a, on_b) = (export(&a.base), export(&b.base));
    assert_eq!(on_a, on_b, "the replicas disagree");
    for (tuple, _) in &acknowledged {
        assert!(on_a.contains(tuple), "acknowledged `{tuple}` is missing");
    }
}

#[test]
fn watch_on_replica_b_streams_replica_as_writes_in_revision_order() {
    let url = migrated();
    let a = replica(tempfile::tempdir().unwrap().path(), &url);
    let b = replica(tempfile::tempdir().unwrap().path(), &url);
    let response = agent(Duration::from_secs(60))
        .post(&format!("{}/v1/watch", b.base))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .send(&json!({ "optionalObjectTypes": ["workspace"] }).to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut written = Vec::new();
    for i in 0..20 {
        let tuple = format!("workspace:watched#viewer@user:u{i}");
        let token = write(&a.base, &[("OPERATION_TOUCH", &tuple)]);
        written.push((token_revision(&token), tuple));
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let line = received
            .recv_timeout(Duration::from_secs(20))
            .expect("replica B's watch stopped short of A's writes");
        let value: Value = serde_json::from_str(&line).unwrap();
        let result = &value["result"];
        let Some(through) = result["changesThrough"]["token"].as_str() else {
            panic!("not a watch result: {line}");
        };
        let revision = token_revision(through);
        for update in result["updates"].as_array().unwrap() {
            let r = &update["relationship"];
            let tuple = format!(
                "{}:{}#{}@{}:{}",
                r["resource"]["objectType"].as_str().unwrap(),
                r["resource"]["objectId"].as_str().unwrap(),
                r["relation"].as_str().unwrap(),
                r["subject"]["object"]["objectType"].as_str().unwrap(),
                r["subject"]["object"]["objectId"].as_str().unwrap(),
            );
            seen.push((revision, tuple));
        }
    }
    assert_eq!(seen, written);
    // A cursor A handed out resumes on B, even before B's tailer has applied it.
    let last = write(
        &a.base,
        &[("OPERATION_TOUCH", "workspace:watched#admin@user:ann")],
    );
    let (status, _) = {
        let response = agent(Duration::from_secs(10))
            .post(&format!("{}/v1/watch", b.base))
            .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
            .send(&json!({ "optionalStartCursor": { "token": last } }).to_string())
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 200);
}

#[test]
fn the_command_line_works_on_a_datastore_and_an_import_reaches_every_replica_through_the_log() {
    use pemba_engine::{Engine, PostgresStore, Revision};
    let url = migrated();
    let b = replica(tempfile::tempdir().unwrap().path(), &url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuples.txt");
    // Large enough for one batch to go through COPY.
    let tuples: Vec<String> = (0..2500)
        .map(|i| format!("workspace:w{}#viewer@user:u{i}", i % 7))
        .collect();
    std::fs::write(&file, tuples.join("\n")).unwrap();
    let (ok, _, stderr) = pemba(&["import", file.to_str().unwrap(), "--datastore", &url]);
    assert!(ok, "{stderr}");
    let token = stderr
        .rsplit("revision token ")
        .next()
        .map(str::trim)
        .filter(|t| t.starts_with("pb1."))
        .unwrap_or_else(|| panic!("no token in {stderr}"))
        .to_string();
    // The replica serving beside the import sees it at the import's token.
    assert!(check(
        &b.base,
        "workspace:w0#view_members@user:u2499",
        &at_least(&token)
    ));
    // Every imported relationship is in the change log, which watchers and replicas read.
    let engine = Engine::with_store(Box::new(PostgresStore::connect(&url).unwrap())).unwrap();
    let logged: BTreeSet<String> = engine
        .changes_after(Revision(0), 100_000)
        .unwrap()
        .iter()
        .flat_map(|set| set.changes.iter().map(|c| c.tuple.to_string()))
        .collect();
    let expected: BTreeSet<String> = tuples.iter().cloned().collect();
    assert_eq!(logged, expected);
    // The zed-like commands take `--datastore` as they take `--data-dir`.
    let (ok, stdout, stderr) = pemba(&[
        "check",
        "--datastore",
        &url,
        "workspace:w0#view_members@user:u7",
    ]);
    assert_eq!((ok, stdout.trim()), (true, "true"), "{stderr}");
    let (_, stdout, stderr) = pemba(&[
        "lookup",
        "--datastore",
        &url,
        "resources",
        "workspace",
        "view_members",
        "user:u14",
    ]);
    assert_eq!(stdout, "w0\n", "{stderr}");
    let (ok, stdout, stderr) = pemba(&["export", "--datastore", &url]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.lines().map(str::to_string).collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(export(&b.base), expected);
    // Two places to work on are refused.
    let (ok, _, stderr) = pemba(&["export", "--datastore", &url, "--data-dir", "x"]);
    assert!(!ok);
    assert!(stderr.contains("name two places"), "{stderr}");
}

#[test]
fn healthz_and_metrics_on_a_replica_report_the_datastore() {
    let url = migrated();
    let mut a = replica(tempfile::tempdir().unwrap().path(), &url);
    let health = a.wait_healthy(Duration::from_secs(10)).expect("healthy");
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["datastore"],
        json!({ "kind": "postgres", "reachable": true }),
        "{health}"
    );
    let public: Value = serde_json::from_str(
        &agent(Duration::from_secs(10))
            .get(&format!("{}/healthz", a.base))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(public, json!({ "status": "ok" }));
    let text = agent(Duration::from_secs(10))
        .get(&format!("{}/metrics", a.base))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for line in [
        "pemba_replication_lag_revisions 0",
        "pemba_datastore_up 1",
        "# TYPE pemba_datastore_round_trip_seconds histogram",
        "# TYPE pemba_replication_lag_seconds gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
}
