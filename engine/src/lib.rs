//! Pemba's engine: relationships stored durably in redb, answered from an in-memory index
//! of interned ids and roaring bitmaps.
//!
//! ```
//! use pemba_engine::{Consistency, Engine, ObjectRef, Operation, SubjectRef, Tuple, Update};
//!
//! let engine = Engine::in_memory()?;
//! engine.write_schema(
//!     "definition user {}\n\
//!      definition group {\n relation member: user\n}\n\
//!      definition doc {\n relation viewer: user | group#member\n permission view = viewer\n}",
//! )?;
//! let tuple = |text: &str| Update { operation: Operation::Touch, tuple: Tuple::parse(text).unwrap() };
//! engine.write(&[tuple("group:eng#member@user:alice"), tuple("doc:readme#viewer@group:eng#member")], &[])?;
//! let (allowed, _revision) = engine.check(
//!     Consistency::FullyConsistent,
//!     &ObjectRef::new("doc", "readme"),
//!     "view",
//!     &SubjectRef::object("user", "alice"),
//! )?;
//! assert!(allowed);
//! # Ok::<(), pemba_engine::EngineError>(())
//! ```
#![warn(missing_docs)]

mod engine;
pub mod error;
mod eval;
mod expand;
pub mod filter;
mod index;
mod posting;
pub mod reference;
pub mod revision;
pub mod store;
pub mod tuple;
mod validate;
pub mod validation_file;

pub use engine::{
    CheckArgs, CheckRequest, DeleteOutcome, Engine, FoundSubject, LoadedSchema, LookupResources,
    LookupSubjects, Page,
};
pub use error::{EngineError, StorageError};
pub use expand::{ExpandKind, ExpandNode};
pub use filter::{RelationshipFilter, SubjectFilter};
pub use revision::{Consistency, Revision};
pub use store::{
    Change, ChangeSet, MetadataCondition, MetadataWrite, Operation, Precondition, PreconditionKind,
    RedbStore, Store, Transaction, Update,
};
pub use tuple::{parse_tuples, validate_object, ObjectRef, SubjectRef, SyntaxError, Tuple};
pub use validate::validate_tuple;

#[cfg(test)]
mod tests;
