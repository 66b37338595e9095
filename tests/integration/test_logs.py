"""test_logs.py - the two logs as JSON lines, and the request id (issue 13,
point 5; docs/logs.md).

* Under load, with a failing version: a daemon whose error log and access
  log are both JSON (log.error_format / log.format, no --json) runs the
  shop's stable version and a canary that answers 500 to everything; the
  shield retries those on stable, the analysis rolls the canary back.
  Every line of both logs must parse as one JSON object holding the
  documented fields with the documented types, and nothing else.  A
  client's X-Request-Id reaches the service (which prints what it saw) and
  is in both logs for a request that failed (the service closed without
  answering: 502); the error-log lines about requests all name one the
  access log has.  A secret of the environment, sent as a request id and
  in a path, is in no line of either log; "[redacted:NAME]" is.
* X-Request-Id, case by case (a table): a sane one is kept (a UUID, 128
  characters, '=' and '/'), a bad one is replaced (too long, a space, a
  tab, a quote, a backslash, a non-ASCII byte, empty); whatever the client
  sent, the service gets exactly one X-Request-Id, the client gets the
  same one back (the service's own is replaced) and the access log names
  it.  The error log switches from logfmt to JSON on a reload
  (log.error_format), its request lines carrying the same fields.
"""
import contextlib
import json
import os
import re
import secrets as pysecrets
import signal
import subprocess
import tempfile
import time

from harness import *
from faulty import Shoppers, deploy_in_background, deploy_result
from shopenv import cli

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
GENERATED = re.compile(r"^[0-9a-f]{24}$")

# docs/logs.md, "The error log": key -> type; ts, level and msg always.
ERROR_FIELDS = {"ts": str, "level": str, "msg": str, "service": str, "version": str,
                "from_version": str, "deployment_id": int, "phase": str, "instance": str, "pid": int,
                "request_id": str, "target": str, "status": int, "suppressed": int,
                "cutover_version": str}
# docs/logs.md, "The access log": every line has all of these, retried_on_stable only when true.
ACCESS_FIELDS = {"ts": str, "request_id": str, "client": str, "method": str, "host": str, "path": str,
                 "status": int, "service": str, "version": str, "target": str,
                 "duration_ms": (int, float), "bytes_out": int, "retries": int, "error": str}


def parse_lines(text, what):
    """Each line of text as a JSON object (a failure names the line)."""
    out = []
    check(text.endswith("\n") or not text, f"{what} does not end with a newline: {text[-200:]!r}")
    for n, line in enumerate(text.splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise TestFailure(f"{what} line {n} is not JSON ({e}): {line!r}")
        check(isinstance(rec, dict), f"{what} line {n} is not an object: {line!r}")
        out.append(rec)
    return out


def check_error_line(rec, line):
    for k in ("ts", "level", "msg"):
        check(k in rec, f"error log line lacks {k}: {line}")
    check(TS.match(rec["ts"]), f"ts is not RFC 3339 UTC with ms: {line}")
    check(rec["level"] in ("debug", "info", "warn", "error"), f"level: {line}")
    for k, v in rec.items():
        check(k in ERROR_FIELDS, f"undocumented error log field {k!r}: {line}")
        t = ERROR_FIELDS[k]
        check(isinstance(v, t) and not isinstance(v, bool), f"error log field {k} is not {t.__name__}: {line}")


def check_access_line(rec, line):
    keys = set(rec) - {"retried_on_stable"}
    eq(keys, set(ACCESS_FIELDS), f"access log fields of {line}")
    for k, t in ACCESS_FIELDS.items():
        check(isinstance(rec[k], t) and not isinstance(rec[k], bool), f"access log field {k}: {line}")
    check(TS.match(rec["ts"]), f"ts is not RFC 3339 UTC with ms: {line}")
    check(rec.get("retried_on_stable", True) is True, f"retried_on_stable is only ever true: {line}")


# ====================================================================== under load

# The service: the stable 1.x echoes the headers it got; 2.x answers 500 to
# everything but /health.  /fail, on any version, prints the X-Request-Id
# values it got to its log and closes the connection without an answer.
APP = r'''#!/usr/bin/env python3
import http.server, json, os, socketserver, sys
port = int(sys.argv[1]); version = os.path.basename(sys.argv[0]).split("-", 1)[1]
BAD = version.startswith("2.")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/fail"):
            print("seen X-Request-Id: %s" % json.dumps(self.headers.get_all("X-Request-Id") or []), flush=True)
            self.close_connection = True
            return
        status = 200 if self.path == "/health" or not BAD else 500
        body = json.dumps({"version": version, "headers": list(self.headers.items())}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", version)
        self.send_header("X-Request-Id", "the-service-own-id")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
S(("127.0.0.1", port), H).serve_forever()
'''

YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
log:
  access: {DIR}/access.log
  format: json
  error_format: json
services:
  shop:
    run: ${RELEASE_DIR}/app-${VERSION} ${PORT}
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
    stop_grace: 2s
    deploy:
      strategy: canary
      steps: 50% 5m, 100%
      watch: 1s
      timeout: 20s
      min_requests: 20
      max_error_rate: 5%
      rollback_window: 60s
    routes:
      - path: /
"""


@contextlib.contextmanager
def json_daemon():
    """The daemon of YAML with a secrets file holding DB_PASSWORD (so its
    redactor is on), releases 1.0.0 and 2.0.0 of APP added.  Yields (c,
    secret value)."""
    d = tempfile.mkdtemp(prefix="cutover-logs-")
    port, admin = free_port(), free_port()
    cfg = os.path.join(d, "cutover.yml")
    with open(cfg, "w") as f:
        f.write(YAML.replace("${", "\x00").replace("{DIR}", d).replace("{PORT}", str(port))
                .replace("{ADMIN}", str(admin)).replace("\x00", "${"))
    err = open(os.path.join(d, "stderr.log"), "w")
    proc = None

    def run(*args, stdin=None):
        r = subprocess.run([BIN, *args, "--config", cfg], input=stdin, capture_output=True, text=True,
                           timeout=60, cwd=d)
        eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    try:
        out = run("secrets", "keygen")
        pub = re.search(r"age1[0-9a-z]+", out)
        check(pub, f"secrets keygen printed no public key: {out!r}")
        run("secrets", "recipients", "add", pub.group(0))
        secret = "s3cr3t-" + pysecrets.token_hex(12)
        run("secrets", "set", "DB_PASSWORD", stdin=secret + "\n")
        for v in ("1.0.0", "2.0.0"):
            path = os.path.join(d, f"app-{v}")
            with open(path, "w") as f:
                f.write(APP)
            os.chmod(path, 0o755)
            run("release", "add", "shop", v, path)
        proc = subprocess.Popen([BIN, "daemon", "--config", cfg], stdout=err, stderr=err, cwd=d)
        c = Cutover(proc, port, admin, cfg, d)
        try:
            wait_port(port)
            wait_port(admin)
        except TestFailure:
            raise TestFailure("cutover did not start: " + open(os.path.join(d, "stderr.log")).read()[-2000:])
        yield c, secret
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
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {d}: CUTOVER_KEEP_TMP=1)")
        else:
            subprocess.run(["rm", "-rf", d])


def failed_request(c, rid, path="/fail"):
    """GET path with X-Request-Id rid: the service closes without answering,
    the proxy answers 502 with the id."""
    status, headers, body = http_get(c.port, path, host="shop.test", headers={"X-Request-Id": rid})
    eq(status, 502, f"GET {path}: {body[:200]!r}")
    eq(headers.get("x-request-id"), rid, "X-Request-Id of the proxy's 502")


def test_json_logs_under_load_with_a_failing_version():
    with json_daemon() as (c, secret):
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
        # the id a client sends reaches the service, once, and comes back
        rid = "it-logs-" + pysecrets.token_hex(6)
        status, headers, body = http_get(c.port, "/echo", host="shop.test", headers={"X-Request-Id": rid})
        eq(status, 200, "GET /echo")
        seen = [v for k, v in json.loads(body)["headers"] if k.lower() == "x-request-id"]
        eq(seen, [rid], "X-Request-Id values the service got")
        eq(headers.get("x-request-id"), rid, "X-Request-Id back to the client (the service's own replaced)")

        # bounded load (about 60 requests a second) while 2.0.0, failing
        # everything, is a canary, until the analysis rolls it back
        mix = [("GET", "/"), ("GET", "/api/items"), ("HEAD", "/")]
        with Shoppers(c.port, mix, rate=60, clients=3, max_s=40) as load:
            time.sleep(1.0)
            p = deploy_in_background(c, "2.0.0")
            code, dep = deploy_result(p, timeout=40)
            time.sleep(0.5)
        eq(dep.get("phase"), "rolled-back", f"the failing canary's deploy: {json.dumps(dep)[:400]}")
        total = len(load.results())
        check(total >= 100, f"too little load to show anything: {total} requests")
        eq(load.failed()[:5], [], "requests the shoppers saw fail (the shield retries GET and HEAD)")

        # a failed request with the client's id, and one whose id is the secret
        rid_fail = "it-fail-" + pysecrets.token_hex(6)
        failed_request(c, rid_fail)
        failed_request(c, secret)
        eq(http_get(c.port, "/echo?token=" + secret, host="shop.test")[0], 200, "GET with the secret in the path")
        os.kill(c.pid, signal.SIGTERM)  # flushes the access log
        c.proc.wait(20)

        err_text, acc_text = c.logs(), c.access_log()
        errors, access = parse_lines(err_text, "error log"), parse_lines(acc_text, "access log")
        for rec, line in zip(errors, err_text.splitlines()):
            check_error_line(rec, line)
        for rec, line in zip(access, acc_text.splitlines()):
            check_access_line(rec, line)
        check(len(access) >= total, f"{len(access)} access log lines for {total} requests and more")

        # the deploy's lines carry its fields; the instances' theirs
        phases = [e for e in errors if e.get("deployment_id") and e.get("phase")]
        check(any(e["version"] == "2.0.0" and e["service"] == "shop" for e in phases),
              f"no deployment line of 2.0.0 with its fields: {phases[:3]}")
        check(any(e.get("phase") == "rolled-back" and e.get("version") == "2.0.0" and
                  e.get("from_version") == "1.0.0" for e in errors), "no rolled-back line with its fields")
        started = [e for e in errors if e["msg"].startswith("started shop")]
        check(started and all(isinstance(e.get("pid"), int) and e.get("instance", "").startswith("127.0.0.1:")
                              for e in started), f"instance start lines: {started[:2]}")

        # request lines: the canary's failures retried on stable, each with
        # an id the access log has (and that line says retried_on_stable)
        by_id = {}
        for a in access:
            by_id.setdefault(a["request_id"], []).append(a)
        shielded = [e for e in errors if "retrying on stable" in e["msg"]]
        check(shielded, "no error-log line about a request retried on stable")
        for e in shielded:
            eq((e.get("service"), e.get("version"), e["level"]), ("shop", "2.0.0", "warn"), f"fields of {e}")
            lines = by_id.get(e["request_id"], [])
            check(any(a.get("retried_on_stable") and a["status"] == 200 for a in lines),
                  f"no access log line retried on stable for {e['request_id']}: {lines}")
        for e in errors:
            if "request_id" in e:
                check(e["request_id"] in by_id or e["request_id"] == "[redacted:DB_PASSWORD]",
                      f"an error-log request id the access log does not have: {e}")

        # the failed request with the client's id: in both logs, seen by the service
        a = by_id.get(rid_fail, [])
        eq([(x["status"], x["path"], x["service"]) for x in a], [(502, "/fail", "shop")], "its access log line")
        mine = [e for e in errors if e.get("request_id") == rid_fail]
        check(any(e.get("status") == 502 and e["level"] == "warn" for e in mine),
              f"no error-log line of its 502: {mine}")
        inst_log = open(os.path.join(c.dir, "state", "logs", "shop", "1.0.0.log"), errors="replace").read()
        check(f'seen X-Request-Id: ["{rid_fail}"]' in inst_log,
              f"the service did not see exactly the client's id: {inst_log[-600:]!r}")

        # the secret: in no line of either log, hidden where it was (the
        # instance's own log hides only the secrets it was given: it got none)
        for name, text in (("error log", err_text), ("access log", acc_text)):
            for form in (secret, json.dumps(secret)[1:-1]):
                check(form not in text, f"the secret is in the {name}")
        check(any(e.get("request_id") == "[redacted:DB_PASSWORD]" for e in errors),
              "the error log does not show the secret request id hidden")
        check(sum(a["request_id"] == "[redacted:DB_PASSWORD]" for a in access) == 1 and
              any(a["path"] == "/echo?token=[redacted:DB_PASSWORD]" for a in access),
              "the access log does not show the secret hidden")


# ====================================================================== the request id

LONG_OK = "r" * 128
CASES = [
    # (name, raw header lines, the id kept or None: a new one)
    ("no header", [], None),
    ("a word", ["X-Request-Id: order-42"], "order-42"),
    ("a UUID", ["X-Request-Id: 3f2b8c1e-9d4a-4e6b-8f0a-1c2d3e4f5a6b"], "3f2b8c1e-9d4a-4e6b-8f0a-1c2d3e4f5a6b"),
    ("128 characters", ["X-Request-Id: " + LONG_OK], LONG_OK),
    ("base64 with = and /", ["X-Request-Id: ab/cd+ef=="], "ab/cd+ef=="),
    ("129 characters", ["X-Request-Id: " + "r" * 129], None),
    ("a space", ["X-Request-Id: bad id"], None),
    ("a tab", ["X-Request-Id: bad\tid"], None),
    ("a quote", ['X-Request-Id: bad"id'], None),
    ("a backslash", ["X-Request-Id: bad\\id"], None),
    ("a non-ASCII byte", ["X-Request-Id: caf\xe9"], None),
    ("empty", ["X-Request-Id: "], None),
    ("two sane: the first", ["X-Request-Id: first-1", "X-Request-Id: second-2"], "first-1"),
    ("bad then sane: the sane one", ["X-Request-Id: bad id", "x-request-id: good-3"], "good-3"),
]


def own_id_backend(conn):
    """Answers each request with its own X-Request-Id, twice."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            d = conn.recv(65536)
            if not d:
                return
            data += d
        head, _, data = data.partition(b"\r\n\r\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Request-Id: svc-1\r\nx-request-id: svc-2\r\nContent-Length: 2\r\n\r\nok")


def test_request_id_kept_or_replaced():
    yaml = ("listen: 127.0.0.1:{PORT}\nadmin: 127.0.0.1:{ADMIN}\n"
            "log:\n  access: {DIR}/access.log\n  format: json\n"
            "services:\n  echo:\n    targets: [127.0.0.1:%d]\n    routes: [{host: echo.test}]\n"
            "  own:\n    targets: [127.0.0.1:%d]\n    routes: [{host: own.test}]\n"
            "  dead:\n    targets: [127.0.0.1:%d]\n    routes: [{host: dead.test}]\n")
    dead = free_port()
    with echo_backend() as be, raw_backend(own_id_backend) as (own, _):
        y = yaml % (be.server_address[1], own, dead)
        with cutover(yaml_text=y) as c:
            got, bad = [], []
            for name, lines, kept in CASES:
                with HttpConn(c.port) as h:
                    h.send(request_bytes("GET", "/rid", host="echo.test", headers=[l.split(": ", 1) for l in lines]))
                    r = h.read_response()
                if r.status != 200:
                    bad.append(f"{name}: status {r.status}")
                    continue
                up = [v for k, v in be.requests[-1]["headers"] if k.lower() == "x-request-id"]
                back = r.get_all("x-request-id")
                if len(up) != 1 or back != up:
                    bad.append(f"{name}: the service got {up}, the client {back}")
                    continue
                if kept is not None and up[0] != kept:
                    bad.append(f"{name}: {up[0]!r} instead of the client's")
                if kept is None and not GENERATED.match(up[0]):
                    bad.append(f"{name}: {up[0]!r} is not one of cutover's")
                got.append(up[0])
            eq(bad, [], "request ids")
            eq(len(set(got)), len(got), "every request its own id")

            # the service's own X-Request-Id does not reach the client
            status, headers, _ = http_get(c.port, "/", host="own.test", headers={"X-Request-Id": "mine-7"})
            eq((status, headers.get("x-request-id")), (200, "mine-7"), "the service's own ids replaced")

            # the error log, logfmt by default: a 502 line with its fields
            eq(http_get(c.port, "/", host="dead.test", headers={"X-Request-Id": "dead-1"})[0], 502, "dead target")
            line = wait_until(lambda: next((l for l in c.logs().splitlines() if "request_id=dead-1" in l), None),
                              3, what="the 502's error log line")
            for part in ("level=warn", 'msg="answered 502: upstream connection refused"', "service=dead",
                         f"target=127.0.0.1:{dead}", "status=502"):
                check(part in line, f"{part} not in {line}")

            # a reload switches the error log to JSON
            text = open(c.cfg_path).read()
            c.reload(text.replace("  format: json\n", "  format: json\n  error_format: json\n"))
            wait_until(lambda: '"msg":"configuration reloaded' in c.logs(), 5, what="the reload, in JSON")
            eq(http_get(c.port, "/", host="dead.test", headers={"X-Request-Id": "dead-2"})[0], 502, "dead target")
            line = wait_until(lambda: next((l for l in c.logs().splitlines() if '"dead-2"' in l), None),
                              3, what="the 502's JSON line")
            rec = json.loads(line)
            check_error_line(rec, line)
            eq((rec["request_id"], rec["service"], rec["status"], rec["target"]),
               ("dead-2", "dead", 502, f"127.0.0.1:{dead}"), "fields of the 502's line")

            os.kill(c.pid, signal.SIGTERM)
            c.proc.wait(15)
            access = parse_lines(c.access_log(), "access log")
            for rec in access:
                check_access_line(rec, json.dumps(rec))
            ids = [a["request_id"] for a in access if a["service"] == "echo"]
            eq(ids, got, "the access log's request ids, in order")
