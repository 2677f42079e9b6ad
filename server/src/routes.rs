//! The route table and the router built from it.
//!
//! Every route is listed once in [`table`], with whether it is public; the router applies
//! auth to every non-public route from that same list, and the tests enumerate it, so a
//! new route cannot forget auth. Feature modules (such as the user-groups API) add their
//! routes by extending [`table`] with their own `fn routes() -> Vec<Route>`.

pub mod ops;
pub mod permissions;
pub mod relationships;
pub mod schema;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
pub use axum::http::Method;
use axum::http::{HeaderName, Request};
use axum::routing::MethodRouter;
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::AppState;

/// One route: method, path, whether it skips auth, and its handler.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path.
    pub path: &'static str,
    /// True only for routes that need no key (`/healthz`).
    pub public: bool,
    /// Largest accepted body in bytes; `None` for [`crate::Limits::max_body_bytes`]
    /// (importbulk always gets [`crate::Limits::max_import_body_bytes`]).
    pub body_limit: Option<usize>,
    /// The handler.
    pub handler: MethodRouter<AppState>,
    /// How the handler decodes its JSON body, without running it (for fuzzing every
    /// route's decoding through this same table); `None` when it reads no JSON body.
    pub decode: Option<BodyDecoder>,
}

/// A route's body decoding alone, as its handler decodes: `Err` is the 4xx the route
/// would answer for that body.
pub type BodyDecoder = fn(&[u8]) -> Result<(), crate::ApiError>;

/// Decodes a body as `T`, the way [`crate::error::ApiJson`] does.
pub fn decode_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), crate::ApiError> {
    crate::error::decode_json::<T>(body).map(drop)
}

impl Route {
    /// A protected `POST` route with the default body limit whose handler reads a JSON
    /// body of type `T`.
    pub fn post<T: serde::de::DeserializeOwned>(
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            method: Method::POST,
            path,
            public: false,
            body_limit: None,
            handler,
            decode: Some(decode_as::<T>),
        }
    }
}

/// Every route the server answers. Add feature route groups here (e.g. `groups::routes()`).
pub fn table() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(permissions::routes());
    routes.extend(relationships::routes());
    routes.extend(schema::routes());
    routes.extend(watch::routes());
    routes.extend(ops::routes());
    routes.extend(crate::groups::routes()); // user-groups feature (issue 5)
    routes.extend(crate::console::routes()); // web console (issue 15)
    routes
}

/// `(method, path, public)` of every route, for tests and docs.
pub fn list() -> Vec<(Method, &'static str, bool)> {
    table()
        .into_iter()
        .map(|r| (r.method, r.path, r.public))
        .collect()
}

/// The request-id header set on every request and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a process-wide counter, unless the client sent its own.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("req-{n}").parse().ok().map(RequestId::new)
    }
}

/// Builds the router from [`table`].
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in table() {
        let limit = if route.path == relationships::IMPORT_PATH {
            state.limits.max_import_body_bytes
        } else {
            route.body_limit.unwrap_or(state.limits.max_body_bytes)
        };
        let mut handler = route.handler.layer(DefaultBodyLimit::max(limit));
        if !route.public {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::auth::require_key,
            ));
        }
        router = router.route(route.path, handler);
    }
    router
        .fallback(|| async { crate::ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { crate::ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                // Only method, path and request id: headers (and so the key) are never logged.
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            })
            // One line per request at `info` cost a fifth of the server's CPU under load
            // (BENCHMARKS.md): responses log at `debug`.
            .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
            .on_failure(log_failure),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, Counter::default()))
        .with_state(state)
}

/// Logs a 5xx answer inside its request span (so with its request id) at a level that
/// says whose fault it is: a client asking for what is not implemented (501) is not a
/// server failure (`debug`); a timeout or an unavailable server is `warn`; anything else
/// is `error`. 4xx answers are not failures at all (they log with the response, at
/// `debug`).
fn log_failure(
    failure: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    let latency_ms = latency.as_millis();
    match failure {
        ServerErrorsFailureClass::StatusCode(status) => match status.as_u16() {
            501 => tracing::debug!(%status, latency_ms, "not implemented"),
            503 | 504 => tracing::warn!(%status, latency_ms, "request failed"),
            _ => tracing::error!(%status, latency_ms, "request failed"),
        },
        ServerErrorsFailureClass::Error(error) => {
            tracing::error!(%error, latency_ms, "request failed");
        }
    }
}

/// Decodes `body` as the JSON request type of the route `method path` (a pattern from
/// [`table`]) exactly as its handler's extractor would, without running the handler: for
/// fuzzing the request decoding of every route. `None` for routes that read no JSON body
/// (`GET`s, `DELETE`s, the user-groups CSV import). The decoders are the ones the route
/// table itself carries, so there is no second list of paths to drift.
pub fn decode_body(
    method: &Method,
    path: &str,
    body: &[u8],
) -> Option<Result<(), crate::ApiError>> {
    static DECODERS: std::sync::OnceLock<Vec<(Method, &'static str, BodyDecoder)>> =
        std::sync::OnceLock::new();
    DECODERS
        .get_or_init(|| {
            table()
                .into_iter()
                .filter_map(|r| Some((r.method, r.path, r.decode?)))
                .collect()
        })
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map(|(_, _, decode)| decode(body))
}
