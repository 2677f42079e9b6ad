//! `pemba bench`: a load generator for a running Pemba server, over HTTP or gRPC.
//!
//! Over HTTP (`--protocol http`, the default) it opens `--concurrency` keep-alive HTTP/1.1
//! connections to the one endpoint it is given; over gRPC (`--protocol grpc`) it runs
//! `--concurrency` workers over one HTTP/2 connection per [`GRPC_WORKERS_PER_CONNECTION`]
//! workers (or `--connections N`), each with one RPC in flight. Over gRPC, bulk checks
//! are assembled from items encoded once per workload check (see `grpc.rs`); single
//! checks, lookups and writes go through tonic's client. Each worker sends requests back
//! to back, drawn from a mix of checks (single,
//! or `checkbulk` batches with `--bulk N`), lookups and writes built from a generated
//! workload (`pemba workload`). It stops by itself when `--duration` has passed or
//! `--requests` have been sent, then prints throughput, latency percentiles from an HDR
//! histogram, errors by kind and, with `--verify`, how many answers differed from the
//! workload's expected ones.
//!
//! Writes touch only bench-only objects (`connection:bench_w{worker}_{n}#owner@user:bench_writer`,
//! in no workspace), so they never change an answer the checks and lookups expect: the
//! schema grants `use` only to members of the connection's workspace.
//!
//! The endpoint must be a loopback address unless `--allow-remote` is given: a load test
//! is meant for a server on this machine.
//!
//! ```no_run
//! use pemba::bench::{run, Mix, Settings};
//! let settings = Settings {
//!     endpoint: "http://127.0.0.1:8080".into(),
//!     key: "secret".into(),
//!     ..Settings::new(std::path::Path::new("./xs"))
//! };
//! let report = run(&settings).map_err(|e| e.to_string())?;
//! println!("{}", report.render());
//! # Ok::<(), String>(())
//! ```

mod grpc;
mod load;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use report::Report;

/// The server `pemba bench` loads when `--endpoint` is not given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// The gRPC listener `pemba bench --protocol grpc` loads when `--grpc-endpoint` is not
/// given (`pemba serve`'s default `--grpc-listen`).
pub const DEFAULT_GRPC_ENDPOINT: &str = "grpc://127.0.0.1:50051";

/// gRPC workers that share one HTTP/2 connection unless `--connections` says otherwise:
/// enough streams per connection to exercise HTTP/2 multiplexing as SpiceDB clients do
/// (their one channel is one connection), enough connections that one connection's
/// single server task is not the bottleneck at high concurrency.
pub const GRPC_WORKERS_PER_CONNECTION: usize = 8;

/// The API a run loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// SpiceDB's HTTP/JSON API on `pemba serve`'s `--listen`.
    #[default]
    Http,
    /// SpiceDB's gRPC API on `pemba serve`'s `--grpc-listen`.
    Grpc,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        })
    }
}

/// Flags of `pemba bench`; the server is the global `--endpoint` (default
/// [`DEFAULT_ENDPOINT`], only loopback unless `--allow-remote`), its key the global
/// `--key-file` / `PEMBA_KEY`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Directory written by `pemba workload` (reads `checks.txt` and `lookups.txt`).
    #[arg(long, value_name = "DIR")]
    pub workload: PathBuf,
    /// How long to run (`500ms`, `30s`, `2m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests (whichever comes first with `--duration`).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Number of workers, each with one request in flight: over HTTP one keep-alive
    /// connection each, over gRPC one HTTP/2 connection per 8 workers (`--connections`).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The API to load: `http` (the global `--endpoint`) or `grpc` (`--grpc-endpoint`).
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,
    /// The gRPC listener with `--protocol grpc`, as `pemba serve` prints it
    /// (`grpc://HOST:PORT`; `http://HOST:PORT` and `HOST:PORT` are accepted too).
    #[arg(long, value_name = "URL")]
    pub grpc_endpoint: Option<String>,
    /// Relative weights of request kinds: `check`, `lookup` (lookup resources) and
    /// `write` (one touch on a bench-only object), e.g. `check=90,lookup=5,write=5`.
    #[arg(long, default_value = "check=100", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Send each check of the mix as a `checkbulk` of N items (at most 1000).
    #[arg(long, value_name = "N")]
    pub bulk: Option<usize>,
    /// Compare every answer with the workload's expected answer.
    #[arg(long)]
    pub verify: bool,
    /// Allow an endpoint that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Seed of the per-connection request choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Over HTTP, speak HTTP/2 over cleartext (h2c, prior knowledge) instead of HTTP/1.1:
    /// one connection per 8 workers, as with `--protocol grpc`.
    #[arg(long, conflicts_with = "pipeline")]
    pub http2: bool,
    /// Over HTTP/1.1, pipeline: each connection writes N requests at once, then reads
    /// their N answers (checks and writes only: lookup answers are streamed).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pipeline: usize,
    /// HTTP/2 connections the workers share, with `--protocol grpc` or `--http2` (default
    /// one per 8 workers; `--connections` equal to `--concurrency` gives each worker its
    /// own, as HTTP/1.1 does).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
}

/// Relative weights of the request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Checks (or bulk checks with [`Settings::bulk`]).
    pub check: u32,
    /// Lookup resources.
    pub lookup: u32,
    /// Single-relationship writes on bench-only objects.
    pub write: u32,
}

impl Default for Mix {
    /// Checks only.
    fn default() -> Self {
        Mix {
            check: 100,
            lookup: 0,
            write: 0,
        }
    }
}

impl Mix {
    /// Parses `check=90,lookup=5,write=5` (absent kinds weigh 0).
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            check: 0,
            lookup: 0,
            write: 0,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("expected `KIND=WEIGHT`, got `{part}`"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of `{name}` is not a whole number: `{weight}`"))?;
            match name.trim() {
                "check" => mix.check = weight,
                "lookup" => mix.lookup = weight,
                "write" => mix.write = weight,
                other => {
                    return Err(format!(
                        "unknown request kind `{other}`: expected check, lookup or write"
                    ))
                }
            }
        }
        if mix.total() == 0 {
            return Err("the mix has no weight: give at least one kind a weight".to_string());
        }
        Ok(mix)
    }

    fn total(self) -> u32 {
        self.check + self.lookup + self.write
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("check", self.check),
            ("lookup", self.lookup),
            ("write", self.write),
        ]
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(n, w)| format!("{n}={w}"))
        .collect();
        f.write_str(&parts.join(","))
    }
}

/// Parses `250ms`, `30s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like `30s` or `500ms`, got `{text}`"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown duration unit `{unit}`: use ms, s or m")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("the duration must be positive, got `{text}`"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Everything one run needs, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// With [`Protocol::Http`], the base URL (`http://HOST:PORT`, optionally with a path
    /// prefix); with [`Protocol::Grpc`], the gRPC listener (`grpc://HOST:PORT`,
    /// `http://HOST:PORT` or `HOST:PORT`).
    pub endpoint: String,
    /// The API loaded (default HTTP).
    pub protocol: Protocol,
    /// The bearer key.
    pub key: String,
    /// Workload directory.
    pub workload: PathBuf,
    /// Upper bound on the run time (default 10 s).
    pub duration: Duration,
    /// Upper bound on the number of requests (default none).
    pub max_requests: Option<u64>,
    /// Connections (default 64).
    pub concurrency: usize,
    /// Request mix (default checks only).
    pub mix: Mix,
    /// Items per `checkbulk` request; `None` sends single checks (default).
    pub bulk: Option<usize>,
    /// Compare answers with the workload's (default off).
    pub verify: bool,
    /// Accept a non-loopback endpoint (default off).
    pub allow_remote: bool,
    /// Draw a live progress line on stderr (default off).
    pub progress: bool,
    /// Seed of the request choice (default 1).
    pub seed: u64,
    /// Over HTTP, h2c instead of HTTP/1.1, one connection per
    /// [`GRPC_WORKERS_PER_CONNECTION`] workers (default off).
    pub http2: bool,
    /// Requests each HTTP/1.1 connection writes before reading their answers (default 1:
    /// no pipelining).
    pub pipeline: usize,
    /// HTTP/2 connections (gRPC, or HTTP with [`Settings::http2`]); `None` opens one per
    /// [`GRPC_WORKERS_PER_CONNECTION`] workers (default).
    pub connections: Option<usize>,
}

impl Settings {
    /// Defaults for the workload in `workload`, against `http://127.0.0.1:8080` with an
    /// empty key.
    pub fn new(workload: &Path) -> Self {
        Settings {
            endpoint: "http://127.0.0.1:8080".to_string(),
            protocol: Protocol::Http,
            key: String::new(),
            workload: workload.to_path_buf(),
            duration: Duration::from_secs(10),
            max_requests: None,
            concurrency: 64,
            mix: Mix::default(),
            bulk: None,
            verify: false,
            allow_remote: false,
            progress: false,
            seed: 1,
            http2: false,
            pipeline: 1,
            connections: None,
        }
    }

    /// How many HTTP/2 connections the workers share: [`Settings::connections`], or one
    /// per [`GRPC_WORKERS_PER_CONNECTION`] workers.
    fn http2_connections(&self) -> usize {
        self.connections
            .unwrap_or_else(|| self.concurrency.div_ceil(GRPC_WORKERS_PER_CONNECTION))
            .clamp(1, self.concurrency.max(1))
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

/// Runs the load described by `settings` to its end, on a runtime of its own.
pub fn run(settings: &Settings) -> Result<Report, BenchError> {
    if settings.concurrency == 0 {
        return Err(BenchError("`--concurrency` must be at least 1".into()));
    }
    if let Some(bulk) = settings.bulk {
        if bulk == 0 || bulk > 1000 {
            return Err(BenchError(format!(
                "`--bulk` must be between 1 and 1000 items, got {bulk}"
            )));
        }
    }
    if settings.pipeline == 0 || settings.pipeline > 1000 {
        return Err(BenchError(format!(
            "`--pipeline` must be between 1 and 1000 requests, got {}",
            settings.pipeline
        )));
    }
    if (settings.http2 || settings.pipeline > 1) && settings.protocol != Protocol::Http {
        return Err(BenchError(
            "`--http2` and `--pipeline` apply to `--protocol http`".into(),
        ));
    }
    if settings.http2 && settings.pipeline > 1 {
        return Err(BenchError(
            "`--pipeline` is for HTTP/1.1; HTTP/2 multiplexes instead (drop `--http2`)".into(),
        ));
    }
    if let Some(connections) = settings.connections {
        if settings.protocol == Protocol::Http && !settings.http2 {
            return Err(BenchError(
                "`--connections` is for HTTP/2 (`--protocol grpc` or `--http2`); over HTTP/1.1 each worker has its own".into(),
            ));
        }
        if connections == 0 || connections > settings.concurrency {
            return Err(BenchError(format!(
                "`--connections` must be between 1 and `--concurrency` ({}), got {connections}",
                settings.concurrency
            )));
        }
    }
    if settings.pipeline > 1 && settings.mix.lookup > 0 {
        return Err(BenchError(
            "`--pipeline` sends checks and writes only: lookup answers are streamed (drop `lookup` from `--mix`)".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(load::run(settings))
}

/// `pemba bench`: runs, prints the report; exit status 1 if any request failed or any
/// answer was wrong, 2 if the run could not start.
pub fn cli(args: BenchArgs, global: &crate::cli::GlobalArgs) -> ExitCode {
    if global.data_dir.is_some() || global.consistency.is_some() || global.json {
        eprintln!("error: `bench` loads a server: `--data-dir`, `--consistency` and `--json` do not apply");
        return ExitCode::from(2);
    }
    let key = match global.client_key() {
        Ok(key) => key,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let endpoint = match (args.protocol, &global.endpoint, args.grpc_endpoint) {
        (Protocol::Http, _, Some(_)) => {
            eprintln!("error: `--grpc-endpoint` needs `--protocol grpc`");
            return ExitCode::from(2);
        }
        (Protocol::Grpc, Some(_), _) => {
            eprintln!("error: `--endpoint` is the HTTP API: with `--protocol grpc` give the gRPC listener as `--grpc-endpoint`");
            return ExitCode::from(2);
        }
        (Protocol::Http, endpoint, None) => endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        (Protocol::Grpc, None, endpoint) => {
            endpoint.unwrap_or_else(|| DEFAULT_GRPC_ENDPOINT.to_string())
        }
    };
    let settings = Settings {
        endpoint,
        protocol: args.protocol,
        key,
        workload: args.workload,
        duration: args.duration,
        max_requests: args.requests,
        concurrency: args.concurrency,
        mix: args.mix,
        bulk: args.bulk,
        verify: args.verify,
        allow_remote: args.allow_remote,
        progress: true,
        seed: args.seed,
        http2: args.http2,
        pipeline: args.pipeline,
        connections: args.connections,
    };
    match run(&settings) {
        Ok(report) => {
            println!("{}", report.render());
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_weights_and_refuses_unknown_kinds() {
        assert_eq!(
            Mix::parse("check=90,lookup=5,write=5"),
            Ok(Mix {
                check: 90,
                lookup: 5,
                write: 5
            })
        );
        assert!(Mix::parse("check=0").is_err());
        assert!(Mix::parse("read=1").is_err());
        assert_eq!(
            Mix::parse("lookup=1").map(|m| m.to_string()),
            Ok("lookup=1".into())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
