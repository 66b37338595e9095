"""Restarting and upgrading cutover itself (issue 9): the real daemon and
real releases of examples/shop."""
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
