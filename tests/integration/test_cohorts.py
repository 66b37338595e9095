"""Sticky shopper cohorts during a canary deploy of the shop (issue 10,
point 2): the real daemon runs releases 1.0.0 and 1.1.0 of examples/shop
with `strategy: canary` through 5 -> 25 -> 50 -> 100 %.

1,000 simulated shoppers, each with its own cookie jar, visit once per
step: each gets a cohort cookie on the first visit, moves from 1.0.0 to
1.1.0 at most once and never back, and the share of shoppers on each
version stays within 2 points of the weight.  A client that sends no
cookies is spread by weight, the override header and cookie force a
version, and outside the deploy no cookie is set and none is read."""
import concurrent.futures
import http.client
import json
import re
import subprocess
import time

from harness import *
from shopenv import *

STEPS = (5, 25, 50)
SHOPPERS = 1000
COOKIE = "shop_cohort"  # the cohorts: section is read (the override names keep their defaults)

CANARY_YAML = YAML.replace("log:\n", "cohorts:\n  cookie: shop_cohort\n  max_age: 7d\nlog:\n").replace(
    "      watch: 3s\n", "      watch: 1s\n      strategy: canary\n      steps: 5% 6s, 25% 6s, 50% 6s, 100%\n")

SET_COOKIE = re.compile(r"^shop_cohort=(\d{1,2}); Path=/; Max-Age=604800; SameSite=Lax; HttpOnly$")


def visit(port, cookie=None, headers=None, conn=None):
    """GET /version as a shopper: (version served, Set-Cookie or None)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Host": "shop.test", **(headers or {})}
    if cookie:
        h["Cookie"] = cookie
    conn.request("GET", "/version", headers=h)
    r = conn.getresponse()
    body = r.read()
    if own:
        conn.close()
    eq(r.status, 200, f"GET /version with {h}")
    return json.loads(body)["version"], r.getheader("Set-Cookie")


class Shoppers:
    """SHOPPERS browsers, each with a cookie jar holding its cohort."""

    def __init__(self, port):
        self.port, self.jar, self.history = port, [None] * SHOPPERS, [[] for _ in range(SHOPPERS)]

    def visit_all(self):
        """Every shopper visits once (8 clients in parallel, keep-alive).
        Returns (shoppers on 1.1.0, cookies set)."""
        def client(k):
            conn, set_cookies = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10), 0
            for i in range(k, SHOPPERS, 8):
                cookie = f"session=s{i}; {COOKIE}={self.jar[i]}" if self.jar[i] is not None else f"session=s{i}"
                version, set_cookie = visit(self.port, cookie, conn=conn)
                if set_cookie:
                    m = SET_COOKIE.match(set_cookie)
                    check(m, f"Set-Cookie: {set_cookie!r}")
                    self.jar[i] = int(m.group(1))
                    set_cookies += 1
                self.history[i].append(version)
            conn.close()
            return set_cookies
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            cookies = sum(pool.map(client, range(8)))
        return sum(h[-1] == "1.1.0" for h in self.history), cookies


def canary_percent(c):
    green = managed(c)["green"]
    return green["traffic_percent"] if green else None


def wait_percent(c, percent, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if canary_percent(c) == percent:
            return
        time.sleep(0.02)
    raise TestFailure(f"the canary never got {percent} %: {managed(c)}")


def within(count, total, percent, what):
    share = 100.0 * count / total
    check(abs(share - percent) <= 2, f"{what}: {share:.1f} % against a weight of {percent} %")
    return share


def test_cohorts_through_a_canary():
    with cutover(yaml_text=CANARY_YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "first deploy")

        # outside a deploy: no cookie set, none read, overrides of versions not running ignored
        for cookie in (None, f"{COOKIE}=1", f"{COOKIE}=99"):
            eq(visit(c.port, cookie), ("1.0.0", None), f"before the deploy, cookie {cookie}")
        eq(visit(c.port, headers={"X-Cutover-Version": "1.1.0"}), ("1.0.0", None), "override of no running version")

        shoppers, measured = Shoppers(c.port), []
        env = {**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"}
        deploy = subprocess.Popen([BIN, "deploy", "shop", "1.1.0"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            for percent in STEPS:
                wait_percent(c, percent)
                on_canary, cookies = shoppers.visit_all()
                eq(canary_percent(c), percent, "the step did not change while the shoppers visited")
                share = within(on_canary, SHOPPERS, percent, f"shoppers on 1.1.0 at {percent} %")
                eq(cookies, SHOPPERS if percent == STEPS[0] else 0, f"cohort cookies set at {percent} %")
                measured.append(f"{percent} %: {share:.1f} %")

                if percent == STEPS[0]:
                    # QA overrides: the header, else the cookie; no cohort cookie for them
                    for headers, cookie, want in (({"X-Cutover-Version": "1.1.0"}, None, "1.1.0"),
                                                  ({"x-cutover-version": "1.0.0"}, f"{COOKIE}=0", "1.0.0"),
                                                  ({}, "cutover_version=1.1.0", "1.1.0"),
                                                  ({"X-Cutover-Version": "1.0.0"}, "cutover_version=1.1.0", "1.0.0")):
                        for _ in range(20):
                            eq(visit(c.port, cookie, headers), (want, None), f"override {headers} {cookie}")
                    # an unknown version is ignored: chosen as usual, a cohort given
                    version, set_cookie = visit(c.port, None, {"X-Cutover-Version": "9.9.9"})
                    check(set_cookie and SET_COOKIE.match(set_cookie), f"unknown override: Set-Cookie {set_cookie!r}")
                if percent == STEPS[1]:
                    # a client without cookies: a new cohort per request, so spread by weight
                    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
                    served = [visit(c.port, conn=conn) for _ in range(SHOPPERS)]
                    conn.close()
                    check(all(sc for _, sc in served), "a cookie-less request got no cohort cookie")
                    share = within(sum(v == "1.1.0" for v, _ in served), SHOPPERS, percent, "cookie-less requests")
                    measured.append(f"cookie-less at {percent} %: {share:.1f} %")
                    eq(canary_percent(c), percent, "the step did not change during the cookie-less requests")
            out, _ = deploy.communicate(timeout=60)
        finally:
            if deploy.poll() is None:
                deploy.kill()
                deploy.wait()
        eq(deploy.returncode, 0, f"the canary deploy:\n{out}")

        # done: everyone on 1.1.0, the cookie means nothing any more
        on_new, cookies = shoppers.visit_all()
        eq((on_new, cookies), (SHOPPERS, 0), "after the deploy: shoppers on 1.1.0, cookies set")
        for i, h in enumerate(shoppers.history):
            moved = [j for j in range(1, len(h)) if h[j] != h[j - 1]]
            check(len(moved) <= 1 and (not moved or h[moved[0]] == "1.1.0"),
                  f"shopper {i} (cohort {shoppers.jar[i]}) went {' -> '.join(h)}")
        print(f"    shares of 1,000 shoppers on the canary: {'; '.join(measured)}")
        # the previous version, warm for its rollback window, is still reachable for QA
        eq(visit(c.port, None, {"X-Cutover-Version": "1.0.0"}), ("1.0.0", None), "override to the warm version")
        eq(c.shutdown_all(), 0, "daemon exit status")
