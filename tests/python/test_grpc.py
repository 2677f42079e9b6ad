"""The official Python client (`authzed` on PyPI) against a real `pemba serve`.

Starts the binary named by PEMBA_BIN on loopback ports, writes a schema over gRPC and
drives every served RPC as an application would: each consistency mode, preconditions,
cursors over a few thousand results, bulk import and export, watch with replay, and auth
failures. The SpiceDB validation files run through the same client in test_conformance.py.
Run with `python -m unittest discover -s tests/python` (PEMBA_CONFORMANCE_DIR set).
"""

import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest

import grpc
# The package root does not re-export the v1 bulk messages; they live in the service module.
from authzed.api.v1.permission_service_pb2 import (
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
)
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Consistency,
    Cursor,
    DeleteRelationshipsRequest,
    ExpandPermissionTreeRequest,
    InsecureClient,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectReference,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)

KEY = "python-suite-key"
SCHEMA = """
definition user {}

definition group {
    relation member: user
}

definition doc {
    relation owner: user
    relation viewer: user | group#member | user:*
    permission view = owner + viewer
    permission edit = owner
}
"""
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION


def obj(text):
    object_type, object_id = text.split(":", 1)
    return ObjectReference(object_type=object_type, object_id=object_id)


def subj(text):
    object_text, _, relation = text.partition("#")
    return SubjectReference(object=obj(object_text), optional_relation=relation)


def rel(text):
    resource, rest = text.split("#", 1)
    relation, subject = rest.split("@", 1)
    return Relationship(resource=obj(resource), relation=relation, subject=subj(subject))


def touch(*texts):
    return WriteRelationshipsRequest(
        updates=[
            RelationshipUpdate(operation=RelationshipUpdate.Operation.OPERATION_TOUCH, relationship=rel(t))
            for t in texts
        ]
    )


FULL = Consistency(fully_consistent=True)


class Server:
    """`pemba serve` as a child process; `grpc` is its bound gRPC address."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pemba-python-")
        binary = os.environ.get("PEMBA_BIN", "target/debug/pemba")
        env = dict(os.environ, PEMBA_KEY=KEY, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [binary, "serve", "--data-dir", self.dir, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.grpc = None
        for line in self.process.stderr:
            found = re.match(r"pemba serving grpc://(\S+)", line)
            if found:
                self.grpc = found.group(1)
                break
        if self.grpc is None:
            raise RuntimeError("pemba serve exited before serving gRPC")
        # Keep draining stderr so the server never blocks on a full pipe.
        self.drain = threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True)
        self.drain.start()
        grpc.channel_ready_future(grpc.insecure_channel(self.grpc)).result(timeout=30)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.drain.join(timeout=30)
        self.process.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for_schema(client, request):
    """Writes the schema, retrying while the store, which opens after the bind, is not up."""
    for _ in range(300):
        try:
            return client.WriteSchema(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
    raise RuntimeError("the server never accepted the schema")


class PembaOverGrpc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.client = InsecureClient(cls.server.grpc, KEY)
        wait_for_schema(cls.client, WriteSchemaRequest(schema=SCHEMA))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def check(self, text, consistency=FULL):
        resource, rest = text.split("#", 1)
        permission, subject = rest.split("@", 1)
        return self.client.CheckPermission(
            CheckPermissionRequest(
                consistency=consistency, resource=obj(resource), permission=permission, subject=subj(subject)
            )
        )

    def assertCode(self, code, call):
        with self.assertRaises(grpc.RpcError) as raised:
            call()
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        return raised.exception

    def test_schema_round_trip(self):
        answer = self.client.ReadSchema(ReadSchemaRequest())
        self.assertIn("definition doc", answer.schema_text)
        self.assertTrue(answer.read_at.token)
        self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT,
            lambda: self.client.WriteSchema(WriteSchemaRequest(schema="definition doc { relation x: nobody }")),
        )

    def test_every_consistency_mode(self):
        written = self.client.WriteRelationships(touch("doc:modes#owner@user:alice")).written_at
        for consistency in [
            None,
            Consistency(minimize_latency=True),
            Consistency(at_least_as_fresh=written),
            Consistency(fully_consistent=True),
        ]:
            answer = self.check("doc:modes#edit@user:alice", consistency)
            self.assertTrue(answer.checked_at.token)
        self.assertEqual(self.check("doc:modes#edit@user:alice").permissionship, HAS)
        self.assertEqual(self.check("doc:modes#edit@user:bob").permissionship, NO)
        self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT,
            lambda: self.check("doc:modes#edit@user:alice", Consistency(at_least_as_fresh={"token": "garbage"})),
        )

    def test_usersets_wildcards_bulk_and_expand(self):
        self.client.WriteRelationships(
            touch("group:eng#member@user:bob", "doc:shared#viewer@group:eng#member", "doc:public#viewer@user:*")
        )
        self.assertEqual(self.check("doc:shared#view@user:bob").permissionship, HAS)
        self.assertEqual(self.check("doc:public#view@user:anyone").permissionship, HAS)
        answer = self.client.CheckBulkPermissions(
            CheckBulkPermissionsRequest(
                consistency=FULL,
                items=[
                    CheckBulkPermissionsRequestItem(resource=obj("doc:shared"), permission="view", subject=subj("user:bob")),
                    CheckBulkPermissionsRequestItem(resource=obj("doc:shared"), permission="edit", subject=subj("user:bob")),
                    CheckBulkPermissionsRequestItem(resource=obj("doc:shared"), permission="nope", subject=subj("user:bob")),
                ],
            )
        )
        self.assertEqual(answer.pairs[0].item.permissionship, HAS)
        self.assertEqual(answer.pairs[1].item.permissionship, NO)
        self.assertEqual(answer.pairs[2].error.code, grpc.StatusCode.FAILED_PRECONDITION.value[0])
        tree = self.client.ExpandPermissionTree(
            ExpandPermissionTreeRequest(consistency=FULL, resource=obj("doc:shared"), permission="view")
        ).tree_root
        self.assertEqual(tree.expanded_relation, "view")
        self.assertTrue(tree.HasField("intermediate"))

    def test_preconditions(self):
        must_match = Precondition(
            operation=Precondition.Operation.OPERATION_MUST_MATCH,
            filter=RelationshipFilter(resource_type="doc", optional_resource_id="precondition-target"),
        )
        request = touch("doc:guarded#owner@user:alice")
        request.optional_preconditions.append(must_match)
        self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, lambda: self.client.WriteRelationships(request))
        self.assertEqual(self.check("doc:guarded#edit@user:alice").permissionship, NO)
        self.client.WriteRelationships(touch("doc:precondition-target#owner@user:carol"))
        self.client.WriteRelationships(request)
        self.assertEqual(self.check("doc:guarded#edit@user:alice").permissionship, HAS)

    def test_refusals_write_nothing(self):
        for code, text in [
            (grpc.StatusCode.FAILED_PRECONDITION, "folder:x#owner@user:alice"),
            (grpc.StatusCode.FAILED_PRECONDITION, "doc:refused#nope@user:alice"),
            (grpc.StatusCode.INVALID_ARGUMENT, "doc:refused#owner@group:eng"),
            (grpc.StatusCode.INVALID_ARGUMENT, "doc:refused#view@user:alice"),
        ]:
            self.assertCode(code, lambda: self.client.WriteRelationships(touch("doc:refused#viewer@user:zed", text)))
        self.assertEqual(self.check("doc:refused#view@user:zed").permissionship, NO)
        caveated = touch("doc:refused#viewer@user:zed")
        caveated.updates[0].relationship.optional_caveat.caveat_name = "ip_allowed"
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, lambda: self.client.WriteRelationships(caveated))
        self.assertEqual(self.check("doc:refused#view@user:zed").permissionship, NO)

    def test_cursors_over_thousands_and_bulk_import_export(self):
        def batches():
            for b in range(3):
                yield ImportBulkRelationshipsRequest(
                    relationships=[rel(f"doc:many{b}x{i:04}#viewer@user:reader") for i in range(1000)]
                )

        self.assertEqual(self.client.ImportBulkRelationships(batches()).num_loaded, 3000)
        everything = [
            r.resource_object_id
            for r in self.client.LookupResources(
                LookupResourcesRequest(
                    consistency=FULL, resource_object_type="doc", permission="view", subject=subj("user:reader")
                )
            )
        ]
        self.assertEqual(len(everything), 3000)
        paged, cursor = [], None
        while True:
            request = LookupResourcesRequest(
                consistency=FULL,
                resource_object_type="doc",
                permission="view",
                subject=subj("user:reader"),
                optional_limit=700,
            )
            if cursor is not None:
                request.optional_cursor.CopyFrom(cursor)
            page = list(self.client.LookupResources(request))
            paged += [r.resource_object_id for r in page]
            if len(page) < 700:
                break
            cursor = page[-1].after_result_cursor
        self.assertEqual(paged, everything)
        read, cursor = [], None
        while True:
            request = ReadRelationshipsRequest(
                consistency=FULL,
                relationship_filter=RelationshipFilter(resource_type="doc", optional_relation="viewer"),
                optional_limit=1000,
            )
            if cursor is not None:
                request.optional_cursor.CopyFrom(cursor)
            page = list(self.client.ReadRelationships(request))
            read += [r.relationship.resource.object_id for r in page if r.relationship.subject.object.object_id == "reader"]
            if len(page) < 1000:
                break
            cursor = page[-1].after_result_cursor
        self.assertEqual(sorted(read), sorted(everything))
        exported = sum(
            len(page.relationships)
            for page in self.client.ExportBulkRelationships(
                ExportBulkRelationshipsRequest(
                    consistency=FULL,
                    optional_limit=500,
                    optional_relationship_filter=RelationshipFilter(resource_type="doc", optional_relation="viewer"),
                )
            )
        )
        self.assertGreaterEqual(exported, 3000)
        subjects = [
            s.subject.subject_object_id
            for s in self.client.LookupSubjects(
                LookupSubjectsRequest(
                    consistency=FULL, resource=obj("doc:many0x0001"), permission="view", subject_object_type="user"
                )
            )
        ]
        self.assertEqual(subjects, ["reader"])
        deleted = self.client.DeleteRelationships(
            DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="doc", optional_resource_id="many0x0001"))
        )
        self.assertEqual(deleted.relationships_deleted_count, 1)
        self.assertEqual(self.check("doc:many0x0001#view@user:reader").permissionship, NO)

    def test_watch_replays_from_a_token(self):
        start = self.client.WriteRelationships(touch("doc:watched1#owner@user:alice")).written_at
        second = self.client.WriteRelationships(touch("doc:watched2#owner@user:alice")).written_at
        stream = self.client.Watch(
            WatchRequest(optional_start_cursor=start, optional_object_types=["doc"])
        )
        first = next(stream)
        self.assertEqual(first.changes_through.token, second.token)
        self.assertEqual(first.updates[0].relationship.resource.object_id, "watched2")
        third = self.client.WriteRelationships(touch("doc:watched3#owner@user:alice")).written_at
        live = next(stream)
        self.assertEqual(live.changes_through.token, third.token)
        stream.cancel()

    def test_auth_failures(self):
        wrong = InsecureClient(self.server.grpc, "not-the-key")
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED, lambda: wrong.ReadSchema(ReadSchemaRequest()))
        channel = grpc.insecure_channel(self.server.grpc)
        no_key = channel.unary_unary(
            "/authzed.api.v1.SchemaService/ReadSchema",
            request_serializer=ReadSchemaRequest.SerializeToString,
            response_deserializer=lambda raw: raw,
        )
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, lambda: no_key(ReadSchemaRequest()))


if __name__ == "__main__":
    unittest.main()
