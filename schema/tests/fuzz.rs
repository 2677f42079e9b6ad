//! Property tests: no input makes `compile` panic, and the printer round-trips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside `#[test]` fail by panicking, with the panic's location"
)]

use std::fs;
use std::path::Path;

use proptest::prelude::*;

fn ok_sources() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut sources = Vec::new();
    for sub in ["ok", "err"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "schema") {
                sources.push(fs::read_to_string(path).unwrap());
            }
        }
    }
    sources.sort();
    sources
}

/// If `source` compiles, its printed form compiles to the same schema and prints the same.
#[track_caller]
fn check_round_trip(source: &str) {
    if let Ok(schema) = pemba_schema::compile(source) {
        let printed = pemba_schema::print(&schema);
        let again = pemba_schema::compile(&printed)
            .unwrap_or_else(|e| panic!("printed form does not compile: {e}\n{printed}"));
        assert_eq!(again, schema, "round trip changed the schema:\n{printed}");
        assert_eq!(pemba_schema::print(&again), printed);
    } else if let Err(errors) = pemba_schema::compile(source) {
        assert!(!errors.is_empty());
        let _ = errors.render("fuzz.zed", source);
        let _ = errors.to_string();
    }
}

const TOKENS: &[&str] = &[
    "definition",
    "relation",
    "permission",
    "caveat",
    "use",
    "with",
    "expiration",
    "self",
    "nil",
    "user",
    "doc",
    "group",
    "member",
    "viewer",
    "view",
    "parent",
    "test/user",
    "{",
    "}",
    "(",
    ")",
    ":",
    ";",
    "|",
    "+",
    "&",
    "-",
    "->",
    "=",
    "#",
    "*",
    "/",
    ".",
    ",",
    "any",
    "all",
    "...",
    "\n",
    " ",
    "\t",
    "//",
    "/*",
    "*/",
    "/**",
    "é",
    "\r\n",
    "a",
    "_x_",
];

/// A small pseudo-random generator, so schema generation stays a plain function.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A generated definition: its name and members as (name, is_relation, allows_wildcard).
type GenDefinition = (String, Vec<(String, bool, bool)>);

/// A random valid schema: every userset and arrow points to an earlier definition, so
/// no cycle can form; usersets never name relations allowing wildcards and arrows never
/// start from them.
fn generate(seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    // Per definition: (name, members as (name, is_relation, allows_wildcard)).
    let mut defs: Vec<GenDefinition> = Vec::new();
    let mut out = String::new();
    let n_defs = 1 + rng.below(6);
    for d in 0..n_defs {
        let name = if rng.chance(30) {
            format!("pre{d}/ty{d}")
        } else {
            format!("ty{d}")
        };
        if rng.chance(20) {
            out.push_str(&format!("/** type {d}\n * more */\n"));
        }
        out.push_str(&format!("definition {name} {{"));
        let mut members: Vec<(String, bool, bool)> = Vec::new();
        let mut relations_to: Vec<(String, Vec<usize>)> = Vec::new();
        let n_members = if d == 0 { rng.below(2) } else { rng.below(6) };
        if n_members > 0 {
            out.push('\n');
        }
        for m in 0..n_members {
            if rng.chance(15) {
                out.push_str(&format!("  /** member {m} */\n"));
            }
            let earlier: usize = d;
            if rng.chance(60) || members.is_empty() {
                if earlier == 0 {
                    continue;
                }
                let mut subjects = Vec::new();
                let mut types = Vec::new();
                let mut wildcard = false;
                for _ in 0..1 + rng.below(3) {
                    let t = rng.below(earlier);
                    let (tname, tmembers) = &defs[t];
                    let usable: Vec<&(String, bool, bool)> =
                        tmembers.iter().filter(|(_, _, w)| !w).collect();
                    let text = match rng.below(3) {
                        0 if !usable.is_empty() => {
                            format!("{tname}#{}", usable[rng.below(usable.len())].0)
                        }
                        1 => {
                            wildcard = true;
                            format!("{tname}:*")
                        }
                        _ => tname.clone(),
                    };
                    if !subjects.contains(&text) {
                        subjects.push(text);
                        types.push(t);
                    }
                }
                let mname = format!("rel{m}");
                out.push_str(&format!("  relation {mname}: {}\n", subjects.join(" | ")));
                if !wildcard {
                    relations_to.push((mname.clone(), types));
                }
                members.push((mname, true, wildcard));
            } else {
                let expr = gen_expr(&mut rng, &members, &relations_to, &defs, 3);
                let mname = format!("perm{m}");
                out.push_str(&format!("  permission {mname} = {expr}\n"));
                members.push((mname, false, false));
            }
        }
        out.push_str("}\n\n");
        defs.push((name, members));
    }
    out
}

fn gen_expr(
    rng: &mut Rng,
    members: &[(String, bool, bool)],
    relations_to: &[(String, Vec<usize>)],
    defs: &[GenDefinition],
    depth: usize,
) -> String {
    if depth == 0 || rng.chance(40) {
        if rng.chance(30) && !relations_to.is_empty() {
            let (rel, types) = &relations_to[rng.below(relations_to.len())];
            let t = types[rng.below(types.len())];
            if let Some((target, _, _)) = defs[t].1.first() {
                return format!("{rel}->{target}");
            }
        }
        if rng.chance(10) || members.is_empty() {
            return "nil".to_string();
        }
        return members[rng.below(members.len())].0.clone();
    }
    let lhs = gen_expr(rng, members, relations_to, defs, depth - 1);
    let rhs = gen_expr(rng, members, relations_to, defs, depth - 1);
    let op = ["+", "&", "-"][rng.below(3)];
    match rng.below(3) {
        0 => format!("({lhs}) {op} ({rhs})"),
        1 => format!("{lhs} {op}\n    {rhs}"),
        _ => format!("{lhs} {op} {rhs}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_round_trip(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_tokens_never_panic(picks in proptest::collection::vec((0..TOKENS.len(), 0..3usize), 0..120)) {
        let mut source = String::new();
        for (token, sep) in picks {
            source.push_str(TOKENS[token]);
            source.push_str([" ", "", "\n"][sep]);
        }
        check_round_trip(&source);
    }

    #[test]
    fn mutated_schemas_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..4usize, 0..TOKENS.len(), 0..20usize), 1..6),
    ) {
        let sources = ok_sources();
        let mut source = which.get(&sources).clone().into_bytes();
        for (at, op, token, len) in edits {
            let at = at.index(source.len() + 1);
            let end = (at + len).min(source.len());
            match op {
                0 => { source.drain(at..end); }
                1 => { source.splice(at..at, TOKENS[token].bytes()); }
                2 => { let copy = source[at..end].to_vec(); source.splice(at..at, copy); }
                _ => { source.splice(at..end, TOKENS[token].bytes()); }
            }
        }
        check_round_trip(&String::from_utf8_lossy(&source));
    }

    #[test]
    fn generated_schemas_compile_and_round_trip(seed in any::<u64>()) {
        let source = generate(seed);
        if let Err(e) = pemba_schema::compile(&source) {
            panic!("generated schema does not compile:\n{}\n{source}", e.render("gen.zed", &source));
        }
        check_round_trip(&source);
    }
}

#[test]
fn golden_ok_schemas_round_trip() {
    for source in ok_sources() {
        check_round_trip(&source);
    }
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let open = "(".repeat(100_000);
    let source =
        format!("definition user {{\n relation aaa: user\n permission bbb = {open}aaa\n}}");
    assert!(pemba_schema::compile(&source).is_err());
    let long = vec!["aaa"; 100_000].join(" + ");
    let source = format!("definition user {{\n relation aaa: user\n permission bbb = {long}\n}}");
    assert!(pemba_schema::compile(&source).is_err());
    let many: String = (0..3000)
        .map(|i| format!("definition ty{i} {{\n relation rel: ty{}#rel\n}}\n", i + 1))
        .collect();
    let _ = pemba_schema::compile(&many);
    // One long cycle through 5000 definitions: found, reported once, no overflow.
    let ring: String = (0..5000)
        .map(|i| {
            format!(
                "definition ty{i} {{\n relation rel: ty{}#rel\n}}\n",
                (i + 1) % 5000
            )
        })
        .collect();
    let errors = pemba_schema::compile(&ring).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors
        .to_string()
        .contains("`ty0#rel -> ty1#rel -> ty2#rel"));
}

#[test]
fn generator_makes_nontrivial_schemas() {
    let mut arrows = 0;
    let mut usersets = 0;
    for seed in 0..200 {
        let source = generate(seed);
        arrows += source.matches("->").count();
        usersets += source.matches('#').count();
        assert!(pemba_schema::compile(&source).is_ok(), "{source}");
    }
    assert!(
        arrows > 50 && usersets > 50,
        "{arrows} arrows, {usersets} usersets"
    );
}
