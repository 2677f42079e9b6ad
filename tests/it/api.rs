//! Every route over a real socket: auth, errors, limits, consistency, cursors, watch.
//!
//! One piece: a flat list of independent route tests sharing the support fixture.

use std::time::Duration;

use pemba_server::Limits;
use serde_json::{json, Value};

use crate::support::{obj, rel, subj, TestServer, KEY, SCHEMA};

#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, code: u64, needle: &str) {
    let (got_status, body) = answer;
    assert_eq!(*got_status, status, "{body}");
    assert_eq!(body["code"].as_u64(), Some(code), "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "`{message}` should mention `{needle}`"
    );
}

/// Issue 12: `/healthz` is liveness only for outsiders; the revision counter (which shows
/// write activity) needs the key.
#[test]
fn issue_12_healthz_shows_the_revision_only_with_the_key() {
    let server = TestServer::start();
    for key in [None, Some("wrong-key")] {
        let (status, text) = server.get("/healthz", key);
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body, json!({ "status": "ok" }), "{key:?}");
    }
    let (status, text) = server.get("/healthz", Some(KEY));
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "ok");
    assert!(
        body["revision"].as_str().unwrap().starts_with("pb1."),
        "{body}"
    );
    assert_eq!(
        body["datastore"],
        json!({ "kind": "redb", "reachable": true }),
        "{body}"
    );
}

#[test]
fn only_healthz_and_the_console_files_are_public_and_every_other_route_needs_the_key() {
    let server = TestServer::start();
    let routes = pemba_server::routes::list();
    assert!(routes.len() >= 15, "{routes:?}");
    let public: Vec<&str> = routes.iter().filter(|r| r.2).map(|r| r.1).collect();
    assert_eq!(
        public,
        ["/healthz", "/console", "/console/", "/console/{*file}"],
        "a new public route must be a deliberate choice"
    );
    for (method, path, public) in routes {
        if path == "/console" || path == "/console/{*file}" {
            // A redirect and a file server: covered by the console's own tests.
            continue;
        }
        // Path parameters (`{ws}`) get a concrete value.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for key in [None, Some("wrong-key")] {
            let (status, text) = server.request(method.as_str(), &concrete, key);
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if public {
                assert_eq!(status, 200, "{path}");
            } else {
                assert_eq!(status, 401, "{method} {path} with {key:?}: {body}");
                assert_eq!(body["code"], 16, "{path}");
            }
        }
    }
    // The right key on /metrics works.
    assert_eq!(server.get("/metrics", Some(KEY)).0, 200);
}

#[test]
fn fresh_store_has_the_user_groups_schema_and_schema_round_trips() {
    let server = TestServer::start();
    let answer = server.ok("/v1/schema/read", json!({}));
    assert!(answer["schemaText"]
        .as_str()
        .unwrap()
        .contains("definition"));
    let written = server.ok("/v1/schema/write", json!({ "schema": SCHEMA }));
    let token = written["writtenAt"]["token"].as_str().unwrap();
    let read = server.ok(
        "/v1/schema/read",
        json!({ "consistency": { "atLeastAsFresh": { "token": token } } }),
    );
    assert_eq!(read["schemaText"], SCHEMA);
    assert_eq!(read["readAt"]["token"], token);
    let bad = server.post(
        "/v1/schema/write",
        json!({ "schema": "definition user {\n  relation x: nope\n}" }),
    );
    assert_error(&bad, 400, 3, "nope");
}

#[test]
fn write_then_check_with_the_write_token_sees_it() {
    let server = TestServer::with_schema();
    let token = server.touch(&["doc:readme#viewer@user:alice"]);
    let answer = server.ok(
        "/v1/permissions/check",
        json!({
            "consistency": { "atLeastAsFresh": { "token": token } },
            "resource": obj("doc:readme"),
            "permission": "view",
            "subject": subj("user:alice"),
        }),
    );
    assert_eq!(answer["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
    assert!(answer["checkedAt"]["token"].as_str().unwrap() >= token.as_str());
    assert!(!server.check("doc:readme#view@user:bob"));
    assert!(!server.check("doc:readme#edit@user:alice"));
    // Group membership and exclusion.
    server.touch(&[
        "group:eng#member@user:bob",
        "doc:readme#viewer@group:eng#member",
    ]);
    assert!(server.check("doc:readme#view@user:bob"));
    server.touch(&["doc:readme#banned@user:bob"]);
    assert!(!server.check("doc:readme#view@user:bob"));
    // No consistency at all means minimize latency.
    let answer = server.ok(
        "/v1/permissions/check",
        json!({ "resource": obj("doc:readme"), "permission": "view", "subject": subj("user:alice") }),
    );
    assert_eq!(answer["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
}

#[test]
fn garbage_future_and_old_exact_tokens_are_clear_errors() {
    let server = TestServer::with_schema();
    let old = server.touch(&["doc:a#viewer@user:alice"]);
    server.touch(&["doc:b#viewer@user:alice"]);
    let check = |consistency: Value| {
        server.post(
            "/v1/permissions/check",
            json!({
                "consistency": consistency,
                "resource": obj("doc:a"),
                "permission": "view",
                "subject": subj("user:alice"),
            }),
        )
    };
    assert_error(
        &check(json!({ "atLeastAsFresh": { "token": "garbage" } })),
        400,
        3,
        "consistency.atLeastAsFresh",
    );
    assert_error(
        &check(json!({ "atLeastAsFresh": { "token": "pb1.999999" } })),
        400,
        3,
        "999999",
    );
    assert_error(
        &check(json!({ "atExactSnapshot": { "token": old } })),
        501,
        12,
        "consistency.atExactSnapshot",
    );
    assert_error(
        &check(json!({ "fullyConsistent": true, "minimizeLatency": true })),
        400,
        3,
        "only one",
    );
}

#[test]
fn malformed_requests_use_the_error_shape_and_name_the_field() {
    let server = TestServer::with_schema();
    assert_error(
        &server.post_raw("/v1/permissions/check", "{not json", Some(KEY)),
        400,
        3,
        "invalid request body",
    );
    assert_error(
        &server.post("/v1/permissions/check", json!({ "resourse": {} })),
        400,
        3,
        "resourse",
    );
    assert_error(
        &server.post(
            "/v1/permissions/check",
            json!({ "resource": obj("doc:bad id"), "permission": "view", "subject": subj("user:a") }),
        ),
        400,
        3,
        "resource: invalid object id `bad id`",
    );
    assert_error(
        &server.post(
            "/v1/permissions/check",
            json!({ "resource": obj("nope:x"), "permission": "view", "subject": subj("user:a") }),
        ),
        400,
        3,
        "nope",
    );
    assert_error(
        &server.post(
            "/v1/relationships/write",
            json!({ "updates": [{ "operation": "OPERATION_UPSERT", "relationship": rel("doc:a#viewer@user:b") }] }),
        ),
        400,
        3,
        "updates[0].operation",
    );
    let (status, body) = server.post("/v1/no/such/route", json!({}));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn create_conflicts_and_preconditions_are_409() {
    let server = TestServer::with_schema();
    server.write(vec![("OPERATION_CREATE", "doc:a#owner@user:alice")]);
    assert_error(
        &server.post(
            "/v1/relationships/write",
            json!({ "updates": [{ "operation": "OPERATION_CREATE", "relationship": rel("doc:a#owner@user:alice") }] }),
        ),
        409,
        6,
        "doc:a#owner@user:alice",
    );
    let must_match_bob = json!({
        "operation": "OPERATION_MUST_MATCH",
        "filter": { "resourceType": "doc", "optionalResourceId": "a", "optionalRelation": "owner",
                    "optionalSubjectFilter": { "subjectType": "user", "optionalSubjectId": "bob" } }
    });
    let answer = server.post(
        "/v1/relationships/write",
        json!({
            "updates": [{ "operation": "OPERATION_TOUCH", "relationship": rel("doc:a#viewer@user:carol") }],
            "optionalPreconditions": [must_match_bob],
        }),
    );
    assert_eq!(answer.0, 409, "{}", answer.1);
    assert_eq!(answer.1["code"], 9);
    assert!(
        !server.check("doc:a#view@user:carol"),
        "nothing was written"
    );
    // Delete by the same kind of filter.
    server.write(vec![("OPERATION_DELETE", "doc:a#owner@user:alice")]);
    assert!(!server.check("doc:a#edit@user:alice"));
}

#[test]
fn checkbulk_answers_every_item_at_one_revision() {
    let server = TestServer::with_schema();
    server.touch(&["doc:a#owner@user:alice", "doc:b#viewer@user:*"]);
    let item = |resource: &str, permission: &str, subject: &str| json!({ "resource": obj(resource), "permission": permission, "subject": subj(subject) });
    let answer = server.ok(
        "/v1/permissions/checkbulk",
        json!({
            "consistency": { "fullyConsistent": true },
            "items": [
                item("doc:a", "edit", "user:alice"),
                item("doc:a", "edit", "user:bob"),
                item("doc:b", "view", "user:anyone"),
                item("doc:a", "nosuch", "user:alice"),
                item("doc:a", "view", "user:bad id"),
            ],
        }),
    );
    assert!(answer["checkedAt"]["token"].is_string());
    let pairs = answer["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 5);
    assert_eq!(
        pairs[0]["item"]["permissionship"],
        "PERMISSIONSHIP_HAS_PERMISSION"
    );
    assert_eq!(
        pairs[1]["item"]["permissionship"],
        "PERMISSIONSHIP_NO_PERMISSION"
    );
    assert_eq!(
        pairs[2]["item"]["permissionship"],
        "PERMISSIONSHIP_HAS_PERMISSION"
    );
    assert_eq!(pairs[3]["error"]["code"], 3);
    assert!(pairs[3]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nosuch"));
    assert_eq!(pairs[4]["error"]["code"], 3);
    assert_eq!(pairs[1]["request"]["subject"]["object"]["objectId"], "bob");
}

/// Imports `count` docs viewable by alice: `doc:d00000` ...
fn import_docs(server: &TestServer, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|i| format!("d{i:05}")).collect();
    let relationships: Vec<Value> = ids
        .iter()
        .map(|id| rel(&format!("doc:{id}#viewer@user:alice")))
        .collect();
    let answer = server.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );
    assert_eq!(answer["numLoaded"], count.to_string());
    ids
}

#[test]
fn lookup_resources_pages_through_10000_results_each_exactly_once() {
    let server = TestServer::with_schema();
    let ids = import_docs(&server, 10_000);
    let mut seen = Vec::new();
    let mut cursor: Option<Value> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({
            "consistency": { "fullyConsistent": true },
            "resourceObjectType": "doc",
            "permission": "view",
            "subject": subj("user:alice"),
            "optionalLimit": 997,
        });
        if let Some(cursor) = &cursor {
            body["optionalCursor"] = cursor.clone();
        }
        let results = server.results("/v1/permissions/resources", body);
        if results.is_empty() {
            break;
        }
        pages += 1;
        assert!(results.len() <= 997);
        for result in &results {
            assert_eq!(
                result["permissionship"],
                "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION"
            );
            seen.push(result["resourceObjectId"].as_str().unwrap().to_string());
        }
        cursor = Some(results.last().unwrap()["afterResultCursor"].clone());
    }
    assert_eq!(pages, 11);
    assert_eq!(seen, ids, "every id once, in order");
    // Without a limit, everything streams in one answer.
    let all = server.results(
        "/v1/permissions/resources",
        json!({ "resourceObjectType": "doc", "permission": "view", "subject": subj("user:alice") }),
    );
    assert_eq!(all.len(), 10_000);
    // A cursor from another route is refused.
    let (status, body) = server.post(
        "/v1/permissions/resources",
        json!({ "resourceObjectType": "doc", "permission": "view", "subject": subj("user:alice"),
                "optionalCursor": { "token": "bm9wZQ" } }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("optionalCursor"));
}

#[test]
fn lookup_subjects_with_limit_cursor_and_wildcards() {
    let server = TestServer::with_schema();
    server.touch(&[
        "doc:a#viewer@user:*",
        "doc:a#banned@user:mallory",
        "doc:a#owner@user:zed",
        "group:eng#member@user:bob",
        "group:eng#member@user:carol",
        "doc:a#viewer@group:eng#member",
    ]);
    let body = |limit: u64, cursor: Option<&Value>, wildcards: &str| {
        let mut body = json!({
            "consistency": { "fullyConsistent": true },
            "resource": obj("doc:a"),
            "permission": "view",
            "subjectObjectType": "user",
            "optionalConcreteLimit": limit,
            "wildcardOption": wildcards,
        });
        if let Some(cursor) = cursor {
            body["optionalCursor"] = cursor.clone();
        }
        body
    };
    let all = server.results(
        "/v1/permissions/subjects",
        body(0, None, "WILDCARD_OPTION_INCLUDE_WILDCARDS"),
    );
    let ids: Vec<&str> = all
        .iter()
        .map(|r| r["subject"]["subjectObjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["*", "bob", "carol", "zed"]);
    assert_eq!(all[0]["excludedSubjects"][0]["subjectObjectId"], "mallory");
    assert_eq!(
        all[0]["subject"]["permissionship"],
        "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION"
    );
    // Page by 2, without wildcards.
    let mut seen = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let page = server.results(
            "/v1/permissions/subjects",
            body(2, cursor.as_ref(), "WILDCARD_OPTION_EXCLUDE_WILDCARDS"),
        );
        if page.is_empty() {
            break;
        }
        for r in &page {
            seen.push(
                r["subject"]["subjectObjectId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        cursor = Some(page.last().unwrap()["afterResultCursor"].clone());
    }
    assert_eq!(seen, ["bob", "carol", "zed"]);
    // Usersets.
    let groups = server.results(
        "/v1/permissions/subjects",
        json!({ "resource": obj("doc:a"), "permission": "view", "subjectObjectType": "group",
                "optionalSubjectRelation": "member" }),
    );
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["subject"]["subjectObjectId"], "eng");
}

#[test]
fn expand_returns_the_tree() {
    let server = TestServer::with_schema();
    server.touch(&["doc:a#owner@user:alice", "doc:a#viewer@user:bob"]);
    let answer = server.ok(
        "/v1/permissions/expand",
        json!({ "resource": obj("doc:a"), "permission": "view" }),
    );
    assert!(answer["expandedAt"]["token"].is_string());
    let root = &answer["treeRoot"];
    assert_eq!(root["expandedObject"], obj("doc:a"));
    assert_eq!(root["expandedRelation"], "view");
    assert_eq!(root["intermediate"]["operation"], "OPERATION_EXCLUSION");
    let text = answer.to_string();
    assert!(text.contains("OPERATION_UNION"), "{text}");
    assert!(text.contains("\"leaf\""), "{text}");
    assert!(text.contains("\"bob\""), "{text}");
}

#[test]
fn read_relationships_pages_with_cursors_and_streams_everything_without_limit() {
    let server = TestServer::with_schema();
    let ids = import_docs(&server, 2500);
    let filter = json!({ "resourceType": "doc", "optionalRelation": "viewer" });
    let mut seen = Vec::new();
    let mut cursor: Option<Value> = None;
    loop {
        let mut body = json!({ "relationshipFilter": filter, "optionalLimit": 700 });
        if let Some(cursor) = &cursor {
            body["optionalCursor"] = cursor.clone();
        }
        let page = server.results("/v1/relationships/read", body);
        if page.is_empty() {
            break;
        }
        for r in &page {
            assert!(r["readAt"]["token"].is_string());
            seen.push(
                r["relationship"]["resource"]["objectId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        cursor = Some(page.last().unwrap()["afterResultCursor"].clone());
    }
    assert_eq!(seen, ids);
    // No limit: every relationship (more than one internal page).
    let all = server.results(
        "/v1/relationships/read",
        json!({ "relationshipFilter": filter }),
    );
    assert_eq!(all.len(), 2500);
    // Subject filter.
    let by_subject = server.results(
        "/v1/relationships/read",
        json!({ "relationshipFilter": { "resourceType": "doc",
                 "optionalSubjectFilter": { "subjectType": "user", "optionalSubjectId": "alice" } },
                "optionalLimit": 5 }),
    );
    assert_eq!(by_subject.len(), 5);
}

#[test]
fn delete_by_filter_with_limit_and_partial_progress() {
    let server = TestServer::with_schema();
    import_docs(&server, 30);
    let filter = json!({ "resourceType": "doc", "optionalRelation": "viewer" });
    let refused = server.post(
        "/v1/relationships/delete",
        json!({ "relationshipFilter": filter, "optionalLimit": 10 }),
    );
    assert_eq!(refused.0, 409, "{}", refused.1);
    let partial = server.ok(
        "/v1/relationships/delete",
        json!({ "relationshipFilter": filter, "optionalLimit": 10, "optionalAllowPartialDeletions": true }),
    );
    assert_eq!(partial["deletionProgress"], "DELETION_PROGRESS_PARTIAL");
    assert_eq!(partial["relationshipsDeletedCount"], "10");
    let rest = server.ok(
        "/v1/relationships/delete",
        json!({ "relationshipFilter": filter }),
    );
    assert_eq!(rest["deletionProgress"], "DELETION_PROGRESS_COMPLETE");
    assert_eq!(rest["relationshipsDeletedCount"], "20");
    assert!(rest["deletedAt"]["token"].is_string());
    let empty = server.post(
        "/v1/relationships/delete",
        json!({ "relationshipFilter": {} }),
    );
    assert_error(&empty, 400, 3, "relationshipFilter");
}

#[test]
fn export_bulk_streams_pages_that_import_back() {
    let server = TestServer::with_schema();
    import_docs(&server, 1234);
    server.touch(&["group:eng#member@user:bob"]);
    let pages = server.results(
        "/v1/relationships/exportbulk",
        json!({ "optionalLimit": 500 }),
    );
    assert_eq!(pages.len(), 3);
    let relationships: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["relationships"].as_array().unwrap().clone())
        .collect();
    assert_eq!(relationships.len(), 1235);
    let other = TestServer::with_schema();
    let answer = other.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );
    assert_eq!(answer["numLoaded"], "1235");
    assert!(other.check("doc:d01000#view@user:alice"));
    // Resume from the first page's cursor.
    let rest = server.results(
        "/v1/relationships/exportbulk",
        json!({ "optionalLimit": 500, "optionalCursor": pages[0]["afterResultCursor"] }),
    );
    assert_eq!(rest.len(), 2);
}

#[test]
fn watch_sees_each_write_once_in_order() {
    let server = TestServer::with_schema();
    let start = server.touch(&["doc:seed#viewer@user:zero"]);
    let stream = server.open_stream(
        "/v1/watch",
        json!({ "optionalStartCursor": { "token": start } }),
    );
    let filtered = server.open_stream("/v1/watch", json!({ "optionalObjectTypes": ["group"] }));
    // Give the stream a moment to subscribe before writing (it would catch up anyway).
    std::thread::sleep(Duration::from_millis(50));
    let mut tokens = Vec::new();
    for i in 0..20 {
        let tuple = format!("doc:d{i}#viewer@user:u{i}");
        tokens.push(server.touch(&[&tuple]));
        if i % 5 == 4 {
            tokens.push(server.write(vec![("OPERATION_DELETE", &tuple)]));
        }
    }
    let group_token = server.touch(&["group:eng#member@user:bob"]);
    tokens.push(group_token.clone());
    let mut received = Vec::new();
    for _ in 0..tokens.len() {
        let line = stream
            .recv_timeout(Duration::from_secs(10))
            .expect("a watch line");
        let result = &line["result"];
        assert_eq!(result["updates"].as_array().unwrap().len(), 1, "{line}");
        received.push(
            result["changesThrough"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(received, tokens, "each write once, in commit order");
    assert!(
        stream.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing more"
    );
    let line = filtered
        .recv_timeout(Duration::from_secs(10))
        .expect("the group write");
    assert_eq!(line["result"]["changesThrough"]["token"], group_token);
    assert_eq!(line["result"]["updates"][0]["operation"], "OPERATION_TOUCH");
    assert_eq!(
        line["result"]["updates"][0]["relationship"],
        rel("group:eng#member@user:bob")
    );
    // A future start cursor is refused up front.
    let (status, body) = server.post(
        "/v1/watch",
        json!({ "optionalStartCursor": { "token": "pb1.99999" } }),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn limits_are_enforced_and_named() {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        max_updates_per_write: 10,
        max_checkbulk_items: 5,
        max_page_size: 100,
        ..Limits::default()
    };
    let server = TestServer::start_with(limits);
    server.ok("/v1/schema/write", json!({ "schema": SCHEMA }));
    let big = format!("{{\"schema\": \"{}\"}}", "x".repeat(100 * 1024));
    assert_error(
        &server.post_raw("/v1/schema/write", &big, Some(KEY)),
        413,
        3,
        "limit of 65536 bytes",
    );
    let updates: Vec<Value> = (0..11)
        .map(|i| json!({ "operation": "OPERATION_TOUCH", "relationship": rel(&format!("doc:d{i}#viewer@user:a")) }))
        .collect();
    assert_error(
        &server.post("/v1/relationships/write", json!({ "updates": updates })),
        400,
        3,
        "limit of 10 per write",
    );
    let items: Vec<Value> = (0..6)
        .map(|_| json!({ "resource": obj("doc:a"), "permission": "view", "subject": subj("user:a") }))
        .collect();
    assert_error(
        &server.post("/v1/permissions/checkbulk", json!({ "items": items })),
        400,
        3,
        "limit of 5",
    );
    assert_error(
        &server.post(
            "/v1/permissions/resources",
            json!({ "resourceObjectType": "doc", "permission": "view", "subject": subj("user:a"), "optionalLimit": 101 }),
        ),
        400,
        3,
        "optionalLimit: 101 exceeds the limit of 100",
    );
    // importbulk has its own, larger body limit.
    let relationships: Vec<Value> = (0..2000)
        .map(|i| rel(&format!("doc:d{i}#viewer@user:a")))
        .collect();
    let answer = server.ok(
        "/v1/relationships/importbulk",
        json!({ "relationships": relationships }),
    );
    assert_eq!(answer["numLoaded"], "2000");
}

#[test]
fn metrics_count_requests_per_route_and_report_the_engine() {
    let server = TestServer::with_schema();
    server.touch(&["doc:a#viewer@user:alice"]);
    server.check("doc:a#view@user:alice");
    let (status, text) = server.get("/metrics", Some(KEY));
    assert_eq!(status, 200);
    assert!(
        text.contains("pemba_http_requests_total{route=\"/v1/permissions/check\""),
        "{text}"
    );
    assert!(
        text.contains("pemba_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains("pemba_engine_relationships 1"), "{text}");
    assert!(text.contains("pemba_engine_revision "), "{text}");
}
