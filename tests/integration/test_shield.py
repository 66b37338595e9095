"""test_shield.py - retries that shoppers never see (issue 10, point 3).

* A retry takes a fresh connection: a backend that closes every kept-alive
  connection right after its response (without saying Connection: close)
  leaves the proxy's pool full of connections that are about to close.
  Before the fix, a retry took another of them and, under concurrent load,
  shoppers saw "502 upstream closed the connection" after retries=2.
"""
import os, socket, threading, time

from harness import *


def _read_request(c):
    """Read one request head (the GETs here have no body).  Returns False
    when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            return False
        data += d
    return True


def _closing_backend(c):
    """Answer one request on the connection, keep-alive as far as the
    headers say, then close at once."""
    if _read_request(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")


def _load(port, clients, seconds, path="/"):
    """clients threads, each one keep-alive connection sending GETs for
    seconds.  Returns (statuses by count, errors)."""
    statuses, errors, lock = {}, [], threading.Lock()
    end = time.time() + seconds

    def run():
        conn = None
        while time.time() < end:
            try:
                if conn is None:
                    conn = HttpConn(port, timeout=5)
                conn.send(request_bytes("GET", path))
                r = conn.read_response("GET")
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status != 200:
                    with lock:
                        errors.append((r.status, r.body[:80]))
                if (r.get("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # the proxy's side of the shopper's connection
                with lock:
                    errors.append(("exception", repr(e)[:80]))
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return statuses, errors


def test_retry_takes_a_fresh_connection():
    """Under concurrent load against a backend that closes each connection
    after its response, every GET gets its 200: a request that met a
    pooled connection closing under it is retried on a new connection,
    never on another pooled one."""
    with raw_backend(_closing_backend) as (bport, _):
        with cutover({"svc": {"targets": [f"127.0.0.1:{bport}"]}}) as c:
            statuses, errors = _load(c.port, clients=16, seconds=4)
            total = sum(statuses.values())
            check(total > 500, f"too little load to show anything: {statuses}")
            retried = c.metric("cutover_upstream_retries_total", service="svc")
            log = c.access_log()
            eq(errors[:5], [], f"failed requests out of {total} ({statuses}, {retried:.0f} retries; "
                                f"502s in the log: {log.count('status=502')})")
            # the 502 of the defect said retries=2: no request needs more than one
            check("retries=2" not in log, "a request was retried twice: " +
                  next((l for l in log.splitlines() if "retries=2" in l), ""))
