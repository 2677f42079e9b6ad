//! SpiceDB validation files (`schema`, `relationships`, `assertions`, `validation`): loading
//! and running them against a fresh in-memory engine.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::engine::{CheckArgs, Engine, Page, SubjectLookup};
use crate::error::EngineError;
use crate::revision::Consistency;
use crate::tuple::{SubjectRef, Tuple};
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

/// The 1-based line of `source` where `needle` first appears.
fn line_of(source: &str, needle: &str) -> Option<usize> {
    let needle = needle.trim();
    if needle.is_empty() {
        return None;
    }
    source
        .lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
}

/// Loads `file` into a fresh in-memory engine and evaluates every assertion and
/// validation entry. `source` is the file's text, used to name lines.
pub fn run(file: &ValidationFile, source: &str) -> Result<Outcome, EngineError> {
    let mut outcome = Outcome::default();
    let compiled = match pemba_schema::compile(&file.schema) {
        Ok(compiled) => compiled,
        Err(errors) => {
            outcome.schema_errors = Some(errors);
            return Ok(outcome);
        }
    };
    let engine = Engine::in_memory()?;
    engine.write_schema(&file.schema)?;

    let mut updates = Vec::new();
    let mut seen = BTreeSet::new();
    for line in file.relationships.lines() {
        let text = line.trim();
        if text.is_empty() || text.starts_with("//") {
            continue;
        }
        let fail = |message: String| Failure {
            line: line_of(source, text),
            message,
        };
        if text.contains('[') {
            outcome.failures.push(fail(format!(
                "relationship `{text}`: caveats and expiration are not supported"
            )));
            continue;
        }
        let tuple = match Tuple::parse(text) {
            Ok(tuple) => tuple,
            Err(error) => {
                outcome
                    .failures
                    .push(fail(format!("relationship `{text}`: {error}")));
                continue;
            }
        };
        if let Err(error) = validate_tuple(&compiled, &tuple) {
            outcome
                .failures
                .push(fail(format!("relationship `{text}`: {error}")));
            continue;
        }
        if !seen.insert(tuple.clone()) {
            outcome.failures.push(fail(format!(
                "relationship `{text}` is given more than once"
            )));
            continue;
        }
        updates.push(Update::touch(tuple));
    }
    if !outcome.failures.is_empty() {
        return Ok(outcome);
    }
    outcome.relationships = updates.len();
    engine.write(updates, Vec::new())?;

    for (expected, list) in [(true, &file.assert_true), (false, &file.assert_false)] {
        for assertion in list {
            outcome.assertions += 1;
            let fail = |message: String| Failure {
                line: line_of(source, assertion),
                message,
            };
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

    for (key, expected) in &file.validation {
        let fail = |message: String| Failure {
            line: line_of(source, key),
            message,
        };
        let Some((resource, permission)) = key.split_once('#') else {
            outcome.failures.push(fail(format!(
                "validation key `{key}`: expected `type:id#permission`"
            )));
            continue;
        };
        let resource = match crate::tuple::ObjectRef::parse(resource) {
            Ok(resource) => resource,
            Err(error) => {
                outcome
                    .failures
                    .push(fail(format!("validation key `{key}`: {error}")));
                continue;
            }
        };
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
        for subject in found_subjects.value {
            let subject = SubjectRef {
                object: crate::tuple::ObjectRef::new(ty.clone(), subject.id),
                relation: relation.clone(),
            };
            found.insert(subject.to_string());
        }
    }
    Ok(found)
}
