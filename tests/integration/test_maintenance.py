"""Maintenance mode (`cutover maintenance on|off SERVICE`): while it is on,
every request of the service is answered by the proxy itself, 503 with
Retry-After and the page (the operator's, or a built-in one); the instances
keep running and stay healthy (the same pids throughout); off brings the
traffic back at once.  It survives a restart of the daemon and a reload, is
audited and shown by `cutover status`, counts as the proxy's own answers
(not against the version), and does not stop a deploy.  Services with
static targets can be put in maintenance too.  The errors an operator can
make get a sentence and exit 2."""
import json
import os
import signal
import threading
import time

from harness import *
from shopenv import *

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Back soon</title></head>
<body><h1>The shop is closed for an hour</h1><p>We are moving the warehouse. \u00e0 bient\u00f4t</p></body></html>
"""


class Clients:
    """N clients on keep-alive connections for a bounded time, each
    response recorded as (status, Retry-After, body)."""

    def __init__(self, port, seconds, clients=3, host="shop.test"):
        self.port, self.seconds, self.host = port, seconds, host
        self.lock, self.responses, self.errors = threading.Lock(), [], []
        self.stop = threading.Event()  # ends the run before its time
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def run(self, i):
        conn, end = None, time.time() + self.seconds
        paths = ["/api/catalog", "/api/catalog/3", "/", "/health"]
        n = 0
        while time.time() < end and not self.stop.is_set():
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", paths[(n + i) % len(paths)], headers={"Host": self.host})
                r = conn.getresponse()
                body = r.read()
                with self.lock:
                    self.responses.append((r.status, r.getheader("Retry-After"), r.getheader("Content-Type"), body))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                with self.lock:
                    self.errors.append(repr(e))
                conn = None
            time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        for t in self.threads:
            t.join(self.seconds + 30)


def maintenance(c, *args):
    return cli(c, "maintenance", *args)


def status_json(c):
    r = cli(c, "status", "--json")
    eq(r.returncode, 0, f"status: {r.stderr}")
    return json.loads(r.stdout)


def service_entry(st, name):
    return [s for s in st["services"] if s["name"] == name][0]


def all_503(clients, page, retry_after, what):
    eq(clients.errors, [], f"{what}: connection errors")
    check(len(clients.responses) >= 20, f"{what}: only {len(clients.responses)} responses")
    for status, retry, ctype, body in clients.responses:
        if (status, retry, ctype) != (503, str(retry_after), "text/html; charset=utf-8") or body != page:
            raise TestFailure(f"{what}: a response was {status} Retry-After {retry} {ctype} {body[:80]!r}")


def all_200(clients, what):
    eq(clients.errors, [], f"{what}: connection errors")
    check(len(clients.responses) >= 20, f"{what}: only {len(clients.responses)} responses")
    bad = [r[:2] for r in clients.responses if r[0] != 200]
    eq(bad, [], f"{what}: responses not 200")


def test_maintenance_of_a_managed_service():
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = live_pids(c)
        page_file = os.path.join(c.dir, "closed.html")
        with open(page_file, "w") as f:
            f.write(PAGE)
        page = PAGE.encode()
        local_before = c.metric("cutover_local_responses_total", status="503")
        with Clients(c.port, 1.0) as before:
            pass
        all_200(before, "before")

        # on: every answer is the proxy's 503, with Retry-After and the page
        r = maintenance(c, "on", "shop", "--page", page_file, "--retry-after", "120")
        eq(r.returncode, 0, f"maintenance on: {r.stdout}{r.stderr}")
        check("shop is in maintenance" in r.stdout, f"maintenance on says: {r.stdout}")
        with Clients(c.port, 1.5) as during:
            pass
        all_503(during, page, 120, "in maintenance")
        # ...as the proxy's own answers: not the version's errors
        eq(c.metric("cutover_local_responses_total", status="503") - local_before, float(len(during.responses)),
           "local 503 responses counted")
        eq(c.metric("cutover_requests_total", service="shop", status="5xx"), 0.0, "5xx counted against 1.0.0")
        eq(c.metric("cutover_maintenance", service="shop"), 1.0, "cutover_maintenance{service=shop}")
        # the instances run on, healthy, untouched
        st = status_json(c)
        m = st["managed"][0]
        eq(m["live"]["health"], "healthy", "the live instance's health in maintenance")
        eq(live_pids(c), pids, "the instances' pids")
        eq(set(m["maintenance"]), {"since", "by", "retry_after", "page"}, "status: maintenance's fields")
        eq((m["maintenance"]["retry_after"], m["maintenance"]["page"]), (120, True), "status: maintenance")
        check(abs(m["maintenance"]["since"] / 1000 - time.time()) < 60, f"since: {m['maintenance']['since']}")
        eq(service_entry(st, "shop")["maintenance"], m["maintenance"], "services[] entry's maintenance")
        text = cli(c, "status").stdout
        check("MAINTENANCE since" in text and "cutover maintenance off shop" in text, f"status text: {text}")

        # a reload and a restart of the daemon keep it
        c.reload(open(c.cfg_path).read())
        wait_until(lambda: "configuration reloaded" in c.logs(), what="the reload")
        with Clients(c.port, 0.5) as after_reload:
            pass
        all_503(after_reload, page, 120, "after a reload")
        os.kill(c.pid, signal.SIGTERM)
        eq(c.proc.wait(15), 0, "daemon exit status after SIGTERM")
        restart_daemon(c)
        with Clients(c.port, 1.0) as after_restart:
            pass
        all_503(after_restart, page, 120, "after a restart of the daemon")
        eq(live_pids(c), pids, "the instances' pids after the restart (adopted)")
        eq(status_json(c)["managed"][0]["maintenance"]["since"], m["maintenance"]["since"], "since, after the restart")
        # and so does an upgrade (the new daemon reads it from the state)
        r = cli(c, "upgrade", "--json", timeout=60)
        eq(r.returncode, 0, f"upgrade: {r.stdout}{r.stderr}")
        eq(c.proc.wait(15), 0, "the old daemon's exit status after the upgrade")
        eq(status_json(c)["pid"], json.loads(r.stdout)["new_pid"], "the daemon that answers after the upgrade")
        with Clients(c.port, 0.5) as after_upgrade:
            pass
        all_503(after_upgrade, page, 120, "after an upgrade")

        # a deploy goes on meanwhile; the traffic stays on the page
        r = cli(c, "deploy", "shop", "1.1.0")
        eq(r.returncode, 0, f"deploy 1.1.0 in maintenance: {r.stdout}{r.stderr}")
        eq(http_get(c.port, "/version", host="shop.test")[0], 503, "/version in maintenance after the deploy")

        # off: 1.1.0 answers at once
        r = maintenance(c, "off", "shop")
        eq(r.returncode, 0, f"maintenance off: {r.stderr}")
        check("out of maintenance" in r.stdout, f"maintenance off says: {r.stdout}")
        with Clients(c.port, 1.0) as back:
            pass
        all_200(back, "after off")
        eq(version_served(c.port), "1.1.0", "the version served after off")
        eq(c.metric("cutover_maintenance", service="shop"), 0.0, "cutover_maintenance after off")
        eq(status_json(c)["managed"][0]["maintenance"], None, "status after off")
        r = maintenance(c, "off", "shop")
        eq((r.returncode, "was not in maintenance" in r.stdout), (0, True), f"off again: {r.stdout}")

        # audited, with who did it
        rows = [a for a in audit(c) if a["action"].startswith("maintenance-")]
        eq([a["action"] for a in rows], ["maintenance-off", "maintenance-on"], "audit rows (newest first)")
        eq(rows[1]["args"], {"retry_after": 120, "page": True, "page_bytes": len(page)}, "maintenance-on's args")
        check(all(a["actor"] and a["result"] == "ok" for a in rows), f"audit rows: {rows}")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")


def test_maintenance_under_load_across_on_and_off():
    """Clients that run through on and off: each answer is whole, either
    the version's 200 or the page's 503, and nothing fails in between."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = live_pids(c)
        with Clients(c.port, 60, clients=4) as load:
            time.sleep(0.8)
            eq(maintenance(c, "on", "shop").returncode, 0, "on")
            time.sleep(1.2)
            eq(maintenance(c, "on", "shop", "--retry-after", "5").returncode, 0, "on again (new Retry-After)")
            time.sleep(0.8)
            eq(maintenance(c, "off", "shop").returncode, 0, "off")
            time.sleep(0.8)
            load.stop.set()
        eq(load.errors, [], "connection errors")
        statuses = [r[0] for r in load.responses]
        eq(sorted(set(statuses)), [200, 503], "statuses seen")
        check(statuses[0] == 200 and statuses[-1] == 200, "200 before on and after off")
        for status, retry, ctype, body in load.responses:
            if status == 503:
                check(retry in ("300", "5") and b"Down for maintenance" in body, f"a 503: {retry} {body[:80]!r}")
        eq(live_pids(c), pids, "the instances' pids")
        eq(c.shutdown_all(), 0, "daemon exit status")


def test_maintenance_of_static_targets():
    """A service with static targets: no state yet when it goes on (the
    daemon creates it), kept across a restart, then off."""
    with echo_backend() as be:
        services = {"web": {"targets": [f"127.0.0.1:{be.server_address[1]}"]}}
        with cutover(services) as c:
            sock = f"{c.dir}/state/admin.sock"
            run = lambda *a: subprocess.run([BIN, "maintenance", *a, "--socket", sock], capture_output=True,
                                            text=True, timeout=30)
            eq(http_get(c.port, "/")[0], 200, "before")
            check(not os.path.exists(f"{c.dir}/state/state.db"), "no state.db before maintenance")
            r = run("on", "web")
            eq(r.returncode, 0, f"on: {r.stderr}")
            served = len(be.requests)
            status, headers, body = http_get(c.port, "/")
            eq((status, headers.get("retry-after")), (503, "300"), "in maintenance")
            check(b"Down for maintenance" in body, f"the built-in page: {body[:200]!r}")
            eq(len(be.requests), served, "requests that reached the target in maintenance")
            wait_until(lambda: os.path.exists(f"{c.dir}/state/state.db"), what="the state written")
            os.kill(c.pid, signal.SIGTERM)
            c.proc.wait(15)
            err = open(os.path.join(c.dir, "stderr.log"), "a")
            c.proc = subprocess.Popen([BIN, "daemon", "--config", c.cfg_path], stdout=err, stderr=err, cwd=c.dir)
            wait_port(c.port)
            eq(http_get(c.port, "/")[0], 503, "after a restart")
            st = json.loads(subprocess.run([BIN, "status", "--json", "--socket", sock], capture_output=True,
                                           text=True).stdout)
            eq(service_entry(st, "web")["maintenance"]["page"], False, "status: the built-in page")
            eq(run("off", "web").returncode, 0, "off")
            eq(http_get(c.port, "/")[0], 200, "after off")


def test_maintenance_mistakes():
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        cases = [
            (("on", "nosuch"), "unknown service 'nosuch'"),
            (("off", "nosuch"), "unknown service 'nosuch'"),
            (("on", "shop", "--page", f"{c.dir}/missing.html"), f"--page {c.dir}/missing.html: No such file"),
            (("on", "shop", "--retry-after", "0"), "--retry-after: expected whole seconds, 1 to 86400"),
            (("on", "shop", "--retry-after", "5m"), "--retry-after: expected whole seconds"),
            (("off", "shop", "--retry-after", "5"), "--retry-after: only for cutover maintenance on"),
            (("pause", "shop"), "expected on or off, got 'pause'"),
            (("on",), "expected on|off SERVICE"),
        ]
        big = os.path.join(c.dir, "big.html")
        with open(big, "w") as f:
            f.write("<p>" + "x" * (64 * 1024) + "</p>")
        cases.append((("on", "shop", "--page", big), "larger than 64 KiB"))
        binary = os.path.join(c.dir, "logo.png")
        with open(binary, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
        cases.append((("on", "shop", "--page", binary), "not text (expected HTML in UTF-8)"))
        for args, says in cases:
            r = maintenance(c, *args)
            eq(r.returncode, 2, f"exit status of maintenance {' '.join(args)}: {r.stderr}")
            check(says in r.stderr, f"maintenance {' '.join(args)} says {r.stderr!r}, expected {says!r}")
        r = maintenance(c, "on", "nosuch", "--json")
        j = json.loads(r.stdout)
        eq((j["ok"], j["exit_code"], j["status"]), (False, 2, 404), f"--json error: {j}")
        # nothing changed
        eq(http_get(c.port, "/api/catalog", host="shop.test")[0], 200, "shop still served")
        eq([a for a in audit(c) if a["action"].startswith("maintenance")], [], "audit rows of refused requests")
        eq(c.shutdown_all(), 0, "daemon exit status")
