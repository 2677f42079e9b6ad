//! The questions: check, bulk check, lookups, expand and reads, each answered from one
//! revision of the index (reads of relationships come from the store).

use pemba_schema::CompiledSchema;

use super::{Engine, State};
use crate::error::{InvalidError, QueryError};
use crate::eval::{Evaluator, Subject, SubjectSet};
use crate::expand::{ExpandNode, Expander};
use crate::filter::RelationshipFilter;
use crate::index::{Index, SubjectRel};
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

/// One subject found by lookup subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSubject {
    /// The subject id, or `*` for every object of the type.
    pub id: String,
    /// For `*`: the ids it excludes, ascending.
    pub excluded: Vec<String>,
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
    /// permission, ascending, one page.
    pub fn lookup_resources(
        &self,
        consistency: Consistency,
        lookup: &ResourceLookup<'_>,
    ) -> Result<Answer<Vec<String>>, QueryError> {
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
                value: Vec::new(),
                revision: state.revision,
            });
        };
        let found = Evaluator {
            schema,
            index: &state.index,
        }
        .lookup_resources(member, &s);
        let interner = state.index.interner(ty);
        Ok(Answer {
            value: paginate(found.iter().map(|idx| interner.name(idx)), lookup.page),
            revision: state.revision,
        })
    }

    /// The subjects of the lookup's type (or usersets) that have its permission on its
    /// resource, ordered by id; a wildcard appears as `*` with its exclusions.
    pub fn lookup_subjects(
        &self,
        consistency: Consistency,
        lookup: &SubjectLookup<'_>,
    ) -> Result<Answer<Vec<FoundSubject>>, QueryError> {
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
        let mut subjects = Vec::new();
        if let Some(resource_idx) = state.index.interner(ty).get(&lookup.resource.object_id) {
            let set: SubjectSet = Evaluator {
                schema,
                index: &state.index,
            }
            .lookup_subjects(member, resource_idx.0, target_ty, target_rel);
            let interner = state.index.interner(target_ty);
            let names = |bitmap: &roaring::RoaringBitmap| {
                let mut names: Vec<String> = bitmap
                    .iter()
                    .map(|i| interner.name(i).to_string())
                    .collect();
                names.sort_unstable();
                names
            };
            let mut all: Vec<FoundSubject> = set
                .concrete
                .iter()
                .map(|i| FoundSubject {
                    id: interner.name(i).to_string(),
                    excluded: Vec::new(),
                })
                .collect();
            if let Some(excluded) = &set.wildcard {
                all.push(FoundSubject {
                    id: "*".to_string(),
                    excluded: names(excluded),
                });
            }
            all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            let page = lookup.page;
            let skip = page
                .after
                .map_or(0, |after| all.partition_point(|s| s.id.as_str() <= after));
            subjects = all
                .into_iter()
                .skip(skip)
                .take(page.limit.unwrap_or(usize::MAX))
                .collect();
        }
        Ok(Answer {
            value: subjects,
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

/// Strictly-after-cursor, limited, ascending page of names.
fn paginate<'n>(names: impl Iterator<Item = &'n str>, page: Page<'_>) -> Vec<String> {
    let mut names: Vec<&str> = match page.after {
        Some(after) => names.filter(|n| *n > after).collect(),
        None => names.collect(),
    };
    let limit = page.limit.unwrap_or(usize::MAX);
    if limit < names.len() {
        names.select_nth_unstable(limit);
        names.truncate(limit);
    }
    names.sort_unstable();
    names.into_iter().map(str::to_string).collect()
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
pub(super) fn check_in(state: &State, args: &CheckArgs<'_>) -> Result<bool, QueryError> {
    let schema = &state.schema.as_ref().ok_or(QueryError::NoSchema)?.compiled;
    let ty = known_type(schema, args.resource_type)?;
    if !is_valid_object_id(args.resource_id) {
        return Err(SyntaxError::ObjectId(args.resource_id.to_string()).into());
    }
    let ty = ty.ok_or_else(|| InvalidError::UnknownType {
        name: args.resource_type.to_string(),
    })?;
    let member = resolve_member(schema, ty, args.permission)?;
    let Some(s) = resolve_subject(
        schema,
        &state.index,
        args.subject_type,
        args.subject_id,
        args.subject_relation,
    )?
    else {
        return Ok(false);
    };
    let Some(resource_idx) = state.index.interner(ty).get(args.resource_id) else {
        return Ok(false);
    };
    Ok(Evaluator {
        schema,
        index: &state.index,
    }
    .check(member, resource_idx.0, &s))
}
