//! Byte keys of the two relationship tables and the scan plans over them.
//!
//! A key is the six fields of a relationship joined by a separator byte that sorts below
//! every byte a name or id may hold, so byte order of keys is field-by-field order: one
//! table keyed resource first, one subject first, and a filter scans a key prefix.

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
    let mut rest = std::str::from_utf8(key).map_err(|_| corrupt())?;
    let mut fields = [""; 6];
    let (last, leading) = fields.split_last_mut().ok_or_else(corrupt)?;
    for field in leading {
        let at = rest.bytes().position(|b| b == SEP).ok_or_else(corrupt)?;
        let (head, tail) = rest.split_at_checked(at).ok_or_else(corrupt)?;
        *field = head;
        rest = tail.get(1..).ok_or_else(corrupt)?;
    }
    if rest.bytes().any(|b| b == SEP) {
        return Err(corrupt());
    }
    *last = rest;
    Ok(fields)
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
