//! The `pemba` command line: one subcommand per task, each implemented in its own module.

mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pemba, a Zanzibar-style authorization engine.
#[derive(Debug, Parser)]
#[command(name = "pemba", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check schema files (`.zed`) and SpiceDB validation files (`.yaml`, `.yml`).
    ///
    /// Prints `FILE: ok` for each good file and every error with its position
    /// otherwise; exits with status 1 if any file has an error.
    Validate {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Generate a deterministic user-groups workload (schema, relationships, expected
    /// checks and lookups) for benchmarks and the load generator.
    Workload {
        /// Workload size: xs ≈ 1.5k, s ≈ 60k, m ≈ 1.4M, l ≈ 14M relationships.
        #[arg(long, value_enum)]
        size: pemba::workload::Size,
        /// Seed of the generator: the same seed and size give the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory to write `schema.zed`, `tuples.txt`, `checks.txt` and `lookups.txt` into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the HTTP API (default: data in `./pemba-data`, listening on 127.0.0.1:8080).
    Serve(pemba::cli::ServeArgs),
    /// Create or upgrade Pemba's tables in a PostgreSQL database. Idempotent, and safe to
    /// run from several replicas at once.
    Migrate {
        /// The database: `postgres://USER@HOST:PORT/DB` (the password may also come from
        /// `PGPASSWORD` or the file named by `PEMBA_DATASTORE_PASSWORD_FILE`).
        #[arg(long, env = "PEMBA_DATASTORE", value_name = "URL")]
        datastore: String,
    },
    /// Import relationships (text or JSON lines) into a data directory or a server.
    ///
    /// Every line is validated first; if any is bad, each is reported by line number and
    /// nothing is written (unless `--skip-invalid`).
    Import(pemba::cli::ImportArgs),
    /// Export every relationship (text or JSON lines) from a data directory or a server.
    Export(pemba::cli::ExportArgs),
    /// Check `RESOURCE#PERMISSION@SUBJECT`: prints `true` (exit 0) or `false` (exit 1).
    Check(pemba::cli::CheckArgs),
    /// Look up resources a subject can reach, or subjects that can reach a resource.
    Lookup(pemba::cli::LookupArgs),
    /// Load a running server over HTTP with a workload's checks, lookups and writes.
    ///
    /// Keep-alive connections send requests back to back until `--duration` or
    /// `--requests`; prints throughput, latency percentiles, errors by kind and, with
    /// `--verify`, answers that differ from the workload's. Exit status 1 if any request
    /// failed or any answer was wrong.
    Bench(pemba::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Workload { size, seed, out } => workload(size, seed, &out),
        Command::Serve(args) => pemba::cli::serve(args),
        Command::Migrate { datastore } => migrate(&datastore),
        Command::Import(args) => pemba::cli::import(args),
        Command::Export(args) => pemba::cli::export(args),
        Command::Check(args) => pemba::cli::check(args),
        Command::Lookup(args) => pemba::cli::lookup(args),
        Command::Bench(args) => pemba::bench::cli(args),
    }
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

/// `pemba migrate`: prints what it did, or the error (which never repeats the URL).
fn migrate(datastore: &str) -> ExitCode {
    match pemba_engine::migrate(datastore) {
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
