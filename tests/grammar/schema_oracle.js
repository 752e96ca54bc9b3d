// schema_oracle.js — the JSON Schema test of the grammar engine, judged by ajv (an
// independent validator). For every schema in schemas.json: the grammar built from it by
// pv_grammar_schema_to_gbnf (run through grammar_driver) must
//   1. accept each instance text exactly when ajv says it is valid JSON for the schema
//      (instances: the listed values as compact JSON and as JSON.stringify(v, null, 2), plus
//      raw texts; the listed "valid"/"invalid" are first checked against ajv themselves);
//      Texts in "format_reject" are valid JSON outside the formatting pv_grammar.h documents
//      (trailing/leading whitespace, members out of schema order, more than 20 blanks of
//      indentation, integers with exponents or more than 16 digits): they must be rejected
//      (and ajv must find them valid, or they would prove nothing).
//   2. produce, by random walks over the qwen3 fixture vocabulary's token mask, outputs that
//      all close, parse with JSON.parse and validate with ajv.
// The one policy the oracle adopts from the converter is documented in pv_grammar.h:
// an object schema listing "properties" without "additionalProperties" is closed.
// Usage: node schema_oracle.js <grammar_driver> <schemas.json>
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const Ajv = require(path.join(__dirname, '..', 'node', 'node_modules', 'ajv'));

const [driver, schemasPath] = process.argv.slice(2);
const fixtures = process.env.PENSIEVE_FIXTURES || path.join(__dirname, '..', '..', 'build', 'fixtures');
const vocab = path.join(fixtures, 'qwen3', 'qwen3-f32.gguf');
if (!fs.existsSync(vocab)) {
  console.error(`missing ${vocab}`);
  process.exit(process.env.CI ? 1 : 77);
}

// the documented policy: properties listed + additionalProperties absent = closed object
function closeObjects(s) {
  if (Array.isArray(s)) return s.map(closeObjects);
  if (s === null || typeof s !== 'object') return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (['properties', '$defs', 'definitions'].includes(k)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, closeObjects(pv)]));
    } else if (['items', 'additionalProperties', 'anyOf', 'oneOf', 'allOf'].includes(k)) {
      out[k] = closeObjects(v);
    } else {
      out[k] = v;
    }
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const cases = JSON.parse(fs.readFileSync(schemasPath, 'utf8'));
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false });
let failures = 0;
const fail = (msg) => { failures++; console.error('FAIL ' + msg); };

const req = { vocab, cases: [] };
const expect = [];
for (const [i, c] of cases.entries()) {
  const validate = ajv.compile(closeObjects(c.schema));
  const verdict = (text) => { let v; try { v = JSON.parse(text); } catch { return false; } return validate(v); };
  for (const v of c.valid || []) if (!validate(v)) fail(`${c.name}: listed valid but ajv rejects ${JSON.stringify(v)}`);
  for (const v of c.invalid || []) if (validate(v)) fail(`${c.name}: listed invalid but ajv accepts ${JSON.stringify(v)}`);
  const texts = [];
  for (const v of [...(c.valid || []), ...(c.invalid || [])]) {
    texts.push(JSON.stringify(v));
    texts.push(JSON.stringify(v, null, 2));
  }
  for (const t of c.invalid_text || []) texts.push(t);
  const want = texts.map(verdict);
  for (const t of c.format_reject || []) {
    if (!verdict(t)) fail(`${c.name}: format_reject text is not even ajv-valid: ${JSON.stringify(t)}`);
    texts.push(t);
    want.push(false);
  }
  expect.push({ validate, texts, want });
  req.cases.push({ name: c.name, schema: c.schema, instances: texts, walks: 20, seed: 1000 + i, max_tokens: 64 });
}

const t0 = Date.now();
const run = spawnSync(driver, [], { input: JSON.stringify(req), maxBuffer: 1 << 28, encoding: 'utf8' });
if (run.status !== 0) {
  console.error(run.stderr);
  console.error(`driver exited with ${run.status}`);
  process.exit(1);
}
const res = JSON.parse(run.stdout).results;
let nWalks = 0, nInst = 0;
for (const [i, r] of res.entries()) {
  const c = cases[i], e = expect[i];
  if (r.error) { fail(`${c.name}: conversion/compile error: ${r.error}`); continue; }
  e.texts.forEach((t, k) => {
    nInst++;
    if (r.accepted[k] !== e.want[k])
      fail(`${c.name}: grammar ${r.accepted[k] ? 'accepts' : 'rejects'} ${JSON.stringify(t)}, expected ${e.want[k] ? 'accept' : 'reject'}`);
  });
  const distinct = new Set(r.walks);
  r.walks.forEach((w, k) => {
    nWalks++;
    if (!r.closed[k]) { fail(`${c.name}: walk ${k} did not close: ${JSON.stringify(w)}`); return; }
    let v;
    try { v = JSON.parse(w); } catch (err) { fail(`${c.name}: walk ${k} is not JSON: ${JSON.stringify(w)}`); return; }
    if (!e.validate(v)) fail(`${c.name}: walk ${k} fails ajv: ${JSON.stringify(w)} ${JSON.stringify(e.validate.errors)}`);
  });
  const onlyOne = c.name === 'const_string';
  if (!onlyOne && distinct.size < 2) fail(`${c.name}: random walks produced a single output ${JSON.stringify([...distinct])}`);
  if (process.env.VERBOSE) console.log(c.name, JSON.stringify(r.walks.slice(0, 3)));
}
console.log(`grammar_schema_ajv: ${cases.length} schemas, ${nInst} instance verdicts, ${nWalks} random outputs checked with ajv ` +
  `(${((Date.now() - t0) / 1000).toFixed(1)} s), ${failures} failures`);
process.exit(failures ? 1 : 0);
