//! [`Engine`]: the operations of SPEC section 4 over a [`Store`] and the in-memory index.
//!
//! This file holds the engine's state, opening and the schema; the questions live in
//! `engine/query.rs`, the writes in `engine/writes.rs`, and building the index from the
//! store (with its cross-check) in `engine/build.rs`.

mod build;
mod follow;
mod query;
mod writes;

pub use writes::{CheckedImport, Imported};

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use pemba_schema::CompiledSchema;

pub use query::{
    CheckArgs, CheckRequest, FoundSubject, FoundSubjectRef, FoundSubjects, Names, NamesIter, Page,
    ReadPage, Relationships, ResourceLookup, SubjectLookup,
};

use crate::error::{QueryError, SchemaWriteError, StorageError, TokenError, WriteError};
use crate::group_commit::GroupCommit;
use crate::index::Index;
use crate::plan::Plans;
use crate::revision::{Answer, Consistency, Revision};
use crate::store::{RedbStore, Store};
use crate::validate::orphans;
use crate::write::{ChangeSet, Transaction};

/// A schema as written and as compiled.
#[derive(Debug)]
pub struct LoadedSchema {
    /// The text the client wrote.
    pub text: String,
    /// Its compiled form.
    pub compiled: CompiledSchema,
}

/// What readers see: one revision's schema and index, swapped as a whole.
///
/// INVARIANT: `plans` were compiled from `schema` and the layout of `index` (which the
/// schema alone decides); the three are replaced together.
struct State {
    revision: Revision,
    schema: Option<Arc<LoadedSchema>>,
    index: Index,
    plans: Plans,
}

/// A transaction waiting in group commit, with the schema it was validated against (a
/// schema write may land before it commits, and then it is validated again).
struct Pending {
    transaction: Transaction,
    schema: Arc<LoadedSchema>,
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
    /// Concurrent transactions share durable commits (see [`Engine::transact`]).
    group: GroupCommit<Pending, Result<ChangeSet, WriteError>>,
    revisions: tokio::sync::watch::Sender<Revision>,
    /// Serializes applying log entries, which the writer, the tailer and reads catching
    /// up on demand all do: each entry is applied once, in revision order. Taken after
    /// `writer` and before `state`.
    applying: Mutex<()>,
    /// How long a read waits for a shared store's revision it needs.
    max_staleness_wait: std::time::Duration,
}

impl Engine {
    /// Opens (or creates) a redb store at `path` and builds the index from it.
    ///
    /// A damaged store is an error, never a crash: redb can panic on some malformed pages,
    /// and such a panic here is reported as [`StorageError::Corrupt`].
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::with_store(Box::new(RedbStore::open(path)?))
        }))
        .unwrap_or_else(|payload| {
            let cause = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "an internal error".to_string());
            Err(StorageError::corrupt(format!(
                "store `{}` is damaged: reading it failed with `{cause}`",
                path.display()
            )))
        })
    }

    /// An engine on a fresh in-memory store.
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::with_store(Box::new(RedbStore::in_memory()?))
    }

    /// An engine over any [`Store`]; the index is built from the store's contents.
    pub fn with_store(store: Box<dyn Store>) -> Result<Self, StorageError> {
        let head = store.head()?;
        let state = match head.schema {
            None => State {
                revision: head.revision,
                schema: None,
                index: Index::new(&follow::no_schema()),
                plans: Plans::default(),
            },
            Some(text) => {
                let compiled = pemba_schema::compile(&text).map_err(|errors| {
                    StorageError::corrupt(format!("stored schema no longer compiles: {errors}"))
                })?;
                let schema = Arc::new(LoadedSchema { text, compiled });
                let built = build::build_index(store.as_ref(), &schema.compiled)?;
                State {
                    revision: built.revision,
                    plans: Plans::new(&schema.compiled, &built.value),
                    schema: Some(schema),
                    index: built.value,
                }
            }
        };
        let (revisions, _) = tokio::sync::watch::channel(state.revision);
        Ok(Engine {
            store,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            group: GroupCommit::default(),
            revisions,
            applying: Mutex::new(()),
            max_staleness_wait: std::time::Duration::from_secs(5),
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

    /// The state at the revision `consistency` asks for, read-locked for one answer.
    fn snapshot(&self, consistency: Consistency) -> Result<RwLockReadGuard<'_, State>, QueryError> {
        self.freshen(consistency)?;
        let state = self.state.read();
        match consistency {
            Consistency::MinimizeLatency | Consistency::FullyConsistent => {}
            Consistency::AtLeastAsFresh(wanted) => {
                if wanted > state.revision {
                    return Err(TokenError::FromTheFuture {
                        wanted,
                        newest: state.revision,
                    }
                    .into());
                }
            }
            Consistency::AtExactSnapshot(wanted) => {
                if wanted != state.revision {
                    return Err(QueryError::SnapshotUnavailable {
                        wanted,
                        newest: state.revision,
                    });
                }
            }
        }
        Ok(state)
    }

    /// Validates and stores a new schema, refusing one that would orphan stored relationships.
    pub fn write_schema(&self, text: &str) -> Result<Revision, SchemaWriteError> {
        let compiled = pemba_schema::compile(text).map_err(SchemaWriteError::Invalid)?;
        let _writer = self.writer.lock();
        // Under the store's commit lock, so no replica writes between the check and the
        // schema's commit.
        let revision = self.store.write_schema(text, &mut |newest| {
            self.catch_up_to(newest)?;
            let state = self.state.read();
            if let Some(old) = &state.schema {
                let examples = orphans(&old.compiled, &state.index, &compiled);
                if !examples.is_empty() {
                    return Err(SchemaWriteError::WouldOrphan { examples });
                }
            }
            Ok(())
        })?;
        let schema = Arc::new(LoadedSchema {
            text: text.to_string(),
            compiled,
        });
        let built = build::build_index(self.store.as_ref(), &schema.compiled)?;
        let plans = Plans::new(&schema.compiled, &built.value);
        {
            let mut state = self.state.write();
            // Another replica's write may follow the schema in the scanned snapshot.
            state.schema = Some(schema);
            state.index = built.value;
            state.plans = plans;
            state.revision = built.revision.max(revision);
        }
        self.revisions.send_replace(revision);
        Ok(revision)
    }

    /// The schema text.
    pub fn read_schema(&self, consistency: Consistency) -> Result<Answer<String>, QueryError> {
        let state = self.snapshot(consistency)?;
        let schema = state.schema.as_ref().ok_or(QueryError::NoSchema)?;
        Ok(Answer {
            value: schema.text.clone(),
            revision: state.revision,
        })
    }

    /// The application metadata value of `key` (newest committed state).
    pub fn metadata(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.store.metadata(key)
    }

    /// Every application metadata entry whose key starts with `prefix`, in key order.
    pub fn metadata_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StorageError> {
        self.store.metadata_with_prefix(prefix)
    }

    /// The store's backend name (`redb`, `postgres`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// One round trip to the store: whether it is reachable.
    pub fn ping_store(&self) -> Result<(), StorageError> {
        self.store.ping()
    }

    /// Change sets committed after `after`, oldest first, at most `limit`, and none
    /// beyond the revision this engine has applied (so a watcher's cursor never runs
    /// ahead of this replica's answers).
    pub fn changes_after(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<ChangeSet>, QueryError> {
        if after > self.revision() && self.store.shared() {
            // Another replica's token: committed, so this replica can catch up to it.
            self.catch_up_to(after)?;
        }
        let newest = self.revision();
        if after > newest {
            return Err(TokenError::FromTheFuture {
                wanted: after,
                newest,
            }
            .into());
        }
        let mut sets = self.store.changes_after(after, limit)?;
        sets.retain(|set| set.revision <= newest);
        Ok(sets)
    }
}
