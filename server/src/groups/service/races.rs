//! Issue 12 §1 and §3: authorization and name uniqueness hold at the revision a change
//! commits. Each test races a command against the change that takes its actor's permission
//! away (or a create of a confusable name), many times over a
//! durable store (an fsync is a wide window between another writer's check and its commit),
//! and checks in the change log that no change by the actor committed after the revision
//! that took the permission away.

use std::sync::{Arc, Barrier};

use pemba_engine::{Engine, Operation, Revision, Tuple};

use crate::groups::error::Conflict;
use crate::groups::model::{Actor, Grantee, NewGroup, NewWorkspace, Resource, ResourceKind, Role};
use crate::groups::{Groups, GroupsError};

const ROUNDS: usize = 60;

/// Workspace `acme` on a durable store, with admin `ann` and `members` in their roles.
fn acme(members: &[(&str, Role)]) -> (tempfile::TempDir, Arc<Engine>, Arc<Groups>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(&dir.path().join("store.redb")).unwrap());
    engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
    let groups = Arc::new(Groups::new(engine.clone()));
    let admin = Some("ann".to_string());
    groups
        .create_workspace("acme", Ok(NewWorkspace { admin }))
        .unwrap();
    for (user, role) in members {
        groups
            .set_role(&actor("ann"), "acme", user, Ok(*role))
            .unwrap();
    }
    (dir, engine, groups)
}

/// A group of `acme` created by `ann`; its id.
fn group(groups: &Groups, name: &str, members: Vec<String>) -> String {
    groups
        .create_group(
            &actor("ann"),
            "acme",
            Ok(NewGroup {
                name: Some(name.into()),
                members,
                ..NewGroup::default()
            }),
        )
        .unwrap()
        .id
}

fn actor(id: &str) -> Actor {
    Actor::new(id).unwrap()
}

/// The revision at which the change log first shows `operation` of `tuple`.
fn revision_of(engine: &Engine, operation: Operation, tuple: &str) -> Option<Revision> {
    let tuple = Tuple::parse(tuple).unwrap();
    engine
        .changes_after(Revision(0), usize::MAX)
        .unwrap()
        .into_iter()
        .find(|set| {
            set.changes
                .iter()
                .any(|c| c.operation == operation && c.tuple == tuple)
        })
        .map(|set| set.revision)
}

/// Runs `a` and `b` at the same moment; their results.
fn race<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            barrier.wait();
            a()
        });
        let second = scope.spawn(|| {
            barrier.wait();
            b()
        });
        (first.join().unwrap(), second.join().unwrap())
    })
}

#[test]
fn issue_12_two_admins_demoting_each_other_cannot_both_win() {
    for round in 0..ROUNDS {
        let (_dir, _engine, groups) = acme(&[("bob", Role::Admin), ("carol", Role::Admin)]);
        let (ann, bob) = race(
            || groups.set_role(&actor("ann"), "acme", "bob", Ok(Role::Viewer)),
            || groups.set_role(&actor("bob"), "acme", "ann", Ok(Role::Viewer)),
        );
        assert!(
            ann.is_ok() != bob.is_ok(),
            "round {round}: exactly one demotion lands: {ann:?} / {bob:?}"
        );
        let loser = if ann.is_ok() { bob } else { ann };
        assert!(
            matches!(loser, Err(GroupsError::Forbidden { .. })),
            "round {round}: {loser:?}"
        );
    }
}

#[test]
fn issue_12_an_owner_removed_from_the_workspace_shares_nothing_afterwards() {
    for round in 0..ROUNDS {
        let (_dir, engine, groups) = acme(&[("olga", Role::Editor)]);
        let group = group(&groups, "Eng", Vec::new());
        let connection = Resource {
            kind: ResourceKind::Connection,
            id: format!("c{round}"),
        };
        groups
            .create_resource(&actor("olga"), "acme", &connection)
            .unwrap();
        let (removed, shared) = race(
            || groups.remove_from_workspace(&actor("ann"), "acme", "olga"),
            || {
                groups.share(
                    &actor("olga"),
                    "acme",
                    &connection,
                    &Grantee::Group(group.clone()),
                    Ok(None),
                )
            },
        );
        removed.unwrap();
        let removal = revision_of(
            &engine,
            Operation::Delete,
            "workspace:acme#editor@user:olga",
        )
        .expect("the removal is logged");
        let grant = format!("connection:acme/c{round}#grantee@group:{group}#member");
        if let Some(granted) = revision_of(&engine, Operation::Touch, &grant) {
            assert!(
                granted < removal,
                "round {round}: shared at {granted:?}, after the owner left at {removal:?}"
            );
            assert!(shared.is_ok());
        } else {
            assert!(shared.is_err(), "round {round}: {shared:?}");
        }
    }
}

#[test]
fn issue_12_an_admin_removed_from_the_workspace_creates_no_group_afterwards() {
    for round in 0..ROUNDS {
        let (_dir, engine, groups) = acme(&[("adam", Role::Admin)]);
        let (removed, created) = race(
            || groups.remove_from_workspace(&actor("ann"), "acme", "adam"),
            || {
                groups.create_group(
                    &actor("adam"),
                    "acme",
                    Ok(NewGroup {
                        name: Some("Late".into()),
                        ..NewGroup::default()
                    }),
                )
            },
        );
        removed.unwrap();
        let removal = revision_of(&engine, Operation::Delete, "workspace:acme#admin@user:adam")
            .expect("the removal is logged");
        if let Ok(group) = created {
            let made = revision_of(
                &engine,
                Operation::Touch,
                &format!("group:{}#workspace@workspace:acme", group.id),
            )
            .expect("the group is logged");
            assert!(
                made < removal,
                "round {round}: group created at {made:?}, after its creator left at {removal:?}"
            );
        }
    }
}

/// Issue 12 §2: a removal from the workspace that answers success removed every
/// membership as of its commit, and one that answers failure wrote nothing, whatever an
/// add-to-group and a re-add to the workspace did at the same moment.
#[test]
fn issue_12_a_removal_from_the_workspace_is_all_or_nothing_and_says_which() {
    for round in 0..ROUNDS {
        let (_dir, engine, groups) = acme(&[("bob", Role::Editor)]);
        let first = group(&groups, "First", vec!["bob".into()]);
        let second = group(&groups, "Second", Vec::new());
        let barrier = Barrier::new(3);
        let (removed, _added, _readded) = std::thread::scope(|scope| {
            let removal = scope.spawn(|| {
                barrier.wait();
                groups.remove_from_workspace(&actor("ann"), "acme", "bob")
            });
            let addition = scope.spawn(|| {
                barrier.wait();
                groups.add_member(&actor("ann"), "acme", &second, "bob")
            });
            let readdition = scope.spawn(|| {
                barrier.wait();
                std::thread::yield_now();
                groups.set_role(&actor("ann"), "acme", "bob", Ok(Role::Viewer))
            });
            (
                removal.join().unwrap(),
                addition.join().unwrap(),
                readdition.join().unwrap(),
            )
        });
        let first_membership = format!("group:{first}#member@user:bob");
        let second_membership = format!("group:{second}#member@user:bob");
        let removed_at = revision_of(&engine, Operation::Delete, &first_membership);
        match removed {
            Ok(()) => {
                let removed_at = removed_at.expect("a successful removal deleted the membership");
                if let Some(added_at) = revision_of(&engine, Operation::Touch, &second_membership) {
                    let deleted = revision_of(&engine, Operation::Delete, &second_membership);
                    assert!(
                        added_at > removed_at || deleted == Some(removed_at),
                        "round {round}: a membership added at {added_at:?} survived the removal at {removed_at:?}"
                    );
                }
            }
            Err(error) => assert_eq!(
                removed_at, None,
                "round {round}: the removal answered {error:?} but deleted the membership"
            ),
        }
    }
}

/// Issue 12 §3: two admins creating names that look alike (`Engineering`, and the same
/// with a Cyrillic `Е`) at the same moment: at most one commits, and the other is refused
/// as confusable. Before the skeleton key, both committed whenever neither saw the other.
#[test]
fn issue_12_concurrent_creates_of_confusable_names_leave_one() {
    for round in 0..ROUNDS {
        let (_dir, _engine, groups) = acme(&[("adam", Role::Admin)]);
        let create = |admin: &str, name: &str| {
            groups.create_group(
                &actor(admin),
                "acme",
                Ok(NewGroup {
                    name: Some(name.into()),
                    ..NewGroup::default()
                }),
            )
        };
        let (latin, cyrillic) = race(
            || create("ann", "Engineering"),
            || create("adam", "\u{415}ngineering"),
        );
        assert!(
            latin.is_ok() != cyrillic.is_ok(),
            "round {round}: {latin:?} / {cyrillic:?}"
        );
        let refused = latin.err().or(cyrillic.err()).unwrap();
        assert!(
            matches!(
                refused,
                GroupsError::Conflict(Conflict::NameConfusable { .. })
            ),
            "round {round}: {refused:?}"
        );
        let listed = groups.list_groups(&actor("ann"), "acme", None).unwrap();
        assert_eq!(listed.len(), 1, "round {round}: {listed:?}");
    }
}
