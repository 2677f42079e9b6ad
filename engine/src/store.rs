//! The seam between the engine and durable storage: the [`Store`] trait and what crosses
//! it. The redb backend lives in `store/redb.rs`; key encoding and the change-log format,
//! which any byte-keyed backend can share, beside it. Table layout: `docs/storage.md`.

mod changelog;
mod keys;
mod redb;

pub use self::redb::RedbStore;
pub use keys::RawTuple;

use crate::error::{StorageError, WriteError};
use crate::revision::{Answer, Revision};
use crate::tuple::Tuple;
use crate::write::{ChangeSet, DeleteRequest, Transaction};
use crate::RelationshipFilter;

/// Which stored copy of the relationships a scan is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredCopy {
    /// The table ordered by resource.
    ByResource,
    /// The table ordered by subject.
    BySubject,
}

/// What a store holds at its newest revision.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// Newest committed revision.
    pub revision: Revision,
    /// Text of the newest schema, if one was written.
    pub schema: Option<String>,
    /// Number of stored relationships.
    pub relationships: u64,
}

/// What a full scan saw besides the relationships themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// The snapshot's revision.
    pub revision: Revision,
    /// The relationship count the store recorded at that revision.
    pub recorded_count: u64,
}

/// A committed delete by filter.
#[derive(Clone, Debug)]
pub struct DeleteCommitted {
    /// The write that deleted them.
    pub changes: ChangeSet,
    /// False when a limit stopped the deletion with matches left.
    pub complete: bool,
}

/// Durable storage of relationships, schemas, application metadata and the change log.
///
/// Every method that writes is one atomic, durable transaction that either applies fully
/// and returns the new revision, or applies nothing.
pub trait Store: Send + Sync {
    /// The newest revision, schema and relationship count.
    fn head(&self) -> Result<Head, StorageError>;
    /// Visits every relationship of one consistent snapshot.
    ///
    /// Relationships come first in resource order ([`StoredCopy::ByResource`]), then again
    /// from the subject-ordered copy ([`StoredCopy::BySubject`]), so the caller can check
    /// that they agree: storage without page checksums can flip a byte of one copy
    /// undetected.
    fn scan_all(
        &self,
        visit: &mut dyn FnMut(StoredCopy, RawTuple<'_>),
    ) -> Result<Scanned, StorageError>;
    /// Commits several transactions with one durable write (group commit). Each is checked
    /// and applied in order as if alone, with its own revision; one refused (a failed
    /// precondition, an existing relationship on create) leaves no trace and does not stop
    /// the others. The outer error means nothing at all was committed.
    fn commit(
        &self,
        transactions: &[&Transaction],
    ) -> Result<Vec<Result<ChangeSet, WriteError>>, StorageError>;
    /// The metadata value of `key`.
    fn metadata(&self, key: &str) -> Result<Option<String>, StorageError>;
    /// Every metadata entry whose key starts with `prefix`, in key order.
    fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StorageError>;
    /// Deletes what the request's filter selects, after its preconditions hold.
    fn delete_matching(&self, request: &DeleteRequest) -> Result<DeleteCommitted, WriteError>;
    /// Up to `limit` relationships matching `filter`, in stable order, strictly after `after`.
    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<Answer<Vec<Tuple>>, StorageError>;
    /// Up to `limit` change sets with revisions above `after`, in commit order.
    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<ChangeSet>, StorageError>;
    /// Stores a new schema version as its own revision.
    fn write_schema(&self, text: &str) -> Result<Revision, StorageError>;
}
