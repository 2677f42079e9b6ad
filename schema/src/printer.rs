//! Canonical printer: compiled schema to schema text.

use std::fmt::Write as _;

use crate::compiled::{AllowedSubject, CompiledSchema, Expr, MemberId, MemberKind, TypeId};

/// Prints `schema` in canonical form: one blank line between definitions, members
/// indented by four spaces, doc comments as `/** ... */`, and explicit parentheses
/// around every binary sub-expression that is not at the top of a permission.
///
/// Compiling the output gives back an equal schema.
///
/// ```
/// let schema = pemba_schema::compile(
///     "definition user {}
///      definition doc {
///          relation aaa: user
///          relation bbb: user
///          permission ppp = aaa - bbb + aaa
///      }",
/// )?;
/// assert!(pemba_schema::print(&schema).contains("permission ppp = aaa - (bbb + aaa)"));
/// # Ok::<(), pemba_schema::SchemaErrors>(())
/// ```
pub fn print(schema: &CompiledSchema) -> String {
    let mut out = String::new();
    for (index, definition) in schema.definitions.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        write_doc(&mut out, definition.doc.as_deref(), "");
        if definition.members.is_empty() {
            let _ = writeln!(out, "definition {} {{}}", definition.name);
            continue;
        }
        let _ = writeln!(out, "definition {} {{", definition.name);
        for &id in &definition.members {
            let Some(member) = schema.members.get(id.0 as usize) else {
                continue;
            };
            write_doc(&mut out, member.doc.as_deref(), "    ");
            match &member.kind {
                MemberKind::Relation(allowed) => {
                    let subjects: Vec<String> =
                        allowed.iter().map(|s| subject(schema, *s)).collect();
                    let _ = writeln!(
                        out,
                        "    relation {}: {}",
                        member.name,
                        subjects.join(" | ")
                    );
                }
                MemberKind::Permission(expr) => {
                    let _ = write!(out, "    permission {} = ", member.name);
                    write_expr(&mut out, schema, expr, true);
                    out.push('\n');
                }
            }
        }
        out.push_str("}\n");
    }
    out
}

fn type_name(schema: &CompiledSchema, ty: TypeId) -> &str {
    schema
        .definitions
        .get(ty.0 as usize)
        .map_or("<unknown type>", |d| d.name.as_str())
}

fn member_name(schema: &CompiledSchema, id: MemberId) -> &str {
    schema
        .members
        .get(id.0 as usize)
        .map_or("<unknown member>", |m| m.name.as_str())
}

fn subject(schema: &CompiledSchema, subject: AllowedSubject) -> String {
    match subject {
        AllowedSubject::Object(ty) => type_name(schema, ty).to_string(),
        AllowedSubject::Userset(ty, member) => {
            format!("{}#{}", type_name(schema, ty), member_name(schema, member))
        }
        AllowedSubject::Wildcard(ty) => format!("{}:*", type_name(schema, ty)),
    }
}

fn write_expr(out: &mut String, schema: &CompiledSchema, expr: &Expr, top: bool) {
    let (op, lhs, rhs) = match expr {
        Expr::Nil => {
            out.push_str("nil");
            return;
        }
        Expr::Member(id) => {
            out.push_str(member_name(schema, *id));
            return;
        }
        Expr::Arrow(arrow) => {
            let _ = write!(
                out,
                "{}->{}",
                member_name(schema, arrow.tupleset),
                arrow.computed_name
            );
            return;
        }
        Expr::Union(lhs, rhs) => ("+", lhs, rhs),
        Expr::Intersection(lhs, rhs) => ("&", lhs, rhs),
        Expr::Exclusion(lhs, rhs) => ("-", lhs, rhs),
    };
    if !top {
        out.push('(');
    }
    write_expr(out, schema, lhs, false);
    let _ = write!(out, " {op} ");
    write_expr(out, schema, rhs, false);
    if !top {
        out.push(')');
    }
}

/// Writes a doc comment: `/** text */` on one line, or one ` * line` per line.
fn write_doc(out: &mut String, doc: Option<&str>, indent: &str) {
    let Some(doc) = doc else {
        return;
    };
    if !doc.contains('\n') {
        let _ = writeln!(out, "{indent}/** {doc} */");
        return;
    }
    let _ = writeln!(out, "{indent}/**");
    for line in doc.split('\n') {
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
}
