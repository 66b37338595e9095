"""Blue-green deploys of the shop under load: the real daemon runs real
releases of examples/shop; clients that check every response keep
hammering it while versions change.  Zero failed requests on a good
deploy, automatic rollback of the faulty 1.2.0, instant manual rollback,
and a clean shutdown that leaves no process behind."""
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
      max_p99: 300ms
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
            check("rolled-back" in r.stdout, f"rollback output:\n{r.stdout}")
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
            check("p99" in dep["reason"] or "error rate" in dep["reason"], f"reason: {dep['reason']}")
        eq(load.failures, [], "failed requests during the faulty deploy and its rollback")
        eq(version_served(c.port), "1.1.0", "version after the automatic rollback")

        # unknown service / version: clear errors, nothing changes
        r = cli(c, "deploy", "nope", "1.0.0")
        eq(r.returncode, 1, "unknown service exit code")
        check("unknown service" in r.stderr, r.stderr)
        r = cli(c, "deploy", "shop", "9.9.9")
        eq(r.returncode, 1, "unknown version exit code")
        check("no release shop 9.9.9" in r.stdout + r.stderr, r.stdout + r.stderr)
        eq(version_served(c.port), "1.1.0", "version after the refused deploys")

        # every deploy and rollback is in the history, with its phases
        r = cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", "--json")
        eq(r.returncode, 0, f"history: {r.stderr}")
        rows = json.loads(r.stdout)
        eq([x["state"] for x in rows][:3], ["rolled-back", "done", "rolled-back"], "latest results in history")
        check(any(e["to_state"] == "switched" for e in rows[0]["events"]), f"phases missing: {rows[0]}")
        r = cli(c, "history", "--state-dir", f"{c.dir}/state")
        check("rolled-back" in r.stdout and "1.2.0" in r.stdout, f"history table:\n{r.stdout}")

        pids = live_pids(c)
        check(pids, "no instance reported")
        eq(sorted(processes_of(c.dir)), sorted(pids), "processes running releases: only the reported ones")
        eq(c.terminate(timeout=30), 0, "daemon exit status")
        left = processes_of(c.dir)
        for pid in left:
            os.kill(pid, 9)  # clean up before failing
        eq(left, [], "processes of this test still running after the daemon stopped")


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


def test_crash_looping_version_never_gets_traffic():
    """A release whose process dies at once: the deploy fails with the exit
    status, traffic never leaves the running version, and the broken
    instance is not left behind."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        bad = os.path.join(c.dir, "shop-2.0.0")
        with open(bad, "w") as f:
            f.write("#!/bin/sh\necho 'boom: cannot open the database' >&2\nexit 3\n")
        os.chmod(bad, 0o755)
        r = cli(c, "release", "add", "shop", "2.0.0", bad, "--state-dir", f"{c.dir}/state")
        eq(r.returncode, 0, f"release add 2.0.0: {r.stderr}")
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
        eq(c.terminate(timeout=30), 0, "daemon exit status")


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
        with Load(c.port, clients=6) as load:
            for i in range(20):
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
        eq((deploys, rollbacks), (20, 5), "deploys and rollbacks done")
        eq(load.failures, [], f"failed requests over {load.count}")
        check(load.count > 300, f"too little load to mean anything: {load.count}")
        eq(version_served(c.port), "1.0.0", "final version")
        eq(len(processes_of(c.dir)), 2, "the live version and the warm previous one, nothing else")
        eq(c.terminate(timeout=30), 0, "daemon exit status")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


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


def managed(c):
    st = json.loads(cli(c, "status", "--json").stdout)
    return st["managed"][0]


def test_kill9_readopts_the_routed_instance():
    """kill -9 of the daemon: the instances keep running; the next daemon
    re-adopts the one traffic went to (same pid, no duplicate), routes to it
    before serving, and stops the warm previous version."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        before = managed(c)
        eq(before["live"]["version"], "1.1.0", "live before")
        live_pid = before["live"]["pid"]
        os.kill(c.pid, 9)
        c.proc.wait(10)
        check(os.path.exists(f"/proc/{live_pid}"), "the instance died with the daemon")
        eq(http_get(live_pid and before["live"]["port"], "/version", host="x")[0], 200,
           "the instance still serves while the daemon is down")
        restart_daemon(c)
        after = managed(c)
        eq(after["live"]["version"], "1.1.0", "live after the restart")
        eq(after["live"]["pid"], live_pid, "re-adopted, not restarted")
        eq(version_served(c.port), "1.1.0", "traffic after the restart")
        time.sleep(0.5)
        eq(processes_of(c.dir), [live_pid], "only the adopted instance runs (no duplicate, warm one stopped)")
        # it is supervised again: a deploy works and replaces it
        with Load(c.port, clients=2) as load:
            eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy after the restart")
        eq(load.failures, [], "failed requests in the deploy after the restart")
        eq(c.terminate(timeout=30), 0, "daemon exit status")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_kill9_during_a_deploy_aborts_it():
    """kill -9 while green is being health-checked: after the restart the
    deployment is recorded as aborted with the phase it reached, green is
    stopped, and traffic stays on the version that had it."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        slow = os.path.join(c.dir, "shop-1.3.0")
        with open(slow, "w") as f:
            f.write("#!/bin/sh\n# never becomes healthy (the shell stays: its command line names the release)\nsleep 60\n")
        os.chmod(slow, 0o755)
        eq(cli(c, "release", "add", "shop", "1.3.0", slow, "--state-dir", f"{c.dir}/state").returncode, 0,
           "release add 1.3.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        live_pid = managed(c)["live"]["pid"]
        follower = subprocess.Popen([BIN, "deploy", "shop", "1.3.0"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL,
                                    env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})
        deadline = time.time() + 10
        while time.time() < deadline:
            d = managed(c)["deploying"]
            if d and d["phase"] == "health-checking":
                break
            time.sleep(0.05)
        else:
            raise TestFailure("the deploy never reached health-checking")
        time.sleep(0.3)  # let the worker record the phase
        os.kill(c.pid, 9)
        c.proc.wait(10)
        follower.wait(20)
        restart_daemon(c)
        eq(managed(c)["live"]["pid"], live_pid, "the routed instance was re-adopted")
        eq(version_served(c.port), "1.0.0", "traffic stays on 1.0.0")
        rows = json.loads(cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", "--json").stdout)
        eq(rows[0]["state"], "aborted", "the interrupted deployment")
        check("daemon restarted during health-checking" in (rows[0]["reason"] or ""), f"reason: {rows[0]}")
        time.sleep(0.5)
        eq(processes_of(c.dir), [live_pid], "green of the aborted deploy stopped")
        eq(c.terminate(timeout=30), 0, "daemon exit status")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
