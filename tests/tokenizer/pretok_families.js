// pretok_families.js — every tokenizer.ggml.pre family against the reference splitter.
// No npm package ships a vocabulary for most families (gpt-2, mpt, starcoder, refact, falcon,
// deepseek-llm, deepseek-coder, default), so one byte-level vocabulary (Qwen3's, without its
// NFC normalizer) is run through each family's regex list on both sides: @lenml/tokenizers
// gets a tokenizer.json whose pre_tokenizer is Sequence[Split(regex, Isolated)..., ByteLevel],
// our library gets the same vocabulary with tokenizer.ggml.pre set to the family. The JS
// regexes below are llama.cpp's (llama-vocab.cpp), the same patterns src/tokenizer/pretok.c
// compiles; this checks our PCRE2 splitting against JS's regex engine and HF's Split
// semantics, line by line and on the whole corpus.
// usage: node pretok_families.js TOK_DRIVER VOCAB_FROM_HF OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const [driver, vocabTool, outDir] = process.argv.slice(2);
const SRC = process.env.PENSIEVE_SRC || path.resolve(__dirname, '..', '..');
const NODE_MODULES = path.join(SRC, 'tests', 'node', 'node_modules');
function skip(why) {
  if (process.env.CI) {
    console.error(`FAIL: test data missing under CI: ${why}`);
    process.exit(1);
  }
  console.error(`SKIP: ${why}`);
  process.exit(77);
}
let lenml;
try {
  lenml = require(path.join(NODE_MODULES, '@lenml', 'tokenizers'));
} catch (e) {
  skip('@lenml/tokenizers is not installed');
}
const dir = path.join(NODE_MODULES, '@lenml', 'tokenizer-qwen3', 'models');
const tokJson = path.join(dir, 'tokenizer.json');
const cfgJson = path.join(dir, 'tokenizer_config.json');
if (!fs.existsSync(tokJson)) skip(tokJson);

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTR = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const FAMILIES = {
  'default': ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  'llama-bpe': [CONTR + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
  'qwen2': [CONTR + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
  'gpt-2': [GPT2],
  'mpt': [GPT2],
  'starcoder': ['\\p{N}', GPT2],
  'refact': ['\\p{N}', GPT2],
  'falcon': ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'],
  'deepseek-llm': [
    '[\r\n]',
    '\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ\u{1F5F}-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌ\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-\u{212D}ℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+',
    '\\s?[!-/:-~！-／：-～‘-‟　-。]+',
    '\\s+$',
    '[一-龥ࠀ-一가-퟿]+',
    '\\p{N}+',
  ],
  'deepseek-coder': ['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[一-龥ࠀ-一가-퟿]+', '\\p{N}'],
  'deepseek-v3': [
    '\\p{N}{1,3}',
    '[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+',
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  ],
};

const base = JSON.parse(fs.readFileSync(tokJson, 'utf8'));
const tokenizerConfig = JSON.parse(fs.readFileSync(cfgJson, 'utf8'));
const corpusPath = path.join(SRC, 'tests', 'tokenizer', 'corpus.txt');
const corpus = fs.readFileSync(corpusPath, 'utf8');
const splitLines = (t) => {
  const l = t.split('\n');
  if (l.length && l[l.length - 1] === '') l.pop();
  return l;
};
const lines = splitLines(corpus);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
fs.mkdirSync(outDir, { recursive: true });
let failures = 0;
for (const [name, regexes] of Object.entries(FAMILIES)) {
  const json = JSON.parse(JSON.stringify(base));
  json.normalizer = null; // only qwen2 normalizes (NFC), and the corpus is NFC-stable per line
  json.model.ignore_merges = name === 'llama-bpe';
  json.pre_tokenizer = {
    type: 'Sequence',
    pretokenizers: [
      ...regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  };
  const tok = lenml.TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig });
  const gguf = path.join(outDir, `family-${name}.gguf`);
  execFileSync(vocabTool, [tokJson, cfgJson, gguf, 'family', name], { stdio: ['ignore', 'ignore', 'inherit'] });
  const got = splitLines(execFileSync(driver, ['lines', gguf, corpusPath, '--no-bos'], { encoding: 'utf8', maxBuffer: 1 << 26 }))
    .map((s) => (s.length ? s.split(' ').map(Number) : []));
  // Qwen2's family normalizes to NFC on our side; compare it on NFC text (JS: same call)
  const prep = (t) => (name === 'qwen2' ? t.normalize('NFC') : t);
  let ok = 0;
  let first = null;
  lines.forEach((l, i) => {
    const e = Array.from(tok.encode(prep(l), { add_special_tokens: false }));
    if (got[i] && same(e, got[i])) ok++;
    else if (first === null) first = { i, e, g: got[i] || [] };
  });
  const wholeE = Array.from(tok.encode(prep(corpus), { add_special_tokens: false }));
  const wholeG = execFileSync(driver, ['whole', gguf, corpusPath, '--no-bos'], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .trim().split(' ').map(Number);
  const wholeOk = same(wholeE, wholeG);
  console.log(`${name}: ${ok}/${lines.length} lines identical, whole corpus ${wholeOk ? 'identical' : 'DIFFERS'}`);
  if (first) {
    console.log(`  first mismatch: line ${first.i + 1}: ${JSON.stringify(lines[first.i])}`);
    console.log(`  expected [${first.e.join(' ')}]`);
    console.log(`  got      [${first.g.join(' ')}]`);
  }
  if (first || !wholeOk) failures++;
  fs.unlinkSync(gguf);
}
process.exit(failures ? 1 : 0);
