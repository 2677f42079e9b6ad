//! In-process benchmarks of the engine on generated user-groups stores: one criterion group
//! per question (check, bulk check, lookups, writes, import, open), each on the s and m
//! workloads (`PEMBA_BENCH_SIZES=xs,s,m` to choose), built once per run.

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

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pemba::workload::{self, Size, Workload};
use pemba_engine::{
    CheckArgs, CheckRequest, Consistency, Engine, ObjectRef, Page, RawTuple, ResourceLookup,
    SubjectLookup, SubjectRef, Tuple, Update,
};

const SEED: u64 = 1;
const AT: Consistency = Consistency::MinimizeLatency;

struct Store {
    size: Size,
    model: Workload,
    engine: Engine,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn sizes() -> Vec<Size> {
    workload::bench_sizes("s,m").unwrap_or_else(|e| panic!("{e}"))
}

fn tuples(model: &Workload) -> Vec<Tuple> {
    let mut tuples = Vec::new();
    model.for_each_tuple(|t| tuples.push(Tuple::parse(&t.to_string()).expect("generated tuple")));
    tuples
}

fn import(engine: &Engine, tuples: &[Tuple]) {
    for chunk in tuples.chunks(10_000) {
        let updates: Vec<Update> = chunk.iter().map(|t| Update::touch(t.clone())).collect();
        engine.write(updates, &[]).expect("import");
    }
}

/// The bulk-load path (`Engine::import`), batches of 100,000 as `pemba import --data-dir`.
fn bulk_import(engine: &Engine, tuples: &[Tuple]) {
    let raws: Vec<RawTuple<'_>> = tuples.iter().map(RawTuple::of).collect();
    engine.import(&raws, 100_000, &mut |_| {}).expect("import");
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn build(size: Size) -> Store {
    let model = workload::generate(size, SEED, |_| {});
    let all = tuples(&model);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.redb");
    {
        let engine = Engine::open(&path).expect("open");
        engine.write_schema(workload::SCHEMA).expect("schema");
        let started = Instant::now();
        bulk_import(&engine, &all);
        let took = started.elapsed();
        eprintln!(
            "[{size}] imported {} relationships in {:.2?} ({:.0}/s, Engine::import, batches of 100 000)",
            all.len(),
            took,
            all.len() as f64 / took.as_secs_f64()
        );
    }
    drop(all);
    let before = resident_bytes();
    let started = Instant::now();
    let engine = Engine::open(&path).expect("reopen");
    let took = started.elapsed();
    let count = engine.relationship_count().max(1);
    eprintln!(
        "[{size}] opened {count} relationships in {took:.2?}; index heap {} B/relationship, resident growth {} B/relationship",
        engine.index_heap_bytes() as u64 / count,
        resident_bytes().saturating_sub(before) / count
    );
    Store {
        size,
        model,
        engine,
        path,
        _dir: dir,
    }
}

fn stores() -> &'static [Store] {
    static STORES: std::sync::OnceLock<Vec<Store>> = std::sync::OnceLock::new();
    STORES.get_or_init(|| sizes().into_iter().map(build).collect())
}

/// The named checks of [`workload::probes`]: (name, resource, permission, subject).
fn example_checks(model: &Workload) -> Vec<(&'static str, ObjectRef, &'static str, SubjectRef)> {
    workload::probes(model)
        .expect("probes")
        .checks
        .into_iter()
        .map(|c| {
            (
                c.name,
                ObjectRef::parse(&c.resource).expect("resource"),
                c.permission,
                SubjectRef::parse(&c.subject).expect("subject"),
            )
        })
        .collect()
}

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    for store in stores() {
        for (name, resource, permission, subject) in example_checks(&store.model) {
            let expected = store
                .engine
                .check(AT, CheckArgs::new(&resource, permission, &subject))
                .expect("check")
                .value;
            assert_eq!(expected, name.starts_with("allowed"), "{name}");
            group.bench_function(BenchmarkId::new(name, store.size), |b| {
                b.iter(|| {
                    store.engine.check(
                        AT,
                        CheckArgs::new(black_box(&resource), permission, black_box(&subject)),
                    )
                })
            });
        }
        // Random checks across the whole store: the cache-unfriendly case.
        let checks: Vec<CheckRequest> = workload::checks(&store.model, SEED, 4096)
            .into_iter()
            .map(|c| CheckRequest {
                resource: ObjectRef::parse(&c.resource).expect("resource"),
                permission: c.permission,
                subject: SubjectRef::parse(&c.subject).expect("subject"),
            })
            .collect();
        let mut i = 0;
        group.bench_function(
            BenchmarkId::new("random_from_checks_txt", store.size),
            |b| {
                b.iter(|| {
                    let c = &checks[i % checks.len()];
                    i += 1;
                    store.engine.check(AT, c.args())
                })
            },
        );
    }
    group.finish();
}

fn bench_check_bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_bulk");
    for store in stores() {
        let items: Vec<CheckRequest> = workload::checks(&store.model, SEED, 100)
            .into_iter()
            .map(|c| CheckRequest {
                resource: ObjectRef::parse(&c.resource).expect("resource"),
                permission: c.permission,
                subject: SubjectRef::parse(&c.subject).expect("subject"),
            })
            .collect();
        group.throughput(Throughput::Elements(items.len() as u64));
        group.bench_function(BenchmarkId::new("100_items", store.size), |b| {
            b.iter(|| {
                store
                    .engine
                    .check_bulk(AT, black_box(&items).iter().map(CheckRequest::args))
            })
        });
    }
    group.finish();
}

fn bench_lookup_resources(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup_resources");
    for store in stores() {
        let probes = workload::probes(&store.model).expect("probes");
        let typical = SubjectRef::parse(&probes.typical_user).expect("typical user");
        let heaviest = SubjectRef::parse(&probes.heaviest_user).expect("heaviest user");
        for (name, subject) in [("typical_user", typical), ("heaviest_user", heaviest)] {
            let lookup = |subject| ResourceLookup {
                resource_type: "connection",
                permission: "use",
                subject,
                page: Page::default(),
            };
            let found = store
                .engine
                .lookup_resources(AT, &lookup(&subject))
                .expect("lookup");
            eprintln!(
                "[{}] lookup_resources {name}: {} connections",
                store.size,
                found.value.len()
            );
            group.bench_function(BenchmarkId::new(name, store.size), |b| {
                b.iter(|| {
                    store
                        .engine
                        .lookup_resources(AT, &lookup(black_box(&subject)))
                })
            });
        }
    }
    group.finish();
}

fn bench_lookup_subjects(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup_subjects");
    for store in stores() {
        let probes = workload::probes(&store.model).expect("probes");
        let typical = ObjectRef::parse(&probes.typical_connection).expect("connection");
        let most_shared = ObjectRef::parse(&probes.most_shared_connection).expect("connection");
        let heaviest = heaviest_connection(&store.model);
        for (name, resource) in [
            ("typical_connection", typical),
            ("most_shared_connection", most_shared),
            ("heaviest_connection", heaviest),
        ] {
            let lookup = |resource| SubjectLookup {
                resource,
                permission: "use",
                subject_type: "user",
                subject_relation: None,
                page: Page::default(),
            };
            let found = store
                .engine
                .lookup_subjects(AT, &lookup(&resource))
                .expect("lookup");
            eprintln!(
                "[{}] lookup_subjects {name}: {} users",
                store.size,
                found.value.len()
            );
            group.bench_function(BenchmarkId::new(name, store.size), |b| {
                b.iter(|| {
                    store
                        .engine
                        .lookup_subjects(AT, &lookup(black_box(&resource)))
                })
            });
        }
    }
    group.finish();
}

/// The connection of the whole store with the most users who may `use` it, from the model:
/// `(owner + grantees + admins) & members`, where every granted user is a member.
fn heaviest_connection(model: &Workload) -> ObjectRef {
    let mut heaviest = (0, String::new());
    for ws in &model.workspaces {
        let admins: Vec<&str> = ws
            .members
            .iter()
            .filter(|(_, role)| *role == workload::Role::Admin)
            .map(|(id, _)| id.as_str())
            .collect();
        for connection in &ws.connections {
            let mut users: std::collections::BTreeSet<&str> = admins.iter().copied().collect();
            users.insert(&connection.owner);
            users.extend(connection.users.iter().map(String::as_str));
            for group in &connection.groups {
                users.extend(ws.groups[*group].1.iter().map(String::as_str));
            }
            if users.len() > heaviest.0 {
                heaviest = (users.len(), connection.id.clone());
            }
        }
    }
    ObjectRef::new("connection", heaviest.1)
}

fn bench_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("write");
    group.sample_size(20);
    for store in stores() {
        let mut n = 0u64;
        group.bench_function(BenchmarkId::new("single_durable", store.size), |b| {
            b.iter(|| {
                n += 1;
                let tuple =
                    Tuple::parse(&format!("group:benchg#member@user:bench{n}")).expect("tuple");
                store
                    .engine
                    .write(vec![Update::touch(tuple)], &[])
                    .expect("write")
            })
        });
        let mut batch_no = 0u64;
        group.throughput(Throughput::Elements(1000));
        group.bench_function(BenchmarkId::new("batch_of_1000", store.size), |b| {
            b.iter(|| {
                batch_no += 1;
                let updates: Vec<Update> = (0..1000)
                    .map(|i| {
                        Update::touch(
                            Tuple::parse(&format!("group:batch{batch_no}#member@user:u{i}"))
                                .expect("tuple"),
                        )
                    })
                    .collect();
                store.engine.write(updates, &[]).expect("write")
            })
        });
        // Durable single-relationship writes from many threads at once, sharing commits.
        for writers in [1usize, 64] {
            let per_writer = 8usize;
            group.throughput(Throughput::Elements((writers * per_writer) as u64));
            let mut round = 0u64;
            group.bench_function(
                BenchmarkId::new(format!("{writers}_writers_single_relationship"), store.size),
                |b| {
                    b.iter_custom(|iters| {
                        let started = Instant::now();
                        for _ in 0..iters {
                            round += 1;
                            let round = round;
                            std::thread::scope(|scope| {
                                for w in 0..writers {
                                    scope.spawn(move || {
                                        for i in 0..per_writer {
                                            let tuple = Tuple::parse(&format!(
                                                "group:conc{round}#member@user:w{w}i{i}"
                                            ))
                                            .expect("tuple");
                                            store
                                                .engine
                                                .write(vec![Update::touch(tuple)], &[])
                                                .expect("write");
                                        }
                                    });
                                }
                            });
                        }
                        started.elapsed()
                    })
                },
            );
        }
        group.throughput(Throughput::Elements(1));
    }
    group.finish();
}

fn bench_import_and_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // Importing the small store measures the rate; the m store's import time is printed
    // once while it is built.
    if let Some(store) = stores().iter().find(|s| s.size == Size::S) {
        let all = tuples(&store.model);
        group.throughput(Throughput::Elements(all.len() as u64));
        group.bench_function(BenchmarkId::new("fresh_store", store.size), |b| {
            b.iter_with_setup(
                || {
                    let dir = tempfile::tempdir().expect("dir");
                    let engine = Engine::open(&dir.path().join("i.redb")).expect("open");
                    engine.write_schema(workload::SCHEMA).expect("schema");
                    (dir, engine)
                },
                |(dir, engine)| {
                    import(&engine, &all);
                    (dir, engine)
                },
            )
        });
        group.bench_function(BenchmarkId::new("bulk_fresh_store", store.size), |b| {
            b.iter_with_setup(
                || {
                    let dir = tempfile::tempdir().expect("dir");
                    let engine = Engine::open(&dir.path().join("i.redb")).expect("open");
                    engine.write_schema(workload::SCHEMA).expect("schema");
                    (dir, engine)
                },
                |(dir, engine)| {
                    bulk_import(&engine, &all);
                    (dir, engine)
                },
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    for store in stores() {
        let path: &Path = &store.path;
        group.bench_function(BenchmarkId::new("rebuild_index", store.size), |b| {
            b.iter(|| {
                // A second handle on the same file: redb refuses two writers, so reopen a copy.
                let copy = path.with_extension("copy.redb");
                if !copy.exists() {
                    std::fs::copy(path, &copy).expect("copy");
                }
                Engine::open(&copy).expect("open")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench_check, bench_check_bulk, bench_lookup_resources, bench_lookup_subjects,
        bench_write, bench_import_and_open
}
criterion_main!(benches);
