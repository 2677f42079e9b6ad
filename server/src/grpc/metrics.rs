//! Per-method gRPC metrics in `/metrics`, beside the HTTP ones: `pemba_grpc_requests_total`
//! by method and status code, counted when a call ends (its trailers, or a trailers-only
//! refusal), and `pemba_grpc_request_duration_seconds` by method, to response headers as
//! HTTP's is. A call whose client left before its status was sent counts as `CANCELLED`.
//!
//! The method label is one of the served paths or `unmatched`, so a client inventing
//! paths cannot grow the label set.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};

use crate::metrics::Metrics;

/// Every path served, as the method label.
const METHODS: &[&str] = &[
    "/authzed.api.v1.PermissionsService/CheckPermission",
    "/authzed.api.v1.PermissionsService/CheckBulkPermissions",
    "/authzed.api.v1.PermissionsService/ExpandPermissionTree",
    "/authzed.api.v1.PermissionsService/LookupResources",
    "/authzed.api.v1.PermissionsService/LookupSubjects",
    "/authzed.api.v1.PermissionsService/ReadRelationships",
    "/authzed.api.v1.PermissionsService/WriteRelationships",
    "/authzed.api.v1.PermissionsService/DeleteRelationships",
    "/authzed.api.v1.PermissionsService/ImportBulkRelationships",
    "/authzed.api.v1.PermissionsService/ExportBulkRelationships",
    "/authzed.api.v1.SchemaService/ReadSchema",
    "/authzed.api.v1.SchemaService/WriteSchema",
    "/authzed.api.v1.WatchService/Watch",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

fn method_label(path: &str) -> &'static str {
    METHODS
        .iter()
        .copied()
        .find(|served| *served == path)
        .unwrap_or("unmatched")
}

/// The name of a `grpc-status` value, as grpc-go and Prometheus' grpc middleware print it.
pub(super) fn code_name(value: &[u8]) -> &'static str {
    let code = std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .map_or(tonic::Code::Unknown, tonic::Code::from_i32);
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The tower layer tonic's server runs every call through.
#[derive(Clone)]
pub struct Layer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for Layer {
    type Service = Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Service {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// [`Layer`]'s service: times the call and wraps its body to see the status.
#[derive(Clone)]
pub struct Service<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for Service<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            metrics.record_grpc_latency(method, started.elapsed().as_secs_f64());
            // A trailers-only answer (a refusal before any message) has its status here.
            let status = response
                .headers()
                .get("grpc-status")
                .map(|value| code_name(value.as_bytes()));
            if let Some(code) = status {
                metrics.record_grpc_call(method, code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(Counted {
                    inner: body,
                    call: Some((metrics, method)),
                })
            }))
        })
    }
}

/// A response body that records its call when its trailers pass, or as `CANCELLED` when
/// it is dropped before them.
struct Counted {
    inner: tonic::body::Body,
    /// Taken once the call is recorded.
    call: Option<(Arc<Metrics>, &'static str)>,
}

impl Body for Counted {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(trailers) = frame.trailers_ref() {
                if let Some((metrics, method)) = this.call.take() {
                    let code = trailers
                        .get("grpc-status")
                        .map_or("UNKNOWN", |value| code_name(value.as_bytes()));
                    metrics.record_grpc_call(method, code);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some((metrics, method)) = self.call.take() {
            metrics.record_grpc_call(method, "CANCELLED");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_codes_named() {
        assert_eq!(
            method_label("/authzed.api.v1.PermissionsService/CheckPermission"),
            "/authzed.api.v1.PermissionsService/CheckPermission"
        );
        assert_eq!(
            method_label("/authzed.api.v1.PermissionsService/Invented"),
            "unmatched"
        );
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"9"), "FAILED_PRECONDITION");
        assert_eq!(code_name(b"x"), "UNKNOWN");
    }
}
