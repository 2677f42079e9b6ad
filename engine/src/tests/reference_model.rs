//! Property test: the indexed evaluator agrees with the naive reference evaluator on random
//! flat schemas, relationships and queries.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::reference::Reference;
use crate::{
    CheckArgs, Consistency, Engine, ObjectRef, Page, ResourceLookup, SubjectLookup, SubjectRef,
    Tuple, Update,
};

/// xorshift64*: a tiny deterministic generator driven by proptest's seed (the check plans'
/// tests draw their stores from it too).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// One of `items`, which must not be empty.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TYPES: [&str; 4] = ["user", "team", "folder", "doc"];
const USERS: [&str; 5] = ["u0", "u1", "u2", "u3", "u4"];
const OBJECTS: [&str; 3] = ["o0", "o1", "o2"];

/// A random flat schema and relationships it allows (also the check plans' test input).
pub(crate) struct Generated {
    pub(crate) schema: String,
    pub(crate) tuples: Vec<Tuple>,
}

#[derive(Clone)]
struct MemberInfo {
    name: String,
    is_relation: bool,
    has_wildcard: bool,
    /// (subject type, subject relation or "" or "*") allowed, for relations.
    allowed: Vec<(usize, String)>,
}

pub(crate) fn generate(seed: u64) -> Generated {
    let mut rng = Rng(seed | 1);
    let mut members: Vec<Vec<MemberInfo>> = vec![Vec::new()];
    let mut schema = String::from("definition user {}\n");
    #[expect(
        clippy::needless_range_loop,
        reason = "`ty` indexes two tables and names the type"
    )]
    for ty in 1..TYPES.len() {
        let mut own: Vec<MemberInfo> = Vec::new();
        let n_relations = 1 + rng.below(3);
        for r in 0..n_relations {
            let mut candidates: Vec<(usize, String)> = vec![(0, String::new()), (0, "*".into())];
            for (k, kmembers) in members.iter().enumerate().take(ty).skip(1) {
                candidates.push((k, String::new()));
                for m in kmembers
                    .iter()
                    .filter(|m| !(m.is_relation && m.has_wildcard))
                {
                    candidates.push((k, m.name.clone()));
                }
            }
            let mut allowed = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let c = rng.pick(&candidates).clone();
                if !allowed.contains(&c) {
                    allowed.push(c);
                }
            }
            own.push(MemberInfo {
                name: format!("rel_{r}"),
                is_relation: true,
                has_wildcard: allowed.iter().any(|(_, r)| r == "*"),
                allowed,
            });
        }
        let n_permissions = 1 + rng.below(3);
        let mut permission_texts = Vec::new();
        for p in 0..n_permissions {
            let expr = gen_expr(&mut rng, &own, &members, 2);
            permission_texts.push(format!("    permission perm_{p} = {expr}\n"));
            own.push(MemberInfo {
                name: format!("perm_{p}"),
                is_relation: false,
                has_wildcard: false,
                allowed: Vec::new(),
            });
        }
        schema.push_str(&format!("definition {} {{\n", TYPES[ty]));
        for m in own.iter().filter(|m| m.is_relation) {
            let allowed: Vec<String> = m
                .allowed
                .iter()
                .map(|(k, r)| match r.as_str() {
                    "" => TYPES[*k].to_string(),
                    "*" => format!("{}:*", TYPES[*k]),
                    r => format!("{}#{r}", TYPES[*k]),
                })
                .collect();
            schema.push_str(&format!(
                "    relation {}: {}\n",
                m.name,
                allowed.join(" | ")
            ));
        }
        for text in permission_texts {
            schema.push_str(&text);
        }
        schema.push_str("}\n");
        members.push(own);
    }

    let mut tuples = BTreeSet::new();
    for _ in 0..rng.below(40) {
        let ty = 1 + rng.below(TYPES.len() - 1);
        let relations: Vec<&MemberInfo> = members[ty].iter().filter(|m| m.is_relation).collect();
        let relation = *rng.pick(&relations);
        let (k, r) = rng.pick(&relation.allowed).clone();
        let id = if k == 0 {
            *rng.pick(&USERS)
        } else {
            *rng.pick(&OBJECTS)
        };
        let subject = match r.as_str() {
            "" => SubjectRef::object(TYPES[k], id),
            "*" => SubjectRef::object(TYPES[k], "*"),
            r => SubjectRef {
                object: ObjectRef::new(TYPES[k], id),
                relation: Some(r.to_string()),
            },
        };
        tuples.insert(Tuple::new(
            ObjectRef::new(TYPES[ty], *rng.pick(&OBJECTS)),
            &relation.name,
            subject,
        ));
    }
    Generated {
        schema,
        tuples: tuples.into_iter().collect(),
    }
}

fn gen_expr(rng: &mut Rng, own: &[MemberInfo], members: &[Vec<MemberInfo>], depth: u32) -> String {
    if depth > 0 && rng.chance(45) {
        let op = *rng.pick(&["+", "&", "-"]);
        let a = gen_expr(rng, own, members, depth - 1);
        let b = gen_expr(rng, own, members, depth - 1);
        return format!("({a} {op} {b})");
    }
    // Arrow candidates: relations without wildcards whose subject types have members.
    let mut arrows = Vec::new();
    for m in own.iter().filter(|m| m.is_relation && !m.has_wildcard) {
        for (k, _) in &m.allowed {
            for target in &members[*k] {
                arrows.push(format!("{}->{}", m.name, target.name));
            }
        }
    }
    if !arrows.is_empty() && rng.chance(35) {
        return rng.pick(&arrows).clone();
    }
    if rng.chance(3) {
        return "nil".to_string();
    }
    rng.pick(own).name.clone()
}

fn all_subject_ids(ty: usize) -> Vec<&'static str> {
    let mut ids: Vec<&str> = if ty == 0 {
        USERS.to_vec()
    } else {
        OBJECTS.to_vec()
    };
    ids.push("never_stored");
    ids
}

/// An engine on a fresh, migrated database of the throwaway PostgreSQL server.
fn on_postgres() -> Engine {
    super::Backend::Postgres.fresh()
}

fn agree(seed: u64) {
    agree_on(seed, Engine::in_memory().unwrap());
}

fn agree_on(seed: u64, engine: Engine) {
    let generated = generate(seed);
    engine
        .write_schema(&generated.schema)
        .unwrap_or_else(|e| panic!("generated schema refused: {e}\n{}", generated.schema));
    let updates: Vec<Update> = generated
        .tuples
        .iter()
        .map(|t| Update::touch(t.clone()))
        .collect();
    engine.write(updates, &[]).unwrap();
    let schema = engine.schema().unwrap();
    let reference = Reference {
        schema: &schema.compiled,
        tuples: &generated.tuples,
    };
    let at = Consistency::FullyConsistent;
    let context = || {
        format!(
            "schema:\n{}\ntuples:\n{:#?}",
            generated.schema, generated.tuples
        )
    };

    // Every (type, member) a userset subject could name.
    let usersets: Vec<(&str, Vec<String>)> = TYPES
        .iter()
        .skip(1)
        .map(|name| {
            let ty = schema.compiled.type_by_name(name).unwrap();
            let members = schema
                .compiled
                .definition(ty)
                .members
                .iter()
                .map(|m| schema.compiled.member(*m).name.clone())
                .collect();
            (*name, members)
        })
        .collect();
    bulk_agrees_with_single_checks(&engine, &schema.compiled, &usersets, seed);
    for (ty, type_name) in TYPES.iter().enumerate().skip(1) {
        let definition = schema.compiled.type_by_name(type_name).unwrap();
        let member_names: Vec<String> = schema
            .compiled
            .definition(definition)
            .members
            .iter()
            .map(|m| schema.compiled.member(*m).name.clone())
            .collect();
        let _ = ty;
        for member in &member_names {
            // check and lookup resources, for every user.
            for user in all_subject_ids(0) {
                let subject = SubjectRef::object("user", user);
                let mut expected = Vec::new();
                for object in OBJECTS {
                    let resource = ObjectRef::new(*type_name, object);
                    let want = reference.check(&resource, member, &subject);
                    let got = engine
                        .check(at, CheckArgs::new(&resource, member, &subject))
                        .unwrap()
                        .value;
                    assert_eq!(
                        got,
                        want,
                        "check {resource}#{member}@{subject}\n{}",
                        context()
                    );
                    if want {
                        expected.push(object.to_string());
                    }
                }
                let found = engine
                    .lookup_resources(
                        at,
                        &ResourceLookup {
                            resource_type: type_name,
                            permission: member,
                            subject: &subject,
                            page: Page::default(),
                        },
                    )
                    .unwrap()
                    .value
                    .to_vec();
                assert_eq!(
                    found,
                    expected,
                    "lookup resources {type_name}#{member}@{subject}\n{}",
                    context()
                );
            }
            // lookup subjects, for every resource, against user ids.
            for object in OBJECTS {
                let resource = ObjectRef::new(*type_name, object);
                let found = engine
                    .lookup_subjects(
                        at,
                        &SubjectLookup {
                            resource: &resource,
                            permission: member,
                            subject_type: "user",
                            subject_relation: None,
                            page: Page::default(),
                        },
                    )
                    .unwrap()
                    .value;
                for user in all_subject_ids(0) {
                    let subject = SubjectRef::object("user", user);
                    let want = reference.check(&resource, member, &subject);
                    let got = found.iter().any(|s| {
                        s.id == user || (s.id == "*" && !s.excluded.iter().any(|e| e == user))
                    });
                    assert_eq!(
                        got,
                        want,
                        "lookup subjects {resource}#{member} for {user}: {found:?}\n{}",
                        context()
                    );
                }
                // Userset subjects (`team:o1#rel_0`): check and lookup subjects agree too.
                for (subject_type, userset_members) in &usersets {
                    for userset_member in userset_members {
                        let found = engine
                            .lookup_subjects(
                                at,
                                &SubjectLookup {
                                    resource: &resource,
                                    permission: member,
                                    subject_type,
                                    subject_relation: Some(userset_member),
                                    page: Page::default(),
                                },
                            )
                            .unwrap()
                            .value;
                        for id in all_subject_ids(1) {
                            let subject = SubjectRef {
                                object: ObjectRef::new(*subject_type, id),
                                relation: Some(userset_member.clone()),
                            };
                            let want = reference.check(&resource, member, &subject);
                            let got = engine
                                .check(at, CheckArgs::new(&resource, member, &subject))
                                .unwrap()
                                .value;
                            assert_eq!(
                                got,
                                want,
                                "check {resource}#{member}@{subject}\n{}",
                                context()
                            );
                            let listed = found.iter().any(|s| s.id == id);
                            assert_eq!(
                                listed,
                                want,
                                "lookup subjects {resource}#{member} for {subject}: {found:?}\n{}",
                                context()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// One bulk check of every (resource, member, subject) the store's types allow, shuffled,
/// with refused items among them (an unknown type or member, a malformed id, a wildcard
/// userset): each answer, or its error word for word, is the single check's. The bulk
/// path looks its items' ids up in batches, so items of different shapes and outcomes
/// share each batch.
fn bulk_agrees_with_single_checks(
    engine: &Engine,
    schema: &pemba_schema::CompiledSchema,
    usersets: &[(&str, Vec<String>)],
    seed: u64,
) {
    let mut checks: Vec<(ObjectRef, String, SubjectRef)> = Vec::new();
    let mut subjects: Vec<SubjectRef> = all_subject_ids(0)
        .into_iter()
        .chain(["*", "unknown", "bad id!"])
        .map(|id| SubjectRef::object("user", id))
        .collect();
    for (subject_type, members) in usersets {
        for id in all_subject_ids(1).into_iter().chain(["*", "nobody"]) {
            for member in members.iter().chain([&"nope".to_string()]) {
                subjects.push(SubjectRef {
                    object: ObjectRef::new(*subject_type, id),
                    relation: Some(member.clone()),
                });
            }
        }
    }
    subjects.push(SubjectRef::object("stranger", "u0"));
    for type_name in TYPES.iter().skip(1).chain(&["stranger", "Bad-Type"]) {
        let members: Vec<String> = schema
            .type_by_name(type_name)
            .map(|ty| {
                schema
                    .definition(ty)
                    .members
                    .iter()
                    .map(|m| schema.member(*m).name.clone())
                    .collect()
            })
            .unwrap_or_default();
        for member in members.into_iter().chain(["nope".to_string()]) {
            for object in OBJECTS.iter().chain(&["missing", "bad id!"]) {
                for subject in &subjects {
                    checks.push((
                        ObjectRef::new(*type_name, *object),
                        member.clone(),
                        subject.clone(),
                    ));
                }
            }
        }
    }
    let mut rng = Rng(seed | 1);
    for i in (1..checks.len()).rev() {
        checks.swap(i, rng.below(i + 1));
    }
    // The store is at rest: every mode reads its one revision, and this one reads it
    // without a round trip per single check on PostgreSQL.
    let at = Consistency::MinimizeLatency;
    let answers = engine
        .check_bulk(
            at,
            checks
                .iter()
                .map(|(resource, member, subject)| CheckArgs::new(resource, member, subject)),
        )
        .unwrap()
        .value;
    assert_eq!(answers.len(), checks.len());
    for ((resource, member, subject), answer) in checks.iter().zip(answers) {
        let single = engine.check(at, CheckArgs::new(resource, member, subject));
        assert_eq!(
            answer.map_err(|e| e.to_string()),
            single.map(|a| a.value).map_err(|e| e.to_string()),
            "bulk item {resource}#{member}@{subject}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn index_agrees_with_reference(seed in any::<u64>()) {
        agree(seed);
    }
}

proptest! {
    // Fewer cases (about 1 s each here): each gets a database of its own, and writes
    // go through PostgreSQL; the generator and the model are the same code.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn index_on_postgres_agrees_with_reference(seed in any::<u64>()) {
        agree_on(seed, on_postgres());
    }
}
