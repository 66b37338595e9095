"""cutover under systemd (issue 9, point 3): Type=notify, the watchdog,
socket activation and restarts that refuse no connection, with the real
daemon and real releases of examples/shop.

systemd is not PID 1 here, so sdfixture.py does what systemd does with
contrib/systemd/cutover.{socket,service}: it holds the listening sockets,
starts the daemon with LISTEN_FDS / LISTEN_PID / NOTIFY_SOCKET /
WATCHDOG_USEC, reads its notify messages, restarts it as `systemctl
restart` does (KillMode=process: SIGTERM to the daemon only) and kills it
when the watchdog is not petted.  One test uses Debian's
systemd-socket-activate instead.

The load (MixedLoad) is the deploy tests' mix: keep-alive GETs, a new
connection per request, 300 ms requests, 1 MiB downloads checked byte for
byte and 1 MiB POSTs; it counts refused connections apart from other
failures and keeps the longest time a request waited.  Each test prints
what it measured.
"""
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter

from harness import *
from sdfixture import SdFixture
from shopenv import add_releases, cli, live_pids

YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
timeouts:
  drain: 10s
services:
  shop:
    run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}
    env:
      SHOP_DB: {DIR}/shop.db
    health:
      path: /health
      interval: 100ms
      timeout: 80ms
      start_grace: 10s
    stop_grace: 5s
    deploy:
      timeout: 20s
      watch: 0s
      rollback_window: 10m
    routes:
      - path: /
"""

MIB = 1 << 20
DOWNLOAD = b"".join(b"%015x\n" % o for o in range(0, MIB, 16))
ITEM = b'{"product_id":3,"quantity":1}'
POST_BODY = ITEM + b" " * (MIB - len(ITEM))  # 1 MiB of JSON (the shop takes at most 1 MiB)


class StaleConnection(Exception):
    """A request on a reused keep-alive connection got no answer at all: the
    server had closed the connection while it was idle."""


class MixedLoad:
    """Clients that check every response.  Each picks at random (seeded by
    its number) among: a keep-alive GET, a GET on a new connection, a 300 ms
    request, a 1 MiB download, and a cart made then filled by a 1 MiB POST.
    Bounded: at most max_requests each and max_seconds in all.  As HTTP
    clients do, a request that finds its kept-alive connection closed
    before any answer is sent again on a new connection (counted in
    `stale`); any other error is a failure."""
    KINDS = ("keepalive", "new-connection", "slow", "download", "post")

    def __init__(self, port, clients=5, max_requests=5000, max_seconds=100):
        self.port, self.max_requests, self.max_seconds = port, max_requests, max_seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.count, self.refused, self.stale, self.failures = 0, 0, 0, []
        self.longest, self.versions = {}, Counter()  # longest wait by kind of request
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def _request(self, kind, conn, method, path, body=None, headers=None):
        t, reused = time.monotonic(), getattr(conn, "uses", 0) > 0
        try:
            conn.request(method, path, body=body, headers={"Host": "shop.test", **(headers or {})})
            r = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            if reused:
                raise StaleConnection(repr(e))
            raise
        conn.uses = getattr(conn, "uses", 0) + 1
        data = r.read()
        with self.lock:
            self.count += 1
            self.longest[kind] = max(self.longest.get(kind, 0.0), time.monotonic() - t)
            self.versions[r.getheader("X-Shop-Version")] += 1
        return r, data

    def _one(self, kind, conn):
        """One exchange of this kind; returns the connection to keep."""
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if kind == "keepalive":
            r, body = self._request(kind, conn, "GET", "/api/catalog")
            ok = r.status == 200 and body.startswith(b"[")
        elif kind == "new-connection":
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                r, body = self._request(kind, c, "GET", "/api/catalog/3", headers={"Connection": "close"})
            finally:
                c.close()
            ok = r.status == 200 and b'"id"' in body
        elif kind == "slow":
            r, body = self._request(kind, conn, "GET", "/api/slow?ms=300")
            ok = r.status == 200 and b"300" in body
        elif kind == "download":
            r, body = self._request(kind, conn, "GET", "/api/download?mb=1")
            ok = r.status == 200 and body == DOWNLOAD
        else:
            r, body = self._request(kind, conn, "POST", "/api/carts", body=b"")
            ok = r.status == 201
            if ok:
                cart = json.loads(body)["cart_id"]
                r, body = self._request(kind, conn, "POST", f"/api/carts/{cart}/items", body=POST_BODY,
                                        headers={"Content-Type": "application/json"})
                ok = r.status == 200 and b'"product_id":3' in body.replace(b" ", b"")
        if not ok:
            raise AssertionError(f"{kind}: {r.status} {body[:100]!r}")
        return None if r.will_close else conn

    def run(self, i):
        conn, n, deadline = None, 0, time.monotonic() + self.max_seconds
        pick = random.Random(i)  # each client its own order: they do not fall into step
        while not self.stop.is_set() and n < self.max_requests and time.monotonic() < deadline:
            kind = pick.choice(self.KINDS)
            n += 1
            try:
                try:
                    conn = self._one(kind, conn)
                except StaleConnection:
                    # a kept-alive connection closed while idle, before any
                    # answer (a draining daemon closes idle connections after
                    # a grace): what HTTP clients retry on a new connection
                    with self.lock:
                        self.stale += 1
                    conn = self._one(kind, None)
            except ConnectionRefusedError:
                with self.lock:
                    self.refused += 1
                conn = None
            except Exception as e:
                with self.lock:
                    self.failures.append(f"{kind}: {e!r}")
                conn = None

    def summary(self):
        waits = ", ".join(f"{k} {v * 1000:.0f}" for k, v in sorted(self.longest.items()))
        return (f"{self.count} requests, {len(self.failures)} failed, {self.refused} refused, "
                f"{self.stale} retried on a new connection (kept-alive one closed while idle); "
                f"longest wait (ms): {waits}; versions {dict(self.versions)}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


class Env:
    """A test directory, a config of the shop, and an SdFixture that holds
    the proxy socket and the admin Unix socket (sockets=False: none, the
    daemon binds them itself).  Leaving it kills the daemon and every
    instance this test started (by pid), then removes the directory."""

    def __init__(self, sockets=True, watchdog_sec=None, extra_sockets=(), **fx_args):
        self.dir = tempfile.mkdtemp(prefix="cutover-sd-")
        self.port, self.admin = free_port(), free_port()
        text = YAML.replace("${", "\x00").replace("{DIR}", self.dir).replace("{PORT}", str(self.port))
        self.cfg_path = os.path.join(self.dir, "cutover.yml")
        with open(self.cfg_path, "w") as f:
            f.write(text.replace("{ADMIN}", str(self.admin)).replace("\x00", "${"))
        self.sock_path = os.path.join(self.dir, "state", "admin.sock")
        socks = []
        if sockets:
            socks = [("proxy", SdFixture.tcp(self.port)), ("admin", SdFixture.unix(self.sock_path))]
        self.fx = SdFixture([BIN, "daemon", "--config", self.cfg_path], self.dir, sockets=socks + list(extra_sockets),
                            watchdog_sec=watchdog_sec, **fx_args)

    def logs(self):
        with open(os.path.join(self.dir, "stderr.log"), errors="replace") as f:
            return f.read()

    def start_ready(self):
        """Start the daemon and wait for its READY=1; returns its pid."""
        m = self.fx.mark()
        pid = self.fx.start()
        try:
            self.fx.wait("READY=1", after=m, pid=pid, timeout=20)
        except AssertionError as e:
            raise TestFailure(f"{e}\n{self.logs()[-2000:]}")
        return pid

    def deploy(self, *versions):
        add_releases(self, *versions)
        for v in versions:
            r = cli(self, "deploy", "shop", v)
            eq(r.returncode, 0, f"deploy {v}: {r.stdout}{r.stderr}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fx.close()
        # the daemons (an upgrade's too) and the instances name this directory
        for pid in pids_under(self.dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {self.dir}: CUTOVER_KEEP_TMP=1)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def get_version(port, timeout=30):
    status, headers, body = http_get(port, "/version", host="shop.test", timeout=timeout)
    eq(status, 200, f"GET /version: {body[:200]!r}")
    return json.loads(body)["version"]


def instance_pids(e):
    """The pids of the shop's instances (live and warm previous), through
    the admin socket: it must answer."""
    r = cli(e, "status", "--json")
    eq(r.returncode, 0, f"cutover status (the admin socket): {r.stderr}")
    return sorted(live_pids(e))


def alive(pid):
    """pid runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def notices_from(fx, pid, after=0):
    return [n for n in fx.notices[after:] if n.pid == pid]


# ------------------------------------------------------------------ tests


def test_ready_only_after_listening_and_readopting():
    """READY=1 means: the daemon listens (nothing is refused once it is
    sent, also without socket activation) and it re-adopted the instances:
    the same pids, and a request that waited in the accept queue while no
    daemon ran is served by the last known-good version."""
    # without socket activation: the daemon binds; a connect that starts
    # after READY=1 was received is never refused
    with Env(sockets=False) as e:
        probes, stop = [], threading.Event()

        def probe():
            while not stop.is_set():
                t = e.fx.now()
                probes.append((t, not connect_refused(e.port)))
                time.sleep(0.002)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            pid = e.fx.start()
            ready = e.fx.wait("READY=1", pid=pid, timeout=20)
            time.sleep(0.1)
        finally:
            stop.set()
            prober.join()
        after = [ok for t, ok in probes if t > ready.t]
        check(after and all(after), f"a connect after READY=1 was refused: {probes[-20:]}")
        eq(cli(e, "status").returncode, 0, "cutover status right after READY=1 (admin socket)")
        e.fx.stop()

    # under socket activation, across a restart
    with Env() as e:
        first = e.start_ready()
        e.deploy("1.0.0", "1.1.0")  # 1.1.0 live, 1.0.0 warm for a rollback
        before = instance_pids(e)
        eq(len(before), 2, "instances of 1.1.0 and the warm 1.0.0")
        m = e.fx.mark()
        e.fx.stop()
        stopping = e.fx.wait("STOPPING=1", after=m, pid=first)
        # no daemon runs: a request now waits in the accept queue of the
        # socket the fixture holds
        queued = {}

        def send():
            t = time.monotonic()
            try:
                queued["version"] = get_version(e.port)
            except Exception as ex:
                queued["error"] = repr(ex)
            queued["wait"] = time.monotonic() - t

        waiter = threading.Thread(target=send)
        waiter.start()
        time.sleep(0.3)
        check(waiter.is_alive(), f"the request did not wait for the daemon: {queued}")
        m = e.fx.mark()
        second = e.fx.start()
        ready = e.fx.wait("READY=1", after=m, pid=second, timeout=20)
        eq(get_version(e.port), "1.1.0", "the first request after READY=1")
        waiter.join(30)
        eq(queued.get("version"), "1.1.0", f"the request queued while no daemon ran: {queued}")
        eq(instance_pids(e), before, "instance pids after the restart")
        # the re-adoption was done (and logged) before READY=1 was sent
        log = e.logs()
        recovered = [l for l in log.splitlines() if "recovered:" in l]
        check(recovered and "2 instances adopted" in recovered[-1], f"no re-adoption logged: {log[-1500:]}")
        ts = datetime.datetime.strptime(recovered[-1].split()[0], "ts=%Y-%m-%dT%H:%M:%S.%fZ")
        logged = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
        check(logged <= ready.wall, f"READY=1 ({ready.wall:.3f}) before the re-adoption ({logged:.3f})")
        eq(notices_from(e.fx, second, m)[0].text, "READY=1\nSTATUS=serving", "the new daemon's first message")
        print(f"    STOPPING=1 at {stopping.t:.3f}s; restart to READY=1 in {ready.t - stopping.t:.3f}s; "
              f"the queued request waited {queued['wait'] * 1000:.0f} ms")


def test_twenty_restarts_under_socket_activation_refuse_nothing():
    """20 `systemctl restart` (SIGTERM to the daemon, start again) under
    socket activation, under load: no failed request, no refused
    connection, the instances never change and only the live version
    answers."""
    with Env() as e:
        e.start_ready()
        e.deploy("1.0.0", "1.1.0")
        before = instance_pids(e)
        times = []
        with MixedLoad(e.port, clients=8) as load:
            time.sleep(0.5)
            for i in range(rounds(20, 5)):
                m = e.fx.mark()
                t = time.monotonic()
                stop_s = e.fx.stop()
                pid = e.fx.start()
                e.fx.wait("READY=1", after=m, pid=pid, timeout=20)
                times.append((stop_s, time.monotonic() - t))
                eq(instance_pids(e), before, f"instance pids after restart {i + 1}")
                time.sleep(0.15)
            time.sleep(0.5)
        print(f"    {load.summary()}")
        print(f"    restart: stop (drain) longest {max(s for s, _ in times) * 1000:.0f} ms, "
              f"stop to READY=1 longest {max(r for _, r in times) * 1000:.0f} ms")
        eq(load.failures[:5], [], "failed requests")
        eq(load.refused, 0, "refused connections")
        check(load.count > 100, f"the load hardly ran: {load.summary()}")
        eq(set(load.versions), {"1.1.0"}, "versions that answered")


def test_sighup_and_sigterm_notifications():
    """SIGHUP (ExecReload): RELOADING=1 (with MONOTONIC_USEC) then READY=1,
    also when the new file is refused; SIGTERM: STOPPING=1, exit 0."""
    with Env() as e:
        pid = e.start_ready()
        m = e.fx.mark()
        e.fx.reload()
        reloading = e.fx.wait("RELOADING=1", after=m, pid=pid)
        check("MONOTONIC_USEC" in reloading.fields, f"RELOADING=1 without MONOTONIC_USEC: {reloading}")
        ready = e.fx.wait("READY=1", after=m, pid=pid)
        check(reloading.t <= ready.t and e.fx.notices.index(reloading) < e.fx.notices.index(ready),
              f"READY=1 before RELOADING=1: {e.fx.notices[m:]}")
        eq(e.fx.state, "running", "the service's state after the reload")
        # a broken file: the old configuration stays, and systemd hears so
        good = open(e.cfg_path).read()
        with open(e.cfg_path, "w") as f:
            f.write(good.replace("listen: 127.0.0.1:", "listen: 127.0.0.1:x"))
        m = e.fx.mark()
        e.fx.reload()
        e.fx.wait("RELOADING=1", after=m, pid=pid)
        failed = e.fx.wait("READY=1", after=m, pid=pid)
        check("failed" in failed.fields.get("STATUS", ""), f"STATUS after a refused reload: {failed}")
        eq(get_version_or_503(e.port), 503, "the proxy still answers (no version deployed: 503)")
        m = e.fx.mark()
        e.fx.stop()
        e.fx.wait("STOPPING=1", after=m, pid=pid)
        exits = [ev for ev in e.fx.events if ev["kind"] == "exit" and ev["pid"] == pid]
        eq([ev["status"] for ev in exits], [0], "exit status after SIGTERM")
        eq([ev for ev in e.fx.events if ev["kind"] == "stop-by-notify"], [], "STOPPING=1 without a stop")


def get_version_or_503(port):
    status, _, _ = http_get(port, "/version", host="shop.test")
    return status


def test_watchdog_restarts_a_stuck_daemon():
    """WatchdogSec=1: a daemon whose loop is stuck (SIGSTOP) pets no more;
    the fixture, as systemd, sends SIGABRT (+SIGCONT) and starts it again.
    The instances survive, a request made meanwhile is served after the
    restart, and requests go on."""
    with Env(watchdog_sec=1.0, abort_timeout=2.0) as e:
        pid = e.start_ready()
        e.deploy("1.0.0")
        before = instance_pids(e)
        time.sleep(1.5)
        pets = [n for n in notices_from(e.fx, pid) if n.has("WATCHDOG=1")]
        check(len(pets) >= 2, f"the daemon does not pet the watchdog: {e.fx.notices[-5:]}")
        with MixedLoad(e.port, clients=3) as load:
            time.sleep(0.5)
            t_stop = e.fx.now()
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.3)
            queued = {}

            def send():
                t = time.monotonic()
                queued["version"] = get_version(e.port)
                queued["wait"] = time.monotonic() - t

            waiter = threading.Thread(target=send)
            waiter.start()
            wd = e.fx.wait_event("watchdog", after_t=t_stop, timeout=5)
            restarted = e.fx.wait_event("start", after_t=wd["t"], timeout=10)
            new = restarted["pid"]
            e.fx.wait("READY=1", pid=new, timeout=20)
            waiter.join(30)
            count_at_restart = load.count
            time.sleep(1.0)
        exits = [ev for ev in e.fx.events if ev["kind"] == "exit" and ev["pid"] == pid]
        eq([ev["status"] for ev in exits], [-signal.SIGABRT], "the stuck daemon's end")
        check(wd["since_pet"] >= 1.0, f"watchdog fired early: {wd}")
        eq(queued.get("version"), "1.0.0", f"the request made while stuck: {queued}")
        eq(instance_pids(e), before, "instance pids after the watchdog restart")
        check(load.count > count_at_restart + 5, f"requests did not resume: {load.summary()}")
        eq(get_version(e.port), "1.0.0", "after the restart")
        # what was in flight in the stuck daemon was cut when it was killed;
        # nothing was refused (the socket is the fixture's)
        print(f"    watchdog fired {wd['since_pet']:.2f}s after the last pet; stuck to READY=1 again "
              f"{e.fx.notices[-1].t - t_stop:.2f}s; request made while stuck waited {queued['wait']:.2f}s")
        print(f"    {load.summary()} (failures: requests in flight in the stuck daemon)")
        eq(load.refused, 0, "refused connections")


def test_upgrade_hands_the_service_to_the_new_process():
    """`cutover upgrade` under the fixture.  A failed one leaves the old
    daemon the main process.  A good one: the new process says
    MAINPID=<its own pid> with READY=1, the old one says nothing more (no
    STOPPING=1, which would make systemd stop the service; no watchdog
    pets) and exits; the watchdog is then petted by the new one, and a
    restart stops the new main process and starts a daemon that re-adopts
    the instances.  Under load: nothing fails."""
    with Env(watchdog_sec=1.5) as e:
        old = e.start_ready()
        e.deploy("1.0.0")
        before = instance_pids(e)
        with MixedLoad(e.port, clients=4) as load:
            time.sleep(0.5)
            # a new binary that exits at once: the old daemon stays the
            # main process (it says so) and serves on
            broken = os.path.join(e.dir, "broken-cutover")
            with open(broken, "w") as f:
                f.write("#!/bin/sh\nexit 1\n")
            os.chmod(broken, 0o755)
            m = e.fx.mark()
            r = cli(e, "upgrade", "--binary", broken)
            check(r.returncode != 0, f"an upgrade to a binary that exits at once: {r.stdout}{r.stderr}")
            taken = e.fx.wait("MAINPID", after=m, pid=old)
            eq(taken.fields["MAINPID"], str(old), "MAINPID= after the failed upgrade")
            check("upgrade failed" in taken.fields.get("STATUS", ""), f"STATUS: {taken}")
            eq(e.fx.main_pid, old, "the main process after the failed upgrade")
            m = e.fx.mark()
            r = cli(e, "upgrade", "--binary", BIN)
            eq(r.returncode, 0, f"cutover upgrade: {r.stdout}{r.stderr}")
            handover = e.fx.wait("MAINPID", after=m, timeout=20)
            new = int(handover.fields["MAINPID"])
            eq(handover.pid, new, "MAINPID= is sent by the new process itself")
            check(new != old, "a new process")
            check(handover.has("READY=1"), f"MAINPID= without READY=1: {handover}")
            check(str(old) in handover.fields.get("STATUS", ""), f"STATUS: {handover}")
            eq(e.fx.main_pid, new, "the main process after the upgrade")
            old_exit = e.fx.wait_event("exit-other", timeout=20)
            eq((old_exit["pid"], old_exit["status"]), (old, 0), "the old daemon exits 0 after draining")
            time.sleep(2.5)  # more than WatchdogSec: the new daemon pets it (or the fixture acts)
            eq(instance_pids(e), before, "instance pids after the upgrade")
            with load.lock:
                upgrade_summary, load.longest = load.summary(), {}
            m2 = e.fx.mark()
            e.fx.restart()  # the main process is not the fixture's child any more
            third = e.fx.main_pid
            e.fx.wait("READY=1", after=m2, pid=third, timeout=20)
            e.fx.wait("STOPPING=1", after=m2, pid=new)
            time.sleep(0.5)
        late = [n for n in e.fx.notices[m:] if n.pid == old and n.t > handover.t + 0.2]
        eq(late, [], "messages from the old daemon after the hand-over")
        eq([n for n in e.fx.notices[m:] if n.pid == old and n.has("STOPPING=1")], [], "STOPPING=1 from the old daemon")
        eq([ev for ev in e.fx.events if ev["kind"] in ("stop-by-notify", "watchdog")], [], "systemd would have acted")
        eq(instance_pids(e), before, "instance pids after the upgrade and a restart")
        print(f"    failed upgrade, upgrade: {upgrade_summary}")
        print(f"    all, and the longest waits of the restart after: {load.summary()}")
        eq(load.failures[:5], [], "failed requests")
        eq(load.refused, 0, "refused connections")


def test_unmatched_inherited_socket_is_closed_and_logged():
    """A socket in LISTEN_FDS that no configured address names: the
    daemon logs it, closes its copy and serves on the others."""
    stray_port = free_port()
    stray = SdFixture.tcp(stray_port)
    inode = os.fstat(stray.fileno()).st_ino
    with Env(extra_sockets=[("stray", stray)]) as e:
        pid = e.start_ready()
        log = e.logs()
        check(f"socket 127.0.0.1:{stray_port} (stray) from systemd: the configuration does not listen there; closed"
              in log, f"not logged: {log[-1500:]}")
        held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        check(f"socket:[{inode}]" not in held, f"the daemon still holds the stray socket: {held}")
        eq(get_version_or_503(e.port), 503, "the proxy serves on its own socket (nothing deployed: 503)")
        eq(cli(e, "status").returncode, 0, "the admin socket")


def test_systemd_socket_activate():
    """Debian's systemd-socket-activate (the `systemd` package): it binds
    the proxy address and the admin socket, waits for a first connection,
    then execs the daemon with LISTEN_FDS=2 and NOTIFY_SOCKET (-E).  The
    first request, made before any daemon ran, is served by the version
    that kept running since the previous daemon."""
    tool = shutil.which("systemd-socket-activate")
    check(tool, "systemd-socket-activate is missing: install the systemd package (scripts/bootstrap does)")
    with Env(sockets=False) as e:
        first = e.start_ready()
        e.deploy("1.0.0")
        before = instance_pids(e)
        e.fx.stop()
        eq(e.fx.main_pid, None, "the daemon exited")
        check(connect_refused(e.port), "the port is free again")
        proc = subprocess.Popen([tool, "-l", f"127.0.0.1:{e.port}", "-l", e.sock_path, "--fdname=proxy:admin",
                                 "-E", f"NOTIFY_SOCKET={e.fx.notify_path}", BIN, "daemon", "--config", e.cfg_path],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(e.dir, "activate.log"), "w"),
                                cwd=e.dir)
        try:
            m = e.fx.mark()
            end = time.monotonic() + 5
            while True:  # refused only until systemd-socket-activate has bound
                try:
                    version = get_version(e.port)
                    break
                except ConnectionRefusedError:
                    check(time.monotonic() < end, "systemd-socket-activate never listened")
                    time.sleep(0.02)
            eq(version, "1.0.0", "the first request, which starts the daemon")
            ready = e.fx.wait("READY=1", after=m, pid=proc.pid, timeout=20)
            eq(instance_pids(e), before, "instance pids")
            log = open(os.path.join(e.dir, "activate.log")).read()
            check("socket activation: 2 sockets from systemd" in log, f"log: {log[-1500:]}")
            check(f"listening on 127.0.0.1:{e.port}: socket from systemd" in log, f"log: {log[-1500:]}")
            proc.send_signal(signal.SIGTERM)
            eq(proc.wait(20), 0, "exit status after SIGTERM")
            e.fx.wait("STOPPING=1", after=m, pid=proc.pid)
            print(f"    READY=1 {ready.t:.2f}s into the test, from pid {proc.pid} (= systemd-socket-activate, exec'd)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


UNITS = os.path.join(ROOT, "contrib", "systemd")


def unit_lines(name):
    """The KEY=VALUE lines of a unit file in contrib/systemd (comments out)."""
    with open(os.path.join(UNITS, name)) as f:
        return [l.strip() for l in f if "=" in l and not l.lstrip().startswith("#")]


def test_unit_files_verify():
    """contrib/systemd passes `systemd-analyze verify` (with ExecStart= on
    the binary under test), and keeps the directives the rest of this file
    relies on."""
    tool = shutil.which("systemd-analyze")
    check(tool, "systemd-analyze is missing: install the systemd package (scripts/bootstrap does)")
    d = tempfile.mkdtemp(prefix="cutover-units-")
    try:
        names = sorted(f for f in os.listdir(UNITS) if f.endswith((".service", ".socket")))
        eq(names, ["cutover-stop-services.service", "cutover.service", "cutover.socket"], "unit files")
        for n in names:
            with open(os.path.join(UNITS, n)) as f, open(os.path.join(d, n), "w") as out:
                out.write(f.read().replace("/usr/bin/cutover", BIN))
        r = subprocess.run([tool, "verify", *names], cwd=d, capture_output=True, text=True, timeout=60)
        eq((r.returncode, r.stdout + r.stderr), (0, ""), "systemd-analyze verify")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    service = unit_lines("cutover.service")
    for want in ("Type=notify", "NotifyAccess=all", "KillMode=process", "Restart=on-failure", "Delegate=yes",
                 "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=cutover", "ProtectSystem=strict"):
        check(want in service, f"cutover.service: no {want}")
    for never in ("ProtectControlGroups=", "PrivateTmp=", "MemoryDenyWriteExecute="):
        check(not any(l.startswith(never) for l in service), f"cutover.service sets {never}")
    watchdog = [l for l in service if l.startswith("WatchdogSec=")]
    check(watchdog, "cutover.service: no WatchdogSec=")
    stop = [l for l in unit_lines("cutover-stop-services.service")
            if l.startswith(("Requires=", "BindsTo=", "PartOf=", "Requisite="))]
    eq(stop, [], "cutover-stop-services.service must not follow restarts of cutover.service")
    socket_unit = unit_lines("cutover.socket")
    check("ListenStream=/var/lib/cutover/admin.sock" in socket_unit and "SocketMode=0600" in socket_unit,
          f"cutover.socket: the admin socket: {socket_unit}")


def test_stop_services_execstop():
    """The ExecStop= of cutover-stop-services.service, as written there,
    against a daemon under socket activation: every instance is stopped,
    the daemon says STOPPING=1 and exits 0, and nothing restarts it."""
    execstop = [l.split("=", 1)[1] for l in unit_lines("cutover-stop-services.service")
                if l.startswith("ExecStop=")]
    eq(len(execstop), 1, "ExecStop= lines")
    argv = execstop[0].lstrip("-").split()
    eq(argv[:2], ["/usr/bin/cutover", "shutdown"], "ExecStop=")
    with Env() as e:
        pid = e.start_ready()
        e.deploy("1.0.0", "1.1.0")
        instances = instance_pids(e)
        eq(len(instances), 2, "instances")
        argv = [BIN] + [e.cfg_path if a == "/etc/cutover/cutover.yml" else a for a in argv[1:]]
        m = e.fx.mark()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, f"{' '.join(argv)}: {r.stdout}{r.stderr}")
        e.fx.wait("STOPPING=1", after=m, pid=pid)
        check(e.fx.wait_dead(30), "the daemon did not exit")
        exits = [ev["status"] for ev in e.fx.events if ev["kind"] == "exit" and ev["pid"] == pid]
        eq(exits, [0], "the daemon's exit status")
        poll_until(lambda: not any(alive(p) for p in instances), timeout=15, what="the instances to exit")
        time.sleep(0.5)
        eq(e.fx.main_pid, None, "restarted after a clean stop")
