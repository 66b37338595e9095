"""test_canary.py - canary deploys judged by the proxy's own analysis
(issue 10, point 7): the real daemon, real release processes, real load.

* A version failing one request in five is aborted during its first step
  for its error rate, the reason carries the figures, all traffic is back
  on the stable version at once, its instance stops; the shoppers' GETs
  never fail (retried on the stable version), and the POSTs that failed
  before the abort (the blast radius) are counted and bounded.
* A version whose p99 is three times the stable version's is aborted for
  its latency.
* A version that fails one checkout in four and nothing else (checkouts
  are 1 request in 16) is caught by the default checks, by a canary and by
  a blue-green watch, with and without a route class for the checkouts:
  the service's comparison with the stable version catches it without
  the class, the class's own verdict with it.
* The baseline of a blue-green watch is the old version's whole recent
  past, also when the switch comes just after one of the deployer's
  snapshots (fails today: the baseline is then only the window since
  that snapshot, and the checkout fault above passes its watch).
* At 2 requests/s a good canary is neither failed nor promoted: its step
  extends, then pauses as inconclusive, until a person resumes it.
* `cutover pause`, `resume`, `promote` and `abort` under load (the real
  shop, every response checked): each does what it says, is audited with
  the user, and not one request fails.
* kill -9 of the daemon in the middle of a canary: the next daemon puts all
  traffic back on the stable version and records the deploy as aborted.

The override header is tested by test_cohorts.py, the shield's details
(access log, retry_on_stable: off) by test_shield.py.  The faulty versions
are the small servers of faulty.py; the control and kill -9 tests run the
shop of examples/shop.
"""
import json
import os
import pwd
import re
import time

from harness import *
from shopenv import *
from faulty import *
import loadmix

ME = pwd.getpwuid(os.getuid()).pw_name

# Shoppers' requests: three GETs for each POST; a checkout in 16 for the
# checkout test (6.25 % of the traffic)
MIX = [("GET", "/api/catalog"), ("GET", "/api/catalog/3"), ("GET", "/"), ("POST", "/api/carts")]
CHECKOUT_MIX = MIX * 3 + [("GET", "/api/catalog"), ("GET", "/api/catalog/3"), ("GET", "/"), ("POST", "/api/checkout")]

# how an aborted share ends its reason: the switch back, timed
BACK = r"; traffic back on 1\.0\.0 in \d+\.\d+ ms"
COMPARED = r"error rate (\d+\.\d)% over ([\d,]+) requests against (\d+\.\d)% over ([\d,]+) on 1\.0\.0, p [<=] 0\.\d+"


def deployment(c, dep_id):
    st, body = unix_request(f"{c.dir}/state/admin.sock", "GET", f"/v1/deployments/{dep_id}")
    eq(st, 200, f"GET /v1/deployments/{dep_id}: {body}")
    return json.loads(body)


def phases(dep):
    return [e["phase"] for e in dep["events"]]


def event(dep, phase):
    found = [e for e in dep["events"] if e["phase"] == phase]
    check(found, f"no {phase} event in {phases(dep)}")
    return found[0]


def wait_step(c, step, timeout=20):
    """Wait until the deploy in flight holds step `step` (weights set);
    returns its `deploying` entry."""
    seen = []

    def at_step():
        d = managed(c)["deploying"]
        if d is None and seen:  # it ended: say how, not just that it never got there
            last = history(c)[0]
            raise TestFailure(f"the deploy ended before step {step}: {last['state']}: {last.get('reason')}")
        if d is None:  # not started yet
            return None
        seen.append(True)
        return d if d["phase"] == "switched" and d["progress"]["step"] == step else None
    return wait_until(at_step, timeout=timeout, interval=0.02, what=f"the deploy at step {step}")


def release_pids(c, version):
    """Pids of the running processes of release VERSION (the app-VERSION
    script run by its interpreter, or the shop-VERSION binary)."""
    mark = f"/releases/shop/{version}/".encode()
    pids = []
    for pid in processes_of(c.dir):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(mark in a for a in cmd[:2]):
            pids.append(pid)
    return pids


def wait_stopped(c, version, timeout=10):
    wait_until(lambda: not release_pids(c, version), timeout=timeout, interval=0.05,
               what=f"the instances of {version} stopped")


def all_on(c, version, n=40):
    """n requests from a fresh client: every one a 200 from `version`."""
    got = []
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    for _ in range(n):
        conn.request("GET", "/api/catalog", headers={"Host": "shop.test"})
        r = conn.getresponse()
        r.read()
        got.append((r.status, r.getheader("X-Version") or r.getheader("X-Shop-Version")))
    conn.close()
    eq(set(got), {(200, version)}, f"answers after the abort ({n} requests)")


# ---------------------------------------------------------------- error rate, shield, blast radius

def test_error_rate_abort_shields_gets_and_bounds_failed_posts():
    """2.0.0 fails one request in five (GETs and POSTs).  Its 20 % canary is
    aborted within its first step for its error rate, compared with 1.0.0,
    the reason giving both figures and the p-value; all traffic is back on
    1.0.0 and 2.0.0's instance stops.  Shoppers (300 requests/s, a POST in
    four) see no failed GET: each was retried on 1.0.0 (counted against the
    canary, in cutover_requests_retried_on_stable_total).  The POSTs that
    failed before the abort are the blast radius: counted, printed, and at
    most 12; none after the abort."""
    yaml = service_yaml("strategy: canary\nsteps: 20% 10s, 100%\nwatch: 0s\nmin_requests: 20")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        app_release(c, "2.0.0", fail_every=5)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        with Shoppers(c.port, MIX, rate=300, clients=6) as shoppers:
            time.sleep(0.5)
            rc, dep = deploy_result(deploy_in_background(c, "2.0.0"))
            time.sleep(0.5)  # and after the abort
        eq((rc, dep["phase"]), (1, "rolled-back"), f"the canary of 2.0.0: {dep.get('reason')}")
        m = re.fullmatch(COMPARED + BACK, dep["reason"])
        check(m, f"the reason gives both error rates and the p-value: {dep['reason']!r}")
        new_rate, stable_rate = float(m.group(1)), float(m.group(3))
        check(10 <= new_rate <= 35 and stable_rate == 0.0, f"the figures: {dep['reason']}")
        eq([p for p in phases(dep) if p == "switched"], ["switched"], "aborted at its first step")
        switched = event(dep, "switched")["at_ms"] / 1000
        aborted = event(dep, "rolled-back")["at_ms"] / 1000
        check("failed: " + dep["reason"].split(";")[0] == event(dep, "analysis")["detail"],
              f"the analysis event: {event(dep, 'analysis')}")

        # all traffic back on 1.0.0 at once; 2.0.0's instance stops
        eq(routed_weights(c), {"1.0.0": 1}, "the proxy's version groups after the abort")
        m_ = managed(c)
        eq((m_["live"]["version"], m_["green"], m_["deploying"]), ("1.0.0", None, None), "after the abort")
        wait_stopped(c, "2.0.0")
        all_on(c, "1.0.0")

        seen = shoppers.results()
        failed_gets, failed_posts = shoppers.failed("GET"), shoppers.failed("POST")
        on_canary = [s for s in seen if s[4] == "2.0.0"]
        late = [s for s in seen if s[0] >= aborted + 0.1 and (s[4] != "1.0.0" or s[3] not in (200, 201))]
        first_post_failure = min((s[0] for s in failed_posts), default=None)
        print(f"    {len(seen)} requests; 2.0.0 answered {len(on_canary)} in {aborted - switched:.2f} s from its "
              f"weight to the abort; reason: {dep['reason']}")
        print(f"    blast radius: {len(failed_posts)} failed POSTs of "
              f"{sum(1 for s in seen if s[1] == 'POST')}, 0 of {sum(1 for s in seen if s[1] == 'GET')} GETs "
              f"({c.metric('cutover_requests_retried_on_stable_total', service='shop'):.0f} retried on 1.0.0)"
              + (f"; first failure seen {aborted - first_post_failure:.2f} s before the abort"
                 if first_post_failure else ""))
        check(len(seen) > 500, f"too little load: {len(seen)} requests")
        check(on_canary, "2.0.0 never answered a shopper")
        eq(failed_gets[:5], [], f"failed GETs seen by shoppers ({len(failed_gets)})")
        check(c.metric("cutover_requests_retried_on_stable_total", service="shop") > 0,
              "no GET retried on the stable version: the test did not exercise the shield")
        check(all(s[3] == 500 and s[4] == "2.0.0" and s[0] < aborted for s in failed_posts),
              f"the failed POSTs are 2.0.0's 500s before the abort: {failed_posts[:5]}")
        check(len(failed_posts) <= 12, f"blast radius {len(failed_posts)} POSTs, more than 12")
        eq(late[:5], [], "requests after the abort not answered 2xx by 1.0.0")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- latency

def test_p99_three_times_the_stable_aborts_the_canary():
    """1.0.0 answers one request in 25 after 40 ms (its p99); 3.0.0 also one
    in 8 after 120 ms: its p99 is 3x, its p50 and error rate the same.  The
    canary is aborted for its p99 against 1.0.0's, with the figures."""
    yaml = service_yaml("strategy: canary\nsteps: 20% 15s, 100%\nwatch: 0s\nmin_requests: 20")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0", tail_every=25, tail_ms=40)
        app_release(c, "3.0.0", tail_every=25, tail_ms=40, slow_every=8, slow_ms=120)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        with Shoppers(c.port, MIX, rate=400, clients=12) as shoppers:
            time.sleep(0.3)
            rc, dep = deploy_result(deploy_in_background(c, "3.0.0"))
        eq((rc, dep["phase"]), (1, "rolled-back"), f"the canary of 3.0.0: {dep.get('reason')}")
        m = re.fullmatch(r"p99 latency (\d+) ms or more over ([\d,]+) responses, above 2x 1\.0\.0's (\d+) ms "
                         r"\(\+10 ms\), p [<=] 0\.\d+" + BACK, dep["reason"])
        check(m, f"the reason is the p99 comparison with its figures: {dep['reason']!r}")
        check(int(m.group(1)) >= 100 and 35 <= int(m.group(3)) <= 60, f"the figures: {dep['reason']}")
        took = (event(dep, "rolled-back")["at_ms"] - event(dep, "switched")["at_ms"]) / 1000
        print(f"    aborted {took:.2f} s after 3.0.0 got its 20 %: {dep['reason']}")
        eq(routed_weights(c), {"1.0.0": 1}, "the proxy's version groups after the abort")
        eq(shoppers.failed()[:5], [], "failed requests (3.0.0 is slow, not failing)")
        wait_stopped(c, "3.0.0")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- one checkout in four

def reload_config(c, old, new):
    """Replace `old` by `new` in the daemon's configuration file and reload
    it (SIGHUP); wait until the reload is taken."""
    before = c.metric("cutover_config_reloads_total", result="success")
    with open(c.cfg_path) as f:
        text = f.read()
    check(old in text, f"{old!r} not in the configuration")
    c.reload(text.replace(old, new))
    wait_until(lambda: c.metric("cutover_config_reloads_total", result="success") > before, timeout=5,
               what=f"the reload ({old} -> {new})")


def test_checkout_failing_one_in_four_caught_by_the_default_checks():
    """4.0.0 fails every 4th POST /api/checkout and nothing else; checkouts
    are 6.25 % of the shoppers' requests, so its service-wide error rate is
    about 1.6 %, under the default 5 % limit.  With the default checks
    (nothing set but the watch and the steps) it is rolled back by a
    blue-green watch and by a canary (50 % step): without route classes by
    the service's comparison with 1.0.0 (no error), with `route_classes:
    [POST /api/checkout]` by the class's own verdict (about 25 %)."""
    done = []
    # the ASan pass runs the class variant only: the service's comparison is
    # the error-rate test's path too
    for classes in ("route_classes: [POST /api/checkout]",) + (() if SANITIZED else ("",)):
        # no watch for the first deploy (the reload below sets it)
        yaml = service_yaml("strategy: blue-green\nsteps: 50% 20s, 100%\nwatch: 0s", classes)
        scope = "POST /api/checkout: " if classes else ""
        with cutover(yaml_text=yaml) as c:
            app_release(c, "1.0.0")
            app_release(c, "4.0.0", checkout_fail_every=4)
            eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
            reload_config(c, "watch: 0s", "watch: 10s")
            with Shoppers(c.port, CHECKOUT_MIX, rate=600, clients=8) as shoppers:
                time.sleep(1.5)  # 1.0.0's window before the switch (blue-green's baseline)
                for strategy in ("blue-green", "canary"):
                    if strategy == "canary":
                        reload_config(c, "strategy: blue-green", "strategy: canary")
                    what = f"{strategy}{' with the class' if classes else ''}"
                    rc, dep = deploy_result(deploy_in_background(c, "4.0.0"))
                    eq((rc, dep["phase"]), (1, "rolled-back"), f"{what}: {dep.get('reason')}")
                    reason = dep["reason"].split("; traffic back on 1.0.0")[0]
                    if scope:
                        m = re.fullmatch(r"POST /api/checkout: error rate (\d+\.\d)% over ([\d,]+) requests"
                                         r"(, above the 5\.0% limit| against 0\.0% over [\d,]+ on 1\.0\.0), "
                                         r"p [<=] 0\.\d+", reason)
                        check(m and 15 <= float(m.group(1)) <= 35, f"{what}: the class's verdict: {reason!r}")
                    else:
                        m = re.fullmatch(COMPARED, reason)
                        check(m and 0.5 <= float(m.group(1)) <= 4 and m.group(3) == "0.0",
                              f"{what}: the service's comparison with 1.0.0: {reason!r}")
                    eq([p for p in phases(dep) if p == "switched"], ["switched"], f"{what}: at its first step")
                    took = (event(dep, "rolled-back")["at_ms"] - event(dep, "switched")["at_ms"]) / 1000
                    done.append(f"{what}: {took:.2f} s, {reason}")
                    eq(routed_weights(c), {"1.0.0": 1}, f"{what}: the version groups after the rollback")
                    wait_stopped(c, "4.0.0")
            failed = shoppers.failed()
            check(failed and all(s[2] == "/api/checkout" and s[3] == 500 and s[4] == "4.0.0" for s in failed),
                  f"only 4.0.0's checkouts fail: {failed[:5]}")
            eq(c.shutdown_all(), 0, "daemon exit status")
    for line in done:
        print(f"    {line}")


def daemon_age(c):
    """Seconds since the daemon's process started (from /proc, 10 ms steps)."""
    with open(f"/proc/{c.pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) - start


def test_blue_green_baseline_is_not_cut_short_by_a_fresh_snapshot():
    """The baseline of a blue-green watch is the old version's last minute
    or so before the switch, from zero for a version younger than that
    (docs/internals/deploy.md, "The baseline of a switch"), also when the
    switch comes just after one of the deployer's snapshots (one every
    10 s from the daemon's start).  1.0.0 has served about 10 s at 300
    requests/s when 4.0.0, failing one checkout in four, switches 0.6 s or
    so after the first snapshot: the watch compares 4.0.0 with all of
    1.0.0's requests (not those since the snapshot) and rolls it back."""
    if SANITIZED:
        print("    SKIPPED in the ASan pass: 10 s waiting for a timer, on paths the other tests run")
        return
    yaml = service_yaml("strategy: blue-green\nwatch: 0s")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        app_release(c, "4.0.0", checkout_fail_every=4)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        reload_config(c, "watch: 0s", "watch: 8s")
        with Shoppers(c.port, CHECKOUT_MIX, rate=300, clients=6) as shoppers:
            wait_until(lambda: daemon_age(c) >= 10.6, timeout=15, interval=0.01, what="the daemon 10.6 s old")
            p = deploy_in_background(c, "4.0.0")
            try:
                d = wait_until(lambda: (lambda d: d if d and d["progress"].get("versions") else None)(
                    managed(c)["deploying"]), timeout=10, interval=0.02, what="the watch's first figures")
                switched = event(deployment(c, d["id"]), "switched")["at_ms"] / 1000
                before = [v for v in d["progress"]["versions"] if v["role"] == "before the switch"]
                on_stable = sum(1 for s in shoppers.results(until=switched) if s[4] == "1.0.0")
                check(before, f"no baseline in the watch: {d['progress']}")
                print(f"    switched {daemon_age(c) - time.time() + switched:.2f} s after the daemon started: "
                      f"baseline {before[0]['requests']} requests of 1.0.0, which had answered {on_stable}")
                check(before[0]["requests"] >= 0.8 * on_stable,
                      f"the baseline is {before[0]['requests']} requests of 1.0.0, which had answered {on_stable} "
                      f"shoppers' requests before the switch: only its window since the last snapshot")
                rc, dep = deploy_result(p)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        eq((rc, dep["phase"]), (1, "rolled-back"), f"4.0.0 in its watch: {dep.get('reason')}")
        print(f"    {dep['reason']}")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- low traffic

def test_two_requests_a_second_pause_the_canary_as_inconclusive():
    """At 2 requests/s a good 1.1.0 at 20 % gets far fewer than the 20
    requests a verdict needs: its step (1 s) extends (max_extension 1s),
    then pauses as inconclusive; it is neither failed nor promoted, the
    weights stay.  `cutover resume` accepts the step; the final watch, as
    short of requests, ends the deploy done (watch over, inconclusive)."""
    yaml = service_yaml("strategy: canary\nsteps: 20% 1s, 100%\nwatch: 1s\nmax_extension: 1s")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        app_release(c, "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        with Shoppers(c.port, [("GET", "/api/catalog")], rate=2, clients=1) as shoppers:
            p = deploy_in_background(c, "1.1.0")
            try:
                wait_step(c, 1)
                t0 = time.monotonic()
                d = wait_until(lambda: (lambda d: d if d and d["progress"]["paused"] else None)(
                    managed(c)["deploying"]), timeout=10, interval=0.05, what="the step paused")
                paused_after = time.monotonic() - t0
                prog = d["progress"]
                m = re.fullmatch(r"step 1 of 2 \(20 %\) inconclusive after its extension: too few requests to "
                                 r"judge: (\d+) of the 20 needed", prog["pause_reason"] or "")
                check(m, f"pause_reason: {prog['pause_reason']!r}")
                eq((d["phase"], prog["step"], prog["promoted"], prog["next_decision_ms"], prog["verdict"]),
                   ("switched", 1, False, None, "inconclusive"), "the paused step")
                time.sleep(0.5)  # it stays paused: no verdict comes from low traffic
                eq((managed(c)["deploying"]["progress"]["paused"], routed_weights(c)), (True, {"1.0.0": 4, "1.1.0": 1}),
                   "still paused at 20 % half a second later")
                events = phases(deployment(c, d["id"]))
                eq(events[-3:], ["extended", "analysis", "paused"], "the step's events")
                check("failed" not in events and "rolled-back" not in events, f"events: {events}")
                eq(c.metric("cutover_analysis_verdicts_total", service="shop", result="fail"), 0.0, "fail verdicts")
                eq(c.metric("cutover_deploy_paused", service="shop"), 1.0, "cutover_deploy_paused")
                r = cli(c, "status", "--json")
                eq(json.loads(r.stdout)["managed"][0]["deploying"]["progress"]["paused"], True,
                   "cutover status --json: progress.paused")
                r = cli(c, "resume", "shop")
                eq(r.returncode, 0, f"cutover resume: {r.stdout}{r.stderr}")
                rc, dep = deploy_result(p)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        eq((rc, dep["phase"]), (0, "done"), f"the deploy after the resume: {dep.get('reason')}")
        eq(event(dep, "resumed")["detail"], f"resumed by {ME}: the inconclusive step is accepted, on to the next",
           "the resume")
        last = [e for e in dep["events"] if e["phase"] == "analysis"][-1]["detail"]
        check(last.startswith("watch over, inconclusive: too few requests"), f"the final watch: {last}")
        eq(routed_weights(c), {"1.1.0": 1, "1.0.0": 0}, "the version groups at the end (1.0.0 warm)")
        eq(shoppers.failed(), [], "failed requests")
        print(f"    paused {paused_after:.2f} s after the weights were set, with "
              f"{m.group(1)} of 20 requests on 1.1.0; {len(shoppers.results())} requests in all")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- a person's hand

# The shop's configuration (shopenv.YAML) as a canary, without its absolute
# p99 limit: what is judged here is the controls, and a good canary is held
# to 1.0.0's figures by the default comparisons.
# The controls are tested here, not the analysis: the latency comparisons
# are off (two identical versions on a loaded machine, under ASan and beside
# another test file, once looked different enough to abort step 1).
SHOP_CANARY = re.sub(r"      max_p99: .*\n", "", YAML).replace(
    "      watch: 3s\n", "      watch: 1s\n      strategy: canary\n      steps: 10% 2s, 50% 2s, 100%\n"
    "      max_p50_ratio: off\n      max_p99_ratio: off\n")


def control(c, verb, want_rc=0):
    r = cli(c, verb, "shop")
    eq(r.returncode, want_rc, f"cutover {verb} shop: {r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def test_pause_resume_promote_abort_under_load():
    """The shop under the load mix of test_restart (keep-alive, new
    connections, slow requests, 1 MiB downloads, carts), every response
    checked: a canary of 1.1.0 paused at step 1 stays there past its hold
    (a second pause is refused), resumed goes on to step 2, aborted goes
    back to 1.0.0 at once; a second canary promoted at step 1 gets all the
    traffic and ends done.  Each is audited with the user; not one
    request fails."""
    with cutover(yaml_text=SHOP_CANARY) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        with loadmix.LoadMix(c.port, keepalive=2, fresh=1, slow=1, download=1, post=1, max_s=60) as load:
            p = deploy_in_background(c, "1.1.0")
            try:
                wait_step(c, 1)
                out = control(c, "pause")
                check(f"paused by {ME} at step 1 of 3" in out, f"cutover pause said: {out}")
                prog = managed(c)["deploying"]["progress"]
                eq((prog["paused"], prog["pause_reason"], prog["next_decision_ms"]),
                   (True, f"paused by {ME} at step 1 of 3", None), "progress while paused")
                out = control(c, "pause", want_rc=1)
                check("already paused" in out, f"a second pause: {out}")
                time.sleep(2.5)  # longer than the step's hold
                d = managed(c)["deploying"]
                eq((d["phase"], d["progress"]["step"], d["progress"]["paused"], routed_weights(c)),
                   ("switched", 1, True, {"1.0.0": 9, "1.1.0": 1}), "paused past its hold")
                out = control(c, "resume")
                check(f"resumed by {ME}" in out, f"cutover resume said: {out}")
                eq(managed(c)["deploying"]["progress"]["paused"], False, "progress.paused after resume")
                wait_step(c, 2, timeout=10)
                eq(routed_weights(c), {"1.0.0": 1, "1.1.0": 1}, "the weights at step 2")
                out = control(c, "abort")
                check(f"aborted by {ME}" in out, f"cutover abort said: {out}")
                rc, dep = deploy_result(p)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            eq((rc, dep["phase"]), (1, "rolled-back"), f"the aborted canary: {dep.get('reason')}")
            check(re.fullmatch(f"aborted by {re.escape(ME)}" + BACK, dep["reason"]), f"the abort's reason: {dep['reason']!r}")
            eq(routed_weights(c), {"1.0.0": 1}, "the version groups after the abort")
            wait_stopped(c, "1.1.0")
            out = control(c, "abort", want_rc=1)
            check("no deploy of shop is in progress" in out, f"abort with nothing in flight: {out}")

            p = deploy_in_background(c, "1.1.0")
            try:
                wait_step(c, 1)
                control(c, "promote")
                rc, dep = deploy_result(p)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            eq((rc, dep["phase"]), (0, "done"), f"the promoted canary: {dep.get('reason')}")
            check(event(dep, "promoted")["detail"].startswith(f"promoted by {ME}: the remaining steps are skipped"),
                  f"the promotion: {event(dep, 'promoted')}")
            eq([e["detail"].split(":")[0] for e in dep["events"] if e["phase"] == "switched"],
               ["step 1 of 3", "traffic on 1.1.0 (127.0.0.1"], "promoted at step 1, then straight to 100 %")
            eq(routed_weights(c), {"1.1.0": 1, "1.0.0": 0}, "the version groups after the promotion")
            time.sleep(0.3)
        check(load.ok > 300, f"too little load: {load.describe()}")
        eq(load.failed(), 0, f"failed requests: {load.describe()}")
        rows = [(a["actor"], a["action"], a["result"]) for a in audit(c)
                if a["action"] in ("pause", "resume", "promote", "abort")]
        for want in ((ME, "pause", "done"), (ME, "pause", "refused"), (ME, "resume", "done"),
                     (ME, "abort", "done"), (ME, "abort", "refused"), (ME, "promote", "done")):
            check(want in rows, f"audit row {want} missing: {rows}")
        print(f"    {load.ok} requests, 0 failed ({load.versions}); audit: {sorted(set(rows))}")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- kill -9

def test_kill9_mid_canary_puts_traffic_back_on_stable():
    """kill -9 of the daemon while 1.1.0 holds 50 % of the traffic: the next
    daemon re-adopts 1.0.0 (same process), routes everything to it, stops
    1.1.0 and records the canary's deploy as aborted with the reason."""
    yaml = YAML.replace("      watch: 3s\n", "      watch: 1s\n      strategy: canary\n      steps: 50% 60s, 100%\n")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        stable_pid = managed(c)["live"]["pid"]
        p = deploy_in_background(c, "1.1.0")
        try:
            d = wait_step(c, 1)
            eq(routed_weights(c), {"1.0.0": 1, "1.1.0": 1}, "the weights at 50 %")
            served = {version_served(c.port) for _ in range(40)}
            eq(served, {"1.0.0", "1.1.0"}, "both versions answer at 50 %")
            wait_until(lambda: history(c)[0]["state"] == "switching", timeout=5, what="the step recorded")
            os.kill(c.pid, 9)
            c.proc.wait(10)
            p.wait(10)  # the CLI loses its event stream
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        restart_daemon(c)
        eq(routed_weights(c), {"1.0.0": 1}, "the version groups after the restart")
        m = managed(c)
        eq((m["live"]["version"], m["live"]["pid"], m["green"], m["deploying"]), ("1.0.0", stable_pid, None, None),
           "1.0.0 re-adopted and alone")
        eq({version_served(c.port) for _ in range(40)}, {"1.0.0"}, "versions answering after the restart")
        wait_stopped(c, "1.1.0")
        row = history(c)[0]
        eq((row["id"], row["to_version"], row["state"]), (d["id"], "1.1.0", "aborted"), "the canary's deploy")
        check("restarted" in row["reason"] and "traffic back on 1.0.0" in row["reason"],
              f"the reason: {row['reason']!r}")
        check(any(a["actor"] == "cutover (recovery)" for a in audit(c)), f"audit: {audit(c)[:3]}")
        print(f"    recorded: {row['state']}: {row['reason']}")
        eq(c.shutdown_all(), 0, "daemon exit status")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
