//! [`HttpApi`]: the HTTP API as the one tower service hyper calls for each request.
//!
//! It gives every request its id (`x-request-id`: the client's own, else `req-N` from a
//! counter, echoed on the answer) and its log span, as tower-http's request-id and trace
//! layers did, and answers `POST /v1/permissions/check` itself: the route's auth, body
//! limit, deadlines and metrics, written out here, in front of the same handler code
//! ([`crate::routes::permissions`]). Every other request goes to axum's router
//! ([`crate::routes::router`]), whose routes keep their auth and metrics layers.
//!
//! Why the check is answered here: through the router it cost about 57,000 instructions
//! and 76 allocations of the server's per check (callgrind, BENCHMARKS.md "HTTP service
//! stack"), two thirds of them in the router and its layers: each request cloned every
//! boxed service of its route's stack (33 boxes), boxed a future per layer and built an
//! extension map. The check is the route an application calls on every request it
//! serves; the others cost far more in the engine than in the router.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::Router;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::routes::permissions::{answer_check, CHECK_PATH};
use crate::routes::REQUEST_ID;
use crate::AppState;

/// Errors a request body may fail with, as hyper and axum box them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future of one answer. One box per request: axum's stack boxed one per layer.
type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The whole HTTP API as one service: request ids, the request span and its log lines,
/// `POST /v1/permissions/check` answered directly, everything else through the router.
///
/// Cloned once per connection (two reference counts), not per request.
#[derive(Clone)]
pub struct HttpApi {
    router: Router,
    state: AppState,
    /// The last request id handed out; ids count from 1 per `HttpApi`.
    ids: Arc<AtomicU64>,
}

impl HttpApi {
    /// The API over `state`: every route of [`crate::routes::table`].
    pub fn new(state: AppState) -> Self {
        HttpApi {
            router: crate::routes::router(state.clone()),
            state,
            ids: Arc::default(),
        }
    }
}

impl<B> tower::Service<Request<B>> for HttpApi
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready, and so is the direct path.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Answer {
        let started = Instant::now();
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => next_request_id(&self.ids),
        };
        let span = request_span(&request, &id);
        if request.method() == Method::POST && request.uri().path() == CHECK_PATH {
            let state = self.state.clone();
            let answer = async move {
                tracing::debug!("started processing request");
                let response = match check(&state, request, started).await {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                };
                state.metrics.record(
                    CHECK_PATH,
                    "POST",
                    response.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                Ok(finish(response, id, started))
            };
            return Box::pin(answer.instrument(span));
        }
        if !request.headers().contains_key(REQUEST_ID) {
            // Handlers and the router's layers see the id the client will.
            request.headers_mut().insert(REQUEST_ID, id.clone());
        }
        let routed = tower::Service::call(&mut self.router, request);
        let body_span = span.clone();
        let answer = async move {
            tracing::debug!("started processing request");
            let response = match routed.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // A streamed body is produced after this future ends; its polls stay in the
            // request's span, as under tower-http's trace layer. Only when the span is on
            // (`info` logging), as the wrapper costs a box.
            let response = if body_span.is_disabled() {
                response
            } else {
                response.map(|body| {
                    Body::new(InSpan {
                        body,
                        span: body_span,
                    })
                })
            };
            Ok(finish(response, id, started))
        };
        Box::pin(answer.instrument(span))
    }
}

/// `POST /v1/permissions/check` with the router's semantics: 401 without the key, 413 over
/// [`crate::Limits::max_body_bytes`], 408 for a body not in within
/// [`crate::Limits::body_timeout`] (504 when [`crate::Limits::request_timeout`] is the
/// shorter), then the handler's own answer.
///
/// One deadline instead of the router's two (the request's and the body's): the body is
/// the only wait; once it is in, the check runs to its answer without yielding, so the
/// request deadline could never fire after it (a tokio timeout polls its future first).
async fn check<B>(
    state: &AppState,
    request: Request<B>,
    started: Instant,
) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    crate::auth::authorize(state, &parts.headers)?;
    let limits = &state.limits;
    let body_first = limits.body_timeout <= limits.request_timeout;
    let wait = if body_first {
        limits.body_timeout
    } else {
        limits.request_timeout
    };
    let deadline = tokio::time::Instant::from_std(started) + wait;
    let read = read_limited(body, limits.max_body_bytes);
    let bytes = match tokio::time::timeout_at(deadline, read).await {
        Ok(read) => read.map_err(|error| body_error(error, state))?,
        Err(_) if body_first => return Err(ApiError::body_timeout(limits.body_timeout)),
        Err(_) => return Err(ApiError::request_timeout(limits.request_timeout)),
    };
    answer_check(state, &bytes)
}

/// Why [`read_limited`] stopped.
enum BodyError {
    /// More than the limit arrived.
    TooLarge,
    /// The connection failed (hyper's error).
    Failed(BoxError),
}

/// The whole body, refused once more than `limit` bytes arrive (as `http_body_util::Limited`,
/// which axum's extractors use, refuses it). A body that arrives in one piece (a check
/// always does) is kept as that piece, uncopied.
async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut more: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|error| BodyError::Failed(error.into()))?;
        let Ok(data) = frame.into_data() else {
            // Trailers carry nothing a route reads.
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match &first {
            None => first = Some(data),
            Some(earlier) => {
                if more.is_empty() {
                    more.extend_from_slice(earlier);
                }
                more.extend_from_slice(&data);
            }
        }
    }
    Ok(if more.is_empty() {
        first.unwrap_or_default()
    } else {
        Bytes::from(more)
    })
}

/// The answer [`crate::error::read_body`] gives for the same failure, word for word.
fn body_error(error: BodyError, state: &AppState) -> ApiError {
    match error {
        BodyError::TooLarge => ApiError::too_large(format!(
            "request body exceeds the limit of {} bytes ({} for importbulk)",
            state.limits.max_body_bytes, state.limits.max_import_body_bytes
        )),
        // axum's `FailedToBufferBody` text, which `read_body` passes on.
        BodyError::Failed(error) => ApiError::invalid(format!(
            "cannot read request body: Failed to buffer the request body: {error}"
        )),
    }
}

/// The next `req-N`, formatted on the stack: the header value is the one allocation.
fn next_request_id(ids: &AtomicU64) -> HeaderValue {
    let n = ids.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let mut text = [0u8; 24];
    let prefix = b"req-";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        if let Some(digit) = digits.get_mut(at) {
            // The remainder of a division by 10 fits a u8.
            *digit = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 || at == 0 {
            break;
        }
    }
    let digits = digits.get(at..).unwrap_or_default();
    let len = prefix.len() + digits.len();
    if let Some(slot) = text.get_mut(..prefix.len()) {
        slot.copy_from_slice(prefix);
    }
    if let Some(slot) = text.get_mut(prefix.len()..len) {
        slot.copy_from_slice(digits);
    }
    // Ascii letters, a dash and digits: always a valid header value.
    HeaderValue::from_bytes(text.get(..len).unwrap_or_default())
        .unwrap_or_else(|_| HeaderValue::from_static("req"))
}

/// The request's span: method, path and request id only, so headers (and so the key) are
/// never logged. Disabled, and free, unless `info` is on.
fn request_span<B>(request: &Request<B>, id: &HeaderValue) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id.to_str().unwrap_or("-"),
    )
}

/// Echoes the request id (unless the answer set its own) and logs the answer inside the
/// request span: at `debug`, as one line per request at `info` cost a fifth of the server's
/// CPU under load (BENCHMARKS.md), and 5xx answers again as [`log_failure`] says.
fn finish(mut response: Response, id: HeaderValue, started: Instant) -> Response {
    if !response.headers().contains_key(REQUEST_ID) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    let latency = started.elapsed();
    let status = response.status();
    tracing::debug!(
        latency = %format_args!("{} ms", latency.as_millis()),
        status = i32::from(status.as_u16()),
        "finished processing request"
    );
    if status.is_server_error() {
        log_failure(status, latency);
    }
    response
}

/// Logs a 5xx answer (inside its request span, so with its request id) at a level that
/// says whose fault it is: a client asking for what is not implemented (501) is not a
/// server failure (`debug`); a timeout or an unavailable server is `warn`; anything else
/// is `error`. 4xx answers are not failures at all (they log with the answer, at `debug`).
fn log_failure(status: StatusCode, latency: Duration) {
    let latency_ms = latency.as_millis();
    match status.as_u16() {
        501 => tracing::debug!(%status, latency_ms, "not implemented"),
        503 | 504 => tracing::warn!(%status, latency_ms, "request failed"),
        _ => tracing::error!(%status, latency_ms, "request failed"),
    }
}

/// A response body polled inside its request's span.
struct InSpan {
    body: Body,
    span: tracing::Span,
}

impl http_body::Body for InSpan {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower::ServiceExt as _;

    use super::*;
    use crate::{ApiKey, Limits};

    const KEY: &str = "service-key";

    fn state(limits: Limits) -> AppState {
        let engine = pemba_engine::Engine::in_memory().unwrap();
        engine
            .write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
            .unwrap();
        AppState::with_limits(Arc::new(engine), ApiKey::new(KEY).unwrap(), limits)
    }

    fn check_request(method: Method, key: Option<&str>, body: Body) -> Request<Body> {
        let mut request = Request::builder().method(method).uri(CHECK_PATH);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        request.body(body).unwrap()
    }

    /// Status, content type, request id and body text of an answer.
    async fn read(response: Response) -> (StatusCode, Option<String>, Option<String>, String) {
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_string())
        };
        let (content_type, id) = (header("content-type"), header("x-request-id"));
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            content_type,
            id,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_direct_check_answers_as_the_router_does() {
        let state = state(Limits {
            max_body_bytes: 300,
            ..Limits::default()
        });
        let check = r#"{"resource":{"objectType":"doc","objectId":"a"},"permission":"view","subject":{"object":{"objectType":"user","objectId":"alice"}}}"#;
        let cases: Vec<(Method, Option<&str>, String)> = vec![
            (Method::POST, Some(KEY), check.to_string()),
            (Method::POST, None, check.to_string()),
            (Method::POST, Some("wrong"), check.to_string()),
            (Method::POST, Some(KEY), String::new()),
            (Method::POST, Some(KEY), "{".to_string()),
            (Method::POST, Some(KEY), r#"{"unknown":1}"#.to_string()),
            (Method::POST, Some(KEY), check.replace("alice", "al ice")),
            (
                Method::POST,
                Some(KEY),
                check.replace('}', r#","context":{"a":1}}"#),
            ),
            (
                Method::POST,
                Some(KEY),
                format!("{check}{}", " ".repeat(300)),
            ),
            (Method::GET, Some(KEY), String::new()),
        ];
        let router = crate::routes::router(state.clone());
        for (method, key, body) in cases {
            let direct = HttpApi::new(state.clone())
                .oneshot(check_request(method.clone(), key, Body::from(body.clone())))
                .await
                .unwrap();
            let routed = router
                .clone()
                .oneshot(check_request(method.clone(), key, Body::from(body.clone())))
                .await
                .unwrap();
            let (direct, routed) = (read(direct).await, read(routed).await);
            assert_eq!(direct.2.as_deref(), Some("req-1"), "{method} {body}");
            assert_eq!(
                (direct.0, &direct.1, &direct.3),
                (routed.0, &routed.1, &routed.3),
                "{method} {key:?} {body}"
            );
        }
    }

    /// A body that never arrives.
    fn stalled() -> Body {
        Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>())
    }

    #[tokio::test]
    async fn one_deadline_answers_408_for_a_slow_body_and_504_when_the_request_limit_is_shorter() {
        let short = Duration::from_millis(50);
        for (limits, status, says) in [
            (
                Limits {
                    body_timeout: short,
                    ..Limits::default()
                },
                StatusCode::REQUEST_TIMEOUT,
                "50 ms",
            ),
            (
                Limits {
                    request_timeout: short,
                    ..Limits::default()
                },
                StatusCode::GATEWAY_TIMEOUT,
                "may still be applied",
            ),
        ] {
            let state = state(limits);
            let api = HttpApi::new(state.clone());
            let answer = api
                .clone()
                .oneshot(check_request(Method::POST, Some(KEY), stalled()))
                .await
                .unwrap();
            let (got, _, _, body) = read(answer).await;
            assert_eq!(got, status, "{body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["code"], 4, "{body}");
            assert!(body["message"].as_str().unwrap().contains(says), "{body}");
            // Counted under the route, as the router's metrics layer counts it.
            let metrics = api
                .oneshot(
                    Request::get("/metrics")
                        .header("authorization", format!("Bearer {KEY}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let text = read(metrics).await.3;
            let counted = format!(
                "pemba_http_requests_total{{route=\"{CHECK_PATH}\",method=\"POST\",status=\"{}\"}} 1",
                status.as_u16()
            );
            assert!(text.contains(&counted), "{counted} not in {text}");
        }
    }

    #[tokio::test]
    async fn every_answer_carries_a_request_id_unique_unless_the_client_sent_one() {
        let api = HttpApi::new(state(Limits::default()));
        let mut seen = std::collections::HashSet::new();
        for path in [CHECK_PATH, "/v1/schema/read", "/healthz", "/v1/nope"] {
            for _ in 0..3 {
                let request = Request::post(path).body(Body::empty()).unwrap();
                let (_, _, id, _) = read(api.clone().oneshot(request).await.unwrap()).await;
                let id = id.expect("an x-request-id on every answer");
                assert!(id.starts_with("req-"), "{id}");
                assert!(seen.insert(id.clone()), "{id} handed out twice");
            }
            let request = Request::post(path)
                .header("x-request-id", "client-7")
                .body(Body::empty())
                .unwrap();
            let (_, _, id, _) = read(api.clone().oneshot(request).await.unwrap()).await;
            assert_eq!(id.as_deref(), Some("client-7"), "{path}");
        }
    }

    #[test]
    fn request_ids_count_from_one_in_their_own_format() {
        let ids = AtomicU64::new(0);
        assert_eq!(next_request_id(&ids), "req-1");
        assert_eq!(next_request_id(&ids), "req-2");
        let ids = AtomicU64::new(9);
        assert_eq!(next_request_id(&ids), "req-10");
        let ids = AtomicU64::new(u64::MAX - 1);
        assert_eq!(next_request_id(&ids), format!("req-{}", u64::MAX));
        assert_eq!(next_request_id(&ids), "req-0", "wraps instead of panicking");
    }
}
