//! How the feature's facts are spelled as engine relationships, filters and preconditions
//! ("bob is an editor of acme" is `workspace:acme#editor@user:bob`), in the vocabulary's
//! names.

use pemba_engine::{
    is_valid_object_id, ObjectRef, Operation, Precondition, PreconditionKind, RelationshipFilter,
    SubjectFilter, SubjectRef, Transaction, Tuple, Update, MAX_OBJECT_ID_LEN,
};

use crate::groups::model::{Grantee, Resource, ResourceKind, Role};
use crate::groups::vocabulary::{connection, group, user as user_type, workbook, workspace};

pub(super) fn object(object_type: &str, id: &str) -> ObjectRef {
    ObjectRef::new(object_type, id)
}

pub(super) fn workspace_object(ws: &str) -> ObjectRef {
    object(workspace::TYPE, ws)
}

pub(super) fn group_object(id: &str) -> ObjectRef {
    object(group::TYPE, id)
}

/// `connection:{ws}/{id}` (or `workbook:`): the engine object of resource `id` of `ws`.
/// Ids are scoped to their workspace, so two workspaces can each have a `warehouse` and
/// neither learns of the other's; neither part contains `/` (see [`valid_resource_id`]),
/// so the joined id names one workspace and one resource.
pub(crate) fn resource_object(ws: &str, resource: &Resource) -> ObjectRef {
    object(resource.kind.type_name(), &scoped_id(ws, &resource.id))
}

/// `{ws}/{id}`: the engine id of resource `id` of `ws`.
pub(crate) fn scoped_id(ws: &str, id: &str) -> String {
    format!("{ws}/{id}")
}

/// The resource id the app knows, if `object_id` is the engine id of a resource of `ws`.
pub(super) fn unscoped_id<'a>(ws: &str, object_id: &'a str) -> Option<&'a str> {
    object_id.strip_prefix(ws)?.strip_prefix('/')
}

/// The longest workspace id: short enough that a resource id has room beside it in an
/// object id of at most [`MAX_OBJECT_ID_LEN`] bytes.
pub const MAX_WORKSPACE_ID_LEN: usize = 128;

/// Whether `ws` may name a new workspace: an object id without `/` (which separates it from
/// resource ids) and at most [`MAX_WORKSPACE_ID_LEN`] bytes.
pub(super) fn valid_workspace_id(ws: &str) -> bool {
    ws.len() <= MAX_WORKSPACE_ID_LEN && !ws.contains('/') && is_valid_object_id(ws)
}

/// The longest resource id `ws` has room for.
pub(super) fn max_resource_id_len(ws: &str) -> usize {
    MAX_OBJECT_ID_LEN.saturating_sub(ws.len() + 1)
}

/// Whether `id` may name a connection or workbook of `ws`: no `/`, and `{ws}/{id}` a valid
/// object id.
pub(super) fn valid_resource_id(ws: &str, id: &str) -> bool {
    !id.is_empty() && !id.contains('/') && is_valid_object_id(&scoped_id(ws, id))
}

pub(super) fn user(id: &str) -> SubjectRef {
    SubjectRef::object(user_type::TYPE, id)
}

/// `group:{id}#member`: every member of a group, as a grantee.
pub(super) fn group_members(id: &str) -> SubjectRef {
    SubjectRef {
        object: group_object(id),
        relation: Some(group::MEMBER.to_string()),
    }
}

/// The subject a grant to `grantee` names: a user, or every member of a group.
pub(super) fn grantee_subject(grantee: &Grantee) -> SubjectRef {
    match grantee {
        Grantee::Group(id) => group_members(id),
        Grantee::User(id) => user(id),
    }
}

pub(super) fn tuple(resource: ObjectRef, relation: &str, subject: SubjectRef) -> Tuple {
    Tuple {
        resource,
        relation: relation.to_string(),
        subject,
    }
}

/// The relation naming the workspace a group, connection or workbook belongs to.
pub(super) fn workspace_relation(object_type: &str) -> &'static str {
    match object_type {
        connection::TYPE => connection::WORKSPACE,
        workbook::TYPE => workbook::WORKSPACE,
        _ => group::WORKSPACE,
    }
}

/// `{resource}#workspace@workspace:{ws}`: a group, connection or workbook belongs to `ws`.
pub(super) fn link(resource: &ObjectRef, ws: &str) -> Tuple {
    tuple(
        resource.clone(),
        workspace_relation(&resource.object_type),
        SubjectRef::object(workspace::TYPE, ws),
    )
}

/// `workspace:{ws}#{role}@user:{id}`.
pub(super) fn role_tuple(ws: &str, role: Role, id: &str) -> Tuple {
    tuple(workspace_object(ws), role.name(), user(id))
}

/// `group:{group}#member@user:{id}`.
pub(super) fn membership(group_id: &str, id: &str) -> Tuple {
    tuple(group_object(group_id), group::MEMBER, user(id))
}

pub(super) fn touch(tuple: Tuple) -> Update {
    Update {
        operation: Operation::Touch,
        tuple,
    }
}

pub(super) fn create(tuple: Tuple) -> Update {
    Update {
        operation: Operation::Create,
        tuple,
    }
}

pub(super) fn delete(tuple: Tuple) -> Update {
    Update {
        operation: Operation::Delete,
        tuple,
    }
}

/// A filter selecting exactly `tuple`.
pub(super) fn exact(tuple: &Tuple) -> RelationshipFilter {
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

/// Every relationship of `resource` in `relation` (any relation when `None`).
pub(super) fn of_object(resource: &ObjectRef, relation: Option<&str>) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(resource.object_type.clone()),
        resource_id: Some(resource.object_id.clone()),
        relation: relation.map(str::to_string),
        subject: None,
    }
}

/// Every relationship whose subject is `subject` (an object, or a userset).
pub(super) fn naming(subject: &SubjectRef) -> RelationshipFilter {
    RelationshipFilter {
        subject: Some(SubjectFilter {
            subject_type: subject.object.object_type.clone(),
            subject_id: Some(subject.object.object_id.clone()),
            relation: Some(subject.relation.clone().unwrap_or_default()),
        }),
        ..RelationshipFilter::default()
    }
}

/// Every role relationship of user `id` in `ws` (any user when `None`); at most one per
/// user while the feature holds.
pub(super) fn roles(ws: &str, id: Option<&str>) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(workspace::TYPE.to_string()),
        resource_id: Some(ws.to_string()),
        relation: None,
        subject: Some(SubjectFilter {
            subject_type: user_type::TYPE.to_string(),
            subject_id: id.map(str::to_string),
            relation: Some(String::new()),
        }),
    }
}

/// Every group membership of user `id`, in any workspace.
pub(super) fn memberships_of(id: &str) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(group::TYPE.to_string()),
        relation: Some(group::MEMBER.to_string()),
        ..naming(&user(id))
    }
}

/// A transaction deleting exactly `tuples`, committed only if each is still there.
pub(super) fn removal(tuples: Vec<Tuple>) -> Transaction {
    Transaction {
        preconditions: tuples.iter().map(|t| must_match(exact(t))).collect(),
        updates: tuples.into_iter().map(delete).collect(),
        ..Transaction::default()
    }
}

pub(super) fn must_match(filter: RelationshipFilter) -> Precondition {
    Precondition {
        kind: PreconditionKind::MustMatch,
        filter,
    }
}

pub(crate) fn must_not_match(filter: RelationshipFilter) -> Precondition {
    Precondition {
        kind: PreconditionKind::MustNotMatch,
        filter,
    }
}

/// The relations a grant on a `kind` can be in.
pub(super) fn grant_relations(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Connection => &[connection::GRANTEE],
        ResourceKind::Workbook => &[workbook::EDITOR, workbook::VIEWER],
    }
}

/// The relation naming the owner of a `kind`.
pub(super) fn owner_relation(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Connection => connection::OWNER,
        ResourceKind::Workbook => workbook::OWNER,
    }
}
