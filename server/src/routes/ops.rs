//! `GET /healthz` (public) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use std::time::{Duration, Instant};

use super::Route;
use crate::error::ApiError;
use crate::AppState;

/// The routes of this group.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/healthz",
            public: true,
            body_limit: None,
            handler: get(healthz),
            decode: None,
        },
        Route {
            method: Method::GET,
            path: "/metrics",
            public: false,
            body_limit: None,
            handler: get(metrics),
            decode: None,
        },
    ]
}

/// How long `/healthz` and `/metrics` wait for the datastore to answer one round trip.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// One round trip to the store, timed and recorded; `Err` with the reason when it failed
/// or took longer than [`PING_TIMEOUT`].
async fn ping(state: &AppState) -> Result<Duration, String> {
    let engine = state.engine.clone();
    let started = Instant::now();
    let answered = tokio::time::timeout(
        PING_TIMEOUT,
        tokio::task::spawn_blocking(move || engine.ping_store()),
    )
    .await;
    let outcome = match answered {
        Err(_) => Err(format!("no answer within {} s", PING_TIMEOUT.as_secs())),
        Ok(Err(joined)) => Err(joined.to_string()),
        Ok(Ok(Err(error))) => Err(error.to_string()),
        Ok(Ok(Ok(()))) => Ok(started.elapsed()),
    };
    state
        .metrics
        .record_round_trip(outcome.as_ref().ok().copied());
    outcome
}

/// Live: the engine is open and answering from its index. `status` is `ok`, or
/// `degraded` while the datastore cannot be reached (reads at `minimizeLatency` still
/// answer, writes fail with 503), so a load balancer keeps routing reads to it. The
/// revision and the datastore's kind and reachability (which would let outsiders watch
/// write activity or probe the deployment) are shown only to a caller presenting the key.
async fn healthz(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let reached = ping(&state).await;
    let status = if reached.is_ok() { "ok" } else { "degraded" };
    if crate::auth::presents_key(&state, &headers) {
        let mut datastore = serde_json::json!({
            "kind": state.engine.store_kind(),
            "reachable": reached.is_ok(),
        });
        if let (Err(reason), Some(fields)) = (&reached, datastore.as_object_mut()) {
            fields.insert("error".to_string(), serde_json::Value::from(reason.clone()));
        }
        Json(serde_json::json!({
            "status": status,
            "revision": state.engine.revision().token(),
            "datastore": datastore,
        }))
    } else {
        Json(serde_json::json!({ "status": status }))
    }
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if ping(&state).await.is_ok() {
        let engine = state.engine.clone();
        if let Ok(Ok(lag)) = tokio::task::spawn_blocking(move || engine.replication_lag()).await {
            state.metrics.record_lag(lag);
        }
    }
    let text = state
        .metrics
        .render(state.engine.revision().0, state.engine.relationship_count())
        .map_err(ApiError::internal)?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
