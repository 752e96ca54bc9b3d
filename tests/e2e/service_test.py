#!/usr/bin/env python3
"""service_test.py — black-box tests of the service lifecycle of the real binary on
stories260K: `start --background` (detached session, stdin /dev/null, output in the log
file, PID file created and removed), `status` and `stop` with their exit codes, a second
start refused, stale PID files (a dead PID, and a live PID of an unrelated process that must
not be signalled), port in use / missing model / bad config (non-zero, clear message),
the default PID and log paths under a temporary HOME / XDG_RUNTIME_DIR, SIGTERM during a
long stream (the stream ends with message_stop, new connections are refused, exit 0), the
drain timeout cutting a stalled client, a second SIGINT exiting at once, `stop --force`,
SIGHUP changing the API key live (old key 401, new key 200, keys never logged, restart-only
keys reported, a broken file keeping the running configuration) and SIGUSR1's snapshot
(checked against /proc). Everything runs in a temporary directory with free ports; the
user's real PID/log paths are never touched (HOME and XDG_* point into the temp dir).

Oracles are independent of the code under test: /proc (session id, file descriptors,
VmRSS, threads), the kernel's answer to kill(pid, 0), plain sockets, the SSE stream as the
client receives it."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("PENSIEVE_BIN")
DATA = os.environ.get("PENSIEVE_TEST_DATA", "../shared")
MODEL = os.path.abspath(os.path.join(DATA, "models", "stories260K.gguf"))
KEY = "pensieve-local-key"

if not BIN:
    print("FAIL: PENSIEVE_BIN is not set")
    sys.exit(1)
if not os.path.exists(MODEL):
    if os.environ.get("CI"):
        print(f"FAIL: {MODEL} missing under CI")
        sys.exit(1)
    print(f"SKIP: {MODEL} missing")
    sys.exit(77)

TMP = tempfile.mkdtemp(prefix="pv-service-")
HOME = os.path.join(TMP, "home")
os.makedirs(HOME)
failures = []
spawned = []  # PIDs to kill if the test dies half-way


def check(cond, what, detail=""):
    if cond:
        print("ok  ", what)
    else:
        failures.append(what)
        print("FAIL", what, detail if detail else "")


def clean_env(extra=None):
    """The environment without any PENSIEVE_ configuration or XDG_ directory of the user."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PENSIEVE_") or k.startswith("XDG_"))}
    env["HOME"] = HOME
    env.update(extra or {})
    return env


def run(args, env=None, timeout=120):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=env or clean_env(), cwd=TMP,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def alive(pid):
    """True while the process exists and is not a zombie (a reparented daemon may wait a
    moment to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pid, timeout):
    t = time.time() + timeout
    while time.time() < t:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def http(port, method, path, body=None, headers=None, timeout=10, raw_body=None):
    """One HTTP/1.0 request on a fresh socket; returns (status, body text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = json.dumps(body).encode() if body is not None else (raw_body or b"")
    h = {"Host": "127.0.0.1", "Content-Length": str(len(data))}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = f"{method} {path} HTTP/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    s.sendall(req.encode() + data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    return status, rest.decode("utf-8", "replace")


def health_ok(port):
    try:
        return http(port, "GET", "/health", timeout=2)[0] == 200
    except OSError:
        return False


def wait_health(port, timeout=60):
    t = time.time() + timeout
    while time.time() < t:
        if health_ok(port):
            return True
        time.sleep(0.1)
    return False


def auth(key):
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def open_stream(port, max_tokens, rcvbuf=2048):
    """Starts a streamed /v1/messages request on a socket with a small receive buffer, so
    that a client that stops reading really holds the response up (the server's writes
    block), and returns the socket."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    body = json.dumps({"model": "stories", "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "messages": [{"role": "user", "content": "Once upon a time"}]}).encode()
    head = ("POST /v1/messages HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"x-api-key: {KEY}\r\nanthropic-version: 2023-06-01\r\nContent-Length: {len(body)}\r\n\r\n")
    s.sendall(head.encode() + body)
    return s


def open_slow_upload(port, max_tokens=5, key=KEY):
    """A /v1/messages request whose body is only half sent: the server has its headers, so
    it is in flight until the rest comes (this holds a request open for as long as a test
    needs, however fast the model is). `Expect: 100-continue` makes the server confirm that
    it has taken the headers before this returns. Returns (socket, the rest of the body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    body = json.dumps({"model": "stories", "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": "Once upon a time"}]}).encode()
    head = ("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\nExpect: 100-continue\r\n\r\n")
    s.sendall(head.encode())
    got = read_until(s, b"\r\n\r\n")
    if not got.startswith(b"HTTP/1.1 100"):
        raise RuntimeError(f"expected 100 Continue, got {got[:100]!r}")
    half = len(body) // 2
    s.sendall(body[:half])
    return s, body[half:]


def final_response(raw):
    """(status, body) of a raw HTTP/1.1 answer, skipping the interim 100 Continue."""
    while raw.startswith(b"HTTP/1.1 100"):
        raw = raw.partition(b"\r\n\r\n")[2]
    head, _, body = raw.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head.startswith(b"HTTP/") else 0), body


def read_until(s, marker, buf=b""):
    while marker not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def read_all(s, buf=b""):
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf


def sse_events(raw):
    body = raw.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")
    events = []
    for frame in body.split("\n\n"):
        ev, data = None, None
        for line in frame.split("\n"):
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if ev:
            events.append((ev, json.loads(data) if data else None))
    return events


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def no_sanitizer_report(text, what):
    check("Sanitizer" not in text and "runtime error:" not in text, f"{what}: no sanitizer report",
          text[-3000:])


def base_args(port, pid_file=None, log_file=None):
    a = ["start", "-m", MODEL, "--port", str(port), "--threads", "1", "--parallel", "2"]
    if pid_file:
        a += ["--pid-file", pid_file]
    if log_file:
        a += ["--log-file", log_file]
    return a


def read_pid(path):
    with open(path) as f:
        return int(f.read().split()[0])


def spawn_fg(args, name):
    """A foreground server with its standard error in a file; returns (Popen, err path)."""
    err_path = os.path.join(TMP, name + ".err")
    ef = open(err_path, "w")
    p = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=ef, stderr=ef, env=clean_env(),
                         cwd=TMP)
    ef.close()
    spawned.append(p.pid)
    return p, err_path


# ---------------------------------------------------------------------------------------
def test_background_lifecycle():
    port = free_port()
    pid_file = os.path.join(TMP, "bg", "run", "pensieve.pid")  # directories created by start
    log_file = os.path.join(TMP, "bg", "log", "pensieve.log")
    rc, out, err = run(base_args(port, pid_file, log_file) + ["--background"])
    check(rc == 0, "start --background exits 0", err)
    # the command returned only once /health answers: check at once, no retry
    check(health_ok(port), "/health answers as soon as start --background has returned")
    check(os.path.exists(pid_file), "PID file created (with its directories)")
    pid = read_pid(pid_file) if os.path.exists(pid_file) else 0
    spawned.append(pid)
    check(str(pid) in out and f"127.0.0.1:{port}" in out and log_file in out,
          "start prints the PID, the address and the log file", out)
    check(pid > 0 and alive(pid), "the PID in the file is a live process")
    check(pid != 0 and os.getsid(pid) == pid, "the server leads its own session (setsid)")
    check(os.readlink(f"/proc/{pid}/fd/0") == "/dev/null", "stdin is /dev/null")
    check(os.readlink(f"/proc/{pid}/fd/1") == log_file and os.readlink(f"/proc/{pid}/fd/2") == log_file,
          "stdout and stderr go to the log file",
          (os.readlink(f"/proc/{pid}/fd/1"), os.readlink(f"/proc/{pid}/fd/2")))
    log = read_text(log_file)
    check(f"listening on http://127.0.0.1:{port}" in log, "the log file has the startup lines", log)

    # status: healthy
    rc, out, err = run(["status", "--port", str(port), "--pid-file", pid_file])
    check(rc == 0, "status exits 0 while healthy", out + err)
    check(f"PID       {pid}" in out, "status shows the PID", out)
    check(f"http://127.0.0.1:{port}" in out, "status shows the address", out)
    _, hb = http(port, "GET", "/health")
    h = json.loads(hb)
    check(f"model     {h['model']}" in out and "requests  0 active, 0 queued" in out,
          "status shows the model and the request counts", out)
    check("uptime" in out and "MiB resident" in out, "status shows uptime and memory", out)

    # a generation moves the tokens served shown by status (when /health reports them)
    st, _ = http(port, "POST", "/v1/messages",
                 {"model": "x", "max_tokens": 7, "temperature": 0,
                  "messages": [{"role": "user", "content": "Once upon a time"}]}, auth(KEY))
    check(st == 200, "a request is served by the background server")
    _, hb = http(port, "GET", "/health")
    h = json.loads(hb)
    rc, out, _ = run(["status", "--port", str(port), "--pid-file", pid_file])
    if isinstance(h.get("tokens"), dict):
        check(h["tokens"].get("generated") == 7 and "7 generated" in out,
              "status shows the tokens served (7 generated)", out)

    # a second start on the same PID file is refused with the running PID
    port2 = free_port()
    rc, out, err = run(base_args(port2, pid_file, log_file) + ["--background"])
    check(rc == 1 and "already running" in err and str(pid) in err, "second start refused with the PID", err)
    check(not health_ok(port2), "nothing was started on the second port")
    check(read_pid(pid_file) == pid, "the PID file still names the first server")

    # status on the wrong port: the process runs but does not answer → exit 1
    rc, out, _ = run(["status", "--port", str(port2), "--pid-file", pid_file])
    check(rc == 1 and "not answering" in out and str(pid) in out,
          "status exits 1 when the process runs but /health does not answer", out)

    # stop
    rc, out, err = run(["stop", "--pid-file", pid_file])
    check(rc == 0 and "stopped" in out, "stop exits 0 and says stopped", out + err)
    check(wait_gone(pid, 5), "the server process is gone after stop")
    check(not os.path.exists(pid_file), "PID file removed")
    log = read_text(log_file)
    check("SIGTERM received" in log and "stopped (exit code 0)" in log, "the log records the shutdown", log[-800:])
    no_sanitizer_report(log, "background server log")
    rc, out, _ = run(["status", "--port", str(port), "--pid-file", pid_file])
    check(rc == 1 and "not running" in out, "status exits 1 when not running", out)
    rc, out, err = run(["stop", "--pid-file", pid_file])
    check(rc == 1 and "no server running" in err, "stop with no server: says so, exit 1", err)


def test_stale_pid_files():
    pid_file = os.path.join(TMP, "stale.pid")
    log_file = os.path.join(TMP, "stale.log")
    # a PID that is certainly gone: a child we started and reaped
    p = subprocess.Popen(["true"])
    p.wait()
    with open(pid_file, "w") as f:
        f.write(f"{p.pid}\n")
    port = free_port()
    rc, out, _ = run(["status", "--port", str(port), "--pid-file", pid_file])
    check(rc == 1 and "stale" in out, "status reports the stale PID file, exit 1", out)
    rc, out, err = run(base_args(port, pid_file, log_file) + ["--background"])
    check(rc == 0, "start replaces a stale PID file", err)
    check("stale" in err and str(p.pid) in err, "start says it replaced the stale PID file", err)
    pid = read_pid(pid_file)
    spawned.append(pid)
    check(pid != p.pid and alive(pid), "the PID file now names the new server")
    rc, out, _ = run(["stop", "--pid-file", pid_file])
    check(rc == 0 and wait_gone(pid, 5) and not os.path.exists(pid_file), "the new server stops cleanly")

    # a PID file naming a live process that is not a pensieve server (a recycled PID): no
    # lock is held, so stop must neither signal it nor claim a server runs
    bystander = subprocess.Popen(["sleep", "60"])
    with open(pid_file, "w") as f:
        f.write(f"{bystander.pid}\n")
    rc, _, err = run(["stop", "--pid-file", pid_file])
    time.sleep(0.2)
    check(rc == 1 and "no server running" in err, "stop on a recycled PID: no server running, exit 1", err)
    check(bystander.poll() is None, "the unrelated process was not signalled")
    check(not os.path.exists(pid_file), "stop removed the stale PID file")
    bystander.kill()
    bystander.wait()


def test_start_failures():
    # port in use: a plain listening socket holds it
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    pid_file = os.path.join(TMP, "fail.pid")
    log_file = os.path.join(TMP, "fail.log")
    t0 = time.time()
    rc, out, err = run(base_args(port, pid_file, log_file) + ["--background"])
    check(rc != 0, "port in use: start --background exits non-zero", out + err)
    check(f"127.0.0.1:{port}" in err and "already in use" in err.lower(),
          "port in use: the child's error reaches the user", err)
    check(time.time() - t0 < 30, "port in use: the failure is reported promptly")
    check(not os.path.exists(pid_file), "port in use: no PID file left behind")
    check("already in use" in read_text(log_file).lower(), "port in use: the error is in the log too")
    # the same in the foreground
    rc, out, err = run(base_args(port))
    check(rc != 0 and "already in use" in err.lower(), "port in use (foreground): non-zero and clear", err)
    holder.close()

    # model missing
    port = free_port()
    rc, out, err = run(["start", "-m", os.path.join(TMP, "nope.gguf"), "--port", str(port), "--pid-file",
                        pid_file, "--log-file", log_file, "--background"])
    check(rc != 0 and "nope.gguf" in err and "not found" in err, "missing model: non-zero, names the file", err)
    check(not os.path.exists(pid_file), "missing model: no PID file left behind")
    # a file that is not a GGUF model: the loader's error comes back through the pipe
    bad = os.path.join(TMP, "bad.gguf")
    with open(bad, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00garbage")
    rc, out, err = run(["start", "-m", bad, "--port", str(port), "--pid-file", pid_file, "--log-file",
                        log_file, "--background"])
    check(rc != 0 and "bad.gguf" in err, "corrupt model: non-zero with the loader's message", err)
    # bad configuration: refused before anything starts, with file:line:col
    cfg = os.path.join(TMP, "bad.toml")
    with open(cfg, "w") as f:
        f.write("[server]\nport = \"eighty\"\n")
    rc, out, err = run(["start", "-m", MODEL, "--config", cfg, "--pid-file", pid_file, "--background"])
    check(rc == 2 and "bad.toml:2:" in err and "port" in err, "bad config: exit 2 naming file:line", err)
    check(not os.path.exists(pid_file), "bad config: no PID file")
    # a log file that cannot be opened (a directory): the child says so through the pipe
    rc, out, err = run(["start", "-m", MODEL, "--port", str(port), "--pid-file", pid_file, "--log-file", TMP,
                        "--background"])
    check(rc != 0 and "log file" in err and TMP in err, "unusable log file: non-zero, names it", err)
    check(not os.path.exists(pid_file) and not health_ok(port), "unusable log file: nothing left running")
    # usage errors of stop and status
    rc, _, err = run(["stop", "--timeout", "abc", "--pid-file", pid_file])
    check(rc == 2 and "--timeout" in err, "stop --timeout abc: exit 2", err)
    rc, _, err = run(["status", "--bogus"])
    check(rc == 2 and "--bogus" in err, "status with an unknown option: exit 2", err)


def test_default_paths():
    """No pid_file/logging.file: the documented defaults, inside the temporary HOME."""
    port = free_port()
    state = os.path.join(HOME, ".local", "state", "pensieve")
    rc, out, err = run(["start", "-m", MODEL, "--port", str(port), "--threads", "1", "--background"])
    pid_file = os.path.join(state, "pensieve.pid")
    check(rc == 0 and os.path.exists(pid_file), "default PID file ~/.local/state/pensieve/pensieve.pid", out + err)
    check(os.path.exists(os.path.join(state, "pensieve.log")), "default log ~/.local/state/pensieve/pensieve.log")
    pid = read_pid(pid_file) if os.path.exists(pid_file) else 0
    spawned.append(pid)
    rc, out, _ = run(["status", "--port", str(port)])
    check(rc == 0 and str(pid) in out, "status finds the default PID file", out)
    rc, out, _ = run(["stop"])
    check(rc == 0 and wait_gone(pid, 5) and not os.path.exists(pid_file), "stop finds the default PID file", out)
    # XDG_RUNTIME_DIR (absolute) takes the PID file; XDG_STATE_HOME the log
    rundir = os.path.join(TMP, "xdg-run")
    statedir = os.path.join(TMP, "xdg-state")
    os.makedirs(rundir)
    env = clean_env({"XDG_RUNTIME_DIR": rundir, "XDG_STATE_HOME": statedir})
    rc, out, err = run(["start", "-m", MODEL, "--port", str(port), "--threads", "1", "--background"], env=env)
    pid_file = os.path.join(rundir, "pensieve.pid")
    check(rc == 0 and os.path.exists(pid_file), "$XDG_RUNTIME_DIR/pensieve.pid", out + err)
    check(os.path.exists(os.path.join(statedir, "pensieve", "pensieve.log")), "$XDG_STATE_HOME/pensieve/pensieve.log")
    pid = read_pid(pid_file) if os.path.exists(pid_file) else 0
    spawned.append(pid)
    rc, out, _ = run(["stop"], env=env)
    check(rc == 0 and wait_gone(pid, 5), "stop with the XDG paths", out)


def test_sigterm_drains_stream():
    port = free_port()
    p, err_path = spawn_fg(base_args(port) + ["--drain-timeout", "30"], "drain")
    check(wait_health(port), "foreground server up")
    # a request whose upload has begun: the drain must wait for it and still answer it
    slow, rest = open_slow_upload(port)
    # 1900 tokens (the context is 2048): long enough to still be running when the signal
    # lands right after the first delta
    s = open_stream(port, 1900)
    buf = read_until(s, b"content_block_delta")
    check(b"content_block_delta" in buf, "first delta received")
    p.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    check(p.poll() is None, "the server waits for the in-flight requests after SIGTERM")
    refused = False
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        c.close()
    except ConnectionRefusedError:
        refused = True
    except OSError:
        refused = False
    check(refused, "new connections are refused while draining")
    raw = read_all(s, buf)
    ev = sse_events(raw)
    names = [e[0] for e in ev]
    check(names and names[-1] == "message_stop", "the stream ends with message_stop",
          names[-5:] if names else raw[-500:])
    md = [d for n, d in ev if n == "message_delta"]
    stop = md[0]["delta"]["stop_reason"] if md else None
    check(stop in ("max_tokens", "end_turn"), f"the stream finished normally (stop_reason {stop})")
    if stop == "max_tokens":
        check(md[0]["usage"]["output_tokens"] == 1900, "all 1900 tokens were generated")
    check(not any(n == "error" for n in names), "no error event in the drained stream")
    slow.sendall(rest)
    raw = read_all(slow)
    st, body = final_response(raw)
    try:
        msg = json.loads(body)
    except ValueError:
        msg = {}
    check(st == 200 and msg.get("type") == "message" and msg.get("usage", {}).get("output_tokens") == 5,
          "the request uploaded across the SIGTERM is answered in full", raw[:300])
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    err = read_text(err_path)
    check(rc == 0, f"exit code 0 after the drain (got {rc})", err[-1500:])
    check("draining 2 requests in flight" in err, "the log says two requests were in flight", err[-1500:])
    check("drained in" in err, "the log says the drain completed", err[-1500:])
    no_sanitizer_report(err, "drain server")


def test_drain_timeout_and_second_sigint():
    # a client that never reads: the drain timeout cuts it and the server still exits 0
    port = free_port()
    p, err_path = spawn_fg(base_args(port) + ["--drain-timeout", "1"], "cut")
    check(wait_health(port), "server up (drain timeout 1 s)")
    s, _ = open_slow_upload(port)  # never finished
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    dt = time.time() - t0
    err = read_text(err_path)
    check(rc == 0, f"stalled client: exit 0 after the drain timeout (got {rc})", err[-1500:])
    check(0.9 <= dt < 15, f"stalled client: exit after about the drain timeout ({dt:.1f} s)")
    s.settimeout(5)
    try:
        closed = s.recv(4096) == b""
    except OSError:
        closed = False
    check(closed, "the stalled connection was closed by the server")
    check("drain timeout" in err and "cutting 1 request" in err, "the log says the request was cut", err[-1500:])
    no_sanitizer_report(err, "drain-timeout server")

    # a second SIGINT exits at once, without waiting for the 30 s drain
    port = free_port()
    p, err_path = spawn_fg(base_args(port) + ["--drain-timeout", "30"], "sigint")
    check(wait_health(port), "server up (drain timeout 30 s)")
    s, _ = open_slow_upload(port)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    check(p.poll() is None, "after one SIGINT the server is still draining")
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    s.close()
    err = read_text(err_path)
    check(rc == 130 and time.time() - t0 < 5, f"the second SIGINT exits at once with 130 (got {rc})", err[-1500:])
    check("second signal (SIGINT)" in err, "the log says why", err[-800:])


def test_stop_force():
    port = free_port()
    pid_file = os.path.join(TMP, "force.pid")
    log_file = os.path.join(TMP, "force.log")
    rc, _, err = run(base_args(port, pid_file, log_file) + ["--background", "--drain-timeout", "60"])
    check(rc == 0, "background server up (drain timeout 60 s)", err)
    pid = read_pid(pid_file)
    spawned.append(pid)
    s, _ = open_slow_upload(port)
    t0 = time.time()
    rc, out, err = run(["stop", "--pid-file", pid_file, "--timeout", "1"])
    check(rc == 1 and "still running" in err and "--force" in err,
          "stop without --force: still draining after the timeout → exit 1", out + err)
    check(time.time() - t0 < 10 and alive(pid), "the server is still draining")
    rc, out, _ = run(["status", "--port", str(port), "--pid-file", pid_file])
    check(rc == 1 and "not answering" in out and str(pid) in out,
          "status while draining: the process runs, /health is refused, exit 1", out)
    rc, out, err = run(["stop", "--pid-file", pid_file, "--timeout", "1", "--force"])
    check(rc == 0 and "SIGKILL" in err and "killed" in out, "stop --force kills after the timeout", out + err)
    check(wait_gone(pid, 5), "the process is gone")
    check(not os.path.exists(pid_file), "stop --force removed the PID file")
    s.close()


def test_sighup_and_sigusr1():
    port, port2 = free_port(), free_port()
    pid_file = os.path.join(TMP, "hup.pid")
    log_file = os.path.join(TMP, "hup.log")
    cfg = os.path.join(TMP, "hup.toml")

    def write_cfg(key, port_value, queued, broken=False, body_mb=32, level="info"):
        with open(cfg, "w") as f:
            f.write(f"[server]\nport = {port_value}\napi_key = \"{key}\"\nmax_queued_requests = {queued}\n")
            f.write(f"request_body_limit_mb = {body_mb}\n")
            f.write(f"pid_file = \"{pid_file}\"\n[logging]\nfile = \"{log_file}\"\nlevel = \"{level}\"\n")
            f.write(f"[model]\npath = \"{MODEL}\"\n")
            if broken:
                f.write("[server\n")

    old_key, new_key = "old-secret-key-1234", "new-secret-key-5678"
    write_cfg(old_key, port, 16)
    rc, out, err = run(["start", "--config", cfg, "--threads", "1", "--background"])
    check(rc == 0, "background server from a config file", err)
    pid = read_pid(pid_file) if os.path.exists(pid_file) else 0
    spawned.append(pid)

    def models(k):
        return http(port, "GET", "/v1/models", headers=auth(k))[0]

    check(models(old_key) == 200 and models(new_key) == 401, "before SIGHUP: old key 200, new key 401")
    # a 1.5 MiB body (not JSON): read and refused as bad JSON under the 32 MiB limit
    big = "x" * (3 << 19)
    st, _ = http(port, "POST", "/v1/messages", headers={**auth(old_key), "Content-Type": "application/json"},
                 raw_body=big.encode())
    check(st == 400, "before SIGHUP: a 1.5 MiB body is read (400 bad JSON)")

    check("[debug]" not in read_text(log_file), "before SIGHUP: no debug lines at level info")
    write_cfg(new_key, port2, 3, body_mb=1, level="debug")  # port: restart; the rest: live
    os.kill(pid, signal.SIGHUP)
    t = time.time() + 10
    while time.time() < t and models(new_key) != 200:
        time.sleep(0.05)
    check(models(new_key) == 200, "after SIGHUP: the new key is accepted")
    check(models(old_key) == 401, "after SIGHUP: the old key is refused (401)")
    check(health_ok(port) and not health_ok(port2), "the port did not change (needs a restart)")
    log = read_text(log_file)
    check("[server] api_key" in log and "applied" in log, "the log says the API key changed and was applied",
          log[-1500:])
    check("[server] max_queued_requests: 16 -> 3 applied" in log, "the queue limit was applied live", log[-1500:])
    # the declared length alone is refused now (the server answers before any body byte,
    # so only the headers are sent: no reset from unread data)
    hs = socket.create_connection(("127.0.0.1", port), timeout=10)
    hs.sendall(("POST /v1/messages HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"x-api-key: {new_key}\r\nContent-Length: {len(big)}\r\n\r\n").encode())
    answer = read_all(hs)
    check("[server] request_body_limit_mb: 32 -> 1 applied" in log and answer.split()[1:2] == [b"413"],
          "the body limit was applied live (1.5 MiB declared → 413)", (log[-1500:], answer[:200]))
    check(f"[server] port: {port} -> {port2} needs a restart" in log, "the port change needs a restart",
          log[-1500:])
    check(old_key not in log and new_key not in log, "API keys are never written to the log")
    check("[logging] level: \"info\" -> \"debug\" applied" in log, "the log level change is applied", log[-1500:])
    http(port, "GET", "/health")
    check("[debug]" in read_text(log_file), "after SIGHUP: debug lines appear")

    # a broken file: the running configuration stays
    write_cfg("third-key", port, 3, broken=True)
    os.kill(pid, signal.SIGHUP)
    t = time.time() + 10
    while time.time() < t and "does not load" not in read_text(log_file):
        time.sleep(0.05)
    check("does not load, keeping the running one" in read_text(log_file), "a broken file is reported")
    check(models(new_key) == 200 and models("third-key") == 401, "and the running key stays")

    # SIGUSR1: a snapshot in the log, checked against /proc, with one request in flight
    write_cfg(new_key, port2, 3, body_mb=1, level="debug")
    slow, rest = open_slow_upload(port, key=new_key)
    os.kill(pid, signal.SIGUSR1)
    t = time.time() + 10
    line = ""
    while time.time() < t and not line:
        line = next((l for l in read_text(log_file).splitlines() if "SIGUSR1 snapshot" in l), "")
        time.sleep(0.05)
    check(line != "", "SIGUSR1 writes a snapshot to the log")
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv and not kv.startswith("("))
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if v.split():
                st[k] = v.split()[0]
    rss, threads = int(st.get("VmRSS", 0)), int(st.get("Threads", 0))
    try:
        snap_rss, snap_thr = int(fields.get("vm_rss_kb", -1)), int(fields.get("threads", -1))
    except ValueError:
        snap_rss, snap_thr = -1, -1
    check(snap_rss > 0 and rss / 2 <= snap_rss <= rss * 2, f"snapshot VmRSS {snap_rss} kB ~ /proc {rss} kB", line)
    check(snap_thr >= 2 and abs(snap_thr - threads) <= 2, f"snapshot threads {snap_thr} ~ /proc {threads}", line)
    check("in_flight=1" in line and "kv_slots=4" in line, "snapshot has requests in flight and KV slots", line)
    try:
        kv = float(fields.get("kv_usage", "nan"))
    except ValueError:
        kv = float("nan")
    check(0 <= kv <= 1, f"snapshot has the KV cache use ratio ({kv})", line)

    slow.sendall(rest)
    raw = read_all(slow)
    check(final_response(raw)[0] == 200, "the request in flight at SIGUSR1 is answered", raw[:200])
    rc, out, err = run(["stop", "--config", cfg])
    check(rc == 0 and wait_gone(pid, 5), "stop through the same config file", out + err)
    no_sanitizer_report(read_text(log_file), "SIGHUP server log")


def main():
    tests = [test_background_lifecycle, test_stale_pid_files, test_start_failures, test_default_paths,
             test_sigterm_drains_stream, test_drain_timeout_and_second_sigint, test_stop_force,
             test_sighup_and_sigusr1]
    only = sys.argv[1:]
    try:
        for t in tests:
            if only and t.__name__ not in only:
                continue
            print(f"== {t.__name__}")
            try:
                t()
            except Exception as e:  # a crash in one test is a failure, the others still run
                failures.append(f"{t.__name__}: {e!r}")
                print("FAIL", t.__name__, "raised", repr(e))
    finally:
        for pid in spawned:
            if pid and alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    if failures:
        print(f"\n{len(failures)} failure(s) (logs kept in {TMP}):")
        for f in failures:
            print("  -", f)
        sys.exit(1)
    shutil.rmtree(TMP, ignore_errors=True)
    print("\nall service checks passed")


main()
