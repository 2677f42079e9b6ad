//! The user-groups feature of SPEC section 6: workspaces with admin, editor and viewer
//! members, flat groups of members, and connections and workbooks shared with users and
//! groups, served under `/v1/workspaces/{ws}`.
//!
//! Two layers, domain below protocol:
//! - [`Groups`] (in `service`) is the feature: typed commands that take the acting
//!   [`Actor`] and return typed results or a [`GroupsError`]. It knows no HTTP or JSON.
//!   Every authorization decision is an engine check (`workspace:{ws}#manage_groups`,
//!   `group:{g}#view_resources`, `connection:{c}#manage`, ...): it never compares roles
//!   itself. Each change is one engine transaction, so a refused command changes nothing
//!   and the next check sees a change.
//! - [`http`] is the protocol: extractors, one line per handler, JSON shapes, the route
//!   table. `From<GroupsError> for ApiError` (in `crate::error`) maps refusals to statuses.
//!
//! The schema names the feature relies on live in [`vocabulary`], checked against the
//! loaded schema at start-up and (once per schema) by every command.
//!
//! # Storage
//!
//! Relationships hold who is in what; application metadata (beside them, written in the
//! same transactions) holds what the engine has no place for. Workspace and group ids never
//! contain `:`, which therefore separates them from what follows in a key:
//!
//! | key | value |
//! |---|---|
//! | `groups/workspace/{ws}` | `{}`: the workspace exists |
//! | `groups/group/{ws}:{group}` | `{"name", "description"}` of a group of `ws` |
//! | `groups/name/{ws}:{folded name}` | the id of the group with that name |
//! | `groups/skeleton/{ws}:{skeleton}` | the id of the group whose name looks like that |
//! | `groups/member-version/{ws}:{user}` | changes whenever `user` gains a relationship in `ws` |
//!
//! A connection or workbook `{id}` of `ws` is the engine object `connection:{ws}/{id}`
//! (ids are scoped to their workspace); `migrate` rewrites stores from before that.
//!
//! A create or rename commits only if its name and skeleton keys are still absent (metadata
//! conditions), so two requests racing for one name, or two look-alike names, cannot both
//! win.

pub mod error;
pub mod http;
pub mod migrate;
pub mod model;
pub mod names;
mod service;
mod store;
pub mod vocabulary;

#[cfg(test)]
mod scenarios;

pub use error::GroupsError;
pub use http::{routes, ACTOR_HEADER};
pub use model::{
    Access, Actor, GrantedResource, Grantee, GroupAccess, GroupChanges, GroupDetail, GroupMember,
    GroupRef, GroupSummary, Input, Member, NewGroup, NewWorkspace, Resource, ResourceCreated,
    ResourceKind, Role, RoleSet, Shared, UserAccess, WorkbookRole, WorkspaceCreated,
};
pub use names::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS};
pub use service::{Groups, MAX_IMPORT_ROWS};
