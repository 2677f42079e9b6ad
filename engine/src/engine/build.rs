//! Building the index from the store, with the open-time cross-check of the store's two
//! copies of every relationship and its recorded count.

use pemba_schema::CompiledSchema;

use crate::error::StorageError;
use crate::index::Index;
use crate::revision::Answer;
use crate::store::Store;

/// Builds the index from the store. Any disagreement between the resource-ordered copy,
/// the subject-ordered copy and the recorded count is a damaged store: redb keeps no page
/// checksums, so this is where a flipped bit shows.
///
/// The store digests both copies while the index is built from the first (see
/// `Digest`), and only when the digests differ is the second read again, against the
/// finished index, to name a relationship it holds that the other does not.
pub(super) fn build_index(
    store: &dyn Store,
    schema: &CompiledSchema,
) -> Result<Answer<Index>, StorageError> {
    let mut index = Index::new(schema);
    let mut misfit: Option<String> = None;
    let (scanned, digests) = store.scan_digested(&mut |raw| {
        if !index.insert(schema, &raw) && misfit.is_none() {
            misfit = Some(raw.to_tuple().to_string());
        }
    })?;
    if let Some(tuple) = misfit {
        return Err(StorageError::corrupt(format!(
            "stored relationship `{tuple}` does not fit the stored schema"
        )));
    }
    let copies_differ = digests.is_some_and(|d| d.primary != d.mirror);
    if copies_differ {
        let mut unmatched: Option<String> = None;
        store.scan_all(&mut |_| {}, &mut |raw| {
            if unmatched.is_none() && !index.contains(schema, &raw) {
                unmatched = Some(raw.to_tuple().to_string());
            }
        })?;
        if let Some(tuple) = unmatched {
            return Err(StorageError::corrupt(format!(
                "the store is damaged: relationship `{tuple}` is in its subject index but not in its resource index"
            )));
        }
    }
    let mirror_count = digests.map_or(0, |d| d.mirror.count);
    if (digests.is_some() && mirror_count != index.count) || scanned.recorded_count != index.count {
        return Err(StorageError::corrupt(format!(
            "the store is damaged: its resource index holds {} relationships, its subject index {}, and its count says {}",
            index.count, mirror_count, scanned.recorded_count
        )));
    }
    if copies_differ {
        return Err(StorageError::corrupt(
            "the store is damaged: its resource index and its subject index hold different relationships",
        ));
    }
    index.shrink_to_fit();
    Ok(Answer {
        value: index,
        revision: scanned.revision,
    })
}
