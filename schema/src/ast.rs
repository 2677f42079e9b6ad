//! Syntax tree of a schema, names unresolved, every node with its byte span.

use std::ops::Range;

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The text (a type name includes its `prefix/` parts).
    pub text: String,
    /// Byte span in the source.
    pub span: Range<usize>,
}

/// A whole schema.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schema {
    /// Definitions in source order.
    pub definitions: Vec<Definition>,
}

/// `definition NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The type name.
    pub name: Name,
    /// Doc comment text, if any.
    pub doc: Option<String>,
    /// Relations and permissions in source order.
    pub members: Vec<Member>,
}

/// A relation or permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The name.
    pub name: Name,
    /// Doc comment text, if any.
    pub doc: Option<String>,
    /// The body.
    pub kind: MemberKind,
}

/// A member body. `None` parts failed to parse (an error was reported already); they
/// keep the name known so that references to it raise no further errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// `relation NAME: T | T#r | T:*`.
    Relation(Option<Vec<SubjectType>>),
    /// `permission NAME = EXPR`.
    Permission(Option<Expr>),
}

impl MemberKind {
    /// `relation` or `permission`.
    pub fn keyword(&self) -> &'static str {
        match self {
            MemberKind::Relation(_) => "relation",
            MemberKind::Permission(_) => "permission",
        }
    }
}

/// One allowed subject type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectType {
    /// The type.
    pub type_name: Name,
    /// `#rel` or `:*`, if present.
    pub suffix: SubjectSuffix,
    /// Span of the whole subject type.
    pub span: Range<usize>,
}

/// What follows the type name of a subject type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectSuffix {
    /// Nothing: `T`.
    None,
    /// `T#rel`.
    Relation(Name),
    /// `T:*`.
    Wildcard,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`.
    Union,
    /// `&`.
    Intersection,
    /// `-`.
    Exclusion,
}

/// A permission expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `nil`.
    Nil(Range<usize>),
    /// A relation or permission of the same definition.
    Name(Name),
    /// `left->right`.
    Arrow {
        /// The relation followed.
        left: Name,
        /// The name evaluated on the objects reached.
        right: Name,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
}
