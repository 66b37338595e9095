"""shopenv.py - what the deploy and recovery tests share: a daemon config
that runs real releases of examples/shop, the CLI against that daemon,
clients that check every response, and the processes of a test."""
import http.client
import json
import os
import subprocess
import threading
import time

from harness import *

BUILD = os.environ.get("CUTOVER_BUILD_DIR") or os.path.dirname(os.path.abspath(BIN))


def shop_binary(version):
    return os.path.join(BUILD, "examples", "shop", f"shop-{version}")


YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
log:
  access: {DIR}/access.log
services:
  shop:
    run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}
    env:
      SHOP_DB: {DIR}/shop.db
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
      start_grace: 10s
    stop_grace: 5s
    deploy:
      timeout: 20s
      watch: 3s
      rollback_window: 60s
      max_error_rate: 5%
      max_p99: 500ms   # the load has 300 ms requests: a good version stays well under; 1.2.0 adds 400 ms
      min_requests: 10
    routes:
      - path: /
"""


def cli(c, *args, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})


def add_releases(c, *versions):
    for v in versions:
        r = cli(c, "release", "add", "shop", v, shop_binary(v), "--state-dir", f"{c.dir}/state")
        eq(r.returncode, 0, f"release add {v}: {r.stderr}")


def version_served(port):
    status, _, body = http_get(port, "/version", host="shop.test")
    eq(status, 200, "GET /version")
    return json.loads(body)["version"]


class Load:
    """Clients that check every response: status 200 and the complete body
    (downloads verified byte for byte), on keep-alive connections."""

    def __init__(self, port, clients=4):
        self.port, self.stop, self.failures, self.count = port, threading.Event(), [], 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def run(self, i):
        conn, n, deadline = None, 0, time.time() + 120
        while not self.stop.is_set() and time.time() < deadline:
            n += 1
            path = ["/api/catalog", "/api/slow?ms=300", "/api/catalog/3", "/api/download?mb=2"][(n + i) % 4]
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", path, headers={"Host": "shop.test"})
                r = conn.getresponse()
                body = r.read()
                ok = r.status == 200
                if ok and path.startswith("/api/download"):
                    ok = len(body) == 2 << 20 and body[-16:] == b"%015x\n" % ((2 << 20) - 16)
                if not ok:
                    with self.lock:
                        self.failures.append(f"{path}: {r.status} {body[:80]!r}")
                with self.lock:
                    self.count += 1
            except Exception as e:
                with self.lock:
                    self.failures.append(f"{path}: {e!r}")
                conn = None

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def live_pids(c):
    st = json.loads(cli(c, "status", "--json").stdout)
    pids = []
    for m in st["managed"]:
        for k in ("live", "previous"):
            if m[k]:
                pids.append(m[k]["pid"])
    return pids


def processes_of(d):
    """Pids of running processes executing a release of the state dir under d
    (simple run commands are exec'd: the process is the service itself)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            stat = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        # cmd[0] for an exec'd binary, cmd[1] for a script run by its #! interpreter
        if any(a.startswith(f"{d}/state/releases/".encode()) for a in cmd[:2]):
            found.append(int(p))
    return found


def restart_daemon(c):
    """Start `cutover daemon` again on the same configuration and state
    (after a kill -9 of the previous one); the harness stops it by PID."""
    err = open(os.path.join(c.dir, "stderr.log"), "a")
    c.proc = subprocess.Popen([BIN, "daemon", "--config", c.cfg_path], stdout=err, stderr=err, cwd=c.dir)
    wait_port(c.port)
    for _ in range(100):  # the admin socket too
        if cli(c, "status").returncode == 0:
            return
        time.sleep(0.05)
    raise TestFailure("restarted daemon does not answer on its admin socket")


def add_script_release(c, version, script):
    """A release of the shop service that is a shell script (a broken or
    slow version), named as the run command expects."""
    path = os.path.join(c.dir, f"shop-{version}")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    r = cli(c, "release", "add", "shop", version, path, "--state-dir", f"{c.dir}/state")
    eq(r.returncode, 0, f"release add {version}: {r.stderr}")


def python_service(prologue="", answer='{"version": version}'):
    """The text of a release (add_script_release) that is a small Python
    HTTP service: it listens on --port, runs PROLOGUE (Python, at module
    level) first, and answers every GET with 200 and the JSON of the
    expression ANSWER (`version` is the release's version, from its file
    name)."""
    return (
        "#!/usr/bin/env python3\n"
        "import hashlib, http.server, json, os, socketserver, sys, threading, time\n"
        "port = int(sys.argv[sys.argv.index(\"--port\") + 1])\n"
        "version = os.path.basename(sys.argv[0]).split(\"-\", 1)[1]\n"
        + prologue +
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = \"HTTP/1.1\"\n"
        "    def do_GET(self):\n"
        f"        body = json.dumps({answer}).encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header(\"Content-Length\", str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *a):\n"
        "        pass\n"
        "class S(socketserver.ThreadingMixIn, http.server.HTTPServer):\n"
        "    daemon_threads = True\n"
        "    allow_reuse_address = True\n"
        "S((\"127.0.0.1\", port), H).serve_forever()\n")


# A release (add_script_release) that is healthy, then dies 1.5 s after it
# started: inside the watch window of its deploy (watch: 2s or more), which
# cutover then rolls back by itself.
DIES_IN_THE_WATCH = python_service("threading.Timer(1.5, lambda: os._exit(7)).start()\n")


def wait_deploying(c, phase, timeout=10):
    """Wait until the deploy in flight is in `phase` (per the daemon)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = managed(c)["deploying"]
        if d and d["phase"] == phase:
            return d
        time.sleep(0.05)
    raise TestFailure(f"the deploy never reached {phase}: {managed(c)}")


def wait_live_settled(c, timeout=15):
    """Wait until a live version is healthy and no deploy is in flight (e.g.
    a version the daemon started again after a restart)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = managed(c)
        if m["live"] and m["live"]["health"] == "healthy" and not m["deploying"]:
            return m
        time.sleep(0.1)
    raise TestFailure(f"no live version settled in {timeout}s: {managed(c)}")


def managed(c):
    st = json.loads(cli(c, "status", "--json").stdout)
    return st["managed"][0]


def history(c):
    """The shop's deployments as `cutover history --json` gives them."""
    r = cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", "--json")
    eq(r.returncode, 0, f"history: {r.stderr}")
    return json.loads(r.stdout)


def audit(c):
    """The shop's audit rows as `cutover audit --json` gives them."""
    r = cli(c, "audit", "shop", "--state-dir", f"{c.dir}/state", "--json")
    eq(r.returncode, 0, f"audit: {r.stderr}")
    return json.loads(r.stdout)
