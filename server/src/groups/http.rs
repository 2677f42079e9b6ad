//! The user-groups routes over HTTP: extractors for the actor, path ids and bodies, one
//! line per handler calling [`Groups`] on the blocking pool, and the route table, whose
//! entries also carry each route's body decoder (for fuzzing, see [`crate::routes::decode_body`]).
//!
//! Errors become the API's error body through `From<GroupsError> for ApiError`
//! (`crate::error`); this layer adds only the protocol's own refusals (401 for the actor
//! header, 400 for path and query).

mod handlers;
mod watch;
mod wire;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::Method;
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use serde::de::DeserializeOwned;

use self::handlers as h;
use self::wire::WireBody;
use super::{Actor, Groups, GroupsError, Input};
use crate::error::ApiError;
use crate::routes::{BodyDecoder, Route};
use crate::AppState;

/// The header naming the workspace member a request acts for.
pub const ACTOR_HEADER: &str = "pemba-actor";

/// Every route of the feature, for [`crate::routes::table`].
pub fn routes() -> Vec<Route> {
    endpoints()
        .into_iter()
        .map(|e| Route {
            method: e.method,
            path: e.path,
            public: false,
            body_limit: None,
            handler: e.handler,
            decode: e.decode,
        })
        .collect()
}

/// One route: what [`Route`] needs, plus the decoder of the JSON body its handler reads.
struct Endpoint {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
    decode: Option<BodyDecoder>,
}

const WORKSPACE: &str = "/v1/workspaces/{ws}";
const MEMBERS: &str = "/v1/workspaces/{ws}/members";
const MEMBER: &str = "/v1/workspaces/{ws}/members/{user}";
const MEMBER_GROUPS: &str = "/v1/workspaces/{ws}/members/{user}/groups";
const GROUPS: &str = "/v1/workspaces/{ws}/groups";
const IMPORT: &str = "/v1/workspaces/{ws}/groups/import";
const GROUP: &str = "/v1/workspaces/{ws}/groups/{group}";
const GROUP_MEMBER: &str = "/v1/workspaces/{ws}/groups/{group}/members/{member}";
const GROUP_RESOURCES: &str = "/v1/workspaces/{ws}/groups/{group}/resources";
const WATCH: &str = "/v1/workspaces/{ws}/watch";

fn endpoints() -> Vec<Endpoint> {
    use h::{Connections, Kind, Workbooks};
    vec![
        with_body::<wire::CreateWorkspace, _, _>(Method::PUT, WORKSPACE, put, h::create_workspace),
        with_body::<wire::SetRole, _, _>(Method::PUT, MEMBER, put, h::set_role),
        plain(Method::DELETE, MEMBER, delete(h::remove_from_workspace)),
        plain(Method::GET, MEMBERS, get(h::list_members)),
        plain(Method::GET, MEMBER_GROUPS, get(h::member_groups)),
        plain(Method::GET, GROUPS, get(h::list_groups)),
        with_body::<wire::CreateGroup, _, _>(Method::POST, GROUPS, post, h::create_group),
        plain(Method::GET, GROUP, get(h::get_group)),
        with_body::<wire::EditGroup, _, _>(Method::PATCH, GROUP, patch, h::update_group),
        plain(Method::DELETE, GROUP, delete(h::delete_group)),
        plain(Method::PUT, GROUP_MEMBER, put(h::add_member)),
        plain(Method::DELETE, GROUP_MEMBER, delete(h::remove_member)),
        plain(Method::GET, GROUP_RESOURCES, get(h::group_resources)),
        plain(Method::GET, WATCH, get(watch::watch_workspace)),
        // CSV, not JSON: no body decoder.
        plain(Method::POST, IMPORT, post(h::import_csv)),
        // Connections: a share reads (and ignores) its body.
        plain(
            Method::GET,
            Connections::LIST,
            get(h::list_resources::<Connections>),
        ),
        plain(
            Method::PUT,
            Connections::BASE,
            put(h::create_resource::<Connections>),
        ),
        plain(
            Method::GET,
            Connections::ACCESS,
            get(h::list_access::<Connections>),
        ),
        plain(
            Method::PUT,
            Connections::GROUP,
            put(h::share_connection_group),
        ),
        plain(
            Method::DELETE,
            Connections::GROUP,
            delete(h::unshare_group::<Connections>),
        ),
        plain(
            Method::PUT,
            Connections::USER,
            put(h::share_connection_user),
        ),
        plain(
            Method::DELETE,
            Connections::USER,
            delete(h::unshare_user::<Connections>),
        ),
        // Workbooks: a share names the role in its body.
        plain(
            Method::GET,
            Workbooks::LIST,
            get(h::list_resources::<Workbooks>),
        ),
        plain(
            Method::PUT,
            Workbooks::BASE,
            put(h::create_resource::<Workbooks>),
        ),
        plain(
            Method::GET,
            Workbooks::ACCESS,
            get(h::list_access::<Workbooks>),
        ),
        with_body::<wire::Share, _, _>(Method::PUT, Workbooks::GROUP, put, h::share_workbook_group),
        plain(
            Method::DELETE,
            Workbooks::GROUP,
            delete(h::unshare_group::<Workbooks>),
        ),
        with_body::<wire::Share, _, _>(Method::PUT, Workbooks::USER, put, h::share_workbook_user),
        plain(
            Method::DELETE,
            Workbooks::USER,
            delete(h::unshare_user::<Workbooks>),
        ),
    ]
}

/// A route whose handler reads no JSON body.
fn plain(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Endpoint {
    Endpoint {
        method,
        path,
        handler,
        decode: None,
    }
}

/// A route whose handler reads the JSON body `B`; its decoder decodes `B`. The bound
/// `X: EndsWithBody<B>` makes it a compile error for the handler to read another body
/// than the decoder does.
fn with_body<B, H, X>(
    method: Method,
    path: &'static str,
    verb: fn(H) -> MethodRouter<AppState>,
    handler: H,
) -> Endpoint
where
    B: WireBody,
    H: Handler<X, AppState>,
    X: EndsWithBody<B>,
{
    Endpoint {
        method,
        path,
        handler: verb(handler),
        decode: Some(|bytes| wire::decode::<B>(bytes).map(drop).map_err(ApiError::from)),
    }
}

/// Implemented by the extractor list of an axum handler (a marker type, then each
/// argument's type) whose last argument is [`Body<B>`].
trait EndsWithBody<B> {}

impl<M, A, B: WireBody> EndsWithBody<B> for (M, A, Body<B>) {}
impl<M, A, C, B: WireBody> EndsWithBody<B> for (M, A, C, Body<B>) {}
impl<M, A, C, D, B: WireBody> EndsWithBody<B> for (M, A, C, D, Body<B>) {}

/// Runs the synchronous `work` on the blocking pool (storage reads and fsync'd writes).
async fn outcome<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Groups) -> Result<T, GroupsError> + Send + 'static,
) -> Result<Result<T, GroupsError>, ApiError> {
    let groups = state.groups.clone();
    Ok(tokio::task::spawn_blocking(move || work(&groups)).await?)
}

/// [`outcome`], with a refusal as the API's error.
async fn call<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Groups) -> Result<T, GroupsError> + Send + 'static,
) -> Result<T, ApiError> {
    outcome(state, work).await?.map_err(ApiError::from)
}

// ---------------------------------------------------------------------------------------
// Extractors

/// The `Pemba-Actor` header: the user id a request acts for (401 when missing or invalid).
impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(ACTOR_HEADER).iter();
        let value = values.next().ok_or_else(|| {
            ApiError::unauthenticated("missing `Pemba-Actor: USER_ID` header naming who acts")
        })?;
        // Behind a proxy that appends headers, "the first one wins" would let a client
        // name any actor: more than one is refused, never resolved.
        if values.next().is_some() {
            return Err(ApiError::invalid(
                "more than one `Pemba-Actor` header: send exactly one, naming who acts",
            ));
        }
        let id = value.to_str().map(str::trim).unwrap_or_default();
        Actor::new(id).ok_or_else(|| {
            ApiError::unauthenticated(
                "the `Pemba-Actor` header must be a user id: 1 to 1024 letters, digits or `/_|-=+`",
            )
        })
    }
}

/// Path parameters, with rejections in the API's error shape.
struct Ids<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(ids)| Ids(ids))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// A JSON body `B`, read whole and decoded into its command input. A body that does not
/// decode is not refused here: the command refuses it after authorizing the actor, so an
/// outsider learns nothing from it. Reading still fails at once (413, 408, 400).
struct Body<B: WireBody>(Input<B::Input>);

impl<B> FromRequest<AppState> for Body<B>
where
    B: WireBody,
    B::Input: Send,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = crate::error::read_body(request, state).await?;
        Ok(Body(wire::decode::<B>(&bytes)))
    }
}

/// A body read whole and not decoded (CSV, or a body the route ignores).
struct RawBody(Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        crate::error::read_body(request, state).await.map(RawBody)
    }
}
