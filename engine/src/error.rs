//! Engine errors: one enum per operation family, gathered by [`EngineError`].

use crate::tuple::SyntaxError;

/// Failures of the storage layer (redb or a future SQL backend).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store could not be opened, read or written.
    #[error("storage: {0}")]
    Backend(String),
    /// The store holds data this build cannot read.
    #[error("store is corrupt or from an incompatible version: {0}")]
    Corrupt(String),
}

/// Why a request was refused. Every variant means nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Malformed names or ids.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The schema text did not compile.
    #[error("invalid schema:\n{0}")]
    Schema(pemba_schema::SchemaErrors),
    /// An operation needs a schema and none has been written.
    #[error("no schema has been written yet")]
    NoSchema,
    /// The request names something the schema does not have, or uses it wrongly.
    #[error("{0}")]
    InvalidArgument(String),
    /// A `create` found the relationship already stored.
    #[error("relationship `{0}` already exists")]
    AlreadyExists(String),
    /// A precondition, limit or schema change constraint did not hold.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A revision token from the future, or one that cannot be read.
    #[error("{0}")]
    InvalidToken(String),
    /// The engine cannot honour this request in this form.
    #[error("{0}")]
    Unsupported(String),
}

impl From<redb::Error> for StorageError {
    fn from(error: redb::Error) -> Self {
        StorageError::Backend(error.to_string())
    }
}

macro_rules! storage_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StorageError {
            fn from(error: $ty) -> Self {
                StorageError::Backend(error.to_string())
            }
        }
        impl From<$ty> for EngineError {
            fn from(error: $ty) -> Self {
                EngineError::Storage(error.into())
            }
        }
    )*};
}

storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
