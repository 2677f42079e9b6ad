//! The rules of SPEC section 6 as data: each `scenarios/*.yaml` file is one test, run
//! against the [`Groups`] service over an in-memory engine with the shipped schema, and
//! again (`on_postgres::NAME`) over a fresh PostgreSQL database of one throwaway server
//! (`tests/shared/postgres.rs`), so both stores behave the same.
//!
//! A file has an optional `schema` (text replacing the shipped one), a `setup` (workspaces
//! with their members, made through the service) and `steps`. A step is either a command,
//! acting `as` a user, with an expected outcome, or an assertion about what is stored:
//!
//! ```yaml
//! setup:
//!   acme: {admin: alice, editors: [bob], viewers: [carol]}
//! steps:
//!   - as: bob                        # a command: one key naming it, its arguments
//!     create_group: {name: Eng}
//!     expect: forbidden              # ok (the default), an error kind, or
//!                                    # {error: KIND, says: TEXT, lines: [N, ...]}
//!   - as: alice
//!     create_group: {name: Eng, members: [bob]}
//!     returns: {member_count: 1}     # a partial match of the result
//!     save: eng                      # `$eng` is its `id` from now on
//!   - allowed: ["group:$eng#view@user:carol"]      # engine checks
//!   - denied: ["group:$eng#manage@user:bob"]
//!   - members: {group: $eng, are: [bob]}           # a group's members
//! ```
//!
//! `workspace` may be left out of every command and assertion: it defaults to the first
//! workspace of `setup`. After every step the runner also checks the invariants that hold
//! whatever the commands did (see `invariants`). A failure names the file, the step's line
//! and what differed.

mod assertions;
mod commands;
mod invariants;
mod outcome;

use std::collections::HashMap;
use std::sync::Arc;

use pemba_engine::Engine;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use self::outcome::{kind_of, matches_partially, Expected};

use super::{Actor, Groups, GroupsError, NewWorkspace, Role};

/// One test per file; `every_file_has_a_test` catches a file missing here.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(
                    concat!(stringify!($name), ".yaml"),
                    include_str!(concat!("scenarios/", stringify!($name), ".yaml")),
                    Backend::Redb,
                );
            }
        )*

        /// The same files on PostgreSQL.
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    super::run(
                        concat!(stringify!($name), ".yaml"),
                        include_str!(concat!("scenarios/", stringify!($name), ".yaml")),
                        super::Backend::Postgres,
                    );
                }
            )*
        }

        const FILES: &[&str] = &[$(concat!(stringify!($name), ".yaml")),*];
    };
}

scenarios!(
    rule_01_members_have_one_role_each,
    rule_02_only_admins_create_groups,
    rule_03_every_member_lists_filters_and_opens_groups,
    rule_04_every_member_sees_any_members_groups,
    rule_05_only_admins_change_groups_with_effect_on_the_next_check,
    rule_06_deleting_a_group_removes_it_from_every_resource,
    rule_07_owners_and_admins_share_connections_and_workbooks,
    rule_08_grants_overlap,
    rule_09_removal_from_the_workspace_revokes_everything,
    rule_10_only_admins_list_a_groups_resources,
    rule_11_groups_are_not_nested,
    rule_12_csv_import_is_all_or_nothing,
    schema_without_the_vocabulary,
    workspaces_and_resources,
);

#[test]
fn every_file_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/groups/scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "scenario files and the `scenarios!` list differ"
    );
}

/// A scenario file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    /// Schema text replacing the shipped schema.
    schema: Option<String>,
    /// Workspace id → its members, in file order.
    #[serde(default)]
    setup: Mapping,
    steps: Vec<Mapping>,
}

/// The members a workspace starts with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceSetup {
    admin: String,
    #[serde(default)]
    admins: Vec<String>,
    #[serde(default)]
    editors: Vec<String>,
    #[serde(default)]
    viewers: Vec<String>,
}

/// What a scenario runs against, and what its steps have saved.
struct World {
    engine: Arc<Engine>,
    groups: Groups,
    /// The first workspace of `setup`: the default of every `workspace` argument.
    workspace: String,
    saved: HashMap<String, String>,
}

#[path = "../../../tests/shared/postgres.rs"]
mod pg;

/// The store a scenario runs on.
#[derive(Clone, Copy)]
enum Backend {
    /// In-memory redb.
    Redb,
    /// A fresh, migrated PostgreSQL database.
    Postgres,
}

fn open(backend: Backend) -> Engine {
    match backend {
        Backend::Redb => Engine::in_memory().unwrap(),
        Backend::Postgres => {
            let url = pg::fresh_database();
            pemba_engine::migrate(&url).unwrap();
            Engine::with_store(Box::new(
                pemba_engine::PostgresStore::connect(&url).unwrap(),
            ))
            .unwrap()
        }
    }
}

/// Runs the scenario `text` (of file `file`) on `backend`, panicking at the first step
/// that fails.
fn run(file: &str, text: &str, backend: Backend) {
    let scenario: Scenario = serde_yaml_ng::from_str(text)
        .unwrap_or_else(|error| panic!("{file}: not a scenario: {error}"));
    let lines = step_lines(text);
    let engine = Arc::new(open(backend));
    let schema = scenario.schema.as_deref().unwrap_or(crate::DEFAULT_SCHEMA);
    engine.write_schema(schema).unwrap();
    let mut world = World {
        groups: Groups::new(engine.clone()),
        engine,
        workspace: String::new(),
        saved: HashMap::new(),
    };
    world
        .set_up(&scenario.setup)
        .unwrap_or_else(|error| panic!("{file}: setup: {error}"));
    for (index, step) in scenario.steps.iter().enumerate() {
        let line = lines
            .get(index)
            .filter(|_| lines.len() == scenario.steps.len())
            .map_or_else(|| format!("step {}", index + 1), |l| format!("line {l}"));
        let outcome = world
            .step(step)
            .and_then(|()| invariants::check(&world.engine));
        if let Err(problem) = outcome {
            panic!("{file}:{line}: {problem}");
        }
    }
}

/// The line (from 1) where each item of the top-level `steps` list starts: the lines that
/// begin with `- ` at the indentation of the first item.
fn step_lines(text: &str) -> Vec<usize> {
    let mut lines = text.lines().enumerate();
    if !lines.any(|(_, l)| l.trim_end() == "steps:") {
        return Vec::new();
    }
    let mut indent = None;
    let mut starts = Vec::new();
    for (number, line) in lines {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let depth = line.len() - content.len();
        if depth == 0 && !content.starts_with('-') {
            break;
        }
        if content.starts_with("- ") && *indent.get_or_insert(depth) == depth {
            starts.push(number + 1);
        }
    }
    starts
}

impl World {
    fn set_up(&mut self, setup: &Mapping) -> Result<(), String> {
        for (ws, members) in setup {
            let ws = ws.as_str().ok_or("workspace ids are strings")?.to_string();
            let members: WorkspaceSetup =
                serde_yaml_ng::from_value(members.clone()).map_err(|e| e.to_string())?;
            if self.workspace.is_empty() {
                self.workspace = ws.clone();
            }
            let request = NewWorkspace {
                admin: Some(members.admin.clone()),
            };
            self.groups
                .create_workspace(&ws, Ok(request))
                .map_err(|e| e.to_string())?;
            let admin = Actor::new(&members.admin).ok_or("the admin is not a user id")?;
            let roles = [
                (Role::Admin, &members.admins),
                (Role::Editor, &members.editors),
                (Role::Viewer, &members.viewers),
            ];
            for (role, users) in roles {
                for user in users {
                    self.groups
                        .set_role(&admin, &ws, user, Ok(role))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Runs one step: an assertion, or a command and its expected outcome.
    fn step(&mut self, step: &Mapping) -> Result<(), String> {
        let mut step = step.clone();
        let actor = take_string(&mut step, "as")?;
        let expect = step.remove("expect");
        let returns = step.remove("returns");
        let save = step.remove("save");
        let mut keys = step.into_iter();
        let (Some((key, args)), None) = (keys.next(), keys.next()) else {
            return Err("a step has exactly one command or assertion".to_string());
        };
        let key = key.as_str().ok_or("step keys are strings")?.to_string();
        let args = self.substitute(args)?;
        if let Some(checked) = self.assert(&key, &args)? {
            return checked;
        }
        let who = actor.as_deref().unwrap_or("the service");
        let outcome = commands::run(self, actor.as_deref(), &key, args)?;
        let expected = Expected::parse(expect.map(|e| self.substitute(e)).transpose()?)?;
        match (outcome, expected) {
            (Ok(value), Expected::Ok) => {
                if let Some(returns) = returns {
                    let returns = self.substitute(returns)?;
                    matches_partially(&value, &returns).map_err(|why| {
                        format!("`{key}` as {who} returned {}: {why}", yaml(&value))
                    })?;
                }
                if let Some(save) = save {
                    self.save(&save, &value)?;
                }
                Ok(())
            }
            (Ok(value), Expected::Error { kind, .. }) => Err(format!(
                "`{key}` as {who}: expected `{kind}`, but it succeeded with {}",
                yaml(&value)
            )),
            (Err(error), Expected::Ok) => Err(format!(
                "`{key}` as {who}: expected success, got `{}`: {error}",
                kind_of(&error)
            )),
            (Err(error), Expected::Error { kind, says, lines }) => {
                let got = kind_of(&error);
                let mut message = error.to_string();
                if let GroupsError::ImportRefused { rows } = &error {
                    for row in rows {
                        message.push_str(&format!("; line {}: {}", row.line, row.problem));
                    }
                }
                if got != kind {
                    return Err(format!(
                        "`{key}` as {who}: expected `{kind}`, got `{got}`: {message}"
                    ));
                }
                if let Some(says) = says.filter(|s| !message.contains(s.as_str())) {
                    return Err(format!(
                        "`{key}` as {who}: the message does not say `{says}`: {message}"
                    ));
                }
                if let Some(lines) = lines {
                    let GroupsError::ImportRefused { rows } = &error else {
                        return Err("`lines` goes with `import_refused`".to_string());
                    };
                    let got: Vec<u64> = rows.iter().map(|r| r.line).collect();
                    if got != lines {
                        return Err(format!(
                            "`{key}`: refused lines {got:?}, expected {lines:?}: {message}"
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Replaces every `$name` in the strings of `value` by what was saved as `name`.
    fn substitute(&self, value: Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => Value::String(self.substitute_text(&text)?),
            Value::Sequence(items) => Value::Sequence(
                items
                    .into_iter()
                    .map(|v| self.substitute(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => Value::Mapping(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.substitute(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other,
        })
    }

    fn substitute_text(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 1..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let value = self
                .saved
                .get(name)
                .ok_or_else(|| format!("`${name}` was never saved"))?;
            out.push_str(value);
            rest = &tail[end..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Saves the `id` of a result as `save`, or with a list, the ids of its `groups`.
    fn save(&mut self, save: &Value, value: &Value) -> Result<(), String> {
        let pairs: Vec<(String, Value)> = match save {
            Value::String(name) => vec![(name.clone(), value["id"].clone())],
            Value::Sequence(names) => names
                .iter()
                .zip(value["groups"].as_sequence().into_iter().flatten())
                .map(|(name, group)| {
                    (
                        name.as_str().unwrap_or_default().to_string(),
                        group["id"].clone(),
                    )
                })
                .collect(),
            _ => return Err("`save` is a name or a list of names".to_string()),
        };
        for (name, id) in pairs {
            let id = id
                .as_str()
                .ok_or_else(|| format!("nothing to save as `{name}`"))?;
            self.saved.insert(name, id.to_string());
        }
        Ok(())
    }
}

fn equal(what: &str, got: &[String], want: &[String]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {want:?}"))
    }
}

fn from<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_yaml_ng::from_value(value.clone()).map_err(|e| format!("{}: {e}", yaml(value)))
}

fn take_string(step: &mut Mapping, key: &str) -> Result<Option<String>, String> {
    match step.remove(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(format!("`{key}` is a string, not {}", yaml(&other))),
    }
}

/// `value` on one line, for messages.
fn yaml(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}
