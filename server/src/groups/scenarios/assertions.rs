//! The assertions a scenario step can make about what is stored, read from the engine.

use pemba_engine::{CheckArgs, Consistency, ObjectRef, Page, SubjectLookup, Tuple};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{equal, from, invariants, World};
use crate::groups::vocabulary::{group, user};

impl World {
    /// Evaluates `key` if it is an assertion: `None` when it is a command.
    pub(super) fn assert(
        &self,
        key: &str,
        args: &Value,
    ) -> Result<Option<Result<(), String>>, String> {
        let checked = match key {
            "allowed" | "denied" => {
                let want = key == "allowed";
                let queries: Vec<String> = from(args)?;
                let mut wrong = Vec::new();
                for query in queries {
                    let t = Tuple::parse(&query).map_err(|e| format!("`{query}`: {e}"))?;
                    let allowed = self
                        .engine
                        .check(
                            Consistency::FullyConsistent,
                            CheckArgs::new(&t.resource, &t.relation, &t.subject),
                        )
                        .map_err(|e| format!("`{query}`: {e}"))?
                        .value;
                    if allowed != want {
                        wrong.push(query);
                    }
                }
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!("expected {key}, but not: {wrong:?}"))
                }
            }
            "members" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Members {
                    group: String,
                    are: Vec<String>,
                }
                let Members { group, mut are } = from(args)?;
                are.sort();
                let found = self
                    .engine
                    .lookup_subjects(
                        Consistency::FullyConsistent,
                        &SubjectLookup {
                            resource: &ObjectRef::new(group::TYPE, &group),
                            permission: group::MEMBER,
                            subject_type: user::TYPE,
                            subject_relation: None,
                            page: Page::default(),
                        },
                    )
                    .map_err(|e| e.to_string())?;
                let got = found.value.ids().to_vec();
                equal("members of group", &got, &are)
            }
            "group_names" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Names {
                    workspace: Option<String>,
                    are: Vec<String>,
                }
                let Names { workspace, mut are } = from(args)?;
                let ws = workspace.unwrap_or_else(|| self.workspace.clone());
                let mut got = invariants::group_names(&self.engine, &ws)?;
                got.sort();
                are.sort();
                equal("group names", &got, &are)
            }
            "relationships" => invariants::relationships(&self.engine, args),
            _ => return Ok(None),
        };
        Ok(Some(checked))
    }
}
