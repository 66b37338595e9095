"""test_prometheus.py - Debian's real Prometheus (/usr/bin/prometheus)
scrapes a cutover daemon that runs the shop under load, with the shipped
rules (contrib/prometheus/cutover-rules.yml) loaded, and the shipped
dashboard's and rules' queries are asked of it through its HTTP API
(issue 13, point 2).

Prometheus runs on 127.0.0.1 (a free port), its storage in a temporary
directory, scraping and evaluating every second; its configuration is
contrib/prometheus/prometheus.yml with only the target, the intervals and
the rule file's path changed (the rules are the shipped file itself).

The story, about a minute and a half: the shop's 1.0.0 serves shoppers
(40 requests a second); 1.1.0 is deployed (blue-green, its smoke command
holding the deploy in one phase for 3 s: the moment T_mid); an instance is
killed and restarted by the supervisor; 2.0.0, which fails every second
request and answers one in five after 1.5 s, is deployed (no watch: it
stays live) until CutoverHighErrorRate and CutoverHighP99Latency are
pending or firing (T_fault); `cutover rollback shop` puts 1.1.0 back
(CutoverRollback); the secrets identity is made readable by others
(CutoverSecretsIdentityUnreadable); the webhook points at a closed port
(CutoverWebhooksFailing); at the end (T_end) the daemon is stopped
(CutoverDown).

Every query then has to return data (a non-empty result; an error fails
the test at once) at T_mid, T_fault or T_end:
* each target and annotation of the dashboard, with Grafana's variables
  replaced by what Grafana would send: $instance and $version by the
  regex of their values, $service by shop, $__rate_interval by 30s,
  $__range by 10m;
* each template variable query label_values(SELECTOR, LABEL), which is
  Grafana's and not PromQL, as /api/v1/label/LABEL/values?match[]=SELECTOR,
  which must hold the value the story makes (shop, 1.0.0, the daemon);
* each recording rule's expression as written;
* each alert's expression as written when the story makes it true, else
  (a healthy run has no instance down for 2 minutes, no crash loop, no
  deploy stuck for 30 minutes, no full disk) its expression with the
  threshold replaced as ALERT_CHECKS says, so that its selectors, label
  matching and arithmetic are still checked against real series.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from harness import *
from shopenv import cli, managed
from faulty import app_release, Shoppers

PROMETHEUS = "/usr/bin/prometheus"
CONTRIB = os.path.join(ROOT, "contrib")
RULES = os.path.join(CONTRIB, "prometheus", "cutover-rules.yml")
DASHBOARD = os.path.join(CONTRIB, "grafana", "cutover.json")

MIX = [("GET", "/api/catalog"), ("GET", "/api/catalog/3"), ("GET", "/"), ("POST", "/api/carts")]

# How each alert's expression is checked.  "as written": the story makes it
# true, at the time named.  A (threshold, replacement) pair: the story
# cannot make it true in bounded time, so the expression is asked with that
# text replaced (it must occur exactly once), at the time named.
ALERT_CHECKS = {
    "CutoverHighErrorRate": ("as written", "T_fault"),
    "CutoverHighP99Latency": ("as written", "T_fault"),
    # healthy instances all along: == 0 becomes >= 0 (every instance)
    "CutoverInstanceDown": (("== 0", ">= 0"), "T_end"),
    # one restart, not three in 15 minutes: > 2 becomes >= 0
    "CutoverInstanceCrashLooping": (("> 2", ">= 0"), "T_end"),
    # a deploy in flight for seconds, not 30 minutes: > 1800 becomes >= 0
    # (the unless on cutover_deploy_paused still applies)
    "CutoverDeployStuck": (("> 1800", ">= 0"), "T_mid"),
    "CutoverRollback": ("as written", "T_end"),
    "CutoverDown": ("as written", "T_down"),
    # the disks have room: < 0.10 becomes <= 1 (every disk)
    "CutoverDiskNearlyFull": (("< 0.10", "<= 1"), "T_end"),
    "CutoverSecretsIdentityUnreadable": ("as written", "T_end"),
    "CutoverWebhooksFailing": ("as written", "T_end"),
}

YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
notifications:
  webhooks:
    - url: http://127.0.0.1:DEAD/hook
      name: dead
      format: json
      retries: 0
      timeout: 300ms
services:
  shop:
    run: ${RELEASE_DIR}/app-${VERSION} ${PORT}
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
    stop_grace: 2s
    alerts:
      max_error_rate: 5%
      max_p99: 1s
    deploy:
      strategy: blue-green
      timeout: 20s
      watch: 0s
      rollback_window: 300s
      smoke: sleep 3
    routes:
      - path: /
"""


# ---------------------------------------------------------------- Prometheus

class Prometheus:
    """Debian's prometheus on 127.0.0.1:port scraping cutover at target,
    from the shipped configuration; stopped by PID, its directory removed."""

    def __init__(self, target):
        check(os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} is not installed (bash scripts/bootstrap)")
        self.dir = tempfile.mkdtemp(prefix="cutover-prometheus-")
        self.port = free_port()
        with open(os.path.join(CONTRIB, "prometheus", "prometheus.yml")) as f:
            cfg = yaml.safe_load(f)
        cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        eq(cfg["rule_files"], ["cutover-rules.yml"], "the shipped rule_files")
        cfg["rule_files"] = [RULES]  # the shipped file itself, not a copy
        job = cfg["scrape_configs"][0]
        eq(job["job_name"], "cutover", "the shipped job name")
        job["static_configs"] = [{"targets": [target]}]
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            yaml.safe_dump(cfg, f)
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=self.log, cwd=self.dir)

    def __enter__(self):
        try:
            wait_until(lambda: self.proc.poll() is not None or self._ready(), timeout=30,
                       interval=0.1, what="prometheus ready")
            check(self.proc.poll() is None, f"prometheus exited: {self.logs()[-2000:]}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {self.dir}: CUTOVER_KEEP_TMP=1)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        """GET /api/v1/PATH?params (a list value repeats the key); the
        data of a success; anything else fails the test."""
        q = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/{path}?{q}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise TestFailure(f"/api/v1/{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr, at):
        """The instant query expr at time at (Unix seconds): its samples."""
        data = self.api("query", query=expr, time=f"{at:.3f}")
        if data["resultType"] in ("vector", "matrix"):
            return data["result"]
        return [data["result"]]  # scalar, string

    def alerts(self, name):
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


def wait_alert(prom, name, t0, timeout=60, **labels):
    """Wait until alert name (with labels) is pending or firing; returns
    (its state, seconds since t0)."""
    def active():
        for a in prom.alerts(name):
            if all(a["labels"].get(k) == v for k, v in labels.items()) and a["state"] in ("pending", "firing"):
                return a["state"]
        return None
    state = wait_until(active, timeout=timeout, interval=0.25, what=f"{name} pending or firing")
    return state, time.time() - t0


# ---------------------------------------------------------------- the queries

def grafana_substitute(expr, values):
    """expr as Grafana sends it: each $variable replaced (longest names
    first, so $__range is not read as $__r...)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("$" + name, values[name])
    check("$" not in expr, f"a Grafana variable left in {expr}")
    return expr


def regex_of(values):
    """A multi-value variable as Grafana's Prometheus data source writes it
    into a =~ matcher: each value regex-escaped, in a PromQL string."""
    return "(" + "|".join(re.sub(r"([.+*?^$()\[\]{}|])", r"\\\\\1", v) for v in values) + ")"


def dashboard_queries():
    """[(where, expr)] of the dashboard: targets and annotations; and
    [(name, query)] of its query variables."""
    with open(DASHBOARD) as f:
        d = json.load(f)
    exprs = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    exprs += [(f"annotation {a['name']!r}", a["expr"]) for a in d["annotations"]["list"] if "expr" in a]
    variables = [(v["name"], v["query"]["query"]) for v in d["templating"]["list"] if v["type"] == "query"]
    return exprs, variables


def rule_queries():
    """[(where, expr, time name)] of the rules file, each as ALERT_CHECKS says."""
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    out = []
    for g in doc["groups"]:
        for r in g["rules"]:
            if "record" in r:
                out.append((f"record {r['record']}", r["expr"], None))
                continue
            name = r["alert"]
            check(name in ALERT_CHECKS, f"{name}: say in ALERT_CHECKS how it is checked")
            how, when = ALERT_CHECKS[name]
            expr = r["expr"]
            if how != "as written":
                old, new = how
                eq(expr.count(old), 1, f"{name}: {old!r} in its expression {expr!r}")
                expr = expr.replace(old, new)
                out.append((f"alert {name} ({old} -> {new})", expr, when))
            else:
                out.append((f"alert {name}", expr, when))
    return out


# ---------------------------------------------------------------- the test

def secrets(c, *args, input=None):
    """`cutover secrets ARGS` on the test's cutover.yml (its directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    r = subprocess.run([BIN, "secrets", *args], input=input, capture_output=True, timeout=30, env=env, cwd=c.dir)
    eq(r.returncode, 0, f"cutover secrets {' '.join(args)}: {r.stderr!r}")
    return r.stdout.decode()


def deploy(c, version):
    r = cli(c, "deploy", "shop", version, "--json")
    eq(r.returncode, 0, f"deploy {version}: {r.stdout[-500:]}{r.stderr}")


def test_prometheus_scrapes_alerts_and_answers_every_query():
    t_start = time.time()
    dead = free_port()  # nothing listens there: the webhook fails
    with cutover(yaml_text=YAML.replace("DEAD", str(dead))) as c:
        app_release(c, "1.0.0", tail_every=25, tail_ms=20)
        app_release(c, "1.1.0", tail_every=25, tail_ms=20)
        app_release(c, "2.0.0", fail_every=2, slow_every=5, slow_ms=1500)
        pub = secrets(c, "keygen").split("public key: ")[1].strip()
        secrets(c, "recipients", "add", pub)
        secrets(c, "set", "DB_PASSWORD", input=b"correct horse battery")
        identity = os.path.join(c.dir, "state", "identity.key")
        deploy(c, "1.0.0")
        with Shoppers(c.port, MIX, rate=40, clients=6, max_s=240) as shoppers, \
                Prometheus(f"127.0.0.1:{c.admin}") as prom:
            times = {}
            wait_until(lambda: [s for s in prom.query('up{job="cutover"} == 1', time.time())], timeout=20,
                       interval=0.2, what="Prometheus scraping cutover")
            time.sleep(4)  # a few scrapes of 1.0.0's traffic

            # 1.1.0, held 3 s in its smoke test: T_mid
            p = subprocess.Popen([BIN, "deploy", "shop", "1.1.0", "--json"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})
            wait_until(lambda: (managed(c)["deploying"] or {}).get("phase") == "smoke-testing", timeout=20,
                       interval=0.05, what="1.1.0 smoke-testing")
            time.sleep(2)
            times["T_mid"] = time.time()
            out, _ = p.communicate(timeout=30)
            eq(p.returncode, 0, f"deploy 1.1.0: {out[-500:]}")

            # an instance killed: the supervisor restarts it
            pid = managed(c)["live"]["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: c.metric("cutover_instance_restarts_total", service="shop") == 1, timeout=10,
                       interval=0.1, what="the restart counted")
            wait_until(lambda: managed(c)["live"]["health"] == "healthy", timeout=10, interval=0.1,
                       what="1.1.0 healthy again")
            time.sleep(2)

            # 2.0.0 fails one request in two, and is slow: the alerts
            t_fault = time.time()
            deploy(c, "2.0.0")
            t_live = time.time()
            err_state, err_s = wait_alert(prom, "CutoverHighErrorRate", t_live, service="shop")
            p99_state, p99_s = wait_alert(prom, "CutoverHighP99Latency", t_live, service="shop")
            times["T_fault"] = time.time()
            print(f"    2.0.0 live {t_live - t_fault:.1f} s after its deploy began (smoke 3 s); "
                  f"CutoverHighErrorRate {err_state} {err_s:.1f} s after, CutoverHighP99Latency {p99_state} "
                  f"{p99_s:.1f} s after")

            # back to 1.1.0 by hand
            t_rb = time.time()
            eq(cli(c, "rollback", "shop").returncode, 0, "cutover rollback shop")
            rb_state, rb_s = wait_alert(prom, "CutoverRollback", t_rb, service="shop", trigger="manual")
            # the identity readable by others: refused
            os.chmod(identity, 0o644)
            t_id = time.time()
            id_state, id_s = wait_alert(prom, "CutoverSecretsIdentityUnreadable", t_id)
            wh_state, wh_s = wait_alert(prom, "CutoverWebhooksFailing", t_start, webhook="dead")
            times["T_end"] = time.time()
            print(f"    CutoverRollback {rb_state} {rb_s:.1f} s after the rollback; "
                  f"CutoverSecretsIdentityUnreadable {id_state} {id_s:.1f} s after the chmod; "
                  f"CutoverWebhooksFailing {wh_state}")

            # the daemon's own figures after the story
            text = c.metrics()
            for name, labels, want in [
                    ("cutover_deploys_total", {"result": "done"}, 4),  # 1.0.0, 1.1.0, 2.0.0, the rollback
                    ("cutover_deploys_total", {"result": "rolled-back"}, 0),
                    ("cutover_rollbacks_total", {"trigger": "manual"}, 1),
                    ("cutover_rollbacks_total", {"trigger": "automatic"}, 0),
                    ("cutover_instance_restarts_total", {}, 1),
                    ("cutover_deploy_duration_seconds_count", {}, 4),
                    ("cutover_secrets_identity_readable", {}, 0),
                    ("cutover_alert_max_error_rate", {}, 0.05),
                    ("cutover_alert_max_p99_seconds", {}, 1)]:
                eq(c.metric(name, **labels), want, f"{name} {labels}")
            check(re.search(r'\ncutover_build_info\{version="[^"]+"\} 1\n', text), "cutover_build_info")
            check(re.search(r'\ncutover_instance_healthy\{service="shop",version="1\.1\.0",target="127\.0\.0\.1:\d+"\} 1\n',
                            text), "1.1.0's instance healthy")
            lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                                  timeout=60)
            eq(lint.returncode, 0, f"promtool check metrics: {lint.stdout}{lint.stderr}")

            # the daemon stops: CutoverDown
            eq(c.shutdown_all(), 0, "daemon exit status")
            t_stop = time.time()
            down_state, down_s = wait_alert(prom, "CutoverDown", t_stop)
            times["T_down"] = time.time()
            print(f"    CutoverDown {down_state} {down_s:.1f} s after the daemon stopped")

            check_queries(prom, times, c.admin)
        print(f"    {len(shoppers.results())} shoppers' requests, {len(shoppers.failed())} not 2xx "
              f"(2.0.0's faults); {time.time() - t_start:.0f} s in all")


def check_queries(prom, times, admin):
    """Every query of the dashboard and of the rules returns data (see the
    file's comment); prints how many and when."""
    values = {"instance": regex_of([f"127.0.0.1:{admin}"]), "service": "shop",
              "version": regex_of(["1.0.0", "1.1.0", "2.0.0"]), "__rate_interval": "30s", "__range": "10m"}
    order = ["T_mid", "T_fault", "T_end"]
    exprs, variables = dashboard_queries()
    missing, found = [], {}
    for where, expr in exprs:
        q = grafana_substitute(expr, values)
        hit = next((t for t in order if prom.query(q, times[t])), None)
        if hit:
            found[hit] = found.get(hit, 0) + 1
        else:
            missing.append(f"{where}: {q}")
    for where, expr, when in rule_queries():
        at = [when] if when else order
        hit = next((t for t in at if prom.query(expr, times[t])), None)
        if hit:
            found[hit] = found.get(hit, 0) + 1
        else:
            missing.append(f"{where} at {'/'.join(at)}: {expr}")
    eq(missing, [], "queries without data")
    want = {"instance": f"127.0.0.1:{admin}", "service": "shop", "version": "1.0.0"}
    for name, query in variables:
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        check(m, f"variable {name}: {query} is not label_values(SELECTOR, LABEL)")
        got = prom.api(f"label/{m.group(2)}/values", **{"match[]": grafana_substitute(m.group(1), values)})
        check(want[name] in got, f"variable {name}: {query} gives {got}, not {want[name]}")
    n_rules = len(rule_queries())
    print(f"    {len(exprs)} dashboard queries, {len(variables)} variable queries and {n_rules} rules "
          f"({sum(1 for v in ALERT_CHECKS.values() if v[0] != 'as written')} alerts through a stated variant) "
          f"returned data: " + ", ".join(f"{found.get(t, 0)} first at {t}" for t in order + ["T_down"]))
