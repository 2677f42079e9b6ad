//! A naive reference evaluator, straight from the definitions of SPEC section 3.
//!
//! Slow on purpose: it scans every relationship at every step. Tests compare the indexed
//! evaluator against it.

use pemba_schema::{CompiledSchema, Expr, MemberId, MemberKind};

use crate::tuple::{ObjectRef, SubjectRef, Tuple};

/// Relationships and a schema, evaluated by brute force.
pub struct Reference<'a> {
    /// The schema.
    pub schema: &'a CompiledSchema,
    /// Every stored relationship.
    pub tuples: &'a [Tuple],
}

impl Reference<'_> {
    /// Whether `subject` is in `resource#name`; `false` for unknown names.
    pub fn check(&self, resource: &ObjectRef, name: &str, subject: &SubjectRef) -> bool {
        let Some(ty) = self.schema.type_by_name(&resource.object_type) else {
            return false;
        };
        let Some(member) = self.schema.member_by_name(ty, name) else {
            return false;
        };
        self.member(member, resource, subject)
    }

    fn member(&self, member: MemberId, resource: &ObjectRef, subject: &SubjectRef) -> bool {
        let m = self.schema.member(member);
        match &m.kind {
            MemberKind::Relation(_) => self.tuples.iter().any(|t| {
                if t.resource != *resource || t.relation != m.name {
                    return false;
                }
                if t.subject == *subject {
                    return true;
                }
                if t.subject.is_wildcard()
                    && t.subject.object.object_type == subject.object.object_type
                    && subject.relation.is_none()
                {
                    return true;
                }
                match &t.subject.relation {
                    Some(relation) => self.check(&t.subject.object, relation, subject),
                    None => false,
                }
            }),
            MemberKind::Permission(expr) => self.expr(expr, resource, subject),
        }
    }

    fn expr(&self, expr: &Expr, resource: &ObjectRef, subject: &SubjectRef) -> bool {
        match expr {
            Expr::Nil => false,
            Expr::Member(member) => self.member(*member, resource, subject),
            Expr::Union(a, b) => self.expr(a, resource, subject) || self.expr(b, resource, subject),
            Expr::Intersection(a, b) => {
                self.expr(a, resource, subject) && self.expr(b, resource, subject)
            }
            Expr::Exclusion(a, b) => {
                self.expr(a, resource, subject) && !self.expr(b, resource, subject)
            }
            Expr::Arrow(arrow) => {
                let tupleset = &self.schema.member(arrow.tupleset).name;
                self.tuples.iter().any(|t| {
                    t.resource == *resource
                        && t.relation == *tupleset
                        && !t.subject.is_wildcard()
                        && self.check(&t.subject.object, &arrow.computed_name, subject)
                })
            }
        }
    }
}
