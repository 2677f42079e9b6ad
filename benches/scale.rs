//! How the engine's cost grows with the store: for each workload size, the in-process
//! import rate, the open time and the index's heap per relationship, then per-call latency
//! percentiles (p50, p99) of the named checks, random checks across the whole store (one
//! at a time, and per item of bulk checks of 100), and lookups of a typical and of the heaviest subject in both directions. Criterion reports
//! a mean per benchmark, not percentiles, so this binary times every call itself and
//! records it in an HDR histogram; it prints one Markdown table row per size.
//!
//! `PEMBA_BENCH_SIZES=xs,s,m,l,xl cargo bench --bench scale` (default `s,m`). With
//! `PEMBA_SCALE_DIR=DIR`, each size's store is kept as `DIR/SIZE.redb` and reused by the
//! next run (its import is then not measured again), so the large sizes are built once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code: a setup step that fails stops the run with its location"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pemba::workload::{self, Size, Workload};
use pemba_engine::{
    CheckRequest, Consistency, Engine, ObjectRef, Page, RawTuple, ResourceLookup, SubjectLookup,
    SubjectRef, Tuple,
};

const SEED: u64 = 1;
const AT: Consistency = Consistency::MinimizeLatency;
/// Distinct random checks drawn from the model, cycled through eight times. Their lines
/// (about 25 MB) do not all fit a 32 MiB L3 beside everything else, but many stay there
/// from one pass to the next; `PEMBA_SCALE_RANDOM_CHECKS=N` asks N distinct checks
/// instead (each asked eight times), so that at 1M or more almost every check starts cold.
const RANDOM_CHECKS: usize = 65_536;

/// Items per bulk check in the bulk column.
const BULK: usize = 100;

fn random_checks() -> usize {
    std::env::var("PEMBA_SCALE_RANDOM_CHECKS")
        .ok()
        .map_or(RANDOM_CHECKS, |n| {
            n.parse()
                .unwrap_or_else(|_| panic!("PEMBA_SCALE_RANDOM_CHECKS: not a count: {n}"))
        })
}

fn main() {
    let keep = std::env::var_os("PEMBA_SCALE_DIR").map(PathBuf::from);
    println!(
        "| size | relationships | import (Engine::import) | open | index heap / relationship \
         | check named p50 / p99 | check random p50 / p99 | bulk random per item p50 / p99 | lookup resources typical p50 / p99 \
         | lookup resources heaviest p50 / p99 (results) | lookup subjects typical p50 / p99 \
         | lookup subjects most shared p50 / p99 (results) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in workload::bench_sizes("s,m").unwrap_or_else(|e| panic!("{e}")) {
        measure(size, keep.as_deref());
    }
    println!(
        "(timer overhead per sample, p50 of an empty timed call: {})",
        show(&timer_overhead())
    );
}

fn measure(size: Size, keep: Option<&Path>) {
    let model = workload::generate(size, SEED, |_| {});
    let temp = tempfile::tempdir().expect("temp dir");
    let path = keep.map_or_else(
        || temp.path().join("scale.redb"),
        |dir| {
            std::fs::create_dir_all(dir).expect("PEMBA_SCALE_DIR");
            dir.join(format!("{size}.redb"))
        },
    );
    let import = if path.exists() {
        "(kept store)".to_string()
    } else {
        import_into(&path, &model)
    };
    let started = Instant::now();
    let engine = Engine::open(&path).expect("open");
    let open = started.elapsed();
    let count = engine.relationship_count().max(1);
    let heap = engine.index_heap_bytes() as u64 / count;

    let probes = workload::probes(&model).expect("probes");
    let named: Vec<CheckRequest> = probes
        .checks
        .iter()
        .map(|c| request(&c.resource, c.permission, &c.subject))
        .collect();
    for (check, probe) in named.iter().zip(&probes.checks) {
        let answer = engine.check(AT, check.args()).expect("check").value;
        assert_eq!(answer, probe.name.starts_with("allowed"), "{}", probe.name);
    }
    let random_count = random_checks();
    let random: Vec<CheckRequest> = workload::checks(&model, SEED, random_count)
        .iter()
        .map(|c| request(&c.resource, &c.permission, &c.subject))
        .collect();
    drop(model);

    let named_h = sample(named.len() * 100_000, |i| {
        let c = &named[i % named.len()];
        black_box(engine.check(AT, c.args()).is_ok());
    });
    let random_h = sample(random_count * 8, |i| {
        let c = &random[i % random.len()];
        black_box(engine.check(AT, c.args()).is_ok());
    });
    // The same checks asked 100 at a time, in order, as a bulk request asks them; timed
    // per request and shown per item.
    let bulk = BULK.min(random.len());
    let bulk_h = sample(random_count * 8 / bulk, |i| {
        let at = i * bulk % (random.len() - bulk + 1);
        let items = random[at..at + bulk].iter().map(CheckRequest::args);
        black_box(engine.check_bulk(AT, items).is_ok());
    });
    let resources = |who: &str, calls: usize| {
        let subject = SubjectRef::parse(who).expect("subject");
        let lookup = ResourceLookup {
            resource_type: "connection",
            permission: "use",
            subject: &subject,
            page: Page::default(),
        };
        let found = engine
            .lookup_resources(AT, &lookup)
            .expect("lookup")
            .value
            .len();
        let h = sample(calls, |_| {
            black_box(engine.lookup_resources(AT, &lookup).is_ok());
        });
        (h, found)
    };
    let subjects = |what: &str, calls: usize| {
        let resource = ObjectRef::parse(what).expect("resource");
        let lookup = SubjectLookup {
            resource: &resource,
            permission: "use",
            subject_type: "user",
            subject_relation: None,
            page: Page::default(),
        };
        let found = engine
            .lookup_subjects(AT, &lookup)
            .expect("lookup")
            .value
            .len();
        let h = sample(calls, |_| {
            black_box(engine.lookup_subjects(AT, &lookup).is_ok());
        });
        (h, found)
    };
    let (typical_r, _) = resources(&probes.typical_user, 50_000);
    let (heaviest_r, heaviest_found) = resources(&probes.heaviest_user, 2_000);
    let (typical_s, _) = subjects(&probes.typical_connection, 50_000);
    let (shared_s, shared_found) = subjects(&probes.most_shared_connection, 20_000);
    println!(
        "| {size} | {count} | {import} | {open:.2?} | {heap} B | {} | {} | {} | {} | {} ({heaviest_found}) | {} | {} ({shared_found}) |",
        show(&named_h),
        show(&random_h),
        show_per(&bulk_h, bulk as u64),
        show(&typical_r),
        show(&heaviest_r),
        show(&typical_s),
        show(&shared_s),
    );
}

/// Builds the store through the bulk-load path, batches of 100,000 as `pemba import
/// --data-dir`, and says how fast that went.
fn import_into(path: &Path, model: &Workload) -> String {
    let mut tuples = Vec::with_capacity(model.tuple_count());
    model.for_each_tuple(|t| tuples.push(Tuple::parse(&t.to_string()).expect("generated tuple")));
    let raws: Vec<RawTuple<'_>> = tuples.iter().map(RawTuple::of).collect();
    let engine = Engine::open(path).expect("open");
    engine.write_schema(workload::SCHEMA).expect("schema");
    let started = Instant::now();
    engine.import(&raws, 100_000, &mut |_| {}).expect("import");
    let took = started.elapsed();
    format!(
        "{:.0}k/s ({took:.2?})",
        raws.len() as f64 / took.as_secs_f64() / 1000.0
    )
}

fn request(resource: &str, permission: &str, subject: &str) -> CheckRequest {
    CheckRequest {
        resource: ObjectRef::parse(resource).expect("resource"),
        permission: permission.to_string(),
        subject: SubjectRef::parse(subject).expect("subject"),
    }
}

/// Times `calls` calls of `f` one by one, after a warm-up of a tenth as many.
fn sample(calls: usize, mut f: impl FnMut(usize)) -> Histogram<u64> {
    for i in 0..calls / 10 {
        f(i);
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for i in 0..calls {
        let started = Instant::now();
        f(i);
        h.saturating_record(started.elapsed().as_nanos() as u64);
    }
    h
}

fn timer_overhead() -> Histogram<u64> {
    sample(1_000_000, |i| {
        black_box(i);
    })
}

fn show(h: &Histogram<u64>) -> String {
    show_per(h, 1)
}

/// [`show`] for samples that each timed `items` items: per item.
fn show_per(h: &Histogram<u64>, items: u64) -> String {
    let p = |q| Duration::from_nanos(h.value_at_quantile(q) / items);
    format!("{:.2?} / {:.2?}", p(0.5), p(0.99))
}
