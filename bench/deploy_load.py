#!/usr/bin/env python3
"""deploy_load.py - the measuring half of bench/deploy (Python 3 stdlib only).

bench/deploy starts the daemon and decides what to run; this file does the
timing, the HTTP clients and the arithmetic.  Every mode is bounded in time.

  ports N                         print N free loopback TCP ports
  startup --bin B --db F --reps N the shop's own start-up: spawn it, poll GET
                                  /health every 1 ms until 200; one JSON line
  bg --port P --out F             steady light load (keep-alive clients, paced)
                                  until SIGTERM/SIGINT or --max-s; JSON summary
  deploy --cutover B --socket S --version V
                                  run `cutover deploy --json`, one JSON line
  rollback --cutover B --socket S --port P --old V --new V
                                  probe clients on the proxy, `cutover rollback`
                                  in the middle; one JSON line with client-side
                                  and daemon-side figures
  report --raw F ...              the table and the verdict, from the JSON lines
                                  the other modes printed (collected in F)

All client timestamps are time.monotonic_ns() in this process; the rollback
command is started from the same process, so its start and the requests'
send times are on one clock.
"""
import argparse
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()


# ---------------------------------------------------------------- HTTP client

class Conn:
    """One keep-alive HTTP/1.1 client connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = b""

    def get(self, path, send_cb=None):
        """GET path.  Returns (status, x-shop-version or None).  Raises
        OSError/ValueError on a transport or framing failure (connection closed).
        send_cb() is called just before the request is written (the send time)."""
        if self.sock is None:
            self._connect()
        req = ("GET %s HTTP/1.1\r\nHost: shop.bench\r\nUser-Agent: cutover-bench-deploy\r\n\r\n" % path).encode()
        try:
            if send_cb:
                send_cb()
            self.sock.sendall(req)
            while b"\r\n\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ValueError("connection closed before the response head")
                self.buf += chunk
                if len(self.buf) > 1 << 20:
                    raise ValueError("response head too large")
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise ValueError("bad status line %r" % lines[0][:80])
            status = int(parts[1])
            headers = {}
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    headers[k.strip().lower()] = v.strip()
            if "content-length" not in headers:
                raise ValueError("response without Content-Length")
            need = int(headers["content-length"])
            while len(rest) < need:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ValueError("connection closed in the body")
                rest += chunk
            self.buf = rest[need:]
            if headers.get("connection", "").lower() == "close":
                self.close()
            return status, headers.get("x-shop-version")
        except Exception:
            self.close()
            raise


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# ---------------------------------------------------------------- modes

def cmd_ports(a):
    print(" ".join(str(p) for p in free_ports(a.n)))


def cmd_startup(a):
    """The shop alone: spawn -> first 200 on GET /health (polled every 1 ms)."""
    samples = []
    for i in range(a.reps + 1):  # the first run creates/migrates the database: not counted
        port = free_ports(1)[0]
        t0 = now_ns()
        p = subprocess.Popen([a.bin, "--port", str(port), "--db", a.db],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ms = None
        try:
            deadline = t0 + int(a.timeout_s * 1e9)
            while now_ns() < deadline:
                c = Conn(port, timeout=1.0)
                try:
                    status, _ = c.get("/health")
                    if status == 200:
                        ms = (now_ns() - t0) / 1e6
                        break
                except (OSError, ValueError):
                    pass
                finally:
                    c.close()
                if p.poll() is not None:
                    break
                time.sleep(0.001)
        finally:
            p.terminate()
            try:
                p.wait(timeout=12)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if ms is None:
            log("deploy_load startup: %s did not answer /health within %.0f s (exit %s)" % (a.bin, a.timeout_s, p.returncode))
            sys.exit(1)
        if i > 0:
            samples.append(round(ms, 3))
    log("  shop start-up alone: median %s ms (min %s, max %s, n=%d)"
        % (fmt(median(samples)), fmt(min(samples)), fmt(max(samples)), len(samples)))
    print(json.dumps({"kind": "startup", "bin": a.bin, "startup_ms": samples}))


def cmd_bg(a):
    """Steady light load: a.clients keep-alive clients, each pausing a.pause_ms
    between requests, every response checked (200 and a version header)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    paths = ["/health", "/api/catalog", "/version", "/api/catalog/3"]
    lock = threading.Lock()
    res = {"kind": "bg", "set": a.set, "clients": a.clients, "pause_ms": a.pause_ms, "requests": 0, "failed": 0,
           "versions": {}, "errors": []}

    def client(idx):
        c = Conn(a.port)
        n = idx
        while not stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            try:
                status, ver = c.get(path)
                err = None if status == 200 and ver else "GET %s: status %d" % (path, status)
            except (OSError, ValueError) as e:
                ver, err = None, "GET %s: %s" % (path, e)
            with lock:
                res["requests"] += 1
                if ver:
                    res["versions"][ver] = res["versions"].get(ver, 0) + 1
                if err:
                    res["failed"] += 1
                    if len(res["errors"]) < 20:
                        res["errors"].append(err)
            stop.wait(a.pause_ms / 1000.0)
        c.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    stop.wait(a.max_s)
    stop.set()
    for t in threads:
        t.join(timeout=6)
    with open(a.out, "w") as f:
        json.dump(res, f)


def run_cli(argv, timeout_s):
    """Run a cutover CLI command.  Returns (rc, stdout, stderr, t0_ns, t1_ns, wall0_ns)."""
    wall0 = time.time_ns()
    t0 = now_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        err = (err or b"") + b"\n(deploy_load: killed after %d s)" % timeout_s
    t1 = now_ns()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), t0, t1, wall0


def events_by_phase(dep):
    ev = {}
    for e in dep.get("events") or []:
        ev.setdefault(e.get("phase"), e)  # the first event of each phase
    return ev


def cmd_deploy(a):
    rc, out, err, t0, t1, wall0 = run_cli([a.cutover, "deploy", a.service, a.version, "--json", "--socket", a.socket,
                                           "--timeout", str(a.timeout_s)], a.timeout_s + 10)
    rec = {"kind": "deploy", "set": a.set, "version": a.version, "rc": rc, "wall_ms": round((t1 - t0) / 1e6, 3)}
    try:
        dep = json.loads(out)
    except ValueError:
        dep = None
    if not dep:
        rec["error"] = (err or out).strip()[-400:]
        print(json.dumps(rec))
        return
    ev = events_by_phase(dep)
    last = (dep.get("events") or [{}])[-1]
    rec.update({"id": dep.get("id"), "phase": dep.get("phase"), "reason": dep.get("reason")})
    if "healthy" in ev and "switched" in ev:
        rec["healthy_to_switched_ms"] = ev["switched"]["elapsed_ms"] - ev["healthy"]["elapsed_ms"]
        rec["healthy_to_switched_at_ms"] = ev["switched"]["at_ms"] - ev["healthy"]["at_ms"]
        rec["to_healthy_ms"] = ev["healthy"]["elapsed_ms"]
        rec["to_switched_ms"] = ev["switched"]["elapsed_ms"]
        rec["switch_ms"] = ev["switched"].get("switch_ms")
    rec["duration_ms"] = last.get("elapsed_ms")
    # from the command's start to the daemon's record of its start (CLI exec, admin socket)
    rec["cli_to_start_ms"] = dep.get("started_at_ms", 0) - wall0 / 1e6 if dep.get("started_at_ms") else None
    if rc != 0 or dep.get("phase") != "done":
        rec["error"] = "phase %s: %s %s" % (dep.get("phase"), dep.get("reason"), err.strip()[-200:])
    log("  deploy %s %s: %s  start->switched %s ms, healthy->switched %s ms, switch_ms %s, wall %.0f ms"
        % (a.service, a.version, rec.get("phase"), rec.get("to_switched_ms"), rec.get("healthy_to_switched_ms"),
           rec.get("switch_ms"), rec["wall_ms"]))
    print(json.dumps(rec))


def probe_start(port, pause_ms, hard_stop):
    """Fork one probe client: a process of its own (no GIL shared with the
    process that starts the command), a keep-alive connection, GET /health in
    a loop, pause_ms between requests, until told to stop (a byte on its stop
    pipe) or hard_stop.  Send times are CLOCK_MONOTONIC, shared by all
    processes of the machine.  Returns (pid, stop_fd, out_fd)."""
    stop_r, stop_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.close(stop_w)
            os.close(out_r)
            c = Conn(port)
            lines = []
            wait_s = max(pause_ms, 0) / 1000.0
            while now_ns() < hard_stop:
                if select.select([stop_r], [], [], wait_s)[0]:
                    break
                box = [0]

                def mark():
                    box[0] = now_ns()
                try:
                    status, ver = c.get("/health", send_cb=mark)
                    lines.append("%d %s %d\n" % (box[0], ver or "-", status == 200))
                except (OSError, ValueError):
                    lines.append("%d - 0\n" % (box[0] or now_ns()))
                    time.sleep(0.001)
            c.close()
            data = "".join(lines).encode()
            while data:
                n = os.write(out_w, data)
                data = data[n:]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(stop_r)
    os.close(out_w)
    return (pid, stop_w, out_r)


def probe_finish(p):
    """Stop a probe and read its records: [(send_ns, version or None, ok)]."""
    pid, stop_w, out_r = p
    try:
        os.write(stop_w, b"x")
    except OSError:
        pass
    chunks = []
    while True:
        b = os.read(out_r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    recs = []
    for line in b"".join(chunks).decode().splitlines():
        t, ver, ok = line.split()
        recs.append((int(t), None if ver == "-" else ver, ok == "1"))
    return recs


def probe_kill(p):
    pid, stop_w, out_r = p
    for fd in (stop_w, out_r):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def cmd_rollback(a):
    """Probe clients on the proxy; `cutover rollback` in the middle.

    Every request records (send time, version that answered, ok).  The figure:
    from the start of the rollback command to the send time of the first
    request after which no request got the new version (requests sorted by send
    time, over all probe clients)."""
    hard_stop = now_ns() + int((a.pre_ms + a.post_ms + a.timeout_s * 1000 + 15000) * 1e6)
    probes = [probe_start(a.port, a.pause_ms, hard_stop) for _ in range(a.clients)]
    try:
        time.sleep(a.pre_ms / 2000.0)
        # the cost of starting any process here and now (same load): /bin/true
        _, _, _, s0, s1, _ = run_cli(["/bin/true"], 10)
        time.sleep(a.pre_ms / 2000.0)
        rc, out, err, t0, t1, wall0 = run_cli([a.cutover, "rollback", a.service, "--json", "--socket", a.socket,
                                               "--timeout", str(a.timeout_s)], a.timeout_s + 10)
        time.sleep(a.post_ms / 1000.0)
        recs = [probe_finish(p) for p in probes]
    finally:
        for p in probes:
            probe_kill(p)

    rec = {"kind": "rollback", "set": a.set, "rc": rc, "wall_ms": round((t1 - t0) / 1e6, 3),
           "spawn_true_ms": round((s1 - s0) / 1e6, 3), "probe_clients": a.clients, "probe_pause_ms": a.pause_ms}
    try:
        dep = json.loads(out)
    except ValueError:
        dep = None
    if dep:
        # the switch back: the event that carries rollback_ms (the rollback's
        # "done"; older cutovers finished an instant rollback as "rolled-back")
        rb = next((e for e in dep.get("events") or [] if "rollback_ms" in e), {})
        rec.update({"id": dep.get("id"), "phase": dep.get("phase"), "reason": dep.get("reason"),
                    "rollback_ms": rb.get("rollback_ms")})
        if rb.get("at_ms"):
            # daemon wall clock (ms resolution) vs our wall clock at the command's start
            rec["daemon_switch_after_start_ms"] = round(rb["at_ms"] - wall0 / 1e6, 3)
    if rc != 0 or not dep or dep.get("phase") not in ("done", "rolled-back") or not rb:
        rec["error"] = ("phase %s: %s " % (dep.get("phase"), dep.get("reason")) if dep else "") + (err or out).strip()[-300:]

    allr = sorted(r for lst in recs for r in lst)
    if a.clients:
        before = [r for r in allr if r[0] < t0]
        after = [r for r in allr if r[0] >= t0]
        new_idx = [i for i, r in enumerate(allr) if r[1] == a.new]
        rec.update({"requests": len(allr), "failed": sum(1 for r in allr if not r[2]),
                    "before_start": len(before), "before_start_new": sum(1 for r in before if r[1] == a.new),
                    "after_start": len(after), "other_version": sum(1 for r in allr if r[1] not in (a.new, a.old, None))})
        if not new_idx:
            rec.setdefault("error", "no probe request was answered by %s" % a.new)
        elif new_idx[-1] + 1 >= len(allr):
            rec.setdefault("error", "the new version %s still answered the last probe request" % a.new)
        else:
            last_new = allr[new_idx[-1]][0]
            first_clean = allr[new_idx[-1] + 1][0]
            rec["client_ms"] = round((first_clean - t0) / 1e6, 3)      # the figure
            rec["last_new_ms"] = round((last_new - t0) / 1e6, 3)       # lower bound
            rec["resolution_ms"] = round((first_clean - last_new) / 1e6, 3)
            rec["old_after"] = len(allr) - new_idx[-1] - 1
            # the probe's request rate around the command (how fine the figure can be)
            span = [r[0] for r in allr if t0 - 100e6 <= r[0] <= t1 + 100e6]
            if len(span) > 1:
                rec["probe_gap_ms"] = round((span[-1] - span[0]) / 1e6 / (len(span) - 1), 3)
    seen = ("clients all on %s after %s ms (last %s at %s ms, %s probe requests, %s failed), "
            % (a.old, rec.get("client_ms"), a.new, rec.get("last_new_ms"), rec.get("requests"), rec.get("failed"))
            if a.clients else "")
    log("  rollback %s: %s  %srollback_ms %s, wall %.1f ms (/bin/true %.1f ms)%s"
        % (a.service, rec.get("phase"), seen, rec.get("rollback_ms"), rec["wall_ms"], rec["spawn_true_ms"],
           "  ERROR " + rec["error"] if rec.get("error") else ""))
    print(json.dumps(rec))


# ---------------------------------------------------------------- report

def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def p90(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def fmt(x):
    if x is None:
        return "-"
    if abs(x) < 10:
        return "%.3f" % x
    if abs(x) < 1000:
        return "%.1f" % x
    return "%.0f" % x


def cmd_report(a):
    recs = []
    with open(a.raw) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    startup = [x for r in recs if r.get("kind") == "startup" for x in r.get("startup_ms", [])]
    bg = [r for r in recs if r.get("kind") == "bg"]

    def vals(kind, key, set_=None, ok_only=True):
        out = []
        for r in recs:
            if r.get("kind") != kind or (set_ and r.get("set") != set_):
                continue
            if ok_only and r.get("error"):
                continue
            v = r.get(key)
            if isinstance(v, (int, float)):
                out.append(float(v))
        return out

    rows = []

    def row(label, xs, unit="ms"):
        if xs:
            rows.append((label, len(xs), fmt(min(xs)), fmt(median(xs)), fmt(p90(xs)), fmt(max(xs)), unit))
        else:
            rows.append((label, 0, "-", "-", "-", "-", unit))

    def section(title):
        rows.append((title,))

    fast, dflt = "fast", "default"
    st_med = median(startup) if startup else None
    section("1. switch (health interval %s)" % a.fast_interval)
    row("healthy -> switched, as recorded (events elapsed_ms)", vals("deploy", "healthy_to_switched_ms", fast))
    row("switch_ms at the proxy", vals("deploy", "switch_ms", fast))
    section("2. rollback (`cutover rollback`, the previous version warm)")
    row("command start -> all new requests on old (client)", vals("rollback", "client_ms", fast))
    row("command start -> last request on new (client)", vals("rollback", "last_new_ms", fast))
    row("  gap between those two requests (resolution)", vals("rollback", "resolution_ms", fast))
    row("command start -> switch in the daemon's event (at_ms)", vals("rollback", "daemon_switch_after_start_ms", fast))
    row("rollback_ms at the proxy (daemon)", vals("rollback", "rollback_ms", fast))
    row("`cutover rollback` wall time", vals("rollback", "wall_ms", fast))
    row("  for scale: start + wait of /bin/true, same load", vals("rollback", "spawn_true_ms", fast))
    section("3. deploy time beyond the app's own start-up")
    row("shop start-up alone (spawn -> /health 200)", startup)
    for set_, interval in ((fast, a.fast_interval), (dflt, a.default_interval)):
        if not vals("deploy", "to_switched_ms", set_):
            continue
        tag = "@%s" % interval
        sw = vals("deploy", "to_switched_ms", set_)
        du = vals("deploy", "duration_ms", set_)
        wa = vals("deploy", "wall_ms", set_)
        row("%s deploy start -> switched (recorded)" % tag, sw)
        row("%s deploy recorded duration (start -> done)" % tag, du)
        row("%s `cutover deploy` wall time" % tag, wa)
        if st_med is not None:
            row("%s   start -> switched  - app start-up" % tag, [x - st_med for x in sw])
            row("%s   recorded duration - app start-up" % tag, [x - st_med for x in du])
            row("%s   wall time          - app start-up" % tag, [x - st_med for x in wa])

    w = max(len(r[0]) for r in rows if len(r) > 1) + 2
    lines = []
    lines.append("%-*s %4s %9s %9s %9s %9s  %s" % (w, "metric", "n", "min", "median", "p90", "max", "unit"))
    for r in rows:
        if len(r) == 1:
            lines.append(r[0])
        else:
            lines.append("%-*s %4d %9s %9s %9s %9s  %s" % (w, r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
    print("\n".join(lines))

    # notes: what the figures mean, and anything that went wrong
    print()
    print("# expected deploy overhead = first passing check (probes every 50 ms until then) + (healthy_threshold - 1)"
          " x interval: about 50 + %d x %s = %d ms (bench config), 50 + %d x %s = %d ms (examples/shop.yml)"
          % (a.threshold - 1, a.fast_interval, 50 + a.fast_interval_ms * (a.threshold - 1),
             a.threshold - 1, a.default_interval, 50 + a.default_interval_ms * (a.threshold - 1)))
    print("# deploys use watch: 0s (done at the switch); the CLI follows the event stream and reads the deployment once it ends (the wall time adds its start and that read)")
    res_ms = vals("rollback", "probe_gap_ms", fast)
    if res_ms:
        pause = [r.get("probe_pause_ms") for r in recs if r.get("kind") == "rollback" and r.get("set") == fast]
        print("# rollback probe: %d processes, each a keep-alive client on GET /health pausing %s ms between "
              "requests; together one request every %.3f ms (median) around the command"
              % (a.probe_clients, pause[0] if pause else "?", median(res_ms)))
    total = sum(b.get("requests", 0) for b in bg)
    failed = sum(b.get("failed", 0) for b in bg)
    pfail = sum(r.get("failed", 0) for r in recs if r.get("kind") == "rollback")
    preq = sum(r.get("requests", 0) for r in recs if r.get("kind") == "rollback")
    print("# background load (%s): %d requests, %d failed; rollback probes: %d requests, %d failed"
          % ("; ".join("%s: %d clients, one request each every %g ms" % (b.get("set"), b["clients"], b["pause_ms"])
                       for b in bg) or "none", total, failed, preq, pfail))
    for b in bg:
        for e in b.get("errors", [])[:5]:
            print("#   background failure: %s" % e)
    bad = [r for r in recs if r.get("error")]
    for r in bad:
        print("# FAILED %s (%s): %s" % (r.get("kind"), r.get("set"), r.get("error")))

    sw = vals("deploy", "switch_ms", fast)
    rb = vals("rollback", "rollback_ms", fast)
    ok = bool(sw) and bool(rb) and median(sw) < 10 and max(sw) < 10 and median(rb) < 10 and max(rb) < 10
    print()
    if sw and rb:
        verdict = ("%s  switch and rollback under 10 ms at the proxy: switch_ms median %s max %s, "
                   "rollback_ms median %s max %s (n=%d/%d)" % ("PASS" if ok else "FAIL", fmt(median(sw)), fmt(max(sw)),
                                                                fmt(median(rb)), fmt(max(rb)), len(sw), len(rb)))
    else:
        verdict = "FAIL  switch and rollback under 10 ms at the proxy: no samples (switch %d, rollback %d)" % (len(sw), len(rb))
    print(verdict)
    cl = vals("rollback", "client_ms", fast)
    if cl:
        print("info  rollback seen by clients (command start -> all new requests on the old version): "
              "median %s ms, max %s ms" % (fmt(median(cl)), fmt(max(cl))))
    if bad or failed or pfail:
        print("note  %d failed deploy/rollback operations, %d failed requests (see above)" % (len(bad), failed + pfail))
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("startup")
    p.add_argument("--bin", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--timeout-s", type=float, default=10)
    p = sub.add_parser("bg")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--pause-ms", type=float, default=20)
    p.add_argument("--max-s", type=float, default=600)
    p.add_argument("--set", default="fast")
    for name in ("deploy", "rollback"):
        p = sub.add_parser(name)
        p.add_argument("--cutover", required=True)
        p.add_argument("--socket", required=True)
        p.add_argument("--service", default="shop")
        p.add_argument("--set", default="fast")
        p.add_argument("--timeout-s", type=int, default=60)
        if name == "deploy":
            p.add_argument("--version", required=True)
        else:
            p.add_argument("--port", type=int, required=True)
            p.add_argument("--old", required=True)
            p.add_argument("--new", required=True)
            p.add_argument("--clients", type=int, default=2)
            p.add_argument("--pre-ms", type=float, default=300)
            p.add_argument("--post-ms", type=float, default=500)
            p.add_argument("--pause-ms", type=float, default=0.5)
    p = sub.add_parser("report")
    p.add_argument("--raw", required=True)
    p.add_argument("--fast-interval", default="100ms")
    p.add_argument("--fast-interval-ms", type=int, default=100)
    p.add_argument("--default-interval", default="500ms")
    p.add_argument("--default-interval-ms", type=int, default=500)
    p.add_argument("--threshold", type=int, default=2)
    p.add_argument("--probe-clients", type=int, default=2)
    a = ap.parse_args()
    {"ports": cmd_ports, "startup": cmd_startup, "bg": cmd_bg, "deploy": cmd_deploy,
     "rollback": cmd_rollback, "report": cmd_report}[a.mode](a)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: bench/deploy cleans up; no traceback
        sys.exit(130)
