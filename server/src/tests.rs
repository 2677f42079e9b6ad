//! In-process router tests with `oneshot`: no socket, one request each.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{app, ApiKey, AppState};

const KEY: &str = "oneshot-key";

fn state() -> AppState {
    let engine = pemba_engine::Engine::in_memory().unwrap();
    engine
        .write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
        .unwrap();
    AppState::new(Arc::new(engine), ApiKey::new(KEY).unwrap())
}

async fn call(state: &AppState, path: &str, key: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = Request::post(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    assert!(response.headers().contains_key("x-request-id"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[tokio::test]
async fn write_then_check_in_process() {
    let state = state();
    let write = json!({ "updates": [{ "operation": "OPERATION_TOUCH", "relationship": {
        "resource": { "objectType": "doc", "objectId": "a" }, "relation": "viewer",
        "subject": { "object": { "objectType": "user", "objectId": "alice" } } } }] });
    let (status, answer) = call(
        &state,
        "/v1/relationships/write",
        Some(KEY),
        &write.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["writtenAt"].clone();
    let check = json!({ "consistency": { "atLeastAsFresh": token },
        "resource": { "objectType": "doc", "objectId": "a" }, "permission": "view",
        "subject": { "object": { "objectType": "user", "objectId": "alice" } } });
    let (status, answer) = call(
        &state,
        "/v1/permissions/check",
        Some(KEY),
        &check.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
}

#[tokio::test]
async fn auth_and_body_errors_use_the_error_shape() {
    let state = state();
    let (status, answer) = call(&state, "/v1/schema/read", None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        json!({ "code": 16, "message": "missing `Authorization: Bearer KEY` header", "details": [] })
    );
    let (status, answer) = call(&state, "/v1/schema/read", Some("nope"), "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["message"], "invalid API key");
    let (status, answer) = call(&state, "/v1/schema/read", Some(KEY), "[1,").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], 3);
    // An empty body reads as `{}`.
    let (status, answer) = call(&state, "/v1/schema/read", Some(KEY), "").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["schemaText"]
        .as_str()
        .unwrap()
        .contains("definition doc"));
}

#[test]
fn api_key_debug_never_shows_the_key() {
    let key = ApiKey::new("super-secret").unwrap();
    assert!(!format!("{key:?}").contains("super-secret"));
    assert!(key.matches("super-secret"));
    assert!(!key.matches("super-secreT"));
    assert!(!key.matches(""));
    assert!(ApiKey::new("  ").is_err());
}

#[test]
fn cursors_round_trip_and_refuse_other_kinds() {
    let token = crate::wire::encode_cursor("lr", "doc-1");
    assert_eq!(
        crate::wire::decode_cursor(Some(&token), "lr").unwrap(),
        Some("doc-1".to_string())
    );
    assert!(crate::wire::decode_cursor(Some(&token), "ls").is_err());
    let garbage = crate::wire::Token {
        token: "%%%".to_string(),
    };
    assert!(crate::wire::decode_cursor(Some(&garbage), "lr").is_err());
}

#[test]
fn generated_key_is_private_and_reused() {
    let dir = tempfile_dir();
    let (key, source) = crate::auth::resolve_key(None, None, &dir).unwrap();
    assert!(matches!(source, crate::auth::KeySource::Generated(_)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(crate::auth::KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, source) = crate::auth::resolve_key(None, None, &dir).unwrap();
    assert!(matches!(source, crate::auth::KeySource::Stored(_)));
    assert_eq!(again.expose(), key.expose());
    let (env, source) = crate::auth::resolve_key(None, Some("from-env".into()), &dir).unwrap();
    assert_eq!(
        (env.expose(), source),
        ("from-env", crate::auth::KeySource::Env)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pemba-server-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
