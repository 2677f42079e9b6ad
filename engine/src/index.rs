//! The in-memory index: interned object ids and roaring bitmaps per relation and subject kind.
//!
//! Derived from the store and rebuilt from it on open; never the source of truth.

use pemba_schema::{AllowedSubject, Arrow, CompiledSchema, MemberId, MemberKind, TypeId};
use std::hash::Hasher;

use rustc_hash::FxHasher;

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
/// Laid out for one probe: a look-up reads one slot of an open-addressed table (the name's
/// hash and where its record starts) and then the record (the name's length and index
/// beside its bytes), so on a store much larger than the cache it costs two cache lines.
/// hashbrown's table of indexes cost four or five: its control group, the slot, the
/// offsets vector and the name bytes. Names live back to back in one arena, so an object
/// costs its id's bytes plus 7 bytes of record header, 4 of offset and about 11 of table.
#[derive(Default, Debug, Clone)]
pub(crate) struct Interner {
    /// Linear probing. A slot is `hash << 32 | (record start + 1)`, or 0 when empty; at
    /// most [`MAX_LOAD_PERCENT`] of them are full, so a probe sequence always ends.
    slots: Vec<u64>,
    /// One record per name, in index order: [`RECORD_HEADER`] bytes (the name's length,
    /// then its index, seven bits per byte, so the arena stays ASCII there and a `String`
    /// that `name` slices without a UTF-8 check), then the name.
    arena: String,
    /// `records[i]` is where the record of name `i` starts in `arena`.
    records: Vec<u32>,
}

/// Bytes of a record's header: two for the name's length (up to [`MAX_NAME_LEN`]), five
/// for its index (any `u32`), seven bits each.
const RECORD_HEADER: usize = 7;
const LEN_DIGITS: usize = 2;
/// The longest name the interner holds: ids are validated to at most 1,024 bytes long
/// before they are stored; 14 bits leave room.
const MAX_NAME_LEN: usize = (1 << (7 * LEN_DIGITS)) - 1;
const _: () = assert!(
    MAX_NAME_LEN >= crate::tuple::MAX_OBJECT_ID_LEN,
    "a record holds any valid id"
);
/// The table grows past this load. Linear probing stays short up to about three quarters
/// (2.5 slots read on average for a name present, mostly in one cache line); the slack is
/// 8 bytes per slot.
const MAX_LOAD_PERCENT: usize = 75;

/// The 32 bits of a name's hash that place it (by the slot count) and tag its slot.
fn hash_of(name: &str) -> u32 {
    let mut hasher = FxHasher::default();
    hasher.write(name.as_bytes());
    (hasher.finish() >> 32) as u32
}

/// Where a probe for `hash` starts among `len` slots: `hash` scaled to `0..len`, so the
/// slot count need not be a power of two and a grown table places its slots again from
/// the stored hashes alone, without reading a name.
fn home(hash: u32, len: usize) -> usize {
    ((u64::from(hash) * len as u64) >> 32) as usize
}

/// Puts `slot` in the first empty slot from its home (the name is known to be absent).
fn place(slots: &mut [u64], slot: u64) {
    let len = slots.len();
    let mut at = home((slot >> 32) as u32, len);
    for _ in 0..len {
        match slots.get_mut(at) {
            Some(empty @ 0) => {
                *empty = slot;
                return;
            }
            Some(_) => at = if at + 1 == len { 0 } else { at + 1 },
            None => return,
        }
    }
}

/// Writes `value` as `digits` ASCII bytes of seven bits each, low bits first.
fn push_digits(arena: &mut String, mut value: u64, digits: usize) {
    for _ in 0..digits {
        arena.push(char::from((value & 0x7f) as u8));
        value >>= 7;
    }
}

fn read_digits(digits: &[u8]) -> u64 {
    digits
        .iter()
        .rev()
        .fold(0, |value, digit| value << 7 | u64::from(digit & 0x7f))
}

/// A look-up begun: the name's hash and its home slot, read. Two look-ups begun before
/// either is finished have their first cache misses in flight together, where two calls
/// of [`Interner::get`] wait for one miss and then the other.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    hash: u32,
    at: usize,
    slot: u64,
}

impl Interner {
    pub(crate) fn get(&self, id: &str) -> Option<ObjectIdx> {
        self.finish(self.begin(id), id)
    }

    /// Hashes `id` and reads its home slot; [`Interner::finish`] with the same `id` ends
    /// the look-up.
    pub(crate) fn begin(&self, id: &str) -> Probe {
        self.begin_hashed(hash_of(id))
    }

    fn begin_hashed(&self, hash: u32) -> Probe {
        let at = home(hash, self.slots.len());
        Probe {
            hash,
            at,
            slot: self.slots.get(at).copied().unwrap_or(0),
        }
    }

    /// The index of `id`, from a probe [`Interner::begin`] started for it.
    pub(crate) fn finish(&self, probe: Probe, id: &str) -> Option<ObjectIdx> {
        let Probe {
            hash,
            mut at,
            mut slot,
        } = probe;
        let len = self.slots.len();
        for _ in 0..len {
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == hash {
                let start = (slot as u32).wrapping_sub(1) as usize;
                if let Some(idx) = self.record_is(start, id) {
                    return Some(idx);
                }
            }
            at = if at + 1 == len { 0 } else { at + 1 };
            slot = *self.slots.get(at)?;
        }
        None
    }

    /// The index in the record at `start` if the record's name is `id`.
    fn record_is(&self, start: usize, id: &str) -> Option<ObjectIdx> {
        let bytes = self.arena.as_bytes();
        let header = bytes.get(start..start + RECORD_HEADER)?;
        let (len, idx) = header.split_at(LEN_DIGITS);
        if read_digits(len) as usize != id.len() {
            return None;
        }
        let name = bytes.get(start + RECORD_HEADER..start + RECORD_HEADER + id.len())?;
        (name == id.as_bytes()).then(|| ObjectIdx(read_digits(idx) as u32))
    }

    /// The index of `id`, added if new; `None` only past what a record can say (a name
    /// longer than [`MAX_NAME_LEN`], 2^32 names, or 4 GiB of them), which validated ids
    /// on any real store never reach.
    fn intern(&mut self, id: &str) -> Option<ObjectIdx> {
        let hash = hash_of(id);
        if let Some(idx) = self.finish(self.begin_hashed(hash), id) {
            return Some(idx);
        }
        if id.len() > MAX_NAME_LEN {
            return None;
        }
        let idx = u32::try_from(self.records.len()).ok()?;
        let start = u32::try_from(self.arena.len()).ok()?;
        // A slot holds `start + 1`, so no record may start at `u32::MAX`, the next included.
        u32::try_from(self.arena.len() + RECORD_HEADER + id.len())
            .ok()
            .filter(|end| *end < u32::MAX)?;
        if (self.records.len() + 1) * 100 > self.slots.len() * MAX_LOAD_PERCENT {
            self.resize_table((self.slots.len() * 2).max(8));
        }
        push_digits(&mut self.arena, id.len() as u64, LEN_DIGITS);
        push_digits(&mut self.arena, u64::from(idx), RECORD_HEADER - LEN_DIGITS);
        self.arena.push_str(id);
        self.records.push(start);
        place(
            &mut self.slots,
            u64::from(hash) << 32 | u64::from(start + 1),
        );
        Some(ObjectIdx(idx))
    }

    /// Re-places every slot into `len` slots, from the stored hashes.
    fn resize_table(&mut self, len: usize) {
        let mut slots = vec![0; len];
        for slot in self.slots.iter().filter(|slot| **slot != 0) {
            place(&mut slots, *slot);
        }
        self.slots = slots;
    }

    pub(crate) fn name(&self, idx: u32) -> &str {
        self.records
            .get(idx as usize)
            .and_then(|start| {
                let start = *start as usize;
                let len = read_digits(self.arena.as_bytes().get(start..start + LEN_DIGITS)?);
                self.arena
                    .get(start + RECORD_HEADER..start + RECORD_HEADER + len as usize)
            })
            .unwrap_or("")
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.arena.capacity() + self.records.capacity() * 4
    }

    /// Drops the slack that growing by doubling left: the table is re-placed at the
    /// smallest size under the load limit (any size, see [`home`]).
    fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.records.shrink_to_fit();
        let len = if self.records.is_empty() {
            0
        } else {
            self.records.len() * 100 / MAX_LOAD_PERCENT + 1
        };
        if len < self.slots.len() {
            self.resize_table(len);
        }
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
    recent: Recent,
}

/// A relationship's kind as the index files it: relation, position among the relation's
/// allowed subjects, resource type, subject type.
type Resolved = (MemberId, usize, TypeId, TypeId);

/// What the previous insert or removal resolved. A store scan yields relationships in key
/// order, so runs of them share their resource and their kind: checking that the names
/// are the previous ones is cheaper than resolving them again (schema names by linear
/// search, the resource id by a hash probe), and on open it is most relationships.
#[derive(Clone, Copy, Debug, Default)]
struct Recent {
    kind: Option<Resolved>,
    resource: Option<(TypeId, u32)>,
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
            recent: Recent::default(),
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

    /// The objects whose `relation`, through its `kind`-th allowed subject kind, holds
    /// `subject`: the reverse of that kind's column.
    pub(crate) fn reverse(&self, relation: MemberId, kind: usize, subject: u32) -> &Posting {
        self.kinds(relation)
            .get(kind)
            .map_or(&EMPTY_POSTING, |kind| kind.reverse(subject))
    }

    /// The hops of an arrow `tupleset->name`: each allowed subject kind of the tupleset
    /// whose type has the computed member, with that type and member, in the kinds'
    /// order. Checks, plans, lookups of subjects and expand all follow an arrow by these.
    pub(crate) fn arrow_hops<'a>(
        &'a self,
        arrow: &'a Arrow,
    ) -> impl Iterator<Item = (&'a KindIndex, TypeId, MemberId)> + 'a {
        self.kinds(arrow.tupleset)
            .iter()
            .filter_map(|kind| match kind.subject {
                AllowedSubject::Object(ty) | AllowedSubject::Userset(ty, _) => Some((kind, ty)),
                AllowedSubject::Wildcard(_) => None,
            })
            .flat_map(|(kind, ty)| {
                arrow
                    .targets
                    .iter()
                    .filter(move |(target_ty, _)| *target_ty == ty)
                    .map(move |(_, target)| (kind, ty, *target))
            })
    }

    pub(crate) fn kinds(&self, relation: MemberId) -> &[KindIndex] {
        self.relations
            .get(relation.0 as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The relation, kind position and types a relationship's names resolve to.
    fn kind_of(&self, schema: &CompiledSchema, raw: &RawTuple<'_>) -> Option<Resolved> {
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

    /// Whether `raw`'s names are those `resolved` stands for.
    fn names_are(&self, schema: &CompiledSchema, raw: &RawTuple<'_>, resolved: Resolved) -> bool {
        let (relation, kind, resource_ty, subject_ty) = resolved;
        let type_name = |ty: TypeId| schema.definitions.get(ty.0 as usize).map(|d| &*d.name);
        let member_name = |m: MemberId| schema.members.get(m.0 as usize).map(|m| &*m.name);
        let Some(allowed) = self.kinds(relation).get(kind) else {
            return false;
        };
        let wildcard = raw.subject_id == "*";
        let subject_fits = match allowed.subject {
            AllowedSubject::Wildcard(_) => wildcard,
            AllowedSubject::Object(_) => !wildcard && raw.subject_relation.is_empty(),
            AllowedSubject::Userset(_, member) => {
                !wildcard && member_name(member) == Some(raw.subject_relation)
            }
        };
        subject_fits
            && member_name(relation) == Some(raw.relation)
            && type_name(resource_ty) == Some(raw.resource_type)
            && type_name(subject_ty) == Some(raw.subject_type)
    }

    /// Resolves a relationship's names to its kind, interning its ids; `None` when the
    /// schema does not allow it (callers validate before writing, so this is a bug guard).
    fn slot(&mut self, schema: &CompiledSchema, raw: &RawTuple<'_>) -> Option<Slot> {
        let resolved = match self.recent.kind {
            Some(recent) if self.names_are(schema, raw, recent) => recent,
            _ => self.kind_of(schema, raw)?,
        };
        self.recent.kind = Some(resolved);
        let (relation, kind, resource_ty, subject_ty) = resolved;
        let interner = self.interners.get_mut(resource_ty.0 as usize)?;
        let resource = match self.recent.resource {
            Some((ty, idx)) if ty == resource_ty && interner.name(idx) == raw.resource_id => idx,
            _ => interner.intern(raw.resource_id)?.0,
        };
        self.recent.resource = Some((resource_ty, resource));
        let subject = if raw.subject_id == "*" {
            WILDCARD_SLOT
        } else {
            self.interners
                .get_mut(subject_ty.0 as usize)?
                .intern(raw.subject_id)?
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

// Read accessors for check plans (`plan.rs`), which probe rows by column directly.
impl KindIndex {
    /// This kind's column in its relation's type's forward rows.
    pub(crate) fn column(&self) -> usize {
        self.column
    }
}

impl Index {
    /// The forward rows of type `ty`: one row per object, one column per relation and
    /// subject kind of the type.
    pub(crate) fn rows(&self, ty: TypeId) -> Option<&Rows> {
        self.forward.get(ty.0 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interner_finds_every_name_through_growth_and_shrinking() {
        let mut interner = Interner::default();
        // Names that share prefixes and lengths, the empty name, and one of the longest.
        let mut names: Vec<String> = (0..5_000).map(|i| format!("w{}u{}", i % 97, i)).collect();
        names.push(String::new());
        names.push("z".repeat(MAX_NAME_LEN));
        for (i, name) in names.iter().enumerate() {
            assert_eq!(interner.intern(name), Some(ObjectIdx(i as u32)), "{name}");
            assert!(interner.records.len() * 100 <= interner.slots.len() * MAX_LOAD_PERCENT);
        }
        let check = |interner: &Interner| {
            for (i, name) in names.iter().enumerate() {
                assert_eq!(interner.get(name), Some(ObjectIdx(i as u32)), "{name}");
                assert_eq!(interner.name(i as u32), name);
            }
            for absent in ["w1u2", "w0u0x", "x", &"z".repeat(MAX_NAME_LEN - 1)] {
                assert_eq!(interner.get(absent), None, "{absent}");
            }
            assert_eq!(interner.name(names.len() as u32), "");
        };
        check(&interner);
        // Interning again finds the same index and adds nothing.
        assert_eq!(interner.intern("w5u5"), Some(ObjectIdx(5)));
        assert_eq!(interner.records.len(), names.len());
        interner.shrink_to_fit();
        assert!(interner.slots.len() < 2 * names.len());
        check(&interner);
        assert_eq!(interner.intern(&"z".repeat(MAX_NAME_LEN + 1)), None);
        assert_eq!(
            interner.intern("new"),
            Some(ObjectIdx(names.len() as u32)),
            "a shrunk table grows again"
        );
    }

    #[test]
    fn record_headers_hold_any_name_an_id_may_be() {
        let mut arena = String::new();
        push_digits(&mut arena, u64::from(u32::MAX), RECORD_HEADER - LEN_DIGITS);
        assert!(arena.is_ascii());
        assert_eq!(read_digits(arena.as_bytes()), u64::from(u32::MAX));
    }

    #[test]
    fn runs_that_share_names_resolve_like_lone_relationships() {
        let schema = pemba_schema::compile(
            "definition user {}
             definition team {
                 relation member: user
             }
             definition group {
                 relation member: user | team#member
                 relation public: user | user:*
             }
             definition doc {
                 relation viewer: user | group#member
                 relation owner: user
             }",
        )
        .unwrap();
        // Each relationship differs from the one before in a single name, which the
        // remembered kind and resource must not paper over.
        let tuples = [
            "doc:a#viewer@user:u",
            "doc:a#owner@user:u",
            "group:a#member@user:u",
            "group:a#public@user:u",
            "group:a#public@user:*",
            "group:a#member@team:a#member",
            "team:a#member@user:u",
            "group:b#member@team:a#member",
            "doc:b#viewer@group:a#member",
            "doc:b#viewer@user:a",
            "doc:a#viewer@user:b",
        ];
        let parsed: Vec<crate::Tuple> = tuples
            .iter()
            .map(|t| crate::Tuple::parse(t).unwrap())
            .collect();
        let mut index = Index::new(&schema);
        for (i, tuple) in parsed.iter().enumerate() {
            assert!(index.insert(&schema, &RawTuple::of(tuple)), "{}", tuples[i]);
            let mut alone = Index::new(&schema);
            for earlier in &parsed[..=i] {
                alone.recent = Recent::default();
                alone.insert(&schema, &RawTuple::of(earlier));
            }
            for other in &parsed {
                assert_eq!(
                    index.contains(&schema, &RawTuple::of(other)),
                    alone.contains(&schema, &RawTuple::of(other)),
                    "after {}: {other}",
                    tuples[i]
                );
            }
        }
        assert_eq!(index.count, tuples.len() as u64);
        index.remove(&schema, &RawTuple::of(&parsed[0]));
        assert!(!index.contains(&schema, &RawTuple::of(&parsed[0])));
        assert!(index.contains(&schema, &RawTuple::of(&parsed[1])));
    }
}
