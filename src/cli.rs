//! The `pemba` subcommands that open a store or talk to a server: `serve`, `import`,
//! `export`, `check`, `lookup`.
//!
//! Each works on a data directory (`--data-dir`, opening the redb store directly) or on a
//! running server (`--endpoint URL`, with `--key`, `--key-file` or `PEMBA_KEY`). Functions
//! return a process exit code; messages go to stderr, answers to stdout.
//!
//! One piece: each subcommand is a short function over the shared `Target` (a store or a
//! server); splitting them would spread that one seam over several files.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pemba_engine::{
    validate_tuple, CheckArgs as Check, Consistency, Engine, EngineError, ObjectRef, Page,
    RelationshipFilter, ResourceLookup, StorageError, SubjectLookup, SubjectRef, Tuple, Update,
};
use serde_json::{json, Value};

use pemba_server::auth::{resolve_key, KeySource};
use pemba_server::wire;
use pemba_server::{open_engine, Config, Limits, ServeError, STORE_FILE};

use crate::client::Client;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "pemba-data";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default gRPC listen address (SpiceDB's).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";

/// `pemba serve` flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory of the redb store (`pemba.redb`) and the generated key; created if missing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Address to serve SpiceDB's gRPC API (`authzed.api.v1`) on.
    #[arg(long, value_name = "ADDR", env = "PEMBA_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: String,
    /// File holding the API key (otherwise `PEMBA_KEY`, otherwise a key generated into the
    /// data directory on first start).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Most connections open at once overall (lowered to what the open-file limit allows).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Most connections open at once from one client address; more are closed at once.
    /// Raise it when clients reach the server through a proxy that shares one address.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_client)]
    pub max_connections_per_client: usize,
}

/// Where a client subcommand reads or writes.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Work on this data directory directly (default `pemba-data`; the server must not be
    /// running on it).
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    pub data_dir: Option<PathBuf>,
    /// Work through a running server, e.g. `http://127.0.0.1:8080`.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// API key for `--endpoint` (prefer `PEMBA_KEY` or `--key-file`: flags show in `ps`).
    #[arg(long, value_name = "KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// File holding the API key for `--endpoint`.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

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
    /// Relationships per transaction.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Where to import.
    #[command(flatten)]
    pub target: TargetArgs,
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
    /// Where to export from.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `pemba check` flags.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// `RESOURCE_TYPE:ID#PERMISSION@SUBJECT_TYPE:ID[#RELATION]`. Prints `true` (exit 0) or
    /// `false` (exit 1); errors exit 2.
    #[arg(value_name = "RESOURCE#PERMISSION@SUBJECT")]
    pub query: String,
    /// Where to check.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `pemba lookup` flags.
#[derive(Debug, clap::Args)]
pub struct LookupArgs {
    /// What to look up.
    #[command(subcommand)]
    pub what: LookupKind,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The two lookups.
#[derive(Debug, clap::Subcommand)]
pub enum LookupKind {
    /// Ids of every RESOURCE_TYPE object on which SUBJECT has PERMISSION, one a line.
    Resources {
        /// Resource type, e.g. `connection`.
        resource_type: String,
        /// Permission, e.g. `use`.
        permission: String,
        /// Subject, e.g. `user:alice` or `group:eng#member`.
        subject: String,
    },
    /// Ids of every SUBJECT_TYPE subject with PERMISSION on RESOURCE, one a line (`*` for
    /// a wildcard, followed by its exclusions).
    Subjects {
        /// Resource, e.g. `connection:salesforce`.
        resource: String,
        /// Permission, e.g. `use`.
        permission: String,
        /// Subject type, optionally with `#relation`, e.g. `user` or `group#member`.
        subject_type: String,
    },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Runs the server until ctrl-c or SIGTERM.
pub fn serve(args: ServeArgs) -> ExitCode {
    init_tracing();
    let (key, source) = match resolve_key(
        args.key_file.as_deref(),
        std::env::var("PEMBA_KEY").ok(),
        &args.data_dir,
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
    let result = runtime.block_on(async {
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
        eprintln!(
            "pemba serving http://{address} with data in {}",
            args.data_dir.display()
        );
        eprintln!("pemba serving grpc://{grpc_address}");
        let mut config = Config::new(args.data_dir.clone(), key);
        config.limits.max_connections = args.max_connections;
        config.limits.max_connections_per_client = args.max_connections_per_client;
        pemba_server::run_with_grpc(
            listener,
            Some(grpc_listener),
            config,
            pemba_server::shutdown_signal(),
        )
        .await
        .map_err(|e| open_hint(&e, &args.data_dir))
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

/// The message for a store that could not be opened, with a hint when another process
/// holds it.
fn open_hint(error: &ServeError, data_dir: &Path) -> String {
    if store_in_use(error) {
        format!(
            "{error}: is a server running on `{}`? use `--endpoint` to go through it",
            data_dir.display()
        )
    } else {
        error.to_string()
    }
}

/// Whether another process (a running server) holds the store.
fn store_in_use(error: &ServeError) -> bool {
    matches!(
        error,
        ServeError::Engine(EngineError::Storage(StorageError::AlreadyOpen { .. }))
    )
}

/// A data directory or a server.
enum Target {
    Local(Engine),
    Remote(Client),
}

fn target(args: &TargetArgs, create: bool) -> Result<Target, String> {
    if let Some(endpoint) = &args.endpoint {
        let key = match (&args.key, &args.key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?
                .trim()
                .to_string(),
            (None, None) => std::env::var("PEMBA_KEY").map_err(|_| {
                "`--endpoint` needs a key: `--key-file FILE`, `PEMBA_KEY` or `--key`".to_string()
            })?,
        };
        return Ok(Target::Remote(Client::new(endpoint, &key)));
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if create {
        open_engine(&dir)
            .map(Target::Local)
            .map_err(|e| open_hint(&e, &dir))
    } else {
        let path = dir.join(STORE_FILE);
        if !path.exists() {
            return Err(format!(
                "no store at `{}`: pass `--data-dir DIR` or `--endpoint URL`",
                path.display()
            ));
        }
        Engine::open(&path)
            .map(Target::Local)
            .map_err(|e| open_hint(&ServeError::from(e), &dir))
    }
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
pub fn import(args: ImportArgs) -> ExitCode {
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
    let target = match target(&args.target, true) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    // The schema to validate against: the store's, or the server's compiled locally.
    let checker = match &target {
        Target::Local(engine) => engine.schema(),
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

    let mut tuples = Vec::new();
    let mut bad: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        match parse_line(line, json_lines).and_then(|tuple| {
            validate_tuple(&schema.compiled, &tuple)
                .map(|()| tuple)
                .map_err(|e| e.to_string())
        }) {
            Ok(tuple) => tuples.push(tuple),
            Err(message) => bad.push((index + 1, message)),
        }
    }
    // Sorting finds duplicates without a copy of every relationship in a hash set, and
    // hands redb its keys in order.
    tuples.sort_unstable();
    let parsed = tuples.len();
    tuples.dedup();
    let duplicates = parsed - tuples.len();
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

    let progress = indicatif::ProgressBar::new(tuples.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, ETA {eta})",
    ) {
        progress.set_style(style);
    }
    let mut revision = String::new();
    let total = tuples.len();
    let mut remaining = tuples.into_iter();
    loop {
        // Moved, not copied, into each batch.
        let batch: Vec<Tuple> = remaining.by_ref().take(args.batch_size as usize).collect();
        if batch.is_empty() {
            break;
        }
        let batch_len = batch.len() as u64;
        let result = match &target {
            Target::Local(engine) => {
                let updates: Vec<Update> = batch.into_iter().map(Update::touch).collect();
                engine
                    .write(updates, &[])
                    .map(|r| r.token())
                    .map_err(|e| e.to_string())
            }
            Target::Remote(client) => {
                let relationships: Vec<wire::Relationship> =
                    batch.iter().map(wire::to_relationship).collect();
                client
                    .post(
                        "/v1/relationships/importbulk",
                        &json!({ "relationships": relationships }),
                    )
                    .map(|answer| {
                        answer
                            .pointer("/writtenAt/token")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    })
            }
        };
        match result {
            Ok(token) => revision = token,
            Err(message) => {
                progress.abandon();
                return fail(format!(
                    "import stopped after {} relationships (earlier batches are stored): {message}",
                    progress.position()
                ));
            }
        }
        progress.inc(batch_len);
    }
    progress.finish_and_clear();
    eprintln!(
        "imported {} relationships from `{name}` ({duplicates} duplicate lines, {} invalid lines skipped){}",
        total,
        bad.len(),
        if revision.is_empty() {
            String::new()
        } else {
            format!("; revision token {revision}")
        }
    );
    ExitCode::SUCCESS
}

/// Exports every relationship, in stable order.
pub fn export(args: ExportArgs) -> ExitCode {
    let target = match target(&args.target, false) {
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
    let json_lines = args.format == Format::Jsonl;
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
        Target::Local(engine) => (|| {
            let all = engine
                .relationships(Consistency::FullyConsistent, &RelationshipFilter::default())
                .map_err(|e| e.to_string())?;
            for tuple in all {
                emit(&tuple.map_err(|e| e.to_string())?, &mut out)?;
            }
            Ok(())
        })(),
        Target::Remote(client) => client.stream(
            "/v1/relationships/exportbulk",
            &json!({ "consistency": { "fullyConsistent": true } }),
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

/// Answers one check: prints `true` (exit 0) or `false` (exit 1).
pub fn check(args: CheckArgs) -> ExitCode {
    let query = match Tuple::parse(args.query.trim()) {
        Ok(query) => query,
        Err(e) => return fail(format!("`{}`: {e}", args.query)),
    };
    let target = match target(&args.target, false) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let allowed = match &target {
        Target::Local(engine) => engine
            .check(
                Consistency::FullyConsistent,
                Check::new(&query.resource, &query.relation, &query.subject),
            )
            .map(|answer| answer.value)
            .map_err(|e| e.to_string()),
        Target::Remote(client) => client
            .post(
                "/v1/permissions/check",
                &json!({
                    "consistency": { "fullyConsistent": true },
                    "resource": wire::to_object(&query.resource),
                    "permission": query.relation,
                    "subject": wire::to_subject(&query.subject),
                }),
            )
            .map(|answer| {
                answer.get("permissionship").and_then(Value::as_str)
                    == Some("PERMISSIONSHIP_HAS_PERMISSION")
            }),
    };
    match allowed {
        Ok(true) => {
            println!("true");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("false");
            ExitCode::from(1)
        }
        Err(message) => fail(message),
    }
}

/// Prints the answer of a lookup, one id a line.
pub fn lookup(args: LookupArgs) -> ExitCode {
    let target = match target(&args.target, false) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let mut out = std::io::stdout().lock();
    let result = match args.what {
        LookupKind::Resources {
            resource_type,
            permission,
            subject,
        } => (|| {
            let subject = SubjectRef::parse(&subject).map_err(|e| format!("`{subject}`: {e}"))?;
            match &target {
                Target::Local(engine) => {
                    let found = engine
                        .lookup_resources(
                            Consistency::FullyConsistent,
                            &ResourceLookup {
                                resource_type: &resource_type,
                                permission: &permission,
                                subject: &subject,
                                page: Page::default(),
                            },
                        )
                        .map_err(|e| e.to_string())?;
                    for id in found.value {
                        writeln!(out, "{id}").map_err(|e| e.to_string())?;
                    }
                    Ok(())
                }
                Target::Remote(client) => client.stream(
                    "/v1/permissions/resources",
                    &json!({
                        "consistency": { "fullyConsistent": true },
                        "resourceObjectType": resource_type,
                        "permission": permission,
                        "subject": wire::to_subject(&subject),
                    }),
                    |result| {
                        let id = result
                            .get("resourceObjectId")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        writeln!(out, "{id}").map_err(|e| e.to_string())?;
                        Ok(true)
                    },
                ),
            }
        })(),
        LookupKind::Subjects {
            resource,
            permission,
            subject_type,
        } => (|| {
            let resource = ObjectRef::parse(&resource).map_err(|e| format!("`{resource}`: {e}"))?;
            let (subject_type, relation) = match subject_type.split_once('#') {
                Some((ty, relation)) => (ty.to_string(), relation.to_string()),
                None => (subject_type.clone(), String::new()),
            };
            let print = |out: &mut std::io::StdoutLock<'_>, id: &str, excluded: &[String]| {
                if excluded.is_empty() {
                    writeln!(out, "{id}")
                } else {
                    writeln!(out, "{id} (except {})", excluded.join(", "))
                }
                .map_err(|e| e.to_string())
            };
            match &target {
                Target::Local(engine) => {
                    let found = engine
                        .lookup_subjects(
                            Consistency::FullyConsistent,
                            &SubjectLookup {
                                resource: &resource,
                                permission: &permission,
                                subject_type: &subject_type,
                                subject_relation: Some(relation.as_str()),
                                page: Page::default(),
                            },
                        )
                        .map_err(|e| e.to_string())?;
                    for subject in found.value {
                        print(&mut out, &subject.id, &subject.excluded)?;
                    }
                    Ok(())
                }
                Target::Remote(client) => client.stream(
                    "/v1/permissions/subjects",
                    &json!({
                        "consistency": { "fullyConsistent": true },
                        "resource": wire::to_object(&resource),
                        "permission": permission,
                        "subjectObjectType": subject_type,
                        "optionalSubjectRelation": relation,
                    }),
                    |result| {
                        let id = result
                            .pointer("/subject/subjectObjectId")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        let excluded: Vec<String> = result
                            .get("excludedSubjects")
                            .and_then(Value::as_array)
                            .map(|list| {
                                list.iter()
                                    .filter_map(|s| {
                                        s.get("subjectObjectId")
                                            .and_then(Value::as_str)
                                            .map(str::to_string)
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        print(&mut out, &id, &excluded)?;
                        Ok(true)
                    },
                ),
            }
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}
