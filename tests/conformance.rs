//! SpiceDB's validation files run entirely over HTTP, each as its own test case: schema
//! write, relationships write, every assertion through `/v1/permissions/check`.
//!
//! Harness-less (libtest-mimic), like `engine/tests/conformance.rs`: with
//! `PEMBA_CONFORMANCE_DIR` unset there is one case, ignored with the reason; with it set,
//! one case per `.yaml` file, and a folder that cannot be read or holds no files fails. A
//! file the engine cannot load or does not pass in-process is ignored here with the
//! reason: that is the engine tests' failure, not the HTTP layer's.

use std::path::Path;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

#[path = "shared/corpus.rs"]
mod corpus;
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

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// One case per file, or the one ignored or failing case that stands for them.
fn trials() -> Vec<Trial> {
    match corpus::files("spicedb_over_http", "to run them over HTTP", 1) {
        Ok(files) => files
            .into_iter()
            .map(|path| {
                Trial::ignorable_test(corpus::case_name("spicedb_over_http", &path), move || {
                    run_file(&path)
                })
            })
            .collect(),
        Err(stand_in) => vec![stand_in],
    }
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
