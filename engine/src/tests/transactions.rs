//! Transactions: filter deletes with metadata, group commit under many writers, and check
//! conditions that authorize a write at its commit revision.

use std::sync::Arc;

use super::operations::{check, engine, touch, update};
use super::Backend;
use crate::{
    Consistency, ObjectRef, Operation, RelationshipFilter, SubjectFilter, SubjectRef, WriteError,
};

fn transactions_combine_filter_deletes_updates_and_metadata(backend: Backend) {
    let engine = engine(backend);
    touch(
        &engine,
        &[
            "group:g#member@user:a",
            "connection:c#grantee@group:g#member",
        ],
    );
    let group_as_subject = RelationshipFilter {
        subject: Some(SubjectFilter {
            subject_type: "group".into(),
            subject_id: Some("g".into()),
            relation: None,
        }),
        ..Default::default()
    };
    let group_as_resource = RelationshipFilter {
        resource_type: Some("group".into()),
        resource_id: Some("g".into()),
        ..Default::default()
    };
    let set_name = crate::MetadataWrite {
        key: "group/g/name".into(),
        value: Some("Eng".into()),
    };
    engine
        .transact(crate::Transaction {
            metadata_conditions: vec![crate::MetadataCondition {
                key: "group/g/name".into(),
                expected: None,
            }],
            metadata: vec![set_name.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        engine.metadata("group/g/name").unwrap().as_deref(),
        Some("Eng")
    );
    // The same condition now fails, and nothing of the failed transaction applies.
    let refused = engine.transact(crate::Transaction {
        metadata_conditions: vec![crate::MetadataCondition {
            key: "group/g/name".into(),
            expected: None,
        }],
        delete_filters: vec![group_as_subject.clone()],
        ..Default::default()
    });
    assert!(matches!(
        refused,
        Err(WriteError::MetadataChanged { ref key }) if key == "group/g/name"
    ));
    check(&engine, "connection:c#use@user:a", true);
    engine
        .transact(crate::Transaction {
            delete_filters: vec![group_as_subject, group_as_resource],
            metadata: vec![crate::MetadataWrite {
                key: "group/g/name".into(),
                value: None,
            }],
            ..Default::default()
        })
        .unwrap();
    check(&engine, "connection:c#use@user:a", false);
    assert_eq!(engine.relationship_count(), 0);
    assert!(engine.metadata_with_prefix("group/").unwrap().is_empty());
}

/// Many writers at once share commits; each still gets its own revision, refused creates
/// leave no trace, and exactly one of several racing creates of one relationship wins.
fn concurrent_writers_share_commits_without_losing_isolation(backend: Backend) {
    let engine = Arc::new(engine(backend));
    let start = engine.revision();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut revisions = Vec::new();
                let mut won_race = 0;
                for i in 0..20 {
                    let own = update(Operation::Create, &format!("group:t{t}#member@user:u{i}"));
                    revisions.push(engine.write(&[own], &[]).unwrap());
                    let racing = update(Operation::Create, &format!("group:race{i}#member@user:x"));
                    match engine.write(&[racing], &[]) {
                        Ok(revision) => {
                            revisions.push(revision);
                            won_race += 1;
                        }
                        Err(WriteError::AlreadyExists(_)) => {}
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                (revisions, won_race)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut wins = 0;
    for thread in threads {
        let (revisions, won) = thread.join().unwrap();
        all.extend(revisions);
        wins += won;
    }
    assert_eq!(wins, 20, "each racing create is won exactly once");
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        16 * 20 + 20,
        "every committed write has its own revision"
    );
    assert_eq!(
        engine.revision().0 - start.0,
        all.len() as u64,
        "refused writes use no revision"
    );
    assert_eq!(engine.relationship_count(), 16 * 20 + 20);
    let sets = engine.changes_after(start, 10_000).unwrap();
    assert_eq!(sets.len(), all.len());
    assert!(sets
        .windows(2)
        .all(|w| w[1].revision.0 == w[0].revision.0 + 1));
}

fn check_conditions_hold_at_commit_or_nothing_is_written(backend: Backend) {
    let engine = engine(backend);
    touch(&engine, &["workspace:w#admin@user:root"]);
    let admin = |user: &str| {
        crate::CheckCondition::holds(
            ObjectRef::new("workspace", "w"),
            "admin",
            SubjectRef::object("user", user),
        )
    };
    let grant = |text: &str| crate::Transaction {
        checks: vec![admin("root")],
        updates: vec![update(Operation::Touch, text)],
        ..Default::default()
    };
    engine.transact(grant("group:g#member@user:a")).unwrap();
    check(&engine, "group:g#member@user:a", true);

    let refused = engine
        .transact(crate::Transaction {
            checks: vec![admin("nobody")],
            updates: vec![update(Operation::Touch, "group:g#member@user:b")],
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            refused,
            WriteError::CheckFailed {
                index: 0,
                expected: true,
                ..
            }
        ),
        "{refused}"
    );
    check(&engine, "group:g#member@user:b", false);

    let unknown = crate::CheckCondition::holds(
        ObjectRef::new("workspace", "w"),
        "no_such_permission",
        SubjectRef::object("user", "root"),
    );
    let invalid = engine.transact(crate::Transaction {
        checks: vec![unknown],
        ..Default::default()
    });
    assert!(matches!(invalid, Err(WriteError::Invalid(_))));
}

/// Two admins demote each other at once, each write conditioned on its author still being
/// an admin at commit: exactly one wins, so the workspace never ends without an admin.
fn racing_mutual_demotions_leave_one_admin(backend: Backend) {
    // One store, a workspace per round: a fresh PostgreSQL database per round would cost
    // more than the race.
    let engine = Arc::new(engine(backend));
    for round in 0..50 {
        let workspace = format!("w{round}");
        touch(
            &engine,
            &[
                &format!("workspace:{workspace}#admin@user:ann"),
                &format!("workspace:{workspace}#admin@user:bob"),
            ],
        );
        let demote = |actor: &'static str, target: &'static str| {
            let engine = engine.clone();
            let workspace = workspace.clone();
            std::thread::spawn(move || {
                engine.transact(crate::Transaction {
                    checks: vec![crate::CheckCondition::holds(
                        ObjectRef::new("workspace", &workspace),
                        "admin",
                        SubjectRef::object("user", actor),
                    )],
                    updates: vec![
                        update(
                            Operation::Delete,
                            &format!("workspace:{workspace}#admin@user:{target}"),
                        ),
                        update(
                            Operation::Touch,
                            &format!("workspace:{workspace}#member@user:{target}"),
                        ),
                    ],
                    ..Default::default()
                })
            })
        };
        let (first, second) = (demote("ann", "bob"), demote("bob", "ann"));
        let outcomes = [first.join().unwrap(), second.join().unwrap()];
        let wins = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        let admins = engine
            .relationships(
                Consistency::FullyConsistent,
                &RelationshipFilter::resource(&ObjectRef::new("workspace", &workspace))
                    .with_relation("admin"),
            )
            .unwrap()
            .count();
        assert_eq!(admins, 1, "round {round}");
    }
}

on_both_stores!(
    transactions_combine_filter_deletes_updates_and_metadata,
    concurrent_writers_share_commits_without_losing_isolation,
    check_conditions_hold_at_commit_or_nothing_is_written,
    racing_mutual_demotions_leave_one_admin,
);
