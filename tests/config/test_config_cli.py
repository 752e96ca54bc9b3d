#!/usr/bin/env python3
"""test_config_cli.py — `pensieve config`, `pensieve config init`, `pensieve validate` and the
configuration of `pensieve start`, through the real binary ($PENSIEVE_BIN).

Oracles: Python's tomllib reads what the binary writes (the init template and the `config`
output are TOML); the expected defaults are the ones `pensieve start` and the scheduler had
before the configuration layer (port 7777, 4 parallel, 16 queued, 32 MiB bodies, 512-token
batches, f16 KV) plus the documented new keys; the validate memory estimate is recomputed
from the model's metadata read by an independent GGUF reader below; the corrupted and
unsupported-architecture models are made here by truncating / patching bytes.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
try:
    import tomllib  # Python 3.11+
except ImportError:  # the oracle is missing: skip (77), but never under CI
    print("tomllib (Python 3.11+) not available", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") else 77)

BIN = os.environ.get("PENSIEVE_BIN")
DATA = os.environ.get("PENSIEVE_TEST_DATA", os.path.join(os.path.dirname(__file__), "../../../shared"))
FIX = os.environ.get("PENSIEVE_FIXTURES", os.path.join(os.path.dirname(__file__), "../../build/fixtures"))
if not BIN:
    sys.exit("PENSIEVE_BIN not set")

DEFAULTS = {
    "model": {"path": "", "context_length": 0},
    "server": {"host": "127.0.0.1", "port": 7777, "api_key": "pensieve-local-key", "max_concurrent_requests": 4,
               "max_queued_requests": 16, "request_body_limit_mb": 32, "drain_timeout_s": 30,
               "pid_file": ""},
    "performance": {"threads": 0, "memory_limit_gb": 0.0, "batch_size": 512, "kv_cache_type": "f16"},
    "sampling": {"seed": -1},
    "logging": {"level": "info", "format": "text", "file": "", "max_size_mb": 16, "keep_files": 5},
}
N_KEYS = sum(len(v) for v in DEFAULTS.values())  # every key of the table, by hand above
CHECKS = ["config", "model", "gguf", "arch", "tensors", "context", "memory"]

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok  ", what)
    else:
        failures.append(what)
        print("FAIL", what, detail)


def run(args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENSIEVE_") or k in
           ("PENSIEVE_BIN", "PENSIEVE_TEST_DATA", "PENSIEVE_FIXTURES", "PENSIEVE_SRC")}
    env["HOME"] = HOME
    env.pop("XDG_CONFIG_HOME", None)
    env.update(env_extra or {})
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, cwd=cwd or WORK, timeout=120)
    return r.returncode, r.stdout, r.stderr


def same_typed(a, b):
    """Equal values with equal types (0.0 must stay a float, 0 an integer)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_typed(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def sources(config_stdout):
    """key -> source comment of each `pensieve config` line."""
    out = {}
    for line in config_stdout.splitlines():
        m = re.match(r"^(\w+) = .*# (\S+)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# ---------------- independent GGUF metadata reader ----------------

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_read(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(SCALAR[t])

    assert data[:4] == b"GGUF"
    pos = 4
    _version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        type_pos = pos
        tensors.append((name, ne, take("<I"), take("<Q"), type_pos))
    return meta, tensors


def expected_memory(path, n_ctx_cfg=0, parallel=4, bpe=2):
    meta, tensors = gguf_read(path)
    arch = meta["general.architecture"]
    n_layer = meta[f"{arch}.block_count"]
    n_head = meta[f"{arch}.attention.head_count"]
    n_kv = meta.get(f"{arch}.attention.head_count_kv", n_head)
    head_dim = meta.get(f"{arch}.attention.key_length", meta[f"{arch}.embedding_length"] // n_head)
    n_train = meta.get(f"{arch}.context_length", 2048)
    n_ctx = n_ctx_cfg if n_ctx_cfg > 0 else min(n_train, 4096)
    kv = n_layer * n_ctx * n_kv * head_dim * 2 * bpe * parallel
    weights = None
    if all(t[2] == 0 for t in tensors):  # all F32: 4 bytes per element
        weights = 0
        for _, ne, _, _, _ in tensors:
            n = 1
            for d in ne:
                n *= d
            weights += 4 * n
    return kv, weights, n_train


def validate_lines(out):
    """check name -> (verdict, message) from validate's stdout, in order."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"^(ok|warn|FAIL|skip) +(\w+) +(.*)$", line)
        if m:
            rows.append((m.group(2), m.group(1), m.group(3)))
    return rows


def expect_verdicts(label, rc, out, want_rc, verdicts):
    rows = validate_lines(out)
    check(rc == want_rc, f"{label}: exit code {want_rc}", f"got {rc}\n{out}")
    check([r[0] for r in rows] == CHECKS, f"{label}: one line per check, in order", out)
    got = [r[1] for r in rows]
    check(got == verdicts, f"{label}: verdicts {verdicts}", f"got {got}\n{out}")
    return {r[0]: r[2] for r in rows}


def main():
    global WORK, HOME
    tmp = tempfile.mkdtemp(prefix="pv_config_cli_")
    WORK = os.path.join(tmp, "work")
    HOME = os.path.join(tmp, "home")
    os.makedirs(WORK)
    os.makedirs(HOME)
    try:
        test_config_init()
        test_config_sources()
        test_keys_markdown()
        test_errors()
        test_validate(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        sys.exit(f"{len(failures)} failure(s): {failures}")
    print("all ok")


def test_config_init():
    p = os.path.join(WORK, "init.toml")
    rc, _, err = run(["config", "init", p])
    check(rc == 0 and os.path.exists(p), "config init FILE writes the file", err)
    with open(p, "rb") as f:
        parsed = tomllib.load(f)
    check(same_typed(parsed, DEFAULTS), "config init output parses (tomllib) to exactly the defaults", parsed)
    text = open(p).read()
    for sec, keys in DEFAULTS.items():
        for k in keys:
            env = f"PENSIEVE_{sec.upper()}_{k.upper()}"
            check(env in text, f"the template documents {env}")
    before = open(p, "rb").read()
    rc, _, err = run(["config", "init", p])
    check(rc == 1 and "already exists" in err and "--force" in err, "config init refuses to overwrite", err)
    check(open(p, "rb").read() == before, "the refused file is unchanged")
    with open(p, "w") as f:
        f.write("garbage")
    rc, _, err = run(["config", "init", "--force", p])
    check(rc == 0 and open(p, "rb").read() == before, "config init --force overwrites", err)
    rc, out, _ = run(["config", "init", "-"])
    check(rc == 0 and same_typed(tomllib.loads(out), DEFAULTS), "config init - prints the template")
    # the binary reads its own template back: every key from the file, at the default
    rc, out, err = run(["config", "--config", p])
    check(rc == 0 and same_typed(tomllib.loads(out), DEFAULTS), "config --config template: the defaults", err)
    src = sources(out)
    check(len(src) == N_KEYS and all(v.startswith(f"file:{p}:") for v in src.values()),
          "config --config template: every key's source is the file", src)
    # ./pensieve.toml is found without --config
    rc, _, err = run(["config", "init"])
    check(rc == 0 and os.path.exists(os.path.join(WORK, "pensieve.toml")), "config init writes ./pensieve.toml", err)
    rc, out, err = run(["config"])
    check(rc == 0 and all(v.startswith("file:pensieve.toml:") for v in sources(out).values()),
          "config finds ./pensieve.toml", out)
    os.unlink(os.path.join(WORK, "pensieve.toml"))


def test_config_sources():
    rc, out, err = run(["config"])
    check(rc == 0 and same_typed(tomllib.loads(out), DEFAULTS), "config with nothing set prints the defaults", err)
    check(set(sources(out).values()) == {"default"}, "config with nothing set: every source is default")
    p = os.path.join(WORK, "layers.toml")
    with open(p, "w") as f:
        f.write("[server]\nport = 1000\nhost = \"::1\"\n[logging]\nlevel = \"warn\"\n[performance]\nthreads = 3\n")
    rc, out, err = run(["config", "--port", "3000", "-t", "5"],
                       {"PENSIEVE_CONFIG": p, "PENSIEVE_SERVER_PORT": "2000", "PENSIEVE_LOGGING_LEVEL": "trace",
                        "PENSIEVE_SERVER_API_KEY": "s3cret"})
    got = tomllib.loads(out) if rc == 0 else {}
    src = sources(out)
    check(rc == 0, "config with every layer", err)
    check(got.get("server", {}).get("port") == 3000 and src.get("port") == "flag:--port", "port: flag wins", src)
    check(got["server"]["host"] == "::1" and src["host"] == f"file:{p}:3", "host: from the file with its line")
    check(got["logging"]["level"] == "trace" and src["level"] == "env:PENSIEVE_LOGGING_LEVEL", "level: env beats file")
    check(got["performance"]["threads"] == 5 and src["threads"] == "flag:-t", "threads: short flag beats file")
    check(got["server"]["api_key"] == "********" and "s3cret" not in out, "a non-default api_key is hidden")
    rc, out, _ = run(["config", "--show-secrets"], {"PENSIEVE_SERVER_API_KEY": "s3cret"})
    check(tomllib.loads(out)["server"]["api_key"] == "s3cret", "--show-secrets prints it")


def test_keys_markdown():
    rc, out, _ = run(["config", "keys"])
    rows = [l for l in out.splitlines() if l.startswith("| `[")]
    check(rc == 0 and len(rows) == N_KEYS, "config keys: one Markdown row per key", out)
    for sec, keys in DEFAULTS.items():
        for k in keys:
            env = f"PENSIEVE_{sec.upper()}_{k.upper()}"
            check(any(f"`[{sec}] {k}`" in r and env in r for r in rows), f"config keys: row for [{sec}] {k}")
    # the README documents every key: its table is this output, row for row
    readme_path = os.path.join(os.environ.get("PENSIEVE_SRC") or os.path.join(os.path.dirname(__file__), "..", ".."), "README.md")
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    missing = [r for r in rows if r not in readme]
    check(not missing, "README.md lists every key as `pensieve config keys` prints it", missing)


def test_errors():
    p = os.path.join(WORK, "bad.toml")
    with open(p, "w") as f:
        f.write("[server]\nport = 80\nprot = 1\n")
    rc, _, err = run(["config", "--config", p])
    check(rc == 1 and f"{p}:3:1: [server] unknown key 'prot'" in err, "config: unknown key with FILE:LINE:COL", err)
    rc, _, err = run(["start", "--config", p])
    check(rc == 2 and f"{p}:3:1: [server] unknown key 'prot'" in err, "start: the same error, exit 2", err)
    with open(p, "w") as f:
        f.write("[server]\nport = 'x'\n")
    rc, out, _ = run(["validate", "--config", p])
    rows = validate_lines(out)
    check(rc == 1 and f"{p}:2:8: [server] port: expected an integer, found a string" in out,
          "validate: a wrong type fails the config check", out)
    check([r[1] for r in rows] == ["FAIL"] + ["skip"] * 6, "validate: later checks skipped", rows)
    rc, _, err = run(["start", "--port", "70000"])
    check(rc == 2 and "--port: 70000 is out of range 0..65535" in err, "start --port 70000: range error", err)
    rc, _, err = run(["start", "--parallel", "0", "-m", "x.gguf"])
    check(rc == 2 and "--parallel: 0 is out of range 1..256" in err, "start --parallel 0", err)
    rc, _, err = run(["start", "--bogus"])
    check(rc == 2 and "unknown option '--bogus'" in err, "start --bogus", err)
    rc, _, err = run(["start"])
    check(rc == 2 and "-m FILE is required" in err, "start without a model", err)
    rc, _, err = run(["start", "--port"])
    check(rc == 2 and "--port needs a value" in err, "start --port without a value", err)
    rc, _, err = run(["start", "-m", "/nonexistent.gguf"], {"PENSIEVE_LOGGING_LEVEL": "loud"})
    check(rc == 2 and "environment PENSIEVE_LOGGING_LEVEL: 'loud' is not one of" in err, "start: bad env value", err)
    rc, _, err = run(["start", "-m", "/nonexistent.gguf", "--port", "0"])
    check(rc == 1 and "model file '/nonexistent.gguf' not found" in err, "start: a missing model still says so", err)


def test_validate(tmp):
    good = os.path.join(DATA, "models", "stories260K.gguf")
    if not os.path.exists(good):
        if os.environ.get("CI"):
            sys.exit(f"FAIL: {good} missing")
        print(f"skip validate: {good} missing")
        sys.exit(77)
    kv, weights, n_train = expected_memory(good)
    rc, out, _ = run(["validate", "-m", good])
    msgs = expect_verdicts("validate stories260K", rc, out, 0, ["ok"] * 7)
    check(good in msgs.get("model", ""), "validate: the model line names the file")
    check(msgs.get("arch") == "llama", "validate: architecture llama", msgs.get("arch"))
    check("F32 x 48" in msgs.get("tensors", ""), "validate: tensor types listed", msgs.get("tensors"))
    check(f"({kv} B = " in msgs.get("memory", ""), f"validate: KV cache estimate {kv} B", msgs.get("memory"))
    check(f"({weights} B)" in msgs.get("memory", ""), f"validate: weights {weights} B", msgs.get("memory"))
    check(f"training context {n_train}" in msgs.get("context", ""), "validate: training context", msgs.get("context"))
    # f32 KV cache, 2 sequences, context 256 from flags: the estimate follows the config
    kv2, _, _ = expected_memory(good, 256, 2, 4)
    rc, out, _ = run(["validate", "-m", good, "--kv-cache-type", "f32", "--parallel", "2", "-c", "256"])
    msgs = expect_verdicts("validate with flags", rc, out, 0, ["ok"] * 7)
    check(f"({kv2} B = " in msgs.get("memory", ""), f"validate: KV estimate follows the flags ({kv2} B)", msgs.get("memory"))
    # a memory limit below the estimate
    rc, out, _ = run(["validate", "-m", good], {"PENSIEVE_PERFORMANCE_MEMORY_LIMIT_GB": "0.001"})
    msgs = expect_verdicts("validate over the memory limit", rc, out, 1, ["ok"] * 6 + ["FAIL"])
    check("exceeds memory_limit_gb 0.001" in msgs.get("memory", ""), "validate: names the limit", msgs.get("memory"))
    # a context beyond the training context is a warning, not a failure
    rc, out, _ = run(["validate", "-m", good, "-c", str(n_train * 4)])
    msgs = expect_verdicts("validate long context", rc, out, 0, ["ok"] * 5 + ["warn", "ok"])
    check(f"> training context {n_train}" in msgs.get("context", ""), "validate: context warning", msgs.get("context"))
    # the model from the config file
    cfgp = os.path.join(tmp, "model.toml")
    with open(cfgp, "w") as f:
        f.write(f"[model]\npath = \"{good}\"\n")
    rc, out, _ = run(["validate", "--config", cfgp])
    expect_verdicts("validate with [model] path", rc, out, 0, ["ok"] * 7)

    # a fixture of another quantisation, when present
    fx = os.path.join(FIX, "llama", "llama-q8_0.gguf")
    if os.path.exists(fx):
        rc, out, _ = run(["validate", "-m", fx])
        msgs = expect_verdicts("validate llama-q8_0 fixture", rc, out, 0, ["ok"] * 7)
        check("Q8_0 x" in msgs.get("tensors", ""), "validate fixture: Q8_0 tensors listed", msgs.get("tensors"))
        kvf, _, _ = expected_memory(fx)
        check(f"({kvf} B = " in msgs.get("memory", ""), "validate fixture: KV estimate", msgs.get("memory"))
    elif os.environ.get("CI"):
        check(False, f"fixture {fx} missing")

    # corrupted: a copy truncated to half its size
    bad = os.path.join(tmp, "truncated.gguf")
    data = open(good, "rb").read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    rc, out, _ = run(["validate", "-m", bad])
    msgs = expect_verdicts("validate truncated GGUF", rc, out, 1, ["ok", "ok", "FAIL", "skip", "skip", "skip", "skip"])
    check(bad in msgs.get("gguf", ""), "validate truncated: the error names the file", msgs.get("gguf"))
    # not GGUF at all
    junk = os.path.join(tmp, "junk.gguf")
    with open(junk, "wb") as f:
        f.write(b"this is not a model file at all\n" * 4)
    rc, out, _ = run(["validate", "-m", junk])
    expect_verdicts("validate non-GGUF file", rc, out, 1, ["ok", "ok", "FAIL", "skip", "skip", "skip", "skip"])

    # unsupported architecture: general.architecture "llama" patched to "mamba" in place
    arch = os.path.join(tmp, "mamba.gguf")
    key = b"general.architecture"
    i = data.index(key) + len(key)
    assert struct.unpack_from("<IQ", data, i) == (8, 5) and data[i + 12:i + 17] == b"llama"
    patched = data[: i + 12] + b"mamba" + data[i + 17:]
    with open(arch, "wb") as f:
        f.write(patched)
    rc, out, _ = run(["validate", "-m", arch])
    msgs = expect_verdicts("validate unsupported architecture", rc, out, 1, ["ok", "ok", "ok", "FAIL", "skip", "skip", "skip"])
    check("architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, phi3)" in msgs.get("arch", ""),
          "validate: names the architecture and the supported ones", msgs.get("arch"))

    # a tensor of a type the engine does not compute with: blk.0.attn_q.weight's type id
    # patched from F32 (0) to I8 (24); its data shrinks, so every offset stays inside the file
    _, tensors = gguf_read(good)
    tpos = [t[4] for t in tensors if t[0] == "blk.0.attn_q.weight"][0]
    assert struct.unpack_from("<I", data, tpos)[0] == 0
    retyped = os.path.join(tmp, "i8.gguf")
    with open(retyped, "wb") as f:
        f.write(data[:tpos] + struct.pack("<I", 24) + data[tpos + 4:])
    rc, out, _ = run(["validate", "-m", retyped])
    msgs = expect_verdicts("validate unsupported tensor type", rc, out, 1, ["ok"] * 4 + ["FAIL", "skip", "skip"])
    check("blk.0.attn_q.weight" in msgs.get("tensors", "") and "I8 is not supported" in msgs.get("tensors", ""),
          "validate: names the tensor and its type", msgs.get("tensors"))

    # more memory than any test machine has: the largest context and parallelism allowed
    rc, out, _ = run(["validate", "-m", good, "-c", "16777216", "--parallel", "256"])
    msgs = expect_verdicts("validate beyond MemAvailable", rc, out, 1, ["ok"] * 5 + ["warn", "FAIL"])
    check("exceeds MemAvailable" in msgs.get("memory", ""), "validate: compares with MemAvailable", msgs.get("memory"))

    # no model / missing model
    rc, out, _ = run(["validate"])
    msgs = expect_verdicts("validate without a model", rc, out, 1, ["ok", "FAIL"] + ["skip"] * 5)
    check("no model given" in msgs.get("model", ""), "validate: says no model was given")
    rc, out, _ = run(["validate", "-m", os.path.join(tmp, "absent.gguf")])
    msgs = expect_verdicts("validate missing file", rc, out, 1, ["ok", "FAIL"] + ["skip"] * 5)
    check("No such file" in msgs.get("model", ""), "validate: missing file reason", msgs.get("model"))


if __name__ == "__main__":
    main()
