// A complaint-ledger client in Node.js: append, read a case, subscribe, and
// decode a refusal's details.
//
//   npm install && node client.mjs   # server: COMPLAINT_LEDGER_SERVER or 127.0.0.1:50051
//
// The API is loaded from the repository's proto/ at start (proto-loader), so
// the example always matches the API it runs against. A refusal's details
// travel in the `grpc-status-details-bin` trailer as a google.rpc.Status;
// they are decoded with protobufjs from third_party/googleapis. Against a
// server with authentication, set COMPLAINT_LEDGER_TOKEN (a JWT).
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const definition = protoLoader.loadSync('complaint_ledger/v1/ledger.proto', {
  includeDirs: [path.join(root, 'proto')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const api = grpc.loadPackageDefinition(definition).complaint_ledger.v1;

// google.rpc.Status and its detail types, and our ErrorReason enum.
const rpc = new protobuf.Root();
rpc.resolvePath = (_origin, target) =>
  target.startsWith('google/rpc/')
    ? path.join(root, 'third_party', 'googleapis', target)
    : target.startsWith('google/protobuf/')
      ? target
      : path.join(root, 'proto', target);
await rpc.load(['google/rpc/status.proto', 'google/rpc/error_details.proto', 'complaint_ledger/v1/errors.proto'], { keepCase: true });
const Status = rpc.lookupType('google.rpc.Status');
const ErrorReason = rpc.lookupEnum('complaint_ledger.v1.ErrorReason');

/** The details of a refusal, unpacked by their type URL. */
function details(err) {
  const raw = err.metadata?.get('grpc-status-details-bin')?.[0];
  if (!raw) return [];
  return Status.decode(raw).details.map((any) => {
    const type = rpc.lookupType(any.type_url.split('/').pop());
    return { type: type.fullName.slice(1), value: type.toObject(type.decode(any.value)) };
  });
}

function metadata() {
  const m = new grpc.Metadata();
  const token = process.env.COMPLAINT_LEDGER_TOKEN;
  if (token) m.set('authorization', `Bearer ${token.trim()}`);
  else m.set('x-actor', 'example-node');
  return m;
}

const ts = (text) => {
  const ms = Date.parse(text);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
};

const server = (process.env.COMPLAINT_LEDGER_SERVER ?? '127.0.0.1:50051').replace(/^http:\/\//, '');
const ledger = new api.Ledger(server, grpc.credentials.createInsecure());
const call = (method, request) =>
  new Promise((resolve, reject) => ledger[method](request, metadata(), (e, r) => (e ? reject(e) : resolve(r))));
const collect = (stream) =>
  new Promise((resolve, reject) => {
    const out = [];
    stream.on('data', (d) => out.push(d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
const check = (ok, what) => {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
};

const caseId = `node-${randomUUID().slice(0, 12)}`;
const opened = {
  event_id: `${caseId}-open`,
  occurred_at: ts('2020-12-03T01:24:30+08:00'),
  acted_for_agent: '8030',
  event: { case_opened: { customer_id: 'cust-node', business_line: 'qidian', category: '自动订阅' } },
};

// 1. Append: open a case and record a note, atomically.
const appended = await call('Append', {
  case_id: caseId,
  expected_version: { no_case: {} },
  events: [
    opened,
    {
      event_id: `${caseId}-n1`,
      occurred_at: ts('2020-12-03T01:30:00+08:00'),
      acted_for_agent: '8030',
      event: { note_added: { text: '客户要求电话回复' } },
    },
  ],
});
console.log(`appended ${caseId}: positions ${appended.first_position}-${appended.last_position}, version ${appended.case_version}`);
check(appended.case_version === '2', 'version 2 after two events');

// 2. Read the case back.
const events = await collect(ledger.ReadCase({ case_id: caseId }, metadata()));
console.log('read:', events.map((e) => `v${e.case_version} ${e.event_type}`).join(', '));
check(events.map((e) => e.event_type).join() === 'CaseOpened,NoteAdded', 'the case reads back');

// 3. Subscribe from the case's first position until the caught-up marker.
const seen = await new Promise((resolve, reject) => {
  const ids = [];
  const stream = ledger.Subscribe({ from_position: appended.first_position }, metadata());
  stream.on('data', (m) => {
    if (m.kind === 'event') ids.push(m.event.event_id);
    else if (m.kind === 'caught_up') {
      console.log(`subscribed: ${ids.length} events caught up to position ${m.caught_up.position}`);
      stream.cancel();
      resolve(ids);
    }
  });
  stream.on('error', (e) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
});
check(seen.includes(`${caseId}-n1`), 'the subscription delivers the note');

// 4. A refusal, decoded: the case is already open.
try {
  await call('Append', { case_id: caseId, events: [{ ...opened, event_id: `${caseId}-open-again` }] });
  check(false, 'a second CaseOpened was accepted');
} catch (err) {
  const d = details(err);
  const info = d.find((x) => x.type === 'google.rpc.ErrorInfo')?.value;
  const rule = d.find((x) => x.type === 'google.rpc.PreconditionFailure')?.value.violations[0].type;
  console.log(`refused: ${grpc.status[err.code]} ${info?.reason} (${rule}): ${err.details}`);
  check(err.code === grpc.status.FAILED_PRECONDITION, 'FAILED_PRECONDITION');
  check(ErrorReason.values[info?.reason] !== undefined, 'the reason is a documented ErrorReason');
  check(info.reason === 'CASE_ALREADY_OPENED' && rule === 'case_already_opened', 'the rule is named');
}
ledger.close();
console.log('node example: OK');
