//! [`Groups`]: the user-groups rules of SPEC section 6 as a service over an [`Engine`], with
//! typed commands in and typed results or a [`GroupsError`] out. It knows no protocol.
//!
//! Every decision is an engine check under the shipped schema, made by `Groups::allowed`;
//! every change is one engine transaction, committed by `Groups::commit`; every
//! relationship read pages through `Groups::relationships`. Those three are the only
//! places that call the engine's check, transact and read, so an engine API change touches
//! three functions. The commands live in one file per family: `members` (workspaces and
//! their members), `directory` (groups), `sharing` (connections and workbooks) and
//! `import` (CSV).

mod directory;
mod import;
mod members;
pub(super) mod relations;
mod sharing;

pub use self::import::MAX_IMPORT_ROWS;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use pemba_engine::is_valid_object_id;
use pemba_engine::{
    CheckArgs, CheckCondition, Consistency, Engine, FoundSubjects, LoadedSchema, MetadataWrite,
    ObjectRef, Operation, Page, Precondition, RelationshipFilter, Revision, SubjectLookup,
    Transaction, Tuple, WriteError,
};

use self::relations::{
    exact, group_object, must_match, naming, of_object, roles, user, workspace_object,
    workspace_relation,
};
use super::error::{Action, Conflict, GroupsError, Ineligibility, Missing, Purpose};
use super::model::{Actor, GroupSummary, Role};
use super::store::{group_key, group_prefix, member_version_key, workspace_key, GroupInfo};
use super::vocabulary::{self, connection, group, user as user_type, workbook, workspace};

/// The user-groups feature over one engine. Cheap to share behind an `Arc`; every command
/// is synchronous (storage reads and fsync'd writes), so async callers run it on a
/// blocking pool.
pub struct Groups {
    engine: Arc<Engine>,
    /// The schema last compared with the vocabulary and what it lacked, so the comparison
    /// runs once per schema rather than once per command. The schema is held weakly: an
    /// old schema is not kept alive by the cache, yet its allocation is, so a new schema
    /// can never reuse its address and be mistaken for it. A read lock serves the common
    /// case (same schema); a schema write makes the next command take the write lock once.
    checked: RwLock<Option<Checked>>,
}

/// One vocabulary comparison: the schema compared (none for a store without one) and
/// what it lacked.
struct Checked {
    schema: Option<Weak<LoadedSchema>>,
    missing: Vec<String>,
}

impl Checked {
    fn is_for(&self, schema: Option<&Arc<LoadedSchema>>) -> bool {
        match (&self.schema, schema) {
            (None, None) => true,
            (Some(seen), Some(now)) => std::ptr::eq(seen.as_ptr(), Arc::as_ptr(now)),
            _ => false,
        }
    }
}

/// "No limit" for `Groups::relationships`.
const ALL: usize = usize::MAX;

/// A group's stored record with the exact text it was read from, which a transaction
/// expects unchanged at commit.
struct StoredGroup {
    info: GroupInfo,
    raw: String,
}

impl Groups {
    /// The feature over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Groups {
            engine,
            checked: RwLock::new(None),
        }
    }

    /// `Ok` when the engine's current schema has every name of the feature's
    /// [`vocabulary`], else [`GroupsError::SchemaLacks`] naming what it lacks. Every
    /// command starts with this; it compares the vocabulary once per schema.
    pub fn check_schema(&self) -> Result<(), GroupsError> {
        let schema = self.engine.schema();
        let lacks = |missing: &Vec<String>| {
            if missing.is_empty() {
                Ok(())
            } else {
                Err(GroupsError::SchemaLacks {
                    missing: missing.clone(),
                })
            }
        };
        {
            let checked = self.checked.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(checked) = checked.as_ref().filter(|c| c.is_for(schema.as_ref())) {
                return lacks(&checked.missing);
            }
        }
        let missing = vocabulary::missing(schema.as_deref());
        let result = lacks(&missing);
        *self.checked.write().unwrap_or_else(PoisonError::into_inner) = Some(Checked {
            schema: schema.as_ref().map(Arc::downgrade),
            missing,
        });
        result
    }

    // -----------------------------------------------------------------------------------
    // The three doors to the engine's read, transact and check.

    /// Up to `at_most` relationships matching `filter`, page by page, fully consistent.
    fn relationships(
        &self,
        filter: &RelationshipFilter,
        at_most: usize,
    ) -> Result<Vec<Tuple>, GroupsError> {
        Ok(self
            .engine
            .relationships(Consistency::FullyConsistent, filter)?
            .take(at_most)
            .collect::<Result<Vec<Tuple>, _>>()?)
    }

    /// Commits `transaction` on behalf of an authorized actor: the check that authorized
    /// them goes into the transaction as a check condition, so the engine refuses the
    /// commit if the actor lost the permission in the meantime (demoted, removed from the
    /// workspace, no longer the owner). That refusal is the same `Forbidden` the check
    /// gave; a failed precondition or metadata condition (something read changed before
    /// the commit) becomes `on_conflict()`.
    ///
    /// Every change of the feature goes through here, and an [`Authorized`] can only come
    /// from [`Self::authorize`]: there is no way to commit a command's change without the
    /// authorization holding at the commit revision.
    fn commit(
        &self,
        authorized: &Authorized,
        mut transaction: Transaction,
        on_conflict: impl FnOnce() -> GroupsError,
    ) -> Result<Revision, GroupsError> {
        transaction.checks.push(authorized.condition.clone());
        // Every user this change relates to something gets a new member version, which a
        // concurrent removal from the workspace conditions its commit on.
        let mut related: Vec<&str> = transaction
            .updates
            .iter()
            .filter(|u| u.operation != Operation::Delete)
            .map(|u| &u.tuple.subject)
            .filter(|s| s.object.object_type == user_type::TYPE && s.relation.is_none())
            .map(|s| s.object.object_id.as_str())
            .collect();
        related.sort_unstable();
        related.dedup();
        let mut versions = Vec::with_capacity(related.len());
        for user in related {
            versions.push(MetadataWrite {
                key: member_version_key(&authorized.workspace, user),
                value: Some(random_hex()?),
            });
        }
        transaction.metadata.extend(versions);
        match self.engine.transact(transaction) {
            Ok(revision) => Ok(revision),
            Err(WriteError::CheckFailed { .. }) => Err(authorized.refusal()),
            Err(
                WriteError::PreconditionFailed { .. }
                | WriteError::MetadataChanged { .. }
                | WriteError::AlreadyExists(_),
            ) => Err(on_conflict()),
            Err(error) => Err(error.into()),
        }
    }

    /// Commits the one change no member authorizes: creating a workspace with its first
    /// admin (the workspace must not exist yet, a metadata condition of `transaction`).
    fn commit_bootstrap(
        &self,
        transaction: Transaction,
        on_conflict: impl FnOnce() -> GroupsError,
    ) -> Result<Revision, GroupsError> {
        match self.engine.transact(transaction) {
            Ok(revision) => Ok(revision),
            Err(WriteError::PreconditionFailed { .. } | WriteError::MetadataChanged { .. }) => {
                Err(on_conflict())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether user `id` has `permission` on `resource`, answered by the engine.
    fn allowed(
        &self,
        resource: &ObjectRef,
        permission: &str,
        id: &str,
    ) -> Result<bool, GroupsError> {
        let subject = user(id);
        Ok(self
            .engine
            .check(
                Consistency::FullyConsistent,
                CheckArgs::new(resource, permission, &subject),
            )?
            .value)
    }

    // -----------------------------------------------------------------------------------
    // Who may do what

    /// [`GroupsError::Forbidden`] unless the engine gives `actor` the permission `action`
    /// needs on `resource`; the check itself, to be held again at commit, when it does.
    fn authorize(
        &self,
        actor: &Actor,
        ws: &str,
        resource: &ObjectRef,
        action: Action,
    ) -> Result<Authorized, GroupsError> {
        let permission = permission_for(action);
        let authorized = Authorized {
            condition: CheckCondition::holds(resource.clone(), permission, user(actor.id())),
            actor: actor.id().to_string(),
            workspace: ws.to_string(),
            action,
        };
        if self.allowed(resource, permission, actor.id())? {
            Ok(authorized)
        } else {
            Err(authorized.refusal())
        }
    }

    /// The entry of every command that acts for a member: the schema has the vocabulary,
    /// the workspace exists (else not found) and `actor` is one of its members.
    fn enter(&self, actor: &Actor, ws: &str) -> Result<(), GroupsError> {
        self.check_schema()?;
        if !is_valid_object_id(ws) || self.engine.metadata(&workspace_key(ws))?.is_none() {
            return Err(Missing::Workspace {
                workspace: ws.to_string(),
            }
            .into());
        }
        if self.allowed(&workspace_object(ws), workspace::MEMBER, actor.id())? {
            Ok(())
        } else {
            Err(GroupsError::NotAMember {
                actor: actor.id().to_string(),
                workspace: ws.to_string(),
            })
        }
    }

    /// [`Self::enter`], then `action` on the workspace itself.
    fn admit(&self, actor: &Actor, ws: &str, action: Action) -> Result<Authorized, GroupsError> {
        self.enter(actor, ws)?;
        self.authorize(actor, ws, &workspace_object(ws), action)
    }

    /// [`Self::enter`], the group exists in `ws`, then `action` on the group. The group's
    /// existence is no secret from members, so it is told before the permission.
    fn admit_group(
        &self,
        actor: &Actor,
        ws: &str,
        id: &str,
        action: Action,
    ) -> Result<(StoredGroup, Authorized), GroupsError> {
        self.enter(actor, ws)?;
        let stored = self.group_record(ws, id)?;
        let authorized = self.authorize(actor, ws, &group_object(id), action)?;
        Ok((stored, authorized))
    }

    // -----------------------------------------------------------------------------------
    // What is stored

    /// The role of user `id` in `ws`, if they are a member.
    fn role_of(&self, ws: &str, id: &str) -> Result<Option<Role>, GroupsError> {
        if !is_valid_object_id(id) {
            return Ok(None);
        }
        let found = self.relationships(&roles(ws, Some(id)), 8)?;
        Ok(found.iter().find_map(|t| Role::from_name(&t.relation)))
    }

    /// The stored record of group `id` of `ws`, or not found.
    fn group_record(&self, ws: &str, id: &str) -> Result<StoredGroup, GroupsError> {
        let missing = || Missing::Group {
            workspace: ws.to_string(),
            group: id.to_string(),
        };
        if !is_valid_object_id(id) {
            return Err(missing().into());
        }
        let key = group_key(ws, id);
        let raw = self.engine.metadata(&key)?.ok_or_else(missing)?;
        Ok(StoredGroup {
            info: GroupInfo::decode(&key, &raw)?,
            raw,
        })
    }

    /// Whether `id` names a group of `ws`.
    fn is_group(&self, ws: &str, id: &str) -> Result<bool, GroupsError> {
        Ok(self.engine.metadata(&group_key(ws, id))?.is_some())
    }

    /// Every group of `ws`: id and record, in id order.
    fn workspace_groups(&self, ws: &str) -> Result<Vec<(String, GroupInfo)>, GroupsError> {
        let prefix = group_prefix(ws);
        self.engine
            .metadata_with_prefix(&prefix)?
            .into_iter()
            .map(|(key, value)| {
                let info = GroupInfo::decode(&key, &value)?;
                let id = key.get(prefix.len()..).unwrap_or_default().to_string();
                Ok((id, info))
            })
            .collect()
    }

    /// The user ids of group `id`'s members, ascending.
    fn members_of(&self, id: &str) -> Result<Vec<String>, GroupsError> {
        Ok(self.members(id)?.ids().to_vec())
    }

    /// How many members group `id` has, without a `String` per member.
    fn member_count(&self, id: &str) -> Result<usize, GroupsError> {
        Ok(self.members(id)?.len())
    }

    /// Group `id`'s members as the engine found them.
    fn members(&self, id: &str) -> Result<FoundSubjects, GroupsError> {
        let found = self.engine.lookup_subjects(
            Consistency::FullyConsistent,
            &SubjectLookup {
                resource: &group_object(id),
                permission: group::MEMBER,
                subject_type: user_type::TYPE,
                subject_relation: None,
                page: Page::default(),
            },
        )?;
        Ok(found.value)
    }

    fn summary(&self, id: String, info: GroupInfo) -> Result<GroupSummary, GroupsError> {
        Ok(GroupSummary {
            member_count: self.member_count(&id)?,
            id,
            name: info.name,
            description: info.description,
        })
    }

    /// The workspace `resource` (a group, connection or workbook) belongs to.
    fn workspace_of(&self, resource: &ObjectRef) -> Result<Option<String>, GroupsError> {
        let relation = workspace_relation(&resource.object_type);
        let found = self.relationships(&of_object(resource, Some(relation)), 1)?;
        Ok(found.into_iter().next().map(|t| t.subject.object.object_id))
    }

    // -----------------------------------------------------------------------------------
    // Guards shared by several commands

    /// Why `candidate` cannot become a group member or grantee in `ws`, if it cannot.
    fn ineligibility(
        &self,
        ws: &str,
        candidate: &str,
    ) -> Result<Option<Ineligibility>, GroupsError> {
        if !is_valid_object_id(candidate) {
            return Ok(Some(Ineligibility::InvalidId {
                id: candidate.to_string(),
            }));
        }
        if self.is_group(ws, candidate)? {
            return Ok(Some(Ineligibility::Group {
                id: candidate.to_string(),
            }));
        }
        if self.role_of(ws, candidate)?.is_none() {
            return Ok(Some(Ineligibility::NotInWorkspace {
                user: candidate.to_string(),
                workspace: ws.to_string(),
            }));
        }
        Ok(None)
    }

    /// Checks that every candidate may become `purpose` (refusing with each that may not)
    /// and returns the preconditions that keep them workspace members until the write
    /// commits.
    fn eligible<'a>(
        &self,
        ws: &str,
        candidates: impl IntoIterator<Item = &'a String>,
        purpose: Purpose,
    ) -> Result<Vec<Precondition>, GroupsError> {
        let distinct: BTreeSet<&String> = candidates.into_iter().collect();
        let mut reasons = Vec::new();
        for candidate in &distinct {
            reasons.extend(self.ineligibility(ws, candidate)?);
        }
        if !reasons.is_empty() {
            return Err(GroupsError::Ineligible { purpose, reasons });
        }
        Ok(distinct
            .into_iter()
            .map(|id| must_match(roles(ws, Some(id))))
            .collect())
    }

    /// A precondition that some admin of `ws` other than `id` still exists when the write
    /// commits: the last-admin guard. Two concurrent demotions each need the other's target
    /// as witness (or a third admin), so at most one of them commits when two admins exist.
    fn other_admin_witness(&self, ws: &str, id: &str) -> Result<Precondition, GroupsError> {
        let admins =
            self.relationships(&of_object(&workspace_object(ws), Some(workspace::ADMIN)), 2)?;
        let witness = admins
            .into_iter()
            .find(|t| t.subject.object.object_id != id)
            .ok_or_else(|| Conflict::LastAdmin {
                workspace: ws.to_string(),
                user: id.to_string(),
            })?;
        Ok(must_match(exact(&witness)))
    }

    /// Every relationship naming user `id` directly on an object of `ws`: its role, its
    /// group memberships, its grants and ownerships there (never another workspace's).
    fn relationships_in_workspace(&self, ws: &str, id: &str) -> Result<Vec<Tuple>, GroupsError> {
        let all = self.relationships(&naming(&user(id)), ALL)?;
        let mut owners: HashMap<ObjectRef, Option<String>> = HashMap::new();
        let mut mine = Vec::new();
        for t in all {
            let in_ws = if t.resource.object_type == workspace::TYPE {
                t.resource.object_id == ws
            } else {
                let owner = match owners.get(&t.resource) {
                    Some(owner) => owner.clone(),
                    None => {
                        let owner = self.workspace_of(&t.resource)?;
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
}

/// The permission each action needs, on the object [`Groups::authorize`] is given: the
/// workspace, the group or the resource.
fn permission_for(action: Action) -> &'static str {
    match action {
        Action::ListGroups | Action::SeeGroups => workspace::VIEW_GROUPS,
        Action::CreateGroups => workspace::MANAGE_GROUPS,
        Action::SetRoles | Action::RemoveMembers => workspace::MANAGE_MEMBERS,
        Action::ListMembers => workspace::VIEW_MEMBERS,
        Action::CreateResources(_) => workspace::CREATE_RESOURCES,
        Action::SeeGroup => group::VIEW,
        Action::EditGroup
        | Action::DeleteGroup
        | Action::AddGroupMembers
        | Action::RemoveGroupMembers => group::MANAGE,
        Action::ListGroupResources => group::VIEW_RESOURCES,
        Action::Share(kind) => match kind {
            super::model::ResourceKind::Connection => connection::MANAGE,
            super::model::ResourceKind::Workbook => workbook::MANAGE,
        },
    }
}

/// The refusal when a transaction's conditions no longer held at commit.
fn changed_concurrently() -> GroupsError {
    Conflict::ChangedConcurrently.into()
}

/// A fresh group id: `g` and 16 random hex digits.
fn new_group_id() -> Result<String, GroupsError> {
    Ok(format!("g{}", random_hex()?))
}

/// 64 random bits in hex.
fn random_hex() -> Result<String, GroupsError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|error| GroupsError::NoRandomness {
        reason: error.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Proof that an actor passed the check an action needs: the check, kept to be held again
/// when the change commits (see [`Groups::commit`]). Only [`Groups::authorize`] makes one.
pub(super) struct Authorized {
    condition: CheckCondition,
    actor: String,
    /// The workspace the action is in.
    workspace: String,
    action: Action,
}

impl Authorized {
    /// The refusal for an actor without the permission, now or at commit.
    fn refusal(&self) -> GroupsError {
        let check = &self.condition.check;
        GroupsError::Forbidden {
            actor: self.actor.clone(),
            action: self.action,
            check: format!(
                "{}:{}#{}",
                check.resource.object_type, check.resource.object_id, check.permission
            ),
        }
    }
}

#[cfg(test)]
mod races;

#[cfg(test)]
mod unicode;
