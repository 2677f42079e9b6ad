//! `pemba permission check|expand|lookup-resources|lookup-subjects` (and the older
//! `pemba check` and `pemba lookup`), with `--explain`: why a check says yes or no.
//!
//! The explanation is read from the expand tree, userset by userset: for a grant, the one
//! path of sets that leads to the subject; for a denial, every set consulted, each shown
//! without the subject.

use std::io::Write;
use std::process::ExitCode;

use pemba_engine::{ObjectRef, SubjectRef, Tuple};
use pemba_server::wire;
use serde_json::{json, Value};

use super::api::Api;
use super::target::GlobalArgs;
use super::{fail, print_json, set_field};

/// How many usersets deep an explanation follows (schemas are flat, so real paths are
/// short; this bounds the requests a hostile store could cause).
const EXPLAIN_DEPTH: usize = 16;

/// `pemba permission ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PermissionCommand {
    /// Check `RESOURCE#PERMISSION@SUBJECT`: prints `true` (exit 0) or `false` (exit 1).
    Check(CheckArgs),
    /// Print the tree of sets behind `RESOURCE#PERMISSION`.
    #[command(
        after_help = "Example:\n  pemba permission expand 'connection:sf#use'\n  \
                            connection:sf#use: union\n    connection:sf#owner: empty\n    \
                            connection:sf#grantee: group:eng#member\n    ..."
    )]
    Expand {
        /// `TYPE:ID#PERMISSION`, e.g. `connection:sf#use`.
        #[arg(value_name = "RESOURCE#PERMISSION")]
        resource: String,
    },
    /// Ids of every RESOURCE_TYPE object on which SUBJECT has PERMISSION, one a line.
    #[command(
        after_help = "Example:\n  pemba permission lookup-resources connection use user:bob\n  sf"
    )]
    LookupResources(LookupResourcesArgs),
    /// Ids of every SUBJECT_TYPE subject with PERMISSION on RESOURCE, one a line (`*` for
    /// a wildcard, followed by its exclusions).
    #[command(
        after_help = "Example:\n  pemba permission lookup-subjects connection:sf use user\n  alice\n  bob"
    )]
    LookupSubjects(LookupSubjectsArgs),
}

/// `permission check` (and `pemba check`) arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  pemba permission check 'connection:sf#use@user:bob'\n  true\n\n  \
                        pemba permission check 'connection:sf#use@user:bob' --explain\n  true\n  \
                        connection:sf#use: union, includes user:bob\n    \
                        connection:sf#grantee: includes group:eng#member\n      \
                        group:eng#member: includes user:bob\n\n\
                        Exit status: 0 for true, 1 for false, 2 for an error."
)]
pub struct CheckArgs {
    /// `RESOURCE_TYPE:ID#PERMISSION@SUBJECT_TYPE:ID[#RELATION]`.
    #[arg(value_name = "RESOURCE#PERMISSION@SUBJECT")]
    pub query: String,
    /// Also print why: the path of sets that grants it, or every set that lacks it.
    #[arg(long)]
    pub explain: bool,
}

/// `permission lookup-resources` (and `pemba lookup resources`) arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  pemba permission lookup-resources connection use user:bob\n  sf"
)]
pub struct LookupResourcesArgs {
    /// Resource type, e.g. `connection`.
    pub resource_type: String,
    /// Permission, e.g. `use`.
    pub permission: String,
    /// Subject, e.g. `user:alice` or `group:eng#member`.
    pub subject: String,
    /// Print, under each id, the path of sets that grants it.
    #[arg(long)]
    pub explain: bool,
}

/// `permission lookup-subjects` (and `pemba lookup subjects`) arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  pemba permission lookup-subjects connection:sf use user\n  alice\n  bob"
)]
pub struct LookupSubjectsArgs {
    /// Resource, e.g. `connection:salesforce`.
    pub resource: String,
    /// Permission, e.g. `use`.
    pub permission: String,
    /// Subject type, optionally with `#relation`, e.g. `user` or `group#member`.
    pub subject_type: String,
    /// Print, under each id, the path of sets that grants it.
    #[arg(long)]
    pub explain: bool,
}

/// Runs a `permission` subcommand.
pub fn run(command: PermissionCommand, global: &GlobalArgs) -> ExitCode {
    match command {
        PermissionCommand::Check(args) => check(&args, global),
        PermissionCommand::Expand { resource } => expand(&resource, global).unwrap_or_else(fail),
        PermissionCommand::LookupResources(args) => {
            lookup_resources(&args, global).unwrap_or_else(fail)
        }
        PermissionCommand::LookupSubjects(args) => {
            lookup_subjects(&args, global).unwrap_or_else(fail)
        }
    }
}

/// One check: prints `true` (exit 0) or `false` (exit 1); errors exit 2.
pub fn check(args: &CheckArgs, global: &GlobalArgs) -> ExitCode {
    let run = || -> Result<ExitCode, String> {
        let query =
            Tuple::parse(args.query.trim()).map_err(|e| format!("`{}`: {e}", args.query))?;
        let api = global.api(false)?;
        let consistency = global.read_consistency().wire();
        let mut answer = api.post(
            "/v1/permissions/check",
            &json!({
                "consistency": consistency,
                "resource": wire::to_object(&query.resource),
                "permission": query.relation,
                "subject": wire::to_subject(&query.subject),
            }),
        )?;
        let allowed = answer.get("permissionship").and_then(Value::as_str)
            == Some("PERMISSIONSHIP_HAS_PERMISSION");
        let explanation = if args.explain {
            // Read at the revision the check answered at, so both describe one state.
            let at = answer
                .pointer("/checkedAt/token")
                .cloned()
                .unwrap_or(Value::Null);
            let explainer = Explainer {
                api: &api,
                consistency: json!({ "atLeastAsFresh": { "token": at } }),
                subject: &query.subject,
            };
            Some(explainer.explain(&query.resource, &query.relation, 0)?)
        } else {
            None
        };
        if global.json {
            if let Some(node) = &explanation {
                set_field(&mut answer, "explanation", node.to_json());
            }
            print_json(&answer)?;
        } else {
            println!("{allowed}");
            if let Some(node) = &explanation {
                let mut out = String::new();
                node.render(&mut out, 0, allowed, &query.subject);
                print!("{out}");
                if node.holds != allowed {
                    eprintln!(
                        "note: the expand tree does not account for this answer (it {} the subject)",
                        if node.holds { "includes" } else { "does not include" }
                    );
                }
            }
        }
        Ok(if allowed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    };
    run().unwrap_or_else(fail)
}

fn parse_resource_permission(text: &str) -> Result<(ObjectRef, String), String> {
    let (resource, permission) = text
        .trim()
        .split_once('#')
        .ok_or_else(|| format!("`{text}`: expected `TYPE:ID#PERMISSION`"))?;
    let resource = ObjectRef::parse(resource).map_err(|e| format!("`{text}`: {e}"))?;
    Ok((resource, permission.to_string()))
}

fn expand(text: &str, global: &GlobalArgs) -> Result<ExitCode, String> {
    let (resource, permission) = parse_resource_permission(text)?;
    let api = global.api(false)?;
    let answer = api.post(
        "/v1/permissions/expand",
        &json!({
            "consistency": global.read_consistency().wire(),
            "resource": wire::to_object(&resource),
            "permission": permission,
        }),
    )?;
    if global.json {
        print_json(&answer)?;
    } else {
        let mut out = String::new();
        render_tree(answer.get("treeRoot").unwrap_or(&Value::Null), 0, &mut out);
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// An expand tree as indented text, one set a line.
fn render_tree(node: &Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let name = set_name(node);
    if let Some(intermediate) = node.get("intermediate") {
        let operation = operation_word(node, intermediate);
        let children = children(intermediate);
        if children.is_empty() {
            out.push_str(&format!("{indent}{name}: {operation}, empty\n"));
        } else {
            out.push_str(&format!("{indent}{name}: {operation}\n"));
        }
        for child in children {
            render_tree(child, depth + 1, out);
        }
    } else {
        let subjects = leaf_subjects(node);
        let listed = if subjects.is_empty() {
            "empty".to_string()
        } else {
            subjects
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("{indent}{name}: {listed}\n"));
    }
}

fn set_name(node: &Value) -> String {
    let field = |pointer: &str| node.pointer(pointer).and_then(Value::as_str).unwrap_or("?");
    format!(
        "{}:{}#{}",
        field("/expandedObject/objectType"),
        field("/expandedObject/objectId"),
        field("/expandedRelation")
    )
}

/// The set operation of `node`'s `intermediate`. The expand tree gives an arrow
/// (`workspace->admin`) as a union of sets on other objects; it is named `arrow` so a
/// reader can tell it from a union of the node's own relations.
fn operation_word(node: &Value, intermediate: &Value) -> &'static str {
    match intermediate.get("operation").and_then(Value::as_str) {
        Some("OPERATION_INTERSECTION") => "intersection",
        Some("OPERATION_EXCLUSION") => "exclusion",
        _ => {
            let object = node.get("expandedObject");
            let operands = children(intermediate);
            let elsewhere = |child: &Value| child.get("expandedObject") != object;
            if !operands.is_empty() && operands.iter().all(elsewhere) {
                "arrow"
            } else {
                "union"
            }
        }
    }
}

fn children(intermediate: &Value) -> &[Value] {
    intermediate
        .get("children")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn leaf_subjects(node: &Value) -> Vec<SubjectRef> {
    node.pointer("/leaf/subjects")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    let subject: wire::SubjectReference = serde_json::from_value(s.clone()).ok()?;
                    wire::subject(&subject, "subject").ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Why a subject is or is not in one set.
#[derive(Debug)]
struct Explained {
    /// `type:id#relation`.
    set: String,
    /// `union`, `intersection`, `exclusion`, or `None` for stored subjects.
    operation: Option<&'static str>,
    /// Whether the subject is in the set.
    holds: bool,
    /// For stored subjects: the one that includes the subject, or all of them.
    subjects: Vec<String>,
    /// Operands, or for stored subjects the usersets followed.
    children: Vec<Explained>,
}

impl Explained {
    fn to_json(&self) -> Value {
        json!({
            "set": self.set,
            "operation": self.operation,
            "includesSubject": self.holds,
            "subjects": self.subjects,
            "children": self.children.iter().map(Explained::to_json).collect::<Vec<_>>(),
        })
    }

    /// For a grant, only the sets on the path that includes the subject; for a denial,
    /// every set.
    fn render(&self, out: &mut String, depth: usize, granted: bool, subject: &SubjectRef) {
        let indent = "  ".repeat(depth + 1);
        let verdict = if self.holds {
            "includes"
        } else {
            "does not include"
        };
        match self.operation {
            Some(operation) if self.children.is_empty() => {
                out.push_str(&format!("{indent}{}: {operation}, empty\n", self.set));
            }
            Some(operation) => {
                out.push_str(&format!(
                    "{indent}{}: {operation}, {verdict} {subject}\n",
                    self.set
                ));
            }
            None if self.holds => {
                let via = self.subjects.first().map(String::as_str).unwrap_or("?");
                out.push_str(&format!("{indent}{}: includes {via}\n", self.set));
            }
            None if self.subjects.is_empty() => {
                out.push_str(&format!("{indent}{}: empty\n", self.set));
            }
            None => {
                out.push_str(&format!(
                    "{indent}{}: {} (not {subject})\n",
                    self.set,
                    self.subjects.join(", ")
                ));
            }
        }
        for child in &self.children {
            // On a grant's path, a union shows the operand that gives it; an exclusion
            // shows both sides (the second one lacking the subject).
            let shown = !granted || child.holds || self.operation == Some("exclusion");
            if shown {
                child.render(out, depth + 1, granted && child.holds, subject);
            }
        }
    }
}

struct Explainer<'a> {
    api: &'a Api,
    consistency: Value,
    subject: &'a SubjectRef,
}

impl Explainer<'_> {
    fn explain(
        &self,
        resource: &ObjectRef,
        permission: &str,
        depth: usize,
    ) -> Result<Explained, String> {
        let answer = self.api.post(
            "/v1/permissions/expand",
            &json!({
                "consistency": self.consistency,
                "resource": wire::to_object(resource),
                "permission": permission,
            }),
        )?;
        self.node(answer.get("treeRoot").unwrap_or(&Value::Null), depth)
    }

    fn node(&self, node: &Value, depth: usize) -> Result<Explained, String> {
        let set = set_name(node);
        if let Some(intermediate) = node.get("intermediate") {
            let operation = operation_word(node, intermediate);
            let children = children(intermediate)
                .iter()
                .map(|child| self.node(child, depth))
                .collect::<Result<Vec<_>, _>>()?;
            let holds = match operation {
                "intersection" => !children.is_empty() && children.iter().all(|c| c.holds),
                "exclusion" => {
                    children.first().is_some_and(|c| c.holds)
                        && !children.get(1).is_some_and(|c| c.holds)
                }
                // Union and arrow alike.
                _ => children.iter().any(|c| c.holds),
            };
            return Ok(Explained {
                set,
                operation: Some(operation),
                holds,
                subjects: Vec::new(),
                children,
            });
        }
        let subjects = leaf_subjects(node);
        let mut followed = Vec::new();
        for stored in &subjects {
            let direct = stored == self.subject
                || (stored.object.object_id == "*"
                    && stored.relation.is_none()
                    && self.subject.relation.is_none()
                    && stored.object.object_type == self.subject.object.object_type);
            if direct {
                return Ok(Explained {
                    set,
                    operation: None,
                    holds: true,
                    subjects: vec![stored.to_string()],
                    children: Vec::new(),
                });
            }
            if let Some(relation) = &stored.relation {
                if depth >= EXPLAIN_DEPTH {
                    return Err(format!(
                        "cannot explain: usersets nest more than {EXPLAIN_DEPTH} deep at `{stored}`"
                    ));
                }
                let inner = self.explain(&stored.object, relation, depth + 1)?;
                if inner.holds {
                    return Ok(Explained {
                        set,
                        operation: None,
                        holds: true,
                        subjects: vec![stored.to_string()],
                        children: vec![inner],
                    });
                }
                followed.push(inner);
            }
        }
        Ok(Explained {
            set,
            operation: None,
            holds: false,
            subjects: subjects.iter().map(ToString::to_string).collect(),
            children: followed,
        })
    }
}

fn lookup_resources(args: &LookupResourcesArgs, global: &GlobalArgs) -> Result<ExitCode, String> {
    let subject =
        SubjectRef::parse(&args.subject).map_err(|e| format!("`{}`: {e}", args.subject))?;
    let api = global.api(false)?;
    let mut ids = Vec::new();
    api.stream(
        "/v1/permissions/resources",
        &json!({
            "consistency": global.read_consistency().wire(),
            "resourceObjectType": args.resource_type,
            "permission": args.permission,
            "subject": wire::to_subject(&subject),
        }),
        |result| {
            ids.push(result);
            Ok(true)
        },
    )?;
    let mut out = std::io::stdout().lock();
    for result in ids {
        let id = result
            .get("resourceObjectId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let explanation = if args.explain {
            let resource = ObjectRef::new(args.resource_type.clone(), id.clone());
            Some(explain_at(
                &api,
                &result,
                "/lookedUpAt/token",
                &resource,
                &args.permission,
                &subject,
            )?)
        } else {
            None
        };
        emit(&mut out, global, result, &id, explanation, &subject)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn lookup_subjects(args: &LookupSubjectsArgs, global: &GlobalArgs) -> Result<ExitCode, String> {
    let resource =
        ObjectRef::parse(&args.resource).map_err(|e| format!("`{}`: {e}", args.resource))?;
    let (subject_type, relation) = match args.subject_type.split_once('#') {
        Some((ty, relation)) => (ty.to_string(), relation.to_string()),
        None => (args.subject_type.clone(), String::new()),
    };
    let api = global.api(false)?;
    let mut found = Vec::new();
    api.stream(
        "/v1/permissions/subjects",
        &json!({
            "consistency": global.read_consistency().wire(),
            "resource": wire::to_object(&resource),
            "permission": args.permission,
            "subjectObjectType": subject_type,
            "optionalSubjectRelation": relation,
        }),
        |result| {
            found.push(result);
            Ok(true)
        },
    )?;
    let mut out = std::io::stdout().lock();
    for result in found {
        let id = result
            .pointer("/subject/subjectObjectId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let excluded: Vec<&str> = result
            .get("excludedSubjects")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|s| s.get("subjectObjectId").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let line = if excluded.is_empty() {
            id.clone()
        } else {
            format!("{id} (except {})", excluded.join(", "))
        };
        let subject = SubjectRef {
            object: ObjectRef::new(subject_type.clone(), id.clone()),
            relation: (!relation.is_empty()).then(|| relation.clone()),
        };
        let explanation = if args.explain {
            Some(explain_at(
                &api,
                &result,
                "/lookedUpAt/token",
                &resource,
                &args.permission,
                &subject,
            )?)
        } else {
            None
        };
        emit(
            &mut out,
            global,
            result.clone(),
            &line,
            explanation,
            &subject,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The explanation of one lookup result, at the revision the lookup answered at.
fn explain_at(
    api: &Api,
    result: &Value,
    token: &str,
    resource: &ObjectRef,
    permission: &str,
    subject: &SubjectRef,
) -> Result<Explained, String> {
    let at = result.pointer(token).cloned().unwrap_or(Value::Null);
    let explainer = Explainer {
        api,
        consistency: json!({ "atLeastAsFresh": { "token": at } }),
        subject,
    };
    explainer.explain(resource, permission, 0)
}

/// One lookup result: the API's JSON line with `--json`, else the id (and its path).
fn emit(
    out: &mut impl Write,
    global: &GlobalArgs,
    mut result: Value,
    line: &str,
    explanation: Option<Explained>,
    subject: &SubjectRef,
) -> Result<(), String> {
    let written = if global.json {
        if let Some(node) = &explanation {
            set_field(&mut result, "explanation", node.to_json());
        }
        writeln!(out, "{result}")
    } else {
        let mut text = format!("{line}\n");
        if let Some(node) = &explanation {
            node.render(&mut text, 0, node.holds, subject);
        }
        write!(out, "{text}")
    };
    written.map_err(|e| format!("cannot write: {e}"))
}
