//! Compiles the `schema` of every SpiceDB validation file in `PEMBA_CONFORMANCE_DIR`, each
//! file its own test case, and checks that printing the compiled schema round-trips.
//!
//! Harness-less (libtest-mimic), like `engine/tests/conformance.rs`: with the variable
//! unset there is one case, ignored with the reason; a folder that cannot be read or
//! holds no `.yaml` files fails.

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};

#[path = "../../tests/shared/corpus.rs"]
mod corpus;

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// One case per file, or the one ignored or failing case that stands for them.
fn trials() -> Vec<Trial> {
    match corpus::files("spicedb_schemas", "to compile their schemas", 1) {
        Ok(files) => files
            .into_iter()
            .map(|path| {
                Trial::test(corpus::case_name("spicedb_schemas", &path), move || {
                    compile_file(&path)
                })
            })
            .collect(),
        Err(stand_in) => vec![stand_in],
    }
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
