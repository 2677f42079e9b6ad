//! Prometheus metrics: request counts and latency histograms per route, the engine's
//! revision and relationship count, and on a shared datastore its round-trip latency and
//! this replica's lag, served as text by `GET /metrics`.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: no global
//! recorder (each [`Metrics`] owns its registry, so several servers in one test process
//! do not mix their numbers), few dependencies, and OpenMetrics text out of the box.
//!
//! Recording sits on every request's path, so it allocates nothing: labels are
//! `&'static str`s (route patterns from the route table, method names, status numbers),
//! and the latency histograms are [`AtomicHistogram`]s, buckets of atomic counters,
//! instead of `prometheus-client`'s `Histogram`, which takes a mutex per observation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

use crate::AppState;

/// The labels of one HTTP request count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// The label of one HTTP route's latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// The labels of one gRPC call count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

/// The label of one gRPC method's latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// 50 µs .. ~1.6 s in 16 doublings, then +Inf: checks land in the first buckets, imports
/// in the last.
fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// A Prometheus histogram whose observation is two relaxed atomic adds and a compare loop
/// on the sum: no lock, so requests on different cores never wait for each other.
/// A scrape reads the counters one by one; it may see an observation in `count` and not
/// yet in its bucket, which Prometheus' rate queries tolerate (the next scrape has it).
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds, ascending, the last `+Inf`.
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), one per bound.
    counts: Vec<AtomicU64>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with `bounds` (ascending), plus a `+Inf` bucket.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let mut bounds: Vec<f64> = bounds.into_iter().collect();
        bounds.push(f64::INFINITY);
        AtomicHistogram {
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Counts one observation of `value` (seconds, for the latencies here).
    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len().saturating_sub(1));
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The route pattern `matched` as a `&'static str` from the route table, so a label costs
/// no allocation; `unmatched` for anything else (the fallback has no pattern).
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    static ROUTES: OnceLock<FxHashMap<&'static str, &'static str>> = OnceLock::new();
    let Some(matched) = matched else {
        return "unmatched";
    };
    ROUTES
        .get_or_init(|| {
            crate::routes::table()
                .into_iter()
                .map(|route| (route.path, route.path))
                .collect()
        })
        .get(matched.as_str())
        .copied()
        .unwrap_or("unmatched")
}

/// The method's name; methods outside HTTP's standard set are counted as `other`, so a
/// client inventing methods cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The registry and its instruments.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, AtomicHistogram, fn() -> AtomicHistogram>,
    revision: Gauge,
    relationships: Gauge,
    /// Streamed answers whose producer is still running; it drops back when clients leave.
    pub open_streams: Gauge,
    datastore_round_trip: Histogram,
    datastore_up: Gauge,
    lag_revisions: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    grpc_requests: Family<CallLabels, Counter>,
    grpc_latency: Family<MethodLabel, AtomicHistogram, fn() -> AtomicHistogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every instrument registered under the `pemba_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pemba");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabel, AtomicHistogram, fn() -> AtomicHistogram>::new_with_constructor(
                latency_histogram,
            );
        let revision = Gauge::default();
        let relationships = Gauge::default();
        let open_streams = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route (time to response headers)",
            latency.clone(),
        );
        registry.register(
            "engine_revision",
            "Newest committed revision",
            revision.clone(),
        );
        registry.register(
            "engine_relationships",
            "Stored relationships",
            relationships.clone(),
        );
        registry.register(
            "http_open_streams",
            "Streamed answers (lookups, read, export, watch) still producing",
            open_streams.clone(),
        );
        // 100 µs .. ~3.3 s: a datastore on the same host answers in the first buckets.
        let datastore_round_trip = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let datastore_up = Gauge::default();
        let lag_revisions = Gauge::default();
        let lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "datastore_round_trip_seconds",
            "Time of one round trip to the datastore (measured at each scrape and health check)",
            datastore_round_trip.clone(),
        );
        registry.register(
            "datastore_up",
            "Whether the datastore answered the last round trip (1) or not (0)",
            datastore_up.clone(),
        );
        registry.register(
            "replication_lag_revisions",
            "Revisions committed to the shared datastore that this replica has not applied yet",
            lag_revisions.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "How long ago the oldest revision this replica has not applied was committed",
            lag_seconds.clone(),
        );
        let grpc_requests = Family::<CallLabels, Counter>::default();
        let grpc_latency =
            Family::<MethodLabel, AtomicHistogram, fn() -> AtomicHistogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "grpc_requests",
            "gRPC calls by method and status code, counted when the call ends",
            grpc_requests.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC call latency by method (time to response headers)",
            grpc_latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            revision,
            relationships,
            open_streams,
            datastore_round_trip,
            datastore_up,
            lag_revisions,
            lag_seconds,
            grpc_requests,
            grpc_latency,
        }
    }

    /// Records the end of one gRPC call: `method` is its path (`/package.Service/Method`),
    /// `code` its status code's name (`OK`, `NOT_FOUND`, ...).
    pub fn record_grpc_call(&self, method: &'static str, code: &'static str) {
        self.grpc_requests
            .get_or_create(&CallLabels { method, code })
            .inc();
    }

    /// Records how long a gRPC call took to its response headers.
    pub fn record_grpc_latency(&self, method: &'static str, seconds: f64) {
        self.grpc_latency
            .get_or_create(&MethodLabel { method })
            .observe(seconds);
    }

    /// Records one answered request: `route` is its pattern in the route table (or
    /// `unmatched`), `method` its method's name.
    pub fn record(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(seconds);
    }

    /// Records one round trip to the datastore: how long it took, or that it failed.
    pub fn record_round_trip(&self, took: Option<Duration>) {
        match took {
            Some(took) => {
                self.datastore_round_trip.observe(took.as_secs_f64());
                self.datastore_up.set(1);
            }
            None => {
                self.datastore_up.set(0);
            }
        }
    }

    /// Sets this replica's lag behind the shared datastore's newest commit.
    pub fn record_lag(&self, lag: pemba_engine::Lag) {
        self.lag_revisions
            .set(i64::try_from(lag.revisions).unwrap_or(i64::MAX));
        self.lag_seconds.set(lag.seconds);
    }

    /// The exposition text, with the engine gauges refreshed.
    pub fn render(&self, revision: u64, relationships: u64) -> Result<String, std::fmt::Error> {
        self.revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
        self.relationships
            .set(i64::try_from(relationships).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Middleware: counts and times every request by its route pattern (never by raw path, so
/// label cardinality stays bounded), and answers 504 for a request that has no answer
/// within [`crate::Limits::request_timeout`] (streamed answers count as answered once their
/// headers are out). One middleware for both, as each layer of axum's `from_fn` costs a
/// clone of the service stack inside it per request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let started = Instant::now();
    let limit = state.limits.request_timeout;
    let response = match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::ApiError::request_timeout(limit).into_response(),
    };
    state.metrics.record(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn the_atomic_histogram_renders_as_prometheus_clients_histogram_does() {
        let ours = AtomicHistogram::new([0.1, 1.0]);
        let theirs = Histogram::new([0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 2.0, 7.0] {
            ours.observe(value);
            theirs.observe(value);
        }
        let expected = rendered(|r| r.register("latency", "help", theirs));
        assert!(
            expected.contains("latency_bucket{le=\"1.0\"} 3"),
            "{expected}"
        );
        assert_eq!(rendered(|r| r.register("latency", "help", ours)), expected);
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(route_label(None), "unmatched");
    }
}
