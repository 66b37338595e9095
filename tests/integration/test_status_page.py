"""test_status_page.py - the status page in a real browser (issue 13,
point 1): Debian's headless Chromium (browser.py, WebDriver over plain
HTTP) against the real daemon serving the shop under load.

* The daemon serves the page and its files on its admin address; they load
  nothing from anywhere else.
* During a canary of 1.1.0 at 20 %, the page shows both versions with the
  weights set (80 / 20) and measured, charts with data points for each
  version, the deploy in progress with its two steps (the first current)
  and the analysis' checks with their verdicts.  A screenshot is saved as
  the test's artifact (its path is printed).
* After the canary is promoted and a second deploy (1.2.0, which cutover
  rolls back for its latency, or which ends otherwise) starts, the page
  shows that deploy and then its end, with the same result and reason as
  `cutover history`, without reloading: a marker set in the window before
  is still there, and the browser made one navigation.
* No environment variable's value reaches the page, and the browser's
  console has no error.
* When the daemon stops, the page says so (the banner, the connection
  line); when a new one starts, the page is live again by itself.

And, each with a daemon of its own: maintenance on and off shows at once;
the page behind the admin token (the cookie carries fetches and the event
stream); its formats, axis ticks and state badges as tables of cases.

A missing chromium or chromedriver fails the test (CI installs them).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import *
from shopenv import *
from faulty import Shoppers, deploy_in_background, deploy_result
from browser import Browser

ENV_VALUE = "env-value-3f9c1d-must-not-show"

# the shop of examples/shop, a canary of two steps; the first holds long
# enough for the browser to look at it (the test promotes it)
CANARY_YAML = YAML \
    .replace("      watch: 3s\n", "      watch: 1s\n      strategy: canary\n      steps: 20% 90s, 100%\n") \
    .replace("      SHOP_DB: {DIR}/shop.db\n", f"      SHOP_DB: {{DIR}}/shop.db\n      SHOP_NOTE: {ENV_VALUE}\n")

MIX = [("GET", "/api/catalog"), ("GET", "/api/catalog/3"), ("GET", "/"), ("GET", "/api/slow?ms=20")]

# What the page shows, read from its DOM through its data-* hooks.
SNAPSHOT = r"""
const q = (s, root) => Array.from((root || document).querySelectorAll(s));
const num = (v) => (v === undefined ? null : Number(v));
const svc = document.querySelector('[data-service="shop"].service');
const deploy = svc && svc.querySelector('.deploy[data-deploy-id]');
const conn = document.getElementById('conn'), banner = document.getElementById('banner');
const chart = (f) => {
  const g = f.querySelector('svg[data-points]');
  const series = q('g.series[data-version]', f).map(s => [s.dataset.version, num(s.dataset.points)]);
  return {chart: f.dataset.chart, points: g ? num(g.dataset.points) : 0, series: Object.fromEntries(series)};
};
const step = (li) => ({step: num(li.dataset.step), state: li.dataset.state, weight: num(li.dataset.newWeight),
                       text: li.innerText});
const row = (r) => {
  const more = document.querySelector(`#history tr[data-phases-of="${r.dataset.deployId}"]`);
  const reason = more && more.querySelector('[data-reason]');
  return {id: num(r.dataset.deployId), state: r.dataset.state, text: r.innerText,
          reason: reason ? reason.innerText.replace(/^Reason:\s*/, '') : null,
          phases: more ? q('li[data-phase]', more).map(li => li.dataset.phase) : []};
};
return {
  marker: window.__statusPageMarker || null,
  navigations: performance.getEntriesByType('navigation').length,
  conn: conn.dataset.state,
  banner: banner.hidden ? null : banner.innerText,
  header: document.getElementById('daemon').innerText,
  versions: svc ? q('table.versions tr[data-version]', svc).map(r => ({version: r.dataset.version,
      weight: num(r.dataset.weight), measured: num(r.dataset.measured), role: r.dataset.role || null,
      text: r.innerText})) : [],
  charts: svc ? q('figure[data-chart]', svc).map(chart) : [],
  deploy: deploy ? {id: num(deploy.dataset.deployId), phase: deploy.dataset.phase, text: deploy.innerText,
      steps: q('ol.steps li[data-step]', deploy).map(step),
      checks: q('table.checks tr[data-check]', deploy).map(r => ({name: r.dataset.check, verdict: r.dataset.state}))}
      : null,
  history: q('#history tr.dep[data-deploy-id]').map(row),
  feed: q('#events li[data-kind]').map(li => li.innerText),
  html: document.documentElement.outerHTML,
};
"""


def artifact_dir():
    """Where this test leaves its screenshots: $CUTOVER_ARTIFACTS (CI keeps
    it) or a directory under the system's temporary one; never removed."""
    d = os.path.join(os.environ.get("CUTOVER_ARTIFACTS") or os.path.join(tempfile.gettempdir(), "cutover-artifacts"),
                     "test_status_page")
    os.makedirs(d, exist_ok=True)
    return d


def page_url(c):
    return f"http://127.0.0.1:{c.admin}/"


def check_served(c):
    """GET / and every /static/ file it names, as a browser would: 200,
    the right types, no-cache; nothing in them names another origin."""
    st, h, body = http_get(c.admin, "/", host=f"127.0.0.1:{c.admin}")
    eq(st, 200, "GET / on the admin address")
    check(h.get("content-type", "").startswith("text/html"), f"GET / content type: {h.get('content-type')}")
    html = body.decode()
    names = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    check(any(n.endswith(".js") for n in names) and any(n.endswith(".css") for n in names),
          f"the page names its scripts and stylesheet under /static/: {names}")
    files = {"/": html}
    for n in names:
        st, h, body = http_get(c.admin, n, host=f"127.0.0.1:{c.admin}")
        eq(st, 200, f"GET {n}")
        want = "text/css" if n.endswith(".css") else "javascript"
        check(want in h.get("content-type", ""), f"{n}: content type {h.get('content-type')}")
        check("no-cache" in h.get("cache-control", ""), f"{n}: Cache-Control {h.get('cache-control')}")
        files[n] = body.decode()
    for n, text in files.items():
        # the only absolute URL allowed: the SVG namespace, which is a name, not a fetch
        urls = [u for u in re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", text, re.I)
                if not u.startswith("http://www.w3.org/2000/svg")]
        eq(urls, [], f"{n} names another origin")
    st, _, _ = http_get(c.admin, "/static/nothing-here.js", host=f"127.0.0.1:{c.admin}")
    eq(st, 404, "an unknown static file")


def snapshot(b):
    return b.run(SNAPSHOT)


def until(b, pred, what, timeout=30):
    """Poll the page's snapshot until pred(snapshot) is truthy; return the
    snapshot.  The failure names the last one (without its HTML)."""
    end, snap = time.time() + timeout, None
    while True:
        snap = snapshot(b)
        try:
            ok = pred(snap)
        except (KeyError, IndexError, TypeError):
            ok = False
        if ok:
            return snap
        if time.time() > end:
            snap.pop("html", None)
            raise TestFailure(f"the page never showed {what} in {timeout}s; it shows: {json.dumps(snap)[:3000]}")
        time.sleep(0.25)


def weights(snap):
    return {v["version"]: v["weight"] for v in snap["versions"]}


def chart(snap, key):
    return [c for c in snap["charts"] if c["chart"] == key][0]


def test_status_page_during_a_canary_and_a_second_deploy():
    with cutover(yaml_text=CANARY_YAML) as c:
        add_releases(c, "1.0.0", "1.1.0", "1.2.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        check_served(c)
        shots = artifact_dir()
        with Shoppers(c.port, MIX, rate=40, clients=4, max_s=240) as load, Browser(c.dir) as b:
            b.open(page_url(c))
            snap = until(b, lambda s: weights(s) == {"1.0.0": 100} and s["conn"] == "ok",
                         "1.0.0 alone at 100 %, connected")
            # the history fills every 5 s: some points before the canary
            until(b, lambda s: chart(s, "rps")["series"].get("1.0.0", 0) >= 3, "3 points of 1.0.0's request rate",
                  timeout=40)

            p = deploy_in_background(c, "1.1.0")
            try:
                dep = wait_deploying(c, "switched", timeout=20)
                snap = until(b, lambda s: weights(s) == {"1.0.0": 80, "1.1.0": 20}, "the weights set at 80 / 20")
                snap = until(b, lambda s: s["deploy"] and s["deploy"]["id"] == dep["id"]
                             and len(s["deploy"]["steps"]) == 2 and s["deploy"]["steps"][0]["state"] == "current",
                             f"deploy {dep['id']} at its first step")
                steps = snap["deploy"]["steps"]
                eq([(x["step"], x["weight"]) for x in steps], [(1, 20), (2, 100)], "the deploy's steps and weights")
                check("20 % on 1.1.0" in steps[0]["text"] and "Step 1 of 2" in steps[0]["text"],
                      f"the first step's text: {steps[0]['text']!r}")
                check("1.0.0 → 1.1.0" in snap["deploy"]["text"],
                      f"the deploy's versions: {snap['deploy']['text'][:200]!r}")
                snap = until(b, lambda s: s["deploy"]["checks"] and all(x["verdict"] for x in s["deploy"]["checks"]),
                             "the analysis' checks with their verdicts", timeout=30)
                # both versions in the charts, with points; the split measured
                snap = until(b, lambda s: all(chart(s, k)["series"].get("1.1.0", 0) >= 2
                                              and chart(s, k)["series"].get("1.0.0", 0) >= 3 for k in ("rps", "p99_ms"))
                             and all(v["measured"] is not None for v in s["versions"]),
                             "charts with points of both versions and the measured split", timeout=40)
                for k in ("rps", "error_rate", "p50_ms", "p99_ms"):
                    check(chart(snap, k)["points"] >= 5, f"chart {k}: {chart(snap, k)}")
                time.sleep(1)  # the bars and countdown settle
                shot = b.screenshot(os.path.join(shots, "status-page-canary.png"))
                print(f"    screenshot: {shot}")
                verdicts = [(x["name"], x["verdict"]) for x in snap["deploy"]["checks"]]
                print(f"    weights {weights(snap)}, checks {verdicts}")

                # the same page from here on: a marker it must keep
                eq(b.run("window.__statusPageMarker = 'first load'; return window.__statusPageMarker"), "first load",
                   "the window marker")
                eq(cli(c, "promote", "shop").returncode, 0, "cutover promote shop")
                rc, done = deploy_result(p, timeout=60)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            eq((rc, done["phase"]), (0, "done"), f"the promoted canary: {done.get('reason')}")
            snap = until(b, lambda s: s["deploy"] is None and weights(s).get("1.1.0") == 100
                         and any(h["id"] == dep["id"] and h["state"] == "done" for h in s["history"]),
                         f"deploy {dep['id']} done, 1.1.0 at 100 %")

            # a second deploy, seen live
            p2 = deploy_in_background(c, "1.2.0")
            try:
                second = wait_until(lambda: (managed(c)["deploying"] or {}).get("id") or
                                    [h["id"] for h in history(c) if h["to_version"] == "1.2.0"],
                                    timeout=20, what="the second deploy started")
                second = second if isinstance(second, int) else second[0]
                until(b, lambda s: any(h["id"] == second for h in s["history"])
                      or (s["deploy"] and s["deploy"]["id"] == second), f"deploy {second} on the page")
                rc2, end2 = deploy_result(p2, timeout=90)
            finally:
                if p2.poll() is None:
                    p2.kill()
                    p2.wait()
            row = [h for h in history(c) if h["id"] == second][0]
            snap = until(b, lambda s: any(h["id"] == second and h["state"] == row["state"] for h in s["history"]),
                         f"deploy {second} ended {row['state']}")
            shown = [h for h in snap["history"] if h["id"] == second][0]
            if row["reason"]:
                eq(shown["reason"], row["reason"], f"the reason of deploy {second} as cutover history gives it")
            check(shown["phases"] and shown["phases"][0] == "starting", f"its phases: {shown['phases']}")
            check(any(f"#{second} shop 1.2.0" in t for t in snap["feed"]),
                  f"its events in the feed: {snap['feed'][:5]}")
            eq((snap["marker"], snap["navigations"]), ("first load", 1), "the page was not reloaded")
            check(ENV_VALUE not in snap["html"], "an environment variable's value is on the page")
            errors = [e for e in b.console() if e.get("level") == "SEVERE"]
            eq(errors, [], "errors in the browser's console")
            b.screenshot(os.path.join(shots, "status-page-after.png"))
            print(f"    deploy {second}: {row['state']} ({(row['reason'] or '')[:90]}); "
                  f"{len(load.seen)} requests under load")

            # the daemon goes away: the page says so
            eq(c.shutdown_all(), 0, "daemon exit status")
            snap = until(b, lambda s: s["banner"] and "does not answer" in s["banner"] and s["conn"] == "bad",
                         "that the daemon does not answer", timeout=20)
            b.screenshot(os.path.join(shots, "status-page-unreachable.png"))
            # and back: a new daemon on the same address, the same page carries on
            restart_daemon(c)
            snap = until(b, lambda s: s["banner"] is None and s["conn"] == "ok" and f"pid {c.pid}" in s["header"],
                         f"the new daemon (pid {c.pid}) live again", timeout=30)
            eq((snap["marker"], snap["navigations"]), ("first load", 1), "the page was not reloaded")
            eq(c.shutdown_all(), 0, "the second daemon's exit status")
        eq(b.left_behind(), [], "browser processes left after the test")


# ---------------------------------------------------------------- the page's formats, in the browser

# (function, arguments, expected text): what a reader sees for a figure
FORMATS = [
    ("duration", [850], "850 ms"), ("duration", [13300], "13.3 s"), ("duration", [12000], "12 s"),
    ("duration", [125000], "2 min 05 s"),
    ("duration", [300000], "5 min"), ("duration", [3840000], "1 h 04 min"), ("duration", [183600000], "2 d 3 h"),
    ("duration", [None], "–"),
    ("ratio", [0], "0 %"), ("ratio", [0.0012], "0.12 %"), ("ratio", [0.053], "5.3 %"), ("ratio", [1], "100 %"),
    ("ratio", [None], "–"),
    ("rate", [0], "0 req/s"), ("rate", [0.2], "0.2 req/s"), ("rate", [12.44], "12.4 req/s"),
    ("rate", [1204.4], "1,204 req/s"), ("rate", [12.44, True], "12.4"),
    ("ms", [0.384], "0.38 ms"), ("ms", [0], "0 ms"), ("ms", [12.4], "12 ms"), ("ms", [1250], "1.25 s"),
    ("percent", [20], "20 %"), ("percent", [19.64], "19.6 %"), ("percent", [None], "–"),
    ("count", [1234567], "1,234,567"),
    ("age", [0, 1000], "just now"), ("age", [0, 12500], "12 s ago"), ("age", [0, 240000], "4 min ago"),
    ("age", [0, 7200000], "2 h ago"), ("age", [0, 259200000], "3 d ago"), ("age", [5000, 0], "in 5 s"),
]

# every state the daemon names (deployment phases and results, the history's
# states, instance events and states, health, verdicts, release states)
STATES = ["awaiting-approval", "starting", "stopping", "health-checking", "smoke-testing", "switched", "switching",
          "done", "rolled-back", "failed", "aborted", "rejected", "expired", "healthy", "unhealthy", "unknown",
          "analysis", "promoted", "paused", "resumed", "approved", "extended", "aborting", "warning", "draining",
          "started", "adopted", "crashed", "restarted", "stopped", "running", "restarting", "pass", "fail",
          "inconclusive", "not judged", "rolling-back", "succeeded", "degraded", "step", "maintenance", "live", "warm"]


def test_status_page_formats_and_states():
    """The page's figures as a reader sees them (units, ages), its value
    axis ticks, data shown as text never parsed as HTML, and a badge of its
    own (tone, symbol, words) for every state name the daemon uses."""
    services = {"api": {"targets": ["127.0.0.1:9"]}}
    with cutover(services) as c, Browser(c.dir) as b:
        b.open(page_url(c))
        b.wait("return !!(window.Cutover && window.Cutover.fmt && document.querySelector('[data-service=\"api\"]'))",
               what="the page with the service api")
        got = b.run("return arguments[0].map(([f, a]) => window.Cutover.fmt[f](...a))", [[f, a] for f, a, _ in FORMATS])
        eq([(f, a, want, g) for (f, a, want), g in zip(FORMATS, got) if g != want],
           [], "formats that differ (function, arguments, expected, got)")
        ticks = b.run("return [[0, 4], [37, 4], [0.0123, 4], [950, 4]]"
                      ".map(([m, n]) => window.CutoverChart.valueTicks(m, n))")
        eq(ticks, [[0, 0.25, 0.5, 0.75, 1], [0, 10, 20, 30, 40], [0, 0.005, 0.01, 0.015], [0, 250, 500, 750, 1000]],
           "value axis ticks")
        eq(b.run("const p = window.Cutover.fmt.h('p', {data: {x: '<i>'}}, '<b>x</b>', null, ['y', 1]);"
                 "return [p.children.length, p.childNodes.length, p.textContent, p.dataset.x]"),
           [0, 3, "<b>x</b>y1", "<i>"], "h() builds text nodes, never HTML (elements, nodes, text, data-x)")
        unknown = b.run("return arguments[0].filter(s => window.Cutover.fmt.stateOf(s)[1] === '•')", STATES)
        eq(unknown, [], "states without a badge of their own")
        text = b.run("return document.querySelector('[data-service=\"api\"]').innerText")
        check("1 static target, not supervised" in text, f"the unmanaged service says what it is: {text[:300]!r}")


# ---------------------------------------------------------------- maintenance

def test_status_page_shows_maintenance():
    """`cutover maintenance on` shows on the page at once (the stream's
    maintenance event): the card outlined, the badge, who and the
    Retry-After, the event in the feed; `off` takes it away."""
    with echo_backend() as backend, \
            cutover({"web": {"targets": [f"127.0.0.1:{backend.server_address[1]}"]}}) as c, Browser(c.dir) as b:
        b.open(page_url(c))
        until(b, lambda s: s["conn"] == "ok", "the page live")
        b.wait("return document.querySelector('[data-service=\"web\"] [data-maintenance=\"off\"]') !== null",
               what="the service web, not in maintenance")
        r = cli(c, "maintenance", "on", "web", "--retry-after", "120")
        eq(r.returncode, 0, f"cutover maintenance on web: {r.stderr}")
        text = b.wait("const card = document.querySelector('[data-service=\"web\"][data-maintenance=\"on\"]');"
                      "return card && card.querySelector('.maint').innerText", what="the service web in maintenance")
        check("MAINTENANCE: answering 503" in text and "Retry-After 120 s" in text, f"the maintenance line: {text!r}")
        until(b, lambda s: any("maintenance on" in t and "web: answering 503" in t for t in s["feed"]),
              "the maintenance event in the feed")
        r = cli(c, "maintenance", "off", "web")
        eq(r.returncode, 0, f"cutover maintenance off web: {r.stderr}")
        b.wait("return document.querySelector('[data-service=\"web\"]').dataset.maintenance === undefined"
               " && document.querySelector('[data-service=\"web\"] [data-maintenance=\"off\"]') !== null",
               what="the service web out of maintenance")
        snap = until(b, lambda s: any("maintenance off" in t for t in s["feed"]), "the end of maintenance in the feed")
        eq(snap["navigations"], 1, "navigations (the page was not reloaded)")


# ---------------------------------------------------------------- behind the admin token

def test_status_page_behind_the_admin_token():
    """With admin_token set (here on loopback, where it is then required):
    without it the browser gets no page; /?token=TOKEN lets it in once, the
    address bar keeps no token, the page's cookie is out of its scripts'
    reach (HttpOnly), and both its fetches and its event stream go through
    on that cookie."""
    d = tempfile.mkdtemp(prefix="cutover-page-token-")
    token = "page-" + os.urandom(16).hex()
    try:
        with echo_backend() as backend:
            y = (f"listen: 127.0.0.1:{{PORT}}\nadmin: 127.0.0.1:{{ADMIN}}\n"
                 f"secrets:\n  file: {d}/secrets.age\n  identity: {d}/identity.key\n"
                 f"services:\n  web:\n    targets: [127.0.0.1:{backend.server_address[1]}]\n"
                 f"    routes:\n      - path: /\n")
            secrets_with(d, y, {"admin_token": token})
            with cutover(yaml_text=y) as c, Browser(c.dir) as b:
                base = page_url(c).rstrip("/")
                b.open(base + "/")
                eq(b.run("return [!!window.Cutover, document.querySelector('[data-service]') !== null]"),
                   [False, False], "the page without the token (its script loaded, a service shown)")
                b.open(f"{base}/?token={token}")
                eq(b.url(), base + "/", "the address after the token (no token in it)")
                until(b, lambda s: s["conn"] == "ok" and any("connected to cutover" in t for t in s["feed"]),
                      "the page live on its cookie (status read, event stream open)")
                b.wait("return document.querySelector('[data-service=\"web\"]') !== null", what="the service web")
                eq(b.run("return document.cookie"), "", "the cookie as the page's scripts see it (HttpOnly)")
                check(token not in b.run("return document.documentElement.outerHTML"), "the token is on the page")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def secrets_with(d, yaml_text, values):
    """An identity and the secrets file that yaml_text's secrets: section
    names (both in d), holding values, made with cutover secrets."""
    path = os.path.join(d, "secrets-cli.yml")
    with open(path, "w") as f:
        f.write(yaml_text.replace("{PORT}", "1").replace("{ADMIN}", "2"))
    env = {**os.environ, "CUTOVER_IDENTITY": f"{d}/identity.key"}

    def run(*args, stdin=None):
        r = subprocess.run([BIN, *args, "--config", path], input=stdin, capture_output=True, text=True,
                           timeout=30, env=env, cwd=d)
        eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stderr}")
        return r.stdout
    run("secrets", "keygen")
    pub = subprocess.run(["age-keygen", "-y", f"{d}/identity.key"], capture_output=True, text=True, timeout=10)
    eq(pub.returncode, 0, f"age-keygen -y: {pub.stderr}")
    run("secrets", "recipients", "add", pub.stdout.strip())
    for k, v in values.items():
        run("secrets", "set", k, stdin=v + "\n")
