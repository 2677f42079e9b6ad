//! The ceiling for `pemba bench` over HTTP: a hyper server on the same runtime setup as
//! `pemba serve` (tokio's multi-threaded runtime, one task per connection, TCP_NODELAY,
//! HTTP/1.1 keep-alive, and HTTP/2 cleartext by prior knowledge through hyper-util's auto
//! builder) that reads each request's body and answers one fixed check response. No
//! routing, auth, JSON, engine, metrics or logging: what is left is the load generator,
//! the kernel's loopback TCP and hyper, which Pemba's server also pays.
//!
//! Usage: `pemba-ceiling ADDR` (e.g. `127.0.0.1:0`); prints `listening on http://ADDR`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// What `POST /v1/permissions/check` answers, byte for byte the shape Pemba sends.
const ANSWER: &[u8] =
    br#"{"checkedAt":{"token":"GhUKEzE3NjQ3MDAwMDAwMDAwMDAwMDA="},"permissionship":"PERMISSIONSHIP_HAS_PERMISSION"}"#;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body, as a real server must before it can answer.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(ANSWER)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
