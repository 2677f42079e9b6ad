//! Connections and workbooks: created by any member (who owns them), shared with and
//! unshared from groups and users by their owner or an admin, who can also list the access.
//!
//! A connection has one grant relation (`grantee`); a workbook two (`editor`, `viewer`), one
//! per grantee, picked by the `role` of the request body.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, put};
use axum::Json;
use pemba_engine::is_valid_object_id;
use pemba_engine::{
    Consistency, Engine, ObjectRef, Operation, ReadPage, RelationshipFilter, SubjectRef,
    Transaction,
};
use serde::{Deserialize, Serialize};

use super::{
    authorize, blocking, changed_concurrently, commit, conflict, enter, exact, group_info,
    group_members_subject, member_count, members_preconditions, must_match, must_not_match, object,
    read_all, role_filter, route, sort_by_name, tuple, unprocessable, update, user, workspace_of,
    Actor, Body, Ids,
};
use crate::error::ApiError;
use crate::routes::Route;
use crate::AppState;

/// The two kinds of shareable resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Connection,
    Workbook,
}

impl Kind {
    /// The object type, which is also the word used in messages.
    fn type_name(self) -> &'static str {
        match self {
            Kind::Connection => "connection",
            Kind::Workbook => "workbook",
        }
    }

    /// The relations a grant can be in.
    fn grant_relations(self) -> &'static [&'static str] {
        match self {
            Kind::Connection => &["grantee"],
            Kind::Workbook => &["editor", "viewer"],
        }
    }

    /// The relation a share request asks for: connections have one; workbooks take the
    /// body's `role` (`editor` or `viewer`).
    fn grant_relation(self, body: &Body) -> Result<&'static str, ApiError> {
        match self {
            Kind::Connection => Ok("grantee"),
            Kind::Workbook => {
                let request: ShareRequest = body.json()?;
                match request.role.as_deref() {
                    Some("editor") => Ok("editor"),
                    Some("viewer") => Ok("viewer"),
                    Some(other) => Err(unprocessable(format!(
                        "unknown workbook role `{other}`: expected `editor` or `viewer`"
                    ))),
                    None => Err(unprocessable("`role` is required: `editor` or `viewer`")),
                }
            }
        }
    }

    /// The role shown in answers: `None` for connections (a grant is a grant).
    fn role_label(self, relation: &str) -> Option<String> {
        match self {
            Kind::Connection => None,
            Kind::Workbook => Some(relation.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareRequest {
    role: Option<String>,
}

type TwoIds = Ids<(String, String)>;
type ThreeIds = Ids<(String, String, String)>;

macro_rules! kind_routes {
    ($kind:expr, $base:literal) => {{
        const KIND: Kind = $kind;
        vec![
            route(
                Method::PUT,
                concat!($base, ""),
                put(|s: State<AppState>, a: Actor, i: TwoIds| create(KIND, s, a, i)),
            ),
            route(
                Method::GET,
                concat!($base, "/access"),
                get(|s: State<AppState>, a: Actor, i: TwoIds| list_access(KIND, s, a, i)),
            ),
            route(
                Method::PUT,
                concat!($base, "/access/groups/{group}"),
                put(|s: State<AppState>, a: Actor, i: ThreeIds, b: Body| {
                    share_group(KIND, s, a, i, b)
                }),
            ),
            route(
                Method::DELETE,
                concat!($base, "/access/groups/{group}"),
                delete(|s: State<AppState>, a: Actor, i: ThreeIds| {
                    unshare(KIND, Grantee::Group, s, a, i)
                }),
            ),
            route(
                Method::PUT,
                concat!($base, "/access/users/{user}"),
                put(|s: State<AppState>, a: Actor, i: ThreeIds, b: Body| {
                    share_user(KIND, s, a, i, b)
                }),
            ),
            route(
                Method::DELETE,
                concat!($base, "/access/users/{user}"),
                delete(|s: State<AppState>, a: Actor, i: ThreeIds| {
                    unshare(KIND, Grantee::User, s, a, i)
                }),
            ),
        ]
    }};
}

pub(super) fn routes() -> Vec<Route> {
    let mut routes = kind_routes!(Kind::Connection, "/v1/workspaces/{ws}/connections/{id}");
    routes.extend(kind_routes!(
        Kind::Workbook,
        "/v1/workspaces/{ws}/workbooks/{id}"
    ));
    routes
}

/// The resource `id` of kind `kind` in `ws`, or 404 (also when it lives in another one).
fn resource_in(engine: &Engine, kind: Kind, ws: &str, id: &str) -> Result<ObjectRef, ApiError> {
    let resource = object(kind.type_name(), id);
    if is_valid_object_id(id) && workspace_of(engine, &resource)?.as_deref() == Some(ws) {
        Ok(resource)
    } else {
        Err(ApiError::not_found(format!(
            "no {} `{id}` in workspace `{ws}`",
            kind.type_name()
        )))
    }
}

fn authorize_manage(
    engine: &Engine,
    kind: Kind,
    resource: &ObjectRef,
    actor: &str,
) -> Result<(), ApiError> {
    authorize(
        engine,
        resource,
        "manage",
        actor,
        &format!(
            "share this {} (only its owner and admins can)",
            kind.type_name()
        ),
    )
}

fn link(resource: &ObjectRef, ws: &str) -> pemba_engine::Tuple {
    tuple(
        resource.clone(),
        "workspace",
        SubjectRef::object("workspace", ws),
    )
}

#[derive(Serialize)]
struct Created {
    id: String,
    workspace: String,
    owner: String,
}

/// `PUT .../{connections|workbooks}/{id}`: 201 with the new resource, owned by the actor;
/// 200 when the actor already owns it here; 409 when the id is taken.
async fn create(
    kind: Kind,
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): TwoIds,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "create_resources",
            &actor,
            &format!("create {}s", kind.type_name()),
        )?;
        if !is_valid_object_id(&id) {
            return Err(unprocessable(format!(
                "`{id}` is not a valid {} id: 1 to 1024 letters, digits or `/_|-=+`",
                kind.type_name()
            )));
        }
        let resource = object(kind.type_name(), &id);
        let owner = tuple(resource.clone(), "owner", user(&actor));
        let answer = Created {
            id: id.clone(),
            workspace: ws.clone(),
            owner: actor.clone(),
        };
        let taken = || conflict(format!("{} `{id}` already exists", kind.type_name()));
        if let Some(existing) = workspace_of(engine, &resource)? {
            let owned = engine
                .read(
                    Consistency::FullyConsistent,
                    &exact(&owner),
                    ReadPage {
                        after: None,
                        limit: 1,
                    },
                )?
                .value;
            if existing == ws && !owned.is_empty() {
                return Ok((StatusCode::OK, Json(answer)));
            }
            return Err(taken());
        }
        let transaction = Transaction {
            preconditions: vec![
                must_not_match(RelationshipFilter {
                    resource_type: Some(kind.type_name().to_string()),
                    resource_id: Some(id.clone()),
                    relation: Some("workspace".to_string()),
                    subject: None,
                }),
                must_match(role_filter(&ws, &actor)),
            ],
            updates: vec![
                update(Operation::Create, link(&resource, &ws)),
                update(Operation::Touch, owner),
            ],
            ..Transaction::default()
        };
        commit(engine, &transaction, taken)?;
        Ok((StatusCode::CREATED, Json(answer)))
    })
    .await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupShared {
    group: String,
    member_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// Replaces whatever grant `subject` has on `resource` by one in `relation`.
fn grant_updates(
    kind: Kind,
    resource: &ObjectRef,
    relation: &str,
    subject: &SubjectRef,
) -> Vec<pemba_engine::Update> {
    let mut updates: Vec<_> = kind
        .grant_relations()
        .iter()
        .filter(|r| **r != relation)
        .map(|r| {
            update(
                Operation::Delete,
                tuple(resource.clone(), r, subject.clone()),
            )
        })
        .collect();
    updates.push(update(
        Operation::Touch,
        tuple(resource.clone(), relation, subject.clone()),
    ));
    updates
}

/// `PUT .../access/groups/{group}`: answers the group's member count.
async fn share_group(
    kind: Kind,
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id, group)): ThreeIds,
    body: Body,
) -> Result<Json<GroupShared>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let resource = resource_in(engine, kind, &ws, &id)?;
        authorize_manage(engine, kind, &resource, &actor)?;
        group_info(engine, &ws, &group)?;
        let relation = kind.grant_relation(&body)?;
        let group_link = link(&object("group", &group), &ws);
        let transaction = Transaction {
            preconditions: vec![
                must_match(exact(&group_link)),
                must_match(exact(&link(&resource, &ws))),
            ],
            updates: grant_updates(kind, &resource, relation, &group_members_subject(&group)),
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        Ok(Json(GroupShared {
            member_count: member_count(engine, &group)?,
            group,
            role: kind.role_label(relation),
        }))
    })
    .await
}

#[derive(Serialize)]
struct UserShared {
    user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// `PUT .../access/users/{user}`: the user must be a member of the workspace (422).
async fn share_user(
    kind: Kind,
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id, grantee)): ThreeIds,
    body: Body,
) -> Result<Json<UserShared>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let resource = resource_in(engine, kind, &ws, &id)?;
        authorize_manage(engine, kind, &resource, &actor)?;
        let relation = kind.grant_relation(&body)?;
        let mut preconditions = members_preconditions(engine, &ws, [&grantee]).map_err(|e| {
            unprocessable(e.message.replace(
                "group members must be members of the workspace",
                &format!(
                    "a {} can be shared only with workspace members",
                    kind.type_name()
                ),
            ))
        })?;
        preconditions.push(must_match(exact(&link(&resource, &ws))));
        let transaction = Transaction {
            preconditions,
            updates: grant_updates(kind, &resource, relation, &user(&grantee)),
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        Ok(Json(UserShared {
            user: grantee,
            role: kind.role_label(relation),
        }))
    })
    .await
}

/// Whether an unshare names a group or a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grantee {
    Group,
    User,
}

/// `DELETE .../access/{groups|users}/{id}`: 204, or 404 when there was no such grant.
async fn unshare(
    kind: Kind,
    grantee: Grantee,
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id, target)): ThreeIds,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let resource = resource_in(engine, kind, &ws, &id)?;
        authorize_manage(engine, kind, &resource, &actor)?;
        let (subject, what) = match grantee {
            Grantee::Group => (group_members_subject(&target), "group"),
            Grantee::User => (user(&target), "user"),
        };
        let not_shared = || {
            ApiError::not_found(format!(
                "{} `{id}` is not shared with {what} `{target}`",
                kind.type_name()
            ))
        };
        if !is_valid_object_id(&target) {
            return Err(not_shared());
        }
        let mut grants = Vec::new();
        for relation in kind.grant_relations() {
            let grant = tuple(resource.clone(), relation, subject.clone());
            let found = engine
                .read(
                    Consistency::FullyConsistent,
                    &exact(&grant),
                    ReadPage {
                        after: None,
                        limit: 1,
                    },
                )?
                .value;
            if !found.is_empty() {
                grants.push(grant);
            }
        }
        if grants.is_empty() {
            return Err(not_shared());
        }
        let transaction = Transaction {
            preconditions: grants.iter().map(|g| must_match(exact(g))).collect(),
            updates: grants
                .into_iter()
                .map(|g| update(Operation::Delete, g))
                .collect(),
            ..Transaction::default()
        };
        commit(engine, &transaction, not_shared)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Serialize)]
struct UserAccess {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupAccess {
    id: String,
    name: String,
    member_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

#[derive(Serialize)]
struct AccessList {
    owners: Vec<String>,
    users: Vec<UserAccess>,
    groups: Vec<GroupAccess>,
}

/// `GET .../access`: owners, users and groups with access (owner or admin only).
async fn list_access(
    kind: Kind,
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): TwoIds,
) -> Result<Json<AccessList>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let resource = resource_in(engine, kind, &ws, &id)?;
        authorize_manage(engine, kind, &resource, &actor)?;
        let stored = read_all(
            engine,
            &RelationshipFilter {
                resource_type: Some(resource.object_type.clone()),
                resource_id: Some(resource.object_id.clone()),
                ..RelationshipFilter::default()
            },
        )?;
        let mut owners = Vec::new();
        let mut users: BTreeMap<String, UserAccess> = BTreeMap::new();
        let mut groups = Vec::new();
        for t in stored {
            let subject_id = t.subject.object.object_id.clone();
            if t.relation == "owner" {
                owners.push(subject_id);
            } else if kind.grant_relations().contains(&t.relation.as_str()) {
                let role = kind.role_label(&t.relation);
                if t.subject.object.object_type == "group" {
                    let Ok((info, _)) = group_info(engine, &ws, &subject_id) else {
                        continue;
                    };
                    groups.push(GroupAccess {
                        member_count: member_count(engine, &subject_id)?,
                        id: subject_id,
                        name: info.name,
                        role,
                    });
                } else {
                    users.insert(
                        subject_id.clone(),
                        UserAccess {
                            id: subject_id,
                            role,
                        },
                    );
                }
            }
        }
        sort_by_name(&mut groups, |g| (&g.name, &g.id));
        Ok(Json(AccessList {
            owners,
            users: users.into_values().collect(),
            groups,
        }))
    })
    .await
}
