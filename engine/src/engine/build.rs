//! Building the index from the store, with the open-time cross-check of the store's two
//! copies of every relationship and its recorded count.

use std::hash::BuildHasher;

use pemba_schema::CompiledSchema;
use rustc_hash::FxBuildHasher;

use crate::error::StorageError;
use crate::index::Index;
use crate::revision::Answer;
use crate::store::{RawTuple, Store};

/// An order-independent digest of a set of relationships: how many, and the wrapping sum
/// of a hash of each. The two stored copies arrive in different orders, so comparing
/// digests compares them as sets without holding either in memory; one changed byte
/// changes its relationship's hash, so the sums differ but for a chance of 2^-64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: u64,
}

impl Digest {
    fn add(&mut self, raw: &RawTuple<'_>) {
        self.count += 1;
        let fields = [
            raw.resource_type,
            raw.resource_id,
            raw.relation,
            raw.subject_type,
            raw.subject_id,
            raw.subject_relation,
        ];
        self.sum = self.sum.wrapping_add(FxBuildHasher.hash_one(fields));
    }
}

/// Builds the index from the store. Any disagreement between the resource-ordered copy,
/// the subject-ordered copy and the recorded count is a damaged store: redb keeps no page
/// checksums, so this is where a flipped bit shows.
///
/// The subject-ordered copy is digested on a second thread while the index is built from
/// the other, and only when the digests differ is it read again, against the finished
/// index, to name a relationship it holds that the other does not.
pub(super) fn build_index(
    store: &dyn Store,
    schema: &CompiledSchema,
) -> Result<Answer<Index>, StorageError> {
    let mut index = Index::new(schema);
    let mut misfit: Option<String> = None;
    let (mut primary, mut mirror) = (Digest::default(), Digest::default());
    let scanned = store.scan_all(
        &mut |raw| {
            primary.add(&raw);
            if !index.insert(schema, &raw) && misfit.is_none() {
                misfit = Some(raw.to_tuple().to_string());
            }
        },
        &mut |raw| mirror.add(&raw),
    )?;
    if let Some(tuple) = misfit {
        return Err(StorageError::corrupt(format!(
            "stored relationship `{tuple}` does not fit the stored schema"
        )));
    }
    let copies_differ = scanned.mirrored && primary != mirror;
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
    if (scanned.mirrored && mirror.count != index.count) || scanned.recorded_count != index.count {
        return Err(StorageError::corrupt(format!(
            "the store is damaged: its resource index holds {} relationships, its subject index {}, and its count says {}",
            index.count, mirror.count, scanned.recorded_count
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(fields: [&'a str; 6]) -> RawTuple<'a> {
        let [resource_type, resource_id, relation, subject_type, subject_id, subject_relation] =
            fields;
        RawTuple {
            resource_type,
            resource_id,
            relation,
            subject_type,
            subject_id,
            subject_relation,
        }
    }

    #[test]
    fn digests_ignore_order_and_see_any_changed_field() {
        let tuples = [
            ["group", "g", "member", "user", "a", ""],
            ["group", "g", "member", "user", "b", ""],
            ["doc", "d", "viewer", "group", "g", "member"],
        ];
        let digest = |order: &[usize]| {
            let mut digest = Digest::default();
            for i in order {
                digest.add(&raw(tuples[*i]));
            }
            digest
        };
        assert_eq!(digest(&[0, 1, 2]), digest(&[2, 0, 1]));
        for field in 0..6 {
            let mut changed = Digest::default();
            for (i, tuple) in tuples.iter().enumerate() {
                let mut tuple = *tuple;
                if i == 2 {
                    tuple[field] = "x";
                }
                changed.add(&raw(tuple));
            }
            assert_ne!(changed, digest(&[0, 1, 2]), "field {field} changed");
        }
        // A byte moved between neighbouring fields is a different relationship.
        let mut moved = digest(&[0, 1]);
        moved.add(&raw(["doc", "d", "viewer", "group", "gm", "ember"]));
        assert_ne!(moved, digest(&[0, 1, 2]));
    }
}
