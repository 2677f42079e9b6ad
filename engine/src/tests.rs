//! Engine tests: conformance files, reference model, persistence, concurrency, operations.
//!
//! The behaviour tests of `operations.rs` and `transactions.rs` take a [`Backend`] and run
//! once on each store ([`on_both_stores!`]): `…::redb::NAME` on redb in memory (or in a
//! temp file), `…::postgres::NAME` on a fresh database of the throwaway PostgreSQL server
//! (`tests/shared/postgres.rs`), so both stores answer alike.

use crate::Engine;

#[path = "../../tests/shared/postgres.rs"]
mod pg;

/// A store a behaviour test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Redb,
    Postgres,
}

impl Backend {
    /// A place for a store of this kind, empty until first opened.
    pub(crate) fn place(self) -> Place {
        match self {
            Backend::Redb => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("store.redb");
                Place::File { _dir: dir, path }
            }
            Backend::Postgres => {
                let url = pg::fresh_database();
                crate::migrate(&url).unwrap();
                Place::Database(url)
            }
        }
    }

    /// An engine on a fresh, empty store: redb in memory, or a fresh migrated database.
    pub(crate) fn fresh(self) -> Engine {
        match self {
            Backend::Redb => Engine::in_memory().unwrap(),
            Backend::Postgres => self.place().open(),
        }
    }
}

/// Where a store lives, so a test can open it again (a restart, or a second replica).
pub(crate) enum Place {
    /// A redb file in a temp directory, removed with it.
    File {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    /// A migrated database's URL.
    Database(String),
}

impl Place {
    /// An engine on the store here, its index built from what is stored.
    pub(crate) fn open(&self) -> Engine {
        match self {
            Place::File { path, .. } => Engine::open(path).unwrap(),
            Place::Database(url) => {
                Engine::with_store(Box::new(crate::PostgresStore::connect(url).unwrap())).unwrap()
            }
        }
    }
}

/// For each named `fn NAME(backend: Backend)` of the enclosing module, a test
/// `redb::NAME` and a test `postgres::NAME`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::tests::Backend::Redb);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::tests::Backend::Postgres);
                }
            )*
        }
    };
}

// After the macro, so its textual scope covers them.
mod operations;
pub(crate) mod reference_model;
mod transactions;
