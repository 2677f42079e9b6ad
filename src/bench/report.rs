//! Counters and latency histograms of a run, merged from every worker, and their rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Mix, Protocol, Settings};

/// Wrong answers whose text is kept for the report; the rest are only counted.
const KEPT_EXAMPLES: usize = 5;

/// Kinds of request, each with its own latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Check,
    Bulk,
    Lookup,
    Write,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Check, Kind::Bulk, Kind::Lookup, Kind::Write];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Check => "check",
            Kind::Bulk => "checkbulk",
            Kind::Lookup => "lookup",
            Kind::Write => "write",
        }
    }
}

/// Latencies in microseconds, 1 µs to 100 s, three significant digits.
#[expect(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram accepts, so this never fails"
)]
fn histogram() -> Histogram<u64> {
    // INVARIANT: constant bounds that hdrhistogram accepts (low ≥ 1, high ≥ 2 × low,
    // 3 significant digits), so this never fails.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// One latency histogram per [`Kind`].
struct Latencies {
    check: Histogram<u64>,
    bulk: Histogram<u64>,
    lookup: Histogram<u64>,
    write: Histogram<u64>,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            check: histogram(),
            bulk: histogram(),
            lookup: histogram(),
            write: histogram(),
        }
    }

    fn of(&self, kind: Kind) -> &Histogram<u64> {
        match kind {
            Kind::Check => &self.check,
            Kind::Bulk => &self.bulk,
            Kind::Lookup => &self.lookup,
            Kind::Write => &self.write,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut Histogram<u64> {
        match kind {
            Kind::Check => &mut self.check,
            Kind::Bulk => &mut self.bulk,
            Kind::Lookup => &mut self.lookup,
            Kind::Write => &mut self.write,
        }
    }
}

/// What one worker saw; merged into the [`Report`].
pub(super) struct WorkerStats {
    latencies: Latencies,
    pub(super) checks_answered: u64,
    pub(super) verified: u64,
    wrong: u64,
    wrong_examples: Vec<String>,
    /// `kind: message` → (count); messages carry no per-request detail beyond the first.
    errors: BTreeMap<String, (u64, String)>,
}

impl WorkerStats {
    pub(super) fn new() -> Self {
        WorkerStats {
            latencies: Latencies::new(),
            checks_answered: 0,
            verified: 0,
            wrong: 0,
            wrong_examples: Vec::new(),
            errors: BTreeMap::new(),
        }
    }

    pub(super) fn record(&mut self, kind: Kind, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.of_mut(kind).saturating_record(micros.max(1));
    }

    /// Counts an error under `kind` and a class of `message` (its text up to the first
    /// `:` after a status, so one kind of failure is one line however often it happens).
    pub(super) fn error(&mut self, kind: &str, message: String) {
        let class = error_class(&message);
        let entry = self
            .errors
            .entry(format!("{kind}: {class}"))
            .or_insert((0, message));
        entry.0 += 1;
    }

    pub(super) fn wrong(&mut self, example: String) {
        self.wrong += 1;
        if self.wrong_examples.len() < KEPT_EXAMPLES {
            self.wrong_examples.push(example);
        }
    }

    pub(super) fn merge(&mut self, other: WorkerStats) {
        for kind in Kind::ALL {
            // Same bounds on both sides, so adding cannot fail.
            let _ = self.latencies.of_mut(kind).add(other.latencies.of(kind));
        }
        self.checks_answered += other.checks_answered;
        self.verified += other.verified;
        self.wrong += other.wrong;
        for example in other.wrong_examples {
            if self.wrong_examples.len() < KEPT_EXAMPLES {
                self.wrong_examples.push(example);
            }
        }
        for (class, (count, example)) in other.errors {
            self.errors.entry(class).or_insert((0, example)).0 += count;
        }
    }
}

/// `http 400: {...}` → `http 400`; other messages keep their text before any detail in
/// parentheses or after a colon.
fn error_class(message: &str) -> String {
    message
        .split(':')
        .next()
        .unwrap_or(message)
        .trim()
        .to_string()
}

/// The outcome of one run.
pub struct Report {
    /// Endpoint loaded.
    pub endpoint: String,
    /// The API loaded.
    pub protocol: Protocol,
    /// Wall-clock time from the first request to the last answer.
    pub elapsed: Duration,
    /// Workers, each with one request in flight.
    pub concurrency: usize,
    /// Request mix.
    pub mix: Mix,
    /// Items per `checkbulk`, if bulk.
    pub bulk: Option<usize>,
    /// Whether answers were compared.
    pub verify: bool,
    /// HTTP/2 cleartext instead of HTTP/1.1.
    pub http2: bool,
    /// Requests written at once per HTTP/1.1 connection (1: no pipelining).
    pub pipeline: usize,
    latencies: Latencies,
    /// Check answers received (bulk items count one each).
    pub checks_answered: u64,
    /// Answers compared with the workload (bulk items count one each).
    pub verified: u64,
    /// Answers that differed from the workload's.
    pub wrong: u64,
    /// The first few wrong answers, described.
    pub wrong_examples: Vec<String>,
    /// Failed requests by kind and class: count and the first message.
    pub errors: BTreeMap<String, (u64, String)>,
}

impl Report {
    pub(super) fn new(settings: &Settings, elapsed: Duration, stats: WorkerStats) -> Self {
        Report {
            endpoint: settings.endpoint.clone(),
            protocol: settings.protocol,
            elapsed,
            concurrency: settings.concurrency,
            mix: settings.mix,
            bulk: settings.bulk,
            verify: settings.verify,
            http2: settings.http2,
            pipeline: settings.pipeline,
            latencies: stats.latencies,
            checks_answered: stats.checks_answered,
            verified: stats.verified,
            wrong: stats.wrong,
            wrong_examples: stats.wrong_examples,
            errors: stats.errors,
        }
    }

    /// Successful requests of every kind.
    pub fn requests(&self) -> u64 {
        Kind::ALL
            .into_iter()
            .map(|kind| self.latencies.of(kind).len())
            .sum()
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(count, _)| count).sum()
    }

    /// Whether any request failed or any answer was wrong.
    pub fn failed(&self) -> bool {
        self.error_count() > 0 || self.wrong > 0
    }

    /// Successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Check answers per second (bulk items count one each).
    pub fn checks_per_second(&self) -> f64 {
        self.checks_answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile` (0..=1) of one kind of request, if any was answered:
    /// `"check"`, `"checkbulk"`, `"lookup"` or `"write"`.
    pub fn latency(&self, kind: &str, quantile: f64) -> Option<Duration> {
        let kind = Kind::ALL.into_iter().find(|k| k.name() == kind)?;
        let histogram = self.latencies.of(kind);
        (!histogram.is_empty())
            .then(|| Duration::from_micros(histogram.value_at_quantile(quantile)))
    }

    /// The report as printed by `pemba bench`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let seconds = self.elapsed.as_secs_f64();
        let bulk = self
            .bulk
            .map(|n| format!(", checkbulk of {n} items"))
            .unwrap_or_default();
        let transport = if self.http2 {
            format!(
                " (h2c, {} connections)",
                self.concurrency
                    .div_ceil(super::GRPC_WORKERS_PER_CONNECTION)
            )
        } else if self.pipeline > 1 {
            format!(", pipelined {} deep", self.pipeline)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "pemba bench: {} {} for {seconds:.1} s, {} {}{transport}, mix {}{bulk}",
            self.protocol,
            self.endpoint,
            self.concurrency,
            match (self.protocol, self.http2) {
                (Protocol::Http, false) => "connections",
                _ => "workers",
            },
            self.mix
        );
        let _ = writeln!(
            out,
            "requests: {} ok ({:.0}/s), {} failed",
            self.requests(),
            self.requests_per_second(),
            self.error_count()
        );
        if self.checks_answered > 0 {
            let _ = writeln!(
                out,
                "checks:   {} answered ({:.0} checks/s)",
                self.checks_answered,
                self.checks_per_second()
            );
        }
        let _ = writeln!(
            out,
            "latency (ms)  {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for kind in Kind::ALL {
            let histogram = self.latencies.of(kind);
            if histogram.is_empty() {
                continue;
            }
            let ms = |micros: u64| micros as f64 / 1000.0;
            let _ = writeln!(
                out,
                "  {:<11} {:>10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                kind.name(),
                histogram.len(),
                ms(histogram.value_at_quantile(0.5)),
                ms(histogram.value_at_quantile(0.9)),
                ms(histogram.value_at_quantile(0.99)),
                ms(histogram.value_at_quantile(0.999)),
                ms(histogram.max()),
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors:");
            for (class, (count, example)) in &self.errors {
                let _ = writeln!(out, "  {count:>8}  {class}   (first: {example})");
            }
        }
        if self.verify {
            let _ = writeln!(
                out,
                "verified: {} answers, {} wrong",
                self.verified, self.wrong
            );
            for example in &self.wrong_examples {
                let _ = writeln!(out, "  {example}");
            }
        } else {
            let _ = writeln!(out, "verified: no (pass --verify to compare answers)");
        }
        out.trim_end().to_string()
    }
}
