//! SpiceDB validation files (`schema`, `relationships`, `assertions`, `validation`): loading
//! and running them against a fresh in-memory engine.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::engine::{CheckArgs, Engine, Page, SubjectLookup};
use crate::error::EngineError;
use crate::revision::Consistency;
use crate::tuple::{ObjectRef, SubjectRef, Tuple};
use crate::validate::validate_tuple;
use crate::write::Update;

/// The contents of a validation file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationFile {
    /// Schema text.
    pub schema: String,
    /// Relationships, one a line.
    pub relationships: String,
    /// Checks that must be true, as `resource#permission@subject`.
    pub assert_true: Vec<String>,
    /// Checks that must be false.
    pub assert_false: Vec<String>,
    /// Expected subjects per `resource#permission`, as `[subject] is <...>` strings.
    pub validation: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    schema: Option<String>,
    #[serde(default)]
    relationships: Option<String>,
    #[serde(default)]
    assertions: Option<RawAssertions>,
    #[serde(default)]
    validation: Option<BTreeMap<String, Option<Vec<String>>>>,
    #[serde(default, rename = "schemaFile")]
    schema_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssertions {
    #[serde(default, rename = "assertTrue")]
    assert_true: Option<Vec<String>>,
    #[serde(default, rename = "assertFalse")]
    assert_false: Option<Vec<String>>,
    #[serde(default, rename = "assertCaveated")]
    assert_caveated: Option<Vec<String>>,
}

/// One problem found, with the line of the file it comes from when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 1-based line in the validation file.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

/// What running a file found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Schema compile errors, rendered against the schema text.
    pub schema_errors: Option<pemba_schema::SchemaErrors>,
    /// Relationship, assertion and validation failures.
    pub failures: Vec<Failure>,
    /// Assertions evaluated.
    pub assertions: usize,
    /// Relationships loaded.
    pub relationships: usize,
}

impl Outcome {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.schema_errors.is_none() && self.failures.is_empty()
    }
}

/// Parses a validation file; the message says what is wrong where.
pub fn parse(text: &str) -> Result<ValidationFile, String> {
    let raw: RawFile =
        serde_yaml_ng::from_str(text).map_err(|e| format!("not a validation file: {e}"))?;
    if raw.schema_file.is_some() {
        return Err(
            "`schemaFile` is not supported: put the schema inline under `schema`".to_string(),
        );
    }
    let schema = raw
        .schema
        .ok_or_else(|| "not a validation file: missing the `schema` key".to_string())?;
    let assertions = raw.assertions.unwrap_or(RawAssertions {
        assert_true: None,
        assert_false: None,
        assert_caveated: None,
    });
    if assertions.assert_caveated.is_some_and(|c| !c.is_empty()) {
        return Err("`assertCaveated` is not supported: caveats are not supported".to_string());
    }
    Ok(ValidationFile {
        schema,
        relationships: raw.relationships.unwrap_or_default(),
        assert_true: assertions.assert_true.unwrap_or_default(),
        assert_false: assertions.assert_false.unwrap_or_default(),
        validation: raw
            .validation
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
    })
}

/// Finds the lines of a section's entries (the relationships, `assertTrue`, ...) in the
/// file's text: searching forward from the section's key, entry after entry, so text that
/// appears twice is found at its own occurrence, not at the first.
struct Locator<'a> {
    lines: Vec<&'a str>,
    /// The line after the section's key: where searches start.
    start: usize,
    /// The line after the previous entry found.
    next: usize,
}

impl<'a> Locator<'a> {
    /// The section whose key (`relationships`, `assertTrue`, ...) is the first line at or
    /// after the line following `within`'s key, when given, that starts with `key:`.
    fn section(source: &'a str, key: &str, within: Option<&str>) -> Self {
        let lines: Vec<&str> = source.lines().collect();
        let after_key = |key: &str, from: usize| {
            lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, line)| {
                    let line = line.trim_start();
                    line.strip_prefix(key)
                        .or_else(|| {
                            line.strip_prefix('"')
                                .and_then(|l| l.strip_prefix(key))
                                .and_then(|l| l.strip_prefix('"'))
                        })
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
                .map(|(index, _)| index + 1)
        };
        let from = within.and_then(|outer| after_key(outer, 0)).unwrap_or(0);
        let start = after_key(key, from).unwrap_or(0);
        Locator {
            lines,
            start,
            next: start,
        }
    }

    /// The 1-based line of the next entry holding `needle`, after the previous one.
    fn next(&mut self, needle: &str) -> Option<usize> {
        let found = self.find_from(self.next, needle)?;
        self.next = found;
        Some(found)
    }

    /// The 1-based line of the first entry holding `needle` in the section (for map keys,
    /// which are unique and whose order the parsed map does not keep).
    fn first(&self, needle: &str) -> Option<usize> {
        self.find_from(self.start, needle)
    }

    fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        let needle = needle.trim();
        if needle.is_empty() {
            return None;
        }
        self.lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, line)| line.contains(needle))
            .map(|(index, _)| index + 1)
    }
}

/// The objects whose relationships a question about `from` may read: `from` and every
/// object reachable from it through stored relationships (resource to subject), which is
/// how usersets and arrows lead a check from one object to the next.
fn reachable(edges: &BTreeMap<ObjectRef, Vec<ObjectRef>>, from: &ObjectRef) -> BTreeSet<ObjectRef> {
    let mut seen = BTreeSet::from([from.clone()]);
    let mut queue = vec![from.clone()];
    while let Some(object) = queue.pop() {
        for next in edges.get(&object).into_iter().flatten() {
            if seen.insert(next.clone()) {
                queue.push(next.clone());
            }
        }
    }
    seen
}

/// A relationship that could not be loaded: its line and, when its text names one, the
/// resource whose answers it could change.
struct Skipped {
    line: Option<usize>,
    resource: Option<ObjectRef>,
}

/// The line of the first skipped relationship a question about `resource` may depend on:
/// one whose resource it can reach, or one too broken to say.
fn depends_on(
    skipped: &[Skipped],
    edges: &BTreeMap<ObjectRef, Vec<ObjectRef>>,
    resource: &ObjectRef,
) -> Option<Option<usize>> {
    if skipped.is_empty() {
        return None;
    }
    let reach = reachable(edges, resource);
    skipped
        .iter()
        .find(|s| s.resource.as_ref().is_none_or(|r| reach.contains(r)))
        .map(|s| s.line)
}

fn not_evaluated(what: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!(
            "{what} not evaluated: it may depend on the invalid relationship at line {line}"
        ),
        None => format!("{what} not evaluated: it may depend on an invalid relationship"),
    }
}

/// Loads `file` into a fresh in-memory engine and evaluates every assertion and
/// validation entry. `source` is the file's text, used to name lines.
pub fn run(file: &ValidationFile, source: &str) -> Result<Outcome, EngineError> {
    run_on(file, source, || Ok(Engine::in_memory()?))
}

/// As [`run`], on the engine `open` makes (an empty store of any backend), opened only
/// once the schema compiles.
pub fn run_on(
    file: &ValidationFile,
    source: &str,
    open: impl FnOnce() -> Result<Engine, EngineError>,
) -> Result<Outcome, EngineError> {
    let mut outcome = Outcome::default();
    let compiled = match pemba_schema::compile(&file.schema) {
        Ok(compiled) => compiled,
        Err(errors) => {
            outcome.schema_errors = Some(errors);
            return Ok(outcome);
        }
    };
    let engine = open()?;
    engine.write_schema(&file.schema)?;

    let mut updates = Vec::new();
    let mut seen = BTreeSet::new();
    let mut skipped = Vec::new();
    let mut edges: BTreeMap<ObjectRef, Vec<ObjectRef>> = BTreeMap::new();
    let mut locator = Locator::section(source, "relationships", None);
    for line in file.relationships.lines() {
        let text = line.trim();
        if text.is_empty() || text.starts_with("//") {
            continue;
        }
        let at = locator.next(text);
        let mut fail = |message: String| {
            outcome.failures.push(Failure { line: at, message });
            // Read leniently: the resource a broken line names, if it names one.
            let resource = text
                .split_once('#')
                .and_then(|(resource, _)| ObjectRef::parse(resource).ok());
            skipped.push(Skipped { line: at, resource });
        };
        if text.contains('[') {
            fail(format!(
                "relationship `{text}`: caveats and expiration are not supported"
            ));
            continue;
        }
        let tuple = match Tuple::parse(text) {
            Ok(tuple) => tuple,
            Err(error) => {
                fail(format!("relationship `{text}`: {error}"));
                continue;
            }
        };
        if let Err(error) = validate_tuple(&compiled, &tuple) {
            fail(format!("relationship `{text}`: {error}"));
            continue;
        }
        if !seen.insert(tuple.clone()) {
            // The first copy is loaded: nothing depends on the repeat.
            outcome.failures.push(Failure {
                line: at,
                message: format!("relationship `{text}` is given more than once"),
            });
            continue;
        }
        edges
            .entry(tuple.resource.clone())
            .or_default()
            .push(tuple.subject.object.clone());
        updates.push(Update::touch(tuple));
    }
    // Every valid relationship is loaded, so each question that does not depend on an
    // invalid one is still answered.
    outcome.relationships = updates.len();
    engine.write(updates, Vec::new())?;

    for (expected, list, key) in [
        (true, &file.assert_true, "assertTrue"),
        (false, &file.assert_false, "assertFalse"),
    ] {
        let mut locator = Locator::section(source, key, Some("assertions"));
        for assertion in list {
            outcome.assertions += 1;
            let line = locator.next(assertion);
            let fail = |message: String| Failure { line, message };
            if assertion.contains(" with ") || assertion.contains('[') {
                outcome.failures.push(fail(format!(
                    "assertion `{assertion}`: caveat context is not supported"
                )));
                continue;
            }
            let check = match Tuple::parse(assertion.trim()) {
                Ok(check) => check,
                Err(error) => {
                    outcome
                        .failures
                        .push(fail(format!("assertion `{assertion}`: {error}")));
                    continue;
                }
            };
            if let Some(at) = depends_on(&skipped, &edges, &check.resource) {
                outcome
                    .failures
                    .push(fail(not_evaluated(&format!("assertion `{assertion}`"), at)));
                continue;
            }
            let args = CheckArgs::new(&check.resource, &check.relation, &check.subject);
            match engine.check(Consistency::FullyConsistent, args) {
                Ok(answer) if answer.value == expected => {}
                Ok(answer) => outcome.failures.push(fail(format!(
                    "assertion `{assertion}` failed: expected {expected}, got {}",
                    answer.value
                ))),
                Err(error) => outcome
                    .failures
                    .push(fail(format!("assertion `{assertion}`: {error}"))),
            }
        }
    }

    let locator = Locator::section(source, "validation", None);
    for (key, expected) in &file.validation {
        let line = locator.first(key);
        let fail = |message: String| Failure { line, message };
        let Some((resource, permission)) = key.split_once('#') else {
            outcome.failures.push(fail(format!(
                "validation key `{key}`: expected `type:id#permission`"
            )));
            continue;
        };
        let resource = match ObjectRef::parse(resource) {
            Ok(resource) => resource,
            Err(error) => {
                outcome
                    .failures
                    .push(fail(format!("validation key `{key}`: {error}")));
                continue;
            }
        };
        if let Some(at) = depends_on(&skipped, &edges, &resource) {
            outcome
                .failures
                .push(fail(not_evaluated(&format!("validation of `{key}`"), at)));
            continue;
        }
        let mut wanted = BTreeSet::new();
        for entry in expected {
            let subject = entry
                .trim()
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .map(|(subject, _)| {
                    subject
                        .split(" - ")
                        .next()
                        .unwrap_or(subject)
                        .trim()
                        .to_string()
                });
            match subject {
                Some(subject) => {
                    wanted.insert(subject);
                }
                None => outcome.failures.push(fail(format!(
                    "validation entry `{entry}`: expected `[subject] is <resource#relation>`"
                ))),
            }
        }
        match subjects_of(&engine, &compiled, &resource, permission) {
            Ok(actual) if actual == wanted => {}
            Ok(actual) => outcome.failures.push(fail(format!(
                "validation of `{key}` failed: expected subjects {wanted:?}, found {actual:?}"
            ))),
            Err(error) => outcome
                .failures
                .push(fail(format!("validation key `{key}`: {error}"))),
        }
    }
    Ok(outcome)
}

/// Every plain, wildcard and userset subject reaching `resource#permission`, as text.
fn subjects_of(
    engine: &Engine,
    schema: &pemba_schema::CompiledSchema,
    resource: &crate::tuple::ObjectRef,
    permission: &str,
) -> Result<BTreeSet<String>, EngineError> {
    let mut found = BTreeSet::new();
    let mut targets: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for member in &schema.members {
        if let pemba_schema::MemberKind::Relation(allowed) = &member.kind {
            for subject in allowed {
                let ty = schema.definition(subject.type_id()).name.clone();
                let relation = match subject {
                    pemba_schema::AllowedSubject::Userset(_, m) => {
                        Some(schema.member(*m).name.clone())
                    }
                    _ => None,
                };
                targets.insert((ty, relation));
            }
        }
    }
    for (ty, relation) in targets {
        let lookup = SubjectLookup {
            resource,
            permission,
            subject_type: &ty,
            subject_relation: relation.as_deref(),
            page: Page::default(),
        };
        let found_subjects = engine.lookup_subjects(Consistency::FullyConsistent, &lookup)?;
        for id in found_subjects.value.ids() {
            let subject = SubjectRef {
                object: crate::tuple::ObjectRef::new(ty.clone(), id),
                relation: relation.clone(),
            };
            found.insert(subject.to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: each failure at its own line (the repeated assertion text at line 17, not
    /// at its first occurrence on line 13), and a bad relationship (line 9) hides only the
    /// assertions that may depend on it.
    #[test]
    fn failures_at_their_own_lines_and_past_a_bad_relationship() {
        let source = "schema: |
  definition user {}
  definition doc {
    relation viewer: user
    permission view = viewer
  }
relationships: |
  doc:a#viewer@user:x
  doc:b#view@user:x
  doc:c#viewer@user:y
assertions:
  assertTrue:
    - doc:a#view@user:x
    - doc:b#view@user:x
    - doc:c#view@user:z
  assertFalse:
    - doc:a#view@user:x
    - doc:c#view@user:z
validation:
  doc:c#view:
    - '[user:y] is <doc:c#viewer>'
  doc:b#view:
    - '[user:x] is <doc:b#viewer>'
";
        let file = parse(source).unwrap();
        let outcome = run(&file, source).unwrap();
        let found: Vec<(Option<usize>, String)> = outcome
            .failures
            .iter()
            .map(|f| (f.line, f.message.clone()))
            .collect();
        let expected: &[(usize, &str)] = &[
            (9, "relationship `doc:b#view@user:x`: "),
            (14, "assertion `doc:b#view@user:x` not evaluated: it may depend on the invalid relationship at line 9"),
            (15, "assertion `doc:c#view@user:z` failed: expected true, got false"),
            (17, "assertion `doc:a#view@user:x` failed: expected false, got true"),
            (22, "validation of `doc:b#view` not evaluated: it may depend on the invalid relationship at line 9"),
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for ((line, message), (want_line, want)) in found.iter().zip(expected) {
            assert_eq!(*line, Some(*want_line), "{message}");
            assert!(message.starts_with(want), "line {want_line}: {message}");
        }
        assert_eq!(outcome.relationships, 2);
    }

    #[test]
    fn a_line_too_broken_to_name_its_resource_holds_back_every_question() {
        let source = "schema: |
  definition user {}
  definition doc {
    relation viewer: user
  }
relationships: |
  not a relationship
  doc:a#viewer@user:x
assertions:
  assertTrue:
    - doc:a#viewer@user:x
";
        let outcome = run(&parse(source).unwrap(), source).unwrap();
        let lines: Vec<Option<usize>> = outcome.failures.iter().map(|f| f.line).collect();
        assert_eq!(lines, [Some(7), Some(11)], "{:#?}", outcome.failures);
    }
}
