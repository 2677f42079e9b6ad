//! Expand: the tree of sets behind one `resource#permission`, one level of usersets deep.

use pemba_schema::{AllowedSubject, CompiledSchema, Expr, MemberId, MemberKind};

use crate::index::Index;
use crate::tuple::{ObjectRef, SubjectRef};

/// A node of an expand tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandNode {
    /// The object whose set this node describes.
    pub object: ObjectRef,
    /// The relation or permission of that object.
    pub relation: String,
    /// How the set is made.
    pub kind: ExpandKind,
}

/// How an expand node's set is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandKind {
    /// Union of the children.
    Union(Vec<ExpandNode>),
    /// Intersection of the children.
    Intersection(Vec<ExpandNode>),
    /// The first child minus the second.
    Exclusion(Vec<ExpandNode>),
    /// The stored subjects of a relation (usersets not expanded further).
    Leaf(Vec<SubjectRef>),
}

pub(crate) struct Expander<'a> {
    pub(crate) schema: &'a CompiledSchema,
    pub(crate) index: &'a Index,
}

impl Expander<'_> {
    pub(crate) fn member(&self, member: MemberId, object_id: &str) -> ExpandNode {
        let m = self.schema.member(member);
        let object = ObjectRef::new(self.schema.definition(m.owner).name.clone(), object_id);
        match &m.kind {
            MemberKind::Relation(_) => ExpandNode {
                kind: ExpandKind::Leaf(self.leaf(member, object_id)),
                object,
                relation: m.name.clone(),
            },
            MemberKind::Permission(expr) => self.expr(expr, &object, &m.name),
        }
    }

    fn leaf(&self, relation: MemberId, object_id: &str) -> Vec<SubjectRef> {
        let owner = self.schema.member(relation).owner;
        let Some(resource) = self.index.interner(owner).get(object_id) else {
            return Vec::new();
        };
        let mut subjects = Vec::new();
        for kind in self.index.kinds(relation) {
            let ty = kind.subject.type_id();
            let type_name = &self.schema.definition(ty).name;
            match kind.subject {
                AllowedSubject::Wildcard(_) => {
                    if self.index.has_wildcard(kind, resource.0) {
                        subjects.push(SubjectRef::object(type_name.clone(), "*"));
                    }
                }
                AllowedSubject::Object(_) | AllowedSubject::Userset(..) => {
                    let relation = match kind.subject {
                        AllowedSubject::Userset(_, m) => Some(self.schema.member(m).name.clone()),
                        _ => None,
                    };
                    for idx in self.index.forward(kind, resource.0).iter() {
                        subjects.push(SubjectRef {
                            object: ObjectRef::new(
                                type_name.clone(),
                                self.index.interner(ty).name(idx),
                            ),
                            relation: relation.clone(),
                        });
                    }
                }
            }
        }
        subjects.sort();
        subjects
    }

    fn expr(&self, expr: &Expr, object: &ObjectRef, relation: &str) -> ExpandNode {
        let node = |kind| ExpandNode {
            object: object.clone(),
            relation: relation.to_string(),
            kind,
        };
        match expr {
            Expr::Nil => node(ExpandKind::Leaf(Vec::new())),
            Expr::Member(member) => self.member(*member, &object.object_id),
            Expr::Union(..) => {
                let mut children = Vec::new();
                self.flatten(expr, object, relation, &mut children, true);
                node(ExpandKind::Union(children))
            }
            Expr::Intersection(..) => {
                let mut children = Vec::new();
                self.flatten(expr, object, relation, &mut children, false);
                node(ExpandKind::Intersection(children))
            }
            Expr::Exclusion(a, b) => node(ExpandKind::Exclusion(vec![
                self.expr(a, object, relation),
                self.expr(b, object, relation),
            ])),
            Expr::Arrow(arrow) => {
                let mut children = Vec::new();
                let owner = self.schema.member(arrow.tupleset).owner;
                if let Some(resource) = self.index.interner(owner).get(&object.object_id) {
                    for (kind, ty, target) in self.index.arrow_hops(arrow) {
                        for parent in self.index.forward(kind, resource.0).iter() {
                            children
                                .push(self.member(target, self.index.interner(ty).name(parent)));
                        }
                    }
                }
                node(ExpandKind::Union(children))
            }
        }
    }

    /// Collects the operands of a chain of the same operator into one node's children.
    fn flatten(
        &self,
        expr: &Expr,
        object: &ObjectRef,
        relation: &str,
        out: &mut Vec<ExpandNode>,
        union: bool,
    ) {
        match (expr, union) {
            (Expr::Union(a, b), true) | (Expr::Intersection(a, b), false) => {
                self.flatten(a, object, relation, out, union);
                self.flatten(b, object, relation, out, union);
            }
            _ => out.push(self.expr(expr, object, relation)),
        }
    }
}
