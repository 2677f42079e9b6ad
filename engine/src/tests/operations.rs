//! Write, read, delete, watch, schema and persistence behaviour of [`Engine`].
//!
//! One piece: independent tests over one schema and its helpers (which `transactions.rs`
//! shares).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Backend;
use crate::{
    CheckArgs, Consistency, DeleteRequest, Engine, ExpandKind, InvalidError, ObjectRef, Operation,
    OverLimit, Page, Precondition, PreconditionKind, QueryError, ReadPage, RelationshipFilter,
    ResourceLookup, Revision, SchemaWriteError, SubjectFilter, SubjectLookup, SubjectRef,
    TokenError, Tuple, Update, WriteError,
};

pub(super) const SCHEMA: &str = "
definition user {}
definition workspace {
    relation admin: user
    relation member: user
}
definition group {
    relation workspace: workspace
    relation member: user
}
definition connection {
    relation workspace: workspace
    relation owner: user
    relation grantee: user | group#member | user:*
    relation banned: user
    permission use = (owner + grantee + workspace->admin) - banned
}
";

pub(super) fn engine(backend: Backend) -> Engine {
    let engine = backend.fresh();
    engine.write_schema(SCHEMA).unwrap();
    engine
}

pub(super) fn update(operation: Operation, text: &str) -> Update {
    Update {
        operation,
        tuple: Tuple::parse(text).unwrap(),
    }
}

pub(super) fn touch(engine: &Engine, texts: &[&str]) -> Revision {
    let updates: Vec<Update> = texts.iter().map(|t| update(Operation::Touch, t)).collect();
    engine.write(updates, &[]).unwrap()
}

#[track_caller]
pub(super) fn check(engine: &Engine, query: &str, expected: bool) {
    let q = Tuple::parse(query).unwrap();
    let answer = engine
        .check(
            Consistency::FullyConsistent,
            CheckArgs::new(&q.resource, &q.relation, &q.subject),
        )
        .unwrap();
    assert_eq!(answer.value, expected, "{query}");
}

fn groups_arrows_wildcards_and_exclusions(backend: Backend) {
    let engine = engine(backend);
    touch(
        &engine,
        &[
            "group:eng#member@user:alice",
            "connection:c1#grantee@group:eng#member",
            "connection:c1#workspace@workspace:w1",
            "workspace:w1#admin@user:root",
            "connection:c2#grantee@user:*",
            "connection:c2#banned@user:mallory",
        ],
    );
    check(&engine, "connection:c1#use@user:alice", true);
    check(&engine, "connection:c1#use@user:root", true);
    check(&engine, "connection:c1#use@user:bob", false);
    check(&engine, "connection:c2#use@user:anyone", true);
    check(&engine, "connection:c2#use@user:mallory", false);
    check(&engine, "connection:c1#grantee@group:eng#member", true);

    let found = engine
        .lookup_subjects(
            Consistency::FullyConsistent,
            &SubjectLookup {
                resource: &ObjectRef::new("connection", "c2"),
                permission: "use",
                subject_type: "user",
                subject_relation: None,
                page: Page::default(),
            },
        )
        .unwrap()
        .value
        .to_vec();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "*");
    assert_eq!(found[0].excluded, vec!["mallory".to_string()]);

    let tree = engine
        .expand(
            Consistency::FullyConsistent,
            &ObjectRef::new("connection", "c1"),
            "use",
        )
        .unwrap()
        .value;
    let ExpandKind::Exclusion(children) = &tree.kind else {
        panic!("expected an exclusion at the root: {tree:?}")
    };
    let ExpandKind::Union(union) = &children[0].kind else {
        panic!("expected a union: {tree:?}")
    };
    assert_eq!(union.len(), 3);
    assert_eq!(
        union[1].kind,
        ExpandKind::Leaf(vec![SubjectRef::parse("group:eng#member").unwrap()])
    );
}

fn writes_are_validated_and_all_or_nothing(backend: Backend) {
    let engine = engine(backend);
    let before = engine.revision();
    for (text, wanted) in [
        ("nope:x#member@user:a", "object type `nope`"),
        ("group:g#nope@user:a", "no relation named `nope`"),
        ("connection:c#use@user:a", "is a permission"),
        ("group:g#member@group:x#member", "not allowed"),
        ("group:g#member@user:*", "not allowed"),
    ] {
        let err = engine
            .write(
                &[
                    update(Operation::Touch, "group:ok#member@user:a"),
                    update(Operation::Touch, text),
                ],
                &[],
            )
            .unwrap_err();
        assert!(err.to_string().contains(wanted), "{text}: {err}");
    }
    assert_eq!(engine.revision(), before);
    assert_eq!(engine.relationship_count(), 0);

    touch(&engine, &["group:g#member@user:a"]);
    let err = engine
        .write(
            &[
                update(Operation::Create, "group:g#member@user:b"),
                update(Operation::Create, "group:g#member@user:a"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::AlreadyExists(_)), "{err}");
    check(&engine, "group:g#member@user:b", false);

    let dup = engine
        .write(
            &[
                update(Operation::Touch, "group:g#member@user:c"),
                update(Operation::Delete, "group:g#member@user:c"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(dup, WriteError::Invalid(InvalidError::DuplicateInBatch(_))),
        "{dup}"
    );
}

fn preconditions_guard_the_batch(backend: Backend) {
    let engine = engine(backend);
    touch(&engine, &["group:g#member@user:a"]);
    let filter = RelationshipFilter {
        resource_type: Some("group".into()),
        resource_id: Some("g".into()),
        ..Default::default()
    };
    let must_not = Precondition {
        kind: PreconditionKind::MustNotMatch,
        filter: filter.clone(),
    };
    let err = engine
        .write(
            &[update(Operation::Touch, "group:h#member@user:a")],
            &[must_not],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        WriteError::PreconditionFailed {
            index: 0,
            kind: PreconditionKind::MustNotMatch
        }
    ));
    check(&engine, "group:h#member@user:a", false);
    let must = Precondition {
        kind: PreconditionKind::MustMatch,
        filter,
    };
    engine
        .write(
            &[update(Operation::Touch, "group:h#member@user:a")],
            &[must],
        )
        .unwrap();
    check(&engine, "group:h#member@user:a", true);
}

fn delete_by_filter_with_limit_and_subject_everywhere(backend: Backend) {
    let engine = engine(backend);
    touch(
        &engine,
        &[
            "group:g1#member@user:a",
            "group:g2#member@user:a",
            "group:g2#member@user:b",
            "connection:c#grantee@user:a",
            "connection:c#grantee@group:g1#member",
        ],
    );
    let by_subject = RelationshipFilter {
        subject: Some(SubjectFilter {
            subject_type: "user".into(),
            subject_id: Some("a".into()),
            relation: None,
        }),
        ..Default::default()
    };
    let limited = |over_limit| DeleteRequest {
        limit: Some(2),
        over_limit,
        ..DeleteRequest::matching(by_subject.clone())
    };
    let refused = engine.delete(&limited(OverLimit::Refuse)).unwrap_err();
    assert!(matches!(refused, WriteError::OverLimit { limit: 2 }));
    assert_eq!(engine.relationship_count(), 5);
    let partial = engine
        .delete(&limited(OverLimit::DeletePartially))
        .unwrap()
        .value;
    assert_eq!((partial.count, partial.complete), (2, false));
    let rest = engine
        .delete_subject(&SubjectRef::object("user", "a"))
        .unwrap()
        .value;
    assert_eq!((rest.count, rest.complete), (1, true));
    check(&engine, "connection:c#use@user:a", false);
    check(&engine, "connection:c#use@user:b", false);
    let groups = engine
        .delete_subject(&SubjectRef::parse("group:g1#member").unwrap())
        .unwrap()
        .value;
    assert_eq!(groups.count, 1);
    assert_eq!(engine.relationship_count(), 1);
    assert!(engine
        .delete(&DeleteRequest::matching(RelationshipFilter::default()))
        .is_err());
}

/// Every relationship `filter` selects, read page by page through cursors with `limit`
/// a page, checked against the iterator, which must page through the same order.
fn read_pages(engine: &Engine, filter: &RelationshipFilter, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<Tuple> = None;
    loop {
        let page = engine
            .read(
                Consistency::FullyConsistent,
                filter,
                ReadPage {
                    after: after.as_ref(),
                    limit,
                },
            )
            .unwrap()
            .value;
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page.into_iter().map(|t| t.to_string()));
    }
    let iterated: Vec<String> = engine
        .relationships(Consistency::FullyConsistent, filter)
        .unwrap()
        .map(|t| t.unwrap().to_string())
        .collect();
    assert_eq!(iterated, seen, "the iterator pages through the same order");
    seen
}

fn a_relation_without_a_type_reads_the_types_that_define_it_in_table_order(backend: Backend) {
    let engine = engine(backend);
    let mut member = Vec::new();
    for i in 0..30 {
        member.push(format!("group:g{i:02}#member@user:u{}", i % 4));
        member.push(format!("workspace:w{i:02}#member@user:u{}", i % 5));
    }
    let others = [
        "workspace:w00#admin@user:u1",
        "group:g00#workspace@workspace:w00",
        "connection:c0#grantee@user:u1",
    ];
    let refs: Vec<&str> = member
        .iter()
        .map(String::as_str)
        .chain(others.iter().copied())
        .collect();
    touch(&engine, &refs);
    let read_all = |relation: &str| {
        let filter = RelationshipFilter {
            relation: Some(relation.into()),
            ..Default::default()
        };
        read_pages(&engine, &filter, 7)
    };
    // Pages of 7 cross from `group` to `workspace` mid-page and resume by cursor on either.
    let mut expected = member.clone();
    expected.sort();
    assert_eq!(read_all("member"), expected);
    assert_eq!(read_all("grantee"), ["connection:c0#grantee@user:u1"]);
    assert!(read_all("nosuch").is_empty());
    let nothing = engine
        .read(
            Consistency::FullyConsistent,
            &RelationshipFilter {
                relation: Some("nosuch".into()),
                ..Default::default()
            },
            ReadPage {
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(
        nothing.revision,
        engine.revision(),
        "an empty plan still answers at the head"
    );
}

fn read_and_lookups_paginate_in_stable_order(backend: Backend) {
    let engine = engine(backend);
    let texts: Vec<String> = (0..250)
        .map(|i| format!("connection:c{i:03}#grantee@user:u{}", i % 7))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    touch(&engine, &refs);
    let filter = RelationshipFilter {
        resource_type: Some("connection".into()),
        ..Default::default()
    };
    let seen = read_pages(&engine, &filter, 40);
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    let subject = SubjectRef::object("user", "u3");
    let all = engine
        .lookup_resources(
            Consistency::FullyConsistent,
            &ResourceLookup {
                resource_type: "connection",
                permission: "use",
                subject: &subject,
                page: Page::default(),
            },
        )
        .unwrap()
        .value
        .to_vec();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = engine
            .lookup_resources(
                Consistency::FullyConsistent,
                &ResourceLookup {
                    resource_type: "connection",
                    permission: "use",
                    subject: &subject,
                    page: Page {
                        after: cursor.as_deref(),
                        limit: Some(6),
                    },
                },
            )
            .unwrap()
            .value;
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(str::to_string);
        paged.extend(page.to_vec());
    }
    assert_eq!(paged, all);
    assert_eq!(all.len(), 36);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
}

fn watch_lists_every_change_in_commit_order(backend: Backend) {
    let engine = engine(backend);
    let start = engine.revision();
    let r1 = touch(&engine, &["group:g#member@user:a", "group:g#member@user:b"]);
    let r2 = engine
        .write(&[update(Operation::Delete, "group:g#member@user:a")], &[])
        .unwrap();
    let sets = engine.changes_after(start, 100).unwrap();
    assert_eq!(
        sets.iter().map(|s| s.revision).collect::<Vec<_>>(),
        vec![r1, r2]
    );
    assert_eq!(sets[0].changes.len(), 2);
    assert_eq!(sets[1].changes[0].operation, Operation::Delete);
    assert!(engine.changes_after(Revision(r2.0 + 5), 10).is_err());
}

fn consistency_tokens_are_checked(backend: Backend) {
    let engine = engine(backend);
    let r = touch(&engine, &["group:g#member@user:a"]);
    let resource = ObjectRef::new("group", "g");
    let subject = SubjectRef::object("user", "a");
    let args = CheckArgs::new(&resource, "member", &subject);
    let answer = engine.check(Consistency::AtLeastAsFresh(r), args).unwrap();
    assert_eq!((answer.value, answer.revision), (true, r));
    let future = Consistency::AtLeastAsFresh(Revision(r.0 + 1));
    assert!(matches!(
        engine.check(future, args),
        Err(QueryError::Token(TokenError::FromTheFuture { .. }))
    ));
    assert!(engine.check(Consistency::AtExactSnapshot(r), args).is_ok());
    assert!(matches!(
        engine.check(Consistency::AtExactSnapshot(Revision(0)), args),
        Err(QueryError::SnapshotUnavailable { .. })
    ));
}

fn schema_changes_that_would_orphan_relationships_are_refused(backend: Backend) {
    let engine = engine(backend);
    touch(
        &engine,
        &[
            "connection:c#grantee@group:g#member",
            "group:g#member@user:a",
        ],
    );
    let without_userset = SCHEMA.replace("user | group#member | user:*", "user | user:*");
    let err = engine.write_schema(&without_userset).unwrap_err();
    let SchemaWriteError::WouldOrphan { examples } = &err else {
        panic!("expected an orphan refusal: {err}")
    };
    assert_eq!(examples, &["connection:c#grantee@group:g#member"]);
    assert!(err
        .to_string()
        .contains("`connection:c#grantee@group:g#member`"));
    let bad = engine.write_schema("definition user {").unwrap_err();
    assert!(matches!(bad, SchemaWriteError::Invalid(_)));
    let extended = format!("{SCHEMA}\ndefinition workbook {{\n relation viewer: user\n}}\n");
    engine.write_schema(&extended).unwrap();
    check(&engine, "group:g#member@user:a", true);
    assert_eq!(
        engine
            .read_schema(Consistency::FullyConsistent)
            .unwrap()
            .value,
        extended
    );
}

fn everything_survives_reopening(backend: Backend) {
    let place = backend.place();
    let r;
    {
        let engine = place.open();
        engine.write_schema(SCHEMA).unwrap();
        touch(
            &engine,
            &[
                "group:g#member@user:a",
                "connection:c#grantee@group:g#member",
            ],
        );
        r = engine
            .write(
                &[
                    update(Operation::Delete, "group:g#member@user:a"),
                    update(Operation::Touch, "group:g#member@user:b"),
                ],
                &[],
            )
            .unwrap();
    }
    let engine = place.open();
    assert_eq!(engine.revision(), r);
    assert_eq!(engine.relationship_count(), 2);
    check(&engine, "connection:c#use@user:b", true);
    check(&engine, "connection:c#use@user:a", false);
    let next = touch(&engine, &["group:g#member@user:z"]);
    assert_eq!(next, Revision(r.0 + 1));
    assert_eq!(
        engine.changes_after(Revision(0), 100).unwrap().len() as u64,
        next.0
    );
}

/// Writers move a grant between two groups in one batch; a torn read would see the user
/// in both groups or in neither.
fn readers_never_see_part_of_a_batch(backend: Backend) {
    let engine = Arc::new(engine(backend));
    touch(&engine, &["group:a#member@user:x"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let engine = engine.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut in_a = true;
            let mut moves = 0;
            while !stop.load(Ordering::Relaxed) || moves < 200 {
                let (from, to) = if in_a { ("a", "b") } else { ("b", "a") };
                engine
                    .write(
                        &[
                            update(Operation::Delete, &format!("group:{from}#member@user:x")),
                            update(Operation::Touch, &format!("group:{to}#member@user:x")),
                        ],
                        &[],
                    )
                    .unwrap();
                in_a = !in_a;
                moves += 1;
            }
            moves
        })
    };
    let items: Vec<crate::CheckRequest> = ["a", "b"]
        .iter()
        .map(|g| crate::CheckRequest {
            resource: ObjectRef::new("group", *g),
            permission: "member".into(),
            subject: SubjectRef::object("user", "x"),
        })
        .collect();
    // Each fully consistent read on PostgreSQL is a round trip for the head revision.
    let reads = match backend {
        Backend::Redb => 20_000,
        Backend::Postgres => 2_000,
    };
    for read in 0..reads {
        let answers = engine
            .check_bulk(
                Consistency::FullyConsistent,
                items.iter().map(crate::CheckRequest::args),
            )
            .unwrap()
            .value;
        let in_groups = answers.iter().filter(|a| *a.as_ref().unwrap()).count();
        assert_eq!(in_groups, 1, "torn read after {read} reads");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() >= 200);
}

#[test]
fn damaged_store_files_are_refused_not_reinitialized() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let err = Engine::open(&empty)
        .err()
        .expect("an empty file is refused");
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "nothing was written to it"
    );

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).unwrap();
    assert!(Engine::open(&garbage).is_err());

    let good = dir.path().join("good.redb");
    {
        let engine = Engine::open(&good).unwrap();
        engine.write_schema(SCHEMA).unwrap();
        touch(&engine, &["group:g#member@user:a"]);
    }
    let len = std::fs::metadata(&good).unwrap().len();
    let truncated = dir.path().join("truncated.redb");
    std::fs::write(
        &truncated,
        &std::fs::read(&good).unwrap()[..(len / 2) as usize],
    )
    .unwrap();
    assert!(
        Engine::open(&truncated).is_err(),
        "a store cut in half is refused"
    );
}

/// The open-time cross-check: the subject-ordered copy is changed behind the engine's
/// back (redb keeps no page checksums), with the count kept and then not.
#[test]
fn a_store_whose_two_copies_differ_is_refused() {
    const BY_SUBJECT: ::redb::TableDefinition<&[u8], ()> =
        ::redb::TableDefinition::new("relationships_by_subject");
    let subject_key = |fields: [&str; 6]| fields.join("\0").into_bytes();
    let kept = ["user", "a", "", "group", "g", "member"];
    let dir = tempfile::tempdir().unwrap();
    let tamper = |name: &str, remove: bool, add: Option<Vec<u8>>| {
        let path = dir.path().join(name);
        {
            let engine = Engine::open(&path).unwrap();
            engine.write_schema(SCHEMA).unwrap();
            touch(&engine, &["group:g#member@user:a", "group:g#member@user:b"]);
        }
        let db = ::redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(BY_SUBJECT).unwrap();
            if remove {
                assert!(table
                    .remove(subject_key(kept).as_slice())
                    .unwrap()
                    .is_some());
            }
            if let Some(key) = add {
                table.insert(key.as_slice(), ()).unwrap();
            }
        }
        txn.commit().unwrap();
        drop(db);
        Engine::open(&path).err().map(|e| e.to_string())
    };
    assert_eq!(tamper("untouched.redb", false, None), None);
    let swapped = tamper(
        "swapped.redb",
        true,
        Some(subject_key(["user", "c", "", "group", "g", "member"])),
    )
    .expect("a changed relationship is refused");
    assert!(
        swapped.contains(
            "`group:g#member@user:c` is in its subject index but not in its resource index"
        ),
        "{swapped}"
    );
    // The subject-ordered copy is only digested unless the digests differ: a key that is
    // not UTF-8 is then read, and refused.
    let garbled = tamper(
        "garbled.redb",
        true,
        Some(b"user\0\xff\0\0group\0g\0member".to_vec()),
    )
    .expect("a key that is not UTF-8 is refused");
    assert!(garbled.contains("malformed relationship key"), "{garbled}");
    let missing = tamper("missing.redb", true, None).expect("a missing relationship is refused");
    assert!(
        missing.contains("its resource index holds 2 relationships, its subject index 1"),
        "{missing}"
    );
}

on_both_stores!(
    groups_arrows_wildcards_and_exclusions,
    writes_are_validated_and_all_or_nothing,
    preconditions_guard_the_batch,
    delete_by_filter_with_limit_and_subject_everywhere,
    a_relation_without_a_type_reads_the_types_that_define_it_in_table_order,
    read_and_lookups_paginate_in_stable_order,
    watch_lists_every_change_in_commit_order,
    consistency_tokens_are_checked,
    schema_changes_that_would_orphan_relationships_are_refused,
    everything_survives_reopening,
    readers_never_see_part_of_a_batch,
);
