#!/usr/bin/env python3
"""tomllib_oracle.py — checks Pensieve's TOML parser (src/config/toml.c) against Python
3.11's tomllib, an independent TOML 1.0 implementation.

usage: tomllib_oracle.py DUMPER CORPUS_DIR [MUTATIONS]
  DUMPER is `test_config` (its `--dump FILE...` mode prints one JSON line per file with our
  parse in a tagged form). CORPUS_DIR holds:
    valid/*.toml        both parsers accept, and the values are equal (types included);
    invalid/*.toml      both reject; ours names FILE:LINE:COL;
    unsupported/*.toml  valid TOML outside our subset: tomllib accepts, we reject with a
                        position and say what is not supported.
  Then MUTATIONS (default 3000) seeded random mutations of the valid files are parsed by
  both; whenever ours accepts, tomllib must accept the same bytes with equal values (our
  subset never accepts invalid TOML nor reads a value differently), and every rejection of
  ours carries FILE:LINE:COL.
"""
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
try:
    import tomllib  # Python 3.11+
except ImportError:  # the oracle is missing: skip (77), but never under CI
    print("tomllib (Python 3.11+) not available", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") else 77)


def tagged(v):
    """tomllib's value in the dumper's tagged form (bool before int: bool is an int)."""
    if isinstance(v, dict):
        return {k: tagged(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    if isinstance(v, bool):
        return {"type": "bool", "value": "true" if v else "false"}
    if isinstance(v, int):
        return {"type": "integer", "value": str(v)}
    if isinstance(v, float):
        return {"type": "float", "value": v}
    if isinstance(v, str):
        return {"type": "string", "value": v}
    return {"type": type(v).__name__, "value": str(v)}


def same(ours, ref, path="$"):
    """Compares our tagged JSON with tomllib's; returns None or a description."""
    if isinstance(ref, list):
        if not isinstance(ours, list) or len(ours) != len(ref):
            return f"{path}: array differs: {ours!r} vs {ref!r}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            d = same(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(ref, dict) and set(ref.keys()) == {"type", "value"} and isinstance(ref["type"], str) \
            and isinstance(ours, dict) and set(ours.keys()) == {"type", "value"}:
        if ours["type"] != ref["type"]:
            return f"{path}: type {ours['type']} vs {ref['type']}"
        if ref["type"] == "float":
            a, b = float(ours["value"]), ref["value"]
            if math.isnan(b):
                return None if math.isnan(a) else f"{path}: {a} vs nan"
            if a != b or math.copysign(1, a) != math.copysign(1, b):
                return f"{path}: float {ours['value']} vs {b!r}"
            return None
        return None if ours["value"] == ref["value"] else f"{path}: {ours['value']!r} vs {ref['value']!r}"
    if isinstance(ref, dict):
        if not isinstance(ours, dict) or set(ours.keys()) != set(ref.keys()):
            return f"{path}: keys {sorted(ours.keys()) if isinstance(ours, dict) else ours!r} vs {sorted(ref.keys())}"
        for k in ref:
            d = same(ours[k], ref[k], f"{path}.{k}")
            if d:
                return d
        return None
    return f"{path}: {ours!r} vs {ref!r}"


def reference(path):
    """tomllib's verdict: (True, tagged value) or (False, message)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return True, tagged(tomllib.loads(data.decode("utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as e:
        return False, str(e)


def ours_many(dumper, paths):
    out = {}
    for i in range(0, len(paths), 500):  # keep command lines short
        chunk = paths[i:i + 500]
        r = subprocess.run([dumper, "--dump", *chunk], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"FAIL: dumper exited {r.returncode} (crash?) on a chunk starting at {chunk[0]}\n{r.stderr}")
        for line in r.stdout.splitlines():
            j = json.loads(line)
            out[j["file"]] = j
    missing = [p for p in paths if p not in out]
    if missing:
        sys.exit(f"FAIL: dumper printed nothing for {missing[:3]}")
    return out


POS = re.compile(r"^(.*):(\d+):(\d+): ")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def check_corpus(dumper, corpus):
    counts = {}
    for kind in ("valid", "invalid", "unsupported"):
        d = os.path.join(corpus, kind)
        paths = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".toml"))
        counts[kind] = len(paths)
        ours = ours_many(dumper, paths)
        for p in paths:
            ok_ref, ref = reference(p)
            o = ours[p]
            name = f"{kind}/{os.path.basename(p)}"
            if kind == "valid":
                if not ok_ref:
                    fail(f"{name}: corpus error, tomllib rejects it: {ref}")
                elif not o["ok"]:
                    fail(f"{name}: we reject valid TOML: {o['error']}")
                else:
                    d = same(o["value"], ref)
                    if d:
                        fail(f"{name}: values differ: {d}")
            else:
                if kind == "invalid" and ok_ref:
                    fail(f"{name}: corpus error, tomllib accepts it")
                if kind == "unsupported" and not ok_ref:
                    fail(f"{name}: corpus error, tomllib rejects it: {ref}")
                if o["ok"]:
                    fail(f"{name}: we accept it")
                    continue
                m = POS.match(o["error"])
                if not m or m.group(1) != p:
                    fail(f"{name}: error lacks FILE:LINE:COL: {o['error']}")
                if kind == "unsupported" and "not supported" not in o["error"] and "64 bits" not in o["error"]:
                    fail(f"{name}: the error does not say what is unsupported: {o['error']}")
    return counts


TOKENS = ["=", "[", "]", "[[", "]]", ",", ".", '"', "'", "\\", "\\u", "\\U0001F600", "#", "\n", "\r\n", "\r",
          " ", "\t", "0", "1_0", "0x", "e", "+", "-", "inf", "nan", "true", "{", "}", '"""', "'''", "\x00",
          "\x7f", "\xc3", "é", "a.b", "[a]", "[a.b]", "x = 1\n", "1979-05-27", ":"]


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a byte
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a token
            b[pos:pos] = rng.choice(TOKENS).encode("utf-8", "surrogatepass") if rng.random() < 0.9 else bytes([rng.randrange(256)])
        elif op == 2 and b:  # delete a span
            del b[pos:pos + rng.randint(1, 8)]
        elif op == 3 and b:  # duplicate a line
            lines = bytes(b).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            b = bytearray(b"\n".join(lines))
        else:  # swap two lines
            lines = bytes(b).split(b"\n")
            if len(lines) > 1:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            b = bytearray(b"\n".join(lines))
    return bytes(b)


def check_mutations(dumper, corpus, n):
    d = os.path.join(corpus, "valid")
    seeds = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if f.endswith(".toml")]
    rng = random.Random(20261123)
    stats = {"both_accept": 0, "both_reject": 0, "only_tomllib": 0}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n):
            p = os.path.join(tmp, f"m{i:05d}.toml")
            with open(p, "wb") as f:
                f.write(mutate(rng, rng.choice(seeds)))
            paths.append(p)
        ours = ours_many(dumper, paths)
        for p in paths:
            ok_ref, ref = reference(p)
            o = ours[p]
            if o["ok"]:
                if not ok_ref:
                    fail(f"mutation accepted by us, rejected by tomllib ({ref}):\n{open(p, 'rb').read()!r}")
                    continue
                dd = same(o["value"], ref)
                if dd:
                    fail(f"mutation read differently: {dd}\n{open(p, 'rb').read()!r}")
                    continue
                stats["both_accept"] += 1
            else:
                m = POS.match(o["error"])
                if not m or m.group(1) != p:
                    fail(f"error lacks FILE:LINE:COL: {o['error']}")
                stats["only_tomllib" if ok_ref else "both_reject"] += 1
    return stats


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dumper, corpus = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    counts = check_corpus(dumper, corpus)
    stats = check_mutations(dumper, corpus, n)
    print(f"corpus: {counts}; mutations: {stats}")
    if stats["both_accept"] < n // 20 or stats["both_reject"] < n // 20:
        fail(f"the mutations exercise too little of one side: {stats}")
    if failures:
        sys.exit(f"{len(failures)} failure(s)")
    print("ok")


if __name__ == "__main__":
    main()
