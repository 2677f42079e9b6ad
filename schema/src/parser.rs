//! Parser: tokens to [`ast::Schema`], reporting every syntax error and recovering at
//! the next statement or definition.
//!
//! Precedence, loosest first: `-`, `&`, `+`, `->`; all binary operators left-associative
//! (SpiceDB's grammar: `a - b + c` is `a - (b + c)`).
//!
//! One piece: a recursive-descent parser is one grammar; its productions call each other
//! and share the recovery logic.

use std::ops::Range;

use crate::ast::{self, BinOp, Expr, Name, SubjectSuffix, SubjectType};
use crate::error::{ErrorKind, SchemaError};
use crate::lexer::{Token, TokenKind};

/// Words with a meaning of their own somewhere (shown as "keyword" in messages).
const KEYWORDS: &[&str] = &[
    "definition",
    "relation",
    "permission",
    "caveat",
    "nil",
    "self",
    "use",
    "with",
    "import",
    "partial",
];

/// Words never accepted as names.
const RESERVED: &[&str] = &["nil", "self"];

/// Parses `tokens` (from [`crate::lexer::lex`] on `source`).
pub(crate) fn parse(source: &str, tokens: &[Token], errors: &mut Vec<SchemaError>) -> ast::Schema {
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        errors,
        depth: 0,
        operands: 0,
    };
    parser.schema()
}

/// A syntax error was reported; the caller recovers.
struct Reported;

type PResult<T> = Result<T, Reported>;

struct Parser<'a> {
    source: &'a str,
    tokens: &'a [Token],
    pos: usize,
    errors: &'a mut Vec<SchemaError>,
    /// Parenthesis depth in the current expression.
    depth: usize,
    /// Operands seen in the current expression.
    operands: usize,
}

/// Deepest parenthesis nesting accepted; bounds the recursion of every later pass.
const MAX_DEPTH: usize = 64;
/// Most operands accepted in one expression; bounds the depth of the expression tree.
const MAX_OPERANDS: usize = 1000;

impl<'a> Parser<'a> {
    fn peek(&self) -> &'a Token {
        self.nth(0)
    }

    fn nth(&self, n: usize) -> &'a Token {
        let tokens: &'a [Token] = self.tokens;
        tokens
            .get(self.pos + n)
            .or_else(|| tokens.last())
            .unwrap_or(&EOF)
    }

    fn kind(&self) -> TokenKind {
        self.peek().kind
    }

    fn bump(&mut self) -> &'a Token {
        let token = self.peek();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'a str {
        let source: &'a str = self.source;
        source.get(token.span.clone()).unwrap_or("")
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        let token = self.peek();
        token.kind == TokenKind::Ident && self.text(token) == keyword
    }

    fn nth_is_keyword(&self, n: usize, keyword: &str) -> bool {
        let token = self.nth(n);
        token.kind == TokenKind::Ident && self.text(token) == keyword
    }

    /// The current token as "found ..." text.
    fn found(&self) -> String {
        let token = self.peek();
        match token.kind {
            TokenKind::Ident => {
                let text = self.text(token);
                if KEYWORDS.contains(&text) {
                    format!("keyword `{text}`")
                } else {
                    format!("`{text}`")
                }
            }
            TokenKind::Semi if token.synthetic => "end of line".to_string(),
            TokenKind::Semi => "`;`".to_string(),
            TokenKind::Other => format!("`{}`", self.text(token)),
            kind => kind.describe().to_string(),
        }
    }

    fn error(&mut self, kind: ErrorKind, span: Range<usize>) -> Reported {
        self.errors.push(SchemaError::new(kind, span));
        Reported
    }

    /// Reports "expected `expected`, found <current token>" at the current token.
    fn expected(&mut self, expected: &str) -> Reported {
        let token = self.peek();
        let kind = if token.kind == TokenKind::Other {
            ErrorKind::UnexpectedCharacter {
                found: self.text(token).to_string(),
            }
        } else {
            ErrorKind::Expected {
                expected: expected.to_string(),
                found: self.found(),
            }
        };
        self.error(kind, token.span.clone())
    }

    fn unsupported(&mut self, feature: &str, span: Range<usize>) -> Reported {
        self.error(
            ErrorKind::Unsupported {
                feature: feature.to_string(),
            },
            span,
        )
    }

    fn expect(&mut self, kind: TokenKind, expected: &str) -> PResult<&'a Token> {
        if self.kind() == kind {
            Ok(self.bump())
        } else {
            Err(self.expected(expected))
        }
    }

    fn skip_semis(&mut self) {
        while self.kind() == TokenKind::Semi {
            self.bump();
        }
    }

    /// Skips to the end of the current statement (`;`, `}` or end of file, not consumed).
    fn skip_statement(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::Semi if depth == 0 => return,
                TokenKind::RBrace if depth == 0 => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips the rest of a refused one-line directive (`use`, `import`): up to the end of
    /// the statement or the next top-level item, whichever comes first.
    fn skip_directive(&mut self) {
        while !matches!(self.kind(), TokenKind::Semi | TokenKind::Eof)
            && !self.at_top_level_keyword()
        {
            self.bump();
        }
    }

    /// Skips to the next top-level item (`definition`, `caveat`, `use`) or end of file.
    fn skip_to_item(&mut self) {
        loop {
            if self.kind() == TokenKind::Eof || self.at_top_level_keyword() {
                return;
            }
            self.bump();
        }
    }

    fn at_top_level_keyword(&self) -> bool {
        ["definition", "caveat", "use", "import", "partial"]
            .iter()
            .any(|k| self.at_keyword(k))
    }

    /// Skips a braced block starting at the next `{` (for refused items like `caveat`).
    fn skip_block(&mut self) {
        while !matches!(self.kind(), TokenKind::LBrace | TokenKind::Eof) {
            if self.at_top_level_keyword() && self.pos > 0 {
                return;
            }
            self.bump();
        }
        let mut depth = 0usize;
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn schema(&mut self) -> ast::Schema {
        let mut schema = ast::Schema::default();
        loop {
            self.skip_semis();
            let token = self.peek();
            if token.kind == TokenKind::Eof {
                return schema;
            }
            if self.at_keyword("definition") {
                if let Some(definition) = self.definition() {
                    schema.definitions.push(definition);
                }
            } else if self.at_keyword("caveat") {
                self.unsupported("caveats (`caveat` definitions)", token.span.clone());
                self.bump();
                self.skip_block();
            } else if self.at_keyword("use") {
                self.unsupported("`use` directives", token.span.clone());
                self.bump();
                self.skip_directive();
            } else if self.at_keyword("import") {
                self.unsupported("`import` statements", token.span.clone());
                self.bump();
                self.skip_directive();
            } else if self.at_keyword("partial") {
                self.unsupported("partials (`partial`)", token.span.clone());
                self.bump();
                self.skip_block();
            } else {
                self.expected("`definition`");
                self.bump();
                self.skip_to_item();
            }
        }
    }

    /// A name. Keywords are fine as names (`permission use`, as in SPEC's example),
    /// except `nil` and `self`, which an expression could not refer to.
    fn name(&mut self, what: &str) -> PResult<Name> {
        let token = self.peek();
        if token.kind != TokenKind::Ident || RESERVED.contains(&self.text(token)) {
            return Err(self.expected(what));
        }
        self.bump();
        Ok(Name {
            text: self.text(token).to_string(),
            span: token.span.clone(),
        })
    }

    /// A type name with optional `prefix/` parts.
    fn type_path(&mut self, what: &str) -> PResult<Name> {
        let mut name = self.name(what)?;
        while self.kind() == TokenKind::Slash {
            self.bump();
            let part = self.name("a type name after `/`")?;
            name.text.push('/');
            name.text.push_str(&part.text);
            name.span.end = part.span.end;
        }
        Ok(name)
    }

    fn definition(&mut self) -> Option<ast::Definition> {
        let keyword = self.bump();
        let doc = keyword.doc.clone();
        let Ok(name) = self.type_path("a definition name") else {
            self.skip_to_item();
            return None;
        };
        if self.expect(TokenKind::LBrace, "`{`").is_err() {
            self.skip_to_item();
            return None;
        }
        let mut definition = ast::Definition {
            name,
            doc,
            members: Vec::new(),
        };
        loop {
            self.skip_semis();
            match self.kind() {
                TokenKind::RBrace => {
                    self.bump();
                    return Some(definition);
                }
                TokenKind::Eof => {
                    self.expected("`relation`, `permission` or `}`");
                    return Some(definition);
                }
                _ if self.at_keyword("definition") => {
                    self.expected("`relation`, `permission` or `}`");
                    return Some(definition);
                }
                _ if self.at_keyword("relation") || self.at_keyword("permission") => {
                    if let Some(member) = self.member() {
                        definition.members.push(member);
                    }
                }
                _ if self.at_keyword("caveat") || self.at_keyword("use") => {
                    let span = self.peek().span.clone();
                    self.unsupported(
                        "caveats and `use` directives (and never inside a definition)",
                        span,
                    );
                    self.bump();
                    self.skip_statement();
                }
                _ => {
                    self.expected("`relation`, `permission` or `}`");
                    self.bump();
                    self.skip_statement();
                }
            }
        }
    }

    /// A relation or permission, up to and including its terminator.
    fn member(&mut self) -> Option<ast::Member> {
        let keyword = self.bump();
        let doc = keyword.doc.clone();
        let is_relation = self.text(keyword) == "relation";
        let what = if is_relation {
            "a relation name"
        } else {
            "a permission name"
        };
        let Ok(name) = self.name(what) else {
            self.skip_statement();
            return None;
        };
        let (kind, ok) = if is_relation {
            let body = self.relation_body();
            let ok = body.is_ok();
            (ast::MemberKind::Relation(body.ok()), ok)
        } else {
            let body = self.permission_body();
            let ok = body.is_ok();
            (ast::MemberKind::Permission(body.ok()), ok)
        };
        if ok {
            self.terminator(if is_relation {
                "`|`, a newline or `;`"
            } else {
                "an operator (`+`, `&`, `-`), a newline or `;`"
            });
        } else {
            self.skip_statement();
        }
        if self.kind() == TokenKind::Semi {
            self.bump();
        }
        Some(ast::Member { name, doc, kind })
    }

    /// After a complete statement: a `;` or newline must follow.
    fn terminator(&mut self, expected: &str) {
        match self.kind() {
            TokenKind::Semi | TokenKind::Eof => {}
            _ => {
                self.expected(expected);
                self.skip_statement();
            }
        }
    }

    fn relation_body(&mut self) -> PResult<Vec<SubjectType>> {
        self.expect(TokenKind::Colon, "`:` and the allowed subject types")?;
        let mut types = vec![self.subject_type()?];
        while self.kind() == TokenKind::Pipe {
            self.bump();
            types.push(self.subject_type()?);
        }
        Ok(types)
    }

    fn subject_type(&mut self) -> PResult<SubjectType> {
        let type_name = self.type_path("a subject type name")?;
        let start = type_name.span.start;
        let mut end = type_name.span.end;
        let suffix = match self.kind() {
            TokenKind::Hash => {
                self.bump();
                if self.kind() == TokenKind::Dot {
                    let dots_start = self.peek().span.start;
                    let mut dots_end = dots_start;
                    while self.kind() == TokenKind::Dot {
                        dots_end = self.bump().span.end;
                    }
                    return Err(self.error(
                        ErrorKind::Expected {
                            expected: "a relation name after `#` (`T#...` is only valid in \
                                       relationships, a plain `T` means the same here)"
                                .to_string(),
                            found: "`...`".to_string(),
                        },
                        dots_start..dots_end,
                    ));
                }
                let relation = self.name("a relation name after `#`")?;
                end = relation.span.end;
                SubjectSuffix::Relation(relation)
            }
            TokenKind::Colon => {
                self.bump();
                let star = self.expect(TokenKind::Star, "`*` after `:`")?;
                end = star.span.end;
                SubjectSuffix::Wildcard
            }
            _ => SubjectSuffix::None,
        };
        if self.at_keyword("with") {
            let with_start = self.bump().span.start;
            let mut with_end = with_start + 4;
            let mut words = Vec::new();
            while self.kind() == TokenKind::Ident || self.kind() == TokenKind::Dot {
                let token = self.bump();
                words.push(self.text(token));
                with_end = token.span.end;
            }
            let feature = if words.contains(&"expiration") {
                "expiration (`with expiration`)"
            } else {
                "caveated subject types (`with`)"
            };
            self.unsupported(feature, with_start..with_end);
        }
        Ok(SubjectType {
            type_name,
            suffix,
            span: start..end,
        })
    }

    fn permission_body(&mut self) -> PResult<Expr> {
        self.expect(TokenKind::Eq, "`=` and an expression")?;
        self.depth = 0;
        self.operands = 0;
        self.exclusion()
    }

    fn exclusion(&mut self) -> PResult<Expr> {
        let mut lhs = self.intersection()?;
        while self.kind() == TokenKind::Minus {
            self.bump();
            let rhs = self.intersection()?;
            lhs = binary(BinOp::Exclusion, lhs, rhs);
        }
        Ok(lhs)
    }

    fn intersection(&mut self) -> PResult<Expr> {
        let mut lhs = self.union()?;
        while self.kind() == TokenKind::Amp {
            self.bump();
            let rhs = self.union()?;
            lhs = binary(BinOp::Intersection, lhs, rhs);
        }
        Ok(lhs)
    }

    fn union(&mut self) -> PResult<Expr> {
        let mut lhs = self.operand()?;
        while self.kind() == TokenKind::Plus {
            self.bump();
            let rhs = self.operand()?;
            lhs = binary(BinOp::Union, lhs, rhs);
        }
        Ok(lhs)
    }

    /// A name, an arrow, `nil` or a parenthesized expression.
    fn operand(&mut self) -> PResult<Expr> {
        const WANTED: &str = "a relation or permission name, `nil` or `(`";
        let token = self.peek();
        self.operands += 1;
        if self.operands > MAX_OPERANDS {
            let what = format!("expression too long: more than {MAX_OPERANDS} operands");
            return Err(self.error(ErrorKind::TooComplex { what }, token.span.clone()));
        }
        match token.kind {
            TokenKind::LParen => {
                self.bump();
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    let what = format!(
                        "expression nested too deeply: more than {MAX_DEPTH} levels of parentheses"
                    );
                    return Err(self.error(ErrorKind::TooComplex { what }, token.span.clone()));
                }
                let inner = self.exclusion()?;
                self.expect(TokenKind::RParen, "an operator or `)`")?;
                self.depth -= 1;
                Ok(inner)
            }
            TokenKind::Ident if self.text(token) == "nil" => {
                self.bump();
                Ok(Expr::Nil(token.span.clone()))
            }
            TokenKind::Ident if self.text(token) == "self" => {
                Err(self.unsupported("`self`", token.span.clone()))
            }
            TokenKind::Ident => {
                let left = self.name(WANTED)?;
                match self.kind() {
                    TokenKind::Arrow => {
                        self.bump();
                        let right = self.name("a relation or permission name after `->`")?;
                        if self.kind() == TokenKind::Arrow {
                            let span = left.span.start..self.peek().span.end;
                            return Err(self.unsupported("nested arrows (`a->b->c`)", span));
                        }
                        if self.kind() == TokenKind::Dot {
                            return Err(self.expected("an operator, a newline or `;`"));
                        }
                        Ok(Expr::Arrow { left, right })
                    }
                    TokenKind::Dot => {
                        let dot = self.bump();
                        if self.nth_is_keyword(0, "any") || self.nth_is_keyword(0, "all") {
                            let function = self.bump();
                            let mut end = function.span.end;
                            if self.kind() == TokenKind::LParen {
                                while !matches!(
                                    self.kind(),
                                    TokenKind::RParen
                                        | TokenKind::Semi
                                        | TokenKind::RBrace
                                        | TokenKind::Eof
                                ) {
                                    self.bump();
                                }
                                if self.kind() == TokenKind::RParen {
                                    end = self.bump().span.end;
                                }
                            }
                            let feature = if self.text(function) == "any" {
                                format!(
                                    "arrow functions (`.any()`); write `{0}->NAME` instead of \
                                     `{0}.any(NAME)`, it means the same",
                                    left.text
                                )
                            } else {
                                "arrow functions (`.all()`)".to_string()
                            };
                            Err(self.unsupported(&feature, dot.span.start..end))
                        } else {
                            Err(self.expected("`any` or `all` after `.`"))
                        }
                    }
                    _ => Ok(Expr::Name(left)),
                }
            }
            _ => Err(self.expected(WANTED)),
        }
    }
}

static EOF: Token = Token {
    kind: TokenKind::Eof,
    span: 0..0,
    synthetic: false,
    doc: None,
};

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}
