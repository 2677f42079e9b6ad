//! Wire types shared by several routes, in SpiceDB v1 JSON shapes (camelCase), and their
//! conversions to engine types. Conversion errors name the field and the value at fault.

use base64::Engine as _;
use pemba_engine::{
    Consistency, ObjectRef, Precondition, PreconditionKind, Revision, SubjectRef, Tuple,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `{"objectType", "objectId"}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    /// Object type.
    #[serde(default)]
    pub object_type: String,
    /// Object id.
    #[serde(default)]
    pub object_id: String,
}

/// `{"object": {...}, "optionalRelation": ""}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectReference {
    /// The subject object (id `*` for a wildcard).
    #[serde(default)]
    pub object: ObjectReference,
    /// The userset relation, empty for none.
    #[serde(default)]
    pub optional_relation: String,
}

/// `{"resource", "relation", "subject"}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relationship {
    /// Resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// Relation.
    #[serde(default)]
    pub relation: String,
    /// Subject.
    #[serde(default)]
    pub subject: SubjectReference,
    /// Caveats are not supported; present only to refuse them clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_caveat: Option<serde_json::Value>,
    /// Expiration is not supported; present only to refuse it clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_expires_at: Option<serde_json::Value>,
}

/// `{"token": "..."}`: a revision token or a cursor.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The opaque token.
    #[serde(default)]
    pub token: String,
}

impl Token {
    /// The token of `revision`.
    pub fn revision(revision: Revision) -> Self {
        Token {
            token: revision.token(),
        }
    }
}

/// SpiceDB's `Consistency` (one of its fields set; none means minimize latency).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireConsistency {
    /// Any revision the server has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimize_latency: Option<bool>,
    /// At least the token's revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least_as_fresh: Option<Token>,
    /// Exactly the token's revision (only the newest can be honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_exact_snapshot: Option<Token>,
    /// The newest revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_consistent: Option<bool>,
}

/// SpiceDB's `RelationshipFilter`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireRelationshipFilter {
    /// Resource type (empty: any).
    #[serde(default)]
    pub resource_type: String,
    /// Resource id (empty: any).
    #[serde(default)]
    pub optional_resource_id: String,
    /// Not supported: refused when non-empty.
    #[serde(default)]
    pub optional_resource_id_prefix: String,
    /// Relation (empty: any).
    #[serde(default)]
    pub optional_relation: String,
    /// Subject constraint.
    #[serde(default)]
    pub optional_subject_filter: Option<WireSubjectFilter>,
}

/// SpiceDB's `SubjectFilter`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireSubjectFilter {
    /// Subject type.
    #[serde(default)]
    pub subject_type: String,
    /// Subject id (empty: any).
    #[serde(default)]
    pub optional_subject_id: String,
    /// Absent: any relation; `{"relation": ""}`: plain objects; `{"relation": "r"}`: `#r`.
    #[serde(default)]
    pub optional_relation: Option<RelationFilter>,
}

/// `{"relation": "..."}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelationFilter {
    /// The relation; empty for none.
    #[serde(default)]
    pub relation: String,
}

/// SpiceDB's `Precondition`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WirePrecondition {
    /// `OPERATION_MUST_MATCH` or `OPERATION_MUST_NOT_MATCH`.
    pub operation: String,
    /// The relationships concerned.
    pub filter: WireRelationshipFilter,
}

/// Converts an object reference named `field` (no wildcard: a resource is one object).
pub fn object(reference: &ObjectReference, field: &str) -> Result<ObjectRef, ApiError> {
    let object = ObjectRef::new(&reference.object_type, &reference.object_id);
    object
        .validate(false)
        .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
    Ok(object)
}

/// Converts a subject reference named `field`; relation `...` (Zanzibar's ellipsis, as in
/// the text form) means none.
pub fn subject(reference: &SubjectReference, field: &str) -> Result<SubjectRef, ApiError> {
    let relation = non_empty(&reference.optional_relation).filter(|r| *r != "...");
    let subject = SubjectRef {
        object: ObjectRef::new(&reference.object.object_type, &reference.object.object_id),
        relation: relation.map(str::to_string),
    };
    subject
        .validate()
        .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
    Ok(subject)
}

/// Converts a relationship named `field`, refusing caveats and expiration.
pub fn relationship(relationship: &Relationship, field: &str) -> Result<Tuple, ApiError> {
    if relationship
        .optional_caveat
        .as_ref()
        .is_some_and(|c| !c.is_null())
    {
        return Err(ApiError::invalid(format!(
            "{field}.optionalCaveat: caveats are not supported"
        )));
    }
    if relationship
        .optional_expires_at
        .as_ref()
        .is_some_and(|c| !c.is_null())
    {
        return Err(ApiError::invalid(format!(
            "{field}.optionalExpiresAt: expiration is not supported"
        )));
    }
    let tuple = Tuple::new(
        object(&relationship.resource, &format!("{field}.resource"))?,
        &relationship.relation,
        subject(&relationship.subject, &format!("{field}.subject"))?,
    );
    tuple
        .validate()
        .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
    Ok(tuple)
}

/// The wire form of a stored relationship.
pub fn to_relationship(tuple: &Tuple) -> Relationship {
    Relationship {
        resource: to_object(&tuple.resource),
        relation: tuple.relation.clone(),
        subject: to_subject(&tuple.subject),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

/// The wire form of an object.
pub fn to_object(object: &ObjectRef) -> ObjectReference {
    ObjectReference {
        object_type: object.object_type.clone(),
        object_id: object.object_id.clone(),
    }
}

/// The wire form of a subject.
pub fn to_subject(subject: &SubjectRef) -> SubjectReference {
    SubjectReference {
        object: to_object(&subject.object),
        optional_relation: subject.relation.clone().unwrap_or_default(),
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// Reads a revision token named `field`.
pub fn revision(token: &Token, field: &str) -> Result<Revision, ApiError> {
    Revision::from_token(&token.token).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

/// Converts an optional consistency; none (or `minimizeLatency`) is minimize latency.
pub fn consistency(consistency: Option<&WireConsistency>) -> Result<Consistency, ApiError> {
    let Some(c) = consistency else {
        return Ok(Consistency::MinimizeLatency);
    };
    let set = [
        c.minimize_latency == Some(true),
        c.at_least_as_fresh.is_some(),
        c.at_exact_snapshot.is_some(),
        c.fully_consistent == Some(true),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set > 1 {
        return Err(ApiError::invalid(
            "consistency: set only one of `minimizeLatency`, `atLeastAsFresh`, `atExactSnapshot`, `fullyConsistent`",
        ));
    }
    if let Some(token) = &c.at_least_as_fresh {
        return Ok(Consistency::AtLeastAsFresh(revision(
            token,
            "consistency.atLeastAsFresh",
        )?));
    }
    if let Some(token) = &c.at_exact_snapshot {
        return Ok(Consistency::AtExactSnapshot(revision(
            token,
            "consistency.atExactSnapshot",
        )?));
    }
    if c.fully_consistent == Some(true) {
        return Ok(Consistency::FullyConsistent);
    }
    Ok(Consistency::MinimizeLatency)
}

/// Converts a relationship filter named `field`.
pub fn filter(
    filter: &WireRelationshipFilter,
    field: &str,
) -> Result<pemba_engine::RelationshipFilter, ApiError> {
    if !filter.optional_resource_id_prefix.is_empty() {
        return Err(ApiError::invalid(format!(
            "{field}.optionalResourceIdPrefix: resource id prefixes are not supported"
        )));
    }
    if filter.resource_type.is_empty() && !filter.optional_resource_id.is_empty() {
        return Err(ApiError::invalid(format!(
            "{field}.optionalResourceId: needs `resourceType`"
        )));
    }
    let subject = match &filter.optional_subject_filter {
        None => None,
        Some(s) => {
            if s.subject_type.is_empty() {
                return Err(ApiError::invalid(format!(
                    "{field}.optionalSubjectFilter.subjectType: required"
                )));
            }
            Some(pemba_engine::SubjectFilter {
                subject_type: s.subject_type.clone(),
                subject_id: non_empty(&s.optional_subject_id).map(str::to_string),
                relation: s.optional_relation.as_ref().map(|r| r.relation.clone()),
            })
        }
    };
    Ok(pemba_engine::RelationshipFilter {
        resource_type: non_empty(&filter.resource_type).map(str::to_string),
        resource_id: non_empty(&filter.optional_resource_id).map(str::to_string),
        relation: non_empty(&filter.optional_relation).map(str::to_string),
        subject,
    })
}

/// The wire form of an engine filter (used by the CLI client).
pub fn to_filter(filter: &pemba_engine::RelationshipFilter) -> WireRelationshipFilter {
    WireRelationshipFilter {
        resource_type: filter.resource_type.clone().unwrap_or_default(),
        optional_resource_id: filter.resource_id.clone().unwrap_or_default(),
        optional_resource_id_prefix: String::new(),
        optional_relation: filter.relation.clone().unwrap_or_default(),
        optional_subject_filter: filter.subject.as_ref().map(|s| WireSubjectFilter {
            subject_type: s.subject_type.clone(),
            optional_subject_id: s.subject_id.clone().unwrap_or_default(),
            optional_relation: s
                .relation
                .clone()
                .map(|relation| RelationFilter { relation }),
        }),
    }
}

/// Converts preconditions named `field`, at most `max`.
pub fn preconditions(
    preconditions: &[WirePrecondition],
    max: usize,
) -> Result<Vec<Precondition>, ApiError> {
    if preconditions.len() > max {
        return Err(ApiError::invalid(format!(
            "optionalPreconditions: {} preconditions exceed the limit of {max} per request",
            preconditions.len()
        )));
    }
    preconditions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let field = format!("optionalPreconditions[{i}]");
            let kind = match p.operation.as_str() {
                "OPERATION_MUST_MATCH" => PreconditionKind::MustMatch,
                "OPERATION_MUST_NOT_MATCH" => PreconditionKind::MustNotMatch,
                other => {
                    return Err(ApiError::invalid(format!(
                        "{field}.operation: expected `OPERATION_MUST_MATCH` or `OPERATION_MUST_NOT_MATCH`, found `{other}`"
                    )))
                }
            };
            Ok(Precondition {
                kind,
                filter: filter(&p.filter, &format!("{field}.filter"))?,
            })
        })
        .collect()
}

/// An opaque cursor of `kind` carrying `position` (URL-safe base64, so it survives URLs).
pub fn encode_cursor(kind: &str, position: &str) -> Token {
    let mut token = Token {
        token: String::new(),
    };
    encode_cursor_into(kind, position, &mut Vec::new(), &mut token.token);
    token
}

/// Appends [`encode_cursor`]`(kind, position)`'s token text to `out`, using `scratch` (cleared
/// first) for the plain text: a caller writing thousands of cursors reuses both buffers.
pub fn encode_cursor_into(kind: &str, position: &str, scratch: &mut Vec<u8>, out: &mut String) {
    scratch.clear();
    scratch.extend_from_slice(kind.as_bytes());
    scratch.push(b':');
    scratch.extend_from_slice(position.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(scratch, out);
}

/// Reads a cursor made by [`encode_cursor`] for `kind`; empty tokens mean "from the start".
pub fn decode_cursor(cursor: Option<&Token>, kind: &str) -> Result<Option<String>, ApiError> {
    let Some(cursor) = cursor.filter(|c| !c.token.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid(format!(
            "optionalCursor: `{}` is not a cursor of this request; pass an `afterResultCursor` from the same kind of request",
            cursor.token
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&cursor.token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let position = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(bad)?;
    Ok(Some(position.to_string()))
}

/// Checks an optional page size named `field` against `max`; zero or absent is `None`.
pub fn page_size(limit: Option<u64>, max: usize, field: &str) -> Result<Option<usize>, ApiError> {
    match limit {
        None | Some(0) => Ok(None),
        Some(n) if n > max as u64 => Err(ApiError::invalid(format!(
            "{field}: {n} exceeds the limit of {max}"
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}
