//! The storage trait the engine writes through, and its redb implementation.
//!
//! redb is the source of truth; the in-memory index is derived from it. Table layout and
//! key encoding are described in `docs/storage.md`.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{EngineError, StorageError};
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

/// One atomic, durable unit of work: everything applies or nothing does.
///
/// Applied in this order: `preconditions` and `metadata_conditions` are checked, then every
/// relationship matching a `delete_filters` entry is deleted, then `updates` apply, then
/// `metadata` is written. Application metadata (names and descriptions of groups, say)
/// lives beside the relationships so that both change in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
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

/// A relationship borrowed from storage during a scan, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct RawTuple<'a> {
    /// Resource type.
    pub resource_type: &'a str,
    /// Resource id.
    pub resource_id: &'a str,
    /// Relation.
    pub relation: &'a str,
    /// Subject type.
    pub subject_type: &'a str,
    /// Subject id (`*` for a wildcard).
    pub subject_id: &'a str,
    /// Subject relation, empty for none.
    pub subject_relation: &'a str,
}

/// Which stored copy of the relationships a scan is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
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

/// The outcome of a delete by filter.
#[derive(Clone, Debug)]
pub struct Deleted {
    /// The write that deleted them.
    pub committed: ChangeSet,
    /// False when a limit stopped the deletion with matches left.
    pub complete: bool,
}

/// Durable storage of relationships, schemas and the change log.
///
/// Every method that writes is one atomic, durable transaction that either applies fully
/// and returns the new revision, or applies nothing.
pub trait Store: Send + Sync {
    /// The newest revision, schema and relationship count.
    fn head(&self) -> Result<Head, EngineError>;
    /// Visits every relationship of one consistent snapshot; returns its revision.
    ///
    /// Relationships come first in resource order ([`Copy::ByResource`]), then again from
    /// the subject-ordered copy ([`Copy::BySubject`]), so the caller can check that they agree:
    /// storage without page checksums can flip a byte of one copy undetected. Returns the
    /// snapshot's revision and its recorded relationship count.
    fn scan_all(
        &self,
        visit: &mut dyn FnMut(Copy, RawTuple<'_>),
    ) -> Result<(Revision, u64), EngineError>;
    /// Commits several transactions with one durable write (group commit). Each is checked
    /// and applied in order as if alone, with its own revision; one refused (a failed
    /// precondition, an existing relationship on create) leaves no trace and does not stop
    /// the others. The outer error means nothing at all was committed.
    fn commit(
        &self,
        transactions: &[&Transaction],
    ) -> Result<Vec<Result<ChangeSet, EngineError>>, EngineError>;
    /// The metadata value of `key`.
    fn metadata(&self, key: &str) -> Result<Option<String>, EngineError>;
    /// Every metadata entry whose key starts with `prefix`, in key order.
    fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EngineError>;
    /// Deletes what `filter` selects (at most `limit`; with more left, fails unless `allow_partial`).
    fn delete_matching(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
        allow_partial: bool,
    ) -> Result<Deleted, EngineError>;
    /// Up to `limit` relationships matching `filter`, in stable order, strictly after `after`.
    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<(Revision, Vec<Tuple>), EngineError>;
    /// Up to `limit` change sets with revisions above `after`, in commit order.
    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<ChangeSet>, EngineError>;
    /// Stores a new schema version as its own revision.
    fn write_schema(&self, text: &str) -> Result<Revision, EngineError>;
}

const BY_RESOURCE: TableDefinition<&[u8], ()> = TableDefinition::new("relationships_by_resource");
const BY_SUBJECT: TableDefinition<&[u8], ()> = TableDefinition::new("relationships_by_subject");
const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
const SCHEMAS: TableDefinition<u64, &str> = TableDefinition::new("schemas");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const APP_METADATA: TableDefinition<&str, &str> = TableDefinition::new("app_metadata");

const META_REVISION: &str = "revision";
const META_COUNT: &str = "relationships";
const META_FORMAT: &str = "format_version";
const FORMAT_VERSION: u64 = 1;

/// Field separator in keys: below every byte a name or id may contain, so byte order of
/// keys is the lexicographic order of their fields.
const SEP: u8 = 0;

/// redb's page cache size. Reads are answered by the in-memory index, so the cache only
/// serves writes, `read` pages and the scan on open; redb's default (1 GiB) made resident
/// memory grow by the size of the file while the index was built.
const CACHE_BYTES: usize = 64 << 20;

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
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            StorageError::Corrupt(format!("cannot open store `{}`: {e}", path.display()))
        };
        let db = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(corrupt(&"the file is empty (truncated or never written)").into())
            }
            Ok(_) => builder().open(path).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Backend(format!(
                    "store `{}` is already open in another process",
                    path.display()
                )),
                other => corrupt(&other),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                builder().create(path).map_err(|e| corrupt(&e))?
            }
            Err(e) => return Err(corrupt(&e).into()),
        };
        Self::init(db)
    }

    /// A store that lives in memory only (tests, `pemba validate`).
    pub fn in_memory() -> Result<Self, EngineError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self, EngineError> {
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
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StorageError::Corrupt(format!(
                        "store format version {other} is not supported (expected {FORMAT_VERSION})"
                    ))
                    .into())
                }
            }
        }
        txn.commit()?;
        Ok(RedbStore { db })
    }
}

fn resource_key(tuple: &Tuple) -> Vec<u8> {
    join(&[
        &tuple.resource.object_type,
        &tuple.resource.object_id,
        &tuple.relation,
        &tuple.subject.object.object_type,
        &tuple.subject.object.object_id,
        tuple.subject.relation.as_deref().unwrap_or(""),
    ])
}

fn subject_key(tuple: &Tuple) -> Vec<u8> {
    join(&[
        &tuple.subject.object.object_type,
        &tuple.subject.object.object_id,
        tuple.subject.relation.as_deref().unwrap_or(""),
        &tuple.resource.object_type,
        &tuple.resource.object_id,
        &tuple.relation,
    ])
}

fn join(fields: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(field.as_bytes());
    }
    key
}

fn split_key(key: &[u8]) -> Result<[&str; 6], StorageError> {
    let corrupt = || StorageError::Corrupt("malformed relationship key".to_string());
    let mut fields = [""; 6];
    let mut parts = key.split(|b| *b == SEP);
    for field in fields.iter_mut() {
        let part = parts.next().ok_or_else(corrupt)?;
        *field = std::str::from_utf8(part).map_err(|_| corrupt())?;
    }
    if parts.next().is_some() {
        return Err(corrupt());
    }
    Ok(fields)
}

fn raw_from_resource_key(key: &[u8]) -> Result<RawTuple<'_>, StorageError> {
    let [resource_type, resource_id, relation, subject_type, subject_id, subject_relation] =
        split_key(key)?;
    Ok(RawTuple {
        resource_type,
        resource_id,
        relation,
        subject_type,
        subject_id,
        subject_relation,
    })
}

fn raw_from_subject_key(key: &[u8]) -> Result<RawTuple<'_>, StorageError> {
    let [subject_type, subject_id, subject_relation, resource_type, resource_id, relation] =
        split_key(key)?;
    Ok(RawTuple {
        resource_type,
        resource_id,
        relation,
        subject_type,
        subject_id,
        subject_relation,
    })
}

impl<'a> RawTuple<'a> {
    /// Borrows the fields of an owned relationship.
    pub fn of(tuple: &'a Tuple) -> Self {
        RawTuple {
            resource_type: &tuple.resource.object_type,
            resource_id: &tuple.resource.object_id,
            relation: &tuple.relation,
            subject_type: &tuple.subject.object.object_type,
            subject_id: &tuple.subject.object.object_id,
            subject_relation: tuple.subject.relation.as_deref().unwrap_or(""),
        }
    }

    /// An owned copy.
    pub fn to_tuple(&self) -> Tuple {
        Tuple {
            resource: ObjectRef::new(self.resource_type, self.resource_id),
            relation: self.relation.to_string(),
            subject: SubjectRef {
                object: ObjectRef::new(self.subject_type, self.subject_id),
                relation: (!self.subject_relation.is_empty())
                    .then(|| self.subject_relation.to_string()),
            },
        }
    }
}

/// Which table a filter scans and the key prefix it scans.
struct ScanPlan {
    by_subject: bool,
    prefix: Vec<u8>,
}

fn scan_plan(filter: &RelationshipFilter) -> ScanPlan {
    let mut fields: Vec<&str> = Vec::new();
    if let Some(resource_type) = &filter.resource_type {
        fields.push(resource_type);
        if let Some(id) = &filter.resource_id {
            fields.push(id);
            if let Some(relation) = &filter.relation {
                fields.push(relation);
            }
        }
        return ScanPlan {
            by_subject: false,
            prefix: prefix_of(&fields),
        };
    }
    if let Some(subject) = &filter.subject {
        fields.push(&subject.subject_type);
        if let Some(id) = &subject.subject_id {
            fields.push(id);
            if let Some(relation) = &subject.relation {
                fields.push(relation);
            }
        }
        return ScanPlan {
            by_subject: true,
            prefix: prefix_of(&fields),
        };
    }
    ScanPlan {
        by_subject: false,
        prefix: Vec::new(),
    }
}

fn prefix_of(fields: &[&str]) -> Vec<u8> {
    let mut prefix = join(fields);
    if !fields.is_empty() {
        prefix.push(SEP);
    }
    prefix
}

/// Visits keys of `table` under `plan` strictly after `after`, until `visit` returns false.
fn scan<T: ReadableTable<&'static [u8], ()>>(
    table: &T,
    plan: &ScanPlan,
    after: Option<&[u8]>,
    visit: &mut dyn FnMut(RawTuple<'_>) -> Result<bool, EngineError>,
) -> Result<(), EngineError> {
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
        if !visit(raw)? {
            break;
        }
    }
    Ok(())
}

fn encode_changes(changes: &[Change]) -> Vec<u8> {
    // Written field by field: formatting through `Display` costs an allocation per change,
    // which showed in import profiles.
    let mut text = String::with_capacity(changes.len() * 64);
    for change in changes {
        let t = &change.tuple;
        text.push_str(match change.operation {
            Operation::Delete => "D ",
            _ => "T ",
        });
        for part in [
            &t.resource.object_type,
            ":",
            &t.resource.object_id,
            "#",
            &t.relation,
            "@",
            &t.subject.object.object_type,
            ":",
            &t.subject.object.object_id,
        ] {
            text.push_str(part);
        }
        if let Some(relation) = &t.subject.relation {
            text.push('#');
            text.push_str(relation);
        }
        text.push('\n');
    }
    text.into_bytes()
}

fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("malformed change log entry: {what}"));
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not utf-8"))?;
    text.lines()
        .map(|line| {
            let (op, tuple) = line.split_once(' ').ok_or_else(|| corrupt(line))?;
            let operation = match op {
                "T" => Operation::Touch,
                "D" => Operation::Delete,
                _ => return Err(corrupt(line)),
            };
            let tuple = Tuple::parse(tuple).map_err(|_| corrupt(line))?;
            Ok(Change { operation, tuple })
        })
        .collect()
}

type Tables<'t> = (
    redb::Table<'t, &'static [u8], ()>,
    redb::Table<'t, &'static [u8], ()>,
    redb::Table<'t, &'static str, u64>,
);

/// Up to `max` stored relationships matching `filter`, in scan order, and whether more match.
fn matching(
    tables: &Tables<'_>,
    filter: &RelationshipFilter,
    max: usize,
) -> Result<(Vec<Tuple>, bool), EngineError> {
    let plan = scan_plan(filter);
    let table = if plan.by_subject {
        &tables.1
    } else {
        &tables.0
    };
    let mut found = Vec::new();
    let mut more = false;
    scan(table, &plan, None, &mut |raw| {
        let tuple = raw.to_tuple();
        if filter.matches(&tuple) {
            if found.len() == max {
                more = true;
                return Ok(false);
            }
            found.push(tuple);
        }
        Ok(true)
    })?;
    Ok((found, more))
}

/// Removes relationships known to be stored from both tables.
fn remove_stored(tables: &mut Tables<'_>, tuples: &[Tuple]) -> Result<(), EngineError> {
    for tuple in tuples {
        tables.0.remove(resource_key(tuple).as_slice())?;
        tables.1.remove(subject_key(tuple).as_slice())?;
    }
    Ok(())
}

fn check_preconditions(
    tables: &Tables<'_>,
    preconditions: &[Precondition],
) -> Result<(), EngineError> {
    for (i, precondition) in preconditions.iter().enumerate() {
        let matched = !matching(tables, &precondition.filter, 1)?.0.is_empty();
        let want = precondition.kind == PreconditionKind::MustMatch;
        if matched != want {
            return Err(EngineError::FailedPrecondition(format!(
                "precondition {i} failed: relationships matching the filter {}",
                if want {
                    "must exist but none do"
                } else {
                    "must not exist but some do"
                }
            )));
        }
    }
    Ok(())
}

/// Everything that can refuse a transaction, checked without writing.
fn check_transaction(
    tables: &Tables<'_>,
    app: &redb::Table<'_, &'static str, &'static str>,
    transaction: &Transaction,
) -> Result<(), EngineError> {
    check_preconditions(tables, &transaction.preconditions)?;
    for condition in &transaction.metadata_conditions {
        let actual = app
            .get(condition.key.as_str())?
            .map(|v| v.value().to_string());
        if actual != condition.expected {
            return Err(EngineError::FailedPrecondition(format!(
                "metadata `{}` changed concurrently; retry the request",
                condition.key
            )));
        }
    }
    for update in &transaction.updates {
        if update.operation != Operation::Create {
            continue;
        }
        let exists = tables
            .0
            .get(resource_key(&update.tuple).as_slice())?
            .is_some();
        // A relationship this transaction deletes by filter first may be created again.
        if exists
            && !transaction
                .delete_filters
                .iter()
                .any(|f| f.matches(&update.tuple))
        {
            return Err(EngineError::AlreadyExists(update.tuple.to_string()));
        }
    }
    Ok(())
}

/// Applies a checked transaction: deletes by filter, updates (in key order, which keeps
/// B-tree inserts local), metadata; returns the changes in request order.
fn apply_transaction(
    tables: &mut Tables<'_>,
    app: &mut redb::Table<'_, &'static str, &'static str>,
    transaction: &Transaction,
) -> Result<Vec<Change>, EngineError> {
    let mut changes = Vec::with_capacity(transaction.updates.len());
    let (mut added, mut removed) = (0u64, 0u64);
    for filter in &transaction.delete_filters {
        let (doomed, _) = matching(tables, filter, usize::MAX)?;
        remove_stored(tables, &doomed)?;
        for tuple in doomed {
            removed += 1;
            changes.push(Change {
                operation: Operation::Delete,
                tuple,
            });
        }
    }
    let mut by_resource: Vec<(Vec<u8>, usize)> = transaction
        .updates
        .iter()
        .enumerate()
        .map(|(i, u)| (resource_key(&u.tuple), i))
        .collect();
    by_resource.sort_unstable();
    // Whether each update changed the resource table (and so the subject table must follow).
    let mut changed = vec![false; transaction.updates.len()];
    for (key, i) in &by_resource {
        let Some(update) = transaction.updates.get(*i) else {
            continue;
        };
        let did = match update.operation {
            Operation::Create | Operation::Touch => tables.0.insert(key.as_slice(), ())?.is_none(),
            Operation::Delete => tables.0.remove(key.as_slice())?.is_some(),
        };
        if let Some(flag) = changed.get_mut(*i) {
            *flag = did;
        }
    }
    drop(by_resource);
    let mut by_subject: Vec<(Vec<u8>, usize)> = transaction
        .updates
        .iter()
        .enumerate()
        .filter(|(i, _)| changed.get(*i).copied().unwrap_or(false))
        .map(|(i, u)| (subject_key(&u.tuple), i))
        .collect();
    by_subject.sort_unstable();
    for (key, i) in &by_subject {
        match transaction.updates.get(*i).map(|u| u.operation) {
            Some(Operation::Delete) => {
                tables.1.remove(key.as_slice())?;
                removed += 1;
            }
            Some(_) => {
                tables.1.insert(key.as_slice(), ())?;
                added += 1;
            }
            None => {}
        }
    }
    for (update, changed) in transaction.updates.iter().zip(&changed) {
        match update.operation {
            // A touch of a present relationship is still reported, as SpiceDB's watch does.
            Operation::Create | Operation::Touch => changes.push(Change {
                operation: Operation::Touch,
                tuple: update.tuple.clone(),
            }),
            Operation::Delete if *changed => changes.push(Change {
                operation: Operation::Delete,
                tuple: update.tuple.clone(),
            }),
            Operation::Delete => {}
        }
    }
    for write in &transaction.metadata {
        match &write.value {
            Some(value) => {
                app.insert(write.key.as_str(), value.as_str())?;
            }
            None => {
                app.remove(write.key.as_str())?;
            }
        }
    }
    adjust_count(&mut tables.2, added, removed)?;
    Ok(changes)
}

fn next_revision(meta: &mut redb::Table<'_, &'static str, u64>) -> Result<Revision, EngineError> {
    let current = meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0);
    let next = current + 1;
    meta.insert(META_REVISION, next)?;
    Ok(Revision(next))
}

fn adjust_count(
    meta: &mut redb::Table<'_, &'static str, u64>,
    added: u64,
    removed: u64,
) -> Result<(), EngineError> {
    let count = meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
    meta.insert(META_COUNT, (count + added).saturating_sub(removed))?;
    Ok(())
}

impl Store for RedbStore {
    fn head(&self) -> Result<Head, EngineError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let schemas = txn.open_table(SCHEMAS)?;
        let revision = Revision(meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0));
        let relationships = meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
        let schema = schemas.last()?.map(|(_, text)| text.value().to_string());
        Ok(Head {
            revision,
            schema,
            relationships,
        })
    }

    fn scan_all(
        &self,
        visit: &mut dyn FnMut(Copy, RawTuple<'_>),
    ) -> Result<(Revision, u64), EngineError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let revision = Revision(meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0));
        let count = meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
        for (by_subject_table, copy) in [(false, Copy::ByResource), (true, Copy::BySubject)] {
            let table = txn.open_table(if by_subject_table {
                BY_SUBJECT
            } else {
                BY_RESOURCE
            })?;
            let plan = ScanPlan {
                by_subject: by_subject_table,
                prefix: Vec::new(),
            };
            scan(&table, &plan, None, &mut |raw| {
                visit(copy, raw);
                Ok(true)
            })?;
        }
        Ok((revision, count))
    }

    fn commit(
        &self,
        transactions: &[&Transaction],
    ) -> Result<Vec<Result<ChangeSet, EngineError>>, EngineError> {
        let txn = self.db.begin_write()?;
        let mut outcomes = Vec::with_capacity(transactions.len());
        {
            let mut tables: Tables<'_> = (
                txn.open_table(BY_RESOURCE)?,
                txn.open_table(BY_SUBJECT)?,
                txn.open_table(META)?,
            );
            let mut app = txn.open_table(APP_METADATA)?;
            let mut log = txn.open_table(CHANGELOG)?;
            for transaction in transactions {
                // Checks first, against everything committed or applied before in this
                // group, so a refused transaction leaves nothing behind and needs no undo.
                match check_transaction(&tables, &app, transaction) {
                    Ok(()) => {}
                    Err(EngineError::Storage(error)) => return Err(error.into()),
                    Err(refused) => {
                        outcomes.push(Err(refused));
                        continue;
                    }
                }
                let changes = apply_transaction(&mut tables, &mut app, transaction)?;
                let revision = next_revision(&mut tables.2)?;
                log.insert(revision.0, encode_changes(&changes).as_slice())?;
                outcomes.push(Ok(ChangeSet { revision, changes }));
            }
        }
        txn.commit()?;
        Ok(outcomes)
    }

    fn metadata(&self, key: &str) -> Result<Option<String>, EngineError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(APP_METADATA)?;
        Ok(table.get(key)?.map(|v| v.value().to_string()))
    }

    fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EngineError> {
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

    fn delete_matching(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
        allow_partial: bool,
    ) -> Result<Deleted, EngineError> {
        let txn = self.db.begin_write()?;
        let (revision, changes, complete) = {
            let mut tables: Tables<'_> = (
                txn.open_table(BY_RESOURCE)?,
                txn.open_table(BY_SUBJECT)?,
                txn.open_table(META)?,
            );
            check_preconditions(&tables, preconditions)?;
            let max = limit.unwrap_or(usize::MAX);
            let (doomed, more_left) = matching(&tables, filter, max)?;
            if more_left && !allow_partial {
                return Err(EngineError::FailedPrecondition(format!(
                    "more than the limit of {max} relationships match the filter; nothing was deleted \
                     (allow partial deletions to delete them in steps)"
                )));
            }
            remove_stored(&mut tables, &doomed)?;
            adjust_count(&mut tables.2, 0, doomed.len() as u64)?;
            let revision = next_revision(&mut tables.2)?;
            let changes: Vec<Change> = doomed
                .into_iter()
                .map(|tuple| Change {
                    operation: Operation::Delete,
                    tuple,
                })
                .collect();
            let mut log = txn.open_table(CHANGELOG)?;
            log.insert(revision.0, encode_changes(&changes).as_slice())?;
            (revision, changes, !more_left)
        };
        txn.commit()?;
        Ok(Deleted {
            committed: ChangeSet { revision, changes },
            complete,
        })
    }

    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<(Revision, Vec<Tuple>), EngineError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let revision = Revision(meta.get(META_REVISION)?.map(|v| v.value()).unwrap_or(0));
        let plan = scan_plan(filter);
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
                let tuple = raw.to_tuple();
                if filter.matches(&tuple) {
                    found.push(tuple);
                }
                Ok(found.len() < limit)
            })?;
        }
        Ok((revision, found))
    }

    fn changes_after(&self, after: Revision, limit: usize) -> Result<Vec<ChangeSet>, EngineError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(CHANGELOG)?;
        let mut sets = Vec::new();
        for entry in log
            .range((Bound::Excluded(after.0), Bound::Unbounded))?
            .take(limit)
        {
            let (revision, bytes) = entry?;
            sets.push(ChangeSet {
                revision: Revision(revision.value()),
                changes: decode_changes(bytes.value())?,
            });
        }
        Ok(sets)
    }

    fn write_schema(&self, text: &str) -> Result<Revision, EngineError> {
        let txn = self.db.begin_write()?;
        let revision = {
            let mut meta = txn.open_table(META)?;
            let revision = next_revision(&mut meta)?;
            txn.open_table(SCHEMAS)?.insert(revision.0, text)?;
            txn.open_table(CHANGELOG)?
                .insert(revision.0, [].as_slice())?;
            revision
        };
        txn.commit()?;
        Ok(revision)
    }
}
