#!/usr/bin/env python3
"""request_mapping.py — the Anthropic/OpenAI → chat template mapping (docs/chat.md), end to end.

For each API request below, the template context it must become is written out by hand (the
documented mapping); Python's jinja2 renders the model's template with that context, exactly as
Hugging Face's apply_chat_template does (oracle.py's environment; a final assistant turn is
continued as HF's continue_final_message does), and the text must equal, byte for byte, what
`pensieve template -m MODEL --request BODY` prints — the server's own request → prompt path.

Models: the qwen3 fixture (its own Qwen3 template: tools, tool calls and tool messages all
rendered) and stories260K (no template: the ChatML fallback, as --print-template shows).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402  (the HF jinja2 environment)

BIN = os.environ.get("PENSIEVE_BIN")
DATA = os.environ.get("PENSIEVE_TEST_DATA") or os.path.join(oracle.SRC, "..", "shared")
MODELS = [
    ("qwen3", os.path.join(oracle.FIXTURES, "qwen3", "qwen3-f32.gguf"), "<|endoftext|>", "<|im_end|>"),
    ("stories260K", os.path.join(DATA, "models", "stories260K.gguf"), "<s>", "</s>"),
]

READ = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
BASH = {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}}}

CASES = [
    ("anthropic: Claude Code-like turn with tools, calls and an error result", "anthropic",
     {"model": "claude-opus-4-5", "max_tokens": 100, "thinking": {"type": "adaptive"},
      "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=1;"},
                 {"type": "text", "text": "You are Claude Code."},
                 {"type": "text", "text": "Be concise.", "cache_control": {"type": "ephemeral"}}],
      "messages": [
          {"role": "user", "content": [{"type": "text", "text": "list files"}]},
          {"role": "system", "content": ""},
          {"role": "assistant", "content": [
              {"type": "thinking", "thinking": "hmm", "signature": "s"},
              {"type": "text", "text": "Looking."},
              {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la", "timeout": 5}},
              {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"file_path": "/tmp/ä \"q\""}}]},
          {"role": "user", "content": [
              {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt"},
              {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
               "content": [{"type": "text", "text": "no such file"}]},
              {"type": "text", "text": "and then?"}]}],
      "tools": [{"name": "Bash", "description": "Run a command", "input_schema": BASH},
                {"name": "Read", "description": "Read a file", "input_schema": READ},
                {"type": "web_search_20250305", "name": "web_search"}]},
     {"messages": [
         {"role": "system", "content": "You are Claude Code.\nBe concise."},
         {"role": "user", "content": "list files"},
         {"role": "assistant", "content": "Looking.", "tool_calls": [
             {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": {"command": "ls -la", "timeout": 5}}},
             {"id": "toolu_2", "type": "function", "function": {"name": "Read", "arguments": {"file_path": "/tmp/ä \"q\""}}}]},
         {"role": "tool", "tool_call_id": "toolu_1", "name": "Bash", "content": "a.txt\nb.txt"},
         {"role": "tool", "tool_call_id": "toolu_2", "name": "Read", "content": "Error: no such file"},
         {"role": "user", "content": "and then?"}],
      "tools": [{"type": "function", "function": {"name": "Bash", "description": "Run a command", "parameters": BASH}},
                {"type": "function", "function": {"name": "Read", "description": "Read a file", "parameters": READ}}],
      "add_generation_prompt": True, "enable_thinking": True}),
    ("openai: developer message, tool_calls with a string of arguments, tool message", "openai",
     {"model": "gpt-4o", "messages": [
         {"role": "system", "content": "Be brief."},
         {"role": "user", "content": [{"type": "text", "text": "Weather in Zürich?"}]},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "call_9", "type": "function", "function": {"name": "Read", "arguments": "{\"file_path\": \"w.txt\"}"}}]},
         {"role": "tool", "tool_call_id": "call_9", "content": "12 °C"},
         {"role": "developer", "content": "Answer in one line."}],
      "tools": [{"type": "function", "function": {"name": "Read", "parameters": READ}}]},
     {"messages": [
         {"role": "system", "content": "Be brief.\n\nAnswer in one line."},
         {"role": "user", "content": "Weather in Zürich?"},
         {"role": "assistant", "content": "", "tool_calls": [
             {"id": "call_9", "type": "function", "function": {"name": "Read", "arguments": {"file_path": "w.txt"}}}]},
         {"role": "tool", "tool_call_id": "call_9", "name": "Read", "content": "12 °C"}],
      "tools": [{"type": "function", "function": {"name": "Read", "parameters": READ}}],
      "add_generation_prompt": True, "enable_thinking": False}),
    ("anthropic: prefilled assistant turn, no tools, CJK and emoji", "anthropic",
     {"model": "m", "max_tokens": 10, "system": "Tell stories. 物語 🐉",
      "messages": [{"role": "user", "content": "Once?"}, {"role": "assistant", "content": "Once upon"}]},
     {"messages": [{"role": "system", "content": "Tell stories. 物語 🐉"},
                   {"role": "user", "content": "Once?"},
                   {"role": "assistant", "content": "Once upon"}],
      "add_generation_prompt": False, "enable_thinking": False}),
]


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def main():
    if not BIN:
        sys.exit("PENSIEVE_BIN not set")
    ok = bad = 0
    for name, path, bos, eos in MODELS:
        if not os.path.exists(path):
            print(f"{'FAIL' if os.environ.get('CI') else 'SKIP'}: {path} missing")
            sys.exit(1 if os.environ.get("CI") else 77)
        rc, template, err = run(["template", "-m", path, "--print-template"])
        if rc != 0:
            print(f"FAIL {name}: --print-template: {err}")
            bad += 1
            continue
        for title, api, body, ctx in CASES:
            ctx = dict(ctx, bos_token=bos, eos_token=eos)
            kind, want = oracle.jinja_render(template, ctx)
            if kind != "ok":
                print(f"FAIL {name} / {title}: jinja2 {kind}: {want}")
                bad += 1
                continue
            last = ctx["messages"][-1]
            if not ctx["add_generation_prompt"] and last["role"] == "assistant":
                # HF continue_final_message: cut after the final message's text
                want = want[: want.rindex(last["content"]) + len(last["content"])]
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(body, f, ensure_ascii=False)
            args = ["template", "-m", path, "--request", f.name] + (["--openai"] if api == "openai" else [])
            rc, got, err = run(args)
            os.unlink(f.name)
            if rc == 0 and got == want:
                ok += 1
            else:
                bad += 1
                print(f"FAIL {name} / {title}: rc={rc} {err}\n--- jinja2 ---\n{want}\n--- pensieve ---\n{got}")
    print(f"request mapping: {ok} renderings identical to jinja2 on the documented context, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
