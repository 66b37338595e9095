"""harness.py - what the integration tests stand on.

Real processes only: the cutover binary under test (CUTOVER_BIN, default
build/cutover), Python backends on loopback (an HTTP/1.1 echo server that
records every request it receives, and a raw TCP server for hand-made
responses), and Debian's nginx.  Every process is started here, tracked by
PID, and stopped by PID when its `with` block ends.
"""
import contextlib, http.client, json, os, signal, socket, socketserver, subprocess, tempfile
import threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CUTOVER_BIN", os.path.join(ROOT, "build", "cutover"))
SHARED = os.environ.get("CUTOVER_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


# Set by scripts/test for the pass against the ASan+UBSan build: that pass
# looks for memory and undefined-behaviour errors on every path, so the
# tests that repeat one path many times for its statistics (twenty
# deploys, twenty restarts) repeat it fewer times there; the plain pass
# keeps the full count.
SANITIZED = os.environ.get("CUTOVER_SANITIZED") == "1"


def rounds(full, sanitized):
    """How many times to repeat a path: full, or sanitized in the ASan pass."""
    return sanitized if SANITIZED else full


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(actual, expected, what="value"):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


_ports_given = set()


def free_port():
    """A port free on 127.0.0.1 now, never one this process handed out
    before (the kernel may give the same ephemeral port twice in a row,
    e.g. for a listener and its admin address)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise TestFailure("no fresh free port after 100 tries")


def wait_port(port, timeout=5.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TestFailure(f"nothing listens on {host}:{port} after {timeout}s")


# ---------------------------------------------------------------- raw sockets

def raw(port, data, timeout=2.0, host="127.0.0.1", shut=False):
    """Send bytes, read until the peer closes or `timeout` of silence."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


def parse_responses(data):
    """Split a byte stream into (status, headers dict (lower-case), body) for
    Content-Length and chunked framing; the rest goes in the last tuple."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise TestFailure(f"incomplete response head: {data[:200]!r}")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            headers.setdefault(k.strip().lower().decode(), v.strip().decode("latin1"))
        if status < 200 or status in (204, 304):
            body, data = b"", rest
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body, data = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                line, _, rest = rest.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    _, _, rest = rest.partition(b"\r\n\r\n") if not rest.startswith(b"\r\n") else (b"", b"", rest[2:])
                    break
                body += rest[:size]
                rest = rest[size + 2:]
            data = rest
        else:
            body, data = rest, b""
        out.append((status, headers, body))
    return out


# ---------------------------------------------------------------- backends

class EchoHandler(socketserver.StreamRequestHandler):
    """A strict little HTTP/1.1 server that records each request it reads.

    GET /anything          -> 200, JSON of what it received
    /status/N              -> status N
    /bytes/N               -> N bytes (pattern), Content-Length, streamed
    /chunked/N             -> N bytes, chunked in 16 KiB pieces, with a trailer
    /delay/MS              -> answer after MS milliseconds
    /close                 -> answer with Connection: close, then close
    """
    def handle(self):
        srv = self.server
        with srv.lock:
            srv.connections += 1
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            try:
                method, target, version = line.decode("latin1").rstrip("\r\n").split(" ")
            except ValueError:
                srv.record({"bad": line.decode("latin1")})
                return
            headers = []
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin1").partition(":")
                headers.append((k, v.strip()))
            hmap = {}
            for k, v in headers:
                hmap.setdefault(k.lower(), []).append(v)
            body = b""
            if "transfer-encoding" in hmap:
                while True:
                    sl = self.rfile.readline()
                    n = int(sl.split(b";")[0], 16)
                    if n == 0:
                        while self.rfile.readline() not in (b"\r\n", b""):
                            pass
                        break
                    body_chunk = self.rfile.read(n)
                    self.rfile.read(2)
                    if srv.keep_bodies:
                        body += body_chunk
                    srv.body_bytes += n
            elif "content-length" in hmap:
                n = int(hmap["content-length"][0])
                left = n
                if "100-continue" in [x.lower() for x in hmap.get("expect", [])]:
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self.wfile.flush()
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        return
                    if srv.keep_bodies:
                        body += d
                    srv.body_bytes += len(d)
                    left -= len(d)
            req = {"method": method, "target": target, "version": version, "headers": headers,
                   "body_len": len(body) if srv.keep_bodies else None,
                   "body": body.decode("latin1") if len(body) < 4096 else None}
            srv.record(req)
            if not self.respond(method, target, hmap, body):
                return

    def respond(self, method, target, hmap, body):
        w = self.wfile
        path = target.split("?")[0]
        parts = path.strip("/").split("/")
        status, extra, payload = 200, [], None
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
        elif parts[0] == "delay" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000)
        elif parts[0] == "bytes" and len(parts) > 1:
            n = int(parts[1])
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
            if method != "HEAD":
                block = bytes(range(256)) * 256
                left = n
                while left:
                    k = min(left, len(block))
                    w.write(block[:k])
                    left -= k
            w.flush()
            return True
        elif parts[0] == "chunked" and len(parts) > 1:
            n = int(parts[1])
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n")
            block = bytes(range(256)) * 64
            left = n
            while left:
                k = min(left, len(block))
                w.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                left -= k
            w.write(b"0\r\nX-Checksum: done\r\n\r\n")
            w.flush()
            return True
        elif parts[0] == "close":
            extra.append("Connection: close")
        if payload is None:
            payload = json.dumps({"method": method, "target": target,
                                  "headers": [[k, v] for k, v in self.server.last["headers"]],
                                  "body": body.decode("latin1") if len(body) < 4096 else None,
                                  "port": self.server.server_address[1]}).encode()
        no_body = method == "HEAD" or status in (204, 304) or status < 200
        hdr = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        if status not in (204, 304):
            hdr += f"Content-Length: {len(payload)}\r\n"
        for e in extra:
            hdr += e + "\r\n"
        w.write(hdr.encode() + b"\r\n" + (b"" if no_body else payload))
        w.flush()
        return "Connection: close" not in extra


class EchoServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.body_bytes = 0
        self.keep_bodies = True
        self.last = None
        super().__init__(("127.0.0.1", port), EchoHandler)

    def record(self, req):
        with self.lock:
            self.requests.append(req)
            self.last = req


@contextlib.contextmanager
def echo_backend(port=None):
    srv = EchoServer(port or free_port())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def raw_backend(handler, port=None):
    """A TCP server that runs handler(conn) per connection (for broken or
    hand-made responses)."""
    port = port or free_port()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    ls.settimeout(0.1)
    stop = threading.Event()
    seen = []

    def serve():
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            seen.append(c)
            threading.Thread(target=lambda: _run(handler, c), daemon=True).start()

    def _run(h, c):
        try:
            h(c)
        except OSError:
            pass
        finally:
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield port, seen
    finally:
        stop.set()
        ls.close()
        t.join(1)


@contextlib.contextmanager
def nginx_backend(server_body, port=None):
    """Debian's nginx, one worker, private prefix, on loopback."""
    port = port or free_port()
    d = tempfile.mkdtemp(prefix="cutover-nginx-")
    conf = f"""daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; default_type text/plain; client_max_body_size 0;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  server {{ listen 127.0.0.1:{port}; root {d}/www; {server_body} }} }}"""
    os.makedirs(f"{d}/www")
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
    p = subprocess.Popen([nginx, "-p", d + "/", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port, d
    finally:
        p.terminate()
        p.wait(5)
        subprocess.run(["rm", "-rf", d])


# ---------------------------------------------------------------- cutover

class Cutover:
    def __init__(self, proc, port, admin, cfg_path, workdir):
        self.proc, self.port, self.admin, self.cfg_path, self.dir = proc, port, admin, cfg_path, workdir

    @property
    def pid(self):
        return self.proc.pid

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return body

    def metric(self, name, **labels):
        """Sum of every sample of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            key, _, val = line.rpartition(" ")
            if key.split("{")[0] != name:
                continue
            if all(f'{k}="{v}"' in key for k, v in labels.items()):
                total += float(val)
        return total

    def logs(self):
        with open(os.path.join(self.dir, "stderr.log"), errors="replace") as f:
            err = f.read()
        return err

    def access_log(self):
        p = os.path.join(self.dir, "access.log")
        return open(p).read() if os.path.exists(p) else ""

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for l in f:
                if l.startswith("VmRSS"):
                    return int(l.split()[1])
        return 0

    def reload(self, new_yaml):
        if "state_dir:" not in new_yaml:
            new_yaml = f"state_dir: {self.dir}/state\n" + new_yaml  # as at start
        with open(self.cfg_path, "w") as f:
            f.write(new_yaml)
        os.kill(self.pid, signal.SIGHUP)

    def shutdown_all(self, timeout=30):
        """`cutover shutdown --stop-services`: the daemon stops every instance,
        drains and exits (SIGTERM alone leaves the instances running for the
        next daemon).  Returns the daemon's exit status."""
        r = subprocess.run([BIN, "shutdown", "--stop-services", "--no-wait", "--config", self.cfg_path],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise TestFailure(f"cutover shutdown --stop-services: {r.returncode} {r.stdout}{r.stderr}")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
            raise TestFailure(f"cutover did not exit {timeout}s after cutover shutdown --stop-services")

    def terminate(self, timeout=15):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
            raise TestFailure(f"cutover did not exit {timeout}s after SIGTERM")


def config_yaml(services, port, admin, extra="", access_log=None):
    """services: {name: {"targets": [addr...], "routes": [{"host":..,"path":..}]}}"""
    y = f"listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\n"
    if access_log:
        y += f"log:\n  access: {access_log}\n  format: logfmt\n"
    y += extra
    y += "services:\n"
    for name, s in services.items():
        y += f"  {name}:\n    targets:\n"
        for t in s["targets"]:
            if isinstance(t, tuple):
                y += f"      - address: {t[0]}\n        weight: {t[1]}\n"
            else:
                y += f"      - {t}\n"
        routes = s.get("routes", [{"path": "/"}])
        if routes:
            y += "    routes:\n"
            for r in routes:
                first = True
                for k, v in r.items():
                    y += ("      - " if first else "        ") + f"{k}: {json.dumps(v)}\n"
                    first = False
    return y


def pids_under(d):
    """Live processes whose command line names a path under directory d."""
    found, prefix = [], (d.rstrip("/") + "/").encode()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            state = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(a.startswith(prefix) for a in cmd):
            found.append(int(p))
    return found


@contextlib.contextmanager
def cutover(services=None, extra="", yaml_text=None, access_log=True, env=None):
    """Start `cutover daemon` with a generated config; stop it by PID."""
    d = tempfile.mkdtemp(prefix="cutover-it-")
    port, admin = free_port(), free_port()
    if yaml_text is None:
        yaml_text = config_yaml(services, port, admin, extra, os.path.join(d, "access.log") if access_log else None)
    else:
        # ${NAME} belongs to cutover (run commands): keep it out of the harness's {PORT}/{ADMIN}/{DIR}
        yaml_text = yaml_text.replace("${", "\x00")
        yaml_text = yaml_text.replace("{PORT}", str(port)).replace("{ADMIN}", str(admin)).replace("{DIR}", d)
        yaml_text = yaml_text.replace("\x00", "${")
    if "state_dir:" not in yaml_text:
        # each daemon gets its own state dir (and admin socket): never /var/lib/cutover
        yaml_text = f"state_dir: {d}/state\n" + yaml_text
    cfg = os.path.join(d, "cutover.yml")
    with open(cfg, "w") as f:
        f.write(yaml_text)
    err = open(os.path.join(d, "stderr.log"), "w")
    proc = subprocess.Popen([BIN, "daemon", "--config", cfg], stdout=err, stderr=err, cwd=d,
                            env={**os.environ, **(env or {})})
    c = Cutover(proc, port, admin, cfg, d)
    try:
        try:
            wait_port(port)
            if f"admin: 127.0.0.1:{admin}" in yaml_text:
                wait_port(admin)
        except TestFailure:
            raise TestFailure("cutover did not start: " + open(os.path.join(d, "stderr.log")).read()[-2000:])
        yield c
    finally:
        # c.proc: a test may have restarted the daemon (after a kill -9)
        if c.proc.poll() is None:
            os.kill(c.proc.pid, signal.SIGKILL)
            c.proc.wait()
        # instances outlive a killed daemon by design: stop those this test's
        # daemons started (their command lines name its temp dir), by pid
        for pid in pids_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        err.close()
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {d}: CUTOVER_KEEP_TMP=1)")
        else:
            subprocess.run(["rm", "-rf", d])


def http_get(port, path="/", host="example.test", method="GET", body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Host": host}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


# ---------------------------------------------------------------- additions for test_http / test_smuggling

def poll_until(pred, timeout=5.0, interval=0.01, what="condition"):
    """Poll pred() until it is true (bounded in time); raise if it never is."""
    end = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= end:
            raise TestFailure(f"{what} not reached after {timeout}s")
        time.sleep(interval)


class Response:
    def __init__(self, status, reason, version, headers, body, trailers, framing, raw_head):
        self.status, self.reason, self.version = status, reason, version
        self.headers = headers          # [(name, value)] as received
        self.body, self.trailers, self.framing, self.raw_head = body, trailers, framing, raw_head

    def get(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def get_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:80]!r}>"


class HttpConn:
    """A raw client connection that reads responses one at a time with strict
    HTTP/1.1 framing checks (CRLF everywhere, exact chunk syntax), so that a
    proxy that sends a stray or missing byte is caught by the next read."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.interim = []

    def send(self, data):
        self.sock.sendall(data)

    def shut_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _fill(self, n=65536):
        try:
            d = self.sock.recv(n)
        except ConnectionResetError:
            d = b""
        if not d:
            raise TestFailure(f"connection closed by the proxy; unparsed bytes: {self.buf[:300]!r}")
        self.buf += d

    def _line(self, limit=65536):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit:
                raise TestFailure(f"line too long: {self.buf[:200]!r}")
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        if b"\n" in line or b"\r" in line:
            raise TestFailure(f"bare CR/LF in a line: {line!r}")
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill(max(65536, n - len(self.buf)))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_head(self):
        """Status line + fields.  Returns (status, reason, version, headers, raw)."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise TestFailure("response head too large")
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        raw = head + b"\r\n\r\n"
        lines = head.split(b"\r\n")
        for l in lines:
            if b"\n" in l or b"\r" in l:
                raise TestFailure(f"bare CR/LF in response head: {raw!r}")
        parts = lines[0].decode("latin1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (len(parts[1]) == 3 and parts[1].isdigit()):
            raise TestFailure(f"malformed status line: {lines[0]!r}")
        headers = []
        for l in lines[1:]:
            k, sep, v = l.decode("latin1").partition(":")
            if not sep or not k or k != k.strip():
                raise TestFailure(f"malformed header line {l!r} in {raw!r}")
            headers.append((k, v.strip(" \t")))
        return int(parts[1]), parts[2] if len(parts) > 2 else "", parts[0], headers, raw

    def read_chunked(self, sink=None):
        """Strict chunked decoding.  Returns (body or total, trailers, ext list)."""
        body, total, exts = [], 0, []
        while True:
            line = self._line()
            size, _, ext = line.partition(b";")
            if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise TestFailure(f"bad chunk size line {line!r}")
            if ext:
                exts.append(ext)
            n = int(size, 16)
            if n == 0:
                break
            left = n
            while left:
                if not self.buf:
                    self._fill(min(left, 1 << 20))
                d = self.buf[:left]
                self.buf = self.buf[len(d):]
                left -= len(d)
                total += len(d)
                if sink:
                    sink(d)
                else:
                    body.append(d)
            if self.read_exact(2) != b"\r\n":
                raise TestFailure("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self._line()
            if not line:
                break
            k, sep, v = line.decode("latin1").partition(":")
            if not sep:
                raise TestFailure(f"bad trailer line {line!r}")
            trailers.append((k, v.strip()))
        return (total if sink else b"".join(body)), trailers, exts

    def read_to_close(self, limit=64 << 20):
        while True:
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                d = b""
            if not d:
                break
            self.buf += d
            if len(self.buf) > limit:
                raise TestFailure("close-delimited body beyond the test limit")
        d, self.buf = self.buf, b""
        return d

    def read_response(self, method="GET", sink=None, keep_interim=False):
        """One final response (interim 1xx responses go to self.interim)."""
        while True:
            status, reason, version, headers, raw = self.read_head()
            if 100 <= status < 200 and status != 101:
                self.interim.append((status, headers))
                if keep_interim:
                    return Response(status, reason, version, headers, b"", [], "none", raw)
                continue
            break
        r = Response(status, reason, version, headers, b"", [], "none", raw)
        te = [v.lower() for v in r.get_all("transfer-encoding")]
        cl = r.get_all("content-length")
        if te and cl:
            raise TestFailure(f"response with both Transfer-Encoding and Content-Length: {raw!r}")
        if len(cl) > 1:
            raise TestFailure(f"response with several Content-Length: {raw!r}")
        if method == "HEAD" or status in (204, 304) or status == 101:
            return r
        if te:
            if te != ["chunked"]:
                raise TestFailure(f"unexpected Transfer-Encoding {te!r}")
            r.framing = "chunked"
            r.body, r.trailers, r.exts = self.read_chunked(sink)
        elif cl:
            n = int(cl[0])
            r.framing = "length"
            if sink:
                left = n
                while left:
                    if not self.buf:
                        self._fill(min(left, 1 << 20))
                    d = self.buf[:left]
                    self.buf = self.buf[len(d):]
                    left -= len(d)
                    sink(d)
                r.body = n
            else:
                r.body = self.read_exact(n)
        else:
            r.framing = "close"
            r.body = self.read_to_close()
        return r

    def closed(self, timeout=2.0):
        """True if the peer closes with no further bytes within timeout."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if d:
            self.buf += d
            return False
        return True


def request_bytes(method="GET", target="/", host="example.test", headers=(), body=b"", version="HTTP/1.1"):
    h = f"{method} {target} {version}\r\n"
    if host is not None:
        h += f"Host: {host}\r\n"
    for k, v in headers:
        h += f"{k}: {v}\r\n"
    return h.encode("latin1") + b"\r\n" + body


class RssSampler:
    """Samples a process' VmRSS every `interval` seconds in a thread while
    the with-block runs; .max_kb is the peak seen."""

    def __init__(self, cut, interval=0.02):
        self.cut, self.interval, self.max_kb, self.samples = cut, interval, 0, 0
        self._stop = threading.Event()

    def sample(self):
        try:
            kb = self.cut.rss_kb()
        except OSError:
            return
        self.max_kb = max(self.max_kb, kb)
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(2)
        self.sample()


def read_head_raw(conn, limit=1 << 20):
    """Read from a plain socket up to and including the end of an HTTP head
    (CRLFCRLF).  Returns (head, extra bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = conn.recv(65536)
        if not d:
            return data, b""
        data += d
        if len(data) > limit:
            break
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


# ---------------------------------------------------------------- helpers (ops, config/CLI tests)

def wait_until(pred, timeout=5.0, interval=0.02, what="condition"):
    """Poll pred() until it returns something truthy; return that value, or
    raise TestFailure after `timeout` seconds (the last value in the message)."""
    end = time.time() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.time() >= end:
            raise TestFailure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def metric_samples(text):
    """Parse Prometheus text into [(name, {label: value}, float)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        name, _, rest = key.partition("{")
        labels = {}
        rest = rest.rstrip("}")
        i = 0
        while i < len(rest):
            eqi = rest.index("=", i)
            k = rest[i:eqi].strip(", ")
            j = eqi + 2  # past ="
            v = ""
            while rest[j] != '"':
                if rest[j] == "\\":
                    j += 1
                    v += {"n": "\n"}.get(rest[j], rest[j])
                else:
                    v += rest[j]
                j += 1
            labels[k] = v
            i = j + 1
        out.append((name, labels, float(val)))
    return out


def connect_refused(port, host="127.0.0.1"):
    """True if a TCP connect to host:port is refused right now."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def read_until_close(s, timeout=3.0):
    """Read from socket s until the peer closes it or `timeout` passes.
    Returns (bytes, how) with how in "eof", "reset", "timeout"."""
    out = b""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return out, "timeout"
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return out, "timeout"
        except ConnectionResetError:
            return out, "reset"
        if not d:
            return out, "eof"
        out += d


def run_cli(*args, timeout=10, cwd=None):
    """Run the cutover binary with args; return CompletedProcess (text)."""
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


class StrictEchoHandler(EchoHandler):
    """The echo backend with a strict RFC 9112 reader: anything ambiguous the
    proxy forwards (bad request line, field syntax, two lengths, a transfer
    coding other than chunked, a bad chunk line) is recorded as
    {"bad": reason, ...} and the connection closed; a message cut short by
    EOF is not recorded at all.  Responses are the echo backend's."""

    def _line(self):
        line = self.rfile.readline(65537)
        if line and not line.endswith(b"\r\n"):
            raise ValueError(f"line without CRLF: {line[:100]!r}")
        return line

    def handle(self):
        srv = self.server
        with srv.lock:
            srv.connections += 1
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            first = line.decode("latin1")
            try:
                req = self._read_one(line)
            except EOFError:
                return  # truncated: never processed
            except ValueError as e:
                srv.record({"bad": str(e), "line": first})
                return
            srv.record(req)
            if not self.respond(req["method"], req["target"], req["hmap"], req.pop("raw_body")):
                return

    def _read_one(self, line):
        srv = self.server
        if not line.endswith(b"\r\n"):
            raise ValueError(f"request line without CRLF: {line[:100]!r}")
        parts = line[:-2].decode("latin1").split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1] or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
            raise ValueError(f"bad request line {line[:100]!r}")
        method, target, version = parts
        tchars = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if set(method) - tchars:
            raise ValueError(f"bad method {method!r}")
        headers = []
        for _ in range(200):
            h = self._line()
            if not h:
                raise EOFError
            if h == b"\r\n":
                break
            if h[:1] in (b" ", b"\t"):
                raise ValueError(f"obs-fold {h[:100]!r}")
            k, sep, v = h[:-2].decode("latin1").partition(":")
            if not sep or not k or set(k) - tchars:
                raise ValueError(f"bad field line {h[:100]!r}")
            if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in v):
                raise ValueError(f"control character in {k}")
            headers.append((k, v.strip(" \t")))
        else:
            raise ValueError("too many fields")
        hmap = {}
        for k, v in headers:
            hmap.setdefault(k.lower(), []).append(v)
        if version == "HTTP/1.1" and len(hmap.get("host", [])) != 1:
            raise ValueError(f"{len(hmap.get('host', []))} Host fields")
        te, cl = hmap.get("transfer-encoding"), hmap.get("content-length")
        if te and cl:
            raise ValueError("both Transfer-Encoding and Content-Length")
        if te and (len(te) != 1 or te[0].lower() != "chunked"):
            raise ValueError(f"Transfer-Encoding {te!r}")
        if cl and (len(cl) != 1 or not cl[0].isdigit()):
            raise ValueError(f"Content-Length {cl!r}")
        body = b""
        if te:
            for _ in range(1 << 22):
                sl = self._line()
                if not sl:
                    raise EOFError
                size, _, ext = sl[:-2].partition(b";")
                if not size or set(size) - set(b"0123456789abcdefABCDEF") or len(size) > 15:
                    raise ValueError(f"bad chunk size line {sl[:100]!r}")
                n = int(size, 16)
                if n == 0:
                    break
                d = self.rfile.read(n)
                if len(d) < n:
                    raise EOFError
                crlf = self.rfile.read(2)
                if len(crlf) < 2:
                    raise EOFError
                if crlf != b"\r\n":
                    raise ValueError(f"chunk data not followed by CRLF: {crlf!r}")
                if srv.keep_bodies:
                    body += d
                srv.body_bytes += n
            for _ in range(200):
                t = self._line()
                if not t:
                    raise EOFError
                if t == b"\r\n":
                    break
        elif cl:
            left = int(cl[0])
            if "100-continue" in [x.lower() for x in hmap.get("expect", [])]:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    raise EOFError
                if srv.keep_bodies:
                    body += d
                srv.body_bytes += len(d)
                left -= len(d)
        return {"method": method, "target": target, "version": version, "headers": headers,
                "body_len": len(body) if srv.keep_bodies else None,
                "body": body.decode("latin1") if len(body) < 4096 else None,
                "hmap": hmap, "raw_body": body}


@contextlib.contextmanager
def strict_echo_backend(port=None):
    """echo_backend() with StrictEchoHandler: records {"bad": ...} for anything
    a strict HTTP/1.1 server would reject."""
    srv = EchoServer(port or free_port())
    srv.RequestHandlerClass = StrictEchoHandler
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def unix_request(sock_path, method, path, body=b"", timeout=5):
    """One HTTP/1.1 request over a Unix socket (the daemon's admin API),
    read to the end; returns (status, body as text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: cutover\r\nContent-Length: {len(body)}\r\n"
              f"Connection: close\r\n\r\n".encode() + body)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    (status, _, payload), = parse_responses(out)
    return status, payload.decode()
