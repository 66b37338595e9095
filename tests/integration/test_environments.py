"""test_environments.py - environments (issue 11, point 1): one cutover.yml,
an overlay cutover.ENV.yml per environment, chosen with --env ENV or
$CUTOVER_ENV by every verb.

* The shop (examples/shop) runs as staging and as prod at once, from one
  cutover.yml and two overlays: two daemons on their own listen addresses,
  admin addresses, state directories and admin sockets, each with its own
  database through variables:.  A version is deployed in each, the CLI
  reaching the right daemon by --env (or $CUTOVER_ENV) alone.  The
  strategy differs (recreate in staging: the old version stops before the
  new one starts; canary in prod: the new version at 50 % first), and so
  do the instance counts (1 and 2).  Maps merge (prod changes one variable
  of the shop's env and keeps the others), lists replace (each overlay's
  listen:), a null removes a value of the base (staging has no admin
  listener and no DEBUG variable).
* `cutover config show` names the origin of each value (a line of the
  base, a line of the overlay, or default), as text and as JSON, and
  `cutover check`, the daemon's log and `cutover status` name the
  environment.
* An error in an overlay names the overlay's file, line and field; an
  overlay naming a service the base does not have is an error; --env
  without its overlay is an error; an invalid environment name is a usage
  error (exit 2), from --env and from $CUTOVER_ENV.
"""
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from harness import *
from shopenv import shop_binary

BASE = """# the shop, whatever the environment
listen: [127.0.0.1:{BASE_PORT}, 127.0.0.1:{BASE_PORT2}]
admin: 127.0.0.1:{BASE_ADMIN}
state_dir: state
variables:
  DB: {DIR}/shop.db
deploy:
  timeout: 20s
  watch: 1s
  rollback_window: 60s
services:
  shop:
    run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}
    env:
      SHOP_DB: ${DB}
      SHOP_ENV: base
      DEBUG: "1"
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
      start_grace: 10s
    stop_grace: 5s
    deploy:
      strategy: blue-green
      max_extension: 1s
    routes:
      - path: /
"""

STAGING = """listen: [127.0.0.1:{STAGING_PORT}]
admin: ~
state_dir: staging-state
variables:
  DB: {DIR}/shop-staging.db
services:
  shop:
    env:
      DEBUG: ~
    deploy:
      strategy: recreate
"""

PROD = """listen:
  - 127.0.0.1:{PROD_PORT}
admin: 127.0.0.1:{PROD_ADMIN}
state_dir: prod-state
variables:
  DB: {DIR}/shop-prod.db
services:
  shop:
    instances: 2
    env:
      SHOP_ENV: prod
    deploy:
      strategy: canary
      steps: [50% 1s, 100%]
"""


def line_of(text, needle):
    """1-based number of the line of text that contains needle."""
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise TestFailure(f"{needle!r} is not in {text!r}")


class Envs:
    """The files of a test and the CLI run in their directory (where
    ./cutover.yml is), with only the environment the test gives it."""

    def __init__(self, d, ports, texts):
        self.dir, self.ports, self.texts, self.procs = d, ports, texts, {}

    def cli(self, *args, env=None, timeout=60):
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("CUTOVER_ENV", "CUTOVER_SOCKET", "CUTOVER_STATE_DIR")}
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, cwd=self.dir,
                              env={**clean, **(env or {})})

    def ok(self, *args, env=None):
        r = self.cli(*args, env=env)
        eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def status(self, name):
        return json.loads(self.ok("status", "--env", name, "--json"))

    def start(self, name, port, by_variable=False):
        """cutover daemon for environment `name` (--env, or $CUTOVER_ENV)."""
        err = open(os.path.join(self.dir, f"{name}.log"), "w")
        clean = {k: v for k, v in os.environ.items() if k not in ("CUTOVER_ENV", "CUTOVER_SOCKET")}
        args, env = [BIN, "daemon"], dict(clean)
        if by_variable:
            env["CUTOVER_ENV"] = name
        else:
            args += ["--env", name]
        self.procs[name] = subprocess.Popen(args, stdout=err, stderr=err, cwd=self.dir, env=env)
        err.close()
        try:
            wait_port(port)
            wait_until(lambda: self.cli("status", "--env", name).returncode == 0, timeout=5,
                       what=f"the {name} daemon's admin socket")
        except TestFailure:
            raise TestFailure(f"the {name} daemon did not start: {self.log(name)[-2000:]}")

    def log(self, name):
        with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
            return f.read()

    def managed(self, name):
        return self.status(name)["managed"][0]


@contextlib.contextmanager
def environments(base=BASE, overlays=None):
    """A directory with cutover.yml and its overlays (NAME: text); the
    daemons a test starts are stopped by PID, with every instance they
    started (their command lines name the directory)."""
    d = tempfile.mkdtemp(prefix="cutover-it-env-")
    ports = {k: free_port() for k in ("BASE_PORT", "BASE_PORT2", "BASE_ADMIN", "STAGING_PORT", "PROD_PORT",
                                      "PROD_ADMIN")}

    def fill(text):
        text = text.replace("${", "\x00")
        for k, v in ports.items():
            text = text.replace("{" + k + "}", str(v))
        return text.replace("{DIR}", d).replace("\x00", "${")

    texts = {"cutover.yml": fill(base)}
    for name, text in (overlays if overlays is not None else {"staging": STAGING, "prod": PROD}).items():
        texts[f"cutover.{name}.yml"] = fill(text)
    for fname, text in texts.items():
        with open(os.path.join(d, fname), "w") as f:
            f.write(text)
    e = Envs(d, ports, texts)
    try:
        yield e
    finally:
        for p in e.procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        for pid in pids_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {d}: CUTOVER_KEEP_TMP=1)")
        else:
            subprocess.run(["rm", "-rf", d])


def environ_of(pid):
    """The environment of a running process, as a dict."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [p.split(b"=", 1) for p in f.read().split(b"\0") if b"=" in p]
    return {k.decode(): v.decode() for k, v in pairs}


def version_at(port):
    status, _, body = http_get(port, "/version", host="shop.test")
    eq(status, 200, f"GET /version on {port}")
    return json.loads(body)["version"]


def leaf(doc, path):
    """The leaf {value, origin} at a dotted path of config show --json."""
    node = doc["config"]
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# ---------------------------------------------------------------- two environments at once

def test_staging_and_prod_run_the_shop_side_by_side():
    with environments() as e:
        staging_port, prod_port = e.ports["STAGING_PORT"], e.ports["PROD_PORT"]
        e.start("staging", staging_port)
        e.start("prod", prod_port, by_variable=True)
        check("configuration cutover.yml + cutover.staging.yml (env staging)" in e.log("staging"),
              f"the staging daemon names its environment at start: {e.log('staging')[:600]}")
        check("configuration cutover.yml + cutover.prod.yml (env prod)" in e.log("prod"),
              f"the prod daemon names its environment at start: {e.log('prod')[:600]}")
        # lists replace: neither daemon listens where the base said
        check(connect_refused(e.ports["BASE_PORT"]) and connect_refused(e.ports["BASE_PORT2"]),
              "the base's listen: replaced by each overlay's")
        # a null removes: staging has no admin listener, prod has its own
        check(connect_refused(e.ports["BASE_ADMIN"]), "no daemon on the base's admin address")
        wait_port(e.ports["PROD_ADMIN"])

        for name in ("staging", "prod"):
            for v in ("1.0.0", "1.1.0"):
                e.ok("release", "add", "shop", v, shop_binary(v), "--env", name)
        for name in ("staging", "prod"):
            check(os.path.isdir(os.path.join(e.dir, f"{name}-state/releases/shop")),
                  f"{name}'s releases in its own state directory")
            rows = json.loads(e.ok("releases", "shop", "--env", name, "--json"))["releases"]
            eq(sorted(r["version"] for r in rows), ["1.0.0", "1.1.0"], f"cutover releases shop --env {name}")
        out = e.ok("deploy", "shop", "1.0.0", "--env", "staging")
        check("done" in out, f"staging deploy 1.0.0: {out}")
        out = e.ok("deploy", "shop", "1.0.0", env={"CUTOVER_ENV": "prod"})
        check("done" in out, f"prod deploy 1.0.0: {out}")
        eq((version_at(staging_port), version_at(prod_port)), ("1.0.0", "1.0.0"), "served by each")

        # each verb reaches its own daemon by the environment alone
        st, pr = e.status("staging"), json.loads(e.ok("status", "--json", env={"CUTOVER_ENV": "prod"}))
        eq((st["env"], pr["env"]), ("staging", "prod"), "the env of the daemon each status reached")
        eq((st["pid"], pr["pid"]), (e.procs["staging"].pid, e.procs["prod"].pid), "the pids behind each")
        check(pr["overlay"].endswith("/cutover.prod.yml"), f"overlay in /v1/status: {pr['overlay']}")
        text = e.ok("status", "--env", "prod")
        check(re.search(r"config cutover\.yml \+ cutover\.prod\.yml \(env prod\)", text),
              f"cutover status names the environment: {text[:400]}")

        # instance counts and strategies
        sm, pm = st["managed"][0], pr["managed"][0]
        eq((sm["strategy"], pm["strategy"]), ("recreate", "canary"), "the strategy of each environment")
        eq((sm["instances_per_version"], pm["instances_per_version"]), (1, 2), "instances per version")
        eq(len([i for i in pm["instances"] if i["role"] == "live"]), 2, "prod runs two live instances")

        # variables and merged env maps, in the processes themselves
        staging_env = environ_of(sm["live"]["pid"])
        prod_envs = [environ_of(i["pid"]) for i in pm["instances"] if i["role"] == "live"]
        eq((staging_env["SHOP_DB"], staging_env["SHOP_ENV"], "DEBUG" in staging_env),
           (f"{e.dir}/shop-staging.db", "base", False), "staging's env (DEBUG removed by its null)")
        for env in prod_envs:
            eq((env["SHOP_DB"], env["SHOP_ENV"], env.get("DEBUG")), (f"{e.dir}/shop-prod.db", "prod", "1"),
               "prod's env (SHOP_ENV changed, the rest of the base's map kept)")
        check(os.path.exists(f"{e.dir}/shop-staging.db") and os.path.exists(f"{e.dir}/shop-prod.db") and
              not os.path.exists(f"{e.dir}/shop.db"), "each environment's own database")

        # staging: recreate, the old version stops before the new one starts
        out = e.ok("deploy", "shop", "1.1.0", "--env", "staging")
        check("stopping" in out and "done" in out, f"the recreate deploy: {out}")
        check(re.match(r"deployment \d+: shop 1\.1\.0 \(env staging\)\n", out), f"the deploy names its env: {out}")
        rows = json.loads(e.ok("history", "shop", "--env", "staging", "--json"))
        eq((rows[0]["to_version"], rows[0]["strategy"], rows[0]["state"]), ("1.1.0", "recreate", "done"),
           "staging's history")
        check(any("stop before 1.1.0 starts (recreate)" in (ev["detail"] or "") for ev in rows[0]["events"]),
              f"the stop came first: {rows[0]['events']}")
        eq(version_at(prod_port), "1.0.0", "prod untouched by staging's deploy")

        # prod: a canary, 50 % first (no traffic: the step is inconclusive
        # and pauses), resumed through --env
        p = subprocess.Popen([BIN, "deploy", "shop", "1.1.0", "--env", "prod", "--json"], cwd=e.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            d = wait_until(lambda: (lambda d: d if d and d["progress"]["paused"] else None)(
                e.managed("prod")["deploying"]), timeout=20, interval=0.1, what="prod's canary step paused")
            eq((d["strategy"], d["progress"]["step"]), ("canary", 1), "the canary's first step")
            groups = {g["version"]: g["weight"] for g in e.status("prod")["services"][0]["versions"]}
            check(groups["1.0.0"] == groups["1.1.0"] > 0, f"half the new requests on 1.1.0: {groups}")
            e.ok("resume", "shop", "--env", "prod")
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        eq((p.returncode, json.loads(out)["phase"]), (0, "done"), f"prod's canary: {out[-600:]}")
        eq((version_at(staging_port), version_at(prod_port)), ("1.1.0", "1.1.0"), "1.1.0 in both")
        eq(json.loads(e.ok("history", "shop", "--env", "prod", "--json"))[0]["strategy"], "canary",
           "prod's history")

        for name in ("staging", "prod"):
            e.ok("shutdown", "--stop-services", "--no-wait", "--env", name)
            eq(e.procs[name].wait(30), 0, f"the {name} daemon's exit status")
        eq(pids_under(e.dir), [], "instances left after both daemons stopped")


# ---------------------------------------------------------------- what a person reads

def test_config_show_names_the_origin_of_each_value():
    with environments() as e:
        base, staging = e.texts["cutover.yml"], e.texts["cutover.staging.yml"]
        text = e.ok("config", "show", "--env", "staging")
        lines = text.splitlines()
        eq(lines[0], "# cutover.yml + cutover.staging.yml (env staging)", "the first line")

        def comment(pattern):
            found = [l for l in lines if re.match(pattern, l)]
            eq(len(found), 1, f"one line like {pattern!r} in:\n{text}")
            return found[0].rsplit("# ", 1)[1]

        eq(comment(r"\s+strategy: recreate\s+#"), f"cutover.staging.yml:{line_of(staging, 'recreate')}",
           "a value of the overlay")
        eq(comment(r"\s+watch: 1s\s+#"), f"cutover.yml:{line_of(base, 'watch: 1s')}",
           "a value of the base (inherited from its deploy: block)")
        alerts = lines.index("    alerts:")  # services.shop.alerts: its max_error_rate is the alert's
        found = [l for l in lines[:alerts] if re.match(r"\s+max_error_rate: 5%\s+#", l)]
        eq(len(found), 1, f"deploy.max_error_rate before alerts: in:\n{text}")
        eq(found[0].rsplit("# ", 1)[1], "default", "a default")
        eq(comment(r"  client_header: 10s\s+#"), "default", "a default of the proxy")
        eq(comment(r"\s+SHOP_DB: " + re.escape(e.dir) + r"/shop-staging\.db\s+#"),
           f"cutover.yml:{line_of(base, 'SHOP_DB')}", "a value with a variable substituted")
        eq(comment(r"  DB: " + re.escape(e.dir) + r"/shop-staging\.db\s+#"),
           f"cutover.staging.yml:{line_of(staging, 'DB:')}", "the variable itself")
        eq(comment(r"admin: ~\s+#"), "default", "the admin listener removed by a null")
        check(not any("DEBUG" in l for l in lines), "the env variable removed by a null is not shown")
        columns = {l.index("  # ") for l in lines[1:] if "  # " in l and l.index("  # ") < 60}
        eq(len(columns), 1, f"comments in one column: {sorted(columns)}")

        doc = json.loads(e.ok("config", "show", "--json", env={"CUTOVER_ENV": "prod"}))
        eq((doc["env"], doc["files"]), ("prod", ["cutover.yml", "cutover.prod.yml"]), "env and files")
        prod = e.texts["cutover.prod.yml"]
        eq(leaf(doc, "services.shop.instances"),
           {"value": 2, "origin": {"file": "cutover.prod.yml", "line": line_of(prod, "instances"), "column": 16}},
           "a value of the overlay")
        eq(leaf(doc, "services.shop.deploy.steps.0")["value"], "50% 1s", "the overlay's list")
        eq(leaf(doc, "services.shop.deploy.timeout")["origin"]["line"], line_of(base, "timeout: 20s"),
           "inherited from the base's deploy: block")
        eq(leaf(doc, "services.shop.health.interval"),
           {"value": "200ms", "origin": {"file": "cutover.yml", "line": line_of(base, "interval"), "column": 17}},
           "a value of the base")
        eq(leaf(doc, "services.shop.deploy.confidence"), {"value": "99%", "origin": "default"}, "a default")
        eq(leaf(doc, "services.shop.env.DEBUG")["value"], "1", "the base's value kept by the map merge")
        eq([l["value"] for l in doc["config"]["listen"]], [f"127.0.0.1:{e.ports['PROD_PORT']}"], "a list replaced")
        eq(leaf(doc, "admin")["origin"]["file"], "cutover.prod.yml", "the admin listener")

        # check names what it checked
        out = e.ok("check", "--env", "staging")
        eq(out.strip(), "cutover.yml + cutover.staging.yml (env staging): ok (1 listeners, 1 services, 1 routes)",
           "cutover check")
        j = json.loads(e.ok("check", "--json", env={"CUTOVER_ENV": "prod"}))
        eq((j["file"], j["env"], j["overlay"]), ("cutover.yml", "prod", f"{os.path.realpath(e.dir)}/cutover.prod.yml"),
           "cutover check --json")
        eq(e.ok("check").strip(), "cutover.yml: ok (2 listeners, 1 services, 1 routes)", "the base alone")


# ---------------------------------------------------------------- errors

def test_overlay_errors_name_the_overlay():
    overlays = {
        "typo": "services:\n  shop:\n    deploy:\n      strategy: canery\n",
        "extra": "services:\n  shop:\n    instances: 2\n  shpo:\n    instances: 2\n",
        "undefined": "services:\n  shop:\n    env:\n      CACHE: ${CACHE_DIR}\n",
    }
    with environments(overlays=overlays) as e:
        r = e.cli("check", "--env", "typo")
        eq(r.returncode, 2, f"a bad value in the overlay: {r.stdout}{r.stderr}")
        check(re.search(r"cutover\.typo\.yml:4:17: services\.shop\.deploy\.strategy: must be blue-green, recreate, "
                        r"canary or rolling, got \"canery\"", r.stderr), f"the message: {r.stderr}")
        j = json.loads(e.cli("check", "--env", "typo", "--json").stdout)
        eq((j["file"], j["line"], j["column"], j["field"]),
           ("cutover.typo.yml", 4, 17, "services.shop.deploy.strategy"), "the error as JSON")

        r = e.cli("config", "show", "--env", "extra")
        eq(r.returncode, 2, f"an overlay adding a service: {r.stdout}{r.stderr}")
        check("cutover.extra.yml:4:3: services.shpo: unknown service \"shpo\" (did you mean \"shop\"?): an overlay "
              "can change or remove the services of cutover.yml, not add one" in r.stderr, f"the message: {r.stderr}")

        r = e.cli("check", env={"CUTOVER_ENV": "undefined"})
        eq(r.returncode, 2, f"an unknown variable in the overlay: {r.stdout}{r.stderr}")
        check(re.search(r"cutover\.undefined\.yml:4:14: services\.shop\.env\.CACHE: unknown variable \$\{CACHE_DIR\}: "
                        r"not in variables: \(DB\)", r.stderr), f"the message: {r.stderr}")

        # a daemon refuses to start on it, with the same message
        r = subprocess.run([BIN, "daemon", "--env", "typo"], capture_output=True, text=True, timeout=10, cwd=e.dir)
        eq(r.returncode, 2, f"cutover daemon --env typo: {r.stdout}{r.stderr}")
        check("cutover.typo.yml:4:17: services.shop.deploy.strategy" in r.stderr, f"daemon: {r.stderr}")

        r = e.cli("check", "--env", "qa")
        eq(r.returncode, 2, f"no overlay for the environment: {r.stdout}{r.stderr}")
        check("cutover.qa.yml: environment \"qa\" has no overlay" in r.stderr, f"the message: {r.stderr}")
        r = e.cli("status", "--env", "qa")
        eq(r.returncode, 2, f"status with no overlay: {r.stdout}{r.stderr}")
        # without a configuration to find the environment in, not the default daemon
        elsewhere = tempfile.mkdtemp(prefix="cutover-it-env-none-")
        try:
            r = subprocess.run([BIN, "status", "--env", "prod"], capture_output=True, text=True, timeout=10,
                               cwd=elsewhere)
        finally:
            os.rmdir(elsewhere)
        eq(r.returncode, 2, f"status --env without ./cutover.yml: {r.stdout}{r.stderr}")
        check("cutover.yml: cannot read: No such file or directory" in r.stderr, f"the message: {r.stderr}")

        for args, env, given in ((["--env", "Prod"], None, "--env"), (["--env", "../prod"], None, "--env"),
                                 ([], {"CUTOVER_ENV": "prod/x"}, "CUTOVER_ENV")):
            for verb in (["check"], ["config", "show"], ["deploy", "shop", "1.0.0"], ["status"]):
                r = e.cli(*verb, *args, env=env)
                eq(r.returncode, 2, f"cutover {' '.join(verb + args)} {env or ''}: {r.stdout}{r.stderr}")
                check(f"{given}: invalid environment name" in r.stderr, f"the message: {r.stderr}")
