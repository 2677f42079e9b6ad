//! The PostgreSQL tables and their migrations: [`migrate`], and the version check every
//! replica runs when it connects.

use postgres::GenericClient;

use super::{connect_once, pg_error, ConnectOptions, PostgresOptions};
use crate::error::StorageError;

/// The newest schema version of Pemba's tables; each entry of [`MIGRATIONS`] is one.
pub(super) const VERSION: i32 = 1;

/// Key of the advisory lock that serializes concurrent `pemba migrate` runs (any 64-bit
/// number no other application on the database uses; this one spells "pemba" in ASCII).
const MIGRATION_LOCK: i64 = 0x70_65_6d_62_61;

/// Each version's statements, applied in order inside one transaction. Text columns use
/// the `C` collation so that `ORDER BY` is byte order, the order of redb's keys.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE pemba_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision bigint NOT NULL,
    relationships bigint NOT NULL
);
INSERT INTO pemba_head (id, revision, relationships) VALUES (true, 0, 0);
CREATE TABLE pemba_relationships (
    resource_type text COLLATE "C" NOT NULL,
    resource_id text COLLATE "C" NOT NULL,
    relation text COLLATE "C" NOT NULL,
    subject_type text COLLATE "C" NOT NULL,
    subject_id text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
);
CREATE INDEX pemba_relationships_by_subject ON pemba_relationships
    (subject_type, subject_id, subject_relation, resource_type, resource_id, relation);
CREATE TABLE pemba_changelog (
    revision bigint PRIMARY KEY,
    changes text NOT NULL,
    schema_changed boolean NOT NULL DEFAULT false,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE pemba_schemas (
    revision bigint PRIMARY KEY,
    text text NOT NULL
);
CREATE TABLE pemba_app_metadata (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
"#,
)];

/// What `pemba migrate` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The version found before (0: no Pemba tables).
    pub from: i32,
    /// The version now.
    pub to: i32,
}

/// Creates or upgrades Pemba's tables in the database at `url`.
///
/// Idempotent, and safe to run from several replicas at once: a transaction-scoped
/// advisory lock makes concurrent runs take turns, and each applies only the versions the
/// database lacks once it holds the lock.
pub fn migrate(url: &str) -> Result<Migrated, StorageError> {
    migrate_with(url, &PostgresOptions::default())
}

/// [`migrate`] with connection options (a password file, a statement timeout).
pub fn migrate_with(url: &str, options: &PostgresOptions) -> Result<Migrated, StorageError> {
    let options = ConnectOptions::parse(url, options)?;
    let mut client = connect_once(&options)?;
    let mut txn = client.transaction().map_err(pg_error)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS pemba_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .map_err(pg_error)?;
    let from = applied_version(&mut txn)?;
    if from > VERSION {
        return Err(StorageError::corrupt(format!(
            "the database is at version {from}, newer than this build's {VERSION}: upgrade pemba"
        )));
    }
    for (version, statements) in MIGRATIONS {
        if *version > from {
            txn.batch_execute(statements).map_err(pg_error)?;
            txn.execute(
                "INSERT INTO pemba_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(pg_error)?;
        }
    }
    txn.commit().map_err(pg_error)?;
    Ok(Migrated {
        from,
        to: VERSION.max(from),
    })
}

/// The newest applied migration (0 when none).
fn applied_version(client: &mut impl GenericClient) -> Result<i32, StorageError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM pemba_migrations",
            &[],
        )
        .map_err(pg_error)?;
    row.try_get(0).map_err(pg_error)
}

/// Refuses a database that `pemba migrate` has not brought to [`VERSION`].
pub(super) fn require_current(client: &mut impl GenericClient) -> Result<(), StorageError> {
    let exists = client
        .query_one("SELECT to_regclass('pemba_migrations') IS NOT NULL", &[])
        .map_err(pg_error)?;
    let exists: bool = exists.try_get(0).map_err(pg_error)?;
    if !exists {
        return Err(StorageError::NotMigrated {
            found: "no pemba tables".to_string(),
        });
    }
    match applied_version(client)? {
        VERSION => Ok(()),
        older if older < VERSION => Err(StorageError::NotMigrated {
            found: format!("version {older}, this build needs {VERSION}"),
        }),
        newer => Err(StorageError::corrupt(format!(
            "the database is at version {newer}, newer than this build's {VERSION}: upgrade pemba"
        ))),
    }
}
