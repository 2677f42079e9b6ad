//! The questions: check, bulk check, lookups, expand and reads, each answered from one
//! revision of the index (reads of relationships come from the store).

use pemba_schema::{CompiledSchema, TypeId};
use roaring::RoaringBitmap;

use super::{Engine, State};
use crate::error::{InvalidError, QueryError};
use crate::eval::{Evaluator, Subject, SubjectSet};
use crate::expand::{ExpandNode, Expander};
use crate::filter::RelationshipFilter;
use crate::index::{Index, Probe, SubjectRel};
use crate::revision::{Answer, Consistency};
use crate::tuple::{is_valid_object_id, ObjectRef, SubjectRef, SyntaxError, Tuple};
use crate::validate::{resolve_member, resolve_type, validate_filter};

/// One check, owned (a bulk check's items, a validation file's assertions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    /// The resource.
    pub resource: ObjectRef,
    /// A permission or relation of the resource's type.
    pub permission: String,
    /// Who asks.
    pub subject: SubjectRef,
}

impl CheckRequest {
    /// The same check, borrowed.
    pub fn args(&self) -> CheckArgs<'_> {
        CheckArgs::new(&self.resource, &self.permission, &self.subject)
    }
}

/// A check whose names are borrowed from the caller, so asking allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckArgs<'a> {
    /// Resource type.
    pub resource_type: &'a str,
    /// Resource id.
    pub resource_id: &'a str,
    /// Permission or relation.
    pub permission: &'a str,
    /// Subject type.
    pub subject_type: &'a str,
    /// Subject id, or `*`.
    pub subject_id: &'a str,
    /// Subject relation of a userset.
    pub subject_relation: Option<&'a str>,
}

impl<'a> CheckArgs<'a> {
    /// Whether `subject` has `permission` on `resource`.
    pub fn new(resource: &'a ObjectRef, permission: &'a str, subject: &'a SubjectRef) -> Self {
        CheckArgs {
            resource_type: &resource.object_type,
            resource_id: &resource.object_id,
            permission,
            subject_type: &subject.object.object_type,
            subject_id: &subject.object.object_id,
            subject_relation: subject.relation.as_deref(),
        }
    }
}

/// Limits on the results of one lookup page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page<'a> {
    /// Only results strictly after this id.
    pub after: Option<&'a str>,
    /// At most this many results.
    pub limit: Option<usize>,
}

/// Which resources of a type a subject can reach.
#[derive(Clone, Copy, Debug)]
pub struct ResourceLookup<'a> {
    /// The resource type.
    pub resource_type: &'a str,
    /// A permission or relation of that type.
    pub permission: &'a str,
    /// Who asks.
    pub subject: &'a SubjectRef,
    /// Which page of the answer.
    pub page: Page<'a>,
}

/// Which subjects of a type (or usersets `type#relation`) can reach a resource.
#[derive(Clone, Copy, Debug)]
pub struct SubjectLookup<'a> {
    /// The resource.
    pub resource: &'a ObjectRef,
    /// A permission or relation of its type.
    pub permission: &'a str,
    /// The subject type wanted.
    pub subject_type: &'a str,
    /// For usersets: their relation.
    pub subject_relation: Option<&'a str>,
    /// Which page of the answer.
    pub page: Page<'a>,
}

/// One subject found by lookup subjects, owned (see [`FoundSubjects::to_vec`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSubject {
    /// The subject id, or `*` for every object of the type.
    pub id: String,
    /// For `*`: the ids it excludes, ascending.
    pub excluded: Vec<String>,
}

/// Object ids in the order found, packed back to back in one buffer: an answer of any
/// length costs two allocations, not one per id.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Names {
    bytes: String,
    /// `ends[i]` is where id `i` ends in `bytes`; it starts where id `i - 1` ends.
    ends: Vec<usize>,
}

impl Names {
    /// Packs `names`. The byte buffer grows by doubling: copying it is cheaper than a
    /// second walk over the names to size it, which would visit the interner again.
    fn collect<'n>(names: impl Iterator<Item = &'n str>) -> Self {
        let mut packed = Names {
            bytes: String::new(),
            ends: Vec::with_capacity(names.size_hint().0),
        };
        for name in names {
            packed.push(name);
        }
        packed
    }

    fn push(&mut self, name: &str) {
        self.bytes.push_str(name);
        self.ends.push(self.bytes.len());
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th id, if there are that many.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        self.bytes.get(start..end)
    }

    /// The last id (a page's cursor).
    pub fn last(&self) -> Option<&str> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The ids, in order.
    pub fn iter(&self) -> NamesIter<'_> {
        NamesIter {
            names: self,
            next: 0,
        }
    }

    /// The ids as owned strings (one allocation each: for tests and small answers).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl<'n> FromIterator<&'n str> for Names {
    fn from_iter<I: IntoIterator<Item = &'n str>>(names: I) -> Self {
        Names::collect(names.into_iter())
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Names {
    type Item = &'a str;
    type IntoIter = NamesIter<'a>;

    fn into_iter(self) -> NamesIter<'a> {
        self.iter()
    }
}

/// The ids of [`Names`], borrowed, in order.
#[derive(Clone, Debug)]
pub struct NamesIter<'a> {
    names: &'a Names,
    next: usize,
}

impl<'a> Iterator for NamesIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let name = self.names.get(self.next)?;
        self.next += 1;
        Some(name)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.names.len().saturating_sub(self.next);
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<&'a str> {
        self.next = self.next.saturating_add(n);
        self.next()
    }
}

impl ExactSizeIterator for NamesIter<'_> {}

/// The subjects found by lookup subjects, ordered by id, with no allocation per subject:
/// their ids, and the exclusions of the wildcard `*` if it is among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoundSubjects {
    ids: Names,
    /// Where `*` is in `ids`, if it is there.
    wildcard_at: Option<usize>,
    /// The ids `*` excludes, ascending (empty without `*`).
    excluded: Names,
}

/// One subject of [`FoundSubjects`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundSubjectRef<'a> {
    /// The subject id, or `*` for every object of the type.
    pub id: &'a str,
    /// For `*`: the ids it excludes, ascending; empty for every other subject.
    pub excluded: &'a Names,
}

impl FoundSubjects {
    /// How many subjects (`*` counts as one).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The subjects' ids in order, `*` among them.
    pub fn ids(&self) -> &Names {
        &self.ids
    }

    /// The `i`-th subject, if there are that many.
    pub fn get(&self, i: usize) -> Option<FoundSubjectRef<'_>> {
        Some(self.subject(i, self.ids.get(i)?))
    }

    /// The subjects in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = FoundSubjectRef<'_>> + Clone + '_ {
        self.ids
            .iter()
            .enumerate()
            .map(move |(i, id)| self.subject(i, id))
    }

    fn subject<'a>(&'a self, i: usize, id: &'a str) -> FoundSubjectRef<'a> {
        static NONE: Names = Names {
            bytes: String::new(),
            ends: Vec::new(),
        };
        FoundSubjectRef {
            id,
            excluded: if self.wildcard_at == Some(i) {
                &self.excluded
            } else {
                &NONE
            },
        }
    }

    /// The subjects as owned values (allocations per subject: for tests and small answers).
    pub fn to_vec(&self) -> Vec<FoundSubject> {
        self.iter()
            .map(|subject| FoundSubject {
                id: subject.id.to_string(),
                excluded: subject.excluded.to_vec(),
            })
            .collect()
    }
}

/// One page of a relationship read.
#[derive(Clone, Copy, Debug)]
pub struct ReadPage<'a> {
    /// Only relationships strictly after this one, in the read's stable order.
    pub after: Option<&'a Tuple>,
    /// At most this many.
    pub limit: usize,
}

/// Relationships matching a filter, read from the store page by page (see
/// [`Engine::relationships`]).
pub struct Relationships<'e> {
    engine: &'e Engine,
    filter: RelationshipFilter,
    /// The resource types to read in place of the whole table (see [`read_page`]).
    types: Option<Vec<String>>,
    page: std::vec::IntoIter<Tuple>,
    last: Option<Tuple>,
    done: bool,
}

/// How many relationships [`Relationships`] reads from the store at a time.
const ITER_PAGE: usize = 1_000;

impl Iterator for Relationships<'_> {
    type Item = Result<Tuple, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(tuple) = self.page.next() {
                return Some(Ok(tuple));
            }
            if self.done {
                return None;
            }
            let read = read_page(
                &*self.engine.store,
                &self.filter,
                self.types.as_deref(),
                self.last.as_ref(),
                ITER_PAGE,
            );
            match read {
                Ok(answer) => {
                    self.done = answer.value.len() < ITER_PAGE;
                    // The next page starts after this one's last: one copy per page.
                    self.last = answer.value.last().cloned();
                    self.page = answer.value.into_iter();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error.into()));
                }
            }
        }
    }
}

impl Engine {
    /// Whether the check's subject has its permission on its resource.
    pub fn check(
        &self,
        consistency: Consistency,
        check: CheckArgs<'_>,
    ) -> Result<Answer<bool>, QueryError> {
        let state = self.snapshot(consistency)?;
        Ok(Answer {
            value: check_in(&state, &check)?,
            revision: state.revision,
        })
    }

    /// Many checks at one revision; each answers on its own (one bad item fails only
    /// itself). Names are borrowed, so nothing is allocated per item.
    pub fn check_bulk<'a>(
        &self,
        consistency: Consistency,
        items: impl IntoIterator<Item = CheckArgs<'a>>,
    ) -> Result<Answer<Vec<Result<bool, QueryError>>>, QueryError> {
        let state = self.snapshot(consistency)?;
        let answers = items
            .into_iter()
            .map(|item| check_in(&state, &item))
            .collect();
        Ok(Answer {
            value: answers,
            revision: state.revision,
        })
    }

    /// The ids of every resource of the lookup's type on which its subject has its
    /// permission, ascending, one page, packed into one buffer (no allocation per id).
    pub fn lookup_resources(
        &self,
        consistency: Consistency,
        lookup: &ResourceLookup<'_>,
    ) -> Result<Answer<Names>, QueryError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(QueryError::NoSchema)?.compiled;
        let ty = resolve_type(schema, lookup.resource_type)?;
        let member = resolve_member(schema, ty, lookup.permission)?;
        let subject = lookup.subject;
        let Some(s) = resolve_subject(
            schema,
            &state.index,
            &subject.object.object_type,
            &subject.object.object_id,
            subject.relation.as_deref(),
        )?
        else {
            return Ok(Answer {
                value: Names::default(),
                revision: state.revision,
            });
        };
        let found = Evaluator {
            schema,
            index: &state.index,
        }
        .lookup_resources(member, &s);
        let interner = state.index.interner(ty);
        let name = |idx: u32| interner.name(idx);
        let page = lookup.page;
        let limit = page.limit.unwrap_or(usize::MAX);
        let names = match packed_if_sorted(&found, page.after, limit, name) {
            Some(names) => names,
            None => {
                let mut idxs = after_cursor(&found, page.after, name);
                first_by_name(&mut idxs, limit, name);
                Names::collect(idxs.iter().map(|&idx| name(idx)))
            }
        };
        Ok(Answer {
            value: names,
            revision: state.revision,
        })
    }

    /// The subjects of the lookup's type (or usersets) that have its permission on its
    /// resource, ordered by id, one page; a wildcard appears as `*` with its exclusions.
    pub fn lookup_subjects(
        &self,
        consistency: Consistency,
        lookup: &SubjectLookup<'_>,
    ) -> Result<Answer<FoundSubjects>, QueryError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(QueryError::NoSchema)?.compiled;
        lookup.resource.validate(false)?;
        let ty = resolve_type(schema, &lookup.resource.object_type)?;
        let member = resolve_member(schema, ty, lookup.permission)?;
        let target_ty = resolve_type(schema, lookup.subject_type)?;
        let target_rel = match lookup.subject_relation.filter(|r| !r.is_empty()) {
            None => SubjectRel::Object,
            Some(relation) => SubjectRel::Member(resolve_member(schema, target_ty, relation)?),
        };
        let Some(resource_idx) = state.index.interner(ty).get(&lookup.resource.object_id) else {
            return Ok(Answer {
                value: FoundSubjects::default(),
                revision: state.revision,
            });
        };
        let set: SubjectSet = Evaluator {
            schema,
            index: &state.index,
        }
        .lookup_subjects(member, resource_idx.0, target_ty, target_rel);
        let interner = state.index.interner(target_ty);
        let name = |idx: u32| interner.name(idx);
        let page = lookup.page;
        let limit = page.limit.unwrap_or(usize::MAX);
        let mut concrete = after_cursor(&set.concrete, page.after, name);
        // The first `limit` of concrete ∪ {`*`} are among the first `limit` concrete ids.
        first_by_name(&mut concrete, limit, name);
        let wildcard = set
            .wildcard
            .as_ref()
            .filter(|_| page.after.is_none_or(|after| WILDCARD > after));
        let mut found = FoundSubjects::default();
        let at = concrete.partition_point(|&idx| name(idx) < WILDCARD);
        if let Some(excluded) = wildcard.filter(|_| at < limit) {
            concrete.truncate(limit.saturating_sub(1));
            let mut excluded: Vec<u32> = excluded.iter().collect();
            first_by_name(&mut excluded, usize::MAX, name);
            found.excluded = Names::collect(excluded.iter().map(|&idx| name(idx)));
            found.wildcard_at = Some(at);
        }
        let (before, after) = concrete.split_at(at.min(concrete.len()));
        let ids = before
            .iter()
            .map(|&idx| name(idx))
            .chain(found.wildcard_at.map(|_| WILDCARD))
            .chain(after.iter().map(|&idx| name(idx)));
        found.ids = Names::collect(ids);
        Ok(Answer {
            value: found,
            revision: state.revision,
        })
    }

    /// The tree of sets behind `resource#permission`.
    pub fn expand(
        &self,
        consistency: Consistency,
        resource: &ObjectRef,
        permission: &str,
    ) -> Result<Answer<ExpandNode>, QueryError> {
        let state = self.snapshot(consistency)?;
        let schema = &state.schema.as_ref().ok_or(QueryError::NoSchema)?.compiled;
        resource.validate(false)?;
        let ty = resolve_type(schema, &resource.object_type)?;
        let member = resolve_member(schema, ty, permission)?;
        let expander = Expander {
            schema,
            index: &state.index,
        };
        Ok(Answer {
            value: expander.member(member, &resource.object_id),
            revision: state.revision,
        })
    }

    /// One page of the relationships matching `filter`, in stable order.
    pub fn read(
        &self,
        consistency: Consistency,
        filter: &RelationshipFilter,
        page: ReadPage<'_>,
    ) -> Result<Answer<Vec<Tuple>>, QueryError> {
        let types = self.validate_read(consistency, filter)?;
        Ok(read_page(
            &*self.store,
            filter,
            types.as_deref(),
            page.after,
            page.limit,
        )?)
    }

    /// Every relationship matching `filter`, in stable order, read page by page: the loop
    /// callers would otherwise write over [`Engine::read`].
    pub fn relationships(
        &self,
        consistency: Consistency,
        filter: &RelationshipFilter,
    ) -> Result<Relationships<'_>, QueryError> {
        let types = self.validate_read(consistency, filter)?;
        Ok(Relationships {
            engine: self,
            filter: filter.clone(),
            types,
            page: Vec::new().into_iter(),
            last: None,
            done: false,
        })
    }

    /// Checks the filter against the schema, and answers which resource types a filter
    /// naming a relation but neither a resource type nor a subject can match: the types
    /// that define a member of that name (none at all for a name no type defines).
    fn validate_read(
        &self,
        consistency: Consistency,
        filter: &RelationshipFilter,
    ) -> Result<Option<Vec<String>>, QueryError> {
        let state = self.snapshot(consistency)?;
        let Some(schema) = &state.schema else {
            return Ok(None);
        };
        validate_filter(&schema.compiled, filter, false)?;
        let (Some(relation), None, None) =
            (&filter.relation, &filter.resource_type, &filter.subject)
        else {
            return Ok(None);
        };
        let compiled = &schema.compiled;
        let mut types: Vec<String> = compiled
            .definitions
            .iter()
            .filter(|definition| {
                definition
                    .members
                    .iter()
                    .any(|&member| compiled.member(member).name == *relation)
            })
            .map(|definition| definition.name.clone())
            .collect();
        types.sort_unstable();
        Ok(Some(types))
    }
}

/// One page of `filter` from `store`. With `types`, only those resource types are scanned,
/// one key prefix each, in name order: a filter with only a relation would otherwise scan
/// the whole table (a third of a second on 1.35M relationships for a relation nothing
/// has). Keys start with the type name and a zero byte, so name order is the whole
/// table's order, and pages and cursors are the same as without the plan.
fn read_page(
    store: &dyn crate::store::Store,
    filter: &RelationshipFilter,
    types: Option<&[String]>,
    after: Option<&Tuple>,
    limit: usize,
) -> Result<Answer<Vec<Tuple>>, crate::error::StorageError> {
    let Some(types) = types else {
        return store.read(filter, after, limit);
    };
    let mut found = Vec::new();
    let mut revision = None;
    for resource_type in types {
        if found.len() >= limit {
            break;
        }
        let after_here = match after {
            Some(tuple) if tuple.resource.object_type.as_str() > resource_type.as_str() => continue,
            Some(tuple) if tuple.resource.object_type == *resource_type => Some(tuple),
            _ => None,
        };
        let typed = RelationshipFilter {
            resource_type: Some(resource_type.clone()),
            ..filter.clone()
        };
        let answer = store.read(&typed, after_here, limit - found.len())?;
        revision = Some(answer.revision);
        found.extend(answer.value);
    }
    let revision = match revision {
        Some(revision) => revision,
        // Nothing to scan: a zero-length read still says which revision the answer is at.
        None => store.read(filter, after, 0)?.revision,
    };
    Ok(Answer {
        value: found,
        revision,
    })
}

/// The id lookup subjects gives a wildcard subject `type:*`.
const WILDCARD: &str = "*";

/// The page of `found` (names strictly after `after`, the first `limit`) when its indexes
/// are in name order, packed in one walk over the bitmap; `None` when they are not.
///
/// Interners hand out indexes in the order ids are first stored, and the index is built
/// from the store in key order, so the indexes of a type that is only ever a resource are
/// in name order until ids are added out of order after open. Checking that costs one
/// comparison per id with the id packed just before it; sorting is left for when it fails.
fn packed_if_sorted<'n>(
    found: &RoaringBitmap,
    after: Option<&str>,
    limit: usize,
    name: impl Fn(u32) -> &'n str,
) -> Option<Names> {
    let n_names = usize::try_from(found.len())
        .unwrap_or(usize::MAX)
        .min(limit);
    let mut names = Names {
        // Room for ids of up to 16 bytes; longer ones grow it by doubling.
        bytes: String::with_capacity(n_names.saturating_mul(16)),
        ends: Vec::with_capacity(n_names),
    };
    let mut last: Option<&str> = None;
    // Indexes come out of the bitmap a batch at a time: one call per element was a fifth
    // of a 12,500-id lookup.
    let mut batch = [0u32; 256];
    let mut idxs = found.iter();
    loop {
        let taken = idxs.next_many(&mut batch);
        if taken.is_empty() {
            return Some(names);
        }
        for &idx in taken.iter() {
            let id = name(idx);
            if last.is_some_and(|last| !sorts_before(last, id)) {
                return None;
            }
            last = Some(id);
            if names.len() < limit && after.is_none_or(|after| sorts_before(after, id)) {
                names.push(id);
            }
        }
    }
}

/// Whether `a` sorts strictly before `b`, bytewise as `str`'s order does, without a call
/// into `memcmp`: ids are short and neighbours differ within their first few bytes, so
/// the call was a quarter of a 12,500-id lookup.
#[inline]
fn sorts_before(a: &str, b: &str) -> bool {
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// The members of `found` whose names sort strictly after `after`, in index order.
fn after_cursor<'n>(
    found: &RoaringBitmap,
    after: Option<&str>,
    name: impl Fn(u32) -> &'n str,
) -> Vec<u32> {
    match after {
        Some(after) => found.iter().filter(|&idx| name(idx) > after).collect(),
        None => found.iter().collect(),
    }
}

/// Keeps the `limit` indexes of smallest name, in name order. Indexes already in name
/// order (see [`packed_if_sorted`]) cost one linear pass.
fn first_by_name<'n>(idxs: &mut Vec<u32>, limit: usize, name: impl Fn(u32) -> &'n str) {
    if idxs.is_sorted_by(|&a, &b| name(a) <= name(b)) {
        idxs.truncate(limit);
        return;
    }
    // Sorting on the first eight bytes of each name, big-endian, compares integers for
    // nearly every pair; the names themselves decide only between equal prefixes. A
    // smaller prefix means a smaller name: names compare bytewise, and a name that ends
    // early pads with zero, the least byte.
    let prefix = |idx: u32| {
        let mut bytes = [0u8; 8];
        for (slot, byte) in bytes.iter_mut().zip(name(idx).bytes()) {
            *slot = byte;
        }
        u64::from_be_bytes(bytes)
    };
    let mut keyed: Vec<(u64, u32)> = idxs.iter().map(|&idx| (prefix(idx), idx)).collect();
    let by_name =
        |a: &(u64, u32), b: &(u64, u32)| a.0.cmp(&b.0).then_with(|| name(a.1).cmp(name(b.1)));
    if limit < keyed.len() {
        keyed.select_nth_unstable_by(limit, by_name);
        keyed.truncate(limit);
    }
    keyed.sort_unstable_by(by_name);
    idxs.clear();
    idxs.extend(keyed.iter().map(|&(_, idx)| idx));
}

/// The schema's type of that name, `None` if it has none; an error if the name is not a
/// type name at all. Names the schema knows are valid, so the (per-byte) syntax check
/// only runs for the others: it was an eighth of a check's instructions.
fn known_type(
    schema: &CompiledSchema,
    name: &str,
) -> Result<Option<pemba_schema::TypeId>, InvalidError> {
    match schema.type_by_name(name) {
        Some(ty) => Ok(Some(ty)),
        None if !pemba_schema::is_valid_type_name(name) => {
            Err(SyntaxError::ObjectType(name.to_string()).into())
        }
        None => Ok(None),
    }
}

/// Resolves a subject given as parts; `Ok(None)` when it cannot match anything (a
/// userset never stored).
fn resolve_subject(
    schema: &CompiledSchema,
    index: &Index,
    subject_type: &str,
    subject_id: &str,
    relation: Option<&str>,
) -> Result<Option<Subject>, InvalidError> {
    let wildcard = subject_id == "*" && relation.is_none();
    if !wildcard && !is_valid_object_id(subject_id) {
        return Err(SyntaxError::ObjectId(subject_id.to_string()).into());
    }
    let ty = known_type(schema, subject_type)?.ok_or_else(|| InvalidError::UnknownType {
        name: subject_type.to_string(),
    })?;
    let rel = match relation {
        None if wildcard => SubjectRel::Wildcard,
        None => SubjectRel::Object,
        Some(relation) => SubjectRel::Member(resolve_member(schema, ty, relation)?),
    };
    let idx = if wildcard {
        None
    } else {
        index.interner(ty).get(subject_id).map(|i| i.0)
    };
    if idx.is_none() && matches!(rel, SubjectRel::Member(_)) {
        return Ok(None);
    }
    Ok(Some(Subject { ty, idx, rel }))
}

/// One check against one locked state.
///
/// Names resolve through the plans' hash table and the check runs the compiled plan; the
/// errors and their order are those of resolving with the schema's own look-ups (the
/// resource type, the resource id, the permission, then the subject). An id the interner
/// finds was validated when it was stored, so only an id it does not know is checked for
/// syntax.
pub(super) fn check_in(state: &State, args: &CheckArgs<'_>) -> Result<bool, QueryError> {
    let schema = &state.schema.as_ref().ok_or(QueryError::NoSchema)?.compiled;
    let names = &state.plans.names;
    let ty = match names.type_id(args.resource_type) {
        Some(ty) => Some(ty),
        None => known_type(schema, args.resource_type)?,
    };
    // Both ids' look-ups begin before either finishes: on a store larger than the cache
    // each starts with a miss, and these two can overlap.
    let resource = ty.map(|ty| {
        let interner = state.index.interner(ty);
        (interner, interner.begin(args.resource_id))
    });
    let subject_ty = names.type_id(args.subject_type);
    let wildcard = args.subject_id == "*" && args.subject_relation.is_none();
    let subject_probe = subject_ty
        .filter(|_| !wildcard)
        .map(|ty| state.index.interner(ty).begin(args.subject_id));
    let resource_idx =
        resource.and_then(|(interner, probe)| interner.finish(probe, args.resource_id));
    if resource_idx.is_none() && !is_valid_object_id(args.resource_id) {
        return Err(SyntaxError::ObjectId(args.resource_id.to_string()).into());
    }
    let ty = ty.ok_or_else(|| InvalidError::UnknownType {
        name: args.resource_type.to_string(),
    })?;
    let member = match names.member(ty, args.permission) {
        Some(member) => member,
        None => resolve_member(schema, ty, args.permission)?,
    };
    let subject = match subject_ty {
        Some(subject_ty) => resolve_subject_fast(state, schema, args, subject_ty, subject_probe)?,
        // Unknown type: the slow path finds the error to report.
        None => resolve_subject(
            schema,
            &state.index,
            args.subject_type,
            args.subject_id,
            args.subject_relation,
        )?,
    };
    let Some(s) = subject else {
        return Ok(false);
    };
    let Some(resource_idx) = resource_idx else {
        return Ok(false);
    };
    let evaluator = Evaluator {
        schema,
        index: &state.index,
    };
    Ok(state.plans.check(&evaluator, member, resource_idx.0, &s))
}

/// [`resolve_subject`] for a subject of type `ty`, whose id's look-up `probe` began (none
/// for a wildcard), with names from the plans' table and the id's syntax checked only when
/// the interner does not know it; the same answers and errors, in the same order.
fn resolve_subject_fast(
    state: &State,
    schema: &CompiledSchema,
    args: &CheckArgs<'_>,
    ty: TypeId,
    probe: Option<Probe>,
) -> Result<Option<Subject>, InvalidError> {
    let names = &state.plans.names;
    let idx = match probe {
        None => None,
        Some(probe) => {
            let idx = state
                .index
                .interner(ty)
                .finish(probe, args.subject_id)
                .map(|i| i.0);
            if idx.is_none() && !is_valid_object_id(args.subject_id) {
                return Err(SyntaxError::ObjectId(args.subject_id.to_string()).into());
            }
            idx
        }
    };
    let rel = match args.subject_relation {
        None if probe.is_none() => SubjectRel::Wildcard,
        None => SubjectRel::Object,
        Some(relation) => SubjectRel::Member(match names.member(ty, relation) {
            Some(member) => member,
            None => resolve_member(schema, ty, relation)?,
        }),
    };
    if idx.is_none() && matches!(rel, SubjectRel::Member(_)) {
        return Ok(None);
    }
    Ok(Some(Subject { ty, idx, rel }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Operation, Update};

    const SCHEMA: &str = "
definition user {}
definition doc {
    relation viewer: user | user:*
    relation banned: user
    permission view = viewer - banned
}
";

    /// An engine whose ids are stored out of name order, so interned indexes are not in
    /// name order and lookups must sort.
    fn engine(texts: &[&str]) -> Engine {
        let engine = Engine::in_memory().unwrap();
        engine.write_schema(SCHEMA).unwrap();
        for text in texts {
            let update = Update {
                operation: Operation::Touch,
                tuple: Tuple::parse(text).unwrap(),
            };
            engine.write(vec![update], &[]).unwrap();
        }
        engine
    }

    fn resources(engine: &Engine, subject: &SubjectRef, page: Page<'_>) -> Vec<String> {
        let lookup = ResourceLookup {
            resource_type: "doc",
            permission: "view",
            subject,
            page,
        };
        let found = engine
            .lookup_resources(Consistency::FullyConsistent, &lookup)
            .unwrap()
            .value;
        assert_eq!(found.iter().len(), found.len());
        found.to_vec()
    }

    fn subjects(engine: &Engine, resource: &ObjectRef, page: Page<'_>) -> Vec<FoundSubject> {
        let lookup = SubjectLookup {
            resource,
            permission: "view",
            subject_type: "user",
            subject_relation: None,
            page,
        };
        let found = engine
            .lookup_subjects(Consistency::FullyConsistent, &lookup)
            .unwrap()
            .value;
        let by_index: Vec<FoundSubject> = (0..found.len())
            .filter_map(|i| found.get(i))
            .map(|s| FoundSubject {
                id: s.id.to_string(),
                excluded: s.excluded.to_vec(),
            })
            .collect();
        assert_eq!(by_index, found.to_vec());
        found.to_vec()
    }

    /// Ids whose first eight bytes tie, ids that are prefixes of others, and ids stored
    /// in reverse name order.
    const IDS: [&str; 9] = [
        "zz",
        "longname-b",
        "longname-a",
        "longname",
        "long",
        "b+",
        "b",
        "a_2",
        "A",
    ];

    fn sorted_ids() -> Vec<String> {
        let mut ids: Vec<String> = IDS.iter().map(|id| id.to_string()).collect();
        ids.sort();
        ids
    }

    /// Every page of `limit` items, each asked for after the previous page's last item (its
    /// cursor given by `cursor`), until a page comes back empty.
    fn every_page<T>(
        limit: usize,
        fetch: impl Fn(Page<'_>) -> Vec<T>,
        cursor: impl Fn(&T) -> String,
    ) -> Vec<T> {
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let found = fetch(Page {
                after: after.as_deref(),
                limit: Some(limit),
            });
            assert!(found.len() <= limit);
            let Some(last) = found.last() else { break };
            after = Some(cursor(last));
            paged.extend(found);
        }
        paged
    }

    #[test]
    fn lookup_resources_sorts_ids_interned_out_of_order_and_pages_by_cursor() {
        let texts: Vec<String> = IDS
            .iter()
            .map(|id| format!("doc:{id}#viewer@user:u"))
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let engine = engine(&texts);
        let subject = SubjectRef::object("user", "u");
        let all = resources(&engine, &subject, Page::default());
        assert_eq!(all, sorted_ids());
        for limit in 1..=4 {
            let paged = every_page(
                limit,
                |page| resources(&engine, &subject, page),
                Clone::clone,
            );
            assert_eq!(paged, all, "pages of {limit}");
        }
        assert_eq!(
            resources(
                &engine,
                &SubjectRef::object("user", "nobody"),
                Page::default()
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn lookup_subjects_places_the_wildcard_by_name_and_pages_across_it() {
        let mut texts: Vec<String> = IDS
            .iter()
            .map(|id| format!("doc:d#viewer@user:{id}"))
            .collect();
        texts.push("doc:d#viewer@user:*".to_string());
        texts.push("doc:d#banned@user:zz".to_string());
        texts.push("doc:d#banned@user:mallory".to_string());
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let engine = engine(&texts);
        let resource = ObjectRef::new("doc", "d");
        let all = subjects(&engine, &resource, Page::default());
        let mut expected: Vec<FoundSubject> = sorted_ids()
            .into_iter()
            .filter(|id| id != "zz")
            .map(|id| FoundSubject {
                id,
                excluded: Vec::new(),
            })
            .collect();
        expected.push(FoundSubject {
            id: "*".to_string(),
            excluded: vec!["mallory".to_string(), "zz".to_string()],
        });
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(all, expected);
        for limit in 1..=4 {
            let paged = every_page(
                limit,
                |page| subjects(&engine, &resource, page),
                |last| last.id.clone(),
            );
            assert_eq!(paged, all, "pages of {limit}");
        }
    }

    #[test]
    fn lookup_resources_pages_ids_interned_in_name_order() {
        let mut ids = IDS.to_vec();
        ids.sort_unstable();
        let texts: Vec<String> = ids
            .iter()
            .map(|id| format!("doc:{id}#viewer@user:u"))
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let engine = engine(&texts);
        let subject = SubjectRef::object("user", "u");
        assert_eq!(resources(&engine, &subject, Page::default()), sorted_ids());
        let page = |after: Option<&'static str>, limit: Option<usize>| Page { after, limit };
        assert_eq!(
            resources(&engine, &subject, page(Some("b"), None)),
            ["b+", "long", "longname", "longname-a", "longname-b", "zz"]
        );
        assert_eq!(
            resources(&engine, &subject, page(Some("long"), Some(2))),
            ["longname", "longname-a"]
        );
        assert_eq!(
            resources(&engine, &subject, page(Some("zz"), Some(2))),
            Vec::<String>::new()
        );
        assert_eq!(
            resources(&engine, &subject, page(None, Some(0))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn sorts_before_is_strs_order() {
        let ids = [
            "",
            "a",
            "ab",
            "abc",
            "abd",
            "b",
            "B",
            "a+",
            "a_",
            "abcdefghij",
            "abcdefghi",
        ];
        for a in ids {
            for b in ids {
                assert_eq!(sorts_before(a, b), a < b, "{a:?} < {b:?}");
            }
        }
    }

    #[test]
    fn first_by_name_keeps_the_smallest_names_in_order() {
        let names = [
            "m",
            "abcdefghij",
            "abcdefgh",
            "abcdefghi",
            "b",
            "a",
            "abcdefghia",
        ];
        let name = |idx: u32| names.get(idx as usize).copied().unwrap_or("");
        let mut expected: Vec<&str> = names.to_vec();
        expected.sort_unstable();
        for limit in 0..=names.len() + 1 {
            let mut idxs: Vec<u32> = (0..names.len() as u32).collect();
            first_by_name(&mut idxs, limit, name);
            let got: Vec<&str> = idxs.iter().map(|&idx| name(idx)).collect();
            assert_eq!(
                got,
                expected.iter().copied().take(limit).collect::<Vec<_>>()
            );
        }
    }
}
