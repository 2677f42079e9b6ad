//! The flags every subcommand shares (`--data-dir`, `--datastore`, `--endpoint`, `--key`,
//! `--key-file`, `--json`, `--consistency`), accepted before or after the subcommand's
//! name, and what they open: a data directory, a PostgreSQL datastore or a server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pemba_engine::{Consistency, Engine, EngineError, Revision, StorageError};
use pemba_server::auth::KEY_FILE;
use pemba_server::{open_engine, open_postgres_engine, Datastore, ServeError, STORE_FILE};
use serde_json::{json, Value};

use super::api::Api;
use super::lock::{self, PidFile};
use crate::client::Client;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "pemba-data";

/// Flags every subcommand accepts, anywhere on the command line (`global = true`).
///
/// Kept in one struct so a new way to reach a store (a datastore URL beside `--data-dir`)
/// is one more field here, seen by every subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Work on this data directory directly (default `pemba-data`; no server may be
    /// running on it). For `serve`: where the store and the generated key live.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Work on a PostgreSQL datastore that `pemba migrate` prepared, shared by replicas:
    /// `postgres://USER@HOST:PORT/DB` (`?sslmode=require` for TLS). The password may come
    /// from the URL, `PGPASSWORD` or `--datastore-password-file`. For `serve`: the store
    /// to serve instead of the one in `--data-dir` (which then holds only the key).
    #[arg(
        long,
        global = true,
        env = "PEMBA_DATASTORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub datastore: Option<String>,
    /// File whose first line is the datastore's password (when neither the URL nor
    /// `PGPASSWORD` gives one).
    #[arg(long, global = true, value_name = "FILE")]
    pub datastore_password_file: Option<PathBuf>,
    /// Longest one datastore statement may run (`30s`, `500ms`); a request whose statement
    /// is cut off fails with `UNAVAILABLE` rather than hang.
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::bench::parse_duration)]
    pub datastore_statement_timeout: Option<std::time::Duration>,
    /// Work through a running server, e.g. `http://127.0.0.1:8080`.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// API key for `--endpoint` (prefer `PEMBA_KEY` or `--key-file`: flags show in `ps`).
    /// Without `--key`, `--key-file` or `PEMBA_KEY`, the key a local server generated in
    /// `./pemba-data/api-key` is used.
    #[arg(long, global = true, value_name = "KEY")]
    pub key: Option<String>,
    /// File holding the API key (for `serve`: the key to require).
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Consistency of reads: `minimize-latency`, `full` (the default), or a revision token
    /// (`pb1.7`: an answer at least as fresh as that revision).
    #[arg(long, global = true, value_name = "MODE", value_parser = ConsistencyArg::parse)]
    pub consistency: Option<ConsistencyArg>,
}

/// `--consistency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyArg {
    /// Any revision the store has (the index as it is).
    MinimizeLatency,
    /// The newest revision.
    Full,
    /// At least as fresh as this revision.
    AtLeast(Revision),
}

impl ConsistencyArg {
    /// Parses `minimize-latency`, `full` or a revision token.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "minimize-latency" => Ok(ConsistencyArg::MinimizeLatency),
            "full" => Ok(ConsistencyArg::Full),
            token => Revision::from_token(token)
                .map(ConsistencyArg::AtLeast)
                .map_err(|e| {
                    format!(
                        "expected `minimize-latency`, `full` or a revision token such as `pb1.7`: {e}"
                    )
                }),
        }
    }

    /// The engine's consistency.
    pub fn engine(self) -> Consistency {
        match self {
            ConsistencyArg::MinimizeLatency => Consistency::MinimizeLatency,
            ConsistencyArg::Full => Consistency::FullyConsistent,
            ConsistencyArg::AtLeast(revision) => Consistency::AtLeastAsFresh(revision),
        }
    }

    /// The API's `consistency` field.
    pub fn wire(self) -> Value {
        match self {
            ConsistencyArg::MinimizeLatency => json!({ "minimizeLatency": true }),
            ConsistencyArg::Full => json!({ "fullyConsistent": true }),
            ConsistencyArg::AtLeast(revision) => {
                json!({ "atLeastAsFresh": { "token": revision.token() } })
            }
        }
    }
}

impl GlobalArgs {
    /// The consistency reads use: `--consistency`, else fully consistent (a CLI user
    /// expects to see what they just wrote).
    pub fn read_consistency(&self) -> ConsistencyArg {
        self.consistency.unwrap_or(ConsistencyArg::Full)
    }

    /// Refuses `--consistency` for a command that only writes.
    pub fn no_consistency(&self, command: &str) -> Result<(), String> {
        match self.consistency {
            Some(_) => Err(format!(
                "`{command}` writes; `--consistency` applies only to reads"
            )),
            None => Ok(()),
        }
    }

    /// Refuses every connection flag, for commands that work on files alone.
    pub fn no_target(&self, command: &str) -> Result<(), String> {
        let given = [
            ("--data-dir", self.data_dir.is_some()),
            ("--datastore", self.datastore.is_some()),
            (
                "--datastore-password-file",
                self.datastore_password_file.is_some(),
            ),
            (
                "--datastore-statement-timeout",
                self.datastore_statement_timeout.is_some(),
            ),
            ("--endpoint", self.endpoint.is_some()),
            ("--key", self.key.is_some()),
            ("--key-file", self.key_file.is_some()),
            ("--consistency", self.consistency.is_some()),
            ("--json", self.json),
        ];
        match given.iter().find(|(_, set)| *set) {
            Some((flag, _)) => Err(format!(
                "`{command}` works on files alone; `{flag}` does not apply to it"
            )),
            None => Ok(()),
        }
    }

    /// The PostgreSQL datastore `--datastore` names, with its options; `None` without it.
    pub fn datastore(&self) -> Option<Datastore> {
        let url = self.datastore.as_ref()?;
        let mut datastore = Datastore::new(url.clone());
        datastore.options.password_file = self.datastore_password_file.clone();
        if let Some(timeout) = self.datastore_statement_timeout {
            datastore.options.statement_timeout = timeout;
        }
        Some(datastore)
    }

    /// Refuses datastore options without `--datastore`, where they would silently do
    /// nothing.
    pub fn datastore_options_need_datastore(&self) -> Result<(), String> {
        if self.datastore.is_some() {
            return Ok(());
        }
        if self.datastore_password_file.is_some() {
            return Err("`--datastore-password-file` needs `--datastore URL`".to_string());
        }
        if self.datastore_statement_timeout.is_some() {
            return Err("`--datastore-statement-timeout` needs `--datastore URL`".to_string());
        }
        Ok(())
    }

    /// The data directory: `--data-dir` or [`DEFAULT_DATA_DIR`].
    pub fn dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The key for `--endpoint`: `--key`, `--key-file`, `PEMBA_KEY`, then the key a local
    /// server generated into `./pemba-data/api-key`.
    pub fn client_key(&self) -> Result<String, String> {
        if let Some(key) = &self.key {
            return Ok(key.clone());
        }
        if let Some(path) = &self.key_file {
            return read_key(path);
        }
        if let Some(key) = std::env::var("PEMBA_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            return Ok(key.trim().to_string());
        }
        let fallback = Path::new(DEFAULT_DATA_DIR).join(KEY_FILE);
        if fallback.exists() {
            return read_key(&fallback);
        }
        Err(format!(
            "`--endpoint` needs a key: `--key-file FILE` (the server prints where its key is \
             when it starts), `PEMBA_KEY`, `--key`, or a server's generated key in `{}` \
             (not found)",
            fallback.display()
        ))
    }

    /// Opens the target: the server (`--endpoint`) or the store in the data directory,
    /// created with the shipped schema if `create`, else required to exist.
    pub fn open(&self, create: bool) -> Result<Target, String> {
        self.datastore_options_need_datastore()?;
        let places = [
            ("--data-dir", self.data_dir.is_some()),
            ("--datastore", self.datastore.is_some()),
            ("--endpoint", self.endpoint.is_some()),
        ];
        if let [(first, _), (second, _), ..] = places
            .iter()
            .filter(|(_, given)| *given)
            .collect::<Vec<_>>()[..]
        {
            return Err(format!(
                "`{first}` and `{second}` name two places to work on: pass one"
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            return Ok(Target::Remote(Client::new(endpoint, &self.client_key()?)));
        }
        if let Some(datastore) = self.datastore() {
            return open_datastore(&datastore, create).map(|engine| {
                Target::Local(Local {
                    engine: Arc::new(engine),
                    _pid: None,
                })
            });
        }
        let dir = self.dir();
        let opened = if create {
            open_engine(&dir).map_err(|e| open_hint(&e, &dir, false))?
        } else {
            let path = dir.join(STORE_FILE);
            if !path.exists() {
                return Err(format!(
                    "no store at `{}`: pass `--data-dir DIR` or `--endpoint URL`",
                    path.display()
                ));
            }
            Engine::open(&path).map_err(|e| open_hint(&ServeError::from(e), &dir, false))?
        };
        let pid = PidFile::write(&dir);
        Ok(Target::Local(Local {
            engine: Arc::new(opened),
            _pid: pid,
        }))
    }

    /// Opens the target and the API on it (in-process routes for a data directory).
    pub fn api(&self, create: bool) -> Result<Api, String> {
        self.open(create)?.into_api()
    }
}

/// The engine on a PostgreSQL datastore: prepared as `serve` prepares it (the shipped
/// schema when it has none) if `create`, else opened as it is.
fn open_datastore(datastore: &Datastore, create: bool) -> Result<Engine, String> {
    let shown = datastore.shown();
    let opened = if create {
        open_postgres_engine(datastore)
    } else {
        pemba_engine::PostgresStore::connect_with(&datastore.url, &datastore.options)
            .and_then(|store| Engine::with_store(Box::new(store)))
            .map_err(ServeError::from)
    };
    opened.map_err(|e| format!("cannot open the datastore `{shown}`: {e}"))
}

fn read_key(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))
}

/// An open store, with the pid file that tells other processes who holds it.
pub struct Local {
    /// The engine over the store.
    pub engine: Arc<Engine>,
    /// Removed when the store is closed.
    _pid: Option<PidFile>,
}

/// A data directory or a server.
pub enum Target {
    /// A store opened in this process.
    Local(Local),
    /// A running server.
    Remote(Client),
}

impl Target {
    /// The HTTP API on this target: the server itself, or the same routes in process.
    pub fn into_api(self) -> Result<Api, String> {
        match self {
            Target::Local(local) => Api::local(local),
            Target::Remote(client) => Ok(Api::Remote(client)),
        }
    }
}

/// The message for a store that could not be opened; when another process holds it, says
/// so, with that process's id when the pid file names a live one, and what to do instead
/// (`serving`: for `pemba serve`, which cannot go through another server).
pub fn open_hint(error: &ServeError, data_dir: &Path, serving: bool) -> String {
    if !store_in_use(error) {
        return error.to_string();
    }
    let holder = match lock::holder(data_dir) {
        Some(pid) => format!("another process (pid {pid}) holds it"),
        None => "another process holds it".to_string(),
    };
    let instead = if serving {
        "stop that process, or serve another `--data-dir`"
    } else {
        "stop that process, or go through the server running on it with `--endpoint URL`"
    };
    format!(
        "cannot open the store `{}`: {holder}; {instead}",
        data_dir.join(STORE_FILE).display()
    )
}

/// Whether another process (a running server) holds the store.
fn store_in_use(error: &ServeError) -> bool {
    matches!(
        error,
        ServeError::Engine(EngineError::Storage(StorageError::AlreadyOpen { .. }))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_flags() {
        let cases = [
            ("minimize-latency", Some(json!({ "minimizeLatency": true }))),
            ("full", Some(json!({ "fullyConsistent": true }))),
            (
                "pb1.7",
                Some(json!({ "atLeastAsFresh": { "token": "pb1.7" } })),
            ),
            ("fully-consistent", None),
            ("pb1", None),
            ("", None),
        ];
        for (text, wire) in cases {
            let parsed = ConsistencyArg::parse(text).ok().map(ConsistencyArg::wire);
            assert_eq!(parsed, wire, "{text}");
        }
    }
}
