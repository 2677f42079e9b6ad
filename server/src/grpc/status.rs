//! Engine and API errors as gRPC statuses, with the codes SpiceDB v1 gives and its
//! `ErrorInfo` reason (domain `authzed.com`) in the details where SpiceDB sets one.
//!
//! SpiceDB differs from the HTTP mapping in a few places, and clients rely on it: a type,
//! relation or permission the schema does not define is `FAILED_PRECONDITION`, not
//! `INVALID_ARGUMENT`; a disallowed subject type stays `INVALID_ARGUMENT`.

use pemba_engine::{EngineError, InvalidError, QueryError, SchemaWriteError, WriteError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{self, ApiError};

/// The `ErrorInfo` domain SpiceDB uses.
pub const DOMAIN: &str = "authzed.com";

/// SpiceDB's `ErrorReason` names this server gives.
pub mod reason {
    /// The schema text did not parse or compile.
    pub const SCHEMA_PARSE_ERROR: &str = "ERROR_REASON_SCHEMA_PARSE_ERROR";
    /// An object type the schema does not define.
    pub const UNKNOWN_DEFINITION: &str = "ERROR_REASON_UNKNOWN_DEFINITION";
    /// A relation or permission the type does not have.
    pub const UNKNOWN_RELATION_OR_PERMISSION: &str = "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION";
    /// More updates than one write allows.
    pub const TOO_MANY_UPDATES_IN_REQUEST: &str = "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST";
    /// More preconditions than one write or delete allows.
    pub const TOO_MANY_PRECONDITIONS_IN_REQUEST: &str =
        "ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST";
    /// A precondition did not hold.
    pub const WRITE_OR_DELETE_PRECONDITION_FAILURE: &str =
        "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE";
    /// A subject type the relation does not allow.
    pub const INVALID_SUBJECT_TYPE: &str = "ERROR_REASON_INVALID_SUBJECT_TYPE";
    /// Two updates of one write name the same relationship.
    pub const UPDATES_ON_SAME_RELATIONSHIP: &str = "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP";
    /// A relationship written to a permission.
    pub const CANNOT_UPDATE_PERMISSION: &str = "ERROR_REASON_CANNOT_UPDATE_PERMISSION";
    /// A cursor this request did not make.
    pub const INVALID_CURSOR: &str = "ERROR_REASON_INVALID_CURSOR";
    /// A delete matching more than its limit, without partial deletion allowed.
    pub const TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE: &str =
        "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE";
    /// A create of a relationship that exists.
    pub const ATTEMPT_TO_RECREATE_RELATIONSHIP: &str =
        "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP";
    /// More checks than one bulk check allows.
    pub const TOO_MANY_CHECKS_IN_REQUEST: &str = "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST";
    /// A page size over the server's limit.
    pub const EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT: &str =
        "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT";
    /// A relationship filter this request cannot use.
    pub const INVALID_FILTER: &str = "ERROR_REASON_INVALID_FILTER";
    /// A precondition without a filter.
    pub const EMPTY_PRECONDITION: &str = "ERROR_REASON_EMPTY_PRECONDITION";
}

/// A status with `code`, `message` and, when given, SpiceDB's `ErrorInfo` reason.
pub fn with_reason(code: Code, message: impl Into<String>, reason: Option<&str>) -> Status {
    let message = message.into();
    match reason {
        None => Status::new(code, message),
        Some(reason) => Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, DOMAIN, std::collections::HashMap::new()),
        ),
    }
}

/// `INVALID_ARGUMENT` with a reason.
pub fn invalid(message: impl Into<String>, reason: &str) -> Status {
    with_reason(Code::InvalidArgument, message, Some(reason))
}

/// `UNIMPLEMENTED`: caveats, expiration and other SpiceDB features Pemba refuses.
pub fn unimplemented(message: impl Into<String>) -> Status {
    Status::unimplemented(message)
}

/// The gRPC code of an HTTP-layer error (which carries its gRPC code already).
fn code_of(code: error::Code) -> Code {
    match code {
        error::Code::InvalidArgument => Code::InvalidArgument,
        error::Code::DeadlineExceeded => Code::DeadlineExceeded,
        error::Code::NotFound => Code::NotFound,
        error::Code::AlreadyExists => Code::AlreadyExists,
        error::Code::PermissionDenied => Code::PermissionDenied,
        error::Code::ResourceExhausted => Code::ResourceExhausted,
        error::Code::FailedPrecondition => Code::FailedPrecondition,
        error::Code::Unimplemented => Code::Unimplemented,
        error::Code::Internal => Code::Internal,
        error::Code::Unauthenticated => Code::Unauthenticated,
        error::Code::Unavailable => Code::Unavailable,
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        Status::new(code_of(error.code), error.message)
    }
}

/// A request fault the schema found: SpiceDB's code and reason for each.
pub fn of_invalid(error: InvalidError) -> Status {
    let message = error.to_string();
    match error {
        InvalidError::UnknownType { .. } => with_reason(
            Code::FailedPrecondition,
            message,
            Some(reason::UNKNOWN_DEFINITION),
        ),
        InvalidError::UnknownMember { .. }
        | InvalidError::UnknownRelation { .. }
        | InvalidError::UnknownSubjectRelation { .. } => with_reason(
            Code::FailedPrecondition,
            message,
            Some(reason::UNKNOWN_RELATION_OR_PERMISSION),
        ),
        InvalidError::NotARelation { .. } => invalid(message, reason::CANNOT_UPDATE_PERMISSION),
        InvalidError::SubjectNotAllowed { .. } => invalid(message, reason::INVALID_SUBJECT_TYPE),
        InvalidError::DuplicateInBatch(_) => invalid(message, reason::UPDATES_ON_SAME_RELATIONSHIP),
        InvalidError::EmptyDeleteFilter | InvalidError::IdWithoutType => {
            invalid(message, reason::INVALID_FILTER)
        }
        _ => Status::invalid_argument(message),
    }
}

/// A failed question.
pub fn of_query(error: QueryError) -> Status {
    match error {
        QueryError::Invalid(invalid) => of_invalid(invalid),
        other => ApiError::from(other).into(),
    }
}

/// A failed write or delete.
pub fn of_write(error: WriteError) -> Status {
    let message = error.to_string();
    match error {
        WriteError::Invalid(invalid) => of_invalid(invalid),
        WriteError::PreconditionFailed { .. } => with_reason(
            Code::FailedPrecondition,
            message,
            Some(reason::WRITE_OR_DELETE_PRECONDITION_FAILURE),
        ),
        WriteError::AlreadyExists(_) => with_reason(
            Code::AlreadyExists,
            message,
            Some(reason::ATTEMPT_TO_RECREATE_RELATIONSHIP),
        ),
        WriteError::OverLimit { .. } => invalid(
            message,
            reason::TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE,
        ),
        other => ApiError::from(other).into(),
    }
}

/// A failed schema write: a schema that does not compile is SpiceDB's parse error.
pub fn of_schema_write(error: SchemaWriteError) -> Status {
    match error {
        SchemaWriteError::Invalid(_) => invalid(error.to_string(), reason::SCHEMA_PARSE_ERROR),
        other => ApiError::from(other).into(),
    }
}

/// Any engine error.
pub fn of_engine(error: EngineError) -> Status {
    match error {
        EngineError::Query(error) => of_query(error),
        EngineError::Write(error) => of_write(error),
        EngineError::Schema(error) => of_schema_write(error),
        other => ApiError::from(other).into(),
    }
}

/// A blocking task that did not finish (a panic in the engine): internal, logged.
pub fn of_join(error: tokio::task::JoinError) -> Status {
    ApiError::from(error).into()
}
