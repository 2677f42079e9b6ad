//! The user-groups feature (SPEC section 6) end to end over HTTP: one test per rule, named
//! after it, each change followed at once by a check through `POST /v1/permissions/check`.

use serde_json::{json, Value};

use crate::support::{TestServer, KEY};

/// A server with the shipped schema and a client for the `/v1/workspaces` routes.
struct App {
    server: TestServer,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl App {
    fn start() -> Self {
        App {
            server: TestServer::start(),
        }
    }

    /// Any request; `(status, JSON body or the text as a string)`.
    fn send(
        &self,
        method: &str,
        path: &str,
        actor: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.server.url(path))
            .header("Authorization", format!("Bearer {KEY}"));
        if let Some(actor) = actor {
            request = request.header("Pemba-Actor", actor);
        }
        let response = match body {
            Some((content_type, text)) => agent().run(
                request
                    .header("Content-Type", content_type)
                    .body(text)
                    .unwrap(),
            ),
            None => agent().run(request.body(()).unwrap()),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn call(&self, method: &str, path: &str, actor: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.send(method, path, Some(actor), body)
    }

    /// A request that must answer `status`; its body.
    #[track_caller]
    fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        actor: &str,
        body: Option<Value>,
    ) -> Value {
        let (got, answer) = self.call(method, path, actor, body.clone());
        assert_eq!(
            got, status,
            "{method} {path} as {actor} {body:?} answered {answer}"
        );
        if status >= 400 {
            assert!(answer["code"].is_u64(), "error body {answer}");
            assert!(
                !answer["message"].as_str().unwrap_or_default().is_empty(),
                "error body {answer}"
            );
        }
        answer
    }

    #[track_caller]
    fn workspace(&self, ws: &str, admin: &str) {
        let (status, answer) = self.send(
            "PUT",
            &format!("/v1/workspaces/{ws}"),
            None,
            Some(("application/json", json!({ "admin": admin }).to_string())),
        );
        assert_eq!(status, 201, "{answer}");
    }

    #[track_caller]
    fn member(&self, ws: &str, admin: &str, user: &str, role: &str) {
        let (status, answer) = self.call(
            "PUT",
            &format!("/v1/workspaces/{ws}/members/{user}"),
            admin,
            Some(json!({ "role": role })),
        );
        assert!(status == 200 || status == 201, "{status} {answer}");
    }

    /// Creates a group; its id.
    #[track_caller]
    fn group(&self, ws: &str, admin: &str, name: &str, members: &[&str]) -> String {
        let answer = self.expect(
            201,
            "POST",
            &format!("/v1/workspaces/{ws}/groups"),
            admin,
            Some(json!({ "name": name, "members": members })),
        );
        answer["id"].as_str().unwrap().to_string()
    }

    #[track_caller]
    fn connection(&self, ws: &str, owner: &str, id: &str) {
        self.expect(
            201,
            "PUT",
            &format!("/v1/workspaces/{ws}/connections/{id}"),
            owner,
            None,
        );
    }

    /// Shares a connection with a group; the answered member count.
    #[track_caller]
    fn share(&self, ws: &str, actor: &str, connection: &str, group: &str) -> u64 {
        let answer = self.expect(
            200,
            "PUT",
            &format!("/v1/workspaces/{ws}/connections/{connection}/access/groups/{group}"),
            actor,
            None,
        );
        answer["memberCount"].as_u64().unwrap()
    }

    /// A check through the general API, fully consistent.
    #[track_caller]
    fn can(&self, query: &str) -> bool {
        self.server.check(query)
    }

    /// The names of the workspace's groups as `actor` lists them.
    #[track_caller]
    fn group_names(&self, ws: &str, actor: &str, query: &str) -> Vec<String> {
        let answer = self.expect(
            200,
            "GET",
            &format!("/v1/workspaces/{ws}/groups{query}"),
            actor,
            None,
        );
        answer["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Workspace `acme`: admin `alice`, editor `bob`, viewer `carol`, and `dave` (editor).
fn acme() -> App {
    let app = App::start();
    app.workspace("acme", "alice");
    app.member("acme", "alice", "bob", "editor");
    app.member("acme", "alice", "carol", "viewer");
    app.member("acme", "alice", "dave", "editor");
    app
}

#[test]
fn identity_missing_actor_401_outsider_403_unknown_workspace_404() {
    let app = acme();
    let (status, answer) = app.send("GET", "/v1/workspaces/acme/groups", None, None);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], 16);
    app.expect(403, "GET", "/v1/workspaces/acme/groups", "mallory", None);
    app.expect(404, "GET", "/v1/workspaces/nope/groups", "alice", None);
    app.expect(
        404,
        "GET",
        "/v1/workspaces/acme/groups/gmissing",
        "alice",
        None,
    );
    // Creating a workspace twice is a conflict; it needs a valid admin.
    let (status, _) = app.send(
        "PUT",
        "/v1/workspaces/acme",
        None,
        Some(("application/json", json!({ "admin": "zed" }).to_string())),
    );
    assert_eq!(status, 409);
    let (status, _) = app.send(
        "PUT",
        "/v1/workspaces/other",
        None,
        Some(("application/json", "{}".to_string())),
    );
    assert_eq!(status, 422);
    // Without the bearer key nothing answers, actor or not.
    let response = agent()
        .get(app.server.url("/v1/workspaces/acme/groups"))
        .header("Pemba-Actor", "alice")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[test]
fn rule_01_members_have_one_role_each() {
    let app = acme();
    let members = app.expect(200, "GET", "/v1/workspaces/acme/members", "carol", None);
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_string(), "admin".to_string()),
            ("bob".to_string(), "editor".to_string()),
            ("carol".to_string(), "viewer".to_string()),
            ("dave".to_string(), "editor".to_string()),
        ]
    );
    // Changing a role replaces it: still one role.
    app.expect(
        200,
        "PUT",
        "/v1/workspaces/acme/members/bob",
        "alice",
        Some(json!({ "role": "viewer" })),
    );
    assert!(app.can("workspace:acme#viewer@user:bob"));
    assert!(!app.can("workspace:acme#editor@user:bob"));
    assert!(app.can("workspace:acme#member@user:bob"));
    // Only admins manage members; the role must be one of the three.
    app.expect(
        403,
        "PUT",
        "/v1/workspaces/acme/members/erin",
        "dave",
        Some(json!({ "role": "viewer" })),
    );
    assert!(!app.can("workspace:acme#member@user:erin"));
    app.expect(
        422,
        "PUT",
        "/v1/workspaces/acme/members/erin",
        "alice",
        Some(json!({ "role": "owner" })),
    );
    app.expect(
        422,
        "PUT",
        "/v1/workspaces/acme/members/erin",
        "alice",
        Some(json!({})),
    );
    let added = app.expect(
        201,
        "PUT",
        "/v1/workspaces/acme/members/erin",
        "alice",
        Some(json!({ "role": "admin" })),
    );
    assert_eq!(added, json!({ "id": "erin", "role": "admin" }));
    assert!(app.can("workspace:acme#manage_groups@user:erin"));
}

#[test]
fn rule_02_only_admins_create_groups() {
    let app = acme();
    let body = json!({ "name": "Engineering" });
    app.expect(
        403,
        "POST",
        "/v1/workspaces/acme/groups",
        "bob",
        Some(body.clone()),
    );
    app.expect(
        403,
        "POST",
        "/v1/workspaces/acme/groups",
        "carol",
        Some(body.clone()),
    );
    app.expect(
        403,
        "POST",
        "/v1/workspaces/acme/groups",
        "mallory",
        Some(body.clone()),
    );
    assert!(app.group_names("acme", "alice", "").is_empty());
    // The name is required, trimmed, at most 50 Unicode characters.
    for bad in [
        json!({}),
        json!({ "name": "   " }),
        json!({ "name": "é".repeat(51) }),
    ] {
        let answer = app.expect(
            422,
            "POST",
            "/v1/workspaces/acme/groups",
            "alice",
            Some(bad),
        );
        assert_eq!(answer["code"], 3);
    }
    let answer = app.expect(
        422,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": "x".repeat(51) })),
    );
    assert!(
        answer["message"].as_str().unwrap().contains("50"),
        "{answer}"
    );
    let fifty = app.expect(
        201,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": format!("  {}  ", "é".repeat(50)) })),
    );
    assert_eq!(fifty["name"], "é".repeat(50));
    // A group with no members is valid.
    let created = app.expect(
        201,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": " Engineering ", "description": "builders" })),
    );
    assert_eq!(created["name"], "Engineering");
    assert_eq!(created["description"], "builders");
    assert_eq!(created["memberCount"], 0);
    assert!(created["id"].as_str().unwrap().starts_with('g'));
    // Unique in the workspace, ignoring case.
    let taken = app.expect(
        409,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": "ENGINEERING" })),
    );
    assert!(
        taken["message"].as_str().unwrap().contains("ENGINEERING"),
        "{taken}"
    );
    // ... but only in the workspace: another workspace may reuse it.
    app.workspace("globex", "zoe");
    app.group("globex", "zoe", "engineering", &[]);
    // Initial members must be workspace members; the answer names the others.
    let refused = app.expect(
        422,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": "Sales", "members": ["bob", "zoe"] })),
    );
    assert!(
        refused["message"].as_str().unwrap().contains("`zoe`"),
        "{refused}"
    );
    assert_eq!(
        app.group_names("acme", "alice", ""),
        ["Engineering".to_string(), "é".repeat(50)]
    );
    let sales = app.group("acme", "alice", "Sales", &["bob", "carol", "bob"]);
    let opened = app.expect(
        200,
        "GET",
        &format!("/v1/workspaces/acme/groups/{sales}"),
        "bob",
        None,
    );
    assert_eq!(opened["memberCount"], 2);
}

#[test]
fn rule_03_every_member_lists_filters_and_opens_groups() {
    let app = acme();
    let eng = app.group("acme", "alice", "engineering", &["bob", "carol"]);
    app.group("acme", "alice", "Design", &["dave"]);
    app.group("acme", "alice", "Data Engineering", &[]);
    for actor in ["alice", "bob", "carol"] {
        let listed = app.expect(200, "GET", "/v1/workspaces/acme/groups", actor, None);
        let groups = listed["groups"].as_array().unwrap();
        let summary: Vec<(&str, u64)> = groups
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap(),
                    g["memberCount"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("Data Engineering", 0), ("Design", 1), ("engineering", 2)],
            "{actor}"
        );
        assert_eq!(
            app.group_names("acme", actor, "?q=ENGIN"),
            ["Data Engineering", "engineering"]
        );
        assert_eq!(app.group_names("acme", actor, "?q=sign"), ["Design"]);
        assert!(app.group_names("acme", actor, "?q=zzz").is_empty());
        let opened = app.expect(
            200,
            "GET",
            &format!("/v1/workspaces/acme/groups/{eng}"),
            actor,
            None,
        );
        assert_eq!(opened["name"], "engineering");
        assert_eq!(opened["memberCount"], 2);
        assert_eq!(
            opened["members"],
            json!([{ "id": "bob", "role": "editor" }, { "id": "carol", "role": "viewer" }])
        );
    }
    app.expect(
        403,
        "GET",
        &format!("/v1/workspaces/acme/groups/{eng}"),
        "mallory",
        None,
    );
}

#[test]
fn rule_04_every_member_sees_which_groups_any_member_is_in() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob", "carol"]);
    let ops = app.group("acme", "alice", "Ops", &["bob"]);
    for actor in ["alice", "bob", "carol"] {
        let answer = app.expect(
            200,
            "GET",
            "/v1/workspaces/acme/members/bob/groups",
            actor,
            None,
        );
        assert_eq!(
            answer["groups"],
            json!([{ "id": eng, "name": "Engineering" }, { "id": ops, "name": "Ops" }])
        );
        let answer = app.expect(
            200,
            "GET",
            "/v1/workspaces/acme/members/dave/groups",
            actor,
            None,
        );
        assert_eq!(answer["groups"], json!([]));
    }
    let members = app.expect(200, "GET", "/v1/workspaces/acme/members", "carol", None);
    let carol = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "carol")
        .unwrap();
    assert_eq!(
        carol["groups"],
        json!([{ "id": eng, "name": "Engineering" }])
    );
    app.expect(
        404,
        "GET",
        "/v1/workspaces/acme/members/nobody/groups",
        "carol",
        None,
    );
    app.expect(
        403,
        "GET",
        "/v1/workspaces/acme/members/bob/groups",
        "mallory",
        None,
    );
}

#[test]
fn rule_05_only_admins_rename_describe_and_change_members_with_effect_on_the_next_check() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob"]);
    app.group("acme", "alice", "Sales", &[]);
    app.connection("acme", "alice", "warehouse");
    app.share("acme", "alice", "warehouse", &eng);
    let group = format!("/v1/workspaces/acme/groups/{eng}");
    // Editors and viewers may not change a group.
    for actor in ["bob", "carol"] {
        app.expect(
            403,
            "PATCH",
            &group,
            actor,
            Some(json!({ "name": "Hackers" })),
        );
        app.expect(403, "PUT", &format!("{group}/members/dave"), actor, None);
        app.expect(403, "DELETE", &format!("{group}/members/bob"), actor, None);
    }
    assert!(!app.can("connection:warehouse#use@user:dave"));
    assert!(app.can("connection:warehouse#use@user:bob"));
    // Rename and describe, with the name rules of creation.
    let renamed = app.expect(
        200,
        "PATCH",
        &group,
        "alice",
        Some(json!({ "name": "Platform", "description": "runs things" })),
    );
    assert_eq!(renamed["name"], "Platform");
    assert_eq!(renamed["description"], "runs things");
    app.expect(
        409,
        "PATCH",
        &group,
        "alice",
        Some(json!({ "name": "sales" })),
    );
    app.expect(
        422,
        "PATCH",
        &group,
        "alice",
        Some(json!({ "name": "p".repeat(51) })),
    );
    app.expect(422, "PATCH", &group, "alice", Some(json!({ "name": "" })));
    app.expect(
        200,
        "PATCH",
        &group,
        "alice",
        Some(json!({ "name": "PLATFORM" })),
    );
    assert_eq!(app.group_names("acme", "carol", ""), ["PLATFORM", "Sales"]);
    // The old name is free again.
    app.group("acme", "alice", "engineering", &[]);
    // Adding a member takes effect on the very next check; so does removing one.
    let added = app.expect(200, "PUT", &format!("{group}/members/dave"), "alice", None);
    assert_eq!(added["memberCount"], 2);
    assert!(app.can("connection:warehouse#use@user:dave"));
    app.expect(
        204,
        "DELETE",
        &format!("{group}/members/dave"),
        "alice",
        None,
    );
    assert!(!app.can("connection:warehouse#use@user:dave"));
    // Members must be workspace members; removing a non-member is 404.
    app.expect(
        422,
        "PUT",
        &format!("{group}/members/mallory"),
        "alice",
        None,
    );
    assert!(!app.can(&format!("group:{eng}#member@user:mallory")));
    app.expect(
        404,
        "DELETE",
        &format!("{group}/members/dave"),
        "alice",
        None,
    );
    app.expect(
        404,
        "PUT",
        "/v1/workspaces/acme/groups/gnope/members/dave",
        "alice",
        None,
    );
}

#[test]
fn rule_06_only_admins_delete_groups_which_removes_them_from_every_resource() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob", "carol"]);
    app.connection("acme", "dave", "warehouse");
    app.share("acme", "dave", "warehouse", &eng);
    app.expect(201, "PUT", "/v1/workspaces/acme/workbooks/q3", "dave", None);
    app.expect(
        200,
        "PUT",
        &format!("/v1/workspaces/acme/workbooks/q3/access/groups/{eng}"),
        "dave",
        Some(json!({ "role": "editor" })),
    );
    assert!(app.can("connection:warehouse#use@user:bob"));
    assert!(app.can("workbook:q3#edit@user:carol"));
    let group = format!("/v1/workspaces/acme/groups/{eng}");
    for actor in ["bob", "carol", "dave"] {
        app.expect(403, "DELETE", &group, actor, None);
    }
    assert!(app.can("connection:warehouse#use@user:bob"));
    app.expect(204, "DELETE", &group, "alice", None);
    // Members lose the access it gave, at once.
    assert!(!app.can("connection:warehouse#use@user:bob"));
    assert!(!app.can("workbook:q3#view@user:carol"));
    assert!(app.can("connection:warehouse#use@user:dave"));
    // It is gone from every resource and cannot be opened, deleted again or restored.
    let access = app.expect(
        200,
        "GET",
        "/v1/workspaces/acme/connections/warehouse/access",
        "dave",
        None,
    );
    assert_eq!(access["groups"], json!([]));
    app.expect(404, "GET", &group, "alice", None);
    app.expect(404, "DELETE", &group, "alice", None);
    app.expect(404, "PUT", &format!("{group}/members/bob"), "alice", None);
    assert!(app.group_names("acme", "alice", "").is_empty());
    // Its name can be used again, by a new group with a new id.
    let again = app.group("acme", "alice", "engineering", &["bob"]);
    assert_ne!(again, eng);
    assert!(!app.can("connection:warehouse#use@user:bob"));
}

#[test]
fn rule_07_only_owners_and_admins_share_connections_and_workbooks() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["carol", "dave"]);
    // Any member creates a connection, owned by them.
    app.connection("acme", "bob", "salesforce");
    assert!(app.can("connection:salesforce#use@user:bob"));
    assert!(app.can("connection:salesforce#use@user:alice"));
    assert!(!app.can("connection:salesforce#use@user:carol"));
    app.expect(
        409,
        "PUT",
        "/v1/workspaces/acme/connections/salesforce",
        "dave",
        None,
    );
    // Neither another editor nor a viewer may share it.
    let access = "/v1/workspaces/acme/connections/salesforce/access";
    app.expect(403, "PUT", &format!("{access}/groups/{eng}"), "dave", None);
    app.expect(403, "PUT", &format!("{access}/groups/{eng}"), "carol", None);
    app.expect(403, "GET", access, "carol", None);
    assert!(!app.can("connection:salesforce#use@user:carol"));
    // The owner shares with a group: the answer counts its members.
    assert_eq!(app.share("acme", "bob", "salesforce", &eng), 2);
    assert!(app.can("connection:salesforce#use@user:carol"));
    assert!(app.can("connection:salesforce#use@user:dave"));
    // An admin shares with a user; unsharing takes effect at once.
    app.expect(422, "PUT", &format!("{access}/users/erin"), "alice", None);
    app.member("acme", "alice", "erin", "viewer");
    app.expect(200, "PUT", &format!("{access}/users/erin"), "alice", None);
    assert!(app.can("connection:salesforce#use@user:erin"));
    let listed = app.expect(200, "GET", access, "bob", None);
    assert_eq!(listed["owners"], json!(["bob"]));
    assert_eq!(listed["users"], json!([{ "id": "erin" }]));
    assert_eq!(
        listed["groups"],
        json!([{ "id": eng, "name": "Engineering", "memberCount": 2 }])
    );
    app.expect(204, "DELETE", &format!("{access}/users/erin"), "bob", None);
    assert!(!app.can("connection:salesforce#use@user:erin"));
    app.expect(404, "DELETE", &format!("{access}/users/erin"), "bob", None);
    app.expect(
        204,
        "DELETE",
        &format!("{access}/groups/{eng}"),
        "alice",
        None,
    );
    assert!(!app.can("connection:salesforce#use@user:carol"));
    // Sharing with someone outside the workspace, or a group of another workspace, fails.
    app.expect(422, "PUT", &format!("{access}/users/mallory"), "bob", None);
    app.workspace("globex", "zoe");
    let foreign = app.group("globex", "zoe", "Outsiders", &[]);
    app.expect(
        404,
        "PUT",
        &format!("{access}/groups/{foreign}"),
        "bob",
        None,
    );
    app.expect(
        404,
        "PUT",
        "/v1/workspaces/globex/connections/salesforce/access/users/zoe",
        "zoe",
        None,
    );
    // Workbooks likewise, as editor or viewer.
    app.expect(201, "PUT", "/v1/workspaces/acme/workbooks/q3", "dave", None);
    let book = "/v1/workspaces/acme/workbooks/q3/access";
    app.expect(
        403,
        "PUT",
        &format!("{book}/groups/{eng}"),
        "bob",
        Some(json!({ "role": "viewer" })),
    );
    app.expect(
        422,
        "PUT",
        &format!("{book}/groups/{eng}"),
        "dave",
        Some(json!({ "role": "owner" })),
    );
    app.expect(422, "PUT", &format!("{book}/groups/{eng}"), "dave", None);
    let shared = app.expect(
        200,
        "PUT",
        &format!("{book}/groups/{eng}"),
        "dave",
        Some(json!({ "role": "viewer" })),
    );
    assert_eq!(shared["memberCount"], 2);
    assert!(app.can("workbook:q3#view@user:carol"));
    assert!(!app.can("workbook:q3#edit@user:carol"));
    app.expect(
        200,
        "PUT",
        &format!("{book}/groups/{eng}"),
        "alice",
        Some(json!({ "role": "editor" })),
    );
    assert!(app.can("workbook:q3#edit@user:carol"));
    app.expect(
        200,
        "PUT",
        &format!("{book}/users/bob"),
        "dave",
        Some(json!({ "role": "viewer" })),
    );
    assert!(app.can("workbook:q3#view@user:bob"));
    assert!(!app.can("workbook:q3#edit@user:bob"));
    let listed = app.expect(200, "GET", book, "alice", None);
    assert_eq!(listed["users"], json!([{ "id": "bob", "role": "viewer" }]));
    assert_eq!(listed["groups"][0]["role"], "editor");
    app.expect(204, "DELETE", &format!("{book}/groups/{eng}"), "dave", None);
    assert!(!app.can("workbook:q3#view@user:carol"));
}

#[test]
fn rule_08_grants_overlap_and_removal_from_one_group_keeps_other_access() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["carol"]);
    let data = app.group("acme", "alice", "Data", &["carol"]);
    app.connection("acme", "bob", "warehouse");
    app.share("acme", "bob", "warehouse", &eng);
    app.share("acme", "bob", "warehouse", &data);
    let direct = "/v1/workspaces/acme/connections/warehouse/access/users/carol";
    app.expect(200, "PUT", direct, "bob", None);
    assert!(app.can("connection:warehouse#use@user:carol"));
    app.expect(
        204,
        "DELETE",
        &format!("/v1/workspaces/acme/groups/{eng}/members/carol"),
        "alice",
        None,
    );
    assert!(app.can("connection:warehouse#use@user:carol"));
    app.expect(
        204,
        "DELETE",
        &format!("/v1/workspaces/acme/groups/{data}"),
        "alice",
        None,
    );
    assert!(app.can("connection:warehouse#use@user:carol"));
    app.expect(204, "DELETE", direct, "bob", None);
    assert!(!app.can("connection:warehouse#use@user:carol"));
    // Any number of groups.
    let many: Vec<String> = (0..5)
        .map(|i| app.group("acme", "alice", &format!("team {i}"), &["dave"]))
        .collect();
    let groups = app.expect(
        200,
        "GET",
        "/v1/workspaces/acme/members/dave/groups",
        "dave",
        None,
    );
    assert_eq!(groups["groups"].as_array().unwrap().len(), many.len());
}

#[test]
fn rule_09_removing_a_member_removes_them_from_every_group_and_revokes_all_access() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["dave", "carol"]);
    app.connection("acme", "dave", "mine");
    app.connection("acme", "bob", "shared");
    app.share("acme", "bob", "shared", &eng);
    app.expect(
        200,
        "PUT",
        "/v1/workspaces/acme/connections/shared/access/users/dave",
        "bob",
        None,
    );
    app.expect(
        201,
        "PUT",
        "/v1/workspaces/acme/workbooks/plan",
        "bob",
        None,
    );
    app.expect(
        200,
        "PUT",
        "/v1/workspaces/acme/workbooks/plan/access/users/dave",
        "bob",
        Some(json!({ "role": "editor" })),
    );
    // dave is also in another workspace, whose access must survive.
    app.workspace("globex", "zoe");
    app.member("globex", "zoe", "dave", "viewer");
    let outside = app.group("globex", "zoe", "Friends", &["dave"]);
    app.connection("globex", "zoe", "globex-db");
    app.share("globex", "zoe", "globex-db", &outside);
    assert!(app.can("connection:globex-db#use@user:dave"));
    assert!(app.can("connection:mine#use@user:dave"));
    // Only admins remove members.
    app.expect(
        403,
        "DELETE",
        "/v1/workspaces/acme/members/dave",
        "bob",
        None,
    );
    app.expect(
        204,
        "DELETE",
        "/v1/workspaces/acme/members/dave",
        "alice",
        None,
    );
    for query in [
        "connection:mine#use@user:dave",
        "connection:shared#use@user:dave",
        "workbook:plan#view@user:dave",
        "workspace:acme#member@user:dave",
    ] {
        assert!(!app.can(query), "{query}");
    }
    let opened = app.expect(
        200,
        "GET",
        &format!("/v1/workspaces/acme/groups/{eng}"),
        "carol",
        None,
    );
    assert_eq!(
        opened["members"],
        json!([{ "id": "carol", "role": "viewer" }])
    );
    // Re-adding dave does not bring back anything.
    app.member("acme", "alice", "dave", "editor");
    assert!(!app.can("connection:shared#use@user:dave"));
    assert!(!app.can("workbook:plan#view@user:dave"));
    assert!(!app.can("connection:mine#use@user:dave"));
    // Other workspaces are untouched.
    assert!(app.can("connection:globex-db#use@user:dave"));
    app.expect(
        404,
        "DELETE",
        "/v1/workspaces/acme/members/nobody",
        "alice",
        None,
    );
    // The last admin can be neither removed nor demoted.
    let refused = app.expect(
        409,
        "DELETE",
        "/v1/workspaces/acme/members/alice",
        "alice",
        None,
    );
    assert!(
        refused["message"].as_str().unwrap().contains("last admin"),
        "{refused}"
    );
    app.expect(
        409,
        "PUT",
        "/v1/workspaces/acme/members/alice",
        "alice",
        Some(json!({ "role": "editor" })),
    );
    assert!(app.can("workspace:acme#admin@user:alice"));
    app.member("acme", "alice", "bob", "admin");
    app.expect(
        200,
        "PUT",
        "/v1/workspaces/acme/members/alice",
        "alice",
        Some(json!({ "role": "viewer" })),
    );
    assert!(!app.can("workspace:acme#admin@user:alice"));
    app.expect(
        409,
        "DELETE",
        "/v1/workspaces/acme/members/bob",
        "bob",
        None,
    );
}

#[test]
fn rule_09_concurrent_demotions_of_two_admins_leave_one() {
    let app = App::start();
    for round in 0..5 {
        let ws = format!("ws{round}");
        app.workspace(&ws, "alice");
        app.member(&ws, "alice", "bob", "admin");
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let demote = |actor: &'static str, target: &'static str| {
                let app = &app;
                let ws = ws.clone();
                scope.spawn(move || {
                    app.call(
                        "PUT",
                        &format!("/v1/workspaces/{ws}/members/{target}"),
                        actor,
                        Some(json!({ "role": "viewer" })),
                    )
                    .0
                })
            };
            let a = demote("alice", "bob");
            let b = demote("bob", "alice");
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let admins = ["alice", "bob"]
            .iter()
            .filter(|u| app.can(&format!("workspace:{ws}#admin@user:{u}")))
            .count();
        assert_eq!(admins, 1, "round {round}: {statuses:?}");
    }
}

#[test]
fn rule_10_admins_list_a_groups_resources_editors_and_viewers_cannot() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob"]);
    app.connection("acme", "bob", "warehouse");
    app.share("acme", "bob", "warehouse", &eng);
    app.expect(201, "PUT", "/v1/workspaces/acme/workbooks/q3", "bob", None);
    app.expect(
        200,
        "PUT",
        &format!("/v1/workspaces/acme/workbooks/q3/access/groups/{eng}"),
        "bob",
        Some(json!({ "role": "viewer" })),
    );
    let path = format!("/v1/workspaces/acme/groups/{eng}/resources");
    let listed = app.expect(200, "GET", &path, "alice", None);
    assert_eq!(
        listed["resources"],
        json!([
            { "type": "connection", "id": "warehouse", "relation": "grantee" },
            { "type": "workbook", "id": "q3", "relation": "viewer" },
        ])
    );
    app.expect(403, "GET", &path, "bob", None);
    app.expect(403, "GET", &path, "carol", None);
    app.expect(403, "GET", &path, "mallory", None);
    app.expect(
        404,
        "GET",
        "/v1/workspaces/acme/groups/gnope/resources",
        "alice",
        None,
    );
}

#[test]
fn rule_11_groups_cannot_be_nested() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob"]);
    let ops = app.group("acme", "alice", "Ops", &[]);
    let refused = app.expect(
        422,
        "PUT",
        &format!("/v1/workspaces/acme/groups/{eng}/members/{ops}"),
        "alice",
        None,
    );
    assert!(
        refused["message"].as_str().unwrap().contains("nested"),
        "{refused}"
    );
    app.expect(
        422,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": "Meta", "members": [eng] })),
    );
    let opened = app.expect(
        200,
        "GET",
        &format!("/v1/workspaces/acme/groups/{eng}"),
        "alice",
        None,
    );
    assert_eq!(opened["memberCount"], 1);
    // The schema refuses it through the general API too.
    let (status, _) = app.server.post(
        "/v1/relationships/write",
        json!({ "updates": [{
            "operation": "OPERATION_TOUCH",
            "relationship": crate::support::rel(&format!("group:{eng}#member@group:{ops}#member")),
        }] }),
    );
    assert_eq!(status, 400);
}

#[test]
fn rule_12_admins_import_groups_from_csv_all_or_nothing() {
    let app = acme();
    app.group("acme", "alice", "Existing", &[]);
    let import = |actor: &str, text: &str| {
        app.send(
            "POST",
            "/v1/workspaces/acme/groups/import",
            Some(actor),
            Some(("text/csv", text.to_string())),
        )
    };
    let good = "group,member\nEngineering,bob\nengineering,carol\nDesign,dave\n\"Empty, Inc\",\n";
    let (status, answer) = import("bob", good);
    assert_eq!(status, 403, "{answer}");
    // Every bad row is reported with its line; nothing is created.
    let long = "n".repeat(51);
    let existing_id = app.expect(200, "GET", "/v1/workspaces/acme/groups", "alice", None)["groups"]
        [0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = format!(
        "group,member\nSales,bob\n{long},bob\nEXISTING,carol\nSales,mallory\nSales,{existing_id}\n,bob\nSales,bob,extra\nSales,carol\n"
    );
    let (status, answer) = import("alice", &bad);
    assert_eq!(status, 422, "{answer}");
    let lines: Vec<u64> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{answer}");
    assert!(
        answer["errors"][3]["message"]
            .as_str()
            .unwrap()
            .contains("nested"),
        "{answer}"
    );
    assert_eq!(app.group_names("acme", "alice", ""), ["Existing"]);
    let (status, answer) = import("alice", "name,user\nA,bob\n");
    assert_eq!(status, 422);
    assert_eq!(answer["errors"][0]["line"], 1);
    let (status, _) = import("alice", "");
    assert_eq!(status, 422);
    // A good file creates every group at once.
    let (status, answer) = import("alice", good);
    assert_eq!(status, 201, "{answer}");
    let created: Vec<(String, u64)> = answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["memberCount"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        created,
        [
            ("Engineering".to_string(), 2),
            ("Design".to_string(), 1),
            ("Empty, Inc".to_string(), 0)
        ]
    );
    let eng = answer["groups"][0]["id"].as_str().unwrap();
    assert!(app.can(&format!("group:{eng}#member@user:carol")));
    assert_eq!(
        app.group_names("acme", "carol", ""),
        ["Design", "Empty, Inc", "Engineering", "Existing"]
    );
    // Spreadsheet exports: a byte-order mark and CRLF line ends.
    let (status, answer) = import("alice", "\u{feff}group,member\r\nOps,bob\r\n");
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["groups"][0]["name"], "Ops");
    // Importing the same file again collides with every name.
    let (status, answer) = import("alice", good);
    assert_eq!(status, 422);
    assert_eq!(answer["errors"].as_array().unwrap().len(), 4, "{answer}");
}

#[test]
fn read_your_writes_every_change_is_visible_to_the_next_check() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &[]);
    app.connection("acme", "alice", "db");
    app.share("acme", "alice", "db", &eng);
    let member = format!("/v1/workspaces/acme/groups/{eng}/members/carol");
    for _ in 0..10 {
        app.expect(200, "PUT", &member, "alice", None);
        assert!(app.can("connection:db#use@user:carol"));
        app.expect(204, "DELETE", &member, "alice", None);
        assert!(!app.can("connection:db#use@user:carol"));
    }
    for _ in 0..5 {
        app.member("acme", "alice", "erin", "viewer");
        app.expect(
            200,
            "PUT",
            "/v1/workspaces/acme/connections/db/access/users/erin",
            "alice",
            None,
        );
        assert!(app.can("connection:db#use@user:erin"));
        app.expect(
            204,
            "DELETE",
            "/v1/workspaces/acme/members/erin",
            "alice",
            None,
        );
        assert!(!app.can("connection:db#use@user:erin"));
    }
}
