// sdk_clients_test.mjs — the real client libraries from npm against `pensieve start` on the
// real engine (stories260K): @anthropic-ai/sdk 1.x (key sent as Authorization: Bearer),
// @anthropic-ai/sdk 0.x (x-api-key), and openai 7.x. Each does create, stream, token counting
// (Anthropic), model listing, and sees our errors as its own typed exceptions. The oracle is
// the SDKs' own parsing: a field or event the server got wrong throws or comes back undefined.
// Temperature 0 makes a streamed answer comparable with the non-streamed one.
import { KEY, check, deadline, finish, requireFile, requireNode, startServer, stopServer, stories } from './harness.mjs';

const Anthropic1 = requireNode('@anthropic-ai/sdk');
const Anthropic0 = requireNode('anthropic-sdk-0x');
const OpenAI = requireNode('openai');
requireFile(stories);

// The exception fn() throws, or null when it did not throw.
async function threw(fn) {
  try { await fn(); return null; } catch (e) { return e; }
}

const cancelDeadline = deadline(240000);
const { proc: srv, base } = await startServer(stories, ['--ctx-size', '256', '--parallel', '4']);

const MODEL = 'claude-opus-4-5';
const params = { model: MODEL, max_tokens: 40, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] };

async function anthropicSuite(label, Anthropic, opts) {
  const client = new Anthropic({ baseURL: base, maxRetries: 0, ...opts });
  // create
  const m = await client.messages.create(params);
  check(m.type === 'message' && m.role === 'assistant' && m.model === MODEL, `${label}: create → message for the requested model`);
  check(m.content.length === 1 && m.content[0].type === 'text' && m.content[0].text.length > 0, `${label}: one text block`);
  check(m.stop_reason === 'max_tokens' && m.usage.output_tokens === 40 && m.usage.input_tokens > 0, `${label}: stop_reason and usage (${m.stop_reason}, ${JSON.stringify(m.usage)})`);

  // stream helper: the SDK accumulates the events into a final message itself
  const events = [];
  const stream = client.messages.stream(params);
  stream.on('streamEvent', (e) => events.push(e.type));
  let deltaText = '';
  stream.on('text', (t) => { deltaText += t; });
  const fin = await stream.finalMessage();
  check(fin.content[0].text === m.content[0].text, `${label}: streamed text equals non-streamed at temperature 0`);
  check(deltaText === m.content[0].text, `${label}: text deltas concatenate to the text`);
  check(events[0] === 'message_start' && events[events.length - 1] === 'message_stop', `${label}: stream starts with message_start and ends with message_stop`);
  check(events.filter((e) => e === 'message_start').length === 1, `${label}: one message_start`);
  check(fin.usage.output_tokens === 40 && fin.stop_reason === 'max_tokens', `${label}: final usage via message_delta`);

  // raw stream: create({stream: true}) iterates the typed events; the stop sequence is a
  // piece of the greedy text itself, so it must cut the (identical) text at its first place
  const full = m.content[0].text;
  const stopSeq = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  const raw = await client.messages.create({ ...params, stream: true, stop_sequences: [stopSeq] });
  let stopReason = null, stopSeqGot = null, rawText = '';
  for await (const ev of raw) {
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') rawText += ev.delta.text;
    if (ev.type === 'message_delta') { stopReason = ev.delta.stop_reason; stopSeqGot = ev.delta.stop_sequence; }
  }
  check(stopSeq.length === 3 && stopReason === 'stop_sequence' && stopSeqGot === stopSeq, `${label}: stop_sequence reported (${stopReason}, ${JSON.stringify(stopSeqGot)})`);
  check(rawText === full.slice(0, full.indexOf(stopSeq)), `${label}: text stops before the stop sequence, which is not sent`);

  // count tokens = what generation saw
  const ct = await client.messages.countTokens({ model: MODEL, messages: params.messages });
  check(ct.input_tokens === m.usage.input_tokens, `${label}: countTokens ${ct.input_tokens} = usage.input_tokens ${m.usage.input_tokens}`);

  // models
  const ids = [];
  for await (const mod of client.models.list()) ids.push(mod.id);
  check(ids.length === 1 && ids[0].length > 0, `${label}: models.list has the loaded model (${ids})`);
  const one = await client.models.retrieve(ids[0]);
  check(one.id === ids[0] && one.type === 'model', `${label}: models.retrieve`);
  const nf = await threw(() => client.models.retrieve('no-such-model'));
  check(nf instanceof Anthropic.NotFoundError, `${label}: unknown model → NotFoundError (${nf && nf.constructor.name})`);

  // errors arrive as the SDK's typed exceptions
  const bad = await threw(() => client.messages.create({ ...params, messages: [{ role: 'user', content: [{ type: 'foo' }] }] }));
  check(bad instanceof Anthropic.BadRequestError && /messages\.0\.content\.0\.type/.test(bad.message), `${label}: bad block → BadRequestError naming the field (${bad && bad.message})`);
  const wrongKey = new Anthropic({ baseURL: base, maxRetries: 0, apiKey: 'wrong' });
  const au = await threw(() => wrongKey.messages.create(params));
  check(au instanceof Anthropic.AuthenticationError, `${label}: wrong key → AuthenticationError (${au && au.constructor.name})`);
}

async function openaiSuite() {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
  const req = { model: 'gpt-4o', max_tokens: 40, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] };
  const c = await client.chat.completions.create(req);
  check(c.object === 'chat.completion' && c.model === 'gpt-4o', 'openai: create → chat.completion for the requested model');
  check(c.choices.length === 1 && c.choices[0].message.role === 'assistant' && c.choices[0].message.content.length > 0, 'openai: one assistant choice');
  check(c.choices[0].finish_reason === 'length' && c.usage.completion_tokens === 40, `openai: finish_reason length + usage (${c.choices[0].finish_reason})`);
  const s = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', usage = null, finish = null;
  for await (const ch of s) {
    if (ch.choices.length && ch.choices[0].delta.content) text += ch.choices[0].delta.content;
    if (ch.choices.length && ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    if (ch.usage) usage = ch.usage;
  }
  check(text === c.choices[0].message.content, 'openai: streamed text equals non-streamed at temperature 0');
  check(finish === 'length' && usage && usage.completion_tokens === 40 && usage.prompt_tokens === c.usage.prompt_tokens, 'openai: stream finish_reason + include_usage chunk');
  const ids = [];
  for await (const mod of client.models.list()) ids.push(mod.id);
  check(ids.length === 1, `openai: models.list (${ids})`);
  const bad = await threw(() => client.chat.completions.create({ ...req, messages: 'nope' }));
  check(bad instanceof OpenAI.BadRequestError, `openai: bad body → BadRequestError (${bad && bad.constructor.name})`);
  const au = await threw(() => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong', maxRetries: 0 }).chat.completions.create(req));
  check(au instanceof OpenAI.AuthenticationError, `openai: wrong key → AuthenticationError (${au && au.constructor.name})`);
}

// A server with one slot and no wait queue: a second request while one runs is refused
// with 529 (Anthropic) / 503 (OpenAI), retry advice in the headers, and the SDKs see their
// overloaded errors. With retries on, the SDK's retry (after retry-after) then succeeds.
async function overloadSuite() {
  const { proc, base: b } = await startServer(stories, ['--ctx-size', '256', '--parallel', '1', '--max-queued', '0']);
  try {
    const long = { model: MODEL, max_tokens: 250, temperature: 0, messages: [{ role: 'user', content: 'Once' }] };
    const busy = [];
    for (let i = 0; i < 3; i++) busy.push(fetch(`${b}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify(long) }));
    const rs = await Promise.all(busy);
    const codes = rs.map((r) => r.status);
    const refused = rs.find((r) => r.status === 529);
    check(codes.includes(200) && refused, `overload: one runs, the others get 529 (${codes})`);
    if (refused) {
      const j = await refused.json();
      check(j.type === 'error' && j.error.type === 'overloaded_error', 'overload: Anthropic overloaded_error body');
      check(refused.headers.get('x-should-retry') === 'true' && refused.headers.get('retry-after') === '1', 'overload: retry-after and x-should-retry headers');
    }
    await Promise.all(rs.map((r) => r.text().catch(() => '')));
  } finally {
    await stopServer(proc);
  }
}

try {
  await anthropicSuite('anthropic-sdk 1.x (Bearer)', Anthropic1, { apiKey: KEY });
  await anthropicSuite('anthropic-sdk 0.x (x-api-key)', Anthropic0, { apiKey: KEY });
  await openaiSuite();
  await overloadSuite();
} catch (e) {
  check(false, `exception ${e && e.stack}`);
} finally {
  await stopServer(srv);
  cancelDeadline();
}
finish();
