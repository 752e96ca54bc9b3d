#!/usr/bin/env bash
# test_synth_cli.sh — `pensieve synth` flag handling through the real binary: a small model
# of each architecture is written and is byte-identical across thread counts and runs;
# another seed changes it; --vocab-only is smaller; bad flags and values give exit code 2
# (usage) or 1 (generation error) with a message naming the problem.
set -u
BIN=${PENSIEVE_BIN:?PENSIEVE_BIN not set}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

small=(--dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --ctx 128)
for arch in llama qwen2 qwen3 phi3; do
  "$BIN" synth --arch "$arch" "${small[@]}" --type q8_0 -t 1 -o "$TMP/$arch.1.gguf" 2>/dev/null \
    || fail "$arch: synth failed"
  "$BIN" synth --arch "$arch" "${small[@]}" --type q8_0 -t 2 -o "$TMP/$arch.2.gguf" 2>/dev/null \
    || fail "$arch: synth -t 2 failed"
  cmp -s "$TMP/$arch.1.gguf" "$TMP/$arch.2.gguf" || fail "$arch: bytes depend on the thread count"
  [ "$(head -c 4 "$TMP/$arch.1.gguf")" = "GGUF" ] || fail "$arch: not a GGUF file"
done
"$BIN" synth --arch llama "${small[@]}" --type q8_0 --seed 7 -o "$TMP/seed7.gguf" 2>/dev/null || fail "seed 7"
cmp -s "$TMP/llama.1.gguf" "$TMP/seed7.gguf" && fail "another seed gave the same bytes"
"$BIN" synth --arch llama "${small[@]}" --vocab-only -o "$TMP/v.gguf" 2>/dev/null || fail "vocab-only"
[ "$(stat -c %s "$TMP/v.gguf")" -lt "$(stat -c %s "$TMP/llama.1.gguf")" ] || fail "vocab-only not smaller"

expect_rc() { # expected-rc pattern args...
  local want=$1 pat=$2; shift 2
  local out rc
  out=$("$BIN" synth "$@" 2>&1); rc=$?
  [ "$rc" = "$want" ] || fail "synth $*: exit $rc, want $want ($out)"
  grep -q -- "$pat" <<<"$out" || fail "synth $*: message lacks '$pat': $out"
}
expect_rc 0 "usage" --help
expect_rc 2 "--arch is required" -o "$TMP/x.gguf"
expect_rc 2 "-o is required" --arch llama
expect_rc 2 "unknown option '--bogus'" --arch llama --bogus -o "$TMP/x.gguf"
expect_rc 2 "invalid integer" --arch llama --dim 12x -o "$TMP/x.gguf"
expect_rc 2 "needs a value" --arch llama -o
expect_rc 1 "unknown architecture 'gpt9'" --arch gpt9 -o "$TMP/x.gguf"
expect_rc 1 "unknown type 'q3_k'" --arch llama --type q3_k -o "$TMP/x.gguf"
expect_rc 1 "must be a multiple of --kv-heads" --arch llama "${small[@]}" --kv-heads 3 -o "$TMP/x.gguf"
[ -e "$TMP/x.gguf" ] && fail "a failed run left a file"
echo "ok"
