//! The commands a scenario step can name, their arguments, and each result as a YAML
//! value for `returns` and `save`.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::World;
use crate::groups::{
    Access, Actor, GrantedResource, Grantee, GroupDetail, GroupRef, GroupSummary, GroupsError,
    Member, NewGroup, NewWorkspace, Resource, ResourceCreated, ResourceKind, Role, RoleSet, Shared,
    WorkbookRole, WorkspaceCreated,
};

/// Every argument any command takes; each command reads those it needs.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    workspace: Option<String>,
    admin: Option<String>,
    user: Option<String>,
    role: Option<String>,
    group: Option<String>,
    name: Option<String>,
    description: Option<String>,
    members: Option<Vec<String>>,
    q: Option<String>,
    csv: Option<String>,
    connection: Option<String>,
    workbook: Option<String>,
}

impl Args {
    fn need(value: &Option<String>, name: &str) -> Result<String, String> {
        value
            .clone()
            .ok_or_else(|| format!("this command needs `{name}`"))
    }

    fn resource(&self) -> Result<Resource, String> {
        match (&self.connection, &self.workbook) {
            (Some(id), None) => Ok(Resource {
                kind: ResourceKind::Connection,
                id: id.clone(),
            }),
            (None, Some(id)) => Ok(Resource {
                kind: ResourceKind::Workbook,
                id: id.clone(),
            }),
            _ => Err("name one `connection` or `workbook`".to_string()),
        }
    }

    fn grantee(&self) -> Result<Grantee, String> {
        match (&self.group, &self.user) {
            (Some(id), None) => Ok(Grantee::Group(id.clone())),
            (None, Some(id)) => Ok(Grantee::User(id.clone())),
            _ => Err("name one `group` or `user`".to_string()),
        }
    }
}

/// Runs command `key` with `args` as `actor`: its result as YAML, or its refusal. `Err`
/// of the outer result is a mistake in the scenario itself.
pub(super) fn run(
    world: &mut World,
    actor: Option<&str>,
    key: &str,
    args: Value,
) -> Result<Result<Value, GroupsError>, String> {
    if key == "write_schema" {
        // Not a command of the feature: the general API's schema write (`shipped`, or text).
        let text = args
            .as_str()
            .ok_or("`write_schema` takes `shipped` or the text")?;
        let text = if text == "shipped" {
            crate::DEFAULT_SCHEMA
        } else {
            text
        };
        world.engine.write_schema(text).map_err(|e| e.to_string())?;
        return Ok(Ok(Value::Null));
    }
    let args: Args = if args.is_null() {
        Args::default()
    } else {
        super::from(&args)?
    };
    let ws = args
        .workspace
        .clone()
        .unwrap_or_else(|| world.workspace.clone());
    let g = &world.groups;
    if key == "create_workspace" {
        let request = NewWorkspace {
            admin: args.admin.clone(),
        };
        return Ok(g.create_workspace(&ws, Ok(request)).map(workspace));
    }
    let actor = actor.ok_or_else(|| format!("`{key}` needs `as`"))?;
    let actor = Actor::new(actor).ok_or_else(|| format!("`{actor}` is not a user id"))?;
    let a = &actor;
    let user = || Args::need(&args.user, "user");
    let group = || Args::need(&args.group, "group");
    Ok(match key {
        "set_role" => {
            let role = Role::parse(args.role.as_deref());
            g.set_role(a, &ws, &user()?, role).map(role_set)
        }
        "remove_from_workspace" => g.remove_from_workspace(a, &ws, &user()?).map(unit),
        "list_members" => g.list_members(a, &ws).map(members),
        "member_groups" => g.member_groups(a, &ws, &user()?).map(group_refs),
        "list_groups" => g.list_groups(a, &ws, args.q.as_deref()).map(summaries),
        "create_group" => {
            let request = NewGroup {
                name: args.name.clone(),
                description: args.description.clone(),
                members: args.members.clone().unwrap_or_default(),
            };
            g.create_group(a, &ws, Ok(request)).map(detail)
        }
        "get_group" => g.get_group(a, &ws, &group()?).map(detail),
        "update_group" => {
            let changes = crate::groups::GroupChanges {
                name: args.name.clone(),
                description: args.description.clone(),
            };
            g.update_group(a, &ws, &group()?, Ok(changes)).map(summary)
        }
        "delete_group" => g.delete_group(a, &ws, &group()?).map(unit),
        "add_member" => g.add_member(a, &ws, &group()?, &user()?).map(summary),
        "remove_member" => g.remove_member(a, &ws, &group()?, &user()?).map(unit),
        "group_resources" => g.group_resources(a, &ws, &group()?).map(resources),
        "import_csv" => {
            let csv = Args::need(&args.csv, "csv")?;
            g.import_csv(a, &ws, csv.as_bytes()).map(summaries)
        }
        "create_resource" => g.create_resource(a, &ws, &args.resource()?).map(created),
        "share" => {
            let role = WorkbookRole::parse(args.role.as_deref());
            g.share(a, &ws, &args.resource()?, &args.grantee()?, role)
                .map(shared)
        }
        "unshare" => g
            .unshare(a, &ws, &args.resource()?, &args.grantee()?)
            .map(unit),
        "list_access" => g.list_access(a, &ws, &args.resource()?).map(access),
        other => return Err(format!("unknown command or assertion `{other}`")),
    })
}

// ---------------------------------------------------------------------------------------
// Results as YAML

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Mapping::new();
    for (key, value) in entries {
        map.insert(Value::from(key), value);
    }
    Value::Mapping(map)
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn list<T>(items: Vec<T>, f: impl Fn(T) -> Value) -> Value {
    Value::Sequence(items.into_iter().map(f).collect())
}

fn optional(role: Option<&str>) -> Value {
    role.map_or(Value::Null, text)
}

fn unit((): ()) -> Value {
    Value::Null
}

fn workspace(created: WorkspaceCreated) -> Value {
    map([("id", text(created.id)), ("admin", text(created.admin))])
}

fn role_set(set: RoleSet) -> Value {
    map([
        ("id", text(set.user)),
        ("role", text(set.role.name())),
        ("added", Value::Bool(set.added)),
    ])
}

fn members(members: Vec<Member>) -> Value {
    map([(
        "members",
        list(members, |m| {
            map([
                ("id", text(m.id)),
                ("role", text(m.role.name())),
                ("groups", list(m.groups, |g| text(g.name))),
            ])
        }),
    )])
}

fn group_refs(groups: Vec<GroupRef>) -> Value {
    map([("groups", list(groups, |g| text(g.name)))])
}

fn summary(group: GroupSummary) -> Value {
    map([
        ("id", text(group.id)),
        ("name", text(group.name)),
        ("description", text(group.description)),
        ("member_count", Value::from(group.member_count)),
    ])
}

fn summaries(groups: Vec<GroupSummary>) -> Value {
    let names = groups.iter().map(|g| text(g.name.clone())).collect();
    map([
        ("names", Value::Sequence(names)),
        ("groups", list(groups, summary)),
    ])
}

fn detail(group: GroupDetail) -> Value {
    map([
        ("id", text(group.id)),
        ("name", text(group.name)),
        ("description", text(group.description)),
        ("member_count", Value::from(group.members.len())),
        (
            "members",
            list(group.members, |m| {
                map([
                    ("id", text(m.id)),
                    ("role", optional(m.role.map(Role::name))),
                ])
            }),
        ),
    ])
}

/// Each as the engine object apps check and the grant relation; the id the routes use is
/// the object's id without its `{ws}/`, which the wire tests pin.
fn resources(resources: Vec<GrantedResource>) -> Value {
    list(resources, |r| text(format!("{}#{}", r.object, r.relation)))
}

fn created(created: ResourceCreated) -> Value {
    map([
        ("id", text(created.id)),
        ("object", text(created.object)),
        ("workspace", text(created.workspace)),
        ("owner", text(created.owner)),
        ("created", Value::Bool(created.created)),
    ])
}

fn shared(shared: Shared) -> Value {
    match shared {
        Shared::Group {
            group,
            member_count,
            role,
        } => map([
            ("group", text(group)),
            ("member_count", Value::from(member_count)),
            ("role", optional(role.map(WorkbookRole::name))),
        ]),
        Shared::User { user, role } => map([
            ("user", text(user)),
            ("role", optional(role.map(WorkbookRole::name))),
        ]),
    }
}

fn access(access: Access) -> Value {
    map([
        ("owners", list(access.owners, text)),
        (
            "users",
            list(access.users, |u| {
                map([
                    ("id", text(u.id)),
                    ("role", optional(u.role.map(WorkbookRole::name))),
                ])
            }),
        ),
        (
            "groups",
            list(access.groups, |g| {
                map([
                    ("id", text(g.id)),
                    ("name", text(g.name)),
                    ("member_count", Value::from(g.member_count)),
                    ("role", optional(g.role.map(WorkbookRole::name))),
                ])
            }),
        ),
    ])
}
