//! `GET /healthz` (public) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;

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

/// Live and ready: the engine is open and answering. The revision (which would let
/// outsiders watch write activity) is shown only to a caller presenting the key.
async fn healthz(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    if crate::auth::presents_key(&state, &headers) {
        Json(serde_json::json!({
            "status": "ok",
            "revision": state.engine.revision().token(),
        }))
    } else {
        Json(serde_json::json!({ "status": "ok" }))
    }
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
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
