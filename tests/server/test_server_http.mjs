// test_server_http.mjs — black-box tests of `pensieve start` (src/server) against the real
// binary on stories260K: /health, /v1/models[/{id}], auth in both error shapes, request ids,
// routing (query ignored, 404, 405), the body limit (413 and the server keeps serving),
// 200 keep-alive requests on one connection, malformed HTTP, port in use, missing model,
// and a clean SIGTERM exit (exit code 0, no sanitizer report).
// Oracles are independent of the server: the model's name and context length are read from
// the GGUF file by the small parser below, its mtime from the file system, the resident
// memory from /proc/<pid>/status, HTTP framing by hand on raw sockets.
// Exit 77 (skip) when the model is missing and CI is unset.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const BIN = process.env.PENSIEVE_BIN;
const DATA = process.env.PENSIEVE_TEST_DATA || path.resolve(process.env.PENSIEVE_SRC || '.', '../shared');
const MODEL = path.join(DATA, 'models/stories260K.gguf');
const KEY = 'pensieve-local-key';
const REQ_ID = /^req_[A-Za-z0-9]{24}$/;

if (!BIN || !fs.existsSync(BIN)) {
  console.error('PENSIEVE_BIN not set or missing');
  process.exit(1);
}
if (!fs.existsSync(MODEL)) {
  console.error(`skip: ${MODEL} not found`);
  process.exit(process.env.CI ? 1 : 77);
}

let failures = 0;
let checks = 0;
function check(cond, what, extra) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL: ${what}${extra !== undefined ? ' — ' + JSON.stringify(extra).slice(0, 400) : ''}`);
  }
}

// ---- GGUF metadata oracle: reads general.name and <arch>.context_length ----
function ggufMeta(file) {
  const buf = fs.readFileSync(file);
  let off = 0;
  const u32 = () => { const v = buf.readUInt32LE(off); off += 4; return v; };
  const u64 = () => { const v = buf.readBigUInt64LE(off); off += 8; return Number(v); };
  const str = () => { const n = u64(); const s = buf.toString('utf8', off, off + n); off += n; return s; };
  const sizes = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (t) => {
    if (t === 8) return str();
    if (t === 9) {
      const et = u32(); const n = u64(); const out = [];
      for (let i = 0; i < n; i++) out.push(value(et));
      return out;
    }
    const sz = sizes[t];
    if (!sz) throw new Error(`gguf type ${t}`);
    let v;
    if (t === 4) v = buf.readUInt32LE(off);
    else if (t === 5) v = buf.readInt32LE(off);
    else if (t === 10) v = Number(buf.readBigUInt64LE(off));
    else if (t === 11) v = Number(buf.readBigInt64LE(off));
    else v = null;
    off += sz;
    return v;
  };
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not a GGUF file');
  off = 4; u32(); u64(); const nkv = u64();
  const kv = {};
  for (let i = 0; i < nkv; i++) { const k = str(); const t = u32(); kv[k] = value(t); }
  return kv;
}

const meta = ggufMeta(MODEL);
const arch = meta['general.architecture'];
const MODEL_NAME = meta['general.name'] || path.basename(MODEL);
const CTX = Math.min(meta[`${arch}.context_length`], 4096);

// ---- helpers ----
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

// Parses one HTTP/1.1 response (Content-Length or chunked) from the start of `buf` (latin1
// string). Returns {status, headers, body, rest} or null when incomplete.
function parseResponse(buf, head = false) {
  const he = buf.indexOf('\r\n\r\n');
  if (he < 0) return null;
  const lines = buf.slice(0, he).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) throw new Error(`bad status line: ${lines[0]}`);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let p = he + 4;
  let body;
  if (head) {
    body = '';
  } else if (headers['transfer-encoding'] === 'chunked') {
    body = '';
    for (;;) {
      const le = buf.indexOf('\r\n', p);
      if (le < 0) return null;
      const n = parseInt(buf.slice(p, le), 16);
      if (buf.length < le + 2 + n + 2) return null;
      body += buf.slice(le + 2, le + 2 + n);
      p = le + 2 + n + 2;
      if (n === 0) break;
    }
  } else {
    const n = parseInt(headers['content-length'] || '0', 10);
    if (buf.length < p + n) return null;
    body = buf.slice(p, p + n);
    p += n;
  }
  return { status: +m[1], headers, body, rest: buf.slice(p) };
}

// A raw connection: send bytes, read whole responses; knows when the server closed.
class Raw {
  constructor(port) {
    this.buf = '';
    this.closed = false;
    this.waiters = [];
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d) => { this.buf += d; this.wake(); });
    this.sock.on('close', () => { this.closed = true; this.wake(); });
    this.sock.on('error', () => { this.closed = true; this.wake(); });
    this.ready = new Promise((res, rej) => {
      this.sock.once('connect', res);
      this.sock.once('error', rej);
    });
  }
  wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }
  write(data) { return new Promise((res) => this.sock.write(data, 'latin1', () => res())); }
  async response(ms = 10000, head = false) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = parseResponse(this.buf, head);
      if (r) { this.buf = r.rest; return r; }
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a response');
      await new Promise((res) => { const t = setTimeout(res, left); this.waiters.push(() => { clearTimeout(t); res(); }); });
    }
  }
  async waitClosed(ms = 10000) {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline)
      await new Promise((res) => { const t = setTimeout(res, 100); this.waiters.push(() => { clearTimeout(t); res(); }); });
    return this.closed;
  }
  destroy() { this.sock.destroy(); }
}

function reqText(method, p, headers = {}, body = '') {
  let s = `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  if (body || method === 'POST') s += `Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n`;
  return s + '\r\n' + body;
}

const seenIds = new Set();
// One request on a fresh connection; checks the request-id header of every response.
async function request(port, method, p, headers = {}, body = '') {
  const c = new Raw(port);
  try {
    await c.ready;
    await c.write(reqText(method, p, { Connection: 'close', ...headers }, body));
    const r = await c.response();
    if (!r) throw new Error(`no response to ${method} ${p}`);
    noteId(r, `${method} ${p}`);
    r.json = null;
    try { r.json = JSON.parse(r.body); } catch { /* checked by callers */ }
    return r;
  } finally {
    c.destroy();
  }
}

function noteId(r, what) {
  const id = r.headers['request-id'];
  check(REQ_ID.test(id || ''), `${what}: request-id header req_ + 24 alphanumerics`, id);
  check(!seenIds.has(id), `${what}: request-id is unique`, id);
  seenIds.add(id);
}

function checkAnthropicError(r, status, type, what) {
  check(r.status === status, `${what}: status ${status}`, r.status);
  const j = r.json;
  check(j && j.type === 'error' && j.error && j.error.type === type &&
        typeof j.error.message === 'string' && j.error.message.length > 0,
        `${what}: Anthropic error shape with type ${type}`, r.body);
  check(j && j.request_id === r.headers['request-id'], `${what}: body request_id equals the header`, r.body);
  check((r.headers['content-type'] || '').startsWith('application/json'), `${what}: JSON content type`);
}

function checkOpenAIError(r, status, type, code, what) {
  check(r.status === status, `${what}: status ${status}`, r.status);
  const e = r.json && r.json.error;
  check(e && typeof e.message === 'string' && e.message.length > 0 && e.type === type &&
        e.param === null && e.code === code && r.json.type === undefined,
        `${what}: OpenAI error shape type ${type} code ${code}`, r.body);
}

function startServer(args) {
  const proc = spawn(BIN, ['start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderrText = '';
  proc.stdout.on('data', (d) => { proc.stderrText += d; });
  proc.stderr.on('data', (d) => { proc.stderrText += d; });
  proc.exited = new Promise((res) => proc.on('exit', (code, sig) => res({ code, sig })));
  return proc;
}

async function waitHealthy(port, proc) {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited early: ${proc.stderrText}`);
    try {
      const r = await request(port, 'GET', '/health');
      if (r.status === 200) return;
    } catch { /* not up yet */ }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('server did not become healthy in 60 s');
}

// ---- the tests ----
async function testHealth(port, proc) {
  const r = await request(port, 'GET', '/health');
  check(r.status === 200, '/health without a key: 200', r.status);
  const j = r.json || {};
  check(j.status === 'ok', '/health status ok', j);
  check(j.model === MODEL_NAME, `/health model is the GGUF general.name '${MODEL_NAME}'`, j.model);
  check(j.context_size === CTX, `/health context_size = min(context_length, 4096) = ${CTX}`, j.context_size);
  check(j.requests && j.requests.active === 0 && j.requests.queued === 0, '/health requests active/queued 0', j.requests);
  const rss = +/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1] * 1024;
  check(Number.isInteger(j.memory_bytes) && j.memory_bytes > rss / 2 && j.memory_bytes < rss * 2,
        `/health memory_bytes near VmRSS ${rss}`, j.memory_bytes);
  check(Number.isInteger(j.uptime_seconds) && j.uptime_seconds >= 0 && j.uptime_seconds < 600,
        '/health uptime_seconds', j.uptime_seconds);
  const q = await request(port, 'GET', '/health?verbose=1&beta=true');
  check(q.status === 200 && q.json && q.json.status === 'ok', '/health?query: query ignored', q.status);
}

function checkModelObject(m, what) {
  const mtime = Math.floor(fs.statSync(MODEL).mtimeMs / 1000);
  check(m && m.type === 'model' && m.id === MODEL_NAME && m.display_name === MODEL_NAME,
        `${what}: Anthropic fields type/id/display_name`, m);
  check(m && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(m.created_at) &&
        Date.parse(m.created_at) / 1000 === mtime, `${what}: created_at RFC 3339 = file mtime`, m && m.created_at);
  check(m && m.object === 'model' && m.created === mtime && m.owned_by === 'pensieve',
        `${what}: OpenAI fields object/created/owned_by`, m);
}

async function testModels(port) {
  for (const [label, h] of [['x-api-key', { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' }],
                            ['Bearer', { Authorization: `Bearer ${KEY}` }],
                            ['lower-case bearer, upper-case header name', { AUTHORIZATION: `bearer   ${KEY}` }],
                            ['upper-case X-API-KEY', { 'X-API-KEY': KEY }]]) {
    const r = await request(port, 'GET', '/v1/models?beta=true', h);
    check(r.status === 200, `/v1/models with ${label}: 200`, r.status);
    const j = r.json || {};
    check(Array.isArray(j.data) && j.data.length === 1, `/v1/models (${label}) data has one model`, j);
    checkModelObject(j.data && j.data[0], `/v1/models (${label})`);
    check(j.object === 'list' && j.has_more === false && j.first_id === MODEL_NAME && j.last_id === MODEL_NAME,
          `/v1/models (${label}) list fields`, j);
  }
  const one = await request(port, 'GET', `/v1/models/${encodeURIComponent(MODEL_NAME)}?beta=true`, { 'x-api-key': KEY });
  check(one.status === 200, `/v1/models/${MODEL_NAME}: 200`, one.status);
  checkModelObject(one.json, `/v1/models/${MODEL_NAME}`);
  const nope = await request(port, 'GET', '/v1/models/nope', { 'x-api-key': KEY });
  checkAnthropicError(nope, 404, 'not_found_error', '/v1/models/nope');
  const nopeOai = await request(port, 'GET', '/v1/models/claude-opus-4-1', { Authorization: `Bearer ${KEY}` });
  checkOpenAIError(nopeOai, 404, 'invalid_request_error', 'not_found', '/v1/models/other from an OpenAI client');
}

async function testAuth(port) {
  checkAnthropicError(await request(port, 'GET', '/v1/models'), 401, 'authentication_error', '/v1/models without a key');
  checkAnthropicError(await request(port, 'GET', '/v1/models', { 'x-api-key': 'wrong' }), 401,
                      'authentication_error', '/v1/models with a wrong x-api-key');
  checkAnthropicError(await request(port, 'GET', '/v1/models', { 'x-api-key': KEY + 'x' }), 401,
                      'authentication_error', '/v1/models with the key plus one character');
  checkAnthropicError(await request(port, 'GET', '/v1/models', { 'x-api-key': KEY.slice(0, -1) }), 401,
                      'authentication_error', '/v1/models with a truncated key');
  checkAnthropicError(await request(port, 'GET', '/v1/models', { Authorization: 'Bearer wrong', 'anthropic-version': '2023-06-01' }),
                      401, 'authentication_error', '/v1/models with a wrong Bearer from an Anthropic SDK');
  checkAnthropicError(await request(port, 'GET', '/v1/models', { Authorization: `Basic ${KEY}` }),
                      401, 'authentication_error', '/v1/models with a non-Bearer Authorization');
  // An OpenAI client (Bearer, no anthropic-version) gets the OpenAI shape.
  checkOpenAIError(await request(port, 'GET', '/v1/models', { Authorization: 'Bearer wrong' }), 401,
                   'invalid_request_error', 'invalid_api_key', '/v1/models with a wrong Bearer from an OpenAI client');
}

async function testRouting(port) {
  checkAnthropicError(await request(port, 'GET', '/nope', { 'x-api-key': KEY }), 404, 'not_found_error', 'GET /nope');
  checkAnthropicError(await request(port, 'GET', '/v1/models/', { 'x-api-key': KEY }), 404, 'not_found_error', 'GET /v1/models/ (empty id)');
  checkAnthropicError(await request(port, 'GET', '/', {}), 404, 'not_found_error', 'GET /');
  checkOpenAIError(await request(port, 'POST', '/v1/chat/nope', { Authorization: `Bearer ${KEY}` }, '{}'), 404,
                   'invalid_request_error', 'not_found', 'POST /v1/chat/nope (OpenAI namespace)');
  const m = await request(port, 'POST', '/health', {}, '{}');
  checkAnthropicError(m, 405, 'invalid_request_error', 'POST /health');
  check(m.headers.allow === 'GET', 'POST /health: Allow: GET', m.headers.allow);
  const d = await request(port, 'DELETE', '/v1/models?beta=true', { 'x-api-key': KEY });
  checkAnthropicError(d, 405, 'invalid_request_error', 'DELETE /v1/models');
  // A body under the limit is read and routed normally (here: to a 405).
  const big = 'x'.repeat(512 * 1024);
  checkAnthropicError(await request(port, 'POST', '/v1/models', { 'x-api-key': KEY }, big), 405,
                      'invalid_request_error', 'POST /v1/models with a 512 KiB body (under the 1 MiB limit)');
}

async function testBodyLimit(port) {
  // Declared length over the limit: answered before the body is sent, then closed.
  {
    const c = new Raw(port);
    await c.ready;
    await c.write(`POST /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${2 << 20}\r\n\r\n{"a":`);
    const r = await c.response();
    check(r !== null, '413 (Content-Length): a response arrives before the body is sent');
    if (r) {
      noteId(r, '413 (Content-Length)');
      r.json = JSON.parse(r.body || 'null');
      checkAnthropicError(r, 413, 'request_too_large', 'POST with Content-Length 2 MiB over a 1 MiB limit');
    }
    check(await c.waitClosed(), '413 (Content-Length): the server closes the connection');
    c.destroy();
  }
  // Same with Expect: 100-continue (curl's habit): no 100 Continue, straight 413.
  {
    const c = new Raw(port);
    await c.ready;
    await c.write(`POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n`);
    const r = await c.response();
    check(r && r.status === 413, '413 with Expect: 100-continue, no 100 first', r && r.status);
    c.destroy();
  }
  // Chunked body without a length that grows past the limit.
  {
    const c = new Raw(port);
    await c.ready;
    await c.write(`POST /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 24 && !c.closed; i++) await c.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    if (!c.closed) await c.write('0\r\n\r\n');
    const r = await c.response();
    check(r !== null, '413 (chunked): a response arrives');
    if (r) {
      noteId(r, '413 (chunked)');
      r.json = JSON.parse(r.body || 'null');
      checkAnthropicError(r, 413, 'request_too_large', 'chunked POST of 1.5 MiB over a 1 MiB limit');
    }
    c.destroy();
  }
  const h = await request(port, 'GET', '/health');
  check(h.status === 200, 'after the 413s the server still answers /health', h.status);
}

async function testKeepAlive(port) {
  const c = new Raw(port);
  await c.ready;
  let ok = 0;
  for (let i = 0; i < 200; i++) {
    const p = i % 2 ? '/health' : '/v1/models?beta=true';
    await c.write(reqText('GET', p, { 'x-api-key': KEY }));
    const r = await c.response();
    if (!r) break;
    noteId(r, `keep-alive #${i}`);
    if (r.status === 200 && r.headers.connection !== 'close' && JSON.parse(r.body)) ok++;
  }
  check(ok === 200, '200 sequential keep-alive requests on one connection: all 200', ok);
  check(!c.closed, 'the keep-alive connection is still open after 200 requests');
  c.destroy();
}

async function testHead(port) {
  // HEAD is GET without a body: same status and headers, then the next response follows
  // directly on the same connection (so no body bytes were sent).
  const c = new Raw(port);
  await c.ready;
  await c.write(reqText('HEAD', '/health') + reqText('GET', '/health'));
  const h = await c.response(10000, true);
  check(h && h.status === 200 && +h.headers['content-length'] > 0, 'HEAD /health: 200 with the GET length', h && h.headers);
  if (h) noteId(h, 'HEAD /health');
  const g = await c.response();
  check(g && g.status === 200 && g.body.length === +h.headers['content-length'] && JSON.parse(g.body).status === 'ok',
        'HEAD sent no body: the next response parses', g && g.body);
  c.destroy();
}

// Other key settings need their own servers: --api-key KEY and --api-key none.
async function testKeyOptions() {
  {
    const port = await freePort();
    const p = startServer(['-m', MODEL, '--port', String(port), '--api-key', 's3cret-key']);
    try {
      await waitHealthy(port, p);
      checkAnthropicError(await request(port, 'GET', '/v1/models', { 'x-api-key': KEY }), 401, 'authentication_error',
                          '--api-key s3cret-key: the default key is refused');
      const ok = await request(port, 'GET', '/v1/models', { Authorization: 'Bearer s3cret-key' });
      check(ok.status === 200, '--api-key s3cret-key: that key is accepted', ok.status);
    } finally {
      p.kill('SIGTERM');
      const res = await withTimeout(p.exited, 30000, 'custom-key server exit');
      check(res.code === 0 && !sanitizerReport(p.stderrText), 'custom-key server: clean exit 0', res);
    }
  }
  {
    const port = await freePort();
    const p = startServer(['-m', MODEL, '--port', String(port), '--api-key', 'none']);
    try {
      await waitHealthy(port, p);
      const ok = await request(port, 'GET', '/v1/models');
      check(ok.status === 200, '--api-key none: /v1/models without a key: 200', ok.status);
      const any = await request(port, 'GET', '/v1/models', { 'x-api-key': 'whatever' });
      check(any.status === 200, '--api-key none: any key is fine', any.status);
      check(/\[warn\].*authentication is disabled/.test(p.stderrText), '--api-key none: a warning is logged', p.stderrText);
    } finally {
      p.kill('SIGTERM');
      const res = await withTimeout(p.exited, 30000, 'no-key server exit');
      check(res.code === 0 && !sanitizerReport(p.stderrText), 'no-key server: clean exit 0', res);
    }
  }
}

async function testConcurrent(port) {
  // Several connections at once, each handled by its own thread.
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    request(port, 'GET', i % 2 ? '/health' : '/v1/models', { 'x-api-key': KEY })));
  check(rs.every((r) => r.status === 200), '12 concurrent requests: all 200', rs.map((r) => r.status));
  // A client stuck halfway through its body must not block anyone else.
  const slow = new Raw(port);
  await slow.ready;
  await slow.write(`POST /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\nContent-Length: 1000\r\n\r\n{"a":`);
  const t0 = Date.now();
  const h = await request(port, 'GET', '/health');
  check(h.status === 200 && Date.now() - t0 < 5000, 'a stalled upload does not block other clients', h.status);
  // It can still finish its request afterwards (a 405: POST is not allowed there).
  await slow.write('1'.repeat(1000 - 5));
  const sr = await slow.response();
  check(sr && sr.status === 405, 'the stalled upload completes later and is answered', sr && sr.status);
  slow.destroy();
}

async function testMalformed(port) {
  const junk = [
    '\x00\xff\xfe garbage \x01\x02\r\n\r\n',
    'GET\r\n\r\n',
    'GET / HTTP/9.9\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n',
    'POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
    'POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n',
    'POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n',
    `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(400 * 1024)}\r\n\r\n`,
  ];
  for (const j of junk) {
    const c = new Raw(port);
    await c.ready;
    await c.write(j);
    let r = null;
    try { r = await c.response(3000); } catch { /* no answer within 3 s is acceptable: we close */ }
    if (r) check((r.status >= 400 && r.status < 500) || r.status === 505,
                 `malformed request ${JSON.stringify(j.slice(0, 40))}: a 4xx (or 505 for a bad version)`, r.status);
    c.destroy();
  }
  // Half a request then a hang-up.
  const c = new Raw(port);
  await c.ready;
  await c.write('POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a"');
  c.destroy();
  const h = await request(port, 'GET', '/health');
  check(h.status === 200, 'the server still answers after malformed requests', h.status);
}

async function testPortInUse(port) {
  const p2 = startServer(['-m', MODEL, '--port', String(port)]);
  const res = await withTimeout(p2.exited, 60000, 'second server on the same port');
  check(res.code === 1, 'second server on a used port exits 1', res);
  check(/in use/i.test(p2.stderrText), 'second server says the address is in use', p2.stderrText);
}

async function testMissingModel() {
  const port = await freePort();
  const p = startServer(['-m', '/nonexistent/model.gguf', '--port', String(port)]);
  const res = await withTimeout(p.exited, 60000, 'missing model');
  check(res.code === 1, 'missing model: exit 1', res);
  check(/not found/i.test(p.stderrText) && p.stderrText.includes('/nonexistent/model.gguf'),
        'missing model: the error names the file', p.stderrText);
}

function sanitizerReport(text) {
  return /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/.test(text);
}

async function main() {
  const port = await freePort();
  const proc = startServer(['-m', MODEL, '--port', String(port), '--max-body-mb', '1']);
  const killer = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', killer);
  try {
    await waitHealthy(port, proc);
    check(/listening on http:\/\/127\.0\.0\.1:\d+/.test(proc.stderrText), 'logs "listening on http://HOST:PORT"', proc.stderrText);
    const tests = [testHealth, testModels, testAuth, testRouting, testBodyLimit, testKeepAlive,
                   testHead, testConcurrent, testMalformed, testPortInUse, testMissingModel, testKeyOptions];
    for (const t of tests) {
      try {
        await withTimeout(t(port, proc), 60000, t.name);
      } catch (e) {
        check(false, `${t.name} threw`, String(e && e.stack || e));
      }
    }
    check(proc.exitCode === null, 'the server is still running after all tests');
    proc.kill('SIGTERM');
    const res = await withTimeout(proc.exited, 30000, 'exit after SIGTERM');
    check(res.code === 0, 'SIGTERM: exit code 0', res);
    check(/SIGTERM received/.test(proc.stderrText), 'SIGTERM: logs the shutdown');
    check(!sanitizerReport(proc.stderrText), 'no sanitizer report in the server output', proc.stderrText.slice(-3000));
  } catch (e) {
    check(false, 'test harness', String(e && e.stack || e));
  } finally {
    killer();
  }
  console.log(`${checks - failures}/${checks} checks passed`);
  if (failures) {
    console.error('--- server output ---\n' + proc.stderrText.slice(-4000));
    process.exit(1);
  }
}

await main();
