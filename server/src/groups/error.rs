//! [`GroupsError`]: why a user-groups command was refused, as typed variants a caller
//! matches on (the protocol layer picks a status from the variant, never from the text).
//! Every refusal means nothing was written.

use pemba_engine::EngineError;

use super::model::{Grantee, ResourceKind};
use super::names::{
    MAX_CODE_POINTS_PER_CHAR, MAX_DESCRIPTION_CHARS, MAX_NAME_BYTES, MAX_NAME_CHARS,
};

/// Why a command of [`super::Groups`] was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupsError {
    /// The loaded schema lacks names the feature relies on (see [`super::vocabulary`]).
    #[error(
        "the user-groups routes need the shipped schema (schemas/user-groups.zed); the current schema lacks {}",
        backticked(.missing)
    )]
    SchemaLacks {
        /// What is missing, as [`super::vocabulary::missing`] names it.
        missing: Vec<String>,
    },
    /// Something the command names does not exist (in this workspace).
    #[error("{what}")]
    NotFound {
        /// What was not found.
        what: Missing,
    },
    /// The actor is not a member of the workspace.
    #[error("`{actor}` is not a member of workspace `{workspace}`")]
    NotAMember {
        /// The actor.
        actor: String,
        /// The workspace.
        workspace: String,
    },
    /// The engine says the actor may not do this.
    #[error("`{actor}` may not {action} (`{check}` does not include them)")]
    Forbidden {
        /// The actor.
        actor: String,
        /// What they tried.
        action: Action,
        /// The check that said no, `type:id#permission`.
        check: String,
    },
    /// The command conflicts with what is stored.
    #[error("{0}")]
    Conflict(Conflict),
    /// An input the feature does not accept.
    #[error("{0}")]
    Invalid(Invalid),
    /// Users who cannot become group members or grantees, each with the reason.
    #[error("{purpose}: {}", joined(.reasons))]
    Ineligible {
        /// What they were to become.
        purpose: Purpose,
        /// Why each cannot, in id order.
        reasons: Vec<Ineligibility>,
    },
    /// A request the protocol layer could not read at all.
    #[error("invalid request body: {reason}")]
    Unreadable {
        /// What was wrong with it.
        reason: String,
    },
    /// A CSV import with bad rows: nothing was created.
    #[error(
        "{} bad row{} in the CSV; nothing was created",
        .rows.len(),
        plural(.rows.len())
    )]
    ImportRefused {
        /// Every bad row, in file order.
        rows: Vec<RowError>,
    },
    /// A stored record could not be read back.
    #[error("the stored record `{key}` is unreadable: {reason}")]
    Corrupt {
        /// Its metadata key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The system had no randomness for a new group id.
    #[error("cannot draw a random group id: {reason}")]
    NoRandomness {
        /// Why.
        reason: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Each engine error family reaches the service through [`EngineError`].
macro_rules! from_engine_family {
    ($($ty:ty),*) => {$(
        impl From<$ty> for GroupsError {
            fn from(error: $ty) -> Self {
                GroupsError::Engine(error.into())
            }
        }
    )*};
}

from_engine_family!(
    pemba_engine::QueryError,
    pemba_engine::WriteError,
    pemba_engine::StorageError
);

impl From<Invalid> for GroupsError {
    fn from(invalid: Invalid) -> Self {
        GroupsError::Invalid(invalid)
    }
}

impl From<Conflict> for GroupsError {
    fn from(conflict: Conflict) -> Self {
        GroupsError::Conflict(conflict)
    }
}

impl From<Missing> for GroupsError {
    fn from(what: Missing) -> Self {
        GroupsError::NotFound { what }
    }
}

/// The plural ending for `count` things.
fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

fn backticked(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

fn joined(reasons: &[Ineligibility]) -> String {
    let texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// What a command named that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Missing {
    /// No such workspace.
    #[error("no workspace `{workspace}`")]
    Workspace {
        /// Workspace id.
        workspace: String,
    },
    /// No such group in the workspace.
    #[error("no group `{group}` in workspace `{workspace}`")]
    Group {
        /// Workspace id.
        workspace: String,
        /// Group id.
        group: String,
    },
    /// No such connection or workbook in the workspace.
    #[error("no {kind} `{id}` in workspace `{workspace}`")]
    Resource {
        /// Connection or workbook.
        kind: ResourceKind,
        /// Workspace id.
        workspace: String,
        /// Resource id.
        id: String,
    },
    /// The user is not a member of the workspace.
    #[error("`{user}` is not a member of workspace `{workspace}`")]
    WorkspaceMember {
        /// Workspace id.
        workspace: String,
        /// User id.
        user: String,
    },
    /// The user is not a member of the group.
    #[error("`{user}` is not a member of group `{group}`")]
    GroupMember {
        /// Group id.
        group: String,
        /// User id.
        user: String,
    },
    /// The resource is not shared with the grantee.
    #[error("{kind} `{id}` is not shared with {grantee}")]
    Grant {
        /// Connection or workbook.
        kind: ResourceKind,
        /// Resource id.
        id: String,
        /// The grantee named.
        grantee: Grantee,
    },
}

/// Why a name asked for is the name of the group that has it, when the two differ.
fn same_name(name: &str, existing: &str) -> String {
    if name == existing {
        String::new()
    } else {
        format!(": `{name}` is the same name after Unicode normalization and case folding")
    }
}

/// A command that conflicts with what is stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// Another group of the workspace has the name (compared after NFKC and case folding).
    /// The message names that group as it is stored, which may differ from the name asked
    /// for (`Engineering` for `engineering`).
    #[error(
        "workspace `{workspace}` already has a group named `{existing}` (`{id}`){}",
        same_name(.name, .existing)
    )]
    NameTaken {
        /// Workspace id.
        workspace: String,
        /// The name asked for.
        name: String,
        /// The existing group's name, as stored.
        existing: String,
        /// The id of the group that has it.
        id: String,
    },
    /// Another group of the workspace has a name a reader could take for this one.
    #[error(
        "workspace `{workspace}` has a group named `{existing}` (`{id}`), which `{name}` could be mistaken for; choose a name that looks different"
    )]
    NameConfusable {
        /// Workspace id.
        workspace: String,
        /// The name asked for.
        name: String,
        /// The existing group's name.
        existing: String,
        /// The existing group's id.
        id: String,
    },
    /// What the command read changed before it committed; retrying may succeed.
    #[error("the workspace changed while this request ran; nothing was written, retry it")]
    ChangedConcurrently,
    /// The command would leave the workspace without an admin.
    #[error(
        "`{user}` is the last admin of workspace `{workspace}`; make another member admin first"
    )]
    LastAdmin {
        /// Workspace id.
        workspace: String,
        /// The last admin.
        user: String,
    },
    /// The workspace exists already.
    #[error("workspace `{workspace}` already exists")]
    WorkspaceExists {
        /// Workspace id.
        workspace: String,
    },
    /// The resource id is taken in this workspace, by someone else (ids are scoped to their
    /// workspace: another workspace's resources are never in the way).
    #[error("{kind} `{id}` already exists")]
    ResourceTaken {
        /// Connection or workbook.
        kind: ResourceKind,
        /// Resource id.
        id: String,
    },
}

/// An input the feature does not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// A group needs a name.
    #[error("a group name is required")]
    NameRequired,
    /// The name is over [`MAX_NAME_CHARS`].
    #[error("a group name has at most {MAX_NAME_CHARS} characters; `{name}` has {chars}")]
    NameTooLong {
        /// The name, trimmed.
        name: String,
        /// Its length in characters.
        chars: usize,
    },
    /// The name has control characters.
    #[error("a group name cannot contain control characters")]
    NameControl,
    /// The name has an invisible format character (zero-width, byte-order mark, bidi).
    #[error("a group name cannot contain the invisible character U+{code_point:04X}")]
    NameInvisible {
        /// The character's code point.
        code_point: u32,
    },
    /// One character of the name carries too many combining marks.
    #[error(
        "a character of a group name may carry at most {MAX_CODE_POINTS_PER_CHAR} code points"
    )]
    NameOverloaded,
    /// The name is over [`MAX_NAME_BYTES`].
    #[error("a group name has at most {MAX_NAME_BYTES} bytes of UTF-8, not {bytes}")]
    NameTooManyBytes {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The description has NUL or control characters other than newline and tab.
    #[error("a description cannot contain control characters other than newline and tab")]
    DescriptionControl,
    /// The description is over [`MAX_DESCRIPTION_CHARS`].
    #[error("a description has at most {MAX_DESCRIPTION_CHARS} characters, not {chars}")]
    DescriptionTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// A workspace role is needed.
    #[error("`role` is required: `admin`, `editor` or `viewer`")]
    RoleRequired,
    /// Not a workspace role.
    #[error("unknown role `{text}`: expected `admin`, `editor` or `viewer`")]
    UnknownRole {
        /// What the request said.
        text: String,
    },
    /// A workbook share needs a role.
    #[error("`role` is required: `editor` or `viewer`")]
    WorkbookRoleRequired,
    /// Not a workbook role.
    #[error("unknown workbook role `{text}`: expected `editor` or `viewer`")]
    UnknownWorkbookRole {
        /// What the request said.
        text: String,
    },
    /// Not a valid user id.
    #[error("`{id}` is not a valid user id")]
    UserId {
        /// What the request said.
        id: String,
    },
    /// A group id where a user id belongs.
    #[error("`{id}` is a group of this workspace, not a user")]
    GroupNotUser {
        /// The group id.
        id: String,
    },
    /// Not a valid workspace id.
    #[error("`{id}` is not a valid workspace id: 1 to 128 letters, digits or `_|-=+`")]
    WorkspaceId {
        /// What the request said.
        id: String,
    },
    /// A workspace needs a first admin.
    #[error("`admin` is required: the user id of the first admin")]
    AdminRequired,
    /// Not a valid connection or workbook id.
    #[error("`{id}` is not a valid {kind} id: 1 to {max} letters, digits or `_|-=+`")]
    ResourceId {
        /// Connection or workbook.
        kind: ResourceKind,
        /// What the request said.
        id: String,
        /// The longest id the workspace has room for.
        max: usize,
    },
}

impl Invalid {
    /// The input at fault: `name`, `description`, `role`, `user`, `workspace`, `admin` or `id`.
    pub fn field(&self) -> &'static str {
        match self {
            Invalid::NameRequired
            | Invalid::NameTooLong { .. }
            | Invalid::NameControl
            | Invalid::NameInvisible { .. }
            | Invalid::NameOverloaded
            | Invalid::NameTooManyBytes { .. } => "name",
            Invalid::DescriptionTooLong { .. } | Invalid::DescriptionControl => "description",
            Invalid::RoleRequired
            | Invalid::UnknownRole { .. }
            | Invalid::WorkbookRoleRequired
            | Invalid::UnknownWorkbookRole { .. } => "role",
            Invalid::UserId { .. } | Invalid::GroupNotUser { .. } => "user",
            Invalid::WorkspaceId { .. } => "workspace",
            Invalid::AdminRequired => "admin",
            Invalid::ResourceId { .. } => "id",
        }
    }
}

/// What refused users were to become.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Purpose {
    /// Members of a group.
    #[error("group members must be members of the workspace")]
    GroupMembers,
    /// Grantees of a connection or workbook.
    #[error("a {0} can be shared only with workspace members")]
    Grantees(ResourceKind),
}

/// Why one user cannot become a group member or grantee.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ineligibility {
    /// Not a valid user id.
    #[error("`{id}` is not a valid user id")]
    InvalidId {
        /// What was named.
        id: String,
    },
    /// A group of the workspace: groups are not nested.
    #[error("`{id}` is a group, and groups cannot be nested")]
    Group {
        /// The group id.
        id: String,
    },
    /// Not a member of the workspace.
    #[error("`{user}` is not a member of workspace `{workspace}`")]
    NotInWorkspace {
        /// User id.
        user: String,
        /// Workspace id.
        workspace: String,
    },
}

/// What a command tried, as a refusal names it ("`bob` may not {action}").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Action {
    /// List the workspace's groups.
    #[error("list groups")]
    ListGroups,
    /// Create groups, one by one or from CSV.
    #[error("create groups (only admins can)")]
    CreateGroups,
    /// Open a group.
    #[error("see this group")]
    SeeGroup,
    /// Rename or describe a group.
    #[error("rename or describe groups (only admins can)")]
    EditGroup,
    /// Delete a group.
    #[error("delete groups (only admins can)")]
    DeleteGroup,
    /// Add a member to a group.
    #[error("add group members (only admins can)")]
    AddGroupMembers,
    /// Remove a member from a group.
    #[error("remove group members (only admins can)")]
    RemoveGroupMembers,
    /// List what a group has access to.
    #[error("list the resources of a group (only admins can)")]
    ListGroupResources,
    /// Add a member or change a role.
    #[error("add members or change roles")]
    SetRoles,
    /// Remove a member from the workspace.
    #[error("remove members")]
    RemoveMembers,
    /// List the workspace's members.
    #[error("list members")]
    ListMembers,
    /// See which groups a member is in.
    #[error("see groups")]
    SeeGroups,
    /// Create a connection or workbook.
    #[error("create {0}s")]
    CreateResources(ResourceKind),
    /// Share, unshare or list the access to a connection or workbook.
    #[error("share this {0} (only its owner and admins can)")]
    Share(ResourceKind),
}

/// One refused row of a CSV import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Its line in the file, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub problem: RowProblem,
}

/// What is wrong with a row of a CSV import.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowProblem {
    /// Not readable as CSV.
    #[error("cannot read this row: {reason}")]
    Unreadable {
        /// The CSV reader's words.
        reason: String,
    },
    /// The first row is not the header.
    #[error("the first row must be the header `group,member`, not `{found}`")]
    Header {
        /// The first row, fields joined by commas.
        found: String,
    },
    /// Over the row limit (the import stops reading here).
    #[error("an import has at most {limit} rows")]
    TooManyRows {
        /// The limit.
        limit: usize,
    },
    /// More than two fields.
    #[error("expected 2 fields (`group,member`), found {found}")]
    Fields {
        /// How many.
        found: usize,
    },
    /// The group name breaks the name rules.
    #[error("{0}")]
    Name(Invalid),
    /// The workspace already has a group of that name.
    #[error("{0}")]
    Taken(Conflict),
    /// The member cannot join a group.
    #[error("{purpose}: {0}", purpose = Purpose::GroupMembers)]
    Member(Ineligibility),
    /// Nothing at all, not even the header.
    #[error("the file is empty: expected the header `group,member` and rows")]
    Empty,
}
