//! Pemba's HTTP API: SpiceDB-shaped JSON routes over an [`Engine`], with bearer-key auth,
//! limits, Prometheus metrics and request-id tracing. The `pemba` binary's subcommands
//! (`serve`, `import`, `export`, ...) live in the root package, `src/cli.rs`.
//!
//! [`run`] serves a bound listener until a shutdown future resolves; [`app`] builds the
//! service alone ([`HttpApi`]), for in-process (`oneshot`) tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pemba_server::{run, ApiKey, Config};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = Config::new("./pemba-data".into(), ApiKey::new("secret")?);
//! run(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod console; // web console (issue 15)
pub mod error;
pub mod groups; // user-groups feature (issue 5)
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod service;
pub mod stream;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use pemba_engine::{Engine, EngineError, PostgresOptions, PostgresStore};
use tokio::net::TcpListener;

pub use auth::ApiKey;
pub use error::ApiError;
pub use limits::Limits;
pub use service::HttpApi;

/// The schema loaded into a fresh store that has none: the user-groups model of SPEC §6.
pub const DEFAULT_SCHEMA: &str = include_str!("../../schemas/user-groups.zed");

/// The name of the redb file inside a data directory.
pub const STORE_FILE: &str = "pemba.redb";

/// What every handler shares: one [`Arc`] around [`AppStateInner`], whose fields it
/// derefs to (`state.engine`, `state.limits`, ...).
///
/// One pointer, not one per field, because axum clones the state into every middleware
/// and handler of every request: with a field per `Arc` that was seven reference-count
/// updates per clone, on cache lines every core writes, and 13 % of the server's CPU per
/// check under load (BENCHMARKS.md, "Wire speed").
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

/// The fields of [`AppState`].
///
/// The engine is synchronous and internally locked, so handlers call it directly for
/// bounded reads and through `spawn_blocking` for writes and storage scans.
pub struct AppStateInner {
    /// The engine answering every route.
    pub engine: Arc<Engine>,
    /// The preshared key every protected route requires.
    pub key: Arc<ApiKey>,
    /// Request and batch limits.
    pub limits: Limits,
    /// Prometheus registry and per-route instruments.
    pub metrics: Arc<metrics::Metrics>,
    /// Set to `true` when the server starts shutting down. Watch streams never end on
    /// their own, so they subscribe to this and close, or graceful shutdown would wait
    /// for them forever.
    pub stop: Arc<tokio::sync::watch::Sender<bool>>,
    /// How many watch streams are open, capped by [`Limits::max_watch_streams`].
    pub watchers: Arc<std::sync::atomic::AtomicUsize>,
    /// The user-groups feature over the same engine.
    pub groups: Arc<groups::Groups>,
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl AppState {
    /// State over `engine` with default limits.
    pub fn new(engine: Arc<Engine>, key: ApiKey) -> Self {
        Self::with_limits(engine, key, Limits::default())
    }

    /// State with explicit limits.
    pub fn with_limits(engine: Arc<Engine>, key: ApiKey, limits: Limits) -> Self {
        AppState(Arc::new(AppStateInner {
            groups: Arc::new(groups::Groups::new(engine.clone())),
            engine,
            key: Arc::new(key),
            limits,
            metrics: Arc::new(metrics::Metrics::new()),
            stop: Arc::new(tokio::sync::watch::channel(false).0),
            watchers: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }))
    }

    /// Tells open watch streams to end.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// How [`run`] opens its store and guards its routes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding `pemba.redb` (created if missing).
    pub data_dir: PathBuf,
    /// The bearer key.
    pub key: ApiKey,
    /// Request and batch limits (default: [`Limits::default`]).
    pub limits: Limits,
    /// A PostgreSQL datastore to serve instead of the redb store in `data_dir` (which
    /// then holds only the generated key); default none.
    pub datastore: Option<Datastore>,
    /// Serve both listeners over TLS with this certificate (default: plaintext).
    pub tls: Option<serve::Tls>,
}

impl Config {
    /// A config with default limits, on the redb store in `data_dir`.
    pub fn new(data_dir: PathBuf, key: ApiKey) -> Self {
        Config {
            data_dir,
            key,
            limits: Limits::default(),
            datastore: None,
            tls: None,
        }
    }
}

/// A PostgreSQL datastore that several replicas share (`--datastore`).
///
/// `Debug` shows the URL without its password; so does [`Datastore::shown`].
#[derive(Clone)]
pub struct Datastore {
    /// `postgres://USER@HOST:PORT/DB?sslmode=...`; may hold the password.
    pub url: String,
    /// Password file and statement timeout.
    pub options: PostgresOptions,
    /// How long a read waits for this replica to reach the revision it asks for before
    /// answering `UNAVAILABLE` (default 5 s).
    pub max_staleness_wait: Duration,
}

impl Datastore {
    /// A datastore at `url` with default options.
    pub fn new(url: impl Into<String>) -> Self {
        Datastore {
            url: url.into(),
            options: PostgresOptions::default(),
            max_staleness_wait: DEFAULT_MAX_STALENESS_WAIT,
        }
    }

    /// The URL with any password replaced by `***`: the only form to print or log.
    pub fn shown(&self) -> String {
        pemba_engine::redact_url(&self.url)
    }
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datastore")
            .field("url", &self.shown())
            .field("options", &self.options)
            .field("max_staleness_wait", &self.max_staleness_wait)
            .finish()
    }
}

/// The default of [`Datastore::max_staleness_wait`].
pub const DEFAULT_MAX_STALENESS_WAIT: Duration = Duration::from_secs(5);

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// The store could not be opened or prepared.
    Engine(EngineError),
    /// A file or socket operation failed.
    Io(std::io::Error),
    /// The store's connection and workbook ids could not be scoped to their workspaces.
    Migration(groups::migrate::MigrationError),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Engine(error) => write!(f, "{error}"),
            ServeError::Io(error) => write!(f, "{error}"),
            ServeError::Migration(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Engine failures at start-up: opening the store, or writing the shipped schema.
macro_rules! serve_error_from_engine {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ServeError {
            fn from(error: $ty) -> Self {
                ServeError::Engine(error.into())
            }
        }
    )*};
}

serve_error_from_engine!(
    EngineError,
    pemba_engine::StorageError,
    pemba_engine::SchemaWriteError
);

impl From<std::io::Error> for ServeError {
    fn from(error: std::io::Error) -> Self {
        ServeError::Io(error)
    }
}

/// Opens (creating if needed) the store in `data_dir`; a fresh store gets [`DEFAULT_SCHEMA`].
///
/// An existing but empty store file is refused rather than silently made into a new
/// store: an empty file is what a truncated store looks like, and serving from a fresh
/// one would answer "no" to every check.
pub fn open_engine(data_dir: &std::path::Path) -> Result<Engine, ServeError> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(STORE_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
        return Err(ServeError::Io(std::io::Error::other(format!(
            "store `{}` is empty (0 bytes): it was truncated or never written; refusing to start on it (move it away to start a new store)",
            path.display()
        ))));
    }
    prepare(Engine::open(&path)?)
}

/// Connects to a PostgreSQL datastore (migrated by `pemba migrate`) and builds this
/// replica's index from it; a datastore without a schema gets [`DEFAULT_SCHEMA`], as a
/// fresh redb store does. Blocks: call it off the async runtime, as [`open_store_at`] does.
pub fn open_postgres_engine(datastore: &Datastore) -> Result<Engine, ServeError> {
    let store = PostgresStore::connect_with(&datastore.url, &datastore.options)?;
    let mut engine = Engine::with_store(Box::new(store))?;
    engine.set_max_staleness_wait(datastore.max_staleness_wait);
    prepare(engine)
}

/// What every freshly opened store goes through: the shipped schema when it has none,
/// then the user-groups id migration.
fn prepare(engine: Engine) -> Result<Engine, ServeError> {
    // Two replicas starting together on a fresh datastore may both write it: the second
    // is the same schema again, one more revision and nothing orphaned.
    if engine.schema().is_none() {
        engine.write_schema(DEFAULT_SCHEMA)?;
    }
    let scoped = groups::migrate::scope_resource_ids(&engine).map_err(ServeError::Migration)?;
    if let Some((from, to)) = &scoped.example {
        tracing::warn!(
            resources = scoped.resources,
            relationships = scoped.relationships,
            "connection and workbook ids are now scoped to their workspace: `{from}` is now `{to}`; apps must name resources so in checks and writes"
        );
    }
    Ok(engine)
}

/// The HTTP API with every route of [`routes::table`], auth, limits, metrics, request ids
/// and tracing: the service [`run`] serves, and in-process (`oneshot`) tests call.
pub fn app(state: AppState) -> HttpApi {
    HttpApi::new(state)
}

/// Serves `listener` until `shutdown` resolves, then lets in-flight requests finish, ends
/// watch streams and closes the store.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run_with_grpc(listener, None, config, shutdown).await
}

/// [`run`], also serving SpiceDB's gRPC API ([`grpc`]) on `grpc_listener` when given: one
/// engine, key and set of limits under both; `shutdown` stops both.
pub async fn run_with_grpc(
    listener: TcpListener,
    grpc_listener: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine = open_store_at(&config).await?;
    serve_engine_with_grpc(listener, grpc_listener, engine, config, shutdown).await
}

/// [`open_engine`] off the async runtime, with a panic inside redb (which it does on some
/// malformed pages) reported as a corrupt store.
pub async fn open_store(data_dir: &std::path::Path) -> Result<Engine, ServeError> {
    let dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || open_engine(&dir))
        .await
        .map_err(|e| {
            // redb panics on some malformed pages; that is a corrupt store, not a bug here.
            let cause = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".to_string()),
                Err(e) => e.to_string(),
            };
            ServeError::Io(std::io::Error::other(format!(
                "store `{}` is corrupt: reading it failed with `{cause}`; refusing to start on it",
                data_dir.join(STORE_FILE).display()
            )))
        })?
}

/// The store `config` names: its [`Datastore`] when it has one, else the redb store in
/// its data directory ([`open_store`]).
pub async fn open_store_at(config: &Config) -> Result<Engine, ServeError> {
    let Some(datastore) = config.datastore.clone() else {
        return open_store(&config.data_dir).await;
    };
    // A plain thread, not the blocking pool: building the index streams the datastore
    // through the blocking client, which refuses to run on any thread of a runtime.
    let (sender, opened) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(open_postgres_engine(&datastore));
    });
    opened.await.unwrap_or_else(|_| {
        Err(ServeError::Io(std::io::Error::other(
            "opening the datastore stopped with a panic",
        )))
    })
}

/// As [`run`], on a store already opened (so a caller can say it serves only once the
/// store is open and the socket bound); `config.data_dir` is not used.
pub async fn serve_engine(
    listener: TcpListener,
    engine: Engine,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_engine_with_grpc(listener, None, engine, config, shutdown).await
}

/// As [`serve_engine`], also serving the gRPC API on `grpc_listener` when given.
pub async fn serve_engine_with_grpc(
    listener: TcpListener,
    grpc_listener: Option<TcpListener>,
    engine: Engine,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine = Arc::new(engine);
    // A shared store's log is tailed so this replica sees every other replica's writes.
    let tailing = Arc::new(AtomicBool::new(false));
    let tailer = engine.follow(tailing.clone());
    let state = AppState::with_limits(engine.clone(), config.key, config.limits);
    let api = app(state.clone());
    if let Err(lacks) = state.groups.check_schema() {
        // The general API still serves; every user-groups route refuses with this.
        tracing::warn!("{lacks}");
    }
    tracing::info!(address = ?listener.local_addr().ok(), revision = engine.revision().0, "serving");
    let limits = state.limits;
    // One set of connection caps over both listeners.
    let gate = serve::Gate::new(&limits);
    let (grpc_gate, grpc_tls) = (gate.clone(), config.tls.clone());
    let grpc = async {
        let Some(grpc_listener) = grpc_listener else {
            return Ok(());
        };
        let mut stop = state.stop.subscribe();
        grpc::serve(
            grpc_listener,
            state.clone(),
            grpc_gate,
            grpc_tls,
            async move {
                // Ends when shutdown begins, or when the state (and so the sender) is gone.
                let _ = stop.wait_for(|stopping| *stopping).await;
            },
        )
        .await
    };
    let stopping = state.clone();
    let http = serve::serve(listener, api, limits, gate, config.tls, async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        stopping.begin_shutdown();
    });
    let (http, grpc) = tokio::join!(http, grpc);
    tailing.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(tailer) = tailer {
        // Ends within one poll interval of the flag.
        let _ = tokio::task::spawn_blocking(move || tailer.join()).await;
    }
    http?;
    grpc?;
    // Requests are done; dropping the last handles closes the redb file cleanly.
    drop(engine);
    tracing::info!("store closed");
    Ok(())
}

/// A future that resolves on ctrl-c (SIGINT) or, on Unix, SIGTERM. The handlers are
/// installed when this is called, not when the future is first polled: `pemba serve`
/// calls it before printing its `pemba serving` lines, so a signal sent as soon as a
/// script or test reads them stops the server gracefully instead of finding the default
/// action (death, the store not closed) or a handler with no one listening yet. Must be
/// called inside a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            // A handler that could not be installed never fires; the other still can.
            let wait = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
                match installed {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests;
