//! Connections and workbooks: created by any member (who owns them), shared with and
//! unshared from groups and users by their owner or an admin, who can also list the access.
//!
//! A connection has one grant relation; a workbook two (editor, viewer), one per grantee,
//! picked by the role a share names.

use std::collections::BTreeMap;

use pemba_engine::is_valid_object_id;
use pemba_engine::{ObjectRef, RelationshipFilter, SubjectFilter, SubjectRef, Transaction, Update};

use super::relations::{
    create, delete, exact, grant_relations, grantee_subject, group_object, link,
    max_resource_id_len, must_match, must_not_match, of_object, owner_relation, removal,
    resource_object, roles, touch, tuple, unscoped_id, user, valid_resource_id, workspace_relation,
};
use super::{changed_concurrently, Authorized, Groups, ALL};
use crate::groups::error::{Action, Conflict, GroupsError, Invalid, Missing, Purpose};
use crate::groups::model::{
    Access, Actor, Grantee, GroupAccess, Input, ListedResource, Resource, ResourceCreated,
    ResourceKind, Shared, UserAccess, WorkbookRole,
};
use crate::groups::names::sort_by_name;
use crate::groups::vocabulary::{connection, group, workspace};

impl Groups {
    /// Creates `resource` in `ws`, owned by the actor (any member). Answers
    /// `created: false` when the actor already owns it here; refused when the id is taken.
    pub fn create_resource(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &Resource,
    ) -> Result<ResourceCreated, GroupsError> {
        let kind = resource.kind;
        let authorized = self.admit(actor, ws, Action::CreateResources(kind))?;
        if !valid_resource_id(ws, &resource.id) {
            return Err(Invalid::ResourceId {
                kind,
                id: resource.id.clone(),
                max: max_resource_id_len(ws),
            }
            .into());
        }
        let object = resource_object(ws, resource);
        let owner = tuple(object.clone(), owner_relation(kind), user(actor.id()));
        let mut answer = ResourceCreated {
            id: resource.id.clone(),
            object: object.to_string(),
            workspace: ws.to_string(),
            owner: actor.id().to_string(),
            created: true,
        };
        let taken = || {
            Conflict::ResourceTaken {
                kind,
                id: resource.id.clone(),
            }
            .into()
        };
        if let Some(existing) = self.workspace_of(&object)? {
            if existing == ws && !self.relationships(&exact(&owner), 1)?.is_empty() {
                answer.created = false;
                return Ok(answer);
            }
            return Err(taken());
        }
        let transaction = Transaction {
            preconditions: vec![
                must_not_match(of_object(
                    &object,
                    Some(workspace_relation(kind.type_name())),
                )),
                must_match(roles(ws, Some(actor.id()))),
            ],
            updates: vec![create(link(&object, ws)), touch(owner)],
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, taken)?;
        Ok(answer)
    }

    /// Every resource of `kind` in `ws`, by id, with its owners: what the console lists
    /// before a member opens one. Any member (as the group directory); who may share each
    /// is still decided when its access is read.
    pub fn list_resources(
        &self,
        actor: &Actor,
        ws: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ListedResource>, GroupsError> {
        self.enter(actor, ws)?;
        let in_workspace = RelationshipFilter {
            resource_type: Some(kind.type_name().to_string()),
            resource_id: None,
            relation: Some(workspace_relation(kind.type_name()).to_string()),
            subject: Some(SubjectFilter::exact(&SubjectRef::object(
                workspace::TYPE,
                ws,
            ))),
        };
        let mut listed = Vec::new();
        for link in self.relationships(&in_workspace, ALL)? {
            // Engine ids are `{ws}/{id}`; a link to this workspace is always so spelled.
            let Some(id) = unscoped_id(ws, &link.resource.object_id) else {
                continue;
            };
            let id = id.to_string();
            let owners = self
                .relationships(&of_object(&link.resource, Some(owner_relation(kind))), ALL)?
                .into_iter()
                .map(|t| t.subject.object.object_id)
                .collect();
            listed.push(ListedResource { id, owners });
        }
        Ok(listed)
    }

    /// Shares `resource` with `grantee`, replacing any grant it had: a group of `ws`, or a
    /// member of `ws`. Workbooks need a role; connections ignore it. Owner or admin only.
    pub fn share(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &Resource,
        grantee: &Grantee,
        role: Input<Option<WorkbookRole>>,
    ) -> Result<Shared, GroupsError> {
        let kind = resource.kind;
        let (object, authorized) = self.admit_resource(actor, ws, resource)?;
        // Group shares check the group before the role, user shares the role before the
        // user: the order the refusals have always come in.
        let (relation, role, mut preconditions) = match grantee {
            Grantee::Group(id) => {
                self.group_record(ws, id)?;
                let (relation, role) = grant(kind, role)?;
                let in_ws = must_match(exact(&link(&group_object(id), ws)));
                (relation, role, vec![in_ws])
            }
            Grantee::User(id) => {
                let (relation, role) = grant(kind, role)?;
                (
                    relation,
                    role,
                    self.eligible(ws, [id], Purpose::Grantees(kind))?,
                )
            }
        };
        let subject = grantee_subject(grantee);
        preconditions.push(must_match(exact(&link(&object, ws))));
        let transaction = Transaction {
            preconditions,
            updates: grant_updates(kind, &object, relation, &subject),
            ..Transaction::default()
        };
        self.commit(&authorized, transaction, changed_concurrently)?;
        Ok(match grantee {
            Grantee::Group(id) => Shared::Group {
                member_count: self.member_count(id)?,
                group: id.clone(),
                role,
            },
            Grantee::User(id) => Shared::User {
                user: id.clone(),
                role,
            },
        })
    }

    /// Removes every grant `grantee` has on `resource`; not found when there was none.
    /// Owner or admin only.
    pub fn unshare(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &Resource,
        grantee: &Grantee,
    ) -> Result<(), GroupsError> {
        let (object, authorized) = self.admit_resource(actor, ws, resource)?;
        let subject = grantee_subject(grantee);
        let not_shared = || {
            Missing::Grant {
                kind: resource.kind,
                id: resource.id.clone(),
                grantee: grantee.clone(),
            }
            .into()
        };
        if !is_valid_object_id(grantee.id()) {
            return Err(not_shared());
        }
        let mut grants = Vec::new();
        for relation in grant_relations(resource.kind) {
            let grant = tuple(object.clone(), relation, subject.clone());
            if !self.relationships(&exact(&grant), 1)?.is_empty() {
                grants.push(grant);
            }
        }
        if grants.is_empty() {
            return Err(not_shared());
        }
        self.commit(&authorized, removal(grants), not_shared)?;
        Ok(())
    }

    /// Owners, users and groups with access to `resource`. Owner or admin only.
    pub fn list_access(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &Resource,
    ) -> Result<Access, GroupsError> {
        let kind = resource.kind;
        let (object, _) = self.admit_resource(actor, ws, resource)?;
        let mut access = Access {
            owners: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
        };
        let mut users: BTreeMap<String, UserAccess> = BTreeMap::new();
        for t in self.relationships(&of_object(&object, None), ALL)? {
            let id = t.subject.object.object_id;
            if t.relation == owner_relation(kind) {
                access.owners.push(id);
                continue;
            }
            if !grant_relations(kind).contains(&t.relation.as_str()) {
                continue;
            }
            let role = role_label(kind, &t.relation);
            if t.subject.object.object_type != group::TYPE {
                users.insert(id.clone(), UserAccess { id, role });
                continue;
            }
            let stored = match self.group_record(ws, &id) {
                Ok(stored) => stored,
                // A grant to a group this workspace does not know is not its access.
                Err(GroupsError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            access.groups.push(GroupAccess {
                member_count: self.member_count(&id)?,
                id,
                name: stored.info.name,
                role,
            });
        }
        sort_by_name(&mut access.groups, |g| (&g.name, &g.id));
        access.users = users.into_values().collect();
        Ok(access)
    }

    /// [`Self::enter`], the resource is in `ws` (else not found: a resource of another
    /// workspace is unknown here), then the actor may share it.
    fn admit_resource(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &Resource,
    ) -> Result<(ObjectRef, Authorized), GroupsError> {
        self.enter(actor, ws)?;
        let object = resource_object(ws, resource);
        let here = valid_resource_id(ws, &resource.id)
            && self.workspace_of(&object)?.as_deref() == Some(ws);
        if !here {
            return Err(Missing::Resource {
                kind: resource.kind,
                workspace: ws.to_string(),
                id: resource.id.clone(),
            }
            .into());
        }
        let authorized = self.authorize(actor, ws, &object, Action::Share(resource.kind))?;
        Ok((object, authorized))
    }
}

/// The relation a share of a `kind` grants, and the role to answer: connections have one
/// grant relation (any role given is ignored); workbooks need a role.
fn grant(
    kind: ResourceKind,
    role: Input<Option<WorkbookRole>>,
) -> Result<(&'static str, Option<WorkbookRole>), GroupsError> {
    match kind {
        ResourceKind::Connection => Ok((connection::GRANTEE, None)),
        ResourceKind::Workbook => {
            let role = role?.ok_or(Invalid::WorkbookRoleRequired)?;
            Ok((role.name(), Some(role)))
        }
    }
}

/// The role shown for a grant in `relation`: none for connections (a grant is a grant).
fn role_label(kind: ResourceKind, relation: &str) -> Option<WorkbookRole> {
    match kind {
        ResourceKind::Connection => None,
        ResourceKind::Workbook => WorkbookRole::from_name(relation),
    }
}

/// Replaces whatever grant `subject` has on `resource` by one in `relation`.
fn grant_updates(
    kind: ResourceKind,
    resource: &ObjectRef,
    relation: &str,
    subject: &SubjectRef,
) -> Vec<Update> {
    let mut updates: Vec<Update> = grant_relations(kind)
        .iter()
        .filter(|r| **r != relation)
        .map(|r| delete(tuple(resource.clone(), r, subject.clone())))
        .collect();
    updates.push(touch(tuple(resource.clone(), relation, subject.clone())));
    updates
}
