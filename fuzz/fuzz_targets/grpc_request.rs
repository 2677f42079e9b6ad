//! gRPC request decoding and conversion: the first byte picks a request message of
//! `authzed.api.v1`, the rest is its protobuf encoding, decoded with prost and converted as
//! the RPC converts it before calling the engine. Never panics; a refusal is a request
//! fault (never `INTERNAL`) with a message. CheckBulkPermissions' own decoding (strings read
//! in place, `pemba_server::grpc::bulk::read`) must read every input as prost's
//! `spicedb-rs-proto` type reads it: the same request, each item echoed as the same item,
//! or the same refusal word for word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pemba_server::grpc::{bulk, convert};
use prost::Message;
use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::{Code, Status};

fn refusal(result: Result<(), Status>) {
    if let Err(status) = result {
        assert_ne!(status.code(), Code::Internal, "{status:?}");
        assert!(!status.message().is_empty());
    }
}

fn write(request: &pb::WriteRelationshipsRequest) -> Result<(), Status> {
    for update in &request.updates {
        if let Some(relationship) = &update.relationship {
            convert::relationship(relationship, "updates[0].relationship")?;
        }
    }
    convert::preconditions(&request.optional_preconditions, 1000)?;
    Ok(())
}

fn check(request: &pb::CheckPermissionRequest) -> Result<(), Status> {
    convert::refuse_context(request.context.as_ref(), "context")?;
    convert::consistency(request.consistency.as_ref())?;
    convert::object(request.resource.as_ref(), "resource")?;
    convert::subject(request.subject.as_ref(), "subject")?;
    Ok(())
}

fn read(request: &pb::ReadRelationshipsRequest) -> Result<(), Status> {
    convert::consistency(request.consistency.as_ref())?;
    convert::filter(request.relationship_filter.as_ref(), "relationship_filter")?;
    convert::page_size(request.optional_limit, 1000, "optional_limit")?;
    convert::tuple_cursor(request.optional_cursor.as_ref(), "rd")?;
    Ok(())
}

fn lookup(request: &pb::LookupSubjectsRequest) -> Result<(), Status> {
    convert::consistency(request.consistency.as_ref())?;
    convert::object(request.resource.as_ref(), "resource")?;
    convert::page_size(request.optional_concrete_limit, 1000, "optional_concrete_limit")?;
    convert::cursor(request.optional_cursor.as_ref(), "ls")?;
    Ok(())
}

fn watch(request: &pb::WatchRequest) -> Result<(), Status> {
    for filter in &request.optional_relationship_filters {
        convert::filter(Some(filter), "optional_relationship_filters[0]")?;
    }
    if let Some(token) = &request.optional_start_cursor {
        convert::revision(token, "optional_start_cursor")?;
    }
    Ok(())
}

fn bulk(bytes: &[u8]) {
    let mut canonical = Vec::new();
    let ours = bulk::read(bytes, &mut canonical);
    match pb::CheckBulkPermissionsRequest::decode(bytes) {
        Ok(full) => {
            let read = ours.expect("prost read it");
            assert_eq!(read.to_message(), full);
            // Each item echoed as read reads as prost's item.
            for (item, expected) in read.items.iter().zip(&full.items) {
                let echoed = pb::CheckBulkPermissionsRequestItem::decode(item.encoded);
                assert_eq!(echoed.as_ref(), Ok(expected));
            }
        }
        Err(error) => {
            let status = ours.expect_err("prost refused it");
            assert_eq!(status.code(), Code::Internal);
            assert_eq!(status.message(), error.to_string());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            if let Ok(request) = pb::WriteRelationshipsRequest::decode(bytes) {
                refusal(write(&request));
            }
        }
        1 => {
            if let Ok(request) = pb::CheckPermissionRequest::decode(bytes) {
                refusal(check(&request));
            }
        }
        2 => {
            if let Ok(request) = pb::ReadRelationshipsRequest::decode(bytes) {
                refusal(read(&request));
            }
        }
        3 => {
            if let Ok(request) = pb::LookupSubjectsRequest::decode(bytes) {
                refusal(lookup(&request));
            }
        }
        4 => {
            if let Ok(request) = pb::WatchRequest::decode(bytes) {
                refusal(watch(&request));
            }
        }
        _ => bulk(bytes),
    }
});
