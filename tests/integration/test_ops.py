"""Operations: timeouts, retries, upstream keep-alive, drain (SIGTERM),
reload (SIGHUP), access log, metrics and the connection limit.

Timeouts are configured small (300 ms) so that waiting for them to fire
keeps the file well under a minute.
"""
import re
import select
import shutil
from harness import *

T = 0.3  # the small timeout used below, in seconds
SMALL = "300ms"


def addr(port):
    return f"127.0.0.1:{port}"


def req(method="GET", path="/", host="example.test", headers=(), body=b""):
    h = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    for k, v in headers:
        h += f"{k}: {v}\r\n"
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        h += f"Content-Length: {len(body)}\r\n"
    return h.encode() + b"\r\n" + body


def timeouts(**kw):
    return "timeouts:\n" + "".join(f"  {k}: {v}\n" for k, v in kw.items())


class Bg:
    """Run fn() in a thread; .result() joins (bounded) and returns or re-raises."""

    def __init__(self, fn):
        self.value, self.error = None, None
        self.t = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.t.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as e:  # reported by result()
            self.error = e

    def result(self, timeout=10):
        self.t.join(timeout)
        if self.t.is_alive():
            raise TestFailure(f"background request still running after {timeout}s")
        if self.error:
            raise self.error
        return self.value


def one_response(data, what="response"):
    check(data, f"{what}: no bytes at all")
    rs = parse_responses(data)
    eq(len(rs), 1, f"{what}: number of responses")
    return rs[0]


def wait_exit(c, timeout):
    try:
        return c.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"cutover still running {timeout}s after SIGTERM")


def single(be_port, **kw):
    return {"svc": {"targets": [addr(be_port)], **kw}}


def assert_quiet(c, what):
    """Nothing left behind: no request in flight, no client or upstream connection open."""
    wait_until(lambda: c.metric("cutover_requests_in_flight") == 0.0, 2, what=f"in_flight == 0 after {what}")
    wait_until(lambda: c.metric("cutover_client_connections") == 0.0, 2,
               what=f"client_connections == 0 after {what}")
    wait_until(lambda: c.metric("cutover_upstream_connections") - c.metric("cutover_upstream_idle_connections") == 0,
               2, what=f"no busy upstream connection after {what}")


# ====================================================================== timeouts

def test_client_header_timeout_half_head():
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra=timeouts(client_header=SMALL)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        t0 = time.time()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: example.test\r\n")
        data, how = read_until_close(s, 3)
        took = time.time() - t0
        s.close()
        status, headers, body = one_response(data, "half head")
        eq(status, 408, "status after an incomplete head")
        check(b"header timeout" in body, f"408 body should name the reason: {body!r}")
        eq(headers.get("connection"), "close", "Connection header on 408")
        eq(how, "eof", "connection closed after the 408")
        check(T * 0.8 <= took <= T + 1.0, f"408 after {took:.2f}s, client_header is {T}s")
        eq(len(be.requests), 0, "requests reaching the backend")
        eq(c.metric("cutover_local_responses_total", status="408"), 1.0, "local 408 counted")
        assert_quiet(c, "a header timeout")


def test_client_header_timeout_slowloris():
    """One byte every 100 ms does not extend the header deadline."""
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra=timeouts(client_header=SMALL)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        t0 = time.time()
        s.sendall(b"GET /x HTTP/1.1\r\n")
        trickle = b"X-Slow: " + b"a" * 100
        data, got_at, i = b"", None, 0
        while time.time() - t0 < 3 and i < len(trickle):
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    d = b""
                if not d:
                    break
                data += d
                got_at = got_at or time.time() - t0
                continue
            try:
                s.send(trickle[i:i + 1])
                i += 1
            except OSError:
                break
        more, _ = read_until_close(s, 1)
        data += more
        s.close()
        check(got_at is not None, f"no response after trickling {i} bytes over {time.time() - t0:.1f}s")
        status, _, body = one_response(data, "slowloris")
        eq(status, 408, "slowloris status")
        check(b"header timeout" in body, f"408 body should name the reason: {body!r}")
        check(got_at <= T + 0.5, f"408 came {got_at:.2f}s after the first byte: the deadline "
                                 f"({T}s) was extended by trickling")


def test_client_idle_timeout():
    """A keep-alive connection with no further request is closed after
    client_idle, silently (no 408).  client_header is long, so it cannot be
    the one that fires."""
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra=timeouts(client_idle=SMALL, client_header="5s")) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        s.sendall(req(path="/first"))
        buf = b""
        while not buf.endswith(b"}"):
            d = s.recv(65536)
            check(d, "connection closed before the first response")
            buf += d
        eq(parse_responses(buf)[0][0], 200, "first response")
        t0 = time.time()
        data, how = read_until_close(s, 3)
        took = time.time() - t0
        s.close()
        eq(data, b"", "bytes sent on an idle keep-alive connection")
        eq(how, "eof", "idle connection closed")
        check(T * 0.8 <= took <= T + 1.0, f"idle connection closed after {took:.2f}s, client_idle is {T}s")


def test_client_fresh_connection_silent_close():
    """A connection that never sends a byte is closed without a response."""
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra=timeouts(client_idle=SMALL, client_header=SMALL)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        t0 = time.time()
        data, how = read_until_close(s, 3)
        took = time.time() - t0
        s.close()
        eq(data, b"", "bytes sent on a connection that sent nothing")
        eq(how, "eof", "silent connection closed")
        check(took <= T + 1.0, f"closed after {took:.2f}s")
        eq(c.metric("cutover_local_responses_total", status="408"), 0.0, "408s counted for a silent connection")


def test_client_body_timeout():
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra=timeouts(client_body=SMALL)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        t0 = time.time()
        s.sendall(req("POST", "/upload", headers=[("Content-Length", "100")]) + b"0123456789")
        data, how = read_until_close(s, 3)
        took = time.time() - t0
        s.close()
        status, headers, body = one_response(data, "stalled body")
        eq(status, 408, "status after a stalled request body")
        check(b"body timeout" in body, f"408 body should name the reason: {body!r}")
        eq(headers.get("connection"), "close", "Connection header on 408")
        check(T * 0.8 <= took <= T + 1.0, f"408 after {took:.2f}s, client_body is {T}s")
        check(how in ("eof", "reset"), f"connection not closed after 408 ({how})")
        assert_quiet(c, "a body timeout")
        eq(c.metric("cutover_upstream_connections"), 0.0, "upstream connections after an aborted request body")


@contextlib.contextmanager
def blackhole():
    """A loopback port whose accept queue is full: further SYNs are dropped,
    so connects to it neither succeed nor fail (until the client gives up)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fill = []
    try:
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fill.append(f)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            ok = False
        except socket.timeout:
            ok = True
        except OSError:
            ok = False
        finally:
            probe.close()
        yield port if ok else None
    finally:
        for f in fill:
            f.close()
        ls.close()


def test_upstream_connect_timeout():
    with blackhole() as port:
        if port is None:
            print("SKIP test_upstream_connect_timeout: could not make a port that drops SYNs "
                  "(full accept queue did not hold connects)")
            return
        with cutover(single(port), extra=timeouts(upstream_connect=SMALL)) as c:
            t0 = time.time()
            status, _, body = http_get(c.port, "/slow-connect", timeout=5)
            took = time.time() - t0
            eq(status, 504, f"status when the target does not answer SYNs (body {body!r})")
            check(b"connect timeout" in body, f"504 body should name the reason: {body!r}")
            check(T * 0.8 <= took <= T + 1.0, f"504 after {took:.2f}s, upstream_connect is {T}s")
            check(c.metric("cutover_upstream_connect_failures_total", service="svc", target=addr(port)) >= 1,
                  "connect timeout counted in cutover_upstream_connect_failures_total")


def test_upstream_refused():
    dead = free_port()
    with cutover(single(dead)) as c:
        status, _, body = http_get(c.port, "/refused")
        eq(status, 502, "status when the target refuses connections")
        check(b"refused" in body, f"502 body should say the connection was refused: {body!r}")
        eq(c.metric("cutover_upstream_connect_failures_total", service="svc", target=addr(dead)), 1.0,
           "connect failures")
        eq(c.metric("cutover_upstream_retries_total", service="svc", target=addr(dead)), 0.0,
           "retries counted with no other target to retry on")


def test_upstream_header_timeout():
    got = []

    def never_answer(conn):
        buf = b""
        conn.settimeout(3)
        while b"\r\n\r\n" not in buf:
            d = conn.recv(4096)
            if not d:
                return
            buf += d
        got.append(buf)
        try:
            conn.recv(4096)  # until the proxy gives up (bounded by the 3 s timeout)
        except socket.timeout:
            pass

    with raw_backend(never_answer) as (port, _), cutover(single(port), extra=timeouts(upstream_header=SMALL)) as c:
        t0 = time.time()
        status, _, body = http_get(c.port, "/silent", timeout=5)
        took = time.time() - t0
        eq(status, 504, "status when the target never answers")
        check(b"upstream response timeout" in body, f"504 body should name the reason: {body!r}")
        check(T * 0.8 <= took <= T + 1.0, f"504 after {took:.2f}s, upstream_header is {T}s")
        eq(len(got), 1, "requests the silent target received (GET must not be retried after a timeout)")
        assert_quiet(c, "an upstream header timeout")
        eq(c.metric("cutover_upstream_connections"), 0.0, "upstream connections after a header timeout")


def test_upstream_header_timeout_trickle():
    """The response-head deadline is not extended by a target that trickles
    its head one byte every 100 ms."""
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40 + b"\r\nContent-Length: 2\r\n\r\nok"

    def trickle(conn):
        buf = b""
        conn.settimeout(3)
        while b"\r\n\r\n" not in buf:
            d = conn.recv(4096)
            if not d:
                return
            buf += d
        for i in range(len(head)):  # bounded: about 7 s at most, ends when the proxy closes
            conn.sendall(head[i:i + 1])
            time.sleep(0.1)

    with raw_backend(trickle) as (port, _), cutover(single(port), extra=timeouts(upstream_header=SMALL)) as c:
        t0 = time.time()
        status, _, body = http_get(c.port, "/trickle", timeout=10)
        took = time.time() - t0
        eq(status, 504, f"status when the target trickles its response head (body {body!r})")
        check(b"upstream response timeout" in body, f"504 body should name the reason: {body!r}")
        check(took <= T + 0.6, f"504 after {took:.2f}s: the {T}s response-head deadline was extended by trickling")


def test_upstream_body_idle_truncates():
    def stall(conn):
        buf = b""
        conn.settimeout(3)
        while b"\r\n\r\n" not in buf:
            d = conn.recv(4096)
            if not d:
                return
            buf += d
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        try:
            conn.recv(4096)  # until the proxy closes (bounded)
        except socket.timeout:
            pass

    with raw_backend(stall) as (port, _), cutover(single(port), extra=timeouts(upstream_body=SMALL)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        t0 = time.time()
        s.sendall(req(path="/stall"))
        data, how = read_until_close(s, 3)
        took = time.time() - t0
        s.close()
        head, sep, body = data.partition(b"\r\n\r\n")
        check(sep, f"response head not forwarded: {data!r}")
        check(head.startswith(b"HTTP/1.1 200"), f"status line: {head[:40]!r}")
        check(b"content-length: 1000" in head.lower(), f"Content-Length not forwarded: {head!r}")
        eq(body, b"x" * 10, "body bytes before the stall")
        check(how in ("eof", "reset"), f"client connection not closed after the upstream stalled ({how})")
        check(took <= T + 1.0, f"closed after {took:.2f}s, upstream_body is {T}s")
        assert_quiet(c, "a truncated response")
        eq(c.metric("cutover_upstream_connections"), 0.0, "upstream connections after a truncated response")


# ====================================================================== retries

def test_retry_dead_target():
    dead = free_port()
    with echo_backend() as be, cutover({"svc": {"targets": [addr(dead), addr(be.server_address[1])]}}) as c:
        for i in range(50):
            status, _, body = http_get(c.port, f"/r/{i}")
            eq(status, 200, f"request {i} with one dead target (body {body[:100]!r})")
        eq(len(be.requests), 50, "requests at the live target (each exactly once)")
        fails = c.metric("cutover_upstream_connect_failures_total", service="svc", target=addr(dead))
        retries = c.metric("cutover_upstream_retries_total", service="svc", target=addr(dead))
        check(fails > 0, f"connect failures for the dead target: {fails}")
        check(retries > 0, f"retries from the dead target: {retries}")
        eq(c.metric("cutover_upstream_retries_total", service="svc", target=addr(be.server_address[1])), 0.0,
           "retries from the live target")
        eq(c.metric("cutover_requests_total", service="svc", target=addr(be.server_address[1]), status="2xx"), 50.0,
           "2xx requests at the live target")
        # POSTs with a body: refused connects sent nothing, so they are retried too
        for i in range(4):
            payload = f"payload-{i}".encode()
            status, _, body = http_get(c.port, f"/post/{i}", method="POST", body=payload)
            eq(status, 200, f"POST {i} with one dead target (body {body[:100]!r})")
            eq(json.loads(body)["body"], payload.decode(), f"POST {i} body at the backend")
        posts = [r for r in be.requests if r["method"] == "POST"]
        eq(len(posts), 4, "POSTs at the live target (each exactly once)")
        check(c.metric("cutover_upstream_retries_total", service="svc", target=addr(dead)) > retries,
              "no POST was retried after a refused connect (round robin should have sent some to the dead one)")


def test_max_retries_bounds_attempts():
    """limits.max_retries = other targets tried after a refused connect:
    N means at most N + 1 connection attempts for one request."""
    bad = []
    for n in (0, 1, 2):
        dead = [free_port() for _ in range(5)]
        with cutover({"svc": {"targets": [addr(p) for p in dead]}},
                     extra=f"limits:\n  max_retries: {n}\n") as c:
            status, _, body = http_get(c.port, "/all-dead")
            got = (status, c.metric("cutover_upstream_connect_failures_total", service="svc"),
                   c.metric("cutover_upstream_retries_total", service="svc"), b"refused" in body)
            if got != (502, n + 1.0, float(n), True):
                bad.append(f"max_retries {n}: status {got[0]}, {got[1]:.0f} connect attempts (want {n + 1}), "
                           f"{got[2]:.0f} retries (want {n}), body {body!r}")
    check(not bad, "five refusing targets, one request:\n  " + "\n  ".join(bad))


# ====================================================================== upstream keep-alive

def closing_backend(delay_close, cork=False):
    """Answers one request per connection with a keep-alive response, then
    closes the socket (at once, or after delay_close seconds).  With cork,
    the response and the FIN leave in one TCP segment."""
    seen = []

    def h(conn):
        buf = b""
        conn.settimeout(3)
        while b"\r\n\r\n" not in buf:
            d = conn.recv(4096)
            if not d:
                return
            buf += d
        # read the body too: closing with unread input sends RST, which
        # would discard the (corked) response and fail the test for the
        # wrong reason
        head, _, body = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        want = int(m.group(1)) if m else 0
        while len(body) < want:
            d = conn.recv(4096)
            if not d:
                return
            body += d
        seen.append(buf)
        if cork:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)  # held until close(): FIN rides along
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        if delay_close:
            time.sleep(delay_close)
    return h, seen


def test_upstream_closes_pooled_connection():
    for delay, cork in ((0, False), (0.05, False), (0, True)):
        h, seen = closing_backend(delay, cork)
        with raw_backend(h) as (port, _), cutover(single(port)) as c:
            # new client connection for each request
            for i in range(15):
                status, _, body = http_get(c.port, f"/n/{i}")
                eq(status, 200, f"GET {i} (backend closes after each response, close delay {delay}s)")
                eq(body, b"ok", f"GET {i} body")
            # and on one client keep-alive connection
            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=5)
            for i in range(15):
                conn.request("GET", f"/k/{i}", headers={"Host": "example.test"})
                r = conn.getresponse()
                b = r.read()
                eq(r.status, 200, f"keep-alive GET {i} (close delay {delay}s)")
                eq(b, b"ok", f"keep-alive GET {i} body")
            conn.close()
            check(c.proc.poll() is None, "cutover died")


def test_upstream_closed_idle_connection_not_reused():
    """The target answers with keep-alive and closes right after.  100 ms
    later its FIN has long arrived, so the pooled connection is known dead
    (upstream.c: "an idle connection that becomes readable was closed by the
    target ... never reused"): a POST, which must not be retried, still has
    to reach the target on a fresh connection.  The response and the FIN
    arrive in one segment (TCP_CORK), so both are seen in one readiness
    event while the connection is still busy."""
    h, seen = closing_backend(0, cork=True)
    with raw_backend(h) as (port, _), cutover(single(port)) as c:
        bad = []
        for i in range(10):
            eq(http_get(c.port, f"/get/{i}")[0], 200, f"GET {i}")
            time.sleep(0.1)  # let the target's FIN reach the idle pooled connection
            n = len(seen)
            status, _, body = http_get(c.port, f"/post/{i}", method="POST", body=b"abc")
            if status != 200:
                bad.append(f"POST {i}: {status} {body!r} (target got {len(seen) - n} new requests)")
        check(not bad, f"{len(bad)}/10 POSTs sent on a pooled connection the target had closed:\n  "
                       + "\n  ".join(bad))


# ====================================================================== drain

def test_sigterm_drain():
    with echo_backend() as be, cutover(single(be.server_address[1])) as c:
        idle = socket.create_connection(("127.0.0.1", c.port), timeout=3)
        idle.sendall(req(path="/idle"))
        first = b""
        while b"}" not in first:
            d = idle.recv(65536)
            check(d, "idle connection closed before its first response")
            first += d
        slow = socket.create_connection(("127.0.0.1", c.port), timeout=5)
        slow.sendall(req(path="/delay/1500"))
        wait_until(lambda: any(r["target"] == "/delay/1500" for r in be.requests), 3,
                   what="slow request at the backend")
        t0 = time.time()
        os.kill(c.pid, signal.SIGTERM)
        wait_until(lambda: connect_refused(c.port), 1.0, what="listener closed after SIGTERM")
        stop_accept = time.time() - t0
        data, how = read_until_close(idle, 2)
        idle.close()
        eq(data, b"", "bytes on the idle keep-alive connection after SIGTERM")
        check(how in ("eof", "reset"), f"idle keep-alive connection not closed on drain ({how})")
        data, how = read_until_close(slow, 5)
        slow.close()
        status, headers, body = one_response(data, "slow request during drain")
        eq(status, 200, "slow request status")
        eq(len(body), int(headers["content-length"]), "slow request body length")
        eq(json.loads(body)["target"], "/delay/1500", "slow request body")
        eq(headers.get("connection"), "close", "Connection header on a response sent while draining")
        eq(how, "eof", "connection closed after the last response")
        eq(wait_exit(c, 5), 0, "exit status after drain")
        check(stop_accept < 1.0, f"listener still accepting {stop_accept:.2f}s after SIGTERM")


def test_sigterm_drain_timeout():
    with echo_backend() as be, cutover(single(be.server_address[1]), extra=timeouts(drain="500ms")) as c:
        slow = socket.create_connection(("127.0.0.1", c.port), timeout=5)
        slow.sendall(req(path="/delay/5000"))
        wait_until(lambda: len(be.requests) == 1, 3, what="slow request at the backend")
        t0 = time.time()
        os.kill(c.pid, signal.SIGTERM)
        code = wait_exit(c, 5)
        took = time.time() - t0
        data, how = read_until_close(slow, 2)
        slow.close()
        check(took <= 2.0, f"exit {took:.2f}s after SIGTERM with timeouts.drain 500ms")
        check(took >= 0.4, f"exit {took:.2f}s after SIGTERM: did not wait for timeouts.drain 500ms")
        eq(code, 0, "exit status after the drain timeout")
        check(b"200" not in data.split(b"\r\n")[0], f"a complete response was faked: {data[:100]!r}")
        check(how in ("eof", "reset"), f"connection of the cut request not closed ({how})")


# ====================================================================== reload

def reload_and_wait(c, yaml_text, result="success"):
    before = c.metric("cutover_config_reloads_total", result=result)
    c.reload(yaml_text)
    wait_until(lambda: c.metric("cutover_config_reloads_total", result=result) > before, 3,
               what=f"cutover_config_reloads_total{{result=\"{result}\"}} to go up")


def test_sighup_switch_target():
    with echo_backend() as old, echo_backend() as new, cutover(single(old.server_address[1])) as c:
        eq(json.loads(http_get(c.port, "/before")[2])["port"], old.server_address[1], "backend before reload")
        slow = Bg(lambda: http_get(c.port, "/delay/1000"))
        wait_until(lambda: any(r["target"] == "/delay/1000" for r in old.requests), 3,
                   what="slow request at the old backend")
        reload_and_wait(c, config_yaml(single(new.server_address[1]), c.port, c.admin,
                                       access_log=os.path.join(c.dir, "access.log")))
        for i in range(5):
            status, _, body = http_get(c.port, f"/after/{i}")
            eq(status, 200, f"request {i} after reload")
            eq(json.loads(body)["port"], new.server_address[1], f"backend of request {i} after reload")
        status, _, body = slow.result(5)
        eq(status, 200, "request in flight during the reload")
        eq(json.loads(body)["port"], old.server_address[1], "backend of the request in flight during reload")
        eq([r["target"] for r in new.requests], [f"/after/{i}" for i in range(5)], "requests at the new backend")
        eq(c.metric("cutover_config_reloads_total", result="failure"), 0.0, "failed reloads")


def test_sighup_broken_config_keeps_old():
    with echo_backend() as be, cutover(single(be.server_address[1])) as c:
        good = open(c.cfg_path).read()
        broken = [
            ("syntax error", good.replace("targets:\n", "targets: [\n", 1), "syntax error"),
            ("unknown key", good.replace("services:", "servcies:", 1), "servcies"),
        ]
        for n, (what, text, needle) in enumerate(broken, 1):
            reload_and_wait(c, text, result="failure")
            eq(c.metric("cutover_config_reloads_total", result="failure"), float(n), f"failed reloads after {what}")
            eq(c.metric("cutover_config_reloads_total", result="success"), 0.0, f"successful reloads after {what}")
            status, _, body = http_get(c.port, f"/still/{n}")
            eq(status, 200, f"old configuration still serving after a reload with a {what}")
            eq(json.loads(body)["port"], be.server_address[1], "backend")
            errs = [l for l in c.logs().splitlines() if needle in l]
            check(errs, f"no error about the {what} in the log: {c.logs()[-1500:]!r}")
            check(re.search(r"cutover\.yml:\d+:\d+: ", errs[-1]),
                  f"reload error does not give FILE:LINE:COL: {errs[-1]!r}")
        # a good file afterwards is taken
        reload_and_wait(c, good)
        eq(http_get(c.port, "/good")[0], 200, "after a good reload")


def test_sighup_change_listen_port():
    with echo_backend() as be, cutover(single(be.server_address[1])) as c:
        new_port = free_port()
        reload_and_wait(c, config_yaml(single(be.server_address[1]), new_port, c.admin))
        status, _, body = http_get(new_port, "/new-port")
        eq(status, 200, "request on the new listen port")
        check(connect_refused(c.port), f"old listen port {c.port} still accepts connections")
        eq(c.proc.poll(), None, "cutover exited")


# ====================================================================== access log

def parse_logfmt(line):
    out, i = {}, 0
    while i < len(line):
        while i < len(line) and line[i] == " ":
            i += 1
        if i >= len(line):
            break
        eqi = line.index("=", i)
        k = line[i:eqi]
        i = eqi + 1
        if i < len(line) and line[i] == '"':
            j, v = i + 1, ""
            while line[j] != '"':
                if line[j] == "\\":
                    j += 1
                v += line[j]
                j += 1
            i = j + 1
        else:
            j = line.find(" ", i)
            j = len(line) if j < 0 else j
            v = line[i:j]
            i = j
        out[k] = v
    return out


def seen_request_id(body):
    return dict((k.lower(), v) for k, v in json.loads(body)["headers"]).get("x-request-id")


def test_access_log_logfmt():
    with echo_backend() as be, cutover(single(be.server_address[1])) as c:
        sent = []
        for path in ("/a", "/status/404", "/status/503"):
            status, _, body = http_get(c.port, path)
            sent.append((path, status, seen_request_id(body)))
        t0 = time.time()
        text = wait_until(lambda: c.access_log().count("\n") >= 3 and c.access_log(), 3,
                          what="3 access log lines")
        flush = time.time() - t0
        check(flush <= 2.0, f"access log flushed {flush:.2f}s after the requests")
        lines = text.splitlines()
        eq(len(lines), 3, "access log lines")
        for line, (path, status, rid) in zip(lines, sent):
            f = parse_logfmt(line)
            for k in ("request_id", "method", "path", "status", "service", "target", "duration_ms"):
                check(k in f, f"access log line lacks {k}: {line!r}")
            eq(f["request_id"], rid, "request_id (as sent upstream in X-Request-Id)")
            eq(f["method"], "GET", "method")
            eq(f["path"], path, "path")
            eq(int(f["status"]), status, "status")
            eq(f["service"], "svc", "service")
            eq(f["target"], addr(be.server_address[1]), "target")
            check(float(f["duration_ms"]) >= 0, f"duration_ms: {f['duration_ms']}")
        # flushed on SIGTERM too: request, then stop at once
        http_get(c.port, "/last")
        eq(c.terminate(), 0, "exit status")
        lines = c.access_log().splitlines()
        eq(len(lines), 4, "access log lines after SIGTERM")
        eq(parse_logfmt(lines[-1]).get("path"), "/last", "last line")


def test_access_log_json():
    y = ("listen: 127.0.0.1:{PORT}\nadmin: 127.0.0.1:{ADMIN}\n"
         "log:\n  access: {DIR}/access.log\n  format: json\n"
         "services:\n  svc:\n    targets:\n      - 127.0.0.1:%d\n    routes:\n      - path: /app\n")
    with echo_backend() as be, cutover(yaml_text=y % be.server_address[1]) as c:
        status, _, body = http_get(c.port, "/app/x", method="POST", body=b"hello")
        eq(status, 200, "POST")
        rid = seen_request_id(body)
        eq(http_get(c.port, "/nowhere")[0], 404, "no route")
        text = wait_until(lambda: c.access_log().count("\n") >= 2 and c.access_log(), 3,
                          what="2 JSON access log lines")
        lines = text.splitlines()
        eq(len(lines), 2, "JSON access log lines")
        recs = []
        for line in lines:
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise TestFailure(f"access log line is not JSON ({e}): {line!r}")
        r = recs[0]
        for k in ("request_id", "method", "path", "status", "service", "target", "duration_ms"):
            check(k in r, f"JSON access log line lacks {k}: {lines[0]!r}")
        eq(r["request_id"], rid, "request_id")
        eq((r["method"], r["path"], r["status"], r["service"], r["target"]),
           ("POST", "/app/x", 200, "svc", addr(be.server_address[1])), "JSON fields")
        check(isinstance(r["duration_ms"], (int, float)), f"duration_ms is not a number: {r['duration_ms']!r}")
        eq((recs[1]["path"], recs[1]["status"]), ("/nowhere", 404), "no-route line")


# ====================================================================== metrics

def test_metrics():
    y = ("listen: 127.0.0.1:{PORT}\nadmin: 127.0.0.1:{ADMIN}\n"
         "services:\n  web:\n    targets:\n      - 127.0.0.1:%d\n    routes:\n      - host: web.test\n")
    with echo_backend() as be, cutover(yaml_text=y % be.server_address[1]) as c:
        tgt = addr(be.server_address[1])
        status, _, body = http_get(c.admin, "/healthz")
        eq((status, body), (200, b"ok\n"), "/healthz")
        traffic = [("GET", "/a", 200)] * 3 + [("GET", "/status/404", 404)] * 2 + \
                  [("GET", "/status/503", 503), ("POST", "/p", 200), ("POST", "/p", 200),
                   ("DELETE", "/status/500", 500), ("HEAD", "/h", 200)]
        expected = {}
        for method, path, want in traffic:
            status = http_get(c.port, path, host="web.test", method=method,
                              body=b"x" if method == "POST" else None)[0]
            eq(status, want, f"{method} {path}")
            key = ("web", tgt, method, f"{want // 100}xx")
            expected[key] = expected.get(key, 0) + 1
        for host in ("other.test", "web.test.example"):
            eq(http_get(c.port, "/a", host=host)[0], 404, f"no-route host {host}")

        text = c.metrics()
        if os.path.exists("/usr/bin/promtool") or shutil.which("promtool"):
            p = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"],
                               input=text, capture_output=True, text=True, timeout=20)
            eq(p.returncode, 0, f"promtool check metrics exit status ({p.stdout}{p.stderr})")
        else:
            print("SKIP promtool part of test_metrics: promtool not installed (Debian package prometheus)")
        samples = metric_samples(text)
        got = {}
        for name, l, v in samples:
            if name == "cutover_requests_total":
                got[(l.get("service"), l.get("target"), l.get("method"), l.get("status"))] = v
        eq(got, {k: float(v) for k, v in expected.items()}, "cutover_requests_total series")
        count = [v for n, l, v in samples if n == "cutover_request_duration_seconds_count"
                 and l == {"service": "web", "target": tgt}]
        eq(count, [float(len(traffic))], "cutover_request_duration_seconds_count")
        inf = [v for n, l, v in samples if n == "cutover_request_duration_seconds_bucket" and l.get("le") == "+Inf"]
        eq(inf, [float(len(traffic))], "cutover_request_duration_seconds_bucket{le=\"+Inf\"}")
        local = {l["status"]: v for n, l, v in samples if n == "cutover_local_responses_total"}
        eq(local, {"404": 2.0}, "cutover_local_responses_total")
        eq(c.metric("cutover_requests_in_flight"), 0.0, "in flight when idle")
        # + 1: the harness's wait_port() probe when cutover started
        eq(c.metric("cutover_client_connections_accepted_total"), float(len(traffic) + 2 + 1),
           "client connections accepted")

        # in flight during a slow request
        slow = Bg(lambda: http_get(c.port, "/delay/800", host="web.test"))
        wait_until(lambda: c.metric("cutover_requests_in_flight") == 1.0, 3, what="requests_in_flight == 1")
        up = c.metric("cutover_upstream_connections", service="web", target=tgt)
        idle = c.metric("cutover_upstream_idle_connections", service="web", target=tgt)
        check(up >= 1 and 0 <= idle <= up - 1, f"during a request: {up} upstream connections, {idle} idle")
        eq(slow.result(5)[0], 200, "slow request")
        wait_until(lambda: c.metric("cutover_requests_in_flight") == 0.0, 2, what="requests_in_flight == 0")
        up = c.metric("cutover_upstream_connections", service="web", target=tgt)
        idle = c.metric("cutover_upstream_idle_connections", service="web", target=tgt)
        check(1 <= up <= 64 and idle == up, f"after the requests: {up} upstream connections, {idle} idle "
                                            "(all should be idle, at most upstream_idle_per_target)")

        # client connections gauge
        wait_until(lambda: c.metric("cutover_client_connections") == 0.0, 2, what="client_connections == 0")
        socks = [socket.create_connection(("127.0.0.1", c.port), timeout=2) for _ in range(3)]
        try:
            wait_until(lambda: c.metric("cutover_client_connections") == 3.0, 2, what="client_connections == 3")
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: c.metric("cutover_client_connections") == 0.0, 2,
                   what="client_connections back to 0 after closing")


# ====================================================================== limits

def test_max_connections():
    with echo_backend() as be, cutover(single(be.server_address[1]),
                                       extra="limits:\n  max_connections: 5\n") as c:
        conns = []
        try:
            for i in range(5):
                h = http.client.HTTPConnection("127.0.0.1", c.port, timeout=3)
                h.request("GET", f"/c/{i}", headers={"Host": "example.test"})
                r = h.getresponse()
                r.read()
                eq(r.status, 200, f"connection {i}")
                conns.append(h)
            sixth = socket.create_connection(("127.0.0.1", c.port), timeout=3)
            conns.append(sixth)
            sixth.sendall(req(path="/sixth"))
            readable, _, _ = select.select([sixth], [], [], 0.5)
            if readable:
                raise TestFailure(f"6th connection answered while 5 are open: {sixth.recv(200)!r}")
            check(not any(x["target"] == "/sixth" for x in be.requests), "6th request reached the backend")
            eq(c.metric("cutover_client_connections"), 5.0, "client connections at the limit")
            conns[0].close()
            sixth.settimeout(3)
            buf = b""
            while b"}" not in buf:
                d = sixth.recv(65536)
                check(d, f"6th connection closed without a response: {buf!r}")
                buf += d
            eq(parse_responses(buf)[0][0], 200, "6th connection after one closed")
            check(c.proc.poll() is None, "cutover died")
        finally:
            for h in conns:
                h.close()


def test_sighup_cannot_move_state_dir():
    """The state dir holds SQLite state, releases and instance logs: a reload
    that would move it is refused, the running configuration stays."""
    with echo_backend() as be, cutover(single(be.server_address[1])) as c:
        yaml = config_yaml(single(be.server_address[1]), c.port, c.admin)
        c.reload(f"state_dir: {c.dir}/elsewhere\n" + yaml)
        wait_until(lambda: c.metric("cutover_config_reloads_total", result="failure") == 1, 3,
                   what="reload failure counted")
        check("state_dir cannot change on reload" in c.logs(), f"no reason logged:\n{c.logs()[-500:]}")
        eq(http_get(c.port, "/after")[0], 200, "still serving")
        check(os.path.exists(f"{c.dir}/state/admin.sock"), "admin socket moved or lost")
        eq(c.terminate(), 0, "exit status")


def test_sighup_admin_address_taken_keeps_serving():
    """A reload whose new admin address is taken: the rest of the new
    configuration is in force, the admin listener stays where it was, and
    the API goes on answering from the configuration now in force."""
    with echo_backend() as be, cutover(single(be.server_address[1])) as c, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        reload_and_wait(c, config_yaml(single(be.server_address[1]), c.port, taken.getsockname()[1]))
        check("cannot listen on admin address" in c.logs(), f"the admin listener's failure is logged:\n{c.logs()}")
        for _ in range(3):
            status, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")
            eq(status, 200, f"/v1/status after the reload: {body}")
            check(json.loads(body)["config"].endswith(".yml"), f"status names the configuration: {body}")
        eq(http_get(c.port, "/after")[0], 200, "proxied request after the reload")
        eq(c.proc.poll(), None, "cutover exited")
