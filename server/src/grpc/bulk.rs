//! CheckBulkPermissions' request and answer as prost types of our own, wire-identical to
//! `authzed.api.v1`'s (same field numbers and wire types), whose strings are [`Bytes`]
//! slices of the received message instead of owned `String`s, and the codec that reads
//! them.
//!
//! A bulk check of 100 items decoded into `spicedb-rs-proto`'s types allocated 400
//! strings, copied them, and freed them after the answer echoed each item back: about an
//! eighth of the server's CPU per item, beside the engine's half. protobuf's `string` and
//! `bytes` are the same on the wire (a length-delimited field), so declaring them `bytes`
//! here decodes each as a reference into the buffer tonic received, and the echo encodes
//! the same bytes back.
//!
//! What `string` adds is UTF-8, which prost checks on every occurrence of a field as it
//! decodes, refusing the whole message (tonic answers `INTERNAL`, with prost's words).
//! [`decode`] keeps that answer exactly: the fast path is taken only when it provably
//! reads what `spicedb-rs-proto`'s types would, and anything else is decoded again with
//! them, whose answer (its refusal, word for word) is the one given.

use bytes::{Buf as _, Bytes};
use prost::Message as _;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstEncoder};

/// `CheckBulkPermissionsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BulkRequest {
    /// `consistency`, field 1.
    #[prost(message, optional, tag = "1")]
    pub consistency: Option<pb::Consistency>,
    /// `items`, field 2.
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<BulkItem>,
    /// `with_tracing`, field 3.
    #[prost(bool, tag = "3")]
    pub with_tracing: bool,
}

/// `CheckBulkPermissionsRequestItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BulkItem {
    /// `resource`, field 1.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<ObjectReference>,
    /// `permission`, field 2 (a `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub permission: Bytes,
    /// `subject`, field 3.
    #[prost(message, optional, tag = "3")]
    pub subject: Option<SubjectReference>,
    /// `context`, field 4.
    #[prost(message, optional, tag = "4")]
    pub context: Option<prost_types::Struct>,
}

/// `ObjectReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectReference {
    /// `object_type`, field 1 (a `string`).
    #[prost(bytes = "bytes", tag = "1")]
    pub object_type: Bytes,
    /// `object_id`, field 2 (a `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub object_id: Bytes,
}

/// `SubjectReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubjectReference {
    /// `object`, field 1.
    #[prost(message, optional, tag = "1")]
    pub object: Option<ObjectReference>,
    /// `optional_relation`, field 2 (a `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub optional_relation: Bytes,
}

/// `CheckBulkPermissionsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BulkResponse {
    /// `checked_at`, field 1.
    #[prost(message, optional, tag = "1")]
    pub checked_at: Option<pb::ZedToken>,
    /// `pairs`, field 2.
    #[prost(message, repeated, tag = "2")]
    pub pairs: Vec<BulkPair>,
}

/// `CheckBulkPermissionsPair`: the item asked, echoed, and its answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BulkPair {
    /// `request`, field 1.
    #[prost(message, optional, tag = "1")]
    pub request: Option<BulkItem>,
    /// The `response` oneof, fields 2 and 3.
    #[prost(oneof = "PairResponse", tags = "2, 3")]
    pub response: Option<PairResponse>,
}

/// `CheckBulkPermissionsPair.response`.
#[derive(Clone, PartialEq, prost::Oneof)]
#[expect(
    clippy::large_enum_variant,
    reason = "the layout of spicedb-rs-proto's own oneof; boxing would allocate per item"
)]
pub enum PairResponse {
    /// `item`, field 2.
    #[prost(message, tag = "2")]
    Item(pb::CheckBulkPermissionsResponseItem),
    /// `error`, field 3.
    #[prost(message, tag = "3")]
    Error(spicedb_rs_proto::google::rpc::Status),
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

fn text(bytes: &Bytes) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

fn object_view(object: Option<&ObjectReference>) -> Option<Option<ObjectView<'_>>> {
    match object {
        None => Some(None),
        Some(object) => Some(Some(ObjectView {
            object_type: text(&object.object_type)?,
            object_id: text(&object.object_id)?,
        })),
    }
}

impl BulkItem {
    /// The item's strings as text, or `None` when one is not UTF-8 (never for an item of a
    /// request [`decode`] read).
    pub fn view(&self) -> Option<ItemView<'_>> {
        let relation = self
            .subject
            .as_ref()
            .map_or(Some(""), |s| text(&s.optional_relation))?;
        Some(ItemView {
            resource: object_view(self.resource.as_ref())?,
            permission: text(&self.permission)?,
            subject_object: object_view(self.subject.as_ref().and_then(|s| s.object.as_ref()))?,
            has_subject: self.subject.is_some(),
            subject_relation: relation,
        })
    }
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

/// Reads a CheckBulkPermissionsRequest as `spicedb-rs-proto`'s type reads it, into
/// [`BulkRequest`], or refuses it with the status tonic's prost codec gives.
///
/// The fast path decodes `message` straight into [`BulkRequest`]. It stands when every
/// string is UTF-8 and re-encoding gives back exactly `message.len()` bytes: every field of
/// these messages re-encodes in at most the bytes it was read from, so the same length
/// means no occurrence was dropped (a repeated field overwritten, an unknown field
/// skipped), and so every occurrence prost would have checked was checked here. Items
/// with a `context` are left to the slow path, since a `google.protobuf.Struct` may hold an
/// enum whose negative value re-encodes longer. The slow path decodes with
/// `spicedb-rs-proto`'s type and converts its canonical encoding.
pub fn decode(message: Bytes) -> Result<BulkRequest, Status> {
    if let Ok(request) = BulkRequest::decode(message.clone()) {
        if request.encoded_len() == message.len()
            && request
                .items
                .iter()
                .all(|item| item.context.is_none() && item.view().is_some())
        {
            return Ok(request);
        }
    }
    // tonic-prost's words for a message prost refuses.
    let refused = |error: prost::DecodeError| Status::internal(error.to_string());
    let full = pb::CheckBulkPermissionsRequest::decode(message).map_err(refused)?;
    BulkRequest::decode(Bytes::from(full.encode_to_vec())).map_err(refused)
}

/// tonic's codec for CheckBulkPermissions (`build.rs` names it): prost's encoder for the
/// answer, [`decode`] for the request.
#[derive(Debug, Default)]
pub struct BulkCodec;

impl Codec for BulkCodec {
    type Encode = BulkResponse;
    type Decode = BulkRequest;
    type Encoder = ProstEncoder<BulkResponse>;
    type Decoder = BulkDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<BulkResponse, BulkRequest>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BulkDecoder
    }
}

/// [`BulkCodec`]'s decoder: the received message as one [`Bytes`], given to [`decode`].
#[derive(Debug)]
pub struct BulkDecoder;

impl Decoder for BulkDecoder {
    type Item = BulkRequest;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<BulkRequest>, Status> {
        // A slice of tonic's receive buffer, not a copy.
        let message = buf.copy_to_bytes(buf.remaining());
        decode(message).map(Some)
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

    #[test]
    fn the_request_reads_and_the_answer_writes_as_spicedbs_messages() {
        let full = pb::CheckBulkPermissionsRequest {
            consistency: Some(pb::Consistency {
                requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
            }),
            items: vec![full_item("a"), full_item("b")],
            with_tracing: true,
        };
        let ours = BulkRequest::decode(&full.encode_to_vec()[..]).unwrap();
        assert_eq!(ours.encode_to_vec(), full.encode_to_vec());
        let view = ours.items[1].view().unwrap();
        assert_eq!(view.resource.unwrap().object_id, "b");
        assert_eq!(view.subject_object.unwrap().object_id, "ü");
        assert_eq!((view.permission, view.subject_relation), ("view", "member"));

        let answer = BulkResponse {
            checked_at: Some(pb::ZedToken {
                token: "pb1.2".into(),
            }),
            pairs: vec![
                BulkPair {
                    request: ours.items.first().cloned(),
                    response: Some(PairResponse::Item(pb::CheckBulkPermissionsResponseItem {
                        permissionship: 2,
                        ..Default::default()
                    })),
                },
                BulkPair {
                    request: ours.items.get(1).cloned(),
                    response: Some(PairResponse::Error(spicedb_rs_proto::google::rpc::Status {
                        code: 3,
                        message: "no".into(),
                        details: Vec::new(),
                    })),
                },
            ],
        };
        let read = pb::CheckBulkPermissionsResponse::decode(&answer.encode_to_vec()[..]).unwrap();
        use pb::check_bulk_permissions_pair::Response;
        assert_eq!(read.checked_at.unwrap().token, "pb1.2");
        assert_eq!(read.pairs.len(), 2);
        assert_eq!(read.pairs[0].request, Some(full_item("a")));
        assert!(matches!(
            read.pairs[0].response,
            Some(Response::Item(ref item)) if item.permissionship == 2
        ));
        assert_eq!(read.pairs[1].request, Some(full_item("b")));
        assert!(matches!(
            read.pairs[1].response,
            Some(Response::Error(ref error)) if error.code == 3 && error.message == "no"
        ));
    }

    #[test]
    fn a_string_that_is_not_utf8_has_no_view() {
        let mut item = BulkItem::decode(&full_item("a").encode_to_vec()[..]).unwrap();
        assert!(item.view().is_some());
        item.permission = Bytes::from_static(b"\xff");
        assert!(item.view().is_none());
        let mut item = BulkItem::decode(&full_item("a").encode_to_vec()[..]).unwrap();
        if let Some(object) = item.subject.as_mut().and_then(|s| s.object.as_mut()) {
            object.object_id = Bytes::from_static(b"\xc3");
        }
        assert!(item.view().is_none());
    }

    /// `message` read by [`decode`] as `spicedb-rs-proto`'s type reads it: the same
    /// request, or the same refusal word for word.
    fn same_as_prost(message: &[u8]) -> Result<BulkRequest, Status> {
        let ours = decode(Bytes::copy_from_slice(message));
        match pb::CheckBulkPermissionsRequest::decode(message) {
            Ok(full) => {
                let read = ours.as_ref().expect("prost read it");
                assert_eq!(read.encode_to_vec(), full.encode_to_vec());
            }
            Err(error) => {
                let status = ours.as_ref().expect_err("prost refused it");
                assert_eq!(status.code(), tonic::Code::Internal);
                assert_eq!(status.message(), error.to_string());
            }
        }
        ours
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

    fn plain_item(id: &str) -> pb::CheckBulkPermissionsRequestItem {
        pb::CheckBulkPermissionsRequestItem {
            context: None,
            ..full_item(id)
        }
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
        let message = Bytes::from(request(vec![plain_item("a"), plain_item("bb")]));
        same_as_prost(&message).unwrap();
        let read = decode(message.clone()).unwrap();
        let id = &read.items[1].resource.as_ref().unwrap().object_id;
        assert_eq!(&id[..], b"bb");
        // A slice of the received message, not a copy of it.
        assert!(message.as_ptr_range().contains(&id.as_ptr()));
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
        prost::encoding::bytes::encode(2, &b"\xff".to_vec(), &mut item);
        prost::encoding::string::encode(2, &"view".to_string(), &mut item);
        let mut message = request(Vec::new());
        prost::encoding::bytes::encode(2, &item, &mut message);
        let status = same_as_prost(&message).unwrap_err();
        assert!(status.message().contains("not UTF-8"), "{status:?}");
    }

    #[test]
    fn unusual_encodings_are_read_as_prost_reads_them() {
        let plain = plain_item("a").encode_to_vec();
        let mut items = Vec::new();
        // An item with an unknown field 9, one with its permission given twice, one with a
        // context, one with an explicitly empty permission.
        let mut unknown = plain.clone();
        prost::encoding::string::encode(9, &"x".to_string(), &mut unknown);
        let mut twice = plain.clone();
        prost::encoding::string::encode(2, &"edit".to_string(), &mut twice);
        let context = full_item("c").encode_to_vec();
        let mut empty = plain.clone();
        prost::encoding::string::encode(2, &String::new(), &mut empty);
        for item in [&plain, &unknown, &twice, &context, &empty] {
            prost::encoding::bytes::encode(2, item, &mut items);
        }
        let mut message = request(Vec::new());
        message.extend_from_slice(&items);
        let read = same_as_prost(&message).unwrap();
        assert_eq!(read.items.len(), 5);
        assert_eq!(&read.items[2].permission[..], b"edit");
        assert!(read.items[3].context.is_some());
        assert!(read.items[4].permission.is_empty());
        // Cut short anywhere: prost's refusal (or, at a field's end, its reading).
        for end in 0..message.len() {
            let _ = same_as_prost(&message[..end]);
        }
    }
}
