//! `GET /v1/workspaces/{ws}/watch`: a stream that says when something a workspace's
//! screens show has changed (its members and roles, its groups' members, names and
//! descriptions, its connections and workbooks and their grants), so that a client such
//! as the console re-reads what it shows.
//!
//! SpiceDB's watch (`/v1/watch`) carries relationship changes only, and stays that way
//! for SpiceDB's clients. A group's name and description are application metadata beside
//! the relationships: a rename commits no relationship change at all, only a revision.
//! This stream follows the same change log, commits that changed no relationship
//! included ([`Watcher::with_empty_commits`]), and for those compares the workspace's
//! group directory with the one it read before, so a rename is news in its workspace and
//! nowhere else. The directory read is the service's `list_groups`, which also checks
//! again that the actor may still see the workspace: a member removed while watching gets
//! the refusal as the stream's last line.

use std::collections::HashSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use pemba_engine::Change;
use serde::{Deserialize, Serialize};

use super::{call, Ids};
use crate::error::ApiError;
use crate::groups::service::relations::scoped_id;
use crate::groups::vocabulary::{connection, group, workbook, workspace};
use crate::groups::{Actor, GroupSummary};
use crate::routes::watch::{Matched, Watcher};
use crate::stream;
use crate::wire::{self, Token};
use crate::AppState;

/// The query of `GET /v1/workspaces/{ws}/watch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchQuery {
    /// Follow from just after this revision token (a `changesThrough` a stream sent
    /// before), so a client that reconnects misses nothing; absent: from now.
    after: Option<String>,
}

/// One line of the stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkspaceChanges {
    /// The revision the stream has followed the workspace through: resume with its token
    /// as `?after=`.
    changes_through: Token,
    /// Whether something the workspace shows changed up to `changes_through`. Only the
    /// first line, sent at once, says `false`: anything read after it is current as of
    /// then, and every later change comes as a line with `true`.
    changed: bool,
}

/// `GET /v1/workspaces/{ws}/watch?after=TOKEN`: any member (`workspace#view_groups`).
pub(super) async fn watch_workspace(
    State(state): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
    query: Result<Query<WatchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!("invalid query string: {}", rejection.body_text()))
    })?;
    let start = query
        .after
        .map(|token| wire::revision(&Token { token }, "after"))
        .transpose()?;
    // Opened before the directory is read, so every group created after that read has
    // its creation (the link to the workspace) in what the watcher reads.
    let watcher = Watcher::open(&state, Vec::new(), Vec::new(), start)?.with_empty_commits();
    let mut follower = Follower {
        directory: read_directory(&state, &actor, &ws).await?,
        compare: start.is_none(),
        actor,
        ws,
    };
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let mut watcher = watcher;
        let first = WorkspaceChanges {
            changes_through: Token::revision(watcher.position()),
            changed: false,
        };
        if lines.result(&first).await.is_err() {
            return;
        }
        loop {
            let matched = match watcher.next(&state, lines.closed()).await {
                None => return,
                Some(Ok(matched)) => matched,
                Some(Err(error)) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            };
            match follower.changed(&state, &matched).await {
                Ok(false) => {}
                Ok(true) => {
                    let line = WorkspaceChanges {
                        changes_through: Token::revision(watcher.position()),
                        changed: true,
                    };
                    if lines.result(&line).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = lines.error(&error).await;
                    return;
                }
            }
        }
    }))
}

/// What a workspace stream knows of its workspace between commits.
struct Follower {
    actor: Actor,
    ws: String,
    /// The directory as last read: the group ids tell which `group:` changes belong to
    /// the workspace, the names and descriptions whether a record-only commit changed it.
    directory: Vec<GroupSummary>,
    /// Whether a record-only commit is compared with `directory`. Not on a resumed
    /// stream: the client read before `after`, and what it read then is unknown, so the
    /// first record-only commit counts as a change.
    compare: bool,
}

impl Follower {
    /// Whether `matched` (the next commits of the log) changed anything of the
    /// workspace; reads the directory again (checking the actor's access again) when a
    /// commit did or may have.
    async fn changed(&mut self, state: &AppState, matched: &[Matched]) -> Result<bool, ApiError> {
        let ids: HashSet<&str> = self.directory.iter().map(|g| g.id.as_str()).collect();
        let touched = matched
            .iter()
            .flat_map(|m| &m.changes)
            .any(|change| concerns(&self.ws, &ids, change));
        let record_only = matched.iter().any(|m| m.changes.is_empty());
        if !touched && !record_only {
            return Ok(false);
        }
        let directory = read_directory(state, &self.actor, &self.ws).await?;
        let changed = touched || !self.compare || directory != self.directory;
        self.directory = directory;
        self.compare = true;
        Ok(changed)
    }
}

/// The workspace's groups, as `actor` may see them (refused when they may not).
async fn read_directory(
    state: &AppState,
    actor: &Actor,
    ws: &str,
) -> Result<Vec<GroupSummary>, ApiError> {
    let (actor, ws) = (actor.clone(), ws.to_string());
    call(state, move |g| g.list_groups(&actor, &ws, None)).await
}

/// Whether `change` is to something of workspace `ws` whose groups are `groups`: the
/// workspace's roles, its groups' members, its connections and workbooks, or anything's
/// link to the workspace (how a new or deleted group shows before it is in `groups`).
fn concerns(ws: &str, groups: &HashSet<&str>, change: &Change) -> bool {
    let resource = &change.tuple.resource;
    let subject = &change.tuple.subject.object;
    if subject.object_type == workspace::TYPE && subject.object_id == ws {
        return true;
    }
    match resource.object_type.as_str() {
        workspace::TYPE => resource.object_id == ws,
        group::TYPE => groups.contains(resource.object_id.as_str()),
        connection::TYPE | workbook::TYPE => resource.object_id.starts_with(&scoped_id(ws, "")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use futures_util::StreamExt;
    use pemba_engine::{Engine, Operation, Revision, Tuple};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::{app, ApiKey};

    const KEY: &str = "watch-key";

    fn state() -> AppState {
        let engine = Engine::in_memory().unwrap();
        engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
        AppState::new(Arc::new(engine), ApiKey::new(KEY).unwrap())
    }

    fn request(method: &str, path: &str, actor: Option<&str>, body: Value) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {KEY}"));
        if let Some(actor) = actor {
            request = request.header("pemba-actor", actor);
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    /// A command through the router; its answer, after asserting it succeeded.
    async fn ok(state: &AppState, method: &str, path: &str, actor: &str, body: Value) -> Value {
        let response = app(state.clone())
            .oneshot(request(method, path, Some(actor), body))
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// Workspaces `acme` (alice admin, bob viewer, group Engineering) and `other` (zed
    /// admin, group Sales); the two group ids.
    async fn seed(state: &AppState) -> (String, String) {
        ok(
            state,
            "PUT",
            "/v1/workspaces/acme",
            "alice",
            json!({"admin": "alice"}),
        )
        .await;
        ok(
            state,
            "PUT",
            "/v1/workspaces/acme/members/bob",
            "alice",
            json!({"role": "viewer"}),
        )
        .await;
        ok(
            state,
            "PUT",
            "/v1/workspaces/other",
            "zed",
            json!({"admin": "zed"}),
        )
        .await;
        let eng = ok(
            state,
            "POST",
            "/v1/workspaces/acme/groups",
            "alice",
            json!({"name": "Engineering"}),
        )
        .await;
        let sales = ok(
            state,
            "POST",
            "/v1/workspaces/other/groups",
            "zed",
            json!({"name": "Sales"}),
        )
        .await;
        (
            eng["id"].as_str().unwrap().to_string(),
            sales["id"].as_str().unwrap().to_string(),
        )
    }

    /// An open stream's lines, one at a time.
    struct Stream {
        body: axum::body::BodyDataStream,
        buffer: Vec<u8>,
    }

    impl Stream {
        async fn open(state: &AppState, path: &str, actor: &str) -> Self {
            let response = app(state.clone())
                .oneshot(request("GET", path, Some(actor), Value::Null))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            Stream {
                body: response.into_body().into_data_stream(),
                buffer: Vec::new(),
            }
        }

        /// The next line; a stream that says nothing for a minute fails the test.
        async fn line(&mut self) -> Value {
            loop {
                if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    return serde_json::from_slice(&line).unwrap();
                }
                let frame = tokio::time::timeout(Duration::from_secs(60), self.body.next())
                    .await
                    .expect("a line within a minute")
                    .expect("the stream to go on")
                    .unwrap();
                self.buffer.extend_from_slice(&frame);
            }
        }
    }

    #[tokio::test]
    async fn a_rename_elsewhere_arrives_and_a_removed_member_is_cut_off() {
        let state = state();
        let (eng, _) = seed(&state).await;
        let mut stream = Stream::open(&state, "/v1/workspaces/acme/watch", "bob").await;
        let first = stream.line().await;
        assert_eq!(first["result"]["changed"], false, "{first}");
        let start = first["result"]["changesThrough"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(start, state.engine.revision().token());
        // A record-only change: no relationship moves, the line still comes.
        ok(
            &state,
            "PATCH",
            &format!("/v1/workspaces/acme/groups/{eng}"),
            "alice",
            json!({"description": "builders"}),
        )
        .await;
        let line = stream.line().await;
        assert_eq!(line["result"]["changed"], true, "{line}");
        assert_eq!(
            line["result"]["changesThrough"]["token"],
            state.engine.revision().token()
        );
        // Resuming from the first line's token replays that change.
        let mut resumed = Stream::open(
            &state,
            &format!("/v1/workspaces/acme/watch?after={start}"),
            "bob",
        )
        .await;
        assert_eq!(
            resumed.line().await["result"]["changesThrough"]["token"],
            start.as_str()
        );
        assert_eq!(resumed.line().await["result"]["changed"], true);
        // bob leaves the workspace: the stream ends with the refusal.
        ok(
            &state,
            "DELETE",
            "/v1/workspaces/acme/members/bob",
            "alice",
            Value::Null,
        )
        .await;
        let last = stream.line().await;
        assert_eq!(last["error"]["code"], 7, "{last}");
        assert!(stream.body.next().await.is_none(), "the stream went on");
    }

    #[tokio::test]
    async fn outsiders_and_bad_tokens_are_refused_before_streaming() {
        let state = state();
        seed(&state).await;
        for (path, actor, status) in [
            ("/v1/workspaces/acme/watch", "zed", StatusCode::FORBIDDEN),
            (
                "/v1/workspaces/acme/watch?after=nonsense",
                "bob",
                StatusCode::BAD_REQUEST,
            ),
            (
                "/v1/workspaces/acme/watch?since=pb1.1",
                "bob",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let response = app(state.clone())
                .oneshot(request("GET", path, Some(actor), Value::Null))
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{path} as {actor}");
        }
    }

    fn commit(revision: u64, changes: &[&str]) -> Matched {
        Matched {
            revision: Revision(revision),
            changes: changes
                .iter()
                .map(|text| Change {
                    operation: Operation::Touch,
                    tuple: Tuple::parse(text).unwrap(),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn only_changes_of_its_own_workspace_count() {
        let state = state();
        let (eng, sales) = seed(&state).await;
        let mut follower = Follower {
            directory: read_directory(&state, &Actor::new("bob").unwrap(), "acme")
                .await
                .unwrap(),
            compare: true,
            actor: Actor::new("bob").unwrap(),
            ws: "acme".to_string(),
        };
        let mut changed =
            async |commits: &[Matched]| follower.changed(&state, commits).await.unwrap();
        // Relationships of the other workspace, and a rename there.
        assert!(!changed(&[commit(90, &[&format!("group:{sales}#member@user:zed")])]).await);
        assert!(
            !changed(&[commit(
                91,
                &[
                    "connection:other/db#owner@user:zed",
                    "workspace:other#viewer@user:bob"
                ]
            )])
            .await
        );
        ok(
            &state,
            "PATCH",
            &format!("/v1/workspaces/other/groups/{sales}"),
            "zed",
            json!({"name": "Sales team"}),
        )
        .await;
        assert!(!changed(&[commit(92, &[])]).await);
        // This workspace's: a group's members, a connection, a role, a new group's link.
        assert!(changed(&[commit(93, &[&format!("group:{eng}#member@user:bob")])]).await);
        assert!(changed(&[commit(94, &["connection:acme/db#owner@user:bob"])]).await);
        assert!(changed(&[commit(95, &["workspace:acme#editor@user:bob"])]).await);
        assert!(changed(&[commit(96, &["group:gnew#workspace@workspace:acme"])]).await);
        // A connection of a workspace whose id starts like this one's is not this one's.
        assert!(!changed(&[commit(97, &["connection:acme2/db#owner@user:bob"])]).await);
        // A record-only commit counts once the directory differs, and only then.
        assert!(!changed(&[commit(98, &[])]).await);
        ok(
            &state,
            "PATCH",
            &format!("/v1/workspaces/acme/groups/{eng}"),
            "alice",
            json!({"name": "Platform"}),
        )
        .await;
        assert!(changed(&[commit(99, &[])]).await);
        assert!(!changed(&[commit(100, &[])]).await);
    }
}
