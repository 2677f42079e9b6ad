//! [`Engine`]: the operations of SPEC section 4 over a [`Store`] and the in-memory index.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};
use pemba_schema::CompiledSchema;

use crate::error::{EngineError, StorageError};
use crate::eval::{Evaluator, Subject, SubjectSet};
use crate::expand::{ExpandNode, Expander};
use crate::filter::RelationshipFilter;
use crate::index::{Index, SubjectRel};
use crate::revision::{Consistency, Revision};
use crate::store::{
    ChangeSet, Copy, Deleted, Operation, Precondition, RawTuple, RedbStore, Store, Transaction,
    Update,
};
use crate::tuple::{is_valid_object_id, ObjectRef, SubjectRef, SyntaxError, Tuple};
use crate::validate::{
    orphans, resolve_member, resolve_type, validate_filter, validate_transaction,
};

/// A schema as written and as compiled.
#[derive(Debug)]
pub struct LoadedSchema {
    /// The text the client wrote.
    pub text: String,
    /// Its compiled form.
    pub compiled: CompiledSchema,
}

/// What readers see: one revision's schema and index, swapped as a whole.
struct State {
    revision: Revision,
    schema: Option<Arc<LoadedSchema>>,
    index: Index,
}

/// The authorization engine: durable writes through a [`Store`], answers from the index.
///
/// Readers hold a read lock on the state for the whole request, so every answer comes
/// from one revision and no reader sees part of a write batch. Writers are serialized by
/// `writer`: each commits to the store first (durably), then applies the same changes to
/// the index under the write lock, so the index never runs ahead of what is stored.
pub struct Engine {
    store: Box<dyn Store>,
    state: RwLock<State>,
    /// Held across "commit to store, then apply to index" so index order = commit order.
    writer: Mutex<()>,
    /// Transactions waiting for the next group commit, and whether a leader is committing
    /// (see [`Engine::transact`]). Waiters sleep on `group_done`, which the leader signals
    /// when its commit is applied, so all of them wake at once rather than one by one.
    group: Mutex<GroupState>,
    group_done: Condvar,
    revisions: tokio::sync::watch::Sender<Revision>,
}

type Slot = Arc<Mutex<Option<Result<ChangeSet, EngineError>>>>;

/// A transaction waiting for a group commit, with where its outcome goes.
struct Queued {
    transaction: Transaction,
    /// The schema it was validated against.
    schema: Arc<LoadedSchema>,
    slot: Slot,
}

#[derive(Default)]
struct GroupState {
    queue: Vec<Queued>,
    leader_active: bool,
}

fn lost_outcome() -> EngineError {
    StorageError::Backend("a committed write lost its outcome".to_string()).into()
}

/// One check of a bulk check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    /// The resource.
    pub resource: ObjectRef,
    /// A permission or relation of the resource's type.
    pub permission: String,
    /// Who asks.
    pub subject: SubjectRef,
}

/// A check whose names are borrowed (see [`Engine::check_bulk_borrowed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckArgs<'a> {
    /// Resource type.
    pub resource_type: &'a str,
    /// Resource id.
    pub resource_id: &'a str,
    /// Permission or relation.
    pub permission: &'a str,
    /// Subject type.
    pub subject_type: &'a str,
    /// Subject id, or `*`.
    pub subject_id: &'a str,
    /// Subject relation of a userset.
    pub subject_relation: Option<&'a str>,
}

/// A page of lookup-resources results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupResources {
    /// The revision answered at.
    pub revision: Revision,
    /// Resource ids in ascending order.
    pub ids: Vec<String>,
}

/// One subject found by lookup subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSubject {
    /// The subject id, or `*` for every object of the type.
    pub id: String,
    /// For `*`: the ids it excludes, ascending.
    pub excluded: Vec<String>,
}

/// A page of lookup-subjects results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupSubjects {
    /// The revision answered at.
    pub revision: Revision,
    /// Subjects ordered by id (`*` sorts first).
    pub subjects: Vec<FoundSubject>,
}

/// The outcome of [`Engine::delete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The revision of the deletion.
    pub revision: Revision,
    /// How many relationships were deleted.
    pub deleted: u64,
    /// False when a limit left matching relationships in place.
    pub complete: bool,
}

/// Limits on the results of one lookup page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page<'a> {
    /// Only results strictly after this id.
    pub after: Option<&'a str>,
    /// At most this many results.
    pub limit: Option<usize>,
}

impl Engine {
    /// Opens (or creates) a redb store at `path` and builds the index from it.
    ///
    /// A damaged store is an error, never a crash: redb can panic on some malformed pages,
    /// and such a panic here is reported as [`StorageError::Corrupt`].
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::with_store(Box::new(RedbStore::open(path)?))
        }))
        .unwrap_or_else(|payload| {
            let cause = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "an internal error".to_string());
            Err(StorageError::Corrupt(format!(
                "store `{}` is damaged: reading it failed with `{cause}`",
                path.display()
            ))
            .into())
        })
    }

    /// An engine on a fresh in-memory store.
    pub fn in_memory() -> Result<Self, EngineError> {
        Self::with_store(Box::new(RedbStore::in_memory()?))
    }

    /// An engine over any [`Store`]; the index is built from the store's contents.
    pub fn with_store(store: Box<dyn Store>) -> Result<Self, EngineError> {
        let head = store.head()?;
        let (state, revision) = match head.schema {
            None => (
                State {
                    revision: head.revision,
                    schema: None,
                    index: Index::new(&CompiledSchema::default()),
                },
                head.revision,
            ),
            Some(text) => {
                let compiled = pemba_schema::compile(&text).map_err(|errors| {
                    StorageError::Corrupt(format!("stored schema no longer compiles: {errors}"))
                })?;
                let schema = Arc::new(LoadedSchema { text, compiled });
                let (index, revision) = build_index(store.as_ref(), &schema.compiled)?;
                (
                    State {
                        revision,
                        schema: Some(schema),
                        index,
                    },
                    revision,
                )
            }
        };
        let (revisions, _) = tokio::sync::watch::channel(revision);
        Ok(Engine {
            store,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            group: Mutex::new(GroupState::default()),
            group_done: Condvar::new(),
            revisions,
        })
    }

    /// The newest revision.
    pub fn revision(&self) -> Revision {
        self.state.read().revision
    }

    /// The number of stored relationships.
    pub fn relationship_count(&self) -> u64 {
        self.state.read().index.count
    }

    /// Approximate heap bytes held by the in-memory index (ids and postings).
    pub fn index_heap_bytes(&self) -> usize {
        self.state.read().index.heap_bytes()
    }

    /// The current schema, if one was written.
    pub fn schema(&self) -> Option<Arc<LoadedSchema>> {
        self.state.read().schema.clone()
    }

    /// A receiver that wakes on every committed revision (for watch streams).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision> {
        self.revisions.subscribe()
    }

    fn snapshot(
        &self,
        consistency: Consistency,
    ) -> Result<RwLockReadGuard<'_, State>, EngineError> {
        let state = self.state.read();
        match consistency {
            Consistency::MinimizeLatency | Consistency::FullyConsistent => {}
            Consistency::AtLeastAsFresh(wanted) => {
                if wanted > state.revision {
                    return Err(EngineError::InvalidToken(format!(
                        "revision token names revision {} but the newest is {}: it does not come from this store",
                        wanted.0, state.revision.0
                    )));
                }
            }
            Consistency::AtExactSnapshot(wanted) => {
                if wanted != state.revision {
                    return Err(EngineError::Unsupported(format!(
                        "at_exact_snapshot is supported only for the newest revision ({}), not {}",
                        state.revision.0, wanted.0
                    )));
                }
            }
        }
        Ok(state)
    }

    /// Validates and stores a new schema, refusing one that would orphan stored relationships.
    pub fn write_schema(&self, text: &str) -> Result<Revision, EngineError> {
        let compiled = pemba_schema::compile(text).map_err(EngineError::Schema)?;
        let _writer = self.writer.lock();
        {
            let state = self.state.read();
            if let Some(old) = &state.schema {
                let orphans = orphans(&old.compiled, &state.index, &compiled);
                if !orphans.is_empty() {
                    return Err(EngineError::FailedPrecondition(format!(
                        "the new schema would orphan stored relationships; delete them first, for example: {}",
                        orphans.join(", ")
                    )));
                }
            }
        }
        let revision = self.store.write_schema(text)?;
        let schema = Arc::new(LoadedSchema {
            text: text.to_string(),
            compiled,
        });
        let (index, _) = build_index(self.store.as_ref(), &schema.compiled)?;
        {
            let mut state = self.state.write();
            state.schema = Some(schema);
            state.index = index;
            state.revision = revision;
        }
        self.revisions.send_replace(revision);
        Ok(revision)
    }

    /// The schema text and the revision it was read at.
    pub fn read_schema(&self, consistency: Consistency) -> Result<(String, Revision), EngineError> {
        let state = self.snapshot(consistency)?;
        let schema = state.schema.as_ref().ok_or(EngineError::NoSchema)?;
        Ok((schema.text.clone(), state.revision))
    }

    /// Applies a batch atomically: all updates or none, after the preconditions hold.
    pub fn write(
        &self,
        updates: &[Update],
        preconditions: &[Precondition],
    ) -> Result<Revision, EngineError> {
        self.transact(&Transaction {
            updates: updates.to_vec(),
            preconditions: preconditions.to_vec(),
            ..Transaction::default()
        })
    }

    /// Commits a [`Transaction`]: relationship preconditions, metadata conditions, deletes
    /// by filter, updates and metadata writes, all or nothing.
    ///
    /// Concurrent callers share durable commits (group commit): while one thread (the
    /// leader) commits, the others queue their transactions and wait; when it is done,
    /// one of them commits everything queued in a single redb transaction — each still
    /// checked and applied on its own, with its own revision — so one fsync serves many
    /// writers and no write is acknowledged before it is durable.
    pub fn transact(&self, transaction: &Transaction) -> Result<Revision, EngineError> {
        let schema = self.schema().ok_or(EngineError::NoSchema)?;
        validate_transaction(&schema.compiled, transaction)?;
        let mut group = self.group.lock();
        if !group.leader_active {
            // Uncontended: commit directly, without copying the transaction.
            group.leader_active = true;
            let queued = std::mem::take(&mut group.queue);
            drop(group);
            return self
                .lead_commit(queued, Some((transaction, &schema)))
                .map(|c| c.revision);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        group.queue.push(Queued {
            transaction: transaction.clone(),
            schema,
            slot: slot.clone(),
        });
        loop {
            if let Some(outcome) = slot.lock().take() {
                return outcome.map(|c| c.revision);
            }
            if !group.leader_active {
                group.leader_active = true;
                let queued = std::mem::take(&mut group.queue);
                drop(group);
                // Its own outcome, like every queued one, arrives through its slot.
                let _ = self.lead_commit(queued, None);
                return slot
                    .lock()
                    .take()
                    .unwrap_or_else(|| Err(lost_outcome()))
                    .map(|c| c.revision);
            }
            self.group_done.wait(&mut group);
        }
    }

    /// Commits `queued` (and `own`, the leader's transaction, if it did not queue it) in one
    /// store transaction, fills every queued slot, and hands leadership on. Returns the
    /// outcome of `own` (or of the last transaction when `own` is `None`).
    fn lead_commit(
        &self,
        queued: Vec<Queued>,
        own: Option<(&Transaction, &Arc<LoadedSchema>)>,
    ) -> Result<ChangeSet, EngineError> {
        let outcome = self.commit_group(&queued, own);
        let mut group = self.group.lock();
        group.leader_active = false;
        drop(group);
        self.group_done.notify_all();
        outcome
    }

    fn commit_group(
        &self,
        queued: &[Queued],
        own: Option<(&Transaction, &Arc<LoadedSchema>)>,
    ) -> Result<ChangeSet, EngineError> {
        let _writer = self.writer.lock();
        let fail_all = |error: &EngineError| {
            for q in queued {
                *q.slot.lock() = Some(Err(StorageError::Backend(error.to_string()).into()));
            }
        };
        let Some(current) = self.schema() else {
            fail_all(&EngineError::NoSchema);
            return Err(EngineError::NoSchema);
        };
        // A schema write may have landed since a transaction was validated.
        let mut outcomes: Vec<Option<Result<ChangeSet, EngineError>>> = queued
            .iter()
            .map(|q| {
                if Arc::ptr_eq(&q.schema, &current) {
                    None
                } else {
                    validate_transaction(&current.compiled, &q.transaction)
                        .err()
                        .map(Err)
                }
            })
            .collect();
        let mut batch: Vec<&Transaction> = queued
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_none())
            .map(|(q, _)| &q.transaction)
            .collect();
        if let Some((transaction, schema)) = own {
            if !Arc::ptr_eq(schema, &current) {
                if let Err(error) = validate_transaction(&current.compiled, transaction) {
                    // Still commit the queued ones.
                    let _ = self.commit_batch(&batch, queued, &mut outcomes);
                    return Err(error);
                }
            }
            batch.push(transaction);
        }
        match self.commit_batch(&batch, queued, &mut outcomes) {
            Ok(Some(last)) if own.is_some() => last,
            Ok(_) => Err(lost_outcome()),
            Err(error) => {
                fail_all(&error);
                Err(error)
            }
        }
    }

    /// Commits `batch` (the queued transactions still without an outcome, then possibly the
    /// leader's), applies it to the index and fills the queued slots; returns the outcome
    /// of a trailing transaction beyond the queued ones.
    fn commit_batch(
        &self,
        batch: &[&Transaction],
        queued: &[Queued],
        outcomes: &mut [Option<Result<ChangeSet, EngineError>>],
    ) -> Result<Option<Result<ChangeSet, EngineError>>, EngineError> {
        let committed = if batch.is_empty() {
            Vec::new()
        } else {
            self.store.commit(batch)?
        };
        self.apply_all(committed.iter().filter_map(|c| c.as_ref().ok()));
        let mut committed = committed.into_iter();
        for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
            *outcome = committed.next();
        }
        for (q, outcome) in queued.iter().zip(outcomes.iter_mut()) {
            *q.slot.lock() = outcome.take();
        }
        Ok(committed.next())
    }

    /// The application metadata value of `key` (newest committed state).
    pub fn metadata(&self, key: &str) -> Result<Option<String>, EngineError> {
        self.store.metadata(key)
    }

    /// Every application metadata entry whose key starts with `prefix`, in key order.
    pub fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EngineError> {
        self.store.metadata_with_prefix(prefix)
    }

    /// Deletes every relationship `filter` selects (at most `limit`), atomically.
    pub fn delete(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
        allow_partial: bool,
    ) -> Result<DeleteOutcome, EngineError> {
        let schema = self.schema().ok_or(EngineError::NoSchema)?;
        validate_filter(&schema.compiled, filter, true)?;
        for precondition in preconditions {
            validate_filter(&schema.compiled, &precondition.filter, false)?;
        }
        let _writer = self.writer.lock();
        let Deleted {
            committed,
            complete,
        } = self
            .store
            .delete_matching(filter, preconditions, limit, allow_partial)?;
        self.apply(&committed);
        Ok(DeleteOutcome {
            revision: committed.revision,
            deleted: committed.changes.len() as u64,
            complete,
        })
    }

    /// Deletes every relationship whose subject is exactly `subject`, atomically.
    pub fn delete_subject(&self, subject: &SubjectRef) -> Result<DeleteOutcome, EngineError> {
        let filter = RelationshipFilter {
            subject: Some(crate::filter::SubjectFilter {
                subject_type: subject.object.object_type.clone(),
                subject_id: Some(subject.object.object_id.clone()),
                relation: Some(subject.relation.clone().unwrap_or_default()),
            }),
            ..RelationshipFilter::default()
        };
        self.delete(&filter, &[], None, false)
    }

    fn apply(&self, committed: &ChangeSet) {
        self.apply_all(std::iter::once(committed));
    }

    /// Applies committed change sets to the index, in commit order, under one write lock,
    /// then publishes the newest revision.
    fn apply_all<'c>(&self, committed: impl Iterator<Item = &'c ChangeSet>) {
        let mut guard = self.state.write();
        let state = &mut *guard;
        let mut newest = None;
        for set in committed {
            if let Some(schema) = &state.schema {
                for change in &set.changes {
                    let raw = RawTuple::of(&change.tuple);
                    match change.operation {
                        Operation::Delete => state.index.remove(&schema.compiled, &raw),
                        Operation::Create | Operation::Touch => {
                            state.index.insert(&schema.compiled, &raw);
                        }
                    }
                }
            }
            state.revision = set.revision;
            newest = Some(set.revision);
        }
        drop(guard);
        if let Some(revision) = newest {
            self.revisions.send_replace(revision);
        }
    }

    /// Up to `limit` relationships matching `filter` in stable order, strictly after `after`.
    pub fn read(
        &self,
        consistency: Consistency,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<(Revision, Vec<Tuple>), EngineError> {
        {
            let state = self.snapshot(consistency)?;
            if let Some(schema) = &state.schema {
                validate_filter(&schema.compiled, filter, false)?;
            }
        }
        self.store.read(filter, after, limit)
    }

    /// Change sets committed after `after`, oldest first, at most `limit`.
    pub fn changes_after(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<ChangeSet>, EngineError> {
        let newest = self.revision();
        if after > newest {
            return Err(EngineError::InvalidToken(format!(
                "revision token names revision {} but the newest is {}",
                after.0, newest.0
            )));
        }
        self.store.changes_after(after, limit)
    }

    /// Whether `subject` has `permission` on `resource`.
    pub fn check(
        &self,
        consistency: Consistency,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
    ) -> Result<(bool, Revision), EngineError> {
        let state = self.snapshot(consistency)?;
        let allowed = check_in(&state, resource, permission, subject)?;
        Ok((allowed, state.revision))
    }

    /// Many checks at one revision; each answers on its own (one bad item fails only itself).
    pub fn check_bulk(
        &self,
        consistency: Consistency,
        items: &[CheckRequest],
    ) -> Result<(Revision, Vec<Result<bool, EngineError>>), EngineError> {
        self.check_bulk_borrowed(
            consistency,
            items.iter().map(|item| CheckArgs {
                resource_type: &item.resource.object_type,
                resource_id: &item.resource.object_id,
                permission: &item.permission,
                subject_type: &item.subject.object.object_type,
                subject_id: &item.subject.object.object_id,
                subject_relation: item.subject.relation.as_deref(),
            }),
        )
    }

    /// Many checks at one revision, with names borrowed from the caller: no allocation per
    /// item (the HTTP bulk check answers straight from its parsed request).
    pub fn check_bulk_borrowed<'a>(
        &self,
        consistency: Consistency,
        items: impl IntoIterator<Item = CheckArgs<'a>>,
    ) -> Result<(Revision, Vec<Result<bool, EngineError>>), EngineError> {
        let state = self.snapshot(consistency)?;
        let answers = items
            .into_iter()
            .map(|item| check_parts(&state, &item))
            .collect();
        Ok((state.revision, answers))
    }

    /// The ids of every `resource_type` object on which `subject` has `permission`.
    pub fn lookup_resources(
        &self,
        consistency: Consistency,
        resource_type: &str,
        permission: &str,
        subject: &SubjectRef,
        page: Page<'_>,
    ) -> Result<LookupResources, EngineError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(EngineError::NoSchema)?.compiled;
        let ty = resolve_type(schema, resource_type)?;
        let member = resolve_member(schema, ty, permission)?;
        let Some(s) = resolve_subject(schema, &state.index, subject)? else {
            return Ok(LookupResources {
                revision: state.revision,
                ids: Vec::new(),
            });
        };
        let found = Evaluator {
            schema,
            index: &state.index,
        }
        .lookup_resources(member, &s);
        let interner = state.index.interner(ty);
        let ids = paginate(found.iter().map(|idx| interner.name(idx)), page);
        Ok(LookupResources {
            revision: state.revision,
            ids,
        })
    }

    /// The subjects of `subject_type` (or usersets `subject_type#subject_relation`) that have
    /// `permission` on `resource`; a wildcard appears as `*` with its exclusions.
    pub fn lookup_subjects(
        &self,
        consistency: Consistency,
        resource: &ObjectRef,
        permission: &str,
        subject_type: &str,
        subject_relation: Option<&str>,
        page: Page<'_>,
    ) -> Result<LookupSubjects, EngineError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(EngineError::NoSchema)?.compiled;
        resource.validate(false)?;
        let ty = resolve_type(schema, &resource.object_type)?;
        let member = resolve_member(schema, ty, permission)?;
        let target_ty = resolve_type(schema, subject_type)?;
        let target_rel = match subject_relation.filter(|r| !r.is_empty()) {
            None => SubjectRel::Object,
            Some(relation) => SubjectRel::Member(resolve_member(schema, target_ty, relation)?),
        };
        let mut subjects = Vec::new();
        if let Some(resource_idx) = state.index.interner(ty).get(&resource.object_id) {
            let set: SubjectSet = Evaluator {
                schema,
                index: &state.index,
            }
            .lookup_subjects(member, resource_idx.0, target_ty, target_rel);
            let interner = state.index.interner(target_ty);
            let names = |bitmap: &roaring::RoaringBitmap| {
                let mut names: Vec<String> = bitmap
                    .iter()
                    .map(|i| interner.name(i).to_string())
                    .collect();
                names.sort_unstable();
                names
            };
            let mut all: Vec<FoundSubject> = set
                .concrete
                .iter()
                .map(|i| FoundSubject {
                    id: interner.name(i).to_string(),
                    excluded: Vec::new(),
                })
                .collect();
            if let Some(excluded) = &set.wildcard {
                all.push(FoundSubject {
                    id: "*".to_string(),
                    excluded: names(excluded),
                });
            }
            all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            let skip = page
                .after
                .map_or(0, |after| all.partition_point(|s| s.id.as_str() <= after));
            subjects = all
                .into_iter()
                .skip(skip)
                .take(page.limit.unwrap_or(usize::MAX))
                .collect();
        }
        Ok(LookupSubjects {
            revision: state.revision,
            subjects,
        })
    }

    /// The tree of sets behind `resource#permission`.
    pub fn expand(
        &self,
        consistency: Consistency,
        resource: &ObjectRef,
        permission: &str,
    ) -> Result<(ExpandNode, Revision), EngineError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(EngineError::NoSchema)?.compiled;
        resource.validate(false)?;
        let ty = resolve_type(schema, &resource.object_type)?;
        let member = resolve_member(schema, ty, permission)?;
        let expander = Expander {
            schema,
            index: &state.index,
        };
        Ok((expander.member(member, &resource.object_id), state.revision))
    }
}

/// Builds the index from the store, checking that the store's two copies of every
/// relationship and its recorded count agree; any disagreement is a damaged store.
fn build_index(
    store: &dyn Store,
    schema: &CompiledSchema,
) -> Result<(Index, Revision), EngineError> {
    let mut index = Index::new(schema);
    let mut misfit: Option<String> = None;
    let mut mirrored = 0u64;
    let mut unmatched: Option<String> = None;
    let (revision, recorded) = store.scan_all(&mut |copy, raw| match copy {
        Copy::ByResource => {
            if !index.insert(schema, &raw) && misfit.is_none() {
                misfit = Some(raw.to_tuple().to_string());
            }
        }
        Copy::BySubject => {
            mirrored += 1;
            if unmatched.is_none() && !index.contains(schema, &raw) {
                unmatched = Some(raw.to_tuple().to_string());
            }
        }
    })?;
    let damaged = |what: String| -> EngineError { StorageError::Corrupt(what).into() };
    if let Some(tuple) = misfit {
        return Err(damaged(format!(
            "stored relationship `{tuple}` does not fit the stored schema"
        )));
    }
    if let Some(tuple) = unmatched {
        return Err(damaged(format!(
            "the store is damaged: relationship `{tuple}` is in its subject index but not in its resource index"
        )));
    }
    if mirrored != index.count || recorded != index.count {
        return Err(damaged(format!(
            "the store is damaged: its resource index holds {} relationships, its subject index {mirrored}, and its count says {recorded}",
            index.count
        )));
    }
    Ok((index, revision))
}

/// Strictly-after-cursor, limited, ascending page of names.
fn paginate<'n>(names: impl Iterator<Item = &'n str>, page: Page<'_>) -> Vec<String> {
    let mut names: Vec<&str> = match page.after {
        Some(after) => names.filter(|n| *n > after).collect(),
        None => names.collect(),
    };
    let limit = page.limit.unwrap_or(usize::MAX);
    if limit < names.len() {
        names.select_nth_unstable(limit);
        names.truncate(limit);
    }
    names.sort_unstable();
    names.into_iter().map(str::to_string).collect()
}

/// Resolves a subject; `Ok(None)` when it cannot match anything (a userset never stored).
fn resolve_subject(
    schema: &CompiledSchema,
    index: &Index,
    subject: &SubjectRef,
) -> Result<Option<Subject>, EngineError> {
    resolve_subject_parts(
        schema,
        index,
        &subject.object.object_type,
        &subject.object.object_id,
        subject.relation.as_deref(),
    )
}

/// Resolves a subject given as parts; `Ok(None)` when it cannot match anything.
fn resolve_subject_parts(
    schema: &CompiledSchema,
    index: &Index,
    subject_type: &str,
    subject_id: &str,
    relation: Option<&str>,
) -> Result<Option<Subject>, EngineError> {
    let wildcard = subject_id == "*" && relation.is_none();
    if !wildcard && !is_valid_object_id(subject_id) {
        return Err(SyntaxError::ObjectId(subject_id.to_string()).into());
    }
    if !pemba_schema::is_valid_type_name(subject_type) {
        return Err(SyntaxError::ObjectType(subject_type.to_string()).into());
    }
    let ty = resolve_type(schema, subject_type)?;
    let rel = match relation {
        None if wildcard => SubjectRel::Wildcard,
        None => SubjectRel::Object,
        Some(relation) => SubjectRel::Member(resolve_member(schema, ty, relation)?),
    };
    let idx = if wildcard {
        None
    } else {
        index.interner(ty).get(subject_id).map(|i| i.0)
    };
    if idx.is_none() && matches!(rel, SubjectRel::Member(_)) {
        return Ok(None);
    }
    Ok(Some(Subject { ty, idx, rel }))
}

fn check_in(
    state: &State,
    resource: &ObjectRef,
    permission: &str,
    subject: &SubjectRef,
) -> Result<bool, EngineError> {
    check_parts(
        state,
        &CheckArgs {
            resource_type: &resource.object_type,
            resource_id: &resource.object_id,
            permission,
            subject_type: &subject.object.object_type,
            subject_id: &subject.object.object_id,
            subject_relation: subject.relation.as_deref(),
        },
    )
}

fn check_parts(state: &State, args: &CheckArgs<'_>) -> Result<bool, EngineError> {
    let schema = &state.schema.as_ref().ok_or(EngineError::NoSchema)?.compiled;
    if !pemba_schema::is_valid_type_name(args.resource_type) {
        return Err(SyntaxError::ObjectType(args.resource_type.to_string()).into());
    }
    if !is_valid_object_id(args.resource_id) {
        return Err(SyntaxError::ObjectId(args.resource_id.to_string()).into());
    }
    let ty = resolve_type(schema, args.resource_type)?;
    let member = resolve_member(schema, ty, args.permission)?;
    let Some(s) = resolve_subject_parts(
        schema,
        &state.index,
        args.subject_type,
        args.subject_id,
        args.subject_relation,
    )?
    else {
        return Ok(false);
    };
    let Some(resource_idx) = state.index.interner(ty).get(args.resource_id) else {
        return Ok(false);
    };
    Ok(Evaluator {
        schema,
        index: &state.index,
    }
    .check(member, resource_idx.0, &s))
}
