//! Keeping a replica's index current with a shared store: applying log entries in
//! revision order, catching up on demand, the tailer thread, and the freshness a read asks
//! for. On redb (one process) every entry is this engine's own and catching up is a no-op.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pemba_schema::CompiledSchema;

use super::{build, Engine, LoadedSchema};
use crate::error::{QueryError, StorageError, TokenError};
use crate::plan::Plans;
use crate::revision::{Consistency, Revision};
use crate::store::{LogEntry, RawTuple};
use crate::write::Operation;

/// Entries read from the log per round trip while catching up.
const CATCH_UP_BATCH: usize = 1024;

/// How often the tailer reads the log when no notification wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

impl Engine {
    /// Applies every log entry up to `target` that the index lacks.
    pub(super) fn catch_up_to(&self, target: Revision) -> Result<(), StorageError> {
        while self.revision() < target {
            let entries = self.store.log_after(self.revision(), CATCH_UP_BATCH)?;
            if entries.is_empty() {
                return Ok(());
            }
            self.apply_entries(entries)?;
        }
        Ok(())
    }

    /// Applies every entry the store has beyond the index; the tailer's one step.
    pub fn catch_up(&self) -> Result<Revision, StorageError> {
        loop {
            let entries = self.store.log_after(self.revision(), CATCH_UP_BATCH)?;
            if entries.is_empty() {
                return Ok(self.revision());
            }
            self.apply_entries(entries)?;
        }
    }

    /// Applies entries in revision order: those at or below the applied revision are
    /// skipped (another path applied them), one past a gap stops the batch (the caller
    /// reads the log again), and a schema entry rebuilds the index from the store.
    pub(super) fn apply_entries(&self, entries: Vec<LogEntry>) -> Result<(), StorageError> {
        let _applying = self.applying.lock();
        let mut newest = None;
        for entry in entries {
            let revision = entry.changes.revision;
            let applied = self.state.read().revision;
            if revision <= applied {
                continue;
            }
            if revision.0 != applied.0 + 1 {
                break;
            }
            if entry.schema_changed {
                self.rebuild()?;
                newest = Some(self.state.read().revision);
                continue;
            }
            let mut guard = self.state.write();
            let state = &mut *guard;
            if let Some(schema) = &state.schema {
                for change in &entry.changes.changes {
                    let raw = RawTuple::of(&change.tuple);
                    match change.operation {
                        Operation::Delete => state.index.remove(&schema.compiled, &raw),
                        Operation::Create | Operation::Touch => {
                            state.index.insert(&schema.compiled, &raw);
                        }
                    }
                }
            }
            state.revision = revision;
            newest = Some(revision);
        }
        if let Some(revision) = newest {
            self.revisions.send_replace(revision);
        }
        Ok(())
    }

    /// Reloads the newest schema and rebuilds the index from one snapshot of the store.
    fn rebuild(&self) -> Result<(), StorageError> {
        // The schema and the scan are two reads; a schema written between them shows as
        // a changed schema text on the second read, and the rebuild starts over.
        for _ in 0..8 {
            let Some(text) = self.store.head()?.schema else {
                return Ok(());
            };
            let compiled = pemba_schema::compile(&text).map_err(|errors| {
                StorageError::corrupt(format!("stored schema no longer compiles: {errors}"))
            })?;
            let built = build::build_index(self.store.as_ref(), &compiled)?;
            if self.store.head()?.schema.as_deref() != Some(text.as_str()) {
                continue;
            }
            let plans = Plans::new(&compiled, &built.value);
            let mut state = self.state.write();
            state.schema = Some(Arc::new(LoadedSchema { text, compiled }));
            state.index = built.value;
            state.plans = plans;
            state.revision = built.revision.max(state.revision);
            return Ok(());
        }
        Err(StorageError::Unavailable {
            reason: "the schema kept changing while the index was rebuilt".to_string(),
        })
    }

    /// Brings the index to the revision `consistency` needs, within the staleness bound;
    /// on a store no other process writes, there is nothing to wait for.
    pub(super) fn freshen(&self, consistency: Consistency) -> Result<(), QueryError> {
        if !self.store.shared() {
            return Ok(());
        }
        let wanted = match consistency {
            Consistency::AtLeastAsFresh(wanted) if wanted > self.revision() => wanted,
            Consistency::FullyConsistent => match off_runtime(|| self.store.newest_revision()) {
                Ok(newest) => newest,
                Err(_) => return Err(self.stale(self.revision(), Duration::ZERO)),
            },
            _ => return Ok(()),
        };
        let started = Instant::now();
        loop {
            let caught = off_runtime(|| self.catch_up_to(wanted));
            if self.revision() >= wanted {
                return Ok(());
            }
            if caught.is_ok() {
                // The log ends below the token: no store this replica shares wrote it.
                return Err(TokenError::FromTheFuture {
                    wanted,
                    newest: self.revision(),
                }
                .into());
            }
            if started.elapsed() >= self.max_staleness_wait {
                return Err(self.stale(wanted, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Brings this replica to the revision `consistency` asks for (as a read would),
    /// within the staleness bound: for callers that then read the log themselves (watch
    /// resuming from another replica's token).
    pub fn freshen_for(&self, consistency: Consistency) -> Result<Revision, QueryError> {
        self.freshen(consistency)?;
        Ok(self.revision())
    }

    /// How far this replica is behind the newest commit of its store (nothing on a store
    /// no other process writes).
    pub fn replication_lag(&self) -> Result<crate::store::Lag, StorageError> {
        off_runtime(|| self.store.lag(self.revision()))
    }

    fn stale(&self, wanted: Revision, waited: Duration) -> QueryError {
        QueryError::Stale {
            wanted,
            applied: self.revision(),
            waited,
        }
    }

    /// Sets how long a read waits for this replica to reach the revision it needs
    /// before answering `UNAVAILABLE` (default 5 s).
    pub fn set_max_staleness_wait(&mut self, wait: Duration) {
        self.max_staleness_wait = wait;
    }

    /// On a shared store, starts the thread that tails the log until `stop` is set;
    /// `None` on a store no other process writes.
    pub fn follow(self: &Arc<Self>, stop: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
        if !self.store.shared() {
            return None;
        }
        let engine = Arc::clone(self);
        Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A failed read (the store is down) is retried at the next wake-up;
                // minimizeLatency reads keep answering from the index meanwhile.
                let _caught = engine.catch_up();
                engine.store.wait_for_commits(POLL_INTERVAL);
            }
        }))
    }
}

/// Runs `work` off the async runtime when called from it: a shared store's blocking client
/// cannot run on a runtime thread, and the index rebuild it may trigger scans the store.
fn off_runtime<T: Send>(
    work: impl FnOnce() -> Result<T, StorageError> + Send,
) -> Result<T, StorageError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .unwrap_or(Err(StorageError::LostOutcome))
    })
}

/// An empty schema, for an engine whose store holds none yet.
pub(super) fn no_schema() -> CompiledSchema {
    CompiledSchema::default()
}
