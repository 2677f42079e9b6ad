//! One handler per route: extract, call one command of [`Groups`](crate::groups::Groups)
//! on the blocking pool, encode. Statuses beyond 200 are picked here from the result.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{call, outcome, wire, Body, Ids, RawBody};
use crate::error::ApiError;
use crate::groups::{Actor, Grantee, GroupsError, Input, Resource, ResourceKind, WorkbookRole};
use crate::AppState;

type Reply<T> = Result<Json<T>, ApiError>;
type WithStatus<T> = Result<(StatusCode, Json<T>), ApiError>;
type Two = Ids<(String, String)>;
type Three = Ids<(String, String, String)>;

fn ok<T, J: From<T>>(value: T) -> Json<J> {
    Json(value.into())
}

fn created<T, J: From<T>>(value: T) -> (StatusCode, Json<J>) {
    (StatusCode::CREATED, Json(value.into()))
}

/// 201 when something was added, else 200.
fn added_or_ok(added: bool) -> StatusCode {
    if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Connections or workbooks: the kind, and the patterns of its routes.
pub(super) trait Kind: Send + 'static {
    /// Which kind.
    const KIND: ResourceKind;
    /// `GET` lists the workspace's resources of this kind.
    const LIST: &'static str;
    /// `PUT` creates one.
    const BASE: &'static str;
    /// `GET` lists the access.
    const ACCESS: &'static str;
    /// `PUT` / `DELETE` a group's grant.
    const GROUP: &'static str;
    /// `PUT` / `DELETE` a user's grant.
    const USER: &'static str;

    /// The resource `id` of this kind.
    fn resource(id: String) -> Resource {
        Resource {
            kind: Self::KIND,
            id,
        }
    }
}

/// The connection routes.
pub(super) struct Connections;

impl Kind for Connections {
    const KIND: ResourceKind = ResourceKind::Connection;
    const LIST: &'static str = "/v1/workspaces/{ws}/connections";
    const BASE: &'static str = "/v1/workspaces/{ws}/connections/{id}";
    const ACCESS: &'static str = "/v1/workspaces/{ws}/connections/{id}/access";
    const GROUP: &'static str = "/v1/workspaces/{ws}/connections/{id}/access/groups/{group}";
    const USER: &'static str = "/v1/workspaces/{ws}/connections/{id}/access/users/{user}";
}

/// The workbook routes.
pub(super) struct Workbooks;

impl Kind for Workbooks {
    const KIND: ResourceKind = ResourceKind::Workbook;
    const LIST: &'static str = "/v1/workspaces/{ws}/workbooks";
    const BASE: &'static str = "/v1/workspaces/{ws}/workbooks/{id}";
    const ACCESS: &'static str = "/v1/workspaces/{ws}/workbooks/{id}/access";
    const GROUP: &'static str = "/v1/workspaces/{ws}/workbooks/{id}/access/groups/{group}";
    const USER: &'static str = "/v1/workspaces/{ws}/workbooks/{id}/access/users/{user}";
}

/// `PUT /v1/workspaces/{ws}`: needs only the bearer key (the calling service vouches).
pub(super) async fn create_workspace(
    State(s): State<AppState>,
    Ids(ws): Ids<String>,
    Body(request): Body<wire::CreateWorkspace>,
) -> WithStatus<wire::WorkspaceJson> {
    call(&s, move |g| g.create_workspace(&ws, request))
        .await
        .map(created)
}

/// `PUT /v1/workspaces/{ws}/members/{user}`: 201 added, 200 changed (or unchanged).
pub(super) async fn set_role(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, user)): Two,
    Body(role): Body<wire::SetRole>,
) -> WithStatus<wire::MemberRoleJson> {
    let set = call(&s, move |g| g.set_role(&actor, &ws, &user, role)).await?;
    Ok((added_or_ok(set.added), ok(set)))
}

/// `DELETE /v1/workspaces/{ws}/members/{user}`: 204.
pub(super) async fn remove_from_workspace(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, user)): Two,
) -> Result<StatusCode, ApiError> {
    call(&s, move |g| g.remove_from_workspace(&actor, &ws, &user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/workspaces/{ws}/members`.
pub(super) async fn list_members(
    State(s): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
) -> Reply<wire::MemberListJson> {
    call(&s, move |g| g.list_members(&actor, &ws)).await.map(ok)
}

/// `GET /v1/workspaces/{ws}/members/{user}/groups`.
pub(super) async fn member_groups(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, user)): Two,
) -> Reply<wire::MemberGroupsJson> {
    let id = user.clone();
    let groups = call(&s, move |g| g.member_groups(&actor, &ws, &user)).await?;
    Ok(Json(wire::MemberGroupsJson::new(id, groups)))
}

/// `?q=TEXT` of the group listing.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
}

/// `GET /v1/workspaces/{ws}/groups?q=TEXT`.
pub(super) async fn list_groups(
    State(s): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Reply<wire::GroupListJson> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!("invalid query string: {}", rejection.body_text()))
    })?;
    call(&s, move |g| g.list_groups(&actor, &ws, query.q.as_deref()))
        .await
        .map(ok)
}

/// `POST /v1/workspaces/{ws}/groups`: 201 with the new group.
pub(super) async fn create_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
    Body(request): Body<wire::CreateGroup>,
) -> WithStatus<wire::GroupDetailJson> {
    call(&s, move |g| g.create_group(&actor, &ws, request))
        .await
        .map(created)
}

/// `GET /v1/workspaces/{ws}/groups/{group}`.
pub(super) async fn get_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
) -> Reply<wire::GroupDetailJson> {
    call(&s, move |g| g.get_group(&actor, &ws, &id))
        .await
        .map(ok)
}

/// `PATCH /v1/workspaces/{ws}/groups/{group}`.
pub(super) async fn update_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
    Body(changes): Body<wire::EditGroup>,
) -> Reply<wire::GroupSummaryJson> {
    call(&s, move |g| g.update_group(&actor, &ws, &id, changes))
        .await
        .map(ok)
}

/// `DELETE /v1/workspaces/{ws}/groups/{group}`: 204.
pub(super) async fn delete_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
) -> Result<StatusCode, ApiError> {
    call(&s, move |g| g.delete_group(&actor, &ws, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/workspaces/{ws}/groups/{group}/members/{member}`.
pub(super) async fn add_member(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, member)): Three,
) -> Reply<wire::GroupSummaryJson> {
    call(&s, move |g| g.add_member(&actor, &ws, &id, &member))
        .await
        .map(ok)
}

/// `DELETE /v1/workspaces/{ws}/groups/{group}/members/{member}`: 204.
pub(super) async fn remove_member(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, member)): Three,
) -> Result<StatusCode, ApiError> {
    call(&s, move |g| g.remove_member(&actor, &ws, &id, &member)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/workspaces/{ws}/groups/{group}/resources`.
pub(super) async fn group_resources(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
) -> Reply<wire::ResourceListJson> {
    call(&s, move |g| g.group_resources(&actor, &ws, &id))
        .await
        .map(ok)
}

/// `POST /v1/workspaces/{ws}/groups/import` (CSV): 201 with the groups, or 422 with every
/// bad row in `errors` beside the usual error fields.
pub(super) async fn import_csv(
    State(s): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
    RawBody(csv): RawBody,
) -> Result<Response, ApiError> {
    match outcome(&s, move |g| g.import_csv(&actor, &ws, &csv)).await? {
        Ok(groups) => Ok(created::<_, wire::GroupListJson>(groups).into_response()),
        Err(error) => match &error {
            GroupsError::ImportRefused { rows } => {
                let body = wire::ImportErrorsJson::new(error.to_string(), rows);
                Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
            }
            _ => Err(error.into()),
        },
    }
}

/// `GET .../{connections|workbooks}`: the workspace's resources of that kind.
pub(super) async fn list_resources<K: Kind>(
    State(s): State<AppState>,
    actor: Actor,
    Ids(ws): Ids<String>,
) -> Reply<wire::WorkspaceResourcesJson> {
    call(&s, move |g| g.list_resources(&actor, &ws, K::KIND))
        .await
        .map(ok)
}

/// `PUT .../{connections|workbooks}/{id}`: 201 created, 200 when the actor owns it here.
pub(super) async fn create_resource<K: Kind>(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
) -> WithStatus<wire::CreatedJson> {
    let created = call(&s, move |g| {
        g.create_resource(&actor, &ws, &K::resource(id))
    })
    .await?;
    Ok((added_or_ok(created.created), ok(created)))
}

/// `GET .../{connections|workbooks}/{id}/access`.
pub(super) async fn list_access<K: Kind>(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id)): Two,
) -> Reply<wire::AccessJson> {
    call(&s, move |g| g.list_access(&actor, &ws, &K::resource(id)))
        .await
        .map(ok)
}

/// `PUT .../connections/{id}/access/groups/{group}` (the body is read, not used).
pub(super) async fn share_connection_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, group)): Three,
    _: RawBody,
) -> Reply<wire::SharedJson> {
    share::<Connections>(&s, actor, ws, id, Grantee::Group(group), Ok(None)).await
}

/// `PUT .../connections/{id}/access/users/{user}` (the body is read, not used).
pub(super) async fn share_connection_user(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, user)): Three,
    _: RawBody,
) -> Reply<wire::SharedJson> {
    share::<Connections>(&s, actor, ws, id, Grantee::User(user), Ok(None)).await
}

/// `PUT .../workbooks/{id}/access/groups/{group}` `{"role"}`.
pub(super) async fn share_workbook_group(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, group)): Three,
    Body(role): Body<wire::Share>,
) -> Reply<wire::SharedJson> {
    share::<Workbooks>(&s, actor, ws, id, Grantee::Group(group), role).await
}

/// `PUT .../workbooks/{id}/access/users/{user}` `{"role"}`.
pub(super) async fn share_workbook_user(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, user)): Three,
    Body(role): Body<wire::Share>,
) -> Reply<wire::SharedJson> {
    share::<Workbooks>(&s, actor, ws, id, Grantee::User(user), role).await
}

async fn share<K: Kind>(
    s: &AppState,
    actor: Actor,
    ws: String,
    id: String,
    grantee: Grantee,
    role: Input<Option<WorkbookRole>>,
) -> Reply<wire::SharedJson> {
    call(s, move |g| {
        g.share(&actor, &ws, &K::resource(id), &grantee, role)
    })
    .await
    .map(ok)
}

/// `DELETE .../access/groups/{group}`: 204.
pub(super) async fn unshare_group<K: Kind>(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, group)): Three,
) -> Result<StatusCode, ApiError> {
    unshare::<K>(&s, actor, ws, id, Grantee::Group(group)).await
}

/// `DELETE .../access/users/{user}`: 204.
pub(super) async fn unshare_user<K: Kind>(
    State(s): State<AppState>,
    actor: Actor,
    Ids((ws, id, user)): Three,
) -> Result<StatusCode, ApiError> {
    unshare::<K>(&s, actor, ws, id, Grantee::User(user)).await
}

async fn unshare<K: Kind>(
    s: &AppState,
    actor: Actor,
    ws: String,
    id: String,
    grantee: Grantee,
) -> Result<StatusCode, ApiError> {
    call(s, move |g| {
        g.unshare(&actor, &ws, &K::resource(id), &grantee)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
