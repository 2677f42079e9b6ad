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

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
pub use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

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

/// Builds the router from [`table`], with auth on every protected route and metrics and
/// the request deadline on every route. Request ids and the request span are
/// [`crate::service::HttpApi`]'s, which serves this router.
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
        .with_state(state)
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
