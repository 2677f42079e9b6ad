//! SpiceDB's own validation files, read from `PEMBA_CONFORMANCE_DIR` (never copied here),
//! each run in-process as its own test case, once on redb and once on PostgreSQL (a fresh
//! database per file on one throwaway server, `tests/shared/postgres.rs`).
//!
//! A harness-less test target (libtest-mimic) so that a missing corpus is reported as
//! ignored, with the reason, rather than as a pass: with the variable unset there is one
//! ignored case; with it set, one case per `.yaml` file, and a folder that cannot be read
//! or holds too few files is a failure.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

#[path = "../../tests/shared/corpus.rs"]
mod corpus;
#[path = "../../tests/shared/postgres.rs"]
mod pg;
use pemba_engine::{validation_file, Engine, EngineError, PostgresStore};

/// SpiceDB ships more validation files than this; fewer means the wrong folder.
const MIN_FILES: usize = 30;

/// The files together evaluate at least this many assertions (some have none: they only
/// check that the schema compiles and the relationships load).
const MIN_ASSERTIONS: usize = 180;

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// One case per file and one for the assertions in all, or the one ignored or failing
/// case that stands for them.
fn trials() -> Vec<Trial> {
    match corpus::files("spicedb", "to run them", MIN_FILES) {
        Ok(files) => {
            let mut trials: Vec<Trial> = files
                .iter()
                .cloned()
                .flat_map(|path| {
                    let name = corpus::case_name("spicedb", &path);
                    let on_postgres = path.clone();
                    [
                        Trial::test(name.clone(), move || {
                            run_file(&path, Backend::Redb).map(drop)
                        }),
                        Trial::test(format!("postgres::{name}"), move || {
                            run_file(&on_postgres, Backend::Postgres).map(drop)
                        }),
                    ]
                })
                .collect();
            trials.push(Trial::test("spicedb_assertions", move || {
                count_assertions(&files)
            }));
            trials
        }
        Err(stand_in) => vec![stand_in],
    }
}

/// Fails if the files that pass evaluate fewer than [`MIN_ASSERTIONS`] assertions in all
/// (a file that fails is its own case's failure).
fn count_assertions(files: &[PathBuf]) -> Result<(), Failed> {
    let assertions: usize = files
        .iter()
        .filter_map(|path| run_file(path, Backend::Redb).ok())
        .sum();
    if assertions < MIN_ASSERTIONS {
        return Err(format!(
            "only {assertions} assertions evaluated, expected at least {MIN_ASSERTIONS}"
        )
        .into());
    }
    Ok(())
}

/// The store a file runs on.
#[derive(Clone, Copy)]
enum Backend {
    /// In-memory redb.
    Redb,
    /// A fresh, migrated PostgreSQL database.
    Postgres,
}

fn open(backend: Backend) -> Result<Engine, EngineError> {
    match backend {
        Backend::Redb => Ok(Engine::in_memory()?),
        Backend::Postgres => {
            let url = pg::fresh_database();
            pemba_engine::migrate(&url)?;
            Ok(Engine::with_store(Box::new(PostgresStore::connect(&url)?))?)
        }
    }
}

/// Parses and runs one file; every schema error and failed assertion is reported. The
/// number of assertions evaluated.
fn run_file(path: &Path, backend: Backend) -> Result<usize, Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let file = validation_file::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let outcome = validation_file::run_on(&file, &text, || open(backend))
        .map_err(|e| format!("{}: cannot run: {e}", path.display()))?;
    let mut failed = Vec::new();
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
    if !failed.is_empty() {
        return Err(format!("{} failures:\n{}", failed.len(), failed.join("\n")).into());
    }
    Ok(outcome.assertions)
}
