"""envpair.py - what the promotion and approval tests share: one
cutover.yml for the shop of examples/shop and an overlay per environment
(cutover.ENV.yml: its own listen port, admin socket and state directory,
plus what the test adds), a daemon per environment started with --env, and
the CLI run against them with --config and --env.  Every process is
started here and stopped by PID when the `with` block ends."""
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

from harness import *
from shopenv import shop_binary

BASE = """services:
  shop:
    run: ${RELEASE_DIR}/shop-${VERSION} --port ${PORT}
    env:
      SHOP_DB: {DIR}/shop-${VERSION}.db
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
      start_grace: 10s
    stop_grace: 5s
    deploy:
      timeout: 20s
      watch: 1s
      rollback_window: 60s
    routes:
      - path: /
"""


class Env:
    """One environment's daemon: its port, state directory and socket."""

    def __init__(self, site, name, port):
        self.site, self.name, self.port = site, name, port
        self.state = os.path.join(site.dir, f"state-{name}")
        self.sock = os.path.join(self.state, "admin.sock")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.site.dir, f"{self.name}.log"), "a")
        self.proc = subprocess.Popen([BIN, "daemon", "--config", self.site.cfg, "--env", self.name],
                                     stdout=log, stderr=log, cwd=self.site.dir, env=clean_env())
        log.close()
        try:
            wait_port(self.port)
            wait_until(lambda: self.cli("status").returncode == 0, timeout=5, what=f"{self.name}'s admin socket")
        except TestFailure:
            raise TestFailure(f"{self.name} did not start: {self.log()[-2000:]}")

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def reload(self, overlay_extra):
        """Rewrite the overlay with overlay_extra and SIGHUP the daemon."""
        self.site.write_overlay(self.name, self.port, overlay_extra)
        os.kill(self.proc.pid, signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in self.log() or "reload failed" in self.log(),
                   timeout=5, what=f"{self.name} reloaded")
        check("reload failed" not in self.log(), f"{self.name}: {self.log()[-1000:]}")

    def log(self):
        with open(os.path.join(self.site.dir, f"{self.name}.log"), errors="replace") as f:
            return f.read()

    def cli(self, *args, timeout=60):
        """The CLI against this environment (--config, --env)."""
        return self.site.cli(*args, "--env", self.name, timeout=timeout)

    def cli_ok(self, *args, timeout=60):
        r = self.cli(*args, timeout=timeout)
        eq(r.returncode, 0, f"cutover {' '.join(args)} --env {self.name}: {r.stdout}{r.stderr}")
        return r

    def add_release(self, version, path=None):
        self.cli_ok("release", "add", "shop", version, path or shop_binary(version))

    def deploy(self, version):
        self.cli_ok("deploy", "shop", version)

    def managed(self):
        return json.loads(self.cli_ok("status", "--json").stdout)["managed"][0]

    def history(self):
        return json.loads(self.cli_ok("history", "shop", "--json").stdout)

    def audit(self):
        return json.loads(self.cli_ok("audit", "shop", "--json").stdout)

    def releases(self):
        """{version: digest} of the shop in this environment's store."""
        r = self.cli("releases", "shop", "--json")
        if r.returncode == 1 and "unknown service 'shop'" in r.stderr:
            return {}  # nothing recorded yet
        eq(r.returncode, 0, f"cutover releases: {r.stderr}")
        rows = json.loads(r.stdout)["releases"]
        return {r["version"]: r["digest"].removeprefix("sha256:") for r in rows}

    def api(self, method, path, body=None):
        st, text = unix_request(self.sock, method, path, json.dumps(body).encode() if body is not None else b"")
        return st, json.loads(text)

    def served(self):
        """The version the proxy answers with (GET /version)."""
        status, _, body = http_get(self.port, "/version", host="shop.test")
        eq(status, 200, f"GET /version on {self.name}")
        return json.loads(body)["version"]


def clean_env():
    """The environment of the CLI and daemons: none of the CUTOVER_*
    variables of whoever runs the tests (they would pick the daemon)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("CUTOVER_") or k in ("CUTOVER_BIN", "CUTOVER_SHARED")}


class Site:
    """A directory with cutover.yml and the overlays of its environments
    (what one machine holds)."""

    def __init__(self, d):
        self.dir = d
        self.cfg = os.path.join(d, "cutover.yml")
        self.envs = {}

    def write_overlay(self, name, port, extra):
        with open(os.path.join(self.dir, f"cutover.{name}.yml"), "w") as f:
            f.write(f"listen: 127.0.0.1:{port}\nstate_dir: {self.dir}/state-{name}\n{extra}")

    def cli(self, *args, timeout=60):
        return subprocess.run([BIN, *args, "--config", self.cfg], capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir, env=clean_env())

    def __getitem__(self, name):
        return self.envs[name]


@contextlib.contextmanager
def site(overlays, base_extra="", start=True):
    """A Site with one environment per entry of overlays ({name: the
    overlay's own lines}), each daemon started unless start is false."""
    d = tempfile.mkdtemp(prefix="cutover-it-")
    s = Site(d)
    with open(s.cfg, "w") as f:
        f.write(base_extra + BASE.replace("{DIR}", d))
    try:
        for name, extra in overlays.items():
            env = Env(s, name, free_port())
            s.write_overlay(name, env.port, extra)
            s.envs[name] = env
        for env in s.envs.values():
            if start:
                env.start()
        yield s
    finally:
        for env in s.envs.values():
            if env.proc and env.proc.poll() is None:
                os.kill(env.proc.pid, signal.SIGKILL)
                env.proc.wait()
        for pid in pids_under(d):  # the instances, which outlive a killed daemon
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {d}: CUTOVER_KEEP_TMP=1)")
        else:
            subprocess.run(["rm", "-rf", d])


def wait_done(env, version, timeout=20):
    """Wait until version is live in env, healthy, with nothing in flight."""
    def settled():
        m = env.managed()
        return (m["live"] and m["live"]["version"] == version and m["live"]["health"] == "healthy"
                and not m["deploying"])
    wait_until(settled, timeout=timeout, interval=0.1, what=f"{version} live in {env.name}")
