// api_gen_test.mjs — black-box tests of the generation routes against the real server on
// the real engine (stories260K; no mock): /v1/messages (JSON and SSE), count_tokens,
// /v1/chat/completions (JSON and SSE), stop sequences, errors, context overflow and
// max_tokens clamping, concurrency isolation (each request alone vs. all at once at
// temperature 0), and a client that disconnects mid-stream (its slot is freed).
import { KEY, check, deadline, finish, requireFile, startServer, stopServer, stories } from './harness.mjs';

requireFile(stories);
const cancelDeadline = deadline(240000);
const { proc: srv, base, stderr } = await startServer(stories, ['--ctx-size', '256', '--parallel', '4'],
  { captureStderr: true });

const H = { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
async function post(path, body, extra = {}) {
  const r = await fetch(`${base}${path}?beta=true`, { method: 'POST', headers: { ...H, ...extra }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null; try { json = JSON.parse(text); } catch { /* SSE or bad */ }
  return { status: r.status, text, json, headers: r.headers };
}
function parseSSE(text) {
  const events = [];
  for (const frame of text.split('\n\n')) {
    if (!frame.trim()) continue;
    let ev = null, dat = null;
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) ev = line.slice(7);
      else if (line.startsWith('data: ')) dat = line.slice(6);
    }
    events.push({ event: ev, data: dat });
  }
  return events;
}
const msg = (content, extra = {}) => ({ model: 'claude-opus-4-1', max_tokens: 24, temperature: 0, messages: [{ role: 'user', content }], ...extra });

try {

  // non-streaming
  const a = await post('/v1/messages', msg('Once upon a time'));
  check(a.status === 200, `messages 200 (got ${a.status} ${a.text})`);
  const m = a.json;
  check(m && m.type === 'message' && m.role === 'assistant' && m.model === 'claude-opus-4-1', 'message shape + echoed model');
  check(m && m.id.startsWith('msg_'), 'message id');
  check(m && m.content.length === 1 && m.content[0].type === 'text' && m.content[0].text.length > 0, 'one text block');
  check(m && m.stop_reason === 'max_tokens' && m.stop_sequence === null, `stop_reason max_tokens (${m && m.stop_reason})`);
  check(m && m.usage.output_tokens === 24 && m.usage.cache_read_input_tokens === 0 && m.usage.cache_creation_input_tokens === 0, 'usage');
  check(/^req_/.test(a.headers.get('request-id') || ''), 'request-id header');
  const text = m ? m.content[0].text : '';

  // count_tokens = input_tokens of generation
  const c = await post('/v1/messages/count_tokens', { model: 'x', messages: [{ role: 'user', content: 'Once upon a time' }] });
  check(c.status === 200 && c.json && c.json.input_tokens === m.usage.input_tokens, `count_tokens ${c.text} vs ${m && m.usage.input_tokens}`);

  // determinism at temperature 0
  const a2 = await post('/v1/messages', msg('Once upon a time'));
  check(a2.json && a2.json.content[0].text === text, 'same text twice at temperature 0');

  // stop sequence: a word from the middle of the text
  const words = text.split(/\s+/).filter((w) => /^[A-Za-z]{3,}$/.test(w));
  const stopWord = words.length > 1 ? words[1] : words[0];
  if (stopWord) {
    const s = await post('/v1/messages', msg('Once upon a time', { stop_sequences: ['qqqq', stopWord] }));
    const st = s.json;
    check(st && st.stop_reason === 'stop_sequence' && st.stop_sequence === stopWord, `stop_sequence reported (${s.text})`);
    const cut = text.indexOf(stopWord);
    check(st && st.content.map((b) => b.text).join('') === text.slice(0, cut), 'text ends right before the stop sequence');
  } else check(false, `no word to stop on in ${JSON.stringify(text)}`);

  // streaming
  const sres = await post('/v1/messages', msg('Once upon a time', { stream: true }));
  check(sres.status === 200 && (sres.headers.get('content-type') || '').startsWith('text/event-stream'), 'SSE content type');
  const evs = parseSSE(sres.text);
  const names = evs.map((e) => e.event);
  check(names[0] === 'message_start' && names.filter((n) => n === 'message_start').length === 1, 'message_start first and once');
  check(names[names.length - 1] === 'message_stop', 'message_stop last');
  check(names.includes('ping'), 'ping sent');
  check(!sres.text.includes('[DONE]'), 'no [DONE] on the Anthropic stream');
  check(evs.every((e) => e.event && e.data && JSON.parse(e.data).type === e.event), 'each data.type equals its event name');
  const deltas = evs.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data));
  check(deltas.every((d) => d.index === 0 && d.delta.type === 'text_delta'), 'text deltas on block 0');
  check(deltas.map((d) => d.delta.text).join('') === text, 'streamed text equals the JSON text');
  const md = evs.filter((e) => e.event === 'message_delta').map((e) => JSON.parse(e.data));
  check(md.length === 1 && md[0].delta.stop_reason === 'max_tokens' && md[0].usage.output_tokens === 24, 'message_delta');
  const order = names.filter((n) => n.startsWith('content_block'));
  check(order[0] === 'content_block_start' && order[order.length - 1] === 'content_block_stop', 'block start/stop around deltas');

  // errors
  const bad = await post('/v1/messages', '{"model": "x", ');
  check(bad.status === 400 && bad.json && bad.json.type === 'error' && bad.json.error.type === 'invalid_request_error', 'bad JSON → 400');
  const nomax = await post('/v1/messages', { model: 'x', messages: [{ role: 'user', content: 'hi' }] });
  check(nomax.status === 400 && /max_tokens/.test(nomax.text), `missing max_tokens → 400 (${nomax.text})`);
  const img = await post('/v1/messages', { model: 'x', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] });
  check(img.status === 400 && /image/i.test(img.text), `image → 400 (${img.text})`);
  const long = await post('/v1/messages', msg('Once upon a time there was a dog. '.repeat(60)));
  check(long.status === 400 && /prompt is too long: \d+ tokens > 255 maximum/.test(long.text), `prompt too long → 400 (${long.text.slice(0, 200)})`);
  const clamp = await post('/v1/messages', msg('Once upon a time', { max_tokens: 128000 }));
  check(clamp.status === 200 && clamp.json && ['end_turn', 'model_context_window_exceeded'].includes(clamp.json.stop_reason), `max_tokens clamped (${clamp.json && clamp.json.stop_reason})`);
  const noauth = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(msg('hi')) });
  check(noauth.status === 401, 'no key → 401');

  // OpenAI
  const oreq = { model: 'gpt-x', max_tokens: 24, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] };
  const o = await post('/v1/chat/completions', oreq, { authorization: `Bearer ${KEY}` });
  check(o.status === 200 && o.json && o.json.object === 'chat.completion' && o.json.choices[0].finish_reason === 'length', `chat.completion (${o.text.slice(0, 200)})`);
  check(o.json && o.json.choices[0].message.content === text, 'OpenAI text equals the Anthropic text for the same prompt');
  const os = await post('/v1/chat/completions', { ...oreq, stream: true, stream_options: { include_usage: true } }, { authorization: `Bearer ${KEY}` });
  const lines = os.text.split('\n\n').filter((l) => l.trim());
  check(lines[lines.length - 1] === 'data: [DONE]', 'OpenAI stream ends with [DONE]');
  const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.replace(/^data: /, '')));
  const otext = chunks.filter((ch) => ch.choices && ch.choices[0] && ch.choices[0].delta && ch.choices[0].delta.content).map((ch) => ch.choices[0].delta.content).join('');
  check(otext === text, 'OpenAI streamed text');
  check(chunks.some((ch) => ch.usage && ch.usage.completion_tokens === 24), 'include_usage chunk');
  const obad = await post('/v1/chat/completions', '{', { authorization: `Bearer ${KEY}` });
  check(obad.status === 400 && obad.json && obad.json.error && typeof obad.json.error.message === 'string', 'OpenAI error shape');

  // isolation: alone vs concurrent
  const prompts = ['Lily and Ben', 'The dog was', 'One day, a bird', 'Tom had a big red', 'She said', 'The sun'];
  const alone = [];
  for (const p of prompts) alone.push((await post('/v1/messages', msg(p, { max_tokens: 30 }))).json.content[0].text);
  const together = await Promise.all(prompts.map((p, i) => post('/v1/messages', msg(p, { max_tokens: 30, stream: i % 2 === 1 }))));
  together.forEach((r, i) => {
    const t = r.json ? r.json.content[0].text : parseSSE(r.text).filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta.text).join('');
    check(t === alone[i], `concurrent request ${i} equals its output alone`);
  });

  // disconnect mid-stream: the slot is freed
  const ac = new AbortController();
  const r = await fetch(`${base}/v1/messages`, { method: 'POST', headers: H, body: JSON.stringify(msg('Once', { max_tokens: 200, stream: true })), signal: ac.signal });
  const reader = r.body.getReader();
  await reader.read();
  ac.abort();
  let idle = false;
  for (let i = 0; i < 50 && !idle; i++) {
    await new Promise((res) => setTimeout(res, 100));
    const h = await (await fetch(`${base}/health`)).json();
    idle = h.requests && h.requests.active === 0 && h.requests.queued === 0;
  }
  check(idle, 'disconnected stream freed its slot');
  const after = await post('/v1/messages', msg('Once upon a time'));
  check(after.json && after.json.content[0].text === text, 'server still serves the same text afterwards');
} catch (e) {
  check(false, `exception: ${e.stack}`);
}
const code = await stopServer(srv);
cancelDeadline();
check(code === 0, `server exit code ${code}`);
check(!/AddressSanitizer|runtime error|LeakSanitizer/.test(stderr()), `no sanitizer report: ${stderr().slice(-500)}`);
finish();
