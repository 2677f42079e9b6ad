//! Building the index from the store, with the open-time cross-check of the store's two
//! copies of every relationship and its recorded count.

use std::hash::BuildHasher;

use pemba_schema::CompiledSchema;
use rustc_hash::FxBuildHasher;

use crate::error::StorageError;
use crate::index::Index;
use crate::revision::Answer;
use crate::store::{RawTuple, Store, StoredCopy};

/// A relationship's fields hashed; summed over a copy, an order-independent digest of it.
/// `str`'s `Hash` ends each field with a marker, so fields cannot run into each other, and
/// each step of the hash is a bijection of its state, so one changed byte changes the sum.
fn digest(raw: &RawTuple<'_>) -> u64 {
    FxBuildHasher.hash_one((
        raw.resource_type,
        raw.resource_id,
        raw.relation,
        raw.subject_type,
        raw.subject_id,
        raw.subject_relation,
    ))
}

/// Builds the index from the store. Any disagreement between the resource-ordered copy,
/// the subject-ordered copy and the recorded count is a damaged store: redb keeps no page
/// checksums, so this is where a flipped bit shows.
///
/// The two copies are compared by count and by a digest of each, not by looking every
/// subject-ordered relationship up in the index: those look-ups were half of the
/// interner's probes, the largest cost of open. Only when the digests differ is the
/// subject-ordered copy scanned again, looked up one by one, to name the culprit.
pub(super) fn build_index(
    store: &dyn Store,
    schema: &CompiledSchema,
) -> Result<Answer<Index>, StorageError> {
    let mut index = Index::new(schema);
    let mut misfit: Option<String> = None;
    let mut mirrored = 0u64;
    let (mut by_resource, mut by_subject) = (0u64, 0u64);
    let scanned = store.scan_all(&mut |copy, raw| match copy {
        StoredCopy::ByResource => {
            by_resource = by_resource.wrapping_add(digest(&raw));
            if !index.insert(schema, &raw) && misfit.is_none() {
                misfit = Some(raw.to_tuple().to_string());
            }
        }
        StoredCopy::BySubject => {
            mirrored += 1;
            by_subject = by_subject.wrapping_add(digest(&raw));
        }
    })?;
    if let Some(tuple) = misfit {
        return Err(StorageError::corrupt(format!(
            "stored relationship `{tuple}` does not fit the stored schema"
        )));
    }
    if scanned.mirrored && by_subject != by_resource {
        let mut unmatched: Option<String> = None;
        store.scan_all(&mut |copy, raw| {
            if copy == StoredCopy::BySubject && unmatched.is_none() && !index.contains(schema, &raw)
            {
                unmatched = Some(raw.to_tuple().to_string());
            }
        })?;
        if let Some(tuple) = unmatched {
            return Err(StorageError::corrupt(format!(
                "the store is damaged: relationship `{tuple}` is in its subject index but not in its resource index"
            )));
        }
        if mirrored == index.count {
            return Err(StorageError::corrupt(
                "the store is damaged: its resource index and its subject index hold different relationships"
                    .to_string(),
            ));
        }
    }
    if (scanned.mirrored && mirrored != index.count) || scanned.recorded_count != index.count {
        return Err(StorageError::corrupt(format!(
            "the store is damaged: its resource index holds {} relationships, its subject index {mirrored}, and its count says {}",
            index.count, scanned.recorded_count
        )));
    }
    index.shrink_to_fit();
    Ok(Answer {
        value: index,
        revision: scanned.revision,
    })
}
