//! Where the memory of an opened store goes: live heap bytes (a counting global allocator)
//! added by `Engine::open`, split into the index and the rest (mostly redb's page cache).
//! Its own binary, so the counting allocator's atomic per allocation stays out of the
//! latency benchmarks in `benches/engine.rs`.
//!
//! `PEMBA_BENCH_SIZES=m cargo bench --bench memory` (default `s,m`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark code: a setup step that fails stops the run with its location"
)]

use std::time::Instant;

use pemba::workload::{self, Size};
use pemba_engine::{Engine, Tuple, Update};

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

fn main() {
    for size in workload::bench_sizes("s,m").unwrap_or_else(|e| panic!("{e}")) {
        measure(size);
    }
}

fn measure(size: Size) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("memory.redb");
    {
        let model = workload::generate(size, 1, |_| {});
        let mut tuples = Vec::new();
        model.for_each_tuple(|t| tuples.push(Tuple::parse(&t.to_string()).expect("tuple")));
        let engine = Engine::open(&path).expect("open");
        engine.write_schema(workload::SCHEMA).expect("schema");
        for chunk in tuples.chunks(10_000) {
            let updates: Vec<Update> = chunk.iter().map(|t| Update::touch(t.clone())).collect();
            engine.write(updates, &[]).expect("import");
        }
    }
    let before = ALLOC.allocated();
    let started = Instant::now();
    let engine = Engine::open(&path).expect("reopen");
    let took = started.elapsed();
    let count = engine.relationship_count().max(1);
    let growth = ALLOC.allocated().saturating_sub(before) as u64;
    let index = engine.index_heap_bytes() as u64;
    println!(
        "[{size}] opened {count} relationships in {took:.2?}: heap growth {} B/relationship \
         = index {} B + the rest (mostly redb's page cache) {} B",
        growth / count,
        index / count,
        growth.saturating_sub(index) / count
    );
}
