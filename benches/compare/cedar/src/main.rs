//! One thread of `cedar-policy` answering the checks of a `pemba workload` directory: loads
//! `tuples.txt` as Cedar entities, evaluates `policies.cedar` (the user-groups schema as
//! Cedar policies) for every line of `checks.txt`, stops at the first answer that differs
//! from the expected one, then times single-threaded in-process checks.
//!
//! Usage: `pemba-cedar-compare WORKLOAD_DIR [SECONDS]`. Prints one `key=value` line
//! (`benches/compare/cedar.sh` reads it) after a human-readable summary on stderr.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};

const POLICIES: &str = include_str!("../policies.cedar");

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the entities are built from: per entity, its parents and its attributes.
#[derive(Default)]
struct Model {
    parents: HashMap<(&'static str, String), HashSet<(&'static str, String)>>,
    /// Single-entity attributes (`workspace`, `owner`, `admins`).
    one: HashMap<(&'static str, String), Vec<(&'static str, (&'static str, String))>>,
    /// Set attributes (`grantees`, `editors`, `viewers`), always present on resources.
    sets: HashMap<(&'static str, String), HashMap<&'static str, Vec<(&'static str, String)>>>,
}

fn cedar_type(zed: &str) -> Result<&'static str, String> {
    Ok(match zed {
        "user" => "User",
        "group" => "Group",
        "workspace" => "Workspace",
        "connection" => "Connection",
        "workbook" => "Workbook",
        other => return Err(format!("unknown type `{other}`")),
    })
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(ty).map_err(|e| format!("type `{ty}`: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

/// `type:id` split in two.
fn object(text: &str) -> Result<(&str, &str), String> {
    text.split_once(':')
        .ok_or_else(|| format!("expected `type:id`, found `{text}`"))
}

impl Model {
    fn add(&mut self, line: &str) -> Result<(), String> {
        let (resource, subject) = line
            .split_once('@')
            .ok_or_else(|| format!("no `@` in `{line}`"))?;
        let (resource, relation) = resource
            .split_once('#')
            .ok_or_else(|| format!("no `#` in `{line}`"))?;
        let (rtype, rid) = object(resource)?;
        let (subject, _member) = subject.split_once('#').unwrap_or((subject, ""));
        let (stype, sid) = object(subject)?;
        let key = (cedar_type(rtype)?, rid.to_string());
        let target = (cedar_type(stype)?, sid.to_string());
        match (rtype, relation) {
            ("workspace", "admin" | "editor" | "viewer") => {
                let role = ("WorkspaceRole", format!("{rid}#{relation}"));
                self.parents.entry(target).or_default().insert(role.clone());
                self.parents.entry(role).or_default().insert(key.clone());
                let admins = ("WorkspaceRole", format!("{rid}#admin"));
                let attrs = self.one.entry(key).or_default();
                if attrs.is_empty() {
                    attrs.push(("admins", admins));
                }
            }
            ("group", "member") => {
                self.parents.entry(target).or_default().insert(key);
            }
            ("group" | "connection" | "workbook", "workspace")
            | ("connection" | "workbook", "owner") => {
                let name = if relation == "owner" {
                    "owner"
                } else {
                    "workspace"
                };
                self.one.entry(key).or_default().push((name, target));
            }
            ("connection", "grantee") | ("workbook", "editor" | "viewer") => {
                let name = match relation {
                    "grantee" => "grantees",
                    "editor" => "editors",
                    _ => "viewers",
                };
                self.sets
                    .entry(key)
                    .or_default()
                    .entry(name)
                    .or_default()
                    .push(target);
            }
            _ => return Err(format!("relation not in the user-groups schema: `{line}`")),
        }
        Ok(())
    }

    fn entities(self) -> Result<Entities, String> {
        let mut keys: HashSet<(&'static str, String)> = HashSet::new();
        keys.extend(self.parents.keys().cloned());
        keys.extend(self.parents.values().flatten().cloned());
        keys.extend(self.one.keys().cloned());
        keys.extend(self.sets.keys().cloned());
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let mut attrs = HashMap::new();
            for (name, (ty, id)) in self.one.get(&key).into_iter().flatten() {
                attrs.insert(
                    name.to_string(),
                    RestrictedExpression::new_entity_uid(uid(ty, id)?),
                );
            }
            let set_names: &[&str] = match key.0 {
                "Connection" => &["grantees"],
                "Workbook" => &["editors", "viewers"],
                _ => &[],
            };
            for name in set_names {
                let members = self
                    .sets
                    .get(&key)
                    .and_then(|sets| sets.get(name))
                    .into_iter()
                    .flatten()
                    .map(|(ty, id)| uid(ty, id).map(RestrictedExpression::new_entity_uid))
                    .collect::<Result<Vec<_>, _>>()?;
                attrs.insert(name.to_string(), RestrictedExpression::new_set(members));
            }
            let parents = self
                .parents
                .get(&key)
                .into_iter()
                .flatten()
                .map(|(ty, id)| uid(ty, id))
                .collect::<Result<HashSet<_>, _>>()?;
            let entity = Entity::new(uid(key.0, &key.1)?, attrs, parents)
                .map_err(|e| format!("entity `{}:{}`: {e}", key.0, key.1))?;
            out.push(entity);
        }
        Entities::from_entities(out, None).map_err(|e| format!("entities: {e}"))
    }
}

struct Check {
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    allowed: bool,
    text: String,
}

fn parse_check(line: &str) -> Result<Check, String> {
    let bad = || format!("checks line `{line}`: expected `resource#permission@subject true|false`");
    let (query, answer) = line.rsplit_once(' ').ok_or_else(bad)?;
    let (resource, rest) = query.split_once('#').ok_or_else(bad)?;
    let (permission, subject) = rest.split_once('@').ok_or_else(bad)?;
    let (rtype, rid) = object(resource)?;
    let (stype, sid) = object(subject)?;
    Ok(Check {
        principal: uid(cedar_type(stype)?, sid)?,
        action: uid("Action", permission)?,
        resource: uid(cedar_type(rtype)?, rid)?,
        allowed: match answer {
            "true" => true,
            "false" => false,
            _ => return Err(bad()),
        },
        text: query.to_string(),
    })
}

fn decide(authorizer: &Authorizer, policies: &PolicySet, entities: &Entities, c: &Check) -> bool {
    // Built per check, as a caller holding the three names would.
    match Request::new(
        c.principal.clone(),
        c.action.clone(),
        c.resource.clone(),
        Context::empty(),
        None,
    ) {
        Ok(request) => {
            authorizer
                .is_authorized(&request, policies, entities)
                .decision()
                == Decision::Allow
        }
        Err(_) => false,
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: pemba-cedar-compare WORKLOAD_DIR [SECONDS]")?;
    let seconds: f64 = match args.next() {
        Some(s) => s.parse().map_err(|_| format!("bad SECONDS `{s}`"))?,
        None => 10.0,
    };
    let read = |name: &str| {
        std::fs::read_to_string(format!("{dir}/{name}")).map_err(|e| format!("{dir}/{name}: {e}"))
    };
    let tuples = read("tuples.txt")?;
    let checks = read("checks.txt")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_check(l.trim()))
        .collect::<Result<Vec<_>, _>>()?;

    let started = Instant::now();
    let mut model = Model::default();
    let mut relationships = 0usize;
    for line in tuples.lines().filter(|l| !l.trim().is_empty()) {
        model.add(line.trim())?;
        relationships += 1;
    }
    let entities = model.entities()?;
    let load = started.elapsed();
    let policies = PolicySet::from_str(POLICIES).map_err(|e| format!("policies: {e}"))?;
    let authorizer = Authorizer::new();

    // Every expected answer first: a faster wrong engine proves nothing.
    for c in &checks {
        let got = decide(&authorizer, &policies, &entities, c);
        if got != c.allowed {
            return Err(format!(
                "cedar answered {got} for `{}`, the workload expects {}",
                c.text, c.allowed
            ));
        }
    }

    let budget = Duration::from_secs_f64(seconds);
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut allowed = 0usize;
    let started = Instant::now();
    'outer: loop {
        for c in &checks {
            let at = Instant::now();
            let got = decide(&authorizer, &policies, &entities, c);
            latencies.push(at.elapsed().as_nanos() as u64);
            allowed += usize::from(got);
            if latencies.len() % 1024 == 0 && started.elapsed() >= budget {
                break 'outer;
            }
        }
    }
    let took = started.elapsed();
    std::hint::black_box(allowed);
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let at = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(at).copied().unwrap_or(0) as f64 / 1000.0
    };
    let per_s = latencies.len() as f64 / took.as_secs_f64();
    eprintln!(
        "cedar-policy, one thread: {relationships} relationships loaded as {} entities in {load:.2?}; {} checks verified (0 wrong); {} checks in {took:.2?}: {per_s:.0} checks/s, p50 {:.2} µs, p99 {:.2} µs",
        entities.iter().count(),
        checks.len(),
        latencies.len(),
        quantile(0.5),
        quantile(0.99)
    );
    println!(
        "cedar relationships={relationships} load_s={:.3} verified={} wrong=0 checks={} seconds={:.3} checks_per_s={per_s:.0} p50_us={:.2} p99_us={:.2}",
        load.as_secs_f64(),
        checks.len(),
        latencies.len(),
        took.as_secs_f64(),
        quantile(0.5),
        quantile(0.99)
    );
    Ok(())
}
