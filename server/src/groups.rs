//! The user-groups feature of SPEC section 6 over HTTP: workspaces with admin, editor and
//! viewer members, flat groups of members, and connections and workbooks shared with
//! users and groups, all under `/v1/workspaces/{ws}`.
//!
//! Every request acts for the workspace member named in the `Pemba-Actor` header, and every
//! authorization decision is a check against the engine (`workspace:{ws}#manage_groups`,
//! `group:{g}#view_resources`, `connection:{c}#manage`, ...) under the shipped schema
//! (`schemas/user-groups.zed`): handlers never compare roles themselves. Each change is one
//! engine [`Transaction`], so a refused request changes nothing and the next check sees it.
//!
//! One route group per file: [`routes`] gathers `workspaces`, `members`, `group` (the groups
//! themselves), `sharing` (connections and workbooks) and `import` (CSV).
//!
//! # Storage
//!
//! Relationships hold who is in what; application metadata (beside them, written in the
//! same transactions) holds what the engine has no place for. Workspace and group ids never
//! contain `:`, which therefore separates them from what follows in a key:
//!
//! | key | value |
//! |---|---|
//! | `groups/workspace/{ws}` | `{}`: the workspace exists |
//! | `groups/group/{ws}:{group}` | `{"name", "description"}` of a group of `ws` |
//! | `groups/name/{ws}:{lowercase trimmed name}` | the id of the group with that name |
//!
//! A create or rename commits only if its name key is still absent (a metadata condition),
//! so two requests racing for one name cannot both win.

mod group;
mod import;
mod members;
mod sharing;
mod workspaces;

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::routing::MethodRouter;
use pemba_engine::is_valid_object_id;
use pemba_engine::{
    CheckArgs, Consistency, Engine, ObjectRef, Operation, Page, Precondition, PreconditionKind,
    ReadPage, RelationshipFilter, Revision, SubjectFilter, SubjectLookup, SubjectRef, Transaction,
    Tuple, Update, WriteError,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use crate::routes::Route;
use crate::AppState;

/// The header naming the workspace member a request acts for.
pub const ACTOR_HEADER: &str = "pemba-actor";

/// The longest group name, in Unicode characters after trimming (SPEC 6.2).
pub const MAX_NAME_CHARS: usize = 50;

/// The longest group description, in Unicode characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Every route of the feature, for [`crate::routes::table`].
pub fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(workspaces::routes());
    routes.extend(members::routes());
    routes.extend(group::routes());
    routes.extend(import::routes());
    routes.extend(sharing::routes());
    routes
}

/// A protected route with the default body limit.
fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        public: false,
        body_limit: None,
        handler,
    }
}

// ---------------------------------------------------------------------------------------
// Extractors

/// The `Pemba-Actor` header: the user id a request acts for (401 when missing or invalid).
struct Actor(String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(ACTOR_HEADER).ok_or_else(|| {
            ApiError::unauthenticated("missing `Pemba-Actor: USER_ID` header naming who acts")
        })?;
        let id = value.to_str().map(str::trim).unwrap_or_default();
        if !is_valid_object_id(id) {
            return Err(ApiError::unauthenticated(
                "the `Pemba-Actor` header must be a user id: 1 to 1024 letters, digits or `/_|-=+`",
            ));
        }
        Ok(Actor(id.to_string()))
    }
}

/// Path parameters, with rejections in the API's error shape.
struct Ids<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(ids)| Ids(ids))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// A request body, read whole but parsed only after the request is authorized, so an
/// outsider learns nothing from validation errors. Bad JSON is 422 (see [`unprocessable`]).
struct Body(Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        crate::error::read_body(request, state).await.map(Body)
    }
}

impl Body {
    /// The body as JSON; an empty body reads as `{}`.
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let text: &[u8] = if self.0.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.0
        };
        serde_json::from_slice(text)
            .map_err(|error| unprocessable(format!("invalid request body: {error}")))
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// 422: a body or id this feature cannot accept.
fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::InvalidArgument,
        message,
    )
}

/// 409: the request conflicts with what is stored.
fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, Code::FailedPrecondition, message)
}

/// 409 when a transaction's conditions no longer held at commit.
fn changed_concurrently() -> ApiError {
    conflict("the workspace changed while this request ran; nothing was written, retry it")
}

/// Runs the synchronous `work` on the blocking pool (storage reads and fsync'd writes).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || work(&engine)).await?
}

/// Commits `transaction`; a failed precondition or metadata condition becomes `on_conflict()`.
fn commit(
    engine: &Engine,
    transaction: &Transaction,
    on_conflict: impl FnOnce() -> ApiError,
) -> Result<Revision, ApiError> {
    match engine.transact(transaction.clone()) {
        Ok(revision) => Ok(revision),
        Err(
            WriteError::PreconditionFailed { .. }
            | WriteError::MetadataChanged { .. }
            | WriteError::AlreadyExists(_),
        ) => Err(on_conflict()),
        Err(error) => Err(error.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Metadata keys (layout in the module docs and in docs/storage.md)

fn workspace_key(ws: &str) -> String {
    format!("groups/workspace/{ws}")
}

fn group_key(ws: &str, group: &str) -> String {
    format!("groups/group/{ws}:{group}")
}

fn group_prefix(ws: &str) -> String {
    format!("groups/group/{ws}:")
}

fn name_key(ws: &str, name: &str) -> String {
    format!("groups/name/{ws}:{}", fold(name))
}

/// The form names are compared in: trimmed and lowercased.
fn fold(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A group's name and description, stored as JSON at its [`group_key`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct GroupInfo {
    name: String,
    #[serde(default)]
    description: String,
}

impl GroupInfo {
    fn encode(&self) -> Result<String, ApiError> {
        serde_json::to_string(self).map_err(ApiError::internal)
    }

    fn decode(text: &str) -> Result<Self, ApiError> {
        serde_json::from_str(text).map_err(ApiError::internal)
    }
}

// ---------------------------------------------------------------------------------------
// Roles

/// A workspace role: the relation of `workspace` a member is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    Editor,
    Viewer,
}

impl Role {
    fn relation(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    fn from_relation(relation: &str) -> Option<Role> {
        match relation {
            "admin" => Some(Role::Admin),
            "editor" => Some(Role::Editor),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    fn parse(text: Option<&str>) -> Result<Role, ApiError> {
        match text {
            None => Err(unprocessable(
                "`role` is required: `admin`, `editor` or `viewer`",
            )),
            Some(text) => Role::from_relation(text).ok_or_else(|| {
                unprocessable(format!(
                    "unknown role `{text}`: expected `admin`, `editor` or `viewer`"
                ))
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Engine helpers

fn object(object_type: &str, id: &str) -> ObjectRef {
    ObjectRef::new(object_type, id)
}

fn user(id: &str) -> SubjectRef {
    SubjectRef::object("user", id)
}

fn group_members_subject(group: &str) -> SubjectRef {
    SubjectRef {
        object: object("group", group),
        relation: Some("member".to_string()),
    }
}

fn tuple(resource: ObjectRef, relation: &str, subject: SubjectRef) -> Tuple {
    Tuple {
        resource,
        relation: relation.to_string(),
        subject,
    }
}

fn update(operation: Operation, tuple: Tuple) -> Update {
    Update { operation, tuple }
}

/// A filter selecting exactly `tuple`.
fn exact(tuple: &Tuple) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(tuple.resource.object_type.clone()),
        resource_id: Some(tuple.resource.object_id.clone()),
        relation: Some(tuple.relation.clone()),
        subject: Some(SubjectFilter {
            subject_type: tuple.subject.object.object_type.clone(),
            subject_id: Some(tuple.subject.object.object_id.clone()),
            relation: Some(tuple.subject.relation.clone().unwrap_or_default()),
        }),
    }
}

fn must_match(filter: RelationshipFilter) -> Precondition {
    Precondition {
        kind: PreconditionKind::MustMatch,
        filter,
    }
}

fn must_not_match(filter: RelationshipFilter) -> Precondition {
    Precondition {
        kind: PreconditionKind::MustNotMatch,
        filter,
    }
}

/// Every role relationship of `user` in `ws` (at most one while the feature holds).
fn role_filter(ws: &str, user_id: &str) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some("workspace".to_string()),
        resource_id: Some(ws.to_string()),
        relation: None,
        subject: Some(SubjectFilter {
            subject_type: "user".to_string(),
            subject_id: Some(user_id.to_string()),
            relation: Some(String::new()),
        }),
    }
}

/// Every relationship matching `filter`, page by page.
fn read_all(engine: &Engine, filter: &RelationshipFilter) -> Result<Vec<Tuple>, ApiError> {
    const PAGE: usize = 1000;
    let mut all: Vec<Tuple> = Vec::new();
    loop {
        let page = engine
            .read(
                Consistency::FullyConsistent,
                filter,
                ReadPage {
                    after: all.last(),
                    limit: PAGE,
                },
            )?
            .value;
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// Whether `subject` has `permission` on `resource`, answered by the engine.
fn allowed(
    engine: &Engine,
    resource: &ObjectRef,
    permission: &str,
    subject_id: &str,
) -> Result<bool, ApiError> {
    let subject = user(subject_id);
    Ok(engine
        .check(
            Consistency::FullyConsistent,
            CheckArgs::new(resource, permission, &subject),
        )?
        .value)
}

/// 403 unless the engine says `actor` has `permission` on `resource`; `what` completes
/// "only ... may".
fn authorize(
    engine: &Engine,
    resource: &ObjectRef,
    permission: &str,
    actor: &str,
    what: &str,
) -> Result<(), ApiError> {
    if allowed(engine, resource, permission, actor)? {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "`{actor}` may not {what} (`{}:{}#{permission}` does not include them)",
            resource.object_type, resource.object_id
        )))
    }
}

/// 404 unless workspace `ws` exists.
fn require_workspace(engine: &Engine, ws: &str) -> Result<(), ApiError> {
    if is_valid_object_id(ws) && engine.metadata(&workspace_key(ws))?.is_some() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no workspace `{ws}`")))
    }
}

/// The common entry of every actor route: the workspace exists (else 404) and the actor is
/// one of its members (else 403).
fn enter(engine: &Engine, ws: &str, actor: &str) -> Result<(), ApiError> {
    require_workspace(engine, ws)?;
    if allowed(engine, &object("workspace", ws), "member", actor)? {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "`{actor}` is not a member of workspace `{ws}`"
        )))
    }
}

/// The role of `user_id` in `ws`, if they are a member.
fn role_of(engine: &Engine, ws: &str, user_id: &str) -> Result<Option<Role>, ApiError> {
    if !is_valid_object_id(user_id) {
        return Ok(None);
    }
    let found = engine
        .read(
            Consistency::FullyConsistent,
            &role_filter(ws, user_id),
            ReadPage {
                after: None,
                limit: 8,
            },
        )?
        .value;
    Ok(found.iter().find_map(|t| Role::from_relation(&t.relation)))
}

/// The stored name and description of group `group` of `ws`, or 404.
fn group_info(engine: &Engine, ws: &str, group: &str) -> Result<(GroupInfo, String), ApiError> {
    let missing = || ApiError::not_found(format!("no group `{group}` in workspace `{ws}`"));
    if !is_valid_object_id(group) {
        return Err(missing());
    }
    let raw = engine
        .metadata(&group_key(ws, group))?
        .ok_or_else(missing)?;
    Ok((GroupInfo::decode(&raw)?, raw))
}

/// Every group of `ws`: id and stored info, in id order.
fn workspace_groups(engine: &Engine, ws: &str) -> Result<Vec<(String, GroupInfo)>, ApiError> {
    let prefix = group_prefix(ws);
    engine
        .metadata_with_prefix(&prefix)?
        .into_iter()
        .map(|(key, value)| {
            let id = key.get(prefix.len()..).unwrap_or_default().to_string();
            Ok((id, GroupInfo::decode(&value)?))
        })
        .collect()
}

/// The user ids of a group's members, ascending.
fn group_members(engine: &Engine, group: &str) -> Result<Vec<String>, ApiError> {
    let found = engine.lookup_subjects(
        Consistency::FullyConsistent,
        &SubjectLookup {
            resource: &object("group", group),
            permission: "member",
            subject_type: "user",
            subject_relation: None,
            page: Page::default(),
        },
    )?;
    Ok(found.value.into_iter().map(|s| s.id).collect())
}

/// How many members a group has.
fn member_count(engine: &Engine, group: &str) -> Result<usize, ApiError> {
    Ok(group_members(engine, group)?.len())
}

/// Validates a group name: required, trimmed, 1 to 50 Unicode characters. Returns it trimmed.
fn valid_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(unprocessable("a group name is required"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(unprocessable(format!(
            "a group name has at most {MAX_NAME_CHARS} characters; `{name}` has {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(unprocessable(
            "a group name cannot contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// Validates a description (at most 1000 characters), trimmed.
fn valid_description(description: Option<&str>) -> Result<String, ApiError> {
    let description = description.map(str::trim).unwrap_or_default();
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(unprocessable(format!(
            "a description has at most {MAX_DESCRIPTION_CHARS} characters, not {chars}"
        )));
    }
    Ok(description.to_string())
}

/// 409 naming the group that already has `name` in `ws`, if one does.
fn name_free(engine: &Engine, ws: &str, name: &str) -> Result<(), ApiError> {
    match engine.metadata(&name_key(ws, name))? {
        None => Ok(()),
        Some(id) => Err(conflict(format!(
            "workspace `{ws}` already has a group named `{name}` (`{id}`); names are compared ignoring case"
        ))),
    }
}

/// Why `candidate` cannot become a group member or grantee in `ws`, if it cannot.
fn not_a_member_reason(
    engine: &Engine,
    ws: &str,
    candidate: &str,
) -> Result<Option<String>, ApiError> {
    if !is_valid_object_id(candidate) {
        return Ok(Some(format!("`{candidate}` is not a valid user id")));
    }
    if engine.metadata(&group_key(ws, candidate))?.is_some() {
        return Ok(Some(format!(
            "`{candidate}` is a group, and groups cannot be nested"
        )));
    }
    if role_of(engine, ws, candidate)?.is_none() {
        return Ok(Some(format!(
            "`{candidate}` is not a member of workspace `{ws}`"
        )));
    }
    Ok(None)
}

/// Checks that every candidate may join a group (422 naming each that may not) and returns
/// the preconditions that keep them workspace members until the write commits.
fn members_preconditions<'a>(
    engine: &Engine,
    ws: &str,
    candidates: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<Precondition>, ApiError> {
    let distinct: BTreeSet<&String> = candidates.into_iter().collect();
    let mut problems = Vec::new();
    for candidate in &distinct {
        if let Some(reason) = not_a_member_reason(engine, ws, candidate)? {
            problems.push(reason);
        }
    }
    if !problems.is_empty() {
        return Err(unprocessable(format!(
            "group members must be members of the workspace: {}",
            problems.join("; ")
        )));
    }
    Ok(distinct
        .into_iter()
        .map(|m| must_match(role_filter(ws, m)))
        .collect())
}

/// A precondition that some admin of `ws` other than `user_id` still exists when the write
/// commits: the last-admin guard. Two concurrent demotions each need the other's target as
/// witness (or a third admin), so at most one of them can commit when only two admins exist.
fn other_admin_witness(engine: &Engine, ws: &str, user_id: &str) -> Result<Precondition, ApiError> {
    let admins = engine.read(
        Consistency::FullyConsistent,
        &RelationshipFilter {
            resource_type: Some("workspace".to_string()),
            resource_id: Some(ws.to_string()),
            relation: Some("admin".to_string()),
            subject: None,
        },
        ReadPage {
            after: None,
            limit: 2,
        },
    )?;
    let witness = admins
        .value
        .into_iter()
        .find(|t| t.subject.object.object_id != user_id)
        .ok_or_else(|| {
            conflict(format!(
                "`{user_id}` is the last admin of workspace `{ws}`; make another member admin first"
            ))
        })?;
    Ok(must_match(exact(&witness)))
}

/// The workspace `resource` (a group, connection or workbook) belongs to.
fn workspace_of(engine: &Engine, resource: &ObjectRef) -> Result<Option<String>, ApiError> {
    let found = engine
        .read(
            Consistency::FullyConsistent,
            &RelationshipFilter::resource(resource).with_relation("workspace"),
            ReadPage {
                after: None,
                limit: 1,
            },
        )?
        .value;
    Ok(found.into_iter().next().map(|t| t.subject.object.object_id))
}

/// Every relationship naming `user_id` directly on an object of `ws`: its role, its group
/// memberships, its grants and ownerships there (never those of other workspaces).
fn relationships_in_workspace(
    engine: &Engine,
    ws: &str,
    user_id: &str,
) -> Result<Vec<Tuple>, ApiError> {
    let all = read_all(
        engine,
        &RelationshipFilter {
            subject: Some(SubjectFilter {
                subject_type: "user".to_string(),
                subject_id: Some(user_id.to_string()),
                relation: Some(String::new()),
            }),
            ..RelationshipFilter::default()
        },
    )?;
    let mut owners: HashMap<ObjectRef, Option<String>> = HashMap::new();
    let mut mine = Vec::new();
    for t in all {
        let in_ws = if t.resource.object_type == "workspace" {
            t.resource.object_id == ws
        } else {
            let owner = match owners.get(&t.resource) {
                Some(owner) => owner.clone(),
                None => {
                    let owner = workspace_of(engine, &t.resource)?;
                    owners.insert(t.resource.clone(), owner.clone());
                    owner
                }
            };
            owner.as_deref() == Some(ws)
        };
        if in_ws {
            mine.push(t);
        }
    }
    Ok(mine)
}

/// A fresh group id: `g` and 16 random hex digits.
fn new_group_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("g{hex}"))
}

// ---------------------------------------------------------------------------------------
// Wire shapes shared by several files

/// A group as listed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupSummary {
    id: String,
    name: String,
    description: String,
    member_count: usize,
}

/// `{"id", "name"}` of a group.
#[derive(Clone, Debug, Serialize)]
struct GroupRef {
    id: String,
    name: String,
}

/// Sorts by name ignoring case, then by id, so equal-looking names keep a stable order.
fn sort_by_name<T>(items: &mut [T], key: impl Fn(&T) -> (&str, &str)) {
    items.sort_by(|a, b| {
        let (an, ai) = key(a);
        let (bn, bi) = key(b);
        (an.to_lowercase(), an, ai).cmp(&(bn.to_lowercase(), bn, bi))
    });
}

fn summary(engine: &Engine, id: String, info: GroupInfo) -> Result<GroupSummary, ApiError> {
    Ok(GroupSummary {
        member_count: member_count(engine, &id)?,
        id,
        name: info.name,
        description: info.description,
    })
}

/// Decodes `body` as the JSON request type of the feature's route `method path` (the
/// route table's pattern, e.g. `/v1/workspaces/{ws}/groups`), as its handler would; `None`
/// for routes that read no JSON body (the CSV import reads CSV).
pub fn decode_body(method: &Method, path: &str, body: &[u8]) -> Option<Result<(), ApiError>> {
    let body = Body(Bytes::copy_from_slice(body));
    let decoded = match (method.as_str(), path) {
        ("PUT", "/v1/workspaces/{ws}") => body.json::<workspaces::CreateWorkspace>().map(drop),
        ("PUT", "/v1/workspaces/{ws}/members/{user}") => body.json::<members::SetRole>().map(drop),
        ("POST", "/v1/workspaces/{ws}/groups") => body.json::<group::CreateGroup>().map(drop),
        ("PATCH", "/v1/workspaces/{ws}/groups/{group}") => {
            body.json::<group::EditGroup>().map(drop)
        }
        ("PUT", path)
            if path.starts_with("/v1/workspaces/{ws}/workbooks/") && path.contains("/access/") =>
        {
            body.json::<sharing::ShareRequest>().map(drop)
        }
        _ => return None,
    };
    Some(decoded)
}
