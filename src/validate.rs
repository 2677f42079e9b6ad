//! `pemba validate FILE...`: compiles schema files and checks validation files,
//! printing every error with its position.

use std::path::Path;
use std::process::ExitCode;

/// Validates every file; exit status 1 if any has an error, 0 otherwise.
pub fn run(files: &[impl AsRef<Path>]) -> ExitCode {
    let mut all_ok = true;
    for file in files {
        // Validate every file, even after a failure, so all errors are shown at once.
        all_ok &= validate_file(file.as_ref());
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What a file is, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A `.yaml` / `.yml` validation file.
    Yaml,
    /// A `.zed` (or `.schema`) schema file.
    Schema,
    /// Anything else: read as a schema, with a note if that fails.
    Unknown,
}

fn file_kind(path: &Path) -> FileKind {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => FileKind::Yaml,
        Some("zed" | "schema") => FileKind::Schema,
        _ => FileKind::Unknown,
    }
}

/// Validates one file, printing `FILE: ok` to stdout or its errors to stderr.
pub fn validate_file(path: &Path) -> bool {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{name}: error: cannot read the file: {e}");
            return false;
        }
    };
    let ok = match file_kind(path) {
        FileKind::Yaml => validate_yaml_file(&name, &text),
        FileKind::Schema => validate_schema_file(&name, &text),
        FileKind::Unknown => {
            let ok = validate_schema_file(&name, &text);
            if !ok {
                eprintln!(
                    "{name}: note: the file is neither a schema (`.zed`) nor a validation file \
                     (`.yaml`, `.yml`) by its name, so it was read as a schema"
                );
            }
            ok
        }
    };
    if ok {
        println!("{name}: ok");
    }
    ok
}

/// Compiles schema text, printing rendered errors (with carets) to stderr.
pub fn validate_schema_file(name: &str, text: &str) -> bool {
    match pemba_schema::compile(text) {
        Ok(_) => true,
        Err(errors) => {
            eprint!("{}", errors.render(name, text));
            false
        }
    }
}

/// Checks a SpiceDB validation file (`schema`, `relationships`, `assertions`,
/// `validation` keys): compiles the schema, type-checks every relationship against it as a
/// write would, loads them into an in-memory engine and evaluates every assertion and
/// `validation` entry. Each failure is printed with its line in the file.
///
/// Schema error positions are given within the schema text (line 1 is the schema's first
/// line), not within the YAML file: YAML block styles (folded `>-` in particular) do not
/// keep a simple line mapping.
pub fn validate_yaml_file(name: &str, text: &str) -> bool {
    let file = match pemba_engine::validation_file::parse(text) {
        Ok(file) => file,
        Err(message) => {
            eprintln!("{name}: error: {message}");
            return false;
        }
    };
    let outcome = match pemba_engine::validation_file::run(&file, text) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("{name}: error: {error}");
            return false;
        }
    };
    if let Some(errors) = &outcome.schema_errors {
        eprint!(
            "{}",
            errors.render(&format!("{name} (schema)"), &file.schema)
        );
        eprintln!(
            "{name}: note: positions are lines and columns within the `schema` text, not \
             within the YAML file"
        );
        return false;
    }
    for failure in &outcome.failures {
        match failure.line {
            Some(line) => eprintln!("{name}:{line}: error: {}", failure.message),
            None => eprintln!("{name}: error: {}", failure.message),
        }
    }
    outcome.passed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_text() {
        assert!(validate_schema_file("ok.zed", "definition user {}"));
        assert!(!validate_schema_file(
            "bad.zed",
            "definition user { relation x: usr }"
        ));
    }

    #[test]
    fn yaml_text() {
        let good = "schema: |\n  definition user {}\nrelationships: ''\n";
        assert!(validate_yaml_file("good.yaml", good));
        let folded = "schema: >-\n  definition user {}\n\n  definition doc {\n    relation viewer: user\n  }\n";
        assert!(validate_yaml_file("folded.yaml", folded));
        assert!(!validate_yaml_file(
            "bad.yaml",
            "schema: |\n  definition doc {\n"
        ));
        assert!(!validate_yaml_file("none.yaml", "relationships: ''\n"));
        assert!(!validate_yaml_file("list.yaml", "- 1\n- 2\n"));
        assert!(!validate_yaml_file("broken.yaml", "schema: [\n"));
    }

    #[test]
    fn yaml_relationships_and_assertions() {
        let file = |rels: &str, asserts: &str| {
            format!(
                "schema: |\n  definition user {{}}\n  definition doc {{\n    relation viewer: user\n    permission view = viewer\n  }}\nrelationships: |\n  {rels}\nassertions:\n  {asserts}\n"
            )
        };
        let ok = file(
            "doc:d#viewer@user:a",
            "assertTrue:\n    - doc:d#view@user:a\n  assertFalse:\n    - doc:d#view@user:b",
        );
        assert!(validate_yaml_file("ok.yaml", &ok));
        let wrong = file(
            "doc:d#viewer@user:a",
            "assertTrue:\n    - doc:d#view@user:b",
        );
        assert!(!validate_yaml_file("wrong.yaml", &wrong));
        let bad_relation = file("doc:d#view@user:a", "assertTrue: []");
        assert!(!validate_yaml_file("permission.yaml", &bad_relation));
        let unknown = file("doc:d#viewer@robot:a", "assertTrue: []");
        assert!(!validate_yaml_file("unknown.yaml", &unknown));
    }

    #[test]
    fn file_kinds() {
        assert_eq!(file_kind(Path::new("a.yaml")), FileKind::Yaml);
        assert_eq!(file_kind(Path::new("a.yml")), FileKind::Yaml);
        assert_eq!(file_kind(Path::new("a.zed")), FileKind::Schema);
        assert_eq!(file_kind(Path::new("a.txt")), FileKind::Unknown);
        assert!(!validate_file(Path::new("/nonexistent/pemba/file.zed")));
    }
}
