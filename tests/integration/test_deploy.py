"""Blue-green deploys of the shop under load: the real daemon runs real
releases of examples/shop; clients that check every response keep
hammering it while versions change.  Zero failed requests on a good
deploy, automatic rollback of the faulty 1.2.0, instant manual rollback,
and a clean shutdown that leaves no process behind.  (kill -9 of the
daemon: test_recovery.py.)"""
import json
import subprocess
import re
import os
import time

from harness import *
from shopenv import *


def test_blue_green_zero_downtime_and_rollbacks():
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        check(os.path.exists(shop_binary(v)), f"missing {shop_binary(v)}: build the shop first")
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0", "1.2.0")
        # nothing deployed yet: the service has no targets
        eq(http_get(c.port, "/version", host="shop.test")[0], 503, "before the first deploy")
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"first deploy: {r.stdout}{r.stderr}")
        eq(version_served(c.port), "1.0.0", "version after the first deploy")

        with Load(c.port) as load:
            time.sleep(0.5)
            r = cli(c, "deploy", "shop", "1.1.0")
            eq(r.returncode, 0, f"deploy 1.1.0: {r.stdout}{r.stderr}")
            check("switched" in r.stdout and "done" in r.stdout, f"phases not shown:\n{r.stdout}")
            time.sleep(0.5)
        eq(load.failures, [], "failed requests while deploying 1.1.0")
        check(load.count > 20, f"too little load: {load.count}")
        eq(version_served(c.port), "1.1.0", "version after deploying 1.1.0")

        # manual rollback while 1.0.0 is still warm: instant
        with Load(c.port) as load:
            time.sleep(0.3)
            r = cli(c, "rollback", "shop")
            eq(r.returncode, 0, f"rollback exit code: {r.stdout}{r.stderr}")
            eq(r.stdout.splitlines()[-1].split(":")[0], "done", f"rollback result line:\n{r.stdout}")
            time.sleep(0.3)
        eq(load.failures, [], "failed requests during the manual rollback")
        eq(version_served(c.port), "1.0.0", "version after the manual rollback")

        r = cli(c, "deploy", "shop", "1.1.0")
        eq(r.returncode, 0, f"deploy 1.1.0 again: {r.stdout}{r.stderr}")

        # the faulty version: slow answers; the watch window must catch it
        with Load(c.port) as load:
            r = cli(c, "deploy", "shop", "1.2.0", "--json")
            eq(r.returncode, 1, f"deploy 1.2.0 must fail (rolled back): {r.stdout}{r.stderr}")
            dep = json.loads(r.stdout)
            eq(dep["phase"], "rolled-back", "faulty deploy outcome")
            check(any(w in dep["reason"] for w in ("p99", "p50", "error rate")), f"reason: {dep['reason']}")
        eq(load.failures, [], "failed requests during the faulty deploy and its rollback")
        eq(version_served(c.port), "1.1.0", "version after the automatic rollback")

        # unknown service / version: clear errors, nothing changes
        r = cli(c, "deploy", "nope", "1.0.0")
        eq(r.returncode, 2, "unknown service exit code (a usage error)")
        check("unknown service" in r.stderr, r.stderr)
        r = cli(c, "deploy", "shop", "9.9.9")
        eq(r.returncode, 1, "unknown version exit code")
        check("no release shop 9.9.9" in r.stdout + r.stderr, r.stdout + r.stderr)
        eq(version_served(c.port), "1.1.0", "version after the refused deploys")

        # every deploy and rollback is in the history, with its phases
        r = cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", "--json")
        eq(r.returncode, 0, f"history: {r.stderr}")
        rows = json.loads(r.stdout)
        eq([(x["to_version"], x["state"]) for x in rows][:4],
           [("9.9.9", "failed"), ("1.2.0", "rolled-back"), ("1.1.0", "done"), ("1.0.0", "done")],
           "latest results in history (the refused 9.9.9 included)")
        check("no release shop 9.9.9" in rows[0]["reason"], f"reason of the refused deploy: {rows[0]}")
        check(any(e["to_state"] == "switched" for e in rows[1]["events"]), f"phases missing: {rows[1]}")
        r = cli(c, "history", "--state-dir", f"{c.dir}/state")
        check("rolled-back" in r.stdout and "1.2.0" in r.stdout, f"history table:\n{r.stdout}")

        pids = live_pids(c)
        check(pids, "no instance reported")
        eq(sorted(processes_of(c.dir)), sorted(pids), "processes running releases: only the reported ones")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        left = processes_of(c.dir)
        for pid in left:
            os.kill(pid, 9)  # clean up before failing
        eq(left, [], "processes of this test still running after the daemon stopped")


def test_crash_looping_version_never_gets_traffic():
    """A release whose process dies at once: the deploy fails with the exit
    status, traffic never leaves the running version, and the broken
    instance is not left behind."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        add_script_release(c, "2.0.0", "#!/bin/sh\necho 'boom: cannot open the database' >&2\nexit 3\n")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        with Load(c.port, clients=2) as load:
            r = cli(c, "deploy", "shop", "2.0.0", "--json")
        eq(r.returncode, 1, f"deploying a crashing version must fail: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        eq(dep["phase"], "failed", "outcome")
        check("exited with status 3" in dep["reason"] and "before it became healthy" in dep["reason"],
              f"reason: {dep['reason']}")
        eq(load.failures, [], "failed requests while the broken version crashed")
        eq(version_served(c.port), "1.0.0", "traffic stays on the running version")
        # its output is in its log, where an operator looks
        r = cli(c, "logs", "shop", "2.0.0", "--state-dir", f"{c.dir}/state")
        check("boom: cannot open the database" in r.stdout, f"cutover logs shop 2.0.0:\n{r.stdout}{r.stderr}")
        time.sleep(0.5)
        running = processes_of(c.dir)
        eq(len(running), 1, f"only 1.0.0 should run, found {running}")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")


def test_twenty_deploys_five_rollbacks_under_load():
    """Issue 3's proof of zero downtime: 20 deploys in a row and 5 manual
    rollbacks, with slow requests, 2 MiB downloads and keep-alive
    connections in flight at every switch: not one failed, reset or
    truncated response."""
    fast = YAML.replace("watch: 3s", "watch: 1s")
    with cutover(yaml_text=fast) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "first deploy")
        deploys = rollbacks = 0
        n = rounds(20, 8)  # a multiple of 4: a rollback every 4th, ending on 1.0.0
        with Load(c.port, clients=6) as load:
            for i in range(n):
                want = "1.1.0" if i % 2 == 0 else "1.0.0"
                r = cli(c, "deploy", "shop", want)
                eq(r.returncode, 0, f"deploy {i + 1} ({want}): {r.stdout}{r.stderr}")
                deploys += 1
                if i % 4 == 1:  # 5 rollbacks, while the previous version is warm
                    r = cli(c, "rollback", "shop")
                    eq(r.returncode, 0, f"rollback after deploy {i + 1}: {r.stdout}{r.stderr}")
                    rollbacks += 1
                    r = cli(c, "deploy", "shop", want)  # and forward again
                    eq(r.returncode, 0, f"redeploy {want} after the rollback: {r.stdout}{r.stderr}")
        eq((deploys, rollbacks), (n, n // 4), "deploys and rollbacks done")
        eq(load.failures, [], f"failed requests over {load.count}")
        check(load.count > 300, f"too little load to mean anything: {load.count}")
        eq(version_served(c.port), "1.0.0", "final version")
        eq(len(processes_of(c.dir)), 2, "the live version and the warm previous one, nothing else")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_live_crash_loop_rolls_back_to_the_warm_version():
    """The live version crashes again and again after its watch window: it
    is restarted with backoff (restarts counted in status), and at the third
    crash in a row, with the previous version warm, cutover rolls back to it
    by itself (audited as its own act).  `cutover status` shows it all."""
    with cutover(yaml_text=YAML.replace("watch: 3s", "watch: 1s")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        warm_pid = managed(c)["previous"]["pid"]
        r = cli(c, "status")
        eq(r.returncode, 0, f"status: {r.stderr}")
        for want in ("ROLE", "live    1.1.0", "warm    1.0.0", "100%", "rollback window", "cutover rollback shop"):
            check(want in r.stdout, f"status lacks {want!r}:\n{r.stdout}")
        killed = []
        for i in range(3):
            deadline = time.time() + 10
            while time.time() < deadline:
                live = managed(c)["live"]
                if live["version"] == "1.1.0" and live["pid"] and live["pid"] not in killed:
                    break
                time.sleep(0.05)
            else:
                raise TestFailure(f"1.1.0 not restarted after crash {i}: {managed(c)}")
            if i == 1:
                eq(live["restarts"], 1, "restart counted")
            killed.append(live["pid"])
            os.kill(live["pid"], 9)
        deadline = time.time() + 10
        while time.time() < deadline and managed(c)["live"]["version"] != "1.0.0":
            time.sleep(0.05)
        m = managed(c)
        eq((m["live"]["version"], m["live"]["pid"]), ("1.0.0", warm_pid), "rolled back onto the warm 1.0.0")
        eq(version_served(c.port), "1.0.0", "traffic after the automatic rollback")
        deadline = time.time() + 5  # written by the state thread
        while time.time() < deadline:
            rows = json.loads(cli(c, "audit", "shop", "--state-dir", f"{c.dir}/state", "--json").stdout)
            if any(a["action"] == "rollback" for a in rows):
                break
            time.sleep(0.05)
        check(any(a["actor"] == "cutover (automatic)" and a["action"] == "rollback" and "3 crashes in a row"
                  in (a["detail"] or "") for a in rows), f"audit: {rows[:3]}")
        hist = json.loads(cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", "--json").stdout)
        eq((hist[0]["from_version"], hist[0]["to_version"], hist[0]["strategy"], hist[0]["state"]),
           ("1.1.0", "1.0.0", "rollback", "done"), "the automatic rollback is in the history (done: traffic is back)")
        check("3 crashes in a row" in hist[0]["reason"], f"reason: {hist[0]['reason']}")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


ABRUPT_APP = r'''#!/usr/bin/env python3
# A service that dies the instant it gets SIGTERM (no graceful drain of its
# own): only cutover's drain protects the requests in flight on it.
import http.server, socketserver, sys, time, os
port = int(sys.argv[1]); version = os.path.basename(sys.argv[0]).split("-", 1)[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(1.5)
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
S(("127.0.0.1", port), H).serve_forever()
'''


def test_rollback_drains_requests_in_flight_on_the_version_left():
    """A version that dies on SIGTERM at once, with a 1.5 s request in flight
    on it when it is rolled back: cutover stops it only once that request is
    done (deploy.drain), so the client gets its complete answer."""
    yaml = YAML.replace("run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}",
                        "run: ${RELEASE_DIR}/app-${VERSION} ${PORT}").replace("watch: 3s", "watch: 0s")
    yaml = yaml.replace("      max_error_rate: 5%\n", "      max_error_rate: 5%\n      drain: 10s\n")
    with cutover(yaml_text=yaml) as c:
        for v in ("1.0.0", "2.0.0"):
            path = os.path.join(c.dir, f"app-{v}")
            with open(path, "w") as f:
                f.write(ABRUPT_APP)
            os.chmod(path, 0o755)
            r = cli(c, "release", "add", "shop", v, path, "--state-dir", f"{c.dir}/state")
            eq(r.returncode, 0, f"release add: {r.stderr}")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "2.0.0").returncode, 0, "deploy 2.0.0")
        result = {}

        def slow():
            try:
                result["r"] = http_get(c.port, "/slow", host="shop.test", timeout=10)
            except Exception as e:
                result["r"] = e

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.4)  # in flight on 2.0.0
        r = cli(c, "rollback", "shop")
        eq(r.returncode, 0, f"rollback: {r.stdout}{r.stderr}")
        t.join(15)
        check(isinstance(result.get("r"), tuple), f"the request in flight failed: {result.get('r')!r}")
        eq((result["r"][0], result["r"][2]), (200, b"2.0.0"), "the slow request finished on 2.0.0")
        status, _, body = http_get(c.port, "/", host="shop.test")
        eq((status, body), (200, b"1.0.0"), "new requests on 1.0.0")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")


def test_resource_limits_applied_or_said_where_seen():
    """limits: the rlimits are set on the instance; the cgroup v2 memory and
    CPU limits are either applied (cgroup2 writable here) or the deploy says
    why not, in its phases and in status, and the instance still runs."""
    yaml = YAML.replace("    stop_grace: 5s\n",
                        "    stop_grace: 5s\n    limits:\n      nofile: 777\n      memory_max: 512m\n"
                        "      cpu_max_percent: 150\n")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0")
        r = cli(c, "deploy", "shop", "1.0.0", "--json")
        eq(r.returncode, 0, f"deploy with limits: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        live = managed(c)["live"]
        limits = open(f"/proc/{live['pid']}/limits").read()
        check(any(l.startswith("Max open files") and " 777 " in l for l in limits.splitlines()),
              f"RLIMIT_NOFILE not applied:\n{limits}")
        warnings = [e["detail"] for e in dep["events"] if e["phase"] == "warning"]
        cg = open(f"/proc/{live['pid']}/cgroup").read().strip().splitlines()
        v2 = [l.split(":", 2)[2] for l in cg if l.startswith("0::")]
        applied = False
        if v2 and os.path.exists(f"/sys/fs/cgroup{v2[0]}/memory.max"):
            applied = open(f"/sys/fs/cgroup{v2[0]}/memory.max").read().strip() == str(512 << 20)
        if applied:
            eq(warnings, [], "no warning when the limits are applied")
        else:
            check(warnings and "not applied" in warnings[0], f"no word of the limits not applied: {dep['events']}")
            check("not applied" in (live.get("warning") or ""), f"status does not say it: {live}")
        eq(version_served(c.port), "1.0.0", "it serves either way")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")


def test_metrics_keep_only_the_instances_that_exist():
    """Every deploy runs the new version on a new port: the series of a
    stopped instance leave /metrics once nothing points to it, so a shop that
    ships many times a day does not grow its exposition with every deploy."""
    yaml = YAML.replace("watch: 3s", "watch: 0s").replace("rollback_window: 60s", "rollback_window: 0s")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        ports = []
        for v in ("1.0.0", "1.1.0", "1.0.0", "1.1.0"):
            eq(cli(c, "deploy", "shop", v).returncode, 0, f"deploy {v}")
            for _ in range(5):
                eq(version_served(c.port), v, "version served")
            ports.append(managed(c)["live"]["port"])
        deadline = time.time() + 10
        while time.time() < deadline:
            text = c.metrics()
            targets = set(re.findall(r'cutover_upstream_connections\{service="shop",version="[^"]+",target="([^"]+)"', text))
            versions = set(re.findall(r'cutover_requests_total\{service="shop",version="([^"]+)"', text))
            if targets == {f"127.0.0.1:{ports[-1]}"} and versions == {"1.1.0"}:
                break
            time.sleep(0.2)
        eq(targets, {f"127.0.0.1:{ports[-1]}"}, f"instance series left in /metrics after 4 deploys (ports {ports})")
        eq(versions, {"1.1.0"}, "version series left in /metrics after 4 deploys")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")


def metric_value(text, line_prefix):
    """The value of the series whose text starts with line_prefix ('name{labels}'), or 0."""
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return 0


def test_metrics_per_version_across_three_deploys():
    """A managed service's requests and latencies are counted per version, so
    a dashboard compares versions across deploys; the series of a version
    sum its instances and never go backwards while it runs."""
    yaml = YAML.replace("watch: 3s", "watch: 0s")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        ok = 'cutover_requests_total{service="shop",version="%s",method="GET",status="2xx"}'
        count = 'cutover_request_duration_seconds_count{service="shop",version="%s"}'
        seen = {}
        for step, v in enumerate(("1.0.0", "1.1.0", "1.0.0")):
            r = cli(c, "deploy", "shop", v)
            eq(r.returncode, 0, f"deploy {step + 1} ({v}): {r.stdout}{r.stderr}")
            for _ in range(10):
                eq(version_served(c.port), v, "version served")
            text = c.metrics()
            for ver in ("1.0.0", "1.1.0"):
                n = metric_value(text, ok % ver)
                check(n >= seen.get(ver, 0), f"{ver}'s requests went backwards: {seen.get(ver)} -> {n}")
                seen[ver] = n
            check(seen[v] >= 10 * (1 + (step == 2)), f"after deploy {step + 1}: {v} counted {seen[v]}")
            eq(metric_value(text, count % v), metric_value(text, ok % v), f"{v}: histogram count = requests")
            check(f'target="127.0.0.1:' not in "".join(l for l in text.splitlines() if l.startswith(
                'cutover_requests_total{service="shop"')), "a managed service's requests are per version")
        # the exposition is valid for Prometheus
        p = subprocess.run(["promtool", "check", "metrics"], input=c.metrics(), capture_output=True, text=True)
        eq(p.returncode, 0, f"promtool check metrics: {p.stdout}{p.stderr}")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
