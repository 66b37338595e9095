"""Request smuggling and response desync through the proxy.

The rule under test: a backend never sees a request the client did not
send.  Each case is a byte stream a client sends on one connection (an
ambiguous request, usually followed by a legitimate one); it goes through
the proxy to three backends in turn:

  - the harness' echo backend, a naive server (first Content-Length,
    Transfer-Encoding present means chunked), the kind smuggling exploits;
  - the strict echo backend, which records anything ambiguous it is sent;
  - Debian's nginx, whose access log lists every request line it parsed.

For each, every request the backend saw must be one the client intended
(never /admin, never GPOST), and the proxy either rejected the stream with
the expected status or forwarded exactly the intended requests, bodies
included.  The response side: an upstream answer with an ambiguous length
must become a 502, never reach the client, and never poison the pool."""
import os, re, socket, time
from harness import *

HOST = b"Host: s.test\r\n"
LEGIT = b"GET /legit HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n"
SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: s.test\r\n\r\n"
GPOST = b"GPOST /admin HTTP/1.1\r\nHost: s.test\r\nContent-Length: 15\r\n\r\nx=1"
# a chunked body whose one chunk hides a whole request
TE_CL_BODY = b"%x\r\n" % len(GPOST) + GPOST + b"\r\n0\r\n\r\n"
REJECT = (400,)
REJECT_TE = (400, 501)  # an unknown transfer coding may be answered 501 (RFC 9112 6.1)


class Case:
    def __init__(self, name, data, intended, outcome, rejects=REJECT):
        """intended: [(method, target, body or None)] the client meant, in
        order; outcome: "reject" (must be refused), "either" (refused, or
        forwarded exactly as intended), "forward" (must be forwarded)."""
        self.name, self.data, self.intended, self.outcome, self.rejects = name, data, intended, outcome, rejects


def post(headers, body, version=b"HTTP/1.1", target=b"/", method=b"POST"):
    return method + b" " + target + b" " + version + b"\r\n" + HOST + headers + b"\r\n" + body


def te_variants():
    """TE.TE obfuscations, each with Content-Length: 4 (what a backend that
    ignores the odd Transfer-Encoding would use) and without."""
    out = []
    for label, field in [
        ("xchunked", b"Transfer-Encoding: xchunked\r\n"),
        ("space before colon", b"Transfer-Encoding : chunked\r\n"),
        ("chunked then x", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"),
        ("x then chunked", b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n"),
        ("vertical tab", b"Transfer-Encoding:\x0bchunked\r\n"),
        ("chunked, identity", b"Transfer-Encoding: chunked, identity\r\n"),
        ("identity, chunked", b"Transfer-Encoding: identity, chunked\r\n"),
        ("chunked twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        ("obs-fold", b"Transfer-Encoding:\r\n chunked\r\n"),
        ("bare CR in name line", b"X-A: a\rTransfer-Encoding: chunked\r\n"),
        ("quoted", b"Transfer-Encoding: \"chunked\"\r\n"),
        ("NUL", b"Transfer-Encoding: chunked\x00\r\n"),
    ]:
        out.append(Case(f"TE.TE {label} + CL", post(field + b"Content-Length: 4\r\n", TE_CL_BODY) + LEGIT,
                        [("POST", "/", None)], "reject", REJECT_TE))
        out.append(Case(f"TE.TE {label}", post(field, TE_CL_BODY) + LEGIT,
                        [("POST", "/", None)], "reject", REJECT_TE))
    out.append(Case("TE in HTTP/1.0", post(b"Transfer-Encoding: chunked\r\n", TE_CL_BODY, b"HTTP/1.0") + LEGIT,
                    [("POST", "/", None)], "reject", REJECT_TE))
    out.append(Case("TE in HTTP/1.0 + CL",
                    post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", TE_CL_BODY, b"HTTP/1.0") + LEGIT,
                    [("POST", "/", None)], "reject", REJECT_TE))
    # legal spellings: may be forwarded, then exactly as meant
    for label, field in [("Chunked", b"Transfer-Encoding: Chunked\r\n"),
                         ("tab OWS", b"Transfer-Encoding:\tchunked\t\r\n")]:
        out.append(Case(f"TE {label} (valid)", post(field, TE_CL_BODY) + LEGIT,
                        [("POST", "/", GPOST.decode()), ("GET", "/legit", "")], "either", REJECT_TE))
    return out


def chunk_cases():
    out = []
    for label, size in [("0x prefix", b"0x%x" % len(SMUGGLED)), ("trailing ;", b"%x;" % len(SMUGGLED)),
                        ("trailing space", b"%x " % len(SMUGGLED)), ("leading space", b" %x" % len(SMUGGLED)),
                        ("trailing tab", b"%x\t" % len(SMUGGLED)), ("plus sign", b"+%x" % len(SMUGGLED)),
                        ("minus sign", b"-%x" % len(SMUGGLED)), ("underscore", b"2_6"),
                        ("64-bit overflow", b"1" + b"0" * 16 + b"%x" % len(SMUGGLED)),
                        ("empty", b""), ("ext without name", b"%x;=x" % len(SMUGGLED)),
                        ("bare CR in ext", b"%x;a\rb" % len(SMUGGLED))]:
        body = size + b"\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"
        out.append(Case(f"chunk size {label}", post(b"Transfer-Encoding: chunked\r\n", body) + LEGIT,
                        [("POST", "/", None)], "reject"))
    out.append(Case("chunk size with leading zeros (valid)",
                    post(b"Transfer-Encoding: chunked\r\n", b"%08x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n")
                    + LEGIT, [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "either"))
    out.append(Case("chunk extension (valid)",
                    post(b"Transfer-Encoding: chunked\r\n", b"%x;a=\"b;c\"\r\n" % len(SMUGGLED) + SMUGGLED
                         + b"\r\n0\r\n\r\n") + LEGIT,
                    [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "forward"))
    out.append(Case("bare LF chunk lines",
                    post(b"Transfer-Encoding: chunked\r\n", b"%x\n" % len(SMUGGLED) + SMUGGLED + b"\n0\n\n") + LEGIT,
                    [("POST", "/", None)], "reject"))
    out.append(Case("bare LF after chunk data",
                    post(b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\n0\r\n\r\n")
                    + LEGIT, [("POST", "/", None)], "reject"))
    out.append(Case("chunk longer than its size",
                    post(b"Transfer-Encoding: chunked\r\n", b"3\r\nabc" + SMUGGLED + b"\r\n0\r\n\r\n") + LEGIT,
                    [("POST", "/", None)], "reject"))
    out.append(Case("bare LF ends the last chunk's trailers",
                    post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\n" + SMUGGLED) + LEGIT,
                    [("POST", "/", None)], "reject"))
    for field in (b"Content-Length: %d" % len(SMUGGLED), b"Transfer-Encoding: chunked", b"Host: admin.test"):
        out.append(Case(f"trailer {field.split(b':')[0].decode()}",
                        post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n" + field + b"\r\n\r\n"
                             + SMUGGLED) + LEGIT,
                        [("POST", "/", "hello"), ("GET", "/admin", ""), ("GET", "/legit", "")], "either"))
    out.append(Case("trailer that hides a request",
                    post(b"Transfer-Encoding: chunked\r\n", b"0\r\nX-T: 1\r\n" + SMUGGLED) + LEGIT,
                    [("POST", "/", None)], "reject"))
    return out


def length_cases():
    n = len(SMUGGLED)
    out = [
        Case("CL.TE", post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG") + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("TE.CL", post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", TE_CL_BODY) + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL: 0 + TE", post(b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", TE_CL_BODY) + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL leading zeros (valid)", post(b"Content-Length: 010\r\n", b"0123456789") + LEGIT,
             [("POST", "/", "0123456789"), ("GET", "/legit", "")], "either"),
        Case("CL plus sign", post(b"Content-Length: +%d\r\n" % n, SMUGGLED) + LEGIT, [("POST", "/", None)], "reject"),
        Case("CL minus sign", post(b"Content-Length: -%d\r\n" % n, SMUGGLED) + LEGIT, [("POST", "/", None)], "reject"),
        Case("CL hex", post(b"Content-Length: 0x%x\r\n" % n, SMUGGLED) + LEGIT, [("POST", "/", None)], "reject"),
        Case("CL with inner space", post(b"Content-Length: 1 0\r\n", b"0123456789") + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL comma list, same values", post(b"Content-Length: %d, %d\r\n" % (n, n), SMUGGLED) + LEGIT,
             [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "either"),
        Case("CL comma list, different values", post(b"Content-Length: 0, %d\r\n" % n, SMUGGLED) + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("duplicate CL, same value", post(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (n, n), SMUGGLED)
             + LEGIT, [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "either"),
        Case("duplicate CL, different values", post(b"Content-Length: 0\r\nContent-Length: %d\r\n" % n, SMUGGLED)
             + LEGIT, [("POST", "/", None)], "reject"),
        Case("CL overflow", post(b"Content-Length: 18446744073709551621\r\n", b"hello") + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL space before colon", post(b"Content-Length : %d\r\n" % n, SMUGGLED) + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL obs-fold", post(b"Content-Length:\r\n %d\r\n" % n, SMUGGLED) + LEGIT,
             [("POST", "/", None)], "reject"),
        Case("CL empty", post(b"Content-Length: \r\n", SMUGGLED) + LEGIT, [("POST", "/", None)], "reject"),
        # pipelined desync: the body of a first request holds what looks like a request
        Case("GET with a body that looks like a request",
             post(b"Content-Length: %d\r\n" % n, SMUGGLED, method=b"GET") + LEGIT,
             [("GET", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "forward"),
        Case("POST body that looks like a request",
             post(b"Content-Length: %d\r\n" % n, SMUGGLED) + LEGIT,
             [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "forward"),
        Case("bytes after an HTTP/1.0 request are not a request",
             post(b"Content-Length: 5\r\n", b"hello", b"HTTP/1.0") + SMUGGLED,
             [("POST", "/", "hello")], "forward"),
        Case("bytes after Connection: close are not a request",
             post(b"Content-Length: 5\r\nConnection: close\r\n", b"hello") + SMUGGLED,
             [("POST", "/", "hello")], "forward"),
        Case("Connection: content-length",
             post(b"Content-Length: %d\r\nConnection: Content-Length\r\n" % n, SMUGGLED) + LEGIT,
             [("POST", "/", SMUGGLED.decode()), ("GET", "/legit", "")], "either"),
        Case("Connection: transfer-encoding",
             post(b"Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n", TE_CL_BODY) + LEGIT,
             [("POST", "/", GPOST.decode()), ("GET", "/legit", "")], "either"),
    ]
    return out


# ---------------------------------------------------------------- running a case

class EchoView:
    name = "echo"

    def __init__(self, be):
        self.be = be

    def clear(self):
        with self.be.lock:
            self.be.requests.clear()

    def records(self):
        with self.be.lock:
            return [("BAD " + r.get("bad", r.get("line", "")), r.get("line", ""), None) if "bad" in r
                    else (r["method"], r["target"], r["body"]) for r in self.be.requests]


class NginxView:
    """Request lines from nginx's access log; a sentinel request sent
    straight to nginx marks where a case's lines end."""
    name = "nginx"

    def __init__(self, port, d):
        self.port, self.path, self.n, self.pos = port, os.path.join(d, "access.log"), 0, 0

    def _read(self):
        if not os.path.exists(self.path):
            return ""
        with open(self.path, errors="replace") as f:
            f.seek(self.pos)
            return f.read()

    def clear(self):
        if os.path.exists(self.path):
            self.pos = os.path.getsize(self.path)

    def records(self):
        self.n += 1
        sentinel = f"/__sentinel_{self.n}"
        status, _, _ = http_get(self.port, sentinel, host="sentinel.test")
        check(status == 200, "nginx sentinel")
        text = poll_until(lambda: (lambda t: t if sentinel in t else None)(self._read()), 5,
                          what="nginx sentinel in its access log")
        out = []
        for line in text.splitlines():
            m = re.search(r'"((?:[^"\\]|\\.)*)" (\d{3}) ', line)
            req = m.group(1) if m else line
            if sentinel in req:
                continue
            parts = req.split(" ")
            if len(parts) == 3 and parts[2].startswith("HTTP/"):
                out.append((parts[0], parts[1], None))
            else:
                out.append(("BAD " + req, m.group(2) if m else "", None))
        return out


def busy(c):
    return c.metric("cutover_upstream_connections") - c.metric("cutover_upstream_idle_connections")


def run_case(c, view, case):
    view.clear()
    s = socket.create_connection(("127.0.0.1", c.port), timeout=3)
    try:
        try:
            s.sendall(case.data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, how = read_until_close(s, 3.0)
    finally:
        s.close()
    problems = []
    case.seen = how
    if how == "timeout":
        problems.append("the proxy neither finished nor closed within 3 s")
    try:
        resps = parse_responses(data) if data else []
    except (TestFailure, ValueError, IndexError) as e:
        return [f"unparsable answer {data[:200]!r}: {e}"]
    poll_until(lambda: busy(c) == 0, 5, what="no busy upstream connections")
    recs = view.records()
    intended = {(m, t) for m, t, _ in case.intended}
    for m, t, _ in recs:
        if (m, t) not in intended:
            problems.append(f"backend saw {m} {t} (client meant {sorted(intended)})")
    statuses = [r[0] for r in resps]
    case.result = (statuses, [(m, t) for m, t, _ in recs])
    rejected = bool(statuses) and statuses[0] in case.rejects
    if not statuses:
        problems.append(f"no response at all ({how})")
    elif rejected:
        if case.outcome == "forward":
            problems.append(f"legitimate stream rejected with {statuses[0]}: {resps[0][2][:100]!r}")
    else:
        if case.outcome == "reject":
            problems.append(f"accepted (statuses {statuses}), expected {case.rejects}")
        want = [(m, t) for m, t, _ in case.intended]
        got = [(m, t) for m, t, _ in recs]
        if got != want:
            problems.append(f"forwarded {got}, intended {want}")
        elif view.name == "echo":
            for (m, t, b), (_, _, wb) in zip(recs, case.intended):
                if wb is not None and b != wb:
                    problems.append(f"{m} {t}: backend got body {b!r}, client sent {wb!r}")
        if statuses != [200] * len(want):
            problems.append(f"responses {statuses}, expected {len(want)} x 200")
    return problems


def run_cases(cases):
    failures = []
    with echo_backend() as naive, strict_echo_backend() as strict, \
            nginx_backend('access_log access.log; location / { return 200 "ok\\n"; }') as (nport, nd):
        for be in (naive, strict):
            be.handle_error = lambda *a: None  # cut-off bodies are expected here: no tracebacks
        for label, target, view in [("naive echo", f"127.0.0.1:{naive.server_address[1]}", EchoView(naive)),
                                    ("strict echo", f"127.0.0.1:{strict.server_address[1]}", EchoView(strict)),
                                    ("nginx", f"127.0.0.1:{nport}", NginxView(nport, nd))]:
            with cutover({"s": {"targets": [target], "routes": [{"path": "/"}]}}) as c:
                nrej = nfwd = 0
                for case in cases:
                    for p in run_case(c, view, case):
                        failures.append(f"[{label}] {case.name}: {p}")
                    if os.environ.get("SMUGGLING_VERBOSE"):
                        print(f"    [{label}] {case.name}: {case.result}")
                    nrej += bool(case.result[0]) and case.result[0][0] in case.rejects
                    nfwd += bool(case.result[1])
                print(f"    {label}: {len(cases)} cases, {nrej} rejected, {nfwd} with requests forwarded")
    check(not failures, f"{len(failures)} smuggling problems:\n  " + "\n  ".join(failures))


# ---------------------------------------------------------------- tests

def test_smuggling_content_length_and_cl_te():
    run_cases(length_cases())


def test_smuggling_transfer_encoding_obfuscations():
    run_cases(te_variants())


def test_smuggling_bad_chunk_framing():
    run_cases(chunk_cases())


# ---------------------------------------------------------------- response side

def _respond_with(resp):
    def handler(conn):
        conn.settimeout(3)
        head, _ = read_head_raw(conn)
        if head:
            conn.sendall(resp)
            # keep the connection open a moment so that a close is not what
            # decides the framing
            try:
                conn.recv(1)
            except OSError:
                pass
    return handler


AMBIGUOUS_RESPONSES = [
    ("CL + TE", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE + CL", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    ("two different CLs", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("CL list with different values", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    ("CL plus sign", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
    ("CL not a number", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
    ("TE xchunked + CL", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello"),
    ("TE space before colon", b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold in CL", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 5\r\n\r\nhello"),
    ("bare LF head", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"),
]


def test_response_ambiguous_length_gives_502():
    failures = []
    for name, resp in AMBIGUOUS_RESPONSES:
        with raw_backend(_respond_with(resp)) as (rport, _), \
                cutover({"s": {"targets": [f"127.0.0.1:{rport}"], "routes": [{"path": "/"}]}}) as c:
            with HttpConn(c.port, timeout=3) as h:
                h.send(b"GET /r HTTP/1.1\r\nHost: s.test\r\n\r\n")
                try:
                    r = h.read_response()
                except (TestFailure, OSError) as e:
                    failures.append(f"{name}: no well-formed answer: {e}")
                    continue
                if r.status != 502:
                    failures.append(f"{name}: client got {r.status} {r.raw_head!r} {r.body[:60]!r}, expected 502")
                elif b"hello" in r.body or b"abc" in r.body:
                    failures.append(f"{name}: upstream body bytes reached the client: {r.body!r}")
    check(not failures, "ambiguous responses:\n  " + "\n  ".join(failures))


def test_response_bad_chunk_is_cut_not_completed():
    """After the head has gone out, an invalid chunk from upstream can only
    be signalled by cutting the connection: the client must never see a
    complete, valid-looking message."""
    for name, body in [("0x prefix", b"5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n"),
                       ("bare LF", b"5\r\nhello\r\n5\nworld\r\n0\r\n\r\n"),
                       ("overlong chunk", b"5\r\nhelloworld\r\n0\r\n\r\n")]:
        resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        with raw_backend(_respond_with(resp)) as (rport, _), \
                cutover({"s": {"targets": [f"127.0.0.1:{rport}"], "routes": [{"path": "/"}]}}) as c:
            with HttpConn(c.port, timeout=3) as h:
                h.send(b"GET /r HTTP/1.1\r\nHost: s.test\r\n\r\n")
                try:
                    r = h.read_response()
                except TestFailure:
                    continue  # cut: what we want
                except socket.timeout:
                    raise TestFailure(f"{name}: proxy neither completed nor cut the response in 3 s")
                check(r.status == 502 and b"world" not in r.body,
                      f"{name}: client got a complete response {r.status} {r.body!r}")


EXTRA_BYTES = [
    # (name, method, first response (with unrequested bytes), delay before the extra, what the client sees first)
    ("bytes beyond Content-Length", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.0, (200, b"ok")),
    ("bytes beyond Content-Length, later", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.05, (200, b"ok")),
    ("bytes after the last chunk", "GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.0, (200, b"ok")),
    ("204 with a body", "GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 39\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.0, (204, b"")),
    ("304 with a body", "GET", b"HTTP/1.1 304 Not Modified\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.0, (304, b"")),
    ("HEAD answered with a body", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 39\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!", 0.0, (200, b"")),
]


def test_response_extra_bytes_never_reach_another_request():
    """An upstream that sends bytes nobody asked for (beyond the length, a
    body on 204/304/HEAD) must not have them served as the answer to a
    later request, on this client or another: the pooled connection is
    dropped, never reused."""
    failures = []
    for name, method, first, extra, delay, want in EXTRA_BYTES:
        extra_sent, nreq = [], []

        def handler(conn):
            conn.settimeout(3)
            buf = b""
            for i in range(10):
                while b"\r\n\r\n" not in buf:
                    d = conn.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                nreq.append(head)
                if len(nreq) == 1:
                    conn.sendall(first)
                    if delay:
                        time.sleep(delay)  # the extra bytes come in a later packet
                    conn.sendall(extra)
                    extra_sent.append(True)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")

        with raw_backend(handler) as (rport, _), \
                cutover({"s": {"targets": [f"127.0.0.1:{rport}"], "routes": [{"path": "/"}]}}) as c:
            try:
                with HttpConn(c.port, timeout=3) as h:
                    h.send(method.encode() + b" /first HTTP/1.1\r\nHost: s.test\r\n\r\n")
                    r = h.read_response(method)
                    eq((r.status, r.body), want, f"{name}: first response")
                    poll_until(lambda: extra_sent, 2, what="the backend's unrequested bytes")
                    h.send(b"GET /second HTTP/1.1\r\nHost: s.test\r\n\r\n")
                    r2 = h.read_response()
                    check(b"EVIL" not in r2.body, f"{name}: the next request on the same client got the unrequested bytes")
                    eq((r2.status, r2.body), (200, b"good"), f"{name}: second response on the same client")
                for i in range(3):
                    status, _, body = http_get(c.port, f"/other{i}", host="s.test", timeout=3)
                    check(b"EVIL" not in body, f"{name}: another client got the unrequested bytes")
                    eq((status, body), (200, b"good"), f"{name}: another client's response")
            except (TestFailure, OSError) as e:
                failures.append(str(e))
    check(not failures, "unrequested upstream bytes:\n  " + "\n  ".join(failures))


def test_response_unsolicited_101_is_not_a_tunnel():
    """A 101 to a request that asked for no upgrade (or to a non-GET upgrade
    the proxy does not tunnel) is a bad response: 502, and what the client
    sends next is parsed as HTTP, never passed through raw."""
    for req in (b"GET /x HTTP/1.1\r\nHost: s.test\r\n\r\n",
                b"POST /x HTTP/1.1\r\nHost: s.test\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n"):
        log = []
        responder = head_responder_101(log)
        with raw_backend(responder) as (rport, _), \
                cutover({"s": {"targets": [f"127.0.0.1:{rport}"], "routes": [{"path": "/"}]}}) as c:
            with HttpConn(c.port, timeout=3) as h:
                h.send(req)
                r = h.read_response()
                eq(r.status, 502, f"status for an unsolicited 101 ({req.split(b' ')[0].decode()})")
                try:
                    h.send(b"GET /admin HTTP/1.1\r\nHost: s.test\r\n\r\n")
                    h.read_response()
                except (TestFailure, OSError):
                    pass
            eq([x for x in log if x.startswith(b"RAW ")], [], "raw bytes the backend received after its 101")


def head_responder_101(log):
    def handler(conn):
        conn.settimeout(3)
        buf = b""
        first = True
        for _ in range(10):
            while b"\r\n\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            log.append(head)
            if first:
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n")
                first = False
                # a tunnel would now pass the client's bytes through as they are
                try:
                    d = conn.recv(65536)
                except OSError:
                    return
                if d:
                    log.append(b"RAW " + d)
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return handler
