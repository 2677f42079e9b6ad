//! [`PostgresStore`]: the [`Store`] several replicas share, on PostgreSQL 13+.
//!
//! Every write transaction locks the one row of `pemba_head` first, which orders commits
//! and makes revisions gapless across replicas; the argument is in `docs/storage.md`.
//! Connection options and the pool live here, the tables in `postgres/migrate.rs`, the
//! write transactions in `postgres/writes.rs` and filters as SQL in `postgres/sql.rs`.

use std::io::BufRead;
use std::str::FromStr;
use std::time::Duration;

use parking_lot::Mutex;
use postgres::{Client, IsolationLevel};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

mod migrate;
mod sql;
mod tls;
mod writes;

pub use migrate::{migrate, migrate_with, Migrated};

use super::changelog::decode_changes;
use super::{Admit, AdmitSchema, DeleteCommitted, Head, Lag, LogEntry, RawTuple, Scanned, Store};
use crate::error::{SchemaWriteError, StorageError, WriteError};
use crate::filter::RelationshipFilter;
use crate::revision::{Answer, Revision};
use crate::tuple::Tuple;
use crate::write::{ChangeSet, DeleteRequest, Transaction};

/// The channel writers notify at commit and tailers listen on.
const CHANNEL: &str = "pemba_changes";

/// Connections one replica keeps: the writer holds one at a time (writes are serialized
/// per replica by the engine), the rest serve reads, catch-ups and scans.
const POOL_SIZE: u32 = 8;

/// How long a request waits for a connection, and a new connection for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default statement timeout: no statement runs longer, so no request hangs on a
/// stuck server.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a replica connects, beyond what the URL says.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Longest any one statement may run (PostgreSQL's `statement_timeout`), unless the
    /// URL's `options` set one; default [`DEFAULT_STATEMENT_TIMEOUT`].
    pub statement_timeout: Duration,
    /// A file holding the password (its first line), used when neither the URL nor
    /// `PGPASSWORD` gives one; `PEMBA_DATASTORE_PASSWORD_FILE` names one when this is unset.
    pub password_file: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            password_file: None,
        }
    }
}

/// `url` with any password replaced by `***` (in the user part and in a `password=`
/// parameter), for logs and messages.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key == "password" => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

/// A datastore URL, parsed, with the password filled in from the environment when the
/// URL has none.
#[derive(Clone)]
pub(super) struct ConnectOptions {
    config: postgres::Config,
    /// TLS as the URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` say.
    tls: MakeRustlsConnect,
    /// `sslmode=allow`: `config` is plain, and this one (TLS, the certificate unchecked)
    /// is tried when the server refuses a plain connection.
    allow_tls: Option<postgres::Config>,
}

impl ConnectOptions {
    /// Parses `url` (`postgres://USER@HOST:PORT/DB?sslmode=...`); the password may come
    /// from the URL, `PGPASSWORD`, or a password file ([`PostgresOptions::password_file`],
    /// else `PEMBA_DATASTORE_PASSWORD_FILE`).
    pub(super) fn parse(url: &str, options: &PostgresOptions) -> Result<Self, StorageError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StorageError::Unavailable {
                reason: format!(
                    "the datastore URL `{}` must start with `postgres://` or `postgresql://`",
                    redact_url(url)
                ),
            });
        }
        let settings = tls::split_url(url)?;
        let tls = tls::connector(&settings)?;
        // The parser's message never repeats the URL, so it cannot leak a password.
        let mut config =
            postgres::Config::from_str(&settings.url).map_err(|e| StorageError::Unavailable {
                reason: format!("invalid datastore URL `{}`: {e}", redact_url(url)),
            })?;
        if config.get_password().is_none() {
            let file = options
                .password_file
                .clone()
                .or_else(|| std::env::var_os("PEMBA_DATASTORE_PASSWORD_FILE").map(Into::into));
            if let Some(password) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
                config.password(password);
            } else if let Some(path) = file {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| StorageError::Unavailable {
                        reason: format!("cannot read the password file `{}`: {e}", path.display()),
                    })?;
                config.password(text.lines().next().unwrap_or_default());
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let timeout = format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis().max(1)
        );
        let merged = match config.get_options() {
            Some(own) if own.contains("statement_timeout") => own.to_string(),
            Some(own) => format!("{own} {timeout}"),
            None => timeout,
        };
        config.options(&merged);
        let allow_tls = (settings.mode == tls::SslMode::Allow).then(|| {
            let mut encrypted = config.clone();
            encrypted.ssl_mode(postgres::config::SslMode::Require);
            encrypted
        });
        Ok(ConnectOptions {
            config,
            tls,
            allow_tls,
        })
    }

    /// One connection. With `sslmode=allow`, as libpq: plain first, and TLS when the
    /// server answered the plain attempt with an error (`pg_hba.conf` takes only TLS, say);
    /// a server that cannot be reached is not tried twice.
    fn connect(&self) -> Result<Client, postgres::Error> {
        match (self.config.connect(self.tls.clone()), &self.allow_tls) {
            (Err(refused), Some(encrypted)) if refused.code().is_some() => {
                encrypted.connect(self.tls.clone())
            }
            (connected, _) => connected,
        }
    }
}

/// The pool's connection manager: [`ConnectOptions::connect`], so every pooled
/// connection follows `sslmode=allow` as the first does; checks as `r2d2_postgres`'s.
struct Manager {
    options: ConnectOptions,
    checks: PostgresConnectionManager<MakeRustlsConnect>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Client;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Client, postgres::Error> {
        self.options.connect()
    }

    fn is_valid(&self, client: &mut Client) -> Result<(), postgres::Error> {
        self.checks.is_valid(client)
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        self.checks.has_broken(client)
    }
}

/// One connection outside the pool (migrations, the listener).
pub(super) fn connect_once(options: &ConnectOptions) -> Result<Client, StorageError> {
    off_runtime(|| options.connect().map_err(pg_error))
}

/// Runs `work` on a thread outside any async runtime: the blocking client drives its own
/// runtime, which cannot start on a thread that already runs one (the server calls the
/// engine's read path from its async handlers).
fn off_runtime<T: Send>(
    work: impl FnOnce() -> Result<T, StorageError> + Send,
) -> Result<T, StorageError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .unwrap_or_else(|_| Err(StorageError::LostOutcome))
    })
}

/// A PostgreSQL error as a [`StorageError`]: a lost or refused connection (class 08,
/// shutdown, too many connections) is `Unavailable`, anything else `Postgres`.
pub(super) fn pg_error(error: postgres::Error) -> StorageError {
    let unavailable = error.is_closed()
        || match error.code() {
            None => true,
            Some(code) => {
                let code = code.code();
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "57014"
            }
        };
    if unavailable {
        StorageError::Unavailable {
            reason: crate::error::postgres_text(&error),
        }
    } else {
        StorageError::Postgres {
            source: std::sync::Arc::new(error),
        }
    }
}

fn to_revision(value: i64) -> Result<Revision, StorageError> {
    u64::try_from(value)
        .map(Revision)
        .map_err(|_| StorageError::corrupt(format!("negative revision {value} in the database")))
}

fn to_sql_revision(revision: Revision) -> Result<i64, StorageError> {
    i64::try_from(revision.0)
        .map_err(|_| StorageError::corrupt(format!("revision {} is out of range", revision.0)))
}

type Pool = r2d2::Pool<Manager>;

/// The PostgreSQL-backed [`Store`]: the truth several `pemba serve` replicas share.
///
/// Holds a small connection pool and, for the tailer, one connection that `LISTEN`s.
pub struct PostgresStore {
    /// Always `Some` until dropped (see `Drop`).
    pool: Option<Pool>,
    options: ConnectOptions,
    /// The `LISTEN` connection, opened on first use and dropped (to be reopened) when it
    /// fails; a missing one only costs a poll interval.
    listener: Mutex<Option<Client>>,
}

impl PostgresStore {
    /// Connects to the database at `url`, which `pemba migrate` must have prepared, with
    /// default [`PostgresOptions`].
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, &PostgresOptions::default())
    }

    /// Connects to the database at `url` with `options`.
    pub fn connect_with(url: &str, options: &PostgresOptions) -> Result<Self, StorageError> {
        let options = ConnectOptions::parse(url, options)?;
        let manager = Manager {
            options: options.clone(),
            checks: PostgresConnectionManager::new(options.config.clone(), options.tls.clone()),
        };
        let pool = off_runtime(|| {
            r2d2::Pool::builder()
                .max_size(POOL_SIZE)
                .min_idle(Some(1))
                .connection_timeout(CONNECT_TIMEOUT)
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build(manager)
                .map_err(|e| {
                    // The pool keeps only its last failure's kind ("error performing TLS
                    // handshake"); one more attempt of our own says why.
                    let why = match connect_once(&options) {
                        Err(StorageError::Unavailable { reason }) => reason,
                        Err(other) => other.to_string(),
                        Ok(_) => e.to_string(),
                    };
                    StorageError::Unavailable {
                        reason: format!("cannot connect to the datastore: {why}"),
                    }
                })
        })?;
        let store = PostgresStore {
            pool: Some(pool),
            options,
            listener: Mutex::new(None),
        };
        store.with_client(migrate::require_current)?;
        Ok(store)
    }

    /// A pooled connection, waiting at most [`CONNECT_TIMEOUT`] for one.
    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        let pool = self.pool.as_ref().ok_or(StorageError::LostOutcome)?;
        pool.get().map_err(|e| StorageError::Unavailable {
            reason: format!("no datastore connection: {e}"),
        })
    }

    /// Runs `work` with a pooled connection, off the async runtime.
    fn with_client<T: Send>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StorageError> + Send,
    ) -> Result<T, StorageError> {
        off_runtime(|| {
            let mut client = self.connection()?;
            work(&mut client)
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A client closes its connection by blocking on its own runtime, which panics on
        // a thread that drives another: the server drops its last engine handle on one.
        let pool = self.pool.take();
        let listener = self.listener.get_mut().take();
        if tokio::runtime::Handle::try_current().is_ok() {
            let _closed = std::thread::spawn(move || drop((pool, listener))).join();
        }
    }
}

/// Reads the six text columns of a relationship row as a [`RawTuple`] and visits it.
fn visit_copy_line(line: &str, visit: &mut dyn FnMut(RawTuple<'_>)) -> Result<(), StorageError> {
    let mut fields = line.split('\t');
    let mut next = || {
        fields
            .next()
            .filter(|f| !f.contains('\\'))
            .ok_or_else(|| StorageError::corrupt(format!("malformed relationship row `{line}`")))
    };
    let raw = RawTuple {
        resource_type: next()?,
        resource_id: next()?,
        relation: next()?,
        subject_type: next()?,
        subject_id: next()?,
        subject_relation: next()?,
    };
    visit(raw);
    Ok(())
}

/// A read-only `REPEATABLE READ` transaction: every statement in it sees one snapshot, so
/// the head row and the rows read beside it agree.
fn read_snapshot(client: &mut Client) -> Result<postgres::Transaction<'_>, StorageError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_error)
}

/// Rows a scan hands from its reading thread to its visiting one at a time.
const SCAN_CHUNK: usize = 4096;

/// Reads the head row and every relationship in one `REPEATABLE READ` snapshot, handing
/// each row (COPY's text line, without its newline) to `line`.
fn scan(
    client: &mut Client,
    line: &mut dyn FnMut(&str) -> Result<(), StorageError>,
) -> Result<Scanned, StorageError> {
    let mut txn = read_snapshot(client)?;
    let row = txn
        .query_one("SELECT revision, relationships FROM pemba_head", &[])
        .map_err(pg_error)?;
    let scanned = Scanned {
        revision: to_revision(row.try_get(0).map_err(pg_error)?)?,
        recorded_count: u64::try_from(row.try_get::<_, i64>(1).map_err(pg_error)?).unwrap_or(0),
        mirrored: false,
    };
    let reader = txn
        .copy_out(
            "COPY (SELECT resource_type, resource_id, relation, subject_type, \
             subject_id, subject_relation FROM pemba_relationships \
             ORDER BY resource_type, resource_id, relation) TO STDOUT",
        )
        .map_err(pg_error)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut text = String::new();
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .map_err(|e| StorageError::Unavailable {
                reason: format!("reading relationships: {e}"),
            })?;
        if read == 0 {
            break;
        }
        line(text.trim_end_matches('\n'))?;
    }
    drop(reader);
    txn.commit().map_err(pg_error)?;
    Ok(scanned)
}

impl Store for PostgresStore {
    fn head(&self) -> Result<Head, StorageError> {
        self.with_client(|client| {
            let mut txn = read_snapshot(client)?;
            let row = txn
                .query_one("SELECT revision, relationships FROM pemba_head", &[])
                .map_err(pg_error)?;
            let schema = txn
                .query_opt(
                    "SELECT text FROM pemba_schemas ORDER BY revision DESC LIMIT 1",
                    &[],
                )
                .map_err(pg_error)?;
            Ok(Head {
                revision: to_revision(row.try_get(0).map_err(pg_error)?)?,
                relationships: u64::try_from(row.try_get::<_, i64>(1).map_err(pg_error)?)
                    .unwrap_or(0),
                schema: schema
                    .map(|row| row.try_get::<_, String>(0))
                    .transpose()
                    .map_err(pg_error)?,
            })
        })
    }

    /// One copy (PostgreSQL checksums its pages when the cluster was created with them,
    /// and a row lives once), so `mirror` is never called.
    fn scan_all(
        &self,
        visit: &mut dyn FnMut(RawTuple<'_>),
        _mirror: &mut dyn FnMut(RawTuple<'_>),
    ) -> Result<Scanned, StorageError> {
        if tokio::runtime::Handle::try_current().is_err() {
            let mut client = self.connection()?;
            return scan(&mut client, &mut |line| visit_copy_line(line, visit));
        }
        // On a runtime's thread the blocking client must run elsewhere, and `visit` is not
        // `Send`: a worker thread reads and hands rows over in chunks (bounded, so memory
        // stays small), and they are visited here.
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<String>>(4);
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || {
                let mut client = self.connection()?;
                let mut chunk = Vec::with_capacity(SCAN_CHUNK);
                let scanned = scan(&mut client, &mut |line| {
                    chunk.push(line.to_string());
                    if chunk.len() == SCAN_CHUNK {
                        chunks
                            .send(std::mem::take(&mut chunk))
                            .map_err(|_| StorageError::LostOutcome)?;
                    }
                    Ok(())
                })?;
                if !chunk.is_empty() {
                    chunks.send(chunk).map_err(|_| StorageError::LostOutcome)?;
                }
                Ok(scanned)
            });
            let mut visited = Ok(());
            for chunk in received.iter() {
                visited = chunk
                    .iter()
                    .try_for_each(|line| visit_copy_line(line, visit));
                if visited.is_err() {
                    break;
                }
            }
            drop(received);
            let scanned = worker.join().unwrap_or(Err(StorageError::LostOutcome));
            visited.and(scanned)
        })
    }

    fn commit(
        &self,
        transactions: &[&Transaction],
        admit: &mut Admit<'_>,
    ) -> Result<Vec<Result<ChangeSet, WriteError>>, StorageError> {
        let mut client = self.connection()?;
        writes::commit(&mut client, transactions, admit)
    }

    fn metadata(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.with_client(|client| {
            client
                .query_opt(
                    "SELECT value FROM pemba_app_metadata WHERE key = $1",
                    &[&key],
                )
                .map_err(pg_error)?
                .map(|row| row.try_get(0).map_err(pg_error))
                .transpose()
        })
    }

    fn metadata_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StorageError> {
        self.with_client(|client| {
            // `starts_with` rather than LIKE: the prefix may hold `%` or `_`.
            let rows = client
                .query(
                    "SELECT key, value FROM pemba_app_metadata \
                     WHERE starts_with(key, $1) ORDER BY key",
                    &[&prefix],
                )
                .map_err(pg_error)?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get(0).map_err(pg_error)?,
                        row.try_get(1).map_err(pg_error)?,
                    ))
                })
                .collect()
        })
    }

    fn delete_matching(&self, request: &DeleteRequest) -> Result<DeleteCommitted, WriteError> {
        let mut client = self.connection()?;
        writes::delete_matching(&mut client, request)
    }

    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Tuple>,
        limit: usize,
    ) -> Result<Answer<Vec<Tuple>>, StorageError> {
        self.with_client(|client| {
            let mut txn = read_snapshot(client)?;
            let revision = txn
                .query_one("SELECT revision FROM pemba_head", &[])
                .map_err(pg_error)?;
            let revision = to_revision(revision.try_get(0).map_err(pg_error)?)?;
            let found = if limit == 0 {
                Vec::new()
            } else {
                sql::select(&mut txn, filter, after, Some(limit))?
            };
            txn.commit().map_err(pg_error)?;
            Ok(Answer {
                value: found,
                revision,
            })
        })
    }

    fn log_after(&self, after: Revision, limit: usize) -> Result<Vec<LogEntry>, StorageError> {
        let after = to_sql_revision(after)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_client(|client| {
            let rows = client
                .query(
                    "SELECT revision, changes, schema_changed FROM pemba_changelog \
                     WHERE revision > $1 ORDER BY revision LIMIT $2",
                    &[&after, &limit],
                )
                .map_err(pg_error)?;
            rows.iter()
                .map(|row| {
                    let revision = to_revision(row.try_get(0).map_err(pg_error)?)?;
                    let changes: &str = row.try_get(1).map_err(pg_error)?;
                    Ok(LogEntry {
                        changes: ChangeSet {
                            revision,
                            changes: decode_changes(changes.as_bytes())?,
                        },
                        schema_changed: row.try_get(2).map_err(pg_error)?,
                    })
                })
                .collect()
        })
    }

    fn write_schema(
        &self,
        text: &str,
        admit: &mut AdmitSchema<'_>,
    ) -> Result<Revision, SchemaWriteError> {
        let mut client = self.connection()?;
        writes::write_schema(&mut client, text, admit)
    }

    fn newest_revision(&self) -> Result<Revision, StorageError> {
        self.with_client(|client| {
            let row = client
                .query_one("SELECT revision FROM pemba_head", &[])
                .map_err(pg_error)?;
            to_revision(row.try_get(0).map_err(pg_error)?)
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn wait_for_commits(&self, timeout: Duration) {
        let mut listener = self.listener.lock();
        if listener.is_none() {
            *listener = connect_once(&self.options).ok().and_then(|mut client| {
                client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .ok()
                    .map(|()| client)
            });
        }
        let Some(client) = listener.as_mut() else {
            drop(listener);
            std::thread::sleep(timeout);
            return;
        };
        let failed = {
            let mut notifications = client.notifications();
            let woke = postgres::fallible_iterator::FallibleIterator::next(
                &mut notifications.timeout_iter(timeout),
            );
            // One notification is enough, the caller reads the whole log: drop the rest.
            let drained =
                postgres::fallible_iterator::FallibleIterator::count(notifications.iter());
            woke.is_err() || drained.is_err()
        };
        if failed {
            *listener = None;
        }
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn ping(&self) -> Result<(), StorageError> {
        self.with_client(|client| client.simple_query("SELECT 1").map(drop).map_err(pg_error))
    }

    fn lag(&self, applied: Revision) -> Result<Lag, StorageError> {
        let applied = to_sql_revision(applied)?;
        self.with_client(|client| {
            let row = client
                .query_one(
                    "SELECT h.revision - $1::bigint, coalesce(extract(epoch FROM \
                     clock_timestamp() - c.committed_at)::float8, 0) \
                     FROM pemba_head h LEFT JOIN pemba_changelog c ON c.revision = $1::bigint + 1",
                    &[&applied],
                )
                .map_err(pg_error)?;
            let behind: i64 = row.try_get(0).map_err(pg_error)?;
            let seconds: f64 = row.try_get(1).map_err(pg_error)?;
            Ok(Lag {
                revisions: u64::try_from(behind).unwrap_or(0),
                seconds: if behind > 0 { seconds.max(0.0) } else { 0.0 },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_everything_but_the_password() {
        let cases = [
            (
                "postgres://pemba:s3cret@db:5432/authz?sslmode=require",
                "postgres://pemba:***@db:5432/authz?sslmode=require",
            ),
            (
                "postgresql://pemba@db/authz?password=s3cret&sslmode=prefer",
                "postgresql://pemba@db/authz?password=***&sslmode=prefer",
            ),
            ("postgres://db/authz", "postgres://db/authz"),
            ("postgres://u:p%40ss@h", "postgres://u:***@h"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_its_password() {
        for url in [
            "mysql://u:s3cret@h/db",
            "postgres://u:s3cret@h/db?nonsense=1",
        ] {
            let message = match ConnectOptions::parse(url, &PostgresOptions::default()) {
                Ok(_) => panic!("`{url}` was accepted"),
                Err(error) => error.to_string(),
            };
            assert!(!message.contains("s3cret"), "{message}");
            assert!(message.contains("u:***@h"), "{message}");
        }
    }

    #[test]
    fn the_statement_timeout_joins_the_urls_own_options() {
        let options = PostgresOptions {
            statement_timeout: Duration::from_millis(1500),
            password_file: None,
        };
        let parsed = ConnectOptions::parse(
            "postgres://u@h/db?options=-c%20search_path%3Dpemba",
            &options,
        )
        .map(|o| o.config.get_options().map(str::to_string));
        assert_eq!(
            parsed.ok().flatten().as_deref(),
            Some("-c search_path=pemba -c statement_timeout=1500")
        );
    }
}
