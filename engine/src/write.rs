//! What a write is made of: relationship updates, preconditions, metadata conditions and
//! writes, gathered in a [`Transaction`]; and what a committed write changed
//! ([`ChangeSet`]), the unit of the change log and of watch.

use crate::engine::CheckRequest;
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::tuple::{ObjectRef, SubjectRef, Tuple};

/// What a write does to one relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Insert; fails if present.
    Create,
    /// Insert or keep.
    Touch,
    /// Remove if present.
    Delete,
}

/// One relationship update of a write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// What to do.
    pub operation: Operation,
    /// To which relationship.
    pub tuple: Tuple,
}

impl Update {
    /// Insert `tuple`; the write fails if it is already stored.
    pub fn create(tuple: Tuple) -> Self {
        Update {
            operation: Operation::Create,
            tuple,
        }
    }

    /// Insert `tuple`, or keep it if stored.
    pub fn touch(tuple: Tuple) -> Self {
        Update {
            operation: Operation::Touch,
            tuple,
        }
    }

    /// Remove `tuple` if stored.
    pub fn delete(tuple: Tuple) -> Self {
        Update {
            operation: Operation::Delete,
            tuple,
        }
    }
}

/// Whether a precondition wants matches or their absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreconditionKind {
    /// At least one stored relationship must match the filter.
    MustMatch,
    /// No stored relationship may match the filter.
    MustNotMatch,
}

/// A condition checked inside the write transaction, before any update is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precondition {
    /// Match or no match.
    pub kind: PreconditionKind,
    /// The relationships concerned.
    pub filter: RelationshipFilter,
}

impl Precondition {
    /// Some stored relationship must match `filter` when the write commits.
    pub fn must_match(filter: RelationshipFilter) -> Self {
        Precondition {
            kind: PreconditionKind::MustMatch,
            filter,
        }
    }

    /// No stored relationship may match `filter` when the write commits.
    pub fn must_not_match(filter: RelationshipFilter) -> Self {
        Precondition {
            kind: PreconditionKind::MustNotMatch,
            filter,
        }
    }
}

/// Application metadata must hold this value (`None`: be absent) for a transaction to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataCondition {
    /// Metadata key.
    pub key: String,
    /// The value required, or `None` for "no such key".
    pub expected: Option<String>,
}

/// Sets (`Some`) or removes (`None`) one application metadata entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataWrite {
    /// Metadata key.
    pub key: String,
    /// New value, or `None` to remove the key.
    pub value: Option<String>,
}

/// A permission check that must answer `expected` at the revision a transaction commits.
///
/// This is how a write is authorized at commit time rather than some time before it: the
/// engine evaluates the check under its writer lock, against every write committed before
/// this one, so nothing can change the answer between the check and the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckCondition {
    /// The check.
    pub check: CheckRequest,
    /// The answer it must give.
    pub expected: bool,
}

impl CheckCondition {
    /// `subject` must have `permission` on `resource` when the transaction commits.
    pub fn holds(resource: ObjectRef, permission: impl Into<String>, subject: SubjectRef) -> Self {
        CheckCondition {
            check: CheckRequest {
                resource,
                permission: permission.into(),
                subject,
            },
            expected: true,
        }
    }
}

/// One atomic, durable unit of work: everything applies or nothing does.
///
/// Applied in this order: `checks` hold, `preconditions` and `metadata_conditions` are
/// checked, then every
/// relationship matching a `delete_filters` entry is deleted, then `updates` apply, then
/// `metadata` is written. Application metadata (names and descriptions of groups, say)
/// lives beside the relationships so that both change in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Permission checks that must hold at commit (see [`CheckCondition`]).
    pub checks: Vec<CheckCondition>,
    /// Relationship preconditions.
    pub preconditions: Vec<Precondition>,
    /// Metadata compare conditions.
    pub metadata_conditions: Vec<MetadataCondition>,
    /// Delete everything each filter selects.
    pub delete_filters: Vec<RelationshipFilter>,
    /// Relationship updates.
    pub updates: Vec<Update>,
    /// Metadata writes.
    pub metadata: Vec<MetadataWrite>,
}

/// One change as committed (the watch and change log unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `Touch` for an insert (create or touch), `Delete` for a removal.
    pub operation: Operation,
    /// The relationship.
    pub tuple: Tuple,
}

/// The changes of one committed write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSet {
    /// The revision the write committed as.
    pub revision: Revision,
    /// What it changed, in request order; empty for a schema write.
    pub changes: Vec<Change>,
}

/// A delete by filter: what to delete, under which conditions, and how much at most.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// What to delete; must set at least one field.
    pub filter: RelationshipFilter,
    /// Checked before deleting, in the same transaction.
    pub preconditions: Vec<Precondition>,
    /// At most this many relationships (`None`: no limit).
    pub limit: Option<usize>,
    /// What to do when more than `limit` match.
    pub over_limit: OverLimit,
}

impl DeleteRequest {
    /// Deletes everything `filter` selects, with no conditions and no limit.
    pub fn matching(filter: RelationshipFilter) -> Self {
        DeleteRequest {
            filter,
            ..DeleteRequest::default()
        }
    }
}

/// What a delete by filter does when more relationships match than its limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverLimit {
    /// Delete nothing and fail ([`crate::WriteError::OverLimit`]).
    #[default]
    Refuse,
    /// Delete up to the limit and report the deletion as incomplete.
    DeletePartially,
}

/// What a delete by filter did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// How many relationships were deleted.
    pub count: u64,
    /// False when a limit left matching relationships in place.
    pub complete: bool,
}
