//! Write transactions on PostgreSQL: each locks the `pemba_head` row first (the commit
//! order of every replica), checks, applies, logs one entry per revision and notifies
//! tailers, all in one transaction.

use std::collections::HashSet;

use postgres::{Client, Transaction as PgTransaction};

use super::sql::{self, COLUMNS};
use super::{pg_error, to_revision, to_sql_revision, CHANNEL};
use crate::error::{SchemaWriteError, StorageError, WriteError};
use crate::revision::Revision;
use crate::store::changelog::encode_changes;
use crate::store::{Admit, AdmitSchema, DeleteCommitted};
use crate::tuple::Tuple;
use crate::write::{
    Change, ChangeSet, DeleteRequest, Operation, OverLimit, Precondition, PreconditionKind,
    Transaction,
};

/// The head row, locked until the transaction ends: revision and relationship count.
fn lock_head(txn: &mut PgTransaction<'_>) -> Result<(Revision, i64), StorageError> {
    let row = txn
        .query_one(
            "SELECT revision, relationships FROM pemba_head FOR UPDATE",
            &[],
        )
        .map_err(pg_error)?;
    Ok((
        to_revision(row.try_get(0).map_err(pg_error)?)?,
        row.try_get(1).map_err(pg_error)?,
    ))
}

/// Logs `entries`, moves the head, and notifies tailers (delivered at commit).
fn finish(
    txn: &mut PgTransaction<'_>,
    entries: &[(Revision, String, bool)],
    count: i64,
) -> Result<(), StorageError> {
    let Some((newest, _, _)) = entries.last() else {
        return Ok(());
    };
    let revisions = entries
        .iter()
        .map(|(r, _, _)| to_sql_revision(*r))
        .collect::<Result<Vec<i64>, _>>()?;
    let texts: Vec<&str> = entries.iter().map(|(_, t, _)| t.as_str()).collect();
    let schema: Vec<bool> = entries.iter().map(|(_, _, s)| *s).collect();
    txn.execute(
        "INSERT INTO pemba_changelog (revision, changes, schema_changed) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[])",
        &[&revisions, &texts, &schema],
    )
    .map_err(pg_error)?;
    let newest_sql = to_sql_revision(*newest)?;
    txn.execute(
        "UPDATE pemba_head SET revision = $1, relationships = $2",
        &[&newest_sql, &count.max(0)],
    )
    .map_err(pg_error)?;
    txn.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &newest.0.to_string()],
    )
    .map_err(pg_error)?;
    Ok(())
}

fn columns<'t>(tuples: &[&'t Tuple]) -> [Vec<&'t str>; 6] {
    let mut cols: [Vec<&str>; 6] = Default::default();
    for t in tuples {
        let fields = [
            t.resource.object_type.as_str(),
            &t.resource.object_id,
            &t.relation,
            &t.subject.object.object_type,
            &t.subject.object.object_id,
            t.subject.relation.as_deref().unwrap_or(""),
        ];
        for (col, field) in cols.iter_mut().zip(fields) {
            col.push(field);
        }
    }
    cols
}

/// From this many inserted relationships on (an import batch), a write streams them with
/// `COPY` rather than sending them as array parameters.
const COPY_AT_LEAST: usize = 1000;

/// The six fields of `tuple`, in column order.
fn fields(tuple: &Tuple) -> [&str; 6] {
    [
        tuple.resource.object_type.as_str(),
        &tuple.resource.object_id,
        &tuple.relation,
        &tuple.subject.object.object_type,
        &tuple.subject.object.object_id,
        tuple.subject.relation.as_deref().unwrap_or(""),
    ]
}

/// Whether any stored relationship sorts between `first` and `last` (inclusive) in primary
/// key order: the first one from `first` on, one descent of the primary key index (the
/// `ORDER BY .. LIMIT 1` keeps the planner on the index even before the table has
/// statistics; a range condition on both ends was planned as a sequential scan).
fn any_stored_between(
    txn: &mut PgTransaction<'_>,
    first: &Tuple,
    last: &Tuple,
) -> Result<bool, StorageError> {
    let [a, b, c, d, e, f] = fields(first);
    let row = txn
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM pemba_relationships WHERE ({COLUMNS}) >= \
                 ($1, $2, $3, $4, $5, $6) ORDER BY {COLUMNS} LIMIT 1"
            ),
            &[&a, &b, &c, &d, &e, &f],
        )
        .map_err(pg_error)?;
    match row {
        None => Ok(false),
        Some(row) => Ok(sql::tuple_of(&row)? <= *last),
    }
}

/// Inserts `tuples` (those absent) with `COPY`; how many were new. `tuples` holds no
/// duplicates (validation refuses them in one transaction, and `apply_transaction` gets
/// one transaction's).
///
/// The rows are sent in primary key order, so the primary key index fills one region at a
/// time. When no stored relationship lies between the first and the last (always for an
/// import into an empty store, and for one that only adds new objects), none can
/// conflict, and they are copied straight into `pemba_relationships`: PostgreSQL's bulk
/// insert, one WAL record per heap page, no speculative insertion. Nothing else can write
/// meanwhile, since this transaction holds the `pemba_head` lock. Otherwise they go through
/// a temporary table and `INSERT .. ON CONFLICT DO NOTHING`, which skips the stored ones.
fn copy_in(txn: &mut PgTransaction<'_>, tuples: &[&Tuple]) -> Result<i64, StorageError> {
    use std::io::Write;
    let mut sorted = tuples.to_vec();
    // The derived order is the primary key's: the fields in column order, byte-wise (the
    // columns use the `C` collation), and no relation (`""`) first.
    sorted.sort_unstable();
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Ok(0);
    };
    let direct = !any_stored_between(txn, first, last)?;
    let target = if direct {
        "pemba_relationships"
    } else {
        // `ON COMMIT DELETE ROWS`: the table is empty at the start of every transaction,
        // and a rolled-back import leaves nothing behind either.
        txn.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS pemba_import (LIKE pemba_relationships) \
             ON COMMIT DELETE ROWS; TRUNCATE pemba_import",
        )
        .map_err(pg_error)?;
        "pemba_import"
    };
    let mut writer = txn
        .copy_in(&format!("COPY {target} ({COLUMNS}) FROM STDIN"))
        .map_err(pg_error)?;
    let mut line = String::with_capacity(128);
    for t in &sorted {
        line.clear();
        for (at, field) in fields(t).iter().enumerate() {
            if at > 0 {
                line.push('\t');
            }
            // Names and ids never hold tabs, newlines or backslashes (the id rules), but
            // COPY's text format would misread one, so escape rather than trust.
            for ch in field.chars() {
                match ch {
                    '\\' => line.push_str("\\\\"),
                    '\t' => line.push_str("\\t"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    other => line.push(other),
                }
            }
        }
        line.push('\n');
        writer
            .write_all(line.as_bytes())
            .map_err(|e| StorageError::Unavailable {
                reason: format!("sending relationships with COPY: {e}"),
            })?;
    }
    let copied = writer.finish().map_err(pg_error)?;
    if direct {
        return Ok(i64::try_from(copied).unwrap_or(i64::MAX));
    }
    let added = txn
        .execute(
            &format!(
                "INSERT INTO pemba_relationships ({COLUMNS}) SELECT {COLUMNS} FROM pemba_import \
                 ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .map_err(pg_error)?;
    Ok(i64::try_from(added).unwrap_or(i64::MAX))
}

/// Deletes exactly `tuples` (those present), returning the ones deleted.
fn delete_exact(
    txn: &mut PgTransaction<'_>,
    tuples: &[&Tuple],
) -> Result<Vec<Tuple>, StorageError> {
    if tuples.is_empty() {
        return Ok(Vec::new());
    }
    let [a, b, c, d, e, f] = columns(tuples);
    let rows = txn
        .query(
            "DELETE FROM pemba_relationships r USING unnest($1::text[], $2::text[], $3::text[], \
             $4::text[], $5::text[], $6::text[]) AS d(a, b, c, e, f, g) \
             WHERE r.resource_type = d.a AND r.resource_id = d.b AND r.relation = d.c \
             AND r.subject_type = d.e AND r.subject_id = d.f AND r.subject_relation = d.g \
             RETURNING r.resource_type, r.resource_id, r.relation, r.subject_type, \
             r.subject_id, r.subject_relation",
            &[&a, &b, &c, &d, &e, &f],
        )
        .map_err(pg_error)?;
    rows.iter().map(sql::tuple_of).collect()
}

fn check_preconditions(
    txn: &mut PgTransaction<'_>,
    preconditions: &[Precondition],
) -> Result<(), WriteError> {
    for (index, precondition) in preconditions.iter().enumerate() {
        let matched = sql::any(txn, &precondition.filter)?;
        if matched != (precondition.kind == PreconditionKind::MustMatch) {
            return Err(WriteError::PreconditionFailed {
                index,
                kind: precondition.kind,
            });
        }
    }
    Ok(())
}

/// Everything that can refuse a transaction, checked without writing.
fn check_transaction(
    txn: &mut PgTransaction<'_>,
    transaction: &Transaction,
) -> Result<(), WriteError> {
    check_preconditions(txn, &transaction.preconditions)?;
    for condition in &transaction.metadata_conditions {
        let actual: Option<String> = txn
            .query_opt(
                "SELECT value FROM pemba_app_metadata WHERE key = $1",
                &[&condition.key],
            )
            .map_err(pg_error)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(pg_error)?;
        if actual != condition.expected {
            return Err(WriteError::MetadataChanged {
                key: condition.key.clone(),
            });
        }
    }
    let creates: Vec<&Tuple> = transaction
        .updates
        .iter()
        .filter(|u| u.operation == Operation::Create)
        .map(|u| &u.tuple)
        .collect();
    if creates.is_empty() {
        return Ok(());
    }
    let [a, b, c, d, e, f] = columns(&creates);
    let rows = txn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM pemba_relationships WHERE ({COLUMNS}) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::text[]))"
            ),
            &[&a, &b, &c, &d, &e, &f],
        )
        .map_err(pg_error)?;
    let existing: HashSet<Tuple> = rows.iter().map(sql::tuple_of).collect::<Result<_, _>>()?;
    // A relationship this transaction deletes by filter first may be created again.
    if let Some(tuple) = creates
        .into_iter()
        .find(|t| existing.contains(*t) && !transaction.delete_filters.iter().any(|f| f.matches(t)))
    {
        return Err(WriteError::AlreadyExists(Box::new(tuple.clone())));
    }
    Ok(())
}

/// Applies a checked transaction; its changes in the order redb reports them, and the
/// net change of the relationship count.
fn apply_transaction(
    txn: &mut PgTransaction<'_>,
    transaction: &Transaction,
) -> Result<(Vec<Change>, i64), StorageError> {
    let mut changes = Vec::with_capacity(transaction.updates.len());
    let mut delta = 0i64;
    for filter in &transaction.delete_filters {
        let clause = sql::clause(filter);
        let rows = txn
            .query(
                &format!(
                    "DELETE FROM pemba_relationships WHERE {} RETURNING {COLUMNS}",
                    clause.text
                ),
                &clause.refs(),
            )
            .map_err(pg_error)?;
        let mut doomed: Vec<Tuple> = rows.iter().map(sql::tuple_of).collect::<Result<_, _>>()?;
        doomed.sort_by_key(crate::store::keys::resource_key);
        delta -= i64::try_from(doomed.len()).unwrap_or(i64::MAX);
        changes.extend(doomed.into_iter().map(|tuple| Change {
            operation: Operation::Delete,
            tuple,
        }));
    }
    let upserts: Vec<&Tuple> = transaction
        .updates
        .iter()
        .filter(|u| u.operation != Operation::Delete)
        .map(|u| &u.tuple)
        .collect();
    if upserts.len() >= COPY_AT_LEAST {
        delta += copy_in(txn, &upserts)?;
    } else if !upserts.is_empty() {
        let [a, b, c, d, e, f] = columns(&upserts);
        let added = txn
            .execute(
                &format!(
                    "INSERT INTO pemba_relationships ({COLUMNS}) SELECT * FROM unnest($1::text[], \
                     $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
                     ON CONFLICT DO NOTHING"
                ),
                &[&a, &b, &c, &d, &e, &f],
            )
            .map_err(pg_error)?;
        delta += i64::try_from(added).unwrap_or(i64::MAX);
    }
    let deletes: Vec<&Tuple> = transaction
        .updates
        .iter()
        .filter(|u| u.operation == Operation::Delete)
        .map(|u| &u.tuple)
        .collect();
    let deleted: HashSet<Tuple> = delete_exact(txn, &deletes)?.into_iter().collect();
    delta -= i64::try_from(deleted.len()).unwrap_or(i64::MAX);
    for update in &transaction.updates {
        match update.operation {
            // A touch of a present relationship is still reported, as on redb.
            Operation::Create | Operation::Touch => changes.push(Change {
                operation: Operation::Touch,
                tuple: update.tuple.clone(),
            }),
            Operation::Delete if deleted.contains(&update.tuple) => changes.push(Change {
                operation: Operation::Delete,
                tuple: update.tuple.clone(),
            }),
            Operation::Delete => {}
        }
    }
    for write in &transaction.metadata {
        match &write.value {
            Some(value) => txn.execute(
                "INSERT INTO pemba_app_metadata (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&write.key, value],
            ),
            None => txn.execute(
                "DELETE FROM pemba_app_metadata WHERE key = $1",
                &[&write.key],
            ),
        }
        .map_err(pg_error)?;
    }
    Ok((changes, delta))
}

/// [`crate::Store::commit`] on PostgreSQL.
pub(super) fn commit(
    client: &mut Client,
    transactions: &[&Transaction],
    admit: &mut Admit<'_>,
) -> Result<Vec<Result<ChangeSet, WriteError>>, StorageError> {
    let mut txn = client.transaction().map_err(pg_error)?;
    let (newest, mut count) = lock_head(&mut txn)?;
    let mut admitted = admit(newest)?.into_iter();
    let mut revision = newest;
    let mut outcomes = Vec::with_capacity(transactions.len());
    let mut entries = Vec::new();
    for transaction in transactions {
        if let Some(Err(refused)) = admitted.next() {
            outcomes.push(Err(refused));
            continue;
        }
        match check_transaction(&mut txn, transaction) {
            Ok(()) => {}
            Err(WriteError::Storage(error)) => return Err(error),
            Err(refused) => {
                outcomes.push(Err(refused));
                continue;
            }
        }
        let (changes, delta) = apply_transaction(&mut txn, transaction)?;
        count += delta;
        revision = Revision(revision.0 + 1);
        entries.push((revision, encode_text(&changes)?, false));
        outcomes.push(Ok(ChangeSet { revision, changes }));
    }
    finish(&mut txn, &entries, count)?;
    txn.commit().map_err(pg_error)?;
    Ok(outcomes)
}

fn encode_text(changes: &[Change]) -> Result<String, StorageError> {
    String::from_utf8(encode_changes(changes))
        .map_err(|_| StorageError::corrupt("a change log entry is not utf-8"))
}

/// [`crate::Store::delete_matching`] on PostgreSQL.
pub(super) fn delete_matching(
    client: &mut Client,
    request: &DeleteRequest,
) -> Result<DeleteCommitted, WriteError> {
    let mut txn = client.transaction().map_err(pg_error)?;
    let (newest, count) = lock_head(&mut txn)?;
    check_preconditions(&mut txn, &request.preconditions)?;
    let max = request.limit.unwrap_or(usize::MAX);
    let fetch = request.limit.map(|n| n.saturating_add(1));
    let mut doomed = sql::select(&mut txn, &request.filter, None, fetch)?;
    let more_left = doomed.len() > max;
    if more_left && request.over_limit == OverLimit::Refuse {
        return Err(WriteError::OverLimit { limit: max });
    }
    doomed.truncate(max);
    let refs: Vec<&Tuple> = doomed.iter().collect();
    let deleted = delete_exact(&mut txn, &refs)?.len();
    let revision = Revision(newest.0 + 1);
    let changes: Vec<Change> = doomed
        .into_iter()
        .map(|tuple| Change {
            operation: Operation::Delete,
            tuple,
        })
        .collect();
    let entry = (revision, encode_text(&changes)?, false);
    finish(
        &mut txn,
        &[entry],
        count - i64::try_from(deleted).unwrap_or(i64::MAX),
    )?;
    txn.commit().map_err(pg_error)?;
    Ok(DeleteCommitted {
        changes: ChangeSet { revision, changes },
        complete: !more_left,
    })
}

/// [`crate::Store::write_schema`] on PostgreSQL.
pub(super) fn write_schema(
    client: &mut Client,
    text: &str,
    admit: &mut AdmitSchema<'_>,
) -> Result<Revision, SchemaWriteError> {
    let mut txn = client.transaction().map_err(pg_error)?;
    let (newest, count) = lock_head(&mut txn)?;
    admit(newest)?;
    let revision = Revision(newest.0 + 1);
    let sql_revision = to_sql_revision(revision)?;
    txn.execute(
        "INSERT INTO pemba_schemas (revision, text) VALUES ($1, $2)",
        &[&sql_revision, &text],
    )
    .map_err(pg_error)?;
    finish(&mut txn, &[(revision, String::new(), true)], count)?;
    txn.commit().map_err(pg_error)?;
    Ok(revision)
}
