//! Byte keys of the two relationship tables and the scan plans over them.
//!
//! A key is the six fields of a relationship joined by a separator byte that sorts below
//! every byte a name or id may hold, so byte order of keys is field-by-field order: one
//! table keyed resource first, one subject first, and a filter scans a key prefix.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::error::StorageError;
use crate::filter::RelationshipFilter;
use crate::tuple::{ObjectRef, SubjectRef, Tuple};

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

/// Field separator in keys: below every byte a name or id may contain, so byte order of
/// keys is the lexicographic order of their fields.
const SEP: u8 = 0;

pub(crate) fn resource_key(tuple: &Tuple) -> Vec<u8> {
    join(&[
        &tuple.resource.object_type,
        &tuple.resource.object_id,
        &tuple.relation,
        &tuple.subject.object.object_type,
        &tuple.subject.object.object_id,
        tuple.subject.relation.as_deref().unwrap_or(""),
    ])
}

pub(crate) fn subject_key(tuple: &Tuple) -> Vec<u8> {
    join(&[
        &tuple.subject.object.object_type,
        &tuple.subject.object.object_id,
        tuple.subject.relation.as_deref().unwrap_or(""),
        &tuple.resource.object_type,
        &tuple.resource.object_id,
        &tuple.relation,
    ])
}

/// Appends the resource key of `raw` to `out` (keys of a bulk load share one buffer).
pub(crate) fn push_resource_key(raw: &RawTuple<'_>, out: &mut Vec<u8>) {
    push_joined(
        &[
            raw.resource_type,
            raw.resource_id,
            raw.relation,
            raw.subject_type,
            raw.subject_id,
            raw.subject_relation,
        ],
        out,
    );
}

/// Appends the subject key of `raw` to `out`.
pub(crate) fn push_subject_key(raw: &RawTuple<'_>, out: &mut Vec<u8>) {
    push_joined(
        &[
            raw.subject_type,
            raw.subject_id,
            raw.subject_relation,
            raw.resource_type,
            raw.resource_id,
            raw.relation,
        ],
        out,
    );
}

fn push_joined(fields: &[&str], out: &mut Vec<u8>) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(field.as_bytes());
    }
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
    let corrupt = || StorageError::corrupt("malformed relationship key");
    // One validation of the whole key rather than one per field (a fifth of an open's
    // time went to the per-call cost): the separator is ASCII, so the pieces of a valid
    // string cut at it are valid too.
    let text = std::str::from_utf8(key).map_err(|_| corrupt())?;
    let [a, b, c, d, e] = separators(key).ok_or_else(corrupt)?;
    let field = |from: usize, to: usize| text.get(from..to).ok_or_else(corrupt);
    Ok([
        field(0, a)?,
        field(a + 1, b)?,
        field(b + 1, c)?,
        field(c + 1, d)?,
        field(d + 1, e)?,
        field(e + 1, key.len())?,
    ])
}

/// Where the five separators of a key are, in order, or `None` unless it has exactly
/// five. Every key of the store passes here on open, twice; `memchr` finds them a word or
/// a vector at a time.
fn separators(key: &[u8]) -> Option<[usize; 5]> {
    let mut found = memchr::memchr_iter(SEP, key);
    let seps = [
        found.next()?,
        found.next()?,
        found.next()?,
        found.next()?,
        found.next()?,
    ];
    found.next().is_none().then_some(seps)
}

/// An order-independent digest of one copy of the stored relationships: how many, and
/// the wrapping sum of a hash of each. redb's two copies arrive in different orders, so
/// comparing digests compares them as sets without holding either in memory; one changed
/// byte changes its relationship's hash, so the sums differ but for a chance of 2^-64.
///
/// A relationship is hashed as the bytes of its two halves, `type SEP id SEP relation` of
/// the resource and then of the subject: each key holds both halves whole (in one order or
/// the other), so the subject-ordered copy is digested straight from its keys, never
/// checked as UTF-8 or cut into names; a damaged key still differs in its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    /// Relationships added.
    pub count: u64,
    sum: u64,
}

impl Digest {
    fn add_halves(&mut self, resource: &[u8], subject: &[u8]) {
        let mut hasher = FxHasher::default();
        hasher.write(resource);
        hasher.write(subject);
        self.count += 1;
        self.sum = self.sum.wrapping_add(hasher.finish());
    }

    /// Adds a relationship given by its names.
    pub(crate) fn add(&mut self, raw: &RawTuple<'_>) {
        let resource = join(&[raw.resource_type, raw.resource_id, raw.relation]);
        let subject = join(&[raw.subject_type, raw.subject_id, raw.subject_relation]);
        self.add_halves(&resource, &subject);
    }

    /// Adds a relationship given by its resource key and the names decoded from it.
    pub(crate) fn add_resource_key(&mut self, key: &[u8], raw: &RawTuple<'_>) {
        let cut = raw.resource_type.len() + raw.resource_id.len() + raw.relation.len() + 2;
        match (key.get(..cut), key.get(cut + 1..)) {
            (Some(resource), Some(subject)) => self.add_halves(resource, subject),
            _ => self.add(raw),
        }
    }

    /// Adds a relationship given by its subject key, which need not be well formed.
    pub(crate) fn add_subject_key(&mut self, key: &[u8]) {
        let cut = memchr::memchr_iter(SEP, key).nth(2).unwrap_or(key.len());
        let subject = key.get(..cut).unwrap_or(key);
        let resource = key.get(cut + 1..).unwrap_or(&[]);
        self.add_halves(resource, subject);
    }
}

pub(crate) fn raw_from_resource_key(key: &[u8]) -> Result<RawTuple<'_>, StorageError> {
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

pub(crate) fn raw_from_subject_key(key: &[u8]) -> Result<RawTuple<'_>, StorageError> {
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
pub(crate) struct ScanPlan {
    /// Scan the subject-ordered table rather than the resource-ordered one.
    pub(crate) by_subject: bool,
    /// Every key the filter can select starts with these bytes.
    pub(crate) prefix: Vec<u8>,
}

pub(crate) fn scan_plan(filter: &RelationshipFilter) -> ScanPlan {
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

    #[test]
    fn both_keys_digest_as_the_names_do() {
        let tuples = [
            ["group", "g", "member", "user", "a", ""],
            [
                "doc",
                "a-rather-long-document-id",
                "viewer",
                "group",
                "g",
                "member",
            ],
            ["doc", "d", "viewer", "user", "*", ""],
            ["d", "", "v", "u", "x", ""],
        ];
        for fields in tuples {
            let tuple = raw(fields);
            let mut by_names = Digest::default();
            by_names.add(&tuple);
            let (mut resource_key, mut subject_key) = (Vec::new(), Vec::new());
            push_resource_key(&tuple, &mut resource_key);
            push_subject_key(&tuple, &mut subject_key);
            let decoded = raw_from_resource_key(&resource_key).unwrap();
            let mut by_resource_key = Digest::default();
            by_resource_key.add_resource_key(&resource_key, &decoded);
            let mut by_subject_key = Digest::default();
            by_subject_key.add_subject_key(&subject_key);
            assert_eq!(by_resource_key, by_names, "{fields:?}");
            assert_eq!(by_subject_key, by_names, "{fields:?}");
            // A damaged subject key, even one that is not UTF-8, digests differently.
            for at in [0, subject_key.len() / 2, subject_key.len() - 1] {
                let mut damaged = subject_key.clone();
                damaged[at] ^= 0x80;
                let mut digest = Digest::default();
                digest.add_subject_key(&damaged);
                assert_ne!(digest, by_names, "{fields:?} with byte {at} flipped");
            }
        }
    }

    #[test]
    fn keys_split_into_six_fields_at_any_length() {
        // Fields of every length from 0 to 20 put the separators at every offset within
        // an eight-byte word and in the tail.
        for len in 0..20 {
            let id = "x".repeat(len);
            let fields = ["t", id.as_str(), "r", "u", "é", ""];
            let key = join(&fields);
            let decoded = raw_from_resource_key(&key).unwrap();
            assert_eq!(
                [
                    decoded.resource_type,
                    decoded.resource_id,
                    decoded.relation,
                    decoded.subject_type,
                    decoded.subject_id,
                    decoded.subject_relation
                ],
                fields
            );
        }
        for bad in [
            &b"a\0b\0c\0d\0e"[..],
            b"a\0b\0c\0d\0e\0f\0g",
            b"",
            b"\0\0\0\0\0\0\0\0\0",
            b"a\0b\0c\0d\0e\0\xff",
        ] {
            assert!(raw_from_resource_key(bad).is_err(), "{bad:?}");
        }
        assert!(raw_from_resource_key(b"\0\0\0\0\0").is_ok());
    }
}
