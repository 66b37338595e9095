"""The admin API on the Unix socket: status, an atomic switch of a
service's targets under load (the lever deploys pull), validation that
applies nothing on error, the socket's permissions, one daemon per socket,
and the CLI's exit codes."""
import json
import os
import socket
import stat
import subprocess
import threading
import time

from harness import *


def api(sock_path, method, path, body=None, timeout=5):
    """One request of the admin API; returns (status, json)."""
    data = json.dumps(body).encode() if body is not None else b""
    status, payload = unix_request(sock_path, method, path, data, timeout)
    return status, json.loads(payload)


def proxy_with_socket(targets, tmp):
    sock = os.path.join(tmp, "run", "admin.sock")
    port = free_port()
    args = [BIN, "proxy", "--listen", f"127.0.0.1:{port}", "--admin-socket", sock]
    for t in targets:
        args += ["--target", t]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port)
    return p, port, sock


def stop(p):
    if p.poll() is None:
        p.terminate()
    eq(p.wait(10), 0, "exit status after SIGTERM")


def test_status_and_socket_mode():
    with echo_backend() as be:
        tmp = tempfile.mkdtemp(prefix="cutover-api-")
        p, port, sock = proxy_with_socket([f"127.0.0.1:{be.server_address[1]}"], tmp)
        try:
            eq(stat.S_IMODE(os.stat(sock).st_mode), 0o600, "admin socket mode")
            eq(stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode), 0o700, "admin socket directory mode")
            for _ in range(3):
                eq(http_get(port, "/x")[0], 200, "proxied request")
            status, st = api(sock, "GET", "/v1/status")
            eq(status, 200, "GET /v1/status")
            eq(st["pid"], p.pid, "pid in status")
            svc, = st["services"]
            eq(svc["name"], "default", "service name")
            eq([t["address"] for t in svc["targets"]], [f"127.0.0.1:{be.server_address[1]}"], "targets")
            eq(svc["targets"][0]["requests"], 3, "requests counted for the target")
            # the CLI: table and --json
            out = subprocess.run([BIN, "status", "--socket", sock], capture_output=True, text=True, timeout=10)
            eq(out.returncode, 0, "cutover status exit code")
            check(f"127.0.0.1:{be.server_address[1]}" in out.stdout and "default" in out.stdout,
                  f"status table lacks the service or target:\n{out.stdout}")
            out = subprocess.run([BIN, "status", "--socket", sock, "--json"], capture_output=True, text=True,
                                 timeout=10)
            eq(json.loads(out.stdout)["services"][0]["name"], "default", "status --json")
            # unknown endpoint and wrong method: JSON errors
            status, err = api(sock, "GET", "/v1/nope")
            eq(status, 404, "unknown endpoint")
            check("error" in err, "error body")
            status, err = api(sock, "POST", "/v1/status")
            eq(status, 405, "wrong method")
        finally:
            stop(p)
        check(not os.path.exists(sock), "admin socket left behind after exit")
        subprocess.run(["rm", "-rf", tmp])


def test_one_daemon_per_socket_and_unreachable():
    with echo_backend() as be:
        tmp = tempfile.mkdtemp(prefix="cutover-api-")
        p, port, sock = proxy_with_socket([f"127.0.0.1:{be.server_address[1]}"], tmp)
        try:
            second = subprocess.run([BIN, "proxy", "--listen", f"127.0.0.1:{free_port()}", "--target",
                                     f"127.0.0.1:{be.server_address[1]}", "--admin-socket", sock],
                                    capture_output=True, text=True, timeout=10)
            check(second.returncode != 0, "a second daemon started on the same admin socket")
            check("already running" in second.stderr, f"unclear message: {second.stderr!r}")
            eq(api(sock, "GET", "/v1/status")[0], 200, "first daemon still answers")
        finally:
            stop(p)
        out = subprocess.run([BIN, "status", "--socket", sock], capture_output=True, text=True, timeout=10)
        eq(out.returncode, 3, "exit code when the daemon is unreachable")
        check("cannot reach the cutover daemon" in out.stderr, f"unclear message: {out.stderr!r}")
        # a stale socket file (daemon killed) does not prevent the next start
        open(sock, "w").close()
        p2, _, _ = proxy_with_socket([f"127.0.0.1:{be.server_address[1]}"], tmp)
        stop(p2)
        subprocess.run(["rm", "-rf", tmp])


def test_switch_targets_atomically_under_load():
    """Flip a service between two backends 40 times while 4 clients send
    requests without pause: every response is a complete 200 and after each
    switch new requests go only to the new target."""
    with echo_backend() as blue, echo_backend() as green:
        tmp = tempfile.mkdtemp(prefix="cutover-api-")
        b, g = f"127.0.0.1:{blue.server_address[1]}", f"127.0.0.1:{green.server_address[1]}"
        p, port, sock = proxy_with_socket([b], tmp)
        failures, count, stop_flag = [], [0], threading.Event()

        def client():
            conn = None
            deadline = time.time() + 30
            while not stop_flag.is_set() and time.time() < deadline:
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/load", headers={"Host": "shop.test"})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 200 or not body.endswith(b"}"):
                        failures.append((r.status, body[:80]))
                    count[0] += 1
                except Exception as e:  # a reset or a truncated response is a failure
                    failures.append(repr(e))
                    conn = None

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(40):
                want = g if i % 2 == 0 else b
                status, svc = api(sock, "PUT", "/v1/services/default/targets", {"targets": [{"address": want}]})
                eq(status, 200, f"switch {i}")
                eq([t["address"] for t in svc["targets"]], [want], f"targets after switch {i}")
                # the next request, on a new connection, goes to the new target
                eq(json.loads(http_get(port, "/probe")[2])["port"], int(want.rsplit(":", 1)[1]),
                   f"request right after switch {i}")
                time.sleep(0.02)
        finally:
            stop_flag.set()
            for t in threads:
                t.join(40)
            stop(p)
            subprocess.run(["rm", "-rf", tmp])
        eq(failures, [], "failed requests during switches")
        check(count[0] > 100, f"too little load to mean anything: {count[0]} requests")


def test_invalid_switch_applies_nothing():
    with echo_backend() as be:
        tmp = tempfile.mkdtemp(prefix="cutover-api-")
        addr = f"127.0.0.1:{be.server_address[1]}"
        p, port, sock = proxy_with_socket([addr], tmp)
        try:
            cases = [
                ({"targets": [{"address": "127.0.0.1:9"}, {"address": "bogus"}]}, 400, "targets[1].address"),
                ({"targets": [{"address": "127.0.0.1:9", "weight": 0}]}, 400, "targets[0].weight"),
                ({"targets": [{"address": "127.0.0.1:9"}, {"address": "127.0.0.1:9"}]}, 400, "listed twice"),
                ({"targets": []}, 400, "non-empty array"),
                ({"nothing": 1}, 400, "targets"),
            ]
            for body, want_status, want_text in cases:
                status, err = api(sock, "PUT", "/v1/services/default/targets", body)
                eq(status, want_status, f"status for {body}")
                check(want_text in err["error"], f"error for {body} lacks {want_text!r}: {err}")
            status, err = api(sock, "PUT", "/v1/services/nope/targets", {"targets": [{"address": addr}]})
            eq(status, 404, "unknown service")
            st = api(sock, "GET", "/v1/status")[1]
            eq([t["address"] for t in st["services"][0]["targets"]], [addr], "targets after rejected switches")
            eq(http_get(port, "/still")[0], 200, "traffic still flows")
        finally:
            stop(p)
            subprocess.run(["rm", "-rf", tmp])
