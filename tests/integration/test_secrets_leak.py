"""A service that leaks its secrets on purpose.

The "leaky" service prints every secret it receives (an environment
variable and a file) to stdout and stderr, whole and split across writes
with pauses between the pieces, at start and on each request to /leak.
It runs in the `prod` environment (cutover.yml + cutover.prod.yml) from an
age-encrypted secrets file.  It is deployed, restarted (after a secret
changed) and rolled back under load, then the test looks everywhere
cutover writes or shows something: no secret value may appear in any file
under the state directory (SQLite included), the logs, `cutover status
--json`, /metrics, the event stream, /proc/PID/cmdline of any process
cutover started, or this test's own output (values are compared by
digest in messages, never printed).  Also: the values reach the instance
(env, and a file 0400 in a private 0700 directory that is removed when
the instance stops), and a missing secret fails the deploy before
anything starts, naming the secret and the environment.
"""
import contextlib
import hashlib
import json
import os
import secrets as pysecrets
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import *

LEAKY = r'''#!/usr/bin/env python3
# leaky %(tag)s: prints its secrets, split across writes
import hashlib, http.server, json, os, socketserver, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
def secrets():
    env = os.environ.get("DB_PASSWORD", "")
    d = os.environ.get("CUTOVER_SECRETS_DIR", "")
    path = os.path.join(d, "api-token") if d else ""
    token = open(path).read() if path else ""
    return env, token, d, path
def leak(tag):
    env, token, _, _ = secrets()
    for v, out in ((env, sys.stdout), (token, sys.stderr), (env, sys.stderr), (token, sys.stdout)):
        out.write(f"{tag}: the secret is {v}\n"); out.flush()
        h = len(v) // 2
        out.write(f"{tag}: split: {v[:3]}"); out.flush(); time.sleep(0.03)
        out.write(v[3:h]); out.flush(); time.sleep(0.03)
        out.write(v[h:] + " (end)\n"); out.flush()
    os.write(1, ("%(tag)s bytes " + env + "\n").encode())
leak("start")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        env, token, d, path = secrets()
        if self.path == "/leak":
            leak("request")
        st = os.stat(path) if path else None
        body = json.dumps({"version": "%(tag)s",
                           "env_sha": hashlib.sha256(env.encode()).hexdigest(),
                           "file_sha": hashlib.sha256(token.encode()).hexdigest(),
                           "file_mode": oct(st.st_mode & 0o777) if st else None,
                           "dir_mode": oct(os.stat(d).st_mode & 0o777) if d else None,
                           "file_uid": st.st_uid if st else None, "dir": d}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
'''

BASE = """listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
state_dir: {DIR}/state-base
services:
  leaky:
    run: python3 ${RELEASE_DIR}/leaky.py --port ${PORT}
    secrets:
      - DB_PASSWORD
      - {name: API_TOKEN, file: api-token}
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
    stop_grace: 3s
    deploy:
      timeout: 20s
      watch: 2s
      rollback_window: 60s
      min_requests: 10
    routes:
      - path: /
"""

PROD = """state_dir: {DIR}/state
log:
  access: {DIR}/access.log
  error: {DIR}/error.log
secrets:
  runtime_dir: {DIR}/run
"""


def sha(v):
    return hashlib.sha256(v.encode()).hexdigest()[:12]


class Env:
    """A `prod` daemon of the leaky service, and every value it was given."""

    def __init__(self, d, port, admin):
        self.dir, self.port, self.admin = d, port, admin
        self.state = os.path.join(d, "state")
        self.values = []

    def cli(self, *args, stdin=None, timeout=60):
        r = subprocess.run([BIN, *args, "--env", "prod"], input=stdin, capture_output=True, text=True,
                           timeout=timeout, cwd=self.dir, env={**os.environ, "CUTOVER_IDENTITY": self.identity})
        self.assert_clean(r.stdout + r.stderr, f"output of cutover {' '.join(args)}")
        return r

    def forms(self):
        """Every form of every value cutover could write: raw and JSON-escaped."""
        out = []
        for v in self.values:
            out.append(v.encode())
            out.append(json.dumps(v)[1:-1].encode())
        return out

    def assert_clean(self, text, where):
        data = text.encode() if isinstance(text, str) else text
        for v, f in zip([v for v in self.values for _ in (0, 1)], self.forms()):
            if f in data:
                raise TestFailure(f"the secret with sha256 {sha(v)} appears in {where}")

    def set_secret(self, name, value):
        self.values.append(value)
        r = self.cli("secrets", "set", name, stdin=value + "\n")
        eq(r.returncode, 0, f"secrets set {name}: {r.stderr}")


@contextlib.contextmanager
def prod_env():
    d = tempfile.mkdtemp(prefix="cutover-leak-")
    port, admin = free_port(), free_port()
    for name, text in (("cutover.yml", BASE), ("cutover.prod.yml", PROD)):
        text = text.replace("${", "\x00").replace("{PORT}", str(port)).replace("{ADMIN}", str(admin))
        with open(os.path.join(d, name), "w") as f:
            f.write(text.replace("{DIR}", d).replace("\x00", "${"))
    e = Env(d, port, admin)
    e.identity = os.path.join(d, "team.key")
    proc = None
    err = open(os.path.join(d, "stderr.log"), "w")
    try:
        # the team's key and the server's key, both recipients
        r = e.cli("secrets", "keygen", e.identity)
        eq(r.returncode, 0, f"keygen (team): {r.stderr}")
        r = e.cli("secrets", "keygen")
        eq(r.returncode, 0, f"keygen (server, the configured identity): {r.stderr}")
        for key in (e.identity, os.path.join(e.state, "identity.key")):
            pub = subprocess.run(["age-keygen", "-y", key], capture_output=True, text=True).stdout.strip()
            check(pub.startswith("age1"), f"public key of {key}")
            r = e.cli("secrets", "recipients", "add", pub)
            eq(r.returncode, 0, f"recipients add: {r.stderr}")
        e.set_secret("DB_PASSWORD", 'pw"q\\' + pysecrets.token_hex(12))
        e.set_secret("API_TOKEN", "tok-" + pysecrets.token_hex(16))
        for tag in ("1.0.0", "1.1.0"):
            rd = os.path.join(d, f"rel-{tag}")
            os.makedirs(rd)
            with open(os.path.join(rd, "leaky.py"), "w") as f:
                f.write(LEAKY % {"tag": tag})
            r = e.cli("release", "add", "leaky", tag, rd)
            eq(r.returncode, 0, f"release add {tag}: {r.stderr}")
        proc = subprocess.Popen([BIN, "daemon", "--env", "prod"], stdout=err, stderr=err, cwd=d)
        e.proc = proc
        wait_port(port)
        wait_port(admin)
        yield e
    finally:
        if proc and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in pids_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        err.close()
        if os.environ.get("CUTOVER_KEEP_TMP") != "1":
            subprocess.run(["rm", "-rf", d])


class Events:
    """The daemon's event stream, read all along (GET /v1/events)."""

    def __init__(self, e):
        self.data, self.stop = b"", False
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(e.state, "admin.sock"))
        self.sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        deadline = time.time() + 120
        while not self.stop and time.time() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            self.data += chunk

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def hammering(e, clients=3):
    """Clients asking all along (bounded: 60 s); yields the failures."""
    failures, stop = [], threading.Event()

    def run():
        deadline = time.time() + 60
        while not stop.is_set() and time.time() < deadline:
            try:
                s, _, _ = http_get(e.port, "/check", host="leaky.test", timeout=5)
                if s != 200:
                    failures.append(s)
            except Exception as ex:
                failures.append(repr(ex))
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield failures
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def served(e):
    status, _, body = http_get(e.port, "/check", host="leaky.test")
    eq(status, 200, "GET /check")
    return json.loads(body)


def instance_pids(e):
    st = json.loads(e.cli("status", "--json").stdout)
    return [m[k]["pid"] for m in st["managed"] for k in ("live", "previous") if m[k]]


def cutover_processes(e):
    """Every process this daemon started: its instances and their log relays."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read()
        except OSError:
            continue
        if e.dir.encode() in cmd or b"log-relay" in cmd:
            found.append((int(p), cmd))
    return found


def test_a_leaking_service_leaks_nothing_through_cutover():
    with prod_env() as e:
        events = Events(e)
        try:
            r = e.cli("deploy", "leaky", "1.0.0")
            eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
            got = served(e)
            eq(got["env_sha"], hashlib.sha256(e.values[0].encode()).hexdigest(), "DB_PASSWORD reaches the instance")
            eq(got["file_sha"], hashlib.sha256(e.values[1].encode()).hexdigest(), "API_TOKEN reaches its file")
            eq((got["file_mode"], got["dir_mode"], got["file_uid"]), ("0o400", "0o700", os.getuid()),
               "the secret file's mode and owner")
            first_dir = got["dir"]
            check(first_dir.startswith(os.path.join(e.dir, "run")), "private dir under runtime_dir")
            for _ in range(3):
                http_get(e.port, "/leak", host="leaky.test")
            with hammering(e) as failures:
                r = e.cli("deploy", "leaky", "1.1.0")
                eq(r.returncode, 0, f"deploy 1.1.0: {r.stdout}{r.stderr}")
            eq(failures, [], "failed requests during the deploy")

            # a changed secret takes effect at `cutover restart`, without a failed request
            old_db = e.values[0]
            e.set_secret("DB_PASSWORD", "rotated-" + pysecrets.token_hex(12))
            check(served(e)["env_sha"] == hashlib.sha256(old_db.encode()).hexdigest(),
                  "the running instance keeps its value until the restart")
            with hammering(e) as failures:
                r = e.cli("restart", "leaky")
            eq(r.returncode, 0, f"restart: {r.stdout}{r.stderr}")
            eq(failures, [], "failed requests during the restart")
            eq(served(e)["env_sha"], hashlib.sha256(e.values[2].encode()).hexdigest(),
               "the new value after the restart")
            for _ in range(2):
                http_get(e.port, "/leak", host="leaky.test")
            r = e.cli("rollback", "leaky")
            eq(r.returncode, 0, f"rollback: {r.stdout}{r.stderr}")
            http_get(e.port, "/leak", host="leaky.test")
            time.sleep(0.5)  # the relays write what the last /leak printed

            # where cutover shows things
            procs = cutover_processes(e)
            check(any(b"log-relay" in cmd for _, cmd in procs), "each instance logs through a relay")
            for pid, cmd in procs:
                e.assert_clean(cmd, f"/proc/{pid}/cmdline")
            r = e.cli("status", "--json")
            eq(r.returncode, 0, "status")
            r = e.cli("status")
            r = e.cli("logs", "leaky", "-n", "500")
            eq(r.returncode, 0, f"logs: {r.stderr}")
            check("[redacted:DB_PASSWORD]" in r.stdout and "[redacted:API_TOKEN]" in r.stdout,
                  "the instance logs show where the values were")
            e.cli("history", "--json")
            e.cli("audit", "--json")
            e.cli("secrets", "list")
            e.assert_clean(urlopen_metrics(e), "/metrics")
        finally:
            events.close()
        e.assert_clean(events.data, "the event stream")
        check(b"deploy" in events.data, "the event stream was read")
        r = e.cli("shutdown", "--stop-services")
        eq(r.returncode, 0, f"shutdown: {r.stderr}")
        e.proc.wait(30)
        # every file cutover wrote: the state dir (SQLite, logs, releases), its logs
        for root in (e.state, os.path.join(e.dir, "run")):
            for dirpath, _, files in os.walk(root):
                for f in files:
                    path = os.path.join(dirpath, f)
                    with open(path, "rb") as fh:
                        e.assert_clean(fh.read(), path)
        for f in ("access.log", "error.log", "stderr.log"):
            with open(os.path.join(e.dir, f), "rb") as fh:
                e.assert_clean(fh.read(), f)
        eq(os.listdir(os.path.join(e.dir, "run")), [], "the private directories are removed with the instances")
        deadline = time.time() + 5
        while time.time() < deadline and any(b"log-relay" in c for _, c in cutover_processes(e)):
            time.sleep(0.05)
        eq([p for p, c in cutover_processes(e) if b"log-relay" in c], [], "relays end with their instances")


def urlopen_metrics(e):
    status, _, body = http_get(e.admin, "/metrics", host="127.0.0.1")
    eq(status, 200, "/metrics")
    return body


def test_a_missing_secret_fails_the_deploy_before_anything_starts():
    with prod_env() as e:
        with open(os.path.join(e.dir, "cutover.prod.yml"), "a") as f:
            f.write("services:\n  leaky:\n    secrets: [DB_PASSWORD, STRIPE_KEY]\n")
        e.proc.send_signal(signal.SIGHUP)
        poll_until(lambda: "configuration reloaded" in open(os.path.join(e.dir, "error.log")).read(),
                   timeout=10, what="the reload")
        before = len(cutover_processes(e))
        r = e.cli("deploy", "leaky", "1.0.0")
        eq(r.returncode, 1, f"deploy without STRIPE_KEY: {r.stdout}{r.stderr}")
        out = r.stdout + r.stderr
        check("STRIPE_KEY" in out and "prod" in out, f"the error names the secret and the environment: {out}")
        eq(len(cutover_processes(e)), before, "nothing was started")
        st = json.loads(e.cli("status", "--json").stdout)
        eq([m["live"] for m in st["managed"] if m["name"] == "leaky"], [None], "nothing runs")
