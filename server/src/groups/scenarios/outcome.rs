//! What a step expects of a command, and how a result or refusal is compared with it.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{from, yaml};
use crate::groups::GroupsError;

/// The outcome a step expects.
pub(super) enum Expected {
    Ok,
    Error {
        kind: String,
        says: Option<String>,
        lines: Option<Vec<u64>>,
    },
}

impl Expected {
    pub(super) fn parse(value: Option<Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Detailed {
            error: String,
            says: Option<String>,
            lines: Option<Vec<u64>>,
        }
        match value {
            None => Ok(Expected::Ok),
            Some(Value::String(kind)) if kind == "ok" => Ok(Expected::Ok),
            Some(Value::String(kind)) => Ok(Expected::Error {
                kind,
                says: None,
                lines: None,
            }),
            Some(other) => {
                let detailed: Detailed = from(&other)?;
                Ok(Expected::Error {
                    kind: detailed.error,
                    says: detailed.says,
                    lines: detailed.lines,
                })
            }
        }
    }
}

/// The error kind a scenario names: the variant, in snake case.
pub(super) fn kind_of(error: &GroupsError) -> &'static str {
    match error {
        GroupsError::SchemaLacks { .. } => "schema_lacks",
        GroupsError::NotFound { .. } => "not_found",
        GroupsError::NotAMember { .. } => "not_a_member",
        GroupsError::Forbidden { .. } => "forbidden",
        GroupsError::Conflict(_) => "conflict",
        GroupsError::Invalid(_) => "invalid",
        GroupsError::Ineligible { .. } => "ineligible",
        GroupsError::Unreadable { .. } => "unreadable",
        GroupsError::ImportRefused { .. } => "import_refused",
        GroupsError::Corrupt { .. } => "corrupt",
        GroupsError::NoRandomness { .. } => "no_randomness",
        GroupsError::Engine(_) => "engine",
    }
}

/// Whether `got` has everything `want` says: maps may have more keys, sequences must have
/// as many items, each matching partially; scalars are equal.
pub(super) fn matches_partially(got: &Value, want: &Value) -> Result<(), String> {
    match (got, want) {
        (Value::Mapping(got), Value::Mapping(want)) => {
            for (key, value) in want {
                let found = got.get(key).ok_or_else(|| format!("no `{}`", yaml(key)))?;
                matches_partially(found, value).map_err(|why| format!("`{}`: {why}", yaml(key)))?;
            }
            Ok(())
        }
        (Value::Sequence(got), Value::Sequence(want)) if got.len() == want.len() => got
            .iter()
            .zip(want)
            .enumerate()
            .try_for_each(|(i, (g, w))| {
                matches_partially(g, w).map_err(|why| format!("item {i}: {why}"))
            }),
        _ if got == want => Ok(()),
        _ => Err(format!("{} is not {}", yaml(got), yaml(want))),
    }
}
