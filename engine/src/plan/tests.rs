//! Check plans answer as the evaluator does; schema names resolve as the schema's own
//! look-ups do.

use std::fmt::Write as _;

use pemba_schema::{AllowedSubject, CompiledSchema, MemberKind};
use proptest::prelude::*;

use super::*;
use crate::store::RawTuple;
use crate::tests::reference_model::{generate, Rng};
use crate::{ObjectRef, SubjectRef, Tuple};

/// Ids per type in the dense stores: enough for a posting to pass [`ITERATE_BELOW`], so
/// plans hand large columns to the evaluator as well as probing small ones.
const IDS: u32 = 12;

fn index_of(schema: &CompiledSchema, tuples: &[Tuple]) -> Index {
    let mut index = Index::new(schema);
    for tuple in tuples {
        assert!(index.insert(schema, &RawTuple::of(tuple)), "{tuple}");
    }
    index
}

/// Random relationships `schema` allows, crowded onto a few resources so that some
/// postings hold more than [`ITERATE_BELOW`] ids.
fn dense_tuples(schema: &CompiledSchema, seed: u64, count: usize) -> Vec<Tuple> {
    let mut rng = Rng(seed | 1);
    let relations: Vec<(&str, &str, &[AllowedSubject])> = schema
        .members
        .iter()
        .filter_map(|member| match &member.kind {
            MemberKind::Relation(allowed) => Some((
                &*schema.definition(member.owner).name,
                &*member.name,
                &allowed[..],
            )),
            MemberKind::Permission(_) => None,
        })
        .collect();
    let mut tuples = Vec::new();
    if relations.is_empty() {
        return tuples;
    }
    for _ in 0..count {
        let (ty, relation, allowed) = *rng.pick(&relations);
        let allowed = *rng.pick(allowed);
        let resource = ObjectRef::new(ty, format!("i{}", rng.below(3)));
        let name = |t| schema.definition(t).name.clone();
        let id = format!("i{}", rng.below(IDS as usize));
        let subject = match allowed {
            AllowedSubject::Object(t) => SubjectRef::object(name(t), id),
            AllowedSubject::Wildcard(t) => SubjectRef::object(name(t), "*"),
            AllowedSubject::Userset(t, m) => SubjectRef {
                object: ObjectRef::new(name(t), id),
                relation: Some(schema.member(m).name.clone()),
            },
        };
        tuples.push(Tuple::new(resource, relation, subject));
    }
    tuples
}

/// Every subject a check can ask about once resolved: per type, each index a stored id
/// can have and an id never stored, as objects and as the wildcard, and usersets of
/// every member.
fn subjects(schema: &CompiledSchema) -> Vec<Subject> {
    let mut subjects = Vec::new();
    for (ty, definition) in schema.definitions.iter().enumerate() {
        let ty = TypeId(ty as u32);
        subjects.push(Subject {
            ty,
            idx: None,
            rel: SubjectRel::Object,
        });
        subjects.push(Subject {
            ty,
            idx: None,
            rel: SubjectRel::Wildcard,
        });
        for idx in 0..IDS {
            subjects.push(Subject {
                ty,
                idx: Some(idx),
                rel: SubjectRel::Object,
            });
            for member in &definition.members {
                subjects.push(Subject {
                    ty,
                    idx: Some(idx),
                    rel: SubjectRel::Member(*member),
                });
            }
        }
    }
    subjects
}

/// Asks every member of every resource (and one never stored) for every subject, by plan
/// and by the evaluator.
#[track_caller]
fn agree(schema: &CompiledSchema, index: &Index, context: &dyn Fn() -> String) {
    let plans = Plans::new(schema, index);
    let evaluator = Evaluator { schema, index };
    let subjects = subjects(schema);
    for member in 0..schema.members.len() {
        let member = MemberId(member as u32);
        for resource in 0..=IDS {
            for subject in &subjects {
                assert_eq!(
                    plans.check(&evaluator, member, resource, subject),
                    evaluator.check(member, resource, subject),
                    "{}#{} of resource {resource} for {subject:?}\n{}",
                    schema.definition(schema.member(member).owner).name,
                    schema.member(member).name,
                    context()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn plans_answer_as_the_evaluator_does(seed in any::<u64>()) {
        let generated = generate(seed);
        let schema = pemba_schema::compile(&generated.schema).unwrap();
        // The reference model's sparse relationships, then dense ones on the same schema.
        let sparse = index_of(&schema, &generated.tuples);
        agree(&schema, &sparse, &|| format!("sparse store on\n{}", generated.schema));
        let tuples = dense_tuples(&schema, seed, 160);
        let dense = index_of(&schema, &tuples);
        agree(&schema, &dense, &|| format!("dense store on\n{}\n{tuples:#?}", generated.schema));
    }
}

const WORKSPACES: &str = "
definition user {}
definition workspace {
    relation admin: user
    relation editor: user
    relation viewer: user
    permission member = admin + editor + viewer
}
definition group {
    relation workspace: workspace
    relation member: user
}
definition connection {
    relation workspace: workspace
    relation owner: user
    relation grantee: user | group#member
    permission use = (owner + grantee + workspace->admin) & workspace->member
}
";

#[test]
fn a_plan_is_the_expression_flattened_to_columns() {
    let schema = pemba_schema::compile(WORKSPACES).unwrap();
    let index = Index::new(&schema);
    let plans = Plans::new(&schema, &index);
    let ty = |name| schema.type_by_name(name).unwrap();
    let member = |t, name| schema.member_by_name(ty(t), name).unwrap();
    let holds = |t, name, kind: usize| Node::Holds {
        column: index.kinds(member(t, name))[kind].column(),
        relation: member(t, name),
        kind,
    };
    let column = |t, name, kind: usize| index.kinds(member(t, name))[kind].column();
    let user = SubjectKey {
        ty: ty("user"),
        member: None,
    };
    let plan = |m: MemberId| {
        plans.by_member[m.0 as usize]
            .plans
            .iter()
            .find(|(key, _)| *key == user)
            .map(|(_, plan)| plan)
    };
    let via_workspace = |target, then| Node::Via {
        column: column("connection", "workspace", 0),
        ty: ty("workspace"),
        member: member("workspace", target),
        then: Box::new(then),
    };
    let expected = Node::All(vec![
        Node::Any(vec![
            holds("connection", "owner", 0),
            holds("connection", "grantee", 0),
            Node::Via {
                column: column("connection", "grantee", 1),
                ty: ty("group"),
                member: member("group", "member"),
                then: Box::new(holds("group", "member", 0)),
            },
            via_workspace("admin", holds("workspace", "admin", 0)),
        ]),
        via_workspace(
            "member",
            Node::Any(vec![
                holds("workspace", "admin", 0),
                holds("workspace", "editor", 0),
                holds("workspace", "viewer", 0),
            ]),
        ),
    ]);
    match plan(member("connection", "use")) {
        Some(Plan::Probe(node)) => assert_eq!(node, &expected),
        other => panic!("connection#use for users: {other:?}"),
    }
    // A group's members reach `use` through its grantees, but never `workspace->member`,
    // so the intersection leaves them no plan: such a check answers false at once.
    let group_member = SubjectKey {
        ty: ty("group"),
        member: Some(member("group", "member")),
    };
    let mut reach = vec![None; schema.members.len()];
    let compiler = Compiler {
        schema: &schema,
        index: &index,
    };
    assert!(compiler
        .reach(member("connection", "use"), &mut reach)
        .contains(&group_member));
    let planned: Vec<SubjectKey> = plans.by_member[member("connection", "use").0 as usize]
        .plans
        .iter()
        .map(|(key, _)| *key)
        .collect();
    assert_eq!(planned, [user]);
}

#[test]
fn a_plan_too_large_is_left_to_the_evaluator() {
    // Each level names the one below twice, so the flattened plan doubles per level.
    let mut text = String::from("definition user {}\ndefinition doc {\n relation viewer: user\n");
    text.push_str(" permission lvl0 = viewer + viewer\n");
    for level in 1..10 {
        let below = level - 1;
        text.push_str(&format!(
            " permission lvl{level} = lvl{below} & lvl{below}\n"
        ));
    }
    text.push_str("}\n");
    let schema = pemba_schema::compile(&text).unwrap();
    let tuples: Vec<Tuple> = ["doc:a#viewer@user:x", "doc:b#viewer@user:y"]
        .iter()
        .map(|t| Tuple::parse(t).unwrap())
        .collect();
    let index = index_of(&schema, &tuples);
    let plans = Plans::new(&schema, &index);
    let doc = schema.type_by_name("doc").unwrap();
    let top = schema.member_by_name(doc, "lvl9").unwrap();
    assert!(matches!(
        plans.by_member[top.0 as usize].plans[..],
        [(_, Plan::Evaluate)]
    ));
    let low = schema.member_by_name(doc, "lvl1").unwrap();
    assert!(matches!(
        plans.by_member[low.0 as usize].plans[..],
        [(_, Plan::Probe(_))]
    ));
    agree(&schema, &index, &|| text.clone());
}

/// Permissions sharing members form a DAG: `perm_64` names `perm_0` 2^64 times over. Compiling
/// a plan for a subject none of them can reach must still visit a bounded number of
/// members (each visit is charged to the budget), or a schema write would never finish.
#[test]
fn a_plan_over_shared_members_compiles_in_bounded_time() {
    let mut text = String::from(
        "definition user {}
definition team {}
definition doc {
    relation owner: user
    relation team: team
    permission perm_0 = team
",
    );
    for k in 1..=64 {
        let below = k - 1;
        writeln!(
            text,
            "    permission perm_{k} = perm_{below} + perm_{below}"
        )
        .unwrap();
    }
    text.push_str("    permission view = owner + perm_64\n}\n");
    let schema = pemba_schema::compile(&text).unwrap();
    let index = Index::new(&schema);
    let plans = Plans::new(&schema, &index);
    let view = schema
        .member_by_name(schema.type_by_name("doc").unwrap(), "view")
        .unwrap();
    assert!(!plans.by_member[view.0 as usize].plans.is_empty());
}
