//! Relationship filters as SQL: the `WHERE` clause of a filter, and reads in the same
//! stable order and cursor as redb's (resource order, or subject order for a filter that
//! names only a subject).

use postgres::types::ToSql;
use postgres::GenericClient;

use super::pg_error;
use crate::error::StorageError;
use crate::filter::RelationshipFilter;
use crate::tuple::{ObjectRef, SubjectRef, Tuple};

/// The six columns, resource first.
pub(super) const COLUMNS: &str =
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation";

const BY_SUBJECT: &str =
    "subject_type, subject_id, subject_relation, resource_type, resource_id, relation";

/// A `WHERE` clause and its parameters, numbered from `$1`.
pub(super) struct Clause {
    pub(super) text: String,
    pub(super) params: Vec<String>,
}

impl Clause {
    fn push(&mut self, column: &str, value: &str) {
        self.params.push(value.to_string());
        let joiner = if self.text.is_empty() { "" } else { " AND " };
        self.text = format!("{}{joiner}{column} = ${}", self.text, self.params.len());
    }

    /// The parameters as the client takes them.
    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The clause selecting what `filter` selects (`true` for an empty filter).
pub(super) fn clause(filter: &RelationshipFilter) -> Clause {
    let mut clause = Clause {
        text: String::new(),
        params: Vec::new(),
    };
    if let Some(value) = &filter.resource_type {
        clause.push("resource_type", value);
    }
    if let Some(value) = &filter.resource_id {
        clause.push("resource_id", value);
    }
    if let Some(value) = &filter.relation {
        clause.push("relation", value);
    }
    if let Some(subject) = &filter.subject {
        clause.push("subject_type", &subject.subject_type);
        if let Some(value) = &subject.subject_id {
            clause.push("subject_id", value);
        }
        if let Some(value) = &subject.relation {
            clause.push("subject_relation", value);
        }
    }
    if clause.text.is_empty() {
        clause.text.push_str("true");
    }
    clause
}

/// A relationship from its six columns.
pub(super) fn tuple_of(row: &postgres::Row) -> Result<Tuple, StorageError> {
    let field = |i: usize| row.try_get::<_, &str>(i).map_err(pg_error);
    let subject_relation = field(5)?;
    Ok(Tuple {
        resource: ObjectRef::new(field(0)?, field(1)?),
        relation: field(2)?.to_string(),
        subject: SubjectRef {
            object: ObjectRef::new(field(3)?, field(4)?),
            relation: (!subject_relation.is_empty()).then(|| subject_relation.to_string()),
        },
    })
}

/// Relationships matching `filter` strictly after `after`, in the scan order redb uses
/// for the same filter, at most `limit`.
pub(super) fn select(
    client: &mut impl GenericClient,
    filter: &RelationshipFilter,
    after: Option<&Tuple>,
    limit: Option<usize>,
) -> Result<Vec<Tuple>, StorageError> {
    let by_subject = filter.resource_type.is_none() && filter.subject.is_some();
    let order = if by_subject { BY_SUBJECT } else { COLUMNS };
    let mut clause = clause(filter);
    if let Some(tuple) = after {
        let fields = [
            tuple.resource.object_type.as_str(),
            &tuple.resource.object_id,
            &tuple.relation,
            &tuple.subject.object.object_type,
            &tuple.subject.object.object_id,
            tuple.subject.relation.as_deref().unwrap_or(""),
        ];
        let ordered = if by_subject {
            [
                fields[3], fields[4], fields[5], fields[0], fields[1], fields[2],
            ]
        } else {
            fields
        };
        let first = clause.params.len() + 1;
        clause.params.extend(ordered.iter().map(|f| f.to_string()));
        let placeholders: Vec<String> = (first..first + 6).map(|n| format!("${n}")).collect();
        clause.text = format!(
            "{} AND ({order}) > ({})",
            clause.text,
            placeholders.join(", ")
        );
    }
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let query = format!(
        "SELECT {COLUMNS} FROM pemba_relationships WHERE {} ORDER BY {order}{limit}",
        clause.text
    );
    let rows = client.query(&query, &clause.refs()).map_err(pg_error)?;
    rows.iter().map(tuple_of).collect()
}

/// Whether anything matches `filter`.
pub(super) fn any(
    client: &mut impl GenericClient,
    filter: &RelationshipFilter,
) -> Result<bool, StorageError> {
    let clause = clause(filter);
    let query = format!(
        "SELECT EXISTS (SELECT 1 FROM pemba_relationships WHERE {})",
        clause.text
    );
    let row = client.query_one(&query, &clause.refs()).map_err(pg_error)?;
    row.try_get(0).map_err(pg_error)
}
