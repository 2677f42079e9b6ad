//! Pins the language's semantics on the compiled form: precedence, statement
//! termination, arrow targets, docs, error positions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside `#[test]` fail by panicking, with the panic's location"
)]

use pemba_schema::{
    compile, AllowedSubject, CompiledSchema, ErrorKind, Expr, MemberId, MemberKind,
};

const PRELUDE: &str = "definition user {}
definition doc {
    relation aaa: user
    relation bbb: user
    relation ccc: user
";

/// Compiles `permission ppp = EXPR` over relations `aaa`, `bbb`, `ccc` and shows its
/// tree as s-expressions.
#[track_caller]
fn check(expr: &str, expected: &str) {
    let source = format!("{PRELUDE}    permission ppp = {expr}\n}}\n");
    let schema = compile(&source).unwrap_or_else(|e| panic!("{}", e.render("t", &source)));
    let doc = schema.type_by_name("doc").unwrap();
    let ppp = schema.member_by_name(doc, "ppp").unwrap();
    let MemberKind::Permission(expr) = &schema.member(ppp).kind else {
        panic!("not a permission")
    };
    assert_eq!(sexpr(&schema, expr), expected);
}

fn sexpr(schema: &CompiledSchema, expr: &Expr) -> String {
    let name = |id: MemberId| schema.member(id).name.clone();
    match expr {
        Expr::Nil => "nil".to_string(),
        Expr::Member(id) => name(*id),
        Expr::Arrow(arrow) => format!("{}->{}", name(arrow.tupleset), arrow.computed_name),
        Expr::Union(a, b) => format!("(+ {} {})", sexpr(schema, a), sexpr(schema, b)),
        Expr::Intersection(a, b) => format!("(& {} {})", sexpr(schema, a), sexpr(schema, b)),
        Expr::Exclusion(a, b) => format!("(- {} {})", sexpr(schema, a), sexpr(schema, b)),
    }
}

#[test]
fn precedence_minus_is_loosest() {
    check("aaa - bbb + ccc", "(- aaa (+ bbb ccc))");
    check("aaa + bbb - ccc", "(- (+ aaa bbb) ccc)");
    check("aaa - bbb & ccc", "(- aaa (& bbb ccc))");
    check("aaa & bbb - ccc", "(- (& aaa bbb) ccc)");
}

#[test]
fn precedence_plus_binds_tighter_than_amp() {
    check("aaa & bbb + ccc", "(& aaa (+ bbb ccc))");
    check("aaa + bbb & ccc", "(& (+ aaa bbb) ccc)");
}

#[test]
fn operators_are_left_associative() {
    check("aaa - bbb - ccc", "(- (- aaa bbb) ccc)");
    check("aaa + bbb + ccc", "(+ (+ aaa bbb) ccc)");
    check("aaa & bbb & ccc", "(& (& aaa bbb) ccc)");
}

#[test]
fn parentheses_and_nil() {
    check("aaa - (bbb - ccc)", "(- aaa (- bbb ccc))");
    check("((aaa))", "aaa");
    check("nil", "nil");
    check("aaa + nil", "(+ aaa nil)");
}

#[test]
fn operator_at_line_end_continues() {
    check("aaa -\n bbb +\n ccc", "(- aaa (+ bbb ccc))");
    check("(aaa +\n bbb) & ccc", "(& (+ aaa bbb) ccc)");
}

#[test]
fn arrow_is_tightest_and_has_targets_in_order() {
    let source = "definition user {}
definition team { relation member: user }
definition org {
    relation member: user
    permission view = member
}
definition doc {
    relation parent: org | team#member | user | team | org:*
    relation owner: user
}
definition page {
    relation parent: org | team#member | user | team
    relation owner: user
    permission ppp = owner + parent->member & owner
}
";
    // `team { relation member: user }` is one line: not allowed; fix it up first.
    assert!(compile(source).is_err());
    let source = source.replace(
        "definition team { relation member: user }",
        "definition team {\n relation member: user\n}",
    );
    let source = source.replace(" | org:*", "");
    let schema = compile(&source).unwrap_or_else(|e| panic!("{}", e.render("t", &source)));
    let page = schema.type_by_name("page").unwrap();
    let ppp = schema.member_by_name(page, "ppp").unwrap();
    let MemberKind::Permission(Expr::Intersection(lhs, _)) = &schema.member(ppp).kind else {
        panic!("expected an intersection at the top")
    };
    let Expr::Union(_, arrow) = &**lhs else {
        panic!("expected a union")
    };
    let Expr::Arrow(arrow) = &**arrow else {
        panic!("expected an arrow")
    };
    let org = schema.type_by_name("org").unwrap();
    let team = schema.type_by_name("team").unwrap();
    assert_eq!(
        arrow.targets,
        vec![
            (org, schema.member_by_name(org, "member").unwrap()),
            (team, schema.member_by_name(team, "member").unwrap()),
        ]
    );
    assert_eq!(
        arrow.tupleset,
        schema.member_by_name(page, "parent").unwrap()
    );
}

#[test]
fn allowed_subjects_keep_source_order() {
    let source = "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation viewer: user:* | group#member | user
}
";
    let schema = compile(source).unwrap();
    let user = schema.type_by_name("user").unwrap();
    let group = schema.type_by_name("group").unwrap();
    let doc = schema.type_by_name("doc").unwrap();
    let viewer = schema.member_by_name(doc, "viewer").unwrap();
    assert_eq!(
        schema.allowed_subjects(viewer).unwrap(),
        &[
            AllowedSubject::Wildcard(user),
            AllowedSubject::Userset(group, schema.member_by_name(group, "member").unwrap()),
            AllowedSubject::Object(user),
        ]
    );
    // INVARIANT of CompiledSchema: members of a definition are contiguous and ascending.
    let ids: Vec<u32> = schema
        .definitions
        .iter()
        .flat_map(|d| d.members.iter().map(|m| m.0))
        .collect();
    assert_eq!(ids, (0..schema.members.len() as u32).collect::<Vec<_>>());
}

#[test]
fn docs_are_kept() {
    let source = "/** the user */\ndefinition user {\n    /** a\n     * b */\n    relation friend: user\n}\n";
    let schema = compile(source).unwrap();
    assert_eq!(schema.definitions[0].doc.as_deref(), Some("the user"));
    assert_eq!(schema.members[0].doc.as_deref(), Some("a\nb"));
}

#[test]
fn folded_yaml_style_lines_parse() {
    let source =
        "definition user {} definition doc {\n  relation viewer: user\n} definition other {}";
    assert_eq!(compile(source).unwrap().definitions.len(), 3);
}

#[test]
fn every_error_is_reported_with_its_position() {
    let source = "definition user {}\ndefinition doc {\n    relation viewer: usr\n    permission view = viewr\n}\n";
    let errors = compile(source).unwrap_err();
    let found: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(found, vec![(3, 22), (4, 23)]);
    assert!(matches!(
        errors.errors[0].kind,
        ErrorKind::UnknownType { .. }
    ));
    assert!(matches!(
        errors.errors[1].kind,
        ErrorKind::UnknownMember { .. }
    ));
    assert_eq!(
        errors.to_string(),
        "3:22: unknown type `usr` in the subject types of `doc#viewer`: no definition of that name\n\
         4:23: unknown relation or permission `viewr`: `doc` has none of that name"
    );
}

#[test]
fn each_distinct_cycle_is_reported_once() {
    let source = "definition user {}
definition group {
    relation member: user | group#member
    permission aaa = bbb + member
    permission bbb = aaa
}
";
    let errors = compile(source).unwrap_err();
    let cycles: Vec<String> = errors
        .iter()
        .filter_map(|e| match &e.kind {
            ErrorKind::Cycle { path } => Some(path.join(" -> ")),
            _ => None,
        })
        .collect();
    assert_eq!(
        cycles,
        vec![
            "group#member -> group#member",
            "group#aaa -> group#bbb -> group#aaa"
        ]
    );
}

#[test]
fn names() {
    use pemba_schema::{is_valid_member_name, is_valid_type_name};
    assert!(is_valid_member_name("abc"));
    assert!(is_valid_member_name(&format!("a{}", "b".repeat(63))));
    assert!(!is_valid_member_name(&format!("a{}", "b".repeat(64))));
    assert!(!is_valid_member_name("Abc"));
    assert!(!is_valid_member_name("a-b"));
    assert!(!is_valid_member_name(""));
    assert!(is_valid_type_name("exm/usr"));
    assert!(is_valid_type_name("org/identity_team/user"));
    assert!(!is_valid_type_name("/user"));
    assert!(!is_valid_type_name("user/"));
    assert!(!is_valid_type_name("ab/user"));
}
