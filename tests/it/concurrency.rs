//! Concurrency over HTTP: readers never see part of a write, and racing writers on the
//! same relationships are decided by preconditions, one winner each time.
//!
//! `PEMBA_CONCURRENCY_SECS` sets how long the move test runs (default 4).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{obj, rel, subj, TestServer, KEY};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, base: &str, path: &str, body: &Value) -> (u16, String) {
    let mut response = agent
        .post(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .send(&body.to_string())
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

const DOCS: usize = 6;

#[test]
fn readers_never_see_a_grant_in_both_groups_or_in_neither() {
    let seconds: u64 = std::env::var("PEMBA_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let server = TestServer::with_schema();
    let mut setup = vec!["group:a#member@user:ua", "group:b#member@user:ub"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    setup.extend((0..DOCS).map(|d| format!("doc:d{d}#viewer@group:a#member")));
    server.touch(&setup.iter().map(String::as_str).collect::<Vec<_>>());
    let base = Arc::new(server.base.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let moves = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let torn = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    // Writers move each doc's grant between the groups in one batch, guarded by a
    // precondition so two writers cannot both move the same grant.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (base, stop, moves) = (base.clone(), stop.clone(), moves.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let doc = format!("doc:d{}", i % DOCS);
                    for (from, to) in [("a", "b"), ("b", "a")] {
                        let body = json!({
                            "updates": [
                                { "operation": "OPERATION_DELETE", "relationship": rel(&format!("{doc}#viewer@group:{from}#member")) },
                                { "operation": "OPERATION_TOUCH", "relationship": rel(&format!("{doc}#viewer@group:{to}#member")) },
                            ],
                            "optionalPreconditions": [{ "operation": "OPERATION_MUST_MATCH", "filter": {
                                "resourceType": "doc", "optionalResourceId": &doc[4..], "optionalRelation": "viewer",
                                "optionalSubjectFilter": { "subjectType": "group", "optionalSubjectId": from, "optionalRelation": { "relation": "member" } } } }],
                        });
                        let (status, text) = post(&agent, &base, "/v1/relationships/write", &body);
                        match status {
                            200 => {
                                moves.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            409 => continue,
                            _ => panic!("move answered {status} {text}"),
                        }
                    }
                }
            })
        })
        .collect();

    // Readers ask three ways; each answer is at one revision and must show exactly one grant.
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (base, stop, reads, torn) = (base.clone(), stop.clone(), reads.clone(), torn.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let doc = format!("doc:d{}", i % DOCS);
                    let seen: Vec<bool> = match i % 3 {
                        0 => {
                            let items: Vec<Value> = ["user:ua", "user:ub"]
                                .iter()
                                .map(|s| json!({ "resource": obj(&doc), "permission": "view", "subject": subj(s) }))
                                .collect();
                            let (status, text) = post(&agent, &base, "/v1/permissions/checkbulk", &json!({ "items": items }));
                            assert_eq!(status, 200, "{text}");
                            let answer: Value = serde_json::from_str(&text).unwrap();
                            answer["pairs"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|p| p["item"]["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION")
                                .collect()
                        }
                        1 => {
                            let (status, text) = post(&agent, &base, "/v1/relationships/read", &json!({
                                "relationshipFilter": { "resourceType": "doc", "optionalResourceId": &doc[4..], "optionalRelation": "viewer" } }));
                            assert_eq!(status, 200, "{text}");
                            ["group:a", "group:b"]
                                .iter()
                                .map(|g| {
                                    let id = &g[6..];
                                    text.contains(&format!("\"objectId\":\"{id}\""))
                                })
                                .collect()
                        }
                        _ => {
                            let (status, text) = post(&agent, &base, "/v1/permissions/subjects", &json!({
                                "resource": obj(&doc), "permission": "view", "subjectObjectType": "user" }));
                            assert_eq!(status, 200, "{text}");
                            ["ua", "ub"]
                                .iter()
                                .map(|u| text.contains(&format!("\"subjectObjectId\":\"{u}\"")))
                                .collect()
                        }
                    };
                    reads.fetch_add(1, Ordering::Relaxed);
                    if seen.iter().filter(|s| **s).count() != 1 {
                        torn.lock().unwrap().push(format!("{doc} seen as {seen:?} (kind {})", i % 3));
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) && torn.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in writers.into_iter().chain(readers) {
        thread.join().unwrap();
    }
    let torn = torn.lock().unwrap();
    assert!(
        torn.is_empty(),
        "torn reads: {:?}",
        &torn[..torn.len().min(10)]
    );
    let (moves, reads) = (moves.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    eprintln!("grant moves: {moves} moves, {reads} reads, none torn");
    assert!(moves > 20 && reads > 100, "{moves} moves, {reads} reads");
}

#[test]
fn racing_creates_and_guarded_touches_each_have_exactly_one_winner() {
    let server = TestServer::with_schema();
    let base = Arc::new(server.base.clone());
    let threads = 6;
    for round in 0..30 {
        let barrier = Arc::new(Barrier::new(threads));
        let racers: Vec<_> = (0..threads)
            .map(|t| {
                let (base, barrier) = (base.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    // The same relationship created by everyone...
                    let create = json!({ "updates": [{ "operation": "OPERATION_CREATE",
                        "relationship": rel(&format!("doc:race{round}#owner@user:same")) }] });
                    // ...and a different owner each, only if the doc has none yet.
                    let guarded = json!({
                        "updates": [{ "operation": "OPERATION_TOUCH", "relationship": rel(&format!("doc:guard{round}#owner@user:t{t}")) }],
                        "optionalPreconditions": [{ "operation": "OPERATION_MUST_NOT_MATCH",
                            "filter": { "resourceType": "doc", "optionalResourceId": format!("guard{round}"), "optionalRelation": "owner" } }],
                    });
                    barrier.wait();
                    let first = post(&agent, &base, "/v1/relationships/write", &create);
                    let second = post(&agent, &base, "/v1/relationships/write", &guarded);
                    (first, second)
                })
            })
            .collect();
        let answers: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        for (which, code) in [(0, 6), (1, 9)] {
            let statuses: Vec<(u16, &String)> = answers
                .iter()
                .map(|(a, b)| if which == 0 { (a.0, &a.1) } else { (b.0, &b.1) })
                .collect();
            let winners = statuses.iter().filter(|(s, _)| *s == 200).count();
            assert_eq!(winners, 1, "round {round}: {statuses:?}");
            for (status, text) in statuses.iter().filter(|(s, _)| *s != 200) {
                assert_eq!(*status, 409, "{text}");
                let body: Value = serde_json::from_str(text).unwrap();
                assert_eq!(body["code"], code, "{text}");
            }
        }
        let owners = server.results(
            "/v1/relationships/read",
            json!({ "relationshipFilter": { "resourceType": "doc", "optionalResourceId": format!("guard{round}") } }),
        );
        assert_eq!(owners.len(), 1, "round {round}: {owners:?}");
    }
}
