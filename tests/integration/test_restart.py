"""Restarting and upgrading cutover itself under load (issue 9): the real
daemon, real releases of examples/shop, and the load mix of loadmix.py
(keep-alive, a new connection per request, slow requests, 1 MiB downloads
checked byte for byte, POSTs), every failure counted by kind.

  - SIGTERM leaves the instances running; the next daemon re-adopts them
    before it accepts, and its very first answer comes from the last
    known-good version (never 503 "no targets");
  - 20 `cutover upgrade` hand-offs and one SIGUSR2: 0 failed requests, same
    instances, a new daemon each time, the old one gone;
  - 20 plain SIGTERM + start: refused connections only (the gap is printed;
    its speed belongs to bench/restart);
  - a failed upgrade (a binary that exits at once, one that is never ready)
    leaves the old daemon serving with 0 failed requests;
  - startup.unready queue / retry-after when the instances did not survive;
  - cutover shutdown with and without --stop-services;
  - a second daemon on the same listen or admin address fails at once;
  - a deploy sent while the daemon drains is refused and starts nothing;
  - the two races of a drain that the load above ran into (fixed in the proxy).
(kill -9 in each deploy phase: test_recovery.py.)"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import *
from shopenv import *
from loadmix import LoadMix


def status_json(c):
    r = cli(c, "status", "--json")
    eq(r.returncode, 0, f"cutover status: {r.stderr}")
    return json.loads(r.stdout)


def alive(pid):
    """True while pid runs (a zombie no longer does)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout, what):
    end = time.time() + timeout
    while alive(pid) and time.time() < end:
        time.sleep(0.02)
    check(not alive(pid), f"{what} (pid {pid}) still runs {timeout}s later")


def instance_pids(c):
    """The live and warm instances' pids as the daemon reports them."""
    return sorted(live_pids(c))


def upgraded_from(c, old):
    """The pid of the daemon that answers, if it took over from old."""
    try:
        status, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/upgrade")
    except OSError:
        return None
    up = json.loads(body) if status == 200 else {}
    return up["pid"] if up.get("upgraded_from_pid") == old else None


def start_daemon(c, env=None):
    """A new `cutover daemon` on c's configuration and state (the previous
    one is gone); returns once its admin socket answers."""
    err = open(os.path.join(c.dir, "stderr.log"), "a")
    c.proc = subprocess.Popen([BIN, "daemon", "--config", c.cfg_path], stdout=err, stderr=err, cwd=c.dir,
                              env={**os.environ, **(env or {})})
    err.close()
    end = time.time() + 10
    while time.time() < end:
        if cli(c, "status").returncode == 0:
            return
        check(c.proc.poll() is None, f"the daemon exited with {c.proc.returncode}: {c.logs()[-1500:]}")
        time.sleep(0.02)
    raise TestFailure("the new daemon does not answer on its admin socket")


def sigterm_and_wait(c, timeout=20):
    os.kill(c.pid, signal.SIGTERM)
    try:
        rc = c.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"the daemon did not exit {timeout}s after SIGTERM")
    eq(rc, 0, "daemon exit status after SIGTERM")


def stop_everything(c):
    """`cutover shutdown --stop-services` on whichever daemon runs now, and
    check that nothing of the test is left."""
    pid = status_json(c)["pid"]
    r = cli(c, "shutdown", "--stop-services")
    eq(r.returncode, 0, f"cutover shutdown --stop-services: {r.stdout}{r.stderr}")
    wait_gone(pid, 10, "the daemon after cutover shutdown --stop-services")
    if c.proc.pid == pid:
        c.proc.wait(5)
    eq(processes_of(c.dir), [], "instances left after cutover shutdown --stop-services")


def expect_only(load, kinds, what):
    bad = {k: v for k, v in load.failed_kinds().items() if k not in kinds}
    eq(bad, {}, f"failures other than {kinds} {what}: {load.describe()}")


def first_answer(port, out, deadline):
    """From now on, connect to port until something accepts (refused while
    nothing listens), then GET /version once: out gets (status, headers,
    body).  The first request a new daemon answers."""
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            time.sleep(0.001)
            continue
        try:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
            data, how = read_until_close(s, timeout=10)
        finally:
            s.close()
        out.append(parse_responses(data)[0] if data else (None, {}, how.encode()))
        return


def test_sigterm_leaves_instances_and_the_next_daemon_readopts_them():
    """SIGTERM: the daemon drains and exits, 1.1.0 (live) and 1.0.0 (warm)
    keep running with the same pids; the next daemon re-adopts both before
    it accepts, so the very first request it answers is served by 1.1.0, and
    the load sees refused connections while nothing listens, never a 503."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        before = managed(c)
        pids = instance_pids(c)
        eq(len(pids), 2, "live and warm instances")
        with LoadMix(c.port) as load:
            time.sleep(0.5)
            sigterm_and_wait(c)
            eq(sorted(processes_of(c.dir)), pids, "the instances outlive the daemon (same pids)")
            eq(http_get(before["live"]["port"], "/version", host="x")[0], 200, "the live instance serves alone")
            first = []
            prober = threading.Thread(target=first_answer, args=(c.port, first, time.time() + 20))
            prober.start()
            time.sleep(0.05)  # the prober is refused at least once
            start_daemon(c)
            prober.join(20)
            time.sleep(0.5)
        check(first, "no answer from the new daemon")
        status, headers, body = first[0]
        eq(status, 200, f"the first request the new daemon answered ({body[:120]!r})")
        eq(json.loads(body)["version"], "1.1.0", "the version of the very first answer")
        eq(instance_pids(c), pids, "instances re-adopted, not restarted")
        after = managed(c)
        eq((after["live"]["version"], after["live"]["pid"]), ("1.1.0", before["live"]["pid"]), "live")
        eq((after["previous"]["version"], after["previous"]["pid"]), ("1.0.0", before["previous"]["pid"]), "warm")
        expect_only(load, ("refused",), "across the restart")
        check(load.ok > 50, f"too little load: {load.describe()}")
        eq(set(load.versions), {"1.1.0"}, "versions that answered the load")
        check("recovered: 2 instances adopted" in c.logs(), "the new daemon's log tells the adoption")
        stop_everything(c)


def test_twenty_upgrades_under_load_fail_no_request():
    """20 `cutover upgrade` hand-offs of the listening and admin sockets under
    the load mix, and one by SIGUSR2: not one failed request; each time a
    new daemon pid, the old daemon gone (it drains and exits), the same
    instance pids."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        pids = instance_pids(c)
        daemons = [status_json(c)["pid"]]
        eq(daemons[0], c.pid, "GET /v1/status pid")
        with LoadMix(c.port) as load:
            time.sleep(0.5)
            for i in range(rounds(20, 5)):
                old = daemons[-1]
                r = cli(c, "upgrade", "--json", timeout=60)
                eq(r.returncode, 0, f"upgrade {i + 1}: {r.stdout}{r.stderr}")
                out = json.loads(r.stdout)
                eq(out["old_pid"], old, f"upgrade {i + 1}: the daemon that handed over")
                new = out["new_pid"]
                eq(status_json(c)["pid"], new, f"upgrade {i + 1}: the daemon that answers now")
                wait_gone(old, 15, f"upgrade {i + 1}: the old daemon")
                if old == c.pid:
                    c.proc.wait(5)
                daemons.append(new)
                eq(instance_pids(c), pids, f"upgrade {i + 1}: instances (re-adopted, not restarted)")
            # SIGUSR2 does the same with the daemon's own binary
            old = daemons[-1]
            os.kill(old, signal.SIGUSR2)
            new = wait_until(lambda: upgraded_from(c, old), 10, what="the daemon started by SIGUSR2 to answer")
            wait_gone(old, 15, "the daemon upgraded by SIGUSR2")
            daemons.append(new)
            eq(instance_pids(c), pids, "after SIGUSR2: instances")
            time.sleep(0.5)
        eq(len(set(daemons)), rounds(20, 5) + 2, f"a new daemon each time: {daemons}")
        eq(load.failed(), 0, f"failed requests over {rounds(20, 5)} upgrades: {load.describe()}")
        check(load.ok > 300 and all(n > 0 for n in load.by_client.values()),
              f"too little load: {load.by_client}")
        eq(set(load.versions), {"1.1.0"}, "versions that answered")
        print(f"    {rounds(20, 5)} upgrades + 1 SIGUSR2: {load.ok} requests, 0 failed, longest wait {load.max_wait_ms:.0f} ms "
              f"({load.max_wait_what})")
        # the last daemon deploys: it really owns the instances
        eq(cli(c, "rollback", "shop").returncode, 0, "rollback on the upgraded daemon")
        eq(version_served(c.port), "1.0.0", "after the rollback")
        stop_everything(c)


def test_twenty_plain_restarts_fail_only_as_refused():
    """20 times SIGTERM, then a new daemon (no socket hand-off): while nothing
    listens connections are refused, and that is the only kind of failure:
    no reset (not even of a handshake in flight when the listener closes),
    no 503, no truncated download.  The gap (first refusal to the first
    answer on a new connection) is printed; bench/restart measures it."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = instance_pids(c)
        with LoadMix(c.port) as load:
            time.sleep(0.5)
            for i in range(rounds(20, 5)):
                sigterm_and_wait(c)
                start_daemon(c)
                eq(instance_pids(c), pids, f"restart {i + 1}: instances re-adopted")
                n = load.ok
                wait_until(lambda: load.ok > n + 20, 10, what=f"restart {i + 1}: the load served again")
        expect_only(load, ("refused",), f"over {rounds(20, 5)} restarts")
        gaps = [g for g in load.gaps() if g is not None]
        check(load.ok > 300, f"too little load: {load.describe()}")
        eq(processes_of(c.dir), pids, "no instance started or left behind")
        if gaps:
            gaps.sort()
            print(f"    {rounds(20, 5)} plain restarts: {load.ok} ok, {load.failures['refused']} refused in {len(gaps)} gaps, "
                  f"gap median {gaps[len(gaps) // 2]:.0f} ms, max {gaps[-1]:.0f} ms; longest wait "
                  f"{load.max_wait_ms:.0f} ms, {load.waits_over_1s} requests waited 1 s or more")
        stop_everything(c)


NEVER_READY = "#!/bin/sh\n# a new binary that never says ready\nwhile :; do sleep 0.2; done\n"


def test_failed_upgrade_leaves_the_old_daemon_serving():
    """`cutover upgrade --binary` a program that exits 1 at once, then one that
    never gets ready (timeouts.upgrade: 2s): the CLI exits 1 with the reason,
    the old daemon serves on with 0 failed requests, GET /v1/upgrade says
    why, the program is gone, and deploys work again afterwards."""
    yaml = YAML.replace("admin: 127.0.0.1:{ADMIN}\n", "admin: 127.0.0.1:{ADMIN}\ntimeouts:\n  upgrade: 2s\n")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = instance_pids(c)
        exits = os.path.join(c.dir, "exits-at-once")
        hangs = os.path.join(c.dir, "never-ready")
        for path, text in ((exits, "#!/bin/sh\necho 'new binary: giving up' >&2\nexit 1\n"), (hangs, NEVER_READY)):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        with LoadMix(c.port) as load:
            time.sleep(0.3)
            for path, reason in ((exits, "exited with status 1"), (hangs, "was not ready after 2000 ms")):
                t0 = time.time()
                r = cli(c, "upgrade", "--binary", path, timeout=30)
                eq(r.returncode, 1, f"upgrade to {path}: {r.stdout}{r.stderr}")
                check("upgrade failed" in r.stderr and reason in r.stderr and f"pid {c.pid} keeps serving" in r.stderr,
                      f"the reason, on stderr: {r.stderr!r}")
                check(time.time() - t0 < 10, f"the CLI took {time.time() - t0:.1f}s")
                st, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/upgrade")
                up = json.loads(body)
                eq((st, up["state"], up["pid"], up["binary"]), (200, "failed", c.pid, path), "GET /v1/upgrade")
                check(reason in up["error"], f"GET /v1/upgrade error: {up['error']}")
                wait_gone(up["new_pid"], 5, f"the program of the failed upgrade ({path})")
                eq(status_json(c)["pid"], c.pid, "the old daemon answers")
                eq(instance_pids(c), pids, "the instances (re-adopted by the old daemon)")
                time.sleep(0.5)
            r = cli(c, "deploy", "shop", "1.1.0")
            eq(r.returncode, 0, f"deploy after the failed upgrades: {r.stdout}{r.stderr}")
            time.sleep(0.3)
        eq(load.failed(), 0, f"failed requests across the failed upgrades: {load.describe()}")
        check(load.ok > 50, f"too little load: {load.describe()}")
        eq(version_served(c.port), "1.1.0", "after the deploy")
        check(c.proc.poll() is None, "the old daemon still runs")
        stop_everything(c)


SLOW_START = "#!/bin/sh\n# slow to become healthy: 1 s before the real shop starts\nsleep 1\nexec {SHOP} \"$@\"\n"


def set_startup(c, mode):
    """Rewrite the configuration with startup.unready: mode (for the next
    daemon to read at its start)."""
    with open(c.cfg_path) as f:
        text = f.read()
    if "startup:\n" in text:
        head, _, rest = text.partition("startup:\n")
        text = head + rest[rest.index("services:\n"):]
    text = text.replace("services:\n", f"startup:\n  unready: {mode}\n  max_wait: 30s\n  retry_after: 2s\nservices:\n")
    with open(c.cfg_path, "w") as f:
        f.write(text)


def kill_all(c):
    """kill -9 the daemon and every instance: nothing survives."""
    pids = instance_pids(c)
    os.kill(c.pid, signal.SIGKILL)
    c.proc.wait(10)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        wait_gone(pid, 5, "a killed instance")


def probe_startup(port, results, deadline, retry):
    """Connect until something listens, then GET /version; with retry, again
    after each 503 until a 200.  results gets (status, retry-after, seconds
    since the connect) per answer, or an error string."""
    while time.time() < deadline:
        try:
            t0 = time.time()
            status, headers, body = http_get(port, "/version", host="shop.test", timeout=40)
        except ConnectionRefusedError:
            time.sleep(0.002)
            continue
        except OSError as e:
            results.append(f"{e!r}")
            return
        results.append((status, headers.get("retry-after"), time.time() - t0, body[:80]))
        if status == 200 or not retry:
            return
        time.sleep(0.1)


def start_with_probes(c, retry, n=4):
    results = [[] for _ in range(n)]
    threads = [threading.Thread(target=probe_startup, args=(c.port, results[i], time.time() + 40, retry))
               for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    start_daemon(c)
    for t in threads:
        t.join(45)
    return results


def test_startup_unready_queue_and_retry_after():
    """The daemon and the instances are killed (-9), so the next daemon must
    start the live version again (1 s before it even listens).  With
    startup.unready: queue the first requests wait in the accept queue and
    then get 200, none a 503; with retry-after they get 503 with
    Retry-After until the instance is healthy, then 200."""
    with cutover(yaml_text=YAML) as c:
        shop = os.path.join(c.dir, "real-shop-1.0.0")  # under the test's dir: the harness cleans it up
        shutil.copy(shop_binary("1.0.0"), shop)
        add_script_release(c, "1.3.0", SLOW_START.replace("{SHOP}", shop))
        r = cli(c, "deploy", "shop", "1.3.0")
        eq(r.returncode, 0, f"deploy the slow starter: {r.stdout}{r.stderr}")

        set_startup(c, "queue")
        kill_all(c)
        results = start_with_probes(c, retry=False)
        answers = [r for lst in results for r in lst]
        eq(len(answers), 4, f"one answer per probe: {results}")
        for a in answers:
            check(isinstance(a, tuple) and a[0] == 200, f"queue: every first request gets 200: {answers}")
        check(max(a[2] for a in answers) > 0.5, f"queue: the requests waited for the start: {answers}")
        check("new connections wait in the accept queue" in c.logs(), "the queue is in the log")
        wait_live_settled(c)

        set_startup(c, "retry-after")
        kill_all(c)
        results = start_with_probes(c, retry=True)
        for lst in results:
            check(lst and all(isinstance(a, tuple) for a in lst), f"retry-after: answers {results}")
            eq(lst[-1][0], 200, f"retry-after: in the end a 200: {lst}")
            for a in lst[:-1]:
                eq((a[0], a[1]), (503, "2"), f"retry-after: before that 503 with Retry-After: 2: {lst}")
                check(b"no healthy instance yet" in a[3], f"the 503's reason: {a}")
        check(any(len(lst) > 1 for lst in results), f"retry-after: no 503 seen at all: {results}")
        check(all(a[2] < 0.5 for lst in results for a in lst), f"retry-after: answers without waiting: {results}")
        wait_live_settled(c)
        stop_everything(c)


def test_shutdown_with_and_without_stop_services():
    """`cutover shutdown` drains and exits and leaves the instances running
    (the next daemon adopts them); `cutover shutdown --stop-services` stops
    every instance, then the daemon.  The CLI returns once the daemon has
    exited, even if its parent has not reaped it yet."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        pids = instance_pids(c)
        # the daemon is this test's child, reaped only after the CLI returns:
        # the CLI must take the zombie for exited, not wait for it
        try:
            r = cli(c, "shutdown", timeout=15)
        except subprocess.TimeoutExpired:
            raise TestFailure("cutover shutdown still waits 15 s later (for a zombie?)")
        eq(r.returncode, 0, f"cutover shutdown: {r.stdout}{r.stderr}")
        check("keep running" in r.stdout and "stopped" in r.stdout, f"cutover shutdown says: {r.stdout}")
        eq(c.proc.wait(5), 0, "daemon exit status")
        eq(sorted(processes_of(c.dir)), pids, "instances after cutover shutdown")
        check(connect_refused(c.port), "the proxy port after the shutdown")
        start_daemon(c)
        eq(instance_pids(c), pids, "re-adopted")
        r = cli(c, "shutdown", "--stop-services", "--json")
        eq(r.returncode, 0, f"cutover shutdown --stop-services: {r.stdout}{r.stderr}")
        eq(json.loads(r.stdout), {"ok": True, "stop_services": True, "pid": c.pid}, "its --json")
        eq(c.proc.wait(5), 0, "daemon exit status")
        eq(processes_of(c.dir), [], "instances after cutover shutdown --stop-services")
        r = cli(c, "shutdown")
        eq(r.returncode, 3, f"no daemon: {r.stdout}{r.stderr}")


def test_second_daemon_on_a_taken_address_fails_at_once():
    """A second daemon with its own state directory on the listen address of
    a running one (then on its admin address) exits at once with a message
    that names the address; the first serves every connection meanwhile."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = instance_pids(c)
        live_port = managed(c)["live"]["port"]
        other = os.path.join(c.dir, "other")
        os.makedirs(other)
        cases = ((f"127.0.0.1:{c.port}", f"127.0.0.1:{free_port()}", f"127.0.0.1:{c.port}"),
                 (f"127.0.0.1:{free_port()}", f"127.0.0.1:{c.admin}", f"127.0.0.1:{c.admin}"))
        with LoadMix(c.port) as load:
            time.sleep(0.3)
            for i, (listen, admin, taken) in enumerate(cases):
                cfg = os.path.join(other, f"cutover-{i}.yml")
                with open(cfg, "w") as f:
                    f.write(f"state_dir: {other}/state-{i}\nlisten: {listen}\nadmin: {admin}\nservices:\n"
                            f"  shop:\n    targets: [127.0.0.1:{live_port}]\n"
                            f"    routes:\n      - path: /\n")
                t0 = time.time()
                try:
                    r = subprocess.run([BIN, "daemon", "--config", cfg], capture_output=True, text=True, timeout=10)
                except subprocess.TimeoutExpired:
                    raise TestFailure(f"a second daemon on {taken} is still running after 10 s")
                check(time.time() - t0 < 3, f"it took {time.time() - t0:.1f}s to fail")
                check(r.returncode != 0, f"second daemon on {taken}: exit {r.returncode}")
                check(taken in r.stderr and "in use" in r.stderr, f"the message names {taken}: {r.stderr[-600:]}")
            time.sleep(0.3)
        eq(load.failed(), 0, f"the first daemon's load: {load.describe()}")
        eq(status_json(c)["pid"], c.pid, "the first daemon still answers")
        eq(instance_pids(c), pids, "its instances")
        stop_everything(c)


def test_deploy_while_draining_is_refused_and_starts_nothing():
    """SIGTERM with a slow request in flight keeps the daemon draining; a
    deploy and a rollback sent then are refused with "shutting down" (exit
    3), no 1.1.0 process starts, and the slow request is answered."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        pids = instance_pids(c)
        slow = []
        t = threading.Thread(target=lambda: slow.append(http_get(c.port, "/api/slow?ms=2500", host="shop.test")))
        t.start()
        time.sleep(0.3)
        os.kill(c.pid, signal.SIGTERM)
        wait_until(lambda: "draining: stopped accepting" in c.logs(), 3, what="the drain to start")
        for args in (("deploy", "shop", "1.1.0"), ("rollback", "shop")):
            r = cli(c, *args)
            eq(r.returncode, 3, f"{args[0]} while draining: {r.stdout}{r.stderr}")
            check("shutting down" in r.stderr, f"{args[0]}'s message: {r.stderr!r}")
        check(c.proc.poll() is None, "the daemon is still draining (the test needs it)")
        t.join(10)
        eq(slow and slow[0][0], 200, "the slow request in flight")
        eq(c.proc.wait(10), 0, "daemon exit status")
        eq(sorted(processes_of(c.dir)), pids, "no 1.1.0 process started")
        start_daemon(c)
        eq([(r["to_version"], r["state"]) for r in history(c)], [("1.0.0", "done")], "no deployment recorded")
        stop_everything(c)


def test_drain_answers_what_waits_and_what_follows_a_response_begun():
    """Two races of a drain that a restart under load runs into.  A client
    whose response head went out before the drain (without "Connection:
    close") sends its next request on the same connection: it gets an
    answer with "Connection: close", not a closed connection.  Connections
    that wait in the accept queue when SIGTERM comes are accepted and
    answered, not reset by the listener's close."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        conn = HttpConn(c.port, timeout=10)
        # 32 MiB, not read yet: the response is in flight when the drain begins
        conn.send(request_bytes("GET", "/api/download?mb=32", host="shop.test"))
        status, _, _, headers, _ = conn.read_head()
        eq(status, 200, "the download's head")
        check(not any(k.lower() == "connection" for k, _ in headers), f"a keep-alive head: {headers}")
        os.kill(c.pid, signal.SIGTERM)
        wait_until(lambda: "draining: stopped accepting" in c.logs(), 3, what="the drain to start")
        left = (32 << 20) - len(conn.buf)
        conn.buf = b""
        while left > 0:
            d = conn.sock.recv(min(left, 1 << 20))
            check(d, f"the download was cut with {left} bytes to go")
            left -= len(d)
        conn.send(request_bytes("GET", "/version", host="shop.test"))
        r = conn.read_response()
        eq((r.status, r.get("connection")), (200, "close"), "the next request on that connection")
        check(conn.closed(), "the connection is closed after that answer")
        eq(c.proc.wait(10), 0, "daemon exit status")

        start_daemon(c)
        os.kill(c.pid, signal.SIGSTOP)
        try:
            os.kill(c.pid, signal.SIGTERM)  # pending: the loop sees it before the connections below
            time.sleep(0.1)
            waiting = [socket.create_connection(("127.0.0.1", c.port), timeout=10) for _ in range(5)]
            for s in waiting:
                s.sendall(b"GET /version HTTP/1.1\r\nHost: shop.test\r\n\r\n")
        finally:
            os.kill(c.pid, signal.SIGCONT)
        for i, s in enumerate(waiting):
            data, how = read_until_close(s, timeout=5)
            s.close()
            check(data, f"connection {i} waiting in the accept queue: {how}, no answer")
            (status, headers, _), = parse_responses(data)
            eq((status, headers.get("connection")), (200, "close"), f"connection {i}'s answer")
        eq(c.proc.wait(10), 0, "daemon exit status")
        start_daemon(c)
        stop_everything(c)


SETTLE_LOG = "new connections are dropped for 50 ms before the listeners close"


def test_syn_drop_only_where_the_close_is_the_sockets_last():
    """Before a listener closes for good the daemon drops new SYNs for 50 ms
    (no handshake in flight is reset).  Where the socket lives on, it must
    not: under a socket unit, neither the daemon systemd started nor one it
    was upgraded to (the next daemon would wait for nothing, or inherit the
    filter).  After an upgrade and a restart under the unit, a new
    connection is answered at once."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        sigterm_and_wait(c)
        check(SETTLE_LOG in c.logs(), "a plain SIGTERM drops SYNs before the close")
        from sdfixture import SdFixture
        sock_path = f"{c.dir}/state/admin.sock"
        fx = SdFixture([BIN, "daemon", "--config", c.cfg_path], c.dir,
                       sockets=[("proxy", SdFixture.tcp(c.port)), ("admin", SdFixture.unix(sock_path))])
        try:
            seen = len(c.logs())
            m = fx.mark()
            first = fx.start()
            fx.wait("READY=1", after=m, pid=first, timeout=20)
            r = cli(c, "upgrade", "--json")
            eq(r.returncode, 0, f"upgrade under the socket unit: {r.stdout}{r.stderr}")
            second = json.loads(r.stdout)["new_pid"]
            wait_gone(first, 15, "the daemon systemd started, after the upgrade")
            m = fx.mark()
            fx.restart()  # SIGTERM to the upgraded daemon, then a new one
            fx.wait("READY=1", after=m, pid=fx.main_pid, timeout=20)
            check(not alive(second), "the upgraded daemon is gone")
            t0 = time.time()
            try:
                served = version_served(c.port)
            except OSError as e:  # a SYN filter left on the socket: the connect times out
                raise TestFailure(f"a new connection after the upgrade and the restart: {e!r}")
            eq(served, "1.0.0", "a new connection after the upgrade and the restart")
            check(time.time() - t0 < 0.5, f"it took {time.time() - t0:.2f}s")
            eq(c.logs()[seen:].count(SETTLE_LOG), 0, "SYNs dropped on a socket unit's sockets")
            r = cli(c, "shutdown", "--stop-services")
            eq(r.returncode, 0, f"shutdown: {r.stdout}{r.stderr}")
            check(fx.wait_dead(10), "the daemon after cutover shutdown --stop-services")
        finally:
            fx.close()
        eq(processes_of(c.dir), [], "instances left")
