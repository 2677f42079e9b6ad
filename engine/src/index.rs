//! The in-memory index: interned object ids and roaring bitmaps per relation and subject kind.
//!
//! Derived from the store and rebuilt from it on open; never the source of truth.

use pemba_schema::{AllowedSubject, CompiledSchema, MemberId, MemberKind, TypeId};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// The interned index of an object id within its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectIdx(pub u32);

/// The subject index used for the wildcard kind, whose "subject" is `type:*` itself.
const WILDCARD_SLOT: u32 = 0;

/// Object ids of one type, interned to dense `u32`s.
#[derive(Default, Debug, Clone)]
pub(crate) struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub(crate) fn get(&self, id: &str) -> Option<ObjectIdx> {
        self.ids.get(id).copied().map(ObjectIdx)
    }

    fn intern(&mut self, id: &str) -> ObjectIdx {
        if let Some(idx) = self.ids.get(id) {
            return ObjectIdx(*idx);
        }
        let idx = self.names.len() as u32;
        self.names.push(id.into());
        self.ids.insert(id.into(), idx);
        ObjectIdx(idx)
    }

    pub(crate) fn name(&self, idx: u32) -> &str {
        self.names.get(idx as usize).map(|s| &**s).unwrap_or("")
    }
}

/// Relationships of one relation with one allowed subject kind, both directions.
#[derive(Debug, Clone)]
pub(crate) struct KindIndex {
    pub(crate) subject: AllowedSubject,
    /// resource → subjects (for the wildcard kind, `{WILDCARD_SLOT}`).
    pub(crate) forward: FxHashMap<u32, RoaringBitmap>,
    /// subject → resources (for the wildcard kind, under `WILDCARD_SLOT`).
    pub(crate) reverse: FxHashMap<u32, RoaringBitmap>,
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
    pub(crate) fn forward(&self, resource: u32) -> Option<&RoaringBitmap> {
        self.forward.get(&resource)
    }

    pub(crate) fn reverse(&self, subject: u32) -> Option<&RoaringBitmap> {
        self.reverse.get(&subject)
    }

    /// Whether `resource` has a `type:*` subject (wildcard kinds only).
    pub(crate) fn has_wildcard(&self, resource: u32) -> bool {
        self.forward.contains_key(&resource)
    }

    pub(crate) fn wildcard_resources(&self) -> Option<&RoaringBitmap> {
        self.reverse.get(&WILDCARD_SLOT)
    }
}

/// The whole derived index for one schema.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) interners: Vec<Interner>,
    /// Per member id: one `KindIndex` per allowed subject (empty for permissions).
    pub(crate) relations: Vec<Vec<KindIndex>>,
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
        let relations = schema
            .members
            .iter()
            .map(|member| match &member.kind {
                MemberKind::Relation(allowed) => allowed
                    .iter()
                    .map(|subject| KindIndex {
                        subject: *subject,
                        forward: FxHashMap::default(),
                        reverse: FxHashMap::default(),
                    })
                    .collect(),
                MemberKind::Permission(_) => Vec::new(),
            })
            .collect();
        Index {
            interners: vec![Interner::default(); schema.definitions.len()],
            relations,
            count: 0,
        }
    }

    pub(crate) fn interner(&self, ty: TypeId) -> &Interner {
        &self.interners[ty.0 as usize]
    }

    pub(crate) fn kinds(&self, relation: MemberId) -> &[KindIndex] {
        self.relations
            .get(relation.0 as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Resolves a relationship's names to its kind, interning its ids; `None` when the
    /// schema does not allow it (callers validate before writing, so this is a bug guard).
    fn slot(
        &mut self,
        schema: &CompiledSchema,
        resource_type: &str,
        resource_id: &str,
        relation: &str,
        subject_type: &str,
        subject_id: &str,
        subject_relation: &str,
    ) -> Option<Slot> {
        let resource_ty = schema.type_by_name(resource_type)?;
        let relation = schema.member_by_name(resource_ty, relation)?;
        let subject_ty = schema.type_by_name(subject_type)?;
        let wanted = if subject_id == "*" {
            AllowedSubject::Wildcard(subject_ty)
        } else if subject_relation.is_empty() {
            AllowedSubject::Object(subject_ty)
        } else {
            AllowedSubject::Userset(
                subject_ty,
                schema.member_by_name(subject_ty, subject_relation)?,
            )
        };
        let kind = self
            .kinds(relation)
            .iter()
            .position(|k| k.subject == wanted)?;
        let resource = self.interners[resource_ty.0 as usize].intern(resource_id).0;
        let subject = if subject_id == "*" {
            WILDCARD_SLOT
        } else {
            self.interners[subject_ty.0 as usize].intern(subject_id).0
        };
        Some(Slot {
            relation,
            kind,
            resource,
            subject,
        })
    }

    /// Adds a relationship; returns false if the schema has no place for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        schema: &CompiledSchema,
        resource_type: &str,
        resource_id: &str,
        relation: &str,
        subject_type: &str,
        subject_id: &str,
        subject_relation: &str,
    ) -> bool {
        let Some(slot) = self.slot(
            schema,
            resource_type,
            resource_id,
            relation,
            subject_type,
            subject_id,
            subject_relation,
        ) else {
            return false;
        };
        let Some(kind) = self
            .relations
            .get_mut(slot.relation.0 as usize)
            .and_then(|kinds| kinds.get_mut(slot.kind))
        else {
            return false;
        };
        if kind
            .forward
            .entry(slot.resource)
            .or_default()
            .insert(slot.subject)
        {
            kind.reverse
                .entry(slot.subject)
                .or_default()
                .insert(slot.resource);
            self.count += 1;
        }
        true
    }

    /// Removes a relationship if present.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn remove(
        &mut self,
        schema: &CompiledSchema,
        resource_type: &str,
        resource_id: &str,
        relation: &str,
        subject_type: &str,
        subject_id: &str,
        subject_relation: &str,
    ) {
        let Some(slot) = self.slot(
            schema,
            resource_type,
            resource_id,
            relation,
            subject_type,
            subject_id,
            subject_relation,
        ) else {
            return;
        };
        let Some(kind) = self
            .relations
            .get_mut(slot.relation.0 as usize)
            .and_then(|kinds| kinds.get_mut(slot.kind))
        else {
            return;
        };
        let removed = remove_from(&mut kind.forward, slot.resource, slot.subject);
        if removed {
            remove_from(&mut kind.reverse, slot.subject, slot.resource);
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
            .flat_map(|(member, kinds)| {
                kinds.iter().filter_map(move |kind| {
                    let (resource, subjects) = kind.forward.iter().next()?;
                    let subject = subjects.min()?;
                    Some((MemberId(member as u32), kind.subject, *resource, subject))
                })
            })
    }
}

fn remove_from(map: &mut FxHashMap<u32, RoaringBitmap>, key: u32, value: u32) -> bool {
    let Some(bitmap) = map.get_mut(&key) else {
        return false;
    };
    let removed = bitmap.remove(value);
    if bitmap.is_empty() {
        map.remove(&key);
    }
    removed
}
