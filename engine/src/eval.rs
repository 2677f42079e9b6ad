//! The evaluator: check, lookup resources, lookup subjects and expand as bitmap set algebra.
//!
//! Flatness (no member reaches itself, guaranteed by the schema compiler) bounds every
//! recursion here by the depth of the schema, not of the data.

use pemba_schema::{AllowedSubject, CompiledSchema, Expr, MemberId, MemberKind, TypeId};
use roaring::{MultiOps, RoaringBitmap};

use crate::index::{Index, KindIndex, SubjectRel};
use crate::posting::Posting;

/// Below this many candidate objects, check them one by one; above it, compute the
/// subject's reachable set once and intersect.
pub(crate) const ITERATE_BELOW: u64 = 8;

/// A subject resolved against the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject {
    pub(crate) ty: TypeId,
    /// `None` when the id was never stored: only wildcards can match it.
    pub(crate) idx: Option<u32>,
    pub(crate) rel: SubjectRel,
}

/// The subjects found by lookup subjects: `concrete ∪ (every object − excluded)` when
/// `wildcard` is `Some(excluded)`, else just `concrete`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SubjectSet {
    pub(crate) concrete: RoaringBitmap,
    pub(crate) wildcard: Option<RoaringBitmap>,
}

impl SubjectSet {
    fn normalized(mut self) -> Self {
        if let Some(excluded) = &mut self.wildcard {
            *excluded -= &self.concrete;
        }
        self
    }

    fn union(self, other: SubjectSet) -> SubjectSet {
        let wildcard = match (self.wildcard, other.wildcard) {
            (Some(a), Some(b)) => Some(a & b),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => None,
        };
        SubjectSet {
            concrete: self.concrete | other.concrete,
            wildcard,
        }
        .normalized()
    }

    fn intersection(self, other: SubjectSet) -> SubjectSet {
        let mut concrete = &self.concrete & &other.concrete;
        if let Some(excluded) = &other.wildcard {
            concrete |= &self.concrete - excluded;
        }
        if let Some(excluded) = &self.wildcard {
            concrete |= &other.concrete - excluded;
        }
        let wildcard = match (self.wildcard, other.wildcard) {
            (Some(a), Some(b)) => Some(a | b),
            _ => None,
        };
        SubjectSet { concrete, wildcard }.normalized()
    }

    fn exclusion(self, other: SubjectSet) -> SubjectSet {
        let mut concrete = &self.concrete - &other.concrete;
        if let Some(kept) = &other.wildcard {
            concrete &= kept;
        }
        let wildcard = match (self.wildcard, other.wildcard) {
            (Some(excluded), None) => Some(excluded | &other.concrete),
            (Some(excluded), Some(kept)) => {
                concrete |= (kept - excluded) - &other.concrete;
                None
            }
            (None, _) => None,
        };
        SubjectSet { concrete, wildcard }.normalized()
    }
}

/// The union of many postings, built at once: merging them one by one into a growing
/// bitmap re-copies its containers each time, which dominated heavy lookups.
fn union_of<'p>(postings: impl Iterator<Item = &'p Posting>) -> RoaringBitmap {
    let mut inline = Vec::new();
    let mut bitmaps = Vec::new();
    for posting in postings {
        match posting {
            Posting::Many(bitmap) => bitmaps.push(&**bitmap),
            small => inline.extend(small.iter()),
        }
    }
    let mut found = bitmaps.into_iter().union();
    inline.sort_unstable();
    found.extend(inline);
    found
}

/// Evaluates questions against one schema and one index snapshot.
pub(crate) struct Evaluator<'a> {
    pub(crate) schema: &'a CompiledSchema,
    pub(crate) index: &'a Index,
}

fn matches_object(kind: &KindIndex, s: &Subject) -> Option<u32> {
    match kind.subject {
        AllowedSubject::Object(t) if t == s.ty && s.rel == SubjectRel::Object => s.idx,
        AllowedSubject::Userset(t, m) if t == s.ty && s.rel == SubjectRel::Member(m) => s.idx,
        _ => None,
    }
}

fn matches_wildcard(kind: &KindIndex, s: &Subject) -> bool {
    matches!(kind.subject, AllowedSubject::Wildcard(t)
        if t == s.ty && matches!(s.rel, SubjectRel::Object | SubjectRel::Wildcard))
}

impl Evaluator<'_> {
    /// Whether `subject` is in `member` of object `resource` (of the member's type).
    pub(crate) fn check(&self, member: MemberId, resource: u32, s: &Subject) -> bool {
        match &self.schema.member(member).kind {
            MemberKind::Relation(_) => self.check_relation(member, resource, s),
            MemberKind::Permission(expr) => self.check_expr(expr, resource, s),
        }
    }

    fn check_relation(&self, relation: MemberId, resource: u32, s: &Subject) -> bool {
        for kind in self.index.kinds(relation) {
            if matches_wildcard(kind, s) && self.index.has_wildcard(kind, resource) {
                return true;
            }
            let subjects = self.index.forward(kind, resource);
            if subjects.is_empty() {
                continue;
            }
            if matches_object(kind, s).is_some_and(|idx| subjects.contains(idx)) {
                return true;
            }
            if let AllowedSubject::Userset(_, member) = kind.subject {
                if self.any_contains(member, subjects, s) {
                    return true;
                }
            }
        }
        false
    }

    fn check_expr(&self, expr: &Expr, resource: u32, s: &Subject) -> bool {
        match expr {
            Expr::Nil => false,
            Expr::Member(member) => self.check(*member, resource, s),
            Expr::Union(a, b) => self.check_expr(a, resource, s) || self.check_expr(b, resource, s),
            Expr::Intersection(a, b) => {
                self.check_expr(a, resource, s) && self.check_expr(b, resource, s)
            }
            Expr::Exclusion(a, b) => {
                self.check_expr(a, resource, s) && !self.check_expr(b, resource, s)
            }
            Expr::Arrow(arrow) => self.index.arrow_hops(arrow).any(|(kind, _, target)| {
                let parents = self.index.forward(kind, resource);
                !parents.is_empty() && self.any_contains(target, parents, s)
            }),
        }
    }

    /// Whether the subject is in `member` of any of `objects`.
    pub(crate) fn any_contains(&self, member: MemberId, objects: &Posting, s: &Subject) -> bool {
        if objects.len() < ITERATE_BELOW {
            return objects.iter().any(|object| self.check(member, object, s));
        }
        if let MemberKind::Relation(_) = self.schema.member(member).kind {
            // Borrow the reverse bitmaps directly: no set is built for the common flat case.
            for kind in self.index.kinds(member) {
                if matches_wildcard(kind, s) && kind.wildcard_resources().intersects(objects) {
                    return true;
                }
                if let Some(idx) = matches_object(kind, s) {
                    if kind.reverse(idx).intersects(objects) {
                        return true;
                    }
                }
                if let AllowedSubject::Userset(_, inner) = kind.subject {
                    let groups = self.lookup_resources(inner, s);
                    if groups.iter().any(|g| kind.reverse(g).intersects(objects)) {
                        return true;
                    }
                }
            }
            return false;
        }
        objects.intersects_bitmap(&self.lookup_resources(member, s))
    }

    /// Every object of `member`'s type whose `member` contains the subject.
    pub(crate) fn lookup_resources(&self, member: MemberId, s: &Subject) -> RoaringBitmap {
        match &self.schema.member(member).kind {
            MemberKind::Relation(_) => {
                let mut found = RoaringBitmap::new();
                for kind in self.index.kinds(member) {
                    if matches_wildcard(kind, s) {
                        kind.wildcard_resources().union_into(&mut found);
                    }
                    if let Some(idx) = matches_object(kind, s) {
                        kind.reverse(idx).union_into(&mut found);
                    }
                    if let AllowedSubject::Userset(_, inner) = kind.subject {
                        let groups = self.lookup_resources(inner, s);
                        found |= union_of(groups.iter().map(|group| kind.reverse(group)));
                    }
                }
                found
            }
            MemberKind::Permission(expr) => self.lookup_resources_expr(expr, s),
        }
    }

    fn lookup_resources_expr(&self, expr: &Expr, s: &Subject) -> RoaringBitmap {
        match expr {
            Expr::Nil => RoaringBitmap::new(),
            Expr::Member(member) => self.lookup_resources(*member, s),
            Expr::Union(a, b) => {
                self.lookup_resources_expr(a, s) | self.lookup_resources_expr(b, s)
            }
            Expr::Intersection(a, b) => {
                let left = self.lookup_resources_expr(a, s);
                if left.is_empty() {
                    return left;
                }
                left & self.lookup_resources_expr(b, s)
            }
            Expr::Exclusion(a, b) => {
                let left = self.lookup_resources_expr(a, s);
                if left.is_empty() {
                    return left;
                }
                left - self.lookup_resources_expr(b, s)
            }
            Expr::Arrow(arrow) => {
                // Target by target, not through `Index::arrow_hops`: each target's
                // resources are looked up once, however many of the tupleset's kinds
                // have its type.
                let mut found = RoaringBitmap::new();
                for (target_ty, target) in &arrow.targets {
                    let parents = self.lookup_resources(*target, s);
                    if parents.is_empty() {
                        continue;
                    }
                    for kind in self.index.kinds(arrow.tupleset) {
                        let (AllowedSubject::Object(ty) | AllowedSubject::Userset(ty, _)) =
                            kind.subject
                        else {
                            continue;
                        };
                        if ty != *target_ty {
                            continue;
                        }
                        found |= union_of(parents.iter().map(|parent| kind.reverse(parent)));
                    }
                }
                found
            }
        }
    }

    /// The subjects of type `target_ty` (plain, or usersets `#m` with `target_rel`) in
    /// `member` of `resource`.
    pub(crate) fn lookup_subjects(
        &self,
        member: MemberId,
        resource: u32,
        target_ty: TypeId,
        target_rel: SubjectRel,
    ) -> SubjectSet {
        match &self.schema.member(member).kind {
            MemberKind::Relation(_) => {
                let mut found = SubjectSet::default();
                for kind in self.index.kinds(member) {
                    match kind.subject {
                        AllowedSubject::Wildcard(t) => {
                            if t == target_ty
                                && target_rel == SubjectRel::Object
                                && self.index.has_wildcard(kind, resource)
                            {
                                found = found.union(SubjectSet {
                                    concrete: RoaringBitmap::new(),
                                    wildcard: Some(RoaringBitmap::new()),
                                });
                            }
                        }
                        AllowedSubject::Object(t) => {
                            if t == target_ty && target_rel == SubjectRel::Object {
                                self.index
                                    .forward(kind, resource)
                                    .union_into(&mut found.concrete);
                            }
                        }
                        AllowedSubject::Userset(t, m) => {
                            let groups = self.index.forward(kind, resource);
                            if t == target_ty && target_rel == SubjectRel::Member(m) {
                                groups.union_into(&mut found.concrete);
                            }
                            for group in groups.iter() {
                                found = found
                                    .union(self.lookup_subjects(m, group, target_ty, target_rel));
                            }
                        }
                    }
                }
                found.normalized()
            }
            MemberKind::Permission(expr) => {
                self.lookup_subjects_expr(expr, resource, target_ty, target_rel)
            }
        }
    }

    fn lookup_subjects_expr(
        &self,
        expr: &Expr,
        resource: u32,
        target_ty: TypeId,
        target_rel: SubjectRel,
    ) -> SubjectSet {
        match expr {
            Expr::Nil => SubjectSet::default(),
            Expr::Member(member) => self.lookup_subjects(*member, resource, target_ty, target_rel),
            Expr::Union(a, b) => self
                .lookup_subjects_expr(a, resource, target_ty, target_rel)
                .union(self.lookup_subjects_expr(b, resource, target_ty, target_rel)),
            Expr::Intersection(a, b) => self
                .lookup_subjects_expr(a, resource, target_ty, target_rel)
                .intersection(self.lookup_subjects_expr(b, resource, target_ty, target_rel)),
            Expr::Exclusion(a, b) => self
                .lookup_subjects_expr(a, resource, target_ty, target_rel)
                .exclusion(self.lookup_subjects_expr(b, resource, target_ty, target_rel)),
            Expr::Arrow(arrow) => {
                let mut found = SubjectSet::default();
                for (kind, _, target) in self.index.arrow_hops(arrow) {
                    for parent in self.index.forward(kind, resource).iter() {
                        found = found
                            .union(self.lookup_subjects(target, parent, target_ty, target_rel));
                    }
                }
                found
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(concrete: &[u32], wildcard: Option<&[u32]>) -> SubjectSet {
        SubjectSet {
            concrete: concrete.iter().copied().collect(),
            wildcard: wildcard.map(|w| w.iter().copied().collect()),
        }
    }

    /// Membership of `x` in a subject set, straight from its definition.
    fn contains(s: &SubjectSet, x: u32) -> bool {
        s.concrete.contains(x) || s.wildcard.as_ref().is_some_and(|e| !e.contains(x))
    }

    #[test]
    fn subject_set_algebra_matches_set_semantics() {
        let samples = [
            set(&[], None),
            set(&[1, 2], None),
            set(&[2, 3], None),
            set(&[], Some(&[])),
            set(&[], Some(&[1])),
            set(&[3], Some(&[2, 4])),
            set(&[1], Some(&[1, 3])),
        ];
        for a in &samples {
            for b in &samples {
                let union = a.clone().union(b.clone());
                let inter = a.clone().intersection(b.clone());
                let excl = a.clone().exclusion(b.clone());
                for x in 0..6 {
                    assert_eq!(
                        contains(&union, x),
                        contains(a, x) || contains(b, x),
                        "{a:?} + {b:?} at {x}"
                    );
                    assert_eq!(
                        contains(&inter, x),
                        contains(a, x) && contains(b, x),
                        "{a:?} & {b:?} at {x}"
                    );
                    assert_eq!(
                        contains(&excl, x),
                        contains(a, x) && !contains(b, x),
                        "{a:?} - {b:?} at {x}"
                    );
                }
            }
        }
    }
}
