"""The demo shop service (examples/shop): its three releases as real
processes, each on its own port and SQLite database (or one shared database,
as during a blue-green deploy).

The binaries are found in the build directory: CUTOVER_BUILD_DIR, else the
directory of CUTOVER_BIN, else <repo>/build (examples/shop/shop-X.Y.Z)."""
import contextlib, http.client, json, os, shutil, signal, socket, subprocess, tempfile, threading, time

from harness import *

BUILD = os.environ.get("CUTOVER_BUILD_DIR") or (
    os.path.dirname(os.path.abspath(os.environ["CUTOVER_BIN"])) if os.environ.get("CUTOVER_BIN")
    else os.path.join(ROOT, "build"))
VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


def shop_bin(version):
    p = os.path.join(BUILD, "examples", "shop", f"shop-{version}")
    check(os.access(p, os.X_OK), f"{p} is missing: build it (ninja -C {BUILD})")
    return p


class Shop:
    def __init__(self, version, proc, port, log_path):
        self.version, self.proc, self.port, self.log_path = version, proc, port, log_path

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=15):
        """SIGTERM by PID; the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"shop {self.version} did not exit {timeout}s after SIGTERM")
        log = self.log()
        for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer"):
            check(bad not in log, f"shop {self.version}: sanitizer report: {log[log.find(bad) - 200:][:3000]}")
        return rc


@contextlib.contextmanager
def shop(version, db=None):
    """Start shop-VERSION on a free port (a fresh database unless `db`); the
    block must stop it (and check the exit status); leftovers are killed."""
    d = tempfile.mkdtemp(prefix="cutover-shop-")
    port = free_port()
    log_path = os.path.join(d, "shop.log")
    with open(log_path, "w") as out:
        proc = subprocess.Popen([shop_bin(version), "--port", str(port), "--db", db or os.path.join(d, "shop.db")],
                                stdout=out, stderr=subprocess.STDOUT, cwd=d)
    s = Shop(version, proc, port, log_path)
    try:
        try:
            wait_port(port)
        except TestFailure:
            raise TestFailure(f"shop {version} did not start: {s.log()[-2000:]}")
        yield s
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def call(port, method, path, body=None, conn=None, timeout=10):
    """One request (on `conn` when given, keep-alive); (status, JSON or bytes, headers)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    raw_body = r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    if not conn:
        c.close()
    if headers.get("content-type", "").startswith("application/json"):
        return r.status, json.loads(raw_body), headers
    return r.status, raw_body, headers


def get(port, path, **kw):
    return call(port, "GET", path, **kw)


def post(port, path, body=None, **kw):
    return call(port, "POST", path, body, **kw)


def stock(port, pid):
    status, p, _ = get(port, f"/api/catalog/{pid}")
    eq(status, 200, f"GET /api/catalog/{pid}")
    return p["stock"]


def cart_with(port, pid, qty):
    status, c, _ = post(port, "/api/carts")
    eq(status, 201, "POST /api/carts")
    status, c2, _ = post(port, f"/api/carts/{c['cart_id']}/items", {"product_id": pid, "quantity": qty})
    eq(status, 200, f"add item: {c2}")
    return c["cart_id"]


def parallel(fn, args):
    """fn(*a) for every a in args, each in its own thread, started together."""
    results, errors = [None] * len(args), []
    go = threading.Barrier(len(args))

    def run(i, a):
        try:
            go.wait(5)
            results[i] = fn(*a)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check(not errors, f"worker failed: {errors[:3]!r}")
    return results


def pattern(n):
    """What /api/download sends: 16-byte records, each its own offset in hex."""
    return b"".join(b"%015x\n" % o for o in range(0, n, 16))


# ---------------------------------------------------------------- tests

def test_health_and_version_per_release():
    for v in VERSIONS:
        with shop(v) as s:
            t = time.time()
            status, h, hdr = get(s.port, "/health")
            eq((status, h), (200, {"status": "ok", "version": v}), f"{v} /health")
            check(time.time() - t < 0.3, f"{v}: /health took {time.time() - t:.2f}s")
            eq(hdr.get("x-shop-version"), v, "X-Shop-Version")
            status, ver, _ = get(s.port, "/version")
            eq(status, 200, "/version status")
            eq((ver["version"], ver["pid"]), (v, s.proc.pid), f"{v} /version")
            check(ver["started_at"].endswith("Z") and ver["started_at"][:2] == "20", f"started_at {ver['started_at']!r}")
            status, page, hdr = get(s.port, "/")
            eq(status, 200, "GET /")
            check(hdr["content-type"].startswith("text/html"), f"storefront type {hdr['content-type']}")
            check(f"<title>Shop {v}".encode() in page, f"{v}: version not in the page title: {page[:200]!r}")
            eq(s.stop(), 0, f"{v} exit status after SIGTERM")
            log = s.log()
            check(f"shop {v}" in log and "GET /health 200" in log and "stopped" in log, f"log: {log!r}")


def test_shopping_flow():
    with shop("1.0.0") as s:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)   # one keep-alive connection throughout
        status, cat, _ = get(s.port, "/api/catalog", conn=c)
        eq(status, 200, "catalog")
        check(len(cat) >= 10, f"catalog has {len(cat)} products")
        for p in cat:
            eq(sorted(p), ["currency", "id", "name", "price_cents", "stock"], f"product fields {p}")
        by_id = {p["id"]: p for p in cat}
        eq(get(s.port, "/api/catalog/2", conn=c)[1], by_id[2], "GET /api/catalog/2")
        eq(get(s.port, "/api/catalog/999", conn=c)[0], 404, "unknown product")

        status, cart, hdr = post(s.port, "/api/carts", conn=c)
        eq(status, 201, "create cart")
        cid = cart["cart_id"]
        eq(hdr.get("location"), f"/api/carts/{cid}", "Location of the cart")
        eq(post(s.port, f"/api/carts/{cid}/items", {"product_id": 1, "quantity": 2}, conn=c)[0], 200, "add 2 x 1")
        eq(post(s.port, f"/api/carts/{cid}/items", {"product_id": 5, "quantity": 1}, conn=c)[0], 200, "add 1 x 5")
        status, cart, _ = post(s.port, f"/api/carts/{cid}/items", {"product_id": 1, "quantity": 1}, conn=c)
        eq([(i["product_id"], i["quantity"]) for i in cart["items"]], [(1, 3), (5, 1)], "cart lines")
        total = 3 * by_id[1]["price_cents"] + by_id[5]["price_cents"]
        eq(cart["total_cents"], total, "cart total")
        eq(get(s.port, f"/api/carts/{cid}", conn=c)[1]["total_cents"], total, "GET cart total")
        eq(post(s.port, f"/api/carts/{cid}/items", {"product_id": 999, "quantity": 1}, conn=c)[0], 404, "unknown product in cart")
        eq(post(s.port, f"/api/carts/{cid}/items", {"product_id": 1, "quantity": 0}, conn=c)[0], 400, "quantity 0")
        eq(post(s.port, f"/api/carts/{cid}/items", b"not json", conn=c)[0], 400, "body not JSON")

        status, order, hdr = post(s.port, "/api/checkout", {"cart_id": cid}, conn=c)
        eq(status, 201, f"checkout: {order}")
        eq((order["status"], order["total_cents"]), ("paid", total), "order")
        oid = order["order_id"]
        eq(hdr.get("location"), f"/api/orders/{oid}", "Location of the order")
        status, back, _ = get(s.port, f"/api/orders/{oid}", conn=c)
        eq((status, back["order_id"], back["total_cents"], back["cart_id"], back["served_by"]),
           (200, oid, total, cid, "1.0.0"), "order read back")
        eq([(i["product_id"], i["quantity"]) for i in back["items"]], [(1, 3), (5, 1)], "order lines")
        eq([o["order_id"] for o in get(s.port, "/api/orders?limit=1", conn=c)[1]], [oid], "latest order")
        eq(stock(s.port, 1), by_id[1]["stock"] - 3, "stock of 1 after the order")
        eq(stock(s.port, 5), by_id[5]["stock"] - 1, "stock of 5 after the order")

        status, err, _ = post(s.port, "/api/checkout", {"cart_id": cid}, conn=c)
        eq((status, err.get("order_id")), (409, oid), "second checkout of the same cart")
        eq(post(s.port, "/api/checkout", {"cart_id": "0" * 32}, conn=c)[0], 404, "unknown cart")
        eq(post(s.port, "/api/checkout", {}, conn=c)[0], 400, "no cart_id")
        big = cart_with(s.port, 3, by_id[3]["stock"] + 1)
        status, err, _ = post(s.port, "/api/checkout", {"cart_id": big}, conn=c)
        eq((status, err.get("error"), err.get("available")), (409, "out of stock", by_id[3]["stock"]), "out of stock")
        eq(stock(s.port, 3), by_id[3]["stock"], "stock untouched by a refused checkout")
        eq(get(s.port, "/api/orders?limit=0", conn=c)[0], 400, "limit=0")
        eq(get(s.port, "/api/nothing", conn=c)[0], 404, "unknown path")
        status, _, hdr = call(s.port, "DELETE", "/api/catalog", conn=c)
        eq((status, hdr.get("allow")), (405, "GET, HEAD"), "wrong method")
        c.close()
        eq(s.stop(), 0, "exit status")


def test_http_framing():
    with shop("1.0.0") as s:
        # three pipelined requests in one write: three answers, in order
        req = b"".join(b"GET %s HTTP/1.1\r\nHost: shop\r\n\r\n" % p for p in (b"/health", b"/version", b"/nope"))
        rs = parse_responses(raw(s.port, req + b"GET /health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"))
        eq([r[0] for r in rs], [200, 200, 404, 200], "pipelined statuses")
        eq(json.loads(rs[1][2])["version"], "1.0.0", "second answer is /version")
        eq(rs[3][1].get("connection"), "close", "Connection: close honoured")
        # a POST body split across writes
        body = json.dumps({"cart_id": "f" * 32}).encode()
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        sk.sendall(b"POST /api/checkout HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(0.1)
        sk.sendall(body[5:])
        head, rest = read_head_raw(sk)
        check(head.startswith(b"HTTP/1.1 404"), f"split body: {head!r}")
        sk.close()
        # garbage: 400 and the connection closed
        out = raw(s.port, b"HELLO THERE\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
        rs = parse_responses(out)
        eq([r[0] for r in rs], [400], "bad request line")
        eq(rs[0][1].get("connection"), "close", "400 closes")
        # a head beyond 16 KiB: refused, closed
        out = raw(s.port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n")
        eq(parse_responses(out)[0][0], 431, "head too large")
        # chunked bodies are not taken
        out = raw(s.port, b"POST /api/carts HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        eq(parse_responses(out)[0][0], 411, "chunked request body")
        # HTTP/1.0 without keep-alive: one answer, then close
        rs = parse_responses(raw(s.port, b"GET /health HTTP/1.0\r\n\r\n"))
        eq((rs[0][0], rs[0][1].get("connection")), (200, "close"), "HTTP/1.0")
        # HEAD: the length of the body, not the body
        rs = parse_responses(raw(s.port, b"HEAD /api/download?mb=2 HTTP/1.1\r\nConnection: close\r\n\r\n"))
        eq((rs[0][0], rs[0][1].get("content-length"), rs[0][2]), (200, str(2 << 20), b""), "HEAD download")
        check(s.proc.poll() is None, "still running")
        eq(s.stop(), 0, "exit status")


def test_concurrent_checkouts_do_not_oversell():
    with shop("1.0.0") as s:
        pid = 3
        start = stock(s.port, pid)
        qty = start // 12 + 1                      # 20 buyers want more than there is
        carts = parallel(cart_with, [(s.port, pid, qty)] * 20)
        res = parallel(lambda cid: post(s.port, "/api/checkout", {"cart_id": cid})[0], [(c,) for c in carts])
        sold = res.count(201)
        eq(sorted(set(res) - {201, 409}), [], f"statuses {res}")
        eq(sold, start // qty, f"successful checkouts ({qty} each of {start})")
        eq(stock(s.port, pid), start - sold * qty, "stock left")
        eq(len(get(s.port, "/api/orders?limit=100")[1]), sold, "orders recorded")
        eq(s.stop(), 0, "exit status")


def test_slow_and_download():
    with shop("1.1.0") as s:
        t = time.time()
        status, body, _ = get(s.port, "/api/slow?ms=300")
        took = time.time() - t
        eq((status, body["slept_ms"]), (200, 300), "slow answer")
        check(0.3 <= took < 1.5, f"slow took {took:.2f}s")
        eq(get(s.port, "/api/slow?ms=30001")[0], 400, "ms beyond 30000")
        n = 8 << 20
        status, data, hdr = get(s.port, "/api/download?mb=8")
        eq((status, hdr["content-length"]), (200, str(n)), "download head")
        eq(len(data), n, "download length")
        check(data == pattern(n), "download bytes differ from the pattern")
        eq(get(s.port, "/api/download?mb=0")[1], b"", "empty download")
        eq(get(s.port, "/api/download?mb=513")[0], 400, "mb beyond 512")
        eq(get(s.port, "/api/download?mb=x")[0], 400, "mb not a number")
        eq(s.stop(), 0, "exit status")


def test_badges_only_from_1_1_0_and_schema_shared_both_ways():
    d = tempfile.mkdtemp(prefix="cutover-shop-db-")
    db = os.path.join(d, "shop.db")
    try:
        for v in ("1.0.0", "1.1.0", "1.0.0"):      # old schema, migrated forward, then the old release again
            with shop(v, db) as s:
                status, cat, _ = get(s.port, "/api/catalog")
                eq(status, 200, f"{v} catalog")
                badges = [p.get("badge") for p in cat]
                if v == "1.0.0":
                    check(all("badge" not in p for p in cat), f"1.0.0 shows badges: {cat[:2]}")
                    check(b"badge" not in get(s.port, "/")[1], "1.0.0 storefront shows badges")
                else:
                    check(all("badge" in p for p in cat), "1.1.0: every product has a badge field")
                    check("new" in badges, f"1.1.0: no product is new: {badges}")
                    check(b'class="badge">new<' in get(s.port, "/")[1], "1.1.0 storefront without badges")
                cid = cart_with(s.port, 9, 1)
                eq(post(s.port, "/api/checkout", {"cart_id": cid})[0], 201, f"{v} checkout")
                eq(s.stop(), 0, f"{v} exit status")
        with shop("1.1.0", db) as s:
            eq([o["served_by"] for o in get(s.port, "/api/orders")[1]], ["1.0.0", "1.1.0", "1.0.0"], "orders kept")
            eq(s.stop(), 0, "exit status")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_faulty_release():
    with shop("1.2.0") as s:
        t = time.time()
        eq(get(s.port, "/health")[0], 200, "health")
        check(time.time() - t < 0.2, f"1.2.0 /health took {time.time() - t:.2f}s")
        t = time.time()
        eq(get(s.port, "/api/catalog/4")[0], 200, "catalog")
        check(time.time() - t >= 0.4, f"1.2.0 API answered in {time.time() - t:.2f}s, not slow")
        start = stock(s.port, 4)
        carts = parallel(cart_with, [(s.port, 4, 1)] * 8)
        res = parallel(lambda cid: post(s.port, "/api/checkout", {"cart_id": cid})[0], [(c,) for c in carts])
        eq(sorted(res), [201] * 6 + [500] * 2, "every 4th checkout fails")
        eq(stock(s.port, 4), start - 6, "failed checkouts sold nothing")
        failed = [c for c, r in zip(carts, res) if r == 500]
        paid = [c for c, r in zip(carts, res) if r == 201]
        res = [post(s.port, "/api/checkout", {"cart_id": c})[0] for c in failed + paid[:2]]    # checkouts 9-12
        eq(res, [201, 201, 409, 500], "shoppers retry the failed checkouts, then the 12th fails")
        eq(s.stop(), 0, "exit status")


def test_sigterm_lets_inflight_requests_finish():
    with shop("1.0.0") as s:
        idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        eq(get(s.port, "/health", conn=idle)[0], 200, "keep-alive connection")      # then left idle
        result = {}

        def slow():
            result["slow"] = get(s.port, "/api/slow?ms=1500", timeout=10)

        def download():
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"GET /api/download?mb=32 HTTP/1.1\r\nHost: shop\r\n\r\n")
            head, got = read_head_raw(c)
            time.sleep(0.8)                              # a slow reader: the server blocks on its writes
            buf, how = bytearray(got), "eof"
            while True:
                try:
                    d = c.recv(1 << 20)
                except OSError as e:
                    how = repr(e)
                    break
                if not d:
                    break
                buf += d
            result["download"] = (head, bytes(buf), how)
            c.close()
        ts = [threading.Thread(target=slow), threading.Thread(target=download)]
        for t in ts:
            t.start()
        time.sleep(0.4)
        t0 = time.time()
        os.kill(s.proc.pid, signal.SIGTERM)
        wait_until(lambda: connect_refused(s.port), timeout=2, what="listener closed after SIGTERM")
        for t in ts:
            t.join(15)
        eq(s.stop(), 0, "exit status")
        took = time.time() - t0
        status, body, hdr = result["slow"]
        eq((status, body["slept_ms"], hdr.get("connection")), (200, 1500, "close"), "slow request in flight")
        head, data, how = result["download"]
        check(head.startswith(b"HTTP/1.1 200"), f"download head {head!r}")
        eq(len(data), 32 << 20, f"download bytes (end: {how})")
        check(data == pattern(32 << 20), "download bytes differ from the pattern")
        check(took < 5, f"exit took {took:.1f}s (idle keep-alive connection held it?)")
        log = s.log()
        check("SIGTERM" in log and "GET /api/slow?ms=1500 200" in log, f"log: {log[-500:]!r}")
        idle.close()


def test_blue_green_on_one_database():
    d = tempfile.mkdtemp(prefix="cutover-shop-db-")
    db = os.path.join(d, "shop.db")
    try:
        with shop("1.0.0", db) as blue, shop("1.1.0", db) as green:   # started together: migrations race
            eq(get(blue.port, "/health")[1]["version"], "1.0.0", "blue health")
            eq(get(green.port, "/health")[1]["version"], "1.1.0", "green health")
            # a shopper whose requests move from blue to green mid-way
            cid = cart_with(blue.port, 7, 2)
            status, cart, _ = post(green.port, f"/api/carts/{cid}/items", {"product_id": 8, "quantity": 1})
            eq((status, len(cart["items"])), (200, 2), "cart from blue continued on green")
            status, order, _ = post(green.port, "/api/checkout", {"cart_id": cid})
            eq(status, 201, "checkout on green")
            status, back, _ = get(blue.port, f"/api/orders/{order['order_id']}")
            eq((status, back["served_by"]), (200, "1.1.0"), "green's order read on blue")
            eq(stock(blue.port, 7), stock(green.port, 7), "both see one stock")
            # buyers on both at once: no overselling across processes
            pid, start = 2, stock(blue.port, 2)
            qty = start // 12 + 1
            ports = [blue.port, green.port] * 10
            carts = parallel(cart_with, [(p, pid, qty) for p in ports])
            res = parallel(lambda p, c: post(p, "/api/checkout", {"cart_id": c})[0], list(zip(ports, carts)))
            sold = res.count(201)
            eq(sorted(set(res) - {201, 409}), [], f"statuses {res}")
            eq(sold, start // qty, "successful checkouts across blue and green")
            eq(stock(green.port, pid), start - sold * qty, "stock left")
            eq(blue.stop(), 0, "blue exit status")
            eq(get(green.port, "/health")[0], 200, "green still up after blue stopped")
            eq(green.stop(), 0, "green exit status")
    finally:
        shutil.rmtree(d, ignore_errors=True)
