//! The bulk-load path of [`RedbStore`]: each batch's resource keys spliced into the
//! resource table as one sorted run through a cursor, one compact change-log entry per
//! batch, and the subject table filled once, from one sorted run, after the last batch.
//!
//! Between the first batch and that last step the subject table lacks what the batches
//! added; the meta key [`META_SUBJECTS_BEHIND`] says so, durably, in the same transactions.
//! Whoever finds it set before touching relationships (open, any other write) first
//! rebuilds the subject table from the resource table ([`settle_subjects`]), so a crash
//! mid-import leaves whole batches and two tables that agree once the store is opened.

use std::ops::{Bound, Range};

use redb::{ReadableTable, WriteTransaction};

use super::{
    next_revision, RedbStore, BY_RESOURCE, BY_SUBJECT, CHANGELOG, META, META_COUNT, META_FORMAT,
};
use crate::error::{StorageError, WriteError};
use crate::revision::Revision;
use crate::store::changelog::encode_imported;
use crate::store::keys::{push_resource_key, push_subject_key, raw_from_resource_key, RawTuple};
use crate::store::BatchCommitted;

/// Present while the subject table lacks relationships that bulk batches added; the value
/// is the revision of the first such batch (every batch from it on is missing there).
pub(super) const META_SUBJECTS_BEHIND: &str = "subjects_behind_from";

/// The store format once a compact log entry or [`META_SUBJECTS_BEHIND`] may be present:
/// builds that know only format 1 refuse the store instead of misreading it.
pub(super) const FORMAT_IMPORTED: u64 = 2;

/// How many stored keys a merge steps over one by one before it seeks afresh.
const RESEEK_AFTER: usize = 16;

type KeyTable<'t> = redb::Table<'t, &'static [u8], ()>;

/// Keys in one buffer, each a range of it.
#[derive(Default)]
struct Keys {
    bytes: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl Keys {
    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    fn push(&mut self, raw: &RawTuple<'_>, encode: fn(&RawTuple<'_>, &mut Vec<u8>)) {
        let start = self.bytes.len();
        encode(raw, &mut self.bytes);
        self.spans.push(start..self.bytes.len());
    }

    fn iter_from(&self, first: usize) -> impl Iterator<Item = &[u8]> {
        self.spans
            .get(first..)
            .unwrap_or_default()
            .iter()
            .filter_map(|span| self.bytes.get(span.clone()))
    }
}

/// Inserts `keys` (ascending, no duplicates) into `table` through a cursor: a run of new
/// keys is buffered and spliced in as whole leaves instead of descending the tree per key.
/// Tells `added`, for each key in order, whether it was absent (a present key is kept).
fn insert_sorted<'k>(
    table: &mut KeyTable<'_>,
    keys: impl IntoIterator<Item = &'k [u8]>,
    mut added: impl FnMut(bool),
) -> Result<(), StorageError> {
    let mut keys = keys.into_iter().peekable();
    let Some(&first) = keys.peek() else {
        return Ok(());
    };
    let mut cursor = table.lower_bound_mut(Bound::Included(first))?;
    let mut next = next_key(&mut cursor)?;
    for key in keys {
        let mut steps = 0;
        while next.as_deref().is_some_and(|stored| stored < key) {
            if steps == RESEEK_AFTER {
                cursor.close()?;
                cursor = table.lower_bound_mut(Bound::Included(key))?;
                next = next_key(&mut cursor)?;
                break;
            }
            cursor.next()?;
            next = next_key(&mut cursor)?;
            steps += 1;
        }
        if next.as_deref() == Some(key) {
            added(false);
            continue;
        }
        cursor.insert_before(key, ())?;
        added(true);
    }
    cursor.close()?;
    Ok(())
}

fn next_key(
    cursor: &mut redb::CursorMut<'_, &'static [u8], ()>,
) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(cursor.peek_next()?.map(|(key, _)| key.value().to_vec()))
}

/// Whether bulk batches have left the subject table behind, in this snapshot.
pub(super) fn subjects_behind<T: ReadableTable<&'static str, u64>>(
    meta: &T,
) -> Result<bool, StorageError> {
    Ok(meta.get(META_SUBJECTS_BEHIND)?.is_some())
}

/// Rebuilds the subject table from the resource table if bulk batches left it behind
/// (a crash, or a write arriving before the import's last step); returns whether it did.
pub(super) fn settle_subjects(txn: &WriteTransaction) -> Result<bool, StorageError> {
    if !subjects_behind(&txn.open_table(META)?)? {
        return Ok(false);
    }
    let mut subjects = Keys::default();
    for entry in txn.open_table(BY_RESOURCE)?.iter()? {
        let (key, _) = entry?;
        subjects.push(&raw_from_resource_key(key.value())?, push_subject_key);
    }
    let mut sorted: Vec<&[u8]> = subjects.iter_from(0).collect();
    sorted.sort_unstable();
    txn.delete_table(BY_SUBJECT)?;
    insert_sorted(&mut txn.open_table(BY_SUBJECT)?, sorted, |_| {})?;
    txn.open_table(META)?.remove(META_SUBJECTS_BEHIND)?;
    Ok(true)
}

/// [`crate::store::Store::bulk_load`] on redb.
pub(super) fn bulk_load(
    store: &RedbStore,
    relationships: &[RawTuple<'_>],
    batch_size: usize,
    committed: &mut BatchCommitted<'_>,
) -> Result<(), WriteError> {
    // Subject keys of the relationships the batches added, and where each batch's begin.
    let mut subjects = Keys::default();
    let mut batches: Vec<(Revision, usize)> = Vec::new();
    let mut keys = Keys::default();
    let mut loaded = Ok(());
    for (number, batch) in relationships.chunks(batch_size.max(1)).enumerate() {
        keys.clear();
        for raw in batch {
            keys.push(raw, push_resource_key);
        }
        let first_subject = subjects.spans.len();
        let revision = match load_batch(store, number == 0, batch, &keys, &mut subjects) {
            Ok(revision) => revision,
            Err(error) => {
                loaded = Err(error);
                break;
            }
        };
        if subjects.spans.len() > first_subject {
            batches.push((revision, first_subject));
        }
        if let Err(error) = committed(revision, batch) {
            loaded = Err(error);
            break;
        }
    }
    // Even after a failure: the committed batches' subject keys are here, so filling the
    // subject table now is cheaper than the rebuild the next write would do.
    let finished = finish(store, &subjects, &batches);
    loaded?;
    finished?;
    Ok(())
}

/// Commits one batch (resource keys in `keys`, in order); pushes the subject keys of the
/// relationships it added onto `subjects`.
fn load_batch(
    store: &RedbStore,
    first: bool,
    batch: &[RawTuple<'_>],
    keys: &Keys,
    subjects: &mut Keys,
) -> Result<Revision, StorageError> {
    let txn = store.db.begin_write()?;
    // Left behind by an earlier import that did not finish: its keys are not in
    // `subjects`, so the table is rebuilt before this import starts its own run.
    if first {
        settle_subjects(&txn)?;
    }
    let before = subjects.spans.len();
    {
        let mut by_resource = txn.open_table(BY_RESOURCE)?;
        let mut raws = batch.iter();
        insert_sorted(&mut by_resource, keys.iter_from(0), |added| {
            if let Some(raw) = raws.next() {
                if added {
                    subjects.push(raw, push_subject_key);
                }
            }
        })?;
    }
    let added = (subjects.spans.len() - before) as u64;
    let mut meta = txn.open_table(META)?;
    let revision = next_revision(&mut meta)?;
    let count = meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
    meta.insert(META_COUNT, count + added)?;
    if added > 0 && !subjects_behind(&meta)? {
        meta.insert(META_SUBJECTS_BEHIND, revision.0)?;
    }
    meta.insert(META_FORMAT, FORMAT_IMPORTED)?;
    drop(meta);
    let entry = encode_imported(keys.iter_from(0), keys.bytes.len() / 2);
    txn.open_table(CHANGELOG)?
        .insert(revision.0, entry.as_slice())?;
    txn.commit()?;
    Ok(revision)
}

/// Inserts the subject keys of the batches the subject table lacks, as one sorted run,
/// and clears the mark. Only batches from the marked revision on are missing (a write in
/// between rebuilt the table and cleared the mark); a mark this import did not set means
/// the table is rebuilt whole.
fn finish(
    store: &RedbStore,
    subjects: &Keys,
    batches: &[(Revision, usize)],
) -> Result<(), StorageError> {
    if batches.is_empty() {
        return Ok(());
    }
    let txn = store.db.begin_write()?;
    let behind_from = txn
        .open_table(META)?
        .get(META_SUBJECTS_BEHIND)?
        .map(|v| v.value());
    let Some(behind_from) = behind_from else {
        return Ok(());
    };
    match batches
        .iter()
        .find(|(revision, _)| revision.0 >= behind_from)
    {
        Some(&(revision, first)) if revision.0 == behind_from => {
            let mut sorted: Vec<&[u8]> = subjects.iter_from(first).collect();
            sorted.sort_unstable();
            insert_sorted(&mut txn.open_table(BY_SUBJECT)?, sorted, |_| {})?;
            txn.open_table(META)?.remove(META_SUBJECTS_BEHIND)?;
        }
        _ => {
            settle_subjects(&txn)?;
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{RelationshipFilter, SubjectFilter};
    use crate::revision::Consistency;
    use crate::store::Store;
    use crate::tuple::{SubjectRef, Tuple};
    use crate::write::{Operation, Update};
    use crate::Engine;

    const SCHEMA: &str = "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation viewer: user | group#member
}";

    fn tuples(texts: &[&str]) -> Vec<Tuple> {
        texts.iter().map(|t| Tuple::parse(t).unwrap()).collect()
    }

    fn stored(engine: &Engine, filter: &RelationshipFilter) -> Vec<Tuple> {
        let mut all: Vec<Tuple> = engine
            .relationships(Consistency::FullyConsistent, filter)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        all.sort();
        all
    }

    fn of_user(id: &str) -> RelationshipFilter {
        RelationshipFilter::subject(SubjectFilter::exact(&SubjectRef::object("user", id)))
    }

    #[test]
    fn watch_sees_every_imported_relationship_at_its_batch_revision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let engine = Engine::open(&path).unwrap();
        engine.write_schema(SCHEMA).unwrap();
        let existing = tuples(&["doc:a#viewer@user:u1"]);
        let before = engine
            .write(vec![Update::touch(existing[0].clone())], &[])
            .unwrap();
        let input = tuples(&[
            "doc:c#viewer@user:u2",
            "doc:a#viewer@user:u1",
            "group:g#member@user:u2",
            "doc:b#viewer@group:g#member",
            "doc:c#viewer@user:u2",
            "doc:a#viewer@user:u3",
        ]);
        let raws: Vec<RawTuple<'_>> = input.iter().map(RawTuple::of).collect();
        let mut seen = 0;
        let imported = engine.import(&raws, 2, &mut |n| seen += n).unwrap();
        let mut expected = input.clone();
        expected.sort();
        expected.dedup();
        assert_eq!(
            (imported.relationships, imported.duplicates, seen),
            (5, 1, 5)
        );
        assert_eq!(imported.revision, Some(Revision(before.0 + 3)));
        assert_eq!(engine.relationship_count(), 5);

        check_log(&engine, before, &expected);
        assert_eq!(
            stored(&engine, &of_user("u2")),
            tuples(&["doc:c#viewer@user:u2", "group:g#member@user:u2"])
        );
        drop(engine);
        // Read back from the file: the compact entries, and the open-time cross-check.
        let engine = Engine::open(&path).unwrap();
        check_log(&engine, before, &expected);
        assert_eq!(stored(&engine, &RelationshipFilter::default()), expected);
        assert_eq!(
            stored(&engine, &of_user("u2")),
            tuples(&["doc:c#viewer@user:u2", "group:g#member@user:u2"])
        );
    }

    /// The log after `before` holds one entry per batch of two, at consecutive revisions,
    /// of touches that together are `expected` in order.
    fn check_log(engine: &Engine, before: Revision, expected: &[Tuple]) {
        let sets = engine.changes_after(before, usize::MAX).unwrap();
        assert_eq!(sets.len(), expected.len().div_ceil(2));
        let mut logged = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            assert_eq!(set.revision, Revision(before.0 + 1 + i as u64));
            assert!(set.changes.len() <= 2);
            for change in &set.changes {
                assert_eq!(change.operation, Operation::Touch);
                logged.push(change.tuple.clone());
            }
        }
        assert_eq!(logged, expected);
    }

    #[test]
    fn an_import_cut_short_before_its_last_step_opens_whole_and_agreeing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let engine = Engine::open(&path).unwrap();
        engine.write_schema(SCHEMA).unwrap();
        engine
            .write(
                vec![Update::touch(Tuple::parse("doc:z#viewer@user:u9").unwrap())],
                &[],
            )
            .unwrap();
        drop(engine);
        let batches = [
            tuples(&["doc:a#viewer@user:u1", "doc:b#viewer@user:u2"]),
            tuples(&["doc:c#viewer@user:u1", "doc:z#viewer@user:u9"]),
        ];
        {
            // Two batches committed, then the process dies before the subject run.
            let store = RedbStore::open(&path).unwrap();
            let mut subjects = Keys::default();
            for (number, batch) in batches.iter().enumerate() {
                let raws: Vec<RawTuple<'_>> = batch.iter().map(RawTuple::of).collect();
                let mut keys = Keys::default();
                for raw in &raws {
                    keys.push(raw, push_resource_key);
                }
                load_batch(&store, number == 0, &raws, &keys, &mut subjects).unwrap();
            }
            assert_eq!(subjects.spans.len(), 3, "the stored one is not added again");
            let txn = redb::ReadableDatabase::begin_read(&store.db).unwrap();
            assert!(subjects_behind(&txn.open_table(META).unwrap()).unwrap());
            // Meanwhile a read by subject still finds every committed relationship.
            let filter = of_user("u1");
            let page = store.read(&filter, None, 1).unwrap().value;
            assert_eq!(page, tuples(&["doc:a#viewer@user:u1"]));
            let page = store.read(&filter, page.first(), 10).unwrap().value;
            assert_eq!(page, tuples(&["doc:c#viewer@user:u1"]));
        }
        let engine = Engine::open(&path).expect("the subject table is rebuilt on open");
        assert_eq!(engine.relationship_count(), 4);
        assert_eq!(
            stored(&engine, &of_user("u1")),
            tuples(&["doc:a#viewer@user:u1", "doc:c#viewer@user:u1"])
        );
        assert_eq!(
            engine.changes_after(Revision(2), usize::MAX).unwrap().len(),
            2
        );
    }

    #[test]
    fn a_write_between_batches_rebuilds_the_subject_table_first() {
        let store = RedbStore::in_memory().unwrap();
        let batch = tuples(&["doc:a#viewer@user:u1", "doc:b#viewer@user:u1"]);
        let raws: Vec<RawTuple<'_>> = batch.iter().map(RawTuple::of).collect();
        let mut keys = Keys::default();
        for raw in &raws {
            keys.push(raw, push_resource_key);
        }
        let mut subjects = Keys::default();
        let revision = load_batch(&store, true, &raws, &keys, &mut subjects).unwrap();
        let delete = crate::write::DeleteRequest::matching(RelationshipFilter::exact(&batch[0]));
        store.delete_matching(&delete).unwrap();
        // The import's last step now finds the mark gone and adds nothing back.
        finish(&store, &subjects, &[(revision, 0)]).unwrap();
        let page = store.read(&of_user("u1"), None, 10).unwrap().value;
        assert_eq!(page, tuples(&["doc:b#viewer@user:u1"]));
        let (mut by_resource, mut by_subject) = (0, 0);
        store
            .scan_all(&mut |_| by_resource += 1, &mut |_| by_subject += 1)
            .unwrap();
        assert_eq!((by_resource, by_subject), (1, 1));
    }
}
