//! Protobuf messages to and from the HTTP layer's wire types, so both protocols share one
//! validation ([`crate::wire`]) and one set of tokens and cursors: a token or cursor from
//! one protocol is valid on the other.

use pemba_engine::{Consistency, ObjectRef, Precondition, Revision, SubjectRef, Tuple};
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::Status;

use super::status::{self, reason};
use crate::error::ApiError;
use crate::wire;

/// An HTTP-layer error as a status, with `reason` when it is a request fault.
fn refused(error: ApiError, reason: Option<&str>) -> Status {
    match reason {
        Some(reason) if error.code == crate::error::Code::InvalidArgument => {
            status::invalid(error.message, reason)
        }
        _ => error.into(),
    }
}

/// The wire form of an optional object reference (absent: empty, which validation refuses).
pub fn wire_object(object: Option<&pb::ObjectReference>) -> wire::ObjectReference {
    object
        .map(|o| wire::ObjectReference {
            object_type: o.object_type.clone(),
            object_id: o.object_id.clone(),
        })
        .unwrap_or_default()
}

/// The wire form of an optional subject reference.
pub fn wire_subject(subject: Option<&pb::SubjectReference>) -> wire::SubjectReference {
    subject
        .map(|s| wire::SubjectReference {
            object: wire_object(s.object.as_ref()),
            optional_relation: s.optional_relation.clone(),
        })
        .unwrap_or_default()
}

/// An object named `field`.
pub fn object(object: Option<&pb::ObjectReference>, field: &str) -> Result<ObjectRef, Status> {
    wire::object(&wire_object(object), field).map_err(Status::from)
}

/// A subject named `field`.
pub fn subject(subject: Option<&pb::SubjectReference>, field: &str) -> Result<SubjectRef, Status> {
    wire::subject(&wire_subject(subject), field).map_err(Status::from)
}

/// Refuses a non-empty caveat context: caveats are not supported.
pub fn refuse_context(context: Option<&prost_types::Struct>, field: &str) -> Result<(), Status> {
    match context {
        Some(context) if !context.fields.is_empty() => Err(status::unimplemented(format!(
            "{field}: caveat context is not supported"
        ))),
        _ => Ok(()),
    }
}

/// A relationship named `field`; caveats and expiration are refused as unimplemented.
pub fn relationship(relationship: &pb::Relationship, field: &str) -> Result<Tuple, Status> {
    if relationship.optional_caveat.is_some() {
        return Err(status::unimplemented(format!(
            "{field}.optional_caveat: caveats are not supported"
        )));
    }
    if relationship.optional_expires_at.is_some() {
        return Err(status::unimplemented(format!(
            "{field}.optional_expires_at: expiration is not supported"
        )));
    }
    let wire = wire::Relationship {
        resource: wire_object(relationship.resource.as_ref()),
        relation: relationship.relation.clone(),
        subject: wire_subject(relationship.subject.as_ref()),
        optional_caveat: None,
        optional_expires_at: None,
    };
    wire::relationship(&wire, field).map_err(Status::from)
}

/// The message form of an object.
pub fn to_object(object: &ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object.object_type.clone(),
        object_id: object.object_id.clone(),
    }
}

/// The message form of a subject (no relation: empty, as SpiceDB sends it).
pub fn to_subject(subject: &SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(to_object(&subject.object)),
        optional_relation: subject.relation.clone().unwrap_or_default(),
    }
}

/// The message form of a stored relationship.
pub fn to_relationship(tuple: &Tuple) -> pb::Relationship {
    pb::Relationship {
        resource: Some(to_object(&tuple.resource)),
        relation: tuple.relation.clone(),
        subject: Some(to_subject(&tuple.subject)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

/// A check's answer as CheckPermission's and CheckBulkPermissions' `permissionship`.
pub fn permissionship(allowed: bool) -> i32 {
    if allowed {
        pb::check_permission_response::Permissionship::HasPermission as i32
    } else {
        pb::check_permission_response::Permissionship::NoPermission as i32
    }
}

/// The token of `revision`, the same text the HTTP API sends.
pub fn token(revision: Revision) -> Option<pb::ZedToken> {
    Some(pb::ZedToken {
        token: revision.token(),
    })
}

/// A revision token named `field`.
pub fn revision(token: &pb::ZedToken, field: &str) -> Result<Revision, Status> {
    wire::revision(
        &wire::Token {
            token: token.token.clone(),
        },
        field,
    )
    .map_err(Status::from)
}

/// An optional consistency (none: minimize latency).
pub fn consistency(consistency: Option<&pb::Consistency>) -> Result<Consistency, Status> {
    use pb::consistency::Requirement;
    let token = |t: &pb::ZedToken| wire::Token {
        token: t.token.clone(),
    };
    let wire = match consistency.and_then(|c| c.requirement.as_ref()) {
        None => return Ok(Consistency::MinimizeLatency),
        Some(Requirement::MinimizeLatency(set)) => wire::WireConsistency {
            minimize_latency: Some(*set),
            ..Default::default()
        },
        Some(Requirement::AtLeastAsFresh(t)) => wire::WireConsistency {
            at_least_as_fresh: Some(token(t)),
            ..Default::default()
        },
        Some(Requirement::AtExactSnapshot(t)) => wire::WireConsistency {
            at_exact_snapshot: Some(token(t)),
            ..Default::default()
        },
        Some(Requirement::FullyConsistent(set)) => wire::WireConsistency {
            fully_consistent: Some(*set),
            ..Default::default()
        },
    };
    wire::consistency(Some(&wire)).map_err(Status::from)
}

/// The wire form of a relationship filter.
pub fn wire_filter(filter: &pb::RelationshipFilter) -> wire::WireRelationshipFilter {
    wire::WireRelationshipFilter {
        resource_type: filter.resource_type.clone(),
        optional_resource_id: filter.optional_resource_id.clone(),
        optional_resource_id_prefix: filter.optional_resource_id_prefix.clone(),
        optional_relation: filter.optional_relation.clone(),
        optional_subject_filter: filter.optional_subject_filter.as_ref().map(|s| {
            wire::WireSubjectFilter {
                subject_type: s.subject_type.clone(),
                optional_subject_id: s.optional_subject_id.clone(),
                optional_relation: s.optional_relation.as_ref().map(|r| wire::RelationFilter {
                    relation: r.relation.clone(),
                }),
            }
        }),
    }
}

/// A relationship filter named `field` (absent: matches everything).
pub fn filter(
    filter: Option<&pb::RelationshipFilter>,
    field: &str,
) -> Result<pemba_engine::RelationshipFilter, Status> {
    match filter {
        None => Ok(pemba_engine::RelationshipFilter::default()),
        Some(f) => wire::filter(&wire_filter(f), field)
            .map_err(|e| refused(e, Some(reason::INVALID_FILTER))),
    }
}

/// Preconditions, at most `max`.
pub fn preconditions(
    preconditions: &[pb::Precondition],
    max: usize,
) -> Result<Vec<Precondition>, Status> {
    if preconditions.len() > max {
        return Err(status::invalid(
            format!(
                "optional_preconditions: {} preconditions exceed the limit of {max} per request",
                preconditions.len()
            ),
            reason::TOO_MANY_PRECONDITIONS_IN_REQUEST,
        ));
    }
    let wire = preconditions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let operation = match pb::precondition::Operation::try_from(p.operation) {
                Ok(pb::precondition::Operation::MustMatch) => "OPERATION_MUST_MATCH",
                Ok(pb::precondition::Operation::MustNotMatch) => "OPERATION_MUST_NOT_MATCH",
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "optional_preconditions[{i}].operation: expected OPERATION_MUST_MATCH or OPERATION_MUST_NOT_MATCH, found {}",
                        p.operation
                    )))
                }
            };
            let Some(filter) = &p.filter else {
                return Err(status::invalid(
                    format!("optional_preconditions[{i}].filter: required"),
                    reason::EMPTY_PRECONDITION,
                ));
            };
            Ok(wire::WirePrecondition {
                operation: operation.to_string(),
                filter: wire_filter(filter),
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    wire::preconditions(&wire, max).map_err(Status::from)
}

/// A page size named `field`, at most `max` (zero: none).
pub fn page_size(limit: u32, max: usize, field: &str) -> Result<Option<usize>, Status> {
    wire::page_size(Some(u64::from(limit)), max, field)
        .map_err(|e| refused(e, Some(reason::EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT)))
}

/// The position in a cursor of `kind` (the HTTP API's cursors, so both protocols share them).
pub fn cursor(cursor: Option<&pb::Cursor>, kind: &str) -> Result<Option<String>, Status> {
    let token = cursor.map(|c| wire::Token {
        token: c.token.clone(),
    });
    wire::decode_cursor(token.as_ref(), kind).map_err(|e| refused(e, Some(reason::INVALID_CURSOR)))
}

/// A cursor after the relationship a cursor of `kind` names.
pub fn tuple_cursor(cursor: Option<&pb::Cursor>, kind: &str) -> Result<Option<Tuple>, Status> {
    let token = cursor.map(|c| wire::Token {
        token: c.token.clone(),
    });
    crate::routes::relationships::tuple_cursor(token.as_ref(), kind)
        .map_err(|e| refused(e, Some(reason::INVALID_CURSOR)))
}

/// A cursor of `kind` at `position`.
pub fn to_cursor(kind: &str, position: &str) -> Option<pb::Cursor> {
    Some(pb::Cursor {
        token: wire::encode_cursor(kind, position).token,
    })
}
