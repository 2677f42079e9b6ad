//! `pemba relationship create|touch|delete|read|bulk-delete`: relationships written,
//! listed and deleted by filter, on a data directory or a server.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use pemba_engine::{RelationshipFilter, SubjectFilter, Tuple};
use pemba_server::wire;
use serde_json::{json, Value};

use super::target::GlobalArgs;
use super::{fail, print_json, set_field};

/// `pemba relationship ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RelationshipCommand {
    /// Create relationships; fails (and writes nothing) if any already exists.
    #[command(
        after_help = "Example:\n  pemba relationship create 'group:eng#member@user:bob' \
                            'connection:sf#grantee@group:eng#member'\n  \
                            prints the revision token of the write, e.g. pb1.3"
    )]
    Create(WriteArgs),
    /// Create relationships or keep them if they exist (upsert).
    #[command(
        after_help = "Example:\n  pemba relationship touch 'workspace:acme#viewer@user:bob'\n  \
                            prints the revision token of the write, e.g. pb1.4"
    )]
    Touch(WriteArgs),
    /// Delete relationships (deleting one that is not stored is not an error).
    #[command(
        after_help = "Example:\n  pemba relationship delete 'group:eng#member@user:bob'\n  \
                            prints the revision token of the write, e.g. pb1.5"
    )]
    Delete(WriteArgs),
    /// List the relationships matching a filter, in a stable order, a page at a time.
    #[command(
        after_help = "FILTER is `[TYPE[:ID]][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]]`; \
                            every part is optional.\n\nExamples:\n  \
                            pemba relationship read                    # everything\n  \
                            pemba relationship read connection:sf      # one resource\n  \
                            pemba relationship read 'group#member@user:bob'\n  \
                            pemba relationship read connection --limit 100 --cursor TOKEN\n\n\
                            With --limit, a full page ends with `next page: --cursor TOKEN` on stderr."
    )]
    Read(ReadArgs),
    /// Delete every relationship matching a filter, after showing how many match.
    #[command(
        after_help = "FILTER is `[TYPE[:ID]][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]]`; \
                            at least one part is required.\n\nExample:\n  \
                            pemba relationship bulk-delete 'group:eng#member'\n  \
                            3 relationships match `group:eng#member`; delete? [y/N] y\n  \
                            deleted 3 relationships at pb1.9\n\n\
                            Without a terminal to ask on, it deletes only with --force."
    )]
    BulkDelete(BulkDeleteArgs),
}

/// Relationships to write.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Relationships, `TYPE:ID#RELATION@SUBJECT_TYPE:ID[#RELATION]`, all written in one
    /// atomic transaction.
    #[arg(required = true, value_name = "REL")]
    pub relationships: Vec<String>,
}

/// `relationship read` flags.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Which relationships (default: all).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// At most this many (one page, at most 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Continue after the page that printed this cursor.
    #[arg(long, value_name = "TOKEN")]
    pub cursor: Option<String>,
}

/// `relationship bulk-delete` flags.
#[derive(Debug, clap::Args)]
pub struct BulkDeleteArgs {
    /// Which relationships.
    #[arg(value_name = "FILTER")]
    pub filter: String,
    /// Delete without asking.
    #[arg(long)]
    pub force: bool,
}

/// Runs a `relationship` subcommand.
pub fn run(command: RelationshipCommand, global: &GlobalArgs) -> ExitCode {
    let result = match command {
        RelationshipCommand::Create(args) => write(&args, "OPERATION_CREATE", global),
        RelationshipCommand::Touch(args) => write(&args, "OPERATION_TOUCH", global),
        RelationshipCommand::Delete(args) => write(&args, "OPERATION_DELETE", global),
        RelationshipCommand::Read(args) => read(&args, global),
        RelationshipCommand::BulkDelete(args) => bulk_delete(&args, global),
    };
    result.unwrap_or_else(fail)
}

fn write(args: &WriteArgs, operation: &str, global: &GlobalArgs) -> Result<ExitCode, String> {
    global.no_consistency("relationship write")?;
    let mut updates = Vec::new();
    for text in &args.relationships {
        let tuple = Tuple::parse(text.trim()).map_err(|e| format!("`{text}`: {e}"))?;
        updates.push(json!({
            "operation": operation,
            "relationship": wire::to_relationship(&tuple),
        }));
    }
    let api = global.api(true)?;
    let answer = api.post("/v1/relationships/write", &json!({ "updates": updates }))?;
    if global.json {
        print_json(&answer)?;
    } else {
        println!("{}", token(&answer, "/writtenAt/token"));
    }
    Ok(ExitCode::SUCCESS)
}

fn read(args: &ReadArgs, global: &GlobalArgs) -> Result<ExitCode, String> {
    let filter = match &args.filter {
        Some(text) => parse_filter(text)?,
        None => RelationshipFilter::default(),
    };
    let mut body = json!({
        "consistency": global.read_consistency().wire(),
        "relationshipFilter": wire::to_filter(&filter),
    });
    if let Some(limit) = args.limit {
        set_field(&mut body, "optionalLimit", json!(limit));
    }
    if let Some(cursor) = &args.cursor {
        set_field(&mut body, "optionalCursor", json!({ "token": cursor }));
    }
    let api = global.api(false)?;
    let mut out = std::io::stdout().lock();
    let mut count = 0u32;
    let mut last_cursor = None;
    api.stream("/v1/relationships/read", &body, |result| {
        count += 1;
        last_cursor = result
            .pointer("/afterResultCursor/token")
            .and_then(Value::as_str)
            .map(str::to_string);
        let line = if global.json {
            result.to_string()
        } else {
            relationship_text(result.get("relationship").unwrap_or(&Value::Null))?
        };
        writeln!(out, "{line}").map_err(|e| format!("cannot write: {e}"))?;
        Ok(true)
    })?;
    if let (Some(limit), Some(cursor)) = (args.limit, last_cursor) {
        if count == limit && !global.json {
            eprintln!("next page: --cursor {cursor}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bulk_delete(args: &BulkDeleteArgs, global: &GlobalArgs) -> Result<ExitCode, String> {
    global.no_consistency("relationship bulk-delete")?;
    let filter = parse_filter(&args.filter)?;
    if filter.is_empty() {
        return Err(format!(
            "filter `{}` selects every relationship: name at least a type, relation or subject",
            args.filter
        ));
    }
    let api = global.api(false)?;
    let wire_filter = wire::to_filter(&filter);
    let mut count = 0u64;
    api.stream(
        "/v1/relationships/read",
        &json!({ "consistency": { "fullyConsistent": true }, "relationshipFilter": wire_filter }),
        |_| {
            count += 1;
            Ok(true)
        },
    )?;
    let (noun, verb) = if count == 1 {
        ("relationship", "matches")
    } else {
        ("relationships", "match")
    };
    if count == 0 {
        if global.json {
            print_json(&json!({ "relationshipsDeletedCount": "0" }))?;
        } else {
            println!("no relationship matches `{}`: nothing deleted", args.filter);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(format!(
                "{count} {noun} {verb} `{}`; pass --force to delete without asking",
                args.filter
            ));
        }
        eprint!("{count} {noun} {verb} `{}`; delete? [y/N] ", args.filter);
        let _ = std::io::stderr().flush();
        let mut reply = String::new();
        stdin
            .lock()
            .read_line(&mut reply)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if !matches!(reply.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return Ok(ExitCode::from(1));
        }
    }
    let answer = api.post(
        "/v1/relationships/delete",
        &json!({ "relationshipFilter": wire_filter }),
    )?;
    if global.json {
        print_json(&answer)?;
    } else {
        let deleted = answer
            .get("relationshipsDeletedCount")
            .and_then(Value::as_str)
            .unwrap_or("0");
        let noun = if deleted == "1" {
            "relationship"
        } else {
            "relationships"
        };
        println!(
            "deleted {deleted} {noun} at {}",
            token(&answer, "/deletedAt/token")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The token at `pointer` in an answer (empty if absent).
pub fn token(answer: &Value, pointer: &str) -> String {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A wire relationship in text form.
pub fn relationship_text(relationship: &Value) -> Result<String, String> {
    let relationship: wire::Relationship = serde_json::from_value(relationship.clone())
        .map_err(|e| format!("unreadable relationship in the answer: {e}"))?;
    wire::relationship(&relationship, "relationship")
        .map(|tuple| tuple.to_string())
        .map_err(|e| e.message)
}

/// Parses `[TYPE[:ID]][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]]`.
pub fn parse_filter(text: &str) -> Result<RelationshipFilter, String> {
    let text = text.trim();
    let (resource, subject) = match text.split_once('@') {
        Some((resource, subject)) => (resource, Some(subject)),
        None => (text, None),
    };
    let (resource, relation) = split_relation(resource);
    let (resource_type, resource_id) = split_id(resource);
    if resource_id.is_some() && resource_type.is_none() {
        return Err(format!(
            "filter `{text}`: a resource id needs its type (`TYPE:ID`)"
        ));
    }
    let subject = match subject {
        None => None,
        Some(subject) => {
            let (object, relation) = split_relation(subject);
            let (subject_type, subject_id) = split_id(object);
            let Some(subject_type) = subject_type else {
                return Err(format!(
                    "filter `{text}`: after `@` comes a subject type (`@user`, `@user:bob`, \
                     `@group:eng#member`)"
                ));
            };
            Some(SubjectFilter {
                subject_type,
                subject_id,
                relation,
            })
        }
    };
    Ok(RelationshipFilter {
        resource_type,
        resource_id,
        relation,
        subject,
    })
}

fn split_relation(text: &str) -> (&str, Option<String>) {
    match text.split_once('#') {
        Some((object, relation)) => (object, Some(relation.to_string())),
        None => (text, None),
    }
}

fn split_id(text: &str) -> (Option<String>, Option<String>) {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match text.split_once(':') {
        Some((ty, id)) => (non_empty(ty), non_empty(id)),
        None => (non_empty(text), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subject type, id and relation.
    type Subject = (&'static str, Option<&'static str>, Option<&'static str>);
    /// Text, resource type, id, relation, subject.
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<Subject>,
    );

    #[test]
    fn filters() {
        let cases: &[Case] = &[
            ("connection", Some("connection"), None, None, None),
            ("connection:sf", Some("connection"), Some("sf"), None, None),
            (
                "connection:sf#grantee",
                Some("connection"),
                Some("sf"),
                Some("grantee"),
                None,
            ),
            ("#member", None, None, Some("member"), None),
            (
                "group#member@user:bob",
                Some("group"),
                None,
                Some("member"),
                Some(("user", Some("bob"), None)),
            ),
            (
                "@group:eng#member",
                None,
                None,
                None,
                Some(("group", Some("eng"), Some("member"))),
            ),
            (
                "connection@user",
                Some("connection"),
                None,
                None,
                Some(("user", None, None)),
            ),
        ];
        for (text, ty, id, relation, subject) in cases {
            let filter = parse_filter(text).unwrap();
            let own = |v: &Option<&str>| v.map(str::to_string);
            assert_eq!(filter.resource_type, own(ty), "{text}");
            assert_eq!(filter.resource_id, own(id), "{text}");
            assert_eq!(filter.relation, own(relation), "{text}");
            let got = filter
                .subject
                .map(|s| (s.subject_type, s.subject_id, s.relation));
            let want = subject.map(|(t, i, r)| (t.to_string(), own(&i), own(&r)));
            assert_eq!(got, want, "{text}");
        }
        for bad in [":sf", "connection@", "connection@:bob"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
