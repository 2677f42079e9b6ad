//! Pemba's engine: relationships stored durably in redb, answered from an in-memory index
//! of interned ids and roaring bitmaps.
//!
//! Every question returns an [`Answer`]: the value and the revision it reflects. Each
//! operation family has its own error ([`QueryError`], [`WriteError`],
//! [`SchemaWriteError`], [`StorageError`]), gathered by [`EngineError`].
//!
//! ```
//! use pemba_engine::{CheckArgs, Consistency, Engine, ObjectRef, SubjectRef, Tuple, Update};
//!
//! let engine = Engine::in_memory()?;
//! engine.write_schema(
//!     "definition user {}\n\
//!      definition group {\n relation member: user\n}\n\
//!      definition doc {\n relation viewer: user | group#member\n permission view = viewer\n}",
//! )?;
//! let touch = |text: &str| Update::touch(Tuple::parse(text).unwrap());
//! engine.write(
//!     vec![touch("group:eng#member@user:alice"), touch("doc:readme#viewer@group:eng#member")],
//!     vec![],
//! )?;
//! let (readme, alice) = (ObjectRef::new("doc", "readme"), SubjectRef::object("user", "alice"));
//! let answer = engine.check(Consistency::FullyConsistent, CheckArgs::new(&readme, "view", &alice))?;
//! assert!(answer.value);
//! # Ok::<(), pemba_engine::EngineError>(())
//! ```
#![warn(missing_docs)]

mod engine;
mod error;
mod eval;
mod expand;
mod filter;
mod group_commit;
mod index;
mod plan;
mod posting;
#[cfg(test)]
mod reference;
mod revision;
mod store;
mod tuple;
mod validate;
pub mod validation_file;
mod write;

pub use engine::{
    CheckArgs, CheckRequest, CheckedImport, Engine, FoundSubject, FoundSubjectRef, FoundSubjects,
    Imported, LoadedSchema, Names, NamesIter, Page, ReadPage, Relationships, ResourceLookup,
    SubjectLookup,
};
pub use error::{
    EngineError, InvalidError, QueryError, SchemaWriteError, StorageError, TokenError, WriteError,
};
pub use expand::{ExpandKind, ExpandNode};
pub use filter::{RelationshipFilter, SubjectFilter};
pub use revision::{Answer, Consistency, Revision};
pub use store::{
    migrate, migrate_with, redact_url, Admit, AdmitSchema, BatchCommitted, CopyDigests,
    DeleteCommitted, Digest, Head, Lag, LogEntry, Migrated, PostgresOptions, PostgresStore,
    RawTuple, RedbStore, Scanned, Store, DEFAULT_STATEMENT_TIMEOUT,
};
pub use tuple::{
    is_valid_object_id, parse_tuples, validate_object, ObjectRef, SubjectRef, SyntaxError, Tuple,
    MAX_OBJECT_ID_LEN,
};
pub use validate::{validate_raw, validate_tuple};
pub use write::{
    Change, ChangeSet, CheckCondition, DeleteRequest, Deleted, MetadataCondition, MetadataWrite,
    Operation, OverLimit, Precondition, PreconditionKind, Transaction, Update,
};

#[cfg(test)]
mod tests;
