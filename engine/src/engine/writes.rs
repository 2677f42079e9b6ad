//! Writes: transactions through group commit, deletes by filter, and applying committed
//! changes to the index.

use std::sync::Arc;

use super::{Engine, LoadedSchema, Pending};
use crate::error::{InvalidError, QueryError, StorageError, WriteError};
use crate::filter::{RelationshipFilter, SubjectFilter};
use crate::revision::{Answer, Revision};
use crate::store::keys::{push_resource_key, raw_from_resource_key};
use crate::store::{LogEntry, RawTuple};
use crate::tuple::SubjectRef;
use crate::validate::{validate_filter, validate_raw, validate_transaction};
use crate::write::{ChangeSet, DeleteRequest, Deleted, Precondition, Transaction, Update};

/// What [`Engine::import`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Distinct relationships written (touched: those already stored count too).
    pub relationships: usize,
    /// Relationships given more than once, beyond the first.
    pub duplicates: usize,
    /// The revision of the last batch; `None` when there was nothing to import.
    pub revision: Option<Revision>,
}

/// Relationships checked one by one against a schema, for [`Engine::import_checked`]: a
/// caller that reports each invalid line itself (`pemba import`) checks every line once,
/// here, and the import does not check them again unless the schema has changed since.
pub struct CheckedImport<'a> {
    schema: Arc<LoadedSchema>,
    relationships: Vec<RawTuple<'a>>,
}

impl<'a> CheckedImport<'a> {
    /// Nothing yet, to be checked against `schema` (normally [`Engine::schema`]).
    pub fn new(schema: Arc<LoadedSchema>) -> Self {
        CheckedImport {
            schema,
            relationships: Vec::new(),
        }
    }

    /// Checks `relationship` and keeps it if it is valid; an invalid one is not kept.
    pub fn push(&mut self, relationship: RawTuple<'a>) -> Result<(), InvalidError> {
        validate_raw(&self.schema.compiled, &relationship)?;
        self.relationships.push(relationship);
        Ok(())
    }

    /// The valid relationships kept so far, in the order given.
    pub fn relationships(&self) -> &[RawTuple<'a>] {
        &self.relationships
    }
}

impl Engine {
    /// Imports relationships as touches: every one validated first (one invalid writes
    /// nothing), sorted, duplicates dropped, then committed through the store's bulk path
    /// in batches of `batch_size` — each batch one durable transaction with its own
    /// revision, so a crash leaves whole batches — and applied to the index as each
    /// commits. `progress` hears each batch's size. Other writers wait until it is done.
    pub fn import(
        &self,
        relationships: &[RawTuple<'_>],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Imported, WriteError> {
        let _writer = self.writer.lock();
        let schema = self.schema().ok_or(WriteError::NoSchema)?;
        for raw in relationships {
            validate_raw(&schema.compiled, raw)?;
        }
        self.import_valid(relationships, batch_size, progress)
    }

    /// [`Engine::import`] of relationships already checked: they are checked again only
    /// if the store's schema is no longer the one they were checked against.
    pub fn import_checked(
        &self,
        checked: &CheckedImport<'_>,
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Imported, WriteError> {
        let _writer = self.writer.lock();
        let schema = self.schema().ok_or(WriteError::NoSchema)?;
        if !Arc::ptr_eq(&schema, &checked.schema) {
            for raw in &checked.relationships {
                validate_raw(&schema.compiled, raw)?;
            }
        }
        self.import_valid(&checked.relationships, batch_size, progress)
    }

    /// The rest of an import, under the writer lock, once every relationship is valid
    /// against the current schema.
    fn import_valid(
        &self,
        relationships: &[RawTuple<'_>],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Imported, WriteError> {
        let keys = SortedKeys::of(relationships);
        let sorted = keys.relationships()?;
        let duplicates = relationships.len() - sorted.len();
        let mut revision = None;
        let loaded = std::thread::scope(|scope| {
            // On a store no other process writes, each committed batch goes to the index
            // on a second thread while the next batch is written: readers still see a batch
            // only once it is durable, and in order.
            let (to_index, batches) = std::sync::mpsc::channel::<(Revision, ToIndex)>();
            let indexer = (!self.store.shared()).then(|| {
                let sorted = &sorted;
                scope.spawn(move || {
                    for (committed, batch) in batches {
                        match batch {
                            ToIndex::Ours(range) => {
                                if let Some(batch) = sorted.get(range) {
                                    self.apply_imported(committed, batch);
                                }
                            }
                            ToIndex::Copied(tuples) => {
                                let raws: Vec<RawTuple<'_>> =
                                    tuples.iter().map(RawTuple::of).collect();
                                self.apply_imported(committed, &raws);
                            }
                        }
                    }
                })
            });
            let mut offset = 0;
            let loaded = self
                .store
                .bulk_load(&sorted, batch_size, &mut |committed, batch| {
                    let start = offset;
                    offset += batch.len();
                    // A store hands back chunks of `sorted`; anything else is copied, so
                    // the indexer still applies every batch in order.
                    let ours = sorted
                        .get(start..offset)
                        .is_some_and(|ours| std::ptr::eq(ours.as_ptr(), batch.as_ptr()));
                    let message = if ours {
                        ToIndex::Ours(start..offset)
                    } else {
                        ToIndex::Copied(batch.iter().map(RawTuple::to_tuple).collect())
                    };
                    // Without an indexer, or once it is gone, the batch is applied here.
                    if indexer.is_none() || to_index.send((committed, message)).is_err() {
                        self.catch_up_to(Revision(committed.0.saturating_sub(1)))?;
                        self.apply_imported(committed, batch);
                    }
                    revision = Some(committed);
                    progress(batch.len());
                    Ok(())
                });
            drop(to_index);
            if let Some(indexer) = indexer {
                let _ = indexer.join();
            }
            loaded
        });
        loaded?;
        Ok(Imported {
            relationships: sorted.len(),
            duplicates,
            revision,
        })
    }

    /// Applies one committed import batch to the index; one already applied, or past a
    /// gap (another replica's revisions, which the tailer applies in order), is left to
    /// the log.
    fn apply_imported(&self, revision: Revision, batch: &[RawTuple<'_>]) {
        let _applying = self.applying.lock();
        {
            let mut guard = self.state.write();
            let state = &mut *guard;
            if revision.0 != state.revision.0 + 1 {
                return;
            }
            if let Some(schema) = &state.schema {
                for raw in batch {
                    state.index.insert(&schema.compiled, raw);
                }
            }
            state.revision = revision;
        }
        self.revisions.send_replace(revision);
    }

    /// Applies a batch atomically: all updates or none, after the preconditions hold.
    /// Takes them owned or borrowed (`vec![..]`, `&updates`, `&[]`).
    pub fn write(
        &self,
        updates: impl Into<Vec<Update>>,
        preconditions: impl Into<Vec<Precondition>>,
    ) -> Result<Revision, WriteError> {
        self.transact(Transaction {
            updates: updates.into(),
            preconditions: preconditions.into(),
            ..Transaction::default()
        })
    }

    /// Commits a [`Transaction`]: relationship preconditions, metadata conditions, deletes
    /// by filter, updates and metadata writes, all or nothing.
    ///
    /// Concurrent callers share durable commits (group commit): while one thread (the
    /// leader) commits, the others queue their transactions and wait; when it is done,
    /// one of them commits everything queued in a single store transaction — each still
    /// checked and applied on its own, with its own revision — so one fsync serves many
    /// writers and no write is acknowledged before it is durable. A failure of the whole
    /// group reaches every writer in it as the same error.
    pub fn transact(&self, transaction: Transaction) -> Result<Revision, WriteError> {
        let schema = self.schema().ok_or(WriteError::NoSchema)?;
        validate_transaction(&schema.compiled, &transaction)?;
        self.group
            .submit(
                Pending {
                    transaction,
                    schema,
                },
                |group| self.commit_group(group),
                || Err(StorageError::LostOutcome.into()),
            )
            .map(|committed| committed.revision)
    }

    /// Commits one group and applies it to the index; one outcome per transaction, in
    /// order.
    ///
    /// Transactions without check conditions share one store transaction. One with check
    /// conditions starts a new store transaction, after everything before it is committed
    /// and applied, and its checks are evaluated then, under the writer lock: so they see
    /// every write that commits before it, and no write can slip between the check and its
    /// commit.
    fn commit_group(&self, group: Vec<Pending>) -> Vec<Result<ChangeSet, WriteError>> {
        let _writer = self.writer.lock();
        let Some(current) = self.schema() else {
            return group.iter().map(|_| Err(WriteError::NoSchema)).collect();
        };
        // A schema write may have landed since a transaction was validated.
        let mut outcomes: Vec<Option<Result<ChangeSet, WriteError>>> = group
            .iter()
            .map(|pending| {
                if Arc::ptr_eq(&pending.schema, &current) {
                    return None;
                }
                validate_transaction(&current.compiled, &pending.transaction)
                    .err()
                    .map(|invalid| Err(invalid.into()))
            })
            .collect();
        let mut segment: Vec<usize> = Vec::new();
        let mut failed: Option<StorageError> = None;
        for at in 0..=group.len() {
            let starts_segment = group
                .get(at)
                .is_none_or(|pending| !pending.transaction.checks.is_empty());
            if starts_segment && !segment.is_empty() {
                let committed = match &failed {
                    Some(error) => Err(error.clone()),
                    None => self.commit_segment(&group, &segment, &mut outcomes),
                };
                // A store failure ends this segment and every later one with the same error.
                if let Err(error) = committed {
                    for index in &segment {
                        if let Some(slot) = outcomes.get_mut(*index) {
                            *slot = Some(Err(error.clone().into()));
                        }
                    }
                    failed = Some(error);
                }
                segment.clear();
            }
            if outcomes.get(at).is_some_and(Option::is_none) {
                segment.push(at);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Err(StorageError::LostOutcome.into())))
            .collect()
    }

    /// Commits the transactions at `segment` (indices into `group`) in one store
    /// transaction, after the first one's check conditions hold; fills their outcomes.
    fn commit_segment(
        &self,
        group: &[Pending],
        segment: &[usize],
        outcomes: &mut [Option<Result<ChangeSet, WriteError>>],
    ) -> Result<(), StorageError> {
        let batch: Vec<(usize, &Transaction)> = segment
            .iter()
            .filter_map(|&index| group.get(index).map(|p| (index, &p.transaction)))
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let transactions: Vec<&Transaction> = batch.iter().map(|(_, t)| *t).collect();
        // Check conditions are evaluated under the store's commit lock, after the index
        // has caught up with every revision committed before it (other replicas' too).
        let committed = self.store.commit(&transactions, &mut |newest| {
            self.catch_up_to(newest)?;
            Ok(transactions.iter().map(|t| self.checks_hold(t)).collect())
        })?;
        self.apply_all(committed.iter().filter_map(|c| c.as_ref().ok()));
        for ((index, _), outcome) in batch.iter().zip(committed) {
            if let Some(slot) = outcomes.get_mut(*index) {
                *slot = Some(outcome);
            }
        }
        Ok(())
    }

    /// Whether every check condition of `transaction` gives its expected answer now.
    fn checks_hold(&self, transaction: &Transaction) -> Result<(), WriteError> {
        if transaction.checks.is_empty() {
            return Ok(());
        }
        let state = self.state.read();
        for (index, condition) in transaction.checks.iter().enumerate() {
            let answer = super::query::check_in(&state, &condition.check.args()).map_err(
                |error| match error {
                    QueryError::Invalid(invalid) => WriteError::Invalid(invalid),
                    QueryError::NoSchema => WriteError::NoSchema,
                    QueryError::Storage(storage) => WriteError::Storage(storage),
                    // A check against a locked state reads no token.
                    QueryError::Token(_)
                    | QueryError::SnapshotUnavailable { .. }
                    | QueryError::Stale { .. } => WriteError::Storage(StorageError::LostOutcome),
                },
            )?;
            if answer != condition.expected {
                return Err(WriteError::CheckFailed {
                    index,
                    check: Box::new(condition.check.clone()),
                    expected: condition.expected,
                });
            }
        }
        Ok(())
    }

    /// Deletes every relationship the request's filter selects, atomically.
    pub fn delete(&self, request: &DeleteRequest) -> Result<Answer<Deleted>, WriteError> {
        let schema = self.schema().ok_or(WriteError::NoSchema)?;
        validate_filter(&schema.compiled, &request.filter, true)?;
        for precondition in &request.preconditions {
            validate_filter(&schema.compiled, &precondition.filter, false)?;
        }
        let _writer = self.writer.lock();
        let committed = self.store.delete_matching(request)?;
        self.apply_all(std::iter::once(&committed.changes));
        Ok(Answer {
            value: Deleted {
                count: committed.changes.changes.len() as u64,
                complete: committed.complete,
            },
            revision: committed.changes.revision,
        })
    }

    /// Deletes every relationship whose subject is exactly `subject`, atomically.
    pub fn delete_subject(&self, subject: &SubjectRef) -> Result<Answer<Deleted>, WriteError> {
        self.delete(&DeleteRequest::matching(RelationshipFilter::subject(
            SubjectFilter::exact(subject),
        )))
    }

    /// Applies this replica's committed change sets to the index, in commit order, then
    /// publishes the newest revision. Revisions already applied (by the tailer) are
    /// skipped; a gap before them (other replicas' writes) is read from the store first,
    /// and if that fails the tailer applies them all later, in order.
    fn apply_all<'c>(&self, committed: impl Iterator<Item = &'c ChangeSet>) {
        let entries: Vec<LogEntry> = committed
            .map(|set| LogEntry {
                changes: set.clone(),
                schema_changed: false,
            })
            .collect();
        if let Some(first) = entries.first() {
            let before = Revision(first.changes.revision.0.saturating_sub(1));
            if self.catch_up_to(before).is_err() {
                return;
            }
        }
        // Entries of this replica's own commit hold no schema, so applying cannot fail.
        let _applied = self.apply_entries(entries);
    }
}

/// A committed import batch on its way to the indexer thread.
enum ToIndex {
    /// A range of the import's sorted relationships.
    Ours(std::ops::Range<usize>),
    /// A batch the store built itself.
    Copied(Vec<crate::tuple::Tuple>),
}

/// The distinct resource keys of an import, sorted, back to back in one buffer.
///
/// Sorting encoded keys compares byte slices (one memcmp) where comparing relationships
/// field by field costs up to six; and copying the sorted keys into a fresh buffer means
/// everything after the sort (the store's keys, the subject keys, the index) reads memory
/// in order, so shuffled input costs about what ordered input does.
struct SortedKeys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl SortedKeys {
    fn of(relationships: &[RawTuple<'_>]) -> Self {
        let mut input = Vec::with_capacity(relationships.len() * 48);
        let mut ends = Vec::with_capacity(relationships.len());
        for raw in relationships {
            push_resource_key(raw, &mut input);
            ends.push(input.len());
        }
        let mut keys: Vec<&[u8]> = Vec::with_capacity(relationships.len());
        let mut start = 0;
        for &end in &ends {
            keys.push(input.get(start..end).unwrap_or_default());
            start = end;
        }
        keys.sort_unstable();
        keys.dedup();
        let mut bytes = Vec::with_capacity(input.len());
        ends.clear();
        for key in keys {
            bytes.extend_from_slice(key);
            ends.push(bytes.len());
        }
        SortedKeys { bytes, ends }
    }

    /// The relationships, borrowed from the sorted keys.
    fn relationships(&self) -> Result<Vec<RawTuple<'_>>, StorageError> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let key = self.bytes.get(start..end).unwrap_or_default();
                start = end;
                raw_from_resource_key(key)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuple::Tuple;

    const SCHEMA: &str = "definition user {}
definition doc {
    relation viewer: user
}";

    #[test]
    fn a_checked_import_is_checked_again_only_when_the_schema_changed() {
        let engine = Engine::in_memory().unwrap();
        engine.write_schema(SCHEMA).unwrap();
        let tuples = [
            Tuple::parse("doc:a#viewer@user:u1").unwrap(),
            Tuple::parse("doc:a#viewer@user:u2").unwrap(),
        ];
        let mut checked = CheckedImport::new(engine.schema().unwrap());
        for tuple in &tuples {
            checked.push(RawTuple::of(tuple)).unwrap();
        }
        let invalid = Tuple::parse("doc:a#editor@user:u1").unwrap();
        assert!(checked.push(RawTuple::of(&invalid)).is_err());
        assert_eq!(
            checked.relationships().len(),
            2,
            "the invalid one is not kept"
        );

        // Checked against a schema the store no longer has: checked again, and refused.
        let renamed = SCHEMA.replace("viewer", "reader");
        engine.write_schema(&renamed).unwrap();
        let refused = engine.import_checked(&checked, 10, &mut |_| {});
        assert!(
            matches!(refused, Err(WriteError::Invalid(_))),
            "{refused:?}"
        );
        assert_eq!(engine.relationship_count(), 0);

        engine.write_schema(SCHEMA).unwrap();
        let mut checked = CheckedImport::new(engine.schema().unwrap());
        for tuple in &tuples {
            checked.push(RawTuple::of(tuple)).unwrap();
        }
        let imported = engine.import_checked(&checked, 10, &mut |_| {}).unwrap();
        assert_eq!((imported.relationships, imported.duplicates), (2, 0));
        assert_eq!(engine.relationship_count(), 2);
    }
}
