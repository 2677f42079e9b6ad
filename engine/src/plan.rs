//! Check plans: what a check of one member for one kind of subject probes, compiled once
//! per schema, so a check is a few posting probes with no expression walk.
//!
//! The evaluator answers `resource#member@subject` by walking the member's expression and,
//! at every relation, matching each of its allowed subject kinds against the subject. For
//! a given (member, subject kind) that walk is the same every time; only the resource and
//! the subject's index change. [`Plans`] does the walk once per pair when the schema is
//! loaded and keeps what is left: the row columns to probe for the subject, the wildcard
//! columns, and the columns an arrow or a userset follows to another type's rows, with the
//! boolean structure only where the expression has one. Pairs no subject of that kind can
//! reach have no plan and answer false at once.
//!
//! A probe for the subject reads whichever side of the relationship is cheaper: the
//! subject's reverse posting when it holds its ids inline, else the row's. On a store far
//! larger than the cache this is what keeps a check to a few dependent misses: the target
//! rows of `workspace->member`, and the bitmaps of a workspace's thousands of members
//! behind them, are mostly not read at all.
//!
//! Every answer is the evaluator's: a plan follows a column of many objects the way
//! [`Evaluator::any_contains`] does (probing each below [`ITERATE_BELOW`], otherwise
//! handing the column to it), and a schema whose plans would grow past [`MAX_NODES`]
//! (permissions reusing each other many times over) is answered by the evaluator itself.

mod names;

pub(crate) use names::SchemaNames;

use pemba_schema::{AllowedSubject, CompiledSchema, Expr, MemberId, MemberKind, TypeId};

use crate::eval::{Evaluator, Subject, ITERATE_BELOW};
use crate::index::{Index, SubjectRel};
use crate::posting::Rows;

/// The budget of one member's plan for one subject kind, in nodes held plus members
/// visited while compiling it; past it, that pair is left to the evaluator. Permissions
/// that name the same member several times are copied into the plan (and visited) at each
/// use, so a plan can be larger than its expression; real schemas stay in the tens.
const MAX_NODES: usize = 256;

/// The plans of one schema, with its names behind hash tables; built with the index
/// layout they probe ([`Plans::new`]) and swapped with it.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    /// Type and member names to ids.
    pub(crate) names: SchemaNames,
    /// Per member id: its type and a plan per subject kind that can reach it (a handful
    /// on real schemas, searched in order).
    by_member: Vec<MemberPlans>,
}

#[derive(Debug)]
struct MemberPlans {
    /// The member's own type, whose rows the plans start from.
    owner: TypeId,
    plans: Vec<(SubjectKey, Plan)>,
}

/// The kind of subject a plan is for: its type, and the member of a userset subject.
/// A wildcard subject (`user:*`) uses the plain object's plan: it has no index, so the
/// plan's probes for one never match and only its wildcard columns can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SubjectKey {
    ty: TypeId,
    member: Option<MemberId>,
}

impl SubjectKey {
    fn of(subject: &Subject) -> Self {
        SubjectKey {
            ty: subject.ty,
            member: match subject.rel {
                SubjectRel::Member(member) => Some(member),
                SubjectRel::Object | SubjectRel::Wildcard => None,
            },
        }
    }
}

#[derive(Debug)]
enum Plan {
    Probe(Node),
    /// Too large to flatten: the evaluator answers.
    Evaluate,
}

/// One step of a plan, on one object's row.
#[derive(Debug, PartialEq)]
enum Node {
    /// The posting in this column holds the subject's index. The column is kind `kind`
    /// of `relation`, whose reverse postings say the same from the subject's side.
    Holds {
        column: usize,
        relation: MemberId,
        kind: usize,
    },
    /// This wildcard column is set (`type:*` is related).
    Wildcard(usize),
    /// Some object in this column, of type `ty`, has `member` for the subject, which
    /// `then` decides on that object's row.
    Via {
        column: usize,
        ty: TypeId,
        member: MemberId,
        then: Box<Node>,
    },
    /// Any of these (two or more).
    Any(Vec<Node>),
    /// All of these (two or more).
    All(Vec<Node>),
    /// The first and not the second.
    Except(Box<Node>, Box<Node>),
}

/// A plan that outgrew [`MAX_NODES`].
struct TooLarge;

/// What compiling one (member, subject kind) gives: `None` when no subject of the kind
/// can have the member, whatever is stored.
type Compiled = Result<Option<Node>, TooLarge>;

impl Plans {
    /// Compiles every (member, subject kind) pair of `schema` that a subject can reach,
    /// against `index`'s layout (its columns depend on the schema alone, so the plans
    /// hold while relationships come and go).
    pub(crate) fn new(schema: &CompiledSchema, index: &Index) -> Self {
        let compiler = Compiler { schema, index };
        let mut reach: Vec<Option<Vec<SubjectKey>>> = vec![None; schema.members.len()];
        let by_member = (0..schema.members.len())
            .map(|member| {
                let member = MemberId(member as u32);
                let keys = compiler.reach(member, &mut reach);
                let plans = keys
                    .into_iter()
                    .filter_map(|key| {
                        let mut budget = MAX_NODES;
                        match compiler.member(member, key, &mut budget) {
                            Ok(None) => None,
                            Ok(Some(node)) => Some((key, Plan::Probe(node))),
                            Err(TooLarge) => Some((key, Plan::Evaluate)),
                        }
                    })
                    .collect();
                MemberPlans {
                    owner: schema.member(member).owner,
                    plans,
                }
            })
            .collect();
        Plans {
            names: SchemaNames::new(schema),
            by_member,
        }
    }

    /// Whether `subject` has `member` on object `resource` of the member's type: the
    /// evaluator's answer, from the plan.
    pub(crate) fn check(
        &self,
        evaluator: &Evaluator<'_>,
        member: MemberId,
        resource: u32,
        subject: &Subject,
    ) -> bool {
        let Some(member_plans) = self.by_member.get(member.0 as usize) else {
            return evaluator.check(member, resource, subject);
        };
        let key = SubjectKey::of(subject);
        let Some((_, plan)) = member_plans.plans.iter().find(|(k, _)| *k == key) else {
            return false;
        };
        match plan {
            Plan::Evaluate => evaluator.check(member, resource, subject),
            Plan::Probe(node) => {
                let Some(rows) = evaluator.index.rows(member_plans.owner) else {
                    return false;
                };
                Run { evaluator, subject }.node(node, rows, resource)
            }
        }
    }
}

/// Builds plans against one schema and index layout.
struct Compiler<'a> {
    schema: &'a CompiledSchema,
    index: &'a Index,
}

/// Takes one node from the budget.
fn spend(budget: &mut usize) -> Result<(), TooLarge> {
    *budget = budget.checked_sub(1).ok_or(TooLarge)?;
    Ok(())
}

/// Wraps two or more nodes; one is itself, none is `None`.
fn gather(mut nodes: Vec<Node>, wrap: fn(Vec<Node>) -> Node) -> Option<Node> {
    match nodes.len() {
        0 => None,
        1 => nodes.pop(),
        _ => Some(wrap(nodes)),
    }
}

/// `node` added to `nodes`, flattening a nested node of the same kind (`a + (b + c)`).
fn push_flat(nodes: &mut Vec<Node>, node: Node, same: fn(Node) -> Result<Vec<Node>, Node>) {
    match same(node) {
        Ok(inner) => nodes.extend(inner),
        Err(node) => nodes.push(node),
    }
}

fn any_parts(node: Node) -> Result<Vec<Node>, Node> {
    match node {
        Node::Any(nodes) => Ok(nodes),
        other => Err(other),
    }
}

fn all_parts(node: Node) -> Result<Vec<Node>, Node> {
    match node {
        Node::All(nodes) => Ok(nodes),
        other => Err(other),
    }
}

impl Compiler<'_> {
    /// The subject kinds that can have `member` on some object, whatever is stored (a
    /// superset of those with a plan: an exclusion's right side is included).
    fn reach(&self, member: MemberId, memo: &mut Vec<Option<Vec<SubjectKey>>>) -> Vec<SubjectKey> {
        if let Some(Some(known)) = memo.get(member.0 as usize) {
            return known.clone();
        }
        let mut keys = Vec::new();
        let add = |keys: &mut Vec<SubjectKey>, more: Vec<SubjectKey>| {
            for key in more {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        };
        match &self.schema.member(member).kind {
            MemberKind::Relation(allowed) => {
                for subject in allowed {
                    match *subject {
                        AllowedSubject::Object(ty) | AllowedSubject::Wildcard(ty) => {
                            add(&mut keys, vec![SubjectKey { ty, member: None }]);
                        }
                        AllowedSubject::Userset(ty, inner) => {
                            let key = SubjectKey {
                                ty,
                                member: Some(inner),
                            };
                            add(&mut keys, vec![key]);
                            let inner_keys = self.reach(inner, memo);
                            add(&mut keys, inner_keys);
                        }
                    }
                }
            }
            MemberKind::Permission(expr) => {
                let mut members = Vec::new();
                expr_members(expr, &mut members);
                for inner in members {
                    let inner_keys = self.reach(inner, memo);
                    add(&mut keys, inner_keys);
                }
            }
        }
        if let Some(slot) = memo.get_mut(member.0 as usize) {
            *slot = Some(keys.clone());
        }
        keys
    }

    fn member(&self, member: MemberId, key: SubjectKey, budget: &mut usize) -> Compiled {
        // Every visit costs, matched or not: permissions sharing members form a DAG whose
        // walk, unbounded, is exponential in its depth.
        spend(budget)?;
        match &self.schema.member(member).kind {
            MemberKind::Relation(_) => self.relation(member, key, budget),
            MemberKind::Permission(expr) => self.expr(expr, key, budget),
        }
    }

    /// The evaluator's `check_relation`, unrolled over the relation's subject kinds.
    fn relation(&self, relation: MemberId, key: SubjectKey, budget: &mut usize) -> Compiled {
        let mut nodes = Vec::new();
        for (position, kind) in self.index.kinds(relation).iter().enumerate() {
            let column = kind.column();
            let holds = Node::Holds {
                column,
                relation,
                kind: position,
            };
            match kind.subject {
                AllowedSubject::Wildcard(ty) => {
                    if ty == key.ty && key.member.is_none() {
                        spend(budget)?;
                        nodes.push(Node::Wildcard(column));
                    }
                }
                AllowedSubject::Object(ty) => {
                    if ty == key.ty && key.member.is_none() {
                        spend(budget)?;
                        nodes.push(holds);
                    }
                }
                AllowedSubject::Userset(ty, inner) => {
                    if ty == key.ty && key.member == Some(inner) {
                        spend(budget)?;
                        nodes.push(holds);
                    }
                    if let Some(then) = self.member(inner, key, budget)? {
                        spend(budget)?;
                        nodes.push(Node::Via {
                            column,
                            ty,
                            member: inner,
                            then: Box::new(then),
                        });
                    }
                }
            }
        }
        Ok(gather(nodes, Node::Any))
    }

    fn expr(&self, expr: &Expr, key: SubjectKey, budget: &mut usize) -> Compiled {
        Ok(match expr {
            Expr::Nil => None,
            Expr::Member(member) => self.member(*member, key, budget)?,
            Expr::Union(a, b) => {
                let mut nodes = Vec::new();
                for side in [a, b] {
                    if let Some(node) = self.expr(side, key, budget)? {
                        push_flat(&mut nodes, node, any_parts);
                    }
                }
                gather(nodes, Node::Any)
            }
            Expr::Intersection(a, b) => {
                let (Some(a), Some(b)) = (self.expr(a, key, budget)?, self.expr(b, key, budget)?)
                else {
                    return Ok(None);
                };
                spend(budget)?;
                let mut nodes = Vec::new();
                push_flat(&mut nodes, a, all_parts);
                push_flat(&mut nodes, b, all_parts);
                Some(Node::All(nodes))
            }
            Expr::Exclusion(a, b) => {
                let Some(a) = self.expr(a, key, budget)? else {
                    return Ok(None);
                };
                match self.expr(b, key, budget)? {
                    None => Some(a),
                    Some(b) => {
                        spend(budget)?;
                        Some(Node::Except(Box::new(a), Box::new(b)))
                    }
                }
            }
            Expr::Arrow(arrow) => {
                // The evaluator's arrow: each subject kind of the tupleset whose type has
                // the computed member, followed to that member.
                let mut nodes = Vec::new();
                for (kind, ty, target) in self.index.arrow_hops(arrow) {
                    if let Some(then) = self.member(target, key, budget)? {
                        spend(budget)?;
                        nodes.push(Node::Via {
                            column: kind.column(),
                            ty,
                            member: target,
                            then: Box::new(then),
                        });
                    }
                }
                gather(nodes, Node::Any)
            }
        })
    }
}

/// The members an expression names, arrows' targets included.
fn expr_members(expr: &Expr, out: &mut Vec<MemberId>) {
    match expr {
        Expr::Nil => {}
        Expr::Member(member) => out.push(*member),
        Expr::Arrow(arrow) => out.extend(arrow.targets.iter().map(|(_, target)| *target)),
        Expr::Union(a, b) | Expr::Intersection(a, b) | Expr::Exclusion(a, b) => {
            expr_members(a, out);
            expr_members(b, out);
        }
    }
}

/// One plan run for one subject.
struct Run<'a, 'e> {
    evaluator: &'a Evaluator<'e>,
    subject: &'a Subject,
}

impl Run<'_, '_> {
    fn node(&self, node: &Node, rows: &Rows, object: u32) -> bool {
        match node {
            Node::Any(nodes) => nodes.iter().any(|node| self.step(node, rows, object)),
            Node::All(nodes) => nodes.iter().all(|node| self.step(node, rows, object)),
            Node::Except(keep, drop) => {
                self.step(keep, rows, object) && !self.step(drop, rows, object)
            }
            Node::Via {
                column,
                ty,
                member,
                then,
            } => {
                let objects = rows.get(object, *column);
                if objects.is_empty() {
                    return false;
                }
                if objects.len() >= ITERATE_BELOW {
                    return self.evaluator.any_contains(*member, objects, self.subject);
                }
                let Some(next) = self.evaluator.index.rows(*ty) else {
                    return false;
                };
                objects.iter().any(|inner| self.step(then, next, inner))
            }
            Node::Holds { .. } | Node::Wildcard(_) => self.step(node, rows, object),
        }
    }

    /// A leaf answered in place, anything else by [`Run::node`]: most steps are leaves,
    /// and a call per leaf was a fifth of a check.
    #[inline(always)]
    fn step(&self, node: &Node, rows: &Rows, object: u32) -> bool {
        match node {
            Node::Holds {
                column,
                relation,
                kind,
            } => self.subject.idx.is_some_and(|idx| {
                // Both directions hold the same relationships. The subject's side is one
                // read that depends only on the subject, and for a user it is usually one
                // or two ids held inline (a few groups, one workspace); the object's side,
                // on an object reached through an arrow, is a cold row and often a bitmap
                // behind it, three or four dependent reads into DRAM on a large store.
                let reverse = self.evaluator.index.reverse(*relation, *kind, idx);
                if reverse.is_inline() {
                    reverse.contains(object)
                } else {
                    rows.get(object, *column).contains(idx)
                }
            }),
            Node::Wildcard(column) => !rows.get(object, *column).is_empty(),
            _ => self.node(node, rows, object),
        }
    }
}

#[cfg(test)]
mod tests;
