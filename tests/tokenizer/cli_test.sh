#!/usr/bin/env bash
# cli_test.sh — `pensieve tokenize` end to end: ids for the TinyStories sentence equal the
# greedy chain recorded in shared/models/MANIFEST.md (parsed here, not copied), --no-bos,
# --file (exact bytes: a trailing newline becomes byte token 13, as the MANIFEST says),
# --special, a vocabulary-only GGUF made from tokenizer.json agreeing with llama.cpp's
# converted fixture (MANIFEST: the fox prompt is 11 ids with BOS 128000), and errors
# (stderr, exit code 1, nothing on stdout).
# usage: cli_test.sh VOCAB_FROM_HF   (env: PENSIEVE_BIN, PENSIEVE_TEST_DATA, PENSIEVE_FIXTURES)
set -u
BIN=${PENSIEVE_BIN:?PENSIEVE_BIN not set}
TOOL=${1:?usage: cli_test.sh VOCAB_FROM_HF}
DATA=${PENSIEVE_TEST_DATA:-../shared}
FIX=${PENSIEVE_FIXTURES:-build/fixtures}
STORIES=$DATA/models/stories260K.gguf
MANIFEST=$DATA/models/MANIFEST.md
LLAMA=$FIX/llama/llama-f32.gguf
HFDIR=$FIX/llama/tiny-random-llama
for f in "$STORIES" "$MANIFEST" "$LLAMA" "$HFDIR/tokenizer.json"; do
  if [[ ! -f $f ]]; then
    if [[ -n ${CI:-} ]]; then echo "FAIL: test data missing under CI: $f" >&2; exit 1; fi
    echo "SKIP: test data missing: $f" >&2; exit 77
  fi
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name expected got
  if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: expected '$2' got '$3'"; fails=$((fails+1)); fi
}

# the 256-id chain: the line after the ``` that follows "The 256 greedy token ids"
chain=$(awk '/The 256 greedy token ids/{f=1} f&&/^```$/{getline; print; exit}' "$MANIFEST")
first15=$(echo "$chain" | cut -d' ' -f1-15)
[[ $(echo "$chain" | wc -w) == 256 ]] || { echo "FAIL: could not parse the MANIFEST chain"; exit 1; }
sent="Once upon a time, there was a little girl named Lily."
check "stories sentence with BOS" "1 $first15" "$("$BIN" tokenize -m "$STORIES" "$sent")"
check "stories --no-bos" "$first15" "$("$BIN" tokenize -m "$STORIES" --no-bos "$sent")"
printf '%s\n' "$sent" > "$tmp/s.txt"
check "stories --file keeps the newline" "1 $first15 13" "$("$BIN" tokenize -m "$STORIES" --file "$tmp/s.txt")"
check "--special parses <s>" "1" "$("$BIN" tokenize -m "$STORIES" --no-bos --special '<s>' | cut -d' ' -f1)"
nospecial=$("$BIN" tokenize -m "$STORIES" --no-bos '<s>')
[[ "$nospecial" != "1" && $(echo "$nospecial" | wc -w) -gt 1 ]] && echo "ok   <s> is text without --special" || { echo "FAIL <s> without --special: $nospecial"; fails=$((fails+1)); }

# vocabulary-only GGUF from tokenizer.json vs llama.cpp's converted model
"$TOOL" "$HFDIR/tokenizer.json" "$HFDIR/tokenizer_config.json" "$tmp/vocab.gguf" 2>/dev/null || { echo "FAIL: vocab_from_hf"; exit 1; }
fox="The quick brown fox jumps over the lazy dog."
a=$("$BIN" tokenize -m "$tmp/vocab.gguf" "$fox")
b=$("$BIN" tokenize -m "$LLAMA" "$fox")
check "vocab-only GGUF == converted fixture" "$b" "$a"
check "fox: 11 ids starting with 128000" "11 128000" "$(echo "$a" | wc -w) $(echo "$a" | cut -d' ' -f1)"
a=$("$BIN" tokenize -m "$tmp/vocab.gguf" --file "$PENSIEVE_SRC/tests/tokenizer/corpus.txt")
b=$("$BIN" tokenize -m "$LLAMA" --file "$PENSIEVE_SRC/tests/tokenizer/corpus.txt")
check "corpus: vocab-only GGUF == converted fixture" "$b" "$a"

# errors: exit 1, message on stderr, nothing on stdout
err_case() { # name args...
  local name=$1; shift
  out=$("$BIN" tokenize "$@" 2>"$tmp/err"); rc=$?
  if [[ $rc == 1 && -z $out && -s $tmp/err ]]; then echo "ok   error: $name ($(head -c 100 "$tmp/err"))"
  else echo "FAIL error: $name: rc=$rc stdout='$out'"; fails=$((fails+1)); fi
}
err_case "no model" "hello"
err_case "missing model file" -m "$tmp/nope.gguf" "hello"
err_case "no text" -m "$STORIES"
err_case "text and --file" -m "$STORIES" --file "$tmp/s.txt" "hello"
err_case "unreadable --file" -m "$STORIES" --file "$tmp/nope.txt"
err_case "unknown option" -m "$STORIES" --bogus "hello"
printf 'GGUF' > "$tmp/bad.gguf"
err_case "truncated GGUF" -m "$tmp/bad.gguf" "hello"
exit $((fails > 0))
