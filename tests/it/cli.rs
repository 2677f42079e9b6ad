//! The `pemba` binary's import, export, check and lookup, on a data directory and through a
//! running server.

use std::process::{Command, Output};

use std::time::Duration;

use pemba_server::Limits;
use serde_json::json;

use crate::support::{rel, TestServer, KEY};

/// Runs `pemba` in an empty directory of its own: with `--endpoint` and no key the CLI
/// falls back to `./pemba-data/api-key`, so a checkout where the README's `serve` ran
/// would otherwise lend its key to tests that expect none.
fn pemba(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    pemba_in(cwd.path(), args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

const GOOD: &str = "// the acme workspace
workspace:acme#admin@user:alice
workspace:acme#viewer@user:bob
group:eng#workspace@workspace:acme
group:eng#member@user:bob
connection:sf#workspace@workspace:acme
connection:sf#grantee@group:eng#member
";

#[test]
fn import_validates_everything_first_then_check_lookup_and_export_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let file = dir.path().join("tuples.txt");
    let bad = format!("{GOOD}connection:sf#use@user:bob\nnot a tuple\n");
    std::fs::write(&file, &bad).unwrap();
    let file = file.to_str().unwrap();

    let output = pemba(&["import", file, "--data-dir", data]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = stderr(&output);
    assert!(errors.contains("tuples.txt:8:"), "{errors}");
    assert!(errors.contains("tuples.txt:9:"), "{errors}");
    assert!(errors.contains("nothing was imported"), "{errors}");
    let output = pemba(&["export", "--data-dir", data]);
    assert_eq!(stdout(&output), "", "nothing was written");

    let output = pemba(&["import", file, "--data-dir", data, "--skip-invalid"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("imported 6 relationships"),
        "{}",
        stderr(&output)
    );

    let output = pemba(&["check", "connection:sf#use@user:bob", "--data-dir", data]);
    assert_eq!(
        (output.status.code(), stdout(&output).trim()),
        (Some(0), "true")
    );
    let output = pemba(&["check", "connection:sf#manage@user:bob", "--data-dir", data]);
    assert_eq!(
        (output.status.code(), stdout(&output).trim()),
        (Some(1), "false")
    );

    let output = pemba(&[
        "lookup",
        "--data-dir",
        data,
        "resources",
        "connection",
        "use",
        "user:bob",
    ]);
    assert_eq!(stdout(&output), "sf\n", "{}", stderr(&output));
    let output = pemba(&[
        "lookup",
        "--data-dir",
        data,
        "subjects",
        "connection:sf",
        "use",
        "user",
    ]);
    assert_eq!(stdout(&output), "alice\nbob\n", "{}", stderr(&output));

    let output = pemba(&["export", "--data-dir", data]);
    let mut exported: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    let mut expected: Vec<String> = GOOD
        .lines()
        .filter(|l| !l.starts_with("//"))
        .map(str::to_string)
        .collect();
    exported.sort();
    expected.sort();
    assert_eq!(exported, expected);

    let output = pemba(&["export", "--data-dir", data, "--format", "jsonl"]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    assert!(first["resource"]["objectType"].is_string(), "{first}");
}

#[test]
fn import_and_check_through_a_server() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuples.jsonl");
    let lines: Vec<String> = GOOD
        .lines()
        .filter(|l| !l.starts_with("//"))
        .map(|l| crate::support::rel(l).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_str().unwrap();
    let endpoint = server.base.as_str();

    let output = pemba(&["import", file, "--endpoint", endpoint]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("needs a key"),
        "{}",
        stderr(&output)
    );

    let output = pemba(&["import", file, "--endpoint", endpoint, "--key", KEY]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server.check("connection:sf#use@user:bob"));

    let output = pemba(&[
        "check",
        "connection:sf#use@user:bob",
        "--endpoint",
        endpoint,
        "--key",
        KEY,
    ]);
    assert_eq!(
        (output.status.code(), stdout(&output).trim()),
        (Some(0), "true")
    );
    let output = pemba(&[
        "lookup",
        "--endpoint",
        endpoint,
        "--key",
        KEY,
        "subjects",
        "connection:sf",
        "use",
        "user",
    ]);
    assert_eq!(stdout(&output), "alice\nbob\n", "{}", stderr(&output));
    let output = pemba(&["export", "--endpoint", endpoint, "--key", KEY]);
    assert_eq!(stdout(&output).lines().count(), 6, "{}", stderr(&output));
    let output = pemba(&[
        "check",
        "connection:sf#use@user:bob",
        "--endpoint",
        endpoint,
        "--key",
        "wrong",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid API key"),
        "{}",
        stderr(&output)
    );
}

fn pemba_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pemba"))
        .args(args)
        .current_dir(dir)
        .env_remove("PEMBA_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Issue 16: `--endpoint`, `--key` and `--data-dir` go anywhere, and with `--endpoint`
/// but no key the key a local server generated in `./pemba-data/api-key` is used.
#[test]
fn issue_16_connection_flags_go_anywhere_and_the_key_falls_back_to_pemba_data() {
    let server = TestServer::start();
    let endpoint = server.base.as_str();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuples.txt");
    std::fs::write(&file, GOOD).unwrap();
    let file = file.to_str().unwrap();
    let output = pemba(&["--endpoint", endpoint, "import", file, "--key", KEY]);
    assert!(output.status.success(), "{}", stderr(&output));
    let after = pemba(&[
        "lookup",
        "resources",
        "connection",
        "use",
        "user:bob",
        "--endpoint",
        endpoint,
        "--key",
        KEY,
    ]);
    assert_eq!(stdout(&after), "sf\n", "{}", stderr(&after));
    let before = pemba(&[
        "--key",
        KEY,
        "--endpoint",
        endpoint,
        "check",
        "connection:sf#use@user:bob",
    ]);
    assert_eq!(stdout(&before), "true\n", "{}", stderr(&before));

    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let output = pemba(&["--data-dir", data, "import", file]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = pemba(&[
        "lookup",
        "subjects",
        "connection:sf",
        "use",
        "user",
        "--data-dir",
        data,
    ]);
    assert_eq!(stdout(&output), "alice\nbob\n", "{}", stderr(&output));

    // No key given: ./pemba-data/api-key, where `pemba serve` generates one.
    let cwd = tempfile::tempdir().unwrap();
    let output = pemba_in(
        cwd.path(),
        &[
            "check",
            "connection:sf#use@user:bob",
            "--endpoint",
            endpoint,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("pemba-data/api-key"),
        "{}",
        stderr(&output)
    );
    std::fs::create_dir(cwd.path().join("pemba-data")).unwrap();
    std::fs::write(cwd.path().join("pemba-data/api-key"), format!("{KEY}\n")).unwrap();
    let output = pemba_in(
        cwd.path(),
        &[
            "check",
            "connection:sf#use@user:bob",
            "--endpoint",
            endpoint,
        ],
    );
    assert_eq!(stdout(&output), "true\n", "{}", stderr(&output));
    let help = pemba(&["check", "--help"]);
    assert!(
        stdout(&help).contains("./pemba-data/api-key"),
        "{}",
        stdout(&help)
    );
}

/// Issue 16: a second `pemba serve` on a held store says who holds it and never claims to
/// serve; a CLI command on it says the same.
#[test]
fn issue_16_serve_on_a_held_store_names_the_holder_and_never_claims_to_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = crate::process::ServeProcess::spawn(&data, &[], &[]);
    first
        .wait_healthy(std::time::Duration::from_secs(30))
        .unwrap();
    let holder = format!("another process (pid {}) holds it", first.pid());
    let second = Command::new(env!("CARGO_BIN_EXE_pemba"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("PEMBA_KEY", crate::process::PROCESS_KEY)
        .output()
        .unwrap();
    let errors = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{errors}");
    assert!(!errors.contains("pemba serving"), "{errors}");
    assert!(errors.contains(&holder), "{errors}");
    let read = pemba(&["relationship", "read", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(read.status.code(), Some(2));
    assert!(stderr(&read).contains(&holder), "{}", stderr(&read));
    assert!(stderr(&read).contains("--endpoint"), "{}", stderr(&read));
    let (status, _) = first.terminate();
    assert!(status.success());
    assert!(
        !data.join("pemba.pid").exists(),
        "the pid file outlived its server"
    );
}

/// SIGINT and SIGTERM sent as soon as `pemba serve` says it is serving stop it gracefully:
/// exit 0, the store closed, the pid file gone. (The handlers are now installed before the
/// lines are printed. The race this closes, a signal between the lines and the first poll
/// of the shutdown future, was seen once under valgrind and is too narrow to hit here; this
/// holds the behaviour around it.)
#[test]
fn a_signal_as_soon_as_the_serving_lines_appear_stops_the_server_gracefully() {
    for signal in ["-INT", "-TERM", "-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server = crate::process::ServeProcess::spawn(&data, &[], &[]);
        let (status, log) = server.signal(signal);
        assert!(status.success(), "{signal}: {status:?}\n{}", log.join("\n"));
        assert!(
            log.iter().any(|line| line.contains("store closed")),
            "{signal}: {}",
            log.join("\n")
        );
        assert!(
            !data.join("pemba.pid").exists(),
            "{signal}: the pid file outlived its server"
        );
    }
}

/// Issue 16: a client error (501 for an old `atExactSnapshot`) is logged at `debug`, not
/// as a failure, and its message names the field as the API spells it.
#[test]
fn issue_16_a_client_error_is_not_logged_as_a_server_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::process::ServeProcess::spawn(&dir.path().join("data"), &[], &[]);
    server
        .wait_healthy(std::time::Duration::from_secs(30))
        .unwrap();
    let key = crate::process::PROCESS_KEY;
    for rel in [
        "workspace:acme#admin@user:alice",
        "workspace:acme#viewer@user:bob",
    ] {
        let output = pemba(&[
            "rel",
            "touch",
            rel,
            "--endpoint",
            &server.base,
            "--key",
            key,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let mut response = crate::process::agent(std::time::Duration::from_secs(10))
        .post(&format!("{}/v1/permissions/check", server.base))
        .header("Authorization", &format!("Bearer {key}"))
        .send(
            serde_json::json!({
                "consistency": { "atExactSnapshot": { "token": "pb1.1" } },
                "resource": { "objectType": "workspace", "objectId": "acme" },
                "permission": "admin",
                "subject": { "object": { "objectType": "user", "objectId": "alice" } },
            })
            .to_string(),
        )
        .unwrap();
    assert_eq!(response.status().as_u16(), 501);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.contains("consistency.atExactSnapshot"), "{body}");
    let (_, log) = server.terminate();
    let failures: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

const CUSTOM: &str = "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation owner: user
    relation viewer: user | group#member | user:*
    permission view = viewer + owner
    permission edit = owner
}
";

/// What a step's output must be.
enum Expect {
    /// stdout is exactly this.
    Is(&'static str),
    /// stdout contains every one of these.
    Has(&'static [&'static str]),
    /// stderr contains this.
    Err(&'static str),
}

/// Every new command, run in order on one target: (arguments, exit status, output).
const STEPS: &[(&[&str], i32, Expect)] = &[
    (
        &["schema", "write", "FILE:custom.zed"],
        0,
        Expect::Has(&["pb1."]),
    ),
    (
        &["schema", "read"],
        0,
        Expect::Has(&["permission view = viewer + owner\n"]),
    ),
    (
        &[
            "relationship",
            "create",
            "group:eng#member@user:bob",
            "doc:readme#viewer@group:eng#member",
            "doc:readme#owner@user:alice",
            "doc:pub#viewer@user:*",
        ],
        0,
        Expect::Has(&["pb1."]),
    ),
    (
        &["relationship", "create", "group:eng#member@user:bob"],
        2,
        Expect::Err("already"),
    ),
    (
        &["rel", "touch", "group:eng#member@user:bob"],
        0,
        Expect::Has(&["pb1."]),
    ),
    (
        &["relationship", "read", "doc:readme"],
        0,
        Expect::Is("doc:readme#owner@user:alice\ndoc:readme#viewer@group:eng#member\n"),
    ),
    (
        &["relationship", "read", "doc", "--limit", "1"],
        0,
        Expect::Err("next page: --cursor "),
    ),
    (
        &["relationship", "read", "@group:eng#member"],
        0,
        Expect::Is("doc:readme#viewer@group:eng#member\n"),
    ),
    (
        &["relationship", "read", "doc#nope"],
        2,
        Expect::Err("nope"),
    ),
    (
        &[
            "permission",
            "check",
            "doc:readme#view@user:bob",
            "--explain",
        ],
        0,
        Expect::Has(&[
            "true\n",
            "doc:readme#viewer: includes group:eng#member",
            "group:eng#member: includes user:bob",
        ]),
    ),
    (
        &[
            "permission",
            "check",
            "doc:readme#edit@user:bob",
            "--explain",
        ],
        1,
        Expect::Has(&["false\n", "doc:readme#owner: user:alice (not user:bob)"]),
    ),
    (
        &["check", "doc:readme#view@user:bob"],
        0,
        Expect::Is("true\n"),
    ),
    (
        &[
            "--consistency",
            "minimize-latency",
            "check",
            "doc:pub#view@user:carol",
        ],
        0,
        Expect::Is("true\n"),
    ),
    (
        &["check", "doc:readme#view@user:bob", "--json"],
        0,
        Expect::Has(&["\"PERMISSIONSHIP_HAS_PERMISSION\""]),
    ),
    (
        &["permission", "expand", "doc:readme#view"],
        0,
        Expect::Has(&[
            "doc:readme#view: union\n",
            "doc:readme#viewer: group:eng#member\n",
        ]),
    ),
    (
        &["permission", "lookup-resources", "doc", "view", "user:bob"],
        0,
        Expect::Is("pub\nreadme\n"),
    ),
    (
        &[
            "lookup",
            "resources",
            "doc",
            "view",
            "user:bob",
            "--explain",
        ],
        0,
        Expect::Has(&["pub\n", "doc:pub#viewer: includes user:*"]),
    ),
    (
        &["perm", "lookup-subjects", "doc:readme", "view", "user"],
        0,
        Expect::Is("alice\nbob\n"),
    ),
    (
        &["schema", "diff", "FILE:narrowed.zed"],
        0,
        Expect::Has(&[
            "- doc#viewer: relation viewer: user | group#member | user:*\n",
            "+ doc#viewer: relation viewer: user | group#member\n",
            "orphaned: 1 relationship of doc#viewer@user:*, e.g.\n    doc:pub#viewer@user:*\n",
        ]),
    ),
    (
        &["schema", "write", "FILE:narrowed.zed"],
        2,
        Expect::Err("doc:pub#viewer@user:*"),
    ),
    (
        &["relationship", "bulk-delete", "doc:pub"],
        2,
        Expect::Err("1 relationship matches `doc:pub`; pass --force"),
    ),
    (
        &["relationship", "bulk-delete", "doc:pub", "--force"],
        0,
        Expect::Has(&["deleted 1 relationship at pb1."]),
    ),
    (
        &["schema", "diff", "FILE:narrowed.zed"],
        0,
        Expect::Has(&["- doc#viewer"]),
    ),
    (
        &["schema", "write", "FILE:narrowed.zed"],
        0,
        Expect::Has(&["pb1."]),
    ),
    (
        &["relationship", "delete", "group:eng#member@user:bob"],
        0,
        Expect::Has(&["pb1."]),
    ),
    (
        &["permission", "check", "doc:readme#view@user:bob"],
        1,
        Expect::Is("false\n"),
    ),
    (
        &["relationship", "bulk-delete", "doc", "--force", "--json"],
        0,
        Expect::Has(&["\"relationshipsDeletedCount\":\"2\""]),
    ),
    (&["relationship", "read"], 0, Expect::Is("")),
];

fn run_steps(files: &std::path::Path, target: &[&str], name: &str) {
    for (args, status, expect) in STEPS {
        let mut full: Vec<String> = Vec::new();
        // Connection flags before the subcommand for a server, after it for a directory.
        let before = target.first() == Some(&"--endpoint");
        if before {
            full.extend(target.iter().map(|s| s.to_string()));
        }
        for arg in *args {
            match arg.strip_prefix("FILE:") {
                Some(file) => full.push(files.join(file).display().to_string()),
                None => full.push(arg.to_string()),
            }
        }
        if !before {
            full.extend(target.iter().map(|s| s.to_string()));
        }
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let output = pemba_in(files, &full);
        let (out, err) = (stdout(&output), stderr(&output));
        let context = format!(
            "{name}: pemba {}\nstdout:\n{out}\nstderr:\n{err}",
            full.join(" ")
        );
        assert_eq!(output.status.code(), Some(*status), "{context}");
        match expect {
            Expect::Is(text) => assert_eq!(out, *text, "{context}"),
            Expect::Has(parts) => {
                for part in *parts {
                    assert!(out.contains(part), "missing {part:?}: {context}");
                }
            }
            Expect::Err(part) => assert!(err.contains(part), "missing {part:?}: {context}"),
        }
    }
}

#[test]
fn every_new_command_on_a_data_directory_and_through_a_server() {
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("custom.zed"), CUSTOM).unwrap();
    let narrowed = CUSTOM.replace("group#member | user:*", "group#member");
    std::fs::write(files.path().join("narrowed.zed"), narrowed).unwrap();
    let data = files.path().join("data");
    run_steps(
        files.path(),
        &["--data-dir", data.to_str().unwrap()],
        "data directory",
    );
    let server = TestServer::start();
    run_steps(
        files.path(),
        &["--endpoint", &server.base, "--key", KEY],
        "server",
    );

    let output = pemba(&["completions", "bash"]);
    assert!(stdout(&output).contains("_pemba()"), "{}", stderr(&output));
    for shell in ["zsh", "fish"] {
        let output = pemba(&["completions", shell]);
        assert!(stdout(&output).contains("relationship"), "{shell}");
    }
    let output = pemba(&["completions", "bash", "--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("does not apply"),
        "{}",
        stderr(&output)
    );
    for command in [
        &["schema", "diff", "--help"][..],
        &["relationship", "bulk-delete", "--help"],
        &["permission", "check", "--help"],
    ] {
        let output = pemba(command);
        assert!(
            stdout(&output).contains("Example"),
            "{command:?}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn a_bulk_import_reaches_watch_one_revision_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuples.txt");
    // Shuffled, with a duplicate line.
    let mut lines: Vec<&str> = GOOD.lines().filter(|l| !l.starts_with("//")).collect();
    lines.reverse();
    lines.push("group:eng#member@user:bob");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = pemba(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
        "--batch-size",
        "4",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("imported 6 relationships")
            && stderr(&output).contains("1 duplicate lines")
            && stderr(&output).contains("pb1.3"),
        "{}",
        stderr(&output)
    );
    let server = TestServer::start_in(data, Limits::default());
    // From the schema's revision: the two batches, each at its own revision, as touches
    // in resource order, read from their compact change-log entries.
    let stream = server.open_stream(
        "/v1/watch",
        json!({ "optionalStartCursor": { "token": "pb1.1" } }),
    );
    let mut expected: Vec<&str> = lines.clone();
    expected.sort_unstable();
    expected.dedup();
    for (token, batch) in [("pb1.2", &expected[..4]), ("pb1.3", &expected[4..])] {
        let line = stream
            .recv_timeout(Duration::from_secs(10))
            .expect("a watch line");
        let result = &line["result"];
        assert_eq!(result["changesThrough"]["token"], token, "{line}");
        let updates = result["updates"].as_array().unwrap();
        assert_eq!(updates.len(), batch.len(), "{line}");
        for (update, tuple) in updates.iter().zip(batch) {
            assert_eq!(update["operation"], "OPERATION_TOUCH", "{line}");
            assert_eq!(update["relationship"], rel(tuple), "{line}");
        }
    }
    assert!(
        stream.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing more"
    );
}
