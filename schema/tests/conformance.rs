//! Compiles the `schema` of every SpiceDB validation file in `PEMBA_CONFORMANCE_DIR`
//! (e.g. `PEMBA_CONFORMANCE_DIR=../../shared/conformance/spicedb`); skipped when unset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside `#[test]` fail by panicking, with the panic's location"
)]

use std::fs;

#[test]
fn conformance_schemas_compile() {
    let Some(dir) = std::env::var_os("PEMBA_CONFORMANCE_DIR") else {
        println!("PEMBA_CONFORMANCE_DIR is not set: conformance schemas skipped");
        return;
    };
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no yaml files in {dir:?}");
    let mut failures = Vec::new();
    for path in &paths {
        let text = fs::read_to_string(path).unwrap();
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let schema = yaml
            .get("schema")
            .and_then(|s| s.as_str())
            .unwrap_or_else(|| panic!("{} has no schema", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match pemba_schema::compile(schema) {
            Ok(compiled) => {
                let printed = pemba_schema::print(&compiled);
                assert_eq!(pemba_schema::compile(&printed).unwrap(), compiled, "{name}");
            }
            Err(e) => failures.push(e.render(&name, schema)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{} conformance schemas compiled", paths.len());
}
