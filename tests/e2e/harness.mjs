// harness.mjs — what every black-box Node test of `pensieve start` needs, in one place: the
// check counter and its exit code, the skip-or-fail rule for missing test data (skip = exit
// 77, a failure under CI), a free port, starting the real server and waiting for /health,
// stopping it, and `require` for the npm packages installed in tests/node.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

export const KEY = 'pensieve-local-key';
export const data = process.env.PENSIEVE_TEST_DATA || '../shared';
export const fixtures = process.env.PENSIEVE_FIXTURES || 'build/fixtures';
export const bin = path.resolve(process.env.PENSIEVE_BIN || 'build/pensieve');
export const stories = `${data}/models/stories260K.gguf`;
// require() for the oracles and client SDKs of tests/node/node_modules
export const requireNode = createRequire(new URL('../node/package.json', import.meta.url));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0, failed = 0;
export function check(cond, what) {
  if (cond) passed++;
  else { failed++; console.log(`FAIL: ${what}`); }
  return !!cond;
}
// Prints the tally and exits (1 on any failure).
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
// Exits 77 (skipped) when a needed file is missing, or 1 under CI where nothing may be skipped.
export function requireFile(file, what = file) {
  if (existsSync(file)) return;
  if (process.env.CI) { console.log(`FAIL: ${what} missing under CI`); process.exit(1); }
  console.log(`SKIP: ${what} missing`);
  process.exit(77);
}
// Ends the test with a failure if it runs longer than ms (a hung server must not hang CI).
export function deadline(ms, onTimeout = () => {}) {
  const t = setTimeout(() => { console.log('FAIL: timeout'); onTimeout(); process.exit(1); }, ms);
  return () => clearTimeout(t);
}

export async function freePort() {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

// Starts `pensieve start -m model --port P --threads 2 ...args` and waits for /health.
// Returns { proc, base, port, stderr() } (stderr is collected when opts.captureStderr).
export async function startServer(model, args = [], opts = {}) {
  const port = opts.port || await freePort();
  const base = `http://127.0.0.1:${port}`;
  let err = '';
  const proc = spawn(bin, ['start', '-m', model, '--port', String(port), '--threads', '2', ...args],
    { stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', opts.captureStderr ? 'pipe' : 'inherit'] });
  if (opts.captureStderr) proc.stderr.on('data', (d) => { err += d; });
  let exited = false;
  proc.on('exit', () => { exited = true; });
  for (let i = 0; i < 300 && !exited; i++) {
    try { if ((await fetch(`${base}/health`)).ok) return { proc, base, port, stderr: () => err }; } catch { /* not up yet */ }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`server on ${model} did not come up: ${err.slice(-500)}`);
}

// SIGTERM and wait for the exit; resolves to the exit code.
export async function stopServer(proc) {
  if (proc.exitCode !== null) return proc.exitCode;
  const done = new Promise((r) => proc.on('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  return done;
}
