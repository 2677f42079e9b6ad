//! Pemba's schema language: a subset of SpiceDB's, compiled to a [`CompiledSchema`].
//!
//! The pipeline is `lexer` → `parser` (syntax tree with byte spans) → `compile`
//! (names resolved, schema validated). [`compile`] reports every error it finds as
//! [`SchemaErrors`]; [`print`] writes a compiled schema back as canonical text.
//!
//! ```
//! let source = "
//! definition user {}
//!
//! definition group {
//!     relation member: user
//!     permission view = member
//! }
//! ";
//! let schema = pemba_schema::compile(source)?;
//! let group = schema.type_by_name("group").unwrap();
//! assert!(schema.member_by_name(group, "view").is_some());
//!
//! let errors = pemba_schema::compile("definition doc { relation owner: usr }").unwrap_err();
//! assert!(errors.render("doc.zed", "definition doc { relation owner: usr }").contains("doc.zed:1:"));
//! # Ok::<(), pemba_schema::SchemaErrors>(())
//! ```

mod ast;
mod compile;
pub mod compiled;
mod cycles;
mod error;
mod lexer;
mod names;
mod parser;
mod printer;

pub use compiled::*;
pub use error::{line_col, ErrorKind, SchemaError, SchemaErrors};
pub use names::{is_valid_member_name, is_valid_type_name};
pub use printer::print;

/// Compiles schema text: parses it, resolves every name and validates the result.
///
/// Returns every error found (syntax errors and validation errors together, in source
/// order); never panics, whatever the input.
pub fn compile(source: &str) -> Result<CompiledSchema, SchemaErrors> {
    let mut errors = Vec::new();
    let tokens = lexer::lex(source, &mut errors);
    let ast = parser::parse(source, &tokens, &mut errors);
    let compiled = compile::compile_ast(source, &ast, &mut errors);
    if errors.is_empty() {
        return Ok(compiled);
    }
    let index = error::LineIndex::new(source);
    for error in &mut errors {
        let (line, column) = index.line_col(error.span.start);
        error.line = line;
        error.column = column;
    }
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    errors.dedup();
    Err(SchemaErrors { errors })
}
