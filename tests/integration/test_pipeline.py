"""test_pipeline.py - `cutover pipeline run` (issue 12, point 5): the stages
of pipeline: in cutover.yml, their output streamed with their timings,
stopped at the first failure, the exit code naming the stage.

* The example of examples/ci on the shop, end to end: its files copied to
  a temporary directory with only the ports and the build directory
  changed, a real staging daemon and a real prod daemon.  Staging's
  pipeline builds the shop, tests the release on its own, stores it,
  deploys it and smoke-tests it; prod's promotes it and smoke-tests it.
  Every stage is reported in order with its duration, and each
  environment then serves the release.
* The same example shipping the faulty release (1.2.0): its test stage
  fails, the pipeline stops there (exit 12: the second stage), nothing is
  stored or deployed.  A synthetic pipeline checks the same with marker
  files: the stages after the failure never run, a `when: always` stage
  still does; --json gives the summary.
* Output streams: a line written before a stage sleeps is printed before
  the stage ends.
* A stage timeout stops the stage's whole process group; so does SIGINT
  to the pipeline (exit 130), and nothing after it runs.
* With approval: required in prod, the promote stage stops the pipeline
  with exit 4 and says how to approve; once approved, --from smoke goes on.
* A bad pipeline: is refused before anything runs, with FILE:LINE:COLUMN:
  FIELD: reason and exit 2 (unknown key, two actions, a duplicate name, an
  unknown service, ${ENV} without --env...).
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import *
from envpair import clean_env
from shopenv import BUILD

EXAMPLE = os.path.join(ROOT, "examples", "ci")
STAGE_END = re.compile(r"^(✓|✗) (\S+) .*?(\d+\.\d)s", re.M)


def pipeline(d, *args, timeout=180, config="cutover.yml"):
    return subprocess.run([BIN, "pipeline", *args, "--config", os.path.join(d, config)], capture_output=True,
                          text=True, timeout=timeout, cwd=d, env=clean_env())


def cli(d, *args, timeout=60):
    return subprocess.run([BIN, *args, "--config", os.path.join(d, "cutover.yml")], capture_output=True, text=True,
                          timeout=timeout, cwd=d, env=clean_env())


def stage_ends(out):
    """[(mark, stage, seconds)] of the lines that end a stage, in order."""
    return [(m.group(1), m.group(2), float(m.group(3))) for m in STAGE_END.finditer(out)]


def replace_once(text, old, new, name):
    check(old in text, f"{name} no longer holds {old!r}: update this test")
    return text.replace(old, new)


class Example:
    """examples/ci copied to a temporary directory: free ports, the build
    directory under test, the daemons of staging and prod."""

    def __init__(self, d, version="1.1.0", prod_extra=""):
        self.dir = d
        self.ports = {"local": free_port(), "staging": free_port(), "prod": free_port()}
        self.procs = {}
        for name in ("cutover.yml", "cutover.staging.yml", "cutover.prod.yml"):
            with open(os.path.join(EXAMPLE, name)) as f:
                text = f.read()
            for env, default in (("local", 8080), ("staging", 8081), ("prod", 8082)):
                text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{self.ports[env]}")
            if name == "cutover.yml":
                text = replace_once(text, "BUILD: ../../build ", f"BUILD: {BUILD} ", name)
                text = replace_once(text, "SHOP_VERSION: 1.1.0 ", f"SHOP_VERSION: {version} ", name)
            if name == "cutover.prod.yml":
                text += prod_extra
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        shutil.copy(os.path.join(EXAMPLE, "test-release.py"), d)

    def start(self, env):
        log = open(os.path.join(self.dir, f"{env}.log"), "a")
        self.procs[env] = subprocess.Popen([BIN, "daemon", "--config", os.path.join(self.dir, "cutover.yml"),
                                            "--env", env], stdout=log, stderr=log, cwd=self.dir, env=clean_env())
        log.close()
        try:
            wait_port(self.ports[env])
            wait_until(lambda: cli(self.dir, "status", "--env", env).returncode == 0, timeout=5,
                       what=f"{env}'s admin socket")
        except TestFailure:
            raise TestFailure(f"{env} did not start: {open(os.path.join(self.dir, env + '.log')).read()[-2000:]}")

    def served(self, env):
        status, _, body = http_get(self.ports[env], "/version", host="shop.test")
        eq(status, 200, f"GET /version in {env}")
        return json.loads(body)["version"]

    def managed(self, env):
        r = cli(self.dir, "status", "--json", "--env", env)
        eq(r.returncode, 0, f"status --env {env}: {r.stderr}")
        return json.loads(r.stdout)["managed"][0]


@contextlib.contextmanager
def example(**kw):
    d = tempfile.mkdtemp(prefix="cutover-it-")
    ex = Example(d, **kw)
    try:
        yield ex
    finally:
        for p in ex.procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        for pid in pids_under(d):  # the shop instances, which outlive a killed daemon
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.environ.get("CUTOVER_KEEP_TMP") == "1":
            print(f"    (kept {d}: CUTOVER_KEEP_TMP=1)")
        else:
            subprocess.run(["rm", "-rf", d])


# A configuration for the synthetic pipelines: a service that is never
# started (no daemon needed), then the stages.
BASE = """listen: 127.0.0.1:{port}
state_dir: state
services:
  shop:
    targets: [127.0.0.1:9]
pipeline:
"""


@contextlib.contextmanager
def synthetic(stages, overlays=None):
    """A directory with cutover.yml holding `stages` (the YAML of the list's
    items) and the overlays {env: text}."""
    d = tempfile.mkdtemp(prefix="cutover-it-")
    try:
        with open(os.path.join(d, "cutover.yml"), "w") as f:
            f.write(BASE.format(port=free_port()) + stages)
        for env, text in (overlays or {}).items():
            with open(os.path.join(d, f"cutover.{env}.yml"), "w") as f:
                f.write(text)
        yield d
    finally:
        for pid in pids_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", d])


def alive(pid):
    """Is pid a live process (not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- the example

def test_example_pipeline_end_to_end():
    with example() as ex:
        ex.start("staging")
        ex.start("prod")
        r = pipeline(ex.dir, "run", "--env", "staging")
        out = r.stdout
        eq(r.returncode, 0, f"pipeline --env staging: {out}{r.stderr}")
        ends = stage_ends(out)
        eq([(m, s) for m, s, _ in ends], [("✓", "build"), ("✓", "test"), ("✓", "package"), ("✓", "deploy"),
                                          ("✓", "smoke")], f"stages in order, each ✓: {out}")
        # each stage: a header before its output, its output with its name in front
        for i, name in enumerate(["build", "test", "package", "deploy", "smoke"]):
            check(re.search(rf"^▶ {name} \({i + 1}/5\): ", out, re.M), f"header of {name}: {out}")
        check(re.search(r"^test +\| 7 passed, 0 failed$", out, re.M), f"the test stage's output: {out}")
        check(re.search(r"^deploy +\| deployment \d+: shop 1\.1\.0 \(env staging\)$", out, re.M),
              f"the deploy stage streams cutover deploy: {out}")
        check(re.search(r"^smoke +\| \{\"status\":\"ok\",\"version\":\"1\.1\.0\"\}$", out, re.M), f"smoke: {out}")
        check(ends[3][2] >= 4.0, f"the deploy stage lasts its 5 s watch, got {ends[3][2]}s")
        # the summary: every stage ok with its duration, in order
        rows = re.findall(r"^  (build|test|package|deploy|smoke) +ok +(\d+\.\ds)$", out, re.M)
        eq([n for n, _ in rows], ["build", "test", "package", "deploy", "smoke"], f"summary: {out}")
        check(re.search(r"^pipeline ok in \d+\.\ds$", out, re.M), out)
        eq(ex.served("staging"), "1.1.0", "staging serves the release")

        r = pipeline(ex.dir, "run", "--env", "prod")
        eq(r.returncode, 0, f"pipeline --env prod: {r.stdout}{r.stderr}")
        eq([(m, s) for m, s, _ in stage_ends(r.stdout)], [("✓", "promote"), ("✓", "smoke")], r.stdout)
        check(re.search(r"^promote +\| deployment \d+: shop 1\.1\.0 \(env prod\)$", r.stdout, re.M), r.stdout)
        eq(ex.served("prod"), "1.1.0", "prod serves the release promoted from staging")


def test_example_stops_at_failing_test_stage():
    """The faulty release: the test stage fails, nothing after it runs."""
    with example(version="1.2.0") as ex:
        ex.start("staging")
        r = pipeline(ex.dir, "run", "--env", "staging")
        out = r.stdout
        eq(r.returncode, 12, f"exit 10 + 2 (the test stage): {out}{r.stderr}")
        eq([(m, s) for m, s, _ in stage_ends(out)], [("✓", "build"), ("✗", "test")], out)
        check(re.search(r"^✗ test failed \(exit 1\) after \d+\.\ds$", out, re.M), out)
        check(re.search(r"^test +\| FAIL +checkout 4: .*checkout 500", out, re.M), f"the failing output: {out}")
        for later in ("package", "deploy", "smoke"):
            check(f"▶ {later}" not in out, f"{later} must not run: {out}")
            check(re.search(rf"^  {later} +skipped +-$", out, re.M), f"{later} skipped in the summary: {out}")
        check(re.search(r"^pipeline failed at stage 2 \(test\): exit code 12$", out, re.M), out)
        # nothing stored, nothing deployed
        r = cli(ex.dir, "releases", "shop", "--env", "staging")
        check(r.returncode != 0 or "1.2.0" not in r.stdout, f"nothing stored: {r.stdout}{r.stderr}")
        m = ex.managed("staging")
        check(not m["live"] and not m["deploying"], f"nothing deployed: {m}")


def test_promote_awaiting_approval_stops_with_exit_4():
    with example(prod_extra="approval: required\n") as ex:
        ex.start("staging")
        ex.start("prod")
        r = pipeline(ex.dir, "run", "--env", "staging", "--from", "package")
        eq(r.returncode, 0, f"staging: {r.stdout}{r.stderr}")
        r = pipeline(ex.dir, "run", "--env", "prod")
        out = r.stdout
        eq(r.returncode, 4, f"prod awaits approval: {out}{r.stderr}")
        m = re.search(r"^promote +\| deployment (\d+) awaits approval: cutover approve \1 --env prod", out, re.M)
        check(m, f"the promote stage says how to approve: {out}")
        check(re.search(r"^⏸ promote awaits approval after \d+\.\ds", out, re.M), out)
        check("▶ smoke" not in out and re.search(r"^  smoke +skipped", out, re.M), f"smoke does not run: {out}")
        check(re.search(r"^  promote +awaiting approval +\d+\.\ds$", out, re.M), out)
        # approved, the deploy starts in the daemon; then the rest of the pipeline
        r = cli(ex.dir, "approve", m.group(1), "--env", "prod")
        eq(r.returncode, 0, f"approve: {r.stdout}{r.stderr}")
        wait_until(lambda: (ex.managed("prod")["live"] or {}).get("version") == "1.1.0"
                   and not ex.managed("prod")["deploying"], timeout=30, what="the approved promotion done")
        r = pipeline(ex.dir, "run", "--env", "prod", "--from", "smoke")
        eq(r.returncode, 0, f"--from smoke: {r.stdout}{r.stderr}")
        eq([s for _, s, _ in stage_ends(r.stdout)], ["smoke"], r.stdout)


# ---------------------------------------------------------------- synthetic pipelines

FAILING = """  - name: build
    run: echo built
  - name: test
    run: |
      echo "3 passed, 1 failed"
      exit 1
      echo never
  - name: deploy
    run: touch deployed.marker
  - name: report
    run: echo "report for $CUTOVER_ENV" > report.marker
    when: always
"""


def test_failing_stage_stops_the_later_ones():
    with synthetic(FAILING, {"staging": ""}) as d:
        r = pipeline(d, "run", "--env", "staging")
        out = r.stdout
        eq(r.returncode, 12, f"exit 10 + 2: {out}{r.stderr}")
        check(re.search(r"^test   \| 3 passed, 1 failed$", out, re.M), f"the failing stage's output: {out}")
        check("never" not in out, f"sh -e: the stage stops at its failing line: {out}")
        check(re.search(r"^✗ test failed \(exit 1\) after \d+\.\ds$", out, re.M), out)
        check(re.search(r"^- deploy skipped \(after a failure\)$", out, re.M), out)
        check(not os.path.exists(os.path.join(d, "deployed.marker")), "the stage after the failure ran")
        with open(os.path.join(d, "report.marker")) as f:
            eq(f.read(), "report for staging\n", "the when: always stage ran, in cutover.yml's directory")
        eq([(m, s) for m, s, _ in stage_ends(out)], [("✓", "build"), ("✗", "test"), ("✓", "report")], out)
        os.unlink(os.path.join(d, "report.marker"))

        # --json: the output on stderr, the summary on stdout
        r = pipeline(d, "run", "--env", "staging", "--json")
        eq(r.returncode, 12, r.stderr)
        doc = json.loads(r.stdout)
        eq((doc["ok"], doc["exit_code"], doc["failed_stage"], doc["env"]), (False, 12, "test", "staging"), "summary")
        eq([(s["name"], s["status"], s["exit_code"]) for s in doc["stages"]],
           [("build", "ok", 0), ("test", "failed", 1), ("deploy", "skipped", None), ("report", "ok", 0)], "stages")
        check(all(isinstance(s["duration_ms"], int) for s in doc["stages"] if s["status"] != "skipped"), str(doc))
        check("test   | 3 passed, 1 failed" in r.stderr, f"the stages' output on stderr: {r.stderr}")


def test_output_streams_as_it_comes():
    stages = """  - name: slow
    run: echo first; sleep 1; echo second
"""
    with synthetic(stages) as d:
        p = subprocess.Popen([BIN, "pipeline", "run", "--config", os.path.join(d, "cutover.yml")],
                             stdout=subprocess.PIPE, text=True, cwd=d, env=clean_env())
        seen = []
        for line in p.stdout:
            seen.append((time.monotonic(), line.rstrip("\n")))
        eq(p.wait(30), 0, str(seen))
        at = {text: t for t, text in seen}
        check("slow  | first" in at and "slow  | second" in at, str(seen))
        end = next(t for t, text in seen if text.startswith("✓ slow"))
        check(end - at["slow  | first"] >= 0.7, f"the first line came with the stage's end, not 1 s before: {seen}")
        check(at["slow  | second"] - at["slow  | first"] >= 0.7, str(seen))


def test_timeout_stops_the_stage_process_group():
    stages = """  - name: hangs
    run: |
      echo started
      sleep 60 &
      echo $! > bg.pid
      sleep 60
    timeout: 1s
  - name: after
    run: touch after.marker
"""
    with synthetic(stages) as d:
        t0 = time.monotonic()
        r = pipeline(d, "run", timeout=30)
        took = time.monotonic() - t0
        eq(r.returncode, 11, f"exit 10 + 1: {r.stdout}{r.stderr}")
        check(took < 10, f"the pipeline took {took:.1f}s with a 1 s timeout")
        check(re.search(r"^✗ hangs timed out after 1\.\ds \(timeout: 1s\)", r.stdout, re.M), r.stdout)
        check(re.search(r"^  hangs +timed out +1\.\ds$", r.stdout, re.M), r.stdout)
        check(not os.path.exists(os.path.join(d, "after.marker")), "the stage after the timeout ran")
        with open(os.path.join(d, "bg.pid")) as f:
            bg = int(f.read())
        wait_until(lambda: not alive(bg), timeout=5, what="the stage's background process killed with its group")


def test_sigint_stops_the_stage_and_the_pipeline():
    stages = """  - name: long
    run: echo started; sleep 60 & echo $! > bg.pid; wait
  - name: after
    run: touch after.marker
    when: always
"""
    with synthetic(stages) as d:
        p = subprocess.Popen([BIN, "pipeline", "run", "--config", os.path.join(d, "cutover.yml")],
                             stdout=subprocess.PIPE, text=True, cwd=d, env=clean_env())
        lines = []
        for line in p.stdout:
            lines.append(line)
            if re.match(r"long +\| started$", line):
                break
        wait_until(lambda: os.path.exists(os.path.join(d, "bg.pid")) and open(os.path.join(d, "bg.pid")).read(),
                   timeout=5, what="bg.pid")
        os.kill(p.pid, signal.SIGINT)
        out = "".join(lines) + p.stdout.read()
        eq(p.wait(15), 130, out)
        check(re.search(r"^✗ long interrupted \(SIGINT\) after \d+\.\ds", out, re.M), out)
        check(re.search(r"^  after +not run +-$", out, re.M), out)
        check(not os.path.exists(os.path.join(d, "after.marker")), "nothing runs after an interruption")
        with open(os.path.join(d, "bg.pid")) as f:
            bg = int(f.read())
        wait_until(lambda: not alive(bg), timeout=10, what="the stage's processes stopped")


def test_list_dry_run_and_selection():
    stages = """  - name: build
    run: echo build ${ENV}
  - name: ship
    deploy: {service: shop, version: 2.0.0, wait: true}
    timeout: 90s
  - name: promote
    promote: {service: shop, from: staging}
  - name: spring
    release: {file: releases/spring.yml, env: staging, wait: true}
"""
    with synthetic(stages, {"prod": "", "staging": ""}) as d:
        r = pipeline(d, "list", "--env", "prod")
        eq(r.returncode, 0, r.stderr)
        check(re.search(r"^ 1  build +echo build \$\{ENV\}", r.stdout, re.M), r.stdout)
        check(re.search(r"^ 2  ship +cutover deploy shop 2\.0\.0 --env prod --wait", r.stdout, re.M), r.stdout)
        check(re.search(r"^ 3  promote +cutover promote shop --from staging --to prod", r.stdout, re.M), r.stdout)
        r = pipeline(d, "run", "--env", "prod", "--dry-run", "--from", "ship")
        eq(r.returncode, 0, r.stderr)
        check("▶ build" not in r.stdout, r.stdout)
        cfg = os.path.join(d, "cutover.yml")
        check(f" deploy shop 2.0.0 --env prod --config {cfg} --timeout 90s --wait" in r.stdout, r.stdout)
        check(f" promote shop --from staging --to prod --env prod --config {cfg} --timeout 1800s" in r.stdout,
              r.stdout)
        check(f" release run {d}/releases/spring.yml --env staging --config {cfg} --wait\n" in r.stdout, r.stdout)
        r = pipeline(d, "run", "--env", "prod", "--dry-run", "--only", "build")
        check("/bin/sh -ec 'echo build prod'" in r.stdout, r.stdout)
        r = pipeline(d, "run", "--only", "nope")
        eq(r.returncode, 2, r.stdout)
        check("--only: no stage 'nope' (the stages: build, ship, promote, spring)" in r.stderr, r.stderr)
        r = pipeline(d, "run", "--only", "build")
        eq(r.returncode, 2, r.stdout)
        check("stage build uses ${ENV}: give --env ENV" in r.stderr, r.stderr)
        r = pipeline(d, "run", "--only", "promote")
        eq(r.returncode, 2, r.stdout)
        check("stage promote promotes to the pipeline's environment" in r.stderr, r.stderr)


BAD = [
    # (the stages, line, column, field, a piece of the reason)
    ("  - name: a\n    rn: echo\n", 8, 5, "pipeline[0].rn", 'unknown key "rn" (did you mean "run"?)'),
    ("  - name: a\n    run: echo\n    deploy: {service: shop, version: 1.0.0}\n", 9, 5, "pipeline[0].deploy",
     "a stage does one thing: run: (line 8) and deploy: are both given"),
    ("  - name: a\n    run: echo 1\n  - name: a\n    run: echo 2\n", 9, 11, "pipeline[1].name",
     'stage "a" is named twice (also pipeline[0], line 7)'),
    ("  - run: echo\n", 7, 5, "pipeline[0]", "a stage needs a name"),
    ("  - name: a\n", 7, 5, "pipeline[0]", "a stage needs one of run: (a shell command), deploy:, promote: or release:"),
    ("  - name: a\n    deploy: {service: shpo, version: 1.0.0}\n", 8, 23, "pipeline[0].deploy.service",
     'unknown service "shpo"'),
    ("  - name: a\n    deploy: {service: shop}\n", 8, 13, "pipeline[0].deploy.version", "is required"),
    ("  - name: a\n    run: echo ${PORT}\n", 8, 10, "pipeline[0].run", "${PORT} is not known in a pipeline stage"),
    ("  - name: a\n    run: echo\n    timeout: soon\n", 9, 14, "pipeline[0].timeout", "must be a duration"),
    ("  - name: a\n    run: echo\n    when: never\n", 9, 11, "pipeline[0].when", "success or always"),
    ("  - name: Build\n    run: echo\n", 7, 11, "pipeline[0].name", "stage names must match"),
]


def test_bad_pipeline_is_refused_with_its_place():
    for stages, line, column, field, reason in BAD:
        with synthetic(stages) as d:
            cfg = os.path.join(d, "cutover.yml")
            r = pipeline(d, "run")
            eq(r.returncode, 2, f"{stages!r}: {r.stdout}{r.stderr}")
            want = f"{cfg}:{line}:{column}: {field}: "
            check(want in r.stderr and reason in r.stderr, f"{stages!r}: expected {want}...{reason}, got {r.stderr}")
            check(r.stdout == "", f"nothing runs: {r.stdout}")
            r = cli(d, "check")
            eq(r.returncode, 2, f"cutover check {stages!r}: {r.stderr}")
    # no pipeline at all
    with synthetic("") as d:
        with open(os.path.join(d, "cutover.yml")) as f:
            text = f.read().replace("pipeline:\n", "")
        with open(os.path.join(d, "cutover.yml"), "w") as f:
            f.write(text)
        r = pipeline(d, "run")
        eq(r.returncode, 2, r.stderr)
        check("has no pipeline:" in r.stderr, r.stderr)
