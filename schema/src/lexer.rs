//! Lexer: schema text to tokens, with Go-style synthetic statement terminators.
//!
//! A newline (or a comment containing one) right after an identifier, `}`, `)` or `*`
//! produces a synthetic `;`, so each relation and permission ends at its line's end
//! unless the line ends with an operator. Comments are dropped, except `/** doc */`
//! comments, whose text is attached to the next token.

use std::ops::Range;

use crate::error::{ErrorKind, SchemaError};

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A run of `[A-Za-z0-9_]`; keywords are identifiers told apart by the parser.
    Ident,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Colon,
    /// `;` or a synthetic terminator (empty span at the newline).
    Semi,
    Pipe,
    Plus,
    Amp,
    Minus,
    Arrow,
    Eq,
    Hash,
    Star,
    Slash,
    Dot,
    Comma,
    /// Any other character (or an operator SpiceDB knows but we do not, like `&&`).
    Other,
    Eof,
}

impl TokenKind {
    /// How a token of this kind is named in "expected ..., found ..." messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TokenKind::Ident => "identifier",
            TokenKind::LBrace => "`{`",
            TokenKind::RBrace => "`}`",
            TokenKind::LParen => "`(`",
            TokenKind::RParen => "`)`",
            TokenKind::Colon => "`:`",
            TokenKind::Semi => "end of statement",
            TokenKind::Pipe => "`|`",
            TokenKind::Plus => "`+`",
            TokenKind::Amp => "`&`",
            TokenKind::Minus => "`-`",
            TokenKind::Arrow => "`->`",
            TokenKind::Eq => "`=`",
            TokenKind::Hash => "`#`",
            TokenKind::Star => "`*`",
            TokenKind::Slash => "`/`",
            TokenKind::Dot => "`.`",
            TokenKind::Comma => "`,`",
            TokenKind::Other => "unexpected character",
            TokenKind::Eof => "end of file",
        }
    }
}

/// One token with its byte span in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Range<usize>,
    /// True for a terminator inserted at a newline.
    pub synthetic: bool,
    /// Text of the `/** ... */` comments between the previous token and this one.
    pub doc: Option<String>,
}

/// Splits `source` into tokens; the last token is always [`TokenKind::Eof`].
pub(crate) fn lex(source: &str, errors: &mut Vec<SchemaError>) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = 0;
    let mut docs: Vec<String> = Vec::new();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);

    // Whether a newline here would end a statement (Go's rule).
    let wants_semi = |tokens: &[Token]| {
        tokens.last().is_some_and(|t| {
            !t.synthetic
                && matches!(
                    t.kind,
                    TokenKind::Ident | TokenKind::RBrace | TokenKind::RParen | TokenKind::Star
                )
        })
    };
    let push_semi = |tokens: &mut Vec<Token>, at_pos: usize| {
        if wants_semi(tokens) {
            tokens.push(Token {
                kind: TokenKind::Semi,
                span: at_pos..at_pos,
                synthetic: true,
                doc: None,
            });
        }
    };

    while pos < bytes.len() {
        let c = at(pos);
        match c {
            b'\n' => {
                push_semi(&mut tokens, pos);
                pos += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0c => {
                pos += 1;
                continue;
            }
            b'/' if at(pos + 1) == b'/' => {
                while pos < bytes.len() && at(pos) != b'\n' {
                    pos += 1;
                }
                continue;
            }
            b'/' if at(pos + 1) == b'*' => {
                let start = pos;
                let is_doc = at(pos + 2) == b'*' && at(pos + 3) != b'/';
                let body_start = if is_doc { pos + 3 } else { pos + 2 };
                let close = source
                    .get(body_start..)
                    .and_then(|rest| rest.find("*/"))
                    .map(|i| body_start + i);
                let (body_end, end) = match close {
                    Some(i) => (i, i + 2),
                    None => {
                        errors.push(SchemaError::new(
                            ErrorKind::UnterminatedComment,
                            start..start + 2,
                        ));
                        (bytes.len(), bytes.len())
                    }
                };
                let body = source.get(body_start..body_end).unwrap_or("");
                if body.contains('\n') {
                    push_semi(&mut tokens, start);
                }
                if is_doc {
                    let text = clean_doc(body);
                    if !text.is_empty() {
                        docs.push(text);
                    }
                }
                pos = end;
                continue;
            }
            _ => {}
        }

        let start = pos;
        let kind = if c.is_ascii_alphanumeric() || c == b'_' {
            while at(pos).is_ascii_alphanumeric() || at(pos) == b'_' {
                pos += 1;
            }
            TokenKind::Ident
        } else {
            pos += 1;
            match c {
                b'{' => TokenKind::LBrace,
                b'}' => TokenKind::RBrace,
                b'(' => TokenKind::LParen,
                b')' => TokenKind::RParen,
                b':' => TokenKind::Colon,
                b';' => TokenKind::Semi,
                b'|' if at(pos) == b'|' => {
                    pos += 1;
                    TokenKind::Other
                }
                b'|' => TokenKind::Pipe,
                b'+' => TokenKind::Plus,
                b'&' if at(pos) == b'&' => {
                    pos += 1;
                    TokenKind::Other
                }
                b'&' => TokenKind::Amp,
                b'-' if at(pos) == b'>' => {
                    pos += 1;
                    TokenKind::Arrow
                }
                b'-' => TokenKind::Minus,
                b'=' => TokenKind::Eq,
                b'#' => TokenKind::Hash,
                b'*' => TokenKind::Star,
                b'/' => TokenKind::Slash,
                b'.' => TokenKind::Dot,
                b',' => TokenKind::Comma,
                _ => {
                    // Keep whole UTF-8 characters together so spans stay on char boundaries.
                    while pos < bytes.len() && !source.is_char_boundary(pos) {
                        pos += 1;
                    }
                    TokenKind::Other
                }
            }
        };
        let doc = if docs.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut docs).join("\n"))
        };
        tokens.push(Token {
            kind,
            span: start..pos,
            synthetic: false,
            doc,
        });
    }
    push_semi(&mut tokens, bytes.len());
    // Errors at the end of the file point just after its last text, not at an empty
    // last line.
    let end = source.trim_end().len();
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: end..end,
        synthetic: false,
        doc: None,
    });
    tokens
}

/// The text of a doc comment body: trimmed; when every line after the first starts with
/// `*` (the usual `/**\n * text\n */` layout), that `*` and one following space are
/// dropped from those lines. The printer writes multi-line docs in that layout, so
/// printing and lexing again gives back the same text.
pub(crate) fn clean_doc(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    let mut lines = body.split('\n');
    let first = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    let starred = !rest.is_empty()
        && rest
            .iter()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('*'));
    if !starred {
        return body.trim().to_string();
    }
    let mut out = vec![first.to_string()];
    for line in rest {
        let line = line.trim_start();
        let line = line.strip_prefix('*').unwrap_or(line);
        let line = line.strip_prefix(' ').unwrap_or(line);
        out.push(line.to_string());
    }
    out.join("\n").trim().to_string()
}
