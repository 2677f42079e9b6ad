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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => validate::run(&files),
    }
}
