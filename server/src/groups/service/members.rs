//! Workspaces and their members: create a workspace with its first admin, add a member or
//! change a role, remove a member (out of every group, every grant in the workspace
//! revoked), list members with their groups, and one member's groups.

use std::collections::BTreeMap;

use pemba_engine::is_valid_object_id;
use pemba_engine::{
    MetadataCondition, MetadataWrite, RelationshipFilter, SubjectFilter, Transaction,
};

use super::relations::{
    delete, exact, memberships_of, must_match, must_not_match, role_tuple, roles, touch,
    valid_workspace_id, workspace_object,
};
use super::{changed_concurrently, Groups, ALL};
use crate::groups::error::{Action, Conflict, GroupsError, Invalid, Missing};
use crate::groups::model::{
    Actor, GroupRef, Input, Member, NewWorkspace, Role, RoleSet, WorkspaceCreated,
};
use crate::groups::names::sort_by_name;
use crate::groups::store::{
    group_key, member_version_key, workspace_key, GroupInfo, WORKSPACE_VALUE,
};

/// How often a removal from the workspace starts over when the member gained a
/// relationship while it ran.
const REMOVAL_ATTEMPTS: usize = 8;

impl Groups {
    /// Creates workspace `ws` with its first admin. No actor: the calling service vouches
    /// for the admin. Refused when `ws` exists.
    pub fn create_workspace(
        &self,
        ws: &str,
        request: Input<NewWorkspace>,
    ) -> Result<WorkspaceCreated, GroupsError> {
        self.check_schema()?;
        let request = request?;
        if !valid_workspace_id(ws) {
            return Err(Invalid::WorkspaceId { id: ws.to_string() }.into());
        }
        let admin = request
            .admin
            .map(|a| a.trim().to_string())
            .ok_or(Invalid::AdminRequired)?;
        if !is_valid_object_id(&admin) {
            return Err(Invalid::UserId { id: admin }.into());
        }
        let key = workspace_key(ws);
        let exists = || {
            Conflict::WorkspaceExists {
                workspace: ws.to_string(),
            }
            .into()
        };
        if self.engine.metadata(&key)?.is_some() {
            return Err(exists());
        }
        // A workspace that relationships written through the general API already name is not
        // adopted: it would keep whatever admins those gave it.
        let this = workspace_object(ws);
        let transaction = Transaction {
            preconditions: vec![
                must_not_match(RelationshipFilter::resource(&this)),
                must_not_match(RelationshipFilter::subject(
                    SubjectFilter::of_type(this.object_type.clone())
                        .with_id(this.object_id.clone()),
                )),
            ],
            metadata_conditions: vec![MetadataCondition {
                key: key.clone(),
                expected: None,
            }],
            updates: vec![touch(role_tuple(ws, Role::Admin, &admin))],
            metadata: vec![MetadataWrite {
                key,
                value: Some(WORKSPACE_VALUE.to_string()),
            }],
            ..Transaction::default()
        };
        self.commit_bootstrap(transaction, exists)?;
        Ok(WorkspaceCreated {
            id: ws.to_string(),
            admin,
        })
    }

    /// Adds `member` to `ws` with `role`, or changes their role (a no-op when it already is
    /// that role). Admins only; refused when it would leave the workspace without an admin.
    pub fn set_role(
        &self,
        actor: &Actor,
        ws: &str,
        member: &str,
        role: Input<Role>,
    ) -> Result<RoleSet, GroupsError> {
        let authorized = self.admit(actor, ws, Action::SetRoles)?;
        let role = role?;
        if !is_valid_object_id(member) {
            return Err(Invalid::UserId {
                id: member.to_string(),
            }
            .into());
        }
        if self.is_group(ws, member)? {
            return Err(Invalid::GroupNotUser {
                id: member.to_string(),
            }
            .into());
        }
        let current = self.role_of(ws, member)?;
        let answer = RoleSet {
            user: member.to_string(),
            role,
            added: current.is_none(),
        };
        if current == Some(role) {
            return Ok(answer);
        }
        let mut preconditions = Vec::new();
        let mut updates = Vec::new();
        match current {
            None => preconditions.push(must_not_match(roles(ws, Some(member)))),
            Some(old) => {
                let old_tuple = role_tuple(ws, old, member);
                preconditions.push(must_match(exact(&old_tuple)));
                updates.push(delete(old_tuple));
                if old == Role::Admin {
                    preconditions.push(self.other_admin_witness(ws, member)?);
                }
            }
        }
        updates.push(touch(role_tuple(ws, role, member)));
        let transaction = Transaction {
            preconditions,
            updates,
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, changed_concurrently)?;
        Ok(answer)
    }

    /// Removes `member` from `ws` in one transaction: their role, every group membership
    /// and every grant or ownership they had in this workspace, as of the revision it
    /// commits. Admins only; refused for the last admin.
    ///
    /// The relationships to delete are read first, so the commit is conditioned on the
    /// member's version (see [`member_version_key`]): if anything gave them a relationship
    /// here since the read, nothing is written and the removal starts over, a bounded
    /// number of times. A removal that answers success removed everything.
    pub fn remove_from_workspace(
        &self,
        actor: &Actor,
        ws: &str,
        member: &str,
    ) -> Result<(), GroupsError> {
        let authorized = self.admit(actor, ws, Action::RemoveMembers)?;
        for _ in 0..REMOVAL_ATTEMPTS {
            let version_key = member_version_key(ws, member);
            let version = self.engine.metadata(&version_key)?;
            let role = self
                .role_of(ws, member)?
                .ok_or_else(|| Missing::WorkspaceMember {
                    workspace: ws.to_string(),
                    user: member.to_string(),
                })?;
            let mut preconditions = vec![must_match(exact(&role_tuple(ws, role, member)))];
            if role == Role::Admin {
                preconditions.push(self.other_admin_witness(ws, member)?);
            }
            let doomed = self.relationships_in_workspace(ws, member)?;
            let transaction = Transaction {
                preconditions,
                metadata_conditions: vec![MetadataCondition {
                    key: version_key,
                    expected: version,
                }],
                updates: doomed.into_iter().map(delete).collect(),
                ..Transaction::default()
            };
            match self.commit(&authorized, transaction, changed_concurrently) {
                Err(GroupsError::Conflict(Conflict::ChangedConcurrently)) => continue,
                outcome => return outcome.map(drop),
            }
        }
        Err(changed_concurrently())
    }

    /// Every member of `ws` by id, with role and groups (by name). Any member may ask.
    pub fn list_members(&self, actor: &Actor, ws: &str) -> Result<Vec<Member>, GroupsError> {
        self.admit(actor, ws, Action::ListMembers)?;
        let mut members: BTreeMap<String, Member> = BTreeMap::new();
        for t in self.relationships(&roles(ws, None), ALL)? {
            if let Some(role) = Role::from_name(&t.relation) {
                let id = t.subject.object.object_id;
                members.insert(
                    id.clone(),
                    Member {
                        id,
                        role,
                        groups: Vec::new(),
                    },
                );
            }
        }
        for (group, info) in self.workspace_groups(ws)? {
            for member in self.members_of(&group)? {
                if let Some(entry) = members.get_mut(&member) {
                    entry.groups.push(GroupRef {
                        id: group.clone(),
                        name: info.name.clone(),
                    });
                }
            }
        }
        let mut members: Vec<Member> = members.into_values().collect();
        for member in &mut members {
            sort_by_name(&mut member.groups, |g| (&g.name, &g.id));
        }
        Ok(members)
    }

    /// The groups of `ws` that `member` is in, by name. Any member may ask about any.
    pub fn member_groups(
        &self,
        actor: &Actor,
        ws: &str,
        member: &str,
    ) -> Result<Vec<GroupRef>, GroupsError> {
        self.admit(actor, ws, Action::SeeGroups)?;
        if self.role_of(ws, member)?.is_none() {
            return Err(Missing::WorkspaceMember {
                workspace: ws.to_string(),
                user: member.to_string(),
            }
            .into());
        }
        let mut groups = Vec::new();
        for t in self.relationships(&memberships_of(member), ALL)? {
            let id = t.resource.object_id;
            let key = group_key(ws, &id);
            // Memberships in other workspaces' groups have no record under this one.
            if let Some(raw) = self.engine.metadata(&key)? {
                let info = GroupInfo::decode(&key, &raw)?;
                groups.push(GroupRef {
                    id,
                    name: info.name,
                });
            }
        }
        sort_by_name(&mut groups, |g| (&g.name, &g.id));
        Ok(groups)
    }
}
