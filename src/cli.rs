//! The `pemba` subcommands that open a store or talk to a server.
//!
//! Each works on a data directory (`--data-dir`, opening the redb store directly) or on a
//! running server (`--endpoint URL`); the flags are global ([`GlobalArgs`]), so they go
//! anywhere on the command line. `serve`, `import` and `export` are here; the zed-like
//! commands are in `cli/schema.rs`, `cli/relationship.rs` and `cli/permission.rs`, written
//! once against the API ([`api::Api`]), which on a data directory runs the server's own
//! routes in this process. Functions return a process exit code; messages go to stderr,
//! answers to stdout.

pub mod api;
pub mod lock;
pub mod permission;
pub mod relationship;
pub mod schema;
pub mod target;

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use pemba_engine::{CheckedImport, Engine, RawTuple, RelationshipFilter, Tuple};
use serde_json::{json, Value};

use pemba_server::auth::{resolve_key, KeySource};
use pemba_server::wire;
use pemba_server::{Config, Limits};

pub use target::{GlobalArgs, Target, DEFAULT_DATA_DIR};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default gRPC listen address (SpiceDB's).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";

/// `pemba serve` flags (the data directory and `--key-file` are the global flags).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Address to serve SpiceDB's gRPC API (`authzed.api.v1`) on.
    #[arg(long, value_name = "ADDR", env = "PEMBA_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: String,
    /// Most connections open at once overall (lowered to what the open-file limit allows).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Most connections open at once from one client address; more are closed at once.
    /// Raise it when clients reach the server through a proxy that shares one address.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_client)]
    pub max_connections_per_client: usize,
    /// With `--datastore`: how long a read asking for a revision this replica has not
    /// applied yet (`atLeastAsFresh`, `fullyConsistent`) waits before answering
    /// `UNAVAILABLE` (503).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::bench::parse_duration)]
    pub max_staleness_wait: std::time::Duration,
    /// PEM certificate chain (leaf first): serve both listeners over TLS (needs `--tls-key`).
    #[arg(
        long,
        value_name = "FILE",
        env = "PEMBA_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "FILE",
        env = "PEMBA_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// Relationships per batch of `pemba import` into a store opened here.
const DEFAULT_LOCAL_BATCH: usize = 100_000;
/// Relationships per `importbulk` request of `pemba import --endpoint`.
const DEFAULT_REMOTE_BATCH: usize = 10_000;

/// Relationship file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `.jsonl`/`.ndjson` files and text starting with `{` are JSON lines; others text.
    Auto,
    /// One `type:id#relation@subject` a line, `//` comments and blank lines ignored.
    Text,
    /// One SpiceDB `Relationship` JSON object a line.
    Jsonl,
}

/// `pemba import` flags.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// File to import (`-` for standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Import the valid lines and list the invalid ones, instead of importing nothing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Relationships per transaction (each one revision; a crash keeps whole batches):
    /// 100,000 on a data directory or datastore, 10,000 to a server.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: Option<u32>,
}

/// `pemba export` flags.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format (`auto` means text).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Prints `error: MESSAGE` and gives exit status 2.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Sets `field` of a JSON object (nothing for another value: every caller builds or
/// receives an object).
pub(crate) fn set_field(value: &mut Value, field: &str, to: Value) {
    if let Some(object) = value.as_object_mut() {
        object.insert(field.to_string(), to);
    }
}

/// Prints one JSON value on a line (`--json`).
pub(crate) fn print_json(value: &Value) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").map_err(|e| format!("cannot write: {e}"))
}

/// Runs the server until ctrl-c or SIGTERM. The `pemba serving` line comes only once the
/// store is open and the socket bound, so whoever waits for it can send requests.
pub fn serve(args: ServeArgs, global: &GlobalArgs) -> ExitCode {
    if global.endpoint.is_some() || global.key.is_some() {
        return fail(
            "`serve` takes neither `--endpoint` nor `--key`: it serves `--data-dir` on \
             `--listen`, with the key from `--key-file`, `PEMBA_KEY` or DIR/api-key",
        );
    }
    if global.consistency.is_some() || global.json {
        return fail("`serve` takes neither `--consistency` nor `--json`");
    }
    if let Err(message) = global.datastore_options_need_datastore() {
        return fail(message);
    }
    let datastore = global.datastore().map(|mut datastore| {
        datastore.max_staleness_wait = args.max_staleness_wait;
        datastore
    });
    init_tracing();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match pemba_server::serve::Tls::load(cert, key) {
            Ok(tls) => Some(tls),
            Err(message) => return fail(message),
        },
        _ => None,
    };
    let data_dir = global.dir();
    let (key, source) = match resolve_key(
        global.key_file.as_deref(),
        std::env::var("PEMBA_KEY").ok(),
        &data_dir,
    ) {
        Ok(found) => found,
        Err(message) => return fail(message),
    };
    match &source {
        KeySource::File(path) => eprintln!("API key: read from {}", path.display()),
        KeySource::Env => eprintln!("API key: read from PEMBA_KEY"),
        KeySource::Stored(path) => eprintln!("API key: read from {}", path.display()),
        KeySource::Generated(path) => eprintln!(
            "API key: generated into {} (mode 0600); send it as `Authorization: Bearer $(cat {})`",
            path.display(),
            path.display()
        ),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let mut config = Config::new(data_dir.clone(), key);
    config.limits.max_connections = args.max_connections;
    config.limits.max_connections_per_client = args.max_connections_per_client;
    config.datastore = datastore;
    config.tls = tls;
    let shown = match &config.datastore {
        Some(datastore) => datastore.shown(),
        None => data_dir.display().to_string(),
    };
    let result = runtime.block_on(async {
        let engine = match &config.datastore {
            Some(datastore) => pemba_server::open_store_at(&config)
                .await
                .map_err(|e| format!("cannot open the datastore `{}`: {e}", datastore.shown()))?,
            None => pemba_server::open_store(&data_dir)
                .await
                .map_err(|e| target::open_hint(&e, &data_dir, true))?,
        };
        // A shared datastore has no single holder to name.
        let pid = match config.datastore {
            Some(_) => None,
            None => lock::PidFile::write(&data_dir),
        };
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on `{}`: {e}", args.listen))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let grpc_listener = tokio::net::TcpListener::bind(&args.grpc_listen)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on `{}` (--grpc-listen): {e}",
                    args.grpc_listen
                )
            })?;
        let grpc_address = grpc_listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound gRPC address: {e}"))?;
        let (scheme, over_tls) = if config.tls.is_some() {
            ("https", " over TLS")
        } else {
            ("http", "")
        };
        // Before the lines that say it is up: a signal sent on reading them must stop it.
        let shutdown = pemba_server::shutdown_signal();
        eprintln!("pemba serving {scheme}://{address} with data in {shown}");
        eprintln!("pemba serving grpc://{grpc_address}{over_tls}");
        let served = pemba_server::serve_engine_with_grpc(
            listener,
            Some(grpc_listener),
            engine,
            config,
            shutdown,
        )
        .await
        .map_err(|e| e.to_string());
        // The store is closed: no longer ours to claim.
        drop(pid);
        served
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: in files and log collectors they are noise.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// One line of an import file: its number and what it holds.
fn parse_line(line: &str, json_lines: bool) -> Result<Tuple, String> {
    if json_lines {
        let relationship: wire::Relationship =
            serde_json::from_str(line).map_err(|e| format!("not a relationship object: {e}"))?;
        wire::relationship(&relationship, "relationship").map_err(|e| e.message)
    } else {
        Tuple::parse(line).map_err(|e| e.to_string())
    }
}

/// Imports a file: every line validated first; nothing written if any is bad (unless
/// `--skip-invalid`); then batches, one transaction each, with a progress bar.
pub fn import(args: ImportArgs, global: &GlobalArgs) -> ExitCode {
    if let Err(message) = global.no_consistency("import") {
        return fail(message);
    }
    let name = args.file.display().to_string();
    let mut text = String::new();
    let read = if name == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(&args.file).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    if let Err(e) = read {
        return fail(format!("cannot read `{name}`: {e}"));
    }
    let json_lines = match args.format {
        Format::Jsonl => true,
        Format::Text => false,
        Format::Auto => {
            name.ends_with(".jsonl")
                || name.ends_with(".ndjson")
                || text.trim_start().starts_with('{')
        }
    };
    let target = match global.open(true) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    // The schema to validate against: the store's, or the server's compiled locally.
    let checker = match &target {
        Target::Local(local) => local.engine.schema(),
        Target::Remote(client) => {
            let schema = client
                .post("/v1/schema/read", &json!({}))
                .map_err(|e| e.to_string())
                .and_then(|answer| {
                    let text = answer
                        .get("schemaText")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let scratch = Engine::in_memory().map_err(|e| e.to_string())?;
                    scratch.write_schema(&text).map_err(|e| e.to_string())?;
                    Ok(scratch.schema())
                });
            match schema {
                Ok(schema) => schema,
                Err(message) => return fail(format!("cannot read the server's schema: {message}")),
            }
        }
    };
    let Some(schema) = checker else {
        return fail("the store has no schema: write one first");
    };

    // Text lines are parsed in place, borrowing their fields from `text`; JSON lines
    // parse to owned relationships first (a file is one or the other). Each is checked
    // once, here: the import does not check them again.
    let lines = || {
        text.lines().enumerate().filter_map(|(index, line)| {
            let line = line.trim();
            (!line.is_empty() && !line.starts_with("//")).then_some((index + 1, line))
        })
    };
    let mut owned: Vec<(usize, Tuple)> = Vec::new();
    let mut bad: Vec<(usize, String)> = Vec::new();
    if json_lines {
        for (number, line) in lines() {
            match parse_line(line, json_lines) {
                Ok(tuple) => owned.push((number, tuple)),
                Err(message) => bad.push((number, message)),
            }
        }
    }
    let mut checked = CheckedImport::new(schema);
    if json_lines {
        for (number, tuple) in &owned {
            if let Err(e) = checked.push(RawTuple::of(tuple)) {
                bad.push((*number, e.to_string()));
            }
        }
        bad.sort_by_key(|(number, _)| *number);
    } else {
        for (number, line) in lines() {
            let pushed = RawTuple::parse(line)
                .map_err(|e| e.to_string())
                .and_then(|raw| checked.push(raw).map_err(|e| e.to_string()));
            if let Err(message) = pushed {
                bad.push((number, message));
            }
        }
    }
    let relationships = checked.relationships();
    const SHOWN: usize = 100;
    for (line, message) in bad.iter().take(SHOWN) {
        eprintln!("{name}:{line}: {message}");
    }
    if bad.len() > SHOWN {
        eprintln!("... and {} more invalid lines", bad.len() - SHOWN);
    }
    if !bad.is_empty() && !args.skip_invalid {
        return fail(format!(
            "{} invalid line(s) in `{name}`: nothing was imported (use --skip-invalid to import the valid ones)",
            bad.len()
        ));
    }

    let progress = indicatif::ProgressBar::new(relationships.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, ETA {eta})",
    ) {
        progress.set_style(style);
    }
    let batch_size = args.batch_size.map_or(
        match &target {
            Target::Local(_) => DEFAULT_LOCAL_BATCH,
            Target::Remote(_) => DEFAULT_REMOTE_BATCH,
        },
        |size| size as usize,
    );
    let imported = match &target {
        Target::Local(local) => local
            .engine
            .import_checked(&checked, batch_size, &mut |n| progress.inc(n as u64))
            .map(|imported| {
                (
                    imported.relationships,
                    imported.duplicates,
                    imported.revision.map(|r| r.token()),
                )
            })
            .map_err(|e| {
                format!(
                    "import stopped after {} relationships (earlier batches are stored): {e}",
                    progress.position()
                )
            }),
        Target::Remote(client) => import_remote(client, relationships, batch_size, &progress),
    };
    let (total, duplicates, revision) = match imported {
        Ok(imported) => imported,
        Err(message) => {
            progress.abandon();
            return fail(message);
        }
    };
    progress.finish_and_clear();
    eprintln!(
        "imported {} relationships from `{name}` ({duplicates} duplicate lines, {} invalid lines skipped){}",
        total,
        bad.len(),
        match &revision {
            None => String::new(),
            Some(token) => format!("; revision token {token}"),
        }
    );
    if global.json {
        let summary = json!({
            "numLoaded": total.to_string(),
            "duplicateLines": duplicates,
            "invalidLinesSkipped": bad.len(),
            "writtenAt": revision.map(|token| json!({ "token": token })),
        });
        if let Err(message) = print_json(&summary) {
            return fail(message);
        }
    }
    ExitCode::SUCCESS
}

/// Sends `relationships` to a server in `importbulk` requests of `batch_size`, sorted and
/// without duplicates; the number sent, the duplicates dropped, and the last token.
fn import_remote(
    client: &crate::client::Client,
    relationships: &[RawTuple<'_>],
    batch_size: usize,
    progress: &indicatif::ProgressBar,
) -> Result<(usize, usize, Option<String>), String> {
    let mut tuples: Vec<Tuple> = relationships.iter().map(RawTuple::to_tuple).collect();
    tuples.sort_unstable();
    tuples.dedup();
    let duplicates = relationships.len() - tuples.len();
    let mut revision = None;
    for batch in tuples.chunks(batch_size.max(1)) {
        let wire: Vec<wire::Relationship> = batch.iter().map(wire::to_relationship).collect();
        let token = client
            .post(
                "/v1/relationships/importbulk",
                &json!({ "relationships": wire }),
            )
            .map_err(|message| {
                format!(
                    "import stopped after {} relationships (earlier batches are stored): {message}",
                    progress.position()
                )
            })?
            .pointer("/writtenAt/token")
            .and_then(Value::as_str)
            .map(str::to_string);
        revision = token.or(revision);
        progress.inc(batch.len() as u64);
    }
    Ok((tuples.len(), duplicates, revision))
}

/// Exports every relationship, in stable order.
pub fn export(args: ExportArgs, global: &GlobalArgs) -> ExitCode {
    let target = match global.open(false) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(file),
            Err(e) => return fail(format!("cannot create `{}`: {e}", path.display())),
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let json_lines = args.format == Format::Jsonl || global.json;
    let consistency = global.read_consistency();
    let mut count = 0u64;
    let mut emit = |tuple: &Tuple, out: &mut BufWriter<Box<dyn Write>>| -> Result<(), String> {
        count += 1;
        let line = if json_lines {
            serde_json::to_string(&wire::to_relationship(tuple)).map_err(|e| e.to_string())?
        } else {
            tuple.to_string()
        };
        writeln!(out, "{line}").map_err(|e| format!("cannot write: {e}"))
    };
    let result = match &target {
        Target::Local(local) => (|| {
            let all = local
                .engine
                .relationships(consistency.engine(), &RelationshipFilter::default())
                .map_err(|e| e.to_string())?;
            for tuple in all {
                emit(&tuple.map_err(|e| e.to_string())?, &mut out)?;
            }
            Ok(())
        })(),
        Target::Remote(client) => client.stream(
            "/v1/relationships/exportbulk",
            &json!({ "consistency": consistency.wire() }),
            |result| {
                let page: Vec<wire::Relationship> = serde_json::from_value(
                    result.get("relationships").cloned().unwrap_or(Value::Null),
                )
                .map_err(|e| format!("unreadable export page: {e}"))?;
                for relationship in &page {
                    let tuple =
                        wire::relationship(relationship, "relationship").map_err(|e| e.message)?;
                    emit(&tuple, &mut out)?;
                }
                Ok(true)
            },
        ),
    };
    if let Err(message) = result.and_then(|()| out.flush().map_err(|e| e.to_string())) {
        return fail(message);
    }
    eprintln!("exported {count} relationships");
    ExitCode::SUCCESS
}
