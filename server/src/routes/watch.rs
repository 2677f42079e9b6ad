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
use pemba_engine::{Change, Operation, RelationshipFilter, Revision};
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

/// A place in [`AppState::watchers`]: taken when a stream opens, given back on drop.
struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The changes of one commit that a watch stream sends.
pub(crate) struct Matched {
    /// The revision the commit made.
    pub(crate) revision: Revision,
    /// Its changes that match the request, in commit order.
    pub(crate) changes: Vec<Change>,
}

/// An open watch, shared by the HTTP and gRPC streams: what it matches, where in the
/// change log it is, and its place among [`Limits::max_watch_streams`](crate::Limits).
pub(crate) struct Watcher {
    types: Vec<String>,
    filters: Vec<RelationshipFilter>,
    after: Revision,
    /// Whether commits that changed no relationship (metadata-only transactions, schema
    /// writes) are returned too; see [`Watcher::with_empty_commits`].
    empty_commits: bool,
    commits: tokio::sync::watch::Receiver<Revision>,
    stop: tokio::sync::watch::Receiver<bool>,
    _slot: Slot,
}

impl Watcher {
    /// Opens a watch of `types` or `filters` (not both) from `start` (none: from now).
    /// Refuses unknown types, a start revision this store never made, and a stream over
    /// the cap (`RESOURCE_EXHAUSTED`, 429).
    pub(crate) fn open(
        state: &AppState,
        types: Vec<String>,
        filters: Vec<RelationshipFilter>,
        start: Option<Revision>,
    ) -> Result<Self, ApiError> {
        if !types.is_empty() && !filters.is_empty() {
            return Err(ApiError::invalid(
                "optionalObjectTypes and optionalRelationshipFilters cannot both be set",
            ));
        }
        if let Some(schema) = state.engine.schema() {
            for (i, name) in types.iter().enumerate() {
                if schema.compiled.type_by_name(name).is_none() {
                    return Err(ApiError::invalid(format!(
                        "optionalObjectTypes[{i}]: object type `{name}` is not defined in the schema"
                    )));
                }
            }
        }
        // Subscribe before reading the revision so no commit falls between the two.
        let commits = state.engine.subscribe();
        let mut newest = state.engine.revision();
        if let Some(wanted) = start.filter(|wanted| *wanted > newest) {
            // A cursor from another replica sharing the store: catch up to it first (one
            // log read; refused as from the future if no replica committed it).
            newest = state
                .engine
                .freshen_for(pemba_engine::Consistency::AtLeastAsFresh(wanted))
                .map_err(|error| match error {
                    pemba_engine::QueryError::Token(_) => ApiError::invalid(format!(
                        "optionalStartCursor: revision {} is newer than the newest ({}): the token does not come from this store",
                        wanted.0, newest.0
                    )),
                    other => other.into(),
                })?;
        }
        let after = match start {
            Some(revision) if revision > newest => {
                return Err(ApiError::invalid(format!(
                    "optionalStartCursor: revision {} is newer than the newest ({}): the token does not come from this store",
                    revision.0, newest.0
                )))
            }
            Some(revision) => revision,
            None => newest,
        };
        let open = state.watchers.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(state.watchers.clone());
        if open >= state.limits.max_watch_streams {
            return Err(ApiError::exhausted(format!(
                "too many watch streams: the limit is {}",
                state.limits.max_watch_streams
            )));
        }
        Ok(Watcher {
            types,
            filters,
            after,
            empty_commits: false,
            commits,
            stop: state.stop.subscribe(),
            _slot: slot,
        })
    }

    /// Also returns each commit that changed no relationship at all (a transaction that
    /// only wrote application metadata, such as a group's new name, or a schema write), as
    /// a [`Matched`] without changes. SpiceDB's watch never sends such commits; followers
    /// of application state need to know that one happened.
    pub(crate) fn with_empty_commits(mut self) -> Self {
        self.empty_commits = true;
        self
    }

    /// The revision this watcher has read the change log through: where it started, until
    /// [`Watcher::next`] moves it on.
    pub(crate) fn position(&self) -> Revision {
        self.after
    }

    /// The next commits with matching changes, waiting for new commits when caught up.
    /// `None` when the stream should end: `closed` resolved (the client left), or the
    /// server is shutting down.
    pub(crate) async fn next(
        &mut self,
        state: &AppState,
        closed: impl std::future::Future<Output = ()>,
    ) -> Option<Result<Vec<Matched>, ApiError>> {
        tokio::pin!(closed);
        loop {
            let engine = state.engine.clone();
            let after = self.after;
            let sets = match tokio::task::spawn_blocking(move || engine.changes_after(after, BATCH))
                .await
                .map_err(ApiError::from)
                .and_then(|r| r.map_err(ApiError::from))
            {
                Ok(sets) => sets,
                Err(error) => return Some(Err(error)),
            };
            let caught_up = sets.len() < BATCH;
            let mut matched = Vec::new();
            for set in sets {
                self.after = set.revision;
                let empty = set.changes.is_empty();
                let changes: Vec<Change> = set
                    .changes
                    .into_iter()
                    .filter(|c| {
                        (self.types.is_empty()
                            || self.types.contains(&c.tuple.resource.object_type))
                            && (self.filters.is_empty()
                                || self.filters.iter().any(|f| f.matches(&c.tuple)))
                    })
                    .collect();
                if !changes.is_empty() || (empty && self.empty_commits) {
                    matched.push(Matched {
                        revision: set.revision,
                        changes,
                    });
                }
            }
            if !matched.is_empty() {
                return Some(Ok(matched));
            }
            if !caught_up {
                continue;
            }
            if *self.stop.borrow() {
                return None;
            }
            // Wait for a commit newer than what was read.
            if *self.commits.borrow_and_update() <= self.after {
                tokio::select! {
                    changed = self.commits.changed() => if changed.is_err() { return None },
                    () = &mut closed => return None,
                    _ = self.stop.changed() => return None,
                }
            }
        }
    }
}

/// The names of `optionalUpdateKinds` this server honours (relationship updates only).
pub(crate) fn update_kind_supported(kind: &str) -> bool {
    kind == "WATCH_KIND_UNSPECIFIED" || kind == "WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES"
}

async fn watch(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WatchRequest>,
) -> Result<Response, ApiError> {
    for kind in &body.optional_update_kinds {
        if !update_kind_supported(kind) {
            return Err(ApiError::invalid(format!(
                "optionalUpdateKinds: `{kind}` is not supported"
            )));
        }
    }
    let filters = body
        .optional_relationship_filters
        .iter()
        .enumerate()
        .map(|(i, f)| wire::filter(f, &format!("optionalRelationshipFilters[{i}]")))
        .collect::<Result<Vec<RelationshipFilter>, _>>()?;
    let start = body
        .optional_start_cursor
        .as_ref()
        .map(|token| wire::revision(token, "optionalStartCursor"))
        .transpose()?;
    let mut watcher = Watcher::open(&state, body.optional_object_types, filters, start)?;
    Ok(stream::respond(&state.clone(), move |lines| async move {
        loop {
            let matched = match watcher.next(&state, lines.closed()).await {
                None => return,
                Some(Ok(matched)) => matched,
                Some(Err(error)) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            };
            for set in matched {
                let result = WatchResult {
                    updates: set
                        .changes
                        .iter()
                        .map(|c| WatchUpdate {
                            operation: match c.operation {
                                Operation::Delete => "OPERATION_DELETE",
                                Operation::Create | Operation::Touch => "OPERATION_TOUCH",
                            }
                            .to_string(),
                            relationship: wire::to_relationship(&c.tuple),
                        })
                        .collect(),
                    changes_through: Token::revision(set.revision),
                };
                if lines.result(&result).await.is_err() {
                    return;
                }
            }
        }
    }))
}
