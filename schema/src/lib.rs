//! Pemba's schema language: lexer, parser, compiler and canonical printer.
//!
//! (Crate docs to be completed by the schema work.)
#![warn(missing_docs)]

pub mod compiled;

pub use compiled::*;
