//! `pemba import --data-dir` killed with SIGKILL halfway: the store opens, and holds whole
//! batches only — a prefix of the import's (sorted) order, never part of a batch. The
//! import takes the bulk-load path, so a kill may land between batches, while the subject
//! table is behind them, or during its last step; opening settles the subject table, and
//! each batch's compact change-log entry holds exactly that batch.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pemba_engine::{
    Consistency, Engine, Operation, RelationshipFilter, Revision, SubjectFilter, Tuple,
};

use crate::process::binary;

const BATCH: usize = 500;

#[test]
fn import_killed_halfway_keeps_whole_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let model = pemba::workload::generate(pemba::workload::Size::S, 7, |_| {});
    let file = dir.path().join("tuples.txt");
    pemba::workload::write_files(&model, 7, dir.path()).unwrap();
    let mut expected: Vec<Tuple> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| Tuple::parse(line).unwrap())
        .collect();
    expected.sort_unstable();
    expected.dedup();

    let kills = std::env::var("PEMBA_IMPORT_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4u32);
    let mut partial = 0;
    for round in 0..kills {
        let data = dir.path().join(format!("data{round}"));
        let mut child = Command::new(binary())
            .args([
                "import",
                file.to_str().unwrap(),
                "--batch-size",
                &BATCH.to_string(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill once batches are going in (the file has grown past its fresh size), at a
        // varying moment after that.
        let store = data.join("pemba.redb");
        let started = Instant::now();
        while std::fs::metadata(&store).map_or(0, |m| m.len()) < 2 << 20
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The bulk path is fast: small steps, so kills land early, late and at the end.
        std::thread::sleep(Duration::from_millis(29 * u64::from(round % 8)));
        let _ = child.kill();
        let status = child.wait().unwrap();

        let engine = Engine::open(&store).expect("a killed import leaves a store that opens");
        let stored: Vec<Tuple> = engine
            .relationships(Consistency::FullyConsistent, &RelationshipFilter::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            stored.len() % BATCH == 0 || stored.len() == expected.len(),
            "round {round}: {} relationships stored: not whole batches of {BATCH}",
            stored.len()
        );
        assert_eq!(
            stored[..],
            expected[..stored.len()],
            "round {round}: the store holds something other than the first batches"
        );
        // One revision for the schema, one per batch, and no gaps in the change log.
        let batches = stored.len().div_ceil(BATCH) as u64;
        assert_eq!(engine.revision(), Revision(1 + batches), "round {round}");
        let log = engine.changes_after(Revision(0), usize::MAX).unwrap();
        assert_eq!(log.len() as u64, 1 + batches, "round {round}");
        // Each batch's log entry holds its relationships, as touches, in order.
        let mut logged: Vec<Tuple> = Vec::new();
        for set in log.iter().skip(1) {
            assert!(
                set.changes.len() <= BATCH,
                "round {round}: {}",
                set.changes.len()
            );
            for change in &set.changes {
                assert_eq!(change.operation, Operation::Touch, "round {round}");
                logged.push(change.tuple.clone());
            }
        }
        assert_eq!(
            logged, stored,
            "round {round}: the log differs from the store"
        );
        // The subject-ordered table (a read by subject scans it) agrees.
        if let Some(last) = stored.last() {
            let subject = &last.subject;
            let mut by_subject: Vec<Tuple> = engine
                .relationships(
                    Consistency::FullyConsistent,
                    &RelationshipFilter::subject(SubjectFilter::exact(subject)),
                )
                .unwrap()
                .map(Result::unwrap)
                .collect();
            by_subject.sort_unstable();
            let expected_by_subject: Vec<Tuple> = stored
                .iter()
                .filter(|t| &t.subject == subject)
                .cloned()
                .collect();
            assert_eq!(by_subject, expected_by_subject, "round {round}");
        }
        if stored.len() < expected.len() {
            partial += 1;
        }
        eprintln!(
            "round {round}: killed ({status}), {} of {} relationships stored",
            stored.len(),
            expected.len()
        );
    }
    eprintln!("{partial} of {kills} imports were cut short");
}
