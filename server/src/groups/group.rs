//! Groups: list (with a name filter), create, open, rename or describe, delete, add and
//! remove members, and list the resources a group has access to.

use std::collections::BTreeSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use pemba_engine::{
    MetadataCondition, MetadataWrite, Operation, RelationshipFilter, SubjectFilter, Transaction,
};
use serde::{Deserialize, Serialize};

use super::{
    authorize, blocking, changed_concurrently, commit, enter, exact, fold, group_info, group_key,
    group_members, group_members_subject, members_preconditions, must_match, must_not_match,
    name_free, name_key, new_group_id, object, read_all, role_of, route, sort_by_name, summary,
    tuple, update, user, valid_description, valid_name, workspace_groups, Actor, Body, GroupInfo,
    GroupSummary, Ids, Role,
};
use crate::error::ApiError;
use crate::routes::Route;
use crate::AppState;

pub(super) fn routes() -> Vec<Route> {
    const GROUPS: &str = "/v1/workspaces/{ws}/groups";
    const GROUP: &str = "/v1/workspaces/{ws}/groups/{group}";
    const MEMBER: &str = "/v1/workspaces/{ws}/groups/{group}/members/{member}";
    vec![
        route(Method::GET, GROUPS, get(list_groups)),
        route(Method::POST, GROUPS, post(create_group)),
        route(Method::GET, GROUP, get(open_group)),
        route(Method::PATCH, GROUP, patch(edit_group)),
        route(Method::DELETE, GROUP, delete(delete_group)),
        route(Method::PUT, MEMBER, put(add_member)),
        route(Method::DELETE, MEMBER, delete(remove_member)),
        route(
            Method::GET,
            "/v1/workspaces/{ws}/groups/{group}/resources",
            get(group_resources),
        ),
    ]
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
}

#[derive(Serialize)]
struct GroupList {
    groups: Vec<GroupSummary>,
}

/// `GET /v1/workspaces/{ws}/groups?q=TEXT`: every group by name, with member counts;
/// `q` keeps those whose name contains it, ignoring case.
async fn list_groups(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids(ws): Ids<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<GroupList>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!("invalid query string: {}", rejection.body_text()))
    })?;
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "view_groups",
            &actor,
            "list groups",
        )?;
        let needle = query.q.as_deref().map(fold).unwrap_or_default();
        let mut groups = Vec::new();
        for (id, info) in workspace_groups(engine, &ws)? {
            if info.name.to_lowercase().contains(&needle) {
                groups.push(summary(engine, id, info)?);
            }
        }
        sort_by_name(&mut groups, |g| (&g.name, &g.id));
        Ok(Json(GroupList { groups }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGroup {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDetail {
    id: String,
    name: String,
    description: String,
    member_count: usize,
    members: Vec<MemberRole>,
}

#[derive(Serialize)]
struct MemberRole {
    id: String,
    role: Option<Role>,
}

fn detail(
    engine: &pemba_engine::Engine,
    ws: &str,
    id: String,
    info: GroupInfo,
) -> Result<GroupDetail, ApiError> {
    let mut members = Vec::new();
    for member in group_members(engine, &id)? {
        members.push(MemberRole {
            role: role_of(engine, ws, &member)?,
            id: member,
        });
    }
    Ok(GroupDetail {
        id,
        name: info.name,
        description: info.description,
        member_count: members.len(),
        members,
    })
}

/// `POST /v1/workspaces/{ws}/groups`: 201 with the new group.
async fn create_group(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids(ws): Ids<String>,
    body: Body,
) -> Result<(StatusCode, Json<GroupDetail>), ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        authorize(
            engine,
            &object("workspace", &ws),
            "manage_groups",
            &actor,
            "create groups (only admins can)",
        )?;
        let request: CreateGroup = body.json()?;
        let name = valid_name(request.name.as_deref())?;
        let description = valid_description(request.description.as_deref())?;
        let members: BTreeSet<String> = request
            .members
            .iter()
            .map(|m| m.trim().to_string())
            .collect();
        name_free(engine, &ws, &name)?;
        let mut preconditions = members_preconditions(engine, &ws, &members)?;
        let id = new_group_id()?;
        let group = object("group", &id);
        preconditions.push(must_not_match(RelationshipFilter {
            resource_type: Some("group".to_string()),
            resource_id: Some(id.clone()),
            ..RelationshipFilter::default()
        }));
        let mut updates = vec![update(
            Operation::Create,
            tuple(
                group.clone(),
                "workspace",
                pemba_engine::SubjectRef::object("workspace", &ws),
            ),
        )];
        updates.extend(
            members
                .iter()
                .map(|m| update(Operation::Touch, tuple(group.clone(), "member", user(m)))),
        );
        let info = GroupInfo { name, description };
        let transaction = Transaction {
            preconditions,
            metadata_conditions: vec![
                MetadataCondition {
                    key: name_key(&ws, &info.name),
                    expected: None,
                },
                MetadataCondition {
                    key: group_key(&ws, &id),
                    expected: None,
                },
            ],
            updates,
            metadata: vec![
                MetadataWrite {
                    key: name_key(&ws, &info.name),
                    value: Some(id.clone()),
                },
                MetadataWrite {
                    key: group_key(&ws, &id),
                    value: Some(info.encode()?),
                },
            ],
            ..Transaction::default()
        };
        commit(engine, &transaction, || {
            name_free(engine, &ws, &info.name)
                .err()
                .unwrap_or_else(changed_concurrently)
        })?;
        Ok((StatusCode::CREATED, Json(detail(engine, &ws, id, info)?)))
    })
    .await
}

/// `GET /v1/workspaces/{ws}/groups/{group}`: the group with its members and their roles.
async fn open_group(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): Ids<(String, String)>,
) -> Result<Json<GroupDetail>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let (info, _) = group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "view",
            &actor,
            "see this group",
        )?;
        Ok(Json(detail(engine, &ws, id, info)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditGroup {
    name: Option<String>,
    description: Option<String>,
}

/// `PATCH /v1/workspaces/{ws}/groups/{group}`: rename (same rules as create) or describe.
async fn edit_group(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): Ids<(String, String)>,
    body: Body,
) -> Result<Json<GroupSummary>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let (old, raw) = group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "manage",
            &actor,
            "rename or describe groups (only admins can)",
        )?;
        let request: EditGroup = body.json()?;
        let mut new = old.clone();
        if let Some(name) = request.name.as_deref() {
            new.name = valid_name(Some(name))?;
        }
        if let Some(description) = request.description.as_deref() {
            new.description = valid_description(Some(description))?;
        }
        if new == old {
            return Ok(Json(summary(engine, id, new)?));
        }
        let mut metadata_conditions = vec![MetadataCondition {
            key: group_key(&ws, &id),
            expected: Some(raw),
        }];
        let mut metadata = vec![MetadataWrite {
            key: group_key(&ws, &id),
            value: Some(new.encode()?),
        }];
        let renamed = fold(&new.name) != fold(&old.name);
        if renamed {
            name_free(engine, &ws, &new.name)?;
            metadata_conditions.push(MetadataCondition {
                key: name_key(&ws, &new.name),
                expected: None,
            });
            metadata.push(MetadataWrite {
                key: name_key(&ws, &old.name),
                value: None,
            });
            metadata.push(MetadataWrite {
                key: name_key(&ws, &new.name),
                value: Some(id.clone()),
            });
        }
        let transaction = Transaction {
            metadata_conditions,
            metadata,
            ..Transaction::default()
        };
        commit(engine, &transaction, || {
            if renamed {
                if let Err(taken) = name_free(engine, &ws, &new.name) {
                    return taken;
                }
            }
            changed_concurrently()
        })?;
        Ok(Json(summary(engine, id, new)?))
    })
    .await
}

/// `DELETE /v1/workspaces/{ws}/groups/{group}`: the group, its memberships and every grant
/// to it go in one transaction; its members lose the access it gave.
async fn delete_group(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): Ids<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let (info, raw) = group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "manage",
            &actor,
            "delete groups (only admins can)",
        )?;
        let transaction = Transaction {
            metadata_conditions: vec![MetadataCondition {
                key: group_key(&ws, &id),
                expected: Some(raw),
            }],
            delete_filters: vec![
                // Its workspace link and memberships.
                RelationshipFilter {
                    resource_type: Some("group".to_string()),
                    resource_id: Some(id.clone()),
                    ..RelationshipFilter::default()
                },
                // Every grant to its members, on any resource.
                RelationshipFilter {
                    subject: Some(SubjectFilter {
                        subject_type: "group".to_string(),
                        subject_id: Some(id.clone()),
                        relation: Some("member".to_string()),
                    }),
                    ..RelationshipFilter::default()
                },
            ],
            metadata: vec![
                MetadataWrite {
                    key: group_key(&ws, &id),
                    value: None,
                },
                MetadataWrite {
                    key: name_key(&ws, &info.name),
                    value: None,
                },
            ],
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `PUT /v1/workspaces/{ws}/groups/{group}/members/{member}`: 422 unless `member` is a
/// member of the workspace (a group id never is: groups are not nested).
async fn add_member(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id, member)): Ids<(String, String, String)>,
) -> Result<Json<GroupSummary>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        let (info, _) = group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "manage",
            &actor,
            "add group members (only admins can)",
        )?;
        let mut preconditions = members_preconditions(engine, &ws, [&member])?;
        let group_link = tuple(
            object("group", &id),
            "workspace",
            pemba_engine::SubjectRef::object("workspace", &ws),
        );
        preconditions.push(must_match(exact(&group_link)));
        let transaction = Transaction {
            preconditions,
            updates: vec![update(
                Operation::Touch,
                tuple(object("group", &id), "member", user(&member)),
            )],
            ..Transaction::default()
        };
        commit(engine, &transaction, changed_concurrently)?;
        Ok(Json(summary(engine, id, info)?))
    })
    .await
}

/// `DELETE /v1/workspaces/{ws}/groups/{group}/members/{member}`: 404 unless a member.
async fn remove_member(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id, member)): Ids<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "manage",
            &actor,
            "remove group members (only admins can)",
        )?;
        let not_member =
            || ApiError::not_found(format!("`{member}` is not a member of group `{id}`"));
        if !pemba_engine::is_valid_object_id(&member) {
            return Err(not_member());
        }
        let membership = tuple(object("group", &id), "member", user(&member));
        let transaction = Transaction {
            preconditions: vec![must_match(exact(&membership))],
            updates: vec![update(Operation::Delete, membership)],
            ..Transaction::default()
        };
        commit(engine, &transaction, not_member)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Serialize)]
struct ResourceEntry {
    #[serde(rename = "type")]
    object_type: String,
    id: String,
    relation: String,
}

#[derive(Serialize)]
struct ResourceList {
    resources: Vec<ResourceEntry>,
}

/// `GET /v1/workspaces/{ws}/groups/{group}/resources`: admins only (403 for others).
async fn group_resources(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Ids((ws, id)): Ids<(String, String)>,
) -> Result<Json<ResourceList>, ApiError> {
    blocking(&state, move |engine| {
        enter(engine, &ws, &actor)?;
        group_info(engine, &ws, &id)?;
        authorize(
            engine,
            &object("group", &id),
            "view_resources",
            &actor,
            "list the resources of a group (only admins can)",
        )?;
        let subject = group_members_subject(&id);
        let grants = read_all(
            engine,
            &RelationshipFilter {
                subject: Some(SubjectFilter {
                    subject_type: "group".to_string(),
                    subject_id: Some(id.clone()),
                    relation: subject.relation.clone(),
                }),
                ..RelationshipFilter::default()
            },
        )?;
        let mut resources: Vec<ResourceEntry> = grants
            .into_iter()
            .map(|t| ResourceEntry {
                object_type: t.resource.object_type,
                id: t.resource.object_id,
                relation: t.relation,
            })
            .collect();
        resources.sort_by(|a, b| {
            (&a.object_type, &a.id, &a.relation).cmp(&(&b.object_type, &b.id, &b.relation))
        });
        Ok(Json(ResourceList { resources }))
    })
    .await
}
