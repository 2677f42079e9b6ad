//! Issue 12 §3: names that Unicode makes look alike, or the same, never coexist in a
//! workspace, on create, rename and CSV import alike.

use std::sync::Arc;

use pemba_engine::Engine;

use crate::groups::error::{Conflict, GroupsError, RowProblem};
use crate::groups::model::{Actor, GroupChanges, NewGroup, NewWorkspace};
use crate::groups::Groups;

fn acme() -> Groups {
    let engine = Arc::new(Engine::in_memory().unwrap());
    engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
    let groups = Groups::new(engine);
    groups
        .create_workspace(
            "acme",
            Ok(NewWorkspace {
                admin: Some("ann".into()),
            }),
        )
        .unwrap();
    groups
}

fn create(groups: &Groups, name: &str) -> Result<String, GroupsError> {
    groups
        .create_group(
            &Actor::new("ann").unwrap(),
            "acme",
            Ok(NewGroup {
                name: Some(name.into()),
                ..NewGroup::default()
            }),
        )
        .map(|g| g.id)
}

/// Each of these was accepted beside `Engineering` (or `Straße`, `Café`) before.
const TAKEN_OR_CONFUSABLE: &[(&str, &str)] = &[
    ("Engineering", "ENGINEERING"),
    ("Café", "Cafe\u{301}"),
    ("Cafe\u{301}", "Café"),
    ("Straße", "STRASSE"),
    ("Engineering", "\u{415}ngineering"),
    ("Engineering", "\u{FF25}\u{FF4E}gineering"),
];

#[test]
fn issue_12_names_equal_after_folding_or_confusable_are_refused_on_create() {
    for (first, second) in TAKEN_OR_CONFUSABLE {
        let groups = acme();
        create(&groups, first).unwrap();
        let refused = create(&groups, second).unwrap_err();
        assert!(
            matches!(
                refused,
                GroupsError::Conflict(Conflict::NameTaken { .. } | Conflict::NameConfusable { .. })
            ),
            "{first:?} then {second:?}: {refused:?}"
        );
    }
}

#[test]
fn issue_12_the_same_rules_hold_on_rename_and_import() {
    let groups = acme();
    let ann = Actor::new("ann").unwrap();
    create(&groups, "Engineering").unwrap();
    let sales = create(&groups, "Sales").unwrap();
    let renamed = groups.update_group(
        &ann,
        "acme",
        &sales,
        Ok(GroupChanges {
            name: Some("\u{415}ngineering".into()),
            ..GroupChanges::default()
        }),
    );
    assert!(
        matches!(
            renamed,
            Err(GroupsError::Conflict(Conflict::NameConfusable { ref existing, .. })) if existing == "Engineering"
        ),
        "{renamed:?}"
    );
    // A group may be renamed to a name confusable only with its own.
    groups
        .update_group(
            &ann,
            "acme",
            &sales,
            Ok(GroupChanges {
                name: Some("SALES".into()),
                ..GroupChanges::default()
            }),
        )
        .unwrap();
    let csv = "group,member\n\u{415}ngineering,\nSupport,\nSupp\u{43E}rt,\nEng\u{200B},\n";
    let Err(GroupsError::ImportRefused { rows }) = groups.import_csv(&ann, "acme", csv.as_bytes())
    else {
        panic!("the import is refused")
    };
    let lines: Vec<_> = rows.iter().map(|row| row.line).collect();
    assert_eq!(lines, [2, 4, 5], "{rows:?}");
    assert!(matches!(
        rows.first().map(|row| &row.problem),
        Some(RowProblem::Taken(Conflict::NameConfusable { .. }))
    ));
}
