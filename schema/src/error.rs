//! Schema errors: a kind plus a byte span; line and column come from the source.

use std::fmt;
use std::ops::Range;

/// Every error found in one schema text, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaErrors {
    /// The errors, sorted by position; never empty when returned by [`crate::compile`].
    pub errors: Vec<SchemaError>,
}

/// One error in a schema text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte span of the offending text in the source.
    pub span: Range<usize>,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
}

/// What is wrong, with the names involved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A character that starts no token.
    UnexpectedCharacter {
        /// The text found.
        found: String,
    },
    /// A `/*` comment never closed.
    UnterminatedComment,
    /// The parser wanted one thing and found another.
    Expected {
        /// What would have been accepted (already formatted, e.g. "`:` or `=`").
        expected: String,
        /// What was found (already formatted).
        found: String,
    },
    /// A SpiceDB feature this subset does not implement.
    Unsupported {
        /// The feature, formatted for a message (e.g. "caveats (`caveat`)").
        feature: String,
    },
    /// A definition name that breaks the naming rules.
    InvalidTypeName {
        /// The name.
        name: String,
    },
    /// A relation or permission name that breaks the naming rules.
    InvalidMemberName {
        /// The name.
        name: String,
    },
    /// Two definitions with one name.
    DuplicateDefinition {
        /// The name.
        name: String,
        /// Line of the first definition.
        first_line: usize,
    },
    /// Two members of one definition with one name.
    DuplicateMember {
        /// The definition.
        definition: String,
        /// The member name.
        name: String,
        /// `relation` or `permission`: the duplicate.
        what: &'static str,
        /// `relation` or `permission`: the first one.
        first_what: &'static str,
        /// Line of the first one.
        first_line: usize,
    },
    /// A subject type listed twice in one relation.
    DuplicateSubjectType {
        /// The relation, as `type#relation`.
        relation: String,
        /// The subject type as written.
        subject: String,
    },
    /// A subject type naming no definition.
    UnknownType {
        /// The name.
        name: String,
        /// The relation, as `type#relation`.
        relation: String,
    },
    /// `T#r` where `T` has no member `r`.
    UnknownSubjectRelation {
        /// The type.
        type_name: String,
        /// The relation.
        name: String,
    },
    /// A name in a permission expression that is no member of the definition.
    UnknownMember {
        /// The definition.
        definition: String,
        /// The name.
        name: String,
    },
    /// `T#r` where `r` is a relation of `T` allowing a wildcard (directly or through the
    /// relations in its own userset subject types).
    WildcardUserset {
        /// The subject type as written (`group#member`).
        subject: String,
        /// The relation allowing the wildcard (`group#member`).
        via: String,
        /// The wildcard (`user:*`).
        wildcard: String,
    },
    /// An arrow whose left side is no member of the definition.
    UnknownArrowRelation {
        /// The arrow as written (`a->b`).
        arrow: String,
        /// The definition.
        definition: String,
        /// The left side.
        name: String,
    },
    /// An expression or a relation too deeply nested or too long to handle.
    TooComplex {
        /// What limit was hit.
        what: String,
    },
    /// An arrow whose left side is a permission.
    ArrowFromPermission {
        /// The arrow as written (`a->b`).
        arrow: String,
        /// The left side.
        name: String,
    },
    /// An arrow whose left side relation allows a wildcard.
    ArrowOverWildcard {
        /// The arrow as written (`a->b`).
        arrow: String,
        /// The left side.
        name: String,
    },
    /// An arrow whose right side exists on none of the left side's subject types.
    ArrowTargetNotFound {
        /// The arrow as written (`a->b`).
        arrow: String,
        /// The right side.
        name: String,
        /// The subject types of the left side.
        types: Vec<String>,
    },
    /// A relation or permission that can reach itself.
    Cycle {
        /// The cycle, first node repeated at the end (`group#member -> group#member`).
        path: Vec<String>,
    },
}

impl SchemaError {
    /// An error at `span`; line and column are filled in by [`crate::compile`].
    pub(crate) fn new(kind: ErrorKind, span: Range<usize>) -> SchemaError {
        SchemaError {
            kind,
            span,
            line: 0,
            column: 0,
        }
    }
}

fn tick(s: &str) -> String {
    format!("`{s}`")
}

fn ticks(items: &[String]) -> String {
    items.iter().map(|s| tick(s)).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnexpectedCharacter { found } => {
                write!(f, "unexpected character `{found}`")
            }
            ErrorKind::UnterminatedComment => {
                write!(
                    f,
                    "unterminated block comment: expected `*/`, found end of file"
                )
            }
            ErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::Unsupported { feature } => write!(f, "not supported: {feature}"),
            ErrorKind::InvalidTypeName { name } => write!(
                f,
                "invalid definition name `{name}`: expected 3 to 64 characters of `a-z`, `0-9` \
                 and `_`, starting with a letter and not ending with `_`, optionally after \
                 `prefix/` parts of the same form"
            ),
            ErrorKind::InvalidMemberName { name } => write!(
                f,
                "invalid name `{name}`: expected 3 to 64 characters of `a-z`, `0-9` and `_`, \
                 starting with a letter and not ending with `_`"
            ),
            ErrorKind::DuplicateDefinition { name, first_line } => write!(
                f,
                "duplicate definition `{name}`: already defined on line {first_line}"
            ),
            ErrorKind::DuplicateMember {
                definition,
                name,
                what,
                first_what,
                first_line,
            } => write!(
                f,
                "duplicate {what} `{name}` in `{definition}`: a {first_what} of that name is \
                 already defined on line {first_line}"
            ),
            ErrorKind::DuplicateSubjectType { relation, subject } => write!(
                f,
                "subject type `{subject}` is listed twice in relation `{relation}`"
            ),
            ErrorKind::UnknownType { name, relation } => write!(
                f,
                "unknown type `{name}` in the subject types of `{relation}`: no definition of \
                 that name"
            ),
            ErrorKind::UnknownSubjectRelation { type_name, name } => write!(
                f,
                "unknown relation `{name}` in subject type `{type_name}#{name}`: `{type_name}` \
                 has no relation or permission of that name"
            ),
            ErrorKind::UnknownMember { definition, name } => write!(
                f,
                "unknown relation or permission `{name}`: `{definition}` has none of that name"
            ),
            ErrorKind::WildcardUserset {
                subject,
                via,
                wildcard,
            } => {
                if subject == via {
                    write!(
                        f,
                        "subject type `{subject}` not allowed: relation `{via}` allows the \
                         wildcard `{wildcard}`, and wildcard relations cannot be included in \
                         other relations"
                    )
                } else {
                    write!(
                        f,
                        "subject type `{subject}` not allowed: it includes relation `{via}`, \
                         which allows the wildcard `{wildcard}`, and wildcard relations cannot \
                         be included in other relations"
                    )
                }
            }
            ErrorKind::UnknownArrowRelation {
                arrow,
                definition,
                name,
            } => write!(
                f,
                "unknown relation `{name}` on the left of arrow `{arrow}`: `{definition}` has \
                 no relation of that name"
            ),
            ErrorKind::TooComplex { what } => write!(f, "{what}"),
            ErrorKind::ArrowFromPermission { arrow, name } => write!(
                f,
                "arrow `{arrow}` starts from permission `{name}`: expected a relation on the \
                 left of `->`"
            ),
            ErrorKind::ArrowOverWildcard { arrow, name } => write!(
                f,
                "arrow `{arrow}` starts from relation `{name}`, which allows a wildcard: \
                 wildcard relations cannot be used on the left of `->`"
            ),
            ErrorKind::ArrowTargetNotFound { arrow, name, types } => write!(
                f,
                "arrow `{arrow}`: none of the subject types of its left side ({}) has a \
                 relation or permission `{name}`",
                ticks(types)
            ),
            ErrorKind::Cycle { path } => write!(
                f,
                "recursive schema: `{}` reaches itself (groups cannot be nested; each \
                 relation and permission must be computable without recursion)",
                path.join(" -> ")
            ),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.kind)
    }
}

impl std::error::Error for SchemaError {}

impl fmt::Display for SchemaErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemaErrors {}

impl SchemaErrors {
    /// Renders every error as `file:line:col: error: message`, followed by the source
    /// line and a caret line under the span, rustc-style. `source` must be the text
    /// the errors came from.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let mut out = String::new();
        let index = LineIndex::new(source);
        for error in &self.errors {
            let (line, column) = index.line_col(error.span.start);
            out.push_str(&format!(
                "{file_name}:{line}:{column}: error: {}\n",
                error.kind
            ));
            let (line_text, line_start) = index.line_text(error.span.start);
            let gutter = line.to_string();
            let pad = " ".repeat(gutter.len());
            out.push_str(&format!("{gutter} | {line_text}\n"));
            let mut marker = String::new();
            let mut offset = line_start;
            let mut carets = 0;
            for ch in line_text.chars() {
                if offset >= error.span.end.max(error.span.start + 1) {
                    break;
                }
                if offset < error.span.start {
                    marker.push(if ch == '\t' { '\t' } else { ' ' });
                } else {
                    marker.push('^');
                    carets += 1;
                }
                offset += ch.len_utf8();
            }
            if carets == 0 {
                marker.push('^');
            }
            out.push_str(&format!("{pad} | {marker}\n"));
        }
        out
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True if there are none (never the case for errors returned by [`crate::compile`]).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, SchemaError> {
        self.errors.iter()
    }
}

impl<'a> IntoIterator for &'a SchemaErrors {
    type Item = &'a SchemaError;
    type IntoIter = std::slice::Iter<'a, SchemaError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(source).line_col(offset)
}

/// Start offsets of the lines of a text, for line and column look-ups in `O(log n)`.
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(source: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { source, starts }
    }

    /// Byte offset where the line holding `offset` starts.
    fn line_start(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        (line.max(1), start)
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, start) = self.line_start(offset);
        let column = self
            .source
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// The text of the line holding `offset` (without its line break) and its start.
    fn line_text(&self, offset: usize) -> (&'a str, usize) {
        let (_, start) = self.line_start(offset.min(self.source.len()));
        let text = self
            .source
            .get(start..)
            .and_then(|rest| rest.split('\n').next())
            .unwrap_or("")
            .trim_end_matches('\r');
        (text, start)
    }
}
