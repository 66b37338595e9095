#!/usr/bin/env python3
"""canary_load.py - the measuring half of bench/canary (Python 3 stdlib only).

bench/canary starts the daemon, the releases and decides what to run; this
file holds the open-loop load generator, runs the canaries, and does the
arithmetic.  Every mode is bounded in time.

  ports N          print N free loopback TCP ports
  run ...          one canary of a bad version under a fixed request rate:
                   `cutover deploy` while the load runs, until the deployment
                   ends (or --abort-wait-s, then `cutover abort`); one JSON line
  falsealarm ...   canaries of good versions, one after the other on each of
                   several services at once, each service under its own load;
                   one JSON line per canary and one per service's load
  report --raw F   the tables and the verdicts, from the JSON lines of F

The load is open-loop: request i of a stream is due at t0 + i/rate whatever
happened to the requests before it (a fixed rate, as wrk2 does; wrk2 is not
in Debian).  A due request goes out on an idle keep-alive connection, or on
a new one (at most --max-conns open), or waits for the first connection to
free up; its lateness (send time - due time) is recorded and reported, so a
generator that could not keep the rate shows it.  Latency is measured from
the due time (no coordinated omission).  No cookies are sent, so the proxy
assigns every request by weight (docs/config.md, cohorts).

Times: the releases write CLOCK_REALTIME microseconds (bench/canary_release.c),
the daemon's events carry CLOCK_REALTIME milliseconds (at_ms), and this file
converts its monotonic clock to the wall clock with one offset taken at start.
"""
import argparse
import asyncio
import collections
import json
import math
import os
import random
import socket
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


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


def quantile(xs, q):
    """The q-quantile (nearest rank) of xs, or None."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def median(xs):
    if not xs:
        return None
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ---------------------------------------------------------------- the load

# one request's record: due, sent and done times (loop clock, seconds), POST
# or not, the status (0: connection closed or reset before the response,
# -1: timeout, -2: connect failed) and the X-Release that answered
Req = collections.namedtuple("Req", "due sent done post status release")


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection of a Stream; at most one
    request in flight (the proxy is not sent pipelined requests)."""

    def __init__(self, stream):
        self.stream = stream
        self.transport = None
        self.buf = b""
        self.req = None  # [due, sent, post] of the request in flight
        self.head = None  # (status, content-length, release, close) once read
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, due, post):
        self.req = [due, self.stream.loop.time(), post]
        self.buf, self.head = b"", None
        self.transport.write(self.stream.post_bytes if post else self.stream.get_bytes)

    def data_received(self, data):
        if self.req is None:
            return  # nothing asked: ignore
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self._fail(0)
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                self._fail(0)
                return
            length, release, close = 0, None, False
            for line in lines[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    length = int(v.strip() or 0)
                elif k == "x-release":
                    release = v.strip()
                elif k == "connection":
                    close = v.strip().lower() == "close"
            self.head = (status, length, release, close)
            self.buf = self.buf[end + 4:]
        status, length, release, close = self.head
        if len(self.buf) < length:
            return
        due, sent, post = self.req
        self.req, self.head, self.buf = None, None, b""
        self.stream.done(Req(due, sent, self.stream.loop.time(), post, status, release))
        if close:
            self.close()
        else:
            self.stream.idle(self)

    def _fail(self, status):
        if self.req is not None:
            due, sent, post = self.req
            self.req = None
            self.stream.done(Req(due, sent, self.stream.loop.time(), post, status, None))
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.stream.gone(self)
            if self.transport:
                self.transport.close()

    def connection_lost(self, exc):
        self._fail(0)


class Stream:
    """An open-loop stream of requests to 127.0.0.1:port at a fixed rate.

    rate requests/s, a share post_share of them POSTs (by a seeded draw),
    paths under prefix.  Bounded: at most max_conns connections, each
    request timeout_s, the whole run max_s seconds."""

    def __init__(self, loop, port, rate, post_share, prefix, seed, max_conns=256, timeout_s=10.0):
        self.loop, self.port, self.rate, self.post_share = loop, port, rate, post_share
        self.max_conns, self.timeout_s = max_conns, timeout_s
        self.rng = random.Random(seed)
        host = "bench.canary"
        self.get_bytes = ("GET %sitems/42 HTTP/1.1\r\nHost: %s\r\nUser-Agent: cutover-bench-canary\r\n\r\n"
                          % (prefix, host)).encode()
        body = b'{"item": 42, "qty": 1}'
        self.post_bytes = ("POST %sorders HTTP/1.1\r\nHost: %s\r\nUser-Agent: cutover-bench-canary\r\n"
                           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                           % (prefix, host, len(body))).encode() + body
        self.idle_conns, self.conns, self.waiting = [], set(), collections.deque()
        self.connecting = 0
        self.records = []
        self.stopped = False
        self.t0 = None

    def done(self, rec):
        self.records.append(rec)

    def idle(self, conn):
        if self.waiting:
            due, post = self.waiting.popleft()
            conn.send(due, post)
        else:
            self.idle_conns.append(conn)

    def gone(self, conn):
        self.conns.discard(conn)
        if conn in self.idle_conns:
            self.idle_conns.remove(conn)

    async def _connect(self):
        self.connecting += 1
        try:
            _, conn = await self.loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
        except OSError:
            self.connecting -= 1
            if self.waiting:  # the request that asked for it fails
                due, post = self.waiting.popleft()
                now = self.loop.time()
                self.done(Req(due, now, now, post, -2, None))
            return
        self.connecting -= 1
        self.conns.add(conn)
        self.idle(conn)

    def _dispatch(self, due, post):
        if self.idle_conns:
            self.idle_conns.pop().send(due, post)
            return
        self.waiting.append((due, post))
        if len(self.conns) + self.connecting < self.max_conns and self.connecting < len(self.waiting):
            self.loop.create_task(self._connect())

    def _expire(self):
        """Requests in flight longer than timeout_s fail (their connection closes)."""
        now = self.loop.time()
        for c in list(self.conns):
            if c.req is not None and now - c.req[0] > self.timeout_s:
                c._fail(-1)

    async def run(self, stop, max_s):
        """Send until stop is set or max_s; then wait (at most timeout_s) for
        the requests in flight."""
        loop = self.loop
        self.t0 = t0 = loop.time()
        i, last_expire = 0, t0
        limit = int(self.rate * max_s)
        while not stop.is_set() and i < limit:
            now = loop.time()
            while i < limit and t0 + i / self.rate <= now:
                self._dispatch(t0 + i / self.rate, self.rng.random() < self.post_share)
                i += 1
            if now - last_expire > 0.5:
                self._expire()
                last_expire = now
            nxt = t0 + i / self.rate
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, nxt - loop.time()))
            except asyncio.TimeoutError:
                pass
        self.stopped = True
        self.sent_planned = i
        end = loop.time() + self.timeout_s + 1
        while (self.waiting or any(c.req is not None for c in self.conns)) and loop.time() < end:
            await asyncio.sleep(0.05)
            self._expire()
        for due, post in self.waiting:  # never sent: counted as failed
            self.done(Req(due, None, loop.time(), post, -1, None))
        self.waiting.clear()
        for c in list(self.conns):
            c.close()
        self.t_end = loop.time()

    def summary(self, wall_offset):
        """Counts and figures of the whole stream (wall_offset: wall - loop clock)."""
        recs = self.records
        late = [r.sent - r.due for r in recs if r.sent is not None]
        span = (max(r.due for r in recs) - min(r.due for r in recs)) if len(recs) > 1 else 0
        out = {"requests": len(recs), "planned": getattr(self, "sent_planned", len(recs)),
               "rate_set": self.rate, "rate_sent": round((len(recs) - 1) / span, 1) if span else None,
               "post": sum(r.post for r in recs),
               "late_p99_ms": round(quantile(late, 0.99) * 1000, 2) if late else None,
               "late_max_ms": round(max(late) * 1000, 2) if late else None,
               "late_over_10ms": sum(1 for x in late if x > 0.010)}
        fails = [r for r in recs if r.status >= 500 or r.status <= 0]
        out["failed_get"] = sum(1 for r in fails if not r.post)
        out["failed_post"] = sum(1 for r in fails if r.post)
        out["failed_by_release"] = dict(collections.Counter(r.release or "-" for r in fails))
        out["failed_by_status"] = {str(k): v for k, v in collections.Counter(r.status for r in fails).items()}
        out["failures"] = [{"at_wall_ms": round((r.done + wall_offset) * 1000, 1), "post": r.post,
                            "status": r.status, "release": r.release} for r in fails[:20]]
        by = collections.defaultdict(list)
        for r in recs:
            if r.release:
                by[r.release].append(r)
        out["by_release"] = {v: {"requests": len(rs), "errors": sum(1 for r in rs if r.status >= 500)}
                             for v, rs in by.items()}
        return out


def latency_figures(recs, since, until, releases):
    """Per release: responses between since and until (loop clock, by due
    time), p50 and p99 in ms measured from the due time."""
    out = {}
    for v in releases:
        lat = [(r.done - r.due) * 1000 for r in recs
               if r.release == v and r.status > 0 and since <= r.due <= until]
        out[v] = {"n": len(lat), "p50_ms": round(quantile(lat, 0.5), 2) if lat else None,
                  "p99_ms": round(quantile(lat, 0.99), 2) if lat else None}
    return out


# ---------------------------------------------------------------- the daemon

async def cli(argv, timeout_s):
    """Run a cutover CLI command.  Returns (rc, stdout, stderr)."""
    p = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(p.communicate(), timeout_s)
    except asyncio.TimeoutError:
        p.kill()
        out, err = await p.communicate()
        err = (err or b"") + b"\n(canary_load: killed after %d s)" % timeout_s
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def deploy(a, service, version, wait_s):
    """`cutover deploy SERVICE VERSION --json`, followed at most wait_s; if
    the deployment has not ended by then, `cutover abort` and follow it to
    its end.  Returns (deployment dict or None, aborted_by_bench, stderr)."""
    argv = [a.cutover, "deploy", service, version, "--json", "--socket", a.socket]
    task = asyncio.ensure_future(cli(argv + ["--timeout", "%ds" % (wait_s + 120)], wait_s + 130))
    done, _ = await asyncio.wait([task], timeout=wait_s)
    by_bench = False
    if not done:
        by_bench = True
        log("  %s %s: no end after %d s: cutover abort" % (service, version, wait_s))
        await cli([a.cutover, "abort", service, "--socket", a.socket], 30)
    rc, out, err = await task
    try:
        return json.loads(out), by_bench, err.strip()[-300:]
    except ValueError:
        return None, by_bench, (err or out).strip()[-300:]


async def retried_on_stable(sock_path, service):
    """cutover_requests_retried_on_stable_total of service, read from GET
    /metrics on the admin socket; None if it cannot be read."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_unix_connection(sock_path), 5)
        w.write(b"GET /metrics HTTP/1.1\r\nHost: cutover\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 10)
        w.close()
    except (OSError, asyncio.TimeoutError):
        return None
    key = 'cutover_requests_retried_on_stable_total{service="%s"}' % service
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(key):
            return int(float(line.split()[-1]))
    return None


def check_of(reason):
    """Which check ended a canary, from its reason: "error rate vs 1.0.0",
    "p99 vs 1.0.0", "p50 limit", ..."""
    if not reason:
        return None
    what = "error rate" if reason.startswith("error rate") else reason.split(" latency")[0]
    return what + (" vs stable" if " on " in reason.split(";")[0] or "'s " in reason else " limit")


def events_of(dep):
    ev = dep.get("events") or [] if dep else []
    first = {}
    for e in ev:
        first.setdefault(e.get("phase"), e)
    return ev, first


def release_files(out_dir, version, skip):
    """The JSON lines of the release files of version not in skip: a list of
    dicts per file (a pid's file), newest first."""
    res = []
    for name in os.listdir(out_dir):
        if name in skip or not name.startswith(version + "-") or not name.endswith(".jsonl"):
            continue
        evs = {}
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                evs.setdefault(e.get("event"), e)
        res.append(evs)
    res.sort(key=lambda e: -(e.get("start") or {}).get("wall_us", 0))
    return res


# ---------------------------------------------------------------- modes

async def run_one(a):
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - loop.time()
    stop = asyncio.Event()
    stream = Stream(loop, a.port, a.rate, a.post_share, "/", a.seed)
    load = loop.create_task(stream.run(stop, a.warm_s + a.abort_wait_s + a.tail_s + 200))
    await asyncio.sleep(a.warm_s)
    skip = set(os.listdir(a.out_dir))
    shielded0 = await retried_on_stable(a.socket, a.service)
    t_deploy = loop.time()
    dep, by_bench, err = await deploy(a, a.service, a.version, a.abort_wait_s)
    t_end = loop.time()
    await asyncio.sleep(a.tail_s)
    stop.set()
    await load
    shielded1 = await retried_on_stable(a.socket, a.service)
    # the canary's own records: its exit line comes once the daemon stopped it
    files = []
    for _ in range(100):
        files = release_files(a.out_dir, a.version, skip)
        if files and all("exit" in f for f in files):
            break
        await asyncio.sleep(0.1)

    rec = {"kind": "run", "scenario": a.scenario, "rate": a.rate, "post_share": a.post_share,
           "version": a.version, "stable": a.stable, "aborted_by_bench": by_bench}
    ev, first = events_of(dep)
    end = ev[-1] if ev else {}
    rec.update({"phase": dep.get("phase") if dep else None, "reason": dep.get("reason") if dep else err,
                "deploy_s": round(t_end - t_deploy, 3)})
    analysis = [e for e in ev if e.get("phase") == "analysis"]
    rec["analysis"] = analysis[-1].get("detail") if analysis else None
    rec["check"] = check_of(rec["analysis"] and rec["analysis"].partition(": ")[2])
    rec["retried_on_stable"] = shielded1 - shielded0 if shielded0 is not None and shielded1 is not None else None
    switched = first.get("switched")
    abort_ms = end.get("at_ms") if end.get("phase") == "rolled-back" else None
    fr = [f["first_request"]["wall_us"] / 1000 for f in files if "first_request" in f]
    fe = [f["first_error"]["wall_us"] / 1000 for f in files if "first_error" in f]
    ex = [f["exit"] for f in files if "exit" in f]
    rec["canary_instances"] = len(files)
    rec["canary_requests"] = sum(e["requests"] for e in ex) if ex else None
    rec["canary_errors"] = sum(e["errors"] for e in ex) if ex else None
    rec["canary_post_errors"] = sum(e["post_errors"] for e in ex) if ex else None
    if abort_ms and fe:
        rec["error_to_abort_ms"] = round(abort_ms - min(fe), 1)
    if abort_ms and fr:
        rec["traffic_to_abort_ms"] = round(abort_ms - min(fr), 1)
    if abort_ms and switched:
        rec["switched_to_abort_ms"] = abort_ms - switched["at_ms"]
        rec["switch_detail"] = switched.get("detail")
    summ = stream.summary(wall_offset)
    rec["load"] = summ
    canary_due = [r.due for r in stream.records if r.release == a.version]
    if canary_due and abort_ms:
        # a check that the abort is real: no request sent after it reached the canary
        rec["last_canary_request_after_abort_ms"] = round((max(canary_due) + wall_offset) * 1000 - abort_ms, 1)
    if fr:
        # while both versions took traffic: the canary's first request to the abort (or the deploy's end)
        since = min(fr) / 1000 - wall_offset
        until = abort_ms / 1000 - wall_offset if abort_ms else t_end
        rec["latency"] = latency_figures(stream.records, since, until, [a.stable, a.version])
        st99 = rec["latency"][a.stable]["p99_ms"]
        if a.stable_p99_ms and st99:
            # the condition a latency run measures (a canary 3x slower than the stable
            # version) holds only while the stable version keeps its own p99: on a
            # machine busy with other work both versions slow down alike
            rec["stable_p99_nominal_ms"] = a.stable_p99_ms
            rec["condition_held"] = st99 <= 1.5 * a.stable_p99_ms
    # shoppers' failures: from the canary's first request to the end of the run
    rec["failed_get"], rec["failed_post"] = summ["failed_get"], summ["failed_post"]
    if not abort_ms:
        rec["error"] = "not aborted: %s %s" % (rec["phase"], (rec["reason"] or "")[:200])
    log("  %-12s %5d/s post %3.0f%%: %s (%s)  error->abort %s ms  traffic->abort %s ms  canary %s req %s err"
        "  retried on stable %s  shoppers failed GET %d POST %d  (late max %s ms)"
        % (a.scenario, a.rate, a.post_share * 100, rec["phase"], rec["check"], rec.get("error_to_abort_ms"),
           rec.get("traffic_to_abort_ms"), rec["canary_requests"], rec["canary_errors"], rec["retried_on_stable"],
           summ["failed_get"], summ["failed_post"], summ["late_max_ms"]))
    print(json.dumps(rec), flush=True)


def cmd_run(a):
    asyncio.run(run_one(a))


async def falsealarm(a):
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - loop.time()
    services = a.services.split(",")
    versions = a.versions.split(",")
    stop = asyncio.Event()
    streams = [Stream(loop, a.port, a.rate, a.post_share, "/%s/" % s, a.seed + i, max_conns=64)
               for i, s in enumerate(services)]
    budget = a.warm_s + len(versions) * a.canary_wait_s + 60
    loads = [loop.create_task(st.run(stop, budget)) for st in streams]
    await asyncio.sleep(a.warm_s)

    async def series(idx, service):
        await asyncio.sleep(idx * a.stagger_s)
        for n, version in enumerate(versions):
            t0 = loop.time()
            dep, by_bench, err = await deploy(a, service, version, a.canary_wait_s)
            ev, first = events_of(dep)
            rec = {"kind": "canary", "service": service, "version": version, "round": n + 1,
                   "phase": dep.get("phase") if dep else None, "reason": dep.get("reason") if dep else err,
                   "aborted_by_bench": by_bench, "s": round(loop.time() - t0, 1),
                   "verdicts": [e.get("detail") for e in ev if e.get("phase") == "analysis"],
                   "paused": [e.get("detail") for e in ev if e.get("phase") == "paused"],
                   "extended": sum(1 for e in ev if e.get("phase") == "extended")}
            log("  %s %s (round %d): %s in %.0f s%s" % (service, version, n + 1, rec["phase"], rec["s"],
                                                       "" if rec["phase"] == "done" else ": %s" % rec["reason"]))
            print(json.dumps(rec), flush=True)
            await asyncio.sleep(a.gap_s)

    await asyncio.gather(*(series(i, s) for i, s in enumerate(services)))
    stop.set()
    await asyncio.gather(*loads)
    for s, st in zip(services, streams):
        summ = st.summary(wall_offset)
        summ.pop("failures", None)
        print(json.dumps({"kind": "falsealarm_load", "service": s, "load": summ}), flush=True)


def cmd_falsealarm(a):
    asyncio.run(falsealarm(a))


# ---------------------------------------------------------------- report

def fmt(x, nd=0):
    if x is None:
        return "-"
    return ("%%.%df" % nd) % x


def med_worst(xs, nd=0):
    """ "median/worst" of the numbers in xs (None left out), or "-"."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    return "%s/%s" % (fmt(median(xs), nd), fmt(max(xs), nd))


def groups(runs, scenario):
    """[((rate, post_share), [runs])] of a scenario, in the order run."""
    keys = []
    for r in runs:
        k = (r["rate"], r["post_share"])
        if r["scenario"] == scenario and k not in keys:
            keys.append(k)
    return [(k, [r for r in runs if r["scenario"] == scenario and (r["rate"], r["post_share"]) == k]) for k in keys]


def mix_name(post):
    return "GET" if not post else "%d%% POST" % round(post * 100)


def aborted(r):
    return r.get("phase") == "rolled-back" and not r.get("aborted_by_bench")


def report_errors(runs, a, lines):
    gs = groups(runs, "errors")
    if not gs:
        return gs
    lines.append("error-rate abort: a %s canary failing %s of its requests (stable: 0 %%), open-loop load;"
                 " median/worst over the runs" % (a.canary_weight, a.error_share))
    head = ("rate/s", "mix", "aborted", "1st error->abort", "traffic->abort", "canary req", "canary 500s",
            "retried on stable", "failed GET", "failed POST", "late max")
    lines.append("%-6s %-8s %-7s %-16s %-14s %-10s %-11s %-17s %-10s %-11s %s" % head)
    lines.append("%-6s %-8s %-7s %-16s %-14s %-10s %-11s %-17s %-10s %-11s %s"
                 % ("", "", "", "ms", "ms", "", "", "(shield)", "(shoppers)", "(shoppers)", "ms"))
    for (rate, post), rs in gs:
        lines.append("%-6d %-8s %-7s %-16s %-14s %-10s %-11s %-17s %-10s %-11s %s"
                     % (rate, mix_name(post), "%d/%d" % (sum(map(aborted, rs)), len(rs)),
                        med_worst(r.get("error_to_abort_ms") for r in rs if aborted(r)),
                        med_worst(r.get("traffic_to_abort_ms") for r in rs if aborted(r)),
                        med_worst(r.get("canary_requests") for r in rs),
                        med_worst(r.get("canary_errors") for r in rs),
                        med_worst(r.get("retried_on_stable") for r in rs),
                        med_worst(r["failed_get"] for r in rs), med_worst(r["failed_post"] for r in rs),
                        fmt(max(r["load"]["late_max_ms"] or 0 for r in rs), 1)))
    checks = collections.Counter(r.get("check") for r in runs if r["scenario"] == "errors")
    lines.append("aborted by: %s" % ", ".join("%s %d" % (k, v) for k, v in checks.most_common()))
    lines.append("")
    return gs


def held(r):
    """A latency run whose condition held (see run_one: condition_held)."""
    return r.get("condition_held") is not False


def report_latency(runs, lines):
    gs = [(scen, k, rs) for scen in ("latency-tail", "latency-slow") for k, rs in groups(runs, scen)]
    if not gs:
        return gs
    lines.append("latency abort: the canary's first request -> the abort; p50/p99 client-side (from the due time)"
                 " while both versions took traffic; median/worst over the runs whose condition held")
    head = ("scenario", "rate/s", "aborted", "traffic->abort ms", "p50 stable/canary", "p99 stable/canary",
            "canary req", "aborted by")
    lines.append("%-13s %-6s %-7s %-17s %-17s %-17s %-10s %s" % head)
    for scen, (rate, post), all_rs in gs:
        rs = [r for r in all_rs if held(r)]
        p = collections.defaultdict(list)
        for r in rs:
            lat = r.get("latency") or {}
            for who, v in (("s", r["stable"]), ("c", r["version"])):
                for q in ("p50_ms", "p99_ms"):
                    p[who + q].append((lat.get(v) or {}).get(q))

        def pair(q):
            return "%s/%s" % (fmt(median([x for x in p["s" + q] if x]), 1), fmt(median([x for x in p["c" + q] if x]), 1))
        checks = collections.Counter(r.get("check") or "-" for r in rs)
        lines.append("%-13s %-6d %-7s %-17s %-17s %-17s %-10s %s"
                     % (scen, rate, "%d/%d" % (sum(map(aborted, rs)), len(rs)),
                        med_worst(r.get("traffic_to_abort_ms") for r in rs if aborted(r)), pair("p50_ms"),
                        pair("p99_ms"),
                        med_worst(r.get("canary_requests") for r in rs),
                        ", ".join("%s %d" % (k, v) for k, v in checks.most_common())))
        for r in all_rs:
            if not held(r):
                lat = r["latency"]
                lines.append("  not counted: the stable version's p99 was %s ms (nominal %s ms), the canary's %s ms:"
                             " the machine slowed both (load generator late by up to %s ms); %s after %s ms: %s"
                             % (fmt(lat[r["stable"]]["p99_ms"], 1), fmt(r["stable_p99_nominal_ms"], 1),
                                fmt(lat[r["version"]]["p99_ms"], 1), fmt(r["load"]["late_max_ms"], 1),
                                r.get("phase"), fmt(r.get("traffic_to_abort_ms")), (r.get("reason") or "")[:120]))
    lines.append("")
    return gs


def report_falsealarm(canaries, fa_loads, a, lines):
    if not canaries:
        return
    done = [c for c in canaries if c["phase"] == "done"]
    by_analysis = [c for c in canaries if c["phase"] == "rolled-back" and not c["aborted_by_bench"]]
    paused = [c for c in canaries if c["paused"]]
    other = [c for c in canaries if c not in done and c not in by_analysis]
    verdicts = collections.Counter()
    for c in canaries:
        for v in c["verdicts"]:
            verdicts[v.split(":")[0]] += 1
    req = sum(ld["load"]["requests"] for ld in fa_loads)
    errs = sum(ld["load"]["failed_get"] + ld["load"]["failed_post"] for ld in fa_loads)
    rates = [ld["load"]["rate_sent"] for ld in fa_loads if ld["load"]["rate_sent"]]
    lines.append("false aborts: %d canaries of good versions (both versions %s errors), %d services at %s req/s each"
                 % (len(canaries), a.good_errors, len(fa_loads), fmt(median(rates), 1) if rates else "-"))
    lines.append("  promoted (done) %d, aborted by the analysis %d, paused %d, other %d;"
                 " decisions: %s" % (len(done), len(by_analysis), len(paused), len(other),
                                     ", ".join("%s %d" % kv for kv in sorted(verdicts.items()))))
    lines.append("  load: %d requests, %d failed as shoppers saw them (%.2f %%); canary duration median %s s"
                 % (req, errs, 100.0 * errs / req if req else 0, fmt(median([c["s"] for c in canaries]))))
    for c in by_analysis + other:
        lines.append("  %s %s: %s: %s" % (c["service"], c["version"], c["phase"], c["reason"]))
    lines.append("")


def cmd_report(a):
    recs = [json.loads(line) for line in open(a.raw) if line.strip()]
    runs = [r for r in recs if r.get("kind") == "run"]
    canaries = [r for r in recs if r.get("kind") == "canary"]
    fa_loads = [r for r in recs if r.get("kind") == "falsealarm_load"]
    lines = []
    err_groups = report_errors(runs, a, lines)
    lat_groups = report_latency(runs, lines)
    report_falsealarm(canaries, fa_loads, a, lines)

    # the verdicts, against the targets
    ok = True

    def verdict(good, text):
        nonlocal ok
        ok &= good
        lines.append("%s  %s" % ("PASS" if good else "FAIL", text))

    for (rate, post), rs in err_groups:
        e2a = [r.get("error_to_abort_ms") if aborted(r) else None for r in rs]
        done = [x for x in e2a if x is not None]
        if rate >= 1000:
            verdict(len(done) == len(rs) and max(done) <= 2000,
                    "error-rate abort @%d/s %s: first error -> abort worst %s ms (target <= 2000), %d/%d aborted"
                    % (rate, mix_name(post), fmt(max(done) if done else None), len(done), len(rs)))
        fg, fp = max(r["failed_get"] for r in rs), max(r["failed_post"] for r in rs)
        verdict(len(done) == len(rs) and fg == 0 and fp <= 5,
                "shoppers' failures @%d/s %s: worst GET %d (target 0), worst POST %d (target <= 5), %d/%d aborted"
                % (rate, mix_name(post), fg, fp, len(done), len(rs)))
    for scen, (rate, post), all_rs in lat_groups:
        rs = [r for r in all_rs if held(r)]
        t2a = [r.get("traffic_to_abort_ms") if aborted(r) else None for r in rs]
        done = [x for x in t2a if x is not None]
        verdict(bool(rs) and len(done) == len(rs) and max(done) <= 5000,
                "latency abort (%s) @%d/s: canary's first request -> abort worst %s ms (target <= 5000), %d/%d aborted%s"
                % (scen, rate, fmt(max(done) if done else None), len(done), len(rs),
                   "" if len(rs) == len(all_rs) else " (%d run(s) not counted: condition not held)"
                   % (len(all_rs) - len(rs))))
    if canaries:
        bad = [c for c in canaries if c["phase"] != "done"]
        verdict(not bad, "false aborts: %d of %d good canaries not promoted (target 0)" % (len(bad), len(canaries)))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p.set_defaults(fn=lambda a: print(" ".join(str(x) for x in free_ports(a.n))))

    def daemon_args(p):
        p.add_argument("--cutover", required=True)
        p.add_argument("--socket", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--post-share", type=float, default=0.0)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--warm-s", type=float, default=2.0)

    p = sub.add_parser("run")
    daemon_args(p)
    p.add_argument("--scenario", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--stable", required=True)
    p.add_argument("--rate", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--abort-wait-s", type=int, default=30)
    p.add_argument("--tail-s", type=float, default=1.0)
    p.add_argument("--stable-p99-ms", type=float, help="the stable release's nominal p99 (latency runs)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("falsealarm")
    daemon_args(p)
    p.add_argument("--services", required=True)
    p.add_argument("--versions", required=True, help="comma-separated: the canaries of each service, in order")
    p.add_argument("--rate", type=int, default=50)
    p.add_argument("--canary-wait-s", type=int, default=180)
    p.add_argument("--stagger-s", type=float, default=1.0)
    p.add_argument("--gap-s", type=float, default=1.0)
    p.set_defaults(fn=cmd_falsealarm)

    p = sub.add_parser("report")
    p.add_argument("--raw", required=True)
    p.add_argument("--canary-weight", default="10%")
    p.add_argument("--error-share", default="20%")
    p.add_argument("--good-errors", default="0.5%")
    p.set_defaults(fn=cmd_report)

    a = ap.parse_args()
    try:
        a.fn(a)
    except KeyboardInterrupt:  # Ctrl-C: bench/canary stops what is left
        sys.exit(130)


if __name__ == "__main__":
    main()
