//! Engine errors: one enum per operation family (open, query, write, schema write), the
//! request faults they share, and [`EngineError`], the umbrella built from them with `From`.
//!
//! Callers match variants, never message text. Every variant but a storage failure means
//! nothing was changed. Large payloads are boxed so that a `Result` stays small on the
//! check path.

use std::path::PathBuf;
use std::sync::Arc;

use crate::revision::Revision;
use crate::tuple::{SyntaxError, Tuple};
use crate::write::PreconditionKind;

/// Failures of the storage layer (redb, or another backend behind [`crate::Store`]).
///
/// Cloneable so that every writer of a failed group commit gets the same error.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// redb could not open, read or write the store.
    #[error("storage: {source}")]
    Redb {
        /// What redb reported.
        #[source]
        source: Arc<redb::Error>,
    },
    /// Another process holds the store file open.
    #[error("store `{}` is already open in another process", path.display())]
    AlreadyOpen {
        /// The store file.
        path: PathBuf,
    },
    /// The store holds data this build cannot read, or its copies disagree.
    #[error("store is corrupt or from an incompatible version: {reason}")]
    Corrupt {
        /// What is wrong, naming the damaged item where known.
        reason: String,
    },
    /// A committed write's outcome did not reach its writer (a bug, never input).
    #[error("a committed write lost its outcome")]
    LostOutcome,
    /// PostgreSQL refused a statement (anything but losing the connection).
    #[error("postgresql: {}", postgres_text(.source))]
    Postgres {
        /// What the server or the client library reported.
        #[source]
        source: Arc<postgres::Error>,
    },
    /// The datastore cannot be reached (down, restarting, or out of connections); nothing
    /// was changed, and the request may be retried.
    #[error("the datastore is unavailable: {reason}")]
    Unavailable {
        /// What failed, without credentials.
        reason: String,
    },
    /// The database lacks Pemba's tables, or holds an older version of them.
    #[error("the database is not migrated ({found}): run `pemba migrate --datastore URL` first")]
    NotMigrated {
        /// What was found instead.
        found: String,
    },
}

impl StorageError {
    /// A [`StorageError::Corrupt`] with this reason.
    pub fn corrupt(reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            reason: reason.into(),
        }
    }
}

/// redb reports through several error types; each keeps its source as [`redb::Error`].
macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StorageError {
            fn from(error: $ty) -> Self {
                StorageError::Redb {
                    source: Arc::new(error.into()),
                }
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CursorError
);

/// A name, id or shape in a request that the syntax or the schema refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidError {
    /// Malformed names or ids.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// An object type the schema does not define.
    #[error("object type `{name}` is not defined in the schema")]
    UnknownType {
        /// The type named.
        name: String,
    },
    /// A relation or permission the type does not have.
    #[error("`{object_type}` has no relation or permission named `{name}`")]
    UnknownMember {
        /// The type looked in.
        object_type: String,
        /// The name asked for.
        name: String,
    },
    /// A written relationship names a relation its resource type does not have.
    #[error("`{}` has no relation named `{}` (in `{tuple}`)", tuple.resource.object_type, tuple.relation)]
    UnknownRelation {
        /// The relationship.
        tuple: Box<Tuple>,
    },
    /// A written relationship's userset subject names a member its type does not have.
    #[error("`{}` has no relation or permission named `{relation}` (in `{tuple}`)", tuple.subject.object.object_type)]
    UnknownSubjectRelation {
        /// The relationship.
        tuple: Box<Tuple>,
        /// The subject relation named.
        relation: String,
    },
    /// A relationship written to a permission.
    #[error("`{}#{}` is a permission: relationships can only be written to relations (in `{tuple}`)", tuple.resource.object_type, tuple.relation)]
    NotARelation {
        /// The relationship.
        tuple: Box<Tuple>,
    },
    /// A subject kind the relation does not allow.
    #[error(
        "subjects of type `{subject}` are not allowed on `{}#{}` (in `{tuple}`): allowed are {}",
        tuple.resource.object_type,
        tuple.relation,
        allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
    )]
    SubjectNotAllowed {
        /// The relationship.
        tuple: Box<Tuple>,
        /// The subject kind it has (`user`, `group#member`, `user:*`).
        subject: String,
        /// The kinds the relation allows.
        allowed: Vec<String>,
    },
    /// The same relationship twice in one batch.
    #[error("relationship `{0}` appears more than once in the batch")]
    DuplicateInBatch(Box<Tuple>),
    /// A delete filter that sets no field (it would delete everything).
    #[error(
        "a delete filter must set at least one field (resource type, id, relation or subject)"
    )]
    EmptyDeleteFilter,
    /// A filter with a resource id but no resource type.
    #[error("a filter with a resource id must also name the resource type")]
    IdWithoutType,
}

/// A revision token the engine cannot honour.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token this engine made.
    #[error("malformed revision token `{token}`: expected a token returned by this server")]
    Malformed {
        /// The text received.
        token: String,
    },
    /// A token newer than anything committed here: it comes from another store.
    #[error("revision token names revision {} but the newest is {}: it does not come from this store", wanted.0, newest.0)]
    FromTheFuture {
        /// The revision the token names.
        wanted: Revision,
        /// The newest committed revision.
        newest: Revision,
    },
}

/// Why a read (check, lookup, expand, read, schema read, changes) was refused.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A name or id the syntax or schema refuses.
    #[error(transparent)]
    Invalid(#[from] InvalidError),
    /// The question needs a schema and none has been written.
    #[error("no schema has been written yet")]
    NoSchema,
    /// A revision token that cannot be honoured.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// An exact snapshot other than the newest (no history is kept).
    #[error("an exact snapshot is kept only of the newest revision ({}), not of {}", newest.0, wanted.0)]
    SnapshotUnavailable {
        /// The revision asked for.
        wanted: Revision,
        /// The newest committed revision.
        newest: Revision,
    },
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The replica could not reach the revision the request needs within the bound
    /// (`--max-staleness-wait`): it never answers from an older one.
    #[error("this replica has applied revision {} but the request needs {}, and it could not catch up within {} ms", applied.0, wanted.0, waited.as_millis())]
    Stale {
        /// The revision asked for.
        wanted: Revision,
        /// The revision the replica has applied.
        applied: Revision,
        /// How long it tried.
        waited: std::time::Duration,
    },
}

impl From<SyntaxError> for QueryError {
    fn from(error: SyntaxError) -> Self {
        QueryError::Invalid(error.into())
    }
}

/// Why a write (transaction, batch write, delete by filter) was refused.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A relationship or filter the syntax or schema refuses.
    #[error(transparent)]
    Invalid(#[from] InvalidError),
    /// Writes need a schema and none has been written.
    #[error("no schema has been written yet")]
    NoSchema,
    /// A relationship precondition did not hold at commit.
    #[error(
        "precondition {index} failed: relationships matching the filter {}",
        match kind {
            PreconditionKind::MustMatch => "must exist but none do",
            PreconditionKind::MustNotMatch => "must not exist but some do",
        }
    )]
    PreconditionFailed {
        /// Its position among the request's preconditions.
        index: usize,
        /// What it required.
        kind: PreconditionKind,
    },
    /// A permission check condition did not give its expected answer at commit.
    #[error(
        "check condition {index} failed: `{}#{}@{}` {} at the revision this write would commit at",
        check.resource, check.permission, check.subject,
        if *expected { "no longer holds" } else { "now holds" }
    )]
    CheckFailed {
        /// Its position among the transaction's checks.
        index: usize,
        /// The check.
        check: Box<crate::engine::CheckRequest>,
        /// The answer it had to give.
        expected: bool,
    },
    /// A metadata condition did not hold at commit.
    #[error("metadata `{key}` changed concurrently; retry the request")]
    MetadataChanged {
        /// The metadata key.
        key: String,
    },
    /// A `create` found the relationship already stored.
    #[error("relationship `{0}` already exists")]
    AlreadyExists(Box<Tuple>),
    /// A delete by filter matched more than its limit and partial deletion was refused.
    #[error(
        "more than the limit of {limit} relationships match the filter; nothing was deleted \
         (allow partial deletions to delete them in steps)"
    )]
    OverLimit {
        /// The limit.
        limit: usize,
    },
    /// Storage failure: the write may not have been committed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<SyntaxError> for WriteError {
    fn from(error: SyntaxError) -> Self {
        WriteError::Invalid(error.into())
    }
}

/// Why a schema write was refused.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaWriteError {
    /// The text did not compile.
    #[error("invalid schema:\n{0}")]
    Invalid(pemba_schema::SchemaErrors),
    /// Stored relationships the new schema has no place for.
    #[error(
        "the new schema would orphan stored relationships; delete them first, for example: {}",
        examples.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
    )]
    WouldOrphan {
        /// Up to five of them, one per relation and subject kind.
        examples: Vec<String>,
    },
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Any engine failure: the family errors gathered, for callers that handle them alike.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Opening a store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A read was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A write was refused.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A schema write was refused.
    #[error(transparent)]
    Schema(#[from] SchemaWriteError),
    /// Malformed text (a relationship in a file, say).
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
}

/// A PostgreSQL error with its causes: the client's own text is only the kind (`db error`,
/// `error performing TLS handshake`); the why (the server's message, a refused
/// certificate) is in the causes.
pub(crate) fn postgres_text(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut last = String::new();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let line = inner.to_string();
        if line != last {
            text.push_str(": ");
            text.push_str(&line);
        }
        last = line;
        cause = inner.source();
    }
    text
}
