//! Compiler: resolves the names of an [`ast::Schema`] and validates it, producing a
//! [`CompiledSchema`].
//!
//! One piece: name resolution and validation walk the same AST in one pass and share the
//! error collector.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;

use crate::ast::{self, BinOp, SubjectSuffix};
use crate::compiled::{
    AllowedSubject, Arrow, CompiledSchema, Definition, Expr, Member, MemberId, MemberKind, TypeId,
};
use crate::cycles::find_cycles;
use crate::error::{ErrorKind, LineIndex, SchemaError};
use crate::names::{is_valid_member_name, is_valid_type_name};

/// Compiles `schema`, pushing every error found onto `errors`. The result is meaningful
/// only if no error was found (parts in error are left out or replaced by `nil`).
pub(crate) fn compile_ast(
    source: &str,
    schema: &ast::Schema,
    errors: &mut Vec<SchemaError>,
) -> CompiledSchema {
    let mut compiler = Compiler {
        source,
        lines: LineIndex::new(source),
        errors,
        type_by_name: HashMap::new(),
        definitions: Vec::new(),
        members: Vec::new(),
    };
    compiler.collect_names(schema);
    let allowed = compiler.resolve_relations();
    compiler.check_wildcard_usersets(&allowed);
    let exprs = compiler.resolve_permissions(&allowed);
    let edges = compiler.dependency_edges(&allowed, &exprs);
    for cycle in find_cycles(&edges) {
        let path = cycle
            .nodes
            .iter()
            .map(|&id| compiler.qualified(id))
            .collect();
        compiler.error(ErrorKind::Cycle { path }, cycle.span);
    }
    compiler.build(allowed, exprs)
}

struct DefinitionInfo<'a> {
    ast: &'a ast::Definition,
    members: Vec<MemberId>,
    member_by_name: HashMap<&'a str, MemberId>,
}

struct MemberInfo<'a> {
    owner: TypeId,
    ast: &'a ast::Member,
}

struct Compiler<'a, 'e> {
    source: &'a str,
    lines: LineIndex<'a>,
    errors: &'e mut Vec<SchemaError>,
    type_by_name: HashMap<&'a str, TypeId>,
    definitions: Vec<DefinitionInfo<'a>>,
    members: Vec<MemberInfo<'a>>,
}

/// Resolved allowed subjects per member (`None`: a permission, or a relation in error).
type Allowed = Vec<Option<Vec<(AllowedSubject, Range<usize>)>>>;

/// Resolved expression per member (`None`: a relation, or a permission in error), with
/// the spans of the references it makes.
type Exprs = Vec<Option<(Expr, Vec<(MemberId, Range<usize>)>)>>;

impl<'a> Compiler<'a, '_> {
    fn error(&mut self, kind: ErrorKind, span: Range<usize>) {
        self.errors.push(SchemaError::new(kind, span));
    }

    fn line(&self, offset: usize) -> usize {
        self.lines.line_col(offset).0
    }

    fn def(&self, ty: TypeId) -> Option<&DefinitionInfo<'a>> {
        self.definitions.get(ty.0 as usize)
    }

    fn member(&self, id: MemberId) -> Option<&MemberInfo<'a>> {
        self.members.get(id.0 as usize)
    }

    fn type_name(&self, ty: TypeId) -> &'a str {
        self.def(ty).map_or("", |d| d.ast.name.text.as_str())
    }

    fn member_name(&self, id: MemberId) -> &'a str {
        self.member(id).map_or("", |m| m.ast.name.text.as_str())
    }

    /// `type#member`.
    fn qualified(&self, id: MemberId) -> String {
        let owner = self.member(id).map_or(TypeId(0), |m| m.owner);
        format!("{}#{}", self.type_name(owner), self.member_name(id))
    }

    fn member_by_name(&self, ty: TypeId, name: &str) -> Option<MemberId> {
        self.def(ty)?.member_by_name.get(name).copied()
    }

    fn is_relation(&self, id: MemberId) -> bool {
        self.member(id)
            .is_some_and(|m| matches!(m.ast.kind, ast::MemberKind::Relation(_)))
    }

    /// Assigns type and member ids; reports invalid and duplicate names.
    fn collect_names(&mut self, schema: &'a ast::Schema) {
        for definition in &schema.definitions {
            let name = &definition.name;
            if !is_valid_type_name(&name.text) {
                self.error(
                    ErrorKind::InvalidTypeName {
                        name: name.text.clone(),
                    },
                    name.span.clone(),
                );
            }
            if let Some(&first) = self.type_by_name.get(name.text.as_str()) {
                let first_start = self.def(first).map_or(0, |d| d.ast.name.span.start);
                let first_line = self.line(first_start);
                self.error(
                    ErrorKind::DuplicateDefinition {
                        name: name.text.clone(),
                        first_line,
                    },
                    name.span.clone(),
                );
                continue;
            }
            let ty = TypeId(self.definitions.len() as u32);
            self.type_by_name.insert(name.text.as_str(), ty);
            let mut info = DefinitionInfo {
                ast: definition,
                members: Vec::new(),
                member_by_name: HashMap::new(),
            };
            for member in &definition.members {
                let member_name = &member.name;
                if !is_valid_member_name(&member_name.text) {
                    self.error(
                        ErrorKind::InvalidMemberName {
                            name: member_name.text.clone(),
                        },
                        member_name.span.clone(),
                    );
                }
                if let Some(&first) = info.member_by_name.get(member_name.text.as_str()) {
                    let (first_what, first_start) =
                        self.member(first).map_or(("relation", 0), |m| {
                            (m.ast.kind.keyword(), m.ast.name.span.start)
                        });
                    let first_line = self.line(first_start);
                    self.error(
                        ErrorKind::DuplicateMember {
                            definition: name.text.clone(),
                            name: member_name.text.clone(),
                            what: member.kind.keyword(),
                            first_what,
                            first_line,
                        },
                        member_name.span.clone(),
                    );
                    continue;
                }
                let id = MemberId(self.members.len() as u32);
                self.members.push(MemberInfo {
                    owner: ty,
                    ast: member,
                });
                info.members.push(id);
                info.member_by_name.insert(member_name.text.as_str(), id);
            }
            self.definitions.push(info);
        }
    }

    fn resolve_relations(&mut self) -> Allowed {
        let mut allowed: Allowed = Vec::with_capacity(self.members.len());
        for index in 0..self.members.len() {
            let id = MemberId(index as u32);
            let Some(info) = self.member(id) else {
                allowed.push(None);
                continue;
            };
            let ast::MemberKind::Relation(Some(subject_types)) = &info.ast.kind else {
                allowed.push(None);
                continue;
            };
            let relation = self.qualified(id);
            let mut resolved = Vec::new();
            let mut seen = HashSet::new();
            for subject_type in subject_types {
                let type_name = &subject_type.type_name;
                let Some(&ty) = self.type_by_name.get(type_name.text.as_str()) else {
                    self.error(
                        ErrorKind::UnknownType {
                            name: type_name.text.clone(),
                            relation: relation.clone(),
                        },
                        type_name.span.clone(),
                    );
                    continue;
                };
                let subject = match &subject_type.suffix {
                    SubjectSuffix::None => AllowedSubject::Object(ty),
                    SubjectSuffix::Wildcard => AllowedSubject::Wildcard(ty),
                    SubjectSuffix::Relation(name) => match self.member_by_name(ty, &name.text) {
                        Some(member) => AllowedSubject::Userset(ty, member),
                        None => {
                            self.error(
                                ErrorKind::UnknownSubjectRelation {
                                    type_name: type_name.text.clone(),
                                    name: name.text.clone(),
                                },
                                name.span.clone(),
                            );
                            continue;
                        }
                    },
                };
                if !seen.insert(subject) {
                    let text = self
                        .source
                        .get(subject_type.span.clone())
                        .unwrap_or("")
                        .to_string();
                    self.error(
                        ErrorKind::DuplicateSubjectType {
                            relation: relation.clone(),
                            subject: text,
                        },
                        subject_type.span.clone(),
                    );
                    continue;
                }
                resolved.push((subject, subject_type.span.clone()));
            }
            allowed.push(Some(resolved));
        }
        allowed
    }

    /// Refuses `T#r` when relation `r` of `T` allows a wildcard, directly or through the
    /// relations of its own userset subject types (SpiceDB: wildcard relations cannot be
    /// included transitively). `T#p` naming a permission is fine.
    fn check_wildcard_usersets(&mut self, allowed: &Allowed) {
        let reach = wildcard_reach(allowed);
        let mut found = Vec::new();
        for subjects in allowed.iter().flatten() {
            for (subject, span) in subjects {
                let AllowedSubject::Userset(ty, member) = *subject else {
                    continue;
                };
                if let Some(Some((via, wildcard))) = reach.get(member.0 as usize) {
                    let subject = format!("{}#{}", self.type_name(ty), self.member_name(member));
                    found.push((
                        ErrorKind::WildcardUserset {
                            subject,
                            via: self.qualified(*via),
                            wildcard: format!("{}:*", self.type_name(*wildcard)),
                        },
                        span.clone(),
                    ));
                }
            }
        }
        for (kind, span) in found {
            self.error(kind, span);
        }
    }

    fn resolve_permissions(&mut self, allowed: &Allowed) -> Exprs {
        let mut exprs: Exprs = Vec::with_capacity(self.members.len());
        for index in 0..self.members.len() {
            let id = MemberId(index as u32);
            let Some(info) = self.member(id) else {
                exprs.push(None);
                continue;
            };
            let owner = info.owner;
            let ast::MemberKind::Permission(Some(expr)) = &info.ast.kind else {
                exprs.push(None);
                continue;
            };
            let mut refs = Vec::new();
            let resolved = self.resolve_expr(owner, expr, allowed, &mut refs);
            exprs.push(Some((resolved, refs)));
        }
        exprs
    }

    /// Resolves one expression. `refs` collects every member it depends on (names and
    /// arrow targets) with the span of the reference, for cycle detection.
    fn resolve_expr(
        &mut self,
        owner: TypeId,
        expr: &ast::Expr,
        allowed: &Allowed,
        refs: &mut Vec<(MemberId, Range<usize>)>,
    ) -> Expr {
        match expr {
            ast::Expr::Nil(_) => Expr::Nil,
            ast::Expr::Name(name) => match self.member_by_name(owner, &name.text) {
                Some(id) => {
                    refs.push((id, name.span.clone()));
                    Expr::Member(id)
                }
                None => {
                    self.error(
                        ErrorKind::UnknownMember {
                            definition: self.type_name(owner).to_string(),
                            name: name.text.clone(),
                        },
                        name.span.clone(),
                    );
                    Expr::Nil
                }
            },
            ast::Expr::Arrow { left, right } => {
                self.resolve_arrow(owner, left, right, allowed, refs)
            }
            ast::Expr::Binary { op, lhs, rhs } => {
                let lhs = Box::new(self.resolve_expr(owner, lhs, allowed, refs));
                let rhs = Box::new(self.resolve_expr(owner, rhs, allowed, refs));
                match op {
                    BinOp::Union => Expr::Union(lhs, rhs),
                    BinOp::Intersection => Expr::Intersection(lhs, rhs),
                    BinOp::Exclusion => Expr::Exclusion(lhs, rhs),
                }
            }
        }
    }

    fn resolve_arrow(
        &mut self,
        owner: TypeId,
        left: &ast::Name,
        right: &ast::Name,
        allowed: &Allowed,
        refs: &mut Vec<(MemberId, Range<usize>)>,
    ) -> Expr {
        let arrow = format!("{}->{}", left.text, right.text);
        let span = left.span.start..right.span.end;
        let Some(tupleset) = self.member_by_name(owner, &left.text) else {
            self.error(
                ErrorKind::UnknownArrowRelation {
                    arrow,
                    definition: self.type_name(owner).to_string(),
                    name: left.text.clone(),
                },
                left.span.clone(),
            );
            return Expr::Nil;
        };
        if !self.is_relation(tupleset) {
            self.error(
                ErrorKind::ArrowFromPermission {
                    arrow,
                    name: left.text.clone(),
                },
                left.span.clone(),
            );
            return Expr::Nil;
        }
        // A relation whose subject types failed to parse was reported already.
        let Some(Some(subjects)) = allowed.get(tupleset.0 as usize) else {
            return Expr::Nil;
        };
        // Note: unlike the first draft of issue 2, an arrow over a relation allowing
        // userset subjects (`T#r`) is accepted: SpiceDB accepts it (conformance files
        // `arrowoversametype.yaml`, `lroverrelation.yaml`) and the arrow simply ignores
        // the subject relation of each relationship it follows.
        if subjects
            .iter()
            .any(|(s, _)| matches!(s, AllowedSubject::Wildcard(_)))
        {
            self.error(
                ErrorKind::ArrowOverWildcard {
                    arrow,
                    name: left.text.clone(),
                },
                left.span.clone(),
            );
            return Expr::Nil;
        }
        let mut types: Vec<TypeId> = Vec::new();
        for (subject, _) in subjects {
            if !types.contains(&subject.type_id()) {
                types.push(subject.type_id());
            }
        }
        let targets: Vec<(TypeId, MemberId)> = types
            .iter()
            .filter_map(|&ty| Some((ty, self.member_by_name(ty, &right.text)?)))
            .collect();
        if targets.is_empty() {
            if !types.is_empty() {
                let types = types
                    .iter()
                    .map(|&ty| self.type_name(ty).to_string())
                    .collect();
                self.error(
                    ErrorKind::ArrowTargetNotFound {
                        arrow,
                        name: right.text.clone(),
                        types,
                    },
                    right.span.clone(),
                );
            }
            return Expr::Nil;
        }
        for &(_, member) in &targets {
            refs.push((member, span.clone()));
        }
        Expr::Arrow(Arrow {
            tupleset,
            computed_name: right.text.clone(),
            targets,
        })
    }

    /// For each member, the members it depends on: a relation on the members named by its
    /// userset subject types, a permission on the names and arrow targets it uses (an
    /// arrow reads its left relation's relationships without expanding them).
    fn dependency_edges(
        &self,
        allowed: &Allowed,
        exprs: &Exprs,
    ) -> Vec<Vec<(MemberId, Range<usize>)>> {
        (0..self.members.len())
            .map(|index| {
                let mut edges = Vec::new();
                if let Some(Some(subjects)) = allowed.get(index) {
                    for (subject, span) in subjects {
                        if let AllowedSubject::Userset(_, member) = subject {
                            edges.push((*member, span.clone()));
                        }
                    }
                }
                if let Some(Some((_, refs))) = exprs.get(index) {
                    edges.extend(refs.iter().cloned());
                }
                edges
            })
            .collect()
    }

    fn build(&self, allowed: Allowed, exprs: Exprs) -> CompiledSchema {
        let definitions = self
            .definitions
            .iter()
            .map(|d| Definition {
                name: d.ast.name.text.clone(),
                doc: d.ast.doc.clone(),
                members: d.members.clone(),
            })
            .collect();
        let members = self
            .members
            .iter()
            .zip(allowed.into_iter().zip(exprs))
            .map(|(info, (allowed, expr))| Member {
                owner: info.owner,
                name: info.ast.name.text.clone(),
                doc: info.ast.doc.clone(),
                kind: match info.ast.kind {
                    ast::MemberKind::Relation(_) => MemberKind::Relation(
                        allowed
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(s, _)| s)
                            .collect(),
                    ),
                    ast::MemberKind::Permission(_) => {
                        MemberKind::Permission(expr.map_or(Expr::Nil, |(e, _)| e))
                    }
                },
            })
            .collect();
        CompiledSchema {
            definitions,
            members,
        }
    }
}

/// For each relation, a relation allowing a wildcard that it includes (itself, or one
/// reached through userset subject types naming relations), with the wildcard's type.
/// Permissions stop the search: `T#p` may reach a wildcard. Linear: a breadth-first
/// search backwards from every relation allowing a wildcard.
fn wildcard_reach(allowed: &Allowed) -> Vec<Option<(MemberId, TypeId)>> {
    let n = allowed.len();
    let mut reach: Vec<Option<(MemberId, TypeId)>> = vec![None; n];
    let mut included_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut queue = VecDeque::new();
    for (index, subjects) in allowed.iter().enumerate() {
        for (subject, _) in subjects.iter().flatten() {
            match *subject {
                AllowedSubject::Wildcard(ty) => {
                    if let Some(slot @ None) = reach.get_mut(index) {
                        *slot = Some((MemberId(index as u32), ty));
                        queue.push_back(index);
                    }
                }
                AllowedSubject::Userset(_, member) => {
                    if let Some(list) = included_by.get_mut(member.0 as usize) {
                        list.push(index);
                    }
                }
                AllowedSubject::Object(_) => {}
            }
        }
    }
    while let Some(member) = queue.pop_front() {
        let found = reach.get(member).copied().flatten();
        for &includer in included_by.get(member).map_or(&[][..], |v| v.as_slice()) {
            if let Some(slot @ None) = reach.get_mut(includer) {
                *slot = found;
                queue.push_back(includer);
            }
        }
    }
    reach
}
