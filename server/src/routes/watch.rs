//! `/v1/watch`: a stream that stays open and sends every committed change, in commit
//! order, once, each batch with the revision it commits (`changesThrough`).
//!
//! The loop reads the change log after the last revision sent (on the blocking pool, as
//! it reads storage), sends what matches, then sleeps on the engine's revision channel
//! until the next commit, the client leaving, or server shutdown.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use pemba_engine::{Operation, RelationshipFilter, Revision};
use serde::{Deserialize, Serialize};

use super::Route;
use crate::error::{ApiError, ApiJson};
use crate::stream;
use crate::wire::{self, Relationship, Token, WireRelationshipFilter};
use crate::AppState;

/// The routes of this group.
pub fn routes() -> Vec<Route> {
    vec![Route::post::<WatchRequest>("/v1/watch", post(watch))]
}

/// `WatchRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchRequest {
    /// Only changes to resources of these types (empty: all).
    #[serde(default)]
    pub optional_object_types: Vec<String>,
    /// Changes after this revision (absent: from now on).
    #[serde(default)]
    pub optional_start_cursor: Option<Token>,
    /// Only changes matching one of these filters (empty: all).
    #[serde(default)]
    pub optional_relationship_filters: Vec<WireRelationshipFilter>,
    /// Only `WATCH_KIND_UNSPECIFIED` / `WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES` are supported.
    #[serde(default)]
    pub optional_update_kinds: Vec<String>,
}

/// SpiceDB's `RelationshipUpdate` as sent by watch.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchUpdate {
    /// `OPERATION_TOUCH` or `OPERATION_DELETE`.
    pub operation: String,
    /// The relationship.
    pub relationship: Relationship,
}

/// One `WatchResponse` line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchResult {
    /// The changes of one commit that match the request.
    pub updates: Vec<WatchUpdate>,
    /// The revision of that commit: resume with it as `optionalStartCursor`.
    pub changes_through: Token,
}

/// How many change sets one log read returns.
const BATCH: usize = 256;

/// Decrements the open-stream count when the stream ends, however it ends.
struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn watch(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WatchRequest>,
) -> Result<Response, ApiError> {
    for kind in &body.optional_update_kinds {
        if kind != "WATCH_KIND_UNSPECIFIED" && kind != "WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES" {
            return Err(ApiError::invalid(format!(
                "optionalUpdateKinds: `{kind}` is not supported"
            )));
        }
    }
    if !body.optional_object_types.is_empty() && !body.optional_relationship_filters.is_empty() {
        return Err(ApiError::invalid(
            "optionalObjectTypes and optionalRelationshipFilters cannot both be set",
        ));
    }
    let filters = body
        .optional_relationship_filters
        .iter()
        .enumerate()
        .map(|(i, f)| wire::filter(f, &format!("optionalRelationshipFilters[{i}]")))
        .collect::<Result<Vec<RelationshipFilter>, _>>()?;
    if let Some(schema) = state.engine.schema() {
        for (i, name) in body.optional_object_types.iter().enumerate() {
            if schema.compiled.type_by_name(name).is_none() {
                return Err(ApiError::invalid(format!(
                    "optionalObjectTypes[{i}]: object type `{name}` is not defined in the schema"
                )));
            }
        }
    }
    let types = body.optional_object_types;
    // Subscribe before reading the revision so no commit falls between the two.
    let mut commits = state.engine.subscribe();
    let start = match &body.optional_start_cursor {
        Some(token) => {
            let revision = wire::revision(token, "optionalStartCursor")?;
            if revision > state.engine.revision() {
                return Err(ApiError::invalid(format!(
                    "optionalStartCursor: revision {} is newer than the newest ({}): the token does not come from this store",
                    revision.0,
                    state.engine.revision().0
                )));
            }
            revision
        }
        None => state.engine.revision(),
    };
    let open = state.watchers.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(state.watchers.clone());
    if open >= state.limits.max_watch_streams {
        return Err(ApiError::exhausted(format!(
            "too many watch streams: the limit is {}",
            state.limits.max_watch_streams
        )));
    }
    let mut stop = state.stop.subscribe();
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let _slot = slot;
        let mut after: Revision = start;
        loop {
            let engine = state.engine.clone();
            let sets = match tokio::task::spawn_blocking(move || engine.changes_after(after, BATCH))
                .await
                .map_err(ApiError::from)
                .and_then(|r| r.map_err(ApiError::from))
            {
                Ok(sets) => sets,
                Err(error) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            };
            let caught_up = sets.len() < BATCH;
            for set in sets {
                after = set.revision;
                let updates: Vec<WatchUpdate> = set
                    .changes
                    .iter()
                    .filter(|c| {
                        (types.is_empty() || types.contains(&c.tuple.resource.object_type))
                            && (filters.is_empty() || filters.iter().any(|f| f.matches(&c.tuple)))
                    })
                    .map(|c| WatchUpdate {
                        operation: match c.operation {
                            Operation::Delete => "OPERATION_DELETE",
                            Operation::Create | Operation::Touch => "OPERATION_TOUCH",
                        }
                        .to_string(),
                        relationship: wire::to_relationship(&c.tuple),
                    })
                    .collect();
                if updates.is_empty() {
                    continue;
                }
                let result = WatchResult {
                    updates,
                    changes_through: Token::revision(set.revision),
                };
                if lines.result(&result).await.is_err() {
                    return;
                }
            }
            if !caught_up {
                continue;
            }
            if *stop.borrow() {
                return;
            }
            // Wait for a commit newer than what was sent.
            if *commits.borrow_and_update() <= after {
                tokio::select! {
                    changed = commits.changed() => if changed.is_err() { return },
                    () = lines.closed() => return,
                    _ = stop.changed() => return,
                }
            }
        }
    }))
}
