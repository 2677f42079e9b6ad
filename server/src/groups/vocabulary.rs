//! The schema vocabulary of the user-groups feature: every definition, relation and
//! permission name it writes, checks or promises apps, in one place, and [`missing`], which
//! compares them with a loaded schema.
//!
//! The rest of the feature spells schema names only through these constants, so a renamed
//! relation in `schemas/user-groups.zed` is one edit here, and [`missing`] names whatever a
//! schema written later no longer has.

use pemba_engine::LoadedSchema;

/// `definition user`: the people who act and who are granted access.
pub mod user {
    /// The type name.
    pub const TYPE: &str = "user";
}

/// `definition workspace`: its members, one role relation each, and what each role may do.
pub mod workspace {
    /// The type name.
    pub const TYPE: &str = "workspace";
    /// Relation: the admins (also the role's name in the API).
    pub const ADMIN: &str = "admin";
    /// Relation: the editors (also the role's name in the API).
    pub const EDITOR: &str = "editor";
    /// Relation: the viewers (also the role's name in the API).
    pub const VIEWER: &str = "viewer";
    /// Permission: anyone with a role.
    pub const MEMBER: &str = "member";
    /// Permission: add members, change roles, remove members.
    pub const MANAGE_MEMBERS: &str = "manage_members";
    /// Permission: create groups (one by one or from CSV).
    pub const MANAGE_GROUPS: &str = "manage_groups";
    /// Permission: list groups and see who is in which.
    pub const VIEW_GROUPS: &str = "view_groups";
    /// Permission: list the members.
    pub const VIEW_MEMBERS: &str = "view_members";
    /// Permission: create connections and workbooks.
    pub const CREATE_RESOURCES: &str = "create_resources";
}

/// `definition group`: a flat set of workspace members.
pub mod group {
    /// The type name.
    pub const TYPE: &str = "group";
    /// Relation: the workspace the group belongs to.
    pub const WORKSPACE: &str = "workspace";
    /// Relation: the members (users only: groups are not nested).
    pub const MEMBER: &str = "member";
    /// Permission: open the group.
    pub const VIEW: &str = "view";
    /// Permission: rename, describe, delete, add and remove members.
    pub const MANAGE: &str = "manage";
    /// Permission: list the resources shared with the group.
    pub const VIEW_RESOURCES: &str = "view_resources";
}

/// `definition connection`: a data source shared with users and groups.
pub mod connection {
    /// The type name.
    pub const TYPE: &str = "connection";
    /// Relation: the workspace the connection belongs to.
    pub const WORKSPACE: &str = "workspace";
    /// Relation: the member who created it.
    pub const OWNER: &str = "owner";
    /// Relation: users and groups it is shared with.
    pub const GRANTEE: &str = "grantee";
    /// Permission apps check: may the subject use it.
    pub const USE: &str = "use";
    /// Permission: share, unshare and list access.
    pub const MANAGE: &str = "manage";
}

/// `definition workbook`: shared with users and groups as editors or viewers.
pub mod workbook {
    /// The type name.
    pub const TYPE: &str = "workbook";
    /// Relation: the workspace the workbook belongs to.
    pub const WORKSPACE: &str = "workspace";
    /// Relation: the member who created it.
    pub const OWNER: &str = "owner";
    /// Relation: users and groups who may edit it.
    pub const EDITOR: &str = "editor";
    /// Relation: users and groups who may view it.
    pub const VIEWER: &str = "viewer";
    /// Permission apps check: may the subject edit it.
    pub const EDIT: &str = "edit";
    /// Permission apps check: may the subject view it.
    pub const VIEW: &str = "view";
    /// Permission: share, unshare and list access.
    pub const MANAGE: &str = "manage";
}

/// One thing the feature needs from the schema.
enum Need {
    /// `definition TYPE`.
    Definition(&'static str),
    /// A relation the feature writes, with every subject type it writes into it.
    Relation(&'static str, &'static str, &'static [&'static str]),
    /// A name the feature or its apps check (a permission, or a relation).
    Checked(&'static str, &'static str),
}

/// Everything the feature needs, definitions first.
const NEEDS: &[Need] = &[
    Need::Definition(user::TYPE),
    Need::Definition(workspace::TYPE),
    Need::Definition(group::TYPE),
    Need::Definition(connection::TYPE),
    Need::Definition(workbook::TYPE),
    Need::Relation(workspace::TYPE, workspace::ADMIN, &[user::TYPE]),
    Need::Relation(workspace::TYPE, workspace::EDITOR, &[user::TYPE]),
    Need::Relation(workspace::TYPE, workspace::VIEWER, &[user::TYPE]),
    Need::Checked(workspace::TYPE, workspace::MEMBER),
    Need::Checked(workspace::TYPE, workspace::MANAGE_MEMBERS),
    Need::Checked(workspace::TYPE, workspace::MANAGE_GROUPS),
    Need::Checked(workspace::TYPE, workspace::VIEW_GROUPS),
    Need::Checked(workspace::TYPE, workspace::VIEW_MEMBERS),
    Need::Checked(workspace::TYPE, workspace::CREATE_RESOURCES),
    Need::Relation(group::TYPE, group::WORKSPACE, &[workspace::TYPE]),
    Need::Relation(group::TYPE, group::MEMBER, &[user::TYPE]),
    Need::Checked(group::TYPE, group::VIEW),
    Need::Checked(group::TYPE, group::MANAGE),
    Need::Checked(group::TYPE, group::VIEW_RESOURCES),
    Need::Relation(connection::TYPE, connection::WORKSPACE, &[workspace::TYPE]),
    Need::Relation(connection::TYPE, connection::OWNER, &[user::TYPE]),
    Need::Relation(
        connection::TYPE,
        connection::GRANTEE,
        &[user::TYPE, group::TYPE],
    ),
    Need::Checked(connection::TYPE, connection::USE),
    Need::Checked(connection::TYPE, connection::MANAGE),
    Need::Relation(workbook::TYPE, workbook::WORKSPACE, &[workspace::TYPE]),
    Need::Relation(workbook::TYPE, workbook::OWNER, &[user::TYPE]),
    Need::Relation(workbook::TYPE, workbook::EDITOR, &[user::TYPE, group::TYPE]),
    Need::Relation(workbook::TYPE, workbook::VIEWER, &[user::TYPE, group::TYPE]),
    Need::Checked(workbook::TYPE, workbook::EDIT),
    Need::Checked(workbook::TYPE, workbook::VIEW),
    Need::Checked(workbook::TYPE, workbook::MANAGE),
];

/// What `schema` lacks of the feature's vocabulary, empty when it has it all: `definition
/// workspace` for a missing type (its members are then not listed), `workspace#manage_groups`
/// for a missing relation or permission, `relation group#member` where the feature writes
/// relationships but the schema has a permission, and `connection#grantee: group` where a
/// relation does not accept a subject type the feature writes into it. No schema lacks
/// every definition.
pub fn missing(schema: Option<&LoadedSchema>) -> Vec<String> {
    let mut lacks = Vec::new();
    let mut absent_types = Vec::new();
    for need in NEEDS {
        let (ty, name) = match need {
            Need::Definition(ty) => {
                if schema.and_then(|s| s.compiled.type_by_name(ty)).is_none() {
                    absent_types.push(*ty);
                    lacks.push(format!("definition {ty}"));
                }
                continue;
            }
            Need::Relation(ty, name, _) | Need::Checked(ty, name) => (*ty, *name),
        };
        let Some(compiled) = schema.map(|s| &s.compiled) else {
            continue;
        };
        if absent_types.contains(&ty) {
            continue;
        }
        let Some(member) = compiled
            .type_by_name(ty)
            .and_then(|t| compiled.member_by_name(t, name))
        else {
            lacks.push(format!("{ty}#{name}"));
            continue;
        };
        let Need::Relation(_, _, subjects) = need else {
            continue;
        };
        let Some(allowed) = compiled.allowed_subjects(member) else {
            lacks.push(format!("relation {ty}#{name}"));
            continue;
        };
        for subject in *subjects {
            let accepted = compiled
                .type_by_name(subject)
                .is_some_and(|wanted| allowed.iter().any(|a| a.type_id() == wanted));
            if !accepted {
                lacks.push(format!("{ty}#{name}: {subject}"));
            }
        }
    }
    lacks
}

#[cfg(test)]
mod tests {
    use super::*;
    use pemba_engine::Engine;

    /// What [`missing`] says of `text`, loaded into a fresh engine.
    #[track_caller]
    fn check(text: &str, expected: &[&str]) {
        let engine = Engine::in_memory().unwrap();
        engine.write_schema(text).unwrap();
        assert_eq!(missing(engine.schema().as_deref()), expected);
    }

    #[test]
    fn the_shipped_schema_has_every_name() {
        check(crate::DEFAULT_SCHEMA, &[]);
    }

    #[test]
    fn no_schema_lacks_every_definition() {
        assert_eq!(
            missing(None),
            [
                "definition user",
                "definition workspace",
                "definition group",
                "definition connection",
                "definition workbook"
            ]
        );
    }

    #[test]
    fn names_missing_members_kinds_and_subject_types() {
        let text = crate::DEFAULT_SCHEMA
            .replace("permission manage_groups = admin\n", "")
            .replace("relation member: user", "relation member: workspace")
            .replace(
                "relation grantee: user | group#member",
                "relation grantee: user",
            )
            .replace("definition workbook {", "definition notebook {");
        check(
            &text,
            &[
                "definition workbook",
                "workspace#manage_groups",
                "group#member: user",
                "connection#grantee: group",
            ],
        );
    }
}
