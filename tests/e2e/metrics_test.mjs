// metrics_test.mjs — black-box test of GET /metrics and the request log of `pensieve start`
// on the real engine (stories260K). /metrics is parsed with a real Prometheus text-format
// parser (npm parse-prometheus-text-format, tests/node) and its counters must move by
// exactly what known requests imply: the expected numbers come from the API responses
// (usage, status) and from /proc/<pid>/statm, never from the server's own metrics. The JSON
// log (--log-format json --log-file) must parse line by line with the documented fields,
// hold one line per request with the right numbers, and never contain the API key or prompt
// text; a tiny rotation size (1 MiB with many requests) must produce FILE.1 and no more than
// --log-keep-files rotated files.
import { existsSync, mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { check, deadline, finish, requireFile, requireNode, startServer, stopServer, stories as model } from './harness.mjs';

const parseProm = requireNode('parse-prometheus-text-format');
requireFile(model);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const KEY = 'sk-metrics-Secret-7f3a9c';      // must never appear in the log
const MARKER = 'Zebraquokka';                 // prompt text: must never appear in the log
const dir = mkdtempSync(path.join(os.tmpdir(), 'pv-metrics-'));
const logFile = path.join(dir, 'pensieve.log');
const { proc: srv, base, port, stderr: serverStderr } = await startServer(model, ['--ctx-size', '256',
  '--parallel', '2', '--api-key', KEY, '--log-format', 'json', '--log-file', logFile, '--log-max-size-mb', '1',
  '--log-keep-files', '2'], { captureStderr: true });
const cancelDeadline = deadline(240000, () => srv.kill('SIGKILL'));

// The parsed exposition as { name: family } with the raw text, checking its shape.
async function scrape() {
  const r = await fetch(`${base}/metrics`);
  const text = await r.text();
  check(r.status === 200, `/metrics status 200 (got ${r.status})`);
  check((r.headers.get('content-type') || '').startsWith('text/plain; version=0.0.4'), `content type (${r.headers.get('content-type')})`);
  const fams = {};
  for (const f of parseProm(text)) fams[f.name] = f;
  return { fams, text };
}
const num = (v) => (v === undefined ? NaN : Number(v));
function value(m, name, labels = {}) {
  const f = m.fams[name];
  if (!f) return 0; // a labelled counter that has not been seen yet is absent (0)
  const s = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => (x.labels || {})[k] === v));
  return s ? num(s.value) : 0;
}
const hist = (m, name) => (m.fams[name] ? m.fams[name].metrics[0] : { count: '0', sum: '0', buckets: {} });

// Polls /metrics until pred holds (the record of a request is counted once its connection
// finishes, which may be just after the client has read the response); returns the scrape.
async function scrapeUntil(pred, what) {
  let m;
  for (let i = 0; i < 50; i++) {
    m = await scrape();
    if (pred(m)) return m;
    await sleep(100);
  }
  check(false, `metrics reach: ${what}`);
  return m;
}

const H = { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
async function post(p, body, headers = H) {
  const r = await fetch(`${base}${p}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  let json = null; try { json = JSON.parse(text); } catch { /* SSE */ }
  return { status: r.status, json, text, id: r.headers.get('request-id') };
}
const msg = (extra = {}) => ({ model: 'claude-metrics-test', max_tokens: 5, temperature: 0,
  messages: [{ role: 'user', content: `Once upon a time ${MARKER} went` }], ...extra });

function statmResident(pid) {
  const f = readFileSync(`/proc/${pid}/statm`, 'utf8').trim().split(/\s+/);
  return Number(f[1]) * 4096; // x86-64 Linux pages
}

try {
  const m0 = await scrape();

  // --- shape of the exposition ---
  const want = {
    pensieve_requests_total: 'COUNTER', pensieve_prompt_tokens_total: 'COUNTER',
    pensieve_generated_tokens_total: 'COUNTER', pensieve_client_disconnects_total: 'COUNTER',
    pensieve_requests_active: 'GAUGE', pensieve_requests_queued: 'GAUGE',
    pensieve_kv_cache_usage_ratio: 'GAUGE', pensieve_model_load_seconds: 'GAUGE',
    pensieve_process_resident_memory_bytes: 'GAUGE', pensieve_uptime_seconds: 'GAUGE',
    pensieve_time_to_first_token_seconds: 'HISTOGRAM', pensieve_time_per_output_token_seconds: 'HISTOGRAM',
  };
  for (const [name, type] of Object.entries(want)) {
    check(m0.fams[name] && m0.fams[name].type === type, `${name} is a ${type}`);
    check(m0.fams[name] && m0.fams[name].help.length > 10, `${name} has HELP`);
  }
  for (const name of Object.keys(m0.fams)) check(name.startsWith('pensieve_'), `prefix: ${name}`);
  check(value(m0, 'pensieve_model_load_seconds') > 0, 'model load time > 0');
  const rss = value(m0, 'pensieve_process_resident_memory_bytes');
  const rssOracle = statmResident(srv.pid);
  check(rss > 1e6 && Math.abs(rss - rssOracle) / rssOracle < 0.5, `resident memory ${rss} ~ /proc statm ${rssOracle}`);

  // --- 3 generations, a 401, a count_tokens ---
  const outs = [];
  for (let i = 0; i < 3; i++) outs.push(await post('/v1/messages', msg()));
  for (const o of outs) {
    check(o.status === 200 && o.json && o.json.usage, `generation 200 (${o.status} ${o.text.slice(0, 200)})`);
    check(o.json && o.json.usage.output_tokens === 5 && o.json.stop_reason === 'max_tokens', `5 tokens generated (${o.json && JSON.stringify(o.json.usage)})`);
  }
  const bad = await post('/v1/messages', msg(), { ...H, 'x-api-key': 'wrong-key' });
  check(bad.status === 401, `wrong key → 401 (${bad.status})`);
  const ct = await post('/v1/messages/count_tokens', { model: 'x', messages: [{ role: 'user', content: 'hi' }] });
  check(ct.status === 200, 'count_tokens 200');
  const sumIn = outs.reduce((a, o) => a + (o.json ? o.json.usage.input_tokens : 0), 0);
  const sumOut = outs.reduce((a, o) => a + (o.json ? o.json.usage.output_tokens : 0), 0);
  check(sumOut === 15, `usage says 15 generated tokens (${sumOut})`);

  const R = (route, status) => ({ route, status: String(status) });
  const d = (m, name, labels) => value(m, name, labels) - value(m0, name, labels);
  const m1 = await scrapeUntil((m) => d(m, 'pensieve_requests_total', R('/v1/messages/count_tokens', 200)) >= 1 &&
    d(m, 'pensieve_requests_total', R('/v1/messages', 200)) >= 3, 'the 5 requests counted');
  check(d(m1, 'pensieve_requests_total', R('/v1/messages', 200)) === 3, `requests{/v1/messages,200} +3 (${d(m1, 'pensieve_requests_total', R('/v1/messages', 200))})`);
  check(d(m1, 'pensieve_requests_total', R('/v1/messages', 401)) === 1, 'requests{/v1/messages,401} +1');
  check(d(m1, 'pensieve_requests_total', R('/v1/messages/count_tokens', 200)) === 1, 'requests{count_tokens,200} +1');
  check(value(m1, 'pensieve_requests_total', R('/metrics', 200)) >= 1, 'the scrapes themselves are counted');
  // count_tokens is not a generation: the token counters move by the generations only
  check(d(m1, 'pensieve_prompt_tokens_total') === sumIn, `prompt tokens +${sumIn} (${d(m1, 'pensieve_prompt_tokens_total')})`);
  check(d(m1, 'pensieve_generated_tokens_total') === 15, `generated tokens +15 (${d(m1, 'pensieve_generated_tokens_total')})`);
  for (const h of ['pensieve_time_to_first_token_seconds', 'pensieve_time_per_output_token_seconds']) {
    const a = hist(m0, h), b = hist(m1, h);
    check(num(b.count) - num(a.count) === 3, `${h}_count +3 (${num(b.count) - num(a.count)})`);
    check(num(b.sum) > num(a.sum), `${h}_sum grows`);
    const les = Object.keys(b.buckets).filter((k) => k !== '+Inf').map(Number).sort((x, y) => x - y);
    let prev = 0, mono = true;
    for (const le of les) { const c = num(b.buckets[String(le)]); if (c < prev) mono = false; prev = c; }
    check(mono && num(b.buckets['+Inf']) === num(b.count) && prev <= num(b.count), `${h} buckets cumulative, +Inf = count`);
  }
  check(value(m1, 'pensieve_requests_active') === 0 && value(m1, 'pensieve_requests_queued') === 0, 'idle: 0 active, 0 queued');
  const kv = value(m1, 'pensieve_kv_cache_usage_ratio');
  check(kv === 0, `idle KV cache usage 0 (${kv})`);

  // /health carries the same totals (for `pensieve status`)
  const hj = await (await fetch(`${base}/health`)).json();
  check(hj.tokens && hj.tokens.generated === value(m1, 'pensieve_generated_tokens_total') &&
        hj.tokens.prompt === value(m1, 'pensieve_prompt_tokens_total'), `/health tokens ${JSON.stringify(hj.tokens)}`);
  check(hj.memory_bytes > 1e6, '/health memory');

  // --- a client that leaves in the middle of its request body: a disconnect, no status ---
  await new Promise((res) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"model":`);
      setTimeout(() => { sock.destroy(); res(); }, 100);
    });
  });
  const mGone = await scrapeUntil((m) => d(m, 'pensieve_client_disconnects_total') >= 1, 'the aborted upload counted');
  check(d(mGone, 'pensieve_client_disconnects_total') === 1, 'client disconnects +1 (aborted upload)');
  check(d(mGone, 'pensieve_requests_total', R('/v1/messages', 200)) === 3 && d(mGone, 'pensieve_requests_total', R('/v1/messages', 401)) === 1,
    'a request that got no response is not counted by status');

  // --- a streaming client that leaves mid-generation: KV in use while it runs, a disconnect
  // counted. The full length at temperature 0 (the oracle for "cut short") comes from the
  // same request without streaming.
  const full = await post('/v1/messages', msg({ max_tokens: 200 }));
  const fullN = full.json ? full.json.usage.output_tokens : -1;
  check(fullN > 5, `reference generation (${fullN} tokens)`);
  const ac = new AbortController();
  const sr = await fetch(`${base}/v1/messages`, { method: 'POST', headers: H, signal: ac.signal,
    body: JSON.stringify(msg({ max_tokens: 200, stream: true })) });
  const streamId = sr.headers.get('request-id');
  const reader = sr.body.getReader();
  let got = '';
  while (!got.includes('content_block_delta')) { const { value: v, done } = await reader.read(); if (done) break; got += Buffer.from(v).toString(); }
  const mBusy = await scrape();
  ac.abort();
  // the stream's own log line says how far it got; the checks below need it cut short (a
  // stream that finished before the abort — a very fast machine — proves nothing here)
  let ls = null;
  for (let i = 0; i < 50 && !ls; i++) {
    await sleep(100);
    ls = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes(streamId)).map((l) => JSON.parse(l))[0] || null;
  }
  check(ls !== null, 'the stream has its log line');
  const cut = ls && ls.fields.output_tokens < fullN;
  if (cut) {
    check(value(mBusy, 'pensieve_kv_cache_usage_ratio') > 0 && value(mBusy, 'pensieve_kv_cache_usage_ratio') <= 1,
      `KV cache in use while streaming (${value(mBusy, 'pensieve_kv_cache_usage_ratio')})`);
    check(value(mBusy, 'pensieve_requests_active') === 1, 'one active while streaming');
    check(ls.fields.client_disconnected === true && ls.fields.status === 200 && ls.fields.output_tokens >= 1,
      `disconnected stream line ${JSON.stringify(ls)}`);
    const m2 = await scrapeUntil((m) => d(m, 'pensieve_client_disconnects_total') >= 2, 'the stream disconnect counted');
    check(d(m2, 'pensieve_client_disconnects_total') === 2, 'client disconnects +2 (upload, stream)');
  } else {
    console.log(`note: the stream finished (${ls && ls.fields.output_tokens} of ${fullN} tokens) before the client left: mid-stream checks skipped`);
  }
  // the engine frees the cancelled sequence at its next step: soon, not necessarily yet
  await scrapeUntil((m) => value(m, 'pensieve_requests_active') === 0 && value(m, 'pensieve_kv_cache_usage_ratio') === 0,
    'the abandoned stream is cancelled (0 active, KV cache empty)');

  // --- the log ---
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.length);
  let allJson = true;
  const recs = [];
  for (const l of lines) {
    let j = null; try { j = JSON.parse(l); } catch { allJson = false; console.log(`not JSON: ${l}`); continue; }
    const ok = typeof j.time === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(j.time) &&
      ['error', 'warn', 'info', 'debug', 'trace'].includes(j.level) && typeof j.component === 'string' &&
      typeof j.message === 'string' && j.fields && typeof j.fields === 'object';
    if (!ok) { allJson = false; console.log(`bad shape: ${l}`); }
    recs.push(j);
  }
  check(lines.length > 5 && allJson, `every log line is JSON with time/level/component/message/fields (${lines.length} lines)`);
  check(!readFileSync(logFile, 'utf8').includes(KEY), 'the API key is never logged');
  check(!readFileSync(logFile, 'utf8').includes(MARKER), 'prompt text is never logged');
  check(recs.some((j) => j.level === 'info' && /listening on http/.test(j.message)), 'startup lines are in the file');
  const byId = (id) => recs.filter((j) => j.component === 'http' && j.fields.request_id === id);
  for (const o of outs) {
    const l = byId(o.id);
    check(l.length === 1, `one line for ${o.id} (${l.length})`);
    const f = l[0] ? l[0].fields : {};
    check(l[0] && l[0].level === 'info' && f.status === 200 && f.route === '/v1/messages' && f.method === 'POST' &&
          f.model === 'claude-metrics-test', `request line fields ${JSON.stringify(f)}`);
    check(o.json && f.input_tokens === o.json.usage.input_tokens && f.output_tokens === 5 && f.cached_tokens === 0,
          `request line tokens ${JSON.stringify(f)}`);
    check(f.ttft_ms > 0 && f.ttft_ms <= f.duration_ms && f.tokens_per_s > 0, `ttft and tokens/s ${JSON.stringify(f)}`);
    check(f.client_disconnected === undefined, 'no disconnect flag on a finished request');
  }
  const lb = byId(bad.id)[0];
  check(lb && lb.fields.status === 401 && lb.fields.input_tokens === undefined, `401 line ${JSON.stringify(lb)}`);
  const lg = recs.find((j) => j.component === 'http' && j.fields.status === 0);
  check(lg && lg.fields.client_disconnected === true && lg.fields.route === '/v1/messages', `aborted upload line ${JSON.stringify(lg)}`);

  // --- rotation: ~1 MiB of request lines with keep_files 2 ---
  // 404s on long unmatched paths make long lines cheaply (the path is cut at 256 bytes).
  const longPath = '/nothing/' + 'a'.repeat(240);
  let sent = 0;
  const worker = async () => {
    while (sent < 6000 && !existsSync(`${logFile}.1`)) { sent++; await (await fetch(`${base}${longPath}`)).arrayBuffer(); }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  await sleep(200);
  check(existsSync(`${logFile}.1`), `${logFile}.1 exists after ${sent} requests`);
  const rotated = readdirSync(dir).filter((n) => n.startsWith('pensieve.log.'));
  check(rotated.length >= 1 && rotated.length <= 2 && !existsSync(`${logFile}.3`), `at most keep_files rotated files (${rotated})`);
  const s1 = readFileSync(`${logFile}.1`, 'utf8');
  check(s1.length <= 1 << 20 && s1.length > (1 << 20) - 4096, `FILE.1 is about the 1 MiB limit (${s1.length})`);
  check(s1.endsWith('\n') && s1.split('\n').filter((l) => l).every((l) => { try { JSON.parse(l); return true; } catch { return false; } }),
    'rotated file holds whole JSON lines');
  const m3 = await scrapeUntil((m) => value(m, 'pensieve_requests_total', R('unmatched', 404)) >= sent, 'the 404s counted');
  check(value(m3, 'pensieve_requests_total', R('unmatched', 404)) === sent, `unmatched 404s counted under one label (${sent})`);
} catch (e) {
  check(false, `exception ${e.stack}`);
}
const code = await stopServer(srv);
cancelDeadline();
check(code === 0, `server exits 0 after SIGTERM (got ${code})`); // sanitizer reports exit non-zero
if (!check(!/Sanitizer/.test(serverStderr()), 'no sanitizer report')) console.log(`server stderr:\n${serverStderr().slice(-3000)}`);
rmSync(dir, { recursive: true, force: true });
finish();
