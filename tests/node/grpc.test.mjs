// The official Node client (`@authzed/authzed-node`, pinned in package.json) against a real
// `pemba serve` on loopback: the README's Node snippet as written, then every RPC an app
// uses (each consistency mode, preconditions, cursors over thousands of results, bulk
// import and export, watch with replay, auth failures).
// Run with `npm ci && node --test` in tests/node; PEMBA_BIN names the binary (default
// target/debug/pemba from the repository root).

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { v1 } from "@authzed/authzed-node";
import * as grpc from "@grpc/grpc-js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");
const KEY = "node-suite-key";
const SCHEMA = `
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
`;
const HAS = v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION;
const NO = v1.CheckPermissionResponse_Permissionship.NO_PERMISSION;

const obj = (text) => {
  const [objectType, objectId] = text.split(":");
  return v1.ObjectReference.create({ objectType, objectId });
};
const subj = (text) => {
  const [object, optionalRelation = ""] = text.split("#");
  return v1.SubjectReference.create({ object: obj(object), optionalRelation });
};
/** `doc:d#viewer@user:u` (or `...@group:g#member`) as a Relationship. */
const rel = (text) => {
  const [resource, rest] = text.split(/#(.*)/s);
  const [relation, subject] = rest.split("@");
  return v1.Relationship.create({ resource: obj(resource), relation, subject: subj(subject) });
};
const touch = (...texts) =>
  v1.WriteRelationshipsRequest.create({
    updates: texts.map((t) =>
      v1.RelationshipUpdate.create({
        operation: v1.RelationshipUpdate_Operation.TOUCH,
        relationship: rel(t),
      }),
    ),
  });
const FULL = v1.Consistency.create({
  requirement: { oneofKind: "fullyConsistent", fullyConsistent: true },
});

let server;
let address;
let client;

/** Starts `pemba serve` on loopback ports and resolves with its gRPC address. */
function startServer(dataDir) {
  const binary = process.env.PEMBA_BIN ?? join(ROOT, "target", "debug", "pemba");
  const child = spawn(
    binary,
    ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"],
    { env: { ...process.env, PEMBA_KEY: KEY, RUST_LOG: "warn" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stderr });
    const seen = [];
    // Keeps reading after the line, so the server never blocks on a full pipe.
    lines.on("line", (line) => {
      const found = /pemba serving grpc:\/\/(\S+)/.exec(line);
      if (found) resolvePromise({ child, grpc: found[1] });
      else if (seen.length < 50) seen.push(line);
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      reject(new Error(`pemba serve exited (${code}) before serving gRPC:\n${seen.join("\n")}`)),
    );
  });
}

/** `call` fails with gRPC status `code`; returns the error. */
async function refused(code, call) {
  const error = await call().then(
    () => assert.fail(`expected status ${grpc.status[code]}, the call succeeded`),
    (e) => e,
  );
  assert.equal(error.code, code, `${grpc.status[error.code]}: ${error.details ?? error.message}`);
  return error;
}

function check(text, consistency = FULL) {
  const [resource, rest] = text.split(/#(.*)/s);
  const [permission, subject] = rest.split("@");
  return client.promises.checkPermission(
    v1.CheckPermissionRequest.create({ consistency, resource: obj(resource), permission, subject: subj(subject) }),
  );
}

before(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "pemba-node-"));
  ({ child: server, grpc: address } = await startServer(dataDir));
  server.dataDir = dataDir;
  client = v1.NewClient(KEY, address, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  // The store opens just after the bind: wait until the server answers.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.promises.readSchema(v1.ReadSchemaRequest.create({}));
      break;
    } catch (error) {
      if (error.code !== grpc.status.UNAVAILABLE || attempt > 300) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(async () => {
  client?.close();
  if (server) {
    // The store is closed once the process is gone; only then is its directory removed.
    const exited = server.exitCode === null ? new Promise((r) => server.once("exit", r)) : null;
    server.kill("SIGTERM");
    await exited;
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});

// First, on the shipped user-groups schema a fresh store starts with.
test("the README's Node snippet works as written", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Using SpiceDB clients"));
  const snippet = /\nNode \([^`]*`[^`]*`[^\n]*\n[^\n]*\n\n```js\n([\s\S]*?)```/.exec(section);
  assert.ok(snippet, "README.md has a ```js block after `Node (` in \"Using SpiceDB clients\"");
  const code = snippet[1].replaceAll('"KEY"', JSON.stringify(KEY)).replaceAll('"127.0.0.1:50051"', JSON.stringify(address));
  assert.notEqual(code, snippet[1], "the snippet names the key and address it is run with");
  // `-e` resolves `@authzed/authzed-node` from the working directory: this package's.
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: HERE, encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, "true\n");
});

test("a refusal's message reads as the server wrote it", async () => {
  // The snippet's relationship would be orphaned by the next test's schema: the refusal
  // names it, with its `#` (tonic's own encoding reached grpc-js as `%23`).
  const error = await refused(grpc.status.FAILED_PRECONDITION, () =>
    client.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: SCHEMA })),
  );
  assert.match(error.details, /`workspace:acme#admin@user:alice`/);
  const { deletedAt } = await client.promises.deleteRelationships(
    v1.DeleteRelationshipsRequest.create({ relationshipFilter: v1.RelationshipFilter.create({ resourceType: "workspace" }) }),
  );
  assert.ok(deletedAt.token);
});

test("WriteSchema and ReadSchema", async () => {
  const written = await client.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: SCHEMA }));
  assert.ok(written.writtenAt.token);
  const read = await client.promises.readSchema(v1.ReadSchemaRequest.create({}));
  assert.match(read.schemaText, /definition doc/);
  assert.ok(read.readAt.token);
  await refused(grpc.status.INVALID_ARGUMENT, () =>
    client.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: "definition doc { relation x: nobody }" })),
  );
});

test("CheckPermission in every consistency mode, with a write's token", async () => {
  const { writtenAt } = await client.promises.writeRelationships(touch("doc:modes#owner@user:alice"));
  const modes = [
    undefined,
    v1.Consistency.create({ requirement: { oneofKind: "minimizeLatency", minimizeLatency: true } }),
    v1.Consistency.create({ requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: writtenAt } }),
    v1.Consistency.create({ requirement: { oneofKind: "atExactSnapshot", atExactSnapshot: writtenAt } }),
    FULL,
  ];
  // Nothing else writes meanwhile, so the write's revision is still the newest snapshot.
  for (const consistency of modes) {
    const answer = await check("doc:modes#edit@user:alice", consistency);
    assert.equal(answer.permissionship, HAS, JSON.stringify(consistency));
    assert.ok(answer.checkedAt.token);
  }
  const fresh = v1.Consistency.create({ requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: writtenAt } });
  assert.equal((await check("doc:modes#edit@user:bob", fresh)).permissionship, NO);
  await refused(grpc.status.INVALID_ARGUMENT, () =>
    check(
      "doc:modes#edit@user:alice",
      v1.Consistency.create({
        requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: v1.ZedToken.create({ token: "garbage" }) },
      }),
    ),
  );
});

test("WriteRelationships with a precondition writes nothing until it holds", async () => {
  const guarded = touch("doc:guarded#owner@user:alice");
  guarded.optionalPreconditions = [
    v1.Precondition.create({
      operation: v1.Precondition_Operation.MUST_MATCH,
      filter: v1.RelationshipFilter.create({ resourceType: "doc", optionalResourceId: "precondition-target" }),
    }),
  ];
  await refused(grpc.status.FAILED_PRECONDITION, () => client.promises.writeRelationships(guarded));
  assert.equal((await check("doc:guarded#edit@user:alice")).permissionship, NO);
  await client.promises.writeRelationships(touch("doc:precondition-target#owner@user:carol"));
  await client.promises.writeRelationships(guarded);
  assert.equal((await check("doc:guarded#edit@user:alice")).permissionship, HAS);
  // A refused write (a permission as a relation) leaves its valid neighbour unwritten too.
  await refused(grpc.status.INVALID_ARGUMENT, () =>
    client.promises.writeRelationships(touch("doc:refused#viewer@user:zed", "doc:refused#view@user:zed")),
  );
  assert.equal((await check("doc:refused#view@user:zed")).permissionship, NO);
});

test("CheckBulkPermissions answers each item, errors per item", async () => {
  await client.promises.writeRelationships(
    touch("group:eng#member@user:bob", "doc:shared#viewer@group:eng#member", "doc:public#viewer@user:*"),
  );
  const item = (resource, permission, subject) =>
    v1.CheckBulkPermissionsRequestItem.create({ resource: obj(resource), permission, subject: subj(subject) });
  const answer = await client.promises.checkBulkPermissions(
    v1.CheckBulkPermissionsRequest.create({
      consistency: FULL,
      items: [
        item("doc:shared", "view", "user:bob"),
        item("doc:shared", "edit", "user:bob"),
        item("doc:public", "view", "user:anyone"),
        item("doc:shared", "nope", "user:bob"),
      ],
    }),
  );
  assert.ok(answer.checkedAt.token);
  const results = answer.pairs.map((pair) => pair.response);
  assert.deepEqual(
    results.slice(0, 3).map((r) => r.oneofKind === "item" && r.item.permissionship),
    [HAS, NO, HAS],
  );
  assert.equal(results[3].oneofKind, "error");
  assert.equal(results[3].error.code, grpc.status.FAILED_PRECONDITION);
});

test("bulk import, then lookups, reads and export over thousands with cursors, then delete", async () => {
  const imported = await new Promise((resolvePromise, reject) => {
    const stream = client.importBulkRelationships((error, value) => (error ? reject(error) : resolvePromise(value)));
    for (let batch = 0; batch < 3; batch++) {
      const relationships = [];
      for (let i = 0; i < 1000; i++) {
        const n = String(batch * 1000 + i).padStart(4, "0");
        relationships.push(rel(`doc:many${n}#viewer@user:reader`), rel(`doc:crowd#viewer@user:u${n}`));
      }
      stream.write(v1.ImportBulkRelationshipsRequest.create({ relationships }));
    }
    stream.end();
  });
  assert.equal(imported.numLoaded, "6000");

  const resources = (limit, cursor) =>
    client.promises.lookupResources(
      v1.LookupResourcesRequest.create({
        consistency: FULL,
        resourceObjectType: "doc",
        permission: "view",
        subject: subj("user:reader"),
        optionalLimit: limit,
        optionalCursor: cursor,
      }),
    );
  // `doc:public` too, through its `user:*` viewer.
  const everything = (await resources(0)).map((r) => r.resourceObjectId);
  assert.equal(everything.length, 3001);
  assert.deepEqual(everything, [...everything].sort());
  assert.ok(everything.includes("public"));
  const paged = [];
  for (let cursor; ; ) {
    const page = await resources(700, cursor);
    paged.push(...page.map((r) => r.resourceObjectId));
    if (page.length < 700) break;
    cursor = page.at(-1).afterResultCursor;
  }
  assert.deepEqual(paged, everything);

  const subjects = (limit, cursor) =>
    client.promises.lookupSubjects(
      v1.LookupSubjectsRequest.create({
        consistency: FULL,
        resource: obj("doc:crowd"),
        permission: "view",
        subjectObjectType: "user",
        optionalConcreteLimit: limit,
        optionalCursor: cursor,
      }),
    );
  const everyone = (await subjects(0)).map((s) => s.subject.subjectObjectId);
  assert.equal(everyone.length, 3000);
  const pagedSubjects = [];
  for (let cursor; ; ) {
    const page = await subjects(999, cursor);
    pagedSubjects.push(...page.map((s) => s.subject.subjectObjectId));
    if (page.length < 999) break;
    cursor = page.at(-1).afterResultCursor;
  }
  assert.deepEqual(pagedSubjects, everyone);

  const filter = v1.RelationshipFilter.create({ resourceType: "doc", optionalRelation: "viewer" });
  const read = [];
  for (let cursor; ; ) {
    const page = await client.promises.readRelationships(
      v1.ReadRelationshipsRequest.create({ consistency: FULL, relationshipFilter: filter, optionalLimit: 1000, optionalCursor: cursor }),
    );
    read.push(...page.map((r) => r.relationship));
    if (page.length < 1000) break;
    cursor = page.at(-1).afterResultCursor;
  }
  const readers = read.filter((r) => r.subject.object.objectId === "reader").map((r) => r.resource.objectId);
  assert.deepEqual(readers.sort(), everything.filter((id) => id !== "public"));
  assert.equal(read.filter((r) => r.resource.objectId === "crowd").length, 3000);

  const pages = await client.promises.exportBulkRelationships(
    v1.ExportBulkRelationshipsRequest.create({ consistency: FULL, optionalLimit: 500, optionalRelationshipFilter: filter }),
  );
  assert.ok(pages.length >= 12, `${pages.length} pages of at most 500`);
  assert.ok(pages.every((page) => page.relationships.length <= 500));
  assert.equal(pages.reduce((n, page) => n + page.relationships.length, 0), read.length);

  const deleted = await client.promises.deleteRelationships(
    v1.DeleteRelationshipsRequest.create({
      relationshipFilter: v1.RelationshipFilter.create({ resourceType: "doc", optionalResourceId: "many0001" }),
    }),
  );
  assert.equal(deleted.relationshipsDeletedCount, "1");
  assert.ok(deleted.deletedAt.token);
  assert.equal((await check("doc:many0001#view@user:reader")).permissionship, NO);
  assert.equal((await check("doc:many0002#view@user:reader")).permissionship, HAS);
});

test("Watch replays from a token, then streams live changes", async () => {
  const start = (await client.promises.writeRelationships(touch("doc:watched1#owner@user:alice"))).writtenAt;
  const second = (await client.promises.writeRelationships(touch("doc:watched2#owner@user:alice"))).writtenAt;
  const stream = client.watch(v1.WatchRequest.create({ optionalStartCursor: start, optionalObjectTypes: ["doc"] }));
  const received = [];
  let wake = () => {};
  stream.on("data", (response) => {
    received.push(response);
    wake();
  });
  const ended = new Promise((resolvePromise) => stream.on("error", resolvePromise));
  const next = async () => {
    while (received.length === 0) await new Promise((r) => (wake = r));
    return received.shift();
  };
  const replayed = await next();
  assert.equal(replayed.changesThrough.token, second.token);
  assert.equal(replayed.updates[0].relationship.resource.objectId, "watched2");
  assert.equal(replayed.updates[0].operation, v1.RelationshipUpdate_Operation.TOUCH);
  const third = (await client.promises.writeRelationships(touch("doc:watched3#owner@user:alice"))).writtenAt;
  const live = await next();
  assert.equal(live.changesThrough.token, third.token);
  assert.equal(live.updates[0].relationship.resource.objectId, "watched3");
  stream.cancel();
  assert.equal((await ended).code, grpc.status.CANCELLED);
});

test("a missing key is UNAUTHENTICATED, a wrong one PERMISSION_DENIED", async () => {
  const wrong = v1.NewClient("not-the-key", address, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  await refused(grpc.status.PERMISSION_DENIED, () => wrong.promises.readSchema(v1.ReadSchemaRequest.create({})));
  await refused(grpc.status.PERMISSION_DENIED, () => wrong.promises.writeRelationships(touch("doc:intruder#owner@user:eve")));
  wrong.close();
  // Without credentials the client sends no `authorization` metadata at all.
  const anonymous = v1.NewClientWithChannelCredentials(address, grpc.credentials.createInsecure());
  await refused(grpc.status.UNAUTHENTICATED, () => anonymous.promises.readSchema(v1.ReadSchemaRequest.create({})));
  await refused(grpc.status.UNAUTHENTICATED, () => anonymous.promises.checkPermission(
    v1.CheckPermissionRequest.create({ consistency: FULL, resource: obj("doc:modes"), permission: "edit", subject: subj("user:alice") }),
  ));
  anonymous.close();
  assert.equal((await check("doc:intruder#edit@user:eve")).permissionship, NO);
});
