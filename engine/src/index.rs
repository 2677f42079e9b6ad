//! The in-memory index: interned object ids and roaring bitmaps per relation and subject kind.
//!
//! Derived from the store and rebuilt from it on open; never the source of truth.

use pemba_schema::{AllowedSubject, CompiledSchema, MemberId, MemberKind, TypeId};
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::posting::{Posting, Postings, Rows};
use crate::store::RawTuple;

/// The interned index of an object id within its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectIdx(pub u32);

/// The subject index used for the wildcard kind, whose "subject" is `type:*` itself.
const WILDCARD_SLOT: u32 = 0;

static EMPTY_POSTING: Posting = Posting::Empty;

/// Object ids of one type, interned to dense `u32`s.
///
/// Names live back to back in one string, so an object costs its id's bytes plus eight
/// bytes of bookkeeping, not two heap allocations.
#[derive(Default, Debug, Clone)]
pub(crate) struct Interner {
    /// Indexes into `ends`, hashed by the name they stand for.
    table: HashTable<u32>,
    bytes: String,
    /// `ends[i]` is where name `i` ends in `bytes`; it starts where name `i - 1` ends.
    ends: Vec<u32>,
}

fn hash_name(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

fn name_in<'a>(bytes: &'a str, ends: &[u32], idx: u32) -> &'a str {
    let idx = idx as usize;
    let start = if idx == 0 {
        0
    } else {
        ends.get(idx - 1).copied().unwrap_or(0) as usize
    };
    let end = ends.get(idx).copied().unwrap_or(0) as usize;
    bytes.get(start..end).unwrap_or("")
}

impl Interner {
    pub(crate) fn get(&self, id: &str) -> Option<ObjectIdx> {
        self.table
            .find(hash_name(id), |idx| {
                name_in(&self.bytes, &self.ends, *idx) == id
            })
            .map(|idx| ObjectIdx(*idx))
    }

    fn intern(&mut self, id: &str) -> ObjectIdx {
        if let Some(idx) = self.get(id) {
            return idx;
        }
        let idx = self.ends.len() as u32;
        self.bytes.push_str(id);
        self.ends.push(self.bytes.len() as u32);
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .insert_unique(hash_name(id), idx, |i| hash_name(name_in(bytes, ends, *i)));
        ObjectIdx(idx)
    }

    pub(crate) fn name(&self, idx: u32) -> &str {
        name_in(&self.bytes, &self.ends, idx)
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4 + self.table.capacity() * 5
    }

    fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.table
            .shrink_to_fit(|i| hash_name(name_in(bytes, ends, *i)));
    }
}

/// Relationships of one relation with one allowed subject kind, both directions: the
/// resource → subjects direction is a column of its type's [`Index::forward`] rows (for
/// the wildcard kind, `{WILDCARD_SLOT}`), the other direction is here.
#[derive(Debug, Clone)]
pub(crate) struct KindIndex {
    pub(crate) subject: AllowedSubject,
    /// The relation's own type, whose forward rows hold this kind.
    resource_ty: TypeId,
    /// This kind's column in those rows.
    column: usize,
    /// subject → resources (for the wildcard kind, under `WILDCARD_SLOT`).
    reverse: Postings,
}

/// What kind of subject a stored relationship or a query names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubjectRel {
    /// A plain object.
    Object,
    /// A userset `#member`.
    Member(MemberId),
    /// `type:*`.
    Wildcard,
}

impl KindIndex {
    pub(crate) fn reverse(&self, subject: u32) -> &Posting {
        self.reverse.get(subject)
    }

    /// The resources with a `type:*` subject (wildcard kinds only).
    pub(crate) fn wildcard_resources(&self) -> &Posting {
        self.reverse.get(WILDCARD_SLOT)
    }
}

/// The whole derived index for one schema.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) interners: Vec<Interner>,
    /// Per member id: one `KindIndex` per allowed subject (empty for permissions).
    pub(crate) relations: Vec<Vec<KindIndex>>,
    /// Per type: one row per object, one column per (relation, subject kind) of the type.
    forward: Vec<Rows>,
    pub(crate) count: u64,
}

/// A stored relationship resolved against the schema: which bitmap pair, which positions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    relation: MemberId,
    kind: usize,
    resource: u32,
    subject: u32,
}

impl Index {
    pub(crate) fn new(schema: &CompiledSchema) -> Self {
        let mut widths = vec![0usize; schema.definitions.len()];
        let relations = schema
            .members
            .iter()
            .map(|member| match &member.kind {
                MemberKind::Relation(allowed) => allowed
                    .iter()
                    .map(|subject| {
                        let width = widths.get_mut(member.owner.0 as usize);
                        let column = width.as_deref().copied().unwrap_or(0);
                        if let Some(width) = width {
                            *width += 1;
                        }
                        KindIndex {
                            subject: *subject,
                            resource_ty: member.owner,
                            column,
                            reverse: Postings::default(),
                        }
                    })
                    .collect(),
                MemberKind::Permission(_) => Vec::new(),
            })
            .collect();
        Index {
            interners: vec![Interner::default(); schema.definitions.len()],
            relations,
            forward: widths.into_iter().map(Rows::new).collect(),
            count: 0,
        }
    }

    /// The subjects of `kind` on `resource` (for a wildcard kind, `{WILDCARD_SLOT}` when
    /// the resource has `type:*`).
    pub(crate) fn forward(&self, kind: &KindIndex, resource: u32) -> &Posting {
        self.forward
            .get(kind.resource_ty.0 as usize)
            .map_or(&EMPTY_POSTING, |rows| rows.get(resource, kind.column))
    }

    /// Whether `resource` has a `type:*` subject (wildcard kinds only).
    pub(crate) fn has_wildcard(&self, kind: &KindIndex, resource: u32) -> bool {
        !self.forward(kind, resource).is_empty()
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "a TypeId comes from the schema this index was built for, which has one interner per type; both are swapped together"
    )]
    pub(crate) fn interner(&self, ty: TypeId) -> &Interner {
        &self.interners[ty.0 as usize]
    }

    pub(crate) fn kinds(&self, relation: MemberId) -> &[KindIndex] {
        self.relations
            .get(relation.0 as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The relation, kind position and types a relationship's names resolve to.
    fn kind_of(
        &self,
        schema: &CompiledSchema,
        raw: &RawTuple<'_>,
    ) -> Option<(MemberId, usize, TypeId, TypeId)> {
        let resource_ty = schema.type_by_name(raw.resource_type)?;
        let relation = schema.member_by_name(resource_ty, raw.relation)?;
        let subject_ty = schema.type_by_name(raw.subject_type)?;
        let wanted = if raw.subject_id == "*" {
            AllowedSubject::Wildcard(subject_ty)
        } else if raw.subject_relation.is_empty() {
            AllowedSubject::Object(subject_ty)
        } else {
            AllowedSubject::Userset(
                subject_ty,
                schema.member_by_name(subject_ty, raw.subject_relation)?,
            )
        };
        let kind = self
            .kinds(relation)
            .iter()
            .position(|k| k.subject == wanted)?;
        Some((relation, kind, resource_ty, subject_ty))
    }

    /// Resolves a relationship's names to its kind, interning its ids; `None` when the
    /// schema does not allow it (callers validate before writing, so this is a bug guard).
    fn slot(&mut self, schema: &CompiledSchema, raw: &RawTuple<'_>) -> Option<Slot> {
        let (relation, kind, resource_ty, subject_ty) = self.kind_of(schema, raw)?;
        let resource = self
            .interners
            .get_mut(resource_ty.0 as usize)?
            .intern(raw.resource_id)
            .0;
        let subject = if raw.subject_id == "*" {
            WILDCARD_SLOT
        } else {
            self.interners
                .get_mut(subject_ty.0 as usize)?
                .intern(raw.subject_id)
                .0
        };
        Some(Slot {
            relation,
            kind,
            resource,
            subject,
        })
    }

    /// Whether the index holds this relationship.
    pub(crate) fn contains(&self, schema: &CompiledSchema, raw: &RawTuple<'_>) -> bool {
        let Some((relation, kind, resource_ty, subject_ty)) = self.kind_of(schema, raw) else {
            return false;
        };
        let Some(resource) = self.interner(resource_ty).get(raw.resource_id) else {
            return false;
        };
        let subject = if raw.subject_id == "*" {
            Some(WILDCARD_SLOT)
        } else {
            self.interner(subject_ty).get(raw.subject_id).map(|i| i.0)
        };
        let Some(kind) = self.kinds(relation).get(kind) else {
            return false;
        };
        subject.is_some_and(|subject| self.forward(kind, resource.0).contains(subject))
    }

    /// Adds a relationship; returns false if the schema has no place for it.
    pub(crate) fn insert(&mut self, schema: &CompiledSchema, raw: &RawTuple<'_>) -> bool {
        let Some(slot) = self.slot(schema, raw) else {
            return false;
        };
        let Some(kind) = self
            .relations
            .get_mut(slot.relation.0 as usize)
            .and_then(|kinds| kinds.get_mut(slot.kind))
        else {
            return false;
        };
        let Some(rows) = self.forward.get_mut(kind.resource_ty.0 as usize) else {
            return false;
        };
        if rows.insert(slot.resource, kind.column, slot.subject) {
            kind.reverse.insert(slot.subject, slot.resource);
            self.count += 1;
        }
        true
    }

    /// Removes a relationship if present.
    pub(crate) fn remove(&mut self, schema: &CompiledSchema, raw: &RawTuple<'_>) {
        let Some(slot) = self.slot(schema, raw) else {
            return;
        };
        let Some(kind) = self
            .relations
            .get_mut(slot.relation.0 as usize)
            .and_then(|kinds| kinds.get_mut(slot.kind))
        else {
            return;
        };
        let Some(rows) = self.forward.get_mut(kind.resource_ty.0 as usize) else {
            return;
        };
        if rows.remove(slot.resource, kind.column, slot.subject) {
            kind.reverse.remove(slot.subject, slot.resource);
            self.count = self.count.saturating_sub(1);
        }
    }

    /// Every stored (relation, subject kind) pair with at least one relationship, with one
    /// example as `(resource_idx, subject_idx)`.
    pub(crate) fn used_kinds(
        &self,
    ) -> impl Iterator<Item = (MemberId, AllowedSubject, u32, u32)> + '_ {
        self.relations
            .iter()
            .enumerate()
            .flat_map(move |(member, kinds)| {
                kinds.iter().filter_map(move |kind| {
                    let (resource, subjects) = self
                        .forward
                        .get(kind.resource_ty.0 as usize)?
                        .first(kind.column)?;
                    let subject = subjects.min()?;
                    Some((MemberId(member as u32), kind.subject, resource, subject))
                })
            })
    }
}

impl Index {
    /// Drops the spare capacity that building left in every vector and table (they grow
    /// by doubling, so up to half of each was slack); writes after open grow them again.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.interners.iter_mut().for_each(Interner::shrink_to_fit);
        self.forward.iter_mut().for_each(Rows::shrink_to_fit);
        self.relations
            .iter_mut()
            .flatten()
            .for_each(|kind| kind.reverse.shrink_to_fit());
    }

    /// Approximate heap bytes of the whole index (interners and postings).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.interners
            .iter()
            .map(Interner::heap_bytes)
            .sum::<usize>()
            + self.forward.iter().map(Rows::heap_bytes).sum::<usize>()
            + self
                .relations
                .iter()
                .flatten()
                .map(|kind| kind.reverse.heap_bytes())
                .sum::<usize>()
    }
}
