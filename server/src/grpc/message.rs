//! `grpc-message` percent-encoded as grpc-go (and so SpiceDB) encodes it: only bytes outside
//! printable ASCII, and `%`. tonic also encodes ` "#<>`?{}`, which the gRPC spec allows,
//! but `@grpc/grpc-js` (the official Node client's transport) decodes the message with
//! JavaScript's `decodeURI`, which leaves `%23` and `%3F` as they are: a Node client would
//! read `doc:d%23viewer@user:u` for `doc:d#viewer@user:u` in every refusal naming a
//! relationship. Applied to a trailers-only answer's headers and to a stream's trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderMap;
use http_body::{Body, Frame};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, CONTROLS};

/// grpc-go's set: every byte outside 0x20..=0x7E (`percent_encode` always encodes bytes
/// from 0x80 on) and `%`.
const GRPC_GO: &AsciiSet = &CONTROLS.add(b'%');

/// Re-encodes `headers`' `grpc-message`, if any, with [`GRPC_GO`]'s set.
pub(super) fn reencode(headers: &mut HeaderMap) {
    let Some(message) = headers.get("grpc-message") else {
        return;
    };
    let decoded: Vec<u8> = percent_decode(message.as_bytes()).collect();
    let encoded = percent_encode(&decoded, GRPC_GO).to_string();
    // Always a valid header value: printable ASCII only.
    if let Ok(value) = http::HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
}

/// The tower layer that re-encodes every answer's `grpc-message`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layer;

impl<S> tower::Layer<S> for Layer {
    type Service = Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Service { inner }
    }
}

/// [`Layer`]'s service.
#[derive(Clone, Debug)]
pub struct Service<S> {
    inner: S,
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
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut response = call.await?;
            if response.headers().contains_key("grpc-status") {
                // Trailers-only: its status is all there is.
                reencode(response.headers_mut());
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(Trailers { inner: body })))
        })
    }
}

/// A response body whose trailers get [`reencode`]d as they pass.
struct Trailers {
    inner: tonic::body::Body,
}

impl Body for Trailers {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.get_mut().inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    reencode(&mut trailers);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unprintable_bytes_and_percent_stay_encoded() {
        let mut headers = HeaderMap::new();
        // What tonic sends for "`doc:d#viewer@user:u` is 100% ünknown?".
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "%60doc:d%23viewer@user:u%60%20is%20100%25%20%C3%BCnknown%3F",
            ),
        );
        reencode(&mut headers);
        assert_eq!(
            headers.get("grpc-message").map(|v| v.as_bytes()),
            Some(&b"`doc:d#viewer@user:u` is 100%25 %C3%BCnknown?"[..])
        );
    }
}
