//! `pemba schema write|read|diff`: the schema of a data directory or a server, and what a
//! new one would change (and which stored relationships it would orphan).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use pemba_engine::{RelationshipFilter, SubjectFilter};
use pemba_schema::{AllowedSubject, CompiledSchema, MemberKind};
use pemba_server::wire;
use serde_json::{json, Value};

use super::relationship::{relationship_text, token};
use super::target::GlobalArgs;
use super::{fail, print_json};

/// How many orphaned relationships of each kind `schema diff` lists.
const ORPHANS_SHOWN: usize = 5;

/// `pemba schema ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SchemaCommand {
    /// Replace the schema with FILE's (refused if stored relationships would be orphaned).
    #[command(
        after_help = "Example:\n  pemba schema write schemas/user-groups.zed\n  \
                            prints the revision token of the write, e.g. pb1.1\n\n\
                            Run `pemba schema diff FILE` first to see what would change."
    )]
    Write {
        /// Schema file (`-` for standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the schema, in canonical form (explicit parentheses).
    #[command(after_help = "Example:\n  pemba schema read > current.zed")]
    Read,
    /// Show what writing FILE would change, and the relationships it would orphan.
    #[command(after_help = "Example:\n  pemba schema diff new.zed\n  \
                            - connection#grantee: relation grantee: user | group#member | user:*\n  \
                            + connection#grantee: relation grantee: user | group#member\n  \
                            orphaned: 1 relationship of connection#grantee@user:*, e.g.\n    \
                            connection:sf#grantee@user:*\n\n\
                            Prints `no changes` when FILE says what the stored schema says.")]
    Diff {
        /// Schema file (`-` for standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs a `schema` subcommand.
pub fn run(command: SchemaCommand, global: &GlobalArgs) -> ExitCode {
    let result = match command {
        SchemaCommand::Write { file } => write(&file, global),
        SchemaCommand::Read => read(global),
        SchemaCommand::Diff { file } => diff(&file, global),
    };
    result.unwrap_or_else(fail)
}

fn read_file(file: &PathBuf) -> Result<(String, String), String> {
    let name = file.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    Ok((name, text))
}

/// Compiles `text`, or the rendered errors (file, line, column, caret).
fn compile(name: &str, text: &str) -> Result<CompiledSchema, String> {
    pemba_schema::compile(text).map_err(|errors| errors.render(name, text).trim_end().to_string())
}

fn write(file: &PathBuf, global: &GlobalArgs) -> Result<ExitCode, String> {
    global.no_consistency("schema write")?;
    let (name, text) = read_file(file)?;
    // Compiled here first so errors name the file and show the caret.
    compile(&name, &text)?;
    let api = global.api(true)?;
    let answer = api.post("/v1/schema/write", &json!({ "schema": text }))?;
    if global.json {
        print_json(&answer)?;
    } else {
        println!("{}", token(&answer, "/writtenAt/token"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored schema's text, `None` if none was written.
fn stored(global: &GlobalArgs, api: &super::api::Api) -> Result<Option<Value>, String> {
    api.post_or_missing(
        "/v1/schema/read",
        &json!({ "consistency": global.read_consistency().wire() }),
    )
}

fn read(global: &GlobalArgs) -> Result<ExitCode, String> {
    let api = global.api(false)?;
    let Some(answer) = stored(global, &api)? else {
        return Err("no schema has been written yet: `pemba schema write FILE`".to_string());
    };
    if global.json {
        print_json(&answer)?;
    } else {
        let text = answer
            .get("schemaText")
            .and_then(Value::as_str)
            .unwrap_or_default();
        print!("{}", text.trim_end());
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(file: &PathBuf, global: &GlobalArgs) -> Result<ExitCode, String> {
    let (name, text) = read_file(file)?;
    let new = compile(&name, &text)?;
    let api = global.api(false)?;
    let old = match stored(global, &api)? {
        Some(answer) => {
            let text = answer
                .get("schemaText")
                .and_then(Value::as_str)
                .unwrap_or_default();
            compile("the stored schema", text)?
        }
        None => {
            pemba_schema::compile("").map_err(|_| "an empty schema does not compile".to_string())?
        }
    };
    let changes = changes(&old, &new);
    let mut orphans = Vec::new();
    for (kind, filter, skip_wildcard) in removed_kinds(&old, &new) {
        let mut count = 0u64;
        let mut examples = Vec::new();
        api.stream(
            "/v1/relationships/read",
            &json!({
                "consistency": global.read_consistency().wire(),
                "relationshipFilter": wire::to_filter(&filter),
            }),
            |result| {
                let relationship = result.get("relationship").unwrap_or(&Value::Null);
                let is_wildcard =
                    relationship.pointer("/subject/object/objectId") == Some(&json!("*"));
                if skip_wildcard && is_wildcard {
                    return Ok(true);
                }
                count += 1;
                if examples.len() < ORPHANS_SHOWN {
                    examples.push(relationship_text(relationship)?);
                }
                Ok(true)
            },
        )?;
        if count > 0 {
            orphans.push((kind, count, examples));
        }
    }
    if global.json {
        let changes: Vec<Value> = changes
            .iter()
            .map(|(sign, key, line)| json!({ "change": sign, "name": key, "text": line }))
            .collect();
        let orphans: Vec<Value> = orphans
            .iter()
            .map(|(kind, count, examples)| {
                json!({ "kind": kind, "count": count, "examples": examples })
            })
            .collect();
        print_json(&json!({ "changes": changes, "orphans": orphans }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if changes.is_empty() {
        println!("no changes");
    }
    for (sign, key, line) in &changes {
        println!("{sign} {key}: {line}");
    }
    for (kind, count, examples) in &orphans {
        let noun = if *count == 1 {
            "relationship"
        } else {
            "relationships"
        };
        println!("orphaned: {count} {noun} of {kind}, e.g.");
        for example in examples {
            println!("    {example}");
        }
    }
    if !orphans.is_empty() {
        println!("`pemba schema write` would refuse this schema: delete the orphaned relationships first");
    }
    Ok(ExitCode::SUCCESS)
}

/// Every definition and member in canonical text, keyed `type` or `type#member`.
fn lines(schema: &CompiledSchema) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut current = String::new();
    for line in pemba_schema::print(schema).lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("definition ") {
            current = rest.trim_end_matches(['{', '}', ' ']).to_string();
            found.insert(current.clone(), format!("definition {current}"));
        } else if let Some(rest) = trimmed
            .strip_prefix("relation ")
            .or_else(|| trimmed.strip_prefix("permission "))
        {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(format!("{current}#{name}"), trimmed.to_string());
        }
    }
    found
}

/// `(sign, name, text)`: `-` removed, `+` added, both for a changed line.
fn changes(old: &CompiledSchema, new: &CompiledSchema) -> Vec<(&'static str, String, String)> {
    let (old, new) = (lines(old), lines(new));
    let mut changes = Vec::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    changes.push(("-", key.clone(), a.clone()));
                }
                if let Some(b) = b {
                    changes.push(("+", key.clone(), b.clone()));
                }
            }
        }
    }
    changes
}

/// Each relationship kind the old schema allows and the new one does not: its name, the
/// filter selecting its relationships, and whether wildcard subjects are to be left out
/// (a plain `T` subject filter also matches `T:*`).
fn removed_kinds(
    old: &CompiledSchema,
    new: &CompiledSchema,
) -> Vec<(String, RelationshipFilter, bool)> {
    let mut removed = Vec::new();
    for member in &old.members {
        let MemberKind::Relation(allowed) = &member.kind else {
            continue;
        };
        let resource_type = &old.definition(member.owner).name;
        let new_allowed = new
            .type_by_name(resource_type)
            .and_then(|ty| new.member_by_name(ty, &member.name))
            .and_then(|m| new.allowed_subjects(m));
        for subject in allowed {
            let subject_type = old.definition(subject.type_id()).name.clone();
            let (kind, id, relation, skip_wildcard) = match subject {
                AllowedSubject::Object(_) => (subject_type.clone(), None, String::new(), true),
                AllowedSubject::Wildcard(_) => (
                    format!("{subject_type}:*"),
                    Some("*".to_string()),
                    String::new(),
                    false,
                ),
                AllowedSubject::Userset(_, m) => {
                    let relation = old.member(*m).name.clone();
                    (format!("{subject_type}#{relation}"), None, relation, false)
                }
            };
            let still = new_allowed.is_some_and(|allowed| {
                let Some(ty) = new.type_by_name(&subject_type) else {
                    return false;
                };
                allowed.iter().any(|s| match (subject, s) {
                    (AllowedSubject::Object(_), AllowedSubject::Object(t))
                    | (AllowedSubject::Wildcard(_), AllowedSubject::Wildcard(t)) => *t == ty,
                    (AllowedSubject::Userset(..), AllowedSubject::Userset(t, m)) => {
                        *t == ty && new.member(*m).name == relation
                    }
                    _ => false,
                })
            });
            if still {
                continue;
            }
            let filter = RelationshipFilter {
                resource_type: Some(resource_type.clone()),
                resource_id: None,
                relation: Some(member.name.clone()),
                subject: Some(SubjectFilter {
                    subject_type,
                    subject_id: id,
                    relation: Some(relation),
                }),
            };
            removed.push((
                format!("{resource_type}#{}@{kind}", member.name),
                filter,
                skip_wildcard,
            ));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation viewer: user | group#member | user:*
    permission view = viewer
}";

    #[test]
    fn changes_and_removed_kinds() {
        let old = pemba_schema::compile(OLD).unwrap();
        let new = pemba_schema::compile(
            "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation viewer: user | group#member
    relation owner: user
    permission view = viewer + owner
}",
        )
        .unwrap();
        let found: Vec<String> = changes(&old, &new)
            .into_iter()
            .map(|(sign, key, line)| format!("{sign} {key}: {line}"))
            .collect();
        assert_eq!(
            found,
            [
                "+ doc#owner: relation owner: user",
                "- doc#view: permission view = viewer",
                "+ doc#view: permission view = viewer + owner",
                "- doc#viewer: relation viewer: user | group#member | user:*",
                "+ doc#viewer: relation viewer: user | group#member",
            ]
        );
        let removed: Vec<(String, bool)> = removed_kinds(&old, &new)
            .into_iter()
            .map(|(kind, _, skip)| (kind, skip))
            .collect();
        assert_eq!(removed, [("doc#viewer@user:*".to_string(), false)]);
        assert!(changes(&old, &old).is_empty());
        let without_group = pemba_schema::compile(
            "definition user {}
definition doc {
    relation viewer: user | user:*
    permission view = viewer
}",
        )
        .unwrap();
        let removed: Vec<String> = removed_kinds(&old, &without_group)
            .into_iter()
            .map(|(kind, _, _)| kind)
            .collect();
        assert_eq!(removed, ["group#member@user", "doc#viewer@group#member"]);
    }
}
