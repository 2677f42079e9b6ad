//! End-to-end tests: the real server on `127.0.0.1:0`, driven over HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside `#[test]` fail by panicking, with the panic's location"
)]

mod api;
mod bench;
mod cli;
mod concurrency;
mod console;
mod crash;
mod groups;
mod grpc;
mod hostile;
mod import_crash;
mod process;
mod readme;
mod replica_faults;
mod replicas;
mod slow;
mod support;
mod tls;
mod wire;
