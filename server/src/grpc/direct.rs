//! `POST /authzed.api.v1.PermissionsService/CheckPermission` answered in front of tonic's
//! router, as [`crate::service::HttpApi`] answers the HTTP check in front of axum's.
//!
//! [`Layer`] is the outermost layer of the gRPC server (inside tonic's own deadline and
//! error recovery, which still wrap it). It answers a CheckPermission call itself when it
//! can prove the answer is the one the stack behind it would give: the key check of
//! [`super::KeyCheck`], the decode limit (`max_decoding_message_size`, refused as
//! [`super::size_refusal_as_exhausted`] rewrites it), prost's decoding with tonic's words
//! for its errors, the handler's code ([`super::permissions::answer_check`]), the status
//! headers of `Status::into_http` re-encoded as [`super::message`] does, and the metrics of
//! [`super::metrics`]. Anything else goes to the stack untouched: every other path, a
//! `grpc-encoding` other than `identity`, an unusual `content-type`, and, once the body is
//! read, a compressed or malformed frame, a body that ends early, a second message, or a
//! body error. Those are replayed to the stack byte for byte, so it answers as if nothing
//! had read them.
//!
//! Why: through the stack a check cost about 26,000 instructions of the server's 88,500
//! (callgrind) in axum's router inside tonic's `Routes`, the interceptor's round trip of
//! the request through `tonic::Request`, the codec's streaming decoder and encoder, and
//! a boxed future and a boxed body per layer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method};
use http_body::{Body as _, Frame, SizeHint};
use prost::Message as _;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::Status;

use super::metrics::code_name;
use crate::metrics::Metrics;
use crate::AppState;

/// The one path answered here.
const CHECK_PATH: &str = "/authzed.api.v1.PermissionsService/CheckPermission";

/// A gRPC message's prefix: a compressed flag and a big-endian `u32` length.
const PREFIX: usize = 5;

/// The request body tonic's server hands its layers.
type Incoming = tonic::body::Body;

/// An answer's body: the direct path's, or the stack's as it gave it.
pub type ResponseBody = http_body_util::Either<Answer, tonic::body::Body>;

/// The tower layer answering CheckPermission; the state gives the engine, key, limits and
/// metrics.
#[derive(Clone)]
pub struct Layer(pub AppState);

impl<S> tower::Layer<S> for Layer {
    type Service = Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Service {
            inner,
            state: self.0.clone(),
        }
    }
}

/// [`Layer`]'s service over the stack `inner`.
#[derive(Clone)]
pub struct Service<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<http::Request<Incoming>> for Service<S>
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Unpin,
    S::Future: Unpin,
{
    type Response = http::Response<ResponseBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        if !answerable(&request) {
            return ResponseFuture::Stack(self.inner.call(request));
        }
        let started = Instant::now();
        if let Err(status) = super::authorize(&self.state, request.headers()) {
            let response = refusal(status, &self.state.metrics, started);
            return ResponseFuture::Answered(Some(response));
        }
        // The ready service goes with the call in case its body has to go to the stack;
        // a clone (reference counts only) takes its place, made ready by the next
        // `poll_ready` as tower requires.
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        let (parts, body) = request.into_parts();
        ResponseFuture::Reading(Reading {
            state: self.state.clone(),
            started,
            parts: Some(parts),
            body,
            inner: Some(inner),
            first: None,
            more: BytesMut::new(),
            trailers: None,
        })
    }
}

/// Whether the call is CheckPermission as a standard client sends it: POST, protobuf
/// content, no compression. Decided from the headers alone, before anything is read.
fn answerable(request: &http::Request<Incoming>) -> bool {
    let headers = request.headers();
    request.method() == Method::POST
        && request.uri().path() == CHECK_PATH
        && headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value == "application/grpc" || value == "application/grpc+proto")
        && headers
            .get("grpc-encoding")
            .is_none_or(|value| value == "identity")
}

/// A status as the stack answers it before or instead of a message: `Status::into_http`'s
/// trailers-only answer, the size refusal's code rewritten, its message re-encoded, and
/// the call counted as the metrics layer counts one.
fn refusal(status: Status, metrics: &Metrics, started: Instant) -> http::Response<ResponseBody> {
    let mut response = status.into_http::<Answer>();
    let headers = response.headers_mut();
    super::size_refusal_headers(headers);
    super::message::reencode(headers);
    metrics.record_grpc_latency(CHECK_PATH, started.elapsed().as_secs_f64());
    let code = headers
        .get("grpc-status")
        .map_or("UNKNOWN", |value| code_name(value.as_bytes()));
    metrics.record_grpc_call(CHECK_PATH, code);
    response.map(http_body_util::Either::Left)
}

/// [`Service`]'s future: an answer given at once, a body being read, or the stack's call.
pub enum ResponseFuture<S: tower::Service<http::Request<Incoming>>> {
    /// The answer, taken when polled.
    Answered(Option<http::Response<ResponseBody>>),
    /// CheckPermission's body on its way in. Not boxed: tonic boxes this whole future.
    Reading(Reading<S>),
    /// The stack's service before it is called, with the request it is given.
    Forwarding(S, Option<http::Request<Incoming>>),
    /// The stack's answer.
    Stack(S::Future),
}

/// A CheckPermission call whose body is being read.
pub struct Reading<S> {
    state: AppState,
    started: Instant,
    /// The request's head, for the stack if it gets the call.
    parts: Option<http::request::Parts>,
    body: Incoming,
    /// The stack, taken if it gets the call.
    inner: Option<S>,
    /// The first data frame, kept as it came (a check's message always arrives in one).
    first: Option<Bytes>,
    /// Everything read, once a second data frame came.
    more: BytesMut,
    /// The request's trailers, replayed if the stack gets the call.
    trailers: Option<HeaderMap>,
}

/// What [`Reading`] decided.
enum Read {
    /// More body is needed.
    Pending,
    /// The answer to give.
    Answer(http::Response<ResponseBody>),
    /// The stack must answer; a body error it ended with, if any.
    Forward(Option<Status>),
}

impl<S> Reading<S> {
    /// The bytes read so far, in one piece.
    fn read(&self) -> &[u8] {
        if self.more.is_empty() {
            self.first.as_deref().unwrap_or_default()
        } else {
            &self.more
        }
    }

    fn push(&mut self, data: Bytes) {
        match &self.first {
            None if self.more.is_empty() => self.first = Some(data),
            _ => {
                if let Some(first) = self.first.take() {
                    self.more.extend_from_slice(&first);
                }
                self.more.extend_from_slice(&data);
            }
        }
    }

    /// What the bytes read so far decide, `ended` when the body has no more.
    fn decide(&self, ended: bool) -> Read {
        let read = self.read();
        let Some(&[flag, a, b, c, d]) = read.get(..PREFIX) else {
            // Nothing, or a part of a prefix: tonic's words for a body that ends here.
            return if ended {
                Read::Forward(None)
            } else {
                Read::Pending
            };
        };
        if flag != 0 {
            // A compressed flag (refused without an encoding) or an invalid one.
            return Read::Forward(None);
        }
        let length = u32::from_be_bytes([a, b, c, d]) as usize;
        let limit = self.state.limits.max_body_bytes;
        if length > limit {
            // tonic refuses this as soon as it reads the prefix, before the rest arrives.
            let status = Status::out_of_range(format!(
                "Error, decoded message length too large: found {length} bytes, the limit is: {limit} bytes"
            ));
            return Read::Answer(refusal(status, &self.state.metrics, self.started));
        }
        let end = PREFIX.saturating_add(length);
        if read.len() > end {
            // The start of a second message.
            return Read::Forward(None);
        }
        if !ended {
            return Read::Pending;
        }
        match read.get(PREFIX..end) {
            Some(message) => Read::Answer(self.answer(message)),
            // Cut short: tonic's "unexpected EOF".
            None => Read::Forward(None),
        }
    }

    /// The answer to `message`, the whole of a request body that held one.
    fn answer(&self, message: &[u8]) -> http::Response<ResponseBody> {
        let metrics = &self.state.metrics;
        let request = match pb::CheckPermissionRequest::decode(message) {
            Ok(request) => request,
            // tonic-prost's words for a message that does not decode.
            Err(error) => {
                return refusal(Status::internal(error.to_string()), metrics, self.started)
            }
        };
        let answer = match super::permissions::answer_check(&self.state, &request) {
            Ok(answer) => answer,
            Err(status) => return refusal(status, metrics, self.started),
        };
        let length = answer.encoded_len();
        let mut encoded = BytesMut::with_capacity(PREFIX.saturating_add(length));
        encoded.put_u8(0);
        // A check's answer is a token and an enum: far below 4 GiB.
        encoded.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
        if answer.encode(&mut encoded).is_err() {
            // Never: the buffer was sized for the message.
            return refusal(
                Status::internal("Error encoding: the answer outgrew its buffer"),
                metrics,
                self.started,
            );
        }
        let mut response = http::Response::new(http_body_util::Either::Left(Answer {
            message: Some(encoded.freeze()),
            call: Some(metrics.clone()),
        }));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        metrics.record_grpc_latency(CHECK_PATH, self.started.elapsed().as_secs_f64());
        response
    }

    /// Reads the body until its bytes decide the call.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Read> {
        loop {
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(self.decide(true)),
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Read::Forward(Some(status))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) => {
                    self.push(data);
                    match self.decide(false) {
                        Read::Pending => {}
                        decided => return Poll::Ready(decided),
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        match &mut self.trailers {
                            Some(earlier) => earlier.extend(trailers),
                            None => self.trailers = Some(trailers),
                        }
                    }
                }
            }
        }
    }

    /// The request as it came, for the stack: its head, the bytes read, what ended the
    /// body (an error, trailers) and the rest of it.
    fn replay(&mut self, error: Option<Status>) -> Option<(S, http::Request<Incoming>)> {
        let parts = self.parts.take()?;
        let inner = self.inner.take()?;
        let read = match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.more).freeze(),
        };
        let body = Replay {
            read: Some(read).filter(|read| !read.is_empty()),
            error,
            trailers: self.trailers.take(),
            rest: std::mem::replace(&mut self.body, tonic::body::Body::empty()),
        };
        Some((
            inner,
            http::Request::from_parts(parts, tonic::body::Body::new(body)),
        ))
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<tonic::body::Body>>
        + Unpin,
    S::Future: Unpin,
{
    type Output = Result<http::Response<ResponseBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                ResponseFuture::Answered(response) => {
                    return match response.take() {
                        Some(response) => Poll::Ready(Ok(response)),
                        // Polled after it finished; a future may do anything then.
                        None => Poll::Pending,
                    };
                }
                ResponseFuture::Reading(reading) => match reading.poll_read(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Read::Pending) => return Poll::Pending,
                    Poll::Ready(Read::Answer(response)) => {
                        *this = ResponseFuture::Answered(None);
                        return Poll::Ready(Ok(response));
                    }
                    Poll::Ready(Read::Forward(error)) => match reading.replay(error) {
                        Some((inner, request)) => {
                            *this = ResponseFuture::Forwarding(inner, Some(request));
                        }
                        None => {
                            *this = ResponseFuture::Answered(None);
                            return Poll::Pending;
                        }
                    },
                },
                ResponseFuture::Forwarding(inner, request) => {
                    match inner.poll_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                        Poll::Ready(Ok(())) => {}
                    }
                    let Some(request) = request.take() else {
                        return Poll::Pending;
                    };
                    *this = ResponseFuture::Stack(inner.call(request));
                }
                ResponseFuture::Stack(future) => {
                    return Pin::new(future)
                        .poll(cx)
                        .map_ok(|response| response.map(http_body_util::Either::Right));
                }
            }
        }
    }
}

/// A request body as [`Reading`] saw it: the bytes it read, then what ended it (an error,
/// trailers), else the rest of the body.
struct Replay {
    read: Option<Bytes>,
    error: Option<Status>,
    trailers: Option<HeaderMap>,
    rest: Incoming,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(read) = this.read.take() {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        if let Some(error) = this.error.take() {
            this.trailers = None;
            this.rest = tonic::body::Body::empty();
            return Poll::Ready(Some(Err(error)));
        }
        if let Some(trailers) = this.trailers.take() {
            this.rest = tonic::body::Body::empty();
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none()
            && self.error.is_none()
            && self.trailers.is_none()
            && self.rest.is_end_stream()
    }
}

/// The direct path's answer body: CheckPermission's message, then the trailers of a
/// successful call (`grpc-status: 0`, as tonic sends them), counted then as `OK`; or as
/// `CANCELLED` if dropped before (the client left). Empty for a trailers-only refusal.
#[derive(Default)]
pub struct Answer {
    /// The framed message, until sent.
    message: Option<Bytes>,
    /// Where the call is counted, until it is.
    call: Option<Arc<Metrics>>,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        let Some(metrics) = this.call.take() else {
            return Poll::Ready(None);
        };
        metrics.record_grpc_call(CHECK_PATH, "OK");
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.call.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Not exact, as tonic's: an exact hint would make hyper add a `content-length`.
        SizeHint::default()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(metrics) = self.call.take() {
            metrics.record_grpc_call(CHECK_PATH, "CANCELLED");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use http_body_util::BodyExt as _;
    use tower::Layer as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::{ApiKey, Limits};

    const KEY: &str = "grpc-key";
    /// The decode limit the tests run with: a check fits, a long id does not.
    const LIMIT: usize = 300;

    fn engine() -> Arc<pemba_engine::Engine> {
        let engine = pemba_engine::Engine::in_memory().unwrap();
        engine
            .write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
            .unwrap();
        let tuple = pemba_engine::Tuple::parse("doc:a#viewer@user:alice").unwrap();
        engine
            .write(vec![pemba_engine::Update::touch(tuple)], vec![])
            .unwrap();
        Arc::new(engine)
    }

    fn state(engine: Arc<pemba_engine::Engine>) -> AppState {
        AppState::with_limits(
            engine,
            ApiKey::new(KEY).unwrap(),
            Limits {
                max_body_bytes: LIMIT,
                ..Limits::default()
            },
        )
    }

    /// The stack `serve()` puts behind [`Layer`].
    async fn stack(
        state: &AppState,
    ) -> impl tower::Service<
        http::Request<Incoming>,
        Response = http::Response<tonic::body::Body>,
        Error = Infallible,
        Future: Unpin + Send,
    > + Clone
           + Unpin {
        super::super::inner_layers(state).service(super::super::routes(state).await)
    }

    fn object(object_type: &str, object_id: &str) -> Option<pb::ObjectReference> {
        Some(pb::ObjectReference {
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
        })
    }

    fn check(resource: &str, subject: &str) -> pb::CheckPermissionRequest {
        pb::CheckPermissionRequest {
            resource: object("doc", resource),
            permission: "view".to_string(),
            subject: Some(pb::SubjectReference {
                object: object("user", subject),
                optional_relation: String::new(),
            }),
            ..Default::default()
        }
    }

    /// `message` framed: flag, length, bytes.
    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut frame = vec![flag];
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    fn message(request: &pb::CheckPermissionRequest) -> Vec<u8> {
        framed(0, &request.encode_to_vec())
    }

    /// One request of the table: what it changes from a good call, and whether the
    /// direct path answers it (else it goes to the stack).
    struct Case {
        name: &'static str,
        path: &'static str,
        method: Method,
        headers: Vec<(&'static str, String)>,
        /// The body's frames: data, then trailers if given.
        data: Vec<Vec<u8>>,
        trailers: Option<HeaderMap>,
        direct: bool,
    }

    fn case(name: &'static str, body: Vec<u8>, direct: bool) -> Case {
        Case {
            name,
            path: CHECK_PATH,
            method: Method::POST,
            headers: vec![
                ("content-type", "application/grpc".to_string()),
                ("te", "trailers".to_string()),
                ("authorization", format!("Bearer {KEY}")),
            ],
            data: vec![body],
            trailers: None,
            direct,
        }
    }

    impl Case {
        fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.retain(|(n, _)| *n != name);
            self.headers.push((name, value.to_string()));
            self
        }

        fn without(mut self, name: &str) -> Self {
            self.headers.retain(|(n, _)| *n != name);
            self
        }

        fn request(&self) -> http::Request<Incoming> {
            let mut builder = http::Request::builder()
                .method(self.method.clone())
                .uri(format!("http://localhost{}", self.path))
                .version(http::Version::HTTP_2);
            for (name, value) in &self.headers {
                builder = builder.header(*name, value);
            }
            let mut frames: Vec<Result<Frame<Bytes>, Status>> = self
                .data
                .iter()
                .map(|data| Ok(Frame::data(Bytes::from(data.clone()))))
                .collect();
            if let Some(trailers) = &self.trailers {
                frames.push(Ok(Frame::trailers(trailers.clone())));
            }
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            builder.body(tonic::body::Body::new(body)).unwrap()
        }
    }

    fn cases() -> Vec<Case> {
        let good = message(&check("a", "alice"));
        let mut unknown_field = check("a", "alice").encode_to_vec();
        // Field 99, varint 1: prost skips it, as protobuf requires.
        unknown_field.extend_from_slice(&[0x98, 0x06, 0x01]);
        let mut unknown_type = check("a", "alice");
        unknown_type.resource = object("folder", "a");
        let mut with_context = check("a", "alice");
        with_context.context = Some(prost_types::Struct {
            fields: [(
                "ip".to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("1.2.3.4".to_string())),
                },
            )]
            .into_iter()
            .collect(),
        });
        let mut empty_context = check("a", "alice");
        empty_context.context = Some(prost_types::Struct::default());
        let mut bad_token = check("a", "alice");
        bad_token.consistency = Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::AtExactSnapshot(
                pb::ZedToken {
                    token: "not a token".to_string(),
                },
            )),
        });
        let mut fully = check("a", "alice");
        fully.consistency = Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
        });
        let mut userset = check("a", "alice");
        if let Some(subject) = userset.subject.as_mut() {
            subject.optional_relation = "member".to_string();
        }
        let mut no_subject = check("a", "alice");
        no_subject.subject = None;
        let mut split = case("split across two data frames", Vec::new(), true);
        split.data = vec![
            good.get(..3).unwrap().to_vec(),
            good.get(3..).unwrap().to_vec(),
        ];
        let mut with_trailers = case("with request trailers", good.clone(), true);
        let mut trailers = HeaderMap::new();
        trailers.insert("x-trailer", HeaderValue::from_static("1"));
        with_trailers.trailers = Some(trailers);
        let mut two_frames_two_messages = case("two messages in two frames", good.clone(), false);
        two_frames_two_messages.data.push(good.clone());
        let mut get = case("GET", good.clone(), false);
        get.method = Method::GET;
        let mut other_path = case("another method", good.clone(), false);
        other_path.path = "/authzed.api.v1.PermissionsService/CheckBulkPermissions";
        vec![
            case("good, allowed", good.clone(), true),
            case("good, denied", message(&check("a", "bob")), true),
            case("no key", good.clone(), true).without("authorization"),
            case("wrong key", good.clone(), true).header("authorization", "Bearer nope"),
            case("not a bearer key", good.clone(), true)
                .header("authorization", &format!("Basic {KEY}")),
            case("empty bearer key", good.clone(), true).header("authorization", "Bearer  "),
            case("lowercase bearer", good.clone(), true)
                .header("authorization", &format!("bearer {KEY}")),
            case("empty body", Vec::new(), false),
            case("part of a prefix", vec![0, 0], false),
            case(
                "cut short",
                good.get(..good.len() - 2).unwrap().to_vec(),
                false,
            ),
            case("empty message", framed(0, &[]), true),
            case("broken protobuf", framed(0, &[0xff, 0xff, 0xff]), true),
            case(
                "invalid utf-8",
                {
                    let mut bytes = check("a", "alice").encode_to_vec();
                    let at = bytes.iter().position(|b| *b == b'a').unwrap();
                    bytes[at] = 0xff;
                    framed(0, &bytes)
                },
                true,
            ),
            case("unknown field", framed(0, &unknown_field), true),
            case("bad id", message(&check("al ice", "alice")), true),
            case(
                "bad id with # and %",
                message(&check("a#b%c", "alice")),
                true,
            ),
            case("unknown type", message(&unknown_type), true),
            case("context given", message(&with_context), true),
            case("empty context", message(&empty_context), true),
            case("bad consistency token", message(&bad_token), true),
            case("fully consistent", message(&fully), true),
            case("userset subject", message(&userset), true),
            case("no subject", message(&no_subject), true),
            case(
                "over the size limit",
                message(&check(&"x".repeat(LIMIT), "alice")),
                true,
            ),
            case(
                "over the size limit, prefix only",
                framed(0, &vec![0; LIMIT + 1])
                    .get(..PREFIX)
                    .unwrap()
                    .to_vec(),
                true,
            ),
            case(
                "compressed",
                framed(1, &check("a", "alice").encode_to_vec()),
                false,
            ),
            case(
                "invalid flag",
                framed(2, &check("a", "alice").encode_to_vec()),
                false,
            ),
            case("two messages", [good.clone(), good.clone()].concat(), false),
            two_frames_two_messages,
            case("trailing garbage", [good.clone(), vec![0]].concat(), false),
            split,
            with_trailers,
            case("content-type json", good.clone(), false)
                .header("content-type", "application/json"),
            case("no content-type", good.clone(), false).without("content-type"),
            case("content-type grpc+proto", good.clone(), true)
                .header("content-type", "application/grpc+proto"),
            case("gzip", good.clone(), false).header("grpc-encoding", "gzip"),
            case("identity", good.clone(), true).header("grpc-encoding", "identity"),
            get,
            other_path,
        ]
    }

    /// An answer as the client sees it: status, headers, body bytes, trailers.
    #[derive(Debug, PartialEq)]
    struct Seen {
        status: http::StatusCode,
        headers: HeaderMap,
        body: Bytes,
        trailers: Option<HeaderMap>,
    }

    async fn seen<B>(response: http::Response<B>) -> Seen
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.unwrap();
        Seen {
            status: parts.status,
            headers: parts.headers,
            trailers: collected.trailers().cloned(),
            body: collected.to_bytes(),
        }
    }

    #[tokio::test]
    async fn the_direct_check_answers_as_tonic_does() {
        let engine = engine();
        let (plain_state, direct_state) = (state(engine.clone()), state(engine));
        let plain = stack(&plain_state).await;
        let direct = Layer(direct_state.clone()).layer(stack(&direct_state).await);
        let mut codes = HashMap::new();
        for case in cases() {
            let routed = seen(plain.clone().oneshot(case.request()).await.unwrap()).await;
            let answer = direct.clone().oneshot(case.request()).await.unwrap();
            let answered_here = matches!(answer.body(), http_body_util::Either::Left(_));
            assert_eq!(answered_here, case.direct, "{}: answered here", case.name);
            let answer = seen(answer).await;
            assert_eq!(answer, routed, "{}", case.name);
            let code = routed
                .headers
                .get("grpc-status")
                .or_else(|| routed.trailers.as_ref()?.get("grpc-status"))
                .map(|code| code.to_str().unwrap().to_string());
            codes.insert(case.name, code);
        }
        // The table reaches what it means to: each kind of answer the direct path gives.
        for (name, code) in [
            ("good, allowed", "0"),
            ("no key", "16"),
            ("wrong key", "7"),
            ("broken protobuf", "13"),
            ("bad id", "3"),
            ("unknown type", "9"),
            ("context given", "12"),
            ("over the size limit", "8"),
            ("compressed", "13"),
        ] {
            assert_eq!(codes[name].as_deref(), Some(code), "{name}");
        }
    }

    #[tokio::test]
    async fn an_allowed_check_is_one_message_then_status_trailers() {
        let state = state(engine());
        let direct = Layer(state.clone()).layer(stack(&state).await);
        let answer = direct
            .oneshot(case("good", message(&check("a", "alice")), true).request())
            .await
            .unwrap();
        let answer = seen(answer).await;
        assert_eq!(answer.headers.len(), 1, "{:?}", answer.headers);
        assert_eq!(answer.headers["content-type"], "application/grpc");
        let trailers = answer.trailers.unwrap();
        assert_eq!(trailers.len(), 1, "{trailers:?}");
        assert_eq!(trailers["grpc-status"], "0");
        let decoded =
            pb::CheckPermissionResponse::decode(answer.body.get(PREFIX..).unwrap()).unwrap();
        assert_eq!(
            decoded.permissionship,
            pb::check_permission_response::Permissionship::HasPermission as i32
        );
        assert!(decoded.checked_at.is_some());
    }

    /// The gRPC lines of `/metrics`, durations left out (they differ run to run) but
    /// their counts kept.
    /// Sorted: a family's label sets render in no fixed order.
    fn grpc_lines(state: &AppState) -> Vec<String> {
        let text = state.metrics.render(0, 0).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with("pemba_grpc_"))
            .filter(|line| {
                !line.starts_with("pemba_grpc_request_duration_seconds_bucket")
                    && !line.starts_with("pemba_grpc_request_duration_seconds_sum")
            })
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn the_direct_check_counts_as_the_metrics_layer_does() {
        let engine = engine();
        let (plain_state, direct_state) = (state(engine.clone()), state(engine));
        let plain = stack(&plain_state).await;
        let direct = Layer(direct_state.clone()).layer(stack(&direct_state).await);
        for case in cases() {
            seen(plain.clone().oneshot(case.request()).await.unwrap()).await;
            seen(direct.clone().oneshot(case.request()).await.unwrap()).await;
        }
        // A client that leaves once the answer's headers are in: its body is dropped
        // before the trailers.
        for _ in 0..2 {
            let good = case("cancelled", message(&check("a", "alice")), true);
            drop(plain.clone().oneshot(good.request()).await.unwrap());
            let answer = direct.clone().oneshot(good.request()).await.unwrap();
            assert!(matches!(answer.body(), http_body_util::Either::Left(_)));
            drop(answer);
        }
        let (routed, answered) = (grpc_lines(&plain_state), grpc_lines(&direct_state));
        assert_eq!(answered, routed);
        for line in [
            "pemba_grpc_requests_total{method=\"/authzed.api.v1.PermissionsService/CheckPermission\",code=\"CANCELLED\"} 2",
            "pemba_grpc_requests_total{method=\"/authzed.api.v1.PermissionsService/CheckPermission\",code=\"RESOURCE_EXHAUSTED\"} 2",
            "pemba_grpc_requests_total{method=\"/authzed.api.v1.PermissionsService/CheckPermission\",code=\"UNAUTHENTICATED\"} 3",
        ] {
            assert!(answered.iter().any(|l| l == line), "{line} not in {answered:#?}");
        }
        let count = answered
            .iter()
            .find(|l| {
                l.starts_with("pemba_grpc_request_duration_seconds_count")
                    && l.contains("CheckPermission")
            })
            .unwrap();
        let total: usize = cases().iter().filter(|c| c.path == CHECK_PATH).count() + 2;
        assert!(count.ends_with(&format!(" {total}")), "{count}");
    }
}
