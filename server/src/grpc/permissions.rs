//! `authzed.api.v1.PermissionsService`: the ten RPCs over the engine, as the HTTP routes of
//! `routes/permissions.rs` and `routes/relationships.rs` answer them.
//!
//! Streams are fed from a spawned task through a bounded channel; when the client cancels,
//! tonic drops the receiver, the next send fails and the task ends.

use std::collections::HashSet;

use pemba_engine::{
    Answer, CheckArgs, ExpandKind, ExpandNode, Operation, Page, ResourceLookup, SubjectLookup,
    Tuple, Update,
};
use spicedb_rs_proto::authzed::api::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::bulk::{self, BulkRequest, BulkResponse, ItemView, ObjectView, ReadItem};
use super::convert;
use super::generated::permissions_service_server::PermissionsService;
use super::status::{self, reason};
use crate::routes::permissions::{RESOURCES_CURSOR, SUBJECTS_CURSOR};
use crate::routes::relationships::{EXPORT_CURSOR, READ_CURSOR};
use crate::AppState;

/// The service over the shared state.
pub struct Permissions(pub AppState);

/// A server stream of `T`.
pub type Answers<T> = ReceiverStream<Result<T, Status>>;

/// How many answers may wait for a slow client before the producer waits too.
const BUFFER: usize = 64;

/// The engine's view of bulk item `i`, borrowed from the request (see [`borrowed_args`]).
fn bulk_item_args<'a>(i: usize, item: &ReadItem<'a>) -> Result<CheckArgs<'a>, Status> {
    borrowed_args(item.view, item.context.as_ref(), |name| {
        format!("items[{i}].{name}")
    })
}

fn object_view(object: &pb::ObjectReference) -> ObjectView<'_> {
    ObjectView {
        object_type: &object.object_type,
        object_id: &object.object_id,
    }
}

/// The engine's view of one check, borrowed from its message; `field` names a part of it
/// (`resource`, `subject`, `context`) in errors. A plain subject whose names pass the
/// syntax check costs no allocation; anything else (a userset subject, or a check that
/// fails a test) goes through the owned conversions, which word the error.
fn borrowed_args<'a>(
    view: ItemView<'a>,
    context: Option<&prost_types::Struct>,
    field: impl Fn(&str) -> String,
) -> Result<CheckArgs<'a>, Status> {
    let relation = Some(view.subject_relation).filter(|r| !r.is_empty() && *r != "...");
    let plain_and_valid = relation.is_none()
        && context.is_none_or(|c| c.fields.is_empty())
        && view.resource.is_some_and(|r| {
            pemba_engine::validate_object(r.object_type, r.object_id, false).is_ok()
        })
        && view.subject_object.is_some_and(|o| {
            pemba_engine::validate_object(o.object_type, o.object_id, true).is_ok()
        });
    if !plain_and_valid {
        convert::refuse_context(context, &field("context"))?;
        let resource = view.resource.map(ObjectView::to_message);
        convert::object(resource.as_ref(), &field("resource"))?;
        let subject = view.has_subject.then(|| pb::SubjectReference {
            object: view.subject_object.map(ObjectView::to_message),
            optional_relation: view.subject_relation.to_string(),
        });
        convert::subject(subject.as_ref(), &field("subject"))?;
    }
    let (resource_type, resource_id) = view
        .resource
        .map_or(("", ""), |r| (r.object_type, r.object_id));
    let (subject_type, subject_id) = view
        .subject_object
        .map_or(("", ""), |o| (o.object_type, o.object_id));
    Ok(CheckArgs {
        resource_type,
        resource_id,
        permission: view.permission,
        subject_type,
        subject_id,
        subject_relation: relation,
    })
}

fn tree(node: &ExpandNode) -> pb::PermissionRelationshipTree {
    use pb::algebraic_subject_set::Operation as Op;
    use pb::permission_relationship_tree::TreeType;
    let intermediate = |operation: Op, children: &[ExpandNode]| {
        TreeType::Intermediate(pb::AlgebraicSubjectSet {
            operation: operation as i32,
            children: children.iter().map(tree).collect(),
        })
    };
    let tree_type = match &node.kind {
        ExpandKind::Union(c) => intermediate(Op::Union, c),
        ExpandKind::Intersection(c) => intermediate(Op::Intersection, c),
        ExpandKind::Exclusion(c) => intermediate(Op::Exclusion, c),
        ExpandKind::Leaf(subjects) => TreeType::Leaf(pb::DirectSubjectSet {
            subjects: subjects.iter().map(convert::to_subject).collect(),
        }),
    };
    pb::PermissionRelationshipTree {
        expanded_object: Some(convert::to_object(&node.object)),
        expanded_relation: node.relation.clone(),
        tree_type: Some(tree_type),
    }
}

/// One page of relationships after `after`, read on the blocking pool (it scans storage).
async fn read_page(
    state: &AppState,
    consistency: pemba_engine::Consistency,
    filter: pemba_engine::RelationshipFilter,
    after: Option<Tuple>,
    limit: usize,
) -> Result<Answer<Vec<Tuple>>, Status> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let page = pemba_engine::ReadPage {
            after: after.as_ref(),
            limit,
        };
        engine.read(consistency, &filter, page)
    })
    .await
    .map_err(status::of_join)?
    .map_err(status::of_query)
}

/// Sends `items` on a new stream from a spawned task, stopping when the client leaves;
/// each item is made only when the stream has room for it.
fn stream_each<T: Send + 'static>(items: impl Iterator<Item = T> + Send + 'static) -> Answers<T> {
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        for item in items {
            if sender.send(Ok(item)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// CheckPermission's answer to `body`: what the RPC answers through tonic, and what
/// [`super::direct`] answers in front of it, so the two cannot drift apart.
pub(super) fn answer_check(
    state: &AppState,
    body: &pb::CheckPermissionRequest,
) -> Result<pb::CheckPermissionResponse, Status> {
    convert::refuse_context(body.context.as_ref(), "context")?;
    let consistency = convert::consistency(body.consistency.as_ref())?;
    let view = ItemView {
        resource: body.resource.as_ref().map(object_view),
        permission: &body.permission,
        subject_object: body
            .subject
            .as_ref()
            .and_then(|s| s.object.as_ref())
            .map(object_view),
        has_subject: body.subject.is_some(),
        subject_relation: body
            .subject
            .as_ref()
            .map_or("", |s| s.optional_relation.as_str()),
    };
    let args = borrowed_args(view, None, str::to_string)?;
    let answer = state
        .engine
        .check(consistency, args)
        .map_err(status::of_query)?;
    Ok(pb::CheckPermissionResponse {
        checked_at: convert::token(answer.revision),
        permissionship: convert::permissionship(answer.value),
        ..Default::default()
    })
}

#[tonic::async_trait]
impl PermissionsService for Permissions {
    type ReadRelationshipsStream = Answers<pb::ReadRelationshipsResponse>;

    async fn read_relationships(
        &self,
        request: Request<pb::ReadRelationshipsRequest>,
    ) -> Result<Response<Self::ReadRelationshipsStream>, Status> {
        let state = self.0.clone();
        let body = request.into_inner();
        let consistency = convert::consistency(body.consistency.as_ref())?;
        let Some(filter) = body.relationship_filter.as_ref() else {
            return Err(status::invalid(
                "relationship_filter: required",
                reason::INVALID_FILTER,
            ));
        };
        let filter = convert::filter(Some(filter), "relationship_filter")?;
        let max = state.limits.max_page_size;
        let limit = convert::page_size(body.optional_limit, max, "optional_limit")?;
        let after = convert::tuple_cursor(body.optional_cursor.as_ref(), READ_CURSOR)?;
        let page_size = limit.unwrap_or(max);
        // The first page is read before answering so a bad request gets its status.
        let first = read_page(&state, consistency, filter.clone(), after, page_size).await?;
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            let Answer {
                value: mut page,
                mut revision,
            } = first;
            loop {
                let full = page.len() == page_size;
                let last = page.last().cloned();
                for tuple in page {
                    let answer = pb::ReadRelationshipsResponse {
                        read_at: convert::token(revision),
                        relationship: Some(convert::to_relationship(&tuple)),
                        after_result_cursor: convert::to_cursor(READ_CURSOR, &tuple.to_string()),
                    };
                    if sender.send(Ok(answer)).await.is_err() {
                        return;
                    }
                }
                if limit.is_some() || !full {
                    return;
                }
                match read_page(&state, consistency, filter.clone(), last, page_size).await {
                    Ok(next) => {
                        revision = next.revision;
                        page = next.value;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn write_relationships(
        &self,
        request: Request<pb::WriteRelationshipsRequest>,
    ) -> Result<Response<pb::WriteRelationshipsResponse>, Status> {
        let state = &self.0;
        let body = request.into_inner();
        let max = state.limits.max_updates_per_write;
        if body.updates.len() > max {
            return Err(status::invalid(
                format!(
                    "updates: {} updates exceed the limit of {max} per write",
                    body.updates.len()
                ),
                reason::TOO_MANY_UPDATES_IN_REQUEST,
            ));
        }
        if body
            .optional_transaction_metadata
            .as_ref()
            .is_some_and(|m| !m.fields.is_empty())
        {
            return Err(status::unimplemented(
                "optional_transaction_metadata: transaction metadata is not supported",
            ));
        }
        let updates = crate::routes::relationships::decode_updates(
            &body.updates,
            |u, field| {
                use pb::relationship_update::Operation as Op;
                match Op::try_from(u.operation) {
                    Ok(Op::Create) => Ok(Operation::Create),
                    Ok(Op::Touch) => Ok(Operation::Touch),
                    Ok(Op::Delete) => Ok(Operation::Delete),
                    _ => Err(Status::invalid_argument(format!(
                        "{field}: expected OPERATION_CREATE, OPERATION_TOUCH or OPERATION_DELETE, found {}",
                        u.operation
                    ))),
                }
            },
            |u, field| {
                let Some(relationship) = &u.relationship else {
                    return Err(Status::invalid_argument(format!("{field}: required")));
                };
                convert::relationship(relationship, field)
            },
        )?;
        let preconditions =
            convert::preconditions(&body.optional_preconditions, state.limits.max_preconditions)?;
        let revision = if updates.is_empty() && preconditions.is_empty() {
            // SpiceDB answers an empty write with the current revision.
            state.engine.revision()
        } else {
            crate::routes::relationships::write_on_pool(state, updates, preconditions)
                .await
                .map_err(status::of_join)?
                .map_err(status::of_write)?
        };
        Ok(Response::new(pb::WriteRelationshipsResponse {
            written_at: convert::token(revision),
        }))
    }

    async fn delete_relationships(
        &self,
        request: Request<pb::DeleteRelationshipsRequest>,
    ) -> Result<Response<pb::DeleteRelationshipsResponse>, Status> {
        let state = &self.0;
        let body = request.into_inner();
        if body
            .optional_transaction_metadata
            .as_ref()
            .is_some_and(|m| !m.fields.is_empty())
        {
            return Err(status::unimplemented(
                "optional_transaction_metadata: transaction metadata is not supported",
            ));
        }
        if body.optional_cursor.is_some() {
            return Err(status::unimplemented(
                "optional_cursor: resuming a delete is not supported; deletes are atomic",
            ));
        }
        let Some(filter) = body.relationship_filter.as_ref() else {
            return Err(status::invalid(
                "relationship_filter: required",
                reason::INVALID_FILTER,
            ));
        };
        let filter = convert::filter(Some(filter), "relationship_filter")?;
        if filter.is_empty() {
            return Err(status::invalid(
                "relationship_filter: set at least one field (a filter matching everything is refused)",
                reason::INVALID_FILTER,
            ));
        }
        let preconditions =
            convert::preconditions(&body.optional_preconditions, state.limits.max_preconditions)?;
        let limit = convert::page_size(
            body.optional_limit,
            state.limits.max_delete_limit,
            "optional_limit",
        )?;
        let outcome = crate::routes::relationships::delete_on_pool(
            state,
            filter,
            preconditions,
            limit,
            body.optional_allow_partial_deletions,
        )
        .await
        .map_err(status::of_join)?
        .map_err(status::of_write)?;
        use pb::delete_relationships_response::DeletionProgress;
        Ok(Response::new(pb::DeleteRelationshipsResponse {
            deleted_at: convert::token(outcome.revision),
            deletion_progress: if outcome.value.complete {
                DeletionProgress::Complete
            } else {
                DeletionProgress::Partial
            } as i32,
            relationships_deleted_count: outcome.value.count as u64,
            after_result_cursor: None,
        }))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        answer_check(&self.0, &request.into_inner()).map(Response::new)
    }

    async fn check_bulk_permissions(
        &self,
        request: Request<BulkRequest>,
    ) -> Result<Response<BulkResponse>, Status> {
        let message = request.into_inner().0;
        let mut canonical = Vec::new();
        let body = bulk::read(&message, &mut canonical)?;
        let max = self.0.limits.max_checkbulk_items;
        if body.items.len() > max {
            return Err(status::invalid(
                format!(
                    "items: {} items exceed the limit of {max} per bulk check",
                    body.items.len()
                ),
                reason::TOO_MANY_CHECKS_IN_REQUEST,
            ));
        }
        let consistency = convert::consistency(body.consistency.as_ref())?;
        // Items that do not parse get their error now; the rest go to the engine together.
        let items = body
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| bulk_item_args(i, item))
            .collect();
        let answered = crate::routes::permissions::check_each(
            &self.0.engine,
            consistency,
            items,
            status::of_query,
            || Status::internal("bulk check answered too few items"),
        )
        .map_err(status::of_query)?;
        let checked_at = convert::token(answered.revision);
        Ok(Response::new(bulk::answer(
            checked_at.as_ref(),
            &body.items,
            &answered.value,
        )))
    }

    async fn expand_permission_tree(
        &self,
        request: Request<pb::ExpandPermissionTreeRequest>,
    ) -> Result<Response<pb::ExpandPermissionTreeResponse>, Status> {
        let body = request.into_inner();
        let consistency = convert::consistency(body.consistency.as_ref())?;
        let resource = convert::object(body.resource.as_ref(), "resource")?;
        let expanded = self
            .0
            .engine
            .expand(consistency, &resource, &body.permission)
            .map_err(status::of_query)?;
        Ok(Response::new(pb::ExpandPermissionTreeResponse {
            expanded_at: convert::token(expanded.revision),
            tree_root: Some(tree(&expanded.value)),
        }))
    }

    type LookupResourcesStream = Answers<pb::LookupResourcesResponse>;

    async fn lookup_resources(
        &self,
        request: Request<pb::LookupResourcesRequest>,
    ) -> Result<Response<Self::LookupResourcesStream>, Status> {
        let state = &self.0;
        let body = request.into_inner();
        convert::refuse_context(body.context.as_ref(), "context")?;
        let consistency = convert::consistency(body.consistency.as_ref())?;
        let subject = convert::subject(body.subject.as_ref(), "subject")?;
        let limit = convert::page_size(
            body.optional_limit,
            state.limits.max_page_size,
            "optional_limit",
        )?;
        let after = convert::cursor(body.optional_cursor.as_ref(), RESOURCES_CURSOR)?;
        let engine = state.engine.clone();
        // An unlimited lookup may return a whole type: computed once on the blocking pool.
        let found = tokio::task::spawn_blocking(move || {
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
        })
        .await
        .map_err(status::of_join)?
        .map_err(status::of_query)?;
        let revision = found.revision;
        let ids = found.value;
        // Each message is built as the stream sends it: the answer holds the ids packed,
        // and a message's own strings are all that is allocated for it.
        let answers = (0..ids.len()).filter_map(move |i| {
            let id = ids.get(i)?;
            Some(pb::LookupResourcesResponse {
                looked_up_at: convert::token(revision),
                after_result_cursor: convert::to_cursor(RESOURCES_CURSOR, id),
                resource_object_id: id.to_string(),
                permissionship: pb::LookupPermissionship::HasPermission as i32,
                partial_caveat_info: None,
            })
        });
        Ok(Response::new(stream_each(answers)))
    }

    type LookupSubjectsStream = Answers<pb::LookupSubjectsResponse>;

    async fn lookup_subjects(
        &self,
        request: Request<pb::LookupSubjectsRequest>,
    ) -> Result<Response<Self::LookupSubjectsStream>, Status> {
        let state = &self.0;
        let body = request.into_inner();
        convert::refuse_context(body.context.as_ref(), "context")?;
        let consistency = convert::consistency(body.consistency.as_ref())?;
        let resource = convert::object(body.resource.as_ref(), "resource")?;
        let limit = convert::page_size(
            body.optional_concrete_limit,
            state.limits.max_page_size,
            "optional_concrete_limit",
        )?;
        use pb::lookup_subjects_request::WildcardOption;
        let include_wildcards = match WildcardOption::try_from(body.wildcard_option) {
            Ok(WildcardOption::Unspecified | WildcardOption::IncludeWildcards) => true,
            Ok(WildcardOption::ExcludeWildcards) => false,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "wildcard_option: expected WILDCARD_OPTION_INCLUDE_WILDCARDS or WILDCARD_OPTION_EXCLUDE_WILDCARDS, found {}",
                    body.wildcard_option
                )))
            }
        };
        let mut after = convert::cursor(body.optional_cursor.as_ref(), SUBJECTS_CURSOR)?;
        if !include_wildcards && after.is_none() {
            // `*` sorts before every valid id, so starting after it skips exactly the wildcard.
            after = Some("*".to_string());
        }
        let engine = state.engine.clone();
        let found = tokio::task::spawn_blocking(move || {
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
        })
        .await
        .map_err(status::of_join)?
        .map_err(status::of_query)?;
        let revision = found.revision;
        let has = pb::LookupPermissionship::HasPermission as i32;
        let resolved = move |id: &str| pb::ResolvedSubject {
            subject_object_id: id.to_string(),
            permissionship: has,
            partial_caveat_info: None,
        };
        let subjects = found.value;
        let answers = (0..subjects.len()).filter_map(move |i| {
            let subject = subjects.get(i)?;
            #[expect(deprecated, reason = "old clients still read the deprecated fields")]
            Some(pb::LookupSubjectsResponse {
                looked_up_at: convert::token(revision),
                subject: Some(resolved(subject.id)),
                excluded_subjects: subject.excluded.iter().map(resolved).collect(),
                subject_object_id: subject.id.to_string(),
                after_result_cursor: convert::to_cursor(SUBJECTS_CURSOR, subject.id),
                excluded_subject_ids: subject.excluded.to_vec(),
                permissionship: has,
                partial_caveat_info: None,
            })
        });
        Ok(Response::new(stream_each(answers)))
    }

    async fn import_bulk_relationships(
        &self,
        request: Request<Streaming<pb::ImportBulkRelationshipsRequest>>,
    ) -> Result<Response<pb::ImportBulkRelationshipsResponse>, Status> {
        let state = &self.0;
        let max = state.limits.max_import_relationships;
        let mut stream = request.into_inner();
        let mut seen: HashSet<Tuple> = HashSet::new();
        let mut updates = Vec::new();
        let mut received = 0usize;
        // Every message is read and checked before anything is written: all or nothing.
        while let Some(message) = stream.next().await {
            let message = message?;
            for relationship in &message.relationships {
                if received >= max {
                    return Err(status::invalid(
                        format!(
                            "relationships: more than {max} relationships in one import (the limit)"
                        ),
                        reason::TOO_MANY_UPDATES_IN_REQUEST,
                    ));
                }
                let tuple =
                    convert::relationship(relationship, &format!("relationships[{received}]"))?;
                received += 1;
                // Duplicates in one import are harmless: keep the first.
                if seen.insert(tuple.clone()) {
                    updates.push(Update::touch(tuple));
                }
            }
        }
        let loaded = updates.len();
        let engine = state.engine.clone();
        if !updates.is_empty() {
            tokio::task::spawn_blocking(move || engine.write(updates, &[]))
                .await
                .map_err(status::of_join)?
                .map_err(status::of_write)?;
        }
        Ok(Response::new(pb::ImportBulkRelationshipsResponse {
            num_loaded: loaded as u64,
        }))
    }

    type ExportBulkRelationshipsStream = Answers<pb::ExportBulkRelationshipsResponse>;

    async fn export_bulk_relationships(
        &self,
        request: Request<pb::ExportBulkRelationshipsRequest>,
    ) -> Result<Response<Self::ExportBulkRelationshipsStream>, Status> {
        let state = self.0.clone();
        let body = request.into_inner();
        let consistency = convert::consistency(body.consistency.as_ref())?;
        let filter = convert::filter(
            body.optional_relationship_filter.as_ref(),
            "optional_relationship_filter",
        )?;
        let max = state.limits.max_export_page_size;
        let page_size =
            convert::page_size(body.optional_limit, max, "optional_limit")?.unwrap_or(max);
        let after = convert::tuple_cursor(body.optional_cursor.as_ref(), EXPORT_CURSOR)?;
        let first = read_page(&state, consistency, filter.clone(), after, page_size).await?;
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            let mut page = first.value;
            loop {
                let Some(last) = page.last().cloned() else {
                    return;
                };
                let full = page.len() == page_size;
                let answer = pb::ExportBulkRelationshipsResponse {
                    after_result_cursor: convert::to_cursor(EXPORT_CURSOR, &last.to_string()),
                    relationships: page.iter().map(convert::to_relationship).collect(),
                };
                if sender.send(Ok(answer)).await.is_err() || !full {
                    return;
                }
                match read_page(&state, consistency, filter.clone(), Some(last), page_size).await {
                    Ok(next) => page = next.value,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
