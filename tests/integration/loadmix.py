"""loadmix.py - the load mix of the restart tests and of bench/restart: what a
shop's users do while cutover itself restarts or is upgraded (issue 9).

Clients, each a thread with its own connection(s), every response checked:

  keepalive  one keep-alive connection, GET /api/catalog, /api/catalog/3,
             /version, / in turn (200, complete body)
  fresh      a new connection per request (Connection: close), GET /api/catalog/3
  slow       keep-alive, GET /api/slow?ms=300 (200 after 300 ms)
  download   keep-alive, GET /api/download?mb=1, the 1 MiB body compared
             byte for byte with the shop's pattern
  post       keep-alive, POST /api/carts (201) then POST /api/carts/ID/items
             (200) in turn; a new cart every 50 items

A failure is counted by kind:

  refused     the connect was refused (nothing listens)
  reset       the connection was reset or closed before any byte of the
              response (on connect, on send, or waiting for the head)
  bad_status  a complete response with another status than expected (a 503
              "no targets" is one)
  short_body  the response began but the connection ended before its end
  bad_body    the body differs from what the shop sends
  timeout     no answer within the client timeout

and each request's wait: from its start (the connect for a new connection)
to the end of its body, minus what the shop takes on purpose (300 ms for
/api/slow).  `gaps()` gives, for each run of refusals, the time from the
first refusal to the first response on a connection made after it.

Python 3 stdlib only: bench/restart imports it too.  Load is bounded: each
client pauses `pause_ms` between requests, and every client stops after
`max_s` whatever happens.
"""
import json
import socket
import threading
import time

KINDS = ("refused", "reset", "bad_status", "short_body", "bad_body", "timeout")
MIB = 1 << 20
SLOW_MS = 300


def shop_pattern(n):
    """The bytes /api/download sends: 16-byte lines, the offset in hex."""
    return b"".join(b"%015x\n" % off for off in range(0, n, 16))[:n]


DOWNLOAD = shop_pattern(MIB)


class Failure(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class Conn:
    """One HTTP/1.1 client connection to 127.0.0.1:port that tells apart how
    a request failed (Failure.kind)."""

    def __init__(self, port, timeout):
        self.port, self.timeout, self.sock, self.buf = port, timeout, None, b""
        self.opened_at = None   # time.monotonic() when the connect completed
        self.reused = False

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf, self.reused = None, b"", False

    def connect(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        except ConnectionRefusedError as e:
            raise Failure("refused", str(e))
        except socket.timeout as e:
            raise Failure("timeout", f"connect: {e}")
        except OSError as e:
            raise Failure("reset", f"connect: {e}")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf, self.opened_at, self.reused = s, b"", time.monotonic(), False

    def _recv(self, started):
        try:
            d = self.sock.recv(1 << 18)
        except socket.timeout:
            raise Failure("timeout", "no answer within %.0f s" % self.timeout)
        except OSError as e:  # ECONNRESET
            raise Failure("short_body" if started else "reset", str(e))
        if not d:
            raise Failure("short_body" if started else "reset",
                          "connection closed " + ("in the response" if started else "before the response"))
        return d

    def request(self, method, path, host, body=b"", headers=()):
        """Send one request, read the whole response.  Returns (status,
        headers dict with lower-case names, body).  Raises Failure."""
        if self.sock is None:
            self.connect()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cutover-loadmix\r\n"
        for k, v in headers:
            head += f"{k}: {v}\r\n"
        if body or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self.sock.sendall(head.encode() + b"\r\n" + body)
        except socket.timeout:
            raise Failure("timeout", "send")
        except OSError as e:  # EPIPE, ECONNRESET: closed under us
            raise Failure("reset", f"send: {e}")
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv(bool(self.buf))
            if len(self.buf) > 65536 and b"\r\n\r\n" not in self.buf:
                raise Failure("bad_status", f"response head too large: {self.buf[:80]!r}")
        raw, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Failure("bad_status", f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        hdrs = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if sep:
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" not in hdrs:
            raise Failure("bad_status", f"{status} without Content-Length (the shop and cutover always send one)")
        need = int(hdrs["content-length"])
        parts_ = [rest]
        have = len(rest)
        while have < need:
            d = self._recv(True)
            parts_.append(d)
            have += len(d)
        data = b"".join(parts_)
        self.buf = data[need:]
        self.reused = True
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, data[:need]


class LoadMix:
    """The mix, started by `with LoadMix(port) as load:` and stopped at the
    end of the block.  Counters: ok, failures {kind: n}, examples {kind: the first
    failures in detail}, max_wait_ms (and max_wait_what), waits_over_1s, versions
    {X-Shop-Version: n}, per-client ok counts (by_client)."""

    def __init__(self, port, host="shop.test", keepalive=2, fresh=1, slow=1, download=1, post=1,
                 pause_ms=5, timeout=30.0, max_s=300.0):
        self.port, self.host, self.pause, self.timeout = port, host, pause_ms / 1000.0, timeout
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = {k: 0 for k in KINDS}
        self.examples = {k: [] for k in KINDS}   # the first failures of each kind, in detail
        self.max_wait_ms, self.max_wait_what = 0.0, ""
        self.waits_over_1s = 0     # requests that waited a second or more (a SYN dropped and sent again)
        self.versions = {}
        self.by_client = {}
        self.refusals = []         # monotonic times of refused connects
        self.fresh_ok = []         # (connection opened at, response done at) of successes
        self.deadline = time.monotonic() + max_s
        plan = [("keepalive", keepalive), ("fresh", fresh), ("slow", slow), ("download", download), ("post", post)]
        self.threads = []
        for kind, n in plan:
            for i in range(n):
                name = f"{kind}{i}"
                self.by_client[name] = 0
                self.threads.append(threading.Thread(target=self._run, args=(kind, name), daemon=True))

    # ------------------------------------------------------------ results

    def failed(self):
        return sum(self.failures.values())

    def failed_kinds(self):
        return {k: v for k, v in self.failures.items() if v}

    def gaps(self):
        """Runs of refusals: for each, ms from its first refusal to the end of
        the first response on a connection opened after that refusal.  A run
        with no success after it is given as None."""
        with self.lock:
            refusals = sorted(self.refusals)
            oks = sorted(self.fresh_ok)
        out, i = [], 0
        while i < len(refusals):
            first = refusals[i]
            after = [done for opened, done in oks if opened >= first]
            end = min(after) if after else None
            out.append(None if end is None else (end - first) * 1000)
            if end is None:
                break
            while i < len(refusals) and refusals[i] < end:
                i += 1
        return out

    def summary(self):
        return {"ok": self.ok, "failed": self.failed(), "kinds": self.failed_kinds(),
                "max_wait_ms": round(self.max_wait_ms, 1), "max_wait_what": self.max_wait_what,
                "waits_over_1s": self.waits_over_1s,
                "versions": dict(self.versions), "examples": {k: v for k, v in self.examples.items() if v}}

    def describe(self, skip=("refused",)):
        """One line for a test's assertion message (with the first failures of
        each kind but those in skip)."""
        first = {k: v[:4] for k, v in self.examples.items() if v and k not in skip}
        return (f"{self.ok} ok, {self.failed()} failed {self.failed_kinds()}, longest wait "
                f"{self.max_wait_ms:.0f} ms ({self.max_wait_what}); first failures: {first}")

    # ------------------------------------------------------------ clients

    def _note(self, name, what, t0, conn, opened, nominal_ms, version):
        done = time.monotonic()
        wait = (done - t0) * 1000 - nominal_ms
        with self.lock:
            self.ok += 1
            self.by_client[name] += 1
            if wait > self.max_wait_ms:
                self.max_wait_ms, self.max_wait_what = wait, what
            if wait >= 1000:
                self.waits_over_1s += 1
            if version:
                self.versions[version] = self.versions.get(version, 0) + 1
            self.fresh_ok.append((opened, done))

    def _fail(self, name, what, f):
        with self.lock:
            self.failures[f.kind] += 1
            if f.kind == "refused":
                self.refusals.append(time.monotonic())
            if len(self.examples[f.kind]) < 10:
                self.examples[f.kind].append(f"{time.monotonic():.3f} {name} {what}: {f.detail}"[:300])

    def _one(self, conn, name, method, path, want, nominal_ms=0, body=b"", check=None, headers=()):
        """One request on conn; returns the response body, or None on a failure
        (counted, the connection closed)."""
        t0 = time.monotonic()
        what = f"{method} {path}"
        try:
            status, hdrs, data = conn.request(method, path, self.host, body, headers)
            opened = conn.opened_at
            if status != want:
                raise Failure("bad_status", f"{status} {data[:120]!r}")
            if check:
                check(data)
        except Failure as f:
            conn.close()
            self._fail(name, what, f)
            # refused: nothing listens, try again soon; else a breath
            self.stop_event.wait(0.002 if f.kind == "refused" else 0.01)
            return None
        self._note(name, what, t0, conn, opened, nominal_ms, hdrs.get("x-shop-version"))
        return data

    def _run(self, kind, name):
        conn = Conn(self.port, self.timeout)
        n, cart, items = 0, None, 0
        paths = ["/api/catalog", "/api/catalog/3", "/version", "/"]
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                n += 1
                if kind == "keepalive":
                    self._one(conn, name, "GET", paths[n % len(paths)], 200)
                elif kind == "fresh":
                    self._one(conn, name, "GET", "/api/catalog/3", 200, headers=[("Connection", "close")])
                    conn.close()
                elif kind == "slow":
                    self._one(conn, name, "GET", f"/api/slow?ms={SLOW_MS}", 200, nominal_ms=SLOW_MS)
                elif kind == "download":
                    self._one(conn, name, "GET", "/api/download?mb=1", 200, check=_check_download)
                elif kind == "post":
                    if cart is None or items >= 50:
                        data = self._one(conn, name, "POST", "/api/carts", 201, body=b"{}")
                        cart, items = (json.loads(data)["cart_id"], 0) if data else (None, 0)
                    else:
                        body = json.dumps({"product_id": 1 + n % 12, "quantity": 1}).encode()
                        if self._one(conn, name, "POST", f"/api/carts/{cart}/items", 200, body=body,
                                     check=_check_cart(cart)) is not None:
                            items += 1
                self.stop_event.wait(self.pause)
        finally:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(self.timeout + 5)


def _check_download(data):
    if data != DOWNLOAD:
        at = next((i for i in range(min(len(data), len(DOWNLOAD))) if data[i] != DOWNLOAD[i]), len(data))
        raise Failure("bad_body", f"download differs at byte {at} of {len(data)}")


def _check_cart(cart):
    def check(data):
        try:
            ok = json.loads(data).get("cart_id") == cart
        except ValueError:
            ok = False
        if not ok:
            raise Failure("bad_body", f"not the cart {cart}: {data[:120]!r}")
    return check
