//! Golden-file tests: `test_data/ok/NAME.schema` compiles and prints as `NAME.expected`;
//! `test_data/err/NAME.schema` fails with the rendered errors in `NAME.expected`.
//! Run with `UPDATE_EXPECT=1` to rewrite the expected files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside `#[test]` fail by panicking, with the panic's location"
)]

use std::fs;
use std::path::{Path, PathBuf};

/// Compares `actual` with the content of `expected_path`, or rewrites the file when
/// `UPDATE_EXPECT` is set.
#[track_caller]
fn check(expected_path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(expected_path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(expected_path).unwrap_or_default();
    assert_eq!(
        expected,
        actual,
        "\n{} differs (run with UPDATE_EXPECT=1 to update); actual:\n{actual}",
        expected_path.display()
    );
}

fn schemas(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(dir);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "schema"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no schemas in {}", dir.display());
    paths
}

#[test]
fn ok_schemas_print_as_expected_and_round_trip() {
    for path in schemas("ok") {
        let source = fs::read_to_string(&path).unwrap();
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let compiled = match pemba_schema::compile(&source) {
            Ok(c) => c,
            Err(e) => panic!(
                "{file_name} should compile:\n{}",
                e.render(&file_name, &source)
            ),
        };
        let printed = pemba_schema::print(&compiled);
        check(&path.with_extension("expected"), &printed);
        let again = pemba_schema::compile(&printed)
            .unwrap_or_else(|e| panic!("printed {file_name} does not compile:\n{e}\n{printed}"));
        assert_eq!(
            again, compiled,
            "{file_name}: round trip changed the schema"
        );
        assert_eq!(
            pemba_schema::print(&again),
            printed,
            "{file_name}: printer not idempotent"
        );
    }
}

#[test]
fn err_schemas_fail_as_expected() {
    for path in schemas("err") {
        let source = fs::read_to_string(&path).unwrap();
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let errors = match pemba_schema::compile(&source) {
            Ok(_) => panic!("{file_name} should not compile"),
            Err(e) => e,
        };
        check(
            &path.with_extension("expected"),
            &errors.render(&file_name, &source),
        );
    }
}
