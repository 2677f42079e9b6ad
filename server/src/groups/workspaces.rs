//! `PUT /v1/workspaces/{ws}`: the service creates a workspace with its first admin.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::put;
use axum::Json;
use pemba_engine::is_valid_object_id;
use pemba_engine::{MetadataCondition, MetadataWrite, Operation, Transaction};
use serde::{Deserialize, Serialize};

use super::{
    blocking, conflict, object, route, tuple, unprocessable, update, user, workspace_key, Body,
    Ids, Role,
};
use crate::error::ApiError;
use crate::routes::Route;
use crate::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![route(
        Method::PUT,
        "/v1/workspaces/{ws}",
        put(create_workspace),
    )]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWorkspace {
    admin: Option<String>,
}

#[derive(Serialize)]
struct WorkspaceCreated {
    id: String,
    admin: String,
}

/// Needs only the bearer key: the calling service vouches for the first admin.
async fn create_workspace(
    State(state): State<AppState>,
    Ids(ws): Ids<String>,
    body: Body,
) -> Result<(StatusCode, Json<WorkspaceCreated>), ApiError> {
    blocking(&state, move |engine| {
        let request: CreateWorkspace = body.json()?;
        if !is_valid_object_id(&ws) {
            return Err(unprocessable(format!(
                "`{ws}` is not a valid workspace id: 1 to 1024 letters, digits or `/_|-=+`"
            )));
        }
        let admin = request
            .admin
            .map(|a| a.trim().to_string())
            .ok_or_else(|| unprocessable("`admin` is required: the user id of the first admin"))?;
        if !is_valid_object_id(&admin) {
            return Err(unprocessable(format!("`{admin}` is not a valid user id")));
        }
        let key = workspace_key(&ws);
        let exists = || conflict(format!("workspace `{ws}` already exists"));
        if engine.metadata(&key)?.is_some() {
            return Err(exists());
        }
        let transaction = Transaction {
            metadata_conditions: vec![MetadataCondition {
                key: key.clone(),
                expected: None,
            }],
            updates: vec![update(
                Operation::Touch,
                tuple(
                    object("workspace", &ws),
                    Role::Admin.relation(),
                    user(&admin),
                ),
            )],
            metadata: vec![MetadataWrite {
                key,
                value: Some("{}".to_string()),
            }],
            ..Transaction::default()
        };
        super::commit(engine, &transaction, exists)?;
        Ok((
            StatusCode::CREATED,
            Json(WorkspaceCreated { id: ws, admin }),
        ))
    })
    .await
}
