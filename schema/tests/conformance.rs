//! Compiles the `schema` of every SpiceDB validation file in `PEMBA_CONFORMANCE_DIR`, each
//! file its own test case, and checks that printing the compiled schema round-trips.
//!
//! Harness-less (libtest-mimic), like `engine/tests/conformance.rs`: with the variable
//! unset there is one case, ignored with the reason; a folder that cannot be read or
//! holds no `.yaml` files fails.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// The variable naming the folder of SpiceDB validation files.
const VARIABLE: &str = "PEMBA_CONFORMANCE_DIR";

/// Why the cases are skipped when [`VARIABLE`] is unset.
const UNSET: &str = "PEMBA_CONFORMANCE_DIR is unset: set it to the SpiceDB validation files \
                     (../shared/conformance/spicedb) to compile their schemas";

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// One case per file, or a single ignored or failing case when there are no files.
fn trials() -> Vec<Trial> {
    let Some(dir) = std::env::var_os(VARIABLE) else {
        return vec![Trial::ignorable_test("spicedb_schemas", || {
            Ok(Completion::ignored_with(UNSET))
        })];
    };
    let dir = PathBuf::from(dir);
    match yaml_files(&dir) {
        Ok(files) if !files.is_empty() => files
            .into_iter()
            .map(|path| Trial::test(case_name(&path), move || compile_file(&path)))
            .collect(),
        Ok(_) => {
            let message = format!(
                "{VARIABLE} is `{}`, which holds no `.yaml` files",
                dir.display()
            );
            vec![Trial::test("spicedb_schemas", move || Err(message.into()))]
        }
        Err(message) => vec![Trial::test("spicedb_schemas", move || Err(message.into()))],
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

/// `spicedb_schemas::NAME` for `NAME.yaml`.
fn case_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    format!("spicedb_schemas::{stem}")
}

/// Compiles the file's schema, prints it and compiles the print to the same schema.
fn compile_file(path: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
    let schema = yaml
        .get("schema")
        .and_then(|s| s.as_str())
        .ok_or_else(|| format!("{} has no schema", path.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let compiled = pemba_schema::compile(schema).map_err(|e| e.render(&name, schema))?;
    let printed = pemba_schema::print(&compiled);
    let reparsed = pemba_schema::compile(&printed).map_err(|e| {
        format!(
            "the printed schema does not compile:\n{}",
            e.render(&name, &printed)
        )
    })?;
    if reparsed != compiled {
        return Err(format!(
            "{name}: the printed schema compiles to a different schema:\n{printed}"
        )
        .into());
    }
    Ok(())
}
