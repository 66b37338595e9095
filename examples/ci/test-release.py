#!/usr/bin/env python3
"""test-release.py - the test stage of the example pipeline (cutover.yml
here): the release about to ship, started on its own, shopped at.

    test-release.py BINARY [VERSION]

Starts BINARY (a build of examples/shop) on a free port of 127.0.0.1 with a
database of its own in a temporary directory, then checks what a shopper
needs: health (and the version, when given), the catalog, and four
checkouts, each answer within 300 ms.  One line per check, then
"N passed, N failed" (the line a gate reads).  Exit status 0 when all
passed, 1 otherwise (shop-1.2.0, faulty on purpose, fails: every 4th
checkout is a 500, and its answers come 400 ms late).
"""
import http.client, json, os, socket, subprocess, sys, tempfile, time

LATENCY_MAX = 0.3
CHECKOUTS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None):
    """(status, decoded JSON or None, seconds) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    return r.status, doc, time.monotonic() - t0


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    binary, version = argv[1], argv[2] if len(argv) == 3 else None
    results = []

    def check(ok, what):
        results.append(ok)
        print(("ok     " if ok else "FAIL   ") + what, flush=True)

    with tempfile.TemporaryDirectory(prefix="shop-test-") as d:
        port = free_port()
        log = open(os.path.join(d, "shop.log"), "w")
        proc = subprocess.Popen([binary, "--port", str(port), "--db", os.path.join(d, "shop.db")],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print(f"FAIL   {binary} did not start", flush=True)
                        print("0 passed, 1 failed")
                        return 1
                    time.sleep(0.05)
            status, doc, _ = call(port, "GET", "/health")
            check(status == 200 and doc and doc.get("status") == "ok", f"GET /health: {status} {doc}")
            if version:
                check(doc and doc.get("version") == version, f"the version is {version}: {doc and doc.get('version')}")
            status, doc, took = call(port, "GET", "/api/catalog")
            check(status == 200 and isinstance(doc, list) and len(doc) >= 1 and took < LATENCY_MAX,
                  f"GET /api/catalog: {status}, {len(doc) if isinstance(doc, list) else '?'} products, {took * 1000:.0f} ms")
            for i in range(CHECKOUTS):
                s1, cart, t1 = call(port, "POST", "/api/carts")
                cart_id = cart.get("cart_id") if isinstance(cart, dict) else None
                s2, _, t2 = call(port, "POST", f"/api/carts/{cart_id}/items", {"product_id": 1 + i % 3, "quantity": 1})
                s3, order, t3 = call(port, "POST", "/api/checkout", {"cart_id": cart_id})
                slowest = max(t1, t2, t3)
                paid = s3 == 201 and isinstance(order, dict) and order.get("status") == "paid"
                check(s1 == 201 and s2 == 200 and paid and slowest < LATENCY_MAX,
                      f"checkout {i + 1}: cart {s1}, item {s2}, checkout {s3}, slowest answer {slowest * 1000:.0f} ms")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
