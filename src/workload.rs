//! Deterministic generator of user-groups workloads (`pemba workload`), shared by the
//! benchmarks and the load generator.
//!
//! Expected answers are computed from the generator's own model of the schema, never by
//! the engine, so benchmarks that verify answers test the engine against something else.
//!
//! One piece because the generator and its model of expected answers must change together:
//! the model is only trustworthy next to the code it mirrors.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The shipped user-groups schema the workload is written for.
pub const SCHEMA: &str = include_str!("../schemas/user-groups.zed");

/// Workload sizes, by relationship count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    /// About 1.5 thousand relationships.
    Xs,
    /// About 60 thousand.
    S,
    /// About 1.4 million.
    M,
    /// About 14 million.
    L,
    /// About 15 million: the top of the scale table in BENCHMARKS.md.
    Xl,
}

impl Size {
    /// Number of workspaces; each holds about 800 relationships.
    pub fn workspaces(self) -> usize {
        match self {
            Size::Xs => 2,
            Size::S => 75,
            Size::M => 1_750,
            Size::L => 17_500,
            Size::Xl => 19_400,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Size::Xs => "xs",
            Size::S => "s",
            Size::M => "m",
            Size::L => "l",
            Size::Xl => "xl",
        })
    }
}

/// The sizes named in `PEMBA_BENCH_SIZES` (comma-separated: `xs,s,m,l,xl`), or `default`'s
/// when it is unset: how every benchmark binary chooses its stores.
pub fn bench_sizes(default: &str) -> Result<Vec<Size>, String> {
    let wanted = std::env::var("PEMBA_BENCH_SIZES").unwrap_or_else(|_| default.to_string());
    wanted
        .split(',')
        .map(|name| {
            <Size as clap::ValueEnum>::from_str(name.trim(), true).map_err(|_| {
                format!(
                    "PEMBA_BENCH_SIZES: unknown size `{}` (xs, s, m, l, xl)",
                    name.trim()
                )
            })
        })
        .collect()
}

const USERS_PER_WORKSPACE: usize = 100;
const GROUPS_PER_WORKSPACE: usize = 10;
const CONNECTIONS_PER_WORKSPACE: usize = 50;
const WORKBOOKS_PER_WORKSPACE: usize = 50;
/// Users who are admins of many workspaces: the "heaviest" subjects for lookups.
const ROAMING_ADMINS: usize = 3;

/// Role of a workspace member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Manages members and groups; reaches every resource of the workspace.
    Admin,
    /// Edits.
    Editor,
    /// Views.
    Viewer,
}

/// A shared resource (connection or workbook) of a workspace.
#[derive(Clone, Debug, Default)]
pub struct Resource {
    /// Object id.
    pub id: String,
    /// Owning user.
    pub owner: String,
    /// Users granted directly (for workbooks: as viewers unless in `editor_users`).
    pub users: Vec<String>,
    /// Groups (by index in the workspace) granted.
    pub groups: Vec<usize>,
    /// Workbooks only: users granted as editors.
    pub editor_users: Vec<String>,
    /// Workbooks only: groups granted as editors.
    pub editor_groups: Vec<usize>,
}

/// One workspace of the model.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// Object id.
    pub id: String,
    /// Members and their roles.
    pub members: Vec<(String, Role)>,
    /// Groups: id and member user ids.
    pub groups: Vec<(String, Vec<String>)>,
    /// Connections.
    pub connections: Vec<Resource>,
    /// Workbooks.
    pub workbooks: Vec<Resource>,
}

/// A whole generated workload.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// Workspaces in generation order.
    pub workspaces: Vec<Workspace>,
}

/// One expected check: `resource#permission@subject` and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedCheck {
    /// `type:id`.
    pub resource: String,
    /// Permission name.
    pub permission: String,
    /// `user:id`.
    pub subject: String,
    /// The answer from the model.
    pub allowed: bool,
}

/// One expected lookup: how many resources of a type the subject reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedLookup {
    /// `user:id`.
    pub subject: String,
    /// Resource type.
    pub resource_type: String,
    /// Permission.
    pub permission: String,
    /// The count from the model.
    pub count: usize,
}

/// Generates the model for `size` deterministically from `seed`.
pub fn generate(size: Size, seed: u64, mut progress: impl FnMut(usize)) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut workload = Workload::default();
    for w in 0..size.workspaces() {
        let mut ws = Workspace {
            id: format!("ws{w}"),
            ..Workspace::default()
        };
        for u in 0..USERS_PER_WORKSPACE {
            let role = match rng.random_range(0..50) {
                0 => Role::Admin,
                1..=19 => Role::Editor,
                _ => Role::Viewer,
            };
            ws.members.push((format!("w{w}u{u}"), role));
        }
        // Every workspace has an admin, and roaming admins sit in every 7th workspace.
        if let Some((_, role)) = ws.members.first_mut() {
            *role = Role::Admin;
        }
        if w % 7 == 0 {
            for r in 0..ROAMING_ADMINS {
                ws.members.push((format!("roaming{r}"), Role::Admin));
            }
        }
        // The workspace's own users, without the roaming admins.
        let member_ids: Vec<String> = ws
            .members
            .iter()
            .take(USERS_PER_WORKSPACE)
            .map(|(id, _)| id.clone())
            .collect();
        ws.groups = (0..GROUPS_PER_WORKSPACE)
            .map(|g| (format!("w{w}g{g}"), Vec::new()))
            .collect();
        for id in &member_ids {
            let n_groups = rng.random_range(0..=5usize);
            let mut chosen = BTreeSet::new();
            for _ in 0..n_groups {
                chosen.insert(rng.random_range(0..GROUPS_PER_WORKSPACE));
            }
            for g in chosen {
                if let Some((_, members)) = ws.groups.get_mut(g) {
                    members.push(id.clone());
                }
            }
        }
        let resource = |rng: &mut ChaCha8Rng, id: String, workbook: bool| {
            let owner = pick(rng, &member_ids).cloned().unwrap_or_default();
            let mut r = Resource {
                id,
                owner,
                ..Resource::default()
            };
            let pick_users = |rng: &mut ChaCha8Rng| {
                let mut users = BTreeSet::new();
                for _ in 0..rng.random_range(0..=3usize) {
                    users.extend(pick(rng, &member_ids).cloned());
                }
                users.into_iter().collect::<Vec<_>>()
            };
            let pick_groups = |rng: &mut ChaCha8Rng| {
                let mut groups = BTreeSet::new();
                for _ in 0..rng.random_range(0..=2usize) {
                    groups.insert(rng.random_range(0..GROUPS_PER_WORKSPACE));
                }
                groups.into_iter().collect::<Vec<_>>()
            };
            r.users = pick_users(rng);
            r.groups = pick_groups(rng);
            if workbook {
                // Split grants between editors and viewers.
                let users = std::mem::take(&mut r.users);
                for u in users {
                    if rng.random_bool(0.3) {
                        r.editor_users.push(u);
                    } else {
                        r.users.push(u);
                    }
                }
                let groups = std::mem::take(&mut r.groups);
                for g in groups {
                    if rng.random_bool(0.3) {
                        r.editor_groups.push(g);
                    } else {
                        r.groups.push(g);
                    }
                }
            }
            r
        };
        ws.connections = (0..CONNECTIONS_PER_WORKSPACE)
            .map(|c| resource(&mut rng, format!("w{w}c{c}"), false))
            .collect();
        ws.workbooks = (0..WORKBOOKS_PER_WORKSPACE)
            .map(|b| resource(&mut rng, format!("w{w}b{b}"), true))
            .collect();
        workload.workspaces.push(ws);
        progress(w + 1);
    }
    workload
}

impl Workload {
    /// Calls `emit` with every relationship in the text format of SPEC section 1.
    pub fn for_each_tuple(&self, mut emit: impl FnMut(fmt::Arguments<'_>)) {
        for ws in &self.workspaces {
            let w = &ws.id;
            for (user, role) in &ws.members {
                let relation = match role {
                    Role::Admin => "admin",
                    Role::Editor => "editor",
                    Role::Viewer => "viewer",
                };
                emit(format_args!("workspace:{w}#{relation}@user:{user}"));
            }
            for (group, members) in &ws.groups {
                emit(format_args!("group:{group}#workspace@workspace:{w}"));
                for user in members {
                    emit(format_args!("group:{group}#member@user:{user}"));
                }
            }
            for (ty, resources) in [("connection", &ws.connections), ("workbook", &ws.workbooks)] {
                let grant = if ty == "connection" {
                    "grantee"
                } else {
                    "viewer"
                };
                for r in resources {
                    let id = &r.id;
                    emit(format_args!("{ty}:{id}#workspace@workspace:{w}"));
                    emit(format_args!("{ty}:{id}#owner@user:{}", r.owner));
                    for user in &r.users {
                        emit(format_args!("{ty}:{id}#{grant}@user:{user}"));
                    }
                    for (group, _) in r.groups.iter().filter_map(|g| ws.groups.get(*g)) {
                        emit(format_args!("{ty}:{id}#{grant}@group:{group}#member"));
                    }
                    for user in &r.editor_users {
                        emit(format_args!("{ty}:{id}#editor@user:{user}"));
                    }
                    for (group, _) in r.editor_groups.iter().filter_map(|g| ws.groups.get(*g)) {
                        emit(format_args!("{ty}:{id}#editor@group:{group}#member"));
                    }
                }
            }
        }
    }

    /// Number of relationships.
    pub fn tuple_count(&self) -> usize {
        let mut n = 0;
        self.for_each_tuple(|_| n += 1);
        n
    }
}

/// The item at a random index of `items`, drawn with one `random_range` call so the
/// generated files stay the same for a seed; `None` if `items` is empty (no draw).
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get(rng.random_range(0..items.len()))
}

fn role_of(ws: &Workspace, user: &str) -> Option<Role> {
    ws.members
        .iter()
        .find(|(id, _)| id == user)
        .map(|(_, role)| *role)
}

fn in_group(ws: &Workspace, group: usize, user: &str) -> bool {
    ws.groups
        .get(group)
        .is_some_and(|(_, members)| members.iter().any(|m| m == user))
}

/// The model's answer for `permission` (`use`, `view`, `edit`) on a resource of `ws`.
fn allowed(
    ws: &Workspace,
    resource: &Resource,
    workbook: bool,
    permission: &str,
    user: &str,
) -> bool {
    let Some(role) = role_of(ws, user) else {
        return false;
    };
    let editor = resource.owner == user
        || role == Role::Admin
        || resource.editor_users.iter().any(|u| u == user)
        || resource
            .editor_groups
            .iter()
            .any(|g| in_group(ws, *g, user));
    let grantee = resource.users.iter().any(|u| u == user)
        || resource.groups.iter().any(|g| in_group(ws, *g, user));
    match (workbook, permission) {
        (false, "use") => editor || grantee,
        (true, "edit") => editor,
        (true, "view") => editor || grantee,
        _ => false,
    }
}

/// One named check of [`probes`]: `resource#permission@subject` with a name saying which
/// path of the schema answers it (`allowed_via_group`, `denied_other_workspace`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedCheck {
    /// What the check exercises; starts with `allowed` or `denied`, the expected answer.
    pub name: &'static str,
    /// `connection:id`.
    pub resource: String,
    /// Permission name.
    pub permission: &'static str,
    /// `user:id`.
    pub subject: String,
}

/// The fixed questions the benchmarks ask of a workload, chosen from its middle
/// workspace so every size asks the same kind of question: named checks down each path of
/// the schema, and the typical and heaviest subjects of both lookups.
#[derive(Clone, Debug)]
pub struct Probes {
    /// One check per path: direct owner, via a group, via the admin arrow, and two denials.
    pub checks: Vec<NamedCheck>,
    /// `user:id` of an ordinary member of one workspace.
    pub typical_user: String,
    /// `user:id` of the user who reaches the most connections (an admin of many workspaces).
    pub heaviest_user: String,
    /// `connection:id` of a workspace's first connection.
    pub typical_connection: String,
    /// `connection:id` of the connection of that workspace shared with the most users.
    pub most_shared_connection: String,
}

/// The [`Probes`] of a generated workload; `None` for a workload smaller than any
/// [`Size`] generates (fewer than two connections or eleven members in a workspace).
pub fn probes(workload: &Workload) -> Option<Probes> {
    let ws = workload.workspaces.get(workload.workspaces.len() / 2)?;
    let admins: Vec<&str> = ws
        .members
        .iter()
        .filter(|(_, r)| *r == Role::Admin)
        .map(|(id, _)| id.as_str())
        .collect();
    let group = |g: &usize| ws.groups.get(*g).map_or(&[][..], |(_, m)| m.as_slice());
    let check = |name, resource: &str, subject: &str| NamedCheck {
        name,
        resource: format!("connection:{resource}"),
        permission: "use",
        subject: format!("user:{subject}"),
    };
    let direct = ws.connections.first()?;
    let second = ws.connections.get(1)?;
    let mut checks = vec![check("allowed_direct_owner", &direct.id, &direct.owner)];
    // A member of a granted group who is neither owner, direct grantee nor admin.
    let via_group = ws.connections.iter().find_map(|c| {
        c.groups.iter().flat_map(group).find_map(|m| {
            (*m != c.owner && !c.users.contains(m) && !admins.contains(&m.as_str()))
                .then_some((c, m))
        })
    });
    if let Some((c, m)) = via_group {
        checks.push(check("allowed_via_group", &c.id, m));
    }
    if let Some(admin) = admins.iter().find(|a| second.owner != **a) {
        checks.push(check("allowed_via_admin_arrow", &second.id, admin));
    }
    if let Some((other, _)) = workload.workspaces.first().and_then(|w| w.members.get(5)) {
        checks.push(check("denied_other_workspace", &direct.id, other));
    }
    if let Some(stranger) = ws.members.iter().map(|(id, _)| id).find(|id| {
        **id != direct.owner
            && !direct.users.contains(id)
            && !admins.contains(&id.as_str())
            && !direct.groups.iter().any(|g| group(g).contains(id))
    }) {
        checks.push(check("denied_same_workspace", &direct.id, stranger));
    }
    let most_shared = ws
        .connections
        .iter()
        .max_by_key(|c| c.groups.iter().map(|g| group(g).len()).sum::<usize>() + c.users.len())
        .unwrap_or(direct);
    Some(Probes {
        checks,
        typical_user: format!("user:{}", ws.members.get(10)?.0),
        heaviest_user: "user:roaming0".to_string(),
        typical_connection: format!("connection:{}", direct.id),
        most_shared_connection: format!("connection:{}", most_shared.id),
    })
}

/// `n` checks, half drawn from real grants so both answers are common.
pub fn checks(workload: &Workload, seed: u64, n: usize) -> Vec<ExpectedCheck> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c4ec);
    let mut out = Vec::with_capacity(n);
    let workspaces = &workload.workspaces;
    while out.len() < n {
        // Every workspace has resources and members, so `pick` finds one each time.
        let Some(ws) = pick(&mut rng, workspaces) else {
            break;
        };
        let workbook = rng.random_bool(0.3);
        let resources = if workbook {
            &ws.workbooks
        } else {
            &ws.connections
        };
        let Some(resource) = pick(&mut rng, resources) else {
            break;
        };
        let user = if out.len() % 2 == 0 {
            // From a real grant: owner, a direct grantee, or a member of a granted group.
            let mut candidates = vec![resource.owner.clone()];
            candidates.extend(resource.users.iter().cloned());
            candidates.extend(resource.editor_users.iter().cloned());
            for g in resource.groups.iter().chain(&resource.editor_groups) {
                if let Some((_, members)) = ws.groups.get(*g) {
                    candidates.extend(members.iter().cloned());
                }
            }
            pick(&mut rng, &candidates).cloned()
        } else {
            // Anyone, possibly from another workspace.
            pick(&mut rng, workspaces)
                .and_then(|other| pick(&mut rng, &other.members))
                .map(|(id, _)| id.clone())
        };
        let Some(user) = user else {
            break;
        };
        let permission = match (workbook, rng.random_bool(0.5)) {
            (false, _) => "use",
            (true, true) => "view",
            (true, false) => "edit",
        };
        let ty = if workbook { "workbook" } else { "connection" };
        out.push(ExpectedCheck {
            resource: format!("{ty}:{}", resource.id),
            permission: permission.to_string(),
            subject: format!("user:{user}"),
            allowed: allowed(ws, resource, workbook, permission, &user),
        });
    }
    out
}

/// Expected lookup counts for `n` typical users and every roaming admin.
pub fn lookups(workload: &Workload, seed: u64, n: usize) -> Vec<ExpectedLookup> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0100_c0b5);
    let mut users: Vec<String> = (0..ROAMING_ADMINS).map(|r| format!("roaming{r}")).collect();
    let workspaces = &workload.workspaces;
    for _ in 0..n {
        if workspaces.is_empty() {
            break;
        }
        let Some(ws) = pick(&mut rng, workspaces) else {
            break;
        };
        // Not a roaming admin: one of the first USERS_PER_WORKSPACE members.
        let at = rng.random_range(0..USERS_PER_WORKSPACE.min(ws.members.len()));
        users.extend(ws.members.get(at).map(|(id, _)| id.clone()));
    }
    // Users are local to their workspace except roaming admins; index where each appears.
    let mut appears: HashMap<&str, Vec<&Workspace>> = HashMap::new();
    for ws in workspaces {
        for (id, _) in &ws.members {
            appears.entry(id.as_str()).or_default().push(ws);
        }
    }
    let mut out = Vec::new();
    for user in users {
        let spaces = appears.get(user.as_str()).cloned().unwrap_or_default();
        for (ty, permission, workbook) in [("connection", "use", false), ("workbook", "view", true)]
        {
            let count = spaces
                .iter()
                .map(|ws| {
                    let resources = if workbook {
                        &ws.workbooks
                    } else {
                        &ws.connections
                    };
                    resources
                        .iter()
                        .filter(|r| allowed(ws, r, workbook, permission, &user))
                        .count()
                })
                .sum();
            out.push(ExpectedLookup {
                subject: format!("user:{user}"),
                resource_type: ty.to_string(),
                permission: permission.to_string(),
                count,
            });
        }
    }
    out
}

/// Writes `schema.zed`, `tuples.txt`, `checks.txt` and `lookups.txt` into `dir`.
pub fn write_files(workload: &Workload, seed: u64, dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("schema.zed"), SCHEMA)?;
    let mut tuples = BufWriter::new(std::fs::File::create(dir.join("tuples.txt"))?);
    let mut count = 0;
    let mut result = Ok(());
    workload.for_each_tuple(|t| {
        if result.is_ok() {
            result = writeln!(tuples, "{t}");
            count += 1;
        }
    });
    result?;
    tuples.flush()?;
    let mut checks_out = BufWriter::new(std::fs::File::create(dir.join("checks.txt"))?);
    for c in checks(workload, seed, 10_000) {
        writeln!(
            checks_out,
            "{}#{}@{} {}",
            c.resource, c.permission, c.subject, c.allowed
        )?;
    }
    checks_out.flush()?;
    let mut lookups_out = BufWriter::new(std::fs::File::create(dir.join("lookups.txt"))?);
    for l in lookups(workload, seed, 100) {
        writeln!(
            lookups_out,
            "{} {} {} {}",
            l.subject, l.resource_type, l.permission, l.count
        )?;
    }
    lookups_out.flush()?;
    Ok(count)
}

/// Parses `checks.txt`.
pub fn parse_checks(text: &str) -> Result<Vec<ExpectedCheck>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || {
                format!(
                    "checks line {}: expected `resource#permission@subject true|false`",
                    i + 1
                )
            };
            let (query, answer) = line.trim().rsplit_once(' ').ok_or_else(bad)?;
            let (resource, rest) = query.split_once('#').ok_or_else(bad)?;
            let (permission, subject) = rest.split_once('@').ok_or_else(bad)?;
            let allowed = match answer {
                "true" => true,
                "false" => false,
                _ => return Err(bad()),
            };
            Ok(ExpectedCheck {
                resource: resource.to_string(),
                permission: permission.to_string(),
                subject: subject.to_string(),
                allowed,
            })
        })
        .collect()
}

/// Parses `lookups.txt`.
pub fn parse_lookups(text: &str) -> Result<Vec<ExpectedLookup>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || {
                format!(
                    "lookups line {}: expected `subject resource_type permission count`",
                    i + 1
                )
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [subject, resource_type, permission, count] = parts.as_slice() else {
                return Err(bad());
            };
            Ok(ExpectedLookup {
                subject: subject.to_string(),
                resource_type: resource_type.to_string(),
                permission: permission.to_string(),
                count: count.parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each named probe is answered as its name says by the model itself, so a bench that
    /// asserts the engine's answer against the name checks the engine, not the names.
    #[test]
    fn every_probe_is_answered_as_its_name_says() {
        for size in [Size::Xs, Size::S] {
            let model = generate(size, 1, |_| {});
            let probes = probes(&model).expect("probes of a generated size");
            assert_eq!(probes.checks.len(), 5, "{size}: one check per path");
            for c in &probes.checks {
                let id = c.resource.strip_prefix("connection:").expect("connection");
                let user = c.subject.strip_prefix("user:").expect("user");
                let (ws, resource) = model
                    .workspaces
                    .iter()
                    .find_map(|ws| ws.connections.iter().find(|r| r.id == id).map(|r| (ws, r)))
                    .expect("the probe's connection exists");
                assert_eq!(
                    allowed(ws, resource, false, c.permission, user),
                    c.name.starts_with("allowed"),
                    "{size}: {}",
                    c.name
                );
            }
        }
        assert!(probes(&Workload::default()).is_none());
    }
}
