//! Workspace members: add or change a role, remove (out of every group, every grant in the
//! workspace revoked), list members with their groups, and one member's groups.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, put};
use axum::Json;
use pemba_engine::is_valid_object_id;
use pemba_engine::{Operation, RelationshipFilter, SubjectFilter, Transaction};
use serde::{Deserialize, Serialize};

use super::{
    authorize, blocking, changed_concurrently, commit, enter, exact, group_key, must_match,
    must_not_match, object, other_admin_witness, read_all, relationships_in_workspace, role_filter,
    role_of, route, sort_by_name, tuple, unprocessable, update, user, workspace_groups, Actor,
    Body, GroupRef, Ids, Role,
};
use crate::error::ApiError;
use crate::routes::Route;
use crate::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::PUT,
            "/v1/workspaces/{ws}/members/{user}",
            put(set_role),
        ),
        route(
            Method::DELETE,
            "/v1/workspaces/{ws}/members/{user}",
            delete(remove_member),
        ),
        route(
            Method::GET,
            "/v1/workspaces/{ws}/members",
            get(list_members),
        ),
        route(
            Method::GET,
            "/v1/workspaces/{ws}/members/{user}/groups",
            get(member_groups),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    role: Option<String>,
}

#[derive(Serialize)]
struct MemberRole {
    id: String,
    role: Role,
}

/// `PUT /v1/workspaces/{ws}/members/{user}`: 201 when added, 200 when the role changed (or
/// already was the one asked for); 409 when it would leave the workspace without an admin.
async fn set_role(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, member)): Ids<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<MemberRole>), ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "manage_members",
            &actor,
            "add members or change roles",
        )?;
        let request: SetRole = body.json()?;
        let role = Role::parse(request.role.as_deref())?;
        if !is_valid_object_id(&member) {
            return Err(unprocessable(format!("`{member}` is not a valid user id")));
        }
        if engine.metadata(&group_key(&ws, &member))?.is_some() {
            return Err(unprocessable(format!(
                "`{member}` is a group of this workspace, not a user"
            )));
        }
        let current = role_of(engine, &ws, &member)?;
        let answer = MemberRole {
            id: member.clone(),
            role,
        };
        if current == Some(role) {
            return Ok((StatusCode::OK, Json(answer)));
        }
        let workspace = object("workspace", &ws);
        let mut preconditions = Vec::new();
        let mut updates = Vec::new();
        match current {
            None => preconditions.push(must_not_match(role_filter(&ws, &member))),
            Some(old) => {
                let old_tuple = tuple(workspace.clone(), old.relation(), user(&member));
                preconditions.push(must_match(exact(&old_tuple)));
                updates.push(update(Operation::Delete, old_tuple));
                if old == Role::Admin {
                    preconditions.push(other_admin_witness(engine, &ws, &member)?);
                }
            }
        }
        updates.push(update(
            Operation::Touch,
            tuple(workspace, role.relation(), user(&member)),
        ));
        let transaction = Transaction {
            preconditions,
            updates,
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        let status = if current.is_none() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, Json(answer)))
    })
    .await
}

/// `DELETE /v1/workspaces/{ws}/members/{user}`: one transaction removes the role, every
/// group membership and every grant or ownership the member had in this workspace.
async fn remove_member(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, member)): Ids<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "manage_members",
            &actor,
            "remove members",
        )?;
        let role = role_of(engine, &ws, &member)?.ok_or_else(|| {
            ApiError::not_found(format!("`{member}` is not a member of workspace `{ws}`"))
        })?;
        let mut preconditions = vec![must_match(exact(&tuple(
            object("workspace", &ws),
            role.relation(),
            user(&member),
        )))];
        if role == Role::Admin {
            preconditions.push(other_admin_witness(engine, &ws, &member)?);
        }
        let doomed = relationships_in_workspace(engine, &ws, &member)?;
        let transaction = Transaction {
            preconditions,
            updates: doomed
                .into_iter()
                .map(|t| update(Operation::Delete, t))
                .collect(),
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        // A grant committed between our read and our commit (it needed the role, which
        // is gone now) gives nothing, since every permission is intersected with
        // `workspace->member`; remove such stragglers too so nothing is left behind.
        let stragglers = relationships_in_workspace(engine, &ws, &member)?;
        if !stragglers.is_empty() {
            let cleanup = Transaction {
                preconditions: vec![must_not_match(role_filter(&ws, &member))],
                updates: stragglers
                    .into_iter()
                    .map(|t| update(Operation::Delete, t))
                    .collect(),
                ..Transaction::default()
            };
            commit(engine, &cleanup, changed_concurrently)?;
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Serialize)]
struct MemberEntry {
    id: String,
    role: Role,
    groups: Vec<GroupRef>,
}

#[derive(Serialize)]
struct MemberList {
    members: Vec<MemberEntry>,
}

/// `GET /v1/workspaces/{ws}/members`: every member, by id, with role and groups.
async fn list_members(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids(ws): Ids<String>,
) -> Result<Json<MemberList>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "view_members",
            &actor,
            "list members",
        )?;
        let roles = read_all(
            engine,
            &RelationshipFilter {
                resource_type: Some("workspace".to_string()),
                resource_id: Some(ws.clone()),
                relation: None,
                subject: Some(SubjectFilter {
                    subject_type: "user".to_string(),
                    subject_id: None,
                    relation: Some(String::new()),
                }),
            },
        )?;
        let mut members: BTreeMap<String, MemberEntry> = BTreeMap::new();
        for t in roles {
            if let Some(role) = Role::from_relation(&t.relation) {
                let id = t.subject.object.object_id;
                members.insert(
                    id.clone(),
                    MemberEntry {
                        id,
                        role,
                        groups: Vec::new(),
                    },
                );
            }
        }
        for (group, info) in workspace_groups(engine, &ws)? {
            for member in super::group_members(engine, &group)? {
                if let Some(entry) = members.get_mut(&member) {
                    entry.groups.push(GroupRef {
                        id: group.clone(),
                        name: info.name.clone(),
                    });
                }
            }
        }
        let mut members: Vec<MemberEntry> = members.into_values().collect();
        for member in &mut members {
            sort_by_name(&mut member.groups, |g| (&g.name, &g.id));
        }
        Ok(Json(MemberList { members }))
    })
    .await
}

#[derive(Serialize)]
struct MemberGroups {
    id: String,
    groups: Vec<GroupRef>,
}

/// `GET /v1/workspaces/{ws}/members/{user}/groups`: the groups of this workspace the
/// member is in, by name.
async fn member_groups(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, member)): Ids<(String, String)>,
) -> Result<Json<MemberGroups>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "view_groups",
            &actor,
            "see groups",
        )?;
        if role_of(engine, &ws, &member)?.is_none() {
            return Err(ApiError::not_found(format!(
                "`{member}` is not a member of workspace `{ws}`"
            )));
        }
        let memberships = read_all(
            engine,
            &RelationshipFilter {
                resource_type: Some("group".to_string()),
                resource_id: None,
                relation: Some("member".to_string()),
                subject: Some(SubjectFilter {
                    subject_type: "user".to_string(),
                    subject_id: Some(member.clone()),
                    relation: Some(String::new()),
                }),
            },
        )?;
        let mut groups = Vec::new();
        for t in memberships {
            let id = t.resource.object_id;
            if let Some(raw) = engine.metadata(&group_key(&ws, &id))? {
                let info = super::GroupInfo::decode(&raw)?;
                groups.push(GroupRef {
                    id,
                    name: info.name,
                });
            }
        }
        sort_by_name(&mut groups, |g| (&g.name, &g.id));
        Ok(Json(MemberGroups { id: member, groups }))
    })
    .await
}
