//! SpiceDB's validation files run entirely over HTTP, each as its own test case: schema
//! write, relationships write, every assertion through `/v1/permissions/check`.
//!
//! Harness-less (libtest-mimic), like `engine/tests/conformance.rs`: with
//! `PEMBA_CONFORMANCE_DIR` unset there is one case, ignored with the reason; with it set,
//! one case per `.yaml` file, and a folder that cannot be read or holds no files fails. A
//! file the engine cannot load or does not pass in-process is ignored here with the
//! reason: that is the engine tests' failure, not the HTTP layer's.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::{json, Value};

#[path = "it/support.rs"]
#[allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "shared with tests/it, whose other helpers this target does not use; test \
              helpers fail by panicking, which fails the case"
)]
mod support;

use support::{rel, split_check, TestServer};

/// The variable naming the folder of SpiceDB validation files.
const VARIABLE: &str = "PEMBA_CONFORMANCE_DIR";

/// Why the cases are skipped when [`VARIABLE`] is unset.
const UNSET: &str = "PEMBA_CONFORMANCE_DIR is unset: set it to the SpiceDB validation files \
                     (../shared/conformance/spicedb) to run them over HTTP";

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// One case per file, or a single ignored or failing case when there are no files.
fn trials() -> Vec<Trial> {
    let Some(dir) = std::env::var_os(VARIABLE) else {
        return vec![Trial::ignorable_test("spicedb_over_http", || {
            Ok(Completion::ignored_with(UNSET))
        })];
    };
    let dir = PathBuf::from(dir);
    match yaml_files(&dir) {
        Ok(files) if !files.is_empty() => files
            .into_iter()
            .map(|path| Trial::ignorable_test(case_name(&path), move || run_file(&path)))
            .collect(),
        Ok(_) => {
            let message = format!(
                "{VARIABLE} is `{}`, which holds no `.yaml` files",
                dir.display()
            );
            vec![Trial::test(
                "spicedb_over_http",
                move || Err(message.into()),
            )]
        }
        Err(message) => vec![Trial::test(
            "spicedb_over_http",
            move || Err(message.into()),
        )],
    }
}

/// The `.yaml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let cannot = |e: std::io::Error| format!("{VARIABLE} is `{}`: {e}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `spicedb_over_http::NAME` for `NAME.yaml`.
fn case_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    format!("spicedb_over_http::{stem}")
}

/// Loads one file into a fresh server and checks every assertion over HTTP; each wrong
/// answer is reported.
fn run_file(path: &Path) -> Result<Completion, Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let Ok(file) = pemba_engine::validation_file::parse(&text) else {
        return Ok(Completion::ignored_with(
            "uses something the engine does not support",
        ));
    };
    match pemba_engine::validation_file::run(&file, &text) {
        Ok(outcome) if outcome.passed() => {}
        _ => return Ok(Completion::ignored_with("not passed in-process")),
    }
    let server = TestServer::start();
    server.ok("/v1/schema/write", json!({ "schema": file.schema }));
    let relationships: Vec<Value> = file
        .relationships
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(rel)
        .collect();
    for chunk in relationships.chunks(1000) {
        let updates: Vec<Value> = chunk
            .iter()
            .map(|r| json!({ "operation": "OPERATION_TOUCH", "relationship": r }))
            .collect();
        server.ok("/v1/relationships/write", json!({ "updates": updates }));
    }
    let mut wrong = Vec::new();
    for (expected, list) in [(true, &file.assert_true), (false, &file.assert_false)] {
        for assertion in list {
            let (resource, permission, subject) = split_check(assertion.trim());
            let answer = server.ok(
                "/v1/permissions/check",
                json!({
                    "consistency": { "fullyConsistent": true },
                    "resource": resource,
                    "permission": permission,
                    "subject": subject,
                }),
            );
            let allowed = answer.get("permissionship").and_then(Value::as_str)
                == Some("PERMISSIONSHIP_HAS_PERMISSION");
            if allowed != expected {
                wrong.push(format!("`{assertion}`: expected {expected}, got {allowed}"));
            }
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{}: {} wrong answers over HTTP:\n{}",
            path.display(),
            wrong.len(),
            wrong.join("\n")
        )
        .into());
    }
    Ok(Completion::Completed)
}
