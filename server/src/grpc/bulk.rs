//! CheckBulkPermissions' request read in place and its answer written without building
//! messages: the request is tonic's received buffer ([`BulkRequest`]), which [`read`]
//! turns into borrowed item views, checking each string's UTF-8 once; the answer
//! ([`BulkResponse`]) is encoded straight from the engine's results by [`answer`], each
//! pair's `request` being the item's bytes as received.
//!
//! Decoded into `spicedb-rs-proto`'s types, a bulk check of 100 items allocated 400
//! strings, copied them, and freed them after the answer echoed each item back. Read as
//! [`Bytes`] slices (the previous step), each string still cost an atomic increment and
//! decrement, and a second UTF-8 check when the handler viewed it: together about a tenth
//! of the server's CPU per item in a profile. Here an item costs neither.
//!
//! What the request means must be what prost reads. [`read`] takes the fast path only for
//! the plain shape a client sends (each known field once, with its wire type, strings
//! UTF-8, no unknown fields, no `context`); anything else is decoded by prost with
//! `spicedb-rs-proto`'s type, whose refusal (word for word, as tonic answers it:
//! `INTERNAL`) is the one given, and whose canonical re-encoding is then read instead.
//! Field order is free on the fast path, since prost's reading does not depend on it; an
//! echoed item keeps the client's order, which any protobuf reader reads the same.

use bytes::{Buf as _, BufMut as _, Bytes};
use prost::encoding::{self, WireType};
use prost::Message as _;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// `CheckBulkPermissionsRequest` as received: its encoding, a slice of tonic's receive
/// buffer, read by [`read`] in the handler.
#[derive(Clone, Debug, Default)]
pub struct BulkRequest(pub Bytes);

/// `CheckBulkPermissionsResponse`, encoded by [`answer`].
#[derive(Clone, Debug, Default)]
pub struct BulkResponse(pub Vec<u8>);

/// A request read by [`read`], its strings borrowed from the bytes read.
#[derive(Clone, Debug)]
pub struct Read<'a> {
    /// `consistency`, if given.
    pub consistency: Option<pb::Consistency>,
    /// `items`, in order.
    pub items: Vec<ReadItem<'a>>,
    /// `with_tracing`.
    pub with_tracing: bool,
}

/// One item of a [`Read`] request.
#[derive(Clone, Debug)]
pub struct ReadItem<'a> {
    /// The item's encoding, echoed as its pair's `request`.
    pub encoded: &'a [u8],
    /// Its strings.
    pub view: ItemView<'a>,
    /// `context`, if given.
    pub context: Option<prost_types::Struct>,
}

/// An object reference's two names, as text.
#[derive(Clone, Copy, Debug)]
pub struct ObjectView<'a> {
    /// `object_type`.
    pub object_type: &'a str,
    /// `object_id`.
    pub object_id: &'a str,
}

/// A bulk item's strings as text, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct ItemView<'a> {
    /// `resource`, if given.
    pub resource: Option<ObjectView<'a>>,
    /// `permission`.
    pub permission: &'a str,
    /// `subject.object`, if given.
    pub subject_object: Option<ObjectView<'a>>,
    /// Whether `subject` was given at all.
    pub has_subject: bool,
    /// `subject.optional_relation`.
    pub subject_relation: &'a str,
}

impl ObjectView<'_> {
    /// The owned message, for the conversions that word a refusal.
    pub fn to_message(self) -> pb::ObjectReference {
        pb::ObjectReference {
            object_type: self.object_type.to_string(),
            object_id: self.object_id.to_string(),
        }
    }
}

/// Reads a CheckBulkPermissionsRequest as `spicedb-rs-proto`'s type reads it, or refuses it
/// with the status tonic's prost codec gives. `canonical` holds prost's re-encoding when
/// the fast path does not stand, so that the items can borrow from it.
pub fn read<'a>(message: &'a [u8], canonical: &'a mut Vec<u8>) -> Result<Read<'a>, Status> {
    if let Some(read) = request(message, Contexts::Refuse) {
        return Ok(read);
    }
    // tonic-prost's words for a message prost refuses.
    let full = pb::CheckBulkPermissionsRequest::decode(message)
        .map_err(|error| Status::internal(error.to_string()))?;
    *canonical = full.encode_to_vec();
    let canonical: &'a Vec<u8> = canonical;
    request(canonical, Contexts::Decode)
        .ok_or_else(|| Status::internal("a bulk check request prost read could not be read again"))
}

/// Whether [`request`] decodes an item's `context` or leaves the whole request to prost.
/// Only a request prost has already read is given [`Contexts::Decode`]: a `Struct` decoded
/// on its own starts prost's nesting limit afresh, so it could accept one nested too deep
/// for the whole message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Contexts {
    Refuse,
    Decode,
}

/// The fast path: `None` for anything but the plain shape (see the module's notes).
fn request(mut buf: &[u8], contexts: Contexts) -> Option<Read<'_>> {
    let mut consistency = None;
    let mut items = Vec::new();
    let mut with_tracing = None;
    while !buf.is_empty() {
        let (tag, wire_type) = encoding::decode_key(&mut buf).ok()?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) if consistency.is_none() => {
                let field = delimited(&mut buf)?;
                let read = pb::Consistency::decode(field).ok()?;
                // Re-encoding in fewer bytes means prost dropped something (an unknown
                // field, an overwritten oneof): leave that to the slow path.
                if read.encoded_len() != field.len() {
                    return None;
                }
                consistency = Some(read);
            }
            (2, WireType::LengthDelimited) => items.push(item(delimited(&mut buf)?, contexts)?),
            (3, WireType::Varint) if with_tracing.is_none() => {
                with_tracing = Some(encoding::decode_varint(&mut buf).ok()? != 0);
            }
            _ => return None,
        }
    }
    Some(Read {
        consistency,
        items,
        with_tracing: with_tracing.unwrap_or(false),
    })
}

/// A length-delimited field's bytes, `buf` moved past them. Most lengths are one byte,
/// read here; longer ones by prost.
fn delimited<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = match buf.split_first() {
        Some((&len, rest)) if len < 0x80 => {
            *buf = rest;
            usize::from(len)
        }
        _ => usize::try_from(encoding::decode_varint(buf).ok()?).ok()?,
    };
    let (field, rest) = buf.split_at_checked(len)?;
    *buf = rest;
    Some(field)
}

/// Each field of a message made only of length-delimited fields, by tag, each tag at most
/// once and below 5; `None` otherwise. Keys are read as one byte (tags 1 to 15): any longer
/// key is a larger tag, or an overlong encoding of a small one, which the slow path reads.
fn fields(mut buf: &[u8]) -> Option<[Option<&[u8]>; 5]> {
    let mut found = [None; 5];
    while let Some((&key, rest)) = buf.split_first() {
        if key & 0x80 != 0 || key & 0x07 != WireType::LengthDelimited as u8 {
            return None;
        }
        buf = rest;
        let field = delimited(&mut buf)?;
        // Tag 0 lands in slot 0, which every caller requires empty.
        let slot = found.get_mut(usize::from(key >> 3))?;
        if slot.replace(field).is_some() {
            return None;
        }
    }
    Some(found)
}

/// An item's bytes and, when they are UTF-8 as a whole, the same bytes as text, so that
/// each of its strings is a sub-slice of that text rather than a UTF-8 check of its own: one
/// check per item instead of five. A plain item is UTF-8 as a whole (names in ASCII, keys
/// and lengths below 0x80). The answers are those of checking each string: a part of valid
/// UTF-8 between character boundaries is valid UTF-8, a string that is valid on its own
/// starts and ends on a boundary of a valid whole, and anything else is checked alone.
#[derive(Clone, Copy)]
struct Strings<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> Strings<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Strings {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
        }
    }

    /// `field` (a part of the item's bytes) as text; `""` when absent.
    fn get(self, field: Option<&'a [u8]>) -> Option<&'a str> {
        let Some(field) = field else {
            return Some("");
        };
        let in_whole = self.text.and_then(|text| {
            let start = field
                .as_ptr()
                .addr()
                .checked_sub(self.bytes.as_ptr().addr())?;
            text.get(start..start.checked_add(field.len())?)
        });
        in_whole.or_else(|| std::str::from_utf8(field).ok())
    }
}

/// `ObjectReference`: `object_type` 1, `object_id` 2.
fn object<'a>(strings: Strings<'a>, field: &'a [u8]) -> Option<ObjectView<'a>> {
    let [None, object_type, object_id, None, None] = fields(field)? else {
        return None;
    };
    Some(ObjectView {
        object_type: strings.get(object_type)?,
        object_id: strings.get(object_id)?,
    })
}

/// An optional `ObjectReference`: `Some(None)` when absent, `None` when unreadable.
fn optional_object<'a>(
    strings: Strings<'a>,
    field: Option<&'a [u8]>,
) -> Option<Option<ObjectView<'a>>> {
    match field {
        None => Some(None),
        Some(field) => object(strings, field).map(Some),
    }
}

/// `CheckBulkPermissionsRequestItem`: `resource` 1, `permission` 2, `subject` 3 (a
/// `SubjectReference`: `object` 1, `optional_relation` 2), `context` 4.
fn item(encoded: &[u8], contexts: Contexts) -> Option<ReadItem<'_>> {
    let [None, resource, permission, subject, context] = fields(encoded)? else {
        return None;
    };
    let strings = Strings::new(encoded);
    let (subject_object, subject_relation) = match subject {
        None => (None, ""),
        Some(subject) => {
            let [None, object_field, relation, None, None] = fields(subject)? else {
                return None;
            };
            (
                optional_object(strings, object_field)?,
                strings.get(relation)?,
            )
        }
    };
    let context = match (context, contexts) {
        (None, _) => None,
        (Some(context), Contexts::Decode) => Some(prost_types::Struct::decode(context).ok()?),
        (Some(_), Contexts::Refuse) => return None,
    };
    Some(ReadItem {
        encoded,
        view: ItemView {
            resource: optional_object(strings, resource)?,
            permission: strings.get(permission)?,
            subject_object,
            has_subject: subject.is_some(),
            subject_relation,
        },
        context,
    })
}

impl Read<'_> {
    /// The request as `spicedb-rs-proto`'s message, to compare with prost's reading.
    pub fn to_message(&self) -> pb::CheckBulkPermissionsRequest {
        pb::CheckBulkPermissionsRequest {
            consistency: self.consistency.clone(),
            items: self
                .items
                .iter()
                .map(|item| pb::CheckBulkPermissionsRequestItem {
                    resource: item.view.resource.map(ObjectView::to_message),
                    permission: item.view.permission.to_string(),
                    subject: item.view.has_subject.then(|| pb::SubjectReference {
                        object: item.view.subject_object.map(ObjectView::to_message),
                        optional_relation: item.view.subject_relation.to_string(),
                    }),
                    context: item.context.clone(),
                })
                .collect(),
            with_tracing: self.with_tracing,
        }
    }
}

/// The `response` of one pair: `item` (field 2), a CheckBulkPermissionsResponseItem with
/// only its `permissionship` (field 1), or `error` (field 3). Written field by field because
/// prost's CheckBulkPermissionsResponseItem is 440 bytes to build per item.
enum PairResponse {
    Permissionship(i32),
    Error(spicedb_rs_proto::google::rpc::Status),
}

impl PairResponse {
    fn of(answer: &Result<bool, Status>) -> Self {
        match answer {
            Ok(allowed) => PairResponse::Permissionship(super::convert::permissionship(*allowed)),
            Err(error) => PairResponse::Error(spicedb_rs_proto::google::rpc::Status {
                code: error.code() as i32,
                message: error.message().to_string(),
                details: Vec::new(),
            }),
        }
    }

    /// The item message's length: its one field, left out when zero as prost leaves it.
    fn item_len(permissionship: i32) -> usize {
        if permissionship == 0 {
            0
        } else {
            encoding::int32::encoded_len(1, &permissionship)
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            PairResponse::Permissionship(permissionship) => {
                let len = Self::item_len(*permissionship);
                encoding::key_len(2) + encoding::encoded_len_varint(len as u64) + len
            }
            PairResponse::Error(error) => encoding::message::encoded_len(3, error),
        }
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            PairResponse::Permissionship(permissionship) => {
                encoding::encode_key(2, WireType::LengthDelimited, buf);
                encoding::encode_varint(Self::item_len(*permissionship) as u64, buf);
                if *permissionship != 0 {
                    encoding::int32::encode(1, permissionship, buf);
                }
            }
            PairResponse::Error(error) => encoding::message::encode(3, error, buf),
        }
    }
}

/// The CheckBulkPermissionsResponse for `items` answered by `answers` (one each, in
/// order) at `checked_at`: what prost writes for the same message, with each pair's
/// `request` the item's bytes as read.
pub fn answer(
    checked_at: Option<&pb::ZedToken>,
    items: &[ReadItem<'_>],
    answers: &[Result<bool, Status>],
) -> BulkResponse {
    let mut buf = Vec::with_capacity(
        checked_at.map_or(0, |token| encoding::message::encoded_len(1, token))
            + items
                .iter()
                .map(|item| item.encoded.len() + 16)
                .sum::<usize>(),
    );
    if let Some(token) = checked_at {
        encoding::message::encode(1, token, &mut buf);
    }
    for (item, answer) in items.iter().zip(answers) {
        let response = PairResponse::of(answer);
        let request_len = encoding::key_len(1)
            + encoding::encoded_len_varint(item.encoded.len() as u64)
            + item.encoded.len();
        encoding::encode_key(2, WireType::LengthDelimited, &mut buf);
        encoding::encode_varint((request_len + response.encoded_len()) as u64, &mut buf);
        encoding::encode_key(1, WireType::LengthDelimited, &mut buf);
        encoding::encode_varint(item.encoded.len() as u64, &mut buf);
        buf.extend_from_slice(item.encoded);
        response.encode(&mut buf);
    }
    BulkResponse(buf)
}

/// tonic's codec for CheckBulkPermissions (`build.rs` names it): the request's bytes as
/// they came, the answer's as [`answer`] wrote them.
#[derive(Debug, Default)]
pub struct BulkCodec;

impl Codec for BulkCodec {
    type Encode = BulkResponse;
    type Decode = BulkRequest;
    type Encoder = BulkEncoder;
    type Decoder = BulkDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        BulkEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        BulkDecoder
    }
}

/// [`BulkCodec`]'s decoder: the received message as one [`Bytes`].
#[derive(Debug)]
pub struct BulkDecoder;

impl Decoder for BulkDecoder {
    type Item = BulkRequest;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<BulkRequest>, Status> {
        // A slice of tonic's receive buffer, not a copy.
        Ok(Some(BulkRequest(buf.copy_to_bytes(buf.remaining()))))
    }
}

/// [`BulkCodec`]'s encoder: the encoded answer, copied into tonic's send buffer.
#[derive(Debug)]
pub struct BulkEncoder;

impl Encoder for BulkEncoder {
    type Item = BulkResponse;
    type Error = Status;

    fn encode(&mut self, item: BulkResponse, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn full_item(id: &str) -> pb::CheckBulkPermissionsRequestItem {
        pb::CheckBulkPermissionsRequestItem {
            resource: Some(pb::ObjectReference {
                object_type: "doc".into(),
                object_id: id.into(),
            }),
            permission: "view".into(),
            subject: Some(pb::SubjectReference {
                object: Some(pb::ObjectReference {
                    object_type: "user".into(),
                    object_id: "ü".into(),
                }),
                optional_relation: "member".into(),
            }),
            context: Some(prost_types::Struct::default()),
        }
    }

    fn plain_item(id: &str) -> pb::CheckBulkPermissionsRequestItem {
        pb::CheckBulkPermissionsRequestItem {
            context: None,
            ..full_item(id)
        }
    }

    fn request(items: Vec<pb::CheckBulkPermissionsRequestItem>) -> Vec<u8> {
        pb::CheckBulkPermissionsRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
            }),
            items,
            with_tracing: false,
        }
        .encode_to_vec()
    }

    /// `message` read by [`read`] as `spicedb-rs-proto`'s type reads it: the same request,
    /// with each item's echoed bytes reading as that item, or the same refusal word for
    /// word.
    fn same_as_prost(message: &[u8]) -> Result<pb::CheckBulkPermissionsRequest, Status> {
        let mut canonical = Vec::new();
        let ours = read(message, &mut canonical).map(|read| {
            let echoed: Vec<_> = read
                .items
                .iter()
                .map(|item| pb::CheckBulkPermissionsRequestItem::decode(item.encoded).unwrap())
                .collect();
            (read.to_message(), echoed)
        });
        match pb::CheckBulkPermissionsRequest::decode(message) {
            Ok(full) => {
                let (read, echoed) = ours.expect("prost read it");
                assert_eq!(read, full);
                assert_eq!(echoed, full.items);
                Ok(read)
            }
            Err(error) => {
                let status = ours.expect_err("prost refused it");
                assert_eq!(status.code(), tonic::Code::Internal);
                assert_eq!(status.message(), error.to_string());
                Err(status)
            }
        }
    }

    #[test]
    fn the_answer_is_what_prost_writes() {
        let full = pb::CheckBulkPermissionsRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
            }),
            items: vec![full_item("a"), plain_item("b")],
            with_tracing: true,
        };
        let message = full.encode_to_vec();
        same_as_prost(&message).unwrap();
        let mut canonical = Vec::new();
        let read = read(&message, &mut canonical).unwrap();
        let view = read.items[1].view;
        assert_eq!(view.resource.unwrap().object_id, "b");
        assert_eq!(view.subject_object.unwrap().object_id, "ü");
        assert_eq!((view.permission, view.subject_relation), ("view", "member"));

        let token = pb::ZedToken {
            token: "pb1.2".into(),
        };
        let answers = [Ok(true), Err(Status::invalid_argument("no"))];
        let ours = answer(Some(&token), &read.items, &answers).0;
        use pb::check_bulk_permissions_pair::Response;
        let prost = pb::CheckBulkPermissionsResponse {
            checked_at: Some(token.clone()),
            pairs: vec![
                pb::CheckBulkPermissionsPair {
                    request: Some(full_item("a")),
                    response: Some(Response::Item(pb::CheckBulkPermissionsResponseItem {
                        permissionship: 2,
                        ..Default::default()
                    })),
                },
                pb::CheckBulkPermissionsPair {
                    request: Some(plain_item("b")),
                    response: Some(Response::Error(spicedb_rs_proto::google::rpc::Status {
                        code: 3,
                        message: "no".into(),
                        details: Vec::new(),
                    })),
                },
            ],
        };
        // The request was canonical, so its items' bytes are prost's too.
        assert_eq!(ours, prost.encode_to_vec());
        let denied = answer(None, &read.items[..1], &[Ok(false)]).0;
        let prost = pb::CheckBulkPermissionsResponse {
            checked_at: None,
            pairs: vec![pb::CheckBulkPermissionsPair {
                request: Some(full_item("a")),
                response: Some(Response::Item(pb::CheckBulkPermissionsResponseItem {
                    permissionship: 1,
                    ..Default::default()
                })),
            }],
        };
        assert_eq!(denied, prost.encode_to_vec());
    }

    /// `message` with the first `from` replaced by `to` (of the same length).
    fn patched(message: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = message
            .windows(from.len())
            .position(|w| w == from)
            .expect("the bytes to patch");
        let mut out = message.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn a_plain_request_is_read_in_place() {
        let message = request(vec![plain_item("a"), plain_item("bb")]);
        same_as_prost(&message).unwrap();
        let mut canonical = Vec::new();
        let read = read(&message, &mut canonical).unwrap();
        let id = read.items[1].view.resource.unwrap().object_id;
        assert_eq!(id, "bb");
        // A slice of the received message, not a copy of it.
        assert!(message.as_ptr_range().contains(&id.as_ptr()));
    }

    #[test]
    fn fields_in_any_order_are_read_in_place() {
        // The item's subject and permission before its resource, the request's items
        // before its consistency.
        let item = plain_item("a");
        let mut encoded = Vec::new();
        encoding::message::encode(3, item.subject.as_ref().unwrap(), &mut encoded);
        encoding::string::encode(2, &item.permission, &mut encoded);
        encoding::message::encode(1, item.resource.as_ref().unwrap(), &mut encoded);
        let mut message = Vec::new();
        encoding::bytes::encode(2, &encoded, &mut message);
        encoding::bool::encode(3, &true, &mut message);
        encoding::message::encode(
            1,
            &pb::Consistency {
                requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
            },
            &mut message,
        );
        let read_back = same_as_prost(&message).unwrap();
        assert!(read_back.with_tracing);
        let mut canonical = Vec::new();
        let read = read(&message, &mut canonical).unwrap();
        // The fast path stood: the item is the client's bytes, in the client's order.
        assert_eq!(read.items[0].encoded, &encoded[..]);
        assert!(message
            .as_ptr_range()
            .contains(&read.items[0].encoded.as_ptr()));
    }

    #[test]
    fn long_and_overlong_varints_are_read_as_prost_reads_them() {
        // A 200-byte id: two-byte lengths for it, its resource, its item. Still in place.
        let long = "x".repeat(200);
        let message = request(vec![plain_item(&long)]);
        same_as_prost(&message).unwrap();
        let mut canonical = Vec::new();
        let read = read(&message, &mut canonical).unwrap();
        let id = read.items[0].view.resource.unwrap().object_id;
        assert_eq!(id, long);
        assert!(message.as_ptr_range().contains(&id.as_ptr()));
        // The permission's key and then its length written in two bytes where one would
        // do: prost reads both, and so must we.
        let plain = plain_item("a").encode_to_vec();
        for (from, to) in [
            (&[0x12u8, 4][..], &[0x92u8, 0x00, 4][..]),
            (&[0x12, 4], &[0x12, 0x84, 0x00]),
        ] {
            let at = plain.windows(2).position(|w| w == from).unwrap();
            let mut item = plain[..at].to_vec();
            item.extend_from_slice(to);
            item.extend_from_slice(&plain[at + 2..]);
            let mut message = request(Vec::new());
            encoding::bytes::encode(2, &item, &mut message);
            let read = same_as_prost(&message).unwrap();
            assert_eq!(read.items[0].permission, "view");
        }
    }

    #[test]
    fn strings_that_are_not_utf8_are_refused_as_prost_refuses_them() {
        let message = request(vec![plain_item("a"), plain_item("Q"), plain_item("c")]);
        // In a resource id, the permission, the subject's relation and id.
        for (from, to) in [
            (&b"Q"[..], &b"\xff"[..]),
            (b"view", b"vi\xc3w"),
            (b"member", b"\x80ember"),
            ("ü".as_bytes(), b"\xc3\x28"),
            (b"doc", b"d\xffc"),
        ] {
            let status = same_as_prost(&patched(&message, from, to)).unwrap_err();
            assert!(
                status.message().contains("not UTF-8"),
                "{}",
                status.message()
            );
        }
        // An invalid permission that a later occurrence of the field overwrites: prost
        // refuses the first one all the same.
        let mut item = plain_item("a").encode_to_vec();
        encoding::bytes::encode(2, &b"\xff".to_vec(), &mut item);
        encoding::string::encode(2, &"view".to_string(), &mut item);
        let mut message = request(Vec::new());
        encoding::bytes::encode(2, &item, &mut message);
        let status = same_as_prost(&message).unwrap_err();
        assert!(status.message().contains("not UTF-8"), "{status:?}");
    }

    #[test]
    fn unusual_encodings_are_read_as_prost_reads_them() {
        let plain = plain_item("a").encode_to_vec();
        let mut items = Vec::new();
        // An item with an unknown field 9, one with its permission given twice, one with a
        // context, one with an explicitly empty permission, one with a resource of a
        // wrong wire type, an empty one.
        let mut unknown = plain.clone();
        encoding::string::encode(9, &"x".to_string(), &mut unknown);
        let mut twice = plain.clone();
        encoding::string::encode(2, &"edit".to_string(), &mut twice);
        let context = full_item("c").encode_to_vec();
        let mut empty_permission = plain.clone();
        encoding::string::encode(2, &String::new(), &mut empty_permission);
        for item in [
            &plain,
            &unknown,
            &twice,
            &context,
            &empty_permission,
            &Vec::new(),
        ] {
            encoding::bytes::encode(2, item, &mut items);
        }
        let mut message = request(Vec::new());
        message.extend_from_slice(&items);
        // Consistency given twice (prost merges the two), with_tracing as 2.
        encoding::message::encode(
            1,
            &pb::Consistency {
                requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
            },
            &mut message,
        );
        encoding::uint64::encode(3, &2, &mut message);
        let read = same_as_prost(&message).unwrap();
        assert_eq!(read.items.len(), 6);
        assert_eq!(read.items[2].permission, "edit");
        assert!(read.items[3].context.is_some());
        assert!(read.items[4].permission.is_empty());
        assert!(read.with_tracing);
        // A resource as a varint: prost's refusal.
        let mut wrong = Vec::new();
        encoding::uint64::encode(1, &1, &mut wrong);
        let mut bad = request(Vec::new());
        encoding::bytes::encode(2, &wrong, &mut bad);
        same_as_prost(&bad).unwrap_err();
        // Cut short anywhere: prost's refusal (or, at a field's end, its reading).
        for end in 0..message.len() {
            let _ = same_as_prost(&message[..end]);
        }
    }
}
