//! Building the index from the store, with the open-time cross-check of the store's two
//! copies of every relationship and its recorded count.

use pemba_schema::CompiledSchema;

use crate::error::StorageError;
use crate::index::Index;
use crate::revision::Answer;
use crate::store::{Store, StoredCopy};

/// Builds the index from the store. Any disagreement between the resource-ordered copy,
/// the subject-ordered copy and the recorded count is a damaged store: redb keeps no page
/// checksums, so this is where a flipped bit shows.
pub(super) fn build_index(
    store: &dyn Store,
    schema: &CompiledSchema,
) -> Result<Answer<Index>, StorageError> {
    let mut index = Index::new(schema);
    let mut misfit: Option<String> = None;
    let mut mirrored = 0u64;
    let mut unmatched: Option<String> = None;
    let scanned = store.scan_all(&mut |copy, raw| match copy {
        StoredCopy::ByResource => {
            if !index.insert(schema, &raw) && misfit.is_none() {
                misfit = Some(raw.to_tuple().to_string());
            }
        }
        StoredCopy::BySubject => {
            mirrored += 1;
            if unmatched.is_none() && !index.contains(schema, &raw) {
                unmatched = Some(raw.to_tuple().to_string());
            }
        }
    })?;
    if let Some(tuple) = misfit {
        return Err(StorageError::corrupt(format!(
            "stored relationship `{tuple}` does not fit the stored schema"
        )));
    }
    if let Some(tuple) = unmatched {
        return Err(StorageError::corrupt(format!(
            "the store is damaged: relationship `{tuple}` is in its subject index but not in its resource index"
        )));
    }
    if (scanned.mirrored && mirrored != index.count) || scanned.recorded_count != index.count {
        return Err(StorageError::corrupt(format!(
            "the store is damaged: its resource index holds {} relationships, its subject index {mirrored}, and its count says {}",
            index.count, scanned.recorded_count
        )));
    }
    Ok(Answer {
        value: index,
        revision: scanned.revision,
    })
}
