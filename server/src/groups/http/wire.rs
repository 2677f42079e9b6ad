//! The JSON shapes of the user-groups routes: request bodies with the command input each
//! becomes ([`WireBody`], decoded by [`decode`]), and answers built from the service's
//! results. Field names are camelCase, as in the rest of the API.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Code;
use crate::groups::error::{GroupsError, RowError};
use crate::groups::model::{
    Access, GrantedResource, GroupAccess, GroupChanges, GroupDetail, GroupRef, GroupSummary, Input,
    ListedResource, Member, NewGroup, NewWorkspace, ResourceCreated, Role, RoleSet, Shared,
    UserAccess, WorkbookRole, WorkspaceCreated,
};

/// A JSON request body: the shape it is read in and the command input it becomes.
pub(crate) trait WireBody: DeserializeOwned {
    /// The command input.
    type Input;

    /// The input this body asks for; what the body says wrongly is refused here, but only
    /// reported after the actor is authorized (see [`Input`]).
    fn into_input(self) -> Input<Self::Input>;
}

/// Decodes `bytes` as the body `B`, as its route does: an empty (or all-whitespace) body
/// reads as `{}`; JSON that is not `B` is [`GroupsError::Unreadable`].
pub(crate) fn decode<B: WireBody>(bytes: &[u8]) -> Input<B::Input> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let body: B = serde_json::from_slice(text).map_err(|error| GroupsError::Unreadable {
        reason: error.to_string(),
    })?;
    body.into_input()
}

/// `PUT /v1/workspaces/{ws}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWorkspace {
    admin: Option<String>,
}

impl WireBody for CreateWorkspace {
    type Input = NewWorkspace;
    fn into_input(self) -> Input<NewWorkspace> {
        Ok(NewWorkspace { admin: self.admin })
    }
}

/// `PUT /v1/workspaces/{ws}/members/{user}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    role: Option<String>,
}

impl WireBody for SetRole {
    type Input = Role;
    fn into_input(self) -> Input<Role> {
        Role::parse(self.role.as_deref())
    }
}

/// `POST /v1/workspaces/{ws}/groups`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGroup {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

impl WireBody for CreateGroup {
    type Input = NewGroup;
    fn into_input(self) -> Input<NewGroup> {
        Ok(NewGroup {
            name: self.name,
            description: self.description,
            members: self.members,
        })
    }
}

/// `PATCH /v1/workspaces/{ws}/groups/{group}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditGroup {
    name: Option<String>,
    description: Option<String>,
}

impl WireBody for EditGroup {
    type Input = GroupChanges;
    fn into_input(self) -> Input<GroupChanges> {
        Ok(GroupChanges {
            name: self.name,
            description: self.description,
        })
    }
}

/// `PUT .../workbooks/{book}/access/{groups|users}/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Share {
    role: Option<String>,
}

impl WireBody for Share {
    type Input = Option<WorkbookRole>;
    fn into_input(self) -> Input<Option<WorkbookRole>> {
        WorkbookRole::parse(self.role.as_deref())
    }
}

// ---------------------------------------------------------------------------------------
// Answers

fn role_name(role: Option<WorkbookRole>) -> Option<&'static str> {
    role.map(WorkbookRole::name)
}

/// `{id, admin}`.
#[derive(Serialize)]
pub(crate) struct WorkspaceJson {
    id: String,
    admin: String,
}

impl From<WorkspaceCreated> for WorkspaceJson {
    fn from(created: WorkspaceCreated) -> Self {
        WorkspaceJson {
            id: created.id,
            admin: created.admin,
        }
    }
}

/// `{id, role}` of a member.
#[derive(Serialize)]
pub(crate) struct MemberRoleJson {
    id: String,
    role: &'static str,
}

impl From<RoleSet> for MemberRoleJson {
    fn from(set: RoleSet) -> Self {
        MemberRoleJson {
            id: set.user,
            role: set.role.name(),
        }
    }
}

/// `{id, name}` of a group.
#[derive(Serialize)]
pub(crate) struct GroupRefJson {
    id: String,
    name: String,
}

fn group_refs(groups: Vec<GroupRef>) -> Vec<GroupRefJson> {
    groups
        .into_iter()
        .map(|g| GroupRefJson {
            id: g.id,
            name: g.name,
        })
        .collect()
}

/// `{members: [{id, role, groups}]}`.
#[derive(Serialize)]
pub(crate) struct MemberListJson {
    members: Vec<MemberJson>,
}

#[derive(Serialize)]
struct MemberJson {
    id: String,
    role: &'static str,
    groups: Vec<GroupRefJson>,
}

impl From<Vec<Member>> for MemberListJson {
    fn from(members: Vec<Member>) -> Self {
        MemberListJson {
            members: members
                .into_iter()
                .map(|m| MemberJson {
                    id: m.id,
                    role: m.role.name(),
                    groups: group_refs(m.groups),
                })
                .collect(),
        }
    }
}

/// `{id, groups}`: one member's groups.
#[derive(Serialize)]
pub(crate) struct MemberGroupsJson {
    id: String,
    groups: Vec<GroupRefJson>,
}

impl MemberGroupsJson {
    pub(crate) fn new(id: String, groups: Vec<GroupRef>) -> Self {
        MemberGroupsJson {
            id,
            groups: group_refs(groups),
        }
    }
}

/// `{id, name, description, memberCount}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupSummaryJson {
    id: String,
    name: String,
    description: String,
    member_count: usize,
}

impl From<GroupSummary> for GroupSummaryJson {
    fn from(group: GroupSummary) -> Self {
        GroupSummaryJson {
            id: group.id,
            name: group.name,
            description: group.description,
            member_count: group.member_count,
        }
    }
}

/// `{groups: [summary]}`: a listing, or the groups an import created.
#[derive(Serialize)]
pub(crate) struct GroupListJson {
    groups: Vec<GroupSummaryJson>,
}

impl From<Vec<GroupSummary>> for GroupListJson {
    fn from(groups: Vec<GroupSummary>) -> Self {
        GroupListJson {
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }
}

/// `{id, name, description, memberCount, members: [{id, role}]}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupDetailJson {
    id: String,
    name: String,
    description: String,
    member_count: usize,
    members: Vec<GroupMemberJson>,
}

#[derive(Serialize)]
struct GroupMemberJson {
    id: String,
    role: Option<&'static str>,
}

impl From<GroupDetail> for GroupDetailJson {
    fn from(group: GroupDetail) -> Self {
        GroupDetailJson {
            id: group.id,
            name: group.name,
            description: group.description,
            member_count: group.members.len(),
            members: group
                .members
                .into_iter()
                .map(|m| GroupMemberJson {
                    id: m.id,
                    role: m.role.map(Role::name),
                })
                .collect(),
        }
    }
}

/// `{resources: [{type, id, object, relation}]}`: `object` is what apps check.
#[derive(Serialize)]
pub(crate) struct ResourceListJson {
    resources: Vec<ResourceJson>,
}

#[derive(Serialize)]
struct ResourceJson {
    #[serde(rename = "type")]
    object_type: String,
    id: String,
    object: String,
    relation: String,
}

impl From<Vec<GrantedResource>> for ResourceListJson {
    fn from(resources: Vec<GrantedResource>) -> Self {
        ResourceListJson {
            resources: resources
                .into_iter()
                .map(|r| ResourceJson {
                    object_type: r.object_type,
                    id: r.id,
                    object: r.object,
                    relation: r.relation,
                })
                .collect(),
        }
    }
}

/// The 422 of a refused import: the API's error body plus `errors: [{line, message}]`.
#[derive(Serialize)]
pub(crate) struct ImportErrorsJson {
    code: u8,
    message: String,
    details: Vec<serde_json::Value>,
    errors: Vec<RowErrorJson>,
}

#[derive(Serialize)]
struct RowErrorJson {
    line: u64,
    message: String,
}

impl ImportErrorsJson {
    pub(crate) fn new(message: String, rows: &[RowError]) -> Self {
        ImportErrorsJson {
            code: Code::InvalidArgument as u8,
            message,
            details: Vec::new(),
            errors: rows
                .iter()
                .map(|row| RowErrorJson {
                    line: row.line,
                    message: row.problem.to_string(),
                })
                .collect(),
        }
    }
}

/// `{resources: [{id, owners}]}`: the connections or workbooks of a workspace.
#[derive(Serialize)]
pub(crate) struct WorkspaceResourcesJson {
    resources: Vec<ListedJson>,
}

#[derive(Serialize)]
struct ListedJson {
    id: String,
    owners: Vec<String>,
}

impl From<Vec<ListedResource>> for WorkspaceResourcesJson {
    fn from(listed: Vec<ListedResource>) -> Self {
        WorkspaceResourcesJson {
            resources: listed
                .into_iter()
                .map(|r| ListedJson {
                    id: r.id,
                    owners: r.owners,
                })
                .collect(),
        }
    }
}

/// `{id, object, workspace, owner}` of a connection or workbook: `object` is the engine
/// object apps name in checks (`connection:acme/warehouse`).
#[derive(Serialize)]
pub(crate) struct CreatedJson {
    id: String,
    object: String,
    workspace: String,
    owner: String,
}

impl From<ResourceCreated> for CreatedJson {
    fn from(created: ResourceCreated) -> Self {
        CreatedJson {
            id: created.id,
            object: created.object,
            workspace: created.workspace,
            owner: created.owner,
        }
    }
}

/// `{group, memberCount, role?}` or `{user, role?}`.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum SharedJson {
    /// Shared with a group.
    Group {
        group: String,
        #[serde(rename = "memberCount")]
        member_count: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<&'static str>,
    },
    /// Shared with a user.
    User {
        user: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<&'static str>,
    },
}

impl From<Shared> for SharedJson {
    fn from(shared: Shared) -> Self {
        match shared {
            Shared::Group {
                group,
                member_count,
                role,
            } => SharedJson::Group {
                group,
                member_count,
                role: role_name(role),
            },
            Shared::User { user, role } => SharedJson::User {
                user,
                role: role_name(role),
            },
        }
    }
}

/// `{owners, users: [{id, role?}], groups: [{id, name, memberCount, role?}]}`.
#[derive(Serialize)]
pub(crate) struct AccessJson {
    owners: Vec<String>,
    users: Vec<UserAccessJson>,
    groups: Vec<GroupAccessJson>,
}

#[derive(Serialize)]
struct UserAccessJson {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupAccessJson {
    id: String,
    name: String,
    member_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

impl From<Access> for AccessJson {
    fn from(access: Access) -> Self {
        AccessJson {
            owners: access.owners,
            users: access
                .users
                .into_iter()
                .map(|UserAccess { id, role }| UserAccessJson {
                    id,
                    role: role_name(role),
                })
                .collect(),
            groups: access
                .groups
                .into_iter()
                .map(|g: GroupAccess| GroupAccessJson {
                    id: g.id,
                    name: g.name,
                    member_count: g.member_count,
                    role: role_name(g.role),
                })
                .collect(),
        }
    }
}
