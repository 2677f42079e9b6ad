//! SpiceDB validation files run entirely over HTTP: schema write, relationships write,
//! every assertion through `/v1/permissions/check`.

use serde_json::{json, Value};

use crate::support::{rel, split_check, TestServer};

#[test]
fn conformance_files_pass_over_http() {
    let Ok(dir) = std::env::var("PEMBA_CONFORMANCE_DIR") else {
        eprintln!("skipped: set PEMBA_CONFORMANCE_DIR to the SpiceDB conformance files");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no yaml files in {dir}");
    let mut ran = 0;
    let mut assertions = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Ok(file) = pemba_engine::validation_file::parse(&text) else {
            eprintln!("{name}: skipped (uses something unsupported)");
            continue;
        };
        // Files the engine itself does not pass are the engine tests' business.
        match pemba_engine::validation_file::run(&file, &text) {
            Ok(outcome) if outcome.passed() => {}
            _ => {
                eprintln!("{name}: skipped (not passed in-process)");
                continue;
            }
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
                let allowed = answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION";
                assert_eq!(allowed, expected, "{name}: `{assertion}`");
                assertions += 1;
            }
        }
        ran += 1;
    }
    eprintln!("{ran} conformance files, {assertions} assertions over HTTP");
    assert!(ran > 0);
}
