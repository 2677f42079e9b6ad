//! Relationship filters, used by read, delete and preconditions.

use crate::tuple::Tuple;

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
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        field(&self.resource_type, &tuple.resource.object_type)
            && field(&self.resource_id, &tuple.resource.object_id)
            && field(&self.relation, &tuple.relation)
            && self.subject.as_ref().is_none_or(|s| {
                s.subject_type == tuple.subject.object.object_type
                    && field(&s.subject_id, &tuple.subject.object.object_id)
                    && s.relation
                        .as_deref()
                        .is_none_or(|r| r == tuple.subject.relation.as_deref().unwrap_or(""))
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
