"""faulty.py - small shop-like releases with faults chosen by the test, and
the shoppers that load them, for test_canary.py and test_rolling.py.

A release is one Python script (`app_release()` writes it and adds it to
the store as shop VERSION); the daemon runs it as
`${RELEASE_DIR}/app-${VERSION} ${PORT}`.  Every version is the same server,
so a faulty one differs from the stable one only by its fault, and the
analysis' comparisons (error rate, p50, p99 against the stable version)
see nothing else.  Faults are deterministic, per process counters:

  fail_every=N           every Nth request (GET, HEAD or POST; not /health) gets 500
  checkout_fail_every=N  every Nth POST /api/checkout gets 500, nothing else fails
  slow_every=N, slow_ms  every Nth request answers slow_ms late
  tail_every, tail_ms    the same for the stable version's own tail (so its p99 is not 0)

Answers: 200 (POST /api/checkout: 201) with the version in X-Version and
in the body; /health is always 200 and fast.

The shoppers (`Shoppers`) are keep-alive client threads, each pacing its
requests to a target rate, each response checked; every result is kept as
(monotonic time, method, path, status or exception, X-Version), so a test
can count what shoppers saw before and after a point in time.  And what
both test files need of the daemon: its status, the proxy's version
groups, a deploy followed in the background.
"""
import http.client
import json
import os
import subprocess
import threading
import time

from harness import *
from shopenv import cli

APP = r'''#!/usr/bin/env python3
import http.server, os, socketserver, sys, threading, time
FAULTS = %(faults)r
port = int(sys.argv[1]); version = os.path.basename(sys.argv[0]).split("-", 1)[1]
lock = threading.Lock()
count = {"all": 0, "checkout": 0}
def bump(key):
    with lock:
        count[key] += 1
        return count[key]
def every(n, k):
    return n > 0 and k %% n == 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # the head and the body are two writes
    def reply(self, status):
        body = ('{"version": "%%s"}' %% version).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", version)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def serve(self, ok):
        if self.path == "/health":
            return self.reply(200)
        k = bump("all")
        if every(FAULTS.get("slow_every", 0), k):
            time.sleep(FAULTS["slow_ms"] / 1000)
        elif every(FAULTS.get("tail_every", 0), k):
            time.sleep(FAULTS["tail_ms"] / 1000)
        if every(FAULTS.get("fail_every", 0), k):
            return self.reply(500)
        if self.command == "POST" and self.path == "/api/checkout":
            if every(FAULTS.get("checkout_fail_every", 0), bump("checkout")):
                return self.reply(500)
        self.reply(ok)
    def do_GET(self):
        self.serve(200)
    do_HEAD = do_GET
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.serve(201 if self.path == "/api/checkout" else 200)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
S(("127.0.0.1", port), H).serve_forever()
'''

# The configuration of a service of these releases (harness.cutover's
# {DIR}/{PORT}/{ADMIN}); DEPLOY is replaced by the test's deploy: keys
# (indented by 6), EXTRA by service keys (indented by 4).
SERVICE_YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
services:
  shop:
    run: ${RELEASE_DIR}/app-${VERSION} ${PORT}
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
    stop_grace: 2s
EXTRA
    deploy:
      timeout: 20s
      rollback_window: 60s
DEPLOY
    routes:
      - path: /
"""


def service_yaml(deploy, extra=""):
    """SERVICE_YAML with deploy (a dict or lines "key: value") and extra
    service keys."""
    if isinstance(deploy, dict):
        deploy = "\n".join(f"{k}: {v}" for k, v in deploy.items())
    dep = "".join(f"      {l}\n" for l in deploy.splitlines() if l.strip())
    ext = "".join(f"    {l}\n" for l in extra.splitlines() if l.strip())
    return SERVICE_YAML.replace("DEPLOY\n", dep).replace("EXTRA\n", ext)


def app_release(c, version, **faults):
    """Write the release app-VERSION with these faults and add it to c's
    store as shop VERSION."""
    path = os.path.join(c.dir, f"app-{version}")
    with open(path, "w") as f:
        f.write(APP % {"faults": faults})
    os.chmod(path, 0o755)
    r = cli(c, "release", "add", "shop", version, path, "--state-dir", f"{c.dir}/state")
    eq(r.returncode, 0, f"release add {version}: {r.stderr}")


def deploy_in_background(c, version):
    """`cutover deploy shop VERSION --json` in the background (it follows
    the deploy to its end); deploy_result() waits for it."""
    return subprocess.Popen([BIN, "deploy", "shop", version, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})


def deploy_result(p, timeout=60):
    """(exit status, the deployment's JSON) of deploy_in_background(); the
    CLI is killed if it has not ended within timeout."""
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    try:
        return p.returncode, json.loads(out)
    except ValueError:
        raise TestFailure(f"cutover deploy --json printed no JSON (exit {p.returncode}): {out[-2000:]}")


def status(c):
    """GET /v1/status over the admin socket, parsed."""
    st, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")
    eq(st, 200, f"GET /v1/status: {body}")
    return json.loads(body)


def shop_status(c):
    """(the shop's managed entry, its proxy entry) of one /v1/status."""
    s = status(c)
    return s["managed"][0], [x for x in s["services"] if x["name"] == "shop"][0]


def routed_weights(c):
    """{version: weight} of the shop's version groups as the proxy routes them."""
    return {g["version"]: g["weight"] for g in shop_status(c)[1]["versions"]}


class Shoppers:
    """`clients` keep-alive client threads, together about `rate` requests a
    second, each picking its request from `mix` in turn: a list of
    (method, path) (POST bodies are "{}").  Stops at the end of the with
    block, or after max_s.  .seen: [(t, method, path, status, version)], t
    the wall-clock time the request was sent,
    status an int, or the exception's name for a request that got no
    response."""

    def __init__(self, port, mix, rate=200, clients=4, max_s=60.0, host="shop.test"):
        self.port, self.mix, self.host = port, mix, host
        self.period = clients / rate if rate else 0
        self.stop, self.lock, self.seen = threading.Event(), threading.Lock(), []
        self.deadline = time.monotonic() + max_s
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _run(self, i):
        conn, n = None, i * 7
        next_at = time.monotonic() + i * self.period / len(self.threads)
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            if self.period:
                wait = next_at - time.monotonic()
                if wait > 0 and self.stop.wait(wait):
                    break
                next_at = max(next_at + self.period, time.monotonic() - self.period)
            method, path = self.mix[n % len(self.mix)]
            n += 1
            t = time.time()  # wall clock: comparable with the daemon's at_ms
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                body = b"{}" if method == "POST" else None
                conn.request(method, path, body=body, headers={"Host": self.host})
                r = conn.getresponse()
                r.read()
                got = (t, method, path, r.status, r.getheader("X-Version"))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                got = (t, method, path, type(e).__name__, None)
                if conn:
                    conn.close()
                conn = None
            with self.lock:
                self.seen.append(got)
        if conn:
            conn.close()

    def results(self, since=0.0, until=None):
        with self.lock:
            return [s for s in self.seen if s[0] >= since and (until is None or s[0] < until)]

    def failed(self, method=None, since=0.0, until=None):
        """Results that were not a 2xx (or got no response), of method."""
        return [s for s in self.results(since, until)
                if (method is None or s[1] == method) and not (isinstance(s[3], int) and 200 <= s[3] < 300)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)
