//! What must hold after every step of every scenario, whatever the commands did, read
//! straight from the engine (relationships and metadata) rather than through the service:
//!
//! - each user has at most one role per workspace (rule 1), and each workspace an admin;
//! - group members are users (rule 11) who are members of the group's workspace (5, 9);
//! - users with a direct relationship to a connection or workbook are members of its
//!   workspace (9), and a group granted access to one belongs to the same workspace (6, 14);
//! - each group record has its workspace link and name key, and each name key its record.

use std::collections::{HashMap, HashSet};

use pemba_engine::{Consistency, Engine, RelationshipFilter, SubjectRef, Tuple};
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::groups::model::Role;
use crate::groups::store::{group_prefix, name_key, GroupInfo};
use crate::groups::vocabulary::{connection, group, user, workbook, workspace};

/// Every relationship stored (scenarios are small).
fn everything(engine: &Engine) -> Result<Vec<Tuple>, String> {
    engine
        .relationships(Consistency::FullyConsistent, &RelationshipFilter::default())
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<Tuple>, _>>()
        .map_err(|e| e.to_string())
}

/// `Err` naming the first invariant that does not hold.
pub(super) fn check(engine: &Engine) -> Result<(), String> {
    let all = everything(engine)?;
    let metadata = engine
        .metadata_with_prefix("groups/")
        .map_err(|e| e.to_string())?;
    let mut roles: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    let mut home: HashMap<(&str, &str), &str> = HashMap::new();
    for t in &all {
        let resource = (
            t.resource.object_type.as_str(),
            t.resource.object_id.as_str(),
        );
        if resource.0 == workspace::TYPE && Role::from_name(&t.relation).is_some() {
            roles
                .entry((resource.1, t.subject.object.object_id.as_str()))
                .or_default()
                .push(&t.relation);
        }
        let links = [group::WORKSPACE, connection::WORKSPACE, workbook::WORKSPACE];
        if links.contains(&t.relation.as_str()) && t.subject.object.object_type == workspace::TYPE {
            home.insert(resource, &t.subject.object.object_id);
        }
    }
    let violation = |rule: &str, t: &Tuple| Err(format!("invariant ({rule}) broken by `{t}`"));
    for ((ws, member), held) in &roles {
        if held.len() > 1 {
            return Err(format!(
                "`{member}` holds {held:?} in `{ws}`: one role each"
            ));
        }
    }
    let is_member = |ws: &str, id: &str| roles.contains_key(&(ws, id));
    for t in &all {
        let resource = (
            t.resource.object_type.as_str(),
            t.resource.object_id.as_str(),
        );
        let subject = &t.subject.object;
        let resource_ws = home.get(&resource).copied();
        if resource.0 == group::TYPE && t.relation == group::MEMBER {
            if subject.object_type != user::TYPE || t.subject.relation.is_some() {
                return violation("group members are users", t);
            }
            if !resource_ws.is_some_and(|ws| is_member(ws, &subject.object_id)) {
                return violation("group members are workspace members", t);
            }
        }
        let shareable = [connection::TYPE, workbook::TYPE].contains(&resource.0);
        if !shareable || t.relation == connection::WORKSPACE {
            continue;
        }
        if subject.object_type == user::TYPE
            && !resource_ws.is_some_and(|ws| is_member(ws, &subject.object_id))
        {
            return violation("users with access are workspace members", t);
        }
        if subject.object_type == group::TYPE {
            let group_ws = home
                .get(&(group::TYPE, subject.object_id.as_str()))
                .copied();
            if group_ws.is_none() || group_ws != resource_ws {
                return violation("groups with access belong to the workspace", t);
            }
        }
    }
    let keys: HashMap<&str, &str> = metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut records = HashSet::new();
    for (key, value) in &metadata {
        if let Some(ws) = key.strip_prefix("groups/workspace/") {
            let has_admin = roles
                .iter()
                .any(|((w, _), held)| *w == ws && held.contains(&workspace::ADMIN));
            if !has_admin {
                return Err(format!("workspace `{ws}` has no admin"));
            }
        }
        if let Some(rest) = key.strip_prefix("groups/group/") {
            let Some((ws, id)) = rest.split_once(':') else {
                return Err(format!("metadata key `{key}` has no `:`"));
            };
            let info = GroupInfo::decode(key, value).map_err(|e| e.to_string())?;
            if home.get(&(group::TYPE, id)).copied() != Some(ws) {
                return Err(format!(
                    "group `{id}` has a record in `{ws}` but no link to it"
                ));
            }
            if keys.get(name_key(ws, &info.name).as_str()).copied() != Some(id) {
                return Err(format!(
                    "group `{id}` is not found by its name `{}`",
                    info.name
                ));
            }
            records.insert(format!("{ws}:{id}"));
        }
    }
    for (key, id) in &keys {
        if let Some(rest) = key.strip_prefix("groups/name/") {
            let ws = rest.split_once(':').map_or(rest, |(ws, _)| ws);
            if !records.contains(&format!("{ws}:{id}")) {
                return Err(format!(
                    "name key `{key}` names `{id}`, which has no record"
                ));
            }
        }
    }
    Ok(())
}

/// The names of the groups of `ws`, from their records.
pub(super) fn group_names(engine: &Engine, ws: &str) -> Result<Vec<String>, String> {
    let records = engine
        .metadata_with_prefix(&group_prefix(ws))
        .map_err(|e| e.to_string())?;
    records
        .iter()
        .map(|(key, value)| {
            GroupInfo::decode(key, value)
                .map(|info| info.name)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The `relationships` assertion: those `of` an object or `naming` a subject are exactly
/// `are` (as `type:id#relation@subject`), or number `count`.
pub(super) fn relationships(engine: &Engine, args: &Value) -> Result<(), String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        of: Option<String>,
        naming: Option<String>,
        are: Option<Vec<String>>,
        count: Option<usize>,
    }
    let query: Query = super::from(args)?;
    let naming = match &query.naming {
        Some(text) => Some(SubjectRef::parse(text).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut found: Vec<String> = everything(engine)?
        .into_iter()
        .filter(|t| {
            query
                .of
                .as_ref()
                .is_none_or(|of| t.resource.to_string() == *of)
        })
        .filter(|t| naming.as_ref().is_none_or(|s| t.subject == *s))
        .map(|t| t.to_string())
        .collect();
    found.sort();
    if let Some(mut are) = query.are {
        are.sort();
        super::equal("relationships", &found, &are)?;
    }
    match query.count {
        Some(count) if count != found.len() => Err(format!(
            "{} relationships, expected {count}: {found:?}",
            found.len()
        )),
        _ => Ok(()),
    }
}
