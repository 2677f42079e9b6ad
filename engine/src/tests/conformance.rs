//! SpiceDB's own validation files, read from `PEMBA_CONFORMANCE_DIR` (never copied here).

use crate::validation_file;

#[test]
fn every_spicedb_validation_file_passes() {
    let Some(dir) = std::env::var_os("PEMBA_CONFORMANCE_DIR") else {
        eprintln!("PEMBA_CONFORMANCE_DIR is not set: skipping the SpiceDB conformance files");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance dir readable")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the SpiceDB files in {dir:?}, found {}",
        files.len()
    );
    let mut failed = Vec::new();
    let mut assertions = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable");
        let file =
            validation_file::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = validation_file::run(&file, &text).expect("runs");
        assertions += outcome.assertions;
        if let Some(errors) = &outcome.schema_errors {
            failed.push(format!("{}: schema: {errors}", path.display()));
        }
        for failure in &outcome.failures {
            failed.push(format!(
                "{}:{:?}: {}",
                path.display(),
                failure.line,
                failure.message
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(assertions >= 180, "only {assertions} assertions evaluated");
}
