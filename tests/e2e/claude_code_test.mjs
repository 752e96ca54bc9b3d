// claude_code_test.mjs — Claude Code itself (npm @anthropic-ai/claude-code, a native binary
// installed under tests/claude by scripts/setup.sh) as a black-box client of `pensieve start`
// in print mode: `claude -p … --output-format json` with a throw-away HOME, from a git
// repository, isolated from the network (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC). The
// model's words are nonsense; what must hold is the protocol: Claude Code's streaming
// /v1/messages?beta=true calls (thinking, output_config, context_management, metadata, a
// role:"system" message, system blocks with the billing header, its tools) are answered well
// enough for the turn to complete with exit code 0 and a JSON result. Two runs: stories260K
// with a minimal prompt (`--bare --tools ''`: the ChatML fallback), and Claude Code's full
// prompt and tools against a model with Qwen3's tool-capable template (see part 2 below).
// Servers run with fixed --seed values, so what the model says (and where it ends its turn)
// is the same on every run of the same code.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KEY, bin, check, finish, fixtures, requireFile, startServer, stopServer, stories } from './harness.mjs';

const src = process.env.PENSIEVE_SRC || '.';
const claude = path.resolve(src, 'tests/claude/node_modules/.bin/claude');
requireFile(stories, 'stories260K.gguf');
requireFile(claude, 'claude (run scripts/setup.sh)');

const tmp = mkdtempSync(path.join(tmpdir(), 'pv-claude-'));
const home = path.join(tmp, 'home'), repo = path.join(tmp, 'repo');
spawnSync('mkdir', ['-p', home, repo]);
spawnSync('git', ['init', '-q', repo]);

// One attempt: a server on `model` with `seed`, then `claude -p … claudeArgs`. Returns what
// happened.
async function attempt(model, ctx, seed, claudeArgs) {
  let srv;
  try {
    srv = await startServer(model, ['--ctx-size', String(ctx), '--seed', String(seed), '--log-level', 'debug'],
      { quiet: true, captureStderr: true });
  } catch (e) {
    return { up: false, error: String(e) };
  }
  const { proc, base } = srv;
  rmSync(home, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', home]);
  const env = {
    PATH: process.env.PATH, HOME: home, TERM: 'dumb', LANG: 'C.UTF-8',
    ANTHROPIC_BASE_URL: base, ANTHROPIC_API_KEY: KEY,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1', DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
  };
  const t0 = Date.now();
  const run = spawnSync(claude, ['-p', 'say hi', ...claudeArgs, '--output-format', 'json'],
    { cwd: repo, env, encoding: 'utf8', timeout: 150000 });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  await stopServer(proc);
  let result = null;
  try { result = JSON.parse(run.stdout); } catch { /* reported by the caller */ }
  return { up: true, run, result, secs, log: srv.stderr() };
}

// A run ends either with the turn completed, or — when a random or story model does not
// generate its end before the context is full — with Claude Code continuing the turn until the
// prompt no longer fits ("Prompt is too long"). That second outcome is the model, not the
// protocol, so the next seed is tried; anything else is a failure. The seeds are fixed, so the
// outcome is the same on every run of the same code.
async function completes(label, model, ctx, claudeArgs, seeds, minInput) {
  let done = null;
  for (const seed of seeds) {
    const a = await attempt(model, ctx, seed, claudeArgs);
    check(a.up, `${label}: server (seed ${seed}) answers /health ${a.error || ''}`);
    if (!a.up) return;
    const modelFilledContext = a.result && a.result.terminal_reason === 'prompt_too_long' && !/-> 5\d\d/.test(a.log);
    if (a.run.status !== 0 && modelFilledContext) {
      console.log(`${label}: seed ${seed}: the model did not end its turn within the context; next seed`);
      continue;
    }
    done = { seed, ...a };
    break;
  }
  check(done !== null, `${label}: one of the seeds gives a turn the model ends`);
  if (!done) return;
  const { run, result, secs, log, seed } = done;
  check(run.status === 0, `${label}: claude exits 0 (seed ${seed}, status ${run.status}, signal ${run.signal}, ${secs} s)\nstdout: ${(run.stdout || '').slice(0, 1500)}\nstderr: ${(run.stderr || '').slice(0, 800)}`);
  check(result && result.type === 'result' && result.is_error === false, `${label}: a JSON result without error (${result && result.terminal_reason}, ${result && result.result})`);
  check(result && typeof result.result === 'string' && result.result.length > 0, `${label}: the result carries the model text`);
  check(result && result.usage && result.usage.input_tokens >= minInput && result.usage.output_tokens > 0,
    `${label}: usage reported back to Claude Code (${JSON.stringify(result && result.usage && [result.usage.input_tokens, result.usage.output_tokens])})`);
  const calls = (log.match(/POST \/v1\/messages -> 200/g) || []).length;
  check(calls >= 1, `${label}: Claude Code's /v1/messages calls were served (${calls})`);
  check(!/-> 5\d\d/.test(log), `${label}: no 5xx in the server log`);
  console.log(`${label}: claude -p (server seed ${seed}) finished in ${secs} s, ${calls} model call(s), ` +
    `${result.usage.input_tokens} prompt tokens: ${JSON.stringify(result.result).slice(0, 80)}`);
}

// 1. stories260K (no template: the ChatML fallback), Claude Code with a minimal prompt.
await completes('stories260K', stories, 2048, ['--bare', '--tools', '', '--system-prompt', 'You are terse.'],
  [5, 9, 12, 11, 8, 1, 2, 3], 1);

// 2. Claude Code as it really runs — its whole system prompt and all its tools (~12k tokens)
// — against a model with a tool-capable template: Qwen3's (Hermes tool calls), with the qwen3
// fixture's real vocabulary and template, on random weights from `pensieve synth` whose
// end-of-turn row is scaled (--boost-token <|im_end|>) so the random model ends its turns
// within some tens of tokens, as a chat model does. The fixture itself, unboosted, samples an
// end-of-generation token about once in 75,000: its turns run to the end of any context.
const qdir = `${fixtures}/qwen3/tiny-random-qwen3`;
requireFile(`${qdir}/tokenizer_config.json`);
const qmodel = path.join(tmp, 'qwen3-ends-turns.gguf');
const synth = spawnSync(bin, ['synth', '--arch', 'qwen3', '--dim', '64', '--layers', '2', '--heads', '4',
  '--kv-heads', '2', '--head-dim', '16', '--ffn', '160', '--ctx', '40960', '--type', 'q8_0',
  '--tokenizer-json', `${qdir}/tokenizer.json`, '--tokenizer-config', `${qdir}/tokenizer_config.json`,
  '--boost-token', '151645', '--boost-scale', '10', '-o', qmodel], { encoding: 'utf8' });
check(synth.status === 0, `synth the turn-ending qwen3 model: ${synth.stderr}`);
if (synth.status === 0) await completes('qwen3 template, full Claude Code', qmodel, 16384, [], [1, 2, 3, 4], 5000);
rmSync(tmp, { recursive: true, force: true });
finish();
