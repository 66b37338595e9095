"""test_status_api.py - the status page's side of the daemon, on its HTTP
admin address: the history of each version (points every 5 s from the
proxy's own counts), the uptime per service (traffic_minutes, across a
restart), the deploy history, the embedded files of web/, the listener
being read-only, the admin token (on an address that is not loopback, in a
network namespace of the test's own), and no secret or environment value
in any answer.

Real daemon, real traffic: a version that answers one request in four with
a 500, and a service whose only target refuses connections (the proxy's
own 502s)."""
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from harness import *
from shopenv import cli, restart_daemon
from faulty import app_release, service_yaml

ROOT_WEB = os.path.join(ROOT, "web")
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
         ".png": "image/png", ".json": "application/json", ".ico": "image/vnd.microsoft.icon",
         ".woff2": "font/woff2", ".txt": "text/plain", "": "text/plain"}


def admin_request(port, path, method="GET", headers=None, host="127.0.0.1", body=None):
    """One request to the admin address: (status, headers lower-cased, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def admin_json(c, path):
    st, _, body = admin_request(c.admin, path)
    eq(st, 200, f"GET {path}: {body[:300]!r}")
    return json.loads(body)


def series(history, service, version):
    found = [s for s in history["series"] if s["service"] == service and s["version"] == version]
    return found[0] if found else None


def window(uptime, service, name):
    svc = [s for s in uptime["services"] if s["service"] == service]
    check(svc, f"no {service} in /v1/uptime: {uptime}")
    return [w for w in svc[0]["windows"] if w["window"] == name][0]


def send(port, n, host="shop.test", path="/api/catalog"):
    """n GETs on one keep-alive connection; the statuses."""
    got = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        r.read()
        got.append(r.status)
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    return got


def yaml_with_gone(dead_port):
    """The shop (faulty.py's releases) and `gone`, whose only target refuses
    connections: every request to it is a 502 the proxy makes."""
    y = service_yaml({"watch": "1s", "max_error_rate": "90%", "min_requests": 1000},
                     extra="env:\n  SHOP_NOTE: plain-env-value-7c1f")
    return y + (f"  gone:\n    targets: [127.0.0.1:{dead_port}]\n"
                "    routes:\n      - host: gone.test\n        path: /\n")


def test_history_uptime_and_deployments_from_real_traffic():
    dead = free_port()
    with cutover(yaml_text=yaml_with_gone(dead)) as c:
        app_release(c, "1.0.0", fail_every=4)
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
        t0 = time.time() * 1000
        got = send(c.port, 200)
        eq(sorted(set(got)), [200, 500], "statuses of 1.0.0")
        eq(got.count(500), 50, "one request in four answered 500")
        eq(send(c.port, 10, host="gone.test"), [502] * 10, "statuses of gone")

        # the points of 1.0.0 add up to what was sent, once their 5 s are over
        def counted():
            h = admin_json(c, "/v1/history")
            s = series(h, "shop", "1.0.0")
            return h if s and sum(p["requests"] for p in s["points"]) >= 200 else None
        h = wait_until(counted, timeout=15, interval=0.5, what="200 requests in the history of 1.0.0")
        eq(h["interval_s"], 5, "interval_s")
        check(abs(h["now"] - time.time() * 1000) < 5000, f"now is the daemon's wall clock: {h['now']}")
        s = series(h, "shop", "1.0.0")
        pts = s["points"]
        eq(sum(p["requests"] for p in pts), 200, "requests in the points of 1.0.0")
        eq(sum(p["errors"] for p in pts), 50, "errors in the points of 1.0.0")
        check(all(p["t"] % 5000 == 0 for p in pts), f"points on 5 s boundaries: {[p['t'] for p in pts]}")
        check([p["t"] for p in pts] == sorted(set(p["t"] for p in pts)), "points oldest first, one per interval")
        busy = [p for p in pts if p["requests"]]
        for p in busy:
            check(abs(p["rps"] * 5 - p["requests"]) <= p["requests"] * 0.2 + 1, f"rps against requests: {p}")
            check(abs(p["error_rate"] - p["errors"] / p["requests"]) < 1e-6, f"error_rate: {p}")
            check(0 < p["p50_ms"] <= p["p99_ms"] < 1000, f"latencies in ms: {p}")
            check(p["t"] >= t0 - 5000, f"a point from before the traffic holds requests: {p}")
        for p in pts:
            if not p["requests"]:
                check(p["error_rate"] is None and p["p50_ms"] is None and p["rps"] == 0, f"empty point: {p}")
        check(series(h, "shop", None) is None, "no series without a version for a managed service")
        g = series(h, "gone", None)
        check(g is not None, f"the unmanaged service's series: {h['series']}")
        eq(sum(p["requests"] for p in g["points"]), 10, "failed connects counted as requests of gone")
        eq(sum(p["errors"] for p in g["points"]), 10, "and as errors")
        split = {(x["service"], x["version"]): x for x in h["split"]}
        eq(split[("shop", "1.0.0")]["set"], 100.0, "set share of 1.0.0")
        eq(split[("shop", "1.0.0")]["measured"], 100.0, "measured share of 1.0.0 (the last 30 s)")
        # ?since: only newer points
        last = pts[-1]["t"]
        newer = series(admin_json(c, f"/v1/history?since={last}"), "shop", "1.0.0")
        check(all(p["t"] > last for p in newer["points"]), f"?since={last}: {newer['points']}")
        eq(admin_request(c.admin, "/v1/history?since=soon")[0], 400, "a bad since")

        # uptime: what clients saw, the current minute included
        up = admin_json(c, "/v1/uptime")
        for name in ("24h", "7d"):
            w = window(up, "shop", name)
            eq((w["requests"], w["failed"]), (200, 50), f"shop {name}")
            check(abs(w["availability"] - 0.75) < 1e-9, f"availability: {w}")
            w = window(up, "gone", name)
            eq((w["requests"], w["failed"], w["availability"]), (10, 10, 0.0), f"gone {name}")

        # deployments, with their phases, read from the state
        d = admin_json(c, "/v1/deployments?limit=5")["deployments"]
        eq(len(d), 1, f"deployments: {d}")
        dep = d[0]
        eq((dep["service"], dep["from"], dep["to"], dep["state"]), ("shop", None, "1.0.0", "done"), "the deploy")
        phases = [p["phase"] for p in dep["phases"]]
        eq(phases[0], "starting", f"first phase: {phases}")
        eq(phases[-1], "done", f"last phase: {phases}")
        check(all(p["duration_ms"] >= 0 for p in dep["phases"]), f"durations: {dep['phases']}")
        check(abs(sum(p["duration_ms"] for p in dep["phases"]) - dep["duration_ms"]) <= 50,
              f"phases add up to the deploy: {dep}")
        eq(admin_json(c, "/v1/deployments?service=gone")["deployments"], [], "another service's")
        eq(admin_request(c.admin, "/v1/deployments?limit=0")[0], 400, "limit 0")

        # a restart: SIGTERM stores the minute in progress, the next daemon reads it
        os.kill(c.pid, signal.SIGTERM)
        c.proc.wait(15)
        db = sqlite3.connect(f"file:{c.dir}/state/state.db?mode=ro", uri=True)
        rows = dict((s, (r, f)) for s, r, f in db.execute(
            "SELECT service, sum(requests), sum(failed) FROM traffic_minutes GROUP BY service"))
        db.close()
        eq(rows, {"shop": (200, 50), "gone": (10, 10)}, "traffic_minutes after the daemon stopped")
        restart_daemon(c)
        wait_port(c.admin)
        up = admin_json(c, "/v1/uptime")
        eq((window(up, "shop", "24h")["requests"], window(up, "shop", "24h")["failed"]), (200, 50),
           "shop's 24 h after a restart")
        eq(send(c.port, 20), [200 if (i + 1) % 4 else 500 for i in range(20)], "after the restart")
        up = admin_json(c, "/v1/uptime")
        eq((window(up, "shop", "7d")["requests"], window(up, "shop", "7d")["failed"]), (220, 55),
           "stored minutes and the new daemon's counts")


def test_static_files_and_read_only():
    with cutover(yaml_text=yaml_with_gone(free_port())) as c:
        names = []
        for d, _, files in os.walk(ROOT_WEB):
            for f in files:
                if not f.startswith(".") and not f.endswith("~"):
                    names.append(os.path.relpath(os.path.join(d, f), ROOT_WEB))
        check("index.html" in names, f"web/ holds index.html: {names}")
        for name in names:
            want = open(os.path.join(ROOT_WEB, name), "rb").read()
            st, h, body = admin_request(c.admin, f"/static/{name}")
            eq(st, 200, f"GET /static/{name}")
            eq(body, want, f"bytes of /static/{name}")
            ext = os.path.splitext(name)[1].lower()
            check(h["content-type"].startswith(TYPES[ext]), f"type of {name}: {h['content-type']}")
            eq(h["cache-control"], "no-cache", f"Cache-Control of {name}")
            check(h.get("etag", "").startswith('"'), f"ETag of {name}: {h}")
            st, h2, body = admin_request(c.admin, f"/static/{name}", headers={"If-None-Match": h["etag"]})
            eq((st, body), (304, b""), f"GET /static/{name} with its ETag")
            st, h3, body = admin_request(c.admin, f"/static/{name}", method="HEAD")
            eq((st, body, h3["content-length"]), (200, b"", str(len(want))), f"HEAD /static/{name}")
        st, h, body = admin_request(c.admin, "/")
        eq((st, body), (200, open(os.path.join(ROOT_WEB, "index.html"), "rb").read()), "GET / is index.html")
        check(h["content-type"].startswith("text/html"), f"type of /: {h}")
        for path in ("/static/nope.js", "/static/", "/index.html", "/v1/deploy", "/v1/releases", "/nothing"):
            eq(admin_request(c.admin, path)[0], 404, f"GET {path}")

        # read-only: whatever the path, a change is refused here
        app_release(c, "1.0.0")
        for method, path, body in (("POST", "/v1/deploy", b'{"service": "shop", "version": "1.0.0"}'),
                                   ("POST", "/v1/shutdown", b"{}"), ("PUT", "/v1/services/gone/targets", b"{}"),
                                   ("DELETE", "/v1/status", None), ("POST", "/v1/status", b"{}")):
            st, h, text = admin_request(c.admin, path, method=method, body=body)
            eq(st, 405, f"{method} {path} on the HTTP admin address: {text!r}")
            eq(h.get("allow"), "GET, HEAD", f"Allow of {method} {path}")
        time.sleep(0.3)
        st = admin_json(c, "/v1/status")
        eq(st["managed"][0]["live"], None, "nothing was deployed through the HTTP address")
        check(c.proc.poll() is None, "the daemon still runs after POST /v1/shutdown on the HTTP address")

        # the existing data on this address too: /v1/status, the event stream
        check(st["services"] and "managed" in st, f"/v1/status: {st}")
        s = socket.create_connection(("127.0.0.1", c.admin), timeout=5)
        s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"event: hello" not in data:
            chunk = s.recv(4096)
            check(chunk, f"the stream closed: {data!r}")
            data += chunk
        check(b"text/event-stream" in data, f"stream head: {data!r}")
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"deploy 1.0.0: {r.stderr}")
        while b"event: deployment" not in data:
            chunk = s.recv(4096)
            check(chunk, f"the stream closed: {data!r}")
            data += chunk
        s.close()
        # and on the admin socket: the same data
        for path in ("/v1/history", "/v1/uptime", "/v1/deployments"):
            code, body = unix_request(f"{c.dir}/state/admin.sock", "GET", path)
            eq(code, 200, f"GET {path} on the admin socket: {body}")
            json.loads(body)


def secrets_yaml(d):
    """The secrets: section of the tests' configurations: files in D, the
    test's own directory (the harness's comes later)."""
    return f"secrets:\n  file: {d}/secrets.age\n  identity: {d}/identity.key\n"


def secrets_setup(d, yaml_text, values):
    """A server identity (the configured one) and the secrets file of
    YAML_TEXT (whose secrets: section is secrets_yaml(d)) holding VALUES."""
    path = f"{d}/secrets-cli.yml"
    with open(path, "w") as f:
        f.write(yaml_text.replace("${", "\x00").replace("{DIR}", d).replace("{PORT}", "1").replace("{ADMIN}", "2")
                .replace("\x00", "${"))
    env = {**os.environ, "CUTOVER_IDENTITY": f"{d}/identity.key"}

    def run(*args, stdin=None):
        r = subprocess.run([BIN, *args, "--config", path], input=stdin, capture_output=True, text=True,
                           timeout=30, env=env, cwd=d)
        eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stderr}")
    run("secrets", "keygen")
    pub = subprocess.run(["age-keygen", "-y", f"{d}/identity.key"], capture_output=True, text=True).stdout.strip()
    run("secrets", "recipients", "add", pub)
    for k, v in values.items():
        run("secrets", "set", k, stdin=v + "\n")


def test_no_secret_or_env_value_in_any_answer():
    d = tempfile.mkdtemp(prefix="cutover-status-")
    secret, token, env_value = "s3cr3t-" + os.urandom(8).hex(), "tok-" + os.urandom(16).hex(), "env-" + os.urandom(8).hex()
    y = secrets_yaml(d) + service_yaml({"watch": "1s", "min_requests": 1000},
                                       extra=f"env:\n  SHOP_PLAIN: {env_value}\nsecrets:\n  - DB_PASSWORD")
    try:
        secrets_setup(d, y, {"DB_PASSWORD": secret, "admin_token": token})
        with cutover(yaml_text=y) as c:
            app_release(c, "1.0.0", fail_every=10)
            r = cli(c, "deploy", "shop", "1.0.0")
            eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
            send(c.port, 30)
            time.sleep(5.5)  # a point of history with them
            auth = {"Authorization": f"Bearer {token}"}
            seen = []
            for path in ("/v1/status", "/v1/history", "/v1/uptime", "/v1/deployments", "/metrics", "/",
                         "/static/app.js", "/healthz", "/v1/nothing", "/?token=" + token):
                st, h, body = admin_request(c.admin, path, headers=auth)
                check(st in (200, 303, 404), f"GET {path}: {st}")
                seen.append((path, json.dumps(h).encode() + body))
            s = socket.create_connection(("127.0.0.1", c.admin), timeout=5)
            s.sendall(f"GET /v1/events HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            data = s.recv(65536)
            cli(c, "restart", "shop")  # instance and deployment events
            s.settimeout(3)
            try:
                while b"event: deployment" not in data or b"event: instance" not in data:
                    more = s.recv(65536)
                    if not more:
                        break
                    data += more
            except socket.timeout:
                pass
            s.close()
            check(b"event: hello" in data, f"the event stream answered: {data[:300]!r}")
            seen.append(("/v1/events", data))
            code, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")
            seen.append(("/v1/status on the socket", body.encode()))
            for path, text in seen:
                for what, v in (("the secret", secret), ("the admin token", token), ("the env value", env_value)):
                    check(v.encode() not in text, f"{what} appears in the answer to {path}")
            with open(os.path.join(c.dir, "stderr.log"), "rb") as f:
                check(token.encode() not in f.read(), "the admin token appears in the daemon's log")
    finally:
        subprocess.run(["rm", "-rf", d])


# ---------------------------------------------------------------- the admin token

NS_CLIENT = r'''
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
out = []
for method, path, headers in json.loads(sys.stdin.read()):
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read(4096) if path != "/v1/events" else r.read(30)
    out.append([r.status, [[k.lower(), v] for k, v in r.getheaders()], body.decode("latin1")])
    c.close()
print(json.dumps(out))
'''


class Netns:
    """A network namespace of the test's own, with loopback up and the
    address 10.77.0.1 (not loopback: the daemon sees a network address),
    kept alive by a `sleep` the test started; requests are made from inside
    it, so nothing of the test reaches a real network."""

    ADDR = "10.77.0.1"

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c",
                                        f"ip link set lo up && ip addr add {self.ADDR}/32 dev lo && exec sleep 600"])
        self.path = f"/proc/{self.holder.pid}/ns/net"
        wait_until(lambda: subprocess.run(["nsenter", f"--net={self.path}", "ip", "-4", "addr"], capture_output=True,
                                          text=True).stdout.count(self.ADDR) > 0, timeout=5, what="the namespace")

    def run(self, argv, **kw):
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], **kw)

    def requests(self, port, reqs):
        """[(method, path, headers)] made in order from inside the
        namespace: [(status, headers lower-cased, body)]."""
        r = subprocess.run(["nsenter", f"--net={self.path}", "python3", "-c", NS_CLIENT, self.ADDR, str(port)],
                           input=json.dumps(reqs), capture_output=True, text=True, timeout=60)
        eq(r.returncode, 0, f"requests in the namespace: {r.stderr}")
        return [(st, dict(h), body) for st, h, body in json.loads(r.stdout)]

    def request(self, port, path, method="GET", headers=None):
        return self.requests(port, [(method, path, headers or {})])[0]

    def close(self):
        self.holder.kill()
        self.holder.wait()


def test_admin_token_on_a_network_address():
    d = tempfile.mkdtemp(prefix="cutover-token-")
    token = "t0k-" + os.urandom(16).hex()
    y = (f"state_dir: {d}/state\nlisten: 127.0.0.1:8080\nadmin: {Netns.ADDR}:9180\n" + secrets_yaml(d) +
         "services:\n  web:\n    targets: [127.0.0.1:8081]\n    routes:\n      - path: /\n")
    with open(f"{d}/cutover.yml", "w") as f:
        f.write(y)
    ns = Netns()
    daemon = None
    try:
        # without admin_token: refused by `cutover check` and by the daemon
        r = run_cli("check", "--config", f"{d}/cutover.yml")
        eq(r.returncode, 2, f"cutover check without admin_token: {r.stdout}{r.stderr}")
        check(f"{d}/cutover.yml:3:8: admin: {Netns.ADDR}:9180 is not a loopback address" in r.stderr and
              "admin_token" in r.stderr, f"check's message: {r.stderr}")
        p = ns.run([BIN, "daemon", "--config", f"{d}/cutover.yml"], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=20)
        check(p.returncode != 0 and "admin_token" in out, f"the daemon started without admin_token: {out}")

        secrets_setup(d, y, {"admin_token": token})
        r = run_cli("check", "--config", f"{d}/cutover.yml")
        eq(r.returncode, 0, f"cutover check with admin_token: {r.stderr}")
        log = open(f"{d}/stderr.log", "w")
        daemon = ns.run([BIN, "daemon", "--config", f"{d}/cutover.yml"], stdout=log, stderr=log)
        def healthy():  # refused until the daemon listens (slower under ASan)
            try:
                return ns.request(9180, "/healthz")[0] == 200
            except TestFailure:
                return False
        wait_until(healthy, timeout=20, interval=0.2, what="the daemon on the network address")
        bearer = {"Authorization": f"Bearer {token}"}
        wrongs = [{}] + [{"Authorization": f"Bearer {w}"} for w in (token[:-1], token + "x", token.upper(), "")]
        wrongs += [{"Authorization": f"Basic {token}"}, {"Authorization": token}]
        for path in ("/", "/static/app.js", "/v1/status", "/v1/history", "/v1/uptime", "/v1/deployments",
                     "/metrics", "/v1/events"):
            answers = ns.requests(9180, [("GET", path, h) for h in wrongs + [bearer]])
            for (st, h, body), sent in zip(answers[:-1], wrongs):
                eq(st, 401, f"GET {path} with {sent and 'a wrong token' or 'no token'}")
                check(token not in body and "www-authenticate" in h, f"401 of {path}: {h} {body!r}")
            eq(answers[-1][0], 200, f"GET {path} with the token")
        eq(ns.request(9180, "/v1/status", method="POST", headers=bearer)[0], 405, "POST with the token")
        eq(ns.request(9180, "/v1/status", method="POST")[0], 401, "POST without the token")

        # a browser: /?token=TOKEN sets the cookie and sends it to /
        eq(ns.request(9180, "/?token=" + token[:-1])[0], 401, "a wrong ?token")
        st, h, body = ns.request(9180, "/?token=" + token)
        eq((st, h.get("location")), (303, "/"), f"GET /?token=: {h}")
        cookie = h.get("set-cookie", "")
        check(cookie.startswith("cutover_admin_token=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
              f"the cookie: {cookie}")
        check(token not in cookie, "the cookie holds the token itself")
        value = cookie.split(";")[0]
        for path in ("/", "/v1/status", "/v1/events"):
            eq(ns.request(9180, path, headers={"Cookie": f"theme=dark; {value}"})[0], 200, f"GET {path} with the cookie")
        bad = value[:-1] + ("0" if value[-1] != "0" else "1")
        eq(ns.request(9180, "/v1/status", headers={"Cookie": bad})[0], 401, "a wrong cookie")
        with open(f"{d}/stderr.log") as f:
            text = f.read()
        check(token not in text, "the token is in the daemon's log")
        check("admin_token required" in text, f"the log says the address wants the token: {text[-1000:]}")
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        ns.close()
        subprocess.run(["rm", "-rf", d])


def test_admin_token_on_loopback_is_required_once_set():
    d = tempfile.mkdtemp(prefix="cutover-token-")
    token = "loop-" + os.urandom(16).hex()
    y = ("listen: 127.0.0.1:{PORT}\nadmin: 127.0.0.1:{ADMIN}\n" + secrets_yaml(d) +
         f"services:\n  web:\n    targets: [127.0.0.1:{free_port()}]\n    routes:\n      - path: /\n")
    try:
        secrets_setup(d, y, {"admin_token": token})
        with cutover(yaml_text=y) as c:
            eq(admin_request(c.admin, "/v1/status")[0], 401, "loopback with admin_token set, no token")
            eq(admin_request(c.admin, "/healthz")[0], 200, "/healthz without a token")
            eq(admin_request(c.admin, "/v1/status", headers={"Authorization": f"Bearer {token}"})[0], 200,
               "loopback with the token")
            # the CLI's socket wants none
            eq(unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")[0], 200, "the admin socket")
    finally:
        subprocess.run(["rm", "-rf", d])
