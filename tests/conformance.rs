//! SpiceDB's validation files run entirely over HTTP, each as its own test case: schema
//! write, relationships write, every assertion through `/v1/permissions/check`; and again
//! over the gRPC API (`spicedb_over_grpc::*`), through the tonic clients of
//! `spicedb-rs-proto`: WriteSchema, WriteRelationships, CheckPermission.
//!
//! Harness-less (libtest-mimic), like `engine/tests/conformance.rs`: with
//! `PEMBA_CONFORMANCE_DIR` unset there is one case, ignored with the reason; with it set,
//! one case per `.yaml` file, and a folder that cannot be read or holds no files fails. A
//! file the engine cannot load or does not pass in-process is ignored here with the
//! reason: that is the engine tests' failure, not the HTTP layer's.

use std::path::Path;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

#[path = "shared/corpus.rs"]
mod corpus;
use serde_json::{json, Value};

#[path = "it/support.rs"]
#[allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "shared with tests/it, whose other helpers this target does not use; test \
              helpers fail by panicking, which fails the case"
)]
mod support;

use pb::permissions_service_client::PermissionsServiceClient;
use pb::schema_service_client::SchemaServiceClient;
use spicedb_rs_proto::authzed::api::v1 as pb;
use support::{rel, split_check, TestServer};

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

/// Two cases per file (HTTP, gRPC), or the one ignored or failing case that stands for them.
fn trials() -> Vec<Trial> {
    match corpus::files("spicedb_over_http", "to run them over HTTP and gRPC", 1) {
        Ok(files) => files
            .into_iter()
            .flat_map(|path| {
                let grpc_path = path.clone();
                [
                    Trial::ignorable_test(
                        corpus::case_name("spicedb_over_http", &path),
                        move || run_file(&path),
                    ),
                    Trial::ignorable_test(
                        corpus::case_name("spicedb_over_grpc", &grpc_path),
                        move || run_file_over_grpc(&grpc_path),
                    ),
                ]
            })
            .collect(),
        Err(stand_in) => vec![stand_in],
    }
}

/// A validation file the engine loads and passes in-process, or why the case is ignored.
fn passing_file(
    path: &Path,
) -> Result<Result<pemba_engine::validation_file::ValidationFile, Completion>, Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let Ok(file) = pemba_engine::validation_file::parse(&text) else {
        return Ok(Err(Completion::ignored_with(
            "uses something the engine does not support",
        )));
    };
    match pemba_engine::validation_file::run(&file, &text) {
        Ok(outcome) if outcome.passed() => Ok(Ok(file)),
        _ => Ok(Err(Completion::ignored_with("not passed in-process"))),
    }
}

fn to_object(object: &pemba_engine::ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object.object_type.clone(),
        object_id: object.object_id.clone(),
    }
}

fn to_subject(subject: &pemba_engine::SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(to_object(&subject.object)),
        optional_relation: subject.relation.clone().unwrap_or_default(),
    }
}

/// Loads one file into a fresh server over gRPC and checks every assertion over gRPC.
#[expect(
    clippy::unwrap_used,
    reason = "a failed call fails the case; libtest-mimic reports the panic as the failure"
)]
fn run_file_over_grpc(path: &Path) -> Result<Completion, Failed> {
    let file = match passing_file(path)? {
        Ok(file) => file,
        Err(ignored) => return Ok(ignored),
    };
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let wrong = runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let key: tonic::metadata::MetadataValue<_> =
            format!("Bearer {}", support::KEY).parse().unwrap();
        let auth = move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", key.clone());
            Ok(request)
        };
        let mut schema = SchemaServiceClient::with_interceptor(channel.clone(), auth.clone());
        let mut permissions = PermissionsServiceClient::with_interceptor(channel, auth);
        schema
            .write_schema(pb::WriteSchemaRequest {
                schema: file.schema.clone(),
            })
            .await
            .unwrap();
        let tuples: Vec<pemba_engine::Tuple> = file
            .relationships
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| pemba_engine::Tuple::parse(l).unwrap())
            .collect();
        for chunk in tuples.chunks(1000) {
            let updates = chunk
                .iter()
                .map(|t| pb::RelationshipUpdate {
                    operation: pb::relationship_update::Operation::Touch as i32,
                    relationship: Some(pb::Relationship {
                        resource: Some(to_object(&t.resource)),
                        relation: t.relation.clone(),
                        subject: Some(to_subject(&t.subject)),
                        optional_caveat: None,
                        optional_expires_at: None,
                    }),
                })
                .collect();
            permissions
                .write_relationships(pb::WriteRelationshipsRequest {
                    updates,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let mut wrong = Vec::new();
        for (expected, list) in [(true, &file.assert_true), (false, &file.assert_false)] {
            for assertion in list {
                let check = pemba_engine::Tuple::parse(assertion.trim()).unwrap();
                let answer = permissions
                    .check_permission(pb::CheckPermissionRequest {
                        consistency: Some(pb::Consistency {
                            requirement: Some(pb::consistency::Requirement::FullyConsistent(true)),
                        }),
                        resource: Some(to_object(&check.resource)),
                        permission: check.relation.clone(),
                        subject: Some(to_subject(&check.subject)),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let allowed = answer.permissionship
                    == pb::check_permission_response::Permissionship::HasPermission as i32;
                if allowed != expected {
                    wrong.push(format!("`{assertion}`: expected {expected}, got {allowed}"));
                }
            }
        }
        wrong
    });
    drop(runtime);
    if !wrong.is_empty() {
        return Err(format!(
            "{}: {} wrong answers over gRPC:\n{}",
            path.display(),
            wrong.len(),
            wrong.join("\n")
        )
        .into());
    }
    Ok(Completion::Completed)
}

/// Loads one file into a fresh server and checks every assertion over HTTP; each wrong
/// answer is reported.
fn run_file(path: &Path) -> Result<Completion, Failed> {
    let file = match passing_file(path)? {
        Ok(file) => file,
        Err(ignored) => return Ok(ignored),
    };
    let server = TestServer::start();
    server.ok("/v1/schema/write", json!({ "schema": file.schema }));
    let relationships: Vec<Value> = file
        .relationships
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(rel)
        .collect();
    for chunk in relationships.chunks(1000) {
        let updates: Vec<Value> = chunk
            .iter()
            .map(|r| json!({ "operation": "OPERATION_TOUCH", "relationship": r }))
            .collect();
        server.ok("/v1/relationships/write", json!({ "updates": updates }));
    }
    let mut wrong = Vec::new();
    for (expected, list) in [(true, &file.assert_true), (false, &file.assert_false)] {
        for assertion in list {
            let (resource, permission, subject) = split_check(assertion.trim());
            let answer = server.ok(
                "/v1/permissions/check",
                json!({
                    "consistency": { "fullyConsistent": true },
                    "resource": resource,
                    "permission": permission,
                    "subject": subject,
                }),
            );
            let allowed = answer.get("permissionship").and_then(Value::as_str)
                == Some("PERMISSIONSHIP_HAS_PERMISSION");
            if allowed != expected {
                wrong.push(format!("`{assertion}`: expected {expected}, got {allowed}"));
            }
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{}: {} wrong answers over HTTP:\n{}",
            path.display(),
            wrong.len(),
            wrong.join("\n")
        )
        .into());
    }
    Ok(Completion::Completed)
}
