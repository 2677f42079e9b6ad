//! The compiled schema: names resolved to indexes, validated, ready for the evaluator.

/// Index of a definition (object type) in [`CompiledSchema::definitions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// Index of a relation or permission in [`CompiledSchema::members`], unique across the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u32);

/// A validated schema: every name resolved, no cycles, every arrow meaningful.
///
/// INVARIANT: `definitions[t].members` lists exactly the members whose `owner` is `t`,
/// in source order; member ids of one definition are contiguous and ascending.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompiledSchema {
    /// Object types in source order.
    pub definitions: Vec<Definition>,
    /// Relations and permissions of every definition, indexed by [`MemberId`].
    pub members: Vec<Member>,
}

/// One `definition NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// Full type name, prefix included (`tenant/doc`).
    pub name: String,
    /// Text of the `/** ... */` comments before the definition, trimmed, if any.
    pub doc: Option<String>,
    /// Members of this definition in source order.
    pub members: Vec<MemberId>,
}

/// A relation or permission of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The definition this member belongs to.
    pub owner: TypeId,
    /// Member name (`viewer`).
    pub name: String,
    /// Text of the `/** ... */` comments before the member, trimmed, if any.
    pub doc: Option<String>,
    /// Relation or permission body.
    pub kind: MemberKind,
}

/// What a member is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// `relation NAME: T | T#r | T:*` — stored relationships; allowed subjects in source order.
    Relation(Vec<AllowedSubject>),
    /// `permission NAME = EXPR` — computed, never stored.
    Permission(Expr),
}

/// One allowed subject type of a relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllowedSubject {
    /// `T`: a plain object of type `T`.
    Object(TypeId),
    /// `T#m`: every subject of `T:x#m` (a userset).
    Userset(TypeId, MemberId),
    /// `T:*`: every object of type `T`.
    Wildcard(TypeId),
}

impl AllowedSubject {
    /// The subject's object type.
    pub fn type_id(self) -> TypeId {
        match self {
            AllowedSubject::Object(t)
            | AllowedSubject::Userset(t, _)
            | AllowedSubject::Wildcard(t) => t,
        }
    }
}

/// A permission expression with names resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `nil`: the empty set.
    Nil,
    /// A relation or permission of the same definition.
    Member(MemberId),
    /// `tupleset->computed`: for each subject object of relation `tupleset` (its subject
    /// relation ignored), evaluate `computed` on it.
    Arrow(Arrow),
    /// `a + b`.
    Union(Box<Expr>, Box<Expr>),
    /// `a & b`.
    Intersection(Box<Expr>, Box<Expr>),
    /// `a - b`.
    Exclusion(Box<Expr>, Box<Expr>),
}

/// A resolved arrow `tupleset->computed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The relation followed (a relation of the same definition, never a permission).
    pub tupleset: MemberId,
    /// The name evaluated on the objects reached.
    pub computed_name: String,
    /// For each distinct subject type of `tupleset` that has a member named `computed_name`,
    /// that type and member, in the order the types first appear in `tupleset`'s allowed list.
    /// Types lacking the member contribute nothing (SpiceDB semantics).
    pub targets: Vec<(TypeId, MemberId)>,
}

impl CompiledSchema {
    /// The definition named `name`, if any.
    pub fn type_by_name(&self, name: &str) -> Option<TypeId> {
        self.definitions
            .iter()
            .position(|d| d.name == name)
            .map(|i| TypeId(i as u32))
    }

    /// The member `name` of definition `ty`, if any.
    pub fn member_by_name(&self, ty: TypeId, name: &str) -> Option<MemberId> {
        self.definitions
            .get(ty.0 as usize)?
            .members
            .iter()
            .copied()
            .find(|m| {
                self.members
                    .get(m.0 as usize)
                    .is_some_and(|member| member.name == name)
            })
    }

    /// The definition `ty`. Panics if `ty` does not come from this schema.
    #[expect(
        clippy::indexing_slicing,
        reason = "ids are minted by this schema's compiler; a foreign id is a caller bug, documented as a panic"
    )]
    pub fn definition(&self, ty: TypeId) -> &Definition {
        &self.definitions[ty.0 as usize]
    }

    /// The member `id`. Panics if `id` does not come from this schema.
    #[expect(
        clippy::indexing_slicing,
        reason = "ids are minted by this schema's compiler; a foreign id is a caller bug, documented as a panic"
    )]
    pub fn member(&self, id: MemberId) -> &Member {
        &self.members[id.0 as usize]
    }

    /// The allowed subjects of `id` if it is a relation, `None` for a permission.
    pub fn allowed_subjects(&self, id: MemberId) -> Option<&[AllowedSubject]> {
        match &self.member(id).kind {
            MemberKind::Relation(allowed) => Some(allowed),
            MemberKind::Permission(_) => None,
        }
    }
}
