//! gRPC server reflection (`grpc.reflection.v1` and the older `v1alpha` that many tools
//! still ask first), so `grpcurl`, `grpcui` and Postman list and call the API without
//! proto files. It describes what the server serves: the three `authzed.api.v1` services
//! (with every message they use) and `grpc.health.v1`.
//!
//! Like SpiceDB (authzed's `grpcutil` registers reflection without auth), it needs no
//! key: it tells only the public shape of the API.

use tonic_reflection::server::{v1, v1alpha, Builder, Error};

/// The encoded `FileDescriptorSet` `build.rs` compiles from `server/proto` with `protox`:
/// `authzed.api.v1`'s services, messages and error reasons, with every import.
pub const AUTHZED_API_V1: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/authzed_api_v1.bin"));

fn builder() -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(AUTHZED_API_V1)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("authzed.api.v1.PermissionsService")
        .with_service_name("authzed.api.v1.SchemaService")
        .with_service_name("authzed.api.v1.WatchService")
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
}

/// The `grpc.reflection.v1` service. Fails only if the compiled descriptors are malformed,
/// which the tests below rule out for the ones built in.
pub fn v1() -> Result<v1::ServerReflectionServer<impl v1::ServerReflection>, Error> {
    builder().build_v1()
}

/// The `grpc.reflection.v1alpha` service, over the same descriptors.
pub fn v1alpha() -> Result<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>, Error> {
    builder().build_v1alpha()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use prost::Message as _;

    use super::*;

    #[test]
    fn the_descriptors_build_into_both_services() {
        v1().unwrap();
        v1alpha().unwrap();
        let set = prost_types::FileDescriptorSet::decode(AUTHZED_API_V1).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .filter(|file| file.package() == "authzed.api.v1")
            .flat_map(|file| file.service.iter().map(|s| s.name().to_string()))
            .collect();
        assert_eq!(
            services,
            ["PermissionsService", "SchemaService", "WatchService"],
            "{services:?}"
        );
    }

    /// The pinned `spicedb-rs-proto` version, read from this crate's manifest so the
    /// comparison below follows the pin.
    fn pinned_version() -> String {
        let manifest = include_str!("../../Cargo.toml");
        let line = manifest
            .lines()
            .find(|line| line.starts_with("spicedb-rs-proto = \"="))
            .expect("server/Cargo.toml pins spicedb-rs-proto with `=`");
        line.trim_start_matches("spicedb-rs-proto = \"=")
            .trim_end_matches('"')
            .to_string()
    }

    fn cargo_home() -> PathBuf {
        std::env::var_os("CARGO_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cargo"),
            PathBuf::from,
        )
    }

    fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(root, &path, out);
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }

    /// Reflection must describe exactly the messages the server decodes, so `proto/` must
    /// be a byte-for-byte copy of the files the pinned `spicedb-rs-proto` generated its
    /// types from. Cargo unpacks that crate's source (the `.proto` files included) under
    /// `CARGO_HOME/registry/src/` to build it, so it is there whenever this test builds.
    #[test]
    fn the_proto_copy_matches_the_pinned_crate() {
        let crate_dir = format!("spicedb-rs-proto-{}", pinned_version());
        let registry = cargo_home().join("registry").join("src");
        let upstream = std::fs::read_dir(&registry)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", registry.display()))
            .map(|index| index.unwrap().path().join(&crate_dir).join("proto"))
            .find(|proto| proto.is_dir())
            .unwrap_or_else(|| panic!("no `{crate_dir}/proto` under `{}`", registry.display()));
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let mut files = Vec::new();
        files_under(&ours, &ours, &mut files);
        assert!(files.len() >= 10, "{files:?}");
        for file in files {
            let mine = std::fs::read(ours.join(&file)).unwrap();
            let theirs = std::fs::read(upstream.join(&file))
                .unwrap_or_else(|e| panic!("`{}` is not in the crate: {e}", file.display()));
            assert!(
                mine == theirs,
                "server/proto/{} differs from {}",
                file.display(),
                upstream.join(&file).display()
            );
        }
    }
}
