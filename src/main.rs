//! The `pemba` command line: one subcommand per task, each implemented in its own module.

mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use pemba::cli::permission::{self, PermissionCommand};
use pemba::cli::relationship::{self, RelationshipCommand};
use pemba::cli::schema::{self, SchemaCommand};
use pemba::cli::GlobalArgs;

/// Pemba, a Zanzibar-style authorization engine.
///
/// Every command but `serve`, `validate`, `workload` and `completions` works on a data
/// directory (`--data-dir DIR`, default `./pemba-data`) or through a running server
/// (`--endpoint URL`). With `--endpoint` the key is `--key`, `--key-file FILE`,
/// `PEMBA_KEY`, or else the key a server generated into `./pemba-data/api-key`. These
/// flags, `--json` and `--consistency` go anywhere on the command line.
#[derive(Debug, Parser)]
#[command(name = "pemba", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (default: data in `./pemba-data`, listening on 127.0.0.1:8080).
    #[command(
        after_help = "Example:\n  pemba serve --data-dir /var/lib/pemba --listen 0.0.0.0:9000\n  \
                            API key: generated into /var/lib/pemba/api-key (mode 0600); ...\n  \
                            pemba serving http://0.0.0.0:9000 with data in /var/lib/pemba\n\n\
                            The `pemba serving` line comes once the store is open and the socket bound."
    )]
    Serve(pemba::cli::ServeArgs),
    /// Create or upgrade Pemba's tables in the PostgreSQL database `--datastore URL` (or
    /// `PEMBA_DATASTORE`) names. Idempotent, and safe to run from several replicas at once.
    #[command(
        after_help = "Example:\n  pemba migrate --datastore postgres://pemba@db:5432/authz\n  \
                            migrated the database from version 0 to 1"
    )]
    Migrate,
    /// Read, write or compare the schema.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Create, touch, delete and list relationships.
    #[command(subcommand, visible_alias = "rel")]
    Relationship(RelationshipCommand),
    /// Check permissions, expand them, look up resources and subjects.
    #[command(subcommand, visible_alias = "perm")]
    Permission(PermissionCommand),
    /// Check `RESOURCE#PERMISSION@SUBJECT` (the same as `permission check`).
    Check(permission::CheckArgs),
    /// Look up resources a subject can reach, or subjects that can reach a resource (the
    /// same as `permission lookup-resources` and `permission lookup-subjects`).
    #[command(subcommand)]
    Lookup(LookupKind),
    /// Import relationships (text or JSON lines) into a data directory or a server.
    ///
    /// Every line is validated first; if any is bad, each is reported by line number and
    /// nothing is written (unless `--skip-invalid`).
    #[command(after_help = "Examples:\n  pemba import tuples.txt\n  \
                            pemba import tuples.jsonl --endpoint http://127.0.0.1:8080\n  \
                            imported 6 relationships from `tuples.txt` (0 duplicate lines, 0 invalid lines skipped); revision token pb1.2")]
    Import(pemba::cli::ImportArgs),
    /// Export every relationship (text or JSON lines) from a data directory or a server.
    #[command(after_help = "Example:\n  pemba export > backup.txt\n  exported 6 relationships")]
    Export(pemba::cli::ExportArgs),
    /// Check schema files (`.zed`) and SpiceDB validation files (`.yaml`, `.yml`).
    ///
    /// Prints `FILE: ok` for each good file and every error with its position
    /// otherwise; exits with status 1 if any file has an error.
    #[command(
        after_help = "Example:\n  pemba validate schemas/user-groups.zed\n  schemas/user-groups.zed: ok"
    )]
    Validate {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  pemba completions bash > ~/.local/share/bash-completion/completions/pemba\n  \
                            pemba completions zsh > ~/.zfunc/_pemba\n  \
                            pemba completions fish > ~/.config/fish/completions/pemba.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Generate a deterministic user-groups workload (schema, relationships, expected
    /// checks and lookups) for benchmarks and the load generator.
    #[command(
        after_help = "Example:\n  pemba workload --size xs --out xs\n  wrote … relationships to xs"
    )]
    Workload {
        /// Workload size: xs ≈ 1.5k, s ≈ 60k, m ≈ 1.4M, l ≈ 14M, xl ≈ 15M relationships.
        #[arg(long, value_enum)]
        size: pemba::workload::Size,
        /// Seed of the generator: the same seed and size give the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory to write `schema.zed`, `tuples.txt`, `checks.txt` and `lookups.txt` into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Load a running server over HTTP with a workload's checks, lookups and writes.
    ///
    /// Keep-alive connections send requests back to back until `--duration` or
    /// `--requests`; prints throughput, latency percentiles, errors by kind and, with
    /// `--verify`, answers that differ from the workload's. Exit status 1 if any request
    /// failed or any answer was wrong.
    #[command(
        after_help = "Example:\n  PEMBA_KEY=k pemba bench --endpoint http://127.0.0.1:8080 --workload xs --duration 10s --verify"
    )]
    Bench(pemba::bench::BenchArgs),
}

/// `pemba lookup resources|subjects`.
#[derive(Debug, Subcommand)]
enum LookupKind {
    /// Ids of every RESOURCE_TYPE object on which SUBJECT has PERMISSION, one a line.
    Resources(permission::LookupResourcesArgs),
    /// Ids of every SUBJECT_TYPE subject with PERMISSION on RESOURCE, one a line (`*` for
    /// a wildcard, followed by its exclusions).
    Subjects(permission::LookupSubjectsArgs),
}

fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    let files_only = |name: &str| global.no_target(name).err();
    match command {
        Command::Serve(args) => pemba::cli::serve(args, &global),
        Command::Migrate => migrate(&global),
        Command::Schema(command) => schema::run(command, &global),
        Command::Relationship(command) => relationship::run(command, &global),
        Command::Permission(command) => permission::run(command, &global),
        Command::Check(args) => permission::check(&args, &global),
        Command::Lookup(LookupKind::Resources(args)) => {
            permission::run(PermissionCommand::LookupResources(args), &global)
        }
        Command::Lookup(LookupKind::Subjects(args)) => {
            permission::run(PermissionCommand::LookupSubjects(args), &global)
        }
        Command::Import(args) => pemba::cli::import(args, &global),
        Command::Export(args) => pemba::cli::export(args, &global),
        Command::Validate { files } => match files_only("validate") {
            Some(message) => fail(&message),
            None => validate::run(&files),
        },
        Command::Completions { shell } => match files_only("completions") {
            Some(message) => fail(&message),
            None => {
                // Into a buffer first: clap_complete panics when its writer fails (a
                // closed pipe), and a panic is no way to report that.
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "pemba", &mut script);
                match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(&format!("cannot write the completion script: {e}")),
                }
            }
        },
        Command::Workload { size, seed, out } => match files_only("workload") {
            Some(message) => fail(&message),
            None => workload(size, seed, &out),
        },
        Command::Bench(args) => pemba::bench::cli(args, &global),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn workload(size: pemba::workload::Size, seed: u64, out: &std::path::Path) -> ExitCode {
    let workspaces = size.workspaces() as u64;
    let bar = indicatif::ProgressBar::new(workspaces).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} workspaces, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("generating {size}"));
    if size == pemba::workload::Size::Xs || size == pemba::workload::Size::S {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let model = pemba::workload::generate(size, seed, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    match pemba::workload::write_files(&model, seed, out) {
        Ok(count) => {
            println!("wrote {count} relationships to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "error: cannot write the workload to `{}`: {error}",
                out.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `pemba migrate`: prints what it did, or the error (which never repeats the password).
fn migrate(global: &GlobalArgs) -> ExitCode {
    let Some(datastore) = global.datastore() else {
        return fail("`migrate` needs `--datastore URL` (or `PEMBA_DATASTORE`)");
    };
    if global.data_dir.is_some() || global.endpoint.is_some() {
        return fail("`migrate` works on `--datastore` alone");
    }
    match pemba_engine::migrate_with(&datastore.url, &datastore.options) {
        Ok(done) if done.from == done.to => {
            println!("the database is already at version {}", done.to);
            ExitCode::SUCCESS
        }
        Ok(done) => {
            println!(
                "migrated the database from version {} to {}",
                done.from, done.to
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
