//! Library side of the `pemba` binary: pieces shared by the CLI, the benchmarks and the
//! end-to-end tests.

pub mod bench;
pub mod cli;
pub mod client;
pub mod workload;
