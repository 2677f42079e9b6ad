//! A loop of random checks for instruction counts: opens a store, reads a workload's
//! `checks.txt` and asks its first 4,096 checks in turn (as criterion's
//! `check/random_from_checks_txt`), then prints how many were allowed.
//!
//! ```sh
//! cargo build --release -p pemba-engine --example randcheck
//! valgrind --tool=callgrind --toggle-collect='randcheck::run_loop' \
//!     target/release/examples/randcheck STORE_DIR m/checks.txt 200000
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: a bad argument stops it with its location"
)]

use std::hint::black_box;

use pemba_engine::{CheckArgs, Consistency, Engine, Tuple};

/// The checks asked; collection is toggled on inside this function only.
#[inline(never)]
fn run_loop(engine: &Engine, checks: &[Tuple], rounds: usize) -> usize {
    let mut allowed = 0;
    for i in 0..rounds {
        let check = &checks[i % checks.len()];
        let args = CheckArgs::new(&check.resource, &check.relation, &check.subject);
        if engine
            .check(Consistency::MinimizeLatency, black_box(args))
            .expect("check")
            .value
        {
            allowed += 1;
        }
    }
    allowed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, checks, rounds] = &args[..] else {
        panic!("usage: randcheck STORE_DIR CHECKS_TXT ROUNDS");
    };
    let engine = Engine::open(&std::path::Path::new(store).join("pemba.redb")).expect("open");
    let text = std::fs::read_to_string(checks).expect("checks.txt");
    let checks: Vec<Tuple> = text
        .lines()
        .take(4096)
        .map(|line| Tuple::parse(line.split(' ').next().expect("check")).expect("check"))
        .collect();
    let rounds: usize = rounds.parse().expect("rounds");
    let started = std::time::Instant::now();
    let allowed = run_loop(&engine, &checks, rounds);
    let took = started.elapsed();
    println!(
        "{rounds} checks, {allowed} allowed, {:.0} ns each",
        took.as_nanos() as f64 / rounds as f64
    );
}
