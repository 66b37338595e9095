"""HTTP/1.1 behaviour of the proxy, end to end: routing, keep-alive and
pipelining, the upstream pool, streaming with bounded memory, chunked
bodies, bodiless responses, 100-continue, Upgrade tunnels, hop-by-hop and
forwarding headers, parser rejections, and a replay of the llhttp vectors.

Every test runs the real binary against real backends on 127.0.0.1 and
asserts on the bytes, statuses and metrics a client or a backend sees."""
import base64, http.client, json, os, socket, threading, time
from harness import *

GiB = 1 << 30


# ---------------------------------------------------------------- helpers

def addr(be):
    return f"127.0.0.1:{be.server_address[1]}"


def single(target, routes=None):
    return {"s": {"targets": [target], "routes": routes or [{"path": "/"}]}}


def jbody(body):
    try:
        return json.loads(body)
    except ValueError:
        raise TestFailure(f"backend answer is not JSON: {body[:200]!r}")


def hvals(req, name):
    """Values of header `name` in a request the echo backend recorded."""
    return [v for k, v in req["headers"] if k.lower() == name.lower()]


def seen(be):
    with be.lock:
        return [(r.get("method"), r.get("target")) for r in be.requests]


def upstream_busy(c):
    return c.metric("cutover_upstream_connections") - c.metric("cutover_upstream_idle_connections")


def idle_open(h, t=0.2):
    """The connection stays open and silent for t seconds (no close, no
    stray bytes after the last response)."""
    return not h.closed(t) and h.buf == b""


def accepted(c):
    """Client connections accepted so far (the harness' start-up probe counts too)."""
    return c.metric("cutover_client_connections_accepted_total")


def settle(c, timeout=5.0):
    """Wait until the proxy has no busy upstream connection left, so that
    whatever it was forwarding has reached (or left) the backend."""
    poll_until(lambda: upstream_busy(c) == 0, timeout, what="no busy upstream connections")


def send_then_read(port, data, timeout=3.0):
    """Send `data` (tolerating a proxy that answers and closes before taking
    it all), then read until close or `timeout` of silence."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    return out


def head_responder(respond, log=None):
    """raw_backend handler: reads request heads one after the other (the
    requests must have no body) and writes respond(method, target, head);
    stops when it returns None."""
    def handler(conn):
        conn.settimeout(5)
        buf = b""
        for _ in range(1000):
            while b"\r\n\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            if log is not None:
                log.append(head)
            parts = head.split(b"\r\n")[0].decode("latin1").split(" ")
            out = respond(parts[0], parts[1] if len(parts) > 1 else "", head)
            if out is None:
                return
            conn.sendall(out)
    return handler


PATTERN = bytes(range(256)) * 4096 * 2  # 2 MiB of the echo backend's /bytes pattern


def check_pattern(data, offset):
    """data must be the echo /bytes pattern starting at `offset`."""
    o = offset % 256
    n = len(data)
    if n + o > len(PATTERN):
        raise TestFailure("check_pattern: piece too large")
    if data != PATTERN[o:o + n]:
        raise TestFailure(f"body bytes wrong at offset {offset}..{offset + n}")


# ---------------------------------------------------------------- 1. routing

def test_routing_host_path_and_404():
    with echo_backend() as exact, echo_backend() as wild, echo_backend() as api, echo_backend() as apiv2, \
            cutover({
                "exact": {"targets": [addr(exact)], "routes": [{"host": "shop.test", "path": "/"}]},
                "wild": {"targets": [addr(wild)],
                         "routes": [{"host": "*.shop.test", "path": "/"}, {"host": "*.wild.test", "path": "/"}]},
                "api": {"targets": [addr(api)], "routes": [{"path": "/api"}]},
                "apiv2": {"targets": [addr(apiv2)], "routes": [{"path": "/api/v2"}]},
            }) as c:
        ports = {exact.server_address[1]: "exact", wild.server_address[1]: "wild",
                 api.server_address[1]: "api", apiv2.server_address[1]: "apiv2"}
        cases = [
            ("shop.test", "/", "exact"),
            ("SHOP.Test", "/x", "exact"),                 # host names are case-insensitive
            ("shop.test:8080", "/x", "exact"),            # a port in Host is not part of the name
            ("shop.test", "/api/x", "exact"),             # the most specific host wins before the path
            ("a.shop.test", "/", "wild"),
            ("A.Shop.Test:81", "/y", "wild"),
            ("a.b.shop.test", "/", "wild"),
            ("xshop.test", "/", 404),                     # suffix must start at a label
            ("wild.test", "/", 404),                      # *.wild.test does not match wild.test
            ("other.test", "/api", "api"),
            ("other.test", "/api/x", "api"),
            ("other.test", "/api?q=1", "api"),
            ("other.test", "/api/v2", "apiv2"),           # longest prefix across two services
            ("other.test", "/api/v2/users?x=1", "apiv2"),
            ("other.test", "/api/v2x", "api"),            # /api/v2 stops at a segment boundary
            ("other.test", "/apix", 404),                 # /api does not match /apix
            ("other.test", "/", 404),
        ]
        bad = []
        for host, path, want in cases:
            before = {n: len(b.requests) for n, b in
                      (("exact", exact), ("wild", wild), ("api", api), ("apiv2", apiv2))}
            status, headers, body = http_get(c.port, path, host=host)
            if want == 404:
                if status != 404 or b"route" not in body.lower() or len(body) > 200:
                    bad.append(f"{host}{path}: expected a short 404 naming the missing route, got {status} {body!r}")
                after = {n: len(b.requests) for n, b in
                         (("exact", exact), ("wild", wild), ("api", api), ("apiv2", apiv2))}
                if after != before:
                    bad.append(f"{host}{path}: a 404 request reached a backend")
                continue
            if status != 200:
                bad.append(f"{host}{path}: expected {want}, got status {status} {body[:100]!r}")
                continue
            got = ports.get(jbody(body)["port"])
            if got != want:
                bad.append(f"{host}{path}: expected service {want}, reached {got}")
            elif jbody(body)["target"] != path:
                bad.append(f"{host}{path}: backend saw target {jbody(body)['target']!r}")
        check(not bad, "routing mismatches:\n  " + "\n  ".join(bad))
        eq(c.metric("cutover_local_responses_total", status="404"), 4.0, "local 404 count")


def test_weighted_round_robin_1_to_3():
    with echo_backend() as a, echo_backend() as b, \
            cutover({"w": {"targets": [(addr(a), 1), (addr(b), 3)]}}) as c:
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
        order = []
        for i in range(400):
            conn.request("GET", f"/w/{i}", headers={"Host": "w.test"})
            r = conn.getresponse()
            body = r.read()
            eq(r.status, 200, f"status of request {i}")
            order.append("a" if jbody(body)["port"] == a.server_address[1] else "b")
        conn.close()
        eq((order.count("a"), order.count("b")), (100, 300), "requests to (weight 1, weight 3)")
        eq((len(a.requests), len(b.requests)), (100, 300), "requests recorded by the backends")
        longest_b = max(len(run) for run in "".join(order).split("a"))
        check(longest_b <= 3, f"not smooth: {longest_b} requests in a row to the weight-3 target")


def test_routing_absolute_form_uses_target_authority():
    """RFC 9112 3.2.2: with an absolute-form target the Host field is
    ignored in favour of the target's authority, so routing must follow the
    authority (else a client reaches a host-routed service it did not name,
    and the backend sees a target for another host)."""
    with echo_backend() as shop, echo_backend() as admin, \
            cutover({"shop": {"targets": [addr(shop)], "routes": [{"host": "shop.test", "path": "/"}]},
                     "admin": {"targets": [addr(admin)], "routes": [{"host": "admin.test", "path": "/"}]}}) as c:
        with HttpConn(c.port) as h:
            h.send(b"GET http://admin.test/x HTTP/1.1\r\nHost: shop.test\r\n\r\n")
            r = h.read_response()
        check(r.status == 400 or (r.status == 200 and jbody(r.body)["port"] == admin.server_address[1]),
              f"absolute-form http://admin.test/x with Host: shop.test was routed by Host: "
              f"status {r.status}, shop saw {seen(shop)}, admin saw {seen(admin)}")
        if r.status == 200:
            eq(hvals(admin.requests[-1], "host"), ["admin.test"], "Host forwarded with an absolute-form target")


# ---------------------------------------------------------------- 2. client keep-alive

def test_client_keepalive_many_requests_one_connection():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        accepted0 = accepted(c)
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
        for i in range(100):
            conn.request("GET", f"/ka/{i}", headers={"Host": "ka.test"})
            r = conn.getresponse()
            body = r.read()
            eq(r.status, 200, f"status {i}")
            eq(jbody(body)["target"], f"/ka/{i}", f"target {i}")
            check((r.getheader("Connection") or "").lower() != "close", f"proxy closed after request {i}")
        conn.close()
        eq(accepted(c) - accepted0, 1.0, "client connections accepted")
        eq(len(be.requests), 100, "requests at the backend")


def test_pipelining_five_requests_in_one_send():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        reqs = (request_bytes("GET", "/p1", "pipe.test")
                + request_bytes("POST", "/p2", "pipe.test", [("Content-Length", "5")], b"hello")
                + request_bytes("GET", "/p3", "pipe.test")
                + request_bytes("POST", "/p4", "pipe.test", [("Transfer-Encoding", "chunked")],
                                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                + request_bytes("GET", "/p5", "pipe.test", [("Connection", "close")]))
        data = raw(c.port, reqs, timeout=5)
        resps = parse_responses(data)
        eq(len(resps), 5, f"number of responses in {data[:300]!r}...")
        for i, (status, headers, body) in enumerate(resps, 1):
            eq(status, 200, f"status of response {i}")
            j = jbody(body)
            eq(j["target"], f"/p{i}", f"response {i} out of order")
        eq(jbody(resps[1][2])["body"], "hello", "body of /p2")
        eq(jbody(resps[3][2])["body"], "abcde", "body of /p4")
        eq(resps[4][1].get("connection", "").lower(), "close", "Connection on the last response")
        eq(seen(be), [("GET", "/p1"), ("POST", "/p2"), ("GET", "/p3"), ("POST", "/p4"), ("GET", "/p5")],
           "requests at the backend")


def test_http10_client_close_and_keepalive():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        accepted0 = accepted(c)
        # HTTP/1.0 without keep-alive: Connection: close and the proxy closes
        with HttpConn(c.port) as h:
            h.send(b"GET /ten HTTP/1.0\r\nHost: ten.test\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "1.0 status")
            eq(jbody(r.body)["target"], "/ten", "1.0 target")
            eq((r.get("connection") or "").lower(), "close", "Connection header for a 1.0 client")
            check(h.closed(2.0), "proxy kept an HTTP/1.0 connection without keep-alive open")
        # HTTP/1.0 with keep-alive: stays open
        with HttpConn(c.port) as h:
            h.send(b"GET /ka1 HTTP/1.0\r\nHost: ten.test\r\nConnection: keep-alive\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "1.0 keep-alive status")
            eq(r.framing, "length", "1.0 keep-alive response framing")
            eq((r.get("connection") or "").lower(), "keep-alive", "Connection header for a 1.0 keep-alive client")
            check(idle_open(h, 0.3), f"proxy closed a 1.0 keep-alive connection or sent stray bytes {h.buf[:80]!r}")
            h.send(b"GET /ka2 HTTP/1.0\r\nHost: ten.test\r\nConnection: keep-alive\r\n\r\n")
            r = h.read_response()
            eq(jbody(r.body)["target"], "/ka2", "second request on the 1.0 keep-alive connection")
        eq(accepted(c) - accepted0, 2.0, "client connections accepted")


# ---------------------------------------------------------------- 3. upstream pool

def test_upstream_pool_reuse_across_requests_and_clients():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        accepted0 = accepted(c)
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
        for i in range(200):
            conn.request("GET", f"/one/{i}", headers={"Host": "pool.test"})
            r = conn.getresponse()
            r.read()
            eq(r.status, 200, "status")
        conn.close()
        check(be.connections <= 2, f"200 requests on one client used {be.connections} upstream connections")
        # a new client connection for every request: the pool still serves them
        for i in range(100):
            status, _, _ = http_get(c.port, f"/fresh/{i}", host="pool.test")
            eq(status, 200, "status")
        check(be.connections <= 2, f"100 sequential clients used {be.connections} upstream connections in all")
        # several client connections used in turn
        conns = [http.client.HTTPConnection("127.0.0.1", c.port, timeout=10) for _ in range(4)]
        for i in range(100):
            k = conns[i % 4]
            k.request("GET", f"/turn/{i}", headers={"Host": "pool.test"})
            r = k.getresponse()
            r.read()
            eq(r.status, 200, "status")
        for k in conns:
            k.close()
        check(be.connections <= 2, f"4 alternating clients used {be.connections} upstream connections in all")
        eq(len(be.requests), 400, "requests at the backend")
        check(c.metric("cutover_upstream_connections") <= 2, "open upstream connections gauge above 2")
        eq(accepted(c) - accepted0, 105.0, "client connections accepted")


# ---------------------------------------------------------------- 4. streaming with bounded memory

RSS_LIMIT_KB = 64 * 1024


def test_stream_1gb_download_bounded_memory():
    with nginx_backend("location / { }") as (nport, d), cutover(single(f"127.0.0.1:{nport}")) as c:
        with open(os.path.join(d, "www", "big"), "wb") as f:
            f.truncate(GiB)  # sparse: nginx reads zeros fast
        with RssSampler(c) as rss, HttpConn(c.port, timeout=20) as h:
            t0 = time.time()
            h.send(b"GET /big HTTP/1.1\r\nHost: dl.test\r\n\r\n")
            status, _, _, headers, raw_head = h.read_head()
            eq(status, 200, "status")
            cl = [v for k, v in headers if k.lower() == "content-length"]
            eq(cl, [str(GiB)], "Content-Length")
            buf = bytearray(1 << 20)
            zeros = bytes(1 << 20)
            got = len(h.buf)
            check(h.buf == bytes(len(h.buf)), "non-zero bytes in the body")
            h.buf = b""
            mv = memoryview(buf)
            while got < GiB:
                check(time.time() - t0 < 40, f"download too slow: {got} bytes after 40 s")
                n = h.sock.recv_into(mv, min(len(buf), GiB - got))
                check(n > 0, f"connection closed after {got} of {GiB} bytes")
                if n == len(buf):
                    ok = buf == zeros
                else:
                    ok = mv[:n] == zeros[:n]
                check(ok, f"non-zero bytes near offset {got}")
                got += n
            eq(got, GiB, "bytes received")
            # exact framing: the connection is still in step for a next request
            h.send(b"GET /missing HTTP/1.1\r\nHost: dl.test\r\n\r\n")
            eq(h.read_response().status, 404, "status of the request after the download")
        print(f"    1 GiB download: {time.time() - t0:.1f} s, cutover RSS peak {rss.max_kb} kB")
        check(rss.max_kb < RSS_LIMIT_KB, f"cutover RSS peaked at {rss.max_kb} kB during a 1 GB download")
        check(rss.samples > 5, "too few RSS samples")


def _upload(c, be, chunked):
    block = bytes(range(256)) * 4096  # 1 MiB
    with RssSampler(c) as rss, HttpConn(c.port, timeout=20) as h:
        t0 = time.time()
        if chunked:
            h.send(b"POST /up HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b"%x\r\n" % len(block) + block + b"\r\n"
        else:
            h.send(b"POST /up HTTP/1.1\r\nHost: up.test\r\nContent-Length: %d\r\n\r\n" % GiB)
            piece = block
        for i in range(GiB // len(block)):
            if i % 64 == 0:
                check(time.time() - t0 < 40, f"upload too slow: {i} MiB after 40 s")
            h.send(piece)
        if chunked:
            h.send(b"0\r\n\r\n")
        r = h.read_response("POST")
        eq(r.status, 200, "status")
        eq(jbody(r.body)["target"], "/up", "target")
    print(f"    1 GiB upload ({'chunked' if chunked else 'Content-Length'}): {time.time() - t0:.1f} s, "
          f"cutover RSS peak {rss.max_kb} kB")
    check(rss.max_kb < RSS_LIMIT_KB, f"cutover RSS peaked at {rss.max_kb} kB during a 1 GB upload")
    eq(be.body_bytes, GiB, "body bytes received by the backend")


def test_stream_1gb_upload_content_length_bounded_memory():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        be.keep_bodies = False
        _upload(c, be, chunked=False)


def test_stream_1gb_upload_chunked_bounded_memory():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        be.keep_bodies = False
        _upload(c, be, chunked=True)


def test_stream_slow_reader_backpressure():
    size = 128 << 20
    with echo_backend() as be, cutover(single(addr(be))) as c:
        with RssSampler(c) as rss, HttpConn(c.port, timeout=20) as h:
            h.send(b"GET /bytes/%d HTTP/1.1\r\nHost: slow.test\r\n\r\n" % size)
            status, _, _, headers, _ = h.read_head()
            eq(status, 200, "status")
            got = 0
            if h.buf:
                check_pattern(h.buf, 0)
                got, h.buf = len(h.buf), b""
            # slow: 4 KiB every 10 ms for 0.5 s
            end = time.time() + 0.5
            while time.time() < end:
                d = h.sock.recv(4096)
                check(d, "closed during the slow phase")
                check_pattern(d, got)
                got += len(d)
                time.sleep(0.01)
            # stalled: the proxy must stop reading upstream, not buffer the rest
            stall_end = time.time() + 1.5
            while time.time() < stall_end:
                rss.sample()
                time.sleep(0.05)
            check(rss.max_kb < RSS_LIMIT_KB, f"RSS {rss.max_kb} kB while the client was stalled")
            # resume at full speed
            t0 = time.time()
            buf = bytearray(1 << 20)
            mv = memoryview(buf)
            while got < size:
                check(time.time() - t0 < 30, f"resumed download too slow: {got} bytes")
                n = h.sock.recv_into(mv, min(len(buf), size - got))
                check(n > 0, f"connection closed after {got} of {size} bytes")
                check_pattern(bytes(mv[:n]), got)
                got += n
            eq(got, size, "bytes received")
            h.send(b"GET /after HTTP/1.1\r\nHost: slow.test\r\n\r\n")
            eq(jbody(h.read_response().body)["target"], "/after", "request after the slow download")
        print(f"    128 MiB slow reader: cutover RSS peak {rss.max_kb} kB")
        check(rss.max_kb < RSS_LIMIT_KB, f"cutover RSS peaked at {rss.max_kb} kB")


def test_stream_stalled_uploads_do_not_starve_other_clients():
    """24 uploads to a target that never reads fill every buffer on their
    way (backpressure): the proxy must keep serving everyone else at once,
    with bounded memory (on io_uring: no receive buffer pool drained by
    the stalled sockets)."""
    release = threading.Event()

    def never_reads(conn):
        release.wait(15)

    with raw_backend(never_reads) as (slow_port, _), echo_backend() as be, \
            cutover({"slow": {"targets": [f"127.0.0.1:{slow_port}"], "routes": [{"path": "/upload"}]},
                     "fast": {"targets": [addr(be)], "routes": [{"path": "/"}]}}) as c:
        socks = []
        try:
            with RssSampler(c) as rss:
                chunk = b"u" * 65536
                for _ in range(24):
                    s = socket.create_connection(("127.0.0.1", c.port))
                    s.sendall(b"POST /upload HTTP/1.1\r\nHost: up.test\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                    s.setblocking(False)
                    socks.append(s)
                # push until every upload is stuck: nothing more is accepted for 0.3 s
                sent, last_progress = 0, time.time()
                while time.time() - last_progress < 0.3:
                    check(time.time() - last_progress < 10, "uploads never stalled")
                    progress = False
                    for s in socks:
                        try:
                            sent += s.send(chunk)
                            progress = True
                        except BlockingIOError:
                            pass
                    if progress:
                        last_progress = time.time()
                    rss.sample()
                for i in range(20):
                    t0 = time.time()
                    status, _, _ = http_get(c.port, f"/still-served/{i}", timeout=5)
                    eq(status, 200, "status of a request beside the stalled uploads")
                    check(time.time() - t0 < 2, f"request {i} took {time.time() - t0:.1f} s")
                    rss.sample()
            print(f"    24 stalled uploads ({sent >> 20} MiB taken by the kernel and the proxy): "
                  f"20 other requests served; cutover RSS peak {rss.max_kb} kB")
            check(rss.max_kb < RSS_LIMIT_KB, f"cutover RSS peaked at {rss.max_kb} kB")
        finally:
            release.set()
            for s in socks:
                s.close()


# ---------------------------------------------------------------- 5. chunked bodies

CHUNKED_REQ_BODY = (b"5;ext=1\r\nhello\r\n"
                    b"6;a=b;c=\"d e\"\r\n world\r\n"
                    b"0\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n")


def test_chunked_request_and_response_with_extensions_and_trailers():
    # request: the raw body bytes (extensions and trailers) reach the backend intact
    got = []

    def capture(conn):
        conn.settimeout(5)
        head, rest = read_head_raw(conn)
        while len(rest) < len(CHUNKED_REQ_BODY) or not rest.endswith(b"\r\n\r\n"):
            d = conn.recv(65536)
            if not d:
                break
            rest += d
        got.append((head, rest))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with raw_backend(capture) as (rport, _), cutover(single(f"127.0.0.1:{rport}")) as c:
        with HttpConn(c.port) as h:
            h.send(b"POST /ch HTTP/1.1\r\nHost: ch.test\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_REQ_BODY)
            r = h.read_response("POST")
            eq((r.status, r.body), (200, b"ok"), "response")
        eq(len(got), 1, "requests at the raw backend")
        head, body = got[0]
        check(b"\r\ntransfer-encoding: chunked\r\n" in head.lower(), f"request head lost chunked framing: {head!r}")
        eq(body, CHUNKED_REQ_BODY, "chunked request body as received by the backend")

    # decoded by a real HTTP server: body and framing are right
    with echo_backend() as be, cutover(single(addr(be))) as c:
        with HttpConn(c.port) as h:
            h.send(b"POST /ch HTTP/1.1\r\nHost: ch.test\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_REQ_BODY)
            r = h.read_response("POST")
            eq(jbody(r.body)["body"], "hello world", "decoded request body")
            # response: the echo backend's /chunked/N with a trailer
            h.send(b"GET /chunked/100000 HTTP/1.1\r\nHost: ch.test\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "status")
            eq(r.framing, "chunked", "response framing")
            eq(len(r.body), 100000, "response body length")
            check(r.body == (bytes(range(256)) * 64 * 7)[:100000], "response body bytes")
            eq(r.trailers, [("X-Checksum", "done")], "trailers")
            # still in step
            h.send(b"GET /next HTTP/1.1\r\nHost: ch.test\r\n\r\n")
            eq(jbody(h.read_response().body)["target"], "/next", "request after the chunked response")

    # response chunk extensions and trailers pass through byte for byte
    resp_body = b"5;name=val\r\nhello\r\n6;q=\"x y\"\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
    with raw_backend(head_responder(lambda m, t, h: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + resp_body)) as (rport, _), \
            cutover(single(f"127.0.0.1:{rport}")) as c:
        with HttpConn(c.port) as h:
            h.send(b"GET /ext HTTP/1.1\r\nHost: ch.test\r\n\r\n")
            status, _, _, headers, _ = h.read_head()
            eq(status, 200, "status")
            eq([v.lower() for k, v in headers if k.lower() == "transfer-encoding"], ["chunked"], "Transfer-Encoding")
            eq(h.read_exact(len(resp_body)), resp_body, "chunked response bytes seen by the client")


def test_chunked_response_to_http10_client_is_dechunked():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        with HttpConn(c.port) as h:
            h.send(b"GET /chunked/100000 HTTP/1.0\r\nHost: ch.test\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "status")
            eq(r.get_all("transfer-encoding"), [], "Transfer-Encoding sent to an HTTP/1.0 client")
            eq(r.framing, "close", "framing for the 1.0 client (no Content-Length)")
            eq((r.get("connection") or "").lower(), "close", "Connection header")
            eq(len(r.body), 100000, "de-chunked body length")
            check(r.body == (bytes(range(256)) * 64 * 7)[:100000], "de-chunked body bytes")


# ---------------------------------------------------------------- 6. bodiless responses

def test_head_204_304_have_no_body_and_connection_stays_usable():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        accepted0 = accepted(c)
        with HttpConn(c.port) as h:
            h.send(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            r = h.read_response("HEAD")
            eq((r.status, r.get("content-length")), (200, "1000"), "HEAD status and Content-Length")
            h.send(b"GET /status/204 HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            eq(h.read_response().status, 204, "204")
            h.send(b"GET /status/304 HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            eq(h.read_response().status, 304, "304")
            h.send(b"HEAD /x HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            eq(h.read_response("HEAD").status, 200, "HEAD on a JSON resource")
            h.send(b"GET /after HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            r = h.read_response()
            eq(jbody(r.body)["target"], "/after", "GET after HEAD/204/304 on one connection")
            check(idle_open(h), f"stray bytes or close after the last response: {h.buf[:80]!r}")
        eq(accepted(c) - accepted0, 1.0, "client connections")

    # framing headers that must not make the proxy wait for a body
    def respond(method, target, head):
        if target == "/head-chunked":
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        if target == "/304-cl":
            return b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n"
        if target == "/head-cl":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"

    with raw_backend(head_responder(respond)) as (rport, _), cutover(single(f"127.0.0.1:{rport}")) as c:
        with HttpConn(c.port, timeout=3) as h:
            h.send(b"HEAD /head-chunked HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            eq(h.read_response("HEAD").status, 200, "HEAD with chunked framing")
            h.send(b"GET /304-cl HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            r = h.read_response()
            eq((r.status, r.get("etag")), (304, '"x"'), "304 with Content-Length")
            h.send(b"HEAD /head-cl HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            r = h.read_response("HEAD")
            eq((r.status, r.get("content-length")), (200, "12345"), "HEAD with Content-Length")
            h.send(b"GET /last HTTP/1.1\r\nHost: nb.test\r\n\r\n")
            r = h.read_response()
            eq((r.status, r.body), (200, b"done"), "request after the bodiless responses")


# ---------------------------------------------------------------- 7. Expect: 100-continue

def test_expect_100_continue():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        with HttpConn(c.port, timeout=3) as h:
            h.send(b"POST /expect HTTP/1.1\r\nHost: ex.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
            status, reason, _, headers, raw_head = h.read_head()  # before any body byte is sent
            eq(status, 100, f"interim status (head {raw_head!r})")
            eq(h.buf, b"", "bytes after 100 Continue before the body was sent")
            eq(be.requests, [], "backend recorded a request before its body")
            h.send(b"hello world")
            r = h.read_response("POST")
            eq(r.status, 200, "final status")
            j = jbody(r.body)
            eq((j["target"], j["body"]), ("/expect", "hello world"), "request as the backend saw it")
            # the connection goes on
            h.send(b"GET /after HTTP/1.1\r\nHost: ex.test\r\n\r\n")
            eq(jbody(h.read_response().body)["target"], "/after", "request after 100-continue")
        eq(seen(be), [("POST", "/expect"), ("GET", "/after")], "backend requests")

    # the backend refuses at once (417) and never reads the body: the client,
    # which never sends it, gets the 417; what it sends next must never be
    # taken for the unsent body (nor the body for a request)
    log = []
    refuse = head_responder(lambda m, t, head: b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"
                            if t == "/expect" else b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", log)
    with raw_backend(refuse) as (rport, _), cutover(single(f"127.0.0.1:{rport}")) as c:
        with HttpConn(c.port, timeout=3) as h:
            h.send(b"POST /expect HTTP/1.1\r\nHost: ex.test\r\nContent-Length: 40\r\nExpect: 100-continue\r\n\r\n")
            r = h.read_response("POST")
            eq(r.status, 417, "final status without 100 Continue")
            try:
                h.send(b"GET /next HTTP/1.1\r\nHost: ex.test\r\n\r\n")
                r2 = h.read_response()
                eq((r2.status, r2.body), (200, b"next"), "request after the refused upload")
            except (TestFailure, OSError):
                pass  # closing the connection is the other correct answer
        heads = [l.split(b"\r\n")[0] for l in log]
        check(all(x in (b"POST /expect HTTP/1.1", b"GET /next HTTP/1.1") for x in heads),
              f"backend saw {heads}")


# ---------------------------------------------------------------- 8. Upgrade tunnel

def test_websocket_upgrade_tunnel():
    events = []

    def ws(conn):
        conn.settimeout(5)
        head, rest = read_head_raw(conn)
        events.append(("head", head))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        data = rest
        for _ in range(100000):
            if data:
                if data == b"BYE":
                    events.append("server-close")
                    return  # raw_backend closes the socket
                conn.sendall(data)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                events.append("timeout")
                return
            if not data:
                events.append("eof")
                conn.sendall(b"last words")  # after the client's half-close
                return

    req = (b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    with raw_backend(ws) as (rport, _), cutover(single(f"127.0.0.1:{rport}")) as c:
        # 1: client closes its side first
        with HttpConn(c.port, timeout=3) as h:
            h.send(req)
            status, _, _, headers, raw_head = h.read_head()
            eq(status, 101, "status")
            hd = {k.lower(): v.lower() for k, v in headers}
            eq(hd.get("upgrade"), "websocket", f"Upgrade header in {raw_head!r}")
            check("upgrade" in hd.get("connection", ""), f"Connection header in {raw_head!r}")
            h.send(b"ping")
            eq(h.read_exact(4), b"ping", "echo through the tunnel")
            big = bytes(range(256)) * 400  # 100 KiB each way
            h.send(big)
            eq(h.read_exact(len(big)), big, "100 KiB through the tunnel")
            h.shut_write()
            eq(h.read_to_close(), b"last words", "bytes the backend sent after the client's half-close")
        poll_until(lambda: "eof" in events, 3, what="backend seeing the client's close")
        head = events[0][1].lower()
        check(b"\r\nupgrade: websocket" in head and b"connection: upgrade" in head,
              f"upgrade request as the backend saw it: {events[0][1]!r}")
        # 2: server closes first
        with HttpConn(c.port, timeout=3) as h:
            h.send(req)
            eq(h.read_head()[0], 101, "status")
            h.send(b"x" * 10)
            eq(h.read_exact(10), b"x" * 10, "echo")
            h.send(b"BYE")
            check(h.closed(3.0), "backend close did not close the client side")
        check("server-close" in events, "backend did not get BYE")
        # 3: bulk both ways at once (16 MiB): backpressure in the tunnel, no deadlock
        with HttpConn(c.port, timeout=10) as h:
            h.send(req)
            eq(h.read_head()[0], 101, "status")
            n = 16 << 20
            blob = bytes(range(256)) * (n // 256)
            got = []

            def reader():
                buf = bytearray()
                while len(buf) < n:
                    try:
                        d = h.sock.recv(1 << 20)
                    except OSError:
                        break
                    if not d:
                        break
                    buf += d
                got.append(bytes(buf))

            t = threading.Thread(target=reader, daemon=True)
            t.start()
            h.sock.sendall(blob)
            t.join(20)
            check(got and got[0] == blob, f"16 MiB echoed through the tunnel: got {len(got[0]) if got else 'nothing'}")


def test_upgrade_refused_by_backend_stays_http():
    """A backend that answers an Upgrade request with a plain 200 keeps the
    connection in HTTP: the next bytes are parsed as a request, not tunnelled."""
    with strict_echo_backend() as be, cutover(single(addr(be))) as c:
        with HttpConn(c.port, timeout=3) as h:
            h.send(b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "status when the backend does not switch")
            h.send(b"GET /after HTTP/1.1\r\nHost: ws.test\r\n\r\n")
            eq(jbody(h.read_response().body)["target"], "/after", "request after a refused upgrade")
        eq(seen(be), [("GET", "/ws"), ("GET", "/after")], "backend requests")


def test_close_delimited_response():
    """An upstream response without length is delimited by the close: the
    client gets the whole body and then the close (never a keep-alive
    connection whose next response it would mix with the body)."""
    body = bytes(range(256)) * 100

    def handler(conn):
        conn.settimeout(3)
        read_head_raw(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + body)

    with raw_backend(handler) as (rport, _), cutover(single(f"127.0.0.1:{rport}")) as c:
        for version in (b"1.1", b"1.0"):
            with HttpConn(c.port, timeout=3) as h:
                h.send(b"GET /stream HTTP/" + version + b"\r\nHost: cl.test\r\n\r\n")
                r = h.read_response()
                eq(r.status, 200, "status")
                check(r.framing in ("close", "chunked"), f"framing {r.framing}")
                eq(r.body, body, f"HTTP/{version.decode()} close-delimited body")
                if r.framing == "close":
                    eq((r.get("connection") or "").lower(), "close", "Connection header")


# ---------------------------------------------------------------- 9. hop-by-hop and forwarding headers

HOP = ["connection", "keep-alive", "te", "trailer", "proxy-connection", "upgrade", "x-foo"]


def test_hop_by_hop_request_headers_removed():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        with HttpConn(c.port) as h:
            h.send(b"GET /hop HTTP/1.1\r\nHost: hop.test\r\n"
                   b"Connection: keep-alive, X-Foo\r\nX-Foo: secret\r\nKeep-Alive: timeout=5\r\n"
                   b"TE: trailers, deflate\r\nTrailer: X-Whatever\r\nProxy-Connection: keep-alive\r\n"
                   b"Upgrade: h2c\r\nX-Bar: visible\r\n\r\n")
            r = h.read_response()
            eq(r.status, 200, "status")
            check(idle_open(h), f"connection closed or stray bytes after a keep-alive request: {h.buf[:80]!r}")
        req = be.requests[0]
        leaked = [(k, v) for k, v in req["headers"] if k.lower() in HOP]
        eq(leaked, [], "hop-by-hop headers that reached the backend")
        eq(hvals(req, "x-bar"), ["visible"], "end-to-end header X-Bar")


def test_forwarded_headers():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        http_get(c.port, "/f1", host="fwd.test:8080", headers={"X-Forwarded-For": "10.0.0.1"})
        r1 = be.requests[-1]
        eq(hvals(r1, "x-forwarded-for"), ["10.0.0.1, 127.0.0.1"], "X-Forwarded-For appended")
        eq(hvals(r1, "x-forwarded-proto"), ["http"], "X-Forwarded-Proto")
        eq(hvals(r1, "x-forwarded-host"), ["fwd.test:8080"], "X-Forwarded-Host")
        eq(hvals(r1, "host"), ["fwd.test:8080"], "Host kept")
        # no XFF from the client; spoofed proto/host are replaced
        http_get(c.port, "/f2", host="fwd.test",
                 headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test"})
        r2 = be.requests[-1]
        eq(hvals(r2, "x-forwarded-for"), ["127.0.0.1"], "X-Forwarded-For without a client value")
        eq(hvals(r2, "x-forwarded-proto"), ["http"], "spoofed X-Forwarded-Proto replaced")
        eq(hvals(r2, "x-forwarded-host"), ["fwd.test"], "spoofed X-Forwarded-Host replaced")
        # two XFF fields are joined in order
        with HttpConn(c.port) as h:
            h.send(b"GET /f3 HTTP/1.1\r\nHost: fwd.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
                   b"X-Forwarded-For: 10.0.0.2\r\n\r\n")
            eq(h.read_response().status, 200, "status")
        eq(hvals(be.requests[-1], "x-forwarded-for"), ["10.0.0.1, 10.0.0.2, 127.0.0.1"], "two XFF fields")


def test_request_id():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        ids = []
        for i in range(2):
            status, headers, _ = http_get(c.port, f"/gen{i}", host="rid.test")
            v = hvals(be.requests[-1], "x-request-id")
            eq(len(v), 1, "X-Request-Id count when the client sent none")
            check(len(v[0]) >= 8, f"generated X-Request-Id too short: {v[0]!r}")
            ids.append(v[0])
        check(ids[0] != ids[1], f"the same X-Request-Id for two requests: {ids}")
        http_get(c.port, "/kept", host="rid.test", headers={"X-Request-Id": "client-id-42"})
        eq(hvals(be.requests[-1], "x-request-id"), ["client-id-42"], "valid client X-Request-Id kept")
        http_get(c.port, "/bad", host="rid.test", headers={"X-Request-Id": "bad id <script>"})
        v = hvals(be.requests[-1], "x-request-id")
        eq(len(v), 1, f"X-Request-Id count after an invalid client value (got {v!r})")
        check(v[0] != "bad id <script>", "invalid client X-Request-Id forwarded")


def test_hop_by_hop_response_headers_removed():
    resp = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret\r\nX-Secret: 1\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Public: yes\r\n\r\nok")
    with raw_backend(head_responder(lambda m, t, h: resp)) as (rport, _), \
            cutover(single(f"127.0.0.1:{rport}")) as c:
        with HttpConn(c.port) as h:
            h.send(b"GET /r HTTP/1.1\r\nHost: hop.test\r\n\r\n")
            r = h.read_response()
            eq((r.status, r.body), (200, b"ok"), "response")
            names = [k.lower() for k, _ in r.headers]
            for bad in ("x-secret", "keep-alive", "proxy-connection"):
                check(bad not in names, f"{bad} passed to the client: {r.raw_head!r}")
            check("x-secret" not in (r.get("connection") or "").lower(), f"Connection passed on: {r.raw_head!r}")
            eq(r.get("x-public"), "yes", "end-to-end response header")
            h.send(b"GET /r2 HTTP/1.1\r\nHost: hop.test\r\n\r\n")
            eq(h.read_response().body, b"ok", "second response on the connection")


# ---------------------------------------------------------------- 10. parser rejections

REJECTIONS = [
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: r.test\r\nX-A: a\r\n b\r\n\r\n", 400, ["fold"]),
    ("bare LF", b"GET / HTTP/1.1\r\nHost: r.test\nX-A: a\r\n\r\n", 400, ["lf"]),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: r.test\r\nX-A: a\x00b\r\n\r\n", 400, ["character", "nul"]),
    ("bad method token", b"G@T / HTTP/1.1\r\nHost: r.test\r\n\r\n", 400, ["method"]),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: r.test\r\nX-A : a\r\n\r\n", 400, ["colon", "whitespace"]),
    ("missing Host", b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400, ["host"]),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: r.test\r\nHost: s.test\r\n\r\n", 400, ["host"]),
    ("CL+TE", b"POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n", 400, ["transfer-encoding"]),
    ("two different CLs", b"POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                          b"hello!", 400, ["content-length"]),
    ("bad CL", b"POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: 5x\r\n\r\nhello", 400, ["content-length"]),
    ("negative CL", b"POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: -1\r\n\r\nhello", 400, ["content-length"]),
    ("20 kB URI", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: r.test\r\n\r\n", 414, ["target", "uri"]),
    ("40 kB of headers", b"GET / HTTP/1.1\r\nHost: r.test\r\n"
                         + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 990) for i in range(40)) + b"\r\n",
     431, ["header"]),
]


def test_parser_rejections_through_the_proxy():
    with echo_backend() as be, cutover(single(addr(be))) as c:
        bad = []
        for name, data, want, words in REJECTIONS:
            out = send_then_read(c.port, data + b"GET /smuggled HTTP/1.1\r\nHost: r.test\r\n\r\n", timeout=2)
            try:
                resps = parse_responses(out)
            except (TestFailure, ValueError, IndexError) as e:
                bad.append(f"{name}: unparsable answer {out[:200]!r} ({e})")
                continue
            if not resps:
                bad.append(f"{name}: no answer at all (connection closed or reset)")
                continue
            status, headers, body = resps[0]
            text = body.decode("latin1").lower()
            if status != want:
                bad.append(f"{name}: expected {want}, got {status} {body[:100]!r}")
            elif not text.startswith(str(want)) or not any(w in text for w in words):
                bad.append(f"{name}: body does not name the reason ({words}): {body!r}")
            if len(resps) != 1:
                bad.append(f"{name}: {len(resps)} responses, expected 1")
            if headers.get("connection", "").lower() != "close":
                bad.append(f"{name}: no Connection: close on the rejection")
            if be.requests:
                bad.append(f"{name}: backend received {seen(be)}")
                be.requests.clear()
        check(not bad, "rejections:\n  " + "\n  ".join(bad))
        eq(be.connections, 0, "connections to the backend")


# ---------------------------------------------------------------- 11. llhttp vector replay

def _with_host(raw_bytes):
    """Insert a Host field right after the request line (after any empty
    lines that precede it)."""
    start = len(raw_bytes) - len(raw_bytes.lstrip(b"\r\n"))
    i = raw_bytes.find(b"\n", start)
    if i < 0:
        return raw_bytes
    return raw_bytes[:i + 1] + b"Host: vector.test\r\n" + raw_bytes[i + 1:]


def test_llhttp_request_vectors_replay():
    """Every `request`-mode llhttp vector through the proxy to a strict echo
    backend.  reject: answered 4xx/5xx, and the backend saw at most the
    messages the vector holds before the error.  accept (and the -upgrade /
    -then-close variants): what reached the backend is a prefix of the
    vector's messages (a proxy may be stricter than llhttp), every forwarded
    request got a well-formed response, and a request the proxy did not
    forward was answered with an error."""
    path = os.path.join(SHARED, "http-vectors", "llhttp", "requests.jsonl")
    vectors = [json.loads(l) for l in open(path) if l.strip()]
    vectors = [v for v in vectors if v["mode"] == "request"]
    check(len(vectors) > 100, f"only {len(vectors)} request vectors in {path}")
    refused = []
    counts = {"reject-ok": 0, "accept-full": 0, "accept-partial": 0, "accept-refused": 0, "incomplete": 0}
    bad = []
    with strict_echo_backend() as be, cutover(single(addr(be))) as c:
        be.handle_error = lambda *a: None
        for v in vectors:
            vid = f"{v['id']} ({v['name']})"
            data = base64.b64decode(v["raw_b64"])
            if not v["has_host_header"]:
                data = _with_host(data)
            expected = [(m["method"], m["url"]) for m in v["messages"]]
            with be.lock:
                be.requests.clear()
            statuses = []
            with HttpConn(c.port, timeout=3) as h:
                try:
                    h.send(data)
                    h.shut_write()  # all of it: the proxy must finish and close
                except OSError:
                    pass
                try:
                    for i in range(len(expected) + 2):
                        if h.closed(3):
                            break
                        method = expected[i][0] if i < len(expected) else "GET"
                        r = h.read_response(method)
                        statuses.append(r.status)
                        if not 100 <= r.status <= 599:
                            raise TestFailure(f"status {r.status}")
                        if r.status == 101:
                            break
                    else:
                        raise TestFailure(f"more responses than requests: {statuses}")
                except (TestFailure, OSError, ValueError) as e:
                    bad.append(f"{vid}: malformed response stream after {statuses}: {e}")
                    continue
            try:
                settle(c)
            except TestFailure as e:
                bad.append(f"{vid}: {e}")
                continue
            with be.lock:
                recorded = list(be.requests)
            got = [(r.get("method"), r.get("target")) for r in recorded]
            broken = [r for r in recorded if "bad" in r]
            if broken:
                bad.append(f"{vid}: the proxy forwarded something a strict server rejects: {broken}")
                continue
            if got != expected[:len(got)]:
                bad.append(f"{vid}: backend saw {got}, vector messages {expected}")
                continue
            if not statuses and not got:
                # nothing forwarded, no answer: fine only if the proxy is still
                # waiting for the rest of a message when the client stays
                with HttpConn(c.port, timeout=3) as h:
                    h.send(data)
                    if h.closed(0.5):
                        bad.append(f"{vid}: connection closed without any answer")
                        continue
                settle(c)
                counts["incomplete"] += 1
                continue
            if len(statuses) < len(got):
                bad.append(f"{vid}: {len(got)} requests forwarded, {len(statuses)} responses")
                continue
            if v["expect"] == "reject":
                if not statuses or statuses[-1] < 400:
                    bad.append(f"{vid}: reject vector answered {statuses}")
                    continue
                counts["reject-ok"] += 1
            elif not expected:
                counts["incomplete"] += 1
            elif len(got) == len(expected):
                counts["accept-full"] += 1
            elif got:
                counts["accept-partial"] += 1
            else:
                counts["accept-refused"] += 1
                refused.append(f"{v['id']}={statuses[:1]}")
                if not statuses or statuses[0] < 400:
                    bad.append(f"{vid}: not forwarded, answered {statuses}")
    print(f"    llhttp request vectors: {len(vectors)}; " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    print(f"    accepted by llhttp, refused by the proxy: {' '.join(refused)}")
    check(not bad, f"{len(bad)} vectors failed:\n  " + "\n  ".join(bad))
