//! Validation of writes, filters and schema changes against a compiled schema, with the
//! messages a person can act on.

use pemba_schema::{AllowedSubject, CompiledSchema, MemberId, TypeId};

use crate::error::InvalidError;
use crate::filter::RelationshipFilter;
use crate::index::Index;
use crate::store::RawTuple;
use crate::tuple::{validate_object, SyntaxError, Tuple};
use crate::write::Transaction;

pub(crate) fn resolve_type(schema: &CompiledSchema, name: &str) -> Result<TypeId, InvalidError> {
    schema
        .type_by_name(name)
        .ok_or_else(|| InvalidError::UnknownType {
            name: name.to_string(),
        })
}

pub(crate) fn resolve_member(
    schema: &CompiledSchema,
    ty: TypeId,
    name: &str,
) -> Result<MemberId, InvalidError> {
    schema
        .member_by_name(ty, name)
        .ok_or_else(|| InvalidError::UnknownMember {
            object_type: schema.definition(ty).name.clone(),
            name: name.to_string(),
        })
}

fn allowed_name(schema: &CompiledSchema, allowed: AllowedSubject) -> String {
    match allowed {
        AllowedSubject::Object(t) => schema.definition(t).name.clone(),
        AllowedSubject::Userset(t, m) => {
            format!("{}#{}", schema.definition(t).name, schema.member(m).name)
        }
        AllowedSubject::Wildcard(t) => format!("{}:*", schema.definition(t).name),
    }
}

/// The checks every written relationship passes: names exist, the relation is a relation,
/// and the subject's kind is one it allows.
pub fn validate_tuple(schema: &CompiledSchema, tuple: &Tuple) -> Result<(), InvalidError> {
    tuple.validate()?;
    validate_against_schema(schema, &RawTuple::of(tuple))
}

/// [`validate_tuple`] for a relationship borrowed from text (an import), without
/// allocating unless it is refused.
pub fn validate_raw(schema: &CompiledSchema, raw: &RawTuple<'_>) -> Result<(), InvalidError> {
    validate_object(raw.resource_type, raw.resource_id, false)?;
    if !pemba_schema::is_valid_member_name(raw.relation) {
        return Err(SyntaxError::Relation(raw.relation.to_string()).into());
    }
    let plain = raw.subject_relation.is_empty();
    validate_object(raw.subject_type, raw.subject_id, plain)?;
    if !plain && !pemba_schema::is_valid_member_name(raw.subject_relation) {
        return Err(SyntaxError::Relation(raw.subject_relation.to_string()).into());
    }
    validate_against_schema(schema, raw)
}

/// The schema's part of [`validate_tuple`], on names already known to be well formed.
fn validate_against_schema(
    schema: &CompiledSchema,
    raw: &RawTuple<'_>,
) -> Result<(), InvalidError> {
    let ty = resolve_type(schema, raw.resource_type)?;
    let member =
        schema
            .member_by_name(ty, raw.relation)
            .ok_or_else(|| InvalidError::UnknownRelation {
                tuple: Box::new(raw.to_tuple()),
            })?;
    let Some(allowed) = schema.allowed_subjects(member) else {
        return Err(InvalidError::NotARelation {
            tuple: Box::new(raw.to_tuple()),
        });
    };
    let subject_ty = resolve_type(schema, raw.subject_type)?;
    let wanted = match raw.subject_relation {
        _ if raw.subject_id == "*" => AllowedSubject::Wildcard(subject_ty),
        "" => AllowedSubject::Object(subject_ty),
        relation => match schema.member_by_name(subject_ty, relation) {
            Some(m) => AllowedSubject::Userset(subject_ty, m),
            None => {
                return Err(InvalidError::UnknownSubjectRelation {
                    tuple: Box::new(raw.to_tuple()),
                    relation: relation.to_string(),
                })
            }
        },
    };
    if !allowed.contains(&wanted) {
        return Err(InvalidError::SubjectNotAllowed {
            tuple: Box::new(raw.to_tuple()),
            subject: allowed_name(schema, wanted),
            allowed: allowed.iter().map(|a| allowed_name(schema, *a)).collect(),
        });
    }
    Ok(())
}

/// Schema checks of every part of a transaction; duplicates within it are refused.
pub(crate) fn validate_transaction(
    schema: &CompiledSchema,
    transaction: &Transaction,
) -> Result<(), InvalidError> {
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(transaction.updates.len());
    for update in &transaction.updates {
        validate_tuple(schema, &update.tuple)?;
        if !seen.insert(&update.tuple) {
            return Err(InvalidError::DuplicateInBatch(Box::new(
                update.tuple.clone(),
            )));
        }
    }
    for condition in &transaction.checks {
        let check = &condition.check;
        check.resource.validate(false)?;
        check.subject.validate()?;
        let ty = resolve_type(schema, &check.resource.object_type)?;
        resolve_member(schema, ty, &check.permission)?;
        let subject_ty = resolve_type(schema, &check.subject.object.object_type)?;
        if let Some(relation) = &check.subject.relation {
            resolve_member(schema, subject_ty, relation)?;
        }
    }
    for precondition in &transaction.preconditions {
        validate_filter(schema, &precondition.filter, false)?;
    }
    for filter in &transaction.delete_filters {
        validate_filter(schema, filter, true)?;
    }
    Ok(())
}

pub(crate) fn validate_filter(
    schema: &CompiledSchema,
    filter: &RelationshipFilter,
    for_delete: bool,
) -> Result<(), InvalidError> {
    if for_delete && filter.is_empty() {
        return Err(InvalidError::EmptyDeleteFilter);
    }
    if filter.resource_id.is_some() && filter.resource_type.is_none() {
        return Err(InvalidError::IdWithoutType);
    }
    if let Some(name) = &filter.resource_type {
        let ty = resolve_type(schema, name)?;
        if let Some(relation) = &filter.relation {
            resolve_member(schema, ty, relation)?;
        }
    }
    if let Some(id) = &filter.resource_id {
        if !crate::tuple::is_valid_object_id(id) {
            return Err(crate::tuple::SyntaxError::ObjectId(id.clone()).into());
        }
    }
    if let Some(subject) = &filter.subject {
        let ty = resolve_type(schema, &subject.subject_type)?;
        if let Some(relation) = subject.relation.as_deref().filter(|r| !r.is_empty()) {
            resolve_member(schema, ty, relation)?;
        }
    }
    Ok(())
}

/// Stored relationship kinds the new schema has no place for, one example each.
pub(crate) fn orphans(old: &CompiledSchema, index: &Index, new: &CompiledSchema) -> Vec<String> {
    let mut found = Vec::new();
    for (member, subject, resource_idx, subject_idx) in index.used_kinds() {
        let relation = old.member(member);
        let resource_type = &old.definition(relation.owner).name;
        let subject_ty = subject.type_id();
        let subject_type = &old.definition(subject_ty).name;
        let fits = new
            .type_by_name(resource_type)
            .and_then(|ty| new.member_by_name(ty, &relation.name))
            .and_then(|m| new.allowed_subjects(m))
            .is_some_and(|allowed| {
                let Some(new_subject_ty) = new.type_by_name(subject_type) else {
                    return false;
                };
                let wanted = match subject {
                    AllowedSubject::Object(_) => Some(AllowedSubject::Object(new_subject_ty)),
                    AllowedSubject::Wildcard(_) => Some(AllowedSubject::Wildcard(new_subject_ty)),
                    AllowedSubject::Userset(_, m) => new
                        .member_by_name(new_subject_ty, &old.member(m).name)
                        .map(|nm| AllowedSubject::Userset(new_subject_ty, nm)),
                };
                wanted.is_some_and(|w| allowed.contains(&w))
            });
        if !fits {
            let resource_id = index.interner(relation.owner).name(resource_idx);
            let subject_text = match subject {
                AllowedSubject::Wildcard(_) => format!("{subject_type}:*"),
                AllowedSubject::Object(_) => format!(
                    "{subject_type}:{}",
                    index.interner(subject_ty).name(subject_idx)
                ),
                AllowedSubject::Userset(_, m) => format!(
                    "{subject_type}:{}#{}",
                    index.interner(subject_ty).name(subject_idx),
                    old.member(m).name
                ),
            };
            found.push(format!(
                "{resource_type}:{resource_id}#{}@{subject_text}",
                relation.name
            ));
            if found.len() == 5 {
                break;
            }
        }
    }
    found
}
