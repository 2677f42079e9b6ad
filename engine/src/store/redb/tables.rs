//! [`Tables`]: the tables one write transaction touches, and how a transaction is checked
//! and applied to them.

use redb::ReadableTable;

use super::{
    next_revision, scan, APP_METADATA, BY_RESOURCE, BY_SUBJECT, CHANGELOG, META, META_COUNT,
};
use crate::error::{StorageError, WriteError};
use crate::filter::RelationshipFilter;
use crate::store::changelog::encode_changes;
use crate::store::keys::{resource_key, scan_plan, subject_key};
use crate::tuple::Tuple;
use crate::write::{Change, ChangeSet, Operation, Precondition, PreconditionKind, Transaction};

/// The tables a relationship write touches, open in one write transaction.
pub(super) struct Tables<'t> {
    by_resource: redb::Table<'t, &'static [u8], ()>,
    by_subject: redb::Table<'t, &'static [u8], ()>,
    pub(super) meta: redb::Table<'t, &'static str, u64>,
    app: redb::Table<'t, &'static str, &'static str>,
    log: redb::Table<'t, u64, &'static [u8]>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StorageError> {
        Ok(Tables {
            by_resource: txn.open_table(BY_RESOURCE)?,
            by_subject: txn.open_table(BY_SUBJECT)?,
            meta: txn.open_table(META)?,
            app: txn.open_table(APP_METADATA)?,
            log: txn.open_table(CHANGELOG)?,
        })
    }

    /// Up to `max` stored relationships matching `filter`, in scan order, and whether
    /// more match.
    pub(super) fn matching(
        &self,
        filter: &RelationshipFilter,
        max: usize,
    ) -> Result<(Vec<Tuple>, bool), StorageError> {
        let plan = scan_plan(filter);
        let table = if plan.by_subject {
            &self.by_subject
        } else {
            &self.by_resource
        };
        let mut found = Vec::new();
        let mut more = false;
        scan(table, &plan, None, &mut |raw| {
            let tuple = raw.to_tuple();
            if filter.matches(&tuple) {
                if found.len() == max {
                    more = true;
                    return false;
                }
                found.push(tuple);
            }
            true
        })?;
        Ok((found, more))
    }

    /// Removes relationships known to be stored from both tables.
    pub(super) fn remove_stored(&mut self, tuples: &[Tuple]) -> Result<(), StorageError> {
        for tuple in tuples {
            self.by_resource.remove(resource_key(tuple).as_slice())?;
            self.by_subject.remove(subject_key(tuple).as_slice())?;
        }
        Ok(())
    }

    pub(super) fn check_preconditions(
        &self,
        preconditions: &[Precondition],
    ) -> Result<(), WriteError> {
        for (index, precondition) in preconditions.iter().enumerate() {
            let matched = !self.matching(&precondition.filter, 1)?.0.is_empty();
            let want = precondition.kind == PreconditionKind::MustMatch;
            if matched != want {
                return Err(WriteError::PreconditionFailed {
                    index,
                    kind: precondition.kind,
                });
            }
        }
        Ok(())
    }

    /// Everything that can refuse a transaction, checked without writing.
    pub(super) fn check_transaction(&self, transaction: &Transaction) -> Result<(), WriteError> {
        self.check_preconditions(&transaction.preconditions)?;
        for condition in &transaction.metadata_conditions {
            let actual = self
                .app
                .get(condition.key.as_str())
                .map_err(StorageError::from)?
                .map(|v| v.value().to_string());
            if actual != condition.expected {
                return Err(WriteError::MetadataChanged {
                    key: condition.key.clone(),
                });
            }
        }
        for update in &transaction.updates {
            if update.operation != Operation::Create {
                continue;
            }
            let exists = self
                .by_resource
                .get(resource_key(&update.tuple).as_slice())
                .map_err(StorageError::from)?
                .is_some();
            // A relationship this transaction deletes by filter first may be created again.
            if exists
                && !transaction
                    .delete_filters
                    .iter()
                    .any(|f| f.matches(&update.tuple))
            {
                return Err(WriteError::AlreadyExists(Box::new(update.tuple.clone())));
            }
        }
        Ok(())
    }

    /// Applies a checked transaction: deletes by filter, updates (in key order, which keeps
    /// B-tree inserts local), metadata; returns the changes in request order.
    pub(super) fn apply_transaction(
        &mut self,
        transaction: &Transaction,
    ) -> Result<Vec<Change>, StorageError> {
        let mut changes = Vec::with_capacity(transaction.updates.len());
        let (mut added, mut removed) = (0u64, 0u64);
        for filter in &transaction.delete_filters {
            let (doomed, _) = self.matching(filter, usize::MAX)?;
            self.remove_stored(&doomed)?;
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
                Operation::Create | Operation::Touch => {
                    self.by_resource.insert(key.as_slice(), ())?.is_none()
                }
                Operation::Delete => self.by_resource.remove(key.as_slice())?.is_some(),
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
                    self.by_subject.remove(key.as_slice())?;
                    removed += 1;
                }
                Some(_) => {
                    self.by_subject.insert(key.as_slice(), ())?;
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
                    self.app.insert(write.key.as_str(), value.as_str())?;
                }
                None => {
                    self.app.remove(write.key.as_str())?;
                }
            }
        }
        self.adjust_count(added, removed)?;
        Ok(changes)
    }

    /// Takes the next revision and logs `changes` under it.
    pub(super) fn log(&mut self, changes: Vec<Change>) -> Result<ChangeSet, StorageError> {
        let revision = next_revision(&mut self.meta)?;
        self.log
            .insert(revision.0, encode_changes(&changes).as_slice())?;
        Ok(ChangeSet { revision, changes })
    }

    pub(super) fn adjust_count(&mut self, added: u64, removed: u64) -> Result<(), StorageError> {
        let count = self.meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
        self.meta
            .insert(META_COUNT, (count + added).saturating_sub(removed))?;
        Ok(())
    }
}
