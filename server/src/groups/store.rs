//! What the feature keeps in engine metadata beside its relationships: the keys (layout in
//! docs/storage.md) and the stored group record. The record is JSON because it always was
//! on disk; that is a storage format, not the wire, and this is the one place that knows it.

use serde::{Deserialize, Serialize};

use super::error::GroupsError;
use super::names::{fold, skeleton};

/// `groups/workspace/{ws}`: present (as `{}`) once the workspace exists.
pub(crate) fn workspace_key(ws: &str) -> String {
    format!("{WORKSPACE_PREFIX}{ws}")
}

/// The prefix of every [`workspace_key`].
pub(crate) const WORKSPACE_PREFIX: &str = "groups/workspace/";

/// The value stored at [`workspace_key`].
pub(crate) const WORKSPACE_VALUE: &str = "{}";

/// `groups/group/{ws}:{group}`: the [`GroupInfo`] of a group of `ws`.
pub(crate) fn group_key(ws: &str, group: &str) -> String {
    format!("{}{group}", group_prefix(ws))
}

/// The prefix of every [`group_key`] of `ws`: workspace ids never contain `:`.
pub(crate) fn group_prefix(ws: &str) -> String {
    format!("groups/group/{ws}:")
}

/// `groups/name/{ws}:{folded name}`: the id of the group with that name.
pub(crate) fn name_key(ws: &str, name: &str) -> String {
    format!("groups/name/{ws}:{}", fold(name))
}

/// `groups/skeleton/{ws}:{skeleton}`: the id of the group whose name has that confusable
/// skeleton (UTS #39), so that two concurrent creates or renames to names that look alike
/// cannot both commit. Groups named before this key existed have none; the scan in
/// `name_free` still finds them, and they cannot race, having committed already.
pub(crate) fn skeleton_key(ws: &str, name: &str) -> String {
    format!("groups/skeleton/{ws}:{}", skeleton(name))
}

/// `groups/member-version/{ws}:{user}`: changes (to a fresh random value) with every commit
/// that gives `user` a relationship in `ws`, so that a removal from the workspace, which
/// must delete all of them, can require at commit that none appeared since it read them.
pub(crate) fn member_version_key(ws: &str, user: &str) -> String {
    format!("groups/member-version/{ws}:{user}")
}

/// A group's name and description, stored at its [`group_key`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct GroupInfo {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
}

impl GroupInfo {
    /// The stored form.
    pub(crate) fn encode(&self) -> String {
        // A struct of two strings always serializes; the fallback only satisfies the type.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record stored at `key`.
    pub(crate) fn decode(key: &str, text: &str) -> Result<Self, GroupsError> {
        serde_json::from_str(text).map_err(|error| GroupsError::Corrupt {
            key: key.to_string(),
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_keep_the_stored_layout() {
        let info = GroupInfo {
            name: "Data \"team\"".to_string(),
            description: String::new(),
        };
        let text = info.encode();
        assert_eq!(text, r#"{"name":"Data \"team\"","description":""}"#);
        assert_eq!(GroupInfo::decode("k", &text).unwrap(), info);
        assert_eq!(
            GroupInfo::decode("k", r#"{"name":"old"}"#).unwrap().name,
            "old"
        );
        assert!(matches!(
            GroupInfo::decode("k", "nope"),
            Err(GroupsError::Corrupt { .. })
        ));
        assert_eq!(name_key("ws", "  Eng "), "groups/name/ws:eng");
        assert_eq!(group_key("ws", "g1"), "groups/group/ws:g1");
    }
}
