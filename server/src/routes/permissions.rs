//! `/v1/permissions/*`: check, bulk check, lookup resources and subjects, expand.
//!
//! Checks take microseconds and run directly on the runtime. Lookups with a page limit are
//! bounded and run directly too; an unlimited lookup may return a whole type, so it is
//! computed on the blocking pool, once, at one revision, and streamed.
//!
//! One piece because the five routes share the wire types of SpiceDB's
//! PermissionsService (subjects, cursors, permissionship); most of the length is those types.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use pemba_engine::{
    validate_object, CheckArgs, ExpandKind, ExpandNode, FoundSubjectRef, Names, Page,
    ResourceLookup, SubjectLookup,
};
use serde::{Deserialize, Serialize};

use super::Route;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::stream;
use crate::wire::{self, ObjectReference, SubjectReference, Token, WireConsistency};
use crate::AppState;

/// The routes of this group.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            decode: Some(|body| decode_check(body).map(drop)),
            ..Route::post::<CheckRequestBody>(CHECK_PATH, post(check))
        },
        Route::post::<CheckBulkRequest>("/v1/permissions/checkbulk", post(check_bulk)),
        Route::post::<LookupResourcesRequest>("/v1/permissions/resources", post(lookup_resources)),
        Route::post::<LookupSubjectsRequest>("/v1/permissions/subjects", post(lookup_subjects)),
        Route::post::<ExpandRequest>("/v1/permissions/expand", post(expand)),
    ]
}

/// The check route's path, which [`crate::service::HttpApi`] answers without the router.
pub const CHECK_PATH: &str = "/v1/permissions/check";

const HAS: &str = "PERMISSIONSHIP_HAS_PERMISSION";
const HAS_NOT: &str = "PERMISSIONSHIP_NO_PERMISSION";
/// Lookups use SpiceDB's `LookupPermissionship` enum.
const LOOKUP_HAS: &str = "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION";

fn permissionship(allowed: bool) -> &'static str {
    if allowed {
        HAS
    } else {
        HAS_NOT
    }
}

fn refuse_context(context: Option<&serde_json::Value>, field: &str) -> Result<(), ApiError> {
    match context {
        Some(value) if !value.is_null() && value != &serde_json::json!({}) => Err(
            ApiError::invalid(format!("{field}: caveat context is not supported")),
        ),
        _ => Ok(()),
    }
}

/// `CheckPermissionRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckRequestBody {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// Resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// Permission or relation.
    #[serde(default)]
    pub permission: String,
    /// Subject.
    #[serde(default)]
    pub subject: SubjectReference,
    /// Caveat context (refused unless empty).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
    /// Ignored.
    #[serde(default)]
    pub with_tracing: Option<bool>,
}

/// `CheckPermissionResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    /// The revision answered at.
    pub checked_at: Token,
    /// `PERMISSIONSHIP_HAS_PERMISSION` or `PERMISSIONSHIP_NO_PERMISSION`.
    pub permissionship: String,
}

/// The check request as the handler reads it: [`CheckRequestBody`] with its strings
/// borrowed from the request body (copied only when they hold JSON escapes). The types
/// carry the owned ones' names, so decoding errors read the same.
mod borrowed {
    use std::borrow::Cow;

    use serde::Deserialize;

    use crate::wire::WireConsistency;

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub(super) struct ObjectReference<'a> {
        #[serde(default, borrow)]
        pub(super) object_type: Cow<'a, str>,
        #[serde(default, borrow)]
        pub(super) object_id: Cow<'a, str>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub(super) struct SubjectReference<'a> {
        #[serde(default, borrow)]
        pub(super) object: ObjectReference<'a>,
        #[serde(default, borrow)]
        pub(super) optional_relation: Cow<'a, str>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub(super) struct CheckRequestBody<'a> {
        #[serde(default)]
        pub(super) consistency: Option<WireConsistency>,
        #[serde(default, borrow)]
        pub(super) resource: ObjectReference<'a>,
        #[serde(default, borrow)]
        pub(super) permission: Cow<'a, str>,
        #[serde(default, borrow)]
        pub(super) subject: SubjectReference<'a>,
        #[serde(default)]
        pub(super) context: Option<serde_json::Value>,
        #[serde(default)]
        #[expect(dead_code, reason = "accepted and ignored, as SpiceDB without tracing")]
        pub(super) with_tracing: Option<bool>,
    }
}

/// Decodes a check body as the check route does (borrowing its strings).
///
/// A body that is UTF-8 (every real one) is decoded as `&str`: serde_json then skips the
/// UTF-8 check it otherwise runs on every string, a fifth of the decoding's instructions.
/// Same parser, so the same answer and errors; anything else, and the empty body, take
/// [`crate::error::decode_json_borrowed`].
fn decode_check(body: &[u8]) -> Result<borrowed::CheckRequestBody<'_>, ApiError> {
    match std::str::from_utf8(body) {
        Ok(text) if !text.trim_ascii().is_empty() => serde_json::from_str(text)
            .map_err(|error| ApiError::invalid(format!("invalid request body: {error}"))),
        _ => crate::error::decode_json_borrowed(body),
    }
}

/// The engine's view of a check request, borrowed from it, with the errors
/// [`wire::object`] and [`wire::subject`] give (`resource: ...`, `subject: ...`).
fn check_args<'a>(body: &'a borrowed::CheckRequestBody<'a>) -> Result<CheckArgs<'a>, ApiError> {
    let resource = &body.resource;
    validate_object(&resource.object_type, &resource.object_id, false)
        .map_err(|e| ApiError::invalid(format!("resource: {e}")))?;
    let subject = &body.subject;
    let relation = Some(&*subject.optional_relation).filter(|r| !r.is_empty() && *r != "...");
    match relation {
        None => validate_object(&subject.object.object_type, &subject.object.object_id, true)
            .map_err(|e| ApiError::invalid(format!("subject: {e}")))?,
        // A userset subject also has its relation's name checked; rare enough to pay for
        // the owned form.
        Some(_) => {
            wire::subject(
                &SubjectReference {
                    object: ObjectReference {
                        object_type: subject.object.object_type.to_string(),
                        object_id: subject.object.object_id.to_string(),
                    },
                    optional_relation: subject.optional_relation.to_string(),
                },
                "subject",
            )?;
        }
    }
    Ok(CheckArgs {
        resource_type: &resource.object_type,
        resource_id: &resource.object_id,
        permission: &body.permission,
        subject_type: &subject.object.object_type,
        subject_id: &subject.object.object_id,
        subject_relation: relation,
    })
}

/// `CheckPermissionResponse` as written: the one allocation a check answer needs is its
/// body, built here and handed to hyper, which sends head and body in one `writev`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckResponseOut {
    checked_at: Token,
    permissionship: &'static str,
}

async fn check(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let bytes = crate::error::read_body(request, &state).await?;
    answer_check(&state, &bytes)
}

/// The answer to a check whose body is `bytes`: the whole of the check route once its body
/// is read, shared by its handler and by [`crate::service::HttpApi`]'s direct path.
pub(crate) fn answer_check(state: &AppState, bytes: &[u8]) -> Result<Response, ApiError> {
    let body = decode_check(bytes)?;
    refuse_context(body.context.as_ref(), "context")?;
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let args = check_args(&body)?;
    let answer = state.engine.check(consistency, args)?;
    let mut out = Vec::with_capacity(128);
    serde_json::to_writer(
        &mut out,
        &CheckResponseOut {
            checked_at: Token::revision(answer.revision),
            permissionship: permissionship(answer.value),
        },
    )
    .map_err(ApiError::internal)?;
    // Built directly: `(headers, body).into_response()` costs twice the instructions for
    // the same head.
    let mut response = Response::new(axum::body::Body::from(out));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// One item of a bulk check (also echoed back as `request`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckBulkItem {
    /// Resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// Permission.
    #[serde(default)]
    pub permission: String,
    /// Subject.
    #[serde(default)]
    pub subject: SubjectReference,
    /// Caveat context (refused unless empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

/// `CheckBulkPermissionsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckBulkRequest {
    /// Consistency for every item.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// The checks.
    #[serde(default)]
    pub items: Vec<CheckBulkItem>,
    /// Ignored.
    #[serde(default)]
    pub with_tracing: Option<bool>,
}

/// `CheckBulkPermissionsResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckBulkResponse {
    /// The one revision every item was answered at.
    pub checked_at: Token,
    /// One pair per item, in request order.
    pub pairs: Vec<CheckBulkPair>,
}

/// An item and its answer or error.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckBulkPair {
    /// The item as asked.
    pub request: CheckBulkItem,
    /// The answer, when the item was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<CheckBulkAnswer>,
    /// The error, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `{"permissionship": ...}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckBulkAnswer {
    /// `PERMISSIONSHIP_HAS_PERMISSION` or `PERMISSIONSHIP_NO_PERMISSION`.
    pub permissionship: String,
}

/// One answered item, borrowing the request it echoes (no copy of the request per item).
#[derive(Serialize)]
struct CheckBulkPairOut<'a> {
    request: &'a CheckBulkItem,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<CheckBulkAnswerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

#[derive(Serialize)]
struct CheckBulkAnswerOut {
    permissionship: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckBulkResponseOut<'a> {
    checked_at: Token,
    pairs: Vec<CheckBulkPairOut<'a>>,
}

/// The engine's view of bulk item `i`, borrowed from the request; field names in errors
/// are formatted only when there is an error.
fn bulk_item_args(i: usize, item: &CheckBulkItem) -> Result<CheckArgs<'_>, ApiError> {
    if item
        .context
        .as_ref()
        .is_some_and(|c| !c.is_null() && c != &serde_json::json!({}))
    {
        return Err(ApiError::invalid(format!(
            "items[{i}].context: caveat context is not supported"
        )));
    }
    let resource = &item.resource;
    validate_object(&resource.object_type, &resource.object_id, false)
        .map_err(|e| ApiError::invalid(format!("items[{i}].resource: {e}")))?;
    let subject = &item.subject;
    let relation =
        Some(subject.optional_relation.as_str()).filter(|r| !r.is_empty() && *r != "...");
    validate_object(
        &subject.object.object_type,
        &subject.object.object_id,
        relation.is_none(),
    )
    .map_err(|e| ApiError::invalid(format!("items[{i}].subject: {e}")))?;
    Ok(CheckArgs {
        resource_type: &resource.object_type,
        resource_id: &resource.object_id,
        permission: &item.permission,
        subject_type: &subject.object.object_type,
        subject_id: &subject.object.object_id,
        subject_relation: relation,
    })
}

/// Checks every item of a bulk check that decoded, in one engine call at one revision,
/// and gives back one answer per item in request order: the item's own decoding error, or
/// its engine answer (`from_query` turns an engine error into the protocol's). Both
/// protocols' bulk checks assemble their answers from this.
pub(crate) fn check_each<E>(
    engine: &pemba_engine::Engine,
    consistency: pemba_engine::Consistency,
    items: Vec<Result<CheckArgs<'_>, E>>,
    from_query: impl Fn(pemba_engine::QueryError) -> E,
    too_few: impl Fn() -> E,
) -> Result<pemba_engine::Answer<Vec<Result<bool, E>>>, pemba_engine::QueryError> {
    let answered = engine.check_bulk(
        consistency,
        items.iter().filter_map(|item| item.as_ref().ok().copied()),
    )?;
    let mut answers = answered.value.into_iter();
    let value = items
        .into_iter()
        .map(|item| match item {
            Err(error) => Err(error),
            Ok(_) => match answers.next() {
                Some(Ok(allowed)) => Ok(allowed),
                Some(Err(error)) => Err(from_query(error)),
                None => Err(too_few()),
            },
        })
        .collect();
    Ok(pemba_engine::Answer {
        value,
        revision: answered.revision,
    })
}

async fn check_bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CheckBulkRequest>,
) -> Result<Response, ApiError> {
    let max = state.limits.max_checkbulk_items;
    if body.items.len() > max {
        return Err(ApiError::invalid(format!(
            "items: {} items exceed the limit of {max} per checkbulk request",
            body.items.len()
        )));
    }
    let consistency = wire::consistency(body.consistency.as_ref())?;
    // Items that do not even parse get their error now; the rest go to the engine together.
    let items: Vec<Result<CheckArgs<'_>, ApiError>> = body
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| bulk_item_args(i, item))
        .collect();
    let answered = check_each(&state.engine, consistency, items, ApiError::from, || {
        ApiError::internal("bulk check answered too few items")
    })?;
    let revision = answered.revision;
    let pairs = body
        .items
        .iter()
        .zip(answered.value)
        .map(|(request, answer)| match answer {
            Ok(allowed) => CheckBulkPairOut {
                request,
                item: Some(CheckBulkAnswerOut {
                    permissionship: permissionship(allowed),
                }),
                error: None,
            },
            Err(error) => CheckBulkPairOut {
                request,
                item: None,
                error: Some(error.body()),
            },
        })
        .collect();
    let body = serde_json::to_vec(&CheckBulkResponseOut {
        checked_at: Token::revision(revision),
        pairs,
    })
    .map_err(ApiError::internal)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `LookupResourcesRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupResourcesRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// The type of the resources to find.
    #[serde(default)]
    pub resource_object_type: String,
    /// Permission.
    #[serde(default)]
    pub permission: String,
    /// Who asks.
    #[serde(default)]
    pub subject: SubjectReference,
    /// Caveat context (refused unless empty).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
    /// At most this many results (0 or absent: all).
    #[serde(default)]
    pub optional_limit: Option<u64>,
    /// Continue after this cursor.
    #[serde(default)]
    pub optional_cursor: Option<Token>,
}

/// One `LookupResourcesResponse` line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupResourcesResult {
    /// Revision answered at.
    pub looked_up_at: Token,
    /// A resource id.
    pub resource_object_id: String,
    /// Always `LOOKUP_PERMISSIONSHIP_HAS_PERMISSION`.
    pub permissionship: String,
    /// Pass as `optionalCursor` to continue after this result.
    pub after_result_cursor: Token,
}

pub(crate) const RESOURCES_CURSOR: &str = "lr";
pub(crate) const SUBJECTS_CURSOR: &str = "ls";

async fn lookup_resources(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LookupResourcesRequest>,
) -> Result<Response, ApiError> {
    refuse_context(body.context.as_ref(), "context")?;
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let subject = wire::subject(&body.subject, "subject")?;
    let limit = wire::page_size(
        body.optional_limit,
        state.limits.max_page_size,
        "optionalLimit",
    )?;
    let after = wire::decode_cursor(body.optional_cursor.as_ref(), RESOURCES_CURSOR)?;
    let engine = state.engine.clone();
    let lookup = move || {
        engine.lookup_resources(
            consistency,
            &ResourceLookup {
                resource_type: &body.resource_object_type,
                permission: &body.permission,
                subject: &subject,
                page: Page {
                    after: after.as_deref(),
                    limit,
                },
            },
        )
    };
    let found = if limit.is_some() {
        lookup()?
    } else {
        tokio::task::spawn_blocking(lookup).await??
    };
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let mut writer = LineWriter::new(found.revision);
        let written = lines.written(found.value.iter(), |frame, id| {
            writer.resource(frame, id).map_err(|_| stream::Gone)
        });
        // An error means the client went away: nothing more to do.
        let _ = written.await;
    }))
}

/// Writes lookup answers' lines straight from the engine's borrowed ids, byte for byte as
/// serde writes `{"result": ...}` of [`LookupResourcesResult`] and [`LookupSubjectsResult`]
/// (the tests compare the two): building those values cost four allocations per line,
/// which made up most of a 12,500-line answer's time.
struct LineWriter {
    /// `{"token":"..."}` of the revision every line was answered at.
    token: Vec<u8>,
    /// Scratch for a cursor's text, `kind:id`, and its encoding, reused from line to line.
    cursor: Vec<u8>,
    encoded: String,
}

impl LineWriter {
    fn new(revision: pemba_engine::Revision) -> Self {
        LineWriter {
            token: serde_json::to_vec(&Token::revision(revision)).unwrap_or_default(),
            cursor: Vec::new(),
            encoded: String::new(),
        }
    }

    /// One `LookupResourcesResponse` line.
    fn resource(&mut self, out: &mut Vec<u8>, id: &str) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"result\":{\"lookedUpAt\":");
        out.extend_from_slice(&self.token);
        out.extend_from_slice(b",\"resourceObjectId\":");
        serde_json::to_writer(&mut *out, id)?;
        out.extend_from_slice(b",\"permissionship\":\"");
        out.extend_from_slice(LOOKUP_HAS.as_bytes());
        out.extend_from_slice(b"\",\"afterResultCursor\":");
        self.cursor(out, RESOURCES_CURSOR, id);
        out.extend_from_slice(b"}}\n");
        Ok(())
    }

    /// One `LookupSubjectsResponse` line.
    fn subject(
        &mut self,
        out: &mut Vec<u8>,
        subject: FoundSubjectRef<'_>,
    ) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"result\":{\"lookedUpAt\":");
        out.extend_from_slice(&self.token);
        out.extend_from_slice(b",\"subject\":");
        resolved(out, subject.id)?;
        out.extend_from_slice(b",\"excludedSubjects\":");
        list(out, subject.excluded, resolved)?;
        out.extend_from_slice(b",\"subjectObjectId\":");
        serde_json::to_writer(&mut *out, subject.id)?;
        out.extend_from_slice(b",\"excludedSubjectIds\":");
        list(out, subject.excluded, |out, id| {
            serde_json::to_writer(out, id)
        })?;
        out.extend_from_slice(b",\"permissionship\":\"");
        out.extend_from_slice(LOOKUP_HAS.as_bytes());
        out.extend_from_slice(b"\",\"afterResultCursor\":");
        self.cursor(out, SUBJECTS_CURSOR, subject.id);
        out.extend_from_slice(b"}}\n");
        Ok(())
    }

    /// `{"token":"..."}` of [`wire::encode_cursor`]`(kind, id)`. Base64 has no characters
    /// JSON escapes, so the token goes in as it is.
    fn cursor(&mut self, out: &mut Vec<u8>, kind: &str, id: &str) {
        self.encoded.clear();
        wire::encode_cursor_into(kind, id, &mut self.cursor, &mut self.encoded);
        out.extend_from_slice(b"{\"token\":\"");
        out.extend_from_slice(self.encoded.as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// A JSON array of `write` of each id.
fn list(
    out: &mut Vec<u8>,
    ids: &Names,
    mut write: impl FnMut(&mut Vec<u8>, &str) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, id)?;
    }
    out.push(b']');
    Ok(())
}

/// A `ResolvedSubject` of `id`.
fn resolved(out: &mut Vec<u8>, id: &str) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"subjectObjectId\":");
    serde_json::to_writer(&mut *out, id)?;
    out.extend_from_slice(b",\"permissionship\":\"");
    out.extend_from_slice(LOOKUP_HAS.as_bytes());
    out.extend_from_slice(b"\"}");
    Ok(())
}

/// `LookupSubjectsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupSubjectsRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// The resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// Permission.
    #[serde(default)]
    pub permission: String,
    /// The subject type to find.
    #[serde(default)]
    pub subject_object_type: String,
    /// Find usersets `type#relation` instead of objects.
    #[serde(default)]
    pub optional_subject_relation: String,
    /// Caveat context (refused unless empty).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
    /// At most this many results (0 or absent: all).
    #[serde(default)]
    pub optional_concrete_limit: Option<u64>,
    /// Continue after this cursor.
    #[serde(default)]
    pub optional_cursor: Option<Token>,
    /// `WILDCARD_OPTION_INCLUDE_WILDCARDS` (default) or `WILDCARD_OPTION_EXCLUDE_WILDCARDS`.
    #[serde(default)]
    pub wildcard_option: Option<String>,
}

/// SpiceDB's `ResolvedSubject`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSubject {
    /// The subject id, or `*`.
    pub subject_object_id: String,
    /// Always `LOOKUP_PERMISSIONSHIP_HAS_PERMISSION`.
    pub permissionship: String,
}

/// One `LookupSubjectsResponse` line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupSubjectsResult {
    /// Revision answered at.
    pub looked_up_at: Token,
    /// The subject.
    pub subject: ResolvedSubject,
    /// For `*`: the subjects it excludes.
    pub excluded_subjects: Vec<ResolvedSubject>,
    /// Deprecated SpiceDB field, kept for old clients: same as `subject.subjectObjectId`.
    pub subject_object_id: String,
    /// Deprecated SpiceDB field: the excluded ids.
    pub excluded_subject_ids: Vec<String>,
    /// Deprecated SpiceDB field: same as `subject.permissionship`.
    pub permissionship: String,
    /// Pass as `optionalCursor` to continue after this result.
    pub after_result_cursor: Token,
}

async fn lookup_subjects(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LookupSubjectsRequest>,
) -> Result<Response, ApiError> {
    refuse_context(body.context.as_ref(), "context")?;
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let resource = wire::object(&body.resource, "resource")?;
    let limit = wire::page_size(
        body.optional_concrete_limit,
        state.limits.max_page_size,
        "optionalConcreteLimit",
    )?;
    let include_wildcards = match body.wildcard_option.as_deref() {
        None | Some("") | Some("WILDCARD_OPTION_UNSPECIFIED") | Some("WILDCARD_OPTION_INCLUDE_WILDCARDS") => true,
        Some("WILDCARD_OPTION_EXCLUDE_WILDCARDS") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "wildcardOption: expected `WILDCARD_OPTION_INCLUDE_WILDCARDS` or `WILDCARD_OPTION_EXCLUDE_WILDCARDS`, found `{other}`"
            )))
        }
    };
    let mut after = wire::decode_cursor(body.optional_cursor.as_ref(), SUBJECTS_CURSOR)?;
    if !include_wildcards && after.is_none() {
        // `*` sorts before every valid id, so starting after it skips exactly the wildcard.
        after = Some("*".to_string());
    }
    let engine = state.engine.clone();
    let lookup = move || {
        engine.lookup_subjects(
            consistency,
            &SubjectLookup {
                resource: &resource,
                permission: &body.permission,
                subject_type: &body.subject_object_type,
                subject_relation: Some(body.optional_subject_relation.as_str()),
                page: Page {
                    after: after.as_deref(),
                    limit,
                },
            },
        )
    };
    let found = if limit.is_some() {
        lookup()?
    } else {
        tokio::task::spawn_blocking(lookup).await??
    };
    Ok(stream::respond(&state.clone(), move |lines| async move {
        let mut writer = LineWriter::new(found.revision);
        let written = lines.written(found.value.iter(), |frame, subject| {
            writer.subject(frame, subject).map_err(|_| stream::Gone)
        });
        // An error means the client went away: nothing more to do.
        let _ = written.await;
    }))
}

/// `ExpandPermissionTreeRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpandRequest {
    /// Consistency.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
    /// The resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// Permission or relation.
    #[serde(default)]
    pub permission: String,
}

/// `ExpandPermissionTreeResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpandResponse {
    /// Revision answered at.
    pub expanded_at: Token,
    /// The tree.
    pub tree_root: ExpandTree,
}

/// SpiceDB's `PermissionRelationshipTree`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpandTree {
    /// The object whose set this node is.
    pub expanded_object: ObjectReference,
    /// Its relation or permission.
    pub expanded_relation: String,
    /// Set operation over children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<AlgebraicSubjectSet>,
    /// Stored subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<DirectSubjectSet>,
}

/// `{"operation", "children"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlgebraicSubjectSet {
    /// `OPERATION_UNION`, `OPERATION_INTERSECTION` or `OPERATION_EXCLUSION`.
    pub operation: String,
    /// Operands.
    pub children: Vec<ExpandTree>,
}

/// `{"subjects": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DirectSubjectSet {
    /// Subjects.
    pub subjects: Vec<SubjectReference>,
}

fn tree(node: &ExpandNode) -> ExpandTree {
    let intermediate = |operation: &str, children: &[ExpandNode]| AlgebraicSubjectSet {
        operation: operation.to_string(),
        children: children.iter().map(tree).collect(),
    };
    let (intermediate, leaf) = match &node.kind {
        ExpandKind::Union(c) => (Some(intermediate("OPERATION_UNION", c)), None),
        ExpandKind::Intersection(c) => (Some(intermediate("OPERATION_INTERSECTION", c)), None),
        ExpandKind::Exclusion(c) => (Some(intermediate("OPERATION_EXCLUSION", c)), None),
        ExpandKind::Leaf(subjects) => (
            None,
            Some(DirectSubjectSet {
                subjects: subjects.iter().map(wire::to_subject).collect(),
            }),
        ),
    };
    ExpandTree {
        expanded_object: wire::to_object(&node.object),
        expanded_relation: node.relation.clone(),
        intermediate,
        leaf,
    }
}

async fn expand(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ExpandRequest>,
) -> Result<Response, ApiError> {
    let consistency = wire::consistency(body.consistency.as_ref())?;
    let resource = wire::object(&body.resource, "resource")?;
    let expanded = state
        .engine
        .expand(consistency, &resource, &body.permission)?;
    Ok(Json(ExpandResponse {
        expanded_at: Token::revision(expanded.revision),
        tree_root: tree(&expanded.value),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use pemba_engine::{FoundSubjectRef, Names, Revision};

    use super::*;

    /// What the lookup routes wrote before [`LineWriter`]: serde's `{"result": ...}` of
    /// the result types, one line each.
    fn by_serde(result: &impl Serialize) -> Vec<u8> {
        let mut line = b"{\"result\":".to_vec();
        serde_json::to_writer(&mut line, result).unwrap();
        line.extend_from_slice(b"}\n");
        line
    }

    /// Ids of every valid character, lengths around base64's three-byte groups, and one
    /// that only JSON escaping gets right.
    const IDS: [&str; 6] = [
        "a",
        "ab",
        "abc",
        "doc-1",
        "a/b+c=|_Z9",
        "quote\"back\\slash",
    ];

    #[test]
    fn resource_lines_are_written_as_serde_writes_them() {
        for revision in [Revision(0), Revision(7), Revision(1 << 40)] {
            let mut writer = LineWriter::new(revision);
            for id in IDS {
                let mut written = Vec::new();
                writer.resource(&mut written, id).unwrap();
                let expected = by_serde(&LookupResourcesResult {
                    looked_up_at: Token::revision(revision),
                    resource_object_id: id.to_string(),
                    permissionship: LOOKUP_HAS.to_string(),
                    after_result_cursor: wire::encode_cursor(RESOURCES_CURSOR, id),
                });
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }

    #[test]
    fn subject_lines_are_written_as_serde_writes_them() {
        let none = Names::default();
        let some: Names = IDS.into_iter().collect();
        let one: Names = ["x"].into_iter().collect();
        let revision = Revision(42);
        let mut writer = LineWriter::new(revision);
        let mut cases: Vec<FoundSubjectRef<'_>> = IDS
            .iter()
            .map(|id| FoundSubjectRef {
                id,
                excluded: &none,
            })
            .collect();
        for excluded in [&none, &one, &some] {
            cases.push(FoundSubjectRef { id: "*", excluded });
        }
        for subject in cases {
            let mut written = Vec::new();
            writer.subject(&mut written, subject).unwrap();
            let resolved = |id: &str| ResolvedSubject {
                subject_object_id: id.to_string(),
                permissionship: LOOKUP_HAS.to_string(),
            };
            let expected = by_serde(&LookupSubjectsResult {
                looked_up_at: Token::revision(revision),
                subject: resolved(subject.id),
                excluded_subjects: subject.excluded.iter().map(resolved).collect(),
                subject_object_id: subject.id.to_string(),
                excluded_subject_ids: subject.excluded.to_vec(),
                permissionship: LOOKUP_HAS.to_string(),
                after_result_cursor: wire::encode_cursor(SUBJECTS_CURSOR, subject.id),
            });
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn check_bodies_decode_from_text_as_from_bytes() {
        let check = r#"{"resource":{"objectType":"doc","objectId":"a"},"permission":"view","subject":{"object":{"objectType":"user","objectId":"al\u0069ce"}}}"#;
        let bodies: Vec<Vec<u8>> = vec![
            check.into(),
            b"".to_vec(),
            b" \n\t".to_vec(),
            b"{".to_vec(),
            b"[]".to_vec(),
            br#"{"unknown":1}"#.to_vec(),
            br#"{"permission":7}"#.to_vec(),
            br#"{"permission":"caf\u00e9"}"#.to_vec(),
            b"{\"permission\":\"\xff\"}".to_vec(),
            format!("{check} trailing").into_bytes(),
        ];
        for body in bodies {
            let from_text = decode_check(&body).map(|b| format!("{b:?}"));
            let from_bytes =
                crate::error::decode_json_borrowed::<borrowed::CheckRequestBody>(&body)
                    .map(|b| format!("{b:?}"));
            match (from_text, from_bytes) {
                (Ok(text), Ok(bytes)) => assert_eq!(text, bytes),
                (Err(text), Err(bytes)) => assert_eq!(text, bytes),
                (text, bytes) => panic!(
                    "{:?}: {text:?} against {bytes:?}",
                    String::from_utf8_lossy(&body)
                ),
            }
        }
    }
}
