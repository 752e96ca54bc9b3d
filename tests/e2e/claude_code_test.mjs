// claude_code_test.mjs — Claude Code itself (npm @anthropic-ai/claude-code, a native binary
// installed under tests/claude by scripts/setup.sh) as a black-box client of `pensieve start`
// on stories260K, in print mode: `claude -p … --output-format json` with a throw-away HOME,
// from a git repository, isolated from the network (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).
// The model's words are nonsense; what must hold is the protocol: Claude Code's streaming
// /v1/messages?beta=true calls (thinking, output_config, context_management, metadata, a
// role:"system" message, system blocks with the billing header) are answered well enough for
// the turn to complete with exit code 0 and a JSON result.
//
// `--bare --tools '' --system-prompt …` keeps the prompt to a few hundred tokens so the run
// takes seconds on a CPU (the full default prompt is ~30k tokens for this 512-token vocab).
// The server runs with a fixed --seed so the story the model tells (and so where it ends,
// at a generated BOS) is the same on every run of the same code.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KEY, check, finish, requireFile, startServer, stopServer, stories } from './harness.mjs';

const src = process.env.PENSIEVE_SRC || '.';
const claude = path.resolve(src, 'tests/claude/node_modules/.bin/claude');
requireFile(stories, 'stories260K.gguf');
requireFile(claude, 'claude (run scripts/setup.sh)');

const tmp = mkdtempSync(path.join(tmpdir(), 'pv-claude-'));
const home = path.join(tmp, 'home'), repo = path.join(tmp, 'repo');
spawnSync('mkdir', ['-p', home, repo]);
spawnSync('git', ['init', '-q', repo]);

// One attempt: a server with `seed`, then `claude -p`. Returns what happened.
async function attempt(seed) {
  let srv;
  try {
    srv = await startServer(stories, ['--ctx-size', '2048', '--seed', String(seed), '--log-level', 'debug'],
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
  const run = spawnSync(claude, ['-p', 'say hi', '--bare', '--tools', '', '--system-prompt', 'You are terse.',
    '--output-format', 'json'], { cwd: repo, env, encoding: 'utf8', timeout: 150000 });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  await stopServer(proc);
  let result = null;
  try { result = JSON.parse(run.stdout); } catch { /* reported by the caller */ }
  return { up: true, run, result, secs, log: srv.stderr() };
}

// A run ends either with the turn completed, or — when this story model never generates its
// end (a BOS) before the 2048-token context is full — with Claude Code continuing the turn
// until the prompt no longer fits ("Prompt is too long"). That second outcome is the model,
// not the protocol, so the next seed is tried; anything else is a failure. The seeds are
// fixed, so the outcome is the same on every run of the same code.
let done = null;
for (const seed of [5, 9, 12, 11, 8, 1, 2, 3]) {
  const a = await attempt(seed);
  check(a.up, `server (seed ${seed}) answers /health ${a.error || ''}`);
  if (!a.up) break;
  const modelFilledContext = a.result && a.result.terminal_reason === 'prompt_too_long' &&
    !/-> 5\d\d/.test(a.log) && /model_context_window_exceeded|POST \/v1\/messages -> 200/.test(a.log);
  if (a.run.status !== 0 && modelFilledContext) {
    console.log(`seed ${seed}: the model did not end its turn within the context; next seed`);
    continue;
  }
  done = { seed, ...a };
  break;
}
check(done !== null, 'one of the seeds gives a turn the model ends');
if (done) {
  const { run, result, secs, log, seed } = done;
  check(run.status === 0, `claude exits 0 (seed ${seed}, status ${run.status}, signal ${run.signal}, ${secs} s)\nstdout: ${(run.stdout || '').slice(0, 1500)}\nstderr: ${(run.stderr || '').slice(0, 800)}`);
  check(result && result.type === 'result' && result.is_error === false, `a JSON result without error (${result && result.terminal_reason}, ${result && result.result})`);
  check(result && typeof result.result === 'string' && result.result.length > 0, 'the result carries the model text');
  check(result && result.usage && result.usage.input_tokens > 0 && result.usage.output_tokens > 0, 'usage reported back to Claude Code');
  const calls = (log.match(/POST \/v1\/messages -> 200/g) || []).length;
  check(calls >= 1, `Claude Code's /v1/messages calls were served (${calls})`);
  check(!/-> 5\d\d/.test(log), 'no 5xx in the server log');
  console.log(`claude -p (server seed ${seed}) finished in ${secs} s, ${calls} model call(s): ${JSON.stringify(result && result.result).slice(0, 120)}`);
}
rmSync(tmp, { recursive: true, force: true });
finish();
