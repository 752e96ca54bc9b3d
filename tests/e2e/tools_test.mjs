// tools_test.mjs — tool use end to end, against `pensieve start` on the random-weight
// fixture models (real vocabularies and chat templates; qwen3 → Hermes <tool_call>, llama →
// Llama 3 JSON, phi3 → the bare-JSON fallback). A random model never writes a valid tool call
// by chance, so every valid call here is the work of constrained decoding plus the output
// parser. The oracle for "valid" is ajv (an independent JSON Schema validator) on the tool's
// own input_schema; the SDK-level shapes are checked with the Anthropic and OpenAI SDKs.
import { KEY, check, deadline, finish, fixtures, requireFile, requireNode, startServer, stopServer, stories } from './harness.mjs';

const Anthropic = requireNode('@anthropic-ai/sdk');
const OpenAI = requireNode('openai');
const Ajv = requireNode('ajv');
const ajv = new Ajv({ strict: false, allErrors: true });

// Tool schemas shaped like Claude Code's (Bash, Read, Edit, TodoWrite) plus the keywords the
// grammar supports: enums, nested objects, arrays with bounds, unions, integers, booleans.
const tools = [
  { name: 'Bash', description: 'Run a shell command', input_schema: { type: 'object', properties: { command: { type: 'string', maxLength: 40 }, timeout: { type: 'integer' }, run_in_background: { type: 'boolean' } }, required: ['command'], additionalProperties: false } },
  { name: 'Read', description: 'Read a file', input_schema: { type: 'object', properties: { file_path: { type: 'string', maxLength: 30 }, offset: { type: 'number' }, limit: { type: ['integer', 'null'] } }, required: ['file_path'] } },
  { name: 'TodoWrite', description: 'Update the todo list', input_schema: { type: 'object', properties: { todos: { type: 'array', minItems: 1, maxItems: 2, items: { type: 'object', properties: { content: { type: 'string', maxLength: 12 }, status: { enum: ['pending', 'in_progress', 'completed'] }, priority: { type: 'string', enum: ['high', 'low'] } }, required: ['content', 'status'], additionalProperties: false } } }, required: ['todos'] } },
];
const validators = Object.fromEntries(tools.map((t) => [t.name, ajv.compile(t.input_schema)]));
const openaiTools = tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } }));

function validCall(block, allowed, label) {
  const v = validators[block.name];
  check(allowed.includes(block.name), `${label}: called a demanded tool (${block.name})`);
  const ok = v ? v(block.input) : false;
  check(ok, `${label}: input validates against ${block.name}'s schema: ${JSON.stringify(block.input)} ${v && JSON.stringify(v.errors)}`);
}

async function anthropicForced(base, label) {
  const client = new Anthropic({ baseURL: base, apiKey: KEY, maxRetries: 0 });
  const msgs = [{ role: 'user', content: 'List the files, then read the README.' }];
  // tool_choice any, non-streaming, several seeds (temperature 1: different calls)
  const seen = new Set();
  for (let i = 0; i < 4; i++) {
    const m = await client.messages.create({ model: 'claude-opus-4-5', max_tokens: 300, messages: msgs, tools, tool_choice: { type: 'any' } });
    const uses = m.content.filter((b) => b.type === 'tool_use');
    check(m.stop_reason === 'tool_use', `${label} any #${i}: stop_reason tool_use (${m.stop_reason}: ${JSON.stringify(m.content).slice(0, 300)})`);
    check(uses.length === 1 && /^toolu_[A-Za-z0-9]{24}$/.test(uses[0].id), `${label} any #${i}: one tool_use block with a toolu_ id`);
    check(m.content.every((b) => b.type === 'tool_use'), `${label} any #${i}: nothing but the call (forced)`);
    if (uses.length) { validCall(uses[0], tools.map((t) => t.name), `${label} any #${i}`); seen.add(JSON.stringify(uses[0].input)); }
  }
  check(seen.size > 1, `${label}: different seeds give different calls (${seen.size})`);
  // tool_choice tool, streaming: the call arrives as a tool_use block whose input_json_delta
  // pieces concatenate to the input
  const stream = await client.messages.create({ model: 'claude-opus-4-5', max_tokens: 300, messages: msgs, tools, tool_choice: { type: 'tool', name: 'TodoWrite' }, stream: true });
  let start = null, json = '', reason = null, types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_start' && ev.content_block.type === 'tool_use') start = ev.content_block;
    if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') json += ev.delta.partial_json;
    if (ev.type === 'message_delta') reason = ev.delta.stop_reason;
  }
  check(start && start.name === 'TodoWrite' && JSON.stringify(start.input) === '{}', `${label} stream: content_block_start tool_use TodoWrite with input {}`);
  let input = null;
  try { input = JSON.parse(json); } catch { /* checked below */ }
  check(input !== null, `${label} stream: input_json_delta pieces form JSON (${json})`);
  if (input) validCall({ name: 'TodoWrite', input }, ['TodoWrite'], `${label} stream`);
  check(reason === 'tool_use' && types[types.length - 1] === 'message_stop', `${label} stream: stop_reason tool_use, message_stop last`);
  // the SDK's own accumulation gives the same input object
  const fin = await client.messages.stream({ model: 'claude-opus-4-5', max_tokens: 300, messages: msgs, tools, tool_choice: { type: 'tool', name: 'Bash' } }).finalMessage();
  const fu = fin.content.find((b) => b.type === 'tool_use');
  check(fu && fu.name === 'Bash', `${label} stream helper: final message has the Bash call`);
  if (fu) validCall(fu, ['Bash'], `${label} stream helper`);

  // a conversation carrying tool calls and results (one an error) is accepted and counted
  const convo = [...msgs,
    { role: 'assistant', content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'ls' } }, { type: 'tool_use', id: 'toolu_2', name: 'Read', input: { file_path: 'README.md' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'README.md\nsrc' }, { type: 'tool_result', tool_use_id: 'toolu_2', is_error: true, content: [{ type: 'text', text: 'permission denied' }] }, { type: 'text', text: 'Go on — ça marche?' }] }];
  const ct = await client.messages.countTokens({ model: 'x', messages: convo, tools });
  const ctNoTools = await client.messages.countTokens({ model: 'x', messages: convo });
  check(ct.input_tokens > ctNoTools.input_tokens, `${label}: count_tokens counts the tools (${ct.input_tokens} > ${ctNoTools.input_tokens})`);
  const after = await client.messages.create({ model: 'x', max_tokens: 5, messages: convo, tools });
  check(after.usage.input_tokens === ct.input_tokens, `${label}: generation sees what count_tokens counted (${after.usage.input_tokens})`);
  // unknown forced tool → 400 naming it
  const bad = await client.messages.create({ model: 'x', max_tokens: 5, messages: msgs, tools, tool_choice: { type: 'tool', name: 'Nope' } }).catch((e) => e);
  check(bad instanceof Anthropic.BadRequestError && /Nope/.test(bad.message), `${label}: forcing an unknown tool is a 400 (${bad && bad.message})`);
}

// A two-turn tool round trip with the Anthropic SDK: the forced call (tool_use), its result
// sent back (tool_result), and the model's answer to it — the way an agent loop runs.
async function roundTrip(base, label) {
  const client = new Anthropic({ baseURL: base, apiKey: KEY, maxRetries: 0 });
  const messages = [{ role: 'user', content: 'Read the README, please.' }];
  const first = await client.messages.create({ model: 'claude-opus-4-5', max_tokens: 200, messages, tools, tool_choice: { type: 'tool', name: 'Read' } });
  const use = first.content.find((b) => b.type === 'tool_use');
  check(first.stop_reason === 'tool_use' && use && use.name === 'Read', `${label} round trip: turn 1 is a Read call`);
  if (!use) return;
  validCall(use, ['Read'], `${label} round trip turn 1`);
  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '# Pensieve\nA local LLM server.' }] });
  const second = await client.messages.create({ model: 'claude-opus-4-5', max_tokens: 24, messages, tools });
  check(second.type === 'message' && ['end_turn', 'max_tokens', 'tool_use'].includes(second.stop_reason) && second.content.length >= 1,
    `${label} round trip: turn 2 answers after the tool_result (${second.stop_reason})`);
  const ct = await client.messages.countTokens({ model: 'x', messages, tools });
  check(ct.input_tokens === second.usage.input_tokens && ct.input_tokens > first.usage.input_tokens,
    `${label} round trip: turn 2 prompt holds turn 1, call and result (${first.usage.input_tokens} → ${ct.input_tokens})`);
}

async function openaiForced(base, label) {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
  const messages = [{ role: 'user', content: 'What is in the repo?' }];
  const c = await client.chat.completions.create({ model: 'gpt-4o', max_tokens: 300, messages, tools: openaiTools, tool_choice: 'required' });
  const calls = c.choices[0].message.tool_calls || [];
  check(c.choices[0].finish_reason === 'tool_calls' && calls.length === 1, `${label} openai required: one tool call, finish_reason tool_calls (${c.choices[0].finish_reason})`);
  if (calls.length) {
    check(/^call_/.test(calls[0].id) && calls[0].type === 'function', `${label} openai: call_ id, type function`);
    let args = null;
    try { args = JSON.parse(calls[0].function.arguments); } catch { /* below */ }
    check(args !== null, `${label} openai: arguments is a JSON string`);
    if (args) validCall({ name: calls[0].function.name, input: args }, tools.map((t) => t.name), `${label} openai required`);
  }
  const s = await client.chat.completions.create({ model: 'gpt-4o', max_tokens: 300, messages, tools: openaiTools, tool_choice: { type: 'function', function: { name: 'Read' } }, stream: true });
  let name = null, argText = '', finish = null;
  for await (const ch of s) {
    const d = ch.choices[0] && ch.choices[0].delta;
    if (d && d.tool_calls) for (const tc of d.tool_calls) { if (tc.function.name) name = tc.function.name; argText += tc.function.arguments || ''; }
    if (ch.choices[0] && ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  let a2 = null;
  try { a2 = JSON.parse(argText); } catch { /* below */ }
  check(name === 'Read' && a2 !== null && finish === 'tool_calls', `${label} openai stream: named function call, finish tool_calls (${name}, ${finish})`);
  if (a2) validCall({ name: 'Read', input: a2 }, ['Read'], `${label} openai stream`);
  // response_format json_schema: the content is JSON valid against it
  const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, temp_c: { type: 'number' }, tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 } }, required: ['city', 'temp_c'], additionalProperties: false };
  const rf = await client.chat.completions.create({ model: 'gpt-4o', max_tokens: 300, messages, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema } } });
  let obj = null;
  try { obj = JSON.parse(rf.choices[0].message.content); } catch { /* below */ }
  check(obj !== null && ajv.validate(schema, obj), `${label} response_format json_schema: valid JSON (${rf.choices[0].message.content})`);
}

const cancelDeadline = deadline(280000);
// stories260K has no template (the ChatML fallback, Hermes calls) and a 512-token SentencePiece
// vocabulary: every call is spelled out byte by byte under the grammar.
const models = [['qwen3', `${fixtures}/qwen3/qwen3-q8_0.gguf`], ['llama', `${fixtures}/llama/llama-q8_0.gguf`],
  ['phi3', `${fixtures}/phi3/phi3-q8_0.gguf`], ['stories260K', stories]];
for (const [label, rel] of models) {
  const path = rel;
  requireFile(path);
  const { proc, base } = await startServer(path, ['--ctx-size', '2048']);
  try {
    await anthropicForced(base, label);
    await roundTrip(base, label);
    if (label === 'qwen3' || label === 'stories260K') await openaiForced(base, label);
  } catch (e) {
    check(false, `${label}: exception ${e && e.stack}`);
  } finally {
    await stopServer(proc);
  }
}
cancelDeadline();
finish();
