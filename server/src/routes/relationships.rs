//! `/v1/relationships/*`: write, delete, read, importbulk, exportbulk.
//!
//! Writes fsync and reads scan storage, so both run on the blocking pool.

use std::collections::HashSet;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Json;
use pemba_engine::{
    Answer, Consistency, Operation, OverLimit, ReadPage, RelationshipFilter, Tuple, Update,
};
use serde::{Deserialize, Serialize};

use super::Route;
use crate::error::{ApiError, ApiJson};
use crate::stream;
use crate::wire::{
    self, Relationship, Token, WireConsistency, WirePrecondition, WireRelationshipFilter,
};
use crate::AppState;

/// The importbulk path: its body limit is [`crate::Limits::max_import_body_bytes`].
pub const IMPORT_PATH: &str = "/v1/relationships/importbulk";

/// The routes of this group.
pub fn routes() -> Vec<Route> {
    vec![
        Route::post::<WriteRequest>("/v1/relationships/write", post(write)),
        Route::post::<DeleteRequest>("/v1/relationships/delete", post(delete)),
        Route::post::<ReadRequest>("/v1/relationships/read", post(read)),
        Route::post::<ImportRequest>(IMPORT_PATH, post(import_bulk)),
        Route::post::<ExportRequest>("/v1/relationships/exportbulk", post(export_bulk)),
    ]
}

/// `RelationshipUpdate`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireUpdate {
    /// `OPERATION_CREATE`, `OPERATION_TOUCH` or `OPERATION_DELETE`.
    pub operation: String,
    /// The relationship.
    pub relationship: Relationship,
}

/// `WriteRelationshipsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteRequest {
    /// The updates, applied all or nothing.
    #[serde(default)]
    pub updates: Vec<WireUpdate>,
    /// Checked before anything is applied.
    #[serde(default)]
    pub optional_preconditions: Vec<WirePrecondition>,
    /// Not supported; refused when non-empty.
    #[serde(default)]
    pub optional_transaction_metadata: Option<serde_json::Value>,
}

/// `WriteRelationshipsResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResponse {
    /// The revision of the write.
    pub written_at: Token,
}

fn operation(text: &str, field: &str) -> Result<Operation, ApiError> {
    match text {
        "OPERATION_CREATE" => Ok(Operation::Create),
        "OPERATION_TOUCH" => Ok(Operation::Touch),
        "OPERATION_DELETE" => Ok(Operation::Delete),
        other => Err(ApiError::invalid(format!(
            "{field}: expected `OPERATION_CREATE`, `OPERATION_TOUCH` or `OPERATION_DELETE`, found `{other}`"
        ))),
    }
}

/// The updates of a write request, each decoded by the protocol's `operation` and
/// `relationship` (given the field they decode, `updates[i].operation` and
/// `updates[i].relationship`, for their errors), in order, stopping at the first error:
/// the one conversion both protocols' writes share.
pub(crate) fn decode_updates<U, E>(
    updates: &[U],
    operation: impl Fn(&U, &str) -> Result<Operation, E>,
    relationship: impl Fn(&U, &str) -> Result<Tuple, E>,
) -> Result<Vec<Update>, E> {
    updates
        .iter()
        .enumerate()
        .map(|(i, update)| {
            Ok(Update {
                operation: operation(update, &format!("updates[{i}].operation"))?,
                tuple: relationship(update, &format!("updates[{i}].relationship"))?,
            })
        })
        .collect()
}

/// A decoded write, run on the blocking pool (it commits to storage): the one path both
/// protocols' writes take once their request is decoded and within its limits.
pub(crate) async fn write_on_pool(
    state: &AppState,
    updates: Vec<Update>,
    preconditions: Vec<pemba_engine::Precondition>,
) -> Result<Result<pemba_engine::Revision, pemba_engine::WriteError>, tokio::task::JoinError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.write(updates, preconditions)).await
}

async fn write(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WriteRequest>,
) -> Result<Json<WriteResponse>, ApiError> {
    let max = state.limits.max_updates_per_write;
    if body.updates.len() > max {
        return Err(ApiError::invalid(format!(
            "updates: {} updates exceed the limit of {max} per write",
            body.updates.len()
        )));
    }
    if body.updates.is_empty() {
        return Err(ApiError::invalid(
            "updates: at least one update is required",
        ));
    }
    if body
        .optional_transaction_metadata
        .as_ref()
        .is_some_and(|m| !m.is_null() && m != &serde_json::json!({}))
    {
        return Err(ApiError::invalid(
            "optionalTransactionMetadata: transaction metadata is not supported",
        ));
    }
    let updates = decode_updates(
        &body.updates,
        |u, field| operation(&u.operation, field),
        |u, field| wire::relationship(&u.relationship, field),
    )?;
    let preconditions =
        wire::preconditions(&body.optional_preconditions, state.limits.max_preconditions)?;
    let revision = write_on_pool(&state, updates, preconditions).await??;
    Ok(Json(WriteResponse {
        written_at: Token::revision(revision),
    }))
}

/// `DeleteRelationshipsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteRequest {
    /// Which relationships to delete.
    #[serde(default)]
    pub relationship_filter: WireRelationshipFilter,
    /// Checked before anything is deleted.
    #[serde(default)]
    pub optional_preconditions: Vec<WirePrecondition>,
    /// Delete at most this many (0 or absent: all).
    #[serde(default)]
    pub optional_limit: Option<u64>,
    /// With a limit: delete up to it instead of failing when more match.
    #[serde(default)]
    pub optional_allow_partial_deletions: bool,
    /// Not supported; refused when non-empty.
    #[serde(default)]
    pub optional_transaction_metadata: Option<serde_json::Value>,
}

/// `DeleteRelationshipsResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResponse {
    /// The revision of the deletion.
    pub deleted_at: Token,
    /// `DELETION_PROGRESS_COMPLETE` or `DELETION_PROGRESS_PARTIAL`.
    pub deletion_progress: String,
    /// How many were deleted (a string, as protobuf JSON writes 64-bit integers).
    pub relationships_deleted_count: String,
}

/// A decoded delete, run on the blocking pool (it scans and writes storage): the one path
/// both protocols' deletes take once their request is decoded and within its limits.
/// `allow_partial` is SpiceDB's `optionalAllowPartialDeletions`.
pub(crate) async fn delete_on_pool(
    state: &AppState,
    filter: pemba_engine::RelationshipFilter,
    preconditions: Vec<pemba_engine::Precondition>,
    limit: Option<usize>,
    allow_partial: bool,
) -> Result<
    Result<pemba_engine::Answer<pemba_engine::Deleted>, pemba_engine::WriteError>,
    tokio::task::JoinError,
> {
    let request = pemba_engine::DeleteRequest {
        filter,
        preconditions,
        limit,
        over_limit: if allow_partial {
            OverLimit::DeletePartially
        } else {
            OverLimit::Refuse
        },
    };
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.delete(&request)).await
}

async fn delete(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DeleteRequest>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let filter = wire::filter(&body.relationship_filter, "relationshipFilter")?;
    if filter.is_empty() {
        return Err(ApiError::invalid(
            "relationshipFilter: set at least one field (a filter matching everything is refused)",
        ));
    }
    let preconditions =
        wire::preconditions(&body.optional_preconditions, state.limits.max_preconditions)?;
    let limit = wire::page_size(
        body.optional_limit,
        state.limits.max_delete_limit,
        "optionalLimit",
    )?;
    let outcome = delete_on_pool(
        &state,
        filter,
        preconditions,
        limit,
        body.optional_allow_partial_deletions,
    )
    .await??;
    Ok(Json(DeleteResponse {
        deleted_at: Token::revision(outcome.revision),
        deletion_progress: if outcome.value.complete {
            "DELETION_PROGRESS_COMPLETE"
        } else {
            "DELETION_PROGRESS_PARTIAL"
        }
        .to_string(),
        relationships_deleted_count: outcome.value.count.to_string(),
    }))
}

/// `ReadRelationshipsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// Which relationships.
    #[serde(default)]
    pub relationship_filter: WireRelationshipFilter,
    /// At most this many (0 or absent: all, streamed in pages).
    #[serde(default)]
    pub optional_limit: Option<u64>,
    /// Continue after this cursor.
    #[serde(default)]
    pub optional_cursor: Option<Token>,
}

/// One `ReadRelationshipsResponse` line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadResult {
    /// Revision read at.
    pub read_at: Token,
    /// The relationship.
    pub relationship: Relationship,
    /// Pass as `optionalCursor` to continue after this result.
    pub after_result_cursor: Token,
}

pub(crate) const READ_CURSOR: &str = "rd";
pub(crate) const EXPORT_CURSOR: &str = "ex";

pub(crate) fn tuple_cursor(cursor: Option<&Token>, kind: &str) -> Result<Option<Tuple>, ApiError> {
    wire::decode_cursor(cursor, kind)?
        .map(|text| {
            Tuple::parse(&text).map_err(|_| ApiError::invalid("optionalCursor: malformed cursor"))
        })
        .transpose()
}

/// Reads one page on the blocking pool.
pub(crate) async fn read_page(
    state: &AppState,
    consistency: Consistency,
    filter: RelationshipFilter,
    after: Option<Tuple>,
    limit: usize,
) -> Result<Answer<Vec<Tuple>>, ApiError> {
    let engine = state.engine.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let page = ReadPage {
            after: after.as_ref(),
            limit,
        };
        engine.read(consistency, &filter, page)
    })
    .await??)
}

async fn read(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReadRequest>,
) -> Result<Response, ApiError> {
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let filter = wire::filter(&body.relationship_filter, "relationshipFilter")?;
    let max = state.limits.max_page_size;
    let limit = wire::page_size(body.optional_limit, max, "optionalLimit")?;
    let after = tuple_cursor(body.optional_cursor.as_ref(), READ_CURSOR)?;
    // The first page is read before answering so a bad request gets a proper status.
    let page_size = limit.unwrap_or(max);
    let first = read_page(&state, consistency, filter.clone(), after, page_size).await?;
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let Answer {
            value: mut page,
            mut revision,
        } = first;
        loop {
            let full = page.len() == page_size;
            let last = page.last().cloned();
            for tuple in page {
                let result = ReadResult {
                    read_at: Token::revision(revision),
                    relationship: wire::to_relationship(&tuple),
                    after_result_cursor: wire::encode_cursor(READ_CURSOR, &tuple.to_string()),
                };
                if lines.result(&result).await.is_err() {
                    return;
                }
            }
            if limit.is_some() || !full {
                return;
            }
            match read_page(&state, consistency, filter.clone(), last, page_size).await {
                Ok(next) => {
                    revision = next.revision;
                    page = next.value;
                }
                Err(error) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            }
        }
    }))
}

/// `ImportBulkRelationshipsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRequest {
    /// The relationships, stored in one transaction (existing ones are kept, not an error).
    #[serde(default)]
    pub relationships: Vec<Relationship>,
}

/// `ImportBulkRelationshipsResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportResponse {
    /// How many were loaded (a string, as protobuf JSON writes 64-bit integers).
    pub num_loaded: String,
    /// The revision of the import.
    pub written_at: Token,
}

async fn import_bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<ImportResponse>, ApiError> {
    let max = state.limits.max_import_relationships;
    if body.relationships.len() > max {
        return Err(ApiError::invalid(format!(
            "relationships: {} relationships exceed the limit of {max} per importbulk request",
            body.relationships.len()
        )));
    }
    let mut seen = HashSet::with_capacity(body.relationships.len());
    let mut updates = Vec::with_capacity(body.relationships.len());
    for (i, relationship) in body.relationships.iter().enumerate() {
        let tuple = wire::relationship(relationship, &format!("relationships[{i}]"))?;
        // Duplicates in one import are harmless: keep the first.
        if seen.insert(tuple.clone()) {
            updates.push(Update::touch(tuple));
        }
    }
    let loaded = updates.len();
    let engine = state.engine.clone();
    let revision = if updates.is_empty() {
        engine.revision()
    } else {
        tokio::task::spawn_blocking(move || engine.write(updates, &[])).await??
    };
    Ok(Json(ImportResponse {
        num_loaded: loaded.to_string(),
        written_at: Token::revision(revision),
    }))
}

/// `ExportBulkRelationshipsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// Relationships per line (0 or absent: the export page limit).
    #[serde(default)]
    pub optional_limit: Option<u64>,
    /// Continue after this cursor.
    #[serde(default)]
    pub optional_cursor: Option<Token>,
    /// Export only these.
    #[serde(default)]
    pub optional_relationship_filter: Option<WireRelationshipFilter>,
}

/// One `ExportBulkRelationshipsResponse` line: a page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    /// Pass as `optionalCursor` to continue after this page.
    pub after_result_cursor: Token,
    /// The page.
    pub relationships: Vec<Relationship>,
    /// Revision read at.
    pub read_at: Token,
}

async fn export_bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let filter = match &body.optional_relationship_filter {
        Some(f) => wire::filter(f, "optionalRelationshipFilter")?,
        None => RelationshipFilter::default(),
    };
    let max = state.limits.max_export_page_size;
    let page_size = wire::page_size(body.optional_limit, max, "optionalLimit")?.unwrap_or(max);
    let after = tuple_cursor(body.optional_cursor.as_ref(), EXPORT_CURSOR)?;
    let first = read_page(&state, consistency, filter.clone(), after, page_size).await?;
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let Answer {
            value: mut page,
            mut revision,
        } = first;
        loop {
            let Some(last) = page.last().cloned() else {
                return;
            };
            let full = page.len() == page_size;
            let result = ExportResult {
                after_result_cursor: wire::encode_cursor(EXPORT_CURSOR, &last.to_string()),
                relationships: page.iter().map(wire::to_relationship).collect(),
                read_at: Token::revision(revision),
            };
            if lines.result(&result).await.is_err() || !full {
                return;
            }
            match read_page(&state, consistency, filter.clone(), Some(last), page_size).await {
                Ok(next) => {
                    revision = next.revision;
                    page = next.value;
                }
                Err(error) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            }
        }
    }))
}
