//! `POST /v1/workspaces/{ws}/groups/import`: many groups at once from CSV (`group,member`
//! header, one member per row; a row with an empty member makes an empty group), all or
//! nothing, with every bad row reported by its line number.

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use pemba_engine::{
    Engine, MetadataCondition, MetadataWrite, Operation, RelationshipFilter, SubjectRef,
    Transaction,
};
use serde::Serialize;

use super::{
    authorize, blocking, changed_concurrently, commit, enter, fold, group_key, must_match,
    must_not_match, name_key, new_group_id, not_a_member_reason, object, role_filter, route, tuple,
    update, user, valid_name, Actor, Body, GroupInfo, GroupSummary, Ids,
};
use crate::error::{ApiError, Code};
use crate::routes::Route;
use crate::AppState;

/// The most data rows one import accepts.
pub const MAX_IMPORT_ROWS: usize = 10_000;

pub(super) fn routes() -> Vec<Route> {
    vec![route(
        Method::POST,
        "/v1/workspaces/{ws}/groups/import",
        post(import),
    )]
}

/// One refused row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
struct RowError {
    line: u64,
    message: String,
}

/// A group as the file describes it.
struct Planned {
    name: String,
    members: BTreeSet<String>,
}

#[derive(Serialize)]
struct Imported {
    groups: Vec<GroupSummary>,
}

#[derive(Serialize)]
struct ImportErrors {
    code: u8,
    message: String,
    details: Vec<serde_json::Value>,
    errors: Vec<RowError>,
}

enum Outcome {
    Created(Imported),
    Refused(Vec<RowError>),
}

async fn import(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids(ws): Ids<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let outcome = blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "manage_groups",
            &actor,
            "create groups (only admins can)",
        )?;
        let planned = match plan(engine, &ws, &body.0)? {
            Ok(planned) => planned,
            Err(errors) => return Ok(Outcome::Refused(errors)),
        };
        create_all(engine, &ws, planned).map(Outcome::Created)
    })
    .await?;
    Ok(match outcome {
        Outcome::Created(imported) => (StatusCode::CREATED, Json(imported)).into_response(),
        Outcome::Refused(errors) => {
            let message = format!(
                "{} bad row{} in the CSV; nothing was created",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(ImportErrors {
                    code: Code::InvalidArgument as u8,
                    message,
                    details: Vec::new(),
                    errors,
                }),
            )
                .into_response()
        }
    })
}

/// Parses and validates the whole file: the groups to create, or every bad row.
fn plan(
    engine: &Engine,
    ws: &str,
    csv_text: &[u8],
) -> Result<Result<Vec<Planned>, Vec<RowError>>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text);
    let mut errors = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut member_reasons: HashMap<String, Option<String>> = HashMap::new();
    let mut header_seen = false;
    let mut rows = 0usize;
    for (index, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error
                    .position()
                    .map_or(index as u64 + 1, csv::Position::line);
                errors.push(RowError {
                    line,
                    message: format!("cannot read this row: {error}"),
                });
                if !header_seen {
                    header_seen = true;
                }
                continue;
            }
        };
        let line = record
            .position()
            .map_or(index as u64 + 1, csv::Position::line);
        if !header_seen {
            header_seen = true;
            let fields: Vec<String> = record.iter().map(str::to_lowercase).collect();
            if fields != ["group", "member"] {
                errors.push(RowError {
                    line,
                    message: format!(
                        "the first row must be the header `group,member`, not `{}`",
                        record.iter().collect::<Vec<_>>().join(",")
                    ),
                });
            }
            continue;
        }
        rows += 1;
        if rows > MAX_IMPORT_ROWS {
            errors.push(RowError {
                line,
                message: format!("an import has at most {MAX_IMPORT_ROWS} rows"),
            });
            break;
        }
        if record.len() > 2 {
            errors.push(RowError {
                line,
                message: format!("expected 2 fields (`group,member`), found {}", record.len()),
            });
            continue;
        }
        let name = match valid_name(record.get(0)) {
            Ok(name) => name,
            Err(error) => {
                errors.push(RowError {
                    line,
                    message: error.message,
                });
                continue;
            }
        };
        let member = record.get(1).unwrap_or_default().to_string();
        let mut row_ok = true;
        let folded = fold(&name);
        if !by_name.contains_key(&folded) {
            if let Some(existing) = engine.metadata(&name_key(ws, &name))? {
                errors.push(RowError {
                    line,
                    message: format!(
                        "workspace `{ws}` already has a group named `{name}` (`{existing}`); names are compared ignoring case"
                    ),
                });
                row_ok = false;
            }
        }
        if !member.is_empty() {
            let reason = match member_reasons.get(&member) {
                Some(reason) => reason.clone(),
                None => {
                    let reason = not_a_member_reason(engine, ws, &member)?;
                    member_reasons.insert(member.clone(), reason.clone());
                    reason
                }
            };
            if let Some(reason) = reason {
                errors.push(RowError {
                    line,
                    message: format!("group members must be members of the workspace: {reason}"),
                });
                row_ok = false;
            }
        }
        if !row_ok {
            continue;
        }
        let slot = *by_name.entry(folded).or_insert_with(|| {
            planned.push(Planned {
                name,
                members: BTreeSet::new(),
            });
            planned.len() - 1
        });
        if !member.is_empty() {
            if let Some(group) = planned.get_mut(slot) {
                group.members.insert(member);
            }
        }
    }
    if !header_seen {
        errors.push(RowError {
            line: 1,
            message: "the file is empty: expected the header `group,member` and rows".to_string(),
        });
    }
    if errors.is_empty() {
        Ok(Ok(planned))
    } else {
        Ok(Err(errors))
    }
}

/// Creates every planned group in one transaction.
fn create_all(engine: &Engine, ws: &str, planned: Vec<Planned>) -> Result<Imported, ApiError> {
    let mut transaction = Transaction::default();
    let mut created = Vec::new();
    let mut all_members = BTreeSet::new();
    for group in planned {
        let id = new_group_id()?;
        let resource = object("group", &id);
        transaction
            .preconditions
            .push(must_not_match(RelationshipFilter {
                resource_type: Some("group".to_string()),
                resource_id: Some(id.clone()),
                ..RelationshipFilter::default()
            }));
        transaction.updates.push(update(
            Operation::Create,
            tuple(
                resource.clone(),
                "workspace",
                SubjectRef::object("workspace", ws),
            ),
        ));
        for member in &group.members {
            transaction.updates.push(update(
                Operation::Touch,
                tuple(resource.clone(), "member", user(member)),
            ));
            all_members.insert(member.clone());
        }
        let info = GroupInfo {
            name: group.name,
            description: String::new(),
        };
        for (key, value) in [
            (name_key(ws, &info.name), id.clone()),
            (group_key(ws, &id), info.encode()?),
        ] {
            transaction.metadata_conditions.push(MetadataCondition {
                key: key.clone(),
                expected: None,
            });
            transaction.metadata.push(MetadataWrite {
                key,
                value: Some(value),
            });
        }
        created.push(GroupSummary {
            id,
            name: info.name,
            description: info.description,
            member_count: group.members.len(),
        });
    }
    transaction.preconditions.extend(
        all_members
            .iter()
            .map(|member| must_match(role_filter(ws, member))),
    );
    if !created.is_empty() {
        commit(engine, &transaction, changed_concurrently)?;
    }
    Ok(Imported { groups: created })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A store with the shipped schema and workspace `ws` (alice admin, bob editor).
    fn engine() -> &'static Engine {
        static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
        ENGINE.get_or_init(|| {
            let engine = Engine::in_memory().unwrap();
            engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
            let grant = |text: &str| pemba_engine::Update {
                operation: Operation::Touch,
                tuple: pemba_engine::Tuple::parse(text).unwrap(),
            };
            engine
                .write(
                    &[
                        grant("workspace:ws#admin@user:alice"),
                        grant("workspace:ws#editor@user:bob"),
                    ],
                    &[],
                )
                .unwrap();
            engine
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Hostile input: any bytes are planned or refused, never a panic.
        #[test]
        fn any_bytes_are_planned_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = plan(engine(), "ws", &bytes);
        }

        /// CSV-shaped input with quotes, commas, Unicode and blank fields: every refused row
        /// names a line of the file.
        #[test]
        fn csv_like_rows_report_lines_within_the_file(
            rows in proptest::collection::vec(("[a-zA-Z é,\"]{0,60}", "(alice|bob|carol|ws|g1|)[,\" ]{0,2}"), 0..40)
        ) {
            let mut text = String::from("group,member\n");
            for (group, member) in &rows {
                text.push_str(&format!("{group},{member}\n"));
            }
            let lines = text.lines().count() as u64;
            if let Ok(Err(errors)) = plan(engine(), "ws", text.as_bytes()) {
                for error in errors {
                    prop_assert!(error.line >= 1 && error.line <= lines, "line {} of {lines}", error.line);
                }
            }
        }
    }
}
