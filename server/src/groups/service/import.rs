//! Many groups at once from CSV (`group,member` header, one member per row; a row with an
//! empty member makes an empty group), all or nothing, with every bad row reported by its
//! line number.

use std::collections::{BTreeSet, HashMap};

use pemba_engine::Transaction;

use super::directory::add_group;
use super::relations::{must_match, roles};
use super::{changed_concurrently, new_group_id, Authorized, Groups};
use crate::groups::error::{Action, Conflict, GroupsError, Ineligibility, RowError, RowProblem};
use crate::groups::model::{Actor, GroupSummary};
use crate::groups::names::{fold, skeleton, valid_name};
use crate::groups::store::{name_key, GroupInfo};

/// The most data rows one import accepts.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// A group as the file describes it.
struct Planned {
    name: String,
    members: BTreeSet<String>,
}

impl Groups {
    /// Creates every group `csv` describes in one transaction, or none: refused with every
    /// bad row ([`GroupsError::ImportRefused`]). Admins only. Answers the groups in file
    /// order.
    pub fn import_csv(
        &self,
        actor: &Actor,
        ws: &str,
        csv: &[u8],
    ) -> Result<Vec<GroupSummary>, GroupsError> {
        let authorized = self.admit(actor, ws, Action::CreateGroups)?;
        let planned = self.plan(ws, csv)?;
        self.create_all(&authorized, ws, planned)
    }

    /// Parses and checks the whole file: the groups to create, or every bad row.
    fn plan(&self, ws: &str, csv_text: &[u8]) -> Result<Vec<Planned>, GroupsError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(csv_text);
        let mut rows: Vec<RowError> = Vec::new();
        let mut bad = |line: u64, problem: RowProblem| rows.push(RowError { line, problem });
        let mut planned: Vec<Planned> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut reasons: HashMap<String, Option<Ineligibility>> = HashMap::new();
        // Skeletons of the workspace's groups, then of the file's names as they are planned
        // (with the folded name and where it came from), for the confusable check.
        let mut skeletons: HashMap<String, (String, String, String)> = HashMap::new();
        // The stored names by id, for naming the group a taken name belongs to.
        let mut stored: HashMap<String, String> = HashMap::new();
        for (id, info) in self.workspace_groups(ws)? {
            stored.insert(id.clone(), info.name.clone());
            skeletons.insert(skeleton(&info.name), (fold(&info.name), info.name, id));
        }
        let mut header_seen = false;
        let mut count = 0usize;
        for (index, record) in reader.records().enumerate() {
            let fallback_line = index as u64 + 1;
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    let line = error.position().map_or(fallback_line, csv::Position::line);
                    bad(
                        line,
                        RowProblem::Unreadable {
                            reason: error.to_string(),
                        },
                    );
                    header_seen = true;
                    continue;
                }
            };
            let line = record.position().map_or(fallback_line, csv::Position::line);
            if !header_seen {
                header_seen = true;
                let fields: Vec<String> = record.iter().map(str::to_lowercase).collect();
                if fields != ["group", "member"] {
                    let found = record.iter().collect::<Vec<_>>().join(",");
                    bad(line, RowProblem::Header { found });
                }
                continue;
            }
            count += 1;
            if count > MAX_IMPORT_ROWS {
                bad(
                    line,
                    RowProblem::TooManyRows {
                        limit: MAX_IMPORT_ROWS,
                    },
                );
                break;
            }
            if record.len() > 2 {
                bad(
                    line,
                    RowProblem::Fields {
                        found: record.len(),
                    },
                );
                continue;
            }
            let name = match valid_name(record.get(0)) {
                Ok(name) => name,
                Err(invalid) => {
                    bad(line, RowProblem::Name(invalid));
                    continue;
                }
            };
            let member = record.get(1).unwrap_or_default().to_string();
            let mut row_ok = true;
            let folded = fold(&name);
            if !by_name.contains_key(&folded) {
                if let Some(existing) = self.engine.metadata(&name_key(ws, &name))? {
                    let taken = Conflict::NameTaken {
                        workspace: ws.to_string(),
                        name: name.clone(),
                        existing: stored
                            .get(&existing)
                            .cloned()
                            .unwrap_or_else(|| name.clone()),
                        id: existing,
                    };
                    bad(line, RowProblem::Taken(taken));
                    row_ok = false;
                }
            }
            if row_ok {
                match skeletons.get(&skeleton(&name)) {
                    Some((other_fold, existing, id)) if *other_fold != folded => {
                        let confusable = Conflict::NameConfusable {
                            workspace: ws.to_string(),
                            name: name.clone(),
                            existing: existing.clone(),
                            id: id.clone(),
                        };
                        bad(line, RowProblem::Taken(confusable));
                        row_ok = false;
                    }
                    _ => {}
                }
            }
            if !member.is_empty() {
                let reason = match reasons.get(&member) {
                    Some(reason) => reason.clone(),
                    None => {
                        let reason = self.ineligibility(ws, &member)?;
                        reasons.insert(member.clone(), reason.clone());
                        reason
                    }
                };
                if let Some(reason) = reason {
                    bad(line, RowProblem::Member(reason));
                    row_ok = false;
                }
            }
            if !row_ok {
                continue;
            }
            skeletons
                .entry(skeleton(&name))
                .or_insert_with(|| (folded.clone(), name.clone(), format!("line {line}")));
            let slot = *by_name.entry(folded).or_insert_with(|| {
                planned.push(Planned {
                    name,
                    members: BTreeSet::new(),
                });
                planned.len() - 1
            });
            if !member.is_empty() {
                if let Some(group) = planned.get_mut(slot) {
                    group.members.insert(member);
                }
            }
        }
        if !header_seen {
            bad(1, RowProblem::Empty);
        }
        if rows.is_empty() {
            Ok(planned)
        } else {
            Err(GroupsError::ImportRefused { rows })
        }
    }

    /// Creates every planned group in one transaction, kept from committing unless every
    /// member is still a workspace member.
    fn create_all(
        &self,
        authorized: &Authorized,
        ws: &str,
        planned: Vec<Planned>,
    ) -> Result<Vec<GroupSummary>, GroupsError> {
        let mut transaction = Transaction::default();
        let mut created = Vec::new();
        let mut all_members = BTreeSet::new();
        for group in planned {
            let id = new_group_id()?;
            let info = GroupInfo {
                name: group.name,
                description: String::new(),
            };
            add_group(&mut transaction, ws, &id, &info, &group.members);
            created.push(GroupSummary {
                id,
                name: info.name,
                description: info.description,
                member_count: group.members.len(),
            });
            all_members.extend(group.members);
        }
        transaction.preconditions.extend(
            all_members
                .iter()
                .map(|member| must_match(roles(ws, Some(member)))),
        );
        if !created.is_empty() {
            self.commit(authorized, transaction, changed_concurrently)?;
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use pemba_engine::{Engine, Operation, Tuple, Update};
    use proptest::prelude::*;

    use super::*;

    /// A service with the shipped schema and workspace `ws` (alice admin, bob editor).
    fn groups() -> &'static Groups {
        static GROUPS: OnceLock<Groups> = OnceLock::new();
        GROUPS.get_or_init(|| {
            let engine = Engine::in_memory().unwrap();
            engine.write_schema(crate::DEFAULT_SCHEMA).unwrap();
            let grant = |text: &str| Update {
                operation: Operation::Touch,
                tuple: Tuple::parse(text).unwrap(),
            };
            engine
                .write(
                    &[
                        grant("workspace:ws#admin@user:alice"),
                        grant("workspace:ws#editor@user:bob"),
                    ],
                    &[],
                )
                .unwrap();
            Groups::new(Arc::new(engine))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Hostile input: any bytes are planned or refused, never a panic.
        #[test]
        fn any_bytes_are_planned_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = groups().plan("ws", &bytes);
        }

        /// CSV-shaped input with quotes, commas, Unicode and blank fields: every refused row
        /// names a line of the file.
        #[test]
        fn csv_like_rows_report_lines_within_the_file(
            rows in proptest::collection::vec(("[a-zA-Z é,\"]{0,60}", "(alice|bob|carol|ws|g1|)[,\" ]{0,2}"), 0..40)
        ) {
            let mut text = String::from("group,member\n");
            for (group, member) in &rows {
                text.push_str(&format!("{group},{member}\n"));
            }
            let lines = text.lines().count() as u64;
            if let Err(GroupsError::ImportRefused { rows }) = groups().plan("ws", text.as_bytes()) {
                for row in rows {
                    prop_assert!(row.line >= 1 && row.line <= lines, "line {} of {lines}", row.line);
                }
            }
        }
    }
}
