//! `/v1/schema/write` and `/v1/schema/read`.

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use pemba_engine::QueryError;
use serde::{Deserialize, Serialize};

use super::Route;
use crate::error::{ApiError, ApiJson};
use crate::wire::{self, Token, WireConsistency};
use crate::AppState;

/// The routes of this group.
pub fn routes() -> Vec<Route> {
    vec![
        Route::post::<WriteSchemaRequest>("/v1/schema/write", post(write)),
        Route::post::<ReadSchemaRequest>("/v1/schema/read", post(read)),
    ]
}

/// `WriteSchemaRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteSchemaRequest {
    /// Schema text.
    #[serde(default)]
    pub schema: String,
}

/// `WriteSchemaResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteSchemaResponse {
    /// The revision of the schema write.
    pub written_at: Token,
}

async fn write(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WriteSchemaRequest>,
) -> Result<Json<WriteSchemaResponse>, ApiError> {
    if body.schema.trim().is_empty() {
        return Err(ApiError::invalid("schema: the schema text is empty"));
    }
    let engine = state.engine.clone();
    // Compiling is cheap, but the write fsyncs and rebuilds the index.
    let revision = tokio::task::spawn_blocking(move || engine.write_schema(&body.schema)).await??;
    Ok(Json(WriteSchemaResponse {
        written_at: Token::revision(revision),
    }))
}

/// `ReadSchemaRequest` (`{}`; a consistency may be given).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadSchemaRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
}

/// `ReadSchemaResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadSchemaResponse {
    /// The schema text as written.
    pub schema_text: String,
    /// The revision read at.
    pub read_at: Token,
}

async fn read(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReadSchemaRequest>,
) -> Result<Json<ReadSchemaResponse>, ApiError> {
    let consistency = wire::consistency(body.consistency.as_ref())?;
    match state.engine.read_schema(consistency) {
        Ok(schema) => Ok(Json(ReadSchemaResponse {
            schema_text: schema.value,
            read_at: Token::revision(schema.revision),
        })),
        Err(QueryError::NoSchema) => Err(ApiError::not_found("no schema has been written yet")),
        Err(error) => Err(error.into()),
    }
}
