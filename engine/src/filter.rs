//! Relationship filters, used by read, delete and preconditions.

use crate::store::RawTuple;
use crate::tuple::{ObjectRef, SubjectRef, Tuple};

/// Selects relationships; every `None` matches anything. At least one field must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelationshipFilter {
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource id (meaningful with a type).
    pub resource_id: Option<String>,
    /// Resource relation.
    pub relation: Option<String>,
    /// Subject constraint.
    pub subject: Option<SubjectFilter>,
}

/// Selects subjects by type, optionally id and relation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectFilter {
    /// Subject type.
    pub subject_type: String,
    /// Subject id (`*` matches the wildcard subject only).
    pub subject_id: Option<String>,
    /// `None`: any relation; `Some("")`: plain objects only; `Some(r)`: usersets `#r` only.
    pub relation: Option<String>,
}

impl RelationshipFilter {
    /// Whether `tuple` is selected.
    pub fn matches(&self, tuple: &Tuple) -> bool {
        self.matches_raw(&RawTuple::of(tuple))
    }

    /// Whether the borrowed fields of a stored key are selected: a scan tests every key it
    /// passes, so it tests them before it copies the few it keeps into a [`Tuple`].
    pub(crate) fn matches_raw(&self, tuple: &RawTuple<'_>) -> bool {
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        field(&self.resource_type, tuple.resource_type)
            && field(&self.resource_id, tuple.resource_id)
            && field(&self.relation, tuple.relation)
            && self.subject.as_ref().is_none_or(|s| {
                s.subject_type == tuple.subject_type
                    && field(&s.subject_id, tuple.subject_id)
                    && s.relation
                        .as_deref()
                        .is_none_or(|r| r == tuple.subject_relation)
            })
    }

    /// Whether no field is set (a filter that would select everything is refused).
    pub fn is_empty(&self) -> bool {
        self.resource_type.is_none()
            && self.resource_id.is_none()
            && self.relation.is_none()
            && self.subject.is_none()
    }
}

impl RelationshipFilter {
    /// Relationships on resources of `resource_type`.
    pub fn resource_type(resource_type: impl Into<String>) -> Self {
        RelationshipFilter {
            resource_type: Some(resource_type.into()),
            ..RelationshipFilter::default()
        }
    }

    /// Relationships on one resource.
    pub fn resource(resource: &ObjectRef) -> Self {
        Self::resource_type(resource.object_type.clone()).with_id(resource.object_id.clone())
    }

    /// Relationships whose subject matches `subject`, on any resource.
    pub fn subject(subject: SubjectFilter) -> Self {
        RelationshipFilter {
            subject: Some(subject),
            ..RelationshipFilter::default()
        }
    }

    /// Exactly `tuple`.
    pub fn exact(tuple: &Tuple) -> Self {
        Self::resource(&tuple.resource)
            .with_relation(tuple.relation.clone())
            .with_subject(SubjectFilter::exact(&tuple.subject))
    }

    /// Narrowed to resource id `id` (meaningful with a resource type).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    /// Narrowed to `relation`.
    pub fn with_relation(mut self, relation: impl Into<String>) -> Self {
        self.relation = Some(relation.into());
        self
    }

    /// Narrowed to subjects matching `subject`.
    pub fn with_subject(mut self, subject: SubjectFilter) -> Self {
        self.subject = Some(subject);
        self
    }
}

impl SubjectFilter {
    /// Every subject of `subject_type`: objects, usersets and the wildcard.
    pub fn of_type(subject_type: impl Into<String>) -> Self {
        SubjectFilter {
            subject_type: subject_type.into(),
            subject_id: None,
            relation: None,
        }
    }

    /// Exactly `subject`: a plain object matches plain objects only, a userset its relation.
    pub fn exact(subject: &SubjectRef) -> Self {
        SubjectFilter {
            subject_type: subject.object.object_type.clone(),
            subject_id: Some(subject.object.object_id.clone()),
            relation: Some(subject.relation.clone().unwrap_or_default()),
        }
    }

    /// Narrowed to subject id `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.subject_id = Some(id.into());
        self
    }
}
