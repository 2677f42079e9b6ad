"""SpiceDB's validation files through the official Python client (`authzed` on PyPI).

Every `.yaml` file of PEMBA_CONFORMANCE_DIR is one subTest named after the file, run
against its own fresh `pemba serve` (PEMBA_BIN) over gRPC: WriteSchema, WriteRelationships
(TOUCH, 1000 a request), every `assertTrue` / `assertFalse` as a fully consistent
CheckPermission, and every `validation` entry as LookupSubjects for each subject type and
userset the schema allows, compared by subject as `pemba validate` does in-process.

It mirrors `tests/conformance.rs`: a file the engine cannot load or does not pass
in-process (`pemba validate FILE` fails) is skipped with the Rust harness's reason, since
that is the engine's failure, not the gRPC layer's. PEMBA_CONFORMANCE_DIR unset, unreadable
or without `.yaml` files is a failure, never a skip. The corpus has no non-empty
`validation` section, so a small file of this module's own proves that comparison both ways.
"""

import os
import re
import subprocess
import tempfile
import unittest

import yaml
from authzed.api.v1 import (
    CheckPermissionRequest,
    InsecureClient,
    LookupSubjectsRequest,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)

from test_grpc import FULL, HAS, KEY, Server, obj, rel, subj, wait_for_schema

VARIABLE = "PEMBA_CONFORMANCE_DIR"
# The same request size as the Rust harness, under the server's per-request limit.
CHUNK = 1000


VALIDATED = """schema: |
  definition user {}
  // relation ghost: nobody
  definition group {
    relation member: user
  }
  definition doc {
    relation banned: user
    relation viewer: user | user:* | group#member
    permission view = viewer - banned
  }
relationships: |
  group:eng#member@user:bob
  doc:a#viewer@group:eng#member
  doc:a#viewer@user:alice
  doc:b#viewer@user:*
  doc:b#banned@user:mallory
assertions:
  assertTrue:
    - doc:a#view@user:bob
  assertFalse:
    - doc:b#view@user:mallory
validation:
  doc:a#view:
    - "[user:alice] is <doc:a#viewer>"
    - "[user:bob] is <group:eng#member>"
    - "[group:eng#member] is <doc:a#viewer>"
  doc:b#view:
    - "[user:* - {user:mallory}] is <doc:b#viewer>"
"""


def corpus():
    """The sorted `.yaml` paths of PEMBA_CONFORMANCE_DIR, or why there are none to run."""
    folder = os.environ.get(VARIABLE)
    if folder is None:
        raise AssertionError(
            f"{VARIABLE} is unset: set it to the SpiceDB validation files "
            "(../shared/conformance/spicedb) to run them through the Python client"
        )
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".yaml"))
    except OSError as error:
        raise AssertionError(f"{VARIABLE} is `{folder}`: {error}") from error
    if not names:
        raise AssertionError(f"{VARIABLE} is `{folder}`, which holds no `.yaml` files")
    return [os.path.join(folder, n) for n in names]


def skip_reason(path):
    """Why the Rust harness ignores this file (`passing_file`), or None to run it."""
    binary = os.environ.get("PEMBA_BIN", "target/debug/pemba")
    done = subprocess.run([binary, "validate", path], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    # `validation_file::parse` failures are printed first, without a line number.
    first = done.stderr.splitlines()[0] if done.stderr else ""
    if first.startswith(f"{path}: error: ") and (
        "not a validation file" in first or "is not supported:" in first
    ):
        return "uses something the engine does not support"
    return "not passed in-process"


def subject_targets(schema):
    """Every (subject type, userset relation or "") a relation of `schema` allows, as the
    in-process check collects from the compiled schema."""
    text = re.sub(r"/\*.*?\*/", "", schema, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    targets = set()
    for allowed in re.findall(r"\brelation\s+\w+\s*:\s*([^\n}]*)", text):
        for option in allowed.split("|"):
            option = option.split(" with ")[0].strip()
            found = re.fullmatch(r"([\w/]+)(?:#(\w+)|:\*)?", option)
            if found is None:
                raise AssertionError(f"cannot read the allowed subject `{option}`")
            targets.add((found.group(1), found.group(2) or ""))
    return sorted(targets)


def relationship_lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("//")]


def check_parts(text):
    resource, rest = text.split("#", 1)
    permission, subject = rest.split("@", 1)
    return obj(resource), permission, subj(subject)


class SpiceDBValidationFiles(unittest.TestCase):
    def test_validation_files(self):
        for path in corpus():
            with self.subTest(file=os.path.basename(path)):
                reason = skip_reason(path)
                if reason is not None:
                    self.skipTest(reason)
                wrong = self.run_file(path)
                if wrong:
                    self.fail(f"{path}: {len(wrong)} wrong answers over the Python client:\n" + "\n".join(wrong))

    def test_validation_entries_are_compared(self):
        # The corpus has no non-empty `validation` section: prove this path on a small file,
        # with a userset, a wildcard with an exclusion and a commented-out relation.
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "validated.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(VALIDATED)
            self.assertIsNone(skip_reason(path))
            self.assertEqual(self.run_file(path), [])
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(VALIDATED.replace('"[user:alice] is', '"[user:carol] is'))
            self.assertEqual(
                self.run_file(path),
                [
                    "validation of `doc:a#view`: expected subjects "
                    "['group:eng#member', 'user:bob', 'user:carol'], "
                    "found ['group:eng#member', 'user:alice', 'user:bob']"
                ],
            )

    def run_file(self, path):
        """Loads one file into a fresh server; every wrong answer, as text."""
        with open(path, encoding="utf-8") as handle:
            file = yaml.safe_load(handle)
        server = Server()
        try:
            client = InsecureClient(server.grpc, KEY)
            wait_for_schema(client, WriteSchemaRequest(schema=file["schema"]))
            lines = relationship_lines(file.get("relationships"))
            for start in range(0, len(lines), CHUNK):
                client.WriteRelationships(
                    WriteRelationshipsRequest(
                        updates=[
                            RelationshipUpdate(
                                operation=RelationshipUpdate.Operation.OPERATION_TOUCH, relationship=rel(line)
                            )
                            for line in lines[start : start + CHUNK]
                        ]
                    )
                )
            wrong = []
            assertions = file.get("assertions") or {}
            for expected, key in [(True, "assertTrue"), (False, "assertFalse")]:
                for assertion in assertions.get(key) or []:
                    resource, permission, subject = check_parts(assertion.strip())
                    answer = client.CheckPermission(
                        CheckPermissionRequest(
                            consistency=FULL, resource=resource, permission=permission, subject=subject
                        )
                    )
                    allowed = answer.permissionship == HAS
                    if allowed != expected:
                        wrong.append(f"`{assertion}`: expected {expected}, got {allowed}")
            targets = subject_targets(file["schema"])
            for key, entries in (file.get("validation") or {}).items():
                resource, permission = key.split("#", 1)
                # `[user:* - {user:banned}] is ...`: the subject before any exclusions.
                wanted = {entry.strip()[1:].split("]", 1)[0].split(" - ")[0].strip() for entry in entries or []}
                found = set()
                for subject_type, relation in targets:
                    for answer in client.LookupSubjects(
                        LookupSubjectsRequest(
                            consistency=FULL,
                            resource=obj(resource),
                            permission=permission,
                            subject_object_type=subject_type,
                            optional_subject_relation=relation,
                        )
                    ):
                        suffix = f"#{relation}" if relation else ""
                        found.add(f"{subject_type}:{answer.subject.subject_object_id}{suffix}")
                if found != wanted:
                    wrong.append(f"validation of `{key}`: expected subjects {sorted(wanted)}, found {sorted(found)}")
            return wrong
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
