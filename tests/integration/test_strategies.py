"""Deploy strategies and several instances per version (issue 8, point 4):
`strategy: recreate` stops the old version before the new one starts, and
when the new one fails, starts the old one again; `instances: 3` runs three
supervised, health-checked instances per version, switches blue-green only
when all three are healthy, without a failed request under load, keeps all
three warm for a rollback, and re-adopts all three after kill -9 of the
daemon (starting again one that did not survive).  Design:
docs/internals/deploy.md."""
import json
import os
import time

from harness import *
from shopenv import *

RECREATE = YAML.replace("      timeout: 20s\n", "      strategy: recreate\n      timeout: 20s\n")
THREE = YAML.replace("    stop_grace: 5s\n", "    stop_grace: 5s\n    instances: 3\n")

# A release that says when it starts serving and when it is told to stop,
# in the file named by $EVENTS: the order of those lines is the order of
# the processes' lives.
ORDER_APP = r'''#!/usr/bin/env python3
import http.server, os, signal, socketserver, sys, time
port = int(sys.argv[1]); version = os.path.basename(sys.argv[0]).split("-", 1)[1]
def note(what):
    with open(os.environ["EVENTS"], "a") as f:
        f.write(f"{time.monotonic():.6f} {what} {version} {os.getpid()}\n")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = version.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
server = S(("127.0.0.1", port), H)
def stop(*a):
    note("stop")
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
note("start")
server.serve_forever()
'''


def instances(c, role=None):
    return [i for i in managed(c)["instances"] if role is None or i["role"] == role]


def wait_for(what, pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise TestFailure(f"{what}: not within {timeout}s")


def versions_in_status(c):
    """The service's version groups as the proxy routes them: [(version,
    weight, [addresses])]."""
    status, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")
    eq(status, 200, f"GET /v1/status: {body}")
    svc = [s for s in json.loads(body)["services"] if s["name"] == "shop"][0]
    return [(g["version"], g["weight"], sorted(t["address"] for t in g["targets"])) for g in svc["versions"]]


def test_recreate_stops_the_old_version_before_the_new_one_starts():
    yaml = RECREATE.replace("run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}",
                            "run: ${RELEASE_DIR}/app-${VERSION} ${PORT}")
    yaml = yaml.replace("      SHOP_DB: {DIR}/shop.db\n", "      SHOP_DB: {DIR}/shop.db\n      EVENTS: {DIR}/events\n")
    with cutover(yaml_text=yaml.replace("watch: 3s", "watch: 1s")) as c:
        for v in ("1.0.0", "1.1.0"):
            path = os.path.join(c.dir, f"app-{v}")
            with open(path, "w") as f:
                f.write(ORDER_APP)
            os.chmod(path, 0o755)
            eq(cli(c, "release", "add", "shop", v, path, "--state-dir", f"{c.dir}/state").returncode, 0,
               f"release add {v}")
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"first deploy: {r.stdout}{r.stderr}")
        check("stopping" not in r.stdout, f"nothing to stop on a first deploy:\n{r.stdout}")
        old_pid = managed(c)["live"]["pid"]
        r = cli(c, "deploy", "shop", "1.1.0")
        eq(r.returncode, 0, f"recreate deploy: {r.stdout}{r.stderr}")
        check("stopping" in r.stdout and "switched" in r.stdout and "done" in r.stdout, f"phases:\n{r.stdout}")
        eq(http_get(c.port, "/", host="shop.test")[2], b"1.1.0", "served after the recreate")
        lines = [l.split() for l in open(os.path.join(c.dir, "events")).read().splitlines()]
        eq([(l[1], l[2]) for l in lines], [("start", "1.0.0"), ("stop", "1.0.0"), ("start", "1.1.0")],
           "lives of the processes, in order")
        eq(int(lines[1][3]), old_pid, "the old version's process was the one stopped")
        m = managed(c)
        eq(m["strategy"], "recreate", "strategy in status")
        eq(m["previous"], None, "nothing kept warm by recreate")
        eq(m["rollback_to"], "1.0.0", "a rollback starts 1.0.0 again")
        eq(len(processes_of(c.dir)), 1, "one version runs")
        rows = history(c)
        eq((rows[0]["to_version"], rows[0]["from_version"], rows[0]["strategy"], rows[0]["state"]),
           ("1.1.0", "1.0.0", "recreate", "done"), "the recreate in the history")
        details = [(e["to_state"], e["detail"] or "") for e in rows[0]["events"]]
        check(any(s == "starting" and "of 1.0.0 stop before 1.1.0 starts (recreate)" in d for s, d in details),
              f"the stop is in the history: {details}")
        states = [s for s, _ in details]
        check(states.index("health-checking") > [i for i, (s, d) in enumerate(details) if "stop before" in d][0],
              f"stopped before health-checking: {states}")
        eq(states[-2:], ["switched", "done"], "the end of the recreate")
        check(any(a["action"] == "deploy" and a["target"] == "shop@1.1.0" and a["result"] == "done"
                  for a in audit(c)), "audit row of the recreate")
        # a rollback of a recreate service recreates too: 1.1.0 stops, 1.0.0 starts
        r = cli(c, "rollback", "shop")
        eq(r.returncode, 0, f"rollback: {r.stdout}{r.stderr}")
        eq(http_get(c.port, "/", host="shop.test")[2], b"1.0.0", "served after the rollback")
        lines = [l.split() for l in open(os.path.join(c.dir, "events")).read().splitlines()]
        eq([(l[1], l[2]) for l in lines[3:]], [("stop", "1.1.0"), ("start", "1.0.0")], "the rollback's order")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_failed_recreate_starts_the_old_version_again():
    """The new version crashes at once: the deploy fails, and since the old
    version was stopped first, cutover starts it again (a rollback of its
    own, in the history and the audit log): the service serves 1.0.0."""
    with cutover(yaml_text=RECREATE) as c:
        add_releases(c, "1.0.0")
        add_script_release(c, "2.0.0", "#!/bin/sh\necho 'boom' >&2\nexit 3\n")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        r = cli(c, "deploy", "shop", "2.0.0", "--json")
        eq(r.returncode, 1, f"the recreate must fail: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        eq(dep["phase"], "failed", "outcome")
        check("exited with status 3" in dep["reason"] and
              "1.0.0 was stopped first (recreate): starting it again" in dep["reason"], f"reason: {dep['reason']}")
        m = wait_for("1.0.0 serving again",
                     lambda: (lambda m: m if m["live"] and m["live"]["version"] == "1.0.0" and
                              m["live"]["health"] == "healthy" and not m["deploying"] else None)(managed(c)))
        eq(version_served(c.port), "1.0.0", "served after the failed recreate")
        rows = wait_for("the rollback in the history", lambda: (lambda h: h if h[0]["state"] == "done" else None)(
            history(c)))
        eq((rows[0]["from_version"], rows[0]["to_version"], rows[0]["strategy"], rows[0]["state"]),
           ("2.0.0", "1.0.0", "rollback", "done"), "cutover's own rollback")
        eq((rows[1]["to_version"], rows[1]["state"]), ("2.0.0", "failed"), "the failed recreate before it")
        check(any(a["actor"] == "cutover (automatic)" and a["action"] == "rollback" and a["result"] == "done"
                  for a in audit(c)), f"audit: {audit(c)[:3]}")
        eq(len(processes_of(c.dir)), 1, "1.0.0 alone runs")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_three_instances_blue_green_under_load():
    with cutover(yaml_text=THREE) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "first deploy")
        live = instances(c, "live")
        eq(len(live), 3, f"three instances of 1.0.0: {live}")
        eq(len({i["port"] for i in live}), 3, "each its own port")
        eq(len(processes_of(c.dir)), 3, "three processes")
        with Load(c.port, clients=6) as load:
            time.sleep(0.5)
            r = cli(c, "deploy", "shop", "1.1.0", "--json")
            eq(r.returncode, 0, f"deploy 1.1.0: {r.stdout}{r.stderr}")
            time.sleep(0.5)
        eq(load.failures, [], f"failed requests while deploying 1.1.0 on 3 instances ({load.count} requests)")
        check(load.count > 50, f"too little load: {load.count}")
        dep = json.loads(r.stdout)
        healthy = [e for e in dep["events"] if e["phase"] == "healthy"]
        check(healthy and "3 instances healthy" in healthy[0]["detail"], f"switched once all 3 healthy: {dep}")
        eq(dep["plan"]["steps"][0]["new_instances"], 3, "the plan's count")
        m = managed(c)
        live, warm = instances(c, "live"), instances(c, "warm")
        eq(([i["version"] for i in live], [i["version"] for i in warm]), (["1.1.0"] * 3, ["1.0.0"] * 3),
           "3 live, 3 warm")
        eq(sorted(processes_of(c.dir)), sorted(i["pid"] for i in live + warm), "processes: exactly those")
        eq(sum(i["traffic_percent"] for i in live), 99, "the live instances share the traffic (33 % each)")
        check(all(i["requests"] > 0 for i in live), f"every live instance served: {live}")
        groups = versions_in_status(c)
        eq([(v, w, len(t)) for v, w, t in groups], [("1.1.0", 1, 3), ("1.0.0", 0, 3)],
           "version groups at the proxy: 1.1.0 on 3 targets, 1.0.0 warm")
        # an instant rollback onto the three warm instances, under load
        with Load(c.port, clients=6) as load:
            time.sleep(0.3)
            r = cli(c, "rollback", "shop", "--json")
            eq(r.returncode, 0, f"rollback: {r.stdout}{r.stderr}")
            time.sleep(0.3)
        eq(load.failures, [], "failed requests during the rollback")
        eq(json.loads(r.stdout)["phase"], "done", "instant rollback")
        eq(sorted(i["pid"] for i in instances(c, "live")), sorted(i["pid"] for i in warm),
           "the three warm processes took the traffic")
        eq(version_served(c.port), "1.0.0", "served after the rollback")
        r = cli(c, "status")
        eq(r.stdout.count("live    1.0.0"), 3, f"status shows every instance:\n{r.stdout}")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_kill9_readopts_all_three_instances():
    """kill -9 of the daemon with 3 live and 3 warm instances: the next
    daemon re-adopts all six (same pids), routes to the three live ones;
    after a second kill -9 during which one live instance died too, it
    re-adopts two and starts one again, which takes traffic once healthy."""
    with cutover(yaml_text=THREE) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        live = sorted(i["pid"] for i in instances(c, "live"))
        warm = sorted(i["pid"] for i in instances(c, "warm"))
        eq((len(live), len(warm)), (3, 3), "3 live, 3 warm before the kill")
        os.kill(c.pid, 9)
        c.proc.wait(10)
        restart_daemon(c)
        eq(sorted(i["pid"] for i in instances(c, "live")), live, "the three live instances re-adopted")
        eq(sorted(i["pid"] for i in instances(c, "warm")), warm, "the three warm instances re-adopted")
        eq(sorted(processes_of(c.dir)), sorted(live + warm), "nothing started, nothing left")
        eq([(v, w, len(t)) for v, w, t in versions_in_status(c)], [("1.1.0", 1, 3), ("1.0.0", 0, 3)],
           "routing after the restart")
        with Load(c.port, clients=4) as load:
            time.sleep(1.0)
        eq(load.failures, [], "failed requests after the restart")
        check(all(i["requests"] > 0 for i in instances(c, "live")), f"all three serve: {instances(c, 'live')}")

        # again, and one live instance dies while the daemon is down
        os.kill(c.pid, 9)
        c.proc.wait(10)
        os.kill(live[0], 9)
        time.sleep(0.2)
        restart_daemon(c)
        adopted = sorted(i["pid"] for i in instances(c, "live") if i["pid"] in live)
        eq(adopted, live[1:], "the two survivors re-adopted")
        m = wait_for("a third instance healthy and serving",
                     lambda: (lambda l: l if len(l) == 3 and all(i["health"] == "healthy" and i["traffic_percent"]
                                                                 for i in l) else None)(instances(c, "live")))
        check(live[0] not in [i["pid"] for i in m], "the dead one is not counted")
        eq([(v, len(t)) for v, _, t in versions_in_status(c)], [("1.1.0", 3), ("1.0.0", 3)],
           "three targets again")
        eq(version_served(c.port), "1.1.0", "served after the second restart")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
