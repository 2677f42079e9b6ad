//! `authzed.api.v1.WatchService`: the HTTP watch's [`Watcher`] (same cap, same replay from
//! `optional_start_cursor`, same `changes_through` tokens) feeding a gRPC stream.

use pemba_engine::{Operation, RelationshipFilter};
use spicedb_rs_proto::authzed::api::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use super::generated::watch_service_server::WatchService;
use super::permissions::Answers;
use crate::routes::watch::Watcher;
use crate::AppState;

/// The service over the shared state.
pub struct Watch(pub AppState);

#[tonic::async_trait]
impl WatchService for Watch {
    type WatchStream = Answers<pb::WatchResponse>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let state = self.0.clone();
        let body = request.into_inner();
        for kind in &body.optional_update_kinds {
            match pb::WatchKind::try_from(*kind) {
                Ok(pb::WatchKind::Unspecified | pb::WatchKind::IncludeRelationshipUpdates) => {}
                _ => {
                    return Err(Status::unimplemented(format!(
                        "optional_update_kinds: watch kind {kind} is not supported (only relationship updates are)"
                    )))
                }
            }
        }
        let filters = body
            .optional_relationship_filters
            .iter()
            .enumerate()
            .map(|(i, f)| convert::filter(Some(f), &format!("optional_relationship_filters[{i}]")))
            .collect::<Result<Vec<RelationshipFilter>, Status>>()?;
        let start = body
            .optional_start_cursor
            .as_ref()
            .map(|token| convert::revision(token, "optional_start_cursor"))
            .transpose()?;
        let mut watcher = Watcher::open(&state, body.optional_object_types, filters, start)
            .map_err(Status::from)?;
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let matched = match watcher.next(&state, sender.closed()).await {
                    None => return,
                    Some(Ok(matched)) => matched,
                    Some(Err(error)) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                for set in matched {
                    use pb::relationship_update::Operation as Op;
                    let answer = pb::WatchResponse {
                        updates: set
                            .changes
                            .iter()
                            .map(|c| pb::RelationshipUpdate {
                                operation: match c.operation {
                                    Operation::Delete => Op::Delete,
                                    Operation::Create | Operation::Touch => Op::Touch,
                                } as i32,
                                relationship: Some(convert::to_relationship(&c.tuple)),
                            })
                            .collect(),
                        changes_through: convert::token(set.revision),
                        ..Default::default()
                    };
                    if sender.send(Ok(answer)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
