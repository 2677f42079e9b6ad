//! The typed values commands of [`super::Groups`] take and return: the actor, roles,
//! shareable resources and grantees, command inputs, and result records.

use pemba_engine::is_valid_object_id;

use super::error::{GroupsError, Invalid};
use super::vocabulary::{connection, workbook, workspace};

/// A command input as the protocol layer read it: the value, or why it could not be read.
/// Commands report a reading failure only after the actor is authorized, so an outsider
/// learns nothing from it.
pub type Input<T> = Result<T, GroupsError>;

/// The workspace member a command acts for: a valid user id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor(String);

impl Actor {
    /// `id` as an actor, if it is a valid user id (1 to 1024 letters, digits or `/_|-=+`).
    pub fn new(id: &str) -> Option<Actor> {
        is_valid_object_id(id).then(|| Actor(id.to_string()))
    }

    /// The user id.
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// A workspace role: each member has exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Manages members, groups and every resource.
    Admin,
    /// Creates and shares their own resources.
    Editor,
    /// Creates and shares their own resources (the schema gives editors nothing more here).
    Viewer,
}

impl Role {
    /// The role's name, which is also its relation of `workspace`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => workspace::ADMIN,
            Role::Editor => workspace::EDITOR,
            Role::Viewer => workspace::VIEWER,
        }
    }

    /// The role whose name (or `workspace` relation) is `name`.
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Admin, Role::Editor, Role::Viewer]
            .into_iter()
            .find(|role| role.name() == name)
    }

    /// A role as a request names it; naming none is refused.
    pub fn parse(text: Option<&str>) -> Input<Role> {
        let text = text.ok_or(Invalid::RoleRequired)?;
        Role::from_name(text).ok_or_else(|| {
            Invalid::UnknownRole {
                text: text.to_string(),
            }
            .into()
        })
    }
}

/// How a workbook is shared: as editor or as viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkbookRole {
    /// May edit (and view).
    Editor,
    /// May view.
    Viewer,
}

impl WorkbookRole {
    /// The role's name, which is also its relation of `workbook`.
    pub fn name(self) -> &'static str {
        match self {
            WorkbookRole::Editor => workbook::EDITOR,
            WorkbookRole::Viewer => workbook::VIEWER,
        }
    }

    /// The role whose name (or `workbook` relation) is `name`.
    pub fn from_name(name: &str) -> Option<WorkbookRole> {
        [WorkbookRole::Editor, WorkbookRole::Viewer]
            .into_iter()
            .find(|role| role.name() == name)
    }

    /// The role a request names, `None` when it names none (refused later, for workbooks).
    pub fn parse(text: Option<&str>) -> Input<Option<WorkbookRole>> {
        let Some(text) = text else {
            return Ok(None);
        };
        WorkbookRole::from_name(text).map(Some).ok_or_else(|| {
            Invalid::UnknownWorkbookRole {
                text: text.to_string(),
            }
            .into()
        })
    }
}

/// The two kinds of shareable resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A connection: one grant relation.
    Connection,
    /// A workbook: granted as editor or viewer.
    Workbook,
}

impl ResourceKind {
    /// The object type, which is also the word used in messages.
    pub fn type_name(self) -> &'static str {
        match self {
            ResourceKind::Connection => connection::TYPE,
            ResourceKind::Workbook => workbook::TYPE,
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

/// A connection or workbook, by id (scoped to the workspace a command names).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    /// Connection or workbook.
    pub kind: ResourceKind,
    /// Its id.
    pub id: String,
}

/// Whom a resource is shared with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Grantee {
    /// Every member of a group of the workspace.
    Group(String),
    /// One workspace member.
    User(String),
}

impl Grantee {
    /// The id named.
    pub fn id(&self) -> &str {
        match self {
            Grantee::Group(id) | Grantee::User(id) => id,
        }
    }
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grantee::Group(id) => write!(f, "group `{id}`"),
            Grantee::User(id) => write!(f, "user `{id}`"),
        }
    }
}

/// [`super::Groups::create_workspace`]: the first admin, as the request names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewWorkspace {
    /// The user id of the first admin (required).
    pub admin: Option<String>,
}

/// [`super::Groups::create_group`]: the group as the request describes it, checked by the
/// command (name rules, members of the workspace).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewGroup {
    /// The name (required).
    pub name: Option<String>,
    /// The description (optional).
    pub description: Option<String>,
    /// Initial members' user ids; repeats count once.
    pub members: Vec<String>,
}

/// [`super::Groups::update_group`]: what to change; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupChanges {
    /// A new name, under the rules of creation.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// A workspace just created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceCreated {
    /// Its id.
    pub id: String,
    /// Its first admin.
    pub admin: String,
}

/// The outcome of [`super::Groups::set_role`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSet {
    /// The member.
    pub user: String,
    /// Their role now.
    pub role: Role,
    /// True when they were not a member before.
    pub added: bool,
}

/// A workspace member with their role and groups (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// User id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// The groups of the workspace they are in.
    pub groups: Vec<GroupRef>,
}

/// A group by id and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRef {
    /// Group id.
    pub id: String,
    /// Group name.
    pub name: String,
}

/// A group as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// How many members it has.
    pub member_count: usize,
}

/// A group opened: its members with their roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDetail {
    /// Group id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Members by user id.
    pub members: Vec<GroupMember>,
}

/// A member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// User id.
    pub id: String,
    /// Their workspace role (`None` only if they left the workspace mid-request).
    pub role: Option<Role>,
}

/// A resource a group has access to, with the relation granting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedResource {
    /// Object type (`connection`, `workbook`).
    pub object_type: String,
    /// Its id in the workspace (as the routes name it).
    pub id: String,
    /// The engine object apps check (`connection:acme/warehouse`).
    pub object: String,
    /// The grant relation.
    pub relation: String,
}

/// A connection or workbook of a workspace, as [`super::Groups::list_resources`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedResource {
    /// Resource id, as the workspace's routes name it.
    pub id: String,
    /// Its owners (the member who created it, unless ownership was revoked).
    pub owners: Vec<String>,
}

/// The outcome of [`super::Groups::create_resource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceCreated {
    /// Resource id, as the routes name it.
    pub id: String,
    /// The engine object apps check (`connection:acme/warehouse`): the id scoped to its
    /// workspace.
    pub object: String,
    /// Its workspace.
    pub workspace: String,
    /// Its owner: the actor.
    pub owner: String,
    /// False when the actor already owned it here (nothing was written).
    pub created: bool,
}

/// The outcome of [`super::Groups::share`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shared {
    /// Shared with a group.
    Group {
        /// Group id.
        group: String,
        /// How many members now have access through it.
        member_count: usize,
        /// For workbooks, the role granted.
        role: Option<WorkbookRole>,
    },
    /// Shared with a user.
    User {
        /// User id.
        user: String,
        /// For workbooks, the role granted.
        role: Option<WorkbookRole>,
    },
}

/// Who has access to a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Owners' user ids.
    pub owners: Vec<String>,
    /// Users granted directly, by id.
    pub users: Vec<UserAccess>,
    /// Groups granted, by name.
    pub groups: Vec<GroupAccess>,
}

/// A direct grant to a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAccess {
    /// User id.
    pub id: String,
    /// For workbooks, the role granted.
    pub role: Option<WorkbookRole>,
}

/// A grant to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupAccess {
    /// Group id.
    pub id: String,
    /// Group name.
    pub name: String,
    /// How many members it has.
    pub member_count: usize,
    /// For workbooks, the role granted.
    pub role: Option<WorkbookRole>,
}
