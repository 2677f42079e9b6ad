//! The seam between the engine and durable storage: the [`Store`] trait and what crosses
//! it. The redb backend lives in `store/redb.rs`, the PostgreSQL one in
//! `store/postgres.rs`; key encoding and the change-log format beside them. Table layout
//! and the replicas' correctness argument: `docs/storage.md`.

mod changelog;
pub(crate) mod keys;
mod postgres;
mod redb;

pub use self::postgres::{
    migrate, migrate_with, redact_url, Migrated, PostgresOptions, PostgresStore,
    DEFAULT_STATEMENT_TIMEOUT,
};
pub use self::redb::RedbStore;
pub use keys::{Digest, RawTuple};

use std::time::Duration;

use crate::error::{SchemaWriteError, StorageError, WriteError};
use crate::revision::{Answer, Revision};
use crate::tuple::Tuple;
use crate::write::{ChangeSet, DeleteRequest, Transaction, Update};
use crate::RelationshipFilter;

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
    /// Whether the scan also visited a second, subject-ordered copy to cross-check (redb
    /// keeps two; PostgreSQL keeps one row per relationship and checksums its pages).
    pub mirrored: bool,
}

/// Digests of a store's two copies of every relationship (see [`Store::scan_digested`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyDigests {
    /// The resource-ordered copy, the one the index is built from.
    pub primary: Digest,
    /// The subject-ordered copy.
    pub mirror: Digest,
}

/// One change-log entry, as a replica applies it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// The revision and what it changed.
    pub changes: ChangeSet,
    /// Whether the revision wrote a schema (the replica then rebuilds its index).
    pub schema_changed: bool,
}

/// Called by [`Store::commit`] once the store holds its commit lock, with the newest
/// committed revision: the engine catches up to it, then says for each transaction whether
/// its check conditions hold (a shorter answer admits the rest).
pub type Admit<'a> = dyn FnMut(Revision) -> Result<Vec<Result<(), WriteError>>, StorageError> + 'a;

/// Called by [`Store::write_schema`] once the store holds its commit lock, with the
/// newest committed revision: the engine catches up to it and refuses a schema that
/// would orphan relationships.
pub type AdmitSchema<'a> = dyn FnMut(Revision) -> Result<(), SchemaWriteError> + 'a;

/// Called by [`Store::bulk_load`] after each batch commits, with its revision and its
/// relationships, before the next batch starts (the engine applies it to its index).
pub type BatchCommitted<'a> = dyn FnMut(Revision, &[RawTuple<'_>]) -> Result<(), StorageError> + 'a;

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
    /// Every relationship once to `visit`, in resource order, and, where the store keeps a
    /// second, subject-ordered copy (see [`Scanned::mirrored`]), every relationship of that
    /// copy to `mirror`, so the caller can check that the two agree: storage without page
    /// checksums can flip a byte of one copy undetected. Both see one snapshot.
    fn scan_all(
        &self,
        visit: &mut dyn FnMut(RawTuple<'_>),
        mirror: &mut dyn FnMut(RawTuple<'_>),
    ) -> Result<Scanned, StorageError>;
    /// [`Store::scan_all`], with both copies digested instead of the second visited: the
    /// open compares the digests and reads the second copy one by one only when they
    /// differ, to name a relationship. `None` when [`Scanned::mirrored`] is false.
    ///
    /// The default digests the names `scan_all` yields; redb digests its keys' bytes, so
    /// the second copy is never decoded.
    fn scan_digested(
        &self,
        visit: &mut dyn FnMut(RawTuple<'_>),
    ) -> Result<(Scanned, Option<CopyDigests>), StorageError> {
        let mut digests = CopyDigests::default();
        let scanned = self.scan_all(
            &mut |raw| {
                digests.primary.add(&raw);
                visit(raw);
            },
            &mut |raw| digests.mirror.add(&raw),
        )?;
        Ok((scanned, scanned.mirrored.then_some(digests)))
    }
    /// Commits several transactions with one durable write (group commit). Each is checked
    /// and applied in order as if alone, with its own revision; one refused (a failed
    /// precondition, an existing relationship on create) leaves no trace and does not stop
    /// the others. The outer error means nothing at all was committed.
    ///
    /// `admit` runs once, after the store holds the lock that orders commits and before
    /// anything is checked: what it refuses is not committed.
    fn commit(
        &self,
        transactions: &[&Transaction],
        admit: &mut Admit<'_>,
    ) -> Result<Vec<Result<ChangeSet, WriteError>>, StorageError>;
    /// Imports `relationships` as touches in batches of `batch_size`: each batch is one
    /// durable transaction with its own revision, committed in order, so a crash leaves
    /// whole batches only. `relationships` are valid for the current schema, in resource
    /// order (the order of [`Tuple`]) and without duplicates; the caller holds off other
    /// writers until this returns. `committed` runs after each batch commits.
    ///
    /// The default commits each batch as an ordinary transaction. The redb store writes
    /// sorted runs through a cursor and a compact change-log entry instead, and fills its
    /// subject-ordered table once at the end (`docs/storage.md`, "Bulk load").
    fn bulk_load(
        &self,
        relationships: &[RawTuple<'_>],
        batch_size: usize,
        committed: &mut BatchCommitted<'_>,
    ) -> Result<(), WriteError> {
        for batch in relationships.chunks(batch_size.max(1)) {
            let transaction = Transaction {
                updates: batch
                    .iter()
                    .map(|raw| Update::touch(raw.to_tuple()))
                    .collect(),
                ..Transaction::default()
            };
            let outcome = self
                .commit(&[&transaction], &mut |_| Ok(Vec::new()))?
                .into_iter()
                .next()
                .ok_or(StorageError::LostOutcome)??;
            committed(outcome.revision, batch)?;
        }
        Ok(())
    }
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
    /// Up to `limit` log entries with revisions above `after`, in commit order.
    fn log_after(&self, after: Revision, limit: usize) -> Result<Vec<LogEntry>, StorageError>;
    /// Up to `limit` change sets with revisions above `after`, in commit order.
    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<ChangeSet>, StorageError> {
        Ok(self
            .log_after(after, limit)?
            .into_iter()
            .map(|entry| entry.changes)
            .collect())
    }
    /// Stores a new schema version as its own revision, once `admit` accepts it under the
    /// commit lock.
    fn write_schema(
        &self,
        text: &str,
        admit: &mut AdmitSchema<'_>,
    ) -> Result<Revision, SchemaWriteError>;
    /// The newest committed revision (what `fullyConsistent` waits for).
    fn newest_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.head()?.revision)
    }
    /// Whether other processes may write to this store, so the engine must tail its log.
    fn shared(&self) -> bool {
        false
    }
    /// Blocks until another process may have committed, or `timeout` passes (a hint only:
    /// the caller reads the log either way).
    fn wait_for_commits(&self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
    /// The backend's name, as `/healthz` reports it.
    fn kind(&self) -> &'static str;
    /// One round trip to the store, to tell whether it is reachable.
    fn ping(&self) -> Result<(), StorageError> {
        self.newest_revision().map(drop)
    }
    /// How far a replica that has applied `applied` is behind the newest commit; nothing
    /// on a store no other process writes.
    fn lag(&self, applied: Revision) -> Result<Lag, StorageError> {
        let _ = applied;
        Ok(Lag::default())
    }
}

/// How far a replica is behind the newest committed revision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lag {
    /// Revisions committed but not yet applied.
    pub revisions: u64,
    /// How long ago the oldest of them committed (zero when caught up).
    pub seconds: f64,
}
