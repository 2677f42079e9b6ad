//! Prometheus metrics: request counts and latency histograms per route, the engine's
//! revision and relationship count, and on a shared datastore its round-trip latency and
//! this replica's lag, served as text by `GET /metrics`.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: no global
//! recorder (each [`Metrics`] owns its registry, so several servers in one test process
//! do not mix their numbers), few dependencies, and OpenMetrics text out of the box.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::AppState;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s in 16 doublings: checks land in the first buckets, imports in the last.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The registry and its instruments.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    revision: Gauge,
    relationships: Gauge,
    /// Streamed answers whose producer is still running; it drops back when clients leave.
    pub open_streams: Gauge,
    datastore_round_trip: Histogram,
    datastore_up: Gauge,
    lag_revisions: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    grpc_requests: Family<Labels, Counter>,
    grpc_latency: Family<Labels, Histogram, fn() -> Histogram>,
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
        let requests = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
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
        let grpc_requests = Family::<Labels, Counter>::default();
        let grpc_latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
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
    pub fn record_grpc_call(&self, method: &str, code: &str) {
        self.grpc_requests
            .get_or_create(&vec![
                ("method".to_string(), method.to_string()),
                ("code".to_string(), code.to_string()),
            ])
            .inc();
    }

    /// Records how long a gRPC call took to its response headers.
    pub fn record_grpc_latency(&self, method: &str, seconds: f64) {
        self.grpc_latency
            .get_or_create(&vec![("method".to_string(), method.to_string())])
            .observe(seconds);
    }

    /// Records one answered request.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("route".to_string(), route.to_string()),
                ("method".to_string(), method.to_string()),
                ("status".to_string(), status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route".to_string(), route.to_string())])
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
/// label cardinality stays bounded).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
