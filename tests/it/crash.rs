//! Crash safety: `pemba serve` as a real process, SIGKILLed at random moments while
//! clients write, restarted, and checked against what the clients were told.
//!
//! Writers send batches (some meant to be refused), a schema thread alternates two
//! schemas, an import thread sends large importbulk requests. Every answer is recorded:
//! 200 is acknowledged, 4xx refused, anything else (the connection died) unknown. After
//! every restart the server's revision must not be behind any acknowledged one; at the end
//! the store is opened in-process and must hold every acknowledged change, no refused one,
//! each unknown batch wholly or not at all, and a change log without gaps that replays to
//! exactly the stored relationships.
//!
//! `PEMBA_CRASH_KILLS` sets the number of kills (default 20), `PEMBA_CRASH_SEED` the seed
//! (printed at the start), `PEMBA_CRASH_IMPORT_SIZE` the relationships per import.
//!
//! One piece because the writers, the killer and the final audit share one model of what
//! was acknowledged; split, each part would have to re-derive it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pemba_engine::{Consistency, Engine, Operation, RelationshipFilter, Revision, Tuple};
use serde_json::{json, Value};

use crate::process::{agent, token_revision, ServeProcess, PROCESS_KEY};
use crate::support::{rel, SCHEMA};

/// The second schema the schema thread alternates with [`SCHEMA`]: a superset, so either
/// can replace the other while only `doc`, `group` and `user` relationships exist.
fn schema_b() -> String {
    format!("{SCHEMA}\n/** added and removed by the crash test */\ndefinition folder {{\n    relation owner: user\n}}\n")
}

/// A small deterministic generator (splitmix64), so a failing seed can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    env_number(
        "PEMBA_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    )
}

/// What the server said to one request.
#[derive(Debug)]
enum Answer {
    /// 200 with the written-at revision.
    Acked(u64),
    /// A 4xx with this status and body: nothing may have been written.
    Refused(u16, Value),
    /// No answer (the process died): the write may or may not have happened.
    Unknown,
}

/// The address of the live server (none while it is down) and a generation counter that
/// changes on every restart, so a client that lost its answer waits for the next process.
pub(crate) struct Shared {
    pub(crate) live: RwLock<(u64, Option<String>)>,
    pub(crate) stop: AtomicBool,
    pub(crate) max_acked: AtomicU64,
    pub(crate) failures: Mutex<Vec<String>>,
    import_in_flight: AtomicBool,
    schema_in_flight: AtomicBool,
}

impl Shared {
    /// The clients' view of one server at `base`, live, generation 1.
    pub(crate) fn new(base: &str) -> Self {
        Shared {
            live: RwLock::new((1, Some(base.to_string()))),
            stop: AtomicBool::new(false),
            max_acked: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            import_in_flight: AtomicBool::new(false),
            schema_in_flight: AtomicBool::new(false),
        }
    }

    fn fail(&self, message: String) {
        eprintln!("crash test failure: {message}");
        self.failures.lock().unwrap().push(message);
    }

    /// The live server and its generation, waiting while it is down.
    fn server(&self) -> Option<(u64, String)> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let (generation, Some(base)) = &*self.live.read().unwrap() {
                return Some((*generation, base.clone()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the server of `generation` has been replaced.
    fn wait_past(&self, generation: u64) {
        while !self.stop.load(Ordering::SeqCst) && self.live.read().unwrap().0 == generation {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn acked(&self, revision: u64) {
        self.max_acked.fetch_max(revision, Ordering::SeqCst);
    }
}

fn post(agent: &ureq::Agent, base: &str, path: &str, body: &Value) -> Answer {
    let result = agent
        .post(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .send(&body.to_string());
    let Ok(mut response) = result else {
        return Answer::Unknown;
    };
    let status = response.status().as_u16();
    let Ok(text) = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
    else {
        return Answer::Unknown;
    };
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    match status {
        200 => {
            let token = value["writtenAt"]["token"].as_str().unwrap_or("");
            Answer::Acked(token_revision(token))
        }
        400..=499 => Answer::Refused(status, value),
        _ => Answer::Unknown,
    }
}

/// One write batch as the writer built it (relationships in text form).
#[derive(Clone, Debug, Default)]
struct Batch {
    creates: Vec<String>,
    deletes: Vec<String>,
}

/// What one writer knows at the end.
#[derive(Default)]
pub(crate) struct WriterLog {
    /// Present: acknowledged and not deleted since.
    present: BTreeSet<String>,
    /// Absent: refused creates and acknowledged deletes.
    absent: BTreeSet<String>,
    /// Acknowledged batches with their revision.
    acked: Vec<(u64, Batch)>,
    /// Batches without an answer.
    unknown: Vec<Batch>,
    refused: usize,
}

/// Writes random batches (creates, deletes of its own earlier creates, some meant to be
/// refused) to whichever server `shared` names until it says stop; what it was told.
/// Thread numbers keep the writers' relationships apart.
pub(crate) fn writer(shared: &Shared, thread: usize, seed: u64) -> WriterLog {
    let agent = agent(Duration::from_secs(20));
    let mut rng = Rng::new(seed);
    let mut log = WriterLog::default();
    let mut last_revision = 0;
    let mut sequence = 0u64;
    while let Some((generation, base)) = shared.server() {
        sequence += 1;
        let mut batch = Batch::default();
        for i in 0..1 + rng.below(4) {
            batch.creates.push(format!(
                "doc:w{thread}s{sequence}i{i}#viewer@user:u{}",
                rng.below(50)
            ));
        }
        let pool: Vec<String> = log.present.iter().cloned().collect();
        if !pool.is_empty() && rng.percent(35) {
            for _ in 0..1 + rng.below(2) {
                let victim = pool[rng.below(pool.len() as u64) as usize].clone();
                if !batch.deletes.contains(&victim) {
                    batch.deletes.push(victim);
                }
            }
        }
        let mut updates: Vec<Value> = Vec::new();
        for create in &batch.creates {
            let operation = if rng.percent(50) {
                "OPERATION_CREATE"
            } else {
                "OPERATION_TOUCH"
            };
            updates.push(json!({ "operation": operation, "relationship": rel(create) }));
        }
        for delete in &batch.deletes {
            updates.push(json!({ "operation": "OPERATION_DELETE", "relationship": rel(delete) }));
        }
        let mut preconditions = Vec::new();
        // Some batches must be refused: a create of a present relationship, or a
        // precondition that cannot hold. Others carry a precondition that holds.
        let roll = rng.below(100);
        let refusal = if roll < 12 && !pool.is_empty() {
            let existing = pool[rng.below(pool.len() as u64) as usize].clone();
            if batch.deletes.contains(&existing) {
                None
            } else {
                updates.push(
                    json!({ "operation": "OPERATION_CREATE", "relationship": rel(&existing) }),
                );
                Some(409)
            }
        } else if roll < 20 {
            preconditions.push(json!({ "operation": "OPERATION_MUST_MATCH", "filter": {
                "resourceType": "doc", "optionalResourceId": format!("missing{thread}x{sequence}") } }));
            Some(409)
        } else if roll < 35 && !pool.is_empty() {
            let holder = &pool[rng.below(pool.len() as u64) as usize];
            let id = holder
                .split_once('#')
                .and_then(|(object, _)| object.split_once(':'))
                .map(|(_, id)| id.to_string())
                .unwrap_or_default();
            if batch.deletes.contains(holder) {
                None
            } else {
                preconditions.push(json!({ "operation": "OPERATION_MUST_MATCH", "filter": {
                    "resourceType": "doc", "optionalResourceId": id, "optionalRelation": "viewer" } }));
                None
            }
        } else {
            None
        };
        let body = json!({ "updates": updates, "optionalPreconditions": preconditions });
        match post(&agent, &base, "/v1/relationships/write", &body) {
            Answer::Acked(revision) => {
                if refusal.is_some() {
                    shared.fail(format!("writer {thread}: a batch that must be refused was acknowledged at {revision}: {body}"));
                }
                if revision <= last_revision {
                    shared.fail(format!(
                        "writer {thread}: revision went from {last_revision} to {revision}"
                    ));
                }
                last_revision = revision;
                shared.acked(revision);
                for create in &batch.creates {
                    log.present.insert(create.clone());
                }
                for delete in &batch.deletes {
                    log.present.remove(delete);
                    log.absent.insert(delete.clone());
                }
                log.acked.push((revision, batch));
            }
            Answer::Refused(status, answer) => {
                if refusal != Some(status) {
                    shared.fail(format!(
                        "writer {thread}: unexpected {status} {answer} for {body}"
                    ));
                }
                log.refused += 1;
                log.absent.extend(batch.creates);
            }
            Answer::Unknown => {
                // Neither its creates nor its deletes are known any more: leave them alone.
                for delete in &batch.deletes {
                    log.present.remove(delete);
                }
                log.unknown.push(batch);
                shared.wait_past(generation);
            }
        }
    }
    log
}

/// What the import thread knows at the end.
#[derive(Default)]
pub(crate) struct ImportLog {
    acked: Vec<(u64, Vec<String>)>,
    refused: Vec<Vec<String>>,
    unknown: Vec<Vec<String>>,
}

fn importer(shared: &Shared, size: usize, seed: u64) -> ImportLog {
    let agent = agent(Duration::from_secs(60));
    let mut rng = Rng::new(seed);
    let mut log = ImportLog::default();
    let mut round = 0;
    while let Some((generation, base)) = shared.server() {
        round += 1;
        let size = size / 4 + rng.below(size as u64 * 3 / 4 + 1) as usize;
        let tuples: Vec<String> = (0..size)
            .map(|i| format!("doc:imp{round}x{i}#viewer@user:u{}", i % 50))
            .collect();
        let mut relationships: Vec<Value> = tuples.iter().map(|t| rel(t)).collect();
        let bad = rng.percent(20);
        if bad {
            // The last relationship names an unknown type: the whole import is refused.
            relationships.push(rel("nosuchtype:x#viewer@user:u1"));
        }
        shared.import_in_flight.store(true, Ordering::SeqCst);
        let answer = post(
            &agent,
            &base,
            "/v1/relationships/importbulk",
            &json!({ "relationships": relationships }),
        );
        shared.import_in_flight.store(false, Ordering::SeqCst);
        match answer {
            Answer::Acked(revision) => {
                if bad {
                    shared.fail(format!(
                        "import {round} with a bad relationship was acknowledged"
                    ));
                }
                shared.acked(revision);
                log.acked.push((revision, tuples));
            }
            Answer::Refused(status, answer) => {
                if !bad || status != 400 {
                    shared.fail(format!("import {round}: unexpected {status} {answer}"));
                }
                log.refused.push(tuples);
            }
            Answer::Unknown => {
                log.unknown.push(tuples);
                shared.wait_past(generation);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(50)));
    }
    log
}

/// Alternates two schemas; before each write it reads the schema back, which must be the
/// last acknowledged one or one whose answer was lost.
fn schema_writer(shared: &Shared, seed: u64) -> (usize, usize) {
    let agent = agent(Duration::from_secs(20));
    let mut rng = Rng::new(seed);
    let texts = [SCHEMA.to_string(), schema_b()];
    let mut known = SCHEMA.to_string();
    let mut pending: Vec<String> = Vec::new();
    let (mut acked, mut unknown) = (0, 0);
    while let Some((generation, base)) = shared.server() {
        let read = agent
            .post(&format!("{base}/v1/schema/read"))
            .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
            .send("{}");
        let Ok(mut response) = read else {
            shared.wait_past(generation);
            continue;
        };
        let Ok(text) = response.body_mut().read_to_string() else {
            shared.wait_past(generation);
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let Some(current) = value["schemaText"].as_str() else {
            shared.fail(format!("schema read answered {text}"));
            return (acked, unknown);
        };
        if current != known && !pending.iter().any(|p| p == current) {
            shared.fail(format!(
                "schema after restart is neither the acknowledged one nor a pending one:\n{current}"
            ));
        }
        known = current.to_string();
        pending.clear();
        let next = if known == texts[0] {
            &texts[1]
        } else {
            &texts[0]
        };
        shared.schema_in_flight.store(true, Ordering::SeqCst);
        let answer = post(
            &agent,
            &base,
            "/v1/schema/write",
            &json!({ "schema": next }),
        );
        shared.schema_in_flight.store(false, Ordering::SeqCst);
        match answer {
            Answer::Acked(revision) => {
                shared.acked(revision);
                known = next.clone();
                acked += 1;
            }
            Answer::Refused(status, answer) => {
                shared.fail(format!("schema write refused: {status} {answer}"));
            }
            Answer::Unknown => {
                pending.push(next.clone());
                unknown += 1;
                shared.wait_past(generation);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(40)));
    }
    (acked, unknown)
}

/// Figures of one run, printed at the end (RELIABILITY.md quotes them).
#[derive(Debug, Default)]
pub(crate) struct Figures {
    kills: usize,
    kills_during_startup: usize,
    kills_during_import: usize,
    kills_during_schema_write: usize,
    pub(crate) acked_writes: usize,
    pub(crate) refused_writes: usize,
    unknown_writes: usize,
    unknown_applied: usize,
    acked_imports: usize,
    refused_imports: usize,
    unknown_imports: usize,
    schema_writes_acked: usize,
    schema_writes_unknown: usize,
    relationships_verified: usize,
    change_sets_verified: usize,
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let kills = env_number("PEMBA_CRASH_KILLS", 20) as usize;
    let import_size = env_number("PEMBA_CRASH_IMPORT_SIZE", 3000) as usize;
    let seed = seed();
    eprintln!(
        "crash test: {kills} kills, seed {seed} (PEMBA_CRASH_SEED={seed} replays the schedule)"
    );
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut rng = Rng::new(seed);

    // A first start creates the store; the test schema replaces the shipped one.
    let mut server = ServeProcess::spawn(&data_dir, &[], &[]);
    server
        .wait_healthy(Duration::from_secs(30))
        .expect("healthy");
    match post(
        &agent(Duration::from_secs(20)),
        &server.base,
        "/v1/schema/write",
        &json!({ "schema": SCHEMA }),
    ) {
        Answer::Acked(_) => {}
        other => panic!("initial schema write: {other:?}"),
    }
    let shared = Arc::new(Shared::new(&server.base));
    let writers: Vec<_> = (0..3)
        .map(|thread| {
            let shared = shared.clone();
            let seed = seed.wrapping_add(thread as u64 + 1);
            std::thread::spawn(move || writer(&shared, thread, seed))
        })
        .collect();
    let import_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || importer(&shared, import_size, seed.wrapping_add(100)))
    };
    let schema_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || schema_writer(&shared, seed.wrapping_add(200)))
    };

    let mut figures = Figures::default();
    let key_leaks = AtomicUsize::new(0);
    let check_log = |log: &[String]| {
        let leaked = log.iter().filter(|line| line.contains(PROCESS_KEY)).count();
        key_leaks.fetch_add(leaked, Ordering::SeqCst);
    };
    let mut generation = 1;
    for _ in 0..kills {
        if !shared.failures.lock().unwrap().is_empty() {
            break;
        }
        // Let the clients work for a while, then pull the plug.
        std::thread::sleep(Duration::from_millis(20 + rng.below(500)));
        if shared.import_in_flight.load(Ordering::SeqCst) {
            figures.kills_during_import += 1;
        }
        if shared.schema_in_flight.load(Ordering::SeqCst) {
            figures.kills_during_schema_write += 1;
        }
        shared.live.write().unwrap().1 = None;
        check_log(&server.kill());
        figures.kills += 1;
        // Sometimes kill again while the store is being opened and recovered.
        if rng.percent(10) {
            let early = ServeProcess::spawn_starting(&data_dir);
            std::thread::sleep(Duration::from_millis(rng.below(30)));
            check_log(&early.kill());
            figures.kills += 1;
            figures.kills_during_startup += 1;
        }
        server = ServeProcess::spawn(&data_dir, &[], &[]);
        let health = server
            .wait_healthy(Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!(
                    "the server did not come back after kill {}:\n{}",
                    figures.kills,
                    server.log.lock().unwrap().join("\n")
                )
            });
        let revision = token_revision(health["revision"].as_str().unwrap_or(""));
        let acked = shared.max_acked.load(Ordering::SeqCst);
        assert!(
            revision >= acked,
            "after kill {}: the store is at revision {revision} but revision {acked} was acknowledged",
            figures.kills
        );
        generation += 1;
        *shared.live.write().unwrap() = (generation, Some(server.base.clone()));
    }
    std::thread::sleep(Duration::from_millis(200));
    shared.stop.store(true, Ordering::SeqCst);
    let writer_logs: Vec<WriterLog> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let import_log = import_thread.join().unwrap();
    (figures.schema_writes_acked, figures.schema_writes_unknown) = schema_thread.join().unwrap();
    let failures = shared.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "seed {seed}: {failures:#?}");

    // A graceful stop works on the crashed-and-recovered store, and logs no key.
    let (status, log) = server.terminate();
    check_log(&log);
    assert!(
        status.success(),
        "SIGTERM exit: {status:?}\n{}",
        log.join("\n")
    );
    assert_eq!(
        key_leaks.load(Ordering::SeqCst),
        0,
        "the key appeared in a log"
    );

    // Verify the store itself.
    let engine = Engine::open(&data_dir.join(pemba_server::STORE_FILE)).unwrap();
    audit(
        &engine,
        shared.max_acked.load(Ordering::SeqCst),
        &writer_logs,
        &import_log,
        seed,
        &mut figures,
    );
    assert!(figures.acked_writes > 0 && figures.acked_imports > 0);
    eprintln!(
        "crash test passed in {:.1} s (seed {seed}): {figures:#?}",
        started.elapsed().as_secs_f64()
    );
}

/// Checks a store against what the clients were told: the count matches, the change log
/// has no gaps and replays to exactly the stored relationships, every acknowledged change
/// is stored (in the change set of its revision), no refused one is, every batch without
/// an answer is wholly there at one revision or wholly absent, and nothing is stored that
/// nobody wrote. Used by the redb crash test and the replicas' (`replica_faults.rs`).
pub(crate) fn audit(
    engine: &Engine,
    max_acked: u64,
    writer_logs: &[WriterLog],
    import_log: &ImportLog,
    seed: u64,
    figures: &mut Figures,
) {
    let stored = all_tuples(engine);
    assert_eq!(
        engine.relationship_count(),
        stored.len() as u64,
        "the stored count disagrees with the relationships"
    );
    let head = engine.revision().0;
    assert!(head >= max_acked);
    let sets = engine.changes_after(Revision(0), usize::MAX).unwrap();
    let revisions: Vec<u64> = sets.iter().map(|s| s.revision.0).collect();
    assert_eq!(
        revisions,
        (1..=head).collect::<Vec<_>>(),
        "the change log has gaps or extra entries"
    );
    // Replaying the change log gives exactly the stored relationships; and every change
    // is indexed by relationship for the batch checks below.
    let mut replayed = BTreeSet::new();
    let mut history: BTreeMap<String, Vec<(u64, bool)>> = BTreeMap::new();
    for set in &sets {
        for change in &set.changes {
            let text = change.tuple.to_string();
            let insert = change.operation != Operation::Delete;
            if insert {
                replayed.insert(text.clone());
            } else {
                replayed.remove(&text);
            }
            history
                .entry(text)
                .or_default()
                .push((set.revision.0, insert));
        }
    }
    assert!(
        replayed == stored,
        "replaying the change log does not give the stored relationships"
    );
    figures.change_sets_verified = sets.len();
    figures.relationships_verified = stored.len();

    let mut accounted: HashSet<String> = HashSet::new();
    let changed_at = |text: &str, revision: u64, insert: bool| {
        history
            .get(text)
            .is_some_and(|h| h.contains(&(revision, insert)))
    };
    for (thread, log) in writer_logs.iter().enumerate() {
        figures.acked_writes += log.acked.len();
        figures.refused_writes += log.refused;
        figures.unknown_writes += log.unknown.len();
        for tuple in &log.present {
            assert!(
                stored.contains(tuple),
                "writer {thread}: acknowledged `{tuple}` is missing (seed {seed})"
            );
        }
        for tuple in &log.absent {
            assert!(
                !stored.contains(tuple),
                "writer {thread}: refused or deleted `{tuple}` is present (seed {seed})"
            );
        }
        for (revision, batch) in &log.acked {
            for create in &batch.creates {
                assert!(
                    changed_at(create, *revision, true),
                    "writer {thread}: acknowledged create `{create}` is not in change set {revision}"
                );
            }
            for delete in &batch.deletes {
                assert!(
                    changed_at(delete, *revision, false),
                    "writer {thread}: acknowledged delete `{delete}` is not in change set {revision}"
                );
            }
        }
        for batch in &log.unknown {
            // All or nothing: in the store, and in the change log at one revision.
            let inserted: Vec<bool> = batch.creates.iter().map(|t| stored.contains(t)).collect();
            let kept: Vec<bool> = batch.deletes.iter().map(|t| stored.contains(t)).collect();
            let applied = inserted.first().copied().unwrap_or(false);
            assert!(
                inserted.iter().all(|i| *i == applied) && kept.iter().all(|k| *k != applied),
                "writer {thread}: a batch without an answer was applied in part: {batch:?} creates present {inserted:?}, deletes present {kept:?}"
            );
            let revisions: BTreeSet<u64> = batch
                .creates
                .iter()
                .filter_map(|t| history.get(t))
                .flat_map(|h| h.iter().filter(|(_, insert)| *insert).map(|(r, _)| *r))
                .collect();
            if applied {
                figures.unknown_applied += 1;
                assert_eq!(revisions.len(), 1, "{batch:?} spread over {revisions:?}");
            } else {
                assert!(
                    revisions.is_empty(),
                    "{batch:?} logged at {revisions:?} but absent"
                );
            }
            accounted.extend(batch.creates.iter().cloned());
            accounted.extend(batch.deletes.iter().cloned());
        }
        accounted.extend(log.present.iter().cloned());
    }
    for (revision, tuples) in &import_log.acked {
        for tuple in tuples {
            assert!(
                stored.contains(tuple),
                "acknowledged import at {revision}: `{tuple}` is missing (seed {seed})"
            );
        }
        assert!(tuples.iter().all(|t| changed_at(t, *revision, true)));
        accounted.extend(tuples.iter().cloned());
    }
    for tuples in &import_log.refused {
        assert!(
            tuples.iter().all(|t| !stored.contains(t)),
            "a refused import left relationships"
        );
    }
    for tuples in &import_log.unknown {
        let present = tuples.iter().filter(|t| stored.contains(*t)).count();
        assert!(
            present == 0 || present == tuples.len(),
            "an import without an answer left {present} of {} relationships (seed {seed})",
            tuples.len()
        );
        accounted.extend(tuples.iter().cloned());
    }
    figures.acked_imports = import_log.acked.len();
    figures.refused_imports = import_log.refused.len();
    figures.unknown_imports = import_log.unknown.len();
    let unexplained: Vec<&String> = stored.iter().filter(|t| !accounted.contains(*t)).collect();
    assert!(
        unexplained.is_empty(),
        "relationships nobody wrote: {:?}",
        &unexplained[..unexplained.len().min(5)]
    );
}

/// Every stored relationship in text form.
pub fn all_tuples(engine: &Engine) -> BTreeSet<String> {
    engine
        .relationships(Consistency::FullyConsistent, &RelationshipFilter::default())
        .unwrap()
        .map(|tuple| tuple.unwrap().to_string())
        .collect()
}

/// A store with `count` relationships written through the engine, closed again.
fn make_store(path: &std::path::Path, count: usize) -> BTreeSet<String> {
    let engine = Engine::open(path).unwrap();
    engine.write_schema(SCHEMA).unwrap();
    let tuples: Vec<String> = (0..count)
        .map(|i| format!("doc:d{i}#viewer@user:u{}", i % 97))
        .collect();
    for chunk in tuples.chunks(1000) {
        let updates: Vec<pemba_engine::Update> = chunk
            .iter()
            .map(|t| pemba_engine::Update::touch(Tuple::parse(t).unwrap()))
            .collect();
        engine.write(updates, &[]).unwrap();
    }
    tuples.into_iter().collect()
}

/// Starts `pemba serve` on `content` as its store file: `Err(last stderr line)` if it
/// refused to start, `Ok(relationships it serves)` if it started.
fn serve_store(
    root: &std::path::Path,
    name: &str,
    content: &[u8],
) -> Result<BTreeSet<String>, String> {
    let data = root.join(name);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(pemba_server::STORE_FILE), content).unwrap();
    let mut server = match ServeProcess::try_spawn(&data, &[], &[]) {
        Err(failure) => return Err(failure.stderr),
        Ok(server) => server,
    };
    if server.wait_healthy(Duration::from_secs(30)).is_none() {
        let log = server.kill();
        return Err(log.last().cloned().unwrap_or_default());
    }
    let mut response = agent(Duration::from_secs(30))
        .post(&format!("{}/v1/relationships/read", server.base))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .send("{}")
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{name}");
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    server.kill();
    let mut served = BTreeSet::new();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert!(
            value.get("error").is_none(),
            "{name}: served an error line {line}"
        );
        let r = &value["result"]["relationship"];
        let field = |v: &Value| v.as_str().unwrap().to_string();
        served.insert(format!(
            "{}:{}#{}@{}:{}",
            field(&r["resource"]["objectType"]),
            field(&r["resource"]["objectId"]),
            field(&r["relation"]),
            field(&r["subject"]["object"]["objectType"]),
            field(&r["subject"]["object"]["objectId"]),
        ));
    }
    Ok(served)
}

#[test]
fn a_truncated_or_damaged_store_is_refused_or_served_intact() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let expected = make_store(&pristine, 5000);
    let bytes = std::fs::read(&pristine).unwrap();
    let len = bytes.len();
    // Damage that must be refused, with a message naming the store.
    let mut header = bytes.clone();
    header[..512].iter_mut().for_each(|b| *b = 0xA5);
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("first_100_bytes", bytes[..100].to_vec()),
        ("half", bytes[..len / 2].to_vec()),
        ("last_page_cut", bytes[..len - 4096].to_vec()),
        ("header_overwritten", header),
    ];
    for (name, content) in refused {
        let message = serve_store(dir.path(), name, &content)
            .err()
            .unwrap_or_else(|| panic!("{name}: a damaged store was served"));
        assert!(
            (message.contains("corrupt") || message.contains("empty"))
                && message.contains(pemba_server::STORE_FILE),
            "{name}: unclear refusal: {message}"
        );
    }
    // Pages zeroed or scrambled anywhere: refused with a clear message, or (when the damage
    // hit pages no relationship lives in) served with every relationship intact.
    let (mut refusals, mut intact) = (0, 0);
    for step in 1..16 {
        let offset = (len * step / 16) / 4096 * 4096;
        let mut zeroed = bytes.clone();
        zeroed[offset..offset + 4096]
            .iter_mut()
            .for_each(|b| *b = 0);
        let mut scrambled = bytes.clone();
        scrambled[offset + 100..offset + 164]
            .iter_mut()
            .for_each(|b| *b ^= 0xFF);
        for (kind, content) in [("zeroed", zeroed), ("scrambled", scrambled)] {
            let name = format!("{kind}_page_at_{offset}");
            match serve_store(dir.path(), &name, &content) {
                Err(message) => {
                    assert!(
                        message.contains("corrupt") && message.contains(pemba_server::STORE_FILE),
                        "{name}: unclear refusal: {message}"
                    );
                    refusals += 1;
                }
                Ok(served) => {
                    assert!(
                        served == expected,
                        "{name}: served relationships that differ from the store's"
                    );
                    intact += 1;
                }
            }
        }
    }
    eprintln!("damaged pages: {refusals} refused, {intact} served intact");
    assert!(refusals > 0);
}

/// redb keeps no checksums of its pages, so a bit flip that leaves a key well-formed
/// (`doc:d123` becoming `doc:d122`) is invisible to redb; the engine cross-checks its two
/// relationship tables (by resource and by subject) and the recorded count on open, which
/// catches a flip in either.
#[test]
fn a_bit_flip_in_a_relationship_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let expected = make_store(&pristine, 5000);
    let bytes = std::fs::read(&pristine).unwrap();
    let at = (4096..bytes.len() - 1)
        .find(|&i| bytes[i] == b'd' && bytes[i + 1].is_ascii_digit())
        .unwrap();
    let mut flipped = bytes.clone();
    flipped[at + 1] ^= 0x01;
    if let Ok(served) = serve_store(dir.path(), "bitflip", &flipped) {
        assert!(
            served == expected,
            "a store with a flipped bit served other relationships"
        );
    }
}
