//! The rewrite, on open, of connection and workbook ids from the global form stores had
//! before ids were scoped to their workspace (`connection:warehouse`) into the scoped form
//! (`connection:acme/warehouse`), so that existing stores keep working.
//!
//! Only resources linked to a workspace the service created (`groups/workspace/{ws}` is
//! present) are rewritten, and only those whose id does not already start with `{ws}/`.
//! After one rewrite nothing is left to do, so every later open finds nothing and writes
//! nothing. The lookup goes from each such workspace to its resources through the
//! by-subject table, so a store without service workspaces (a benchmark workload, an app
//! using only the general API) costs one metadata scan.

use std::collections::BTreeSet;

use pemba_engine::{
    is_valid_object_id, Consistency, Engine, EngineError, ObjectRef, RelationshipFilter,
    SubjectFilter, SubjectRef, Transaction, Tuple, Update,
};

use super::service::relations::{must_not_match, scoped_id};
use super::store::WORKSPACE_PREFIX;
use super::vocabulary::{self, connection, workbook, workspace};

/// What [`scope_resource_ids`] rewrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopedIds {
    /// Connections and workbooks given scoped ids.
    pub resources: usize,
    /// Relationships rewritten (each deleted and written again under the new id).
    pub relationships: usize,
    /// One example, `connection:warehouse` → `connection:acme/warehouse`, for the message.
    pub example: Option<(String, String)>,
}

/// Why the rewrite could not run; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// Reading or committing failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The scoped id is already used by another object.
    #[error("cannot give `{from}` of workspace `{workspace}` the workspace-scoped id `{to}`: `{to}` already exists; rename one of them through the general API, then start again")]
    Taken {
        /// The resource as stored.
        from: String,
        /// Its workspace.
        workspace: String,
        /// The scoped id it would get.
        to: String,
    },
    /// The scoped id would not be a valid object id (too long).
    #[error("cannot give `{from}` of workspace `{workspace}` a workspace-scoped id: `{to}` is longer than an object id may be")]
    TooLong {
        /// The resource as stored.
        from: String,
        /// Its workspace.
        workspace: String,
        /// The scoped id it would get.
        to: String,
    },
}

/// Rewrites every connection and workbook of a service workspace whose id is not yet
/// scoped, in one transaction: all its relationships (as resource and as subject) move to
/// the scoped id. Does nothing when the schema lacks the feature's vocabulary.
pub fn scope_resource_ids(engine: &Engine) -> Result<ScopedIds, MigrationError> {
    let mut done = ScopedIds::default();
    if !vocabulary::missing(engine.schema().as_deref()).is_empty() {
        return Ok(done);
    }
    let mut transaction = Transaction::default();
    for (key, _) in engine
        .metadata_with_prefix(WORKSPACE_PREFIX)
        .map_err(EngineError::from)?
    {
        let Some(ws) = key.strip_prefix(WORKSPACE_PREFIX) else {
            continue;
        };
        for (object_type, relation) in [
            (connection::TYPE, connection::WORKSPACE),
            (workbook::TYPE, workbook::WORKSPACE),
        ] {
            for old in unscoped_resources(engine, ws, object_type, relation)? {
                let new = ObjectRef::new(object_type, scoped_id(ws, &old.object_id));
                let refused = |to: &ObjectRef| (old.to_string(), ws.to_string(), to.to_string());
                if !is_valid_object_id(&new.object_id) {
                    let (from, workspace, to) = refused(&new);
                    return Err(MigrationError::TooLong {
                        from,
                        workspace,
                        to,
                    });
                }
                if !all(engine, &RelationshipFilter::resource(&new))?.is_empty() {
                    let (from, workspace, to) = refused(&new);
                    return Err(MigrationError::Taken {
                        from,
                        workspace,
                        to,
                    });
                }
                transaction
                    .preconditions
                    .push(must_not_match(RelationshipFilter::resource(&new)));
                let moved = moves(engine, &old, &new)?;
                // Each moved relationship is one delete and one write.
                done.relationships += moved.len() / 2;
                done.resources += 1;
                done.example
                    .get_or_insert_with(|| (old.to_string(), new.to_string()));
                transaction.updates.extend(moved);
            }
        }
    }
    if done.resources > 0 {
        engine.transact(transaction).map_err(EngineError::from)?;
    }
    Ok(done)
}

/// Resources of `object_type` linked to `ws` whose id is not scoped to it.
fn unscoped_resources(
    engine: &Engine,
    ws: &str,
    object_type: &str,
    relation: &str,
) -> Result<Vec<ObjectRef>, MigrationError> {
    let filter = RelationshipFilter {
        resource_type: Some(object_type.to_string()),
        resource_id: None,
        relation: Some(relation.to_string()),
        subject: Some(SubjectFilter::exact(&SubjectRef::object(
            workspace::TYPE,
            ws,
        ))),
    };
    let prefix = format!("{ws}/");
    Ok(all(engine, &filter)?
        .into_iter()
        .map(|t| t.resource)
        .filter(|resource| !resource.object_id.starts_with(&prefix))
        .collect())
}

/// The deletes and writes that move every relationship naming `old`, as resource or as
/// subject, to `new`.
fn moves(engine: &Engine, old: &ObjectRef, new: &ObjectRef) -> Result<Vec<Update>, EngineError> {
    let as_subject = RelationshipFilter {
        subject: Some(SubjectFilter {
            subject_type: old.object_type.clone(),
            subject_id: Some(old.object_id.clone()),
            relation: None,
        }),
        ..RelationshipFilter::default()
    };
    // A relationship naming `old` on both sides is found twice; it moves once.
    let mut seen = BTreeSet::new();
    let mut updates = Vec::new();
    for filter in [RelationshipFilter::resource(old), as_subject] {
        for t in all(engine, &filter)? {
            if !seen.insert(t.clone()) {
                continue;
            }
            let mut moved = t.clone();
            if moved.resource == *old {
                moved.resource = new.clone();
            }
            if moved.subject.object == *old {
                moved.subject.object = new.clone();
            }
            updates.push(Update::delete(t));
            updates.push(Update::touch(moved));
        }
    }
    Ok(updates)
}

fn all(engine: &Engine, filter: &RelationshipFilter) -> Result<Vec<Tuple>, EngineError> {
    Ok(engine
        .relationships(Consistency::FullyConsistent, filter)?
        .collect::<Result<Vec<Tuple>, _>>()?)
}

#[cfg(test)]
mod tests {
    use pemba_engine::{CheckArgs, MetadataWrite};

    use super::*;
    use crate::groups::model::{Actor, Resource, ResourceKind};
    use crate::groups::Groups;
    use crate::{open_engine, STORE_FILE};

    /// A store as the service wrote it before ids were scoped: workspace `acme` with
    /// connection `warehouse` shared with group `g1`, and `globex` with a connection of the
    /// same id written through the general API in the scoped form already.
    fn old_store(extra: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join(STORE_FILE)).unwrap();
        engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
        let mut tuples = vec![
            "workspace:acme#admin@user:alice",
            "workspace:acme#viewer@user:carol",
            "group:g1#workspace@workspace:acme",
            "group:g1#member@user:carol",
            "connection:warehouse#workspace@workspace:acme",
            "connection:warehouse#owner@user:alice",
            "connection:warehouse#grantee@group:g1#member",
            "workbook:q3#workspace@workspace:acme",
            "workbook:q3#viewer@user:carol",
            "workspace:globex#admin@user:zoe",
            "connection:globex/warehouse#workspace@workspace:globex",
            // Not a service workspace: left as it is.
            "connection:loose#workspace@workspace:elsewhere",
        ];
        tuples.extend_from_slice(extra);
        let transaction = Transaction {
            updates: tuples
                .iter()
                .map(|t| Update::touch(Tuple::parse(t).unwrap()))
                .collect(),
            metadata: [
                ("groups/workspace/acme", "{}"),
                ("groups/workspace/globex", "{}"),
                ("groups/group/acme:g1", r#"{"name":"Eng","description":""}"#),
            ]
            .iter()
            .map(|(key, value)| MetadataWrite {
                key: key.to_string(),
                value: Some(value.to_string()),
            })
            .collect(),
            ..Transaction::default()
        };
        engine.transact(transaction).unwrap();
        dir
    }

    fn can(engine: &Engine, tuple: &str) -> bool {
        let t = Tuple::parse(tuple).unwrap();
        let args = CheckArgs::new(&t.resource, &t.relation, &t.subject);
        engine
            .check(Consistency::FullyConsistent, args)
            .unwrap()
            .value
    }

    fn stored(engine: &Engine, object: &str) -> Vec<String> {
        let (object_type, id) = object.split_once(':').unwrap();
        let object = ObjectRef::new(object_type, id);
        all(engine, &RelationshipFilter::resource(&object))
            .unwrap()
            .iter()
            .map(Tuple::to_string)
            .collect()
    }

    #[test]
    fn issue_12_an_old_store_gets_scoped_ids_on_open_once() {
        let dir = old_store(&[]);
        let engine = open_engine(dir.path()).unwrap();
        assert!(stored(&engine, "connection:warehouse").is_empty());
        assert!(stored(&engine, "workbook:q3").is_empty());
        assert_eq!(
            stored(&engine, "connection:acme/warehouse"),
            [
                "connection:acme/warehouse#grantee@group:g1#member",
                "connection:acme/warehouse#owner@user:alice",
                "connection:acme/warehouse#workspace@workspace:acme",
            ]
        );
        assert!(can(&engine, "connection:acme/warehouse#use@user:carol"));
        assert!(can(&engine, "workbook:acme/q3#view@user:carol"));
        // Already scoped, and outside any service workspace: untouched.
        assert_eq!(stored(&engine, "connection:globex/warehouse").len(), 1);
        assert_eq!(stored(&engine, "connection:loose").len(), 1);
        // The service finds the resource by the id the routes use.
        let engine = std::sync::Arc::new(engine);
        let groups = Groups::new(engine.clone());
        let warehouse = Resource {
            kind: ResourceKind::Connection,
            id: "warehouse".to_string(),
        };
        let access = groups
            .list_access(&Actor::new("alice").unwrap(), "acme", &warehouse)
            .unwrap();
        assert_eq!(access.owners, ["alice"]);
        assert_eq!(access.groups.len(), 1);
        let revision = engine.revision();
        drop((groups, engine));
        // A second open has nothing left to do and writes nothing.
        let engine = open_engine(dir.path()).unwrap();
        assert_eq!(engine.revision(), revision);
    }

    #[test]
    fn issue_12_a_scoped_id_already_taken_refuses_to_open_and_writes_nothing() {
        let dir = old_store(&["connection:acme/warehouse#owner@user:mallory"]);
        let before = Engine::open(&dir.path().join(STORE_FILE))
            .unwrap()
            .revision();
        let error = open_engine(dir.path()).err().unwrap().to_string();
        assert_eq!(
            error,
            "cannot give `connection:warehouse` of workspace `acme` the workspace-scoped id `connection:acme/warehouse`: `connection:acme/warehouse` already exists; rename one of them through the general API, then start again"
        );
        let engine = Engine::open(&dir.path().join(STORE_FILE)).unwrap();
        assert_eq!(engine.revision(), before);
        assert_eq!(stored(&engine, "connection:warehouse").len(), 3);
    }
}
