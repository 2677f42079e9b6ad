//! Groups: list (with a name filter), create, open, rename or describe, delete, add and
//! remove members, and list the resources a group has access to.

use std::collections::BTreeSet;

use pemba_engine::is_valid_object_id;
use pemba_engine::{MetadataCondition, MetadataWrite, Transaction};

use super::relations::{
    create, exact, group_members, group_object, link, membership, must_match, must_not_match,
    naming, of_object, removal, touch, unscoped_id,
};
use super::{changed_concurrently, new_group_id, Groups, ALL};
use crate::groups::error::{Action, Conflict, GroupsError, Missing, Purpose};
use crate::groups::model::{
    Actor, GrantedResource, GroupChanges, GroupDetail, GroupMember, GroupSummary, Input, NewGroup,
};
use crate::groups::names::{fold, skeleton, sort_by_name, valid_description, valid_name};
use crate::groups::store::{group_key, name_key, skeleton_key, GroupInfo};

impl Groups {
    /// Every group of `ws` by name, with member counts; `filter` keeps those whose name
    /// contains it, ignoring case. Any member may ask.
    pub fn list_groups(
        &self,
        actor: &Actor,
        ws: &str,
        filter: Option<&str>,
    ) -> Result<Vec<GroupSummary>, GroupsError> {
        self.admit(actor, ws, Action::ListGroups)?;
        let needle = filter.map(fold).unwrap_or_default();
        let mut groups = Vec::new();
        for (id, info) in self.workspace_groups(ws)? {
            if info.name.to_lowercase().contains(&needle) {
                groups.push(self.summary(id, info)?);
            }
        }
        sort_by_name(&mut groups, |g| (&g.name, &g.id));
        Ok(groups)
    }

    /// Creates a group of `ws` with a fresh id. Admins only; the name must be valid and
    /// free in the workspace, every initial member a member of the workspace.
    pub fn create_group(
        &self,
        actor: &Actor,
        ws: &str,
        request: Input<NewGroup>,
    ) -> Result<GroupDetail, GroupsError> {
        let authorized = self.admit(actor, ws, Action::CreateGroups)?;
        let request = request?;
        let name = valid_name(request.name.as_deref())?;
        let description = valid_description(request.description.as_deref())?;
        let members: BTreeSet<String> = request
            .members
            .iter()
            .map(|m| m.trim().to_string())
            .collect();
        self.name_free(ws, &name, None)?;
        let mut transaction = Transaction {
            preconditions: self.eligible(ws, &members, Purpose::GroupMembers)?,
            ..Transaction::default()
        };
        let id = new_group_id()?;
        let info = GroupInfo { name, description };
        add_group(&mut transaction, ws, &id, &info, &members);
        self.commit(&authorized, transaction, || {
            self.name_free(ws, &info.name, None)
                .err()
                .unwrap_or_else(changed_concurrently)
        })?;
        self.detail(ws, id, info)
    }

    /// Group `id` of `ws` with its members and their roles. Any member may ask.
    pub fn get_group(&self, actor: &Actor, ws: &str, id: &str) -> Result<GroupDetail, GroupsError> {
        let (stored, _) = self.admit_group(actor, ws, id, Action::SeeGroup)?;
        self.detail(ws, id.to_string(), stored.info)
    }

    /// Renames (under the rules of creation) or describes group `id`. Admins only.
    pub fn update_group(
        &self,
        actor: &Actor,
        ws: &str,
        id: &str,
        changes: Input<GroupChanges>,
    ) -> Result<GroupSummary, GroupsError> {
        let (stored, authorized) = self.admit_group(actor, ws, id, Action::EditGroup)?;
        let changes = changes?;
        let old = stored.info;
        let mut new = old.clone();
        if let Some(name) = changes.name.as_deref() {
            new.name = valid_name(Some(name))?;
        }
        if let Some(description) = changes.description.as_deref() {
            new.description = valid_description(Some(description))?;
        }
        if new == old {
            return self.summary(id.to_string(), new);
        }
        let key = group_key(ws, id);
        let mut metadata_conditions = vec![MetadataCondition {
            key: key.clone(),
            expected: Some(stored.raw),
        }];
        let mut metadata = vec![MetadataWrite {
            key,
            value: Some(new.encode()),
        }];
        let renamed = fold(&new.name) != fold(&old.name);
        if renamed {
            self.name_free(ws, &new.name, Some(id))?;
            metadata_conditions.push(MetadataCondition {
                key: name_key(ws, &new.name),
                expected: None,
            });
            if skeleton(&new.name) != skeleton(&old.name) {
                metadata_conditions.push(MetadataCondition {
                    key: skeleton_key(ws, &new.name),
                    expected: None,
                });
                metadata.push(MetadataWrite {
                    key: skeleton_key(ws, &old.name),
                    value: None,
                });
                metadata.push(MetadataWrite {
                    key: skeleton_key(ws, &new.name),
                    value: Some(id.to_string()),
                });
            }
            metadata.push(MetadataWrite {
                key: name_key(ws, &old.name),
                value: None,
            });
            metadata.push(MetadataWrite {
                key: name_key(ws, &new.name),
                value: Some(id.to_string()),
            });
        }
        let transaction = Transaction {
            metadata_conditions,
            metadata,
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, || {
            if renamed {
                if let Err(taken) = self.name_free(ws, &new.name, Some(id)) {
                    return taken;
                }
            }
            changed_concurrently()
        })?;
        self.summary(id.to_string(), new)
    }

    /// Deletes group `id`: the group, its memberships and every grant to it go in one
    /// transaction, so its members lose the access it gave. Admins only; irreversible.
    pub fn delete_group(&self, actor: &Actor, ws: &str, id: &str) -> Result<(), GroupsError> {
        let (stored, authorized) = self.admit_group(actor, ws, id, Action::DeleteGroup)?;
        let transaction = Transaction {
            metadata_conditions: vec![MetadataCondition {
                key: group_key(ws, id),
                expected: Some(stored.raw),
            }],
            delete_filters: vec![
                // Its workspace link and memberships.
                of_object(&group_object(id), None),
                // Every grant to its members, on any resource.
                naming(&group_members(id)),
            ],
            metadata: vec![
                MetadataWrite {
                    key: group_key(ws, id),
                    value: None,
                },
                MetadataWrite {
                    key: name_key(ws, &stored.info.name),
                    value: None,
                },
                MetadataWrite {
                    key: skeleton_key(ws, &stored.info.name),
                    value: None,
                },
            ],
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, changed_concurrently)?;
        Ok(())
    }

    /// Adds `member` to group `id`. Admins only; `member` must be a member of the
    /// workspace (a group id never is: groups are not nested).
    pub fn add_member(
        &self,
        actor: &Actor,
        ws: &str,
        id: &str,
        member: &str,
    ) -> Result<GroupSummary, GroupsError> {
        let (stored, authorized) = self.admit_group(actor, ws, id, Action::AddGroupMembers)?;
        let mut preconditions = self.eligible(ws, [&member.to_string()], Purpose::GroupMembers)?;
        preconditions.push(must_match(exact(&link(&group_object(id), ws))));
        let transaction = Transaction {
            preconditions,
            updates: vec![touch(membership(id, member))],
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, changed_concurrently)?;
        self.summary(id.to_string(), stored.info)
    }

    /// Removes `member` from group `id`. Admins only; not found unless a member.
    pub fn remove_member(
        &self,
        actor: &Actor,
        ws: &str,
        id: &str,
        member: &str,
    ) -> Result<(), GroupsError> {
        let (_, authorized) = self.admit_group(actor, ws, id, Action::RemoveGroupMembers)?;
        let not_member = || {
            Missing::GroupMember {
                group: id.to_string(),
                user: member.to_string(),
            }
            .into()
        };
        if !is_valid_object_id(member) {
            return Err(not_member());
        }
        self.commit(
            &authorized,
            removal(vec![membership(id, member)]),
            not_member,
        )?;
        Ok(())
    }

    /// Every resource group `id` has access to, with the granting relation, by type, id
    /// and relation. Admins only.
    pub fn group_resources(
        &self,
        actor: &Actor,
        ws: &str,
        id: &str,
    ) -> Result<Vec<GrantedResource>, GroupsError> {
        self.admit_group(actor, ws, id, Action::ListGroupResources)?;
        let mut resources: Vec<GrantedResource> = self
            .relationships(&naming(&group_members(id)), ALL)?
            .into_iter()
            // Only resources of this workspace: a grant written through the general API on
            // another workspace's resource is not this workspace's to see (its id would
            // tell another tenant's names).
            .filter_map(|t| {
                let local = unscoped_id(ws, &t.resource.object_id)?.to_string();
                Some(GrantedResource {
                    object: t.resource.to_string(),
                    object_type: t.resource.object_type,
                    id: local,
                    relation: t.relation,
                })
            })
            .collect();
        resources.sort_by(|a, b| {
            (&a.object_type, &a.id, &a.relation).cmp(&(&b.object_type, &b.id, &b.relation))
        });
        Ok(resources)
    }

    /// Refused with the group that already has `name` in `ws`, if one does.
    /// Whether `name` is free in `ws`: no group (but `except`, the one being renamed) has
    /// it once folded, nor a name it could be mistaken for.
    fn name_free(&self, ws: &str, name: &str, except: Option<&str>) -> Result<(), GroupsError> {
        if let Some(id) = self.engine.metadata(&name_key(ws, name))? {
            if except != Some(id.as_str()) {
                // A name key whose record is gone (never written so) still refuses the name.
                let existing = match self.group_record(ws, &id) {
                    Ok(stored) => stored.info.name,
                    Err(GroupsError::NotFound { .. }) => name.to_string(),
                    Err(error) => return Err(error),
                };
                return Err(Conflict::NameTaken {
                    workspace: ws.to_string(),
                    name: name.to_string(),
                    existing,
                    id,
                }
                .into());
            }
        }
        let wanted = skeleton(name);
        for (id, info) in self.workspace_groups(ws)? {
            if except != Some(id.as_str()) && skeleton(&info.name) == wanted {
                return Err(Conflict::NameConfusable {
                    workspace: ws.to_string(),
                    name: name.to_string(),
                    existing: info.name,
                    id,
                }
                .into());
            }
        }
        Ok(())
    }

    /// A group opened: its members with their roles.
    fn detail(&self, ws: &str, id: String, info: GroupInfo) -> Result<GroupDetail, GroupsError> {
        let mut members = Vec::new();
        for member in self.members_of(&id)? {
            members.push(GroupMember {
                role: self.role_of(ws, &member)?,
                id: member,
            });
        }
        Ok(GroupDetail {
            id,
            name: info.name,
            description: info.description,
            members,
        })
    }
}

/// Adds to `transaction` the creation of group `id` of `ws` with `info` and `members`: its
/// workspace link and memberships, its record, name key and skeleton key, each conditioned
/// on being absent so a racing create of the same (or a confusable) name or id cannot
/// also win.
pub(super) fn add_group(
    transaction: &mut Transaction,
    ws: &str,
    id: &str,
    info: &GroupInfo,
    members: &BTreeSet<String>,
) {
    let group = group_object(id);
    transaction
        .preconditions
        .push(must_not_match(of_object(&group, None)));
    transaction.updates.push(create(link(&group, ws)));
    transaction
        .updates
        .extend(members.iter().map(|m| touch(membership(id, m))));
    for (key, value) in [
        (name_key(ws, &info.name), id.to_string()),
        (skeleton_key(ws, &info.name), id.to_string()),
        (group_key(ws, id), info.encode()),
    ] {
        transaction.metadata_conditions.push(MetadataCondition {
            key: key.clone(),
            expected: None,
        });
        transaction.metadata.push(MetadataWrite {
            key,
            value: Some(value),
        });
    }
}
