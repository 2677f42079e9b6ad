//! `authzed.api.v1.SchemaService`: WriteSchema and ReadSchema. ReflectSchema, DiffSchema,
//! ComputablePermissions and DependentRelations are not generated, so tonic answers them
//! `UNIMPLEMENTED`.

use pemba_engine::{Consistency, QueryError};
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::{Code, Request, Response, Status};

use super::convert;
use super::generated::schema_service_server::SchemaService;
use super::status;
use crate::AppState;

/// The service over the shared state.
pub struct Schema(pub AppState);

#[tonic::async_trait]
impl SchemaService for Schema {
    async fn read_schema(
        &self,
        _request: Request<pb::ReadSchemaRequest>,
    ) -> Result<Response<pb::ReadSchemaResponse>, Status> {
        // SpiceDB's ReadSchema takes no consistency: it reads the newest schema.
        match self.0.engine.read_schema(Consistency::FullyConsistent) {
            Ok(schema) => Ok(Response::new(pb::ReadSchemaResponse {
                schema_text: schema.value,
                read_at: convert::token(schema.revision),
            })),
            Err(QueryError::NoSchema) => Err(status::with_reason(
                Code::NotFound,
                "no schema has been written yet",
                Some("ERROR_REASON_SCHEMA_NOT_FOUND"),
            )),
            Err(error) => Err(status::of_query(error)),
        }
    }

    async fn write_schema(
        &self,
        request: Request<pb::WriteSchemaRequest>,
    ) -> Result<Response<pb::WriteSchemaResponse>, Status> {
        let text = request.into_inner().schema;
        if text.trim().is_empty() {
            return Err(status::invalid(
                "schema: the schema text is empty",
                status::reason::SCHEMA_PARSE_ERROR,
            ));
        }
        let engine = self.0.engine.clone();
        // Compiling is cheap, but the write fsyncs and rebuilds the index.
        let revision = tokio::task::spawn_blocking(move || engine.write_schema(&text))
            .await
            .map_err(status::of_join)?
            .map_err(status::of_schema_write)?;
        Ok(Response::new(pb::WriteSchemaResponse {
            written_at: convert::token(revision),
        }))
    }
}
