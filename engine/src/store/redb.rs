//! [`RedbStore`]: the embedded, default [`Store`], one redb file.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

mod bulk;
mod tables;

use bulk::{settle_subjects, subjects_behind, FORMAT_IMPORTED};
use tables::Tables;

use super::changelog::decode_changes;
use super::keys::{
    raw_from_resource_key, raw_from_subject_key, resource_key, scan_plan, subject_key, Digest,
    RawTuple, ScanPlan,
};
use super::{
    Admit, AdmitSchema, BatchCommitted, CopyDigests, DeleteCommitted, Head, LogEntry, Scanned,
    Store,
};
use crate::error::{SchemaWriteError, StorageError, WriteError};
use crate::filter::RelationshipFilter;
use crate::revision::{Answer, Revision};
use crate::tuple::Tuple;
use crate::write::{Change, ChangeSet, DeleteRequest, Operation, OverLimit, Transaction};

const BY_RESOURCE: TableDefinition<&[u8], ()> = TableDefinition::new("relationships_by_resource");
const BY_SUBJECT: TableDefinition<&[u8], ()> = TableDefinition::new("relationships_by_subject");
const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
const SCHEMAS: TableDefinition<u64, &str> = TableDefinition::new("schemas");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const APP_METADATA: TableDefinition<&str, &str> = TableDefinition::new("app_metadata");

const META_REVISION: &str = "revision";
const META_COUNT: &str = "relationships";
const META_FORMAT: &str = "format_version";
/// The format of a store no bulk load has written to (format 2: `bulk.rs`).
const FORMAT_VERSION: u64 = 1;

/// redb's page cache size. Reads are answered by the in-memory index, so the cache only
/// serves writes, `read` pages and the scan on open; redb's default (1 GiB) made resident
/// memory grow by the size of the file while the index was built. The open's scan fills
/// whatever size this is, so it is resident memory from the start: at 64 MiB it was 36 B
/// of the m workload's 127 B per relationship. 16 MiB cost 15 % of durable write
/// throughput with 64 writers on m in one run (12.0k-12.6k against 14.2k-14.9k writes/s),
/// as B-tree pages come back from the OS page cache instead; BENCHMARKS.md has the run.
const CACHE_BYTES: usize = 16 << 20;

fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// The redb-backed [`Store`].
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the store file at `path`.
    ///
    /// An existing file is opened, never re-initialized: an empty one (what a truncated
    /// store looks like) is refused, as is anything redb cannot read.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            StorageError::corrupt(format!("cannot open store `{}`: {e}", path.display()))
        };
        let db = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(corrupt(&"the file is empty (truncated or never written)"))
            }
            Ok(_) => builder().open(path).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::AlreadyOpen {
                    path: path.to_path_buf(),
                },
                other => corrupt(&other),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                builder().create(path).map_err(|e| corrupt(&e))?
            }
            Err(e) => return Err(corrupt(&e)),
        };
        Self::init(db)
    }

    /// A store that lives in memory only (tests, `pemba validate`).
    pub fn in_memory() -> Result<Self, StorageError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self, StorageError> {
        let txn = db.begin_write()?;
        {
            txn.open_table(BY_RESOURCE)?;
            txn.open_table(BY_SUBJECT)?;
            txn.open_table(CHANGELOG)?;
            txn.open_table(SCHEMAS)?;
            txn.open_table(APP_METADATA)?;
            let mut meta = txn.open_table(META)?;
            let format = meta.get(META_FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION | FORMAT_IMPORTED) => {}
                Some(other) => {
                    return Err(StorageError::corrupt(format!(
                        "store format version {other} is not supported (expected {FORMAT_VERSION} or {FORMAT_IMPORTED})"
                    )))
                }
            }
        }
        // An import cut short left the subject table behind its committed batches.
        settle_subjects(&txn)?;
        txn.commit()?;
        Ok(RedbStore { db })
    }
}

impl RedbStore {
    /// A read snapshot for a full scan, and what the scan reports besides relationships.
    fn begin_scan(&self) -> Result<(redb::ReadTransaction, Scanned), StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        // Only while an import in this process is between batches: the subject table is
        // incomplete, so there is no second copy to compare (opening settles it first).
        let mirrored = !subjects_behind(&meta)?;
        let scanned = Scanned {
            revision: stored_revision(&meta)?,
            recorded_count: stored_count(&meta)?,
            mirrored,
        };
        drop(meta);
        Ok((txn, scanned))
    }
}

/// The digest of the subject-ordered copy, read only as key bytes: a damaged key differs
/// in its bytes, and the open reads this copy again, decoded, to name what differs.
fn digest_subject_copy<T: ReadableTable<&'static [u8], ()>>(
    table: &T,
) -> Result<Digest, StorageError> {
    let mut digest = Digest::default();
    for entry in table.iter()? {
        let (key, _) = entry?;
        digest.add_subject_key(key.value());
    }
    Ok(digest)
}

/// Visits keys of `table` under `plan` strictly after `after`, until `visit` returns false.
fn scan<T: ReadableTable<&'static [u8], ()>>(
    table: &T,
    plan: &ScanPlan,
    after: Option<&[u8]>,
    visit: &mut dyn FnMut(RawTuple<'_>) -> bool,
) -> Result<(), StorageError> {
    let start: Bound<&[u8]> = match after {
        Some(key) if key > plan.prefix.as_slice() => Bound::Excluded(key),
        _ => Bound::Included(plan.prefix.as_slice()),
    };
    for entry in table.range::<&[u8]>((start, Bound::Unbounded))? {
        let (key, _) = entry?;
        let key = key.value();
        if !key.starts_with(&plan.prefix) {
            break;
        }
        let raw = if plan.by_subject {
            raw_from_subject_key(key)?
        } else {
            raw_from_resource_key(key)?
        };
        if !visit(raw) {
            break;
        }
    }
    Ok(())
}

/// A subject-ordered read while an import is between batches, when the subject table is
/// incomplete: the resource table scanned whole, the matches put in subject-key order.
/// Slow, and only possible while this process is importing.
fn read_by_subject_during_import(
    txn: &redb::ReadTransaction,
    filter: &RelationshipFilter,
    after: Option<&Tuple>,
    limit: usize,
) -> Result<Vec<Tuple>, StorageError> {
    let after_key = after.map(subject_key);
    let table = txn.open_table(BY_RESOURCE)?;
    let plan = ScanPlan {
        by_subject: false,
        prefix: Vec::new(),
    };
    let mut found: Vec<(Vec<u8>, Tuple)> = Vec::new();
    scan(&table, &plan, None, &mut |raw| {
        if filter.matches_raw(&raw) {
            let tuple = raw.to_tuple();
            let key = subject_key(&tuple);
            if after_key.as_ref().is_none_or(|after| key > *after) {
                found.push((key, tuple));
            }
        }
        true
    })?;
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(found.into_iter().take(limit).map(|(_, t)| t).collect())
}

fn next_revision(meta: &mut redb::Table<'_, &'static str, u64>) -> Result<Revision, StorageError> {
    let current = meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0);
    let next = current + 1;
    meta.insert(META_REVISION, next)?;
    Ok(Revision(next))
}

/// Takes the next revision for a schema version and logs it (an empty entry).
fn store_schema(
    txn: &redb::WriteTransaction,
    meta: &mut redb::Table<'_, &'static str, u64>,
    text: &str,
) -> Result<Revision, StorageError> {
    let revision = next_revision(meta)?;
    txn.open_table(SCHEMAS)?.insert(revision.0, text)?;
    txn.open_table(CHANGELOG)?
        .insert(revision.0, [].as_slice())?;
    Ok(revision)
}

fn stored_revision<T: ReadableTable<&'static str, u64>>(
    meta: &T,
) -> Result<Revision, StorageError> {
    Ok(Revision(
        meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0),
    ))
}

fn stored_count<T: ReadableTable<&'static str, u64>>(meta: &T) -> Result<u64, StorageError> {
    Ok(meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0))
}

impl Store for RedbStore {
    fn head(&self) -> Result<Head, StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let schemas = txn.open_table(SCHEMAS)?;
        let schema = schemas.last()?.map(|(_, text)| text.value().to_string());
        Ok(Head {
            revision: stored_revision(&meta)?,
            schema,
            relationships: stored_count(&meta)?,
        })
    }

    fn scan_all(
        &self,
        visit: &mut dyn FnMut(RawTuple<'_>),
        mirror: &mut dyn FnMut(RawTuple<'_>),
    ) -> Result<Scanned, StorageError> {
        let (txn, scanned) = self.begin_scan()?;
        let by_resource = txn.open_table(BY_RESOURCE)?;
        let plan = |by_subject| ScanPlan {
            by_subject,
            prefix: Vec::new(),
        };
        // One after the other: only the open's rare second pass (when the digests differ)
        // and tests read both copies decoded. The open's own pass, `scan_digested`, reads
        // them on two threads.
        scan(&by_resource, &plan(false), None, &mut |raw| {
            visit(raw);
            true
        })?;
        if scanned.mirrored {
            let by_subject = txn.open_table(BY_SUBJECT)?;
            scan(&by_subject, &plan(true), None, &mut |raw| {
                mirror(raw);
                true
            })?;
        }
        Ok(scanned)
    }

    fn scan_digested(
        &self,
        visit: &mut dyn FnMut(RawTuple<'_>),
    ) -> Result<(Scanned, Option<CopyDigests>), StorageError> {
        let (txn, scanned) = self.begin_scan()?;
        // The subject-ordered copy is only digested, so a second thread reads it while
        // this one reads the first copy and the caller builds the index from it: the open
        // takes the longer scan, not their sum, for the megabytes the second thread's
        // malloc arena keeps (BENCHMARKS.md, "Open: the subject-ordered copy digested on
        // a second thread"). Both tables come from one read transaction: one revision.
        std::thread::scope(|scope| {
            let mirror = match scanned.mirrored {
                false => None,
                true => {
                    let table = txn.open_table(BY_SUBJECT)?;
                    Some(
                        std::thread::Builder::new()
                            .name("pemba-open-digest".to_string())
                            .spawn_scoped(scope, move || digest_subject_copy(&table)),
                    )
                }
            };
            let mut primary = Digest::default();
            for entry in txn.open_table(BY_RESOURCE)?.iter()? {
                let (key, _) = entry?;
                let key = key.value();
                let raw = raw_from_resource_key(key)?;
                primary.add_resource_key(key, &raw);
                visit(raw);
            }
            let mirror = match mirror {
                None => None,
                Some(Ok(thread)) => Some(
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                ),
                // No second thread to be had: digested here, after the first copy.
                Some(Err(_)) => Some(digest_subject_copy(&txn.open_table(BY_SUBJECT)?)?),
            };
            Ok((
                scanned,
                mirror.map(|mirror| CopyDigests { primary, mirror }),
            ))
        })
    }

    fn commit(
        &self,
        transactions: &[&Transaction],
        admit: &mut Admit<'_>,
    ) -> Result<Vec<Result<ChangeSet, WriteError>>, StorageError> {
        let txn = self.db.begin_write()?;
        settle_subjects(&txn)?;
        let mut outcomes = Vec::with_capacity(transactions.len());
        {
            let mut tables = Tables::open(&txn)?;
            // redb's write transaction is the commit lock: no other writer exists until
            // it ends.
            let mut admitted = admit(stored_revision(&tables.meta)?)?.into_iter();
            for transaction in transactions {
                if let Some(Err(refused)) = admitted.next() {
                    outcomes.push(Err(refused));
                    continue;
                }
                // Checks first, against everything committed or applied before in this
                // group, so a refused transaction leaves nothing behind and needs no undo.
                match tables.check_transaction(transaction) {
                    Ok(()) => {}
                    Err(WriteError::Storage(error)) => return Err(error),
                    Err(refused) => {
                        outcomes.push(Err(refused));
                        continue;
                    }
                }
                let changes = tables.apply_transaction(transaction)?;
                outcomes.push(Ok(tables.log(changes)?));
            }
        }
        txn.commit()?;
        Ok(outcomes)
    }

    fn bulk_load(
        &self,
        relationships: &[RawTuple<'_>],
        batch_size: usize,
        committed: &mut BatchCommitted<'_>,
    ) -> Result<(), WriteError> {
        bulk::bulk_load(self, relationships, batch_size, committed)
    }

    fn metadata(&self, key: &str) -> Result<Option<String>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(APP_METADATA)?;
        Ok(table.get(key)?.map(|v| v.value().to_string()))
    }

    fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(APP_METADATA)?;
        let mut found = Vec::new();
        for entry in table.range::<&str>(prefix..)? {
            let (key, value) = entry?;
            if !key.value().starts_with(prefix) {
                break;
            }
            found.push((key.value().to_string(), value.value().to_string()));
        }
        Ok(found)
    }

    fn delete_matching(&self, request: &DeleteRequest) -> Result<DeleteCommitted, WriteError> {
        let txn = self.db.begin_write().map_err(StorageError::from)?;
        settle_subjects(&txn)?;
        let committed = {
            let mut tables = Tables::open(&txn)?;
            tables.check_preconditions(&request.preconditions)?;
            let max = request.limit.unwrap_or(usize::MAX);
            let (doomed, more_left) = tables.matching(&request.filter, max)?;
            if more_left && request.over_limit == OverLimit::Refuse {
                return Err(WriteError::OverLimit { limit: max });
            }
            tables.remove_stored(&doomed)?;
            tables.adjust_count(0, doomed.len() as u64)?;
            let changes: Vec<Change> = doomed
                .into_iter()
                .map(|tuple| Change {
                    operation: Operation::Delete,
                    tuple,
                })
                .collect();
            DeleteCommitted {
                changes: tables.log(changes)?,
                complete: !more_left,
            }
        };
        txn.commit().map_err(StorageError::from)?;
        Ok(committed)
    }

    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<Answer<Vec<Tuple>>, StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let revision = stored_revision(&meta)?;
        let plan = scan_plan(filter);
        if plan.by_subject && subjects_behind(&meta)? {
            let value = read_by_subject_during_import(&txn, filter, after, limit)?;
            return Ok(Answer { value, revision });
        }
        let after_key = after.map(|t| {
            if plan.by_subject {
                subject_key(t)
            } else {
                resource_key(t)
            }
        });
        let table = txn.open_table(if plan.by_subject {
            BY_SUBJECT
        } else {
            BY_RESOURCE
        })?;
        let mut found = Vec::new();
        if limit > 0 {
            scan(&table, &plan, after_key.as_deref(), &mut |raw| {
                if filter.matches_raw(&raw) {
                    found.push(raw.to_tuple());
                }
                found.len() < limit
            })?;
        }
        Ok(Answer {
            value: found,
            revision,
        })
    }

    fn log_after(&self, after: Revision, limit: usize) -> Result<Vec<LogEntry>, StorageError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(CHANGELOG)?;
        let schemas = txn.open_table(SCHEMAS)?;
        let mut entries = Vec::new();
        for entry in log
            .range((Bound::Excluded(after.0), Bound::Unbounded))?
            .take(limit)
        {
            let (revision, bytes) = entry?;
            let revision = revision.value();
            entries.push(LogEntry {
                changes: ChangeSet {
                    revision: Revision(revision),
                    changes: decode_changes(bytes.value())?,
                },
                schema_changed: schemas.get(revision)?.is_some(),
            });
        }
        Ok(entries)
    }

    fn write_schema(
        &self,
        text: &str,
        admit: &mut AdmitSchema<'_>,
    ) -> Result<Revision, SchemaWriteError> {
        let txn = self.db.begin_write().map_err(StorageError::from)?;
        let revision = {
            let mut meta = txn.open_table(META).map_err(StorageError::from)?;
            admit(stored_revision(&meta)?)?;
            store_schema(&txn, &mut meta, text)?
        };
        txn.commit().map_err(StorageError::from)?;
        Ok(revision)
    }

    fn kind(&self) -> &'static str {
        "redb"
    }
}
