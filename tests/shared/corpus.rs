//! SpiceDB's validation files as test cases, shared by the three conformance targets
//! (`schema/tests/conformance.rs`, `engine/tests/conformance.rs`, `tests/conformance.rs`),
//! which include this file with `#[path]`.
//!
//! The corpus is read from `PEMBA_CONFORMANCE_DIR`, never copied into the repository.
//! Unset, it is one case ignored with the reason (never a pass); set to a folder that
//! cannot be read or holds too few files, it is one failing case.

use std::path::{Path, PathBuf};

use libtest_mimic::{Completion, Trial};

/// The variable naming the folder of SpiceDB validation files.
pub const VARIABLE: &str = "PEMBA_CONFORMANCE_DIR";

/// The corpus's `.yaml` files, sorted; or, when there are none to run, the one case that
/// stands for them under `group` (ignored when [`VARIABLE`] is unset, failing otherwise).
/// `purpose` ends the reason given for ignoring ("to compile their schemas").
pub fn files(group: &'static str, purpose: &str, min_files: usize) -> Result<Vec<PathBuf>, Trial> {
    let Some(dir) = std::env::var_os(VARIABLE) else {
        let reason = format!(
            "{VARIABLE} is unset: set it to the SpiceDB validation files \
             (../shared/conformance/spicedb) {purpose}"
        );
        return Err(Trial::ignorable_test(group, move || {
            Ok(Completion::ignored_with(reason))
        }));
    };
    let dir = PathBuf::from(dir);
    let failing = |message: String| Trial::test(group, move || Err(message.into()));
    let cannot = |e: std::io::Error| failing(format!("{VARIABLE} is `{}`: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    if files.len() < min_files.max(1) {
        return Err(failing(format!(
            "{VARIABLE} is `{}`, which holds {} `.yaml` files, not the SpiceDB validation files (at least {min_files})",
            dir.display(),
            files.len()
        )));
    }
    Ok(files)
}

/// `GROUP::NAME` for `NAME.yaml`.
pub fn case_name(group: &str, path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    format!("{group}::{stem}")
}
