//! [`ApiError`]: every failure a route returns, as `{code, message, details}` JSON with the
//! HTTP status grpc-gateway gives its gRPC code, and [`ApiJson`], the body extractor whose
//! rejections use that shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pemba_engine::{
    EngineError, InvalidError, QueryError, SchemaWriteError, StorageError, TokenError, WriteError,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::AppState;

/// gRPC status codes used by the API (the numbers clients see in `code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// 3: the request is malformed or names something wrong.
    InvalidArgument = 3,
    /// 4: the request did not finish in time.
    DeadlineExceeded = 4,
    /// 5: the thing asked for does not exist.
    NotFound = 5,
    /// 6: a create found the relationship present.
    AlreadyExists = 6,
    /// 7: authenticated but not allowed.
    PermissionDenied = 7,
    /// 8: a server-wide capacity is used up.
    ResourceExhausted = 8,
    /// 9: a precondition or constraint did not hold.
    FailedPrecondition = 9,
    /// 12: the server does not do this.
    Unimplemented = 12,
    /// 13: something broke inside the server.
    Internal = 13,
    /// 14: the datastore or the revision asked for cannot be reached now; retry.
    Unavailable = 14,
    /// 16: no valid credentials.
    Unauthenticated = 16,
}

/// An error answer: status, gRPC code and a one-line message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// gRPC code.
    pub code: Code,
    /// What went wrong, for the client.
    pub message: String,
}

/// The JSON body of an error (also the `error` member of a streamed line).
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// gRPC code.
    pub code: u8,
    /// Message.
    pub message: String,
    /// Always empty; present for grpc-gateway compatibility.
    pub details: Vec<serde_json::Value>,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400, code 3.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, message)
    }

    /// 404, code 5.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, message)
    }

    /// 401, code 16.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Code::Unauthenticated, message)
    }

    /// 403, code 7.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, Code::PermissionDenied, message)
    }

    /// 413, code 3: a request body over the size limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidArgument,
            message,
        )
    }

    /// 408, code 4: the client did not send its request body in time.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            Code::DeadlineExceeded,
            format!(
                "the request body did not arrive within the limit of {} ms",
                limit.as_millis()
            ),
        )
    }

    /// 504, code 4: no answer within the request timeout.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            Code::DeadlineExceeded,
            format!(
                "no answer within the request timeout of {} ms; a write may still be applied",
                limit.as_millis()
            ),
        )
    }

    /// 405, code 12: the route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            "this route does not answer this method (see the README's route table)",
        )
    }

    /// 429, code 8.
    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::ResourceExhausted,
            message,
        )
    }

    /// 500, code 13, with a fixed message: the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            "internal error; see the server log",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code as u8,
            message: self.message.clone(),
            details: Vec::new(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code as u8)
    }
}

impl ApiError {
    /// 409, code 9: a condition on stored state did not hold.
    fn failed_precondition(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            Code::FailedPrecondition,
            error.to_string(),
        )
    }
}

// The one place engine errors become HTTP statuses: the status follows the variant, the
// message is the error's own, and storage failures are hidden behind a 500.

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                error.to_string(),
            ),
            _ => ApiError::internal(error),
        }
    }
}

impl From<InvalidError> for ApiError {
    fn from(error: InvalidError) -> Self {
        ApiError::invalid(error.to_string())
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        ApiError::invalid(error.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid(invalid) => invalid.into(),
            QueryError::Token(token) => token.into(),
            QueryError::NoSchema => ApiError::failed_precondition(error),
            // Named as the API spells the field, not as the engine's error does.
            QueryError::SnapshotUnavailable { wanted, newest } => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                format!(
                    "consistency.atExactSnapshot: only the newest revision (`{}`) can be read \
                     exactly, not `{}` (no history is kept); use `atLeastAsFresh`",
                    newest.token(),
                    wanted.token()
                ),
            ),
            QueryError::Stale { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                error.to_string(),
            ),
            QueryError::Storage(storage) => storage.into(),
            _ => ApiError::internal(error),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Invalid(invalid) => invalid.into(),
            WriteError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, Code::AlreadyExists, error.to_string())
            }
            WriteError::NoSchema
            | WriteError::PreconditionFailed { .. }
            | WriteError::MetadataChanged { .. }
            | WriteError::OverLimit { .. } => ApiError::failed_precondition(error),
            WriteError::Storage(storage) => storage.into(),
            _ => ApiError::internal(error),
        }
    }
}

impl From<SchemaWriteError> for ApiError {
    fn from(error: SchemaWriteError) -> Self {
        match error {
            SchemaWriteError::Invalid(_) => ApiError::invalid(error.to_string()),
            SchemaWriteError::WouldOrphan { .. } => ApiError::failed_precondition(error),
            SchemaWriteError::Storage(storage) => storage.into(),
            _ => ApiError::internal(error),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Storage(error) => error.into(),
            EngineError::Query(error) => error.into(),
            EngineError::Write(error) => error.into(),
            EngineError::Schema(error) => error.into(),
            EngineError::Syntax(error) => ApiError::invalid(error.to_string()),
            _ => ApiError::internal(error),
        }
    }
}

impl From<crate::groups::GroupsError> for ApiError {
    /// The one place user-groups refusals get a status: 404 unknown, 403 not allowed, 409
    /// a conflict with what is stored or a schema without the feature's names (as for a
    /// store without a schema), 422 an input the feature refuses; internals are logged.
    fn from(error: crate::groups::GroupsError) -> Self {
        use crate::groups::GroupsError as E;
        let message = error.to_string();
        match error {
            E::NotFound { .. } => ApiError::not_found(message),
            E::NotAMember { .. } | E::Forbidden { .. } => ApiError::forbidden(message),
            E::Conflict(_) | E::SchemaLacks { .. } => {
                ApiError::new(StatusCode::CONFLICT, Code::FailedPrecondition, message)
            }
            E::Invalid(_)
            | E::Ineligible { .. }
            | E::Unreadable { .. }
            | E::ImportRefused { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::InvalidArgument,
                message,
            ),
            E::Engine(error) => error.into(),
            _ => ApiError::internal(message),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// A JSON request body. Any content type is accepted (so `curl -d` works), an empty body
/// reads as `{}`, and every rejection is an [`ApiError`]: 413 over the size limit, 400
/// naming the field otherwise.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// Decodes a request body as [`ApiJson`] does: an empty (or all-whitespace) body reads as
/// `{}`; anything that is not the expected JSON is a 400 naming what is wrong.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    decode_json_borrowed(bytes)
}

/// [`decode_json`] into a type that may borrow strings from `bytes`.
pub fn decode_json_borrowed<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text)
        .map_err(|error| ApiError::invalid(format!("invalid request body: {error}")))
}

/// Reads a whole request body within [`crate::Limits::body_timeout`]: 408 when the client
/// is too slow, 413 over the size limit, 400 when the connection fails.
pub async fn read_body(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.limits.body_timeout;
    let Ok(read) = tokio::time::timeout(limit, Bytes::from_request(request, state)).await else {
        return Err(ApiError::body_timeout(limit));
    };
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "request body exceeds the limit of {} bytes ({} for importbulk)",
                state.limits.max_body_bytes, state.limits.max_import_body_bytes
            ))
        } else {
            ApiError::invalid(format!(
                "cannot read request body: {}",
                rejection.body_text()
            ))
        }
    })
}
