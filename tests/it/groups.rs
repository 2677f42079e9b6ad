//! The user-groups routes over HTTP: the wire contract (statuses, JSON shapes, headers,
//! error codes, the CSV route) and the races that only a server shows. The rules
//! themselves are scenario files run against the service (`server/src/groups/scenarios`).
//!
//! One piece: one test per route and refusal kind, sharing one `App` fixture; it is a table
//! of the wire contract read top to bottom, not logic.

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

    /// A refused request: its status, gRPC code, and the start of its message.
    #[track_caller]
    fn refuses(
        &self,
        (status, code): (u16, u64),
        (method, path, actor, body): (&str, &str, &str, Option<Value>),
        message: &str,
    ) {
        let answer = self.expect(status, method, path, actor, body);
        assert_eq!(answer["code"], code, "{method} {path}: {answer}");
        let text = answer["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{method} {path}: {text}");
        assert_eq!(answer["details"], json!([]));
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

/// One call per route: its status and its whole JSON answer.
#[test]
fn every_route_answers_with_its_status_and_json_shape() {
    let app = acme();
    let (status, answer) = app.send(
        "PUT",
        "/v1/workspaces/globex",
        None,
        Some(("application/json", json!({ "admin": "zoe" }).to_string())),
    );
    assert_eq!(
        (status, answer),
        (201, json!({ "id": "globex", "admin": "zoe" }))
    );
    let member = "/v1/workspaces/acme/members/erin";
    let body = |role: &str| Some(json!({ "role": role }));
    let added = app.expect(201, "PUT", member, "alice", body("viewer"));
    assert_eq!(added, json!({ "id": "erin", "role": "viewer" }));
    let changed = app.expect(200, "PUT", member, "alice", body("editor"));
    assert_eq!(changed, json!({ "id": "erin", "role": "editor" }));
    let unchanged = app.expect(200, "PUT", member, "alice", body("editor"));
    assert_eq!(unchanged, changed);

    let created = app.expect(
        201,
        "POST",
        "/v1/workspaces/acme/groups",
        "alice",
        Some(json!({ "name": "Engineering", "description": "builders", "members": ["bob", "carol"] })),
    );
    let eng = created["id"].as_str().unwrap().to_string();
    assert!(eng.starts_with('g') && eng.len() == 17, "{eng}");
    assert_eq!(
        created,
        json!({
            "id": eng, "name": "Engineering", "description": "builders", "memberCount": 2,
            "members": [{ "id": "bob", "role": "editor" }, { "id": "carol", "role": "viewer" }],
        })
    );
    let group = format!("/v1/workspaces/acme/groups/{eng}");
    assert_eq!(app.expect(200, "GET", &group, "carol", None), created);
    assert_eq!(
        app.expect(
            200,
            "GET",
            "/v1/workspaces/acme/groups?q=ENG",
            "carol",
            None
        ),
        json!({ "groups": [{ "id": eng, "name": "Engineering", "description": "builders", "memberCount": 2 }] })
    );
    let summary = |description: &str, count: u64| json!({ "id": eng, "name": "Engineering", "description": description, "memberCount": count });
    let edited = app.expect(
        200,
        "PATCH",
        &group,
        "alice",
        Some(json!({ "description": "runs" })),
    );
    assert_eq!(edited, summary("runs", 2));
    let dave = format!("{group}/members/dave");
    assert_eq!(
        app.expect(200, "PUT", &dave, "alice", None),
        summary("runs", 3)
    );
    assert_eq!(app.expect(204, "DELETE", &dave, "alice", None), json!(""));
    let listed = app.expect(200, "GET", "/v1/workspaces/acme/members", "carol", None);
    assert_eq!(
        listed["members"][1],
        json!({ "id": "bob", "role": "editor", "groups": [{ "id": eng, "name": "Engineering" }] })
    );
    assert_eq!(
        app.expect(
            200,
            "GET",
            "/v1/workspaces/acme/members/bob/groups",
            "carol",
            None
        ),
        json!({ "id": "bob", "groups": [{ "id": eng, "name": "Engineering" }] })
    );

    // Connections: no role anywhere.
    let connection = "/v1/workspaces/acme/connections/warehouse";
    let owned = json!({
        "id": "warehouse",
        "object": "connection:acme/warehouse",
        "workspace": "acme",
        "owner": "bob"
    });
    assert_eq!(app.expect(201, "PUT", connection, "bob", None), owned);
    assert_eq!(app.expect(200, "PUT", connection, "bob", None), owned);
    assert_eq!(
        app.expect(
            200,
            "PUT",
            &format!("{connection}/access/groups/{eng}"),
            "bob",
            None
        ),
        json!({ "group": eng, "memberCount": 2 })
    );
    assert_eq!(
        app.expect(
            200,
            "PUT",
            &format!("{connection}/access/users/dave"),
            "bob",
            None
        ),
        json!({ "user": "dave" })
    );
    assert_eq!(
        app.expect(200, "GET", &format!("{connection}/access"), "alice", None),
        json!({
            "owners": ["bob"],
            "users": [{ "id": "dave" }],
            "groups": [{ "id": eng, "name": "Engineering", "memberCount": 2 }],
        })
    );
    // Workbooks: each grant with its role.
    let workbook = "/v1/workspaces/acme/workbooks/q3";
    app.expect(201, "PUT", workbook, "bob", None);
    assert_eq!(
        app.expect(
            200,
            "PUT",
            &format!("{workbook}/access/groups/{eng}"),
            "bob",
            body("viewer")
        ),
        json!({ "group": eng, "memberCount": 2, "role": "viewer" })
    );
    assert_eq!(
        app.expect(
            200,
            "PUT",
            &format!("{workbook}/access/users/dave"),
            "bob",
            body("editor")
        ),
        json!({ "user": "dave", "role": "editor" })
    );
    assert_eq!(
        app.expect(200, "GET", &format!("{workbook}/access"), "bob", None),
        json!({
            "owners": ["bob"],
            "users": [{ "id": "dave", "role": "editor" }],
            "groups": [{ "id": eng, "name": "Engineering", "memberCount": 2, "role": "viewer" }],
        })
    );
    assert_eq!(
        app.expect(200, "GET", &format!("{group}/resources"), "alice", None),
        json!({ "resources": [
            { "type": "connection", "id": "warehouse", "object": "connection:acme/warehouse", "relation": "grantee" },
            { "type": "workbook", "id": "q3", "object": "workbook:acme/q3", "relation": "viewer" },
        ] })
    );
    assert!(app.can("connection:acme/warehouse#use@user:carol"));
    assert!(app.can("workbook:acme/q3#edit@user:dave"));
    for base in [connection, workbook] {
        app.expect(
            204,
            "DELETE",
            &format!("{base}/access/users/dave"),
            "bob",
            None,
        );
        app.expect(
            204,
            "DELETE",
            &format!("{base}/access/groups/{eng}"),
            "bob",
            None,
        );
    }
    assert!(!app.can("connection:acme/warehouse#use@user:carol"));
    app.expect(204, "DELETE", &group, "alice", None);
    app.expect(204, "DELETE", member, "alice", None);
    assert!(!app.can("workspace:acme#member@user:erin"));
}

/// Each kind of refusal has its status and gRPC code, and a message.
#[test]
fn refusals_have_their_status_and_code() {
    let app = acme();
    let eng = app.group("acme", "alice", "Engineering", &["bob"]);
    let groups = "/v1/workspaces/acme/groups";
    let name = |name: &str| Some(json!({ "name": name }));
    app.refuses(
        (403, 7),
        ("POST", groups, "bob", name("X")),
        "`bob` may not create groups (only admins can) (`workspace:acme#manage_groups` does not include them)",
    );
    app.refuses(
        (403, 7),
        ("GET", groups, "mallory", None),
        "`mallory` is not a member of workspace `acme`",
    );
    app.refuses(
        (404, 5),
        ("GET", &format!("{groups}/gnope"), "alice", None),
        "no group `gnope` in workspace `acme`",
    );
    app.refuses(
        (409, 9),
        ("POST", groups, "alice", name("ENGINEERING")),
        &format!("workspace `acme` already has a group named `Engineering` (`{eng}`): `ENGINEERING` is the same name after Unicode normalization and case folding"),
    );
    app.refuses(
        (409, 9),
        ("DELETE", "/v1/workspaces/acme/members/alice", "alice", None),
        "`alice` is the last admin of workspace `acme`; make another member admin first",
    );
    let long = "x".repeat(51);
    app.refuses(
        (422, 3),
        ("POST", groups, "alice", name(&long)),
        &format!("a group name has at most 50 characters; `{long}` has 51"),
    );
    app.refuses(
        (422, 3),
        ("PUT", &format!("{groups}/{eng}/members/zoe"), "alice", None),
        "group members must be members of the workspace: `zoe` is not a member of workspace `acme`",
    );
    app.refuses(
        (422, 3),
        ("POST", groups, "alice", Some(json!({ "nme": "X" }))),
        "invalid request body: unknown field `nme`",
    );
    // Path and query errors are the protocol's own: 400.
    app.expect(
        400,
        "GET",
        "/v1/workspaces/acme/groups?q=a&q=b",
        "alice",
        None,
    );
    let (status, answer) = app.send("GET", "/v1/workspaces/acme/groups", Some("bad id!"), None);
    assert_eq!(
        (status, answer["code"].as_u64()),
        (401, Some(16)),
        "{answer}"
    );
}

/// A body is read before authorization but refused only after it: an outsider learns
/// nothing from validation, whatever the body.
#[test]
fn bodies_are_judged_only_after_the_actor_is_authorized() {
    let app = acme();
    let groups = "/v1/workspaces/acme/groups";
    let json = |text: &str| Some(("application/json", text.to_string()));
    for (actor, status) in [("mallory", 403), ("bob", 403), ("alice", 422)] {
        for bad in [
            "{",
            "[1]",
            r#"{"name": 5}"#,
            r#"{"nme": "x"}"#,
            r#"{"name": ""}"#,
        ] {
            let (got, answer) = app.send("POST", groups, Some(actor), json(bad));
            assert_eq!(got, status, "{actor} {bad}: {answer}");
        }
    }
    let (status, answer) = app.send(
        "PUT",
        "/v1/workspaces/acme/members/erin",
        Some("bob"),
        json("{}"),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = app.send(
        "PUT",
        "/v1/workspaces/acme/members/erin",
        Some("alice"),
        json("{}"),
    );
    assert_eq!(
        (status, answer["message"].clone()),
        (
            422,
            json!("`role` is required: `admin`, `editor` or `viewer`")
        )
    );
    // Connection shares read their body but ignore it, bad JSON included.
    app.connection("acme", "bob", "db");
    let (status, answer) = app.send(
        "PUT",
        "/v1/workspaces/acme/connections/db/access/users/carol",
        Some("bob"),
        json("{not json"),
    );
    assert_eq!((status, answer), (200, json!({ "user": "carol" })));
}

/// With a schema that lacks the feature's names, every user-groups route refuses (409,
/// code 9, naming what is missing) while the general API serves; the shipped schema back,
/// the routes work again.
#[test]
fn a_schema_without_the_feature_names_refuses_every_groups_route() {
    let app = acme();
    let reduced = pemba_server::DEFAULT_SCHEMA.replace("permission manage_groups = admin\n", "");
    app.server
        .ok("/v1/schema/write", json!({ "schema": reduced }));
    let lacks = "the user-groups routes need the shipped schema (schemas/user-groups.zed); the current schema lacks `workspace#manage_groups`";
    for (method, path) in [
        ("GET", "/v1/workspaces/acme/groups"),
        ("GET", "/v1/workspaces/acme/members"),
        ("PUT", "/v1/workspaces/acme/connections/c1"),
    ] {
        let answer = app.expect(409, method, path, "alice", None);
        assert_eq!(
            (answer["code"].clone(), answer["message"].clone()),
            (json!(9), json!(lacks))
        );
    }
    let (status, answer) = app.send(
        "PUT",
        "/v1/workspaces/globex",
        None,
        Some(("application/json", json!({ "admin": "zoe" }).to_string())),
    );
    assert_eq!((status, answer["message"].clone()), (409, json!(lacks)));
    assert!(app.can("workspace:acme#admin@user:alice"));
    app.server.ok(
        "/v1/schema/write",
        json!({ "schema": pemba_server::DEFAULT_SCHEMA }),
    );
    app.expect(200, "GET", "/v1/workspaces/acme/groups", "alice", None);
}

/// `pemba serve` on a store whose schema lacks the feature's names says so in one line
/// at start-up, and serves the general API.
#[test]
fn the_server_names_the_missing_schema_names_at_start_up() {
    use crate::process::{agent, ServeProcess, PROCESS_KEY};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let post = |base: &str, path: &str, body: Value| {
        agent(std::time::Duration::from_secs(20))
            .post(&format!("{base}{path}"))
            .header("Authorization", format!("Bearer {PROCESS_KEY}"))
            .send_json(body)
            .unwrap()
            .status()
            .as_u16()
    };
    let mut first = ServeProcess::spawn(&data, &[], &[]);
    first
        .wait_healthy(std::time::Duration::from_secs(30))
        .unwrap();
    let schema = "definition user {}\ndefinition doc {\n relation viewer: user\n}";
    assert_eq!(
        post(&first.base, "/v1/schema/write", json!({ "schema": schema })),
        200
    );
    let (_, log) = first.terminate();
    assert!(
        !log.iter().any(|l| l.contains("user-groups routes need")),
        "{log:?}"
    );
    let mut second = ServeProcess::spawn(&data, &[], &[]);
    second
        .wait_healthy(std::time::Duration::from_secs(30))
        .unwrap();
    let body = json!({ "schema": schema });
    assert_eq!(post(&second.base, "/v1/schema/write", body), 200);
    let (_, log) = second.terminate();
    let lines: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("the user-groups routes need the shipped schema"))
        .collect();
    assert_eq!(lines.len(), 1, "{log:?}");
    assert!(
        lines[0].contains("lacks `definition workspace`"),
        "{}",
        lines[0]
    );
}

/// Issue 12: behind a proxy that appends headers, "the first `Pemba-Actor` wins" let a
/// client act as anyone. Two actor headers are a 400, whoever they name.
#[test]
fn issue_12_two_actor_headers_are_refused() {
    let app = acme();
    for (first, second) in [("mallory", "alice"), ("alice", "alice")] {
        let request = ureq::http::Request::builder()
            .method("GET")
            .uri(app.server.url("/v1/workspaces/acme/groups"))
            .header("Authorization", format!("Bearer {KEY}"))
            .header("Pemba-Actor", first)
            .header("Pemba-Actor", second)
            .body(())
            .unwrap();
        let mut response = agent().run(request).unwrap();
        assert_eq!(response.status().as_u16(), 400, "{first}, {second}");
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["code"], 3);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("more than one `Pemba-Actor`"),
            "{body}"
        );
    }
    app.expect(200, "GET", "/v1/workspaces/acme/groups", "alice", None);
}

/// Issue 16: `PUT /v1/workspaces/{ws}` of a workspace that relationships written through
/// the general API already name is a 409, not a silent adoption (which could leave two
/// admins); nothing is written.
#[test]
fn issue_16_a_workspace_named_by_relationships_is_not_adopted() {
    let app = acme();
    for (ws, written) in [
        ("beta", "workspace:beta#admin@user:mallory"),
        ("gamma", "group:gx#workspace@workspace:gamma"),
    ] {
        app.server.ok(
            "/v1/relationships/write",
            json!({ "updates": [{
                "operation": "OPERATION_TOUCH",
                "relationship": crate::support::rel(written),
            }]}),
        );
        let (status, answer) = app.send(
            "PUT",
            &format!("/v1/workspaces/{ws}"),
            None,
            Some(("application/json", json!({ "admin": "zed" }).to_string())),
        );
        assert_eq!(status, 409, "{ws}: {answer}");
        let (status, _) = app.send(
            "GET",
            &format!("/v1/workspaces/{ws}/groups"),
            Some("zed"),
            None,
        );
        assert_eq!(status, 404, "{ws} was not created");
    }
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
        assert!(app.can("connection:acme/db#use@user:carol"));
        app.expect(204, "DELETE", &member, "alice", None);
        assert!(!app.can("connection:acme/db#use@user:carol"));
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
        assert!(app.can("connection:acme/db#use@user:erin"));
        app.expect(
            204,
            "DELETE",
            "/v1/workspaces/acme/members/erin",
            "alice",
            None,
        );
        assert!(!app.can("connection:acme/db#use@user:erin"));
    }
}

/// The console lists a workspace's connections and workbooks: any member may, an outsider
/// may not, and another workspace's resources never show.
#[test]
fn issue_15_members_list_the_workspace_connections_and_workbooks() {
    let app = acme();
    app.workspace("other", "zoe");
    app.expect(
        201,
        "PUT",
        "/v1/workspaces/acme/connections/warehouse",
        "bob",
        None,
    );
    app.expect(
        201,
        "PUT",
        "/v1/workspaces/acme/workbooks/q3",
        "alice",
        None,
    );
    app.expect(
        201,
        "PUT",
        "/v1/workspaces/other/connections/lake",
        "zoe",
        None,
    );
    let listed = app.expect(200, "GET", "/v1/workspaces/acme/connections", "carol", None);
    assert_eq!(
        listed,
        json!({"resources": [{"id": "warehouse", "owners": ["bob"]}]})
    );
    let listed = app.expect(200, "GET", "/v1/workspaces/acme/workbooks", "carol", None);
    assert_eq!(
        listed,
        json!({"resources": [{"id": "q3", "owners": ["alice"]}]})
    );
    app.expect(403, "GET", "/v1/workspaces/acme/connections", "zoe", None);
    app.expect(404, "GET", "/v1/workspaces/nope/workbooks", "carol", None);
}

/// Issue 12 §4: a resource id is scoped to its workspace. Before, `globex` creating
/// `warehouse` after `acme` got `409 connection warehouse already exists`, which told it
/// of the other tenant's resource and let whoever came first claim the id everywhere.
#[test]
fn issue_12_two_workspaces_each_have_their_own_warehouse() {
    let app = acme();
    app.workspace("globex", "zoe");
    app.member("globex", "zoe", "yuri", "viewer");
    for (ws, owner) in [("acme", "bob"), ("globex", "zoe")] {
        let created = app.expect(
            201,
            "PUT",
            &format!("/v1/workspaces/{ws}/connections/warehouse"),
            owner,
            None,
        );
        assert_eq!(
            created,
            json!({
                "id": "warehouse",
                "object": format!("connection:{ws}/warehouse"),
                "workspace": ws,
                "owner": owner
            })
        );
    }
    let eng = app.group("globex", "zoe", "Eng", &["yuri"]);
    app.share("globex", "zoe", "warehouse", &eng);
    // Each workspace sees its own owner and grants only.
    let access = |ws: &str, actor: &str| {
        app.expect(
            200,
            "GET",
            &format!("/v1/workspaces/{ws}/connections/warehouse/access"),
            actor,
            None,
        )
    };
    assert_eq!(access("acme", "alice")["owners"], json!(["bob"]));
    assert_eq!(access("acme", "alice")["groups"], json!([]));
    assert_eq!(access("globex", "zoe")["owners"], json!(["zoe"]));
    assert!(app.can("connection:globex/warehouse#use@user:yuri"));
    assert!(!app.can("connection:acme/warehouse#use@user:yuri"));
    assert!(app.can("connection:acme/warehouse#use@user:bob"));
    assert!(!app.can("connection:globex/warehouse#use@user:bob"));
    // A `/` in an id would blur the boundary between workspace and resource.
    let (status, answer) = app.call(
        "PUT",
        "/v1/workspaces/acme/connections/globex%2Fwarehouse",
        "bob",
        None,
    );
    assert_eq!(status, 422, "{answer}");
    assert!(!app.can("connection:acme/globex/warehouse#use@user:bob"));
}
