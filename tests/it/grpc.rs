//! SpiceDB's gRPC API over a real socket, with the tonic clients `spicedb-rs-proto`
//! generates (the same messages the official clients send): every RPC, auth, SpiceDB's
//! status codes and `ErrorInfo` reasons, limits, cancellation, and refused requests that
//! must change nothing.
//!
//! Tests run on a multi-threaded runtime so the clients' connection tasks still run (and
//! close on the server's GOAWAY) while the test thread waits for the server to stop.

use std::time::Duration;

use pb::permissions_service_client::PermissionsServiceClient;
use pb::schema_service_client::SchemaServiceClient;
use pb::watch_service_client::WatchServiceClient;
use pemba_server::Limits;
use serde_json::json;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::{TestServer, KEY};

type Auth = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;

fn auth(key: Option<&'static str>) -> Auth {
    Box::new(move |mut request: Request<()>| {
        if let Some(key) = key {
            let value: MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    })
}

struct Clients {
    permissions: PermissionsServiceClient<InterceptedService<Channel, Auth>>,
    schema: SchemaServiceClient<InterceptedService<Channel, Auth>>,
    watch: WatchServiceClient<InterceptedService<Channel, Auth>>,
}

async fn clients_with(server: &TestServer, key: Option<&'static str>) -> Clients {
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    Clients {
        permissions: PermissionsServiceClient::with_interceptor(channel.clone(), auth(key)),
        schema: SchemaServiceClient::with_interceptor(channel.clone(), auth(key)),
        watch: WatchServiceClient::with_interceptor(channel, auth(key)),
    }
}

async fn clients(server: &TestServer) -> Clients {
    clients_with(server, Some(KEY)).await
}

fn object(text: &str) -> pb::ObjectReference {
    let (object_type, object_id) = text.split_once(':').unwrap();
    pb::ObjectReference {
        object_type: object_type.into(),
        object_id: object_id.into(),
    }
}

fn subject(text: &str) -> pb::SubjectReference {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    pb::SubjectReference {
        object: Some(object(object_text)),
        optional_relation: relation.into(),
    }
}

/// `type:id#relation@subject`.
fn relationship(text: &str) -> pb::Relationship {
    let (resource, rest) = text.split_once('#').unwrap();
    let (relation, subject_text) = rest.split_once('@').unwrap();
    pb::Relationship {
        resource: Some(object(resource)),
        relation: relation.into(),
        subject: Some(subject(subject_text)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn update(operation: pb::relationship_update::Operation, text: &str) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate {
        operation: operation as i32,
        relationship: Some(relationship(text)),
    }
}

fn touch(texts: &[&str]) -> pb::WriteRelationshipsRequest {
    pb::WriteRelationshipsRequest {
        updates: texts
            .iter()
            .map(|t| update(pb::relationship_update::Operation::Touch, t))
            .collect(),
        ..Default::default()
    }
}

fn fully_consistent() -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
    })
}

fn at_least(token: &pb::ZedToken) -> Option<pb::Consistency> {
    Some(pb::Consistency {
        requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(token.clone())),
    })
}

fn check_request(text: &str, consistency: Option<pb::Consistency>) -> pb::CheckPermissionRequest {
    let (resource, rest) = text.split_once('#').unwrap();
    let (permission, subject_text) = rest.split_once('@').unwrap();
    pb::CheckPermissionRequest {
        consistency,
        resource: Some(object(resource)),
        permission: permission.into(),
        subject: Some(subject(subject_text)),
        ..Default::default()
    }
}

async fn allowed(clients: &mut Clients, text: &str) -> bool {
    let answer = clients
        .permissions
        .check_permission(check_request(text, fully_consistent()))
        .await
        .unwrap()
        .into_inner();
    answer.permissionship == pb::check_permission_response::Permissionship::HasPermission as i32
}

async fn with_schema(server: &TestServer) -> Clients {
    let mut clients = clients(server).await;
    clients
        .schema
        .write_schema(pb::WriteSchemaRequest {
            schema: crate::support::SCHEMA.into(),
        })
        .await
        .unwrap();
    clients
}

/// Every stored relationship, over HTTP, so a gRPC refusal is checked by the other protocol.
fn stored(server: &TestServer) -> Vec<serde_json::Value> {
    server.results(
        "/v1/relationships/read",
        json!({"relationshipFilter": {"resourceType": "doc"}}),
    )
}

fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn schema_write_read_and_unimplemented_reflection() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let read = clients
        .schema
        .read_schema(pb::ReadSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        read.schema_text.contains("definition doc"),
        "{}",
        read.schema_text
    );
    assert!(read.read_at.is_some());
    let bad = clients
        .schema
        .write_schema(pb::WriteSchemaRequest {
            schema: "definition doc { relation owner: nobody }".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert_eq!(
        reason(&bad).as_deref(),
        Some("ERROR_REASON_SCHEMA_PARSE_ERROR")
    );
    let reflect = clients
        .schema
        .reflect_schema(pb::ReflectSchemaRequest::default())
        .await
        .unwrap_err();
    assert_eq!(reflect.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn writes_checks_and_tokens_shared_with_http() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let written = clients
        .permissions
        .write_relationships(touch(&[
            "doc:readme#owner@user:alice",
            "group:eng#member@user:bob",
            "doc:readme#viewer@group:eng#member",
        ]))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    // Each consistency mode answers, and a gRPC token is valid over HTTP.
    for consistency in [
        None,
        Some(pb::Consistency {
            requirement: Some(pb::consistency::Requirement::MinimizeLatency(true)),
        }),
        at_least(&written),
        fully_consistent(),
    ] {
        let answer = clients
            .permissions
            .check_permission(check_request("doc:readme#view@user:bob", consistency))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.checked_at.is_some());
    }
    assert!(allowed(&mut clients, "doc:readme#view@user:bob").await);
    assert!(!allowed(&mut clients, "doc:readme#edit@user:bob").await);
    let over_http = server.ok(
        "/v1/permissions/check",
        json!({
            "consistency": {"atLeastAsFresh": {"token": written.token}},
            "resource": {"objectType": "doc", "objectId": "readme"},
            "permission": "view",
            "subject": {"object": {"objectType": "user", "objectId": "bob"}},
        }),
    );
    assert_eq!(over_http["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
    // And an HTTP token is valid over gRPC.
    let http_token = server.touch(&["doc:other#owner@user:carol"]);
    let answer = clients
        .permissions
        .check_permission(check_request(
            "doc:other#edit@user:carol",
            at_least(&pb::ZedToken { token: http_token }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.permissionship,
        pb::check_permission_response::Permissionship::HasPermission as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn bulk_check_answers_each_item_or_its_error() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    clients
        .permissions
        .write_relationships(touch(&["doc:a#owner@user:alice"]))
        .await
        .unwrap();
    let item = |text: &str| {
        let request = check_request(text, None);
        pb::CheckBulkPermissionsRequestItem {
            resource: request.resource,
            permission: request.permission,
            subject: request.subject,
            context: None,
        }
    };
    let answer = clients
        .permissions
        .check_bulk_permissions(pb::CheckBulkPermissionsRequest {
            consistency: fully_consistent(),
            items: vec![
                item("doc:a#edit@user:alice"),
                item("doc:a#edit@user:bob"),
                item("doc:a#nope@user:bob"),
            ],
            with_tracing: false,
        })
        .await
        .unwrap()
        .into_inner();
    use pb::check_bulk_permissions_pair::Response;
    let has = pb::check_permission_response::Permissionship::HasPermission as i32;
    let no = pb::check_permission_response::Permissionship::NoPermission as i32;
    let got: Vec<_> = answer
        .pairs
        .iter()
        .map(|pair| match pair.response.as_ref().unwrap() {
            Response::Item(item) => Ok(item.permissionship),
            Response::Error(status) => Err(status.code),
        })
        .collect();
    assert_eq!(
        got,
        vec![Ok(has), Ok(no), Err(Code::FailedPrecondition as i32)]
    );
    assert_eq!(answer.pairs[0].request.as_ref().unwrap().permission, "edit");
}

mod bulk_bytes {
    //! CheckBulkPermissions sent as raw protobuf bytes, so a request can hold what the
    //! generated client would never send (strings that are not UTF-8, fields given twice):
    //! the server reads its strings in place (`server/src/grpc/bulk.rs`) and must answer
    //! exactly as decoding into `spicedb-rs-proto`'s types answered.

    use bytes::{Buf as _, BufMut as _};
    use prost::Message as _;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::transport::Channel;
    use tonic::{Code, Status};

    use super::{check_request, fully_consistent, pb, touch, with_schema};
    use crate::support::{TestServer, KEY};

    /// Sends and receives messages as their bytes.
    #[derive(Default)]
    struct Raw;

    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = Raw;
        type Decoder = Raw;

        fn encoder(&mut self) -> Raw {
            Raw
        }

        fn decoder(&mut self) -> Raw {
            Raw
        }
    }

    impl Encoder for Raw {
        type Item = Vec<u8>;
        type Error = Status;

        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for Raw {
        type Item = Vec<u8>;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
            Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
        }
    }

    /// CheckBulkPermissions with `message` as its request.
    async fn ask(
        server: &TestServer,
        message: Vec<u8>,
    ) -> Result<pb::CheckBulkPermissionsResponse, Status> {
        let channel = Channel::from_shared(server.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.unwrap();
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        let path =
            PathAndQuery::from_static("/authzed.api.v1.PermissionsService/CheckBulkPermissions");
        let answer = client.unary(request, path, Raw).await?.into_inner();
        Ok(pb::CheckBulkPermissionsResponse::decode(&answer[..]).unwrap())
    }

    fn item(text: &str) -> pb::CheckBulkPermissionsRequestItem {
        let request = check_request(text, None);
        pb::CheckBulkPermissionsRequestItem {
            resource: request.resource,
            permission: request.permission,
            subject: request.subject,
            context: None,
        }
    }

    fn request(items: Vec<pb::CheckBulkPermissionsRequestItem>) -> Vec<u8> {
        pb::CheckBulkPermissionsRequest {
            consistency: fully_consistent(),
            items,
            with_tracing: false,
        }
        .encode_to_vec()
    }

    /// `message` with its first `from` overwritten by `to`.
    fn patched(message: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = message.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = message.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    /// What decoding into `spicedb-rs-proto`'s type answers (tonic-prost's status).
    fn prost_refusal(message: &[u8]) -> String {
        pb::CheckBulkPermissionsRequest::decode(message)
            .unwrap_err()
            .to_string()
    }

    fn refused_as_prost_refuses(
        answer: Result<pb::CheckBulkPermissionsResponse, Status>,
        message: &[u8],
    ) {
        let status = answer.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert_eq!(status.message(), prost_refusal(message));
        assert!(status.message().contains("not UTF-8"), "{status:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn strings_that_are_not_utf8_are_refused_whole_as_before() {
        let server = TestServer::start();
        let mut clients = with_schema(&server).await;
        clients
            .permissions
            .write_relationships(touch(&["doc:a#owner@user:alice"]))
            .await
            .unwrap();
        let valid = request(vec![
            item("doc:a#edit@user:alice"),
            item("doc:QQ#edit@user:bob"),
        ]);
        for (from, to) in [
            (&b"QQ"[..], &b"\xff\xfe"[..]),
            (b"alice", b"al\xc3ce"),
            (b"edit", b"\x80dit"),
        ] {
            let message = patched(&valid, from, to);
            refused_as_prost_refuses(ask(&server, message.clone()).await, &message);
        }

        // An invalid permission overwritten by a later occurrence of the field: prost
        // refuses it all the same.
        let mut twice = item("doc:a#edit@user:alice").encode_to_vec();
        prost::encoding::bytes::encode(2, &b"\xff".to_vec(), &mut twice);
        prost::encoding::string::encode(2, &"edit".to_string(), &mut twice);
        let mut message = request(Vec::new());
        prost::encoding::bytes::encode(2, &twice, &mut message);
        refused_as_prost_refuses(ask(&server, message.clone()).await, &message);

        // The decode fails before any limit is applied: too many items, one not UTF-8.
        let mut many: Vec<_> = (0..1001).map(|_| item("doc:a#edit@user:alice")).collect();
        many[500] = item("doc:QQ#edit@user:bob");
        let message = patched(&request(many), b"QQ", b"\xff\xff");
        refused_as_prost_refuses(ask(&server, message.clone()).await, &message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_largest_bulk_and_unusual_encodings_are_answered_as_before() {
        let server = TestServer::start();
        let mut clients = with_schema(&server).await;
        clients
            .permissions
            .write_relationships(touch(&["doc:a#owner@user:alice"]))
            .await
            .unwrap();
        let has = pb::check_permission_response::Permissionship::HasPermission as i32;
        let no = pb::check_permission_response::Permissionship::NoPermission as i32;
        use pb::check_bulk_permissions_pair::Response;

        // The limit's 1000 items, each echoed and answered; one more is refused.
        let items: Vec<_> = (0..1000)
            .map(|i| {
                item(&format!(
                    "doc:{}#edit@user:alice",
                    if i % 2 == 0 { "a" } else { "b" }
                ))
            })
            .collect();
        let answer = ask(&server, request(items.clone())).await.unwrap();
        assert_eq!(answer.pairs.len(), 1000);
        for (i, pair) in answer.pairs.iter().enumerate() {
            assert_eq!(pair.request.as_ref(), Some(&items[i]));
            let expected = if i % 2 == 0 { has } else { no };
            assert!(
                matches!(pair.response, Some(Response::Item(ref item)) if item.permissionship == expected),
                "{i}: {pair:?}"
            );
        }
        let mut too_many = items;
        too_many.push(item("doc:a#edit@user:alice"));
        let status = ask(&server, request(too_many)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("1000"), "{status:?}");

        // An unknown field, a permission given twice (the last counts), an explicitly empty
        // relation: read as prost reads them, and echoed as prost re-encodes them.
        let mut unusual = item("doc:a#nope@user:alice").encode_to_vec();
        prost::encoding::string::encode(9, &"unknown".to_string(), &mut unusual);
        prost::encoding::string::encode(2, &"edit".to_string(), &mut unusual);
        let mut message = request(vec![item("doc:b#edit@user:alice")]);
        prost::encoding::bytes::encode(2, &unusual, &mut message);
        let full = pb::CheckBulkPermissionsRequest::decode(&message[..]).unwrap();
        let answer = ask(&server, message).await.unwrap();
        assert_eq!(answer.pairs.len(), 2);
        assert_eq!(answer.pairs[1].request.as_ref(), Some(&full.items[1]));
        assert_eq!(full.items[1].permission, "edit");
        assert!(
            matches!(answer.pairs[1].response, Some(Response::Item(ref item)) if item.permissionship == has),
            "{answer:?}"
        );
        // A per-item error is still the item's.
        let answer = ask(&server, request(vec![item("doc:a#nope@user:alice")]))
            .await
            .unwrap();
        assert!(
            matches!(answer.pairs[0].response, Some(Response::Error(ref error)) if error.code == Code::FailedPrecondition as i32),
            "{answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn checks_larger_than_the_codec_buffer_are_read_whole() {
    // CheckPermission's codec starts its buffers at 512 bytes (server/src/grpc/codec.rs):
    // a request with ids near their 1024-character limit must still be read whole.
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let long = "x".repeat(1000);
    let user = "u".repeat(1000);
    clients
        .permissions
        .write_relationships(touch(&[&format!("doc:{long}#owner@user:{user}")]))
        .await
        .unwrap();
    let request = check_request(&format!("doc:{long}#edit@user:{user}"), fully_consistent());
    assert!(prost::Message::encoded_len(&request) > 2000);
    assert!(allowed(&mut clients, &format!("doc:{long}#edit@user:{user}")).await);
    assert!(
        !allowed(
            &mut clients,
            &format!("doc:{long}#edit@user:{}", "v".repeat(1000))
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn lookups_expand_and_cursors_over_many_results() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let texts: Vec<String> = (0..2500)
        .map(|i| format!("doc:d{i:05}#viewer@user:alice"))
        .collect();
    for chunk in texts.chunks(1000) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        clients
            .permissions
            .write_relationships(touch(&refs))
            .await
            .unwrap();
    }
    let alice = subject("user:alice");
    let lookup = |cursor: Option<pb::Cursor>, limit: u32| pb::LookupResourcesRequest {
        consistency: fully_consistent(),
        resource_object_type: "doc".into(),
        permission: "view".into(),
        subject: Some(alice.clone()),
        optional_limit: limit,
        optional_cursor: cursor,
        ..Default::default()
    };
    // Unlimited: every result in one stream.
    let mut stream = clients
        .permissions
        .lookup_resources(lookup(None, 0))
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        all.push(item.resource_object_id);
    }
    assert_eq!(all.len(), 2500);
    // Pages of 1000 with cursors give the same ids in the same order.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let mut stream = clients
            .permissions
            .lookup_resources(lookup(cursor.clone(), 1000))
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(item) = stream.message().await.unwrap() {
            cursor = item.after_result_cursor.clone();
            paged.push(item.resource_object_id);
            n += 1;
        }
        if n < 1000 {
            break;
        }
    }
    assert_eq!(paged, all);
    // Reads page the same way, with their own cursors.
    let mut read = Vec::new();
    let mut cursor = None;
    loop {
        let mut stream = clients
            .permissions
            .read_relationships(pb::ReadRelationshipsRequest {
                consistency: fully_consistent(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "doc".into(),
                    ..Default::default()
                }),
                optional_limit: 1000,
                optional_cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(item) = stream.message().await.unwrap() {
            cursor = item.after_result_cursor.clone();
            read.push(item.relationship.unwrap().resource.unwrap().object_id);
            n += 1;
        }
        if n < 1000 {
            break;
        }
    }
    assert_eq!(read, all);
    // A lookup cursor is not a read cursor.
    let wrong = clients
        .permissions
        .read_relationships(pb::ReadRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "doc".into(),
                ..Default::default()
            }),
            optional_cursor: Some(pb::Cursor {
                token: "bm90LWEtY3Vyc29y".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert_eq!(
        reason(&wrong).as_deref(),
        Some("ERROR_REASON_INVALID_CURSOR")
    );

    let mut subjects = clients
        .permissions
        .lookup_subjects(pb::LookupSubjectsRequest {
            consistency: fully_consistent(),
            resource: Some(object("doc:d00007")),
            permission: "view".into(),
            subject_object_type: "user".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(item) = subjects.message().await.unwrap() {
        ids.push(item.subject.unwrap().subject_object_id);
    }
    assert_eq!(ids, vec!["alice".to_string()]);

    let tree = clients
        .permissions
        .expand_permission_tree(pb::ExpandPermissionTreeRequest {
            consistency: fully_consistent(),
            resource: Some(object("doc:d00007")),
            permission: "view".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tree_root
        .unwrap();
    assert_eq!(tree.expanded_relation, "view");
    assert!(matches!(
        tree.tree_type,
        Some(pb::permission_relationship_tree::TreeType::Intermediate(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn import_export_and_delete() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let batches: Vec<pb::ImportBulkRelationshipsRequest> = (0..3)
        .map(|b| pb::ImportBulkRelationshipsRequest {
            relationships: (0..1000)
                .map(|i| relationship(&format!("doc:b{b}x{i:04}#viewer@user:u{i}")))
                .collect(),
        })
        .collect();
    let loaded = clients
        .permissions
        .import_bulk_relationships(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loaded.num_loaded, 3000);
    let mut export = clients
        .permissions
        .export_bulk_relationships(pb::ExportBulkRelationshipsRequest {
            consistency: fully_consistent(),
            optional_limit: 700,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut exported = 0;
    while let Some(page) = export.message().await.unwrap() {
        assert!(page.relationships.len() <= 700);
        assert!(page.after_result_cursor.is_some());
        exported += page.relationships.len();
    }
    assert_eq!(exported, 3000);
    // An import with one bad relationship loads nothing.
    let bad = clients
        .permissions
        .import_bulk_relationships(tokio_stream::iter(vec![
            pb::ImportBulkRelationshipsRequest {
                relationships: vec![
                    relationship("doc:fresh#viewer@user:new"),
                    relationship("doc:fresh#nope@user:new"),
                ],
            },
        ]))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::FailedPrecondition, "{bad:?}");
    assert!(!allowed(&mut clients, "doc:fresh#view@user:new").await);

    let deleted = clients
        .permissions
        .delete_relationships(pb::DeleteRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "doc".into(),
                optional_resource_id: "b1x0001".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.relationships_deleted_count, 1);
    assert_eq!(
        deleted.deletion_progress,
        pb::delete_relationships_response::DeletionProgress::Complete as i32
    );
    assert!(!allowed(&mut clients, "doc:b1x0001#view@user:u1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn watch_replays_from_a_cursor_and_follows_new_commits() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    let first = clients
        .permissions
        .write_relationships(touch(&["doc:w1#owner@user:alice"]))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let second = clients
        .permissions
        .write_relationships(touch(&["doc:w2#owner@user:alice"]))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let mut stream = clients
        .watch
        .watch(pb::WatchRequest {
            optional_start_cursor: Some(first.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let replayed = stream.message().await.unwrap().unwrap();
    assert_eq!(replayed.changes_through, Some(second));
    assert_eq!(
        replayed.updates[0].relationship.as_ref().unwrap().resource,
        Some(object("doc:w2"))
    );
    let deleted = server.write(vec![("OPERATION_DELETE", "doc:w1#owner@user:alice")]);
    let live = stream.message().await.unwrap().unwrap();
    assert_eq!(live.changes_through.unwrap().token, deleted);
    assert_eq!(
        live.updates[0].operation,
        pb::relationship_update::Operation::Delete as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn watch_streams_share_the_http_cap_and_free_it_on_cancel() {
    let server = TestServer::start_with(Limits {
        max_watch_streams: 1,
        ..Limits::default()
    });
    let mut clients = with_schema(&server).await;
    let stream = clients
        .watch
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let second = clients
        .watch
        .watch(pb::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::ResourceExhausted);
    let (status, _) = server.post("/v1/watch", json!({}));
    assert_eq!(status, 429);
    // Cancelling the gRPC stream gives its place back (once the server sees the reset).
    drop(stream);
    let mut reopened = None;
    for _ in 0..500 {
        match clients.watch.watch(pb::WatchRequest::default()).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reopened.is_some(), "a cancelled watch kept its place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn auth_as_spicedb_preshared_key() {
    let server = TestServer::start();
    let mut missing = clients_with(&server, None).await;
    let status = missing
        .schema
        .read_schema(pb::ReadSchemaRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = clients_with(&server, Some("not-the-key")).await;
    let status = wrong
        .permissions
        .write_relationships(touch(&["doc:x#owner@user:alice"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Health needs no key, so load balancers can probe it.
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "authzed.api.v1.PermissionsService"] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}

/// Requests each refused with SpiceDB's code and reason, none of which may write anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn refused_requests_change_nothing() {
    use pb::relationship_update::Operation::{Create, Touch};
    let server = TestServer::start_with(Limits {
        max_updates_per_write: 3,
        max_preconditions: 1,
        ..Limits::default()
    });
    let mut clients = with_schema(&server).await;
    clients
        .permissions
        .write_relationships(touch(&["doc:kept#owner@user:alice"]))
        .await
        .unwrap();
    let before = stored(&server);
    let write = |updates: Vec<pb::RelationshipUpdate>| pb::WriteRelationshipsRequest {
        updates,
        ..Default::default()
    };
    let precondition = |resource_type: &str| pb::Precondition {
        operation: pb::precondition::Operation::MustMatch as i32,
        filter: Some(pb::RelationshipFilter {
            resource_type: resource_type.into(),
            optional_resource_id: "missing".into(),
            ..Default::default()
        }),
    };
    let mut caveated = relationship("doc:new#viewer@user:bob");
    caveated.optional_caveat = Some(pb::ContextualizedCaveat {
        caveat_name: "ip".into(),
        context: None,
    });
    let mut expiring = relationship("doc:new#viewer@user:bob");
    expiring.optional_expires_at = Some(prost_types_timestamp());
    let cases: Vec<(&str, pb::WriteRelationshipsRequest, Code, Option<&str>)> = vec![
        (
            "unknown type",
            write(vec![update(Touch, "folder:x#owner@user:bob")]),
            Code::FailedPrecondition,
            Some("ERROR_REASON_UNKNOWN_DEFINITION"),
        ),
        (
            "unknown relation",
            write(vec![update(Touch, "doc:new#nope@user:bob")]),
            Code::FailedPrecondition,
            Some("ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"),
        ),
        (
            "disallowed subject type",
            write(vec![update(Touch, "doc:new#owner@group:eng")]),
            Code::InvalidArgument,
            Some("ERROR_REASON_INVALID_SUBJECT_TYPE"),
        ),
        (
            "write to a permission",
            write(vec![update(Touch, "doc:new#view@user:bob")]),
            Code::InvalidArgument,
            Some("ERROR_REASON_CANNOT_UPDATE_PERMISSION"),
        ),
        (
            "create of a present relationship",
            write(vec![
                update(Touch, "doc:new#viewer@user:bob"),
                update(Create, "doc:kept#owner@user:alice"),
            ]),
            Code::AlreadyExists,
            Some("ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP"),
        ),
        (
            "same relationship twice",
            write(vec![
                update(Touch, "doc:new#viewer@user:bob"),
                update(Touch, "doc:new#viewer@user:bob"),
            ]),
            Code::InvalidArgument,
            Some("ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP"),
        ),
        (
            "too many updates",
            write(
                (0..4)
                    .map(|i| update(Touch, &format!("doc:n{i}#viewer@user:bob")))
                    .collect(),
            ),
            Code::InvalidArgument,
            Some("ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST"),
        ),
        (
            "failed precondition",
            pb::WriteRelationshipsRequest {
                updates: vec![update(Touch, "doc:new#viewer@user:bob")],
                optional_preconditions: vec![precondition("doc")],
                optional_transaction_metadata: None,
            },
            Code::FailedPrecondition,
            Some("ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE"),
        ),
        (
            "too many preconditions",
            pb::WriteRelationshipsRequest {
                updates: vec![update(Touch, "doc:new#viewer@user:bob")],
                optional_preconditions: vec![precondition("doc"), precondition("doc")],
                optional_transaction_metadata: None,
            },
            Code::InvalidArgument,
            Some("ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST"),
        ),
        (
            "caveat",
            write(vec![pb::RelationshipUpdate {
                operation: Touch as i32,
                relationship: Some(caveated),
            }]),
            Code::Unimplemented,
            None,
        ),
        (
            "expiration",
            write(vec![pb::RelationshipUpdate {
                operation: Touch as i32,
                relationship: Some(expiring),
            }]),
            Code::Unimplemented,
            None,
        ),
        (
            "malformed id",
            write(vec![update(Touch, "doc:bad id#viewer@user:bob")]),
            Code::InvalidArgument,
            None,
        ),
        (
            "unknown operation",
            write(vec![pb::RelationshipUpdate {
                operation: 99,
                relationship: Some(relationship("doc:new#viewer@user:bob")),
            }]),
            Code::InvalidArgument,
            None,
        ),
        (
            "missing relationship",
            write(vec![pb::RelationshipUpdate {
                operation: Touch as i32,
                relationship: None,
            }]),
            Code::InvalidArgument,
            None,
        ),
    ];
    for (name, request, code, expected_reason) in cases {
        let status = clients
            .permissions
            .write_relationships(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert_eq!(reason(&status).as_deref(), expected_reason, "{name}");
        assert!(!status.message().is_empty(), "{name}");
        assert_eq!(stored(&server), before, "{name} changed the store");
    }
    // A refused delete deletes nothing.
    let status = clients
        .permissions
        .delete_relationships(pb::DeleteRelationshipsRequest {
            relationship_filter: Some(pb::RelationshipFilter {
                resource_type: "doc".into(),
                ..Default::default()
            }),
            optional_preconditions: vec![precondition("doc")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(stored(&server), before);
    // Questions about unknown names are SpiceDB's FAILED_PRECONDITION too.
    let status = clients
        .permissions
        .check_permission(check_request("folder:x#view@user:bob", None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        reason(&status).as_deref(),
        Some("ERROR_REASON_UNKNOWN_DEFINITION")
    );
    let mut context = check_request("doc:kept#view@user:bob", None);
    context.context = Some(prost_types_struct());
    let status = clients
        .permissions
        .check_permission(context)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let status = clients
        .permissions
        .check_permission(pb::CheckPermissionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

fn prost_types_timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 2_000_000_000,
        nanos: 0,
    }
}

fn prost_types_struct() -> prost_types::Struct {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "ip".to_string(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("10.0.0.1".into())),
        },
    );
    prost_types::Struct { fields }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn oversized_messages_are_refused() {
    let server = TestServer::start_with(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    });
    let mut clients = clients(&server).await;
    let status = clients
        .schema
        .write_schema(pb::WriteSchemaRequest {
            schema: format!("definition user {{}}\n// {}", "x".repeat(4096)),
        })
        .await
        .unwrap_err();
    // SpiceDB (grpc-go) says RESOURCE_EXHAUSTED here, where tonic alone says OUT_OF_RANGE.
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("1024"), "{}", status.message());
}

mod reflection {
    //! Server reflection as `grpcurl` uses it: list the services, fetch the file that
    //! declares a symbol, then every file it imports, with no key and no proto files.

    use std::collections::{BTreeSet, VecDeque};

    use prost::Message as _;
    use tonic::transport::Channel;
    use tonic_reflection::pb::v1 as refl;
    use tonic_reflection::pb::v1alpha as refl_alpha;

    use crate::support::TestServer;

    use refl::server_reflection_request::MessageRequest;
    use refl::server_reflection_response::MessageResponse;

    async fn ask(channel: &Channel, request: MessageRequest) -> MessageResponse {
        try_ask(channel, request).await.unwrap()
    }

    async fn try_ask(
        channel: &Channel,
        request: MessageRequest,
    ) -> Result<MessageResponse, tonic::Status> {
        let mut client =
            refl::server_reflection_client::ServerReflectionClient::new(channel.clone());
        let request = refl::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await?.unwrap();
        Ok(answer.message_response.unwrap())
    }

    fn files(answer: MessageResponse) -> Vec<prost_types::FileDescriptorProto> {
        let MessageResponse::FileDescriptorResponse(found) = answer else {
            panic!("expected files, got {answer:?}");
        };
        found
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .collect()
    }

    const SERVICES: [&str; 6] = [
        "authzed.api.v1.PermissionsService",
        "authzed.api.v1.SchemaService",
        "authzed.api.v1.WatchService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn lists_and_describes_the_api_without_a_key() {
        let server = TestServer::start();
        let channel = Channel::from_shared(server.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let MessageResponse::ListServicesResponse(listed) =
            ask(&channel, MessageRequest::ListServices(String::new())).await
        else {
            panic!("expected a service list");
        };
        let names: BTreeSet<String> = listed.service.into_iter().map(|s| s.name).collect();
        assert_eq!(names, SERVICES.map(String::from).into(), "{names:?}");

        // The file declaring PermissionsService, then its imports one by one, as grpcurl
        // resolves them: every one must be served, down to Google's well-known types.
        let declaring = files(
            ask(
                &channel,
                MessageRequest::FileContainingSymbol("authzed.api.v1.PermissionsService".into()),
            )
            .await,
        );
        let service_file = declaring
            .iter()
            .find(|file| file.name() == "authzed/api/v1/permission_service.proto")
            .unwrap();
        let service = service_file
            .service
            .iter()
            .find(|s| s.name() == "PermissionsService")
            .unwrap();
        let methods: BTreeSet<&str> = service.method.iter().map(|m| m.name()).collect();
        for rpc in [
            "CheckPermission",
            "CheckBulkPermissions",
            "ExpandPermissionTree",
            "LookupResources",
            "LookupSubjects",
            "ReadRelationships",
            "WriteRelationships",
            "DeleteRelationships",
            "ImportBulkRelationships",
            "ExportBulkRelationships",
        ] {
            assert!(methods.contains(rpc), "{rpc} missing from {methods:?}");
        }
        let check = service
            .method
            .iter()
            .find(|m| m.name() == "CheckPermission")
            .unwrap();
        assert_eq!(check.input_type(), ".authzed.api.v1.CheckPermissionRequest");
        let request = service_file
            .message_type
            .iter()
            .find(|m| m.name() == "CheckPermissionRequest")
            .unwrap();
        let numbers: Vec<(&str, i32)> = request
            .field
            .iter()
            .map(|f| (f.name(), f.number()))
            .collect();
        assert_eq!(
            numbers.get(..4).unwrap(),
            [
                ("consistency", 1),
                ("resource", 2),
                ("permission", 3),
                ("subject", 4)
            ]
        );

        let mut seen: BTreeSet<String> = declaring.iter().map(|f| f.name().to_string()).collect();
        let mut wanted: VecDeque<String> = declaring
            .iter()
            .flat_map(|f| f.dependency.iter().cloned())
            .collect();
        while let Some(name) = wanted.pop_front() {
            if seen.contains(&name) {
                continue;
            }
            let found = files(ask(&channel, MessageRequest::FileByFilename(name.clone())).await);
            let file = found.iter().find(|f| f.name() == name).unwrap_or_else(|| {
                panic!("`{name}` was not served");
            });
            wanted.extend(file.dependency.iter().cloned());
            seen.insert(name);
        }
        for needed in [
            "authzed/api/v1/core.proto",
            "validate/validate.proto",
            "google/protobuf/struct.proto",
            "google/protobuf/timestamp.proto",
        ] {
            assert!(seen.contains(needed), "{needed} not among {seen:?}");
        }

        // tonic's reflection ends the stream with the status (grpcurl prints it).
        let unknown = try_ask(
            &channel,
            MessageRequest::FileContainingSymbol("authzed.api.v1.NoSuchService".into()),
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    }

    /// Older tools (and grpcurl before 1.9) speak only v1alpha.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn v1alpha_lists_the_same_services() {
        use refl_alpha::server_reflection_request::MessageRequest;
        use refl_alpha::server_reflection_response::MessageResponse;
        let server = TestServer::start();
        let channel = Channel::from_shared(server.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = refl_alpha::server_reflection_client::ServerReflectionClient::new(channel);
        let request = refl_alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let answer = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner()
            .message()
            .await
            .unwrap()
            .unwrap();
        let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
            panic!("expected a service list, got {answer:?}");
        };
        let names: BTreeSet<String> = listed.service.into_iter().map(|s| s.name).collect();
        assert_eq!(names, SERVICES.map(String::from).into(), "{names:?}");
    }
}

mod connections {
    //! The gRPC listener under the HTTP listener's connection caps: one overall cap and one
    //! per client address, counted over both listeners together, and the first-request
    //! timeout (HTTP/2's preface).

    use std::io::Write as _;
    use std::net::TcpStream;
    use std::time::Duration;

    use pemba_server::Limits;
    use tonic::transport::Channel;

    use crate::slow::read_until_closed;
    use crate::support::TestServer;

    /// A gRPC connection the server has admitted (a health check answered on it).
    async fn admitted(server: &TestServer) -> Result<Channel, String> {
        let channel = Channel::from_shared(server.grpc.clone())
            .unwrap()
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(channel)
    }

    /// A raw connection to the gRPC listener that has sent HTTP/2's preface (so it is
    /// past the first-request timeout and holds its place) and is closed when dropped.
    fn preface_only(server: &TestServer) -> TcpStream {
        let mut stream = TcpStream::connect(server.grpc.trim_start_matches("http://")).unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        stream
    }

    /// An HTTP/1.1 keep-alive connection with one request answered on it.
    fn http_connection(server: &TestServer) -> TcpStream {
        let mut stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = [0u8; 12];
        std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        stream
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_connections_count_in_the_http_cap() {
        let server = TestServer::start_with(Limits {
            max_connections: 2,
            ..Limits::default()
        });
        let grpc = preface_only(&server);
        let http = http_connection(&server);
        // A third connection, to either listener, waits in the backlog unanswered...
        let base = server.base.clone();
        let third = tokio::task::spawn_blocking(move || {
            let mut third = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            third
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let (early, _) = read_until_closed(&mut third, Duration::from_millis(500));
            (third, early)
        });
        let (mut third, early) = third.await.unwrap();
        assert!(early.is_empty(), "answered over the cap: {early}");
        // ...until the gRPC connection closes.
        drop(grpc);
        let late = tokio::task::spawn_blocking(move || {
            read_until_closed(&mut third, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(late.0.starts_with("HTTP/1.1 200"), "{late:?}");
        drop(http);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_per_client_cap_counts_both_listeners() {
        let server = TestServer::start_with(Limits {
            max_connections_per_client: 2,
            ..Limits::default()
        });
        let http = http_connection(&server);
        let grpc = admitted(&server).await.unwrap();
        // 127.0.0.1 has its two: a third connection is closed at once.
        let refused = admitted(&server).await;
        assert!(
            refused.is_err(),
            "a third connection from one address was served"
        );
        drop(http);
        let mut again = Err(String::new());
        for _ in 0..200 {
            again = admitted(&server).await;
            if again.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            again.is_ok(),
            "a closed connection did not free its place: {again:?}"
        );
        drop(grpc);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grpc_connection_that_sends_nothing_is_closed() {
        let server = TestServer::start_with(Limits {
            first_header_timeout: Duration::from_millis(200),
            ..Limits::default()
        });
        let address = server.grpc.trim_start_matches("http://").to_string();
        let (text, closed) = tokio::task::spawn_blocking(move || {
            let mut silent = TcpStream::connect(address).unwrap();
            read_until_closed(&mut silent, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(closed.is_some(), "a silent connection stayed open");
        assert!(text.is_empty(), "{text}");
        // A real client is still served.
        admitted(&server).await.unwrap();
    }
}

/// gRPC calls show in `/metrics` by method and status code, beside HTTP's.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn calls_are_counted_in_metrics_by_method_and_code() {
    let server = TestServer::start();
    let mut clients = with_schema(&server).await;
    clients
        .permissions
        .write_relationships(touch(&["doc:readme#owner@user:alice"]))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(allowed(&mut clients, "doc:readme#view@user:alice").await);
    }
    let unknown = clients
        .permissions
        .check_permission(check_request(
            "doc:readme#nosuch@user:alice",
            fully_consistent(),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    let mut missing = clients_with(&server, None).await;
    missing
        .schema
        .read_schema(pb::ReadSchemaRequest {})
        .await
        .unwrap_err();
    // A streamed call is counted when its trailers pass.
    let mut lookup = clients
        .permissions
        .lookup_resources(pb::LookupResourcesRequest {
            consistency: fully_consistent(),
            resource_object_type: "doc".into(),
            permission: "view".into(),
            subject: Some(subject("user:alice")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while lookup.message().await.unwrap().is_some() {}

    let (status, text) = server.get("/metrics", Some(KEY));
    assert_eq!(status, 200);
    let count = |method: &str, code: &str| -> u64 {
        let prefix = format!(
            "pemba_grpc_requests_total{{method=\"/authzed.api.v1.{method}\",code=\"{code}\"}} "
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.parse().unwrap())
    };
    assert_eq!(
        count("PermissionsService/CheckPermission", "OK"),
        3,
        "{text}"
    );
    assert_eq!(
        count("PermissionsService/CheckPermission", "FAILED_PRECONDITION"),
        1,
        "{text}"
    );
    assert_eq!(
        count("SchemaService/ReadSchema", "UNAUTHENTICATED"),
        1,
        "{text}"
    );
    assert_eq!(count("SchemaService/WriteSchema", "OK"), 1, "{text}");
    assert_eq!(
        count("PermissionsService/LookupResources", "OK"),
        1,
        "{text}"
    );
    assert!(
        text.contains(
            "pemba_grpc_request_duration_seconds_count{method=\"/authzed.api.v1.PermissionsService/CheckPermission\"} 4"
        ),
        "{text}"
    );
}
