//! Generates the tonic server traits of SpiceDB's `authzed.api.v1` services.
//!
//! The message types come from `spicedb-rs-proto` (prost types generated from SpiceDB's
//! published protos), which ships client stubs only. tonic-build's manual service builder
//! writes the matching server side over those same types, so no `protoc` and no `.proto`
//! files are needed here, and the server can only ever speak the messages the client
//! crate speaks (CheckBulkPermissions' are its encoded bytes, read in place, `src/grpc/bulk.rs`).
//!
//! Server reflection needs the services' descriptors as well, which the crate does not
//! export: `proto/` holds a copy of the `.proto` files it ships (the `authzed.api.v1`
//! services and what they import; a test in `grpc/reflection.rs` compares the copy with
//! the crate's), compiled here into an encoded `FileDescriptorSet` by `protox`, a
//! pure-Rust protobuf compiler, so no `protoc` is needed for this either.

use tonic_build::manual::{Method, Service};

/// One RPC: its Rust method name, its wire name, its message types (in
/// `spicedb_rs_proto::authzed::api::v1`) and whether either side streams.
struct Rpc {
    name: &'static str,
    route: &'static str,
    input: &'static str,
    output: &'static str,
    client_streaming: bool,
    server_streaming: bool,
}

const fn unary(name: &'static str, route: &'static str, message: &'static str) -> Rpc {
    Rpc {
        name,
        route,
        input: message,
        output: message,
        client_streaming: false,
        server_streaming: false,
    }
}

impl Rpc {
    const fn server_streaming(mut self) -> Self {
        self.server_streaming = true;
        self
    }

    const fn client_streaming(mut self) -> Self {
        self.client_streaming = true;
        self
    }
}

/// The Rust type of message `NAME{suffix}`: `spicedb-rs-proto`'s, except CheckBulkPermissions',
/// which src/grpc/bulk.rs declares as the encoded request and answer, read and written in place.
fn message_type(name: &str, suffix: &str) -> String {
    if name == "CheckBulkPermissions" {
        format!("crate::grpc::bulk::Bulk{suffix}")
    } else {
        format!("spicedb_rs_proto::authzed::api::v1::{name}{suffix}")
    }
}

fn service(name: &str, rpcs: &[Rpc]) -> Service {
    let mut builder = Service::builder().name(name).package("authzed.api.v1");
    for rpc in rpcs {
        let mut method = Method::builder()
            .name(rpc.name)
            .route_name(rpc.route)
            .input_type(message_type(rpc.input, "Request"))
            .output_type(message_type(rpc.output, "Response"))
            .codec_path(match rpc.route {
                // Buffers sized for its small messages (src/grpc/codec.rs).
                "CheckPermission" => "crate::grpc::codec::SmallCodec",
                // Strings as slices of the request (src/grpc/bulk.rs).
                "CheckBulkPermissions" => "crate::grpc::bulk::BulkCodec",
                _ => "tonic_prost::ProstCodec",
            });
        if rpc.client_streaming {
            method = method.client_streaming();
        }
        if rpc.server_streaming {
            method = method.server_streaming();
        }
        builder = builder.method(method.build());
    }
    builder.build()
}

/// The files whose services and messages reflection describes; their imports come along.
const DESCRIBED: &[&str] = &[
    "authzed/api/v1/permission_service.proto",
    "authzed/api/v1/schema_service.proto",
    "authzed/api/v1/watch_service.proto",
    "authzed/api/v1/error_reason.proto",
];

/// Compiles [`DESCRIBED`] (with every import, Google's well-known types included) into
/// `OUT_DIR/authzed_api_v1.bin`.
fn descriptors() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_files(DESCRIBED)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("authzed_api_v1.bin");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    descriptors()?;
    let permissions = service(
        "PermissionsService",
        &[
            unary(
                "read_relationships",
                "ReadRelationships",
                "ReadRelationships",
            )
            .server_streaming(),
            unary(
                "write_relationships",
                "WriteRelationships",
                "WriteRelationships",
            ),
            unary(
                "delete_relationships",
                "DeleteRelationships",
                "DeleteRelationships",
            ),
            unary("check_permission", "CheckPermission", "CheckPermission"),
            unary(
                "check_bulk_permissions",
                "CheckBulkPermissions",
                "CheckBulkPermissions",
            ),
            unary(
                "expand_permission_tree",
                "ExpandPermissionTree",
                "ExpandPermissionTree",
            ),
            unary("lookup_resources", "LookupResources", "LookupResources").server_streaming(),
            unary("lookup_subjects", "LookupSubjects", "LookupSubjects").server_streaming(),
            unary(
                "import_bulk_relationships",
                "ImportBulkRelationships",
                "ImportBulkRelationships",
            )
            .client_streaming(),
            unary(
                "export_bulk_relationships",
                "ExportBulkRelationships",
                "ExportBulkRelationships",
            )
            .server_streaming(),
        ],
    );
    // ReflectSchema, DiffSchema, ComputablePermissions and DependentRelations are left
    // out, so the generated router answers them UNIMPLEMENTED.
    let schema = service(
        "SchemaService",
        &[
            unary("read_schema", "ReadSchema", "ReadSchema"),
            unary("write_schema", "WriteSchema", "WriteSchema"),
        ],
    );
    let watch = service(
        "WatchService",
        &[unary("watch", "Watch", "Watch").server_streaming()],
    );
    tonic_build::manual::Builder::new()
        .build_client(false)
        .compile(&[permissions, schema, watch]);
    Ok(())
}
