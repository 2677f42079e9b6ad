//! The `pemba` binary's import, export, check and lookup, on a data directory and through a
//! running server.

use std::process::{Command, Output};

use crate::support::{TestServer, KEY};

fn pemba(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pemba"))
        .args(args)
        .env_remove("PEMBA_KEY")
        .output()
        .unwrap()
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
