"""releasenv.py - what the multi-service release tests share (issue 12,
docs/internals/releases.md): the shop's eight services as small real HTTP
servers, a daemon that runs them, the CLI against it, release files, the
run's report, what "nothing changed" compares, and shoppers that load
every service through the proxy and count what they see.

Every service is one Python script (`SVC`), stored as SERVICE VERSION in
the daemon's release store: each version answers /health and, on any
other path, 200 with its service and version (also in X-Version).  A
version can carry faults chosen by the test:

  start_delay=S   it listens only S seconds after it started (slow to
                  become healthy)
  fail_every=N    every Nth request other than /health answers 500
  exit_after=S    it exits with status 3 after S seconds (a crash)

The topology is the one of issue 12: auth (no dependency); payment,
inventory and user on auth; order on auth, payment and inventory;
notification on auth; shipping on order; analytics on user and order.
Its groups are [auth], [payment, inventory, user, notification], [order],
[shipping, analytics].
"""
import http.client
import json
import os
import sqlite3
import subprocess
import threading
import time

from harness import *

SVC = r'''#!/usr/bin/env python3
import http.server, os, socketserver, sys, threading, time
SERVICE, VERSION, FAULTS = %(service)r, %(version)r, %(faults)r
port = int(sys.argv[1])
time.sleep(FAULTS.get("start_delay", 0))
if FAULTS.get("exit_after") is not None:
    threading.Timer(FAULTS["exit_after"], lambda: os._exit(3)).start()
lock = threading.Lock()
count = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        status = 200
        if self.path != "/health":
            with lock:
                count[0] += 1
                k = count[0]
            if FAULTS.get("fail_every") and k %% FAULTS["fail_every"] == 0:
                status = 500
        body = ('{"service": "%%s", "version": "%%s"}' %% (SERVICE, VERSION)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", VERSION)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
S(("127.0.0.1", port), H).serve_forever()
'''

TOPOLOGY = {
    "auth": [],
    "payment": ["auth"],
    "inventory": ["auth"],
    "user": ["auth"],
    "order": ["auth", "payment", "inventory"],
    "notification": ["auth"],
    "shipping": ["order"],
    "analytics": ["user", "order"],
}
GROUPS = [["auth"], ["payment", "inventory", "user", "notification"], ["order"], ["shipping", "analytics"]]

# Short everything: a blue-green deploy of a healthy version takes about
# 0.3 s; the previous version stays warm for instant rollbacks.
HEAD = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
deploy:
  timeout: 20s
  watch: 0s
  drain: 1s
  rollback_window: 5m
"""


def shop_yaml(services=None, extra="", per_service=None):
    """The daemon's configuration: the services named (default all eight,
    each with its dependencies among them), each routed by host
    NAME.test; extra goes at the top level, per_service[NAME] (lines) into
    that service's mapping (indented here)."""
    services = services or list(TOPOLOGY)
    per_service = per_service or {}
    y = HEAD + extra + ("\n" if extra and not extra.endswith("\n") else "") + "services:\n"
    for s in services:
        deps = [d for d in TOPOLOGY[s] if d in services]
        y += f"  {s}:\n    run: ${{RELEASE_DIR}}/svc ${{PORT}}\n"
        if deps:
            y += f"    depends_on: [{', '.join(deps)}]\n"
        y += ("    health:\n      path: /health\n      interval: 100ms\n      timeout: 80ms\n"
              "    stop_grace: 2s\n")
        y += "".join(f"    {l}\n" for l in per_service.get(s, "").splitlines() if l.strip())
        y += f"    routes:\n      - host: {s}.test\n"
    return y


def clean_env():
    """The CLI's environment: none of the CUTOVER_* variables of whoever
    runs the tests (they would pick another daemon)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("CUTOVER_") or k in ("CUTOVER_BIN", "CUTOVER_SHARED")}


class Shop:
    """The daemon c (harness.cutover) running the shop's services."""

    def __init__(self, c, services=None):
        self.c, self.services = c, services or list(TOPOLOGY)
        self.files = os.path.join(c.dir, "releases")  # release files (and what their steps leave)
        os.makedirs(self.files, exist_ok=True)

    @property
    def sock(self):
        return f"{self.c.dir}/state/admin.sock"

    def cli(self, *args, timeout=90):
        return subprocess.run([BIN, *args, "--config", self.c.cfg_path], capture_output=True, text=True,
                              timeout=timeout, cwd=self.c.dir, env=clean_env())

    def cli_ok(self, *args, timeout=90):
        r = self.cli(*args, timeout=timeout)
        eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def add(self, service, version, **faults):
        """SERVICE VERSION into the store: the script with these faults."""
        d = os.path.join(self.c.dir, "artifacts", service, version)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "svc")
        with open(path, "w") as f:
            f.write(SVC % {"service": service, "version": version, "faults": faults})
        os.chmod(path, 0o755)
        self.cli_ok("release", "add", service, version, path)

    def add_all(self, version, faults=None):
        """VERSION of every service; faults: {service: {fault: value}}."""
        for s in self.services:
            self.add(s, version, **(faults or {}).get(s, {}))

    def release_file(self, name, text):
        path = os.path.join(self.files, f"{name}.yml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def versions_file(self, name, version, services=None, extra=""):
        """A release file moving services (default all) to version."""
        body = "".join(f"  {s}: {version}\n" for s in services or self.services)
        return self.release_file(name, f"name: {name}\nservices:\n{body}{extra}")

    def run(self, path, *args, timeout=90):
        """`cutover release run PATH --json`: (exit status, the final run)."""
        r = self.cli("release", "run", path, "--json", *args, timeout=timeout)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            raise TestFailure(f"release run --json printed no JSON (exit {r.returncode}): {r.stdout}{r.stderr}")

    def run_ok(self, path, *args, state="succeeded"):
        rc, run = self.run(path, *args)
        eq((rc, run["state"]), (0, state), f"release {path}: {run['report'].get('reason')}")
        return run["report"]

    def run_in_background(self, path, *args):
        return subprocess.Popen([BIN, "release", "run", path, "--json", *args, "--config", self.c.cfg_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.c.dir,
                                env=clean_env())

    def api(self, method, path, body=None):
        st, text = unix_request(self.sock, method, path, json.dumps(body).encode() if body is not None else b"")
        return st, (json.loads(text) if text else None)

    def active(self, rid):
        """The daemon's live copy of run rid (GET /v1/releases/ID), or None
        once it has ended."""
        st, run = self.api("GET", f"/v1/releases/{rid}")
        return run if st == 200 else None

    def db(self, sql, *params):
        con = sqlite3.connect(f"{self.c.dir}/state/state.db", timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def stored(self, rid):
        """(state, report) of run rid as the state holds it."""
        rows = self.db("SELECT state, report FROM release_runs WHERE id = ?", rid)
        check(rows, f"no release_runs row {rid}")
        return rows[0][0], json.loads(rows[0][1])

    def wait_ended(self, rid, timeout=60):
        """Wait until run rid has ended; its report as the state holds it."""
        def ended():
            if self.active(rid):
                return None
            state, report = self.stored(rid)
            return report if report["state"] == state and report.get("finished_at") else None
        return wait_until(ended, timeout=timeout, interval=0.1, what=f"release {rid} to end")

    def status(self):
        st, s = self.api("GET", "/v1/status")
        eq(st, 200, "GET /v1/status")
        return s

    def live(self):
        """{service: live version or None} per the daemon, once nothing is
        in flight (None while something is)."""
        out = {}
        for m in self.status()["managed"]:
            if m["deploying"]:
                return None
            out[m["name"]] = m["live"]["version"] if m["live"] else None
        return out

    def wait_live(self, expected, timeout=20):
        """Wait until the live versions are `expected` ({service: version}),
        nothing in flight, every live version healthy."""
        def settled():
            s = self.status()
            got = {m["name"]: (m["live"] or {}).get("version") for m in s["managed"]}
            busy = [m["name"] for m in s["managed"] if m["deploying"]
                    or (m["live"] and m["live"]["health"] != "healthy")]
            return got == expected and not busy
        wait_until(settled, timeout=timeout, interval=0.1, what=f"live versions {expected}")

    def served(self, service):
        """The version the proxy answers with for service (Host NAME.test)."""
        status, headers, _ = http_get(self.c.port, "/", host=f"{service}.test")
        eq(status, 200, f"GET / of {service}")
        return headers.get("x-version")

    def all_served(self, expected):
        eq({s: self.served(s) for s in expected}, expected, "versions the proxy answers with")

    def snapshot(self):
        """What a refused release must not change: the live versions, the
        routing and deployments tables, the release runs, the processes."""
        return {
            "live": self.live(),
            "routing": self.db("SELECT service, version, instance_ids FROM routing ORDER BY service"),
            "deployments": self.db("SELECT id, service, state FROM deployments ORDER BY id"),
            "release_runs": self.db("SELECT id, state FROM release_runs ORDER BY id"),
            "instances": sorted(pids_under(self.c.dir)),
        }

    def install(self, version="1.0.0", faults=None):
        """Add version of every service and install it with a release."""
        self.add_all(version, faults)
        report = self.run_ok(self.versions_file(f"install-{version}", version))
        self.wait_live({s: version for s in self.services})
        return report


def steps_by_name(report):
    return {s["name"]: s for s in report["steps"]}


def timeline(report):
    return [e["text"] for e in report["timeline"]]


def max_overlap(intervals):
    """The largest number of [start, end) intervals open at once (an end
    at the same millisecond as a start closes first)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, d in events:
        now += d
        most = max(most, now)
    return most


class Shoppers:
    """`clients` keep-alive client threads sending GET / to the services
    through the proxy in turn (Host NAME.test, `weights` times each), each
    response checked: a 200 from the service it asked.  Bounded by count
    (max_requests) and by time (max_s); stops at the end of the with block.
    .failures: [(wall time, host, status or exception name)]."""

    def __init__(self, port, services, weights=None, clients=4, max_requests=40000, max_s=60.0):
        self.port = port
        self.hosts = [s for s in services for _ in range((weights or {}).get(s, 1))]
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_s
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.count, self.failures, self.by_version = 0, [], {}
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _one(self, conn, service):
        conn.request("GET", "/", headers={"Host": f"{service}.test"})
        r = conn.getresponse()
        body = r.read()
        ok = r.status == 200 and json.loads(body).get("service") == service
        return ok, r.status, r.getheader("X-Version")

    def _run(self, i):
        conn, n = None, i
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.count >= self.max_requests:
                    return
                self.count += 1
            service = self.hosts[n % len(self.hosts)]
            n += 1
            t = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                ok, status, version = self._one(conn, service)
            except Exception as e:
                ok, status, version = False, type(e).__name__, None
                conn.close()
                conn = None
            with self.lock:
                key = (service, version)
                self.by_version[key] = self.by_version.get(key, 0) + 1
                if not ok:
                    self.failures.append((t, service, status))
            time.sleep(0.002)
        if conn:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def restart_daemon(c):
    """Start `cutover daemon` again on c's configuration and state (after a
    kill -9 of the previous one); the harness stops it by pid."""
    err = open(os.path.join(c.dir, "stderr.log"), "a")
    c.proc = subprocess.Popen([BIN, "daemon", "--config", c.cfg_path], stdout=err, stderr=err, cwd=c.dir)
    err.close()
    wait_port(c.port)
    wait_until(lambda: os.path.exists(f"{c.dir}/state/admin.sock") and unix_request(
        f"{c.dir}/state/admin.sock", "GET", "/v1/status")[0] == 200, timeout=10, what="the restarted daemon's API")


def wait_running(shop, rid, running, done=(), timeout=30):
    """Wait until run rid's report, as the state holds it, shows the steps
    `running` running and those of `done` done; returns that report."""
    def there():
        rows = shop.db("SELECT report FROM release_runs WHERE id = ?", rid)
        if not rows:
            return None
        report = json.loads(rows[0][0])
        steps = steps_by_name(report)
        return report if (all(steps[s]["state"] == "running" for s in running)
                          and all(steps[s]["state"] == "done" for s in done)) else None
    return wait_until(there, timeout=timeout, interval=0.05, what=f"release {rid} running {running}")
