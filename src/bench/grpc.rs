//! The gRPC load generator's bulk path: CheckBulkPermissions sent as protobuf messages
//! assembled from items encoded once per workload check, over the h2 crate (the HTTP/2
//! that hyper and tonic run on), with answers decoded by prost into just the fields the
//! verification reads.
//!
//! Why not tonic's client, as for single checks, lookups and writes: on this 2-core
//! machine the load generator's CPU is taken from the server it measures, and building 100
//! owned request items and decoding 100 pairs with their echoed requests cost the load
//! generator about 1.3 µs per bulk item, most of what the server spends on one. The HTTP
//! runs send pre-serialized JSON; this sends pre-encoded protobuf, the same bytes a tonic
//! client sends. Every answer is still read to its trailers and, with `--verify`, judged.
//!
//! Single checks were sent this way too, and given up (BENCHMARKS.md, "gRPC client and
//! bulk path"): the load generator spent less per check, but each stream's frames reached
//! the server in smaller batches than hyper's connection task writes them, and the server
//! spent 3–4 µs more per check on the extra reads, writes and wake-ups.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, TE};
use hyper::{Method, Request, StatusCode, Uri};
use prost::Message as _;
use spicedb_rs_proto::authzed::api::v1 as pb;

use crate::workload::ExpectedCheck;

/// The RPC of the bulk path.
pub(super) const BULK_PATH: &str = "/authzed.api.v1.PermissionsService/CheckBulkPermissions";

/// gRPC's message prefix: a compression flag byte and a big-endian length.
const PREFIX_LEN: usize = 5;

/// The workload's checks encoded once, as the bulk requests' parts.
pub(super) struct Encoded {
    /// A CheckBulkPermissionsRequest without items: its `consistency` field.
    bulk_head: Vec<u8>,
    /// Every check as a CheckBulkPermissionsRequest `items` field (tag, length, item),
    /// in workload order, then again from the start for as many as one request has, so
    /// that any run of consecutive items wrapping past the end is one slice.
    bulk_items: Vec<u8>,
    /// Where item `i` of [`Encoded::bulk_items`] starts; one more entry, its end.
    bulk_offsets: Vec<usize>,
}

impl Encoded {
    /// Encodes every check of `checks` as an item of bulk requests of `bulk` items.
    pub(super) fn new(checks: &[ExpectedCheck], bulk: usize) -> Self {
        let bulk_head = pb::CheckBulkPermissionsRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
            }),
            items: Vec::new(),
            with_tracing: false,
        }
        .encode_to_vec();
        let mut bulk_items = Vec::new();
        let mut bulk_offsets = Vec::new();
        if !checks.is_empty() {
            for check in checks.iter().cycle().take(checks.len() + bulk) {
                bulk_offsets.push(bulk_items.len());
                prost::encoding::message::encode(2, &item(check), &mut bulk_items);
            }
            bulk_offsets.push(bulk_items.len());
        }
        Encoded {
            bulk_head,
            bulk_items,
            bulk_offsets,
        }
    }

    /// The CheckBulkPermissions frame asking `n` checks from `at` on, wrapping around the
    /// end; empty when [`Encoded::new`] was not told of requests that large.
    pub(super) fn bulk(&self, at: usize, n: usize) -> Bytes {
        let items = self
            .bulk_offsets
            .get(at)
            .zip(self.bulk_offsets.get(at + n))
            .and_then(|(&start, &end)| self.bulk_items.get(start..end))
            .unwrap_or_default();
        frame(&[&self.bulk_head, items])
    }
}

/// A check as a bulk request item.
fn item(check: &ExpectedCheck) -> pb::CheckBulkPermissionsRequestItem {
    let object = |text: &str| {
        let (object_type, object_id) = text.split_once(':').unwrap_or((text, ""));
        pb::ObjectReference {
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
        }
    };
    pb::CheckBulkPermissionsRequestItem {
        resource: Some(object(&check.resource)),
        permission: check.permission.clone(),
        subject: Some(pb::SubjectReference {
            object: Some(object(&check.subject)),
            optional_relation: String::new(),
        }),
        context: None,
    }
}

/// `parts`, concatenated, as one uncompressed gRPC message.
fn frame(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut out = Vec::with_capacity(PREFIX_LEN + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    for part in parts {
        out.extend_from_slice(part);
    }
    Bytes::from(out)
}

/// CheckBulkPermissionsResponse, only its pairs (prost skips the other fields).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct BulkAnswer {
    /// `pairs`, field 2.
    #[prost(message, repeated, tag = "2")]
    pub pairs: Vec<BulkPair>,
}

/// CheckBulkPermissionsPair without its echoed `request` (field 1).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct BulkPair {
    /// The `response` oneof.
    #[prost(oneof = "BulkResponse", tags = "2, 3")]
    pub response: Option<BulkResponse>,
}

/// CheckBulkPermissionsPair's `response` oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum BulkResponse {
    /// `item`, field 2: a CheckBulkPermissionsResponseItem.
    #[prost(message, tag = "2")]
    Item(CheckAnswerItem),
    /// `error`, field 3: a google.rpc.Status.
    #[prost(message, tag = "3")]
    Error(ErrorStatus),
}

/// CheckBulkPermissionsResponseItem, only `permissionship` (field 1).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct CheckAnswerItem {
    /// `permissionship`, field 1.
    #[prost(int32, tag = "1")]
    pub permissionship: i32,
}

/// google.rpc.Status without its details.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ErrorStatus {
    /// `code`, field 1.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// `message`, field 2.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// One HTTP/2 connection's handle, shared by the workers on it.
pub(super) type Sender = h2::client::SendRequest<Bytes>;

/// Opens an HTTP/2 connection to `addr` with hyper's client windows (5 MB for the
/// connection, 2 MB per stream, as the tonic channel had), its driver on a task of its own.
pub(super) async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = h2::client::Builder::new()
        .initial_connection_window_size(5 << 20)
        .initial_window_size(2 << 20)
        .handshake(stream)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one unary call of `uri` with `frame` as its message and returns the answer's
/// message, or the call's status: from a trailers-only answer, the trailers, or (as
/// `UNAVAILABLE` or `INTERNAL`) what broke on the way.
///
/// The call is driven by the caller's task, with no task or channel of its own: this is
/// what the h2 crate under hyper and tonic does per stream, without their per-request
/// spawn and dispatch. `connection` is opened to `addr` when empty, and emptied when the
/// connection is lost, so the next call opens a new one.
pub(super) async fn unary<M: prost::Message + Default>(
    connection: &mut Option<Sender>,
    addr: SocketAddr,
    uri: &Uri,
    auth: &HeaderValue,
    frame: Bytes,
) -> Result<M, tonic::Status> {
    let sender = match connection {
        Some(sender) => sender,
        None => connection.insert(connect(addr).await.map_err(tonic::Status::unavailable)?),
    };
    let answer = call(sender, uri, auth, frame).await;
    if let Err(Failure::Lost(_)) = &answer {
        *connection = None;
    }
    match answer {
        Ok(bytes) => {
            let payload = message(&bytes).ok_or_else(|| {
                tonic::Status::internal("the answer is not one uncompressed message")
            })?;
            M::decode(payload)
                .map_err(|e| tonic::Status::internal(format!("undecodable answer: {e}")))
        }
        Err(Failure::Lost(error)) => Err(tonic::Status::unavailable(format!(
            "connection lost: {error}"
        ))),
        Err(Failure::Status(status)) => Err(status),
    }
}

/// Why a call has no message.
enum Failure {
    /// The connection broke (or refused the stream): open a new one.
    Lost(h2::Error),
    /// The server answered with this status.
    Status(tonic::Status),
}

/// One call on `sender`: its answer's body, or why there is none.
async fn call(
    sender: &mut Sender,
    uri: &Uri,
    auth: &HeaderValue,
    frame: Bytes,
) -> Result<Bytes, Failure> {
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(Failure::Lost)?;
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(AUTHORIZATION, auth.clone());
    let (response, mut body) = sender.send_request(request, false).map_err(Failure::Lost)?;
    body.send_data(frame, true).map_err(Failure::Lost)?;
    let (head, mut body) = response.await.map_err(Failure::Lost)?.into_parts();
    if head.status != StatusCode::OK {
        return Err(Failure::Status(tonic::Status::internal(format!(
            "http status {} to a gRPC call",
            head.status.as_u16()
        ))));
    }
    if let Some(status) = tonic::Status::from_header_map(&head.headers) {
        // Trailers-only: the call ended before any message.
        return Err(Failure::Status(if status.code() == tonic::Code::Ok {
            tonic::Status::internal("no message in an OK answer")
        } else {
            status
        }));
    }
    // Nearly always one DATA frame; more are joined.
    let mut bytes = Bytes::new();
    let mut joined = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(Failure::Lost)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if bytes.is_empty() && joined.is_empty() {
            bytes = chunk;
        } else {
            if joined.is_empty() {
                joined.extend_from_slice(&bytes);
            }
            joined.extend_from_slice(&chunk);
        }
    }
    let trailers = body.trailers().await.map_err(Failure::Lost)?;
    let status = trailers
        .as_ref()
        .and_then(tonic::Status::from_header_map)
        .ok_or_else(|| {
            Failure::Status(tonic::Status::internal(
                "the answer has no `grpc-status` trailer",
            ))
        })?;
    if status.code() != tonic::Code::Ok {
        return Err(Failure::Status(status));
    }
    Ok(if joined.is_empty() {
        bytes
    } else {
        Bytes::from(joined)
    })
}

/// The one uncompressed message `body` holds, without its prefix.
fn message(body: &[u8]) -> Option<&[u8]> {
    let (prefix, rest) = body.split_at_checked(PREFIX_LEN)?;
    let (&compressed, len) = prefix.split_first()?;
    let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
    (compressed == 0 && rest.len() == len).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(n: usize) -> Vec<ExpectedCheck> {
        (0..n)
            .map(|i| ExpectedCheck {
                resource: format!("connection:c{i}"),
                permission: "use".into(),
                subject: format!("user:u{i}"),
                allowed: i % 2 == 0,
            })
            .collect()
    }

    fn unframe(frame: &[u8]) -> &[u8] {
        message(frame).expect("one uncompressed message")
    }

    fn bulk_items_of(encoded: &Encoded, at: usize) -> Vec<pb::CheckBulkPermissionsRequestItem> {
        pb::CheckBulkPermissionsRequest::decode(unframe(&encoded.bulk(at, 1)))
            .unwrap()
            .items
    }

    #[test]
    fn requests_are_the_messages_tonic_would_send() {
        let checks = checks(3);
        let encoded = Encoded::new(&checks, 5);
        // Five items from the last on wrap around: 2, 0, 1, 2, 0.
        let bulk = pb::CheckBulkPermissionsRequest::decode(unframe(&encoded.bulk(2, 5))).unwrap();
        let ids: Vec<String> = bulk
            .items
            .into_iter()
            .map(|item| item.resource.unwrap().object_id)
            .collect();
        assert_eq!(ids, ["c2", "c0", "c1", "c2", "c0"]);
        let first = &bulk_items_of(&encoded, 1)[0];
        assert_eq!(
            first
                .subject
                .as_ref()
                .unwrap()
                .object
                .as_ref()
                .unwrap()
                .object_id,
            "u1"
        );
        assert_eq!(first.permission, "use");
        assert!(bulk.consistency.is_some());
    }

    #[test]
    fn answers_decode_as_the_full_messages_do() {
        use pb::check_bulk_permissions_pair::Response;
        let full = pb::CheckBulkPermissionsResponse {
            checked_at: Some(pb::ZedToken {
                token: "pb1.2".into(),
            }),
            pairs: vec![
                pb::CheckBulkPermissionsPair {
                    request: Some(item(&checks(1)[0])),
                    response: Some(Response::Item(pb::CheckBulkPermissionsResponseItem {
                        permissionship: 2,
                        ..Default::default()
                    })),
                },
                pb::CheckBulkPermissionsPair {
                    request: None,
                    response: Some(Response::Error(spicedb_rs_proto::google::rpc::Status {
                        code: 9,
                        message: "unknown".into(),
                        details: Vec::new(),
                    })),
                },
            ],
        };
        let slim = BulkAnswer::decode(&full.encode_to_vec()[..]).unwrap();
        assert_eq!(
            slim.pairs,
            [
                BulkPair {
                    response: Some(BulkResponse::Item(CheckAnswerItem { permissionship: 2 }))
                },
                BulkPair {
                    response: Some(BulkResponse::Error(ErrorStatus {
                        code: 9,
                        message: "unknown".into()
                    }))
                },
            ]
        );
    }

    #[test]
    fn only_one_uncompressed_message_is_read() {
        assert_eq!(message(&[0, 0, 0, 0, 2, 8, 1]), Some(&[8, 1][..]));
        assert_eq!(message(&[1, 0, 0, 0, 2, 8, 1]), None);
        assert_eq!(message(&[0, 0, 0, 0, 3, 8, 1]), None);
        assert_eq!(message(&[0, 0, 0]), None);
    }
}
