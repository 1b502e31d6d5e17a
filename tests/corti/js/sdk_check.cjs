// Runs Corti's official JS SDK (@corti/sdk 1.0.0) against the sandbox: REST,
// /streams, and what 1.0.0 exposes of the stateless calls (facts.extract,
// codes.predict, transcribe.connect). Guided documents (POST /v2/documents/)
// are newer than 1.0.0, so the SDK cannot call them.
//
// Env: CORTI_SDK_DIR (folder with node_modules/@corti/sdk), SANDBOX_URL
// (http://127.0.0.1:PORT). Prints one JSON line prefixed "RESULT " and exits 0;
// any failure throws (exit 1). Every response body and stream message is also
// parsed with the SDK's own serialization schemas in strict mode (unknown keys,
// missing keys and wrong types all fail), and every console line the SDK
// writes is captured, so a schema complaint cannot go unnoticed.
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");

const sdkRequire = createRequire(path.join(process.env.CORTI_SDK_DIR, "package.json"));
const { CortiClient, CortiError } = sdkRequire("@corti/sdk");
const schemas = sdkRequire("@corti/sdk/serialization");

const SANDBOX = process.env.SANDBOX_URL;
const WS = SANDBOX.replace(/^http/, "ws");
const UUID = /[0-9a-f-]{36}/;

const consoleLines = [];
for (const level of ["log", "info", "warn", "error", "debug"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    consoleLines.push(`${level}: ${args.map(String).join(" ")}`);
    original(...args);
  };
}

function strict(schemaName, raw, where) {
  const parsed = schemas[schemaName].parse(raw, {
    unrecognizedObjectKeys: "fail",
    allowUnrecognizedUnionMembers: false,
    allowUnrecognizedEnumValues: false,
    skipValidation: false,
    breadcrumbsPrefix: [where],
  });
  if (!parsed.ok) {
    throw new Error(`schema validation failed for ${where} (${schemaName}): ${JSON.stringify(parsed.errors)}`);
  }
}

// Which SDK schema describes each REST answer.
const ROUTES = [
  ["POST", /\/v2\/interactions\/$/, "InteractionsCreateResponse"],
  ["GET", /\/v2\/interactions\/$/, "InteractionsListResponse"],
  ["GET", /\/v2\/interactions\/[^/]+$/, "InteractionsGetResponse"],
  ["POST", /\/recordings\/$/, "RecordingsCreateResponse"],
  ["GET", /\/recordings\/$/, "RecordingsListResponse"],
  ["POST", /\/transcripts\/$/, "TranscriptsResponse"],
  ["GET", /\/transcripts\/$/, "TranscriptsListResponse"],
  ["GET", /\/transcripts\/[^/]+$/, "TranscriptsResponse"],
  ["GET", /\/transcripts\/[^/]+\/status$/, "TranscriptsStatusResponse"],
  ["POST", /\/documents\/$/, "DocumentsGetResponse"],
  ["GET", /\/documents\/$/, "DocumentsListResponse"],
  ["GET", /\/documents\/[^/]+$/, "DocumentsGetResponse"],
  ["POST", /\/v2\/tools\/extract-facts$/, "FactsExtractResponse"],
  ["POST", /\/v2\/tools\/coding\/$/, "CodesGeneralResponse"],
];

const exchanges = [];

async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const text = await response.clone().text();
  const method = (init && init.method) || "GET";
  exchanges.push({ method, path: new URL(url).pathname, status: response.status, text });
  return response;
}

function checkExchanges() {
  for (const { method, path: urlPath, status, text } of exchanges) {
    const where = `${method} ${urlPath} -> ${status}`;
    if (urlPath.endsWith("/protocol/openid-connect/token")) {
      const body = JSON.parse(text);
      for (const key of ["access_token", "expires_in", "token_type"]) {
        if (!(key in body)) throw new Error(`${where}: token answer lacks ${key}`);
      }
      continue;
    }
    if (status >= 400) {
      strict("ErrorResponse", JSON.parse(text), where);
      continue;
    }
    const route = ROUTES.find(([m, pattern]) => m === method && pattern.test(urlPath));
    if (!route) throw new Error(`${where}: no schema known for this call`);
    strict(route[2], JSON.parse(text), where);
  }
}

const STREAM_SCHEMAS = {
  CONFIG_ACCEPTED: "StreamConfigStatusMessage",
  transcript: "StreamTranscriptMessage",
  facts: "StreamFactsMessage",
  delta_usage: "StreamDeltaUsageMessage",
  usage: "StreamUsageMessage",
  flushed: "StreamFlushedMessage",
  ENDED: "StreamEndedMessage",
  error: "StreamErrorMessage",
};

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function runStream(client, interactionId) {
  const socket = await client.stream.connect({
    id: interactionId,
    configuration: {
      transcription: { primaryLanguage: "en", participants: [{ channel: 0, role: "multiple" }] },
      mode: { type: "facts", outputLocale: "en" },
    },
  });
  const kinds = [];
  const parsed = [];
  const closed = new Promise((resolve) => socket.on("close", (event) => resolve(event.code)));
  socket.on("message", (message) => parsed.push(message));
  socket.socket.addEventListener("message", (event) => {
    const raw = JSON.parse(event.data);
    const schema = STREAM_SCHEMAS[raw.type];
    assert(schema, `unexpected stream message type ${raw.type}`);
    strict(schema, raw, `stream ${raw.type}`);
    kinds.push(raw.type);
  });
  const chunk = Buffer.alloc(8000);
  for (let i = 0; i < 6; i += 1) socket.sendAudio(chunk); // 1.5 s of audio
  socket.sendFlush({ type: "flush" });
  socket.sendEnd({ type: "end" });
  const code = await closed;
  const usage = parsed.find((m) => m.type === "usage");
  return { kinds, closeCode: code, credits: usage ? usage.credits : null };
}

const TRANSCRIBE_SCHEMAS = {
  CONFIG_ACCEPTED: "TranscribeConfigStatusMessage",
  transcript: "TranscribeTranscriptMessage",
  command: "TranscribeCommandMessage",
  delta_usage: "TranscribeDeltaUsageMessage",
  usage: "TranscribeUsageMessage",
  flushed: "TranscribeFlushedMessage",
  ended: "TranscribeEndedMessage",
  error: "TranscribeErrorMessage",
};

// Dictation over /transcribe (stateless): config with a command, audio,
// flush, end -> transcripts, command, delta_usage, usage, ended, close 1000.
async function runDictation(client) {
  const socket = await client.transcribe.connect({
    configuration: {
      primaryLanguage: "en",
      commands: [{ id: "next", phrases: ["next section"] }],
    },
  });
  const kinds = [];
  const parsed = [];
  const closed = new Promise((resolve) => socket.on("close", (event) => resolve(event.code)));
  socket.on("message", (message) => parsed.push(message));
  socket.socket.addEventListener("message", (event) => {
    const raw = JSON.parse(event.data);
    const schema = TRANSCRIBE_SCHEMAS[raw.type];
    assert(schema, `unexpected transcribe message type ${raw.type}`);
    strict(schema, raw, `transcribe ${raw.type}`);
    kinds.push(raw.type);
  });
  const chunk = Buffer.alloc(8000);
  for (let i = 0; i < 10; i += 1) socket.sendAudio(chunk); // 2.5 s of audio
  socket.sendFlush({ type: "flush" });
  socket.sendEnd({ type: "end" });
  const code = await closed;
  const usage = parsed.find((m) => m.type === "usage");
  const deltas = parsed.filter((m) => m.type === "delta_usage").map((m) => m.credits);
  return { kinds, closeCode: code, credits: usage ? usage.credits : null, deltas };
}

async function main() {
  const client = new CortiClient({
    tenantName: "base",
    environment: {
      base: `${SANDBOX}/v2`,
      wss: `${WS}/audio-bridge/v2`,
      login: `${SANDBOX}/realms`,
      agents: SANDBOX,
    },
    auth: { clientId: "sdk-client", clientSecret: "sdk-secret" },
    maxRetries: 0,
    fetch: recordingFetch,
  });

  const created = await client.interactions.create({
    encounter: { identifier: "sdk-encounter", status: "planned", type: "first_consultation" },
  });
  assert(UUID.test(created.interactionId), "interactionId is not a uuid");
  const id = created.interactionId;
  const second = await client.interactions.create({
    encounter: { identifier: "sdk-encounter-2", status: "in-progress", type: "consultation", title: "Second" },
    patient: { identifier: "p-1", name: "Pat", gender: "other", birthDate: new Date("1990-01-02T00:00:00Z") },
  });

  const fetched = await client.interactions.get(id);
  assert(fetched.id === id, "get returned another interaction");
  assert(fetched.createdAt instanceof Date, "createdAt is not a date");

  const listedIds = [];
  const page = await client.interactions.list({ pageSize: 1 });
  for await (const item of page) listedIds.push(item.id);
  assert(listedIds.includes(id) && listedIds.includes(second.interactionId), "list misses interactions");

  const recording = await client.recordings.upload(Buffer.alloc(48000), id);
  const recordings = await client.recordings.list(id);
  assert(recordings.recordings.includes(recording.recordingId), "recording not listed");

  const transcript = await client.transcripts.create(id, {
    recordingId: recording.recordingId,
    primaryLanguage: "en",
  });
  assert(transcript.status === "completed", `transcript status ${transcript.status}`);
  const transcripts = await client.transcripts.list(id, { full: true });
  assert(transcripts.transcripts.length === 1, "transcript not listed");
  await client.transcripts.get(id, transcript.id);

  const document = await client.documents.create(id, {
    context: [{ type: "string", data: "Patient reports a mild headache for two days." }],
    templateKey: "soap",
    outputLanguage: "en",
  });
  const documents = await client.documents.list(id);
  assert(documents.data.length === 1, "document not listed");
  await client.documents.get(id, document.id);

  let notFound = null;
  try {
    await client.interactions.get("00000000-0000-4000-8000-000000000000");
  } catch (error) {
    notFound = error;
  }
  assert(notFound instanceof CortiError, "unknown interaction did not raise CortiError");
  assert(notFound.statusCode === 404, `unknown interaction gave ${notFound.statusCode}`);

  const stream = await runStream(client, id);

  const facts = await client.facts.extract({
    context: [{ type: "text", text: "Patient reports a mild headache for two days." }],
    outputLanguage: "en",
  });
  assert(facts.facts.length === 1, "extract-facts returned no fact");
  const codes = await client.codes.predict({
    system: ["icd10cm-outpatient", "cpt"],
    context: [
      { type: "text", text: "Short arm splint applied in ED for pain control." },
      { type: "documentId", documentId: document.id },
    ],
    filter: { include: ["E11"], exclude: ["E11.9"] },
  });
  assert(codes.codes.length === 2, "coding returned no code per system");
  const dictation = await runDictation(client);

  checkExchanges();
  const result = {
    interactionId: id,
    listed: listedIds.length,
    transcriptCredits: transcript.usageInfo.creditsConsumed,
    documentCredits: document.usageInfo.creditsConsumed,
    notFoundStatus: notFound.statusCode,
    stream,
    factsCredits: facts.usageInfo.creditsConsumed,
    codingCredits: codes.usageInfo.creditsConsumed,
    dictation,
    exchanges: exchanges.map(({ method, path: p, status }) => `${method} ${p} ${status}`),
    consoleLines,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`FAILED ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
